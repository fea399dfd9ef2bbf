//! Anthropic Messages clients (`POST /v1/messages`): validation, dispatch by provider kind, and
//! the Anthropic → Anthropic passthrough.
//!
//! Served by Anthropic, the body is forwarded byte for byte except the `model` value, which is
//! spliced in place (no re-serialisation: key order, whitespace, number formatting and unknown or
//! beta fields all survive). `anthropic-version` is the client's when it sent one, else
//! `2023-06-01`; `anthropic-beta` is forwarded to Anthropic only (see
//! [`super::forwarded_headers`]). Responses and errors are already in the client's format and
//! go back untouched; usage is read on the way (JSON `usage`, or `message_start` plus the
//! cumulative `message_delta` counts of a stream).
//!
//! | provider kind | translation |
//! |---|---|
//! | `anthropic` | this passthrough |
//! | `openai`, `azure_openai`, `bedrock` (Converse), `gemini` | [`super::messages_via_model`]: the conversation model (ADR 0010) |

use serde::Deserialize;
use serde_json::value::RawValue;

use super::openai_passthrough::RawObject;
use super::openai_to_anthropic::response::UsageCounts;
use super::{BodyMode, PreparedRequest, RequestFacts, ResponseTranslator, Target};
use crate::api::anthropic::{EventType, Usage, API_VERSION};
use crate::config::ProviderKind;
use crate::error::GatewayError;
use crate::sse::{SseEvent, SseFramer};
use crate::usage::TokenUsage;

/// The Messages endpoint on Anthropic.
pub const MESSAGES_PATH: &str = "/v1/messages";

/// The fields routing and validation need, read without materialising the rest.
#[derive(Deserialize)]
struct RoutingFields<'a> {
    #[serde(default)]
    model: Option<serde_json::Value>,
    #[serde(borrow, default)]
    messages: Option<&'a RawValue>,
    #[serde(borrow, default)]
    max_tokens: Option<&'a RawValue>,
    #[serde(default)]
    stream: Option<serde_json::Value>,
}

/// Validates what Anthropic itself requires (an object, `model`, a non-empty `messages` array,
/// a positive integer `max_tokens`), with Anthropic's wording, and returns the routing facts.
pub fn inspect(body: &[u8]) -> Result<RequestFacts, GatewayError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(GatewayError::invalid("The request body must be a JSON object."));
    }
    let fields: RoutingFields<'_> = serde_json::from_slice(body)
        .map_err(|e| GatewayError::invalid(format!("The request body is not valid JSON: {e}")))?;
    let model = match fields.model {
        Some(serde_json::Value::String(m)) if !m.is_empty() => m,
        Some(serde_json::Value::String(_)) | None => {
            return Err(GatewayError::invalid("model: Field required").with_param("model"))
        }
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
    match fields.max_tokens.map(|m| serde_json::from_slice::<u64>(m.get().as_bytes())) {
        None => return Err(GatewayError::invalid("max_tokens: Field required").with_param("max_tokens")),
        Some(Ok(n)) if n >= 1 => {}
        Some(_) => {
            return Err(GatewayError::invalid("max_tokens: Input should be a positive integer").with_param("max_tokens"))
        }
    }
    let stream = match fields.stream {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => b,
        Some(_) => return Err(GatewayError::invalid("stream: Input should be a valid boolean").with_param("stream")),
    };
    Ok(RequestFacts { model, stream })
}

/// Translates an Anthropic Messages body for `target`, whatever its provider kind.
pub fn prepare_any(body: &[u8], target: &Target<'_>) -> Result<PreparedRequest, GatewayError> {
    match target.provider.kind {
        ProviderKind::Anthropic => prepare(body, target),
        _ => super::messages_via_model::prepare(body, target),
    }
}

/// Anthropic → Anthropic: the client's body with only `model` replaced.
pub fn prepare(body: &[u8], target: &Target<'_>) -> Result<PreparedRequest, GatewayError> {
    Ok(PreparedRequest {
        path: super::provider_path(target.provider, MESSAGES_PATH),
        body: Some(replace_model(body, target.model)?),
        headers: vec![("content-type", "application/json".to_owned()), ("anthropic-version", API_VERSION.to_owned())],
        translator: Box::new(UsageReader::default()),
        dropped: Vec::new(),
    })
}

/// `body` with the value of every top-level `model` member replaced by `model`, every other byte
/// unchanged. A body without `model` gets one appended (inspect rejects those, so only a direct
/// caller of `prepare` sees this).
pub fn replace_model(body: &[u8], model: &str) -> Result<Vec<u8>, GatewayError> {
    let invalid = |e: serde_json::Error| GatewayError::invalid(format!("The request body is not valid JSON: {e}"));
    let object: RawObject<'_> = serde_json::from_slice(body).map_err(invalid)?;
    let model_json = serde_json::to_string(model).unwrap_or_default();
    let base = body.as_ptr() as usize;
    let mut out = Vec::with_capacity(body.len() + model_json.len());
    let mut copied = 0usize;
    for (key, value) in &object.0 {
        if key != "model" {
            continue;
        }
        // RawValue borrows from `body`: its offset is a pointer difference, checked below.
        let start = (value.get().as_ptr() as usize).wrapping_sub(base);
        let end = start.saturating_add(value.get().len());
        match body.get(start..end) {
            Some(span) if span == value.get().as_bytes() && start >= copied => {
                out.extend_from_slice(body.get(copied..start).unwrap_or_default());
                out.extend_from_slice(model_json.as_bytes());
                copied = end;
            }
            _ => {
                return Err(GatewayError::new(
                    crate::error::ErrorKind::Internal,
                    "could not locate the model in the request body",
                ))
            }
        }
    }
    if copied == 0 && !object.0.iter().any(|(k, _)| k == "model") {
        // No model member: insert one right after the opening brace.
        let brace = body.iter().position(|b| *b == b'{').unwrap_or(0);
        let (head, tail) = body.split_at(brace.saturating_add(1).min(body.len()));
        out.extend_from_slice(head);
        out.extend_from_slice(b"\"model\":");
        out.extend_from_slice(model_json.as_bytes());
        if !object.0.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(tail);
        return Ok(out);
    }
    out.extend_from_slice(body.get(copied..).unwrap_or_default());
    Ok(out)
}

/// Just the usage-carrying parts of an Anthropic response or stream event.
#[derive(Deserialize)]
struct UsageProbe<'a> {
    #[serde(rename = "type", default)]
    kind: Option<EventType>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(borrow, default)]
    message: Option<MessageUsage<'a>>,
    #[serde(borrow, default)]
    model: Option<&'a serde_json::value::RawValue>,
}

#[derive(Deserialize)]
struct MessageUsage<'a> {
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(borrow, default)]
    model: Option<&'a serde_json::value::RawValue>,
}

/// Leaves Anthropic's answer untouched and counts its tokens.
#[derive(Debug, Default)]
pub struct UsageReader {
    mode: Option<BodyMode>,
    framer: SseFramer,
    events: Vec<SseEvent>,
    counts: UsageCounts,
    response_model: Option<String>,
}

impl UsageReader {
    fn read_event(&mut self, data: &str) {
        // Content deltas are most of a stream and never carry usage: skip parsing them.
        if !data.contains("\"usage\"") {
            return;
        }
        let Ok(probe) = serde_json::from_slice::<UsageProbe>(data.as_bytes()) else { return };
        match probe.kind {
            Some(EventType::MessageStart) => {
                if let Some(message) = probe.message {
                    self.response_model = super::response_model_name(message.model);
                    if let Some(usage) = message.usage {
                        self.counts.update(&usage);
                    }
                }
            }
            Some(EventType::MessageDelta) => {
                if let Some(usage) = probe.usage {
                    self.counts.update(&usage);
                }
            }
            _ => {}
        }
    }
}

impl ResponseTranslator for UsageReader {
    fn on_headers(&mut self, status: u16, content_type: Option<&str>) -> BodyMode {
        let is_stream = content_type.is_some_and(|c| c.trim_start().starts_with("text/event-stream"));
        let mode = if (200..300).contains(&status) && is_stream { BodyMode::Streaming } else { BodyMode::Buffered };
        self.mode = Some(mode);
        mode
    }

    fn translate_body(&mut self, body: &[u8]) -> Result<Option<Vec<u8>>, GatewayError> {
        if let Ok(probe) = serde_json::from_slice::<UsageProbe>(body) {
            if let Some(usage) = probe.usage {
                self.counts.update(&usage);
            }
            self.response_model = super::response_model_name(probe.model);
        }
        // Anthropic's answers, errors included, already have the client's shape.
        Ok(None)
    }

    fn translate_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Vec<u8> {
        let mut events = std::mem::take(&mut self.events);
        // An oversized event is dropped by the framer; it only costs a usage reading.
        let _ = self.framer.push(chunk, &mut events);
        if end_of_stream {
            self.framer.finish(&mut events);
        }
        for event in events.drain(..) {
            self.read_event(&event.data);
        }
        self.events = events;
        chunk.to_vec()
    }

    fn usage(&self) -> TokenUsage {
        self.counts.to_token_usage()
    }

    fn response_model(&self) -> Option<&str> {
        self.response_model.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Defaults, ProviderConfig};

    fn provider(kind: ProviderKind) -> ProviderConfig {
        serde_json::from_value(serde_json::json!({"name": "p", "kind": kind, "cluster": "c"})).unwrap()
    }

    fn prep(body: &str, kind: ProviderKind) -> Result<PreparedRequest, GatewayError> {
        let p = provider(kind);
        let d = Defaults::default();
        prepare_any(body.as_bytes(), &Target { provider: &p, model: "claude-real", defaults: &d, created_unix: 0 })
    }

    #[test]
    fn inspect_requires_model_messages_and_max_tokens() {
        for (body, param) in [
            ("nope", None),
            ("[]", None),
            (r#"{"messages":[{"role":"user","content":"x"}],"max_tokens":5}"#, Some("model")),
            (r#"{"model":"","messages":[{"role":"user","content":"x"}],"max_tokens":5}"#, Some("model")),
            (r#"{"model":1,"messages":[{"role":"user","content":"x"}],"max_tokens":5}"#, Some("model")),
            (r#"{"model":"m","max_tokens":5}"#, Some("messages")),
            (r#"{"model":"m","messages":[],"max_tokens":5}"#, Some("messages")),
            (r#"{"model":"m","messages":{},"max_tokens":5}"#, Some("messages")),
            (r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#, Some("max_tokens")),
            (r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0}"#, Some("max_tokens")),
            (r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":"5"}"#, Some("max_tokens")),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":5,"stream":"yes"}"#,
                Some("stream"),
            ),
        ] {
            let err = inspect(body.as_bytes()).unwrap_err();
            assert_eq!((err.status(), err.param.as_deref()), (400, param), "{body}");
            let v: serde_json::Value = serde_json::from_slice(&err.to_anthropic_body()).unwrap();
            assert_eq!(v["error"]["type"], "invalid_request_error");
        }
        let facts =
            inspect(br#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":5,"stream":true}"#)
                .unwrap();
        assert_eq!(facts, RequestFacts { model: "m".into(), stream: true });
    }

    #[test]
    fn passthrough_changes_only_the_model_bytes() {
        let body = "{ \"model\" : \"alias\",\n  \"max_tokens\":1.0e3, \"messages\":[{\"role\":\"user\",\"content\":\"h\\u00e9\\n\"}],\"betas_field\":{\"x\":[1, 2]} }";
        let prepared = prep(body, ProviderKind::Anthropic).unwrap();
        let out = String::from_utf8(prepared.body.unwrap()).unwrap();
        assert_eq!(out, body.replace("\"alias\"", "\"claude-real\""));
        assert_eq!(prepared.path, "/v1/messages");
        assert!(prepared.headers.contains(&("anthropic-version", "2023-06-01".to_owned())));
        // The model name is JSON-escaped, never injected raw.
        let out = replace_model(br#"{"model":"a","messages":[]}"#, "we\"ird").unwrap();
        assert_eq!(out, br#"{"model":"we\"ird","messages":[]}"#);
        let out = replace_model(br#"{"messages":[]}"#, "m").unwrap();
        assert_eq!(out, br#"{"model":"m","messages":[]}"#);
        assert!(replace_model(b"{bad", "m").is_err());
    }

    #[test]
    fn every_provider_kind_serves_anthropic_clients() {
        let body = r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":5}"#;
        for kind in [ProviderKind::Gemini, ProviderKind::Openai] {
            let p = prep(body, kind).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            assert!(p.body.is_some(), "{kind:?}");
        }
    }

    const STREAM: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":12,\"cache_read_input_tokens\":3,\"output_tokens\":1}}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"usage\"}}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":7}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    #[test]
    fn stream_bytes_unchanged_and_usage_counted_however_split() {
        for step in [1, 3, 17, STREAM.len()] {
            let mut t = UsageReader::default();
            assert_eq!(t.on_headers(200, Some("text/event-stream")), BodyMode::Streaming);
            let mut out = Vec::new();
            let pieces: Vec<&[u8]> = STREAM.as_bytes().chunks(step).collect();
            for (i, piece) in pieces.iter().enumerate() {
                out.extend(t.translate_chunk(piece, i + 1 == pieces.len()));
            }
            assert_eq!(out, STREAM.as_bytes());
            assert_eq!(
                t.usage(),
                TokenUsage { input: 15, output: 7, cache_read: 3, ..Default::default() },
                "step {step}"
            );
        }
    }

    #[test]
    fn json_usage_counted_and_body_untouched() {
        let mut t = UsageReader::default();
        assert_eq!(t.on_headers(200, Some("application/json")), BodyMode::Buffered);
        let body = br#"{"id":"m","type":"message","content":[],"usage":{"input_tokens":4,"output_tokens":2,"cache_creation_input_tokens":1}}"#;
        assert_eq!(t.translate_body(body).unwrap(), None);
        assert_eq!(t.usage(), TokenUsage { input: 5, output: 2, cache_creation: 1, ..Default::default() });
        let mut t = UsageReader::default();
        t.on_headers(400, Some("application/json"));
        assert_eq!(
            t.translate_body(br#"{"type":"error","error":{"type":"invalid_request_error","message":"x"}}"#).unwrap(),
            None
        );
    }
}
