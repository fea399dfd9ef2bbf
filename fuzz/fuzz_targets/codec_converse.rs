//! The Converse provider codec on arbitrary input. The first byte picks what is fuzzed:
//! bits 0-1: 0 an event stream, 1 a JSON answer, 2 an error body, 3 a request built from the
//! bytes; bits 2-6: the chunk size for streams. Streams decode to the same events however they
//! are split and end with exactly one `End` or `Error`; nothing panics; requests either encode
//! to JSON with at most four cache points or fail with a 4xx/5xx error.
#![no_main]

use gateway_core::codec::converse::{encode_request, ConverseDecoder};
use gateway_core::conversation::bridge::ProviderDecoder;
use gateway_core::conversation::{
    Cache, Event, Family, Message, Opaque, Part, Reasoning, Request, Role, Source, ToolChoice, ToolDef, ToolKind,
};
use libfuzzer_sys::fuzz_target;

const MODELS: [&str; 2] = ["us.anthropic.claude-sonnet-4-5-20250929-v1:0", "us.amazon.nova-micro-v1:0"];

fn decode_stream(model: &str, pieces: &[&[u8]]) -> Vec<Event> {
    let mut decoder = ConverseDecoder::new(model);
    let mut events = Vec::new();
    let last = pieces.len().saturating_sub(1);
    for (i, piece) in pieces.iter().enumerate() {
        decoder.decode_chunk(piece, i == last, &mut events);
    }
    if pieces.is_empty() {
        decoder.decode_chunk(&[], true, &mut events);
    }
    events
}

/// Reads a request out of bytes: each byte an instruction, text taken from the bytes after it.
fn request_from(bytes: &[u8]) -> Request {
    let mut req = Request::default();
    let mut i = 0;
    let text = |at: usize, len: u8| -> String {
        let end = at.saturating_add(usize::from(len % 16)).min(bytes.len());
        String::from_utf8_lossy(bytes.get(at..end).unwrap_or_default()).into_owned()
    };
    let cache = |b: u8| (b & 0x40 != 0).then(|| Cache { kind: "ephemeral".into(), ttl: None });
    while let Some(&op) = bytes.get(i) {
        let arg = bytes.get(i + 1).copied().unwrap_or(0);
        let t = text(i + 2, arg);
        i += 2 + usize::from(arg % 16);
        let role = match op >> 6 {
            0 => Role::User,
            1 => Role::Assistant,
            2 => Role::System,
            _ => Role::Developer,
        };
        let part = match op % 16 {
            0 | 1 => Part::Text { text: t, cache: cache(arg), citations: None },
            2 => Part::Image { source: Source::Base64 { media_type: "image/png".into(), data: t }, cache: cache(arg) },
            3 => Part::Image { source: Source::Url { url: t, media_type: None }, cache: None },
            4 => Part::Document {
                source: Source::Text { media_type: "text/plain".into(), data: t.clone() },
                title: Some(t),
                context: None,
                citations: None,
                cache: cache(arg),
            },
            5 => Part::ToolCall {
                id: format!("t{}", arg % 4),
                name: format!("f{}", arg % 3),
                arguments: t,
                kind: ToolKind::Function,
                cache: cache(arg),
            },
            6 => Part::ToolResult {
                call_id: format!("t{}", arg % 4),
                name: None,
                content: vec![Part::text(t)],
                is_error: arg & 1 == 1,
                cache: cache(arg),
            },
            7 => Part::Reasoning {
                text: t.clone(),
                signature: Some(Opaque { family: if arg & 1 == 0 { Family::Claude } else { Family::Converse }, data: t }),
                cache: None,
            },
            8 => Part::RedactedReasoning { data: Opaque { family: Family::Claude, data: t } },
            9 => {
                req.tools.push(ToolDef {
                    name: format!("f{}", arg % 3),
                    description: Some(t.clone()),
                    input_schema: gateway_core::conversation::Json::from_text(&t),
                    kind: ToolKind::Function,
                    strict: None,
                    cache: cache(arg),
                });
                continue;
            }
            10 => {
                req.tool_choice = Some(match arg % 4 {
                    0 => ToolChoice::Auto,
                    1 => ToolChoice::Required,
                    2 => ToolChoice::None,
                    _ => ToolChoice::Tool(t),
                });
                continue;
            }
            11 => {
                req.reasoning = Some(match arg % 4 {
                    0 => Reasoning::Budget(u64::from(arg) * 64),
                    1 => Reasoning::Adaptive,
                    2 => Reasoning::Effort(t),
                    _ => Reasoning::Disabled,
                });
                req.max_output_tokens = Some(u64::from(op) * 100);
                continue;
            }
            12 => Part::Audio { data: t, format: "wav".into() },
            _ => Part::text(t),
        };
        match req.messages.last_mut() {
            Some(last) if last.role == role && arg & 0x80 == 0 => last.parts.push(part),
            _ => req.messages.push(Message { role, parts: vec![part] }),
        }
    }
    req.stream = bytes.len() % 2 == 1;
    req
}

/// Objects with a `cachePoint` member anywhere in `v`.
fn cache_points(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Object(o) => {
            usize::from(o.contains_key("cachePoint")) + o.values().map(cache_points).sum::<usize>()
        }
        serde_json::Value::Array(a) => a.iter().map(cache_points).sum(),
        _ => 0,
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&control, body)) = input.split_first() else { return };
    let model = MODELS[usize::from(control >> 7)];
    match control & 3 {
        0 => {
            let whole = decode_stream(model, &[body]);
            let step = usize::from(control >> 2 & 0x1f) + 1;
            let pieces: Vec<&[u8]> = body.chunks(step).collect();
            assert_eq!(decode_stream(model, &pieces), whole, "events depend on chunk boundaries");
            let terminal = whole.iter().filter(|e| matches!(e, Event::End | Event::Error(_))).count();
            assert_eq!(terminal, 1, "a stream ends exactly once");
            assert!(matches!(whole.last(), Some(Event::End | Event::Error(_))));
        }
        1 => {
            let _ = ConverseDecoder::new(model).decode_response(body);
        }
        2 => {
            let mut decoder = ConverseDecoder::new(model);
            decoder.on_response_header(&String::from_utf8_lossy(body.get(..8).unwrap_or(body)));
            let error = decoder.decode_error(400 + u16::from(control >> 2), body);
            assert_eq!(error.status, 400 + u16::from(control >> 2));
        }
        _ => {
            let req = request_from(body);
            match encode_request(&req, model, 4096) {
                Ok(encoded) => {
                    let v: serde_json::Value = serde_json::from_slice(&encoded.body).expect("the body is JSON");
                    let points = cache_points(&v);
                    assert!(points <= 4, "{points} cache points");
                }
                Err(e) => assert!(e.status() >= 400),
            }
        }
    }
});
