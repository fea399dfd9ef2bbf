//! Standard base64 (RFC 4648, `+/`, padded), both ways: InvokeModel stream chunks carry each
//! Anthropic event as base64 `bytes`, and `count-tokens` takes the InvokeModel body as base64.
//! A dozen lines do not justify a dependency in the `.wasm`.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `bytes` as padded standard base64.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3).saturating_mul(4));
    for chunk in bytes.chunks(3) {
        let b0 = chunk.first().copied().unwrap_or(0);
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let n = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                let index = usize::try_from((n >> shift) & 63).unwrap_or(0);
                out.push(char::from(ALPHABET.get(index).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The value of one base64 character, `None` for anything else.
fn value(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes standard (or URL-safe) base64, padding optional; `None` on any other character or an
/// impossible length.
pub(crate) fn decode(text: &[u8]) -> Option<Vec<u8>> {
    let text = match text.iter().position(|&c| c == b'=') {
        Some(pad) if text.get(pad..)?.iter().all(|&c| c == b'=') && text.len() - pad <= 2 => text.get(..pad)?,
        Some(_) => return None,
        None => text,
    };
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    for chunk in text.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= value(*c)? << (18 - 6 * u32::try_from(i).ok()?);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(bytes.get(..chunk.len() - 1)?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn round_trips_and_matches_the_reference_implementation() {
        let engine = base64::engine::general_purpose::STANDARD;
        for len in 0..70usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let ours = encode(&bytes);
            assert_eq!(ours, engine.encode(&bytes), "len {len}");
            assert_eq!(decode(ours.as_bytes()).unwrap(), bytes, "len {len}");
            assert_eq!(decode(ours.trim_end_matches('=').as_bytes()).unwrap(), bytes, "unpadded len {len}");
        }
        for bad in ["a", "ab=c", "a b c d", "abc$", "ab==="] {
            assert_eq!(decode(bad.as_bytes()), None, "{bad}");
        }
    }
}
