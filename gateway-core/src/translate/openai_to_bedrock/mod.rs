//! OpenAI Chat Completions clients served by AWS Bedrock's Converse API
//! (`POST /model/{modelId}/converse`, and `/converse-stream` for `stream: true`).
//!
//! Requests ([`request`]): `system`/`developer` messages → `system` text blocks; same-role turns
//! merged (Bedrock requires alternation); `tool` messages → `toolResult` blocks in a user turn;
//! assistant `tool_calls` → `toolUse` blocks (arguments parsed, `""` read as `{}`); images only as
//! bytes from base64 data URLs (png, jpeg, gif, webp) — Bedrock cannot fetch URLs and the gateway
//! does not fetch client-chosen URLs either, so `https://` images are a 400.
//!
//! | OpenAI field | what happens |
//! |---|---|
//! | `max_completion_tokens`, `max_tokens` | → `inferenceConfig.maxTokens` (the first wins); unset: Bedrock's model default |
//! | `temperature`, `top_p` | → `inferenceConfig.temperature`, `topP` |
//! | `stop` | → `inferenceConfig.stopSequences` |
//! | `stream` | picks `/converse-stream`; `stream_options.include_usage` decides the final usage chunk |
//! | `tools` (function) | → `toolConfig.tools[].toolSpec` `{name, description, inputSchema.json}`; absent/`{}` parameters → `{"type":"object","properties":{}}` (an empty spec is a Bedrock 400); other tool types → 400 |
//! | `tool_choice` | `auto`→`{auto:{}}`, `required`→`{any:{}}`, `{function}`→`{tool:{name}}`; `none`: tools left out (kept without a choice when the history has tool blocks, which Bedrock requires) |
//! | tool blocks in the history without `tools` | every tool named in the history is declared with an empty object schema |
//! | `parallel_tool_calls` | dropped silently (no Bedrock equivalent) |
//! | `response_format` | as for Anthropic: `json_object`/`json_schema` → a system instruction |
//! | `reasoning_effort` | Claude models (`anthropic.claude` in the model id): `additionalModelRequestFields.thinking` with the Anthropic budget table (and `maxTokens` defaulted); other models: dropped silently |
//! | `user`, `presence_penalty`, `frequency_penalty`, `seed`, `store`, `metadata`, `service_tier`, unknown fields | dropped silently |
//! | `n` ≠ 1, `logprobs`, `top_logprobs`, `logit_bias`, audio `modalities`/`audio`, `web_search_options`, `functions`/`function_call`, role `function` | 400, same as for Anthropic |
//!
//! Responses ([`response`], [`stream`]): text → `content`, `toolUse` → `tool_calls` with
//! JSON-string `arguments`, `reasoningContent` → `reasoning_content`; `stopReason` → finish
//! reason; usage with cache reads and writes counted as prompt tokens. Errors keep Bedrock's
//! status and get OpenAI's shape with the exception name (`x-amzn-errortype`) in `code`.
//!
//! Signing ([`sign`]): SigV4 over the final body, for service `bedrock` in the provider's
//! configured region, host `bedrock-runtime.{region}.amazonaws.com` (the Envoy cluster's
//! endpoint hostname must be that same name: Envoy's `auto_host_rewrite` sends it as Host).

use super::{BodyMode, PreparedRequest, ResponseTranslator, Target};
use crate::api::openai::ChatCompletionRequest;
use crate::aws::eventstream::crc32;
use crate::aws::sigv4::{sign_request, uri_encode};
use crate::aws::{is_valid_region, AwsCredentials};
use crate::config::ProviderConfig;
use crate::error::{ErrorKind, GatewayError};
use crate::usage::TokenUsage;

pub mod request;
pub mod response;
pub mod stream;

/// SigV4 service name of Bedrock Runtime.
pub const SIGNING_SERVICE: &str = "bedrock";
/// Content type of ConverseStream responses.
pub const EVENT_STREAM_CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";
/// The response header naming a Bedrock error's exception type.
pub const ERROR_TYPE_HEADER: &str = "x-amzn-errortype";

/// `/model/{modelId}/converse[-stream]`; the model id (which may be an ARN with `:` and `/`) is
/// one URL-encoded path segment.
pub fn converse_path(model_id: &str, stream: bool) -> Result<String, GatewayError> {
    if model_id.is_empty() || model_id == "." || model_id == ".." {
        return Err(GatewayError::new(ErrorKind::Internal, "the route's Bedrock model id is not usable"));
    }
    let action = if stream { "converse-stream" } else { "converse" };
    Ok(format!("/model/{}/{action}", uri_encode(model_id.as_bytes(), false)))
}

/// The provider's region, validated (it becomes part of a host name and the signature scope).
pub fn region(provider: &ProviderConfig) -> Result<&str, GatewayError> {
    match provider.settings.bedrock.as_ref().map(|b| b.region.as_str()) {
        Some(r) if is_valid_region(r) => Ok(r),
        _ => Err(GatewayError::new(
            ErrorKind::Internal,
            format!("provider '{}' needs settings.bedrock.region, an AWS region such as us-east-1", provider.name),
        )),
    }
}

/// The Bedrock Runtime host of a region.
pub fn host(region: &str) -> String {
    format!("bedrock-runtime.{region}.amazonaws.com")
}

/// Translates an OpenAI Chat Completions body into a Converse request for `target`.
pub fn prepare(body: &[u8], target: &Target<'_>) -> Result<PreparedRequest, GatewayError> {
    let req: ChatCompletionRequest<'_> = serde_json::from_slice(body)
        .map_err(|e| GatewayError::invalid(format!("We could not parse the JSON body of your request: {e}")))?;
    region(target.provider)?;
    let stream = req.stream.unwrap_or(false);
    let include_usage = req.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false);
    let converse = request::to_bedrock(&req, target.model, target.defaults.max_tokens)?;
    let mut out = Vec::with_capacity(body.len() + 128);
    serde_json::to_writer(&mut out, &converse)
        .map_err(|e| GatewayError::new(ErrorKind::Internal, format!("could not encode the provider request: {e}")))?;
    // Bedrock names neither the response nor the model: a per-request id from the arrival time
    // and the body, and the target's model id.
    let id = format!("chatcmpl-{:x}{:08x}", target.created_unix, crc32(body));
    Ok(PreparedRequest {
        path: super::provider_path(target.provider, &converse_path(target.model, stream)?),
        body: Some(out),
        headers: vec![("content-type", "application/json".to_owned())],
        translator: Box::new(BedrockResponse::new(target.created_unix, id, target.model.to_owned(), include_usage)),
        dropped: if request::thinking_unreplayable(&req, target.model) { vec!["thinking"] } else { Vec::new() },
    })
}

/// The headers that authenticate one attempt: `:authority` plus SigV4's (`x-amz-date`,
/// `x-amz-content-sha256`, `x-amz-security-token` for temporary credentials, `authorization`),
/// computed over the final `path` and `body`. Without a configured credential nothing is signed
/// (local upstreams). The error never contains the secret.
pub fn sign(
    provider: &ProviderConfig,
    secret: Option<&str>,
    path: &str,
    body: &[u8],
    unix_seconds: u64,
) -> Result<Vec<(&'static str, String)>, GatewayError> {
    let region = region(provider)?;
    let host = host(region);
    let Some(secret) = secret else { return Ok(vec![(":authority", host)]) };
    let credentials = AwsCredentials::from_secret(secret).map_err(|e| {
        GatewayError::new(
            ErrorKind::Internal,
            format!("provider '{}' has unusable AWS credentials: {e}", provider.name),
        )
    })?;
    let mut headers = sign_request(
        &credentials,
        region,
        SIGNING_SERVICE,
        "POST",
        &host,
        path,
        Some("application/json"),
        body,
        unix_seconds,
    );
    headers.insert(0, (":authority", host));
    Ok(headers)
}

/// Turns one Bedrock response (JSON, event stream or error) into OpenAI's shape.
#[derive(Debug)]
pub struct BedrockResponse {
    status: u16,
    mode: BodyMode,
    created: u64,
    id: String,
    model: String,
    error_type: Option<String>,
    include_usage: bool,
    /// Made on the first streamed chunk: a buffered answer never needs one.
    stream: Option<stream::StreamTranslator>,
    buffered_usage: TokenUsage,
}

impl BedrockResponse {
    pub fn new(created: u64, id: String, model: String, include_usage: bool) -> Self {
        BedrockResponse {
            status: 200,
            mode: BodyMode::Buffered,
            created,
            include_usage,
            stream: None,
            id,
            model,
            error_type: None,
            buffered_usage: TokenUsage::default(),
        }
    }
}

impl ResponseTranslator for BedrockResponse {
    fn on_headers(&mut self, status: u16, content_type: Option<&str>) -> BodyMode {
        self.status = status;
        self.mode = super::translated_body_mode(status, content_type, EVENT_STREAM_CONTENT_TYPE);
        self.mode
    }

    fn content_type(&self) -> Option<&'static str> {
        Some(super::translated_content_type(self.mode))
    }

    fn wanted_response_header(&self) -> Option<&'static str> {
        Some(ERROR_TYPE_HEADER)
    }

    fn on_response_header(&mut self, value: &str) {
        self.error_type = Some(value.to_owned());
    }

    fn translate_body(&mut self, body: &[u8]) -> Result<Option<Vec<u8>>, GatewayError> {
        if !(200..300).contains(&self.status) {
            return Ok(Some(response::translate_error(self.status, self.error_type.as_deref(), body)));
        }
        let (out, usage) = response::translate_message(body, self.created, &self.id, &self.model)?;
        self.buffered_usage = usage;
        Ok(Some(out))
    }

    fn translate_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Vec<u8> {
        let (created, include_usage) = (self.created, self.include_usage);
        let (id, model) = (&self.id, &self.model);
        self.stream
            .get_or_insert_with(|| stream::StreamTranslator::new(created, id.clone(), model.clone(), include_usage))
            .push(chunk, end_of_stream)
    }

    fn usage(&self) -> TokenUsage {
        match self.mode {
            BodyMode::Streaming => self.stream.as_ref().map(|s| s.usage()).unwrap_or_default(),
            BodyMode::Buffered => self.buffered_usage,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BedrockSettings, Defaults, ProviderKind, ProviderSettings};
    use serde_json::Value;

    fn provider(region: &str) -> ProviderConfig {
        ProviderConfig {
            name: "b".into(),
            kind: ProviderKind::Bedrock,
            cluster: "c".into(),
            credential: None,
            path_prefix: None,
            settings: ProviderSettings {
                bedrock: Some(BedrockSettings { region: region.into(), ..Default::default() }),
                ..Default::default()
            },
        }
    }

    fn prep(body: &str, model: &str, region: &str) -> Result<PreparedRequest, GatewayError> {
        let p = provider(region);
        let d = Defaults { max_tokens: 100 };
        prepare(body.as_bytes(), &Target { provider: &p, model, defaults: &d, created_unix: 1 })
    }

    #[test]
    fn paths_encode_the_model_id() {
        let body = r#"{"model":"a","messages":[{"role":"user","content":"hi"}]}"#;
        assert_eq!(
            prep(body, "us.amazon.nova-micro-v1:0", "us-east-1").unwrap().path,
            "/model/us.amazon.nova-micro-v1%3A0/converse"
        );
        let stream = r#"{"model":"a","messages":[{"role":"user","content":"hi"}],"stream":true}"#;
        let arn =
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0";
        assert_eq!(
            prep(stream, arn, "us-east-1").unwrap().path,
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream"
        );
        assert_eq!(prep(body, "..", "us-east-1").err().unwrap().status(), 500);
        assert_eq!(prep(body, "m", "us-east-1.evil.com").err().unwrap().status(), 500);
        let prepared = prep(body, "m", "eu-west-3").unwrap();
        let v: Value = serde_json::from_slice(&prepared.body.unwrap()).unwrap();
        assert_eq!(v["messages"][0]["content"][0]["text"], "hi");
    }

    #[test]
    fn signing_sets_host_date_hash_token_and_authorization() {
        let p = provider("us-east-1");
        let secret = AwsCredentials {
            access_key_id: "AKID".into(),
            secret_access_key: "SECRET".into(),
            session_token: Some("TOKEN".into()),
        }
        .to_secret();
        let headers = sign(&p, Some(&secret), "/model/m/converse", b"{}", 1_440_938_160).unwrap();
        let names: Vec<&str> = headers.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [":authority", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token", "authorization"]
        );
        assert_eq!(headers[0].1, "bedrock-runtime.us-east-1.amazonaws.com");
        assert_eq!(headers[1].1, "20150830T123600Z");
        assert!(headers[4].1.starts_with("AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature="));
        assert!(!headers.iter().any(|(_, v)| v.contains("SECRET")));
        assert_eq!(sign(&p, None, "/x", b"", 0).unwrap().len(), 1);
        let err = sign(&p, Some("not-json-secret"), "/x", b"", 0).unwrap_err();
        assert!(!err.message.contains("not-json-secret"));
        assert_eq!(err.status(), 500);
    }

    #[test]
    fn error_type_header_reaches_the_error_body() {
        let mut t = prep(r#"{"messages":[{"role":"user","content":"hi"}]}"#, "m", "us-east-1").unwrap().translator;
        assert_eq!(t.on_headers(429, Some("application/json")), BodyMode::Buffered);
        assert_eq!(t.wanted_response_header(), Some("x-amzn-errortype"));
        t.on_response_header("ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/");
        let v: Value =
            serde_json::from_slice(&t.translate_body(br#"{"message":"Too many requests"}"#).unwrap().unwrap()).unwrap();
        assert_eq!(v["error"]["type"], "rate_limit_error");
        assert_eq!(v["error"]["code"], "ThrottlingException");
        let mut t = prep(r#"{"messages":[{"role":"user","content":"hi"}],"stream":true}"#, "m", "us-east-1")
            .unwrap()
            .translator;
        assert_eq!(t.on_headers(200, Some("application/vnd.amazon.eventstream")), BodyMode::Streaming);
        assert_eq!(t.content_type(), Some("text/event-stream"));
    }
}
