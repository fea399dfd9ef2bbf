//! Store conformance on the embedded (redb) store, plus persistence across a restart.

mod common;

use std::sync::Arc;

use control_plane::audit::AuditContext;
use control_plane::store::embedded::EmbeddedStore;
use control_plane::store::{Kind, Store};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("cp.redb")).unwrap();
    common::conformance::run_all(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cp.redb");
    {
        let store = EmbeddedStore::open(&path).unwrap();
        store
            .create(Kind::Provider, "openai", &json!({"kind": "openai"}), None, &AuditContext::tool("test"))
            .await
            .unwrap();
        store
            .update(Kind::Provider, "openai", Some(1), &json!({"kind": "openai", "x": 1}), &AuditContext::tool("test"))
            .await
            .unwrap();
        store.create(Kind::Key, "k", &json!({}), Some("ff"), &AuditContext::tool("test")).await.unwrap();
    }
    let store = EmbeddedStore::open(&path).unwrap();
    let p = store.get(Kind::Provider, "openai").await.unwrap().expect("survives reopen");
    assert_eq!((p.version, p.doc), (2, json!({"kind": "openai", "x": 1})));
    assert_eq!(store.find_key_by_hash("ff").await.unwrap().map(|r| r.name), Some("k".to_string()));
    assert_eq!(store.revision().await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_prunes_audit_records_past_the_retention() {
    use control_plane::audit::{AuditQuery, Via};
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("cp.redb")).unwrap().with_audit_retention(Some(1));
    let now = control_plane::audit::now_ms();
    let old = AuditContext::fixed("t", Via::Api, "00000000000000b0", now - 2 * 86_400_000);
    store.create(Kind::Provider, "old", &json!({}), None, &old).await.unwrap();
    let young = AuditContext::fixed("t", Via::Api, "00000000000000b1", now - 3_600_000);
    store.create(Kind::Provider, "young", &json!({}), None, &young).await.unwrap();
    let all = AuditQuery { limit: 10, ..Default::default() };
    assert_eq!(store.list_audit(&all).await.unwrap().items.len(), 1, "the two-day-old record is gone");
    assert_eq!(store.list_audit(&all).await.unwrap().items[0].name, "young");
    let by_object =
        AuditQuery { kind: Some(Kind::Provider), name: Some("old".into()), limit: 10, ..Default::default() };
    assert!(store.list_audit(&by_object).await.unwrap().items.is_empty(), "its index entry too");
    assert!(!store.audit_raw().await.unwrap().join("\n").contains("\"old\""));
    // Without a retention nothing is pruned.
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("cp.redb")).unwrap();
    let old = AuditContext::fixed("t", Via::Api, "00000000000000b0", 1000);
    store.create(Kind::Provider, "old", &json!({}), None, &old).await.unwrap();
    store.create(Kind::Provider, "new", &json!({}), None, &AuditContext::tool("t")).await.unwrap();
    assert_eq!(store.list_audit(&all).await.unwrap().items.len(), 2);
}
