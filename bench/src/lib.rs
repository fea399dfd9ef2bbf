//! Benchmark support: provider responses taken from the recorded fixtures, shaped for the mock
//! upstream (whole JSON bodies, and an Anthropic SSE stream cut into a chosen number of chunks).

use std::fmt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

/// Recording whose first response is the OpenAI Chat Completions answer.
pub const OPENAI_CHAT_FIXTURE: &str = "openai/chat-basic.yaml";
/// Recording whose first response is the Anthropic Messages (non-streaming) answer.
pub const ANTHROPIC_JSON_FIXTURE: &str = "anthropic/test_anthropic_model_instructions.yaml";
/// Recording whose first response is an Anthropic Messages SSE stream.
pub const ANTHROPIC_SSE_FIXTURE: &str = "anthropic/test_anthropic_model_thinking_part_stream.yaml";
/// Recording whose first response is a Bedrock InvokeModel answer (an Anthropic message, Claude).
pub const BEDROCK_INVOKE_FIXTURE: &str = "bedrock-invoke/test_anthropic_cache_bedrock_real_api.yaml";
/// Recording whose first response is a Bedrock Converse answer (Claude, with cache usage).
pub const BEDROCK_CONVERSE_FIXTURE: &str = "bedrock/test_bedrock_cache_write_and_read.yaml";

/// Why the recorded responses could not be loaded.
#[derive(Debug)]
pub struct FixtureError(pub String);

impl fmt::Display for FixtureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FixtureError {}

fn err(msg: impl Into<String>) -> FixtureError {
    FixtureError(msg.into())
}

/// The response bodies the mock serves, built once at start-up.
#[derive(Debug, Clone)]
pub struct Responses {
    pub openai_json: Bytes,
    pub anthropic_json: Bytes,
    /// The body of `POST /model/{id}/invoke`.
    pub bedrock_invoke_json: Bytes,
    /// The body of `POST /model/{id}/converse`.
    pub bedrock_converse_json: Bytes,
    /// One entry per HTTP body chunk of a streamed Anthropic answer.
    pub anthropic_sse: Vec<Bytes>,
}

impl Responses {
    /// Loads the five recordings under `root` and cuts the stream into `chunks` chunks.
    pub fn load(root: &Path, chunks: usize) -> Result<Self, FixtureError> {
        let openai_json = first_response_body(&root.join(OPENAI_CHAT_FIXTURE))?;
        let anthropic_json = first_response_body(&root.join(ANTHROPIC_JSON_FIXTURE))?;
        let bedrock_invoke_json = first_response_body(&root.join(BEDROCK_INVOKE_FIXTURE))?;
        let bedrock_converse_json = first_response_body(&root.join(BEDROCK_CONVERSE_FIXTURE))?;
        let sse = first_response_body(&root.join(ANTHROPIC_SSE_FIXTURE))?;
        let sse = std::str::from_utf8(&sse).map_err(|_| err("the recorded SSE stream is not UTF-8"))?;
        // Parse both JSON bodies once so a broken fixture fails here, not under load.
        for (name, body) in [
            ("OpenAI", &openai_json),
            ("Anthropic", &anthropic_json),
            ("Bedrock InvokeModel", &bedrock_invoke_json),
            ("Bedrock Converse", &bedrock_converse_json),
        ] {
            serde_json::from_slice::<Json>(body).map_err(|e| err(format!("recorded {name} body is not JSON: {e}")))?;
        }
        Ok(Responses {
            openai_json: Bytes::from(openai_json),
            anthropic_json: Bytes::from(anthropic_json),
            bedrock_invoke_json: Bytes::from(bedrock_invoke_json),
            bedrock_converse_json: Bytes::from(bedrock_converse_json),
            anthropic_sse: anthropic_stream(sse, chunks)?.into_iter().map(Bytes::from).collect(),
        })
    }
}

/// The fixtures folder: `$BENCH_FIXTURES`, else `<repo>/fixtures/recorded`.
pub fn default_fixtures_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BENCH_FIXTURES") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/recorded")
}

/// The first interaction's response body of a go-vcr or vcrpy cassette.
pub fn first_response_body(path: &Path) -> Result<Vec<u8>, FixtureError> {
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
    let doc: Yaml = serde_yaml::from_str(&text).map_err(|e| err(format!("{}: {e}", path.display())))?;
    let response = doc
        .get("interactions")
        .and_then(|i| i.get(0))
        .and_then(|i| i.get("response"))
        .ok_or_else(|| err(format!("{}: no interactions[0].response", path.display())))?;
    // go-vcr: `body` is a string. vcrpy: `body.string`, or `parsed_body` for JSON.
    if let Some(s) = response.get("body").and_then(Yaml::as_str) {
        return Ok(s.as_bytes().to_vec());
    }
    if let Some(s) = response.get("body").and_then(|b| b.get("string")).and_then(Yaml::as_str) {
        if !s.is_empty() {
            return Ok(s.as_bytes().to_vec());
        }
    }
    if let Some(parsed) = response.get("parsed_body") {
        return serde_json::to_vec(parsed).map_err(|e| err(format!("{}: parsed_body: {e}", path.display())));
    }
    Err(err(format!("{}: the first response has no body", path.display())))
}

/// One SSE event as recorded: its `event:` name and its `data:` payload.
struct Event<'a> {
    name: &'a str,
    data: &'a str,
}

fn events(stream: &str) -> Vec<Event<'_>> {
    stream
        .split("\n\n")
        .filter_map(|block| {
            let mut name = "";
            let mut data = None;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = Some(v.trim());
                }
            }
            data.map(|data| Event { name, data })
        })
        .collect()
}

fn sse(name: &str, data: &str) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// An Anthropic stream of exactly `chunks` HTTP chunks (at least 3) built from a recording: the
/// recorded `message_start` (with one text block opened) first, then one `content_block_delta`
/// per chunk carrying the recording's text pieces in turn, then the block stop with the recorded
/// `message_delta` (usage) and `message_stop`.
pub fn anthropic_stream(recorded: &str, chunks: usize) -> Result<Vec<String>, FixtureError> {
    let events = events(recorded);
    let find = |name: &str| events.iter().find(|e| e.name == name).map(|e| e.data);
    let start = find("message_start").ok_or_else(|| err("recorded stream has no message_start"))?;
    let delta = find("message_delta").ok_or_else(|| err("recorded stream has no message_delta"))?;
    let stop = find("message_stop").ok_or_else(|| err("recorded stream has no message_stop"))?;
    let mut pieces: Vec<String> = Vec::new();
    for e in events.iter().filter(|e| e.name == "content_block_delta") {
        let Ok(v) = serde_json::from_str::<Json>(e.data) else { continue };
        let d = &v["delta"];
        let text = match d["type"].as_str() {
            Some("text_delta") => d["text"].as_str(),
            Some("thinking_delta") => d["thinking"].as_str(),
            _ => None,
        };
        if let Some(t) = text {
            pieces.push(t.to_owned());
        }
    }
    if pieces.is_empty() {
        return Err(err("recorded stream has no text or thinking deltas"));
    }
    let chunks = chunks.max(3);
    let mut out = Vec::with_capacity(chunks);
    out.push(
        sse("message_start", start)
            + &sse(
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            ),
    );
    for i in 0..chunks - 2 {
        let text = &pieces[i % pieces.len()];
        let data = serde_json::json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}});
        out.push(sse("content_block_delta", &data.to_string()));
    }
    out.push(
        sse("content_block_stop", r#"{"type":"content_block_stop","index":0}"#)
            + &sse("message_delta", delta)
            + &sse("message_stop", stop),
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORDED: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3}}}\n\n\
        event: ping\ndata: {\"type\": \"ping\"}\n\n\
        event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n\
        event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\" there\"}}\n\n\
        event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":2}}\n\n\
        event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    #[test]
    fn stream_has_the_requested_chunks_and_cycles_the_recorded_text() {
        let chunks = anthropic_stream(RECORDED, 6).expect("stream");
        assert_eq!(chunks.len(), 6);
        assert!(chunks[0].starts_with("event: message_start\n"));
        assert!(chunks[0].contains("content_block_start"));
        let texts: Vec<String> = chunks[1..5]
            .iter()
            .map(|c| {
                let data = c.lines().find_map(|l| l.strip_prefix("data: ")).expect("data line");
                serde_json::from_str::<Json>(data).expect("json")["delta"]["text"].as_str().expect("text").to_owned()
            })
            .collect();
        assert_eq!(texts, ["Hi", " there", "Hi", " there"]);
        assert!(chunks[5].contains("\"output_tokens\":2"));
        assert!(chunks[5].ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
    }

    #[test]
    fn stream_without_text_is_an_error() {
        assert!(anthropic_stream("event: message_start\ndata: {}\n\n", 10).is_err());
    }

    #[test]
    fn real_recordings_load_when_present() {
        let dir = default_fixtures_dir();
        if !dir.exists() {
            return; // The fixtures live beside the repository, not in it.
        }
        let r = Responses::load(&dir, 100).expect("fixtures load");
        assert_eq!(r.anthropic_sse.len(), 100);
        let v: Json = serde_json::from_slice(&r.openai_json).expect("json");
        assert_eq!(v["object"], "chat.completion");
        let v: Json = serde_json::from_slice(&r.anthropic_json).expect("json");
        assert_eq!(v["type"], "message");
        let v: Json = serde_json::from_slice(&r.bedrock_invoke_json).expect("json");
        assert_eq!(v["type"], "message");
        let v: Json = serde_json::from_slice(&r.bedrock_converse_json).expect("json");
        assert_eq!(v["output"]["message"]["role"], "assistant");
    }
}
