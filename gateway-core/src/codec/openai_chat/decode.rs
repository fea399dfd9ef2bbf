//! Chat Completions answers (JSON, SSE chunks, errors) → conversation events. A JSON answer runs
//! through the same state machine as one chunk (its `message` read as a `delta`), then is
//! collected.

use crate::api::openai::{ProviderCompletion, ProviderError as WireError, ProviderErrorResponse, ProviderUsage};
use crate::codec::collect::collect;
use crate::conversation::bridge::ProviderDecoder;
use crate::conversation::{BlockStart, Delta, Event, FinishReason, ProviderError, Response, ToolKind, Usage};
use crate::error::{ErrorKind, GatewayError};
use crate::sse::SseFramer;

/// The conversation's finish reason for a Chat `finish_reason`.
pub fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "stop" => FinishReason::EndTurn,
        "length" => FinishReason::MaxTokens,
        "tool_calls" | "function_call" => FinishReason::ToolUse,
        "content_filter" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// OpenAI's `usage` in the conversation's terms (`prompt_tokens` already include cached ones).
pub fn usage(u: &ProviderUsage) -> Usage {
    Usage {
        input: u.prompt_tokens,
        output: u.completion_tokens,
        cache_read: u.prompt_tokens_details.and_then(|d| d.cached_tokens),
        cache_write: None,
        reasoning: u.completion_tokens_details.and_then(|d| d.reasoning_tokens),
    }
}

/// The open block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Reasoning,
    Tool,
}

/// The event state machine shared by streams and JSON answers.
#[derive(Debug, Default)]
struct Machine {
    started: bool,
    next_index: u32,
    open: Option<(Open, u32)>,
    /// (Chat tool-call index, block index) of every call so far.
    tools: Vec<(u32, u32)>,
    finish: Option<FinishReason>,
    refused: bool,
    done: bool,
}

impl Machine {
    fn on_chunk(&mut self, chunk: &ProviderCompletion<'_>, out: &mut Vec<Event>) {
        if self.done {
            return;
        }
        if let Some(error) = &chunk.error {
            out.push(Event::Error(error_of(500, error)));
            self.done = true;
            return;
        }
        // Azure's first chunk carries only prompt filter results, with an empty id and model.
        if !self.started && (!chunk.id.is_empty() || !chunk.choices.is_empty()) {
            self.start(Some(&chunk.id), Some(&chunk.model), out);
        }
        // The codec never asks for n > 1: only choice 0 exists.
        if let Some(choice) = chunk.choices.iter().find(|c| c.index.unwrap_or(0) == 0) {
            if let Some(m) = choice.delta.as_ref().or(choice.message.as_ref()) {
                if let Some(text) = m.reasoning_content.as_deref().filter(|t| !t.is_empty()) {
                    let index = self.ensure(Open::Reasoning, out);
                    out.push(Event::Delta { index, delta: Delta::Reasoning(text.to_owned()) });
                }
                if let Some(text) = m.content.as_deref().filter(|t| !t.is_empty()) {
                    let index = self.ensure(Open::Text, out);
                    out.push(Event::Delta { index, delta: Delta::Text(text.to_owned()) });
                }
                if let Some(text) = m.refusal.as_deref().filter(|t| !t.is_empty()) {
                    self.refused = true;
                    let index = self.ensure(Open::Text, out);
                    out.push(Event::Delta { index, delta: Delta::Text(text.to_owned()) });
                }
                for (position, call) in m.tool_calls.iter().flatten().enumerate() {
                    // A whole answer's calls have no index: their position is it.
                    let tool_index = call.index.unwrap_or(u32::try_from(position).unwrap_or(u32::MAX));
                    let function = call.function.as_ref();
                    let custom = call.custom.as_ref();
                    let index = match self.tools.iter().find(|(t, _)| *t == tool_index) {
                        Some(&(_, index)) => index,
                        None => {
                            self.close(out);
                            let index = self.next();
                            self.tools.push((tool_index, index));
                            self.open = Some((Open::Tool, index));
                            let name =
                                function.and_then(|f| f.name.as_deref()).or(custom.and_then(|c| c.name.as_deref()));
                            let block = BlockStart::ToolCall {
                                id: call.id.as_deref().unwrap_or_default().to_owned(),
                                name: name.unwrap_or_default().to_owned(),
                                kind: if custom.is_some() { ToolKind::Custom } else { ToolKind::Function },
                            };
                            out.push(Event::BlockStart { index, block });
                            index
                        }
                    };
                    // A fragment for a call that is no longer open (never seen from OpenAI or
                    // Azure, which stream calls one after another) still goes to its own block.
                    let arguments =
                        function.and_then(|f| f.arguments.as_deref()).or(custom.and_then(|c| c.input.as_deref()));
                    if let Some(arguments) = arguments.filter(|a| !a.is_empty()) {
                        out.push(Event::Delta { index, delta: Delta::ToolArguments(arguments.to_owned()) });
                    }
                }
            }
            if let Some(reason) = choice.finish_reason.as_deref() {
                self.close(out);
                self.finish = Some(if self.refused { FinishReason::Refusal } else { finish_reason(reason) });
            }
        }
        if let Some(u) = &chunk.usage {
            if !self.started {
                self.start(None, None, out);
            }
            out.push(Event::Usage(usage(u)));
        }
    }

    fn start(&mut self, id: Option<&str>, model: Option<&str>, out: &mut Vec<Event>) {
        self.started = true;
        let keep = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_owned);
        out.push(Event::Start { id: keep(id), model: keep(model) });
    }

    fn next(&mut self) -> u32 {
        let index = self.next_index;
        self.next_index = self.next_index.saturating_add(1);
        index
    }

    fn ensure(&mut self, kind: Open, out: &mut Vec<Event>) -> u32 {
        if let Some((open, index)) = self.open {
            if open == kind {
                return index;
            }
        }
        self.close(out);
        let index = self.next();
        let block = if kind == Open::Reasoning { BlockStart::Reasoning } else { BlockStart::Text };
        out.push(Event::BlockStart { index, block });
        self.open = Some((kind, index));
        index
    }

    fn close(&mut self, out: &mut Vec<Event>) {
        if let Some((_, index)) = self.open.take() {
            out.push(Event::BlockStop { index });
        }
    }

    /// The normal end (`[DONE]`, or the stream's end after a finish reason).
    fn end(&mut self, out: &mut Vec<Event>) {
        if self.done {
            return;
        }
        self.done = true;
        if !self.started {
            self.start(None, None, out);
        }
        self.close(out);
        out.push(Event::Finish(self.finish.take().unwrap_or(FinishReason::EndTurn)));
        out.push(Event::End);
    }
}

/// An OpenAI error object as a provider error; `code` is OpenAI's code, else its type.
fn error_of(status: u16, error: &WireError<'_>) -> ProviderError {
    let code = match error.code.map(|raw| raw.get()) {
        Some(raw) if raw.starts_with('"') => serde_json::from_str::<String>(raw).ok(),
        Some(raw) if raw != "null" => Some(raw.to_owned()),
        _ => None,
    };
    ProviderError {
        status,
        code: code.or_else(|| error.kind.as_deref().filter(|k| !k.is_empty()).map(str::to_owned)),
        message: if error.message.is_empty() {
            "The provider reported an error.".to_owned()
        } else {
            error.message.to_string()
        },
    }
}

/// Reads Chat Completions answers, streams and errors (OpenAI, Azure OpenAI) for any client
/// encoder.
#[derive(Debug, Default)]
pub struct OpenAiChatDecoder {
    framer: SseFramer,
    machine: Machine,
}

impl OpenAiChatDecoder {
    /// A decoder for one response.
    pub fn new() -> Self {
        Self::default()
    }
}

impl ProviderDecoder for OpenAiChatDecoder {
    fn stream_content_type(&self) -> &'static str {
        "text/event-stream"
    }

    fn decode_response(&mut self, body: &[u8]) -> Result<Response, GatewayError> {
        let bad = |why: String| GatewayError::new(ErrorKind::BadGateway, why);
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(bad("The provider returned a response the gateway could not parse.".to_owned()));
        }
        let completion: ProviderCompletion<'_> = serde_json::from_slice(body)
            .map_err(|_| bad("The provider returned a response the gateway could not parse.".to_owned()))?;
        if completion.choices.is_empty() {
            let why = completion.error.as_ref().map(|e| &*e.message).unwrap_or("no choices");
            return Err(bad(format!("The provider returned no answer: {why}")));
        }
        let mut machine = Machine::default();
        let mut events = Vec::new();
        machine.on_chunk(&completion, &mut events);
        let finish = machine.finish.take();
        machine.close(&mut events);
        if let Some(reason) = finish {
            events.push(Event::Finish(reason));
        }
        collect(&events).map_err(|e| bad(e.message))
    }

    fn decode_error(&mut self, status: u16, body: &[u8]) -> ProviderError {
        match serde_json::from_slice::<ProviderErrorResponse<'_>>(body) {
            Ok(e) if !e.error.message.is_empty() => error_of(status, &e.error),
            _ => ProviderError {
                status,
                code: None,
                message: format!("The provider returned HTTP {status} with a body the gateway could not read."),
            },
        }
    }

    fn decode_chunk(&mut self, chunk: &[u8], end_of_stream: bool, out: &mut Vec<Event>) {
        let machine = &mut self.machine;
        let mut on_event = |_: Option<&str>, data: &str| {
            if data.trim() == "[DONE]" {
                machine.end(out);
            } else if let Ok(c) = serde_json::from_str::<ProviderCompletion<'_>>(data) {
                machine.on_chunk(&c, out);
            }
        };
        // An oversized event is dropped by the framer and the stream goes on without it.
        let _ = self.framer.push_each(chunk, &mut on_event);
        if end_of_stream {
            self.framer.finish_each(&mut on_event);
        }
        if end_of_stream && !self.machine.done {
            if self.machine.finish.is_some() {
                self.machine.end(out);
            } else {
                self.machine.done = true;
                out.push(Event::Error(ProviderError {
                    status: 502,
                    code: Some("incomplete_stream".to_owned()),
                    message: "The provider's stream ended before the answer was complete.".to_owned(),
                }));
            }
        }
    }
}
