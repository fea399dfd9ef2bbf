//! The Chat Completions provider codec against recorded OpenAI and Azure OpenAI traffic
//! (`fixtures/recorded/openai`, both VCR flavours).
//!
//! Every recorded answer (JSON or SSE) decodes to the recording's text, tool calls (id, name,
//! arguments), finish reason and usage, computed here from the recording itself; every recorded
//! error keeps its message and code; every stream, split at random offsets or at every byte,
//! decodes to the same events; and every recorded request is what [`encode_request`] builds
//! from the equivalent conversation.

use std::path::PathBuf;

use gateway_core::codec::collect::collect;
use gateway_core::codec::openai_chat::{encode_request, OpenAiChatDecoder};
use gateway_core::conversation::bridge::ProviderDecoder;
use gateway_core::conversation::{
    Event, Extra, Family, FinishReason, Json, Message, OutputFormat, Part, Request, Response, Role, Source, ToolChoice,
    ToolDef, ToolKind, Usage,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

struct Recording {
    name: String,
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
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/recorded/openai");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let yaml: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let doc: Value = serde_json::to_value(yaml).unwrap();
        for (n, i) in doc["interactions"].as_array().unwrap().iter().enumerate() {
            let (req, resp) = (&i["request"], &i["response"]);
            // go-vcr v2 has `url`, vcrpy `uri`.
            let url = req["url"].as_str().or(req["uri"].as_str()).unwrap_or("");
            if !url.contains("/chat/completions") {
                continue;
            }
            let request = match &req["parsed_body"] {
                Value::Null => serde_json::from_str(req["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null),
                v => v.clone(),
            };
            let headers = resp["headers"].as_object().cloned().unwrap_or_default();
            let content_type = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .and_then(|(_, v)| v.get(0).and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_default();
            let body = match (&resp["parsed_body"], &resp["body"]) {
                (Value::Null, Value::String(s)) => s.clone().into_bytes(),
                (Value::Null, b) => b["string"].as_str().unwrap_or("").as_bytes().to_vec(),
                (parsed, _) => serde_json::to_vec(parsed).unwrap(),
            };
            let status = resp["status"]["code"].as_u64().or(resp["code"].as_u64()).unwrap() as u16;
            let name = format!("{}#{n}", file.file_name().unwrap().to_string_lossy());
            out.push(Recording { name, request, status, content_type, body });
        }
    }
    assert!(out.len() >= 10, "OpenAI chat recordings in {}", dir.display());
    out
}

fn chunks(r: &Recording) -> Vec<Value> {
    String::from_utf8_lossy(&r.body)
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| d.trim() != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// What a client must end up with, read from the recording independently of the codec.
#[derive(Debug, PartialEq)]
struct Outcome {
    text: String,
    /// (id, name, arguments text).
    tool_calls: Vec<(String, String, String)>,
    finish: Option<FinishReason>,
    usage: Usage,
}

fn usage_of(u: &Value) -> Usage {
    Usage {
        input: u["prompt_tokens"].as_u64(),
        output: u["completion_tokens"].as_u64(),
        cache_read: u["prompt_tokens_details"]["cached_tokens"].as_u64(),
        cache_write: None,
        reasoning: u["completion_tokens_details"]["reasoning_tokens"].as_u64(),
    }
}

fn finish_of(reason: &str) -> FinishReason {
    match reason {
        "stop" => FinishReason::EndTurn,
        "length" => FinishReason::MaxTokens,
        "tool_calls" => FinishReason::ToolUse,
        other => panic!("finish reason {other} missing from the test table"),
    }
}

fn expected(r: &Recording) -> Outcome {
    let mut o = Outcome { text: String::new(), tool_calls: Vec::new(), finish: None, usage: Usage::default() };
    if !r.is_stream() {
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        let m = &v["choices"][0]["message"];
        o.text = m["content"].as_str().unwrap_or("").to_owned();
        for c in m["tool_calls"].as_array().into_iter().flatten() {
            let f = &c["function"];
            o.tool_calls.push((
                c["id"].as_str().unwrap().into(),
                f["name"].as_str().unwrap().into(),
                f["arguments"].as_str().unwrap().into(),
            ));
        }
        o.finish = v["choices"][0]["finish_reason"].as_str().map(finish_of);
        o.usage = usage_of(&v["usage"]);
        return o;
    }
    for c in chunks(r) {
        if c["usage"].is_object() {
            o.usage = usage_of(&c["usage"]);
        }
        let Some(choice) = c["choices"].get(0) else { continue };
        o.text.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
        for call in choice["delta"]["tool_calls"].as_array().into_iter().flatten() {
            let index = call["index"].as_u64().unwrap() as usize;
            if index == o.tool_calls.len() {
                o.tool_calls.push((
                    call["id"].as_str().unwrap().into(),
                    call["function"]["name"].as_str().unwrap().into(),
                    String::new(),
                ));
            }
            o.tool_calls[index].2.push_str(call["function"]["arguments"].as_str().unwrap_or(""));
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            o.finish = Some(finish_of(f));
        }
    }
    o
}

fn outcome(response: &Response) -> Outcome {
    let mut o =
        Outcome { text: String::new(), tool_calls: Vec::new(), finish: response.finish.clone(), usage: response.usage };
    for part in &response.parts {
        match part {
            Part::Text { text, .. } => o.text.push_str(text),
            Part::ToolCall { id, name, arguments, .. } => {
                o.tool_calls.push((id.clone(), name.clone(), arguments.clone()))
            }
            other => panic!("unexpected part {other:?}"),
        }
    }
    o
}

fn decode_stream(body: &[u8], cuts: &[usize]) -> Vec<Event> {
    let mut d = OpenAiChatDecoder::new();
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
    let mut checked = (0, 0, 0);
    for r in &all {
        if r.status != 200 {
            let error: Value = serde_json::from_slice(&r.body).unwrap();
            let got = OpenAiChatDecoder::new().decode_error(r.status, &r.body);
            assert_eq!(got.status, r.status, "{}", r.name);
            assert_eq!(got.message, error["error"]["message"].as_str().unwrap(), "{}", r.name);
            let code = error["error"]["code"].as_str().or(error["error"]["type"].as_str());
            assert_eq!(got.code.as_deref(), code, "{}", r.name);
            checked.2 += 1;
            continue;
        }
        // One recording is an echo server's plain-text answer, not OpenAI's: unreadable, a 502.
        if r.content_type.starts_with("text/plain") {
            assert_eq!(OpenAiChatDecoder::new().decode_response(&r.body).unwrap_err().status(), 502, "{}", r.name);
            continue;
        }
        let response = if r.is_stream() {
            let events = decode_stream(&r.body, &[]);
            assert!(matches!(events.first(), Some(Event::Start { .. })), "{}", r.name);
            assert_eq!(events.last(), Some(&Event::End), "{}", r.name);
            checked.1 += 1;
            collect(&events).unwrap()
        } else {
            checked.0 += 1;
            OpenAiChatDecoder::new().decode_response(&r.body).unwrap_or_else(|e| panic!("{}: {e}", r.name))
        };
        assert_eq!(outcome(&response), expected(r), "{}", r.name);
        let first = if r.is_stream() {
            chunks(r).into_iter().find(|c| c["id"] != "").unwrap()
        } else {
            serde_json::from_slice(&r.body).unwrap()
        };
        assert_eq!(response.id.as_deref(), first["id"].as_str(), "{}", r.name);
        assert_eq!(response.model.as_deref(), first["model"].as_str(), "{}", r.name);
    }
    assert!(checked.0 >= 5 && checked.1 >= 2 && checked.2 >= 2, "{checked:?}");
    assert!(
        all.iter().any(|r| r.status == 200 && expected(r).usage.reasoning.is_some_and(|n| n > 0)),
        "detailed usage"
    );
}

// --- requests ---------------------------------------------------------------------------------

fn json_text(v: &Value) -> Json {
    Json::from_text(&v.to_string()).unwrap()
}

fn text_parts(content: &Value) -> Vec<Part> {
    match content {
        Value::String(s) => vec![Part::text(s.as_str())],
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p["type"].as_str().unwrap() {
                "text" => Part::text(p["text"].as_str().unwrap()),
                "image_url" => Part::Image {
                    source: Source::Url { url: p["image_url"]["url"].as_str().unwrap().into(), media_type: None },
                    cache: None,
                },
                other => panic!("part type {other}"),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The conversation a client would send for a recorded Chat request.
fn conversation(recorded: &Value) -> Request {
    let mut messages: Vec<Message> = Vec::new();
    for m in recorded["messages"].as_array().unwrap() {
        let role = m["role"].as_str().unwrap();
        match role {
            "tool" => {
                let part = Part::ToolResult {
                    call_id: m["tool_call_id"].as_str().unwrap().into(),
                    name: None,
                    content: text_parts(&m["content"]),
                    is_error: false,
                    cache: None,
                };
                match messages.last_mut() {
                    Some(last) if last.role == Role::User => last.parts.push(part),
                    _ => messages.push(Message { role: Role::User, parts: vec![part] }),
                }
            }
            _ => {
                let mut parts = text_parts(&m["content"]);
                for c in m["tool_calls"].as_array().into_iter().flatten() {
                    parts.push(Part::ToolCall {
                        id: c["id"].as_str().unwrap().into(),
                        name: c["function"]["name"].as_str().unwrap().into(),
                        arguments: c["function"]["arguments"].as_str().unwrap().into(),
                        kind: ToolKind::Function,
                        cache: None,
                    });
                }
                let role = match role {
                    "system" => Role::System,
                    "developer" => Role::Developer,
                    "assistant" => Role::Assistant,
                    _ => Role::User,
                };
                messages.push(Message { role, parts });
            }
        }
    }
    let tools = recorded["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| ToolDef {
            name: t["function"]["name"].as_str().unwrap().into(),
            description: t["function"]["description"].as_str().map(Into::into),
            input_schema: t["function"].get("parameters").map(json_text),
            kind: ToolKind::Function,
            strict: t["function"]["strict"].as_bool(),
            cache: None,
        })
        .collect();
    let known = [
        "messages",
        "model",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stream",
        "stream_options",
        "response_format",
        "n",
    ];
    let extras = recorded
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .map(|(k, v)| Extra { family: Family::OpenAi, name: k.clone(), value: json_text(v) })
        .collect();
    Request {
        messages,
        tools,
        tool_choice: recorded["tool_choice"].as_str().map(|c| match c {
            "required" => ToolChoice::Required,
            "none" => ToolChoice::None,
            _ => ToolChoice::Auto,
        }),
        parallel_tool_calls: recorded["parallel_tool_calls"].as_bool(),
        max_output_tokens: recorded["max_completion_tokens"].as_u64().or(recorded["max_tokens"].as_u64()),
        temperature: recorded["temperature"].as_f64(),
        top_p: recorded["top_p"].as_f64(),
        stream: recorded["stream"].as_bool().unwrap_or(false),
        output_format: match recorded["response_format"]["type"].as_str() {
            Some("json_object") => Some(OutputFormat::JsonObject),
            None => None,
            Some(other) => panic!("response format {other}"),
        },
        extras,
        ..Default::default()
    }
}

/// The members that decide the answer, in one form: `max_tokens` under its newer name, and what
/// the codec adds or leaves out on purpose (`stream_options` always set when streaming; `stream:
/// false` and `n: 1`, which are the defaults) removed; the model is the route target's.
fn normalize(body: &Value) -> Value {
    let mut out: Map<String, Value> = body.as_object().unwrap().clone();
    if let Some(m) = out.remove("max_tokens") {
        out.insert("max_completion_tokens".into(), m);
    }
    out.remove("stream_options");
    out.remove("model");
    for k in ["temperature", "top_p"] {
        if let Some(v) = out.get(k).and_then(Value::as_f64) {
            out.insert(k.into(), json!(v));
        }
    }
    if out.get("stream") == Some(&json!(false)) {
        out.remove("stream");
    }
    if out.get("n") == Some(&json!(1)) {
        out.remove("n");
    }
    Value::Object(out)
}

#[test]
fn every_recorded_request_is_what_the_encoder_builds() {
    let mut checked = 0;
    for r in recordings() {
        // The bad-request recording holds a message the conversation cannot have (content null).
        if r.request["messages"].as_array().unwrap().iter().any(|m| m["role"] == "user" && m["content"].is_null()) {
            continue;
        }
        let encoded = encode_request(&conversation(&r.request), "gpt-real").unwrap();
        assert_eq!(encoded.path, "/v1/chat/completions");
        assert!(encoded.dropped.is_empty(), "{}: {:?}", r.name, encoded.dropped);
        let sent: Value = serde_json::from_slice(&encoded.body).unwrap();
        assert_eq!(sent["model"], "gpt-real");
        assert_eq!(sent.get("stream_options").is_some(), r.request["stream"] == true, "{}", r.name);
        assert_eq!(normalize(&sent), normalize(&r.request), "{}", r.name);
        checked += 1;
    }
    assert!(checked >= 10, "{checked}");
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
fn a_stream_cut_before_its_finish_reason_is_an_error() {
    for r in recordings().into_iter().filter(Recording::is_stream) {
        let cut = String::from_utf8_lossy(&r.body).find("\"finish_reason\":\"").unwrap();
        let events = decode_stream(&r.body[..cut], &[]);
        assert!(
            matches!(events.last(), Some(Event::Error(e)) if e.code.as_deref() == Some("incomplete_stream")),
            "{}",
            r.name
        );
    }
}
