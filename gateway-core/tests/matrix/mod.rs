//! The field-matrix checks shared by the client APIs whose sections list every provider
//! (`anthropic_messages`, `openai_responses` in `docs/field-matrix.json`, rendered in
//! `docs/field-matrix.md`): every entry goes through the real `prepare` for its provider and must
//! behave as the matrix says, and the document must say the same. Entries name the request member
//! they set (`key`, default the field), or the client header (`header`, the sample is its value),
//! and the request they are compared with (`baseline`, default: without the key). The names the
//! translator reports in `PreparedRequest.dropped` (the `x-ai-gateway-dropped` header) must be
//! exactly an entry's `dropped_names`, beyond the baseline's.

use std::path::PathBuf;

use gateway_core::config::{Defaults, ProviderConfig};
use gateway_core::translate::{prepare_with_headers, ClientApi, Target};
use gateway_core::GatewayError;
use serde_json::{Map, Value};

fn docs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs")
}

fn section(member: &str) -> Value {
    let text = std::fs::read_to_string(docs().join("field-matrix.json")).expect("docs/field-matrix.json");
    let mut all: Value = serde_json::from_str(&text).expect("field-matrix.json is JSON");
    all[member].take()
}

/// One client API's part of the matrix.
pub struct Client {
    /// Its member of `field-matrix.json`.
    pub member: &'static str,
    /// The API the entries are sent as.
    pub api: ClientApi,
    /// The start of its `##` headings in `field-matrix.md` ("Anthropic Messages").
    pub heading: &'static str,
    /// The client's error body, which must name a rejected field's `param`.
    pub error_body: fn(&GatewayError) -> Vec<u8>,
    /// Fewest entries the section must check (so it cannot shrink unnoticed).
    pub min_entries: usize,
    /// Fewest `x-ai-gateway-dropped` names the section must check.
    pub min_dropped_names: usize,
}

/// What `prepare` made of a request: the upstream path and body, and the names it reports dropped.
struct Sent {
    path: String,
    body: Value,
    dropped: Vec<&'static str>,
}

fn translate(
    api: ClientApi,
    provider: &ProviderConfig,
    model: &str,
    body: &Map<String, Value>,
    headers: &[(String, String)],
) -> Result<Sent, gateway_core::GatewayError> {
    let defaults = Defaults::default();
    let target = Target { provider, model, defaults: &defaults, created_unix: 0 };
    let bytes = Value::Object(body.clone()).to_string();
    let prepared = prepare_with_headers(api, &target, bytes.as_bytes(), headers)?;
    let sent = match &prepared.body {
        Some(b) => serde_json::from_slice(b).expect("upstream body is JSON"),
        None => Value::Object(body.clone()),
    };
    Ok(Sent { path: prepared.path, body: sent, dropped: prepared.dropped })
}

/// Sends every entry of `client`'s section through `prepare` and checks it behaves as documented.
pub fn check_fields(client: &Client) {
    let m = section(client.member);
    assert!(m.get("pending").is_none(), "no client API x provider pair may be pending");
    let base = m["base_request"].as_object().expect("base_request").clone();
    let providers = m["providers"].as_object().expect("providers");
    let every = ["anthropic", "bedrock", "bedrock_converse", "openai", "azure_openai", "gemini"];
    assert!(every.iter().all(|k| providers.contains_key(*k)), "a provider section is missing");
    let mut checked = 0;
    let mut named = 0;
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
            let mut headers = Vec::new();
            let body = match entry.get("header").and_then(Value::as_str) {
                Some(header) => {
                    headers.push((header.to_owned(), entry["sample"].as_str().expect("header sample").to_owned()));
                    without.clone()
                }
                None => {
                    let member = entry.get("key").and_then(Value::as_str).unwrap_or(field);
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
                    body
                }
            };
            let result = translate(client.api, &provider, model, &body, &headers);
            // The baseline may be invalid on its own (no `model`, no `messages`): then it names nothing.
            let baseline = translate(client.api, &provider, model, &without, &[]).ok();
            let documented: Vec<&str> = entry
                .get("dropped_names")
                .and_then(Value::as_array)
                .map(|names| names.iter().map(|n| n.as_str().expect("dropped name")).collect())
                .unwrap_or_default();
            let behaviour = entry["behaviour"].as_str().expect("behaviour");
            if behaviour != "rejected" {
                let sent = result.as_ref().unwrap_or_else(|e| panic!("{label}: {e}"));
                let base_names = baseline.as_ref().map(|b| b.dropped.clone()).unwrap_or_default();
                let reported: Vec<&str> = sent.dropped.iter().copied().filter(|n| !base_names.contains(n)).collect();
                assert_eq!(reported, documented, "{label}: x-ai-gateway-dropped names differ from the matrix");
                named += reported.len();
            }
            match behaviour {
                "mapped" => {
                    let sent = result.unwrap_or_else(|e| panic!("{label}: {e}"));
                    let to = entry["to"].as_str().expect("to");
                    if to == "path" {
                        let expect = entry["expect"].as_str().expect("expect");
                        assert!(sent.path.contains(expect), "{label}: path {} lacks {expect}", sent.path);
                    } else {
                        assert_eq!(sent.body.pointer(to), Some(&entry["expect"]), "{label}: {}", sent.body);
                    }
                }
                "dropped" => {
                    let sent = result.unwrap_or_else(|e| panic!("{label}: {e}"));
                    let base_sent = baseline.unwrap_or_else(|| panic!("{label}: the baseline must translate"));
                    assert_eq!(
                        (&sent.path, &sent.body),
                        (&base_sent.path, &base_sent.body),
                        "{label} is dropped but changed the upstream request"
                    );
                    let warned = entry["warning_header"].as_bool().unwrap_or_else(|| panic!("{label}: warning_header"));
                    assert_eq!(warned, !documented.is_empty(), "{label}: warning_header and dropped_names disagree");
                }
                "rejected" => {
                    let err = result.err().unwrap_or_else(|| panic!("{label} should be rejected"));
                    assert_eq!(err.status(), 400, "{label}");
                    assert_eq!(err.param.as_deref(), entry["param"].as_str(), "{label}");
                    assert!(
                        String::from_utf8_lossy(&(client.error_body)(&err))
                            .contains(entry["param"].as_str().unwrap_or("?")),
                        "{label}"
                    );
                }
                other => panic!("{label}: unknown behaviour {other}"),
            }
            checked += 1;
        }
    }
    assert!(checked >= client.min_entries, "only {checked} entries");
    assert!(named >= client.min_dropped_names, "only {named} dropped names checked");
}

/// Every entry appears in the document, in its provider's section for `client`, with the same behaviour.
pub fn check_document(client: &Client) {
    check_document_sections(client.member, client.heading);
}

/// Every entry of `member` appears in the document, in its provider's section under a `## {heading} →`
/// heading, with the same behaviour, and each section has no row without an entry.
pub fn check_document_sections(member: &str, heading: &str) {
    let m = section(member);
    let doc = std::fs::read_to_string(docs().join("field-matrix.md")).expect("docs/field-matrix.md");
    for (key, p) in m["providers"].as_object().unwrap() {
        let marker = format!("(`{key}`)");
        let start = doc
            .lines()
            .position(|l| l.starts_with(&format!("## {heading} →")) && l.ends_with(&marker))
            .unwrap_or_else(|| panic!("no {heading} section for {key}"));
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
