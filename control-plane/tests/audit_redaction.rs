//! No credential reference, key secret or key hash in any audit record (as the API returns them
//! and as the store holds them) or in any log line, after creates, updates, a rotation, a
//! revocation and an apply that all touch them. The DynamoDB variant is in store_dynamodb.rs.

mod common;

use std::sync::Arc;

use common::logs::CapturedLogs;

use axum::http::StatusCode;
use common::server::{call, TestApp, READ_ONLY};
use control_plane::store::embedded::EmbeddedStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_secrets_never_reach_audit_records_stored_bytes_or_logs() {
    let logs = CapturedLogs::install();

    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("store.redb")).unwrap();
    let t = TestApp::with_store(Arc::new(store.clone()), dir);
    let (planted, secrets) = common::audit_secrets::exercise(&t).await;

    let records = call(&t.app, "GET", "/v1/audit?limit=500", Some(READ_ONLY), None, &[]).await;
    assert_eq!(records.0, StatusCode::OK);
    let api = records.2.to_string();
    let stored = store.audit_raw().await.unwrap().join("\n");
    let log = logs.text();
    // The searches see the data they search.
    let items = records.2["items"].as_array().unwrap();
    assert!(items.len() >= 10, "{api}");
    assert!(stored.contains("\"credential\"") && stored.contains("rotation.secret_hash"), "{stored}");
    assert!(log.contains("audit") && log.contains("action=Rotate"), "{log}");
    let redacted = items.iter().filter(|r| r["diff"].to_string().contains("<redacted>")).count();
    assert!(redacted >= 5, "the credential and hash changes are shown as redacted changes: {api}");
    for s in planted.iter().chain(&secrets) {
        assert!(!api.contains(s.as_str()), "'{s}' in GET /v1/audit: {api}");
        assert!(!stored.contains(s.as_str()), "'{s}' in the stored audit records");
        assert!(
            !log.contains(s.as_str()),
            "'{s}' in the logs: {}",
            log.lines().filter(|l| l.contains(s.as_str())).collect::<Vec<_>>().join("\n")
        );
    }
}
