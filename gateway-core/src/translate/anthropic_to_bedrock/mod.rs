//! Anthropic Messages clients served by AWS Bedrock Converse (`/model/{id}/converse`, and
//! `/converse-stream` for `stream: true`).
//!
//! Built as the composition of two tested directions rather than a third copy of the same rules:
//! the Messages request goes through [`super::anthropic_to_openai::request::to_openai`] into the
//! in-memory Chat Completions request, which [`super::openai_to_bedrock::request::to_bedrock`]
//! turns into Converse (no intermediate JSON is written). The answer goes the other way: the
//! Bedrock translator (JSON, binary event stream, exceptions) produces Chat Completions JSON or
//! SSE, which the Anthropic translator turns into an Anthropic `message` or Anthropic SSE events.
//! So every field follows the `anthropic_to_openai` table, then the `openai_to_bedrock` one;
//! `docs/field-matrix.md` lists the result for Bedrock. Consequences worth knowing:
//!
//! - `thinking.budget_tokens` is bucketed to an effort and back to Bedrock's budget table for
//!   Claude model ids (`anthropic.claude` in the id); other models drop it.
//! - Token usage: Bedrock's cache reads and writes are counted in `input_tokens`.
//! - `anthropic-version` and `anthropic-beta` never reach Bedrock ([`super::forwarded_headers`]).
//! - Errors (HTTP and in-stream) keep Bedrock's status and arrive in Anthropic's error shape.

use super::anthropic_to_openai::OpenAiResponse;
use super::openai_to_bedrock::BedrockResponse;
use super::{BodyMode, PreparedRequest, ResponseTranslator, Target};
use crate::api::anthropic::MessagesRequestIn;
use crate::aws::eventstream::crc32;
use crate::error::{ErrorKind, GatewayError};
use crate::usage::TokenUsage;

/// Translates an Anthropic Messages body into a Converse request for `target`.
pub fn prepare(body: &[u8], target: &Target<'_>) -> Result<PreparedRequest, GatewayError> {
    let req: MessagesRequestIn<'_> = serde_json::from_slice(body)
        .map_err(|e| GatewayError::invalid(format!("The request body does not match the Messages API: {e}")))?;
    super::openai_to_bedrock::region(target.provider)?;
    let chat = super::anthropic_to_openai::request::to_openai(&req, target.model)?;
    let stream = chat.stream.unwrap_or(false);
    let converse = super::openai_to_bedrock::request::to_bedrock(&chat, target.model, target.defaults.max_tokens)?;
    let mut out = Vec::with_capacity(body.len() + 128);
    serde_json::to_writer(&mut out, &converse)
        .map_err(|e| GatewayError::new(ErrorKind::Internal, format!("could not encode the provider request: {e}")))?;
    // Bedrock names no message: an id from the arrival time and the body, in Anthropic's style.
    let id = format!("msg_bdrk_{:x}{:08x}", target.created_unix, crc32(body));
    // The intermediate Chat Completions stream always carries usage: Anthropic's `message_delta`
    // reports it.
    let inner = BedrockResponse::new(target.created_unix, id, target.model.to_owned(), true);
    Ok(PreparedRequest {
        path: super::provider_path(target.provider, &super::openai_to_bedrock::converse_path(target.model, stream)?),
        body: Some(out),
        headers: vec![("content-type", "application/json".to_owned())],
        translator: Box::new(BedrockToAnthropic { bedrock: inner, anthropic: OpenAiResponse::new() }),
        dropped: Vec::new(),
    })
}

/// Bedrock → Chat Completions → Anthropic, one response at a time.
#[derive(Debug)]
pub struct BedrockToAnthropic {
    bedrock: BedrockResponse,
    anthropic: OpenAiResponse,
}

impl ResponseTranslator for BedrockToAnthropic {
    fn on_headers(&mut self, status: u16, content_type: Option<&str>) -> BodyMode {
        self.bedrock.on_headers(status, content_type);
        // The outer translator sees what the inner one produces (SSE when streaming, else JSON),
        // so both pick the same mode; the outer one's is what the filter must follow.
        self.anthropic.on_headers(status, self.bedrock.content_type())
    }

    fn content_type(&self) -> Option<&'static str> {
        self.anthropic.content_type()
    }

    fn translate_body(&mut self, body: &[u8]) -> Result<Option<Vec<u8>>, GatewayError> {
        match self.bedrock.translate_body(body)? {
            Some(chat) => self.anthropic.translate_body(&chat),
            None => self.anthropic.translate_body(body),
        }
    }

    fn translate_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Vec<u8> {
        let chat = self.bedrock.translate_chunk(chunk, end_of_stream);
        self.anthropic.translate_chunk(&chat, end_of_stream)
    }

    fn usage(&self) -> TokenUsage {
        // Bedrock's own counts, cache reads and writes kept apart.
        self.bedrock.usage()
    }

    fn wanted_response_header(&self) -> Option<&'static str> {
        self.bedrock.wanted_response_header()
    }

    fn on_response_header(&mut self, value: &str) {
        self.bedrock.on_response_header(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::eventstream::{encode_message, HeaderValue};
    use crate::config::{BedrockApi, BedrockSettings, Defaults, ProviderConfig, ProviderKind, ProviderSettings};
    use serde_json::{json, Value};

    fn provider() -> ProviderConfig {
        ProviderConfig {
            name: "b".into(),
            kind: ProviderKind::Bedrock,
            cluster: "c".into(),
            credential: None,
            path_prefix: None,
            settings: ProviderSettings {
                bedrock: Some(BedrockSettings { region: "us-east-1".into(), api: BedrockApi::Converse }),
                ..Default::default()
            },
        }
    }

    fn prep(body: Value, model: &str) -> Result<PreparedRequest, GatewayError> {
        let p = provider();
        let d = Defaults { max_tokens: 100 };
        crate::translate::prepare(
            crate::translate::ClientApi::AnthropicMessages,
            &Target { provider: &p, model, defaults: &d, created_unix: 7 },
            body.to_string().as_bytes(),
        )
    }

    fn sent(p: &PreparedRequest) -> Value {
        serde_json::from_slice(p.body.as_deref().unwrap()).unwrap()
    }

    #[test]
    fn request_maps_system_messages_tools_images_and_config() {
        let p = prep(
            json!({"model": "alias", "max_tokens": 50, "system": [{"type": "text", "text": "be brief"}], "temperature": 0.5, "top_p": 0.9,
                "stop_sequences": ["END"], "tools": [{"name": "get_weather", "description": "d", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
                "tool_choice": {"type": "tool", "name": "get_weather"},
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "weather?"}, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}]}]}),
            "us.anthropic.claude-3-5-haiku-20241022-v1:0",
        )
        .unwrap();
        assert_eq!(p.path, "/model/us.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse");
        assert!(!p.headers.iter().any(|(k, _)| k.starts_with("anthropic")));
        let v = sent(&p);
        assert_eq!(v["system"], json!([{"text": "be brief"}]));
        assert_eq!(
            v["inferenceConfig"],
            json!({"maxTokens": 50, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]})
        );
        assert_eq!(v["toolConfig"]["tools"][0]["toolSpec"]["name"], "get_weather");
        assert_eq!(v["toolConfig"]["toolChoice"], json!({"tool": {"name": "get_weather"}}));
        assert_eq!(v["messages"][0]["content"][0], json!({"text": "weather?"}));
        assert_eq!(
            v["messages"][0]["content"][1],
            json!({"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}})
        );
        assert_eq!(
            v["messages"][1]["content"][0],
            json!({"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Paris"}}})
        );
        assert_eq!(v["messages"][2]["content"][0]["toolResult"]["toolUseId"], "t1");
        assert_eq!(v["messages"][2]["content"][0]["toolResult"]["content"], json!([{"text": "sunny"}]));
        assert!(v.get("model").is_none() && v.get("anthropic_version").is_none());

        let stream = prep(
            json!({"model": "a", "max_tokens": 5, "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
            "m",
        )
        .unwrap();
        assert_eq!(stream.path, "/model/m/converse-stream");
        let bad = prep(json!({"model": "a", "max_tokens": 5, "messages": [{"role": "robot", "content": "hi"}]}), "m");
        assert_eq!(bad.err().unwrap().status(), 400);
    }

    #[test]
    fn buffered_answer_and_errors_in_anthropic_shape() {
        let mut t = prep(json!({"model": "a", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}), "m")
            .unwrap()
            .translator;
        assert_eq!(t.on_headers(200, Some("application/json")), BodyMode::Buffered);
        let out = t
            .translate_body(br#"{"output":{"message":{"role":"assistant","content":[{"text":"Hello"},{"toolUse":{"toolUseId":"tu1","name":"f","input":{"x":1}}}]}},"stopReason":"tool_use","usage":{"inputTokens":4,"outputTokens":6,"totalTokens":10}}"#)
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["type"], "message");
        assert!(v["id"].as_str().unwrap().starts_with("msg_"));
        assert_eq!(
            v["content"],
            json!([{"type": "text", "text": "Hello"}, {"type": "tool_use", "id": "tu1", "name": "f", "input": {"x": 1}}])
        );
        assert_eq!(v["stop_reason"], "tool_use");
        assert_eq!((v["usage"]["input_tokens"].as_u64(), v["usage"]["output_tokens"].as_u64()), (Some(4), Some(6)));
        assert_eq!(t.usage(), TokenUsage { input: 4, output: 6, ..Default::default() });

        let mut t = prep(json!({"model": "a", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}), "m")
            .unwrap()
            .translator;
        t.on_headers(429, Some("application/json"));
        t.on_response_header("ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/");
        let v: Value =
            serde_json::from_slice(&t.translate_body(br#"{"message":"Too many requests"}"#).unwrap().unwrap()).unwrap();
        assert_eq!(v, json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Too many requests"}}));
    }

    #[test]
    fn event_stream_becomes_anthropic_events_and_exceptions_an_error_event() {
        let event = |kind: &str, payload: Value| {
            encode_message(
                &[
                    (":message-type", HeaderValue::String("event".into())),
                    (":event-type", HeaderValue::String(kind.into())),
                    (":content-type", HeaderValue::String("application/json".into())),
                ],
                payload.to_string().as_bytes(),
            )
        };
        let mut bytes = Vec::new();
        bytes.extend(event("messageStart", json!({"role": "assistant"})));
        bytes.extend(event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "Hel"}})));
        bytes.extend(event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "lo"}})));
        bytes.extend(event("contentBlockStop", json!({"contentBlockIndex": 0})));
        bytes.extend(event("messageStop", json!({"stopReason": "end_turn"})));
        bytes.extend(event(
            "metadata",
            json!({"usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5}, "metrics": {"latencyMs": 1}}),
        ));
        let run = |split: usize| {
            let mut t = prep(
                json!({"model": "a", "max_tokens": 5, "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
                "m",
            )
            .unwrap()
            .translator;
            assert_eq!(t.on_headers(200, Some("application/vnd.amazon.eventstream")), BodyMode::Streaming);
            assert_eq!(t.content_type(), Some("text/event-stream"));
            let split = split.min(bytes.len());
            let mut out = t.translate_chunk(&bytes[..split], false);
            out.extend(t.translate_chunk(&bytes[split..], true));
            (String::from_utf8(out).unwrap(), t.usage())
        };
        let (whole, usage) = run(bytes.len());
        assert_eq!(usage, TokenUsage { input: 3, output: 2, ..Default::default() });
        let events: Vec<&str> = whole.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
        assert_eq!(events.first(), Some(&"message_start"));
        assert_eq!(events.last(), Some(&"message_stop"));
        assert!(events.contains(&"content_block_delta") && events.contains(&"message_delta"));
        assert!(
            whole.contains(r#""text":"Hel""#)
                && whole.contains(r#""stop_reason":"end_turn""#)
                && whole.contains(r#""output_tokens":2"#)
        );
        for split in [1, 17, 100, 250] {
            assert_eq!(run(split).0, whole, "split at {split}");
        }

        let mut t = prep(
            json!({"model": "a", "max_tokens": 5, "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
            "m",
        )
        .unwrap()
        .translator;
        t.on_headers(200, Some("application/vnd.amazon.eventstream"));
        let exception = encode_message(
            &[
                (":message-type", HeaderValue::String("exception".into())),
                (":exception-type", HeaderValue::String("throttlingException".into())),
            ],
            br#"{"message":"slow down"}"#,
        );
        let out = String::from_utf8(t.translate_chunk(&exception, true)).unwrap();
        assert!(out.contains("event: error") && out.contains("slow down"), "{out}");
    }
}
