//! Anthropic Messages clients served by an OpenAI Chat Completions provider (OpenAI, Azure
//! OpenAI): the reverse of [`super::openai_to_anthropic`].
//!
//! Requests ([`request`]): `system` → one leading system message; user turns → user messages,
//! with their `tool_result` blocks first turned into `tool` messages (OpenAI wants tool results
//! right after the assistant's calls); assistant `tool_use` blocks → `tool_calls` with the input
//! as a JSON string; images → `image_url` parts (base64 as data URLs). The full field table is in
//! `docs/field-matrix.md` (machine-readable in `docs/field-matrix.json`, checked against this
//! code by `gateway-core/tests/field_matrix_anthropic.rs`).
//!
//! Responses ([`response`], [`stream`]): `chat.completion` → an Anthropic `message` (reasoning as a
//! `thinking` block, text, then `tool_use` blocks); chunks → `message_start`,
//! `content_block_start/delta/stop` with one block index per text, thinking or tool-call block,
//! `message_delta` (stop reason and usage, which the gateway always requests with
//! `stream_options.include_usage`) and `message_stop`. Provider errors keep their HTTP status and
//! get Anthropic's error shape.

use super::{BodyMode, PreparedRequest, ResponseTranslator, Target};
use crate::api::anthropic::MessagesRequestIn;
use crate::error::{ErrorKind, GatewayError};
use crate::usage::TokenUsage;

pub mod request;
pub mod response;
pub mod stream;

/// Translates an Anthropic Messages body into a Chat Completions request at `path`.
pub fn prepare(body: &[u8], target: &Target<'_>, path: String) -> Result<PreparedRequest, GatewayError> {
    let req: MessagesRequestIn<'_> = serde_json::from_slice(body)
        .map_err(|e| GatewayError::invalid(format!("The request body does not match the Messages API: {e}")))?;
    let openai = request::to_openai(&req, target.model)?;
    let mut out = Vec::with_capacity(body.len() + 128);
    serde_json::to_writer(&mut out, &openai)
        .map_err(|e| GatewayError::new(ErrorKind::Internal, format!("could not encode the provider request: {e}")))?;
    Ok(PreparedRequest {
        path,
        body: Some(out),
        headers: vec![("content-type", "application/json".to_owned())],
        translator: Box::new(OpenAiResponse::new()),
        dropped: Vec::new(),
    })
}

/// Turns one Chat Completions response (JSON, SSE or error) into Anthropic's format.
#[derive(Debug)]
pub struct OpenAiResponse {
    status: u16,
    mode: BodyMode,
    stream: stream::StreamTranslator,
    buffered_usage: TokenUsage,
    buffered_model: Option<String>,
}

impl OpenAiResponse {
    pub fn new() -> Self {
        OpenAiResponse {
            status: 200,
            mode: BodyMode::Buffered,
            stream: stream::StreamTranslator::new(),
            buffered_usage: TokenUsage::default(),
            buffered_model: None,
        }
    }
}

impl Default for OpenAiResponse {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseTranslator for OpenAiResponse {
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
        let (out, usage, model) = response::translate_completion(body)?;
        self.buffered_usage = usage;
        self.buffered_model = model;
        Ok(Some(out))
    }

    fn translate_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Vec<u8> {
        self.stream.push(chunk, end_of_stream)
    }

    fn usage(&self) -> TokenUsage {
        match self.mode {
            BodyMode::Streaming => self.stream.usage(),
            BodyMode::Buffered => self.buffered_usage,
        }
    }

    fn response_model(&self) -> Option<&str> {
        match self.mode {
            BodyMode::Streaming => self.stream.response_model(),
            BodyMode::Buffered => self.buffered_model.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Defaults, ProviderConfig, ProviderKind};
    use serde_json::{json, Value};

    fn prep(body: &str) -> Result<PreparedRequest, GatewayError> {
        let p: ProviderConfig = serde_json::from_value(
            json!({"name": "o", "kind": ProviderKind::Openai, "cluster": "c", "path_prefix": "/px"}),
        )
        .unwrap();
        let d = Defaults::default();
        crate::translate::prepare(
            crate::translate::ClientApi::AnthropicMessages,
            &Target { provider: &p, model: "gpt-real", defaults: &d, created_unix: 0 },
            body.as_bytes(),
        )
    }

    #[test]
    fn path_body_and_error_modes() {
        let prepared =
            prep(r#"{"model":"alias","max_tokens":9,"messages":[{"role":"user","content":"hi"}],"stream":true}"#)
                .unwrap();
        assert_eq!(prepared.path, "/px/v1/chat/completions");
        assert!(!prepared.headers.iter().any(|(k, _)| *k == "anthropic-version"));
        let body: Value = serde_json::from_slice(&prepared.body.unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"model": "gpt-real", "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 9, "stream": true, "stream_options": {"include_usage": true}})
        );

        let mut t = prepared.translator;
        assert_eq!(t.on_headers(429, Some("application/json")), BodyMode::Buffered);
        assert_eq!(t.content_type(), Some("application/json"));
        let out = t
            .translate_body(br#"{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&out).unwrap(),
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
        );

        let mut t =
            prep(r#"{"model":"a","max_tokens":9,"messages":[{"role":"user","content":"hi"}]}"#).unwrap().translator;
        t.on_headers(200, Some("application/json"));
        assert_eq!(t.translate_body(b"<html>").unwrap_err().status(), 502);
        for bad in [
            "[]",
            r#"{"model":"a","max_tokens":9,"messages":[{"role":"robot","content":"x"}]}"#,
            r#"{"model":"a","max_tokens":9,"messages":[{"role":"user","content":7}]}"#,
        ] {
            assert_eq!(prep(bad).err().unwrap().status(), 400, "{bad}");
        }
    }
}
