//! The one conversation model every client API and every provider API meets in (ADR 0010).
//!
//! A client codec decodes its request into a [`Request`] and encodes [`Response`]s and
//! [`Event`] streams back; a provider codec encodes a [`Request`] for its API and decodes the
//! provider's answer into a [`Response`] or [`Event`]s. No direction goes through another client
//! API, so nothing is lost to what a middle API cannot say. The model is a superset of OpenAI Chat
//! Completions, Anthropic Messages and the OpenAI Responses API:
//!
//! - instructions are messages (`System`/`Developer`) at any position, not one prompt at the top;
//! - every part may carry a cache breakpoint ([`Cache`]);
//! - reasoning keeps its text, its signature and redacted payloads as [`Opaque`] values tagged
//!   with the provider family that issued them, replayed only to that family;
//! - what a codec does not understand is kept as [`Part::Unknown`] / [`Request::extras`], tagged
//!   with its family, so a decision to drop it is made (and written in the field matrix) by the
//!   encoder, never by accident.
//!
//! Same-family calls (Anthropic → Anthropic, Chat → OpenAI/Azure) never come here: they stay
//! byte-preserving passthroughs.

pub mod bridge;

use serde_json::value::RawValue;

/// A JSON value carried verbatim (schemas, tool inputs, blocks kept whole), compared by its text.
#[derive(Debug, Clone)]
pub struct Json(pub Box<RawValue>);

impl Json {
    /// The JSON text, exactly as received.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Wraps JSON text that is already known to be valid; `None` otherwise.
    pub fn from_text(text: &str) -> Option<Json> {
        RawValue::from_string(text.to_owned()).ok().map(Json)
    }
}

impl PartialEq for Json {
    fn eq(&self, other: &Json) -> bool {
        self.0.get() == other.0.get()
    }
}

/// The provider family that issued an opaque value. Reasoning state is only ever sent back to
/// the family that issued it: another one would reject it, or worse, bill for it as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Claude, wherever it runs: Anthropic's API, Bedrock InvokeModel, Bedrock Converse. Their
    /// thinking signatures are the same format and Claude validates them itself.
    Claude,
    /// Google Gemini (`thoughtSignature`).
    Gemini,
    /// OpenAI and Azure OpenAI (`encrypted_content` of reasoning items).
    OpenAi,
    /// Bedrock Converse models other than Claude (Nova, Llama, ...), whose reasoning signatures
    /// only Converse understands.
    Converse,
}

/// A value only its issuer can read (a thinking signature, redacted thinking, encrypted
/// reasoning), carried byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opaque {
    pub family: Family,
    pub data: String,
}

/// Prefix of an opaque value that a client carries for a family its API does not know.
const TAG_PREFIX: &str = "gw1.";

impl Family {
    fn tag(self) -> &'static str {
        match self {
            Family::Claude => "claude",
            Family::Gemini => "gemini",
            Family::OpenAi => "openai",
            Family::Converse => "converse",
        }
    }
}

impl Opaque {
    /// The value as a client keeps it in a single string slot (an Anthropic thinking
    /// `signature`): `native`'s own values unchanged, so a same-family round trip is byte
    /// identical; any other family's value tagged `gw1.<family>.` so the next turn can tell who
    /// issued it.
    pub fn to_client_string(&self, native: Family) -> String {
        if self.family == native {
            self.data.clone()
        } else {
            format!("{TAG_PREFIX}{}.{}", self.family.tag(), self.data)
        }
    }

    /// Reads a value written by [`Self::to_client_string`]; an untagged value is `native`'s.
    pub fn from_client_string(value: &str, native: Family) -> Opaque {
        if let Some(rest) = value.strip_prefix(TAG_PREFIX) {
            for family in [Family::Claude, Family::Gemini, Family::OpenAi, Family::Converse] {
                if let Some(data) = rest.strip_prefix(family.tag()).and_then(|r| r.strip_prefix('.')) {
                    return Opaque { family, data: data.to_owned() };
                }
            }
        }
        Opaque { family: native, data: value.to_owned() }
    }
}

/// Who speaks a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Instructions from the application (Anthropic `system`, Chat `system`, Responses `instructions`).
    System,
    /// OpenAI's `developer` instructions: a system turn that newer OpenAI models rank differently.
    Developer,
    User,
    Assistant,
}

/// A prompt-cache breakpoint after this part (Anthropic `cache_control`, Converse `cachePoint`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    /// `ephemeral` is the only kind any provider knows today; kept for forward compatibility.
    pub kind: String,
    /// Anthropic's `ttl` (`5m`, `1h`), when given.
    pub ttl: Option<String>,
}

/// Where an image, document or audio clip comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Inline bytes, base64-encoded as every API sends them.
    Base64 { media_type: String, data: String },
    /// A URL the provider fetches (or the gateway refuses, for providers that cannot).
    Url { url: String, media_type: Option<String> },
    /// Plain text (an Anthropic `text` document source).
    Text { media_type: String, data: String },
    /// A provider-side file id (Anthropic Files API, OpenAI `file_id`), only valid at its family.
    File { family: Family, id: String },
}

/// What kind of tool a call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolKind {
    /// A function tool with a JSON Schema; `arguments` are a JSON object.
    Function,
    /// A free-form tool (OpenAI `custom`): `arguments` are raw text, not JSON.
    Custom,
}

/// One piece of a turn.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text {
        text: String,
        cache: Option<Cache>,
        /// Anthropic `citations` on a response text block, kept as JSON for Anthropic clients.
        citations: Option<Json>,
    },
    Image {
        source: Source,
        cache: Option<Cache>,
    },
    /// A PDF or text document (Anthropic `document`, Converse `document`, Responses `input_file`).
    Document {
        source: Source,
        title: Option<String>,
        context: Option<String>,
        /// Anthropic `citations: {enabled}`.
        citations: Option<bool>,
        cache: Option<Cache>,
    },
    Audio {
        data: String,
        format: String,
    },
    /// The model asks for a tool. `arguments` is the JSON text of the input object (the raw text
    /// for [`ToolKind::Custom`]), never re-serialised on the way through.
    ToolCall {
        id: String,
        name: String,
        arguments: String,
        kind: ToolKind,
        cache: Option<Cache>,
    },
    /// The application answers a tool call. `content` holds text and image parts.
    ToolResult {
        call_id: String,
        /// The tool's name where the client API says it (Gemini matches results by name).
        name: Option<String>,
        content: Vec<Part>,
        is_error: bool,
        cache: Option<Cache>,
    },
    /// Visible reasoning (Anthropic `thinking`, Converse `reasoningText`, Gemini thought parts,
    /// Responses reasoning summaries), with the signature that lets its issuer trust it again.
    Reasoning {
        text: String,
        signature: Option<Opaque>,
        cache: Option<Cache>,
    },
    /// Reasoning the provider hid (Anthropic `redacted_thinking`, Converse `redactedContent`,
    /// Responses `encrypted_content` without summary).
    RedactedReasoning {
        data: Opaque,
    },
    /// A block this model has no variant for, kept whole for the family that defined it
    /// (server tool uses and results, containers, search results...).
    Unknown {
        family: Family,
        raw: Json,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_values_round_trip_through_a_client_string() {
        for family in [Family::Claude, Family::Gemini, Family::OpenAi, Family::Converse] {
            let value = Opaque { family, data: "EqQBCkgIAR.x/y+z==".into() };
            let text = value.to_client_string(Family::Claude);
            assert_eq!(Opaque::from_client_string(&text, Family::Claude), value);
        }
        // Claude's own signature travels byte for byte; an unknown tag is kept as Claude data.
        assert_eq!(Opaque { family: Family::Claude, data: "abc".into() }.to_client_string(Family::Claude), "abc");
        assert_eq!(Opaque::from_client_string("gw1.other.x", Family::Claude).data, "gw1.other.x");
    }
}

impl Part {
    /// A text part without cache breakpoint or citations.
    pub fn text(text: impl Into<String>) -> Part {
        Part::Text { text: text.into(), cache: None, citations: None }
    }
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub parts: Vec<Part>,
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    pub name: String,
    pub description: Option<String>,
    /// The JSON Schema of the input, verbatim (`None` for free-form tools).
    pub input_schema: Option<Json>,
    pub kind: ToolKind,
    /// OpenAI `strict` (Anthropic's `strict` too): the arguments must match the schema exactly.
    pub strict: Option<bool>,
    pub cache: Option<Cache>,
}

/// Which tool, if any, the model must call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    /// At least one tool call, any tool.
    Required,
    None,
    Tool(String),
}

/// How much the model should think.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reasoning {
    /// Thinking explicitly off.
    Disabled,
    /// Extended thinking with a token budget (Anthropic `enabled`, Gemini `thinkingBudget`).
    Budget(u64),
    /// The model decides (Anthropic `adaptive`, Gemini dynamic thinking).
    Adaptive,
    /// An effort level (`minimal`, `low`, `medium`, `high`, `xhigh`...), OpenAI's and Anthropic's
    /// `output_config.effort` vocabulary.
    Effort(String),
}

/// A constraint on the answer's format.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputFormat {
    /// Any JSON object.
    JsonObject,
    /// JSON matching a schema.
    JsonSchema { name: Option<String>, schema: Json, strict: Option<bool> },
}

impl OutputFormat {
    /// A system instruction asking for this format, for providers with no member for it.
    pub fn instruction(&self) -> String {
        match self {
            OutputFormat::JsonObject => {
                "Respond with a single valid JSON object and nothing else: no prose, no code fences.".to_owned()
            }
            OutputFormat::JsonSchema { name, schema, .. } => format!(
                "Respond with a single valid JSON value and nothing else (no prose, no code fences). \
                 It must match this JSON Schema named \"{}\": {}",
                name.as_deref().unwrap_or("response"),
                schema.get()
            ),
        }
    }
}

/// A top-level request field one family defined and the model has no member for, kept so the
/// encoder for that family can forward it and every other encoder can name what it dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct Extra {
    pub family: Family,
    pub name: String,
    pub value: Json,
}

/// A request, as the client meant it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Request {
    /// Turns in order, instructions included wherever the client put them.
    pub messages: Vec<Message>,
    pub tools: Vec<ToolDef>,
    pub tool_choice: Option<ToolChoice>,
    /// `false` when the client asked for at most one tool call per turn.
    pub parallel_tool_calls: Option<bool>,
    pub max_output_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u64>,
    pub stop: Vec<String>,
    pub stream: bool,
    pub reasoning: Option<Reasoning>,
    /// How hard the model should work, separate from the thinking mode because Anthropic takes
    /// both (`thinking: adaptive` with `output_config.effort`); OpenAI's `reasoning.effort` lands
    /// here too.
    pub effort: Option<String>,
    pub output_format: Option<OutputFormat>,
    /// The end user (Anthropic `metadata.user_id`, OpenAI `user` / `safety_identifier`).
    pub user: Option<String>,
    /// Fields of one family this model does not name (Anthropic `context_management`, ...).
    pub extras: Vec<Extra>,
}

impl Request {
    /// Whether the last assistant turn that called a tool also carried signed reasoning: Claude
    /// requires it when thinking is on, so encoders for Claude turn thinking off otherwise.
    pub fn last_tool_turn_has_signed_reasoning(&self, family: Family) -> Option<bool> {
        let turn = self
            .messages
            .iter()
            .rev()
            .find(|m| m.role == Role::Assistant && m.parts.iter().any(|p| matches!(p, Part::ToolCall { .. })))?;
        Some(turn.parts.iter().any(|p| match p {
            Part::Reasoning { signature: Some(sig), .. } => sig.family == family,
            Part::RedactedReasoning { data } => data.family == family,
            _ => false,
        }))
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    EndTurn,
    MaxTokens,
    StopSequence(Option<String>),
    ToolUse,
    ContentFilter,
    /// Anthropic `pause_turn` (a long server-tool turn to be continued).
    PauseTurn,
    Refusal,
    /// The context window was exhausted (Anthropic `model_context_window_exceeded`).
    ContextWindow,
    Other(String),
}

/// Tokens as one provider reported them; `None` is "not reported", distinct from 0.
///
/// `input` is every prompt token, cached ones included (OpenAI's `prompt_tokens` meaning);
/// Anthropic's `input_tokens` excludes cache reads and writes, and its codec converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub input: Option<u64>,
    pub output: Option<u64>,
    pub cache_read: Option<u64>,
    pub cache_write: Option<u64>,
    pub reasoning: Option<u64>,
}

impl Usage {
    /// The gateway's accounting view: unreported counts are 0.
    pub fn to_token_usage(self) -> crate::usage::TokenUsage {
        crate::usage::TokenUsage {
            input: self.input.unwrap_or(0),
            output: self.output.unwrap_or(0),
            cache_read: self.cache_read.unwrap_or(0),
            cache_creation: self.cache_write.unwrap_or(0),
            reasoning: self.reasoning.unwrap_or(0),
        }
    }

    /// `self` with every count `later` reports replacing this one (providers send cumulative
    /// counts, some split over several events).
    pub fn merge(self, later: Usage) -> Usage {
        Usage {
            input: later.input.or(self.input),
            output: later.output.or(self.output),
            cache_read: later.cache_read.or(self.cache_read),
            cache_write: later.cache_write.or(self.cache_write),
            reasoning: later.reasoning.or(self.reasoning),
        }
    }

    /// Prompt tokens neither read from nor written to the cache (Anthropic's `input_tokens`).
    pub fn uncached_input(&self) -> u64 {
        self.input
            .unwrap_or(0)
            .saturating_sub(self.cache_read.unwrap_or(0))
            .saturating_sub(self.cache_write.unwrap_or(0))
    }
}

/// A complete (non-streamed) answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The provider's response id, when it gives one.
    pub id: Option<String>,
    /// The provider's model id, when it reports one (logs and traces; clients see their own).
    pub model: Option<String>,
    pub parts: Vec<Part>,
    pub finish: Option<FinishReason>,
    pub usage: Usage,
}

/// The kind of a block that starts in a stream.
#[derive(Debug, Clone, PartialEq)]
pub enum BlockStart {
    Text,
    ToolCall {
        id: String,
        name: String,
        kind: ToolKind,
    },
    Reasoning,
    /// Redacted reasoning arrives whole.
    RedactedReasoning {
        data: Opaque,
    },
    /// A block of a kind this model does not name, whole (Anthropic server tool blocks...).
    Unknown {
        family: Family,
        raw: Json,
    },
}

/// A piece of a block's content.
#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    Text(String),
    /// A fragment of the JSON text of a tool call's arguments.
    ToolArguments(String),
    Reasoning(String),
    /// The signature of the reasoning block (sent once, usually last).
    Signature(Opaque),
    /// Anthropic `citations_delta`, kept as JSON.
    Citation(Json),
}

/// One event of a streamed answer, in the order a client must see them. Block indexes are the
/// decoder's own, dense from 0 in start order; encoders renumber if their API needs to.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The answer begins (first event of every stream).
    Start {
        id: Option<String>,
        model: Option<String>,
    },
    BlockStart {
        index: u32,
        block: BlockStart,
    },
    Delta {
        index: u32,
        delta: Delta,
    },
    BlockStop {
        index: u32,
    },
    /// Cumulative counts so far; may come several times.
    Usage(Usage),
    /// Why the answer ended; after every block stopped, before `End`.
    Finish(FinishReason),
    /// The stream ended normally (the client API's terminator follows).
    End,
    /// The provider failed mid-stream; nothing follows.
    Error(ProviderError),
}

/// An error reported by the provider, as the client API will render it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    /// The HTTP status the provider used (or the nearest one for an in-stream error).
    pub status: u16,
    /// The provider's own error type/code, when it gives one (`ThrottlingException`,
    /// `overloaded_error`, `RESOURCE_EXHAUSTED`...).
    pub code: Option<String>,
    pub message: String,
}
