//! The Converse wire shapes this codec writes and reads, complete where the shared
//! `api::bedrock` types stop (cache points, documents, reasoning with signatures, redacted
//! reasoning, tool result status). Request types borrow from the conversation [`Request`]
//! (crate::conversation::Request); response types borrow from the provider's body.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::api::openai::Str;

/// `POST /model/{modelId}/converse[-stream]`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Body<'a> {
    pub messages: Vec<Message<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<Block<'a>>,
    pub inference_config: InferenceConfig<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ToolConfig<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_model_request_fields: Option<AdditionalFields>,
}

/// `user` or `assistant`: Converse has no other role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// One turn.
#[derive(Debug, Serialize)]
pub struct Message<'a> {
    pub role: Role,
    pub content: Vec<Block<'a>>,
}

/// A content block of a message or of `system` (which takes only `text` and `cachePoint`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Block<'a> {
    Text(Cow<'a, str>),
    Image(Image<'a>),
    Document(Document<'a>),
    ToolUse(ToolUse<'a>),
    ToolResult(ToolResult<'a>),
    ReasoningContent(ReasoningContent<'a>),
    CachePoint(CachePoint),
}

impl Block<'_> {
    /// Whether this block is a cache breakpoint.
    pub fn is_cache_point(&self) -> bool {
        matches!(self, Block::CachePoint(_))
    }
}

/// `{"type": "default"}`, the only kind Converse knows.
#[derive(Debug, Serialize)]
pub struct CachePoint {
    #[serde(rename = "type")]
    pub kind: &'static str,
}

impl CachePoint {
    /// The default cache point.
    pub const DEFAULT: CachePoint = CachePoint { kind: "default" };
}

/// `{"format": "png", "source": {"bytes": ...}}`.
#[derive(Debug, Serialize)]
pub struct Image<'a> {
    pub format: &'static str,
    pub source: Bytes<'a>,
}

/// Base64 bytes in JSON.
#[derive(Debug, Serialize)]
pub struct Bytes<'a> {
    pub bytes: Cow<'a, str>,
}

/// `{"format": "pdf", "name": ..., "source": {"bytes": ...}}`.
#[derive(Debug, Serialize)]
pub struct Document<'a> {
    pub format: &'static str,
    pub name: String,
    pub source: Bytes<'a>,
}

/// An assistant's tool call; `input` is the JSON object, verbatim.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUse<'a> {
    pub tool_use_id: &'a str,
    pub name: &'a str,
    pub input: &'a RawValue,
}

/// The answer to a tool call.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolResult<'a> {
    pub tool_use_id: &'a str,
    pub content: Vec<ToolResultContent<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
}

/// A block of a tool result.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ToolResultContent<'a> {
    Text(&'a str),
    Image(Image<'a>),
    Document(Document<'a>),
}

/// `reasoningContent`: signed text or a redacted payload.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ReasoningContent<'a> {
    ReasoningText(ReasoningText<'a>),
    RedactedContent(&'a str),
}

/// `{"text": ..., "signature": ...}`.
#[derive(Debug, Serialize)]
pub struct ReasoningText<'a> {
    pub text: &'a str,
    pub signature: &'a str,
}

/// `inferenceConfig`.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceConfig<'a> {
    pub max_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<&'a str>,
}

/// `toolConfig`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig<'a> {
    pub tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice<'a>>,
}

/// An entry of `toolConfig.tools`: a tool or a cache point after the tools before it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Tool<'a> {
    ToolSpec(ToolSpec<'a>),
    CachePoint(CachePoint),
}

/// A tool's name, description and input schema.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolSpec<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    pub input_schema: InputSchema<'a>,
}

/// `{"json": <schema>}`.
#[derive(Debug, Serialize)]
pub struct InputSchema<'a> {
    pub json: &'a RawValue,
}

/// `{"auto":{}}`, `{"any":{}}` or `{"tool":{"name":...}}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ToolChoice<'a> {
    Auto(Empty),
    Any(Empty),
    Tool(NamedTool<'a>),
}

/// `{}`.
#[derive(Debug, Serialize)]
pub struct Empty {}

/// `{"name": ...}`.
#[derive(Debug, Serialize)]
pub struct NamedTool<'a> {
    pub name: &'a str,
}

/// `additionalModelRequestFields`: Claude's own request fields, passed through by Converse.
#[derive(Debug, Default, Serialize)]
pub struct AdditionalFields {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Thinking>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
}

/// Claude's `thinking`: `enabled` with a budget, or `adaptive`.
#[derive(Debug, Serialize)]
pub struct Thinking {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<u64>,
}

/// A Converse response; members the codec does not use are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Response<'a> {
    #[serde(borrow, default)]
    pub output: Option<Output<'a>>,
    #[serde(borrow, default)]
    pub stop_reason: Option<Str<'a>>,
    #[serde(default)]
    pub usage: Option<Usage>,
    #[serde(borrow, default)]
    pub additional_model_response_fields: Option<AdditionalResponse<'a>>,
}

/// `additionalModelResponseFields`: Claude names the stop sequence it met there.
#[derive(Debug, Deserialize)]
pub struct AdditionalResponse<'a> {
    #[serde(borrow, default)]
    pub stop_sequence: Option<Str<'a>>,
}

/// `output`.
#[derive(Debug, Deserialize)]
pub struct Output<'a> {
    #[serde(borrow, default)]
    pub message: Option<OutputMessage<'a>>,
}

/// `output.message`.
#[derive(Debug, Deserialize)]
pub struct OutputMessage<'a> {
    /// Kept raw so a block of a kind the codec does not read is carried whole.
    #[serde(borrow, default)]
    pub content: Vec<&'a RawValue>,
}

/// A response content block.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputBlock<'a> {
    #[serde(borrow, default)]
    pub text: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub tool_use: Option<OutputToolUse<'a>>,
    #[serde(borrow, default)]
    pub reasoning_content: Option<OutputReasoning<'a>>,
}

/// A tool call in a response.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputToolUse<'a> {
    #[serde(borrow)]
    pub tool_use_id: Str<'a>,
    #[serde(borrow)]
    pub name: Str<'a>,
    #[serde(borrow, default)]
    pub input: Option<&'a RawValue>,
}

/// `reasoningContent` of a response block, or the `reasoningContent` delta of a stream event.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputReasoning<'a> {
    #[serde(borrow, default)]
    pub reasoning_text: Option<OutputReasoningText<'a>>,
    /// Base64 in JSON.
    #[serde(borrow, default)]
    pub redacted_content: Option<Str<'a>>,
    /// Stream deltas only: a piece of reasoning text.
    #[serde(borrow, default)]
    pub text: Option<Str<'a>>,
    /// Stream deltas only: the block's signature.
    #[serde(borrow, default)]
    pub signature: Option<Str<'a>>,
}

/// `reasoningContent.reasoningText`.
#[derive(Debug, Deserialize)]
pub struct OutputReasoningText<'a> {
    #[serde(borrow, default)]
    pub text: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub signature: Option<Str<'a>>,
}

/// Token counts. `inputTokens` excludes the cache reads and writes (the recorded
/// `totalTokens` is `inputTokens + outputTokens + cacheRead + cacheWrite`).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_write_input_tokens: Option<u64>,
}

/// The payload of any ConverseStream event; which members are set depends on `:event-type`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamEvent<'a> {
    #[serde(default)]
    pub content_block_index: Option<u64>,
    #[serde(borrow, default)]
    pub start: Option<StreamStart<'a>>,
    #[serde(borrow, default)]
    pub delta: Option<StreamDelta<'a>>,
    #[serde(borrow, default)]
    pub stop_reason: Option<Str<'a>>,
    #[serde(default)]
    pub usage: Option<Usage>,
    #[serde(borrow, default)]
    pub additional_model_response_fields: Option<AdditionalResponse<'a>>,
    /// Exceptions carry `{"message": ...}`.
    #[serde(borrow, default, alias = "Message")]
    pub message: Option<Str<'a>>,
}

/// `contentBlockStart.start`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamStart<'a> {
    #[serde(borrow, default)]
    pub tool_use: Option<StreamToolStart<'a>>,
}

/// The id and name of a tool call at the start of its block.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamToolStart<'a> {
    #[serde(borrow)]
    pub tool_use_id: Str<'a>,
    #[serde(borrow)]
    pub name: Str<'a>,
}

/// `contentBlockDelta.delta`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamDelta<'a> {
    #[serde(borrow, default)]
    pub text: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub tool_use: Option<StreamToolDelta<'a>>,
    #[serde(borrow, default)]
    pub reasoning_content: Option<OutputReasoning<'a>>,
}

/// A piece of a tool call's input, as JSON text.
#[derive(Debug, Deserialize)]
pub struct StreamToolDelta<'a> {
    #[serde(borrow, default)]
    pub input: Option<Str<'a>>,
}

/// A Bedrock error body: `message` (JSON protocol) or `Message`, and maybe `__type`.
#[derive(Debug, Deserialize)]
pub struct ErrorBody<'a> {
    #[serde(borrow, default, alias = "Message")]
    pub message: Option<Str<'a>>,
    #[serde(borrow, default, rename = "__type")]
    pub kind: Option<Str<'a>>,
}
