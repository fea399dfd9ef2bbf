//! `GET /v1/audit`: every mutation of the REST API and of apply leaves one record, with the
//! token's actor, versions and a redacted diff; filters, time range, pagination, 400s.

mod common;

use std::collections::BTreeSet;

use axum::http::StatusCode;
use common::server::{call, error_param, TestApp, ADMIN, ADMIN_2, READ_ONLY};
use control_plane::audit::actor_for;
use serde_json::{json, Value};

fn provider(name: &str) -> Value {
    json!({"name": name, "kind": "openai", "cluster": format!("cluster_{name}"), "credential": "env:AI_GATEWAY_PROVIDER_OPENAI"})
}

/// Every record (all pages of 500), newest first, read with `token`.
async fn audit(t: &TestApp, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut uri = format!("/v1/audit?limit=500{query}");
        if let Some(c) = &cursor {
            uri.push_str(&format!("&cursor={c}"));
        }
        let (s, _, v) = call(&t.app, "GET", &uri, Some(READ_ONLY), None, &[]).await;
        assert_eq!(s, StatusCode::OK, "{uri}: {v}");
        out.extend(v["items"].as_array().unwrap().iter().cloned());
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

fn summary(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} {}->{}",
                r["action"].as_str().unwrap(),
                r["via"].as_str().unwrap(),
                r["kind"].as_str().unwrap(),
                r["name"].as_str().unwrap(),
                r["version_before"],
                r["version_after"]
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mutation_is_recorded_once_with_actor_versions_and_diff() {
    let t = TestApp::new();
    let ok = |s: StatusCode| assert!(s.is_success(), "{s}");
    ok(t.admin("POST", "/v1/providers", Some(provider("p"))).await.0);
    let mut p = provider("p");
    p["cluster"] = json!("cluster_2");
    ok(t.admin("PUT", "/v1/providers/p", Some(p)).await.0);
    let route = json!({"model": "m", "targets": [{"provider": "p", "model": "gpt-4o"}]});
    ok(t.admin("POST", "/v1/routes", Some(route)).await.0);
    let route = json!({"model": "m", "targets": [{"provider": "p", "model": "gpt-4o", "weight": 3}]});
    ok(t.admin("PUT", "/v1/routes/m", Some(route)).await.0);
    ok(t.admin("POST", "/v1/keys", Some(json!({"name": "k", "owner": "o", "allowed_models": ["m"]}))).await.0);
    ok(t.admin("PUT", "/v1/keys/k", Some(json!({"owner": "o2", "allowed_models": ["m", "n"]}))).await.0);
    ok(t.admin("POST", "/v1/keys/k/rotate", Some(json!({"grace_seconds": 60}))).await.0);
    ok(t.admin("POST", "/v1/keys/k/revoke", None).await.0);
    // Revoking a revoked key changes nothing, so it records nothing.
    ok(t.admin("POST", "/v1/keys/k/revoke", None).await.0);
    let price = json!({"provider": "p", "model": "gpt-4o", "input_per_mtok": 2.5, "output_per_mtok": 10.0});
    ok(t.admin("POST", "/v1/prices", Some(price)).await.0);
    let price = json!({"provider": "p", "model": "gpt-4o", "input_per_mtok": 3.0, "output_per_mtok": 10.0});
    let body = Some(("application/json", price.to_string().into_bytes()));
    // The second admin token changes the price.
    ok(call(&t.app, "PUT", "/v1/prices/p/gpt-4o", Some(ADMIN_2), body, &[]).await.0);
    ok(t.admin("DELETE", "/v1/prices/p/gpt-4o", None).await.0);
    ok(t.admin("DELETE", "/v1/keys/k", None).await.0);
    ok(t.admin("DELETE", "/v1/routes/m", None).await.0);
    // Failed writes record nothing.
    assert_eq!(t.admin("POST", "/v1/providers", Some(provider("p"))).await.0, StatusCode::CONFLICT);
    assert_eq!(t.admin("DELETE", "/v1/routes/missing", None).await.0, StatusCode::NOT_FOUND);
    // A dry run records nothing; a real apply records each change under one request id.
    let doc = json!({"providers": [provider("p"), provider("q")],
        "routes": [{"model": "a", "targets": [{"provider": "q", "model": "x"}]}]});
    ok(t.admin("POST", "/v1/apply?dry_run=true", Some(doc.clone())).await.0);
    ok(t.admin("POST", "/v1/apply", Some(doc)).await.0);
    ok(t.admin("DELETE", "/v1/providers/p", None).await.0);

    let records = audit(&t, "").await;
    assert_eq!(
        summary(&records),
        vec![
            "delete api provider p 3->null",
            "create apply route a null->1",
            "create apply provider q null->1",
            "update apply provider p 2->3",
            "delete api route m 2->null",
            "delete api key k 4->null",
            "delete api price p/gpt-4o 2->null",
            "update api price p/gpt-4o 1->2",
            "create api price p/gpt-4o null->1",
            "revoke api key k 3->4",
            "rotate api key k 2->3",
            "update api key k 1->2",
            "create api key k null->1",
            "update api route m 1->2",
            "create api route m null->1",
            "update api provider p 1->2",
            "create api provider p null->1",
        ]
    );
    let admin = actor_for("admin", ADMIN);
    assert!(admin.starts_with("admin:") && admin.len() == 14, "{admin}");
    let actors: BTreeSet<&str> = records.iter().map(|r| r["actor"].as_str().unwrap()).collect();
    let admin_2 = actor_for("admin", ADMIN_2);
    assert_eq!(actors, BTreeSet::from([admin.as_str(), admin_2.as_str()]));
    assert_eq!(records[7]["actor"], admin_2.as_str());
    // Ids unique and descending; times RFC 3339 with milliseconds, descending.
    let ids: Vec<&str> = records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    let times: Vec<&str> = records.iter().map(|r| r["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    assert!(times.iter().all(|t| t.len() == 24 && t.ends_with('Z') && t.as_bytes()[19] == b'.'), "{times:?}");
    // One request id per request; the apply's three records share theirs.
    let rids: Vec<&str> = records.iter().map(|r| r["request_id"].as_str().unwrap()).collect();
    assert!(rids[1] == rids[2] && rids[2] == rids[3], "{rids:?}");
    assert_eq!(rids.iter().collect::<BTreeSet<_>>().len(), records.len() - 2);

    // Diffs: only changed fields; allowlisted values in clear, the rest redacted.
    let diff = |i: usize| records[i]["diff"].clone();
    assert_eq!(diff(15), json!({"cluster": {"before": "cluster_p", "after": "cluster_2"}}));
    assert_eq!(diff(16)["credential"], json!({"before": null, "after": "<redacted>"}));
    assert_eq!(diff(16)["kind"], json!({"before": null, "after": "openai"}));
    assert_eq!(diff(13), json!({"targets[0].weight": {"before": 1, "after": 3}}));
    assert_eq!(diff(11)["owner"], json!({"before": "o", "after": "o2"}));
    assert_eq!(diff(11)["allowed_models"], json!({"before": ["m"], "after": ["m", "n"]}));
    let rotate = diff(10);
    assert_eq!(rotate["rotation.secret_hash"], json!({"before": null, "after": "<redacted>"}));
    assert_eq!(rotate["rotation.previous_hash"], json!({"before": null, "after": "<redacted>"}));
    assert!(rotate["rotation.rotated_at"]["after"].is_u64());
    assert_eq!(diff(9), json!({"status": {"before": "active", "after": "revoked"}}));
    assert_eq!(diff(7), json!({"input_per_mtok": {"before": 2.5, "after": 3.0}}));
    assert_eq!(diff(4)["model"], json!({"before": "m", "after": null}));
    assert_eq!(diff(3), json!({"cluster": {"before": "cluster_2", "after": "cluster_p"}}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_time_range_and_pagination() {
    let t = TestApp::new();
    let mut times = Vec::new();
    for i in 0..6 {
        let (s, _, _) = t.admin("POST", "/v1/providers", Some(provider(&format!("p{i}")))).await;
        assert_eq!(s, StatusCode::CREATED);
        // Distinct request times (milliseconds) for the range checks.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        times.push(audit(&t, "").await[0]["time"].as_str().unwrap().to_string());
    }
    let body = Some(("application/json", provider("p0").to_string().replace("cluster_p0", "c9").into_bytes()));
    assert_eq!(call(&t.app, "PUT", "/v1/providers/p0", Some(ADMIN_2), body, &[]).await.0, StatusCode::OK);
    assert_eq!(
        t.admin("POST", "/v1/keys", Some(json!({"name": "p0", "owner": "o", "allowed_models": ["*"]}))).await.0,
        StatusCode::CREATED
    );
    let all = audit(&t, "").await;
    assert_eq!(all.len(), 8);

    let names = |rs: &[Value]| {
        rs.iter()
            .map(|r| format!("{}/{}", r["kind"].as_str().unwrap(), r["name"].as_str().unwrap()))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&audit(&t, "&kind=key").await), vec!["key/p0"]);
    assert_eq!(names(&audit(&t, "&kind=provider&name=p0").await), vec!["provider/p0", "provider/p0"]);
    assert_eq!(names(&audit(&t, "&name=p0").await), vec!["key/p0", "provider/p0", "provider/p0"]);
    let admin_2 = actor_for("admin", ADMIN_2);
    let by_actor = audit(&t, &format!("&actor={admin_2}")).await;
    assert_eq!(summary(&by_actor), vec!["update api provider p0 1->2"]);
    assert!(audit(&t, "&actor=admin:00000000").await.is_empty());
    assert!(audit(&t, "&kind=price").await.is_empty());

    // since inclusive, until exclusive (times[i] is the creation of p{i}).
    let enc = |s: &str| s.replace(':', "%3A");
    let range = audit(&t, &format!("&since={}&until={}", enc(&times[1]), enc(&times[4]))).await;
    assert_eq!(names(&range), vec!["provider/p3", "provider/p2", "provider/p1"]);
    let since = audit(&t, &format!("&since={}&kind=provider", enc(&times[5]))).await;
    assert_eq!(names(&since), vec!["provider/p0", "provider/p5"]);
    // An offset is accepted (the parser's own tests cover non-zero offsets).
    let same = audit(&t, &format!("&until={}", enc(&times[4].replace('Z', "%2B00:00")))).await;
    assert_eq!(same.len(), 4);

    // Pages of 3: 3 + 3 + 2, no empty page, the cursor is opaque and continues exactly.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let uri = match &cursor {
            Some(c) => format!("/v1/audit?limit=3&cursor={c}"),
            None => "/v1/audit?limit=3".to_string(),
        };
        let (s, _, v) = call(&t.app, "GET", &uri, Some(ADMIN), None, &[]).await;
        assert_eq!(s, StatusCode::OK);
        pages += 1;
        let items = v["items"].as_array().unwrap();
        assert!(!items.is_empty() && items.len() <= 3);
        seen.extend(items.iter().cloned());
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, all);
    // Filtered pages too.
    let (_, _, v) = call(&t.app, "GET", "/v1/audit?name=p0&limit=2", Some(ADMIN), None, &[]).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    let c = v["next_cursor"].as_str().unwrap();
    let (_, _, v) = call(&t.app, "GET", &format!("/v1/audit?name=p0&limit=2&cursor={c}"), Some(ADMIN), None, &[]).await;
    assert_eq!(names(v["items"].as_array().unwrap()), vec!["provider/p0"]);
    assert_eq!(v["next_cursor"], Value::Null);
}

#[tokio::test]
async fn bad_queries_are_400_naming_the_parameter_and_a_token_is_required() {
    let t = TestApp::new();
    for (query, param) in [
        ("kind=model", "kind"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("since=yesterday", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        ("since=2026-12-02", "since"),
        ("cursor=zz", "cursor"),
        ("cursor=6869", "cursor"),
        ("actor=", "actor"),
        ("object=p", "object"),
        ("kind=key&kind=route", "kind"),
        ("dry_run=1", "dry_run"),
    ] {
        let (s, _, v) = call(&t.app, "GET", &format!("/v1/audit?{query}"), Some(ADMIN), None, &[]).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{query}: {v}");
        assert_eq!(error_param(&v).as_deref(), Some(param), "{query}: {v}");
    }
    let (s, _, v) = call(&t.app, "GET", "/v1/audit?limit=500", Some(READ_ONLY), None, &[]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"items": [], "next_cursor": null}));
    assert_eq!(call(&t.app, "GET", "/v1/audit", None, None, &[]).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&t.app, "POST", "/v1/audit", Some(ADMIN), None, &[]).await.0, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(call(&t.app, "DELETE", "/v1/audit", Some(READ_ONLY), None, &[]).await.0, StatusCode::FORBIDDEN);
}
