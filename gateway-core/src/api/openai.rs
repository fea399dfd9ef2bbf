//! OpenAI Chat Completions wire types: the request as clients send it (borrowing from the body)
//! and the response, chunk and usage shapes the gateway writes back.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A JSON string that borrows from the request body when it holds no escapes.
///
/// `Option<Cow<str>>` never borrows with serde (only a bare `Cow` field does), so big texts such
/// as message contents, tool arguments and data URLs go through this type instead.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Str<'a>(pub Cow<'a, str>);

impl Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Str<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

/// `POST /v1/chat/completions` request body. Fields the gateway does not know are ignored by serde.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ChatCompletionRequest<'a> {
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub model: Option<Str<'a>>,
    #[serde(borrow)]
    pub messages: Vec<ChatMessage<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop<'a>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub user: Option<Str<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool<'a>>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat<'a>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<Str<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u32>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub logit_bias: Option<&'a RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub modalities: Option<Vec<Str<'a>>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<&'a RawValue>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub web_search_options: Option<&'a RawValue>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub functions: Option<&'a RawValue>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub function_call: Option<&'a RawValue>,
}

/// `stream_options`.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct StreamOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
}

/// `stop`: one sequence or several.
#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Stop<'a> {
    One(#[serde(borrow)] Str<'a>),
    Many(#[serde(borrow)] Vec<Str<'a>>),
}

/// Author of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    Function,
}

/// One message; which fields matter depends on `role`. A flat struct rather than a tagged enum so
/// that serde reads each message in one pass instead of buffering it.
#[derive(Debug, Deserialize, Serialize)]
pub struct ChatMessage<'a> {
    pub role: Role,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub content: Option<MessageContent<'a>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall<'a>>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<Str<'a>>,
}

/// Message content: a plain string or an array of typed parts.
#[derive(Debug)]
pub enum MessageContent<'a> {
    Text(Str<'a>),
    Parts(Vec<ContentPart<'a>>),
}

impl Serialize for MessageContent<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            MessageContent::Text(text) => text.serialize(serializer),
            MessageContent::Parts(parts) => parts.serialize(serializer),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for MessageContent<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ContentVisitor;
        impl<'de> Visitor<'de> for ContentVisitor {
            type Value = MessageContent<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of content parts")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(MessageContent::Text(Str(Cow::Borrowed(v))))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(MessageContent::Text(Str(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(MessageContent::Text(Str(Cow::Owned(v))))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(2));
                while let Some(part) = seq.next_element()? {
                    parts.push(part);
                }
                Ok(MessageContent::Parts(parts))
            }
        }
        deserializer.deserialize_any(ContentVisitor)
    }
}

/// Kind of a content part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartType {
    Text,
    ImageUrl,
    InputAudio,
    File,
    Refusal,
    #[serde(other)]
    Other,
}

/// One content part (flat, for the same one-pass reason as [`ChatMessage`]).
#[derive(Debug, Deserialize, Serialize)]
pub struct ContentPart<'a> {
    #[serde(rename = "type")]
    pub kind: PartType,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Str<'a>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<ImageUrl<'a>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<Str<'a>>,
}

/// `image_url` part payload; `detail` has no Anthropic equivalent and is ignored.
#[derive(Debug, Deserialize, Serialize)]
pub struct ImageUrl<'a> {
    #[serde(borrow)]
    pub url: Str<'a>,
}

/// A tool call the assistant made earlier in the conversation.
#[derive(Debug, Deserialize, Serialize)]
pub struct ToolCall<'a> {
    #[serde(borrow)]
    pub id: Str<'a>,
    #[serde(borrow, rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Str<'a>>,
    #[serde(borrow)]
    pub function: FunctionCall<'a>,
}

/// Name and JSON-encoded arguments of a function call.
#[derive(Debug, Deserialize, Serialize)]
pub struct FunctionCall<'a> {
    #[serde(borrow)]
    pub name: Str<'a>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Str<'a>>,
}

/// A tool offered to the model.
#[derive(Debug, Deserialize, Serialize)]
pub struct Tool<'a> {
    #[serde(borrow, rename = "type")]
    pub kind: Str<'a>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionDefinition<'a>>,
}

/// A function tool's definition; `parameters` is a JSON schema kept verbatim.
#[derive(Debug, Deserialize, Serialize)]
pub struct FunctionDefinition<'a> {
    #[serde(borrow)]
    pub name: Str<'a>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Str<'a>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<&'a RawValue>,
}

/// `tool_choice`: a mode string or a named function.
#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ToolChoice<'a> {
    Mode(#[serde(borrow)] Str<'a>),
    Named(#[serde(borrow)] NamedToolChoice<'a>),
}

/// `{"type":"function","function":{"name":...}}`.
#[derive(Debug, Deserialize, Serialize)]
pub struct NamedToolChoice<'a> {
    #[serde(borrow, rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Str<'a>>,
    #[serde(borrow)]
    pub function: NamedFunction<'a>,
}

/// The function named by a [`NamedToolChoice`].
#[derive(Debug, Deserialize, Serialize)]
pub struct NamedFunction<'a> {
    #[serde(borrow)]
    pub name: Str<'a>,
}

/// `response_format`.
#[derive(Debug, Deserialize, Serialize)]
pub struct ResponseFormat<'a> {
    #[serde(borrow, rename = "type")]
    pub kind: Str<'a>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<JsonSchemaFormat<'a>>,
}

/// `response_format.json_schema`.
#[derive(Debug, Deserialize, Serialize)]
pub struct JsonSchemaFormat<'a> {
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Str<'a>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<&'a RawValue>,
}

/// A `chat.completion` response.
#[derive(Debug, Serialize)]
pub struct ChatCompletion<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub choices: [Choice<'a>; 1],
    pub usage: Usage,
}

/// A `chat.completion` response with any number of choices, for providers that serve `n > 1`.
#[derive(Debug, Serialize)]
pub struct ChatCompletionN<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub choices: Vec<Choice<'a>>,
    pub usage: Usage,
}

/// One choice of a response.
#[derive(Debug, Serialize)]
pub struct Choice<'a> {
    pub index: u32,
    pub message: ResponseMessage<'a>,
    /// Always `null`: logprobs are rejected up front.
    pub logprobs: Option<()>,
    pub finish_reason: Option<&'static str>,
}

/// The assistant message of a response.
#[derive(Debug, Serialize)]
pub struct ResponseMessage<'a> {
    pub role: &'static str,
    pub content: Option<Cow<'a, str>>,
    pub refusal: Option<()>,
    /// Reasoning text, the convention DeepSeek and LiteLLM use for thinking models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ResponseToolCall<'a>>,
}

/// A tool call in a response; `arguments` is a string holding JSON.
#[derive(Debug, Serialize)]
pub struct ResponseToolCall<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: ResponseFunction<'a>,
}

/// Name and arguments of a response tool call.
#[derive(Debug, Serialize)]
pub struct ResponseFunction<'a> {
    pub name: &'a str,
    pub arguments: &'a str,
}

/// Token usage as OpenAI reports it.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub prompt_tokens_details: PromptTokensDetails,
    pub completion_tokens_details: CompletionTokensDetails,
}

/// `usage.prompt_tokens_details`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct PromptTokensDetails {
    pub cached_tokens: u64,
}

/// `usage.completion_tokens_details`: how much of the completion was reasoning (0 when the
/// provider reports none, as OpenAI writes it for non-reasoning models).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct CompletionTokensDetails {
    pub reasoning_tokens: u64,
}

/// A `chat.completion.chunk` stream event.
#[derive(Debug, Serialize)]
pub struct ChatCompletionChunk<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub choices: &'a [ChunkChoice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// The choice of a chunk.
#[derive(Debug, Serialize)]
pub struct ChunkChoice<'a> {
    pub index: u32,
    pub delta: ChunkDelta<'a>,
    pub logprobs: Option<()>,
    pub finish_reason: Option<&'static str>,
}

/// What a chunk adds to the message.
#[derive(Debug, Default, Serialize)]
pub struct ChunkDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<[ChunkToolCall<'a>; 1]>,
}

/// A tool-call fragment: the first one carries id, type and name, later ones argument text.
#[derive(Debug, Serialize)]
pub struct ChunkToolCall<'a> {
    pub index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    pub function: ChunkFunction<'a>,
}

/// Name (first fragment only) and argument text of a tool-call fragment.
#[derive(Debug, Serialize)]
pub struct ChunkFunction<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    pub arguments: &'a str,
}

// --- Reading an OpenAI provider's answer ----------------------------------------------------------
//
// The types above write responses to OpenAI clients; these read what an OpenAI-compatible provider
// sent, for clients of another API. One flat shape serves `chat.completion` (`message`) and
// `chat.completion.chunk` (`delta`), and an in-stream `error`.

/// A `chat.completion` or `chat.completion.chunk` from a provider.
#[derive(Debug, Deserialize)]
pub struct ProviderCompletion<'a> {
    #[serde(borrow, default)]
    pub id: Str<'a>,
    #[serde(borrow, default)]
    pub model: Str<'a>,
    #[serde(borrow, default)]
    pub choices: Vec<ProviderChoice<'a>>,
    #[serde(default)]
    pub usage: Option<ProviderUsage>,
    #[serde(borrow, default)]
    pub error: Option<ProviderError<'a>>,
}

/// One choice of a provider answer: `message` in a completion, `delta` in a chunk.
#[derive(Debug, Deserialize)]
pub struct ProviderChoice<'a> {
    #[serde(default)]
    pub index: Option<u32>,
    #[serde(borrow, default)]
    pub message: Option<ProviderMessage<'a>>,
    #[serde(borrow, default)]
    pub delta: Option<ProviderMessage<'a>>,
    #[serde(borrow, default)]
    pub finish_reason: Option<Str<'a>>,
}

/// The assistant message (or a chunk's piece of it).
#[derive(Debug, Default, Deserialize)]
pub struct ProviderMessage<'a> {
    #[serde(borrow, default)]
    pub content: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub refusal: Option<Str<'a>>,
    /// Reasoning text (DeepSeek, vLLM, LiteLLM and this gateway's own convention).
    #[serde(borrow, default)]
    pub reasoning_content: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub tool_calls: Option<Vec<ProviderToolCall<'a>>>,
}

/// A tool call, whole (completion) or a fragment (chunk: `index` always, `id` and name first).
#[derive(Debug, Deserialize)]
pub struct ProviderToolCall<'a> {
    #[serde(default)]
    pub index: Option<u32>,
    #[serde(borrow, default)]
    pub id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub function: Option<ProviderFunction<'a>>,
    /// A call of a free-form (`custom`) tool: name and (a piece of) its raw input.
    #[serde(borrow, default)]
    pub custom: Option<ProviderCustom<'a>>,
}

/// Name and (a piece of) the free-form input of a custom tool call.
#[derive(Debug, Deserialize)]
pub struct ProviderCustom<'a> {
    #[serde(borrow, default)]
    pub name: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub input: Option<Str<'a>>,
}

/// Name and (a piece of) the JSON-string arguments of a tool call.
#[derive(Debug, Deserialize)]
pub struct ProviderFunction<'a> {
    #[serde(borrow, default)]
    pub name: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub arguments: Option<Str<'a>>,
}

/// OpenAI's `usage`, the parts the gateway counts.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct ProviderUsage {
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    #[serde(default)]
    pub completion_tokens: Option<u64>,
    #[serde(default)]
    pub prompt_tokens_details: Option<ProviderPromptDetails>,
    #[serde(default)]
    pub completion_tokens_details: Option<ProviderCompletionDetails>,
}

/// `usage.prompt_tokens_details`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct ProviderPromptDetails {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
}

/// `usage.completion_tokens_details`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct ProviderCompletionDetails {
    #[serde(default)]
    pub reasoning_tokens: Option<u64>,
}

impl ProviderUsage {
    /// The gateway's accounting: OpenAI's prompt tokens already include the cached ones.
    pub fn to_token_usage(self) -> crate::usage::TokenUsage {
        crate::usage::TokenUsage {
            input: self.prompt_tokens.unwrap_or(0),
            output: self.completion_tokens.unwrap_or(0),
            cache_read: self.prompt_tokens_details.and_then(|d| d.cached_tokens).unwrap_or(0),
            cache_creation: 0,
            reasoning: self.completion_tokens_details.and_then(|d| d.reasoning_tokens).unwrap_or(0),
        }
    }
}

/// `{"error":{...}}`: an error body, or an error event inside a stream.
#[derive(Debug, Deserialize)]
pub struct ProviderErrorResponse<'a> {
    #[serde(borrow)]
    pub error: ProviderError<'a>,
}

/// OpenAI's error object (`code` may be a string, a number or null).
#[derive(Debug, Deserialize)]
pub struct ProviderError<'a> {
    #[serde(borrow, default)]
    pub message: Str<'a>,
    #[serde(borrow, rename = "type", default)]
    pub kind: Option<Str<'a>>,
    /// OpenAI's `code` (`context_length_exceeded`...), whatever JSON it is.
    #[serde(borrow, default)]
    pub code: Option<&'a RawValue>,
}
