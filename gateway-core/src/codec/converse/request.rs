//! Conversation [`Request`] → Converse request body. Texts, schemas and tool inputs are borrowed
//! from the request; see the module documentation of [`super`] for the mapping table.

use std::borrow::Cow;

use serde_json::value::RawValue;

use super::wire::{
    AdditionalFields, Block, Body, Bytes, CachePoint, Document, Empty, Image, InferenceConfig, InputSchema, Message,
    NamedTool, ReasoningContent, ReasoningText, Role as WireRole, Thinking, Tool, ToolChoice as WireToolChoice,
    ToolConfig, ToolResult, ToolResultContent, ToolSpec, ToolUse,
};
use super::{is_claude, MAX_CACHE_POINTS};
use crate::codec::Encoded;
use crate::conversation::{
    Cache, Extra, Family, Part, Reasoning, Request, Role, Source, ToolChoice, ToolDef, ToolKind,
};
use crate::error::{ErrorKind, GatewayError};

/// Bedrock rejects a tool without an object schema: this one is sent instead.
const EMPTY_OBJECT_SCHEMA: &str = r#"{"type":"object","properties":{}}"#;
const EMPTY_OBJECT: &str = "{}";
/// Anthropic's smallest thinking budget; an effort level whose budget does not fit under
/// `maxTokens` turns thinking off rather than failing.
const MIN_THINKING_BUDGET: u64 = 1024;
/// Converse takes `maxTokens` as a 32-bit integer.
const MAX_TOKENS_LIMIT: u64 = i32::MAX as u64;
/// Longest document name the gateway derives (Converse allows 200 characters).
const MAX_DOCUMENT_NAME: usize = 100;

/// Encodes `req` as a Converse (or ConverseStream, when `req.stream`) call to `model`.
/// `default_max_tokens` fills `maxTokens` when the client gave no limit.
pub fn encode_request(req: &Request, model: &str, default_max_tokens: u64) -> Result<Encoded, GatewayError> {
    let mut dropped = Vec::new();
    let body = build(req, model, default_max_tokens, &mut dropped)?;
    let mut out = Vec::with_capacity(256);
    serde_json::to_writer(&mut out, &body)
        .map_err(|e| GatewayError::new(ErrorKind::Internal, format!("could not encode the provider request: {e}")))?;
    Ok(Encoded {
        path: crate::translate::openai_to_bedrock::converse_path(model, req.stream)?,
        body: out,
        headers: vec![("content-type", "application/json".to_owned())],
        dropped,
    })
}

/// Records a dropped field name once.
fn drop_name(dropped: &mut Vec<&'static str>, name: &'static str) {
    if !dropped.contains(&name) {
        dropped.push(name);
    }
}

/// The Converse body for `req`; what Converse cannot take is named in `dropped`.
pub(crate) fn build<'a>(
    req: &'a Request,
    model: &str,
    default_max_tokens: u64,
    dropped: &mut Vec<&'static str>,
) -> Result<Body<'a>, GatewayError> {
    let claude = is_claude(model);
    let mut b = Builder {
        claude,
        family: if claude { Family::Claude } else { Family::Converse },
        system: Vec::new(),
        messages: Vec::new(),
        documents: Vec::new(),
        dropped,
    };
    let mut leading = true;
    for (i, message) in req.messages.iter().enumerate() {
        match message.role {
            Role::System | Role::Developer if leading => b.system_message(&message.parts, i)?,
            Role::System | Role::Developer => b.reminder(&message.parts, i)?,
            Role::User => {
                leading = false;
                b.parts(&message.parts, i, WireRole::User)?;
            }
            Role::Assistant => {
                leading = false;
                b.parts(&message.parts, i, WireRole::Assistant)?;
            }
        }
    }
    for message in &mut b.messages {
        if message.role == WireRole::User {
            tool_results_first(&mut message.content);
        }
    }
    if let Some(format) = &req.output_format {
        b.system.push(Block::Text(Cow::Owned(format.instruction())));
    }
    let Builder { mut system, mut messages, dropped, .. } = b;

    let mut tool_config = tool_config(req, &messages)?;
    if req.parallel_tool_calls == Some(false) {
        drop_name(dropped, "parallel_tool_calls");
    }
    if req.tools.iter().any(|t| t.strict == Some(true)) {
        drop_name(dropped, "strict");
    }

    let max_tokens = req.max_output_tokens.unwrap_or(default_max_tokens).min(MAX_TOKENS_LIMIT);
    let thinking = thinking(req, claude, max_tokens, dropped)?;
    let top_k = match req.top_k {
        Some(k) if claude => Some(k),
        Some(_) => {
            drop_name(dropped, "top_k");
            None
        }
        None => None,
    };
    if req.effort.is_some() {
        drop_name(dropped, "effort");
    }
    for extra in &req.extras {
        drop_name(dropped, extra_name(extra));
    }

    let removed = cap_cache_points(tool_config.as_mut().map(|c| &mut c.tools), &mut system, &mut messages);
    if removed {
        drop_name(dropped, "cache_control");
    }

    Ok(Body {
        messages,
        system,
        inference_config: InferenceConfig {
            max_tokens,
            temperature: req.temperature,
            top_p: req.top_p,
            stop_sequences: req.stop.iter().map(String::as_str).collect(),
        },
        tool_config,
        additional_model_request_fields: (thinking.is_some() || top_k.is_some())
            .then_some(AdditionalFields { thinking, top_k }),
    })
}

/// The static name reported for a dropped request extra.
fn extra_name(extra: &Extra) -> &'static str {
    match extra.name.as_str() {
        "context_management" => "context_management",
        "container" => "container",
        "mcp_servers" => "mcp_servers",
        "service_tier" => "service_tier",
        "metadata" => "metadata",
        "output_config" => "output_config",
        "inference_geo" => "inference_geo",
        "tools" => "tools",
        "betas" | "anthropic_beta" => "anthropic_beta",
        other => crate::codec::dropped_name(other),
    }
}

/// Builds system blocks and turns in client order.
struct Builder<'a, 'd> {
    claude: bool,
    /// The family whose reasoning state this model accepts.
    family: Family,
    system: Vec<Block<'a>>,
    messages: Vec<Message<'a>>,
    /// Document names given so far (Converse wants them unique within a request).
    documents: Vec<String>,
    dropped: &'d mut Vec<&'static str>,
}

impl<'a> Builder<'a, '_> {
    /// Leading instructions: Converse's `system` takes only text and cache points.
    fn system_message(&mut self, parts: &'a [Part], i: usize) -> Result<(), GatewayError> {
        for (j, part) in parts.iter().enumerate() {
            match part {
                Part::Text { text, cache, .. } => {
                    if !text.is_empty() {
                        self.system.push(Block::Text(Cow::Borrowed(text)));
                    }
                    if cache.is_some() && self.system.last().is_some_and(|b| !b.is_cache_point()) {
                        self.system.push(Block::CachePoint(CachePoint::DEFAULT));
                    }
                }
                Part::Unknown { .. } => drop_name(self.dropped, "unknown_blocks"),
                _ => {
                    return Err(GatewayError::invalid("System messages may only contain text for this model.")
                        .with_param(format!("messages[{i}].content[{j}]")))
                }
            }
        }
        Ok(())
    }

    /// An instruction in the middle of the conversation: a `<system-reminder>` text in the user
    /// turn where it stands (see the module documentation for why).
    fn reminder(&mut self, parts: &'a [Part], i: usize) -> Result<(), GatewayError> {
        for (j, part) in parts.iter().enumerate() {
            match part {
                Part::Text { text, cache, .. } => {
                    if !text.is_empty() {
                        let wrapped = format!("<system-reminder>\n{text}\n</system-reminder>");
                        self.push(WireRole::User, Block::Text(Cow::Owned(wrapped)));
                    }
                    self.cache(WireRole::User, cache);
                }
                Part::Unknown { .. } => drop_name(self.dropped, "unknown_blocks"),
                _ => {
                    return Err(GatewayError::invalid("System messages may only contain text for this model.")
                        .with_param(format!("messages[{i}].content[{j}]")))
                }
            }
        }
        Ok(())
    }

    /// Appends `block` to the conversation, merging into the previous turn of the same role
    /// (Converse requires alternation).
    fn push(&mut self, role: WireRole, block: Block<'a>) {
        match self.messages.last_mut() {
            Some(last) if last.role == role => last.content.push(block),
            _ => self.messages.push(Message { role, content: vec![block] }),
        }
    }

    /// A cache point after the block just pushed for `role`, if there is one to mark.
    fn cache(&mut self, role: WireRole, cache: &Option<Cache>) {
        if cache.is_none() {
            return;
        }
        if let Some(last) = self.messages.last_mut() {
            if last.role == role && last.content.last().is_some_and(|b| !b.is_cache_point()) {
                last.content.push(Block::CachePoint(CachePoint::DEFAULT));
            }
        }
    }

    fn parts(&mut self, parts: &'a [Part], i: usize, role: WireRole) -> Result<(), GatewayError> {
        for (j, part) in parts.iter().enumerate() {
            let param = || format!("messages[{i}].content[{j}]");
            match part {
                Part::Text { text, cache, .. } => {
                    // Converse rejects blank text blocks.
                    if !text.is_empty() {
                        self.push(role, Block::Text(Cow::Borrowed(text)));
                    }
                    self.cache(role, cache);
                }
                Part::Image { source, cache } => {
                    self.push(role, Block::Image(image(source, &param)?));
                    self.cache(role, cache);
                }
                Part::Document { source, title, context, citations, cache } => {
                    if context.is_some() {
                        drop_name(self.dropped, "document_context");
                    }
                    if citations == &Some(true) {
                        drop_name(self.dropped, "citations");
                    }
                    let doc = self.document(source, title.as_deref(), &param)?;
                    self.push(role, Block::Document(doc));
                    self.cache(role, cache);
                }
                Part::Audio { .. } => {
                    return Err(GatewayError::invalid("Audio input is not supported by this model.").with_param(param()))
                }
                Part::ToolCall { id, name, arguments, kind, cache } => {
                    let input = tool_input(arguments, *kind, &param)?;
                    self.push(WireRole::Assistant, Block::ToolUse(ToolUse { tool_use_id: id, name, input }));
                    self.cache(WireRole::Assistant, cache);
                }
                Part::ToolResult { call_id, content, is_error, cache, .. } => {
                    let result = self.tool_result(call_id, content, *is_error, &param)?;
                    self.push(WireRole::User, Block::ToolResult(result));
                    self.cache(WireRole::User, cache);
                }
                Part::Reasoning { text, signature, cache } => {
                    // Reasoning is replayed only to the family that signed it; unsigned or
                    // foreign reasoning would be rejected (or read as text), so it is left out.
                    if let Some(sig) = signature.as_ref().filter(|s| s.family == self.family) {
                        let block = ReasoningText { text, signature: &sig.data };
                        self.push(role, Block::ReasoningContent(ReasoningContent::ReasoningText(block)));
                        self.cache(role, cache);
                    }
                }
                Part::RedactedReasoning { data } => {
                    if data.family == self.family {
                        self.push(role, Block::ReasoningContent(ReasoningContent::RedactedContent(&data.data)));
                    }
                }
                Part::Unknown { .. } => drop_name(self.dropped, "unknown_blocks"),
            }
        }
        Ok(())
    }

    fn tool_result(
        &mut self,
        call_id: &'a str,
        content: &'a [Part],
        is_error: bool,
        param: &dyn Fn() -> String,
    ) -> Result<ToolResult<'a>, GatewayError> {
        let mut out = Vec::with_capacity(content.len().max(1));
        for part in content {
            match part {
                Part::Text { text, .. } => out.push(ToolResultContent::Text(text)),
                Part::Image { source, .. } => out.push(ToolResultContent::Image(image(source, param)?)),
                Part::Document { source, title, .. } => {
                    out.push(ToolResultContent::Document(self.document(source, title.as_deref(), param)?))
                }
                Part::Unknown { .. } => drop_name(self.dropped, "unknown_blocks"),
                _ => {
                    return Err(GatewayError::invalid(
                        "Tool results may only contain text, images and documents for this model.",
                    )
                    .with_param(param()))
                }
            }
        }
        // Converse needs at least one content member; an empty result is still a result.
        if out.is_empty() {
            out.push(ToolResultContent::Text(""));
        }
        // `status` is a Claude-only member of Converse's toolResult.
        let status = match (is_error, self.claude) {
            (true, true) => Some("error"),
            (true, false) => {
                drop_name(self.dropped, "is_error");
                None
            }
            (false, _) => None,
        };
        Ok(ToolResult { tool_use_id: call_id, content: out, status })
    }

    fn document(
        &mut self,
        source: &'a Source,
        title: Option<&str>,
        param: &dyn Fn() -> String,
    ) -> Result<Document<'a>, GatewayError> {
        let (format, bytes) = match source {
            Source::Base64 { media_type, data } => (document_format(media_type, param)?, Cow::Borrowed(data.as_str())),
            Source::Text { media_type, data } => {
                (document_format(media_type, param).unwrap_or("txt"), Cow::Owned(base64_encode(data.as_bytes())))
            }
            Source::Url { .. } => {
                return Err(GatewayError::invalid(
                    "This model takes documents only as inline data (base64 or text); document URLs are not fetched.",
                )
                .with_param(param()))
            }
            Source::File { .. } => {
                return Err(GatewayError::invalid(
                    "File ids are only valid at the provider that issued them; send the document inline.",
                )
                .with_param(param()))
            }
        };
        let name = unique_name(document_name(title), &mut self.documents);
        Ok(Document { format, name, source: Bytes { bytes } })
    }
}

/// Converse document formats by media type.
fn document_format(media_type: &str, param: &dyn Fn() -> String) -> Result<&'static str, GatewayError> {
    let lower = media_type.to_ascii_lowercase();
    let essence = lower.split(';').next().unwrap_or_default().trim();
    Ok(match essence {
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        "text/markdown" | "text/x-markdown" => "md",
        "text/html" => "html",
        "text/csv" => "csv",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        _ => {
            return Err(GatewayError::invalid(format!(
                "Documents of type '{media_type}' are not supported by this model (pdf, txt, md, html, csv, doc, docx, xls, xlsx)."
            ))
            .with_param(param()))
        }
    })
}

/// A document name Converse accepts (letters, digits, single spaces, hyphens, parentheses,
/// square brackets), derived from the title; other characters become spaces.
pub(crate) fn document_name(title: Option<&str>) -> String {
    let mut name = String::new();
    for c in title.unwrap_or_default().chars() {
        let keep = c.is_ascii_alphanumeric() || matches!(c, '-' | '(' | ')' | '[' | ']');
        if keep {
            name.push(c);
        } else if !name.is_empty() && !name.ends_with(' ') {
            name.push(' ');
        }
        if name.len() >= MAX_DOCUMENT_NAME {
            break;
        }
    }
    name.truncate(name.trim_end().len());
    name
}

/// `name`, or `Document N` when empty, made unique among `taken`.
fn unique_name(name: String, taken: &mut Vec<String>) -> String {
    let base = if name.is_empty() { format!("Document {}", taken.len() + 1) } else { name };
    let mut candidate = base.clone();
    let mut n = 2;
    while taken.contains(&candidate) {
        candidate = format!("{base} ({n})");
        n += 1;
    }
    taken.push(candidate.clone());
    candidate
}

/// Converse takes images only as bytes of png, jpeg, gif or webp.
fn image<'a>(source: &'a Source, param: &dyn Fn() -> String) -> Result<Image<'a>, GatewayError> {
    match source {
        Source::Base64 { media_type, data } => {
            let format = match media_type.to_ascii_lowercase().as_str() {
                "image/png" => "png",
                "image/jpeg" | "image/jpg" => "jpeg",
                "image/gif" => "gif",
                "image/webp" => "webp",
                _ => return Err(GatewayError::invalid("Images must be png, jpeg, gif or webp.").with_param(param())),
            };
            Ok(Image { format, source: Bytes { bytes: Cow::Borrowed(data) } })
        }
        Source::Url { .. } => Err(GatewayError::invalid(
            "This model takes images only as base64 data; Bedrock cannot fetch image URLs and the gateway does not fetch them either.",
        )
        .with_param(param())),
        Source::File { .. } => Err(GatewayError::invalid(
            "File ids are only valid at the provider that issued them; send the image as base64 data.",
        )
        .with_param(param())),
        Source::Text { .. } => Err(GatewayError::invalid("An image needs base64 data.").with_param(param())),
    }
}

/// A constant JSON text as a `RawValue`; the constants are valid JSON, so this never fails.
fn static_raw(json: &'static str) -> Result<&'static RawValue, GatewayError> {
    serde_json::from_str(json).map_err(|_| GatewayError::new(ErrorKind::Internal, "invalid built-in JSON constant"))
}

/// A tool call's arguments as the JSON object Converse wants (`""` read as `{}`).
fn tool_input<'a>(
    arguments: &'a str,
    kind: ToolKind,
    param: &dyn Fn() -> String,
) -> Result<&'a RawValue, GatewayError> {
    if kind == ToolKind::Custom {
        return Err(
            GatewayError::invalid("Free-form (custom) tool calls are not supported by this model.").with_param(param())
        );
    }
    if arguments.trim().is_empty() {
        return static_raw(EMPTY_OBJECT);
    }
    let raw: &'a RawValue = serde_json::from_str(arguments).map_err(|e| {
        GatewayError::invalid(format!("Tool call arguments are not valid JSON: {e}")).with_param(param())
    })?;
    if !raw.get().trim_start().starts_with('{') {
        return Err(GatewayError::invalid("Tool call arguments must be a JSON object.").with_param(param()));
    }
    Ok(raw)
}

/// Moves tool results (with the cache points after them) to the front of a user turn, keeping
/// order otherwise: Claude requires a turn answering tool calls to begin with their results,
/// and merged turns or mid-conversation instructions may have put text first.
fn tool_results_first(content: &mut Vec<Block<'_>>) {
    let first_text = content.iter().position(|b| !matches!(b, Block::ToolResult(_) | Block::CachePoint(_)));
    let Some(first_text) = first_text else { return };
    if !content.iter().skip(first_text).any(|b| matches!(b, Block::ToolResult(_))) {
        return;
    }
    let mut results = Vec::with_capacity(content.len());
    let mut others = Vec::with_capacity(content.len());
    let mut in_result = false;
    for block in content.drain(..) {
        in_result = match &block {
            Block::ToolResult(_) => true,
            Block::CachePoint(_) => in_result,
            _ => false,
        };
        if in_result {
            results.push(block);
        } else {
            others.push(block);
        }
    }
    results.append(&mut others);
    *content = results;
}

/// `null`, `{}` or `{ }`.
fn is_empty_object_or_null(raw: &RawValue) -> bool {
    let s = raw.get().trim();
    s == "null" || s.strip_prefix('{').and_then(|s| s.strip_suffix('}')).is_some_and(|inner| inner.trim().is_empty())
}

fn tool_spec<'a>(tool: &'a ToolDef, i: usize) -> Result<ToolSpec<'a>, GatewayError> {
    if tool.kind == ToolKind::Custom {
        return Err(GatewayError::invalid("Free-form (custom) tools are not supported by this model.")
            .with_param(format!("tools[{i}]")));
    }
    let json = match &tool.input_schema {
        None => static_raw(EMPTY_OBJECT_SCHEMA)?,
        Some(schema) if is_empty_object_or_null(&schema.0) => static_raw(EMPTY_OBJECT_SCHEMA)?,
        Some(schema) if schema.get().trim_start().starts_with('{') => &schema.0,
        Some(_) => {
            return Err(GatewayError::invalid("A tool's input schema must be a JSON schema object.")
                .with_param(format!("tools[{i}].input_schema")))
        }
    };
    let description = tool.description.as_deref().filter(|d| !d.is_empty());
    Ok(ToolSpec { name: &tool.name, description, input_schema: InputSchema { json } })
}

/// `toolConfig` from the tools and the choice.
///
/// Converse refuses toolUse/toolResult blocks in the history unless `toolConfig` is present:
/// with no tools declared, every tool named in the history is declared with an empty object
/// schema. `none` has no Converse equivalent: the tools are left out when the history allows
/// it, else kept without a choice (the model may still call one).
fn tool_config<'a>(req: &'a Request, messages: &[Message<'a>]) -> Result<Option<ToolConfig<'a>>, GatewayError> {
    let history_uses_tools =
        messages.iter().flat_map(|m| &m.content).any(|b| matches!(b, Block::ToolUse(_) | Block::ToolResult(_)));
    let none = req.tool_choice == Some(ToolChoice::None);
    if (req.tools.is_empty() || none) && !history_uses_tools {
        return Ok(None);
    }
    let mut tools = Vec::with_capacity(req.tools.len() + 1);
    for (i, tool) in req.tools.iter().enumerate() {
        tools.push(Tool::ToolSpec(tool_spec(tool, i)?));
        if tool.cache.is_some() {
            tools.push(Tool::CachePoint(CachePoint::DEFAULT));
        }
    }
    if tools.is_empty() {
        for block in messages.iter().flat_map(|m| &m.content) {
            if let Block::ToolUse(u) = block {
                let known = tools.iter().any(|t| matches!(t, Tool::ToolSpec(s) if s.name == u.name));
                if !known {
                    let json = static_raw(EMPTY_OBJECT_SCHEMA)?;
                    tools.push(Tool::ToolSpec(ToolSpec {
                        name: u.name,
                        description: None,
                        input_schema: InputSchema { json },
                    }));
                }
            }
        }
        if tools.is_empty() {
            // Only tool results, no calls: nothing to declare; Bedrock's 400 is relayed.
            return Ok(None);
        }
    }
    let tool_choice = match &req.tool_choice {
        _ if none => None,
        None => None,
        Some(ToolChoice::Auto) => Some(WireToolChoice::Auto(Empty {})),
        Some(ToolChoice::Required) => Some(WireToolChoice::Any(Empty {})),
        Some(ToolChoice::Tool(name)) => Some(WireToolChoice::Tool(NamedTool { name })),
        Some(ToolChoice::None) => None,
    };
    Ok(Some(ToolConfig { tools, tool_choice }))
}

/// Claude's `thinking` for the request, or `None`. Effort levels use Anthropic's budget table
/// (low 1024, medium 4096, high 16384, xhigh 32768), capped under `maxTokens`.
fn thinking(
    req: &Request,
    claude: bool,
    max_tokens: u64,
    dropped: &mut Vec<&'static str>,
) -> Result<Option<Thinking>, GatewayError> {
    let wanted = match &req.reasoning {
        None | Some(Reasoning::Disabled) => return Ok(None),
        Some(Reasoning::Budget(n)) => Thinking { kind: "enabled", budget_tokens: Some(*n) },
        Some(Reasoning::Adaptive) => Thinking { kind: "adaptive", budget_tokens: None },
        Some(Reasoning::Effort(level)) => {
            let budget: u64 = match level.as_str() {
                "none" | "minimal" => return Ok(None),
                "low" => 1024,
                "medium" => 4096,
                "high" => 16384,
                "xhigh" | "max" => 32768,
                _ => {
                    return Err(GatewayError::invalid(
                        "The reasoning effort must be one of none, minimal, low, medium, high, xhigh.",
                    )
                    .with_param("reasoning_effort"))
                }
            };
            let budget = budget.min(max_tokens.saturating_sub(1));
            if budget < MIN_THINKING_BUDGET {
                drop_name(dropped, "thinking");
                return Ok(None);
            }
            Thinking { kind: "enabled", budget_tokens: Some(budget) }
        }
    };
    if !claude {
        drop_name(dropped, "thinking");
        return Ok(None);
    }
    // Claude rejects thinking when the last tool-calling turn carries no signed thinking of its
    // own (a history written by another model or a client that dropped it).
    if req.last_tool_turn_has_signed_reasoning(Family::Claude) == Some(false) {
        drop_name(dropped, "thinking");
        return Ok(None);
    }
    Ok(Some(wanted))
}

/// Keeps the last [`MAX_CACHE_POINTS`] cache points in prompt order (tools, system, messages);
/// `true` when some were removed.
fn cap_cache_points(
    tools: Option<&mut Vec<Tool<'_>>>,
    system: &mut Vec<Block<'_>>,
    messages: &mut [Message<'_>],
) -> bool {
    let in_tools = tools.as_ref().map_or(0, |t| t.iter().filter(|t| matches!(t, Tool::CachePoint(_))).count());
    let in_system = system.iter().filter(|b| b.is_cache_point()).count();
    let in_messages: usize = messages.iter().map(|m| m.content.iter().filter(|b| b.is_cache_point()).count()).sum();
    let total = in_tools + in_system + in_messages;
    if total <= MAX_CACHE_POINTS {
        return false;
    }
    let mut excess = total - MAX_CACHE_POINTS;
    if let Some(tools) = tools {
        tools.retain(|t| {
            let remove = excess > 0 && matches!(t, Tool::CachePoint(_));
            excess -= usize::from(remove);
            !remove
        });
    }
    let mut remove_from = |blocks: &mut Vec<Block<'_>>| {
        blocks.retain(|b| {
            let remove = excess > 0 && b.is_cache_point();
            excess -= usize::from(remove);
            !remove
        });
    };
    remove_from(system);
    for message in messages.iter_mut() {
        remove_from(&mut message.content);
    }
    true
}

/// Standard base64 with padding (text documents travel as bytes).
fn base64_encode(input: &[u8]) -> String {
    crate::b64::encode(input)
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
