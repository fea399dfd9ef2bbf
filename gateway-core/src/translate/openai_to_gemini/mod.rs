//! OpenAI Chat Completions clients served by Google Gemini (Generative Language API, `v1beta`).
//!
//! Upstream: `POST /v1beta/models/{model}:generateContent`, or
//! `:streamGenerateContent?alt=sse` for streams; API key in `x-goog-api-key`. The model is the
//! route target's (configuration, never request data); a leading `models/` is accepted, and
//! anything but letters, digits, `-`, `_` and `.` is refused (500: a misconfiguration), so no
//! route can reach another path or add a query parameter. Vertex AI (`aiplatform`, OAuth tokens,
//! `projects/.../locations/...` paths) is not implemented.
//!
//! Requests ([`request`]): `system`/`developer` messages → `systemInstruction`; `user` → role
//! `user`, `assistant` → role `model` (consecutive turns of one role merged, empty assistant
//! turns dropped); `tool` → `functionResponse` in a user turn, named after the assistant tool
//! call whose id it answers (Gemini matches by name); JSON-object tool output is sent as the
//! `response` object, anything else as `{"content": text}`.
//!
//! | OpenAI field | what happens |
//! |---|---|
//! | `max_completion_tokens`, `max_tokens` | → `generationConfig.maxOutputTokens` (the first wins) |
//! | `temperature`, `top_p`, `presence_penalty`, `frequency_penalty`, `seed` | → `temperature`, `topP`, `presencePenalty`, `frequencyPenalty`, `seed` |
//! | `stop` | → `stopSequences` |
//! | `n` | 1: nothing; 2..=8 → `candidateCount`, one choice per candidate; 0 or > 8 → 400 |
//! | `stream`, `stream_options.include_usage` | → `:streamGenerateContent?alt=sse`; usage chunk only when asked |
//! | `tools` (function) | → `tools[{functionDeclarations}]`, parameters cleaned for Gemini's schema subset ([`schema`]); other tool types → 400 |
//! | `tool_choice` | `auto` → `AUTO`, `none` → `NONE`, `required` → `ANY`, `{function}` → `ANY` + `allowedFunctionNames`; dropped without tools |
//! | `response_format` | `json_object` → `responseMimeType: application/json`; `json_schema` → also `responseSchema` (cleaned); `text` → nothing |
//! | `reasoning_effort` | → `thinkingConfig.thinkingBudget` (none/minimal 0, low 1024, medium 8192, high 24576) with `includeThoughts`; thoughts return as `reasoning_content` |
//! | image parts | data URLs → `inlineData`; https URLs with an image/pdf extension → `fileData` (Gemini fetches them); other URLs → 400 |
//! | `logprobs`, `top_logprobs`, non-empty `logit_bias`, non-text `modalities`, `audio`, `web_search_options`, `functions`/`function_call` | 400 |
//! | `parallel_tool_calls`, `user`, `store`, `metadata`, `service_tier`, `prediction`, unknown fields | dropped silently: no Gemini equivalent and the answer is still complete |
//!
//! Responses ([`response`], [`stream`]): text → `content`, thought parts → `reasoning_content`,
//! `functionCall` → `tool_calls` with ids `call_<responseId>_<n>` (Gemini has none), usage from
//! `usageMetadata` (`completion_tokens` includes thinking tokens, as OpenAI's do). Finish reasons:
//! `STOP` → `stop` (`tool_calls` after function calls), `MAX_TOKENS` → `length`, safety, recitation
//! and blocklist reasons → `content_filter`; a blocked prompt → one empty choice with
//! `content_filter`. Provider errors keep their HTTP status and get OpenAI's shape, with Google's
//! status (`INVALID_ARGUMENT`, ...) as `code`.
//!
//! Thought signatures: Gemini 3 requires the `thoughtSignature` of a function call back on the
//! next turn. An OpenAI client's only slot that comes back verbatim is the tool call id, so the
//! signature travels there (`call_<id>__thsig_<URL-safe base64>`,
//! [`response::call_id_with_signature`]) and is restored on the replayed `functionCall`. Calls whose
//! id carries none (another provider's, or hand-written) get the placeholder signature Google
//! documents for calls it did not produce. Signatures on text parts are not kept: Google makes
//! them optional.

use super::{BodyMode, PreparedRequest, ResponseTranslator, Target};
use crate::api::openai::ChatCompletionRequest;
use crate::config::ProviderConfig;
use crate::error::{ErrorKind, GatewayError};
use crate::usage::TokenUsage;

pub mod request;
pub mod response;
pub mod schema;
pub mod stream;

/// Longest model name accepted in a path.
const MAX_MODEL_LEN: usize = 128;

/// Checks a route target's model for use in a Gemini path; returns the bare model id.
pub fn validate_model(model: &str) -> Result<&str, String> {
    let bare = model.strip_prefix("models/").unwrap_or(model);
    let ok_chars = bare.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if bare.is_empty() || bare.len() > MAX_MODEL_LEN || !ok_chars || bare.starts_with('.') {
        return Err(format!(
            "Gemini model name '{}' is invalid: letters, digits, '-', '_' and '.' only (optionally after 'models/')",
            model.escape_default()
        ));
    }
    Ok(bare)
}

/// The upstream path for `model`, path prefix included.
pub fn upstream_path(provider: &ProviderConfig, model: &str, stream: bool) -> Result<String, GatewayError> {
    let bare = validate_model(model).map_err(|m| {
        GatewayError::new(ErrorKind::Internal, format!("provider '{}' is misconfigured: {m}", provider.name))
    })?;
    let method = if stream { "streamGenerateContent?alt=sse" } else { "generateContent" };
    Ok(super::provider_path(provider, &format!("/v1beta/models/{bare}:{method}")))
}

/// Translates an OpenAI Chat Completions body into a Gemini request for `target`.
pub fn prepare(body: &[u8], target: &Target<'_>) -> Result<PreparedRequest, GatewayError> {
    let req: ChatCompletionRequest<'_> = serde_json::from_slice(body)
        .map_err(|e| GatewayError::invalid(format!("We could not parse the JSON body of your request: {e}")))?;
    let stream = req.stream.unwrap_or(false);
    let include_usage = req.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false);
    let path = upstream_path(target.provider, target.model, stream)?;
    let gemini = request::to_gemini(&req)?;
    let mut out = Vec::with_capacity(body.len() + 256);
    serde_json::to_writer(&mut out, &gemini)
        .map_err(|e| GatewayError::new(ErrorKind::Internal, format!("could not encode the provider request: {e}")))?;
    let model = target.model.strip_prefix("models/").unwrap_or(target.model);
    Ok(PreparedRequest {
        path,
        body: Some(out),
        headers: vec![("content-type", "application/json".to_owned())],
        translator: Box::new(GeminiResponse::new(target.created_unix, include_usage, model)),
        dropped: Vec::new(),
    })
}

/// Turns one Gemini response (JSON, SSE or error) into OpenAI's shape.
#[derive(Debug)]
pub struct GeminiResponse {
    status: u16,
    mode: BodyMode,
    created: u64,
    model: String,
    include_usage: bool,
    /// Made on the first streamed chunk: a buffered answer never needs one.
    stream: Option<stream::StreamTranslator>,
    buffered_usage: TokenUsage,
    buffered_model: Option<String>,
}

impl GeminiResponse {
    /// `created` is OpenAI's `created` (Gemini sends none), `include_usage` the client's
    /// `stream_options.include_usage`, `model` the name reported when Gemini omits `modelVersion`.
    pub fn new(created: u64, include_usage: bool, model: &str) -> Self {
        GeminiResponse {
            status: 200,
            mode: BodyMode::Buffered,
            created,
            model: model.to_owned(),
            include_usage,
            stream: None,
            buffered_usage: TokenUsage::default(),
            buffered_model: None,
        }
    }
}

impl ResponseTranslator for GeminiResponse {
    fn on_headers(&mut self, status: u16, content_type: Option<&str>) -> BodyMode {
        self.status = status;
        self.mode = super::translated_body_mode(status, content_type, "text/event-stream");
        self.mode
    }

    fn content_type(&self) -> Option<&'static str> {
        Some(super::translated_content_type(self.mode))
    }

    fn translate_body(&mut self, body: &[u8]) -> Result<Option<Vec<u8>>, GatewayError> {
        if !(200..300).contains(&self.status) {
            return Ok(Some(response::translate_error(self.status, body)));
        }
        let (out, usage, reported) = response::translate_response(body, self.created, &self.model)?;
        self.buffered_usage = usage;
        self.buffered_model = reported;
        Ok(Some(out))
    }

    fn translate_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Vec<u8> {
        let (created, include_usage, model) = (self.created, self.include_usage, &self.model);
        self.stream
            .get_or_insert_with(|| stream::StreamTranslator::new(created, include_usage, model))
            .push(chunk, end_of_stream)
    }

    fn usage(&self) -> TokenUsage {
        match self.mode {
            BodyMode::Streaming => self.stream.as_ref().map(|s| s.usage()).unwrap_or_default(),
            BodyMode::Buffered => self.buffered_usage,
        }
    }

    fn response_model(&self) -> Option<&str> {
        match self.mode {
            BodyMode::Streaming => self.stream.as_ref().and_then(|s| s.response_model()),
            BodyMode::Buffered => self.buffered_model.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Defaults, ProviderKind};
    use serde_json::{json, Value};

    fn provider(prefix: Option<&str>) -> ProviderConfig {
        ProviderConfig {
            name: "g".into(),
            kind: ProviderKind::Gemini,
            cluster: "c".into(),
            credential: None,
            path_prefix: prefix.map(Into::into),
            settings: Default::default(),
        }
    }

    fn prep(body: &str, model: &str, prefix: Option<&str>) -> Result<PreparedRequest, GatewayError> {
        let p = provider(prefix);
        let d = Defaults::default();
        prepare(body.as_bytes(), &Target { provider: &p, model, defaults: &d, created_unix: 9 })
    }

    #[test]
    fn paths_for_json_and_streams() {
        let p = prep(r#"{"model":"a","messages":[{"role":"user","content":"hi"}]}"#, "gemini-2.5-flash", None).unwrap();
        assert_eq!(p.path, "/v1beta/models/gemini-2.5-flash:generateContent");
        assert_eq!(p.headers, vec![("content-type", "application/json".to_owned())]);
        let body: Value = serde_json::from_slice(&p.body.unwrap()).unwrap();
        assert_eq!(body, json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}));
        let p = prep(
            r#"{"messages":[{"role":"user","content":"hi"}],"stream":true}"#,
            "models/gemini-2.0-flash",
            Some("/g/"),
        )
        .unwrap();
        assert_eq!(p.path, "/g/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse");
    }

    #[test]
    fn model_names_cannot_inject_paths() {
        for bad in
            ["", "models/", "../v1/files", "a/b", "a:generateContent?x", "a?alt=json", "a#x", "a b", "a%2F", ".x", "é"]
        {
            let err = prep(r#"{"messages":[{"role":"user","content":"hi"}]}"#, bad, None).err().unwrap();
            assert_eq!(err.status(), 500, "{bad}");
            assert!(validate_model(bad).is_err(), "{bad}");
        }
        assert_eq!(validate_model("models/gemini-1.5-pro-002"), Ok("gemini-1.5-pro-002"));
    }

    #[test]
    fn malformed_bodies_are_400() {
        for body in ["", "nope", "[]", r#"{"messages":"x"}"#, r#"{"messages":[{"role":"robot","content":"x"}]}"#] {
            assert_eq!(prep(body, "m", None).err().unwrap().status(), 400, "{body}");
        }
    }

    #[test]
    fn buffered_error_and_streaming_modes() {
        let body =
            r#"{"messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#;
        let mut t = prep(body, "gm", None).unwrap().translator;
        assert_eq!(t.on_headers(400, Some("application/json; charset=UTF-8")), BodyMode::Buffered);
        assert_eq!(t.content_type(), Some("application/json"));
        let out = t
            .translate_body(br#"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT"}}"#)
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            json!({"error": {"message": "API key not valid.", "type": "invalid_request_error", "param": null, "code": "INVALID_ARGUMENT"}})
        );

        let mut t = prep(body, "gm", None).unwrap().translator;
        assert_eq!(t.on_headers(200, Some("text/event-stream")), BodyMode::Streaming);
        assert_eq!(t.content_type(), Some("text/event-stream"));
        let out = t.translate_chunk(b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":1}}\r\n\r\n", true);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\"model\":\"gm\"") && text.ends_with("data: [DONE]\n\n"), "{text}");
        assert_eq!(t.usage().total(), 4);

        let mut t = prep(body, "gm", None).unwrap().translator;
        t.on_headers(200, Some("application/json"));
        assert_eq!(t.translate_body(b"garbage").unwrap_err().status(), 502);
    }
}
