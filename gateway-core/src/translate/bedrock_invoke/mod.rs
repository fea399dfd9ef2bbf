//! Claude on AWS Bedrock through InvokeModel (`POST /model/{id}/invoke`, and
//! `/invoke-with-response-stream` for `stream: true`), Anthropic's own Messages format, plus
//! Bedrock's `count-tokens` for Anthropic `count_tokens` bodies.
//!
//! Chosen by the provider setting `settings.bedrock.api` ([`crate::config::BedrockApi`]): `auto`
//! (the default) for Claude model ids (`anthropic.claude` anywhere in the id: `anthropic.claude-...`,
//! inference profiles `us.`/`eu.`/`global.anthropic.claude-...`, and ARNs naming them), `invoke`
//! for every model of the provider (application inference profile ARNs do not name the model),
//! `converse` never.
//!
//! Anthropic Messages clients: nearly a passthrough. The body is the client's, edited in place
//! ([`body`]: only the edited members change, every other byte is kept):
//!
//! | client request | InvokeModel body |
//! |---|---|
//! | `model` | removed: the target's model id is the path segment (URL-encoded, `:` as `%3A`, the path SigV4 signs) |
//! | `stream` | removed: `true` picks `/invoke-with-response-stream` |
//! | (none) | `"anthropic_version": "bedrock-2023-05-31"` appended (a client's own value is replaced) |
//! | `anthropic-beta` header values (and a body `anthropic_beta` list) | `anthropic_beta` list of the betas Bedrock accepts ([`BEDROCK_BETA_FAMILIES`], [`BETA_RENAMES`]); others dropped, named `anthropic-beta` in `x-ai-gateway-dropped`; no list at all when none is left (Bedrock refuses even an empty one for some models) |
//! | `system` turns inside `messages` (Claude Code's `mid-conversation-system` beta, not among Bedrock's) | folded, in order, into the nearest user turn as `<system-reminder>` text blocks ([`system_turns`]); only then is `messages` re-written (and moved last) |
//! | `service_tier`, `container`, `mcp_servers`, `inference_geo` | dropped and named ([`DROPPED_FIELDS`]): Anthropic-platform features Bedrock has no member for (tiers and geography are Bedrock settings and inference profiles there) |
//! | `metadata` | kept: Bedrock takes `metadata.user_id` (the recorded `count-tokens` request carries it and was answered 200; Claude Code in Bedrock mode sends it) |
//! | `context_management`, `thinking`, `output_config`, `cache_control`, `system`, `tools`, everything else | kept byte for byte; Bedrock answers unknown members with its own 400 |
//!
//! Answers: the JSON body already is an Anthropic `message`; the stream is an AWS event stream
//! whose `chunk` events carry `{"bytes": "<base64 of one Anthropic event>"}`, decoded back into
//! Anthropic SSE ([`stream`]). In both, `model` (and `message_start.message.model`) is replaced
//! by the model the client asked for; the provider's id stays in
//! [`super::ResponseTranslator::response_model`]. Usage is read as the passthrough reads it
//! (`message_start` and cumulative `message_delta`, cache reads and writes apart). Bedrock errors
//! (`{"message"}` with the exception name in `x-amzn-errortype`, or exception frames inside a
//! stream) become Anthropic errors with Bedrock's status.
//!
//! OpenAI Chat clients on Claude: the Chat request goes through
//! [`super::openai_to_anthropic::request::to_anthropic`] (thinking switched off where a Chat client
//! cannot replay it, see [`super::openai_to_anthropic`]), then the same body edits; the answer
//! through the Anthropic → OpenAI response translators, fed the JSON message or the decoded SSE.
//!
//! `count_tokens`: the Anthropic body becomes the InvokeModel body above (with `max_tokens`,
//! which InvokeModel requires and `count_tokens` lacks: the provider default, above any thinking
//! budget), sent as `{"input":{"invokeModel":{"body":"<base64>"}}}` to `/model/{id}/count-tokens`;
//! Bedrock's `{"inputTokens": N}` comes back as Anthropic's `{"input_tokens": N}`.

use serde::Deserialize;

use super::anthropic_passthrough::UsageReader;
use super::openai_to_anthropic::AnthropicResponse;
use super::openai_to_bedrock::{region, ERROR_TYPE_HEADER, EVENT_STREAM_CONTENT_TYPE};
use super::{BodyMode, PreparedRequest, ResponseTranslator, Target};
use crate::api::openai::ChatCompletionRequest;
use crate::aws::sigv4::uri_encode;
use crate::config::{BedrockApi, ProviderConfig};
use crate::error::{anthropic_error_body, anthropic_type_for_status, ErrorKind, GatewayError};
use crate::usage::TokenUsage;

pub(crate) use crate::b64 as base64;
pub(crate) mod body;
pub mod stream;
mod system_turns;

/// The `anthropic_version` Bedrock's Claude Messages API requires in the body.
pub const ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// Beta feature families (`<family><date>`) Bedrock accepts in `anthropic_beta`; any dated
/// version of a family passes. Sources (checked 2026-12-02):
/// - AWS, "Anthropic Claude Messages API, Request and Response"
///   (docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages-request-response.html):
///   `anthropic_beta` with `computer-use-2024-10-22`; the Claude 3.7 page: 128K output in beta
///   (`output-128k-`); the extended-thinking page: interleaved thinking for Claude 4
///   (`interleaved-thinking-`) and `dev-full-thinking-` in "differences in thinking".
/// - The recorded Bedrock `count-tokens` call (`fixtures/recorded/bedrock-invoke/`) with
///   `token-efficient-tools-2025-02-19` in `anthropic_beta`, answered 200.
/// - LiteLLM's per-provider table (`litellm/anthropic_beta_headers_config.json`, key `bedrock`,
///   i.e. InvokeModel): `computer-use-`, `context-1m-`, `context-management-`, `effort-`,
///   `compact-`, `fine-grained-tool-streaming-`, `tool-search-tool-`, `thinking-binding-controls-`,
///   `thinking-display-updates-`, `mid-conversation-output-config-`, `mid-conversation-tool-changes-`.
/// - ARCHITECTURE.md section 11: Claude Code in its own Bedrock mode sends `interleaved-thinking-`
///   and `tool-search-tool-` in the body.
///
/// Everything else Claude Code sends (`claude-code-`, `prompt-caching-scope-`, `fast-mode-`,
/// `files-api-`, `mcp-client-`, `code-execution-`, `web-search-`, ...) is dropped: Bedrock answers
/// an unknown flag with 400 `invalid beta flag`.
pub const BEDROCK_BETA_FAMILIES: &[&str] = &[
    "computer-use-",
    "token-efficient-tools-",
    "interleaved-thinking-",
    "output-128k-",
    "dev-full-thinking-",
    "context-1m-",
    "context-management-",
    "tool-search-tool-",
    "fine-grained-tool-streaming-",
    "effort-",
    "compact-",
    "thinking-binding-controls-",
    "thinking-display-updates-",
    "mid-conversation-output-config-",
    "mid-conversation-tool-changes-",
];

/// Betas Bedrock knows under another name (first-party name, Bedrock name): tool search is
/// `advanced-tool-use-2025-11-20` on Anthropic and `tool-search-tool-2025-10-19` on Bedrock and
/// Vertex (Claude Code's own constants, LiteLLM's `bedrock` table).
pub const BETA_RENAMES: &[(&str, &str)] = &[("advanced-tool-use-2025-11-20", "tool-search-tool-2025-10-19")];

/// Anthropic request members Bedrock's InvokeModel has no equivalent for: dropped, and named in
/// `x-ai-gateway-dropped`.
pub const DROPPED_FIELDS: &[&str] = &["service_tier", "container", "mcp_servers", "inference_geo"];

/// The `x-ai-gateway-dropped` name for refused beta flags (one name however many were refused).
pub const DROPPED_BETA: &str = "anthropic-beta";

/// Members the edit replaces or moves elsewhere (never forwarded as the client sent them).
const REPLACED_FIELDS: &[&str] = &["model", "stream", "anthropic_version", "anthropic_beta"];

/// The Bedrock name of `beta` when Bedrock accepts it, `None` when it must be dropped.
pub fn accepted_beta(beta: &str) -> Option<&str> {
    let beta = BETA_RENAMES.iter().find(|(from, _)| *from == beta).map_or(beta, |(_, to)| *to);
    let sane = !beta.is_empty() && beta.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let known = BEDROCK_BETA_FAMILIES.iter().any(|f| beta.len() > f.len() && beta.starts_with(f));
    (sane && known).then_some(beta)
}

/// Whether a Bedrock model id names a Claude model (foundation model, inference profile or ARN).
pub fn is_claude_model(model_id: &str) -> bool {
    model_id.contains("anthropic.claude")
}

/// Whether chat requests to `model_id` on this Bedrock provider go through InvokeModel.
pub fn uses_invoke(provider: &ProviderConfig, model_id: &str) -> bool {
    match provider.settings.bedrock.as_ref().map(|b| b.api).unwrap_or_default() {
        BedrockApi::Auto => is_claude_model(model_id),
        BedrockApi::Invoke => true,
        BedrockApi::Converse => false,
    }
}

/// `/model/{modelId}/{action}`, the id one URL-encoded segment (an ARN's `:` and `/` included),
/// exactly the path SigV4 signs.
fn model_path(model_id: &str, action: &str) -> Result<String, GatewayError> {
    if model_id.is_empty() || model_id == "." || model_id == ".." {
        return Err(GatewayError::new(ErrorKind::Internal, "the route's Bedrock model id is not usable"));
    }
    Ok(format!("/model/{}/{action}", uri_encode(model_id.as_bytes(), false)))
}

/// `/model/{modelId}/invoke`, or `/invoke-with-response-stream` when streaming.
pub fn invoke_path(model_id: &str, stream: bool) -> Result<String, GatewayError> {
    model_path(model_id, if stream { "invoke-with-response-stream" } else { "invoke" })
}

/// `/model/{modelId}/count-tokens`.
pub fn count_tokens_path(model_id: &str) -> Result<String, GatewayError> {
    model_path(model_id, "count-tokens")
}

/// An Anthropic body turned into an InvokeModel body.
struct InvokeBody {
    body: Vec<u8>,
    /// The client's `model`, when it was a string.
    client_model: Option<String>,
    stream: bool,
    dropped: Vec<&'static str>,
}

fn push_once(dropped: &mut Vec<&'static str>, name: &'static str) {
    if !dropped.contains(&name) {
        dropped.push(name);
    }
}

/// Every `anthropic-beta` value among the captured client headers (comma-separated lists, the
/// header possibly repeated).
fn header_betas(client_headers: &[(String, String)]) -> impl Iterator<Item = &str> {
    client_headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("anthropic-beta"))
        .flat_map(|(_, value)| value.split(','))
        .map(str::trim)
        .filter(|b| !b.is_empty())
}

/// The edits of the module table. `max_tokens_floor` is for `count_tokens` bodies, which have
/// no `max_tokens` and InvokeModel requires one.
fn invoke_body(
    body: &[u8],
    client_headers: &[(String, String)],
    max_tokens_floor: Option<u32>,
) -> Result<InvokeBody, GatewayError> {
    let split = body::split(body)?;
    let stream = split.get("stream").is_some_and(|v| v.get() == "true");
    let client_model = split.get("model").and_then(|v| serde_json::from_str::<String>(v.get()).ok());
    let mut dropped = Vec::new();

    let mut requested: Vec<String> = header_betas(client_headers).map(str::to_owned).collect();
    if let Some(raw) = split.get("anthropic_beta") {
        match serde_json::from_str::<Vec<String>>(raw.get()) {
            Ok(list) => requested.extend(list),
            Err(_) => push_once(&mut dropped, DROPPED_BETA),
        }
    }
    let mut betas: Vec<&str> = Vec::with_capacity(requested.len());
    for beta in &requested {
        match accepted_beta(beta.trim()) {
            Some(name) if !betas.contains(&name) => betas.push(name),
            Some(_) => {}
            None => push_once(&mut dropped, DROPPED_BETA),
        }
    }
    for field in DROPPED_FIELDS {
        if split.get(field).is_some() {
            push_once(&mut dropped, field);
        }
    }

    let version = format!("\"{ANTHROPIC_VERSION}\"");
    let mut append: Vec<(&str, String)> = vec![("anthropic_version", version)];
    if !betas.is_empty() {
        append.push(("anthropic_beta", serde_json::to_string(&betas).unwrap_or_else(|_| "[]".to_owned())));
    }
    if let (Some(floor), None) = (max_tokens_floor, split.get("max_tokens")) {
        append.push(("max_tokens", max_tokens_for_count(&split, floor).to_string()));
    }
    // System turns inside `messages` (a beta Bedrock does not list): folded into user turns.
    let folded = match split.get("messages") {
        Some(messages) => system_turns::fold(messages)?,
        None => None,
    };
    if let Some(messages) = folded {
        append.push(("messages", messages));
    }
    let moved = append.iter().any(|(k, _)| *k == "messages");
    let append: Vec<(&str, &str)> = append.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = split.render(
        |k| !(REPLACED_FIELDS.contains(&k) || DROPPED_FIELDS.contains(&k) || (moved && k == "messages")),
        &append,
    );
    Ok(InvokeBody { body: out, client_model, stream, dropped })
}

/// An Anthropic body the gateway wrote (no client headers) as an InvokeModel body, with the
/// fields Bedrock refused named.
pub(crate) fn invoke_body_for(body: &[u8]) -> Result<(Vec<u8>, Vec<&'static str>), GatewayError> {
    let invoke = invoke_body(body, &[], None)?;
    Ok((invoke.body, invoke.dropped))
}

#[derive(Deserialize)]
struct ThinkingBudget {
    #[serde(default)]
    budget_tokens: Option<u64>,
}

/// `max_tokens` for a counted body: the default, above the thinking budget (Bedrock validates
/// `budget_tokens < max_tokens` even when only counting).
fn max_tokens_for_count(split: &body::SplitObject<'_>, floor: u32) -> u64 {
    let budget = split
        .get("thinking")
        .and_then(|t| serde_json::from_str::<ThinkingBudget>(t.get()).ok())
        .and_then(|t| t.budget_tokens)
        .unwrap_or(0);
    u64::from(floor).max(budget.saturating_add(1))
}

/// Anthropic Messages body → InvokeModel for `target`. `client_headers` are the captured client
/// headers (`anthropic-beta` is read from them).
pub fn prepare_messages(
    body: &[u8],
    target: &Target<'_>,
    client_headers: &[(String, String)],
) -> Result<PreparedRequest, GatewayError> {
    region(target.provider)?;
    let invoke = invoke_body(body, client_headers, None)?;
    let client_model = invoke.client_model.filter(|m| super::reportable_model(m));
    Ok(PreparedRequest {
        path: super::provider_path(target.provider, &invoke_path(target.model, invoke.stream)?),
        body: Some(invoke.body),
        headers: vec![("content-type", "application/json".to_owned())],
        translator: Box::new(InvokeToAnthropic::new(client_model)),
        dropped: invoke.dropped,
    })
}

/// OpenAI Chat Completions body → the Anthropic request → InvokeModel for `target`.
pub fn prepare_chat(body: &[u8], target: &Target<'_>) -> Result<PreparedRequest, GatewayError> {
    let req: ChatCompletionRequest<'_> = serde_json::from_slice(body)
        .map_err(|e| GatewayError::invalid(format!("We could not parse the JSON body of your request: {e}")))?;
    region(target.provider)?;
    let include_usage = req.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false);
    let mut anthropic =
        super::openai_to_anthropic::request::to_anthropic(&req, target.model, target.defaults.max_tokens)?;
    let mut dropped = Vec::new();
    if super::openai_to_anthropic::request::drop_unreplayable_thinking(&mut anthropic) {
        dropped.push("thinking");
    }
    let stream = anthropic.stream;
    let mut json = Vec::with_capacity(body.len() + 256);
    serde_json::to_writer(&mut json, &anthropic)
        .map_err(|e| GatewayError::new(ErrorKind::Internal, format!("could not encode the provider request: {e}")))?;
    let invoke = invoke_body(&json, &[], None)?;
    dropped.extend(invoke.dropped);
    Ok(PreparedRequest {
        path: super::provider_path(target.provider, &invoke_path(target.model, stream)?),
        body: Some(invoke.body),
        headers: vec![("content-type", "application/json".to_owned())],
        translator: Box::new(InvokeToOpenAi::new(target.created_unix, include_usage)),
        dropped,
    })
}

/// Anthropic `count_tokens` body → Bedrock `count-tokens` for `target`, no client headers.
pub fn prepare_count_tokens(body: &[u8], target: &Target<'_>) -> Result<PreparedRequest, GatewayError> {
    prepare_count_tokens_with_headers(body, target, &[])
}

/// Anthropic `count_tokens` body → `POST /model/{id}/count-tokens` with
/// `{"input":{"invokeModel":{"body":"<base64 InvokeModel body>"}}}`; betas from `client_headers`
/// as for messages. The answer becomes `{"input_tokens": N}`; errors Anthropic's shape.
pub fn prepare_count_tokens_with_headers(
    body: &[u8],
    target: &Target<'_>,
    client_headers: &[(String, String)],
) -> Result<PreparedRequest, GatewayError> {
    region(target.provider)?;
    let split = body::split(body)?;
    match split.get("messages").map(|m| m.get().trim_start()) {
        Some(m) if m.starts_with('[') && !m.trim_start_matches('[').trim_start().starts_with(']') => {}
        Some(_) => {
            return Err(GatewayError::invalid("messages: at least one message is required").with_param("messages"))
        }
        None => return Err(GatewayError::invalid("messages: Field required").with_param("messages")),
    }
    let invoke = invoke_body(body, client_headers, Some(target.defaults.max_tokens.max(1)))?;
    let encoded = base64::encode(&invoke.body);
    let mut out = Vec::with_capacity(encoded.len() + 48);
    out.extend_from_slice(br#"{"input":{"invokeModel":{"body":""#);
    out.extend_from_slice(encoded.as_bytes());
    out.extend_from_slice(br#""}}}"#);
    Ok(PreparedRequest {
        path: super::provider_path(target.provider, &count_tokens_path(target.model)?),
        body: Some(out),
        headers: vec![("content-type", "application/json".to_owned())],
        translator: Box::new(CountTokensResponse::default()),
        dropped: invoke.dropped,
    })
}

/// Anthropic's `error.type` for a Bedrock exception name (any case, any decoration), else for
/// the status.
pub fn anthropic_error_type(bedrock_type: &str, status: u16) -> &'static str {
    let bare = super::openai_to_bedrock::response::bare_error_type(bedrock_type).to_ascii_lowercase();
    match bare.trim_end_matches("exception") {
        "validation" => "invalid_request_error",
        "resourcenotfound" => "not_found_error",
        "accessdenied" => "permission_error",
        "unrecognizedclient"
        | "invalidsignature"
        | "expiredtoken"
        | "incompletesignature"
        | "missingauthenticationtoken" => "authentication_error",
        "throttling" | "servicequotaexceeded" | "toomanyrequests" => "rate_limit_error",
        "serviceunavailable" | "modelnotready" => "overloaded_error",
        "modeltimeout" => "timeout_error",
        "internalserver" | "modelstreamerror" | "modelerror" => "api_error",
        _ => anthropic_type_for_status(status),
    }
}

#[derive(Deserialize)]
struct BedrockErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(rename = "Message", default)]
    message_upper: Option<String>,
    #[serde(rename = "__type", default)]
    kind: Option<String>,
    #[serde(rename = "type", default)]
    anthropic_type: Option<serde_json::Value>,
}

/// A non-2xx Bedrock body in Anthropic's error shape, Bedrock's status kept by the caller; an
/// Anthropic-shaped body (a model error relayed as is) comes back `None`, unchanged.
pub fn translate_error(status: u16, error_type_header: Option<&str>, body: &[u8]) -> Option<Vec<u8>> {
    let parsed = serde_json::from_slice::<BedrockErrorBody>(body).ok();
    if parsed.as_ref().is_some_and(|p| p.anthropic_type.as_ref().and_then(|t| t.as_str()) == Some("error")) {
        return None;
    }
    let kind = error_type_header.filter(|k| !k.is_empty()).or(parsed.as_ref().and_then(|p| p.kind.as_deref()));
    let message = parsed
        .as_ref()
        .and_then(|p| p.message.clone().or_else(|| p.message_upper.clone()))
        .unwrap_or_else(|| format!("The provider returned HTTP {status} with a body the gateway could not read."));
    Some(anthropic_error_body(&message, anthropic_error_type(kind.unwrap_or(""), status)))
}

/// Bedrock InvokeModel answers for Anthropic clients.
#[derive(Debug)]
pub struct InvokeToAnthropic {
    status: u16,
    mode: BodyMode,
    error_type: Option<String>,
    /// JSON answers: usage, provider model, the client's model spliced in.
    reader: UsageReader,
    stream: stream::InvokeStream,
}

impl InvokeToAnthropic {
    /// `client_model`: the model the answer names (the client's request), `None` keeps Bedrock's.
    pub fn new(client_model: Option<String>) -> Self {
        InvokeToAnthropic {
            status: 200,
            mode: BodyMode::Buffered,
            error_type: None,
            reader: UsageReader::answering_as(client_model.clone()),
            stream: stream::InvokeStream::new(client_model),
        }
    }
}

impl ResponseTranslator for InvokeToAnthropic {
    fn on_headers(&mut self, status: u16, content_type: Option<&str>) -> BodyMode {
        self.status = status;
        self.mode = super::translated_body_mode(status, content_type, EVENT_STREAM_CONTENT_TYPE);
        self.mode
    }

    fn content_type(&self) -> Option<&'static str> {
        Some(super::translated_content_type(self.mode))
    }

    fn translate_body(&mut self, body: &[u8]) -> Result<Option<Vec<u8>>, GatewayError> {
        if !(200..300).contains(&self.status) {
            return Ok(translate_error(self.status, self.error_type.as_deref(), body));
        }
        self.reader.translate_body(body)
    }

    fn translate_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Vec<u8> {
        self.stream.push(chunk, end_of_stream)
    }

    fn usage(&self) -> TokenUsage {
        match self.mode {
            BodyMode::Streaming => self.stream.usage(),
            BodyMode::Buffered => self.reader.usage(),
        }
    }

    fn response_model(&self) -> Option<&str> {
        match self.mode {
            BodyMode::Streaming => self.stream.response_model(),
            BodyMode::Buffered => self.reader.response_model(),
        }
    }

    fn wanted_response_header(&self) -> Option<&'static str> {
        Some(ERROR_TYPE_HEADER)
    }

    fn on_response_header(&mut self, value: &str) {
        self.error_type = Some(value.to_owned());
    }
}

/// Bedrock InvokeModel answers for OpenAI Chat clients: decoded to Anthropic, then translated.
#[derive(Debug)]
pub struct InvokeToOpenAi {
    status: u16,
    error_type: Option<String>,
    stream: stream::InvokeStream,
    openai: AnthropicResponse,
}

impl InvokeToOpenAi {
    /// `created` and `include_usage` as for [`AnthropicResponse::new`].
    pub fn new(created: u64, include_usage: bool) -> Self {
        InvokeToOpenAi {
            status: 200,
            error_type: None,
            stream: stream::InvokeStream::new(None),
            openai: AnthropicResponse::new(created, include_usage),
        }
    }
}

impl ResponseTranslator for InvokeToOpenAi {
    fn on_headers(&mut self, status: u16, content_type: Option<&str>) -> BodyMode {
        self.status = status;
        let mode = super::translated_body_mode(status, content_type, EVENT_STREAM_CONTENT_TYPE);
        // The inner translator sees what the decoder produces: Anthropic SSE or JSON.
        self.openai.on_headers(status, Some(super::translated_content_type(mode)))
    }

    fn content_type(&self) -> Option<&'static str> {
        self.openai.content_type()
    }

    fn translate_body(&mut self, body: &[u8]) -> Result<Option<Vec<u8>>, GatewayError> {
        if !(200..300).contains(&self.status) {
            return Ok(Some(super::openai_to_bedrock::response::translate_error(
                self.status,
                self.error_type.as_deref(),
                body,
            )));
        }
        self.openai.translate_body(body)
    }

    fn translate_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Vec<u8> {
        let sse = self.stream.push(chunk, end_of_stream);
        self.openai.translate_chunk(&sse, end_of_stream)
    }

    fn usage(&self) -> TokenUsage {
        self.openai.usage()
    }

    fn response_model(&self) -> Option<&str> {
        self.openai.response_model()
    }

    fn wanted_response_header(&self) -> Option<&'static str> {
        Some(ERROR_TYPE_HEADER)
    }

    fn on_response_header(&mut self, value: &str) {
        self.error_type = Some(value.to_owned());
    }
}

#[derive(Deserialize)]
struct CountTokensAnswer {
    #[serde(rename = "inputTokens")]
    input_tokens: u64,
}

/// Bedrock `count-tokens` answers in Anthropic's `count_tokens` shape. Counting is never billed,
/// so it reports no usage.
#[derive(Debug, Default)]
pub struct CountTokensResponse {
    status: u16,
    error_type: Option<String>,
}

impl ResponseTranslator for CountTokensResponse {
    fn on_headers(&mut self, status: u16, _content_type: Option<&str>) -> BodyMode {
        self.status = status;
        BodyMode::Buffered
    }

    fn content_type(&self) -> Option<&'static str> {
        Some("application/json")
    }

    fn translate_body(&mut self, body: &[u8]) -> Result<Option<Vec<u8>>, GatewayError> {
        if !(200..300).contains(&self.status) {
            return Ok(Some(
                translate_error(self.status, self.error_type.as_deref(), body).unwrap_or_else(|| body.to_vec()),
            ));
        }
        let answer: CountTokensAnswer = serde_json::from_slice(body).map_err(|_| {
            GatewayError::new(ErrorKind::BadGateway, "The provider returned a token count the gateway could not parse.")
        })?;
        Ok(Some(format!("{{\"input_tokens\":{}}}", answer.input_tokens).into_bytes()))
    }

    fn translate_chunk(&mut self, chunk: &[u8], _end_of_stream: bool) -> Vec<u8> {
        chunk.to_vec()
    }

    fn usage(&self) -> TokenUsage {
        TokenUsage::default()
    }

    fn wanted_response_header(&self) -> Option<&'static str> {
        Some(ERROR_TYPE_HEADER)
    }

    fn on_response_header(&mut self, value: &str) {
        self.error_type = Some(value.to_owned());
    }
}

#[cfg(test)]
mod tests;
