//! Token usage as every translator reports it, whatever the provider called the fields.

use serde::{Deserialize, Serialize};

/// Tokens consumed by one upstream call. `input` counts every prompt token, cached ones included,
/// so that `input + output` is what the caller was billed for in tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub input: u64,
    pub output: u64,
    /// Prompt tokens served from the provider's cache (a subset of `input`).
    pub cache_read: u64,
    /// Prompt tokens written to the provider's cache (a subset of `input`).
    pub cache_creation: u64,
    /// Output tokens spent on reasoning, where the provider reports them (a subset of `output`).
    pub reasoning: u64,
}

impl TokenUsage {
    pub fn total(&self) -> u64 {
        self.input.saturating_add(self.output)
    }
}

/// UTC calendar day `YYYY-MM-DD` containing `unix_secs` (the day key of usage aggregates).
pub fn utc_day(unix_secs: u64) -> String {
    let (y, m, d) = civil_from_days(unix_secs / 86_400);
    format!("{y:04}-{m:02}-{d:02}")
}

/// UTC calendar month `YYYY-MM` containing `unix_secs`.
pub fn utc_month(unix_secs: u64) -> String {
    let (y, m, _) = civil_from_days(unix_secs / 86_400);
    format!("{y:04}-{m:02}")
}

/// The period key of a budget at `unix_secs`: the day or the month.
pub fn period_key(period: crate::pricing::BudgetPeriod, unix_secs: u64) -> String {
    match period {
        crate::pricing::BudgetPeriod::Day => utc_day(unix_secs),
        crate::pricing::BudgetPeriod::Month => utc_month(unix_secs),
    }
}

/// Howard Hinnant's days-from-civil inverse: exact for every `u64` day count we can meet, with no
/// dependency on a date crate (the filter stays small).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// What one caller spent on one provider model on one UTC day, as the filter's singleton sends
/// it to the control plane. Rows add up: the control plane sums equal keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageRow {
    /// `key:<sha256 hex>` for a virtual key, `jwt:<client_id>` for a JWT client, `anonymous`.
    pub caller: String,
    pub provider: String,
    /// The provider's model id (what prices are keyed by).
    pub model: String,
    /// `YYYY-MM-DD`, UTC, of the responses counted.
    pub day: String,
    pub requests: u64,
    pub input: u64,
    pub output: u64,
    #[serde(default)]
    pub cache_read: u64,
    #[serde(default)]
    pub cache_creation: u64,
    #[serde(default)]
    pub reasoning: u64,
}

impl UsageRow {
    /// The token counts prices apply to.
    pub fn priced_tokens(&self) -> crate::pricing::PricedTokens {
        crate::pricing::PricedTokens {
            input: self.input,
            output: self.output,
            cache_read: self.cache_read,
            cache_creation: self.cache_creation,
        }
    }
}

/// One delivery of usage from a filter (gRPC `ConfigService/ReportUsage`, JSON in a bytes
/// field). Applying the same `batch_id` twice counts once: the singleton resends a batch
/// unchanged until it is acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageBatch {
    /// Unique per batch: `<node id>/<process start ms>/<sequence>`.
    pub batch_id: String,
    pub rows: Vec<UsageRow>,
    /// Callers whose current spend the filter wants back besides those in `rows` (budgeted
    /// callers it has not reported yet, to learn what other replicas spent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spend_for: Vec<String>,
}

/// The control plane's answer to a [`UsageBatch`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageAck {
    pub batch_id: String,
    /// True when this batch id had already been applied (nothing was added this time).
    pub duplicate: bool,
    /// Spend so far, after this batch, of every caller in `rows` and `spend_for`.
    pub spend: Vec<CallerSpend>,
}

/// A caller's total cost in the current UTC day and month, over every replica, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerSpend {
    pub caller: String,
    /// `YYYY-MM-DD` the day total is for.
    pub day: String,
    pub day_cost_pusd: u64,
    /// `YYYY-MM` the month total is for.
    pub month: String,
    pub month_cost_pusd: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_days_and_months() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(951_782_400), "2000-02-29");
        assert_eq!(utc_day(1_795_737_600 - 1), "2026-11-26");
        assert_eq!(utc_day(1_795_737_600), "2026-11-27");
        assert_eq!(utc_month(1_795_737_600), "2026-11");
        assert_eq!(utc_month(4_107_542_399), "2100-02");
        assert_eq!(utc_day(4_107_542_400), "2100-03-01");
    }

    #[test]
    fn batches_round_trip_as_json() {
        let batch = UsageBatch {
            batch_id: "n/1/2".into(),
            rows: vec![UsageRow {
                caller: "jwt:svc".into(),
                provider: "anthropic".into(),
                model: "claude".into(),
                day: "2026-11-27".into(),
                requests: 2,
                input: 10,
                output: 5,
                cache_read: 0,
                cache_creation: 0,
                reasoning: 1,
            }],
            spend_for: vec!["key:ab".into()],
        };
        let json = serde_json::to_vec(&batch).unwrap();
        assert_eq!(serde_json::from_slice::<UsageBatch>(&json).unwrap(), batch);
    }
}
