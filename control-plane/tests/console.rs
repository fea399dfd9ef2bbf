//! The admin console at `/ui`: served without a token, from the bytes embedded at build time,
//! with a strict Content-Security-Policy and cache headers suited to hashed asset names; and
//! `GET /v1/whoami`, which tells the console what the token may do.

mod common;

use axum::http::StatusCode;
use common::server::{call, TestApp, ADMIN, READ_ONLY};
use control_plane::console::{lookup, ASSETS, CSP};

fn assert_security_headers(h: &axum::http::HeaderMap) {
    assert_eq!(h.get("content-security-policy").unwrap(), CSP);
    assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff");
    assert_eq!(h.get("referrer-policy").unwrap(), "no-referrer");
    assert_eq!(h.get("x-frame-options").unwrap(), "DENY");
}

#[test]
fn the_policy_allows_only_this_origin_and_no_inline_script() {
    for directive in ["default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"] {
        assert!(CSP.contains(directive), "{directive}");
    }
    assert!(!CSP.contains("unsafe-inline") && !CSP.contains("unsafe-eval") && !CSP.contains("http"), "{CSP}");
}

#[test]
fn the_built_console_is_embedded_and_refers_only_to_embedded_files() {
    let index = std::str::from_utf8(lookup("index.html").expect("ui/dist/index.html embedded")).unwrap();
    let refs: Vec<&str> = index.split('"').filter(|s| s.starts_with("/ui/")).collect();
    assert!(refs.iter().any(|r| r.ends_with(".js")) && refs.iter().any(|r| r.ends_with(".css")), "{index}");
    for r in refs {
        assert!(lookup(r.trim_start_matches("/ui/")).is_some(), "index.html refers to {r}, which is not embedded");
    }
    // No inline script or style, no other host: the CSP would block them.
    assert!(!index.contains("<script>") && !index.contains("<style") && !index.contains("style="), "{index}");
    for (path, bytes) in ASSETS {
        let text = String::from_utf8_lossy(bytes);
        for host in ["http://", "https://"] {
            // Only XML namespaces (SVG) may name a host, and nothing loads them.
            let stray = text.match_indices(host).any(|(i, _)| !text[i..].starts_with("http://www.w3.org/"));
            assert!(!stray, "{path} refers to another host");
        }
    }
}

#[tokio::test]
async fn ui_is_served_without_a_token_with_security_and_cache_headers() {
    let t = TestApp::new();
    let (s, h, _) = call(&t.app, "GET", "/ui", None, None, &[]).await;
    assert_eq!(s, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(h.get("location").unwrap(), "/ui/");

    let (s, h, body) = call(&t.app, "GET", "/ui/", None, None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_security_headers(&h);
    assert_eq!(h.get("content-type").unwrap(), "text/html; charset=utf-8");
    assert_eq!(h.get("cache-control").unwrap(), "no-cache");
    assert!(body.as_str().unwrap().contains("<div id=\"app\">"));

    let (js, _) = ASSETS.iter().find(|(p, _)| p.starts_with("assets/") && p.ends_with(".js")).unwrap();
    let (s, h, _) = call(&t.app, "GET", &format!("/ui/{js}"), None, None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_security_headers(&h);
    assert_eq!(h.get("content-type").unwrap(), "text/javascript; charset=utf-8");
    assert_eq!(h.get("cache-control").unwrap(), "public, max-age=31536000, immutable");
    assert_eq!(h.get("content-length").unwrap().to_str().unwrap(), lookup(js).unwrap().len().to_string());

    for missing in ["/ui/assets/nope.js", "/ui/../Cargo.toml", "/ui/%2e%2e/Cargo.toml"] {
        let (s, h, _) = call(&t.app, "GET", missing, None, None, &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{missing}");
        assert_security_headers(&h);
    }
    // Static files only: nothing under /ui accepts a write.
    let (s, _, _) = call(&t.app, "POST", "/ui/", Some(ADMIN), None, &[]).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn whoami_says_what_the_token_may_do() {
    let t = TestApp::new();
    let (s, _, v) = call(&t.app, "GET", "/v1/whoami", Some(ADMIN), None, &[]).await;
    assert_eq!((s, v["access"].as_str()), (StatusCode::OK, Some("admin")));
    let (s, _, v) = call(&t.app, "GET", "/v1/whoami", Some(READ_ONLY), None, &[]).await;
    assert_eq!((s, v["access"].as_str()), (StatusCode::OK, Some("read_only")));
    let (s, _, v) = call(&t.app, "GET", "/v1/whoami", Some("nope"), None, &[]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let (s, _, _) = call(&t.app, "GET", "/v1/whoami", None, None, &[]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = call(&t.app, "GET", "/v1/whoami?x=1", Some(ADMIN), None, &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}
