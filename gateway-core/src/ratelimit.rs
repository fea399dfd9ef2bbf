//! Requests-per-minute and tokens-per-minute limits: the counter stored in proxy-wasm shared
//! data, the admission decision and the `x-ratelimit-*` headers (ADR 0008).
//!
//! Fixed 60-second windows aligned to Unix time. A sliding-window approximation would smooth the
//! burst at a window edge (up to 2x the limit across two adjacent windows), but it needs the
//! previous window's count and gives an inexact answer; a fixed window is exact, simple to test
//! and is what `Retry-After` can state precisely. One counter per caller holds its own window
//! start, so shared-data keys do not grow with time (proxy-wasm cannot delete a key).

use crate::error::{ErrorKind, GatewayError};

/// Length of a rate-limit window in seconds.
pub const WINDOW_SECS: u64 = 60;

/// A caller's limits; `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
}

impl Limits {
    /// True when neither limit is set, so the filter skips shared data entirely.
    pub fn is_unlimited(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none()
    }

    /// One of `replicas` Envoys' share: `ceil(limit / replicas)` of each limit (never 0), so N
    /// replicas admit at most `limit + N - 1` per window together (ADR 0008).
    pub fn share(self, replicas: u32) -> Limits {
        let n = u64::from(replicas.max(1));
        let part = |l: u64| l.div_ceil(n).max(1);
        Limits { rpm: self.rpm.map(part), tpm: self.tpm.map(part) }
    }
}

/// One caller's usage in one window, as stored in shared data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counter {
    /// Unix seconds at which the window began (a multiple of [`WINDOW_SECS`]).
    pub window_start: u64,
    pub requests: u64,
    pub tokens: u64,
}

/// Start of the window containing `now_unix`.
pub fn window_start(now_unix: u64) -> u64 {
    now_unix - now_unix % WINDOW_SECS
}

impl Counter {
    /// ASCII `"<window_start> <requests> <tokens>"`: small, and readable when debugging.
    pub fn encode(&self) -> Vec<u8> {
        format!("{} {} {}", self.window_start, self.requests, self.tokens).into_bytes()
    }

    /// Parses [`Counter::encode`]'s output; anything else (an empty seed, garbage) is `None` and
    /// is treated as a fresh window.
    pub fn decode(bytes: &[u8]) -> Option<Counter> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.split(' ').map(|p| p.parse::<u64>().ok());
        let window_start = parts.next()??;
        let requests = parts.next()??;
        let tokens = parts.next()??;
        if parts.next().is_some() {
            return None;
        }
        Some(Counter { window_start, requests, tokens })
    }

    /// The counter for the window containing `now_unix`: this one, or a fresh one if it is old.
    pub fn current(stored: Option<Counter>, now_unix: u64) -> Counter {
        let start = window_start(now_unix);
        match stored {
            Some(c) if c.window_start == start => c,
            _ => Counter { window_start: start, requests: 0, tokens: 0 },
        }
    }
}

/// What the client is told about its limits (the `x-ratelimit-*` headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitStatus {
    pub limits: Limits,
    pub requests: u64,
    pub tokens: u64,
    /// Seconds until the window resets (at least 1).
    pub reset_secs: u64,
}

impl LimitStatus {
    fn new(limits: Limits, c: &Counter, now_unix: u64) -> Self {
        let reset_secs = (c.window_start + WINDOW_SECS).saturating_sub(now_unix).max(1);
        LimitStatus { limits, requests: c.requests, tokens: c.tokens, reset_secs }
    }

    /// OpenAI's header names; only for the limits that are set.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::with_capacity(6);
        let reset = format!("{}s", self.reset_secs);
        if let Some(rpm) = self.limits.rpm {
            out.push(("x-ratelimit-limit-requests", rpm.to_string()));
            out.push(("x-ratelimit-remaining-requests", rpm.saturating_sub(self.requests).to_string()));
            out.push(("x-ratelimit-reset-requests", reset.clone()));
        }
        if let Some(tpm) = self.limits.tpm {
            out.push(("x-ratelimit-limit-tokens", tpm.to_string()));
            out.push(("x-ratelimit-remaining-tokens", tpm.saturating_sub(self.tokens).to_string()));
            out.push(("x-ratelimit-reset-tokens", reset));
        }
        out
    }
}

/// The admission decision for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Admitted; `next` must be written back (conditionally) before the request proceeds.
    Allow { next: Counter, status: LimitStatus },
    /// Refused; nothing is written.
    Deny { retry_after_secs: u64, status: LimitStatus, exhausted: Exhausted },
}

/// Which limit refused the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    Requests,
    Tokens,
}

/// Admits a request if the window has a request left and its used tokens are below the TPM
/// limit. Tokens are only known when the response ends ([`add_tokens`]), so a request admitted
/// with one token of room may overshoot TPM by its own size; the next one is then refused.
pub fn check(now_unix: u64, stored: Option<Counter>, limits: Limits) -> Decision {
    let c = Counter::current(stored, now_unix);
    let status = LimitStatus::new(limits, &c, now_unix);
    if limits.rpm.is_some_and(|rpm| c.requests >= rpm) {
        return Decision::Deny { retry_after_secs: status.reset_secs, status, exhausted: Exhausted::Requests };
    }
    if limits.tpm.is_some_and(|tpm| c.tokens >= tpm) {
        return Decision::Deny { retry_after_secs: status.reset_secs, status, exhausted: Exhausted::Tokens };
    }
    let next = Counter { requests: c.requests.saturating_add(1), ..c };
    Decision::Allow { next, status: LimitStatus::new(limits, &next, now_unix) }
}

/// Adds a finished response's tokens to the current window. Tokens of a request admitted in
/// the previous window count in the window where they were spent.
pub fn add_tokens(now_unix: u64, stored: Option<Counter>, tokens: u64) -> Counter {
    let c = Counter::current(stored, now_unix);
    Counter { tokens: c.tokens.saturating_add(tokens), ..c }
}

/// The 429 a refused request gets, in OpenAI's error shape (the filter reshapes for Anthropic).
pub fn rate_limited_error(exhausted: Exhausted, status: &LimitStatus) -> GatewayError {
    let (what, limit) = match exhausted {
        Exhausted::Requests => ("requests", status.limits.rpm.unwrap_or(0)),
        Exhausted::Tokens => ("tokens", status.limits.tpm.unwrap_or(0)),
    };
    GatewayError::new(
        ErrorKind::RateLimited,
        format!("Rate limit reached: {limit} {what} per minute. Please try again in {}s.", status.reset_secs),
    )
    .with_code("rate_limit_exceeded")
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000 - 1_800_000_000 % WINDOW_SECS;

    fn allow(d: &Decision) -> Counter {
        match d {
            Decision::Allow { next, .. } => *next,
            Decision::Deny { .. } => panic!("expected Allow, got {d:?}"),
        }
    }

    #[test]
    fn shares_round_up_and_never_reach_zero() {
        let l = Limits { rpm: Some(10), tpm: Some(7) };
        assert_eq!(l.share(1), l);
        assert_eq!(l.share(0), l);
        assert_eq!(l.share(2), Limits { rpm: Some(5), tpm: Some(4) });
        assert_eq!(l.share(3), Limits { rpm: Some(4), tpm: Some(3) });
        assert_eq!(l.share(100), Limits { rpm: Some(1), tpm: Some(1) });
        assert_eq!(
            Limits { rpm: None, tpm: Some(u64::MAX) }.share(2),
            Limits { rpm: None, tpm: Some(u64::MAX / 2 + 1) }
        );
    }

    #[test]
    fn encoding_round_trips_and_rejects_garbage() {
        let c = Counter { window_start: T0, requests: 3, tokens: 12345 };
        assert_eq!(Counter::decode(&c.encode()), Some(c));
        for bad in [&b""[..], b"1 2", b"1 2 3 4", b"a b c", b"1 -2 3", b"\xff"] {
            assert_eq!(Counter::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rpm_admits_exactly_the_limit_then_resets_with_the_window() {
        let limits = Limits { rpm: Some(5), tpm: None };
        let mut stored = None;
        for i in 0..5 {
            let next = allow(&check(T0 + 10, stored, limits));
            assert_eq!(next.requests, i + 1);
            stored = Some(next);
        }
        match check(T0 + 10, stored, limits) {
            Decision::Deny { retry_after_secs, status, exhausted } => {
                assert_eq!(retry_after_secs, 50);
                assert_eq!(exhausted, Exhausted::Requests);
                let h = status.headers();
                assert!(h.contains(&("x-ratelimit-remaining-requests", "0".into())));
                assert!(h.contains(&("x-ratelimit-limit-requests", "5".into())));
                assert!(h.contains(&("x-ratelimit-reset-requests", "50s".into())));
                assert!(!h.iter().any(|(n, _)| n.contains("tokens")));
            }
            d => panic!("expected Deny, got {d:?}"),
        }
        let next = allow(&check(T0 + WINDOW_SECS, stored, limits));
        assert_eq!(next, Counter { window_start: T0 + WINDOW_SECS, requests: 1, tokens: 0 });
    }

    #[test]
    fn tpm_refuses_once_used_tokens_reach_the_limit() {
        let limits = Limits { rpm: None, tpm: Some(100) };
        let c = allow(&check(T0, None, limits));
        let c = add_tokens(T0 + 1, Some(c), 99);
        let c = allow(&check(T0 + 2, Some(c), limits));
        let c = add_tokens(T0 + 3, Some(c), 500);
        match check(T0 + 4, Some(c), limits) {
            Decision::Deny { exhausted: Exhausted::Tokens, retry_after_secs: 56, status } => {
                assert!(status.headers().contains(&("x-ratelimit-remaining-tokens", "0".into())));
                assert_eq!(rate_limited_error(Exhausted::Tokens, &status).status(), 429);
            }
            d => panic!("expected Deny on tokens, got {d:?}"),
        }
        // Tokens of a response that ends in the next window count there.
        assert_eq!(add_tokens(T0 + 61, Some(c), 7), Counter { window_start: T0 + 60, requests: 0, tokens: 7 });
    }

    #[test]
    fn reset_is_at_least_one_second_and_unlimited_always_allows() {
        let limits = Limits::default();
        assert!(limits.is_unlimited());
        let d = check(T0 + 59, Some(Counter { window_start: T0, requests: u64::MAX, tokens: u64::MAX }), limits);
        match d {
            Decision::Allow { status, .. } => {
                assert_eq!(status.reset_secs, 1);
                assert!(status.headers().is_empty());
            }
            d => panic!("expected Allow, got {d:?}"),
        }
    }
}
