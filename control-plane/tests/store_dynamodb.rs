//! Store conformance on DynamoDB, against Amazon DynamoDB Local started by
//! `control-plane/scripts/dynamodb-local.sh` (which sets `CP_DYNAMODB_ENDPOINT`).

mod common;

use std::sync::Arc;

use control_plane::store::dynamo::{DynamoSettings, DynamoStore};

fn settings(suffix: &str) -> DynamoSettings {
    let endpoint = std::env::var("CP_DYNAMODB_ENDPOINT")
        .expect("CP_DYNAMODB_ENDPOINT unset: run through control-plane/scripts/dynamodb-local.sh");
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    DynamoSettings { table: format!("cp-test-{suffix}-{nanos}"), endpoint: Some(endpoint), region: "us-east-1".into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: control-plane/scripts/dynamodb-local.sh"]
async fn dynamodb_store_conformance() {
    let store = DynamoStore::connect(&settings("conf")).await;
    assert!(store.create_table().await.unwrap(), "fresh table is created");
    assert!(!store.create_table().await.unwrap(), "create-tables is idempotent");
    store.enable_marker_ttl().await.unwrap();
    store.enable_marker_ttl().await.expect("enabling TTL twice is fine");
    common::conformance::run_all(Arc::new(store.clone())).await;
    store.delete_table().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: control-plane/scripts/dynamodb-local.sh"]
async fn dynamodb_rest_race_and_no_secret_in_stored_items() {
    use axum::http::StatusCode;
    use common::server::{call, exercise_secrets, wait_for_snapshot, TestApp, ADMIN, PROVIDER_SECRET};
    use serde_json::json;

    let store = DynamoStore::connect(&settings("rest")).await;
    store.create_table().await.unwrap();
    let t = TestApp::with_store(Arc::new(store.clone()), tempfile::tempdir().unwrap());

    // Two concurrent PUTs with the same If-Match: exactly one 200, one 412.
    let p = json!({"name": "p", "kind": "openai", "cluster": "c0"});
    assert_eq!(t.admin("POST", "/v1/providers", Some(p)).await.0, StatusCode::CREATED);
    for round in 1..=5u64 {
        let tag = format!("\"{round}\"");
        let tasks: Vec<_> = (0..2)
            .map(|i| {
                let app = t.app.clone();
                let tag = tag.clone();
                let body = json!({"name": "p", "kind": "openai", "cluster": format!("c{round}_{i}")}).to_string();
                tokio::spawn(async move {
                    call(
                        &app,
                        "PUT",
                        "/v1/providers/p",
                        Some(ADMIN),
                        Some(("application/json", body.into_bytes())),
                        &[("if-match", tag.as_str())],
                    )
                    .await
                    .0
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.push(task.await.unwrap());
        }
        statuses.sort();
        assert_eq!(statuses, vec![StatusCode::OK, StatusCode::PRECONDITION_FAILED], "round {round}");
    }
    assert_eq!(t.admin("DELETE", "/v1/providers/p", None).await.0, StatusCode::NO_CONTENT);

    let (key_secret, bodies) = exercise_secrets(&t).await;
    let built = wait_for_snapshot(&t).await;
    assert_eq!(built.snapshot.credential("openai"), Some(PROVIDER_SECRET));
    for b in &bodies {
        assert!(!b.contains(&key_secret) && !b.contains(PROVIDER_SECRET), "secret in a response: {b}");
    }
    let items = store.scan_raw().await.unwrap().join("\n");
    assert!(items.contains(&control_plane::model::hash_secret(&key_secret)), "scan sees the key's hash");
    assert!(items.contains("env:AI_GATEWAY_PROVIDER_LEAK_TEST_KEY"), "scan sees the credential reference");
    assert!(!items.contains(&key_secret), "key secret in a DynamoDB item");
    assert!(!items.contains(PROVIDER_SECRET), "provider secret in a DynamoDB item");
    store.delete_table().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: control-plane/scripts/dynamodb-local.sh"]
async fn dynamodb_report_usage_over_grpc_then_read_it_over_rest() {
    let store = DynamoStore::connect(&settings("usage")).await;
    store.create_table().await.unwrap();
    let t = common::server::TestApp::with_store(Arc::new(store.clone()), tempfile::tempdir().unwrap());
    common::usage_flow::report_then_read(&t).await;
    // Markers carry their TTL attribute.
    let items = store.scan_raw().await.unwrap().join("\n");
    assert!(items.contains("usage_batch#envoy-a/123/1#0") && items.contains("expires_at"), "marker item with TTL");
    store.delete_table().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs DynamoDB Local: control-plane/scripts/dynamodb-local.sh"]
async fn dynamodb_audit_items_hold_no_secret_and_carry_the_retention_ttl() {
    use axum::http::StatusCode;
    use common::server::{call, TestApp, READ_ONLY};

    let store = DynamoStore::connect(&settings("audit")).await.with_audit_retention(Some(30));
    store.create_table().await.unwrap();
    store.enable_marker_ttl().await.unwrap();
    let t = TestApp::with_store(Arc::new(store.clone()), tempfile::tempdir().unwrap());
    let started = control_plane::store::now_unix();
    let (planted, secrets) = common::audit_secrets::exercise(&t).await;
    let (s, _, v) = call(&t.app, "GET", "/v1/audit?limit=500", Some(READ_ONLY), None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    let api = v.to_string();
    assert!(v["items"].as_array().unwrap().len() >= 10, "{api}");
    let audit_items: Vec<String> =
        store.scan_raw().await.unwrap().into_iter().filter(|i| i.contains("S(\"audit")).collect();
    // Each record twice: the trail and the object's history.
    assert_eq!(audit_items.len(), 2 * v["items"].as_array().unwrap().len());
    let all = audit_items.join("\n");
    for s in planted.iter().chain(&secrets) {
        assert!(!api.contains(s.as_str()), "'{s}' in GET /v1/audit");
        assert!(!all.contains(s.as_str()), "'{s}' in a DynamoDB audit item");
    }
    // Retention: expires_at 30 days after the record.
    for item in &audit_items {
        let at = item
            .split("\"expires_at\": N(\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_else(|| panic!("no TTL: {item}"));
        let at: u64 = at.parse().unwrap();
        assert!(at >= started + 30 * 86_400 - 1 && at <= control_plane::store::now_unix() + 30 * 86_400, "{item}");
    }
    store.delete_table().await.unwrap();
}
