//! Gemini answers (JSON, `streamGenerateContent?alt=sse`, errors) → conversation events. A JSON
//! answer runs through the same state machine as one stream event, then is collected.

use super::wire::{Response as Wire, ResponsePart};
use crate::api::gemini::{ErrorBody, ErrorResponse, UsageMetadata};
use crate::codec::collect::collect;
use crate::conversation::bridge::ProviderDecoder;
use crate::conversation::{
    BlockStart, Delta, Event, Family, FinishReason, Json, Opaque, ProviderError, Response, ToolKind, Usage,
};
use crate::error::{ErrorKind, GatewayError};
use crate::sse::SseFramer;
use crate::translate::openai_to_gemini::response::tool_call_id;

/// The conversation's finish reason for a Gemini `finishReason`; Gemini says `STOP` after
/// function calls too, so `has_calls` makes that a tool use.
pub fn finish_reason(reason: &str, has_calls: bool) -> FinishReason {
    match reason {
        "STOP" if has_calls => FinishReason::ToolUse,
        "STOP" => FinishReason::EndTurn,
        "MAX_TOKENS" => FinishReason::MaxTokens,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// Running `usageMetadata` members: streams repeat them, sometimes empty or partial at first
/// (Portkey #934), so a member only changes when an event carries it.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    prompt: Option<u64>,
    candidates: Option<u64>,
    thoughts: Option<u64>,
    cached: Option<u64>,
    tool_prompt: Option<u64>,
}

fn sum(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, None) => None,
        _ => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
    }
}

impl Counts {
    /// Takes what `usage` reports; `false` when it reports nothing.
    fn update(&mut self, usage: &UsageMetadata) -> bool {
        let mut any = false;
        for (field, value) in [
            (&mut self.prompt, usage.prompt_token_count),
            (&mut self.candidates, usage.candidates_token_count),
            (&mut self.thoughts, usage.thoughts_token_count),
            (&mut self.cached, usage.cached_content_token_count),
            (&mut self.tool_prompt, usage.tool_use_prompt_token_count),
        ] {
            if value.is_some() {
                *field = value;
                any = true;
            }
        }
        any
    }

    /// Input counts every prompt token (cached and tool-use prompt included); output counts the
    /// thinking too, as the model's `Usage` defines them.
    fn usage(&self) -> Usage {
        Usage {
            input: sum(self.prompt, self.tool_prompt),
            output: sum(self.candidates, self.thoughts),
            cache_read: self.cached,
            cache_write: None,
            reasoning: self.thoughts,
        }
    }
}

/// The open block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Reasoning,
}

/// The event state machine shared by streams and JSON answers.
#[derive(Debug, Default)]
struct Machine {
    started: bool,
    response_id: String,
    calls: u32,
    next_index: u32,
    open: Option<(Open, u32)>,
    finish: Option<FinishReason>,
    counts: Counts,
    done: bool,
}

impl Machine {
    fn on_response(&mut self, response: &Wire<'_>, out: &mut Vec<Event>) {
        if self.done {
            return;
        }
        if let Some(error) = &response.error {
            out.push(Event::Error(stream_error(error)));
            self.done = true;
            return;
        }
        if !self.started {
            self.started = true;
            self.response_id = response.response_id.as_deref().unwrap_or_default().to_owned();
            out.push(Event::Start {
                id: response.response_id.as_deref().filter(|s| !s.is_empty()).map(str::to_owned),
                model: response.model_version.as_deref().filter(|s| !s.is_empty()).map(str::to_owned),
            });
        }
        let candidate = response.candidates.iter().find(|c| c.index.unwrap_or(0) == 0);
        if let Some(candidate) = candidate {
            for raw in candidate.content.iter().flat_map(|c| &c.parts) {
                self.on_part(raw, out);
            }
        }
        if let Some(usage) = &response.usage_metadata {
            if self.counts.update(usage) {
                out.push(Event::Usage(self.counts.usage()));
            }
        }
        if let Some(reason) = candidate.and_then(|c| c.finish_reason.as_deref()) {
            self.close(out);
            self.finish = Some(finish_reason(reason, self.calls > 0));
        } else if candidate.is_none()
            && response.prompt_feedback.as_ref().and_then(|f| f.block_reason.as_deref()).is_some()
        {
            self.finish = Some(FinishReason::ContentFilter);
        }
    }

    fn on_part(&mut self, raw: &serde_json::value::RawValue, out: &mut Vec<Event>) {
        let Ok(part) = serde_json::from_str::<ResponsePart<'_>>(raw.get()) else {
            return self.unknown(raw, out);
        };
        let signature = part
            .thought_signature
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| Opaque { family: Family::Gemini, data: s.to_owned() });
        if let Some(call) = &part.function_call {
            self.sign(signature, out);
            self.close(out);
            let id = match call.id.as_deref().filter(|s| !s.is_empty()) {
                Some(id) => id.to_owned(),
                None => tool_call_id(&self.response_id, self.calls),
            };
            self.calls = self.calls.saturating_add(1);
            let index = self.next();
            let block = BlockStart::ToolCall { id, name: call.name.to_string(), kind: ToolKind::Function };
            out.push(Event::BlockStart { index, block });
            let arguments = call.args.map(|a| a.get()).unwrap_or("{}");
            out.push(Event::Delta { index, delta: Delta::ToolArguments(arguments.to_owned()) });
            out.push(Event::BlockStop { index });
        } else if let Some(text) = part.text.as_deref() {
            if part.thought == Some(true) {
                let index = self.ensure(Open::Reasoning, out);
                if !text.is_empty() {
                    out.push(Event::Delta { index, delta: Delta::Reasoning(text.to_owned()) });
                }
                if let Some(signature) = signature {
                    out.push(Event::Delta { index, delta: Delta::Signature(signature) });
                    self.close(out);
                }
            } else {
                self.sign(signature, out);
                if !text.is_empty() {
                    let index = self.ensure(Open::Text, out);
                    out.push(Event::Delta { index, delta: Delta::Text(text.to_owned()) });
                }
            }
        } else if signature.is_some() {
            self.sign(signature, out);
        } else {
            self.unknown(raw, out);
        }
    }

    /// A part this model has no variant for (executable code, inline output data...), whole.
    fn unknown(&mut self, raw: &serde_json::value::RawValue, out: &mut Vec<Event>) {
        let Some(raw) = Json::from_text(raw.get()) else { return };
        self.close(out);
        let index = self.next();
        out.push(Event::BlockStart { index, block: BlockStart::Unknown { family: Family::Gemini, raw } });
        out.push(Event::BlockStop { index });
    }

    /// A signature Gemini put on the part that comes next: it ends the open reasoning block, or
    /// a reasoning block of its own right before that part.
    fn sign(&mut self, signature: Option<Opaque>, out: &mut Vec<Event>) {
        let Some(signature) = signature else { return };
        let index = self.ensure(Open::Reasoning, out);
        out.push(Event::Delta { index, delta: Delta::Signature(signature) });
        self.close(out);
    }

    fn next(&mut self) -> u32 {
        let index = self.next_index;
        self.next_index = self.next_index.saturating_add(1);
        index
    }

    /// The index of an open block of `kind`, opened if another (or none) is open.
    fn ensure(&mut self, kind: Open, out: &mut Vec<Event>) -> u32 {
        if let Some((open, index)) = self.open {
            if open == kind {
                return index;
            }
        }
        self.close(out);
        let index = self.next();
        let block = match kind {
            Open::Text => BlockStart::Text,
            Open::Reasoning => BlockStart::Reasoning,
        };
        out.push(Event::BlockStart { index, block });
        self.open = Some((kind, index));
        index
    }

    fn close(&mut self, out: &mut Vec<Event>) {
        if let Some((_, index)) = self.open.take() {
            out.push(Event::BlockStop { index });
        }
    }

    /// The end of the answer: `Finish` and `End` when Gemini said why it stopped, else an error
    /// (a stream cut short must not look complete).
    fn end(&mut self, out: &mut Vec<Event>) {
        if self.done {
            return;
        }
        self.done = true;
        match self.finish.take() {
            Some(reason) => {
                self.close(out);
                out.push(Event::Finish(reason));
                out.push(Event::End);
            }
            None => out.push(Event::Error(ProviderError {
                status: 502,
                code: Some("incomplete_stream".to_owned()),
                message: "The provider's stream ended before the answer was complete.".to_owned(),
            })),
        }
    }
}

/// An in-stream `{"error": {...}}` as a provider error (Google's HTTP code when it gives a
/// plausible one, else 500).
fn stream_error(error: &ErrorBody<'_>) -> ProviderError {
    ProviderError {
        status: error.code.filter(|c| (400..600).contains(c)).unwrap_or(500),
        code: error.status.as_deref().filter(|s| !s.is_empty()).map(str::to_owned),
        message: if error.message.is_empty() {
            "The provider reported an error.".to_owned()
        } else {
            error.message.to_string()
        },
    }
}

/// Google's error envelope, alone or (as streaming endpoints send it) as the first array item.
fn parse_error(body: &[u8]) -> Option<ErrorBody<'_>> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => serde_json::from_slice::<ErrorResponse<'_>>(body).ok().map(|e| e.error),
        Some(b'[') => serde_json::from_slice::<Vec<ErrorResponse<'_>>>(body).ok()?.into_iter().next().map(|e| e.error),
        _ => None,
    }
}

/// Reads Gemini `generateContent` answers, streams and errors for any client encoder.
#[derive(Debug, Default)]
pub struct GeminiDecoder {
    framer: SseFramer,
    machine: Machine,
}

impl GeminiDecoder {
    /// A decoder for one response.
    pub fn new() -> Self {
        Self::default()
    }
}

impl ProviderDecoder for GeminiDecoder {
    fn stream_content_type(&self) -> &'static str {
        "text/event-stream"
    }

    fn decode_response(&mut self, body: &[u8]) -> Result<Response, GatewayError> {
        let bad = |why: &str| GatewayError::new(ErrorKind::BadGateway, why.to_owned());
        // serde reads a struct from an array too; an answer is always an object.
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(bad("The provider returned a response the gateway could not parse."));
        }
        let response: Wire<'_> = serde_json::from_slice(body)
            .map_err(|_| bad("The provider returned a response the gateway could not parse."))?;
        if let Some(error) = &response.error {
            return Err(bad(&format!("The provider reported an error: {}", &*error.message)));
        }
        let mut machine = Machine::default();
        let mut events = Vec::new();
        machine.on_response(&response, &mut events);
        if let Some(reason) = machine.finish.take() {
            machine.close(&mut events);
            events.push(Event::Finish(reason));
        }
        machine.close(&mut events);
        collect(&events).map_err(|e| bad(&e.message))
    }

    fn decode_error(&mut self, status: u16, body: &[u8]) -> ProviderError {
        match parse_error(body) {
            Some(error) => ProviderError {
                status,
                code: error.status.as_deref().filter(|s| !s.is_empty()).map(str::to_owned),
                message: if error.message.is_empty() {
                    format!("The provider returned HTTP {status}.")
                } else {
                    error.message.to_string()
                },
            },
            None => ProviderError {
                status,
                code: None,
                message: format!("The provider returned HTTP {status} with a body the gateway could not read."),
            },
        }
    }

    fn decode_chunk(&mut self, chunk: &[u8], end_of_stream: bool, out: &mut Vec<Event>) {
        let machine = &mut self.machine;
        let mut on_event = |_: Option<&str>, data: &str| {
            // Events that are not Gemini JSON (comments, keep-alives) carry nothing.
            if let Ok(response) = serde_json::from_str::<Wire<'_>>(data) {
                machine.on_response(&response, out);
            }
        };
        // An oversized event is dropped by the framer and the stream goes on without it; the
        // answer then usually lacks its finish reason and ends in an error.
        let _ = self.framer.push_each(chunk, &mut on_event);
        if end_of_stream {
            self.framer.finish_each(&mut on_event);
        }
        if end_of_stream {
            self.machine.end(out);
        }
    }
}
