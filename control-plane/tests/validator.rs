//! One validator (issue 13, findings 2 and 8): the REST API refuses exactly the objects a filter
//! would leave out of a snapshot. Each case is posted through the API on one control plane, and
//! written around the API into the store of another, whose snapshot JSON is then parsed the way
//! the filter parses it (`Snapshot::from_json_pruned`); both verdicts must agree.

mod common;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::server::{error_param, TestApp};
use control_plane::model::hash_secret;
use control_plane::store::Kind;
use gateway_core::snapshot::Snapshot;
use serde_json::{json, Value};

/// Objects written in order; the last one is the one under test.
struct Case {
    what: &'static str,
    objects: Vec<(Kind, Value)>,
    /// Whether the last object is invalid, and the `param` the API names.
    refused: Option<&'static str>,
}

fn p(v: Value) -> (Kind, Value) {
    (Kind::Provider, v)
}
fn r(v: Value) -> (Kind, Value) {
    (Kind::Route, v)
}
fn k(v: Value) -> (Kind, Value) {
    (Kind::Key, v)
}

fn cases() -> Vec<Case> {
    let openai = json!({"name": "o", "kind": "openai", "cluster": "c_o"});
    let gemini = json!({"name": "g", "kind": "gemini", "cluster": "c_g"});
    let azure = json!({"name": "az", "kind": "azure_openai", "cluster": "c_az", "settings": {"azure": {"api_version": "2024-10-21"}}});
    let models = |n: usize| (0..n).map(|i| format!("m{i}")).collect::<Vec<_>>();
    let case = |what, objects, refused| Case { what, objects, refused };
    vec![
        // The issue's three reproductions.
        case(
            "azure without api_version",
            vec![p(json!({"name": "az", "kind": "azure_openai", "cluster": "c"}))],
            Some("settings.azure.api_version"),
        ),
        case(
            "bedrock without region",
            vec![p(json!({"name": "b", "kind": "bedrock", "cluster": "c"}))],
            Some("settings.bedrock.region"),
        ),
        case(
            "gemini model climbing out of its path",
            vec![
                p(gemini.clone()),
                r(json!({"model": "files", "targets": [{"provider": "g", "model": "models/../../v1/files"}]})),
            ],
            Some("targets[0].model"),
        ),
        // Everything else the filter refuses.
        case(
            "bedrock region that is a host name",
            vec![p(
                json!({"name": "b", "kind": "bedrock", "cluster": "c", "settings": {"bedrock": {"region": "us-east-1.evil.example"}}}),
            )],
            Some("settings.bedrock.region"),
        ),
        case(
            "azure api_version with a query",
            vec![p(
                json!({"name": "az", "kind": "azure_openai", "cluster": "c", "settings": {"azure": {"api_version": "1&x=2"}}}),
            )],
            Some("settings.azure.api_version"),
        ),
        case(
            "azure deployment with a slash",
            vec![p(azure.clone()), r(json!({"model": "d", "targets": [{"provider": "az", "model": "a/b"}]}))],
            Some("targets[0].model"),
        ),
        case(
            "gemini model with a query",
            vec![p(gemini.clone()), r(json!({"model": "q", "targets": [{"provider": "g", "model": "gemini?key=x"}]}))],
            Some("targets[0].model"),
        ),
        case(
            "path_prefix with CR LF",
            vec![p(json!({"name": "o", "kind": "openai", "cluster": "c", "path_prefix": "/v1\r\nx-injected: 1"}))],
            Some("path_prefix"),
        ),
        case(
            "path_prefix with NUL",
            vec![p(json!({"name": "o", "kind": "openai", "cluster": "c", "path_prefix": "/v1\u{0}"}))],
            Some("path_prefix"),
        ),
        case(
            "path_prefix with ..",
            vec![p(json!({"name": "o", "kind": "openai", "cluster": "c", "path_prefix": "/proxy/../admin"}))],
            Some("path_prefix"),
        ),
        case(
            "path_prefix not absolute",
            vec![p(json!({"name": "o", "kind": "openai", "cluster": "c", "path_prefix": "v1"}))],
            Some("path_prefix"),
        ),
        case(
            "cluster with a space",
            vec![p(json!({"name": "o", "kind": "openai", "cluster": "c o"}))],
            Some("cluster"),
        ),
        case(
            "route name with a .. segment",
            vec![p(openai.clone()), r(json!({"model": "a/../b", "targets": [{"provider": "o", "model": "gpt"}]}))],
            Some("model"),
        ),
        case(
            "target model with a tab",
            vec![p(openai.clone()), r(json!({"model": "m", "targets": [{"provider": "o", "model": "gpt\t4"}]}))],
            Some("targets[0].model"),
        ),
        case(
            "route with only zero weights",
            vec![
                p(openai.clone()),
                r(json!({"model": "m", "targets": [{"provider": "o", "model": "gpt", "weight": 0}]})),
            ],
            Some("targets"),
        ),
        case(
            "route with 65 targets",
            vec![
                p(openai.clone()),
                r(
                    json!({"model": "m", "targets": (0..65).map(|i| json!({"provider": "o", "model": format!("g{i}")})).collect::<Vec<_>>()}),
                ),
            ],
            Some("targets"),
        ),
        case(
            "key with 1001 allowed models",
            vec![k(json!({"name": "k", "owner": "o", "allowed_models": models(1001)}))],
            Some("allowed_models"),
        ),
        case(
            "key allowing a model with a newline",
            vec![k(json!({"name": "k", "owner": "o", "allowed_models": ["gpt\n"]}))],
            Some("allowed_models[0]"),
        ),
        case(
            "key with rpm 0",
            vec![k(json!({"name": "k", "owner": "o", "allowed_models": ["*"], "rpm": 0}))],
            Some("rpm"),
        ),
        // Valid neighbours: accepted by both.
        case("openai", vec![p(openai.clone())], None),
        case(
            "openai behind a proxy",
            vec![p(json!({"name": "o", "kind": "openai", "cluster": "c", "path_prefix": "/proxy/openai-v1/"}))],
            None,
        ),
        case(
            "bedrock with region",
            vec![p(
                json!({"name": "b", "kind": "bedrock", "cluster": "c", "settings": {"bedrock": {"region": "eu-west-3"}}}),
            )],
            None,
        ),
        case(
            "azure with api_version",
            vec![p(azure.clone()), r(json!({"model": "d", "targets": [{"provider": "az", "model": "gpt-4o-deploy"}]}))],
            None,
        ),
        case(
            "gemini model",
            vec![
                p(gemini.clone()),
                r(json!({"model": "flash", "targets": [{"provider": "g", "model": "models/gemini-2.5-flash"}]})),
            ],
            None,
        ),
        case(
            "route with slashes",
            vec![
                p(openai.clone()),
                r(json!({"model": "openai/gpt-4o", "targets": [{"provider": "o", "model": "gpt-4o"}]})),
            ],
            None,
        ),
        case(
            "key with 1000 allowed models",
            vec![k(json!({"name": "k", "owner": "o", "allowed_models": models(1000)}))],
            None,
        ),
    ]
}

/// What the API says about the case's last object: `Some(param)` when refused.
async fn api_verdict(case: &Case) -> Option<String> {
    let t = TestApp::new();
    let n = case.objects.len();
    for (i, (kind, doc)) in case.objects.iter().enumerate() {
        let path = match kind {
            Kind::Provider => "/v1/providers",
            Kind::Route => "/v1/routes",
            Kind::Key => "/v1/keys",
            Kind::Price => "/v1/prices",
        };
        let (s, _, v) = t.admin("POST", path, Some(doc.clone())).await;
        if i + 1 < n {
            assert_eq!(s, StatusCode::CREATED, "{}: setup object {doc}: {v}", case.what);
            continue;
        }
        if s == StatusCode::BAD_REQUEST {
            assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
            return Some(error_param(&v).unwrap_or_default());
        }
        assert_eq!(s, StatusCode::CREATED, "{}: {v}", case.what);
    }
    None
}

/// What a filter does with a snapshot holding the case's objects, written around the API.
async fn filter_verdict(case: &Case) -> Vec<gateway_core::validate::Invalid> {
    let t = TestApp::new();
    for (i, (kind, doc)) in case.objects.iter().enumerate() {
        let name = doc.get("name").or_else(|| doc.get("model")).and_then(Value::as_str).unwrap();
        let hash = (*kind == Kind::Key).then(|| hash_secret(&format!("secret-{i}")));
        t.store
            .create(*kind, name, doc, hash.as_deref(), &control_plane::audit::AuditContext::tool("test"))
            .await
            .unwrap();
    }
    let want = case.objects.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(5);
    let json = loop {
        if let Some(b) = t.snapshots.borrow().clone() {
            if b.snapshot.version == want {
                break b.json.clone();
            }
        }
        assert!(Instant::now() < deadline, "{}: no snapshot version {want}", case.what);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (_, rejected) = Snapshot::from_json_pruned(&json).expect("a snapshot always parses");
    // The control plane's own view of the snapshot agrees with the filter's.
    let built = t.snapshots.borrow().clone().unwrap();
    assert_eq!(built.invalid, rejected, "{}", case.what);
    rejected
}

#[tokio::test]
async fn the_api_refuses_exactly_what_a_filter_leaves_out() {
    for case in cases() {
        let api = api_verdict(&case).await;
        let filter = filter_verdict(&case).await;
        assert_eq!(api.as_deref(), case.refused, "{}: API param", case.what);
        match case.refused {
            None => assert!(filter.is_empty(), "{}: the filter left out {filter:?}", case.what),
            Some(param) => {
                let first = filter.first().unwrap_or_else(|| panic!("{}: the filter kept it", case.what));
                assert_eq!(first.field, param, "{}: {filter:?}", case.what);
            }
        }
    }
}

#[tokio::test]
async fn control_characters_are_refused_in_every_string_field() {
    let t = TestApp::new();
    t.admin("POST", "/v1/providers", Some(json!({"name": "o", "kind": "openai", "cluster": "c"}))).await;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("/v1/keys", json!({"name": "k", "owner": "eve\u{1b}[2J", "allowed_models": ["*"]}), "owner"),
        ("/v1/keys", json!({"name": "k", "owner": "a\r\nb", "allowed_models": ["*"]}), "owner"),
        ("/v1/keys", json!({"name": "k", "owner": "nul\u{0}", "allowed_models": ["*"]}), "owner"),
        ("/v1/keys", json!({"name": "k", "owner": "c1\u{85}", "allowed_models": ["*"]}), "owner"),
        ("/v1/keys", json!({"name": "k", "owner": "o".repeat(257), "allowed_models": ["*"]}), "owner"),
        ("/v1/keys", json!({"name": "k\u{7f}", "owner": "o", "allowed_models": ["*"]}), "name"),
        ("/v1/providers", json!({"name": "p\n", "kind": "openai", "cluster": "c"}), "name"),
        (
            "/v1/providers",
            json!({"name": "p", "kind": "openai", "cluster": "c", "credential": "env:A\nB"}),
            "credential",
        ),
        ("/v1/routes", json!({"model": "m\u{0}", "targets": [{"provider": "o", "model": "g"}]}), "model"),
        ("/v1/prices", json!({"provider": "o", "model": "g\r", "input_per_mtok": 1, "output_per_mtok": 1}), "model"),
    ];
    for (path, body, param) in cases {
        let (s, _, v) = t.admin("POST", path, Some(body.clone())).await;
        assert_eq!((s, error_param(&v).as_deref()), (StatusCode::BAD_REQUEST, Some(param)), "{path} {body}: {v}");
        assert!(!v["error"]["message"].as_str().unwrap().chars().any(char::is_control), "{v}");
    }
    // Apply runs the same checks, naming the field inside the document.
    let doc =
        json!({"providers": [{"name": "o", "kind": "openai", "cluster": "c", "path_prefix": "/a/../b"}], "routes": []});
    let (s, _, v) = t.admin("POST", "/v1/apply", Some(doc)).await;
    assert_eq!((s, error_param(&v).as_deref()), (StatusCode::BAD_REQUEST, Some("providers[0].path_prefix")), "{v}");
    let doc = json!({"providers": [{"name": "g", "kind": "gemini", "cluster": "c"}],
        "routes": [{"model": "m", "targets": [{"provider": "g", "model": "models/../../v1/files"}]}]});
    let (s, _, v) = t.admin("POST", "/v1/apply", Some(doc)).await;
    assert_eq!((s, error_param(&v).as_deref()), (StatusCode::BAD_REQUEST, Some("routes[0].targets[0].model")), "{v}");
}

#[tokio::test]
async fn a_provider_change_cannot_break_its_routes() {
    let t = TestApp::new();
    t.admin("POST", "/v1/providers", Some(json!({"name": "p", "kind": "openai", "cluster": "c"}))).await;
    let (s, _, v) = t
        .admin("POST", "/v1/routes", Some(json!({"model": "m", "targets": [{"provider": "p", "model": "gpt/4o"}]})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // As an Azure deployment, "gpt/4o" would be a path: the route would be left out by every filter.
    let azure = json!({"name": "p", "kind": "azure_openai", "cluster": "c", "settings": {"azure": {"api_version": "2024-10-21"}}});
    let (s, _, v) = t.admin("PUT", "/v1/providers/p", Some(azure)).await;
    assert_eq!((s, error_param(&v).as_deref()), (StatusCode::BAD_REQUEST, Some("kind")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("route 'm'"), "{v}");
}

#[tokio::test]
async fn the_snapshot_size_is_capped() {
    let t = TestApp::new();
    // 1000 models of 128 characters is about 130 kB a key; 70 of them pass 8 MiB.
    let models: Vec<String> = (0..1000).map(|i| format!("{i:0>128}")).collect();
    let mut refused = None;
    for i in 0..80 {
        let (s, _, v) = t
            .admin("POST", "/v1/keys", Some(json!({"name": format!("k{i}"), "owner": "o", "allowed_models": models})))
            .await;
        if s == StatusCode::BAD_REQUEST {
            assert_eq!(v["error"]["code"], "snapshot_too_large", "{v}");
            refused = Some(i);
            break;
        }
        assert_eq!(s, StatusCode::CREATED, "{v}");
        // The estimate reads the last built snapshot.
        let want = i as u64 + 1;
        let deadline = Instant::now() + Duration::from_secs(10);
        while t.snapshots.borrow().as_ref().map_or(0, |b| b.snapshot.version) < want {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let refused = refused.expect("the cap was never reached");
    assert!((55..=70).contains(&refused), "refused at key {refused}");
    let bytes = t.snapshots.borrow().as_ref().unwrap().json.len();
    assert!(bytes <= gateway_core::validate::MAX_SNAPSHOT_BYTES, "{bytes}");
}
