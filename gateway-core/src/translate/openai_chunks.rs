//! Writes OpenAI `chat.completion.chunk` SSE events for the stream translators that answer OpenAI
//! clients from another provider's stream (Anthropic, Bedrock, Gemini).
//!
//! Every chunk of a stream repeats the same id, model and created time, so that part is escaped
//! once into a prefix and each chunk only escapes its own text: serialising a struct per chunk
//! with serde_json was the largest cost of streaming. The bytes are exactly what serde_json
//! writes for [`crate::api::openai::ChatCompletionChunk`] (the tests compare both), so clients
//! and the golden tests see no difference.

use crate::api::openai::Usage;
use crate::error::openai_error_body;

/// The constant head of every chunk of one stream, already escaped.
#[derive(Debug, Default)]
pub struct ChunkWriter {
    /// `data: {"id":"…","object":"chat.completion.chunk","created":N,"model":"…","choices":[`
    head: Vec<u8>,
    /// `head` + `{"index":0,"delta":{"content":"`: a content chunk of choice 0 is this, the
    /// escaped text and [`TEXT_TAIL`], three copies.
    content0: Vec<u8>,
    /// The same for `reasoning_content`.
    reasoning0: Vec<u8>,
}

/// What follows the escaped text of a choice-0 content or reasoning chunk.
const TEXT_TAIL: &[u8] = b"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n";

impl ChunkWriter {
    /// The head for these id, model and created time.
    pub fn new(id: &str, model: &str, created: u64) -> Self {
        let mut writer = ChunkWriter::default();
        writer.set(id, model, created);
        writer
    }

    /// Re-labels the following chunks (providers that name id and model in their first event).
    pub fn set(&mut self, id: &str, model: &str, created: u64) {
        let head = &mut self.head;
        head.clear();
        head.extend_from_slice(br#"data: {"id":"#);
        escape_str(head, id);
        head.extend_from_slice(br#","object":"chat.completion.chunk","created":"#);
        write_u64(head, created);
        head.extend_from_slice(br#","model":"#);
        escape_str(head, model);
        head.extend_from_slice(br#","choices":["#);
        for (prefix, key) in [(&mut self.content0, &br#"content"#[..]), (&mut self.reasoning0, br#"reasoning_content"#)]
        {
            prefix.clear();
            prefix.extend_from_slice(head);
            prefix.extend_from_slice(br#"{"index":0,"delta":{""#);
            prefix.extend_from_slice(key);
            prefix.extend_from_slice(br#"":""#);
        }
    }

    /// `{"role":"assistant","content":""}`: the first chunk of choice `choice`.
    pub fn role(&self, out: &mut Vec<u8>, choice: u32) {
        self.open(out, choice);
        out.extend_from_slice(br#"{"role":"assistant","content":""}"#);
        close(out, None);
    }

    /// A `content` delta.
    pub fn content(&self, out: &mut Vec<u8>, choice: u32, text: &str) {
        if choice == 0 {
            return text_chunk(out, &self.content0, |out| escape_into(out, text));
        }
        self.open(out, choice);
        out.extend_from_slice(br#"{"content":"#);
        escape_str(out, text);
        out.push(b'}');
        close(out, None);
    }

    /// A `content` delta of choice 0 whose text is already JSON-escaped as [`escape_str`] would
    /// escape it (without the quotes), in valid UTF-8.
    pub fn content_escaped(&self, out: &mut Vec<u8>, escaped: &[u8]) {
        text_chunk(out, &self.content0, |out| out.extend_from_slice(escaped));
    }

    /// A `reasoning_content` delta.
    pub fn reasoning(&self, out: &mut Vec<u8>, choice: u32, text: &str) {
        if choice == 0 {
            return text_chunk(out, &self.reasoning0, |out| escape_into(out, text));
        }
        self.open(out, choice);
        out.extend_from_slice(br#"{"reasoning_content":"#);
        escape_str(out, text);
        out.push(b'}');
        close(out, None);
    }

    /// [`Self::content_escaped`] for `reasoning_content`.
    pub fn reasoning_escaped(&self, out: &mut Vec<u8>, escaped: &[u8]) {
        text_chunk(out, &self.reasoning0, |out| out.extend_from_slice(escaped));
    }

    /// The first fragment of tool call `tool`: id, type, name and the arguments known so far.
    pub fn tool_call_start(&self, out: &mut Vec<u8>, choice: u32, tool: u32, id: &str, name: &str, arguments: &str) {
        self.open(out, choice);
        out.extend_from_slice(br#"{"tool_calls":[{"index":"#);
        write_u64(out, u64::from(tool));
        out.extend_from_slice(br#","id":"#);
        escape_str(out, id);
        out.extend_from_slice(br#","type":"function","function":{"name":"#);
        escape_str(out, name);
        out.extend_from_slice(br#","arguments":"#);
        escape_str(out, arguments);
        out.extend_from_slice(b"}}]}");
        close(out, None);
    }

    /// More argument text of tool call `tool`.
    pub fn tool_call_args(&self, out: &mut Vec<u8>, choice: u32, tool: u32, arguments: &str) {
        self.open(out, choice);
        out.extend_from_slice(br#"{"tool_calls":[{"index":"#);
        write_u64(out, u64::from(tool));
        out.extend_from_slice(br#","function":{"arguments":"#);
        escape_str(out, arguments);
        out.extend_from_slice(b"}}]}");
        close(out, None);
    }

    /// An empty delta carrying the finish reason.
    pub fn finish(&self, out: &mut Vec<u8>, choice: u32, reason: &str) {
        self.open(out, choice);
        out.extend_from_slice(b"{}");
        close(out, Some(reason));
    }

    /// The usage chunk (`choices: []`) sent before `[DONE]` when the client asked for usage.
    pub fn usage(&self, out: &mut Vec<u8>, usage: &Usage) {
        out.extend_from_slice(&self.head);
        out.extend_from_slice(br#"],"usage":{"prompt_tokens":"#);
        write_u64(out, usage.prompt_tokens);
        out.extend_from_slice(br#","completion_tokens":"#);
        write_u64(out, usage.completion_tokens);
        out.extend_from_slice(br#","total_tokens":"#);
        write_u64(out, usage.total_tokens);
        out.extend_from_slice(br#","prompt_tokens_details":{"cached_tokens":"#);
        write_u64(out, usage.prompt_tokens_details.cached_tokens);
        out.extend_from_slice(br#"},"completion_tokens_details":{"reasoning_tokens":"#);
        write_u64(out, usage.completion_tokens_details.reasoning_tokens);
        out.extend_from_slice(b"}}}\n\n");
    }

    fn open(&self, out: &mut Vec<u8>, choice: u32) {
        out.extend_from_slice(&self.head);
        out.extend_from_slice(br#"{"index":"#);
        write_u64(out, u64::from(choice));
        out.extend_from_slice(br#","delta":"#);
    }
}

/// A pre-rendered choice-0 prefix, the text `write` appends, and the common tail.
fn text_chunk(out: &mut Vec<u8>, prefix: &[u8], write: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(prefix);
    write(out);
    out.extend_from_slice(TEXT_TAIL);
}

/// Ends a choice and its chunk.
fn close(out: &mut Vec<u8>, finish_reason: Option<&str>) {
    out.extend_from_slice(br#","logprobs":null,"finish_reason":"#);
    match finish_reason {
        Some(reason) => escape_str(out, reason),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b"}]}\n\n");
}

/// An OpenAI-shaped error event followed by `[DONE]`: how a failed stream ends.
pub fn write_error(out: &mut Vec<u8>, message: &str, kind: &str, code: Option<&str>) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&openai_error_body(message, kind, None, code));
    out.extend_from_slice(b"\n\n");
    write_done(out);
}

/// `data: [DONE]`: the end of every OpenAI stream.
pub fn write_done(out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: [DONE]\n\n");
}

/// `value` as a JSON string, escaped exactly as serde_json does (so also one SSE data line:
/// newlines become `\n`).
pub fn escape_str(out: &mut Vec<u8>, value: &str) {
    out.reserve(value.len() + 2);
    out.push(b'"');
    escape_into(out, value);
    out.push(b'"');
}

/// [`escape_str`] without the quotes.
fn escape_into(out: &mut Vec<u8>, value: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = value.as_bytes();
    let mut start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let short = match byte {
            b'"' => b'"',
            b'\\' => b'\\',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x08 => b'b',
            0x0c => b'f',
            0x00..=0x1f => b'u',
            _ => continue,
        };
        // Both ends are ASCII positions of a valid str, so the slice is whole characters.
        out.extend_from_slice(bytes.get(start..i).unwrap_or_default());
        out.push(b'\\');
        out.push(short);
        if short == b'u' {
            out.extend_from_slice(b"00");
            for nibble in [byte >> 4, byte & 0xf] {
                out.push(HEX.get(usize::from(nibble)).copied().unwrap_or(b'0'));
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(bytes.get(start..).unwrap_or_default());
}

/// Decimal digits of `n` without going through `fmt`.
fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        // `n % 10` is a single digit; `at` stays in bounds since u64 has at most 20 digits.
        if let Some(slot) = digits.get_mut(at) {
            *slot = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(at..).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::openai::{
        ChatCompletionChunk, ChunkChoice, ChunkDelta, ChunkFunction, ChunkToolCall, CompletionTokensDetails,
        PromptTokensDetails,
    };
    use proptest::prelude::*;

    /// What the translators wrote before: serde_json over the chunk structs.
    fn reference(
        id: &str,
        model: &str,
        created: u64,
        choice: u32,
        delta: ChunkDelta<'_>,
        finish: Option<&'static str>,
    ) -> Vec<u8> {
        let choices = [ChunkChoice { index: choice, delta, logprobs: None, finish_reason: finish }];
        let chunk =
            ChatCompletionChunk { id, object: "chat.completion.chunk", created, model, choices: &choices, usage: None };
        framed(&chunk)
    }

    fn framed<T: serde::Serialize>(value: &T) -> Vec<u8> {
        let mut out = b"data: ".to_vec();
        serde_json::to_writer(&mut out, value).unwrap();
        out.extend_from_slice(b"\n\n");
        out
    }

    fn every_chunk_matches(id: &str, model: &str, created: u64, choice: u32, tool: u32, text: &str) {
        let w = ChunkWriter::new(id, model, created);
        let mut out = Vec::new();
        w.role(&mut out, choice);
        assert_eq!(
            out,
            reference(
                id,
                model,
                created,
                choice,
                ChunkDelta { role: Some("assistant"), content: Some(""), ..Default::default() },
                None
            )
        );
        out.clear();
        w.content(&mut out, choice, text);
        assert_eq!(
            out,
            reference(id, model, created, choice, ChunkDelta { content: Some(text), ..Default::default() }, None)
        );
        out.clear();
        w.reasoning(&mut out, choice, text);
        assert_eq!(
            out,
            reference(
                id,
                model,
                created,
                choice,
                ChunkDelta { reasoning_content: Some(text), ..Default::default() },
                None
            )
        );
        out.clear();
        w.tool_call_start(&mut out, choice, tool, text, model, id);
        let call = ChunkToolCall {
            index: tool,
            id: Some(text),
            kind: Some("function"),
            function: ChunkFunction { name: Some(model), arguments: id },
        };
        assert_eq!(
            out,
            reference(id, model, created, choice, ChunkDelta { tool_calls: Some([call]), ..Default::default() }, None)
        );
        out.clear();
        w.tool_call_args(&mut out, choice, tool, text);
        let call = ChunkToolCall {
            index: tool,
            id: None,
            kind: None,
            function: ChunkFunction { name: None, arguments: text },
        };
        assert_eq!(
            out,
            reference(id, model, created, choice, ChunkDelta { tool_calls: Some([call]), ..Default::default() }, None)
        );
        out.clear();
        w.finish(&mut out, choice, "tool_calls");
        assert_eq!(out, reference(id, model, created, choice, ChunkDelta::default(), Some("tool_calls")));
        out.clear();
        let usage = Usage {
            prompt_tokens: created,
            completion_tokens: u64::from(tool),
            total_tokens: u64::MAX,
            prompt_tokens_details: PromptTokensDetails { cached_tokens: 0 },
            completion_tokens_details: CompletionTokensDetails { reasoning_tokens: 0 },
        };
        w.usage(&mut out, &usage);
        let chunk = ChatCompletionChunk {
            id,
            object: "chat.completion.chunk",
            created,
            model,
            choices: &[],
            usage: Some(usage),
        };
        assert_eq!(out, framed(&chunk));
    }

    #[test]
    fn every_control_character_and_edge_number_as_serde_json_writes_it() {
        let controls: String = (0u8..0x20).map(char::from).chain("\"\\/\u{7f}é😀\u{2028}".chars()).collect();
        every_chunk_matches(&controls, "m\"odel", 0, 0, 0, &controls);
        every_chunk_matches("", "", u64::MAX, u32::MAX, u32::MAX, "");
        every_chunk_matches("id", "model", 10, 7, 12, "plain text");
    }

    #[test]
    fn error_and_done() {
        let mut out = Vec::new();
        write_error(&mut out, "bad \"x\"\n", "server_error", Some("incomplete_stream"));
        let mut expected = b"data: ".to_vec();
        expected.extend_from_slice(&openai_error_body("bad \"x\"\n", "server_error", None, Some("incomplete_stream")));
        expected.extend_from_slice(b"\n\ndata: [DONE]\n\n");
        assert_eq!(out, expected);
    }

    #[test]
    fn relabelling_changes_later_chunks() {
        let mut w = ChunkWriter::new("", "fallback", 5);
        w.set("msg_1", "claude", 5);
        let mut out = Vec::new();
        w.content(&mut out, 0, "hi");
        assert_eq!(
            out,
            reference("msg_1", "claude", 5, 0, ChunkDelta { content: Some("hi"), ..Default::default() }, None)
        );
    }

    proptest! {
        #[test]
        fn any_strings_and_numbers_match_serde_json(id in any::<String>(), model in any::<String>(), text in any::<String>(),
                                                     created in any::<u64>(), choice in any::<u32>(), tool in any::<u32>()) {
            every_chunk_matches(&id, &model, created, choice, tool, &text);
        }
    }
}
