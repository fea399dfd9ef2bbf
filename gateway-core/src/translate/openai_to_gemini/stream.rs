//! Gemini `streamGenerateContent?alt=sse` → OpenAI `chat.completion.chunk` SSE, event by event.
//!
//! Every Gemini event is a whole `GenerateContentResponse` holding the next piece of each
//! candidate. Per event and candidate (candidate `index` = OpenAI choice `index`):
//!
//! | Gemini | OpenAI output |
//! |---|---|
//! | first time a candidate appears | role chunk (`{"role":"assistant","content":""}`) |
//! | `text` part | `content` chunk |
//! | `text` part with `thought: true` | `reasoning_content` chunk |
//! | `functionCall` part | one tool-call chunk with id (see [`super::response::tool_call_id`]), name and the whole `arguments` (Gemini sends calls whole) |
//! | `finishReason` | empty delta with `finish_reason` (`tool_calls` when the candidate called functions), after the event's content |
//! | `usageMetadata` | counts kept, member by member (an empty or partial early object never zeroes a count) |
//! | `promptFeedback.blockReason` | role chunk and `finish_reason: content_filter` on choice 0 |
//! | `{"error": {...}}` event | `data: {"error":{...}}` in OpenAI's shape, then `data: [DONE]` |
//!
//! At the end of the stream: usage chunk (`choices: []`) if the client set
//! `stream_options.include_usage`, then `data: [DONE]`. If no candidate ever finished, the answer
//! was cut off: the client gets an error chunk (`server_error`, code `incomplete_stream`) instead,
//! so a truncated answer is never taken for a whole one. Events after an error are ignored.

use super::response::{call_id_with_signature, finish_reason, openai_error_type, tool_call_id, UsageCounts};
use crate::api::gemini::GenerateContentResponse;
use crate::sse::SseFramer;
use crate::translate::openai_chunks::{write_done, write_error, ChunkWriter};
use crate::usage::TokenUsage;

/// Per-candidate progress.
#[derive(Debug, Default, Clone)]
struct CandidateState {
    index: u32,
    tool_calls: u32,
    finished: bool,
}

/// Per-response streaming state.
#[derive(Debug)]
pub struct StreamTranslator {
    framer: SseFramer,
    created: u64,
    include_usage: bool,
    fallback_model: String,
    id: String,
    model: String,
    /// Labelled with `id` and `model` (else `fallback_model`) once the first event names them.
    chunks: ChunkWriter,
    candidates: Vec<CandidateState>,
    /// Function calls so far across candidates: numbers the synthesized ids.
    calls: u32,
    counts: UsageCounts,
    done: bool,
    /// `modelVersion` as Gemini reported it (not the fallback).
    reported_model: Option<String>,
}

impl StreamTranslator {
    /// `include_usage` is the client's `stream_options.include_usage`; `fallback_model` names
    /// the model when Gemini's events carry no `modelVersion`.
    pub fn new(created: u64, include_usage: bool, fallback_model: &str) -> Self {
        StreamTranslator {
            framer: SseFramer::default(),
            created,
            include_usage,
            fallback_model: fallback_model.to_owned(),
            id: String::new(),
            model: String::new(),
            chunks: ChunkWriter::new("", fallback_model, created),
            candidates: Vec::new(),
            calls: 0,
            counts: UsageCounts::default(),
            done: false,
            reported_model: None,
        }
    }

    /// Translates the events `chunk` completes; at the end of the stream, also closes it.
    pub fn push(&mut self, chunk: &[u8], end_of_stream: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(chunk.len() + chunk.len() / 2 + 256);
        // The framer is moved out for the call so that the callback can borrow the rest.
        let mut framer = std::mem::take(&mut self.framer);
        // An oversized event is dropped by the framer and the stream goes on without it.
        let _ = framer.push_each(chunk, |_, data| self.on_event(data, &mut out));
        if end_of_stream {
            framer.finish_each(|_, data| self.on_event(data, &mut out));
        }
        self.framer = framer;
        if end_of_stream && !self.done {
            if self.candidates.iter().any(|c| c.finished) {
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

    /// Tokens known so far.
    pub fn usage(&self) -> TokenUsage {
        self.counts.to_token_usage()
    }

    /// The `modelVersion` Gemini reported, if any (not the fallback name).
    pub fn response_model(&self) -> Option<&str> {
        self.reported_model.as_deref()
    }

    /// The state of choice `index`, created (with its role chunk) on first sight.
    fn candidate(&mut self, index: u32, out: &mut Vec<u8>) -> usize {
        if let Some(position) = self.candidates.iter().position(|c| c.index == index) {
            return position;
        }
        self.candidates.push(CandidateState { index, ..Default::default() });
        self.chunks.role(out, index);
        self.candidates.len().saturating_sub(1)
    }

    fn on_event(&mut self, data: &str, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        let Ok(event) = serde_json::from_slice::<GenerateContentResponse<'_>>(data.as_bytes()) else { return };
        if let Some(error) = &event.error {
            let status = error.status.as_deref().unwrap_or_default();
            let message = if error.message.is_empty() { "The provider reported an error." } else { &error.message };
            let code = (!status.is_empty()).then_some(status);
            self.fail(out, message, openai_error_type(status, error.code.unwrap_or(500)), code);
            return;
        }
        let mut relabel = false;
        if self.id.is_empty() {
            if let Some(id) = event.response_id.as_deref().filter(|id| !id.is_empty()) {
                self.id.push_str(id);
                relabel = true;
            }
        }
        if self.reported_model.is_none() {
            self.reported_model = event.model_version.as_deref().and_then(super::super::response_model_str);
        }
        if self.model.is_empty() {
            let model = event.model_version.as_deref().unwrap_or(&self.fallback_model).to_owned();
            relabel |= !model.is_empty();
            self.model = model;
        }
        if relabel {
            let model = if self.model.is_empty() { &self.fallback_model } else { &self.model };
            self.chunks.set(&self.id, model, self.created);
        }
        if let Some(usage) = &event.usage_metadata {
            self.counts.update(usage);
        }
        for (position, candidate) in event.candidates.iter().enumerate() {
            let index = candidate.index.unwrap_or(u32::try_from(position).unwrap_or(u32::MAX));
            let slot = self.candidate(index, out);
            for part in candidate.content.iter().flat_map(|c| &c.parts) {
                if let Some(call) = &part.function_call {
                    let id = match call.id.as_deref().filter(|s| !s.is_empty()) {
                        Some(id) => id.to_owned(),
                        None => tool_call_id(&self.id, self.calls),
                    };
                    let id = call_id_with_signature(id, part.thought_signature.as_deref());
                    self.calls = self.calls.saturating_add(1);
                    let tool_index = self.candidates.get(slot).map_or(0, |c| c.tool_calls);
                    if let Some(state) = self.candidates.get_mut(slot) {
                        state.tool_calls = state.tool_calls.saturating_add(1);
                    }
                    let arguments = call.args.map(|raw| raw.get()).unwrap_or("{}");
                    self.chunks.tool_call_start(out, index, tool_index, &id, &call.name, arguments);
                } else if let Some(text) = part.text.as_deref().filter(|t| !t.is_empty()) {
                    if part.thought == Some(true) {
                        self.chunks.reasoning(out, index, text);
                    } else {
                        self.chunks.content(out, index, text);
                    }
                }
            }
            if let Some(reason) = candidate.finish_reason.as_deref() {
                let Some(state) = self.candidates.get_mut(slot) else { continue };
                if !state.finished {
                    state.finished = true;
                    let finish = finish_reason(reason, state.tool_calls > 0);
                    self.chunks.finish(out, index, finish);
                }
            }
        }
        if event.candidates.is_empty()
            && event.prompt_feedback.as_ref().and_then(|f| f.block_reason.as_deref()).is_some()
        {
            let slot = self.candidate(0, out);
            if let Some(state) = self.candidates.get_mut(slot) {
                if !state.finished {
                    state.finished = true;
                    self.chunks.finish(out, 0, "content_filter");
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn sse(events: &[Value]) -> String {
        events.iter().map(|e| format!("data: {e}\r\n\r\n")).collect()
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

    fn text_event(text: &str, finish: Option<&str>, usage: Value) -> Value {
        let mut candidate = json!({"content": {"parts": [{"text": text}], "role": "model"}});
        if let Some(f) = finish {
            candidate["finishReason"] = json!(f);
        }
        json!({"candidates": [candidate], "usageMetadata": usage, "modelVersion": "gemini-x", "responseId": "R"})
    }

    #[test]
    fn text_stream_with_partial_usage_first_and_usage_chunk() {
        let events = [
            text_event("The", None, json!({"promptTokenCount": 169, "totalTokenCount": 169})),
            text_event(" capital", None, json!({})),
            text_event(
                " is Paris.",
                Some("STOP"),
                json!({"promptTokenCount": 79, "candidatesTokenCount": 12, "thoughtsTokenCount": 3, "totalTokenCount": 94}),
            ),
        ];
        let mut t = StreamTranslator::new(5, true, "fallback");
        let out = payloads(&t.push(sse(&events).as_bytes(), true));
        assert_eq!(out[0]["choices"][0]["delta"], json!({"role": "assistant", "content": ""}));
        assert_eq!(
            (out[0]["id"].as_str(), out[0]["model"].as_str(), out[0]["created"].as_u64()),
            (Some("R"), Some("gemini-x"), Some(5))
        );
        let text: String = out.iter().filter_map(|c| c["choices"].get(0)?["delta"]["content"].as_str()).collect();
        assert_eq!(text, "The capital is Paris.");
        let finish: Vec<&str> = out.iter().filter_map(|c| c["choices"].get(0)?["finish_reason"].as_str()).collect();
        assert_eq!(finish, ["stop"]);
        assert_eq!(
            out[out.len() - 2]["usage"],
            json!({"prompt_tokens": 79, "completion_tokens": 15, "total_tokens": 94, "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 3}})
        );
        assert_eq!(out.last().unwrap(), "[DONE]");
        assert_eq!(t.usage(), TokenUsage { input: 79, output: 15, cache_read: 0, cache_creation: 0, reasoning: 3 });
    }

    #[test]
    fn function_calls_thoughts_and_several_candidates() {
        let event = json!({"responseId": "R", "candidates": [
            {"index": 0, "content": {"parts": [{"text": "hmm", "thought": true}, {"functionCall": {"name": "a", "args": {"q": 1}}}, {"functionCall": {"name": "b", "args": {}}}]}, "finishReason": "STOP"},
            {"index": 1, "content": {"parts": [{"text": "plain"}]}, "finishReason": "MAX_TOKENS"}]});
        let out = payloads(&StreamTranslator::new(0, false, "m").push(sse(&[event]).as_bytes(), true));
        let deltas: Vec<(u64, &Value, &Value)> = out
            .iter()
            .filter_map(|c| {
                let ch = c["choices"].get(0)?;
                Some((ch["index"].as_u64()?, &ch["delta"], &ch["finish_reason"]))
            })
            .collect();
        assert_eq!(deltas[1].1, &json!({"reasoning_content": "hmm"}));
        assert_eq!(
            deltas[2].1,
            &json!({"tool_calls": [{"index": 0, "id": "call_R_0", "type": "function", "function": {"name": "a", "arguments": "{\"q\":1}"}}]})
        );
        assert_eq!(deltas[3].1["tool_calls"][0]["index"], 1);
        assert_eq!(deltas[3].1["tool_calls"][0]["id"], "call_R_1");
        assert_eq!(deltas[4].2, "tool_calls");
        assert_eq!((deltas[5].0, deltas[5].1), (1, &json!({"role": "assistant", "content": ""})));
        assert_eq!(deltas[6].1, &json!({"content": "plain"}));
        assert_eq!((deltas[7].0, deltas[7].2), (1, &json!("length")));
        assert_eq!(out.last().unwrap(), "[DONE]");
        assert!(out.iter().all(|c| c.get("usage").is_none()));
    }

    #[test]
    fn blocked_prompt_error_event_and_truncation() {
        let out = payloads(
            &StreamTranslator::new(0, false, "m")
                .push(sse(&[json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}})]).as_bytes(), true),
        );
        assert_eq!(out[1]["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(out.last().unwrap(), "[DONE]");

        let events = [
            text_event("a", None, json!({})),
            json!({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}),
            text_event("late", Some("STOP"), json!({})),
        ];
        let out = payloads(&StreamTranslator::new(0, false, "m").push(sse(&events).as_bytes(), true));
        assert_eq!(
            out[out.len() - 2],
            json!({"error": {"message": "overloaded", "type": "server_error", "param": null, "code": "UNAVAILABLE"}})
        );
        assert!(!out.iter().any(|c| c["choices"][0]["delta"]["content"] == "late"));

        let out = payloads(&StreamTranslator::new(0, true, "m").push(sse(&events[..1]).as_bytes(), true));
        assert_eq!(out[out.len() - 2]["error"]["code"], "incomplete_stream");
        assert_eq!(payloads(&StreamTranslator::new(0, false, "m").push(b"", true)).len(), 2);
    }
}
