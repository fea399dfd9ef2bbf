//! Issue 13, control plane API: authorisation decided once from the parsed query (a read-only
//! token can never write, whatever the request), credential references confined, apply deletes
//! only with prune, error shapes for oversized and malformed bodies, idempotent revoke.

mod common;

use axum::http::StatusCode;
use common::server::{call, error_param, wait_for_snapshot, TestApp, ADMIN, READ_ONLY};
use control_plane::credentials::CredentialPolicy;
use control_plane::store::{list_all, Kind, Store};
use proptest::prelude::*;
use serde_json::{json, Value};

fn provider(name: &str) -> Value {
    json!({"name": name, "kind": "openai", "cluster": format!("cluster_{name}"),
           "credential": "env:AI_GATEWAY_PROVIDER_OPENAI"})
}

/// Everything the store holds, with versions: equal dumps mean nothing was written.
async fn dump(store: &dyn Store) -> Value {
    let mut all = Vec::new();
    for kind in [Kind::Provider, Kind::Route, Kind::Key, Kind::Price] {
        for r in list_all(store, kind).await.unwrap() {
            all.push(json!([kind.as_str(), r.name, r.version, r.doc, r.key_hash, r.created_at, r.updated_at]));
        }
    }
    // The audit trail too: a refused or read-only request must leave no record.
    let audit = store.list_audit(&control_plane::audit::AuditQuery { limit: 500, ..Default::default() }).await.unwrap();
    let audit: Vec<String> = audit.items.iter().map(|r| r.id.clone()).collect();
    json!({"revision": store.revision().await.unwrap(), "objects": all, "audit": audit})
}

/// A provider, a route, a key and a price, so that deletions, updates and revocations would show.
async fn seeded() -> TestApp {
    let t = TestApp::new();
    for (uri, body) in [
        ("/v1/providers", provider("openai")),
        ("/v1/routes", json!({"model": "gpt-4o", "targets": [{"provider": "openai", "model": "gpt-4o"}]})),
        ("/v1/keys", json!({"name": "team", "owner": "o", "allowed_models": ["*"]})),
        ("/v1/prices", json!({"provider": "openai", "model": "gpt-4o", "input_per_mtok": 1.0, "output_per_mtok": 2.0})),
    ] {
        let (s, _, v) = t.admin("POST", uri, Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{uri}: {v}");
    }
    t
}

fn bytes(v: &Value) -> Option<(&'static str, Vec<u8>)> {
    Some(("application/json", v.to_string().into_bytes()))
}

#[tokio::test]
async fn dry_run_given_twice_is_400_and_the_read_only_token_writes_nothing() {
    let t = seeded().await;
    let before = dump(t.store.as_ref()).await;
    // The exact reproduction of finding 1: the middleware accepted it (one value true), the
    // handler applied it (last value false). An empty document would also have deleted everything.
    let doc = json!({"providers": [provider("evil")], "routes": []});
    for token in [READ_ONLY, ADMIN] {
        for uri in
            ["/v1/apply?dry_run=1&dry_run=0", "/v1/apply?dry_run=true&dry_run=false", "/v1/apply?dry_run&dry_run=0"]
        {
            let (s, _, v) = call(&t.app, "POST", uri, Some(token), bytes(&doc), &[]).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {v}");
            assert_eq!(error_param(&v).as_deref(), Some("dry_run"), "{v}");
            assert_eq!(v["error"]["code"], "duplicate_parameter");
        }
    }
    // Odd spellings of the flag are no way around it either: one parse, one meaning.
    for (uri, status) in [
        ("/v1/apply?dry%5Frun=1&dry_run=0", StatusCode::BAD_REQUEST),
        ("/v1/apply?dry_run=yes", StatusCode::BAD_REQUEST),
        ("/v1/apply?dryrun=1", StatusCode::BAD_REQUEST),
        ("/v1/apply?dry_run=1&prune=1&prune=0", StatusCode::BAD_REQUEST),
        ("/v1/apply?dry_run=0", StatusCode::FORBIDDEN),
        ("/v1/apply?dry_run=false", StatusCode::FORBIDDEN),
        ("/v1/apply?prune=true", StatusCode::FORBIDDEN),
        ("/v1/apply?dry_run=%31", StatusCode::OK),
        ("/v1/apply?dry_run=1&prune=1", StatusCode::OK),
    ] {
        let (s, _, v) = call(&t.app, "POST", uri, Some(READ_ONLY), bytes(&json!({})), &[]).await;
        assert_eq!(s, status, "{uri}: {v}");
        if s == StatusCode::OK {
            assert_eq!(v["dry_run"], true, "{uri}: {v}");
        } else {
            error_param(&v);
        }
    }
    assert_eq!(dump(t.store.as_ref()).await, before, "the store is unchanged");
}

#[tokio::test]
async fn unknown_or_repeated_query_parameters_are_400_on_every_endpoint() {
    let t = seeded().await;
    for (method, uri, param) in [
        ("GET", "/v1/providers?limit=1&limit=2", "limit"),
        ("GET", "/v1/providers?colour=red", "colour"),
        ("GET", "/v1/usage?period=day&period=month", "period"),
        ("POST", "/v1/keys/team/revoke?force=1", "force"),
        ("DELETE", "/v1/routes/gpt-4o?dry_run=1", "dry_run"),
        ("GET", "/v1/snapshot?x", "x"),
    ] {
        let (s, _, v) = call(&t.app, method, uri, Some(ADMIN), None, &[]).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{method} {uri}: {v}");
        assert_eq!(error_param(&v).as_deref(), Some(param), "{v}");
    }
    let (s, _, v) = t.admin("GET", "/v1/routes/gpt-4o", None).await;
    assert_eq!(s, StatusCode::OK, "the DELETE with a dry_run parameter deleted nothing: {v}");
    let (s, _, v) = t.admin("GET", "/v1/providers?limit=1", None).await;
    assert_eq!((s, v["items"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)));
}

fn methods() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
}

fn paths() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "/v1/providers",
        "/v1/providers/openai",
        "/v1/providers/ghost",
        "/v1/routes",
        "/v1/routes/gpt-4o",
        "/v1/routes/openai/gpt-4o",
        "/v1/keys",
        "/v1/keys/team",
        "/v1/keys/team/revoke",
        "/v1/keys/team/rotate",
        "/v1/keys/%74eam/revoke",
        "/v1/keys/team%2Frevoke",
        "/v1/keys/%FF",
        "/v1/routes/%C3%28",
        "/v1/prices",
        "/v1/prices/openai/gpt-4o",
        "/v1/apply",
        "/v1/apply/",
        "/v1//apply",
        "/V1/apply",
        "/v1/%61pply",
        "/v1/apply;dry_run=1",
        "/v1/snapshot",
        "/v1/usage",
        "/v1/audit",
        "/healthz",
        "/openapi.json",
        "/oauth2/token",
    ])
}

fn query() -> impl Strategy<Value = String> {
    let name = prop::sample::select(vec![
        "dry_run",
        "dry_run",
        "prune",
        "dry%5Frun",
        "%64ry_run",
        "DRY_RUN",
        "dry_run%5B%5D",
        "dryrun",
        "limit",
        "cursor",
        "period",
        "kind",
        "since",
        "dry_run%00",
        "",
    ]);
    let value = prop::sample::select(vec![
        None,
        Some(""),
        Some("1"),
        Some("0"),
        Some("true"),
        Some("false"),
        Some("TRUE"),
        Some("yes"),
        Some("%31"),
        Some("+1"),
        Some("1%00"),
        Some("0%26dry_run%3D1"),
    ]);
    let sep = prop::sample::select(vec!["&", "&", "&&", ";"]);
    prop::collection::vec((name, value, sep), 0..4).prop_map(|parts| {
        let mut q = String::new();
        for (i, (n, v, sep)) in parts.iter().enumerate() {
            if i > 0 {
                q.push_str(sep);
            }
            q.push_str(n);
            if let Some(v) = v {
                q.push('=');
                q.push_str(v);
            }
        }
        q
    })
}

fn bodies() -> impl Strategy<Value = Option<(&'static str, Vec<u8>)>> {
    let docs: Vec<Option<(&'static str, Vec<u8>)>> = vec![
        None,
        Some(("application/json", b"{}".to_vec())),
        Some(("application/yaml", b"".to_vec())),
        Some(("application/yaml", b"providers: []\nroutes: []\nprices: []\n".to_vec())),
        Some(("application/json", json!({"providers": [provider("new")], "routes": []}).to_string().into_bytes())),
        Some(("application/json", provider("new").to_string().into_bytes())),
        Some(("application/json", provider("openai").to_string().into_bytes())),
        Some((
            "application/json",
            json!({"model": "gpt-4o", "targets": [{"provider": "openai", "model": "x"}]}).to_string().into_bytes(),
        )),
        Some((
            "application/json",
            json!({"owner": "o", "allowed_models": ["*"], "status": "revoked"}).to_string().into_bytes(),
        )),
        Some(("application/json", json!({"grace_seconds": 0}).to_string().into_bytes())),
        Some(("application/json", b"{not json".to_vec())),
        Some(("text/plain", b"providers: []".to_vec())),
    ];
    prop::sample::select(docs)
}

#[test]
fn no_request_with_the_read_only_token_changes_the_store() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let t = rt.block_on(seeded());
    let before = rt.block_on(dump(t.store.as_ref()));
    let statuses = std::cell::RefCell::new(std::collections::BTreeMap::<u16, usize>::new());
    let config = ProptestConfig { cases: 600, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(method in methods(), path in paths(), q in query(), body in bodies(),
                      if_match in prop::sample::select(vec![None, Some("*"), Some("\"1\""), Some("\"99\"")]))| {
        let uri = if q.is_empty() { path.to_string() } else { format!("{path}?{q}") };
        let headers: Vec<(&str, &str)> = if_match.iter().map(|v| ("if-match", *v)).collect();
        let (status, _, v) = rt.block_on(call(&t.app, method, &uri, Some(READ_ONLY), body.clone(), &headers));
        *statuses.borrow_mut().entry(status.as_u16()).or_default() += 1;
        let after = rt.block_on(dump(t.store.as_ref()));
        prop_assert_eq!(&after, &before, "{} {} changed the store (answer {} {})", method, uri, status, v);
        // Every refusal is in the API's error shape (405 and 413 included), never a plain text.
        if status.as_u16() >= 400 && method != "HEAD" {
            prop_assert!(v.get("error").is_some(), "{} {}: {} {}", method, uri, status, v);
        }
    });
    // The generator reached the interesting outcomes: reads, dry runs, refusals of each kind.
    let statuses = statuses.into_inner();
    for s in [200u16, 400, 403] {
        assert!(statuses.get(&s).copied().unwrap_or(0) > 5, "status {s} barely generated: {statuses:?}");
    }
}

#[tokio::test]
async fn credentials_are_confined_to_the_prefix_and_never_the_control_planes_tokens() {
    let t = seeded().await;
    let before = dump(t.store.as_ref()).await;
    for var in
        ["CP_WATCH_TOKEN", "CP_ADMIN_TOKEN", "CP_READONLY_TOKEN", "OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY", "HOME"]
    {
        let mut p = provider("leaky");
        p["credential"] = json!(format!("env:{var}"));
        let (s, _, v) = t.admin("POST", "/v1/providers", Some(p.clone())).await;
        assert_eq!((s, error_param(&v).as_deref()), (StatusCode::BAD_REQUEST, Some("credential")), "{var}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("AI_GATEWAY_PROVIDER_"), "{v}");
        p["name"] = json!("openai");
        let (s, _, v) = t.admin("PUT", "/v1/providers/openai", Some(p.clone())).await;
        assert_eq!((s, error_param(&v).as_deref()), (StatusCode::BAD_REQUEST, Some("credential")), "{var}: {v}");
        let doc = json!({"providers": [provider("ok"), p], "routes": []});
        let (s, _, v) = t.admin("POST", "/v1/apply", Some(doc)).await;
        assert_eq!((s, error_param(&v).as_deref()), (StatusCode::BAD_REQUEST, Some("providers[1].credential")), "{v}");
    }
    assert_eq!(dump(t.store.as_ref()).await, before);

    // A misconfigured prefix that covers the control plane's variables still cannot reach them.
    let wide = TestApp::with_policy(CredentialPolicy::new("C").unwrap());
    let mut p = provider("leaky");
    p["credential"] = json!("env:CP_WATCH_TOKEN");
    let (s, _, v) = wide.admin("POST", "/v1/providers", Some(p.clone())).await;
    assert_eq!((s, error_param(&v).as_deref()), (StatusCode::BAD_REQUEST, Some("credential")), "{v}");
    p["credential"] = json!("env:CUSTOM_OPENAI_KEY");
    let (s, _, v) = wide.admin("POST", "/v1/providers", Some(p)).await;
    assert_eq!(s, StatusCode::CREATED, "the configured prefix is honoured: {v}");
}

#[tokio::test]
async fn a_stored_reference_outside_the_policy_is_not_resolved() {
    // Written straight to the store (an old record, or a poisoned store): the builder refuses it too.
    std::env::set_var("CP_POISON_TEST_TOKEN", "cp-token-value-never-pushed");
    let t = TestApp::new();
    t.store
        .create(
            Kind::Provider,
            "old",
            &json!({"name": "old", "kind": "openai", "cluster": "c", "credential": "env:CP_POISON_TEST_TOKEN"}),
            None,
            &control_plane::audit::AuditContext::tool("test"),
        )
        .await
        .unwrap();
    let built = wait_for_snapshot(&t).await;
    assert_eq!(built.snapshot.credential("old"), None);
    assert!(!String::from_utf8_lossy(&built.json).contains("cp-token-value-never-pushed"));
    assert!(built.warnings.iter().any(|w| w.contains("CP_POISON_TEST_TOKEN")), "{:?}", built.warnings);
}

#[tokio::test]
async fn apply_without_prune_never_deletes() {
    let t = seeded().await;
    let before = dump(t.store.as_ref()).await;
    for (ctype, doc) in [
        ("application/yaml", ""),
        ("application/yaml", "providers: []\nroutes: []\nprices: []\n"),
        ("application/json", "{}"),
    ] {
        let (s, _, v) =
            call(&t.app, "POST", "/v1/apply", Some(ADMIN), Some((ctype, doc.as_bytes().to_vec())), &[]).await;
        assert_eq!(s, StatusCode::OK, "{doc:?}: {v}");
        assert_eq!(v["changes"], json!([]), "{v}");
        let kept = v["kept"].as_array().unwrap();
        assert_eq!(kept.len(), if doc.contains("prices") { 3 } else { 2 }, "{v}");
        assert!(v["diff"]
            .as_str()
            .unwrap()
            .contains("= provider openai (kept: not in document; use --prune to delete)"));
    }
    assert_eq!(dump(t.store.as_ref()).await, before, "nothing deleted without prune");
    let (s, _, v) = call(
        &t.app,
        "POST",
        "/v1/apply?prune=true",
        Some(ADMIN),
        Some(("application/yaml", b"providers: []\nroutes: []\n".to_vec())),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["diff"], "- route gpt-4o\n- provider openai\n", "prices are left alone when the document lists none");
}

#[tokio::test]
async fn oversized_and_malformed_bodies_get_the_error_shape() {
    let t = TestApp::new();
    let big = vec![b' '; control_plane::api::MAX_BODY_BYTES + 1];
    for uri in ["/v1/providers", "/v1/apply", "/v1/keys"] {
        let (s, h, v) = call(&t.app, "POST", uri, Some(ADMIN), Some(("application/json", big.clone())), &[]).await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{uri}");
        assert_eq!(h.get("content-type").unwrap(), "application/json");
        assert_eq!(error_param(&v).as_deref(), Some("body"));
        assert_eq!(v["error"]["code"], "request_too_large");
    }
    let (s, _, v) = call(
        &t.app,
        "POST",
        "/v1/providers",
        Some(ADMIN),
        Some(("application/json", b"{\"name\": \"p\",\n \"kind\" 1}".to_vec())),
        &[],
    )
    .await;
    assert_eq!((s, error_param(&v).as_deref()), (StatusCode::BAD_REQUEST, Some("body")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("line 2 column"), "{v}");
    let (s, _, v) = t.admin("POST", "/v1/providers", Some(json!({"name": "p", "cluster": "c"}))).await;
    assert_eq!((s, error_param(&v).as_deref()), (StatusCode::BAD_REQUEST, Some("kind")), "{v}");
    let trailing = format!("{} trailing", json!({"name": "k", "owner": "o", "allowed_models": ["*"]}));
    let (s, _, v) =
        call(&t.app, "POST", "/v1/keys", Some(ADMIN), Some(("application/json", trailing.into_bytes())), &[]).await;
    assert_eq!((s, error_param(&v).as_deref()), (StatusCode::BAD_REQUEST, Some("body")), "{v}");
    // YAML: the location serde_yaml reached, with line and column; never "?" or ".".
    let (s, _, v) =
        call(&t.app, "POST", "/v1/apply", Some(ADMIN), Some(("application/yaml", b"providers: [\n".to_vec())), &[])
            .await;
    assert_eq!((s, error_param(&v).as_deref()), (StatusCode::BAD_REQUEST, Some("providers")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("line 2 column 1"), "{v}");
    let (s, _, v) =
        call(&t.app, "POST", "/v1/apply", Some(ADMIN), Some(("application/yaml", b"- a\n- b\n".to_vec())), &[]).await;
    assert_eq!((s, error_param(&v).as_deref()), (StatusCode::BAD_REQUEST, Some("body")), "{v}");
    let (s, _, v) = call(&t.app, "PATCH", "/v1/providers", Some(ADMIN), None, &[]).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    error_param(&v);
    let (s, _, v) = call(&t.app, "GET", "/v1/keys/%FF", Some(ADMIN), None, &[]).await;
    assert_eq!((s, error_param(&v).as_deref()), (StatusCode::BAD_REQUEST, Some("name")), "{v}");
}

#[tokio::test]
async fn revoking_a_revoked_key_is_200_without_a_new_version() {
    let t = seeded().await;
    let (s, _, first) = t.admin("POST", "/v1/keys/team/revoke", None).await;
    assert_eq!((s, first["status"].as_str()), (StatusCode::OK, Some("revoked")));
    let snap = wait_for_snapshot(&t).await.snapshot.version;
    let revision = t.store.revision().await.unwrap();
    for _ in 0..3 {
        let (s, h, again) = t.admin("POST", "/v1/keys/team/revoke", None).await;
        assert_eq!(s, StatusCode::OK, "{again}");
        assert_eq!(again["version"], first["version"], "no new version of the key");
        assert_eq!(h.get("etag").unwrap().to_str().unwrap(), format!("\"{}\"", first["version"]));
    }
    assert_eq!(t.store.revision().await.unwrap(), revision, "no write");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(wait_for_snapshot(&t).await.snapshot.version, snap, "no new snapshot version");
}
