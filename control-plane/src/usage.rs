//! Usage accounting on the control plane: turns a filter's [`UsageBatch`] into idempotent,
//! store-independent increments (the stores apply them atomically), and answers with the
//! callers' spend.
//!
//! A batch is split into chunks that each fit one DynamoDB transaction (100 items including the
//! marker). Chunk `n` of batch `b` is applied under the marker `b#n`, atomically with its
//! increments, so a resent batch adds nothing for the chunks already applied and the rest for the
//! others: a batch counts exactly once however often it is delivered or interrupted. Chunking is
//! a pure function of the batch, so a resend (same id, same rows) yields the same chunks.

use std::collections::{BTreeMap, BTreeSet};

use gateway_core::pricing::PriceTable;
use gateway_core::usage::{utc_day, utc_month, CallerSpend, UsageAck, UsageBatch};
use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError};

/// Items in one DynamoDB `TransactWriteItems` (its hard limit), the marker included.
pub const MAX_ITEMS_PER_CHUNK: usize = 100;
/// How long a batch marker is kept (DynamoDB TTL attribute `expires_at`): far longer than any
/// filter keeps resending a batch.
pub const MARKER_TTL_SECS: u64 = 7 * 86_400;

/// Day or month aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    Day,
    Month,
}

impl PeriodKind {
    /// One-letter tag used in storage keys.
    pub fn tag(self) -> &'static str {
        match self {
            PeriodKind::Day => "d",
            PeriodKind::Month => "m",
        }
    }
}

/// Summed usage of one bucket. Costs are integer picodollars, so sums are exact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub requests: u64,
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_creation: u64,
    pub reasoning: u64,
    pub cost_pusd: u64,
}

impl Counters {
    /// Adds `o` (saturating: a corrupt counter must not wrap to a small number).
    pub fn add(&mut self, o: &Counters) {
        self.requests = self.requests.saturating_add(o.requests);
        self.input = self.input.saturating_add(o.input);
        self.output = self.output.saturating_add(o.output);
        self.cache_read = self.cache_read.saturating_add(o.cache_read);
        self.cache_creation = self.cache_creation.saturating_add(o.cache_creation);
        self.reasoning = self.reasoning.saturating_add(o.reasoning);
        self.cost_pusd = self.cost_pusd.saturating_add(o.cost_pusd);
    }

    /// `(attribute name, value)` of every counter, in a fixed order (DynamoDB `ADD`s).
    pub fn fields(&self) -> [(&'static str, u64); 7] {
        [
            ("requests", self.requests),
            ("input", self.input),
            ("output", self.output),
            ("cache_read", self.cache_read),
            ("cache_creation", self.cache_creation),
            ("reasoning", self.reasoning),
            ("cost_pusd", self.cost_pusd),
        ]
    }
}

/// What an increment adds to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bucket {
    /// One caller's use of one provider model in one day or month.
    Model { caller: String, period: PeriodKind, key: String, provider: String, model: String },
    /// One caller's total in one day or month (what budgets compare against).
    Total { caller: String, period: PeriodKind, key: String },
}

impl Bucket {
    pub fn caller(&self) -> &str {
        match self {
            Bucket::Model { caller, .. } | Bucket::Total { caller, .. } => caller,
        }
    }
}

/// One atomic unit of ingestion: a marker and the increments applied with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub marker: String,
    pub increments: Vec<(Bucket, Counters)>,
}

/// One stored aggregate, as `GET /v1/usage` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageAggregate {
    pub caller: String,
    pub provider: String,
    pub model: String,
    /// `YYYY-MM-DD` or `YYYY-MM`.
    pub period: String,
    pub counters: Counters,
}

/// Why a batch can never be applied (gRPC `INVALID_ARGUMENT`: the filter drops it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid usage batch: {0}")]
pub struct InvalidBatch(pub String);

/// `YYYY-MM-DD` with a plausible month and day.
pub fn valid_day(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10 && b[4] == b'-' && b[7] == b'-' && valid_month(&s[..7]) && {
        let d = &s[8..];
        d.bytes().all(|c| c.is_ascii_digit()) && matches!(d.parse::<u32>(), Ok(1..=31))
    }
}

/// `YYYY-MM`.
pub fn valid_month(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 7
        && b[4] == b'-'
        && s[..4].bytes().all(|c| c.is_ascii_digit())
        && s[5..].bytes().all(|c| c.is_ascii_digit())
        && matches!(s[5..].parse::<u32>(), Ok(1..=12))
}

fn check_text(what: &str, s: &str, max: usize, forbid_hash: bool) -> Result<(), InvalidBatch> {
    // Storage keys join fields with '#' (DynamoDB) and '\0' (redb): neither may occur inside a
    // field that is not the last one of a key.
    if s.is_empty() || s.len() > max || s.chars().any(char::is_control) || (forbid_hash && s.contains('#')) {
        let extra = if forbid_hash { ", no '#'" } else { "" };
        return Err(InvalidBatch(format!("{what} must be 1 to {max} bytes without control characters{extra}: {s:?}")));
    }
    Ok(())
}

/// Checks everything the stores rely on.
pub fn validate(batch: &UsageBatch) -> Result<(), InvalidBatch> {
    check_text("batch_id", &batch.batch_id, 256, false)?;
    for (i, r) in batch.rows.iter().enumerate() {
        check_text(&format!("rows[{i}].caller"), &r.caller, 512, false)?;
        check_text(&format!("rows[{i}].provider"), &r.provider, 256, true)?;
        check_text(&format!("rows[{i}].model"), &r.model, 256, true)?;
        if !valid_day(&r.day) {
            return Err(InvalidBatch(format!("rows[{i}].day must be YYYY-MM-DD: {:?}", r.day)));
        }
    }
    for (i, c) in batch.spend_for.iter().enumerate() {
        check_text(&format!("spend_for[{i}]"), c, 512, false)?;
    }
    Ok(())
}

/// Splits a validated batch into chunks of at most [`MAX_ITEMS_PER_CHUNK`] items. Rows with the
/// same caller, provider, model and day are summed first. Each row is priced with `prices`.
pub fn plan(batch: &UsageBatch, prices: &PriceTable) -> Vec<Chunk> {
    // Sorted, so the chunks do not depend on the order of the rows either.
    let mut rows: BTreeMap<(&str, &str, &str, &str), Counters> = BTreeMap::new();
    for r in &batch.rows {
        let c = Counters {
            requests: r.requests,
            input: r.input,
            output: r.output,
            cache_read: r.cache_read,
            cache_creation: r.cache_creation,
            reasoning: r.reasoning,
            cost_pusd: prices.cost_pusd(&r.provider, &r.model, r.priced_tokens()),
        };
        rows.entry((r.caller.as_str(), r.provider.as_str(), r.model.as_str(), r.day.as_str())).or_default().add(&c);
    }
    let mut chunks = Vec::new();
    let mut current: BTreeMap<Bucket, Counters> = BTreeMap::new();
    for ((caller, provider, model, day), c) in rows {
        let month = day.get(..7).unwrap_or(day);
        let buckets = [
            Bucket::Model {
                caller: caller.into(),
                period: PeriodKind::Day,
                key: day.into(),
                provider: provider.into(),
                model: model.into(),
            },
            Bucket::Model {
                caller: caller.into(),
                period: PeriodKind::Month,
                key: month.into(),
                provider: provider.into(),
                model: model.into(),
            },
            Bucket::Total { caller: caller.into(), period: PeriodKind::Day, key: day.into() },
            Bucket::Total { caller: caller.into(), period: PeriodKind::Month, key: month.into() },
        ];
        let new = buckets.iter().filter(|b| !current.contains_key(b)).count();
        // One transaction may not touch an item twice, hence merged buckets; +1 for the marker.
        if current.len() + new + 1 > MAX_ITEMS_PER_CHUNK {
            chunks.push(std::mem::take(&mut current));
        }
        for b in buckets {
            current.entry(b).or_default().add(&c);
        }
    }
    if !current.is_empty() || chunks.is_empty() {
        chunks.push(current);
    }
    chunks
        .into_iter()
        .enumerate()
        .map(|(n, inc)| Chunk { marker: format!("{}#{n}", batch.batch_id), increments: inc.into_iter().collect() })
        .collect()
}

/// Applies a batch (each chunk atomically and at most once) and returns the acknowledgement:
/// `duplicate` when no chunk was new, and the current day and month spend (at `now`) of every
/// caller in the rows and in `spend_for`.
pub async fn ingest(
    store: &dyn Store,
    batch: &UsageBatch,
    prices: &PriceTable,
    now: u64,
) -> Result<UsageAck, IngestError> {
    validate(batch)?;
    let mut applied_any = false;
    for chunk in plan(batch, prices) {
        if chunk.increments.is_empty() {
            continue;
        }
        applied_any |= store.apply_usage(&chunk.marker, &chunk.increments, now).await?;
    }
    let no_rows = batch.rows.is_empty();
    let callers: BTreeSet<&str> =
        batch.rows.iter().map(|r| r.caller.as_str()).chain(batch.spend_for.iter().map(String::as_str)).collect();
    let callers: Vec<String> = callers.into_iter().map(str::to_string).collect();
    let (day, month) = (utc_day(now), utc_month(now));
    let costs = store.caller_spend(&callers, &day, &month).await?;
    let spend = callers
        .into_iter()
        .zip(costs)
        .map(|(caller, (day_cost_pusd, month_cost_pusd))| CallerSpend {
            caller,
            day: day.clone(),
            day_cost_pusd,
            month: month.clone(),
            month_cost_pusd,
        })
        .collect();
    Ok(UsageAck { batch_id: batch.batch_id.clone(), duplicate: !no_rows && !applied_any, spend })
}

/// Why [`ingest`] failed.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Invalid(#[from] InvalidBatch),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_core::pricing::PriceConfig;
    use gateway_core::usage::UsageRow;

    fn row(caller: &str, model: &str, day: &str, input: u64, output: u64) -> UsageRow {
        UsageRow {
            caller: caller.into(),
            provider: "p".into(),
            model: model.into(),
            day: day.into(),
            requests: 1,
            input,
            output,
            cache_read: 0,
            cache_creation: 0,
            reasoning: 0,
        }
    }

    #[test]
    fn chunks_fit_a_transaction_and_do_not_depend_on_row_order() {
        let prices = PriceTable::new(&[PriceConfig {
            provider: "p".into(),
            model: "m".into(),
            input_per_mtok: 1.0,
            output_per_mtok: 2.0,
            cache_read_per_mtok: None,
            cache_write_per_mtok: None,
        }])
        .unwrap();
        let rows: Vec<UsageRow> = (0..130).map(|i| row(&format!("c{i}"), "m", "2026-11-27", i, 1)).collect();
        let mut batch = UsageBatch { batch_id: "b".into(), rows, spend_for: vec![] };
        let chunks = plan(&batch, &prices);
        assert!(chunks.len() >= 6, "{} chunks", chunks.len());
        let mut total = Counters::default();
        for (n, c) in chunks.iter().enumerate() {
            assert_eq!(c.marker, format!("b#{n}"));
            assert!(c.increments.len() < MAX_ITEMS_PER_CHUNK);
            for (b, v) in &c.increments {
                if matches!(b, Bucket::Total { period: PeriodKind::Month, .. }) {
                    total.add(v);
                }
            }
        }
        assert_eq!(total.requests, 130);
        assert_eq!(total.cost_pusd, (0..130u64).map(|i| i * 1_000_000 + 2_000_000).sum::<u64>());
        batch.rows.reverse();
        assert_eq!(plan(&batch, &prices), chunks);
    }

    #[test]
    fn validation_refuses_what_storage_keys_cannot_hold() {
        let ok = UsageBatch {
            batch_id: "n/1/2".into(),
            rows: vec![row("key:ab", "m", "2026-11-27", 1, 1)],
            spend_for: vec![],
        };
        assert!(validate(&ok).is_ok());
        for (field, bad) in [
            ("day", "2026-13-01"),
            ("day", "2026-11-1"),
            ("day", "20261127xx"),
            ("model", "a#b"),
            ("caller", ""),
            ("caller", "a\0b"),
        ] {
            let mut b = ok.clone();
            match field {
                "day" => b.rows[0].day = bad.into(),
                "model" => b.rows[0].model = bad.into(),
                _ => b.rows[0].caller = bad.into(),
            }
            assert!(validate(&b).is_err(), "{field} {bad:?}");
        }
        assert!(valid_month("2026-11") && !valid_month("2026-00") && !valid_month("2026/11"));
    }
}
