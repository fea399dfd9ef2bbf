//! OpenAI Chat Completions request → Bedrock Converse request. Texts, schemas, arguments and
//! image bytes are borrowed from the parsed client request.

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::api::bedrock::{
    self as br, AdditionalFields, ContentBlock, ConverseRequest, Empty, ImageBlock, ImageSource, InferenceConfig,
    InputSchema, NamedTool, SystemBlock, Thinking, ToolConfig, ToolResultBlock, ToolResultContent, ToolSpec,
    ToolUseBlock,
};
use crate::api::openai::{
    ChatCompletionRequest, ChatMessage, ContentPart, MessageContent, PartType, Role, Stop, ToolChoice,
};
use crate::error::{ErrorKind, GatewayError};
use crate::translate::openai_to_anthropic::request::{reject_unsupported, response_format_instruction, thinking};

/// Bedrock rejects a tool without an object schema (an "empty tool spec"): this one is sent instead.
const EMPTY_OBJECT_SCHEMA: &str = r#"{"type":"object","properties":{}}"#;
const EMPTY_OBJECT: &str = "{}";

/// Whether the last assistant turn called tools: the request continues a tool loop.
fn continues_tool_loop(req: &ChatCompletionRequest<'_>) -> bool {
    req.messages
        .iter()
        .rev()
        .find(|m| m.role == Role::Assistant)
        .is_some_and(|m| m.tool_calls.as_ref().is_some_and(|calls| !calls.is_empty()))
}

/// Whether thinking the client asked for (`reasoning_effort`) is left out of this Converse request
/// because it continues a tool loop on Claude: Anthropic's rule is that an assistant tool-use turn
/// must come back with its signed thinking block when thinking is on, and a Chat client has no
/// field to carry it (the same rule as `openai_to_anthropic::request::thinking_unreplayable`).
pub fn thinking_unreplayable(req: &ChatCompletionRequest<'_>, model_id: &str) -> bool {
    let asked = req.reasoning_effort.as_deref().is_some_and(|e| !matches!(e, "none" | "minimal"));
    asked && model_id.contains("anthropic.claude") && continues_tool_loop(req)
}

/// Builds the Converse body. `default_max_tokens` is used only when thinking is on and the client
/// gave no limit (the thinking budget must fit under `maxTokens`); otherwise Bedrock's per-model
/// default applies.
pub fn to_bedrock<'a>(
    req: &'a ChatCompletionRequest<'a>,
    model_id: &str,
    default_max_tokens: u32,
) -> Result<ConverseRequest<'a>, GatewayError> {
    reject_unsupported(req)?;
    let mut system: Vec<SystemBlock<'a>> = Vec::new();
    let mut messages: Vec<br::Message<'a>> = Vec::with_capacity(req.messages.len());
    for (i, message) in req.messages.iter().enumerate() {
        match message.role {
            Role::System | Role::Developer => system_blocks(message, i, &mut system)?,
            Role::User => push_turn(&mut messages, br::Role::User, user_blocks(message, i)?),
            Role::Assistant => push_turn(&mut messages, br::Role::Assistant, assistant_blocks(message, i)?),
            Role::Tool => push_turn(&mut messages, br::Role::User, vec![tool_result(message, i)?]),
            Role::Function => {
                return Err(GatewayError::invalid(
                    "Messages with role 'function' (legacy function calling) are not supported for this model; use tools and role 'tool'.",
                )
                .with_param(format!("messages[{i}].role")))
            }
        }
    }
    if let Some(instruction) = response_format_instruction(req)? {
        system.push(SystemBlock { text: Cow::Owned(instruction) });
    }

    let explicit_max = req.max_completion_tokens.or(req.max_tokens);
    let is_claude = model_id.contains("anthropic.claude");
    // Extended thinking is a Claude feature on Bedrock; other models have no shared switch, so
    // the effort hint is dropped for them (the answer is still complete). In a tool loop Claude
    // requires the previous turn's signed thinking, which a Chat client cannot send back: the
    // turn goes without thinking rather than failing ([`thinking_unreplayable`]).
    let thinking = if is_claude && !continues_tool_loop(req) {
        thinking(req, explicit_max.unwrap_or(default_max_tokens))?
    } else {
        None
    };
    let max_tokens = if thinking.is_some() { Some(explicit_max.unwrap_or(default_max_tokens)) } else { explicit_max };

    Ok(ConverseRequest {
        tool_config: tool_config(req, &messages)?,
        messages,
        system,
        inference_config: InferenceConfig {
            max_tokens,
            // Claude rejects temperature/top_p changes while thinking; the caller's choice is kept
            // and Bedrock's 400 relayed, as with Anthropic.
            temperature: req.temperature,
            top_p: req.top_p,
            stop_sequences: match &req.stop {
                None => Vec::new(),
                Some(Stop::One(s)) => vec![&**s],
                Some(Stop::Many(v)) => v.iter().map(|s| &**s).collect(),
            },
        },
        additional_model_request_fields: thinking.map(|t| match t {
            crate::api::anthropic::Thinking::Enabled { budget_tokens } => {
                AdditionalFields { thinking: Some(Thinking { kind: "enabled", budget_tokens }) }
            }
        }),
    })
}

/// Appends blocks to the conversation, merging into the previous turn of the same role: Bedrock
/// requires alternating roles. Turns with no blocks are not sent (Bedrock rejects empty content).
fn push_turn<'a>(messages: &mut Vec<br::Message<'a>>, role: br::Role, mut blocks: Vec<ContentBlock<'a>>) {
    if blocks.is_empty() {
        return;
    }
    match messages.last_mut() {
        Some(last) if last.role == role => last.content.append(&mut blocks),
        _ => messages.push(br::Message { role, content: blocks }),
    }
}

fn part_text<'a>(part: &'a ContentPart<'a>, i: usize, j: usize, wrong_type: &str) -> Result<&'a str, GatewayError> {
    let param = || format!("messages[{i}].content[{j}]");
    if part.kind != PartType::Text {
        return Err(GatewayError::invalid(wrong_type).with_param(param()));
    }
    part.text
        .as_deref()
        .ok_or_else(|| GatewayError::invalid("A text part needs 'text'.").with_param(format!("{}.text", param())))
}

fn system_blocks<'a>(
    message: &'a ChatMessage<'a>,
    i: usize,
    out: &mut Vec<SystemBlock<'a>>,
) -> Result<(), GatewayError> {
    match &message.content {
        None => {
            Err(GatewayError::invalid("A system message needs content.").with_param(format!("messages[{i}].content")))
        }
        Some(MessageContent::Text(text)) => {
            if !text.is_empty() {
                out.push(SystemBlock { text: Cow::Borrowed(text) });
            }
            Ok(())
        }
        Some(MessageContent::Parts(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                let text = part_text(part, i, j, "System messages may only contain text parts.")?;
                if !text.is_empty() {
                    out.push(SystemBlock { text: Cow::Borrowed(text) });
                }
            }
            Ok(())
        }
    }
}

fn user_blocks<'a>(message: &'a ChatMessage<'a>, i: usize) -> Result<Vec<ContentBlock<'a>>, GatewayError> {
    match &message.content {
        None => {
            Err(GatewayError::invalid("A user message needs content.").with_param(format!("messages[{i}].content")))
        }
        // Bedrock rejects blank text blocks.
        Some(MessageContent::Text(text)) => {
            Ok(if text.is_empty() { Vec::new() } else { vec![ContentBlock::Text(text)] })
        }
        Some(MessageContent::Parts(parts)) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                match part.kind {
                    PartType::Text => {
                        let text = part_text(part, i, j, "")?;
                        if !text.is_empty() {
                            blocks.push(ContentBlock::Text(text));
                        }
                    }
                    PartType::ImageUrl => blocks.push(image(part, i, j)?),
                    PartType::InputAudio | PartType::File | PartType::Refusal | PartType::Other => {
                        return Err(GatewayError::invalid(
                            "Only text and image_url content parts are supported for this model.",
                        )
                        .with_param(format!("messages[{i}].content[{j}].type")))
                    }
                }
            }
            Ok(blocks)
        }
    }
}

/// Bedrock takes image bytes only: base64 data URLs of png, jpeg, gif or webp. It cannot fetch
/// URLs, and the gateway does not fetch them either (that would be a server-side request to an
/// address chosen by the client), so http(s) URLs are a 400.
fn image<'a>(part: &'a ContentPart<'a>, i: usize, j: usize) -> Result<ContentBlock<'a>, GatewayError> {
    let param = || format!("messages[{i}].content[{j}].image_url.url");
    let Some(image_url) = &part.image_url else {
        return Err(GatewayError::invalid("An image_url part needs 'image_url'.")
            .with_param(format!("messages[{i}].content[{j}].image_url")));
    };
    let url: &'a str = &image_url.url;
    let Some(rest) = url.strip_prefix("data:") else {
        return Err(GatewayError::invalid(
            "This model takes images only as base64 data URLs (data:image/png;base64,...); image links are not fetched.",
        )
        .with_param(param()));
    };
    let Some((meta, data)) = rest.split_once(',') else {
        return Err(GatewayError::invalid("Malformed data URL: no ',' before the data.").with_param(param()));
    };
    let Some(media_type) = meta.strip_suffix(";base64") else {
        return Err(GatewayError::invalid("Only base64 data URLs are supported for images.").with_param(param()));
    };
    let format = match media_type.to_ascii_lowercase().as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => return Err(GatewayError::invalid("Images must be png, jpeg, gif or webp.").with_param(param())),
    };
    Ok(ContentBlock::Image(ImageBlock { format, source: ImageSource { bytes: data } }))
}

/// A constant JSON text as a `RawValue`; the constants are valid JSON, so this never fails.
fn static_raw(json: &'static str) -> Result<&'static RawValue, GatewayError> {
    serde_json::from_slice(json.as_bytes())
        .map_err(|_| GatewayError::new(ErrorKind::Internal, "invalid built-in JSON constant"))
}

fn assistant_blocks<'a>(message: &'a ChatMessage<'a>, i: usize) -> Result<Vec<ContentBlock<'a>>, GatewayError> {
    let mut blocks = Vec::with_capacity(1 + message.tool_calls.as_ref().map_or(0, Vec::len));
    match &message.content {
        Some(MessageContent::Text(text)) if !text.is_empty() => blocks.push(ContentBlock::Text(text)),
        None | Some(MessageContent::Text(_)) => {}
        Some(MessageContent::Parts(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                let text = match part.kind {
                    PartType::Refusal => part.refusal.as_deref().unwrap_or_default(),
                    _ => part_text(part, i, j, "Assistant messages may only contain text and refusal parts.")?,
                };
                if !text.is_empty() {
                    blocks.push(ContentBlock::Text(text));
                }
            }
        }
    }
    for (j, call) in message.tool_calls.iter().flatten().enumerate() {
        let arguments = call.function.arguments.as_deref().unwrap_or_default();
        let input: &'a RawValue = if arguments.trim().is_empty() {
            static_raw(EMPTY_OBJECT)?
        } else {
            let param = || format!("messages[{i}].tool_calls[{j}].function.arguments");
            let raw: &'a RawValue = serde_json::from_slice(arguments.as_bytes()).map_err(|e| {
                GatewayError::invalid(format!("Tool call arguments are not valid JSON: {e}")).with_param(param())
            })?;
            if !raw.get().starts_with('{') {
                return Err(GatewayError::invalid("Tool call arguments must be a JSON object.").with_param(param()));
            }
            raw
        };
        blocks.push(ContentBlock::ToolUse(ToolUseBlock { tool_use_id: &call.id, name: &call.function.name, input }));
    }
    Ok(blocks)
}

fn tool_result<'a>(message: &'a ChatMessage<'a>, i: usize) -> Result<ContentBlock<'a>, GatewayError> {
    let Some(tool_use_id) = message.tool_call_id.as_deref() else {
        return Err(GatewayError::invalid("A tool message needs 'tool_call_id'.")
            .with_param(format!("messages[{i}].tool_call_id")));
    };
    let mut content = Vec::new();
    match &message.content {
        None => {}
        Some(MessageContent::Text(text)) => content.push(ToolResultContent::Text(text)),
        Some(MessageContent::Parts(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                content.push(ToolResultContent::Text(part_text(
                    part,
                    i,
                    j,
                    "Tool messages may only contain text parts.",
                )?));
            }
        }
    }
    // Bedrock needs at least one content member; an empty result is still a result.
    if content.is_empty() {
        content.push(ToolResultContent::Text(""));
    }
    Ok(ContentBlock::ToolResult(ToolResultBlock { tool_use_id, content }))
}

/// `null`, `{}` or `{ }`.
fn is_empty_object_or_null(raw: &RawValue) -> bool {
    let s = raw.get().trim();
    s == "null" || s.strip_prefix('{').and_then(|s| s.strip_suffix('}')).is_some_and(|inner| inner.trim().is_empty())
}

/// `toolConfig` from `tools` and `tool_choice`.
///
/// Bedrock refuses toolUse/toolResult blocks in the history unless `toolConfig` is present, while
/// OpenAI clients may drop `tools` on a follow-up turn: then every tool named in the history is
/// declared with an empty object schema. `tool_choice: "none"` has no Bedrock equivalent: the
/// tools are left out when the history allows it, else kept without a choice (best effort).
fn tool_config<'a>(
    req: &'a ChatCompletionRequest<'a>,
    messages: &[br::Message<'a>],
) -> Result<Option<ToolConfig<'a>>, GatewayError> {
    let mut tools = Vec::new();
    for (i, tool) in req.tools.iter().flatten().enumerate() {
        if &*tool.kind != "function" {
            return Err(GatewayError::invalid("Only tools of type 'function' are supported for this model.")
                .with_param(format!("tools[{i}].type")));
        }
        let Some(function) = &tool.function else {
            return Err(
                GatewayError::invalid("A function tool needs 'function'.").with_param(format!("tools[{i}].function"))
            );
        };
        let json = match function.parameters {
            None => static_raw(EMPTY_OBJECT_SCHEMA)?,
            Some(raw) if is_empty_object_or_null(raw) => static_raw(EMPTY_OBJECT_SCHEMA)?,
            Some(raw) if raw.get().starts_with('{') => raw,
            Some(_) => {
                return Err(GatewayError::invalid("Function parameters must be a JSON schema object.")
                    .with_param(format!("tools[{i}].function.parameters")))
            }
        };
        let description = function.description.as_deref().filter(|d| !d.is_empty());
        tools.push(br::Tool {
            tool_spec: ToolSpec { name: &function.name, description, input_schema: InputSchema { json } },
        });
    }
    let history_uses_tools = messages
        .iter()
        .flat_map(|m| &m.content)
        .any(|b| matches!(b, ContentBlock::ToolUse(_) | ContentBlock::ToolResult(_)));
    let mode = match &req.tool_choice {
        None => None,
        Some(ToolChoice::Mode(mode)) => match &**mode {
            "none" | "auto" | "required" => Some(&**mode),
            _ => {
                return Err(GatewayError::invalid(
                    "tool_choice must be 'none', 'auto', 'required' or a named function.",
                )
                .with_param("tool_choice"))
            }
        },
        Some(ToolChoice::Named(_)) => Some("named"),
    };
    if tools.is_empty() || mode == Some("none") {
        if !history_uses_tools {
            return Ok(None);
        }
        if tools.is_empty() {
            for message in messages {
                for block in &message.content {
                    if let ContentBlock::ToolUse(u) = block {
                        if !tools.iter().any(|t: &br::Tool<'_>| t.tool_spec.name == u.name) {
                            let json = static_raw(EMPTY_OBJECT_SCHEMA)?;
                            tools.push(br::Tool {
                                tool_spec: ToolSpec {
                                    name: u.name,
                                    description: None,
                                    input_schema: InputSchema { json },
                                },
                            });
                        }
                    }
                }
            }
            if tools.is_empty() {
                // Only tool results, no calls: nothing to declare; Bedrock's 400 is relayed.
                return Ok(None);
            }
        }
        return Ok(Some(ToolConfig { tools, tool_choice: None }));
    }
    let tool_choice = match (&req.tool_choice, mode) {
        (Some(ToolChoice::Named(named)), _) => Some(br::ToolChoice::Tool(NamedTool { name: &named.function.name })),
        (_, Some("required")) => Some(br::ToolChoice::Any(Empty {})),
        (_, Some("auto")) => Some(br::ToolChoice::Auto(Empty {})),
        _ => None,
    };
    Ok(Some(ToolConfig { tools, tool_choice }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn translate_for(body: &Value, model: &str) -> Result<Value, GatewayError> {
        let text = body.to_string();
        let req: ChatCompletionRequest<'_> = serde_json::from_slice(text.as_bytes()).unwrap();
        let out = to_bedrock(&req, model, 4096)?;
        Ok(serde_json::to_value(&out).unwrap())
    }

    fn translate(body: Value) -> Value {
        translate_for(&body, "us.amazon.nova-micro-v1:0").unwrap()
    }

    fn error(body: Value) -> GatewayError {
        translate_for(&body, "us.amazon.nova-micro-v1:0").unwrap_err()
    }

    fn user(text: &str) -> Value {
        json!({"role": "user", "content": text})
    }

    #[test]
    fn minimal_request_matches_the_recorded_shape() {
        let out = translate(
            json!({"model": "x", "messages": [{"role": "system", "content": "You are a chatbot."}, user("Hello!")]}),
        );
        assert_eq!(
            out,
            json!({"messages": [{"role": "user", "content": [{"text": "Hello!"}]}], "system": [{"text": "You are a chatbot."}]})
        );
    }

    #[test]
    fn inference_config() {
        let out = translate(
            json!({"messages": [user("x")], "max_tokens": 5, "temperature": 0.0, "top_p": 0.5, "stop": ["a", "b"], "user": "u", "seed": 3, "presence_penalty": 1}),
        );
        assert_eq!(
            out["inferenceConfig"],
            json!({"maxTokens": 5, "temperature": 0.0, "topP": 0.5, "stopSequences": ["a", "b"]})
        );
        assert_eq!(out.as_object().unwrap().len(), 2, "{out}");
        let out =
            translate(json!({"messages": [user("x")], "max_tokens": 5, "max_completion_tokens": 9, "stop": "END"}));
        assert_eq!(out["inferenceConfig"], json!({"maxTokens": 9, "stopSequences": ["END"]}));
    }

    #[test]
    fn tools_tool_calls_and_results() {
        let out = translate(json!({"messages": [
            user("weather?"),
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "w", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "t2", "type": "function", "function": {"name": "w", "arguments": ""}}]},
            {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "t2", "content": [{"type": "text", "text": "rainy"}]},
            user("thanks"),
        ], "tools": [
            {"type": "function", "function": {"name": "w", "description": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
            {"type": "function", "function": {"name": "empty", "parameters": {}}},
            {"type": "function", "function": {"name": "none"}},
        ], "tool_choice": "required"}));
        assert_eq!(
            out["messages"],
            json!([
                {"role": "user", "content": [{"text": "weather?"}]},
                {"role": "assistant", "content": [
                    {"toolUse": {"toolUseId": "t1", "name": "w", "input": {"city": "Paris"}}},
                    {"toolUse": {"toolUseId": "t2", "name": "w", "input": {}}}]},
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "t1", "content": [{"text": "sunny"}]}},
                    {"toolResult": {"toolUseId": "t2", "content": [{"text": "rainy"}]}},
                    {"text": "thanks"}]},
            ])
        );
        assert_eq!(
            out["toolConfig"],
            json!({"tools": [
            {"toolSpec": {"name": "w", "description": "weather", "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}}}},
            {"toolSpec": {"name": "empty", "inputSchema": {"json": {"type": "object", "properties": {}}}}},
            {"toolSpec": {"name": "none", "inputSchema": {"json": {"type": "object", "properties": {}}}}},
        ], "toolChoice": {"any": {}}})
        );
    }

    #[test]
    fn tool_choice_modes() {
        let tools = json!([{"type": "function", "function": {"name": "f"}}]);
        for (choice, expected) in [
            (json!("auto"), json!({"auto": {}})),
            (json!("required"), json!({"any": {}})),
            (json!({"type": "function", "function": {"name": "f"}}), json!({"tool": {"name": "f"}})),
        ] {
            let out = translate(
                json!({"messages": [user("x")], "tools": tools, "tool_choice": choice, "parallel_tool_calls": false}),
            );
            assert_eq!(out["toolConfig"]["toolChoice"], expected);
        }
        let out = translate(json!({"messages": [user("x")], "tools": tools}));
        assert!(out["toolConfig"].get("toolChoice").is_none());
        let out = translate(json!({"messages": [user("x")], "tools": tools, "tool_choice": "none"}));
        assert!(out.get("toolConfig").is_none());
        assert!(translate(json!({"messages": [user("x")], "tool_choice": "required"})).get("toolConfig").is_none());
        assert_eq!(
            error(json!({"messages": [user("x")], "tools": tools, "tool_choice": "maybe"})).param.as_deref(),
            Some("tool_choice")
        );
        assert_eq!(
            error(json!({"messages": [user("x")], "tools": [{"type": "custom"}]})).param.as_deref(),
            Some("tools[0].type")
        );
        assert_eq!(
            error(json!({"messages": [user("x")], "tools": [{"type": "function", "function": {"name": "f", "parameters": [1]}}]})).param.as_deref(),
            Some("tools[0].function.parameters")
        );
    }

    #[test]
    fn history_tools_are_declared_when_the_client_dropped_tools() {
        let out = translate(json!({"messages": [
            user("a"),
            {"role": "assistant", "tool_calls": [{"id": "t", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "t", "content": "42"},
        ], "tool_choice": "none"}));
        assert_eq!(
            out["toolConfig"],
            json!({"tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object", "properties": {}}}}}]})
        );
    }

    #[test]
    fn images_bytes_only() {
        let out = translate(json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "what?"},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
        ]}]}));
        assert_eq!(
            out["messages"][0]["content"][1],
            json!({"image": {"format": "jpeg", "source": {"bytes": "/9j/4AAQ"}}})
        );
        for url in
            ["https://example.com/a.png", "data:image/bmp;base64,AA==", "data:image/png,raw", "data:image/png;base64"]
        {
            let err = error(
                json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]}),
            );
            assert_eq!(
                (err.status(), err.param.as_deref()),
                (400, Some("messages[0].content[0].image_url.url")),
                "{url}"
            );
        }
    }

    #[test]
    fn same_roles_merge_and_blank_text_is_not_sent() {
        let out = translate(
            json!({"messages": [user("a"), user(""), user("b"), {"role": "assistant", "content": ""}, {"role": "assistant", "content": "c"}]}),
        );
        assert_eq!(
            out["messages"],
            json!([
                {"role": "user", "content": [{"text": "a"}, {"text": "b"}]},
                {"role": "assistant", "content": [{"text": "c"}]},
            ])
        );
    }

    #[test]
    fn unsupported_fields_are_400_and_response_format_is_an_instruction() {
        for (field, value) in [
            ("n", json!(3)),
            ("logprobs", json!(true)),
            ("logit_bias", json!({"1": 2})),
            ("audio", json!({})),
            ("functions", json!([])),
        ] {
            let mut body = json!({"messages": [user("x")]});
            body[field] = value;
            assert_eq!(error(body).status(), 400, "{field}");
        }
        let out = translate(json!({"messages": [user("x")], "response_format": {"type": "json_object"}}));
        assert!(out["system"][0]["text"].as_str().unwrap().contains("JSON object"));
        let err = error(json!({"messages": [{"role": "function", "content": "x"}]}));
        assert_eq!(err.param.as_deref(), Some("messages[0].role"));
    }

    #[test]
    fn reasoning_effort_is_claude_thinking_only() {
        let body = json!({"messages": [user("x")], "reasoning_effort": "low"});
        let out = translate_for(&body, "us.anthropic.claude-sonnet-4-20250514-v1:0").unwrap();
        assert_eq!(
            out["additionalModelRequestFields"],
            json!({"thinking": {"type": "enabled", "budget_tokens": 1024}})
        );
        assert_eq!(out["inferenceConfig"]["maxTokens"], 4096);
        let out = translate(body);
        assert!(out.get("additionalModelRequestFields").is_none());
        assert!(out.get("inferenceConfig").is_none());
    }

    #[test]
    fn thinking_is_off_for_a_turn_that_continues_a_tool_loop_on_claude() {
        let claude = "us.anthropic.claude-sonnet-4-20250514-v1:0";
        let call = json!({"role": "assistant", "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]});
        let result = json!({"role": "tool", "tool_call_id": "t1", "content": "ok"});
        let body = json!({"messages": [user("x"), call, result], "reasoning_effort": "low",
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]});
        // Claude's rule: the assistant tool-use turn would need its signed thinking block, which a
        // Chat client cannot send back, so this turn goes without thinking.
        let out = translate_for(&body, claude).unwrap();
        assert!(out.get("additionalModelRequestFields").is_none(), "{out}");
        let text = body.to_string();
        let req: ChatCompletionRequest<'_> = serde_json::from_str(&text).unwrap();
        assert!(thinking_unreplayable(&req, claude));
        assert!(!thinking_unreplayable(&req, "amazon.nova-pro-v1:0"));
        // The next turn that does not continue the loop thinks again.
        let body = json!({"messages": [user("x"), {"role": "assistant", "content": "done"}, user("again")], "reasoning_effort": "low"});
        let out = translate_for(&body, claude).unwrap();
        assert_eq!(out["additionalModelRequestFields"]["thinking"]["type"], json!("enabled"));
        let text = body.to_string();
        let req: ChatCompletionRequest<'_> = serde_json::from_str(&text).unwrap();
        assert!(!thinking_unreplayable(&req, claude));
    }
}
