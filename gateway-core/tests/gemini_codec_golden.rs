//! The Gemini provider codec against recorded Gemini traffic (`fixtures/recorded/gemini`).
//!
//! Every recorded answer (JSON or SSE) decodes to the recording's text, function calls (name and
//! arguments), finish reason and token counts, computed here from the recording itself; every
//! stream, split at random offsets or at every byte, decodes to the same events; and every
//! recorded request is what [`encode_request`] builds from the equivalent conversation.

use std::path::PathBuf;

use gateway_core::codec::collect::collect;
use gateway_core::codec::gemini::{encode_request, GeminiDecoder};
use gateway_core::conversation::bridge::ProviderDecoder;
use gateway_core::conversation::{
    Event, FinishReason, Json, Message, Part, Reasoning, Request, Response, Role, ToolChoice, ToolDef, ToolKind, Usage,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

struct Recording {
    name: String,
    url: String,
    request: Value,
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Recording {
    fn is_stream(&self) -> bool {
        self.content_type.starts_with("text/event-stream")
    }
}

fn recordings() -> Vec<Recording> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/recorded/gemini");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let mut out = Vec::new();
    for file in files {
        let yaml: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let doc: Value = serde_json::to_value(yaml).unwrap();
        for (n, i) in doc["interactions"].as_array().unwrap().iter().enumerate() {
            let response = &i["response"];
            let body = match (&response["parsed_body"], &response["body"]["string"]) {
                (Value::Null, Value::String(s)) => s.clone().into_bytes(),
                (parsed, _) => serde_json::to_vec(parsed).unwrap(),
            };
            out.push(Recording {
                name: format!("{}#{n}", file.file_name().unwrap().to_string_lossy()),
                url: i["request"]["uri"].as_str().unwrap().to_owned(),
                request: i["request"]["parsed_body"].clone(),
                status: response["status"]["code"].as_u64().unwrap() as u16,
                content_type: response["headers"]["content-type"][0].as_str().unwrap_or("").to_owned(),
                body,
            });
        }
    }
    out
}

/// The recording's events: one JSON answer, or the `data:` payloads of the stream.
fn wire_events(r: &Recording) -> Vec<Value> {
    if r.is_stream() {
        std::str::from_utf8(&r.body)
            .unwrap()
            .split("\r\n\r\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    } else {
        vec![serde_json::from_slice(&r.body).unwrap()]
    }
}

/// What a client must end up with, read from the recording independently of the codec.
#[derive(Debug, PartialEq)]
struct Outcome {
    text: String,
    reasoning: String,
    /// (name, arguments as JSON).
    tool_calls: Vec<(String, Value)>,
    finish: Option<FinishReason>,
    usage: Usage,
}

fn expected(r: &Recording) -> Outcome {
    let mut o = Outcome {
        text: String::new(),
        reasoning: String::new(),
        tool_calls: Vec::new(),
        finish: None,
        usage: Usage::default(),
    };
    let mut usage = Map::new();
    let mut reason = None;
    for e in wire_events(r) {
        for part in e["candidates"][0]["content"]["parts"].as_array().into_iter().flatten() {
            if let Some(call) = part.get("functionCall") {
                o.tool_calls
                    .push((call["name"].as_str().unwrap().into(), call.get("args").cloned().unwrap_or(json!({}))));
            } else if part["thought"] == true {
                o.reasoning.push_str(part["text"].as_str().unwrap_or(""));
            } else {
                o.text.push_str(part["text"].as_str().unwrap_or(""));
            }
        }
        if let Some(f) = e["candidates"][0]["finishReason"].as_str() {
            reason = Some(f.to_owned());
        }
        if let Some(u) = e["usageMetadata"].as_object() {
            usage.extend(u.clone());
        }
    }
    // The mapping of the issue, written out independently of the codec.
    o.finish = reason.map(|r| match r.as_str() {
        "STOP" if !o.tool_calls.is_empty() => FinishReason::ToolUse,
        "STOP" => FinishReason::EndTurn,
        "MAX_TOKENS" => FinishReason::MaxTokens,
        other => panic!("finish reason {other} missing from the test table"),
    });
    let count = |k: &str| usage.get(k).and_then(Value::as_u64);
    let add = |a: Option<u64>, b: Option<u64>| {
        if a.is_none() && b.is_none() {
            None
        } else {
            Some(a.unwrap_or(0) + b.unwrap_or(0))
        }
    };
    o.usage = Usage {
        input: add(count("promptTokenCount"), count("toolUsePromptTokenCount")),
        output: add(count("candidatesTokenCount"), count("thoughtsTokenCount")),
        cache_read: count("cachedContentTokenCount"),
        cache_write: None,
        reasoning: count("thoughtsTokenCount"),
    };
    o
}

fn outcome(response: &Response) -> Outcome {
    let mut o = Outcome {
        text: String::new(),
        reasoning: String::new(),
        tool_calls: Vec::new(),
        finish: response.finish.clone(),
        usage: response.usage,
    };
    for part in &response.parts {
        match part {
            Part::Text { text, .. } => o.text.push_str(text),
            Part::Reasoning { text, .. } => o.reasoning.push_str(text),
            Part::ToolCall { name, arguments, .. } => {
                o.tool_calls.push((name.clone(), serde_json::from_str(arguments).unwrap()))
            }
            other => panic!("unexpected part {other:?}"),
        }
    }
    o
}

fn decode_stream(body: &[u8], cuts: &[usize]) -> Vec<Event> {
    let mut d = GeminiDecoder::new();
    assert_eq!(d.stream_content_type(), "text/event-stream");
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for cut in cuts {
        d.decode_chunk(&body[start..cut], false, &mut out);
        start = cut;
    }
    d.decode_chunk(&body[start..], true, &mut out);
    out
}

#[test]
fn every_recorded_answer_decodes_to_what_it_says() {
    let all = recordings();
    for r in &all {
        assert_eq!(r.status, 200, "{}", r.name);
        let response = if r.is_stream() {
            let events = decode_stream(&r.body, &[]);
            assert!(matches!(events.first(), Some(Event::Start { .. })), "{}", r.name);
            assert_eq!(events.last(), Some(&Event::End), "{}", r.name);
            collect(&events).unwrap()
        } else {
            GeminiDecoder::new().decode_response(&r.body).unwrap()
        };
        assert_eq!(outcome(&response), expected(r), "{}", r.name);
        let first = &wire_events(r)[0];
        assert_eq!(response.id.as_deref(), first["responseId"].as_str(), "{}", r.name);
        assert_eq!(response.model.as_deref(), first["modelVersion"].as_str(), "{}", r.name);
        let ids: Vec<&str> = response
            .parts
            .iter()
            .filter_map(|p| match p {
                Part::ToolCall { id, .. } => Some(id.as_str()),
                _ => None,
            })
            .collect();
        let mut unique = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "{}: tool call ids must be unique", r.name);
    }
    assert!(all.iter().any(Recording::is_stream) && all.iter().any(|r| !r.is_stream()));
    assert!(all.iter().any(|r| !expected(r).tool_calls.is_empty()), "a recording with function calls");
}

// --- requests ---------------------------------------------------------------------------------

fn lower_types(schema: &Value) -> Value {
    match schema {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = if k == "type" {
                        Value::String(v.as_str().unwrap().to_ascii_lowercase())
                    } else {
                        lower_types(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(lower_types).collect()),
        other => other.clone(),
    }
}

fn json_text(v: &Value) -> Json {
    Json::from_text(&v.to_string()).unwrap()
}

/// The conversation a client would send for a recorded Gemini request.
fn conversation(recorded: &Value, stream: bool) -> Request {
    let mut messages = Vec::new();
    if let Some(system) = recorded.get("systemInstruction") {
        let parts =
            system["parts"].as_array().unwrap().iter().map(|p| Part::text(p["text"].as_str().unwrap())).collect();
        messages.push(Message { role: Role::System, parts });
    }
    for (turn, content) in recorded["contents"].as_array().unwrap().iter().enumerate() {
        let mut parts = Vec::new();
        for (k, p) in content["parts"].as_array().unwrap().iter().enumerate() {
            if let Some(c) = p.get("functionCall") {
                parts.push(Part::ToolCall {
                    id: c["id"].as_str().map(str::to_owned).unwrap_or(format!("c{turn}_{k}")),
                    name: c["name"].as_str().unwrap().into(),
                    arguments: c["args"].to_string(),
                    kind: ToolKind::Function,
                    cache: None,
                });
            } else if let Some(r) = p.get("functionResponse") {
                parts.push(Part::ToolResult {
                    call_id: r["id"].as_str().unwrap_or("").into(),
                    name: Some(r["name"].as_str().unwrap().into()),
                    content: vec![Part::text(r["response"].to_string())],
                    is_error: false,
                    cache: None,
                });
            } else {
                parts.push(Part::text(p["text"].as_str().unwrap()));
            }
        }
        let role = if content["role"] == "model" { Role::Assistant } else { Role::User };
        messages.push(Message { role, parts });
    }
    let config = &recorded["generationConfig"];
    let tools = recorded["tools"][0]["functionDeclarations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| ToolDef {
            name: d["name"].as_str().unwrap().into(),
            description: d["description"].as_str().map(Into::into),
            input_schema: Some(json_text(&lower_types(&d["parameters"]))),
            kind: ToolKind::Function,
            strict: None,
            cache: None,
        })
        .collect();
    Request {
        messages,
        tools,
        tool_choice: recorded.pointer("/toolConfig/functionCallingConfig/mode").map(|m| match m.as_str().unwrap() {
            "ANY" => ToolChoice::Required,
            "NONE" => ToolChoice::None,
            _ => ToolChoice::Auto,
        }),
        max_output_tokens: config.get("maxOutputTokens").and_then(Value::as_u64),
        temperature: config.get("temperature").and_then(Value::as_f64),
        reasoning: config.pointer("/thinkingConfig/thinking_budget").and_then(Value::as_u64).map(|b| match b {
            0 => Reasoning::Disabled,
            n => Reasoning::Budget(n),
        }),
        stream,
        ..Default::default()
    }
}

/// The members of a Gemini request that decide the answer, in one form: type names lower-cased;
/// ids, signatures, empty descriptions, output modalities and allowed-name lists (which the
/// recorded SDK sends and a conversation has no member for) left out.
fn normalize(body: &Value) -> Value {
    fn strip(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, v) in m {
                    match k.as_str() {
                        "id" | "thoughtSignature" | "responseModalities" | "allowedFunctionNames" => continue,
                        "description" if v == "" => continue,
                        // The recorded SDK writes these two in snake case, which Gemini accepts.
                        "thinking_budget" | "include_thoughts" => {
                            let camel = if k == "thinking_budget" { "thinkingBudget" } else { "includeThoughts" };
                            out.insert(camel.to_owned(), v.clone());
                            continue;
                        }
                        "type" if v.is_string() => {
                            out.insert(k.clone(), Value::String(v.as_str().unwrap().to_ascii_lowercase()));
                            continue;
                        }
                        _ => {}
                    }
                    out.insert(k.clone(), strip(v));
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(strip).collect()),
            other => other.clone(),
        }
    }
    let mut out = strip(body);
    // The SDK labels its system instruction `user`; Gemini ignores the role there.
    if let Some(system) = out.get_mut("systemInstruction").and_then(Value::as_object_mut) {
        system.remove("role");
    }
    if out.get("generationConfig").is_some_and(|c| c.as_object().is_some_and(Map::is_empty)) {
        out.as_object_mut().unwrap().remove("generationConfig");
    }
    out
}

#[test]
fn every_recorded_request_is_what_the_encoder_builds() {
    for r in recordings() {
        let model = r.url.split("/models/").nth(1).unwrap().split(':').next().unwrap();
        let encoded = encode_request(&conversation(&r.request, r.is_stream()), model, 0).unwrap();
        assert_eq!(encoded.path, &r.url[r.url.find("/v1beta/").unwrap()..], "{}", r.name);
        assert!(encoded.dropped.is_empty(), "{}", r.name);
        let sent: Value = serde_json::from_slice(&encoded.body).unwrap();
        assert_eq!(normalize(&sent), normalize(&r.request), "{}", r.name);
    }
}

// --- streams split anywhere ---------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn streams_decode_identically_however_split(cuts in proptest::collection::vec(any::<usize>(), 0..24)) {
        for r in recordings().iter().filter(|r| r.is_stream()) {
            prop_assert_eq!(decode_stream(&r.body, &cuts), decode_stream(&r.body, &[]), "{}", r.name);
        }
    }
}

#[test]
fn streams_split_at_every_byte() {
    for r in recordings().into_iter().filter(Recording::is_stream) {
        let every: Vec<usize> = (1..r.body.len()).collect();
        assert_eq!(decode_stream(&r.body, &every), decode_stream(&r.body, &[]), "{}", r.name);
    }
}

#[test]
fn a_stream_cut_anywhere_before_its_end_is_an_error() {
    for r in recordings().into_iter().filter(Recording::is_stream) {
        // Cut before the last event's finish reason: the answer is incomplete.
        let cut = String::from_utf8_lossy(&r.body).rfind("finishReason").unwrap();
        let events = decode_stream(&r.body[..cut], &[]);
        assert!(
            matches!(events.last(), Some(Event::Error(e)) if e.code.as_deref() == Some("incomplete_stream")),
            "{}",
            r.name
        );
    }
}
