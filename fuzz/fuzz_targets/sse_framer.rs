//! The SSE framer must give the same events whatever the chunk boundaries, and never panic.
#![no_main]

use gateway_core::sse::{SseEvent, SseFramer};
use libfuzzer_sys::fuzz_target;

fn frame(chunks: &[&[u8]]) -> Vec<SseEvent> {
    let mut framer = SseFramer::new(1 << 16);
    let mut out = Vec::new();
    for chunk in chunks {
        let _ = framer.push(chunk, &mut out);
    }
    framer.finish(&mut out);
    out
}

fuzz_target!(|input: &[u8]| {
    let Some((&seed, data)) = input.split_first() else { return };
    let whole = frame(&[data]);
    // Cut the stream into pieces whose sizes come from the seed byte.
    let step = usize::from(seed % 7) + 1;
    let pieces: Vec<&[u8]> = data.chunks(step).collect();
    assert_eq!(frame(&pieces), whole, "framing depends on chunk boundaries");
});
