//! The downstream HTTP filter (root_id `ai_gateway`), once per client request: validates the
//! request and picks the route; on a direct route (one target, no policy) it also runs the
//! request's only attempt, otherwise it leaves the attempts to Envoy's router and the upstream
//! filter (ADR 0027).

use std::rc::Rc;

use gateway_core::accounting;
use gateway_core::error::{ErrorKind, ErrorShape, GatewayError};
use gateway_core::ratelimit::Limits;
use gateway_core::snapshot::KeyDenied;
use gateway_core::translate::models::{self, ModelsRequest};
use gateway_core::translate::{self, count_tokens, ClientApi};

/// The error for a WebSocket upgrade (Codex tries one on `/v1/responses` first): a quick 426
/// lets the client fall back to HTTP at once.
fn upgrade_refused() -> GatewayError {
    GatewayError::new(
        ErrorKind::UpgradeRequired,
        "WebSocket connections are not supported by this gateway; use HTTP (POST /v1/responses).",
    )
    .with_code("websocket_not_supported")
}
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};

use crate::auth;
use crate::host;
use crate::jwt;
use crate::knobs::{self, Piece};
use crate::metrics::{local_reply_code, LOCAL_REPLIES, REJECTED};
use crate::state::{api_name, RequestInfo, Shared, REQUEST_INFO_KEY};
use crate::upstream::Attempt;
use crate::{CLUSTER_HEADER, LOCAL_REPLY_MARKER};

/// Envoy's own header: route matching fails without it (the HCM adds it to every request).
const FORWARDED_PROTO: &str = "x-forwarded-proto";

/// Per-request state of the downstream filter.
pub struct Downstream {
    shared: Rc<Shared>,
    random: u64,
    api: Option<ClientApi>,
    /// The error shape the client reads, from the path (known even when no API serves it).
    error_shape: ErrorShape,
    /// Status of an Envoy local reply (OpenAI-shaped by `local_reply_config`) that must be
    /// reshaped for an Anthropic client.
    reshape_status: Option<u16>,
    /// SHA-256 of the presented virtual key, once it passed the header-time check.
    key_hash: Option<String>,
    /// [`translate::FORWARDABLE_CLIENT_HEADERS`] the client sent, captured with the other headers.
    client_headers: Vec<(String, String)>,
    /// `Retry-After` and `x-ratelimit-*` for a rate-limit refusal (ADR 0008).
    rl_headers: Vec<(&'static str, String)>,
    /// Who called, as recorded in filter state (`jwt:<client_id>` or `key:<hash>`).
    caller: Option<String>,
    /// The verified JWT client, so its limits are found without reading the claims again.
    jwt_client: Option<String>,
    /// The caller's limits as counted at admission, sent as `x-ratelimit-*` on the response.
    rl_status: Option<gateway_core::ratelimit::LimitStatus>,
    /// The budget reservation this request holds; released once in `on_done`.
    reservation: Option<crate::budget::Reservation>,
    /// The request headers as read once (minus the gateway's own), kept until routing: a direct
    /// route's attempt edits them without reading the map again.
    request_headers: Vec<(String, Vec<u8>)>,
    /// A direct route's only attempt, run here instead of in an upstream filter (ADR 0027).
    attempt: Option<Attempt>,
    /// The response comes from the attempt's provider (not an Envoy local reply): the attempt
    /// translates its body.
    provider_answered: bool,
    phase: Phase,
}

/// Where the request is in its life; callbacks after a decision must not decide again.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Waiting,
    Routed,
    /// Rejected, or answered by the filter itself: nothing goes upstream.
    Rejected,
}

/// What [`Downstream::route`] did with a valid request.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// Handed to Envoy's router for a provider.
    Upstream,
    /// Answered locally (a token count estimate).
    Answered,
}

impl Downstream {
    pub fn new(shared: Rc<Shared>, random: u64) -> Self {
        Downstream {
            shared,
            random,
            api: None,
            error_shape: ErrorShape::OpenAi,
            reshape_status: None,
            key_hash: None,
            client_headers: Vec::new(),
            rl_headers: Vec::new(),
            jwt_client: None,
            caller: None,
            rl_status: None,
            reservation: None,
            request_headers: Vec::new(),
            attempt: None,
            provider_answered: false,
            phase: Phase::Waiting,
        }
    }

    /// With a pushed snapshot every request needs a virtual key. Refuses missing, unknown,
    /// revoked and expired keys before the body is buffered; the model is checked in `route`.
    fn authenticate(&mut self, headers: &[(String, Vec<u8>)]) -> Result<(), GatewayError> {
        // A token jwt_authn verified (ADR 0004); virtual keys skip jwt_authn and are checked below.
        if let Some(policy) = jwt::policy() {
            if let Some(caller) = jwt::verified_caller() {
                policy.authenticate(&caller)?;
                let name = format!("jwt:{}", caller.client_id);
                jwt::record_caller(&name);
                self.caller = Some(name);
                self.jwt_client = Some(caller.client_id);
                return Ok(());
            }
            if self.shared.keys.is_none() {
                return Err(GatewayError::new(
                    ErrorKind::Authentication,
                    "You didn't provide an access token. Send `Authorization: Bearer <token>`.",
                )
                .with_code("missing_api_key"));
            }
        }
        let Some(keys) = self.shared.keys.as_ref() else {
            return Ok(());
        };
        let authorization = host::find_string(headers, "authorization");
        let x_api_key = host::find_string(headers, "x-api-key");
        let Some(key) = auth::presented_key(authorization.as_deref(), x_api_key.as_deref()) else {
            return Err(GatewayError::new(
                ErrorKind::Authentication,
                "You didn't provide an API key. Send your virtual key as `Authorization: Bearer <key>` (or `x-api-key`).",
            )
            .with_code("missing_api_key"));
        };
        let hash = auth::key_hash(key);
        // The empty model is never allowed by name, so ModelNotAllowed here only means "the key
        // is valid"; the real model is checked once the body is read.
        match keys.authorize(&hash, "", host::now().0) {
            Ok(_) | Err(KeyDenied::ModelNotAllowed) => {
                // Every secret of a rotated key is one caller (ADR 0008): shared counters.
                if let Some(key) = keys.get(&hash) {
                    let name = key.caller();
                    jwt::record_caller(&name);
                    self.caller = Some(name);
                }
                self.key_hash = Some(hash);
                Ok(())
            }
            Err(denied) => Err(denied.to_gateway_error()),
        }
    }

    /// The key may call `model` (snapshot mode only).
    fn authorize_model(&self, model: &str) -> Result<(), GatewayError> {
        if self.key_hash.is_none() {
            if let (Some(policy), Some(caller)) = (jwt::policy(), jwt::verified_caller()) {
                return policy.authorize(&caller, model);
            }
        }
        let Some(keys) = self.shared.keys.as_ref() else {
            return Ok(());
        };
        let hash = self.key_hash.as_deref().unwrap_or("");
        match keys.authorize(hash, model, host::now().0) {
            Ok(key) => {
                log::debug!("virtual key {} may call {model}", key.name);
                Ok(())
            }
            Err(denied) => Err(denied.to_gateway_error()),
        }
    }

    fn max_bytes(&self) -> usize {
        self.shared.table.config().limits.max_request_bytes
    }

    /// Ends the request with `err` and counts the rejection.
    fn reject(&mut self, err: &GatewayError) {
        self.phase = Phase::Rejected;
        let status = err.status().to_string();
        let code = err.code.as_deref().unwrap_or(err.kind.openai_type());
        self.shared.metrics.add(REJECTED, &[("status", &status), ("code", code)], 1);
        log::debug!("rejected request: {} {}", err.status(), err.message);
        let body = match self.error_shape {
            ErrorShape::OpenAi => err.to_openai_body(),
            ErrorShape::Anthropic => err.to_anthropic_body(),
        };
        if self.rl_headers.is_empty() {
            host::send_json_error(err.status(), &body);
        } else {
            crate::ratelimit::send_json_error_with_headers(err.status(), &body, &self.rl_headers);
        }
    }

    /// The rate-limited caller and its limits: a virtual key's own, or a JWT client's from
    /// `auth.jwt.limits` (its entry, else `"*"`). `None` for unlimited callers, which never
    /// touch shared data.
    fn limited_caller(&self) -> Option<(String, Limits)> {
        let (caller, limits) = if let Some(hash) = self.key_hash.as_deref() {
            let key = self.shared.keys.as_ref()?.get(hash)?;
            (key.caller(), key.limits())
        } else {
            let client = self.jwt_client.as_deref()?;
            let policy = jwt::policy()?;
            let l = policy.limits_for(client)?;
            (format!("jwt:{client}"), Limits { rpm: l.rpm, tpm: l.tpm })
        };
        if limits.is_unlimited() {
            return None;
        }
        // Each of N Envoys enforces its share, so the caller's total stays near the limit (ADR 0008).
        Some((caller, limits.share(crate::ratelimit::replicas())))
    }

    /// Counts the request against the caller's rpm/tpm (ADR 0008), exactly the same way for
    /// virtual keys and JWT clients.
    fn enforce_rate_limit(&mut self) -> Result<(), GatewayError> {
        let Some((caller, limits)) = self.limited_caller() else {
            return Ok(());
        };
        match crate::ratelimit::admit(&caller, limits, host::now().0) {
            Ok(status) => {
                self.rl_status = Some(status);
                Ok(())
            }
            Err((err, headers)) => {
                self.rl_headers = headers;
                Err(err)
            }
        }
    }

    /// Reserves the request's estimated cost against the caller's budget (ADR 0008); callers
    /// without a budget never touch shared data.
    fn reserve_budget(&mut self, api: ClientApi, body: &[u8], model: &str) -> Result<(), GatewayError> {
        let (caller, limit) = if let Some(hash) = self.key_hash.as_deref() {
            // Every secret of a rotated key is one caller: one budget.
            let Some(key) = self.shared.keys.as_ref().and_then(|k| k.get(hash)) else {
                return Ok(());
            };
            let Some(limit) = key.budget else {
                return Ok(());
            };
            (key.caller(), limit)
        } else if let Some(client) = self.jwt_client.as_deref() {
            let Some(budget) = jwt::policy().and_then(|p| p.limits_for(client).and_then(|l| l.budget)) else {
                return Ok(());
            };
            // Fail closed: a cap that cannot be read must not mean "unlimited".
            let limit = budget
                .compile()
                .map_err(|e| GatewayError::new(ErrorKind::Internal, format!("invalid budget configured: {e}")))?;
            (format!("jwt:{client}"), limit)
        } else {
            return Ok(());
        };
        let table = &self.shared.table;
        let max_output = match api {
            ClientApi::OpenAiEmbeddings => 0,
            _ => accounting::requested_output(body).tokens(u64::from(table.config().defaults.max_tokens)),
        };
        let targets = table.route(model).map(|r| r.targets.as_slice()).unwrap_or(&[]);
        let estimate = accounting::estimate_pusd(
            table.prices(),
            targets.iter().map(|t| (t.provider.as_str(), t.model.as_str())),
            body.len(),
            max_output,
        );
        self.reservation = Some(crate::budget::reserve(&caller, limit, host::now().0, estimate)?);
        Ok(())
    }

    /// [`Self::route`] and what the filter callback returns for its outcome.
    fn route_and_act(&mut self, api: ClientApi, body: &[u8]) -> Action {
        match self.route(api, body) {
            Ok(Decision::Upstream) => {
                self.phase = Phase::Routed;
                Action::Continue
            }
            Ok(Decision::Answered) => Action::Pause,
            Err(err) => {
                self.reject(&err);
                Action::Pause
            }
        }
    }

    fn too_large(&self) -> GatewayError {
        GatewayError::new(
            ErrorKind::PayloadTooLarge,
            format!("The request body exceeds the gateway's limit of {} bytes.", self.max_bytes()),
        )
        .with_code("request_too_large")
    }

    /// Validates the complete body, selects the target and hands the decision to the router, or
    /// answers a token count itself when the target's provider cannot count.
    fn route(&mut self, api: ClientApi, body: &[u8]) -> Result<Decision, GatewayError> {
        // What inspecting decoded is reused by a direct route's attempt (same body, same context).
        let (facts, parsed) = translate::inspect_keeping(api, body)?;
        // Before route selection, so a key cannot probe which models exist.
        self.authorize_model(&facts.model)?;
        self.enforce_rate_limit()?;
        let counting = api.counts_tokens();
        // Before selection borrows the table; a failure after it is released in `on_done`.
        // Counting tokens is never billed, so it reserves nothing.
        if !counting {
            self.reserve_budget(api, body, &facts.model)?;
        }
        let selection = self.shared.table.select(&facts.model, self.random)?;
        if counting && !api.provider_counts(selection.provider, &selection.target.model) {
            let answer = api.estimate_count(body)?;
            log::debug!("count_tokens for {} answered with the gateway's estimate", facts.model);
            self.answer(
                200,
                Some(&answer),
                vec![(count_tokens::TOKEN_COUNT_HEADER, count_tokens::ESTIMATE.to_owned())],
            );
            return Ok(Decision::Answered);
        }
        // A route with a policy goes to its own cluster: Envoy's router then retries and falls
        // back across the targets, and the upstream filter translates each attempt (ADR 0003).
        let policy_cluster = selection.route.envoy_cluster();
        // One clock read for the request's creation time and the attempt's start.
        let (now_s, now_ns) = host::now();
        let direct = policy_cluster.is_none();
        let info = RequestInfo {
            model: facts.model.clone(),
            provider: selection.provider.name.clone(),
            target_model: selection.target.model.clone(),
            api: api_name(api).to_owned(),
            created: now_s,
            stream: facts.stream,
            direct,
            caller: self.caller.clone(),
            client_headers: std::mem::take(&mut self.client_headers),
        };
        // Read only by the upstream filter. A direct route's provider cluster has none (render.py),
        // and one a hand-written bootstrap leaves there recognises the provider's own cluster
        // without it (ADR 0027): the write would cost ~13k instructions per request (callgrind).
        if !direct && !host::set_property(&[REQUEST_INFO_KEY], &info.encode()) {
            return Err(GatewayError::new(ErrorKind::Internal, "could not store request state"));
        }
        let cluster = policy_cluster.unwrap_or_else(|| selection.provider.cluster.clone());
        log::debug!("model {} -> provider {} ({})", facts.model, selection.provider.name, selection.target.model);
        if !direct || knobs::skip(Piece::Attempt) {
            // On Envoy 1.40 setting a request header already clears the route cache, which
            // re-routes through `cluster_header`; the e2e routing tests check that it does.
            host::set_header(MapType::HttpRequestHeaders, CLUSTER_HEADER, &cluster);
            return Ok(Decision::Upstream);
        }
        // A direct route has one attempt, to the provider's own cluster, which render.py gives no
        // upstream Wasm filter: translate it here, with the body already in the VM and the header
        // map already read (ADR 0027).
        let headers = std::mem::take(&mut self.request_headers);
        let mut attempt = Attempt::new(Rc::clone(&self.shared));
        // Envoy routes no request without `x-forwarded-proto`: it stays until the route removes it.
        attempt.prepare(info, body, body.len(), &headers, &[FORWARDED_PROTO], parsed)?;
        // Last: the set clears the route cache, so the router routes again through `cluster_header`.
        host::set_header(MapType::HttpRequestHeaders, CLUSTER_HEADER, &cluster);
        attempt.sent_at_time(now_ns);
        self.attempt = Some(attempt);
        Ok(Decision::Upstream)
    }

    /// Envoy's own reply to a request the filter did not answer (missing cluster, timeouts,
    /// limits, an unreachable provider): counted, then reshaped for the client.
    fn envoy_reply(&mut self, status: u16, details: String, end_of_stream: bool) -> Action {
        let status_label = status.to_string();
        let labels = [("status", status_label.as_str()), ("code", local_reply_code(&details))];
        self.shared.metrics.add(LOCAL_REPLIES, &labels, 1);
        self.reshape_for_client(status, end_of_stream)
    }

    /// `local_reply_config` writes OpenAI's error shape; an Anthropic client gets its own.
    fn reshape_for_client(&mut self, status: u16, end_of_stream: bool) -> Action {
        if self.error_shape != ErrorShape::Anthropic || end_of_stream {
            return Action::Continue;
        }
        self.reshape_status = Some(status);
        host::remove_header(MapType::HttpResponseHeaders, "content-length");
        Action::Continue
    }

    /// Ends the request with the filter's own successful answer (with the caller's rate-limit
    /// headers, as a provider answer would carry).
    fn answer(&mut self, status: u16, body: Option<&[u8]>, mut extra: Vec<(&str, String)>) {
        self.phase = Phase::Rejected;
        if let Some(limits) = self.rl_status.take() {
            extra.extend(limits.headers());
        }
        host::send_json(status, body, &extra);
    }

    /// `GET /v1/models[/{id}]`: the route names this caller may use, from the routing table
    /// (no provider is asked). Anthropic's shape when the client sent `anthropic-version`.
    fn answer_models(&mut self, request: ModelsRequest, method: &str, headers: &[(String, Vec<u8>)]) {
        let shape = models::shape_for(host::find_string(headers, "anthropic-version").as_deref());
        self.error_shape = shape;
        if method != "GET" && method != "HEAD" {
            self.reject(
                &GatewayError::new(
                    ErrorKind::MethodNotAllowed,
                    format!("Method {} is not allowed here; use GET.", method.chars().take(16).collect::<String>()),
                )
                .with_code("method_not_allowed"),
            );
            return;
        }
        if let Err(err) = self.authenticate(headers) {
            self.reject(&err);
            return;
        }
        let shared = Rc::clone(&self.shared);
        let body = match request {
            ModelsRequest::List => {
                let names: Vec<&str> = shared
                    .table
                    .config()
                    .routes
                    .iter()
                    .map(|r| r.model.as_str())
                    .filter(|name| self.authorize_model(name).is_ok())
                    .collect();
                models::list_body(shape, &names)
            }
            ModelsRequest::One(name) => {
                if shared.table.route(&name).is_none() || self.authorize_model(&name).is_err() {
                    self.reject(&models::not_found(&name));
                    return;
                }
                models::model_body(shape, &name)
            }
        };
        let body = (method == "GET").then_some(body.as_slice());
        self.answer(200, body, Vec::new());
    }
}

impl Context for Downstream {
    fn on_done(&mut self) -> bool {
        // Runs once per stream whatever ended it: response, local reply, reset, disconnect.
        // The attempt commits its cost before the reservation goes, as an upstream filter's
        // attempt ends before the downstream stream.
        if let Some(attempt) = self.attempt.as_mut() {
            attempt.finish();
        }
        if let Some(reservation) = self.reservation.take() {
            crate::budget::release(&reservation, host::now().0);
        }
        true
    }
}

impl HttpContext for Downstream {
    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if let Some(status) = &self.rl_status {
            crate::ratelimit::set_response_headers(status);
        }
        if self.phase == Phase::Rejected {
            return Action::Continue;
        }
        if let Some(attempt) = self.attempt.as_mut() {
            // One host call for the whole map; the attempt reads the rest of it.
            let headers = host::headers(MapType::HttpResponseHeaders);
            let status = host::find_string(&headers, ":status").and_then(|s| s.parse::<u16>().ok()).unwrap_or(0);
            // Errors may be Envoy's own replies (no healthy upstream, timeouts, resets), which
            // have no provider behind them; only then is the detail anything but `via_upstream`.
            let details = if status < 400 { None } else { host::property_string(&["response", "code_details"]) };
            if details.as_deref().is_none_or(|d| d == "via_upstream") {
                self.provider_answered = true;
                return attempt.response_headers(&headers, end_of_stream);
            }
            return self.envoy_reply(status, details.unwrap_or_default(), end_of_stream);
        }
        let status =
            host::header(MapType::HttpResponseHeaders, ":status").and_then(|s| s.parse::<u16>().ok()).unwrap_or(0);
        // Provider answers carry the provider header and were translated upstream; only Envoy's
        // own replies (no upstream, timeouts, limits) still have the OpenAI shape.
        if status < 400 || host::header(MapType::HttpResponseHeaders, crate::PROVIDER_RESPONSE_HEADER).is_some() {
            return Action::Continue;
        }
        // Envoy's own reply to a request the filter did not answer (missing cluster, timeouts,
        // limits); an upstream attempt's own rejection carries the marker and counted itself.
        if host::header(MapType::HttpRequestHeaders, LOCAL_REPLY_MARKER).is_some() {
            return self.reshape_for_client(status, end_of_stream);
        }
        let details = host::property_string(&["response", "code_details"]).unwrap_or_default();
        self.envoy_reply(status, details, end_of_stream)
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.provider_answered {
            if let Some(attempt) = self.attempt.as_mut() {
                return attempt.response_body(body_size, end_of_stream);
            }
        }
        let Some(status) = self.reshape_status else {
            return Action::Continue;
        };
        if !end_of_stream {
            return Action::Pause;
        }
        let body = host::body(BufferType::HttpResponseBody, body_size);
        if let Some(reshaped) = gateway_core::error::openai_error_to_anthropic(status, &body) {
            if !host::set_body(BufferType::HttpResponseBody, body_size, &reshaped) {
                log::warn!("could not reshape a local reply for an Anthropic client");
            }
        }
        Action::Continue
    }

    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        // Only the filter decides the cluster; a client-sent header must not pick one, and a
        // client-sent marker must not bypass the OpenAI-shaped local replies.
        // One host call for every header instead of one per lookup; removals only when present.
        let headers = host::headers(MapType::HttpRequestHeaders);
        for name in [CLUSTER_HEADER, LOCAL_REPLY_MARKER] {
            if host::find(&headers, name).is_some() {
                host::remove_header(MapType::HttpRequestHeaders, name);
            }
        }

        let path = host::find_string(&headers, ":path").unwrap_or_default();
        let method = host::find_string(&headers, ":method").unwrap_or_default();
        self.error_shape = ClientApi::error_shape_for_path(&path);
        // Envoy lets WebSocket upgrades in (render.py) only so that this answer is the gateway's:
        // no request is ever proxied as a WebSocket.
        if host::find_string(&headers, "upgrade").is_some_and(|u| u.to_ascii_lowercase().contains("websocket")) {
            self.reject(&upgrade_refused());
            return Action::Pause;
        }
        let bare_path = path.split('?').next().unwrap_or("");
        // Claude Code sends `HEAD /` at start-up to check the base URL: a quick 200, no auth
        // (it tells nothing but that the gateway is up, which the listener already does).
        if bare_path == "/" && (method == "HEAD" || method == "GET") {
            let body = (method == "GET").then_some(&br#"{"status":"ok"}"#[..]);
            self.answer(200, body, Vec::new());
            return Action::Pause;
        }
        if let Some(request) = ModelsRequest::from_path(&path) {
            self.answer_models(request, &method, &headers);
            return Action::Pause;
        }
        let Some(api) = ClientApi::from_path(&path) else {
            // OpenAI's own wording, so clients and people recognise it.
            let shown: String = path.split('?').next().unwrap_or("").chars().take(200).collect();
            let shown_method: String = method.chars().take(16).collect();
            self.reject(
                &GatewayError::new(ErrorKind::NotFound, format!("Invalid URL ({shown_method} {shown})"))
                    .with_code("unknown_url"),
            );
            return Action::Pause;
        };
        if method != "POST" {
            self.reject(
                &GatewayError::new(
                    ErrorKind::MethodNotAllowed,
                    format!("Method {method} is not allowed here; use POST."),
                )
                .with_code("method_not_allowed"),
            );
            return Action::Pause;
        }
        if let Err(err) = self.authenticate(&headers) {
            self.reject(&err);
            return Action::Pause;
        }
        let declared = host::find_string(&headers, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.max_bytes() as u64) {
            let err = self.too_large();
            self.reject(&err);
            return Action::Pause;
        }
        self.api = Some(api);
        self.client_headers = translate::FORWARDABLE_CLIENT_HEADERS
            .iter()
            .filter_map(|name| host::find_string(&headers, name).map(|v| ((*name).to_owned(), v)))
            .collect();
        // As the map now stands: the gateway's own headers were removed above.
        self.request_headers = headers;
        self.request_headers.retain(|(name, _)| name != CLUSTER_HEADER && name != LOCAL_REPLY_MARKER);
        if end_of_stream {
            return self.route_and_act(api, b"");
        }
        Action::Pause
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        match self.phase {
            Phase::Waiting => {}
            Phase::Routed => return Action::Continue,
            Phase::Rejected => return Action::Pause,
        }
        let Some(api) = self.api else {
            return Action::Continue;
        };
        if body_size > self.max_bytes() {
            let err = self.too_large();
            self.reject(&err);
            return Action::Pause;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let body = host::body(BufferType::HttpRequestBody, body_size);
        self.route_and_act(api, &body)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        // Trailers end the body without an end_of_stream body callback.
        match self.phase {
            Phase::Waiting => {}
            Phase::Routed => return Action::Continue,
            Phase::Rejected => return Action::Pause,
        }
        let Some(api) = self.api else {
            return Action::Continue;
        };
        // Bounded read: one byte over the limit is enough to reject.
        let body = host::body(BufferType::HttpRequestBody, self.max_bytes().saturating_add(1));
        if body.len() > self.max_bytes() {
            let err = self.too_large();
            self.reject(&err);
            return Action::Pause;
        }
        self.route_and_act(api, &body)
    }
}
