//! Prices over REST and in the snapshot, and key budgets.

mod common;

use axum::http::StatusCode;
use common::server::{call, error_param, wait_for_snapshot, TestApp, READ_ONLY};
use gateway_core::pricing::{BudgetLimit, BudgetPeriod};
use serde_json::json;

#[tokio::test]
async fn price_crud_validation_and_snapshot() {
    let t = TestApp::new();
    let p = json!({"provider": "openai", "model": "gpt-4o-mini", "input_per_mtok": 0.15, "output_per_mtok": 0.6});
    let (s, h, v) = t.admin("POST", "/v1/prices", Some(p.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["name"], "openai/gpt-4o-mini");
    assert_eq!(h.get("etag").unwrap(), "\"1\"");
    let (s, _, v) = t.admin("POST", "/v1/prices", Some(p.clone())).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("already_exists")));

    // Every bad field is named.
    for (body, param) in [
        (json!({"provider": "openai", "model": "m", "input_per_mtok": -1, "output_per_mtok": 1}), "input_per_mtok"),
        (json!({"provider": "openai", "model": "m", "input_per_mtok": 1, "output_per_mtok": 1e9}), "output_per_mtok"),
        (
            json!({"provider": "openai", "model": "m", "input_per_mtok": 1, "output_per_mtok": 1, "cache_read_per_mtok": -0.1}),
            "cache_read_per_mtok",
        ),
        (
            json!({"provider": "openai", "model": "m", "input_per_mtok": 1, "output_per_mtok": 1, "cache_write_per_mtok": 200000}),
            "cache_write_per_mtok",
        ),
        (
            json!({"provider": "openai", "model": "m", "input_per_mtok": "cheap", "output_per_mtok": 1}),
            "input_per_mtok",
        ),
        (json!({"provider": "", "model": "m", "input_per_mtok": 1, "output_per_mtok": 1}), "provider"),
        (
            json!({"name": "other/m", "provider": "openai", "model": "m", "input_per_mtok": 1, "output_per_mtok": 1}),
            "name",
        ),
        (json!({"provider": "openai", "model": "m", "input_per_mtok": 1, "output_per_mtok": 1, "colour": 1}), "."),
    ] {
        let (s, _, v) = t.admin("POST", "/v1/prices", Some(body.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        let got = error_param(&v);
        if param == "." {
            assert!(v["error"]["message"].as_str().unwrap().contains("colour"), "{v}");
        } else {
            assert_eq!(got.as_deref(), Some(param), "{body}: {v}");
        }
    }

    // The slash in the name works literally and escaped; PUT honours If-Match.
    let (s, _, v) = t.admin("GET", "/v1/prices/openai%2Fgpt-4o-mini", None).await;
    assert_eq!((s, v["input_per_mtok"].as_f64()), (StatusCode::OK, Some(0.15)));
    let mut changed = p.clone();
    changed["output_per_mtok"] = json!(0.8);
    let body = Some(("application/json", changed.to_string().into_bytes()));
    let (s, _, _) = call(
        &t.app,
        "PUT",
        "/v1/prices/openai/gpt-4o-mini",
        Some(common::server::ADMIN),
        body.clone(),
        &[("if-match", "\"7\"")],
    )
    .await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED);
    let (s, h, v) = call(
        &t.app,
        "PUT",
        "/v1/prices/openai/gpt-4o-mini",
        Some(common::server::ADMIN),
        body,
        &[("if-match", "\"1\"")],
    )
    .await;
    assert_eq!((s, h.get("etag").unwrap().to_str().unwrap()), (StatusCode::OK, "\"2\""), "{v}");
    // A PUT cannot move a price to another provider model.
    let (s, _, v) = t
        .admin(
            "PUT",
            "/v1/prices/openai/gpt-4o-mini",
            Some(json!({"provider": "openai", "model": "gpt-4o", "input_per_mtok": 1, "output_per_mtok": 1})),
        )
        .await;
    assert_eq!((s, error_param(&v).as_deref()), (StatusCode::BAD_REQUEST, Some("name")));
    let (s, _, _) = call(
        &t.app,
        "POST",
        "/v1/prices",
        Some(READ_ONLY),
        Some(("application/json", p.to_string().into_bytes())),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, v) = call(&t.app, "GET", "/v1/prices", Some(READ_ONLY), None, &[]).await;
    assert_eq!((s, v["items"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)));

    let snap = wait_for_snapshot(&t).await;
    let prices = &snap.snapshot.config.prices;
    assert_eq!(prices.len(), 1);
    assert_eq!(
        (prices[0].provider.as_str(), prices[0].model.as_str(), prices[0].output_per_mtok),
        ("openai", "gpt-4o-mini", 0.8)
    );
    let table = gateway_core::pricing::PriceTable::new(prices).unwrap();
    assert_eq!(table.get("openai", "gpt-4o-mini").map(|p| (p.input, p.output)), Some((150_000, 800_000)));

    let (s, _, _) = t.admin("DELETE", "/v1/prices/openai/gpt-4o-mini", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(wait_for_snapshot(&t).await.snapshot.config.prices.is_empty());
}

#[tokio::test]
async fn apply_manages_prices_only_when_listed() {
    let t = TestApp::new();
    let price = json!({"provider": "anthropic", "model": "claude-3-5-haiku", "input_per_mtok": 0.8, "output_per_mtok": 4, "cache_read_per_mtok": 0.08});
    let doc = json!({"providers": [], "routes": [], "prices": [price]});
    let (s, _, v) = t.admin("POST", "/v1/apply", Some(doc.clone())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["diff"], "+ price anthropic/claude-3-5-haiku\n");
    let (_, _, v) = t.admin("POST", "/v1/apply", Some(doc)).await;
    assert_eq!(v["diff"], "no changes\n", "re-applying is a no-op");
    // A document without `prices` leaves them alone.
    let (_, _, v) = t.admin("POST", "/v1/apply", Some(json!({"providers": [], "routes": []}))).await;
    assert_eq!(v["diff"], "no changes\n");
    let (s, _, v) = t
        .admin(
            "POST",
            "/v1/apply?dry_run=true",
            Some(json!({"prices": [{"provider": "a", "model": "m", "input_per_mtok": 1, "output_per_mtok": -2}]})),
        )
        .await;
    assert_eq!((s, error_param(&v).as_deref()), (StatusCode::BAD_REQUEST, Some("prices[0].output_per_mtok")));
    let twice = json!({"provider": "a", "model": "m", "input_per_mtok": 1, "output_per_mtok": 2});
    let (s, _, v) = t.admin("POST", "/v1/apply", Some(json!({"prices": [twice, twice]}))).await;
    assert_eq!((s, error_param(&v).as_deref()), (StatusCode::BAD_REQUEST, Some("prices[1].model")));
    // `prices: []` deletes the listed-nowhere prices only with prune.
    let (_, _, v) = t.admin("POST", "/v1/apply", Some(json!({"prices": []}))).await;
    assert_eq!(
        v["diff"],
        "no changes\n= price anthropic/claude-3-5-haiku (kept: not in document; use --prune to delete)\n"
    );
    let (_, _, v) = t.admin("POST", "/v1/apply?prune=true", Some(json!({"prices": []}))).await;
    assert_eq!(v["diff"], "- price anthropic/claude-3-5-haiku\n");
}

#[tokio::test]
async fn key_budgets_are_validated_and_published_in_picodollars() {
    let t = TestApp::new();
    for (budget, param) in [
        (json!({"limit_usd": -1}), "budget.limit_usd"),
        (json!({"limit_usd": 0}), "budget.limit_usd"),
        (json!({"limit_usd": 1e12}), "budget.limit_usd"),
        (json!({"limit_usd": 5, "period": "week"}), "budget.period"),
        (json!({"limit_usd": 5, "every": "day"}), "budget"),
    ] {
        let (s, _, v) = t
            .admin(
                "POST",
                "/v1/keys",
                Some(json!({"name": "k", "owner": "o", "allowed_models": ["*"], "budget": budget})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{budget}: {v}");
        let got = error_param(&v).unwrap_or_default();
        assert!(got == param || got.starts_with(param), "{budget}: {got} vs {param}");
    }
    let (s, _, v) = t
        .admin("POST", "/v1/keys", Some(json!({"name": "capped", "owner": "o", "allowed_models": ["*"], "budget": {"limit_usd": 2.5, "period": "day"}})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["budget"], json!({"limit_usd": 2.5, "period": "day"}));
    let (s, _, _) = t
        .admin(
            "POST",
            "/v1/keys",
            Some(json!({"name": "monthly", "owner": "o", "allowed_models": ["*"], "budget": {"limit_usd": 100}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    t.admin("POST", "/v1/keys", Some(json!({"name": "free", "owner": "o", "allowed_models": ["*"]}))).await;

    let snap = wait_for_snapshot(&t).await;
    let budget = |name: &str| snap.snapshot.keys.iter().find(|k| k.name == name).unwrap().budget;
    assert_eq!(budget("capped"), Some(BudgetLimit { limit_pusd: 2_500_000_000_000, period: BudgetPeriod::Day }));
    assert_eq!(budget("monthly"), Some(BudgetLimit { limit_pusd: 100_000_000_000_000, period: BudgetPeriod::Month }));
    assert_eq!(budget("free"), None);

    // Removing the budget with a PUT publishes an unlimited key.
    let (s, _, v) = t.admin("PUT", "/v1/keys/capped", Some(json!({"owner": "o", "allowed_models": ["*"]}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let snap = wait_for_snapshot(&t).await;
    assert_eq!(snap.snapshot.keys.iter().find(|k| k.name == "capped").unwrap().budget, None);
}
