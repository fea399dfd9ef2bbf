//! Anthropic Messages as a *provider* API: [`encode_request`] writes a conversation
//! [`Request`] as a Messages body, [`AnthropicDecoder`] reads Messages answers (JSON and SSE)
//! into the model. Used for clients of another API (the Responses API) on Anthropic and on
//! Claude through Bedrock InvokeModel; Anthropic clients on Anthropic stay the passthrough.
//!
//! | conversation model | Messages request |
//! |---|---|
//! | leading `System`/`Developer` text | `system` text blocks (`cache_control` kept) |
//! | later `System`/`Developer` text | a `<system-reminder>` text block in the user turn where it stood |
//! | consecutive turns of one role | one turn (Claude requires alternation); tool results first in their user turn |
//! | `Text`, `Image` (base64, URL), `Document` (base64 PDF, text, URL; `title`, `context`, `citations`) | the same blocks; file ids of Claude kept, of another family → 400 |
//! | `ToolCall` (function) | `tool_use`, `input` = the arguments' JSON object (`""` = `{}`) |
//! | `ToolCall` (custom, free-form) | `tool_use` with `input: {"input": "<raw text>"}` (the custom tool is a function tool taking one string) |
//! | `ToolResult` | `tool_result` (`is_error` kept; text, images, documents) |
//! | `Reasoning` signed by Claude / `RedactedReasoning` of Claude | `thinking` with its signature / `redacted_thinking` |
//! | reasoning of another family or unsigned | left out, `reasoning` named in `dropped` |
//! | `Unknown{Claude}` | the block verbatim; other families' unknown parts dropped (`unknown_blocks`) |
//! | `Audio` | 400: Claude takes no audio |
//! | `tools` function (`strict: true` named `strict` and left out) / custom | `{name, description, input_schema}`; custom: `{"type":"object","properties":{"input":{"type":"string"}},"required":["input"]}` |
//! | `tool_choice` auto/required/none/tool, `parallel_tool_calls: false` | `auto`/`any`/`none`/`tool`, `disable_parallel_tool_use` |
//! | `max_output_tokens` (else the provider default), `temperature`, `top_p`, `top_k`, `stop`, `stream` | `max_tokens`, the same fields |
//! | `user` | `metadata.user_id` |
//! | `reasoning` Budget / Adaptive / Effort (or `effort` alone) | `thinking` enabled with the budget / adaptive / the effort's budget (low 1024, medium 4096, high 16384, xhigh 32768, capped below `max_tokens`; none/minimal: off); switched off (named `thinking`) when the last tool turn has no Claude-signed reasoning |
//! | `output_format` | a system instruction to answer in JSON (matching the schema) |
//! | `Extra{Claude, ..}` | forwarded verbatim (`tools` replaces the rendered tools) |
//! | other families' extras | dropped and named (`codec::dropped_name`), except the ones a stateless translation ignores by design ([`SILENT_EXTRAS`]) |
//!
//! Answers: `text` → text, `tool_use` → a function call (custom tools' `{"input": ...}` unwrapped
//! back to raw text), `thinking` → reasoning signed by Claude, `redacted_thinking` → redacted
//! reasoning, other blocks → `Unknown{Claude}`. Usage: `input` = `input_tokens` + cache reads +
//! cache writes. A stream that ends before `message_stop` ends in an error.

use serde_json::{json, Map, Value};

use crate::codec::collect::collect;
use crate::codec::{dropped_name, Encoded};
use crate::conversation::bridge::ProviderDecoder;
use crate::conversation::{
    BlockStart, Cache, Delta, Event, Family, FinishReason, Json, Opaque, Part, ProviderError, Reasoning, Request,
    Response, Role, Source, ToolChoice, ToolKind, Usage,
};
use crate::error::{ErrorKind, GatewayError};
use crate::sse::{utf8_lossy, SseFramer};
use crate::translate::anthropic_delta::{self, DeltaKind};

/// Request extras of other families that a stateless translation to Claude ignores on purpose:
/// `store` (the gateway keeps nothing), `include` (reasoning always comes back encrypted),
/// `reasoning` (the summary setting: Claude's thinking text is the summary), `safety_identifier`
/// (already the `user`), `stream_options`.
pub const SILENT_EXTRAS: &[&str] = &["store", "include", "reasoning", "safety_identifier", "stream_options"];

/// Schema of the one-string function a free-form tool becomes.
const CUSTOM_SCHEMA: &str = r#"{"type":"object","properties":{"input":{"type":"string","description":"The tool's free-form input."}},"required":["input"]}"#;
/// Smallest thinking budget Claude accepts.
const MIN_THINKING_BUDGET: u64 = 1024;

fn note(dropped: &mut Vec<&'static str>, name: &'static str) {
    if !dropped.contains(&name) {
        dropped.push(name);
    }
}

fn cache_json(cache: &Option<Cache>) -> Option<Value> {
    cache.as_ref().map(|c| match &c.ttl {
        Some(ttl) => json!({"type": c.kind, "ttl": ttl}),
        None => json!({"type": c.kind}),
    })
}

/// `block` with `cache_control` when `cache` is set.
fn with_cache(mut block: Value, cache: &Option<Cache>) -> Value {
    if let (Some(c), Some(obj)) = (cache_json(cache), block.as_object_mut()) {
        obj.insert("cache_control".into(), c);
    }
    block
}

fn raw_value(json: &Json) -> Result<Value, GatewayError> {
    serde_json::from_str(json.get()).map_err(|e| GatewayError::invalid(format!("Invalid JSON value: {e}")))
}

/// The input object of a call: the arguments' JSON object, `{}` for empty, `{"input": text}`
/// for a free-form call.
fn tool_input(arguments: &str, kind: ToolKind, param: &dyn Fn() -> String) -> Result<Value, GatewayError> {
    if kind == ToolKind::Custom {
        return Ok(json!({ "input": arguments }));
    }
    if arguments.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(GatewayError::invalid("Tool call arguments must be a JSON object.").with_param(param())),
        Err(e) => {
            Err(GatewayError::invalid(format!("Tool call arguments are not valid JSON: {e}")).with_param(param()))
        }
    }
}

fn source_json(source: &Source, image: bool, param: &dyn Fn() -> String) -> Result<Value, GatewayError> {
    Ok(match source {
        Source::Base64 { media_type, data } => json!({"type": "base64", "media_type": media_type, "data": data}),
        Source::Url { url, .. } => json!({"type": "url", "url": url}),
        Source::Text { media_type, data } if !image => json!({"type": "text", "media_type": media_type, "data": data}),
        Source::File { family: Family::Claude, id } => json!({"type": "file", "file_id": id}),
        Source::File { .. } => {
            return Err(GatewayError::invalid(
                "File ids are only valid at the provider that issued them; send the content inline.",
            )
            .with_param(param()))
        }
        Source::Text { .. } => return Err(GatewayError::invalid("An image needs base64 data.").with_param(param())),
    })
}

/// Builds the turns in client order.
struct Builder<'d> {
    system: Vec<Value>,
    messages: Vec<(Role, Vec<Value>)>,
    dropped: &'d mut Vec<&'static str>,
}

impl Builder<'_> {
    fn push(&mut self, role: Role, block: Value) {
        match self.messages.last_mut() {
            Some((last, blocks)) if *last == role => blocks.push(block),
            _ => self.messages.push((role, vec![block])),
        }
    }

    fn block(&mut self, part: &Part, param: &dyn Fn() -> String) -> Result<Option<Value>, GatewayError> {
        Ok(Some(match part {
            Part::Text { text, cache, .. } => {
                if text.is_empty() {
                    return Ok(None);
                }
                with_cache(json!({"type": "text", "text": text}), cache)
            }
            Part::Image { source, cache } => {
                with_cache(json!({"type": "image", "source": source_json(source, true, param)?}), cache)
            }
            Part::Document { source, title, context, citations, cache } => {
                let mut doc = json!({"type": "document", "source": source_json(source, false, param)?});
                if let Some(obj) = doc.as_object_mut() {
                    if let Some(t) = title {
                        obj.insert("title".into(), json!(t));
                    }
                    if let Some(c) = context {
                        obj.insert("context".into(), json!(c));
                    }
                    if let Some(enabled) = citations {
                        obj.insert("citations".into(), json!({ "enabled": enabled }));
                    }
                }
                with_cache(doc, cache)
            }
            Part::Audio { .. } => {
                return Err(GatewayError::invalid("Audio input is not supported by this model.").with_param(param()))
            }
            Part::ToolCall { id, name, arguments, kind, cache } => with_cache(
                json!({"type": "tool_use", "id": id, "name": name, "input": tool_input(arguments, *kind, param)?}),
                cache,
            ),
            Part::ToolResult { call_id, content, is_error, cache, .. } => {
                let mut blocks = Vec::with_capacity(content.len());
                for inner in content {
                    match inner {
                        Part::Text { .. } | Part::Image { .. } | Part::Document { .. } => {
                            if let Some(b) = self.block(inner, param)? {
                                blocks.push(b);
                            }
                        }
                        Part::Unknown { family: Family::Claude, raw } => blocks.push(raw_value(raw)?),
                        Part::Unknown { .. } => note(self.dropped, "unknown_blocks"),
                        _ => {
                            return Err(GatewayError::invalid(
                                "Tool results may only contain text, images and documents for this model.",
                            )
                            .with_param(param()))
                        }
                    }
                }
                let mut result = json!({"type": "tool_result", "tool_use_id": call_id, "content": blocks});
                if *is_error {
                    if let Some(obj) = result.as_object_mut() {
                        obj.insert("is_error".into(), Value::Bool(true));
                    }
                }
                with_cache(result, cache)
            }
            Part::Reasoning { text, signature: Some(sig), cache } if sig.family == Family::Claude => {
                with_cache(json!({"type": "thinking", "thinking": text, "signature": sig.data}), cache)
            }
            Part::RedactedReasoning { data } if data.family == Family::Claude => {
                json!({"type": "redacted_thinking", "data": data.data})
            }
            Part::Reasoning { .. } | Part::RedactedReasoning { .. } => {
                // Another family's reasoning (or none's): Claude would reject it, or read it as
                // text; it never leaves for the wrong vendor.
                note(self.dropped, "reasoning");
                return Ok(None);
            }
            Part::Unknown { family: Family::Claude, raw } => raw_value(raw)?,
            Part::Unknown { .. } => {
                note(self.dropped, "unknown_blocks");
                return Ok(None);
            }
        }))
    }
}

/// Tool results (Claude requires them first in the user turn that answers calls) before the rest.
fn tool_results_first(blocks: &mut Vec<Value>) {
    let is_result = |b: &Value| b.get("type").and_then(Value::as_str) == Some("tool_result");
    if !blocks.iter().any(is_result) {
        return;
    }
    let (mut results, others): (Vec<Value>, Vec<Value>) = blocks.drain(..).partition(is_result);
    results.extend(others);
    *blocks = results;
}

/// The thinking budget of an effort level; `None` for no thinking.
fn effort_budget(level: &str) -> Result<Option<u64>, GatewayError> {
    Ok(Some(match level {
        "none" | "minimal" => return Ok(None),
        "low" => 1024,
        "medium" => 4096,
        "high" => 16384,
        "xhigh" | "max" => 32768,
        other => {
            let shown: String = other.chars().take(32).collect();
            return Err(GatewayError::invalid(format!(
                "Invalid value: '{shown}'. Supported values are: 'none', 'minimal', 'low', 'medium', 'high', and 'xhigh'."
            ))
            .with_param("reasoning.effort")
            .with_code("invalid_value"));
        }
    }))
}

/// `thinking` for `req`, or none (named when it had to be switched off).
fn thinking(req: &Request, max_tokens: u64, dropped: &mut Vec<&'static str>) -> Result<Option<Value>, GatewayError> {
    let reasoning = match (&req.reasoning, &req.effort) {
        (Some(r), _) => r.clone(),
        (None, Some(effort)) => Reasoning::Effort(effort.clone()),
        (None, None) => return Ok(None),
    };
    let value = match reasoning {
        Reasoning::Disabled => return Ok(None),
        Reasoning::Adaptive => json!({"type": "adaptive"}),
        Reasoning::Budget(n) => json!({"type": "enabled", "budget_tokens": n}),
        Reasoning::Effort(level) => {
            let Some(budget) = effort_budget(&level)? else { return Ok(None) };
            let budget = budget.min(max_tokens.saturating_sub(1));
            if budget < MIN_THINKING_BUDGET {
                note(dropped, "thinking");
                return Ok(None);
            }
            json!({"type": "enabled", "budget_tokens": budget})
        }
    };
    if req.last_tool_turn_has_signed_reasoning(Family::Claude) == Some(false) {
        note(dropped, "thinking");
        return Ok(None);
    }
    Ok(Some(value))
}

/// The Messages body for `req` (without the path: Anthropic's `/v1/messages` or Bedrock's
/// InvokeModel path are the caller's). `model` is written unless `None` (InvokeModel puts it
/// in the path). What Claude cannot take is named in `dropped`.
pub fn encode_body(
    req: &Request,
    model: Option<&str>,
    default_max_tokens: u64,
    dropped: &mut Vec<&'static str>,
) -> Result<Vec<u8>, GatewayError> {
    let mut b = Builder { system: Vec::new(), messages: Vec::new(), dropped };
    let mut leading = true;
    for (i, message) in req.messages.iter().enumerate() {
        for (j, part) in message.parts.iter().enumerate() {
            let param = || format!("input[{i}].content[{j}]");
            match message.role {
                Role::System | Role::Developer => match part {
                    Part::Text { text, cache, .. } if leading => {
                        if !text.is_empty() {
                            b.system.push(with_cache(json!({"type": "text", "text": text}), cache));
                        }
                    }
                    Part::Text { text, cache, .. } => {
                        if !text.is_empty() {
                            let wrapped = format!("<system-reminder>\n{text}\n</system-reminder>");
                            b.push(Role::User, with_cache(json!({"type": "text", "text": wrapped}), cache));
                        }
                    }
                    Part::Unknown { .. } => note(b.dropped, "unknown_blocks"),
                    _ => {
                        return Err(GatewayError::invalid("System messages may only contain text for this model.")
                            .with_param(param()))
                    }
                },
                Role::User | Role::Assistant => {
                    leading = false;
                    // Calls are the model's and results the client's, wherever an item put them.
                    let role = match part {
                        Part::ToolCall { .. } => Role::Assistant,
                        Part::ToolResult { .. } => Role::User,
                        _ => message.role,
                    };
                    if let Some(block) = b.block(part, &param)? {
                        b.push(role, block);
                    }
                }
            }
        }
    }
    if let Some(format) = &req.output_format {
        b.system.push(json!({"type": "text", "text": format.instruction()}));
    }
    let Builder { system, messages, dropped } = b;
    let mut turns = Vec::with_capacity(messages.len());
    for (role, mut blocks) in messages {
        if role == Role::User {
            tool_results_first(&mut blocks);
        }
        let role = if role == Role::Assistant { "assistant" } else { "user" };
        turns.push(json!({"role": role, "content": blocks}));
    }
    if turns.is_empty() {
        return Err(GatewayError::invalid("The request has no input.").with_param("input"));
    }

    let max_tokens = req.max_output_tokens.unwrap_or(default_max_tokens).max(1);
    let mut body = Map::new();
    if let Some(model) = model {
        body.insert("model".into(), json!(model));
    }
    body.insert("max_tokens".into(), json!(max_tokens));
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    body.insert("messages".into(), Value::Array(turns));
    let thinking = thinking(req, max_tokens, dropped)?;
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        body.insert("top_p".into(), json!(p));
    }
    if let Some(k) = req.top_k {
        body.insert("top_k".into(), json!(k));
    }
    if !req.stop.is_empty() {
        body.insert("stop_sequences".into(), json!(req.stop));
    }
    if req.stream {
        body.insert("stream".into(), Value::Bool(true));
    }
    if let Some(user) = &req.user {
        body.insert("metadata".into(), json!({ "user_id": user }));
    }
    let mut tools = Vec::with_capacity(req.tools.len());
    for tool in &req.tools {
        let schema = match (tool.kind, &tool.input_schema) {
            (ToolKind::Custom, _) | (_, None) => serde_json::from_str::<Value>(CUSTOM_SCHEMA)
                .map_err(|_| GatewayError::new(ErrorKind::Internal, "invalid built-in schema"))?,
            (ToolKind::Function, Some(schema)) => raw_value(schema)?,
        };
        let schema = if tool.kind == ToolKind::Function && tool.input_schema.is_none() {
            json!({"type": "object", "properties": {}})
        } else {
            schema
        };
        if tool.strict == Some(true) {
            note(dropped, "strict");
        }
        let mut def = json!({"name": tool.name, "input_schema": schema});
        if let (Some(d), Some(obj)) = (&tool.description, def.as_object_mut()) {
            obj.insert("description".into(), json!(d));
        }
        tools.push(with_cache(def, &tool.cache));
    }
    let mut tools_value = (!tools.is_empty()).then_some(Value::Array(tools));
    for extra in &req.extras {
        match extra.family {
            Family::Claude if extra.name == "tools" => tools_value = Some(raw_value(&extra.value)?),
            Family::Claude if extra.name == "thinking" && thinking.is_none() => {}
            Family::Claude => {
                body.insert(extra.name.clone(), raw_value(&extra.value)?);
            }
            _ if SILENT_EXTRAS.contains(&extra.name.as_str()) => {}
            _ => note(dropped, dropped_name(&extra.name)),
        }
    }
    if let Some(tools) = tools_value {
        body.insert("tools".into(), tools);
        let mut choice = match &req.tool_choice {
            None | Some(ToolChoice::Auto) => json!({"type": "auto"}),
            Some(ToolChoice::Required) => json!({"type": "any"}),
            Some(ToolChoice::None) => json!({"type": "none"}),
            Some(ToolChoice::Tool(name)) => json!({"type": "tool", "name": name}),
        };
        if req.parallel_tool_calls == Some(false) {
            if let Some(obj) = choice.as_object_mut() {
                obj.insert("disable_parallel_tool_use".into(), Value::Bool(true));
            }
        }
        if req.tool_choice.is_some() || req.parallel_tool_calls == Some(false) {
            body.insert("tool_choice".into(), choice);
        }
    }
    if let Some(t) = thinking {
        body.insert("thinking".into(), t);
        // Claude refuses sampling changes with thinking on.
        if body.remove("temperature").is_some() | body.remove("top_k").is_some() {
            note(dropped, "temperature");
        }
    }
    serde_json::to_vec(&Value::Object(body))
        .map_err(|e| GatewayError::new(ErrorKind::Internal, format!("could not encode the provider request: {e}")))
}

/// Encodes `req` as a Messages call to Anthropic's `/v1/messages` for `model`.
pub fn encode_request(req: &Request, model: &str, default_max_tokens: u64) -> Result<Encoded, GatewayError> {
    let mut dropped = Vec::new();
    let body = encode_body(req, Some(model), default_max_tokens, &mut dropped)?;
    Ok(Encoded {
        path: "/v1/messages".to_owned(),
        body,
        headers: vec![
            ("content-type", "application/json".to_owned()),
            ("anthropic-version", crate::api::anthropic::API_VERSION.to_owned()),
        ],
        dropped,
    })
}

/// The names of the free-form tools of `req`: their calls come back wrapped in `{"input": ...}`.
pub fn custom_tool_names(req: &Request) -> Vec<String> {
    req.tools.iter().filter(|t| t.kind == ToolKind::Custom).map(|t| t.name.clone()).collect()
}

/// A stop reason of Claude's.
pub fn finish_reason(reason: &str, sequence: Option<&str>) -> FinishReason {
    match reason {
        "end_turn" => FinishReason::EndTurn,
        "max_tokens" => FinishReason::MaxTokens,
        "stop_sequence" => FinishReason::StopSequence(sequence.map(str::to_owned)),
        "tool_use" => FinishReason::ToolUse,
        "pause_turn" => FinishReason::PauseTurn,
        "refusal" => FinishReason::Refusal,
        "model_context_window_exceeded" => FinishReason::ContextWindow,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// Claude's usage object in the model's terms (input includes cache reads and writes).
fn usage(value: &Value) -> Usage {
    let get = |k: &str| value.get(k).and_then(Value::as_u64);
    let (input, read, write) =
        (get("input_tokens"), get("cache_read_input_tokens"), get("cache_creation_input_tokens"));
    let input = match (input, read, write) {
        (None, None, None) => None,
        (i, r, w) => Some(i.unwrap_or(0).saturating_add(r.unwrap_or(0)).saturating_add(w.unwrap_or(0))),
    };
    Usage { input, output: get("output_tokens"), cache_read: read, cache_write: write, reasoning: None }
}

/// One open tool block of a free-form tool, whose JSON input is unwrapped at its end.
#[derive(Debug)]
struct CustomBlock {
    index: u32,
    json: String,
}

/// The Messages event machine shared by JSON answers and streams.
#[derive(Debug, Default)]
struct Machine {
    custom_tools: Vec<String>,
    custom: Vec<CustomBlock>,
    finish: Option<FinishReason>,
    started: bool,
    complete: bool,
    done: bool,
}

impl Machine {
    fn block_start(&mut self, index: u32, block: &Value, out: &mut Vec<Event>) {
        let kind = block.get("type").and_then(Value::as_str).unwrap_or("");
        let text = |k: &str| block.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        match kind {
            "text" => {
                out.push(Event::BlockStart { index, block: BlockStart::Text });
                let t = text("text");
                if !t.is_empty() {
                    out.push(Event::Delta { index, delta: Delta::Text(t) });
                }
            }
            "tool_use" => {
                let name = text("name");
                let custom = self.custom_tools.contains(&name);
                let kind = if custom { ToolKind::Custom } else { ToolKind::Function };
                out.push(Event::BlockStart { index, block: BlockStart::ToolCall { id: text("id"), name, kind } });
                // A streamed input starts as `{}` and arrives in deltas; a whole one is here.
                let input = block.get("input").map(Value::to_string).filter(|s| s != "{}");
                if custom {
                    self.custom.push(CustomBlock { index, json: input.unwrap_or_default() });
                } else if let Some(input) = input {
                    out.push(Event::Delta { index, delta: Delta::ToolArguments(input) });
                }
            }
            "thinking" => {
                out.push(Event::BlockStart { index, block: BlockStart::Reasoning });
                let t = text("thinking");
                if !t.is_empty() {
                    out.push(Event::Delta { index, delta: Delta::Reasoning(t) });
                }
                let sig = text("signature");
                if !sig.is_empty() {
                    out.push(Event::Delta {
                        index,
                        delta: Delta::Signature(Opaque { family: Family::Claude, data: sig }),
                    });
                }
            }
            "redacted_thinking" => {
                let data = Opaque { family: Family::Claude, data: text("data") };
                out.push(Event::BlockStart { index, block: BlockStart::RedactedReasoning { data } });
            }
            _ => {
                let raw = Json::from_text(&block.to_string());
                if let Some(raw) = raw {
                    out.push(Event::BlockStart { index, block: BlockStart::Unknown { family: Family::Claude, raw } });
                }
            }
        }
    }

    fn block_stop(&mut self, index: u32, out: &mut Vec<Event>) {
        if let Some(pos) = self.custom.iter().position(|c| c.index == index) {
            let block = self.custom.remove(pos);
            let input = serde_json::from_str::<Value>(&block.json)
                .ok()
                .and_then(|v| v.get("input").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or(block.json);
            out.push(Event::Delta { index, delta: Delta::ToolArguments(input) });
        }
        out.push(Event::BlockStop { index });
    }

    /// One event's JSON text. Most events of a stream are text, thinking or tool-argument
    /// deltas: those are read into a borrowed struct (the strings are copied once, into the
    /// event); anything else, or anything the struct does not take as it is (a field of
    /// another type, a duplicate key), goes the general way through a `Value`.
    fn event_bytes(&mut self, json: &[u8], out: &mut Vec<Event>) {
        if self.done {
            return;
        }
        if self.delta_scanned(json, out) {
            return;
        }
        if let Ok(event) = serde_json::from_slice::<DeltaEventWire<'_>>(json) {
            if self.delta_fast(&event, out) {
                return;
            }
        }
        if let Ok(value) = serde_json::from_slice::<Value>(json) {
            self.event(&value, out);
        }
    }

    /// [`Self::event_bytes`] for an SSE event's data as the framer lends it: invalid UTF-8 is
    /// replaced before serde reads it, as for every SSE stream.
    fn event_sse(&mut self, data: &[u8], out: &mut Vec<Event>) {
        if self.done || self.delta_scanned(data, out) {
            return;
        }
        self.event_bytes(utf8_lossy(data).as_bytes(), out);
    }

    /// Cheaper than [`Self::delta_fast`]: a text or thinking delta whose text has no escape is
    /// its own decoded value, so the scanner's slice is the text (an escaped one is left to
    /// serde to decode). `false` when the event is not such a delta.
    fn delta_scanned(&mut self, json: &[u8], out: &mut Vec<Event>) -> bool {
        let Some(delta) = anthropic_delta::scan(json).filter(|d| !d.escaped.contains(&b'\\')) else { return false };
        // As `delta_fast` reads the index: anything past u32 is block 0.
        let index = u32::try_from(delta.index).unwrap_or(0);
        // The scanner checked the text's UTF-8; this check cannot fail.
        let Ok(text) = std::str::from_utf8(delta.escaped).map(str::to_owned) else { return false };
        let delta = match delta.kind {
            DeltaKind::Text => Delta::Text(text),
            DeltaKind::Thinking => Delta::Reasoning(text),
        };
        out.push(Event::Delta { index, delta });
        true
    }

    /// The `content_block_delta` cases of [`Self::event`] for a delta read as [`DeltaEventWire`];
    /// `false` when the event is not one of them (the caller takes the general way).
    fn delta_fast(&mut self, event: &DeltaEventWire<'_>, out: &mut Vec<Event>) -> bool {
        let Some(delta) = event.delta.as_ref().filter(|_| event.kind == "content_block_delta") else { return false };
        // As `Value::as_u64` then `u32::try_from` read it: anything else is block 0.
        let index = event.index.and_then(|i| u32::try_from(i).ok()).unwrap_or(0);
        let s = |v: &Option<std::borrow::Cow<'_, str>>| v.as_deref().unwrap_or("").to_owned();
        let d = match delta.kind.as_deref().unwrap_or("") {
            "text_delta" => Delta::Text(s(&delta.text)),
            "thinking_delta" => Delta::Reasoning(s(&delta.thinking)),
            "input_json_delta" => {
                let json = delta.partial_json.as_deref().unwrap_or("");
                if let Some(c) = self.custom.iter_mut().find(|c| c.index == index) {
                    c.json.push_str(json);
                    return true;
                }
                Delta::ToolArguments(json.to_owned())
            }
            _ => return false,
        };
        out.push(Event::Delta { index, delta: d });
        true
    }

    fn event(&mut self, event: &Value, out: &mut Vec<Event>) {
        if self.done {
            return;
        }
        let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
        let index = event.get("index").and_then(Value::as_u64).and_then(|i| u32::try_from(i).ok()).unwrap_or(0);
        match kind {
            "message_start" => {
                let message = event.get("message").cloned().unwrap_or(Value::Null);
                let s = |k: &str| message.get(k).and_then(Value::as_str).map(str::to_owned);
                self.started = true;
                out.push(Event::Start { id: s("id"), model: s("model") });
                if let Some(u) = message.get("usage") {
                    out.push(Event::Usage(usage(u)));
                }
            }
            "content_block_start" => {
                let block = event.get("content_block").cloned().unwrap_or(Value::Null);
                self.block_start(index, &block, out);
            }
            "content_block_delta" => {
                let delta = event.get("delta").cloned().unwrap_or(Value::Null);
                let s = |k: &str| delta.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                let d = match delta.get("type").and_then(Value::as_str).unwrap_or("") {
                    "text_delta" => Delta::Text(s("text")),
                    "input_json_delta" => {
                        if let Some(c) = self.custom.iter_mut().find(|c| c.index == index) {
                            c.json.push_str(&s("partial_json"));
                            return;
                        }
                        Delta::ToolArguments(s("partial_json"))
                    }
                    "thinking_delta" => Delta::Reasoning(s("thinking")),
                    "signature_delta" => Delta::Signature(Opaque { family: Family::Claude, data: s("signature") }),
                    "citations_delta" => match delta.get("citation").and_then(|c| Json::from_text(&c.to_string())) {
                        Some(c) => Delta::Citation(c),
                        None => return,
                    },
                    _ => return,
                };
                out.push(Event::Delta { index, delta: d });
            }
            "content_block_stop" => self.block_stop(index, out),
            "message_delta" => {
                if let Some(reason) = event.get("delta").and_then(|d| d.get("stop_reason")).and_then(Value::as_str) {
                    let sequence = event.get("delta").and_then(|d| d.get("stop_sequence")).and_then(Value::as_str);
                    self.finish = Some(finish_reason(reason, sequence));
                }
                if let Some(u) = event.get("usage") {
                    out.push(Event::Usage(usage(u)));
                }
            }
            "message_stop" => {
                if let Some(reason) = self.finish.take() {
                    out.push(Event::Finish(reason));
                }
                out.push(Event::End);
                self.complete = true;
                self.done = true;
            }
            "error" => {
                let error = event.get("error").cloned().unwrap_or(Value::Null);
                let s = |k: &str| error.get(k).and_then(Value::as_str).map(str::to_owned);
                let code = s("type");
                let status = match code.as_deref() {
                    Some("overloaded_error") => 529,
                    Some("rate_limit_error") => 429,
                    Some("invalid_request_error") => 400,
                    _ => 500,
                };
                let message = s("message").unwrap_or_else(|| "The provider reported an error in the stream.".into());
                out.push(Event::Error(ProviderError { status, code, message }));
                self.done = true;
            }
            _ => {}
        }
    }

    fn end(&mut self, out: &mut Vec<Event>) {
        if !self.done {
            self.done = true;
            out.push(Event::Error(ProviderError {
                status: 502,
                code: None,
                message: "The provider's stream ended before the answer was complete.".into(),
            }));
        }
    }
}

/// The fields of a `content_block_delta` the stream decoder reads, borrowed from the event's
/// text when they hold no escapes (see [`Machine::event_bytes`]). Unknown fields are refused
/// rather than skipped: serde_json skips a string without checking its escapes, and an event
/// the general way cannot read (a lone surrogate anywhere) must not be read here either.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DeltaEventWire<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    index: Option<u64>,
    #[serde(borrow)]
    delta: Option<DeltaWire<'a>>,
}

/// The `delta` of a [`DeltaEventWire`].
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DeltaWire<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    text: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    thinking: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    partial_json: Option<std::borrow::Cow<'a, str>>,
}

/// Reads Anthropic Messages answers (JSON, SSE, errors) for any client encoder.
#[derive(Debug, Default)]
pub struct AnthropicDecoder {
    framer: SseFramer,
    machine: Machine,
}

impl AnthropicDecoder {
    /// A decoder for one response; calls of `custom_tools` are free-form ([`custom_tool_names`]).
    pub fn new(custom_tools: Vec<String>) -> Self {
        AnthropicDecoder { machine: Machine { custom_tools, ..Machine::default() }, ..AnthropicDecoder::default() }
    }

    /// Feeds one decoded Messages event (its JSON text), as Bedrock InvokeModel streams carry them.
    pub fn decode_event(&mut self, json: &[u8], out: &mut Vec<Event>) {
        self.machine.event_bytes(json, out);
    }

    /// Closes the stream: an answer without `message_stop` ends in an error.
    pub fn end(&mut self, out: &mut Vec<Event>) {
        self.machine.end(out);
    }
}

/// A whole `message` as the events its stream would have sent.
pub fn message_events(message: &Value, custom_tools: Vec<String>) -> Vec<Event> {
    let mut machine = Machine { custom_tools, ..Machine::default() };
    let mut out = Vec::new();
    let mut start = message.clone();
    if let Some(obj) = start.as_object_mut() {
        obj.remove("content");
    }
    machine.event(&json!({"type": "message_start", "message": start}), &mut out);
    if let Some(blocks) = message.get("content").and_then(Value::as_array) {
        for (i, block) in blocks.iter().enumerate() {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            machine.block_start(index, block, &mut out);
            machine.block_stop(index, &mut out);
        }
    }
    let mut delta = Map::new();
    if let Some(reason) = message.get("stop_reason").filter(|r| !r.is_null()) {
        delta.insert("stop_reason".into(), reason.clone());
    }
    if let Some(seq) = message.get("stop_sequence").filter(|r| !r.is_null()) {
        delta.insert("stop_sequence".into(), seq.clone());
    }
    machine.event(&json!({"type": "message_delta", "delta": delta}), &mut out);
    machine.event(&json!({"type": "message_stop"}), &mut out);
    out
}

/// An Anthropic error body (`{"type":"error","error":{"type","message"}}`) as a provider error.
pub fn decode_error_body(status: u16, body: &[u8]) -> ProviderError {
    let value = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
    let error = value.get("error");
    let s = |k: &str| error.and_then(|e| e.get(k)).and_then(Value::as_str).map(str::to_owned);
    match s("message") {
        Some(message) => ProviderError { status, code: s("type"), message },
        None => ProviderError {
            status,
            code: None,
            message: format!("The provider returned HTTP {status} with a body the gateway could not read."),
        },
    }
}

/// A whole Messages JSON answer as a [`Response`].
pub fn decode_message(body: &[u8], custom_tools: Vec<String>) -> Result<Response, GatewayError> {
    let bad =
        || GatewayError::new(ErrorKind::BadGateway, "The provider returned a response the gateway could not parse.");
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(bad());
    }
    let message: Value = serde_json::from_slice(body).map_err(|_| bad())?;
    collect(&message_events(&message, custom_tools)).map_err(|e| GatewayError::new(ErrorKind::BadGateway, e.message))
}

impl ProviderDecoder for AnthropicDecoder {
    fn stream_content_type(&self) -> &'static str {
        "text/event-stream"
    }

    fn decode_response(&mut self, body: &[u8]) -> Result<Response, GatewayError> {
        decode_message(body, self.machine.custom_tools.clone())
    }

    fn decode_error(&mut self, status: u16, body: &[u8]) -> ProviderError {
        decode_error_body(status, body)
    }

    fn decode_chunk(&mut self, chunk: &[u8], end_of_stream: bool, out: &mut Vec<Event>) {
        let machine = &mut self.machine;
        let _ = self.framer.push_each_raw(chunk, |_, data| machine.event_sse(data, out));
        if end_of_stream {
            self.framer.finish_each_raw(|_, data| machine.event_sse(data, out));
        }
        if end_of_stream {
            self.machine.end(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A machine in the middle of a stream, with a custom tool's block open at index 2.
    fn machine() -> Machine {
        let mut m = Machine { custom_tools: vec!["apply_patch".into()], ..Machine::default() };
        m.custom.push(CustomBlock { index: 2, json: "{\"input\":".into() });
        m.started = true;
        m
    }

    /// The fast path against the general one (a `Value`) on the same event: same events out,
    /// same custom-tool text kept.
    fn same_as_general(json: &str) {
        let (mut fast, mut general) = (machine(), machine());
        let (mut fast_out, mut general_out) = (Vec::new(), Vec::new());
        fast.event_sse(json.as_bytes(), &mut fast_out);
        if let Ok(value) = serde_json::from_str::<Value>(json) {
            general.event(&value, &mut general_out);
        }
        assert_eq!(fast_out, general_out, "{json}");
        let texts = |m: &Machine| m.custom.iter().map(|c| (c.index, c.json.clone())).collect::<Vec<_>>();
        assert_eq!(texts(&fast), texts(&general), "{json}");
    }

    #[test]
    fn every_event_of_the_recorded_anthropic_streams() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/recorded/anthropic");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
            for interaction in doc["interactions"].as_sequence().into_iter().flatten() {
                let body = &interaction["response"]["body"];
                let Some(body) = body.get("string").unwrap_or(body).as_str() else { continue };
                for line in body.lines() {
                    if let Some(data) = line.strip_prefix("data:") {
                        same_as_general(data.trim_start());
                        seen += 1;
                    }
                }
            }
        }
        assert!(seen > 20, "expected the recorded Anthropic streams, found {seen} events");
    }

    #[test]
    fn odd_shapes_take_the_general_way_and_agree() {
        for json in [
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"a\"b\\n\u00e9\ud83d\ude00"}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"\ud800 lone"}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta"}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":5}}"#,
            r#"{"type":"content_block_delta","index":-1,"delta":{"type":"text_delta","text":"x"}}"#,
            r#"{"type":"content_block_delta","index":1.0,"delta":{"type":"text_delta","text":"x"}}"#,
            r#"{"type":"content_block_delta","index":"1","delta":{"type":"text_delta","text":"x"}}"#,
            r#"{"type":"content_block_delta","index":null,"delta":{"type":"thinking_delta","thinking":"x"}}"#,
            r#"{"type":"content_block_delta","index":4294967296,"delta":{"type":"text_delta","text":"x"}}"#,
            r#"{"type":"content_block_delta","delta":{"type":"text_delta","text":"x"}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":"text"}"#,
            r#"{"type":"content_block_delta","index":1,"delta":null}"#,
            r#"{"type":"content_block_delta","index":1}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"a","text":"b"}}"#,
            r#"{"type":"content_block_delta","index":1,"index":2,"delta":{"type":"input_json_delta","partial_json":"x"}}"#,
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"\"diff\"}"}}"#,
            r#"{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}"#,
            r#"{"type":"content_block_delta","index":3,"delta":{"type":"signature_delta","signature":"sig"}}"#,
            r#"{"type":"content_block_delta","index":3,"delta":{"type":"citations_delta","citation":{"a":1}}}"#,
            r#"{"type":"content_block_delta","index":3,"delta":{"type":"future_delta","x":1}}"#,
            r#"{"type":"content_block_delta","index":3,"delta":{"type":7,"text":"x"}}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}"#,
            r#"{"type":"content_block_delta","index":1,"extra":"\ud800","delta":{"type":"text_delta","text":"x"}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"x","extra":"\udc00 \ud800"}}"#,
            r#"{"type":"message_stop"}"#,
            r#"{"type":1}"#,
            r#"not json"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"x"}} trailing"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"x y"}      }"#,
            r#" {"delta" : {"thinking":"é😀","type":"thinking_delta"},"index":0,"type":"content_block_delta"} "#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"a\/b"}}"#,
            r#"{"type":"content_block_delta","index":01,"delta":{"type":"text_delta","text":"x"}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"thinking_delta","text":"x"}}"#,
            "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"a\tb\"}}",
        ] {
            same_as_general(json);
        }
    }

    proptest! {
        #[test]
        fn any_delta_event_agrees(
            kind in prop_oneof![Just("content_block_delta"), Just("ping"), Just("content_block_stop")],
            index in prop_oneof![Just(serde_json::json!(0)), Just(serde_json::json!(2)), any::<u32>().prop_map(serde_json::Value::from),
                                 any::<i64>().prop_map(serde_json::Value::from), Just(serde_json::Value::Null), Just(serde_json::json!("1"))],
            delta_kind in prop_oneof![Just("text_delta"), Just("thinking_delta"), Just("input_json_delta"), Just("signature_delta"), Just("other")],
            field in prop_oneof![Just("text"), Just("thinking"), Just("partial_json"), Just("signature")],
            text in any::<String>(),
            units in proptest::collection::vec(any::<u16>(), 0..8),
        ) {
            // Raw `\uXXXX` escapes as a provider may send them, lone surrogates included.
            let escaped: String = units.iter().map(|u| format!("\\u{u:04x}")).collect();
            let text_json = serde_json::to_string(&text).unwrap();
            let value = format!("{}{}\"", text_json.trim_end_matches('"'), escaped);
            let json = format!(r#"{{"type":"{kind}","index":{index},"delta":{{"type":"{delta_kind}","{field}":{value}}}}}"#);
            same_as_general(&json);
        }
    }
}
