//! Golden tests for Anthropic Messages clients served by Bedrock: every recorded Bedrock
//! response (`fixtures/recorded/bedrock`: Converse JSON, ConverseStream binary event
//! stream, errors) goes through the Anthropic ← Bedrock translator and must keep the recording's
//! text, thinking, tool calls, stop reason and token counts, in Anthropic's message and SSE event
//! formats; every stream is also fed split at random offsets and must translate identically.
//! Expected values come from the recordings through an independent frame parser here.

use base64::Engine;
use gateway_core::config::{BedrockApi, BedrockSettings, Defaults, ProviderConfig, ProviderKind, ProviderSettings};
use gateway_core::translate::{prepare, BodyMode, ClientApi, ResponseTranslator, Target};
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

#[derive(Debug, Default, PartialEq)]
struct Outcome {
    text: String,
    reasoning: String,
    tool_calls: Vec<(String, String, Value)>,
    finish_reason: Option<String>,
    prompt_tokens: u64,
    completion_tokens: u64,
}

/// Bedrock stop reason → Anthropic stop reason, written out apart from the translator. The path
/// goes through Chat Completions' finish reasons, so `stop_sequence` arrives as `end_turn`.
fn expected_finish(stop: &str) -> &'static str {
    match stop {
        "end_turn" | "stop_sequence" => "end_turn",
        "max_tokens" => "max_tokens",
        "tool_use" => "tool_use",
        "guardrail_intervened" | "content_filtered" => "refusal",
        other => panic!("stop reason {other} missing from the test table"),
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
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
    }
    o.finish_reason = Some(expected_finish(r["stopReason"].as_str().unwrap()).into());
    let usage = &r["usage"];
    o.prompt_tokens = u(&usage["inputTokens"]) + u(&usage["cacheReadInputTokens"]) + u(&usage["cacheWriteInputTokens"]);
    o.completion_tokens = u(&usage["outputTokens"]);
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

fn expected_from_stream(body: &[u8]) -> Outcome {
    let mut o = Outcome::default();
    let mut tools: Vec<(u64, String, String, String)> = Vec::new();
    for (event, p) in frames(body) {
        match event.as_str() {
            "contentBlockStart" => {
                if let Some(t) = p["start"].get("toolUse") {
                    tools.push((
                        u(&p["contentBlockIndex"]),
                        t["toolUseId"].as_str().unwrap().into(),
                        t["name"].as_str().unwrap().into(),
                        String::new(),
                    ));
                }
            }
            "contentBlockDelta" => {
                let d = &p["delta"];
                if let Some(t) = d["text"].as_str() {
                    o.text.push_str(t);
                }
                if let Some(t) = d["reasoningContent"]["text"].as_str() {
                    o.reasoning.push_str(t);
                }
                if let Some(t) = d["toolUse"]["input"].as_str() {
                    tools.iter_mut().find(|x| x.0 == u(&p["contentBlockIndex"])).unwrap().3.push_str(t);
                }
            }
            "messageStop" => o.finish_reason = Some(expected_finish(p["stopReason"].as_str().unwrap()).into()),
            "metadata" => {
                let usage = &p["usage"];
                o.prompt_tokens =
                    u(&usage["inputTokens"]) + u(&usage["cacheReadInputTokens"]) + u(&usage["cacheWriteInputTokens"]);
                o.completion_tokens = u(&usage["outputTokens"]);
            }
            _ => {}
        }
    }
    o.tool_calls = tools
        .into_iter()
        .map(|(_, id, name, args)| (id, name, serde_json::from_str(&args).unwrap_or(json!({}))))
        .collect();
    o
}

fn outcome_of_message(v: &Value) -> Outcome {
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    let mut o = Outcome::default();
    for b in v["content"].as_array().unwrap() {
        match b["type"].as_str().unwrap() {
            "text" => o.text.push_str(b["text"].as_str().unwrap()),
            "thinking" => o.reasoning.push_str(b["thinking"].as_str().unwrap()),
            "tool_use" => o.tool_calls.push((
                b["id"].as_str().unwrap().into(),
                b["name"].as_str().unwrap().into(),
                b["input"].clone(),
            )),
            other => panic!("unexpected block {other}"),
        }
    }
    o.finish_reason = v["stop_reason"].as_str().map(Into::into);
    o.prompt_tokens = u(&v["usage"]["input_tokens"]);
    o.completion_tokens = u(&v["usage"]["output_tokens"]);
    o
}

/// Anthropic SSE → outcome, checking the event grammar on the way.
fn outcome_of_sse(out: &[u8]) -> Outcome {
    let text = std::str::from_utf8(out).unwrap();
    let mut o = Outcome::default();
    let mut blocks: Vec<(String, String, String, String)> = Vec::new(); // (type, id, name, json)
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    let mut names = Vec::new();
    for e in &events {
        let (name_line, data_line) = e.split_once('\n').unwrap();
        let name = name_line.strip_prefix("event: ").unwrap();
        let v: Value = serde_json::from_str(data_line.strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(v["type"], name, "event name and type agree");
        names.push(name.to_owned());
        match name {
            "message_start" => o.prompt_tokens = u(&v["message"]["usage"]["input_tokens"]),
            "content_block_start" => {
                let b = &v["content_block"];
                assert_eq!(u(&v["index"]) as usize, blocks.len(), "block indexes are consecutive");
                blocks.push((
                    b["type"].as_str().unwrap().into(),
                    b["id"].as_str().unwrap_or("").into(),
                    b["name"].as_str().unwrap_or("").into(),
                    String::new(),
                ));
            }
            "content_block_delta" => {
                let d = &v["delta"];
                let idx = u(&v["index"]) as usize;
                match d["type"].as_str().unwrap() {
                    "text_delta" => o.text.push_str(d["text"].as_str().unwrap()),
                    "thinking_delta" => o.reasoning.push_str(d["thinking"].as_str().unwrap()),
                    "input_json_delta" => blocks[idx].3.push_str(d["partial_json"].as_str().unwrap()),
                    other => panic!("unexpected delta {other}"),
                }
            }
            "message_delta" => {
                o.finish_reason = v["delta"]["stop_reason"].as_str().map(Into::into);
                if let Some(i) = v["usage"]["input_tokens"].as_u64() {
                    o.prompt_tokens = i;
                }
                o.completion_tokens = u(&v["usage"]["output_tokens"]);
            }
            "error" => panic!("unexpected error event {v}"),
            _ => {}
        }
    }
    assert_eq!(names.first().map(String::as_str), Some("message_start"));
    assert_eq!(names.last().map(String::as_str), Some("message_stop"));
    o.tool_calls = blocks
        .into_iter()
        .filter(|b| b.0 == "tool_use")
        .map(|(_, id, name, args)| (id, name, serde_json::from_str(&args).unwrap_or(json!({}))))
        .collect();
    o
}

fn translator_for(i: &Interaction) -> Box<dyn ResponseTranslator> {
    let p = provider();
    let d = Defaults { max_tokens: 4096 };
    let body = json!({"model": "alias", "max_tokens": 100, "stream": i.is_stream(), "messages": [{"role": "user", "content": "hi"}]}).to_string();
    let model = model_of(&i.path);
    prepare(
        ClientApi::AnthropicMessages,
        &Target { provider: &p, model: &model, defaults: &d, created_unix: 1 },
        body.as_bytes(),
    )
    .unwrap()
    .translator
}

#[test]
fn every_recorded_response_reaches_the_anthropic_client_with_its_content_and_usage() {
    let Some(all) = load() else { return };
    let mut streams = 0;
    for i in &all {
        let mut t = translator_for(i);
        let mode = t.on_headers(i.status, Some(&i.content_type));
        if i.status != 200 {
            assert_eq!(mode, BodyMode::Buffered);
            let out: Value = serde_json::from_slice(&t.translate_body(&i.body).unwrap().unwrap()).unwrap();
            let recorded: Value = serde_json::from_slice(&i.body).unwrap();
            assert_eq!(out["type"], "error", "{}", i.name);
            assert_eq!(out["error"]["message"], recorded["message"], "{}", i.name);
            assert_eq!(out["error"]["type"], "invalid_request_error", "{}", i.name);
            continue;
        }
        if i.is_stream() {
            streams += 1;
            assert_eq!(mode, BodyMode::Streaming, "{}", i.name);
            assert_eq!(t.content_type(), Some("text/event-stream"));
            let out = t.translate_chunk(&i.body, true);
            let expected = expected_from_stream(&i.body);
            assert_eq!(outcome_of_sse(&out), expected, "{}", i.name);
            assert_eq!(
                (t.usage().input, t.usage().output),
                (expected.prompt_tokens, expected.completion_tokens),
                "{}",
                i.name
            );
        } else {
            assert_eq!(mode, BodyMode::Buffered);
            let out: Value = serde_json::from_slice(&t.translate_body(&i.body).unwrap().unwrap()).unwrap();
            let expected = expected_from_json(&i.body);
            assert_eq!(outcome_of_message(&out), expected, "{}", i.name);
            assert_eq!(t.usage().total(), expected.prompt_tokens + expected.completion_tokens);
        }
    }
    assert_eq!(streams, 3, "the three recorded event streams");
}

fn stream_recordings() -> Vec<Interaction> {
    load().unwrap_or_default().into_iter().filter(|i| i.status == 200 && i.is_stream()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Every recorded stream, cut at random offsets, translates to exactly the same bytes.
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
