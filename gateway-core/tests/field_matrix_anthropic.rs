//! The Anthropic Messages part of the field matrix (`anthropic_messages` in
//! `docs/field-matrix.json`, rendered in `docs/field-matrix.md`): every entry goes through the real
//! `prepare` for its provider and must behave as the matrix says, and the document must say the
//! same. Entries name the request member they set (`key`, default the field) and, for dropped
//! entries, the request they must be indistinguishable from (`baseline`, default: without the key).

use std::path::PathBuf;

use gateway_core::config::{Defaults, ProviderConfig, ProviderKind};
use gateway_core::translate::{prepare, ClientApi, Target};
use serde_json::{Map, Value};

fn docs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs")
}

fn section() -> Value {
    let text = std::fs::read_to_string(docs().join("field-matrix.json")).expect("docs/field-matrix.json");
    let mut all: Value = serde_json::from_str(&text).expect("field-matrix.json is JSON");
    all["anthropic_messages"].take()
}

fn translate(
    provider: &ProviderConfig,
    model: &str,
    body: &Map<String, Value>,
) -> Result<(String, Value), gateway_core::GatewayError> {
    let defaults = Defaults::default();
    let target = Target { provider, model, defaults: &defaults, created_unix: 0 };
    let prepared = prepare(ClientApi::AnthropicMessages, &target, Value::Object(body.clone()).to_string().as_bytes())?;
    let sent = match &prepared.body {
        Some(b) => serde_json::from_slice(b).expect("upstream body is JSON"),
        None => Value::Object(body.clone()),
    };
    Ok((prepared.path, sent))
}

#[test]
fn anthropic_messages_fields_behave_as_the_matrix_says() {
    let m = section();
    let base = m["base_request"].as_object().expect("base_request").clone();
    let providers = m["providers"].as_object().expect("providers");
    assert!(["anthropic", "openai", "azure_openai", "bedrock"].iter().all(|k| providers.contains_key(*k)));
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
                        String::from_utf8_lossy(&err.to_anthropic_body())
                            .contains(entry["param"].as_str().unwrap_or("?")),
                        "{label}"
                    );
                }
                other => panic!("{label}: unknown behaviour {other}"),
            }
            checked += 1;
        }
    }
    assert!(checked >= 60, "only {checked} entries");
}

/// Providers listed as pending refuse every Messages request with a clear 400.
#[test]
fn pending_providers_refuse_with_unsupported_provider() {
    let m = section();
    let base = m["base_request"].as_object().unwrap().clone();
    // One pending provider left; the list shrinks as translations land.
    #[allow(clippy::single_element_loop)]
    for (key, kind) in [("gemini", ProviderKind::Gemini)] {
        assert!(m["pending"].get(key).is_some(), "{key} not documented as pending");
        let provider: ProviderConfig =
            serde_json::from_value(serde_json::json!({"name": "p", "kind": kind, "cluster": "c"})).unwrap();
        let err = translate(&provider, "m", &base).err().unwrap_or_else(|| panic!("{key} should refuse"));
        assert_eq!((err.status(), err.code.as_deref()), (400, Some("unsupported_provider")), "{key}");
    }
}

/// Every entry appears in the document, in its provider's Anthropic section, with the same behaviour.
#[test]
fn the_document_says_what_the_json_says() {
    let m = section();
    let doc = std::fs::read_to_string(docs().join("field-matrix.md")).expect("docs/field-matrix.md");
    for (key, p) in m["providers"].as_object().unwrap() {
        let marker = format!("(`{key}`)");
        let start = doc
            .lines()
            .position(|l| l.starts_with("## Anthropic Messages →") && l.ends_with(&marker))
            .unwrap_or_else(|| panic!("no Anthropic Messages section for {key}"));
        let section: Vec<&str> = doc.lines().skip(start + 1).take_while(|l| !l.starts_with("## ")).collect();
        let rows = section.iter().filter(|l| l.starts_with("| `")).count();
        assert_eq!(rows, p["fields"].as_array().unwrap().len(), "{key}: rows without a JSON entry");
        for entry in p["fields"].as_array().unwrap() {
            let field = entry["field"].as_str().unwrap();
            let behaviour = entry["behaviour"].as_str().unwrap();
            let row = section
                .iter()
                .find(|l| l.starts_with(&format!("| `{field}` |")))
                .unwrap_or_else(|| panic!("{key}: no row for {field}"));
            let cell = row.split('|').nth(2).unwrap_or_default();
            assert!(
                cell.trim_start().starts_with(behaviour),
                "{key}.{field}: document says {cell:?}, JSON says {behaviour}"
            );
        }
    }
}
