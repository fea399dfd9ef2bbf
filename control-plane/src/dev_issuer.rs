//! Development OAuth2 token endpoint (client_credentials, RS256) issuing tokens shaped like
//! Cognito access tokens, so client code runs unchanged locally and against Cognito. Off unless
//! `CP_DEV_ISSUER=1`; never for production (one in-memory key, clients from the environment).
//!
//! - `POST /oauth2/token`: `grant_type=client_credentials`, optional `scope`, client
//!   authentication with HTTP Basic (or `client_id`/`client_secret` in the form, as Cognito allows).
//! - `GET /.well-known/jwks.json`: the public key.
//!
//! Environment: `CP_DEV_CLIENTS="id:secret:scope1 scope2;id2:secret2:scope3"`,
//! `CP_DEV_ISSUER_URL` (the `iss` claim, default `http://127.0.0.1:8090`),
//! `CP_DEV_TOKEN_TTL` (seconds, default 3600).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// A registered client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevClient {
    pub id: String,
    pub secret: String,
    pub scopes: Vec<String>,
}

/// Why a token request was refused: RFC 6749 §5.2 error code and HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{code}")]
pub struct TokenError {
    pub status: u16,
    pub code: &'static str,
}

/// The signing key and the registered clients.
pub struct DevIssuer {
    key: KeyPair,
    kid: String,
    issuer: String,
    ttl: u64,
    clients: Vec<DevClient>,
}

impl DevIssuer {
    /// A fresh 2048-bit key (a restart invalidates earlier tokens, which suits development).
    pub fn new(issuer: &str, clients: Vec<DevClient>, ttl: u64) -> Result<Self, String> {
        let key = KeyPair::generate(KeySize::Rsa2048).map_err(|_| "RSA key generation failed".to_string())?;
        let kid = format!("dev-{}", random_hex(8)?);
        Ok(DevIssuer { key, kid, issuer: issuer.trim_end_matches('/').to_string(), ttl, clients })
    }

    /// From the environment; `Ok(None)` unless `CP_DEV_ISSUER=1`.
    pub fn from_env() -> Result<Option<Self>, String> {
        if std::env::var("CP_DEV_ISSUER").ok().as_deref() != Some("1") {
            return Ok(None);
        }
        let clients = parse_clients(&std::env::var("CP_DEV_CLIENTS").unwrap_or_default())?;
        let issuer = std::env::var("CP_DEV_ISSUER_URL").unwrap_or_else(|_| "http://127.0.0.1:8090".into());
        let ttl = match std::env::var("CP_DEV_TOKEN_TTL") {
            Ok(v) => v.parse().map_err(|_| format!("CP_DEV_TOKEN_TTL must be seconds, got {v:?}"))?,
            Err(_) => 3600,
        };
        Self::new(&issuer, clients, ttl).map(Some)
    }

    /// The JWKS document with the one public key.
    pub fn jwks(&self) -> Value {
        let (n, e) = rsa_public_components(self.key.public_key().as_ref()).unwrap_or_default();
        json!({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid, "n": b64url(&n), "e": b64url(&e)}]})
    }

    /// Handles one token request (form body, Authorization header) at Unix time `now`.
    pub fn token(&self, authorization: Option<&str>, form: &str, now: u64) -> Result<Value, TokenError> {
        let fields = parse_form(form);
        let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let (id, secret) = match authorization.and_then(basic_credentials) {
            Some(pair) => pair,
            None => match (field("client_id"), field("client_secret")) {
                (Some(id), Some(secret)) => (id.to_string(), secret.to_string()),
                _ => return Err(TokenError { status: 401, code: "invalid_client" }),
            },
        };
        let client = self
            .clients
            .iter()
            .find(|c| c.id == id && constant_time_eq(c.secret.as_bytes(), secret.as_bytes()))
            .ok_or(TokenError { status: 401, code: "invalid_client" })?;
        if field("grant_type") != Some("client_credentials") {
            return Err(TokenError { status: 400, code: "unsupported_grant_type" });
        }
        // Like Cognito: no `scope` means every scope the client may request.
        let scopes: Vec<&str> = match field("scope") {
            Some(s) if !s.trim().is_empty() => s.split_ascii_whitespace().collect(),
            _ => client.scopes.iter().map(String::as_str).collect(),
        };
        if scopes.iter().any(|s| !client.scopes.iter().any(|c| c == s)) {
            return Err(TokenError { status: 400, code: "invalid_scope" });
        }
        let scope = scopes.join(" ");
        let jti = random_hex(16).map_err(|_| TokenError { status: 500, code: "server_error" })?;
        let header = json!({"alg": "RS256", "kid": self.kid, "typ": "JWT"});
        let claims = json!({
            "sub": client.id, "token_use": "access", "scope": scope, "auth_time": now, "iss": self.issuer,
            "exp": now + self.ttl, "iat": now, "version": 2, "jti": jti, "client_id": client.id,
        });
        let signing_input =
            format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signing_input.as_bytes(), &mut signature)
            .map_err(|_| TokenError { status: 500, code: "server_error" })?;
        Ok(json!({
            "access_token": format!("{signing_input}.{}", b64url(&signature)),
            "expires_in": self.ttl,
            "token_type": "Bearer",
        }))
    }

    /// The two endpoints, for merging into the REST router.
    pub fn router<S: Clone + Send + Sync + 'static>(self: Arc<Self>) -> Router<S> {
        let jwks = Arc::clone(&self);
        Router::new().route("/.well-known/jwks.json", get(move || async move { Json(jwks.jwks()) })).route(
            "/oauth2/token",
            post(move |headers: HeaderMap, body: String| async move {
                let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
                let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
                match self.token(auth, &body, now) {
                    Ok(v) => ([(header::CACHE_CONTROL, "no-store")], Json(v)).into_response(),
                    Err(e) => token_error_response(e),
                }
            }),
        )
    }
}

fn token_error_response(e: TokenError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, Json(json!({"error": e.code}))).into_response()
}

/// `id:secret:scope scope;...`; the secret may not contain `:` (dev only).
pub fn parse_clients(spec: &str) -> Result<Vec<DevClient>, String> {
    spec.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|entry| {
            let mut parts = entry.splitn(3, ':');
            let id = parts.next().unwrap_or("");
            let secret = parts.next().unwrap_or("");
            let scopes = parts.next().unwrap_or("");
            if id.is_empty() || secret.is_empty() {
                return Err(format!("CP_DEV_CLIENTS entry {entry:?} must be id:secret:scopes"));
            }
            Ok(DevClient {
                id: id.into(),
                secret: secret.into(),
                scopes: scopes.split_ascii_whitespace().map(str::to_string).collect(),
            })
        })
        .collect()
}

fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(b64_decode(rest.trim())?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    Some((percent_decode(id), percent_decode(secret)))
}

fn parse_form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random_hex(n: usize) -> Result<String, String> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| e.to_string())?;
    Ok(hex::encode(buf))
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Unpadded base64url (RFC 7515 §2).
pub fn b64url(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(B64URL[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// Standard base64 (padded or not), for HTTP Basic.
fn b64_decode(s: &str) -> Option<Vec<u8>> {
    const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = STD.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// `n` and `e` from a DER `RSAPublicKey` (RFC 8017: SEQUENCE { INTEGER n, INTEGER e }), without
/// leading zero bytes as JWK wants.
fn rsa_public_components(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    fn tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (&t, rest) = input.split_first()?;
        if t != tag {
            return None;
        }
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return None;
            }
            let (len_bytes, rest) = rest.split_at(count);
            (len_bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b)), rest)
        };
        if rest.len() < len {
            return None;
        }
        Some(rest.split_at(len))
    }
    let strip = |v: &[u8]| v.iter().position(|&b| b != 0).map_or_else(Vec::new, |i| v[i..].to_vec());
    let (seq, _) = tlv(der, 0x30)?;
    let (n, rest) = tlv(seq, 0x02)?;
    let (e, _) = tlv(rest, 0x02)?;
    Some((strip(n), strip(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};

    fn issuer() -> DevIssuer {
        DevIssuer::new(
            "http://127.0.0.1:8090/",
            parse_clients("svc:s3cr%t:gateway/gpt gateway/all; other:x:").unwrap(),
            60,
        )
        .unwrap()
    }

    fn b64url_decode(s: &str) -> Vec<u8> {
        b64_decode(&s.replace('-', "+").replace('_', "/")).unwrap()
    }

    #[test]
    fn issues_cognito_shaped_tokens_that_verify_with_the_jwks_key() {
        let iss = issuer();
        let basic = format!("Basic {}", b64url(b"svc:s3cr%25t").replace('-', "+").replace('_', "/"));
        let resp = iss.token(Some(&basic), "grant_type=client_credentials&scope=gateway%2Fgpt", 1000).unwrap();
        assert_eq!(resp["token_type"], "Bearer");
        assert_eq!(resp["expires_in"], 60);
        let token = resp["access_token"].as_str().unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: Value = serde_json::from_slice(&b64url_decode(parts[1])).unwrap();
        assert_eq!(claims["iss"], "http://127.0.0.1:8090");
        assert_eq!((claims["client_id"].as_str(), claims["scope"].as_str()), (Some("svc"), Some("gateway/gpt")));
        assert_eq!((claims["token_use"].as_str(), claims["exp"].as_u64()), (Some("access"), Some(1060)));
        assert!(claims.get("aud").is_none());
        let header: Value = serde_json::from_slice(&b64url_decode(parts[0])).unwrap();
        let jwks = iss.jwks();
        assert_eq!(header["kid"], jwks["keys"][0]["kid"]);
        assert_eq!(jwks["keys"][0]["e"], "AQAB");
        assert_eq!(b64url_decode(jwks["keys"][0]["n"].as_str().unwrap()).len(), 256);
        let key = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, iss.key.public_key().as_ref().to_vec());
        key.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &b64url_decode(parts[2])).unwrap();
        // No scope asked: all of the client's.
        let resp = iss.token(None, "grant_type=client_credentials&client_id=svc&client_secret=s3cr%25t", 1000).unwrap();
        let t = resp["access_token"].as_str().unwrap().split('.').nth(1).unwrap().to_string();
        let claims: Value = serde_json::from_slice(&b64url_decode(&t)).unwrap();
        assert_eq!(claims["scope"], "gateway/gpt gateway/all");
    }

    #[test]
    fn refuses_bad_clients_grants_and_scopes() {
        let iss = issuer();
        let form = "grant_type=client_credentials";
        assert_eq!(iss.token(None, form, 0).unwrap_err().code, "invalid_client");
        assert_eq!(
            iss.token(None, "grant_type=client_credentials&client_id=svc&client_secret=nope", 0).unwrap_err().status,
            401
        );
        let ok = "client_id=other&client_secret=x";
        assert_eq!(
            iss.token(None, &format!("{ok}&grant_type=password"), 0).unwrap_err().code,
            "unsupported_grant_type"
        );
        assert_eq!(iss.token(None, &format!("{ok}&{form}&scope=gateway/gpt"), 0).unwrap_err().code, "invalid_scope");
        assert_eq!(iss.token(Some("Basic !!!"), form, 0).unwrap_err().code, "invalid_client");
        assert!(parse_clients("nosecret").is_err());
        assert_eq!(percent_decode("a%2Fb+c%zz%4"), "a/b c%zz%4");
    }
}
