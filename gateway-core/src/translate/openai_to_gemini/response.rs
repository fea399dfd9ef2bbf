//! Gemini `generateContent` response (or error) → OpenAI `chat.completion` (or OpenAI error
//! body), plus the finish-reason, usage, tool-call-id and error mappings the stream shares.

use std::borrow::Cow;

use crate::api::gemini::{ErrorBody, ErrorResponse, GenerateContentResponse, UsageMetadata};
use crate::api::openai::{
    Choice, CompletionTokensDetails, PromptTokensDetails, ResponseFunction, ResponseMessage, ResponseToolCall, Usage,
};
use crate::error::{openai_error_body, ErrorKind, GatewayError};
use crate::usage::TokenUsage;

/// OpenAI's `finish_reason` for a Gemini `finishReason`; `has_tool_calls` turns a normal stop
/// after function calls into `tool_calls` (Gemini says `STOP` either way).
pub fn finish_reason(reason: &str, has_tool_calls: bool) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => "content_filter",
        _ if has_tool_calls => "tool_calls",
        // STOP, and endings that still leave a usable answer (OTHER, LANGUAGE,
        // MALFORMED_FUNCTION_CALL, ...): what was generated is all there is.
        _ => "stop",
    }
}

/// Running token counts. Gemini repeats `usageMetadata` in stream events, sometimes empty or
/// partial early on: a count only changes when an event carries it, so nothing is zeroed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageCounts {
    pub prompt: u64,
    pub candidates: u64,
    pub cached: u64,
    pub thoughts: u64,
    pub tool_use_prompt: u64,
}

impl UsageCounts {
    /// Takes every count `usage` carries.
    pub fn update(&mut self, usage: &UsageMetadata) {
        let set = |field: &mut u64, value: Option<u64>| {
            if let Some(v) = value {
                *field = v;
            }
        };
        set(&mut self.prompt, usage.prompt_token_count);
        set(&mut self.candidates, usage.candidates_token_count);
        set(&mut self.cached, usage.cached_content_token_count);
        set(&mut self.thoughts, usage.thoughts_token_count);
        set(&mut self.tool_use_prompt, usage.tool_use_prompt_token_count);
    }

    /// Prompt tokens as OpenAI counts them: the prompt plus tool-use prompt tokens (cached included).
    fn prompt_total(&self) -> u64 {
        self.prompt.saturating_add(self.tool_use_prompt)
    }

    /// Completion tokens as OpenAI counts them: the answer plus the thinking spent on it.
    fn completion_total(&self) -> u64 {
        self.candidates.saturating_add(self.thoughts)
    }

    /// OpenAI's `usage` object.
    pub fn to_openai(self) -> Usage {
        let (prompt, completion) = (self.prompt_total(), self.completion_total());
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt.saturating_add(completion),
            prompt_tokens_details: PromptTokensDetails { cached_tokens: self.cached },
            completion_tokens_details: CompletionTokensDetails { reasoning_tokens: self.thoughts },
        }
    }

    /// The gateway's own accounting.
    pub fn to_token_usage(self) -> TokenUsage {
        TokenUsage {
            input: self.prompt_total(),
            output: self.completion_total(),
            cache_read: self.cached,
            cache_creation: 0,
            reasoning: self.thoughts,
        }
    }
}

/// The OpenAI id of the `n`-th function call of a response. Gemini has no call ids; these are
/// derived from the response id so that they are stable (the same bytes give the same ids,
/// however a stream is split) and unique across turns of one conversation.
pub fn tool_call_id(response_id: &str, n: u32) -> String {
    if response_id.is_empty() {
        format!("call_{n}")
    } else {
        format!("call_{response_id}_{n}")
    }
}

/// Marks the part of a tool call id that carries Gemini's thought signature. Only `[A-Za-z0-9_-]`
/// is used, so the id stays valid for every provider a conversation may fall back to (Anthropic
/// requires `^[a-zA-Z0-9_-]+$`).
const SIGNATURE_MARK: &str = "__thsig_";

/// The tool call id an OpenAI client gets for a signed Gemini function call: the id plus the
/// signature in URL-safe base64. OpenAI clients echo tool call ids back verbatim on the next turn
/// (the assistant message and the tool result), which is the only slot they have for Gemini's
/// opaque state; Gemini 3 rejects a replayed function call without its signature. A signature
/// that is not base64 is left out (the placeholder signature is used on replay).
pub fn call_id_with_signature(id: String, signature: Option<&str>) -> String {
    let Some(signature) = signature.filter(|s| !s.is_empty()) else { return id };
    let body = signature.trim_end_matches('=');
    // Only padded base64 is restored byte for byte (the padding is recomputed from the length).
    let padded = signature.len().is_multiple_of(4) && signature.len() - body.len() <= 2;
    if !padded || !body.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/')) {
        return id;
    }
    let safe: String = body
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    format!("{id}{SIGNATURE_MARK}{safe}")
}

/// The Gemini thought signature carried in a tool call id by [`call_id_with_signature`].
pub fn signature_from_call_id(id: &str) -> Option<String> {
    let (_, safe) = id.rsplit_once(SIGNATURE_MARK)?;
    if safe.is_empty() || !safe.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')) {
        return None;
    }
    let mut signature: String = safe
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while !signature.len().is_multiple_of(4) {
        signature.push('=');
    }
    Some(signature)
}

/// Translates a successful `generateContent` body.
/// Returns the OpenAI body, the usage and the `modelVersion` Gemini reported (if any).
pub fn translate_response(
    body: &[u8],
    created: u64,
    fallback_model: &str,
) -> Result<(Vec<u8>, TokenUsage, Option<String>), GatewayError> {
    // serde would also read a struct from a JSON array; a response is always an object.
    let is_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let response: GenerateContentResponse<'_> = match serde_json::from_slice(body) {
        Ok(r) if is_object => r,
        _ => return Err(unreadable_success(body)),
    };
    if let Some(error) = &response.error {
        return Err(GatewayError::new(
            ErrorKind::BadGateway,
            format!("The provider reported an error: {}", &*error.message),
        ));
    }
    let mut counts = UsageCounts::default();
    if let Some(usage) = &response.usage_metadata {
        counts.update(usage);
    }
    let response_id = response.response_id.as_deref().unwrap_or_default();
    let mut ids: Vec<String> = Vec::new();
    // Ids are numbered across candidates first, so that borrowed `&str`s can point into `ids`.
    for candidate in &response.candidates {
        for part in candidate.content.iter().flat_map(|c| &c.parts) {
            if part.function_call.is_some() {
                let n = u32::try_from(ids.len()).unwrap_or(u32::MAX);
                let id = part
                    .function_call
                    .as_ref()
                    .and_then(|c| c.id.as_deref().filter(|s| !s.is_empty()).map(str::to_owned))
                    .unwrap_or_else(|| tool_call_id(response_id, n));
                ids.push(call_id_with_signature(id, part.thought_signature.as_deref()));
            }
        }
    }

    let mut choices: Vec<Choice<'_>> = Vec::with_capacity(response.candidates.len().max(1));
    let mut next_id = ids.iter();
    for (position, candidate) in response.candidates.iter().enumerate() {
        let mut text: Option<Cow<'_, str>> = None;
        let mut reasoning: Option<Cow<'_, str>> = None;
        let mut tool_calls = Vec::new();
        for part in candidate.content.iter().flat_map(|c| &c.parts) {
            if let Some(call) = &part.function_call {
                tool_calls.push(ResponseToolCall {
                    id: next_id.next().map(String::as_str).unwrap_or_default(),
                    kind: "function",
                    function: ResponseFunction {
                        name: &call.name,
                        arguments: call.args.map(|raw| raw.get()).unwrap_or("{}"),
                    },
                });
            } else if let Some(t) = part.text.as_deref() {
                if part.thought == Some(true) {
                    append(&mut reasoning, t);
                } else {
                    append(&mut text, t);
                }
            }
        }
        let content = match text {
            Some(t) => Some(t),
            None if tool_calls.is_empty() => Some(Cow::Borrowed("")),
            None => None,
        };
        let finish = candidate.finish_reason.as_deref().map(|r| finish_reason(r, !tool_calls.is_empty()));
        choices.push(Choice {
            index: candidate.index.unwrap_or(u32::try_from(position).unwrap_or(u32::MAX)),
            message: ResponseMessage {
                role: "assistant",
                content,
                refusal: None,
                reasoning_content: reasoning,
                tool_calls,
            },
            logprobs: None,
            finish_reason: finish,
        });
    }
    // A blocked prompt comes back with no candidates at all: the client gets one empty choice
    // that says why, as OpenAI does for filtered content.
    if choices.is_empty() {
        let blocked = response.prompt_feedback.as_ref().and_then(|f| f.block_reason.as_deref()).is_some();
        choices.push(Choice {
            index: 0,
            message: ResponseMessage {
                role: "assistant",
                content: Some(Cow::Borrowed("")),
                refusal: None,
                reasoning_content: None,
                tool_calls: Vec::new(),
            },
            logprobs: None,
            finish_reason: Some(if blocked { "content_filter" } else { "stop" }),
        });
    }
    let completion = crate::api::openai::ChatCompletionN {
        id: response_id,
        object: "chat.completion",
        created,
        model: response.model_version.as_deref().unwrap_or(fallback_model),
        choices,
        usage: counts.to_openai(),
    };
    let mut out = Vec::with_capacity(body.len() + 128);
    serde_json::to_writer(&mut out, &completion)
        .map_err(|e| GatewayError::new(ErrorKind::Internal, format!("could not encode the response: {e}")))?;
    let reported = response.model_version.as_deref().and_then(super::super::response_model_str);
    Ok((out, counts.to_token_usage(), reported))
}

fn append<'a>(acc: &mut Option<Cow<'a, str>>, piece: &'a str) {
    match acc {
        None => *acc = Some(Cow::Borrowed(piece)),
        Some(existing) => existing.to_mut().push_str(piece),
    }
}

fn unreadable_success(body: &[u8]) -> GatewayError {
    match parse_error(body) {
        Some(err) => {
            GatewayError::new(ErrorKind::BadGateway, format!("The provider reported an error: {}", &*err.message))
        }
        None => {
            GatewayError::new(ErrorKind::BadGateway, "The provider returned a response the gateway could not parse.")
        }
    }
}

/// Google's error envelope, alone or (as streaming endpoints send it) as the first array item.
fn parse_error(body: &[u8]) -> Option<ErrorBody<'_>> {
    // Checked first: serde would read a struct from an array too, taking items as fields.
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => serde_json::from_slice::<ErrorResponse<'_>>(body).ok().map(|e| e.error),
        Some(b'[') => serde_json::from_slice::<Vec<ErrorResponse<'_>>>(body).ok()?.into_iter().next().map(|e| e.error),
        _ => None,
    }
}

/// OpenAI's `error.type` for a Google canonical status (falling back on the HTTP status).
pub fn openai_error_type(status_name: &str, http_status: u16) -> &'static str {
    match status_name {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" | "NOT_FOUND" | "ALREADY_EXISTS" => {
            "invalid_request_error"
        }
        "UNAUTHENTICATED" => "authentication_error",
        "PERMISSION_DENIED" => "permission_error",
        "RESOURCE_EXHAUSTED" => "rate_limit_error",
        "INTERNAL" | "UNAVAILABLE" | "DEADLINE_EXCEEDED" | "UNKNOWN" | "ABORTED" | "CANCELLED" => "server_error",
        _ => match http_status {
            401 => "authentication_error",
            403 => "permission_error",
            429 => "rate_limit_error",
            400..=499 => "invalid_request_error",
            _ => "server_error",
        },
    }
}

/// An OpenAI error body for a non-2xx Gemini response; the caller keeps the HTTP status. Google's
/// canonical status (`INVALID_ARGUMENT`, `RESOURCE_EXHAUSTED`, ...) travels in `code`. Bodies that
/// are not Google errors are summarised, not echoed.
pub fn translate_error(status: u16, body: &[u8]) -> Vec<u8> {
    match parse_error(body) {
        Some(error) => {
            let status_name = error.status.as_deref().unwrap_or_default();
            let message = if error.message.is_empty() {
                format!("The provider returned HTTP {status}.")
            } else {
                error.message.0.into_owned()
            };
            openai_error_body(
                &message,
                openai_error_type(status_name, status),
                None,
                (!status_name.is_empty()).then_some(status_name),
            )
        }
        None => openai_error_body(
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
        let (out, usage, reported) = translate_response(body.to_string().as_bytes(), 77, "gemini-fallback").unwrap();
        assert_eq!(
            reported.as_deref(),
            body["modelVersion"].as_str(),
            "the reported model is modelVersion, never the fallback"
        );
        (serde_json::from_slice(&out).unwrap(), usage)
    }

    #[test]
    fn text_thoughts_and_usage() {
        let (out, usage) = translate(json!({
            "candidates": [{"content": {"parts": [{"text": "plan", "thought": true}, {"text": "Hello "}, {"text": "there"}], "role": "model"}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 9, "thoughtsTokenCount": 34, "cachedContentTokenCount": 4, "totalTokenCount": 52},
            "modelVersion": "gemini-2.5-flash", "responseId": "r1"
        }));
        assert_eq!(out["id"], "r1");
        assert_eq!(out["object"], "chat.completion");
        assert_eq!(out["created"], 77);
        assert_eq!(out["model"], "gemini-2.5-flash");
        let message = &out["choices"][0]["message"];
        assert_eq!(message["content"], "Hello there");
        assert_eq!(message["reasoning_content"], "plan");
        assert!(message.get("tool_calls").is_none());
        assert_eq!(out["choices"][0]["finish_reason"], "stop");
        assert_eq!(
            out["usage"],
            json!({"prompt_tokens": 9, "completion_tokens": 43, "total_tokens": 52, "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 34}})
        );
        assert_eq!(usage, TokenUsage { input: 9, output: 43, cache_read: 4, cache_creation: 0, reasoning: 34 });
    }

    #[test]
    fn function_calls_get_synthesized_ids_and_tool_calls_finish() {
        let (out, _) = translate(json!({
            "candidates": [{"content": {"parts": [{"functionCall": {"name": "a", "args": {"x": [1, {"y": "z"}]}}}, {"functionCall": {"name": "b"}}], "role": "model"}, "finishReason": "STOP"}],
            "responseId": "R"
        }));
        let calls = out["choices"][0]["message"]["tool_calls"].as_array().unwrap();
        assert_eq!(calls[0]["id"], "call_R_0");
        assert_eq!(calls[1]["id"], "call_R_1");
        assert_eq!(calls[0]["function"]["name"], "a");
        assert_eq!(
            serde_json::from_slice::<Value>((calls[0]["function"]["arguments"].as_str().unwrap()).as_bytes()).unwrap(),
            json!({"x": [1, {"y": "z"}]})
        );
        assert_eq!(calls[1]["function"]["arguments"], "{}");
        assert!(out["choices"][0]["message"]["content"].is_null());
        assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(out["model"], "gemini-fallback");
        let (out, _) = translate(
            json!({"candidates": [{"content": {"parts": [{"functionCall": {"name": "a", "args": {}}}]}, "finishReason": "STOP"}]}),
        );
        assert_eq!(out["choices"][0]["message"]["tool_calls"][0]["id"], "call_0");
    }

    #[test]
    fn several_candidates_become_several_choices() {
        let (out, _) = translate(json!({"candidates": [
            {"content": {"parts": [{"text": "one"}]}, "finishReason": "STOP", "index": 0},
            {"content": {"parts": [{"text": "two"}]}, "finishReason": "MAX_TOKENS", "index": 1}]}));
        let choices = out["choices"].as_array().unwrap();
        assert_eq!(choices.len(), 2);
        assert_eq!(
            (
                choices[1]["index"].as_u64(),
                choices[1]["message"]["content"].as_str(),
                choices[1]["finish_reason"].as_str()
            ),
            (Some(1), Some("two"), Some("length"))
        );
    }

    #[test]
    fn finish_reasons_and_blocked_prompts() {
        for (reason, expected) in [
            ("STOP", "stop"),
            ("MAX_TOKENS", "length"),
            ("SAFETY", "content_filter"),
            ("RECITATION", "content_filter"),
            ("BLOCKLIST", "content_filter"),
            ("PROHIBITED_CONTENT", "content_filter"),
            ("SPII", "content_filter"),
            ("OTHER", "stop"),
            ("MALFORMED_FUNCTION_CALL", "stop"),
        ] {
            let (out, _) =
                translate(json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}));
            assert_eq!(out["choices"][0]["finish_reason"], expected, "{reason}");
        }
        let (out, usage) = translate(
            json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7}}),
        );
        assert_eq!(out["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(out["choices"][0]["message"]["content"], "");
        assert_eq!(usage.input, 7);
    }

    #[test]
    fn errors_keep_status_name_and_are_not_echoed_when_unreadable() {
        for (status, name, expected) in [
            (400, "INVALID_ARGUMENT", "invalid_request_error"),
            (400, "FAILED_PRECONDITION", "invalid_request_error"),
            (401, "UNAUTHENTICATED", "authentication_error"),
            (403, "PERMISSION_DENIED", "permission_error"),
            (404, "NOT_FOUND", "invalid_request_error"),
            (429, "RESOURCE_EXHAUSTED", "rate_limit_error"),
            (500, "INTERNAL", "server_error"),
            (503, "UNAVAILABLE", "server_error"),
        ] {
            let body =
                json!({"error": {"code": status, "message": "why", "status": name, "details": [{"@type": "x"}]}});
            let out: Value = serde_json::from_slice(&translate_error(status, body.to_string().as_bytes())).unwrap();
            assert_eq!(out, json!({"error": {"message": "why", "type": expected, "param": null, "code": name}}));
        }
        let array = json!([{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}]);
        let out: Value = serde_json::from_slice(&translate_error(429, array.to_string().as_bytes())).unwrap();
        assert_eq!(out["error"]["message"], "quota");
        let out: Value = serde_json::from_slice(&translate_error(502, b"<html>secret</html>")).unwrap();
        assert_eq!(out["error"]["type"], "server_error");
        assert!(!out["error"]["message"].as_str().unwrap().contains("secret"));
    }

    #[test]
    fn unparsable_success_is_bad_gateway() {
        for body in [&b"<html>"[..], b"", b"[1]", br#"{"error":{"code":500,"message":"boom","status":"INTERNAL"}}"#] {
            assert_eq!(translate_response(body, 0, "m").unwrap_err().status(), 502);
        }
    }

    #[test]
    fn usage_fields_update_only_when_present() {
        let mut c = UsageCounts::default();
        c.update(&UsageMetadata { prompt_token_count: Some(169), ..Default::default() });
        c.update(&UsageMetadata::default());
        c.update(&UsageMetadata {
            prompt_token_count: Some(79),
            candidates_token_count: Some(12),
            ..Default::default()
        });
        assert_eq!(c.to_token_usage(), TokenUsage { input: 79, output: 12, ..Default::default() });
    }
}
