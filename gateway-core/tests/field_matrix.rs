//! The field matrix (`docs/field-matrix.json`, rendered in `docs/field-matrix.md`) is a claim about
//! the translators: every entry is sent through the real `prepare` for its provider and must
//! behave as the matrix says, and every entry must appear in the document with that behaviour.
//! The names the translator reports in `PreparedRequest.dropped` (the `x-ai-gateway-dropped`
//! header) must be exactly an entry's `dropped_names`, beyond those of the request without it.

use std::path::PathBuf;

use gateway_core::config::{Defaults, ProviderConfig};
use gateway_core::translate::{prepare, ClientApi, Target};
use serde_json::Value;

fn docs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs")
}

fn matrix() -> Value {
    let text = std::fs::read_to_string(docs().join("field-matrix.json")).expect("docs/field-matrix.json");
    serde_json::from_str(&text).expect("field-matrix.json is JSON")
}

/// The upstream (path, body) for `body` and the names it reports dropped, or the gateway's error.
fn translate(
    provider: &ProviderConfig,
    model: &str,
    body: &Value,
) -> Result<(String, Value, Vec<&'static str>), gateway_core::GatewayError> {
    let defaults = Defaults::default();
    let target = Target { provider, model, defaults: &defaults, created_unix: 0 };
    let prepared = prepare(ClientApi::OpenAiChat, &target, body.to_string().as_bytes())?;
    let sent = match &prepared.body {
        Some(b) => serde_json::from_slice(b).expect("upstream body is JSON"),
        None => body.clone(),
    };
    Ok((prepared.path, sent, prepared.dropped))
}

#[test]
fn openai_chat_fields_behave_as_the_matrix_says() {
    let m = matrix();
    let section = &m["openai_chat"];
    let base = section["base_request"].as_object().expect("base_request").clone();
    let providers = section["providers"].as_object().expect("providers");
    let every = ["gemini", "azure_openai", "bedrock", "bedrock_invoke"];
    assert!(every.iter().all(|k| providers.contains_key(*k)), "a provider section is missing");
    let mut checked = 0;
    for (key, p) in providers {
        let provider: ProviderConfig =
            serde_json::from_value(p["provider"].clone()).unwrap_or_else(|e| panic!("{key}: provider: {e}"));
        let model = p["target_model"].as_str().expect("target_model");
        for entry in p["fields"].as_array().expect("fields") {
            let field = entry["field"].as_str().expect("field");
            let label = format!("{key}.{field}");
            let mut without = base.clone();
            if let Some(with) = entry.get("with").and_then(Value::as_object) {
                without.extend(with.clone());
            }
            let mut body = without.clone();
            body.insert(field.to_owned(), entry["sample"].clone());
            let result = translate(&provider, model, &Value::Object(body));
            let baseline = translate(&provider, model, &Value::Object(without.clone())).ok();
            let documented: Vec<&str> = entry
                .get("dropped_names")
                .and_then(Value::as_array)
                .map(|names| names.iter().map(|n| n.as_str().expect("dropped name")).collect())
                .unwrap_or_default();
            if let Ok((_, _, names)) = &result {
                let base_names = baseline.as_ref().map(|b| b.2.clone()).unwrap_or_default();
                let reported: Vec<&str> = names.iter().copied().filter(|n| !base_names.contains(n)).collect();
                assert_eq!(reported, documented, "{label}: x-ai-gateway-dropped names differ from the matrix");
            }
            match entry["behaviour"].as_str().expect("behaviour") {
                "mapped" => {
                    let (path, sent, _) = result.unwrap_or_else(|e| panic!("{label}: {e}"));
                    let to = entry["to"].as_str().expect("to");
                    if to == "path" {
                        let expect = entry["expect"].as_str().expect("expect");
                        assert!(path.contains(expect), "{label}: path {path} lacks {expect}");
                    } else {
                        assert_eq!(sent.pointer(to), Some(&entry["expect"]), "{label}: {sent}");
                    }
                }
                behaviour @ ("dropped" | "gateway") => {
                    let (path, sent, _) = result.unwrap_or_else(|e| panic!("{label}: {e}"));
                    let (base_path, base_sent, _) =
                        baseline.unwrap_or_else(|| panic!("{label}: the request without it must translate"));
                    // Not sent: the upstream request is exactly the one without the field.
                    assert_eq!(
                        (path, sent),
                        (base_path, base_sent),
                        "{label} is {behaviour} but changed the upstream request"
                    );
                    if behaviour == "dropped" {
                        let warned =
                            entry["warning_header"].as_bool().unwrap_or_else(|| panic!("{label}: warning_header"));
                        assert_eq!(
                            warned,
                            !documented.is_empty(),
                            "{label}: warning_header and dropped_names disagree"
                        );
                    }
                }
                "rejected" => {
                    let err = result.err().unwrap_or_else(|| panic!("{label} should be rejected"));
                    assert_eq!(err.status(), 400, "{label}");
                    assert_eq!(err.param.as_deref(), entry["param"].as_str(), "{label}");
                }
                other => panic!("{label}: unknown behaviour {other}"),
            }
            checked += 1;
        }
    }
    assert!(checked >= 60, "only {checked} entries");
}

/// Every entry appears in the document, in its provider's section, with the same behaviour.
#[test]
fn the_document_says_what_the_json_says() {
    let m = matrix();
    let doc = std::fs::read_to_string(docs().join("field-matrix.md")).expect("docs/field-matrix.md");
    for (key, p) in m["openai_chat"]["providers"].as_object().unwrap() {
        let marker = format!("(`{key}`)");
        let start = doc
            .lines()
            .position(|l| l.starts_with("## ") && l.ends_with(&marker))
            .unwrap_or_else(|| panic!("no section for {key}"));
        let section: Vec<&str> = doc.lines().skip(start + 1).take_while(|l| !l.starts_with("## ")).collect();
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
