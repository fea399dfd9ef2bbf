//! ConverseStream (binary AWS event stream) → conversation [`Event`]s.
//!
//! | Converse message | events |
//! |---|---|
//! | `messageStart` (or the first event, if it is missing) | `Start` (model: the provider model id) |
//! | `contentBlockStart` with `toolUse` | `BlockStart::ToolCall` |
//! | `contentBlockDelta` `text` (non-empty) | `BlockStart::Text` when the block is new (Converse omits `contentBlockStart` for text), `Delta::Text` |
//! | `contentBlockDelta` `toolUse.input` | `Delta::ToolArguments` of the tool call started for that block |
//! | `contentBlockDelta` `reasoningContent.text` / `.signature` | `BlockStart::Reasoning` when new, `Delta::Reasoning` / `Delta::Signature` |
//! | `contentBlockDelta` `reasoningContent.redactedContent` | `BlockStart::RedactedReasoning` (whole) |
//! | `contentBlockStop` | `BlockStop` of the block, if it carried anything |
//! | `messageStop` | `BlockStop` of blocks still open, `Finish` |
//! | `metadata` | `Usage`, then `End` once `messageStop` was seen |
//! | `:message-type: exception` (throttlingException, validationException, modelStreamErrorException...) or `error` | `Error` (status per [`exception_status`]), nothing after |
//! | a bad CRC, an impossible length, an event whose JSON does not parse | `Error` 502 `invalid_event_stream` |
//! | end of input before `messageStop` | `Error` 502 `incomplete_stream`; after `messageStop` without `metadata`: `End` |
//!
//! Blocks are numbered densely in start order; a Converse block that never carried anything
//! (an empty text delta only) produces no events.

use super::response::{bare_error_type, exception_status, finish_reason, usage};
use super::wire::StreamEvent;
use crate::aws::eventstream::{EventStreamDecoder, Message};
use crate::conversation::{BlockStart, Delta, Event, Family, Opaque, ProviderError, ToolKind};

/// What an open block holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    ToolCall,
    Reasoning,
    /// Arrives whole: never takes a delta.
    Redacted,
}

/// A block started and not yet stopped.
#[derive(Debug)]
struct Open {
    /// Converse's `contentBlockIndex`.
    source: u64,
    index: u32,
    kind: Kind,
}

/// Most blocks open at once; Converse opens one at a time, so more is a broken stream.
const MAX_OPEN_BLOCKS: usize = 64;

/// Per-response ConverseStream state.
#[derive(Debug)]
pub(crate) struct StreamDecoder {
    frames: EventStreamDecoder,
    /// Reused frame buffer.
    messages: Vec<Message>,
    family: Family,
    model: String,
    started: bool,
    open: Vec<Open>,
    next_index: u32,
    finished: bool,
    done: bool,
}

impl StreamDecoder {
    pub(crate) fn new(family: Family, model: String) -> Self {
        StreamDecoder {
            frames: EventStreamDecoder::default(),
            messages: Vec::new(),
            family,
            model,
            started: false,
            open: Vec::new(),
            next_index: 0,
            finished: false,
            done: false,
        }
    }

    pub(crate) fn push(&mut self, chunk: &[u8], end_of_stream: bool, out: &mut Vec<Event>) {
        if self.done {
            return;
        }
        let mut messages = std::mem::take(&mut self.messages);
        let mut result = self.frames.push(chunk, &mut messages);
        if end_of_stream && result.is_ok() {
            result = self.frames.finish();
        }
        for message in messages.drain(..) {
            self.on_message(&message, out);
        }
        self.messages = messages;
        if let Err(e) = result {
            self.fail(
                out,
                502,
                "invalid_event_stream",
                format!("The provider's event stream could not be decoded: {e}."),
            );
        }
        if end_of_stream && !self.done {
            if self.finished {
                out.push(Event::End);
                self.done = true;
            } else {
                self.fail(
                    out,
                    502,
                    "incomplete_stream",
                    "The provider's stream ended before the answer was complete.".to_owned(),
                );
            }
        }
    }

    fn fail(&mut self, out: &mut Vec<Event>, status: u16, code: &str, message: String) {
        if self.done {
            return;
        }
        out.push(Event::Error(ProviderError { status, code: Some(code.to_owned()), message }));
        self.done = true;
    }

    fn start(&mut self, out: &mut Vec<Event>) {
        if !self.started {
            self.started = true;
            out.push(Event::Start { id: None, model: Some(self.model.clone()) });
        }
    }

    fn on_message(&mut self, message: &Message, out: &mut Vec<Event>) {
        if self.done {
            return;
        }
        match message.header_str(":message-type") {
            Some("event") | None => {}
            Some("exception") => {
                let kind = message.header_str(":exception-type").map(bare_error_type).unwrap_or_default();
                let parsed = serde_json::from_slice::<StreamEvent<'_>>(&message.payload).ok();
                let text = parsed
                    .as_ref()
                    .and_then(|e| e.message.as_deref())
                    .unwrap_or("The provider reported an error in the stream.")
                    .to_owned();
                let code = (!kind.is_empty()).then(|| kind.to_owned());
                out.push(Event::Error(ProviderError { status: exception_status(kind, 500), code, message: text }));
                self.done = true;
                return;
            }
            Some(_) => {
                let code = message.header_str(":error-code").filter(|c| !c.is_empty());
                let text =
                    message.header_str(":error-message").unwrap_or("The provider reported an error in the stream.");
                out.push(Event::Error(ProviderError {
                    status: exception_status(code.unwrap_or_default(), 500),
                    code: code.map(str::to_owned),
                    message: text.to_owned(),
                }));
                self.done = true;
                return;
            }
        }
        let kind = message.header_str(":event-type").unwrap_or_default();
        if !matches!(
            kind,
            "messageStart"
                | "contentBlockStart"
                | "contentBlockDelta"
                | "contentBlockStop"
                | "messageStop"
                | "metadata"
        ) {
            // Event types newer than this codec (or AWS's own, with empty payloads) are skipped.
            return;
        }
        let Ok(event) = serde_json::from_slice::<StreamEvent<'_>>(&message.payload) else {
            self.fail(
                out,
                502,
                "invalid_event_stream",
                "The provider sent a stream event the gateway could not parse.".to_owned(),
            );
            return;
        };
        self.start(out);
        let source = event.content_block_index.unwrap_or(0);
        match kind {
            "contentBlockStart" => {
                if let Some(tool) = event.start.as_ref().and_then(|s| s.tool_use.as_ref()) {
                    let block = BlockStart::ToolCall {
                        id: tool.tool_use_id.to_string(),
                        name: tool.name.to_string(),
                        kind: ToolKind::Function,
                    };
                    self.open_block(source, Kind::ToolCall, block, out);
                }
            }
            "contentBlockDelta" => {
                let Some(delta) = &event.delta else { return };
                if let Some(text) = delta.text.as_deref().filter(|t| !t.is_empty()) {
                    let index = self.block(source, Kind::Text, out);
                    if let Some(index) = index {
                        out.push(Event::Delta { index, delta: Delta::Text(text.to_owned()) });
                    }
                }
                if let Some(json) = delta.tool_use.as_ref().and_then(|t| t.input.as_deref()).filter(|j| !j.is_empty()) {
                    // Arguments without a started tool call have no id or name to go with: skipped.
                    let index = self.open.iter().find(|o| o.source == source && o.kind == Kind::ToolCall);
                    if let Some(index) = index.map(|o| o.index) {
                        out.push(Event::Delta { index, delta: Delta::ToolArguments(json.to_owned()) });
                    }
                }
                if let Some(reasoning) = &delta.reasoning_content {
                    if let Some(text) = reasoning.text.as_deref().filter(|t| !t.is_empty()) {
                        if let Some(index) = self.block(source, Kind::Reasoning, out) {
                            out.push(Event::Delta { index, delta: Delta::Reasoning(text.to_owned()) });
                        }
                    }
                    if let Some(signature) = reasoning.signature.as_deref().filter(|s| !s.is_empty()) {
                        if let Some(index) = self.block(source, Kind::Reasoning, out) {
                            let data = Opaque { family: self.family, data: signature.to_owned() };
                            out.push(Event::Delta { index, delta: Delta::Signature(data) });
                        }
                    }
                    if let Some(data) = reasoning.redacted_content.as_deref() {
                        let data = Opaque { family: self.family, data: data.to_owned() };
                        self.open_block(source, Kind::Redacted, BlockStart::RedactedReasoning { data }, out);
                    }
                }
            }
            "contentBlockStop" => {
                if let Some(pos) = self.open.iter().position(|o| o.source == source) {
                    let open = self.open.remove(pos);
                    out.push(Event::BlockStop { index: open.index });
                }
            }
            "messageStop" => {
                for open in self.open.drain(..) {
                    out.push(Event::BlockStop { index: open.index });
                }
                let stop_sequence =
                    event.additional_model_response_fields.as_ref().and_then(|a| a.stop_sequence.as_deref());
                let reason = finish_reason(event.stop_reason.as_deref().unwrap_or("end_turn"), stop_sequence);
                out.push(Event::Finish(reason));
                self.finished = true;
            }
            "metadata" => {
                if let Some(u) = event.usage {
                    out.push(Event::Usage(usage(u)));
                }
                if self.finished {
                    out.push(Event::End);
                    self.done = true;
                }
            }
            // messageStart: the Start above is all it says.
            _ => {}
        }
    }

    /// The index of the open block for `source` if it holds `kind`; otherwise a new block of
    /// that kind (closing a block of another kind at the same position first).
    fn block(&mut self, source: u64, kind: Kind, out: &mut Vec<Event>) -> Option<u32> {
        if let Some(open) = self.open.iter().find(|o| o.source == source && o.kind == kind && kind != Kind::Redacted) {
            return Some(open.index);
        }
        let block = match kind {
            Kind::Text => BlockStart::Text,
            Kind::Reasoning => BlockStart::Reasoning,
            Kind::ToolCall | Kind::Redacted => return None,
        };
        self.open_block(source, kind, block, out)
    }

    fn open_block(&mut self, source: u64, kind: Kind, block: BlockStart, out: &mut Vec<Event>) -> Option<u32> {
        if let Some(pos) = self.open.iter().position(|o| o.source == source) {
            let previous = self.open.remove(pos);
            out.push(Event::BlockStop { index: previous.index });
        }
        if self.open.len() >= MAX_OPEN_BLOCKS {
            self.fail(out, 502, "invalid_event_stream", "The provider's stream opened too many blocks.".to_owned());
            return None;
        }
        let index = self.next_index;
        self.next_index = self.next_index.saturating_add(1);
        self.open.push(Open { source, index, kind });
        out.push(Event::BlockStart { index, block });
        Some(index)
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
