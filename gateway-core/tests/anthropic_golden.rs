//! Golden tests against recorded Anthropic traffic: every recorded response (JSON, SSE, error)
//! goes through the translator and must keep the recording's text, tool calls, finish reason and
//! token counts; every recorded request must be what the translator builds from the equivalent
//! OpenAI request. Expected values are derived from the recordings, never hard-coded.
//!
//! Which recordings each test leaves out, and why (named rules, each counted):
//! - **OnlyMessagesEndpoint** (`Interaction::is_messages_call`): the translator under test serves an OpenAI Chat
//!   client on `/v1/messages`; an OpenAI client has no way to reach `/v1/messages/count_tokens`,
//!   so those exchanges (`*count_tokens*#0`, their answers `{"input_tokens": N}` and a 404) are
//!   no answer this translator can be given. Every `/v1/messages` exchange is checked.
//! - **CHAT_HAS_NO_FIELD_FOR**: members of the recorded Anthropic request that no Chat
//!   Completions request can express (`output_config`, prompt-caching `cache_control` at the top
//!   level or on a block) are removed from the expected request; the rest must match exactly.
//!   The answers of those requests (the `test_anthropic_cache_*` cache reads and writes) are all
//!   checked, `prompt_tokens_details.cached_tokens` included.

mod common;

use gateway_core::config::{Defaults, ProviderConfig, ProviderKind};
use gateway_core::translate::openai_to_anthropic::{prepare, AnthropicResponse};
use gateway_core::translate::{BodyMode, ResponseTranslator, Target};
use serde_json::{json, Map, Value};

/// What a client ends up knowing about an answer, in either API.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    text: String,
    reasoning: String,
    /// (id, name, arguments as parsed JSON), in order.
    tool_calls: Vec<(String, String, Value)>,
    finish_reason: Option<String>,
    prompt_tokens: u64,
    completion_tokens: u64,
    cached_tokens: u64,
}

/// The mapping table, written out independently of the translator.
fn expected_finish(stop_reason: &str) -> &'static str {
    match stop_reason {
        "end_turn" | "stop_sequence" | "pause_turn" => "stop",
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        other => panic!("stop reason {other} missing from the test table"),
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn prompt_of(usage: &Value) -> u64 {
    u(&usage["input_tokens"]) + u(&usage["cache_read_input_tokens"]) + u(&usage["cache_creation_input_tokens"])
}

fn expected_from_message(m: &Value) -> Outcome {
    let mut o = Outcome::default();
    for block in m["content"].as_array().unwrap() {
        match block["type"].as_str().unwrap() {
            "text" => o.text.push_str(block["text"].as_str().unwrap()),
            "thinking" => o.reasoning.push_str(block["thinking"].as_str().unwrap()),
            "tool_use" => o.tool_calls.push((
                block["id"].as_str().unwrap().into(),
                block["name"].as_str().unwrap().into(),
                block["input"].clone(),
            )),
            _ => {}
        }
    }
    o.finish_reason = m["stop_reason"].as_str().map(|s| expected_finish(s).to_owned());
    o.prompt_tokens = prompt_of(&m["usage"]);
    o.completion_tokens = u(&m["usage"]["output_tokens"]);
    o.cached_tokens = u(&m["usage"]["cache_read_input_tokens"]);
    o
}

/// Reads an Anthropic SSE recording directly (they use LF line ends and one data line per event).
fn expected_from_sse(body: &[u8]) -> Outcome {
    let mut o = Outcome::default();
    let mut tool_json: Vec<(u64, String)> = Vec::new();
    for line in std::str::from_utf8(body).unwrap().lines() {
        let Some(data) = line.strip_prefix("data: ") else { continue };
        let e: Value = serde_json::from_str(data).unwrap();
        match e["type"].as_str().unwrap() {
            "message_start" => {
                o.prompt_tokens = prompt_of(&e["message"]["usage"]);
                o.cached_tokens = u(&e["message"]["usage"]["cache_read_input_tokens"]);
            }
            "content_block_start" if e["content_block"]["type"] == "tool_use" => {
                let b = &e["content_block"];
                o.tool_calls.push((b["id"].as_str().unwrap().into(), b["name"].as_str().unwrap().into(), Value::Null));
                tool_json.push((u(&e["index"]), String::new()));
            }
            "content_block_delta" => {
                let d = &e["delta"];
                match d["type"].as_str().unwrap() {
                    "text_delta" => o.text.push_str(d["text"].as_str().unwrap()),
                    "thinking_delta" => o.reasoning.push_str(d["thinking"].as_str().unwrap()),
                    "input_json_delta" => {
                        let slot = tool_json.iter_mut().find(|(i, _)| *i == u(&e["index"])).unwrap();
                        slot.1.push_str(d["partial_json"].as_str().unwrap());
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                o.finish_reason = e["delta"]["stop_reason"].as_str().map(|s| expected_finish(s).to_owned());
                o.completion_tokens = u(&e["usage"]["output_tokens"]);
                if e["usage"].get("input_tokens").is_some() {
                    o.prompt_tokens = prompt_of(&e["usage"]);
                }
            }
            _ => {}
        }
    }
    for (call, (_, json)) in o.tool_calls.iter_mut().zip(tool_json) {
        call.2 = if json.is_empty() { json!({}) } else { serde_json::from_str(&json).unwrap() };
    }
    o
}

fn actual_from_completion(v: &Value) -> Outcome {
    assert_eq!(v["object"], "chat.completion");
    let choices = v["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 1);
    let message = &choices[0]["message"];
    assert_eq!(message["role"], "assistant");
    let mut o = Outcome {
        text: message["content"].as_str().unwrap_or("").to_owned(),
        reasoning: message["reasoning_content"].as_str().unwrap_or("").to_owned(),
        finish_reason: choices[0]["finish_reason"].as_str().map(str::to_owned),
        prompt_tokens: u(&v["usage"]["prompt_tokens"]),
        completion_tokens: u(&v["usage"]["completion_tokens"]),
        cached_tokens: u(&v["usage"]["prompt_tokens_details"]["cached_tokens"]),
        ..Default::default()
    };
    assert_eq!(u(&v["usage"]["total_tokens"]), o.prompt_tokens + o.completion_tokens);
    for call in message["tool_calls"].as_array().into_iter().flatten() {
        assert_eq!(call["type"], "function");
        let args = call["function"]["arguments"].as_str().expect("arguments must be a JSON string");
        o.tool_calls.push((
            call["id"].as_str().unwrap().into(),
            call["function"]["name"].as_str().unwrap().into(),
            serde_json::from_str(args).unwrap(),
        ));
    }
    o
}

/// Replays OpenAI chunks the way the OpenAI SDK accumulates them.
fn actual_from_chunks(out: &[u8], expect_usage_chunk: bool) -> (Outcome, String) {
    let text = std::str::from_utf8(out).unwrap();
    let mut o = Outcome::default();
    let mut args: Vec<String> = Vec::new();
    let mut id = String::new();
    let mut saw_usage = false;
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.last(), Some(&"data: [DONE]"), "stream must end with [DONE]");
    for event in &events[..events.len() - 1] {
        let data = event.strip_prefix("data: ").unwrap_or_else(|| panic!("not a data event: {event:?}"));
        let chunk: Value = serde_json::from_str(data).unwrap();
        assert!(chunk.get("error").is_none(), "unexpected error chunk {chunk}");
        assert_eq!(chunk["object"], "chat.completion.chunk");
        id = chunk["id"].as_str().unwrap().to_owned();
        if let Some(usage) = chunk.get("usage") {
            assert_eq!(chunk["choices"], json!([]));
            o.prompt_tokens = u(&usage["prompt_tokens"]);
            o.completion_tokens = u(&usage["completion_tokens"]);
            o.cached_tokens = u(&usage["prompt_tokens_details"]["cached_tokens"]);
            saw_usage = true;
            continue;
        }
        let choice = &chunk["choices"][0];
        let delta = &choice["delta"];
        o.text.push_str(delta["content"].as_str().unwrap_or(""));
        o.reasoning.push_str(delta["reasoning_content"].as_str().unwrap_or(""));
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let index = u(&call["index"]) as usize;
            if let Some(id) = call["id"].as_str() {
                assert_eq!(index, o.tool_calls.len(), "tool call indexes count from 0");
                o.tool_calls.push((id.into(), call["function"]["name"].as_str().unwrap().into(), Value::Null));
                args.push(String::new());
            }
            args[index].push_str(call["function"]["arguments"].as_str().unwrap());
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            o.finish_reason = Some(reason.to_owned());
        }
    }
    assert_eq!(saw_usage, expect_usage_chunk);
    for (call, json) in o.tool_calls.iter_mut().zip(args) {
        call.2 = serde_json::from_str(&json).unwrap();
    }
    (o, id)
}

#[test]
fn recorded_responses_translate_faithfully() {
    let Some(interactions) = common::load() else { return };
    let mut checked = (0, 0, 0);
    let (mut not_messages, mut with_cache_reads, mut with_cache_writes) = (0, 0, 0);
    for it in &interactions {
        // Rule OnlyMessagesEndpoint (see the module doc).
        if !it.is_messages_call() {
            assert!(it.uri.contains("/v1/messages/count_tokens"), "{}: unexpected endpoint {}", it.name, it.uri);
            not_messages += 1;
            continue;
        }
        let recorded: Option<Value> = if it.is_sse() { None } else { serde_json::from_slice(&it.body).ok() };
        if !(200..300).contains(&it.status) {
            let mut t = AnthropicResponse::new(1, true);
            assert_eq!(t.on_headers(it.status, Some(&it.content_type)), BodyMode::Buffered, "{}", it.name);
            let out: Value = serde_json::from_slice(&t.translate_body(&it.body).unwrap().unwrap()).unwrap();
            let recorded = recorded.unwrap();
            assert_eq!(out["error"]["message"], recorded["error"]["message"], "{}", it.name);
            assert_eq!(out["error"]["code"], recorded["error"]["type"], "{}", it.name);
            let expected_type = match it.status {
                401 => "authentication_error",
                403 => "permission_error",
                429 => "rate_limit_error",
                400..=499 => "invalid_request_error",
                _ => "server_error",
            };
            assert_eq!(out["error"]["type"], expected_type, "{}", it.name);
            assert!(out["error"].get("param").is_some());
            checked.2 += 1;
        } else if it.is_sse() {
            let expected = expected_from_sse(&it.body);
            assert!(!expected.text.is_empty() || !expected.tool_calls.is_empty(), "{}: empty recording?", it.name);
            for include_usage in [true, false] {
                let mut t = AnthropicResponse::new(7, include_usage);
                assert_eq!(t.on_headers(it.status, Some(&it.content_type)), BodyMode::Streaming);
                let out = t.translate_chunk(&it.body, true);
                let (mut actual, id) = actual_from_chunks(&out, include_usage);
                assert!(id.starts_with("msg_"), "{}: chunk id {id}", it.name);
                let usage = t.usage();
                assert_eq!(
                    (usage.input, usage.output, usage.cache_read),
                    (expected.prompt_tokens, expected.completion_tokens, expected.cached_tokens),
                    "{}",
                    it.name
                );
                if !include_usage {
                    actual.prompt_tokens = usage.input;
                    actual.completion_tokens = usage.output;
                    actual.cached_tokens = usage.cache_read;
                }
                assert_eq!(actual, expected, "{}", it.name);
            }
            checked.1 += 1;
        } else {
            let recorded = recorded.unwrap();
            let mut t = AnthropicResponse::new(1_700_000_000, false);
            assert_eq!(t.on_headers(it.status, Some(&it.content_type)), BodyMode::Buffered);
            let out: Value = serde_json::from_slice(&t.translate_body(&it.body).unwrap().unwrap()).unwrap();
            assert_eq!(out["id"], recorded["id"], "{}", it.name);
            assert_eq!(out["model"], recorded["model"], "{}", it.name);
            assert_eq!(out["created"], 1_700_000_000);
            assert_eq!(actual_from_completion(&out), expected_from_message(&recorded), "{}", it.name);
            let usage = &recorded["usage"];
            assert_eq!(t.usage().input, prompt_of(usage));
            assert_eq!(t.usage().output, u(&usage["output_tokens"]));
            assert_eq!(t.usage().cache_read, u(&usage["cache_read_input_tokens"]), "{}", it.name);
            assert_eq!(t.usage().cache_creation, u(&usage["cache_creation_input_tokens"]), "{}", it.name);
            if u(&usage["cache_read_input_tokens"]) > 0 {
                // The OpenAI surface says how much of the prompt came from the cache.
                assert_eq!(out["usage"]["prompt_tokens_details"]["cached_tokens"], usage["cache_read_input_tokens"]);
                with_cache_reads += 1;
            }
            if u(&usage["cache_creation_input_tokens"]) > 0 {
                with_cache_writes += 1;
            }
            checked.0 += 1;
        }
    }
    eprintln!(
        "checked {} JSON, {} SSE, {} error responses ({with_cache_reads} with cache reads, {with_cache_writes} with \
         cache writes); left out by OnlyMessagesEndpoint: {not_messages}",
        checked.0, checked.1, checked.2
    );
    assert!(checked.0 > 0 && checked.1 > 0 && checked.2 > 0, "every kind of recording must be covered: {checked:?}");
    // test_anthropic_cache_count_tokens#1, test_anthropic_cache_real_api#0 and #1 read the cache;
    // test_anthropic_cache_real_api#1 also writes to it.
    assert!(with_cache_reads >= 3 && with_cache_writes >= 1, "the prompt-caching recordings must be checked");
    assert_eq!(not_messages, 3, "the three count_tokens exchanges");
}

/// The OpenAI request a client would send to get the recorded Anthropic request: the reverse
/// mapping, written from the OpenAI side.
fn openai_request_for(anthropic: &Value) -> Value {
    let mut messages = Vec::new();
    match &anthropic["system"] {
        Value::Null => {}
        Value::String(s) => messages.push(json!({"role": "system", "content": s})),
        Value::Array(blocks) => {
            for b in blocks {
                messages.push(json!({"role": "system", "content": b["text"]}));
            }
        }
        other => panic!("system {other}"),
    }
    for m in anthropic["messages"].as_array().unwrap() {
        let blocks = m["content"].as_array().unwrap();
        if m["role"] == "user" {
            let mut parts = Vec::new();
            for b in blocks {
                match b["type"].as_str().unwrap() {
                    "tool_result" => messages
                        .push(json!({"role": "tool", "tool_call_id": b["tool_use_id"], "content": b["content"]})),
                    "text" => parts.push(json!({"type": "text", "text": b["text"]})),
                    "image" => {
                        let s = &b["source"];
                        let url = match s["type"].as_str().unwrap() {
                            "url" => s["url"].as_str().unwrap().to_owned(),
                            "base64" => format!(
                                "data:{};base64,{}",
                                s["media_type"].as_str().unwrap(),
                                s["data"].as_str().unwrap()
                            ),
                            t => panic!("image source {t}"),
                        };
                        parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
                    }
                    t => panic!("user block {t}"),
                }
            }
            // A lone text goes as a plain string, so both content shapes are exercised.
            match parts.as_slice() {
                [] => {}
                [one] if one["type"] == "text" => messages.push(json!({"role": "user", "content": one["text"]})),
                _ => messages.push(json!({"role": "user", "content": parts})),
            }
        } else {
            let text: Vec<&Value> = blocks.iter().filter(|b| b["type"] == "text").map(|b| &b["text"]).collect();
            let calls: Vec<Value> = blocks
                .iter()
                .filter(|b| b["type"] == "tool_use")
                .map(|b| json!({"id": b["id"], "type": "function", "function": {"name": b["name"], "arguments": b["input"].to_string()}}))
                .collect();
            let mut msg = json!({"role": "assistant", "content": match text.as_slice() { [] => Value::Null, [one] => (*one).clone(), many => many.iter().map(|t| json!({"type": "text", "text": t})).collect() }});
            if !calls.is_empty() {
                msg["tool_calls"] = Value::Array(calls);
            }
            messages.push(msg);
        }
    }
    let mut req = json!({"model": "public-alias", "messages": messages});
    for key in ["max_tokens", "stream", "temperature", "top_p"] {
        if let Some(v) = anthropic.get(key) {
            req[key] = v.clone();
        }
    }
    if let Some(stops) = anthropic.get("stop_sequences") {
        req["stop"] = stops.clone();
    }
    if let Some(tools) = anthropic["tools"].as_array() {
        req["tools"] = tools
            .iter()
            .map(|t| {
                let mut f = json!({"name": t["name"], "parameters": t["input_schema"]});
                if let Some(d) = t.get("description") {
                    f["description"] = d.clone();
                }
                json!({"type": "function", "function": f})
            })
            .collect();
    }
    if let Some(choice) = anthropic.get("tool_choice") {
        req["tool_choice"] = match choice["type"].as_str().unwrap() {
            "auto" => json!("auto"),
            "any" => json!("required"),
            "none" => json!("none"),
            "tool" => json!({"type": "function", "function": {"name": choice["name"]}}),
            t => panic!("tool_choice {t}"),
        };
        if choice["disable_parallel_tool_use"] == true {
            req["parallel_tool_calls"] = json!(false);
        }
    }
    if let Some(budget) = anthropic["thinking"]["budget_tokens"].as_u64() {
        req["reasoning_effort"] = json!(match budget {
            1024 => "low",
            4096 => "medium",
            other => panic!("no effort maps to budget {other}"),
        });
    }
    req
}

/// Rule CHAT_HAS_NO_FIELD_FOR: Anthropic request members no Chat Completions request can
/// express, so no OpenAI client can have asked for them: `(where, member)`.
const CHAT_HAS_NO_FIELD_FOR: &[(&str, &str)] = &[
    // `output_config.effort` and friends: Chat has `reasoning_effort`, mapped to a thinking
    // budget instead.
    ("top level", "output_config"),
    // Prompt caching: Chat Completions has no cache breakpoints (OpenAI caches on its own).
    ("top level", "cache_control"),
    ("any block", "cache_control"),
];

/// The recorded request without the members of [`CHAT_HAS_NO_FIELD_FOR`].
fn without_chat_inexpressible(mut v: Value) -> Value {
    fn strip_blocks(v: &mut Value) {
        match v {
            Value::Object(o) => {
                o.remove("cache_control");
                o.values_mut().for_each(strip_blocks);
            }
            Value::Array(a) => a.iter_mut().for_each(strip_blocks),
            _ => {}
        }
    }
    let obj: &mut Map<String, Value> = v.as_object_mut().unwrap();
    for (place, member) in CHAT_HAS_NO_FIELD_FOR {
        match *place {
            "top level" => {
                obj.remove(*member);
            }
            "any block" => {
                assert_eq!(*member, "cache_control");
                for key in ["system", "messages", "tools"] {
                    if let Some(x) = obj.get_mut(key) {
                        strip_blocks(x);
                    }
                }
            }
            other => panic!("place {other}"),
        }
    }
    v
}

/// `is_error: false` is Anthropic's default; the translator leaves it out.
fn normalize(mut v: Value) -> Value {
    if let Some(obj) = v.as_object_mut() {
        if obj.get("is_error") == Some(&Value::Bool(false)) {
            obj.remove("is_error");
        }
        if obj.get("stream") == Some(&Value::Bool(false)) {
            obj.remove("stream");
        }
        let keys: Vec<String> = obj.keys().cloned().collect();
        for k in keys {
            let child = obj.remove(&k).unwrap();
            obj.insert(k, normalize(child));
        }
    } else if let Some(arr) = v.as_array_mut() {
        for x in arr.iter_mut() {
            *x = normalize(std::mem::take(x));
        }
    }
    v
}

#[test]
fn recorded_requests_are_what_the_translator_builds() {
    let Some(interactions) = common::load() else { return };
    let (mut checked, mut reduced) = (0, 0);
    // Rule OnlyMessagesEndpoint: count_tokens requests are not what this translator builds.
    for it in interactions.iter().filter(|it| it.is_messages_call()) {
        let recorded = it.request.as_ref().unwrap_or_else(|| panic!("{}: no request body", it.name));
        let openai = openai_request_for(recorded);
        let provider = ProviderConfig {
            name: "anthropic".into(),
            kind: ProviderKind::Anthropic,
            cluster: "c".into(),
            credential: None,
            path_prefix: None,
            settings: Default::default(),
        };
        let defaults = Defaults::default();
        let model = recorded["model"].as_str().unwrap();
        let target = Target { provider: &provider, model, defaults: &defaults, created_unix: 0 };
        let prepared = prepare(openai.to_string().as_bytes(), &target).unwrap_or_else(|e| panic!("{}: {e}", it.name));
        assert_eq!(prepared.path, "/v1/messages");
        let built: Value = serde_json::from_slice(&prepared.body.unwrap()).unwrap();
        let expected = without_chat_inexpressible(normalize(recorded.clone()));
        if expected != normalize(recorded.clone()) {
            reduced += 1;
        }
        assert_eq!(normalize(built), expected, "{}\nOpenAI request: {openai}", it.name);
        checked += 1;
    }
    eprintln!("checked {checked} recorded requests, {reduced} of them without CHAT_HAS_NO_FIELD_FOR members");
    assert!(checked >= 12, "expected every /v1/messages recording, got {checked}");
    // The three prompt-caching requests (top-level `cache_control`) and the `output_config` one.
    assert_eq!(reduced, 4, "requests with members Chat cannot express");
}
