//! InvokeModelWithResponseStream (AWS event stream) → Anthropic SSE.
//!
//! | Bedrock message | Anthropic output |
//! |---|---|
//! | event `chunk`, payload `{"bytes": "<base64>"}` (and padding `p`) | the decoded Anthropic event as `event: <type>` / `data: <json>`; in `message_start`, `message.model` becomes the client's model; usage read from `message_start` and `message_delta` |
//! | other event types | nothing |
//! | `:message-type: exception` (`throttlingException`, `validationException`, `modelStreamErrorException`, ...) or `error` | `event: error` with Anthropic's error shape and type, then the stream ends |
//! | a bad CRC, an impossible length, a chunk that is not base64 JSON | `event: error` (`api_error`), then the end |
//!
//! A stream that ends before `message_stop` (or an Anthropic `error` event) was cut off: the
//! client gets an `error` event rather than an answer that looks complete. Input after the end is
//! ignored.

use std::borrow::Cow;

use serde::Deserialize;

use super::super::anthropic_passthrough::{message_start_with_model, UsageReader};
use super::base64;
use crate::aws::eventstream::{EventStreamDecoder, Message};
use crate::error::anthropic_error_body;
use crate::translate::ResponseTranslator;
use crate::usage::TokenUsage;

/// Per-response streaming state.
#[derive(Debug)]
pub struct InvokeStream {
    decoder: EventStreamDecoder,
    /// Reused message buffer, so steady-state chunks allocate only their output.
    messages: Vec<Message>,
    /// The model `message_start` names, `None` to keep Bedrock's.
    client_model: Option<String>,
    /// Usage and the provider's model, read from the decoded events.
    reader: UsageReader,
    /// `message_stop` (or an Anthropic `error` event) was seen: the answer is complete.
    complete: bool,
    done: bool,
}

#[derive(Deserialize)]
struct ChunkPayload<'a> {
    #[serde(borrow)]
    bytes: Cow<'a, str>,
}

#[derive(Deserialize)]
struct TypeOnly<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ExceptionPayload {
    #[serde(default)]
    message: Option<String>,
    #[serde(rename = "Message", default)]
    message_upper: Option<String>,
}

impl InvokeStream {
    /// A decoder whose `message_start` names `client_model` (when `Some`).
    pub fn new(client_model: Option<String>) -> Self {
        InvokeStream {
            decoder: EventStreamDecoder::default(),
            messages: Vec::new(),
            client_model,
            reader: UsageReader::default(),
            complete: false,
            done: false,
        }
    }

    /// Translates the messages `chunk` completes; at the end of the stream, also closes it.
    pub fn push(&mut self, chunk: &[u8], end_of_stream: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(chunk.len() + 64);
        if self.done {
            return out;
        }
        let mut messages = std::mem::take(&mut self.messages);
        let mut result = self.decoder.push(chunk, &mut messages);
        if end_of_stream && result.is_ok() {
            result = self.decoder.finish();
        }
        for message in messages.drain(..) {
            self.on_message(&message, &mut out);
        }
        self.messages = messages;
        if let Err(e) = result {
            if !self.done {
                self.fail(&mut out, "api_error", &format!("The provider's event stream could not be decoded: {e}."));
            }
        }
        if end_of_stream && !self.done {
            if self.complete {
                self.done = true;
            } else {
                self.fail(&mut out, "api_error", "The provider's stream ended before the answer was complete.");
            }
        }
        out
    }

    /// Tokens known so far.
    pub fn usage(&self) -> TokenUsage {
        self.reader.usage()
    }

    /// The model Bedrock's `message_start` named.
    pub fn response_model(&self) -> Option<&str> {
        self.reader.response_model()
    }

    fn on_message(&mut self, message: &Message, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        match message.header_str(":message-type") {
            Some("event") | None => {}
            Some("exception") => {
                let kind = message.header_str(":exception-type").unwrap_or("");
                let parsed = serde_json::from_slice::<ExceptionPayload>(&message.payload).ok();
                let text = parsed
                    .and_then(|p| p.message.or(p.message_upper))
                    .unwrap_or_else(|| "The provider reported an error in the stream.".to_owned());
                self.fail(out, super::anthropic_error_type(kind, 500), &text);
                return;
            }
            Some(_) => {
                let code = message.header_str(":error-code").unwrap_or("");
                let text =
                    message.header_str(":error-message").unwrap_or("The provider reported an error in the stream.");
                self.fail(out, super::anthropic_error_type(code, 500), text);
                return;
            }
        }
        if message.header_str(":event-type").is_some_and(|t| t != "chunk") {
            return;
        }
        let decoded = serde_json::from_slice::<ChunkPayload<'_>>(&message.payload)
            .ok()
            .and_then(|p| base64::decode(p.bytes.as_bytes()));
        let Some(json) = decoded else {
            self.fail(out, "api_error", "The provider sent a stream event the gateway could not decode.");
            return;
        };
        let Some(kind) = serde_json::from_slice::<TypeOnly<'_>>(&json).ok().and_then(|t| t.kind).map(Cow::into_owned)
        else {
            self.fail(out, "api_error", "The provider sent a stream event the gateway could not parse.");
            return;
        };
        // Usage and the provider's model are read before the client's model goes in.
        if let Ok(text) = std::str::from_utf8(&json) {
            self.reader.read_event(text);
        }
        let json = match (kind.as_str(), self.client_model.as_deref()) {
            ("message_start", Some(model)) => message_start_with_model(&json, &json, model).unwrap_or(json),
            _ => json,
        };
        write_event(out, &kind, &json);
        match kind.as_str() {
            "message_stop" => self.complete = true,
            "error" => {
                self.complete = true;
                self.done = true;
            }
            _ => {}
        }
    }

    /// An Anthropic `error` event; the stream ends there.
    fn fail(&mut self, out: &mut Vec<u8>, kind: &str, message: &str) {
        write_event(out, "error", &anthropic_error_body(message, kind));
        self.done = true;
    }
}

/// `event: <kind>` and the JSON as `data:` lines (one per line of the JSON, which SSE joins back
/// with newlines), then the blank line.
fn write_event(out: &mut Vec<u8>, kind: &str, json: &[u8]) {
    if !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.push(b'\n');
    }
    for line in json.split(|b| *b == b'\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
        out.push(b'\n');
    }
    out.push(b'\n');
}
