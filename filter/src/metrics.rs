//! Counters exported through Envoy's stats, named so that bootstrap `stats_tags` turn the
//! label parts into Prometheus labels.
//!
//! A metric name is `<base>;<label>=<value>;<label>=<value>...`. Envoy prefixes custom Wasm
//! metrics with `wasmcustom.`; one tag regex per label (`(;label=([^;]*))`) removes each part
//! from the name and keeps its value. `;` and `=` cannot survive in values (they are replaced),
//! so model names with dots, dashes, slashes or colons stay intact and unambiguous.

use hashbrown::{Equivalent, HashMap};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

/// Requests that reached a provider, per attempt: labels provider, model, status.
pub const REQUESTS: &str = "ai_gateway_requests_total";
/// Tokens per provider and model: labels provider, model, type (input|output).
pub const TOKENS: &str = "ai_gateway_tokens_total";
/// Requests the gateway answered itself without calling a provider: labels status, code.
pub const REJECTED: &str = "ai_gateway_rejected_total";
/// Error answers Envoy produced itself for a routed request (no provider answered and the filter
/// did not reject it): labels status, code ([`local_reply_code`]).
pub const LOCAL_REPLIES: &str = "ai_gateway_local_replies_total";
/// `gen_ai.server.time_to_first_token` in milliseconds (Envoy histograms hold integers): from
/// sending an attempt to the first translated bytes for the client
/// (the first streamed chunk; for a buffered answer, the whole answer): labels provider, model.
pub const TIME_TO_FIRST_TOKEN_MS: &str = "gen_ai_server_time_to_first_token_ms";

// OpenTelemetry GenAI semantic-convention metrics (gen_ai.*), Prometheus-style names. The
// conventions' attributes gen_ai.system, gen_ai.request.model and gen_ai.token.type map to the
// labels provider, model and type, so dashboards group both families the same way. Envoy
// histograms hold integers, hence the unit in the name instead of OTel's seconds.
/// Histogram of tokens per attempt (gen_ai.client.token.usage): labels provider, model, type.
pub const GEN_AI_TOKEN_USAGE: &str = "gen_ai_client_token_usage";
/// Histogram of milliseconds from sending an attempt to its last byte
/// (gen_ai.server.request.duration): labels provider, model, status.
pub const GEN_AI_REQUEST_DURATION_MS: &str = "gen_ai_server_request_duration_ms";
/// Histogram of microseconds per output token after the first bytes, (duration - TTFT) / output
/// tokens (gen_ai.server.time_per_output_token): labels provider, model.
pub const GEN_AI_TIME_PER_OUTPUT_TOKEN_US: &str = "gen_ai_server_time_per_output_token_us";

/// The `code` label of [`LOCAL_REPLIES`] for Envoy's response code details: a fixed set, so a
/// detail carrying variable text (a transport failure reason) cannot grow the label's values.
pub fn local_reply_code(details: &str) -> &'static str {
    const CODES: &[(&str, &str)] = &[
        ("cluster_not_found", "cluster_not_found"),
        ("no_healthy_upstream", "no_healthy_upstream"),
        ("upstream_reset_before_response_started", "upstream_unavailable"),
        ("upstream_response_timeout", "upstream_timeout"),
        ("upstream_per_try_timeout", "upstream_timeout"),
        ("upstream_max_stream_duration_reached", "upstream_timeout"),
        ("request_overall_timeout", "request_timeout"),
        ("stream_idle_timeout", "stream_idle_timeout"),
        ("overload", "overloaded"),
        ("maintenance_mode", "overloaded"),
        ("request_payload_too_large", "request_too_large"),
        ("response_payload_too_large", "response_too_large"),
    ];
    CODES.iter().find(|(prefix, _)| details.starts_with(prefix)).map_or("other", |(_, code)| code)
}

/// Every label name used in metric names; the bootstrap generator emits one tag regex for each.
pub const LABELS: &[&str] = &["provider", "model", "status", "type", "code"];

/// Builds the full metric name for `base` with `labels`.
pub fn metric_name(base: &str, labels: &[(&str, &str)]) -> String {
    let mut name = String::with_capacity(base.len() + 48);
    name.push_str(base);
    for (key, value) in labels {
        name.push(';');
        name.push_str(key);
        name.push('=');
        name.extend(value.chars().map(|c| if c == ';' || c == '=' || c.is_control() { '_' } else { c }));
    }
    name
}

/// Metric ids per name, cached for the VM (defining a metric is a host call and a stats lookup).
#[derive(Default)]
pub struct Metrics {
    ids: RefCell<HashMap<String, u32>>,
    /// The per-attempt metrics of each provider and model, so an attempt finds all of its ids
    /// with one lookup instead of building eight metric names (callgrind: ~3k Wasm instructions
    /// per name and lookup).
    targets: RefCell<HashMap<TargetKey, Rc<TargetMetrics>>>,
}

/// A provider and model, the labels every per-attempt metric carries.
#[derive(Hash, PartialEq, Eq)]
struct TargetKey {
    provider: String,
    model: String,
}

/// [`TargetKey`] borrowed, for lookups without allocating; hashes exactly like it.
#[derive(Hash)]
struct TargetRef<'a> {
    provider: &'a str,
    model: &'a str,
}

impl Equivalent<TargetKey> for TargetRef<'_> {
    fn equivalent(&self, key: &TargetKey) -> bool {
        self.provider == key.provider && self.model == key.model
    }
}

/// The ids of one provider and model's per-attempt metrics, each defined on first use.
pub struct TargetMetrics {
    provider: String,
    model: String,
    tokens_input: Cell<Option<u32>>,
    tokens_output: Cell<Option<u32>>,
    usage_input: Cell<Option<u32>>,
    usage_output: Cell<Option<u32>>,
    time_to_first_token: Cell<Option<u32>>,
    time_per_output_token: Cell<Option<u32>>,
    /// Requests counter and duration histogram per status label.
    by_status: RefCell<Vec<StatusIds>>,
}

/// The ids of the per-status metrics of one provider and model.
struct StatusIds {
    /// `None`: the attempt got no status (label `none`).
    status: Option<u16>,
    requests: Cell<Option<u32>>,
    duration: Cell<Option<u32>>,
}

impl Metrics {
    /// Adds `value` to the counter `base{labels}`, defining it on first use.
    pub fn add(&self, base: &str, labels: &[(&str, &str)], value: u64) {
        if crate::knobs::skip(crate::knobs::Piece::Metrics) {
            return;
        }
        if let Some(id) = self.id(MetricType::Counter, base, labels) {
            send(id, base, Update::Add(value));
        }
    }

    /// Records `value` in the histogram `base{labels}`, defining it on first use.
    pub fn record(&self, base: &str, labels: &[(&str, &str)], value: u64) {
        if crate::knobs::skip(crate::knobs::Piece::Metrics) {
            return;
        }
        if let Some(id) = self.id(MetricType::Histogram, base, labels) {
            send(id, base, Update::Record(value));
        }
    }

    /// The per-attempt metrics of `provider` and `model`.
    pub fn target(&self, provider: &str, model: &str) -> Rc<TargetMetrics> {
        if let Some(found) = self.targets.borrow().get(&TargetRef { provider, model }) {
            return Rc::clone(found);
        }
        let created = Rc::new(TargetMetrics {
            provider: provider.to_owned(),
            model: model.to_owned(),
            tokens_input: Cell::new(None),
            tokens_output: Cell::new(None),
            usage_input: Cell::new(None),
            usage_output: Cell::new(None),
            time_to_first_token: Cell::new(None),
            time_per_output_token: Cell::new(None),
            by_status: RefCell::new(Vec::new()),
        });
        let key = TargetKey { provider: provider.to_owned(), model: model.to_owned() };
        self.targets.borrow_mut().insert(key, Rc::clone(&created));
        created
    }

    fn id(&self, kind: MetricType, base: &str, labels: &[(&str, &str)]) -> Option<u32> {
        let name = metric_name(base, labels);
        if let Some(id) = self.ids.borrow().get(&name).copied() {
            return Some(id);
        }
        let id = define(kind, base, &name)?;
        self.ids.borrow_mut().insert(name, id);
        Some(id)
    }
}

/// Defines the metric `name` (of family `base`, for the warning): a host call and a stats lookup.
fn define(kind: MetricType, base: &str, name: &str) -> Option<u32> {
    match hostcalls::define_metric(kind, name) {
        Ok(id) => Some(id),
        Err(status) => {
            log::warn!("could not define metric {base}: {status:?}");
            None
        }
    }
}

/// Applies `update` to the metric `id` (of family `base`, for the warning).
fn send(id: u32, base: &str, update: Update) {
    let result = match update {
        Update::Add(value) => hostcalls::increment_metric(id, i64::try_from(value).unwrap_or(i64::MAX)),
        Update::Record(value) => hostcalls::record_metric(id, value),
    };
    if result.is_err() {
        log::warn!("could not update metric {base}");
    }
}

/// What a metric update does with its id.
#[derive(Clone, Copy)]
enum Update {
    Add(u64),
    Record(u64),
}

impl TargetMetrics {
    /// Defines `base{provider, model, extra}` once and applies `update` to it.
    fn apply(&self, slot: &Cell<Option<u32>>, base: &str, extra: Option<(&str, &str)>, update: Update) {
        if crate::knobs::skip(crate::knobs::Piece::Metrics) {
            return;
        }
        let id = match slot.get() {
            Some(id) => id,
            None => {
                let kind = match update {
                    Update::Add(_) => MetricType::Counter,
                    Update::Record(_) => MetricType::Histogram,
                };
                let labels = [("provider", self.provider.as_str()), ("model", self.model.as_str())];
                let name = match extra {
                    Some(label) => metric_name(base, &[labels[0], labels[1], label]),
                    None => metric_name(base, &labels),
                };
                let Some(id) = define(kind, base, &name) else { return };
                slot.set(Some(id));
                id
            }
        };
        send(id, base, update);
    }

    /// [`REQUESTS`] +1 and, given a duration, [`GEN_AI_REQUEST_DURATION_MS`] for `status`.
    pub fn attempt_ended(&self, status: Option<u16>, duration_ms: Option<u64>) {
        let found = self.by_status.borrow().iter().position(|ids| ids.status == status);
        let index = found.unwrap_or_else(|| {
            let mut all = self.by_status.borrow_mut();
            all.push(StatusIds { status, requests: Cell::new(None), duration: Cell::new(None) });
            all.len() - 1
        });
        let all = self.by_status.borrow();
        let ids = &all[index];
        // The label is only spelled out when an id is still to be defined.
        let defined = ids.requests.get().is_some() && (duration_ms.is_none() || ids.duration.get().is_some());
        let label = match status {
            _ if defined => String::new(),
            Some(s) => s.to_string(),
            None => "none".to_owned(),
        };
        self.apply(&ids.requests, REQUESTS, Some(("status", &label)), Update::Add(1));
        if let Some(ms) = duration_ms {
            self.apply(&ids.duration, GEN_AI_REQUEST_DURATION_MS, Some(("status", &label)), Update::Record(ms));
        }
    }

    /// [`TOKENS`] counters; zero counts are not added.
    pub fn add_tokens(&self, input: u64, output: u64) {
        if input > 0 {
            self.apply(&self.tokens_input, TOKENS, Some(("type", "input")), Update::Add(input));
        }
        if output > 0 {
            self.apply(&self.tokens_output, TOKENS, Some(("type", "output")), Update::Add(output));
        }
    }

    /// [`GEN_AI_TOKEN_USAGE`] histograms of a successful attempt.
    pub fn record_token_usage(&self, input: u64, output: u64) {
        self.apply(&self.usage_input, GEN_AI_TOKEN_USAGE, Some(("type", "input")), Update::Record(input));
        self.apply(&self.usage_output, GEN_AI_TOKEN_USAGE, Some(("type", "output")), Update::Record(output));
    }

    /// [`TIME_TO_FIRST_TOKEN_MS`].
    pub fn record_time_to_first_token(&self, ms: u64) {
        self.apply(&self.time_to_first_token, TIME_TO_FIRST_TOKEN_MS, None, Update::Record(ms));
    }

    /// [`GEN_AI_TIME_PER_OUTPUT_TOKEN_US`].
    pub fn record_time_per_output_token(&self, us: u64) {
        self.apply(&self.time_per_output_token, GEN_AI_TIME_PER_OUTPUT_TOKEN_US, None, Update::Record(us));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_reply_codes_are_a_fixed_set() {
        assert_eq!(local_reply_code("cluster_not_found"), "cluster_not_found");
        assert_eq!(
            local_reply_code(
                "upstream_reset_before_response_started{remote_connection_failure,delayed_connect_error:_111}"
            ),
            "upstream_unavailable"
        );
        assert_eq!(local_reply_code("stream_idle_timeout"), "stream_idle_timeout");
        assert_eq!(local_reply_code("something new in Envoy 2.0"), "other");
    }

    #[test]
    fn names_keep_dots_and_replace_delimiters() {
        assert_eq!(
            metric_name(REQUESTS, &[("provider", "open;ai"), ("model", "gpt-4.1=x"), ("status", "200")]),
            "ai_gateway_requests_total;provider=open_ai;model=gpt-4.1_x;status=200"
        );
    }
}
