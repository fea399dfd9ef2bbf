//! OpenAI `chat.completion` (or error) → Anthropic `message` (or Anthropic error), plus the stop
//! reason, usage and error-type mappings the stream translator shares.

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::api::anthropic::{BlockOut, MessageOut, UsageOut};
use crate::api::openai::{ProviderCompletion, ProviderErrorResponse, ProviderUsage};
use crate::error::{anthropic_error_body, ErrorKind, GatewayError};
use crate::usage::TokenUsage;

/// Anthropic's `stop_reason` for an OpenAI `finish_reason`. OpenAI does not say which stop
/// sequence matched, so `stop` is always `end_turn`.
pub fn stop_reason(finish_reason: &str) -> &'static str {
    match finish_reason {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// Anthropic's `usage` for OpenAI's: OpenAI's prompt tokens include the cached ones, Anthropic's
/// `input_tokens` do not.
pub fn usage_out(usage: &ProviderUsage) -> UsageOut {
    let prompt = usage.prompt_tokens.unwrap_or(0);
    let cached = usage.prompt_tokens_details.and_then(|d| d.cached_tokens).unwrap_or(0).min(prompt);
    UsageOut {
        input_tokens: prompt - cached,
        output_tokens: usage.completion_tokens.unwrap_or(0),
        cache_read_input_tokens: cached,
        cache_creation_input_tokens: 0,
    }
}

/// A tool call's `arguments` as the `input` object Anthropic clients expect. Arguments that are
/// not a JSON object (a model can emit broken JSON) become `{}`, because Anthropic clients
/// dereference `input` as an object.
pub fn tool_input(arguments: &str) -> Result<&RawValue, GatewayError> {
    match serde_json::from_slice::<&RawValue>(arguments.as_bytes()) {
        Ok(raw) if raw.get().starts_with('{') => Ok(raw),
        // A valid constant: this never fails, and stays panic-free if it did.
        _ => serde_json::from_slice(b"{}")
            .map_err(|_| GatewayError::new(ErrorKind::Internal, "invalid built-in JSON constant")),
    }
}

/// Translates a successful Chat Completions body.
/// Returns the Anthropic-shaped body, the usage and the model the provider reported.
pub fn translate_completion(body: &[u8]) -> Result<(Vec<u8>, TokenUsage, Option<String>), GatewayError> {
    let completion: ProviderCompletion<'_> = match serde_json::from_slice(body) {
        Ok(c) => c,
        Err(_) => {
            return Err(GatewayError::new(
                ErrorKind::BadGateway,
                "The provider returned a response the gateway could not parse.",
            ))
        }
    };
    let Some(choice) = completion.choices.first() else {
        let why = completion.error.as_ref().map(|e| &*e.message).unwrap_or("no choices");
        return Err(GatewayError::new(ErrorKind::BadGateway, format!("The provider returned no answer: {why}")));
    };
    let message = choice.message.as_ref();
    let mut content = Vec::new();
    if let Some(reasoning) = message.and_then(|m| m.reasoning_content.as_deref()).filter(|t| !t.is_empty()) {
        content.push(BlockOut::Thinking { thinking: Cow::Borrowed(reasoning), signature: "" });
    }
    if let Some(text) = message.and_then(|m| m.content.as_deref()).filter(|t| !t.is_empty()) {
        content.push(BlockOut::Text { text: Cow::Borrowed(text) });
    }
    if let Some(refusal) = message.and_then(|m| m.refusal.as_deref()).filter(|t| !t.is_empty()) {
        content.push(BlockOut::Text { text: Cow::Borrowed(refusal) });
    }
    for call in message.and_then(|m| m.tool_calls.as_ref()).into_iter().flatten() {
        let function = call.function.as_ref();
        content.push(BlockOut::ToolUse {
            id: call.id.as_deref().unwrap_or_default(),
            name: function.and_then(|f| f.name.as_deref()).unwrap_or_default(),
            input: tool_input(function.and_then(|f| f.arguments.as_deref()).unwrap_or("{}"))?,
        });
    }
    let usage = completion.usage.unwrap_or_default();
    let refused = message.is_some_and(|m| m.refusal.as_deref().is_some_and(|r| !r.is_empty()));
    let stop = match choice.finish_reason.as_deref() {
        _ if refused => Some("refusal"),
        Some(reason) => Some(stop_reason(reason)),
        None => None,
    };
    let out = MessageOut {
        id: &completion.id,
        kind: "message",
        role: "assistant",
        model: &completion.model,
        content,
        stop_reason: stop,
        stop_sequence: None,
        usage: usage_out(&usage),
    };
    let mut bytes = Vec::with_capacity(body.len() + 64);
    serde_json::to_writer(&mut bytes, &out)
        .map_err(|e| GatewayError::new(ErrorKind::Internal, format!("could not encode the response: {e}")))?;
    Ok((bytes, usage.to_token_usage(), super::super::response_model_str(&completion.model)))
}

/// Anthropic's error type for an OpenAI error status (OpenAI's own `type` values are too coarse).
pub fn anthropic_error_type(status: u16) -> &'static str {
    match status {
        402 => "billing_error",
        _ => crate::error::anthropic_type_for_status(status),
    }
}

/// An Anthropic error body for a non-2xx provider response; the caller keeps the status. Bodies
/// that are not OpenAI errors (a proxy's HTML page) are not echoed.
pub fn translate_error(status: u16, body: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<ProviderErrorResponse<'_>>(body) {
        Ok(err) if !err.error.message.is_empty() => {
            anthropic_error_body(&err.error.message, anthropic_error_type(status))
        }
        _ => anthropic_error_body(
            &format!("The provider returned HTTP {status} with a body the gateway could not read."),
            anthropic_error_type(status),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn translate(body: Value) -> (Value, TokenUsage) {
        let (out, usage, model) = translate_completion(body.to_string().as_bytes()).unwrap();
        assert_eq!(model.as_deref(), body["model"].as_str());
        (serde_json::from_slice(&out).unwrap(), usage)
    }

    #[test]
    fn text_tools_reasoning_and_usage() {
        let (out, usage) = translate(
            json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-x", "choices": [{"index": 0,
            "message": {"role": "assistant", "content": "Let me look.", "reasoning_content": "think", "refusal": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": "{\"city\": \"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get", "arguments": "not json"}}]},
            "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120, "prompt_tokens_details": {"cached_tokens": 64}, "completion_tokens_details": {"reasoning_tokens": 5}}}),
        );
        assert_eq!(
            out,
            json!({"id": "chatcmpl-1", "type": "message", "role": "assistant", "model": "gpt-x", "content": [
            {"type": "thinking", "thinking": "think", "signature": ""},
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "call_1", "name": "get", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "get", "input": {}}],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 36, "output_tokens": 20, "cache_read_input_tokens": 64, "cache_creation_input_tokens": 0}})
        );
        assert_eq!(usage, TokenUsage { input: 100, output: 20, cache_read: 64, cache_creation: 0, reasoning: 5 });
    }

    #[test]
    fn stop_reasons_and_refusals() {
        for (finish, expected) in [
            ("stop", "end_turn"),
            ("length", "max_tokens"),
            ("tool_calls", "tool_use"),
            ("content_filter", "refusal"),
            ("function_call", "tool_use"),
        ] {
            let (out, _) = translate(
                json!({"id": "c", "model": "m", "choices": [{"message": {"content": "x"}, "finish_reason": finish}]}),
            );
            assert_eq!(out["stop_reason"], expected);
        }
        let (out, _) = translate(
            json!({"id": "c", "model": "m", "choices": [{"message": {"content": null, "refusal": "I can't"}, "finish_reason": "stop"}]}),
        );
        assert_eq!(out["stop_reason"], "refusal");
        assert_eq!(out["content"], json!([{"type": "text", "text": "I can't"}]));
    }

    #[test]
    fn unreadable_success_is_502() {
        for body in [&b"<html>"[..], b"", br#"{"choices":[]}"#, b"[1]"] {
            assert_eq!(translate_completion(body).unwrap_err().status(), 502);
        }
    }

    #[test]
    fn errors_get_anthropic_shape_by_status() {
        for (status, expected) in [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (503, "overloaded_error"),
        ] {
            let out: Value = serde_json::from_slice(&translate_error(
                status,
                br#"{"error":{"message":"why","type":"x","param":null,"code":"c"}}"#,
            ))
            .unwrap();
            assert_eq!(out, json!({"type": "error", "error": {"type": expected, "message": "why"}}));
        }
        let out: Value = serde_json::from_slice(&translate_error(502, b"<html>secret page</html>")).unwrap();
        assert!(!out["error"]["message"].as_str().unwrap().contains("secret"));
    }
}
