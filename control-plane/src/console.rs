//! The admin console: a static single-page app under `/ui/` (built by Vite from `ui/`, embedded
//! at compile time by `build.rs`), served without a token; all data comes from the authenticated
//! REST API with `Authorization: Bearer` (docs/adr/0022-admin-console.md).

use axum::extract::Path;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// The built console: `(path under ui/dist, bytes)`, sorted by path.
pub static ASSETS: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));

/// Where the console is served.
pub const PREFIX: &str = "/ui/";

/// The Content-Security-Policy of every `/ui` response: only this origin's scripts, styles,
/// images and API; no inline script, no framing, no plugins, no `<base>` rewrites.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'";

/// Cache policy of content-hashed assets (`assets/name-HASH.ext`): a new build has new names.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Cache policy of `index.html` and unhashed files: revalidate every time, so a new build's asset
/// names are picked up at once.
const REVALIDATE: &str = "no-cache";

/// Routes of the console (no authentication: static files only).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(PREFIX.trim_end_matches('/'), get(|| async { Redirect::permanent(PREFIX) }))
        .route(PREFIX, get(|| async { asset("index.html") }))
        .route(&format!("{PREFIX}{{*path}}"), get(|Path(path): Path<String>| async move { asset(&path) }))
}

/// The embedded file at `path`, if any.
pub fn lookup(path: &str) -> Option<&'static [u8]> {
    ASSETS.binary_search_by(|(p, _)| (*p).cmp(path)).ok().and_then(|i| ASSETS.get(i)).map(|(_, b)| *b)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn with_security_headers(mut resp: Response, cache: &'static str) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    h.insert(HeaderName::from_static("cross-origin-resource-policy"), HeaderValue::from_static("same-origin"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    resp
}

fn asset(path: &str) -> Response {
    match lookup(path) {
        Some(bytes) => {
            let cache = if path.starts_with("assets/") { IMMUTABLE } else { REVALIDATE };
            with_security_headers(([(header::CONTENT_TYPE, content_type(path))], bytes).into_response(), cache)
        }
        None if ASSETS.is_empty() => with_security_headers(
            (StatusCode::NOT_FOUND, "the console was not built into this binary (./dev ui, then cargo build)")
                .into_response(),
            REVALIDATE,
        ),
        None => with_security_headers((StatusCode::NOT_FOUND, "no such console file").into_response(), REVALIDATE),
    }
}
