//! Usage accounting on arbitrary bytes: the shared-queue record and budget-state codecs, the
//! control plane's ack, the output allowance read from a request body, and the budget arithmetic
//! (reserve, commit, ack, release) with extreme numbers. Nothing may panic — fuzz builds keep
//! overflow checks, so an unchecked `+` on a client- or network-supplied amount is a finding —
//! and every decoded value must survive its own encoding unchanged.
#![no_main]

use gateway_core::accounting::{
    apply_ack, commit, release, requested_output, reserve, Aggregator, BudgetState, QueueMessage, UsageRecord,
};
use gateway_core::pricing::{BudgetLimit, BudgetPeriod};
use gateway_core::usage::{utc_day, TokenUsage, UsageAck};
use libfuzzer_sys::fuzz_target;

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut buf = [0u8; 8];
    for (i, b) in buf.iter_mut().enumerate() {
        *b = bytes.get(at + i).copied().unwrap_or(0);
    }
    u64::from_le_bytes(buf)
}

fuzz_target!(|input: &[u8]| {
    if let Some(message) = QueueMessage::decode(input) {
        assert_eq!(QueueMessage::decode(&message.encode()), Some(message), "queue record round trip");
    }
    if let Some(state) = BudgetState::decode(input) {
        assert_eq!(BudgetState::decode(&state.encode()), Some(state), "budget state round trip");
    }
    let _ = requested_output(input);

    // Arithmetic with amounts taken from the input, up to u64::MAX.
    let (estimate, cost, limit, now) =
        (u64_at(input, 0), u64_at(input, 8), u64_at(input, 16), u64_at(input, 24) % 8_000_000_000);
    let period = if limit % 2 == 0 { BudgetPeriod::Day } else { BudgetPeriod::Month };
    let limit = BudgetLimit { limit_pusd: limit, period };
    let stored = BudgetState::decode(input);
    let Ok(state) = reserve(stored, limit, now, estimate) else { return };
    let state = commit(state, now, cost);

    let caller = "key:fuzz".to_owned();
    let mut pending = Aggregator::default();
    pending.add(UsageRecord {
        caller: caller.clone(),
        provider: "p".into(),
        model: "m".into(),
        day: utc_day(now),
        usage: TokenUsage { input: estimate, output: cost, ..Default::default() },
        cost_pusd: cost,
    });
    let in_flight = pending.freeze("b".into(), [caller.clone()], 1000);
    if let Ok(ack) = serde_json::from_slice::<UsageAck>(input.get(32..).unwrap_or_default()) {
        let acked = apply_ack(state.clone(), now, &caller, &in_flight, &ack);
        let _ = release(acked, now, estimate);
    }
    let _ = release(state, now, estimate);
});
