//! Golden tests for Anthropic Messages clients served by Bedrock Converse, through the
//! conversation model (`translate::messages_via_model`: the Converse decoder and the Anthropic
//! encoder joined by a `Bridge`). Every recorded Converse answer (`fixtures/recorded/bedrock`:
//! Converse JSON, ConverseStream binary event stream, errors) must reach the Anthropic client
//! with the recording's text, thinking blocks with their exact signatures (`signature_delta` in
//! streams), tool calls, stop reason and usage as Anthropic itself reports it: `input_tokens` is
//! Converse's `inputTokens` (which, like Anthropic's, excludes the cache; see
//! [`converse_usage_convention_is_the_anthropic_one`]), `cache_creation_input_tokens` and
//! `cache_read_input_tokens` carry the cache writes and reads. The answer names the model the
//! client asked for; the Bedrock id stays in `response_model()` for logs. Every stream also goes
//! through split at random offsets and must translate to the same bytes, and every stream is
//! also assembled here into the equivalent Converse JSON answer, which must give the same outcome.
//! Expected values come from the recordings through an independent frame parser here.
//!
//! Left out, by a named rule: **ConverseEndpointOnly** ([`Interaction::is_converse`]): the
//! `test_bedrock_count_tokens_*` exchanges are Bedrock `/model/{id}/count-tokens` calls (body
//! `{"input": {"converse": ...}}`, answer `{"inputTokens": N}`): the Messages translator never
//! sends one, so their answers are no input for it (count_tokens has its own handler).

use base64::Engine;
use gateway_core::config::{BedrockApi, BedrockSettings, Defaults, ProviderConfig, ProviderKind, ProviderSettings};
use gateway_core::translate::{prepare, BodyMode, ClientApi, ResponseTranslator, Target};
use gateway_core::usage::TokenUsage;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

struct Interaction {
    name: String,
    path: String,
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Interaction {
    fn is_stream(&self) -> bool {
        self.content_type.starts_with("application/vnd.amazon.eventstream")
    }

    /// Rule ConverseEndpointOnly: a Converse or ConverseStream call (not `count-tokens`).
    fn is_converse(&self) -> bool {
        self.path.ends_with("/converse") || self.path.ends_with("/converse-stream")
    }
}

fn fixtures_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/recorded/bedrock")
}

/// YAML → JSON. serde_yaml drops the `!!binary` tag and keeps the base64 text as a string, so
/// binary bodies are decoded by the caller, which knows (from the content type) they are binary.
fn to_json(v: &serde_yaml::Value) -> Value {
    match v {
        serde_yaml::Value::Tagged(t) => to_json(&t.value),
        serde_yaml::Value::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                out.insert(k.as_str().map(str::to_owned).unwrap_or_else(|| format!("{k:?}")), to_json(v));
            }
            Value::Object(out)
        }
        serde_yaml::Value::Sequence(s) => Value::Array(s.iter().map(to_json).collect()),
        other => serde_json::to_value(other).unwrap(),
    }
}

fn bytes_of(v: &Value, binary: bool) -> Vec<u8> {
    match v {
        Value::String(s) if binary => {
            let text: String = s.chars().filter(|c| !c.is_whitespace()).collect();
            base64::engine::general_purpose::STANDARD.decode(text).unwrap()
        }
        Value::String(s) => s.clone().into_bytes(),
        Value::Null => Vec::new(),
        other => panic!("unexpected body {other}"),
    }
}

fn load() -> Option<Vec<Interaction>> {
    let dir = fixtures_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("SKIPPED: recorded fixtures not found at {}", dir.display());
        return None;
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let yaml: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let doc = to_json(&yaml);
        let file_name = file.file_name().unwrap().to_string_lossy().into_owned();
        for (n, i) in doc["interactions"].as_array().unwrap().iter().enumerate() {
            let response = &i["response"];
            let content_type = response["headers"]["content-type"][0].as_str().unwrap_or("").to_owned();
            let binary = content_type.starts_with("application/vnd.amazon.eventstream");
            let body = match &response["parsed_body"] {
                Value::Null => bytes_of(&response["body"]["string"], binary),
                parsed => serde_json::to_vec(parsed).unwrap(),
            };
            let uri = i["request"]["uri"].as_str().unwrap();
            let path = uri.splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap();
            out.push(Interaction {
                name: format!("{file_name}#{n}"),
                path,
                status: response["status"]["code"].as_u64().unwrap() as u16,
                content_type,
                body,
            });
        }
    }
    assert!(out.len() >= 8, "expected the recorded Bedrock interactions, found {}", out.len());
    Some(out)
}

fn percent_decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The model id of a recorded path `/model/{id}/converse[-stream]`.
fn model_of(path: &str) -> String {
    percent_decode(path.trim_start_matches("/model/").rsplit_once('/').unwrap().0)
}

fn provider() -> ProviderConfig {
    ProviderConfig {
        name: "bedrock".into(),
        kind: ProviderKind::Bedrock,
        cluster: "c".into(),
        credential: None,
        path_prefix: None,
        settings: ProviderSettings {
            bedrock: Some(BedrockSettings { region: "us-east-1".into(), api: BedrockApi::Converse }),
            ..Default::default()
        },
    }
}

/// The model the Anthropic client asks for (an alias, not the Bedrock id).
const CLIENT_MODEL: &str = "claude-sonnet-4-5";

/// What an Anthropic client ends up knowing about an answer.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    text: String,
    /// (thinking text, signature) per thinking block, in order; `""` when the provider signed nothing.
    thinking: Vec<(String, String)>,
    /// `data` of each `redacted_thinking` block.
    redacted: Vec<String>,
    /// (id, name, input), in order.
    tool_calls: Vec<(String, String, Value)>,
    stop_reason: Option<String>,
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
}

/// Bedrock stop reason → Anthropic stop reason, written out apart from the translator.
fn expected_stop(stop: &str) -> &'static str {
    match stop {
        "end_turn" => "end_turn",
        "stop_sequence" => "stop_sequence",
        "max_tokens" => "max_tokens",
        "tool_use" => "tool_use",
        "guardrail_intervened" | "content_filtered" => "refusal",
        "model_context_window_exceeded" => "model_context_window_exceeded",
        other => panic!("stop reason {other} missing from the test table"),
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Converse usage as Anthropic reports it: the same four numbers, each in its own field.
fn set_usage(o: &mut Outcome, usage: &Value) {
    o.input_tokens = u(&usage["inputTokens"]);
    o.cache_creation_input_tokens = u(&usage["cacheWriteInputTokens"]);
    o.cache_read_input_tokens = u(&usage["cacheReadInputTokens"]);
    o.output_tokens = u(&usage["outputTokens"]);
}

fn expected_from_json(body: &[u8]) -> Outcome {
    let r: Value = serde_json::from_slice(body).unwrap();
    let mut o = Outcome::default();
    for b in r["output"]["message"]["content"].as_array().unwrap() {
        if let Some(t) = b["text"].as_str() {
            o.text.push_str(t);
        }
        if let Some(t) = b.get("toolUse") {
            o.tool_calls.push((
                t["toolUseId"].as_str().unwrap().into(),
                t["name"].as_str().unwrap().into(),
                t["input"].clone(),
            ));
        }
        if let Some(r) = b.get("reasoningContent") {
            if let Some(data) = r["redactedContent"].as_str() {
                o.redacted.push(data.into());
            } else {
                let t = &r["reasoningText"];
                o.thinking.push((t["text"].as_str().unwrap().into(), t["signature"].as_str().unwrap_or("").into()));
            }
        }
    }
    o.stop_reason = Some(expected_stop(r["stopReason"].as_str().unwrap()).into());
    set_usage(&mut o, &r["usage"]);
    o
}

/// A deliberately simple frame walker (no CRC checks): (event type, payload JSON).
fn frames(body: &[u8]) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < body.len() {
        let total = u32::from_be_bytes(body[i..i + 4].try_into().unwrap()) as usize;
        let hlen = u32::from_be_bytes(body[i + 4..i + 8].try_into().unwrap()) as usize;
        let headers = &body[i + 12..i + 12 + hlen];
        let mut event = String::new();
        let mut j = 0;
        while j < headers.len() {
            let n = headers[j] as usize;
            let name = std::str::from_utf8(&headers[j + 1..j + 1 + n]).unwrap();
            j += 1 + n;
            assert_eq!(headers[j], 7, "recordings only use string headers");
            let len = u16::from_be_bytes([headers[j + 1], headers[j + 2]]) as usize;
            let value = std::str::from_utf8(&headers[j + 3..j + 3 + len]).unwrap();
            j += 3 + len;
            if name == ":event-type" {
                event = value.to_owned();
            }
        }
        out.push((event, serde_json::from_slice(&body[i + 12 + hlen..i + total - 4]).unwrap()));
        i += total;
    }
    out
}

/// One content block of a recorded stream, assembled from its deltas.
#[derive(Debug, Clone)]
enum StreamBlock {
    Text(String),
    /// (text, signature).
    Reasoning(String, Option<String>),
    Redacted(String),
    /// (id, name, input JSON text).
    Tool(String, String, String),
}

/// The recorded stream as (blocks in index order, stop reason, usage).
fn stream_parts(body: &[u8]) -> (Vec<StreamBlock>, Option<String>, Value) {
    let mut blocks: Vec<(u64, StreamBlock)> = Vec::new();
    let (mut stop, mut usage) = (None, Value::Null);
    fn slot(blocks: &mut Vec<(u64, StreamBlock)>, index: u64, new: StreamBlock) -> &mut StreamBlock {
        if !blocks.iter().any(|(i, _)| *i == index) {
            blocks.push((index, new));
        }
        &mut blocks.iter_mut().find(|(i, _)| *i == index).unwrap().1
    }
    for (event, p) in frames(body) {
        let index = u(&p["contentBlockIndex"]);
        match event.as_str() {
            "contentBlockStart" => {
                if let Some(t) = p["start"].get("toolUse") {
                    let tool = StreamBlock::Tool(
                        t["toolUseId"].as_str().unwrap().into(),
                        t["name"].as_str().unwrap().into(),
                        String::new(),
                    );
                    slot(&mut blocks, index, tool);
                }
            }
            "contentBlockDelta" => {
                let d = &p["delta"];
                if let Some(t) = d["text"].as_str() {
                    let StreamBlock::Text(s) = slot(&mut blocks, index, StreamBlock::Text(String::new())) else {
                        panic!("text delta in another block")
                    };
                    s.push_str(t);
                }
                if let Some(r) = d.get("reasoningContent") {
                    if let Some(data) = r["redactedContent"].as_str() {
                        slot(&mut blocks, index, StreamBlock::Redacted(data.into()));
                        continue;
                    }
                    let StreamBlock::Reasoning(text, signature) =
                        slot(&mut blocks, index, StreamBlock::Reasoning(String::new(), None))
                    else {
                        panic!("reasoning delta in another block")
                    };
                    text.push_str(r["text"].as_str().unwrap_or(""));
                    if let Some(s) = r["signature"].as_str() {
                        *signature = Some(s.into());
                    }
                }
                if let Some(t) = d["toolUse"]["input"].as_str() {
                    let StreamBlock::Tool(_, _, args) = slot(&mut blocks, index, StreamBlock::Text(String::new()))
                    else {
                        panic!("tool input delta outside a tool block")
                    };
                    args.push_str(t);
                }
            }
            "messageStop" => stop = Some(p["stopReason"].as_str().unwrap().to_owned()),
            "metadata" => usage = p["usage"].clone(),
            _ => {}
        }
    }
    blocks.sort_by_key(|(i, _)| *i);
    (blocks.into_iter().map(|(_, b)| b).collect(), stop, usage)
}

fn outcome_of_blocks(blocks: &[StreamBlock], stop: Option<&str>, usage: &Value) -> Outcome {
    let mut o = Outcome::default();
    for b in blocks {
        match b {
            StreamBlock::Text(t) => o.text.push_str(t),
            StreamBlock::Reasoning(t, s) => o.thinking.push((t.clone(), s.clone().unwrap_or_default())),
            StreamBlock::Redacted(d) => o.redacted.push(d.clone()),
            StreamBlock::Tool(id, name, args) => {
                o.tool_calls.push((id.clone(), name.clone(), serde_json::from_str(args).unwrap_or(json!({}))))
            }
        }
    }
    o.stop_reason = stop.map(|s| expected_stop(s).into());
    set_usage(&mut o, usage);
    o
}

fn expected_from_stream(body: &[u8]) -> Outcome {
    let (blocks, stop, usage) = stream_parts(body);
    outcome_of_blocks(&blocks, stop.as_deref(), &usage)
}

/// The Converse JSON answer equivalent to a recorded stream (Converse's documented non-stream
/// shapes: `reasoningContent.reasoningText {text, signature}`, `redactedContent`, `toolUse`), so
/// the recorded thinking and signatures also go through the JSON path.
fn converse_json_of_stream(body: &[u8]) -> Vec<u8> {
    let (blocks, stop, usage) = stream_parts(body);
    let content: Vec<Value> = blocks
        .iter()
        .map(|b| match b {
            StreamBlock::Text(t) => json!({"text": t}),
            StreamBlock::Reasoning(t, None) => json!({"reasoningContent": {"reasoningText": {"text": t}}}),
            StreamBlock::Reasoning(t, Some(s)) => {
                json!({"reasoningContent": {"reasoningText": {"text": t, "signature": s}}})
            }
            StreamBlock::Redacted(d) => json!({"reasoningContent": {"redactedContent": d}}),
            StreamBlock::Tool(id, name, args) => json!({"toolUse": {"toolUseId": id, "name": name,
                "input": serde_json::from_str::<Value>(args).unwrap_or(json!({}))}}),
        })
        .collect();
    json!({"output": {"message": {"role": "assistant", "content": content}}, "stopReason": stop, "usage": usage,
           "metrics": {"latencyMs": 1}})
    .to_string()
    .into_bytes()
}

fn usage_into(o: &mut Outcome, usage: &Value) {
    for (field, slot) in [
        ("input_tokens", &mut o.input_tokens),
        ("cache_creation_input_tokens", &mut o.cache_creation_input_tokens),
        ("cache_read_input_tokens", &mut o.cache_read_input_tokens),
        ("output_tokens", &mut o.output_tokens),
    ] {
        if let Some(n) = usage[field].as_u64() {
            *slot = n;
        }
    }
}

fn outcome_of_message(v: &Value) -> Outcome {
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], CLIENT_MODEL, "the answer names the model the client asked for");
    assert!(v["id"].as_str().is_some_and(|id| id.starts_with("msg_")), "{}", v["id"]);
    let mut o = Outcome::default();
    for b in v["content"].as_array().unwrap() {
        match b["type"].as_str().unwrap() {
            "text" => o.text.push_str(b["text"].as_str().unwrap()),
            "thinking" => o.thinking.push((
                b["thinking"].as_str().unwrap().into(),
                b["signature"].as_str().expect("a thinking block always has a signature string").into(),
            )),
            "redacted_thinking" => o.redacted.push(b["data"].as_str().unwrap().into()),
            "tool_use" => o.tool_calls.push((
                b["id"].as_str().unwrap().into(),
                b["name"].as_str().unwrap().into(),
                b["input"].clone(),
            )),
            other => panic!("unexpected block {other}"),
        }
    }
    o.stop_reason = v["stop_reason"].as_str().map(Into::into);
    for field in ["input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens"] {
        assert!(v["usage"][field].is_u64(), "usage.{field} is always reported, as Anthropic does");
    }
    usage_into(&mut o, &v["usage"]);
    o
}

/// Anthropic SSE → outcome the way the Anthropic SDK accumulates it, checking the event grammar
/// on the way: consecutive block indexes, every block started before its deltas and stopped
/// once, signatures only through `signature_delta` on a thinking block.
fn outcome_of_sse(out: &[u8]) -> Outcome {
    let text = std::str::from_utf8(out).unwrap();
    let mut o = Outcome::default();
    // (type, id, name, text or json, signature, stopped)
    let mut blocks: Vec<(String, String, String, String, String, bool)> = Vec::new();
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    let mut names = Vec::new();
    for e in &events {
        let (name_line, data_line) = e.split_once('\n').unwrap();
        let name = name_line.strip_prefix("event: ").unwrap();
        let v: Value = serde_json::from_str(data_line.strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(v["type"], name, "event name and type agree");
        names.push(name.to_owned());
        match name {
            "message_start" => {
                assert_eq!(v["message"]["model"], CLIENT_MODEL, "message_start names the client's model");
                assert!(v["message"]["id"].as_str().is_some_and(|id| id.starts_with("msg_")));
                assert_eq!(v["message"]["content"], json!([]));
                usage_into(&mut o, &v["message"]["usage"]);
            }
            "content_block_start" => {
                let b = &v["content_block"];
                assert_eq!(u(&v["index"]) as usize, blocks.len(), "block indexes are consecutive");
                let kind = b["type"].as_str().unwrap();
                let (body, signature) = match kind {
                    "text" => (b["text"].as_str().unwrap(), ""),
                    "thinking" => (b["thinking"].as_str().unwrap(), b["signature"].as_str().unwrap()),
                    "redacted_thinking" => (b["data"].as_str().unwrap(), ""),
                    "tool_use" => {
                        assert_eq!(b["input"], json!({}), "tool input comes in input_json_delta");
                        ("", "")
                    }
                    other => panic!("unexpected block {other}"),
                };
                blocks.push((
                    kind.into(),
                    b["id"].as_str().unwrap_or("").into(),
                    b["name"].as_str().unwrap_or("").into(),
                    body.into(),
                    signature.into(),
                    false,
                ));
            }
            "content_block_delta" => {
                let d = &v["delta"];
                let block = &mut blocks[u(&v["index"]) as usize];
                assert!(!block.5, "delta after content_block_stop");
                let (kind, field) = match d["type"].as_str().unwrap() {
                    "text_delta" => ("text", "text"),
                    "thinking_delta" => ("thinking", "thinking"),
                    "input_json_delta" => ("tool_use", "partial_json"),
                    "signature_delta" => {
                        assert_eq!(block.0, "thinking", "signature_delta on a thinking block");
                        assert_eq!(block.4, "", "one signature per block");
                        block.4 = d["signature"].as_str().unwrap().into();
                        continue;
                    }
                    other => panic!("unexpected delta {other}"),
                };
                assert_eq!(block.0, kind, "{} in a {} block", d["type"], block.0);
                block.3.push_str(d[field].as_str().unwrap());
            }
            "content_block_stop" => {
                let block = &mut blocks[u(&v["index"]) as usize];
                assert!(!block.5, "stopped twice");
                block.5 = true;
            }
            "message_delta" => {
                o.stop_reason = v["delta"]["stop_reason"].as_str().map(Into::into);
                usage_into(&mut o, &v["usage"]);
            }
            "error" => panic!("unexpected error event {v}"),
            _ => {}
        }
    }
    assert_eq!(names.first().map(String::as_str), Some("message_start"));
    assert_eq!(names.last().map(String::as_str), Some("message_stop"));
    assert_eq!(names.iter().filter(|n| *n == "message_delta").count(), 1);
    assert!(blocks.iter().all(|b| b.5), "every block is stopped");
    for (kind, id, name, body, signature, _) in blocks {
        match kind.as_str() {
            "text" => o.text.push_str(&body),
            "thinking" => o.thinking.push((body, signature)),
            "redacted_thinking" => o.redacted.push(body),
            _ => o.tool_calls.push((
                id,
                name,
                if body.is_empty() { json!({}) } else { serde_json::from_str(&body).unwrap() },
            )),
        }
    }
    o
}

fn translator_for(i: &Interaction) -> Box<dyn ResponseTranslator> {
    let p = provider();
    let d = Defaults { max_tokens: 4096 };
    let body = json!({"model": CLIENT_MODEL, "max_tokens": 100, "stream": i.is_stream(), "messages": [{"role": "user", "content": "hi"}]}).to_string();
    let model = model_of(&i.path);
    prepare(
        ClientApi::AnthropicMessages,
        &Target { provider: &p, model: &model, defaults: &d, created_unix: 1 },
        body.as_bytes(),
    )
    .unwrap()
    .translator
}

/// What the gateway's own accounting must hold for an outcome: every prompt token in `input`.
fn accounting(o: &Outcome) -> TokenUsage {
    TokenUsage {
        input: o.input_tokens + o.cache_creation_input_tokens + o.cache_read_input_tokens,
        output: o.output_tokens,
        cache_read: o.cache_read_input_tokens,
        cache_creation: o.cache_creation_input_tokens,
        reasoning: 0,
    }
}

#[test]
fn every_recorded_response_reaches_the_anthropic_client_with_its_content_and_usage() {
    let Some(all) = load() else { return };
    let (mut streams, mut json_answers, mut errors, mut not_converse) = (0, 0, 0, 0);
    for i in &all {
        // Rule ConverseEndpointOnly (see the module doc).
        if !i.is_converse() {
            assert!(i.path.ends_with("/count-tokens"), "{}: unexpected endpoint {}", i.name, i.path);
            not_converse += 1;
            continue;
        }
        let mut t = translator_for(i);
        let mode = t.on_headers(i.status, Some(&i.content_type));
        if i.status != 200 {
            assert_eq!(mode, BodyMode::Buffered);
            let out: Value = serde_json::from_slice(&t.translate_body(&i.body).unwrap().unwrap()).unwrap();
            let recorded: Value = serde_json::from_slice(&i.body).unwrap();
            assert_eq!(out["type"], "error", "{}", i.name);
            assert_eq!(out["error"]["message"], recorded["message"], "{}", i.name);
            assert_eq!(out["error"]["type"], "invalid_request_error", "{}", i.name);
            errors += 1;
            continue;
        }
        if i.is_stream() {
            streams += 1;
            assert_eq!(mode, BodyMode::Streaming, "{}", i.name);
            assert_eq!(t.content_type(), Some("text/event-stream"));
            let out = t.translate_chunk(&i.body, true);
            let expected = expected_from_stream(&i.body);
            assert_eq!(outcome_of_sse(&out), expected, "{}", i.name);
            assert_eq!(t.usage(), accounting(&expected), "{}", i.name);
            assert_eq!(t.response_model(), Some(model_of(&i.path).as_str()), "{}: the Bedrock id for logs", i.name);

            // The same answer as Converse JSON.
            let mut t = translator_for(i);
            assert_eq!(t.on_headers(200, Some("application/json")), BodyMode::Buffered);
            let body = converse_json_of_stream(&i.body);
            let out: Value = serde_json::from_slice(&t.translate_body(&body).unwrap().unwrap()).unwrap();
            assert_eq!(outcome_of_message(&out), expected, "{} as JSON", i.name);
            assert_eq!(t.usage(), accounting(&expected), "{}", i.name);
        } else {
            json_answers += 1;
            assert_eq!(mode, BodyMode::Buffered);
            assert_eq!(t.content_type(), Some("application/json"));
            let out: Value = serde_json::from_slice(&t.translate_body(&i.body).unwrap().unwrap()).unwrap();
            let expected = expected_from_json(&i.body);
            assert_eq!(outcome_of_message(&out), expected, "{}", i.name);
            assert_eq!(t.usage(), accounting(&expected), "{}", i.name);
            assert_eq!(t.response_model(), Some(model_of(&i.path).as_str()), "{}: the Bedrock id for logs", i.name);
        }
    }
    eprintln!("checked {json_answers} JSON, {streams} streams, {errors} errors; left out by ConverseEndpointOnly: {not_converse}");
    assert_eq!(streams, 3, "the three recorded event streams");
    assert_eq!(not_converse, 2, "the two count-tokens exchanges");
    assert!(json_answers >= 6 && errors >= 1, "{json_answers} JSON answers, {errors} errors");
}

/// The recording for `file#n`.
fn recording(all: &[Interaction], name: &str) -> Vec<u8> {
    all.iter().find(|i| i.name == name).unwrap_or_else(|| panic!("{name} missing")).body.clone()
}

/// Converse's `inputTokens` excludes cache reads and writes, exactly like Anthropic's
/// `input_tokens`: in `test_bedrock_cache_write_and_read`, `totalTokens` is the sum of the
/// input, output and cache counts. So the Anthropic client gets `inputTokens` unchanged.
#[test]
fn converse_usage_convention_is_the_anthropic_one() {
    let Some(all) = load() else { return };
    let mut seen = 0;
    for name in ["test_bedrock_cache_write_and_read.yaml#0", "test_bedrock_cache_write_and_read.yaml#1"] {
        let body = recording(&all, name);
        let recorded: Value = serde_json::from_slice(&body).unwrap();
        let usage = &recorded["usage"];
        let parts = ["inputTokens", "outputTokens", "cacheReadInputTokens", "cacheWriteInputTokens"];
        assert_eq!(u(&usage["totalTokens"]), parts.iter().map(|p| u(&usage[*p])).sum::<u64>(), "{name}");
        assert!(u(&usage["cacheReadInputTokens"]) + u(&usage["cacheWriteInputTokens"]) > u(&usage["inputTokens"]));

        let i = all.iter().find(|i| i.name == name).unwrap();
        let mut t = translator_for(i);
        t.on_headers(200, Some("application/json"));
        let out: Value = serde_json::from_slice(&t.translate_body(&body).unwrap().unwrap()).unwrap();
        assert_eq!(out["usage"]["input_tokens"], usage["inputTokens"], "{name}");
        assert_eq!(out["usage"]["cache_creation_input_tokens"], usage["cacheWriteInputTokens"], "{name}");
        assert_eq!(out["usage"]["cache_read_input_tokens"], usage["cacheReadInputTokens"], "{name}");
        assert_eq!(out["usage"]["output_tokens"], usage["outputTokens"], "{name}");
        // The gateway bills every prompt token: Converse's total.
        assert_eq!(t.usage().total(), u(&usage["totalTokens"]), "{name}");
        seen += u(&usage["cacheReadInputTokens"]) + u(&usage["cacheWriteInputTokens"]);
    }
    assert!(seen > 0, "the recording writes then reads the cache");
}

/// The recorded Claude thinking stream: the client gets one thinking block with the recorded
/// text and, through `signature_delta`, the recorded signature byte for byte, then the text.
#[test]
fn recorded_thinking_signature_reaches_the_client_unchanged() {
    let Some(all) = load() else { return };
    let name = "test_bedrock_model_thinking_part_stream.yaml#0";
    let body = recording(&all, name);
    let (blocks, _, _) = stream_parts(&body);
    let Some(StreamBlock::Reasoning(thinking, Some(signature))) = blocks.first().cloned() else {
        panic!("{name}: the recording starts with signed reasoning: {blocks:?}")
    };
    assert!(signature.len() > 100 && !thinking.is_empty());
    let i = all.iter().find(|i| i.name == name).unwrap();
    let mut t = translator_for(i);
    t.on_headers(200, Some(&i.content_type));
    let out = String::from_utf8(t.translate_chunk(&body, true)).unwrap();
    let frames: Vec<Value> = out
        .split("\n\n")
        .filter_map(|e| e.split_once("\ndata: ").map(|(_, d)| serde_json::from_str(d).unwrap()))
        .collect();
    let start = frames.iter().find(|f| f["type"] == "content_block_start").unwrap();
    assert_eq!(start["index"], 0);
    assert_eq!(start["content_block"], json!({"type": "thinking", "thinking": "", "signature": ""}));
    let signatures: Vec<&Value> =
        frames.iter().filter(|f| f["delta"]["type"] == "signature_delta").map(|f| &f["delta"]["signature"]).collect();
    assert_eq!(signatures, [&json!(signature)]);
    let outcome = outcome_of_sse(out.as_bytes());
    assert_eq!(outcome.thinking, [(thinking, signature)]);
    assert!(!outcome.text.is_empty());
}

fn stream_recordings() -> Vec<Interaction> {
    load().unwrap_or_default().into_iter().filter(|i| i.status == 200 && i.is_stream()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Every recorded stream, cut at random offsets, translates to exactly the same bytes (so to
    /// the same text, thinking, signatures, tool calls, stop reason and usage).
    #[test]
    fn recorded_streams_split_anywhere_translate_identically(cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..24)) {
        for i in stream_recordings() {
            let mut whole = translator_for(&i);
            whole.on_headers(200, Some(&i.content_type));
            let expected = whole.translate_chunk(&i.body, true);
            let mut offsets: Vec<usize> = cuts.iter().map(|c| c.index(i.body.len() + 1)).collect();
            offsets.sort_unstable();
            offsets.dedup();
            let mut split = translator_for(&i);
            split.on_headers(200, Some(&i.content_type));
            let mut got = Vec::new();
            let mut start = 0;
            for &cut in &offsets {
                got.extend(split.translate_chunk(&i.body[start..cut], false));
                start = cut;
            }
            got.extend(split.translate_chunk(&i.body[start..], true));
            prop_assert_eq!(&got, &expected, "{} cut at {:?}", i.name, offsets);
            prop_assert_eq!(split.usage(), whole.usage());
            prop_assert_eq!(outcome_of_sse(&got), expected_from_stream(&i.body), "{}", i.name);
        }
    }

    /// A corrupted byte anywhere in a recorded stream ends it with an Anthropic `error` event.
    #[test]
    fn corrupted_recorded_streams_end_with_an_error_event(at in any::<prop::sample::Index>(), flip in 1u8..=255) {
        for i in stream_recordings() {
            let mut body = i.body.clone();
            let k = at.index(body.len());
            body[k] ^= flip;
            let mut t = translator_for(&i);
            t.on_headers(200, Some(&i.content_type));
            let out = String::from_utf8(t.translate_chunk(&body, true)).unwrap();
            prop_assert!(out.ends_with("\n\n") && out.contains("event: error\n"), "{} flip at {k}: {}", i.name, out);
            prop_assert!(!out.contains("event: message_stop"), "{}", i.name);
        }
    }
}
