//! The store contract, run against every `Store` implementation.

use std::collections::BTreeSet;
use std::sync::Arc;

use control_plane::store::{list_all, Kind, Store, StoreError};
use serde_json::json;

/// Runs every conformance check against `store`, which must start empty.
pub async fn run_all(store: Arc<dyn Store>) {
    crud_and_versions(store.as_ref()).await;
    names_unique_per_kind(store.as_ref()).await;
    optimistic_concurrency(store.as_ref()).await;
    concurrent_same_version_exactly_one_wins(store.clone()).await;
    pagination(store.as_ref()).await;
    key_hash_lookup(store.as_ref()).await;
    revision_counts_every_write(store.as_ref()).await;
}

async fn crud_and_versions(store: &dyn Store) {
    assert!(store.get(Kind::Provider, "p1").await.unwrap().is_none());
    let created = store.create(Kind::Provider, "p1", &json!({"kind": "openai"}), None).await.unwrap();
    assert_eq!(created.version, 1);
    assert_eq!(created.name, "p1");
    assert!(created.created_at > 0 && created.created_at == created.updated_at);

    let got = store.get(Kind::Provider, "p1").await.unwrap().expect("created object is readable");
    assert_eq!(got.doc, json!({"kind": "openai"}));
    assert_eq!(got.version, 1);

    let updated = store.update(Kind::Provider, "p1", Some(1), &json!({"kind": "anthropic"})).await.unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.created_at, created.created_at);
    let got = store.get(Kind::Provider, "p1").await.unwrap().unwrap();
    assert_eq!((got.version, got.doc), (2, json!({"kind": "anthropic"})));

    // An update without a precondition still bumps the version by exactly one.
    let updated = store.update(Kind::Provider, "p1", None, &json!({"kind": "openai"})).await.unwrap();
    assert_eq!(updated.version, 3);

    assert!(matches!(
        store.update(Kind::Provider, "missing", None, &json!({})).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(store.delete(Kind::Provider, "missing", None).await, Err(StoreError::NotFound { .. })));

    store.delete(Kind::Provider, "p1", Some(3)).await.unwrap();
    assert!(store.get(Kind::Provider, "p1").await.unwrap().is_none());
    // A deleted name can be created again, starting over at version 1.
    let again = store.create(Kind::Provider, "p1", &json!({"kind": "openai"}), None).await.unwrap();
    assert_eq!(again.version, 1);
    store.delete(Kind::Provider, "p1", None).await.unwrap();
}

async fn names_unique_per_kind(store: &dyn Store) {
    store.create(Kind::Route, "shared-name", &json!({"a": 1}), None).await.unwrap();
    let clash = store.create(Kind::Route, "shared-name", &json!({"a": 2}), None).await;
    assert!(matches!(clash, Err(StoreError::AlreadyExists { kind: Kind::Route, .. })), "{clash:?}");
    // The first document is untouched by the failed create.
    assert_eq!(store.get(Kind::Route, "shared-name").await.unwrap().unwrap().doc, json!({"a": 1}));
    // Kinds are separate namespaces.
    store.create(Kind::Provider, "shared-name", &json!({"b": 1}), None).await.unwrap();
    store.delete(Kind::Route, "shared-name", None).await.unwrap();
    store.delete(Kind::Provider, "shared-name", None).await.unwrap();
}

async fn optimistic_concurrency(store: &dyn Store) {
    store.create(Kind::Route, "occ", &json!({"n": 0}), None).await.unwrap();
    store.update(Kind::Route, "occ", Some(1), &json!({"n": 1})).await.unwrap();
    let stale = store.update(Kind::Route, "occ", Some(1), &json!({"n": 99})).await;
    assert!(
        matches!(stale, Err(StoreError::VersionMismatch { expected: 1, current: 2, .. })),
        "stale update must fail: {stale:?}"
    );
    assert_eq!(store.get(Kind::Route, "occ").await.unwrap().unwrap().doc, json!({"n": 1}));
    let stale_delete = store.delete(Kind::Route, "occ", Some(1)).await;
    assert!(matches!(stale_delete, Err(StoreError::VersionMismatch { .. })), "{stale_delete:?}");
    assert!(store.get(Kind::Route, "occ").await.unwrap().is_some());
    store.delete(Kind::Route, "occ", Some(2)).await.unwrap();
}

async fn concurrent_same_version_exactly_one_wins(store: Arc<dyn Store>) {
    store.create(Kind::Route, "race", &json!({"w": "none"}), None).await.unwrap();
    for round in 0..5u64 {
        let v = store.get(Kind::Route, "race").await.unwrap().unwrap().version;
        let writers: Vec<_> = (0..4)
            .map(|i| {
                let s = store.clone();
                tokio::spawn(async move { s.update(Kind::Route, "race", Some(v), &json!({"w": i, "round": round})).await })
            })
            .collect();
        let mut wins = Vec::new();
        for (i, w) in writers.into_iter().enumerate() {
            match w.await.unwrap() {
                Ok(r) => wins.push((i, r)),
                Err(StoreError::VersionMismatch { .. }) => {}
                Err(e) => panic!("unexpected error in race: {e}"),
            }
        }
        assert_eq!(wins.len(), 1, "round {round}: exactly one writer must win, got {}", wins.len());
        let (winner, rec) = &wins[0];
        assert_eq!(rec.version, v + 1);
        let stored = store.get(Kind::Route, "race").await.unwrap().unwrap();
        assert_eq!(stored.version, v + 1);
        assert_eq!(stored.doc, json!({"w": winner, "round": round}), "the stored document is the winner's");
    }
    store.delete(Kind::Route, "race", None).await.unwrap();
}

async fn pagination(store: &dyn Store) {
    let names: BTreeSet<String> = (0..25).map(|i| format!("m-{i:03}")).collect();
    for n in names.iter().rev() {
        store.create(Kind::Route, n, &json!({"name": n}), None).await.unwrap();
    }
    // Other kinds never leak into a listing.
    store.create(Kind::Provider, "m-zzz", &json!({}), None).await.unwrap();

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store.list(Kind::Route, after.as_deref(), 7).await.unwrap();
        assert!(page.items.len() <= 7);
        pages += 1;
        assert!(pages < 10, "pagination does not terminate");
        seen.extend(page.items.iter().map(|r| r.name.clone()));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, names.iter().cloned().collect::<Vec<_>>(), "all routes, in name order, each once");
    assert!(pages >= 4);
    let all = list_all(store, Kind::Route).await.unwrap();
    assert_eq!(all.len(), 25);
    assert_eq!(all[3].doc, json!({"name": "m-003"}));

    for n in &names {
        store.delete(Kind::Route, n, None).await.unwrap();
    }
    store.delete(Kind::Provider, "m-zzz", None).await.unwrap();
    assert!(store.list(Kind::Route, None, 10).await.unwrap().items.is_empty());
}

async fn key_hash_lookup(store: &dyn Store) {
    let h = "ab".repeat(32);
    let rec = store.create(Kind::Key, "team-a", &json!({"owner": "a"}), Some(&h)).await.unwrap();
    assert_eq!(rec.key_hash.as_deref(), Some(h.as_str()));
    let found = store.find_key_by_hash(&h).await.unwrap().expect("lookup by hash");
    assert_eq!(found.name, "team-a");
    assert!(store.find_key_by_hash(&"cd".repeat(32)).await.unwrap().is_none());

    // The hash survives document updates.
    store.update(Kind::Key, "team-a", None, &json!({"owner": "b"})).await.unwrap();
    let found = store.find_key_by_hash(&h).await.unwrap().unwrap();
    assert_eq!(found.doc, json!({"owner": "b"}));
    assert_eq!(found.key_hash.as_deref(), Some(h.as_str()));

    // A second key can never claim the same hash.
    assert!(store.create(Kind::Key, "team-b", &json!({}), Some(&h)).await.is_err());
    assert!(store.get(Kind::Key, "team-b").await.unwrap().is_none());

    store.delete(Kind::Key, "team-a", None).await.unwrap();
    assert!(store.find_key_by_hash(&h).await.unwrap().is_none());
}

async fn revision_counts_every_write(store: &dyn Store) {
    let r0 = store.revision().await.unwrap();
    store.create(Kind::Provider, "rev", &json!({}), None).await.unwrap();
    assert_eq!(store.revision().await.unwrap(), r0 + 1);
    store.update(Kind::Provider, "rev", None, &json!({"x": 1})).await.unwrap();
    assert_eq!(store.revision().await.unwrap(), r0 + 2);
    // Failed writes do not count.
    let _ = store.update(Kind::Provider, "rev", Some(99), &json!({})).await;
    let _ = store.create(Kind::Provider, "rev", &json!({}), None).await;
    assert_eq!(store.revision().await.unwrap(), r0 + 2);
    store.delete(Kind::Provider, "rev", None).await.unwrap();
    assert_eq!(store.revision().await.unwrap(), r0 + 3);
}
