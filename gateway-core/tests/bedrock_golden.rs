//! Golden tests against recorded Bedrock traffic (`fixtures/recorded/bedrock`): every
//! recorded response (Converse JSON, ConverseStream binary event stream, error) goes through the
//! translator and must keep the recording's text, reasoning, tool calls, finish reason and token
//! counts; every recorded request must be what the translator builds from the equivalent OpenAI
//! request. Every stream is also fed split at random offsets and must translate identically.
//! Expected values are derived from the recordings with an independent frame parser here.
//!
//! Which recordings each test leaves out, and why (named rules, each counted):
//! - **ConverseEndpointOnly** ([`Interaction::is_converse`]): the translator under test serves an
//!   OpenAI Chat client on `/model/{id}/converse[-stream]`; no Chat request reaches Bedrock's
//!   `/model/{id}/count-tokens` (`test_bedrock_count_tokens_*`: its body is `{"input": {"converse":
//!   ...}}`, its answer `{"inputTokens": N}`), so those exchanges are in neither test.
//! - **CHAT_HAS_NO_PART_FOR** (requests only): a recorded Converse request holding a block Chat
//!   Completions has no part for (`cachePoint` cache breakpoints, `document` blocks:
//!   `test_bedrock_cache_write_and_read`) cannot have come from an OpenAI client, so it is not
//!   compared with what the translator builds. Its *answers* are checked like every other,
//!   including `prompt_tokens_details.cached_tokens` and the cache read/write counts.

use base64::Engine;
use gateway_core::config::{BedrockApi, BedrockSettings, Defaults, ProviderConfig, ProviderKind, ProviderSettings};
use gateway_core::translate::openai_to_bedrock::prepare;
use gateway_core::translate::{BodyMode, ResponseTranslator, Target};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

struct Interaction {
    name: String,
    path: String,
    request: Value,
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

/// Rule CHAT_HAS_NO_PART_FOR: Converse blocks no Chat Completions request can produce.
const CHAT_HAS_NO_PART_FOR: &[&str] = &["cachePoint", "document"];

/// Whether the recorded request holds a block of [`CHAT_HAS_NO_PART_FOR`] anywhere.
fn has_block_chat_cannot_express(v: &Value) -> bool {
    match v {
        Value::Object(o) => {
            o.keys().any(|k| CHAT_HAS_NO_PART_FOR.contains(&k.as_str()))
                || o.values().any(has_block_chat_cannot_express)
        }
        Value::Array(a) => a.iter().any(has_block_chat_cannot_express),
        _ => false,
    }
}

/// The recorded request without the blocks of [`CHAT_HAS_NO_PART_FOR`]: what an OpenAI client
/// can ask for of it (enough to set up the translator for the recorded answer).
fn chat_expressible(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), chat_expressible(v))).collect()),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter(|b| {
                    !b.as_object().is_some_and(|o| o.keys().any(|k| CHAT_HAS_NO_PART_FOR.contains(&k.as_str())))
                })
                .map(chat_expressible)
                .collect(),
        ),
        other => other.clone(),
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
                request: serde_json::from_slice(&bytes_of(&i["request"]["body"], false)).unwrap(),
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

/// The OpenAI request that should translate into the recorded Converse request.
fn openai_request(recorded: &Value, stream: bool) -> Value {
    let mut messages = Vec::new();
    for s in recorded["system"].as_array().into_iter().flatten() {
        messages.push(json!({"role": "system", "content": s["text"]}));
    }
    for m in recorded["messages"].as_array().unwrap() {
        let blocks = m["content"].as_array().unwrap();
        if m["role"] == "assistant" {
            let text: String = blocks.iter().filter_map(|b| b["text"].as_str()).collect();
            let calls: Vec<Value> = blocks
                .iter()
                .filter_map(|b| b.get("toolUse"))
                .map(|t| json!({"id": t["toolUseId"], "type": "function", "function": {"name": t["name"], "arguments": t["input"].to_string()}}))
                .collect();
            let mut out =
                json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) }});
            if !calls.is_empty() {
                out["tool_calls"] = json!(calls);
            }
            messages.push(out);
            continue;
        }
        for b in blocks {
            if let Some(r) = b.get("toolResult") {
                let text: String = r["content"].as_array().unwrap().iter().filter_map(|c| c["text"].as_str()).collect();
                messages.push(json!({"role": "tool", "tool_call_id": r["toolUseId"], "content": text}));
            }
        }
        let texts: Vec<&Value> = blocks.iter().filter(|b| b.get("text").is_some()).collect();
        if texts.len() == 1 {
            messages.push(json!({"role": "user", "content": texts[0]["text"]}));
        } else if !texts.is_empty() {
            messages.push(json!({"role": "user", "content": texts.iter().map(|b| json!({"type": "text", "text": b["text"]})).collect::<Vec<_>>()}));
        }
    }
    let mut req = json!({"model": "alias", "messages": messages});
    let ic = &recorded["inferenceConfig"];
    for (from, to) in
        [("maxTokens", "max_tokens"), ("temperature", "temperature"), ("topP", "top_p"), ("stopSequences", "stop")]
    {
        if let Some(v) = ic.get(from) {
            req[to] = v.clone();
        }
    }
    if let Some(tc) = recorded.get("toolConfig") {
        req["tools"] = tc["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let s = &t["toolSpec"];
                let mut f = json!({"name": s["name"], "parameters": s["inputSchema"]["json"]});
                if let Some(d) = s.get("description") {
                    f["description"] = d.clone();
                }
                json!({"type": "function", "function": f})
            })
            .collect();
        if let Some(choice) = tc.get("toolChoice") {
            req["tool_choice"] = if choice.get("any").is_some() {
                json!("required")
            } else if choice.get("auto").is_some() {
                json!("auto")
            } else {
                json!({"type": "function", "function": {"name": choice["tool"]["name"]}})
            };
        }
    }
    if let Some(budget) = recorded["additionalModelRequestFields"]["thinking"]["budget_tokens"].as_u64() {
        req["reasoning_effort"] = json!(match budget {
            1024 => "low",
            4096 => "medium",
            _ => "high",
        });
    }
    if stream {
        req["stream"] = json!(true);
        req["stream_options"] = json!({"include_usage": true});
    }
    req
}

/// Drops what does not change the request's meaning: empty lists and objects, tool-result
/// `status: success` (OpenAI has no such field), `maxTokens` the gateway adds for thinking.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(o) => {
            let mut out = Map::new();
            for (k, val) in o {
                if k == "status" && val == "success" {
                    continue;
                }
                let n = normalize(val);
                let empty =
                    matches!(&n, Value::Array(a) if a.is_empty()) || matches!(&n, Value::Object(m) if m.is_empty());
                if !empty || k == "auto" || k == "any" || k == "input" {
                    out.insert(k.clone(), n);
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
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
    cached_tokens: u64,
}

/// The table, written out apart from the translator.
fn expected_finish(stop: &str) -> &'static str {
    match stop {
        "end_turn" | "stop_sequence" => "stop",
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        "guardrail_intervened" | "content_filtered" => "content_filter",
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
    o.prompt_tokens = prompt_of(usage);
    o.completion_tokens = u(&usage["outputTokens"]);
    o.cached_tokens = u(&usage["cacheReadInputTokens"]);
    o
}

/// OpenAI's `prompt_tokens` for Converse counts. Converse's `inputTokens` excludes cache reads
/// and writes: `test_bedrock_cache_write_and_read` has `inputTokens` 2, `cacheWriteInputTokens`
/// 1322, `outputTokens` 5 and `totalTokens` 1329 = 2 + 1322 + 5 (checked in the response test).
fn prompt_of(usage: &Value) -> u64 {
    u(&usage["inputTokens"]) + u(&usage["cacheReadInputTokens"]) + u(&usage["cacheWriteInputTokens"])
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
                o.prompt_tokens = prompt_of(usage);
                o.completion_tokens = u(&usage["outputTokens"]);
                o.cached_tokens = u(&usage["cacheReadInputTokens"]);
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

fn outcome_of_completion(v: &Value) -> Outcome {
    let m = &v["choices"][0]["message"];
    Outcome {
        text: m["content"].as_str().unwrap_or("").into(),
        reasoning: m["reasoning_content"].as_str().unwrap_or("").into(),
        tool_calls: m["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["id"].as_str().unwrap().into(),
                    c["function"]["name"].as_str().unwrap().into(),
                    serde_json::from_str(c["function"]["arguments"].as_str().unwrap()).unwrap(),
                )
            })
            .collect(),
        finish_reason: v["choices"][0]["finish_reason"].as_str().map(Into::into),
        prompt_tokens: u(&v["usage"]["prompt_tokens"]),
        completion_tokens: u(&v["usage"]["completion_tokens"]),
        cached_tokens: u(&v["usage"]["prompt_tokens_details"]["cached_tokens"]),
    }
}

fn outcome_of_sse(out: &[u8]) -> Outcome {
    let text = std::str::from_utf8(out).unwrap();
    let mut o = Outcome::default();
    let mut calls: Vec<(String, String, String)> = Vec::new();
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.last(), Some(&"data: [DONE]"), "stream must end with [DONE]");
    for e in &events[..events.len() - 1] {
        let v: Value = serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap();
        assert!(v.get("error").is_none(), "unexpected error chunk {v}");
        assert_eq!(v["object"], "chat.completion.chunk");
        if let Some(usage) = v.get("usage") {
            o.prompt_tokens = u(&usage["prompt_tokens"]);
            o.completion_tokens = u(&usage["completion_tokens"]);
            o.cached_tokens = u(&usage["prompt_tokens_details"]["cached_tokens"]);
        }
        let Some(choice) = v["choices"].get(0) else { continue };
        let d = &choice["delta"];
        o.text.push_str(d["content"].as_str().unwrap_or(""));
        o.reasoning.push_str(d["reasoning_content"].as_str().unwrap_or(""));
        for c in d["tool_calls"].as_array().into_iter().flatten() {
            let idx = u(&c["index"]) as usize;
            if idx == calls.len() {
                calls.push((
                    c["id"].as_str().unwrap().into(),
                    c["function"]["name"].as_str().unwrap().into(),
                    String::new(),
                ));
            }
            calls[idx].2.push_str(c["function"]["arguments"].as_str().unwrap_or(""));
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            o.finish_reason = Some(f.into());
        }
    }
    o.tool_calls = calls.into_iter().map(|(id, n, a)| (id, n, serde_json::from_str(&a).unwrap_or(json!({})))).collect();
    o
}

fn translator_for(i: &Interaction) -> Box<dyn ResponseTranslator> {
    let p = provider();
    let d = Defaults { max_tokens: 4096 };
    let body = openai_request(&chat_expressible(&i.request), i.is_stream()).to_string();
    let model = model_of(&i.path);
    prepare(body.as_bytes(), &Target { provider: &p, model: &model, defaults: &d, created_unix: 1 })
        .unwrap_or_else(|e| panic!("{}: {e}", i.name))
        .translator
}

#[test]
fn every_recorded_request_is_what_the_translator_builds() {
    let Some(all) = load() else { return };
    let (mut checked, mut not_converse, mut inexpressible) = (0, 0, 0);
    for i in &all {
        if !i.is_converse() {
            assert!(i.path.ends_with("/count-tokens"), "{}: unexpected endpoint {}", i.name, i.path);
            not_converse += 1;
            continue;
        }
        if has_block_chat_cannot_express(&i.request) {
            inexpressible += 1;
            continue;
        }
        let stream = i.path.ends_with("/converse-stream");
        let p = provider();
        let d = Defaults { max_tokens: 4096 };
        let body = openai_request(&i.request, stream).to_string();
        let model = model_of(&i.path);
        let prepared =
            prepare(body.as_bytes(), &Target { provider: &p, model: &model, defaults: &d, created_unix: 1 }).unwrap();
        assert_eq!(prepared.path, i.path, "{}", i.name);
        let mut ours: Value = serde_json::from_slice(&prepared.body.unwrap()).unwrap();
        let mut recorded = i.request.clone();
        if recorded.get("additionalModelRequestFields").is_some() {
            // With thinking on, the gateway also fixes maxTokens (from the defaults).
            assert_eq!(ours["inferenceConfig"]["maxTokens"], 4096, "{}", i.name);
            ours["inferenceConfig"].as_object_mut().unwrap().remove("maxTokens");
            recorded.as_object_mut().unwrap().remove("inferenceConfig");
        }
        assert_eq!(normalize(&ours), normalize(&recorded), "{}", i.name);
        checked += 1;
    }
    eprintln!(
        "checked {checked} requests; left out: {not_converse} by ConverseEndpointOnly, {inexpressible} by \
         CHAT_HAS_NO_PART_FOR"
    );
    assert_eq!((not_converse, inexpressible), (2, 2), "test_bedrock_count_tokens_*, test_bedrock_cache_write_and_read");
    assert!(checked >= 9, "every other Converse request: {checked}");
}

#[test]
fn every_recorded_response_translates_with_its_content_and_usage() {
    let Some(all) = load() else { return };
    let (mut streams, mut not_converse, mut cache_reads, mut cache_writes) = (0, 0, 0, 0);
    for i in all.iter() {
        // Rule ConverseEndpointOnly: count-tokens answers never reach this translator.
        if !i.is_converse() {
            not_converse += 1;
            continue;
        }
        let mut t = translator_for(i);
        let mode = t.on_headers(i.status, Some(&i.content_type));
        if i.status != 200 {
            assert_eq!(mode, BodyMode::Buffered);
            let out: Value = serde_json::from_slice(&t.translate_body(&i.body).unwrap().unwrap()).unwrap();
            let recorded: Value = serde_json::from_slice(&i.body).unwrap();
            assert_eq!(out["error"]["message"], recorded["message"], "{}", i.name);
            assert_eq!(out["error"]["type"], "invalid_request_error", "{}", i.name);
            continue;
        }
        if i.is_stream() {
            streams += 1;
            assert_eq!(mode, BodyMode::Streaming, "{}", i.name);
            let out = t.translate_chunk(&i.body, true);
            assert_eq!(outcome_of_sse(&out), expected_from_stream(&i.body), "{}", i.name);
            let usage = t.usage();
            let expected = expected_from_stream(&i.body);
            assert_eq!(
                (usage.input, usage.output, usage.cache_read),
                (expected.prompt_tokens, expected.completion_tokens, expected.cached_tokens),
                "{}",
                i.name
            );
        } else {
            assert_eq!(mode, BodyMode::Buffered);
            let out: Value = serde_json::from_slice(&t.translate_body(&i.body).unwrap().unwrap()).unwrap();
            assert_eq!(out["object"], "chat.completion");
            let expected = expected_from_json(&i.body);
            assert_eq!(outcome_of_completion(&out), expected, "{}", i.name);
            assert_eq!(u(&out["usage"]["total_tokens"]), expected.prompt_tokens + expected.completion_tokens);
            let recorded: Value = serde_json::from_slice(&i.body).unwrap();
            let usage = &recorded["usage"];
            // The convention behind prompt_of: Converse's own total counts the cache apart.
            if let Some(total) = usage["totalTokens"].as_u64() {
                assert_eq!(total, expected.prompt_tokens + expected.completion_tokens, "{}", i.name);
            }
            assert_eq!(
                (t.usage().input, t.usage().output, t.usage().cache_read, t.usage().cache_creation),
                (
                    expected.prompt_tokens,
                    expected.completion_tokens,
                    u(&usage["cacheReadInputTokens"]),
                    u(&usage["cacheWriteInputTokens"])
                ),
                "{}",
                i.name
            );
            cache_reads += usize::from(u(&usage["cacheReadInputTokens"]) > 0);
            cache_writes += usize::from(u(&usage["cacheWriteInputTokens"]) > 0);
        }
    }
    assert_eq!(streams, 3, "the three recorded event streams");
    assert_eq!(not_converse, 2, "the two count-tokens exchanges");
    // test_bedrock_cache_write_and_read: #0 writes 1322 tokens to the cache, #1 reads them.
    assert_eq!((cache_reads, cache_writes), (1, 1), "the cache recordings");
}

fn stream_recordings() -> Vec<Interaction> {
    load().unwrap_or_default().into_iter().filter(|i| i.status == 200 && i.is_stream()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

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

    /// A corrupted byte anywhere in a recorded stream ends it with an error chunk and `[DONE]`
    /// (or, if the byte only changed text, still a well-formed stream): never a panic.
    #[test]
    fn corrupted_recorded_streams_end_cleanly(at in any::<prop::sample::Index>(), flip in 1u8..=255) {
        for i in stream_recordings() {
            let mut body = i.body.clone();
            let k = at.index(body.len());
            body[k] ^= flip;
            let mut t = translator_for(&i);
            t.on_headers(200, Some(&i.content_type));
            let out = String::from_utf8(t.translate_chunk(&body, true)).unwrap();
            prop_assert!(out.ends_with("data: [DONE]\n\n"), "{}", i.name);
            prop_assert!(out.contains("\"code\":\"invalid_event_stream\""), "{} flip at {k}: CRC must catch it", i.name);
        }
    }
}
