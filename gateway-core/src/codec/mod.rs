//! Codecs between wire APIs and the [conversation model](crate::conversation): one module per
//! client API (request decoder, response and stream encoder) and per provider API (request
//! encoder, response and stream decoder). Codecs import only the conversation model, the wire
//! types of their own API and shared helpers; never another codec.
//!
//! | module | side | decodes | encodes |
//! |---|---|---|---|
//! | [`anthropic`] | client | Messages request | Messages response, SSE events |
//! | [`converse`] | provider | Converse response, event stream | Converse request |
//! | [`gemini`] | provider | generateContent response, SSE | generateContent request |
//! | [`openai_chat`] | provider | Chat Completions response, SSE | Chat Completions request |
//! | [`responses`] | client | Responses API request | `response` object, typed SSE events |

pub mod anthropic;
pub mod collect;
pub mod converse;
pub mod gemini;
pub(crate) mod members;
pub mod openai_chat;
pub mod responses;

/// A request encoded for one provider: what the filter sends for one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The upstream `:path`, without the provider's path prefix (the caller adds it).
    pub path: String,
    pub body: Vec<u8>,
    /// Provider-specific headers besides credentials (content type, API version...).
    pub headers: Vec<(&'static str, String)>,
    /// Request fields the provider cannot take, left out by a field-matrix decision.
    pub dropped: Vec<&'static str>,
}

/// The `x-ai-gateway-dropped` name of a request field one client API defined and a provider
/// cannot take ([`crate::conversation::Extra::name`]). Names are static so that the header is
/// built without allocation per request; a field outside this list is reported as `other`.
pub fn dropped_name(name: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "anthropic_beta",
        "apply_patch",
        "audio",
        "background",
        "code_interpreter",
        "computer_use",
        "computer_use_preview",
        "container",
        "context_management",
        "conversation",
        "file_search",
        "frequency_penalty",
        "image_generation",
        "include",
        "inference_geo",
        "instructions",
        "local_shell",
        "logit_bias",
        "logprobs",
        "max_tool_calls",
        "mcp",
        "mcp_servers",
        "metadata",
        "modalities",
        "n",
        "output_config",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "previous_response_id",
        "prompt",
        "prompt_cache_key",
        "prompt_cache_retention",
        "reasoning",
        "safety_identifier",
        "seed",
        "service_tier",
        "shell",
        "store",
        "stream_options",
        "text",
        "thinking",
        "tool_choice",
        "tools",
        "top_logprobs",
        "truncation",
        "user",
        "verbosity",
        "web_search",
        "web_search_2025_08_26",
        "web_search_options",
        "web_search_preview",
        "web_search_preview_2025_03_11",
    ];
    KNOWN.iter().find(|k| **k == name).copied().unwrap_or("other")
}
