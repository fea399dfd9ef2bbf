//! Property tests of the Anthropic → OpenAI stream translator over the recorded SSE streams:
//! output must not depend on where the network cut the bytes, nor on the line-end style, and no
//! input (arbitrary bytes, truncated or corrupted recordings) may panic it.

mod common;

use std::sync::OnceLock;

use gateway_core::translate::openai_to_anthropic::AnthropicResponse;
use gateway_core::translate::ResponseTranslator;
use proptest::prelude::*;

fn streams() -> &'static [(String, Vec<u8>)] {
    static STREAMS: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    STREAMS.get_or_init(|| match common::load() {
        Some(all) => {
            let streams: Vec<_> = all
                .into_iter()
                .filter(|i| i.is_sse() && (200..300).contains(&i.status))
                .map(|i| (i.name, i.body))
                .collect();
            assert!(!streams.is_empty(), "no SSE recordings found");
            streams
        }
        None => Vec::new(),
    })
}

fn translator(include_usage: bool) -> AnthropicResponse {
    let mut t = AnthropicResponse::new(42, include_usage);
    t.on_headers(200, Some("text/event-stream; charset=utf-8"));
    t
}

/// Feeds `chunks` one by one (the last with end_of_stream) and concatenates the output.
fn run(chunks: &[&[u8]], include_usage: bool) -> (Vec<u8>, gateway_core::TokenUsage) {
    let mut t = translator(include_usage);
    let mut out = Vec::new();
    let last = chunks.len().saturating_sub(1);
    for (i, chunk) in chunks.iter().enumerate() {
        out.extend_from_slice(&t.translate_chunk(chunk, i == last));
    }
    if chunks.is_empty() {
        out.extend_from_slice(&t.translate_chunk(b"", true));
    }
    (out, t.usage())
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
fn recordings_present_or_skipped() {
    if streams().is_empty() {
        eprintln!("SKIPPED: no recorded SSE streams");
    } else {
        // Sanity: the unsplit run is a real translation that ends properly.
        for (name, body) in streams() {
            let (out, usage) = run(&[body], true);
            assert!(out.ends_with(b"data: [DONE]\n\n"), "{name}");
            assert!(!out.windows(9).any(|w| w == b"\"error\":{"), "{name}");
            assert!(usage.input > 0 && usage.output > 0, "{name}");
        }
    }
}

#[test]
fn byte_by_byte_equals_whole() {
    for (name, body) in streams() {
        let whole = run(&[body], true);
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(run(&bytes, true), whole, "{name}");
    }
}

#[test]
fn line_end_style_does_not_change_the_output() {
    for (name, body) in streams() {
        let whole = run(&[body], false);
        let text = std::str::from_utf8(body).unwrap();
        for sep in ["\r\n", "\r"] {
            let converted = text.replace('\n', sep);
            assert_eq!(run(&[converted.as_bytes()], false), whole, "{name} with {sep:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_split_gives_byte_identical_output(
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..24),
        include_usage in any::<bool>(),
    ) {
        for (name, body) in streams() {
            let whole = run(&[body], include_usage);
            let chunks = split_at(body, &cuts);
            prop_assert_eq!(run(&chunks, include_usage), whole, "{}", name);
        }
    }

    #[test]
    fn truncated_recordings_never_panic_and_always_end(cut in any::<prop::sample::Index>(), pieces in 1usize..5) {
        for (_, body) in streams() {
            let prefix = &body[..cut.index(body.len() + 1)];
            let size = prefix.len() / pieces + 1;
            let chunks: Vec<&[u8]> = prefix.chunks(size).collect();
            let (out, _) = run(&chunks, true);
            prop_assert!(out.ends_with(b"data: [DONE]\n\n"));
            let text = String::from_utf8(out).unwrap();
            for event in text.split("\n\n").filter(|e| !e.is_empty() && *e != "data: [DONE]") {
                let data = event.strip_prefix("data: ").unwrap();
                prop_assert!(serde_json::from_str::<serde_json::Value>(data).is_ok(), "bad event {}", event);
            }
        }
    }

    #[test]
    fn corrupted_recordings_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16)) {
        for (_, body) in streams() {
            let mut body = body.clone();
            let len = body.len();
            for (at, byte) in &flips {
                body[at.index(len)] = *byte;
            }
            let (out, _) = run(&[&body[..len / 2], &body[len / 2..]], true);
            prop_assert!(out.ends_with(b"data: [DONE]\n\n"));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..256), 0..8)) {
        let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        let (out, _) = run(&refs, true);
        prop_assert!(out.ends_with(b"data: [DONE]\n\n"));
    }

    #[test]
    fn arbitrary_event_json_never_panics(data in "\\{\"type\":\"(message_start|content_block_start|content_block_delta|message_delta|error|message_stop)\"[ -~]{0,80}\\}") {
        let event = format!("data: {data}\n\n");
        let (out, _) = run(&[event.as_bytes()], true);
        prop_assert!(out.ends_with(b"data: [DONE]\n\n"));
    }
}

#[test]
fn buffered_translation_never_panics_on_truncated_json() {
    let Some(all) = common::load() else { return };
    for it in all.iter().filter(|i| !i.is_sse()) {
        for cut in 0..it.body.len() {
            let mut t = AnthropicResponse::new(0, false);
            t.on_headers(it.status, Some("application/json"));
            match t.translate_body(&it.body[..cut]) {
                Ok(Some(body)) => assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok()),
                Ok(None) => panic!("{}: buffered responses are always rewritten", it.name),
                Err(e) => assert_eq!(e.status(), 502, "{}", it.name),
            }
        }
    }
}
