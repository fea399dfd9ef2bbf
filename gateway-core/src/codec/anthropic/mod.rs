//! Anthropic Messages clients: the request decoder ([`decode_request`]) and the answer encoder
//! ([`AnthropicEncoder`]: JSON, SSE, errors) on the [conversation model](crate::conversation).
//!
//! Used when an Anthropic client reaches a provider of another API; Anthropic → Anthropic stays
//! the byte-preserving passthrough and never comes here.
//!
//! | Messages request | conversation model |
//! |---|---|
//! | `model` | returned beside the [`Request`](crate::conversation::Request): the answer names it |
//! | `system` (string or text blocks, `cache_control`) | a leading `System` message, one text part per block |
//! | `messages[]` with `role: "system"` (mid-conversation system beta) | a `System` message at its position |
//! | `text` (`cache_control`, `citations`) | `Part::Text` |
//! | `image` (`base64`, `url`, `file`) | `Part::Image` (`Source::Base64` / `Url` / `File{Claude}`) |
//! | `document` (`base64` PDF, `text`, `url`, `file`; `title`, `context`, `citations.enabled`) | `Part::Document` |
//! | `document` with a `content` source | `Part::Unknown{Claude}` (the whole block) |
//! | `tool_use` | `Part::ToolCall`, `arguments` = the `input` object's JSON text as sent |
//! | `tool_result` (string or blocks, `is_error`) | `Part::ToolResult`, `name` from the matching earlier `tool_use` |
//! | `thinking` (`signature`) | `Part::Reasoning`, signature `Opaque::from_client_string(_, Claude)` (`""` = none) |
//! | `redacted_thinking` (`data`) | `Part::RedactedReasoning` |
//! | any other block (server tool uses and results, `search_result`, `tool_reference`...) | `Part::Unknown{Claude}` (whole) |
//! | `tools[]` client tools (`name`, `description`, `input_schema`, `strict`, `cache_control`) | `ToolDef` (function) |
//! | `tools[]` server/versioned tools, or client tools with other members (`defer_loading`...) | also `Extra{Claude, "tools"}`: see *Objects kept whole* |
//! | `tool_choice` `auto`/`any`/`tool`/`none` | `ToolChoice::Auto`/`Required`/`Tool`/`None` |
//! | `tool_choice.disable_parallel_tool_use` | `parallel_tool_calls` = its negation |
//! | `max_tokens`, `temperature`, `top_p`, `top_k`, `stop_sequences`, `stream` | the same fields |
//! | `metadata.user_id` | `user` |
//! | `thinking` `enabled`+`budget_tokens` / `adaptive` / `disabled` | `Reasoning::Budget` / `Adaptive` / `Disabled` |
//! | `output_config.effort` | `effort` |
//! | `output_format`, `output_config.format` (`json_schema`) | `OutputFormat::JsonSchema` (the latter wins) |
//! | `thinking` / `output_config` with members besides the mapped ones | also `Extra{Claude, "thinking" / "output_config"}`, whole |
//! | any other top-level member (`context_management`, `service_tier`, `container`, `mcp_servers`...) | `Extra{Claude, name, value}` verbatim (`null` = absent) |
//!
//! **Objects kept whole.** When `tools` holds anything [`ToolDef`](crate::conversation::ToolDef)
//! cannot say, the whole client `tools` array is also kept verbatim as
//! `Extra{family: Claude, name: "tools"}`. `Request::tools` still lists every client tool, so
//! other families use it and drop the extra by name; an Anthropic-family encoder sends the
//! extra's array as `tools` *instead of* rendering `Request::tools` (exact order, server tools
//! and unknown members included). `thinking` and `output_config` follow the same rule: mapped,
//! and also kept whole under their own name when they hold a member the model has no place for.
//!
//! Not kept: unknown members inside a known block or inside `metadata`, a `cache_control` on
//! `redacted_thinking`, empty system texts, and whether a text content was a string or one block.
//!
//! Answers: text (`citations`), `tool_use` (`input` = the arguments' JSON object, `{}` when
//! empty or not an object), `thinking` (`signature` = `Opaque::to_client_string(Claude)`, `""`
//! when unsigned), `redacted_thinking`, Claude unknown blocks verbatim; other families' unknown
//! blocks are left out. `usage.input_tokens` excludes cache reads and writes; all four counts are
//! always written (0 when unreported), as Anthropic does. `model` is always the client's.
//! In streams, `Delta::Citation` holds the `citation` object of a `citations_delta`.

pub mod provider;
mod request;
mod response;
mod stream;
mod wire;

pub use request::decode_request;
pub use stream::AnthropicEncoder;
