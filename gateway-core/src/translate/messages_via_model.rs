//! Anthropic Messages clients on providers of another API, through the conversation model
//! (ADR 0010): the Anthropic client codec decodes the request, the provider's codec encodes it,
//! and a [`Bridge`] of the provider's decoder and the Anthropic encoder carries the answer back.
//!
//! | provider kind | codec | path |
//! |---|---|---|
//! | `openai` | [`codec::openai_chat`] | `/v1/chat/completions` |
//! | `azure_openai` | [`codec::openai_chat`] | the deployment's Chat Completions path |
//! | `bedrock` (Converse) | [`codec::converse`] | `/model/{id}/converse`, `/converse-stream` |
//! | `gemini` | [`codec::gemini`] | `/v1beta/models/{id}:generateContent`, `:streamGenerateContent?alt=sse` |
//!
//! The answer names the model the client asked for; the provider's id stays available through
//! [`super::ResponseTranslator::response_model`] for logs and traces.

use super::{PreparedRequest, Target};
use crate::aws::eventstream::crc32;
use crate::codec::{self, anthropic::AnthropicEncoder, Encoded};
use crate::config::ProviderKind;
use crate::conversation::bridge::{Bridge, ProviderDecoder};
use crate::error::{ErrorKind, GatewayError};

/// Translates an Anthropic Messages body for `target`, whose provider speaks another API.
pub fn prepare(body: &[u8], target: &Target<'_>) -> Result<PreparedRequest, GatewayError> {
    let (request, client_model) = codec::anthropic::decode_request(body)?;
    // Providers other than Anthropic name no message in a way Anthropic clients expect: an id
    // from the arrival time and the body, in Anthropic's style, when the provider gives none.
    let fallback_id = format!("msg_gw_{:x}{:08x}", target.created_unix, crc32(body));
    let encoder = AnthropicEncoder::new(client_model, fallback_id);
    let max_tokens = u64::from(target.defaults.max_tokens);
    match target.provider.kind {
        ProviderKind::Openai => {
            let encoded = codec::openai_chat::encode_request(&request, target.model)?;
            Ok(prepared(target, encoded, None, codec::openai_chat::OpenAiChatDecoder::new(), encoder))
        }
        ProviderKind::AzureOpenai => {
            let path = super::azure::chat_completions_path(target.provider, target.model)?;
            let encoded = codec::openai_chat::encode_request(&request, target.model)?;
            Ok(prepared(target, encoded, Some(path), codec::openai_chat::OpenAiChatDecoder::new(), encoder))
        }
        ProviderKind::Bedrock => {
            super::openai_to_bedrock::region(target.provider)?;
            let encoded = codec::converse::encode_request(&request, target.model, max_tokens)?;
            Ok(prepared(target, encoded, None, codec::converse::ConverseDecoder::new(target.model), encoder))
        }
        ProviderKind::Gemini => {
            let encoded = codec::gemini::encode_request(&request, target.model, max_tokens)?;
            Ok(prepared(target, encoded, None, codec::gemini::GeminiDecoder::new(), encoder))
        }
        ProviderKind::Anthropic => Err(GatewayError::new(
            ErrorKind::Internal,
            "an Anthropic provider is served by the passthrough, not the conversation model",
        )),
    }
}

/// The attempt for an encoded request: `full_path` when the caller built the whole path (Azure),
/// else the codec's path under the provider's prefix.
fn prepared<D: ProviderDecoder + 'static>(
    target: &Target<'_>,
    encoded: Encoded,
    full_path: Option<String>,
    decoder: D,
    encoder: AnthropicEncoder,
) -> PreparedRequest {
    PreparedRequest {
        path: full_path.unwrap_or_else(|| super::provider_path(target.provider, &encoded.path)),
        body: Some(encoded.body),
        headers: encoded.headers,
        translator: Box::new(Bridge::new(decoder, encoder)),
        dropped: encoded.dropped,
    }
}
