//! Request and response translation, one module per (client API → provider API) direction.
//!
//! The filter calls [`inspect`] once per request (downstream: model, stream flag, validation) and
//! [`prepare`] once per upstream attempt (body, path and headers for that attempt's provider, plus
//! the [`ResponseTranslator`] that turns the provider's answer back into the client's API).

use crate::config::{Defaults, ProviderConfig, ProviderKind};
use crate::error::GatewayError;
use crate::usage::TokenUsage;

pub mod azure;
pub mod openai_passthrough;
pub mod openai_to_anthropic;
pub mod openai_to_gemini;

/// The API a client called the gateway with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientApi {
    /// `POST /v1/chat/completions`.
    OpenAiChat,
}

impl ClientApi {
    /// The client API served at `path` (query string ignored), if any.
    pub fn from_path(path: &str) -> Option<ClientApi> {
        let path = path.split('?').next().unwrap_or(path);
        match path.trim_end_matches('/') {
            "/v1/chat/completions" | "/chat/completions" => Some(ClientApi::OpenAiChat),
            _ => None,
        }
    }
}

/// What the downstream filter learns from a client body before choosing a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFacts {
    pub model: String,
    pub stream: bool,
}

/// The attempt's destination, as translation needs it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub provider: &'a ProviderConfig,
    /// The model name the provider expects.
    pub model: &'a str,
    pub defaults: &'a Defaults,
    /// Unix seconds when the request arrived: OpenAI's `created`, for providers that omit it.
    pub created_unix: u64,
}

/// A request translated for one provider.
pub struct PreparedRequest {
    /// The upstream `:path`, provider path prefix included.
    pub path: String,
    /// The new body; `None` leaves the client's body untouched.
    pub body: Option<Vec<u8>>,
    /// Provider-specific headers (never credentials: the filter adds those).
    pub headers: Vec<(&'static str, String)>,
    pub translator: Box<dyn ResponseTranslator>,
}

/// How the filter must hand the response body to the translator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyMode {
    /// Collect the whole body, then call [`ResponseTranslator::translate_body`] once.
    Buffered,
    /// Call [`ResponseTranslator::translate_chunk`] for every chunk as it arrives.
    Streaming,
}

/// Turns one upstream response back into the client's API. One instance per attempt.
pub trait ResponseTranslator {
    /// Sees the upstream status and content type; decides how the body will be delivered.
    fn on_headers(&mut self, status: u16, content_type: Option<&str>) -> BodyMode;

    /// Content type of the translated body, if it differs from the upstream's.
    fn content_type(&self) -> Option<&'static str> {
        None
    }

    /// Translates a complete buffered body. `Ok(None)` keeps the upstream bytes unchanged; `Err`
    /// replaces the response with that error (status included).
    fn translate_body(&mut self, body: &[u8]) -> Result<Option<Vec<u8>>, GatewayError>;

    /// Translates one streamed chunk; returns the bytes to send in its place (maybe empty, when an
    /// event is still incomplete). Errors are reported inside the stream, in the client's format.
    fn translate_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Vec<u8>;

    /// Tokens counted so far (final once the body has ended).
    fn usage(&self) -> TokenUsage;
}

/// Reads the client body far enough to route it, and rejects what no provider could serve.
pub fn inspect(api: ClientApi, body: &[u8]) -> Result<RequestFacts, GatewayError> {
    match api {
        ClientApi::OpenAiChat => openai_passthrough::inspect(body),
    }
}

/// Translates the client body for one attempt at `target`.
pub fn prepare(api: ClientApi, target: &Target<'_>, body: &[u8]) -> Result<PreparedRequest, GatewayError> {
    match (api, target.provider.kind) {
        (ClientApi::OpenAiChat, ProviderKind::Openai) => openai_passthrough::prepare(body, target),
        (ClientApi::OpenAiChat, ProviderKind::Anthropic) => openai_to_anthropic::prepare(body, target),
        (ClientApi::OpenAiChat, ProviderKind::Gemini) => openai_to_gemini::prepare(body, target),
        // Azure speaks OpenAI's format: the passthrough, with Azure's path and error shape.
        (ClientApi::OpenAiChat, ProviderKind::AzureOpenai) => openai_passthrough::prepare(body, target),
    }
}

/// Client headers that carry the caller's own credentials: removed before any upstream call so a
/// virtual key or JWT never reaches a provider, and one provider's key never reaches another.
pub const CREDENTIAL_HEADERS: &[&str] = &["authorization", "x-api-key", "api-key", "x-goog-api-key", "proxy-authorization"];

/// The header that carries `secret` to a provider of `kind`.
pub fn credential_header(kind: ProviderKind, secret: &str) -> (&'static str, String) {
    match kind {
        ProviderKind::Openai => ("authorization", format!("Bearer {secret}")),
        ProviderKind::Anthropic => ("x-api-key", secret.to_owned()),
        ProviderKind::Gemini => ("x-goog-api-key", secret.to_owned()),
        ProviderKind::AzureOpenai => ("api-key", secret.to_owned()),
    }
}

/// Checks a provider's settings when a config is loaded (URL parts must be safe in a path).
pub fn validate_provider(provider: &ProviderConfig) -> Result<(), String> {
    match provider.kind {
        ProviderKind::AzureOpenai => azure::validate_provider(provider),
        _ => Ok(()),
    }
}

/// Checks a route target's model for its provider when a config is loaded: models that become
/// path segments (Gemini models, Azure deployments) may not carry `/`, `?` or other URL syntax.
pub fn validate_target(provider: &ProviderConfig, model: &str) -> Result<(), String> {
    match provider.kind {
        ProviderKind::Gemini => openai_to_gemini::validate_model(model).map(|_| ()),
        ProviderKind::AzureOpenai => azure::validate_target(provider, model),
        _ => Ok(()),
    }
}

/// Joins a provider's optional path prefix and an API path.
pub(crate) fn provider_path(provider: &ProviderConfig, path: &str) -> String {
    match provider.path_prefix.as_deref() {
        Some(prefix) => format!("{}{}", prefix.trim_end_matches('/'), path),
        None => path.to_owned(),
    }
}
