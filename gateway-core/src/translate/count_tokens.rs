//! `POST /v1/messages/count_tokens` (Anthropic's token counting endpoint, `?beta=true` or not):
//! validation, the passthrough to Anthropic, and the gateway's own estimate for providers that
//! have no counting endpoint.
//!
//! | provider kind | answer |
//! |---|---|
//! | `anthropic` | passthrough to `/v1/messages/count_tokens`, `model` spliced ([`prepare_anthropic`]) |
//! | `bedrock`, Claude ids on InvokeModel | Bedrock's `count-tokens` ([`super::bedrock_invoke::prepare_count_tokens_with_headers`]) |
//! | `bedrock`, Converse models | the local [`estimate`] |
//! | `openai`, `azure_openai`, `gemini` | the local [`estimate`], never a provider call |
//!
//! Counting is free at every provider and is never billed by the gateway: no budget reservation,
//! no usage record, no tokens against a TPM limit (the request still counts against RPM).
//!
//! # The estimate
//! `7 + 3 × messages + ⌈bytes / 4⌉ (+ 300 when tools are defined)`, where `bytes` is the UTF-8
//! length of every string in `system` and `messages` (text, tool inputs and results, thinking;
//! not base64 `data`, `signature`s or block `type`s) plus the compact JSON of `tools`, and every
//! image or document block adds 1,600 (Anthropic's cap for one image). Four bytes per token is
//! the usual rule for English with BPE tokenisers; against Anthropic's own counts in
//! `fixtures/recorded` it errs high for prose (1,367 for 1,114 counted; 23 for 18) and a little
//! low for a very short, digit-heavy turn (14 for 16) and one tool (355 for 375): see
//! `tests::estimate_tracks_the_recorded_counts`.
//! Erring high is the safe side: clients budget their context window with it and compact a
//! little early rather than overflow. The 300 for tools stands for the hidden tool-use
//! instructions providers add (Anthropic documents 313–346 tokens for Claude 4 models).

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::{BodyMode, PreparedRequest, RequestFacts, ResponseTranslator, Target};
use crate::api::anthropic::API_VERSION;
use crate::config::ProviderKind;
use crate::error::GatewayError;
use crate::usage::TokenUsage;

/// The counting endpoint on Anthropic.
pub const COUNT_TOKENS_PATH: &str = "/v1/messages/count_tokens";

/// Response header telling the client whether `input_tokens` is a provider's count or the
/// gateway's estimate.
pub const TOKEN_COUNT_HEADER: &str = "x-ai-gateway-token-count";

/// [`TOKEN_COUNT_HEADER`] value when a provider counted.
pub const EXACT: &str = "exact";

/// [`TOKEN_COUNT_HEADER`] value for the gateway's own estimate.
pub const ESTIMATE: &str = "estimate";

/// Fixed part of every count (Anthropic counts a bare one-word turn as 8 tokens).
const BASE_TOKENS: u64 = 7;
/// Role and turn markers per message.
const PER_MESSAGE_TOKENS: u64 = 3;
/// UTF-8 bytes per token of ordinary text.
const BYTES_PER_TOKEN: u64 = 4;
/// Hidden tool-use instructions added when `tools` is non-empty.
const TOOLS_TOKENS: u64 = 300;
/// One image or document block whose size cannot be read without decoding it.
const MEDIA_TOKENS: u64 = 1_600;

/// Whether `provider` counts tokens for `model` itself (the request goes upstream); otherwise the
/// gateway answers with [`estimate`] without calling it. Bedrock counts Claude models reached
/// through InvokeModel (its `count-tokens` takes an InvokeModel body); Converse models get the
/// estimate.
pub fn provider_counts(provider: &crate::config::ProviderConfig, model: &str) -> bool {
    match provider.kind {
        ProviderKind::Anthropic => true,
        ProviderKind::Bedrock => super::bedrock_invoke::uses_invoke(provider, model),
        ProviderKind::Openai | ProviderKind::AzureOpenai | ProviderKind::Gemini => false,
    }
}

/// The fields validation needs, read without materialising the rest.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(default)]
    model: Option<Value>,
    #[serde(borrow, default)]
    messages: Option<&'a RawValue>,
}

/// Validates a count_tokens body as Anthropic does (an object, `model`, a non-empty `messages`
/// list; no `max_tokens`), with Anthropic's wording, and returns the routing facts.
pub fn inspect(body: &[u8]) -> Result<RequestFacts, GatewayError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(GatewayError::invalid("The request body must be a JSON object."));
    }
    let fields: Fields<'_> = serde_json::from_slice(body)
        .map_err(|e| GatewayError::invalid(format!("The request body is not valid JSON: {e}")))?;
    let model = match fields.model {
        Some(Value::String(m)) if !m.is_empty() => m,
        Some(Value::String(_)) | None => return Err(GatewayError::invalid("model: Field required").with_param("model")),
        Some(_) => return Err(GatewayError::invalid("model: Input should be a valid string").with_param("model")),
    };
    match fields.messages.map(|m| m.get().trim_start()) {
        None => return Err(GatewayError::invalid("messages: Field required").with_param("messages")),
        Some(m) if !m.starts_with('[') => {
            return Err(GatewayError::invalid("messages: Input should be a valid list").with_param("messages"))
        }
        Some(m) if m.trim_start_matches('[').trim_start().starts_with(']') => {
            return Err(GatewayError::invalid("messages: at least one message is required").with_param("messages"))
        }
        Some(_) => {}
    }
    Ok(RequestFacts { model, stream: false })
}

/// Anthropic → Anthropic: the client's body with only `model` replaced, to the counting endpoint.
pub fn prepare_anthropic(body: &[u8], target: &Target<'_>) -> Result<PreparedRequest, GatewayError> {
    Ok(PreparedRequest {
        path: super::provider_path(target.provider, COUNT_TOKENS_PATH),
        body: Some(super::anthropic_passthrough::replace_model(body, target.model)?),
        headers: vec![("content-type", "application/json".to_owned()), ("anthropic-version", API_VERSION.to_owned())],
        translator: Box::new(CountPassthrough),
        dropped: Vec::new(),
    })
}

/// Leaves the provider's count (or error, already in Anthropic's shape) untouched and reports no
/// usage: counting is never billed.
#[derive(Debug, Default)]
pub struct CountPassthrough;

impl ResponseTranslator for CountPassthrough {
    fn on_headers(&mut self, _status: u16, _content_type: Option<&str>) -> BodyMode {
        BodyMode::Buffered
    }

    fn translate_body(&mut self, _body: &[u8]) -> Result<Option<Vec<u8>>, GatewayError> {
        Ok(None)
    }

    fn translate_chunk(&mut self, chunk: &[u8], _end_of_stream: bool) -> Vec<u8> {
        chunk.to_vec()
    }

    fn usage(&self) -> TokenUsage {
        TokenUsage::default()
    }
}

/// The gateway's estimate of a count_tokens body's input tokens (see the module docs).
pub fn estimate(body: &[u8]) -> Result<u64, GatewayError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| GatewayError::invalid(format!("The request body is not valid JSON: {e}")))?;
    let mut tally = Tally::default();
    let messages = value.get("messages").and_then(Value::as_array).map_or(0, Vec::len) as u64;
    if let Some(system) = value.get("system") {
        tally.walk(system, 0);
    }
    if let Some(messages) = value.get("messages") {
        tally.walk(messages, 0);
    }
    let mut tools_tokens = 0;
    if let Some(tools) = value.get("tools").and_then(Value::as_array).filter(|t| !t.is_empty()) {
        let json_len = serde_json::to_vec(tools).map_or(0, |v| v.len()) as u64;
        tally.bytes = tally.bytes.saturating_add(json_len);
        tools_tokens = TOOLS_TOKENS;
    }
    Ok(BASE_TOKENS
        .saturating_add(PER_MESSAGE_TOKENS.saturating_mul(messages))
        .saturating_add(tally.bytes.div_ceil(BYTES_PER_TOKEN))
        .saturating_add(MEDIA_TOKENS.saturating_mul(tally.media))
        .saturating_add(tools_tokens))
}

/// The `{"input_tokens": N}` body the gateway answers with its [`estimate`].
pub fn estimate_body(body: &[u8]) -> Result<Vec<u8>, GatewayError> {
    let tokens = estimate(body)?;
    Ok(format!("{{\"input_tokens\":{tokens}}}").into_bytes())
}

/// Deepest nesting walked; JSON deeper than this adds nothing more (serde_json itself stops at 128).
const MAX_DEPTH: usize = 64;

/// What the estimate counts while walking `system` and `messages`.
#[derive(Default)]
struct Tally {
    /// UTF-8 bytes of counted strings.
    bytes: u64,
    /// Image and document blocks.
    media: u64,
}

impl Tally {
    fn walk(&mut self, value: &Value, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        match value {
            Value::String(s) => self.bytes = self.bytes.saturating_add(s.len() as u64),
            Value::Array(items) => items.iter().for_each(|v| self.walk(v, depth + 1)),
            Value::Object(map) => {
                if matches!(map.get("type").and_then(Value::as_str), Some("image" | "document")) {
                    // A text document's own text is counted like any text; base64 and URLs are not.
                    self.media = self.media.saturating_add(1);
                    return;
                }
                for (key, v) in map {
                    match key.as_str() {
                        // Markers and opaque payloads, not text the model reads.
                        "type" | "role" | "cache_control" | "signature" | "data" | "citations" => {}
                        // Tool inputs reach the model as JSON text.
                        "input" if v.is_object() => {
                            let len = serde_json::to_vec(v).map_or(0, |b| b.len()) as u64;
                            self.bytes = self.bytes.saturating_add(len);
                        }
                        _ => self.walk(v, depth + 1),
                    }
                }
            }
            Value::Number(n) => self.bytes = self.bytes.saturating_add(n.to_string().len() as u64),
            Value::Bool(_) | Value::Null => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Defaults, ProviderConfig};

    fn provider(kind: &str) -> ProviderConfig {
        serde_json::from_value(serde_json::json!({"name": "p", "kind": kind, "cluster": "c"})).unwrap()
    }

    #[test]
    fn inspect_requires_model_and_non_empty_messages_but_not_max_tokens() {
        let ok = inspect(br#"{"model":"claude","messages":[{"role":"user","content":"hi"}]}"#).unwrap();
        assert_eq!(ok, RequestFacts { model: "claude".into(), stream: false });
        for (body, param) in [
            (&br#"{"messages":[{"role":"user","content":"hi"}]}"#[..], "model"),
            (br#"{"model":"","messages":[{"role":"user","content":"hi"}]}"#, "model"),
            (br#"{"model":5,"messages":[{"role":"user","content":"hi"}]}"#, "model"),
            (br#"{"model":"claude"}"#, "messages"),
            (br#"{"model":"claude","messages":[ ]}"#, "messages"),
            (br#"{"model":"claude","messages":{}}"#, "messages"),
        ] {
            let err = inspect(body).unwrap_err();
            assert_eq!(err.status(), 400, "{}", String::from_utf8_lossy(body));
            assert_eq!(err.param.as_deref(), Some(param), "{}", String::from_utf8_lossy(body));
            let shaped: Value = serde_json::from_slice(&err.to_anthropic_body()).unwrap();
            assert_eq!(shaped["type"], "error");
            assert_eq!(shaped["error"]["type"], "invalid_request_error");
        }
        assert_eq!(inspect(b"[1]").unwrap_err().status(), 400);
        assert_eq!(inspect(b"{\"model\":").unwrap_err().status(), 400);
    }

    #[test]
    fn anthropic_passthrough_splices_the_model_and_reports_no_usage() {
        let p = provider("anthropic");
        let defaults = Defaults::default();
        let target = Target { provider: &p, model: "claude-sonnet-4-5-20250929", defaults: &defaults, created_unix: 0 };
        let body = br#"{"model":"my-claude","messages":[{"role":"user","content":"hi"}],"tools":[]}"#;
        let mut prepared = prepare_anthropic(body, &target).unwrap();
        assert_eq!(prepared.path, COUNT_TOKENS_PATH);
        let sent: Value = serde_json::from_slice(prepared.body.as_deref().unwrap()).unwrap();
        assert_eq!(sent["model"], "claude-sonnet-4-5-20250929");
        assert_eq!(sent["tools"], serde_json::json!([]));
        assert!(prepared.headers.iter().any(|(n, _)| *n == "anthropic-version"));
        assert_eq!(prepared.translator.on_headers(200, Some("application/json")), BodyMode::Buffered);
        assert_eq!(prepared.translator.translate_body(br#"{"input_tokens":16}"#).unwrap(), None);
        assert_eq!(prepared.translator.usage(), TokenUsage::default());
    }

    #[test]
    fn anthropic_and_claude_on_bedrock_count_the_rest_is_estimated() {
        let provider = |kind: ProviderKind| -> crate::config::ProviderConfig {
            let mut p: crate::config::ProviderConfig =
                serde_json::from_str(r#"{"name":"p","kind":"openai","cluster":"c"}"#).unwrap();
            p.kind = kind;
            if kind == ProviderKind::Bedrock {
                p.settings.bedrock =
                    Some(crate::config::BedrockSettings { region: "us-east-1".into(), ..Default::default() });
            }
            p
        };
        assert!(provider_counts(&provider(ProviderKind::Anthropic), "claude-sonnet-4-5"));
        assert!(provider_counts(&provider(ProviderKind::Bedrock), "us.anthropic.claude-sonnet-4-5-20250929-v1:0"));
        assert!(!provider_counts(&provider(ProviderKind::Bedrock), "amazon.nova-pro-v1:0"));
        for kind in [ProviderKind::Openai, ProviderKind::AzureOpenai, ProviderKind::Gemini] {
            assert!(!provider_counts(&provider(kind), "m"), "{kind:?}");
        }
    }

    #[test]
    fn estimate_grows_with_text_tools_and_media() {
        let one = |content: &str| {
            estimate(
                serde_json::json!({"model":"m","messages":[{"role":"user","content":content}]}).to_string().as_bytes(),
            )
            .unwrap()
        };
        assert_eq!(one("abcd"), BASE_TOKENS + PER_MESSAGE_TOKENS + 1);
        assert_eq!(one(&"x".repeat(400)), BASE_TOKENS + PER_MESSAGE_TOKENS + 100);
        let with_tools = serde_json::json!({"model":"m","messages":[{"role":"user","content":"abcd"}],
            "tools":[{"name":"t","input_schema":{"type":"object"}}]});
        assert!(estimate(with_tools.to_string().as_bytes()).unwrap() > one("abcd") + TOOLS_TOKENS);
        let image = serde_json::json!({"model":"m","messages":[{"role":"user","content":[
            {"type":"image","source":{"type":"base64","media_type":"image/png","data":"A".repeat(100_000)}}]}]});
        // The base64 is not read as text: one image costs the fixed media count.
        assert_eq!(estimate(image.to_string().as_bytes()).unwrap(), BASE_TOKENS + PER_MESSAGE_TOKENS + MEDIA_TOKENS);
        let thinking = serde_json::json!({"model":"m","messages":[{"role":"assistant","content":[
            {"type":"thinking","thinking":"abcd","signature":"S".repeat(4000)}]}]});
        assert_eq!(estimate(thinking.to_string().as_bytes()).unwrap(), BASE_TOKENS + PER_MESSAGE_TOKENS + 1);
        assert_eq!(
            estimate_body(br#"{"messages":[{"role":"user","content":"abcd"}]}"#).unwrap(),
            br#"{"input_tokens":11}"#
        );
        assert!(estimate(b"not json").is_err());
    }

    /// The recorded count_tokens exchanges (`fixtures/recorded`): the estimate stays within
    /// -20%/+30% of what the provider counted.
    #[test]
    fn estimate_tracks_the_recorded_counts() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/recorded");
        let mut checked = Vec::new();
        for name in [
            "anthropic/test_anthropic_count_tokens_with_native_tools.yaml",
            "anthropic/test_anthropic_cache_count_tokens.yaml",
        ] {
            let text = std::fs::read_to_string(root.join(name)).unwrap();
            let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
            let exchange = &doc["interactions"][0];
            assert!(exchange["request"]["uri"].as_str().unwrap().contains("/count_tokens"), "{name}");
            let body: Value = serde_json::to_value(&exchange["request"]["parsed_body"]).unwrap();
            let counted = exchange["response"]["parsed_body"]["input_tokens"].as_u64().unwrap();
            checked.push((name.to_owned(), estimate(body.to_string().as_bytes()).unwrap(), counted));
        }
        // Bedrock's count-tokens of an InvokeModel body (Anthropic's format, base64 inside).
        let text =
            std::fs::read_to_string(root.join("bedrock-invoke/test_anthropic_bedrock_count_tokens_real_api.yaml"))
                .unwrap();
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let exchange = &doc["interactions"][0];
        let b64 = exchange["request"]["parsed_body"]["input"]["invokeModel"]["body"].as_str().unwrap();
        use base64::Engine as _;
        let body = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
        let counted = exchange["response"]["parsed_body"]["inputTokens"].as_u64().unwrap();
        checked.push(("bedrock-invoke".to_owned(), estimate(&body).unwrap(), counted));
        // Bedrock Converse count-tokens with one tool (test_bedrock_count_tokens_tool_config), as Anthropic's body.
        let tools = serde_json::json!({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"What is the weather in Paris?"}]}],
            "tools":[{"name":"get_weather","description":"Get the weather for a location",
                      "input_schema":{"type":"object","properties":{"location":{"type":"string"}}}}]});
        checked.push(("bedrock tools".to_owned(), estimate(tools.to_string().as_bytes()).unwrap(), 375));
        for (name, estimated, counted) in &checked {
            let ratio = *estimated as f64 / *counted as f64;
            eprintln!("{name}: estimated {estimated}, counted {counted} ({ratio:.2})");
            assert!((0.8..=1.3).contains(&ratio), "{name}: estimated {estimated}, counted {counted} ({ratio:.2})");
        }
        assert_eq!(checked.len(), 4);
    }
}
