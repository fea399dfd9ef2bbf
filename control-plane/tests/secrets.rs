//! No provider secret or virtual key secret in any API response after creation, any log line, or
//! any stored byte (embedded store; the DynamoDB variant is in store_dynamodb.rs).

mod common;

use common::logs::CapturedLogs;

use common::server::{exercise_secrets, wait_for_snapshot, TestApp, ADMIN, PROVIDER_SECRET};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_in_responses_logs_or_stored_bytes() {
    let logs = CapturedLogs::install();

    let t = TestApp::new();
    let (key_secret, bodies) = exercise_secrets(&t).await;
    let built = wait_for_snapshot(&t).await;
    // The one place the provider secret must be: the snapshot pushed to the filters.
    assert_eq!(built.snapshot.credential("openai"), Some(PROVIDER_SECRET));

    for b in &bodies {
        assert!(!b.contains(&key_secret), "key secret in a response: {b}");
        assert!(!b.contains(PROVIDER_SECRET), "provider secret in a response: {b}");
    }
    assert!(bodies.last().unwrap().contains("credential"), "a plaintext credential is refused naming the field");

    let log = logs.text();
    assert!(log.contains("snapshot built") && log.contains("/v1/keys"), "logs were captured: {log}");
    for s in [key_secret.as_str(), PROVIDER_SECRET, ADMIN] {
        assert!(!log.contains(s), "secret '{s}' in the logs");
    }

    let bytes = std::fs::read(t.dir.path().join("store.redb")).unwrap();
    let hay = String::from_utf8_lossy(&bytes);
    let hash = control_plane::model::hash_secret(&key_secret);
    assert!(hay.contains(&hash), "the store file holds the key's hash (so this search sees the data)");
    assert!(!hay.contains(&key_secret), "key secret in the store file");
    assert!(!hay.contains(PROVIDER_SECRET), "provider secret in the store file");
}
