//! Anthropic Messages clients (`POST /v1/messages`): validation, dispatch by provider kind, and
//! the Anthropic → Anthropic passthrough.
//!
//! Served by Anthropic, the body is forwarded byte for byte except the `model` value, which is
//! spliced in place (no re-serialisation: key order, whitespace, number formatting and unknown or
//! beta fields all survive). `anthropic-version` is the client's when it sent one, else
//! `2023-06-01`; `anthropic-beta` is forwarded to Anthropic only (see
//! [`super::forwarded_headers`]). Responses and errors are already in the client's format and
//! go back untouched, except `model` (the JSON's, or `message_start.message.model`), which
//! names the model the client asked for when the route changed it: Claude Code keeps its
//! thinking blocks for the next turn only when the answer names its model. Only that value is
//! spliced, and in a stream only the first event is looked at; the provider's id stays in
//! `response_model()` (logs, traces, `x-ai-gateway-model`). Usage is read on the way (JSON
//! `usage`, or `message_start` plus the cumulative `message_delta` counts of a stream).
//!
//! | provider kind | translation |
//! |---|---|
//! | `anthropic` | this passthrough |
//! | `bedrock`, Claude models (`settings.bedrock.api`) | [`super::bedrock_invoke`]: InvokeModel, the Anthropic body nearly as is |
//! | `openai`, `azure_openai`, `bedrock` (Converse), `gemini` | [`super::messages_via_model`]: the conversation model (ADR 0010) |

use serde::Deserialize;
use serde_json::value::RawValue;

use super::openai_passthrough::RawObject;
use super::openai_to_anthropic::response::UsageCounts;
use super::{BodyMode, PreparedRequest, RequestFacts, ResponseTranslator, Target};
use crate::api::anthropic::{EventType, Usage, API_VERSION};
use crate::config::ProviderKind;
use crate::error::GatewayError;
use crate::sse::SseFramer;
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

/// Translates an Anthropic Messages body for `target`, whatever its provider kind (without the
/// client's headers: [`super::prepare_with_headers`] passes them to Bedrock InvokeModel).
pub fn prepare_any(body: &[u8], target: &Target<'_>) -> Result<PreparedRequest, GatewayError> {
    match target.provider.kind {
        ProviderKind::Anthropic => prepare(body, target),
        ProviderKind::Bedrock if super::bedrock_invoke::uses_invoke(target.provider, target.model) => {
            super::bedrock_invoke::prepare_messages(body, target, &[])
        }
        _ => super::messages_via_model::prepare(body, target),
    }
}

/// Anthropic → Anthropic: the client's body with only `model` replaced. When that changed the
/// model, the answer names the client's model again (see [`UsageReader::answering_as`]).
pub fn prepare(body: &[u8], target: &Target<'_>) -> Result<PreparedRequest, GatewayError> {
    let (body, client_model) = replace_model_reporting(body, target.model)?;
    let translator = UsageReader::answering_as(client_model.filter(|m| m != target.model));
    Ok(PreparedRequest {
        path: super::provider_path(target.provider, MESSAGES_PATH),
        body: Some(body),
        headers: vec![("content-type", "application/json".to_owned()), ("anthropic-version", API_VERSION.to_owned())],
        translator: Box::new(translator),
        dropped: Vec::new(),
    })
}

/// `body` with the value of every top-level `model` member replaced by `model`, every other byte
/// unchanged. A body without `model` gets one appended (inspect rejects those, so only a direct
/// caller of `prepare` sees this).
pub fn replace_model(body: &[u8], model: &str) -> Result<Vec<u8>, GatewayError> {
    replace_model_reporting(body, model).map(|(out, _)| out)
}

/// [`replace_model`], also returning the client's own `model` (the last string one), read in the
/// same pass.
pub fn replace_model_reporting(body: &[u8], model: &str) -> Result<(Vec<u8>, Option<String>), GatewayError> {
    let invalid = |e: serde_json::Error| GatewayError::invalid(format!("The request body is not valid JSON: {e}"));
    let object: RawObject<'_> = serde_json::from_slice(body).map_err(invalid)?;
    let model_json = serde_json::to_string(model).unwrap_or_default();
    let base = body.as_ptr() as usize;
    let mut out = Vec::with_capacity(body.len() + model_json.len());
    let mut copied = 0usize;
    let mut client_model = None;
    for (key, value) in &object.0 {
        if key != "model" {
            continue;
        }
        if let Ok(name) = serde_json::from_str::<String>(value.get()) {
            client_model = Some(name);
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
        return Ok((out, None));
    }
    out.extend_from_slice(body.get(copied..).unwrap_or_default());
    Ok((out, client_model))
}

/// The JSON text of `name`, for splicing it into an answer.
fn model_json(name: &str) -> Vec<u8> {
    serde_json::to_vec(name).unwrap_or_default()
}

#[derive(Deserialize)]
struct StartProbe<'a> {
    #[serde(borrow, default)]
    message: Option<ModelProbe<'a>>,
}

#[derive(Deserialize)]
struct ModelProbe<'a> {
    #[serde(borrow, default)]
    model: Option<&'a RawValue>,
}

/// `buf` with `raw` (a `model` value borrowed from `buf`) replaced by `client_model`; `None`
/// when it already names it or cannot be located.
fn splice_model(buf: &[u8], raw: Option<&RawValue>, client_model: &str) -> Option<Vec<u8>> {
    let raw = raw?;
    if serde_json::from_str::<&str>(raw.get()).is_ok_and(|m| m == client_model) {
        return None;
    }
    super::bedrock_invoke::body::splice(buf, raw, &model_json(client_model))
}

/// A `message_start` event's JSON data, found inside `buf`, with `message.model` set to
/// `client_model`: the whole of `buf` comes back with only that value changed. `None` when
/// nothing needs to change.
pub(crate) fn message_start_with_model(buf: &[u8], data: &[u8], client_model: &str) -> Option<Vec<u8>> {
    let probe: StartProbe<'_> = serde_json::from_slice(data).ok()?;
    splice_model(buf, probe.message?.model, client_model)
}

/// How far the start of a stream has been rewritten.
enum Head {
    /// The `message_start` event is not complete yet.
    NeedMore,
    /// The held bytes with the model rewritten (or unchanged when it already matched).
    Done(Vec<u8>),
    /// Not a stream that starts with `message_start`: pass it on as it is.
    Unchanged,
}

/// Longest stream head held back while waiting for `message_start` (a few hundred bytes in
/// practice); past it the stream is passed on unchanged.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Finds the `message_start` event at the start of `head` (after any `ping`) and rewrites its
/// model; only that event is looked at, the rest of the stream is never parsed for this.
fn rewrite_head(head: &[u8], client_model: &str) -> Head {
    let mut pos = 0usize;
    loop {
        let Some(rest) = head.get(pos..) else { return Head::Unchanged };
        let lf = rest.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
        let crlf = rest.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4));
        let Some((len, sep)) = [lf, crlf].into_iter().flatten().min_by_key(|(i, _)| *i) else { return Head::NeedMore };
        let Some(event) = rest.get(..len) else { return Head::Unchanged };
        let mut name: Option<&[u8]> = None;
        let mut data: Option<&[u8]> = None;
        for line in event.split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Some(v) = line.strip_prefix(b"event:") {
                name = Some(v.trim_ascii());
            } else if let Some(v) = line.strip_prefix(b"data:") {
                data = data.or(Some(v));
            }
        }
        match (name, data) {
            (Some(b"ping"), _) => pos = pos.saturating_add(len).saturating_add(sep),
            (Some(b"message_start") | None, Some(data)) => {
                return match message_start_with_model(head, data, client_model) {
                    Some(out) => Head::Done(out),
                    None => Head::Unchanged,
                }
            }
            _ => return Head::Unchanged,
        }
    }
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

/// Leaves Anthropic's answer untouched and counts its tokens; when the gateway changed the
/// model, it splices the client's model back into the answer (nothing else).
#[derive(Debug, Default)]
pub struct UsageReader {
    mode: Option<BodyMode>,
    framer: SseFramer,
    counts: UsageCounts,
    response_model: Option<String>,
    /// The model the client asked for, when the answer must name it instead of the provider's.
    client_model: Option<String>,
    /// Stream bytes held back until `message_start` is complete (only while rewriting).
    head: Option<Vec<u8>>,
}

impl UsageReader {
    /// A reader whose answer names `client_model` (JSON `model`, `message_start.message.model`)
    /// instead of the provider's id: Claude Code keeps its thinking blocks for the next turn only
    /// when the answer names the model it asked for. The provider's id stays available through
    /// [`ResponseTranslator::response_model`]. `None` changes nothing.
    pub fn answering_as(client_model: Option<String>) -> Self {
        let head = client_model.as_ref().map(|_| Vec::new());
        UsageReader { client_model, head, ..Default::default() }
    }

    /// Counts the usage an Anthropic event's JSON `data` carries (`message_start`, `message_delta`).
    pub(crate) fn read_event(&mut self, data: &str) {
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
        let mut rewritten = None;
        if let Ok(probe) = serde_json::from_slice::<UsageProbe>(body) {
            if let Some(usage) = probe.usage {
                self.counts.update(&usage);
            }
            self.response_model = super::response_model_name(probe.model);
            if let Some(client_model) = &self.client_model {
                rewritten = splice_model(body, probe.model, client_model);
            }
        }
        // Anthropic's answers, errors included, already have the client's shape.
        Ok(rewritten)
    }

    fn translate_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Vec<u8> {
        // The framer is moved out for the call so that the callback can borrow the rest.
        let mut framer = std::mem::take(&mut self.framer);
        // An oversized event is dropped by the framer; it only costs a usage reading.
        let _ = framer.push_each(chunk, |_, data| self.read_event(data));
        if end_of_stream {
            framer.finish_each(|_, data| self.read_event(data));
        }
        self.framer = framer;
        let (Some(head), Some(client_model)) = (self.head.as_mut(), self.client_model.as_deref()) else {
            return chunk.to_vec();
        };
        head.extend_from_slice(chunk);
        match rewrite_head(head, client_model) {
            Head::NeedMore if !end_of_stream && head.len() <= MAX_HEAD_BYTES => Vec::new(),
            Head::Done(out) => {
                self.head = None;
                out
            }
            Head::NeedMore | Head::Unchanged => self.head.take().unwrap_or_default(),
        }
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
    fn answers_name_the_model_the_client_asked_for() {
        let body = r#"{"model":"alias","max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#;
        // JSON: only the model value changes; the provider's id stays reportable.
        let mut t = prep(body, ProviderKind::Anthropic).unwrap().translator;
        t.on_headers(200, Some("application/json"));
        let answer = r#"{"id":"m","type":"message","model":"claude-real-2025" ,"content":[{"type":"thinking","thinking":"t","signature":"s"}],"usage":{"input_tokens":4,"output_tokens":2}}"#;
        let out = t.translate_body(answer.as_bytes()).unwrap().unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), answer.replace("\"claude-real-2025\"", "\"alias\""));
        assert_eq!(t.response_model(), Some("claude-real-2025"));
        assert_eq!(t.usage().output, 2);
        // The model the client asked for is the provider's: the answer is not touched.
        let same = r#"{"model":"claude-real","max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#;
        let mut t = prep(same, ProviderKind::Anthropic).unwrap().translator;
        t.on_headers(200, Some("application/json"));
        assert_eq!(t.translate_body(answer.as_bytes()).unwrap(), None);
        // Streams: only message_start changes, whatever the chunking, a leading ping included.
        let stream = format!("event: ping\ndata: {{\"type\": \"ping\"}}\n\n{STREAM}");
        let expected = stream.replacen("\"model\":\"c\"", "\"model\":\"alias\"", 1);
        for step in [1, 2, 5, 33, stream.len()] {
            let mut t = prep(body, ProviderKind::Anthropic).unwrap().translator;
            assert_eq!(t.on_headers(200, Some("text/event-stream")), BodyMode::Streaming);
            let pieces: Vec<&[u8]> = stream.as_bytes().chunks(step).collect();
            let mut out = Vec::new();
            for (i, piece) in pieces.iter().enumerate() {
                out.extend(t.translate_chunk(piece, i + 1 == pieces.len()));
            }
            assert_eq!(String::from_utf8(out).unwrap(), expected, "step {step}");
            assert_eq!(t.response_model(), Some("c"));
            assert_eq!(t.usage().output, 7);
        }
        // A stream that does not start with message_start passes as it is.
        let odd =
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"o\"}}\n\n";
        let mut t = prep(body, ProviderKind::Anthropic).unwrap().translator;
        t.on_headers(200, Some("text/event-stream"));
        assert_eq!(t.translate_chunk(odd.as_bytes(), false), odd.as_bytes());
        assert_eq!(t.translate_chunk(b"more", true), b"more");
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
