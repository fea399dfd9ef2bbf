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
    let store = DynamoStore::connect(&settings("conf"));
    assert!(store.create_table().await.unwrap(), "fresh table is created");
    assert!(!store.create_table().await.unwrap(), "create-tables is idempotent");
    common::conformance::run_all(Arc::new(store.clone())).await;
    store.delete_table().await.unwrap();
}
