//! Anthropic Messages API wire types: the request the gateway writes (borrowing from the client's
//! request) and the response, stream event and error shapes it reads.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::openai::Str;

/// The `anthropic-version` header value the types here follow.
pub const API_VERSION: &str = "2023-06-01";

/// `POST /v1/messages` request body.
#[derive(Debug, Serialize)]
pub struct MessagesRequest<'a> {
    pub model: &'a str,
    pub max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemPrompt<'a>>,
    pub messages: Vec<Message<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Thinking>,
}

/// `system`: one string, or text blocks when several sources contribute.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum SystemPrompt<'a> {
    Text(Cow<'a, str>),
    Blocks(Vec<TextBlock<'a>>),
}

/// `{"type":"text","text":...}`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename = "text")]
pub struct TextBlock<'a> {
    pub text: Cow<'a, str>,
}

/// Speaker of a turn; Anthropic has only these two and requires them to alternate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// One turn of the conversation.
#[derive(Debug, Serialize)]
pub struct Message<'a> {
    pub role: Role,
    pub content: Vec<ContentBlock<'a>>,
}

/// A request content block.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock<'a> {
    Text { text: &'a str },
    Image { source: ImageSource<'a> },
    ToolUse { id: &'a str, name: &'a str, input: &'a RawValue },
    ToolResult { tool_use_id: &'a str, content: ToolResultContent<'a> },
}

/// Where an image comes from.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageSource<'a> {
    Base64 { media_type: &'a str, data: &'a str },
    Url { url: &'a str },
}

/// A tool result's content: a string or text blocks.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ToolResultContent<'a> {
    Text(&'a str),
    Blocks(Vec<ContentBlock<'a>>),
}

/// `metadata`.
#[derive(Debug, Serialize)]
pub struct Metadata<'a> {
    pub user_id: &'a str,
}

/// A client tool definition.
#[derive(Debug, Serialize)]
pub struct Tool<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    pub input_schema: &'a RawValue,
}

/// `tool_choice`.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice<'a> {
    Auto {
        #[serde(skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    Any {
        #[serde(skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    Tool {
        name: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    None,
}

/// Extended thinking configuration.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Thinking {
    Enabled { budget_tokens: u32 },
}

/// A (non-streamed) response message; also the `message` of `message_start`, where `content`
/// is empty.
#[derive(Debug, Deserialize)]
pub struct MessageResponse<'a> {
    #[serde(borrow)]
    pub id: Str<'a>,
    #[serde(borrow, default)]
    pub model: Str<'a>,
    #[serde(borrow, default)]
    pub content: Vec<ResponseBlock<'a>>,
    #[serde(borrow, default)]
    pub stop_reason: Option<Str<'a>>,
    #[serde(default)]
    pub usage: Option<Usage>,
}

/// Kind of a response content block; kinds the gateway does not translate land in `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockType {
    Text,
    ToolUse,
    Thinking,
    RedactedThinking,
    #[serde(other)]
    Other,
}

/// A response content block (flat: one pass, unknown kinds tolerated).
#[derive(Debug, Deserialize)]
pub struct ResponseBlock<'a> {
    #[serde(rename = "type")]
    pub kind: BlockType,
    #[serde(borrow, default)]
    pub text: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub name: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub input: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub thinking: Option<Str<'a>>,
}

/// Token counts; every field may be absent or null depending on the event.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
}

/// Kind of a stream event, from the `type` field of its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    MessageStart,
    ContentBlockStart,
    ContentBlockDelta,
    ContentBlockStop,
    MessageDelta,
    MessageStop,
    Ping,
    Error,
    #[serde(other)]
    Other,
}

/// One stream event's data (flat: which fields are set depends on `type`).
#[derive(Debug, Deserialize)]
pub struct StreamEvent<'a> {
    #[serde(rename = "type")]
    pub kind: EventType,
    #[serde(borrow, default)]
    pub message: Option<MessageResponse<'a>>,
    #[serde(default)]
    pub index: Option<u64>,
    #[serde(borrow, default)]
    pub content_block: Option<ResponseBlock<'a>>,
    #[serde(borrow, default)]
    pub delta: Option<StreamDelta<'a>>,
    #[serde(default)]
    pub usage: Option<Usage>,
    #[serde(borrow, default)]
    pub error: Option<ErrorDetail<'a>>,
}

/// Kind of a `content_block_delta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeltaType {
    TextDelta,
    InputJsonDelta,
    ThinkingDelta,
    SignatureDelta,
    #[serde(other)]
    Other,
}

/// The `delta` of `content_block_delta` (typed) or of `message_delta` (stop reason).
#[derive(Debug, Deserialize)]
pub struct StreamDelta<'a> {
    #[serde(rename = "type", default)]
    pub kind: Option<DeltaType>,
    #[serde(borrow, default)]
    pub text: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub partial_json: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub thinking: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub stop_reason: Option<Str<'a>>,
}

/// `{"type":"error","error":{...}}`, as a body or a stream event.
#[derive(Debug, Deserialize)]
pub struct ErrorResponse<'a> {
    #[serde(borrow)]
    pub error: ErrorDetail<'a>,
}

/// The provider's error type and message.
#[derive(Debug, Deserialize)]
pub struct ErrorDetail<'a> {
    #[serde(borrow, rename = "type", default)]
    pub kind: Str<'a>,
    #[serde(borrow, default)]
    pub message: Str<'a>,
}

// --- Serving Anthropic clients ------------------------------------------------------------------
//
// The types above are the gateway's side of a call *to* Anthropic. When the gateway serves an
// Anthropic client it reads the request and writes the response instead, so the directions flip:
// `*In` types read a client's request (they borrow through `Str`, because a plain `&str` cannot
// hold a JSON string with escapes, which every multi-line prompt has) and `*Out` types write the
// response and stream events.

/// `POST /v1/messages` as an Anthropic client sends it. Unknown fields are ignored by serde; the
/// translators decide explicitly about the known ones they cannot map.
#[derive(Debug, Deserialize)]
pub struct MessagesRequestIn<'a> {
    #[serde(borrow, default)]
    pub model: Option<Str<'a>>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(borrow, default)]
    pub system: Option<ContentIn<'a>>,
    #[serde(borrow)]
    pub messages: Vec<MessageIn<'a>>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub top_k: Option<u64>,
    #[serde(borrow, default)]
    pub stop_sequences: Option<Vec<Str<'a>>>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(borrow, default)]
    pub metadata: Option<MetadataIn<'a>>,
    #[serde(borrow, default)]
    pub tools: Option<Vec<ToolIn<'a>>>,
    #[serde(borrow, default)]
    pub tool_choice: Option<ToolChoiceIn<'a>>,
    #[serde(borrow, default)]
    pub thinking: Option<ThinkingIn<'a>>,
    #[serde(borrow, default)]
    pub service_tier: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub container: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub mcp_servers: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub context_management: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub output_config: Option<OutputConfigIn<'a>>,
    #[serde(borrow, default)]
    pub output_format: Option<OutputFormatIn<'a>>,
}

/// Speaker of a client turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleIn {
    User,
    Assistant,
}

/// One client turn.
#[derive(Debug, Deserialize)]
pub struct MessageIn<'a> {
    pub role: RoleIn,
    #[serde(borrow)]
    pub content: ContentIn<'a>,
}

/// `content` (and `system`, and a tool result's `content`): a string or an array of blocks.
#[derive(Debug)]
pub enum ContentIn<'a> {
    Text(Str<'a>),
    Blocks(Vec<BlockIn<'a>>),
}

impl<'de: 'a, 'a> Deserialize<'de> for ContentIn<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ContentVisitor;
        impl<'de> serde::de::Visitor<'de> for ContentVisitor {
            type Value = ContentIn<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of content blocks")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(ContentIn::Text(Str(Cow::Borrowed(v))))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ContentIn::Text(Str(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(ContentIn::Text(Str(Cow::Owned(v))))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut blocks = Vec::with_capacity(seq.size_hint().unwrap_or(2));
                while let Some(block) = seq.next_element()? {
                    blocks.push(block);
                }
                Ok(ContentIn::Blocks(blocks))
            }
        }
        deserializer.deserialize_any(ContentVisitor)
    }
}

/// Kind of a client content block; kinds without a translation land in `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockTypeIn {
    Text,
    Image,
    Document,
    ToolUse,
    ToolResult,
    Thinking,
    RedactedThinking,
    #[serde(other)]
    Other,
}

/// A client content block (flat: one pass, fields by kind). `cache_control` and `citations` are
/// not read: they change neither the answer's content nor its shape.
#[derive(Debug, Deserialize)]
pub struct BlockIn<'a> {
    #[serde(rename = "type")]
    pub kind: BlockTypeIn,
    #[serde(borrow, default)]
    pub text: Option<Str<'a>>,
    /// Read by kind ([`ImageSourceIn`] for images): other kinds give `source` other shapes.
    #[serde(borrow, default)]
    pub source: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub name: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub input: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub tool_use_id: Option<Str<'a>>,
    /// Read by kind ([`ContentIn`] for tool results), for the same reason as `source`.
    #[serde(borrow, default)]
    pub content: Option<&'a RawValue>,
    #[serde(default)]
    pub is_error: Option<bool>,
}

/// An image block's `source`: `base64` (media_type, data), `url`, or `file` (Files API).
#[derive(Debug, Deserialize)]
pub struct ImageSourceIn<'a> {
    #[serde(borrow, rename = "type")]
    pub kind: Str<'a>,
    #[serde(borrow, default)]
    pub media_type: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub data: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub url: Option<Str<'a>>,
}

/// `metadata`.
#[derive(Debug, Deserialize)]
pub struct MetadataIn<'a> {
    #[serde(borrow, default)]
    pub user_id: Option<Str<'a>>,
}

/// A tool definition: a client tool (`type` absent or `custom`) or a server/versioned tool
/// (`web_search_20250305`, `bash_20250124`, ...).
#[derive(Debug, Deserialize)]
pub struct ToolIn<'a> {
    #[serde(borrow, rename = "type", default)]
    pub kind: Option<Str<'a>>,
    #[serde(borrow)]
    pub name: Str<'a>,
    #[serde(borrow, default)]
    pub description: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub input_schema: Option<&'a RawValue>,
}

/// `tool_choice`.
#[derive(Debug, Deserialize)]
pub struct ToolChoiceIn<'a> {
    #[serde(borrow, rename = "type")]
    pub kind: Str<'a>,
    #[serde(borrow, default)]
    pub name: Option<Str<'a>>,
    #[serde(default)]
    pub disable_parallel_tool_use: Option<bool>,
}

/// `thinking`: `enabled` with a budget, `disabled`, or `adaptive`.
#[derive(Debug, Deserialize)]
pub struct ThinkingIn<'a> {
    #[serde(borrow, rename = "type")]
    pub kind: Str<'a>,
    #[serde(default)]
    pub budget_tokens: Option<u64>,
}

/// `output_config` (effort control).
#[derive(Debug, Deserialize)]
pub struct OutputConfigIn<'a> {
    #[serde(borrow, default)]
    pub effort: Option<Str<'a>>,
}

/// `output_format` (structured outputs): `{"type":"json_schema","schema":{...}}`.
#[derive(Debug, Deserialize)]
pub struct OutputFormatIn<'a> {
    #[serde(borrow, rename = "type")]
    pub kind: Str<'a>,
    #[serde(borrow, default)]
    pub schema: Option<&'a RawValue>,
}

/// A Messages response as the gateway writes it; also the `message` of `message_start`.
#[derive(Debug, Serialize)]
pub struct MessageOut<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub role: &'static str,
    pub model: &'a str,
    pub content: Vec<BlockOut<'a>>,
    pub stop_reason: Option<&'static str>,
    pub stop_sequence: Option<&'a str>,
    pub usage: UsageOut,
}

/// A response content block as the gateway writes it.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockOut<'a> {
    Text {
        text: Cow<'a, str>,
    },
    /// `input` is a JSON object, written verbatim.
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a RawValue,
    },
    /// Providers other than Anthropic sign nothing: `signature` is empty.
    Thinking {
        thinking: Cow<'a, str>,
        signature: &'static str,
    },
}

/// `usage` as the gateway writes it. `input_tokens` excludes cached tokens, as Anthropic's does.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct UsageOut {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub cache_creation_input_tokens: u64,
}

/// One stream event as the gateway writes it (the SSE `event:` name equals `type`).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEventOut<'a> {
    MessageStart { message: MessageOut<'a> },
    ContentBlockStart { index: u32, content_block: BlockOut<'a> },
    ContentBlockDelta { index: u32, delta: DeltaOut<'a> },
    ContentBlockStop { index: u32 },
    MessageDelta { delta: MessageDeltaOut, usage: UsageOut },
    MessageStop,
    Error { error: ErrorOut<'a> },
}

impl StreamEventOut<'_> {
    /// The SSE `event:` name of this event.
    pub fn name(&self) -> &'static str {
        match self {
            StreamEventOut::MessageStart { .. } => "message_start",
            StreamEventOut::ContentBlockStart { .. } => "content_block_start",
            StreamEventOut::ContentBlockDelta { .. } => "content_block_delta",
            StreamEventOut::ContentBlockStop { .. } => "content_block_stop",
            StreamEventOut::MessageDelta { .. } => "message_delta",
            StreamEventOut::MessageStop => "message_stop",
            StreamEventOut::Error { .. } => "error",
        }
    }
}

/// The `delta` of a `content_block_delta` the gateway writes.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DeltaOut<'a> {
    TextDelta { text: &'a str },
    InputJsonDelta { partial_json: &'a str },
    ThinkingDelta { thinking: &'a str },
}

/// The `delta` of a `message_delta` the gateway writes.
#[derive(Debug, Serialize)]
pub struct MessageDeltaOut {
    pub stop_reason: Option<&'static str>,
    pub stop_sequence: Option<()>,
}

/// The `error` of an error event.
#[derive(Debug, Serialize)]
pub struct ErrorOut<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub message: &'a str,
}
