//! `POST /v1/responses` through `translate::prepare`: the OpenAI/Azure passthrough keeps every
//! byte but `model` and reads usage from the recorded answers; Anthropic, Bedrock (InvokeModel
//! and Converse) and Gemini get the translated request and give Responses answers; Claude's
//! signed thinking goes out in `encrypted_content` and comes back to Claude, another family's
//! is dropped; stateless rules, hosted tools, counting; and any split of a translated stream
//! completes as the JSON translation of the same provider answer.

use std::path::PathBuf;

use gateway_core::config::{
    AzureSettings, AzureUrlForm, BedrockApi, BedrockSettings, Defaults, HostedTools, ProviderConfig, ProviderKind,
    ProviderSettings, ResponsesSettings,
};
use gateway_core::sse::{SseEvent, SseFramer};
use gateway_core::translate::{prepare, BodyMode, ClientApi, PreparedRequest, ResponseTranslator, Target};
use proptest::prelude::*;
use serde_json::{json, Value};

const CLAUDE_BEDROCK: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";

fn provider(kind: ProviderKind) -> ProviderConfig {
    let mut settings = ProviderSettings::default();
    match kind {
        ProviderKind::Bedrock => {
            settings.bedrock = Some(BedrockSettings { region: "us-east-1".into(), api: BedrockApi::Auto })
        }
        ProviderKind::AzureOpenai => {
            settings.azure =
                Some(AzureSettings { url_form: AzureUrlForm::Deployment, api_version: Some("2024-10-21".into()) })
        }
        _ => {}
    }
    ProviderConfig { name: "p".into(), kind, cluster: "c".into(), credential: None, path_prefix: None, settings }
}

fn prep_at(
    p: &ProviderConfig,
    api: ClientApi,
    model: &str,
    body: &[u8],
) -> Result<PreparedRequest, gateway_core::error::GatewayError> {
    let d = Defaults { max_tokens: 4096 };
    prepare(api, &Target { provider: p, model, defaults: &d, created_unix: 1_700_000_000 }, body)
}

fn prep(kind: ProviderKind, model: &str, body: &Value) -> PreparedRequest {
    prep_at(&provider(kind), ClientApi::OpenAiResponses, model, body.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{body}: {e:?}"))
}

fn body_json(p: &PreparedRequest) -> Value {
    serde_json::from_slice(p.body.as_ref().unwrap()).unwrap()
}

fn recordings(folder: &str) -> Vec<(PathBuf, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/recorded").join(folder);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let yaml: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
            (f, serde_json::to_value(yaml).unwrap())
        })
        .collect()
}

/// (request body, status, content type, response body) of each interaction of a vcrpy file.
fn interactions(doc: &Value) -> Vec<(Value, u16, String, String)> {
    doc["interactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let req = &i["request"];
            let body = if req["parsed_body"].is_object() {
                req["parsed_body"].clone()
            } else {
                serde_json::from_str(req["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null)
            };
            let resp = &i["response"];
            let status = resp["status"]["code"].as_u64().unwrap_or(200) as u16;
            let ct = resp["headers"]["content-type"][0].as_str().unwrap_or("application/json").to_owned();
            let text = match &resp["body"] {
                Value::Object(o) if o.contains_key("string") => o["string"].as_str().unwrap_or("").to_owned(),
                Value::Object(o) if o.contains_key("parsed_body") => o["parsed_body"].to_string(),
                _ => resp["parsed_body"].to_string(),
            };
            (body, status, ct, text)
        })
        .collect()
}

fn run(t: &mut dyn ResponseTranslator, status: u16, ct: &str, body: &[u8], cuts: &[usize]) -> Vec<u8> {
    match t.on_headers(status, Some(ct)) {
        BodyMode::Buffered => t.translate_body(body).unwrap().unwrap_or_else(|| body.to_vec()),
        BodyMode::Streaming => {
            let mut out = Vec::new();
            let mut start = 0;
            for &cut in cuts.iter().filter(|c| **c > 0 && **c < body.len()) {
                if cut > start {
                    out.extend(t.translate_chunk(&body[start..cut], false));
                    start = cut;
                }
            }
            out.extend(t.translate_chunk(&body[start..], true));
            out
        }
    }
}

fn sse(bytes: &[u8]) -> Vec<(String, Value)> {
    let mut framer = SseFramer::default();
    let mut frames: Vec<SseEvent> = Vec::new();
    framer.push(bytes, &mut frames).unwrap();
    framer.finish(&mut frames);
    frames
        .into_iter()
        .filter_map(|f| serde_json::from_str(&f.data).ok().map(|v| (f.event.unwrap_or_default(), v)))
        .collect()
}

#[test]
fn openai_passthrough_keeps_every_byte_but_the_model_and_reads_recorded_usage() {
    let mut checked = 0;
    for (file, doc) in recordings("openai-responses") {
        // The count recording is checked by the e2e suite.
        if file.ends_with("test_responses_count_tokens.yaml") {
            continue;
        }
        for (request, status, ct, response) in interactions(&doc) {
            if !request.is_object() || request.get("input").is_none() {
                continue;
            }
            let body = request.to_string();
            let model = request["model"].as_str().unwrap().to_owned();
            let p = prep_at(&provider(ProviderKind::Openai), ClientApi::OpenAiResponses, &model, body.as_bytes())
                .unwrap_or_else(|e| panic!("{}: {e:?}", file.display()));
            assert_eq!(p.path, "/v1/responses");
            // Same model: nothing changes, byte for byte.
            assert_eq!(p.body.as_deref(), Some(body.as_bytes()), "{}", file.display());
            let renamed =
                prep_at(&provider(ProviderKind::Openai), ClientApi::OpenAiResponses, "gpt-x", body.as_bytes()).unwrap();
            let mut expected = request.clone();
            expected["model"] = json!("gpt-x");
            assert_eq!(body_json(&renamed), expected);
            let mut t = p.translator;
            let out = run(t.as_mut(), status, &ct, response.as_bytes(), &[7, 100, 1000]);
            assert_eq!(out, response.as_bytes(), "{}: the answer is passed on unchanged", file.display());
            if (200..300).contains(&status) {
                let usage = if ct.starts_with("text/event-stream") {
                    sse(response.as_bytes())
                        .into_iter()
                        .find(|(_, v)| v["type"] == "response.completed")
                        .map(|(_, v)| v["response"]["usage"].clone())
                        .unwrap()
                } else {
                    serde_json::from_str::<Value>(&response).unwrap()["usage"].clone()
                };
                let u = t.usage();
                assert_eq!(u.input, usage["input_tokens"].as_u64().unwrap(), "{}", file.display());
                assert_eq!(u.output, usage["output_tokens"].as_u64().unwrap());
                assert_eq!(u.cache_read, usage["input_tokens_details"]["cached_tokens"].as_u64().unwrap_or(0));
                assert_eq!(u.reasoning, usage["output_tokens_details"]["reasoning_tokens"].as_u64().unwrap_or(0));
                assert!(t.response_model().is_some());
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "only {checked} recorded answers checked");
}

#[test]
fn azure_uses_the_v1_responses_path_with_the_deployment_as_model() {
    let body = json!({"model": "gpt-5", "input": "hi", "store": true, "previous_response_id": "resp_1"});
    let p = prep(ProviderKind::AzureOpenai, "my-deployment", &body);
    assert_eq!(p.path, "/openai/v1/responses");
    assert_eq!(body_json(&p)["model"], "my-deployment");
    assert_eq!(body_json(&p)["previous_response_id"], "resp_1");
    let mut v1 = provider(ProviderKind::AzureOpenai);
    v1.settings.azure = Some(AzureSettings { url_form: AzureUrlForm::V1, api_version: Some("preview".into()) });
    let p = prep_at(&v1, ClientApi::OpenAiResponses, "d", body.to_string().as_bytes()).unwrap();
    assert_eq!(p.path, "/openai/v1/responses?api-version=preview");
    // Azure's errors come back in OpenAI's shape.
    let mut t = p.translator;
    let out =
        run(t.as_mut(), 404, "application/json", br#"{"error":{"code":"DeploymentNotFound","message":"no"}}"#, &[]);
    let err: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(err["error"]["code"], "DeploymentNotFound");
    assert!(err["error"]["type"].is_string());
}

fn codex_turn() -> Value {
    json!({
        "model": "gpt-5-codex",
        "instructions": "You are Codex.",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "<permissions>"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list files"}]}
        ],
        "tools": [
            {"type": "function", "name": "shell", "description": "Runs a command", "strict": false,
             "parameters": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}}, "required": ["command"]}},
            {"type": "web_search"}
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": false,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": false,
        "stream": true,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "abc"
    })
}

#[test]
fn a_codex_turn_becomes_a_claude_request_with_thinking_and_without_hosted_tools() {
    let p = prep(ProviderKind::Anthropic, "claude-sonnet-4-5", &codex_turn());
    assert_eq!(p.path, "/v1/messages");
    let b = body_json(&p);
    assert_eq!(b["model"], "claude-sonnet-4-5");
    assert_eq!(b["stream"], true);
    assert_eq!(
        b["system"],
        json!([{"type": "text", "text": "You are Codex."}, {"type": "text", "text": "<permissions>"}])
    );
    assert_eq!(b["messages"], json!([{"role": "user", "content": [{"type": "text", "text": "list files"}]}]));
    assert_eq!(b["tools"].as_array().unwrap().len(), 1);
    assert_eq!(b["tools"][0]["name"], "shell");
    assert_eq!(b["tool_choice"], json!({"type": "auto", "disable_parallel_tool_use": true}));
    assert_eq!(b["thinking"], json!({"type": "enabled", "budget_tokens": 4095}));
    assert!(p.dropped.contains(&"web_search"), "{:?}", p.dropped);
    assert!(p.dropped.contains(&"prompt_cache_key"));
    // store and include are ignored by design, not reported.
    assert!(!p.dropped.contains(&"store") && !p.dropped.contains(&"include"), "{:?}", p.dropped);
    assert!(p.headers.iter().any(|(k, v)| *k == "anthropic-version" && v == "2023-06-01"));
}

#[test]
fn hosted_tools_are_refused_when_the_provider_says_so() {
    let mut p = provider(ProviderKind::Anthropic);
    p.settings.responses = Some(ResponsesSettings { hosted_tools: HostedTools::Reject });
    let err = prep_at(&p, ClientApi::OpenAiResponses, "claude", codex_turn().to_string().as_bytes()).err().unwrap();
    assert_eq!(err.status(), 400);
    assert!(err.message.contains("web_search"), "{}", err.message);
    let body: Value = serde_json::from_slice(&err.to_body(ClientApi::OpenAiResponses)).unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    // OpenAI has them: never refused there.
    let mut o = provider(ProviderKind::Openai);
    o.settings.responses = Some(ResponsesSettings { hosted_tools: HostedTools::Reject });
    assert!(prep_at(&o, ClientApi::OpenAiResponses, "gpt", codex_turn().to_string().as_bytes()).is_ok());
}

#[test]
fn stored_state_is_refused_where_the_gateway_would_have_to_store_it() {
    let body = json!({"model": "m", "input": "hi", "previous_response_id": "resp_1", "store": true});
    for kind in [ProviderKind::Anthropic, ProviderKind::Bedrock, ProviderKind::Gemini] {
        let err = prep_at(&provider(kind), ClientApi::OpenAiResponses, CLAUDE_BEDROCK, body.to_string().as_bytes())
            .err()
            .unwrap();
        assert_eq!(err.status(), 400);
        assert_eq!(err.param.as_deref(), Some("previous_response_id"));
        assert!(err.message.contains("does not store conversations"), "{}", err.message);
    }
    // OpenAI keeps it: passed through.
    assert_eq!(body_json(&prep(ProviderKind::Openai, "gpt", &body))["previous_response_id"], "resp_1");
    // `store` alone is ignored elsewhere.
    let stored = json!({"model": "m", "input": "hi", "store": true});
    assert!(!prep(ProviderKind::Anthropic, "claude", &stored).dropped.contains(&"store"));
}

const THINKING_ANSWER: &str = r#"{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",
 "content":[{"type":"thinking","thinking":"I should list files.","signature":"EqQBCkgIARAB+/sig=="},
            {"type":"text","text":"Listing."},
            {"type":"tool_use","id":"toolu_01","name":"shell","input":{"command":["ls"]}}],
 "stop_reason":"tool_use","stop_sequence":null,
 "usage":{"input_tokens":100,"cache_read_input_tokens":20,"cache_creation_input_tokens":5,"output_tokens":30}}"#;

#[test]
fn claude_thinking_round_trips_through_encrypted_content_and_foreign_reasoning_is_dropped() {
    let mut body = codex_turn();
    body["stream"] = json!(false);
    let mut t = prep(ProviderKind::Anthropic, "claude-sonnet-4-5", &body).translator;
    let out = run(t.as_mut(), 200, "application/json", THINKING_ANSWER.as_bytes(), &[]);
    let r: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(r["object"], "response");
    assert_eq!(r["model"], "gpt-5-codex");
    assert_eq!(r["id"], "resp_msg_01");
    let output = r["output"].as_array().unwrap();
    assert_eq!(output[0]["type"], "reasoning");
    assert_eq!(output[0]["summary"][0]["text"], "I should list files.");
    assert_eq!(output[0]["encrypted_content"], "gw1.claude.EqQBCkgIARAB+/sig==");
    assert_eq!(output[1]["content"][0]["text"], "Listing.");
    assert_eq!(output[2]["type"], "function_call");
    assert_eq!(output[2]["call_id"], "toolu_01");
    assert_eq!(
        serde_json::from_str::<Value>(output[2]["arguments"].as_str().unwrap()).unwrap(),
        json!({"command": ["ls"]})
    );
    assert_eq!(r["usage"]["input_tokens"], 125);
    assert_eq!(r["usage"]["input_tokens_details"]["cached_tokens"], 20);
    assert_eq!(r["usage"]["output_tokens"], 30);
    let u = t.usage();
    assert_eq!((u.input, u.output, u.cache_read, u.cache_creation), (125, 30, 20, 5));
    assert_eq!(t.response_model(), Some("claude-sonnet-4-5-20250929"));

    // The next turn sends the output back with the tool's result: Claude gets its own block.
    let mut next = body.clone();
    let mut input = next["input"].as_array().unwrap().clone();
    input.extend(output.iter().cloned());
    input.push(json!({"type": "function_call_output", "call_id": "toolu_01", "output": "a.txt"}));
    next["input"] = json!(input);
    let p = prep(ProviderKind::Anthropic, "claude-sonnet-4-5", &next);
    let b = body_json(&p);
    let assistant = &b["messages"][1];
    assert_eq!(assistant["role"], "assistant");
    assert_eq!(
        assistant["content"][0],
        json!({"type": "thinking", "thinking": "I should list files.", "signature": "EqQBCkgIARAB+/sig=="})
    );
    assert_eq!(assistant["content"][2]["type"], "tool_use");
    assert_eq!(b["messages"][2]["content"][0]["type"], "tool_result");
    assert!(b["thinking"].is_object(), "thinking stays on: the tool turn carries its signature");
    assert!(!p.dropped.contains(&"reasoning"));

    // A Gemini signature, an OpenAI one, or an unreadable one never reaches Claude, and the
    // turn without a Claude signature switches thinking off instead of failing.
    for foreign in ["gw1.gemini.abc", "gAAAAB-openai-encrypted", "gw1.claude."] {
        let mut other = next.clone();
        let items = other["input"].as_array_mut().unwrap();
        for item in items.iter_mut() {
            if item["type"] == "reasoning" {
                item["encrypted_content"] = json!(foreign);
            }
        }
        let p = prep(ProviderKind::Anthropic, "claude-sonnet-4-5", &other);
        let b = body_json(&p);
        assert!(
            b["messages"][1]["content"].as_array().unwrap().iter().all(|c| c["type"] != "thinking"),
            "{foreign}: {b}"
        );
        assert!(p.dropped.contains(&"reasoning"), "{foreign}: {:?}", p.dropped);
        assert!(b.get("thinking").is_none());
        assert!(p.dropped.contains(&"thinking"));
    }
}

#[test]
fn claude_on_bedrock_invoke_gets_the_anthropic_body_and_converse_models_get_converse() {
    let p = prep(ProviderKind::Bedrock, CLAUDE_BEDROCK, &codex_turn());
    assert_eq!(p.path, "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream");
    let b = body_json(&p);
    assert_eq!(b["anthropic_version"], "bedrock-2023-05-31");
    assert!(b.get("model").is_none() && b.get("stream").is_none());
    assert_eq!(b["messages"][0]["content"][0]["text"], "list files");
    let p = prep(ProviderKind::Bedrock, "us.amazon.nova-pro-v1:0", &codex_turn());
    assert!(p.path.ends_with("/converse-stream"), "{}", p.path);
    assert!(body_json(&p)["toolConfig"]["tools"][0]["toolSpec"]["name"] == "shell");
    assert!(p.dropped.contains(&"web_search"), "{:?}", p.dropped);
    let p = prep(ProviderKind::Gemini, "gemini-2.5-flash", &codex_turn());
    assert!(p.path.contains(":streamGenerateContent"), "{}", p.path);
    assert!(p.dropped.contains(&"web_search"), "{:?}", p.dropped);
}

/// A Claude event stream as Anthropic sends it, from a whole message.
fn claude_sse(message: &Value) -> String {
    let mut out = String::new();
    let mut ev = |name: &str, v: Value| out.push_str(&format!("event: {name}\ndata: {v}\n\n"));
    let mut start = message.clone();
    start["content"] = json!([]);
    start["stop_reason"] = Value::Null;
    let usage = message["usage"].clone();
    start["usage"] = json!({"input_tokens": usage["input_tokens"], "cache_read_input_tokens": usage["cache_read_input_tokens"],
        "cache_creation_input_tokens": usage["cache_creation_input_tokens"], "output_tokens": 1});
    ev("message_start", json!({"type": "message_start", "message": start}));
    ev("ping", json!({"type": "ping"}));
    for (i, block) in message["content"].as_array().unwrap().iter().enumerate() {
        match block["type"].as_str().unwrap() {
            "text" => {
                ev(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}}),
                );
                let text = block["text"].as_str().unwrap();
                let mid = text.len() / 2;
                for piece in [&text[..mid], &text[mid..]] {
                    ev(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": piece}}),
                    );
                }
            }
            "thinking" => {
                ev(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": i, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
                );
                ev(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": i, "delta": {"type": "thinking_delta", "thinking": block["thinking"]}}),
                );
                ev(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": i, "delta": {"type": "signature_delta", "signature": block["signature"]}}),
                );
            }
            "tool_use" => {
                ev(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": i, "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}}),
                );
                let args = block["input"].to_string();
                let mid = args.len() / 2;
                for piece in [&args[..mid], &args[mid..]] {
                    ev(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": i, "delta": {"type": "input_json_delta", "partial_json": piece}}),
                    );
                }
            }
            _ => unreachable!(),
        }
        ev("content_block_stop", json!({"type": "content_block_stop", "index": i}));
    }
    ev(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": message["stop_reason"], "stop_sequence": null}, "usage": {"output_tokens": usage["output_tokens"]}}),
    );
    ev("message_stop", json!({"type": "message_stop"}));
    out
}

#[test]
fn a_streamed_claude_answer_is_the_typed_event_sequence() {
    let message: Value = serde_json::from_str(THINKING_ANSWER).unwrap();
    let stream = claude_sse(&message);
    let mut t = prep(ProviderKind::Anthropic, "claude-sonnet-4-5", &codex_turn()).translator;
    let out = run(t.as_mut(), 200, "text/event-stream", stream.as_bytes(), &[]);
    let events = sse(&out);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"response.created"));
    assert_eq!(names.last(), Some(&"response.completed"));
    for needed in [
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_text.delta",
        "response.output_text.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
    ] {
        assert!(names.contains(&needed), "{needed} missing in {names:?}");
    }
    for (i, (name, v)) in events.iter().enumerate() {
        assert_eq!(v["type"], name.as_str());
        assert_eq!(v["sequence_number"], i as u64);
    }
    assert_eq!(t.usage().input, 125);
    assert_eq!(t.usage().output, 30);
}

/// The `response` of the terminal event of a Responses stream.
fn completed(out: &[u8]) -> Value {
    sse(out)
        .into_iter()
        .find(|(n, _)| n == "response.completed" || n == "response.incomplete")
        .map(|(_, v)| v["response"].clone())
        .unwrap_or(Value::Null)
}

fn recorded_claude_stream() -> String {
    let doc = recordings("anthropic")
        .into_iter()
        .find(|(f, _)| f.ends_with("test_anthropic_model_thinking_part_stream.yaml"))
        .unwrap()
        .1;
    interactions(&doc)[0].3.clone()
}

/// The Anthropic message a Claude SSE stream describes (what the JSON answer would have been).
fn message_of(stream: &str) -> Value {
    let mut message = Value::Null;
    for (_, v) in sse(stream.as_bytes()) {
        match v["type"].as_str().unwrap_or("") {
            "message_start" => message = v["message"].clone(),
            "content_block_start" => message["content"].as_array_mut().unwrap().push(v["content_block"].clone()),
            "content_block_delta" => {
                let block = &mut message["content"][v["index"].as_u64().unwrap() as usize];
                let d = &v["delta"];
                let (key, piece) = match d["type"].as_str().unwrap() {
                    "text_delta" => ("text", d["text"].as_str().unwrap().to_owned()),
                    "thinking_delta" => ("thinking", d["thinking"].as_str().unwrap().to_owned()),
                    "signature_delta" => ("signature", d["signature"].as_str().unwrap().to_owned()),
                    "input_json_delta" => ("partial", d["partial_json"].as_str().unwrap().to_owned()),
                    _ => continue,
                };
                let old = block[key].as_str().unwrap_or("").to_owned();
                block[key] = json!(old + &piece);
            }
            "message_delta" => {
                message["stop_reason"] = v["delta"]["stop_reason"].clone();
                message["usage"]["output_tokens"] = v["usage"]["output_tokens"].clone();
            }
            _ => {}
        }
    }
    for block in message["content"].as_array_mut().unwrap() {
        if let Some(p) = block.get("partial").and_then(Value::as_str).map(str::to_owned) {
            block["input"] = serde_json::from_str(&p).unwrap();
            block.as_object_mut().unwrap().remove("partial");
        }
    }
    message
}

#[test]
fn the_recorded_claude_stream_completes_as_its_json_answer() {
    let stream = recorded_claude_stream();
    let message = message_of(&stream);
    let mut json_t = prep(ProviderKind::Anthropic, "claude", &json!({"model": "m", "input": "hi"})).translator;
    let json_out = run(json_t.as_mut(), 200, "application/json", message.to_string().as_bytes(), &[]);
    let json_answer: Value = serde_json::from_slice(&json_out).unwrap();
    assert_eq!(json_answer["output"][0]["type"], "reasoning");
    let mut t =
        prep(ProviderKind::Anthropic, "claude", &json!({"model": "m", "input": "hi", "stream": true})).translator;
    let out = run(t.as_mut(), 200, "text/event-stream", stream.as_bytes(), &[]);
    assert_eq!(completed(&out), json_answer);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the chunk boundaries, the stream the gateway writes completes as the JSON
    /// translation of the same provider answer (recorded Claude stream and a tool-calling one).
    #[test]
    fn any_split_of_a_translated_stream_completes_as_the_json_answer(
        cuts in proptest::collection::vec(0usize..6000, 0..24),
        which in 0usize..2,
    ) {
        let (stream, message) = if which == 0 {
            let s = recorded_claude_stream();
            let m = message_of(&s);
            (s, m)
        } else {
            let m: Value = serde_json::from_str(THINKING_ANSWER).unwrap();
            (claude_sse(&m), m)
        };
        let mut cuts = cuts;
        cuts.sort_unstable();
        let body = json!({"model": "m", "input": "hi"});
        let mut json_t = prep(ProviderKind::Anthropic, "claude", &body).translator;
        let json_answer: Value =
            serde_json::from_slice(&run(json_t.as_mut(), 200, "application/json", message.to_string().as_bytes(), &[])).unwrap();
        let mut streamed = body.clone();
        streamed["stream"] = json!(true);
        let mut t = prep(ProviderKind::Anthropic, "claude", &streamed).translator;
        let out = run(t.as_mut(), 200, "text/event-stream", stream.as_bytes(), &cuts);
        prop_assert_eq!(completed(&out), json_answer);
    }
}

#[test]
fn bad_input_is_a_400_in_openai_shape() {
    let cases = [
        json!({"model": "m", "input": [{"type": "function_call_output", "call_id": "nope", "output": "x"}]}),
        json!({"model": "m", "input": [{"type": "message", "role": "robot", "content": "x"}]}),
        json!({"model": "m", "input": 5}),
        json!({"model": "m", "input": "x", "tools": [{"name": "no type"}]}),
        json!({"model": "m", "input": [{"type": "reasoning", "summary": [{"type": "bogus", "text": "x"}]}]}),
        json!({"input": "x"}),
    ];
    for case in cases {
        for kind in [ProviderKind::Openai, ProviderKind::Anthropic] {
            let err = gateway_core::translate::inspect(ClientApi::OpenAiResponses, case.to_string().as_bytes())
                .err()
                .unwrap_or_else(|| panic!("{case} accepted"));
            assert_eq!(err.status(), 400, "{case}");
            let body: Value = serde_json::from_slice(&err.to_body(ClientApi::OpenAiResponses)).unwrap();
            assert_eq!(body["error"]["type"], "invalid_request_error", "{case}");
            let _ = kind;
        }
    }
    // Deep nesting is refused before any parser meets it.
    let deep = format!(r#"{{"model":"m","input":"x","metadata":{}{}}}"#, "[".repeat(200), "]".repeat(200));
    assert_eq!(
        gateway_core::translate::inspect(ClientApi::OpenAiResponses, deep.as_bytes()).err().unwrap().status(),
        400
    );
}

#[test]
fn counting_passes_through_to_openai_and_translates_for_claude() {
    let body = json!({"model": "gpt-5", "input": "Hello"});
    let p = prep_at(
        &provider(ProviderKind::Openai),
        ClientApi::OpenAiResponsesInputTokens,
        "gpt-5",
        body.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(p.path, "/v1/responses/input_tokens");
    assert_eq!(p.translator.usage().total(), 0);
    let p = prep_at(
        &provider(ProviderKind::Anthropic),
        ClientApi::OpenAiResponsesInputTokens,
        "claude",
        body.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(p.path, "/v1/messages/count_tokens");
    let b = body_json(&p);
    assert_eq!(b["model"], "claude");
    assert!(b.get("max_tokens").is_none() && b.get("stream").is_none());
    let mut t = p.translator;
    let out = run(t.as_mut(), 200, "application/json", br#"{"input_tokens":9}"#, &[]);
    assert_eq!(
        serde_json::from_slice::<Value>(&out).unwrap(),
        json!({"object": "response.input_tokens", "input_tokens": 9})
    );
    assert!(ClientApi::OpenAiResponsesInputTokens.provider_counts(&provider(ProviderKind::Openai), "x"));
    assert!(!ClientApi::OpenAiResponsesInputTokens.provider_counts(&provider(ProviderKind::Gemini), "x"));
    let estimate: Value = serde_json::from_slice(
        &ClientApi::OpenAiResponsesInputTokens.estimate_count(body.to_string().as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(estimate["object"], "response.input_tokens");
    assert!(estimate["input_tokens"].as_u64().unwrap() > 0);
}

#[test]
fn the_paths_are_responses_apis() {
    assert_eq!(ClientApi::from_path("/v1/responses"), Some(ClientApi::OpenAiResponses));
    assert_eq!(ClientApi::from_path("/v1/responses?x=1"), Some(ClientApi::OpenAiResponses));
    assert_eq!(ClientApi::from_path("/v1/responses/input_tokens"), Some(ClientApi::OpenAiResponsesInputTokens));
    assert_eq!(ClientApi::OpenAiResponses.error_shape(), gateway_core::error::ErrorShape::OpenAi);
    assert!(ClientApi::OpenAiResponsesInputTokens.counts_tokens() && !ClientApi::OpenAiResponses.counts_tokens());
    let a = gateway_core::accounting::requested_output(br#"{"model":"m","max_output_tokens":77}"#);
    assert_eq!(a.max_tokens, Some(77));
}

#[test]
fn free_form_tools_become_one_string_functions_on_claude_and_come_back_raw() {
    let body = json!({"model": "m", "input": "patch it", "tools": [{"type": "custom", "name": "apply_patch", "description": "Applies a patch"}]});
    let p = prep(ProviderKind::Anthropic, "claude", &body);
    let b = body_json(&p);
    assert_eq!(b["tools"][0]["name"], "apply_patch");
    assert_eq!(b["tools"][0]["input_schema"]["required"], json!(["input"]));
    let answer = json!({"id": "msg_2", "type": "message", "role": "assistant", "model": "c", "stop_reason": "tool_use",
        "content": [{"type": "tool_use", "id": "toolu_9", "name": "apply_patch", "input": {"input": "*** Begin Patch\n*** End Patch"}}],
        "usage": {"input_tokens": 5, "output_tokens": 7}});
    let mut t = p.translator;
    let r: Value =
        serde_json::from_slice(&run(t.as_mut(), 200, "application/json", answer.to_string().as_bytes(), &[])).unwrap();
    assert_eq!(r["output"][0]["type"], "custom_tool_call");
    assert_eq!(r["output"][0]["input"], "*** Begin Patch\n*** End Patch");
    // Streamed, the wrapped JSON arrives in pieces and still comes back as the raw text.
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let mut t = prep(ProviderKind::Anthropic, "claude", &streamed).translator;
    let out = run(t.as_mut(), 200, "text/event-stream", claude_sse(&answer).as_bytes(), &[3, 50, 400]);
    assert_eq!(completed(&out)["output"][0]["input"], "*** Begin Patch\n*** End Patch");
    // The call sent back reaches Claude wrapped again.
    let next = json!({"model": "m", "tools": body["tools"], "input": [
        {"role": "user", "content": "patch it"},
        {"type": "custom_tool_call", "call_id": "toolu_9", "name": "apply_patch", "input": "*** Begin Patch\n*** End Patch"},
        {"type": "custom_tool_call_output", "call_id": "toolu_9", "output": "Done"}]});
    let b = body_json(&prep(ProviderKind::Anthropic, "claude", &next));
    assert_eq!(b["messages"][1]["content"][0]["input"], json!({"input": "*** Begin Patch\n*** End Patch"}));
    assert_eq!(b["messages"][2]["content"][0]["tool_use_id"], "toolu_9");
}

#[test]
fn claude_errors_reach_the_client_in_openai_shape_and_a_cut_stream_fails_the_response() {
    let mut t = prep(ProviderKind::Anthropic, "claude", &json!({"model": "m", "input": "hi"})).translator;
    let out = run(
        t.as_mut(),
        400,
        "application/json",
        br#"{"type":"error","error":{"type":"invalid_request_error","message":"messages.1.content.0: Invalid `signature` in `thinking` block"}}"#,
        &[],
    );
    let err: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert!(err["error"]["message"].as_str().unwrap().contains("Invalid `signature`"));
    // A stream that stops before message_stop ends in `error` and `response.failed`.
    let message: Value = serde_json::from_str(THINKING_ANSWER).unwrap();
    let stream = claude_sse(&message);
    let cut = &stream[..stream.len() / 2];
    let mut t =
        prep(ProviderKind::Anthropic, "claude", &json!({"model": "m", "input": "hi", "stream": true})).translator;
    let events = sse(&run(t.as_mut(), 200, "text/event-stream", cut.as_bytes(), &[]));
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(&names[names.len() - 2..], ["error", "response.failed"]);
}

#[test]
fn counting_on_bedrock_claude_and_azure() {
    let body = json!({"model": "m", "input": "Hello", "instructions": "Be brief."});
    let p = prep_at(
        &provider(ProviderKind::Bedrock),
        ClientApi::OpenAiResponsesInputTokens,
        CLAUDE_BEDROCK,
        body.to_string().as_bytes(),
    )
    .unwrap();
    assert!(p.path.ends_with("/count-tokens"), "{}", p.path);
    let sent = body_json(&p);
    let inner = sent["input"]["invokeModel"]["body"].as_str().unwrap();
    use base64::Engine;
    let invoke: Value =
        serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(inner).unwrap()).unwrap();
    assert_eq!(invoke["system"], json!([{"type": "text", "text": "Be brief."}]));
    assert_eq!(invoke["anthropic_version"], "bedrock-2023-05-31");
    let mut t = p.translator;
    let out = run(t.as_mut(), 200, "application/json", br#"{"inputTokens":12}"#, &[]);
    assert_eq!(serde_json::from_slice::<Value>(&out).unwrap()["input_tokens"], 12);
    let p = prep_at(
        &provider(ProviderKind::AzureOpenai),
        ClientApi::OpenAiResponsesInputTokens,
        "dep",
        body.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(p.path, "/openai/v1/responses/input_tokens");
    assert_eq!(body_json(&p)["model"], "dep");
}

/// The downstream filter reuses what inspecting decoded for a direct route's attempt: the
/// provider request must be exactly the one a fresh decode gives, for every target kind, every
/// recorded Responses request, and the refusals (stored state, hosted tools) must still happen.
#[test]
fn preparing_from_the_inspected_decode_is_byte_identical_to_preparing_from_the_body() {
    use gateway_core::translate::{inspect_keeping, prepare_parsed};
    let mut bodies: Vec<Value> = vec![codex_turn()];
    for (_, doc) in recordings("openai-responses") {
        for (request, _, _, _) in interactions(&doc) {
            if request.is_object() && request.get("model").is_some() {
                bodies.push(request);
            }
        }
    }
    bodies.push(json!({"model": "m", "input": "hi", "previous_response_id": "resp_1"}));
    bodies.push(json!({"model": "m", "input": "hi", "tools": [{"type": "web_search"}]}));
    let d = Defaults { max_tokens: 4096 };
    let mut compared = 0;
    for kind in [ProviderKind::Anthropic, ProviderKind::Bedrock, ProviderKind::Gemini, ProviderKind::Openai] {
        let p = provider(kind);
        let model = match kind {
            ProviderKind::Bedrock => CLAUDE_BEDROCK,
            ProviderKind::Gemini => "gemini-2.5-flash",
            _ => "target-model",
        };
        let target = Target { provider: &p, model, defaults: &d, created_unix: 1_700_000_000 };
        for body in &bodies {
            let bytes = body.to_string();
            let Ok((_, parsed)) = inspect_keeping(ClientApi::OpenAiResponses, bytes.as_bytes()) else { continue };
            let fresh = prepare(ClientApi::OpenAiResponses, &target, bytes.as_bytes());
            let reused = prepare_parsed(ClientApi::OpenAiResponses, &target, bytes.as_bytes(), &[], parsed);
            match (fresh, reused) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(
                        (&a.path, &a.body, &a.headers, &a.dropped),
                        (&b.path, &b.body, &b.headers, &b.dropped),
                        "{kind:?} {body}"
                    );
                    compared += 1;
                }
                (Err(a), Err(b)) => assert_eq!((a.status(), a.message), (b.status(), b.message), "{kind:?} {body}"),
                (a, b) => panic!("{kind:?} {body}: fresh {:?} but reused {:?}", a.err(), b.err()),
            }
        }
    }
    assert!(compared >= 8, "only {compared} requests compared");
}
