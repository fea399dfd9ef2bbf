//! OpenAI Responses API clients (`POST /v1/responses`, Codex CLI, the OpenAI Agents SDK) on
//! every provider, and their token counts (`POST /v1/responses/input_tokens`).
//!
//! | provider kind | how | upstream path |
//! |---|---|---|
//! | `openai` | byte-preserving passthrough: only `model` changes | `/v1/responses` |
//! | `azure_openai` | the same passthrough; `model` = the deployment; errors normalised to OpenAI's shape | `/openai/v1/responses` (`?api-version=` only with `url_form: v1` and an `api_version`, e.g. `preview`) |
//! | `anthropic` | conversation model: [`codec::responses`] → [`codec::anthropic::provider`] | `/v1/messages` |
//! | `bedrock`, InvokeModel (Claude ids, `settings.bedrock.api`) | the Anthropic body with Bedrock's edits ([`super::bedrock_invoke`]) | `/model/{id}/invoke`, `/invoke-with-response-stream` |
//! | `bedrock`, Converse | [`codec::converse`] | `/model/{id}/converse`, `/converse-stream` |
//! | `gemini` | [`codec::gemini`] | `:generateContent`, `:streamGenerateContent?alt=sse` |
//!
//! Azure serves the Responses API only on its OpenAI-compatible v1 surface (no deployment
//! segment: the deployment goes in the body's `model`), whatever the provider's `url_form` says
//! for Chat Completions. The passthroughs leave the answer byte for byte as the provider sent
//! it (its `model` included) and read usage from `usage` (JSON) or the `response.completed` /
//! `response.incomplete` / `response.failed` event (stream).
//!
//! **Stateless by design.** Only OpenAI and Azure store responses: `store` and
//! `previous_response_id` pass through there. On every other provider `previous_response_id`
//! (and `conversation`) is a 400 saying the gateway stores no conversations, and `store` is
//! ignored. Reasoning survives the turn inside the client's own history instead: a Claude
//! thinking block (or Gemini `thoughtSignature`) goes out as a `reasoning` item whose
//! `encrypted_content` is `gw1.<family>.<signature>`, and comes back to the same family on the
//! next request; another family's reasoning is dropped (`reasoning` in `x-ai-gateway-dropped`).
//!
//! **Hosted tools** (`web_search`, `file_search`, `code_interpreter`, `image_generation`, `mcp`,
//! `local_shell`, `computer_use_preview`...) exist only at OpenAI. On other providers they are
//! dropped and named in `x-ai-gateway-dropped` (Codex CLI sends `web_search` by default), unless
//! the provider sets `settings.responses.hosted_tools: reject`, which answers 400 instead.
//!
//! Token counts: OpenAI and Azure pass through to `/v1/responses/input_tokens`; Anthropic
//! counts the translated body at `/v1/messages/count_tokens`; Claude on Bedrock InvokeModel at
//! `count-tokens`; every other provider gets the gateway's estimate of the translated body
//! ([`super::count_tokens`]), as for `/v1/messages/count_tokens`. The answer is OpenAI's
//! `{"object":"response.input_tokens","input_tokens":N}`.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{BodyMode, PreparedRequest, RequestFacts, ResponseTranslator, Target};
use crate::aws::eventstream::crc32;
use crate::codec::anthropic::provider::{self as claude, AnthropicDecoder};
use crate::codec::responses::ResponsesEncoder;
use crate::codec::{self, Encoded};
use crate::config::{HostedTools, ProviderKind};
use crate::conversation::bridge::{Bridge, ProviderDecoder};
use crate::conversation::{Event, Family, Part, ProviderError, Reasoning, Request, Response};
use crate::error::{ErrorKind, GatewayError};
use crate::sse::SseFramer;
use crate::usage::TokenUsage;

/// The Responses endpoint on OpenAI.
pub const RESPONSES_PATH: &str = "/v1/responses";
/// The Responses token counting endpoint on OpenAI.
pub const INPUT_TOKENS_PATH: &str = "/v1/responses/input_tokens";
/// The Responses endpoint on Azure OpenAI's v1 surface.
pub const AZURE_RESPONSES_PATH: &str = "/openai/v1/responses";

/// OpenAI's hosted tool types: present only at OpenAI and Azure.
pub const HOSTED_TOOLS: &[&str] = &[
    "web_search",
    "web_search_preview",
    "web_search_preview_2025_03_11",
    "web_search_2025_08_26",
    "file_search",
    "code_interpreter",
    "image_generation",
    "mcp",
    "local_shell",
    "shell",
    "computer_use_preview",
    "computer_use",
    "apply_patch",
];

/// Validates a Responses body (every item and tool, in OpenAI's error wording) and returns the
/// routing facts.
pub fn inspect(body: &[u8]) -> Result<RequestFacts, GatewayError> {
    inspect_keeping(body).map(|(facts, _)| facts)
}

/// [`inspect`], keeping the decoded request and model for [`prepare_decoded`].
pub fn inspect_keeping(body: &[u8]) -> Result<(RequestFacts, (Request, String)), GatewayError> {
    if super::openai_passthrough::nesting_exceeds_limit(body) {
        return Err(GatewayError::invalid(format!(
            "We could not parse the JSON body of your request: nesting deeper than {} levels (recursion limit exceeded).",
            super::openai_passthrough::MAX_NESTING
        )));
    }
    let (request, model) = codec::responses::decode_request(body)?;
    let facts = RequestFacts { model: model.clone(), stream: request.stream };
    Ok((facts, (request, model)))
}

/// Validates an `input_tokens` body: the Responses request shape, `model` required.
pub fn inspect_count(body: &[u8]) -> Result<RequestFacts, GatewayError> {
    inspect(body).map(|facts| RequestFacts { stream: false, ..facts })
}

/// The Azure path of a Responses operation (`""` for the create call, `/input_tokens`).
fn azure_path(target: &Target<'_>, operation: &str) -> Result<String, GatewayError> {
    super::azure::validate_provider(target.provider).map_err(|m| {
        GatewayError::new(ErrorKind::Internal, format!("provider '{}' is misconfigured: {m}", target.provider.name))
    })?;
    let settings = target.provider.settings.azure.clone().unwrap_or_default();
    let path = format!("{AZURE_RESPONSES_PATH}{operation}");
    let path = match (settings.url_form, settings.api_version) {
        (crate::config::AzureUrlForm::V1, Some(v)) => format!("{path}?api-version={v}"),
        _ => path,
    };
    Ok(super::provider_path(target.provider, &path))
}

/// The stateless rule for providers that store nothing (see the module documentation).
fn reject_stored_state(body: &[u8]) -> Result<(), GatewayError> {
    #[derive(Deserialize)]
    struct State<'a> {
        #[serde(borrow, default)]
        previous_response_id: Option<&'a RawValue>,
        #[serde(borrow, default)]
        conversation: Option<&'a RawValue>,
    }
    let state: State<'_> = serde_json::from_slice(body).map_err(|e| GatewayError::invalid(e.to_string()))?;
    let set = |v: Option<&RawValue>| v.is_some_and(|v| v.get() != "null");
    for (name, value) in [("previous_response_id", state.previous_response_id), ("conversation", state.conversation)] {
        if set(value) {
            return Err(GatewayError::invalid(format!(
                "'{name}' is not supported for this model: the gateway does not store conversations. Send the whole conversation in 'input' (with 'store': false)."
            ))
            .with_param(name)
            .with_code("unsupported_parameter"));
        }
    }
    Ok(())
}

/// The hosted tools of `req`, refused when the provider says so, else left for the encoder to
/// drop by name.
fn hosted_tool_policy(req: &Request, target: &Target<'_>) -> Result<(), GatewayError> {
    let policy = target.provider.settings.responses.as_ref().map(|r| r.hosted_tools).unwrap_or_default();
    if policy == HostedTools::Drop {
        return Ok(());
    }
    if let Some(tool) =
        req.extras.iter().find(|e| e.family == Family::OpenAi && HOSTED_TOOLS.contains(&e.name.as_str()))
    {
        let shown: String = tool.name.chars().take(64).collect();
        return Err(GatewayError::invalid(format!(
            "Hosted tool '{shown}' is not supported with this model (its provider has no such tool)."
        ))
        .with_param("tools")
        .with_code("unsupported_tool"));
    }
    Ok(())
}

/// A decoded, validated request for a provider of another API.
fn decode_for_translation(
    body: &[u8],
    target: &Target<'_>,
    decoded: Option<(Request, String)>,
) -> Result<(Request, String), GatewayError> {
    reject_stored_state(body)?;
    let (mut req, model) = match decoded {
        Some(decoded) => decoded,
        None => codec::responses::decode_request(body)?,
    };
    hosted_tool_policy(&req, target)?;
    // What a stateless translation ignores by design is not reported as dropped.
    req.extras.retain(|e| !(e.family == Family::OpenAi && claude::SILENT_EXTRAS.contains(&e.name.as_str())));
    // `reasoning.effort` asks for thinking; providers that think by budget read it as one.
    if req.reasoning.is_none() {
        if let Some(effort) = &req.effort {
            req.reasoning = Some(Reasoning::Effort(effort.clone()));
        }
    }
    Ok((req, model))
}

/// Translates a Responses body for one attempt at `target`.
pub fn prepare(body: &[u8], target: &Target<'_>) -> Result<PreparedRequest, GatewayError> {
    prepare_decoded(body, target, None)
}

/// [`prepare`] with what [`inspect_keeping`] decoded from the same `body`, if anything.
pub fn prepare_decoded(
    body: &[u8],
    target: &Target<'_>,
    decoded: Option<(Request, String)>,
) -> Result<PreparedRequest, GatewayError> {
    match target.provider.kind {
        ProviderKind::Openai => passthrough(body, target, super::provider_path(target.provider, RESPONSES_PATH), false),
        ProviderKind::AzureOpenai => passthrough(body, target, azure_path(target, "")?, false),
        _ => translated(body, target, decoded),
    }
}

/// OpenAI and Azure: `model` spliced, every other byte kept.
fn passthrough(
    body: &[u8],
    target: &Target<'_>,
    path: String,
    counting: bool,
) -> Result<PreparedRequest, GatewayError> {
    let new_body = super::anthropic_passthrough::replace_model(body, target.model)?;
    Ok(PreparedRequest {
        path,
        body: Some(new_body),
        headers: vec![("content-type", "application/json".to_owned())],
        translator: Box::new(Passthrough::new(target.provider.kind == ProviderKind::AzureOpenai, counting)),
        dropped: Vec::new(),
    })
}

/// The id a translated response gets when its provider names none.
fn fallback_id(target: &Target<'_>, body: &[u8]) -> String {
    format!("resp_gw_{:x}{:08x}", target.created_unix, crc32(body))
}

/// Anthropic, Bedrock and Gemini through the conversation model.
fn translated(
    body: &[u8],
    target: &Target<'_>,
    decoded: Option<(Request, String)>,
) -> Result<PreparedRequest, GatewayError> {
    let (req, client_model) = decode_for_translation(body, target, decoded)?;
    let encoder = ResponsesEncoder::new(client_model, fallback_id(target, body), target.created_unix);
    let max_tokens = u64::from(target.defaults.max_tokens);
    let custom = claude::custom_tool_names(&req);
    match target.provider.kind {
        ProviderKind::Anthropic => {
            let encoded = claude::encode_request(&req, target.model, max_tokens)?;
            Ok(prepared(target, encoded, false, AnthropicDecoder::new(custom), encoder))
        }
        ProviderKind::Bedrock if super::bedrock_invoke::uses_invoke(target.provider, target.model) => {
            super::openai_to_bedrock::region(target.provider)?;
            let mut dropped = Vec::new();
            let json = claude::encode_body(&req, None, max_tokens, &mut dropped)?;
            let (body, more) = super::bedrock_invoke::invoke_body_for(&json)?;
            for name in more {
                if !dropped.contains(&name) {
                    dropped.push(name);
                }
            }
            let path =
                super::provider_path(target.provider, &super::bedrock_invoke::invoke_path(target.model, req.stream)?);
            let encoded =
                Encoded { path, body, headers: vec![("content-type", "application/json".to_owned())], dropped };
            Ok(prepared(target, encoded, true, InvokeDecoder::new(custom), encoder))
        }
        ProviderKind::Bedrock => {
            super::openai_to_bedrock::region(target.provider)?;
            let encoded = codec::converse::encode_request(&req, target.model, max_tokens)?;
            let encoded = note_reasoning(encoded, &req, codec::converse::family_of(target.model));
            Ok(prepared(target, encoded, false, codec::converse::ConverseDecoder::new(target.model), encoder))
        }
        ProviderKind::Gemini => {
            let encoded = codec::gemini::encode_request(&req, target.model, max_tokens)?;
            let encoded = note_reasoning(encoded, &req, Family::Gemini);
            Ok(prepared(target, encoded, false, codec::gemini::GeminiDecoder::new(), encoder))
        }
        ProviderKind::Openai | ProviderKind::AzureOpenai => Err(GatewayError::new(
            ErrorKind::Internal,
            "an OpenAI provider is served by the passthrough, not the conversation model",
        )),
    }
}

/// Whether `req` carries reasoning the provider of `family` cannot take back (another family's,
/// or unsigned): every encoder leaves it out, and the client is told (`reasoning`).
fn foreign_reasoning(req: &Request, family: Family) -> bool {
    req.messages.iter().flat_map(|m| &m.parts).any(|part| match part {
        Part::Reasoning { signature, .. } => signature.as_ref().is_none_or(|s| s.family != family),
        Part::RedactedReasoning { data } => data.family != family,
        _ => false,
    })
}

/// Names `reasoning` as dropped when `req` holds reasoning `family` cannot take.
fn note_reasoning(mut encoded: Encoded, req: &Request, family: Family) -> Encoded {
    if foreign_reasoning(req, family) && !encoded.dropped.contains(&"reasoning") {
        encoded.dropped.push("reasoning");
    }
    encoded
}

/// The attempt for an encoded request; `prefixed` when its path already has the provider's prefix.
fn prepared<D: ProviderDecoder + 'static>(
    target: &Target<'_>,
    encoded: Encoded,
    prefixed: bool,
    decoder: D,
    encoder: ResponsesEncoder,
) -> PreparedRequest {
    let path = if prefixed { encoded.path } else { super::provider_path(target.provider, &encoded.path) };
    PreparedRequest {
        path,
        body: Some(encoded.body),
        headers: encoded.headers,
        translator: Box::new(Bridge::new(decoder, encoder)),
        dropped: encoded.dropped,
    }
}

/// Claude on Bedrock InvokeModel: Anthropic messages inside AWS event-stream frames (the JSON
/// answer is a plain Anthropic message).
pub struct InvokeDecoder {
    stream: super::bedrock_invoke::stream::InvokeStream,
    framer: SseFramer,
    inner: AnthropicDecoder,
    custom: Vec<String>,
    error_type: Option<String>,
}

impl InvokeDecoder {
    /// A decoder whose free-form tools are `custom`.
    pub fn new(custom: Vec<String>) -> Self {
        InvokeDecoder {
            stream: super::bedrock_invoke::stream::InvokeStream::new(None),
            framer: SseFramer::default(),
            inner: AnthropicDecoder::new(custom.clone()),
            custom,
            error_type: None,
        }
    }
}

impl ProviderDecoder for InvokeDecoder {
    fn stream_content_type(&self) -> &'static str {
        super::openai_to_bedrock::EVENT_STREAM_CONTENT_TYPE
    }

    fn decode_response(&mut self, body: &[u8]) -> Result<Response, GatewayError> {
        claude::decode_message(body, self.custom.clone())
    }

    fn decode_error(&mut self, status: u16, body: &[u8]) -> ProviderError {
        codec::converse::response::decode_error(status, self.error_type.as_deref(), body)
    }

    fn decode_chunk(&mut self, chunk: &[u8], end_of_stream: bool, out: &mut Vec<Event>) {
        // The event stream unwrapped into Anthropic SSE (errors included), then read as Anthropic's.
        let sse = self.stream.push(chunk, end_of_stream);
        let inner = &mut self.inner;
        let _ = self.framer.push_each(&sse, |_, data| inner.decode_event(data.as_bytes(), out));
        if end_of_stream {
            self.framer.finish_each(|_, data| inner.decode_event(data.as_bytes(), out));
        }
        if end_of_stream {
            self.inner.end(out);
        }
    }

    fn wanted_response_header(&self) -> Option<&'static str> {
        Some(super::openai_to_bedrock::ERROR_TYPE_HEADER)
    }

    fn on_response_header(&mut self, value: &str) {
        self.error_type = Some(value.to_owned());
    }
}

#[derive(Deserialize, Default)]
struct UsageWire {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    input_tokens_details: Option<InputDetails>,
    #[serde(default)]
    output_tokens_details: Option<OutputDetails>,
}

#[derive(Deserialize, Default)]
struct InputDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
struct OutputDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct ResponseWire<'a> {
    #[serde(default)]
    usage: Option<UsageWire>,
    #[serde(borrow, default)]
    model: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct EventWire<'a> {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(borrow, default)]
    response: Option<ResponseWire<'a>>,
}

/// OpenAI/Azure answers left as they are, read for usage and the provider's model.
pub struct Passthrough {
    azure: bool,
    counting: bool,
    status: u16,
    usage: TokenUsage,
    model: Option<String>,
    framer: SseFramer,
}

impl Passthrough {
    /// A reader for one answer; `azure` normalises error bodies, `counting` reports no usage.
    pub fn new(azure: bool, counting: bool) -> Self {
        Passthrough {
            azure,
            counting,
            status: 0,
            usage: TokenUsage::default(),
            model: None,
            framer: SseFramer::default(),
        }
    }

    fn read(&mut self, response: ResponseWire<'_>) {
        if let Some(u) = response.usage {
            self.usage = TokenUsage {
                input: u.input_tokens.unwrap_or(0),
                output: u.output_tokens.unwrap_or(0),
                cache_read: u.input_tokens_details.and_then(|d| d.cached_tokens).unwrap_or(0),
                cache_creation: 0,
                reasoning: u.output_tokens_details.and_then(|d| d.reasoning_tokens).unwrap_or(0),
            };
        }
        if self.model.is_none() {
            self.model = super::response_model_name(response.model);
        }
    }
}

impl ResponseTranslator for Passthrough {
    fn on_headers(&mut self, status: u16, content_type: Option<&str>) -> BodyMode {
        self.status = status;
        super::translated_body_mode(status, content_type, "text/event-stream")
    }

    fn translate_body(&mut self, body: &[u8]) -> Result<Option<Vec<u8>>, GatewayError> {
        if !(200..300).contains(&self.status) {
            return Ok(self.azure.then(|| super::azure::translate_error(self.status, body)));
        }
        if !self.counting {
            if let Ok(response) = serde_json::from_slice::<ResponseWire<'_>>(body) {
                self.read(response);
            }
        }
        Ok(None)
    }

    fn translate_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Vec<u8> {
        // The framer is moved out for the call so that the callback can borrow the rest.
        let mut framer = std::mem::take(&mut self.framer);
        let mut on_event = |event: Option<&str>, data: &str| {
            // Only the terminal events carry usage; the others are not parsed.
            let terminal = ["response.completed", "response.incomplete", "response.failed"];
            let named = event.is_some_and(|e| terminal.contains(&e));
            if !named && !terminal.iter().any(|t| data.contains(t)) {
                return;
            }
            if let Ok(EventWire { kind: Some(kind), response: Some(response) }) =
                serde_json::from_str::<EventWire<'_>>(data)
            {
                if terminal.contains(&kind.as_str()) {
                    self.read(response);
                }
            }
        };
        let _ = framer.push_each(chunk, &mut on_event);
        if end_of_stream {
            framer.finish_each(&mut on_event);
        }
        self.framer = framer;
        chunk.to_vec()
    }

    fn usage(&self) -> TokenUsage {
        self.usage
    }

    fn response_model(&self) -> Option<&str> {
        self.model.as_deref()
    }
}

/// Translates an `input_tokens` body for one attempt at `target` (see the module documentation).
pub fn prepare_count(body: &[u8], target: &Target<'_>) -> Result<PreparedRequest, GatewayError> {
    match target.provider.kind {
        ProviderKind::Openai => {
            passthrough(body, target, super::provider_path(target.provider, INPUT_TOKENS_PATH), true)
        }
        ProviderKind::AzureOpenai => passthrough(body, target, azure_path(target, "/input_tokens")?, true),
        ProviderKind::Anthropic => {
            let json = anthropic_count_body(body, target, Some(target.model))?;
            Ok(PreparedRequest {
                path: super::provider_path(target.provider, super::count_tokens::COUNT_TOKENS_PATH),
                body: Some(json),
                headers: vec![
                    ("content-type", "application/json".to_owned()),
                    ("anthropic-version", crate::api::anthropic::API_VERSION.to_owned()),
                ],
                translator: Box::new(CountAnswer::default()),
                dropped: Vec::new(),
            })
        }
        ProviderKind::Bedrock if super::bedrock_invoke::uses_invoke(target.provider, target.model) => {
            let json = anthropic_count_body(body, target, None)?;
            let mut prepared = super::bedrock_invoke::prepare_count_tokens(&json, target)?;
            prepared.translator = Box::new(CountAnswer::default());
            Ok(prepared)
        }
        _ => Err(GatewayError::new(
            ErrorKind::Internal,
            "this provider has no token counting endpoint; the gateway answers with its estimate",
        )),
    }
}

/// Whether a count for `model` at `provider` goes upstream (else the gateway estimates).
pub fn provider_counts(provider: &crate::config::ProviderConfig, model: &str) -> bool {
    matches!(provider.kind, ProviderKind::Openai | ProviderKind::AzureOpenai)
        || super::count_tokens::provider_counts(provider, model)
}

/// The Anthropic `count_tokens` body of a Responses request: what Claude would be sent,
/// without the members counting refuses.
fn anthropic_count_body(body: &[u8], target: &Target<'_>, model: Option<&str>) -> Result<Vec<u8>, GatewayError> {
    let (mut req, _) = decode_for_translation(body, target, None)?;
    req.stream = false;
    let mut dropped = Vec::new();
    let json = claude::encode_body(&req, model, u64::from(target.defaults.max_tokens), &mut dropped)?;
    let mut value: serde_json::Value = serde_json::from_slice(&json)
        .map_err(|e| GatewayError::new(ErrorKind::Internal, format!("could not re-read the count body: {e}")))?;
    if let Some(obj) = value.as_object_mut() {
        obj.retain(|k, _| matches!(k.as_str(), "model" | "messages" | "system" | "tools" | "tool_choice" | "thinking"));
    }
    serde_json::to_vec(&value).map_err(|e| GatewayError::new(ErrorKind::Internal, e.to_string()))
}

/// The gateway's estimate of a Responses count body, as OpenAI's answer.
pub fn estimate_body(body: &[u8]) -> Result<Vec<u8>, GatewayError> {
    let (mut req, _) = codec::responses::decode_request(body)?;
    req.stream = false;
    let mut dropped = Vec::new();
    let json = claude::encode_body(&req, Some("estimate"), 1, &mut dropped)?;
    Ok(count_json(super::count_tokens::estimate(&json)?))
}

/// OpenAI's `input_tokens` answer.
fn count_json(tokens: u64) -> Vec<u8> {
    format!(r#"{{"object":"response.input_tokens","input_tokens":{tokens}}}"#).into_bytes()
}

/// Anthropic's `{"input_tokens": N}` (or Bedrock's `{"inputTokens": N}`) as OpenAI's answer;
/// errors in OpenAI's shape. Never billed.
#[derive(Debug, Default)]
pub struct CountAnswer {
    status: u16,
}

/// OpenAI's `error.type` for an HTTP status.
fn openai_type_for_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    }
}

impl ResponseTranslator for CountAnswer {
    fn on_headers(&mut self, status: u16, _content_type: Option<&str>) -> BodyMode {
        self.status = status;
        BodyMode::Buffered
    }

    fn content_type(&self) -> Option<&'static str> {
        Some("application/json")
    }

    fn translate_body(&mut self, body: &[u8]) -> Result<Option<Vec<u8>>, GatewayError> {
        #[derive(Deserialize)]
        struct Count {
            #[serde(alias = "inputTokens")]
            input_tokens: u64,
        }
        if !(200..300).contains(&self.status) {
            let error = claude::decode_error_body(self.status, body);
            let message = match serde_json::from_slice::<serde_json::Value>(body) {
                // Bedrock's errors are `{"message": ...}`.
                Ok(v) if error.code.is_none() => {
                    v.get("message").and_then(serde_json::Value::as_str).map(str::to_owned).unwrap_or(error.message)
                }
                _ => error.message,
            };
            return Ok(Some(crate::error::openai_error_body(
                &message,
                openai_type_for_status(self.status),
                None,
                error.code.as_deref(),
            )));
        }
        let count: Count = serde_json::from_slice(body)
            .map_err(|_| GatewayError::new(ErrorKind::BadGateway, "The provider's token count could not be read."))?;
        Ok(Some(count_json(count.input_tokens)))
    }

    fn translate_chunk(&mut self, chunk: &[u8], _end_of_stream: bool) -> Vec<u8> {
        chunk.to_vec()
    }

    fn usage(&self) -> TokenUsage {
        TokenUsage::default()
    }
}
