//! The store contract, run against every `Store` implementation.

use std::collections::BTreeSet;
use std::sync::Arc;

use control_plane::audit::AuditContext;
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
    key_rotation(store.as_ref()).await;
    revision_counts_every_write(store.as_ref()).await;
    usage_accounting(store.clone()).await;
    audit_trail(store.as_ref()).await;
}

async fn crud_and_versions(store: &dyn Store) {
    assert!(store.get(Kind::Provider, "p1").await.unwrap().is_none());
    let created = store
        .create(Kind::Provider, "p1", &json!({"kind": "openai"}), None, &AuditContext::tool("test"))
        .await
        .unwrap();
    assert_eq!(created.version, 1);
    assert_eq!(created.name, "p1");
    assert!(created.created_at > 0 && created.created_at == created.updated_at);

    let got = store.get(Kind::Provider, "p1").await.unwrap().expect("created object is readable");
    assert_eq!(got.doc, json!({"kind": "openai"}));
    assert_eq!(got.version, 1);

    let updated = store
        .update(Kind::Provider, "p1", Some(1), &json!({"kind": "anthropic"}), &AuditContext::tool("test"))
        .await
        .unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.created_at, created.created_at);
    let got = store.get(Kind::Provider, "p1").await.unwrap().unwrap();
    assert_eq!((got.version, got.doc), (2, json!({"kind": "anthropic"})));

    // An update without a precondition still bumps the version by exactly one.
    let updated = store
        .update(Kind::Provider, "p1", None, &json!({"kind": "openai"}), &AuditContext::tool("test"))
        .await
        .unwrap();
    assert_eq!(updated.version, 3);

    assert!(matches!(
        store.update(Kind::Provider, "missing", None, &json!({}), &AuditContext::tool("test")).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.delete(Kind::Provider, "missing", None, &AuditContext::tool("test")).await,
        Err(StoreError::NotFound { .. })
    ));

    store.delete(Kind::Provider, "p1", Some(3), &AuditContext::tool("test")).await.unwrap();
    assert!(store.get(Kind::Provider, "p1").await.unwrap().is_none());
    // A deleted name can be created again, starting over at version 1.
    let again = store
        .create(Kind::Provider, "p1", &json!({"kind": "openai"}), None, &AuditContext::tool("test"))
        .await
        .unwrap();
    assert_eq!(again.version, 1);
    store.delete(Kind::Provider, "p1", None, &AuditContext::tool("test")).await.unwrap();
}

async fn names_unique_per_kind(store: &dyn Store) {
    store.create(Kind::Route, "shared-name", &json!({"a": 1}), None, &AuditContext::tool("test")).await.unwrap();
    let clash = store.create(Kind::Route, "shared-name", &json!({"a": 2}), None, &AuditContext::tool("test")).await;
    assert!(matches!(clash, Err(StoreError::AlreadyExists { kind: Kind::Route, .. })), "{clash:?}");
    // The first document is untouched by the failed create.
    assert_eq!(store.get(Kind::Route, "shared-name").await.unwrap().unwrap().doc, json!({"a": 1}));
    // Kinds are separate namespaces.
    store.create(Kind::Provider, "shared-name", &json!({"b": 1}), None, &AuditContext::tool("test")).await.unwrap();
    store.delete(Kind::Route, "shared-name", None, &AuditContext::tool("test")).await.unwrap();
    store.delete(Kind::Provider, "shared-name", None, &AuditContext::tool("test")).await.unwrap();
}

async fn optimistic_concurrency(store: &dyn Store) {
    store.create(Kind::Route, "occ", &json!({"n": 0}), None, &AuditContext::tool("test")).await.unwrap();
    store.update(Kind::Route, "occ", Some(1), &json!({"n": 1}), &AuditContext::tool("test")).await.unwrap();
    let stale = store.update(Kind::Route, "occ", Some(1), &json!({"n": 99}), &AuditContext::tool("test")).await;
    assert!(
        matches!(stale, Err(StoreError::VersionMismatch { expected: 1, current: 2, .. })),
        "stale update must fail: {stale:?}"
    );
    assert_eq!(store.get(Kind::Route, "occ").await.unwrap().unwrap().doc, json!({"n": 1}));
    let stale_delete = store.delete(Kind::Route, "occ", Some(1), &AuditContext::tool("test")).await;
    assert!(matches!(stale_delete, Err(StoreError::VersionMismatch { .. })), "{stale_delete:?}");
    assert!(store.get(Kind::Route, "occ").await.unwrap().is_some());
    store.delete(Kind::Route, "occ", Some(2), &AuditContext::tool("test")).await.unwrap();
}

async fn concurrent_same_version_exactly_one_wins(store: Arc<dyn Store>) {
    store.create(Kind::Route, "race", &json!({"w": "none"}), None, &AuditContext::tool("test")).await.unwrap();
    for round in 0..5u64 {
        let v = store.get(Kind::Route, "race").await.unwrap().unwrap().version;
        let writers: Vec<_> = (0..4)
            .map(|i| {
                let s = store.clone();
                tokio::spawn(async move {
                    s.update(
                        Kind::Route,
                        "race",
                        Some(v),
                        &json!({"w": i, "round": round}),
                        &AuditContext::tool("test"),
                    )
                    .await
                })
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
    store.delete(Kind::Route, "race", None, &AuditContext::tool("test")).await.unwrap();
}

async fn pagination(store: &dyn Store) {
    let names: BTreeSet<String> = (0..25).map(|i| format!("m-{i:03}")).collect();
    for n in names.iter().rev() {
        store.create(Kind::Route, n, &json!({"name": n}), None, &AuditContext::tool("test")).await.unwrap();
    }
    // Other kinds never leak into a listing.
    store.create(Kind::Provider, "m-zzz", &json!({}), None, &AuditContext::tool("test")).await.unwrap();

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
        store.delete(Kind::Route, n, None, &AuditContext::tool("test")).await.unwrap();
    }
    store.delete(Kind::Provider, "m-zzz", None, &AuditContext::tool("test")).await.unwrap();
    assert!(store.list(Kind::Route, None, 10).await.unwrap().items.is_empty());
}

async fn key_hash_lookup(store: &dyn Store) {
    let h = "ab".repeat(32);
    let rec =
        store.create(Kind::Key, "team-a", &json!({"owner": "a"}), Some(&h), &AuditContext::tool("test")).await.unwrap();
    assert_eq!(rec.key_hash.as_deref(), Some(h.as_str()));
    let found = store.find_key_by_hash(&h).await.unwrap().expect("lookup by hash");
    assert_eq!(found.name, "team-a");
    assert!(store.find_key_by_hash(&"cd".repeat(32)).await.unwrap().is_none());

    // The hash survives document updates.
    store.update(Kind::Key, "team-a", None, &json!({"owner": "b"}), &AuditContext::tool("test")).await.unwrap();
    let found = store.find_key_by_hash(&h).await.unwrap().unwrap();
    assert_eq!(found.doc, json!({"owner": "b"}));
    assert_eq!(found.key_hash.as_deref(), Some(h.as_str()));

    // A second key can never claim the same hash.
    assert!(store.create(Kind::Key, "team-b", &json!({}), Some(&h), &AuditContext::tool("test")).await.is_err());
    assert!(store.get(Kind::Key, "team-b").await.unwrap().is_none());

    store.delete(Kind::Key, "team-a", None, &AuditContext::tool("test")).await.unwrap();
    assert!(store.find_key_by_hash(&h).await.unwrap().is_none());
}

async fn key_rotation(store: &dyn Store) {
    let (first, second, third) = ("01".repeat(32), "02".repeat(32), "03".repeat(32));
    let doc = |cur: &str, prev: &str| json!({"owner": "r", "rotation": {"secret_hash": cur, "previous_hash": prev}});
    let rec = store
        .create(Kind::Key, "rot", &json!({"owner": "r"}), Some(&first), &AuditContext::tool("test"))
        .await
        .unwrap();
    let r0 = store.revision().await.unwrap();

    let rec = store
        .rotate_key("rot", Some(rec.version), &doc(&second, &first), &second, None, &AuditContext::tool("test"))
        .await
        .unwrap();
    assert_eq!(rec.version, 2);
    assert_eq!(store.revision().await.unwrap(), r0 + 1);
    // The record keeps its first hash (the key's identity); both secrets resolve to it.
    assert_eq!(rec.key_hash.as_deref(), Some(first.as_str()));
    for h in [&first, &second] {
        assert_eq!(store.find_key_by_hash(h).await.unwrap().expect("claimed").name, "rot");
    }
    // Versioned like update, and a taken hash is refused without writing anything.
    let stale =
        store.rotate_key("rot", Some(1), &doc(&third, &second), &third, None, &AuditContext::tool("test")).await;
    assert!(matches!(stale, Err(StoreError::VersionMismatch { .. })), "{stale:?}");
    store.create(Kind::Key, "other", &json!({}), Some(&third), &AuditContext::tool("test")).await.unwrap();
    assert!(store
        .rotate_key("rot", Some(2), &doc(&third, &second), &third, None, &AuditContext::tool("test"))
        .await
        .is_err());
    assert_eq!(store.get(Kind::Key, "rot").await.unwrap().unwrap().version, 2);
    store.delete(Kind::Key, "other", None, &AuditContext::tool("test")).await.unwrap();
    assert!(matches!(
        store.rotate_key("missing", None, &doc(&third, &second), &third, None, &AuditContext::tool("test")).await,
        Err(StoreError::NotFound { .. })
    ));

    // Releasing the first hash never releases the identity; releasing others frees them.
    let fourth = "04".repeat(32);
    store
        .rotate_key("rot", Some(2), &doc(&third, &second), &third, Some(&first), &AuditContext::tool("test"))
        .await
        .unwrap();
    assert!(store.find_key_by_hash(&first).await.unwrap().is_some());
    store
        .rotate_key("rot", Some(3), &doc(&fourth, &third), &fourth, Some(&second), &AuditContext::tool("test"))
        .await
        .unwrap();
    assert!(store.find_key_by_hash(&second).await.unwrap().is_none());

    // Deleting the key frees every hash it holds.
    store.delete(Kind::Key, "rot", None, &AuditContext::tool("test")).await.unwrap();
    for h in [&first, &third, &fourth] {
        assert!(store.find_key_by_hash(h).await.unwrap().is_none(), "{h} still claimed");
    }
}

async fn revision_counts_every_write(store: &dyn Store) {
    let r0 = store.revision().await.unwrap();
    store.create(Kind::Provider, "rev", &json!({}), None, &AuditContext::tool("test")).await.unwrap();
    assert_eq!(store.revision().await.unwrap(), r0 + 1);
    store.update(Kind::Provider, "rev", None, &json!({"x": 1}), &AuditContext::tool("test")).await.unwrap();
    assert_eq!(store.revision().await.unwrap(), r0 + 2);
    // Failed writes do not count.
    let _ = store.update(Kind::Provider, "rev", Some(99), &json!({}), &AuditContext::tool("test")).await;
    let _ = store.create(Kind::Provider, "rev", &json!({}), None, &AuditContext::tool("test")).await;
    assert_eq!(store.revision().await.unwrap(), r0 + 2);
    store.delete(Kind::Provider, "rev", None, &AuditContext::tool("test")).await.unwrap();
    assert_eq!(store.revision().await.unwrap(), r0 + 3);
    revision_bumps(store).await;
}

/// `bump_revision` moves the revision by one, returns it, and changes no object; concurrent
/// bumps and writes each count once.
async fn revision_bumps(store: &dyn Store) {
    store.create(Kind::Provider, "bump", &json!({"kind": "openai"}), None, &AuditContext::tool("test")).await.unwrap();
    let before = list_all(store, Kind::Provider).await.unwrap();
    let r0 = store.revision().await.unwrap();
    assert_eq!(store.bump_revision().await.unwrap(), r0 + 1);
    assert_eq!(store.bump_revision().await.unwrap(), r0 + 2);
    assert_eq!(store.revision().await.unwrap(), r0 + 2);
    assert_eq!(list_all(store, Kind::Provider).await.unwrap(), before, "no object changed");
    let (bumps, writes) = bumps_among_writes(store).await;
    let mut seen = bumps.clone();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), bumps.len(), "every bump returned its own revision: {bumps:?}");
    assert_eq!(store.revision().await.unwrap(), r0 + 2 + bumps.len() as u64 + writes);
    store.delete(Kind::Provider, "bump", None, &AuditContext::tool("test")).await.unwrap();
}

/// Eight bumps interleaved with four updates of one object; the revisions the bumps returned and
/// the number of updates.
async fn bumps_among_writes(store: &dyn Store) -> (Vec<u64>, u64) {
    let mut bumps = Vec::new();
    let mut writes = 0;
    for i in 0..4u64 {
        let doc = json!({"kind": "openai", "i": i});
        let ctx = AuditContext::tool("test");
        let (b1, w, b2) = tokio::join!(
            store.bump_revision(),
            store.update(Kind::Provider, "bump", None, &doc, &ctx),
            store.bump_revision()
        );
        bumps.push(b1.unwrap());
        bumps.push(b2.unwrap());
        w.unwrap();
        writes += 1;
    }
    (bumps, writes)
}

/// Usage accounting contract: exact costs, idempotent batches, no lost update under
/// concurrency, chunking of large batches, spend in the ack.
pub async fn usage_accounting(store: Arc<dyn Store>) {
    use control_plane::usage::{ingest, plan, PeriodKind};
    use gateway_core::pricing::{PriceConfig, PriceTable};
    use gateway_core::usage::{UsageBatch, UsageRow};

    // 2026-11-27 12:00 UTC.
    let now = 1_795_737_600 + 43_200;
    let prices = PriceTable::new(&[
        PriceConfig {
            provider: "openai".into(),
            model: "gpt-4o-mini".into(),
            input_per_mtok: 0.15,
            output_per_mtok: 0.6,
            cache_read_per_mtok: Some(0.075),
            cache_write_per_mtok: None,
        },
        PriceConfig {
            provider: "anthropic".into(),
            model: "claude".into(),
            input_per_mtok: 3.0,
            output_per_mtok: 15.0,
            cache_read_per_mtok: Some(0.3),
            cache_write_per_mtok: Some(3.75),
        },
    ])
    .unwrap();
    let row = |caller: &str, provider: &str, model: &str, day: &str, requests: u64, input: u64, output: u64| UsageRow {
        caller: caller.into(),
        provider: provider.into(),
        model: model.into(),
        day: day.into(),
        requests,
        input,
        output,
        cache_read: 0,
        cache_creation: 0,
        reasoning: 0,
    };
    let mut cached = row("key:aa", "anthropic", "claude", "2026-11-27", 1, 1000, 10);
    (cached.cache_read, cached.cache_creation, cached.reasoning) = (600, 100, 4);
    let batch = UsageBatch {
        batch_id: "envoy-1/1700000000000/1".into(),
        rows: vec![
            row("key:aa", "openai", "gpt-4o-mini", "2026-11-27", 2, 1200, 345),
            cached,
            // Same key as the first row: summed.
            row("key:aa", "openai", "gpt-4o-mini", "2026-11-27", 1, 7, 3),
            row("key:aa", "openai", "gpt-4o-mini", "2026-11-26", 1, 100, 100),
            row("jwt:svc", "openai", "unpriced", "2026-11-27", 5, 50, 50),
        ],
        spend_for: vec!["key:never-used".into()],
    };
    let gpt_today = 1207 * 150_000 + 348 * 600_000;
    let claude = 300 * 3_000_000 + 600 * 300_000 + 100 * 3_750_000 + 10 * 15_000_000;
    let gpt_yesterday = 100 * 150_000 + 100 * 600_000;
    let ack = ingest(store.as_ref(), &batch, &prices, now).await.unwrap();
    assert_eq!(ack.batch_id, batch.batch_id);
    assert!(!ack.duplicate);
    let spend = |ack: &gateway_core::usage::UsageAck, caller: &str| {
        let s =
            ack.spend.iter().find(|s| s.caller == caller).unwrap_or_else(|| panic!("no spend for {caller}: {ack:?}"));
        assert_eq!((s.day.as_str(), s.month.as_str()), ("2026-11-27", "2026-11"));
        (s.day_cost_pusd, s.month_cost_pusd)
    };
    assert_eq!(ack.spend.len(), 3, "every caller of the rows and spend_for, once: {ack:?}");
    assert_eq!(spend(&ack, "key:aa"), (gpt_today + claude, gpt_today + claude + gpt_yesterday));
    assert_eq!(spend(&ack, "jwt:svc"), (0, 0), "unpriced models cost nothing");
    assert_eq!(spend(&ack, "key:never-used"), (0, 0));

    let days = store.usage(Some("key:aa"), PeriodKind::Day, "2026-11-01", "2026-11-30").await.unwrap();
    let got: Vec<(String, String, u64, u64, u64, u64)> = days
        .iter()
        .map(|a| {
            (
                a.period.clone(),
                a.model.clone(),
                a.counters.requests,
                a.counters.input,
                a.counters.output,
                a.counters.cost_pusd,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("2026-11-26".into(), "gpt-4o-mini".into(), 1, 100, 100, gpt_yesterday),
            ("2026-11-27".into(), "claude".into(), 1, 1000, 10, claude),
            ("2026-11-27".into(), "gpt-4o-mini".into(), 3, 1207, 348, gpt_today),
        ]
    );
    let c = &days[1].counters;
    assert_eq!((c.cache_read, c.cache_creation, c.reasoning), (600, 100, 4));
    // Ranges: one day; a month as the bounds of days; months.
    assert_eq!(store.usage(Some("key:aa"), PeriodKind::Day, "2026-11-26", "2026-11-26").await.unwrap().len(), 1);
    assert_eq!(store.usage(Some("key:aa"), PeriodKind::Day, "2026-11", "2026-11").await.unwrap().len(), 3);
    assert!(store.usage(Some("key:aa"), PeriodKind::Day, "2026-12-01", "2026-12-31").await.unwrap().is_empty());
    let months = store.usage(Some("key:aa"), PeriodKind::Month, "2026-11", "2026-11").await.unwrap();
    assert_eq!(months.len(), 2);
    let gpt_month = months.iter().find(|a| a.model == "gpt-4o-mini").unwrap();
    assert_eq!(
        (gpt_month.period.as_str(), gpt_month.counters.requests, gpt_month.counters.cost_pusd),
        ("2026-11", 4, gpt_today + gpt_yesterday)
    );
    let everyone = store.usage(None, PeriodKind::Month, "2026-01", "2026-12").await.unwrap();
    assert_eq!(
        everyone.iter().map(|a| a.caller.as_str()).collect::<BTreeSet<_>>(),
        BTreeSet::from(["jwt:svc", "key:aa"])
    );

    // A replayed batch counts once; its ack still carries the spend.
    let again = ingest(store.as_ref(), &batch, &prices, now).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(spend(&again, "key:aa"), spend(&ack, "key:aa"));
    assert_eq!(store.usage(Some("key:aa"), PeriodKind::Day, "2026-11", "2026-11").await.unwrap(), days);

    // Concurrent distinct batches on the same aggregates: none lost.
    let tasks: Vec<_> = (0..8u64)
        .map(|i| {
            let store = store.clone();
            let prices = prices.clone();
            tokio::spawn(async move {
                let b = UsageBatch {
                    batch_id: format!("envoy-{i}/1/1"),
                    rows: vec![UsageRow {
                        caller: "key:busy".into(),
                        provider: "openai".into(),
                        model: "gpt-4o-mini".into(),
                        day: "2026-11-27".into(),
                        requests: 1,
                        input: 1000 + i,
                        output: 10,
                        cache_read: 0,
                        cache_creation: 0,
                        reasoning: 0,
                    }],
                    spend_for: vec![],
                };
                ingest(store.as_ref(), &b, &prices, now).await.unwrap()
            })
        })
        .collect();
    for t in tasks {
        assert!(!t.await.unwrap().duplicate);
    }
    let busy = store.usage(Some("key:busy"), PeriodKind::Day, "2026-11-27", "2026-11-27").await.unwrap();
    assert_eq!(busy.len(), 1);
    assert_eq!((busy[0].counters.requests, busy[0].counters.input), (8, 8 * 1000 + 28));
    let busy_cost = (8 * 1000 + 28) * 150_000 + 80 * 600_000;
    assert_eq!(busy[0].counters.cost_pusd, busy_cost);
    assert_eq!(
        store.caller_spend(&["key:busy".into(), "key:none".into()], "2026-11-27", "2026-11").await.unwrap(),
        vec![(busy_cost, busy_cost), (0, 0)]
    );

    // A large batch goes in several chunks; one delivered before an interruption counts once.
    let rows: Vec<UsageRow> = (0..150u64)
        .map(|i| row(&format!("jwt:c{i:03}"), "openai", "gpt-4o-mini", "2026-11-27", 1, 10 + i, 1))
        .collect();
    let big = UsageBatch { batch_id: "envoy-big/1/9".into(), rows, spend_for: vec![] };
    let chunks = plan(&big, &prices);
    assert!(chunks.len() >= 3, "{} chunks", chunks.len());
    assert!(store.apply_usage(&chunks[1].marker, &chunks[1].increments, now).await.unwrap());
    let ack = ingest(store.as_ref(), &big, &prices, now).await.unwrap();
    assert!(!ack.duplicate, "the other chunks were new");
    assert_eq!(ack.spend.len(), 150);
    let all = store.usage(None, PeriodKind::Day, "2026-11-27", "2026-11-27").await.unwrap();
    let big_rows: Vec<_> = all.iter().filter(|a| a.caller.starts_with("jwt:c")).collect();
    assert_eq!(big_rows.len(), 150);
    for (i, a) in big_rows.iter().enumerate() {
        let i = i as u64;
        assert_eq!((a.counters.requests, a.counters.input), (1, 10 + i), "{}", a.caller);
        assert_eq!(a.counters.cost_pusd, (10 + i) * 150_000 + 600_000);
        let s = ack.spend.iter().find(|s| s.caller == a.caller).unwrap();
        assert_eq!(s.day_cost_pusd, a.counters.cost_pusd);
    }
    assert!(ingest(store.as_ref(), &big, &prices, now).await.unwrap().duplicate);
    assert_eq!(store.usage(None, PeriodKind::Day, "2026-11-27", "2026-11-27").await.unwrap(), all);

    // Usage never moves the config revision (it would rebuild every filter's snapshot).
    let r = store.revision().await.unwrap();
    let b = UsageBatch {
        batch_id: "rev/1/1".into(),
        rows: vec![row("key:aa", "openai", "gpt-4o-mini", "2026-11-27", 1, 1, 1)],
        spend_for: vec![],
    };
    ingest(store.as_ref(), &b, &prices, now).await.unwrap();
    assert_eq!(store.revision().await.unwrap(), r);
}

/// The audit trail: one record per write in the write's transaction, listed newest first with
/// filters, time range and pagination; a write whose audit record cannot be written fails whole.
pub async fn audit_trail(store: &dyn Store) {
    use control_plane::audit::{Action, AuditQuery, Via};
    let actor = "tool:conformance-audit";
    // Synthetic request times (one second apart, long ago) make the time filters exact.
    let t0 = 1_000_000_000_000u64;
    let at = |i: u64, rid: &str| AuditContext::fixed(actor, Via::Api, rid, t0 + i * 1000);
    let rev = store.revision().await.unwrap();
    store
        .create(
            Kind::Provider,
            "aud-p",
            &json!({"kind": "openai", "credential": "env:AUD_REF"}),
            None,
            &at(0, "00000000000000a0"),
        )
        .await
        .unwrap();
    store
        .update(
            Kind::Provider,
            "aud-p",
            Some(1),
            &json!({"kind": "anthropic", "credential": "env:AUD_REF2"}),
            &at(1, "00000000000000a1"),
        )
        .await
        .unwrap();
    store
        .create(Kind::Route, "aud-r", &json!({"model": "aud-r", "targets": []}), None, &at(2, "00000000000000a2"))
        .await
        .unwrap();
    let first = "aud-hash-1".to_string();
    store
        .create(Kind::Key, "aud-k", &json!({"name": "aud-k", "owner": "o"}), Some(&first), &at(3, "00000000000000a3"))
        .await
        .unwrap();
    let rotated = json!({"name": "aud-k", "owner": "o", "rotation": {"secret_hash": "aud-hash-2", "previous_hash": first, "rotated_at": 1, "previous_expires_at": 2}});
    store.rotate_key("aud-k", Some(1), &rotated, "aud-hash-2", None, &at(4, "00000000000000a4")).await.unwrap();
    store
        .update(
            Kind::Key,
            "aud-k",
            Some(2),
            &json!({"name": "aud-k", "owner": "o", "status": "revoked"}),
            &at(5, "00000000000000a5").with_action(Action::Revoke),
        )
        .await
        .unwrap();
    store.delete(Kind::Route, "aud-r", None, &at(6, "00000000000000a6")).await.unwrap();
    assert_eq!(store.revision().await.unwrap(), rev + 7, "each write still moves the revision by one");

    let q = |f: &dyn Fn(&mut AuditQuery)| {
        let mut q = AuditQuery { actor: Some(actor.to_string()), limit: 100, ..Default::default() };
        f(&mut q);
        q
    };
    let all = store.list_audit(&q(&|_| {})).await.unwrap();
    assert_eq!(all.next, None);
    type Summary<'a> = (Action, &'a str, &'a str, Option<u64>, Option<u64>);
    let summary: Vec<Summary> = all
        .items
        .iter()
        .map(|r| (r.action, r.kind.as_str(), r.name.as_str(), r.version_before, r.version_after))
        .collect();
    assert_eq!(
        summary,
        vec![
            (Action::Delete, "route", "aud-r", Some(1), None),
            (Action::Revoke, "key", "aud-k", Some(2), Some(3)),
            (Action::Rotate, "key", "aud-k", Some(1), Some(2)),
            (Action::Create, "key", "aud-k", None, Some(1)),
            (Action::Create, "route", "aud-r", None, Some(1)),
            (Action::Update, "provider", "aud-p", Some(1), Some(2)),
            (Action::Create, "provider", "aud-p", None, Some(1)),
        ],
        "newest first, one record per write"
    );
    let update = &all.items[5];
    assert_eq!(update.diff["kind"].before, json!("openai"));
    assert_eq!(update.diff["kind"].after, json!("anthropic"));
    assert_eq!(update.diff["credential"].after, json!("<redacted>"));
    assert_eq!(update.time, "2001-09-09T01:46:41.000Z");
    assert_eq!(update.request_id, "00000000000000a1");
    let stored = serde_json::to_string(&all.items).unwrap();
    for secret in ["AUD_REF", "aud-hash-1", "aud-hash-2"] {
        assert!(!stored.contains(secret), "{secret} in an audit record: {stored}");
    }

    // Filters: kind, kind + name (one object's history), name alone, another actor.
    let keys = store.list_audit(&q(&|q| q.kind = Some(Kind::Key))).await.unwrap();
    assert_eq!(
        keys.items.iter().map(|r| r.action).collect::<Vec<_>>(),
        vec![Action::Revoke, Action::Rotate, Action::Create]
    );
    let route = store
        .list_audit(&q(&|q| {
            q.kind = Some(Kind::Route);
            q.name = Some("aud-r".into());
        }))
        .await
        .unwrap();
    assert_eq!(route.items.iter().map(|r| r.action).collect::<Vec<_>>(), vec![Action::Delete, Action::Create]);
    let by_name = store.list_audit(&q(&|q| q.name = Some("aud-p".into()))).await.unwrap();
    assert_eq!(by_name.items.len(), 2);
    let other = store.list_audit(&q(&|q| q.actor = Some("tool:nobody".into()))).await.unwrap();
    assert!(other.items.is_empty());

    // Time range: since inclusive, until exclusive.
    let range = store
        .list_audit(&q(&|q| {
            q.since_ms = Some(t0 + 2000);
            q.until_ms = Some(t0 + 5000);
        }))
        .await
        .unwrap();
    assert_eq!(
        range.items.iter().map(|r| r.action).collect::<Vec<_>>(),
        vec![Action::Rotate, Action::Create, Action::Create]
    );
    let none = store.list_audit(&q(&|q| q.until_ms = Some(t0))).await.unwrap();
    assert!(none.items.is_empty());

    // Pagination: pages of 3 (with and without a filter the store cannot put in its key range)
    // cover the same records in the same order.
    for filtered in [false, true] {
        let mut seen = Vec::new();
        let mut before: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = store
                .list_audit(&q(&|q| {
                    q.limit = 3;
                    q.before_id = before.clone();
                    if filtered {
                        q.kind = Some(Kind::Key);
                    }
                }))
                .await
                .unwrap();
            pages += 1;
            assert!(page.items.len() <= 3);
            seen.extend(page.items.iter().map(|r| r.id.clone()));
            match page.next {
                Some(n) => before = Some(n),
                None => break,
            }
        }
        let want: Vec<String> = if filtered { &keys } else { &all }.items.iter().map(|r| r.id.clone()).collect();
        assert_eq!(seen, want, "filtered: {filtered}");
        assert_eq!(pages, want.len().div_ceil(3), "no empty last page");
    }

    // A failed write leaves no record.
    let failed = store.update(Kind::Provider, "aud-p", Some(1), &json!({}), &at(7, "00000000000000a7")).await;
    assert!(matches!(failed, Err(StoreError::VersionMismatch { .. })));
    assert_eq!(store.list_audit(&q(&|_| {})).await.unwrap().items.len(), 7);

    // An audit record that cannot be written (its id is taken: a replayed request) fails the
    // write whole: object, key hash claims and revision unchanged.
    let rev = store.revision().await.unwrap();
    let replay = || at(1, "00000000000000a1");
    let e = store.update(Kind::Provider, "aud-p", Some(2), &json!({"kind": "gemini"}), &replay()).await;
    assert!(matches!(e, Err(StoreError::Backend(_))), "{e:?}");
    let p = store.get(Kind::Provider, "aud-p").await.unwrap().unwrap();
    assert_eq!((p.version, p.doc["kind"].clone()), (2, json!("anthropic")));
    let e = store.create(Kind::Route, "aud-r2", &json!({}), None, &replay()).await;
    assert!(matches!(e, Err(StoreError::Backend(_))), "{e:?}");
    assert!(store.get(Kind::Route, "aud-r2").await.unwrap().is_none());
    let e = store.create(Kind::Key, "aud-k2", &json!({}), Some("aud-hash-9"), &replay()).await;
    assert!(matches!(e, Err(StoreError::Backend(_))), "{e:?}");
    assert!(store.find_key_by_hash("aud-hash-9").await.unwrap().is_none(), "no hash claimed");
    let e = store.delete(Kind::Provider, "aud-p", None, &replay()).await;
    assert!(matches!(e, Err(StoreError::Backend(_))), "{e:?}");
    assert!(store.get(Kind::Provider, "aud-p").await.unwrap().is_some());
    store
        .update(
            Kind::Key,
            "aud-k",
            None,
            &json!({"name": "aud-k", "owner": "o", "status": "active"}),
            &AuditContext::tool("test"),
        )
        .await
        .unwrap();
    let e = store.rotate_key("aud-k", None, &json!({"name": "aud-k"}), "aud-hash-3", None, &replay()).await;
    assert!(matches!(e, Err(StoreError::Backend(_))), "{e:?}");
    assert!(store.find_key_by_hash("aud-hash-3").await.unwrap().is_none(), "no hash claimed");
    assert_eq!(store.revision().await.unwrap(), rev + 1, "only the one good write counted");
    let after = store.list_audit(&q(&|_| {})).await.unwrap();
    assert_eq!(after.items, all.items, "the replayed id kept its first record, nothing added");

    store.delete(Kind::Provider, "aud-p", None, &AuditContext::tool("test")).await.unwrap();
    store.delete(Kind::Key, "aud-k", None, &AuditContext::tool("test")).await.unwrap();
}
