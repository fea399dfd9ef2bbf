//! Golden tests for Anthropic Messages clients (Claude Code) served by Gemini and by OpenAI Chat
//! Completions (OpenAI and Azure OpenAI) through the conversation model
//! (`translate::messages_via_model`): every recorded answer of `fixtures/recorded/gemini` and
//! `fixtures/recorded/openai` goes through `prepare(ClientApi::AnthropicMessages, ..)`'s
//! translator and must reach the Anthropic client with the recording's text, tool calls (name
//! and input), stop reason and usage as Anthropic reports it (`input_tokens` without the cached
//! prompt tokens, `cache_read_input_tokens` with them, `output_tokens` with reasoning tokens
//! included), in Anthropic's JSON and SSE formats. Every JSON answer is also replayed as the
//! provider's own stream of that answer (built here from the recording), so tool calls are
//! checked in SSE too, and every stream, split at random offsets, must translate to the same
//! bytes. The answer names the model the client asked for, never the provider's; the provider's
//! id stays in `response_model()` for logs. Expected values are derived from the recordings.
//!
//! Left out, by named rules (each counted):
//! - **ChatCompletionsEndpointOnly**: `openai/embeddings-basic.yaml` is `/v1/embeddings`, an API
//!   an Anthropic client never reaches through this path.
//! - **NotAChatAnswer** is not a skip: `openai/test_text_response.yaml` is an echo server's
//!   `text/plain` body, not OpenAI's; the test asserts it becomes a 502, never a made-up answer.

use std::path::PathBuf;

use gateway_core::config::{AzureSettings, AzureUrlForm, Defaults, ProviderConfig, ProviderKind};
use gateway_core::translate::{prepare, BodyMode, ClientApi, ResponseTranslator, Target};
use gateway_core::TokenUsage;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// The model the Anthropic client asks for: an alias, unlike any provider id.
const CLIENT_MODEL: &str = "claude-sonnet-4-5";

/// One recorded exchange (vcrpy or go-vcr v2).
struct Recording {
    name: String,
    url: String,
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Recording {
    fn is_stream(&self) -> bool {
        self.content_type.starts_with("text/event-stream")
    }
}

fn recordings(folder: &str) -> Vec<Recording> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/recorded").join(folder);
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
            out.push(Recording {
                name: format!("{}#{n}", file.file_name().unwrap().to_string_lossy()),
                url: req["url"].as_str().or(req["uri"].as_str()).unwrap().to_owned(),
                status: resp["status"]["code"].as_u64().or(resp["code"].as_u64()).unwrap() as u16,
                content_type,
                body,
            });
        }
    }
    assert!(!out.is_empty(), "no recordings in {}", dir.display());
    out
}

fn provider(kind: ProviderKind) -> ProviderConfig {
    let mut p = ProviderConfig {
        name: "p".into(),
        kind,
        cluster: "c".into(),
        credential: None,
        path_prefix: None,
        settings: Default::default(),
    };
    p.settings.azure =
        Some(AzureSettings { url_form: AzureUrlForm::Deployment, api_version: Some("2024-12-01-preview".into()) });
    p
}

/// The provider model of a recording: Gemini's from the URL, OpenAI's from the answer itself.
fn provider_model(r: &Recording) -> String {
    if let Some(after) = r.url.split("/models/").nth(1) {
        return after.split(':').next().unwrap().to_owned();
    }
    if let Some(after) = r.url.split("/deployments/").nth(1) {
        return after.split('/').next().unwrap().to_owned();
    }
    "gpt-5-nano".to_owned()
}

/// The Anthropic client's request the recording answers (its content does not change how the
/// answer is translated; streaming and the model do).
fn translator_for(kind: ProviderKind, model: &str, stream: bool) -> Box<dyn ResponseTranslator> {
    let p = provider(kind);
    let d = Defaults::default();
    let body = json!({"model": CLIENT_MODEL, "max_tokens": 1000, "stream": stream,
                      "messages": [{"role": "user", "content": "hi"}]});
    prepare(
        ClientApi::AnthropicMessages,
        &Target { provider: &p, model, defaults: &d, created_unix: 1_700_000_000 },
        body.to_string().as_bytes(),
    )
    .unwrap()
    .translator
}

/// What an Anthropic client ends up knowing about an answer.
#[derive(Debug, Default, PartialEq, Clone)]
struct Outcome {
    text: String,
    /// (name, input) in order; ids are checked apart (Gemini gives none, the gateway makes them).
    tool_calls: Vec<(String, Value)>,
    stop_reason: Option<String>,
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

// --- expected outcomes, read from the recordings ----------------------------------------------

/// Gemini's SSE events (`\r\n\r\n`-separated `data:` lines) or its one JSON answer.
fn gemini_events(r: &Recording) -> Vec<Value> {
    if !r.is_stream() {
        return vec![serde_json::from_slice(&r.body).unwrap()];
    }
    std::str::from_utf8(&r.body)
        .unwrap()
        .split("\r\n\r\n")
        .filter_map(|e| e.trim().strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// Gemini finish reason → Anthropic stop reason, written out apart from the translator.
fn gemini_stop(reason: &str, has_calls: bool) -> &'static str {
    match reason {
        "STOP" if has_calls => "tool_use",
        "STOP" => "end_turn",
        "MAX_TOKENS" => "max_tokens",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" => "refusal",
        other => panic!("finish reason {other} missing from the test table"),
    }
}

fn expected_gemini(events: &[Value]) -> Outcome {
    let mut o = Outcome::default();
    let mut usage = Map::new();
    let mut finish = None;
    for e in events {
        for part in e["candidates"][0]["content"]["parts"].as_array().into_iter().flatten() {
            if let Some(call) = part.get("functionCall") {
                o.tool_calls
                    .push((call["name"].as_str().unwrap().into(), call.get("args").cloned().unwrap_or(json!({}))));
            } else if part["thought"] != true {
                o.text.push_str(part["text"].as_str().unwrap_or(""));
            }
        }
        if let Some(r) = e["candidates"][0]["finishReason"].as_str() {
            finish = Some(r.to_owned());
        }
        // Later events restate the counts; members an event leaves out keep their earlier value.
        if let Some(u) = e["usageMetadata"].as_object() {
            usage.extend(u.clone());
        }
    }
    let count = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
    o.stop_reason = finish.map(|r| gemini_stop(&r, !o.tool_calls.is_empty()).to_owned());
    let prompt = count("promptTokenCount") + count("toolUsePromptTokenCount");
    o.cache_read_input_tokens = count("cachedContentTokenCount");
    o.input_tokens = prompt - o.cache_read_input_tokens;
    // Gemini counts thoughts apart from the candidates; Anthropic's output includes thinking.
    o.output_tokens = count("candidatesTokenCount") + count("thoughtsTokenCount");
    o
}

/// Chat Completions SSE chunks (without `[DONE]`).
fn openai_chunks(body: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| d.trim() != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// Chat finish reason → Anthropic stop reason, written out apart from the translator.
fn openai_stop(reason: &str) -> &'static str {
    match reason {
        "stop" => "end_turn",
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        other => panic!("finish reason {other} missing from the test table"),
    }
}

fn openai_usage(o: &mut Outcome, usage: &Value) {
    o.cache_read_input_tokens = u(&usage["prompt_tokens_details"]["cached_tokens"]);
    o.input_tokens = u(&usage["prompt_tokens"]) - o.cache_read_input_tokens;
    o.output_tokens = u(&usage["completion_tokens"]);
}

fn expected_openai(r: &Recording) -> Outcome {
    let mut o = Outcome::default();
    if !r.is_stream() {
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        let m = &v["choices"][0]["message"];
        o.text = m["content"].as_str().unwrap_or("").to_owned();
        for c in m["tool_calls"].as_array().into_iter().flatten() {
            let f = &c["function"];
            o.tool_calls.push((
                f["name"].as_str().unwrap().into(),
                serde_json::from_str(f["arguments"].as_str().unwrap()).unwrap(),
            ));
        }
        o.stop_reason = v["choices"][0]["finish_reason"].as_str().map(|s| openai_stop(s).into());
        openai_usage(&mut o, &v["usage"]);
        return o;
    }
    let mut args: Vec<String> = Vec::new();
    for c in openai_chunks(&r.body) {
        if c["usage"].is_object() {
            openai_usage(&mut o, &c["usage"]);
        }
        let Some(choice) = c["choices"].get(0) else { continue };
        o.text.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
        for call in choice["delta"]["tool_calls"].as_array().into_iter().flatten() {
            let index = u(&call["index"]) as usize;
            if index == o.tool_calls.len() {
                o.tool_calls.push((call["function"]["name"].as_str().unwrap().into(), Value::Null));
                args.push(String::new());
            }
            args[index].push_str(call["function"]["arguments"].as_str().unwrap_or(""));
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            o.stop_reason = Some(openai_stop(f).into());
        }
    }
    for (call, a) in o.tool_calls.iter_mut().zip(args) {
        call.1 = serde_json::from_str(&a).unwrap();
    }
    o
}

/// The recorded tool call ids of an OpenAI answer (Gemini's recordings have none).
fn openai_call_ids(r: &Recording) -> Vec<String> {
    let calls: Vec<Value> = if r.is_stream() {
        openai_chunks(&r.body)
            .iter()
            .flat_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array().cloned().unwrap_or_default())
            .collect()
    } else {
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        v["choices"][0]["message"]["tool_calls"].as_array().cloned().unwrap_or_default()
    };
    calls.iter().filter_map(|c| c["id"].as_str().map(str::to_owned)).collect()
}

// --- the provider's own stream of a recorded JSON answer --------------------------------------

/// A Gemini JSON answer as `streamGenerateContent?alt=sse` sends it: one event holding it.
fn gemini_stream_of(json_body: &[u8]) -> Vec<u8> {
    let v: Value = serde_json::from_slice(json_body).unwrap();
    format!("data: {v}\r\n\r\n").into_bytes()
}

/// A Chat Completions JSON answer as OpenAI streams it with `include_usage`: a role chunk, one
/// chunk per content and per tool call (id and name first, arguments after), the finish chunk,
/// the usage chunk and `[DONE]`.
fn openai_stream_of(json_body: &[u8]) -> Vec<u8> {
    let v: Value = serde_json::from_slice(json_body).unwrap();
    let chunk = |delta: Value, finish: Value| {
        json!({"id": v["id"], "object": "chat.completion.chunk", "created": v["created"], "model": v["model"],
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let m = &v["choices"][0]["message"];
    let mut chunks = vec![chunk(json!({"role": "assistant", "content": ""}), Value::Null)];
    if let Some(text) = m["content"].as_str().filter(|t| !t.is_empty()) {
        chunks.push(chunk(json!({"content": text}), Value::Null));
    }
    for (index, call) in m["tool_calls"].as_array().into_iter().flatten().enumerate() {
        chunks.push(chunk(
            json!({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                   "function": {"name": call["function"]["name"], "arguments": ""}}]}),
            Value::Null,
        ));
        chunks.push(chunk(
            json!({"tool_calls": [{"index": index, "function": {"arguments": call["function"]["arguments"]}}]}),
            Value::Null,
        ));
    }
    chunks.push(chunk(json!({}), v["choices"][0]["finish_reason"].clone()));
    chunks.push(json!({"id": v["id"], "object": "chat.completion.chunk", "created": v["created"], "model": v["model"],
                       "choices": [], "usage": v["usage"]}));
    let mut out = String::new();
    for c in chunks {
        out.push_str(&format!("data: {c}\n\n"));
    }
    out.push_str("data: [DONE]\n\n");
    out.into_bytes()
}

// --- what the Anthropic client gets ------------------------------------------------------------

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

/// An Anthropic JSON answer → (outcome, tool_use ids).
fn outcome_of_message(v: &Value) -> (Outcome, Vec<String>) {
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], CLIENT_MODEL, "the answer names the model the client asked for");
    // The provider's response id when it gives one (`chatcmpl-...`, Gemini's `responseId`).
    assert!(v["id"].as_str().is_some_and(|id| !id.is_empty()), "{}", v["id"]);
    let mut o = Outcome::default();
    let mut ids = Vec::new();
    for b in v["content"].as_array().unwrap() {
        match b["type"].as_str().unwrap() {
            "text" => o.text.push_str(b["text"].as_str().unwrap()),
            "tool_use" => {
                ids.push(b["id"].as_str().unwrap().to_owned());
                o.tool_calls.push((b["name"].as_str().unwrap().into(), b["input"].clone()));
            }
            other => panic!("unexpected block {other}"),
        }
    }
    o.stop_reason = v["stop_reason"].as_str().map(Into::into);
    for field in ["input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens"] {
        assert!(v["usage"][field].is_u64(), "usage.{field} is always reported, as Anthropic does");
    }
    usage_into(&mut o, &v["usage"]);
    (o, ids)
}

/// Anthropic SSE → (outcome, tool_use ids) the way the Anthropic SDK accumulates it, checking
/// the event grammar: `message_start` first, `message_stop` last, consecutive block indexes,
/// deltas of a block's own kind between its start and its stop.
fn outcome_of_sse(out: &[u8]) -> (Outcome, Vec<String>) {
    let text = std::str::from_utf8(out).unwrap();
    let mut o = Outcome::default();
    // (type, id, name, text or json, stopped)
    let mut blocks: Vec<(String, String, String, String, bool)> = Vec::new();
    let mut names = Vec::new();
    for e in text.split("\n\n").filter(|e| !e.is_empty()) {
        let (name_line, data_line) = e.split_once('\n').unwrap();
        let name = name_line.strip_prefix("event: ").unwrap();
        let v: Value = serde_json::from_str(data_line.strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(v["type"], name, "event name and type agree");
        names.push(name.to_owned());
        match name {
            "message_start" => {
                assert_eq!(v["message"]["model"], CLIENT_MODEL, "message_start names the client's model");
                assert!(v["message"]["id"].as_str().is_some_and(|id| !id.is_empty()));
                usage_into(&mut o, &v["message"]["usage"]);
            }
            "content_block_start" => {
                let b = &v["content_block"];
                assert_eq!(u(&v["index"]) as usize, blocks.len(), "block indexes are consecutive");
                let kind = b["type"].as_str().unwrap();
                let body = match kind {
                    "text" => b["text"].as_str().unwrap(),
                    "tool_use" => {
                        assert_eq!(b["input"], json!({}), "tool input comes in input_json_delta");
                        ""
                    }
                    other => panic!("unexpected block {other}"),
                };
                blocks.push((
                    kind.into(),
                    b["id"].as_str().unwrap_or("").into(),
                    b["name"].as_str().unwrap_or("").into(),
                    body.into(),
                    false,
                ));
            }
            "content_block_delta" => {
                let d = &v["delta"];
                let block = &mut blocks[u(&v["index"]) as usize];
                assert!(!block.4, "delta after content_block_stop");
                let (kind, field) = match d["type"].as_str().unwrap() {
                    "text_delta" => ("text", "text"),
                    "input_json_delta" => ("tool_use", "partial_json"),
                    other => panic!("unexpected delta {other}"),
                };
                assert_eq!(block.0, kind, "{} in a {} block", d["type"], block.0);
                block.3.push_str(d[field].as_str().unwrap());
            }
            "content_block_stop" => {
                let block = &mut blocks[u(&v["index"]) as usize];
                assert!(!block.4, "stopped twice");
                block.4 = true;
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
    assert!(blocks.iter().all(|b| b.4), "every block is stopped");
    let mut ids = Vec::new();
    for (kind, id, name, body, _) in blocks {
        if kind == "text" {
            o.text.push_str(&body);
        } else {
            ids.push(id);
            o.tool_calls.push((name, if body.is_empty() { json!({}) } else { serde_json::from_str(&body).unwrap() }));
        }
    }
    (o, ids)
}

/// The gateway's own accounting for an outcome: every prompt token in `input`.
fn accounting(o: &Outcome, reasoning: u64) -> TokenUsage {
    TokenUsage {
        input: o.input_tokens + o.cache_read_input_tokens + o.cache_creation_input_tokens,
        output: o.output_tokens,
        cache_read: o.cache_read_input_tokens,
        cache_creation: o.cache_creation_input_tokens,
        reasoning,
    }
}

/// Feeds `body` to a fresh streaming translator cut at `cuts`.
fn translate_stream(kind: ProviderKind, model: &str, body: &[u8], cuts: &[usize]) -> (Vec<u8>, TokenUsage) {
    let mut t = translator_for(kind, model, true);
    assert_eq!(t.on_headers(200, Some("text/event-stream")), BodyMode::Streaming);
    assert_eq!(t.content_type(), Some("text/event-stream"));
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for cut in cuts {
        out.extend(t.translate_chunk(&body[start..cut], false));
        start = cut;
    }
    out.extend(t.translate_chunk(&body[start..], true));
    (out, t.usage())
}

/// Checks one answer, JSON or stream, against `expected`; returns the tool_use ids.
fn check(
    name: &str,
    kind: ProviderKind,
    model: &str,
    body: &[u8],
    stream: bool,
    expected: &Outcome,
    reasoning: u64,
) -> Vec<String> {
    let (got, ids, usage, provider_model) = if stream {
        let mut t = translator_for(kind, model, true);
        t.on_headers(200, Some("text/event-stream"));
        let out = t.translate_chunk(body, true);
        let (o, ids) = outcome_of_sse(&out);
        (o, ids, t.usage(), t.response_model().map(str::to_owned))
    } else {
        let mut t = translator_for(kind, model, false);
        assert_eq!(t.on_headers(200, Some("application/json")), BodyMode::Buffered);
        let out: Value = serde_json::from_slice(&t.translate_body(body).unwrap().unwrap()).unwrap();
        let (o, ids) = outcome_of_message(&out);
        (o, ids, t.usage(), t.response_model().map(str::to_owned))
    };
    assert_eq!(&got, expected, "{name} (stream: {stream})");
    assert_eq!(usage, accounting(expected, reasoning), "{name} (stream: {stream})");
    assert!(
        provider_model.as_deref().is_some_and(|m| m != CLIENT_MODEL),
        "{name}: the provider's id stays for logs: {provider_model:?}"
    );
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), expected.tool_calls.len(), "{name}: one distinct id per tool call: {ids:?}");
    assert!(ids.iter().all(|id| !id.is_empty()), "{name}");
    ids
}

// --- Gemini -------------------------------------------------------------------------------------

fn gemini_reasoning(events: &[Value]) -> u64 {
    events.iter().rev().find_map(|e| e["usageMetadata"]["thoughtsTokenCount"].as_u64()).unwrap_or(0)
}

#[test]
fn every_gemini_recording_reaches_the_anthropic_client() {
    let all = recordings("gemini");
    let (mut json_answers, mut streams, mut calls) = (0, 0, 0);
    for r in &all {
        assert_eq!(r.status, 200, "{}: only successful exchanges are recorded", r.name);
        let model = provider_model(r);
        let events = gemini_events(r);
        let expected = expected_gemini(&events);
        let reasoning = gemini_reasoning(&events);
        calls += expected.tool_calls.len();
        if r.is_stream() {
            streams += 1;
            check(&r.name, ProviderKind::Gemini, &model, &r.body, true, &expected, reasoning);
        } else {
            json_answers += 1;
            let ids = check(&r.name, ProviderKind::Gemini, &model, &r.body, false, &expected, reasoning);
            // The same answer streamed: same content, and the same made-up tool ids.
            let sse = gemini_stream_of(&r.body);
            let stream_ids = check(&r.name, ProviderKind::Gemini, &model, &sse, true, &expected, reasoning);
            assert_eq!(ids, stream_ids, "{}: tool ids do not depend on streaming", r.name);
        }
    }
    eprintln!("Gemini: {json_answers} JSON (also streamed), {streams} streams, {calls} tool calls");
    assert!(json_answers >= 4 && streams >= 3 && calls >= 3, "{json_answers} {streams} {calls}");
}

// --- OpenAI Chat Completions and Azure OpenAI -----------------------------------------------------

/// Which provider kind served a recording: Azure's URLs are `/openai/deployments/...`.
fn openai_kind(r: &Recording) -> ProviderKind {
    if r.url.contains("/openai/deployments/") {
        ProviderKind::AzureOpenai
    } else {
        ProviderKind::Openai
    }
}

/// Anthropic error type for an HTTP status (the provider's code is not one of Anthropic's).
fn anthropic_error_type(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

#[test]
fn every_openai_recording_reaches_the_anthropic_client() {
    let all = recordings("openai");
    let (mut json_answers, mut streams, mut errors, mut calls) = (0, 0, 0, 0);
    let (mut not_chat, mut not_a_chat_answer) = (0, 0);
    for r in &all {
        // Rule ChatCompletionsEndpointOnly.
        if !r.url.contains("/chat/completions") {
            assert!(r.url.ends_with("/embeddings"), "{}: unexpected endpoint {}", r.name, r.url);
            not_chat += 1;
            continue;
        }
        let kind = openai_kind(r);
        let model = provider_model(r);
        if r.status != 200 {
            let mut t = translator_for(kind, &model, false);
            assert_eq!(t.on_headers(r.status, Some(&r.content_type)), BodyMode::Buffered);
            let out: Value = serde_json::from_slice(&t.translate_body(&r.body).unwrap().unwrap()).unwrap();
            let recorded: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(out["type"], "error", "{}", r.name);
            assert_eq!(out["error"]["message"], recorded["error"]["message"], "{}", r.name);
            assert_eq!(out["error"]["type"], anthropic_error_type(r.status), "{}", r.name);
            errors += 1;
            continue;
        }
        // NotAChatAnswer: an echo server's plain text is unreadable, a 502, never an answer.
        if r.content_type.starts_with("text/plain") {
            let mut t = translator_for(kind, &model, false);
            t.on_headers(200, Some(&r.content_type));
            assert_eq!(t.translate_body(&r.body).unwrap_err().status(), 502, "{}", r.name);
            not_a_chat_answer += 1;
            continue;
        }
        let expected = expected_openai(r);
        calls += expected.tool_calls.len();
        let reasoning = |v: &Value| u(&v["completion_tokens_details"]["reasoning_tokens"]);
        if r.is_stream() {
            streams += 1;
            let chunks = openai_chunks(&r.body);
            let usage = chunks.iter().rev().find(|c| c["usage"].is_object()).map(|c| reasoning(&c["usage"]));
            let ids = check(&r.name, kind, &model, &r.body, true, &expected, usage.unwrap_or(0));
            assert_eq!(ids, openai_call_ids(r), "{}: OpenAI's tool call ids kept", r.name);
        } else {
            json_answers += 1;
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            let ids = check(&r.name, kind, &model, &r.body, false, &expected, reasoning(&v["usage"]));
            assert_eq!(ids, openai_call_ids(r), "{}: OpenAI's tool call ids kept", r.name);
            let sse = openai_stream_of(&r.body);
            let ids = check(&r.name, kind, &model, &sse, true, &expected, reasoning(&v["usage"]));
            assert_eq!(ids, openai_call_ids(r), "{} streamed", r.name);
        }
    }
    eprintln!(
        "OpenAI: {json_answers} JSON (also streamed), {streams} streams, {errors} errors, {calls} tool calls; \
         left out by ChatCompletionsEndpointOnly: {not_chat}; NotAChatAnswer (502): {not_a_chat_answer}"
    );
    assert!(
        json_answers >= 6 && streams >= 2 && errors >= 2 && calls >= 4,
        "{json_answers} {streams} {errors} {calls}"
    );
    assert_eq!((not_chat, not_a_chat_answer), (1, 1));
}

// --- streams split anywhere ---------------------------------------------------------------------

/// Every stream (recorded, and each JSON answer as its provider's stream) with its provider.
fn all_streams() -> Vec<(String, ProviderKind, String, Vec<u8>)> {
    let mut out = Vec::new();
    for r in recordings("gemini") {
        let body = if r.is_stream() { r.body.clone() } else { gemini_stream_of(&r.body) };
        out.push((r.name.clone(), ProviderKind::Gemini, provider_model(&r), body));
    }
    for r in recordings("openai") {
        if !r.url.contains("/chat/completions") || r.status != 200 || r.content_type.starts_with("text/plain") {
            continue;
        }
        let body = if r.is_stream() { r.body.clone() } else { openai_stream_of(&r.body) };
        out.push((r.name.clone(), openai_kind(&r), provider_model(&r), body));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Every stream, cut at random offsets, translates to exactly the same bytes and usage.
    #[test]
    fn streams_split_anywhere_translate_identically(cuts in proptest::collection::vec(any::<usize>(), 0..24)) {
        for (name, kind, model, body) in all_streams() {
            let whole = translate_stream(kind, &model, &body, &[]);
            let split = translate_stream(kind, &model, &body, &cuts);
            prop_assert_eq!(&split.0, &whole.0, "{} cut at {:?}", name, cuts);
            prop_assert_eq!(split.1, whole.1, "{}", name);
        }
    }
}

/// The strongest split: one byte at a time.
#[test]
fn streams_split_at_every_byte_translate_identically() {
    for (name, kind, model, body) in all_streams() {
        let whole = translate_stream(kind, &model, &body, &[]);
        let cuts: Vec<usize> = (0..body.len()).collect();
        let split = translate_stream(kind, &model, &body, &cuts);
        assert_eq!(String::from_utf8_lossy(&split.0), String::from_utf8_lossy(&whole.0), "{name}");
        assert_eq!(split.1, whole.1, "{name}");
    }
}
