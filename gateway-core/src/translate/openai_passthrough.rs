//! OpenAI Chat Completions clients served by an OpenAI-compatible provider: every field the client
//! sent is kept, byte for byte, except the model name; usage is always requested so it can be
//! counted, and the extra usage chunk is dropped again when the client did not ask for it.
//!
//! Azure OpenAI uses the same translation with Azure's path (see [`super::azure`]) and its error
//! bodies normalised to OpenAI's shape; OpenAI's own errors are returned byte for byte.

use std::borrow::Cow;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{BodyMode, PreparedRequest, RequestFacts, ResponseTranslator, Target};
use crate::config::ProviderKind;
use crate::error::{openai_error_body, ErrorKind, GatewayError};
use crate::sse::{write_event, SseFramer};
use crate::usage::TokenUsage;

/// The upstream path of Chat Completions on OpenAI-compatible providers.
pub const CHAT_COMPLETIONS_PATH: &str = "/v1/chat/completions";

/// Validates what every provider needs (a JSON object, a model, a non-empty `messages` array)
/// and returns the routing facts.
pub fn inspect(body: &[u8]) -> Result<RequestFacts, GatewayError> {
    inspect_members(body).map(|(facts, _)| facts)
}

/// [`inspect`], keeping the body's top-level members for [`prepare_members`]: the passthrough
/// then parses the body once instead of twice (callgrind: a third of its request work).
pub(crate) fn inspect_members(body: &[u8]) -> Result<(RequestFacts, RawObject<'_>), GatewayError> {
    // serde would also accept a JSON array for a struct; a request is always an object.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(GatewayError::invalid("The request body must be a JSON object."));
    }
    // Fields the gateway passes on as raw JSON are never parsed here, so serde_json's recursion
    // limit would not stop them; a provider's parser should not have to face them either.
    if nesting_exceeds(body, MAX_NESTING) {
        return Err(GatewayError::invalid(format!(
            "We could not parse the JSON body of your request: nesting deeper than {MAX_NESTING} levels (recursion limit exceeded)."
        )));
    }
    let members: RawObject<'_> = serde_json::from_slice(body).map_err(unparsable)?;
    let (mut model, mut messages, mut stream) = (None, None, None);
    for (key, value) in &members.0 {
        let slot = match key.as_ref() {
            "model" => &mut model,
            "messages" => &mut messages,
            "stream" => &mut stream,
            _ => continue,
        };
        // A typed read of these three would refuse a second copy too.
        if slot.replace(*value).is_some() {
            return Err(GatewayError::invalid(format!(
                "We could not parse the JSON body of your request: duplicate field `{key}`"
            )));
        }
    }
    let model = match given(model) {
        Some(raw) if raw.starts_with('"') => serde_json::from_str::<String>(raw).map_err(unparsable)?,
        Some(_) => return Err(GatewayError::invalid("'model' must be a string").with_param("model")),
        None => String::new(),
    };
    if model.is_empty() {
        return Err(GatewayError::invalid("you must provide a model parameter").with_param("model"));
    }
    match given(messages).map(str::trim_start) {
        None => return Err(GatewayError::invalid("Missing required parameter: 'messages'.").with_param("messages")),
        Some(m) if !m.starts_with('[') => {
            return Err(GatewayError::invalid("'messages' must be an array").with_param("messages"))
        }
        Some(m) if m.trim_start_matches('[').trim_start().starts_with(']') => {
            return Err(GatewayError::invalid("'messages' must contain at least one message").with_param("messages"))
        }
        Some(_) => {}
    }
    let stream = match given(stream) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(GatewayError::invalid("'stream' must be a boolean").with_param("stream")),
    };
    Ok((RequestFacts { model, stream }, members))
}

/// A member's raw JSON; `null` reads as absent, as an optional field does.
fn given(value: Option<&RawValue>) -> Option<&str> {
    value.map(RawValue::get).filter(|raw| *raw != "null")
}

/// The error for a body serde_json cannot read.
fn unparsable(e: serde_json::Error) -> GatewayError {
    GatewayError::invalid(format!("We could not parse the JSON body of your request: {e}"))
}

/// Whether `body` nests deeper than [`MAX_NESTING`] (see [`inspect`]).
pub(crate) fn nesting_exceeds_limit(body: &[u8]) -> bool {
    nesting_exceeds(body, MAX_NESTING)
}

/// Deepest array/object nesting accepted in a request: serde_json's own default limit, so every
/// body the gateway forwards can be read by a parser with that default.
pub const MAX_NESTING: usize = 128;

/// Whether `[`/`{` nest deeper than `limit` outside strings. One pass, no allocation; the body
/// need not be valid JSON (the real parser reports other errors).
///
/// Request bodies are mostly string content (prompts, tool results), so strings are skipped with
/// `memchr2` to the next quote or backslash instead of byte by byte: a byte loop cost ~14
/// instructions per byte natively (callgrind), most of the passthrough's request work.
fn nesting_exceeds(body: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut i = 0usize;
    while let Some(&b) = body.get(i) {
        i += 1;
        match b {
            b'"' => loop {
                let Some(rest) = body.get(i..) else { return false };
                match memchr::memchr2(b'"', b'\\', rest) {
                    // An unterminated string: nothing after it is structure.
                    None => return false,
                    Some(at) => {
                        let found = rest[at];
                        // A backslash escapes the next byte, whatever it is.
                        i += at + if found == b'\\' { 2 } else { 1 };
                        if found == b'"' {
                            break;
                        }
                    }
                }
            },
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Top-level members of a JSON object in their original order, values left as raw JSON text,
/// names borrowed from the body unless they had escapes.
pub(crate) struct RawObject<'a>(pub(crate) Vec<(Cow<'a, str>, &'a RawValue)>);

/// A member name as [`RawObject`] keeps it.
struct MemberName<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for MemberName<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = MemberName<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, name: &'de str) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Borrowed(name)))
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Owned(name.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, name: String) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Owned(name)))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

impl<'de> Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some((name, value)) = map.next_entry::<MemberName<'de>, &'de RawValue>()? {
                    members.push((name.0, value));
                }
                Ok(RawObject(members))
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// Rewrites `model`, forces `stream_options.include_usage` on streams, keeps everything else.
pub fn prepare(body: &[u8], target: &Target<'_>) -> Result<PreparedRequest, GatewayError> {
    prepare_members(body, target, None)
}

/// [`prepare`] with the members [`inspect_members`] read from the same body, if at hand.
pub(crate) fn prepare_members(
    body: &[u8],
    target: &Target<'_>,
    members: Option<RawObject<'_>>,
) -> Result<PreparedRequest, GatewayError> {
    let object = match members {
        Some(members) => members,
        None => serde_json::from_slice(body).map_err(unparsable)?,
    };
    let mut stream = false;
    let mut client_wants_usage = false;
    for (key, value) in &object.0 {
        match key.as_ref() {
            "stream" => stream = value.get() == "true",
            "stream_options" => {
                client_wants_usage = serde_json::from_slice::<StreamOptions>(value.get().as_bytes())
                    .ok()
                    .and_then(|o| o.include_usage)
                    .unwrap_or(false)
            }
            _ => {}
        }
    }

    let mut out = Vec::with_capacity(body.len() + 64);
    out.push(b'{');
    let mut first = true;
    let mut push_member = |out: &mut Vec<u8>, key: &Cow<'_, str>, raw: &str| {
        if !first {
            out.push(b',');
        }
        first = false;
        match key {
            // Borrowed: the body spelled it without escapes, so it needs none (serde_json escapes
            // only quotes, backslashes and control characters, which JSON cannot hold raw).
            Cow::Borrowed(name) => {
                out.push(b'"');
                out.extend_from_slice(name.as_bytes());
                out.push(b'"');
            }
            // Decoded by a JSON parser; re-encoding it cannot fail.
            Cow::Owned(name) => out.extend_from_slice(serde_json::to_string(name).unwrap_or_default().as_bytes()),
        }
        out.push(b':');
        out.extend_from_slice(raw.as_bytes());
    };
    let model_json = serde_json::to_string(target.model).unwrap_or_default();
    let mut wrote_model = false;
    let mut wrote_stream_options = false;
    for (key, value) in &object.0 {
        match key.as_ref() {
            "model" => {
                push_member(&mut out, key, &model_json);
                wrote_model = true;
            }
            "stream_options" if stream => {
                push_member(&mut out, key, &stream_options_with_usage(value));
                wrote_stream_options = true;
            }
            _ => push_member(&mut out, key, value.get()),
        }
    }
    if !wrote_model {
        push_member(&mut out, &Cow::Borrowed("model"), &model_json);
    }
    if stream && !wrote_stream_options {
        push_member(&mut out, &Cow::Borrowed("stream_options"), r#"{"include_usage":true}"#);
    }
    out.push(b'}');

    let azure = target.provider.kind == ProviderKind::AzureOpenai;
    let path = if azure {
        super::azure::chat_completions_path(target.provider, target.model)?
    } else {
        super::provider_path(target.provider, CHAT_COMPLETIONS_PATH)
    };
    let mut translator = PassthroughResponse::new(client_wants_usage);
    translator.normalize_errors = azure;
    Ok(PreparedRequest {
        path,
        body: Some(out),
        headers: vec![("content-type", "application/json".to_owned())],
        translator: Box::new(translator),
        dropped: Vec::new(),
    })
}

/// The client's `stream_options` with `include_usage` forced to true, other options kept.
fn stream_options_with_usage(raw: &RawValue) -> String {
    match serde_json::from_slice::<RawObject<'_>>(raw.get().as_bytes()) {
        Ok(object) => {
            let mut s = String::from("{");
            for (key, value) in object.0.iter().filter(|(k, _)| k != "include_usage") {
                s.push_str(&serde_json::to_string(key).unwrap_or_default());
                s.push(':');
                s.push_str(value.get());
                s.push(',');
            }
            s.push_str(r#""include_usage":true}"#);
            s
        }
        Err(_) => r#"{"include_usage":true}"#.to_owned(),
    }
}

/// OpenAI's usage object, the parts the gateway counts.
#[derive(Deserialize, Default)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize, Default)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl From<WireUsage> for TokenUsage {
    fn from(u: WireUsage) -> Self {
        TokenUsage {
            input: u.prompt_tokens,
            output: u.completion_tokens,
            cache_read: u.prompt_tokens_details.and_then(|d| d.cached_tokens).unwrap_or(0),
            cache_creation: 0,
            reasoning: u.completion_tokens_details.and_then(|d| d.reasoning_tokens).unwrap_or(0),
        }
    }
}

#[derive(Deserialize)]
struct UsageCarrier<'a> {
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(borrow, default)]
    choices: Option<&'a RawValue>,
    #[serde(borrow, default)]
    model: Option<&'a RawValue>,
}

/// A choice, read only far enough to see whether it carries a finish reason.
#[derive(Deserialize)]
struct FinishProbe {
    #[serde(default)]
    finish_reason: Option<serde::de::IgnoredAny>,
}

/// An error body, read only far enough to tell OpenAI's shape from anything else.
#[derive(Deserialize)]
struct ErrorProbe {
    #[serde(default)]
    error: Option<ErrorObjectProbe>,
    /// Some OpenAI-compatible servers put the message at the top level.
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct ErrorObjectProbe {
    #[allow(dead_code)]
    message: serde::de::IgnoredAny,
}

/// Message of the error event sent when a stream ends without `[DONE]` or a finish reason.
const INCOMPLETE_STREAM: &str = "The provider's stream ended before the answer was complete.";

/// Reads usage from OpenAI responses and hides the usage chunk the gateway asked for.
struct PassthroughResponse {
    client_wants_usage: bool,
    /// Rewrite non-2xx bodies into OpenAI's error shape (Azure's carry extra members).
    normalize_errors: bool,
    status: u16,
    /// The provider labelled its answer JSON (or did not label it).
    claims_json: bool,
    framer: SseFramer,
    usage: TokenUsage,
    /// `[DONE]` went through.
    done: bool,
    /// A choice carried a finish reason: the answer is whole even if `[DONE]` never comes.
    finished: bool,
    /// The first `model` the provider reported.
    response_model: Option<String>,
}

impl PassthroughResponse {
    fn new(client_wants_usage: bool) -> Self {
        PassthroughResponse {
            client_wants_usage,
            normalize_errors: false,
            status: 200,
            claims_json: true,
            framer: SseFramer::default(),
            usage: TokenUsage::default(),
            done: false,
            finished: false,
            response_model: None,
        }
    }

    /// Whether `event` should reach the client; records usage and completion on the way.
    fn keep(&mut self, data: &str) -> bool {
        if data == "[DONE]" {
            self.done = true;
            return true;
        }
        // What the SDKs could not parse either is dropped; a stream that ends without a finish
        // reason then gets the incomplete_stream error instead of a client-side decode error.
        let Ok(chunk) = serde_json::from_slice::<UsageCarrier<'_>>(data.as_bytes()) else {
            return serde_json::from_slice::<serde::de::IgnoredAny>(data.as_bytes()).is_ok();
        };
        if self.response_model.is_none() {
            self.response_model = super::response_model_name(chunk.model);
        }
        if !self.finished {
            if let Some(choices) = chunk.choices {
                self.finished = serde_json::from_slice::<Vec<FinishProbe>>(choices.get().as_bytes())
                    .map(|c| c.iter().any(|choice| choice.finish_reason.is_some()))
                    .unwrap_or(false);
            }
        }
        if let Some(usage) = chunk.usage {
            self.usage = usage.into();
            let usage_only = chunk.choices.map(|c| c.get().trim() == "[]").unwrap_or(true);
            return self.client_wants_usage || !usage_only;
        }
        true
    }
}

impl ResponseTranslator for PassthroughResponse {
    fn on_headers(&mut self, status: u16, content_type: Option<&str>) -> BodyMode {
        self.status = status;
        self.claims_json = content_type.is_none_or(|c| c.to_ascii_lowercase().contains("json"));
        let is_stream = content_type.map(|c| c.starts_with("text/event-stream")).unwrap_or(false);
        if (200..300).contains(&status) && is_stream {
            BodyMode::Streaming
        } else {
            BodyMode::Buffered
        }
    }

    fn content_type(&self) -> Option<&'static str> {
        // Error bodies always leave as JSON (non-JSON ones are rewritten below).
        (!(200..300).contains(&self.status)).then_some("application/json")
    }

    fn translate_body(&mut self, body: &[u8]) -> Result<Option<Vec<u8>>, GatewayError> {
        if self.normalize_errors && !(200..300).contains(&self.status) {
            return Ok(Some(super::azure::translate_error(self.status, body)));
        }
        if !(200..300).contains(&self.status) {
            return Ok(error_body(self.status, body));
        }
        match serde_json::from_slice::<UsageCarrier<'_>>(body) {
            Ok(carrier) => {
                if let Some(usage) = carrier.usage {
                    self.usage = usage.into();
                }
                self.response_model = super::response_model_name(carrier.model);
            }
            // Valid JSON with odd usage types is still the provider's answer to pass on, and so is
            // a body the provider itself labelled as something other than JSON.
            Err(_) if !self.claims_json || serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() => {}
            Err(_) => {
                return Err(GatewayError::new(
                    ErrorKind::BadGateway,
                    "The provider returned a response the gateway could not parse.",
                )
                .with_code("bad_response"))
            }
        }
        Ok(None)
    }

    fn translate_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(chunk.len() + 16);
        // The framer is moved out for the call so that the callback can borrow the rest.
        let mut framer = std::mem::take(&mut self.framer);
        let mut on_event = |event: Option<&str>, data: &str| {
            if self.keep(data) {
                write_event(&mut out, event, data);
            }
        };
        // An oversized event is dropped by the framer; the stream goes on without it.
        let _ = framer.push_each(chunk, &mut on_event);
        if end_of_stream {
            framer.finish_each(&mut on_event);
        }
        self.framer = framer;
        if end_of_stream && !self.done {
            // Closed without [DONE]: a whole answer is closed normally, a cut one is reported.
            if !self.finished {
                let error = openai_error_body(INCOMPLETE_STREAM, "server_error", None, Some("incomplete_stream"));
                write_event(&mut out, None, &String::from_utf8_lossy(&error));
            }
            write_event(&mut out, None, "[DONE]");
            self.done = true;
        }
        out
    }

    fn usage(&self) -> TokenUsage {
        self.usage
    }

    fn response_model(&self) -> Option<&str> {
        self.response_model.as_deref()
    }
}

/// OpenAI's own error bodies pass byte for byte (`None`); anything else (a proxy's HTML page,
/// a bare message) becomes an OpenAI error body. The caller keeps the provider's status.
fn error_body(status: u16, body: &[u8]) -> Option<Vec<u8>> {
    let kind = super::openai_to_anthropic::response::openai_error_type("", status);
    match serde_json::from_slice::<ErrorProbe>(body) {
        Ok(ErrorProbe { error: Some(_), .. }) => None,
        Ok(ErrorProbe { message: Some(message), .. }) => Some(openai_error_body(&message, kind, None, None)),
        _ => Some(openai_error_body(
            &format!("The provider returned HTTP {status} with a body the gateway could not read."),
            kind,
            None,
            None,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Defaults, ProviderConfig, ProviderKind};

    fn provider() -> ProviderConfig {
        ProviderConfig {
            name: "o".into(),
            kind: ProviderKind::Openai,
            cluster: "c".into(),
            credential: None,
            path_prefix: None,
            settings: Default::default(),
        }
    }

    fn prep(body: &str) -> PreparedRequest {
        let p = provider();
        let d = Defaults::default();
        prepare(body.as_bytes(), &Target { provider: &p, model: "gpt-real", defaults: &d, created_unix: 0 }).unwrap()
    }

    /// Prepares `body` from the members `inspect_members` kept, the way a direct route does.
    fn prep_once(body: &str) -> PreparedRequest {
        let p = provider();
        let d = Defaults::default();
        let (_, members) = inspect_members(body.as_bytes()).unwrap();
        let target = Target { provider: &p, model: "gpt-real", defaults: &d, created_unix: 0 };
        prepare_members(body.as_bytes(), &target, Some(members)).unwrap()
    }

    #[test]
    fn member_names_leave_spelled_as_serde_json_writes_them() {
        for name in ["plain", "é ü 中", "a\"b", "back\\slash", "tab\tnew\nline", "\u{1}\u{1f}", "slash/", "\u{7f}"] {
            let encoded = serde_json::to_string(name).unwrap();
            // Once as serde_json spells it (borrowed when it needs no escapes), once with every
            // character escaped (always decoded).
            let escaped: String = name.chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
            for spelled in [encoded.clone(), format!("\"{escaped}\"")] {
                let body = format!(r#"{{"model":"alias",{spelled}:1,"messages":[{{"role":"user","content":"hi"}}]}}"#);
                let want =
                    format!(r#"{{"model":"gpt-real",{encoded}:1,"messages":[{{"role":"user","content":"hi"}}]}}"#);
                assert_eq!(String::from_utf8(prep(&body).body.unwrap()).unwrap(), want, "{spelled}");
                assert_eq!(String::from_utf8(prep_once(&body).body.unwrap()).unwrap(), want, "{spelled}");
            }
        }
    }

    #[test]
    fn one_parse_prepares_what_two_parses_prepare() {
        for body in [
            r#"{"model":"alias","messages":[{"role":"user","content":"hi"}]}"#,
            r#" { "messages" : [ {"role":"user","content":"x \" y"} ] , "model" : "alias" , "stream" : true } "#,
            r#"{"model":"alias","messages":[1],"stream":true,"stream_options":{"include_usage":false,"x":1}}"#,
            r#"{"model":"alias","messages":[1],"stream":false,"stream_options":null,"n":2,"n":3}"#,
            r#"{"messages":[1],"model":"al\u0069as","tools":[{"type":"function","function":{"name":"f"}}]}"#,
        ] {
            let (once, twice) = (prep_once(body), prep(body));
            assert_eq!(once.body, twice.body, "{body}");
            assert_eq!(once.path, twice.path, "{body}");
        }
    }

    #[test]
    fn only_model_changes_and_unknown_fields_survive() {
        let body = r#"{"model":"alias","messages":[{"role":"user","content":"hi \u00e9"}],"x_custom":{"a":[1,2]},"temperature":0.5}"#;
        let out = String::from_utf8(prep(body).body.unwrap()).unwrap();
        assert_eq!(
            out,
            r#"{"model":"gpt-real","messages":[{"role":"user","content":"hi \u00e9"}],"x_custom":{"a":[1,2]},"temperature":0.5}"#
        );
    }

    #[test]
    fn streams_always_request_usage_and_keep_other_options() {
        let body = r#"{"model":"a","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_obfuscation":false}}"#;
        let out: serde_json::Value = serde_json::from_slice(&prep(body).body.unwrap()).unwrap();
        assert_eq!(out["stream_options"], serde_json::json!({"include_obfuscation": false, "include_usage": true}));
        let body = r#"{"model":"a","messages":[{"role":"user","content":"x"}],"stream":true}"#;
        let out: serde_json::Value = serde_json::from_slice(&prep(body).body.unwrap()).unwrap();
        assert_eq!(out["stream_options"]["include_usage"], true);
    }

    const STREAM: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":8,\"completion_tokens\":2,\"prompt_tokens_details\":{\"cached_tokens\":3}}}\n\ndata: [DONE]\n\n";

    #[test]
    fn injected_usage_chunk_is_counted_then_dropped() {
        let mut t = prep(r#"{"model":"a","messages":[{"role":"user","content":"x"}],"stream":true}"#).translator;
        assert_eq!(t.on_headers(200, Some("text/event-stream")), BodyMode::Streaming);
        let out = String::from_utf8(t.translate_chunk(STREAM.as_bytes(), true)).unwrap();
        assert!(!out.contains("prompt_tokens"), "{out}");
        assert!(out.contains("\"Hi\"") && out.ends_with("data: [DONE]\n\n"));
        assert_eq!(t.usage(), TokenUsage { input: 8, output: 2, cache_read: 3, ..Default::default() });
    }

    #[test]
    fn the_reported_model_is_read_without_risking_the_usage() {
        let json = prep(r#"{"model":"a","messages":[{"role":"user","content":"x"}]}"#);
        let mut t = json.translator;
        t.on_headers(200, Some("application/json"));
        t.translate_body(
            br#"{"model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
        )
        .unwrap();
        assert_eq!((t.response_model(), t.usage().input), (Some("gpt-4o-mini-2024-07-18"), 3));
        // A model that is not a string (or absurdly long) is not reported, and usage still counts.
        let mut odd = prep(r#"{"model":"a","messages":[{"role":"user","content":"x"}]}"#).translator;
        odd.on_headers(200, Some("application/json"));
        odd.translate_body(br#"{"model":42,"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1}}"#).unwrap();
        assert_eq!((odd.response_model(), odd.usage().input), (None, 5));
        let long = format!(r#"{{"model":"{}","choices":[]}}"#, "m".repeat(300));
        let mut t = prep(r#"{"model":"a","messages":[{"role":"user","content":"x"}]}"#).translator;
        t.on_headers(200, Some("application/json"));
        t.translate_body(long.as_bytes()).unwrap();
        assert_eq!(t.response_model(), None);
        // Streams: the first chunk naming a model.
        let mut s = prep(r#"{"model":"a","messages":[{"role":"user","content":"x"}],"stream":true}"#).translator;
        s.on_headers(200, Some("text/event-stream"));
        s.translate_chunk(b"data: {\"model\":\"gpt-x\",\"choices\":[]}\n\ndata: [DONE]\n\n", true);
        assert_eq!(s.response_model(), Some("gpt-x"));
    }

    #[test]
    fn usage_chunk_kept_when_client_asked() {
        let mut t = prep(r#"{"model":"a","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":true}}"#).translator;
        t.on_headers(200, Some("text/event-stream"));
        let out = String::from_utf8(t.translate_chunk(STREAM.as_bytes(), true)).unwrap();
        assert!(out.contains("prompt_tokens"));
    }

    fn responder(stream: bool) -> Box<dyn ResponseTranslator> {
        let body = if stream {
            r#"{"model":"a","messages":[{"role":"user","content":"x"}],"stream":true}"#
        } else {
            r#"{"model":"a","messages":[{"role":"user","content":"x"}]}"#
        };
        prep(body).translator
    }

    #[test]
    fn stream_cut_before_a_finish_reason_ends_with_an_error_then_done() {
        let mut t = responder(true);
        t.on_headers(200, Some("text/event-stream"));
        let out = String::from_utf8(t.translate_chunk(b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\ndata: {not json\n\n", true)).unwrap();
        let data: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
        assert_eq!(data.len(), 3, "{out}");
        assert!(data[0].contains("\"Hi\""));
        let error: serde_json::Value = serde_json::from_slice((data[1]).as_bytes()).unwrap();
        assert_eq!(error["error"]["code"], "incomplete_stream");
        assert_eq!(data[2], "[DONE]");
    }

    #[test]
    fn stream_with_a_finish_reason_but_no_done_is_closed_normally() {
        let mut t = responder(true);
        t.on_headers(200, Some("text/event-stream"));
        let out = String::from_utf8(
            t.translate_chunk(b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n", true),
        )
        .unwrap();
        assert!(!out.contains("error"), "{out}");
        assert!(out.ends_with("data: [DONE]\n\n"), "{out}");
        // A complete stream is left exactly as it was.
        let mut t = responder(true);
        t.on_headers(200, Some("text/event-stream"));
        let out = String::from_utf8(t.translate_chunk(STREAM.as_bytes(), true)).unwrap();
        assert_eq!(out.matches("[DONE]").count(), 1);
    }

    #[test]
    fn unreadable_success_is_502_and_non_openai_errors_are_wrapped() {
        let mut t = responder(false);
        t.on_headers(200, Some("application/json"));
        assert_eq!(t.translate_body(b"{\"id\":\"x\",\"choices\":[").unwrap_err().status(), 502);
        let mut t = responder(false);
        t.on_headers(200, Some("application/json"));
        assert_eq!(t.translate_body(br#"{"usage":{"prompt_tokens":null}}"#).unwrap(), None);
        let mut t = responder(false);
        t.on_headers(200, Some("text/plain"));
        assert_eq!(t.translate_body(b"plain words").unwrap(), None, "labelled non-JSON passes unchanged");

        let openai =
            br#"{"error":{"message":"slow down","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        let mut t = responder(false);
        t.on_headers(429, Some("application/json"));
        assert_eq!(t.translate_body(openai).unwrap(), None, "OpenAI errors pass byte for byte");
        assert_eq!(t.content_type(), Some("application/json"));
        for (status, body, message, kind) in [
            (502, &b"<html>Bad Gateway</html>"[..], "HTTP 502", "server_error"),
            (400, &br#"{"object":"error","message":"bad input"}"#[..], "bad input", "invalid_request_error"),
        ] {
            let mut t = responder(false);
            t.on_headers(status, Some("text/html"));
            let out: serde_json::Value = serde_json::from_slice(&t.translate_body(body).unwrap().unwrap()).unwrap();
            assert!(out["error"]["message"].as_str().unwrap().contains(message), "{out}");
            assert_eq!(out["error"]["type"], kind);
        }
    }

    #[test]
    fn nesting_is_limited_outside_strings_only() {
        let deep = |n: usize| {
            format!(
                r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"x":{}{}}}"#,
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        // The object itself is one level: 127 more fit, 128 more do not.
        assert!(inspect(deep(MAX_NESTING - 1).as_bytes()).is_ok());
        let err = inspect(deep(MAX_NESTING).as_bytes()).unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.message.contains("recursion limit"));
        let in_string = format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"{}\"{}"}}]}}"#,
            "[".repeat(5000),
            "{".repeat(5000)
        );
        assert!(inspect(in_string.as_bytes()).is_ok());
        assert!(nesting_exceeds(&b"[".repeat(10_000), 128));
    }

    /// The byte-by-byte scan `nesting_exceeds` replaced: the reference it must agree with.
    fn nesting_exceeds_bytewise(body: &[u8], limit: usize) -> bool {
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        for &b in body {
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > limit {
                        return true;
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        false
    }

    #[test]
    fn nesting_scan_agrees_with_the_bytewise_scan_on_edge_cases() {
        for body in [
            &b""[..],
            b"\"",
            b"\"\\",
            b"\"\\\"",
            b"\"\\\\\"[[",
            b"[\"a\\\"[\"[",
            b"[[\"]\"]]",
            b"{\"a\":\"\\\\\"}{{",
            b"\\[[[",
        ] {
            for limit in 0..4 {
                assert_eq!(nesting_exceeds(body, limit), nesting_exceeds_bytewise(body, limit), "{body:?} {limit}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn nesting_scan_agrees_with_the_bytewise_scan(
            body in proptest::collection::vec(proptest::sample::select(b"[]{}\"\\ax".to_vec()), 0..200),
            limit in 0usize..6,
        ) {
            proptest::prop_assert_eq!(nesting_exceeds(&body, limit), nesting_exceeds_bytewise(&body, limit));
        }
    }

    #[test]
    fn inspect_errors() {
        for (body, param) in [
            ("not json", None),
            (r#"{"messages":[{"role":"user","content":"x"}]}"#, Some("model")),
            (r#"{"model":"m"}"#, Some("messages")),
            (r#"{"model":"m","messages":[]}"#, Some("messages")),
            (r#"{"model":"m","messages":{}}"#, Some("messages")),
            (r#"{"model":7,"messages":[1]}"#, Some("model")),
            (r#"{"model":"m","messages":[1],"stream":"yes"}"#, Some("stream")),
            ("[1,2]", None),
            (r#"{"model":"m","model":"n","messages":[1]}"#, None),
            (r#"{"model":"m","messages":[1],"messages":[2]}"#, None),
            (r#"{"model":null,"messages":[1]}"#, Some("model")),
            (r#"{"model":"m","messages":null}"#, Some("messages")),
            (r#"{"model":"m","messages":"[1]"}"#, Some("messages")),
            (r#"{"model":["m"],"messages":[1]}"#, Some("model")),
            (r#"{"model":"m","messages":[1],"stream":1}"#, Some("stream")),
        ] {
            let err = inspect(body.as_bytes()).unwrap_err();
            assert_eq!(err.status(), 400, "{body}");
            assert_eq!(err.param.as_deref(), param, "{body}");
        }
        let facts = inspect(br#"{"model":"m","messages":[{}],"stream":true}"#).unwrap();
        assert_eq!(facts, RequestFacts { model: "m".into(), stream: true });
        let facts = inspect(br#"{"model":"m\u00e9","messages":[{}],"stream":null}"#).unwrap();
        assert_eq!(facts, RequestFacts { model: "mé".into(), stream: false });
    }
}
