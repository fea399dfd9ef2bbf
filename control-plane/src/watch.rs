//! gRPC `Watch`: streams every new snapshot to each subscribed Envoy (its singleton Wasm service).
//!
//! The protocol is `control-plane/proto/config.proto`. Messages are hand-written prost structs
//! and the service is wired by hand (what tonic-build would generate), so the build needs neither
//! protoc nor a build script. The snapshot travels as JSON bytes inside the message: the filter
//! already parses the gateway-core schema with serde, and only has to decode two protobuf fields.

use std::net::SocketAddr;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio_stream::wrappers::WatchStream;
use tokio_stream::StreamExt;
use tonic::codegen::{http, BoxFuture, BoxStream, Context, Poll, Service, StdError};
use tonic::{Request, Response, Status};

use crate::snapshot::SnapshotRx;

/// Full gRPC path of the one method.
pub const WATCH_PATH: &str = "/aigateway.v1.ConfigService/Watch";

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
}

/// One complete snapshot.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotMessage {
    #[prost(uint64, tag = "1")]
    pub version: u64,
    /// `gateway_core::snapshot::Snapshot` as JSON. Contains resolved provider secrets.
    #[prost(bytes = "vec", tag = "2")]
    pub snapshot_json: Vec<u8>,
}

/// The `ConfigService` gRPC server.
#[derive(Clone)]
pub struct ConfigService {
    snapshots: SnapshotRx,
    /// SHA-256 of the tokens allowed to watch: the stream carries provider secrets.
    tokens: Arc<Vec<[u8; 32]>>,
}

impl ConfigService {
    pub fn new(snapshots: SnapshotRx, tokens: &[String]) -> Self {
        let tokens = tokens.iter().map(|t| Sha256::digest(t.as_bytes()).into()).collect();
        ConfigService { snapshots, tokens: Arc::new(tokens) }
    }

    fn authorized(&self, req: &Request<WatchRequest>) -> bool {
        let Some(token) = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let d: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        self.tokens.iter().any(|k| k.iter().zip(d.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0)
    }

    fn watch(&self, req: Request<WatchRequest>) -> Result<Response<BoxStream<SnapshotMessage>>, Status> {
        if !self.authorized(&req) {
            return Err(Status::unauthenticated("a valid watch token is required"));
        }
        let WatchRequest { node_id, known_version } = req.into_inner();
        tracing::info!(node = %node_id, known_version, "watch subscriber connected");
        let mut last = known_version;
        // A watch channel keeps only the latest value: a slow subscriber skips intermediate
        // snapshots and gets the newest, which is all a config consumer needs.
        let stream = WatchStream::new(self.snapshots.clone()).filter_map(move |snap| {
            let snap = snap?;
            let v = snap.snapshot.version;
            if v == last {
                return None;
            }
            last = v;
            Some(Ok(SnapshotMessage { version: v, snapshot_json: snap.json.clone() }))
        });
        Ok(Response::new(Box::pin(stream)))
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
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::<SnapshotMessage, WatchRequest>::default());
                Ok(grpc.server_streaming(WatchMethod(svc), req).await)
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
