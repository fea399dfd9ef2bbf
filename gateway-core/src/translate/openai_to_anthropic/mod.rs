//! OpenAI Chat Completions clients served by Anthropic's Messages API.
//!
//! Requests ([`request`]): `system`/`developer` messages (wherever they appear) become `system`
//! (one string, or text blocks when there are several); consecutive messages of the same
//! Anthropic role are merged, because Anthropic requires user/assistant alternation; `tool`
//! messages become `tool_result` blocks in a user turn, so consecutive results share one turn;
//! assistant `tool_calls` become `tool_use` blocks (arguments parsed as JSON, `""` read as `{}`);
//! images: base64 data URLs → base64 sources, http(s) URLs → URL sources.
//!
//! Field by field:
//!
//! | OpenAI field | what happens |
//! |---|---|
//! | `max_completion_tokens`, `max_tokens` | → `max_tokens` (the first wins); default from `defaults.max_tokens`, Anthropic requires one |
//! | `temperature`, `top_p` | kept as is (Anthropic rejects temperature > 1 with a 400, which is relayed) |
//! | `stop` (string or array) | → `stop_sequences` |
//! | `user` | → `metadata.user_id` |
//! | `stream` | kept; `stream_options.include_usage` decides the final usage chunk |
//! | `tools` (function) | → `{name, description, input_schema}`; absent/`{}` parameters → `{"type":"object","properties":{}}`; other tool types → 400 |
//! | `tool_choice` | `none`→none, `auto`→auto, `required`→any, `{function}`→tool; dropped when there are no tools |
//! | `parallel_tool_calls: false` | → `disable_parallel_tool_use: true` |
//! | `response_format` | `text`: ignored. `json_object` / `json_schema`: a system instruction asking for JSON (matching the schema, quoted in it). Best-effort: Anthropic has no JSON mode, and forcing a tool call would change the response shape (tool call instead of content) in ways clients do not expect |
//! | `reasoning_effort` | → `thinking: {type: enabled, budget_tokens}`: low 1024, medium 4096, high 16384, xhigh 32768, capped below `max_tokens` (400 if that leaves less than 1024); `none`/`minimal`: no thinking. Thinking text returns as `reasoning_content` |
//! | `n` ≠ 1 | 400 (`param: n`): the caller would silently get fewer choices |
//! | `logprobs: true`, `top_logprobs > 0` | 400: Anthropic has no log probabilities |
//! | non-empty `logit_bias` | 400: no token biasing |
//! | `modalities` other than text, `audio` | 400: no audio output |
//! | `web_search_options` | 400: not translated |
//! | `functions`, `function_call`, role `function` (legacy) | 400: use tools |
//! | `presence_penalty`, `frequency_penalty`, `seed` | dropped silently: sampling hints without an Anthropic equivalent; the answer is still complete |
//! | `store`, `metadata`, `service_tier`, `prediction`, `prompt_cache_key`, `safety_identifier`, any unknown field | dropped silently: bookkeeping or OpenAI-platform features that do not change the answer |
//!
//! Thinking across turns: with thinking enabled, Anthropic requires the last assistant turn of a
//! tool loop to start with its thinking block, signature included, and a Chat Completions client
//! cannot send one back. So a request whose last assistant turn has tool calls is sent with
//! thinking switched off (`thinking` named in `x-ai-gateway-dropped`,
//! [`request::drop_unreplayable_thinking`]); the model still answers from the tool results, and
//! thinking is back on the next turn that does not continue a tool loop. The same holds for
//! Claude on Bedrock InvokeModel ([`super::bedrock_invoke`]).
//!
//! Responses ([`response`], [`stream`]): text blocks → `content`, `tool_use` → `tool_calls` with
//! JSON-string `arguments`, thinking → `reasoning_content` (DeepSeek/LiteLLM convention), usage
//! with cache reads and writes counted as prompt tokens. Provider errors keep their HTTP status
//! and get OpenAI's error shape.

use super::{BodyMode, PreparedRequest, ResponseTranslator, Target};
use crate::api::anthropic::API_VERSION;
use crate::api::openai::ChatCompletionRequest;
use crate::error::{ErrorKind, GatewayError};
use crate::usage::TokenUsage;

pub mod request;
pub mod response;
pub mod stream;

/// The Messages endpoint.
pub const MESSAGES_PATH: &str = "/v1/messages";

/// Translates an OpenAI Chat Completions body into an Anthropic Messages request for `target`.
pub fn prepare(body: &[u8], target: &Target<'_>) -> Result<PreparedRequest, GatewayError> {
    let req: ChatCompletionRequest<'_> = serde_json::from_slice(body)
        .map_err(|e| GatewayError::invalid(format!("We could not parse the JSON body of your request: {e}")))?;
    let include_usage = req.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false);
    let mut anthropic = request::to_anthropic(&req, target.model, target.defaults.max_tokens)?;
    let mut dropped = Vec::new();
    if request::drop_unreplayable_thinking(&mut anthropic) {
        dropped.push("thinking");
    }
    let mut out = Vec::with_capacity(body.len() + 256);
    serde_json::to_writer(&mut out, &anthropic)
        .map_err(|e| GatewayError::new(ErrorKind::Internal, format!("could not encode the provider request: {e}")))?;
    Ok(PreparedRequest {
        path: super::provider_path(target.provider, MESSAGES_PATH),
        body: Some(out),
        headers: vec![("content-type", "application/json".to_owned()), ("anthropic-version", API_VERSION.to_owned())],
        translator: Box::new(AnthropicResponse::new(target.created_unix, include_usage)),
        dropped,
    })
}

/// Turns one Anthropic response (JSON, SSE or error) into OpenAI's shape.
#[derive(Debug)]
pub struct AnthropicResponse {
    status: u16,
    mode: BodyMode,
    created: u64,
    include_usage: bool,
    /// Made on the first streamed chunk: a buffered answer never needs one (natively ~4k
    /// instructions per request to set one up, callgrind).
    stream: Option<stream::StreamTranslator>,
    buffered_usage: TokenUsage,
    buffered_model: Option<String>,
}

impl AnthropicResponse {
    /// `created` is OpenAI's `created` (Anthropic sends none); `include_usage` is the client's
    /// `stream_options.include_usage`.
    pub fn new(created: u64, include_usage: bool) -> Self {
        AnthropicResponse {
            status: 200,
            mode: BodyMode::Buffered,
            created,
            include_usage,
            stream: None,
            buffered_usage: TokenUsage::default(),
            buffered_model: None,
        }
    }
}

impl ResponseTranslator for AnthropicResponse {
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
        let (out, usage, model) = response::translate_message(body, self.created)?;
        self.buffered_usage = usage;
        self.buffered_model = super::response_model_str(&model);
        Ok(Some(out))
    }

    fn translate_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Vec<u8> {
        let (created, include_usage) = (self.created, self.include_usage);
        self.stream
            .get_or_insert_with(|| stream::StreamTranslator::new(created, include_usage))
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
    use crate::config::{Defaults, ProviderConfig, ProviderKind};
    use serde_json::{json, Value};

    fn provider(prefix: Option<&str>) -> ProviderConfig {
        ProviderConfig {
            name: "a".into(),
            kind: ProviderKind::Anthropic,
            cluster: "c".into(),
            credential: None,
            path_prefix: prefix.map(Into::into),
            settings: Default::default(),
        }
    }

    fn prep(body: &str, prefix: Option<&str>) -> Result<PreparedRequest, GatewayError> {
        let p = provider(prefix);
        let d = Defaults { max_tokens: 321 };
        prepare(body.as_bytes(), &Target { provider: &p, model: "claude-real", defaults: &d, created_unix: 99 })
    }

    #[test]
    fn path_headers_and_body() {
        let prepared = prep(r#"{"model":"alias","messages":[{"role":"user","content":"hi"}]}"#, None).unwrap();
        assert_eq!(prepared.path, "/v1/messages");
        assert_eq!(
            prepared.headers,
            vec![("content-type", "application/json".to_owned()), ("anthropic-version", "2023-06-01".to_owned())]
        );
        let body: Value = serde_json::from_slice(&prepared.body.unwrap()).unwrap();
        assert_eq!(body["model"], "claude-real");
        assert_eq!(body["max_tokens"], 321);
        assert_eq!(
            prep(r#"{"messages":[{"role":"user","content":"hi"}]}"#, Some("/anthropic/")).unwrap().path,
            "/anthropic/v1/messages"
        );
    }

    #[test]
    fn malformed_bodies_are_400() {
        for body in [
            "",
            "nope",
            "[]",
            r#"{"messages":"x"}"#,
            r#"{"messages":[{"role":"robot","content":"x"}]}"#,
            r#"{"messages":[{"role":"user","content":5}]}"#,
        ] {
            let err = prep(body, None).err().unwrap();
            assert_eq!(err.status(), 400, "{body}");
            let v: Value = serde_json::from_slice(&err.to_openai_body()).unwrap();
            assert_eq!(v["error"]["type"], "invalid_request_error");
        }
    }

    #[test]
    fn buffered_success_error_and_streaming_modes() {
        let body =
            r#"{"messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#;
        let mut t = prep(body, None).unwrap().translator;
        assert_eq!(t.on_headers(200, Some("application/json")), BodyMode::Buffered);
        assert_eq!(t.content_type(), Some("application/json"));
        let out = t.translate_body(br#"{"id":"m","model":"c","content":[{"type":"text","text":"yo"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":2}}"#).unwrap().unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "yo");
        assert_eq!(v["created"], 99);
        assert_eq!(t.usage().total(), 5);

        let mut t = prep(body, None).unwrap().translator;
        assert_eq!(t.on_headers(529, Some("application/json")), BodyMode::Buffered);
        let out = t
            .translate_body(br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#)
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            json!({"error": {"message": "Overloaded", "type": "server_error", "param": null, "code": "overloaded_error"}})
        );

        let mut t = prep(body, None).unwrap().translator;
        assert_eq!(t.on_headers(200, Some("text/event-stream; charset=utf-8")), BodyMode::Streaming);
        assert_eq!(t.content_type(), Some("text/event-stream"));
        let out = t.translate_chunk(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":5}}}\n\n", false);
        assert!(out.starts_with(b"data: {"));
        assert_eq!(t.usage().input, 5);
        let mut t = prep(body, None).unwrap().translator;
        t.on_headers(200, Some("application/json"));
        assert_eq!(t.translate_body(b"garbage").unwrap_err().status(), 502);
    }
}
