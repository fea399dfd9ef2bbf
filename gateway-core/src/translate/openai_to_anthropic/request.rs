//! OpenAI Chat Completions request → Anthropic Messages request. The output borrows every text,
//! schema and argument from the parsed client request: nothing big is copied.

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::api::anthropic::{
    self as an, ContentBlock, ImageSource, Message, MessagesRequest, Metadata, SystemPrompt, TextBlock, Thinking,
    ToolResultContent,
};
use crate::api::openai::{
    ChatCompletionRequest, ChatMessage, ContentPart, MessageContent, PartType, Role, Stop, ToolChoice,
};
use crate::error::{ErrorKind, GatewayError};

/// The schema Anthropic gets for a function without parameters: it requires an object schema.
const EMPTY_OBJECT_SCHEMA: &str = r#"{"type":"object","properties":{}}"#;
const EMPTY_OBJECT: &str = "{}";

/// Smallest thinking budget Anthropic accepts.
const MIN_THINKING_BUDGET: u32 = 1024;

/// Builds the Anthropic request for `model`. `default_max_tokens` fills Anthropic's required
/// `max_tokens` when the client set neither `max_tokens` nor `max_completion_tokens`.
pub fn to_anthropic<'a>(
    req: &'a ChatCompletionRequest<'a>,
    model: &'a str,
    default_max_tokens: u32,
) -> Result<MessagesRequest<'a>, GatewayError> {
    reject_unsupported(req)?;
    let max_tokens = req.max_completion_tokens.or(req.max_tokens).unwrap_or(default_max_tokens);

    let mut system: Vec<Cow<'a, str>> = Vec::new();
    let mut messages: Vec<Message<'a>> = Vec::with_capacity(req.messages.len());
    for (i, message) in req.messages.iter().enumerate() {
        match message.role {
            Role::System | Role::Developer => system_texts(message, i, &mut system)?,
            Role::User => {
                let blocks = user_blocks(message, i)?;
                push_turn(&mut messages, an::Role::User, blocks);
            }
            Role::Assistant => {
                let blocks = assistant_blocks(message, i)?;
                // An assistant turn with nothing in it (empty text, no calls) is an Anthropic 400.
                if !blocks.is_empty() {
                    push_turn(&mut messages, an::Role::Assistant, blocks);
                }
            }
            Role::Tool => {
                let block = tool_result(message, i)?;
                push_turn(&mut messages, an::Role::User, vec![block]);
            }
            Role::Function => {
                return Err(GatewayError::invalid(
                    "Messages with role 'function' (legacy function calling) are not supported for this model; use tools and role 'tool'.",
                )
                .with_param(format!("messages[{i}].role")))
            }
        }
    }

    if let Some(instruction) = response_format_instruction(req)? {
        system.push(Cow::Owned(instruction));
    }
    let system = match system.len() {
        0 => None,
        1 => system.pop().map(SystemPrompt::Text),
        _ => Some(SystemPrompt::Blocks(system.into_iter().map(|text| TextBlock { text }).collect())),
    };

    let tools = tools(req)?;
    let tool_choice = if tools.is_empty() { None } else { tool_choice(req)? };

    Ok(MessagesRequest {
        model,
        max_tokens,
        system,
        messages,
        temperature: req.temperature,
        top_p: req.top_p,
        stop_sequences: match &req.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![&**s],
            Some(Stop::Many(v)) => v.iter().map(|s| &**s).collect(),
        },
        stream: req.stream.unwrap_or(false),
        metadata: req.user.as_deref().map(|user_id| Metadata { user_id }),
        tools,
        tool_choice,
        thinking: thinking(req, max_tokens)?,
    })
}

/// Fields whose silent loss would give the caller less than it asked for.
pub(crate) fn reject_unsupported(req: &ChatCompletionRequest<'_>) -> Result<(), GatewayError> {
    let unsupported = |param: &str, why: &str| {
        Err(GatewayError::invalid(format!("'{param}' is not supported for this model: {why}")).with_param(param))
    };
    if let Some(n) = req.n {
        if n != 1 {
            return unsupported("n", "only one choice (n = 1) can be generated");
        }
    }
    if req.logprobs == Some(true) {
        return unsupported("logprobs", "the provider does not return log probabilities");
    }
    if req.top_logprobs.unwrap_or(0) > 0 {
        return unsupported("top_logprobs", "the provider does not return log probabilities");
    }
    if req.logit_bias.is_some_and(|raw| !is_empty_object_or_null(raw)) {
        return unsupported("logit_bias", "the provider has no token biasing");
    }
    if req.modalities.as_ref().is_some_and(|m| m.iter().any(|m| &**m != "text")) {
        return unsupported("modalities", "only text output is available");
    }
    if req.audio.is_some_and(|raw| raw.get().trim() != "null") {
        return unsupported("audio", "only text output is available");
    }
    if req.web_search_options.is_some_and(|raw| raw.get().trim() != "null") {
        return unsupported("web_search_options", "web search is not translated");
    }
    if req.functions.is_some_and(|raw| raw.get().trim() != "null")
        || req.function_call.is_some_and(|raw| raw.get().trim() != "null")
    {
        return unsupported("functions", "legacy function calling is not translated; use tools");
    }
    Ok(())
}

/// `null`, `{}` or `{ }`: a schema or map that says nothing.
fn is_empty_object_or_null(raw: &RawValue) -> bool {
    let s = raw.get().trim();
    s == "null" || s.strip_prefix('{').and_then(|s| s.strip_suffix('}')).is_some_and(|inner| inner.trim().is_empty())
}

/// A constant JSON text as a `RawValue`; these constants are valid JSON, so this never fails.
fn static_raw(json: &'static str) -> Result<&'static RawValue, GatewayError> {
    serde_json::from_slice(json.as_bytes())
        .map_err(|_| GatewayError::new(ErrorKind::Internal, "invalid built-in JSON constant"))
}

/// Appends a message to the conversation, merging it into the previous turn when the role is the
/// same: Anthropic requires strict user/assistant alternation, OpenAI clients do not.
fn push_turn<'a>(messages: &mut Vec<Message<'a>>, role: an::Role, mut blocks: Vec<ContentBlock<'a>>) {
    match messages.last_mut() {
        Some(last) if last.role == role => last.content.append(&mut blocks),
        _ => messages.push(Message { role, content: blocks }),
    }
}

/// System and developer messages, wherever they appear, go to the top-level `system`.
fn system_texts<'a>(message: &'a ChatMessage<'a>, i: usize, out: &mut Vec<Cow<'a, str>>) -> Result<(), GatewayError> {
    match &message.content {
        None => {
            Err(GatewayError::invalid("A system message needs content.").with_param(format!("messages[{i}].content")))
        }
        Some(MessageContent::Text(text)) => {
            out.push(Cow::Borrowed(&**text));
            Ok(())
        }
        Some(MessageContent::Parts(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                out.push(Cow::Borrowed(part_text(part, i, j, "System messages may only contain text parts.")?));
            }
            Ok(())
        }
    }
}

/// The text of a part that must be a text part.
fn part_text<'a>(part: &'a ContentPart<'a>, i: usize, j: usize, wrong_type: &str) -> Result<&'a str, GatewayError> {
    let param = || format!("messages[{i}].content[{j}]");
    if part.kind != PartType::Text {
        return Err(GatewayError::invalid(wrong_type).with_param(param()));
    }
    match part.text.as_deref() {
        Some(text) => Ok(text),
        None => Err(GatewayError::invalid("A text part needs 'text'.").with_param(format!("{}.text", param()))),
    }
}

fn user_blocks<'a>(message: &'a ChatMessage<'a>, i: usize) -> Result<Vec<ContentBlock<'a>>, GatewayError> {
    match &message.content {
        None => {
            Err(GatewayError::invalid("A user message needs content.").with_param(format!("messages[{i}].content")))
        }
        Some(MessageContent::Text(text)) => Ok(vec![ContentBlock::Text { text }]),
        Some(MessageContent::Parts(parts)) => parts
            .iter()
            .enumerate()
            .map(|(j, part)| match part.kind {
                PartType::Text => part_text(part, i, j, "").map(|text| ContentBlock::Text { text }),
                PartType::ImageUrl => image(part, i, j),
                PartType::InputAudio | PartType::File | PartType::Refusal | PartType::Other => {
                    Err(GatewayError::invalid("Only text and image_url content parts are supported for this model.")
                        .with_param(format!("messages[{i}].content[{j}].type")))
                }
            })
            .collect(),
    }
}

/// An `image_url` part: data URLs become base64 sources, http(s) URLs URL sources.
fn image<'a>(part: &'a ContentPart<'a>, i: usize, j: usize) -> Result<ContentBlock<'a>, GatewayError> {
    let param = || format!("messages[{i}].content[{j}].image_url.url");
    let Some(image_url) = &part.image_url else {
        return Err(GatewayError::invalid("An image_url part needs 'image_url'.")
            .with_param(format!("messages[{i}].content[{j}].image_url")));
    };
    let url: &'a str = &image_url.url;
    if let Some(rest) = url.strip_prefix("data:") {
        let Some((meta, data)) = rest.split_once(',') else {
            return Err(GatewayError::invalid("Malformed data URL: no ',' before the data.").with_param(param()));
        };
        let Some(media_type) = meta.strip_suffix(";base64") else {
            return Err(GatewayError::invalid("Only base64 data URLs are supported for images.").with_param(param()));
        };
        return Ok(ContentBlock::Image { source: ImageSource::Base64 { media_type, data } });
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(ContentBlock::Image { source: ImageSource::Url { url } });
    }
    Err(GatewayError::invalid("Image URLs must be https:// URLs or base64 data URLs.").with_param(param()))
}

fn assistant_blocks<'a>(message: &'a ChatMessage<'a>, i: usize) -> Result<Vec<ContentBlock<'a>>, GatewayError> {
    let mut blocks = Vec::with_capacity(1 + message.tool_calls.as_ref().map_or(0, Vec::len));
    match &message.content {
        Some(MessageContent::Text(text)) if !text.is_empty() => blocks.push(ContentBlock::Text { text }),
        None | Some(MessageContent::Text(_)) => {}
        Some(MessageContent::Parts(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                // A refusal the model gave earlier is still what it said: replay it as text.
                let text = match part.kind {
                    PartType::Refusal => part.refusal.as_deref().unwrap_or_default(),
                    _ => part_text(part, i, j, "Assistant messages may only contain text and refusal parts.")?,
                };
                if !text.is_empty() {
                    blocks.push(ContentBlock::Text { text });
                }
            }
        }
    }
    for (j, call) in message.tool_calls.iter().flatten().enumerate() {
        let arguments = call.function.arguments.as_deref().unwrap_or_default();
        // Clients send "" for calls without arguments; Anthropic needs an object.
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
        blocks.push(ContentBlock::ToolUse { id: &call.id, name: &call.function.name, input });
    }
    Ok(blocks)
}

fn tool_result<'a>(message: &'a ChatMessage<'a>, i: usize) -> Result<ContentBlock<'a>, GatewayError> {
    let Some(tool_use_id) = message.tool_call_id.as_deref() else {
        return Err(GatewayError::invalid("A tool message needs 'tool_call_id'.")
            .with_param(format!("messages[{i}].tool_call_id")));
    };
    let content = match &message.content {
        None => ToolResultContent::Text(""),
        Some(MessageContent::Text(text)) => ToolResultContent::Text(text),
        Some(MessageContent::Parts(parts)) => ToolResultContent::Blocks(
            parts
                .iter()
                .enumerate()
                .map(|(j, part)| {
                    part_text(part, i, j, "Tool messages may only contain text parts.")
                        .map(|text| ContentBlock::Text { text })
                })
                .collect::<Result<_, _>>()?,
        ),
    };
    Ok(ContentBlock::ToolResult { tool_use_id, content })
}

fn tools<'a>(req: &'a ChatCompletionRequest<'a>) -> Result<Vec<an::Tool<'a>>, GatewayError> {
    let Some(tools) = &req.tools else { return Ok(Vec::new()) };
    tools
        .iter()
        .enumerate()
        .map(|(i, tool)| {
            if &*tool.kind != "function" {
                return Err(GatewayError::invalid("Only tools of type 'function' are supported for this model.")
                    .with_param(format!("tools[{i}].type")));
            }
            let Some(function) = &tool.function else {
                return Err(GatewayError::invalid("A function tool needs 'function'.")
                    .with_param(format!("tools[{i}].function")));
            };
            let input_schema = match function.parameters {
                None => static_raw(EMPTY_OBJECT_SCHEMA)?,
                Some(raw) if is_empty_object_or_null(raw) => static_raw(EMPTY_OBJECT_SCHEMA)?,
                Some(raw) if raw.get().starts_with('{') => raw,
                Some(_) => {
                    return Err(GatewayError::invalid("Function parameters must be a JSON schema object.")
                        .with_param(format!("tools[{i}].function.parameters")))
                }
            };
            Ok(an::Tool { name: &function.name, description: function.description.as_deref(), input_schema })
        })
        .collect()
}

fn tool_choice<'a>(req: &'a ChatCompletionRequest<'a>) -> Result<Option<an::ToolChoice<'a>>, GatewayError> {
    let disable_parallel_tool_use = (req.parallel_tool_calls == Some(false)).then_some(true);
    Ok(match &req.tool_choice {
        None => disable_parallel_tool_use.map(|d| an::ToolChoice::Auto { disable_parallel_tool_use: Some(d) }),
        Some(ToolChoice::Mode(mode)) => match &**mode {
            "none" => Some(an::ToolChoice::None),
            "auto" => Some(an::ToolChoice::Auto { disable_parallel_tool_use }),
            "required" => Some(an::ToolChoice::Any { disable_parallel_tool_use }),
            _ => {
                return Err(GatewayError::invalid(
                    "tool_choice must be 'none', 'auto', 'required' or a named function.",
                )
                .with_param("tool_choice"))
            }
        },
        Some(ToolChoice::Named(named)) => {
            Some(an::ToolChoice::Tool { name: &named.function.name, disable_parallel_tool_use })
        }
    })
}

/// See the module documentation of `openai_to_anthropic` for why JSON modes become instructions.
pub(crate) fn response_format_instruction(req: &ChatCompletionRequest<'_>) -> Result<Option<String>, GatewayError> {
    let Some(format) = &req.response_format else { return Ok(None) };
    match &*format.kind {
        "text" => Ok(None),
        "json_object" => {
            Ok(Some("Respond with a single valid JSON object and nothing else: no prose, no code fences.".to_owned()))
        }
        "json_schema" => {
            let schema = format.json_schema.as_ref().and_then(|s| s.schema).map(RawValue::get).unwrap_or("{}");
            let name = format.json_schema.as_ref().and_then(|s| s.name.as_deref()).unwrap_or("response");
            Ok(Some(format!(
                "Respond with a single valid JSON value and nothing else (no prose, no code fences). \
                 It must match this JSON Schema named \"{name}\": {schema}"
            )))
        }
        _ => Err(GatewayError::invalid("response_format.type must be 'text', 'json_object' or 'json_schema'.")
            .with_param("response_format.type")),
    }
}

/// Whether Anthropic would reject `req` for thinking: with thinking enabled, the last assistant
/// turn of a tool loop must start with its thinking block (signature included), and a Chat
/// Completions client has no way to send one back, so a last assistant turn with tool calls
/// carries none.
pub fn thinking_unreplayable(req: &MessagesRequest<'_>) -> bool {
    req.thinking.is_some()
        && req
            .messages
            .iter()
            .rev()
            .find(|m| m.role == an::Role::Assistant)
            .is_some_and(|m| m.content.iter().any(|b| matches!(b, ContentBlock::ToolUse { .. })))
}

/// Switches thinking off for this request when [`thinking_unreplayable`]; true when it did (the
/// caller names `thinking` in `x-ai-gateway-dropped`). Thinking comes back on the next turn that
/// does not continue a tool loop.
pub fn drop_unreplayable_thinking(req: &mut MessagesRequest<'_>) -> bool {
    let drop = thinking_unreplayable(req);
    if drop {
        req.thinking = None;
    }
    drop
}

/// See the module documentation of `openai_to_anthropic` for the effort → budget table.
pub(crate) fn thinking(req: &ChatCompletionRequest<'_>, max_tokens: u32) -> Result<Option<Thinking>, GatewayError> {
    let Some(effort) = req.reasoning_effort.as_deref() else { return Ok(None) };
    let budget: u32 = match effort {
        "none" | "minimal" => return Ok(None),
        "low" => 1024,
        "medium" => 4096,
        "high" => 16384,
        "xhigh" => 32768,
        _ => {
            return Err(GatewayError::invalid(
                "reasoning_effort must be one of none, minimal, low, medium, high, xhigh.",
            )
            .with_param("reasoning_effort"))
        }
    };
    // Anthropic requires budget_tokens < max_tokens.
    let budget = budget.min(max_tokens.saturating_sub(1));
    if budget < MIN_THINKING_BUDGET {
        return Err(GatewayError::invalid(format!(
            "reasoning_effort needs max_tokens above {MIN_THINKING_BUDGET} for this model (the thinking budget must fit inside it)."
        ))
        .with_param("reasoning_effort"));
    }
    Ok(Some(Thinking::Enabled { budget_tokens: budget }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn translate_with(body: &Value, default_max_tokens: u32) -> Result<Value, GatewayError> {
        let text = body.to_string();
        let req: ChatCompletionRequest<'_> = serde_json::from_slice(text.as_bytes()).unwrap();
        let out = to_anthropic(&req, "claude-real", default_max_tokens)?;
        Ok(serde_json::to_value(&out).unwrap())
    }

    fn translate(body: Value) -> Value {
        translate_with(&body, 4096).unwrap()
    }

    fn error(body: Value) -> GatewayError {
        translate_with(&body, 4096).unwrap_err()
    }

    fn user(text: &str) -> Value {
        json!({"role": "user", "content": text})
    }

    #[test]
    fn minimal_request_gets_target_model_default_max_tokens_and_text_blocks() {
        let out = translate(json!({"model": "alias", "messages": [user("hi")]}));
        assert_eq!(
            out,
            json!({"model": "claude-real", "max_tokens": 4096, "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]})
        );
        let out = translate_with(&json!({"model": "a", "messages": [user("hi")]}), 77).unwrap();
        assert_eq!(out["max_tokens"], 77);
    }

    #[test]
    fn max_completion_tokens_wins_over_max_tokens() {
        assert_eq!(translate(json!({"messages": [user("x")], "max_tokens": 10}))["max_tokens"], 10);
        assert_eq!(
            translate(json!({"messages": [user("x")], "max_tokens": 10, "max_completion_tokens": 20}))["max_tokens"],
            20
        );
    }

    #[test]
    fn sampling_stop_user_stream() {
        let out = translate(
            json!({"messages": [user("x")], "temperature": 0.3, "top_p": 0.9, "stop": "END", "user": "u-1", "stream": true, "stream_options": {"include_usage": true}}),
        );
        assert_eq!(out["temperature"], 0.3);
        assert_eq!(out["top_p"], 0.9);
        assert_eq!(out["stop_sequences"], json!(["END"]));
        assert_eq!(out["metadata"], json!({"user_id": "u-1"}));
        assert_eq!(out["stream"], true);
        assert!(out.get("stream_options").is_none());
        let out = translate(json!({"messages": [user("x")], "stop": ["a", "b"], "stream": false}));
        assert_eq!(out["stop_sequences"], json!(["a", "b"]));
        assert!(out.get("stream").is_none());
    }

    #[test]
    fn system_and_developer_messages_go_to_system() {
        let out = translate(json!({"messages": [{"role": "system", "content": "be brief"}, user("x")]}));
        assert_eq!(out["system"], "be brief");
        assert_eq!(out["messages"].as_array().unwrap().len(), 1);
        let out = translate(json!({"messages": [
            {"role": "system", "content": "one"},
            {"role": "developer", "content": [{"type": "text", "text": "two"}, {"type": "text", "text": "three"}]},
            user("x"),
        ]}));
        assert_eq!(
            out["system"],
            json!([{"type": "text", "text": "one"}, {"type": "text", "text": "two"}, {"type": "text", "text": "three"}])
        );
        let err = error(
            json!({"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}, user("x")]}),
        );
        assert_eq!(err.param.as_deref(), Some("messages[0].content[0]"));
    }

    #[test]
    fn multi_turn_history_alternates_and_same_roles_merge() {
        let out = translate(json!({"messages": [
            user("a"), user("b"),
            {"role": "assistant", "content": "c"},
            {"role": "assistant", "content": [{"type": "text", "text": "d"}]},
            {"role": "user", "content": [{"type": "text", "text": "e"}]},
        ]}));
        assert_eq!(
            out["messages"],
            json!([
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "c"}, {"type": "text", "text": "d"}]},
                {"role": "user", "content": [{"type": "text", "text": "e"}]},
            ])
        );
    }

    #[test]
    fn images_data_url_and_https() {
        let out = translate(json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "what?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
        ]}]}));
        assert_eq!(
            out["messages"][0]["content"],
            json!([
                {"type": "text", "text": "what?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
            ])
        );
        for url in ["ftp://x/y.png", "data:image/png,rawbytes", "data:image/png;base64"] {
            let err = error(
                json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]}),
            );
            assert_eq!(
                (err.status(), err.param.as_deref()),
                (400, Some("messages[0].content[0].image_url.url")),
                "{url}"
            );
        }
        let err =
            error(json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}));
        assert_eq!(err.param.as_deref(), Some("messages[0].content[0].type"));
    }

    #[test]
    fn tools_and_empty_schemas() {
        let out = translate(json!({"messages": [user("x")], "tools": [
            {"type": "function", "function": {"name": "a", "description": "does a", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}},
            {"type": "function", "function": {"name": "b"}},
            {"type": "function", "function": {"name": "c", "parameters": {}}},
        ]}));
        assert_eq!(
            out["tools"],
            json!([
                {"name": "a", "description": "does a", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}},
                {"name": "b", "input_schema": {"type": "object", "properties": {}}},
                {"name": "c", "input_schema": {"type": "object", "properties": {}}},
            ])
        );
        assert!(out.get("tool_choice").is_none());
        let err = error(json!({"messages": [user("x")], "tools": [{"type": "custom", "custom": {"name": "x"}}]}));
        assert_eq!(err.param.as_deref(), Some("tools[0].type"));
        let err = error(
            json!({"messages": [user("x")], "tools": [{"type": "function", "function": {"name": "x", "parameters": [1]}}]}),
        );
        assert_eq!(err.param.as_deref(), Some("tools[0].function.parameters"));
    }

    #[test]
    fn tool_choice_mapping() {
        let tools = json!([{"type": "function", "function": {"name": "f"}}]);
        for (choice, parallel, expected) in [
            (json!("none"), None, json!({"type": "none"})),
            (json!("auto"), None, json!({"type": "auto"})),
            (json!("required"), None, json!({"type": "any"})),
            (json!({"type": "function", "function": {"name": "f"}}), None, json!({"type": "tool", "name": "f"})),
            (json!("auto"), Some(false), json!({"type": "auto", "disable_parallel_tool_use": true})),
            (json!("required"), Some(false), json!({"type": "any", "disable_parallel_tool_use": true})),
            (json!("required"), Some(true), json!({"type": "any"})),
            (Value::Null, Some(false), json!({"type": "auto", "disable_parallel_tool_use": true})),
        ] {
            let mut body = json!({"messages": [user("x")], "tools": tools, "tool_choice": choice});
            if let Some(p) = parallel {
                body["parallel_tool_calls"] = json!(p);
            }
            assert_eq!(translate(body)["tool_choice"], expected, "{choice} {parallel:?}");
        }
        // Without tools there is nothing to choose from: the choice is dropped, not sent to fail.
        assert!(translate(json!({"messages": [user("x")], "tool_choice": "required"})).get("tool_choice").is_none());
        let err = error(json!({"messages": [user("x")], "tools": tools, "tool_choice": "sometimes"}));
        assert_eq!(err.param.as_deref(), Some("tool_choice"));
    }

    #[test]
    fn assistant_tool_calls_and_tool_results_merge_into_one_user_turn() {
        let out = translate(json!({"messages": [
            user("weather in Paris and Rome?"),
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "c2", "type": "function", "function": {"name": "w", "arguments": ""}},
            ]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "rainy"}]},
            user("thanks, and?"),
        ]}));
        assert_eq!(
            out["messages"],
            json!([
                {"role": "user", "content": [{"type": "text", "text": "weather in Paris and Rome?"}]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "c1", "name": "w", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "c2", "name": "w", "input": {}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "c1", "content": "sunny"},
                    {"type": "tool_result", "tool_use_id": "c2", "content": [{"type": "text", "text": "rainy"}]},
                    {"type": "text", "text": "thanks, and?"},
                ]},
            ])
        );
    }

    #[test]
    fn assistant_text_with_tool_calls_and_empty_assistant_dropped() {
        let out = translate(json!({"messages": [
            user("a"),
            {"role": "assistant", "content": "let me check", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c", "content": "ok"},
            {"role": "assistant", "content": ""},
            user("b"),
        ]}));
        let msgs = out["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[1]["content"][0], json!({"type": "text", "text": "let me check"}));
        assert_eq!(msgs[1]["content"][1]["type"], "tool_use");
        assert_eq!(msgs[2]["content"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn bad_tool_call_arguments_are_400_with_param() {
        for args in ["{not json", "[1,2]", "\"s\""] {
            let err = error(json!({"messages": [user("a"), {"role": "assistant", "tool_calls": [
                {"id": "ok", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": args}},
            ]}]}));
            assert_eq!(err.status(), 400);
            assert_eq!(err.param.as_deref(), Some("messages[1].tool_calls[1].function.arguments"), "{args}");
        }
        let err = error(json!({"messages": [{"role": "tool", "content": "x"}]}));
        assert_eq!(err.param.as_deref(), Some("messages[0].tool_call_id"));
    }

    #[test]
    fn unsupported_fields_rejected_or_dropped_per_table() {
        for (field, value, param) in [
            ("n", json!(2), "n"),
            ("n", json!(0), "n"),
            ("logprobs", json!(true), "logprobs"),
            ("top_logprobs", json!(3), "top_logprobs"),
            ("logit_bias", json!({"50256": -100}), "logit_bias"),
            ("modalities", json!(["text", "audio"]), "modalities"),
            ("audio", json!({"voice": "alloy"}), "audio"),
            ("web_search_options", json!({}), "web_search_options"),
            ("functions", json!([{"name": "f"}]), "functions"),
        ] {
            let mut body = json!({"messages": [user("x")]});
            body[field] = value;
            let err = error(body);
            assert_eq!((err.status(), err.param.as_deref()), (400, Some(param)), "{field}");
        }
        let out = translate(
            json!({"messages": [user("x")], "n": 1, "logprobs": false, "logit_bias": {}, "presence_penalty": 0.5,
            "frequency_penalty": 0.1, "seed": 7, "store": true, "metadata": {"a": "b"}, "modalities": ["text"], "some_future_field": [1]}),
        );
        let keys: Vec<&str> = out.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["max_tokens", "messages", "model"]);
        let err = error(json!({"messages": [{"role": "function", "name": "f", "content": "x"}]}));
        assert_eq!(err.param.as_deref(), Some("messages[0].role"));
    }

    #[test]
    fn response_format_becomes_a_system_instruction() {
        let out = translate(json!({"messages": [user("x")], "response_format": {"type": "text"}}));
        assert!(out.get("system").is_none());
        let out = translate(
            json!({"messages": [{"role": "system", "content": "sys"}, user("x")], "response_format": {"type": "json_object"}}),
        );
        let system = out["system"].as_array().unwrap();
        assert_eq!(system[0]["text"], "sys");
        assert!(system[1]["text"].as_str().unwrap().contains("JSON object"));
        let out = translate(
            json!({"messages": [user("x")], "response_format": {"type": "json_schema", "json_schema": {"name": "city", "schema": {"type": "object", "properties": {"c": {"type": "string"}}}}}}),
        );
        let text = out["system"].as_str().unwrap();
        let (_, schema) = text.split_once("named \"city\": ").unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(schema.as_bytes()).unwrap(),
            json!({"type": "object", "properties": {"c": {"type": "string"}}})
        );
        let err = error(json!({"messages": [user("x")], "response_format": {"type": "xml"}}));
        assert_eq!(err.param.as_deref(), Some("response_format.type"));
    }

    #[test]
    fn reasoning_effort_maps_to_thinking_budget() {
        let t = |effort: &str, max: u32| {
            translate(json!({"messages": [user("x")], "reasoning_effort": effort, "max_tokens": max}))["thinking"]
                .clone()
        };
        assert_eq!(t("low", 8000), json!({"type": "enabled", "budget_tokens": 1024}));
        assert_eq!(t("medium", 8000), json!({"type": "enabled", "budget_tokens": 4096}));
        assert_eq!(t("high", 8000), json!({"type": "enabled", "budget_tokens": 7999}));
        assert_eq!(t("minimal", 8000), Value::Null);
        let err = error(json!({"messages": [user("x")], "reasoning_effort": "high", "max_tokens": 1000}));
        assert_eq!(err.param.as_deref(), Some("reasoning_effort"));
        let err = error(json!({"messages": [user("x")], "reasoning_effort": "ultra"}));
        assert_eq!(err.param.as_deref(), Some("reasoning_effort"));
    }

    #[test]
    fn thinking_is_switched_off_only_when_the_last_assistant_turn_has_tool_calls() {
        let call = json!({"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]});
        let result = json!({"role": "tool", "tool_call_id": "c1", "content": "42"});
        let answer = json!({"role": "assistant", "content": "It is 42."});
        let run = |messages: Value| {
            let body = json!({"messages": messages, "reasoning_effort": "low", "max_tokens": 8000});
            let text = body.to_string();
            let req: ChatCompletionRequest<'_> = serde_json::from_str(&text).unwrap();
            let mut out = to_anthropic(&req, "claude-real", 4096).unwrap();
            let dropped = drop_unreplayable_thinking(&mut out);
            // The rule as Anthropic enforces it, checked on the request that would be sent.
            let sent = serde_json::to_value(&out).unwrap();
            let last_assistant =
                sent["messages"].as_array().unwrap().iter().rev().find(|m| m["role"] == "assistant").cloned();
            let tool_loop = last_assistant
                .is_some_and(|m| m["content"].as_array().unwrap().iter().any(|b| b["type"] == "tool_use"));
            let starts_with_thinking = false; // a Chat client never sends a thinking block back
            assert!(sent.get("thinking").is_none() || !tool_loop || starts_with_thinking, "{sent}");
            (dropped, sent.get("thinking").is_some())
        };
        // First turn and a plain follow-up: thinking stays on.
        assert_eq!(run(json!([user("x")])), (false, true));
        assert_eq!(run(json!([user("x"), call.clone(), result.clone(), answer, user("and now?")])), (false, true));
        // The turn that carries the tool result: thinking off, reported.
        assert_eq!(run(json!([user("x"), call.clone(), result.clone()])), (true, false));
        // Without reasoning_effort there is nothing to switch off.
        let body = json!({"messages": [user("x"), call, result]});
        let text = body.to_string();
        let req: ChatCompletionRequest<'_> = serde_json::from_str(&text).unwrap();
        let mut out = to_anthropic(&req, "claude-real", 4096).unwrap();
        assert!(!drop_unreplayable_thinking(&mut out));
    }

    #[test]
    fn texts_are_borrowed_from_the_body_not_copied() {
        let body = r#"{"messages":[{"role":"user","content":"plain text"},{"role":"user","content":"esc\"aped"}]}"#;
        let req: ChatCompletionRequest<'_> = serde_json::from_slice(body.as_bytes()).unwrap();
        match (&req.messages[0].content, &req.messages[1].content) {
            (Some(MessageContent::Text(a)), Some(MessageContent::Text(b))) => {
                assert!(matches!(a.0, Cow::Borrowed(_)));
                assert_eq!(&**b, "esc\"aped");
            }
            other => panic!("{other:?}"),
        }
    }
}
