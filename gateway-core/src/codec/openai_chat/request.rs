//! [`Request`] → Chat Completions body. See the table in [`super`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::wire::{
    AudioOut, ChatMessage, ChatRequest, Content, CustomDef, CustomOut, FileOut, FunctionDef, FunctionOut, ImageUrl,
    JsonSchemaOut, Name, NamedChoice, PartOut, ResponseFormatOut, StreamOptions, ToolCallOut, ToolChoiceOut, ToolOut,
};
use crate::codec::{dropped_name, Encoded};
use crate::conversation::{
    Family, Message, OutputFormat, Part, Reasoning, Request, Role, Source, ToolChoice, ToolKind,
};
use crate::error::{ErrorKind, GatewayError};

/// OpenAI's path; Azure's callers replace [`Encoded::path`] with their deployment's.
pub const PATH: &str = "/v1/chat/completions";

/// Smallest thinking budget that maps to `medium`, and to `high` (as the Messages → Chat
/// translator maps them).
const MEDIUM_BUDGET: u64 = 4096;
const HIGH_BUDGET: u64 = 16384;

/// Extras of the OpenAI family that Chat Completions takes as they are; others (a Responses
/// client's `include`, `previous_response_id`...) would be a 400 there.
const CHAT_EXTRAS: &[&str] = &[
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "metadata",
    "prediction",
    "presence_penalty",
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
    "seed",
    "service_tier",
    "store",
    "top_logprobs",
    "verbosity",
    "web_search_options",
];

/// Prefix of a failed tool's output: Chat has no error flag, and the model should know.
pub const ERROR_PREFIX: &str = "Error: ";

/// Encodes `req` for Chat Completions `model` at [`PATH`].
pub fn encode_request(req: &Request, model: &str) -> Result<Encoded, GatewayError> {
    let mut dropped = Vec::new();
    let body = build(req, model, &mut dropped)?;
    let mut out = Vec::with_capacity(4096);
    serde_json::to_writer(&mut out, &body)
        .map_err(|e| GatewayError::new(ErrorKind::Internal, format!("could not encode the provider request: {e}")))?;
    Ok(Encoded {
        path: PATH.to_owned(),
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

fn message<'a>(role: &'static str, content: Option<Content<'a>>) -> ChatMessage<'a> {
    ChatMessage { role, content, tool_calls: Vec::new(), tool_call_id: None }
}

/// One text part as a plain string, anything else as parts.
fn content(mut parts: Vec<PartOut<'_>>) -> Content<'_> {
    if parts.len() == 1 {
        if let Some(PartOut::Text { .. }) = parts.first() {
            if let Some(PartOut::Text { text }) = parts.pop() {
                return Content::Text(text);
            }
        }
    }
    Content::Parts(parts)
}

fn build<'a>(
    req: &'a Request,
    model: &'a str,
    dropped: &mut Vec<&'static str>,
) -> Result<ChatRequest<'a>, GatewayError> {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    for (i, m) in req.messages.iter().enumerate() {
        match m.role {
            Role::System => messages.push(message("system", Some(instructions(m, i)?))),
            Role::Developer => messages.push(message("developer", Some(instructions(m, i)?))),
            Role::User => user_turn(m, i, &mut messages, dropped)?,
            Role::Assistant => assistant_turn(m, i, &mut messages, dropped)?,
        }
    }
    let tools = tools(req);
    let has_tools = !tools.is_empty();
    // OpenAI refuses tool_choice and parallel_tool_calls without tools.
    let tool_choice = if has_tools { req.tool_choice.as_ref().map(|c| tool_choice(c, req)) } else { None };
    let mut extras = BTreeMap::new();
    for extra in &req.extras {
        if extra.family == Family::OpenAi && CHAT_EXTRAS.contains(&extra.name.as_str()) {
            extras.insert(extra.name.as_str(), &*extra.value.0);
        } else {
            note(dropped, dropped_name(&extra.name));
        }
    }
    if req.top_k.is_some() {
        note(dropped, "top_k");
    }
    Ok(ChatRequest {
        model,
        messages,
        tools,
        tool_choice,
        parallel_tool_calls: if has_tools { req.parallel_tool_calls } else { None },
        max_completion_tokens: req.max_output_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        stop: req.stop.iter().map(String::as_str).collect(),
        stream: req.stream.then_some(true),
        // Usage is needed for accounting and for the client's own usage report.
        stream_options: req.stream.then_some(StreamOptions { include_usage: true }),
        response_format: req.output_format.as_ref().map(|f| match f {
            OutputFormat::JsonObject => ResponseFormatOut::JsonObject,
            OutputFormat::JsonSchema { name, schema, strict } => ResponseFormatOut::JsonSchema {
                json_schema: JsonSchemaOut {
                    name: name.as_deref().unwrap_or("output"),
                    schema: &schema.0,
                    strict: *strict,
                },
            },
        }),
        reasoning_effort: reasoning_effort(req, dropped),
        user: req.user.as_deref(),
        extras,
    })
}

/// A system or developer message: text only.
fn instructions(m: &Message, i: usize) -> Result<Content<'_>, GatewayError> {
    let mut parts = Vec::with_capacity(m.parts.len());
    for (j, part) in m.parts.iter().enumerate() {
        match part {
            Part::Text { text, .. } => parts.push(PartOut::Text { text: Cow::Borrowed(text) }),
            _ => {
                return Err(GatewayError::invalid("System messages may only contain text for this model.")
                    .with_param(format!("messages[{i}].content[{j}]")))
            }
        }
    }
    Ok(content(parts))
}

/// Text, images, documents and audio as Chat content parts.
fn media<'a>(part: &'a Part, param: &dyn Fn() -> String) -> Result<Option<PartOut<'a>>, GatewayError> {
    let unsupported = |why: &str| GatewayError::invalid(why.to_owned()).with_param(param());
    Ok(Some(match part {
        Part::Text { text, .. } => PartOut::Text { text: Cow::Borrowed(text) },
        Part::Image { source, .. } => {
            let url = match source {
                Source::Base64 { media_type, data } => Cow::Owned(format!("data:{media_type};base64,{data}")),
                Source::Url { url, .. } => Cow::Borrowed(url.as_str()),
                Source::Text { .. } | Source::File { .. } => {
                    return Err(unsupported(
                        "This image source is not supported for this model; send it inline or as a URL.",
                    ))
                }
            };
            PartOut::ImageUrl { image_url: ImageUrl { url } }
        }
        Part::Document { source, title, .. } => match source {
            Source::Text { data, .. } => PartOut::Text {
                text: match title {
                    Some(title) => Cow::Owned(format!("{title}\n\n{data}")),
                    None => Cow::Borrowed(data),
                },
            },
            Source::Base64 { media_type, data } if media_type == "application/pdf" => PartOut::File {
                file: FileOut {
                    filename: Some(title.as_deref().unwrap_or("document.pdf")),
                    file_data: Some(format!("data:{media_type};base64,{data}")),
                    file_id: None,
                },
            },
            Source::File { family: Family::OpenAi, id } => {
                PartOut::File { file: FileOut { filename: None, file_data: None, file_id: Some(id) } }
            }
            _ => return Err(unsupported("Only PDF and text documents sent inline are supported for this model.")),
        },
        Part::Audio { data, format } => PartOut::InputAudio { input_audio: AudioOut { data, format } },
        _ => return Ok(None),
    }))
}

/// A user turn: its tool results first, as `tool` messages (Chat wants them right after the
/// assistant's calls), then what the tools returned besides text as a user message (a tool
/// message holds text only), then the rest of the turn as one user message.
fn user_turn<'a>(
    m: &'a Message,
    i: usize,
    out: &mut Vec<ChatMessage<'a>>,
    dropped: &mut Vec<&'static str>,
) -> Result<(), GatewayError> {
    let mut parts = Vec::with_capacity(m.parts.len());
    let mut tool_media: Vec<PartOut<'a>> = Vec::new();
    for (j, part) in m.parts.iter().enumerate() {
        let param = || format!("messages[{i}].content[{j}]");
        match part {
            Part::ToolResult { call_id, content: result, is_error, .. } => {
                let mut text = String::new();
                if *is_error {
                    text.push_str(ERROR_PREFIX);
                }
                let mut media_parts = Vec::new();
                for (k, inner) in result.iter().enumerate() {
                    let inner_param = || format!("{}.content[{k}]", param());
                    match inner {
                        Part::Text { text: t, .. } => text.push_str(t),
                        other => media_parts.extend(media(other, &inner_param)?),
                    }
                }
                if !media_parts.is_empty() {
                    tool_media
                        .push(PartOut::Text { text: Cow::Owned(format!("Content returned by tool call {call_id}:")) });
                    tool_media.append(&mut media_parts);
                }
                out.push(ChatMessage {
                    role: "tool",
                    content: Some(Content::Text(Cow::Owned(text))),
                    tool_calls: Vec::new(),
                    tool_call_id: Some(call_id),
                });
            }
            Part::ToolCall { .. } => {
                return Err(GatewayError::invalid("Tool calls belong in assistant turns.").with_param(param()))
            }
            Part::Reasoning { .. } | Part::RedactedReasoning { .. } => {}
            Part::Unknown { .. } => note(dropped, "unknown_content"),
            _ => parts.extend(media(part, &param)?),
        }
    }
    if !tool_media.is_empty() {
        out.push(message("user", Some(Content::Parts(tool_media))));
    }
    if !parts.is_empty() {
        out.push(message("user", Some(content(parts))));
    }
    Ok(())
}

/// An assistant turn: text → content, calls → `tool_calls`; reasoning of any family is dropped
/// (Chat Completions cannot take it back).
fn assistant_turn<'a>(
    m: &'a Message,
    i: usize,
    out: &mut Vec<ChatMessage<'a>>,
    dropped: &mut Vec<&'static str>,
) -> Result<(), GatewayError> {
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    for (j, part) in m.parts.iter().enumerate() {
        match part {
            Part::Text { text, .. } if text.is_empty() => {}
            Part::Text { text, .. } => texts.push(PartOut::Text { text: Cow::Borrowed(text) }),
            Part::ToolCall { id, name, arguments, kind: ToolKind::Function, .. } => calls.push(ToolCallOut::Function {
                id,
                function: FunctionOut { name, arguments: if arguments.trim().is_empty() { "{}" } else { arguments } },
            }),
            Part::ToolCall { id, name, arguments, kind: ToolKind::Custom, .. } => {
                calls.push(ToolCallOut::Custom { id, custom: CustomOut { name, input: arguments } })
            }
            Part::Reasoning { .. } | Part::RedactedReasoning { .. } => {}
            Part::Unknown { .. } => note(dropped, "unknown_content"),
            _ => {
                return Err(GatewayError::invalid("Assistant turns may only hold text and tool calls for this model.")
                    .with_param(format!("messages[{i}].content[{j}]")))
            }
        }
    }
    // A turn that only held reasoning says nothing Chat can take.
    if texts.is_empty() && calls.is_empty() {
        return Ok(());
    }
    out.push(ChatMessage {
        role: "assistant",
        content: (!texts.is_empty()).then(|| content(texts)),
        tool_calls: calls,
        tool_call_id: None,
    });
    Ok(())
}

fn tools(req: &Request) -> Vec<ToolOut<'_>> {
    req.tools
        .iter()
        .map(|tool| match tool.kind {
            ToolKind::Function => ToolOut::Function {
                function: FunctionDef {
                    name: &tool.name,
                    description: tool.description.as_deref(),
                    parameters: tool.input_schema.as_ref().map(|s| &*s.0),
                    strict: tool.strict,
                },
            },
            ToolKind::Custom => {
                ToolOut::Custom { custom: CustomDef { name: &tool.name, description: tool.description.as_deref() } }
            }
        })
        .collect()
}

fn tool_choice<'a>(choice: &'a ToolChoice, req: &Request) -> ToolChoiceOut<'a> {
    match choice {
        ToolChoice::Auto => ToolChoiceOut::Mode("auto"),
        ToolChoice::Required => ToolChoiceOut::Mode("required"),
        ToolChoice::None => ToolChoiceOut::Mode("none"),
        ToolChoice::Tool(name) => {
            let custom = req.tools.iter().any(|t| t.name == *name && t.kind == ToolKind::Custom);
            let name = Name { name };
            ToolChoiceOut::Named(if custom {
                NamedChoice::Custom { custom: name }
            } else {
                NamedChoice::Function { function: name }
            })
        }
    }
}

/// `reasoning_effort`: an effort as given (`max` → `high`), a thinking budget by size; no
/// member when thinking is off or the model decides without an effort.
fn reasoning_effort<'a>(req: &'a Request, dropped: &mut Vec<&'static str>) -> Option<&'a str> {
    let effort: &str = match (&req.reasoning, &req.effort) {
        (Some(Reasoning::Disabled), _) => return None,
        (Some(Reasoning::Budget(n)), _) => {
            return Some(if *n < MEDIUM_BUDGET {
                "low"
            } else if *n < HIGH_BUDGET {
                "medium"
            } else {
                "high"
            })
        }
        (Some(Reasoning::Effort(e)), _) | (_, Some(e)) => e,
        _ => return None,
    };
    match effort {
        "none" | "minimal" | "low" | "medium" | "high" | "xhigh" => Some(effort),
        "max" => Some("high"),
        _ => {
            note(dropped, "reasoning_effort");
            None
        }
    }
}
