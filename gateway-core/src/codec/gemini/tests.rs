//! Unit tests of the Gemini codec: request encoding, answer decoding, and the thought signature
//! round trip through a conversation.

use serde_json::{json, Value};

use super::*;
use crate::conversation::bridge::ProviderDecoder;
use crate::conversation::{
    BlockStart, Cache, Delta, Event, Extra, Family, FinishReason, Json, Message, Opaque, OutputFormat, Part, Reasoning,
    Request, Role, Source, ToolChoice, ToolDef, ToolKind, Usage,
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

fn result(id: &str, text: &str, is_error: bool) -> Part {
    Part::ToolResult { call_id: id.into(), name: None, content: vec![Part::text(text)], is_error, cache: None }
}

fn gemini_sig(data: &str) -> Part {
    Part::Reasoning {
        text: String::new(),
        signature: Some(Opaque { family: Family::Gemini, data: data.into() }),
        cache: None,
    }
}

fn body(req: &Request) -> Value {
    let encoded = encode_request(req, "models/gemini-2.5-flash", 0).unwrap();
    assert_eq!(encoded.headers, vec![("content-type", "application/json".to_owned())]);
    serde_json::from_slice(&encoded.body).unwrap()
}

fn json_text(v: Value) -> Json {
    Json::from_text(&v.to_string()).unwrap()
}

#[test]
fn paths_and_model_validation() {
    let mut req = Request { messages: vec![msg(Role::User, vec![Part::text("hi")])], ..Default::default() };
    assert_eq!(
        encode_request(&req, "gemini-2.5-flash", 0).unwrap().path,
        "/v1beta/models/gemini-2.5-flash:generateContent"
    );
    req.stream = true;
    assert_eq!(
        encode_request(&req, "models/gemini-2.0-flash", 0).unwrap().path,
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    );
    for bad in ["", "../x", "a:b?c", "a/b"] {
        assert_eq!(encode_request(&req, bad, 0).unwrap_err().status(), 500, "{bad}");
    }
    assert_eq!(body(&req), json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}));
}

#[test]
fn system_messages_lead_or_stay_in_place() {
    let req = Request {
        messages: vec![
            msg(Role::System, vec![Part::text("Be brief.")]),
            msg(Role::Developer, vec![Part::text("Use tools.")]),
            msg(Role::User, vec![Part::text("hi")]),
            msg(Role::Assistant, vec![Part::text("hello")]),
            msg(Role::System, vec![Part::text("Now be formal.")]),
            msg(Role::User, vec![Part::text("again")]),
        ],
        ..Default::default()
    };
    let out = body(&req);
    assert_eq!(out["systemInstruction"], json!({"parts": [{"text": "Be brief."}, {"text": "Use tools."}]}));
    assert_eq!(
        out["contents"],
        json!([
            {"role": "user", "parts": [{"text": "hi"}]},
            {"role": "model", "parts": [{"text": "hello"}]},
            {"role": "user", "parts": [{"text": "<system>\nNow be formal.\n</system>"}, {"text": "again"}]},
        ])
    );
    let bad = Request {
        messages: vec![msg(
            Role::System,
            vec![Part::Image { source: Source::Url { url: "https://x/a.png".into(), media_type: None }, cache: None }],
        )],
        ..Default::default()
    };
    assert_eq!(encode_request(&bad, "m", 0).unwrap_err().param.as_deref(), Some("messages[0].content[0]"));
}

#[test]
fn tool_calls_and_results_match_by_name() {
    let req = Request {
        messages: vec![
            msg(Role::User, vec![Part::text("weather?")]),
            msg(
                Role::Assistant,
                vec![
                    Part::text("Looking."),
                    call("t1", "get_weather", r#"{"city":"Paris"}"#),
                    call("t2", "get_time", ""),
                ],
            ),
            msg(
                Role::User,
                vec![
                    result("t2", "noon", false),
                    result("t1", r#"{"temp": 21}"#, false),
                    Part::ToolResult {
                        call_id: "zz".into(),
                        name: Some("named".into()),
                        content: vec![Part::text("boom")],
                        is_error: true,
                        cache: None,
                    },
                    Part::ToolResult {
                        call_id: "t1".into(),
                        name: None,
                        content: vec![
                            Part::text(r#"{"code": 7}"#),
                            Part::Image {
                                source: Source::Base64 { media_type: "image/png".into(), data: "iVBO".into() },
                                cache: None,
                            },
                        ],
                        is_error: true,
                        cache: None,
                    },
                ],
            ),
        ],
        ..Default::default()
    };
    let out = body(&req);
    assert_eq!(
        out["contents"],
        json!([
            {"role": "user", "parts": [{"text": "weather?"}]},
            {"role": "model", "parts": [
                {"text": "Looking."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": request::PLACEHOLDER_SIGNATURE},
                {"functionCall": {"name": "get_time", "args": {}}}]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_time", "response": {"output": "noon"}}},
                {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                {"functionResponse": {"name": "named", "response": {"error": "boom"}}},
                {"functionResponse": {"name": "get_weather", "response": {"error": {"code": 7}}}},
                {"inlineData": {"mimeType": "image/png", "data": "iVBO"}}]},
        ])
    );
    let orphan = Request { messages: vec![msg(Role::User, vec![result("nope", "x", false)])], ..Default::default() };
    let e = encode_request(&orphan, "m", 0).unwrap_err();
    assert_eq!((e.status(), e.param.as_deref()), (400, Some("messages[0].content[0].tool_use_id")));
    let bad_args = Request { messages: vec![msg(Role::Assistant, vec![call("a", "f", "[1]")])], ..Default::default() };
    assert_eq!(encode_request(&bad_args, "m", 0).unwrap_err().status(), 400);
}

#[test]
fn signatures_go_back_on_the_part_after_their_reasoning() {
    let claude = Part::Reasoning {
        text: "thinking".into(),
        signature: Some(Opaque { family: Family::Claude, data: "claude-sig".into() }),
        cache: None,
    };
    let req = Request {
        messages: vec![
            msg(Role::User, vec![Part::text("q")]),
            msg(
                Role::Assistant,
                vec![
                    claude,
                    Part::Reasoning { text: "summary".into(), signature: None, cache: None },
                    gemini_sig("S1"),
                    call("a", "f", "{}"),
                    call("b", "g", "{}"),
                    gemini_sig("S2"),
                    Part::text("done"),
                    gemini_sig("S3"),
                    gemini_sig("S4"),
                ],
            ),
        ],
        ..Default::default()
    };
    let out = body(&req);
    assert_eq!(
        out["contents"][1]["parts"],
        json!([
            {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "S1"},
            {"functionCall": {"name": "g", "args": {}}},
            {"text": "done", "thoughtSignature": "S2"},
            {"text": "", "thoughtSignature": "S3"},
            {"text": "", "thoughtSignature": "S4"},
        ])
    );
    // A turn holding only other families' reasoning says nothing Gemini can take.
    let only = Request {
        messages: vec![
            msg(Role::User, vec![Part::text("q")]),
            msg(
                Role::Assistant,
                vec![Part::RedactedReasoning { data: Opaque { family: Family::Claude, data: "x".into() } }],
            ),
        ],
        ..Default::default()
    };
    assert_eq!(body(&only)["contents"].as_array().unwrap().len(), 1);
}

#[test]
fn media_parts() {
    let req = Request {
        messages: vec![msg(
            Role::User,
            vec![
                Part::Image {
                    source: Source::Url { url: "https://e.com/a.JPG?x".into(), media_type: None },
                    cache: None,
                },
                Part::Document {
                    source: Source::Base64 { media_type: "application/pdf".into(), data: "JVBE".into() },
                    title: None,
                    context: None,
                    citations: None,
                    cache: Some(Cache { kind: "ephemeral".into(), ttl: None }),
                },
                Part::Document {
                    source: Source::Text { media_type: "text/plain".into(), data: "body".into() },
                    title: Some("T".into()),
                    context: None,
                    citations: None,
                    cache: None,
                },
                Part::Audio { data: "UklG".into(), format: "wav".into() },
                Part::text(""),
            ],
        )],
        ..Default::default()
    };
    assert_eq!(
        body(&req)["contents"][0]["parts"],
        json!([
            {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://e.com/a.JPG?x"}},
            {"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}},
            {"text": "T\n\nbody"},
            {"inlineData": {"mimeType": "audio/wav", "data": "UklG"}},
        ])
    );
    for source in [
        Source::Url { url: "http://e.com/a.png".into(), media_type: None },
        Source::Url { url: "https://e.com/a".into(), media_type: None },
        Source::File { family: Family::Claude, id: "file_1".into() },
    ] {
        let req = Request {
            messages: vec![msg(Role::User, vec![Part::Image { source, cache: None }])],
            ..Default::default()
        };
        assert_eq!(encode_request(&req, "m", 0).unwrap_err().param.as_deref(), Some("messages[0].content[0]"));
    }
}

#[test]
fn tools_config_reasoning_and_extras() {
    let schema = json_text(
        json!({"type": "object", "$schema": "x", "additionalProperties": false, "properties": {"q": {"type": "string"}}, "required": ["q"]}),
    );
    let tool = |name: &str, schema: Option<Json>| ToolDef {
        name: name.into(),
        description: Some("d".into()),
        input_schema: schema,
        kind: ToolKind::Function,
        strict: Some(true),
        cache: None,
    };
    let mut req = Request {
        messages: vec![msg(Role::User, vec![Part::text("x")])],
        tools: vec![tool("search", Some(schema)), tool("noargs", Some(json_text(json!({}))))],
        tool_choice: Some(ToolChoice::Tool("search".into())),
        parallel_tool_calls: Some(false),
        max_output_tokens: Some(100),
        temperature: Some(0.5),
        top_p: Some(0.9),
        top_k: Some(40),
        stop: vec!["END".into()],
        reasoning: Some(Reasoning::Budget(31999)),
        output_format: Some(OutputFormat::JsonSchema {
            name: None,
            schema: json_text(json!({"type": "object", "additionalProperties": false})),
            strict: Some(true),
        }),
        user: Some("u".into()),
        extras: vec![
            Extra { family: Family::Claude, name: "context_management".into(), value: json_text(json!({"edits": []})) },
            Extra {
                family: Family::Gemini,
                name: "safetySettings".into(),
                value: json_text(json!([{"category": "x"}])),
            },
            Extra { family: Family::Gemini, name: "contents".into(), value: json_text(json!([])) },
        ],
        ..Default::default()
    };
    let encoded = encode_request(&req, "m", 0).unwrap();
    assert_eq!(encoded.dropped, vec!["parallel_tool_calls", "context_management", "other"]);
    let out: Value = serde_json::from_slice(&encoded.body).unwrap();
    assert_eq!(
        out["tools"],
        json!([{"functionDeclarations": [
            {"name": "search", "description": "d", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}},
            {"name": "noargs", "description": "d"}]}])
    );
    assert_eq!(
        out["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["search"]}})
    );
    assert_eq!(
        out["generationConfig"],
        json!({"maxOutputTokens": 100, "temperature": 0.5, "topP": 0.9, "topK": 40, "stopSequences": ["END"],
            "responseMimeType": "application/json", "responseSchema": {"type": "object"},
            "thinkingConfig": {"thinkingBudget": request::MAX_THINKING_BUDGET, "includeThoughts": true}})
    );
    assert_eq!(out["safetySettings"], json!([{"category": "x"}]));
    for (reasoning, effort, expected) in [
        (Some(Reasoning::Adaptive), None, json!({"thinkingBudget": -1, "includeThoughts": true})),
        (Some(Reasoning::Adaptive), Some("low"), json!({"thinkingBudget": 1024, "includeThoughts": true})),
        (Some(Reasoning::Disabled), Some("high"), json!({"thinkingBudget": 0})),
        (Some(Reasoning::Budget(2000)), None, json!({"thinkingBudget": 2000, "includeThoughts": true})),
        (Some(Reasoning::Effort("medium".into())), None, json!({"thinkingBudget": 8192, "includeThoughts": true})),
        (None, Some("minimal"), json!({"thinkingBudget": 0})),
        (None, None, Value::Null),
    ] {
        req.reasoning = reasoning;
        req.effort = effort.map(Into::into);
        let out: Value = serde_json::from_slice(&encode_request(&req, "m", 0).unwrap().body).unwrap();
        assert_eq!(out["generationConfig"]["thinkingConfig"], expected, "{:?}", req.reasoning);
    }
    for (choice, expected) in [
        (ToolChoice::Auto, json!({"mode": "AUTO"})),
        (ToolChoice::None, json!({"mode": "NONE"})),
        (ToolChoice::Required, json!({"mode": "ANY"})),
    ] {
        req.tool_choice = Some(choice);
        let out: Value = serde_json::from_slice(&encode_request(&req, "m", 0).unwrap().body).unwrap();
        assert_eq!(out["toolConfig"]["functionCallingConfig"], expected);
    }
    // No tools: no tool config; a default limit only when the request has none.
    let plain = Request {
        messages: vec![msg(Role::User, vec![Part::text("x")])],
        tool_choice: Some(ToolChoice::Required),
        ..Default::default()
    };
    let out: Value = serde_json::from_slice(&encode_request(&plain, "m", 4096).unwrap().body).unwrap();
    assert!(out.get("toolConfig").is_none());
    assert_eq!(out["generationConfig"], json!({"maxOutputTokens": 4096}));
    req.tools = vec![ToolDef { kind: ToolKind::Custom, ..tool("free", None) }];
    assert_eq!(encode_request(&req, "m", 0).unwrap_err().param.as_deref(), Some("tools[0]"));
}

// --- decoding -----------------------------------------------------------------------------------

fn decode(body: Value) -> Response {
    GeminiDecoder::new().decode_response(body.to_string().as_bytes()).unwrap()
}

fn stream(events: &[Value]) -> Vec<Event> {
    let text: String = events.iter().map(|e| format!("data: {e}\r\n\r\n")).collect();
    let mut out = Vec::new();
    GeminiDecoder::new().decode_chunk(text.as_bytes(), true, &mut out);
    out
}

use crate::conversation::Response;

#[test]
fn json_answer_with_thoughts_signed_call_and_usage() {
    let r = decode(json!({
        "responseId": "R1", "modelVersion": "gemini-2.5-pro",
        "candidates": [{"content": {"role": "model", "parts": [
            {"text": "Let me think", "thought": true},
            {"functionCall": {"name": "get", "args": {"q": 1}}, "thoughtSignature": "SIG"},
            {"functionCall": {"name": "put", "args": {}}},
            {"executableCode": {"code": "1"}}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "thoughtsTokenCount": 7, "cachedContentTokenCount": 4, "totalTokenCount": 22}
    }));
    assert_eq!((r.id.as_deref(), r.model.as_deref()), (Some("R1"), Some("gemini-2.5-pro")));
    assert_eq!(
        r.parts,
        vec![
            Part::Reasoning {
                text: "Let me think".into(),
                signature: Some(Opaque { family: Family::Gemini, data: "SIG".into() }),
                cache: None
            },
            call("call_R1_0", "get", r#"{"q":1}"#),
            call("call_R1_1", "put", "{}"),
            Part::Unknown { family: Family::Gemini, raw: json_text(json!({"executableCode": {"code": "1"}})) },
        ]
    );
    assert_eq!(r.finish, Some(FinishReason::ToolUse));
    assert_eq!(
        r.usage,
        Usage { input: Some(10), output: Some(12), cache_read: Some(4), cache_write: None, reasoning: Some(7) }
    );
}

#[test]
fn finish_reasons_and_blocked_prompts() {
    for (reason, expected) in [
        ("STOP", FinishReason::EndTurn),
        ("MAX_TOKENS", FinishReason::MaxTokens),
        ("SAFETY", FinishReason::ContentFilter),
        ("RECITATION", FinishReason::ContentFilter),
        ("MALFORMED_FUNCTION_CALL", FinishReason::Other("MALFORMED_FUNCTION_CALL".into())),
    ] {
        let r = decode(json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}));
        assert_eq!(r.finish, Some(expected));
        assert_eq!(r.parts, vec![Part::text("x")]);
        assert_eq!(r.usage, Usage::default());
    }
    let r = decode(json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}));
    assert_eq!((r.parts.len(), r.finish), (0, Some(FinishReason::ContentFilter)));
    let mut d = GeminiDecoder::new();
    for bad in [&b"[1]"[..], b"nope", br#"{"error":{"code":500,"message":"x"}}"#] {
        assert_eq!(d.decode_response(bad).unwrap_err().status(), 502);
    }
}

#[test]
fn errors_keep_google_status() {
    let mut d = GeminiDecoder::new();
    let e = d.decode_error(429, br#"{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}"#);
    assert_eq!(
        e,
        crate::conversation::ProviderError {
            status: 429,
            code: Some("RESOURCE_EXHAUSTED".into()),
            message: "Quota exceeded".into()
        }
    );
    let e = d.decode_error(400, br#"[{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}]"#);
    assert_eq!((e.code.as_deref(), e.message.as_str()), (Some("INVALID_ARGUMENT"), "bad"));
    let e = d.decode_error(502, b"<html>secret</html>");
    assert!(e.code.is_none() && !e.message.contains("secret"));
}

#[test]
fn stream_blocks_signatures_and_usage() {
    let events = stream(&[
        json!({"responseId": "R", "modelVersion": "g", "candidates": [{"content": {"parts": [{"text": "hm", "thought": true}]}}], "usageMetadata": {}}),
        json!({"candidates": [{"content": {"parts": [{"text": "Hel"}]}}], "usageMetadata": {"promptTokenCount": 9}}),
        json!({"candidates": [{"content": {"parts": [{"text": "lo"}]}}]}),
        json!({"candidates": [{"content": {"parts": [{"text": "", "thoughtSignature": "END"}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 2, "thoughtsTokenCount": 3}}),
    ]);
    let sig = Opaque { family: Family::Gemini, data: "END".into() };
    assert_eq!(
        events,
        vec![
            Event::Start { id: Some("R".into()), model: Some("g".into()) },
            Event::BlockStart { index: 0, block: BlockStart::Reasoning },
            Event::Delta { index: 0, delta: Delta::Reasoning("hm".into()) },
            Event::BlockStop { index: 0 },
            Event::BlockStart { index: 1, block: BlockStart::Text },
            Event::Delta { index: 1, delta: Delta::Text("Hel".into()) },
            Event::Usage(Usage { input: Some(9), ..Default::default() }),
            Event::Delta { index: 1, delta: Delta::Text("lo".into()) },
            Event::BlockStop { index: 1 },
            Event::BlockStart { index: 2, block: BlockStart::Reasoning },
            Event::Delta { index: 2, delta: Delta::Signature(sig) },
            Event::BlockStop { index: 2 },
            Event::Usage(Usage {
                input: Some(9),
                output: Some(5),
                cache_read: None,
                cache_write: None,
                reasoning: Some(3)
            }),
            Event::Finish(FinishReason::EndTurn),
            Event::End,
        ]
    );
}

#[test]
fn stream_errors_and_truncation() {
    let events = stream(&[
        json!({"candidates": [{"content": {"parts": [{"text": "a"}]}}]}),
        json!({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}),
        json!({"candidates": [{"content": {"parts": [{"text": "late"}]}, "finishReason": "STOP"}]}),
    ]);
    assert_eq!(
        events.last(),
        Some(&Event::Error(crate::conversation::ProviderError {
            status: 503,
            code: Some("UNAVAILABLE".into()),
            message: "overloaded".into()
        }))
    );
    assert!(!events.iter().any(|e| matches!(e, Event::Delta { delta: Delta::Text(t), .. } if t == "late")));
    let events = stream(&[json!({"candidates": [{"content": {"parts": [{"text": "a"}]}}]})]);
    assert!(matches!(events.last(), Some(Event::Error(e)) if e.code.as_deref() == Some("incomplete_stream")));
    let mut out = Vec::new();
    GeminiDecoder::new().decode_chunk(b"", true, &mut out);
    assert!(matches!(out.as_slice(), [Event::Error(_)]));
}

/// The issue's round trip: Gemini signs a function call, the answer goes to a client as
/// conversation parts, the client sends the turn back, and Gemini gets its signature on the
/// same function call, byte for byte.
#[test]
fn thought_signature_round_trips_onto_its_function_call() {
    let signature = "CiQBcsjafD+/x9Yz==\u{2028}\"quoted\"";
    let answer = json!({"responseId": "abc", "candidates": [{"content": {"role": "model", "parts": [
        {"text": "I will check.", "thoughtSignature": "TEXTSIG"},
        {"functionCall": {"name": "lookup", "args": {"city": "Paris"}}, "thoughtSignature": signature},
        {"functionCall": {"name": "lookup", "args": {"city": "Rome"}}}]}, "finishReason": "STOP"}]});
    let response = decode(answer.clone());
    // The same answer streamed in pieces gives the same parts.
    let mut streamed = Vec::new();
    let sse = format!("data: {answer}\n\n");
    let mut d = GeminiDecoder::new();
    for piece in sse.as_bytes().chunks(7) {
        d.decode_chunk(piece, false, &mut streamed);
    }
    d.decode_chunk(b"", true, &mut streamed);
    assert_eq!(crate::codec::collect::collect(&streamed).unwrap().parts, response.parts);

    let ids: Vec<String> = response
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::ToolCall { id, .. } => Some(id.clone()),
            _ => None,
        })
        .collect();
    let req = Request {
        messages: vec![
            msg(Role::User, vec![Part::text("weather in Paris and Rome?")]),
            msg(Role::Assistant, response.parts.clone()),
            msg(Role::User, ids.iter().map(|id| result(id, "sunny", false)).collect()),
        ],
        ..Default::default()
    };
    let encoded = encode_request(&req, "gemini-3-pro-preview", 0).unwrap();
    let sent: Value = serde_json::from_slice(&encoded.body).unwrap();
    assert_eq!(
        sent["contents"][1],
        json!({"role": "model", "parts": [
            {"text": "I will check.", "thoughtSignature": "TEXTSIG"},
            {"functionCall": {"name": "lookup", "args": {"city": "Paris"}}, "thoughtSignature": signature},
            {"functionCall": {"name": "lookup", "args": {"city": "Rome"}}}]})
    );
    assert_eq!(
        sent["contents"][2]["parts"],
        json!([{"functionResponse": {"name": "lookup", "response": {"output": "sunny"}}}, {"functionResponse": {"name": "lookup", "response": {"output": "sunny"}}}])
    );
    // Byte-identical in the body text itself, not only after JSON parsing.
    let escaped = serde_json::to_string(signature).unwrap();
    assert!(String::from_utf8(encoded.body).unwrap().contains(&format!("\"thoughtSignature\":{escaped}")));
}

/// A streamed text answer ends with its signature on an empty text part; sent back, the
/// signature rides on the answer's text (as Gemini signs it unstreamed), never on an empty part.
#[test]
fn a_streams_closing_signature_goes_back_on_the_last_text() {
    let events = stream(&[
        json!({"responseId": "R", "candidates": [{"content": {"parts": [{"text": "Hel"}]}}]}),
        json!({"candidates": [{"content": {"parts": [{"text": "lo"}]}}]}),
        json!({"candidates": [{"content": {"parts": [{"text": "", "thoughtSignature": "END"}]}, "finishReason": "STOP"}]}),
    ]);
    let answer = crate::codec::collect::collect(&events).unwrap();
    let req = Request {
        messages: vec![
            msg(Role::User, vec![Part::text("hi")]),
            msg(Role::Assistant, answer.parts),
            msg(Role::User, vec![Part::text("more")]),
        ],
        ..Default::default()
    };
    assert_eq!(
        body(&req)["contents"][1],
        json!({"role": "model", "parts": [{"text": "Hello", "thoughtSignature": "END"}]})
    );
}

/// The decoder behind the filter's [`crate::conversation::bridge::Bridge`]: body modes, the
/// usage the gateway accounts and the provider's model come from the decoded events.
#[test]
fn the_bridge_accounts_what_the_decoder_reads() {
    use crate::conversation::bridge::{Bridge, ClientEncoder};
    use crate::translate::{BodyMode, ResponseTranslator};

    /// Writes the debug form of what it gets, enough to see that it got it.
    struct Echo;
    impl ClientEncoder for Echo {
        fn encode_response(&mut self, response: &Response) -> Vec<u8> {
            format!("{:?}", response.parts).into_bytes()
        }
        fn encode_error(&self, error: &crate::conversation::ProviderError) -> Vec<u8> {
            format!("{}:{:?}", error.status, error.code).into_bytes()
        }
        fn encode_events(&mut self, events: &[Event], out: &mut Vec<u8>) {
            out.extend(format!("{events:?}").into_bytes());
        }
    }

    let mut bridge = Bridge::new(GeminiDecoder::new(), Echo);
    assert_eq!(bridge.on_headers(200, Some("text/event-stream")), BodyMode::Streaming);
    let sse = "data: {\"modelVersion\":\"gemini-2.5-flash\",\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]}}],\"usageMetadata\":{}}\r\n\r\n\
               data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"y\"}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":7,\"candidatesTokenCount\":2,\"thoughtsTokenCount\":3,\"cachedContentTokenCount\":4}}\r\n\r\n";
    let out = String::from_utf8(bridge.translate_chunk(sse.as_bytes(), true)).unwrap();
    assert!(out.contains("Text(\"y\")") && out.ends_with("End]"), "{out}");
    let usage = bridge.usage();
    assert_eq!((usage.input, usage.output, usage.cache_read, usage.reasoning), (7, 5, 4, 3));
    assert_eq!(bridge.response_model(), Some("gemini-2.5-flash"));

    let mut bridge = Bridge::new(GeminiDecoder::new(), Echo);
    assert_eq!(bridge.on_headers(429, Some("application/json")), BodyMode::Buffered);
    let out = bridge
        .translate_body(br#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}"#)
        .unwrap()
        .unwrap();
    assert_eq!(out, b"429:Some(\"RESOURCE_EXHAUSTED\")");
}
