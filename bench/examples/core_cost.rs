//! Native harness of the filter's pure work per request (gateway-core, the same code the .wasm
//! runs): inspect, prepare, and translate the recorded response, buffered or streamed.
//! For profiles: `valgrind --tool=callgrind target/release/examples/core_cost ...`.
//!
//! core_cost --body FILE --provider openai|anthropic [--api chat|responses] [--iters N] [--chunks N]

use std::hint::black_box;
use std::time::Instant;

use gateway_core::config::{Defaults, ProviderConfig, ProviderKind};
use gateway_core::translate::{self, BodyMode, ClientApi, Target};

fn main() {
    let mut body_path = None;
    let mut kind = ProviderKind::Openai;
    let mut iters = 20_000u32;
    let mut chunks = 100usize;
    let mut api = ClientApi::OpenAiChat;
    let mut args = std::env::args().skip(1);
    while let (Some(flag), Some(value)) = (args.next(), args.next()) {
        match flag.as_str() {
            "--body" => body_path = Some(value),
            "--provider" => kind = if value == "anthropic" { ProviderKind::Anthropic } else { ProviderKind::Openai },
            "--iters" => iters = value.parse().unwrap_or(iters),
            "--chunks" => chunks = value.parse().unwrap_or(chunks),
            "--api" => api = if value == "responses" { ClientApi::OpenAiResponses } else { ClientApi::OpenAiChat },
            _ => {}
        }
    }
    let Some(body_path) = body_path else {
        eprintln!(
            "usage: core_cost --body FILE --provider openai|anthropic [--api chat|responses] [--iters N] [--chunks N]"
        );
        std::process::exit(2);
    };
    let body = std::fs::read(&body_path).unwrap_or_else(|e| panic!("{body_path}: {e}"));
    let responses = bench::Responses::load(&bench::default_fixtures_dir(), chunks).expect("fixtures");
    let provider = ProviderConfig {
        name: "p".into(),
        kind,
        cluster: "c".into(),
        credential: None,
        path_prefix: None,
        settings: Default::default(),
    };
    let defaults = Defaults::default();
    let target = Target { provider: &provider, model: "target-model", defaults: &defaults, created_unix: 1 };
    // Only the two providers the mock records; other kinds are not benchmarked here.
    let response: &[u8] =
        if kind == ProviderKind::Anthropic { &responses.anthropic_json } else { &responses.openai_json };

    let facts = translate::inspect(api, &body).expect("inspect");
    let (mut t_inspect, mut t_prepare, mut t_response) = (0f64, 0f64, 0f64);
    let mut out_bytes = 0usize;
    for _ in 0..iters {
        let t0 = Instant::now();
        // As the downstream filter does on a direct route: what inspecting decoded is reused.
        let (_, parsed) = black_box(translate::inspect_keeping(api, black_box(&body)).expect("inspect"));
        let t1 = Instant::now();
        let mut prepared = translate::prepare_parsed(api, &target, black_box(&body), &[], parsed).expect("prepare");
        let t2 = Instant::now();
        let content_type = if facts.stream { "text/event-stream" } else { "application/json" };
        match prepared.translator.on_headers(200, Some(content_type)) {
            BodyMode::Buffered => {
                out_bytes += prepared.translator.translate_body(response).expect("translate").map_or(0, |b| b.len());
            }
            BodyMode::Streaming => {
                let n = responses.anthropic_sse.len();
                for (i, chunk) in responses.anthropic_sse.iter().enumerate() {
                    out_bytes += prepared.translator.translate_chunk(chunk, i + 1 == n).len();
                }
            }
        }
        black_box(prepared.translator.usage());
        let t3 = Instant::now();
        t_inspect += (t1 - t0).as_secs_f64();
        t_prepare += (t2 - t1).as_secs_f64();
        t_response += (t3 - t2).as_secs_f64();
    }
    let us = |t: f64| t * 1e6 / f64::from(iters);
    println!(
        "{{\"body_bytes\":{},\"stream\":{},\"inspect_us\":{:.2},\"prepare_us\":{:.2},\"response_us\":{:.2},\"total_us\":{:.2},\"out_bytes_per_req\":{}}}",
        body.len(),
        facts.stream,
        us(t_inspect),
        us(t_prepare),
        us(t_response),
        us(t_inspect + t_prepare + t_response),
        out_bytes / iters as usize
    );
}
