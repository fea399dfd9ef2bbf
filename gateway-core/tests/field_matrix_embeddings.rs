//! The OpenAI Embeddings part of the field matrix (`openai_embeddings` in
//! `docs/field-matrix.json`, rendered in `docs/field-matrix.md`): every entry goes through the real
//! `prepare` for its provider and must behave as the matrix says, and the document must say the
//! same. Entries name the request member they set (`key`, default the field) and, for dropped
//! entries, the request they must be indistinguishable from (`baseline`, default: without the key).

// Only the document check is shared; the field checks of the other sections go unused here.
#[allow(dead_code)]
mod matrix;

use std::path::PathBuf;

use gateway_core::config::{Defaults, ProviderConfig};
use gateway_core::translate::{prepare, ClientApi, Target};
use serde_json::{Map, Value};

fn docs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs")
}

fn section() -> Value {
    let text = std::fs::read_to_string(docs().join("field-matrix.json")).expect("docs/field-matrix.json");
    let mut all: Value = serde_json::from_str(&text).expect("field-matrix.json is JSON");
    all["openai_embeddings"].take()
}

fn translate(
    provider: &ProviderConfig,
    model: &str,
    body: &Map<String, Value>,
) -> Result<(String, Value), gateway_core::GatewayError> {
    let defaults = Defaults::default();
    let target = Target { provider, model, defaults: &defaults, created_unix: 0 };
    let prepared = prepare(ClientApi::OpenAiEmbeddings, &target, Value::Object(body.clone()).to_string().as_bytes())?;
    let sent = match &prepared.body {
        Some(b) => serde_json::from_slice(b).expect("upstream body is JSON"),
        None => Value::Object(body.clone()),
    };
    Ok((prepared.path, sent))
}

#[test]
fn embeddings_fields_behave_as_the_matrix_says() {
    let m = section();
    let base = m["base_request"].as_object().expect("base_request").clone();
    let providers = m["providers"].as_object().expect("providers");
    assert!(["openai", "azure_openai", "gemini", "bedrock"].iter().all(|k| providers.contains_key(*k)));
    let mut checked = 0;
    for (key, p) in providers {
        let provider: ProviderConfig =
            serde_json::from_value(p["provider"].clone()).unwrap_or_else(|e| panic!("{key}: provider: {e}"));
        let model = p["target_model"].as_str().expect("target_model");
        for entry in p["fields"].as_array().expect("fields") {
            let field = entry["field"].as_str().expect("field");
            let member = entry.get("key").and_then(Value::as_str).unwrap_or(field);
            let label = format!("{key}.{field}");
            let mut without = base.clone();
            if let Some(with) = entry.get("with").and_then(Value::as_object) {
                without.extend(with.clone());
            }
            match entry.get("baseline") {
                Some(baseline) => {
                    without.insert(member.to_owned(), baseline.clone());
                }
                None => {
                    without.remove(member);
                }
            }
            let mut body = without.clone();
            body.insert(member.to_owned(), entry["sample"].clone());
            let result = translate(&provider, model, &body);
            match entry["behaviour"].as_str().expect("behaviour") {
                "mapped" => {
                    let (_, sent) = result.unwrap_or_else(|e| panic!("{label}: {e}"));
                    let to = entry["to"].as_str().expect("to");
                    if to == "path" {
                        let (path, _) = translate(&provider, model, &body).unwrap_or_else(|e| panic!("{label}: {e}"));
                        let expect = entry["expect"].as_str().expect("expect");
                        assert!(path.contains(expect), "{label}: path {path} lacks {expect}");
                    } else {
                        assert_eq!(sent.pointer(to), Some(&entry["expect"]), "{label}: {sent}");
                    }
                }
                "dropped" => {
                    let sent = result.unwrap_or_else(|e| panic!("{label}: {e}"));
                    let base_sent =
                        translate(&provider, model, &without).unwrap_or_else(|e| panic!("{label} baseline: {e}"));
                    assert_eq!(sent, base_sent, "{label} is dropped but changed the upstream request");
                    assert_eq!(entry["warning_header"], Value::Bool(false), "{label}: no warning header is set");
                }
                "rejected" => {
                    let err = result.err().unwrap_or_else(|| panic!("{label} should be rejected"));
                    assert_eq!(err.status(), 400, "{label}");
                    assert_eq!(err.param.as_deref(), entry["param"].as_str(), "{label}");
                    assert!(
                        String::from_utf8_lossy(&err.to_openai_body()).contains(entry["param"].as_str().unwrap_or("?")),
                        "{label}"
                    );
                }
                other => panic!("{label}: unknown behaviour {other}"),
            }
            checked += 1;
        }
    }
    assert!(checked >= 24, "only {checked} entries");
}

/// Every entry appears in the document, in its provider's Embeddings section, with the same behaviour.
#[test]
fn the_document_says_what_the_json_says() {
    matrix::check_document_sections("openai_embeddings", "OpenAI Embeddings");
}
