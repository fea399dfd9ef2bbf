//! Bench-only switches (`bench/run.sh --breakdown`) that leave out one piece of the filter's
//! per-request work, so the benchmark can measure what each piece costs. Compiled in only with
//! the `bench-breakdown` feature; without it every switch is a constant `false` and disappears.

/// A piece of per-request work the breakdown can leave out.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Piece {
    /// Every HTTP context is inert: the cost of the Wasm filter contexts alone.
    All,
    /// The upstream role's contexts are inert (no translation, no accounting).
    Upstream,
    /// The per-request snapshot version check (a shared-data read).
    Snapshot,
    /// Metric definitions and increments.
    Metrics,
    /// The filter-state writes for access logs and spans.
    FilterState,
    /// Property reads on the upstream path (endpoint metadata, cluster, attempt count).
    Properties,
    /// A direct route's attempt run by the downstream filter (translation, header edits,
    /// response handling, metrics, usage): the request only gets its cluster header.
    Attempt,
    /// Budget commit and usage record.
    Usage,
    /// Buffering and parsing the provider's non-streaming answer (usage is then not counted).
    ResponseBody,
}

#[cfg(feature = "bench-breakdown")]
mod imp {
    use super::Piece;

    /// Environment variable (`vm_config.environment_variables`) listing the pieces to leave out.
    pub const SKIP_ENV: &str = "AI_GATEWAY_BENCH_SKIP";

    thread_local! {
        static SKIP: Vec<String> = std::env::var(SKIP_ENV)
            .map(|v| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
    }

    /// Whether the breakdown run leaves `piece` out.
    pub fn skip(piece: Piece) -> bool {
        let name = match piece {
            Piece::All => "all",
            Piece::Upstream => "upstream",
            Piece::Snapshot => "snapshot",
            Piece::Metrics => "metrics",
            Piece::FilterState => "filter_state",
            Piece::Properties => "properties",
            Piece::Usage => "usage",
            Piece::ResponseBody => "response_body",
            Piece::Attempt => "attempt",
        };
        SKIP.with(|s| s.iter().any(|p| p == name))
    }
}

#[cfg(not(feature = "bench-breakdown"))]
mod imp {
    use super::Piece;

    /// Production build: nothing is ever left out.
    #[inline(always)]
    pub const fn skip(_piece: Piece) -> bool {
        false
    }
}

pub use imp::skip;
