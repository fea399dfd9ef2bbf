//! gRPC Watch: authentication, initial snapshot, and a new version after every write.

use std::sync::Arc;
use std::time::{Duration, Instant};

use control_plane::audit::AuditContext;
use control_plane::snapshot::{spawn, spawn_builder, BuilderOptions, EnvResolver};
use control_plane::store::embedded::EmbeddedStore;
use control_plane::store::{Kind, Store};
use control_plane::watch::{serve, ConfigService, SnapshotMessage, WatchRequest, WATCH_PATH};
use gateway_core::snapshot::Snapshot;
use serde_json::json;
use tokio::sync::Notify;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::Streaming;

const TOKEN: &str = "watch-token-for-tests";

async fn subscribe(
    addr: std::net::SocketAddr,
    token: Option<&str>,
    known: u64,
) -> Result<Streaming<SnapshotMessage>, tonic::Status> {
    subscribe_with(addr, token, known, 0).await
}

async fn subscribe_with(
    addr: std::net::SocketAddr,
    token: Option<&str>,
    known: u64,
    heartbeat_secs: u32,
) -> Result<Streaming<SnapshotMessage>, tonic::Status> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.unwrap();
    let mut req =
        tonic::Request::new(WatchRequest { node_id: "test-envoy".into(), known_version: known, heartbeat_secs });
    if let Some(t) = token {
        req.metadata_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    let codec = tonic_prost::ProstCodec::<WatchRequest, SnapshotMessage>::default();
    client.server_streaming(req, PathAndQuery::from_static(WATCH_PATH), codec).await.map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_a_new_snapshot_after_each_write() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.path().join("s.redb")).unwrap());
    let changed = Arc::new(Notify::new());
    let snapshots = spawn_builder(store.clone(), Arc::new(EnvResolver), changed.clone(), Duration::from_secs(60));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, ConfigService::new(snapshots, &[TOKEN.to_string()]), async {
        let _ = stop_rx.await;
    }));

    for bad in [None, Some("wrong")] {
        let err = match subscribe(addr, bad, 0).await {
            Ok(mut s) => s.message().await.expect_err("stream must fail"),
            Err(e) => e,
        };
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
    }

    store
        .create(
            Kind::Provider,
            "openai",
            &json!({"name": "openai", "kind": "openai", "cluster": "openai"}),
            None,
            &AuditContext::tool("test"),
        )
        .await
        .unwrap();
    changed.notify_one();
    let mut stream = subscribe(addr, Some(TOKEN), 0).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(2), stream.message()).await.unwrap().unwrap().unwrap();
    let mut version = first.version;
    assert!(version >= 1);
    let snap = Snapshot::from_json(&first.snapshot_json).unwrap();
    assert_eq!(snap.version, first.version);

    // Every write arrives as a newer snapshot, well within a second (writes are spaced so none
    // is coalesced with the next).
    for i in 0..5 {
        let model = format!("m{i}");
        let started = Instant::now();
        let doc = json!({"model": model, "targets": [{"provider": "openai", "model": "x"}]});
        store.create(Kind::Route, &model, &doc, None, &AuditContext::tool("test")).await.unwrap();
        changed.notify_one();
        let msg =
            tokio::time::timeout(Duration::from_secs(1), stream.message()).await.expect("within 1 s").unwrap().unwrap();
        assert!(msg.version > version);
        version = msg.version;
        let snap = Snapshot::from_json(&msg.snapshot_json).unwrap();
        assert!(snap.config.routes.iter().any(|r| r.model == model), "route {model} in snapshot {}", msg.version);
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    // A subscriber that already has the current version gets nothing until the next change.
    let mut up_to_date = subscribe(addr, Some(TOKEN), version).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), up_to_date.message()).await.is_err(),
        "no resend of a known version"
    );
    store.delete(Kind::Route, "m0", None, &AuditContext::tool("test")).await.unwrap();
    changed.notify_one();
    let msg = tokio::time::timeout(Duration::from_secs(1), up_to_date.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(msg.version, version + 1);

    let _ = stop_tx.send(());
    drop(stream);
    drop(up_to_date);
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_only_when_asked_and_after_silence() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.path().join("s.redb")).unwrap());
    let changed = Arc::new(Notify::new());
    let service =
        spawn(store, Arc::new(EnvResolver), changed.clone(), BuilderOptions::with_poll(Duration::from_secs(60)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server =
        tokio::spawn(serve(listener, ConfigService::new(service.snapshots.clone(), &[TOKEN.to_string()]), async {
            let _ = stop_rx.await;
        }));
    service
        .store
        .create(
            Kind::Provider,
            "openai",
            &json!({"name": "openai", "kind": "openai", "cluster": "openai"}),
            None,
            &AuditContext::tool("test"),
        )
        .await
        .unwrap();
    changed.notify_one();

    let mut with = subscribe_with(addr, Some(TOKEN), 0, 1).await.unwrap();
    let mut without = subscribe_with(addr, Some(TOKEN), 0, 0).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(2), with.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(first.version, 1);
    assert!(!first.snapshot_json.is_empty());
    let plain = tokio::time::timeout(Duration::from_secs(2), without.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(plain.version, 1);

    // After a second of silence: the same version, no payload.
    let started = Instant::now();
    let beat = tokio::time::timeout(Duration::from_secs(3), with.message()).await.unwrap().unwrap().unwrap();
    assert_eq!((beat.version, beat.snapshot_json.len()), (1, 0));
    assert!(started.elapsed() >= Duration::from_millis(900), "heartbeat after {:?}", started.elapsed());
    // A real change still arrives as a full snapshot on the heartbeat stream.
    service
        .store
        .create(
            Kind::Route,
            "m",
            &json!({"model": "m", "targets": [{"provider": "openai", "model": "x"}]}),
            None,
            &AuditContext::tool("test"),
        )
        .await
        .unwrap();
    changed.notify_one();
    let next = loop {
        let m = tokio::time::timeout(Duration::from_secs(2), with.message()).await.unwrap().unwrap().unwrap();
        if !m.snapshot_json.is_empty() {
            break m;
        }
    };
    assert_eq!(next.version, 2);
    // The subscriber that did not ask gets the change and nothing else.
    let m = tokio::time::timeout(Duration::from_secs(2), without.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(m.version, 2);
    assert!(!m.snapshot_json.is_empty());
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), without.message()).await.is_err(),
        "no heartbeat unless asked"
    );

    let _ = stop_tx.send(());
    drop(with);
    drop(without);
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
}
