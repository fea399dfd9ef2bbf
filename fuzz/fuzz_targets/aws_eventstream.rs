//! The AWS event-stream decoder on arbitrary bytes: never panics, never buffers more than its
//! limit, and decodes the same messages however the input is split (until the first error,
//! after which it reports nothing more).
#![no_main]

use gateway_core::aws::eventstream::{EventStreamDecoder, Message};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 64 * 1024;

fn decode(pieces: &[&[u8]]) -> (Vec<Message>, bool) {
    let mut decoder = EventStreamDecoder::new(LIMIT);
    let mut out = Vec::new();
    let mut failed = false;
    for piece in pieces {
        failed |= decoder.push(piece, &mut out).is_err();
    }
    failed |= decoder.finish().is_err();
    (out, failed)
}

fuzz_target!(|input: &[u8]| {
    let Some((&seed, body)) = input.split_first() else { return };
    let whole = decode(&[body]);
    let step = usize::from(seed) + 1;
    let pieces: Vec<&[u8]> = body.chunks(step).collect();
    let split = decode(&pieces);
    assert_eq!(whole, split, "decoding depends on chunk boundaries");
});
