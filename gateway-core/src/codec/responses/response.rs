//! Output items, the `response` object, usage and errors: what the JSON answer and the stream's
//! `response.completed` share, built by one [`Items`] so the two cannot drift apart.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::conversation::{Family, FinishReason, Json, Part, ProviderError, Response, ToolKind, Usage};
use crate::error::openai_error_body;

/// OpenAI's `error.type` values: a provider code that is one of them is kept as the type.
const ERROR_TYPES: [&str; 6] = [
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "rate_limit_error",
    "insufficient_quota",
];

/// One output item, as the encoder builds it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Item {
    /// An assistant `message`; one `output_text` part per text block.
    Message { id: String, texts: Vec<String> },
    /// A `function_call` or `custom_tool_call`.
    Call { id: String, call_id: String, name: String, arguments: String, kind: ToolKind },
    /// A `reasoning` item: `summary` holds one part when the reasoning had text (even empty),
    /// none for redacted reasoning; `encrypted` is the signature or redacted payload.
    Reasoning { id: String, summary: Option<String>, encrypted: Option<String> },
    /// An OpenAI item kept whole.
    Raw(Json),
}

/// The output items of one response, numbered from its id.
#[derive(Debug, Clone, Default)]
pub(super) struct Items {
    /// The response id without its `resp_` prefix: item ids are `<kind>_<base>_<n>`.
    base: String,
    pub items: Vec<Item>,
}

impl Items {
    /// Items of the response `response_id`.
    pub fn new(response_id: &str) -> Items {
        Items { base: response_id.strip_prefix("resp_").unwrap_or(response_id).to_owned(), items: Vec::new() }
    }

    /// A fresh item id with `prefix` (`msg`, `fc`, `ctc`, `rs`).
    pub fn next_id(&self, prefix: &str) -> String {
        format!("{prefix}_{}_{}", self.base, self.items.len())
    }

    /// Adds an item; returns its output index.
    pub fn push(&mut self, item: Item) -> usize {
        self.items.push(item);
        self.items.len().saturating_sub(1)
    }

    /// The item a part becomes, appended (text joins the message just before it); parts a
    /// Responses answer cannot hold (another family's unknown blocks, inputs) are left out.
    pub fn add_part(&mut self, part: &Part) {
        let item = match part {
            Part::Text { text, .. } => {
                if let Some(Item::Message { texts, .. }) = self.items.last_mut() {
                    texts.push(text.clone());
                    return;
                }
                Item::Message { id: self.next_id("msg"), texts: vec![text.clone()] }
            }
            Part::ToolCall { id, name, arguments, kind, .. } => Item::Call {
                id: self.next_id(call_prefix(*kind)),
                call_id: id.clone(),
                name: name.clone(),
                arguments: arguments.clone(),
                kind: *kind,
            },
            Part::Reasoning { text, signature, .. } => Item::Reasoning {
                id: self.next_id("rs"),
                summary: Some(text.clone()),
                encrypted: signature.as_ref().map(|s| s.to_client_string(Family::OpenAi)),
            },
            Part::RedactedReasoning { data } => Item::Reasoning {
                id: self.next_id("rs"),
                summary: None,
                encrypted: Some(data.to_client_string(Family::OpenAi)),
            },
            Part::Unknown { family: Family::OpenAi, raw } => Item::Raw(raw.clone()),
            Part::Unknown { .. }
            | Part::Image { .. }
            | Part::Document { .. }
            | Part::Audio { .. }
            | Part::ToolResult { .. } => return,
        };
        self.items.push(item);
    }
}

/// The id prefix of a call item.
pub(super) fn call_prefix(kind: ToolKind) -> &'static str {
    match kind {
        ToolKind::Function => "fc",
        ToolKind::Custom => "ctc",
    }
}

/// `[]`.
#[derive(Debug, Clone, Copy, Serialize)]
pub(super) struct EmptyList([u8; 0]);

/// `{}`.
#[derive(Debug, Clone, Copy, Serialize)]
pub(super) struct EmptyObject {}

/// An `output_text` content part.
#[derive(Debug, Serialize)]
pub(super) struct TextJson<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub annotations: EmptyList,
    pub logprobs: EmptyList,
    pub text: &'a str,
}

impl<'a> TextJson<'a> {
    /// An `output_text` part holding `text`.
    pub fn new(text: &'a str) -> Self {
        TextJson { kind: "output_text", annotations: EmptyList([]), logprobs: EmptyList([]), text }
    }
}

/// A `summary_text` part of a reasoning item.
#[derive(Debug, Serialize)]
pub(super) struct SummaryJson<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub text: &'a str,
}

impl<'a> SummaryJson<'a> {
    /// A `summary_text` part holding `text`.
    pub fn new(text: &'a str) -> Self {
        SummaryJson { kind: "summary_text", text }
    }
}

/// An output item as OpenAI writes it.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum ItemJson<'a> {
    Message {
        id: &'a str,
        status: &'static str,
        role: &'static str,
        content: Vec<TextJson<'a>>,
    },
    FunctionCall {
        id: &'a str,
        status: &'static str,
        arguments: &'a str,
        call_id: &'a str,
        name: &'a str,
    },
    CustomToolCall {
        id: &'a str,
        status: &'static str,
        call_id: &'a str,
        name: &'a str,
        input: &'a str,
    },
    Reasoning {
        id: &'a str,
        summary: Vec<SummaryJson<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        encrypted_content: Option<&'a str>,
    },
}

/// An output item, or an OpenAI item kept whole.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(super) enum OutItem<'a> {
    Known(ItemJson<'a>),
    Raw(&'a RawValue),
}

impl Item {
    /// The item complete (`output_item.done`, `response.completed`, the JSON answer).
    pub fn done(&self) -> OutItem<'_> {
        OutItem::Known(match self {
            Item::Message { id, texts } => ItemJson::Message {
                id,
                status: "completed",
                role: "assistant",
                content: texts.iter().map(|t| TextJson::new(t)).collect(),
            },
            Item::Call { id, call_id, name, arguments, kind: ToolKind::Function } => {
                ItemJson::FunctionCall { id, status: "completed", arguments, call_id, name }
            }
            Item::Call { id, call_id, name, arguments, kind: ToolKind::Custom } => {
                ItemJson::CustomToolCall { id, status: "completed", call_id, name, input: arguments }
            }
            Item::Reasoning { id, summary, encrypted } => ItemJson::Reasoning {
                id,
                summary: summary.iter().map(|t| SummaryJson::new(t)).collect(),
                encrypted_content: encrypted.as_deref(),
            },
            Item::Raw(raw) => return OutItem::Raw(&raw.0),
        })
    }

    /// The item as `output_item.added` announces it: no content yet.
    pub fn added(&self) -> OutItem<'_> {
        OutItem::Known(match self {
            Item::Message { id, .. } => {
                ItemJson::Message { id, status: "in_progress", role: "assistant", content: Vec::new() }
            }
            Item::Call { id, call_id, name, kind: ToolKind::Function, .. } => {
                ItemJson::FunctionCall { id, status: "in_progress", arguments: "", call_id, name }
            }
            Item::Call { id, call_id, name, kind: ToolKind::Custom, .. } => {
                ItemJson::CustomToolCall { id, status: "in_progress", call_id, name, input: "" }
            }
            Item::Reasoning { id, encrypted, .. } => {
                ItemJson::Reasoning { id, summary: Vec::new(), encrypted_content: encrypted.as_deref() }
            }
            Item::Raw(raw) => return OutItem::Raw(&raw.0),
        })
    }

    /// The item's id (empty for an item kept whole).
    pub fn id(&self) -> &str {
        match self {
            Item::Message { id, .. } | Item::Call { id, .. } | Item::Reasoning { id, .. } => id,
            Item::Raw(_) => "",
        }
    }
}

/// `input_tokens_details`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub(super) struct InputDetails {
    cached_tokens: u64,
}

/// `output_tokens_details`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub(super) struct OutputDetails {
    reasoning_tokens: u64,
}

/// `usage` as OpenAI reports it: `input_tokens` counts cached tokens too, every count present.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub(super) struct UsageJson {
    input_tokens: u64,
    input_tokens_details: InputDetails,
    output_tokens: u64,
    output_tokens_details: OutputDetails,
    total_tokens: u64,
}

impl From<&Usage> for UsageJson {
    fn from(usage: &Usage) -> UsageJson {
        let input = usage.input.unwrap_or(0);
        let output = usage.output.unwrap_or(0);
        UsageJson {
            input_tokens: input,
            input_tokens_details: InputDetails { cached_tokens: usage.cache_read.unwrap_or(0) },
            output_tokens: output,
            output_tokens_details: OutputDetails { reasoning_tokens: usage.reasoning.unwrap_or(0) },
            total_tokens: input.saturating_add(output),
        }
    }
}

/// `incomplete_details`.
#[derive(Debug, Clone, Copy, Serialize)]
pub(super) struct Incomplete {
    reason: &'static str,
}

/// `error` of a failed response.
#[derive(Debug, Clone, Serialize)]
pub(super) struct ResponseError<'a> {
    pub code: &'a str,
    pub message: &'a str,
}

/// The `response` object. Request echoes the encoder cannot know (`tools`, `temperature`...) are
/// written with neutral values, present because the SDKs' types declare them.
#[derive(Debug, Serialize)]
pub(super) struct ResponseJson<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created_at: u64,
    pub status: &'static str,
    pub error: Option<ResponseError<'a>>,
    pub incomplete_details: Option<Incomplete>,
    pub instructions: Option<&'a str>,
    pub metadata: EmptyObject,
    pub model: &'a str,
    pub output: Vec<OutItem<'a>>,
    pub parallel_tool_calls: bool,
    pub temperature: Option<f64>,
    pub tool_choice: &'static str,
    pub tools: EmptyList,
    pub top_p: Option<f64>,
    pub usage: Option<UsageJson>,
}

impl<'a> ResponseJson<'a> {
    /// A response with no output yet, `status` as given.
    pub fn new(id: &'a str, created_at: u64, model: &'a str, status: &'static str) -> Self {
        ResponseJson {
            id,
            object: "response",
            created_at,
            status,
            error: None,
            incomplete_details: None,
            instructions: None,
            metadata: EmptyObject {},
            model,
            output: Vec::new(),
            parallel_tool_calls: true,
            temperature: None,
            tool_choice: "auto",
            tools: EmptyList([]),
            top_p: None,
            usage: None,
        }
    }

    /// The finished response: status from the finish reason, output and usage.
    pub fn finished(mut self, items: &'a Items, finish: Option<&FinishReason>, usage: &Usage) -> Self {
        let (status, reason) = status(finish);
        self.status = status;
        self.incomplete_details = reason.map(|reason| Incomplete { reason });
        self.output = items.items.iter().map(Item::done).collect();
        self.usage = Some(UsageJson::from(usage));
        self
    }
}

/// `status` and `incomplete_details.reason` for a finish reason: an answer cut by the token
/// limit (or the context window) or by a content filter is `incomplete`, as OpenAI reports it.
pub(super) fn status(finish: Option<&FinishReason>) -> (&'static str, Option<&'static str>) {
    match finish {
        Some(FinishReason::MaxTokens) | Some(FinishReason::ContextWindow) => ("incomplete", Some("max_output_tokens")),
        Some(FinishReason::ContentFilter) => ("incomplete", Some("content_filter")),
        _ => ("completed", None),
    }
}

/// The response id a client sees: the provider's, `resp_`-prefixed as OpenAI's are, or
/// `fallback` when the provider gave none.
pub(super) fn response_id(provider: Option<&str>, fallback: &str) -> String {
    match provider.filter(|id| !id.is_empty()) {
        Some(id) if id.starts_with("resp_") => id.to_owned(),
        Some(id) => format!("resp_{id}"),
        None => fallback.to_owned(),
    }
}

/// The whole answer as the Responses API's JSON body.
pub(super) fn encode(response: &Response, model: &str, fallback_id: &str, created_at: u64) -> Vec<u8> {
    let id = response_id(response.id.as_deref(), fallback_id);
    let mut items = Items::new(&id);
    for part in &response.parts {
        items.add_part(part);
    }
    let body = ResponseJson::new(&id, created_at, model, "completed").finished(
        &items,
        response.finish.as_ref(),
        &response.usage,
    );
    serde_json::to_vec(&body).unwrap_or_else(|e| {
        openai_error_body(&format!("The answer could not be encoded: {e}"), "server_error", None, None)
    })
}

/// OpenAI's `error.type` for a provider error: its own code when OpenAI knows it, else by status.
pub(super) fn error_type(error: &ProviderError) -> &str {
    match error.code.as_deref() {
        Some(code) if ERROR_TYPES.contains(&code) => code,
        _ => match error.status {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            400..=499 => "invalid_request_error",
            _ => "server_error",
        },
    }
}

/// The `code` of a failed response (Codex reads it to decide whether to retry).
pub(super) fn failure_code(error: &ProviderError) -> &str {
    match error.code.as_deref() {
        Some(code @ ("context_length_exceeded" | "insufficient_quota" | "rate_limit_exceeded" | "invalid_prompt")) => {
            code
        }
        _ if error.status == 429 => "rate_limit_exceeded",
        _ if (400..500).contains(&error.status) => "invalid_prompt",
        _ => "server_error",
    }
}

/// The message of a provider error, never empty.
pub(super) fn error_message(error: &ProviderError) -> String {
    if error.message.is_empty() {
        format!("The provider returned HTTP {}.", error.status)
    } else {
        error.message.clone()
    }
}

/// A provider error as OpenAI's error body.
pub(super) fn encode_error(error: &ProviderError) -> Vec<u8> {
    openai_error_body(&error_message(error), error_type(error), None, error.code.as_deref())
}
