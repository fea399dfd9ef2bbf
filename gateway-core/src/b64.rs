//! Base64 wherever a wire format needs it (Bedrock InvokeModel stream chunks and count-tokens
//! bodies, Converse text documents, OpenAI embeddings), through the `base64` crate: one
//! well-kept RFC 4648 implementation instead of a hand-written one per module.

use ::base64::alphabet;
use ::base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use ::base64::engine::DecodePaddingMode;
use ::base64::Engine;

/// Providers pad; a missing or present padding is accepted on input all the same.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
/// The URL-safe alphabet, accepted on input too: an opaque value is never rejected for its alphabet.
const LENIENT_URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// `bytes` as padded standard base64.
pub(crate) fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard or URL-safe base64, padding optional; `None` for anything else.
pub(crate) fn decode(text: &[u8]) -> Option<Vec<u8>> {
    LENIENT.decode(text).ok().or_else(|| LENIENT_URL_SAFE.decode(text).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_leniency() {
        for bytes in [&b""[..], b"f", b"fo", b"foo", b"foob", b"\xff\xfe\x00\x01"] {
            assert_eq!(decode(encode(bytes).as_bytes()).as_deref(), Some(bytes));
        }
        assert_eq!(encode(b"fo"), "Zm8=");
        assert_eq!(decode(b"Zm8").as_deref(), Some(&b"fo"[..]));
        assert_eq!(decode(b"__8=").as_deref(), Some(&b"\xff\xff"[..]));
        assert_eq!(decode(b"Zm8*"), None);
        assert_eq!(decode(b"Z"), None);
    }
}
