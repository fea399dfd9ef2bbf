//! Converse response and error bodies → conversation [`Response`] / [`ProviderError`], and the
//! stop-reason, usage and exception mappings the stream decoder shares.

use super::wire::{self, ErrorBody, OutputBlock};
use crate::conversation::{
    Family, FinishReason, Json, Opaque, Part, ProviderError, Response, ToolKind, Usage as ModelUsage,
};
use crate::error::{ErrorKind, GatewayError};

/// The model's [`FinishReason`] for a Converse `stopReason` (and Claude's stop sequence, which
/// Converse reports in `additionalModelResponseFields.stop_sequence`).
pub(crate) fn finish_reason(stop_reason: &str, stop_sequence: Option<&str>) -> FinishReason {
    match stop_reason {
        "end_turn" => FinishReason::EndTurn,
        "tool_use" => FinishReason::ToolUse,
        "max_tokens" => FinishReason::MaxTokens,
        "stop_sequence" => FinishReason::StopSequence(stop_sequence.map(str::to_owned)),
        "guardrail_intervened" | "content_filtered" => FinishReason::ContentFilter,
        "model_context_window_exceeded" => FinishReason::ContextWindow,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// Converse counts → the model's [`ModelUsage`]. Converse's `inputTokens` excludes cache reads
/// and writes (recorded: `inputTokens` 2, `cacheWriteInputTokens` 1322, `totalTokens` 1329 with 5
/// output tokens), while the model's `input` is every prompt token: the three are added.
pub(crate) fn usage(u: wire::Usage) -> ModelUsage {
    let cached = u.cache_read_input_tokens.unwrap_or(0).saturating_add(u.cache_write_input_tokens.unwrap_or(0));
    ModelUsage {
        input: u.input_tokens.map(|i| i.saturating_add(cached)),
        output: u.output_tokens,
        cache_read: u.cache_read_input_tokens,
        cache_write: u.cache_write_input_tokens,
        reasoning: None,
    }
}

/// Decodes a complete Converse response. Bedrock names neither the response nor the model, so
/// `model` is the provider model id the request went to.
pub(crate) fn decode_response(body: &[u8], family: Family, model: &str) -> Result<Response, GatewayError> {
    let response: wire::Response<'_> = serde_json::from_slice(body).map_err(|_| {
        GatewayError::new(ErrorKind::BadGateway, "The provider returned a response the gateway could not parse.")
    })?;
    let Some(message) = response.output.and_then(|o| o.message) else {
        return Err(GatewayError::new(ErrorKind::BadGateway, "The provider's response has no output message."));
    };
    let mut parts = Vec::with_capacity(message.content.len());
    for raw in message.content {
        let block: OutputBlock<'_> = serde_json::from_str(raw.get()).map_err(|_| {
            GatewayError::new(
                ErrorKind::BadGateway,
                "The provider returned a content block the gateway could not parse.",
            )
        })?;
        let before = parts.len();
        if let Some(text) = &block.text {
            parts.push(Part::text(&**text));
        }
        if let Some(tool) = &block.tool_use {
            parts.push(Part::ToolCall {
                id: tool.tool_use_id.to_string(),
                name: tool.name.to_string(),
                arguments: tool.input.map_or("{}", |raw| raw.get()).to_owned(),
                kind: ToolKind::Function,
                cache: None,
            });
        }
        if let Some(reasoning) = &block.reasoning_content {
            if let Some(r) = &reasoning.reasoning_text {
                parts.push(Part::Reasoning {
                    text: r.text.as_deref().unwrap_or_default().to_owned(),
                    signature: r.signature.as_ref().map(|s| Opaque { family, data: s.to_string() }),
                    cache: None,
                });
            }
            if let Some(data) = &reasoning.redacted_content {
                parts.push(Part::RedactedReasoning { data: Opaque { family, data: data.to_string() } });
            }
        }
        if parts.len() == before {
            // A block kind this codec does not read (citations, images...), kept whole.
            let raw = Json::from_text(raw.get()).ok_or_else(|| {
                GatewayError::new(ErrorKind::BadGateway, "The provider returned a content block that is not JSON.")
            })?;
            parts.push(Part::Unknown { family: Family::Converse, raw });
        }
    }
    let stop_sequence = response.additional_model_response_fields.as_ref().and_then(|a| a.stop_sequence.as_deref());
    Ok(Response {
        id: None,
        model: Some(model.to_owned()),
        parts,
        finish: response.stop_reason.as_deref().map(|r| finish_reason(r, stop_sequence)),
        usage: response.usage.map(usage).unwrap_or_default(),
    })
}

/// The bare exception name from `x-amzn-errortype` (`ValidationException:http://...`), a
/// `__type` (`com.amazon...#ValidationException`) or `:exception-type` (`throttlingException`).
pub(crate) fn bare_error_type(raw: &str) -> &str {
    let raw = raw.split(':').next().unwrap_or(raw);
    raw.rsplit('#').next().unwrap_or(raw).trim()
}

/// The HTTP status AWS documents for an exception (any case), or `fallback`. In-stream
/// exceptions have no status of their own: this is the one the client's error shape reflects.
pub(crate) fn exception_status(kind: &str, fallback: u16) -> u16 {
    let lower = kind.to_ascii_lowercase();
    match lower.trim_end_matches("exception") {
        "validation" => 400,
        "accessdenied" => 403,
        "resourcenotfound" => 404,
        "throttling" | "servicequotaexceeded" | "toomanyrequests" => 429,
        "unrecognizedclient" | "invalidsignature" | "expiredtoken" | "missingauthenticationtoken" => 401,
        "serviceunavailable" | "modelnotready" => 503,
        "modeltimeout" => 504,
        // A model that failed mid-answer is a server failure for the client (AWS's own status
        // for it, 424, would read as the client's fault).
        "internalserver" | "modelstreamerror" | "modelerror" => 500,
        _ => fallback,
    }
}

/// A non-2xx Converse body as the provider's error. The exception name comes from the
/// `x-amzn-errortype` header, else the body's `__type`; bodies that are not Bedrock errors are
/// not echoed.
pub(crate) fn decode_error(status: u16, error_type_header: Option<&str>, body: &[u8]) -> ProviderError {
    let parsed = serde_json::from_slice::<ErrorBody<'_>>(body).ok();
    let code = error_type_header
        .map(bare_error_type)
        .filter(|k| !k.is_empty())
        .or_else(|| parsed.as_ref().and_then(|p| p.kind.as_deref()).map(bare_error_type))
        .filter(|k| !k.is_empty())
        .map(str::to_owned);
    let message = match parsed.as_ref().and_then(|p| p.message.as_deref()) {
        Some(m) => m.to_owned(),
        None => format!("The provider returned HTTP {status} with a body the gateway could not read."),
    };
    ProviderError { status, code, message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode(body: serde_json::Value, family: Family) -> Response {
        decode_response(body.to_string().as_bytes(), family, "m").unwrap()
    }

    #[test]
    fn text_tool_calls_reasoning_redacted_and_unknown_blocks() {
        let r = decode(
            json!({
                "output": {"message": {"role": "assistant", "content": [
                    {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "sig=="}}},
                    {"reasoningContent": {"redactedContent": "AAEC"}},
                    {"text": "Hello "}, {"text": "world"},
                    {"toolUse": {"toolUseId": "tooluse_1", "name": "f", "input": {"a": [1, "x"]}}},
                    {"toolUse": {"toolUseId": "tooluse_2", "name": "g"}},
                    {"citationsContent": {"content": [{"text": "c"}]}}
                ]}},
                "stopReason": "tool_use",
                "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 122, "cacheReadInputTokens": 100, "cacheWriteInputTokens": 7}
            }),
            Family::Claude,
        );
        assert_eq!(r.model.as_deref(), Some("m"));
        assert_eq!(r.id, None);
        assert_eq!(
            r.parts[0],
            Part::Reasoning {
                text: "hmm".into(),
                signature: Some(Opaque { family: Family::Claude, data: "sig==".into() }),
                cache: None
            }
        );
        assert_eq!(
            r.parts[1],
            Part::RedactedReasoning { data: Opaque { family: Family::Claude, data: "AAEC".into() } }
        );
        assert_eq!(r.parts[2], Part::text("Hello "));
        assert_eq!(r.parts[3], Part::text("world"));
        assert_eq!(
            r.parts[4],
            Part::ToolCall {
                id: "tooluse_1".into(),
                name: "f".into(),
                arguments: r#"{"a":[1,"x"]}"#.into(),
                kind: ToolKind::Function,
                cache: None
            }
        );
        assert!(matches!(&r.parts[5], Part::ToolCall { arguments, .. } if arguments == "{}"));
        match &r.parts[6] {
            Part::Unknown { family: Family::Converse, raw } => assert!(raw.get().contains("citationsContent")),
            other => panic!("{other:?}"),
        }
        assert_eq!(r.finish, Some(FinishReason::ToolUse));
        assert_eq!(
            r.usage,
            ModelUsage {
                input: Some(117),
                output: Some(5),
                cache_read: Some(100),
                cache_write: Some(7),
                reasoning: None
            }
        );
        assert_eq!(r.usage.uncached_input(), 10);
        // Another model's reasoning is tagged Converse.
        let r = decode(
            json!({"output": {"message": {"content": [{"reasoningContent": {"reasoningText": {"text": "t", "signature": "s"}}}]}}}),
            Family::Converse,
        );
        assert!(matches!(
            &r.parts[0],
            Part::Reasoning { signature: Some(Opaque { family: Family::Converse, .. }), .. }
        ));
        assert_eq!(r.finish, None);
        assert_eq!(r.usage, ModelUsage::default());
    }

    #[test]
    fn stop_reasons() {
        for (stop, expected) in [
            ("end_turn", FinishReason::EndTurn),
            ("stop_sequence", FinishReason::StopSequence(Some("END".into()))),
            ("max_tokens", FinishReason::MaxTokens),
            ("tool_use", FinishReason::ToolUse),
            ("guardrail_intervened", FinishReason::ContentFilter),
            ("content_filtered", FinishReason::ContentFilter),
            ("model_context_window_exceeded", FinishReason::ContextWindow),
            ("brand_new", FinishReason::Other("brand_new".into())),
        ] {
            let r = decode(
                json!({"output": {"message": {"content": [{"text": "x"}]}}, "stopReason": stop,
                       "additionalModelResponseFields": {"stop_sequence": "END"}}),
                Family::Converse,
            );
            assert_eq!(r.finish, Some(expected), "{stop}");
        }
    }

    #[test]
    fn unusable_success_bodies_are_502() {
        for body in
            [&b"<html/>"[..], b"", b"{}", b"{\"output\":{}}", b"[1]", b"{\"output\":{\"message\":{\"content\":[1]}}}"]
        {
            assert_eq!(decode_response(body, Family::Claude, "m").unwrap_err().status(), 502);
        }
    }

    #[test]
    fn errors_take_the_type_from_header_or_body_and_never_echo_foreign_bodies() {
        let e = decode_error(
            400,
            Some("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            br#"{"message":"The provided model identifier is invalid."}"#,
        );
        assert_eq!(
            e,
            ProviderError {
                status: 400,
                code: Some("ValidationException".into()),
                message: "The provided model identifier is invalid.".into()
            }
        );
        let e = decode_error(429, None, br#"{"Message":"slow down","__type":"com.amazon.coral#ThrottlingException"}"#);
        assert_eq!((e.code.as_deref(), e.message.as_str()), (Some("ThrottlingException"), "slow down"));
        let e = decode_error(503, None, b"<html>secret</html>");
        assert_eq!(e.code, None);
        assert!(!e.message.contains("secret"));
        assert_eq!(e.status, 503);
        for (kind, status) in [
            ("throttlingException", 429),
            ("validationException", 400),
            ("modelStreamErrorException", 500),
            ("serviceUnavailableException", 503),
            ("modelTimeoutException", 504),
            ("whatever", 502),
        ] {
            assert_eq!(exception_status(kind, 502), status, "{kind}");
        }
    }
}
