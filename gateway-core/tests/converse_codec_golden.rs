//! Golden and property tests of the Converse provider codec (`codec::converse`) against the
//! recorded Bedrock traffic (`fixtures/recorded/bedrock`): every recorded Converse answer (JSON,
//! binary event stream, error) decoded by `ConverseDecoder` must keep the recording's text,
//! reasoning with its signature, tool calls, stop reason and token counts exactly. Expected values
//! are read from the recordings with an independent frame walker here. Every stream split at
//! random offsets must give the same events, and any cut must end in exactly one error.

use std::sync::OnceLock;

use base64::Engine;
use gateway_core::codec::converse::ConverseDecoder;
use gateway_core::conversation::bridge::ProviderDecoder;
use gateway_core::conversation::{
    BlockStart, Delta, Event, Family, FinishReason, Opaque, Part, ProviderError, Response, Usage,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

struct Interaction {
    name: String,
    path: String,
    status: u16,
    content_type: String,
    error_type: Option<String>,
    body: Vec<u8>,
}

impl Interaction {
    fn is_stream(&self) -> bool {
        self.content_type.starts_with("application/vnd.amazon.eventstream")
    }

    fn is_converse(&self) -> bool {
        self.path.ends_with("/converse") || self.path.ends_with("/converse-stream")
    }

    /// The provider model id: `/model/{id}/converse[-stream]`, percent-decoded.
    fn model(&self) -> String {
        let encoded = self.path.trim_start_matches("/model/").rsplit_once('/').unwrap().0;
        let mut out = Vec::new();
        let b = encoded.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                out.push(u8::from_str_radix(&encoded[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }
}

/// YAML → JSON; serde_yaml keeps a `!!binary` value's base64 text as a string.
fn to_json(v: &serde_yaml::Value) -> Value {
    match v {
        serde_yaml::Value::Tagged(t) => to_json(&t.value),
        serde_yaml::Value::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                out.insert(k.as_str().map(str::to_owned).unwrap_or_else(|| format!("{k:?}")), to_json(v));
            }
            Value::Object(out)
        }
        serde_yaml::Value::Sequence(s) => Value::Array(s.iter().map(to_json).collect()),
        other => serde_json::to_value(other).unwrap(),
    }
}

fn interactions() -> &'static [Interaction] {
    static ALL: OnceLock<Vec<Interaction>> = OnceLock::new();
    ALL.get_or_init(|| {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/recorded/bedrock");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("recordings at {}: {e}", dir.display()))
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        let mut out = Vec::new();
        for file in files {
            let yaml: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            let doc = to_json(&yaml);
            let file_name = file.file_name().unwrap().to_string_lossy().into_owned();
            for (n, i) in doc["interactions"].as_array().unwrap().iter().enumerate() {
                let response = &i["response"];
                let header = |name: &str| response["headers"][name][0].as_str().map(str::to_owned);
                let content_type = header("content-type").unwrap_or_default();
                let body = match &response["parsed_body"] {
                    Value::Null if content_type.starts_with("application/vnd.amazon.eventstream") => {
                        let text: String = response["body"]["string"]
                            .as_str()
                            .unwrap()
                            .chars()
                            .filter(|c| !c.is_whitespace())
                            .collect();
                        base64::engine::general_purpose::STANDARD.decode(text).unwrap()
                    }
                    Value::Null => response["body"]["string"].as_str().unwrap_or_default().as_bytes().to_vec(),
                    parsed => serde_json::to_vec(parsed).unwrap(),
                };
                let uri = i["request"]["uri"].as_str().unwrap();
                out.push(Interaction {
                    name: format!("{file_name}#{n}"),
                    path: format!("/{}", uri.splitn(4, '/').nth(3).unwrap()),
                    status: response["status"]["code"].as_u64().unwrap() as u16,
                    content_type,
                    error_type: header("x-amzn-errortype"),
                    body,
                });
            }
        }
        out.retain(Interaction::is_converse);
        assert!(out.len() >= 10, "expected the recorded Converse interactions, found {}", out.len());
        out
    })
}

fn streams() -> impl Iterator<Item = &'static Interaction> {
    interactions().iter().filter(|i| i.is_stream() && i.status == 200)
}

fn find(name: &str) -> &'static Interaction {
    interactions().iter().find(|i| i.name == name).unwrap_or_else(|| panic!("no recording {name}"))
}

/// What a client sees of an answer, however it was delivered.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    text: String,
    reasoning: String,
    signatures: Vec<Opaque>,
    tool_calls: Vec<(String, String, Value)>,
    stop: Option<String>,
    usage: Usage,
}

/// The stop-reason table, written out apart from the codec.
fn stop_name(finish: &FinishReason) -> String {
    match finish {
        FinishReason::EndTurn => "end_turn".into(),
        FinishReason::MaxTokens => "max_tokens".into(),
        FinishReason::ToolUse => "tool_use".into(),
        FinishReason::StopSequence(_) => "stop_sequence".into(),
        other => format!("{other:?}"),
    }
}

fn u(v: &Value) -> Option<u64> {
    v.as_u64()
}

/// Converse's `inputTokens` excludes cached tokens; the model's `input` counts every prompt token.
fn expected_usage(usage: &Value) -> Usage {
    let cached = u(&usage["cacheReadInputTokens"]).unwrap_or(0) + u(&usage["cacheWriteInputTokens"]).unwrap_or(0);
    Usage {
        input: u(&usage["inputTokens"]).map(|i| i + cached),
        output: u(&usage["outputTokens"]),
        cache_read: u(&usage["cacheReadInputTokens"]),
        cache_write: u(&usage["cacheWriteInputTokens"]),
        reasoning: None,
    }
}

fn family_for(model: &str) -> Family {
    if model.contains("anthropic.claude") {
        Family::Claude
    } else {
        Family::Converse
    }
}

fn expected_from_json(body: &[u8], family: Family) -> Outcome {
    let r: Value = serde_json::from_slice(body).unwrap();
    let mut o = Outcome::default();
    for b in r["output"]["message"]["content"].as_array().unwrap() {
        if let Some(t) = b["text"].as_str() {
            o.text.push_str(t);
        }
        if let Some(t) = b.get("toolUse") {
            o.tool_calls.push((
                t["toolUseId"].as_str().unwrap().into(),
                t["name"].as_str().unwrap().into(),
                t["input"].clone(),
            ));
        }
        if let Some(t) = b["reasoningContent"].get("reasoningText") {
            o.reasoning.push_str(t["text"].as_str().unwrap_or_default());
            if let Some(s) = t["signature"].as_str() {
                o.signatures.push(Opaque { family, data: s.into() });
            }
        }
    }
    o.stop = r["stopReason"].as_str().map(Into::into);
    o.usage = expected_usage(&r["usage"]);
    o
}

/// A deliberately simple frame walker (no CRC checks): (event type, payload JSON).
fn frames(body: &[u8]) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < body.len() {
        let total = u32::from_be_bytes(body[i..i + 4].try_into().unwrap()) as usize;
        let hlen = u32::from_be_bytes(body[i + 4..i + 8].try_into().unwrap()) as usize;
        let headers = &body[i + 12..i + 12 + hlen];
        let mut event = String::new();
        let mut j = 0;
        while j < headers.len() {
            let n = headers[j] as usize;
            let name = std::str::from_utf8(&headers[j + 1..j + 1 + n]).unwrap();
            j += 1 + n;
            assert_eq!(headers[j], 7, "recordings only use string headers");
            let len = u16::from_be_bytes([headers[j + 1], headers[j + 2]]) as usize;
            let value = std::str::from_utf8(&headers[j + 3..j + 3 + len]).unwrap();
            j += 3 + len;
            if name == ":event-type" {
                event = value.to_owned();
            }
        }
        out.push((event, serde_json::from_slice(&body[i + 12 + hlen..i + total - 4]).unwrap()));
        i += total;
    }
    out
}

fn expected_from_stream(body: &[u8], family: Family) -> Outcome {
    let mut o = Outcome::default();
    let mut tools: Vec<(u64, String, String, String)> = Vec::new();
    for (event, p) in frames(body) {
        let block = u(&p["contentBlockIndex"]).unwrap_or(0);
        match event.as_str() {
            "contentBlockStart" => {
                if let Some(t) = p["start"].get("toolUse") {
                    tools.push((
                        block,
                        t["toolUseId"].as_str().unwrap().into(),
                        t["name"].as_str().unwrap().into(),
                        String::new(),
                    ));
                }
            }
            "contentBlockDelta" => {
                let d = &p["delta"];
                o.text.push_str(d["text"].as_str().unwrap_or_default());
                o.reasoning.push_str(d["reasoningContent"]["text"].as_str().unwrap_or_default());
                if let Some(s) = d["reasoningContent"]["signature"].as_str() {
                    o.signatures.push(Opaque { family, data: s.into() });
                }
                if let Some(t) = d["toolUse"]["input"].as_str() {
                    tools.iter_mut().find(|x| x.0 == block).unwrap().3.push_str(t);
                }
            }
            "messageStop" => o.stop = p["stopReason"].as_str().map(Into::into),
            "metadata" => o.usage = expected_usage(&p["usage"]),
            _ => {}
        }
    }
    o.tool_calls = tools
        .into_iter()
        .map(|(_, id, name, args)| (id, name, serde_json::from_str(&args).unwrap_or(json!({}))))
        .collect();
    o
}

fn outcome_of_response(r: &Response) -> Outcome {
    let mut o = Outcome::default();
    for part in &r.parts {
        match part {
            Part::Text { text, .. } => o.text.push_str(text),
            Part::Reasoning { text, signature, .. } => {
                o.reasoning.push_str(text);
                o.signatures.extend(signature.clone());
            }
            Part::ToolCall { id, name, arguments, .. } => {
                o.tool_calls.push((id.clone(), name.clone(), serde_json::from_str(arguments).unwrap()))
            }
            other => panic!("unexpected part {other:?}"),
        }
    }
    o.stop = r.finish.as_ref().map(stop_name);
    o.usage = r.usage;
    o
}

/// Checks the event grammar (Start first; deltas only inside started blocks of their kind;
/// every block stopped before Finish; Finish, then End last) and collects the outcome.
fn outcome_of_events(events: &[Event], model: &str) -> Outcome {
    let mut o = Outcome::default();
    assert_eq!(events.first(), Some(&Event::Start { id: None, model: Some(model.to_owned()) }));
    assert_eq!(events.last(), Some(&Event::End), "{events:?}");
    let mut open: Vec<(u32, BlockStart)> = Vec::new();
    let mut next = 0;
    let mut calls: Vec<(u32, String, String, String)> = Vec::new();
    let mut finished = false;
    for event in &events[1..events.len() - 1] {
        assert!(!finished || matches!(event, Event::Usage(_)), "{event:?} after Finish");
        match event {
            Event::BlockStart { index, block } => {
                assert_eq!(*index, next, "dense indexes");
                next += 1;
                if let BlockStart::ToolCall { id, name, .. } = block {
                    calls.push((*index, id.clone(), name.clone(), String::new()));
                }
                open.push((*index, block.clone()));
            }
            Event::Delta { index, delta } => {
                let (_, block) = open.iter().find(|(i, _)| i == index).expect("delta of an open block");
                match (block, delta) {
                    (BlockStart::Text, Delta::Text(t)) => o.text.push_str(t),
                    (BlockStart::Reasoning, Delta::Reasoning(t)) => o.reasoning.push_str(t),
                    (BlockStart::Reasoning, Delta::Signature(s)) => o.signatures.push(s.clone()),
                    (BlockStart::ToolCall { .. }, Delta::ToolArguments(a)) => {
                        calls.iter_mut().find(|c| c.0 == *index).unwrap().3.push_str(a)
                    }
                    other => panic!("delta {other:?}"),
                }
            }
            Event::BlockStop { index } => {
                let at = open.iter().position(|(i, _)| i == index).expect("stop of an open block");
                open.remove(at);
            }
            Event::Usage(u) => o.usage = o.usage.merge(*u),
            Event::Finish(f) => {
                assert!(open.is_empty(), "blocks open at Finish");
                o.stop = Some(stop_name(f));
                finished = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    o.tool_calls = calls
        .into_iter()
        .map(|(_, id, name, args)| (id, name, serde_json::from_str(&args).unwrap_or(json!({}))))
        .collect();
    o
}

/// Feeds `chunks` one by one (the last with end_of_stream).
fn run(model: &str, chunks: &[&[u8]]) -> Vec<Event> {
    let mut decoder = ConverseDecoder::new(model);
    let mut events = Vec::new();
    let last = chunks.len().saturating_sub(1);
    for (i, chunk) in chunks.iter().enumerate() {
        decoder.decode_chunk(chunk, i == last, &mut events);
    }
    if chunks.is_empty() {
        decoder.decode_chunk(b"", true, &mut events);
    }
    events
}

#[test]
fn json_answers_keep_text_tool_calls_and_usage_exactly() {
    let mut seen = 0;
    for i in interactions().iter().filter(|i| i.status == 200 && !i.is_stream()) {
        let model = i.model();
        let response = ConverseDecoder::new(&model).decode_response(&i.body).unwrap();
        assert_eq!(response.model.as_deref(), Some(model.as_str()), "{}", i.name);
        assert_eq!(outcome_of_response(&response), expected_from_json(&i.body, family_for(&model)), "{}", i.name);
        seen += 1;
    }
    assert!(seen >= 7, "{seen}");
}

#[test]
fn cache_writes_and_reads_are_reported_as_recorded() {
    let model = find("test_bedrock_cache_write_and_read.yaml#0").model();
    let usage = |name: &str| ConverseDecoder::new(&model).decode_response(&find(name).body).unwrap().usage;
    // Recorded: inputTokens 2, outputTokens 5, totalTokens 1329, cache write 1322 then cache read 1322.
    let write = usage("test_bedrock_cache_write_and_read.yaml#0");
    assert_eq!(
        write,
        Usage { input: Some(1324), output: Some(5), cache_read: Some(0), cache_write: Some(1322), reasoning: None }
    );
    assert_eq!(write.uncached_input(), 2);
    let read = usage("test_bedrock_cache_write_and_read.yaml#1");
    assert_eq!(
        read,
        Usage { input: Some(1324), output: Some(5), cache_read: Some(1322), cache_write: Some(0), reasoning: None }
    );
    assert_eq!(read.input.unwrap() + read.output.unwrap(), 1329, "input + output is the recorded totalTokens");
    let tokens = read.to_token_usage();
    assert_eq!((tokens.input, tokens.cache_read, tokens.cache_creation), (1324, 1322, 0));
}

#[test]
fn streams_keep_text_reasoning_signatures_tool_calls_and_usage_exactly() {
    let mut seen = 0;
    for i in streams() {
        let model = i.model();
        let events = run(&model, &[&i.body]);
        assert_eq!(outcome_of_events(&events, &model), expected_from_stream(&i.body, family_for(&model)), "{}", i.name);
        seen += 1;
    }
    assert!(seen >= 3, "{seen}");
}

#[test]
fn the_thinking_stream_keeps_its_claude_signature() {
    let i = find("test_bedrock_model_thinking_part_stream.yaml#0");
    let o = outcome_of_events(&run(&i.model(), &[&i.body]), &i.model());
    assert!(o.reasoning.starts_with("The user has greeted me with"), "{}", o.reasoning);
    assert_eq!(o.text, "Hello! It's nice to meet you. How can I help you today?");
    assert_eq!(o.signatures.len(), 1);
    assert_eq!(o.signatures[0].family, Family::Claude);
    assert!(o.signatures[0].data.starts_with("Eu0CCkgIBxABGAIqQJDccbDQkr81n7Qj"), "{}", o.signatures[0].data);
    assert_eq!(o.usage, Usage { input: Some(36), output: Some(73), ..Usage::default() });
    // A non-Claude model's reasoning (gpt-oss on Converse) has no signature and its empty first
    // text block produces nothing.
    let i = find("test_bedrock_model_stream_empty_text_delta.yaml#0");
    let events = run(&i.model(), &[&i.body]);
    assert!(matches!(events.get(1), Some(Event::BlockStart { index: 0, block: BlockStart::Reasoning })), "{events:?}");
}

#[test]
fn recorded_errors_keep_status_and_message() {
    let errors: Vec<&Interaction> = interactions().iter().filter(|i| i.status >= 400).collect();
    assert!(errors.len() >= 2);
    for i in errors {
        let recorded: Value = serde_json::from_slice(&i.body).unwrap();
        let mut decoder = ConverseDecoder::new(&i.model());
        assert_eq!(decoder.wanted_response_header(), Some("x-amzn-errortype"));
        if let Some(kind) = &i.error_type {
            decoder.on_response_header(kind);
        }
        let error = decoder.decode_error(i.status, &i.body);
        assert_eq!(error.status, i.status, "{}", i.name);
        assert_eq!(error.message, recorded["message"].as_str().unwrap(), "{}", i.name);
        // The header the recording tool scrubbed, as Bedrock sends it.
        let mut decoder = ConverseDecoder::new(&i.model());
        decoder.on_response_header("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/");
        assert_eq!(
            decoder.decode_error(i.status, &i.body),
            ProviderError {
                status: 400,
                code: Some("ValidationException".into()),
                message: "The provided model identifier is invalid.".into()
            }
        );
    }
}

fn split_at<'a>(bytes: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut chunks = Vec::with_capacity(points.len() + 1);
    let mut start = 0;
    for p in points {
        chunks.push(&bytes[start..p]);
        start = p;
    }
    chunks.push(&bytes[start..]);
    chunks
}

#[test]
fn byte_by_byte_equals_whole() {
    for i in streams() {
        let model = i.model();
        let whole = run(&model, &[&i.body]);
        let bytes: Vec<&[u8]> = i.body.chunks(1).collect();
        assert_eq!(run(&model, &bytes), whole, "{}", i.name);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_splits_give_the_same_events(which in any::<prop::sample::Index>(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..24)) {
        let all: Vec<&Interaction> = streams().collect();
        let i = all[which.index(all.len())];
        let model = i.model();
        let whole = run(&model, &[&i.body]);
        prop_assert_eq!(run(&model, &split_at(&i.body, &cuts)), whole, "{}", &i.name);
    }

    #[test]
    fn a_cut_stream_ends_in_exactly_one_error(which in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>()) {
        let all: Vec<&Interaction> = streams().collect();
        let i = all[which.index(all.len())];
        let at = cut.index(i.body.len());
        // A cut after messageStop may leave a complete answer (End) or a torn frame (Error);
        // before it, the answer is incomplete: one error, last.
        let events = run(&i.model(), &[&i.body[..at]]);
        let terminal = events.iter().filter(|e| matches!(e, Event::Error(_) | Event::End)).count();
        prop_assert_eq!(terminal, 1);
        prop_assert!(matches!(events.last(), Some(Event::Error(_) | Event::End)));
        if !events.iter().any(|e| matches!(e, Event::Finish(_))) {
            prop_assert!(matches!(events.last(), Some(Event::Error(e)) if e.status == 502));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_end_once(bytes in prop::collection::vec(any::<u8>(), 0..512), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8)) {
        let events = run("anthropic.claude-x", &split_at(&bytes, &cuts));
        let terminal = events.iter().filter(|e| matches!(e, Event::Error(_) | Event::End)).count();
        prop_assert_eq!(terminal, 1);
        let _ = ConverseDecoder::new("m").decode_response(&bytes);
        let _ = ConverseDecoder::new("m").decode_error(500, &bytes);
    }

    #[test]
    fn corrupting_one_byte_never_panics(which in any::<prop::sample::Index>(), at in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let all: Vec<&Interaction> = streams().collect();
        let i = all[which.index(all.len())];
        let mut body = i.body.clone();
        let at = at.index(body.len());
        body[at] ^= flip;
        let events = run(&i.model(), &[&body]);
        let terminal = events.iter().filter(|e| matches!(e, Event::Error(_) | Event::End)).count();
        prop_assert_eq!(terminal, 1);
    }
}

/// A client encoder that writes what it is given, so the bridge's own work can be checked.
struct Recorder;

impl gateway_core::conversation::bridge::ClientEncoder for Recorder {
    fn encode_response(&mut self, response: &Response) -> Vec<u8> {
        format!("{:?}", response.parts).into_bytes()
    }

    fn encode_error(&self, error: &ProviderError) -> Vec<u8> {
        format!("{error:?}").into_bytes()
    }

    fn encode_events(&mut self, events: &[Event], out: &mut Vec<u8>) {
        for e in events {
            out.extend_from_slice(format!("{e:?}\n").as_bytes());
        }
    }
}

#[test]
fn through_the_bridge_streams_count_usage_and_errors_use_the_header() {
    use gateway_core::conversation::bridge::Bridge;
    use gateway_core::translate::{BodyMode, ResponseTranslator};

    let i = find("test_bedrock_model_thinking_part_stream.yaml#0");
    let mut bridge = Bridge::new(ConverseDecoder::new(&i.model()), Recorder);
    assert_eq!(bridge.on_headers(200, Some("application/vnd.amazon.eventstream")), BodyMode::Streaming);
    let out = bridge.translate_chunk(&i.body, true);
    assert!(String::from_utf8(out).unwrap().ends_with("End\n"));
    let usage = bridge.usage();
    assert_eq!((usage.input, usage.output), (36, 73));

    let i = find("test_bedrock_cache_write_and_read.yaml#0");
    let mut bridge = Bridge::new(ConverseDecoder::new(&i.model()), Recorder);
    assert_eq!(bridge.on_headers(200, Some("application/json")), BodyMode::Buffered);
    bridge.translate_body(&i.body).unwrap();
    let usage = bridge.usage();
    assert_eq!((usage.input, usage.output, usage.cache_creation, usage.cache_read), (1324, 5, 1322, 0));

    let i = find("test_bedrock_error.yaml#0");
    let mut bridge = Bridge::new(ConverseDecoder::new(&i.model()), Recorder);
    assert_eq!(bridge.wanted_response_header(), Some("x-amzn-errortype"));
    bridge.on_response_header("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/");
    assert_eq!(bridge.on_headers(400, Some("application/json")), BodyMode::Buffered);
    let out = String::from_utf8(bridge.translate_body(&i.body).unwrap().unwrap()).unwrap();
    assert!(out.contains("code: Some(\"ValidationException\")"), "{out}");
    assert!(out.contains("The provided model identifier is invalid."), "{out}");
}
