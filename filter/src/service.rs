//! The singleton Wasm service (root_id `ai_gateway_service`, bootstrap extension
//! `envoy.bootstrap.wasm` with `singleton: true`): holds the gRPC `Watch` stream to the control
//! plane and publishes every received snapshot to shared data for the workers, and reports the
//! workers' usage back (`usage::Reporter`).
//!
//! It runs on Envoy's main thread, once per Envoy. Its `vm_id` must equal the HTTP filters' one,
//! or the workers read a different shared-data namespace and never see a snapshot.

use std::collections::BTreeMap;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::BufferType;
use serde::Deserialize;

use gateway_core::pricing::BudgetPeriod;
use gateway_core::snapshot::Snapshot;

use crate::host;
use crate::proto;
use crate::snapshot;
use crate::state::Shared;
use crate::usage;

/// gRPC service and method of the control plane's `Watch` (control-plane/proto/config.proto).
pub const GRPC_SERVICE: &str = "aigateway.v1.ConfigService";
pub const GRPC_METHOD: &str = "Watch";

/// How often `on_tick` runs; bounds the reconnect delay's resolution.
const TICK: Duration = Duration::from_millis(100);

/// The singleton's plugin configuration (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Envoy cluster (HTTP/2) that reaches the control plane's gRPC listener.
    #[serde(default = "default_cluster")]
    pub cluster: String,
    /// Environment variable (listed in `host_env_keys`) holding the watch token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Identity of this Envoy in the control plane's logs.
    #[serde(default = "default_node_id")]
    pub node_id: String,
    #[serde(default = "default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// Heartbeat interval asked of the control plane; the stream is reopened after three
    /// intervals without any message (a hung connection otherwise looks like a quiet one).
    /// 0 disables both.
    #[serde(default = "default_heartbeat_secs")]
    pub heartbeat_secs: u32,
}

fn default_cluster() -> String {
    "ai_gateway_control_plane".to_owned()
}
fn default_node_id() -> String {
    "envoy".to_owned()
}
fn default_initial_backoff_ms() -> u64 {
    250
}
fn default_max_backoff_ms() -> u64 {
    5000
}
fn default_heartbeat_secs() -> u32 {
    10
}

/// Largest heartbeat interval the control plane honours (it clamps to it).
const MAX_HEARTBEAT_SECS: u32 = 3600;

impl ServiceConfig {
    /// Parses the plugin configuration; an empty one means all defaults.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let bytes = if bytes.iter().all(u8::is_ascii_whitespace) { &b"{}"[..] } else { bytes };
        let cfg: ServiceConfig =
            serde_json::from_slice(bytes).map_err(|e| format!("invalid service configuration: {e}"))?;
        if cfg.initial_backoff_ms == 0 || cfg.max_backoff_ms < cfg.initial_backoff_ms {
            return Err("invalid service configuration: need 0 < initial_backoff_ms <= max_backoff_ms".to_owned());
        }
        if cfg.heartbeat_secs > MAX_HEARTBEAT_SECS {
            return Err(format!(
                "invalid service configuration: heartbeat_secs must be at most {MAX_HEARTBEAT_SECS} (0 disables)"
            ));
        }
        Ok(cfg)
    }
}

/// Exponential backoff with jitter: each delay is drawn from [d/2, d], d doubling up to a cap,
/// so a fleet of Envoys does not reconnect in lock-step after a control plane restart.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: u64,
    max: u64,
    current: u64,
}

impl Backoff {
    pub fn new(initial_ms: u64, max_ms: u64) -> Self {
        Backoff { initial: initial_ms, max: max_ms.max(initial_ms), current: initial_ms }
    }

    /// The next delay in milliseconds; `random` is any well-mixed number.
    pub fn next(&mut self, random: u64) -> u64 {
        let d = self.current;
        self.current = self.current.saturating_mul(2).min(self.max);
        let half = d / 2;
        half + random % (d - half + 1)
    }

    /// After a healthy stream: start over from the initial delay.
    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

/// Whether a stream that asked for heartbeats every `heartbeat_secs` has been silent for three
/// of them (one lost or late heartbeat is tolerated).
pub fn stream_silent(heartbeat_secs: u32, last_message_ms: u64, now_ms: u64) -> bool {
    heartbeat_secs != 0 && now_ms.saturating_sub(last_message_ms) > u64::from(heartbeat_secs).saturating_mul(3000)
}

/// State of the singleton.
pub struct Service {
    config: ServiceConfig,
    token: Option<String>,
    stream: Option<u32>,
    /// Wall-clock milliseconds before which no reconnect is attempted.
    retry_at_ms: u64,
    backoff: Backoff,
    /// Version last published to shared data (sent as `known_version` on reconnect).
    published: u64,
    /// Connection attempts that failed in a row; repeated failures are logged sparingly.
    failures: u32,
    /// Wall-clock milliseconds of the stream's opening or last message (heartbeats included).
    last_message_ms: u64,
    random_state: u64,
    /// Usage batches to the control plane, on the same cluster and token as the watch.
    reporter: usage::Reporter,
    /// What this Envoy did with the last snapshot, reported to the control plane.
    status: StatusReporter,
    /// Set when a stream opens: the status is reported again once it is accepted.
    report_on_connect: bool,
}

impl Service {
    pub fn new(config: ServiceConfig, token: Option<String>) -> Self {
        let backoff = Backoff::new(config.initial_backoff_ms, config.max_backoff_ms);
        let reporter = usage::Reporter::new(
            config.cluster.clone(),
            &config.node_id,
            now_ms(),
            config.initial_backoff_ms,
            config.max_backoff_ms,
        );
        let status = StatusReporter::new(config.cluster.clone(), config.node_id.clone());
        Service {
            config,
            token,
            stream: None,
            retry_at_ms: 0,
            backoff,
            published: 0,
            failures: 0,
            last_message_ms: 0,
            random_state: 0,
            status,
            report_on_connect: false,
            reporter,
        }
    }

    /// Workers enqueued usage.
    pub fn on_queue_ready(&mut self) {
        self.reporter.drain();
    }

    /// A `ReportUsage` call finished.
    pub fn on_call_response(&mut self, token: u32, status: u32, size: usize) {
        if self.status.owns(token) {
            self.status.on_response(status, self.token.as_deref());
            return;
        }
        if self.reporter.owns(token) {
            let random = self.random();
            self.reporter.on_response(token, status, size, now_ms(), host::now().0, random);
        }
    }

    /// Seeds shared data, resumes from what is already published, starts ticking. The stream is
    /// opened on the first tick: the cluster manager may not be ready during configuration.
    pub fn start(&mut self) -> bool {
        snapshot::seed();
        self.reporter.start();
        self.published = snapshot::published_version();
        if self.token.is_none() {
            log::warn!("ai_gateway_service: no watch token (token_env unset or empty); the control plane will refuse the stream");
        }
        if let Err(status) = hostcalls::set_tick_period(TICK) {
            log::error!("ai_gateway_service: cannot set the tick period: {status:?}");
            return false;
        }
        true
    }

    pub fn on_tick(&mut self) {
        let now = now_ms();
        let random = self.random();
        self.reporter.on_tick(now, self.token.as_deref(), random);
        match self.stream {
            None if now >= self.retry_at_ms => self.connect(),
            Some(token) if stream_silent(self.config.heartbeat_secs, self.last_message_ms, now) => {
                log::warn!(
                    "ai_gateway_service: no message on the watch stream for {} ms (heartbeat every {} s); reconnecting",
                    now.saturating_sub(self.last_message_ms),
                    self.config.heartbeat_secs
                );
                let _ = hostcalls::cancel_grpc_stream(token);
                self.stream = None;
                self.schedule_retry();
            }
            _ => {}
        }
    }

    fn connect(&mut self) {
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let metadata: Vec<(&str, &[u8])> = match &auth {
            Some(v) => vec![("authorization", v.as_bytes())],
            None => Vec::new(),
        };
        match hostcalls::open_grpc_stream(&self.config.cluster, GRPC_SERVICE, GRPC_METHOD, metadata) {
            Ok(token) => {
                let request =
                    proto::encode_watch_request(&self.config.node_id, self.published, self.config.heartbeat_secs);
                // Server streaming: one request, then half-close; the response stream stays open.
                if let Err(status) = hostcalls::send_grpc_stream_message(token, Some(&request), true) {
                    log::warn!("ai_gateway_service: could not send the watch request: {status:?}");
                    let _ = hostcalls::cancel_grpc_stream(token);
                    self.schedule_retry();
                    return;
                }
                log::debug!("ai_gateway_service: watching {} (known version {})", self.config.cluster, self.published);
                self.stream = Some(token);
                self.last_message_ms = now_ms();
                self.report_on_connect = true;
            }
            Err(status) => {
                log::warn!(
                    "ai_gateway_service: cannot open the watch stream on cluster {}: {status:?}",
                    self.config.cluster
                );
                self.schedule_retry();
            }
        }
    }

    fn schedule_retry(&mut self) {
        let random = self.random();
        let delay = self.backoff.next(random);
        self.retry_at_ms = now_ms().saturating_add(delay);
        log::debug!("ai_gateway_service: reconnecting in {delay} ms");
    }

    fn random(&mut self) -> u64 {
        self.random_state = self.random_state.wrapping_add(1);
        crate::splitmix64((host::now().1 as u64) ^ self.random_state.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// Response headers: the control plane accepted the stream (it may have nothing to send
    /// yet, when this Envoy already has its current version).
    pub fn on_connected(&mut self, token: u32) {
        if self.stream != Some(token) {
            return;
        }
        self.backoff.reset();
        // A control plane that restarted knows nothing of this Envoy until it reports again,
        // and sends no snapshot when the version is unchanged.
        if std::mem::take(&mut self.report_on_connect) {
            self.status.resend(self.token.as_deref());
        }
        if self.failures > 0 {
            log::info!(
                "ai_gateway_service: watch stream to {} connected after {} failed attempts",
                self.config.cluster,
                self.failures
            );
        }
        self.failures = 0;
    }

    pub fn on_message(&mut self, token: u32, size: usize) {
        if self.stream != Some(token) {
            return;
        }
        let frame = match hostcalls::get_buffer(BufferType::GrpcReceiveBuffer, 0, size) {
            Ok(Some(b)) => b,
            _ => {
                log::warn!("ai_gateway_service: empty watch message");
                return;
            }
        };
        // Healthy stream: the next disconnect starts again from the shortest delay.
        self.on_connected(token);
        self.last_message_ms = now_ms();
        if let Some(replicas) = proto::snapshot_message_replicas(&frame) {
            crate::ratelimit::set_replicas(replicas);
        }
        let msg = match proto::decode_snapshot_message(&frame) {
            Ok(m) => m,
            Err(e) => {
                log::error!("ai_gateway_service: undecodable watch message ({size} bytes): {e}");
                return;
            }
        };
        if msg.is_heartbeat() {
            // Liveness only; nothing to parse or publish.
            if msg.version != self.published {
                log::debug!(
                    "ai_gateway_service: heartbeat at version {} while serving {}",
                    msg.version,
                    self.published
                );
            }
            return;
        }
        if msg.version == self.published {
            return;
        }
        // Validate before publishing, so workers never see a snapshot they cannot load. Invalid
        // objects are left out (workers leave out the same ones), never the whole snapshot.
        let started = host::now().1;
        let parsed = Snapshot::from_json_pruned(msg.snapshot_json).map_err(|e| format!("invalid snapshot JSON: {e}"));
        let budgeted: BTreeMap<String, BudgetPeriod> = match &parsed {
            Ok((snap, _)) => snap.keys.iter().filter_map(|k| k.budget.map(|b| (k.caller(), b.period))).collect(),
            Err(_) => BTreeMap::new(),
        };
        let rate_limited: Vec<String> = match &parsed {
            Ok((snap, _)) => snap.keys.iter().filter(|k| !k.limits().is_unlimited()).map(|k| k.caller()).collect(),
            Err(_) => Vec::new(),
        };
        let shared = match parsed.and_then(|(snap, rejected)| Shared::from_pruned(snap, rejected, Default::default())) {
            Ok(s) => s,
            Err(e) => {
                log::error!("ai_gateway_service: refusing snapshot version {}: {e}", msg.version);
                return;
            }
        };
        if shared.version != msg.version {
            log::error!(
                "ai_gateway_service: refusing snapshot: envelope version {} but snapshot version {}",
                msg.version,
                shared.version
            );
            return;
        }
        if msg.version < self.published {
            log::warn!(
                "ai_gateway_service: snapshot version went back from {} to {} (control plane store replaced?)",
                self.published,
                msg.version
            );
        }
        // Before the workers can see a budgeted or rate-limited key: its entries must exist, since the
        // first write of a shared-data key cannot be conditional (ADR 0008).
        for caller in budgeted.keys() {
            crate::budget::seed(caller);
        }
        for caller in &rate_limited {
            crate::ratelimit::seed(caller);
        }
        // Their spend is asked of the control plane once now, then kept fresh only for callers
        // this Envoy serves (fewer reads than refreshing every budgeted key of the fleet).
        self.reporter.set_budgeted_keys(budgeted);
        match snapshot::publish(msg.version, msg.snapshot_json) {
            Ok(()) => {
                let micros = host::now().1.saturating_sub(started) / 1000;
                log::info!(
                    "ai_gateway_service: published snapshot version {} ({} bytes, validated and stored in {micros} us)",
                    msg.version,
                    msg.snapshot_json.len()
                );
                self.published = msg.version;
                for invalid in &shared.rejected {
                    log::error!("ai_gateway_service: snapshot version {}: left out {invalid}", msg.version);
                }
                self.status.set(msg.version, &shared.rejected);
                self.status.send(self.token.as_deref());
            }
            Err(e) => log::error!("ai_gateway_service: could not publish snapshot {}: {e}", msg.version),
        }
    }

    pub fn on_close(&mut self, token: u32, status: u32) {
        if self.stream != Some(token) {
            return;
        }
        self.stream = None;
        let message = hostcalls::get_grpc_status().ok().and_then(|(_, m)| m).unwrap_or_default();
        // Only the status; the message comes from the control plane and never holds secrets,
        // but keep it short in case a proxy in between sends a page.
        let shown: String = message.chars().take(200).collect();
        // The first failure and every 20th after it: a control plane down for an hour must not
        // flood the log, but must stay visible.
        if self.failures.is_multiple_of(20) {
            log::warn!(
                "ai_gateway_service: watch stream closed (grpc status {status}: {shown}); serving version {} until it reconnects ({} failed attempts)",
                self.published,
                self.failures
            );
        } else {
            log::debug!("ai_gateway_service: watch stream closed (grpc status {status}: {shown})");
        }
        self.failures = self.failures.saturating_add(1);
        self.schedule_retry();
    }
}

/// gRPC method that takes a [`StatusReporter`]'s report (control-plane/proto/config.proto).
pub const STATUS_METHOD: &str = "ReportStatus";
/// How long a status report may take.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);
/// gRPC status UNIMPLEMENTED: a control plane older than `ReportStatus`.
const GRPC_UNIMPLEMENTED: u32 = 12;

/// Reports to the control plane which objects of the published snapshot this Envoy left out as
/// invalid (an empty list clears an earlier report). Best effort: sent after each published
/// snapshot and each time the watch stream is accepted; a report recorded while another is in
/// flight goes out when that one is answered, a failed one waits for the next of those events.
pub struct StatusReporter {
    cluster: String,
    node_id: String,
    /// The encoded `NodeStatus` of the last published snapshot; `None` before the first one.
    message: Option<Vec<u8>>,
    /// `message` has not been delivered (or changed since it was sent).
    unsent: bool,
    call: Option<u32>,
    /// The control plane does not offer `ReportStatus`: stop asking.
    unsupported: bool,
}

impl StatusReporter {
    pub fn new(cluster: String, node_id: String) -> Self {
        StatusReporter { cluster, node_id, message: None, unsent: false, call: None, unsupported: false }
    }

    /// Records the outcome of publishing `version`.
    pub fn set(&mut self, version: u64, rejected: &[gateway_core::validate::Invalid]) {
        // Bounded: a report is a diagnostic, not a copy of the snapshot.
        let shown: Vec<_> = rejected.iter().take(MAX_REPORTED).collect();
        let json = serde_json::to_vec(&shown).unwrap_or_default();
        self.message = Some(proto::encode_node_status(&self.node_id, version, &json));
        self.unsent = true;
    }

    /// Sends the last recorded report again (a control plane that restarted knows nothing).
    pub fn resend(&mut self, token: Option<&str>) {
        self.unsent = self.message.is_some();
        self.send(token);
    }

    /// Sends the last recorded report if it was not delivered, unless a call is in flight.
    pub fn send(&mut self, token: Option<&str>) {
        let Some(message) = &self.message else { return };
        if self.unsupported || self.call.is_some() || !self.unsent {
            return;
        }
        let auth = token.map(|t| format!("Bearer {t}"));
        let metadata: Vec<(&str, &[u8])> = match &auth {
            Some(v) => vec![("authorization", v.as_bytes())],
            None => Vec::new(),
        };
        match hostcalls::dispatch_grpc_call(
            &self.cluster,
            GRPC_SERVICE,
            STATUS_METHOD,
            metadata,
            Some(message),
            STATUS_TIMEOUT,
        ) {
            Ok(call) => {
                self.call = Some(call);
                self.unsent = false;
            }
            Err(status) => log::debug!("ai_gateway_service: cannot call {STATUS_METHOD}: {status:?}"),
        }
    }

    /// Whether `call` is this reporter's.
    pub fn owns(&self, call: u32) -> bool {
        self.call == Some(call)
    }

    /// The control plane answered `status`; a report recorded meanwhile goes out now.
    pub fn on_response(&mut self, status: u32, token: Option<&str>) {
        self.call = None;
        match status {
            0 => self.send(token),
            GRPC_UNIMPLEMENTED => {
                self.unsupported = true;
                log::info!("ai_gateway_service: the control plane does not take {STATUS_METHOD}; rejected objects are only logged here");
            }
            _ => {
                self.unsent = true;
                log::debug!("ai_gateway_service: {STATUS_METHOD} failed (grpc status {status}); sent again after the next snapshot or reconnect");
            }
        }
    }
}

/// Most rejected objects named in one status report.
const MAX_REPORTED: usize = 100;

fn now_ms() -> u64 {
    u64::try_from(host::now().1 / 1_000_000).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_resets() {
        let mut b = Backoff::new(100, 1000);
        let mut bounds = Vec::new();
        for r in [0u64, u64::MAX, 7, 12345, 999_999] {
            bounds.push(b.next(r));
        }
        // d = 100, 200, 400, 800, 1000: each delay within [d/2, d].
        for (delay, d) in bounds.iter().zip([100u64, 200, 400, 800, 1000]) {
            assert!(*delay >= d / 2 && *delay <= d, "{delay} not in [{}, {d}]", d / 2);
        }
        assert_eq!(b.next(0), 500);
        b.reset();
        assert!(b.next(u64::MAX) <= 100);
    }

    #[test]
    fn service_config_defaults_and_validation() {
        let c = ServiceConfig::from_json(b"").unwrap();
        assert_eq!(c.cluster, "ai_gateway_control_plane");
        assert_eq!((c.initial_backoff_ms, c.max_backoff_ms), (250, 5000));
        let c =
            ServiceConfig::from_json(br#"{"token_env":"T","node_id":"n","initial_backoff_ms":10,"max_backoff_ms":20}"#)
                .unwrap();
        assert_eq!(c.token_env.as_deref(), Some("T"));
        assert!(ServiceConfig::from_json(br#"{"initial_backoff_ms":0}"#).is_err());
        assert!(ServiceConfig::from_json(br#"{"initial_backoff_ms":10,"max_backoff_ms":5}"#).is_err());
        assert!(ServiceConfig::from_json(br#"{"unknown":1}"#).is_err());
        assert_eq!(ServiceConfig::from_json(b"").unwrap().heartbeat_secs, 10);
        assert_eq!(ServiceConfig::from_json(br#"{"heartbeat_secs":0}"#).unwrap().heartbeat_secs, 0);
        assert!(ServiceConfig::from_json(br#"{"heartbeat_secs":3601}"#).is_err());
    }

    #[test]
    fn silence_means_three_missed_heartbeats() {
        assert!(!stream_silent(10, 1_000, 31_000), "exactly three intervals is still fine");
        assert!(stream_silent(10, 1_000, 31_001));
        assert!(!stream_silent(0, 0, u64::MAX), "disabled");
        // A clock that went backwards is not silence.
        assert!(!stream_silent(10, 50_000, 1_000));
        assert!(stream_silent(u32::MAX, 0, u64::MAX));
    }
}
