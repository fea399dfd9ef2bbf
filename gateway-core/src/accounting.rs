//! Usage accounting and budgets on the data plane, without I/O: the record a worker enqueues for
//! each finished attempt, the singleton's aggregation into [`UsageBatch`]es, and the per-caller
//! budget state (reserve → commit → release, and the control plane's acknowledgements).
//!
//! The filter keeps one [`BudgetState`] per budgeted caller in proxy-wasm shared data and updates
//! it with compare-and-swap; everything here is the arithmetic of those updates, so it is tested
//! natively and the host calls around it stay thin (ADR 0008, "Budgets").

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::error::{ErrorKind, GatewayError};
use crate::pricing::{pusd_to_usd_string, BudgetLimit, BudgetPeriod, PriceTable, PricedTokens};
use crate::usage::{period_key, CallerSpend, TokenUsage, UsageAck, UsageBatch, UsageRow};

/// One finished attempt's usage, as a worker hands it to the singleton over the shared queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRecord {
    pub caller: String,
    pub provider: String,
    pub model: String,
    /// UTC day (`YYYY-MM-DD`) the attempt finished.
    pub day: String,
    pub usage: TokenUsage,
    /// Cost computed by the worker with the price table it served the request with; the budget
    /// state committed exactly this amount, so acknowledgements subtract exactly this amount.
    pub cost_pusd: u64,
}

impl UsageRecord {
    /// Whether the control plane can store this record: it refuses a whole batch with
    /// INVALID_ARGUMENT when any row has an empty or oversized field, control characters, a `#`
    /// in the provider or model (its storage keys join fields with it) or a malformed day. Such a
    /// record is dropped alone rather than poisoning the batch that would carry everyone's usage.
    pub fn is_reportable(&self) -> bool {
        let text = |s: &str, max: usize, forbid_hash: bool| {
            !(s.is_empty() || s.len() > max || s.chars().any(char::is_control) || forbid_hash && s.contains('#'))
        };
        let day_ok = self.day.len() == 10
            && self.day.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
        text(&self.caller, 512, false) && text(&self.provider, 256, true) && text(&self.model, 256, true) && day_ok
    }
}

/// A message on the shared queue `ai_gateway.usage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueMessage {
    Usage(UsageRecord),
    /// A worker met a budgeted caller whose spend across replicas it does not know yet.
    BudgetCaller(String),
}

/// Appends `<len>:<bytes>`: any byte in a client-chosen name survives.
fn put(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(s.as_bytes());
}

/// Reads one [`put`] field; `None` on anything malformed.
fn take(rest: &mut &[u8]) -> Option<String> {
    let colon = rest.iter().position(|&b| b == b':')?;
    let (len, tail) = rest.split_at(colon);
    if len.is_empty() || len.len() > 10 {
        return None;
    }
    let len: usize = std::str::from_utf8(len).ok()?.parse().ok()?;
    let tail = tail.get(1..)?;
    if tail.len() < len {
        return None;
    }
    let (value, next) = tail.split_at(len);
    *rest = next;
    String::from_utf8(value.to_vec()).ok()
}

fn take_u64(rest: &mut &[u8]) -> Option<u64> {
    take(rest)?.parse().ok()
}

impl QueueMessage {
    /// Compact length-prefixed encoding (cheaper than JSON in the VM, and total to decode).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        match self {
            QueueMessage::Usage(r) => {
                out.push(b'U');
                put(&mut out, &r.caller);
                put(&mut out, &r.provider);
                put(&mut out, &r.model);
                put(&mut out, &r.day);
                for n in [
                    r.usage.input,
                    r.usage.output,
                    r.usage.cache_read,
                    r.usage.cache_creation,
                    r.usage.reasoning,
                    r.cost_pusd,
                ] {
                    put(&mut out, &n.to_string());
                }
            }
            QueueMessage::BudgetCaller(caller) => {
                out.push(b'B');
                put(&mut out, caller);
            }
        }
        out
    }

    /// Inverse of [`QueueMessage::encode`]; `None` for anything it did not produce.
    pub fn decode(bytes: &[u8]) -> Option<QueueMessage> {
        let (&tag, mut rest) = bytes.split_first()?;
        let msg = match tag {
            b'U' => {
                let caller = take(&mut rest)?;
                let provider = take(&mut rest)?;
                let model = take(&mut rest)?;
                let day = take(&mut rest)?;
                let usage = TokenUsage {
                    input: take_u64(&mut rest)?,
                    output: take_u64(&mut rest)?,
                    cache_read: take_u64(&mut rest)?,
                    cache_creation: take_u64(&mut rest)?,
                    reasoning: take_u64(&mut rest)?,
                };
                let cost_pusd = take_u64(&mut rest)?;
                QueueMessage::Usage(UsageRecord { caller, provider, model, day, usage, cost_pusd })
            }
            b'B' => QueueMessage::BudgetCaller(take(&mut rest)?),
            _ => return None,
        };
        rest.is_empty().then_some(msg)
    }
}

/// Aggregation key of pending usage: one row per (caller, provider, model, day).
type RowKey = (String, String, String, String);

/// Totals of one pending row, with the cost the workers committed for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct RowTotals {
    requests: u64,
    usage: TokenUsage,
    cost_pusd: u64,
}

/// Usage received from workers and not yet frozen into a batch. Memory grows with distinct
/// (caller, provider, model, day) keys, never with the request count, so a long control-plane
/// outage costs a bounded amount of memory and loses nothing.
#[derive(Debug, Default)]
pub struct Aggregator {
    rows: BTreeMap<RowKey, RowTotals>,
}

impl Aggregator {
    pub fn add(&mut self, r: UsageRecord) {
        let totals = self.rows.entry((r.caller, r.provider, r.model, r.day)).or_default();
        totals.requests = totals.requests.saturating_add(1);
        let u = &mut totals.usage;
        u.input = u.input.saturating_add(r.usage.input);
        u.output = u.output.saturating_add(r.usage.output);
        u.cache_read = u.cache_read.saturating_add(r.usage.cache_read);
        u.cache_creation = u.cache_creation.saturating_add(r.usage.cache_creation);
        u.reasoning = u.reasoning.saturating_add(r.usage.reasoning);
        totals.cost_pusd = totals.cost_pusd.saturating_add(r.cost_pusd);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Number of distinct pending rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Callers with pending usage.
    pub fn callers(&self) -> BTreeSet<String> {
        self.rows.keys().map(|k| k.0.clone()).collect()
    }

    /// Moves up to `max_rows` pending rows into a batch (the rest wait for the next one, so a
    /// backlog after an outage goes out in messages of bounded size); `spend_for` callers already
    /// in the rows are dropped (the ack carries their spend anyway).
    pub fn freeze(
        &mut self,
        batch_id: String,
        spend_for: impl IntoIterator<Item = String>,
        max_rows: usize,
    ) -> InFlight {
        let rest = match self.rows.keys().nth(max_rows).cloned() {
            Some(first_left) => self.rows.split_off(&first_left),
            None => BTreeMap::new(),
        };
        let rows = std::mem::replace(&mut self.rows, rest);
        let mut costs: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut out = Vec::with_capacity(rows.len());
        for ((caller, provider, model, day), t) in rows {
            let cost = costs.entry((caller.clone(), day.clone())).or_default();
            *cost = cost.saturating_add(t.cost_pusd);
            out.push(UsageRow {
                caller,
                provider,
                model,
                day,
                requests: t.requests,
                input: t.usage.input,
                output: t.usage.output,
                cache_read: t.usage.cache_read,
                cache_creation: t.usage.cache_creation,
                reasoning: t.usage.reasoning,
            });
        }
        let in_rows: BTreeSet<&str> = costs.keys().map(|(c, _)| c.as_str()).collect();
        let mut spend_for: Vec<String> = spend_for.into_iter().filter(|c| !in_rows.contains(c.as_str())).collect();
        spend_for.sort();
        spend_for.dedup();
        InFlight { batch: UsageBatch { batch_id, rows: out, spend_for }, costs }
    }
}

/// A batch sent and not yet acknowledged. On failure the same batch (same id, same rows) is sent
/// again, so the control plane's idempotency marker makes a retry count once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    pub batch: UsageBatch,
    /// Committed cost per (caller, day) of the rows.
    costs: BTreeMap<(String, String), u64>,
}

impl InFlight {
    /// Every caller whose budget state the ack may update.
    pub fn callers(&self) -> BTreeSet<String> {
        let mut all: BTreeSet<String> = self.costs.keys().map(|(c, _)| c.clone()).collect();
        all.extend(self.batch.spend_for.iter().cloned());
        all
    }

    /// What this batch holds of `caller`'s committed cost in budget period `key` (a day, or a
    /// month covering several days).
    pub fn cost_in_period(&self, caller: &str, key: &str) -> u64 {
        self.costs
            .iter()
            .filter(|((c, day), _)| c == caller && day_in_period(day, key))
            .fold(0u64, |sum, (_, cost)| sum.saturating_add(*cost))
    }
}

/// Whether UTC day `day` (`YYYY-MM-DD`) lies in period `key` (`YYYY-MM-DD` or `YYYY-MM`).
fn day_in_period(day: &str, key: &str) -> bool {
    day == key || (key.len() == 7 && day.len() == 10 && day.starts_with(key))
}

/// One caller's budget on one Envoy, as stored in shared data `ai_gateway.budget.<caller>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetState {
    pub period: BudgetPeriod,
    /// The day or month the amounts are for.
    pub period_key: String,
    /// Spend over every replica the control plane last acknowledged for this period.
    pub baseline_pusd: u64,
    /// This Envoy's committed cost not yet covered by an acknowledgement.
    pub unflushed_pusd: u64,
    /// Estimates of requests in flight on this Envoy.
    pub reserved_pusd: u64,
    /// Whether any acknowledgement has set the baseline yet.
    pub baselined: bool,
}

impl BudgetState {
    /// A fresh state for `period` at `now_unix`.
    pub fn new(period: BudgetPeriod, now_unix: u64) -> BudgetState {
        BudgetState {
            period,
            period_key: period_key(period, now_unix),
            baseline_pusd: 0,
            unflushed_pusd: 0,
            reserved_pusd: 0,
            baselined: false,
        }
    }

    /// ASCII `"<d|m> <period key> <baseline> <unflushed> <reserved> <0|1>"`.
    pub fn encode(&self) -> Vec<u8> {
        let p = match self.period {
            BudgetPeriod::Day => 'd',
            BudgetPeriod::Month => 'm',
        };
        format!(
            "{p} {} {} {} {} {}",
            self.period_key,
            self.baseline_pusd,
            self.unflushed_pusd,
            self.reserved_pusd,
            u8::from(self.baselined)
        )
        .into_bytes()
    }

    /// Inverse of [`BudgetState::encode`]; anything else (the empty seed, garbage) is `None`.
    pub fn decode(bytes: &[u8]) -> Option<BudgetState> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.split(' ');
        let period = match parts.next()? {
            "d" => BudgetPeriod::Day,
            "m" => BudgetPeriod::Month,
            _ => return None,
        };
        let period_key = parts.next()?.to_owned();
        if period_key.is_empty() {
            return None;
        }
        let mut num = || parts.next().and_then(|p| p.parse::<u64>().ok());
        let baseline_pusd = num()?;
        let unflushed_pusd = num()?;
        let reserved_pusd = num()?;
        let baselined = match num()? {
            0 => false,
            1 => true,
            _ => return None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(BudgetState { period, period_key, baseline_pusd, unflushed_pusd, reserved_pusd, baselined })
    }

    /// This state moved to the period containing `now_unix` (and to `period`, if the budget's
    /// period changed). A new period starts with no spend; in-flight reservations carry over,
    /// since their releases will come.
    pub fn rolled(self, period: BudgetPeriod, now_unix: u64) -> BudgetState {
        let key = period_key(period, now_unix);
        if key == self.period_key && period == self.period {
            return self;
        }
        BudgetState { reserved_pusd: self.reserved_pusd, ..BudgetState::new(period, now_unix) }
    }

    /// Spend counted against the limit: acknowledged, committed, and reserved.
    pub fn committed_and_reserved(&self) -> u64 {
        self.baseline_pusd.saturating_add(self.unflushed_pusd).saturating_add(self.reserved_pusd)
    }
}

/// Reserves `estimate` against `limit`: `Ok(new state)` or `Err(spend counted so far)` when the
/// budget cannot cover it. Admits only while baseline + unflushed + reserved + estimate ≤ limit,
/// so with estimates ≥ actual costs the committed spend never passes the limit on one Envoy.
pub fn reserve(
    stored: Option<BudgetState>,
    limit: BudgetLimit,
    now_unix: u64,
    estimate: u64,
) -> Result<BudgetState, u64> {
    let mut state = match stored {
        Some(s) => s.rolled(limit.period, now_unix),
        None => BudgetState::new(limit.period, now_unix),
    };
    let spent = state.committed_and_reserved();
    if spent.saturating_add(estimate) > limit.limit_pusd {
        return Err(spent);
    }
    state.reserved_pusd = state.reserved_pusd.saturating_add(estimate);
    Ok(state)
}

/// Gives back a reservation (the request ended, whatever the outcome).
pub fn release(stored: BudgetState, now_unix: u64, estimate: u64) -> BudgetState {
    let period = stored.period;
    let mut state = stored.rolled(period, now_unix);
    state.reserved_pusd = state.reserved_pusd.saturating_sub(estimate);
    state
}

/// Adds an attempt's real cost; it stays in `unflushed` until an ack covers it.
pub fn commit(stored: BudgetState, now_unix: u64, cost: u64) -> BudgetState {
    let period = stored.period;
    let mut state = stored.rolled(period, now_unix);
    state.unflushed_pusd = state.unflushed_pusd.saturating_add(cost);
    state
}

/// Applies the control plane's ack of `in_flight` to `caller`'s state: the batch's cost is no
/// longer unflushed (the control plane counted it, or had counted it already when `duplicate`),
/// and the baseline becomes the spend the control plane reports for the state's period.
pub fn apply_ack(
    stored: BudgetState,
    now_unix: u64,
    caller: &str,
    in_flight: &InFlight,
    ack: &UsageAck,
) -> BudgetState {
    let period = stored.period;
    let mut state = stored.rolled(period, now_unix);
    let acked = in_flight.cost_in_period(caller, &state.period_key);
    state.unflushed_pusd = state.unflushed_pusd.saturating_sub(acked);
    if let Some(spend) = ack.spend.iter().find(|s| s.caller == caller) {
        if let Some(total) = spend_in_period(spend, &state.period_key) {
            state.baseline_pusd = total;
            state.baselined = true;
        }
    }
    state
}

/// The acknowledged spend for period `key`, if the ack is about that period.
fn spend_in_period(spend: &CallerSpend, key: &str) -> Option<u64> {
    if spend.day == key {
        Some(spend.day_cost_pusd)
    } else if spend.month == key {
        Some(spend.month_cost_pusd)
    } else {
        None
    }
}

/// What a request allows itself to generate, read in one pass over the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputAllowance {
    /// `max_tokens` or `max_completion_tokens` (the larger if both), if the request says.
    pub max_tokens: Option<u64>,
    /// Completions asked for (OpenAI's `n`, at least 1): each may use the whole allowance.
    pub choices: u64,
}

impl OutputAllowance {
    /// Output tokens to reserve: the allowance (else `default_max_tokens`) times the choices.
    pub fn tokens(&self, default_max_tokens: u64) -> u64 {
        self.max_tokens.unwrap_or(default_max_tokens).saturating_mul(self.choices)
    }
}

/// The request's [`OutputAllowance`]; a body that does not parse allows the defaults.
pub fn requested_output(body: &[u8]) -> OutputAllowance {
    #[derive(Deserialize)]
    struct Caps {
        #[serde(default)]
        max_tokens: Option<u64>,
        #[serde(default)]
        max_completion_tokens: Option<u64>,
        /// The Responses API's name for it.
        #[serde(default)]
        max_output_tokens: Option<u64>,
        #[serde(default)]
        n: Option<u64>,
    }
    let Ok(caps) = serde_json::from_slice::<Caps>(body) else {
        return OutputAllowance { max_tokens: None, choices: 1 };
    };
    let max_tokens = match (caps.max_tokens, caps.max_completion_tokens) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let max_tokens = match (max_tokens, caps.max_output_tokens) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    OutputAllowance { max_tokens, choices: caps.n.unwrap_or(1).max(1) }
}

/// Input tokens assumed for a body of `len` bytes: one per 3 bytes, rounded up. Tokenizers give
/// about 4 bytes of English per token, so this errs on the expensive side.
pub fn input_estimate(len: usize) -> u64 {
    (len as u64).div_ceil(3)
}

/// The reservation for a request: the most expensive of its possible targets (retries and
/// fallback may reach any) for the input estimate and the allowed output.
pub fn estimate_pusd<'a>(
    prices: &PriceTable,
    targets: impl IntoIterator<Item = (&'a str, &'a str)>,
    body_len: usize,
    max_output: u64,
) -> u64 {
    let tokens = PricedTokens { input: input_estimate(body_len), output: max_output, cache_read: 0, cache_creation: 0 };
    targets.into_iter().map(|(provider, model)| prices.cost_pusd(provider, model, tokens)).max().unwrap_or(0)
}

/// The 429 of an exhausted budget (OpenAI's `insufficient_quota`; Anthropic shape on /v1/messages).
pub fn exhausted_error(limit: BudgetLimit, spent_pusd: u64) -> GatewayError {
    let period = match limit.period {
        BudgetPeriod::Day => "day",
        BudgetPeriod::Month => "month",
    };
    GatewayError::new(
        ErrorKind::InsufficientQuota,
        format!(
            "You exceeded your budget of ${} per {period} (${} spent or reserved). Wait for the next period or ask for a higher budget.",
            pusd_to_usd_string(limit.limit_pusd),
            pusd_to_usd_string(spent_pusd.min(limit.limit_pusd)),
        ),
    )
    .with_code("insufficient_quota")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::PriceConfig;

    const NOV_27: u64 = 1_795_737_600; // 2026-11-27T00:00:00Z

    fn record(caller: &str, model: &str, day: &str, input: u64, output: u64, cost: u64) -> UsageRecord {
        UsageRecord {
            caller: caller.into(),
            provider: "p".into(),
            model: model.into(),
            day: day.into(),
            usage: TokenUsage { input, output, cache_read: 1, cache_creation: 0, reasoning: 2 },
            cost_pusd: cost,
        }
    }

    #[test]
    fn queue_messages_round_trip_and_garbage_is_refused() {
        let msgs = [
            QueueMessage::Usage(record("jwt:we:ird \u{e9}", "m", "2026-11-27", 10, 5, u64::MAX)),
            QueueMessage::BudgetCaller("key:ab".into()),
            QueueMessage::BudgetCaller(String::new()),
        ];
        for m in &msgs {
            let bytes = m.encode();
            assert_eq!(QueueMessage::decode(&bytes).as_ref(), Some(m));
            for cut in 0..bytes.len() {
                assert_eq!(QueueMessage::decode(&bytes[..cut]), None, "prefix {cut}");
            }
            let mut longer = bytes.clone();
            longer.push(b'x');
            assert_eq!(QueueMessage::decode(&longer), None);
        }
        assert_eq!(QueueMessage::decode(b"U99999999999999999999999:x"), None);
        assert_eq!(QueueMessage::decode(b"X1:a"), None);
        // Deterministic garbage: decoding must return, whatever the bytes.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..3000usize {
            let mut buf = vec![if len % 2 == 0 { b'U' } else { b'B' }];
            for _ in 0..(len % 80) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                buf.push(b"0123456789:xU"[(state % 13) as usize]);
            }
            let _ = QueueMessage::decode(&buf);
        }
    }

    #[test]
    fn records_the_control_plane_would_refuse_are_not_reportable() {
        assert!(record("key:ab", "m", "2026-11-27", 1, 1, 1).is_reportable());
        assert!(!record("", "m", "2026-11-27", 1, 1, 1).is_reportable());
        assert!(!record("jwt:a\nb", "m", "2026-11-27", 1, 1, 1).is_reportable());
        assert!(!record(&"c".repeat(513), "m", "2026-11-27", 1, 1, 1).is_reportable());
        assert!(!record("c", "gpt#1", "2026-11-27", 1, 1, 1).is_reportable());
        assert!(!record("c", "", "2026-11-27", 1, 1, 1).is_reportable());
        assert!(!record("c", "m", "2026-1-27", 1, 1, 1).is_reportable());
        assert!(!record("c", "m", "2026-11-2x", 1, 1, 1).is_reportable());
    }

    #[test]
    fn aggregation_sums_equal_keys_and_freezes_everything() {
        let mut agg = Aggregator::default();
        agg.add(record("a", "m", "2026-11-27", 10, 5, 100));
        agg.add(record("a", "m", "2026-11-27", 1, 2, 7));
        agg.add(record("a", "m2", "2026-11-27", 3, 4, 11));
        agg.add(record("b", "m", "2026-11-26", 1, 1, 1));
        assert_eq!(agg.len(), 3);
        let flight = agg.freeze("n/1/1".into(), ["b".to_owned(), "c".to_owned(), "c".to_owned()], 100);
        assert!(agg.is_empty());
        let rows = &flight.batch.rows;
        assert_eq!(rows.len(), 3);
        let first = rows.iter().find(|r| r.caller == "a" && r.model == "m").unwrap();
        assert_eq!((first.requests, first.input, first.output, first.cache_read, first.reasoning), (2, 11, 7, 2, 4));
        assert_eq!(flight.batch.spend_for, vec!["c".to_owned()], "b is in the rows; c once");
        assert_eq!(flight.cost_in_period("a", "2026-11-27"), 118);
        assert_eq!(flight.cost_in_period("a", "2026-11"), 118);
        assert_eq!(flight.cost_in_period("b", "2026-11-27"), 0);
        assert_eq!(flight.cost_in_period("b", "2026-11"), 1);
        assert_eq!(flight.callers().into_iter().collect::<Vec<_>>(), vec!["a", "b", "c"]);
        let json = serde_json::to_vec(&flight.batch).unwrap();
        assert_eq!(serde_json::from_slice::<UsageBatch>(&json).unwrap(), flight.batch);
    }

    #[test]
    fn a_backlog_goes_out_in_bounded_batches_and_nothing_is_lost() {
        let mut agg = Aggregator::default();
        for i in 0..25u64 {
            agg.add(record(&format!("c{i:02}"), "m", "2026-11-27", i, 1, i));
        }
        let mut seen = Vec::new();
        let mut batches = 0;
        while !agg.is_empty() {
            let flight = agg.freeze(format!("b{batches}"), [], 10);
            assert!(flight.batch.rows.len() <= 10);
            seen.extend(flight.batch.rows.into_iter().map(|r| (r.caller, r.input)));
            batches += 1;
        }
        assert_eq!(batches, 3);
        assert_eq!(seen, (0..25u64).map(|i| (format!("c{i:02}"), i)).collect::<Vec<_>>());
        assert!(agg.freeze("empty".into(), [], 0).batch.rows.is_empty());
    }

    #[test]
    fn budget_state_round_trips_and_rejects_garbage() {
        let s = BudgetState {
            period: BudgetPeriod::Day,
            period_key: "2026-11-27".into(),
            baseline_pusd: 1,
            unflushed_pusd: 2,
            reserved_pusd: u64::MAX,
            baselined: true,
        };
        assert_eq!(BudgetState::decode(&s.encode()), Some(s.clone()));
        let enc = s.encode();
        for cut in 0..enc.len() {
            // Only a cut inside the last number can still parse, and then it is a different state.
            assert_ne!(BudgetState::decode(&enc[..cut]), Some(s.clone()));
        }
        for bad in
            [&b""[..], b"x 2026 1 2 3 0", b"d  1 2 3 0", b"d k 1 2 3 2", b"d k 1 2 3 0 9", b"d k -1 2 3 0", b"\xff"]
        {
            assert_eq!(BudgetState::decode(bad), None, "{bad:?}");
        }
    }

    fn limit(pusd: u64) -> BudgetLimit {
        BudgetLimit { limit_pusd: pusd, period: BudgetPeriod::Day }
    }

    #[test]
    fn reservations_never_let_committed_spend_pass_the_limit() {
        // Budget for 10 responses of cost 7 with an estimate of 9: whatever the interleaving of
        // reserve / commit / release, commits never exceed the limit.
        let lim = limit(70);
        let mut state: Option<BudgetState> = None;
        let mut in_flight = 0u32;
        let mut admitted = 0u32;
        let mut refused = 0u32;
        for step in 0..200u32 {
            if step % 3 != 2 {
                match reserve(state.clone(), lim, NOV_27, 9) {
                    Ok(s) => {
                        state = Some(s);
                        in_flight += 1;
                        admitted += 1;
                    }
                    Err(spent) => {
                        refused += 1;
                        assert!(spent + 9 > 70);
                    }
                }
            } else if in_flight > 0 {
                let s = state.clone().unwrap();
                state = Some(release(commit(s, NOV_27, 7), NOV_27, 9));
                in_flight -= 1;
            }
            let s = state.clone().unwrap_or_else(|| BudgetState::new(BudgetPeriod::Day, NOV_27));
            assert!(s.unflushed_pusd <= 70, "committed {} at step {step}", s.unflushed_pusd);
        }
        assert!((7..=10).contains(&admitted), "{admitted}");
        assert!(refused > 0);
    }

    #[test]
    fn a_new_period_starts_empty_but_keeps_reservations() {
        let s = reserve(None, limit(100), NOV_27 - 1, 30).unwrap();
        let s = commit(s, NOV_27 - 1, 50);
        assert_eq!(s.period_key, "2026-11-26");
        let s = reserve(Some(s), limit(100), NOV_27 - 1, 30).err();
        assert_eq!(s, Some(80));
        let s = reserve(None, limit(100), NOV_27 - 1, 30).unwrap();
        let s = commit(s, NOV_27 - 1, 50);
        let next = reserve(Some(s), limit(100), NOV_27, 30).unwrap();
        assert_eq!((next.period_key.as_str(), next.unflushed_pusd, next.reserved_pusd), ("2026-11-27", 0, 60));
        let released = release(next, NOV_27, 30);
        assert_eq!(released.reserved_pusd, 30);
        // A change of the budget's period resets too.
        let month = BudgetLimit { limit_pusd: 100, period: BudgetPeriod::Month };
        let m = reserve(Some(released), month, NOV_27, 1).unwrap();
        assert_eq!((m.period, m.period_key.as_str(), m.reserved_pusd), (BudgetPeriod::Month, "2026-11", 31));
    }

    #[test]
    fn acks_move_cost_from_unflushed_to_the_baseline() {
        let mut agg = Aggregator::default();
        agg.add(record("a", "m", "2026-11-27", 10, 5, 40));
        let flight = agg.freeze("b1".into(), ["z".to_owned()], 100);
        let s = reserve(None, limit(1000), NOV_27, 10).unwrap();
        let s = commit(s, NOV_27, 40);
        // Another request committed after the batch froze: it stays unflushed.
        let s = commit(s, NOV_27, 5);
        let ack = UsageAck {
            batch_id: "b1".into(),
            duplicate: false,
            spend: vec![CallerSpend {
                caller: "a".into(),
                day: "2026-11-27".into(),
                day_cost_pusd: 140,
                month: "2026-11".into(),
                month_cost_pusd: 900,
            }],
        };
        let s = apply_ack(s, NOV_27, "a", &flight, &ack);
        assert_eq!((s.baseline_pusd, s.unflushed_pusd, s.reserved_pusd, s.baselined), (140, 5, 10, true));
        // A duplicate ack of a batch counted before: the same arithmetic.
        let dup = UsageAck { duplicate: true, ..ack.clone() };
        let again = apply_ack(s.clone(), NOV_27, "a", &flight, &dup);
        assert_eq!(again.unflushed_pusd, 0, "saturates, never wraps");
        // A monthly budget reads the month total.
        let m = BudgetState::new(BudgetPeriod::Month, NOV_27);
        assert_eq!(apply_ack(m, NOV_27, "a", &flight, &ack).baseline_pusd, 900);
        // A spend for another period leaves the baseline alone.
        let old = UsageAck {
            spend: vec![CallerSpend { day: "2026-11-26".into(), month: "2026-10".into(), ..ack.spend[0].clone() }],
            ..ack
        };
        let kept = apply_ack(s.clone(), NOV_27, "a", &flight, &old);
        assert_eq!(kept.baseline_pusd, 140);
    }

    #[test]
    fn estimates_take_the_most_expensive_target() {
        let row = |provider: &str, model: &str, i: f64, o: f64| PriceConfig {
            provider: provider.into(),
            model: model.into(),
            input_per_mtok: i,
            output_per_mtok: o,
            cache_read_per_mtok: None,
            cache_write_per_mtok: None,
        };
        let prices = PriceTable::new(&[row("a", "x", 1.0, 2.0), row("b", "y", 3.0, 1.0)]).unwrap();
        // 30 bytes → 10 input tokens; 100 output.
        let est = estimate_pusd(&prices, [("a", "x"), ("b", "y"), ("c", "unpriced")], 30, 100);
        // a: 10 × 1 + 100 × 2 = 210 µUSD beats b: 10 × 3 + 100 × 1 = 130 µUSD.
        assert_eq!(est, 210_000_000);
        assert_eq!(estimate_pusd(&prices, [], 30, 100), 0);
        assert_eq!(input_estimate(0), 0);
        assert_eq!(input_estimate(4), 2);
        let out = |b: &[u8]| requested_output(b);
        assert_eq!(out(br#"{"max_tokens":5,"messages":[]}"#).max_tokens, Some(5));
        assert_eq!(out(br#"{"max_completion_tokens":7}"#).max_tokens, Some(7));
        assert_eq!(out(br#"{"max_tokens":5,"max_completion_tokens":7}"#).max_tokens, Some(7));
        assert_eq!(out(br#"{"messages":[]}"#), OutputAllowance { max_tokens: None, choices: 1 });
        assert_eq!(out(b"garbage"), OutputAllowance { max_tokens: None, choices: 1 });
        assert_eq!(out(br#"{"n":3,"max_tokens":10}"#).tokens(99), 30);
        assert_eq!(out(br#"{"n":0}"#).tokens(99), 99);
        assert_eq!(out(br#"{"n":2}"#).tokens(u64::MAX), u64::MAX);
        let err = exhausted_error(limit(2_500_000_000_000), 9_000_000_000_000);
        assert_eq!(err.status(), 429);
        let body: serde_json::Value = serde_json::from_slice(&err.to_openai_body()).unwrap();
        assert_eq!(body["error"]["type"], "insufficient_quota");
        assert_eq!(body["error"]["code"], "insufficient_quota");
        let anthropic: serde_json::Value = serde_json::from_slice(&err.to_anthropic_body()).unwrap();
        assert_eq!(anthropic["error"]["type"], "rate_limit_error");
    }
}
