//! Bedrock Converse response (or error) → OpenAI `chat.completion` (or OpenAI error body), plus
//! the finish-reason, usage and error-type mappings the stream translator shares.

use std::borrow::Cow;

use crate::api::bedrock::{ConverseResponse, ErrorBody, Usage as BedrockUsage};
use crate::api::openai::{
    ChatCompletion, Choice, CompletionTokensDetails, PromptTokensDetails, ResponseFunction, ResponseMessage,
    ResponseToolCall, Usage,
};
use crate::error::{openai_error_body, ErrorKind, GatewayError};
use crate::usage::TokenUsage;

/// OpenAI's `finish_reason` for a Bedrock `stopReason`.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "guardrail_intervened" | "content_filtered" => "content_filter",
        // end_turn, stop_sequence and anything newer.
        _ => "stop",
    }
}

/// Bedrock token counts: cache reads and writes are counted apart from `inputTokens`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageCounts {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

impl From<BedrockUsage> for UsageCounts {
    fn from(u: BedrockUsage) -> Self {
        UsageCounts {
            input: u.input_tokens,
            output: u.output_tokens,
            cache_read: u.cache_read_input_tokens,
            cache_write: u.cache_write_input_tokens,
        }
    }
}

impl UsageCounts {
    /// Every prompt token, cached ones included, as OpenAI counts them.
    fn prompt(&self) -> u64 {
        self.input.saturating_add(self.cache_read).saturating_add(self.cache_write)
    }

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

    pub fn to_token_usage(self) -> TokenUsage {
        TokenUsage {
            input: self.prompt(),
            output: self.output,
            cache_read: self.cache_read,
            cache_creation: self.cache_write,
            reasoning: 0,
        }
    }
}

/// Translates a successful Converse response body. Bedrock names neither the response nor the
/// model, so `id` and `model` come from the gateway.
pub fn translate_message(
    body: &[u8],
    created: u64,
    id: &str,
    model: &str,
) -> Result<(Vec<u8>, TokenUsage), GatewayError> {
    let response: ConverseResponse<'_> = serde_json::from_slice(body).map_err(|_| {
        GatewayError::new(ErrorKind::BadGateway, "The provider returned a response the gateway could not parse.")
    })?;
    let Some(message) = response.output.and_then(|o| o.message) else {
        return Err(GatewayError::new(ErrorKind::BadGateway, "The provider's response has no output message."));
    };
    let counts = response.usage.map(UsageCounts::from).unwrap_or_default();
    let mut text: Option<Cow<'_, str>> = None;
    let mut reasoning: Option<Cow<'_, str>> = None;
    let mut tool_calls = Vec::new();
    for block in &message.content {
        if let Some(t) = &block.text {
            append(&mut text, t);
        }
        if let Some(t) =
            block.reasoning_content.as_ref().and_then(|r| r.reasoning_text.as_ref()).and_then(|r| r.text.as_ref())
        {
            append(&mut reasoning, t);
        }
        if let Some(tool) = &block.tool_use {
            tool_calls.push(ResponseToolCall {
                id: &tool.tool_use_id,
                kind: "function",
                function: ResponseFunction {
                    name: &tool.name,
                    arguments: tool.input.map(|raw| raw.get()).unwrap_or("{}"),
                },
            });
        }
    }
    let content = match text {
        Some(t) => Some(t),
        None if tool_calls.is_empty() => Some(Cow::Borrowed("")),
        None => None,
    };
    let completion = ChatCompletion {
        id,
        object: "chat.completion",
        created,
        model,
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
            finish_reason: Some(response.stop_reason.as_deref().map(finish_reason).unwrap_or("stop")),
        }],
        usage: counts.to_openai(),
    };
    let mut out = Vec::with_capacity(body.len() + 128);
    serde_json::to_writer(&mut out, &completion)
        .map_err(|e| GatewayError::new(ErrorKind::Internal, format!("could not encode the response: {e}")))?;
    Ok((out, counts.to_token_usage()))
}

fn append<'a>(acc: &mut Option<Cow<'a, str>>, piece: &'a str) {
    match acc {
        None => *acc = Some(Cow::Borrowed(piece)),
        Some(existing) => existing.to_mut().push_str(piece),
    }
}

/// The bare exception name from `x-amzn-errortype` (`ValidationException:http://...`), a
/// `__type` (`com.amazon...#ValidationException`) or `:exception-type` (`throttlingException`).
pub fn bare_error_type(raw: &str) -> &str {
    let raw = raw.split(':').next().unwrap_or(raw);
    raw.rsplit('#').next().unwrap_or(raw).trim()
}

/// OpenAI's `error.type` for a Bedrock exception name (any case), falling back on the status.
pub fn openai_error_type(bedrock_type: &str, status: u16) -> &'static str {
    let lower = bedrock_type.to_ascii_lowercase();
    match lower.trim_end_matches("exception") {
        "validation" | "resourcenotfound" => "invalid_request_error",
        "accessdenied" => "permission_error",
        "unrecognizedclient"
        | "invalidsignature"
        | "expiredtoken"
        | "incompletesignature"
        | "missingauthenticationtoken" => "authentication_error",
        "throttling" | "servicequotaexceeded" | "toomanyrequests" => "rate_limit_error",
        "internalserver" | "modelstreamerror" | "modelerror" | "modeltimeout" | "modelnotready"
        | "serviceunavailable" => "server_error",
        _ => match status {
            401 => "authentication_error",
            403 => "permission_error",
            429 => "rate_limit_error",
            400..=499 => "invalid_request_error",
            _ => "server_error",
        },
    }
}

/// An OpenAI error body for a non-2xx Bedrock response; the caller keeps the status. The
/// exception name (header, else body) travels in `code`. Bodies that are not Bedrock errors are
/// not echoed.
pub fn translate_error(status: u16, error_type_header: Option<&str>, body: &[u8]) -> Vec<u8> {
    let parsed = serde_json::from_slice::<ErrorBody<'_>>(body).ok();
    let kind = error_type_header
        .map(bare_error_type)
        .filter(|k| !k.is_empty())
        .or_else(|| parsed.as_ref().and_then(|p| p.kind.as_deref()).map(bare_error_type))
        .filter(|k| !k.is_empty());
    let message = match parsed.as_ref().and_then(|p| p.message.as_deref()) {
        Some(m) => Cow::Borrowed(m),
        None => Cow::Owned(format!("The provider returned HTTP {status} with a body the gateway could not read.")),
    };
    openai_error_body(&message, openai_error_type(kind.unwrap_or(""), status), None, kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn translate(body: Value) -> (Value, TokenUsage) {
        let (out, usage) = translate_message(body.to_string().as_bytes(), 7, "chatcmpl-x", "nova").unwrap();
        (serde_json::from_slice(&out).unwrap(), usage)
    }

    #[test]
    fn text_reasoning_tool_calls_and_cached_usage() {
        let (out, usage) = translate(json!({
            "output": {"message": {"role": "assistant", "content": [
                {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "s"}}},
                {"text": "Hello "}, {"text": "world"},
                {"toolUse": {"toolUseId": "tooluse_1", "name": "f", "input": {"a": [1]}}}
            ]}},
            "stopReason": "tool_use",
            "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 122, "cacheReadInputTokens": 100, "cacheWriteInputTokens": 7},
            "metrics": {"latencyMs": 1}
        }));
        assert_eq!(
            (out["id"].as_str(), out["model"].as_str(), out["created"].as_u64()),
            (Some("chatcmpl-x"), Some("nova"), Some(7))
        );
        let m = &out["choices"][0]["message"];
        assert_eq!(m["content"], "Hello world");
        assert_eq!(m["reasoning_content"], "hmm");
        assert_eq!(
            m["tool_calls"],
            json!([{"id": "tooluse_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":[1]}"}}])
        );
        assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            out["usage"],
            json!({"prompt_tokens": 117, "completion_tokens": 5, "total_tokens": 122, "prompt_tokens_details": {"cached_tokens": 100}, "completion_tokens_details": {"reasoning_tokens": 0}})
        );
        assert_eq!(usage, TokenUsage { input: 117, output: 5, cache_read: 100, cache_creation: 7, reasoning: 0 });
    }

    #[test]
    fn finish_reasons() {
        for (stop, expected) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("guardrail_intervened", "content_filter"),
            ("content_filtered", "content_filter"),
            ("model_context_window_exceeded", "length"),
        ] {
            let (out, _) = translate(json!({"output": {"message": {"content": [{"text": "x"}]}}, "stopReason": stop}));
            assert_eq!(out["choices"][0]["finish_reason"], expected, "{stop}");
        }
    }

    #[test]
    fn unusable_success_bodies_are_502() {
        for body in [&b"<html/>"[..], b"", b"{}", b"{\"output\":{}}", b"[1]"] {
            assert_eq!(translate_message(body, 0, "i", "m").unwrap_err().status(), 502);
        }
    }

    #[test]
    fn errors_keep_message_and_map_type_from_header_body_or_status() {
        let body = br#"{"message":"The provided model identifier is invalid."}"#;
        let v: Value = serde_json::from_slice(&translate_error(
            400,
            Some("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            body,
        ))
        .unwrap();
        assert_eq!(
            v,
            json!({"error": {"message": "The provided model identifier is invalid.", "type": "invalid_request_error", "param": null, "code": "ValidationException"}})
        );
        let v: Value = serde_json::from_slice(&translate_error(
            429,
            None,
            br#"{"Message":"slow down","__type":"com.amazon.coral#ThrottlingException"}"#,
        ))
        .unwrap();
        assert_eq!(
            v,
            json!({"error": {"message": "slow down", "type": "rate_limit_error", "param": null, "code": "ThrottlingException"}})
        );
        let v: Value = serde_json::from_slice(&translate_error(403, None, br#"{"message":"no"}"#)).unwrap();
        assert_eq!((v["error"]["type"].as_str(), v["error"]["code"].as_str()), (Some("permission_error"), None));
        let v: Value =
            serde_json::from_slice(&translate_error(503, None, b"<html>upstream secret page</html>")).unwrap();
        assert!(!v["error"]["message"].as_str().unwrap().contains("secret"));
        assert_eq!(v["error"]["type"], "server_error");
        for (kind, expected) in [
            ("throttlingException", "rate_limit_error"),
            ("modelStreamErrorException", "server_error"),
            ("validationException", "invalid_request_error"),
            ("ExpiredTokenException", "authentication_error"),
        ] {
            assert_eq!(openai_error_type(kind, 200), expected, "{kind}");
        }
    }
}
