//! AWS Signature Version 4 for request headers: canonical request, string to sign, signing key
//! and `Authorization` header. Pure functions; the caller passes the time, so signatures are
//! reproducible in tests and the filter uses the host clock.
//!
//! Deliberate limits: the canonical URI is the path exactly as sent, URI-encoded once more (the
//! rule for every service but S3), without dot-segment normalisation (the gateway builds its
//! own paths and never emits `.`/`..` segments); headers are signed as given.

use sha2::{Digest, Sha256};

use super::AwsCredentials;

/// The algorithm name in the string to sign and the `Authorization` header.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Lower-case hex of a byte string.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(nibble(b >> 4, b'a'));
        out.push(nibble(b & 0x0f, b'a'));
    }
    out
}

/// One hex digit (`v` < 16), letters from `a_or_upper_a`.
fn nibble(v: u8, a_or_upper_a: u8) -> char {
    char::from(if v < 10 { b'0' + v } else { a_or_upper_a + (v - 10) })
}

/// Hex SHA-256 of a payload: `x-amz-content-sha256` and the last line of the canonical request.
pub fn payload_hash(payload: &[u8]) -> String {
    hex(&Sha256::digest(payload))
}

/// HMAC-SHA256 (RFC 2104). Written out over `sha2` rather than pulling in the `hmac` crate: it
/// is a dozen lines, and every KB counts in a module loaded into each Envoy worker.
fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let digest;
    let key: &[u8] = if key.len() > BLOCK {
        digest = Sha256::digest(key);
        &digest
    } else {
        key
    };
    let mut block = [0u8; BLOCK];
    for (b, k) in block.iter_mut().zip(key) {
        *b = *k;
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(data);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// `YYYYMMDDTHHMMSSZ` for Unix seconds (UTC).
pub fn amz_date(unix_seconds: u64) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let rem = unix_seconds % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Percent-encodes everything but unreserved characters (and `/` when `keep_slash`).
pub fn uri_encode(input: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(input.len());
    for &b in input {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(nibble(b >> 4, b'A'));
            out.push(nibble(b & 0x0f, b'A'));
        }
    }
    out
}

fn percent_decode(input: &str) -> Vec<u8> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex_pair = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex_pair) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// The canonical query string: parameters decoded, re-encoded strictly, sorted by name then value.
pub fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (uri_encode(&percent_decode(k), false), uri_encode(&percent_decode(v), false))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// Header value as signed: trimmed, runs of spaces collapsed to one.
fn canonical_header_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The request parts that are signed.
#[derive(Debug, Clone, Copy)]
pub struct SigningInput<'a> {
    pub method: &'a str,
    /// The path as it goes on the wire (already percent-encoded where needed).
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: &'a str,
    /// Every header to sign, `host` and `x-amz-date` included; names in any case.
    pub headers: &'a [(&'a str, &'a str)],
    /// Hex SHA-256 of the payload.
    pub payload_hash: &'a str,
}

/// Where and when a signature is valid.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
    /// `YYYYMMDDTHHMMSSZ`, the same value as the `x-amz-date` header.
    pub amz_date: &'a str,
}

impl Scope<'_> {
    fn date(&self) -> &str {
        self.amz_date.get(..8).unwrap_or(self.amz_date)
    }

    /// `date/region/service/aws4_request`.
    pub fn credential_scope(&self) -> String {
        format!("{}/{}/{}/aws4_request", self.date(), self.region, self.service)
    }
}

/// The canonical request and the `SignedHeaders` list.
pub fn canonical_request(input: &SigningInput<'_>) -> (String, String) {
    let mut headers: Vec<(String, String)> =
        input.headers.iter().map(|(n, v)| (n.trim().to_ascii_lowercase(), canonical_header_value(v))).collect();
    // Stable sort keeps repeated headers in their given order, joined with commas as AWS does.
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    let mut merged: Vec<(String, String)> = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        match merged.last_mut() {
            Some((last, joined)) if *last == name => {
                joined.push(',');
                joined.push_str(&value);
            }
            _ => merged.push((name, value)),
        }
    }
    let signed_headers = merged.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(";");
    let mut canonical = String::with_capacity(256);
    canonical.push_str(input.method);
    canonical.push('\n');
    canonical.push_str(&uri_encode(input.path.as_bytes(), true));
    canonical.push('\n');
    canonical.push_str(&canonical_query(input.query));
    canonical.push('\n');
    for (name, value) in &merged {
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(value);
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(&signed_headers);
    canonical.push('\n');
    canonical.push_str(input.payload_hash);
    (canonical, signed_headers)
}

/// The string to sign for a canonical request.
pub fn string_to_sign(scope: &Scope<'_>, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        scope.amz_date,
        scope.credential_scope(),
        payload_hash(canonical_request.as_bytes())
    )
}

/// The derived key: HMAC chain over date, region, service and `aws4_request`.
pub fn signing_key(secret_access_key: &str, scope: &Scope<'_>) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret_access_key}").as_bytes(), scope.date().as_bytes());
    let k_region = hmac(&k_date, scope.region.as_bytes());
    let k_service = hmac(&k_region, scope.service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// The `Authorization` header value for a request.
pub fn authorization(credentials: &AwsCredentials, scope: &Scope<'_>, input: &SigningInput<'_>) -> String {
    let (canonical, signed_headers) = canonical_request(input);
    let to_sign = string_to_sign(scope, &canonical);
    let signature = hex(&hmac(&signing_key(&credentials.secret_access_key, scope), to_sign.as_bytes()));
    format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={signed_headers}, Signature={signature}",
        credentials.access_key_id,
        scope.credential_scope()
    )
}

/// Signs a request with a body: returns every header to set (`x-amz-date`,
/// `x-amz-content-sha256`, `x-amz-security-token` for temporary credentials, `authorization`).
/// `host` and `content_type` are signed too and must be sent exactly as given.
#[allow(clippy::too_many_arguments)]
pub fn sign_request(
    credentials: &AwsCredentials,
    region: &str,
    service: &str,
    method: &str,
    host: &str,
    path_and_query: &str,
    content_type: Option<&str>,
    payload: &[u8],
    unix_seconds: u64,
) -> Vec<(&'static str, String)> {
    let date = amz_date(unix_seconds);
    let hash = payload_hash(payload);
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let mut headers: Vec<(&str, &str)> = vec![("host", host), ("x-amz-date", &date), ("x-amz-content-sha256", &hash)];
    if let Some(ct) = content_type {
        headers.push(("content-type", ct));
    }
    if let Some(token) = credentials.session_token.as_deref() {
        headers.push(("x-amz-security-token", token));
    }
    let scope = Scope { region, service, amz_date: &date };
    let input = SigningInput { method, path, query, headers: &headers, payload_hash: &hash };
    let auth = authorization(credentials, &scope, &input);
    let mut out = vec![("x-amz-date", date.clone()), ("x-amz-content-sha256", hash.clone())];
    if let Some(token) = credentials.session_token.as_deref() {
        out.push(("x-amz-security-token", token.to_owned()));
    }
    out.push(("authorization", auth));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(amz_date(951_782_400), "20000229T000000Z");
        assert_eq!(amz_date(4_102_444_799), "20991231T235959Z");
    }

    #[test]
    fn encoding_rules() {
        assert_eq!(
            uri_encode(b"/model/us.amazon.nova-micro-v1%3A0/converse", true),
            "/model/us.amazon.nova-micro-v1%253A0/converse"
        );
        assert_eq!(uri_encode("a b/ሴ~".as_bytes(), false), "a%20b%2F%E1%88%B4~");
        assert_eq!(canonical_query("b=2&a=1&A=0"), "A=0&a=1&b=2");
        assert_eq!(canonical_query("k=a%20b&e="), "e=&k=a%20b");
        assert_eq!(canonical_query(""), "");
        assert_eq!(canonical_header_value("  a   b  c "), "a b c");
    }

    #[test]
    fn hmac_sha256_rfc4231() {
        // Case 1, case 2, and case 6 (a key longer than the block size, hashed first).
        assert_eq!(
            hex(&hmac(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hex(&hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn session_token_is_sent_and_signed() {
        let with = AwsCredentials {
            access_key_id: "AKID".into(),
            secret_access_key: "s".into(),
            session_token: Some("tok".into()),
        };
        let without = AwsCredentials { session_token: None, ..with.clone() };
        let a = sign_request(&with, "us-east-1", "bedrock", "POST", "h", "/p", Some("application/json"), b"{}", 0);
        let b = sign_request(&without, "us-east-1", "bedrock", "POST", "h", "/p", Some("application/json"), b"{}", 0);
        assert!(a.contains(&("x-amz-security-token", "tok".to_owned())));
        assert!(!b.iter().any(|(n, _)| *n == "x-amz-security-token"));
        let auth = |h: &[(&str, String)]| h.iter().find(|(n, _)| *n == "authorization").unwrap().1.clone();
        assert!(
            auth(&a).contains("SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token,")
        );
        assert!(auth(&b).contains("SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date,"));
        assert_ne!(auth(&a), auth(&b));
    }
}
