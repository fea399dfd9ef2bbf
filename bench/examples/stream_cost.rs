//! Native harness of the filter's per-chunk work on streamed responses (gateway-core, the same
//! code the .wasm runs): every recorded stream the gateway translates, fed chunk by chunk through
//! `ResponseTranslator::translate_chunk`, timed and with heap allocations counted by a counting
//! global allocator. Per-request work (inspect, prepare, headers) is outside the timed loop.
//!
//! stream_cost [--iters N] [--chunks N] [--only NAME]
//! For profiles: `valgrind --tool=callgrind target/release/examples/stream_cost --iters 200`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use base64::Engine as _;
use gateway_core::config::{BedrockSettings, Defaults, ProviderConfig, ProviderKind, ProviderSettings};
use gateway_core::translate::{self, BodyMode, ClientApi, Target};
use serde_yaml::Value as Yaml;

/// Counts allocations (and reallocations, which copy) on top of the system allocator.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One stream scenario: which client API, which provider, and the upstream's body chunks.
struct Scenario {
    name: &'static str,
    api: ClientApi,
    kind: ProviderKind,
    model: &'static str,
    content_type: &'static str,
    chunks: Vec<Vec<u8>>,
}

const CHAT: &[u8] = br#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"What is the capital of France?"}]}"#;
const RESPONSES: &[u8] = br#"{"model":"m","stream":true,"input":"What is the capital of France?"}"#;
const MESSAGES: &[u8] =
    br#"{"model":"m","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":"What is the capital of France?"}]}"#;

fn request(api: ClientApi) -> &'static [u8] {
    match api {
        ClientApi::OpenAiResponses => RESPONSES,
        ClientApi::AnthropicMessages => MESSAGES,
        _ => CHAT,
    }
}

/// The first response body of a cassette; `binary` for a `!!binary` (base64) body, which
/// serde_yaml hands over as its base64 text.
fn recorded_body(path: &std::path::Path, binary: bool) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Yaml = serde_yaml::from_str(&text).expect("yaml");
    let body = &doc["interactions"][0]["response"]["body"];
    let body = body.get("string").unwrap_or(body);
    match body {
        Yaml::String(s) if binary => {
            let b64: String = s.split_whitespace().collect();
            base64::engine::general_purpose::STANDARD.decode(b64).expect("base64")
        }
        Yaml::String(s) => s.as_bytes().to_vec(),
        Yaml::Tagged(t) => {
            let b64: String = t.value.as_str().expect("binary body").split_whitespace().collect();
            base64::engine::general_purpose::STANDARD.decode(b64).expect("base64")
        }
        _ => bench::first_response_body(path).expect("body"),
    }
}

/// SSE split into one chunk per event (as a paced provider sends them).
fn sse_events(body: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(body).replace("\r\n", "\n");
    text.split_inclusive("\n\n").filter(|e| !e.trim().is_empty()).map(|e| e.as_bytes().to_vec()).collect()
}

/// AWS event-stream split into one chunk per message (each starts with its total length).
fn eventstream_messages(body: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = body;
    while rest.len() >= 4 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let (msg, tail) = rest.split_at(len.min(rest.len()));
        out.push(msg.to_vec());
        rest = tail;
    }
    out
}

fn scenarios(chunks: usize) -> Vec<Scenario> {
    let root = bench::default_fixtures_dir();
    let responses = bench::Responses::load(&root, chunks).expect("fixtures");
    let anthropic: Vec<Vec<u8>> = responses.anthropic_sse.iter().map(|b| b.to_vec()).collect();
    let gemini = sse_events(&recorded_body(&root.join("gemini/test_google_model_stream.yaml"), false));
    let converse = eventstream_messages(&recorded_body(&root.join("bedrock/test_bedrock_model_stream.yaml"), true));
    let openai = sse_events(&recorded_body(&root.join("openai/chat-streaming.yaml"), false));
    let sse = "text/event-stream";
    vec![
        Scenario {
            name: "(c) chat<-anthropic",
            api: ClientApi::OpenAiChat,
            kind: ProviderKind::Anthropic,
            model: "claude",
            content_type: sse,
            chunks: anthropic.clone(),
        },
        Scenario {
            name: "(j) responses<-anthropic",
            api: ClientApi::OpenAiResponses,
            kind: ProviderKind::Anthropic,
            model: "claude",
            content_type: sse,
            chunks: anthropic.clone(),
        },
        Scenario {
            name: "messages<-anthropic",
            api: ClientApi::AnthropicMessages,
            kind: ProviderKind::Anthropic,
            model: "claude",
            content_type: sse,
            chunks: anthropic,
        },
        Scenario {
            name: "chat<-gemini",
            api: ClientApi::OpenAiChat,
            kind: ProviderKind::Gemini,
            model: "gemini",
            content_type: sse,
            chunks: gemini.clone(),
        },
        Scenario {
            name: "responses<-gemini",
            api: ClientApi::OpenAiResponses,
            kind: ProviderKind::Gemini,
            model: "gemini",
            content_type: sse,
            chunks: gemini,
        },
        Scenario {
            name: "chat<-converse",
            api: ClientApi::OpenAiChat,
            kind: ProviderKind::Bedrock,
            model: "us.amazon.nova-micro-v1:0",
            content_type: "application/vnd.amazon.eventstream",
            chunks: converse.clone(),
        },
        Scenario {
            name: "messages<-converse",
            api: ClientApi::AnthropicMessages,
            kind: ProviderKind::Bedrock,
            model: "us.amazon.nova-micro-v1:0",
            content_type: "application/vnd.amazon.eventstream",
            chunks: converse,
        },
        Scenario {
            name: "chat<-openai",
            api: ClientApi::OpenAiChat,
            kind: ProviderKind::Openai,
            model: "gpt",
            content_type: sse,
            chunks: openai.clone(),
        },
        Scenario {
            name: "responses<-openai",
            api: ClientApi::OpenAiResponses,
            kind: ProviderKind::Openai,
            model: "gpt",
            content_type: sse,
            chunks: openai,
        },
    ]
}

fn main() {
    let mut iters = 2_000u32;
    let mut chunks = 100usize;
    let mut only = String::new();
    let mut args = std::env::args().skip(1);
    while let (Some(flag), Some(value)) = (args.next(), args.next()) {
        match flag.as_str() {
            "--iters" => iters = value.parse().unwrap_or(iters),
            "--chunks" => chunks = value.parse().unwrap_or(chunks),
            "--only" => only = value,
            _ => {}
        }
    }
    let defaults = Defaults::default();
    println!("{:<26} {:>7} {:>10} {:>13} {:>10}", "scenario", "chunks", "ns/chunk", "allocs/chunk", "out B/chunk");
    for s in scenarios(chunks) {
        if !s.name.contains(only.as_str()) {
            continue;
        }
        let provider = ProviderConfig {
            name: "p".into(),
            kind: s.kind,
            cluster: "c".into(),
            credential: None,
            path_prefix: None,
            settings: ProviderSettings {
                bedrock: Some(BedrockSettings { region: "us-east-1".into(), api: Default::default() }),
                ..Default::default()
            },
        };
        let target = Target { provider: &provider, model: s.model, defaults: &defaults, created_unix: 1 };
        let (mut nanos, mut allocs, mut out_bytes) = (0u128, 0u64, 0usize);
        for _ in 0..iters {
            let mut prepared = translate::prepare(s.api, &target, request(s.api)).expect("prepare");
            let mode = prepared.translator.on_headers(200, Some(s.content_type));
            assert!(matches!(mode, BodyMode::Streaming), "{}: not streaming", s.name);
            let n = s.chunks.len();
            let a0 = ALLOCS.load(Ordering::Relaxed);
            let t0 = Instant::now();
            for (i, chunk) in s.chunks.iter().enumerate() {
                let out = prepared.translator.translate_chunk(black_box(chunk), i + 1 == n);
                out_bytes += out.len();
                black_box(out);
            }
            black_box(prepared.translator.usage());
            nanos += t0.elapsed().as_nanos();
            allocs += ALLOCS.load(Ordering::Relaxed) - a0;
        }
        let per = f64::from(iters) * s.chunks.len() as f64;
        println!(
            "{:<26} {:>7} {:>10.0} {:>13.2} {:>10.0}",
            s.name,
            s.chunks.len(),
            nanos as f64 / per,
            allocs as f64 / per,
            out_bytes as f64 / per
        );
    }
}
