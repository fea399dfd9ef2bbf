//! Usage records from the workers to the control plane: workers enqueue one record per finished
//! attempt on the shared queue `ai_gateway.usage`; the singleton service aggregates them and sends
//! `UsageBatch`es with gRPC unary `ConfigService/ReportUsage`, resending the same batch until it
//! is acknowledged (the control plane counts a batch id once).

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use gateway_core::accounting::{Aggregator, InFlight, QueueMessage};
use gateway_core::pricing::BudgetPeriod;
use gateway_core::usage::UsageAck;
use proxy_wasm::hostcalls;
use proxy_wasm::types::BufferType;

use crate::proto;
use crate::service::{Backoff, GRPC_SERVICE};

/// Name of the shared queue (registered by the singleton, resolved by the workers).
pub const QUEUE_NAME: &str = "ai_gateway.usage";
/// The VM id the singleton and the HTTP filters share (envoy/render.py).
pub const VM_ID: &str = "ai_gateway";
/// gRPC method that receives usage batches.
pub const REPORT_METHOD: &str = "ReportUsage";
/// How often pending usage is flushed.
pub const FLUSH_INTERVAL_MS: u64 = 1000;
/// How often the spend of a budgeted caller without new usage here is asked again, to learn what
/// other replicas spent.
pub const BASELINE_REFRESH_MS: u64 = 5000;
/// Rows per batch: about 200 bytes each, far below gRPC's 4 MiB default message limit.
pub const MAX_BATCH_ROWS: usize = 1000;
/// Callers whose spend one batch asks for, at most (each is a read on the control plane).
pub const MAX_SPEND_FOR: usize = 500;
/// Timeout of one `ReportUsage` call.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// gRPC status the control plane returns for a batch it can never accept.
const GRPC_INVALID_ARGUMENT: u32 = 3;

/// How long a VM trusts "no queue registered" before resolving again (short: a singleton that
/// registers late must not lose more than about a second of usage).
const UNRESOLVED_RETRY_SECS: u64 = 1;

/// What a VM knows about the queue.
#[derive(Clone, Copy)]
enum QueueState {
    Unknown,
    Resolved(u32),
    /// Not registered (no singleton: no control plane configured) as of this Unix second.
    Absent(u64),
}

thread_local! {
    static QUEUE: Cell<QueueState> = const { Cell::new(QueueState::Unknown) };
}

/// The queue id, resolved once per VM. `None` when no singleton registered it (no control plane
/// configured): then there is nobody to report to and records are skipped. A miss is remembered
/// for a few seconds, so a gateway without a control plane does not pay a lookup per response.
fn queue_id() -> Option<u32> {
    let state = QUEUE.with(Cell::get);
    if let QueueState::Resolved(id) = state {
        return Some(id);
    }
    let now = crate::host::now().0;
    if let QueueState::Absent(at) = state {
        if now.saturating_sub(at) < UNRESOLVED_RETRY_SECS {
            return None;
        }
    }
    match hostcalls::resolve_shared_queue(VM_ID, QUEUE_NAME).ok().flatten() {
        Some(id) => {
            QUEUE.with(|q| q.set(QueueState::Resolved(id)));
            Some(id)
        }
        None => {
            QUEUE.with(|q| q.set(QueueState::Absent(now)));
            None
        }
    }
}

/// Hands a message to the singleton; best effort (a lost record is logged).
pub fn enqueue(msg: &QueueMessage) {
    let Some(id) = queue_id() else {
        return;
    };
    if let Err(status) = hostcalls::enqueue_shared_queue(id, Some(&msg.encode())) {
        log::warn!("could not enqueue a usage record: {status:?}");
        // The singleton may have been recreated: resolve again next time.
        QUEUE.with(|q| q.set(QueueState::Unknown));
    }
}

/// The singleton's reporting state.
pub struct Reporter {
    cluster: String,
    /// `<node id>/<start ms>`: with a sequence number, a batch id no other process reuses.
    id_prefix: String,
    queue: Option<u32>,
    pending: Aggregator,
    in_flight: Option<InFlight>,
    /// The encoded `UsageReport` of `in_flight` (resent unchanged).
    in_flight_message: Vec<u8>,
    call: Option<u32>,
    next_send_ms: u64,
    backoff: Backoff,
    sequence: u64,
    /// Budgeted callers → when their spend was last acknowledged (0: never).
    budget_callers: BTreeMap<String, u64>,
    /// Budgeted keys of the published snapshot and their budget periods.
    budgeted_keys: BTreeMap<String, BudgetPeriod>,
    /// Budgeted keys whose spend this Envoy has not asked for yet (asked once, at start or when a
    /// key gains a budget, so a restarted Envoy knows earlier spend before the first request).
    initial: BTreeSet<String>,
    failures: u32,
}

impl Reporter {
    pub fn new(cluster: String, node_id: &str, now_ms: u64, initial_backoff_ms: u64, max_backoff_ms: u64) -> Self {
        Reporter {
            cluster,
            id_prefix: format!("{node_id}/{now_ms}"),
            queue: None,
            pending: Aggregator::default(),
            in_flight: None,
            in_flight_message: Vec::new(),
            call: None,
            next_send_ms: 0,
            backoff: Backoff::new(initial_backoff_ms, max_backoff_ms),
            sequence: 0,
            budget_callers: BTreeMap::new(),
            budgeted_keys: BTreeMap::new(),
            initial: BTreeSet::new(),
            failures: 0,
        }
    }

    /// Registers the shared queue the workers resolve.
    pub fn start(&mut self) {
        match hostcalls::register_shared_queue(QUEUE_NAME) {
            Ok(id) => self.queue = Some(id),
            Err(status) => log::error!("ai_gateway_service: cannot register the usage queue: {status:?}"),
        }
    }

    /// Takes every queued message into the pending aggregate.
    pub fn drain(&mut self) {
        let Some(id) = self.queue else { return };
        while let Ok(Some(bytes)) = hostcalls::dequeue_shared_queue(id) {
            match QueueMessage::decode(&bytes) {
                Some(QueueMessage::Usage(record)) if record.is_reportable() => self.pending.add(record),
                Some(QueueMessage::Usage(record)) => log::warn!(
                    "ai_gateway_service: usage for provider model {:?}/{:?} cannot be stored by the control plane (empty, too long, control characters or '#'); dropped",
                    record.provider.chars().take(64).collect::<String>(),
                    record.model.chars().take(64).collect::<String>()
                ),
                Some(QueueMessage::BudgetCaller(caller)) => {
                    self.budget_callers.entry(caller).or_insert(0);
                }
                None => log::warn!("ai_gateway_service: undecodable usage record ({} bytes) dropped", bytes.len()),
            }
        }
    }

    /// The budgeted keys of a snapshot about to be published.
    pub fn set_budgeted_keys(&mut self, keys: BTreeMap<String, BudgetPeriod>) {
        for caller in keys.keys() {
            if !self.budgeted_keys.contains_key(caller) {
                self.initial.insert(caller.clone());
            }
        }
        self.initial.retain(|c| keys.contains_key(c));
        self.budgeted_keys = keys;
    }

    /// On every tick: send the batch in flight again after a failure, or freeze a new one.
    pub fn on_tick(&mut self, now_ms: u64, token: Option<&str>, random: u64) {
        self.drain();
        if self.call.is_some() || now_ms < self.next_send_ms {
            return;
        }
        if self.in_flight.is_none() {
            let mut stale: Vec<String> = self
                .budget_callers
                .iter()
                .filter(|(_, at)| **at == 0 || now_ms.saturating_sub(**at) >= BASELINE_REFRESH_MS)
                .map(|(c, _)| c.clone())
                .collect();
            // A bounded share of the initial baselines per batch keeps each ack's reads small.
            while stale.len() < MAX_SPEND_FOR {
                let Some(caller) = self.initial.pop_first() else { break };
                stale.push(caller);
            }
            if self.pending.is_empty() && stale.is_empty() {
                return;
            }
            self.sequence = self.sequence.saturating_add(1);
            let flight = self.pending.freeze(format!("{}/{}", self.id_prefix, self.sequence), stale, MAX_BATCH_ROWS);
            let json = match serde_json::to_vec(&flight.batch) {
                Ok(j) => j,
                Err(e) => {
                    log::error!("ai_gateway_service: cannot encode a usage batch: {e}");
                    return;
                }
            };
            self.in_flight_message = proto::encode_bytes_message(&json);
            self.in_flight = Some(flight);
        }
        self.send(now_ms, token, random);
    }

    fn send(&mut self, now_ms: u64, token: Option<&str>, random: u64) {
        let auth = token.map(|t| format!("Bearer {t}"));
        let metadata: Vec<(&str, &[u8])> = match &auth {
            Some(v) => vec![("authorization", v.as_bytes())],
            None => Vec::new(),
        };
        match hostcalls::dispatch_grpc_call(
            &self.cluster,
            GRPC_SERVICE,
            REPORT_METHOD,
            metadata,
            Some(&self.in_flight_message),
            CALL_TIMEOUT,
        ) {
            Ok(call) => self.call = Some(call),
            Err(status) => {
                log::warn!("ai_gateway_service: cannot call {REPORT_METHOD} on cluster {}: {status:?}", self.cluster);
                self.retry_later(now_ms, random);
            }
        }
    }

    fn retry_later(&mut self, now_ms: u64, random: u64) {
        self.failures = self.failures.saturating_add(1);
        self.next_send_ms = now_ms.saturating_add(self.backoff.next(random));
    }

    /// Whether `call` is this reporter's.
    pub fn owns(&self, call: u32) -> bool {
        self.call == Some(call)
    }

    /// The control plane answered (or the call failed with `status`).
    pub fn on_response(&mut self, call: u32, status: u32, size: usize, now_ms: u64, now_unix: u64, random: u64) {
        if self.call != Some(call) {
            return;
        }
        self.call = None;
        let Some(flight) = self.in_flight.as_ref() else { return };
        if status == GRPC_INVALID_ARGUMENT {
            // It can never succeed; resending would block every later batch.
            log::error!(
                "ai_gateway_service: the control plane refused usage batch {} as invalid; dropped",
                flight.batch.batch_id
            );
            self.in_flight = None;
            self.next_send_ms = now_ms.saturating_add(FLUSH_INTERVAL_MS);
            return;
        }
        if status != 0 {
            let message = hostcalls::get_grpc_status().ok().and_then(|(_, m)| m).unwrap_or_default();
            let shown: String = message.chars().take(200).collect();
            if self.failures.is_multiple_of(20) {
                log::warn!(
                    "ai_gateway_service: {REPORT_METHOD} failed (grpc status {status}: {shown}); batch {} kept for a retry ({} rows pending besides)",
                    flight.batch.batch_id,
                    self.pending.len()
                );
            }
            self.retry_later(now_ms, random);
            return;
        }
        let frame = match hostcalls::get_buffer(BufferType::GrpcReceiveBuffer, 0, size) {
            Ok(Some(b)) => b,
            _ => Vec::new(),
        };
        let ack = proto::decode_bytes_message(&frame)
            .map_err(|e| e.to_string())
            .and_then(|json| serde_json::from_slice::<UsageAck>(json).map_err(|e| e.to_string()));
        let ack = match ack {
            Ok(ack) if ack.batch_id == flight.batch.batch_id => ack,
            Ok(ack) => {
                log::warn!(
                    "ai_gateway_service: ack for batch {} while {} is in flight; resending",
                    ack.batch_id,
                    flight.batch.batch_id
                );
                self.retry_later(now_ms, random);
                return;
            }
            Err(e) => {
                log::warn!("ai_gateway_service: undecodable usage ack: {e}; resending the batch");
                self.retry_later(now_ms, random);
                return;
            }
        };
        crate::budget::apply_ack(now_unix, flight, &ack, &self.budgeted_keys);
        for spend in &ack.spend {
            if let Some(at) = self.budget_callers.get_mut(&spend.caller) {
                *at = now_ms.max(1);
            }
        }
        if self.failures > 0 {
            log::info!(
                "ai_gateway_service: usage batch {} acknowledged after {} failed attempts",
                flight.batch.batch_id,
                self.failures
            );
        }
        log::debug!(
            "ai_gateway_service: usage batch {} acknowledged (duplicate: {})",
            flight.batch.batch_id,
            ack.duplicate
        );
        self.failures = 0;
        self.backoff.reset();
        self.in_flight = None;
        self.next_send_ms = now_ms.saturating_add(FLUSH_INTERVAL_MS);
    }
}
