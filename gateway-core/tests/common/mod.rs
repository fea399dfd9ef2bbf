//! Loads the recorded Anthropic exchanges (vcrpy YAML) shared by the golden and property tests.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;

/// One recorded request/response pair.
pub struct Interaction {
    /// `file.yaml#n`.
    pub name: String,
    pub uri: String,
    /// The request body the provider's SDK sent, as JSON.
    pub request: Option<Value>,
    pub status: u16,
    pub content_type: String,
    /// The response body exactly as the provider sent it (re-encoded from YAML when it was parsed).
    pub body: Vec<u8>,
}

impl Interaction {
    pub fn is_sse(&self) -> bool {
        self.content_type.starts_with("text/event-stream")
    }

    pub fn is_messages_call(&self) -> bool {
        self.uri.split('?').next().is_some_and(|p| p.ends_with("/v1/messages"))
    }
}

/// The recordings folder: `<repo>/fixtures/recorded/anthropic`.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/recorded/anthropic")
}

/// Every interaction of every file, or `None` (with a message) when the recordings are absent.
pub fn load() -> Option<Vec<Interaction>> {
    let dir = fixtures_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("SKIPPED: recorded fixtures not found at {} (they live beside the repository)", dir.display());
        return None;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no recordings in {}", dir.display());
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let yaml: serde_yaml::Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let doc: Value = serde_json::to_value(yaml).unwrap();
        let file_name = file.file_name().unwrap().to_string_lossy().into_owned();
        for (n, interaction) in doc["interactions"].as_array().unwrap().iter().enumerate() {
            let response = &interaction["response"];
            let content_type = response["headers"]["content-type"][0].as_str().unwrap_or("").to_owned();
            let body = match (&response["parsed_body"], &response["body"]["string"]) {
                (Value::Null, Value::String(s)) => s.clone().into_bytes(),
                (Value::Null, _) => Vec::new(),
                (parsed, _) => serde_json::to_vec(parsed).unwrap(),
            };
            let request = match &interaction["request"]["parsed_body"] {
                Value::Null => interaction["request"]["body"].as_str().and_then(|s| serde_json::from_str(s).ok()),
                v => Some(v.clone()),
            };
            out.push(Interaction {
                name: format!("{file_name}#{n}"),
                uri: interaction["request"]["uri"].as_str().unwrap_or("").to_owned(),
                request,
                status: response["status"]["code"].as_u64().unwrap() as u16,
                content_type,
                body,
            });
        }
    }
    Some(out)
}
