//! An in-process control plane (embedded store in a temp dir) and a request helper.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use control_plane::api::{router, AppState, AuthConfig};
use control_plane::credentials::CredentialPolicy;
use control_plane::snapshot::{spawn, BuilderOptions, EnvResolver, SnapshotRx};
use control_plane::store::embedded::EmbeddedStore;
use control_plane::store::Store;
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::sync::Notify;
use tower::ServiceExt;

pub const ADMIN: &str = "admin-token-for-tests";
pub const READ_ONLY: &str = "read-only-token-for-tests";
/// A second admin token: the audit trail tells the two apart.
pub const ADMIN_2: &str = "second-admin-token-for-tests";

/// A running app and what backs it.
pub struct TestApp {
    pub app: Router,
    pub store: Arc<dyn Store>,
    pub snapshots: SnapshotRx,
    pub dir: tempfile::TempDir,
}

impl TestApp {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.path().join("store.redb")).unwrap());
        Self::with_store(store, dir)
    }

    pub fn with_store(store: Arc<dyn Store>, dir: tempfile::TempDir) -> Self {
        Self::with_store_and_policy(store, dir, CredentialPolicy::default())
    }

    /// A fresh embedded store and the given credential policy.
    pub fn with_policy(policy: CredentialPolicy) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.path().join("store.redb")).unwrap());
        Self::with_store_and_policy(store, dir, policy)
    }

    pub fn with_store_and_policy(store: Arc<dyn Store>, dir: tempfile::TempDir, policy: CredentialPolicy) -> Self {
        let changed = Arc::new(Notify::new());
        // The REST API writes through the builder's journaled store, as `serve` does.
        let service =
            spawn(store, Arc::new(EnvResolver), changed.clone(), BuilderOptions::with_poll(Duration::from_millis(200)));
        let (store, snapshots) = (service.store, service.snapshots);
        let auth = AuthConfig::new(&[ADMIN.to_string(), ADMIN_2.to_string()], &[READ_ONLY.to_string()]);
        let state = AppState {
            store: store.clone(),
            auth: Arc::new(auth),
            changed,
            snapshots: snapshots.clone(),
            credentials: Arc::new(policy),
            nodes: Arc::default(),
        };
        TestApp { app: router(state), store, snapshots, dir }
    }

    /// Sends one request with the admin token.
    pub async fn admin(&self, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, HeaderMap, Value) {
        call(&self.app, method, uri, Some(ADMIN), body.map(|b| ("application/json", b.to_string().into_bytes())), &[])
            .await
    }
}

/// Sends one request through the router; the body is parsed as JSON (Null when empty).
pub async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = match body {
        Some((ctype, b)) => {
            req = req.header("content-type", ctype);
            Body::from(b)
        }
        None => Body::empty(),
    };
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, headers, v)
}

/// Asserts the OpenAI error shape and returns `error.param`.
pub fn error_param(v: &Value) -> Option<String> {
    let e = v.get("error").unwrap_or_else(|| panic!("not an error body: {v}"));
    for f in ["message", "type", "param", "code"] {
        assert!(e.get(f).is_some(), "error body lacks '{f}': {v}");
    }
    e["param"].as_str().map(String::from)
}

/// Value of the provider secret the secret-leak tests put in the environment.
pub const PROVIDER_SECRET: &str = "sk-provider-SECRET-value-4f9a1c";
/// Environment variable holding it.
pub const PROVIDER_SECRET_VAR: &str = "AI_GATEWAY_PROVIDER_LEAK_TEST_KEY";

/// Drives every endpoint with a provider credential and a virtual key; returns the key's secret
/// and every response body after the key's creation, for the caller to search.
pub async fn exercise_secrets(t: &TestApp) -> (String, Vec<String>) {
    std::env::set_var(PROVIDER_SECRET_VAR, PROVIDER_SECRET);
    let provider = serde_json::json!({"name": "openai", "kind": "openai", "cluster": "openai",
        "credential": format!("env:{PROVIDER_SECRET_VAR}")});
    let (s, _, _) = t.admin("POST", "/v1/providers", Some(provider)).await;
    assert_eq!(s, StatusCode::CREATED);
    let route = serde_json::json!({"model": "gpt-4o", "targets": [{"provider": "openai", "model": "gpt-4o"}]});
    t.admin("POST", "/v1/routes", Some(route)).await;
    let (s, _, key) = t
        .admin("POST", "/v1/keys", Some(serde_json::json!({"name": "team", "owner": "o", "allowed_models": ["*"]})))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let secret = key["secret"].as_str().expect("secret shown at creation").to_string();

    let mut bodies = Vec::new();
    let mut record = |v: Value| bodies.push(v.to_string());
    for uri in ["/v1/providers", "/v1/providers/openai", "/v1/routes", "/v1/keys", "/v1/keys/team", "/v1/snapshot"] {
        record(t.admin("GET", uri, None).await.2);
    }
    record(
        t.admin("PUT", "/v1/keys/team", Some(serde_json::json!({"owner": "o2", "allowed_models": ["gpt-4o"]}))).await.2,
    );
    record(t.admin("POST", "/v1/keys/team/revoke", None).await.2);
    let doc = serde_json::json!({"providers": [{"name": "openai", "kind": "openai", "cluster": "openai2",
        "credential": format!("env:{PROVIDER_SECRET_VAR}")}], "routes": []});
    record(t.admin("POST", "/v1/apply?dry_run=true", Some(doc.clone())).await.2);
    record(t.admin("POST", "/v1/apply", Some(doc)).await.2);
    record(
        t.admin(
            "POST",
            "/v1/providers",
            Some(serde_json::json!({"name": "x", "kind": "openai", "cluster": "c", "credential": PROVIDER_SECRET})),
        )
        .await
        .2,
    );
    (secret, bodies)
}

/// Waits until the snapshot builder has caught up with the store.
pub async fn wait_for_snapshot(t: &TestApp) -> std::sync::Arc<control_plane::snapshot::BuiltSnapshot> {
    let want = t.store.revision().await.unwrap();
    let mut rx = t.snapshots.clone();
    for _ in 0..50 {
        if let Some(b) = rx.borrow_and_update().clone() {
            if b.snapshot.version == want {
                return b;
            }
        }
        let _ = tokio::time::timeout(Duration::from_millis(100), rx.changed()).await;
    }
    panic!("snapshot never reached revision {want}");
}
