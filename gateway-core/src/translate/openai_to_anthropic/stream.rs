//! Anthropic Messages SSE → OpenAI `chat.completion.chunk` SSE, event by event as chunks arrive.
//!
//! | Anthropic event | OpenAI output |
//! |---|---|
//! | `message_start` | role chunk (`{"role":"assistant","content":""}`); id, model, input usage kept |
//! | `content_block_start` text / thinking | a content / reasoning chunk only if the block starts with text |
//! | `content_block_start` tool_use | first tool-call chunk: `index` (tool calls counted from 0), id, name, `arguments: ""` |
//! | `content_block_delta` | `text_delta` → `content`; `input_json_delta` → tool-call `arguments` (same index); `thinking_delta` → `reasoning_content`; `signature_delta` dropped |
//! | `content_block_stop`, `ping`, unknown types | nothing |
//! | `message_delta` | empty delta with `finish_reason`; cumulative usage kept |
//! | `message_stop` | usage chunk (`choices: []`) if the client set `stream_options.include_usage`, then `data: [DONE]` |
//! | `error` | `data: {"error":{...}}` in OpenAI's shape, then `data: [DONE]` |
//!
//! If the upstream stream ends without `message_stop`: when `message_delta` had already delivered
//! the finish reason, the answer is complete and the stream is closed normally (usage chunk if
//! asked, `[DONE]`); otherwise the answer was cut off, and the client gets an error chunk
//! (`server_error`, code `incomplete_stream`) and `[DONE]`, so it never mistakes a truncated answer
//! for a whole one. Events after the end are ignored.

use super::response::{finish_reason, openai_error_type, UsageCounts};
use crate::api::anthropic::{BlockType, DeltaType, EventType, StreamEvent};
use crate::sse::{utf8_lossy, SseFramer};
use crate::translate::anthropic_delta::{self, DeltaKind};
use crate::translate::openai_chunks::{write_done, write_error, ChunkWriter};
use crate::usage::TokenUsage;

/// Per-response streaming state.
#[derive(Debug)]
pub struct StreamTranslator {
    framer: SseFramer,
    created: u64,
    include_usage: bool,
    /// Labelled with `message_start`'s id and model once it arrives.
    chunks: ChunkWriter,
    /// (Anthropic content block index, OpenAI tool call index) of every tool_use block so far.
    tool_blocks: Vec<(u64, u32)>,
    counts: UsageCounts,
    finish: Option<&'static str>,
    done: bool,
    /// `message_start`'s model.
    response_model: Option<String>,
    /// Off only in tests, which compare the fast path with the general one.
    fast_path: bool,
}

impl StreamTranslator {
    /// `include_usage` is the client's `stream_options.include_usage`.
    pub fn new(created: u64, include_usage: bool) -> Self {
        StreamTranslator {
            framer: SseFramer::default(),
            created,
            include_usage,
            chunks: ChunkWriter::new("", "", created),
            tool_blocks: Vec::new(),
            counts: UsageCounts::default(),
            finish: None,
            done: false,
            response_model: None,
            fast_path: true,
        }
    }

    /// Translates the events `chunk` completes; at the end of the stream, also closes it.
    pub fn push(&mut self, chunk: &[u8], end_of_stream: bool) -> Vec<u8> {
        // An OpenAI chunk repeats id, model and created time: room for them up front saves a
        // reallocation per chunk.
        let mut out = Vec::with_capacity(chunk.len() + chunk.len() / 2 + 256);
        // The framer lends each event out of its own buffers; it is moved out for the call so
        // that the callback can borrow the rest of the translator.
        let mut framer = std::mem::take(&mut self.framer);
        // An oversized event is dropped by the framer and the stream goes on without it.
        let _ = framer.push_each_raw(chunk, |_, data| self.on_raw_event(data, &mut out));
        if end_of_stream {
            framer.finish_each_raw(|_, data| self.on_raw_event(data, &mut out));
        }
        self.framer = framer;
        if end_of_stream && !self.done {
            if self.finish.is_some() {
                self.close(&mut out);
            } else {
                self.fail(
                    &mut out,
                    "The provider's stream ended before the answer was complete.",
                    "server_error",
                    Some("incomplete_stream"),
                );
            }
        }
        out
    }

    /// Tokens known so far: input from `message_start`, output from `message_delta`.
    pub fn usage(&self) -> TokenUsage {
        self.counts.to_token_usage()
    }

    /// The model `message_start` named.
    pub fn response_model(&self) -> Option<&str> {
        self.response_model.as_deref()
    }

    /// Text and thinking deltas, nearly every event of a stream, go from the event's bytes to the
    /// chunk with their escaped text copied as is (`anthropic_delta`); the rest is parsed.
    fn on_raw_event(&mut self, data: &[u8], out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        if self.fast_path {
            if let Some(delta) = anthropic_delta::scan(data) {
                match delta.kind {
                    _ if delta.escaped.is_empty() => {}
                    DeltaKind::Text => self.chunks.content_escaped(out, delta.escaped),
                    DeltaKind::Thinking => self.chunks.reasoning_escaped(out, delta.escaped),
                }
                return;
            }
        }
        self.on_event(&utf8_lossy(data), out);
    }

    fn on_event(&mut self, data: &str, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        // Anthropic names the event twice (SSE `event:` and the data's `type`); the data is what
        // carries the content, so it is the one trusted. Unreadable events are skipped.
        let Ok(event) = serde_json::from_slice::<StreamEvent<'_>>(data.as_bytes()) else { return };
        match event.kind {
            EventType::MessageStart => {
                if let Some(message) = &event.message {
                    self.chunks.set(&message.id, &message.model, self.created);
                    self.response_model = super::super::response_model_str(&message.model);
                    if let Some(usage) = &message.usage {
                        self.counts.update(usage);
                    }
                }
                self.chunks.role(out, 0);
            }
            EventType::ContentBlockStart => {
                let (Some(block), Some(index)) = (&event.content_block, event.index) else { return };
                match block.kind {
                    BlockType::Text => {
                        if let Some(text) = block.text.as_deref().filter(|t| !t.is_empty()) {
                            self.chunks.content(out, 0, text);
                        }
                    }
                    BlockType::Thinking => {
                        if let Some(text) = block.thinking.as_deref().filter(|t| !t.is_empty()) {
                            self.chunks.reasoning(out, 0, text);
                        }
                    }
                    BlockType::ToolUse => {
                        let tool_index = u32::try_from(self.tool_blocks.len()).unwrap_or(u32::MAX);
                        self.tool_blocks.push((index, tool_index));
                        let (id, name) =
                            (block.id.as_deref().unwrap_or_default(), block.name.as_deref().unwrap_or_default());
                        self.chunks.tool_call_start(out, 0, tool_index, id, name, "");
                    }
                    BlockType::RedactedThinking | BlockType::Other => {}
                }
            }
            EventType::ContentBlockDelta => {
                let (Some(delta), Some(index)) = (&event.delta, event.index) else { return };
                match delta.kind {
                    Some(DeltaType::TextDelta) => {
                        if let Some(text) = delta.text.as_deref().filter(|t| !t.is_empty()) {
                            self.chunks.content(out, 0, text);
                        }
                    }
                    Some(DeltaType::ThinkingDelta) => {
                        if let Some(text) = delta.thinking.as_deref().filter(|t| !t.is_empty()) {
                            self.chunks.reasoning(out, 0, text);
                        }
                    }
                    Some(DeltaType::InputJsonDelta) => {
                        let json = delta.partial_json.as_deref().unwrap_or_default();
                        let tool = self.tool_blocks.iter().find(|(block, _)| *block == index).map(|(_, tool)| *tool);
                        if let (Some(tool_index), false) = (tool, json.is_empty()) {
                            self.chunks.tool_call_args(out, 0, tool_index, json);
                        }
                    }
                    Some(DeltaType::SignatureDelta) | Some(DeltaType::Other) | None => {}
                }
            }
            EventType::MessageDelta => {
                if let Some(usage) = &event.usage {
                    self.counts.update(usage);
                }
                if let Some(reason) = event.delta.as_ref().and_then(|d| d.stop_reason.as_deref()) {
                    let reason = finish_reason(reason);
                    self.finish = Some(reason);
                    self.chunks.finish(out, 0, reason);
                }
            }
            EventType::MessageStop => self.close(out),
            EventType::Error => {
                let (message, kind) = match &event.error {
                    Some(e) => (&*e.message, &*e.kind),
                    None => ("The provider reported an error.", ""),
                };
                let code = (!kind.is_empty()).then_some(kind);
                self.fail(out, message, openai_error_type(kind, 500), code);
            }
            EventType::ContentBlockStop | EventType::Ping | EventType::Other => {}
        }
    }

    /// The normal end: optional usage chunk, then `[DONE]`.
    fn close(&mut self, out: &mut Vec<u8>) {
        if self.include_usage {
            self.chunks.usage(out, &self.counts.to_openai());
        }
        write_done(out);
        self.done = true;
    }

    /// An error end: OpenAI-shaped error event, then `[DONE]`.
    fn fail(&mut self, out: &mut Vec<u8>, message: &str, kind: &str, code: Option<&str>) {
        write_error(out, message, kind, code);
        self.done = true;
    }
}

/// The recorded exchanges, shared with the integration tests.
#[cfg(test)]
#[path = "../../../tests/common/mod.rs"]
mod recordings;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    /// Feeds `chunks` (the last one ends the stream) with or without the fast path.
    fn run(chunks: &[&[u8]], fast_path: bool) -> Vec<u8> {
        let mut t = StreamTranslator::new(7, true);
        t.fast_path = fast_path;
        let mut out = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            out.extend_from_slice(&t.push(chunk, i + 1 == chunks.len()));
        }
        out
    }

    /// The events of an SSE body, each with its blank line.
    fn events(body: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        let mut rest = body;
        while let Some(end) = rest.windows(2).position(|w| w == b"\n\n") {
            out.push(&rest[..end + 2]);
            rest = &rest[end + 2..];
        }
        if !rest.is_empty() {
            out.push(rest);
        }
        out
    }

    #[test]
    fn fast_path_writes_the_general_paths_bytes_for_every_recorded_stream() {
        let Some(all) = recordings::load() else { return };
        let mut streams = 0;
        for body in all.iter().filter(|i| i.is_sse()).map(|i| i.body.as_slice()) {
            streams += 1;
            let general = run(&[body], false);
            assert_eq!(run(&[body], true), general);
            let events = events(body);
            assert_eq!(run(&events, true), general, "one chunk per event");
            // Every event cut at every byte, after the `message_start` that labels the chunks.
            let start = events.first().copied().unwrap_or_default();
            for event in &events {
                for cut in 0..=event.len() {
                    let chunks = [start, &event[..cut], &event[cut..]];
                    assert_eq!(run(&chunks, true), run(&chunks, false), "{}", String::from_utf8_lossy(event));
                }
            }
        }
        assert!(streams > 0);
    }

    /// `text` in a JSON string the way ASCII-only encoders write it (`\u` for everything else).
    fn ascii_json(text: &str) -> String {
        let mut out = String::from("\"");
        for c in text.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '/' => out.push_str("\\/"),
                ' '..='~' => out.push(c),
                _ => {
                    for unit in c.encode_utf16(&mut [0; 2]) {
                        out.push_str(&format!("\\u{unit:04X}"));
                    }
                }
            }
        }
        out.push('"');
        out
    }

    /// One delta event carrying `text`, encoded as `layout` says, cut at `cut`: the fast path
    /// must write what the general one writes.
    fn same_bytes(text: &str, thinking: bool, layout: usize, raw_byte: u8, cut: usize) {
        let (kind, key) = if thinking { ("thinking_delta", "thinking") } else { ("text_delta", "text") };
        let string = match layout {
            // A byte as it is at the start of the text: a control character or invalid UTF-8
            // the general path must be the one to refuse.
            3 => {
                let mut s = serde_json::to_string(text).unwrap().into_bytes();
                s.insert(1, raw_byte);
                s
            }
            2 => ascii_json(text).into_bytes(),
            _ => serde_json::to_string(text).unwrap().into_bytes(),
        };
        let (head, tail) = match layout {
            1 => (
                format!(r#"{{"delta":{{"{key}":"#),
                format!(r#","type":"{kind}"}},"index":3,"type":"content_block_delta"}}"#),
            ),
            _ => (
                format!(r#"{{"type":"content_block_delta","index":3,"delta":{{"type":"{kind}","{key}":"#),
                "}      }".to_owned(),
            ),
        };
        let start = format!("event: message_start\ndata: {}\n\n", start(1, 0));
        let mut event = b"event: content_block_delta\ndata: ".to_vec();
        event.extend_from_slice(head.as_bytes());
        event.extend_from_slice(&string);
        event.extend_from_slice(tail.as_bytes());
        event.extend_from_slice(b"\n\n");
        let cut = cut % (event.len() + 1);
        let chunks = [start.as_bytes(), &event[..cut], &event[cut..]];
        assert_eq!(run(&chunks, true), run(&chunks, false), "{}", String::from_utf8_lossy(&event));
    }

    #[test]
    fn fast_path_writes_the_general_paths_bytes_for_every_escape() {
        let texts =
            ["", "plain", "\"q\" \\ / \n\r\t\u{8}\u{c}", "\u{0}\u{1}\u{1f}\u{7f}", "é😀\u{2028}\u{fffd}", "a/b"];
        for text in texts {
            for thinking in [false, true] {
                for layout in 0..4 {
                    for raw_byte in [0, b'\t', b'"', b'\\', b'a', 0x7f, 0x80, 0xff] {
                        // Every cut point of the event (none is longer than 200 bytes).
                        for cut in 0..200 {
                            same_bytes(text, thinking, layout, raw_byte, cut);
                        }
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn fast_path_writes_the_general_paths_bytes_for_any_text(
            text in any::<String>(),
            thinking in any::<bool>(),
            layout in 0..4usize,
            raw_byte in any::<u8>(),
            cut in any::<usize>(),
        ) {
            same_bytes(&text, thinking, layout, raw_byte, cut);
        }
    }

    fn sse(events: &[Value]) -> String {
        events.iter().map(|e| format!("event: {}\ndata: {}\n\n", e["type"].as_str().unwrap(), e)).collect()
    }

    /// The JSON payloads of the output (`[DONE]` as a string).
    fn payloads(out: &[u8]) -> Vec<Value> {
        let text = std::str::from_utf8(out).unwrap();
        text.split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                let data = e.strip_prefix("data: ").unwrap();
                if data == "[DONE]" {
                    Value::String(data.into())
                } else {
                    serde_json::from_slice(data.as_bytes()).unwrap()
                }
            })
            .collect()
    }

    fn start(input: u64, cache_read: u64) -> Value {
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x", "content": [], "stop_reason": null,
            "usage": {"input_tokens": input, "cache_read_input_tokens": cache_read, "cache_creation_input_tokens": 0, "output_tokens": 1}}})
    }

    fn tool_stream() -> Vec<Value> {
        vec![
            start(10, 4),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "ping"}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Checking."}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_a", "name": "get", "input": {}}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": "}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "\"Paris\"}"}}),
            json!({"type": "content_block_stop", "index": 1}),
            json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_b", "name": "get", "input": {}}}),
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
            json!({"type": "content_block_stop", "index": 2}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 30}}),
            json!({"type": "message_stop"}),
        ]
    }

    #[test]
    fn text_and_tool_calls_with_usage_chunk() {
        let mut t = StreamTranslator::new(123, true);
        let out = payloads(&t.push(sse(&tool_stream()).as_bytes(), true));
        let deltas: Vec<&Value> = out.iter().filter_map(|c| c.get("choices")?.get(0)).collect();
        assert_eq!(deltas[0]["delta"], json!({"role": "assistant", "content": ""}));
        assert_eq!(out[0]["id"], "msg_1");
        assert_eq!(out[0]["model"], "claude-x");
        assert_eq!(out[0]["created"], 123);
        assert_eq!(out[0]["object"], "chat.completion.chunk");
        assert_eq!(deltas[1]["delta"], json!({"content": "Checking."}));
        assert_eq!(
            deltas[2]["delta"],
            json!({"tool_calls": [{"index": 0, "id": "toolu_a", "type": "function", "function": {"name": "get", "arguments": ""}}]})
        );
        assert_eq!(deltas[3]["delta"], json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\": "}}]}));
        assert_eq!(deltas[4]["delta"], json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}));
        assert_eq!(deltas[5]["delta"]["tool_calls"][0]["index"], 1);
        assert_eq!(deltas[5]["delta"]["tool_calls"][0]["id"], "toolu_b");
        assert_eq!(deltas[6]["delta"], json!({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}));
        assert_eq!(deltas[7]["delta"], json!({}));
        assert_eq!(deltas[7]["finish_reason"], "tool_calls");
        assert_eq!(deltas.len(), 8);
        let usage_chunk = &out[out.len() - 2];
        assert_eq!(usage_chunk["choices"], json!([]));
        assert_eq!(
            usage_chunk["usage"],
            json!({"prompt_tokens": 14, "completion_tokens": 30, "total_tokens": 44, "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 0}})
        );
        assert_eq!(out.last().unwrap(), "[DONE]");
        assert_eq!(t.usage(), TokenUsage { input: 14, output: 30, cache_read: 4, cache_creation: 0, reasoning: 0 });
    }

    #[test]
    fn no_usage_chunk_unless_asked_and_usage_known_early() {
        let events = tool_stream();
        let mut t = StreamTranslator::new(0, false);
        let first = t.push(sse(&events[..1]).as_bytes(), false);
        assert_eq!(payloads(&first).len(), 1, "role chunk goes out as soon as message_start is complete");
        assert_eq!(t.usage().input, 14, "input usage known from message_start");
        let out = payloads(&t.push(sse(&events[1..]).as_bytes(), true));
        assert!(out.iter().all(|c| c.get("usage").is_none()));
        assert_eq!(out.last().unwrap(), "[DONE]");
    }

    #[test]
    fn thinking_deltas_become_reasoning_content() {
        let events = [
            start(1, 0),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me think"}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "abc"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 9}}),
            json!({"type": "message_stop"}),
        ];
        let out = payloads(&StreamTranslator::new(0, false).push(sse(&events).as_bytes(), true));
        assert_eq!(out[1]["choices"][0]["delta"], json!({"reasoning_content": "Let me think"}));
        assert_eq!(out[2]["choices"][0]["finish_reason"], "length");
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn error_event_becomes_openai_error_then_done_and_later_events_ignored() {
        let events = [
            start(1, 0),
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": "late"}}),
        ];
        let out = payloads(&StreamTranslator::new(0, true).push(sse(&events).as_bytes(), true));
        assert_eq!(out.len(), 3);
        assert_eq!(
            out[1],
            json!({"error": {"message": "Overloaded", "type": "server_error", "param": null, "code": "overloaded_error"}})
        );
        assert_eq!(out[2], "[DONE]");
    }

    #[test]
    fn stream_cut_before_finish_ends_with_an_error_and_after_finish_normally() {
        let events = tool_stream();
        let out = payloads(&StreamTranslator::new(0, false).push(sse(&events[..4]).as_bytes(), true));
        assert_eq!(out[out.len() - 2]["error"]["code"], "incomplete_stream");
        assert_eq!(out.last().unwrap(), "[DONE]");
        let n = events.len();
        let out = payloads(&StreamTranslator::new(0, true).push(sse(&events[..n - 1]).as_bytes(), true));
        assert_eq!(out[out.len() - 2]["usage"]["completion_tokens"], 30);
        assert_eq!(out.last().unwrap(), "[DONE]");
        let out = payloads(&StreamTranslator::new(0, false).push(b"", true));
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn unknown_and_garbage_events_are_ignored() {
        let text = "event: future\ndata: {\"type\":\"future_thing\",\"x\":1}\n\ndata: not json\n\n: comment\n\n";
        let mut t = StreamTranslator::new(0, false);
        assert!(t.push(text.as_bytes(), false).is_empty());
    }
}
