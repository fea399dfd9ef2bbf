//! Golden tests over every recorded OpenAI Chat Completions exchange (both VCR flavours): the
//! passthrough hands the provider's answer to the client unchanged (JSON, errors, streams), counts
//! the usage the recording holds, and gives identical bytes however a stream is split.

use std::path::PathBuf;

use gateway_core::config::{Defaults, ProviderConfig, ProviderKind};
use gateway_core::translate::{prepare, BodyMode, ClientApi, ResponseTranslator, Target};
use gateway_core::TokenUsage;
use proptest::prelude::*;
use serde_json::Value;

/// One recorded chat completion exchange.
struct Recording {
    name: String,
    request: Value,
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

fn recordings() -> Option<Vec<Recording>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/recorded/openai");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("SKIPPED: recorded fixtures not found at {}", dir.display());
        return None;
    };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let yaml: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let doc: Value = serde_json::to_value(yaml).unwrap();
        let file_name = file.file_name().unwrap().to_string_lossy().into_owned();
        for (n, i) in doc["interactions"].as_array().unwrap().iter().enumerate() {
            let (req, resp) = (&i["request"], &i["response"]);
            // go-vcr v2 has `url`, vcrpy `uri`.
            let url = req["url"].as_str().or(req["uri"].as_str()).unwrap_or("");
            if !url.contains("/chat/completions") || url.contains("azure") {
                continue;
            }
            let request = match &req["parsed_body"] {
                Value::Null => serde_json::from_str(req["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null),
                v => v.clone(),
            };
            let header = |name: &str| -> String {
                let headers = resp["headers"].as_object().cloned().unwrap_or_default();
                headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .and_then(|(_, v)| v.get(0).and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_default()
            };
            let body = match (&resp["parsed_body"], &resp["body"]) {
                (Value::Null, Value::String(s)) => s.clone().into_bytes(),
                (Value::Null, b) => b["string"].as_str().unwrap_or("").as_bytes().to_vec(),
                (parsed, _) => serde_json::to_vec(parsed).unwrap(),
            };
            let status = resp["status"]["code"].as_u64().or(resp["code"].as_u64()).unwrap_or(200) as u16;
            out.push(Recording {
                name: format!("{file_name}#{n}"),
                request,
                status,
                content_type: header("content-type"),
                body,
            });
        }
    }
    assert!(!out.is_empty(), "no OpenAI chat recordings in {}", dir.display());
    Some(out)
}

fn translator(recording: &Recording) -> Box<dyn ResponseTranslator> {
    let provider = ProviderConfig {
        name: "openai".into(),
        kind: ProviderKind::Openai,
        cluster: "openai".into(),
        credential: None,
        path_prefix: None,
        settings: Default::default(),
    };
    let defaults = Defaults::default();
    let target = Target { provider: &provider, model: "gpt-real", defaults: &defaults, created_unix: 0 };
    let body = serde_json::to_vec(&recording.request).unwrap();
    prepare(ClientApi::OpenAiChat, &target, &body).unwrap_or_else(|e| panic!("{}: {e}", recording.name)).translator
}

/// The usage the recording holds: the JSON body's, or the last stream chunk carrying one.
fn recorded_usage(recording: &Recording) -> Option<TokenUsage> {
    let usage = if recording.content_type.starts_with("text/event-stream") {
        String::from_utf8_lossy(&recording.body)
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|c| c.get("usage").filter(|u| !u.is_null()).cloned())
            .next_back()?
    } else {
        serde_json::from_slice::<Value>(&recording.body).ok()?.get("usage")?.clone()
    };
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    Some(TokenUsage {
        input: n(&usage["prompt_tokens"]),
        output: n(&usage["completion_tokens"]),
        cache_read: n(&usage["prompt_tokens_details"]["cached_tokens"]),
        cache_creation: 0,
        reasoning: n(&usage["completion_tokens_details"]["reasoning_tokens"]),
    })
}

fn run(recording: &Recording, cuts: &[usize]) -> (Vec<u8>, TokenUsage, BodyMode) {
    let mut t = translator(recording);
    let mode = t.on_headers(recording.status, Some(&recording.content_type));
    let out = match mode {
        BodyMode::Buffered => match t.translate_body(&recording.body) {
            Ok(None) => recording.body.clone(),
            Ok(Some(new)) => new,
            Err(e) => panic!("{}: {e}", recording.name),
        },
        BodyMode::Streaming => {
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (recording.body.len() + 1)).collect();
            points.sort_unstable();
            let mut out = Vec::new();
            let mut start = 0;
            for p in points {
                out.extend(t.translate_chunk(&recording.body[start..p], false));
                start = p;
            }
            out.extend(t.translate_chunk(&recording.body[start..], true));
            out
        }
    };
    (out, t.usage(), mode)
}

#[test]
fn every_openai_recording_passes_through_with_its_usage_counted() {
    let Some(recordings) = recordings() else { return };
    let mut streams = 0;
    for r in &recordings {
        let (out, usage, mode) = run(r, &[]);
        let stream = r.content_type.starts_with("text/event-stream");
        assert_eq!(mode == BodyMode::Streaming, stream && r.status == 200, "{}", r.name);
        if stream {
            streams += 1;
            // Framing is normalised to LF; every recorded event reaches the client in order, and the
            // client asked for usage in none of these recordings unless its request says so.
            let wanted_usage = r.request["stream_options"]["include_usage"].as_bool().unwrap_or(false);
            let events = |b: &[u8]| -> Vec<String> {
                String::from_utf8_lossy(b).lines().filter_map(|l| l.strip_prefix("data: ").map(str::to_owned)).collect()
            };
            let recorded = events(&r.body);
            let delivered = events(&out);
            let usage_only = |d: &String| {
                serde_json::from_str::<Value>(d)
                    .is_ok_and(|c| c["choices"].as_array().is_some_and(Vec::is_empty) && !c["usage"].is_null())
            };
            let expected: Vec<&String> = recorded.iter().filter(|d| wanted_usage || !usage_only(d)).collect();
            assert_eq!(delivered.iter().collect::<Vec<_>>(), expected, "{}", r.name);
            assert_eq!(delivered.last().map(String::as_str), Some("[DONE]"), "{}", r.name);
        } else {
            assert_eq!(out, r.body, "{}: a JSON answer or error must reach the client unchanged", r.name);
        }
        if r.status == 200 {
            let want = recorded_usage(r).unwrap_or_default();
            assert_eq!(usage, want, "{}", r.name);
        }
    }
    assert!(streams >= 2, "expected the recorded streams to be covered");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn openai_streams_pass_through_identically_however_split(cuts in proptest::collection::vec(any::<usize>(), 0..24)) {
        let Some(recordings) = recordings() else { return Ok(()) };
        for r in recordings.iter().filter(|r| r.content_type.starts_with("text/event-stream") && r.status == 200) {
            let (whole, whole_usage, _) = run(r, &[]);
            let (split, split_usage, _) = run(r, &cuts);
            prop_assert_eq!(&split, &whole, "{}", r.name);
            prop_assert_eq!(split_usage, whole_usage);
        }
    }
}
