//! Anthropic Messages response (or error) → OpenAI `chat.completion` (or OpenAI error body), plus
//! the finish-reason, usage and error-type mappings the stream translator shares.

use std::borrow::Cow;

use crate::api::anthropic::{self as an, BlockType, ErrorResponse, MessageResponse};
use crate::api::openai::{
    ChatCompletion, Choice, CompletionTokensDetails, PromptTokensDetails, ResponseFunction, ResponseMessage,
    ResponseToolCall, Usage,
};
use crate::error::{openai_error_body, ErrorKind, GatewayError};
use crate::usage::TokenUsage;

/// OpenAI's `finish_reason` for an Anthropic `stop_reason`.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        // end_turn, stop_sequence, pause_turn (a server tool paused a long turn; the text so far is
        // a complete answer for an OpenAI client) and anything newer.
        _ => "stop",
    }
}

/// Running Anthropic token counts; fields arrive in pieces across stream events.
#[derive(Debug, Clone, Copy, Default)]
pub struct UsageCounts {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_creation: u64,
}

impl UsageCounts {
    /// Takes every count `usage` carries; Anthropic's counts are cumulative, so later ones win.
    pub fn update(&mut self, usage: &an::Usage) {
        if let Some(v) = usage.input_tokens {
            self.input = v;
        }
        if let Some(v) = usage.output_tokens {
            self.output = v;
        }
        if let Some(v) = usage.cache_read_input_tokens {
            self.cache_read = v;
        }
        if let Some(v) = usage.cache_creation_input_tokens {
            self.cache_creation = v;
        }
    }

    /// All prompt tokens: Anthropic's `input_tokens` excludes the cached ones, OpenAI's includes them.
    fn prompt(&self) -> u64 {
        self.input.saturating_add(self.cache_read).saturating_add(self.cache_creation)
    }

    /// OpenAI's `usage` object.
    pub fn to_openai(self) -> Usage {
        let prompt = self.prompt();
        Usage {
            prompt_tokens: prompt,
            completion_tokens: self.output,
            total_tokens: prompt.saturating_add(self.output),
            prompt_tokens_details: PromptTokensDetails { cached_tokens: self.cache_read },
            completion_tokens_details: CompletionTokensDetails { reasoning_tokens: 0 },
        }
    }

    /// The gateway's own accounting (input counts every prompt token, cached ones included).
    pub fn to_token_usage(self) -> TokenUsage {
        TokenUsage {
            input: self.prompt(),
            output: self.output,
            cache_read: self.cache_read,
            cache_creation: self.cache_creation,
            reasoning: 0,
        }
    }
}

/// Translates a successful Messages response body.
/// Returns the OpenAI body and the usage; the model Anthropic reported is the body's `model`,
/// also returned for spans and logs.
pub fn translate_message(body: &[u8], created: u64) -> Result<(Vec<u8>, TokenUsage, String), GatewayError> {
    let message: MessageResponse<'_> = match serde_json::from_slice(body) {
        Ok(m) => m,
        Err(_) => return Err(unreadable_success(body)),
    };
    let mut counts = UsageCounts::default();
    if let Some(usage) = &message.usage {
        counts.update(usage);
    }

    let mut text: Option<Cow<'_, str>> = None;
    let mut reasoning: Option<Cow<'_, str>> = None;
    let mut tool_calls = Vec::new();
    for block in &message.content {
        match block.kind {
            BlockType::Text => append(&mut text, block.text.as_deref().unwrap_or_default()),
            BlockType::Thinking => append(&mut reasoning, block.thinking.as_deref().unwrap_or_default()),
            BlockType::ToolUse => tool_calls.push(ResponseToolCall {
                id: block.id.as_deref().unwrap_or_default(),
                kind: "function",
                function: ResponseFunction {
                    name: block.name.as_deref().unwrap_or_default(),
                    // Anthropic's `input` is a JSON object; OpenAI wants it as a JSON string.
                    arguments: block.input.map(|raw| raw.get()).unwrap_or("{}"),
                },
            }),
            BlockType::RedactedThinking | BlockType::Other => {}
        }
    }
    // OpenAI sends `content: null` on pure tool-call answers, and a string otherwise.
    let content = match text {
        Some(t) => Some(t),
        None if tool_calls.is_empty() => Some(Cow::Borrowed("")),
        None => None,
    };
    let completion = ChatCompletion {
        id: &message.id,
        object: "chat.completion",
        created,
        model: &message.model,
        choices: [Choice {
            index: 0,
            message: ResponseMessage {
                role: "assistant",
                content,
                refusal: None,
                reasoning_content: reasoning,
                tool_calls,
            },
            logprobs: None,
            finish_reason: message.stop_reason.as_deref().map(finish_reason),
        }],
        usage: counts.to_openai(),
    };
    let mut out = Vec::with_capacity(body.len() + 128);
    serde_json::to_writer(&mut out, &completion)
        .map_err(|e| GatewayError::new(ErrorKind::Internal, format!("could not encode the response: {e}")))?;
    Ok((out, counts.to_token_usage(), message.model.to_string()))
}

fn append<'a>(acc: &mut Option<Cow<'a, str>>, piece: &'a str) {
    match acc {
        None => *acc = Some(Cow::Borrowed(piece)),
        Some(existing) => existing.to_mut().push_str(piece),
    }
}

/// A 2xx body that is not a message: an error object if it is one, else garbage.
fn unreadable_success(body: &[u8]) -> GatewayError {
    match serde_json::from_slice::<ErrorResponse<'_>>(body) {
        Ok(err) => {
            GatewayError::new(ErrorKind::BadGateway, format!("The provider reported an error: {}", &*err.error.message))
        }
        Err(_) => {
            GatewayError::new(ErrorKind::BadGateway, "The provider returned a response the gateway could not parse.")
        }
    }
}

/// OpenAI's `error.type` for an Anthropic error type (falling back on the HTTP status).
pub fn openai_error_type(anthropic_type: &str, status: u16) -> &'static str {
    match anthropic_type {
        "invalid_request_error" | "not_found_error" | "request_too_large" => "invalid_request_error",
        "authentication_error" => "authentication_error",
        "permission_error" => "permission_error",
        "rate_limit_error" => "rate_limit_error",
        "billing_error" => "insufficient_quota",
        "api_error" | "overloaded_error" | "timeout_error" => "server_error",
        _ => match status {
            401 => "authentication_error",
            403 => "permission_error",
            429 => "rate_limit_error",
            400..=499 => "invalid_request_error",
            _ => "server_error",
        },
    }
}

/// An OpenAI error body for a non-2xx provider response; the caller keeps the provider's status.
/// The provider's own type travels in `code` so nothing is lost in the mapping. Bodies that are
/// not Anthropic errors (a proxy's HTML page, say) are not echoed.
pub fn translate_error(status: u16, body: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<ErrorResponse<'_>>(body) {
        Ok(ErrorResponse { error }) => {
            let code = (!error.kind.is_empty()).then_some(&*error.kind);
            openai_error_body(&error.message, openai_error_type(&error.kind, status), None, code)
        }
        Err(_) => openai_error_body(
            &format!("The provider returned HTTP {status} with a body the gateway could not read."),
            openai_error_type("", status),
            None,
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn translate(body: Value) -> (Value, TokenUsage) {
        let (out, usage, model) = translate_message(body.to_string().as_bytes(), 1_700_000_000).unwrap();
        assert_eq!(model, body["model"].as_str().unwrap_or_default(), "the reported model is the body's");
        (serde_json::from_slice(&out).unwrap(), usage)
    }

    #[test]
    fn text_tool_calls_thinking_and_usage() {
        let (out, usage) = translate(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Hello "},
                {"type": "text", "text": "world"},
                {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1, {"b": "c"}]}},
                {"type": "server_tool_use", "id": "x", "name": "web_search", "input": {}}
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 7}
        }));
        assert_eq!(out["id"], "msg_1");
        assert_eq!(out["object"], "chat.completion");
        assert_eq!(out["created"], 1_700_000_000);
        assert_eq!(out["model"], "claude-x");
        let message = &out["choices"][0]["message"];
        assert_eq!(message["role"], "assistant");
        assert_eq!(message["content"], "Hello world");
        assert_eq!(message["reasoning_content"], "hmm");
        let calls = message["tool_calls"].as_array().unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0]["id"], "toolu_1");
        assert_eq!(calls[0]["type"], "function");
        assert_eq!(calls[0]["function"]["name"], "f");
        let args: Value =
            serde_json::from_slice((calls[0]["function"]["arguments"].as_str().unwrap()).as_bytes()).unwrap();
        assert_eq!(args, json!({"a": [1, {"b": "c"}]}));
        assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            out["usage"],
            json!({"prompt_tokens": 117, "completion_tokens": 5, "total_tokens": 122, "prompt_tokens_details": {"cached_tokens": 100}, "completion_tokens_details": {"reasoning_tokens": 0}})
        );
        assert_eq!(usage, TokenUsage { input: 117, output: 5, cache_read: 100, cache_creation: 7, reasoning: 0 });
    }

    #[test]
    fn tool_only_answer_has_null_content_and_plain_answer_no_tool_calls() {
        let (out, _) = translate(
            json!({"id": "m", "model": "c", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}], "stop_reason": "tool_use", "usage": {"input_tokens": 1, "output_tokens": 1}}),
        );
        assert!(out["choices"][0]["message"]["content"].is_null());
        assert_eq!(out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"], "{}");
        let (out, _) = translate(
            json!({"id": "m", "model": "c", "content": [], "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 0}}),
        );
        assert_eq!(out["choices"][0]["message"]["content"], "");
        assert!(out["choices"][0]["message"].get("tool_calls").is_none());
        assert!(out["choices"][0]["message"].get("reasoning_content").is_none());
    }

    #[test]
    fn finish_reasons() {
        for (stop, expected) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
            ("pause_turn", "stop"),
        ] {
            assert_eq!(finish_reason(stop), expected);
            let (out, _) = translate(
                json!({"id": "m", "model": "c", "content": [{"type": "text", "text": "x"}], "stop_reason": stop, "usage": {}}),
            );
            assert_eq!(out["choices"][0]["finish_reason"], expected, "{stop}");
        }
    }

    #[test]
    fn unparsable_success_is_bad_gateway() {
        for body in [
            &b"<html>oops</html>"[..],
            b"",
            b"{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"boom\"}}",
            b"[1]",
        ] {
            let err = translate_message(body, 0).unwrap_err();
            assert_eq!(err.kind, ErrorKind::BadGateway);
            assert_eq!(err.status(), 502);
        }
    }

    #[test]
    fn provider_errors_keep_message_and_map_type() {
        for (kind, status, expected) in [
            ("invalid_request_error", 400, "invalid_request_error"),
            ("authentication_error", 401, "authentication_error"),
            ("permission_error", 403, "permission_error"),
            ("not_found_error", 404, "invalid_request_error"),
            ("rate_limit_error", 429, "rate_limit_error"),
            ("api_error", 500, "server_error"),
            ("overloaded_error", 529, "server_error"),
        ] {
            let body = json!({"type": "error", "error": {"type": kind, "message": "why"}, "request_id": "req_1"});
            let out: Value = serde_json::from_slice(&translate_error(status, body.to_string().as_bytes())).unwrap();
            assert_eq!(out, json!({"error": {"message": "why", "type": expected, "param": null, "code": kind}}));
        }
    }

    #[test]
    fn non_json_error_body_is_not_echoed() {
        let out: Value =
            serde_json::from_slice(&translate_error(503, b"<html>secret-ish upstream page</html>")).unwrap();
        assert_eq!(out["error"]["type"], "server_error");
        assert!(!out["error"]["message"].as_str().unwrap().contains("secret-ish"));
        assert!(out["error"]["message"].as_str().unwrap().contains("503"));
        let out: Value = serde_json::from_slice(&translate_error(401, b"")).unwrap();
        assert_eq!(out["error"]["type"], "authentication_error");
    }
}
