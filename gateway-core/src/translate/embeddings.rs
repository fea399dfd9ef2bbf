//! OpenAI Embeddings clients (`POST /v1/embeddings`).
//!
//! | provider kind | translation |
//! |---|---|
//! | `openai` | passthrough: the body byte for byte except `model`; usage (`prompt_tokens`) counted |
//! | `azure_openai` | the same body at `/openai/deployments/{deployment}/embeddings?api-version=...` (or `/openai/v1/embeddings`); Azure errors normalised to OpenAI's shape |
//! | `gemini` | `POST /v1beta/models/{model}:batchEmbedContents`, one request per input string (`dimensions` → `outputDimensionality`); `embeddings[].values` → `data[].embedding`. Gemini reports no token counts: usage is 0 |
//! | `bedrock` | Titan text embeddings: `POST /model/{id}/invoke` with `{"inputText"}` (`dimensions` kept); one input per call, so a list of more than one input is a 400; `embedding` → `data[0].embedding`, `inputTextTokenCount` → usage |
//! | `anthropic` | 400 `unsupported_provider`: Anthropic has no embeddings API |
//!
//! For Gemini and Bedrock, inputs must be strings (token-id arrays are a 400, `input`), and
//! `encoding_format: "base64"` (what the OpenAI SDKs send by default) is honoured by encoding
//! the floats as little-endian f32, as OpenAI does. `user` is dropped.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::{BodyMode, PreparedRequest, RequestFacts, ResponseTranslator, Target};
use crate::api::openai::ProviderUsage;
use crate::config::ProviderKind;
use crate::error::{ErrorKind, GatewayError};
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
        None | Some("null") => {
            return Err(GatewayError::invalid("Missing required parameter: 'input'.").with_param("input"))
        }
        Some("[]") | Some("\"\"") => {
            return Err(GatewayError::invalid("'input' cannot be an empty string or array.").with_param("input"))
        }
        Some(_) => {}
    }
    Ok(RequestFacts { model, stream: false })
}

/// Translates an embeddings body for `target`.
pub fn prepare(body: &[u8], target: &Target<'_>) -> Result<PreparedRequest, GatewayError> {
    let passthrough = |path: String, azure: bool| -> Result<PreparedRequest, GatewayError> {
        Ok(PreparedRequest {
            path,
            body: Some(super::anthropic_passthrough::replace_model(body, target.model)?),
            headers: vec![("content-type", "application/json".to_owned())],
            translator: Box::new(EmbeddingsUsage { azure, ..Default::default() }),
            dropped: Vec::new(),
        })
    };
    match target.provider.kind {
        ProviderKind::Openai => passthrough(super::provider_path(target.provider, EMBEDDINGS_PATH), false),
        ProviderKind::AzureOpenai => passthrough(super::azure::embeddings_path(target.provider, target.model)?, true),
        ProviderKind::Gemini => prepare_gemini(body, target),
        ProviderKind::Bedrock => prepare_titan(body, target),
        ProviderKind::Anthropic => Err(GatewayError::invalid(
            "Embeddings are not available for this model: its provider (Anthropic) has no embeddings API.",
        )
        .with_code("unsupported_provider")),
    }
}

/// The members of an embeddings request the translating providers use.
#[derive(Deserialize)]
struct EmbeddingsRequest {
    #[serde(default)]
    input: Value,
    #[serde(default)]
    encoding_format: Option<Value>,
    #[serde(default)]
    dimensions: Option<Value>,
}

/// The parsed request: input strings, base64 output or not, requested dimensions.
struct Parsed {
    inputs: Vec<String>,
    base64: bool,
    dimensions: Option<u64>,
}

fn parse(body: &[u8]) -> Result<Parsed, GatewayError> {
    let req: EmbeddingsRequest = serde_json::from_slice(body)
        .map_err(|e| GatewayError::invalid(format!("We could not parse the JSON body of your request: {e}")))?;
    let not_text = || {
        GatewayError::invalid(
            "'input' must be a string or an array of strings for this model (token arrays are not supported).",
        )
        .with_param("input")
    };
    let inputs = match req.input {
        Value::String(s) => vec![s],
        Value::Array(items) => items
            .into_iter()
            .map(|i| if let Value::String(s) = i { Ok(s) } else { Err(not_text()) })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(not_text()),
    };
    if inputs.is_empty() {
        return Err(GatewayError::invalid("'input' cannot be an empty string or array.").with_param("input"));
    }
    let base64 = match req.encoding_format {
        None | Some(Value::Null) => false,
        Some(Value::String(f)) if f == "float" => false,
        Some(Value::String(f)) if f == "base64" => true,
        Some(_) => {
            return Err(
                GatewayError::invalid("'encoding_format' must be 'float' or 'base64'.").with_param("encoding_format")
            )
        }
    };
    let dimensions = match req.dimensions {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|d| d > 0) => n.as_u64(),
        Some(_) => {
            return Err(GatewayError::invalid("'dimensions' must be a positive integer.").with_param("dimensions"))
        }
    };
    Ok(Parsed { inputs, base64, dimensions })
}

fn encode(value: &Value) -> Result<Vec<u8>, GatewayError> {
    serde_json::to_vec(value)
        .map_err(|e| GatewayError::new(ErrorKind::Internal, format!("could not encode the provider request: {e}")))
}

fn prepare_gemini(body: &[u8], target: &Target<'_>) -> Result<PreparedRequest, GatewayError> {
    let parsed = parse(body)?;
    let bare = super::openai_to_gemini::validate_model(target.model).map_err(|m| {
        GatewayError::new(ErrorKind::Internal, format!("provider '{}' is misconfigured: {m}", target.provider.name))
    })?;
    let model = format!("models/{bare}");
    let requests: Vec<Value> = parsed
        .inputs
        .iter()
        .map(|text| {
            let mut r = json!({"model": model, "content": {"parts": [{"text": text}]}});
            if let Some(d) = parsed.dimensions {
                r["outputDimensionality"] = json!(d);
            }
            r
        })
        .collect();
    Ok(PreparedRequest {
        path: super::provider_path(target.provider, &format!("/v1beta/models/{bare}:batchEmbedContents")),
        body: Some(encode(&json!({ "requests": requests }))?),
        headers: vec![("content-type", "application/json".to_owned())],
        translator: Box::new(EmbeddingsTranslator::new(Upstream::Gemini, parsed.base64, target.model)),
        dropped: Vec::new(),
    })
}

fn prepare_titan(body: &[u8], target: &Target<'_>) -> Result<PreparedRequest, GatewayError> {
    let parsed = parse(body)?;
    super::openai_to_bedrock::region(target.provider)?;
    let [text] = parsed.inputs.as_slice() else {
        return Err(GatewayError::invalid(format!(
            "This model (Bedrock Titan embeddings) takes one input per request; got {} inputs. Send one string, or one request per input.",
            parsed.inputs.len()
        ))
        .with_param("input"));
    };
    let mut request = json!({ "inputText": text });
    if let Some(d) = parsed.dimensions {
        request["dimensions"] = json!(d);
    }
    // `/model/{id}/converse` shares its model-id encoding and checks with `/model/{id}/invoke`.
    let converse = super::openai_to_bedrock::converse_path(target.model, false)?;
    let prefix = converse.strip_suffix("/converse").unwrap_or(&converse);
    Ok(PreparedRequest {
        path: super::provider_path(target.provider, &format!("{prefix}/invoke")),
        body: Some(encode(&request)?),
        headers: vec![("content-type", "application/json".to_owned()), ("accept", "application/json".to_owned())],
        translator: Box::new(EmbeddingsTranslator::new(Upstream::Bedrock, parsed.base64, target.model)),
        dropped: Vec::new(),
    })
}

/// Which provider answers a translated embeddings request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upstream {
    Gemini,
    Bedrock,
}

#[derive(Deserialize)]
struct GeminiEmbeddings {
    #[serde(default)]
    embeddings: Vec<GeminiEmbedding>,
}

#[derive(Deserialize)]
struct GeminiEmbedding {
    #[serde(default)]
    values: Vec<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TitanEmbedding {
    #[serde(default)]
    embedding: Option<Vec<f64>>,
    #[serde(default)]
    input_text_token_count: u64,
}

/// Turns a Gemini or Bedrock Titan embeddings answer into OpenAI's `list` of embeddings.
#[derive(Debug)]
pub struct EmbeddingsTranslator {
    upstream: Upstream,
    status: u16,
    base64: bool,
    model: String,
    error_type: Option<String>,
    usage: TokenUsage,
}

impl EmbeddingsTranslator {
    fn new(upstream: Upstream, base64: bool, model: &str) -> Self {
        EmbeddingsTranslator {
            upstream,
            status: 200,
            base64,
            model: model.to_owned(),
            error_type: None,
            usage: TokenUsage::default(),
        }
    }

    fn item(&self, index: usize, values: &[f64]) -> Value {
        let embedding = if self.base64 { Value::String(f32_base64(values)) } else { json!(values) };
        json!({"object": "embedding", "index": index, "embedding": embedding})
    }
}

/// OpenAI's base64 encoding of an embedding: the little-endian f32 bytes, standard alphabet.
fn f32_base64(values: &[f64]) -> String {
    let bytes: Vec<u8> = values.iter().flat_map(|v| (*v as f32).to_le_bytes()).collect();
    crate::b64::encode(&bytes)
}

impl ResponseTranslator for EmbeddingsTranslator {
    fn on_headers(&mut self, status: u16, _content_type: Option<&str>) -> BodyMode {
        self.status = status;
        BodyMode::Buffered
    }

    fn content_type(&self) -> Option<&'static str> {
        Some("application/json")
    }

    fn wanted_response_header(&self) -> Option<&'static str> {
        (self.upstream == Upstream::Bedrock).then_some(super::openai_to_bedrock::ERROR_TYPE_HEADER)
    }

    fn on_response_header(&mut self, value: &str) {
        self.error_type = Some(value.to_owned());
    }

    fn translate_body(&mut self, body: &[u8]) -> Result<Option<Vec<u8>>, GatewayError> {
        if !(200..300).contains(&self.status) {
            return Ok(Some(match self.upstream {
                Upstream::Gemini => super::openai_to_gemini::response::translate_error(self.status, body),
                Upstream::Bedrock => {
                    super::openai_to_bedrock::response::translate_error(self.status, self.error_type.as_deref(), body)
                }
            }));
        }
        let bad = |e: serde_json::Error| {
            GatewayError::new(
                ErrorKind::BadGateway,
                format!("The provider's embeddings response could not be read: {e}"),
            )
        };
        let data: Vec<Value> = match self.upstream {
            Upstream::Gemini => {
                let parsed: GeminiEmbeddings = serde_json::from_slice(body).map_err(bad)?;
                parsed.embeddings.iter().enumerate().map(|(i, e)| self.item(i, &e.values)).collect()
            }
            Upstream::Bedrock => {
                let parsed: TitanEmbedding = serde_json::from_slice(body).map_err(bad)?;
                let Some(values) = parsed.embedding else {
                    return Err(GatewayError::new(
                        ErrorKind::BadGateway,
                        "The provider's embeddings response has no embedding.",
                    ));
                };
                self.usage = TokenUsage { input: parsed.input_text_token_count, ..Default::default() };
                vec![self.item(0, &values)]
            }
        };
        let prompt = self.usage.input;
        let out = json!({"object": "list", "data": data, "model": self.model, "usage": {"prompt_tokens": prompt, "total_tokens": prompt}});
        Ok(Some(encode(&out)?))
    }

    fn translate_chunk(&mut self, chunk: &[u8], _end_of_stream: bool) -> Vec<u8> {
        chunk.to_vec()
    }

    fn usage(&self) -> TokenUsage {
        self.usage
    }
}

#[derive(Deserialize)]
struct UsageCarrier<'a> {
    #[serde(default)]
    usage: Option<ProviderUsage>,
    #[serde(borrow, default)]
    model: Option<&'a serde_json::value::RawValue>,
}

/// Leaves an OpenAI (or Azure OpenAI) embeddings answer untouched and counts its prompt
/// tokens; Azure's error bodies are normalised to OpenAI's shape.
#[derive(Debug, Default)]
pub struct EmbeddingsUsage {
    usage: TokenUsage,
    status: u16,
    azure: bool,
    response_model: Option<String>,
}

impl ResponseTranslator for EmbeddingsUsage {
    fn on_headers(&mut self, status: u16, _content_type: Option<&str>) -> BodyMode {
        self.status = status;
        BodyMode::Buffered
    }

    fn translate_body(&mut self, body: &[u8]) -> Result<Option<Vec<u8>>, GatewayError> {
        if self.azure && !(200..300).contains(&self.status) {
            return Ok(Some(super::azure::translate_error(self.status, body)));
        }
        if let Ok(carrier) = serde_json::from_slice::<UsageCarrier>(body) {
            if let Some(usage) = carrier.usage {
                self.usage = usage.to_token_usage();
            }
            self.response_model = super::response_model_name(carrier.model);
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

    fn response_model(&self) -> Option<&str> {
        self.response_model.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Defaults, ProviderConfig};

    fn prep(body: &str, kind: ProviderKind) -> Result<PreparedRequest, GatewayError> {
        let p: ProviderConfig =
            serde_json::from_value(serde_json::json!({"name": "p", "kind": kind, "cluster": "c"})).unwrap();
        let d = Defaults::default();
        prepare(
            body.as_bytes(),
            &Target { provider: &p, model: "text-embedding-3-small", defaults: &d, created_unix: 0 },
        )
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
        assert_eq!(
            inspect(br#"{"model":"m","input":["a","b"]}"#).unwrap(),
            RequestFacts { model: "m".into(), stream: false }
        );
    }

    #[test]
    fn openai_passthrough_rewrites_only_model_and_counts_usage() {
        let body = r#"{"input": ["hello", "world"], "model": "alias", "encoding_format": "float", "dimensions": 256}"#;
        let prepared = prep(body, ProviderKind::Openai).unwrap();
        assert_eq!(prepared.path, "/v1/embeddings");
        assert_eq!(
            String::from_utf8(prepared.body.unwrap()).unwrap(),
            body.replace("\"alias\"", "\"text-embedding-3-small\"")
        );
        let mut t = prepared.translator;
        assert_eq!(t.on_headers(200, Some("application/json")), BodyMode::Buffered);
        let response = br#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}"#;
        assert_eq!(t.translate_body(response).unwrap(), None);
        assert_eq!(t.usage(), TokenUsage { input: 8, ..Default::default() });
        assert_eq!(t.response_model(), Some("text-embedding-3-small"));
    }

    #[test]
    fn anthropic_is_a_clear_400() {
        let err = prep(r#"{"model":"m","input":"x"}"#, ProviderKind::Anthropic).err().unwrap();
        assert_eq!((err.status(), err.code.as_deref()), (400, Some("unsupported_provider")));
    }

    fn prep_with(body: &str, provider: serde_json::Value, model: &str) -> Result<PreparedRequest, GatewayError> {
        let p: ProviderConfig = serde_json::from_value(provider).unwrap();
        let d = Defaults::default();
        prepare(body.as_bytes(), &Target { provider: &p, model, defaults: &d, created_unix: 0 })
    }

    #[test]
    fn azure_paths_and_errors() {
        let body = r#"{"model":"alias","input":"hello"}"#;
        let dep = serde_json::json!({"name": "a", "kind": "azure_openai", "cluster": "c", "settings": {"azure": {"api_version": "2024-10-21"}}});
        let prepared = prep_with(body, dep, "emb-small").unwrap();
        assert_eq!(prepared.path, "/openai/deployments/emb-small/embeddings?api-version=2024-10-21");
        assert_eq!(String::from_utf8(prepared.body.unwrap()).unwrap(), r#"{"model":"emb-small","input":"hello"}"#);
        let v1 = serde_json::json!({"name": "a", "kind": "azure_openai", "cluster": "c", "settings": {"azure": {"url_form": "v1"}}});
        assert_eq!(prep_with(body, v1, "emb-small").unwrap().path, "/openai/v1/embeddings");
        let dep = serde_json::json!({"name": "a", "kind": "azure_openai", "cluster": "c", "settings": {"azure": {"api_version": "2024-10-21"}}});
        assert_eq!(prep_with(body, dep.clone(), "../x").err().unwrap().status(), 500);
        let mut t = prep_with(body, dep, "emb-small").unwrap().translator;
        t.on_headers(404, Some("application/json"));
        let out: Value = serde_json::from_slice(
            &t.translate_body(br#"{"error":{"code":"DeploymentNotFound","message":"no such deployment"}}"#)
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(out["error"]["code"], "DeploymentNotFound");
        assert!(out["error"]["type"].is_string() && out["error"].get("param").is_some());
    }

    #[test]
    fn gemini_batch_request_and_response() {
        let g = serde_json::json!({"name": "g", "kind": "gemini", "cluster": "c"});
        let prepared = prep_with(
            r#"{"model":"alias","input":["a","b\"c"],"dimensions":8,"user":"u"}"#,
            g.clone(),
            "text-embedding-004",
        )
        .unwrap();
        assert_eq!(prepared.path, "/v1beta/models/text-embedding-004:batchEmbedContents");
        let sent: Value = serde_json::from_slice(&prepared.body.unwrap()).unwrap();
        assert_eq!(
            sent,
            serde_json::json!({"requests": [
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 8},
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "b\"c"}]}, "outputDimensionality": 8}]})
        );
        let mut t = prepared.translator;
        assert_eq!(t.on_headers(200, Some("application/json")), BodyMode::Buffered);
        let out: Value = serde_json::from_slice(
            &t.translate_body(br#"{"embeddings":[{"values":[0.5,-1.25]},{"values":[2.0,0.0]}]}"#).unwrap().unwrap(),
        )
        .unwrap();
        assert_eq!(
            out,
            serde_json::json!({"object": "list", "model": "text-embedding-004", "usage": {"prompt_tokens": 0, "total_tokens": 0}, "data": [
            {"object": "embedding", "index": 0, "embedding": [0.5, -1.25]}, {"object": "embedding", "index": 1, "embedding": [2.0, 0.0]}]})
        );
        assert_eq!(t.usage(), TokenUsage::default());

        // The OpenAI SDKs ask for base64 by default: little-endian f32, as OpenAI sends it.
        let mut t =
            prep_with(r#"{"model":"alias","input":"a","encoding_format":"base64"}"#, g.clone(), "text-embedding-004")
                .unwrap()
                .translator;
        t.on_headers(200, None);
        let out: Value = serde_json::from_slice(
            &t.translate_body(br#"{"embeddings":[{"values":[1.0,-2.0,0.5]}]}"#).unwrap().unwrap(),
        )
        .unwrap();
        use base64::Engine;
        let bytes =
            base64::engine::general_purpose::STANDARD.decode(out["data"][0]["embedding"].as_str().unwrap()).unwrap();
        let floats: Vec<f32> = bytes.chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(floats, [1.0, -2.0, 0.5]);
        for n in 0..7 {
            let values: Vec<f64> = (0..n).map(|i| i as f64 * 0.3).collect();
            let bytes: Vec<u8> = values.iter().flat_map(|v| (*v as f32).to_le_bytes()).collect();
            assert_eq!(f32_base64(&values), base64::engine::general_purpose::STANDARD.encode(bytes));
        }

        let mut t = prep_with(r#"{"model":"alias","input":"a"}"#, g.clone(), "text-embedding-004").unwrap().translator;
        t.on_headers(400, Some("application/json"));
        let out: Value = serde_json::from_slice(
            &t.translate_body(br#"{"error":{"code":400,"message":"API key not valid","status":"INVALID_ARGUMENT"}}"#)
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(out["error"]["message"], "API key not valid");
        let mut t = prep_with(r#"{"model":"alias","input":"a"}"#, g.clone(), "text-embedding-004").unwrap().translator;
        t.on_headers(200, None);
        assert_eq!(t.translate_body(b"<html>").unwrap_err().status(), 502);
        for (bad, param) in [
            (r#"{"model":"a","input":[1,2]}"#, "input"),
            (r#"{"model":"a","input":"x","encoding_format":"hex"}"#, "encoding_format"),
            (r#"{"model":"a","input":"x","dimensions":0}"#, "dimensions"),
        ] {
            let err = prep_with(bad, g.clone(), "text-embedding-004").err().unwrap();
            assert_eq!((err.status(), err.param.as_deref()), (400, Some(param)), "{bad}");
        }
    }

    #[test]
    fn bedrock_titan_one_input_per_call() {
        let b = serde_json::json!({"name": "b", "kind": "bedrock", "cluster": "c", "settings": {"bedrock": {"region": "us-east-1"}}});
        let prepared = prep_with(
            r#"{"model":"alias","input":["hello"],"dimensions":256}"#,
            b.clone(),
            "amazon.titan-embed-text-v2:0",
        )
        .unwrap();
        assert_eq!(prepared.path, "/model/amazon.titan-embed-text-v2%3A0/invoke");
        assert_eq!(
            serde_json::from_slice::<Value>(&prepared.body.unwrap()).unwrap(),
            serde_json::json!({"inputText": "hello", "dimensions": 256})
        );
        let mut t = prepared.translator;
        t.on_headers(200, Some("application/json"));
        let out: Value = serde_json::from_slice(
            &t.translate_body(br#"{"embedding":[0.25,-0.5],"inputTextTokenCount":3}"#).unwrap().unwrap(),
        )
        .unwrap();
        assert_eq!(out["data"], serde_json::json!([{"object": "embedding", "index": 0, "embedding": [0.25, -0.5]}]));
        assert_eq!(out["usage"], serde_json::json!({"prompt_tokens": 3, "total_tokens": 3}));
        assert_eq!(t.usage(), TokenUsage { input: 3, ..Default::default() });

        let err = prep_with(r#"{"model":"alias","input":["a","b"]}"#, b.clone(), "amazon.titan-embed-text-v2:0")
            .err()
            .unwrap();
        assert_eq!((err.status(), err.param.as_deref()), (400, Some("input")));
        assert!(err.message.contains("one input per request"));

        let mut t =
            prep_with(r#"{"model":"alias","input":"a"}"#, b, "amazon.titan-embed-text-v2:0").unwrap().translator;
        t.on_headers(400, Some("application/json"));
        assert_eq!(t.wanted_response_header(), Some("x-amzn-errortype"));
        t.on_response_header("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/");
        let out: Value =
            serde_json::from_slice(&t.translate_body(br#"{"message":"Malformed input request"}"#).unwrap().unwrap())
                .unwrap();
        assert_eq!(
            (out["error"]["code"].as_str(), out["error"]["message"].as_str()),
            (Some("ValidationException"), Some("Malformed input request"))
        );
    }
}
