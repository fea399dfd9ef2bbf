//! OpenAI Embeddings clients (`POST /v1/embeddings`).
//!
//! | provider kind | translation |
//! |---|---|
//! | `openai` | passthrough: the body byte for byte except `model`; usage (`prompt_tokens`) counted |
//! | others (Azure OpenAI, Gemini `batchEmbedContents`, Bedrock Titan `invoke`) | 400 `unsupported_provider` until their provider modules add an embeddings mapping |

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{BodyMode, PreparedRequest, RequestFacts, ResponseTranslator, Target};
use crate::api::openai::ProviderUsage;
use crate::config::ProviderKind;
use crate::error::GatewayError;
use crate::usage::TokenUsage;

/// The upstream path of Embeddings on OpenAI-compatible providers.
pub const EMBEDDINGS_PATH: &str = "/v1/embeddings";

#[derive(Deserialize)]
struct RoutingFields<'a> {
    #[serde(default)]
    model: Option<serde_json::Value>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
}

/// Validates an embeddings request (an object, a model, an `input`) and returns the facts.
pub fn inspect(body: &[u8]) -> Result<RequestFacts, GatewayError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(GatewayError::invalid("The request body must be a JSON object."));
    }
    let fields: RoutingFields<'_> = serde_json::from_slice(body)
        .map_err(|e| GatewayError::invalid(format!("We could not parse the JSON body of your request: {e}")))?;
    let model = match fields.model {
        Some(serde_json::Value::String(m)) if !m.is_empty() => m,
        Some(serde_json::Value::String(_)) | None => {
            return Err(GatewayError::invalid("you must provide a model parameter").with_param("model"))
        }
        Some(_) => return Err(GatewayError::invalid("'model' must be a string").with_param("model")),
    };
    match fields.input.map(|i| i.get().trim()) {
        None | Some("null") => return Err(GatewayError::invalid("Missing required parameter: 'input'.").with_param("input")),
        Some("[]") | Some("\"\"") => {
            return Err(GatewayError::invalid("'input' cannot be an empty string or array.").with_param("input"))
        }
        Some(_) => {}
    }
    Ok(RequestFacts { model, stream: false })
}

/// Translates an embeddings body for `target`.
pub fn prepare(body: &[u8], target: &Target<'_>) -> Result<PreparedRequest, GatewayError> {
    match target.provider.kind {
        ProviderKind::Openai => Ok(PreparedRequest {
            path: super::provider_path(target.provider, EMBEDDINGS_PATH),
            body: Some(super::anthropic_passthrough::replace_model(body, target.model)?),
            headers: vec![("content-type", "application/json".to_owned())],
            translator: Box::new(EmbeddingsUsage::default()),
        }),
        #[allow(unreachable_patterns)]
        other => Err(GatewayError::invalid(format!(
            "Embeddings are not available for this model yet: its provider ({other:?}) has no embeddings translation."
        ))
        .with_code("unsupported_provider")),
    }
}

#[derive(Deserialize)]
struct UsageCarrier {
    #[serde(default)]
    usage: Option<ProviderUsage>,
}

/// Leaves OpenAI's embeddings answer untouched and counts its prompt tokens.
#[derive(Debug, Default)]
pub struct EmbeddingsUsage {
    usage: TokenUsage,
}

impl ResponseTranslator for EmbeddingsUsage {
    fn on_headers(&mut self, _status: u16, _content_type: Option<&str>) -> BodyMode {
        BodyMode::Buffered
    }

    fn translate_body(&mut self, body: &[u8]) -> Result<Option<Vec<u8>>, GatewayError> {
        if let Ok(UsageCarrier { usage: Some(usage) }) = serde_json::from_slice::<UsageCarrier>(body) {
            self.usage = usage.to_token_usage();
        }
        Ok(None)
    }

    fn translate_chunk(&mut self, chunk: &[u8], _end_of_stream: bool) -> Vec<u8> {
        // Embeddings never stream; a stray chunk goes through unchanged.
        chunk.to_vec()
    }

    fn usage(&self) -> TokenUsage {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Defaults, ProviderConfig};

    fn prep(body: &str, kind: ProviderKind) -> Result<PreparedRequest, GatewayError> {
        let p: ProviderConfig = serde_json::from_value(serde_json::json!({"name": "p", "kind": kind, "cluster": "c"})).unwrap();
        let d = Defaults::default();
        prepare(body.as_bytes(), &Target { provider: &p, model: "text-embedding-3-small", defaults: &d, created_unix: 0 })
    }

    #[test]
    fn inspect_checks_model_and_input() {
        for (body, param) in [
            ("x", None),
            (r#"{"input":"a"}"#, Some("model")),
            (r#"{"model":"m"}"#, Some("input")),
            (r#"{"model":"m","input":null}"#, Some("input")),
            (r#"{"model":"m","input":[]}"#, Some("input")),
            (r#"{"model":"m","input":""}"#, Some("input")),
        ] {
            let err = inspect(body.as_bytes()).unwrap_err();
            assert_eq!((err.status(), err.param.as_deref()), (400, param), "{body}");
        }
        assert_eq!(inspect(br#"{"model":"m","input":["a","b"]}"#).unwrap(), RequestFacts { model: "m".into(), stream: false });
    }

    #[test]
    fn openai_passthrough_rewrites_only_model_and_counts_usage() {
        let body = r#"{"input": ["hello", "world"], "model": "alias", "encoding_format": "float", "dimensions": 256}"#;
        let prepared = prep(body, ProviderKind::Openai).unwrap();
        assert_eq!(prepared.path, "/v1/embeddings");
        assert_eq!(String::from_utf8(prepared.body.unwrap()).unwrap(), body.replace("\"alias\"", "\"text-embedding-3-small\""));
        let mut t = prepared.translator;
        assert_eq!(t.on_headers(200, Some("application/json")), BodyMode::Buffered);
        let response = br#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}"#;
        assert_eq!(t.translate_body(response).unwrap(), None);
        assert_eq!(t.usage(), TokenUsage { input: 8, ..Default::default() });
    }

    #[test]
    fn other_providers_are_a_clear_400() {
        let err = prep(r#"{"model":"m","input":"x"}"#, ProviderKind::Anthropic).err().unwrap();
        assert_eq!((err.status(), err.code.as_deref()), (400, Some("unsupported_provider")));
    }
}
