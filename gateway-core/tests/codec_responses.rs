//! The OpenAI Responses API client codec: every input item and part kind decodes, bad input is a
//! 400 in OpenAI's wording naming the `param` (never a panic), every recorded request decodes,
//! the JSON and SSE encoders write what OpenAI's recorded answers hold (types, order, fields;
//! ids and timestamps aside), a stream's `response.completed` equals the JSON answer, and a
//! Claude-signed reasoning part comes back through `encrypted_content` as the same `Opaque`.

use std::path::PathBuf;

use gateway_core::codec::responses::{decode_request, ResponsesEncoder};
use gateway_core::conversation::bridge::ClientEncoder;
use gateway_core::conversation::{
    BlockStart, Delta, Event, Family, FinishReason, Json, Message, Opaque, OutputFormat, Part, ProviderError, Request,
    Response, Role, Source, ToolChoice, ToolKind, Usage,
};
use serde_json::{json, Value};

fn decode(body: &Value) -> Request {
    decode_request(body.to_string().as_bytes()).unwrap_or_else(|e| panic!("{body}: {e:?}")).0
}

fn with(extra: Value) -> Value {
    let mut body = json!({"model": "gpt-5", "input": "hi"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

fn extra(req: &Request, name: &str) -> Option<Value> {
    req.extras.iter().find(|e| e.name == name).map(|e| {
        assert_eq!(e.family, Family::OpenAi);
        serde_json::from_str(e.value.get()).unwrap()
    })
}

// --- decoding ---------------------------------------------------------------------------------

#[test]
fn a_codex_style_request_decodes_every_item_kind() {
    let body = json!({
        "model": "gpt-5-codex",
        "instructions": "You are Codex.",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "<permissions>"}]},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "list files"},
                {"type": "input_image", "image_url": "data:image/png;base64,iVBOR", "detail": "auto"},
                {"type": "input_image", "image_url": "https://x/y.jpg"},
                {"type": "input_image", "file_id": "file-img"},
                {"type": "input_file", "file_data": "data:application/pdf;base64,JVBER", "filename": "a.pdf"},
                {"type": "input_file", "file_id": "file-1"},
                {"type": "input_file", "file_url": "https://x/doc.pdf"},
                {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}},
                {"type": "future_part", "x": 1}
            ]},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Plan"}, {"type": "summary_text", "text": "Act"}], "encrypted_content": "gAAAA"},
            {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "gw1.claude.REDACTED"},
            {"type": "reasoning", "id": "rs_3", "summary": []},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Running ls", "annotations": []}]},
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "shell", "arguments": "{\"command\":[\"ls\"]}"},
            {"type": "custom_tool_call", "id": "ctc_1", "call_id": "call_2", "name": "apply_patch", "input": "*** Begin Patch"},
            {"type": "web_search_call", "id": "ws_1", "status": "completed"},
            {"type": "function_call_output", "call_id": "call_1", "output": "a.txt\nb.txt"},
            {"type": "custom_tool_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "Done"}]},
            {"role": "user", "content": "thanks"},
            {"type": "item_reference", "id": "msg_9"}
        ]
    });
    let (req, model) = decode_request(body.to_string().as_bytes()).unwrap();
    assert_eq!(model, "gpt-5-codex");
    let roles: Vec<Role> = req.messages.iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::System, Role::Developer, Role::User, Role::Assistant, Role::User]);
    assert_eq!(req.messages[0].parts, [Part::text("You are Codex.")]);
    assert_eq!(req.messages[1].parts, [Part::text("<permissions>")]);
    let user = &req.messages[2].parts;
    assert_eq!(user[0], Part::text("list files"));
    assert_eq!(
        user[1],
        Part::Image { source: Source::Base64 { media_type: "image/png".into(), data: "iVBOR".into() }, cache: None }
    );
    assert_eq!(
        user[2],
        Part::Image { source: Source::Url { url: "https://x/y.jpg".into(), media_type: None }, cache: None }
    );
    assert_eq!(
        user[3],
        Part::Image { source: Source::File { family: Family::OpenAi, id: "file-img".into() }, cache: None }
    );
    let doc = |source, title: Option<&str>| Part::Document {
        source,
        title: title.map(Into::into),
        context: None,
        citations: None,
        cache: None,
    };
    assert_eq!(
        user[4],
        doc(Source::Base64 { media_type: "application/pdf".into(), data: "JVBER".into() }, Some("a.pdf"))
    );
    assert_eq!(user[5], doc(Source::File { family: Family::OpenAi, id: "file-1".into() }, None));
    assert_eq!(user[6], doc(Source::Url { url: "https://x/doc.pdf".into(), media_type: None }, None));
    assert_eq!(user[7], Part::Audio { data: "UklG".into(), format: "wav".into() });
    assert!(matches!(&user[8], Part::Unknown { family: Family::OpenAi, raw } if raw.get().contains("future_part")));

    let assistant = &req.messages[3].parts;
    assert_eq!(
        assistant[0],
        Part::Reasoning {
            text: "Plan\n\nAct".into(),
            signature: Some(Opaque { family: Family::OpenAi, data: "gAAAA".into() }),
            cache: None
        }
    );
    assert_eq!(
        assistant[1],
        Part::RedactedReasoning { data: Opaque { family: Family::Claude, data: "REDACTED".into() } }
    );
    assert!(matches!(&assistant[2], Part::Unknown { family: Family::OpenAi, raw } if raw.get().contains("rs_3")));
    assert_eq!(assistant[3], Part::text("Running ls"));
    assert_eq!(
        assistant[4],
        Part::ToolCall {
            id: "call_1".into(),
            name: "shell".into(),
            arguments: "{\"command\":[\"ls\"]}".into(),
            kind: ToolKind::Function,
            cache: None
        }
    );
    assert_eq!(
        assistant[5],
        Part::ToolCall {
            id: "call_2".into(),
            name: "apply_patch".into(),
            arguments: "*** Begin Patch".into(),
            kind: ToolKind::Custom,
            cache: None
        }
    );
    assert!(matches!(&assistant[6], Part::Unknown { family: Family::OpenAi, raw } if raw.get().contains("ws_1")));
    assert_eq!(assistant.len(), 7);

    let results = &req.messages[4].parts;
    assert_eq!(
        results[0],
        Part::ToolResult {
            call_id: "call_1".into(),
            name: Some("shell".into()),
            content: vec![Part::text("a.txt\nb.txt")],
            is_error: false,
            cache: None
        }
    );
    assert_eq!(
        results[1],
        Part::ToolResult {
            call_id: "call_2".into(),
            name: Some("apply_patch".into()),
            content: vec![Part::text("Done")],
            is_error: false,
            cache: None
        }
    );
    assert_eq!(results[2], Part::text("thanks"));
    assert!(
        matches!(&results[3], Part::Unknown { family: Family::OpenAi, raw } if raw.get().contains("item_reference"))
    );
}

#[test]
fn an_empty_tagged_encrypted_content_signs_nothing() {
    let req = decode(&with(json!({"input": [
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "t"}], "encrypted_content": "gw1.claude."},
        {"type": "reasoning", "summary": [], "encrypted_content": ""}
    ]})));
    assert_eq!(req.messages[0].parts[0], Part::Reasoning { text: "t".into(), signature: None, cache: None });
    assert!(matches!(&req.messages[0].parts[1], Part::Unknown { family: Family::OpenAi, .. }));
}

#[test]
fn a_string_input_and_no_instructions_is_one_user_turn() {
    let req = decode(&json!({"model": "m", "input": "hello", "instructions": ""}));
    assert_eq!(req.messages, [Message { role: Role::User, parts: vec![Part::text("hello")] }]);
    assert!(!req.stream);
    assert!(req.extras.is_empty());
}

#[test]
fn tools_options_and_extras() {
    let req = decode(&with(json!({
        "tools": [
            {"type": "function", "name": "shell", "description": "Runs a command", "strict": false,
             "parameters": {"type": "object", "properties": {"command": {"type": "array"}}}},
            {"type": "function", "name": "noargs", "description": "", "parameters": null},
            {"type": "custom", "name": "apply_patch", "description": "Patch", "format": {"type": "grammar"}},
            {"type": "web_search", "search_context_size": "low"},
            {"type": "mcp", "server_label": "a", "server_url": "https://a"},
            {"type": "mcp", "server_label": "b", "server_url": "https://b"},
            {"type": "file_search", "vector_store_ids": ["vs"]},
            {"type": "code_interpreter", "container": {"type": "auto"}},
            {"type": "image_generation"},
            {"type": "local_shell"}
        ],
        "tool_choice": "required",
        "parallel_tool_calls": false,
        "max_output_tokens": 1000,
        "temperature": 0.5,
        "top_p": 0.9,
        "reasoning": {"effort": "high", "summary": "auto"},
        "text": {"format": {"type": "json_schema", "name": "Out", "schema": {"type": "object"}, "strict": true}, "verbosity": "low"},
        "include": ["reasoning.encrypted_content"],
        "store": false,
        "metadata": {"k": "v"},
        "prompt_cache_key": "pck",
        "service_tier": "flex",
        "previous_response_id": null,
        "truncation": "auto",
        "safety_identifier": "sid",
        "stream": true
    })));
    assert_eq!(req.tools.len(), 3);
    assert_eq!(req.tools[0].name, "shell");
    assert_eq!(req.tools[0].description.as_deref(), Some("Runs a command"));
    assert_eq!(req.tools[0].strict, Some(false));
    assert_eq!(req.tools[0].kind, ToolKind::Function);
    let schema: Value = serde_json::from_str(req.tools[0].input_schema.as_ref().unwrap().get()).unwrap();
    assert_eq!(schema, json!({"type": "object", "properties": {"command": {"type": "array"}}}));
    assert_eq!(req.tools[1].description, None);
    assert_eq!(req.tools[1].input_schema.as_ref().unwrap().get(), r#"{"type":"object","properties":{}}"#);
    assert_eq!((req.tools[2].kind, req.tools[2].input_schema.is_none()), (ToolKind::Custom, true));
    assert_eq!(extra(&req, "web_search").unwrap(), json!([{"type": "web_search", "search_context_size": "low"}]));
    assert_eq!(extra(&req, "mcp").unwrap().as_array().unwrap().len(), 2);
    for hosted in ["file_search", "code_interpreter", "image_generation", "local_shell"] {
        assert!(extra(&req, hosted).is_some(), "{hosted}");
    }
    assert_eq!(req.tool_choice, Some(ToolChoice::Required));
    assert_eq!(req.parallel_tool_calls, Some(false));
    assert_eq!(req.max_output_tokens, Some(1000));
    assert_eq!((req.temperature, req.top_p), (Some(0.5), Some(0.9)));
    assert_eq!(req.effort.as_deref(), Some("high"));
    assert_eq!(extra(&req, "reasoning").unwrap(), json!({"effort": "high", "summary": "auto"}));
    assert_eq!(
        req.output_format,
        Some(OutputFormat::JsonSchema {
            name: Some("Out".into()),
            schema: Json::from_text(r#"{"type":"object"}"#).unwrap(),
            strict: Some(true)
        })
    );
    assert_eq!(extra(&req, "verbosity").unwrap(), json!("low"));
    assert!(extra(&req, "text").is_none());
    assert_eq!(extra(&req, "include").unwrap(), json!(["reasoning.encrypted_content"]));
    assert_eq!(extra(&req, "store").unwrap(), json!(false));
    assert_eq!(extra(&req, "metadata").unwrap(), json!({"k": "v"}));
    assert_eq!(extra(&req, "prompt_cache_key").unwrap(), json!("pck"));
    assert_eq!(extra(&req, "service_tier").unwrap(), json!("flex"));
    assert_eq!(extra(&req, "truncation").unwrap(), json!("auto"));
    assert!(extra(&req, "previous_response_id").is_none(), "null is absent");
    assert_eq!(req.user.as_deref(), Some("sid"));
    assert!(req.stream);

    // Named choices, modes, a hosted tool forced, `user` over `safety_identifier`.
    let named = decode(&with(
        json!({"tool_choice": {"type": "function", "name": "shell"}, "user": "u", "safety_identifier": "s"}),
    ));
    assert_eq!(named.tool_choice, Some(ToolChoice::Tool("shell".into())));
    assert_eq!(named.user.as_deref(), Some("u"));
    let custom = decode(&with(json!({"tool_choice": {"type": "custom", "name": "apply_patch"}})));
    assert_eq!(custom.tool_choice, Some(ToolChoice::Tool("apply_patch".into())));
    let hosted = decode(&with(json!({"tool_choice": {"type": "web_search_preview"}})));
    assert_eq!(hosted.tool_choice, None);
    assert_eq!(extra(&hosted, "tool_choice").unwrap(), json!({"type": "web_search_preview"}));
    let allowed = decode(&with(json!({"tool_choice": {"type": "allowed_tools", "mode": "required", "tools": []}})));
    assert_eq!(allowed.tool_choice, Some(ToolChoice::Required));
    assert!(extra(&allowed, "tool_choice").is_some());
    for (mode, choice) in [("auto", ToolChoice::Auto), ("none", ToolChoice::None)] {
        assert_eq!(decode(&with(json!({"tool_choice": mode}))).tool_choice, Some(choice));
    }
    let only_effort =
        decode(&with(json!({"reasoning": {"effort": "low", "summary": null}, "text": {"format": {"type": "text"}}})));
    assert!(extra(&only_effort, "reasoning").is_none());
    assert_eq!(only_effort.output_format, None);
    let json_object = decode(&with(json!({"text": {"format": {"type": "json_object"}, "future": 1}})));
    assert_eq!(json_object.output_format, Some(OutputFormat::JsonObject));
    assert!(extra(&json_object, "text").is_some());
}

#[test]
fn a_tool_output_for_a_stored_call_is_accepted_with_previous_response_id() {
    let body = with(
        json!({"previous_response_id": "resp_1", "input": [{"type": "function_call_output", "call_id": "c", "output": "x"}]}),
    );
    let req = decode(&body);
    assert!(matches!(&req.messages[0].parts[0], Part::ToolResult { name: None, .. }));
    assert_eq!(extra(&req, "previous_response_id").unwrap(), json!("resp_1"));
}

#[test]
fn bad_input_is_a_400_naming_the_param() {
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"input": "x"}), "model", "Missing required parameter: 'model'."),
        (json!({"model": 3, "input": "x"}), "model", "Invalid type for 'model': expected a string."),
        (with(json!({"input": 5})), "input", "Invalid type for 'input'"),
        (with(json!({"input": [5]})), "input[0]", "expected an object"),
        (with(json!({"input": [{"role": "tool", "content": "x"}]})), "input[0].role", "Invalid value: 'tool'."),
        (with(json!({"input": [{"role": "user"}]})), "input[0].content", "Missing required parameter"),
        (with(json!({"input": [{"role": "user", "content": 1}]})), "input[0].content", "Invalid type"),
        (with(json!({"input": [{"role": "user", "content": [{"text": "x"}]}]})), "input[0].content[0].type", "Missing"),
        (
            with(json!({"input": [{"role": "user", "content": [{"type": "input_text"}]}]})),
            "input[0].content[0].text",
            "Missing",
        ),
        (
            with(json!({"input": [{"role": "user", "content": [{"type": "input_image"}]}]})),
            "input[0].content[0].image_url",
            "Missing",
        ),
        (
            with(
                json!({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "data:image/png,xx"}]}]}),
            ),
            "input[0].content[0].image_url",
            "base64",
        ),
        (
            with(json!({"input": [{"role": "user", "content": [{"type": "input_file"}]}]})),
            "input[0].content[0].file_data",
            "Missing",
        ),
        (
            with(json!({"input": [{"type": "function_call", "call_id": "c", "name": "f"}]})),
            "input[0].arguments",
            "Missing",
        ),
        (
            with(json!({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]})),
            "input[0].call_id",
            "Missing",
        ),
        (
            with(json!({"input": [{"type": "custom_tool_call", "call_id": "c", "name": "f"}]})),
            "input[0].input",
            "Missing",
        ),
        (
            with(json!({"input": [{"type": "function_call_output", "call_id": "nope", "output": "x"}]})),
            "input[0].call_id",
            "No tool call found for function call output with call_id nope.",
        ),
        (
            with(
                json!({"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}, {"type": "function_call_output", "call_id": "c"}]}),
            ),
            "input[1].output",
            "Missing",
        ),
        (
            with(
                json!({"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}, {"type": "function_call_output", "call_id": "c", "output": 3}]}),
            ),
            "input[1].output",
            "Invalid type",
        ),
        (
            with(json!({"input": [{"type": "reasoning", "summary": [{"type": "bogus", "text": "x"}]}]})),
            "input[0].summary[0].type",
            "Invalid value",
        ),
        (with(json!({"input": [{"type": "reasoning", "summary": "x"}]})), "input[0].summary", "expected an array"),
        (
            with(json!({"input": [{"type": "reasoning", "encrypted_content": 1}]})),
            "input[0].encrypted_content",
            "Invalid type",
        ),
        (with(json!({"instructions": ["x"]})), "instructions", "Invalid type"),
        (with(json!({"tools": {}})), "tools", "expected an array"),
        (with(json!({"tools": [{"name": "f"}]})), "tools[0].type", "Missing"),
        (with(json!({"tools": [{"type": "function"}]})), "tools[0].name", "Missing"),
        (
            with(json!({"tools": [{"type": "function", "name": "f", "parameters": "x"}]})),
            "tools[0].parameters",
            "Invalid type",
        ),
        (with(json!({"tools": [{"type": "function", "name": "f", "strict": "yes"}]})), "tools[0].strict", "boolean"),
        (with(json!({"tool_choice": "sometimes"})), "tool_choice", "Invalid value: 'sometimes'."),
        (with(json!({"tool_choice": {"type": "function"}})), "tool_choice.name", "Missing"),
        (with(json!({"parallel_tool_calls": "no"})), "parallel_tool_calls", "boolean"),
        (with(json!({"max_output_tokens": 0})), "max_output_tokens", "integer below minimum value"),
        (with(json!({"max_output_tokens": -5})), "max_output_tokens", "Invalid type"),
        (
            with(json!({"temperature": -1})),
            "temperature",
            "Invalid 'temperature': decimal below minimum value. Expected a value >= 0, but got -1 instead.",
        ),
        (with(json!({"temperature": 2.5})), "temperature", "decimal above maximum value"),
        (with(json!({"top_p": 1.5})), "top_p", "decimal above maximum value"),
        (with(json!({"reasoning": {"effort": 1}})), "reasoning.effort", "Invalid type"),
        (with(json!({"reasoning": "high"})), "reasoning", "expected an object"),
        (with(json!({"text": {"format": {"type": "yaml"}}})), "text.format.type", "Invalid value: 'yaml'."),
        (with(json!({"text": {"format": {"type": "json_schema", "name": "x"}}})), "text.format.schema", "Missing"),
        (with(json!({"text": {"verbosity": 1}})), "text.verbosity", "Invalid type"),
        (with(json!({"stream": "yes"})), "stream", "boolean"),
        (with(json!({"user": 1})), "user", "Invalid type"),
    ];
    for (body, param, wording) in cases {
        let err = decode_request(body.to_string().as_bytes()).expect_err(&body.to_string());
        assert_eq!(err.status(), 400, "{body}");
        assert_eq!(err.param.as_deref(), Some(param), "{body}: {}", err.message);
        assert!(err.message.contains(wording), "{body}: {}", err.message);
        assert!(err.code.is_some(), "{body}");
        let rendered: Value = serde_json::from_slice(&err.to_openai_body()).unwrap();
        assert_eq!(rendered["error"]["param"], param);
        assert_eq!(rendered["error"]["type"], "invalid_request_error");
    }
    for raw in [
        &b""[..],
        b"[]",
        b"null",
        b"{",
        b"{\"model\":\"m\",",
        b"\xff\xfe",
        b"  {\"model\": \"m\", \"input\": \"x\"} trailing",
    ] {
        let err = decode_request(raw).expect_err(&String::from_utf8_lossy(raw));
        assert_eq!(err.status(), 400);
    }
    // Deeply nested and huge inputs are errors or requests, never a panic.
    let deep = format!("{{\"model\":\"m\",\"input\":{}1{}}}", "[".repeat(5000), "]".repeat(5000));
    assert!(decode_request(deep.as_bytes()).is_err());
    let many: Vec<Value> = (0..20_000).map(|i| json!({"role": "user", "content": format!("m{i}")})).collect();
    let req = decode(&with(json!({"input": many})));
    assert_eq!(req.messages[0].parts.len(), 20_000);
}

// --- recordings -------------------------------------------------------------------------------

/// One recorded `/v1/responses` exchange.
struct Recorded {
    name: String,
    request: Value,
    status: u64,
    /// The JSON answer, or `None` for a stream.
    json: Option<Value>,
    /// The SSE frames (event name, data) of a stream.
    sse: Vec<(String, Value)>,
}

fn recordings() -> Vec<Recorded> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/recorded/openai-responses");
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
        for (n, interaction) in doc["interactions"].as_array().unwrap().iter().enumerate() {
            if !interaction["request"]["uri"].as_str().unwrap().ends_with("/v1/responses") {
                continue;
            }
            let response = &interaction["response"];
            let (json, sse) = match (&response["parsed_body"], &response["body"]["string"]) {
                (Value::Null, Value::String(s)) => (None, sse_frames(s.as_bytes())),
                (parsed, _) => (Some(parsed.clone()), Vec::new()),
            };
            out.push(Recorded {
                name: format!("{}#{n}", file.file_name().unwrap().to_string_lossy()),
                request: interaction["request"]["parsed_body"].clone(),
                status: response["status"]["code"].as_u64().unwrap(),
                json,
                sse,
            });
        }
    }
    assert!(out.len() >= 15, "recordings missing: {}", out.len());
    out
}

/// The (event, data) frames of an SSE body, checking that `event:` equals the data's `type`.
fn sse_frames(body: &[u8]) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(body).unwrap();
    text.split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .map(|frame| {
            let event = frame.lines().find_map(|l| l.strip_prefix("event: ")).expect("event line").to_owned();
            let data: String = frame.lines().filter_map(|l| l.strip_prefix("data: ")).collect::<Vec<_>>().join("\n");
            let data: Value = serde_json::from_str(&data).unwrap_or_else(|e| panic!("{data}: {e}"));
            assert_eq!(data["type"], event.as_str());
            (event, data)
        })
        .collect()
}

#[test]
fn every_recorded_request_decodes() {
    let mut decoded = 0;
    for rec in recordings() {
        let body = rec.request.to_string();
        if rec.status == 400 {
            // OpenAI refused this request: the gateway refuses it with OpenAI's own error body.
            let err = decode_request(body.as_bytes()).expect_err(&rec.name);
            let ours: Value = serde_json::from_slice(&err.to_openai_body()).unwrap();
            assert_eq!(ours, rec.json.clone().unwrap(), "{}", rec.name);
            continue;
        }
        let (req, model) = decode_request(body.as_bytes()).unwrap_or_else(|e| panic!("{}: {e:?}", rec.name));
        assert_eq!(model, rec.request["model"].as_str().unwrap(), "{}", rec.name);
        // One part per input item, one per content part of a message with a content list.
        let items: usize = rec.request["input"]
            .as_array()
            .map_or(1, |items| items.iter().map(|i| i["content"].as_array().map_or(1, Vec::len)).sum());
        let parts: usize = req.messages.iter().map(|m| m.parts.len()).sum();
        let instructions = rec.request["instructions"].as_str().is_some_and(|s| !s.is_empty()) as usize;
        assert_eq!(parts, items + instructions, "{}", rec.name);
        assert_eq!(req.stream, rec.request["stream"] == json!(true), "{}", rec.name);
        assert_eq!(req.tools.len(), rec.request["tools"].as_array().map_or(0, Vec::len), "{}", rec.name);
        decoded += 1;
    }
    assert!(decoded >= 15);
}

/// The parts and usage an answer of the recorded `output` holds, as a provider decoder would
/// give them.
fn parts_of(output: &Value) -> Vec<Part> {
    let mut parts = Vec::new();
    for item in output.as_array().unwrap() {
        match item["type"].as_str().unwrap() {
            "message" => {
                for c in item["content"].as_array().unwrap() {
                    parts.push(Part::text(c["text"].as_str().unwrap()));
                }
            }
            "function_call" => parts.push(Part::ToolCall {
                id: item["call_id"].as_str().unwrap().into(),
                name: item["name"].as_str().unwrap().into(),
                arguments: item["arguments"].as_str().unwrap().into(),
                kind: ToolKind::Function,
                cache: None,
            }),
            "reasoning" => {
                let summary: Vec<&str> =
                    item["summary"].as_array().unwrap().iter().map(|s| s["text"].as_str().unwrap()).collect();
                let signature =
                    item["encrypted_content"].as_str().map(|e| Opaque { family: Family::OpenAi, data: e.into() });
                parts.push(match (summary.is_empty(), signature) {
                    (false, signature) => Part::Reasoning { text: summary.join("\n\n"), signature, cache: None },
                    (true, Some(data)) => Part::RedactedReasoning { data },
                    (true, None) => {
                        Part::Unknown { family: Family::OpenAi, raw: Json::from_text(&item.to_string()).unwrap() }
                    }
                });
            }
            other => panic!("unexpected recorded item {other}"),
        }
    }
    parts
}

fn usage_of(usage: &Value) -> Usage {
    Usage {
        input: usage["input_tokens"].as_u64(),
        output: usage["output_tokens"].as_u64(),
        cache_read: usage["input_tokens_details"]["cached_tokens"].as_u64(),
        cache_write: None,
        reasoning: usage["output_tokens_details"]["reasoning_tokens"].as_u64(),
    }
}

/// Keys whose values are the provider's own (ids, times, obfuscation padding, its model id).
const IGNORED: [&str; 6] = ["id", "item_id", "created_at", "obfuscation", "model", "encrypted_content_added"];

/// Response members the encoder writes from the answer; the rest echo the request, which the
/// encoder does not see.
const RESPONSE_MEMBERS: [&str; 6] = ["object", "status", "error", "incomplete_details", "output", "usage"];

/// Every member of `recorded` (except ignored ones) is in `ours` with the same value; arrays
/// have the same length. `path` names the place in failure messages.
fn assert_within(recorded: &Value, ours: &Value, path: &str) {
    match (recorded, ours) {
        (Value::Object(r), Value::Object(o)) => {
            let response_level = path.ends_with(".response");
            for (k, v) in r {
                if IGNORED.contains(&k.as_str()) || (response_level && !RESPONSE_MEMBERS.contains(&k.as_str())) {
                    continue;
                }
                // OpenAI re-encrypts reasoning at `added`, `done` and `completed`: only the final
                // value is the answer's.
                if k == "encrypted_content" && path.contains("output_item") {
                    continue;
                }
                let o = o.get(k).unwrap_or_else(|| panic!("{path}.{k} missing in ours: {ours}"));
                assert_within(v, o, &format!("{path}.{k}"));
            }
        }
        (Value::Array(r), Value::Array(o)) => {
            assert_eq!(r.len(), o.len(), "{path}: {recorded} vs {ours}");
            for (i, (r, o)) in r.iter().zip(o).enumerate() {
                assert_within(r, o, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(recorded, ours, "{path}"),
    }
}

#[test]
fn json_answers_hold_what_the_recorded_answers_hold() {
    let mut compared = 0;
    for rec in recordings().into_iter().filter(|r| r.status == 200) {
        let Some(recorded) = rec.json else { continue };
        let response = Response {
            id: recorded["id"].as_str().map(Into::into),
            model: recorded["model"].as_str().map(Into::into),
            parts: parts_of(&recorded["output"]),
            finish: Some(FinishReason::EndTurn),
            usage: usage_of(&recorded["usage"]),
        };
        let mut encoder = ResponsesEncoder::new("client-model", "resp_fallback", 1_700_000_000);
        let ours: Value = serde_json::from_slice(&encoder.encode_response(&response)).unwrap();
        let mut wrapped = json!({"response": recorded.clone()});
        wrapped["response"]["incomplete_details"] = Value::Null;
        assert_within(&wrapped, &json!({"response": ours.clone()}), &format!("{}.response", rec.name));
        assert_eq!(ours["id"], recorded["id"], "{}: the provider's resp_ id is kept", rec.name);
        assert_eq!(ours["model"], "client-model");
        assert_eq!(ours["created_at"], 1_700_000_000);
        compared += 1;
    }
    assert!(compared >= 10, "{compared}");
}

/// The events a provider decoder would produce for the recorded stream: the same blocks, with
/// the recorded delta boundaries, the final usage and a finish.
fn events_of(sse: &[(String, Value)]) -> Vec<Event> {
    let completed = &sse.last().unwrap().1["response"];
    let mut events = vec![Event::Start { id: completed["id"].as_str().map(Into::into), model: None }];
    let mut index = 0u32;
    let mut open: Option<u32> = None;
    for (name, data) in sse {
        match name.as_str() {
            "response.output_item.added" => {
                let item = &data["item"];
                match item["type"].as_str().unwrap() {
                    "function_call" => {
                        events.push(Event::BlockStart {
                            index,
                            block: BlockStart::ToolCall {
                                id: item["call_id"].as_str().unwrap().into(),
                                name: item["name"].as_str().unwrap().into(),
                                kind: ToolKind::Function,
                            },
                        });
                        open = Some(index);
                        index += 1;
                    }
                    "reasoning" => {
                        let done = &completed["output"][data["output_index"].as_u64().unwrap() as usize];
                        let data =
                            Opaque { family: Family::OpenAi, data: done["encrypted_content"].as_str().unwrap().into() };
                        events.push(Event::BlockStart { index, block: BlockStart::RedactedReasoning { data } });
                        events.push(Event::BlockStop { index });
                        index += 1;
                    }
                    _ => {}
                }
            }
            "response.content_part.added" => {
                events.push(Event::BlockStart { index, block: BlockStart::Text });
                open = Some(index);
                index += 1;
            }
            "response.output_text.delta" => events.push(Event::Delta {
                index: open.unwrap(),
                delta: Delta::Text(data["delta"].as_str().unwrap().into()),
            }),
            "response.function_call_arguments.delta" => events.push(Event::Delta {
                index: open.unwrap(),
                delta: Delta::ToolArguments(data["delta"].as_str().unwrap().into()),
            }),
            "response.content_part.done" | "response.function_call_arguments.done" => {
                events.push(Event::BlockStop { index: open.take().unwrap() })
            }
            _ => {}
        }
    }
    events.push(Event::Usage(usage_of(&completed["usage"])));
    events.push(Event::Finish(FinishReason::EndTurn));
    events.push(Event::End);
    events
}

#[test]
fn streams_hold_what_the_recorded_streams_hold_and_complete_as_the_json_answer() {
    let mut compared = 0;
    for rec in recordings().into_iter().filter(|r| !r.sse.is_empty()) {
        let events = events_of(&rec.sse);
        for batch in [1, 2, 3, 7, events.len()] {
            let mut encoder = ResponsesEncoder::new("client-model", "resp_fallback", 1_700_000_000);
            let mut out = Vec::new();
            for chunk in events.chunks(batch) {
                encoder.encode_events(chunk, &mut out);
            }
            assert!(encoder.finished());
            let ours = sse_frames(&out);
            let names = |f: &[(String, Value)]| f.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
            assert_eq!(names(&ours), names(&rec.sse), "{}", rec.name);
            for (i, ((name, recorded), (_, mine))) in rec.sse.iter().zip(&ours).enumerate() {
                assert_eq!(mine["sequence_number"], i, "{}: dense sequence numbers", rec.name);
                assert_within(recorded, mine, &format!("{}[{i}].{name}", rec.name));
            }
            // The item ids a stream announces are the ones it completes with.
            let completed = &ours.last().unwrap().1["response"];
            for (name, data) in &ours {
                if name == "response.output_item.done" {
                    let index = data["output_index"].as_u64().unwrap() as usize;
                    assert_eq!(completed["output"][index], data["item"], "{}", rec.name);
                }
            }
            // The stream completes with the JSON answer for the same parts.
            let response = Response {
                id: completed["id"].as_str().map(Into::into),
                model: None,
                parts: parts_of(&rec.sse.last().unwrap().1["response"]["output"]),
                finish: Some(FinishReason::EndTurn),
                usage: usage_of(&rec.sse.last().unwrap().1["response"]["usage"]),
            };
            let json: Value = serde_json::from_slice(&encoder.encode_response(&response)).unwrap();
            assert_eq!(completed, &json, "{}", rec.name);
        }
        compared += 1;
    }
    assert_eq!(compared, 3);
}

// --- encoder ----------------------------------------------------------------------------------

fn claude_answer() -> Response {
    Response {
        id: Some("msg_01ABC".into()),
        model: Some("claude-sonnet-4-5".into()),
        parts: vec![
            Part::Reasoning {
                text: "I should list the files.".into(),
                signature: Some(Opaque { family: Family::Claude, data: "EqQBCkgIARABGAIiQL+/sig==".into() }),
                cache: None,
            },
            Part::RedactedReasoning { data: Opaque { family: Family::Claude, data: "EmwKAhgBEgy3va".into() } },
            Part::Reasoning {
                text: String::new(),
                signature: Some(Opaque { family: Family::Gemini, data: "CiQB".into() }),
                cache: None,
            },
            Part::text("Let me look."),
            Part::text(" Second block."),
            Part::ToolCall {
                id: "toolu_01".into(),
                name: "shell".into(),
                arguments: r#"{"command":["ls"]}"#.into(),
                kind: ToolKind::Function,
                cache: None,
            },
            Part::ToolCall {
                id: "toolu_02".into(),
                name: "apply_patch".into(),
                arguments: "*** Begin Patch".into(),
                kind: ToolKind::Custom,
                cache: None,
            },
            Part::Unknown { family: Family::Claude, raw: Json::from_text(r#"{"type":"server_tool_use"}"#).unwrap() },
            Part::text("Done."),
        ],
        finish: Some(FinishReason::ToolUse),
        usage: Usage {
            input: Some(100),
            output: Some(40),
            cache_read: Some(60),
            cache_write: Some(10),
            reasoning: Some(12),
        },
    }
}

/// The events a decoder streaming `parts` would produce, argument and text deltas split in two.
fn events_for(response: &Response) -> Vec<Event> {
    let mut events = vec![Event::Start { id: response.id.clone(), model: None }];
    for (i, part) in response.parts.iter().enumerate() {
        let index = i as u32;
        let halves = |s: &str| {
            let mid = s.char_indices().nth(s.chars().count() / 2).map_or(s.len(), |(i, _)| i);
            vec![s[..mid].to_owned(), s[mid..].to_owned()]
        };
        let (block, deltas) = match part {
            Part::Text { text, .. } => (BlockStart::Text, halves(text).into_iter().map(Delta::Text).collect()),
            Part::ToolCall { id, name, arguments, kind, .. } => (
                BlockStart::ToolCall { id: id.clone(), name: name.clone(), kind: *kind },
                halves(arguments).into_iter().map(Delta::ToolArguments).collect(),
            ),
            Part::Reasoning { text, signature, .. } => {
                let mut deltas: Vec<Delta> = halves(text).into_iter().map(Delta::Reasoning).collect();
                deltas.extend(signature.clone().map(Delta::Signature));
                (BlockStart::Reasoning, deltas)
            }
            Part::RedactedReasoning { data } => (BlockStart::RedactedReasoning { data: data.clone() }, vec![]),
            Part::Unknown { family, raw } => (BlockStart::Unknown { family: *family, raw: raw.clone() }, vec![]),
            _ => continue,
        };
        events.push(Event::BlockStart { index, block });
        events.extend(deltas.into_iter().map(|delta| Event::Delta { index, delta }));
        events.push(Event::BlockStop { index });
    }
    events.push(Event::Finish(response.finish.clone().unwrap_or(FinishReason::EndTurn)));
    events.push(Event::Usage(response.usage));
    events.push(Event::End);
    events
}

#[test]
fn every_part_kind_becomes_its_item() {
    let mut encoder = ResponsesEncoder::new("gpt-5-codex", "resp_fallback", 42);
    let v: Value = serde_json::from_slice(&encoder.encode_response(&claude_answer())).unwrap();
    assert_eq!(v["id"], "resp_msg_01ABC");
    assert_eq!(
        (v["object"].as_str(), v["model"].as_str(), v["status"].as_str()),
        (Some("response"), Some("gpt-5-codex"), Some("completed"))
    );
    assert_eq!(v["created_at"], 42);
    assert_eq!(
        v["output"],
        json!([
            {"type": "reasoning", "id": "rs_msg_01ABC_0", "summary": [{"type": "summary_text", "text": "I should list the files."}],
             "encrypted_content": "gw1.claude.EqQBCkgIARABGAIiQL+/sig=="},
            {"type": "reasoning", "id": "rs_msg_01ABC_1", "summary": [], "encrypted_content": "gw1.claude.EmwKAhgBEgy3va"},
            {"type": "reasoning", "id": "rs_msg_01ABC_2", "summary": [{"type": "summary_text", "text": ""}], "encrypted_content": "gw1.gemini.CiQB"},
            {"type": "message", "id": "msg_msg_01ABC_3", "status": "completed", "role": "assistant", "content": [
                {"type": "output_text", "annotations": [], "logprobs": [], "text": "Let me look."},
                {"type": "output_text", "annotations": [], "logprobs": [], "text": " Second block."}]},
            {"type": "function_call", "id": "fc_msg_01ABC_4", "status": "completed", "arguments": "{\"command\":[\"ls\"]}", "call_id": "toolu_01", "name": "shell"},
            {"type": "custom_tool_call", "id": "ctc_msg_01ABC_5", "status": "completed", "call_id": "toolu_02", "name": "apply_patch", "input": "*** Begin Patch"},
            {"type": "message", "id": "msg_msg_01ABC_6", "status": "completed", "role": "assistant", "content": [
                {"type": "output_text", "annotations": [], "logprobs": [], "text": "Done."}]}
        ])
    );
    assert_eq!(
        v["usage"],
        json!({"input_tokens": 100, "input_tokens_details": {"cached_tokens": 60}, "output_tokens": 40,
               "output_tokens_details": {"reasoning_tokens": 12}, "total_tokens": 140})
    );
    assert_eq!(v["incomplete_details"], Value::Null);

    let mut cut = claude_answer();
    cut.id = None;
    for (finish, reason) in [
        (FinishReason::MaxTokens, "max_output_tokens"),
        (FinishReason::ContextWindow, "max_output_tokens"),
        (FinishReason::ContentFilter, "content_filter"),
    ] {
        cut.finish = Some(finish);
        let v: Value = serde_json::from_slice(&encoder.encode_response(&cut)).unwrap();
        assert_eq!(
            (v["status"].as_str(), v["incomplete_details"]["reason"].as_str()),
            (Some("incomplete"), Some(reason))
        );
        assert_eq!(v["id"], "resp_fallback");
        assert_eq!(v["output"][0]["id"], "rs_fallback_0");
    }
    let empty = Response { id: None, model: None, parts: vec![], finish: None, usage: Usage::default() };
    let v: Value = serde_json::from_slice(&encoder.encode_response(&empty)).unwrap();
    assert_eq!(v["output"], json!([]));
    assert_eq!(v["usage"]["total_tokens"], 0);
}

#[test]
fn the_stream_of_an_answer_completes_as_its_json_and_in_order() {
    let answer = claude_answer();
    let events = events_for(&answer);
    let mut json_encoder = ResponsesEncoder::new("gpt-5-codex", "resp_fallback", 7);
    let json: Value = serde_json::from_slice(&json_encoder.encode_response(&answer)).unwrap();
    let mut reference: Option<Vec<u8>> = None;
    for batch in 1..=events.len() {
        let mut encoder = ResponsesEncoder::new("gpt-5-codex", "resp_fallback", 7);
        let mut out = Vec::new();
        for chunk in events.chunks(batch) {
            encoder.encode_events(chunk, &mut out);
        }
        // However the decoder's events were batched, the bytes are the same.
        match &reference {
            Some(r) => assert_eq!(r, &out, "batch {batch}"),
            None => reference = Some(out.clone()),
        }
        let frames = sse_frames(&out);
        let completed = &frames.last().unwrap().1;
        assert_eq!(completed["type"], "response.completed");
        assert_eq!(completed["response"], json);
    }
    let frames = sse_frames(reference.as_ref().unwrap());
    let names: Vec<&str> = frames.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            // Claude thinking
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            // redacted thinking
            "response.output_item.added",
            "response.output_item.done",
            // Gemini signature, no text
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            // two text blocks, one message
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            // function call
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            // custom tool call
            "response.output_item.added",
            "response.custom_tool_call_input.delta",
            "response.custom_tool_call_input.delta",
            "response.custom_tool_call_input.done",
            "response.output_item.done",
            // (the Claude server tool block is left out) the last text
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (i, (_, data)) in frames.iter().enumerate() {
        assert_eq!(data["sequence_number"], i);
    }
    let (_, created) = &frames[0];
    assert_eq!(created["response"]["status"], "in_progress");
    assert_eq!(created["response"]["output"], json!([]));
    assert_eq!(created["response"]["usage"], Value::Null);
    assert_eq!(created["response"]["id"], "resp_msg_01ABC");
    let (_, text_delta) = &frames[20];
    assert_eq!(
        text_delta,
        &json!({"type": "response.output_text.delta", "sequence_number": 20, "item_id": "msg_msg_01ABC_3",
                "output_index": 3, "content_index": 0, "delta": "Let me", "logprobs": []})
    );
    let (_, second_part) = &frames[24];
    assert_eq!(second_part["content_index"], 1);
    let (_, summary_delta) = &frames[4];
    assert_eq!(
        summary_delta,
        &json!({"type": "response.reasoning_summary_text.delta", "sequence_number": 4, "item_id": "rs_msg_01ABC_0",
                "output_index": 0, "summary_index": 0, "delta": "I should lis"})
    );
    let (_, added) = &frames[2];
    assert_eq!(added["item"], json!({"type": "reasoning", "id": "rs_msg_01ABC_0", "summary": []}));
    let (_, fc_added) = &frames[30];
    assert_eq!(
        fc_added["item"],
        json!({"type": "function_call", "id": "fc_msg_01ABC_4", "status": "in_progress", "arguments": "", "call_id": "toolu_01", "name": "shell"})
    );
}

#[test]
fn a_cut_answer_ends_incomplete_and_an_error_fails_the_response() {
    let mut encoder = ResponsesEncoder::new("m", "resp_f", 1);
    let mut out = Vec::new();
    encoder.encode_events(
        &[
            Event::BlockStart { index: 0, block: BlockStart::Text },
            Event::Delta { index: 0, delta: Delta::Text("par".into()) },
            Event::Finish(FinishReason::MaxTokens),
            Event::Usage(Usage { input: Some(5), output: Some(9), ..Usage::default() }),
            Event::End,
            Event::Delta { index: 0, delta: Delta::Text("ignored".into()) },
        ],
        &mut out,
    );
    let frames = sse_frames(&out);
    let last = &frames.last().unwrap().1;
    assert_eq!(last["type"], "response.incomplete");
    assert_eq!(last["response"]["status"], "incomplete");
    assert_eq!(last["response"]["incomplete_details"], json!({"reason": "max_output_tokens"}));
    assert_eq!(last["response"]["output"][0]["content"][0]["text"], "par");
    assert_eq!(last["response"]["usage"]["total_tokens"], 14);
    // A missing `Start` was synthesised with the fallback id.
    assert_eq!(frames[0].1["response"]["id"], "resp_f");
    assert!(!frames.iter().any(|(_, d)| d.to_string().contains("ignored")));

    let mut encoder = ResponsesEncoder::new("m", "resp_f", 1);
    let mut out = Vec::new();
    encoder.encode_events(
        &[
            Event::Start { id: Some("resp_x".into()), model: None },
            Event::BlockStart { index: 0, block: BlockStart::Text },
            Event::Delta { index: 0, delta: Delta::Text("half".into()) },
            Event::Error(ProviderError {
                status: 429,
                code: Some("ThrottlingException".into()),
                message: "slow down".into(),
            }),
            Event::End,
        ],
        &mut out,
    );
    assert!(encoder.finished());
    let frames = sse_frames(&out);
    let names: Vec<&str> = frames.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(&names[names.len() - 2..], ["error", "response.failed"], "{names:?}");
    let error = &frames[frames.len() - 2].1;
    assert_eq!((error["code"].as_str(), error["message"].as_str()), (Some("ThrottlingException"), Some("slow down")));
    assert_eq!(error["param"], Value::Null);
    let failed = &frames.last().unwrap().1["response"];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["id"], "resp_x");
    assert_eq!(failed["error"], json!({"code": "rate_limit_exceeded", "message": "slow down"}));

    for (status, code, kind) in [
        (429, None, "rate_limit_error"),
        (400, Some("invalid_request_error"), "invalid_request_error"),
        (500, Some("overloaded_error"), "server_error"),
        (401, None, "authentication_error"),
    ] {
        let error = ProviderError { status, code: code.map(Into::into), message: String::new() };
        let v: Value = serde_json::from_slice(&encoder.encode_error(&error)).unwrap();
        assert_eq!(v["error"]["type"], kind);
        assert_eq!(v["error"]["message"], format!("The provider returned HTTP {status}."));
        assert_eq!(v["error"]["code"], code.map_or(Value::Null, |c| json!(c)));
    }
}

// --- round trip -------------------------------------------------------------------------------

#[test]
fn claude_signed_reasoning_comes_back_as_the_same_opaque() {
    let answer = claude_answer();
    // Through the JSON answer and through the stream, the output items a client keeps...
    let mut json_encoder = ResponsesEncoder::new("gpt-5-codex", "resp_f", 1);
    let json: Value = serde_json::from_slice(&json_encoder.encode_response(&answer)).unwrap();
    let mut stream_encoder = ResponsesEncoder::new("gpt-5-codex", "resp_f", 1);
    let mut out = Vec::new();
    stream_encoder.encode_events(&events_for(&answer), &mut out);
    let streamed: Vec<Value> = sse_frames(&out)
        .into_iter()
        .filter(|(n, _)| n == "response.output_item.done")
        .map(|(_, d)| d["item"].clone())
        .collect();
    for output in [json["output"].as_array().unwrap().clone(), streamed] {
        // ... go back as the next request's input, with the tool outputs.
        let mut input = vec![json!({"role": "user", "content": "list files"})];
        input.extend(output);
        input.push(json!({"type": "function_call_output", "call_id": "toolu_01", "output": "a.txt"}));
        input.push(json!({"type": "custom_tool_call_output", "call_id": "toolu_02", "output": "ok"}));
        let req = decode(&json!({"model": "gpt-5-codex", "input": input}));
        assert_eq!(req.messages.len(), 3);
        let assistant = &req.messages[1];
        assert_eq!(assistant.role, Role::Assistant);
        // Every part the answer had comes back as it was, except the Claude server block a
        // Responses client cannot hold.
        let expected: Vec<Part> = answer.parts.iter().filter(|p| !matches!(p, Part::Unknown { .. })).cloned().collect();
        assert_eq!(assistant.parts, expected);
        assert_eq!(req.last_tool_turn_has_signed_reasoning(Family::Claude), Some(true));
        assert!(matches!(&req.messages[2].parts[0], Part::ToolResult { name: Some(n), .. } if n == "shell"));
    }
    // OpenAI's own encrypted content is carried untouched.
    let own = Response {
        id: None,
        model: None,
        parts: vec![Part::RedactedReasoning { data: Opaque { family: Family::OpenAi, data: "gAAAAB".into() } }],
        finish: None,
        usage: Usage::default(),
    };
    let v: Value = serde_json::from_slice(&json_encoder.encode_response(&own)).unwrap();
    assert_eq!(v["output"][0]["encrypted_content"], "gAAAAB");
}

// --- property: a stream, cut anywhere, completes as the JSON answer ---------------------------

fn part_of(kind: u8, text: String) -> Part {
    let n = text.len();
    let opaque = |family| Opaque { family, data: format!("sig{n}") };
    match kind % 9 {
        0 | 1 => Part::text(text),
        2 => Part::ToolCall {
            id: format!("call_{}", text.len()),
            name: "f".into(),
            arguments: text,
            kind: ToolKind::Function,
            cache: None,
        },
        3 => Part::ToolCall { id: "c".into(), name: "g".into(), arguments: text, kind: ToolKind::Custom, cache: None },
        4 => Part::Reasoning { text, signature: Some(opaque(Family::Claude)), cache: None },
        5 => Part::Reasoning { text, signature: None, cache: None },
        6 => Part::RedactedReasoning { data: opaque(Family::Converse) },
        7 => Part::Unknown { family: Family::Gemini, raw: Json::from_text(r#"{"executableCode":{}}"#).unwrap() },
        _ => Part::Unknown {
            family: Family::OpenAi,
            raw: Json::from_text(r#"{"type":"web_search_call","id":"ws"}"#).unwrap(),
        },
    }
}

proptest::proptest! {
    #[test]
    fn any_stream_cut_anywhere_completes_as_the_json_answer(
        parts in proptest::collection::vec((0u8..9, "[a-zé\"\\\\ ]{0,12}"), 0..10),
        finish in 0u8..4,
        cuts in proptest::collection::vec(1usize..6, 1..40),
    ) {
        let response = Response {
            id: if finish == 0 { None } else { Some(format!("id{finish}")) },
            model: None,
            parts: parts.into_iter().map(|(k, t)| part_of(k, t)).collect(),
            finish: Some([FinishReason::EndTurn, FinishReason::ToolUse, FinishReason::MaxTokens, FinishReason::ContentFilter][finish as usize].clone()),
            usage: Usage { input: Some(10), output: Some(5), cache_read: Some(3), cache_write: None, reasoning: Some(1) },
        };
        let events = events_for(&response);
        let mut encoder = ResponsesEncoder::new("m", "resp_fb", 9);
        let json: Value = serde_json::from_slice(&encoder.encode_response(&response)).unwrap();
        let mut stream = ResponsesEncoder::new("m", "resp_fb", 9);
        let mut out = Vec::new();
        let (mut at, mut cut) = (0, cuts.iter().cycle());
        while at < events.len() {
            let next = (at + cut.next().unwrap()).min(events.len());
            stream.encode_events(&events[at..next], &mut out);
            at = next;
        }
        proptest::prop_assert!(stream.finished());
        let frames = sse_frames(&out);
        let (name, last) = frames.last().unwrap();
        proptest::prop_assert_eq!(&last["response"], &json);
        proptest::prop_assert_eq!(name.as_str(), if json["status"] == "incomplete" { "response.incomplete" } else { "response.completed" });
        for (i, (_, data)) in frames.iter().enumerate() {
            proptest::prop_assert_eq!(&data["sequence_number"], &json!(i));
        }
        // Every item announced is done once, with the value the completed response holds.
        let done: Vec<&Value> = frames.iter().filter(|(n, _)| n == "response.output_item.done").map(|(_, d)| &d["item"]).collect();
        proptest::prop_assert_eq!(done, json["output"].as_array().unwrap().iter().collect::<Vec<_>>());
    }
}
