//! gRPC `Watch`: streams every new snapshot to each subscribed Envoy (its singleton Wasm service).
//!
//! The protocol is `control-plane/proto/config.proto`. Messages are hand-written prost structs
//! and the service is wired by hand (what tonic-build would generate), so the build needs neither
//! protoc nor a build script. The snapshot travels as JSON bytes inside the message: the filter
//! already parses the gateway-core schema with serde, and only has to decode two protobuf fields.
//!
//! A subscriber that asks for heartbeats (`heartbeat_secs`) gets its current version with an
//! empty snapshot after that many seconds without a message, so it can tell a quiet stream from
//! a hung one. Subscribers that do not ask get none (older filters would try to parse them).
//!
//! `ReportUsage` (unary, same port and token) takes a filter's usage batch as JSON
//! (`gateway_core::usage::UsageBatch`) and answers with a `UsageAck` as JSON: INVALID_ARGUMENT
//! for a batch that can never be applied (the filter drops it), UNAVAILABLE when the store or the
//! first snapshot is not there (the filter resends the same batch later).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::{http, BoxFuture, BoxStream, Context, Poll, Service, StdError};
use tonic::{Request, Response, Status};

use crate::snapshot::SnapshotRx;
use crate::store::{now_unix, Store};
use crate::usage::{ingest, IngestError};

/// Full gRPC path of `Watch`.
pub const WATCH_PATH: &str = "/aigateway.v1.ConfigService/Watch";
/// Full gRPC path of `ReportUsage`.
pub const REPORT_USAGE_PATH: &str = "/aigateway.v1.ConfigService/ReportUsage";
/// Largest accepted `UsageReport` (a filter's pending rows after a long outage can be large).
pub const MAX_USAGE_REPORT_BYTES: usize = 16 * 1024 * 1024;

/// A filter's usage batch.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UsageReport {
    /// `gateway_core::usage::UsageBatch` as JSON.
    #[prost(bytes = "vec", tag = "1")]
    pub batch_json: Vec<u8>,
}

/// The answer to a [`UsageReport`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct UsageAckMessage {
    /// `gateway_core::usage::UsageAck` as JSON.
    #[prost(bytes = "vec", tag = "1")]
    pub ack_json: Vec<u8>,
}

/// Full gRPC path of `ReportStatus`.
pub const REPORT_STATUS_PATH: &str = "/aigateway.v1.ConfigService/ReportStatus";
/// Largest accepted `NodeStatus`.
pub const MAX_NODE_STATUS_BYTES: usize = 256 * 1024;
/// Most Envoys remembered; the oldest report goes first.
const MAX_NODES: usize = 10_000;
/// Most rejected objects kept per Envoy.
const MAX_REJECTED_PER_NODE: usize = 100;

/// What one Envoy did with the last snapshot it received (`ReportStatus`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeStatus {
    /// The Envoy's node id (its Watch `node_id`).
    #[prost(string, tag = "1")]
    pub node_id: String,
    /// The snapshot version it published to its workers.
    #[prost(uint64, tag = "2")]
    pub version: u64,
    /// JSON array of `gateway_core::validate::Invalid`: the objects it left out; empty: none.
    #[prost(bytes = "vec", tag = "3")]
    pub rejected_json: Vec<u8>,
}

/// The (empty) answer to a [`NodeStatus`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeStatusAck {}

/// One Envoy's last report, as `GET /v1/snapshot` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct NodeReport {
    /// The Envoy's node id.
    pub node: String,
    /// The snapshot version it published to its workers.
    pub version: u64,
    pub rejected: Vec<gateway_core::validate::Invalid>,
    /// Unix seconds.
    pub reported_at: u64,
}

/// The last report of each Envoy that reported to this control plane process (each replica
/// behind a load balancer knows the Envoys whose calls it received).
#[derive(Debug, Default)]
pub struct NodeBoard {
    nodes: std::sync::Mutex<std::collections::BTreeMap<String, NodeReport>>,
}

impl NodeBoard {
    /// Records a report, replacing the node's previous one.
    pub fn record(&self, report: NodeReport) {
        let Ok(mut nodes) = self.nodes.lock() else { return };
        if nodes.len() >= MAX_NODES && !nodes.contains_key(&report.node) {
            let oldest = nodes.values().min_by_key(|r| r.reported_at).map(|r| r.node.clone());
            if let Some(o) = oldest {
                nodes.remove(&o);
            }
        }
        nodes.insert(report.node.clone(), report);
    }

    /// Every node's last report, by node id.
    pub fn list(&self) -> Vec<NodeReport> {
        self.nodes.lock().map(|n| n.values().cloned().collect()).unwrap_or_default()
    }
}

/// What a subscriber sends once when it connects.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WatchRequest {
    /// Free-form identity of the Envoy (for logs).
    #[prost(string, tag = "1")]
    pub node_id: String,
    /// Version the subscriber already has (0 for none); the current snapshot is sent only if it
    /// differs, then every newer one.
    #[prost(uint64, tag = "2")]
    pub known_version: u64,
    /// Seconds of silence after which the server sends a heartbeat (0: never). Clamped to
    /// [`MIN_HEARTBEAT_SECS`, `MAX_HEARTBEAT_SECS`].
    #[prost(uint32, tag = "3")]
    pub heartbeat_secs: u32,
}

/// Bounds of a requested heartbeat interval: no busier than one a second, and frequent enough
/// that a hung stream is noticed within the hour.
pub const MIN_HEARTBEAT_SECS: u32 = 1;
pub const MAX_HEARTBEAT_SECS: u32 = 3600;

/// One complete snapshot, or a heartbeat: the subscriber's current version with an empty
/// `snapshot_json`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotMessage {
    #[prost(uint64, tag = "1")]
    pub version: u64,
    /// `gateway_core::snapshot::Snapshot` as JSON. Contains resolved provider secrets. Shared
    /// with the builder and every other subscriber, not copied.
    #[prost(bytes = "bytes", tag = "2")]
    pub snapshot_json: Bytes,
    /// Envoys currently watching this control plane, this one included (ADR 0008): each enforces
    /// `ceil(limit / replicas)` of a caller's rpm and tpm. Sent on every message; a change is
    /// sent at once to subscribers that take heartbeats. 0 (absent): unknown, the whole limit.
    #[prost(uint32, tag = "3")]
    pub replicas: u32,
}

/// The `ConfigService` gRPC server.
#[derive(Clone)]
pub struct ConfigService {
    snapshots: SnapshotRx,
    /// SHA-256 of the tokens allowed to watch: the stream carries provider secrets.
    tokens: Arc<Vec<[u8; 32]>>,
    /// Where `ReportUsage` records usage; `None`: the method is not offered.
    usage: Option<Arc<dyn Store>>,
    /// Open Watch streams, published to every subscriber as its rate-limit share divisor.
    replicas: Arc<tokio::sync::watch::Sender<u32>>,
    /// Where `ReportStatus` records what each Envoy left out.
    nodes: Arc<NodeBoard>,
}

impl ConfigService {
    pub fn new(snapshots: SnapshotRx, tokens: &[String]) -> Self {
        let tokens = tokens.iter().map(|t| Sha256::digest(t.as_bytes()).into()).collect();
        let (replicas, _) = tokio::sync::watch::channel(0);
        ConfigService {
            snapshots,
            tokens: Arc::new(tokens),
            usage: None,
            replicas: Arc::new(replicas),
            nodes: Arc::default(),
        }
    }

    /// Records `ReportStatus` calls in `board` (shared with the REST API's `/v1/snapshot`).
    pub fn with_node_board(mut self, board: Arc<NodeBoard>) -> Self {
        self.nodes = board;
        self
    }

    fn report_status(&self, req: Request<NodeStatus>) -> Result<Response<NodeStatusAck>, Status> {
        if !self.authorized(req.metadata()) {
            return Err(Status::unauthenticated("a valid watch token is required"));
        }
        let NodeStatus { node_id, version, rejected_json } = req.into_inner();
        let mut rejected: Vec<gateway_core::validate::Invalid> = if rejected_json.is_empty() {
            Vec::new()
        } else {
            serde_json::from_slice(&rejected_json)
                .map_err(|e| Status::invalid_argument(format!("rejected_json is not a list of rejections: {e}")))?
        };
        rejected.truncate(MAX_REJECTED_PER_NODE);
        for r in &mut rejected {
            // Shown to operators: escaped and bounded like everything else the validator says.
            r.name = gateway_core::validate::shown(&r.name);
            r.field = gateway_core::validate::shown(&r.field);
            r.reason = r.reason.chars().take(500).flat_map(char::escape_default).collect();
        }
        let node = gateway_core::validate::shown(&node_id);
        if rejected.is_empty() {
            tracing::debug!(%node, version, "node applied the whole snapshot");
        } else {
            tracing::warn!(%node, version, rejected = rejected.len(), "node left objects of the snapshot out as invalid");
        }
        self.nodes.record(NodeReport { node, version, rejected, reported_at: now_unix() });
        Ok(Response::new(NodeStatusAck {}))
    }

    /// Offers `ReportUsage`, recording into `store`.
    pub fn with_usage_store(mut self, store: Arc<dyn Store>) -> Self {
        self.usage = Some(store);
        self
    }

    fn authorized(&self, metadata: &tonic::metadata::MetadataMap) -> bool {
        let Some(token) =
            metadata.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let d: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        self.tokens.iter().any(|k| k.iter().zip(d.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0)
    }

    fn watch(&self, req: Request<WatchRequest>) -> Result<Response<BoxStream<SnapshotMessage>>, Status> {
        if !self.authorized(req.metadata()) {
            return Err(Status::unauthenticated("a valid watch token is required"));
        }
        let WatchRequest { node_id, known_version, heartbeat_secs } = req.into_inner();
        let heartbeat = (heartbeat_secs > 0)
            .then(|| Duration::from_secs(heartbeat_secs.clamp(MIN_HEARTBEAT_SECS, MAX_HEARTBEAT_SECS).into()));
        tracing::info!(node = %node_id, known_version, heartbeat_secs, "watch subscriber connected");
        // One message in flight per subscriber: while a slow subscriber drains it, newer
        // snapshots replace each other in the watch channel and it gets the newest next.
        let (tx, rx) = mpsc::channel(1);
        let subscriber = Subscriber::new(self.replicas.clone());
        tokio::spawn(feed(self.snapshots.clone(), known_version, heartbeat, tx, subscriber));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

impl ConfigService {
    async fn report_usage(&self, req: Request<UsageReport>) -> Result<Response<UsageAckMessage>, Status> {
        if !self.authorized(req.metadata()) {
            return Err(Status::unauthenticated("a valid watch token is required"));
        }
        let Some(store) = self.usage.clone() else {
            return Err(Status::unimplemented("usage accounting is not enabled on this control plane"));
        };
        let batch: gateway_core::usage::UsageBatch = serde_json::from_slice(&req.into_inner().batch_json)
            .map_err(|e| Status::invalid_argument(format!("batch_json is not a UsageBatch: {e}")))?;
        // Rows are priced with the table the filters have now (the published snapshot), so the
        // control plane and the filters compute the same cost.
        let prices = {
            let snap = self.snapshots.borrow().clone();
            let snap = snap.ok_or_else(|| Status::unavailable("no snapshot built yet"))?;
            gateway_core::pricing::PriceTable::new(&snap.snapshot.config.prices).map_err(|e| {
                tracing::error!(error = %e, "published price table does not validate");
                Status::unavailable("the price table is invalid")
            })?
        };
        match ingest(store.as_ref(), &batch, &prices, now_unix()).await {
            Ok(ack) => {
                tracing::debug!(batch = %ack.batch_id, rows = batch.rows.len(), duplicate = ack.duplicate, "usage batch");
                let ack_json = serde_json::to_vec(&ack).map_err(|e| Status::internal(e.to_string()))?;
                Ok(Response::new(UsageAckMessage { ack_json }))
            }
            Err(IngestError::Invalid(e)) => {
                tracing::warn!(batch = %batch.batch_id, error = %e, "usage batch refused");
                Err(Status::invalid_argument(e.to_string()))
            }
            Err(IngestError::Store(e)) => {
                tracing::warn!(batch = %batch.batch_id, error = %e, "usage batch not recorded; the filter will resend it");
                Err(Status::unavailable("the store is unavailable; resend the same batch later"))
            }
        }
    }
}

struct ReportUsageMethod(ConfigService);

impl tonic::server::UnaryService<UsageReport> for ReportUsageMethod {
    type Response = UsageAckMessage;
    type Future = BoxFuture<Response<UsageAckMessage>, Status>;

    fn call(&mut self, req: Request<UsageReport>) -> Self::Future {
        let svc = self.0.clone();
        Box::pin(async move { svc.report_usage(req).await })
    }
}

/// One open Watch stream, counted in the service's replica count while it lives. This counts the
/// streams of this control-plane process: behind a load balancer with several control-plane tasks
/// each counts only its own, so the count is low and the shares generous, which never exceeds the
/// bound without shares (N x limit); a stream of a dead Envoy counts until its connection closes.
struct Subscriber {
    replicas: Arc<tokio::sync::watch::Sender<u32>>,
}

impl Subscriber {
    fn new(replicas: Arc<tokio::sync::watch::Sender<u32>>) -> Self {
        replicas.send_modify(|n| *n = n.saturating_add(1));
        Subscriber { replicas }
    }

    fn rx(&self) -> tokio::sync::watch::Receiver<u32> {
        self.replicas.subscribe()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.replicas.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Sends `snapshots` to one subscriber until it goes away: each version it does not have, and a
/// heartbeat after `heartbeat` without a message. Both carry the current replica count, so a
/// change reaches a subscriber within one heartbeat interval (messages are not sent just for it:
/// the heartbeat contract stays "after that much silence").
async fn feed(
    mut snapshots: SnapshotRx,
    mut last: u64,
    heartbeat: Option<Duration>,
    tx: mpsc::Sender<Result<SnapshotMessage, Status>>,
    subscriber: Subscriber,
) {
    let replicas = subscriber.rx();
    // The first pass sends the current snapshot if the subscriber's version differs.
    snapshots.mark_changed();
    loop {
        let wait_heartbeat = async {
            match heartbeat {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let msg = tokio::select! {
            changed = snapshots.changed() => {
                if changed.is_err() {
                    return; // builder gone: the server is shutting down
                }
                let current = snapshots.borrow_and_update().clone();
                match current {
                    Some(snap) if snap.snapshot.version != last => {
                        last = snap.snapshot.version;
                        SnapshotMessage { version: last, snapshot_json: snap.json.clone(), replicas: *replicas.borrow() }
                    }
                    _ => continue,
                }
            }
            _ = wait_heartbeat => SnapshotMessage { version: last, snapshot_json: Bytes::new(), replicas: *replicas.borrow() },
            _ = tx.closed() => return,
        };
        if tx.send(Ok(msg)).await.is_err() {
            return;
        }
    }
}

struct ReportStatusMethod(ConfigService);

impl tonic::server::UnaryService<NodeStatus> for ReportStatusMethod {
    type Response = NodeStatusAck;
    type Future = BoxFuture<Response<NodeStatusAck>, Status>;

    fn call(&mut self, req: Request<NodeStatus>) -> Self::Future {
        let result = self.0.report_status(req);
        Box::pin(async move { result })
    }
}

struct WatchMethod(ConfigService);

impl tonic::server::ServerStreamingService<WatchRequest> for WatchMethod {
    type Response = SnapshotMessage;
    type ResponseStream = BoxStream<SnapshotMessage>;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, req: Request<WatchRequest>) -> Self::Future {
        let result = self.0.watch(req);
        Box::pin(async move { result })
    }
}

impl<B> Service<http::Request<B>> for ConfigService
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() == WATCH_PATH {
            let svc = self.clone();
            return Box::pin(async move {
                let mut grpc =
                    tonic::server::Grpc::new(tonic_prost::ProstCodec::<SnapshotMessage, WatchRequest>::default());
                Ok(grpc.server_streaming(WatchMethod(svc), req).await)
            });
        }
        if req.uri().path() == REPORT_USAGE_PATH {
            let svc = self.clone();
            return Box::pin(async move {
                let mut grpc =
                    tonic::server::Grpc::new(tonic_prost::ProstCodec::<UsageAckMessage, UsageReport>::default())
                        .max_decoding_message_size(MAX_USAGE_REPORT_BYTES);
                Ok(grpc.unary(ReportUsageMethod(svc), req).await)
            });
        }
        if req.uri().path() == REPORT_STATUS_PATH {
            let svc = self.clone();
            return Box::pin(async move {
                let mut grpc =
                    tonic::server::Grpc::new(tonic_prost::ProstCodec::<NodeStatusAck, NodeStatus>::default())
                        .max_decoding_message_size(MAX_NODE_STATUS_BYTES);
                Ok(grpc.unary(ReportStatusMethod(svc), req).await)
            });
        }
        Box::pin(async move { Ok(Status::unimplemented("no such method").into_http()) })
    }
}

impl tonic::server::NamedService for ConfigService {
    const NAME: &'static str = "aigateway.v1.ConfigService";
}

/// Serves `ConfigService` on `listener` (HTTP/2 cleartext, as Envoy's gRPC client expects).
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: ConfigService,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(listen = ?addr, "gRPC Watch listening");
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), shutdown)
        .await
        .map_err(|e| e.to_string())
}
