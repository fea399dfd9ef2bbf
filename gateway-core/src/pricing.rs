//! Prices per provider model and the cost of a response, in integer picodollars so that costs
//! add up exactly however usage is split or aggregated.
//!
//! Prices are configured as USD per million tokens (the unit every provider publishes) and kept
//! as integer micro-USD per million tokens, which equals picodollars per token: the cost of a
//! response is then `tokens × price`, a product of integers, and the cost of an aggregate equals
//! the sum of the costs of its parts. No floating point touches a running total.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Picodollars (10⁻¹² USD) in one US dollar.
pub const PUSD_PER_USD: u64 = 1_000_000_000_000;

/// Highest accepted price, USD per million tokens: far above any published price, low enough
/// that `tokens × price` cannot overflow a `u128` and a day's spend fits a `u64`.
pub const MAX_USD_PER_MTOK: f64 = 100_000.0;

/// One row of the price table as configured: USD per million tokens for one provider model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceConfig {
    /// Provider name as in `providers[].name`.
    pub provider: String,
    /// The provider's model id (the target model, not the public route name).
    pub model: String,
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    /// Cached prompt tokens read; absent: charged as `input_per_mtok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_per_mtok: Option<f64>,
    /// Prompt tokens written to the cache; absent: charged as `input_per_mtok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_per_mtok: Option<f64>,
}

/// A validated price: picodollars per token for each kind of token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Price {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

/// Why a price row or budget was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    #[error("{field} must be a number between 0 and 100000 (USD per million tokens; 10000000 for a budget)")]
    OutOfRange { field: &'static str },
    #[error("duplicate price for provider {provider:?} model {model:?}")]
    Duplicate { provider: String, model: String },
}

/// USD per million tokens → picodollars per token (= micro-USD per million tokens), rounded to
/// the nearest picodollar.
pub fn usd_per_mtok_to_pusd_per_token(value: f64, field: &'static str) -> Result<u64, PriceError> {
    if !value.is_finite() || !(0.0..=MAX_USD_PER_MTOK).contains(&value) {
        return Err(PriceError::OutOfRange { field });
    }
    // In range by the check above, so the cast cannot saturate.
    Ok((value * 1_000_000.0).round() as u64)
}

impl PriceConfig {
    /// Validates and converts to integer prices.
    pub fn compile(&self) -> Result<Price, PriceError> {
        let input = usd_per_mtok_to_pusd_per_token(self.input_per_mtok, "input_per_mtok")?;
        let output = usd_per_mtok_to_pusd_per_token(self.output_per_mtok, "output_per_mtok")?;
        let cache_read = match self.cache_read_per_mtok {
            Some(v) => usd_per_mtok_to_pusd_per_token(v, "cache_read_per_mtok")?,
            None => input,
        };
        let cache_write = match self.cache_write_per_mtok {
            Some(v) => usd_per_mtok_to_pusd_per_token(v, "cache_write_per_mtok")?,
            None => input,
        };
        Ok(Price { input, output, cache_read, cache_write })
    }
}

/// Token counts that are priced; [`crate::TokenUsage`] and aggregated usage rows both provide
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PricedTokens {
    /// Every prompt token, cached ones included.
    pub input: u64,
    pub output: u64,
    /// Subset of `input` read from the provider's cache.
    pub cache_read: u64,
    /// Subset of `input` written to the provider's cache.
    pub cache_creation: u64,
}

impl From<crate::TokenUsage> for PricedTokens {
    fn from(u: crate::TokenUsage) -> Self {
        PricedTokens { input: u.input, output: u.output, cache_read: u.cache_read, cache_creation: u.cache_creation }
    }
}

impl Price {
    /// Cost in picodollars. Reasoning tokens are a subset of output and billed as output. Cached
    /// counts larger than `input` (a provider inconsistency) are clamped rather than trusted, so
    /// the uncached remainder never underflows.
    pub fn cost_pusd(&self, tokens: PricedTokens) -> u64 {
        let cache_read = tokens.cache_read.min(tokens.input);
        let cache_creation = tokens.cache_creation.min(tokens.input - cache_read);
        let uncached = tokens.input - cache_read - cache_creation;
        let total = u128::from(uncached) * u128::from(self.input)
            + u128::from(cache_read) * u128::from(self.cache_read)
            + u128::from(cache_creation) * u128::from(self.cache_write)
            + u128::from(tokens.output) * u128::from(self.output);
        u64::try_from(total).unwrap_or(u64::MAX)
    }
}

/// The price table, looked up by (provider, provider model).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriceTable {
    prices: HashMap<(String, String), Price>,
}

impl PriceTable {
    /// Builds the table; any invalid or duplicated row refuses the whole table.
    pub fn new(rows: &[PriceConfig]) -> Result<PriceTable, PriceError> {
        let mut prices = HashMap::with_capacity(rows.len());
        for row in rows {
            let price = row.compile()?;
            if prices.insert((row.provider.clone(), row.model.clone()), price).is_some() {
                return Err(PriceError::Duplicate { provider: row.provider.clone(), model: row.model.clone() });
            }
        }
        Ok(PriceTable { prices })
    }

    /// The price of one provider model; `None` when it is not priced (cost then counts as 0 and
    /// budgets cannot limit that model — documented in docs/control-plane.md).
    pub fn get(&self, provider: &str, model: &str) -> Option<Price> {
        // A borrowed tuple key would need a custom Borrow impl; the table is small and this is
        // once per request.
        self.prices.get(&(provider.to_owned(), model.to_owned())).copied()
    }

    /// Cost in picodollars, 0 for an unpriced model.
    pub fn cost_pusd(&self, provider: &str, model: &str, tokens: PricedTokens) -> u64 {
        self.get(provider, model).map_or(0, |p| p.cost_pusd(tokens))
    }

    pub fn is_empty(&self) -> bool {
        self.prices.is_empty()
    }
}

/// Picodollars as a decimal USD string with 12 places trimmed of trailing zeros (`"0.000123"`),
/// exact, for logs and APIs.
pub fn pusd_to_usd_string(pusd: u64) -> String {
    let whole = pusd / PUSD_PER_USD;
    let frac = pusd % PUSD_PER_USD;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:012}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// How long a budget lasts before it starts again (UTC calendar periods).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BudgetPeriod {
    Day,
    #[default]
    Month,
}

/// A spending cap for one caller (virtual key or JWT client).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Cap in USD for one period.
    pub limit_usd: f64,
    #[serde(default)]
    pub period: BudgetPeriod,
}

/// Highest accepted budget, USD per period (keeps picodollar totals inside a `u64`).
pub const MAX_BUDGET_USD: f64 = 10_000_000.0;

impl Budget {
    /// The cap in picodollars; an invalid cap is an error naming `limit_usd`.
    pub fn limit_pusd(&self) -> Result<u64, PriceError> {
        let v = self.limit_usd;
        if !v.is_finite() || !(0.0..=MAX_BUDGET_USD).contains(&v) {
            return Err(PriceError::OutOfRange { field: "limit_usd" });
        }
        Ok((v * PUSD_PER_USD as f64).round() as u64)
    }

    /// The validated, integer form carried in snapshots.
    pub fn compile(&self) -> Result<BudgetLimit, PriceError> {
        Ok(BudgetLimit { limit_pusd: self.limit_pusd()?, period: self.period })
    }
}

/// A validated budget: the cap in picodollars per period. This is what snapshots carry, so the
/// data plane never parses a float for money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetLimit {
    pub limit_pusd: u64,
    #[serde(default)]
    pub period: BudgetPeriod,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(provider: &str, model: &str, input: f64, output: f64) -> PriceConfig {
        PriceConfig {
            provider: provider.into(),
            model: model.into(),
            input_per_mtok: input,
            output_per_mtok: output,
            cache_read_per_mtok: None,
            cache_write_per_mtok: None,
        }
    }

    #[test]
    fn cost_is_tokens_times_price_in_picodollars() {
        // $3 / $15 per million: 1,000 input + 200 output = $0.003 + $0.003 = $0.006.
        let price = row("a", "m", 3.0, 15.0).compile().unwrap();
        let cost = price.cost_pusd(PricedTokens { input: 1000, output: 200, ..Default::default() });
        assert_eq!(cost, 6_000_000_000);
        assert_eq!(pusd_to_usd_string(cost), "0.006");
    }

    #[test]
    fn cached_tokens_use_their_own_price_and_never_underflow() {
        let mut r = row("a", "m", 3.0, 15.0);
        r.cache_read_per_mtok = Some(0.3);
        r.cache_write_per_mtok = Some(3.75);
        let price = r.compile().unwrap();
        let tokens = PricedTokens { input: 100, output: 0, cache_read: 60, cache_creation: 20 };
        assert_eq!(price.cost_pusd(tokens), 20 * 3_000_000 + 60 * 300_000 + 20 * 3_750_000);
        // A provider claiming more cached than total input is clamped, not wrapped.
        let odd = PricedTokens { input: 10, output: 0, cache_read: 50, cache_creation: 50 };
        assert_eq!(price.cost_pusd(odd), 10 * 300_000);
    }

    #[test]
    fn cost_of_an_aggregate_equals_the_sum_of_its_parts() {
        let price = row("a", "m", 0.15, 0.6).compile().unwrap();
        let parts = [(17, 3), (1, 999), (12345, 0), (0, 7)];
        let sum: u64 = parts
            .iter()
            .map(|&(i, o)| price.cost_pusd(PricedTokens { input: i, output: o, ..Default::default() }))
            .sum();
        let total = price.cost_pusd(PricedTokens {
            input: parts.iter().map(|p| p.0).sum(),
            output: parts.iter().map(|p| p.1).sum(),
            ..Default::default()
        });
        assert_eq!(sum, total);
    }

    #[test]
    fn invalid_prices_and_duplicates_are_refused() {
        assert!(row("a", "m", -1.0, 1.0).compile().is_err());
        assert!(row("a", "m", f64::NAN, 1.0).compile().is_err());
        assert!(row("a", "m", 1.0, 1e9).compile().is_err());
        let dup = [row("a", "m", 1.0, 1.0), row("a", "m", 2.0, 2.0)];
        assert!(matches!(PriceTable::new(&dup), Err(PriceError::Duplicate { .. })));
        let table = PriceTable::new(&[row("a", "m", 1.0, 2.0)]).unwrap();
        assert_eq!(table.cost_pusd("a", "other", PricedTokens { input: 5, ..Default::default() }), 0);
        assert_eq!(table.cost_pusd("a", "m", PricedTokens { input: 5, ..Default::default() }), 5_000_000);
    }

    #[test]
    fn usd_strings_are_exact() {
        assert_eq!(pusd_to_usd_string(0), "0");
        assert_eq!(pusd_to_usd_string(1), "0.000000000001");
        assert_eq!(pusd_to_usd_string(2 * PUSD_PER_USD + 500_000_000_000), "2.5");
    }

    #[test]
    fn budgets_convert_to_picodollars() {
        let b = Budget { limit_usd: 0.25, period: BudgetPeriod::Day };
        assert_eq!(b.limit_pusd().unwrap(), 250_000_000_000);
        assert!(Budget { limit_usd: -1.0, period: BudgetPeriod::Month }.limit_pusd().is_err());
        let parsed: Budget = serde_json::from_str(r#"{"limit_usd": 10}"#).unwrap();
        assert_eq!(parsed.period, BudgetPeriod::Month);
    }
}
