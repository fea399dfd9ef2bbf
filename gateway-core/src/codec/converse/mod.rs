//! The AWS Bedrock Converse provider codec: conversation [`Request`] → Converse request
//! ([`encode_request`]), Converse response / ConverseStream / error → [`Response`], [`Event`]s,
//! [`ProviderError`] ([`ConverseDecoder`]). Lossless where Converse can say it: reasoning text
//! with its signature, redacted reasoning, cache points, documents, tool errors.
//!
//! | conversation | Converse request |
//! |---|---|
//! | leading `System`/`Developer` messages | `system` text blocks (other parts: 400) |
//! | `System`/`Developer` after the first user or assistant turn | a `<system-reminder>`-wrapped text block in the user turn where it stands (merged with the turn before or after it) |
//! | `Text` (empty ones are not sent), `Image` (base64 png/jpeg/gif/webp) | `text`, `image.source.bytes`; image URLs and file ids: 400 (Bedrock cannot fetch, the gateway does not) |
//! | `Document` (base64 pdf, txt, md, html, csv, doc(x), xls(x); text sources as bytes) | `document {format, name, source.bytes}`; the name is the title reduced to what Converse accepts (letters, digits, single spaces, `-()[]`), else `Document N`, made unique; `context`, `citations` dropped |
//! | `ToolCall` | `toolUse {toolUseId, name, input}` in the assistant turn; input is the arguments' JSON object verbatim (`""` → `{}`, invalid JSON or not an object: 400; custom tools: 400) |
//! | `ToolResult` | `toolResult {toolUseId, content: text/image/document, status: "error" when is_error}` in a user turn, moved before other blocks of that turn (Claude's rule); `status` is Claude-only in Converse, so for other models `is_error` is dropped |
//! | `Reasoning` signed by this model's family (Claude for Claude ids, Converse otherwise) | `reasoningContent.reasoningText {text, signature}`; unsigned or other families' reasoning is not sent (it cannot be replayed) |
//! | `RedactedReasoning` of this model's family | `reasoningContent.redactedContent` (the base64 text as received) |
//! | `Audio` | 400 |
//! | `Unknown` parts | dropped (`unknown_blocks`) |
//! | `cache` on any part or tool | `{"cachePoint":{"type":"default"}}` right after it (system, messages, `toolConfig.tools`); at most 4 per request: the last 4 in prompt order (tools, system, messages) are kept, `cache_control` reported dropped otherwise |
//! | consecutive turns of one role | merged (Converse requires alternation) |
//! | `max_output_tokens` | `inferenceConfig.maxTokens` (default: the route's `default_max_tokens`) |
//! | `temperature`, `top_p`, `stop` | `inferenceConfig.temperature`, `topP`, `stopSequences` |
//! | `tools` | `toolConfig.tools[].toolSpec {name, description, inputSchema.json}` (no/empty schema → empty object schema) |
//! | `tool_choice` | auto → `{auto:{}}`, required → `{any:{}}`, tool → `{tool:{name}}`; none → tools left out, unless the history has tool blocks (Converse then requires `toolConfig`): tools kept without a choice |
//! | tool blocks in the history without `tools` | every tool named in the history declared with an empty object schema |
//! | `reasoning` (Claude ids only) | `additionalModelRequestFields.thinking`: `Budget(n)` → `enabled` n, `Adaptive` → `adaptive`, `Effort` → `enabled` with Anthropic's budget table capped under `maxTokens`; off (reported `thinking`) when the last tool-calling turn has no Claude-signed reasoning, or for other models |
//! | `top_k` (Claude ids only) | `additionalModelRequestFields.top_k`; other models: dropped |
//! | `output_format` | a system instruction (Converse has no JSON mode shared by its models) |
//! | `effort`, `parallel_tool_calls: false`, tool `strict` | dropped (reported) |
//! | `user` | not sent (Converse has no such field) |
//! | `extras` (Anthropic-only fields) | dropped, named in `Encoded::dropped` |
//!
//! **Mid-conversation instructions.** Converse has only one `system` list, before the whole
//! conversation. Appending a later instruction there would move it before turns it followed
//! and change the cached prefix on every turn that adds one; turning it into a user text keeps
//! its position and the cache prefix, and the `<system-reminder>` wrapper is how Claude Code
//! itself marks instructions inside user turns, which Claude models are trained to follow.
//!
//! **Usage.** Converse's `inputTokens` excludes cache reads and writes (the recording
//! `test_bedrock_cache_write_and_read`: `inputTokens` 2 + `cacheWriteInputTokens` 1322 +
//! `outputTokens` 5 = `totalTokens` 1329), so the model's `input` is their sum.
//!
//! The response side is described in [`stream`] (events) and [`response`] (bodies and errors).

use crate::conversation::bridge::ProviderDecoder;
use crate::conversation::{Event, Family, ProviderError, Response};
use crate::error::GatewayError;

mod request;
pub mod response;
pub mod stream;
pub mod wire;

pub use request::encode_request;

/// Most cache points Bedrock accepts in one request.
pub const MAX_CACHE_POINTS: usize = 4;

/// Content type of ConverseStream answers.
pub const EVENT_STREAM_CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// The response header naming a Bedrock error's exception type.
pub const ERROR_TYPE_HEADER: &str = "x-amzn-errortype";

/// Whether `model` is a Claude model id (foundation model, inference profile or ARN).
pub fn is_claude(model: &str) -> bool {
    model.to_ascii_lowercase().contains("claude")
}

/// The family whose reasoning state `model` issues and accepts.
pub fn family_of(model: &str) -> Family {
    if is_claude(model) {
        Family::Claude
    } else {
        Family::Converse
    }
}

/// Reads Converse answers for one request to `model` (the provider model id).
#[derive(Debug)]
pub struct ConverseDecoder {
    family: Family,
    model: String,
    error_type: Option<String>,
    stream: stream::StreamDecoder,
}

impl ConverseDecoder {
    /// A decoder for answers of the provider model `model` (it decides the reasoning family).
    pub fn new(model: &str) -> Self {
        let family = family_of(model);
        ConverseDecoder {
            family,
            model: model.to_owned(),
            error_type: None,
            stream: stream::StreamDecoder::new(family, model.to_owned()),
        }
    }
}

impl ProviderDecoder for ConverseDecoder {
    fn stream_content_type(&self) -> &'static str {
        EVENT_STREAM_CONTENT_TYPE
    }

    fn decode_response(&mut self, body: &[u8]) -> Result<Response, GatewayError> {
        response::decode_response(body, self.family, &self.model)
    }

    fn decode_error(&mut self, status: u16, body: &[u8]) -> ProviderError {
        response::decode_error(status, self.error_type.as_deref(), body)
    }

    fn decode_chunk(&mut self, chunk: &[u8], end_of_stream: bool, out: &mut Vec<Event>) {
        self.stream.push(chunk, end_of_stream, out);
    }

    fn wanted_response_header(&self) -> Option<&'static str> {
        Some(ERROR_TYPE_HEADER)
    }

    fn on_response_header(&mut self, value: &str) {
        self.error_type = Some(value.to_owned());
    }
}
