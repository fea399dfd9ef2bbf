//! [`Response`] → Anthropic `message` JSON, and the pieces the stream encoder shares with it:
//! content blocks, usage, stop reasons and error bodies.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::conversation::{Family, FinishReason, Part, ProviderError, Response, ToolKind, Usage};
use crate::error::{anthropic_error_body, anthropic_type_for_status};

/// Anthropic's own stop reasons: a provider's `Other` reason passes only if it is one of them,
/// since the SDKs type `stop_reason` as this union.
const STOP_REASONS: [&str; 7] =
    ["end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal", "model_context_window_exceeded"];

/// Anthropic's error types: a provider code that is one of them is kept, any other is replaced
/// by the type its status maps to.
const ERROR_TYPES: [&str; 10] = [
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "overloaded_error",
    "timeout_error",
    "billing_error",
];

/// A tool call's `input`: the arguments' own JSON text when they are an object, else `{}`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Input<'a>(pub Option<&'a RawValue>);

impl<'a> Input<'a> {
    /// The input of a call whose arguments are `arguments` (JSON text, or raw text for custom
    /// tools, which Anthropic clients never define).
    pub fn of(arguments: &'a str, kind: ToolKind) -> Input<'a> {
        let raw = match kind {
            ToolKind::Function => serde_json::from_str::<&RawValue>(arguments).ok(),
            ToolKind::Custom => None,
        };
        Input(raw.filter(|r| r.get().starts_with('{')))
    }
}

impl Serialize for Input<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(raw) => raw.serialize(serializer),
            None => serializer.serialize_map(Some(0))?.end(),
        }
    }
}

/// A content block as Anthropic writes it.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Block<'a> {
    Text {
        text: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        citations: Option<&'a RawValue>,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Input<'a>,
    },
    Thinking {
        thinking: &'a str,
        signature: String,
    },
    RedactedThinking {
        data: String,
    },
}

/// A block, or a Claude block this model keeps whole.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(super) enum AnyBlock<'a> {
    Known(Block<'a>),
    Raw(&'a RawValue),
}

/// The block a part becomes; `None` for parts an answer to an Anthropic client cannot hold
/// (another family's unknown blocks, inputs such as images or tool results).
fn block(part: &Part) -> Option<AnyBlock<'_>> {
    Some(AnyBlock::Known(match part {
        Part::Text { text, citations, .. } => Block::Text { text, citations: citations.as_ref().map(|c| &*c.0) },
        Part::ToolCall { id, name, arguments, kind, .. } => {
            Block::ToolUse { id, name, input: Input::of(arguments, *kind) }
        }
        Part::Reasoning { text, signature, .. } => Block::Thinking {
            thinking: text,
            signature: signature.as_ref().map(|s| s.to_client_string(Family::Claude)).unwrap_or_default(),
        },
        Part::RedactedReasoning { data } => Block::RedactedThinking { data: data.to_client_string(Family::Claude) },
        Part::Unknown { family: Family::Claude, raw } => return Some(AnyBlock::Raw(&raw.0)),
        Part::Unknown { .. }
        | Part::Image { .. }
        | Part::Document { .. }
        | Part::Audio { .. }
        | Part::ToolResult { .. } => return None,
    }))
}

/// `usage` as Anthropic reports it: `input_tokens` without cache reads and writes, and every
/// count present (0 when the provider reported none), as Anthropic's own answers have them.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub(super) struct UsageJson {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
}

impl From<&Usage> for UsageJson {
    fn from(usage: &Usage) -> UsageJson {
        UsageJson {
            input_tokens: usage.uncached_input(),
            cache_creation_input_tokens: usage.cache_write.unwrap_or(0),
            cache_read_input_tokens: usage.cache_read.unwrap_or(0),
            output_tokens: usage.output.unwrap_or(0),
        }
    }
}

/// `stop_reason` and `stop_sequence` for a finish reason.
pub(super) fn stop_reason(finish: Option<&FinishReason>) -> (&str, Option<&str>) {
    let reason = match finish {
        None | Some(FinishReason::EndTurn) => "end_turn",
        Some(FinishReason::MaxTokens) => "max_tokens",
        Some(FinishReason::StopSequence(sequence)) => return ("stop_sequence", sequence.as_deref()),
        Some(FinishReason::ToolUse) => "tool_use",
        Some(FinishReason::ContentFilter) | Some(FinishReason::Refusal) => "refusal",
        Some(FinishReason::PauseTurn) => "pause_turn",
        Some(FinishReason::ContextWindow) => "model_context_window_exceeded",
        Some(FinishReason::Other(other)) => STOP_REASONS.iter().find(|r| **r == other).copied().unwrap_or("end_turn"),
    };
    (reason, None)
}

/// A message, complete or as `message_start` announces it.
#[derive(Debug, Serialize)]
pub(super) struct MessageJson<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub role: &'static str,
    pub model: &'a str,
    pub content: Vec<AnyBlock<'a>>,
    pub stop_reason: Option<&'a str>,
    pub stop_sequence: Option<&'a str>,
    pub usage: UsageJson,
}

/// The whole answer as Anthropic's JSON body; `model` is the client's, `fallback_id` used when
/// the provider gave no id.
pub(super) fn encode(response: &Response, model: &str, fallback_id: &str) -> Vec<u8> {
    let (stop, sequence) = stop_reason(response.finish.as_ref());
    let message = MessageJson {
        id: response.id.as_deref().filter(|id| !id.is_empty()).unwrap_or(fallback_id),
        kind: "message",
        role: "assistant",
        model,
        content: response.parts.iter().filter_map(block).collect(),
        stop_reason: Some(stop),
        stop_sequence: sequence,
        usage: UsageJson::from(&response.usage),
    };
    // Strings, numbers and JSON already validated cannot fail to encode; the fallback keeps
    // this panic-free anyway.
    serde_json::to_vec(&message)
        .unwrap_or_else(|e| anthropic_error_body(&format!("The answer could not be encoded: {e}"), "api_error"))
}

/// The Anthropic error type for a provider error: its own code when Anthropic knows it.
pub(super) fn error_type(error: &ProviderError) -> &str {
    match error.code.as_deref() {
        Some(code) if ERROR_TYPES.contains(&code) => code,
        _ => anthropic_type_for_status(error.status),
    }
}

/// A provider error as Anthropic's error body.
pub(super) fn encode_error(error: &ProviderError) -> Vec<u8> {
    let message = if error.message.is_empty() { format!("HTTP {}", error.status) } else { error.message.clone() };
    anthropic_error_body(&message, error_type(error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::{Json, Opaque};
    use serde_json::{json, Value};

    fn encoded(response: &Response) -> Value {
        serde_json::from_slice(&encode(response, "claude-sonnet-4-5", "msg_fallback")).unwrap()
    }

    #[test]
    fn every_block_kind_and_the_clients_model() {
        let response = Response {
            id: Some("msg_1".into()),
            model: Some("us.anthropic.claude-sonnet-4-5-20250929-v1:0".into()),
            parts: vec![
                Part::Reasoning {
                    text: "think".into(),
                    signature: Some(Opaque { family: Family::Claude, data: "sig/+=".into() }),
                    cache: None,
                },
                Part::Reasoning {
                    text: "gem".into(),
                    signature: Some(Opaque { family: Family::Gemini, data: "g".into() }),
                    cache: None,
                },
                Part::Reasoning { text: "none".into(), signature: None, cache: None },
                Part::RedactedReasoning { data: Opaque { family: Family::Claude, data: "R3d".into() } },
                Part::Text {
                    text: "hi \"there\"".into(),
                    cache: None,
                    citations: Json::from_text(r#"[{"type":"char_location","cited_text":"x"}]"#),
                },
                Part::ToolCall {
                    id: "t1".into(),
                    name: "Bash".into(),
                    arguments: r#"{"command": "ls"}"#.into(),
                    kind: ToolKind::Function,
                    cache: None,
                },
                Part::ToolCall {
                    id: "t2".into(),
                    name: "Bash".into(),
                    arguments: "".into(),
                    kind: ToolKind::Function,
                    cache: None,
                },
                Part::ToolCall {
                    id: "t3".into(),
                    name: "Bash".into(),
                    arguments: "[1]".into(),
                    kind: ToolKind::Function,
                    cache: None,
                },
                Part::Unknown {
                    family: Family::Claude,
                    raw: Json::from_text(r#"{"type":"server_tool_use","id":"s","name":"web_search","input":{}}"#)
                        .unwrap(),
                },
                Part::Unknown { family: Family::Gemini, raw: Json::from_text(r#"{"executableCode":{}}"#).unwrap() },
                Part::text(""),
            ],
            finish: Some(FinishReason::ToolUse),
            usage: Usage {
                input: Some(100),
                output: Some(7),
                cache_read: Some(60),
                cache_write: Some(30),
                reasoning: None,
            },
        };
        assert_eq!(
            encoded(&response),
            json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                "content": [
                    {"type": "thinking", "thinking": "think", "signature": "sig/+="},
                    {"type": "thinking", "thinking": "gem", "signature": "gw1.gemini.g"},
                    {"type": "thinking", "thinking": "none", "signature": ""},
                    {"type": "redacted_thinking", "data": "R3d"},
                    {"type": "text", "text": "hi \"there\"", "citations": [{"type": "char_location", "cited_text": "x"}]},
                    {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}},
                    {"type": "tool_use", "id": "t2", "name": "Bash", "input": {}},
                    {"type": "tool_use", "id": "t3", "name": "Bash", "input": {}},
                    {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}},
                    {"type": "text", "text": ""},
                ],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 10, "cache_creation_input_tokens": 30, "cache_read_input_tokens": 60, "output_tokens": 7}})
        );
    }

    #[test]
    fn fallback_id_unreported_usage_and_stop_reasons() {
        let mut response = Response { id: None, model: None, parts: vec![], finish: None, usage: Usage::default() };
        let v = encoded(&response);
        assert_eq!(v["id"], "msg_fallback");
        assert_eq!(v["stop_reason"], "end_turn");
        assert_eq!(
            v["usage"],
            json!({"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 0})
        );
        for (finish, reason, sequence) in [
            (FinishReason::MaxTokens, "max_tokens", Value::Null),
            (FinishReason::StopSequence(Some("END".into())), "stop_sequence", json!("END")),
            (FinishReason::StopSequence(None), "stop_sequence", Value::Null),
            (FinishReason::ContentFilter, "refusal", Value::Null),
            (FinishReason::Refusal, "refusal", Value::Null),
            (FinishReason::PauseTurn, "pause_turn", Value::Null),
            (FinishReason::ContextWindow, "model_context_window_exceeded", Value::Null),
            (FinishReason::Other("tool_use".into()), "tool_use", Value::Null),
            (FinishReason::Other("SAFETY".into()), "end_turn", Value::Null),
        ] {
            response.finish = Some(finish);
            response.id = Some(String::new());
            let v = encoded(&response);
            assert_eq!((v["stop_reason"].clone(), v["stop_sequence"].clone()), (json!(reason), sequence));
            assert_eq!(v["id"], "msg_fallback");
        }
    }

    #[test]
    fn errors_keep_anthropic_types_and_map_others_by_status() {
        for (status, code, expected) in [
            (529, Some("overloaded_error"), "overloaded_error"),
            (429, Some("ThrottlingException"), "rate_limit_error"),
            (400, None, "invalid_request_error"),
            (500, Some("RESOURCE_EXHAUSTED"), "api_error"),
        ] {
            let error = ProviderError { status, code: code.map(Into::into), message: "boom".into() };
            let v: Value = serde_json::from_slice(&encode_error(&error)).unwrap();
            assert_eq!(v, json!({"type": "error", "error": {"type": expected, "message": "boom"}}));
        }
        let v: Value =
            serde_json::from_slice(&encode_error(&ProviderError { status: 503, code: None, message: String::new() }))
                .unwrap();
        assert_eq!(v["error"]["message"], "HTTP 503");
    }
}
