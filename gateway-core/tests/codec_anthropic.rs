//! The Anthropic Messages client codec: a Claude Code request decodes with nothing lost, every
//! block kind maps, bad input is a 400 (never a panic), and the assistant blocks of a request come
//! back identical through the JSON and SSE encoders.

use gateway_core::codec::anthropic::{decode_request, AnthropicEncoder};
use gateway_core::conversation::bridge::ClientEncoder;
use gateway_core::conversation::{
    BlockStart, Cache, Delta, Event, Family, FinishReason, Message, Opaque, OutputFormat, Part, Reasoning, Request,
    Response, Role, Source, ToolChoice, ToolKind, Usage,
};
use serde_json::{json, Map, Value};

const CLAUDE_CODE: &str = include_str!("fixtures/claude_code_request.json");

fn decode(body: &Value) -> Request {
    decode_request(body.to_string().as_bytes()).unwrap().0
}

fn base(extra: Value) -> Value {
    let mut body = json!({"model": "claude-x", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

fn user(content: Value) -> Value {
    base(json!({"messages": [{"role": "user", "content": content}]}))
}

// --- A reference re-encoder, the test's own: if the request re-encodes to the body it came from,
// nothing was lost on the way in. ----------------------------------------------------------------

fn cache(cache: &Option<Cache>, block: &mut Map<String, Value>) {
    if let Some(c) = cache {
        let mut v = json!({"type": c.kind});
        if let Some(ttl) = &c.ttl {
            v["ttl"] = json!(ttl);
        }
        block.insert("cache_control".into(), v);
    }
}

fn source(source: &Source) -> Value {
    match source {
        Source::Base64 { media_type, data } => json!({"type": "base64", "media_type": media_type, "data": data}),
        Source::Url { url, .. } => json!({"type": "url", "url": url}),
        Source::Text { media_type, data } => json!({"type": "text", "media_type": media_type, "data": data}),
        Source::File { id, .. } => json!({"type": "file", "file_id": id}),
    }
}

fn block(part: &Part) -> Value {
    let mut b = Map::new();
    match part {
        Part::Text { text, cache: c, citations } => {
            b.insert("type".into(), json!("text"));
            b.insert("text".into(), json!(text));
            if let Some(citations) = citations {
                b.insert("citations".into(), serde_json::from_str(citations.get()).unwrap());
            }
            cache(c, &mut b);
        }
        Part::Image { source: s, cache: c } => {
            b.insert("type".into(), json!("image"));
            b.insert("source".into(), source(s));
            cache(c, &mut b);
        }
        Part::Document { source: s, title, context, citations, cache: c } => {
            b.insert("type".into(), json!("document"));
            b.insert("source".into(), source(s));
            if let Some(t) = title {
                b.insert("title".into(), json!(t));
            }
            if let Some(t) = context {
                b.insert("context".into(), json!(t));
            }
            if let Some(enabled) = citations {
                b.insert("citations".into(), json!({"enabled": enabled}));
            }
            cache(c, &mut b);
        }
        Part::ToolCall { id, name, arguments, cache: c, .. } => {
            b.insert("type".into(), json!("tool_use"));
            b.insert("id".into(), json!(id));
            b.insert("name".into(), json!(name));
            b.insert("input".into(), serde_json::from_str(arguments).unwrap());
            cache(c, &mut b);
        }
        Part::ToolResult { call_id, content, is_error, cache: c, .. } => {
            b.insert("type".into(), json!("tool_result"));
            b.insert("tool_use_id".into(), json!(call_id));
            let content = match content.as_slice() {
                [Part::Text { text, cache: None, citations: None }] => json!(text),
                parts => Value::Array(parts.iter().map(block).collect()),
            };
            b.insert("content".into(), content);
            b.insert("is_error".into(), json!(is_error));
            cache(c, &mut b);
        }
        Part::Reasoning { text, signature, cache: c } => {
            b.insert("type".into(), json!("thinking"));
            b.insert("thinking".into(), json!(text));
            b.insert("signature".into(), json!(signature.as_ref().map(|s| s.to_client_string(Family::Claude))));
            cache(c, &mut b);
        }
        Part::RedactedReasoning { data } => {
            b.insert("type".into(), json!("redacted_thinking"));
            b.insert("data".into(), json!(data.to_client_string(Family::Claude)));
        }
        Part::Unknown { raw, .. } => return serde_json::from_str(raw.get()).unwrap(),
        Part::Audio { .. } => panic!("no audio in Messages"),
    }
    Value::Object(b)
}

fn content(message: &Message) -> Value {
    match message.parts.as_slice() {
        [Part::Text { text, cache: None, citations: None }] if message.role == Role::System => json!(text),
        parts => Value::Array(parts.iter().map(block).collect()),
    }
}

fn reencode(req: &Request, model: &str) -> Value {
    let mut body = json!({"model": model, "max_tokens": req.max_output_tokens, "stream": req.stream});
    let mut messages = req.messages.as_slice();
    if let Some((first, rest)) = messages.split_first().filter(|(m, _)| m.role == Role::System) {
        body["system"] = Value::Array(first.parts.iter().map(block).collect());
        messages = rest;
    }
    let roles = |r: Role| match r {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Developer => panic!("no developer role in Messages"),
    };
    body["messages"] =
        messages.iter().map(|m| json!({"role": roles(m.role), "content": content(m)})).collect::<Vec<_>>().into();
    match req.extras.iter().find(|e| e.name == "tools") {
        Some(extra) => body["tools"] = serde_json::from_str(extra.value.get()).unwrap(),
        None if !req.tools.is_empty() => {
            body["tools"] = req
                .tools
                .iter()
                .map(|t| {
                    let mut v = Map::new();
                    v.insert("name".into(), json!(t.name));
                    if let Some(d) = &t.description {
                        v.insert("description".into(), json!(d));
                    }
                    v.insert(
                        "input_schema".into(),
                        serde_json::from_str(t.input_schema.as_ref().unwrap().get()).unwrap(),
                    );
                    if let Some(s) = t.strict {
                        v.insert("strict".into(), json!(s));
                    }
                    cache(&t.cache, &mut v);
                    Value::Object(v)
                })
                .collect::<Vec<_>>()
                .into()
        }
        None => {}
    }
    if let Some(user) = &req.user {
        body["metadata"] = json!({"user_id": user});
    }
    match &req.reasoning {
        Some(Reasoning::Adaptive) => body["thinking"] = json!({"type": "adaptive"}),
        Some(Reasoning::Budget(n)) => body["thinking"] = json!({"type": "enabled", "budget_tokens": n}),
        Some(Reasoning::Disabled) => body["thinking"] = json!({"type": "disabled"}),
        Some(Reasoning::Effort(_)) => panic!("Messages has no effort-only thinking"),
        None => {}
    }
    if let Some(effort) = &req.effort {
        body["output_config"] = json!({"effort": effort});
    }
    for extra in req.extras.iter().filter(|e| e.name != "tools") {
        body[&extra.name] = serde_json::from_str(extra.value.get()).unwrap();
    }
    body
}

#[test]
fn a_claude_code_request_decodes_with_nothing_lost() {
    let (req, model) = decode_request(CLAUDE_CODE.as_bytes()).unwrap();
    assert_eq!(model, "claude-sonnet-4-5-20250929");
    let original: Value = serde_json::from_str(CLAUDE_CODE).unwrap();
    assert_eq!(reencode(&req, &model), original);

    // The shape the other encoders rely on, spelled out.
    assert_eq!(req.tools.len(), 24);
    assert!(req.extras.iter().all(|e| e.name != "tools"), "plain client tools need no extra");
    let roles: Vec<Role> = req.messages.iter().map(|m| m.role).collect();
    use Role::*;
    assert_eq!(roles, [System, User, Assistant, User, System, Assistant, User]);
    let caches = req
        .messages
        .iter()
        .flat_map(|m| &m.parts)
        .filter(|p| matches!(p, Part::Text { cache: Some(_), .. } | Part::ToolResult { cache: Some(_), .. }))
        .count();
    assert_eq!(caches, 4);
    assert_eq!(req.reasoning, Some(Reasoning::Adaptive));
    assert_eq!(req.effort.as_deref(), Some("high"));
    assert!(req.stream);
    assert_eq!(req.max_output_tokens, Some(32000));
    assert!(req.user.as_deref().unwrap().contains("session_id"));
    let cm = req.extras.iter().find(|e| e.name == "context_management").unwrap();
    assert_eq!(cm.family, Family::Claude);
    assert_eq!(cm.value.get(), &CLAUDE_CODE[CLAUDE_CODE.find("{\n  \"edits\"").unwrap()..][..cm.value.get().len()]);
    assert_eq!(serde_json::from_str::<Value>(cm.value.get()).unwrap(), original["context_management"]);
    assert_eq!(req.last_tool_turn_has_signed_reasoning(Family::Claude), Some(true));

    // Signatures are byte-identical to the body's strings.
    let signatures: Vec<&str> = original["messages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .filter(|b| b["type"] == "thinking")
        .map(|b| b["signature"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .leak()
        .iter()
        .map(String::as_str)
        .collect();
    let decoded: Vec<&Opaque> = req
        .messages
        .iter()
        .flat_map(|m| &m.parts)
        .filter_map(|p| match p {
            Part::Reasoning { signature: Some(s), .. } => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(signatures.len(), 2);
    for (sig, opaque) in signatures.iter().zip(decoded) {
        assert_eq!((opaque.family, opaque.data.as_str()), (Family::Claude, *sig));
    }
    // Results name the tool they answer (Gemini matches results by name).
    let names: Vec<Option<&str>> = req
        .messages
        .iter()
        .flat_map(|m| &m.parts)
        .filter_map(|p| match p {
            Part::ToolResult { name, .. } => Some(name.as_deref()),
            _ => None,
        })
        .collect();
    assert_eq!(names, [Some("Bash"), Some("Bash")]);
}

#[test]
fn every_block_kind_maps() {
    let citations = json!([{"type": "char_location", "cited_text": "x", "document_index": 0, "start_char_index": 0, "end_char_index": 1}]);
    let req = decode(&user(json!([
        {"type": "text", "text": "t", "citations": citations, "cache_control": {"type": "ephemeral", "ttl": "5m"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}, "cache_control": {"type": "ephemeral"}},
        {"type": "image", "source": {"type": "url", "url": "https://x/y.jpg"}},
        {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}, "title": "T", "context": "C", "citations": {"enabled": true}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain"}},
        {"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}},
        {"type": "document", "source": {"type": "file", "file_id": "file_2"}},
        {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "c"}]}},
        {"type": "tool_result", "tool_use_id": "t9", "content": [{"type": "text", "text": "a"}, {"type": "image", "source": {"type": "url", "url": "https://i"}}, {"type": "search_result", "source": "s", "title": "t", "content": []}]},
        {"type": "tool_result", "tool_use_id": "t8"},
        {"type": "web_search_tool_result", "tool_use_id": "s1", "content": []},
    ])));
    let parts = &req.messages[0].parts;
    assert_eq!(
        parts[0],
        Part::Text {
            text: "t".into(),
            cache: Some(Cache { kind: "ephemeral".into(), ttl: Some("5m".into()) }),
            citations: gateway_core::conversation::Json::from_text(&citations.to_string()),
        }
    );
    assert!(
        matches!(&parts[1], Part::Image { source: Source::Base64 { media_type, data }, cache: Some(_) } if media_type == "image/png" && data == "iVBOR")
    );
    assert!(
        matches!(&parts[2], Part::Image { source: Source::Url { url, media_type: None }, cache: None } if url == "https://x/y.jpg")
    );
    assert!(
        matches!(&parts[3], Part::Image { source: Source::File { family: Family::Claude, id }, .. } if id == "file_1")
    );
    assert_eq!(
        parts[4],
        Part::Document {
            source: Source::Base64 { media_type: "application/pdf".into(), data: "JVBER".into() },
            title: Some("T".into()),
            context: Some("C".into()),
            citations: Some(true),
            cache: None
        }
    );
    assert!(matches!(&parts[5], Part::Document { source: Source::Text { data, .. }, .. } if data == "plain"));
    assert!(matches!(&parts[6], Part::Document { source: Source::Url { .. }, .. }));
    assert!(matches!(&parts[7], Part::Document { source: Source::File { .. }, .. }));
    assert!(matches!(&parts[8], Part::Unknown { family: Family::Claude, raw } if raw.get().contains("\"content\"")));
    match &parts[9] {
        Part::ToolResult { call_id, name: None, content, is_error: false, cache: None } => {
            assert_eq!(call_id, "t9");
            assert_eq!(content[0], Part::text("a"));
            assert!(matches!(content[1], Part::Image { .. }));
            assert!(
                matches!(&content[2], Part::Unknown { raw, .. } if raw.get().contains(r#""type":"search_result""#))
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&parts[10], Part::ToolResult { content, .. } if content.is_empty()));
    assert!(matches!(&parts[11], Part::Unknown { raw, .. } if raw.get().contains("web_search_tool_result")));
    // A block kept whole is the client's exact text.
    let body = r#"{"model":"m","max_tokens":1,"messages":[{"role":"assistant","content":[ {"type":"server_tool_use", "id":"s","name":"web_search","input":{"q" : 1.50}} ]}]}"#;
    let (req, _) = decode_request(body.as_bytes()).unwrap();
    match &req.messages[0].parts[0] {
        Part::Unknown { raw, .. } => {
            assert_eq!(raw.get(), r#"{"type":"server_tool_use", "id":"s","name":"web_search","input":{"q" : 1.50}}"#)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn assistant_blocks_and_signatures() {
    let req = decode(&base(json!({"messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "t1", "signature": "abc+/="},
            {"type": "thinking", "thinking": "t2", "signature": "gw1.gemini.CiQB"},
            {"type": "thinking", "thinking": "t3", "signature": ""},
            {"type": "thinking", "thinking": "t4"},
            {"type": "redacted_thinking", "data": "gw1.openai.enc"},
            {"type": "tool_use", "id": "c1", "name": "f", "input": {"a" : [1, 2]}, "cache_control": {"type": "ephemeral"}},
        ]},
    ]})));
    let parts = &req.messages[1].parts;
    let sig = |i: usize| match &parts[i] {
        Part::Reasoning { signature, .. } => signature.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(sig(0), Some(Opaque { family: Family::Claude, data: "abc+/=".into() }));
    assert_eq!(sig(1), Some(Opaque { family: Family::Gemini, data: "CiQB".into() }));
    assert_eq!((sig(2), sig(3)), (None, None));
    assert_eq!(parts[4], Part::RedactedReasoning { data: Opaque { family: Family::OpenAi, data: "enc".into() } });
    match &parts[5] {
        Part::ToolCall { id, name, arguments, kind: ToolKind::Function, cache: Some(_) } => {
            assert_eq!((id.as_str(), name.as_str()), ("c1", "f"));
            assert_eq!(serde_json::from_str::<Value>(arguments).unwrap(), json!({"a": [1, 2]}));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn mid_conversation_system_turns_keep_their_place() {
    let req = decode(&base(json!({"system": "top", "messages": [
        {"role": "user", "content": "a"},
        {"role": "system", "content": [{"type": "text", "text": "mid", "cache_control": {"type": "ephemeral"}}]},
        {"role": "assistant", "content": "b"},
        {"role": "system", "content": "late"},
        {"role": "user", "content": "c"},
    ]})));
    let flat: Vec<(Role, &str)> = req
        .messages
        .iter()
        .map(|m| match &m.parts[0] {
            Part::Text { text, .. } => (m.role, text.as_str()),
            other => panic!("{other:?}"),
        })
        .collect();
    use Role::*;
    assert_eq!(flat, [(System, "top"), (User, "a"), (System, "mid"), (Assistant, "b"), (System, "late"), (User, "c")]);
    assert!(matches!(req.messages[2].parts[0], Part::Text { cache: Some(_), .. }));
    // An empty system string is no message; system blocks keep one part each, with their caches.
    let req = decode(&base(
        json!({"system": "", "messages": [{"role": "user", "content": "a"}, {"role": "system", "content": ""}]}),
    ));
    assert_eq!(req.messages.len(), 1);
    let req = decode(&base(
        json!({"system": [{"type": "text", "text": "a"}, {"type": "text", "text": "b", "cache_control": {"type": "ephemeral"}}]}),
    ));
    assert_eq!(req.messages[0].role, Role::System);
    assert_eq!(req.messages[0].parts.len(), 2);
    assert!(matches!(req.messages[0].parts[1], Part::Text { cache: Some(_), .. }));
}

#[test]
fn tools_choice_and_settings() {
    let client_tool = json!({"name": "f", "description": "d", "input_schema": {"type": "object"}, "strict": true, "cache_control": {"type": "ephemeral"}});
    // Written as text: extras keep the body's member order.
    let body = r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"service_tier":"auto","container":"c_1","mcp_servers":[{"type":"url","url":"https://m","name":"m"}],"anthropic_future_knob":{"x":1}}"#;
    let (req, _) = decode_request(body.as_bytes()).unwrap();
    let extras: Vec<(&str, &str)> = req.extras.iter().map(|e| (e.name.as_str(), e.value.get())).collect();
    assert_eq!(
        extras,
        [
            ("service_tier", r#""auto""#),
            ("container", r#""c_1""#),
            ("mcp_servers", r#"[{"type":"url","url":"https://m","name":"m"}]"#),
            ("anthropic_future_knob", r#"{"x":1}"#)
        ]
    );
    assert!(req.extras.iter().all(|e| e.family == Family::Claude));
    let req = decode(&base(json!({
        "tools": [client_tool],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "temperature": 0.5, "top_p": 0.9, "top_k": 40, "stop_sequences": ["END", "STOP"],
        "metadata": {"user_id": "u-1"},
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "output_format": {"type": "json_schema", "schema": {"type": "object"}},
    })));
    assert!(req.extras.is_empty());
    assert_eq!(req.tools.len(), 1);
    let tool = &req.tools[0];
    assert_eq!((tool.name.as_str(), tool.description.as_deref(), tool.strict), ("f", Some("d"), Some(true)));
    assert_eq!(tool.input_schema.as_ref().unwrap().get(), r#"{"type":"object"}"#);
    assert!(tool.cache.is_some());
    assert_eq!((req.tool_choice.clone(), req.parallel_tool_calls), (Some(ToolChoice::Required), Some(false)));
    assert_eq!((req.temperature, req.top_p, req.top_k), (Some(0.5), Some(0.9), Some(40)));
    assert_eq!(req.stop, ["END", "STOP"]);
    assert_eq!(req.user.as_deref(), Some("u-1"));
    assert_eq!(req.reasoning, Some(Reasoning::Budget(2048)));
    assert!(
        matches!(&req.output_format, Some(OutputFormat::JsonSchema { schema, .. }) if schema.get() == r#"{"type":"object"}"#)
    );
    for (choice, expected) in [
        (json!({"type": "auto"}), ToolChoice::Auto),
        (json!({"type": "none"}), ToolChoice::None),
        (json!({"type": "tool", "name": "f"}), ToolChoice::Tool("f".into())),
    ] {
        let req = decode(&base(json!({"tools": [client_tool], "tool_choice": choice})));
        assert_eq!((req.tool_choice, req.parallel_tool_calls), (Some(expected), None));
    }
    let req = decode(&base(
        json!({"thinking": {"type": "disabled"}, "output_config": {"effort": "low", "format": {"type": "json_schema", "schema": {"type": "array"}}}}),
    ));
    assert_eq!((req.reasoning, req.effort.as_deref()), (Some(Reasoning::Disabled), Some("low")));
    assert!(
        matches!(&req.output_format, Some(OutputFormat::JsonSchema { schema, .. }) if schema.get() == r#"{"type":"array"}"#)
    );
}

#[test]
fn server_tools_travel_as_the_tools_extra() {
    let tools = json!([
        {"name": "f", "input_schema": {"type": "object"}},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
        {"type": "bash_20250124", "name": "bash"},
        {"name": "g", "input_schema": {"type": "object"}, "defer_loading": true},
    ]);
    let req = decode(&base(json!({"tools": tools})));
    let names: Vec<&str> = req.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["f", "g"], "client tools stay usable by every family");
    let extra = req.extras.iter().find(|e| e.name == "tools").unwrap();
    assert_eq!(extra.family, Family::Claude);
    assert_eq!(serde_json::from_str::<Value>(extra.value.get()).unwrap(), tools);
    // Partly mapped objects with members beyond the model's are kept whole too; plain ones are not.
    let req = decode(&base(
        json!({"thinking": {"type": "adaptive", "display": "omitted"}, "output_config": {"effort": "max", "task_budget": 9}}),
    ));
    assert_eq!((req.reasoning.clone(), req.effort.as_deref()), (Some(Reasoning::Adaptive), Some("max")));
    let kept: Vec<(&str, Value)> =
        req.extras.iter().map(|e| (e.name.as_str(), serde_json::from_str(e.value.get()).unwrap())).collect();
    assert_eq!(
        kept,
        [
            ("thinking", json!({"type": "adaptive", "display": "omitted"})),
            ("output_config", json!({"effort": "max", "task_budget": 9}))
        ]
    );
    let req = decode(&base(
        json!({"thinking": {"type": "enabled", "budget_tokens": 1024}, "output_config": {"effort": "low"}}),
    ));
    assert!(req.extras.is_empty());
    // A client tool with an unknown member alone is enough to keep the array.
    let req =
        decode(&base(json!({"tools": [{"name": "g", "input_schema": {"type": "object"}, "input_examples": [{}]}]})));
    assert!(req.extras.iter().any(|e| e.name == "tools"));
}

#[test]
fn bad_input_is_a_400_naming_the_field() {
    let long = "x".repeat(10);
    for (body, param) in [
        (json!({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}), "model"),
        (json!({"model": "", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}), "model"),
        (json!({"model": 5, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}), "model"),
        (json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}), "max_tokens"),
        (json!({"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}), "max_tokens"),
        (json!({"model": "m", "max_tokens": "5", "messages": [{"role": "user", "content": "x"}]}), "max_tokens"),
        (json!({"model": "m", "max_tokens": 5}), "messages"),
        (json!({"model": "m", "max_tokens": 5, "messages": []}), "messages"),
        (json!({"model": "m", "max_tokens": 5, "messages": {}}), "messages"),
        (json!({"model": "m", "max_tokens": 5, "messages": ["x"]}), "messages[0]"),
        (json!({"model": "m", "max_tokens": 5, "messages": [{"role": "tool", "content": "x"}]}), "messages[0].role"),
        (json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user"}]}), "messages[0].content"),
        (json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": 5}]}), "messages[0].content"),
        (user(json!([{"text": "no type"}])), "messages[0].content[0].type"),
        (user(json!([{"type": "text"}])), "messages[0].content[0].text"),
        (user(json!([{"type": "text", "text": 1}])), "messages[0].content[0].text"),
        (user(json!([{"type": "text", "text": "x", "citations": "no"}])), "messages[0].content[0].citations"),
        (
            user(json!([{"type": "text", "text": "x", "cache_control": "ephemeral"}])),
            "messages[0].content[0].cache_control",
        ),
        (
            user(json!([{"type": "text", "text": "x", "cache_control": {}}])),
            "messages[0].content[0].cache_control.type",
        ),
        (user(json!([{"type": "thinking", "signature": "s"}])), "messages[0].content[0].thinking"),
        (user(json!([{"type": "thinking", "thinking": 3, "signature": "s"}])), "messages[0].content[0].thinking"),
        (user(json!([{"type": "thinking", "thinking": "t", "signature": 42}])), "messages[0].content[0].signature"),
        (
            user(json!([{"type": "thinking", "thinking": "t", "signature": {"a": 1}}])),
            "messages[0].content[0].signature",
        ),
        (user(json!([{"type": "redacted_thinking"}])), "messages[0].content[0].data"),
        (user(json!([{"type": "redacted_thinking", "data": ["x"]}])), "messages[0].content[0].data"),
        (user(json!([{"type": "image"}])), "messages[0].content[0].source"),
        (
            user(json!([{"type": "image", "source": {"type": "base64", "media_type": "image/tiff", "data": "x"}}])),
            "messages[0].content[0].source.media_type",
        ),
        (user(json!([{"type": "image", "source": {"type": "ftp", "url": "x"}}])), "messages[0].content[0].source.type"),
        (user(json!([{"type": "image", "source": {"type": "url"}}])), "messages[0].content[0].source.url"),
        (
            user(
                json!([{"type": "document", "source": {"type": "base64", "media_type": "application/msword", "data": "x"}}]),
            ),
            "messages[0].content[0].source.media_type",
        ),
        (
            user(json!([{"type": "document", "source": {"type": "text", "media_type": "text/html", "data": "x"}}])),
            "messages[0].content[0].source.media_type",
        ),
        (
            user(json!([{"type": "document", "source": {"type": "docx", "data": "x"}}])),
            "messages[0].content[0].source.type",
        ),
        (
            user(json!([{"type": "document", "source": {"type": "base64", "media_type": "application/pdf"}}])),
            "messages[0].content[0].source.data",
        ),
        (
            user(json!([{"type": "document", "source": {"type": "text", "data": "x"}, "citations": true}])),
            "messages[0].content[0].citations",
        ),
        (user(json!([{"type": "tool_use", "name": "f", "input": {}}])), "messages[0].content[0].id"),
        (user(json!([{"type": "tool_use", "id": "i", "name": "f", "input": "{}"}])), "messages[0].content[0].input"),
        (user(json!([{"type": "tool_result"}])), "messages[0].content[0].tool_use_id"),
        (
            user(json!([{"type": "tool_result", "tool_use_id": "t", "is_error": "yes"}])),
            "messages[0].content[0].is_error",
        ),
        (user(json!([{"type": "tool_result", "tool_use_id": "t", "content": 7}])), "messages[0].content[0].content"),
        (
            user(
                json!([{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "tool_use", "id": "a", "name": "b", "input": {}}]}]),
            ),
            "messages[0].content[0].content[0].type",
        ),
        (
            user(
                json!([{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "thinking", "thinking": "x", "signature": "s"}]}]),
            ),
            "messages[0].content[0].content[0].type",
        ),
        (base(json!({"system": 5})), "system"),
        (base(json!({"system": [{"type": "image", "source": {}}]})), "system[0].type"),
        (
            base(
                json!({"messages": [{"role": "system", "content": [{"type": "tool_use", "id": "a", "name": "b", "input": {}}]}]}),
            ),
            "messages[0].content[0].type",
        ),
        (base(json!({"tools": {}})), "tools"),
        (base(json!({"tools": [{"name": "f"}]})), "tools[0].input_schema"),
        (base(json!({"tools": [{"name": "f", "input_schema": "object"}]})), "tools[0].input_schema"),
        (base(json!({"tools": [{"input_schema": {}}]})), "tools[0].name"),
        (base(json!({"tools": [{"type": "web_search_20250305"}]})), "tools[0].name"),
        (base(json!({"tools": [{"name": "f", "input_schema": {}, "strict": "yes"}]})), "tools[0].strict"),
        (base(json!({"tool_choice": {"type": "sometimes"}})), "tool_choice.type"),
        (base(json!({"tool_choice": {"type": "tool"}})), "tool_choice.name"),
        (
            base(json!({"tool_choice": {"type": "any", "disable_parallel_tool_use": 1}})),
            "tool_choice.disable_parallel_tool_use",
        ),
        (base(json!({"thinking": {"type": "enabled"}})), "thinking.budget_tokens"),
        (base(json!({"thinking": {"type": "sometimes"}})), "thinking.type"),
        (base(json!({"thinking": "on"})), "thinking"),
        (base(json!({"output_config": {"effort": 3}})), "output_config.effort"),
        (base(json!({"output_format": {"type": "xml"}})), "output_format.type"),
        (base(json!({"output_format": {"type": "json_schema"}})), "output_format.schema"),
        (
            base(json!({"output_config": {"format": {"type": "json_schema", "schema": []}}})),
            "output_config.format.schema",
        ),
        (base(json!({"temperature": "hot"})), "temperature"),
        (base(json!({"top_k": -1})), "top_k"),
        (base(json!({"stop_sequences": "END"})), "stop_sequences"),
        (base(json!({"stop_sequences": [1]})), "stop_sequences[0]"),
        (base(json!({"stream": "yes"})), "stream"),
        (base(json!({"metadata": {"user_id": 5}})), "metadata.user_id"),
        (base(json!({"metadata": long})), "metadata"),
    ] {
        let err = decode_request(body.to_string().as_bytes()).expect_err(&body.to_string());
        assert_eq!((err.status(), err.param.as_deref()), (400, Some(param)), "{body}: {}", err.message);
        assert!(err.message.starts_with(param), "{}", err.message);
        let v: Value = serde_json::from_slice(&err.to_anthropic_body()).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }
    for body in ["", "nope", "[]", "{", "{\"model\":", "{\"model\":\"m\",}", "\u{feff}{}"] {
        let err = decode_request(body.as_bytes()).unwrap_err();
        assert_eq!((err.status(), err.param), (400, None), "{body}");
    }
    // Nulls are absent, as the SDKs send them.
    let req =
        decode(&base(json!({"system": null, "temperature": null, "tools": null, "thinking": null, "metadata": null})));
    assert_eq!(req, decode(&base(json!({}))));
}

#[test]
fn any_truncation_or_byte_flip_of_a_claude_code_body_is_an_error_or_a_request() {
    let body = CLAUDE_CODE.as_bytes();
    for cut in (0..body.len()).step_by(89) {
        if let Err(e) = decode_request(body.get(..cut).unwrap()) {
            assert_eq!(e.status(), 400);
        }
    }
    let mut flipped = body.to_vec();
    for i in (0..flipped.len()).step_by(97) {
        let saved = flipped[i];
        for b in [b'"', b'{', b']', b'0', b'\\', b'n', 0xff] {
            flipped[i] = b;
            if let Err(e) = decode_request(&flipped) {
                assert_eq!(e.status(), 400);
            }
        }
        flipped[i] = saved;
    }
}

// --- Round trips through the encoders -------------------------------------------------------------

/// A decoder's view of `parts`: the events a provider streaming them would produce.
fn events_for(parts: &[Part], usage: Usage, finish: FinishReason) -> Vec<Event> {
    let mut events = vec![Event::Start { id: Some("msg_rt".into()), model: Some("provider-model-id".into()) }];
    for (i, part) in parts.iter().enumerate() {
        let index = i as u32;
        let (start, deltas): (BlockStart, Vec<Delta>) = match part {
            Part::Text { text, citations, .. } => {
                let mut deltas = Vec::new();
                if let Some(c) = citations {
                    let list: Vec<Value> = serde_json::from_str(c.get()).unwrap();
                    for item in list {
                        deltas.push(Delta::Citation(
                            gateway_core::conversation::Json::from_text(&item.to_string()).unwrap(),
                        ));
                    }
                }
                let mid = text.char_indices().nth(text.chars().count() / 2).map(|(i, _)| i).unwrap_or(0);
                deltas.push(Delta::Text(text[..mid].into()));
                deltas.push(Delta::Text(text[mid..].into()));
                (BlockStart::Text, deltas)
            }
            Part::ToolCall { id, name, arguments, kind, .. } => {
                let mid = arguments.len() / 2;
                let (a, b) = arguments.split_at(if arguments.is_char_boundary(mid) { mid } else { 0 });
                (
                    BlockStart::ToolCall { id: id.clone(), name: name.clone(), kind: *kind },
                    vec![Delta::ToolArguments(a.into()), Delta::ToolArguments(b.into())],
                )
            }
            Part::Reasoning { text, signature, .. } => {
                let mut deltas = vec![Delta::Reasoning(text.clone())];
                deltas.extend(signature.clone().map(Delta::Signature));
                (BlockStart::Reasoning, deltas)
            }
            Part::RedactedReasoning { data } => (BlockStart::RedactedReasoning { data: data.clone() }, vec![]),
            Part::Unknown { family, raw } => (BlockStart::Unknown { family: *family, raw: raw.clone() }, vec![]),
            other => panic!("not an answer part: {other:?}"),
        };
        events.push(Event::BlockStart { index, block: start });
        events.extend(deltas.into_iter().map(|delta| Event::Delta { index, delta }));
        events.push(Event::BlockStop { index });
    }
    events.push(Event::Finish(finish));
    events.push(Event::Usage(usage));
    events.push(Event::End);
    events
}

/// Rebuilds the message an Anthropic SDK would from an SSE stream.
fn accumulate(sse: &str) -> Value {
    let mut message = Value::Null;
    let mut partial: Vec<String> = Vec::new();
    let mut names = Vec::new();
    for frame in sse.split("\n\n").filter(|f| !f.is_empty()) {
        let (event, data) = frame.split_once('\n').unwrap();
        let name = event.strip_prefix("event: ").unwrap();
        let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(data["type"], name);
        names.push(name.to_owned());
        match name {
            "message_start" => message = data["message"].clone(),
            "content_block_start" => {
                let index = data["index"].as_u64().unwrap() as usize;
                assert_eq!(index, message["content"].as_array().unwrap().len(), "dense indexes");
                message["content"].as_array_mut().unwrap().push(data["content_block"].clone());
                partial.push(String::new());
            }
            "content_block_delta" => {
                let index = data["index"].as_u64().unwrap() as usize;
                let block = &mut message["content"][index];
                let delta = &data["delta"];
                match delta["type"].as_str().unwrap() {
                    "text_delta" => {
                        block["text"] =
                            json!(format!("{}{}", block["text"].as_str().unwrap(), delta["text"].as_str().unwrap()))
                    }
                    "thinking_delta" => {
                        block["thinking"] = json!(format!(
                            "{}{}",
                            block["thinking"].as_str().unwrap(),
                            delta["thinking"].as_str().unwrap()
                        ))
                    }
                    "signature_delta" => block["signature"] = delta["signature"].clone(),
                    "citations_delta" => {
                        if block.get("citations").is_none() {
                            block["citations"] = json!([]);
                        }
                        block["citations"].as_array_mut().unwrap().push(delta["citation"].clone());
                    }
                    "input_json_delta" => partial[index].push_str(delta["partial_json"].as_str().unwrap()),
                    other => panic!("{other}"),
                }
            }
            "content_block_stop" => {
                let index = data["index"].as_u64().unwrap() as usize;
                if message["content"][index]["type"] == "tool_use" && !partial[index].is_empty() {
                    message["content"][index]["input"] = serde_json::from_str(&partial[index]).unwrap();
                }
            }
            "message_delta" => {
                message["stop_reason"] = data["delta"]["stop_reason"].clone();
                message["stop_sequence"] = data["delta"]["stop_sequence"].clone();
                message["usage"] = data["usage"].clone();
            }
            "message_stop" => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(names.last().map(String::as_str), Some("message_stop"));
    message
}

#[test]
fn assistant_turns_round_trip_through_json_and_sse() {
    let mut bodies: Vec<Value> = vec![serde_json::from_str(CLAUDE_CODE).unwrap()];
    bodies.push(base(json!({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "é\u{1F600} multi\nline", "signature": "gw1.gemini.CiQBcc+/x=="},
        {"type": "redacted_thinking", "data": "gw1.openai.gAAAAB"},
        {"type": "text", "text": "see [1]", "citations": [{"type": "web_search_result_location", "url": "https://u", "title": "t", "encrypted_index": "e", "cited_text": "c"}]},
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [{"type": "web_search_result", "url": "https://u", "title": "t", "encrypted_content": "x"}]},
        {"type": "tool_use", "id": "toolu_9", "name": "Edit", "input": {"old": "a\"b", "new": "\\n", "n": [1.5, true, null]}},
    ]}]})));
    for body in bodies {
        let req = decode(&body);
        let original: Vec<&Value> = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "assistant")
            .flat_map(|m| m["content"].as_array().unwrap())
            .collect();
        let parts: Vec<Part> =
            req.messages.iter().filter(|m| m.role == Role::Assistant).flat_map(|m| m.parts.clone()).collect();
        assert_eq!(parts.len(), original.len());
        let usage = Usage {
            input: Some(1000),
            output: Some(50),
            cache_read: Some(800),
            cache_write: Some(100),
            reasoning: None,
        };
        let response = Response {
            id: Some("msg_rt".into()),
            model: Some("provider-model-id".into()),
            parts: parts.clone(),
            finish: Some(FinishReason::ToolUse),
            usage,
        };
        let mut encoder = AnthropicEncoder::new("claude-sonnet-4-5", "msg_fallback");
        let json_out: Value = serde_json::from_slice(&encoder.encode_response(&response)).unwrap();
        assert_eq!(json_out["content"].as_array().unwrap().iter().collect::<Vec<_>>(), original);
        assert_eq!(json_out["model"], "claude-sonnet-4-5");
        assert_eq!(
            json_out["usage"],
            json!({"input_tokens": 100, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 800, "output_tokens": 50})
        );

        // The same answer streamed, fed to the encoder in batches of every size.
        let events = events_for(&parts, usage, FinishReason::ToolUse);
        for step in [1, 2, 5, events.len()] {
            let mut encoder = AnthropicEncoder::new("claude-sonnet-4-5", "msg_fallback");
            let mut out = Vec::new();
            for batch in events.chunks(step) {
                encoder.encode_events(batch, &mut out);
            }
            assert!(encoder.finished());
            let streamed = accumulate(std::str::from_utf8(&out).unwrap());
            assert_eq!(streamed["content"].as_array().unwrap().iter().collect::<Vec<_>>(), original, "step {step}");
            assert_eq!(streamed["model"], "claude-sonnet-4-5");
            assert_eq!(streamed["id"], "msg_rt");
            assert_eq!(streamed["stop_reason"], "tool_use");
            assert_eq!(streamed["usage"], json_out["usage"], "usage sent after finish still reaches message_delta");
        }
    }
}

/// `cargo test --release -p gateway-core --test codec_anthropic -- --ignored --nocapture`: the
/// decode cost of a Claude Code-sized body, for the benchmark notes.
#[test]
#[ignore]
fn decode_cost_of_a_claude_code_body() {
    let runs = 2000;
    let started = std::time::Instant::now();
    for _ in 0..runs {
        std::hint::black_box(decode_request(std::hint::black_box(CLAUDE_CODE.as_bytes())).unwrap());
    }
    let per = started.elapsed() / runs;
    let started = std::time::Instant::now();
    for _ in 0..runs {
        std::hint::black_box(serde_json::from_str::<Value>(std::hint::black_box(CLAUDE_CODE)).unwrap());
    }
    let value = started.elapsed() / runs;
    eprintln!("{} bytes: decode_request {per:?}, serde_json::Value parse {value:?}", CLAUDE_CODE.len());
}

mod property {
    use super::*;
    use proptest::prelude::*;

    fn block() -> impl Strategy<Value = Value> {
        let key = "[a-z_]{1,8}";
        let scalar = prop_oneof![
            any::<String>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            Just(Value::Null)
        ];
        let input = proptest::collection::btree_map(key, scalar, 0..4)
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>()));
        prop_oneof![
            any::<String>().prop_map(|text| json!({"type": "text", "text": text})),
            ("[A-Za-z0-9_]{1,24}", "[A-Za-z_]{1,16}", input)
                .prop_map(|(id, name, input)| json!({"type": "tool_use", "id": id, "name": name, "input": input})),
            (any::<String>(), "[A-Za-z0-9+/=]{0,80}")
                .prop_map(|(text, sig)| json!({"type": "thinking", "thinking": text, "signature": sig})),
            "[A-Za-z0-9+/=]{1,80}".prop_map(|data| json!({"type": "redacted_thinking", "data": data})),
            any::<String>().prop_map(
                |q| json!({"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": q}})
            ),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// The lossless subset: assistant blocks decoded, then encoded as an answer (JSON and
        /// SSE, fed in batches of any size), come back identical.
        #[test]
        fn assistant_blocks_round_trip(blocks in proptest::collection::vec(block(), 1..6), step in 1usize..8) {
            let body = base(json!({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": blocks}]}));
            let req = decode(&body);
            let parts = req.messages[1].parts.clone();
            let usage = Usage { input: Some(10), output: Some(3), ..Default::default() };
            let response = Response { id: None, model: None, parts: parts.clone(), finish: Some(FinishReason::EndTurn), usage };
            let mut encoder = AnthropicEncoder::new("claude-x", "msg_1");
            let out: Value = serde_json::from_slice(&encoder.encode_response(&response)).unwrap();
            prop_assert_eq!(&out["content"], &body["messages"][1]["content"]);
            let mut out = Vec::new();
            for batch in events_for(&parts, usage, FinishReason::EndTurn).chunks(step) {
                encoder.encode_events(batch, &mut out);
            }
            let streamed = accumulate(std::str::from_utf8(&out).unwrap());
            prop_assert_eq!(&streamed["content"], &body["messages"][1]["content"]);
            prop_assert_eq!(&streamed["id"], "msg_rt");
        }
    }
}
