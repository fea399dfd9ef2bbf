//! The two codec interfaces of the response path, and the [`Bridge`] that joins any provider
//! decoder to any client encoder as the filter's [`ResponseTranslator`].
//!
//! Decoders and encoders meet only in [`Response`] and [`Event`]: a new provider is one decoder,
//! a new client API one encoder, and every pair works. The bridge owns what is common to every
//! pair: choosing the body mode, keeping cumulative usage, remembering the provider's model id.

use super::{Event, ProviderError, Response, Usage};
use crate::error::{ErrorKind, GatewayError};
use crate::translate::{BodyMode, ResponseTranslator};
use crate::usage::TokenUsage;

/// Reads one provider API's answers.
pub trait ProviderDecoder {
    /// The content type (prefix) of this provider's streamed answers.
    fn stream_content_type(&self) -> &'static str;

    /// Decodes a complete 2xx body. `Err` means the provider sent something unreadable (the
    /// client gets a 502 in its own shape).
    fn decode_response(&mut self, body: &[u8]) -> Result<Response, GatewayError>;

    /// Decodes a non-2xx body into the provider's error, whatever it holds.
    fn decode_error(&mut self, status: u16, body: &[u8]) -> ProviderError;

    /// Decodes one chunk of a streamed 2xx answer into events. Framing state is the decoder's;
    /// at `end_of_stream` it flushes, and a stream cut short ends with an [`Event::Error`].
    fn decode_chunk(&mut self, chunk: &[u8], end_of_stream: bool, out: &mut Vec<Event>);

    /// A response header the decoder needs (Bedrock's `x-amzn-errortype`).
    fn wanted_response_header(&self) -> Option<&'static str> {
        None
    }

    /// The value of [`Self::wanted_response_header`], before the body.
    fn on_response_header(&mut self, _value: &str) {}
}

/// Writes answers in one client API.
pub trait ClientEncoder {
    /// A complete answer as this API's JSON body.
    fn encode_response(&mut self, response: &Response) -> Vec<u8>;

    /// A provider error as this API's JSON error body (the status is the provider's).
    fn encode_error(&self, error: &ProviderError) -> Vec<u8>;

    /// Stream events as this API's stream bytes (an [`Event::Error`] in the API's in-stream error
    /// form). Called with whatever the decoder produced for one chunk, possibly nothing.
    fn encode_events(&mut self, events: &[Event], out: &mut Vec<u8>);
}

/// A provider decoder and a client encoder joined into one response translator.
pub struct Bridge<D, E> {
    decoder: D,
    encoder: E,
    status: u16,
    mode: BodyMode,
    usage: Usage,
    model: Option<String>,
    events: Vec<Event>,
}

impl<D: ProviderDecoder, E: ClientEncoder> Bridge<D, E> {
    pub fn new(decoder: D, encoder: E) -> Self {
        Bridge {
            decoder,
            encoder,
            status: 0,
            mode: BodyMode::Buffered,
            usage: Usage::default(),
            model: None,
            events: Vec::new(),
        }
    }

    /// Counts and model ids seen in `events`, kept for accounting and spans.
    fn observe(&mut self) {
        for event in &self.events {
            match event {
                Event::Usage(u) => self.usage = self.usage.merge(*u),
                Event::Start { model: Some(m), .. } if self.model.is_none() => {
                    self.model = crate::translate::response_model_str(m);
                }
                _ => {}
            }
        }
    }
}

impl<D: ProviderDecoder, E: ClientEncoder> ResponseTranslator for Bridge<D, E> {
    fn on_headers(&mut self, status: u16, content_type: Option<&str>) -> BodyMode {
        self.status = status;
        let streamed = content_type.is_some_and(|c| c.trim_start().starts_with(self.decoder.stream_content_type()));
        self.mode = if (200..300).contains(&status) && streamed { BodyMode::Streaming } else { BodyMode::Buffered };
        self.mode
    }

    fn content_type(&self) -> Option<&'static str> {
        Some(match self.mode {
            BodyMode::Streaming => "text/event-stream",
            BodyMode::Buffered => "application/json",
        })
    }

    fn translate_body(&mut self, body: &[u8]) -> Result<Option<Vec<u8>>, GatewayError> {
        if !(200..300).contains(&self.status) {
            let error = self.decoder.decode_error(self.status, body);
            return Ok(Some(self.encoder.encode_error(&error)));
        }
        let response = self.decoder.decode_response(body).map_err(|e| match e.kind {
            ErrorKind::BadGateway => e,
            _ => GatewayError::new(
                ErrorKind::BadGateway,
                format!("The provider's answer could not be read: {}", e.message),
            ),
        })?;
        self.usage = self.usage.merge(response.usage);
        if self.model.is_none() {
            self.model = response.model.as_deref().and_then(crate::translate::response_model_str);
        }
        Ok(Some(self.encoder.encode_response(&response)))
    }

    fn translate_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Vec<u8> {
        self.events.clear();
        self.decoder.decode_chunk(chunk, end_of_stream, &mut self.events);
        self.observe();
        // Client events are usually longer than the provider's (ids, indexes, sequence numbers):
        // room for that up front saves a reallocation per chunk.
        let mut out = Vec::with_capacity(chunk.len() + chunk.len() / 2 + 256);
        self.encoder.encode_events(&self.events, &mut out);
        out
    }

    fn usage(&self) -> TokenUsage {
        self.usage.to_token_usage()
    }

    fn response_model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    fn wanted_response_header(&self) -> Option<&'static str> {
        self.decoder.wanted_response_header()
    }

    fn on_response_header(&mut self, value: &str) {
        self.decoder.on_response_header(value);
    }
}
