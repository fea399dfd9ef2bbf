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
