use super::*;
use crate::conversation::{Json, Message as Turn, Opaque};
use serde_json::{json, Value};

const CLAUDE: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
const NOVA: &str = "us.amazon.nova-micro-v1:0";

fn encode(req: &Request, model: &str) -> (Value, Vec<&'static str>) {
    let encoded = encode_request(req, model, 4096).unwrap();
    (serde_json::from_slice(&encoded.body).unwrap(), encoded.dropped)
}

fn error(req: &Request, model: &str) -> GatewayError {
    encode_request(req, model, 4096).unwrap_err()
}

fn turn(role: Role, parts: Vec<Part>) -> Turn {
    Turn { role, parts }
}

fn text(t: &str) -> Part {
    Part::text(t)
}

fn cached(t: &str) -> Part {
    Part::Text { text: t.into(), cache: Some(Cache { kind: "ephemeral".into(), ttl: None }), citations: None }
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

fn result(id: &str, content: Vec<Part>, is_error: bool) -> Part {
    Part::ToolResult { call_id: id.into(), name: None, content, is_error, cache: None }
}

fn json_text(s: &str) -> Json {
    Json::from_text(s).unwrap()
}

fn tool(name: &str, schema: Option<&str>) -> ToolDef {
    ToolDef {
        name: name.into(),
        description: None,
        input_schema: schema.map(json_text),
        kind: ToolKind::Function,
        strict: None,
        cache: None,
    }
}

fn request(messages: Vec<Turn>) -> Request {
    Request { messages, ..Request::default() }
}

fn signed(text: &str, family: Family, sig: &str) -> Part {
    Part::Reasoning { text: text.into(), signature: Some(Opaque { family, data: sig.into() }), cache: None }
}

#[test]
fn paths_headers_and_minimal_body() {
    let req = request(vec![turn(Role::System, vec![text("Be brief.")]), turn(Role::User, vec![text("Hello!")])]);
    let encoded = encode_request(&req, NOVA, 512).unwrap();
    assert_eq!(encoded.path, "/model/us.amazon.nova-micro-v1%3A0/converse");
    assert_eq!(encoded.headers, vec![("content-type", "application/json".to_owned())]);
    assert!(encoded.dropped.is_empty());
    let body: Value = serde_json::from_slice(&encoded.body).unwrap();
    assert_eq!(
        body,
        json!({"messages": [{"role": "user", "content": [{"text": "Hello!"}]}], "system": [{"text": "Be brief."}],
               "inferenceConfig": {"maxTokens": 512}})
    );
    let stream = Request { stream: true, ..req };
    assert_eq!(
        encode_request(&stream, CLAUDE, 1).unwrap().path,
        format!("/model/{}/converse-stream", "us.anthropic.claude-sonnet-4-5-20250929-v1%3A0")
    );
    assert_eq!(encode_request(&stream, "..", 1).unwrap_err().status(), 500);
}

#[test]
fn leading_instructions_go_to_system_and_later_ones_stay_in_place_as_reminders() {
    let req = request(vec![
        turn(Role::System, vec![text("sys"), cached("cached sys")]),
        turn(Role::Developer, vec![text("dev")]),
        turn(Role::User, vec![text("q1")]),
        turn(Role::Assistant, vec![text("a1")]),
        turn(Role::System, vec![text("mid")]),
        turn(Role::User, vec![text("q2")]),
        turn(Role::System, vec![text("late")]),
    ]);
    let (body, dropped) = encode(&req, NOVA);
    assert!(dropped.is_empty());
    assert_eq!(
        body["system"],
        json!([{"text": "sys"}, {"text": "cached sys"}, {"cachePoint": {"type": "default"}}, {"text": "dev"}])
    );
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"text": "q1"}]},
            {"role": "assistant", "content": [{"text": "a1"}]},
            {"role": "user", "content": [
                {"text": "<system-reminder>\nmid\n</system-reminder>"},
                {"text": "q2"},
                {"text": "<system-reminder>\nlate\n</system-reminder>"}]},
        ])
    );
    // An image in a system message is not something Converse's system list can hold.
    let bad = request(vec![turn(
        Role::System,
        vec![Part::Image {
            source: Source::Base64 { media_type: "image/png".into(), data: "AA==".into() },
            cache: None,
        }],
    )]);
    assert_eq!(error(&bad, NOVA).param.as_deref(), Some("messages[0].content[0]"));
}

#[test]
fn same_roles_merge_and_empty_texts_are_not_sent() {
    let req = request(vec![
        turn(Role::User, vec![text("a")]),
        turn(Role::User, vec![text(""), text("b")]),
        turn(Role::Assistant, vec![text("")]),
        turn(Role::Assistant, vec![text("c")]),
    ]);
    let (body, _) = encode(&req, NOVA);
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"text": "a"}, {"text": "b"}]},
            {"role": "assistant", "content": [{"text": "c"}]},
        ])
    );
}

#[test]
fn tool_calls_results_and_errors() {
    let req = Request {
        messages: vec![
            turn(Role::User, vec![text("weather?")]),
            turn(
                Role::Assistant,
                vec![text("Checking."), call("t1", "w", r#"{"city": "Paris"}"#), call("t2", "w", "")],
            ),
            turn(Role::System, vec![text("be careful")]),
            turn(
                Role::User,
                vec![
                    result("t1", vec![text("sunny")], false),
                    result(
                        "t2",
                        vec![
                            text("failed"),
                            Part::Image {
                                source: Source::Base64 { media_type: "image/jpeg".into(), data: "/9j/".into() },
                                cache: None,
                            },
                        ],
                        true,
                    ),
                    result("t3", vec![], false),
                ],
            ),
        ],
        tools: vec![tool("w", Some(r#"{"type":"object","properties":{"city":{"type":"string"}}}"#))],
        tool_choice: Some(ToolChoice::Required),
        ..Request::default()
    };
    let encoded = encode_request(&req, CLAUDE, 4096).unwrap();
    // Arguments travel verbatim, not re-serialised.
    assert!(std::str::from_utf8(&encoded.body).unwrap().contains(r#""input":{"city": "Paris"}"#));
    let body: Value = serde_json::from_slice(&encoded.body).unwrap();
    assert_eq!(
        body["messages"][1]["content"],
        json!([{"text": "Checking."},
               {"toolUse": {"toolUseId": "t1", "name": "w", "input": {"city": "Paris"}}},
               {"toolUse": {"toolUseId": "t2", "name": "w", "input": {}}}])
    );
    // The reminder that came between the calls and their results goes after the results.
    assert_eq!(
        body["messages"][2]["content"],
        json!([
            {"toolResult": {"toolUseId": "t1", "content": [{"text": "sunny"}]}},
            {"toolResult": {"toolUseId": "t2", "content": [{"text": "failed"}, {"image": {"format": "jpeg", "source": {"bytes": "/9j/"}}}], "status": "error"}},
            {"toolResult": {"toolUseId": "t3", "content": [{"text": ""}]}},
            {"text": "<system-reminder>\nbe careful\n</system-reminder>"},
        ])
    );
    assert_eq!(body["toolConfig"]["toolChoice"], json!({"any": {}}));
    assert_eq!(
        body["toolConfig"]["tools"],
        json!([{"toolSpec": {"name": "w", "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}}}}])
    );
    assert!(encoded.dropped.is_empty());
    // `status` is Claude-only: another model gets the result without it, and the loss is named.
    let (body, dropped) = encode(&req, NOVA);
    assert!(body["messages"][2]["content"][1]["toolResult"].get("status").is_none());
    assert_eq!(dropped, vec!["is_error"]);

    for (arguments, what) in [("{bad", "not valid JSON"), ("[1]", "JSON object"), ("3", "JSON object")] {
        let bad = request(vec![turn(Role::Assistant, vec![text("x"), call("t", "f", arguments)])]);
        let err = error(&bad, NOVA);
        assert_eq!((err.status(), err.param.as_deref()), (400, Some("messages[0].content[1]")), "{arguments}");
        assert!(err.message.contains(what), "{}", err.message);
    }
    let custom = request(vec![turn(
        Role::Assistant,
        vec![Part::ToolCall {
            id: "c".into(),
            name: "f".into(),
            arguments: "raw".into(),
            kind: ToolKind::Custom,
            cache: None,
        }],
    )]);
    assert_eq!(error(&custom, NOVA).status(), 400);
}

#[test]
fn tool_choice_modes_and_history_only_tools() {
    let user = || turn(Role::User, vec![text("x")]);
    let with = |choice: Option<ToolChoice>| Request {
        messages: vec![user()],
        tools: vec![tool("f", None), tool("g", Some("{}"))],
        tool_choice: choice,
        ..Request::default()
    };
    for (choice, expected) in [
        (Some(ToolChoice::Auto), Some(json!({"auto": {}}))),
        (Some(ToolChoice::Required), Some(json!({"any": {}}))),
        (Some(ToolChoice::Tool("g".into())), Some(json!({"tool": {"name": "g"}}))),
        (None, None),
    ] {
        let (body, _) = encode(&with(choice.clone()), NOVA);
        assert_eq!(body["toolConfig"].get("toolChoice").cloned(), expected, "{choice:?}");
        assert_eq!(
            body["toolConfig"]["tools"][1],
            json!({"toolSpec": {"name": "g", "inputSchema": {"json": {"type": "object", "properties": {}}}}})
        );
    }
    let (body, _) = encode(&with(Some(ToolChoice::None)), NOVA);
    assert!(body.get("toolConfig").is_none());
    // `none` with tool blocks in the history: Converse requires toolConfig, so tools stay.
    let history = vec![
        user(),
        turn(Role::Assistant, vec![call("t", "lookup", "{}")]),
        turn(Role::User, vec![result("t", vec![text("42")], false)]),
    ];
    let req = Request { messages: history.clone(), tool_choice: Some(ToolChoice::None), ..with(None) };
    let (body, _) = encode(&req, NOVA);
    assert_eq!(body["toolConfig"]["tools"].as_array().unwrap().len(), 2);
    assert!(body["toolConfig"].get("toolChoice").is_none());
    // No tools declared: the ones the history names are declared with an empty schema.
    let (body, _) = encode(&request(history), NOVA);
    assert_eq!(
        body["toolConfig"],
        json!({"tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object", "properties": {}}}}}]})
    );
    let bad = Request { tools: vec![tool("f", Some("[1]"))], ..with(None) };
    assert_eq!(error(&bad, NOVA).param.as_deref(), Some("tools[0].input_schema"));
    let custom = Request { tools: vec![ToolDef { kind: ToolKind::Custom, ..tool("f", None) }], ..with(None) };
    assert_eq!(error(&custom, NOVA).param.as_deref(), Some("tools[0]"));
}

#[test]
fn reasoning_is_replayed_only_to_the_family_that_signed_it() {
    let history = |parts: Vec<Part>| {
        request(vec![
            turn(Role::User, vec![text("q")]),
            turn(Role::Assistant, parts),
            turn(Role::User, vec![text("next")]),
        ])
    };
    let parts = vec![
        signed("claude thought", Family::Claude, "EqQBsig"),
        signed("nova thought", Family::Converse, "novasig"),
        signed("gemini thought", Family::Gemini, "g"),
        Part::Reasoning { text: "unsigned".into(), signature: None, cache: None },
        Part::RedactedReasoning { data: Opaque { family: Family::Claude, data: "cmVkYWN0ZWQ=".into() } },
        Part::RedactedReasoning { data: Opaque { family: Family::OpenAi, data: "enc".into() } },
        text("answer"),
    ];
    let (body, _) = encode(&history(parts.clone()), CLAUDE);
    assert_eq!(
        body["messages"][1]["content"],
        json!([
            {"reasoningContent": {"reasoningText": {"text": "claude thought", "signature": "EqQBsig"}}},
            {"reasoningContent": {"redactedContent": "cmVkYWN0ZWQ="}},
            {"text": "answer"},
        ])
    );
    let (body, _) = encode(&history(parts), NOVA);
    assert_eq!(
        body["messages"][1]["content"],
        json!([{"reasoningContent": {"reasoningText": {"text": "nova thought", "signature": "novasig"}}}, {"text": "answer"}])
    );
}

#[test]
fn thinking_top_k_and_max_tokens() {
    let base = || Request { messages: vec![turn(Role::User, vec![text("x")])], ..Request::default() };
    let fields = |req: &Request, model: &str| encode(req, model).0.get("additionalModelRequestFields").cloned();
    let req = Request { reasoning: Some(Reasoning::Budget(2000)), top_k: Some(5), ..base() };
    assert_eq!(fields(&req, CLAUDE), Some(json!({"thinking": {"type": "enabled", "budget_tokens": 2000}, "top_k": 5})));
    let (body, dropped) = encode(&req, NOVA);
    assert!(body.get("additionalModelRequestFields").is_none());
    assert_eq!(dropped, vec!["thinking", "top_k"]);
    assert_eq!(body["inferenceConfig"], json!({"maxTokens": 4096}));
    let req = Request { reasoning: Some(Reasoning::Adaptive), ..base() };
    assert_eq!(fields(&req, CLAUDE), Some(json!({"thinking": {"type": "adaptive"}})));
    for (effort, budget) in
        [("low", Some(1024)), ("medium", Some(4096)), ("high", Some(16384)), ("xhigh", Some(19_999)), ("minimal", None)]
    {
        let req =
            Request { reasoning: Some(Reasoning::Effort(effort.into())), max_output_tokens: Some(20_000), ..base() };
        let expected = budget.map(|b| json!({"thinking": {"type": "enabled", "budget_tokens": b}}));
        assert_eq!(fields(&req, CLAUDE), expected, "{effort}");
    }
    let req = Request { reasoning: Some(Reasoning::Effort("low".into())), max_output_tokens: Some(500), ..base() };
    assert_eq!(encode(&req, CLAUDE).1, vec!["thinking"]);
    assert_eq!(error(&Request { reasoning: Some(Reasoning::Effort("huge".into())), ..base() }, CLAUDE).status(), 400);
    let req = Request { reasoning: Some(Reasoning::Disabled), ..base() };
    assert_eq!(fields(&req, CLAUDE), None);
    let req = Request {
        max_output_tokens: Some(100),
        temperature: Some(0.5),
        top_p: Some(0.9),
        stop: vec!["END".into(), "STOP".into()],
        ..base()
    };
    assert_eq!(
        encode(&req, NOVA).0["inferenceConfig"],
        json!({"maxTokens": 100, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END", "STOP"]})
    );
    assert_eq!(
        encode(&Request { max_output_tokens: Some(u64::MAX), ..base() }, NOVA).0["inferenceConfig"]["maxTokens"],
        i32::MAX
    );
}

#[test]
fn thinking_is_turned_off_when_the_last_tool_turn_has_no_claude_signature() {
    let with = |reasoning: Vec<Part>| {
        let mut parts = reasoning;
        parts.push(call("t", "f", "{}"));
        Request {
            messages: vec![
                turn(Role::User, vec![text("q")]),
                turn(Role::Assistant, parts),
                turn(Role::User, vec![result("t", vec![text("ok")], false)]),
            ],
            tools: vec![tool("f", None)],
            reasoning: Some(Reasoning::Budget(2048)),
            ..Request::default()
        }
    };
    let (body, dropped) = encode(&with(vec![signed("t", Family::Claude, "s")]), CLAUDE);
    assert_eq!(body["additionalModelRequestFields"]["thinking"]["budget_tokens"], 2048);
    assert!(dropped.is_empty());
    let (body, dropped) = encode(&with(vec![signed("t", Family::Gemini, "s")]), CLAUDE);
    assert!(body.get("additionalModelRequestFields").is_none());
    assert_eq!(dropped, vec!["thinking"]);
}

#[test]
fn documents_images_and_their_limits() {
    let doc = |media_type: &str, title: Option<&str>| Part::Document {
        source: Source::Base64 { media_type: media_type.into(), data: "JVBERi0=".into() },
        title: title.map(str::to_owned),
        context: None,
        citations: None,
        cache: None,
    };
    let text_doc = Part::Document {
        source: Source::Text { media_type: "text/plain".into(), data: "hi there".into() },
        title: Some("notes.txt".into()),
        context: Some("ctx".into()),
        citations: Some(true),
        cache: None,
    };
    let req = request(vec![turn(
        Role::User,
        vec![
            doc("application/pdf", Some("Q3 report: final/v2 (draft) [ok]")),
            doc("application/pdf", Some("Q3 report: final/v2 (draft) [ok]")),
            doc("text/csv", None),
            doc("text/markdown; charset=utf-8", Some("///")),
            text_doc,
        ],
    )]);
    let (body, dropped) = encode(&req, NOVA);
    let content = &body["messages"][0]["content"];
    assert_eq!(
        content[0],
        json!({"document": {"format": "pdf", "name": "Q3 report final v2 (draft) [ok]", "source": {"bytes": "JVBERi0="}}})
    );
    assert_eq!(content[1]["document"]["name"], "Q3 report final v2 (draft) [ok] (2)");
    assert_eq!(content[2]["document"]["name"], "Document 3");
    assert_eq!(content[2]["document"]["format"], "csv");
    assert_eq!(content[3]["document"]["format"], "md");
    assert_eq!(content[3]["document"]["name"], "Document 4");
    assert_eq!(
        content[4],
        json!({"document": {"format": "txt", "name": "notes txt", "source": {"bytes": "aGkgdGhlcmU="}}})
    );
    assert_eq!(dropped, vec!["document_context", "citations"]);
    assert_eq!(document_name(Some(&"a".repeat(300))).len(), MAX_DOCUMENT_NAME);
    assert_eq!(document_name(Some("  a  --  b  ")), "a -- b");

    let single = |part: Part| error(&request(vec![turn(Role::User, vec![part])]), NOVA);
    let err = single(doc("application/zip", None));
    assert!(err.message.contains("application/zip"), "{}", err.message);
    assert_eq!(err.param.as_deref(), Some("messages[0].content[0]"));
    for source in [
        Source::Url { url: "https://example.com/a.png".into(), media_type: None },
        Source::File { family: Family::Claude, id: "file_1".into() },
        Source::Base64 { media_type: "image/bmp".into(), data: "AA==".into() },
    ] {
        let err = single(Part::Image { source: source.clone(), cache: None });
        assert_eq!((err.status(), err.param.as_deref()), (400, Some("messages[0].content[0]")), "{source:?}");
    }
    let err =
        single(Part::Image { source: Source::Url { url: "https://x/y.png".into(), media_type: None }, cache: None });
    assert!(err.message.contains("cannot fetch image URLs"), "{}", err.message);
    assert_eq!(single(Part::Audio { data: "AA==".into(), format: "wav".into() }).status(), 400);
    let (body, _) = encode(
        &request(vec![turn(
            Role::User,
            vec![Part::Image {
                source: Source::Base64 { media_type: "image/PNG".into(), data: "iVBO".into() },
                cache: None,
            }],
        )]),
        NOVA,
    );
    assert_eq!(body["messages"][0]["content"][0], json!({"image": {"format": "png", "source": {"bytes": "iVBO"}}}));
}

#[test]
fn base64_matches_the_standard_alphabet() {
    for (input, expected) in
        [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("\u{ff}\u{fe}", "w7/Dvg==")]
    {
        assert_eq!(base64_encode(input.as_bytes()), expected);
    }
}

/// The request recorded in `fixtures/recorded/bedrock/test_bedrock_cache_write_and_read.yaml`,
/// rebuilt from the conversation model: the same blocks and cache points in the same places.
#[test]
fn cache_points_land_where_the_recording_has_them() {
    let long = "Newer response with something except single number\n".repeat(10);
    let system = "YOU MUST RESPONSE ONLY WITH SINGLE NUMBER\n".repeat(50);
    let schema = r#"{"additionalProperties": false, "properties": {}, "type": "object"}"#;
    let req = Request {
        messages: vec![
            turn(Role::System, vec![cached(&system)]),
            turn(
                Role::User,
                vec![
                    text(&long),
                    Part::Document {
                        source: Source::Base64 {
                            media_type: "text/plain".into(),
                            data: "WW91IGFyZSBhIGdyZWF0IG1hdGhlbWF0aWNpYW4=".into(),
                        },
                        title: Some("Document 1".into()),
                        context: None,
                        citations: None,
                        cache: None,
                    },
                    cached("\n"),
                    cached("What is 10 + 11?"),
                ],
            ),
        ],
        tools: vec![
            tool("catalog_lookup", Some(schema)),
            ToolDef { cache: Some(Cache { kind: "ephemeral".into(), ttl: None }), ..tool("diagnostics", Some(schema)) },
        ],
        tool_choice: Some(ToolChoice::Auto),
        ..Request::default()
    };
    let (body, dropped) = encode(&req, CLAUDE);
    assert!(dropped.is_empty());
    let recorded = json!({"messages": [{"role": "user", "content": [{"text": long}, {"document": {"name": "Document 1", "format": "txt", "source": {"bytes": "WW91IGFyZSBhIGdyZWF0IG1hdGhlbWF0aWNpYW4="}}}, {"text": "\n"}, {"cachePoint": {"type": "default"}}, {"text": "What is 10 + 11?"}, {"cachePoint": {"type": "default"}}]}],
        "system": [{"text": system}, {"cachePoint": {"type": "default"}}],
        "toolConfig": {"tools": [{"toolSpec": {"name": "catalog_lookup", "inputSchema": {"json": {"additionalProperties": false, "properties": {}, "type": "object"}}}}, {"toolSpec": {"name": "diagnostics", "inputSchema": {"json": {"additionalProperties": false, "properties": {}, "type": "object"}}}}, {"cachePoint": {"type": "default"}}], "toolChoice": {"auto": {}}}});
    for key in ["messages", "system", "toolConfig"] {
        assert_eq!(body[key], recorded[key], "{key}");
    }
}

#[test]
fn only_the_last_four_cache_points_are_kept() {
    let c = || Some(Cache { kind: "ephemeral".into(), ttl: Some("1h".into()) });
    let req = Request {
        messages: vec![
            turn(Role::System, vec![cached("s1"), cached("s2")]),
            turn(
                Role::User,
                vec![
                    cached("u1"),
                    Part::ToolResult {
                        call_id: "t".into(),
                        name: None,
                        content: vec![text("r")],
                        is_error: false,
                        cache: c(),
                    },
                ],
            ),
            turn(
                Role::Assistant,
                vec![Part::ToolCall {
                    id: "t2".into(),
                    name: "f".into(),
                    arguments: "{}".into(),
                    kind: ToolKind::Function,
                    cache: c(),
                }],
            ),
        ],
        tools: vec![ToolDef { cache: c(), ..tool("f", None) }],
        ..Request::default()
    };
    let (body, dropped) = encode(&req, CLAUDE);
    assert_eq!(dropped, vec!["cache_control"]);
    let count = |v: &Value| v.to_string().matches("cachePoint").count();
    assert_eq!(count(&body["toolConfig"]), 0);
    assert_eq!(body["system"], json!([{"text": "s1"}, {"text": "s2"}, {"cachePoint": {"type": "default"}}]));
    assert_eq!(count(&body["messages"]), 3);
    assert_eq!(
        body["messages"][0]["content"],
        json!([{"toolResult": {"toolUseId": "t", "content": [{"text": "r"}]}}, {"cachePoint": {"type": "default"}},
               {"text": "u1"}, {"cachePoint": {"type": "default"}}])
    );
    // Exactly four: nothing dropped.
    let mut four = Request { tools: vec![tool("f", None)], ..req };
    four.messages[0] = turn(Role::System, vec![text("s1"), cached("s2")]);
    let (body, dropped) = encode(&four, CLAUDE);
    assert!(dropped.is_empty());
    assert_eq!(body.to_string().matches("cachePoint").count(), 4);
    // A cache mark on an empty first text has nothing to mark.
    let (body, _) = encode(&request(vec![turn(Role::User, vec![cached(""), text("x")])]), NOVA);
    assert_eq!(body["messages"][0]["content"], json!([{"text": "x"}]));
}

#[test]
fn extras_and_fields_converse_cannot_take_are_named() {
    let extra = |name: &str| Extra { family: Family::Claude, name: name.into(), value: json_text("{}") };
    let req = Request {
        messages: vec![turn(
            Role::User,
            vec![text("x"), Part::Unknown { family: Family::Claude, raw: json_text(r#"{"type":"server_tool_use"}"#) }],
        )],
        extras: vec![
            extra("context_management"),
            extra("mcp_servers"),
            extra("brand_new"),
            extra("context_management"),
        ],
        effort: Some("high".into()),
        parallel_tool_calls: Some(false),
        tools: vec![ToolDef { strict: Some(true), ..tool("f", None) }],
        user: Some("u".into()),
        output_format: Some(crate::conversation::OutputFormat::JsonSchema {
            name: Some("answer".into()),
            schema: json_text(r#"{"type":"object"}"#),
            strict: None,
        }),
        ..Request::default()
    };
    let (body, dropped) = encode(&req, CLAUDE);
    assert_eq!(
        dropped,
        vec!["unknown_blocks", "parallel_tool_calls", "strict", "effort", "context_management", "mcp_servers", "other"]
    );
    assert_eq!(body["messages"][0]["content"], json!([{"text": "x"}]));
    let instruction = body["system"][0]["text"].as_str().unwrap();
    assert!(instruction.contains(r#"named "answer": {"type":"object"}"#), "{instruction}");
    assert!(!body.to_string().contains("\"u\""));
}
