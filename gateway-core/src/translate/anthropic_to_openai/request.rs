//! Anthropic Messages request → OpenAI Chat Completions request. Texts, schemas and tool inputs
//! are borrowed from the parsed client request; only base64 images are copied (into data URLs).

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::api::anthropic::{
    BlockIn, BlockTypeIn, ContentIn, ImageSourceIn, MessageIn, MessagesRequestIn, RoleIn, ToolChoiceIn,
};
use crate::api::openai::{
    ChatCompletionRequest, ChatMessage, ContentPart, FunctionCall, FunctionDefinition, ImageUrl, JsonSchemaFormat,
    MessageContent, NamedFunction, NamedToolChoice, PartType, ResponseFormat, Role, Stop, Str, StreamOptions, Tool,
    ToolCall, ToolChoice,
};
use crate::error::GatewayError;

/// Smallest thinking budget that maps to `medium`, and to `high` (the inverse of the OpenAI →
/// Anthropic mapping: low 1024, medium 4096, high 16384).
const MEDIUM_BUDGET: u64 = 4096;
const HIGH_BUDGET: u64 = 16384;

fn s(text: &str) -> Str<'_> {
    Str(Cow::Borrowed(text))
}

fn unsupported(param: impl Into<String>, why: &str) -> GatewayError {
    let param = param.into();
    GatewayError::invalid(format!("{param}: {why} is not supported for this model")).with_param(param)
}

/// Builds the Chat Completions request for `model`.
pub fn to_openai<'b>(
    req: &'b MessagesRequestIn<'_>,
    model: &'b str,
) -> Result<ChatCompletionRequest<'b>, GatewayError> {
    reject_unsupported(req)?;
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = &req.system {
        messages.push(ChatMessage {
            role: Role::System,
            content: Some(text_content(system, "system")?),
            tool_calls: None,
            tool_call_id: None,
        });
    }
    for (i, message) in req.messages.iter().enumerate() {
        match message.role {
            RoleIn::User => user_turn(message, i, &mut messages)?,
            RoleIn::Assistant => assistant_turn(message, i, &mut messages)?,
        }
    }
    let tools = tools(req)?;
    let (tool_choice, parallel_tool_calls) =
        if tools.is_some() { tool_choice(req.tool_choice.as_ref())? } else { (None, None) };
    let stream = req.stream == Some(true);
    Ok(ChatCompletionRequest {
        model: Some(s(model)),
        messages,
        max_completion_tokens: req.max_tokens.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
        temperature: req.temperature,
        top_p: req.top_p,
        stop: req
            .stop_sequences
            .as_ref()
            .filter(|v| !v.is_empty())
            .map(|v| Stop::Many(v.iter().map(|x| s(x)).collect())),
        user: req.metadata.as_ref().and_then(|m| m.user_id.as_deref()).map(s),
        stream: stream.then_some(true),
        // Usage is needed for accounting and for Anthropic's message_delta.
        stream_options: stream.then_some(StreamOptions { include_usage: Some(true) }),
        tools,
        tool_choice,
        parallel_tool_calls,
        response_format: response_format(req)?,
        reasoning_effort: reasoning_effort(req)?.map(s),
        ..Default::default()
    })
}

/// Known fields whose silent loss would give the caller less than it asked for.
fn reject_unsupported(req: &MessagesRequestIn<'_>) -> Result<(), GatewayError> {
    let present = |raw: Option<&RawValue>| raw.is_some_and(|r| r.get().trim() != "null");
    if present(req.container) {
        return Err(unsupported("container", "a code execution container"));
    }
    if present(req.mcp_servers) {
        return Err(unsupported("mcp_servers", "the MCP connector"));
    }
    if present(req.context_management) {
        return Err(unsupported("context_management", "server-side context management"));
    }
    Ok(())
}

/// `system`, or a tool result's content: a string, or text blocks only.
fn text_content<'b>(content: &'b ContentIn<'_>, param: &str) -> Result<MessageContent<'b>, GatewayError> {
    match content {
        ContentIn::Text(text) => Ok(MessageContent::Text(s(text))),
        ContentIn::Blocks(blocks) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (j, block) in blocks.iter().enumerate() {
                if block.kind != BlockTypeIn::Text {
                    return Err(unsupported(format!("{param}[{j}].type"), "a non-text block here"));
                }
                parts.push(text_part(block.text.as_deref().unwrap_or_default()));
            }
            Ok(match parts.len() {
                1 => MessageContent::Text(parts.pop().and_then(|p| p.text).unwrap_or_default()),
                _ => MessageContent::Parts(parts),
            })
        }
    }
}

/// [`text_content`] for content parsed on the spot (a tool result's): moves its texts.
fn owned_text_content<'b>(content: ContentIn<'b>, param: &str) -> Result<MessageContent<'b>, GatewayError> {
    match content {
        ContentIn::Text(text) => Ok(MessageContent::Text(text)),
        ContentIn::Blocks(blocks) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (j, block) in blocks.into_iter().enumerate() {
                if block.kind != BlockTypeIn::Text {
                    return Err(unsupported(format!("{param}[{j}].type"), "a non-text block here"));
                }
                parts.push(ContentPart {
                    kind: PartType::Text,
                    text: Some(block.text.unwrap_or_default()),
                    image_url: None,
                    refusal: None,
                });
            }
            Ok(match parts.len() {
                1 => MessageContent::Text(parts.pop().and_then(|p| p.text).unwrap_or_default()),
                _ => MessageContent::Parts(parts),
            })
        }
    }
}

fn text_part(text: &str) -> ContentPart<'_> {
    ContentPart { kind: PartType::Text, text: Some(s(text)), image_url: None, refusal: None }
}

/// A user turn: its tool results first (as `tool` messages), then the rest as one user message.
fn user_turn<'b>(message: &'b MessageIn<'_>, i: usize, out: &mut Vec<ChatMessage<'b>>) -> Result<(), GatewayError> {
    let blocks = match &message.content {
        ContentIn::Text(text) => {
            out.push(ChatMessage {
                role: Role::User,
                content: Some(MessageContent::Text(s(text))),
                tool_calls: None,
                tool_call_id: None,
            });
            return Ok(());
        }
        ContentIn::Blocks(blocks) => blocks,
    };
    let mut parts = Vec::with_capacity(blocks.len());
    for (j, block) in blocks.iter().enumerate() {
        let param = || format!("messages[{i}].content[{j}]");
        match block.kind {
            BlockTypeIn::Text => parts.push(text_part(block.text.as_deref().unwrap_or_default())),
            BlockTypeIn::Image => parts.push(image_part(block, &param())?),
            BlockTypeIn::ToolResult => {
                let Some(id) = block.tool_use_id.as_deref() else {
                    return Err(GatewayError::invalid(format!("{}.tool_use_id: Field required", param()))
                        .with_param(format!("{}.tool_use_id", param())));
                };
                let content = match block.content {
                    None => MessageContent::Text(s("")),
                    Some(raw) => {
                        let parsed: ContentIn<'b> = serde_json::from_slice(raw.get().as_bytes()).map_err(|e| {
                            GatewayError::invalid(format!("{}.content: {e}", param()))
                                .with_param(format!("{}.content", param()))
                        })?;
                        owned_text_content(parsed, &format!("{}.content", param()))?
                    }
                };
                out.push(ChatMessage {
                    role: Role::Tool,
                    content: Some(content),
                    tool_calls: None,
                    tool_call_id: Some(s(id)),
                });
            }
            BlockTypeIn::Thinking | BlockTypeIn::RedactedThinking => {}
            BlockTypeIn::Document => return Err(unsupported(format!("{}.type", param()), "a document block")),
            BlockTypeIn::ToolUse | BlockTypeIn::Other => {
                return Err(unsupported(format!("{}.type", param()), "this block type in a user turn"))
            }
        }
    }
    if !parts.is_empty() {
        let content = if parts.len() == 1 && parts.first().is_some_and(|p| p.kind == PartType::Text) {
            MessageContent::Text(parts.pop().and_then(|p| p.text).unwrap_or_default())
        } else {
            MessageContent::Parts(parts)
        };
        out.push(ChatMessage { role: Role::User, content: Some(content), tool_calls: None, tool_call_id: None });
    }
    Ok(())
}

/// An image block: base64 sources become data URLs, URL sources stay URLs.
fn image_part<'b>(block: &'b BlockIn<'_>, param: &str) -> Result<ContentPart<'b>, GatewayError> {
    let Some(raw) = block.source else {
        return Err(
            GatewayError::invalid(format!("{param}.source: Field required")).with_param(format!("{param}.source"))
        );
    };
    let source: ImageSourceIn<'b> = serde_json::from_slice(raw.get().as_bytes())
        .map_err(|e| GatewayError::invalid(format!("{param}.source: {e}")).with_param(format!("{param}.source")))?;
    let url: Str<'b> = match &*source.kind {
        "base64" => match (source.media_type.as_deref(), source.data.as_deref()) {
            (Some(media_type), Some(data)) => Str(Cow::Owned(format!("data:{media_type};base64,{data}"))),
            _ => {
                return Err(GatewayError::invalid(format!("{param}.source: media_type and data are required"))
                    .with_param(format!("{param}.source")))
            }
        },
        "url" => match source.url {
            Some(url) => url,
            None => {
                return Err(GatewayError::invalid(format!("{param}.source.url: Field required"))
                    .with_param(format!("{param}.source.url")))
            }
        },
        _ => return Err(unsupported(format!("{param}.source.type"), "this image source")),
    };
    Ok(ContentPart { kind: PartType::ImageUrl, text: None, image_url: Some(ImageUrl { url }), refusal: None })
}

/// An assistant turn: text → content, tool_use → tool_calls; earlier thinking is dropped.
fn assistant_turn<'b>(
    message: &'b MessageIn<'_>,
    i: usize,
    out: &mut Vec<ChatMessage<'b>>,
) -> Result<(), GatewayError> {
    let blocks = match &message.content {
        ContentIn::Text(text) if text.is_empty() => return Ok(()),
        ContentIn::Text(text) => {
            out.push(ChatMessage {
                role: Role::Assistant,
                content: Some(MessageContent::Text(s(text))),
                tool_calls: None,
                tool_call_id: None,
            });
            return Ok(());
        }
        ContentIn::Blocks(blocks) => blocks,
    };
    let mut texts: Vec<ContentPart<'b>> = Vec::new();
    let mut calls: Vec<ToolCall<'b>> = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let param = || format!("messages[{i}].content[{j}]");
        match block.kind {
            BlockTypeIn::Text => {
                if let Some(text) = block.text.as_deref().filter(|t| !t.is_empty()) {
                    texts.push(text_part(text));
                }
            }
            BlockTypeIn::ToolUse => {
                let (Some(id), Some(name)) = (block.id.as_deref(), block.name.as_deref()) else {
                    return Err(
                        GatewayError::invalid(format!("{}: tool_use needs id and name", param())).with_param(param())
                    );
                };
                // OpenAI wants the arguments as a string of JSON: the input's own text is that.
                let arguments = block.input.map(|raw| raw.get()).unwrap_or("{}");
                calls.push(ToolCall {
                    id: s(id),
                    kind: Some(s("function")),
                    function: FunctionCall { name: s(name), arguments: Some(s(arguments)) },
                });
            }
            BlockTypeIn::Thinking | BlockTypeIn::RedactedThinking => {}
            BlockTypeIn::Image | BlockTypeIn::Document | BlockTypeIn::ToolResult | BlockTypeIn::Other => {
                return Err(unsupported(format!("{}.type", param()), "this block type in an assistant turn"))
            }
        }
    }
    let content = match texts.len() {
        0 => None,
        1 => texts.pop().and_then(|p| p.text).map(MessageContent::Text),
        _ => Some(MessageContent::Parts(texts)),
    };
    // A turn that only held thinking says nothing OpenAI can take.
    if content.is_some() || !calls.is_empty() {
        out.push(ChatMessage {
            role: Role::Assistant,
            content,
            tool_calls: (!calls.is_empty()).then_some(calls),
            tool_call_id: None,
        });
    }
    Ok(())
}

fn tools<'b>(req: &'b MessagesRequestIn<'_>) -> Result<Option<Vec<Tool<'b>>>, GatewayError> {
    let Some(tools) = req.tools.as_ref().filter(|t| !t.is_empty()) else { return Ok(None) };
    tools
        .iter()
        .enumerate()
        .map(|(i, tool)| {
            match tool.kind.as_deref() {
                None | Some("custom") => {}
                Some(_) => return Err(unsupported(format!("tools[{i}].type"), "this server tool")),
            }
            let Some(schema) = tool.input_schema else {
                return Err(GatewayError::invalid(format!("tools[{i}].input_schema: Field required"))
                    .with_param(format!("tools[{i}].input_schema")));
            };
            Ok(Tool {
                kind: s("function"),
                function: Some(FunctionDefinition {
                    name: s(&tool.name),
                    description: tool.description.as_deref().map(s),
                    parameters: Some(schema),
                }),
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn tool_choice<'b>(
    choice: Option<&'b ToolChoiceIn<'_>>,
) -> Result<(Option<ToolChoice<'b>>, Option<bool>), GatewayError> {
    let Some(choice) = choice else { return Ok((None, None)) };
    let parallel = (choice.disable_parallel_tool_use == Some(true)).then_some(false);
    let mapped = match &*choice.kind {
        "auto" => ToolChoice::Mode(s("auto")),
        "any" => ToolChoice::Mode(s("required")),
        "none" => return Ok((Some(ToolChoice::Mode(s("none"))), None)),
        "tool" => match choice.name.as_deref() {
            Some(name) => ToolChoice::Named(NamedToolChoice {
                kind: Some(s("function")),
                function: NamedFunction { name: s(name) },
            }),
            None => {
                return Err(GatewayError::invalid("tool_choice.name: Field required").with_param("tool_choice.name"))
            }
        },
        _ => {
            return Err(GatewayError::invalid("tool_choice.type: must be auto, any, tool or none")
                .with_param("tool_choice.type"))
        }
    };
    Ok((Some(mapped), parallel))
}

fn reasoning_effort(req: &MessagesRequestIn<'_>) -> Result<Option<&'static str>, GatewayError> {
    if let Some(thinking) = &req.thinking {
        match &*thinking.kind {
            "enabled" => {
                let budget = thinking.budget_tokens.unwrap_or(0);
                return Ok(Some(if budget < MEDIUM_BUDGET {
                    "low"
                } else if budget < HIGH_BUDGET {
                    "medium"
                } else {
                    "high"
                }));
            }
            "disabled" | "adaptive" => {}
            _ => {
                return Err(GatewayError::invalid("thinking.type: must be enabled, disabled or adaptive")
                    .with_param("thinking.type"))
            }
        }
    }
    Ok(match req.output_config.as_ref().and_then(|c| c.effort.as_deref()) {
        None => None,
        Some("low") => Some("low"),
        Some("medium") => Some("medium"),
        Some("high") | Some("max") => Some("high"),
        Some("xhigh") => Some("xhigh"),
        Some(_) => {
            return Err(GatewayError::invalid("output_config.effort: must be low, medium, high, xhigh or max")
                .with_param("output_config.effort"))
        }
    })
}

fn response_format<'b>(req: &'b MessagesRequestIn<'_>) -> Result<Option<ResponseFormat<'b>>, GatewayError> {
    let Some(format) = &req.output_format else { return Ok(None) };
    match (&*format.kind, format.schema) {
        ("json_schema", Some(schema)) => Ok(Some(ResponseFormat {
            kind: s("json_schema"),
            json_schema: Some(JsonSchemaFormat { name: Some(s("output")), schema: Some(schema) }),
        })),
        _ => Err(unsupported("output_format", "this output format")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn translate(body: Value) -> Result<Value, GatewayError> {
        let text = body.to_string();
        let req: MessagesRequestIn<'_> =
            serde_json::from_slice(text.as_bytes()).map_err(|e| GatewayError::invalid(e.to_string()))?;
        let out = to_openai(&req, "gpt-real")?;
        Ok(serde_json::to_value(&out).unwrap())
    }

    fn base(extra: Value) -> Value {
        let mut body = json!({"model": "alias", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    }

    #[test]
    fn minimal_and_scalar_fields() {
        let out = translate(base(json!({"temperature": 0.2, "top_p": 0.9, "top_k": 5, "stop_sequences": ["END"], "metadata": {"user_id": "u1"}, "service_tier": "auto"}))).unwrap();
        assert_eq!(
            out,
            json!({"model": "gpt-real", "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 100,
            "temperature": 0.2, "top_p": 0.9, "stop": ["END"], "user": "u1"})
        );
    }

    #[test]
    fn system_blocks_images_and_tool_loop() {
        let out = translate(json!({"model": "a", "max_tokens": 10,
            "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}, {"type": "text", "text": "really"}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "what is this?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
                    {"type": "image", "source": {"type": "url", "url": "https://x/y.jpg"}}]},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "s"}, {"type": "text", "text": "checking"},
                    {"type": "tool_use", "id": "t1", "name": "look", "input": {"q": "x\ny"}}, {"type": "tool_use", "id": "t2", "name": "look", "input": {}}]},
                {"role": "user", "content": [{"type": "text", "text": "and?"}, {"type": "tool_result", "tool_use_id": "t1", "content": "found"},
                    {"type": "tool_result", "tool_use_id": "t2", "is_error": true, "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]},
            ]})).unwrap();
        assert_eq!(
            out["messages"],
            json!([
                {"role": "system", "content": [{"type": "text", "text": "be brief"}, {"type": "text", "text": "really"}]},
                {"role": "user", "content": [{"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
                    {"type": "image_url", "image_url": {"url": "https://x/y.jpg"}}]},
                {"role": "assistant", "content": "checking", "tool_calls": [
                    {"id": "t1", "type": "function", "function": {"name": "look", "arguments": "{\"q\":\"x\\ny\"}"}},
                    {"id": "t2", "type": "function", "function": {"name": "look", "arguments": "{}"}}]},
                {"role": "tool", "content": "found", "tool_call_id": "t1"},
                {"role": "tool", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "tool_call_id": "t2"},
                {"role": "user", "content": "and?"},
            ])
        );
        let args: Value = serde_json::from_slice(
            (out["messages"][2]["tool_calls"][0]["function"]["arguments"].as_str().unwrap()).as_bytes(),
        )
        .unwrap();
        assert_eq!(args, json!({"q": "x\ny"}));
    }

    #[test]
    fn tools_choice_and_parallelism() {
        let tools = json!([{"name": "f", "description": "does f", "input_schema": {"type": "object", "properties": {}}, "cache_control": {"type": "ephemeral"}}, {"type": "custom", "name": "g", "input_schema": {"type": "object"}}]);
        let out =
            translate(base(json!({"tools": tools, "tool_choice": {"type": "any", "disable_parallel_tool_use": true}})))
                .unwrap();
        assert_eq!(
            out["tools"],
            json!([
                {"type": "function", "function": {"name": "f", "description": "does f", "parameters": {"type": "object", "properties": {}}}},
                {"type": "function", "function": {"name": "g", "parameters": {"type": "object"}}},
            ])
        );
        assert_eq!(out["tool_choice"], "required");
        assert_eq!(out["parallel_tool_calls"], false);
        for (choice, expected) in [
            (json!({"type": "auto"}), json!("auto")),
            (json!({"type": "none"}), json!("none")),
            (json!({"type": "tool", "name": "g"}), json!({"type": "function", "function": {"name": "g"}})),
        ] {
            let out = translate(base(json!({"tools": tools, "tool_choice": choice}))).unwrap();
            assert_eq!(out["tool_choice"], expected);
            assert!(out.get("parallel_tool_calls").is_none());
        }
        let out = translate(base(json!({"tool_choice": {"type": "any"}}))).unwrap();
        assert!(out.get("tool_choice").is_none(), "no tools, no choice");
        let err =
            translate(base(json!({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}))).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("tools[0].type"));
        let err = translate(base(json!({"tools": tools, "tool_choice": {"type": "tool"}}))).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("tool_choice.name"));
    }

    #[test]
    fn thinking_and_effort_map_to_reasoning_effort() {
        for (thinking, expected) in [
            (json!({"type": "enabled", "budget_tokens": 1024}), json!("low")),
            (json!({"type": "enabled", "budget_tokens": 4096}), json!("medium")),
            (json!({"type": "enabled", "budget_tokens": 16384}), json!("high")),
            (json!({"type": "disabled"}), Value::Null),
        ] {
            assert_eq!(translate(base(json!({"thinking": thinking}))).unwrap()["reasoning_effort"], expected);
        }
        assert_eq!(translate(base(json!({"output_config": {"effort": "max"}}))).unwrap()["reasoning_effort"], "high");
        assert_eq!(
            translate(base(json!({"thinking": {"type": "sometimes"}}))).unwrap_err().param.as_deref(),
            Some("thinking.type")
        );
    }

    #[test]
    fn rejected_blocks_and_fields_name_the_param() {
        for (body, param) in [
            (base(json!({"container": "c1"})), "container"),
            (base(json!({"mcp_servers": [{"type": "url", "url": "https://x", "name": "x"}]})), "mcp_servers"),
            (base(json!({"context_management": {"edits": []}})), "context_management"),
            (base(json!({"output_format": {"type": "xml"}})), "output_format"),
            (
                base(
                    json!({"messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "text", "data": "x", "media_type": "text/plain"}}]}]}),
                ),
                "messages[0].content[0].type",
            ),
            (
                base(
                    json!({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}]}),
                ),
                "messages[0].content[0].source.type",
            ),
            (
                base(json!({"messages": [{"role": "user", "content": [{"type": "search_result", "source": "x"}]}]})),
                "messages[0].content[0].type",
            ),
            (
                base(
                    json!({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "image", "source": {"type": "url", "url": "https://x"}}]}]}]}),
                ),
                "messages[0].content[0].content[0].type",
            ),
        ] {
            let err = translate(body.clone()).unwrap_err();
            assert_eq!((err.status(), err.param.as_deref()), (400, Some(param)), "{body}");
        }
    }

    #[test]
    fn escaped_texts_are_read_and_plain_ones_borrowed() {
        let text = r#"{"model":"a","max_tokens":5,"messages":[{"role":"user","content":"line\none"},{"role":"assistant","content":"plain"}]}"#;
        let req: MessagesRequestIn<'_> = serde_json::from_slice(text.as_bytes()).unwrap();
        let out = to_openai(&req, "m").unwrap();
        match (&out.messages[0].content, &out.messages[1].content) {
            (Some(MessageContent::Text(a)), Some(MessageContent::Text(b))) => {
                assert_eq!(&**a, "line\none");
                assert!(matches!(b.0, Cow::Borrowed(_)));
            }
            other => panic!("{other:?}"),
        }
    }
}
