//! Per-caller budgets in shared data (`ai_gateway.budget.<caller>`), updated with CAS like the
//! rate-limit counters, so reservations are exact across the worker VMs of one Envoy. The
//! arithmetic is `gateway_core::accounting`; this module is the host calls around it (ADR 0008,
//! "Budgets").

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use gateway_core::accounting::{self, BudgetState, InFlight, QueueMessage};
use gateway_core::error::{ErrorKind, GatewayError};
use gateway_core::pricing::{BudgetLimit, BudgetPeriod};
use gateway_core::usage::UsageAck;
use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

/// Shared-data key prefix; the caller (`key:<hash>` or `jwt:<client_id>`) follows.
const PREFIX: &str = "ai_gateway.budget.";
/// CAS attempts before giving up; each loss means another worker just wrote.
const ATTEMPTS: usize = 16;

fn key(caller: &str) -> String {
    format!("{PREFIX}{caller}")
}

thread_local! {
    // Budget callers this VM already announced to the singleton (bounded by distinct callers).
    static ANNOUNCED: RefCell<BTreeSet<String>> = const { RefCell::new(BTreeSet::new()) };
}

/// A reservation held by one request, released exactly once when the request ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub caller: String,
    pub estimate_pusd: u64,
}

/// Creates `caller`'s entry if it does not exist. The first write of a key cannot be conditional,
/// so entries are created before any worker can race on them: by the singleton for keys of a
/// snapshot it is about to publish, by each worker's configuration for named JWT clients.
pub fn seed(caller: &str) {
    let key = key(caller);
    // Only a key that does not exist (no CAS token): a seeded key reads as no value with a token,
    // and writing it again unconditionally could wipe a worker's reservation.
    if let Ok((None, None)) = hostcalls::get_shared_data(&key) {
        if let Err(status) = hostcalls::set_shared_data(&key, Some(b""), None) {
            log::warn!("could not seed budget state for a caller: {status:?}");
        }
    }
}

/// Reserves `estimate` for `caller` against `limit`; `Err` is the 429 (or a 500 when shared data
/// fails). Refuses when the CAS keeps failing: admitting unchecked could break the budget.
pub fn reserve(caller: &str, limit: BudgetLimit, now_unix: u64, estimate: u64) -> Result<Reservation, GatewayError> {
    let key = key(caller);
    for _ in 0..ATTEMPTS {
        let (value, cas) = hostcalls::get_shared_data(&key).map_err(|_| unavailable())?;
        let stored = value.as_deref().and_then(BudgetState::decode);
        // A missing key (not seeded: a `"*"` JWT client) is written unconditionally: the one
        // race documented in ADR 0008, at most one reservation per worker at a caller's first use.
        match accounting::reserve(stored, limit, now_unix, estimate) {
            Err(spent) => return Err(accounting::exhausted_error(limit, spent)),
            Ok(next) => match hostcalls::set_shared_data(&key, Some(&next.encode()), cas) {
                Ok(()) => {
                    if !next.baselined {
                        announce(caller);
                    }
                    return Ok(Reservation { caller: caller.to_owned(), estimate_pusd: estimate });
                }
                Err(Status::CasMismatch) => continue,
                Err(_) => return Err(unavailable()),
            },
        }
    }
    Err(GatewayError::new(
        ErrorKind::RateLimited,
        "Too many concurrent requests for this caller's budget; retry shortly.",
    )
    .with_code("rate_limit_exceeded"))
}

/// Tells the singleton once per VM that `caller` has a budget but no known spend yet, so the
/// next usage batch asks the control plane for it.
fn announce(caller: &str) {
    let first = ANNOUNCED.with(|set| set.try_borrow_mut().map(|mut s| s.insert(caller.to_owned())).unwrap_or(false));
    if first {
        crate::usage::enqueue(&QueueMessage::BudgetCaller(caller.to_owned()));
    }
}

fn unavailable() -> GatewayError {
    GatewayError::new(ErrorKind::Internal, "budget state unavailable")
}

/// Applies `f` to `caller`'s state with CAS; nothing when the caller has no (decodable) state,
/// unless `seed_period` says how to start one from a seeded entry.
fn update(caller: &str, what: &str, seed_period: Option<(BudgetPeriod, u64)>, f: impl Fn(BudgetState) -> BudgetState) {
    let key = key(caller);
    for _ in 0..ATTEMPTS {
        // A missing key has no CAS token; a seeded one reads as an empty (or absent) value with one.
        let Ok((value, Some(cas))) = hostcalls::get_shared_data(&key) else {
            return;
        };
        let state = match (value.as_deref().and_then(BudgetState::decode), seed_period) {
            (Some(state), _) => state,
            (None, Some((period, now_unix))) => BudgetState::new(period, now_unix),
            (None, None) => return,
        };
        match hostcalls::set_shared_data(&key, Some(&f(state).encode()), Some(cas)) {
            Ok(()) => return,
            Err(Status::CasMismatch) => continue,
            Err(status) => {
                log::warn!("could not {what} a budget: {status:?}");
                return;
            }
        }
    }
    log::warn!("could not {what} a budget: CAS kept failing");
}

/// Gives back a request's reservation.
pub fn release(reservation: &Reservation, now_unix: u64) {
    update(&reservation.caller, "release a reservation on", None, |s| {
        accounting::release(s, now_unix, reservation.estimate_pusd)
    });
}

/// Adds an attempt's real cost to `caller`'s unflushed spend, if the caller has a budget.
pub fn commit(caller: &str, now_unix: u64, cost_pusd: u64) {
    if cost_pusd == 0 {
        return;
    }
    update(caller, "commit a cost to", None, |s| accounting::commit(s, now_unix, cost_pusd));
}

/// The singleton's side: applies an acknowledged batch to every caller it concerns. A budgeted
/// key still at its seed (no request on this Envoy yet) gets its state from the ack, so its first
/// request already knows what the other replicas and earlier runs spent.
pub fn apply_ack(now_unix: u64, in_flight: &InFlight, ack: &UsageAck, periods: &BTreeMap<String, BudgetPeriod>) {
    for caller in in_flight.callers() {
        let seed = periods.get(&caller).map(|p| (*p, now_unix));
        update(&caller, "apply an ack to", seed, |s| accounting::apply_ack(s, now_unix, &caller, in_flight, ack));
    }
}
