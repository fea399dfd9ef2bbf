//! The Chat Completions request as this codec writes it. The shared request type in
//! [`crate::api::openai`] is the one clients send (it borrows a parsed body and has no `file`
//! parts, `strict`, custom tools or `developer` content arrays to write); answers are read with
//! the shared provider types there.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::value::RawValue;

/// `POST /v1/chat/completions` body.
#[derive(Debug, Serialize)]
pub struct ChatRequest<'a> {
    pub model: &'a str,
    pub messages: Vec<ChatMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoiceOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormatOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    /// OpenAI-family members the conversation has no field for (`seed`, `service_tier`...).
    #[serde(flatten)]
    pub extras: BTreeMap<&'a str, &'a RawValue>,
}

/// `stream_options`.
#[derive(Debug, Serialize)]
pub struct StreamOptions {
    pub include_usage: bool,
}

/// One message.
#[derive(Debug, Serialize)]
pub struct ChatMessage<'a> {
    pub role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Content<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<&'a str>,
}

/// A string, or typed parts.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Content<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<PartOut<'a>>),
}

/// A content part.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PartOut<'a> {
    Text { text: Cow<'a, str> },
    ImageUrl { image_url: ImageUrl<'a> },
    File { file: FileOut<'a> },
    InputAudio { input_audio: AudioOut<'a> },
}

/// `image_url.url`: an https URL or a data URL.
#[derive(Debug, Serialize)]
pub struct ImageUrl<'a> {
    pub url: Cow<'a, str>,
}

/// A `file` part: inline data (a data URL) or an uploaded file's id.
#[derive(Debug, Serialize)]
pub struct FileOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_id: Option<&'a str>,
}

/// `input_audio`.
#[derive(Debug, Serialize)]
pub struct AudioOut<'a> {
    pub data: &'a str,
    pub format: &'a str,
}

/// A call the assistant made.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolCallOut<'a> {
    Function { id: &'a str, function: FunctionOut<'a> },
    Custom { id: &'a str, custom: CustomOut<'a> },
}

/// A function call's name and JSON-string arguments.
#[derive(Debug, Serialize)]
pub struct FunctionOut<'a> {
    pub name: &'a str,
    pub arguments: &'a str,
}

/// A custom tool call's name and free-form input.
#[derive(Debug, Serialize)]
pub struct CustomOut<'a> {
    pub name: &'a str,
    pub input: &'a str,
}

/// A tool offered to the model.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolOut<'a> {
    Function { function: FunctionDef<'a> },
    Custom { custom: CustomDef<'a> },
}

/// A function tool.
#[derive(Debug, Serialize)]
pub struct FunctionDef<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// A free-form tool.
#[derive(Debug, Serialize)]
pub struct CustomDef<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
}

/// `tool_choice`: a mode, or one tool.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ToolChoiceOut<'a> {
    Mode(&'static str),
    Named(NamedChoice<'a>),
}

/// `{"type":"function","function":{"name"}}` or the custom form.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NamedChoice<'a> {
    Function { function: Name<'a> },
    Custom { custom: Name<'a> },
}

/// A bare name.
#[derive(Debug, Serialize)]
pub struct Name<'a> {
    pub name: &'a str,
}

/// `response_format`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormatOut<'a> {
    JsonObject,
    JsonSchema { json_schema: JsonSchemaOut<'a> },
}

/// `response_format.json_schema`.
#[derive(Debug, Serialize)]
pub struct JsonSchemaOut<'a> {
    pub name: &'a str,
    pub schema: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}
