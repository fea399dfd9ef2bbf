//! Gemini wire types this codec writes and reads beyond the shared ones in
//! [`crate::api::gemini`]: parts that carry any `thoughtSignature` (the shared request part only
//! knows Google's placeholder), a negative (dynamic) thinking budget, `topK`, and a response part
//! that keeps its raw JSON so parts this model has no variant for survive as
//! [`crate::conversation::Part::Unknown`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::api::gemini::{ErrorBody, ResponseFunctionCall};
use crate::api::gemini::{PromptFeedback, Tool, ToolConfig, UsageMetadata};
use crate::api::openai::Str;

/// `generateContent` request body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Request<'a> {
    pub contents: Vec<Content<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_instruction: Option<Content<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ToolConfig<'a>>,
    #[serde(skip_serializing_if = "GenerationConfig::is_empty")]
    pub generation_config: GenerationConfig<'a>,
    /// Gemini-family request members carried verbatim (`safetySettings`, `cachedContent`...).
    #[serde(flatten)]
    pub extras: BTreeMap<&'a str, &'a RawValue>,
}

/// One turn (or the system instruction, which has no role).
#[derive(Debug, Serialize)]
pub struct Content<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    pub parts: Vec<OutPart<'a>>,
}

/// A part as sent: built by the codec, or a Gemini part kept whole from an earlier answer.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum OutPart<'a> {
    Built(SignedPart<'a>),
    Raw(&'a RawValue),
}

/// A part with the thought signature Gemini attached to it (or Google's placeholder).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedPart<'a> {
    #[serde(flatten)]
    pub data: PartData<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thought_signature: Option<&'a str>,
}

/// What a part holds; exactly one member is written.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PartData<'a> {
    Text(Cow<'a, str>),
    InlineData(Blob<'a>),
    FileData(FileData<'a>),
    FunctionCall(FunctionCall<'a>),
    FunctionResponse(FunctionResponse<'a>),
}

/// Base64 bytes with their media type.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blob<'a> {
    pub mime_type: Cow<'a, str>,
    pub data: &'a str,
}

/// A file Gemini fetches by URI.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileData<'a> {
    pub mime_type: Cow<'a, str>,
    pub file_uri: &'a str,
}

/// A call the model made earlier; `args` is a JSON object.
#[derive(Debug, Serialize)]
pub struct FunctionCall<'a> {
    pub name: &'a str,
    pub args: &'a RawValue,
}

/// A tool's answer; `response` is a JSON object.
#[derive(Debug, Serialize)]
pub struct FunctionResponse<'a> {
    pub name: &'a str,
    pub response: Value,
}

/// `generationConfig`.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_schema: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_config: Option<ThinkingConfig>,
}

impl GenerationConfig<'_> {
    /// Nothing set: the member is left out.
    pub fn is_empty(&self) -> bool {
        self.max_output_tokens.is_none()
            && self.temperature.is_none()
            && self.top_p.is_none()
            && self.top_k.is_none()
            && self.stop_sequences.is_empty()
            && self.response_mime_type.is_none()
            && self.response_schema.is_none()
            && self.thinking_config.is_none()
    }
}

/// `generationConfig.thinkingConfig`; a budget of -1 lets the model decide.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThinkingConfig {
    pub thinking_budget: i64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub include_thoughts: bool,
}

/// A `generateContent` answer, or one event of a stream.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Response<'a> {
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
    /// An error inside a stream.
    #[serde(borrow, default)]
    pub error: Option<ErrorBody<'a>>,
}

/// One candidate; only candidate 0 is read (the codec never asks for more).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate<'a> {
    #[serde(borrow, default)]
    pub content: Option<CandidateContent<'a>>,
    #[serde(borrow, default)]
    pub finish_reason: Option<Str<'a>>,
    #[serde(default)]
    pub index: Option<u32>,
}

/// A candidate's parts, raw: each is read into [`ResponsePart`] and kept whole if unknown.
#[derive(Debug, Deserialize)]
pub struct CandidateContent<'a> {
    #[serde(borrow, default)]
    pub parts: Vec<&'a RawValue>,
}

/// The members of a response part the codec reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponsePart<'a> {
    #[serde(borrow, default)]
    pub text: Option<Str<'a>>,
    #[serde(default)]
    pub thought: Option<bool>,
    #[serde(borrow, default)]
    pub thought_signature: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub function_call: Option<ResponseFunctionCall<'a>>,
}
