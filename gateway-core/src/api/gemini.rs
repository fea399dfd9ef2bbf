//! Google Gemini (Generative Language API, `v1beta`) wire types: the `generateContent` request
//! the gateway writes, and the response, stream event and error shapes it reads. JSON member
//! names are the API's camelCase ones.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::openai::Str;

/// `POST /v1beta/models/{model}:generateContent` (and `:streamGenerateContent`) body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentRequest<'a> {
    pub contents: Vec<Content<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_instruction: Option<Content<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ToolConfig<'a>>,
    #[serde(skip_serializing_if = "GenerationConfig::is_empty")]
    pub generation_config: GenerationConfig<'a>,
}

/// One turn of the conversation (or the system instruction, which has no role).
#[derive(Debug, Serialize)]
pub struct Content<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    pub parts: Vec<SignedPart<'a>>,
}

/// One part of a turn; exactly one member is set.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Part<'a> {
    Text(&'a str),
    InlineData(Blob<'a>),
    FileData(FileData<'a>),
    FunctionCall(FunctionCall<'a>),
    FunctionResponse(FunctionResponse<'a>),
}

/// A part plus the thought signature Gemini 3 expects on replayed function calls.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedPart<'a> {
    #[serde(flatten)]
    pub part: Part<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thought_signature: Option<Cow<'a, str>>,
}

impl<'a> From<Part<'a>> for SignedPart<'a> {
    fn from(part: Part<'a>) -> Self {
        SignedPart { part, thought_signature: None }
    }
}

/// Base64 bytes with their media type.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blob<'a> {
    pub mime_type: &'a str,
    pub data: &'a str,
}

/// A file referenced by URI.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileData<'a> {
    pub mime_type: &'a str,
    pub file_uri: &'a str,
}

/// A function call the model made earlier; `args` is a JSON object.
#[derive(Debug, Serialize)]
pub struct FunctionCall<'a> {
    pub name: &'a str,
    pub args: &'a RawValue,
}

/// The result of a function call; `response` must be a JSON object.
#[derive(Debug, Serialize)]
pub struct FunctionResponse<'a> {
    pub name: &'a str,
    pub response: Cow<'a, RawValue>,
}

/// A group of function declarations.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool<'a> {
    pub function_declarations: Vec<FunctionDeclaration<'a>>,
}

/// One function the model may call; `parameters` is Gemini's OpenAPI-subset schema.
#[derive(Debug, Serialize)]
pub struct FunctionDeclaration<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
}

/// `toolConfig`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig<'a> {
    pub function_calling_config: FunctionCallingConfig<'a>,
}

/// `toolConfig.functionCallingConfig`: mode `AUTO`, `ANY` or `NONE`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionCallingConfig<'a> {
    pub mode: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_function_names: Vec<&'a str>,
}

/// `generationConfig`.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_schema: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_config: Option<ThinkingConfig>,
}

impl GenerationConfig<'_> {
    /// Nothing set: the member is left out of the request.
    pub fn is_empty(&self) -> bool {
        self.max_output_tokens.is_none()
            && self.temperature.is_none()
            && self.top_p.is_none()
            && self.stop_sequences.is_empty()
            && self.candidate_count.is_none()
            && self.presence_penalty.is_none()
            && self.frequency_penalty.is_none()
            && self.seed.is_none()
            && self.response_mime_type.is_none()
            && self.response_schema.is_none()
            && self.thinking_config.is_none()
    }
}

/// `generationConfig.thinkingConfig`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThinkingConfig {
    pub thinking_budget: u32,
    /// Asks for thought summaries, returned as `reasoning_content`.
    pub include_thoughts: bool,
}

/// A `generateContent` response, or one event of a `streamGenerateContent?alt=sse` stream.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentResponse<'a> {
    #[serde(borrow, default)]
    pub candidates: Vec<Candidate<'a>>,
    #[serde(borrow, default)]
    pub prompt_feedback: Option<PromptFeedback<'a>>,
    #[serde(default)]
    pub usage_metadata: Option<UsageMetadata>,
    #[serde(borrow, default)]
    pub model_version: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub response_id: Option<Str<'a>>,
    /// Set when an error arrives inside a stream instead of a response.
    #[serde(borrow, default)]
    pub error: Option<ErrorBody<'a>>,
}

/// One generated answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate<'a> {
    #[serde(borrow, default)]
    pub content: Option<CandidateContent<'a>>,
    #[serde(borrow, default)]
    pub finish_reason: Option<Str<'a>>,
    /// Absent on single-candidate answers (read as 0).
    #[serde(default)]
    pub index: Option<u32>,
}

/// A candidate's content.
#[derive(Debug, Deserialize)]
pub struct CandidateContent<'a> {
    #[serde(borrow, default)]
    pub parts: Vec<ResponsePart<'a>>,
}

/// One response part (flat: whichever members are present).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponsePart<'a> {
    #[serde(borrow, default)]
    pub text: Option<Str<'a>>,
    /// The text is a thought summary, not the answer.
    #[serde(default)]
    pub thought: Option<bool>,
    #[serde(borrow, default)]
    pub function_call: Option<ResponseFunctionCall<'a>>,
    /// Opaque reasoning state Gemini 3 requires back on the replayed part (function calls).
    #[serde(borrow, default)]
    pub thought_signature: Option<Str<'a>>,
}

/// A function call in a response. Gemini sends no id (Vertex sometimes does).
#[derive(Debug, Deserialize)]
pub struct ResponseFunctionCall<'a> {
    #[serde(borrow, default)]
    pub id: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub name: Str<'a>,
    #[serde(borrow, default)]
    pub args: Option<&'a RawValue>,
}

/// Why a prompt was blocked, when it was.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptFeedback<'a> {
    #[serde(borrow, default)]
    pub block_reason: Option<Str<'a>>,
}

/// Token counts; every member is optional and streams repeat or complete them as they go.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    #[serde(default)]
    pub prompt_token_count: Option<u64>,
    #[serde(default)]
    pub candidates_token_count: Option<u64>,
    #[serde(default)]
    pub cached_content_token_count: Option<u64>,
    #[serde(default)]
    pub thoughts_token_count: Option<u64>,
    #[serde(default)]
    pub tool_use_prompt_token_count: Option<u64>,
}

/// `{"error": {...}}`, Google's error envelope.
#[derive(Debug, Deserialize)]
pub struct ErrorResponse<'a> {
    #[serde(borrow)]
    pub error: ErrorBody<'a>,
}

/// Google's error object: HTTP code, message, and canonical status (`INVALID_ARGUMENT`, ...).
#[derive(Debug, Deserialize)]
pub struct ErrorBody<'a> {
    #[serde(default)]
    pub code: Option<u16>,
    #[serde(borrow, default)]
    pub message: Str<'a>,
    #[serde(borrow, default)]
    pub status: Option<Str<'a>>,
}
