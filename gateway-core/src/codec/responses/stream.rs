//! [`Event`]s → the Responses API's typed SSE events, and the [`ResponsesEncoder`] that writes
//! every answer for a Responses client.
//!
//! Every event carries `sequence_number`, dense from 0. Text blocks in a row share one `message`
//! item (one `output_text` part each); every tool call, reasoning block and redacted reasoning
//! is an item of its own, exactly as [`super::response`] folds a complete answer, so the
//! `response.completed` of a stream equals the JSON answer for the same parts. Like the
//! Anthropic encoder it tolerates decoders that differ from the usual order: a missing `Start`
//! is synthesised, blocks left open are closed at `Finish`/`End`, and a delta for a block that
//! never started opens one.

use serde::Serialize;

use super::response::{
    self, call_prefix, error_message, error_type, failure_code, Item, Items, OutItem, ResponseError, ResponseJson,
    SummaryJson, TextJson,
};
use crate::conversation::bridge::ClientEncoder;
use crate::conversation::{BlockStart, Delta, Event, Family, FinishReason, ProviderError, Response, ToolKind, Usage};
use crate::sse::write_event;

/// A stream event's payload; the SSE `event:` name equals `type`.
#[derive(Serialize)]
#[serde(tag = "type")]
enum Out<'a> {
    #[serde(rename = "response.created")]
    Created { response: ResponseJson<'a> },
    #[serde(rename = "response.in_progress")]
    InProgress { response: ResponseJson<'a> },
    #[serde(rename = "response.output_item.added")]
    ItemAdded { output_index: usize, item: OutItem<'a> },
    #[serde(rename = "response.output_item.done")]
    ItemDone { output_index: usize, item: OutItem<'a> },
    #[serde(rename = "response.content_part.added")]
    PartAdded { item_id: &'a str, output_index: usize, content_index: usize, part: TextJson<'a> },
    #[serde(rename = "response.content_part.done")]
    PartDone { item_id: &'a str, output_index: usize, content_index: usize, part: TextJson<'a> },
    // Written by `write_delta`; kept as the reference its tests compare against.
    #[cfg(test)]
    #[serde(rename = "response.output_text.delta")]
    TextDelta { item_id: &'a str, output_index: usize, content_index: usize, delta: &'a str, logprobs: [u8; 0] },
    #[serde(rename = "response.output_text.done")]
    TextDone { item_id: &'a str, output_index: usize, content_index: usize, text: &'a str, logprobs: [u8; 0] },
    // Written by `write_delta`; kept as the reference its tests compare against.
    #[cfg(test)]
    #[serde(rename = "response.function_call_arguments.delta")]
    ArgumentsDelta { item_id: &'a str, output_index: usize, delta: &'a str },
    #[serde(rename = "response.function_call_arguments.done")]
    ArgumentsDone { item_id: &'a str, output_index: usize, arguments: &'a str },
    // Written by `write_delta`; kept as the reference its tests compare against.
    #[cfg(test)]
    #[serde(rename = "response.custom_tool_call_input.delta")]
    InputDelta { item_id: &'a str, output_index: usize, delta: &'a str },
    #[serde(rename = "response.custom_tool_call_input.done")]
    InputDone { item_id: &'a str, output_index: usize, input: &'a str },
    #[serde(rename = "response.reasoning_summary_part.added")]
    SummaryAdded { item_id: &'a str, output_index: usize, summary_index: usize, part: SummaryJson<'a> },
    #[serde(rename = "response.reasoning_summary_part.done")]
    SummaryDone { item_id: &'a str, output_index: usize, summary_index: usize, part: SummaryJson<'a> },
    // Written by `write_delta`; kept as the reference its tests compare against.
    #[cfg(test)]
    #[serde(rename = "response.reasoning_summary_text.delta")]
    SummaryDelta { item_id: &'a str, output_index: usize, summary_index: usize, delta: &'a str },
    #[serde(rename = "response.reasoning_summary_text.done")]
    SummaryTextDone { item_id: &'a str, output_index: usize, summary_index: usize, text: &'a str },
    #[serde(rename = "response.completed")]
    Completed { response: ResponseJson<'a> },
    #[serde(rename = "response.incomplete")]
    Incomplete { response: ResponseJson<'a> },
    #[serde(rename = "response.failed")]
    Failed { response: ResponseJson<'a> },
    #[serde(rename = "error")]
    Error { code: &'a str, message: &'a str, param: Option<&'a str> },
}

impl Out<'_> {
    fn name(&self) -> &'static str {
        match self {
            Out::Created { .. } => "response.created",
            Out::InProgress { .. } => "response.in_progress",
            Out::ItemAdded { .. } => "response.output_item.added",
            Out::ItemDone { .. } => "response.output_item.done",
            Out::PartAdded { .. } => "response.content_part.added",
            Out::PartDone { .. } => "response.content_part.done",
            #[cfg(test)]
            Out::TextDelta { .. } => "response.output_text.delta",
            Out::TextDone { .. } => "response.output_text.done",
            #[cfg(test)]
            Out::ArgumentsDelta { .. } => "response.function_call_arguments.delta",
            Out::ArgumentsDone { .. } => "response.function_call_arguments.done",
            #[cfg(test)]
            Out::InputDelta { .. } => "response.custom_tool_call_input.delta",
            Out::InputDone { .. } => "response.custom_tool_call_input.done",
            Out::SummaryAdded { .. } => "response.reasoning_summary_part.added",
            Out::SummaryDone { .. } => "response.reasoning_summary_part.done",
            #[cfg(test)]
            Out::SummaryDelta { .. } => "response.reasoning_summary_text.delta",
            Out::SummaryTextDone { .. } => "response.reasoning_summary_text.done",
            Out::Completed { .. } => "response.completed",
            Out::Incomplete { .. } => "response.incomplete",
            Out::Failed { .. } => "response.failed",
            Out::Error { .. } => "error",
        }
    }
}

/// An event with its place in the stream.
#[derive(Serialize)]
struct Frame<'a> {
    #[serde(flatten)]
    event: Out<'a>,
    sequence_number: u64,
}

/// Writes `event` as the stream's next frame. A free function so that events can borrow the
/// encoder's items while the sequence number moves on.
fn emit(seq: &mut u64, out: &mut Vec<u8>, event: Out<'_>) {
    let name = event.name();
    // Strings, numbers and already-valid JSON cannot fail to encode; an event that did is skipped.
    if let Ok(data) = serde_json::to_string(&Frame { event, sequence_number: *seq }) {
        write_event(out, Some(name), &crate::sse::compact_json(&data));
        *seq = seq.saturating_add(1);
    }
}

/// The delta events [`write_delta`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeltaKind {
    /// `response.output_text.delta` (`content_index`, `logprobs: []`).
    Text,
    /// `response.function_call_arguments.delta`.
    Arguments,
    /// `response.custom_tool_call_input.delta`.
    Input,
    /// `response.reasoning_summary_text.delta` (`summary_index`).
    Summary,
}

/// Writes one delta event as the stream's next frame: the bytes [`emit`] writes for the same
/// [`Out`] event (the tests compare both), without building the serde value first. `part` is
/// the `content_index` (text) or `summary_index` (reasoning summary).
fn write_delta(
    seq: &mut u64,
    out: &mut Vec<u8>,
    kind: DeltaKind,
    item_id: &str,
    output_index: usize,
    part: Option<usize>,
    delta: &str,
) {
    let name: &[u8] = match kind {
        DeltaKind::Text => b"response.output_text.delta",
        DeltaKind::Arguments => b"response.function_call_arguments.delta",
        DeltaKind::Input => b"response.custom_tool_call_input.delta",
        DeltaKind::Summary => b"response.reasoning_summary_text.delta",
    };
    out.reserve(name.len() * 2 + item_id.len() + delta.len() + 128);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name);
    out.extend_from_slice(b"\ndata: {\"type\":\"");
    out.extend_from_slice(name);
    out.extend_from_slice(b"\",\"item_id\":");
    json_str(out, item_id);
    out.extend_from_slice(b",\"output_index\":");
    json_int(out, output_index);
    if let Some(part) = part {
        out.extend_from_slice(if kind == DeltaKind::Summary { b",\"summary_index\":" } else { b",\"content_index\":" });
        json_int(out, part);
    }
    out.extend_from_slice(b",\"delta\":");
    json_str(out, delta);
    if kind == DeltaKind::Text {
        out.extend_from_slice(b",\"logprobs\":[]");
    }
    out.extend_from_slice(b",\"sequence_number\":");
    json_int(out, *seq);
    out.extend_from_slice(b"}\n\n");
    *seq = seq.saturating_add(1);
}

/// `value` as a JSON string, by serde_json's own escaping (so also one SSE data line).
fn json_str(out: &mut Vec<u8>, value: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// An integer as JSON, by serde_json (itoa).
fn json_int<N: Serialize>(out: &mut Vec<u8>, n: N) {
    let _ = serde_json::to_writer(&mut *out, &n);
}

/// Which deltas a block takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Call,
    Reasoning,
    /// Arrives whole (redacted reasoning, OpenAI items kept whole).
    Whole,
}

impl Kind {
    fn accepts(self, delta: &Delta) -> bool {
        match self {
            Kind::Text => matches!(delta, Delta::Text(_) | Delta::Citation(_)),
            Kind::Call => matches!(delta, Delta::ToolArguments(_)),
            Kind::Reasoning => matches!(delta, Delta::Reasoning(_) | Delta::Signature(_)),
            Kind::Whole => false,
        }
    }
}

/// One block of the decoder's, and the output item it writes into.
#[derive(Debug)]
struct Slot {
    /// The decoder's index.
    source: u32,
    /// The output index; `None` for a block a Responses client cannot hold (dropped).
    item: Option<usize>,
    /// The content index inside a message.
    part: usize,
    kind: Kind,
    open: bool,
}

/// Writes answers for an OpenAI Responses API client: JSON bodies, typed SSE streams and
/// errors. One encoder serves one response.
#[derive(Debug)]
pub struct ResponsesEncoder {
    /// The model the client asked for: every answer names it, whatever the provider's id.
    model: String,
    /// The response id when the provider gives none.
    fallback_id: String,
    /// Unix seconds, `created_at` of the response.
    created_at: u64,
    /// The response id, once the stream started.
    id: String,
    seq: u64,
    started: bool,
    done: bool,
    items: Items,
    /// The message item that takes the next text block, while no other item came after it.
    message: Option<usize>,
    slots: Vec<Slot>,
    usage: Usage,
    finish: Option<FinishReason>,
}

impl ResponsesEncoder {
    /// An encoder answering as `model` (the client's requested name), with `fallback_id` as the
    /// response id when the provider reports none and `created_at` (unix seconds) as its time.
    pub fn new(model: impl Into<String>, fallback_id: impl Into<String>, created_at: u64) -> Self {
        ResponsesEncoder {
            model: model.into(),
            fallback_id: fallback_id.into(),
            created_at,
            id: String::new(),
            seq: 0,
            started: false,
            done: false,
            items: Items::default(),
            message: None,
            slots: Vec::new(),
            usage: Usage::default(),
            finish: None,
        }
    }

    /// Whether the stream has been terminated (`response.completed`/`incomplete`/`failed`).
    pub fn finished(&self) -> bool {
        self.done
    }

    fn write(&mut self, out: &mut Vec<u8>, event: Out<'_>) {
        emit(&mut self.seq, out, event);
    }

    fn start(&mut self, id: Option<&str>, out: &mut Vec<u8>) {
        self.started = true;
        self.id = response::response_id(id, &self.fallback_id);
        self.items = Items::new(&self.id);
        let response = || ResponseJson::new(&self.id, self.created_at, &self.model, "in_progress");
        emit(&mut self.seq, out, Out::Created { response: response() });
        emit(&mut self.seq, out, Out::InProgress { response: response() });
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.start(None, out);
        }
    }

    /// Adds an item and announces it.
    fn add_item(&mut self, item: Item, out: &mut Vec<u8>) -> usize {
        let index = self.items.push(item);
        self.announce(index, out);
        index
    }

    fn announce(&mut self, index: usize, out: &mut Vec<u8>) {
        let Some(item) = self.items.items.get(index) else { return };
        emit(&mut self.seq, out, Out::ItemAdded { output_index: index, item: item.added() });
    }

    fn item_done(&mut self, index: usize, out: &mut Vec<u8>) {
        let Some(item) = self.items.items.get(index) else { return };
        emit(&mut self.seq, out, Out::ItemDone { output_index: index, item: item.done() });
    }

    /// Finishes the open message item, if any.
    fn close_message(&mut self, out: &mut Vec<u8>) {
        if let Some(index) = self.message.take() {
            let texts: Vec<u32> =
                self.slots.iter().filter(|s| s.open && s.item == Some(index)).map(|s| s.source).collect();
            for source in texts {
                self.stop(source, out);
            }
            self.item_done(index, out);
        }
    }

    /// Opens a block for the decoder's `source` index.
    fn open(&mut self, source: u32, block: &BlockStart, out: &mut Vec<u8>) {
        self.stop(source, out);
        let (kind, item) = match block {
            BlockStart::Text => {
                let index = match self.message {
                    Some(index) => index,
                    None => {
                        let item = Item::Message { id: self.items.next_id("msg"), texts: Vec::new() };
                        let index = self.add_item(item, out);
                        self.message = Some(index);
                        index
                    }
                };
                let mut part = 0;
                if let Some(Item::Message { texts, .. }) = self.items.items.get_mut(index) {
                    texts.push(String::new());
                    part = texts.len().saturating_sub(1);
                }
                self.slots.push(Slot { source, item: Some(index), part, kind: Kind::Text, open: true });
                let item_id = self.item_id(index);
                self.write(
                    out,
                    Out::PartAdded {
                        item_id: &item_id,
                        output_index: index,
                        content_index: part,
                        part: TextJson::new(""),
                    },
                );
                return;
            }
            BlockStart::ToolCall { id, name, kind } => (
                Kind::Call,
                Some(Item::Call {
                    id: self.items.next_id(call_prefix(*kind)),
                    call_id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                    kind: *kind,
                }),
            ),
            BlockStart::Reasoning => (
                Kind::Reasoning,
                Some(Item::Reasoning { id: self.items.next_id("rs"), summary: Some(String::new()), encrypted: None }),
            ),
            BlockStart::RedactedReasoning { data } => (
                Kind::Whole,
                Some(Item::Reasoning {
                    id: self.items.next_id("rs"),
                    summary: None,
                    encrypted: Some(data.to_client_string(Family::OpenAi)),
                }),
            ),
            BlockStart::Unknown { family: Family::OpenAi, raw } => (Kind::Whole, Some(Item::Raw(raw.clone()))),
            BlockStart::Unknown { .. } => (Kind::Whole, None),
        };
        let Some(item) = item else {
            self.slots.push(Slot { source, item: None, part: 0, kind, open: true });
            return;
        };
        self.close_message(out);
        let index = self.add_item(item, out);
        self.slots.push(Slot { source, item: Some(index), part: 0, kind, open: true });
        if kind == Kind::Reasoning {
            let item_id = self.item_id(index);
            self.write(
                out,
                Out::SummaryAdded {
                    item_id: &item_id,
                    output_index: index,
                    summary_index: 0,
                    part: SummaryJson::new(""),
                },
            );
        }
    }

    fn item_id(&self, index: usize) -> String {
        self.items.items.get(index).map(|i| i.id().to_owned()).unwrap_or_default()
    }

    fn delta(&mut self, source: u32, delta: &Delta, out: &mut Vec<u8>) {
        let found = self.slots.iter().rev().find(|s| s.source == source).map(|s| (s.open, s.item, s.part, s.kind));
        let (index, part) = match found {
            Some((true, None, _, _)) => return,
            Some((true, Some(index), part, kind)) if kind.accepts(delta) => (index, part),
            _ => {
                let start = match delta {
                    Delta::Text(_) | Delta::Citation(_) => BlockStart::Text,
                    Delta::Reasoning(_) | Delta::Signature(_) => BlockStart::Reasoning,
                    Delta::ToolArguments(_) => return,
                };
                self.open(source, &start, out);
                match self.slots.last() {
                    Some(Slot { item: Some(index), part, .. }) => (*index, *part),
                    _ => return,
                }
            }
        };
        // The delta events are most of a stream: written by hand (see [`write_delta`]), the item
        // id borrowed from the item whose text grows.
        let seq = &mut self.seq;
        match (delta, self.items.items.get_mut(index)) {
            (Delta::Text(text), Some(Item::Message { id, texts })) => {
                if let Some(t) = texts.get_mut(part) {
                    t.push_str(text);
                }
                write_delta(seq, out, DeltaKind::Text, id, index, Some(part), text);
            }
            (Delta::ToolArguments(json), Some(Item::Call { id, arguments, kind, .. })) => {
                arguments.push_str(json);
                let event = match kind {
                    ToolKind::Function => DeltaKind::Arguments,
                    ToolKind::Custom => DeltaKind::Input,
                };
                write_delta(seq, out, event, id, index, None, json);
            }
            (Delta::Reasoning(text), Some(Item::Reasoning { id, summary, .. })) => {
                summary.get_or_insert_with(String::new).push_str(text);
                write_delta(seq, out, DeltaKind::Summary, id, index, Some(0), text);
            }
            (Delta::Signature(signature), Some(Item::Reasoning { encrypted, .. })) => {
                *encrypted = Some(signature.to_client_string(Family::OpenAi));
            }
            // Citations have no place in `annotations` yet; other pairs cannot occur.
            _ => {}
        }
    }

    /// Stops the decoder's block `source` if it is open.
    fn stop(&mut self, source: u32, out: &mut Vec<u8>) {
        let Some(slot) = self.slots.iter_mut().rev().find(|s| s.source == source && s.open) else { return };
        slot.open = false;
        let (kind, part) = (slot.kind, slot.part);
        let Some(index) = slot.item else { return };
        let Some(item) = self.items.items.get(index) else { return };
        let item_id = item.id().to_owned();
        match (kind, item) {
            (Kind::Text, Item::Message { texts, .. }) => {
                let text = texts.get(part).map(String::as_str).unwrap_or("");
                emit(
                    &mut self.seq,
                    out,
                    Out::TextDone { item_id: &item_id, output_index: index, content_index: part, text, logprobs: [] },
                );
                emit(
                    &mut self.seq,
                    out,
                    Out::PartDone {
                        item_id: &item_id,
                        output_index: index,
                        content_index: part,
                        part: TextJson::new(text),
                    },
                );
                // The message stays open for the next text block.
                return;
            }
            (Kind::Call, Item::Call { arguments, kind: ToolKind::Function, .. }) => {
                emit(&mut self.seq, out, Out::ArgumentsDone { item_id: &item_id, output_index: index, arguments });
            }
            (Kind::Call, Item::Call { arguments, kind: ToolKind::Custom, .. }) => {
                emit(&mut self.seq, out, Out::InputDone { item_id: &item_id, output_index: index, input: arguments });
            }
            (Kind::Reasoning, Item::Reasoning { summary, .. }) => {
                let text = summary.as_deref().unwrap_or("");
                emit(
                    &mut self.seq,
                    out,
                    Out::SummaryTextDone { item_id: &item_id, output_index: index, summary_index: 0, text },
                );
                emit(
                    &mut self.seq,
                    out,
                    Out::SummaryDone {
                        item_id: &item_id,
                        output_index: index,
                        summary_index: 0,
                        part: SummaryJson::new(text),
                    },
                );
            }
            _ => {}
        }
        self.item_done(index, out);
    }

    fn stop_all(&mut self, out: &mut Vec<u8>) {
        let open: Vec<u32> = self.slots.iter().filter(|s| s.open).map(|s| s.source).collect();
        for source in open {
            self.stop(source, out);
        }
        self.close_message(out);
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        self.ensure_started(out);
        self.stop_all(out);
        let response = ResponseJson::new(&self.id, self.created_at, &self.model, "completed").finished(
            &self.items,
            self.finish.as_ref(),
            &self.usage,
        );
        let event = match response.status {
            "incomplete" => Out::Incomplete { response },
            _ => Out::Completed { response },
        };
        emit(&mut self.seq, out, event);
        self.done = true;
    }

    fn fail(&mut self, error: &ProviderError, out: &mut Vec<u8>) {
        self.ensure_started(out);
        let message = error_message(error);
        let kind = error.code.as_deref().unwrap_or_else(|| error_type(error)).to_owned();
        self.write(out, Out::Error { code: &kind, message: &message, param: None });
        let mut response = ResponseJson::new(&self.id, self.created_at, &self.model, "failed");
        response.error = Some(ResponseError { code: failure_code(error), message: &message });
        response.output = self.items.items.iter().map(Item::done).collect();
        emit(&mut self.seq, out, Out::Failed { response });
        self.done = true;
    }
}

impl ClientEncoder for ResponsesEncoder {
    fn encode_response(&mut self, response: &Response) -> Vec<u8> {
        response::encode(response, &self.model, &self.fallback_id, self.created_at)
    }

    fn encode_error(&self, error: &ProviderError) -> Vec<u8> {
        response::encode_error(error)
    }

    fn encode_events(&mut self, events: &[Event], out: &mut Vec<u8>) {
        for event in events {
            if self.done {
                return;
            }
            match event {
                Event::Start { id, .. } => {
                    if !self.started {
                        self.start(id.as_deref(), out);
                    }
                }
                Event::BlockStart { index, block } => {
                    self.ensure_started(out);
                    self.open(*index, block, out);
                }
                Event::Delta { index, delta } => {
                    self.ensure_started(out);
                    self.delta(*index, delta, out);
                }
                Event::BlockStop { index } => self.stop(*index, out),
                Event::Usage(usage) => self.usage = self.usage.merge(*usage),
                Event::Finish(reason) => {
                    self.finish = Some(reason.clone());
                    self.stop_all(out);
                }
                Event::End => self.end(out),
                Event::Error(error) => self.fail(error, out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What `write_delta` replaced: the serde frame of the same event.
    fn reference(seq: u64, event: Out<'_>) -> Vec<u8> {
        let mut seq = seq;
        let mut out = Vec::new();
        emit(&mut seq, &mut out, event);
        out
    }

    fn written(seq: u64, kind: DeltaKind, item_id: &str, index: usize, part: Option<usize>, delta: &str) -> Vec<u8> {
        let mut seq = seq;
        let mut out = Vec::new();
        write_delta(&mut seq, &mut out, kind, item_id, index, part, delta);
        out
    }

    fn all_match(seq: u64, item_id: &str, index: usize, part: usize, delta: &str) {
        let cases = [
            (
                written(seq, DeltaKind::Text, item_id, index, Some(part), delta),
                Out::TextDelta { item_id, output_index: index, content_index: part, delta, logprobs: [] },
            ),
            (
                written(seq, DeltaKind::Arguments, item_id, index, None, delta),
                Out::ArgumentsDelta { item_id, output_index: index, delta },
            ),
            (
                written(seq, DeltaKind::Input, item_id, index, None, delta),
                Out::InputDelta { item_id, output_index: index, delta },
            ),
            (
                written(seq, DeltaKind::Summary, item_id, index, Some(part), delta),
                Out::SummaryDelta { item_id, output_index: index, summary_index: part, delta },
            ),
        ];
        for (ours, event) in cases {
            let expected = reference(seq, event);
            assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&expected));
            // And as a client reads it: one event, one data line that parses to the same JSON.
            let text = std::str::from_utf8(&ours).unwrap();
            let data = text.lines().nth(1).unwrap().strip_prefix("data: ").unwrap();
            let parsed: serde_json::Value = serde_json::from_str(data).unwrap();
            assert_eq!(parsed["delta"], delta);
            assert_eq!(parsed["sequence_number"], seq);
        }
    }

    #[test]
    fn control_characters_quotes_unicode_and_edge_numbers() {
        let tricky: String = (0u8..0x20).map(char::from).chain("\"\\/\u{7f}é😀\u{2028}\u{fffd}".chars()).collect();
        all_match(0, "msg_x_0", 0, 0, &tricky);
        all_match(u64::MAX, &tricky, usize::MAX, usize::MAX, "");
        all_match(41, "fc_\"q\"_1", 3, 2, "{\"city\": \"Paris\"}\n");
    }

    #[test]
    fn the_sequence_number_moves_on() {
        let mut seq = 7;
        let mut out = Vec::new();
        write_delta(&mut seq, &mut out, DeltaKind::Text, "m", 0, Some(0), "a");
        write_delta(&mut seq, &mut out, DeltaKind::Text, "m", 0, Some(0), "b");
        assert_eq!(seq, 9);
    }

    proptest! {
        #[test]
        fn any_strings_and_numbers_match_serde(item_id in any::<String>(), delta in any::<String>(),
                                               seq in any::<u64>(), index in any::<usize>(), part in any::<usize>()) {
            all_match(seq, &item_id, index, part, &delta);
        }

        /// Deltas as they come out of a provider's JSON: any escape, lone surrogates included
        /// (serde_json reads those as U+FFFD).
        #[test]
        fn decoded_json_escapes_match_serde(units in proptest::collection::vec(any::<u16>(), 0..24)) {
            let escaped: String = units.iter().map(|u| format!("\\u{u:04x}")).collect();
            let decoded: String = serde_json::from_str(&format!("\"{escaped}\"")).unwrap_or_default();
            all_match(1, "msg_1_0", 0, 0, &decoded);
        }
    }
}
