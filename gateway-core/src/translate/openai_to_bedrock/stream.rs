//! Bedrock ConverseStream (binary event stream) → OpenAI `chat.completion.chunk` SSE.
//!
//! | Bedrock message | OpenAI output |
//! |---|---|
//! | `messageStart` | role chunk (`{"role":"assistant","content":""}`) |
//! | `contentBlockStart` with `toolUse` | first tool-call chunk: `index` (tool calls counted from 0), id, name, `arguments: ""`; the block index → tool index mapping is kept for the deltas |
//! | `contentBlockDelta` | `text` → `content` (empty texts skipped); `toolUse.input` → that block's tool-call `arguments`; `reasoningContent.text` → `reasoning_content`; signatures dropped |
//! | `contentBlockStop`, unknown events | nothing |
//! | `messageStop` | empty delta with `finish_reason` |
//! | `metadata` | usage kept; usage chunk (`choices: []`) if the client set `stream_options.include_usage`, then `data: [DONE]` |
//! | `:message-type: exception` (throttlingException, validationException, modelStreamErrorException, ...) or `error` | `data: {"error":{...}}` in OpenAI's shape (exception name in `code`), then `data: [DONE]` |
//! | a bad CRC, an impossible length, an event whose JSON does not parse | error chunk (`server_error`, code `invalid_event_stream`), then `[DONE]` |
//!
//! If the stream ends without `metadata`: after `messageStop` the answer is complete and is
//! closed normally; before it the answer was cut off and the client gets an error chunk (code
//! `incomplete_stream`). Input after the end is ignored.

use super::response::{bare_error_type, finish_reason, openai_error_type, UsageCounts};
use crate::api::bedrock::StreamEvent;
use crate::aws::eventstream::{EventStreamDecoder, Message};
use crate::translate::openai_chunks::{write_done, write_error, ChunkWriter};
use crate::usage::TokenUsage;

/// Per-response streaming state.
#[derive(Debug)]
pub struct StreamTranslator {
    decoder: EventStreamDecoder,
    /// Reused message buffer, so steady-state chunks allocate only their output.
    messages: Vec<Message>,
    include_usage: bool,
    chunks: ChunkWriter,
    /// (Bedrock content block index, OpenAI tool call index) of every tool-use block so far.
    tool_blocks: Vec<(u64, u32)>,
    counts: UsageCounts,
    finish: Option<&'static str>,
    done: bool,
}

impl StreamTranslator {
    /// `id` and `model` label every chunk (Bedrock sends neither); `include_usage` is the
    /// client's `stream_options.include_usage`.
    pub fn new(created: u64, id: String, model: String, include_usage: bool) -> Self {
        StreamTranslator {
            decoder: EventStreamDecoder::default(),
            messages: Vec::new(),
            include_usage,
            chunks: ChunkWriter::new(&id, &model, created),
            tool_blocks: Vec::new(),
            counts: UsageCounts::default(),
            finish: None,
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
                let text = format!("The provider's event stream could not be decoded: {e}.");
                self.fail(&mut out, &text, "server_error", Some("invalid_event_stream"));
            }
        }
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

    /// Tokens known so far (Bedrock reports them all in the final `metadata` event).
    pub fn usage(&self) -> TokenUsage {
        self.counts.to_token_usage()
    }

    fn on_message(&mut self, message: &Message, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        match message.header_str(":message-type") {
            Some("event") | None => {}
            Some("exception") => {
                let kind = message.header_str(":exception-type").map(bare_error_type).unwrap_or("");
                let parsed = serde_json::from_slice::<StreamEvent<'_>>(&message.payload).ok();
                let text = parsed
                    .as_ref()
                    .and_then(|e| e.message.as_deref())
                    .unwrap_or("The provider reported an error in the stream.");
                let code = (!kind.is_empty()).then_some(kind);
                self.fail(out, text, openai_error_type(kind, 500), code);
                return;
            }
            Some(_) => {
                let code = message.header_str(":error-code").filter(|c| !c.is_empty());
                let text =
                    message.header_str(":error-message").unwrap_or("The provider reported an error in the stream.");
                self.fail(out, text, openai_error_type(code.unwrap_or(""), 500), code);
                return;
            }
        }
        let Ok(event) = serde_json::from_slice::<StreamEvent<'_>>(&message.payload) else {
            self.fail(
                out,
                "The provider sent a stream event the gateway could not parse.",
                "server_error",
                Some("invalid_event_stream"),
            );
            return;
        };
        match message.header_str(":event-type").unwrap_or_default() {
            "messageStart" => self.chunks.role(out, 0),
            "contentBlockStart" => {
                let (Some(tool), Some(index)) =
                    (event.start.as_ref().and_then(|s| s.tool_use.as_ref()), event.content_block_index)
                else {
                    return;
                };
                let tool_index = u32::try_from(self.tool_blocks.len()).unwrap_or(u32::MAX);
                self.tool_blocks.push((index, tool_index));
                self.chunks.tool_call_start(out, 0, tool_index, &tool.tool_use_id, &tool.name, "");
            }
            "contentBlockDelta" => {
                let (Some(delta), Some(index)) = (&event.delta, event.content_block_index) else { return };
                if let Some(text) = delta.text.as_deref().filter(|t| !t.is_empty()) {
                    self.chunks.content(out, 0, text);
                }
                if let Some(text) =
                    delta.reasoning_content.as_ref().and_then(|r| r.text.as_deref()).filter(|t| !t.is_empty())
                {
                    self.chunks.reasoning(out, 0, text);
                }
                if let Some(json) = delta.tool_use.as_ref().and_then(|t| t.input.as_deref()).filter(|j| !j.is_empty()) {
                    let tool = self.tool_blocks.iter().find(|(block, _)| *block == index).map(|(_, tool)| *tool);
                    if let Some(tool_index) = tool {
                        self.chunks.tool_call_args(out, 0, tool_index, json);
                    }
                }
            }
            "messageStop" => {
                let reason = finish_reason(event.stop_reason.as_deref().unwrap_or("end_turn"));
                self.finish = Some(reason);
                self.chunks.finish(out, 0, reason);
            }
            "metadata" => {
                if let Some(usage) = event.usage {
                    self.counts = usage.into();
                }
                if self.finish.is_some() {
                    self.close(out);
                }
            }
            _ => {}
        }
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.include_usage {
            self.chunks.usage(out, &self.counts.to_openai());
        }
        write_done(out);
        self.done = true;
    }

    fn fail(&mut self, out: &mut Vec<u8>, message: &str, kind: &str, code: Option<&str>) {
        write_error(out, message, kind, code);
        self.done = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::eventstream::{encode_message, HeaderValue};
    use serde_json::{json, Value};

    fn event(kind: &str, payload: Value) -> Vec<u8> {
        encode_message(
            &[
                (":event-type", HeaderValue::String(kind.into())),
                (":content-type", HeaderValue::String("application/json".into())),
                (":message-type", HeaderValue::String("event".into())),
            ],
            payload.to_string().as_bytes(),
        )
    }

    fn exception(kind: &str, message: &str) -> Vec<u8> {
        encode_message(
            &[
                (":exception-type", HeaderValue::String(kind.into())),
                (":content-type", HeaderValue::String("application/json".into())),
                (":message-type", HeaderValue::String("exception".into())),
            ],
            json!({"message": message}).to_string().as_bytes(),
        )
    }

    fn payloads(out: &[u8]) -> Vec<Value> {
        std::str::from_utf8(out)
            .unwrap()
            .split("\n\n")
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

    fn tool_stream() -> Vec<u8> {
        [
            event("messageStart", json!({"role": "assistant"})),
            event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "Checking."}})),
            event("contentBlockStop", json!({"contentBlockIndex": 0})),
            event("contentBlockStart", json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_a", "name": "get"}}})),
            event("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"city\": "}}})),
            event("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "\"Paris\"}"}}})),
            event("contentBlockStop", json!({"contentBlockIndex": 1})),
            event("contentBlockStart", json!({"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "tooluse_b", "name": "get"}}})),
            event("contentBlockDelta", json!({"contentBlockIndex": 2, "delta": {"toolUse": {"input": "{}"}}})),
            event("contentBlockStop", json!({"contentBlockIndex": 2})),
            event("messageStop", json!({"stopReason": "tool_use"})),
            event("metadata", json!({"usage": {"inputTokens": 10, "outputTokens": 30, "totalTokens": 44, "cacheReadInputTokens": 4}, "metrics": {"latencyMs": 1}})),
        ]
        .concat()
    }

    #[test]
    fn text_and_tool_calls_keep_ids_per_block_with_usage_chunk() {
        let mut t = StreamTranslator::new(5, "chatcmpl-1".into(), "nova".into(), true);
        let out = payloads(&t.push(&tool_stream(), true));
        let deltas: Vec<&Value> = out.iter().filter_map(|c| c.get("choices")?.get(0)).collect();
        assert_eq!(out[0]["id"], "chatcmpl-1");
        assert_eq!(out[0]["model"], "nova");
        assert_eq!(deltas[0]["delta"], json!({"role": "assistant", "content": ""}));
        assert_eq!(deltas[1]["delta"], json!({"content": "Checking."}));
        assert_eq!(
            deltas[2]["delta"],
            json!({"tool_calls": [{"index": 0, "id": "tooluse_a", "type": "function", "function": {"name": "get", "arguments": ""}}]})
        );
        assert_eq!(deltas[3]["delta"], json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\": "}}]}));
        assert_eq!(deltas[4]["delta"], json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}));
        assert_eq!(deltas[5]["delta"]["tool_calls"][0]["id"], "tooluse_b");
        assert_eq!(deltas[6]["delta"], json!({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}));
        assert_eq!(deltas[7]["finish_reason"], "tool_calls");
        assert_eq!(deltas.len(), 8);
        assert_eq!(
            out[out.len() - 2]["usage"],
            json!({"prompt_tokens": 14, "completion_tokens": 30, "total_tokens": 44, "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 0}})
        );
        assert_eq!(out.last().unwrap(), "[DONE]");
        assert_eq!(t.usage().total(), 44);
    }

    #[test]
    fn no_usage_chunk_unless_asked() {
        let out = payloads(&StreamTranslator::new(0, "i".into(), "m".into(), false).push(&tool_stream(), true));
        assert!(out.iter().all(|c| c.get("usage").is_none()));
        assert_eq!(out.last().unwrap(), "[DONE]");
    }

    #[test]
    fn in_stream_exceptions_become_openai_errors() {
        for (kind, expected) in [
            ("throttlingException", "rate_limit_error"),
            ("validationException", "invalid_request_error"),
            ("modelStreamErrorException", "server_error"),
        ] {
            let stream = [
                event("messageStart", json!({"role": "assistant"})),
                exception(kind, "went wrong"),
                event("messageStop", json!({"stopReason": "end_turn"})),
            ]
            .concat();
            let out = payloads(&StreamTranslator::new(0, "i".into(), "m".into(), true).push(&stream, true));
            assert_eq!(out.len(), 3, "{out:?}");
            assert_eq!(
                out[1],
                json!({"error": {"message": "went wrong", "type": expected, "param": null, "code": kind}})
            );
            assert_eq!(out[2], "[DONE]");
        }
        let err = encode_message(
            &[
                (":message-type", HeaderValue::String("error".into())),
                (":error-code", HeaderValue::String("InternalFailure".into())),
                (":error-message", HeaderValue::String("boom".into())),
            ],
            b"",
        );
        let out = payloads(&StreamTranslator::new(0, "i".into(), "m".into(), false).push(&err, true));
        assert_eq!(out[0]["error"]["message"], "boom");
        assert_eq!(out[0]["error"]["code"], "InternalFailure");
    }

    #[test]
    fn corrupt_frames_truncation_and_bad_json_end_with_an_error() {
        let mut stream = tool_stream();
        let n = stream.len();
        stream[n - 1] ^= 1;
        let out = payloads(&StreamTranslator::new(0, "i".into(), "m".into(), true).push(&stream, true));
        assert_eq!(out[out.len() - 2]["error"]["code"], "invalid_event_stream");
        assert_eq!(out.last().unwrap(), "[DONE]");
        // Cut in the middle of a frame.
        let stream = tool_stream();
        let out =
            payloads(&StreamTranslator::new(0, "i".into(), "m".into(), true).push(&stream[..stream.len() - 5], true));
        assert_eq!(out[out.len() - 2]["error"]["code"], "invalid_event_stream");
        // Cut between frames before messageStop.
        let first = event("messageStart", json!({}));
        let out = payloads(&StreamTranslator::new(0, "i".into(), "m".into(), true).push(&first, true));
        assert_eq!(out[out.len() - 2]["error"]["code"], "incomplete_stream");
        // After messageStop but without metadata: complete.
        let s = [first.clone(), event("messageStop", json!({"stopReason": "max_tokens"}))].concat();
        let out = payloads(&StreamTranslator::new(0, "i".into(), "m".into(), false).push(&s, true));
        assert_eq!(out[1]["choices"][0]["finish_reason"], "length");
        assert_eq!(out.last().unwrap(), "[DONE]");
        let bad = encode_message(&[(":event-type", HeaderValue::String("contentBlockDelta".into()))], b"{not json");
        let out = payloads(&StreamTranslator::new(0, "i".into(), "m".into(), false).push(&bad, false));
        assert_eq!(out[0]["error"]["code"], "invalid_event_stream");
    }

    #[test]
    fn output_does_not_depend_on_chunk_boundaries() {
        let stream = tool_stream();
        let whole = StreamTranslator::new(0, "i".into(), "m".into(), true).push(&stream, true);
        for step in [1, 2, 3, 7, 64, 1000] {
            let mut t = StreamTranslator::new(0, "i".into(), "m".into(), true);
            let mut got = Vec::new();
            let pieces: Vec<&[u8]> = stream.chunks(step).collect();
            for (k, piece) in pieces.iter().enumerate() {
                got.extend(t.push(piece, k + 1 == pieces.len()));
            }
            assert_eq!(got, whole, "step {step}");
        }
    }
}
