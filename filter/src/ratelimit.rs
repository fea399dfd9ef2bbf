//! Per-caller rate-limit counters in shared data, updated with CAS so they are exact across the
//! worker VMs of one Envoy (ADR 0008). The decision itself is `gateway_core::ratelimit`.

use gateway_core::error::{ErrorKind, GatewayError};
use gateway_core::ratelimit::{self, Counter, Decision, LimitStatus, Limits};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{MapType, Status};

use crate::host;

/// Shared-data key prefix; the caller (`key:<hash>` or `jwt:<client_id>`) follows.
const PREFIX: &str = "ai_gateway.rl.";
/// CAS attempts before giving up; each loss means another worker just wrote, so a few suffice.
const ATTEMPTS: usize = 8;

/// Shared-data key of the number of Envoys watching the control plane, written by the singleton
/// from every watch message (ADR 0008, per-replica shares).
const REPLICAS_KEY: &str = "ai_gateway.replicas";

/// Records how many Envoys share each caller's limits; only writes when the number changed.
pub fn set_replicas(replicas: u32) {
    let value = replicas.to_string();
    if let Ok((Some(current), _)) = hostcalls::get_shared_data(REPLICAS_KEY) {
        if current == value.as_bytes() {
            return;
        }
    }
    match hostcalls::set_shared_data(REPLICAS_KEY, Some(value.as_bytes()), None) {
        Ok(()) => log::info!("rate limits: {replicas} Envoy replicas share each caller's limits"),
        Err(status) => log::warn!("could not record the replica count: {status:?}"),
    }
}

/// How many Envoys share each caller's limits: 1 until the control plane said otherwise.
pub fn replicas() -> u32 {
    match hostcalls::get_shared_data(REPLICAS_KEY) {
        Ok((Some(v), _)) => std::str::from_utf8(&v).ok().and_then(|s| s.parse().ok()).filter(|&n| n > 0).unwrap_or(1),
        _ => 1,
    }
}

fn key(caller: &str) -> String {
    format!("{PREFIX}{caller}")
}

/// Creates `caller`'s counter if it does not exist. The first write of a shared-data key cannot be
/// conditional, so two workers admitting a caller's very first request would both write one
/// count; entries are created before any worker can race on them instead: by the singleton for
/// the limited keys of a snapshot it is about to publish, by each worker's configuration for
/// named JWT clients (ADR 0008, as budgets do).
pub fn seed(caller: &str) {
    let key = key(caller);
    // Only a key that does not exist (no CAS token): a seeded or used key must keep its count.
    if let Ok((None, None)) = hostcalls::get_shared_data(&key) {
        if let Err(status) = hostcalls::set_shared_data(&key, Some(b""), None) {
            log::warn!("could not seed a rate-limit counter: {status:?}");
        }
    }
}

/// A refusal: the error and the extra response headers to send with it.
pub type Refusal = (GatewayError, Vec<(&'static str, String)>);

/// Counts one request against `caller`'s limits. `Err` carries the 429 (or a 500 when shared
/// data fails) and the headers to send with it.
pub fn admit(caller: &str, limits: Limits, now_unix: u64) -> Result<LimitStatus, Refusal> {
    let key = key(caller);
    for _ in 0..ATTEMPTS {
        // A seeded key reads as (None, Some(cas)), so its first count is conditional too. A key
        // nobody seeded (a `"*"` JWT client) reads as (None, None) and is written
        // unconditionally: the one race ADR 0008 accepts, at a caller's first use.
        let (value, cas) = hostcalls::get_shared_data(&key).map_err(|_| (unavailable(), Vec::new()))?;
        let stored = value.as_deref().and_then(Counter::decode);
        match ratelimit::check(now_unix, stored, limits) {
            Decision::Deny { retry_after_secs, status, exhausted } => {
                let mut headers = status.headers();
                headers.push(("retry-after", retry_after_secs.to_string()));
                return Err((ratelimit::rate_limited_error(exhausted, &status), headers));
            }
            Decision::Allow { next, status } => match hostcalls::set_shared_data(&key, Some(&next.encode()), cas) {
                Ok(()) => return Ok(status),
                Err(Status::CasMismatch) => continue,
                Err(_) => return Err((unavailable(), Vec::new())),
            },
        }
    }
    // Refusing is the safe side: admitting unchecked could break the limit.
    let err = GatewayError::new(ErrorKind::RateLimited, "Too many concurrent requests for this caller; retry shortly.")
        .with_code("rate_limit_exceeded");
    Err((err, vec![("retry-after", "1".to_owned())]))
}

fn unavailable() -> GatewayError {
    GatewayError::new(ErrorKind::Internal, "rate-limit state unavailable")
}

/// Adds a finished response's tokens to `caller`'s window, if the caller is rate limited (only
/// limited callers have a counter). Best effort: a lost update is logged.
pub fn add_tokens(caller: &str, tokens: u64, now_unix: u64) {
    if tokens == 0 {
        return;
    }
    let key = key(caller);
    for _ in 0..ATTEMPTS {
        let Ok((Some(value), cas)) = hostcalls::get_shared_data(&key) else {
            return;
        };
        let next = ratelimit::add_tokens(now_unix, Counter::decode(&value), tokens);
        match hostcalls::set_shared_data(&key, Some(&next.encode()), cas) {
            Ok(()) => return,
            Err(Status::CasMismatch) => continue,
            Err(status) => {
                log::warn!("could not add tokens to a rate-limit counter: {status:?}");
                return;
            }
        }
    }
    log::warn!("could not add tokens to a rate-limit counter: CAS kept failing");
}

/// Every `x-ratelimit-*` name, so a provider's own (its account's limits, not the caller's) never
/// mixes with the gateway's.
const HEADER_NAMES: [&str; 6] = [
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
];

/// Puts a limited caller's `x-ratelimit-*` on a response that was admitted: the counter as
/// written at admission, so `remaining-requests` already counts this request. The provider's
/// headers of the same names are dropped first.
pub fn set_response_headers(status: &LimitStatus) {
    let present = host::headers(MapType::HttpResponseHeaders);
    for name in HEADER_NAMES {
        if host::find(&present, name).is_some() {
            host::remove_header(MapType::HttpResponseHeaders, name);
        }
    }
    for (name, value) in status.headers() {
        host::set_header(MapType::HttpResponseHeaders, name, &value);
    }
}

/// Sends a JSON local reply with extra headers (`Retry-After`, `x-ratelimit-*`).
pub fn send_json_error_with_headers(status: u16, body: &[u8], extra: &[(&'static str, String)]) {
    host::set_header(MapType::HttpRequestHeaders, crate::LOCAL_REPLY_MARKER, "1");
    let mut headers: Vec<(&str, &str)> = vec![("content-type", "application/json")];
    headers.extend(extra.iter().map(|(n, v)| (*n, v.as_str())));
    if hostcalls::send_http_response(u32::from(status), headers, Some(body)).is_err() {
        log::error!("could not send local reply {status}");
    }
}
