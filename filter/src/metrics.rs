//! Counters exported through Envoy's stats, named so that bootstrap `stats_tags` turn the
//! label parts into Prometheus labels.
//!
//! A metric name is `<base>;<label>=<value>;<label>=<value>...`. Envoy prefixes custom Wasm
//! metrics with `wasmcustom.`; one tag regex per label (`(;label=([^;]*))`) removes each part
//! from the name and keeps its value. `;` and `=` cannot survive in values (they are replaced),
//! so model names with dots, dashes, slashes or colons stay intact and unambiguous.

use hashbrown::HashMap;
use std::cell::RefCell;

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
}

impl Metrics {
    /// Adds `value` to the counter `base{labels}`, defining it on first use.
    pub fn add(&self, base: &str, labels: &[(&str, &str)], value: u64) {
        if (value == 0 && base == TOKENS) || crate::knobs::skip(crate::knobs::Piece::Metrics) {
            return;
        }
        let Some(id) = self.id(MetricType::Counter, base, labels) else { return };
        let offset = i64::try_from(value).unwrap_or(i64::MAX);
        if hostcalls::increment_metric(id, offset).is_err() {
            log::warn!("could not increment metric {base}");
        }
    }

    /// Records `value` in the histogram `base{labels}`, defining it on first use.
    pub fn record(&self, base: &str, labels: &[(&str, &str)], value: u64) {
        if crate::knobs::skip(crate::knobs::Piece::Metrics) {
            return;
        }
        let Some(id) = self.id(MetricType::Histogram, base, labels) else { return };
        if hostcalls::record_metric(id, value).is_err() {
            log::warn!("could not record metric {base}");
        }
    }

    fn id(&self, kind: MetricType, base: &str, labels: &[(&str, &str)]) -> Option<u32> {
        let name = metric_name(base, labels);
        if let Some(id) = self.ids.borrow().get(&name).copied() {
            return Some(id);
        }
        match hostcalls::define_metric(kind, &name) {
            Ok(id) => {
                self.ids.borrow_mut().insert(name, id);
                Some(id)
            }
            Err(status) => {
                log::warn!("could not define metric {base}: {status:?}");
                None
            }
        }
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
