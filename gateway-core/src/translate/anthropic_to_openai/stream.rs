//! OpenAI `chat.completion.chunk` SSE → Anthropic Messages SSE, event by event as chunks arrive.
//!
//! | OpenAI chunk | Anthropic output |
//! |---|---|
//! | first chunk | `message_start` (id, model, zero usage: OpenAI reports usage only at the end) |
//! | `delta.reasoning_content` | a `thinking` block (`content_block_start` when it opens) and `thinking_delta` |
//! | `delta.content`, `delta.refusal` | a `text` block and `text_delta` |
//! | `delta.tool_calls[i]` with an id | closes the open block, `content_block_start` tool_use (id, name, `input: {}`) |
//! | `delta.tool_calls[i].function.arguments` | `input_json_delta` on that tool's block index |
//! | `finish_reason` | remembered for `message_delta` |
//! | usage chunk (`choices: []`, requested by the gateway) | remembered for `message_delta` |
//! | `[DONE]` | `content_block_stop` of the open block, `message_delta` (stop reason, full usage), `message_stop` |
//! | `{"error":{...}}` | an Anthropic `error` event; the stream ends there |
//!
//! Block indexes count every block of the message from 0 in order of appearance, as Anthropic
//! numbers them; exactly one block is open at a time. A stream that ends without `[DONE]` is
//! closed normally if the finish reason arrived, else with an `error` event (`api_error`), so a
//! truncated answer never looks complete.

use std::borrow::Cow;

use super::response::{stop_reason, usage_out};
use crate::api::anthropic::{BlockOut, DeltaOut, ErrorOut, MessageDeltaOut, MessageOut, StreamEventOut, UsageOut};
use crate::api::openai::{ProviderCompletion, ProviderUsage};
use crate::sse::{write_event, SseEvent, SseFramer};
use crate::usage::TokenUsage;

/// The kind of the block currently open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    Tool,
}

/// Per-response streaming state.
#[derive(Debug, Default)]
pub struct StreamTranslator {
    framer: SseFramer,
    events: Vec<SseEvent>,
    started: bool,
    id: String,
    model: String,
    /// The open block and its index.
    open: Option<(Open, u32)>,
    next_index: u32,
    /// (OpenAI tool-call index, Anthropic block index) of every tool call so far.
    tools: Vec<(u32, u32)>,
    stop: Option<&'static str>,
    refused: bool,
    usage: ProviderUsage,
    done: bool,
}

impl StreamTranslator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Translates the events `chunk` completes; at the end of the stream, also closes it.
    pub fn push(&mut self, chunk: &[u8], end_of_stream: bool) -> Vec<u8> {
        let mut events = std::mem::take(&mut self.events);
        // An oversized event is dropped by the framer and the stream goes on without it.
        let _ = self.framer.push(chunk, &mut events);
        if end_of_stream {
            self.framer.finish(&mut events);
        }
        let mut out = Vec::with_capacity(chunk.len() + 128);
        for event in events.drain(..) {
            self.on_event(&event.data, &mut out);
        }
        self.events = events;
        if end_of_stream && !self.done {
            if self.stop.is_some() {
                self.close(&mut out);
            } else {
                self.fail(&mut out, "api_error", "The provider's stream ended before the answer was complete.");
            }
        }
        out
    }

    /// Tokens counted so far (known once the usage chunk arrived).
    pub fn usage(&self) -> TokenUsage {
        self.usage.to_token_usage()
    }

    /// The model the provider's first chunk named.
    pub fn response_model(&self) -> Option<&str> {
        super::super::reportable_model(&self.model).then_some(self.model.as_str())
    }

    fn on_event(&mut self, data: &str, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        if data.trim() == "[DONE]" {
            self.close(out);
            return;
        }
        let Ok(chunk) = serde_json::from_slice::<ProviderCompletion<'_>>(data.as_bytes()) else { return };
        if let Some(error) = &chunk.error {
            let message = if error.message.is_empty() { "The provider reported an error." } else { &*error.message };
            self.fail(out, "api_error", message);
            return;
        }
        if !self.started {
            self.id.push_str(&chunk.id);
            self.model.push_str(&chunk.model);
            self.start(out);
        }
        if let Some(usage) = chunk.usage {
            self.usage = usage;
        }
        // The gateway never asks for n > 1: only the first choice exists.
        let Some(choice) = chunk.choices.iter().find(|c| c.index.unwrap_or(0) == 0) else { return };
        if let Some(delta) = &choice.delta {
            if let Some(text) = delta.reasoning_content.as_deref().filter(|t| !t.is_empty()) {
                self.ensure_open(Open::Thinking, out);
                self.delta(out, DeltaOut::ThinkingDelta { thinking: text });
            }
            if let Some(text) = delta.content.as_deref().filter(|t| !t.is_empty()) {
                self.ensure_open(Open::Text, out);
                self.delta(out, DeltaOut::TextDelta { text });
            }
            if let Some(text) = delta.refusal.as_deref().filter(|t| !t.is_empty()) {
                self.refused = true;
                self.ensure_open(Open::Text, out);
                self.delta(out, DeltaOut::TextDelta { text });
            }
            for call in delta.tool_calls.iter().flatten() {
                let tool_index = call.index.unwrap_or(0);
                let function = call.function.as_ref();
                let block = match self.tools.iter().find(|(t, _)| *t == tool_index) {
                    Some((_, block)) => *block,
                    None => {
                        self.close_block(out);
                        let index = self.next_index;
                        self.next_index = self.next_index.saturating_add(1);
                        self.tools.push((tool_index, index));
                        self.open = Some((Open::Tool, index));
                        let input = serde_json::from_slice(b"{}");
                        if let Ok(input) = input {
                            let content_block = BlockOut::ToolUse {
                                id: call.id.as_deref().unwrap_or_default(),
                                name: function.and_then(|f| f.name.as_deref()).unwrap_or_default(),
                                input,
                            };
                            write(out, &StreamEventOut::ContentBlockStart { index, content_block });
                        }
                        index
                    }
                };
                if let Some(arguments) = function.and_then(|f| f.arguments.as_deref()).filter(|a| !a.is_empty()) {
                    write(
                        out,
                        &StreamEventOut::ContentBlockDelta {
                            index: block,
                            delta: DeltaOut::InputJsonDelta { partial_json: arguments },
                        },
                    );
                }
            }
        }
        if let Some(reason) = choice.finish_reason.as_deref() {
            self.stop = Some(if self.refused { "refusal" } else { stop_reason(reason) });
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        self.started = true;
        let message = MessageOut {
            id: &self.id,
            kind: "message",
            role: "assistant",
            model: &self.model,
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            usage: UsageOut::default(),
        };
        write(out, &StreamEventOut::MessageStart { message });
    }

    /// Opens a block of `kind` unless one is open already.
    fn ensure_open(&mut self, kind: Open, out: &mut Vec<u8>) {
        if matches!(self.open, Some((open, _)) if open == kind) {
            return;
        }
        self.close_block(out);
        let index = self.next_index;
        self.next_index = self.next_index.saturating_add(1);
        self.open = Some((kind, index));
        let content_block = match kind {
            Open::Thinking => BlockOut::Thinking { thinking: Cow::Borrowed(""), signature: "" },
            _ => BlockOut::Text { text: Cow::Borrowed("") },
        };
        write(out, &StreamEventOut::ContentBlockStart { index, content_block });
    }

    /// A delta for the open block.
    fn delta(&self, out: &mut Vec<u8>, delta: DeltaOut<'_>) {
        if let Some((_, index)) = self.open {
            write(out, &StreamEventOut::ContentBlockDelta { index, delta });
        }
    }

    fn close_block(&mut self, out: &mut Vec<u8>) {
        if let Some((_, index)) = self.open.take() {
            write(out, &StreamEventOut::ContentBlockStop { index });
        }
    }

    /// The normal end: close the open block, the final stop reason and usage, `message_stop`.
    fn close(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.start(out);
        }
        self.close_block(out);
        let delta = MessageDeltaOut { stop_reason: Some(self.stop.unwrap_or("end_turn")), stop_sequence: None };
        write(out, &StreamEventOut::MessageDelta { delta, usage: usage_out(&self.usage) });
        write(out, &StreamEventOut::MessageStop);
        self.done = true;
    }

    /// An error end: Anthropic's `error` event.
    fn fail(&mut self, out: &mut Vec<u8>, kind: &str, message: &str) {
        write(out, &StreamEventOut::Error { error: ErrorOut { kind, message } });
        self.done = true;
    }
}

/// `event: <type>\ndata: <json>\n\n`.
fn write(out: &mut Vec<u8>, event: &StreamEventOut<'_>) {
    // Plain structs of strings and numbers cannot fail to encode; skip the event if one did.
    if let Ok(data) = serde_json::to_string(event) {
        write_event(out, Some(event.name()), &data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn sse(chunks: &[Value]) -> String {
        let mut s: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
        s.push_str("data: [DONE]\n\n");
        s
    }

    fn events(out: &[u8]) -> Vec<(String, Value)> {
        let text = std::str::from_utf8(out).unwrap();
        text.split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                let (name, data) = e.split_once('\n').unwrap();
                let name = name.strip_prefix("event: ").unwrap().to_owned();
                let data: Value = serde_json::from_slice((data.strip_prefix("data: ").unwrap()).as_bytes()).unwrap();
                assert_eq!(data["type"], name.as_str());
                (name, data)
            })
            .collect()
    }

    fn chunk(delta: Value, finish: Option<&str>) -> Value {
        json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    }

    fn tool_stream() -> Vec<Value> {
        vec![
            chunk(json!({"role": "assistant", "content": ""}), None),
            chunk(json!({"reasoning_content": "hm"}), None),
            chunk(json!({"content": "Look"}), None),
            chunk(json!({"content": "ing."}), None),
            chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "get", "arguments": ""}}]}),
                None,
            ),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}), None),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}), None),
            chunk(
                json!({"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "get", "arguments": "{}"}}]}),
                None,
            ),
            chunk(json!({}), Some("tool_calls")),
            json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x", "choices": [],
                "usage": {"prompt_tokens": 50, "completion_tokens": 12, "total_tokens": 62, "prompt_tokens_details": {"cached_tokens": 10}}}),
        ]
    }

    #[test]
    fn text_thinking_and_tools_get_ordered_blocks_and_usage() {
        let mut t = StreamTranslator::new();
        let out = events(&t.push(sse(&tool_stream()).as_bytes(), true));
        let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ]
        );
        assert_eq!(out[0].1["message"]["id"], "chatcmpl-9");
        assert_eq!(out[0].1["message"]["model"], "gpt-x");
        assert_eq!(t.response_model(), Some("gpt-x"));
        assert_eq!(out[0].1["message"]["content"], json!([]));
        assert_eq!(
            out[1].1,
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
        );
        assert_eq!(out[2].1["delta"], json!({"type": "thinking_delta", "thinking": "hm"}));
        assert_eq!(out[4].1["content_block"], json!({"type": "text", "text": ""}));
        assert_eq!(out[4].1["index"], 1);
        assert_eq!(out[6].1["delta"], json!({"type": "text_delta", "text": "ing."}));
        assert_eq!(
            out[8].1,
            json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "call_a", "name": "get", "input": {}}})
        );
        assert_eq!(
            out[9].1,
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"city\":"}})
        );
        assert_eq!(out[12].1["index"], 3);
        assert_eq!(out[13].1["delta"]["partial_json"], "{}");
        assert_eq!(
            out[15].1,
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
            "usage": {"input_tokens": 40, "output_tokens": 12, "cache_read_input_tokens": 10, "cache_creation_input_tokens": 0}})
        );
        assert_eq!(t.usage(), TokenUsage { input: 50, output: 12, cache_read: 10, ..Default::default() });
    }

    #[test]
    fn same_output_however_the_stream_is_split() {
        let text = sse(&tool_stream());
        let whole = StreamTranslator::new().push(text.as_bytes(), true);
        for step in [1, 2, 7, 64] {
            let mut t = StreamTranslator::new();
            let pieces: Vec<&[u8]> = text.as_bytes().chunks(step).collect();
            let mut got = Vec::new();
            for (i, piece) in pieces.iter().enumerate() {
                got.extend(t.push(piece, i + 1 == pieces.len()));
            }
            assert_eq!(got, whole, "step {step}");
        }
    }

    #[test]
    fn error_chunk_and_truncation_end_with_an_error_event() {
        let text = format!(
            "data: {}\n\ndata: {{\"error\":{{\"message\":\"overloaded\",\"type\":\"server_error\"}}}}\n\n",
            chunk(json!({"content": "Hi"}), None)
        );
        let out = events(&StreamTranslator::new().push(text.as_bytes(), true));
        let last = &out.last().unwrap().1;
        assert_eq!(last, &json!({"type": "error", "error": {"type": "api_error", "message": "overloaded"}}));
        assert_eq!(out.iter().filter(|(n, _)| n == "error").count(), 1);

        let cut = format!("data: {}\n\n", chunk(json!({"content": "Hi"}), None));
        let out = events(&StreamTranslator::new().push(cut.as_bytes(), true));
        assert_eq!(out.last().unwrap().0, "error");

        // Finish reason seen but no [DONE]: a complete answer, closed normally.
        let finished = format!("data: {}\n\n", chunk(json!({"content": "Hi"}), Some("length")));
        let out = events(&StreamTranslator::new().push(finished.as_bytes(), true));
        assert_eq!(out[out.len() - 2].1["delta"]["stop_reason"], "max_tokens");
        assert_eq!(out.last().unwrap().0, "message_stop");
    }
}
