//! [`Event`]s → Anthropic SSE, and the [`AnthropicEncoder`] that writes every answer for an
//! Anthropic client.
//!
//! The encoder tolerates decoders that differ from Anthropic's event order: a missing `Start`
//! is synthesised, `Usage` after `Finish` still reaches `message_delta` (which is written at
//! `End`), blocks left open are closed at `Finish`/`End`, a delta for a block that never started
//! (or was stopped) opens a new text or thinking block, and block indexes are renumbered densely
//! in start order, as Anthropic numbers them.
//!
//! `message_start` is written at the first event after `Start` that is not `Usage`, with every
//! count seen until then (Anthropic's own `message_start` carries the prompt's counts): deciding
//! at that event, not at the end of the decoder's batch, keeps the output the same however the
//! provider's stream was cut into chunks.

use serde::Serialize;
use serde_json::value::RawValue;

use super::response::{self, error_type, stop_reason, AnyBlock, Block, Input, MessageJson, UsageJson};
use crate::conversation::bridge::ClientEncoder;
use crate::conversation::{BlockStart, Delta, Event, Family, FinishReason, ProviderError, Response, Usage};
use crate::sse::write_event;

/// Which deltas a block takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Thinking,
    Tool,
    /// Redacted thinking arrives whole.
    Whole,
    /// A Claude block kept whole (server tool use...): Claude's own deltas follow it unchanged.
    Claude,
}

impl Kind {
    fn accepts(self, delta: &Delta) -> bool {
        match self {
            Kind::Text => matches!(delta, Delta::Text(_) | Delta::Citation(_)),
            Kind::Thinking => matches!(delta, Delta::Reasoning(_) | Delta::Signature(_)),
            Kind::Tool => matches!(delta, Delta::ToolArguments(_)),
            Kind::Whole => false,
            Kind::Claude => true,
        }
    }
}

/// One block of the decoder's, and where it went.
#[derive(Debug)]
struct Slot {
    /// The decoder's index.
    source: u32,
    /// The client's index; `None` for a block an Anthropic client cannot hold (dropped).
    out: Option<u32>,
    kind: Kind,
    open: bool,
}

/// A stream event as Anthropic writes it (the SSE `event:` name equals `type`).
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Out<'a> {
    MessageStart { message: MessageJson<'a> },
    ContentBlockStart { index: u32, content_block: AnyBlock<'a> },
    ContentBlockDelta { index: u32, delta: DeltaJson<'a> },
    ContentBlockStop { index: u32 },
    MessageDelta { delta: StopJson<'a>, usage: UsageJson },
    MessageStop,
    Error { error: ErrorJson<'a> },
}

impl Out<'_> {
    fn name(&self) -> &'static str {
        match self {
            Out::MessageStart { .. } => "message_start",
            Out::ContentBlockStart { .. } => "content_block_start",
            Out::ContentBlockDelta { .. } => "content_block_delta",
            Out::ContentBlockStop { .. } => "content_block_stop",
            Out::MessageDelta { .. } => "message_delta",
            Out::MessageStop => "message_stop",
            Out::Error { .. } => "error",
        }
    }
}

/// The `delta` of a `content_block_delta`.
#[derive(Serialize)]
#[serde(tag = "type")]
enum DeltaJson<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "signature_delta")]
    Signature { signature: String },
    #[serde(rename = "citations_delta")]
    Citations { citation: &'a RawValue },
}

/// The `delta` of `message_delta`.
#[derive(Serialize)]
struct StopJson<'a> {
    stop_reason: &'a str,
    stop_sequence: Option<&'a str>,
}

/// The `error` of an `error` event.
#[derive(Serialize)]
struct ErrorJson<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

/// `event: <type>\ndata: <json>\n\n`.
fn write(out: &mut Vec<u8>, event: &Out<'_>) {
    // Strings, numbers and already-valid JSON cannot fail to encode; an event that did is skipped.
    if let Ok(data) = serde_json::to_string(event) {
        write_event(out, Some(event.name()), &crate::sse::compact_json(&data));
    }
}

/// Writes answers for an Anthropic Messages client: JSON bodies, SSE streams and errors. One
/// encoder serves one response.
#[derive(Debug)]
pub struct AnthropicEncoder {
    /// The model the client asked for: every answer names it, whatever the provider's id
    /// (Claude Code drops its thinking blocks from the next turn otherwise).
    model: String,
    /// The message id when the provider gives none.
    fallback_id: String,
    started: bool,
    /// The id of a `Start` seen while `message_start` is not yet written.
    pending_start: Option<Option<String>>,
    done: bool,
    usage: Usage,
    finish: Option<FinishReason>,
    slots: Vec<Slot>,
    next: u32,
}

impl AnthropicEncoder {
    /// An encoder answering as `model` (the client's requested name), with `fallback_id` as the
    /// message id when the provider reports none.
    pub fn new(model: impl Into<String>, fallback_id: impl Into<String>) -> Self {
        AnthropicEncoder {
            model: model.into(),
            fallback_id: fallback_id.into(),
            started: false,
            pending_start: None,
            done: false,
            usage: Usage::default(),
            finish: None,
            slots: Vec::new(),
            next: 0,
        }
    }

    /// Whether the stream has been terminated (`message_stop` or `error` written).
    pub fn finished(&self) -> bool {
        self.done
    }

    fn start(&mut self, id: Option<&str>, out: &mut Vec<u8>) {
        self.started = true;
        let message = MessageJson {
            id: id.filter(|id| !id.is_empty()).unwrap_or(&self.fallback_id),
            kind: "message",
            role: "assistant",
            model: &self.model,
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            usage: UsageJson::from(&self.usage),
        };
        write(out, &Out::MessageStart { message });
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            let id = self.pending_start.take().flatten();
            self.start(id.as_deref(), out);
        }
    }

    /// Opens a block for the decoder's `source` index.
    fn open(&mut self, source: u32, block: &BlockStart, out: &mut Vec<u8>) {
        self.stop(source, out);
        let empty = Input(None);
        let (kind, content_block) = match block {
            BlockStart::Text => (Kind::Text, Some(AnyBlock::Known(Block::Text { text: "", citations: None }))),
            BlockStart::ToolCall { id, name, .. } => {
                (Kind::Tool, Some(AnyBlock::Known(Block::ToolUse { id, name, input: empty })))
            }
            BlockStart::Reasoning => {
                (Kind::Thinking, Some(AnyBlock::Known(Block::Thinking { thinking: "", signature: String::new() })))
            }
            BlockStart::RedactedReasoning { data } => (
                Kind::Whole,
                Some(AnyBlock::Known(Block::RedactedThinking { data: data.to_client_string(Family::Claude) })),
            ),
            BlockStart::Unknown { family: Family::Claude, raw } => (Kind::Claude, Some(AnyBlock::Raw(&raw.0))),
            BlockStart::Unknown { .. } => (Kind::Whole, None),
        };
        let index = content_block.as_ref().map(|_| self.next);
        if let (Some(index), Some(content_block)) = (index, content_block) {
            write(out, &Out::ContentBlockStart { index, content_block });
            self.next = self.next.saturating_add(1);
        }
        self.slots.push(Slot { source, out: index, kind, open: true });
    }

    fn delta(&mut self, source: u32, delta: &Delta, out: &mut Vec<u8>) {
        let slot = self.slots.iter().rev().find(|s| s.source == source);
        let index = match slot {
            Some(slot) if slot.open && slot.out.is_none() => return,
            Some(Slot { open: true, out: Some(index), kind, .. }) if kind.accepts(delta) => *index,
            _ => {
                // No block takes this delta: open one that does, if the delta can start one.
                let start = match delta {
                    Delta::Text(_) | Delta::Citation(_) => BlockStart::Text,
                    Delta::Reasoning(_) | Delta::Signature(_) => BlockStart::Reasoning,
                    Delta::ToolArguments(_) => return,
                };
                self.open(source, &start, out);
                self.next.saturating_sub(1)
            }
        };
        let delta = match delta {
            Delta::Text(text) => DeltaJson::Text { text },
            Delta::ToolArguments(json) => DeltaJson::InputJson { partial_json: json },
            Delta::Reasoning(text) => DeltaJson::Thinking { thinking: text },
            Delta::Signature(signature) => {
                DeltaJson::Signature { signature: signature.to_client_string(Family::Claude) }
            }
            Delta::Citation(citation) => DeltaJson::Citations { citation: &citation.0 },
        };
        write(out, &Out::ContentBlockDelta { index, delta });
    }

    /// Stops the decoder's block `source` if it is open.
    fn stop(&mut self, source: u32, out: &mut Vec<u8>) {
        if let Some(slot) = self.slots.iter_mut().rev().find(|s| s.source == source && s.open) {
            slot.open = false;
            if let Some(index) = slot.out {
                write(out, &Out::ContentBlockStop { index });
            }
        }
    }

    fn stop_all(&mut self, out: &mut Vec<u8>) {
        for slot in self.slots.iter_mut().filter(|s| s.open) {
            slot.open = false;
            if let Some(index) = slot.out {
                write(out, &Out::ContentBlockStop { index });
            }
        }
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        self.ensure_started(out);
        self.stop_all(out);
        let (stop_reason, stop_sequence) = stop_reason(self.finish.as_ref());
        let delta = StopJson { stop_reason, stop_sequence };
        write(out, &Out::MessageDelta { delta, usage: UsageJson::from(&self.usage) });
        write(out, &Out::MessageStop);
        self.done = true;
    }

    fn fail(&mut self, error: &ProviderError, out: &mut Vec<u8>) {
        if self.pending_start.is_some() {
            self.ensure_started(out);
        }
        let message = if error.message.is_empty() { "The provider reported an error." } else { &error.message };
        write(out, &Out::Error { error: ErrorJson { kind: error_type(error), message } });
        self.done = true;
    }
}

impl ClientEncoder for AnthropicEncoder {
    fn encode_response(&mut self, response: &Response) -> Vec<u8> {
        response::encode(response, &self.model, &self.fallback_id)
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
                    // Written at the next event that is not `Usage` (see the module doc).
                    if !self.started && self.pending_start.is_none() {
                        self.pending_start = Some(id.clone());
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
    use crate::conversation::{Json, Opaque, ToolKind};
    use serde_json::{json, Value};

    /// The (event name, data) pairs of an SSE output, checking the framing on the way.
    fn frames(out: &[u8]) -> Vec<(String, Value)> {
        let text = std::str::from_utf8(out).unwrap();
        assert!(text.is_empty() || text.ends_with("\n\n"));
        text.split("\n\n")
            .filter(|f| !f.is_empty())
            .map(|frame| {
                let (event, data) = frame.split_once('\n').unwrap();
                let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
                let name = event.strip_prefix("event: ").unwrap().to_owned();
                assert_eq!(data["type"], json!(name));
                (name, data)
            })
            .collect()
    }

    fn run(events: &[Event]) -> Vec<(String, Value)> {
        let mut encoder = AnthropicEncoder::new("claude-asked", "msg_gw");
        let mut out = Vec::new();
        encoder.encode_events(events, &mut out);
        frames(&out)
    }

    fn names(frames: &[(String, Value)]) -> Vec<&str> {
        frames.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// An answer with no content whose counts come in a later provider chunk (OpenAI's usage
    /// chunk): the same bytes whether the decoder hands the events over in one batch or one
    /// event at a time.
    #[test]
    fn message_start_does_not_depend_on_how_events_are_batched() {
        let usage = Usage { input: Some(12), output: Some(100), ..Default::default() };
        let events = [
            Event::Start { id: Some("chatcmpl-1".into()), model: Some("gpt-5-nano".into()) },
            Event::Usage(usage),
            Event::Finish(FinishReason::MaxTokens),
            Event::End,
        ];
        let whole = {
            let mut encoder = AnthropicEncoder::new("claude-asked", "msg_gw");
            let mut out = Vec::new();
            encoder.encode_events(&events, &mut out);
            out
        };
        let mut encoder = AnthropicEncoder::new("claude-asked", "msg_gw");
        let mut one_by_one = Vec::new();
        for event in &events {
            encoder.encode_events(std::slice::from_ref(event), &mut one_by_one);
        }
        assert_eq!(String::from_utf8(one_by_one).unwrap(), String::from_utf8(whole.clone()).unwrap());
        let out = frames(&whole);
        assert_eq!(names(&out), ["message_start", "message_delta", "message_stop"]);
        assert_eq!(out[0].1["message"]["id"], "chatcmpl-1");
        assert_eq!(out[0].1["message"]["usage"]["input_tokens"], 12);
    }

    /// A provider error right after the start still comes after `message_start`.
    #[test]
    fn an_error_after_the_start_follows_message_start() {
        let out = run(&[
            Event::Start { id: Some("m".into()), model: None },
            Event::Error(ProviderError { status: 500, code: None, message: "boom".into() }),
        ]);
        assert_eq!(names(&out), ["message_start", "error"]);
    }

    #[test]
    fn a_claude_like_stream_with_usage_in_message_start() {
        let usage =
            Usage { input: Some(120), output: Some(1), cache_read: Some(100), cache_write: Some(0), reasoning: None };
        let out = run(&[
            Event::Start { id: Some("msg_p".into()), model: Some("us.anthropic.claude-x-v1:0".into()) },
            Event::Usage(usage),
            Event::BlockStart { index: 0, block: BlockStart::Reasoning },
            Event::Delta { index: 0, delta: Delta::Reasoning("hm".into()) },
            Event::Delta {
                index: 0,
                delta: Delta::Signature(Opaque { family: Family::Claude, data: "EqQB+/=".into() }),
            },
            Event::BlockStop { index: 0 },
            Event::BlockStart {
                index: 1,
                block: BlockStart::ToolCall { id: "t1".into(), name: "Bash".into(), kind: ToolKind::Function },
            },
            Event::Delta { index: 1, delta: Delta::ToolArguments("{\"command\":".into()) },
            Event::Delta { index: 1, delta: Delta::ToolArguments("\"ls\"}".into()) },
            Event::BlockStop { index: 1 },
            Event::Usage(Usage { output: Some(42), ..Default::default() }),
            Event::Finish(FinishReason::ToolUse),
            Event::End,
        ]);
        assert_eq!(
            names(&out),
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(
            out[0].1["message"],
            json!({"id": "msg_p", "type": "message", "role": "assistant", "model": "claude-asked", "content": [],
                "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 20, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 100, "output_tokens": 1}})
        );
        assert_eq!(out[1].1["content_block"], json!({"type": "thinking", "thinking": "", "signature": ""}));
        assert_eq!(out[3].1["delta"], json!({"type": "signature_delta", "signature": "EqQB+/="}));
        assert_eq!(
            out[5].1,
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t1", "name": "Bash", "input": {}}})
        );
        assert_eq!(out[7].1["delta"], json!({"type": "input_json_delta", "partial_json": "\"ls\"}"}));
        assert_eq!(
            out[9].1,
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
                "usage": {"input_tokens": 20, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 100, "output_tokens": 42}})
        );
    }

    #[test]
    fn sloppy_decoders_still_give_a_well_formed_stream() {
        // No Start, a delta before its block, a block never stopped, usage after the finish.
        let out = run(&[
            Event::Delta { index: 0, delta: Delta::Text("a".into()) },
            Event::BlockStart { index: 1, block: BlockStart::Reasoning },
            Event::Delta { index: 1, delta: Delta::Reasoning("r".into()) },
            Event::Delta { index: 1, delta: Delta::Text("wrong kind".into()) },
            Event::Delta { index: 7, delta: Delta::ToolArguments("{}".into()) },
            Event::Finish(FinishReason::StopSequence(Some("END".into()))),
            Event::Usage(Usage { input: Some(9), output: Some(3), ..Default::default() }),
            Event::End,
            Event::Delta { index: 0, delta: Delta::Text("after the end".into()) },
            Event::End,
        ]);
        let summary: Vec<(String, Value)> =
            out.iter().map(|(n, d)| (n.clone(), d.get("index").cloned().unwrap_or(Value::Null))).collect();
        assert_eq!(
            summary,
            [
                ("message_start".to_owned(), Value::Null),
                ("content_block_start".to_owned(), json!(0)),
                ("content_block_delta".to_owned(), json!(0)),
                ("content_block_start".to_owned(), json!(1)),
                ("content_block_delta".to_owned(), json!(1)),
                ("content_block_stop".to_owned(), json!(1)),
                ("content_block_start".to_owned(), json!(2)),
                ("content_block_delta".to_owned(), json!(2)),
                ("content_block_stop".to_owned(), json!(0)),
                ("content_block_stop".to_owned(), json!(2)),
                ("message_delta".to_owned(), Value::Null),
                ("message_stop".to_owned(), Value::Null),
            ]
        );
        assert_eq!(out[0].1["message"]["id"], "msg_gw");
        assert_eq!(out[7].1["delta"], json!({"type": "text_delta", "text": "wrong kind"}));
        assert_eq!(out[10].1["delta"], json!({"stop_reason": "stop_sequence", "stop_sequence": "END"}));
        assert_eq!(out[10].1["usage"]["input_tokens"], 9);
        assert_eq!(out[10].1["usage"]["output_tokens"], 3);
    }

    #[test]
    fn foreign_blocks_are_left_out_and_indexes_stay_dense() {
        let out = run(&[
            Event::Start { id: None, model: None },
            Event::BlockStart {
                index: 0,
                block: BlockStart::Unknown { family: Family::Gemini, raw: Json::from_text("{}").unwrap() },
            },
            Event::Delta { index: 0, delta: Delta::Text("gemini-only".into()) },
            Event::BlockStop { index: 0 },
            Event::BlockStart {
                index: 1,
                block: BlockStart::RedactedReasoning { data: Opaque { family: Family::OpenAi, data: "enc".into() } },
            },
            Event::BlockStop { index: 1 },
            Event::BlockStart {
                index: 2,
                block: BlockStart::Unknown {
                    family: Family::Claude,
                    raw: Json::from_text(r#"{"type":"server_tool_use","id":"s","name":"web_search","input":{}}"#)
                        .unwrap(),
                },
            },
            Event::Delta { index: 2, delta: Delta::ToolArguments("{\"q\":1}".into()) },
            Event::BlockStop { index: 2 },
            Event::BlockStart { index: 3, block: BlockStart::Text },
            Event::Delta {
                index: 3,
                delta: Delta::Citation(Json::from_text(r#"{"type":"char_location","cited_text":"c"}"#).unwrap()),
            },
            Event::Finish(FinishReason::EndTurn),
            Event::End,
        ]);
        let starts: Vec<(Value, Value)> = out
            .iter()
            .filter(|(n, _)| n == "content_block_start")
            .map(|(_, d)| (d["index"].clone(), d["content_block"].clone()))
            .collect();
        assert_eq!(
            starts,
            [
                (json!(0), json!({"type": "redacted_thinking", "data": "gw1.openai.enc"})),
                (json!(1), json!({"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}})),
                (json!(2), json!({"type": "text", "text": ""})),
            ]
        );
        let deltas: Vec<Value> =
            out.iter().filter(|(n, _)| n == "content_block_delta").map(|(_, d)| d.clone()).collect();
        assert_eq!(
            deltas,
            [
                json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"q\":1}"}}),
                json!({"type": "content_block_delta", "index": 2, "delta": {"type": "citations_delta", "citation": {"type": "char_location", "cited_text": "c"}}}),
            ]
        );
        assert!(!out.iter().any(|(_, d)| d.to_string().contains("gemini-only")));
    }

    #[test]
    fn errors_end_the_stream_in_anthropics_shape() {
        let error =
            ProviderError { status: 429, code: Some("ThrottlingException".into()), message: "slow down".into() };
        let out = run(&[
            Event::Start { id: Some("m".into()), model: None },
            Event::BlockStart { index: 0, block: BlockStart::Text },
            Event::Delta { index: 0, delta: Delta::Text("par".into()) },
            Event::Error(error.clone()),
            Event::End,
        ]);
        assert_eq!(names(&out), ["message_start", "content_block_start", "content_block_delta", "error"]);
        assert_eq!(out[3].1, json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}));
        // An error before anything else is the whole stream.
        let out = run(&[Event::Error(ProviderError { status: 529, code: None, message: String::new() })]);
        assert_eq!(
            out,
            [(
                "error".to_owned(),
                json!({"type": "error", "error": {"type": "overloaded_error", "message": "The provider reported an error."}})
            )]
        );
        let encoder = AnthropicEncoder::new("m", "id");
        let body: Value = serde_json::from_slice(&encoder.encode_error(&error)).unwrap();
        assert_eq!(body, json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}));
        // Nothing in, nothing out.
        assert!(run(&[]).is_empty());
    }

    #[test]
    fn a_pretty_printed_block_kept_verbatim_stays_one_data_line() {
        // Found by the codec_anthropic fuzz target: a client's pretty-printed server-tool block,
        // kept whole, was written with its line breaks into `data:`.
        let raw =
            Json::from_text("{\n  \"type\": \"server_tool_use\",\r\n  \"id\": \"s 1\",\n\n  \"input\": {}\n}").unwrap();
        let mut encoder = AnthropicEncoder::new("m", "id");
        let mut out = Vec::new();
        encoder.encode_events(
            &[
                Event::Start { id: None, model: None },
                Event::BlockStart { index: 0, block: BlockStart::Unknown { family: Family::Claude, raw } },
                Event::BlockStop { index: 0 },
                Event::End,
            ],
            &mut out,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\r'));
        for frame in text.split("\n\n").filter(|f| !f.is_empty()) {
            let data: Vec<&str> = frame.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
            assert_eq!(data.len(), 1, "{frame}");
            let value: serde_json::Value = serde_json::from_str(data[0]).unwrap();
            if value["type"] == "content_block_start" {
                assert_eq!(value["content_block"]["id"], "s 1");
            }
        }
    }
}
