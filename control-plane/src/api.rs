//! The admin REST API: providers, routes, virtual keys, declarative apply, snapshot status.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, FromRequest, MatchedPath, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use gateway_core::snapshot::KeyStatus;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::apply;
use crate::audit::{self, Action, AuditContext, Via};
use crate::credentials::CredentialPolicy;
use crate::model::{
    etag, generate_secret, hash_secret, parse_json, record_view, ApiError, KeySpec, PriceSpec, ProviderSpec, RouteSpec,
    NO_VERSION,
};
use crate::snapshot::SnapshotRx;
use crate::store::{list_all, Kind, Record, Store};
use gateway_core::config::ProviderConfig;
use gateway_core::validate::MAX_SNAPSHOT_BYTES;

/// Prefix of every virtual key secret, so leaked keys are easy to recognise and scan for.
pub const KEY_PREFIX: &str = "sk-gw-";
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;
/// Largest request body accepted (axum's default, made explicit): a larger one is a 413 in the
/// API's error shape.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Admin credentials, kept only as SHA-256 digests.
#[derive(Clone, Default)]
pub struct AuthConfig {
    admin: Vec<[u8; 32]>,
    read_only: Vec<[u8; 32]>,
}

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Admin,
    ReadOnly,
}

impl Access {
    fn as_str(self) -> &'static str {
        match self {
            Access::Admin => "admin",
            Access::ReadOnly => "read_only",
        }
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl AuthConfig {
    pub fn new(admin_tokens: &[String], read_only_tokens: &[String]) -> Self {
        AuthConfig {
            admin: admin_tokens.iter().map(|t| digest(t)).collect(),
            read_only: read_only_tokens.iter().map(|t| digest(t)).collect(),
        }
    }

    fn check(&self, token: &str) -> Option<Access> {
        // Comparing fixed-size digests with a full fold keeps timing independent of where the
        // token differs.
        let d = digest(token);
        let eq = |k: &[u8; 32]| k.iter().zip(d.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if self.admin.iter().any(eq) {
            Some(Access::Admin)
        } else if self.read_only.iter().any(eq) {
            Some(Access::ReadOnly)
        } else {
            None
        }
    }
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub auth: Arc<AuthConfig>,
    /// Notified after every successful write, so the snapshot is rebuilt at once.
    pub changed: Arc<Notify>,
    pub snapshots: SnapshotRx,
    /// Which credential references providers may name (checked at create, update and apply).
    pub credentials: Arc<CredentialPolicy>,
    /// What each Envoy reported about the snapshots it received (`ReportStatus`).
    pub nodes: Arc<crate::watch::NodeBoard>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, Json(self.body())).into_response();
        if self.status == 401 {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

type ApiResult = Result<Response, ApiError>;

/// All routes with authentication and access logging.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/v1/providers", get(list_providers).post(create_provider))
        .route("/v1/providers/{name}", get(get_provider).put(update_provider).delete(delete_provider))
        .route("/v1/routes", get(list_routes).post(create_route))
        .route("/v1/routes/{*model}", get(get_route).put(update_route).delete(delete_route))
        .route("/v1/keys", get(list_keys).post(create_key))
        .route("/v1/keys/{name}", get(get_key).put(update_key).delete(delete_key))
        .route("/v1/keys/{name}/revoke", post(revoke_key))
        .route("/v1/keys/{name}/rotate", post(rotate_key))
        .route("/v1/prices", get(list_prices).post(create_price))
        .route("/v1/prices/{*name}", get(get_price).put(update_price).delete(delete_price))
        .route("/v1/apply", post(apply_handler))
        .route("/v1/snapshot", get(snapshot_status))
        .route("/v1/usage", get(usage_handler))
        .route("/v1/audit", get(audit_handler))
        .route("/v1/whoami", get(whoami))
        .method_not_allowed_fallback(|| async {
            ApiError::new(405, "method_not_allowed", "this endpoint does not accept this method")
        })
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    // Development token issuer (CP_DEV_ISSUER=1): unauthenticated like Cognito's token endpoint.
    let dev_issuer = match crate::dev_issuer::DevIssuer::from_env() {
        Ok(Some(issuer)) => {
            tracing::warn!("development OAuth2 issuer enabled: POST /oauth2/token, GET /.well-known/jwks.json");
            Arc::new(issuer).router()
        }
        Ok(None) => Router::new(),
        Err(e) => {
            tracing::error!("development OAuth2 issuer disabled: {e}");
            Router::new()
        }
    };
    Router::new()
        .merge(dev_issuer)
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(crate::openapi::serve))
        .merge(api)
        .merge(crate::console::router())
        .fallback(|| async { ApiError::new(404, "not_found", "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(405, "method_not_allowed", "this endpoint does not accept this method")
        })
        .layer(middleware::from_fn(access_log))
        .with_state(state)
}

async fn access_log(req: Request, next: Next) -> Response {
    // Only method, path and status: never headers (Authorization) or bodies (secrets).
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    tracing::info!(%method, %path, status = resp.status().as_u16(), ms = started.elapsed().as_millis() as u64, "request");
    resp
}

async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let (access, actor) = match token.and_then(|t| state.auth.check(t).map(|a| (a, t))) {
        Some((a, t)) => {
            let role = if a == Access::Admin { "admin" } else { "read-only" };
            (a, audit::actor_for(role, t))
        }
        None => {
            return ApiError::new(401, "unauthorized", "a valid admin token is required (Authorization: Bearer ...)")
                .into_response()
        }
    };
    // The query is parsed here, once; the handlers read the same parsed values from the request's
    // extensions, so the authorisation decision and the handler can never see different values.
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_default();
    let params = match QueryParams::parse(req.uri().query(), allowed_params(req.method(), &route)) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let read = matches!(*req.method(), Method::GET | Method::HEAD);
    let mut dry_run = false;
    if route == "/v1/apply" && req.method() == Method::POST {
        let q = match ApplyQuery::from_params(&params) {
            Ok(q) => q,
            Err(e) => return e.into_response(),
        };
        dry_run = q.dry_run;
        req.extensions_mut().insert(q);
    }
    if access == Access::ReadOnly && !read && !dry_run {
        return ApiError::new(403, "forbidden", "this token is read-only").into_response();
    }
    req.extensions_mut().insert(params);
    req.extensions_mut().insert(access);
    // Every write this request makes is recorded under this actor and request id.
    req.extensions_mut().insert(AuditContext::new(actor, Via::Api));
    next.run(req).await
}

/// The query parameters each endpoint accepts; any other is a 400 (a typo such as `dryrun=1` must
/// not silently apply for real). The OpenAPI document's query parameters are checked against it.
pub(crate) fn allowed_params(method: &Method, route: &str) -> &'static [&'static str] {
    let read = matches!(*method, Method::GET | Method::HEAD);
    match route {
        "/v1/providers" | "/v1/routes" | "/v1/keys" | "/v1/prices" if read => &["limit", "cursor"],
        "/v1/apply" => &["dry_run", "prune"],
        "/v1/usage" => &["caller", "key", "period", "from", "to", "model"],
        "/v1/audit" => &["kind", "name", "actor", "since", "until", "limit", "cursor"],
        _ => &[],
    }
}

/// A request's query string, decoded once (`application/x-www-form-urlencoded`: `+` and `%XX`).
/// A name given twice or not accepted by the endpoint is a 400 naming it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams(BTreeMap<String, String>);

impl QueryParams {
    /// Parses `query`, accepting only the names in `allowed`.
    pub fn parse(query: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let mut map = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            if !allowed.contains(&k.as_ref()) {
                let accepted = if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") };
                let mut e = ApiError::field(
                    k.as_ref(),
                    format!("unknown query parameter '{k}' (this endpoint accepts: {accepted})"),
                );
                e.code = "unknown_parameter";
                return Err(e);
            }
            if map.insert(k.to_string(), v.to_string()).is_some() {
                let mut e = ApiError::field(k.as_ref(), format!("query parameter '{k}' is given more than once"));
                e.code = "duplicate_parameter";
                return Err(e);
            }
        }
        Ok(QueryParams(map))
    }

    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&String> {
        self.0.get(name)
    }

    /// A boolean flag: absent → false; empty, `true` or `1` → true; `false` or `0` → false;
    /// anything else is a 400 (never a guess).
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.0.get(name).map(String::as_str) {
            None | Some("false") | Some("0") => Ok(false),
            Some("") | Some("true") | Some("1") => Ok(true),
            Some(v) => Err(ApiError::field(name, format!("{name} must be true or false (1 or 0), not '{v}'"))),
        }
    }
}

/// The query of `POST /v1/apply`, parsed once by the authentication middleware (which lets a
/// read-only token through only when `dry_run` is true) and read by the handler.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApplyQuery {
    /// Plan only, write nothing (a read-only token may then call it). `true`, `1` or empty, or
    /// `false`, `0`; default false.
    #[param(required = false)]
    pub dry_run: bool,
    /// Delete stored providers, routes (and prices, when the document lists prices) that the
    /// document does not list. Without it they are kept. Same values as `dry_run`.
    #[param(required = false)]
    pub prune: bool,
}

/// The query of `GET /v1/usage`, as documented; the handler reads the same names from
/// [`QueryParams`] (a test checks both against [`allowed_params`]).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct UsageQuery {
    /// Only this caller (`key:<hash>` for a virtual key, the JWT's client for OAuth2 callers); not
    /// with `key`.
    #[param(min_length = 1, max_length = 512)]
    caller: Option<String>,
    /// Only this virtual key, by name (all its secrets); not with `caller`. 404 when no key has
    /// this name.
    key: Option<String>,
    /// Aggregate per UTC `day` (default) or `month`.
    #[param(value_type = Option<String>, pattern = "^(day|month)$")]
    period: Option<String>,
    /// First period, `YYYY-MM-DD` or `YYYY-MM` (a day bounds a month query by its month);
    /// default: the current one, or `to` when only `to` is given.
    #[param(pattern = "^[0-9]{4}-[0-9]{2}(-[0-9]{2})?$")]
    from: Option<String>,
    /// Last period, same forms as `from`; default: the current one.
    #[param(pattern = "^[0-9]{4}-[0-9]{2}(-[0-9]{2})?$")]
    to: Option<String>,
    /// Only this provider model.
    model: Option<String>,
}

/// One row of `GET /v1/usage`: one caller's use of one provider model in one day or month.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct UsageRow {
    /// `key:<hash>` for a virtual key, else the JWT's client id.
    pub caller: String,
    /// The virtual key's name, when the caller is a key that still exists.
    pub key: Option<String>,
    /// The provider (as configured) that served the requests.
    pub provider: String,
    /// The provider model.
    pub model: String,
    /// `YYYY-MM-DD` or `YYYY-MM`.
    pub period: String,
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_creation_tokens: u64,
    pub reasoning_tokens: u64,
    /// Cost in picodollars (10^-12 USD), exact.
    pub cost_pusd: u64,
    /// The same cost as a decimal USD string.
    #[schema(example = "0.0125")]
    pub cost_usd: String,
}

/// The answer of `GET /v1/usage`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct UsageResponse {
    pub data: Vec<UsageRow>,
}

/// The answer of `POST /v1/apply`: the plan, rendered and itemised.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct ApplyResult {
    /// True when nothing was written.
    pub dry_run: bool,
    /// Whether unlisted objects were (or would be) deleted.
    pub prune: bool,
    /// The writes, in order; empty when the store already matches.
    pub changes: Vec<apply::Change>,
    /// Stored objects the document does not list, kept because `prune` is off.
    pub kept: Vec<apply::Kept>,
    /// The plan as text, one line per change.
    pub diff: String,
}

/// How a snapshot's view was brought up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BuildKind {
    /// Journaled writes applied to the previous view.
    Incremental,
    /// The whole store listed again.
    Reload,
}

/// The answer of `GET /v1/snapshot` (no secrets).
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct SnapshotStatus {
    /// The snapshot's version; it grows with every change.
    pub version: u64,
    pub providers: usize,
    pub routes: usize,
    pub keys: usize,
    pub prices: usize,
    /// Providers whose credential was resolved.
    pub credentials_resolved: Vec<String>,
    /// Size of the serialised snapshot.
    pub bytes: usize,
    pub build_ms: f64,
    pub build: BuildKind,
    /// Objects left out of the snapshot and why.
    pub warnings: Vec<String>,
    /// What the shared validator refuses in this snapshot; filters leave these out.
    pub invalid: Vec<gateway_core::validate::Invalid>,
    /// Per Envoy (node id), what it left out of the snapshot it last received.
    pub nodes: Vec<crate::watch::NodeReport>,
}

impl ApplyQuery {
    /// Reads `dry_run` and `prune`.
    pub fn from_params(p: &QueryParams) -> Result<Self, ApiError> {
        Ok(ApplyQuery { dry_run: p.flag("dry_run")?, prune: p.flag("prune")? })
    }
}

/// The `{name}` (or `{*model}`) segment of an object's URL, percent-decoded; a segment that does
/// not decode to UTF-8 is a 400 in the API's error shape.
pub struct ObjectName(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ObjectName {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<String>::from_request_parts(parts, state).await.map(|Path(n)| ObjectName(n)).map_err(|e| {
            let mut err =
                ApiError::new(400, "invalid_path", format!("invalid object name in the URL: {}", e.body_text()));
            err.param = Some("name".into());
            err
        })
    }
}

/// Who makes this request's writes, set by the authentication middleware.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for AuditContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<AuditContext>()
            .cloned()
            .ok_or_else(|| ApiError::new(500, "internal", "request without an audit context"))
    }
}

/// A request body, at most [`MAX_BODY_BYTES`]; a failure (too large, unreadable) is an
/// [`ApiError`] in the API's shape rather than axum's plain-text rejection.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state).await.map(RawBody).map_err(|e| {
            let status = e.status().as_u16();
            let mut err = if status == 413 {
                ApiError::new(413, "request_too_large", format!("the request body exceeds {MAX_BODY_BYTES} bytes"))
            } else {
                ApiError::new(status, "invalid_body", format!("cannot read the request body: {}", e.body_text()))
            };
            err.param = Some("body".into());
            err
        })
    }
}

fn object_response(status: StatusCode, rec: &Record, extra: Option<(&str, Value)>) -> Response {
    let mut body = record_view(rec);
    if let (Some((k, v)), Some(obj)) = (extra, body.as_object_mut()) {
        obj.insert(k.to_string(), v);
    }
    let mut resp = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag(rec.version)) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

/// `If-Match` as an expected version: absent or `*` → no precondition. A well-formed tag that is
/// not one of ours can never match, so it expects [`NO_VERSION`]: the store then answers 412 (or
/// 404 for a missing object) after the body was checked, like any stale tag, so a bad body is a
/// 400 whatever the tag (RFC 9110 §13.2.1). A value that is no entity tag at all (empty,
/// unquoted) is a malformed request, a 400 naming the header, never read as a precondition.
fn if_match(headers: &HeaderMap, kind: Kind, name: &str) -> Result<Option<u64>, ApiError> {
    let Some(v) = headers.get(header::IF_MATCH) else { return Ok(None) };
    let v = v.to_str().unwrap_or("").trim();
    if v == "*" {
        return Ok(None);
    }
    let quoted = v.strip_prefix("W/").unwrap_or(v);
    if quoted.len() < 2 || !quoted.starts_with('"') || !quoted.ends_with('"') {
        return Err(ApiError::field(
            "If-Match",
            format!(
                "If-Match for {kind} '{name}' must be * or an entity tag in double quotes, such as \"3\" (the ETag of a GET)"
            ),
        ));
    }
    let tag = quoted.trim_matches('"');
    Ok(Some(tag.parse::<u64>().unwrap_or(NO_VERSION)))
}

async fn list(State(st): State<AppState>, Extension(q): Extension<QueryParams>, kind: Kind) -> ApiResult {
    let limit = match q.get("limit") {
        None => DEFAULT_PAGE,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => return Err(ApiError::field("limit", format!("limit must be an integer from 1 to {MAX_PAGE}"))),
        },
    };
    let after = match q.get("cursor") {
        None => None,
        Some(c) => Some(
            hex::decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::field("cursor", "cursor is not one this API returned"))?,
        ),
    };
    let page = st.store.list(kind, after.as_deref(), limit).await?;
    let items: Vec<Value> = page.items.iter().map(record_view).collect();
    let next = page.next.map(|n| hex::encode(n.as_bytes()));
    Ok(Json(json!({"items": items, "next_cursor": next})).into_response())
}

async fn get_one(State(st): State<AppState>, ObjectName(name): ObjectName, kind: Kind) -> ApiResult {
    match st.store.get(kind, &name).await? {
        Some(rec) => Ok(object_response(StatusCode::OK, &rec, None)),
        None => Err(ApiError::new(404, "not_found", format!("{kind} '{name}' not found"))),
    }
}

async fn delete_one(
    State(st): State<AppState>,
    ObjectName(name): ObjectName,
    headers: HeaderMap,
    audit: AuditContext,
    kind: Kind,
) -> ApiResult {
    let expected = if_match(&headers, kind, &name)?;
    st.store.delete(kind, &name, expected, &audit).await?;
    st.changed.notify_one();
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Liveness: answers `ok` while the process serves HTTP (no store access, no authentication).
#[utoipa::path(get, path = "/healthz", tag = "meta", security(()),
    responses((status = 200, description = "The process is up.", body = String, content_type = "text/plain", example = "ok")))]
async fn healthz() -> &'static str {
    "ok"
}

/// List providers, by name, one page at a time.
#[utoipa::path(get, path = "/v1/providers", tag = "providers", params(crate::openapi::Pagination),
    responses((status = 200, description = "One page of providers.", body = crate::openapi::ProviderList)))]
async fn list_providers(s: State<AppState>, q: Extension<QueryParams>) -> ApiResult {
    list(s, q, Kind::Provider).await
}

/// Get one provider.
#[utoipa::path(get, path = "/v1/providers/{name}", tag = "providers", params(("name" = String, Path, description = "The provider's name.")),
    responses(
        (status = 200, description = "The provider; `ETag` is its version.", body = crate::openapi::Provider, headers(("ETag" = String, description = "The object's version, quoted: send it back in If-Match."))),
        (status = 404, description = "No provider has this name.", body = crate::model::ErrorResponse)))]
async fn get_provider(s: State<AppState>, p: ObjectName) -> ApiResult {
    get_one(s, p, Kind::Provider).await
}

/// List routes, by public model name, one page at a time.
#[utoipa::path(get, path = "/v1/routes", tag = "routes", params(crate::openapi::Pagination),
    responses((status = 200, description = "One page of routes.", body = crate::openapi::RouteList)))]
async fn list_routes(s: State<AppState>, q: Extension<QueryParams>) -> ApiResult {
    list(s, q, Kind::Route).await
}

/// Get one route.
#[utoipa::path(get, path = "/v1/routes/{model}", tag = "routes", params(("model" = String, Path, description = "The route's public model name; it may contain `/`.")),
    responses(
        (status = 200, description = "The route; `ETag` is its version.", body = crate::openapi::Route, headers(("ETag" = String, description = "The object's version, quoted: send it back in If-Match."))),
        (status = 404, description = "No route has this model name.", body = crate::model::ErrorResponse)))]
async fn get_route(s: State<AppState>, p: ObjectName) -> ApiResult {
    get_one(s, p, Kind::Route).await
}

/// Delete a route.
#[utoipa::path(delete, path = "/v1/routes/{model}", tag = "routes",
    params(("model" = String, Path, description = "The route's public model name; it may contain `/`."), crate::openapi::IfMatch),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No route has this model name.", body = crate::model::ErrorResponse)))]
async fn delete_route(s: State<AppState>, p: ObjectName, h: HeaderMap, a: AuditContext) -> ApiResult {
    delete_one(s, p, h, a, Kind::Route).await
}

/// List virtual keys (never their secrets), by name, one page at a time.
#[utoipa::path(get, path = "/v1/keys", tag = "keys", params(crate::openapi::Pagination),
    responses((status = 200, description = "One page of keys.", body = crate::openapi::KeyList)))]
async fn list_keys(s: State<AppState>, q: Extension<QueryParams>) -> ApiResult {
    list(s, q, Kind::Key).await
}

/// Get one virtual key (never its secret).
#[utoipa::path(get, path = "/v1/keys/{name}", tag = "keys", params(("name" = String, Path, description = "The key's name.")),
    responses(
        (status = 200, description = "The key; `ETag` is its version.", body = crate::openapi::Key, headers(("ETag" = String, description = "The object's version, quoted: send it back in If-Match."))),
        (status = 404, description = "No key has this name.", body = crate::model::ErrorResponse)))]
async fn get_key(s: State<AppState>, p: ObjectName) -> ApiResult {
    get_one(s, p, Kind::Key).await
}

/// Delete a virtual key: its secrets stop working with the next snapshot.
#[utoipa::path(delete, path = "/v1/keys/{name}", tag = "keys",
    params(("name" = String, Path, description = "The key's name."), crate::openapi::IfMatch),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No key has this name.", body = crate::model::ErrorResponse)))]
async fn delete_key(s: State<AppState>, p: ObjectName, h: HeaderMap, a: AuditContext) -> ApiResult {
    delete_one(s, p, h, a, Kind::Key).await
}

/// List prices, by `<provider>/<model>`, one page at a time.
#[utoipa::path(get, path = "/v1/prices", tag = "prices", params(crate::openapi::Pagination),
    responses((status = 200, description = "One page of prices.", body = crate::openapi::PriceList)))]
async fn list_prices(s: State<AppState>, q: Extension<QueryParams>) -> ApiResult {
    list(s, q, Kind::Price).await
}

/// Get one price.
#[utoipa::path(get, path = "/v1/prices/{name}", tag = "prices", params(("name" = String, Path, description = "`<provider>/<model>`; it contains `/`.")),
    responses(
        (status = 200, description = "The price; `ETag` is its version.", body = crate::openapi::Price, headers(("ETag" = String, description = "The object's version, quoted: send it back in If-Match."))),
        (status = 404, description = "No price has this name.", body = crate::model::ErrorResponse)))]
async fn get_price(s: State<AppState>, p: ObjectName) -> ApiResult {
    get_one(s, p, Kind::Price).await
}

/// Delete a price: the provider model's requests are no longer costed.
#[utoipa::path(delete, path = "/v1/prices/{name}", tag = "prices",
    params(("name" = String, Path, description = "`<provider>/<model>`; it contains `/`."), crate::openapi::IfMatch),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No price has this name.", body = crate::model::ErrorResponse)))]
async fn delete_price(s: State<AppState>, p: ObjectName, h: HeaderMap, a: AuditContext) -> ApiResult {
    delete_one(s, p, h, a, Kind::Price).await
}

fn path_name(body_name: &mut String, path: &str, param: &str) -> Result<(), ApiError> {
    if body_name.is_empty() {
        *body_name = path.to_string();
    } else if body_name != path {
        return Err(ApiError::field(
            param,
            format!("'{param}' in the body differs from the one in the URL; renames are not supported"),
        ));
    }
    Ok(())
}

fn to_doc<T: serde::Serialize>(v: &T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::new(500, "internal", e.to_string()))
}

/// Refuses a write that would grow the snapshot past [`MAX_SNAPSHOT_BYTES`]: `doc` is the new
/// object, `replaced` the stored one it replaces (if any). Estimated from the last built snapshot,
/// so concurrent writes can overshoot it by a little; the snapshot is pushed whole on every change.
fn check_snapshot_size(st: &AppState, doc: &Value, replaced: Option<&Value>) -> Result<(), ApiError> {
    let current = st.snapshots.borrow().as_ref().map_or(0, |b| b.json.len());
    let size = |v: &Value| serde_json::to_vec(v).map_or(0, |b| b.len());
    let after = current.saturating_add(size(doc)).saturating_sub(replaced.map_or(0, size));
    if after > MAX_SNAPSHOT_BYTES {
        return Err(ApiError::new(
            400,
            "snapshot_too_large",
            format!("this write would make the snapshot about {after} bytes, over the {MAX_SNAPSHOT_BYTES} byte limit"),
        ));
    }
    Ok(())
}

/// The stored providers named in `names`, as a snapshot carries them; unknown or unreadable
/// ones are absent (the validator then names the target).
async fn providers_named(st: &AppState, names: impl Iterator<Item = &str>) -> Result<Vec<ProviderConfig>, ApiError> {
    let mut out: Vec<ProviderConfig> = Vec::new();
    for name in names {
        if out.iter().any(|p| p.name == name) {
            continue;
        }
        if let Some(rec) = st.store.get(Kind::Provider, name).await? {
            if let Ok(spec) = serde_json::from_value::<ProviderSpec>(rec.doc) {
                out.push(spec.to_config());
            }
        }
    }
    Ok(out)
}

/// A provider change must leave every route that targets it valid (a new kind can refuse the
/// routes' target models): the first route it would break is a 400 on `kind`.
async fn check_dependent_routes(st: &AppState, spec: &ProviderSpec) -> Result<(), ApiError> {
    for r in list_all(st.store.as_ref(), Kind::Route).await? {
        let Ok(route) = serde_json::from_value::<RouteSpec>(r.doc.clone()) else { continue };
        if !route.targets.iter().any(|t| t.provider == spec.name) {
            continue;
        }
        let mut providers = providers_named(st, route.targets.iter().map(|t| t.provider.as_str())).await?;
        providers.retain(|p| p.name != spec.name);
        providers.push(spec.to_config());
        if let Err(e) = gateway_core::validate::validate_route(&route.to_config(), &providers) {
            return Err(ApiError::field("kind", format!("this change would make route '{}' invalid: {e}", r.name)));
        }
    }
    Ok(())
}

/// Create a provider.
///
/// `credential` is a reference (`env:VAR` or a Secrets Manager ARN the credential policy allows),
/// never the secret itself.
#[utoipa::path(post, path = "/v1/providers", tag = "providers", request_body = crate::model::ProviderSpec,
    responses(
        (status = 201, description = "Created; `ETag` is its version.", body = crate::openapi::Provider, headers(("ETag" = String, description = "The object's version, quoted."))),
        (status = 409, description = "A provider with this name exists (`already_exists`).", body = crate::model::ErrorResponse)))]
async fn create_provider(State(st): State<AppState>, audit: AuditContext, RawBody(body): RawBody) -> ApiResult {
    let spec: ProviderSpec = parse_json(&body)?;
    spec.validate("")?;
    st.credentials.check_field("credential", spec.credential.as_deref())?;
    check_snapshot_size(&st, &to_doc(&spec)?, None)?;
    let rec = st.store.create(Kind::Provider, &spec.name, &to_doc(&spec)?, None, &audit).await?;
    st.changed.notify_one();
    Ok(object_response(StatusCode::CREATED, &rec, None))
}

/// Replace a provider.
///
/// `name` in the body may be omitted; if given it must be the URL's (no renames). Refused with a
/// 400 on `kind` when the change would make a route that targets it invalid.
#[utoipa::path(put, path = "/v1/providers/{name}", tag = "providers", request_body = crate::model::ProviderSpec,
    params(("name" = String, Path, description = "The provider's name."), crate::openapi::IfMatch),
    responses(
        (status = 200, description = "Replaced; `ETag` is the new version.", body = crate::openapi::Provider, headers(("ETag" = String, description = "The object's version, quoted."))),
        (status = 404, description = "No provider has this name.", body = crate::model::ErrorResponse)))]
async fn update_provider(
    State(st): State<AppState>,
    ObjectName(name): ObjectName,
    headers: HeaderMap,
    audit: AuditContext,
    RawBody(body): RawBody,
) -> ApiResult {
    let expected = if_match(&headers, Kind::Provider, &name)?;
    let mut spec: ProviderSpec = parse_json(&body)?;
    path_name(&mut spec.name, &name, "name")?;
    spec.validate("")?;
    st.credentials.check_field("credential", spec.credential.as_deref())?;
    check_dependent_routes(&st, &spec).await?;
    let rec = st.store.update(Kind::Provider, &name, expected, &to_doc(&spec)?, &audit).await?;
    st.changed.notify_one();
    Ok(object_response(StatusCode::OK, &rec, None))
}

/// Delete a provider that no route targets.
#[utoipa::path(delete, path = "/v1/providers/{name}", tag = "providers",
    params(("name" = String, Path, description = "The provider's name."), crate::openapi::IfMatch),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No provider has this name.", body = crate::model::ErrorResponse),
        (status = 409, description = "A route still targets this provider (`in_use`).", body = crate::model::ErrorResponse)))]
async fn delete_provider(
    State(st): State<AppState>,
    ObjectName(name): ObjectName,
    headers: HeaderMap,
    audit: AuditContext,
) -> ApiResult {
    let expected = if_match(&headers, Kind::Provider, &name)?;
    // Refuse to orphan routes. A route created concurrently can still slip through; the snapshot
    // builder then leaves that route out rather than publishing an invalid config.
    for r in list_all(st.store.as_ref(), Kind::Route).await? {
        let uses = serde_json::from_value::<RouteSpec>(r.doc.clone())
            .map(|s| s.targets.iter().any(|t| t.provider == name))
            .unwrap_or(false);
        if uses {
            return Err(ApiError::new(409, "in_use", format!("provider '{name}' is used by route '{}'", r.name)));
        }
    }
    st.store.delete(Kind::Provider, &name, expected, &audit).await?;
    st.changed.notify_one();
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn validate_route(st: &AppState, spec: &RouteSpec) -> Result<(), ApiError> {
    let providers = providers_named(st, spec.targets.iter().map(|t| t.provider.as_str())).await?;
    spec.validate("", &providers)?;
    check_snapshot_size(st, &to_doc(spec)?, None)
}

/// Create a route: a public model name and its weighted provider targets.
#[utoipa::path(post, path = "/v1/routes", tag = "routes", request_body = crate::model::RouteSpec,
    responses(
        (status = 201, description = "Created; `ETag` is its version.", body = crate::openapi::Route, headers(("ETag" = String, description = "The object's version, quoted."))),
        (status = 409, description = "A route for this model exists (`already_exists`).", body = crate::model::ErrorResponse)))]
async fn create_route(State(st): State<AppState>, audit: AuditContext, RawBody(body): RawBody) -> ApiResult {
    let spec: RouteSpec = parse_json(&body)?;
    validate_route(&st, &spec).await?;
    let rec = st.store.create(Kind::Route, &spec.model, &to_doc(&spec)?, None, &audit).await?;
    st.changed.notify_one();
    Ok(object_response(StatusCode::CREATED, &rec, None))
}

/// Replace a route.
///
/// `model` in the body may be omitted; if given it must be the URL's (no renames).
#[utoipa::path(put, path = "/v1/routes/{model}", tag = "routes", request_body = crate::model::RouteSpec,
    params(("model" = String, Path, description = "The route's public model name; it may contain `/`."), crate::openapi::IfMatch),
    responses(
        (status = 200, description = "Replaced; `ETag` is the new version.", body = crate::openapi::Route, headers(("ETag" = String, description = "The object's version, quoted."))),
        (status = 404, description = "No route has this model name.", body = crate::model::ErrorResponse)))]
async fn update_route(
    State(st): State<AppState>,
    ObjectName(name): ObjectName,
    headers: HeaderMap,
    audit: AuditContext,
    RawBody(body): RawBody,
) -> ApiResult {
    let expected = if_match(&headers, Kind::Route, &name)?;
    let mut spec: RouteSpec = parse_json(&body)?;
    path_name(&mut spec.model, &name, "model")?;
    validate_route(&st, &spec).await?;
    let rec = st.store.update(Kind::Route, &name, expected, &to_doc(&spec)?, &audit).await?;
    st.changed.notify_one();
    Ok(object_response(StatusCode::OK, &rec, None))
}

/// Create a virtual key.
///
/// The answer is the only time its secret (`sk-gw-...`) is shown: the control plane keeps only a
/// hash. `Cache-Control: no-store`.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = crate::model::KeySpec,
    responses(
        (status = 201, description = "Created; `secret` is shown this once.", body = crate::openapi::KeyWithSecret, headers(("ETag" = String, description = "The object's version, quoted."), ("Cache-Control" = String, description = "`no-store`."))),
        (status = 409, description = "A key with this name exists (`already_exists`).", body = crate::model::ErrorResponse)))]
async fn create_key(State(st): State<AppState>, audit: AuditContext, RawBody(body): RawBody) -> ApiResult {
    let spec: KeySpec = parse_json(&body)?;
    spec.validate(true)?;
    check_snapshot_size(&st, &to_doc(&spec)?, None)?;
    let secret = generate_secret(KEY_PREFIX)?;
    let rec = st.store.create(Kind::Key, &spec.name, &to_doc(&spec)?, Some(&hash_secret(&secret)), &audit).await?;
    st.changed.notify_one();
    // The only time the secret leaves the control plane: it is not stored, only its hash.
    let mut resp = object_response(StatusCode::CREATED, &rec, Some(("secret", Value::String(secret))));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// Replace a virtual key's grants and limits (not its secret).
///
/// `name` in the body may be omitted; if given it must be the URL's. `rotation` is ignored: the
/// rotate endpoint manages it. A revoked key cannot be made active again (400 on `status`).
#[utoipa::path(put, path = "/v1/keys/{name}", tag = "keys", request_body = crate::model::KeySpec,
    params(("name" = String, Path, description = "The key's name."), crate::openapi::IfMatch),
    responses(
        (status = 200, description = "Replaced; `ETag` is the new version.", body = crate::openapi::Key, headers(("ETag" = String, description = "The object's version, quoted."))),
        (status = 404, description = "No key has this name.", body = crate::model::ErrorResponse)))]
async fn update_key(
    State(st): State<AppState>,
    ObjectName(name): ObjectName,
    headers: HeaderMap,
    audit: AuditContext,
    RawBody(body): RawBody,
) -> ApiResult {
    let expected = if_match(&headers, Kind::Key, &name)?;
    let mut spec: KeySpec = parse_json(&body)?;
    path_name(&mut spec.name, &name, "name")?;
    spec.validate(false)?;
    check_snapshot_size(&st, &to_doc(&spec)?, None)?;
    let current = st
        .store
        .get(Kind::Key, &name)
        .await?
        .ok_or_else(|| ApiError::new(404, "not_found", format!("key '{name}' not found")))?;
    let stored = serde_json::from_value::<KeySpec>(current.doc).ok();
    let was_revoked = stored.as_ref().is_some_and(|k| k.status == KeyStatus::Revoked);
    if was_revoked && spec.status == KeyStatus::Active {
        return Err(ApiError::field("status", "a revoked key cannot be reactivated; create a new key"));
    }
    // Which secrets are valid is the rotate endpoint's business: a PUT keeps them as they are.
    spec.rotation = stored.and_then(|k| k.rotation);
    let rec = st.store.update(Kind::Key, &name, expected, &to_doc(&spec)?, &audit).await?;
    st.changed.notify_one();
    Ok(object_response(StatusCode::OK, &rec, None))
}

/// Revoke a virtual key, for good.
///
/// Revoking a revoked key is a 200 that changes nothing.
#[utoipa::path(post, path = "/v1/keys/{name}/revoke", tag = "keys",
    params(("name" = String, Path, description = "The key's name."), crate::openapi::IfMatch),
    responses(
        (status = 200, description = "Revoked.", body = crate::openapi::Key, headers(("ETag" = String, description = "The object's version, quoted."))),
        (status = 404, description = "No key has this name.", body = crate::model::ErrorResponse),
        (status = 409, description = "The key kept changing under concurrent edits (`busy`); retry.", body = crate::model::ErrorResponse)))]
async fn revoke_key(
    State(st): State<AppState>,
    ObjectName(name): ObjectName,
    headers: HeaderMap,
    audit: AuditContext,
) -> ApiResult {
    let expected = if_match(&headers, Kind::Key, &name)?;
    let audit = audit.with_action(Action::Revoke);
    // Without If-Match, a concurrent edit of the key only means "read again and revoke that".
    for _ in 0..5 {
        let current = st
            .store
            .get(Kind::Key, &name)
            .await?
            .ok_or_else(|| ApiError::new(404, "not_found", format!("key '{name}' not found")))?;
        let mut spec: KeySpec =
            serde_json::from_value(current.doc.clone()).map_err(|e| ApiError::new(500, "internal", e.to_string()))?;
        // Revoking a revoked key changes nothing: no write, no new snapshot version, no audit
        // record.
        if spec.status == KeyStatus::Revoked {
            return Ok(object_response(StatusCode::OK, &current, None));
        }
        spec.status = KeyStatus::Revoked;
        match st
            .store
            .update(Kind::Key, &name, Some(expected.unwrap_or(current.version)), &to_doc(&spec)?, &audit)
            .await
        {
            Ok(rec) => {
                st.changed.notify_one();
                return Ok(object_response(StatusCode::OK, &rec, None));
            }
            Err(crate::store::StoreError::VersionMismatch { .. }) if expected.is_none() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(409, "busy", format!("key '{name}' keeps changing; retry")))
}

/// Create a price row (USD per million tokens) for one provider model.
///
/// `name` may be omitted; it is always `<provider>/<model>`.
#[utoipa::path(post, path = "/v1/prices", tag = "prices", request_body = crate::model::PriceSpec,
    responses(
        (status = 201, description = "Created; `ETag` is its version.", body = crate::openapi::Price, headers(("ETag" = String, description = "The object's version, quoted."))),
        (status = 409, description = "This provider model has a price (`already_exists`).", body = crate::model::ErrorResponse)))]
async fn create_price(State(st): State<AppState>, audit: AuditContext, RawBody(body): RawBody) -> ApiResult {
    let mut spec: PriceSpec = parse_json(&body)?;
    spec.validate("")?;
    let rec = st.store.create(Kind::Price, &spec.name, &to_doc(&spec)?, None, &audit).await?;
    st.changed.notify_one();
    Ok(object_response(StatusCode::CREATED, &rec, None))
}

/// Replace a price row.
#[utoipa::path(put, path = "/v1/prices/{name}", tag = "prices", request_body = crate::model::PriceSpec,
    params(("name" = String, Path, description = "`<provider>/<model>`; it contains `/`."), crate::openapi::IfMatch),
    responses(
        (status = 200, description = "Replaced; `ETag` is the new version.", body = crate::openapi::Price, headers(("ETag" = String, description = "The object's version, quoted."))),
        (status = 404, description = "No price has this name.", body = crate::model::ErrorResponse)))]
async fn update_price(
    State(st): State<AppState>,
    ObjectName(name): ObjectName,
    headers: HeaderMap,
    audit: AuditContext,
    RawBody(body): RawBody,
) -> ApiResult {
    let expected = if_match(&headers, Kind::Price, &name)?;
    let mut spec: PriceSpec = parse_json(&body)?;
    path_name(&mut spec.name, &name, "name")?;
    spec.validate("")?;
    let rec = st.store.update(Kind::Price, &name, expected, &to_doc(&spec)?, &audit).await?;
    st.changed.notify_one();
    Ok(object_response(StatusCode::OK, &rec, None))
}

/// Rotate a virtual key's secret; the old one keeps working for `grace_seconds`.
///
/// Issues a new secret for the key; the old one keeps working for `grace_seconds` (ADR 0008 and
/// docs/operations.md, "Rotating a virtual key"). Both secrets are one caller: same limits, same
/// counters, same usage. Conditional on If-Match when given, else on the version just read; a
/// concurrent change is a 412, never a silent second rotation. The body may be empty.
#[utoipa::path(post, path = "/v1/keys/{name}/rotate", tag = "keys", request_body(content = Option<crate::model::RotateRequest>, description = "Optional; empty means the default grace of one hour."),
    params(("name" = String, Path, description = "The key's name."), crate::openapi::IfMatch),
    responses(
        (status = 200, description = "Rotated; `secret` is the new secret, shown this once.", body = crate::openapi::KeyWithSecret, headers(("ETag" = String, description = "The object's version, quoted."), ("Cache-Control" = String, description = "`no-store`."))),
        (status = 404, description = "No key has this name.", body = crate::model::ErrorResponse),
        (status = 409, description = "The key is revoked (`key_revoked`).", body = crate::model::ErrorResponse)))]
async fn rotate_key(
    State(st): State<AppState>,
    ObjectName(name): ObjectName,
    headers: HeaderMap,
    audit: AuditContext,
    RawBody(body): RawBody,
) -> ApiResult {
    let expected = if_match(&headers, Kind::Key, &name)?;
    let request: crate::model::RotateRequest =
        if body.iter().all(u8::is_ascii_whitespace) { Default::default() } else { parse_json(&body)? };
    let grace = request.grace()?;
    let current = st
        .store
        .get(Kind::Key, &name)
        .await?
        .ok_or_else(|| ApiError::new(404, "not_found", format!("key '{name}' not found")))?;
    let mut spec: KeySpec =
        serde_json::from_value(current.doc.clone()).map_err(|e| ApiError::new(500, "internal", e.to_string()))?;
    if spec.status == KeyStatus::Revoked {
        return Err(ApiError::new(409, "key_revoked", format!("key '{name}' is revoked; create a new key")));
    }
    let first_hash = current.key_hash.clone().ok_or_else(|| ApiError::new(500, "internal", "key without a hash"))?;
    let (replaced, released) = match &spec.rotation {
        Some(r) => (r.secret_hash.clone(), Some(r.previous_hash.clone()).filter(|h| !h.is_empty())),
        None => (first_hash, None),
    };
    let secret = generate_secret(KEY_PREFIX)?;
    let new_hash = hash_secret(&secret);
    let now = crate::store::now_unix();
    spec.rotation = Some(crate::model::KeyRotation {
        secret_hash: new_hash.clone(),
        previous_hash: replaced,
        rotated_at: now,
        previous_expires_at: now.saturating_add(grace),
    });
    let rec = st
        .store
        .rotate_key(
            &name,
            Some(expected.unwrap_or(current.version)),
            &to_doc(&spec)?,
            &new_hash,
            released.as_deref(),
            &audit,
        )
        .await?;
    st.changed.notify_one();
    let mut resp = object_response(StatusCode::OK, &rec, Some(("secret", Value::String(secret))));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// Make providers, routes (and prices, when listed) match a declarative document.
///
/// JSON, or YAML with a `Content-Type` containing `yaml`. Objects the document does not list are
/// kept (and named in `kept`) unless `prune` is set. With `dry_run` nothing is written, and a
/// read-only token may call it. Each write is conditional on the version the plan read: a
/// concurrent change is a 412 or 409.
#[utoipa::path(post, path = "/v1/apply", tag = "apply", operation_id = "apply", params(crate::api::ApplyQuery),
    request_body(content((crate::apply::Desired = "application/json"), (crate::apply::Desired = "application/yaml"))),
    responses(
        (status = 200, description = "The plan, and whether it was carried out.", body = ApplyResult),
        (status = 409, description = "An object the plan creates was created meanwhile (`already_exists`).", body = crate::model::ErrorResponse),
        (status = 412, description = "An object the plan changes was changed meanwhile (`version_mismatch`); plan again.", body = crate::model::ErrorResponse)))]
async fn apply_handler(
    State(st): State<AppState>,
    Extension(q): Extension<ApplyQuery>,
    headers: HeaderMap,
    audit: AuditContext,
    RawBody(body): RawBody,
) -> ApiResult {
    let yaml = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|c| c.contains("yaml"));
    let desired: apply::Desired = if yaml { apply::parse_yaml(&body)? } else { parse_json(&body)? };
    for (i, p) in desired.providers.iter().enumerate() {
        st.credentials.check_field(&format!("providers[{i}].credential"), p.credential.as_deref())?;
    }
    let plan = apply::plan(st.store.as_ref(), &desired, q.prune).await?;
    let current = st.snapshots.borrow().as_ref().map_or(0, |b| b.json.len());
    if current.saturating_add(plan.written_bytes()) > MAX_SNAPSHOT_BYTES {
        return Err(ApiError::new(
            400,
            "snapshot_too_large",
            format!("this document would make the snapshot larger than the {MAX_SNAPSHOT_BYTES} byte limit"),
        ));
    }
    if !q.dry_run && !plan.changes.is_empty() {
        apply::execute(st.store.as_ref(), &plan, &audit.with_via(Via::Apply)).await?;
        st.changed.notify_one();
    }
    let diff = plan.render();
    Ok(Json(ApplyResult { dry_run: q.dry_run, prune: q.prune, changes: plan.changes, kept: plan.kept, diff })
        .into_response())
}

/// Usage and cost per caller, provider model and day or month.
///
/// `GET /v1/usage?caller=|key=&period=day|month&from=&to=&model=`: stored aggregates per caller,
/// provider model and period, costs as exact picodollars and decimal USD strings. Without `from`
/// and `to`, the current day or month (UTC).
#[utoipa::path(get, path = "/v1/usage", tag = "usage", operation_id = "get_usage", params(UsageQuery),
    responses(
        (status = 200, description = "The matching aggregates.", body = UsageResponse),
        (status = 404, description = "`key` names no key.", body = crate::model::ErrorResponse)))]
async fn usage_handler(State(st): State<AppState>, Extension(q): Extension<QueryParams>) -> ApiResult {
    use crate::usage::{valid_day, valid_month, PeriodKind};
    let period = match q.get("period").map(String::as_str) {
        None | Some("day") => PeriodKind::Day,
        Some("month") => PeriodKind::Month,
        Some(_) => return Err(ApiError::field("period", "period must be 'day' or 'month'")),
    };
    let bound = |name: &str| -> Result<Option<String>, ApiError> {
        let Some(v) = q.get(name) else { return Ok(None) };
        if !(valid_day(v) || valid_month(v)) {
            return Err(ApiError::field(name, format!("{name} must be YYYY-MM or YYYY-MM-DD")));
        }
        // A day bounds a month query by its month.
        Ok(Some(if period == PeriodKind::Month { v.get(..7).unwrap_or(v).to_string() } else { v.clone() }))
    };
    let now = crate::store::now_unix();
    let current = match period {
        PeriodKind::Day => gateway_core::usage::utc_day(now),
        PeriodKind::Month => gateway_core::usage::utc_month(now),
    };
    let (from, to) = match (bound("from")?, bound("to")?) {
        (None, None) => (current.clone(), current),
        (Some(f), None) => (f, current),
        (None, Some(t)) => (t.clone(), t),
        (Some(f), Some(t)) => (f, t),
    };
    if from > to && !from.starts_with(to.as_str()) {
        return Err(ApiError::field("to", format!("to ({to}) is before from ({from})")));
    }
    let callers: Option<Vec<String>> = match (q.get("caller"), q.get("key")) {
        (Some(_), Some(_)) => return Err(ApiError::field("caller", "give caller or key, not both")),
        (Some(c), None) if c.is_empty() || c.len() > 512 || c.chars().any(char::is_control) => {
            return Err(ApiError::field("caller", "caller must be 1 to 512 bytes without control characters"))
        }
        (Some(c), None) => Some(vec![c.clone()]),
        (None, Some(k)) => {
            let rec = st.store.get(Kind::Key, k).await?.ok_or_else(|| {
                let mut e = ApiError::new(404, "not_found", format!("key '{k}' not found"));
                e.param = Some("key".into());
                e
            })?;
            Some(rec.key_hash.iter().map(|h| format!("key:{h}")).collect())
        }
        (None, None) => None,
    };
    let mut rows = Vec::new();
    match &callers {
        Some(cs) => {
            for c in cs {
                rows.extend(st.store.usage(Some(c), period, &from, &to).await?);
            }
        }
        None => rows = st.store.usage(None, period, &from, &to).await?,
    }
    if let Some(m) = q.get("model") {
        rows.retain(|r| &r.model == m);
    }
    // Key names for `key:<hash>` callers, looked up once per caller.
    let mut names: HashMap<String, Option<String>> = HashMap::new();
    let mut data = Vec::with_capacity(rows.len());
    for r in rows {
        let key = match r.caller.strip_prefix("key:") {
            Some(hash) => match names.get(&r.caller) {
                Some(n) => n.clone(),
                None => {
                    let n = st.store.find_key_by_hash(hash).await?.map(|rec| rec.name);
                    names.insert(r.caller.clone(), n.clone());
                    n
                }
            },
            None => None,
        };
        let c = r.counters;
        data.push(UsageRow {
            caller: r.caller,
            key,
            provider: r.provider,
            model: r.model,
            period: r.period,
            requests: c.requests,
            input_tokens: c.input,
            output_tokens: c.output,
            cache_read_tokens: c.cache_read,
            cache_creation_tokens: c.cache_creation,
            reasoning_tokens: c.reasoning,
            cost_pusd: c.cost_pusd,
            cost_usd: gateway_core::pricing::pusd_to_usd_string(c.cost_pusd),
        });
    }
    Ok(Json(UsageResponse { data }).into_response())
}

/// The audit trail of configuration changes, newest first.
///
/// `GET /v1/audit?kind=&name=&actor=&since=&until=&limit=&cursor=`: the audit trail, newest
/// first (ADR 0021; the contract is in docs/control-plane.md).
#[utoipa::path(get, path = "/v1/audit", tag = "audit", operation_id = "list_audit", params(crate::openapi::AuditParams),
    responses((status = 200, description = "One page of audit records, newest first.", body = crate::openapi::AuditList)))]
async fn audit_handler(State(st): State<AppState>, Extension(q): Extension<QueryParams>) -> ApiResult {
    let query = audit::query_from_params(&q)?;
    let page = st.store.list_audit(&query).await?;
    let next = page.next.as_deref().map(audit::cursor);
    Ok(Json(json!({"items": page.items, "next_cursor": next})).into_response())
}

/// Status of the configuration snapshot pushed to the filters (no secrets).
#[utoipa::path(get, path = "/v1/snapshot", tag = "snapshot", operation_id = "get_snapshot",
    responses(
        (status = 200, description = "The last built snapshot and what each Envoy reported.", body = SnapshotStatus),
        (status = 503, description = "No snapshot built yet (`not_ready`).", body = crate::model::ErrorResponse)))]
async fn snapshot_status(State(st): State<AppState>) -> ApiResult {
    let snap = st.snapshots.borrow().clone();
    match snap {
        None => Err(ApiError::new(503, "not_ready", "no snapshot built yet")),
        Some(b) => Ok(Json(SnapshotStatus {
            version: b.snapshot.version,
            providers: b.snapshot.config.providers.len(),
            routes: b.snapshot.config.routes.len(),
            keys: b.snapshot.keys.len(),
            prices: b.snapshot.config.prices.len(),
            credentials_resolved: b.snapshot.credentials.iter().map(|c| c.provider.clone()).collect(),
            bytes: b.json.len(),
            build_ms: b.build_time.as_secs_f64() * 1000.0,
            build: match b.source {
                crate::snapshot::BuildSource::Incremental(_) => BuildKind::Incremental,
                crate::snapshot::BuildSource::Reload => BuildKind::Reload,
            },
            warnings: b.warnings.clone(),
            invalid: b.invalid.clone(),
            nodes: st.nodes.list(),
        })
        .into_response()),
    }
}

/// `GET /v1/whoami`: what the presented token may do (`admin` or `read_only`), so a client such
/// as the console can disable what the API would refuse. The API still checks every call.
#[utoipa::path(get, path = "/v1/whoami", tag = "meta", operation_id = "whoami",
    responses((status = 200, description = "What the presented token may do.", body = Whoami)))]
async fn whoami(Extension(access): Extension<Access>) -> ApiResult {
    Ok(Json(Whoami { access: access.as_str() }).into_response())
}

/// Answer of `GET /v1/whoami`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Whoami {
    /// `admin` (may change configuration) or `read_only` (may only read and dry-run).
    #[schema(value_type = String, example = "admin")]
    access: &'static str,
}
