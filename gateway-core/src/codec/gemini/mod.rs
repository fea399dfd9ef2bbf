//! Google Gemini (`v1beta` `generateContent`, `streamGenerateContent?alt=sse`) as a provider of
//! the conversation model: [`encode_request`] writes the request, [`GeminiDecoder`] reads
//! answers, streams and errors.
//!
//! Requests ([`request`]):
//!
//! | conversation | Gemini |
//! |---|---|
//! | leading `System`/`Developer` messages | `systemInstruction` (text only, else 400) |
//! | later `System`/`Developer` messages | a `user` turn text `<system>\n…\n</system>` where it stood: Gemini has one instruction at the top, and this keeps the order and tells the model who speaks |
//! | `User` / `Assistant` | `contents` roles `user` / `model`; consecutive turns of one role merged, empty turns left out |
//! | text, image, document, audio | `text`; base64 → `inlineData`; https URL → `fileData` (type from the source or the extension, else 400); text documents → text (title first); other URLs and file ids → 400 |
//! | tool call | `functionCall {name, args}` (arguments must be a JSON object); custom tools → 400 |
//! | tool result | `functionResponse {name, response}`, name from the result or the nearest earlier call with its id (400 if none): a JSON-object output as is, other text as `{"output": text}`, `is_error` as `{"error": content}`; images and documents follow as parts of the same turn |
//! | reasoning signed by Gemini | its `thoughtSignature` on the next `functionCall`/text part of the turn; at the turn's end (a stream's closing signature) on the last text part if it is unsigned, else an empty text part; the thought text is not sent back |
//! | reasoning of other families, redacted reasoning | dropped (only the issuer can read it) |
//! | model turn with function calls and no Gemini signature | first `functionCall` gets Google's placeholder `skip_thought_signature_validator` (Gemini 3 demands a signature) |
//! | `Part::Unknown` of Gemini | the part, verbatim; of other families dropped, named `unknown_content` |
//! | tools | `tools[{functionDeclarations}]`, schemas cleaned as [`crate::translate::openai_to_gemini::schema`] does |
//! | tool_choice | auto → `AUTO`, none → `NONE`, required → `ANY`, a tool → `ANY` + `allowedFunctionNames` (only with tools) |
//! | parallel_tool_calls `false` | dropped, named `parallel_tool_calls` (Gemini has no switch) |
//! | max_output_tokens (else `default_max_tokens` when > 0), temperature, top_p, top_k, stop | `generationConfig.maxOutputTokens`, `temperature`, `topP`, `topK`, `stopSequences` |
//! | output_format | `responseMimeType: application/json` (+ `responseSchema`, cleaned) |
//! | reasoning | `thinkingConfig`: Budget → `thinkingBudget` (at most [`request::MAX_THINKING_BUDGET`]), Adaptive → -1 (dynamic; an effort picks a budget instead), Disabled → 0, Effort/effort → none/minimal 0, low 1024, medium 8192, high+ 24576; `includeThoughts` whenever the budget is not 0 |
//! | cache breakpoints | dropped silently: Gemini caches implicitly, so the client's intent is served |
//! | user | dropped silently (no Gemini member; nothing in the answer changes) |
//! | extras | Gemini's forwarded as top-level members; others dropped and named ([`crate::codec::dropped_name`]) |
//!
//! Answers ([`decode`]): candidate 0 only (the codec never asks for more). Text parts → text
//! blocks (consecutive ones joined); `thought: true` parts → reasoning; a `thoughtSignature` →
//! the signature of a reasoning block right before the part that carried it (the open thought
//! block when there is one), so encoding puts it back on that part; `functionCall` → a tool call
//! with Gemini's id if any, else `call_<responseId>_<n>` (stable across splits and turns);
//! other parts → `Unknown` (Gemini), kept whole. `finishReason`: `STOP` → end turn (tool use
//! after function calls), `MAX_TOKENS` → max tokens, safety/recitation/blocklist → content
//! filter, others → `Other`; a blocked prompt → content filter. `usageMetadata`: input =
//! `promptTokenCount` (+ `toolUsePromptTokenCount`), output = `candidatesTokenCount` +
//! `thoughtsTokenCount`, reasoning = thoughts, cache read = `cachedContentTokenCount`; members an
//! event leaves out keep their earlier value (Gemini's first event may carry an empty object).
//! Errors keep Google's canonical status (`INVALID_ARGUMENT`...) as code; an in-stream error
//! ends the stream with `Event::Error`, and so does a stream that ends without a finish reason.

pub mod decode;
pub mod request;
pub mod wire;

pub use decode::GeminiDecoder;
pub use request::encode_request;

#[cfg(test)]
mod tests;
