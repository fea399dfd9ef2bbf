//! Unit tests of the Chat Completions codec.

use serde_json::{json, Value};

use super::*;
use crate::conversation::bridge::ProviderDecoder;
use crate::conversation::{
    BlockStart, Cache, Delta, Event, Extra, Family, FinishReason, Json, Message, Opaque, OutputFormat, Part,
    ProviderError, Reasoning, Request, Response, Role, Source, ToolChoice, ToolDef, ToolKind, Usage,
};

fn msg(role: Role, parts: Vec<Part>) -> Message {
    Message { role, parts }
}

fn call(id: &str, name: &str, arguments: &str) -> Part {
    Part::ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
        kind: ToolKind::Function,
        cache: None,
    }
}

fn json_text(v: Value) -> Json {
    Json::from_text(&v.to_string()).unwrap()
}

fn body(req: &Request) -> Value {
    let encoded = encode_request(req, "gpt-real").unwrap();
    assert_eq!(encoded.path, "/v1/chat/completions");
    assert_eq!(encoded.headers, vec![("content-type", "application/json".to_owned())]);
    serde_json::from_slice(&encoded.body).unwrap()
}

#[test]
fn messages_in_order_with_tool_results_first() {
    let cache = Some(Cache { kind: "ephemeral".into(), ttl: None });
    let req = Request {
        messages: vec![
            msg(Role::System, vec![Part::Text { text: "Be brief.".into(), cache, citations: None }]),
            msg(Role::User, vec![Part::text("weather?")]),
            msg(
                Role::Assistant,
                vec![
                    Part::Reasoning {
                        text: "t".into(),
                        signature: Some(Opaque { family: Family::Claude, data: "s".into() }),
                        cache: None,
                    },
                    Part::text("Checking."),
                    call("c1", "get", r#"{"city":"Paris"}"#),
                    call("c2", "now", ""),
                ],
            ),
            msg(Role::Developer, vec![Part::text("Mid-conversation rule."), Part::text("Second.")]),
            msg(
                Role::User,
                vec![
                    Part::ToolResult {
                        call_id: "c1".into(),
                        name: None,
                        content: vec![Part::text("21C")],
                        is_error: false,
                        cache: None,
                    },
                    Part::ToolResult {
                        call_id: "c2".into(),
                        name: None,
                        content: vec![
                            Part::text("no clock"),
                            Part::Image {
                                source: Source::Base64 { media_type: "image/png".into(), data: "iVBO".into() },
                                cache: None,
                            },
                        ],
                        is_error: true,
                        cache: None,
                    },
                    Part::text("and tomorrow?"),
                ],
            ),
            msg(
                Role::Assistant,
                vec![Part::RedactedReasoning { data: Opaque { family: Family::Claude, data: "x".into() } }],
            ),
        ],
        ..Default::default()
    };
    assert_eq!(
        body(&req)["messages"],
        json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"type": "function", "id": "c1", "function": {"name": "get", "arguments": "{\"city\":\"Paris\"}"}},
                {"type": "function", "id": "c2", "function": {"name": "now", "arguments": "{}"}}]},
            {"role": "developer", "content": [{"type": "text", "text": "Mid-conversation rule."}, {"type": "text", "text": "Second."}]},
            {"role": "tool", "content": "21C", "tool_call_id": "c1"},
            {"role": "tool", "content": "Error: no clock", "tool_call_id": "c2"},
            {"role": "user", "content": [
                {"type": "text", "text": "Content returned by tool call c2:"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}}]},
            {"role": "user", "content": "and tomorrow?"},
        ])
    );
}

#[test]
fn media_parts_and_rejections() {
    let req = Request {
        messages: vec![msg(
            Role::User,
            vec![
                Part::Image {
                    source: Source::Url { url: "https://e.com/a.png".into(), media_type: None },
                    cache: None,
                },
                Part::Document {
                    source: Source::Base64 { media_type: "application/pdf".into(), data: "JVBE".into() },
                    title: Some("r.pdf".into()),
                    context: None,
                    citations: None,
                    cache: None,
                },
                Part::Document {
                    source: Source::File { family: Family::OpenAi, id: "file-1".into() },
                    title: None,
                    context: None,
                    citations: None,
                    cache: None,
                },
                Part::Document {
                    source: Source::Text { media_type: "text/plain".into(), data: "body".into() },
                    title: None,
                    context: None,
                    citations: None,
                    cache: None,
                },
                Part::Audio { data: "UklG".into(), format: "wav".into() },
            ],
        )],
        ..Default::default()
    };
    assert_eq!(
        body(&req)["messages"][0]["content"],
        json!([
            {"type": "image_url", "image_url": {"url": "https://e.com/a.png"}},
            {"type": "file", "file": {"filename": "r.pdf", "file_data": "data:application/pdf;base64,JVBE"}},
            {"type": "file", "file": {"file_id": "file-1"}},
            {"type": "text", "text": "body"},
            {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}},
        ])
    );
    for (role, part) in [
        (
            Role::User,
            Part::Document {
                source: Source::Base64 { media_type: "application/msword".into(), data: "x".into() },
                title: None,
                context: None,
                citations: None,
                cache: None,
            },
        ),
        (Role::User, Part::Image { source: Source::File { family: Family::Claude, id: "f".into() }, cache: None }),
        (
            Role::System,
            Part::Image { source: Source::Url { url: "https://e/a.png".into(), media_type: None }, cache: None },
        ),
        (
            Role::Assistant,
            Part::Image { source: Source::Url { url: "https://e/a.png".into(), media_type: None }, cache: None },
        ),
        (Role::User, call("a", "b", "{}")),
    ] {
        let req = Request { messages: vec![msg(role, vec![part])], ..Default::default() };
        let e = encode_request(&req, "m").unwrap_err();
        assert_eq!((e.status(), e.param.as_deref()), (400, Some("messages[0].content[0]")));
    }
}

#[test]
fn scalar_fields_tools_and_extras() {
    let tool = ToolDef {
        name: "get".into(),
        description: Some("d".into()),
        input_schema: Some(json_text(json!({"type": "object", "properties": {}}))),
        kind: ToolKind::Function,
        strict: Some(true),
        cache: Some(Cache { kind: "ephemeral".into(), ttl: Some("1h".into()) }),
    };
    let free = ToolDef {
        name: "patch".into(),
        description: None,
        input_schema: None,
        kind: ToolKind::Custom,
        strict: None,
        cache: None,
    };
    let mut req = Request {
        messages: vec![msg(Role::User, vec![Part::text("x")])],
        tools: vec![tool, free],
        tool_choice: Some(ToolChoice::Tool("patch".into())),
        parallel_tool_calls: Some(false),
        max_output_tokens: Some(300),
        temperature: Some(0.2),
        top_p: Some(0.9),
        top_k: Some(5),
        stop: vec!["END".into()],
        stream: true,
        reasoning: Some(Reasoning::Budget(8000)),
        output_format: Some(OutputFormat::JsonSchema {
            name: None,
            schema: json_text(json!({"type": "object"})),
            strict: Some(true),
        }),
        user: Some("u-1".into()),
        extras: vec![
            Extra { family: Family::OpenAi, name: "seed".into(), value: json_text(json!(7)) },
            Extra { family: Family::OpenAi, name: "previous_response_id".into(), value: json_text(json!("r")) },
            Extra { family: Family::Claude, name: "context_management".into(), value: json_text(json!({})) },
            Extra { family: Family::Claude, name: "brand_new".into(), value: json_text(json!(1)) },
        ],
        ..Default::default()
    };
    let encoded = encode_request(&req, "gpt-real").unwrap();
    assert_eq!(encoded.dropped, vec!["previous_response_id", "context_management", "other", "top_k"]);
    let out: Value = serde_json::from_slice(&encoded.body).unwrap();
    assert_eq!(
        out,
        json!({"model": "gpt-real", "messages": [{"role": "user", "content": "x"}],
            "tools": [
                {"type": "function", "function": {"name": "get", "description": "d", "parameters": {"type": "object", "properties": {}}, "strict": true}},
                {"type": "custom", "custom": {"name": "patch"}}],
            "tool_choice": {"type": "custom", "custom": {"name": "patch"}},
            "parallel_tool_calls": false, "max_completion_tokens": 300, "temperature": 0.2, "top_p": 0.9,
            "stop": ["END"], "stream": true, "stream_options": {"include_usage": true},
            "response_format": {"type": "json_schema", "json_schema": {"name": "output", "schema": {"type": "object"}, "strict": true}},
            "reasoning_effort": "medium", "user": "u-1", "seed": 7})
    );
    for (reasoning, effort, expected) in [
        (Some(Reasoning::Budget(1024)), None, json!("low")),
        (Some(Reasoning::Budget(20000)), None, json!("high")),
        (Some(Reasoning::Adaptive), Some("max"), json!("high")),
        (Some(Reasoning::Adaptive), None, Value::Null),
        (Some(Reasoning::Disabled), Some("low"), Value::Null),
        (Some(Reasoning::Effort("minimal".into())), None, json!("minimal")),
        (None, Some("xhigh"), json!("xhigh")),
    ] {
        req.reasoning = reasoning;
        req.effort = effort.map(Into::into);
        assert_eq!(body(&req)["reasoning_effort"], expected, "{:?}", req.reasoning);
    }
    req.effort = Some("extreme".into());
    req.reasoning = None;
    assert!(encode_request(&req, "m").unwrap().dropped.contains(&"reasoning_effort"));
    for (choice, expected) in [
        (ToolChoice::Auto, json!("auto")),
        (ToolChoice::Required, json!("required")),
        (ToolChoice::None, json!("none")),
        (ToolChoice::Tool("get".into()), json!({"type": "function", "function": {"name": "get"}})),
    ] {
        req.tool_choice = Some(choice);
        assert_eq!(body(&req)["tool_choice"], expected);
    }
    req.tools.clear();
    let out = body(&req);
    assert!(out.get("tool_choice").is_none() && out.get("parallel_tool_calls").is_none() && out.get("tools").is_none());
    req.output_format = Some(OutputFormat::JsonObject);
    assert_eq!(body(&req)["response_format"], json!({"type": "json_object"}));
}

// --- decoding -----------------------------------------------------------------------------------

fn decode(body: Value) -> Response {
    OpenAiChatDecoder::new().decode_response(body.to_string().as_bytes()).unwrap()
}

fn stream(chunks: &[Value], done: bool) -> Vec<Event> {
    let mut text: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    if done {
        text.push_str("data: [DONE]\n\n");
    }
    let mut out = Vec::new();
    OpenAiChatDecoder::new().decode_chunk(text.as_bytes(), true, &mut out);
    out
}

fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "model": "gpt-x", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "usage": null})
}

#[test]
fn json_answer_with_reasoning_tools_and_usage() {
    let r = decode(json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-x", "choices": [{"index": 0,
        "message": {"role": "assistant", "content": "Let me look.", "reasoning_content": "think", "refusal": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": "{\"city\": \"Paris\"}"}},
            {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": ""}}]},
        "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120, "prompt_tokens_details": {"cached_tokens": 64}, "completion_tokens_details": {"reasoning_tokens": 5}}}));
    assert_eq!((r.id.as_deref(), r.model.as_deref()), (Some("chatcmpl-1"), Some("gpt-x")));
    assert_eq!(
        r.parts,
        vec![
            Part::Reasoning { text: "think".into(), signature: None, cache: None },
            Part::text("Let me look."),
            call("call_1", "get", "{\"city\": \"Paris\"}"),
            call("call_2", "now", "{}"),
        ]
    );
    assert_eq!(r.finish, Some(FinishReason::ToolUse));
    let custom = decode(json!({"id": "c", "model": "m", "choices": [{"message": {"content": null, "tool_calls": [
        {"id": "call_c", "type": "custom", "custom": {"name": "patch", "input": "*** Begin Patch"}}]}, "finish_reason": "tool_calls"}]}));
    assert_eq!(
        custom.parts,
        vec![Part::ToolCall {
            id: "call_c".into(),
            name: "patch".into(),
            arguments: "*** Begin Patch".into(),
            kind: ToolKind::Custom,
            cache: None
        }]
    );
    assert_eq!(
        r.usage,
        Usage { input: Some(100), output: Some(20), cache_read: Some(64), cache_write: None, reasoning: Some(5) }
    );
}

#[test]
fn finish_reasons_refusals_and_unreadable_answers() {
    for (finish, expected) in [
        ("stop", FinishReason::EndTurn),
        ("length", FinishReason::MaxTokens),
        ("tool_calls", FinishReason::ToolUse),
        ("function_call", FinishReason::ToolUse),
        ("content_filter", FinishReason::ContentFilter),
        ("weird", FinishReason::Other("weird".into())),
    ] {
        let r = decode(
            json!({"id": "c", "model": "m", "choices": [{"message": {"content": "x"}, "finish_reason": finish}]}),
        );
        assert_eq!(r.finish, Some(expected));
    }
    let r = decode(
        json!({"id": "c", "model": "m", "choices": [{"message": {"content": null, "refusal": "I can't"}, "finish_reason": "stop"}]}),
    );
    assert_eq!((r.parts, r.finish), (vec![Part::text("I can't")], Some(FinishReason::Refusal)));
    let mut d = OpenAiChatDecoder::new();
    for bad in [&b"<html>"[..], b"", br#"{"choices":[]}"#, b"[1]"] {
        assert_eq!(d.decode_response(bad).unwrap_err().status(), 502);
    }
}

#[test]
fn errors_keep_openai_code() {
    let mut d = OpenAiChatDecoder::new();
    let e = d.decode_error(400, br#"{"error":{"message":"too long","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#);
    assert_eq!(
        e,
        ProviderError { status: 400, code: Some("context_length_exceeded".into()), message: "too long".into() }
    );
    let e = d.decode_error(429, br#"{"error":{"message":"slow down","type":"rate_limit_error","code":null}}"#);
    assert_eq!(e.code.as_deref(), Some("rate_limit_error"));
    let e = d.decode_error(500, br#"{"error":{"message":"x","code":500}}"#);
    assert_eq!(e.code.as_deref(), Some("500"));
    let e = d.decode_error(502, b"<html>secret</html>");
    assert!(e.code.is_none() && !e.message.contains("secret"));
}

#[test]
fn stream_with_parallel_tool_calls_and_usage_after_finish() {
    let events = stream(
        &[
            json!({"id": "", "model": "", "choices": [], "prompt_filter_results": []}),
            chunk(json!({"role": "assistant", "content": ""}), None),
            chunk(json!({"reasoning_content": "hm"}), None),
            chunk(json!({"content": "Look"}), None),
            chunk(json!({"content": "ing."}), None),
            chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "get", "arguments": ""}}]}),
                None,
            ),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}), None),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}), None),
            chunk(
                json!({"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "now", "arguments": "{}"}}]}),
                None,
            ),
            chunk(json!({}), Some("tool_calls")),
            json!({"id": "chatcmpl-9", "model": "gpt-x", "choices": [], "usage": {"prompt_tokens": 50, "completion_tokens": 12, "prompt_tokens_details": {"cached_tokens": 10}}}),
        ],
        true,
    );
    let tool =
        |id: &str, name: &str| BlockStart::ToolCall { id: id.into(), name: name.into(), kind: ToolKind::Function };
    assert_eq!(
        events,
        vec![
            Event::Start { id: Some("chatcmpl-9".into()), model: Some("gpt-x".into()) },
            Event::BlockStart { index: 0, block: BlockStart::Reasoning },
            Event::Delta { index: 0, delta: Delta::Reasoning("hm".into()) },
            Event::BlockStop { index: 0 },
            Event::BlockStart { index: 1, block: BlockStart::Text },
            Event::Delta { index: 1, delta: Delta::Text("Look".into()) },
            Event::Delta { index: 1, delta: Delta::Text("ing.".into()) },
            Event::BlockStop { index: 1 },
            Event::BlockStart { index: 2, block: tool("call_a", "get") },
            Event::Delta { index: 2, delta: Delta::ToolArguments("{\"city\":".into()) },
            Event::Delta { index: 2, delta: Delta::ToolArguments("\"Paris\"}".into()) },
            Event::BlockStop { index: 2 },
            Event::BlockStart { index: 3, block: tool("call_b", "now") },
            Event::Delta { index: 3, delta: Delta::ToolArguments("{}".into()) },
            Event::BlockStop { index: 3 },
            Event::Usage(Usage {
                input: Some(50),
                output: Some(12),
                cache_read: Some(10),
                cache_write: None,
                reasoning: None
            }),
            Event::Finish(FinishReason::ToolUse),
            Event::End,
        ]
    );
}

#[test]
fn stream_ends_errors_and_truncation() {
    // No [DONE] after a finish reason: complete.
    let events = stream(&[chunk(json!({"content": "a"}), Some("stop"))], false);
    assert_eq!(&events[events.len() - 2..], &[Event::Finish(FinishReason::EndTurn), Event::End]);
    // No finish reason and no [DONE]: cut short.
    let events = stream(&[chunk(json!({"content": "a"}), None)], false);
    assert!(matches!(events.last(), Some(Event::Error(e)) if e.code.as_deref() == Some("incomplete_stream")));
    // An error object mid-stream ends it; nothing after counts.
    let events = stream(
        &[
            chunk(json!({"content": "a"}), None),
            json!({"error": {"message": "overloaded", "type": "server_error", "code": null}}),
            chunk(json!({"content": "late"}), Some("stop")),
        ],
        true,
    );
    assert_eq!(
        events.last(),
        Some(&Event::Error(ProviderError {
            status: 500,
            code: Some("server_error".into()),
            message: "overloaded".into()
        }))
    );
    assert!(!events.iter().any(|e| matches!(e, Event::Delta { delta: Delta::Text(t), .. } if t == "late")));
    // A refusal streamed.
    let events = stream(&[chunk(json!({"refusal": "No."}), None), chunk(json!({}), Some("stop"))], true);
    assert!(events.contains(&Event::Finish(FinishReason::Refusal)));
    // [DONE] alone still starts and ends the answer.
    assert_eq!(
        stream(&[], true),
        vec![Event::Start { id: None, model: None }, Event::Finish(FinishReason::EndTurn), Event::End]
    );
}
