use super::*;
use crate::aws::eventstream::{encode_message, HeaderValue};
use crate::config::{BedrockSettings, Defaults, ProviderKind, ProviderSettings};
use crate::sse::{SseEvent, SseFramer};
use crate::translate::{prepare, prepare_with_headers, ClientApi};
use serde_json::{json, Value};

const CLAUDE: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";

fn provider(api: BedrockApi) -> ProviderConfig {
    ProviderConfig {
        name: "b".into(),
        kind: ProviderKind::Bedrock,
        cluster: "c".into(),
        credential: None,
        path_prefix: None,
        settings: ProviderSettings {
            bedrock: Some(BedrockSettings { region: "us-east-1".into(), api }),
            ..Default::default()
        },
    }
}

fn prep_with(
    api: ClientApi,
    bedrock_api: BedrockApi,
    model: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> Result<PreparedRequest, GatewayError> {
    let p = provider(bedrock_api);
    let d = Defaults { max_tokens: 4096 };
    let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    prepare_with_headers(api, &Target { provider: &p, model, defaults: &d, created_unix: 7 }, body, &headers)
}

fn messages(body: &str, headers: &[(&str, &str)]) -> PreparedRequest {
    prep_with(ClientApi::AnthropicMessages, BedrockApi::Auto, CLAUDE, body.as_bytes(), headers).unwrap()
}

fn fixture(name: &str) -> serde_yaml::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/recorded").join(name);
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn to_json(v: &serde_yaml::Value) -> Value {
    serde_json::to_value(v).unwrap()
}

#[test]
fn claude_ids_choose_invoke_unless_the_provider_says_otherwise() {
    for id in [
        "anthropic.claude-3-5-haiku-20241022-v1:0",
        CLAUDE,
        "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0",
    ] {
        assert!(uses_invoke(&provider(BedrockApi::Auto), id), "{id}");
        assert!(!uses_invoke(&provider(BedrockApi::Converse), id), "{id}");
    }
    for id in [
        "us.amazon.nova-micro-v1:0",
        "openai.gpt-oss-120b-1:0",
        "arn:aws:bedrock:us-east-1:1:application-inference-profile/x",
    ] {
        assert!(!uses_invoke(&provider(BedrockApi::Auto), id), "{id}");
        assert!(uses_invoke(&provider(BedrockApi::Invoke), id), "{id}");
    }
    let body = br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
    let invoke = prep_with(ClientApi::AnthropicMessages, BedrockApi::Auto, CLAUDE, body, &[]).unwrap();
    assert_eq!(invoke.path, "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke");
    let converse = prep_with(ClientApi::AnthropicMessages, BedrockApi::Converse, CLAUDE, body, &[]).unwrap();
    assert_eq!(converse.path, "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse");
    let nova =
        prep_with(ClientApi::AnthropicMessages, BedrockApi::Auto, "us.amazon.nova-micro-v1:0", body, &[]).unwrap();
    assert!(nova.path.ends_with("/converse"));
    let arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc";
    let stream = br#"{"model":"m","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    assert_eq!(
        prep_with(ClientApi::AnthropicMessages, BedrockApi::Invoke, arn, stream, &[]).unwrap().path,
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fabc/invoke-with-response-stream"
    );
    // The setting is optional and serialised only when not `auto`.
    let doc: ProviderConfig = serde_json::from_str(
        r#"{"name":"b","kind":"bedrock","cluster":"c","settings":{"bedrock":{"region":"us-east-1"}}}"#,
    )
    .unwrap();
    assert_eq!(doc.settings.bedrock.as_ref().unwrap().api, BedrockApi::Auto);
    assert!(!serde_json::to_string(&doc).unwrap().contains("api"));
    let doc: ProviderConfig = serde_json::from_str(
        r#"{"name":"b","kind":"bedrock","cluster":"c","settings":{"bedrock":{"region":"us-east-1","api":"invoke"}}}"#,
    )
    .unwrap();
    assert!(serde_json::to_string(&doc).unwrap().contains(r#""api":"invoke""#));
    assert!(serde_json::from_str::<ProviderConfig>(
        r#"{"name":"b","kind":"bedrock","cluster":"c","settings":{"bedrock":{"region":"us-east-1","api":"chat"}}}"#
    )
    .is_err());
}

#[test]
fn body_keeps_every_byte_but_the_edited_members() {
    // Claude Code's shape, odd whitespace and escapes included.
    let body = "{\"model\": \"claude-sonnet-4-5\",\n \"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"h\\u00e9\\n\",\"cache_control\":{\"type\":\"ephemeral\"}}]}],\n \"system\":[{\"type\":\"text\",\"text\":\"You are Claude Code.\",\"cache_control\":{\"type\":\"ephemeral\"}}],\n \"tools\":[{\"name\":\"Bash\",\"input_schema\":{\"type\":\"object\"}}],\"metadata\":{\"user_id\":\"{\\\"session\\\":1}\"},\"max_tokens\":32000,\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":31999},\"context_management\":{\"edits\":[{\"type\":\"clear_thinking_20251015\",\"keep\":\"all\"}]},\"stream\":true , \"temperature\":1.0e0 }";
    let p = messages(body, &[("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27, fine-grained-tool-streaming-2025-05-14")]);
    assert_eq!(p.path, "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream");
    let expected = "{\n \"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"h\\u00e9\\n\",\"cache_control\":{\"type\":\"ephemeral\"}}]}],\n \"system\":[{\"type\":\"text\",\"text\":\"You are Claude Code.\",\"cache_control\":{\"type\":\"ephemeral\"}}],\n \"tools\":[{\"name\":\"Bash\",\"input_schema\":{\"type\":\"object\"}}],\"metadata\":{\"user_id\":\"{\\\"session\\\":1}\"},\"max_tokens\":32000,\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":31999},\"context_management\":{\"edits\":[{\"type\":\"clear_thinking_20251015\",\"keep\":\"all\"}]}, \"temperature\":1.0e0 ,\"anthropic_version\":\"bedrock-2023-05-31\",\"anthropic_beta\":[\"interleaved-thinking-2025-05-14\",\"context-management-2025-06-27\",\"fine-grained-tool-streaming-2025-05-14\"]}";
    assert_eq!(String::from_utf8(p.body.unwrap()).unwrap(), expected);
    assert_eq!(p.dropped, vec![DROPPED_BETA]);
    assert!(!p.headers.iter().any(|(k, _)| k.starts_with("anthropic")));
}

#[test]
fn beta_allowlist_keeps_renames_and_drops_by_name() {
    for (beta, expect) in [
        ("interleaved-thinking-2025-05-14", Some("interleaved-thinking-2025-05-14")),
        ("computer-use-2025-01-24", Some("computer-use-2025-01-24")),
        ("token-efficient-tools-2025-02-19", Some("token-efficient-tools-2025-02-19")),
        ("output-128k-2025-02-19", Some("output-128k-2025-02-19")),
        ("dev-full-thinking-2025-05-14", Some("dev-full-thinking-2025-05-14")),
        ("context-1m-2025-08-07", Some("context-1m-2025-08-07")),
        ("context-management-2025-06-27", Some("context-management-2025-06-27")),
        ("tool-search-tool-2025-10-19", Some("tool-search-tool-2025-10-19")),
        ("advanced-tool-use-2025-11-20", Some("tool-search-tool-2025-10-19")),
        ("fine-grained-tool-streaming-2025-05-14", Some("fine-grained-tool-streaming-2025-05-14")),
        ("claude-code-20250219", None),
        ("prompt-caching-scope-2026-01-05", None),
        ("files-api-2025-04-14", None),
        ("mcp-client-2025-04-04", None),
        ("context-1m-", None),
        ("context-1m-2025\"]", None),
        ("", None),
    ] {
        assert_eq!(accepted_beta(beta), expect, "{beta}");
    }
    let body = r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"anthropic_beta":["output-128k-2025-02-19","bogus-1"],"service_tier":"auto","container":"c","mcp_servers":[]}"#;
    let p = messages(
        body,
        &[("anthropic-beta", "advanced-tool-use-2025-11-20"), ("Anthropic-Beta", "output-128k-2025-02-19,x-1")],
    );
    let sent: Value = serde_json::from_slice(p.body.as_deref().unwrap()).unwrap();
    assert_eq!(sent["anthropic_beta"], json!(["tool-search-tool-2025-10-19", "output-128k-2025-02-19"]));
    assert_eq!(p.dropped, vec![DROPPED_BETA, "service_tier", "container", "mcp_servers"]);
    assert!(sent.get("service_tier").is_none() && sent.get("container").is_none() && sent.get("mcp_servers").is_none());
    // Nothing accepted: no list at all (some models refuse even an empty one).
    let p = messages(r#"{"model":"m","max_tokens":5,"messages":[]}"#, &[("anthropic-beta", "claude-code-20250219")]);
    let sent: Value = serde_json::from_slice(p.body.as_deref().unwrap()).unwrap();
    assert!(sent.get("anthropic_beta").is_none(), "{sent}");
    assert_eq!(sent["anthropic_version"], ANTHROPIC_VERSION);
    assert!(sent.get("model").is_none());
    // A malformed body list is dropped, never a 400.
    let p = messages(r#"{"model":"m","max_tokens":5,"messages":[],"anthropic_beta":"x"}"#, &[]);
    assert_eq!(p.dropped, vec![DROPPED_BETA]);
    assert!(prep_with(ClientApi::AnthropicMessages, BedrockApi::Auto, CLAUDE, b"[1]", &[]).is_err());
}

#[test]
fn recorded_invoke_request_and_json_answer() {
    let doc = fixture("bedrock-invoke/test_anthropic_cache_bedrock_real_api.yaml");
    let interactions = doc["interactions"].as_sequence().unwrap();
    for interaction in interactions {
        let recorded = to_json(&interaction["request"]["parsed_body"]);
        let uri = interaction["request"]["uri"].as_str().unwrap();
        let model_id = uri.split("/model/").nth(1).unwrap().split('/').next().unwrap();
        // What the Anthropic SDK sends for this recording.
        let mut client = recorded.clone();
        let client_obj = client.as_object_mut().unwrap();
        client_obj.remove("anthropic_version");
        client_obj.insert("model".into(), json!("claude-haiku-4-5"));
        let body = serde_json::to_vec(&client).unwrap();
        let p = prep_with(ClientApi::AnthropicMessages, BedrockApi::Auto, model_id, &body, &[]).unwrap();
        assert_eq!(p.path, format!("/model/{}/invoke", model_id.replace(':', "%3A")));
        let sent: Value = serde_json::from_slice(p.body.as_deref().unwrap()).unwrap();
        assert_eq!(sent, recorded, "the upstream request is the recorded one");
        assert!(p.dropped.is_empty());

        let answer = to_json(&interaction["response"]["parsed_body"]);
        let answer_bytes = serde_json::to_vec(&answer).unwrap();
        let mut t = p.translator;
        assert_eq!(t.on_headers(200, Some("application/json")), BodyMode::Buffered);
        let out = t.translate_body(&answer_bytes).unwrap().unwrap();
        // Only the model value differs from Bedrock's bytes.
        let provider_model = answer["model"].as_str().unwrap();
        let expected = String::from_utf8(answer_bytes.clone()).unwrap().replacen(
            &format!("\"model\":\"{provider_model}\""),
            "\"model\":\"claude-haiku-4-5\"",
            1,
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        assert_eq!(t.response_model(), Some(provider_model));
        let u = &answer["usage"];
        let (input, read, write, output) = (
            u["input_tokens"].as_u64().unwrap(),
            u["cache_read_input_tokens"].as_u64().unwrap(),
            u["cache_creation_input_tokens"].as_u64().unwrap(),
            u["output_tokens"].as_u64().unwrap(),
        );
        assert_eq!(
            t.usage(),
            TokenUsage { input: input + read + write, output, cache_read: read, cache_creation: write, reasoning: 0 }
        );
    }
}

#[test]
fn bedrock_errors_become_anthropic_errors() {
    let body = br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
    let cases = [
        (
            400,
            Some("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            "invalid_request_error",
        ),
        (403, Some("AccessDeniedException"), "permission_error"),
        (429, Some("ThrottlingException"), "rate_limit_error"),
        (404, Some("ResourceNotFoundException"), "not_found_error"),
        (503, Some("ServiceUnavailableException"), "overloaded_error"),
        (500, None, "api_error"),
        (400, None, "invalid_request_error"),
    ];
    for (status, header, kind) in cases {
        let mut t = prep_with(ClientApi::AnthropicMessages, BedrockApi::Auto, CLAUDE, body, &[]).unwrap().translator;
        assert_eq!(t.on_headers(status, Some("application/json")), BodyMode::Buffered);
        assert_eq!(t.wanted_response_header(), Some("x-amzn-errortype"));
        if let Some(h) = header {
            t.on_response_header(h);
        }
        let out = t.translate_body(br#"{"message":"nope"}"#).unwrap().unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v, json!({"type": "error", "error": {"type": kind, "message": "nope"}}), "{status} {header:?}");
    }
    // An Anthropic-shaped error passes as it is; an unreadable body is not echoed.
    let mut t = prep_with(ClientApi::AnthropicMessages, BedrockApi::Auto, CLAUDE, body, &[]).unwrap().translator;
    t.on_headers(400, Some("application/json"));
    assert_eq!(
        t.translate_body(br#"{"type":"error","error":{"type":"invalid_request_error","message":"x"}}"#).unwrap(),
        None
    );
    let mut t = prep_with(ClientApi::AnthropicMessages, BedrockApi::Auto, CLAUDE, body, &[]).unwrap().translator;
    t.on_headers(502, Some("text/html"));
    let v: Value = serde_json::from_slice(&t.translate_body(b"<html>secret</html>").unwrap().unwrap()).unwrap();
    assert_eq!(v["error"]["type"], "api_error");
    assert!(!v.to_string().contains("secret"));
}

/// The events of a recorded Anthropic SSE body.
fn recorded_events(name: &str) -> Vec<SseEvent> {
    let doc = fixture(name);
    let body = doc["interactions"][0]["response"]["body"]["string"].as_str().unwrap().to_owned();
    let mut framer = SseFramer::default();
    let mut events = Vec::new();
    framer.push(body.as_bytes(), &mut events).unwrap();
    framer.finish(&mut events);
    events
}

fn chunk_frame(json: &str) -> Vec<u8> {
    let payload = json!({"bytes": base64::encode(json.as_bytes()), "p": "abcdefghij"}).to_string();
    encode_message(
        &[
            (":event-type", HeaderValue::String("chunk".into())),
            (":content-type", HeaderValue::String("application/json".into())),
            (":message-type", HeaderValue::String("event".into())),
        ],
        payload.as_bytes(),
    )
}

fn stream_prep() -> PreparedRequest {
    let body =
        r#"{"model":"claude-sonnet-4-5","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    messages(body, &[])
}

fn run_stream(bytes: &[u8], step: usize) -> (String, TokenUsage, Option<String>) {
    let mut t = stream_prep().translator;
    assert_eq!(t.on_headers(200, Some(EVENT_STREAM_CONTENT_TYPE)), BodyMode::Streaming);
    assert_eq!(t.content_type(), Some("text/event-stream"));
    let pieces: Vec<&[u8]> = bytes.chunks(step.max(1)).collect();
    let mut out = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        out.extend(t.translate_chunk(piece, i + 1 == pieces.len()));
    }
    (String::from_utf8(out).unwrap(), t.usage(), t.response_model().map(str::to_owned))
}

#[test]
fn recorded_anthropic_stream_survives_the_event_stream_round_trip() {
    let events = recorded_events("anthropic/test_anthropic_model_thinking_part_stream.yaml");
    assert!(events.len() > 5);
    let mut bytes = Vec::new();
    let mut expected = String::new();
    let mut passthrough = UsageReader::default();
    let mut provider_model = None;
    for event in &events {
        bytes.extend(chunk_frame(&event.data));
        let kind = event.event.clone().unwrap();
        let data = if kind == "message_start" {
            let v: Value = serde_json::from_str(&event.data).unwrap();
            let m = v["message"]["model"].as_str().unwrap().to_owned();
            let replaced = event.data.replacen(&format!("\"model\":\"{m}\""), "\"model\":\"claude-sonnet-4-5\"", 1);
            provider_model = Some(m);
            replaced
        } else {
            event.data.clone()
        };
        expected.push_str(&format!("event: {kind}\ndata: {data}\n\n"));
        passthrough.read_event(&event.data);
    }
    assert!(expected.contains("signature_delta") && expected.contains("thinking_delta"));
    for step in [1, 7, 64, 1000, bytes.len()] {
        let (out, usage, model) = run_stream(&bytes, step);
        assert_eq!(out, expected, "step {step}");
        assert_eq!(usage, passthrough.usage(), "step {step}");
        assert_eq!(model, provider_model, "step {step}");
    }
}

#[test]
fn stream_exceptions_corruption_and_truncation_end_with_an_error_event() {
    let start = chunk_frame(r#"{"type":"message_start","message":{"model":"claude-x","usage":{"input_tokens":3}}}"#);
    let delta = chunk_frame(r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#);
    let throttled = encode_message(
        &[
            (":message-type", HeaderValue::String("exception".into())),
            (":exception-type", HeaderValue::String("throttlingException".into())),
        ],
        br#"{"message":"Too many tokens"}"#,
    );
    let errors = |s: &str| -> Vec<Value> {
        s.split("\n\n")
            .filter(|e| e.starts_with("event: error"))
            .map(|e| serde_json::from_str(e.split("data: ").nth(1).unwrap()).unwrap())
            .collect()
    };
    let mut bytes = [start.clone(), delta.clone(), throttled].concat();
    bytes.extend(delta.clone()); // ignored after the error
    let (out, usage, _) = run_stream(&bytes, 5);
    assert!(out.starts_with("event: message_start\n") && out.contains("\"model\":\"claude-sonnet-4-5\""), "{out}");
    assert_eq!(
        errors(&out),
        vec![json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Too many tokens"}})]
    );
    assert_eq!(out.matches("text_delta").count(), 1);
    assert_eq!(usage.input, 3);

    let mut corrupt = [start.clone(), delta.clone()].concat();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xFF;
    let (out, _, _) = run_stream(&corrupt, 3);
    assert_eq!(errors(&out)[0]["error"]["type"], "api_error");

    let (out, _, _) = run_stream(&[start.clone(), delta.clone()].concat(), 11);
    assert_eq!(errors(&out).len(), 1, "cut before message_stop: {out}");
    let stop = chunk_frame(r#"{"type":"message_stop"}"#);
    let (out, _, _) = run_stream(&[start.clone(), delta.clone(), stop].concat(), 11);
    assert!(errors(&out).is_empty() && out.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
    let not_base64 = encode_message(
        &[(":event-type", HeaderValue::String("chunk".into())), (":message-type", HeaderValue::String("event".into()))],
        br#"{"bytes":"@@@"}"#,
    );
    let (out, _, _) = run_stream(&[start, not_base64].concat(), 100);
    assert_eq!(errors(&out).len(), 1);
}

#[test]
fn chat_clients_on_claude_use_invoke_and_get_openai_answers() {
    let body = br#"{"model":"gpt-alias","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],"max_tokens":100,"stream":true,"stream_options":{"include_usage":true}}"#;
    let p = prep_with(ClientApi::OpenAiChat, BedrockApi::Auto, CLAUDE, body, &[]).unwrap();
    assert!(p.path.ends_with("/invoke-with-response-stream"));
    let sent: Value = serde_json::from_slice(p.body.as_deref().unwrap()).unwrap();
    assert_eq!(sent["anthropic_version"], ANTHROPIC_VERSION);
    assert!(sent.get("model").is_none() && sent.get("stream").is_none());
    assert_eq!(sent["system"], "be brief");
    let mut t = p.translator;
    assert_eq!(t.on_headers(200, Some(EVENT_STREAM_CONTENT_TYPE)), BodyMode::Streaming);
    let mut bytes = Vec::new();
    for e in [
        r#"{"type":"message_start","message":{"id":"msg_1","model":"claude-x","role":"assistant","content":[],"usage":{"input_tokens":5,"output_tokens":1}}}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}"#,
        r#"{"type":"message_stop"}"#,
    ] {
        bytes.extend(chunk_frame(e));
    }
    let out = String::from_utf8(t.translate_chunk(&bytes, true)).unwrap();
    assert!(out.contains("\"content\":\"Hello\"") && out.ends_with("data: [DONE]\n\n"), "{out}");
    assert_eq!((t.usage().input, t.usage().output), (5, 2));
    assert_eq!(t.response_model(), Some("claude-x"));

    let json_body = br#"{"model":"gpt-alias","messages":[{"role":"user","content":"hi"}]}"#;
    let mut t = prep_with(ClientApi::OpenAiChat, BedrockApi::Auto, CLAUDE, json_body, &[]).unwrap().translator;
    t.on_headers(429, Some("application/json"));
    t.on_response_header("ThrottlingException");
    let v: Value = serde_json::from_slice(&t.translate_body(br#"{"message":"slow"}"#).unwrap().unwrap()).unwrap();
    assert_eq!(v["error"]["type"], "rate_limit_error");
    // With `converse`, Chat clients stay on Converse.
    let p = prep_with(ClientApi::OpenAiChat, BedrockApi::Converse, CLAUDE, json_body, &[]).unwrap();
    assert!(p.path.ends_with("/converse"));
}

#[test]
fn chat_tool_loop_turn_runs_without_thinking_on_invoke() {
    let body = json!({"model": "a", "reasoning_effort": "low", "max_tokens": 4000, "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"}],
        "tools": [{"type": "function", "function": {"name": "f"}}]});
    let p = prep_with(ClientApi::OpenAiChat, BedrockApi::Auto, CLAUDE, body.to_string().as_bytes(), &[]).unwrap();
    let sent: Value = serde_json::from_slice(p.body.as_deref().unwrap()).unwrap();
    assert!(sent.get("thinking").is_none());
    assert_eq!(p.dropped, vec!["thinking"]);
}

#[test]
fn count_tokens_matches_the_recordings() {
    let doc = fixture("bedrock-invoke/test_anthropic_bedrock_count_tokens_real_api.yaml");
    let interaction = &doc["interactions"][0];
    let encoded = interaction["request"]["parsed_body"]["input"]["invokeModel"]["body"].as_str().unwrap();
    let recorded: Value = serde_json::from_slice(&base64::decode(encoded.as_bytes()).unwrap()).unwrap();
    let uri = interaction["request"]["uri"].as_str().unwrap();
    let model_id = uri.split("/model/").nth(1).unwrap().split('/').next().unwrap();
    // The Anthropic count_tokens request behind it: no max_tokens, betas in the header.
    let mut client = recorded.clone();
    let obj = client.as_object_mut().unwrap();
    let betas: Vec<String> = serde_json::from_value(obj.remove("anthropic_beta").unwrap()).unwrap();
    obj.remove("anthropic_version");
    obj.remove("max_tokens");
    obj.insert("model".into(), json!("claude-sonnet-4"));
    let p = provider(BedrockApi::Auto);
    let d = Defaults { max_tokens: 4096 };
    let target = Target { provider: &p, model: model_id, defaults: &d, created_unix: 0 };
    let headers = vec![("anthropic-beta".to_owned(), betas.join(","))];
    let prepared =
        prepare_count_tokens_with_headers(serde_json::to_vec(&client).unwrap().as_slice(), &target, &headers).unwrap();
    assert_eq!(prepared.path, format!("/model/{}/count-tokens", model_id.replace(':', "%3A")));
    let sent: Value = serde_json::from_slice(prepared.body.as_deref().unwrap()).unwrap();
    let inner = sent["input"]["invokeModel"]["body"].as_str().unwrap();
    let inner: Value = serde_json::from_slice(&base64::decode(inner.as_bytes()).unwrap()).unwrap();
    assert_eq!(inner, recorded);
    let mut t = prepared.translator;
    assert_eq!(t.on_headers(200, Some("application/json")), BodyMode::Buffered);
    let answer = serde_json::to_vec(&to_json(&interaction["response"]["parsed_body"])).unwrap();
    let out: Value = serde_json::from_slice(&t.translate_body(&answer).unwrap().unwrap()).unwrap();
    assert_eq!(out, json!({"input_tokens": interaction["response"]["parsed_body"]["inputTokens"].as_u64().unwrap()}));
    assert_eq!(t.usage(), TokenUsage::default());

    let doc = fixture("bedrock-invoke/test_anthropic_bedrock_count_tokens_error.yaml");
    let interaction = &doc["interactions"][0];
    let status = interaction["response"]["status"]["code"].as_u64().unwrap() as u16;
    let message = interaction["response"]["parsed_body"]["message"].as_str().unwrap();
    let mut t = prepare_count_tokens(br#"{"model":"m","messages":[{"role":"user","content":"hello"}]}"#, &target)
        .unwrap()
        .translator;
    t.on_headers(status, Some("application/json"));
    let body = serde_json::to_vec(&to_json(&interaction["response"]["parsed_body"])).unwrap();
    let out: Value = serde_json::from_slice(&t.translate_body(&body).unwrap().unwrap()).unwrap();
    assert_eq!(out, json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}}));
    t = prepare_count_tokens(br#"{"model":"m","messages":[{"role":"user","content":"hello"}]}"#, &target)
        .unwrap()
        .translator;
    t.on_headers(200, Some("application/json"));
    assert_eq!(t.translate_body(b"{}").unwrap_err().status(), 502);

    // Thinking budgets above the default still fit; no messages is a 400 in Anthropic's words.
    let thinking = br#"{"model":"m","messages":[{"role":"user","content":"x"}],"thinking":{"type":"enabled","budget_tokens":10000}}"#;
    let sent: Value =
        serde_json::from_slice(prepare_count_tokens(thinking, &target).unwrap().body.as_deref().unwrap()).unwrap();
    let inner: Value = serde_json::from_slice(
        &base64::decode(sent["input"]["invokeModel"]["body"].as_str().unwrap().as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(inner["max_tokens"], 10001);
    for bad in [&br#"{"model":"m"}"#[..], br#"{"model":"m","messages":[]}"#, b"nope"] {
        let err = prepare_count_tokens(bad, &target).err().unwrap();
        assert_eq!(err.status(), 400);
    }
}

#[test]
fn plain_prepare_still_reaches_invoke() {
    let p = provider(BedrockApi::Auto);
    let d = Defaults::default();
    let out = prepare(
        ClientApi::AnthropicMessages,
        &Target { provider: &p, model: CLAUDE, defaults: &d, created_unix: 0 },
        br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .unwrap();
    assert!(out.path.ends_with("/invoke"));
}

#[test]
fn mid_conversation_system_turns_never_reach_bedrock_as_such() {
    let body = r#"{"model":"m","max_tokens":5,"system":"top","messages":[{"role":"user","content":"hi"},{"role":"system","content":"be brief"},{"role":"assistant","content":"ok"},{"role":"user","content":"the \"system\" word"}]}"#;
    let p = messages(body, &[("anthropic-beta", "mid-conversation-system-2026-01-01")]);
    let sent: Value = serde_json::from_slice(p.body.as_deref().unwrap()).unwrap();
    let roles: Vec<&str> = sent["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
    assert_eq!(sent["messages"][0]["content"][1]["text"], "<system-reminder>\nbe brief\n</system-reminder>");
    assert_eq!(sent["system"], "top");
    assert_eq!(p.dropped, vec![DROPPED_BETA]);
    // Without system turns, `messages` keeps its bytes even when the word appears.
    let plain = r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"a \"system\" b"}]}"#;
    let out = String::from_utf8(messages(plain, &[]).body.unwrap()).unwrap();
    assert!(out.starts_with(r#"{"max_tokens":5,"messages":[{"role":"user","content":"a \"system\" b"}],"#), "{out}");
}

#[test]
fn arbitrary_bytes_translate_the_same_however_split() {
    // The fuzz target's property on deterministic inputs: valid frames, cut and corrupted ones.
    let start = chunk_frame(r#"{"type":"message_start","message":{"model":"claude-x","usage":{"input_tokens":3}}}"#);
    let delta = chunk_frame(r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#);
    let mut seed = 0x9e37_79b9_u32;
    let mut inputs: Vec<Vec<u8>> = vec![Vec::new(), b"garbage".to_vec(), [start.clone(), delta.clone()].concat()];
    for n in 0..40 {
        let mut bytes = [start.clone(), delta.clone(), start.clone()].concat();
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let at = (seed as usize) % bytes.len();
        if n % 2 == 0 {
            bytes[at] ^= (seed >> 24) as u8 | 1;
        } else {
            bytes.truncate(at);
        }
        inputs.push(bytes);
    }
    for bytes in inputs {
        let whole = run_stream(&bytes, bytes.len().max(1));
        for step in [1, 3, 16] {
            assert_eq!(run_stream(&bytes, step), whole);
        }
    }
}
