//! `GET /v1/models` and `GET /v1/models/{id}`, answered by the gateway from its routing table:
//! the public model names (route names) a caller may use, in OpenAI's list shape, or in
//! Anthropic's when the request carries `anthropic-version` (the Anthropic SDKs and Claude Code
//! always send it; the OpenAI SDKs never do).

use serde::Serialize;

use crate::error::{ErrorKind, ErrorShape, GatewayError};

/// Which models request a path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelsRequest {
    /// `/v1/models` or `/models`.
    List,
    /// `/v1/models/{id}` or `/models/{id}`, the id percent-decoded.
    One(String),
}

impl ModelsRequest {
    /// The models request at `path` (query string ignored), if it is one.
    pub fn from_path(path: &str) -> Option<ModelsRequest> {
        let path = path.split('?').next().unwrap_or(path);
        let rest = path.strip_prefix("/v1/models").or_else(|| path.strip_prefix("/models"))?;
        if rest.is_empty() || rest == "/" {
            return Some(ModelsRequest::List);
        }
        let id = rest.strip_prefix('/')?;
        Some(ModelsRequest::One(percent_decode(id.trim_end_matches('/'))))
    }
}

/// `%XX` escapes decoded (SDKs escape ids they put in a path); invalid escapes stay as they are.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = |j: usize| bytes.get(j).and_then(|c| (*c as char).to_digit(16));
        match (b, hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The shape a models answer takes: Anthropic's when the request carries `anthropic-version`.
pub fn shape_for(anthropic_version: Option<&str>) -> ErrorShape {
    match anthropic_version {
        Some(_) => ErrorShape::Anthropic,
        None => ErrorShape::OpenAi,
    }
}

/// Anthropic requires a creation date; route names have none, so the epoch stands in.
const EPOCH_RFC3339: &str = "1970-01-01T00:00:00Z";
/// Who owns a route name in OpenAI's shape.
const OWNER: &str = "ai-gateway";

#[derive(Serialize)]
struct OpenAiModel<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
}

#[derive(Serialize)]
struct AnthropicModel<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    display_name: &'a str,
    created_at: &'static str,
}

fn openai_model(id: &str) -> OpenAiModel<'_> {
    OpenAiModel { id, object: "model", created: 0, owned_by: OWNER }
}

fn anthropic_model(id: &str) -> AnthropicModel<'_> {
    AnthropicModel { kind: "model", id, display_name: id, created_at: EPOCH_RFC3339 }
}

#[derive(Serialize)]
struct OpenAiList<'a> {
    object: &'static str,
    data: Vec<OpenAiModel<'a>>,
}

#[derive(Serialize)]
struct AnthropicList<'a> {
    data: Vec<AnthropicModel<'a>>,
    has_more: bool,
    first_id: Option<&'a str>,
    last_id: Option<&'a str>,
}

/// The list body for `names` (already filtered to what the caller may use), sorted by name
/// and without duplicates.
pub fn list_body(shape: ErrorShape, names: &[&str]) -> Vec<u8> {
    let mut names: Vec<&str> = names.to_vec();
    names.sort_unstable();
    names.dedup();
    let json = match shape {
        ErrorShape::OpenAi => {
            serde_json::to_vec(&OpenAiList { object: "list", data: names.iter().map(|n| openai_model(n)).collect() })
        }
        ErrorShape::Anthropic => serde_json::to_vec(&AnthropicList {
            data: names.iter().map(|n| anthropic_model(n)).collect(),
            has_more: false,
            first_id: names.first().copied(),
            last_id: names.last().copied(),
        }),
    };
    json.unwrap_or_default()
}

/// One model's body.
pub fn model_body(shape: ErrorShape, name: &str) -> Vec<u8> {
    let json = match shape {
        ErrorShape::OpenAi => serde_json::to_vec(&openai_model(name)),
        ErrorShape::Anthropic => serde_json::to_vec(&anthropic_model(name)),
    };
    json.unwrap_or_default()
}

/// The 404 for a model that does not exist or that the caller may not use: the same answer for
/// both, so a key cannot probe which models exist.
pub fn not_found(name: &str) -> GatewayError {
    let shown: String = name.chars().take(200).collect();
    GatewayError::new(
        ErrorKind::NotFound,
        format!("The model `{shown}` does not exist or you do not have access to it."),
    )
    .with_param("model")
    .with_code("model_not_found")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn paths_are_recognised() {
        assert_eq!(ModelsRequest::from_path("/v1/models"), Some(ModelsRequest::List));
        assert_eq!(ModelsRequest::from_path("/v1/models/?limit=20"), Some(ModelsRequest::List));
        assert_eq!(ModelsRequest::from_path("/models"), Some(ModelsRequest::List));
        assert_eq!(ModelsRequest::from_path("/v1/models/my-gpt"), Some(ModelsRequest::One("my-gpt".into())));
        assert_eq!(ModelsRequest::from_path("/models/a%2Fb%zz"), Some(ModelsRequest::One("a/b%zz".into())));
        assert_eq!(ModelsRequest::from_path("/v1/modelsx"), None);
        assert_eq!(ModelsRequest::from_path("/v1/chat/completions"), None);
    }

    #[test]
    fn openai_list_shape() {
        let body: Value = serde_json::from_slice(&list_body(ErrorShape::OpenAi, &["b", "a", "b"])).unwrap();
        assert_eq!(body["object"], "list");
        let ids: Vec<&str> = body["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(body["data"][0], serde_json::json!({"id":"a","object":"model","created":0,"owned_by":"ai-gateway"}));
        let one: Value = serde_json::from_slice(&model_body(ErrorShape::OpenAi, "a")).unwrap();
        assert_eq!(one, body["data"][0]);
    }

    #[test]
    fn anthropic_list_shape() {
        let body: Value = serde_json::from_slice(&list_body(ErrorShape::Anthropic, &["z", "c"])).unwrap();
        assert_eq!(body["has_more"], false);
        assert_eq!((body["first_id"].as_str(), body["last_id"].as_str()), (Some("c"), Some("z")));
        assert_eq!(
            body["data"][1],
            serde_json::json!({"type":"model","id":"z","display_name":"z","created_at":"1970-01-01T00:00:00Z"})
        );
        let empty: Value = serde_json::from_slice(&list_body(ErrorShape::Anthropic, &[])).unwrap();
        assert_eq!(empty, serde_json::json!({"data":[],"has_more":false,"first_id":null,"last_id":null}));
        assert_eq!(shape_for(Some("2023-06-01")), ErrorShape::Anthropic);
        assert_eq!(shape_for(None), ErrorShape::OpenAi);
    }

    #[test]
    fn not_found_is_404_in_both_shapes() {
        let err = not_found("secret-model");
        assert_eq!(err.status(), 404);
        let anthropic: Value = serde_json::from_slice(&err.to_anthropic_body()).unwrap();
        assert_eq!(anthropic["error"]["type"], "not_found_error");
        let openai: Value = serde_json::from_slice(&err.to_openai_body()).unwrap();
        assert_eq!(openai["error"]["code"], "model_not_found");
    }
}
