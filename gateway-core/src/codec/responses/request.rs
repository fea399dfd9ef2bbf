//! Responses API request → [`Request`]: every member Codex CLI and the OpenAI Agents SDK send is
//! either mapped or kept (see the table in [`super`]).

use serde_json::value::RawValue;

use super::wire::{array, invalid, invalid_type, invalid_value, is_array, is_null, is_string, missing, string, Obj};
use crate::conversation::{
    Extra, Family, Json, Message, Opaque, OutputFormat, Part, Request, Role, Source, ToolChoice, ToolDef, ToolKind,
};
use crate::error::GatewayError;

/// Top-level members with a place in [`Request`]; every other one becomes an [`Extra`].
const MAPPED: [&str; 14] = [
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_output_tokens",
    "temperature",
    "top_p",
    "reasoning",
    "text",
    "user",
    "safety_identifier",
    "stream",
];

/// Item types the model speaks in an assistant turn; any other unknown item is the client's.
const ASSISTANT_ITEMS: [&str; 9] = [
    "web_search_call",
    "file_search_call",
    "computer_call",
    "code_interpreter_call",
    "image_generation_call",
    "local_shell_call",
    "mcp_call",
    "mcp_list_tools",
    "mcp_approval_request",
];

/// Decodes a `POST /v1/responses` body into the conversation model and the model name the client
/// asked for. Every client error is a 400 in OpenAI's wording, naming the `param` at fault.
pub fn decode_request(body: &[u8]) -> Result<(Request, String), GatewayError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(GatewayError::invalid("The request body must be a JSON object."));
    }
    let top = Obj::body(body)?;
    let model = match top.opt_str("model")? {
        Some(m) if !m.is_empty() => m,
        _ => return Err(missing("model")),
    };
    let mut req = Request::default();
    if let Some(instructions) = top.get("instructions") {
        let text = string(instructions, "instructions")?;
        if !text.is_empty() {
            req.messages.push(Message { role: Role::System, parts: vec![Part::text(text)] });
        }
    }
    let stateful = top.get("previous_response_id").is_some() || top.get("conversation").is_some();
    if let Some(input) = top.get("input") {
        if is_string(input) {
            req.messages.push(Message { role: Role::User, parts: vec![Part::text(string(input, "input")?)] });
        } else if is_array(input) {
            let mut calls: Vec<(String, String)> = Vec::new();
            for (i, raw) in array(input, "input")?.into_iter().enumerate() {
                item(raw, &format!("input[{i}]"), &mut calls, stateful, &mut req.messages)?;
            }
        } else {
            return Err(invalid_type("input", "a string or an array of input items"));
        }
    }
    if let Some(tools_raw) = top.get("tools") {
        for (i, tool) in array(tools_raw, "tools")?.into_iter().enumerate() {
            self::tool(tool, i, &mut req)?;
        }
    }
    if let Some(choice) = top.get("tool_choice") {
        req.tool_choice = tool_choice(choice, &mut req.extras)?;
    }
    req.parallel_tool_calls = top.opt_bool("parallel_tool_calls")?;
    match top.opt_u64("max_output_tokens")? {
        Some(0) => {
            return Err(invalid(
                "max_output_tokens",
                "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 1, but got 0 instead."
                    .into(),
                "integer_below_min_value",
            ))
        }
        n => req.max_output_tokens = n,
    }
    req.temperature = top.opt_f64_in("temperature", 0.0, 2.0)?;
    req.top_p = top.opt_f64_in("top_p", 0.0, 1.0)?;
    req.stream = top.opt_bool("stream")?.unwrap_or(false);
    req.user = match top.opt_str("user")? {
        Some(user) => Some(user),
        None => top.opt_str("safety_identifier")?,
    };
    if let Some(raw) = top.get("safety_identifier") {
        string(raw, "safety_identifier")?;
        extra(&mut req.extras, "safety_identifier", raw);
    }
    if let Some(raw) = top.get("reasoning") {
        let reasoning = Obj::parse(raw, "reasoning".into())?;
        req.effort = reasoning.opt_str("effort")?;
        if !reasoning.only(&["effort"]) {
            extra(&mut req.extras, "reasoning", raw);
        }
    }
    if let Some(raw) = top.get("text") {
        let text = Obj::parse(raw, "text".into())?;
        if let Some(format) = text.get("format") {
            req.output_format = output_format(format)?;
        }
        if let Some(verbosity) = text.get("verbosity") {
            string(verbosity, "text.verbosity")?;
            extra(&mut req.extras, "verbosity", verbosity);
        }
        if !text.only(&["format", "verbosity"]) {
            extra(&mut req.extras, "text", raw);
        }
    }
    for (name, value) in &top.members {
        if MAPPED.contains(&name.as_ref()) || is_null(value) {
            continue;
        }
        extra(&mut req.extras, name, value);
    }
    Ok((req, model))
}

/// Keeps `value` as the OpenAI extra `name`; a repeated member's last value wins.
fn extra(extras: &mut Vec<Extra>, name: &str, value: &RawValue) {
    let extra = Extra { family: Family::OpenAi, name: name.to_owned(), value: Json(value.to_owned()) };
    match extras.iter_mut().find(|e| e.name == extra.name) {
        Some(existing) => *existing = extra,
        None => extras.push(extra),
    }
}

/// Appends `parts` as a turn of `role`, into the last turn when it has the same role (a model
/// turn is several items: reasoning, text, calls; a user turn, several outputs and messages).
fn push(messages: &mut Vec<Message>, role: Role, parts: Vec<Part>) {
    match messages.last_mut() {
        Some(last) if last.role == role && matches!(role, Role::User | Role::Assistant) => last.parts.extend(parts),
        _ => messages.push(Message { role, parts }),
    }
}

/// One input item.
fn item(
    raw: &RawValue,
    path: &str,
    calls: &mut Vec<(String, String)>,
    stateful: bool,
    messages: &mut Vec<Message>,
) -> Result<(), GatewayError> {
    let obj = Obj::parse(raw, path.to_owned())?;
    let kind = obj.opt_str("type")?;
    match kind.as_deref() {
        // An "easy" message has no type.
        None | Some("message") => message(&obj, messages),
        Some("function_call") | Some("custom_tool_call") => {
            let custom = kind.as_deref() == Some("custom_tool_call");
            let id = obj.req_str("call_id")?;
            let name = obj.req_str("name")?;
            let arguments = obj.req_str(if custom { "input" } else { "arguments" })?;
            calls.push((id.clone(), name.clone()));
            let kind = if custom { ToolKind::Custom } else { ToolKind::Function };
            push(messages, Role::Assistant, vec![Part::ToolCall { id, name, arguments, kind, cache: None }]);
            Ok(())
        }
        Some("function_call_output") | Some("custom_tool_call_output") => {
            let call_id = obj.req_str("call_id")?;
            let name = calls.iter().rev().find(|(id, _)| *id == call_id).map(|(_, name)| name.clone());
            if name.is_none() && !stateful {
                return Err(invalid(
                    &obj.at("call_id"),
                    format!("No tool call found for function call output with call_id {call_id}."),
                    "invalid_value",
                ));
            }
            let output = obj.get("output").ok_or_else(|| missing(&obj.at("output")))?;
            let content = if is_string(output) {
                vec![Part::text(string(output, &obj.at("output"))?)]
            } else if is_array(output) {
                content_parts(output, &obj.at("output"))?
            } else {
                return Err(invalid_type(&obj.at("output"), "a string or an array of content parts"));
            };
            let part = Part::ToolResult { call_id, name, content, is_error: false, cache: None };
            push(messages, Role::User, vec![part]);
            Ok(())
        }
        Some("reasoning") => {
            push(messages, Role::Assistant, vec![reasoning(&obj, raw)?]);
            Ok(())
        }
        Some(other) => {
            // Hosted tool calls and their outputs, item references, compactions...: kept whole for
            // OpenAI, in the turn of whoever produced them.
            let role = if ASSISTANT_ITEMS.contains(&other) { Role::Assistant } else { Role::User };
            push(messages, role, vec![Part::Unknown { family: Family::OpenAi, raw: Json(raw.to_owned()) }]);
            Ok(())
        }
    }
}

/// A `message` item (typed or not).
fn message(obj: &Obj<'_>, messages: &mut Vec<Message>) -> Result<(), GatewayError> {
    let role_name = obj.req_str("role")?;
    let role = match role_name.as_str() {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "system" => Role::System,
        "developer" => Role::Developer,
        other => {
            return Err(invalid_value(&obj.at("role"), other, "'user', 'assistant', 'system', and 'developer'"));
        }
    };
    let content = obj.get("content").ok_or_else(|| missing(&obj.at("content")))?;
    let parts = if is_string(content) {
        vec![Part::text(string(content, &obj.at("content"))?)]
    } else if is_array(content) {
        content_parts(content, &obj.at("content"))?
    } else {
        return Err(invalid_type(&obj.at("content"), "a string or an array of input content"));
    };
    push(messages, role, parts);
    Ok(())
}

/// A content array (a message's, or a tool output's).
fn content_parts(raw: &RawValue, path: &str) -> Result<Vec<Part>, GatewayError> {
    let mut parts = Vec::new();
    for (j, part) in array(raw, path)?.into_iter().enumerate() {
        parts.push(content_part(part, &format!("{path}[{j}]"))?);
    }
    Ok(parts)
}

/// One content part.
fn content_part(raw: &RawValue, path: &str) -> Result<Part, GatewayError> {
    let obj = Obj::parse(raw, path.to_owned())?;
    let kind = obj.req_str("type")?;
    match kind.as_str() {
        "input_text" | "output_text" => Ok(Part::text(obj.req_str("text")?)),
        "refusal" => Ok(Part::text(obj.req_str("refusal")?)),
        "input_image" => {
            let source = match (obj.opt_str("image_url")?, obj.opt_str("file_id")?) {
                (Some(url), _) => url_source(&url, &obj.at("image_url"))?,
                (None, Some(id)) => Source::File { family: Family::OpenAi, id },
                (None, None) => return Err(missing(&obj.at("image_url"))),
            };
            Ok(Part::Image { source, cache: None })
        }
        "input_file" => {
            let title = obj.opt_str("filename")?;
            let source = if let Some(data) = obj.opt_str("file_data")? {
                match data.strip_prefix("data:") {
                    Some(_) => url_source(&data, &obj.at("file_data"))?,
                    None => Source::Base64 { media_type: media_type_of(title.as_deref()).to_owned(), data },
                }
            } else if let Some(id) = obj.opt_str("file_id")? {
                Source::File { family: Family::OpenAi, id }
            } else if let Some(url) = obj.opt_str("file_url")? {
                Source::Url { url, media_type: None }
            } else {
                return Err(missing(&obj.at("file_data")));
            };
            Ok(Part::Document { source, title, context: None, citations: None, cache: None })
        }
        "input_audio" => {
            let audio = obj.get("input_audio").ok_or_else(|| missing(&obj.at("input_audio")))?;
            let audio = Obj::parse(audio, obj.at("input_audio"))?;
            Ok(Part::Audio { data: audio.req_str("data")?, format: audio.req_str("format")? })
        }
        _ => Ok(Part::Unknown { family: Family::OpenAi, raw: Json(raw.to_owned()) }),
    }
}

/// The media type a file name implies (OpenAI accepts `file_data` as bare base64 too).
fn media_type_of(filename: Option<&str>) -> &'static str {
    let lower = filename.unwrap_or("").to_ascii_lowercase();
    if lower.ends_with(".txt") || lower.ends_with(".md") {
        "text/plain"
    } else {
        "application/pdf"
    }
}

/// A `data:<type>;base64,<data>` URL as inline bytes; any other URL as a URL.
fn url_source(url: &str, path: &str) -> Result<Source, GatewayError> {
    let Some(rest) = url.strip_prefix("data:") else {
        return Ok(Source::Url { url: url.to_owned(), media_type: None });
    };
    match rest.split_once(";base64,") {
        Some((media_type, data)) if !media_type.is_empty() => {
            Ok(Source::Base64 { media_type: media_type.to_owned(), data: data.to_owned() })
        }
        _ => Err(invalid(
            path,
            format!("Invalid '{path}': expected a base64-encoded data URL (data:<media type>;base64,<data>)."),
            "invalid_value",
        )),
    }
}

/// A `reasoning` item: its summary (or reasoning text) and `encrypted_content`. A summary makes
/// it [`Part::Reasoning`] signed by the encrypted content; encrypted content alone is
/// [`Part::RedactedReasoning`]; an item with neither only points at OpenAI's stored state and is
/// kept whole for OpenAI.
fn reasoning(obj: &Obj<'_>, raw: &RawValue) -> Result<Part, GatewayError> {
    let encrypted = obj.opt_str("encrypted_content")?.filter(|e| !e.is_empty());
    let texts = |key: &str, kinds: &[&str]| -> Result<Option<Vec<String>>, GatewayError> {
        let Some(list) = obj.opt_array(key)? else { return Ok(None) };
        let mut out = Vec::new();
        for (k, part) in list.into_iter().enumerate() {
            let part = Obj::parse(part, format!("{}[{k}]", obj.at(key)))?;
            let kind = part.req_str("type")?;
            if !kinds.contains(&kind.as_str()) {
                return Err(invalid_value(&part.at("type"), &kind, &format!("'{}'", kinds.join("', '"))));
            }
            out.push(part.req_str("text")?);
        }
        Ok(Some(out))
    };
    let summary = texts("summary", &["summary_text"])?.unwrap_or_default();
    let content = texts("content", &["reasoning_text", "text"])?.unwrap_or_default();
    let text = if summary.is_empty() { content } else { summary };
    // A tag with nothing after it (`gw1.claude.`) signs nothing.
    let signature = encrypted.map(|e| Opaque::from_client_string(&e, Family::OpenAi)).filter(|o| !o.data.is_empty());
    // Parts, not their text, decide: the gateway writes reasoning with one summary part even when
    // its text is empty (Claude may sign empty thinking), and redacted reasoning with none.
    Ok(match (text.is_empty(), signature) {
        (false, signature) => Part::Reasoning { text: text.join("\n\n"), signature, cache: None },
        (true, Some(data)) => Part::RedactedReasoning { data },
        (true, None) => Part::Unknown { family: Family::OpenAi, raw: Json(raw.to_owned()) },
    })
}

/// One entry of `tools`: function and custom tools become [`ToolDef`]s; hosted tools
/// (`web_search`, `file_search`, `code_interpreter`, `image_generation`, `mcp`, `local_shell`...)
/// are extras named by their type, so every other family's encoder drops them by name.
fn tool(raw: &RawValue, i: usize, req: &mut Request) -> Result<(), GatewayError> {
    let tool = Obj::parse(raw, format!("tools[{i}]"))?;
    let kind = tool.req_str("type")?;
    match kind.as_str() {
        "function" => {
            let input_schema = tool.opt_object("parameters")?;
            req.tools.push(ToolDef {
                name: tool.req_str("name")?,
                description: tool.opt_str("description")?.filter(|d| !d.is_empty()),
                input_schema: input_schema.or_else(empty_schema),
                kind: ToolKind::Function,
                strict: tool.opt_bool("strict")?,
                cache: None,
            });
        }
        "custom" => req.tools.push(ToolDef {
            name: tool.req_str("name")?,
            description: tool.opt_str("description")?.filter(|d| !d.is_empty()),
            input_schema: None,
            kind: ToolKind::Custom,
            strict: None,
            cache: None,
        }),
        _ => {
            // Several hosted tools of one type (two MCP servers) travel as one array extra.
            match req.extras.iter_mut().find(|e| e.family == Family::OpenAi && e.name == kind) {
                Some(existing) => {
                    let joined = format!("{},{}]", existing.value.get().trim_end_matches(']'), raw.get());
                    if let Some(json) = Json::from_text(&joined) {
                        existing.value = json;
                    }
                }
                None => {
                    if let Some(value) = Json::from_text(&format!("[{}]", raw.get())) {
                        req.extras.push(Extra { family: Family::OpenAi, name: kind, value });
                    }
                }
            }
        }
    }
    Ok(())
}

/// `{"type":"object","properties":{}}`: a function tool without parameters takes none.
fn empty_schema() -> Option<Json> {
    Json::from_text(r#"{"type":"object","properties":{}}"#)
}

/// `tool_choice`: a mode string or an object naming a tool. Forcing a hosted tool, or a list of
/// allowed tools, is kept as the `tool_choice` extra (the model's choice then is its mode).
fn tool_choice(raw: &RawValue, extras: &mut Vec<Extra>) -> Result<Option<ToolChoice>, GatewayError> {
    let mode = |value: &str, path: &str| match value {
        "auto" => Ok(ToolChoice::Auto),
        "required" => Ok(ToolChoice::Required),
        "none" => Ok(ToolChoice::None),
        other => Err(invalid_value(path, other, "'none', 'auto', and 'required'")),
    };
    if is_string(raw) {
        return mode(&string(raw, "tool_choice")?, "tool_choice").map(Some);
    }
    let obj = Obj::parse(raw, "tool_choice".into())?;
    match obj.req_str("type")?.as_str() {
        "function" | "custom" => Ok(Some(ToolChoice::Tool(obj.req_str("name")?))),
        "allowed_tools" => {
            extra(extras, "tool_choice", raw);
            let choice = obj.opt_str("mode")?.unwrap_or_else(|| "auto".into());
            mode(&choice, "tool_choice.mode").map(Some)
        }
        _ => {
            extra(extras, "tool_choice", raw);
            Ok(None)
        }
    }
}

/// `text.format`: `text` (no constraint), `json_object`, or `json_schema` with its schema.
fn output_format(raw: &RawValue) -> Result<Option<OutputFormat>, GatewayError> {
    let obj = Obj::parse(raw, "text.format".into())?;
    match obj.req_str("type")?.as_str() {
        "text" => Ok(None),
        "json_object" => Ok(Some(OutputFormat::JsonObject)),
        "json_schema" => {
            let schema = obj.opt_object("schema")?.ok_or_else(|| missing("text.format.schema"))?;
            Ok(Some(OutputFormat::JsonSchema { name: obj.opt_str("name")?, schema, strict: obj.opt_bool("strict")? }))
        }
        other => Err(invalid_value("text.format.type", other, "'text', 'json_object', and 'json_schema'")),
    }
}
