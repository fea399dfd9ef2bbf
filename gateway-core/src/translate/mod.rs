//! Request and response translation, one module per (client API → provider API) direction.
//!
//! The filter calls [`inspect`] once per request (downstream: model, stream flag, validation) and
//! [`prepare`] once per upstream attempt (body, path and headers for that attempt's provider, plus
//! the [`ResponseTranslator`] that turns the provider's answer back into the client's API).

use crate::config::{Defaults, ProviderConfig, ProviderKind};
use crate::error::GatewayError;
use crate::usage::TokenUsage;

pub mod anthropic_delta;
pub mod anthropic_passthrough;
pub mod azure;
pub mod bedrock_invoke;
pub mod count_tokens;
pub mod embeddings;
pub mod messages_via_model;
pub mod models;
pub mod openai_chunks;
pub mod openai_passthrough;
pub mod openai_to_anthropic;
pub mod openai_to_bedrock;
pub mod openai_to_gemini;
pub mod responses;

/// How a translated response is passed on: streamed only when the provider streams a success,
/// since errors come as one JSON body even on streaming requests (as with OpenAI itself).
fn translated_body_mode(status: u16, content_type: Option<&str>, stream_type: &str) -> BodyMode {
    let is_stream = content_type.is_some_and(|c| c.trim_start().starts_with(stream_type));
    if (200..300).contains(&status) && is_stream {
        BodyMode::Streaming
    } else {
        BodyMode::Buffered
    }
}

/// What the client is told a translated response is: SSE when streamed, JSON otherwise.
fn translated_content_type(mode: BodyMode) -> &'static str {
    match mode {
        BodyMode::Streaming => "text/event-stream",
        BodyMode::Buffered => "application/json",
    }
}

/// The API a client called the gateway with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientApi {
    /// `POST /v1/chat/completions`.
    OpenAiChat,
    /// `POST /v1/messages`: Anthropic SDKs and Claude Code with the gateway as base URL.
    AnthropicMessages,
    /// `POST /v1/embeddings`.
    OpenAiEmbeddings,
    /// `POST /v1/messages/count_tokens`: never billed; see [`count_tokens`].
    AnthropicCountTokens,
    /// `POST /v1/responses`: OpenAI's Responses API (Codex CLI, the Agents SDK); see [`responses`].
    OpenAiResponses,
    /// `POST /v1/responses/input_tokens`: never billed; see [`responses`].
    OpenAiResponsesInputTokens,
}

impl ClientApi {
    /// The client API served at `path` (query string ignored), if any.
    pub fn from_path(path: &str) -> Option<ClientApi> {
        let path = path.split('?').next().unwrap_or(path);
        match path.trim_end_matches('/') {
            "/v1/chat/completions" | "/chat/completions" => Some(ClientApi::OpenAiChat),
            "/v1/messages" => Some(ClientApi::AnthropicMessages),
            "/v1/messages/count_tokens" => Some(ClientApi::AnthropicCountTokens),
            "/v1/embeddings" | "/embeddings" => Some(ClientApi::OpenAiEmbeddings),
            "/v1/responses" | "/responses" => Some(ClientApi::OpenAiResponses),
            "/v1/responses/input_tokens" | "/responses/input_tokens" => Some(ClientApi::OpenAiResponsesInputTokens),
            _ => None,
        }
    }

    /// The error shape for a request to `path`, even one no client API serves: Anthropic clients
    /// calling an unsupported Anthropic endpoint (`/v1/messages/batches`, say) must be able to
    /// read the 404.
    pub fn error_shape_for_path(path: &str) -> crate::error::ErrorShape {
        let path = path.split('?').next().unwrap_or(path);
        match ClientApi::from_path(path) {
            Some(api) => api.error_shape(),
            None if path.starts_with("/v1/messages/") => crate::error::ErrorShape::Anthropic,
            None => crate::error::ErrorShape::OpenAi,
        }
    }

    /// Whether this API only counts tokens: never billed, and answered with the gateway's
    /// estimate where the provider cannot count.
    pub fn counts_tokens(self) -> bool {
        matches!(self, ClientApi::AnthropicCountTokens | ClientApi::OpenAiResponsesInputTokens)
    }

    /// Whether the provider of `kind` counts tokens for `model` itself for this API (else the
    /// gateway answers with its estimate, [`Self::estimate_count`]).
    pub fn provider_counts(self, provider: &ProviderConfig, model: &str) -> bool {
        match self {
            ClientApi::OpenAiResponsesInputTokens => responses::provider_counts(provider, model),
            _ => count_tokens::provider_counts(provider, model),
        }
    }

    /// The gateway's own token count answer for a counting API's body.
    pub fn estimate_count(self, body: &[u8]) -> Result<Vec<u8>, GatewayError> {
        match self {
            ClientApi::OpenAiResponsesInputTokens => responses::estimate_body(body),
            _ => count_tokens::estimate_body(body),
        }
    }

    /// The error body family this API's clients read.
    pub fn error_shape(self) -> crate::error::ErrorShape {
        match self {
            ClientApi::OpenAiChat
            | ClientApi::OpenAiEmbeddings
            | ClientApi::OpenAiResponses
            | ClientApi::OpenAiResponsesInputTokens => crate::error::ErrorShape::OpenAi,
            ClientApi::AnthropicMessages | ClientApi::AnthropicCountTokens => crate::error::ErrorShape::Anthropic,
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
    /// Client request fields the provider cannot take and the translation left out on purpose
    /// (field-matrix decisions), named to the client in the `x-ai-gateway-dropped` header.
    pub dropped: Vec<&'static str>,
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

    /// The model the provider says answered (`gen_ai.response.model`), once seen; `None` when
    /// the provider does not report one (Bedrock Converse) or the answer was an error.
    fn response_model(&self) -> Option<&str> {
        None
    }

    /// A response header the translator needs besides the content type (Bedrock's
    /// `x-amzn-errortype`); the filter passes its value to [`Self::on_response_header`].
    fn wanted_response_header(&self) -> Option<&'static str> {
        None
    }

    /// The value of [`Self::wanted_response_header`], when the response has it; called after
    /// [`Self::on_headers`] and before the body.
    fn on_response_header(&mut self, _value: &str) {}
}

/// Reads the client body far enough to route it, and rejects what no provider could serve.
pub fn inspect(api: ClientApi, body: &[u8]) -> Result<RequestFacts, GatewayError> {
    inspect_keeping(api, body).map(|(facts, _)| facts)
}

/// What [`inspect_keeping`] decoded and [`prepare_parsed`] can reuse instead of decoding the
/// same body again (the Responses API: its full decode is most of inspecting it; Chat
/// Completions: the top-level members the passthrough splices). Opaque; the default holds
/// nothing.
#[derive(Default)]
pub struct Parsed<'a>(Kept<'a>);

/// What a [`Parsed`] holds.
#[derive(Default)]
enum Kept<'a> {
    #[default]
    Nothing,
    Responses(Box<(crate::conversation::Request, String)>),
    ChatMembers(openai_passthrough::RawObject<'a>),
}

impl<'a> Parsed<'a> {
    fn responses(self) -> Option<(crate::conversation::Request, String)> {
        match self.0 {
            Kept::Responses(decoded) => Some(*decoded),
            _ => None,
        }
    }

    fn chat_members(self) -> Option<openai_passthrough::RawObject<'a>> {
        match self.0 {
            Kept::ChatMembers(members) => Some(members),
            _ => None,
        }
    }
}

/// [`inspect`], keeping what it decoded for [`prepare_parsed`] of the same body.
pub fn inspect_keeping(api: ClientApi, body: &[u8]) -> Result<(RequestFacts, Parsed<'_>), GatewayError> {
    let facts = match api {
        ClientApi::OpenAiResponses => {
            let (facts, decoded) = responses::inspect_keeping(body)?;
            return Ok((facts, Parsed(Kept::Responses(Box::new(decoded)))));
        }
        ClientApi::OpenAiChat => {
            let (facts, members) = openai_passthrough::inspect_members(body)?;
            return Ok((facts, Parsed(Kept::ChatMembers(members))));
        }
        ClientApi::AnthropicMessages => anthropic_passthrough::inspect(body),
        ClientApi::OpenAiEmbeddings => embeddings::inspect(body),
        ClientApi::AnthropicCountTokens => count_tokens::inspect(body),
        ClientApi::OpenAiResponsesInputTokens => responses::inspect_count(body),
    }?;
    Ok((facts, Parsed::default()))
}

/// Translates the client body for one attempt at `target`, without client headers.
pub fn prepare(api: ClientApi, target: &Target<'_>, body: &[u8]) -> Result<PreparedRequest, GatewayError> {
    prepare_with_headers(api, target, body, &[])
}

/// Translates the client body for one attempt at `target`. `client_headers` are the captured
/// [`FORWARDABLE_CLIENT_HEADERS`]: Bedrock InvokeModel moves `anthropic-beta` into the body.
pub fn prepare_with_headers(
    api: ClientApi,
    target: &Target<'_>,
    body: &[u8],
    client_headers: &[(String, String)],
) -> Result<PreparedRequest, GatewayError> {
    prepare_parsed(api, target, body, client_headers, Parsed::default())
}

/// [`prepare_with_headers`] for a body [`inspect_keeping`] already decoded into `parsed` (the
/// same body: the decode is not repeated).
pub fn prepare_parsed(
    api: ClientApi,
    target: &Target<'_>,
    body: &[u8],
    client_headers: &[(String, String)],
    parsed: Parsed<'_>,
) -> Result<PreparedRequest, GatewayError> {
    let invoke =
        target.provider.kind == ProviderKind::Bedrock && bedrock_invoke::uses_invoke(target.provider, target.model);
    match (api, target.provider.kind) {
        (ClientApi::OpenAiResponses, _) => responses::prepare_decoded(body, target, parsed.responses()),
        (ClientApi::OpenAiResponsesInputTokens, _) => responses::prepare_count(body, target),
        // Claude on Bedrock: Anthropic's own format through InvokeModel (`settings.bedrock.api`).
        (ClientApi::AnthropicMessages, ProviderKind::Bedrock) if invoke => {
            bedrock_invoke::prepare_messages(body, target, client_headers)
        }
        (ClientApi::OpenAiChat, ProviderKind::Bedrock) if invoke => bedrock_invoke::prepare_chat(body, target),
        // Each of these dispatches on the provider kind itself and names the kinds still pending.
        (ClientApi::AnthropicMessages, _) => anthropic_passthrough::prepare_any(body, target),
        (ClientApi::OpenAiEmbeddings, _) => embeddings::prepare(body, target),
        (ClientApi::OpenAiChat, ProviderKind::Openai) => {
            openai_passthrough::prepare_members(body, target, parsed.chat_members())
        }
        (ClientApi::OpenAiChat, ProviderKind::Anthropic) => openai_to_anthropic::prepare(body, target),
        (ClientApi::OpenAiChat, ProviderKind::Gemini) => openai_to_gemini::prepare(body, target),
        // Azure speaks OpenAI's format: the passthrough, with Azure's path and error shape.
        (ClientApi::OpenAiChat, ProviderKind::AzureOpenai) => {
            openai_passthrough::prepare_members(body, target, parsed.chat_members())
        }
        (ClientApi::OpenAiChat, ProviderKind::Bedrock) => openai_to_bedrock::prepare(body, target),
        (ClientApi::AnthropicCountTokens, ProviderKind::Anthropic) => count_tokens::prepare_anthropic(body, target),
        (ClientApi::AnthropicCountTokens, ProviderKind::Bedrock) if invoke => {
            bedrock_invoke::prepare_count_tokens_with_headers(body, target, client_headers)
        }
        // The filter answers these with the gateway's estimate (`count_tokens::provider_counts`)
        // and never gets here.
        (ClientApi::AnthropicCountTokens, ProviderKind::Bedrock)
        | (ClientApi::AnthropicCountTokens, ProviderKind::Openai)
        | (ClientApi::AnthropicCountTokens, ProviderKind::AzureOpenai)
        | (ClientApi::AnthropicCountTokens, ProviderKind::Gemini) => Err(GatewayError::new(
            crate::error::ErrorKind::Internal,
            "this provider has no token counting endpoint; the gateway answers with its estimate",
        )),
    }
}

/// Client headers that carry the caller's own credentials: removed before any upstream call so a
/// virtual key or JWT never reaches a provider, and one provider's key never reaches another.
pub const CREDENTIAL_HEADERS: &[&str] =
    &["authorization", "x-api-key", "api-key", "x-goog-api-key", "proxy-authorization"];

/// The header that carries `secret` to a provider of `kind`.
pub fn credential_header(kind: ProviderKind, secret: &str) -> (&'static str, String) {
    match kind {
        ProviderKind::Openai => ("authorization", format!("Bearer {secret}")),
        ProviderKind::Anthropic => ("x-api-key", secret.to_owned()),
        ProviderKind::Gemini => ("x-goog-api-key", secret.to_owned()),
        ProviderKind::AzureOpenai => ("api-key", secret.to_owned()),
        // Bedrock is signed per request (`openai_to_bedrock::sign`), never sent a bare secret;
        // this header is what an unsigned request would carry, and AWS rejects it.
        ProviderKind::Bedrock => ("authorization", String::new()),
    }
}

/// Request headers every provider attempt keeps from the client's request, besides the
/// pseudo-headers (`:method`, `:path`, `:authority`, `:scheme`) and the headers the attempt sets
/// itself (credential, SigV4, `content-type`, `content-length`, [`forwarded_headers`]).
/// Everything else the client sent is removed before the request leaves: SDK telemetry
/// (`x-stainless-*`, `user-agent`), agent session ids (`x-claude-code-session-id`, `x-app`),
/// billing selectors (`openai-organization`, `openai-project`), cookies, `x-forwarded-*`, and
/// any other `x-*` (docs/architecture.md, "Headers sent to providers").
///
/// `accept` says which answer the client reads; `traceparent`/`tracestate` carry the client's
/// own trace (Envoy adds none of its own: `no_context_propagation`); `x-request-id` is the id
/// Envoy gives every request, which makes a provider-side log line findable from ours.
pub const UPSTREAM_HEADER_ALLOWLIST: &[&str] = &["content-type", "accept", "traceparent", "tracestate", "x-request-id"];

/// Whether a client header `name` (lower-case, as Envoy stores it) may stay on a provider
/// request: a pseudo-header, one of [`UPSTREAM_HEADER_ALLOWLIST`], or one an operator listed in
/// `extra` (exact names, or prefixes ending in `*`).
pub fn upstream_header_allowed(name: &str, extra: &[String]) -> bool {
    if CREDENTIAL_HEADERS.contains(&name) || BILLING_HEADERS.contains(&name) {
        // Not even an operator's `prefix*` lets a caller's credential or billing choice through.
        return false;
    }
    name.starts_with(':')
        || UPSTREAM_HEADER_ALLOWLIST.contains(&name)
        || extra.iter().any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => !prefix.is_empty() && name.starts_with(prefix),
            None => pattern == name,
        })
}

/// Headers that choose what a provider key bills: set from configuration only
/// ([`billing_headers`]), never kept from a client.
pub const BILLING_HEADERS: &[&str] = &["openai-organization", "openai-project"];

/// Parses an operator's list of extra headers to forward (`AI_GATEWAY_FORWARD_CLIENT_HEADERS`:
/// comma-separated names or `prefix*`), lower-cased. Credential headers and the gateway's own
/// (`x-ai-gateway-*`, `x-envoy-*`) can never be listed.
pub fn parse_forward_list(spec: &str) -> Vec<String> {
    spec.split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty() && s != "*")
        .filter(|s| !CREDENTIAL_HEADERS.contains(&s.as_str()))
        .filter(|s| !s.starts_with("x-ai-gateway-") && !s.starts_with("x-envoy-") && !s.starts_with(':'))
        .filter(|s| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'*'))
        .collect()
}

/// Client request headers the downstream filter captures (before any attempt strips them) because
/// some provider may need them; [`forwarded_headers`] decides which attempt gets which.
pub const FORWARDABLE_CLIENT_HEADERS: &[&str] = &["anthropic-version", "anthropic-beta"];

/// The captured client headers an attempt at a provider of `kind` carries, on top of (and
/// replacing) the prepared headers.
///
/// `anthropic-version` and `anthropic-beta` go only to Anthropic itself, and only for Anthropic
/// clients: the client's version pins the wire format it parses, and beta flags enable features
/// (interleaved thinking, context management, 1M context...) only Anthropic's own API knows.
/// Every other provider rejects or ignores them (LiteLLM #19373, #19877), and the request was
/// translated for a format that has no betas, so there they are dropped.
pub fn forwarded_headers(
    api: ClientApi,
    kind: ProviderKind,
    captured: &[(String, String)],
) -> Vec<(&'static str, String)> {
    let anthropic_client = matches!(api, ClientApi::AnthropicMessages | ClientApi::AnthropicCountTokens);
    if !anthropic_client || kind != ProviderKind::Anthropic {
        return Vec::new();
    }
    let mut out: Vec<(&'static str, String)> = Vec::new();
    for (name, value) in captured {
        let Some(known) = FORWARDABLE_CLIENT_HEADERS.iter().find(|h| name.eq_ignore_ascii_case(h)) else { continue };
        if value.trim().is_empty() {
            continue;
        }
        // Several headers of one name (HTTP allows repeating a list header) become one list.
        match out.iter_mut().find(|(n, _)| n == known) {
            Some((_, existing)) => {
                existing.push(',');
                existing.push_str(value.trim());
            }
            None => out.push((known, value.trim().to_owned())),
        }
    }
    out
}

/// Checks a provider's settings when a config is loaded (URL parts must be safe in a path,
/// header values safe in a header).
pub fn validate_provider(provider: &ProviderConfig) -> Result<(), String> {
    match provider.kind {
        ProviderKind::AzureOpenai => azure::validate_provider(provider),
        ProviderKind::Bedrock => openai_to_bedrock::region(provider).map(|_| ()).map_err(|e| e.message),
        ProviderKind::Openai => validate_openai_settings(provider),
        _ => Ok(()),
    }
}

/// Longest `settings.openai.organization` / `project` accepted.
const MAX_OPENAI_ID_LEN: usize = 64;

/// `settings.openai` values become header values: plain identifiers only.
fn validate_openai_settings(provider: &ProviderConfig) -> Result<(), String> {
    let Some(openai) = provider.settings.openai.as_ref() else { return Ok(()) };
    for (field, value) in [("organization", &openai.organization), ("project", &openai.project)] {
        let Some(value) = value else { continue };
        let plain = value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if value.is_empty() || value.len() > MAX_OPENAI_ID_LEN || !plain {
            return Err(format!(
                "provider '{}': settings.openai.{field} must be 1 to {MAX_OPENAI_ID_LEN} characters of A-Z, a-z, 0-9, '_' and '-'",
                provider.name
            ));
        }
    }
    Ok(())
}

/// The billing headers an OpenAI provider's configuration sets (`settings.openai`); none for
/// other kinds, and never from the client.
pub fn billing_headers(provider: &ProviderConfig) -> Vec<(&'static str, String)> {
    let Some(openai) = provider.settings.openai.as_ref().filter(|_| provider.kind == ProviderKind::Openai) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(org) = &openai.organization {
        out.push(("openai-organization", org.clone()));
    }
    if let Some(project) = &openai.project {
        out.push(("openai-project", project.clone()));
    }
    out
}

/// Checks a route target's model for its provider when a config is loaded: models that become
/// path segments (Gemini models, Azure deployments) may not carry `/`, `?` or other URL syntax.
pub fn validate_target(provider: &ProviderConfig, model: &str) -> Result<(), String> {
    match provider.kind {
        ProviderKind::Gemini => openai_to_gemini::validate_model(model).map(|_| ()),
        ProviderKind::AzureOpenai => azure::validate_target(provider, model),
        ProviderKind::Bedrock => openai_to_bedrock::converse_path(model, false).map(|_| ()).map_err(|e| e.message),
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

/// Longest provider-reported model name kept for logs and spans.
const MAX_RESPONSE_MODEL_LEN: usize = 256;

/// A provider's `model` member read leniently: any JSON value is accepted by the caller's probe
/// (so an odd type never costs the usage reading), and only a string of sane length is kept.
pub(crate) fn response_model_name(raw: Option<&serde_json::value::RawValue>) -> Option<String> {
    let name: String = serde_json::from_slice(raw?.get().as_bytes()).ok()?;
    response_model_str(&name)
}

/// A provider-reported model name fit for logs and spans: non-empty, bounded, no control
/// characters (it lands in JSON log lines and span attributes).
pub(crate) fn response_model_str(name: &str) -> Option<String> {
    reportable_model(name).then(|| name.to_owned())
}

/// Whether a provider-reported model name may go into logs and spans as it is.
pub(crate) fn reportable_model(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_RESPONSE_MODEL_LEN && !name.chars().any(char::is_control)
}

#[cfg(test)]
mod header_tests {
    use super::*;

    #[test]
    fn only_allowlisted_client_headers_stay() {
        for kept in
            [":method", ":path", ":authority", ":scheme", "content-type", "accept", "traceparent", "x-request-id"]
        {
            assert!(upstream_header_allowed(kept, &[]), "{kept}");
        }
        for dropped in [
            "user-agent",
            "x-stainless-lang",
            "x-claude-code-session-id",
            "x-app",
            "openai-organization",
            "openai-project",
            "cookie",
            "x-forwarded-for",
            "x-forwarded-proto",
            "authorization",
            "x-api-key",
            "anthropic-beta",
            "accept-encoding",
            "x-test-id",
        ] {
            assert!(!upstream_header_allowed(dropped, &[]), "{dropped}");
        }
        let extra =
            parse_forward_list(" X-Test-Id, x-replay-*, authorization, x-ai-gateway-cluster, *, bad header, :path");
        assert_eq!(extra, ["x-test-id", "x-replay-*"]);
        assert!(upstream_header_allowed("x-test-id", &extra));
        assert!(upstream_header_allowed("x-replay-fixture", &extra));
        assert!(!upstream_header_allowed("x-replay", &extra));
        assert!(!upstream_header_allowed("x-stainless-os", &extra));
        // An operator's wildcard never reaches credentials or billing selectors.
        let wide = parse_forward_list("openai-*,x-*,api-*,authorization");
        assert!(upstream_header_allowed("openai-beta", &wide));
        for never in
            ["openai-organization", "openai-project", "x-api-key", "x-goog-api-key", "api-key", "authorization"]
        {
            assert!(!upstream_header_allowed(never, &wide), "{never}");
        }
    }

    #[test]
    fn billing_headers_come_only_from_openai_settings() {
        let mut provider: ProviderConfig = serde_json::from_str(
            r#"{"name":"o","kind":"openai","cluster":"c","settings":{"openai":{"organization":"org-abc","project":"proj_1"}}}"#,
        )
        .unwrap();
        assert_eq!(validate_provider(&provider), Ok(()));
        assert_eq!(
            billing_headers(&provider),
            [("openai-organization", "org-abc".to_owned()), ("openai-project", "proj_1".to_owned())]
        );
        for bad in ["", "org\r\nx-evil: 1", "org abc", &"a".repeat(65)] {
            provider.settings.openai =
                Some(crate::config::OpenAiSettings { organization: Some(bad.to_owned()), project: None });
            assert!(validate_provider(&provider).unwrap_err().contains("settings.openai.organization"), "{bad:?}");
        }
        // Another kind ignores the member, as every kind ignores the others' settings.
        provider.kind = ProviderKind::AzureOpenai;
        assert!(billing_headers(&provider).is_empty());
        let plain: ProviderConfig = serde_json::from_str(r#"{"name":"o","kind":"openai","cluster":"c"}"#).unwrap();
        assert!(billing_headers(&plain).is_empty());
    }

    #[test]
    fn count_tokens_is_an_anthropic_api() {
        assert_eq!(ClientApi::from_path("/v1/messages/count_tokens?beta=true"), Some(ClientApi::AnthropicCountTokens));
        assert_eq!(ClientApi::from_path("/v1/messages/count_tokens/"), Some(ClientApi::AnthropicCountTokens));
        assert_eq!(ClientApi::AnthropicCountTokens.error_shape(), crate::error::ErrorShape::Anthropic);
        let captured = vec![("anthropic-beta".to_owned(), "token-counting-2024-11-01".to_owned())];
        assert_eq!(forwarded_headers(ClientApi::AnthropicCountTokens, ProviderKind::Anthropic, &captured).len(), 1);
        assert!(forwarded_headers(ClientApi::AnthropicCountTokens, ProviderKind::Bedrock, &captured).is_empty());
    }
}
