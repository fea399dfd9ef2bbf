//! The Chat Completions provider decoder on any bytes: buffered, errors and streams split anywhere never
//! panic, a stream decodes to the same events however it is split and ends exactly once, and
//! whatever it decoded can be sent back to a Chat provider without a panic.
#![no_main]

use gateway_core::codec::collect::collect;
use gateway_core::codec::openai_chat::{encode_request, OpenAiChatDecoder};
use gateway_core::conversation::bridge::ProviderDecoder;
use gateway_core::conversation::{Event, Message, Part, Request, Role};
use libfuzzer_sys::fuzz_target;

fn stream(body: &[u8], step: usize) -> Vec<Event> {
    let mut decoder = OpenAiChatDecoder::new();
    let mut out = Vec::new();
    for piece in body.chunks(step) {
        decoder.decode_chunk(piece, false, &mut out);
    }
    decoder.decode_chunk(&[], true, &mut out);
    out
}

/// The next turn a client would send after `parts`: the answer, then a result per call.
fn replay(parts: Vec<Part>) {
    let results = parts
        .iter()
        .filter_map(|p| match p {
            Part::ToolCall { id, .. } => Some(Part::ToolResult {
                call_id: id.clone(),
                name: None,
                content: vec![Part::text("ok")],
                is_error: false,
                cache: None,
            }),
            _ => None,
        })
        .collect();
    let req = Request {
        messages: vec![
            Message { role: Role::User, parts: vec![Part::text("q")] },
            Message { role: Role::Assistant, parts },
            Message { role: Role::User, parts: results },
        ],
        ..Default::default()
    };
    let _ = encode_request(&req, "gpt-real");
}

fuzz_target!(|input: &[u8]| {
    let Some((&seed, body)) = input.split_first() else { return };
    let _ = OpenAiChatDecoder::new().decode_error(400 + u16::from(seed), body);
    if let Ok(response) = OpenAiChatDecoder::new().decode_response(body) {
        replay(response.parts);
    }
    let whole = stream(body, body.len().max(1));
    let split = stream(body, usize::from(seed % 13) + 1);
    assert_eq!(split, whole, "decoding depends on chunk boundaries");
    let ends = whole.iter().filter(|e| matches!(e, Event::End | Event::Error(_))).count();
    assert_eq!(ends, 1, "a stream ends exactly once");
    assert!(matches!(whole.last(), Some(Event::End | Event::Error(_))), "nothing follows the end");
    if let Ok(response) = collect(&whole) {
        replay(response.parts);
    }
});
