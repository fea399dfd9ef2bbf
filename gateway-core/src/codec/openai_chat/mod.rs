//! OpenAI Chat Completions (OpenAI, Azure OpenAI) as a provider of the conversation model, for
//! clients of other APIs (Anthropic Messages clients such as Claude Code): [`encode_request`]
//! writes the request, [`OpenAiChatDecoder`] reads answers, streams and errors. Chat clients on
//! these providers never come here: they stay a byte-preserving passthrough.
//!
//! Requests ([`request`]):
//!
//! | conversation | Chat Completions |
//! |---|---|
//! | `System` / `Developer` messages | `system` / `developer` messages where they stand (Chat takes them anywhere); text only, else 400 |
//! | user text, image, document, audio | `text`; `image_url` (base64 as a data URL, URLs as they are); PDF → `file` with a `file_data` data URL (title as `filename`), OpenAI file ids → `file.file_id`; text documents → text (title first); `input_audio`; other sources → 400 |
//! | tool results | `tool` messages before the rest of the user turn, text joined; `is_error` → content prefixed [`request::ERROR_PREFIX`] (Chat has no error flag); images and documents a tool returned → a user message after the tool messages, introduced by the call id (a tool message holds text only) |
//! | assistant text, tool calls | `content` (text parts), `tool_calls` (`function` with the arguments text, `custom` with its input); other parts → 400 |
//! | reasoning, redacted reasoning (any family) | dropped: Chat Completions cannot take reasoning back |
//! | `Part::Unknown` | dropped, named `unknown_content` |
//! | tools | `function` tools with `parameters` verbatim and `strict`; `custom` tools |
//! | tool_choice, parallel_tool_calls | `auto`/`required`/`none`/named (function or custom); both only with tools (OpenAI refuses them otherwise) |
//! | max_output_tokens, temperature, top_p, stop, user | `max_completion_tokens`, `temperature`, `top_p`, `stop`, `user` |
//! | top_k | dropped, named `top_k` |
//! | stream | `stream: true` with `stream_options.include_usage` |
//! | output_format | `response_format` `json_object` / `json_schema` (name `output` when none) |
//! | reasoning / effort | `reasoning_effort`: an effort as given (`max` → `high`, unknown → dropped, named `reasoning_effort`); a budget → low (< 4096), medium (< 16384), high; nothing for disabled or adaptive without effort |
//! | cache breakpoints | dropped silently: OpenAI caches prompts automatically |
//! | extras | OpenAI-family members Chat takes (`seed`, `service_tier`, `store`, `metadata`, `prompt_cache_key`...) forwarded; others dropped and named ([`crate::codec::dropped_name`]) |
//!
//! The path is [`request::PATH`]; Azure callers set their deployment path on the result.
//!
//! Answers ([`decode`]): choice 0 only. `reasoning_content` (DeepSeek, vLLM, this gateway's own
//! convention) → reasoning; `content` and `refusal` → text (a refusal makes the finish
//! `Refusal`); `tool_calls` → tool calls, per `index` in a stream (a new index starts a block,
//! argument fragments are deltas of it); `finish_reason`: stop → end turn, length → max tokens,
//! tool_calls/function_call → tool use, content_filter → content filter, others → `Other`.
//! Usage: input `prompt_tokens` (cached included), output `completion_tokens`, cache read
//! `prompt_tokens_details.cached_tokens`, reasoning `completion_tokens_details.reasoning_tokens`.
//! `[DONE]` ends the stream (`Finish` after the usage chunk); a stream that ends without it is
//! complete if a finish reason came, else it ends in an error; `{"error": ...}` in a stream ends
//! it with `Event::Error`. Errors keep OpenAI's `code` (else its `type`).

pub mod decode;
pub mod request;
pub mod wire;

pub use decode::OpenAiChatDecoder;
pub use request::encode_request;

#[cfg(test)]
mod tests;
