//! AWS Bedrock Runtime Converse / ConverseStream wire types: the request the gateway writes
//! (borrowing from the client's body), and the response, stream events and errors it reads.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::api::openai::Str;

/// `POST /model/{modelId}/converse` (and `/converse-stream`, same body).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseRequest<'a> {
    pub messages: Vec<Message<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<SystemBlock<'a>>,
    #[serde(skip_serializing_if = "InferenceConfig::is_empty")]
    pub inference_config: InferenceConfig<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ToolConfig<'a>>,
    /// Model-specific fields passed through to the model (Claude's `thinking`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_model_request_fields: Option<AdditionalFields>,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// One conversation turn.
#[derive(Debug, Serialize)]
pub struct Message<'a> {
    pub role: Role,
    pub content: Vec<ContentBlock<'a>>,
}

/// A content block: exactly one member set, as Bedrock's union types require.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ContentBlock<'a> {
    Text(&'a str),
    Image(ImageBlock<'a>),
    ToolUse(ToolUseBlock<'a>),
    ToolResult(ToolResultBlock<'a>),
}

/// `{"format": "png", "source": {"bytes": "<base64>"}}`; Bedrock takes images only as bytes.
#[derive(Debug, Serialize)]
pub struct ImageBlock<'a> {
    pub format: &'a str,
    pub source: ImageSource<'a>,
}

/// Image bytes, base64 in JSON.
#[derive(Debug, Serialize)]
pub struct ImageSource<'a> {
    pub bytes: &'a str,
}

/// A tool call the assistant made.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUseBlock<'a> {
    pub tool_use_id: &'a str,
    pub name: &'a str,
    pub input: &'a RawValue,
}

/// The result of a tool call, sent in a user turn.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolResultBlock<'a> {
    pub tool_use_id: &'a str,
    pub content: Vec<ToolResultContent<'a>>,
}

/// Part of a tool result.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ToolResultContent<'a> {
    Text(&'a str),
}

/// `{"text": ...}` in the top-level `system` list.
#[derive(Debug, Serialize)]
pub struct SystemBlock<'a> {
    pub text: Cow<'a, str>,
}

/// `inferenceConfig`.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<&'a str>,
}

impl InferenceConfig<'_> {
    pub fn is_empty(&self) -> bool {
        self.max_tokens.is_none()
            && self.temperature.is_none()
            && self.top_p.is_none()
            && self.stop_sequences.is_empty()
    }
}

/// `toolConfig`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig<'a> {
    pub tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice<'a>>,
}

/// `{"toolSpec": {...}}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool<'a> {
    pub tool_spec: ToolSpec<'a>,
}

/// A tool's name, description and JSON schema.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolSpec<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    pub input_schema: InputSchema<'a>,
}

/// `{"json": <schema>}`; the schema must be an object schema or Bedrock answers 400.
#[derive(Debug, Serialize)]
pub struct InputSchema<'a> {
    pub json: &'a RawValue,
}

/// `toolChoice`: `{"auto":{}}`, `{"any":{}}` or `{"tool":{"name":...}}`. Bedrock has no "none".
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

/// `additionalModelRequestFields` the gateway sets.
#[derive(Debug, Serialize)]
pub struct AdditionalFields {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Thinking>,
}

/// Claude's extended thinking switch.
#[derive(Debug, Serialize)]
pub struct Thinking {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub budget_tokens: u32,
}

/// A Converse response.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseResponse<'a> {
    #[serde(borrow, default)]
    pub output: Option<Output<'a>>,
    #[serde(borrow, default)]
    pub stop_reason: Option<Str<'a>>,
    #[serde(default)]
    pub usage: Option<Usage>,
}

/// `output`.
#[derive(Debug, Deserialize)]
pub struct Output<'a> {
    #[serde(borrow, default)]
    pub message: Option<ResponseMessage<'a>>,
}

/// `output.message`.
#[derive(Debug, Deserialize)]
pub struct ResponseMessage<'a> {
    #[serde(borrow, default)]
    pub content: Vec<ResponseBlock<'a>>,
}

/// A response content block; members the gateway does not use are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseBlock<'a> {
    #[serde(borrow, default)]
    pub text: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub tool_use: Option<ResponseToolUse<'a>>,
    #[serde(borrow, default)]
    pub reasoning_content: Option<ReasoningContent<'a>>,
}

/// A tool call in a response; `input` is a JSON value.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseToolUse<'a> {
    #[serde(borrow)]
    pub tool_use_id: Str<'a>,
    #[serde(borrow)]
    pub name: Str<'a>,
    #[serde(borrow, default)]
    pub input: Option<&'a RawValue>,
}

/// `reasoningContent` of a response block.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReasoningContent<'a> {
    #[serde(borrow, default)]
    pub reasoning_text: Option<ReasoningText<'a>>,
}

/// `reasoningContent.reasoningText`.
#[derive(Debug, Deserialize)]
pub struct ReasoningText<'a> {
    #[serde(borrow, default)]
    pub text: Option<Str<'a>>,
}

/// Token counts. Cached prompt tokens are counted apart from `inputTokens`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_read_input_tokens: u64,
    #[serde(default)]
    pub cache_write_input_tokens: u64,
}

/// The payload of any ConverseStream event; which members are set depends on `:event-type`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamEvent<'a> {
    #[serde(default)]
    pub content_block_index: Option<u64>,
    #[serde(borrow, default)]
    pub start: Option<BlockStart<'a>>,
    #[serde(borrow, default)]
    pub delta: Option<BlockDelta<'a>>,
    #[serde(borrow, default)]
    pub stop_reason: Option<Str<'a>>,
    #[serde(default)]
    pub usage: Option<Usage>,
    /// Exceptions carry `{"message": ...}`.
    #[serde(borrow, default)]
    pub message: Option<Str<'a>>,
}

/// `contentBlockStart.start`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockStart<'a> {
    #[serde(borrow, default)]
    pub tool_use: Option<ToolUseStart<'a>>,
}

/// The id and name of a tool call, at the start of its block.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUseStart<'a> {
    #[serde(borrow)]
    pub tool_use_id: Str<'a>,
    #[serde(borrow)]
    pub name: Str<'a>,
}

/// `contentBlockDelta.delta`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockDelta<'a> {
    #[serde(borrow, default)]
    pub text: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub tool_use: Option<ToolUseDelta<'a>>,
    #[serde(borrow, default)]
    pub reasoning_content: Option<ReasoningDelta<'a>>,
}

/// A piece of a tool call's input, as JSON text.
#[derive(Debug, Deserialize)]
pub struct ToolUseDelta<'a> {
    #[serde(borrow, default)]
    pub input: Option<Str<'a>>,
}

/// A piece of reasoning (`signature` and `redactedContent` pieces are ignored).
#[derive(Debug, Deserialize)]
pub struct ReasoningDelta<'a> {
    #[serde(borrow, default)]
    pub text: Option<Str<'a>>,
}

/// A Bedrock error body. The JSON protocol uses `message`; some front ends send `Message`, and
/// the error type may be in `__type` when the `x-amzn-errortype` header is missing.
#[derive(Debug, Deserialize)]
pub struct ErrorBody<'a> {
    #[serde(borrow, default, alias = "Message")]
    pub message: Option<Str<'a>>,
    #[serde(borrow, default, rename = "__type")]
    pub kind: Option<Str<'a>>,
}
