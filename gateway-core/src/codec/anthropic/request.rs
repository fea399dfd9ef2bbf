//! Anthropic Messages request → [`Request`]: every member Claude Code and the Anthropic SDKs send
//! is either mapped or kept whole (see the table in [`super`]).

use serde_json::value::RawValue;

use super::wire::{array, invalid, is_array, is_object, Obj};
use crate::conversation::{
    Extra, Family, Json, Message, Opaque, OutputFormat, Part, Reasoning, Request, Role, Source, ToolChoice, ToolDef,
    ToolKind,
};
use crate::error::GatewayError;

/// Top-level members with a place in [`Request`]; every other one becomes an [`Extra`].
const MAPPED: [&str; 15] = [
    "model",
    "messages",
    "system",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "stream",
    "metadata",
    "tools",
    "tool_choice",
    "thinking",
    "output_config",
    "output_format",
];

/// Members of a client tool that [`ToolDef`] holds; a tool with any other member (or a server
/// tool) makes the whole `tools` array travel as the `tools` extra too.
const TOOL_MEMBERS: [&str; 6] = ["type", "name", "description", "input_schema", "strict", "cache_control"];

/// Media types Anthropic accepts for images.
const IMAGE_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/gif", "image/webp"];

/// Decodes a Messages request body into the conversation model and the model name the client
/// asked for. Every client error is a 400 naming the member at fault.
pub fn decode_request(body: &[u8]) -> Result<(Request, String), GatewayError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(GatewayError::invalid("The request body must be a JSON object."));
    }
    let top = Obj::body(body)?;

    let model = match top.opt_str("model")? {
        Some(m) if !m.is_empty() => m,
        _ => return Err(invalid("model", "Field required")),
    };
    let mut req = Request::default();
    match top.opt_u64("max_tokens") {
        Ok(Some(n)) if n >= 1 => req.max_output_tokens = Some(n),
        Ok(None) => return Err(invalid("max_tokens", "Field required")),
        _ => return Err(invalid("max_tokens", "Input should be a positive integer")),
    }
    if let Some(system) = top.get("system") {
        if let Some(message) = instructions(system, "system")? {
            req.messages.push(message);
        }
    }
    let messages = top.opt_array("messages")?.ok_or_else(|| invalid("messages", "Field required"))?;
    if messages.is_empty() {
        return Err(invalid("messages", "at least one message is required"));
    }
    let mut calls: Vec<(String, String)> = Vec::new();
    for (i, raw) in messages.into_iter().enumerate() {
        req.messages.extend(message(raw, i, &mut calls)?);
    }
    req.temperature = top.opt_f64("temperature")?;
    req.top_p = top.opt_f64("top_p")?;
    req.top_k = top.opt_u64("top_k")?;
    if let Some(stops) = top.opt_array("stop_sequences")? {
        for (i, stop) in stops.into_iter().enumerate() {
            req.stop.push(super::wire::string(stop, &format!("stop_sequences[{i}]"))?);
        }
    }
    req.stream = top.opt_bool("stream")?.unwrap_or(false);
    if let Some(metadata) = top.get("metadata") {
        req.user = Obj::parse(metadata, "metadata".into())?.opt_str("user_id")?;
    }
    if let Some(tools_raw) = top.get("tools") {
        if tools(tools_raw, &mut req.tools)? {
            req.extras.push(Extra { family: Family::Claude, name: "tools".into(), value: Json(tools_raw.to_owned()) });
        }
    }
    if let Some(choice) = top.get("tool_choice") {
        let (choice, parallel) = tool_choice(choice)?;
        req.tool_choice = Some(choice);
        req.parallel_tool_calls = parallel;
    }
    if let Some(thinking) = top.get("thinking") {
        req.reasoning = Some(reasoning(thinking)?);
        keep_whole(&top, "thinking", &["type", "budget_tokens"], &mut req.extras)?;
    }
    if let Some(format) = top.get("output_format") {
        req.output_format = Some(output_format(format, "output_format")?);
    }
    if let Some(config) = top.get("output_config") {
        let config = Obj::parse(config, "output_config".into())?;
        req.effort = config.opt_str("effort")?;
        if let Some(format) = config.get("format") {
            req.output_format = Some(output_format(format, "output_config.format")?);
        }
        keep_whole(&top, "output_config", &["effort", "format"], &mut req.extras)?;
    }
    for (name, value) in &top.members {
        if MAPPED.contains(&name.as_ref()) || super::wire::is_null(value) {
            continue;
        }
        let extra = Extra { family: Family::Claude, name: name.to_string(), value: Json((*value).to_owned()) };
        // A repeated member: the last one wins, as it does for the mapped members.
        match req.extras.iter_mut().find(|e| e.name == extra.name) {
            Some(existing) => *existing = extra,
            None => req.extras.push(extra),
        }
    }
    Ok((req, model))
}

/// Keeps the object member `key` whole as an extra when it holds members besides `known`, so an
/// Anthropic-family encoder can send it as it came (see the module's table).
fn keep_whole(top: &Obj<'_>, key: &str, known: &[&str], extras: &mut Vec<Extra>) -> Result<(), GatewayError> {
    let Some(raw) = top.get(key) else { return Ok(()) };
    if !Obj::parse(raw, key.to_owned())?.only(known) {
        extras.push(Extra { family: Family::Claude, name: key.to_owned(), value: Json(raw.to_owned()) });
    }
    Ok(())
}

/// `system`, or a `system` turn's content: a string or text blocks, as one system message.
/// An empty string says nothing and gives no message.
fn instructions(raw: &RawValue, path: &str) -> Result<Option<Message>, GatewayError> {
    if !is_array(raw) {
        let text = super::wire::string(raw, path)
            .map_err(|_| invalid(path, "Input should be a valid string or a list of text blocks"))?;
        return Ok((!text.is_empty()).then(|| Message { role: Role::System, parts: vec![Part::text(text)] }));
    }
    let mut parts = Vec::new();
    for (j, block) in array(raw, path)?.into_iter().enumerate() {
        let block = Obj::parse(block, format!("{path}[{j}]"))?;
        match block.req_str("type")?.as_str() {
            "text" => parts.push(text_part(&block)?),
            _ => return Err(invalid(&block.at("type"), "Input should be 'text'")),
        }
    }
    Ok(Some(Message { role: Role::System, parts }))
}

/// One turn of `messages` (`None` for an empty system turn); `calls` collects (tool_use id,
/// name) so results can name their tool.
fn message(raw: &RawValue, i: usize, calls: &mut Vec<(String, String)>) -> Result<Option<Message>, GatewayError> {
    let obj = Obj::parse(raw, format!("messages[{i}]"))?;
    let role = match obj.req_str("role")?.as_str() {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "system" => Role::System,
        _ => return Err(invalid(&obj.at("role"), "Input should be 'user', 'assistant' or 'system'")),
    };
    let content = obj.get("content").ok_or_else(|| invalid(&obj.at("content"), "Field required"))?;
    if role == Role::System {
        return instructions(content, &obj.at("content"));
    }
    if !is_array(content) {
        let text = super::wire::string(content, &obj.at("content"))
            .map_err(|_| invalid(&obj.at("content"), "Input should be a valid string or list"))?;
        return Ok(Some(Message { role, parts: vec![Part::text(text)] }));
    }
    let path = obj.at("content");
    let mut parts = Vec::new();
    for (j, block) in array(content, &path)?.into_iter().enumerate() {
        parts.push(block_part(block, &format!("{path}[{j}]"), calls, false)?);
    }
    Ok(Some(Message { role, parts }))
}

/// A text block, with its cache breakpoint and citations.
fn text_part(block: &Obj<'_>) -> Result<Part, GatewayError> {
    let citations = match block.get("citations") {
        None => None,
        Some(raw) if is_array(raw) => Some(Json(raw.to_owned())),
        Some(_) => return Err(invalid(&block.at("citations"), "Input should be a valid list")),
    };
    Ok(Part::Text { text: block.req_str("text")?, cache: block.cache()?, citations })
}

/// One content block. `in_result` is set inside a tool result, where only content blocks (text,
/// images, documents and Anthropic's own kinds) may appear.
fn block_part(
    raw: &RawValue,
    path: &str,
    calls: &mut Vec<(String, String)>,
    in_result: bool,
) -> Result<Part, GatewayError> {
    let block = Obj::parse(raw, path.to_owned())?;
    let kind = block.req_str("type")?;
    let nested = |what: &str| invalid(&block.at("type"), &format!("a {what} block cannot be inside a tool_result"));
    match kind.as_str() {
        "text" => text_part(&block),
        "image" => Ok(Part::Image { source: image_source(&block)?, cache: block.cache()? }),
        "document" => document(&block, raw),
        "tool_use" if in_result => Err(nested("tool_use")),
        "tool_use" => {
            let id = block.req_str("id")?;
            let name = block.req_str("name")?;
            let arguments = match block.get("input") {
                None => "{}".to_owned(),
                Some(input) if is_object(input) => input.get().to_owned(),
                Some(_) => return Err(invalid(&block.at("input"), "Input should be a valid dictionary")),
            };
            calls.push((id.clone(), name.clone()));
            Ok(Part::ToolCall { id, name, arguments, kind: ToolKind::Function, cache: block.cache()? })
        }
        "tool_result" if in_result => Err(nested("tool_result")),
        "tool_result" => {
            let call_id = block.req_str("tool_use_id")?;
            let name = calls.iter().rev().find(|(id, _)| *id == call_id).map(|(_, name)| name.clone());
            let content = match block.get("content") {
                None => Vec::new(),
                Some(c) if is_array(c) => {
                    let mut parts = Vec::new();
                    for (k, item) in array(c, &block.at("content"))?.into_iter().enumerate() {
                        parts.push(block_part(item, &format!("{}[{k}]", block.at("content")), calls, true)?);
                    }
                    parts
                }
                Some(c) => vec![Part::text(
                    super::wire::string(c, &block.at("content"))
                        .map_err(|_| invalid(&block.at("content"), "Input should be a valid string or list"))?,
                )],
            };
            let is_error = block.opt_bool("is_error")?.unwrap_or(false);
            Ok(Part::ToolResult { call_id, name, content, is_error, cache: block.cache()? })
        }
        "thinking" if in_result => Err(nested("thinking")),
        "thinking" => {
            let text = block.req_str("thinking")?;
            // Our own answers carry `""` when the provider signed nothing: that is no signature.
            let signature = block
                .opt_str("signature")?
                .filter(|s| !s.is_empty())
                .map(|s| Opaque::from_client_string(&s, Family::Claude));
            Ok(Part::Reasoning { text, signature, cache: block.cache()? })
        }
        "redacted_thinking" if in_result => Err(nested("redacted_thinking")),
        "redacted_thinking" => {
            let data = block.req_str("data")?;
            Ok(Part::RedactedReasoning { data: Opaque::from_client_string(&data, Family::Claude) })
        }
        // Server tool uses and results, search results, tool references, containers, and
        // whatever Anthropic adds next: kept whole for Claude.
        _ => Ok(Part::Unknown { family: Family::Claude, raw: Json(raw.to_owned()) }),
    }
}

/// An image block's `source`.
fn image_source(block: &Obj<'_>) -> Result<Source, GatewayError> {
    let raw = block.get("source").ok_or_else(|| invalid(&block.at("source"), "Field required"))?;
    let source = Obj::parse(raw, block.at("source"))?;
    match source.req_str("type")?.as_str() {
        "base64" => {
            let media_type = source.req_str("media_type")?;
            if !IMAGE_TYPES.contains(&media_type.as_str()) {
                return Err(invalid(
                    &source.at("media_type"),
                    "Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'",
                ));
            }
            Ok(Source::Base64 { media_type, data: source.req_str("data")? })
        }
        "url" => Ok(Source::Url { url: source.req_str("url")?, media_type: None }),
        "file" => Ok(Source::File { family: Family::Claude, id: source.req_str("file_id")? }),
        _ => Err(invalid(&source.at("type"), "Input should be 'base64', 'url' or 'file'")),
    }
}

/// A document block: a PDF (base64 or URL), plain text, or a Files API id. Documents built from
/// content blocks (`source.type: "content"`) have no [`Source`] and are kept whole for Claude.
fn document(block: &Obj<'_>, raw: &RawValue) -> Result<Part, GatewayError> {
    let source = block.get("source").ok_or_else(|| invalid(&block.at("source"), "Field required"))?;
    let source_obj = Obj::parse(source, block.at("source"))?;
    let source = match source_obj.req_str("type")?.as_str() {
        "base64" => {
            let media_type = source_obj.req_str("media_type")?;
            if media_type != "application/pdf" {
                return Err(invalid(&source_obj.at("media_type"), "Input should be 'application/pdf'"));
            }
            Source::Base64 { media_type, data: source_obj.req_str("data")? }
        }
        "text" => {
            let media_type = source_obj.opt_str("media_type")?.unwrap_or_else(|| "text/plain".to_owned());
            if media_type != "text/plain" {
                return Err(invalid(&source_obj.at("media_type"), "Input should be 'text/plain'"));
            }
            Source::Text { media_type, data: source_obj.req_str("data")? }
        }
        "url" => Source::Url { url: source_obj.req_str("url")?, media_type: None },
        "file" => Source::File { family: Family::Claude, id: source_obj.req_str("file_id")? },
        "content" => return Ok(Part::Unknown { family: Family::Claude, raw: Json(raw.to_owned()) }),
        _ => {
            return Err(invalid(&source_obj.at("type"), "Input should be 'base64', 'text', 'url', 'file' or 'content'"))
        }
    };
    let citations = match block.get("citations") {
        None => None,
        Some(c) => Obj::parse(c, block.at("citations"))?.opt_bool("enabled")?,
    };
    Ok(Part::Document {
        source,
        title: block.opt_str("title")?,
        context: block.opt_str("context")?,
        citations,
        cache: block.cache()?,
    })
}

/// `tools`: client tools into `out`; `true` when the array holds something [`ToolDef`] cannot
/// say (a server or versioned tool, or a member such as `defer_loading`), so the whole array
/// must also travel as the `tools` extra.
fn tools(raw: &RawValue, out: &mut Vec<ToolDef>) -> Result<bool, GatewayError> {
    let mut beyond = false;
    for (i, tool) in array(raw, "tools")?.into_iter().enumerate() {
        let tool = Obj::parse(tool, format!("tools[{i}]"))?;
        match tool.opt_str("type")?.as_deref() {
            None | Some("custom") => {}
            Some(_) => {
                tool.req_str("name")?;
                beyond = true;
                continue;
            }
        }
        beyond |= !tool.only(&TOOL_MEMBERS);
        let input_schema =
            tool.opt_object("input_schema")?.ok_or_else(|| invalid(&tool.at("input_schema"), "Field required"))?;
        out.push(ToolDef {
            name: tool.req_str("name")?,
            description: tool.opt_str("description")?,
            input_schema: Some(input_schema),
            kind: ToolKind::Function,
            strict: tool.opt_bool("strict")?,
            cache: tool.cache()?,
        });
    }
    Ok(beyond)
}

/// `tool_choice` and the parallelism it allows.
fn tool_choice(raw: &RawValue) -> Result<(ToolChoice, Option<bool>), GatewayError> {
    let obj = Obj::parse(raw, "tool_choice".into())?;
    let parallel = obj.opt_bool("disable_parallel_tool_use")?.map(|disabled| !disabled);
    let choice = match obj.req_str("type")?.as_str() {
        "auto" => ToolChoice::Auto,
        "any" => ToolChoice::Required,
        "none" => ToolChoice::None,
        "tool" => ToolChoice::Tool(obj.req_str("name")?),
        _ => return Err(invalid("tool_choice.type", "Input should be 'auto', 'any', 'tool' or 'none'")),
    };
    Ok((choice, parallel))
}

/// `thinking`: `enabled` with a budget, `adaptive`, or `disabled`.
fn reasoning(raw: &RawValue) -> Result<Reasoning, GatewayError> {
    let obj = Obj::parse(raw, "thinking".into())?;
    match obj.req_str("type")?.as_str() {
        "enabled" => match obj.opt_u64("budget_tokens")? {
            Some(budget) => Ok(Reasoning::Budget(budget)),
            None => Err(invalid("thinking.budget_tokens", "Field required")),
        },
        "adaptive" => Ok(Reasoning::Adaptive),
        "disabled" => Ok(Reasoning::Disabled),
        _ => Err(invalid("thinking.type", "Input should be 'enabled', 'adaptive' or 'disabled'")),
    }
}

/// `output_format` / `output_config.format`: `{"type":"json_schema","schema":{...}}`.
fn output_format(raw: &RawValue, path: &str) -> Result<OutputFormat, GatewayError> {
    let obj = Obj::parse(raw, path.to_owned())?;
    match obj.req_str("type")?.as_str() {
        "json_schema" => {
            let schema = obj.opt_object("schema")?.ok_or_else(|| invalid(&obj.at("schema"), "Field required"))?;
            Ok(OutputFormat::JsonSchema { name: None, schema, strict: None })
        }
        _ => Err(invalid(&obj.at("type"), "Input should be 'json_schema'")),
    }
}
