//! Virtual keys: which key a request presents, and its hash as the control plane stores it.

use sha2::{Digest, Sha256};

/// The key a client presents: `Authorization: Bearer <key>` (OpenAI SDKs), else `x-api-key`
/// (Anthropic SDKs). Empty values count as absent.
pub fn presented_key<'a>(authorization: Option<&'a str>, x_api_key: Option<&'a str>) -> Option<&'a str> {
    let bearer = authorization.and_then(|v| {
        let v = v.trim();
        let (scheme, rest) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    });
    bearer.or(x_api_key.map(str::trim)).filter(|k| !k.is_empty())
}

/// Lower-case hex SHA-256 of the whole key string, the form `KeyIndex` is indexed by.
pub fn key_hash(key: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(key.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_lower_hex_sha256() {
        // sha256("abc"), FIPS 180-2 test vector.
        assert_eq!(key_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn bearer_wins_over_x_api_key() {
        assert_eq!(presented_key(Some("Bearer sk-gw-1"), Some("other")), Some("sk-gw-1"));
        assert_eq!(presented_key(Some("bearer  sk-gw-1 "), None), Some("sk-gw-1"));
        assert_eq!(presented_key(None, Some("sk-gw-2")), Some("sk-gw-2"));
        assert_eq!(presented_key(Some("Basic abc"), Some("sk-gw-2")), Some("sk-gw-2"));
        assert_eq!(presented_key(Some("Bearer "), None), None);
        assert_eq!(presented_key(Some("Bearer"), Some("")), None);
        assert_eq!(presented_key(None, None), None);
    }
}
