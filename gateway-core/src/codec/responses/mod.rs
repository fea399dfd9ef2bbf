//! OpenAI Responses API clients (Codex CLI, the OpenAI Agents SDK): the request decoder
//! ([`decode_request`]) and the answer encoder ([`ResponsesEncoder`]: JSON, typed SSE, errors)
//! on the [conversation model](crate::conversation).
//!
//! Used when a Responses client reaches a provider of another API; Responses → OpenAI/Azure is
//! meant to stay a byte-preserving passthrough and never come here.
//!
//! | Responses request | conversation model |
//! |---|---|
//! | `model` | returned beside the [`Request`](crate::conversation::Request): the answer names it |
//! | `instructions` (string) | a leading `System` message (none when empty) |
//! | `input` as a string | one `User` text message |
//! | `message` items (typed or not), roles `user`/`assistant`/`system`/`developer` | messages of that role; consecutive user or assistant items share one turn |
//! | `input_text`, `output_text`, `refusal` parts | `Part::Text` |
//! | `input_image` (`image_url` URL or data URL, `file_id`; `detail` dropped) | `Part::Image` (`Source::Url` / `Base64` / `File{OpenAi}`) |
//! | `input_file` (`file_data` data URL or bare base64, `filename`, `file_id`, `file_url`) | `Part::Document` (`title` = `filename`) |
//! | `input_audio` | `Part::Audio` |
//! | other content parts | `Part::Unknown{OpenAi}` |
//! | `function_call` (`call_id`, `name`, `arguments`) | `Part::ToolCall` (function) in the assistant turn, `id` = `call_id` |
//! | `custom_tool_call` (`call_id`, `name`, `input`) | `Part::ToolCall` (`ToolKind::Custom`, arguments = the raw input) |
//! | `function_call_output` / `custom_tool_call_output` (string or content parts) | `Part::ToolResult` in the user turn, `name` from the matching call; no matching call → 400 (unless `previous_response_id`/`conversation` holds it) |
//! | `reasoning` with summary (or `reasoning_text` content) | `Part::Reasoning`: text = summary parts joined by a blank line, signature = `encrypted_content` read by `Opaque::from_client_string(_, OpenAi)` |
//! | `reasoning` with `encrypted_content` only | `Part::RedactedReasoning` (same reading) |
//! | `reasoning` with neither (a pointer to OpenAI's stored state), any other item (hosted tool calls, `item_reference`...) | `Part::Unknown{OpenAi}` whole, in the turn of whoever produced it |
//! | `tools[]` `function` (`parameters`, `strict`) / `custom` | `ToolDef` (function, schema verbatim; custom, no schema) |
//! | `tools[]` hosted (`web_search`, `file_search`, `code_interpreter`, `image_generation`, `mcp`, `local_shell`...) | `Extra{OpenAi, <type>}` = an array of those tools: other families drop them by name |
//! | `tool_choice` `auto`/`required`/`none`, `{type: function/custom, name}` | `ToolChoice` |
//! | `tool_choice` `allowed_tools` / a hosted tool | its mode (or none), and `Extra{OpenAi, "tool_choice"}` whole |
//! | `parallel_tool_calls`, `max_output_tokens` (≥ 1), `temperature` (0..2), `top_p` (0..1), `stream` | the same fields |
//! | `reasoning.effort` | `effort`; the whole `reasoning` object also as an extra when it has more (`summary`) |
//! | `text.format` `json_schema` / `json_object` / `text` | `OutputFormat::JsonSchema` (name, schema, strict) / `JsonObject` / none |
//! | `text.verbosity` | `Extra{OpenAi, "verbosity"}` (Chat's name for it); other `text` members: the whole `text` extra |
//! | `user`, else `safety_identifier` | `user` (`safety_identifier` also kept as an extra) |
//! | `include`, `store`, `metadata`, `prompt_cache_key`, `service_tier`, `previous_response_id`, `truncation`, `background`... | `Extra{OpenAi, name}` verbatim (`null` = absent) |
//!
//! Answers: consecutive text parts → one `message` item with an `output_text` part each
//! (`annotations: []`); tool calls → `function_call` / `custom_tool_call` (`call_id` = the call
//! id); reasoning → a `reasoning` item with one `summary_text` part holding the text (even empty)
//! and `encrypted_content` = `Opaque::to_client_string(OpenAi)` of the signature, so a Claude or
//! Gemini signature goes out tagged `gw1.<family>.` and comes back to its family on the next
//! request; redacted reasoning → a `reasoning` item with no summary and the payload as
//! `encrypted_content`; OpenAI unknown items verbatim; other families' unknown parts left out.
//! Item ids are `msg_`/`fc_`/`ctc_`/`rs_` + the response id's tail + the output index. `status`
//! is `incomplete` (`incomplete_details.reason`: `max_output_tokens`, also for an exhausted
//! context window, or `content_filter`), else `completed`. `usage`: `input_tokens` with cached
//! tokens included, `input_tokens_details.cached_tokens`, `output_tokens`,
//! `output_tokens_details.reasoning_tokens`, `total_tokens`; all present (0 when unreported).
//! `model` is always the client's; the response id is the provider's, `resp_`-prefixed, or the
//! fallback. Request echoes (`tools`, `temperature`, `tool_choice`...) are neutral values.
//! Streams: see [`ResponsesEncoder`]; errors: OpenAI's error body, and in a stream an `error`
//! event followed by `response.failed`.

mod request;
mod response;
mod stream;
mod wire;

pub use request::decode_request;
pub use stream::ResponsesEncoder;
