//! REST API behaviour: status codes, ETags and If-Match, auth, pagination, validation, keys, apply.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::server::{call, error_param, TestApp, ADMIN, READ_ONLY};
use control_plane::model::hash_secret;
use control_plane::store::Kind;
use serde_json::{json, Value};

fn provider(name: &str) -> Value {
    json!({"name": name, "kind": "openai", "cluster": format!("cluster_{name}"), "credential": "env:AI_GATEWAY_PROVIDER_OPENAI"})
}

fn route(model: &str, provider: &str) -> Value {
    json!({"model": model, "targets": [{"provider": provider, "model": "gpt-4o-mini"}]})
}

#[tokio::test]
async fn auth_401_without_or_with_bad_token_403_for_read_only_writes() {
    let t = TestApp::new();
    let (s, h, v) = call(&t.app, "GET", "/v1/providers", None, None, &[]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(h.get("www-authenticate").unwrap(), "Bearer");
    assert_eq!(v["error"]["type"], "authentication_error");
    let (s, _, _) = call(&t.app, "GET", "/v1/providers", Some("not-a-token"), None, &[]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // A virtual key is no admin credential.
    let (_, _, key) =
        t.admin("POST", "/v1/keys", Some(json!({"name": "k", "owner": "o", "allowed_models": ["*"]}))).await;
    let (s, _, _) = call(&t.app, "GET", "/v1/keys", key["secret"].as_str(), None, &[]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let (s, _, _) = call(&t.app, "GET", "/v1/providers", Some(READ_ONLY), None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    let body = Some(("application/json", provider("p").to_string().into_bytes()));
    let (s, _, v) = call(&t.app, "POST", "/v1/providers", Some(READ_ONLY), body.clone(), &[]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["error"]["type"], "permission_error");
    let (s, _, _) = call(&t.app, "DELETE", "/v1/keys/k", Some(READ_ONLY), None, &[]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let doc = Some(("application/json", json!({"providers": [provider("p")]}).to_string().into_bytes()));
    let (s, _, v) = call(&t.app, "POST", "/v1/apply?dry_run=true", Some(READ_ONLY), doc.clone(), &[]).await;
    assert_eq!(s, StatusCode::OK, "read-only may plan: {v}");
    let (s, _, _) = call(&t.app, "POST", "/v1/apply", Some(READ_ONLY), doc, &[]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = call(&t.app, "POST", "/v1/providers", Some(ADMIN), body, &[]).await;
    assert_eq!(s, StatusCode::CREATED);

    // Health and the API description need no token.
    let (s, _, _) = call(&t.app, "GET", "/healthz", None, None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, v) = call(&t.app, "GET", "/openapi.json", None, None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["openapi"], "3.1.0");
}

#[tokio::test]
async fn provider_crud_with_etags_409_412_404() {
    let t = TestApp::new();
    let (s, h, v) = t.admin("POST", "/v1/providers", Some(provider("openai"))).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(h.get("etag").unwrap(), "\"1\"");
    assert_eq!(v["version"], 1);
    assert_eq!(v["credential"], "env:AI_GATEWAY_PROVIDER_OPENAI");

    let (s, _, v) = t.admin("POST", "/v1/providers", Some(provider("openai"))).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(v["error"]["code"], "already_exists");

    let (s, h, v) = t.admin("GET", "/v1/providers/openai", None).await;
    assert_eq!((s, h.get("etag").unwrap().to_str().unwrap()), (StatusCode::OK, "\"1\""));
    assert_eq!(v["cluster"], "cluster_openai");

    let mut changed = provider("openai");
    changed["cluster"] = json!("other_cluster");
    let body = Some(("application/json", changed.to_string().into_bytes()));
    let (s, h, v) =
        call(&t.app, "PUT", "/v1/providers/openai", Some(ADMIN), body.clone(), &[("if-match", "\"1\"")]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(h.get("etag").unwrap(), "\"2\"");
    assert_eq!(v["cluster"], "other_cluster");
    // The same If-Match again is stale now.
    let (s, _, v) =
        call(&t.app, "PUT", "/v1/providers/openai", Some(ADMIN), body.clone(), &[("if-match", "\"1\"")]).await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED);
    assert_eq!(v["error"]["code"], "version_mismatch");
    // A well-formed tag that is not one of ours never matches; a value that is no entity tag at
    // all (schemathesis sent an empty one) is a malformed request, not a failed precondition.
    let (s, _, _) =
        call(&t.app, "PUT", "/v1/providers/openai", Some(ADMIN), body.clone(), &[("if-match", "\"garbage\"")]).await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED);
    // A foreign tag is checked where any stale tag is, after the body (schemathesis sent one
    // with an invalid body and got a 412): a bad body is a 400, a missing object a 404.
    let (s, _, v) = call(
        &t.app,
        "PUT",
        "/v1/providers/openai",
        Some(ADMIN),
        Some(("application/json", b"{\"colour\": 1}".to_vec())),
        &[("if-match", "\"WK\"")],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _, v) = call(&t.app, "DELETE", "/v1/providers/absent", Some(ADMIN), None, &[("if-match", "\"WK\"")]).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, _, v) =
        call(&t.app, "PUT", "/v1/providers/openai", Some(ADMIN), body.clone(), &[("if-match", "\"WK\"")]).await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED);
    assert!(v["error"]["message"].as_str().unwrap().contains("not an ETag"), "{v}");
    for malformed in ["garbage", "", "null", "\"", "W/2"] {
        let (s, _, v) =
            call(&t.app, "PUT", "/v1/providers/openai", Some(ADMIN), body.clone(), &[("if-match", malformed)]).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "If-Match {malformed:?}: {v}");
        assert_eq!(error_param(&v).as_deref(), Some("If-Match"));
    }
    let (s, _, _) = call(&t.app, "PUT", "/v1/providers/openai", Some(ADMIN), body, &[("if-match", "W/\"2\"")]).await;
    assert_eq!(s, StatusCode::OK);

    let (s, _, _) = call(&t.app, "DELETE", "/v1/providers/openai", Some(ADMIN), None, &[("if-match", "\"2\"")]).await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED);
    let (s, _, _) = call(&t.app, "DELETE", "/v1/providers/openai", Some(ADMIN), None, &[("if-match", "\"3\"")]).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, v) = t.admin("GET", "/v1/providers/openai", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    error_param(&v);
    let (s, _, _) = t.admin("PUT", "/v1/providers/openai", Some(provider("openai"))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = t.admin("DELETE", "/v1/providers/openai", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let t = TestApp::new();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("/v1/providers", json!({"name": "p", "kind": "gemini-ish", "cluster": "c"}), "kind"),
        ("/v1/providers", json!({"name": "p", "kind": "openai"}), ""),
        ("/v1/providers", json!({"name": "p", "kind": "openai", "cluster": "c", "colour": 1}), ""),
        ("/v1/providers", json!({"name": "bad name!", "kind": "openai", "cluster": "c"}), "name"),
        (
            "/v1/providers",
            json!({"name": "p", "kind": "openai", "cluster": "c", "credential": "sk-live-123"}),
            "credential",
        ),
        ("/v1/providers", json!({"name": "p", "kind": "openai", "cluster": "c", "path_prefix": "v1"}), "path_prefix"),
        ("/v1/routes", json!({"model": "m", "targets": []}), "targets"),
        ("/v1/routes", json!({"model": "m", "targets": [{"provider": "nope", "model": "x"}]}), "targets[0].provider"),
        (
            "/v1/routes",
            json!({"model": "m", "targets": [{"provider": "p", "model": "x", "weight": -1}]}),
            "targets[0].weight",
        ),
        ("/v1/keys", json!({"name": "k", "owner": "o", "allowed_models": []}), "allowed_models"),
        ("/v1/keys", json!({"name": "k", "owner": "o", "allowed_models": ["*"], "expires_at": 5}), "expires_at"),
        ("/v1/keys", json!({"name": "k", "owner": "", "allowed_models": ["*"]}), "owner"),
    ];
    for (path, body, param) in cases {
        let (s, _, v) = t.admin("POST", path, Some(body.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path} {body}: {v}");
        let got = error_param(&v);
        if param.is_empty() {
            // Missing or unknown fields: serde names them in the message.
            let msg = v["error"]["message"].as_str().unwrap();
            assert!(msg.contains("cluster") || msg.contains("colour"), "{msg}");
        } else {
            assert_eq!(got.as_deref(), Some(param), "{path} {body}: {v}");
        }
    }
    let (s, _, v) =
        call(&t.app, "POST", "/v1/providers", Some(ADMIN), Some(("application/json", b"{not json".to_vec())), &[])
            .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // Body name and URL name must agree.
    t.admin("POST", "/v1/providers", Some(provider("a"))).await;
    let (s, _, v) = t.admin("PUT", "/v1/providers/a", Some(provider("b"))).await;
    assert_eq!((s, error_param(&v).as_deref()), (StatusCode::BAD_REQUEST, Some("name")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_with_same_if_match_exactly_one_wins() {
    let t = TestApp::new();
    t.admin("POST", "/v1/providers", Some(provider("p"))).await;
    for round in 0..10 {
        let (_, h, _) = t.admin("GET", "/v1/providers/p", None).await;
        let tag = h.get("etag").unwrap().to_str().unwrap().to_string();
        let mut tasks = Vec::new();
        for i in 0..2 {
            let app = t.app.clone();
            let tag = tag.clone();
            let mut body = provider("p");
            body["cluster"] = json!(format!("c_{round}_{i}"));
            tasks.push(tokio::spawn(async move {
                let b = Some(("application/json", body.to_string().into_bytes()));
                call(&app, "PUT", "/v1/providers/p", Some(ADMIN), b, &[("if-match", tag.as_str())]).await
            }));
        }
        let mut statuses = Vec::new();
        let mut winner_cluster = None;
        for task in tasks {
            let (s, _, v) = task.await.unwrap();
            if s == StatusCode::OK {
                winner_cluster = Some(v["cluster"].clone());
            }
            statuses.push(s);
        }
        statuses.sort();
        assert_eq!(statuses, vec![StatusCode::OK, StatusCode::PRECONDITION_FAILED], "round {round}");
        let (_, _, now) = t.admin("GET", "/v1/providers/p", None).await;
        assert_eq!(Some(now["cluster"].clone()), winner_cluster, "the winner's write is what is stored");
    }
}

#[tokio::test]
async fn cursor_pagination_visits_everything_once() {
    let t = TestApp::new();
    let names: BTreeSet<String> = (0..7).map(|i| format!("p{i}")).collect();
    for n in &names {
        let (s, _, _) = t.admin("POST", "/v1/providers", Some(provider(n))).await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let mut seen = Vec::new();
    let mut uri = "/v1/providers?limit=3".to_string();
    for _ in 0..10 {
        let (s, _, v) = t.admin("GET", &uri, None).await;
        assert_eq!(s, StatusCode::OK);
        let items = v["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|i| i["name"].as_str().unwrap().to_string()));
        match v["next_cursor"].as_str() {
            Some(c) => uri = format!("/v1/providers?limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, names.into_iter().collect::<Vec<_>>());
    for bad in ["limit=0", "limit=5000", "limit=x"] {
        let (s, _, v) = t.admin("GET", &format!("/v1/providers?{bad}"), None).await;
        assert_eq!((s, error_param(&v).as_deref()), (StatusCode::BAD_REQUEST, Some("limit")));
    }
    let (s, _, v) = t.admin("GET", "/v1/providers?cursor=zz", None).await;
    assert_eq!((s, error_param(&v).as_deref()), (StatusCode::BAD_REQUEST, Some("cursor")));
}

#[tokio::test]
async fn routes_reference_providers_and_accept_slashes() {
    let t = TestApp::new();
    t.admin("POST", "/v1/providers", Some(provider("openai"))).await;
    let (s, h, v) = t.admin("POST", "/v1/routes", Some(route("openai/gpt-4o", "openai"))).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(h.get("etag").unwrap(), "\"1\"");
    assert_eq!(v["targets"][0]["weight"], 1, "weight defaults to 1");
    let (s, _, v) = t.admin("GET", "/v1/routes/openai/gpt-4o", None).await;
    assert_eq!((s, v["model"].as_str()), (StatusCode::OK, Some("openai/gpt-4o")));
    let (s, _, _) = t.admin("GET", "/v1/routes/openai%2Fgpt-4o", None).await;
    assert_eq!(s, StatusCode::OK);
    // The provider cannot be deleted while a route uses it.
    let (s, _, v) = t.admin("DELETE", "/v1/providers/openai", None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, _, _) = t.admin("DELETE", "/v1/routes/openai/gpt-4o", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = t.admin("DELETE", "/v1/providers/openai", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn keys_show_the_secret_once_and_store_only_its_hash() {
    let t = TestApp::new();
    let (s, h, v) = t
        .admin(
            "POST",
            "/v1/keys",
            Some(json!({"name": "team-a", "owner": "team-a@example.com", "allowed_models": ["gpt-4o"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(h.get("cache-control").unwrap(), "no-store");
    let secret = v["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("sk-gw-") && secret.len() > 40);
    assert_eq!(v["status"], "active");

    let (_, _, got) = t.admin("GET", "/v1/keys/team-a", None).await;
    assert!(got.get("secret").is_none());
    let (_, _, list) = t.admin("GET", "/v1/keys", None).await;
    assert!(!list.to_string().contains(&secret));
    let stored = t.store.find_key_by_hash(&hash_secret(&secret)).await.unwrap().expect("looked up by hash");
    assert_eq!(stored.name, "team-a");
    assert!(!stored.doc.to_string().contains(&secret));

    let (s, _, v) = call(&t.app, "POST", "/v1/keys/team-a/revoke", Some(ADMIN), None, &[("if-match", "\"7\"")]).await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED, "{v}");
    let (s, h, v) = t.admin("POST", "/v1/keys/team-a/revoke", None).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("revoked")));
    assert_eq!(h.get("etag").unwrap(), "\"2\"");
    let (s, _, v) = t
        .admin("PUT", "/v1/keys/team-a", Some(json!({"owner": "x", "allowed_models": ["*"], "status": "active"})))
        .await;
    assert_eq!((s, error_param(&v).as_deref()), (StatusCode::BAD_REQUEST, Some("status")));
    let (s, _, _) =
        t.admin("POST", "/v1/keys", Some(json!({"name": "team-a", "owner": "o", "allowed_models": ["*"]}))).await;
    assert_eq!(s, StatusCode::CONFLICT);
}

#[tokio::test]
async fn rotation_keeps_the_old_secret_for_the_grace_period_and_one_caller() {
    let t = TestApp::new();
    let (s, _, v) = t
        .admin("POST", "/v1/keys", Some(json!({"name": "rot", "owner": "o", "allowed_models": ["*"], "rpm": 9})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let first = v["secret"].as_str().unwrap().to_string();
    let first_hash = hash_secret(&first);

    for (body, param) in [(json!({"grace_seconds": 2_592_001}), "grace_seconds"), (json!({"grace": 5}), "grace")] {
        let (s, _, v) = t.admin("POST", "/v1/keys/rot/rotate", Some(body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(error_param(&v).unwrap_or_default().contains(param), "{v}");
    }
    let (s, _, v) = call(&t.app, "POST", "/v1/keys/rot/rotate", Some(ADMIN), None, &[("if-match", "\"9\"")]).await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED, "{v}");
    let (s, _, _) = t.admin("POST", "/v1/keys/nope/rotate", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // No body: the default grace of one hour.
    let (s, h, v) = t.admin("POST", "/v1/keys/rot/rotate", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(h.get("cache-control").unwrap(), "no-store");
    let second = v["secret"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    let rotated_at = v["rotation"]["rotated_at"].as_u64().unwrap();
    assert_eq!(v["rotation"]["previous_expires_at"].as_u64().unwrap(), rotated_at + 3600);
    // Views never show the hashes; the store can find the key by either secret.
    assert!(v["rotation"].get("secret_hash").is_none() && v["rotation"].get("previous_hash").is_none());
    for secret in [&first, &second] {
        assert_eq!(t.store.find_key_by_hash(&hash_secret(secret)).await.unwrap().expect("claimed").name, "rot");
    }

    let snap = wait_for_snapshot_with(&t, |s| s.keys.len() == 2).await;
    let by_hash = |h: &str| snap.keys.iter().find(|k| k.hash == h).cloned().expect("in the snapshot");
    let (old, new) = (by_hash(&first_hash), by_hash(&hash_secret(&second)));
    assert_eq!(old.expires_at, Some(rotated_at + 3600));
    assert_eq!(new.expires_at, None);
    assert_eq!((old.caller(), new.caller()), (format!("key:{first_hash}"), format!("key:{first_hash}")));
    assert_eq!((old.rpm, new.rpm), (Some(9), Some(9)));

    // A PUT keeps the secrets; a body cannot smuggle a rotation in.
    let (s, _, v) = t
        .admin(
            "PUT",
            "/v1/keys/rot",
            Some(json!({"owner": "p", "allowed_models": ["*"], "rpm": 9,
        "rotation": {"secret_hash": "ab", "rotated_at": 1, "previous_expires_at": 2}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["rotation"]["rotated_at"].as_u64(), Some(rotated_at));

    // Rotating again with grace 0: the second secret expires now, the first is gone.
    let (s, _, v) = t.admin("POST", "/v1/keys/rot/rotate", Some(json!({"grace_seconds": 0}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let third = v["secret"].as_str().unwrap().to_string();
    assert!(t.store.find_key_by_hash(&hash_secret(&second)).await.unwrap().is_some());
    let snap = wait_for_snapshot_with(&t, |s| s.keys.iter().any(|k| k.hash == hash_secret(&third))).await;
    assert_eq!(snap.keys.len(), 2, "the first secret left the snapshot");
    assert!(!snap.keys.iter().any(|k| k.hash == first_hash));
    let second_entry = snap.keys.iter().find(|k| k.hash == hash_secret(&second)).unwrap();
    assert!(second_entry.expires_at.unwrap() <= v["rotation"]["rotated_at"].as_u64().unwrap());
    assert_eq!(second_entry.caller(), format!("key:{first_hash}"));

    // Revocation revokes every secret; a revoked key cannot be rotated; deletion frees the hashes.
    let (s, _, _) = t.admin("POST", "/v1/keys/rot/revoke", None).await;
    assert_eq!(s, StatusCode::OK);
    let snap =
        wait_for_snapshot_with(&t, |s| s.keys.iter().all(|k| k.status == gateway_core::snapshot::KeyStatus::Revoked))
            .await;
    assert_eq!(snap.keys.len(), 2);
    let (s, _, v) = t.admin("POST", "/v1/keys/rot/rotate", None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, _, _) = t.admin("DELETE", "/v1/keys/rot", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    for secret in [&first, &second, &third] {
        assert!(t.store.find_key_by_hash(&hash_secret(secret)).await.unwrap().is_none());
    }
}

async fn wait_for_snapshot_with(
    t: &TestApp,
    ok: impl Fn(&gateway_core::snapshot::Snapshot) -> bool,
) -> gateway_core::snapshot::Snapshot {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let snap = t.snapshots.borrow().clone();
        if let Some(b) = snap {
            if ok(&b.snapshot) {
                return b.snapshot.clone();
            }
        }
        assert!(std::time::Instant::now() < deadline, "no matching snapshot within 5 s");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn apply_dry_run_then_exact_diff() {
    let t = TestApp::new();
    let yaml = r#"
providers:
  - {name: openai, kind: openai, cluster: openai_cluster, credential: "env:AI_GATEWAY_PROVIDER_OPENAI"}
  - {name: anthropic, kind: anthropic, cluster: anthropic_cluster}
routes:
  - model: gpt-4o
    targets: [{provider: openai, model: gpt-4o-2024-08-06}]
  - model: claude
    targets: [{provider: anthropic, model: claude-3-5-haiku-latest, weight: 3}]
"#;
    let send = |doc: String, dry: bool| {
        let app = t.app.clone();
        async move {
            let uri = if dry { "/v1/apply?dry_run=true" } else { "/v1/apply" };
            call(&app, "POST", uri, Some(ADMIN), Some(("application/yaml", doc.into_bytes())), &[]).await
        }
    };
    let rev0 = t.store.revision().await.unwrap();
    let (s, _, v) = send(yaml.to_string(), true).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["diff"], "+ provider openai\n+ provider anthropic\n+ route gpt-4o\n+ route claude\n");
    assert_eq!(t.store.revision().await.unwrap(), rev0, "dry run writes nothing");

    let (s, _, v) = send(yaml.to_string(), false).await;
    assert_eq!((s, v["changes"].as_array().unwrap().len()), (StatusCode::OK, 4), "{v}");
    assert_eq!(t.store.revision().await.unwrap(), rev0 + 4, "exactly four writes");
    let (_, _, r) = t.admin("GET", "/v1/routes/claude", None).await;
    assert_eq!(r["targets"][0]["weight"], 3);

    let (_, _, v) = send(yaml.to_string(), false).await;
    assert_eq!(v["diff"], "no changes\n");
    assert_eq!(t.store.revision().await.unwrap(), rev0 + 4, "re-applying is a no-op");

    // Drop anthropic and its route, retarget gpt-4o; a route created by hand is not in the doc.
    t.admin("POST", "/v1/routes", Some(route("manual", "openai"))).await;
    let yaml2 = r#"{"providers": [{"name": "openai", "kind": "openai", "cluster": "openai_cluster", "credential": "env:AI_GATEWAY_PROVIDER_OPENAI"}],
                    "routes": [{"model": "gpt-4o", "targets": [{"provider": "openai", "model": "gpt-4o-mini"}]}]}"#;
    // Without prune, what the document omits is kept, and the plan says so.
    let (_, _, v) = send(yaml2.to_string(), true).await;
    let kept = "(kept: not in document; use --prune to delete)";
    assert_eq!(
        v["diff"],
        format!(
            "~ route gpt-4o (targets)\n= route claude {kept}\n= route manual {kept}\n= provider anthropic {kept}\n"
        )
    );
    assert_eq!(
        v["kept"],
        json!([{"kind": "route", "name": "claude"}, {"kind": "route", "name": "manual"},
                                 {"kind": "provider", "name": "anthropic"}])
    );
    let rev = t.store.revision().await.unwrap();
    let (s, _, v) = send(yaml2.to_string(), false).await;
    assert_eq!((s, v["changes"].as_array().unwrap().len()), (StatusCode::OK, 1), "{v}");
    assert_eq!(t.store.revision().await.unwrap(), rev + 1, "only the update");
    let (s, _, _) = t.admin("GET", "/v1/providers/anthropic", None).await;
    assert_eq!(s, StatusCode::OK, "kept without --prune");

    // With prune, they are deleted.
    let prune = |dry: bool| {
        let app = t.app.clone();
        let doc = yaml2.to_string();
        async move {
            let uri = if dry { "/v1/apply?prune=true&dry_run=true" } else { "/v1/apply?prune=true" };
            call(&app, "POST", uri, Some(ADMIN), Some(("application/json", doc.into_bytes())), &[]).await
        }
    };
    let (_, _, v) = prune(true).await;
    assert_eq!(v["diff"], "- route claude\n- route manual\n- provider anthropic\n");
    assert_eq!(v["prune"], true);
    let rev = t.store.revision().await.unwrap();
    let (s, _, _) = prune(false).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(t.store.revision().await.unwrap(), rev + 3);
    let (_, _, routes) = t.admin("GET", "/v1/routes", None).await;
    let names: Vec<&str> = routes["items"].as_array().unwrap().iter().map(|r| r["model"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["gpt-4o"]);
    let (s, _, _) = t.admin("GET", "/v1/providers/anthropic", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A document that references an unlisted provider is refused, naming the field.
    let bad = "routes:\n  - model: x\n    targets: [{provider: ghost, model: y}]\n";
    let (s, _, v) = send(bad.to_string(), true).await;
    assert_eq!((s, error_param(&v).as_deref()), (StatusCode::BAD_REQUEST, Some("routes[0].targets[0].provider")));
    let (s, _, v) = send("providers:\n  - {name: p, kind: openai, cluster: c, extra: 1}\n".to_string(), true).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test]
async fn snapshot_follows_writes_within_a_second() {
    std::env::set_var("AI_GATEWAY_PROVIDER_TEST_SNAPSHOT_KEY", "resolved-provider-secret");
    let t = TestApp::new();
    let mut p = provider("openai");
    p["credential"] = json!("env:AI_GATEWAY_PROVIDER_TEST_SNAPSHOT_KEY");
    t.admin("POST", "/v1/providers", Some(p)).await;
    t.admin(
        "POST",
        "/v1/providers",
        Some(json!({"name": "unresolved", "kind": "anthropic", "cluster": "c", "credential": "env:AI_GATEWAY_PROVIDER_TEST_UNSET"})),
    )
    .await;
    t.admin("POST", "/v1/routes", Some(route("gpt-4o", "openai"))).await;
    let (_, _, key) =
        t.admin("POST", "/v1/keys", Some(json!({"name": "k", "owner": "o", "allowed_models": ["gpt-4o"]}))).await;
    let secret = key["secret"].as_str().unwrap();

    let mut rx = t.snapshots.clone();
    let want = t.store.revision().await.unwrap();
    let started = Instant::now();
    let built = loop {
        if let Some(b) = rx.borrow_and_update().clone() {
            if b.snapshot.version == want {
                break b;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(1), "snapshot did not reach revision {want} within 1 s");
        let _ = tokio::time::timeout(Duration::from_millis(100), rx.changed()).await;
    };
    let s = &built.snapshot;
    assert_eq!(s.config.version, want);
    assert_eq!(s.config.routes.len(), 1);
    assert_eq!(s.config.routes[0].model, "gpt-4o");
    assert!(s.config.providers.iter().all(|p| p.credential.is_none()), "references are not pushed as config");
    assert_eq!(s.credential("openai"), Some("resolved-provider-secret"));
    assert_eq!(s.credential("unresolved"), None);
    assert!(built.warnings.iter().any(|w| w.contains("AI_GATEWAY_PROVIDER_TEST_UNSET")));
    assert_eq!(s.keys.len(), 1);
    assert_eq!(s.keys[0].hash, hash_secret(secret));
    assert!(!String::from_utf8_lossy(&built.json).contains(secret), "the key secret is never in a snapshot");
    gateway_core::RoutingTable::new(s.config.clone()).expect("the pushed config validates in the data plane");

    // The status endpoint says what is pushed, without the secret.
    let (st, _, v) = t.admin("GET", "/v1/snapshot", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["version"], want);
    assert!(!v.to_string().contains("resolved-provider-secret"));

    // A revocation reaches the snapshot within a second.
    t.admin("POST", "/v1/keys/k/revoke", None).await;
    let started = Instant::now();
    loop {
        let b = rx.borrow_and_update().clone().unwrap();
        if b.snapshot.keys.first().map(|k| k.status) == Some(gateway_core::snapshot::KeyStatus::Revoked) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(1), "revocation not in the snapshot within 1 s");
        let _ = tokio::time::timeout(Duration::from_millis(100), rx.changed()).await;
    }
    let _ = Kind::Key;
}

/// Every route the router serves is in the generated document with exactly the methods it
/// serves, and nothing documented is missing from the router: the paths are compared with the
/// router's own route literals, and every (path, method) pair is probed against the real router
/// (a documented method must reach a handler, any other method must be a 405).
#[tokio::test]
async fn openapi_documents_every_route() {
    let doc: Value = serde_json::from_str(&control_plane::openapi::JSON).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let src = include_str!("../src/api.rs");
    let start = src.find("pub fn router").unwrap();
    let end = src[start..].find("async fn access_log").unwrap() + start;
    let routed: BTreeSet<String> = src[start..end]
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|lit| lit.starts_with('/'))
        .map(|lit| lit.replace("{*", "{"))
        .collect();
    let documented: BTreeSet<String> = paths.keys().cloned().collect();
    assert_eq!(routed, documented);
    assert!(documented.len() >= 14, "{documented:?}");

    let t = TestApp::new();
    let mut probed = 0;
    for (path, item) in paths {
        // Path parameters filled in (a name with a `/` where the router takes the rest).
        let uri = path.replace("{name}", "p1").replace("{model}", "org/m1");
        for method in ["GET", "PUT", "POST", "DELETE", "PATCH"] {
            let served = item.get(method.to_lowercase()).is_some();
            let (s, _, v) = call(&t.app, method, &uri, Some(ADMIN), None, &[]).await;
            if served {
                assert_ne!(s, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is documented but not routed: {v}");
                assert_ne!(v["error"]["message"], "no such endpoint", "{method} {path} is documented but not routed");
                probed += 1;
            } else {
                assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is routed but not documented: {v}");
                assert_eq!(v["error"]["code"], "method_not_allowed");
            }
        }
    }
    assert!(probed >= 27, "{probed}");
}

/// `control-plane/openapi.json` is the generated document, for readers and for clients that read
/// a file; `./dev openapi` rewrites it (CP_WRITE_OPENAPI=1), otherwise a stale copy fails here.
#[test]
fn committed_openapi_json_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    let generated = control_plane::openapi::JSON.as_str();
    if std::env::var_os("CP_WRITE_OPENAPI").is_some() {
        std::fs::write(path, generated).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(committed == generated, "control-plane/openapi.json is stale: run `./dev openapi` and commit it");
}

/// The document is served with the same content type and the same bytes as generated.
#[tokio::test]
async fn openapi_json_is_served_as_generated() {
    let t = TestApp::new();
    let (s, h, v) = call(&t.app, "GET", "/openapi.json", None, None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h.get("content-type").unwrap(), "application/json");
    let generated: Value = serde_json::from_str(&control_plane::openapi::JSON).unwrap();
    assert_eq!(v, generated);
    assert_eq!(v["openapi"], "3.1.0");
    // Schemas come from the Rust types: the key's fields, with `deny_unknown_fields` as
    // additionalProperties false, and the view adds the record's metadata.
    let schemas = &v["components"]["schemas"];
    assert_eq!(schemas["KeySpec"]["additionalProperties"], false);
    assert!(schemas["KeySpec"]["properties"]["rpm"].is_object());
    assert!(schemas["Key"]["required"].as_array().unwrap().contains(&json!("version")));
    assert!(schemas["KeyWithSecret"]["required"].as_array().unwrap().contains(&json!("secret")));
    assert!(schemas["ProviderKind"]["enum"].as_array().unwrap().contains(&json!("azure_openai")));
}
