//! [`Request`] → Gemini `generateContent` body. See the table in [`super`].

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use serde_json::value::RawValue;
use serde_json::Value;

use super::wire::{
    Blob, Content, FileData, FunctionCall, FunctionResponse, GenerationConfig, OutPart, PartData, Request as Body,
    SignedPart, ThinkingConfig,
};
use crate::api::gemini::{FunctionCallingConfig, FunctionDeclaration, Tool, ToolConfig};
use crate::codec::{dropped_name, Encoded};
use crate::conversation::{
    Family, Message, OutputFormat, Part, Reasoning, Request, Role, Source, ToolChoice, ToolKind,
};
use crate::error::{ErrorKind, GatewayError};
use crate::translate::openai_to_gemini::request::guess_image_mime;
use crate::translate::openai_to_gemini::{schema, validate_model};

/// Google's documented signature for function calls Gemini did not sign in this session
/// (history from another provider, or a client that lost the signature): Gemini 3 rejects the
/// first function call of a model turn without a signature, earlier models ignore it.
pub const PLACEHOLDER_SIGNATURE: &str = "skip_thought_signature_validator";

/// The largest thinking budget every Gemini 2.5 model accepts (Flash tops out there; Pro at
/// 32768): larger budgets, such as Claude Code's 31999, are lowered to it instead of a 400.
pub const MAX_THINKING_BUDGET: u64 = 24576;

/// Encodes `req` for Gemini `model` (a route target's, validated: letters, digits, `-`, `_`, `.`,
/// optionally after `models/`). `default_max_tokens` (0: none) sets `maxOutputTokens` when the
/// request has no limit.
pub fn encode_request(req: &Request, model: &str, default_max_tokens: u64) -> Result<Encoded, GatewayError> {
    let bare = validate_model(model).map_err(|m| GatewayError::new(ErrorKind::Internal, m))?;
    let method = if req.stream { "streamGenerateContent?alt=sse" } else { "generateContent" };
    let mut dropped = Vec::new();
    let body = build(req, default_max_tokens, &mut dropped)?;
    let mut out = Vec::with_capacity(4096);
    serde_json::to_writer(&mut out, &body)
        .map_err(|e| GatewayError::new(ErrorKind::Internal, format!("could not encode the provider request: {e}")))?;
    Ok(Encoded {
        path: format!("/v1beta/models/{bare}:{method}"),
        body: out,
        headers: vec![("content-type", "application/json".to_owned())],
        dropped,
    })
}

fn note(dropped: &mut Vec<&'static str>, name: &'static str) {
    if !dropped.contains(&name) {
        dropped.push(name);
    }
}

fn internal(e: impl std::fmt::Display) -> GatewayError {
    GatewayError::new(ErrorKind::Internal, format!("could not encode the provider request: {e}"))
}

fn built<'a>(data: PartData<'a>, thought_signature: Option<&'a str>) -> OutPart<'a> {
    OutPart::Built(SignedPart { data, thought_signature })
}

fn build<'a>(
    req: &'a Request,
    default_max_tokens: u64,
    dropped: &mut Vec<&'static str>,
) -> Result<Body<'a>, GatewayError> {
    let mut system = Vec::new();
    let mut contents: Vec<Content<'a>> = Vec::with_capacity(req.messages.len());
    // Gemini matches a result to its call by name; the model keeps ids. Later calls overwrite
    // earlier ones, so an id reused across turns resolves to the nearest call before the result.
    let mut call_names: HashMap<&'a str, &'a str> = HashMap::new();
    let mut leading = true;
    for (i, message) in req.messages.iter().enumerate() {
        match message.role {
            Role::System | Role::Developer if leading => {
                for (j, part) in message.parts.iter().enumerate() {
                    system.push(built(PartData::Text(Cow::Borrowed(system_text(part, i, j)?)), None));
                }
            }
            Role::System | Role::Developer => {
                // Gemini has one system instruction, before the conversation: a later instruction
                // stays where the client put it, as a user turn the model can tell apart.
                let mut parts = Vec::with_capacity(message.parts.len());
                for (j, part) in message.parts.iter().enumerate() {
                    let text = system_text(part, i, j)?;
                    parts.push(built(PartData::Text(Cow::Owned(format!("<system>\n{text}\n</system>"))), None));
                }
                push_turn(&mut contents, "user", parts);
            }
            Role::User => {
                leading = false;
                let parts = user_parts(message, i, &call_names, dropped)?;
                push_turn(&mut contents, "user", parts);
            }
            Role::Assistant => {
                leading = false;
                let parts = model_parts(message, i, &mut call_names, dropped)?;
                push_turn(&mut contents, "model", parts);
            }
        }
    }
    let tools = tools(req)?;
    let tool_config = if tools.is_empty() { None } else { tool_config(req) };
    if req.parallel_tool_calls == Some(false) && !tools.is_empty() {
        // Gemini may call several functions at once and has no switch for it.
        note(dropped, "parallel_tool_calls");
    }
    let mut extras = BTreeMap::new();
    for extra in &req.extras {
        // A Gemini member the codec writes itself is never overwritten (nor written twice).
        let own = ["contents", "systemInstruction", "tools", "toolConfig", "generationConfig"];
        if extra.family == Family::Gemini && !own.contains(&extra.name.as_str()) {
            extras.insert(extra.name.as_str(), &*extra.value.0);
        } else {
            note(dropped, dropped_name(&extra.name));
        }
    }
    Ok(Body {
        contents,
        system_instruction: (!system.is_empty()).then_some(Content { role: None, parts: system }),
        tools,
        tool_config,
        generation_config: generation_config(req, default_max_tokens)?,
        extras,
    })
}

/// Appends a turn, merged into the previous one of the same role (Gemini wants roles to
/// alternate, and parallel results in one turn); an empty turn is a Gemini 400, so none is added.
fn push_turn<'a>(contents: &mut Vec<Content<'a>>, role: &'static str, mut parts: Vec<OutPart<'a>>) {
    if parts.is_empty() {
        return;
    }
    match contents.last_mut() {
        Some(last) if last.role == Some(role) => last.parts.append(&mut parts),
        _ => contents.push(Content { role: Some(role), parts }),
    }
}

fn system_text(part: &Part, i: usize, j: usize) -> Result<&str, GatewayError> {
    match part {
        Part::Text { text, .. } => Ok(text),
        _ => Err(GatewayError::invalid("System messages may only contain text for this model.")
            .with_param(format!("messages[{i}].content[{j}]"))),
    }
}

/// Text, images, documents and audio, as user and model turns both hold them. `None` for parts
/// that are not media.
fn media<'a>(part: &'a Part, param: &dyn Fn() -> String) -> Result<Option<OutPart<'a>>, GatewayError> {
    Ok(Some(match part {
        Part::Text { text, .. } if text.is_empty() => return Ok(None),
        Part::Text { text, .. } => built(PartData::Text(Cow::Borrowed(text)), None),
        Part::Image { source, .. } => source_part(source, param)?,
        Part::Document { source: Source::Text { data, .. }, title, .. } => {
            let text = match title {
                Some(title) => Cow::Owned(format!("{title}\n\n{data}")),
                None => Cow::Borrowed(data.as_str()),
            };
            built(PartData::Text(text), None)
        }
        Part::Document { source, .. } => source_part(source, param)?,
        Part::Audio { data, format } => {
            let mime_type = Cow::Owned(format!("audio/{format}"));
            built(PartData::InlineData(Blob { mime_type, data }), None)
        }
        _ => return Ok(None),
    }))
}

/// Inline bytes → `inlineData`; an https URL whose type is known → `fileData` (Gemini fetches
/// it); anything else is a 400 rather than a guess.
fn source_part<'a>(source: &'a Source, param: &dyn Fn() -> String) -> Result<OutPart<'a>, GatewayError> {
    match source {
        Source::Base64 { media_type, data } => {
            Ok(built(PartData::InlineData(Blob { mime_type: Cow::Borrowed(media_type), data }), None))
        }
        Source::Text { media_type, data } => {
            let _ = media_type;
            Ok(built(PartData::Text(Cow::Borrowed(data)), None))
        }
        Source::Url { url, media_type } if url.starts_with("https://") => {
            let Some(mime_type) = media_type.as_deref().or_else(|| guess_image_mime(url)) else {
                return Err(GatewayError::invalid(
                    "The media type of this URL cannot be told from its extension; send the content inline (base64).",
                )
                .with_param(param()));
            };
            Ok(built(PartData::FileData(FileData { mime_type: Cow::Borrowed(mime_type), file_uri: url }), None))
        }
        Source::Url { .. } => {
            Err(GatewayError::invalid("Only https:// URLs can be fetched by this model.").with_param(param()))
        }
        Source::File { .. } => Err(GatewayError::invalid(
            "Files uploaded to another provider cannot be used with this model; send the content inline.",
        )
        .with_param(param())),
    }
}

fn user_parts<'a>(
    message: &'a Message,
    i: usize,
    call_names: &HashMap<&'a str, &'a str>,
    dropped: &mut Vec<&'static str>,
) -> Result<Vec<OutPart<'a>>, GatewayError> {
    let mut parts = Vec::with_capacity(message.parts.len());
    for (j, part) in message.parts.iter().enumerate() {
        let param = || format!("messages[{i}].content[{j}]");
        match part {
            Part::ToolResult { call_id, name, content, is_error, .. } => {
                let name = match name.as_deref().or_else(|| call_names.get(call_id.as_str()).copied()) {
                    Some(name) => name,
                    None => {
                        return Err(GatewayError::invalid(format!(
                            "No earlier assistant turn has a tool call with id '{call_id}'; the provider needs the function's name."
                        ))
                        .with_param(format!("{}.tool_use_id", param())))
                    }
                };
                parts.push(built(PartData::FunctionResponse(function_response(name, content, *is_error)), None));
                // Gemini's functionResponse holds JSON only: images and documents a tool returned
                // follow it in the same turn.
                for (k, inner) in content.iter().enumerate() {
                    let inner_param = || format!("{}.content[{k}]", param());
                    if !matches!(inner, Part::Text { .. }) {
                        if let Some(p) = media(inner, &inner_param)? {
                            parts.push(p);
                        }
                    }
                }
            }
            Part::ToolCall { .. } => {
                return Err(GatewayError::invalid("Tool calls belong in assistant turns.").with_param(param()))
            }
            Part::Unknown { family: Family::Gemini, raw } => parts.push(OutPart::Raw(&raw.0)),
            Part::Unknown { .. } => note(dropped, "unknown_content"),
            // Reasoning in a user turn has nowhere to go.
            Part::Reasoning { .. } | Part::RedactedReasoning { .. } => {}
            _ => {
                if let Some(p) = media(part, &param)? {
                    parts.push(p);
                }
            }
        }
    }
    Ok(parts)
}

/// `functionResponse.response`: a tool's JSON-object output as is, other text under `output`
/// (the member Google documents); an error's content under `error` (there is no error flag).
fn function_response<'a>(name: &'a str, content: &[Part], is_error: bool) -> FunctionResponse<'a> {
    let mut text = String::new();
    for part in content {
        if let Part::Text { text: t, .. } = part {
            text.push_str(t);
        }
    }
    let parsed = serde_json::from_str::<Value>(&text).ok().filter(Value::is_object);
    let response = match (parsed, is_error) {
        (Some(object), false) => object,
        (Some(object), true) => serde_json::json!({ "error": object }),
        (None, false) => serde_json::json!({ "output": text }),
        (None, true) => serde_json::json!({ "error": text }),
    };
    FunctionResponse { name, response }
}

/// A model turn. A Gemini-signed reasoning part's signature goes on the next function call or
/// text part (where Gemini put it: the decoder places the reasoning right before that part);
/// one with nothing after it goes on the last text part, else on an empty text part.
fn model_parts<'a>(
    message: &'a Message,
    i: usize,
    call_names: &mut HashMap<&'a str, &'a str>,
    dropped: &mut Vec<&'static str>,
) -> Result<Vec<OutPart<'a>>, GatewayError> {
    let mut parts = Vec::with_capacity(message.parts.len());
    let mut pending: Option<&'a str> = None;
    let signed_turn = message.parts.iter().any(|p| gemini_signature(p).is_some());
    let mut first_call = true;
    for (j, part) in message.parts.iter().enumerate() {
        let param = || format!("messages[{i}].content[{j}]");
        if let Some(signature) = gemini_signature(part) {
            if let Some(earlier) = pending.replace(signature) {
                parts.push(built(PartData::Text(Cow::Borrowed("")), Some(earlier)));
            }
            continue;
        }
        match part {
            Part::ToolCall { id, name, arguments, kind, .. } => {
                if *kind == ToolKind::Custom {
                    return Err(GatewayError::invalid(
                        "Free-form (custom) tool calls are not supported for this model.",
                    )
                    .with_param(param()));
                }
                let args = call_arguments(arguments, &param)?;
                call_names.insert(id, name);
                let mut signature = pending.take();
                if signature.is_none() && first_call && !signed_turn {
                    signature = Some(PLACEHOLDER_SIGNATURE);
                }
                first_call = false;
                parts.push(built(PartData::FunctionCall(FunctionCall { name, args }), signature));
            }
            Part::Text { text, .. } if text.is_empty() && pending.is_none() => {}
            Part::Text { text, .. } => parts.push(built(PartData::Text(Cow::Borrowed(text)), pending.take())),
            Part::Reasoning { .. } | Part::RedactedReasoning { .. } => {}
            Part::ToolResult { .. } => {
                return Err(GatewayError::invalid("Tool results belong in user turns.").with_param(param()))
            }
            Part::Unknown { family: Family::Gemini, raw } => parts.push(OutPart::Raw(&raw.0)),
            Part::Unknown { .. } => note(dropped, "unknown_content"),
            _ => {
                if let Some(p) = media(part, &param)? {
                    parts.push(p);
                }
            }
        }
    }
    if let Some(signature) = pending {
        // A signature after the turn's last part: Gemini streams end with it on an empty text
        // part, and signs the last text part of the same answer unstreamed. Gemini refuses empty
        // text parts in a request, so it goes on the last unsigned text part when there is one.
        let last_text = parts.iter_mut().rev().find_map(|p| match p {
            OutPart::Built(SignedPart { data: PartData::Text(_), thought_signature }) => Some(thought_signature),
            _ => None,
        });
        match last_text {
            Some(slot @ None) => *slot = Some(signature),
            _ => parts.push(built(PartData::Text(Cow::Borrowed("")), Some(signature))),
        }
    }
    Ok(parts)
}

/// The Gemini signature a reasoning part carries; other families' reasoning is never sent here.
fn gemini_signature(part: &Part) -> Option<&str> {
    match part {
        Part::Reasoning { signature: Some(sig), .. } if sig.family == Family::Gemini => Some(&sig.data),
        _ => None,
    }
}

fn call_arguments<'a>(arguments: &'a str, param: &dyn Fn() -> String) -> Result<&'a RawValue, GatewayError> {
    if arguments.trim().is_empty() {
        return serde_json::from_str("{}").map_err(internal);
    }
    match serde_json::from_str::<&RawValue>(arguments) {
        Ok(raw) if raw.get().starts_with('{') => Ok(raw),
        _ => Err(GatewayError::invalid("Tool call arguments must be a JSON object.").with_param(param())),
    }
}

fn tools(req: &Request) -> Result<Vec<Tool<'_>>, GatewayError> {
    let mut declarations = Vec::with_capacity(req.tools.len());
    for (i, tool) in req.tools.iter().enumerate() {
        if tool.kind == ToolKind::Custom {
            return Err(GatewayError::invalid("Free-form (custom) tools are not supported for this model.")
                .with_param(format!("tools[{i}]")));
        }
        let param = format!("tools[{i}].input_schema");
        let parameters = match &tool.input_schema {
            None => None,
            Some(raw) => {
                let value: Value = serde_json::from_str(raw.get()).map_err(|e| {
                    GatewayError::invalid(format!("The tool schema is not valid JSON: {e}")).with_param(&param)
                })?;
                match &value {
                    Value::Null => None,
                    Value::Object(m) if m.is_empty() => None,
                    Value::Object(_) => Some(schema::to_gemini(&value, &param)?),
                    _ => return Err(GatewayError::invalid("A tool schema must be a JSON object.").with_param(param)),
                }
            }
        };
        declarations.push(FunctionDeclaration {
            name: &tool.name,
            description: tool.description.as_deref(),
            parameters,
        });
    }
    if declarations.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![Tool { function_declarations: declarations }])
}

fn tool_config(req: &Request) -> Option<ToolConfig<'_>> {
    let (mode, allowed_function_names) = match req.tool_choice.as_ref()? {
        ToolChoice::Auto => ("AUTO", Vec::new()),
        ToolChoice::None => ("NONE", Vec::new()),
        ToolChoice::Required => ("ANY", Vec::new()),
        ToolChoice::Tool(name) => ("ANY", vec![name.as_str()]),
    };
    Some(ToolConfig { function_calling_config: FunctionCallingConfig { mode, allowed_function_names } })
}

/// A thinking budget for an effort level (the budgets the Chat → Gemini translator uses); an
/// unknown level lets the model decide.
fn effort_budget(effort: &str) -> i64 {
    match effort {
        "none" | "minimal" => 0,
        "low" => 1024,
        "medium" => 8192,
        "high" | "xhigh" | "max" => MAX_THINKING_BUDGET as i64,
        _ => -1,
    }
}

fn thinking(req: &Request) -> Option<ThinkingConfig> {
    let budget = match (&req.reasoning, &req.effort) {
        (Some(Reasoning::Disabled), _) => 0,
        (Some(Reasoning::Budget(n)), _) => i64::try_from((*n).min(MAX_THINKING_BUDGET)).unwrap_or(-1),
        (Some(Reasoning::Effort(e)), _) => effort_budget(e),
        (Some(Reasoning::Adaptive), Some(e)) => effort_budget(e),
        (Some(Reasoning::Adaptive), None) => -1,
        (None, Some(e)) => effort_budget(e),
        (None, None) => return None,
    };
    Some(ThinkingConfig { thinking_budget: budget, include_thoughts: budget != 0 })
}

fn generation_config(req: &Request, default_max_tokens: u64) -> Result<GenerationConfig<'_>, GatewayError> {
    let (response_mime_type, response_schema) = match &req.output_format {
        None => (None, None),
        Some(OutputFormat::JsonObject) => (Some("application/json"), None),
        Some(OutputFormat::JsonSchema { schema: raw, .. }) => {
            let param = "output_format.schema";
            let value: Value = serde_json::from_str(raw.get()).map_err(|e| {
                GatewayError::invalid(format!("The response schema is not valid JSON: {e}")).with_param(param)
            })?;
            (Some("application/json"), Some(schema::to_gemini(&value, param)?))
        }
    };
    Ok(GenerationConfig {
        max_output_tokens: req.max_output_tokens.or((default_max_tokens > 0).then_some(default_max_tokens)),
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        stop_sequences: req.stop.iter().map(String::as_str).collect(),
        response_mime_type,
        response_schema,
        thinking_config: thinking(req),
    })
}
