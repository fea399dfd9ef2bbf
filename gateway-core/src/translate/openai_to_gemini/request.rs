//! OpenAI Chat Completions request → Gemini `generateContent` request. Texts, data URLs and tool
//! arguments are borrowed from the parsed client request; schemas are rebuilt (see [`super::schema`]).

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::value::{to_raw_value, RawValue};
use serde_json::Value;

use super::schema;
use crate::api::gemini::{
    Blob, Content, FileData, FunctionCall, FunctionCallingConfig, FunctionDeclaration, FunctionResponse,
    GenerateContentRequest, GenerationConfig, Part, SignedPart, ThinkingConfig, Tool, ToolConfig,
};
use crate::api::openai::{
    ChatCompletionRequest, ChatMessage, ContentPart, MessageContent, PartType, Role, Stop, ToolChoice,
};
use crate::error::{ErrorKind, GatewayError};

/// Gemini's limit on `candidateCount`.
const MAX_CANDIDATES: u32 = 8;

/// The signature Google documents for function calls that Gemini did not produce in this
/// session (OpenAI clients never send Gemini's own signatures back); Gemini 3 rejects replayed
/// function calls without one, earlier models ignore it.
const REPLAYED_CALL_SIGNATURE: &str = "skip_thought_signature_validator";

/// Builds the Gemini request.
pub fn to_gemini<'a>(req: &'a ChatCompletionRequest<'a>) -> Result<GenerateContentRequest<'a>, GatewayError> {
    reject_unsupported(req)?;

    let mut system: Vec<SignedPart<'a>> = Vec::new();
    let mut contents: Vec<Content<'a>> = Vec::with_capacity(req.messages.len());
    // Gemini matches a function response to its call by name; OpenAI by id. Ids are resolved
    // in conversation order, so a synthesized id reused in a later turn maps to the newest call.
    let mut call_names: HashMap<&'a str, &'a str> = HashMap::new();
    for (i, message) in req.messages.iter().enumerate() {
        match message.role {
            Role::System | Role::Developer => system.extend(text_parts(message, i, "System messages may only contain text parts.")?),
            Role::User => push_turn(&mut contents, "user", user_parts(message, i)?),
            Role::Assistant => {
                let parts = assistant_parts(message, i, &mut call_names)?;
                // An empty model turn is a Gemini 400 ("contents.parts must not be empty").
                if !parts.is_empty() {
                    push_turn(&mut contents, "model", parts);
                }
            }
            Role::Tool => {
                let part = function_response(message, i, &call_names)?;
                push_turn(&mut contents, "user", vec![part.into()]);
            }
            Role::Function => {
                return Err(GatewayError::invalid(
                    "Messages with role 'function' (legacy function calling) are not supported for this model; use tools and role 'tool'.",
                )
                .with_param(format!("messages[{i}].role")))
            }
        }
    }

    let tools = tools(req)?;
    let tool_config = if tools.is_empty() { None } else { tool_config(req)? };
    Ok(GenerateContentRequest {
        contents,
        system_instruction: (!system.is_empty()).then_some(Content { role: None, parts: system }),
        tools,
        tool_config,
        generation_config: generation_config(req)?,
    })
}

/// Fields whose silent loss would give the caller less than it asked for.
fn reject_unsupported(req: &ChatCompletionRequest<'_>) -> Result<(), GatewayError> {
    let unsupported = |param: &str, why: &str| {
        Err(GatewayError::invalid(format!("'{param}' is not supported for this model: {why}")).with_param(param))
    };
    if let Some(n) = req.n {
        if n == 0 || n > MAX_CANDIDATES {
            return unsupported("n", "between 1 and 8 choices can be generated");
        }
    }
    if req.logprobs == Some(true) {
        return unsupported("logprobs", "log probabilities are not translated");
    }
    if req.top_logprobs.unwrap_or(0) > 0 {
        return unsupported("top_logprobs", "log probabilities are not translated");
    }
    if req.logit_bias.is_some_and(|raw| !is_empty_object_or_null(raw)) {
        return unsupported("logit_bias", "the provider has no token biasing");
    }
    if req.modalities.as_ref().is_some_and(|m| m.iter().any(|m| &**m != "text")) {
        return unsupported("modalities", "only text output is translated");
    }
    if req.audio.is_some_and(|raw| raw.get().trim() != "null") {
        return unsupported("audio", "only text output is translated");
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

fn is_empty_object_or_null(raw: &RawValue) -> bool {
    let s = raw.get().trim();
    s == "null" || s.strip_prefix('{').and_then(|s| s.strip_suffix('}')).is_some_and(|inner| inner.trim().is_empty())
}

/// Appends a turn, merging it into the previous one when the role is the same: parallel tool
/// results must share one turn, and Gemini expects alternating roles.
fn push_turn<'a>(contents: &mut Vec<Content<'a>>, role: &'static str, mut parts: Vec<SignedPart<'a>>) {
    match contents.last_mut() {
        Some(last) if last.role == Some(role) => last.parts.append(&mut parts),
        _ => contents.push(Content { role: Some(role), parts }),
    }
}

fn text_of<'a>(part: &'a ContentPart<'a>, i: usize, j: usize, wrong_type: &str) -> Result<&'a str, GatewayError> {
    let param = || format!("messages[{i}].content[{j}]");
    if part.kind != PartType::Text {
        return Err(GatewayError::invalid(wrong_type.to_owned()).with_param(param()));
    }
    part.text
        .as_deref()
        .ok_or_else(|| GatewayError::invalid("A text part needs 'text'.").with_param(format!("{}.text", param())))
}

fn text_parts<'a>(
    message: &'a ChatMessage<'a>,
    i: usize,
    wrong_type: &str,
) -> Result<Vec<SignedPart<'a>>, GatewayError> {
    match &message.content {
        None => Err(GatewayError::invalid("This message needs content.").with_param(format!("messages[{i}].content"))),
        Some(MessageContent::Text(text)) => Ok(vec![Part::Text(text).into()]),
        Some(MessageContent::Parts(parts)) => parts
            .iter()
            .enumerate()
            .map(|(j, part)| text_of(part, i, j, wrong_type).map(|t| Part::Text(t).into()))
            .collect(),
    }
}

fn user_parts<'a>(message: &'a ChatMessage<'a>, i: usize) -> Result<Vec<SignedPart<'a>>, GatewayError> {
    match &message.content {
        None => {
            Err(GatewayError::invalid("A user message needs content.").with_param(format!("messages[{i}].content")))
        }
        Some(MessageContent::Text(text)) => Ok(vec![Part::Text(text).into()]),
        Some(MessageContent::Parts(parts)) => parts
            .iter()
            .enumerate()
            .map(|(j, part)| match part.kind {
                PartType::Text => text_of(part, i, j, "").map(|t| Part::Text(t).into()),
                PartType::ImageUrl => image(part, i, j).map(Into::into),
                PartType::InputAudio | PartType::File | PartType::Refusal | PartType::Other => {
                    Err(GatewayError::invalid("Only text and image_url content parts are supported for this model.")
                        .with_param(format!("messages[{i}].content[{j}].type")))
                }
            })
            .collect(),
    }
}

/// The media type of an https image URL, from its extension (query and fragment ignored).
pub fn guess_image_mime(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let extension = path.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase())?;
    Some(match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        _ => return None,
    })
}

/// `image_url`: base64 data URLs → `inlineData`; https URLs with a known image extension →
/// `fileData` (Gemini fetches them); anything else is a 400 rather than a guess.
fn image<'a>(part: &'a ContentPart<'a>, i: usize, j: usize) -> Result<Part<'a>, GatewayError> {
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
        let Some(mime_type) = meta.strip_suffix(";base64").filter(|m| !m.is_empty()) else {
            return Err(GatewayError::invalid("Only base64 data URLs with a media type are supported for images.")
                .with_param(param()));
        };
        return Ok(Part::InlineData(Blob { mime_type, data }));
    }
    if url.starts_with("https://") {
        let Some(mime_type) = guess_image_mime(url) else {
            return Err(GatewayError::invalid(
                "The image type of this URL cannot be told from its extension (png, jpg, jpeg, webp, gif, heic, heif, pdf); send the image as a base64 data URL.",
            )
            .with_param(param()));
        };
        return Ok(Part::FileData(FileData { mime_type, file_uri: url }));
    }
    Err(GatewayError::invalid("Image URLs must be https:// URLs or base64 data URLs.").with_param(param()))
}

fn assistant_parts<'a>(
    message: &'a ChatMessage<'a>,
    i: usize,
    call_names: &mut HashMap<&'a str, &'a str>,
) -> Result<Vec<SignedPart<'a>>, GatewayError> {
    let mut parts: Vec<SignedPart<'a>> = Vec::new();
    match &message.content {
        Some(MessageContent::Text(text)) if !text.is_empty() => parts.push(Part::Text(text).into()),
        None | Some(MessageContent::Text(_)) => {}
        Some(MessageContent::Parts(content)) => {
            for (j, part) in content.iter().enumerate() {
                let text = match part.kind {
                    PartType::Refusal => part.refusal.as_deref().unwrap_or_default(),
                    _ => text_of(part, i, j, "Assistant messages may only contain text and refusal parts.")?,
                };
                if !text.is_empty() {
                    parts.push(Part::Text(text).into());
                }
            }
        }
    }
    for (j, call) in message.tool_calls.iter().flatten().enumerate() {
        let arguments = call.function.arguments.as_deref().unwrap_or_default();
        let param = || format!("messages[{i}].tool_calls[{j}].function.arguments");
        let args: &'a RawValue = if arguments.trim().is_empty() {
            static_raw("{}")?
        } else {
            let raw: &'a RawValue = serde_json::from_slice(arguments.as_bytes()).map_err(|e| {
                GatewayError::invalid(format!("Tool call arguments are not valid JSON: {e}")).with_param(param())
            })?;
            if !raw.get().starts_with('{') {
                return Err(GatewayError::invalid("Tool call arguments must be a JSON object.").with_param(param()));
            }
            raw
        };
        call_names.insert(&call.id, &call.function.name);
        parts.push(SignedPart {
            part: Part::FunctionCall(FunctionCall { name: &call.function.name, args }),
            thought_signature: Some(match super::response::signature_from_call_id(&call.id) {
                Some(signature) => std::borrow::Cow::Owned(signature),
                None => std::borrow::Cow::Borrowed(REPLAYED_CALL_SIGNATURE),
            }),
        });
    }
    Ok(parts)
}

fn static_raw(json: &'static str) -> Result<&'static RawValue, GatewayError> {
    serde_json::from_slice(json.as_bytes())
        .map_err(|_| GatewayError::new(ErrorKind::Internal, "invalid built-in JSON constant"))
}

/// A `tool` message → `functionResponse`. Its name comes from the assistant call with the same
/// id; the content becomes `response`: a JSON object as is, anything else as `{"content": text}`
/// (Gemini requires an object).
fn function_response<'a>(
    message: &'a ChatMessage<'a>,
    i: usize,
    call_names: &HashMap<&'a str, &'a str>,
) -> Result<Part<'a>, GatewayError> {
    let Some(id) = message.tool_call_id.as_deref() else {
        return Err(GatewayError::invalid("A tool message needs 'tool_call_id'.")
            .with_param(format!("messages[{i}].tool_call_id")));
    };
    let Some(&name) = call_names.get(id) else {
        return Err(GatewayError::invalid(format!(
            "No earlier assistant message has a tool call with id '{id}'; the provider needs the function's name."
        ))
        .with_param(format!("messages[{i}].tool_call_id")));
    };
    let text: Cow<'a, str> = match &message.content {
        None => Cow::Borrowed(""),
        Some(MessageContent::Text(text)) => Cow::Borrowed(text),
        Some(MessageContent::Parts(parts)) => {
            let mut joined = String::new();
            for (j, part) in parts.iter().enumerate() {
                joined.push_str(text_of(part, i, j, "Tool messages may only contain text parts.")?);
            }
            Cow::Owned(joined)
        }
    };
    let response: Cow<'a, RawValue> = match &text {
        Cow::Borrowed(t) if t.trim_start().starts_with('{') => {
            match serde_json::from_slice::<&'a RawValue>(t.as_bytes()) {
                Ok(raw) => Cow::Borrowed(raw),
                Err(_) => Cow::Owned(wrap_content(t)?),
            }
        }
        other => Cow::Owned(wrap_content(other)?),
    };
    Ok(Part::FunctionResponse(FunctionResponse { name, response }))
}

fn wrap_content(text: &str) -> Result<Box<RawValue>, GatewayError> {
    to_raw_value(&serde_json::json!({ "content": text }))
        .map_err(|e| GatewayError::new(ErrorKind::Internal, format!("could not encode a tool result: {e}")))
}

fn tools<'a>(req: &'a ChatCompletionRequest<'a>) -> Result<Vec<Tool<'a>>, GatewayError> {
    let Some(tools) = &req.tools else { return Ok(Vec::new()) };
    let mut declarations = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        if &*tool.kind != "function" {
            return Err(GatewayError::invalid("Only tools of type 'function' are supported for this model.")
                .with_param(format!("tools[{i}].type")));
        }
        let Some(function) = &tool.function else {
            return Err(
                GatewayError::invalid("A function tool needs 'function'.").with_param(format!("tools[{i}].function"))
            );
        };
        let param = format!("tools[{i}].function.parameters");
        let parameters = match function.parameters {
            None => None,
            Some(raw) if is_empty_object_or_null(raw) => None,
            Some(raw) if raw.get().starts_with('{') => {
                let value: Value = serde_json::from_slice(raw.get().as_bytes()).map_err(|e| {
                    GatewayError::invalid(format!("Function parameters are not valid JSON: {e}"))
                        .with_param(param.clone())
                })?;
                Some(schema::to_gemini(&value, &param)?)
            }
            Some(_) => {
                return Err(GatewayError::invalid("Function parameters must be a JSON schema object.").with_param(param))
            }
        };
        declarations.push(FunctionDeclaration {
            name: &function.name,
            description: function.description.as_deref(),
            parameters,
        });
    }
    if declarations.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![Tool { function_declarations: declarations }])
}

fn tool_config<'a>(req: &'a ChatCompletionRequest<'a>) -> Result<Option<ToolConfig<'a>>, GatewayError> {
    let config = |mode, allowed_function_names| {
        Some(ToolConfig { function_calling_config: FunctionCallingConfig { mode, allowed_function_names } })
    };
    Ok(match &req.tool_choice {
        None => None,
        Some(ToolChoice::Mode(mode)) => match &**mode {
            "auto" => config("AUTO", Vec::new()),
            "none" => config("NONE", Vec::new()),
            "required" => config("ANY", Vec::new()),
            other => {
                return Err(GatewayError::invalid(format!(
                    "Invalid tool_choice '{other}': expected 'none', 'auto', 'required' or a function."
                ))
                .with_param("tool_choice"))
            }
        },
        Some(ToolChoice::Named(named)) => config("ANY", vec![&*named.function.name]),
    })
}

/// OpenAI's `reasoning_effort` → a Gemini 2.5 thinking budget (`none`/`minimal` switch it off).
fn thinking(effort: &str) -> Result<ThinkingConfig, GatewayError> {
    let budget = match effort {
        "none" | "minimal" => 0,
        "low" => 1024,
        "medium" => 8192,
        "high" | "xhigh" => 24576,
        other => {
            return Err(GatewayError::invalid(format!(
                "Invalid reasoning_effort '{other}': expected none, minimal, low, medium or high."
            ))
            .with_param("reasoning_effort"))
        }
    };
    Ok(ThinkingConfig { thinking_budget: budget, include_thoughts: budget > 0 })
}

fn generation_config<'a>(req: &'a ChatCompletionRequest<'a>) -> Result<GenerationConfig<'a>, GatewayError> {
    let (response_mime_type, response_schema) = match &req.response_format {
        None => (None, None),
        Some(format) => match &*format.kind {
            "text" => (None, None),
            "json_object" => (Some("application/json"), None),
            "json_schema" => {
                let schema = match format.json_schema.as_ref().and_then(|s| s.schema) {
                    Some(raw) => {
                        let value: Value = serde_json::from_slice(raw.get().as_bytes()).map_err(|e| {
                            GatewayError::invalid(format!("The response schema is not valid JSON: {e}"))
                                .with_param("response_format.json_schema.schema")
                        })?;
                        Some(schema::to_gemini(&value, "response_format.json_schema.schema")?)
                    }
                    None => None,
                };
                (Some("application/json"), schema)
            }
            other => {
                return Err(GatewayError::invalid(format!("Invalid response_format type '{other}'."))
                    .with_param("response_format.type"))
            }
        },
    };
    Ok(GenerationConfig {
        max_output_tokens: req.max_completion_tokens.or(req.max_tokens),
        temperature: req.temperature,
        top_p: req.top_p,
        stop_sequences: match &req.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![&**s],
            Some(Stop::Many(v)) => v.iter().map(|s| &**s).collect(),
        },
        candidate_count: req.n.filter(|&n| n > 1),
        presence_penalty: req.presence_penalty,
        frequency_penalty: req.frequency_penalty,
        seed: req.seed,
        response_mime_type,
        response_schema,
        thinking_config: req.reasoning_effort.as_deref().map(thinking).transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn translate(body: Value) -> Result<Value, GatewayError> {
        let text = body.to_string();
        let req: ChatCompletionRequest<'_> = serde_json::from_slice(text.as_bytes()).unwrap();
        let out = to_gemini(&req)?;
        Ok(serde_json::to_value(&out).unwrap())
    }

    fn ok(body: Value) -> Value {
        translate(body).unwrap()
    }

    fn err(body: Value) -> GatewayError {
        translate(body).unwrap_err()
    }

    fn user(text: &str) -> Value {
        json!({"role": "user", "content": text})
    }

    #[test]
    fn minimal_request_and_system_instruction() {
        assert_eq!(
            ok(json!({"model": "x", "messages": [user("Hello!")]})),
            json!({"contents": [{"role": "user", "parts": [{"text": "Hello!"}]}]})
        );
        let out = ok(
            json!({"messages": [{"role": "system", "content": "You are a chatbot."}, {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]}, user("Hi")]}),
        );
        assert_eq!(out["systemInstruction"], json!({"parts": [{"text": "You are a chatbot."}, {"text": "Be brief."}]}));
        assert_eq!(out["contents"], json!([{"role": "user", "parts": [{"text": "Hi"}]}]));
    }

    #[test]
    fn generation_config_fields() {
        let out = ok(
            json!({"messages": [user("x")], "max_tokens": 5, "temperature": 0.0, "top_p": 0.5, "stop": ["A", "B"], "n": 3,
            "presence_penalty": 0.1, "frequency_penalty": 0.2, "seed": 42, "user": "dropped", "parallel_tool_calls": true}),
        );
        assert_eq!(
            out["generationConfig"],
            json!({"maxOutputTokens": 5, "temperature": 0.0, "topP": 0.5, "stopSequences": ["A", "B"],
            "candidateCount": 3, "presencePenalty": 0.1, "frequencyPenalty": 0.2, "seed": 42})
        );
        assert_eq!(
            ok(json!({"messages": [user("x")], "max_tokens": 5, "max_completion_tokens": 9, "stop": "END", "n": 1}))
                ["generationConfig"],
            json!({"maxOutputTokens": 9, "stopSequences": ["END"]})
        );
        let out = ok(json!({"messages": [user("x")], "reasoning_effort": "low"}));
        assert_eq!(out["generationConfig"]["thinkingConfig"], json!({"thinkingBudget": 1024, "includeThoughts": true}));
        assert_eq!(
            ok(json!({"messages": [user("x")], "reasoning_effort": "none"}))["generationConfig"]["thinkingConfig"]
                ["thinkingBudget"],
            0
        );
        assert_eq!(
            err(json!({"messages": [user("x")], "reasoning_effort": "max"})).param.as_deref(),
            Some("reasoning_effort")
        );
    }

    #[test]
    fn response_format_maps_to_mime_type_and_schema() {
        assert!(ok(json!({"messages": [user("x")], "response_format": {"type": "text"}}))
            .get("generationConfig")
            .is_none());
        assert_eq!(
            ok(json!({"messages": [user("x")], "response_format": {"type": "json_object"}}))["generationConfig"],
            json!({"responseMimeType": "application/json"})
        );
        let out = ok(
            json!({"messages": [user("x")], "response_format": {"type": "json_schema", "json_schema": {"name": "c", "strict": true,
            "schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}}}}),
        );
        assert_eq!(
            out["generationConfig"],
            json!({"responseMimeType": "application/json",
            "responseSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}})
        );
        assert_eq!(
            err(json!({"messages": [user("x")], "response_format": {"type": "yaml"}})).param.as_deref(),
            Some("response_format.type")
        );
    }

    #[test]
    fn tools_tool_choice_and_schema_cleanup() {
        let tools = json!([
            {"type": "function", "function": {"name": "get_capital", "description": "Get the capital.", "parameters": {"type": "object", "properties": {"country": {"type": "string"}}, "required": ["country"], "additionalProperties": false, "$schema": "x"}}},
            {"type": "function", "function": {"name": "noargs", "parameters": {}}},
        ]);
        let out = ok(json!({"messages": [user("x")], "tools": tools}));
        assert_eq!(
            out["tools"],
            json!([{"functionDeclarations": [
            {"name": "get_capital", "description": "Get the capital.", "parameters": {"type": "object", "properties": {"country": {"type": "string"}}, "required": ["country"]}},
            {"name": "noargs"}]}])
        );
        assert!(out.get("toolConfig").is_none());
        for (choice, expected) in [
            (json!("auto"), json!({"mode": "AUTO"})),
            (json!("none"), json!({"mode": "NONE"})),
            (json!("required"), json!({"mode": "ANY"})),
            (
                json!({"type": "function", "function": {"name": "noargs"}}),
                json!({"mode": "ANY", "allowedFunctionNames": ["noargs"]}),
            ),
        ] {
            let out = ok(json!({"messages": [user("x")], "tools": tools, "tool_choice": choice}));
            assert_eq!(out["toolConfig"]["functionCallingConfig"], expected, "{choice}");
        }
        assert!(ok(json!({"messages": [user("x")], "tool_choice": "required"})).get("toolConfig").is_none());
        assert_eq!(
            err(json!({"messages": [user("x")], "tools": tools, "tool_choice": "often"})).param.as_deref(),
            Some("tool_choice")
        );
        assert_eq!(
            err(json!({"messages": [user("x")], "tools": [{"type": "web_search"}]})).param.as_deref(),
            Some("tools[0].type")
        );
        assert_eq!(err(json!({"messages": [user("x")], "tools": [{"type": "function", "function": {"name": "f", "parameters": [1]}}]})).param.as_deref(), Some("tools[0].function.parameters"));
    }

    #[test]
    fn tool_calls_and_results_map_by_name_through_ids() {
        let out = ok(json!({"messages": [
            user("temperature of the capital of France?"),
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_0", "type": "function", "function": {"name": "get_capital", "arguments": "{\"country\":\"France\"}"}},
                {"id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": ""}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "noon"},
            {"role": "tool", "tool_call_id": "call_0", "content": "{\"capital\": \"Paris\"}"},
            {"role": "assistant", "tool_calls": [{"id": "call_0", "type": "function", "function": {"name": "get_temperature", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_0", "content": [{"type": "text", "text": "30"}, {"type": "text", "text": "°C"}]},
        ]}));
        assert_eq!(
            out["contents"],
            json!([
                {"role": "user", "parts": [{"text": "temperature of the capital of France?"}]},
                {"role": "model", "parts": [
                    {"functionCall": {"name": "get_capital", "args": {"country": "France"}}, "thoughtSignature": REPLAYED_CALL_SIGNATURE},
                    {"functionCall": {"name": "get_time", "args": {}}, "thoughtSignature": REPLAYED_CALL_SIGNATURE}]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "get_time", "response": {"content": "noon"}}},
                    {"functionResponse": {"name": "get_capital", "response": {"capital": "Paris"}}}]},
                {"role": "model", "parts": [{"functionCall": {"name": "get_temperature", "args": {"city": "Paris"}}, "thoughtSignature": REPLAYED_CALL_SIGNATURE}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "get_temperature", "response": {"content": "30°C"}}}]},
            ])
        );
        let e = err(json!({"messages": [user("x"), {"role": "tool", "tool_call_id": "nope", "content": "x"}]}));
        assert_eq!(e.param.as_deref(), Some("messages[1].tool_call_id"));
        let e = err(
            json!({"messages": [user("x"), {"role": "assistant", "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]}),
        );
        assert_eq!(e.param.as_deref(), Some("messages[1].tool_calls[0].function.arguments"));
    }

    #[test]
    fn gemini_thought_signatures_come_back_through_the_tool_call_id() {
        // What the response side gave the client for a signed call, echoed back by the client.
        let signature = "CiQB0e2Kb+/x9Q==";
        let answer = br#"{"responseId": "r1", "candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"name": "get_time", "args": {}}, "thoughtSignature": "CiQB0e2Kb+/x9Q=="}]},
            "finishReason": "STOP"}]}"#;
        let (body, _, _) = super::super::response::translate_response(answer, 1, "m").unwrap();
        let chat: Value = serde_json::from_slice(&body).unwrap();
        let id = chat["choices"][0]["message"]["tool_calls"][0]["id"].as_str().unwrap().to_owned();
        assert!(id.starts_with("call_r1_0"), "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'), "{id}");
        let out = ok(json!({"messages": [
            user("time?"),
            {"role": "assistant", "tool_calls": [{"id": id, "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": id, "content": "noon"},
        ]}));
        assert_eq!(out["contents"][1]["parts"][0]["thoughtSignature"], json!(signature));
        assert_eq!(out["contents"][2]["parts"][0]["functionResponse"]["name"], json!("get_time"));
        // An id with a damaged signature part falls back to the documented placeholder.
        let out = ok(json!({"messages": [user("x"),
            {"role": "assistant", "tool_calls": [{"id": "call_1__thsig_a+b", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}]}));
        assert_eq!(out["contents"][1]["parts"][0]["thoughtSignature"], json!(REPLAYED_CALL_SIGNATURE));
    }

    #[test]
    fn images() {
        let out = ok(json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "what?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "image_url", "image_url": {"url": "https://example.com/a/b.JPG?x=1"}},
        ]}]}));
        assert_eq!(
            out["contents"][0]["parts"],
            json!([
                {"text": "what?"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/a/b.JPG?x=1"}},
            ])
        );
        for url in [
            "https://example.com/image",
            "http://example.com/a.png",
            "ftp://x/y.png",
            "data:image/png,raw",
            "data:;base64,AAAA",
        ] {
            let e = err(
                json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]}),
            );
            assert_eq!((e.status(), e.param.as_deref()), (400, Some("messages[0].content[0].image_url.url")), "{url}");
        }
    }

    #[test]
    fn consecutive_roles_merge_and_empty_assistant_dropped() {
        let out = ok(
            json!({"messages": [user("a"), user("b"), {"role": "assistant", "content": ""}, {"role": "assistant", "content": "c"}, user("d")]}),
        );
        assert_eq!(
            out["contents"],
            json!([
                {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
                {"role": "model", "parts": [{"text": "c"}]},
                {"role": "user", "parts": [{"text": "d"}]},
            ])
        );
    }

    #[test]
    fn rejected_fields() {
        for (field, value, param) in [
            ("n", json!(0), "n"),
            ("n", json!(9), "n"),
            ("logprobs", json!(true), "logprobs"),
            ("top_logprobs", json!(2), "top_logprobs"),
            ("logit_bias", json!({"1": 5}), "logit_bias"),
            ("modalities", json!(["text", "audio"]), "modalities"),
            ("audio", json!({"voice": "x"}), "audio"),
            ("web_search_options", json!({}), "web_search_options"),
            ("functions", json!([{"name": "f"}]), "functions"),
        ] {
            let mut body = json!({"messages": [user("x")]});
            body[field] = value;
            let e = err(body);
            assert_eq!((e.status(), e.param.as_deref()), (400, Some(param)), "{field}");
        }
    }
}
