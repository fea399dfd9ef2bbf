//! The upstream HTTP filter (root_id `ai_gateway_upstream`), once per attempt: translates the
//! request for the provider this attempt actually reaches, and the response back.
//!
//! Envoy keeps one request header map across attempts, so every attempt removes whatever an
//! earlier attempt (or the client) may have set before adding its own provider's headers.

use std::rc::Rc;

use gateway_core::accounting::{QueueMessage, UsageRecord};
use gateway_core::config::ProviderKind;
use gateway_core::error::{ErrorKind, GatewayError};
use gateway_core::pricing::pusd_to_usd_string;
use gateway_core::translate::{self, count_tokens, openai_to_bedrock, BodyMode, ClientApi, ResponseTranslator, Target};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};

use crate::host;
use crate::knobs::{self, Piece};
use crate::metrics::{TargetMetrics, REJECTED};
use crate::state::{api_from_name, RequestInfo, Shared, REQUEST_INFO_KEY};
use crate::{
    ATTEMPTS_RESPONSE_HEADER, DROPPED_RESPONSE_HEADER, METADATA_NAMESPACE, MODEL_RESPONSE_HEADER,
    PROVIDER_RESPONSE_HEADER,
};

/// Environment variable (set by render.py in `vm_config.environment_variables.key_values`) with
/// the extra client headers an operator lets through to providers, e.g. a test harness's
/// `x-test-id,x-replay-*` ([`translate::parse_forward_list`]).
pub const FORWARD_HEADERS_ENV: &str = "AI_GATEWAY_FORWARD_CLIENT_HEADERS";

thread_local! {
    /// [`FORWARD_HEADERS_ENV`], read once per VM.
    static FORWARD_EXTRA: Vec<String> =
        std::env::var(FORWARD_HEADERS_ENV).map(|v| translate::parse_forward_list(&v)).unwrap_or_default();
}

/// Above this many single header edits, one call replacing the whole map is cheaper.
const MAX_SINGLE_EDITS: usize = 2;

/// Envoy hands integer properties over as 8 little-endian bytes; a decimal string is accepted too.
fn attempt_number(bytes: &[u8]) -> Option<u64> {
    let number = match <[u8; 8]>::try_from(bytes) {
        Ok(array) => u64::from_le_bytes(array),
        Err(_) => std::str::from_utf8(bytes).ok()?.trim().parse().ok()?,
    };
    Some(number).filter(|n| *n > 0)
}

/// One provider attempt: the request translated for the provider it reaches, the response
/// translated back, and what the attempt records when it ends. The upstream filter runs one per
/// attempt; on a direct route (one target, no policy) the downstream filter runs the only one
/// itself and the provider's cluster has no upstream Wasm filter (ADR 0027).
pub struct Attempt {
    shared: Rc<Shared>,
    info: Option<RequestInfo>,
    /// The client's API, once known: errors must come out in its shape.
    api: Option<ClientApi>,
    provider: Option<String>,
    target_model: Option<String>,
    /// Request fields this attempt's translation left out, comma-separated (empty: none).
    dropped: String,
    translator: Option<Box<dyn ResponseTranslator>>,
    mode: BodyMode,
    status: Option<u16>,
    /// The provider's `content-encoding` when it is one the translators cannot read.
    undecodable: Option<String>,
    /// The provider's `content-length` while it is still in the response headers.
    content_length: Option<String>,
    prepared: bool,
    finished: bool,
    /// When this attempt was sent upstream (host clock, ns); `None` once the first bytes for the
    /// client were timed.
    sent_at: Option<u128>,
    /// When this attempt was sent upstream (host clock, ns), kept for the total duration.
    started_at: Option<u128>,
    /// Time to first token of this attempt, once measured.
    ttft_ms: Option<u64>,
    /// The metric ids of this attempt's provider and model, once looked up.
    metrics: Option<Rc<TargetMetrics>>,
}

impl Attempt {
    pub fn new(shared: Rc<Shared>) -> Self {
        Attempt {
            shared,
            info: None,
            api: None,
            provider: None,
            target_model: None,
            dropped: String::new(),
            translator: None,
            mode: BodyMode::Buffered,
            status: None,
            undecodable: None,
            content_length: None,
            metrics: None,
            prepared: false,
            finished: false,
            sent_at: None,
            started_at: None,
            ttft_ms: None,
        }
    }

    fn fail(&mut self, err: &GatewayError) {
        self.prepared = true;
        self.finished = true;
        let status = err.status().to_string();
        let code = err.code.as_deref().unwrap_or(err.kind.openai_type());
        self.shared.metrics.add(REJECTED, &[("status", &status), ("code", code)], 1);
        log::warn!("upstream attempt rejected: {} {}", err.status(), err.message);
        host::send_json_error(err.status(), &self.error_body(err));
    }

    /// `err` in the shape of the client's API (OpenAI's until the API is known).
    fn error_body(&self, err: &GatewayError) -> Vec<u8> {
        match self.api {
            Some(api) => err.to_body(api),
            None => err.to_openai_body(),
        }
    }

    /// The provider this attempt reaches: endpoint metadata (aggregate clusters and priorities),
    /// else the cluster (the downstream choice when it is behind it: providers may share a
    /// cluster), else the downstream choice.
    fn attempt_provider(&self, info: &RequestInfo) -> String {
        // A direct route reaches the selected provider's own cluster: nothing to ask the host.
        if info.direct || knobs::skip(Piece::Properties) {
            return info.provider.clone();
        }
        if let Some(p) =
            host::property_string(&["xds", "upstream_host_metadata", "filter_metadata", METADATA_NAMESPACE, "provider"])
        {
            if self.shared.table.provider(&p).is_some() {
                log::debug!("attempt provider {p} from endpoint metadata");
                return p;
            }
            log::warn!("endpoint metadata names unknown provider '{p}'");
        }
        if let Some(cluster) = host::property_string(&["xds", "cluster_name"]) {
            if let Some(p) = self.shared.table.provider_by_cluster(&cluster, &info.provider) {
                log::debug!("attempt provider {} from cluster {cluster}", p.name);
                return p.name.clone();
            }
        }
        log::debug!("attempt provider {} from the downstream selection", info.provider);
        info.provider.clone()
    }

    /// Translates the complete client body for this attempt and rewrites the request: `current`
    /// is the request header map as it stands, `keep` names headers that must stay on it for
    /// now (the route removes them before the provider sees them); `parsed` is what inspecting
    /// the same body already decoded, if anything.
    pub fn prepare(
        &mut self,
        info: RequestInfo,
        body: &[u8],
        body_size: usize,
        current: &[(String, Vec<u8>)],
        keep: &[&str],
        parsed: translate::Parsed<'_>,
    ) -> Result<(), GatewayError> {
        self.prepared = true;
        let internal = |m: &str| GatewayError::new(ErrorKind::Internal, m.to_owned());
        let api: ClientApi = api_from_name(&info.api).ok_or_else(|| internal("unknown client API in request state"))?;
        self.api = Some(api);
        let provider_name = self.attempt_provider(&info);
        let shared = Rc::clone(&self.shared);
        let table = &shared.table;
        let provider = table.provider(&provider_name).ok_or_else(|| internal("attempt reached an unknown provider"))?;
        let target_model = match table.target_for_provider(&info.model, &provider_name) {
            Some(t) => t.model.clone(),
            None if provider_name == info.provider => info.target_model.clone(),
            None => return Err(internal("attempt reached a provider that does not serve this model")),
        };
        if api.counts_tokens() && !api.provider_counts(provider, &target_model) {
            // A fallback reached a provider that cannot count: the gateway's estimate, unbilled
            // (no translator, so `finish` records nothing).
            let answer = api.estimate_count(body)?;
            self.finished = true;
            host::send_json(
                200,
                Some(&answer),
                &[(count_tokens::TOKEN_COUNT_HEADER, count_tokens::ESTIMATE.to_owned())],
            );
            return Ok(());
        }
        let target =
            Target { provider, model: &target_model, defaults: &table.config().defaults, created_unix: info.created };
        let prepared = translate::prepare_parsed(api, &target, body, &info.client_headers, parsed)?;

        // Every header this attempt sets, last value wins as with successive set calls.
        let mut wanted: Vec<(String, String)> = Vec::with_capacity(8);
        let mut want = |name: &str, value: String| match wanted.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => wanted.push((name.to_owned(), value)),
        };
        want(":path", prepared.path.clone());
        if provider.kind == ProviderKind::Bedrock {
            // SigV4 covers the final path and body and the current time: computed per attempt.
            let final_body: &[u8] = prepared.body.as_deref().unwrap_or(body);
            let (now, _) = host::now();
            let signed =
                openai_to_bedrock::sign(provider, shared.credential(&provider_name), &prepared.path, final_body, now)?;
            for (header, value) in signed {
                want(header, value);
            }
        } else if let Some(secret) = shared.credential(&provider_name) {
            let (header, value) = translate::credential_header(provider.kind, secret);
            want(header, value);
        }
        for (header, value) in &prepared.headers {
            want(header, value.clone());
        }
        // The organization and project the platform's OpenAI key bills: configuration only.
        for (header, value) in translate::billing_headers(provider) {
            want(header, value);
        }
        // The client's anthropic-version / anthropic-beta, where this provider takes them.
        for (header, value) in translate::forwarded_headers(api, provider.kind, &info.client_headers) {
            want(header, value);
        }
        let length = match &prepared.body {
            Some(new_body) => {
                if !host::set_body(BufferType::HttpRequestBody, body_size, new_body) {
                    return Err(internal("could not replace the request body"));
                }
                new_body.len()
            }
            None => body.len(),
        };
        want("content-length", length.to_string());

        // Only allowlisted client headers and the ones set here reach the provider
        // (docs/architecture.md, "Headers sent to providers"). Host calls dominate the per-attempt
        // cost: read the map once, then either edit single headers or, when more than a couple
        // must go (SDK telemetry usually brings a dozen), replace the whole map in one call.
        FORWARD_EXTRA.with(|extra| apply_headers(current, &wanted, extra, keep));
        log::debug!("attempt -> provider {provider_name} model {target_model} path {}", prepared.path);

        self.translator = Some(prepared.translator);
        self.provider = Some(provider_name);
        self.target_model = Some(target_model);
        self.dropped = prepared.dropped.join(",");
        self.info = Some(info);
        Ok(())
    }

    /// Marks the attempt sent: its duration and time to first token count from here.
    pub fn sent(&mut self) {
        self.sent_at_time(host::now().1);
    }

    /// [`Attempt::sent`] with a clock reading the caller already has (ns).
    pub fn sent_at_time(&mut self, now_ns: u128) {
        self.sent_at = Some(now_ns);
        self.started_at = self.sent_at;
    }

    /// Whether [`Attempt::prepare`] left a translator, i.e. the request goes to a provider.
    pub fn reaches_provider(&self) -> bool {
        self.translator.is_some()
    }

    fn prepare_or_fail(&mut self, info: RequestInfo, body_size: usize) -> Action {
        let body = host::body(BufferType::HttpRequestBody, body_size);
        let current = host::headers(MapType::HttpRequestHeaders);
        match self.prepare(info, &body, body_size, &current, &[], translate::Parsed::default()) {
            // Answered locally (a token count estimate): nothing goes upstream.
            Ok(()) if self.translator.is_none() => Action::Pause,
            Ok(()) => {
                self.sent();
                Action::Continue
            }
            Err(err) => {
                self.fail(&err);
                Action::Pause
            }
        }
    }

    /// Records time to first token once, when the first bytes for the client are ready.
    fn first_bytes(&mut self) {
        if self.sent_at.is_some() {
            self.first_bytes_at(host::now().1);
        }
    }

    /// [`Attempt::first_bytes`] with a clock reading (ns) the caller already has.
    fn first_bytes_at(&mut self, now_ns: u128) {
        let Some(sent_at) = self.sent_at.take() else { return };
        let (Some(provider), Some(model)) = (self.provider.as_deref(), self.target_model.as_deref()) else {
            return;
        };
        let elapsed_ms = u64::try_from(now_ns.saturating_sub(sent_at) / 1_000_000).unwrap_or(u64::MAX);
        self.ttft_ms = Some(elapsed_ms);
        let metrics = self.metrics.get_or_insert_with(|| self.shared.metrics.target(provider, model));
        metrics.record_time_to_first_token(elapsed_ms);
    }

    /// Emits this attempt's metrics once, when the response ended or the stream went away.
    pub fn finish(&mut self) {
        if !self.finished {
            self.finish_at(host::now());
        }
    }

    /// [`Attempt::finish`] with a clock reading (Unix s, ns) the caller already has.
    fn finish_at(&mut self, (now_s, now_ns): (u64, u128)) {
        if self.finished {
            return;
        }
        self.finished = true;
        let (Some(provider), Some(model)) = (self.provider.as_deref(), self.target_model.as_deref()) else {
            return;
        };
        let metrics = Rc::clone(self.metrics.get_or_insert_with(|| self.shared.metrics.target(provider, model)));
        // Counting tokens is never billed: no usage record, no budget, no TPM (usage is zero anyway).
        let counting = self.api.is_some_and(ClientApi::counts_tokens);
        if let Some(t) = self.translator.as_ref().filter(|_| !counting) {
            let usage = t.usage();
            metrics.add_tokens(usage.input, usage.output);
            // TPM counts what the provider reported (ADR 0008); only limited callers have a counter.
            if let Some(caller) = self.info.as_ref().and_then(|i| i.caller.as_deref()) {
                crate::ratelimit::add_tokens(caller, usage.input.saturating_add(usage.output), now_s);
            }
        }
        let usage = self.translator.as_ref().map(|t| t.usage()).unwrap_or_default();
        let cost = if counting { 0 } else { self.account(provider, model, usage, now_s) };
        let duration_us =
            self.started_at.map(|start| u64::try_from(now_ns.saturating_sub(start) / 1_000).unwrap_or(u64::MAX));
        metrics.attempt_ended(self.status, duration_us.map(|us| us / 1_000));
        if self.status.is_some_and(|s| (200..300).contains(&s)) {
            metrics.record_token_usage(usage.input, usage.output);
            if let (Some(total), Some(ttft_ms), true) = (duration_us, self.ttft_ms, usage.output > 0) {
                let per_token = total.saturating_sub(ttft_ms.saturating_mul(1_000)) / usage.output;
                metrics.record_time_per_output_token(per_token);
            }
        }
        self.publish_access_log(provider, model, usage, cost);
    }

    /// The attempt's cost from the price table; commits it to the caller's budget (if any) and
    /// hands a usage record to the singleton, in that order, so an ack can never subtract a cost
    /// the budget state does not hold yet.
    fn account(&self, provider: &str, model: &str, usage: gateway_core::TokenUsage, now: u64) -> u64 {
        let cost = self.shared.table.prices().cost_pusd(provider, model, usage.into());
        let succeeded = self.status.is_some_and(|s| (200..300).contains(&s));
        if (!succeeded && usage.total() == 0) || knobs::skip(Piece::Usage) {
            return cost;
        }
        let caller = self.info.as_ref().and_then(|i| i.caller.clone());
        // Only named callers (virtual keys, JWT clients) can have a budget entry.
        if let Some(caller) = &caller {
            crate::budget::commit(caller, now, cost);
        }
        let caller = caller.unwrap_or_else(|| "anonymous".to_owned());
        let record = UsageRecord {
            caller,
            provider: provider.to_owned(),
            model: model.to_owned(),
            day: gateway_core::usage::utc_day(now),
            usage,
            cost_pusd: cost,
        };
        crate::usage::enqueue(&QueueMessage::Usage(record));
        cost
    }

    /// Filter state `wasm.ai_gateway.*` for the JSON access log (envoy/render.py): on Envoy 1.40
    /// it lands on the downstream request's stream info, so the last attempt's values win.
    fn publish_access_log(&self, provider: &str, model: &str, usage: gateway_core::TokenUsage, cost_pusd: u64) {
        if knobs::skip(Piece::FilterState) || !crate::log_state_wanted() {
            return;
        }
        let ttft = self.ttft_ms.map(|v| v.to_string()).unwrap_or_default();
        let (input, output) = (usage.input.to_string(), usage.output.to_string());
        let cost = pusd_to_usd_string(cost_pusd);
        let kind = self.shared.table.provider(provider).map_or("", |p| p.kind.semconv_name());
        // Left unset when the provider reports none, so the span has no empty attribute.
        if let Some(reported) = self.translator.as_ref().and_then(|t| t.response_model()) {
            if !host::set_property(&["ai_gateway.response_model"], reported.as_bytes()) {
                log::debug!("could not set filter state ai_gateway.response_model");
            }
        }
        for (key, value) in [
            ("ai_gateway.provider", provider),
            ("ai_gateway.provider_kind", kind),
            ("ai_gateway.model", model),
            ("ai_gateway.input_tokens", input.as_str()),
            ("ai_gateway.output_tokens", output.as_str()),
            ("ai_gateway.ttft_ms", ttft.as_str()),
            ("ai_gateway.cost_usd", cost.as_str()),
        ] {
            if !host::set_property(&[key], value.as_bytes()) {
                log::debug!("could not set filter state {key}");
            }
        }
    }
}

/// Makes the request header map `current` hold only allowlisted client headers plus `wanted`
/// (which win over client values), with as few host calls as it can.
fn apply_headers(current: &[(String, Vec<u8>)], wanted: &[(String, String)], extra: &[String], keep: &[&str]) {
    let plan = header_plan(current, wanted, extra, keep);
    if plan.removals.len() + plan.sets.len() <= MAX_SINGLE_EDITS {
        for name in &plan.removals {
            host::remove_header(MapType::HttpRequestHeaders, name);
        }
        for (name, value) in &plan.sets {
            host::set_header(MapType::HttpRequestHeaders, name, value);
        }
        return;
    }
    let pairs: Vec<(&str, &[u8])> = plan.final_map.iter().map(|(n, v)| (*n, *v)).collect();
    if proxy_wasm::hostcalls::set_map_bytes(MapType::HttpRequestHeaders, pairs).is_err() {
        log::warn!("could not replace the request headers; editing them one by one");
        for name in &plan.removals {
            host::remove_header(MapType::HttpRequestHeaders, name);
        }
        for (name, value) in &plan.sets {
            host::set_header(MapType::HttpRequestHeaders, name, value);
        }
    }
}

/// The edits that turn a request header map into the one a provider attempt sends.
#[derive(Debug, Default, PartialEq)]
struct HeaderPlan<'a> {
    /// Headers to remove one by one (each name once).
    removals: Vec<&'a str>,
    /// Headers to set one by one (after the removals).
    sets: Vec<(&'a str, &'a str)>,
    /// The whole resulting map, for a single replacement.
    final_map: Vec<(&'a str, &'a [u8])>,
}

/// Pure part of [`apply_headers`], unit-tested without a host.
fn header_plan<'a>(
    current: &'a [(String, Vec<u8>)],
    wanted: &'a [(String, String)],
    extra: &[String],
    kept: &[&str],
) -> HeaderPlan<'a> {
    let mut plan = HeaderPlan::default();
    let is_wanted = |name: &str| wanted.iter().any(|(n, _)| n == name);
    for (name, value) in current {
        let keep =
            (translate::upstream_header_allowed(name, extra) || kept.contains(&name.as_str())) && !is_wanted(name);
        if keep {
            plan.final_map.push((name.as_str(), value.as_slice()));
            continue;
        }
        if plan.removals.contains(&name.as_str()) {
            continue;
        }
        // A header set below replaces every value, unless it was repeated: then remove first so
        // no second value survives.
        let repeated = current.iter().filter(|(n, _)| n == name).count() > 1;
        if repeated || !is_wanted(name) {
            plan.removals.push(name.as_str());
        }
    }
    for (name, value) in wanted {
        plan.final_map.push((name.as_str(), value.as_bytes()));
        let mut values = current.iter().filter(|(n, _)| n == name);
        let unchanged = !plan.removals.contains(&name.as_str())
            && values.next().is_some_and(|(_, v)| v.as_slice() == value.as_bytes())
            && values.next().is_none();
        if !unchanged {
            plan.sets.push((name.as_str(), value.as_str()));
        }
    }
    plan
}

impl Attempt {
    /// The provider's response headers (`headers`: the whole map, read once by the caller).
    pub fn response_headers(&mut self, headers: &[(String, Vec<u8>)], end_of_stream: bool) -> Action {
        let Some(translator) = self.translator.as_mut() else {
            return Action::Continue;
        };
        let status = host::find_string(headers, ":status").and_then(|s| s.parse::<u16>().ok()).unwrap_or(0);
        let content_type = host::find_string(headers, "content-type");
        self.status = Some(status);
        self.mode = translator.on_headers(status, content_type.as_deref());
        if let Some(value) = translator.wanted_response_header().and_then(|name| host::find_string(headers, name)) {
            translator.on_response_header(&value);
        }
        // The gateway strips accept-encoding, so providers answer uncompressed; a compressed body
        // (a misbehaving provider or proxy) cannot be translated or counted. Envoy has no
        // decompressor that runs as an upstream filter, so the answer becomes a clear 502.
        let encoding = host::find_string(headers, "content-encoding")
            .map(|e| e.trim().chars().take(40).collect::<String>().to_ascii_lowercase())
            .filter(|e| !e.is_empty() && e != "identity");
        if let Some(encoding) = encoding {
            host::remove_header(MapType::HttpResponseHeaders, "content-encoding");
            self.undecodable = Some(encoding);
            self.mode = BodyMode::Buffered;
            self.status = Some(ErrorKind::BadGateway.status());
            host::set_header(MapType::HttpResponseHeaders, ":status", &ErrorKind::BadGateway.status().to_string());
        }
        if let Some(provider) = &self.provider {
            host::set_header(MapType::HttpResponseHeaders, PROVIDER_RESPONSE_HEADER, provider);
        }
        if let Some(model) = &self.target_model {
            host::set_header(MapType::HttpResponseHeaders, MODEL_RESPONSE_HEADER, model);
        }
        if !self.dropped.is_empty() {
            host::set_header(MapType::HttpResponseHeaders, DROPPED_RESPONSE_HEADER, &self.dropped);
        }
        if self.api.is_some_and(ClientApi::counts_tokens) && (200..300).contains(&status) {
            host::set_header(MapType::HttpResponseHeaders, count_tokens::TOKEN_COUNT_HEADER, count_tokens::EXACT);
        }
        // Only the attempt that answered reaches the client, so its number is the attempt count.
        // A direct route has no retry policy: its only attempt is the first.
        let attempt = match &self.info {
            Some(info) if info.direct => Some(1),
            _ if knobs::skip(Piece::Properties) => None,
            _ => host::property(&["upstream", "request_attempt_count"]).and_then(|b| attempt_number(&b)),
        };
        if let Some(attempt) = attempt {
            host::set_header(MapType::HttpResponseHeaders, ATTEMPTS_RESPONSE_HEADER, &attempt.to_string());
        }
        if end_of_stream {
            self.finish();
            return Action::Continue;
        }
        // The body may change size; a stale length makes clients wait for bytes that never come.
        // A buffered body sets the right length when it ends, before the headers leave.
        self.content_length = host::find_string(headers, "content-length");
        if self.mode == BodyMode::Streaming || self.undecodable.is_some() {
            host::remove_header(MapType::HttpResponseHeaders, "content-length");
            self.content_length = None;
        }
        let new_type = if self.undecodable.is_some() { Some("application/json") } else { translator.content_type() };
        if let Some(ct) = new_type.filter(|ct| content_type.as_deref() != Some(*ct)) {
            host::set_header(MapType::HttpResponseHeaders, "content-type", ct);
        }
        if knobs::skip(Piece::ResponseBody) && self.mode == BodyMode::Buffered {
            self.finish();
            return Action::Continue;
        }
        match self.mode {
            BodyMode::Streaming => Action::Continue,
            BodyMode::Buffered => Action::Pause,
        }
    }

    /// A piece of the provider's response body (all of it, once buffered).
    pub fn response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.finished && self.mode == BodyMode::Buffered {
            return Action::Continue;
        }
        let Some(translator) = self.translator.as_mut() else {
            return Action::Continue;
        };
        match self.mode {
            BodyMode::Streaming => {
                let chunk = host::body(BufferType::HttpResponseBody, body_size);
                let out = translator.translate_chunk(&chunk, end_of_stream);
                if out != chunk && !host::set_body(BufferType::HttpResponseBody, body_size, &out) {
                    log::warn!("could not rewrite a response chunk");
                }
                if !out.is_empty() && self.status.is_some_and(|s| (200..300).contains(&s)) {
                    self.first_bytes();
                }
                // A client may hang up as soon as it reads the stream's last event, before the
                // upstream's end arrives and `finish` runs; the access log must have the totals then.
                if ends_client_stream(&out) {
                    if let (Some(provider), Some(model), Some(t)) =
                        (&self.provider, &self.target_model, &self.translator)
                    {
                        let usage = t.usage();
                        let cost = self.shared.table.prices().cost_pusd(provider, model, usage.into());
                        self.publish_access_log(provider, model, usage, cost);
                    }
                }
                if end_of_stream {
                    self.finish();
                }
                Action::Continue
            }
            BodyMode::Buffered => {
                if !end_of_stream {
                    return Action::Pause;
                }
                let body = host::body(BufferType::HttpResponseBody, body_size);
                let translated = match &self.undecodable {
                    Some(encoding) => Err(GatewayError::new(
                        ErrorKind::BadGateway,
                        format!("The provider sent a response with content-encoding '{encoding}', which the gateway does not decode."),
                    )
                    .with_code("unsupported_content_encoding")),
                    None => translator.translate_body(&body),
                };
                let length = match translated {
                    Ok(None) => body.len(),
                    Ok(Some(new_body)) => {
                        if host::set_body(BufferType::HttpResponseBody, body_size, &new_body) {
                            new_body.len()
                        } else {
                            log::warn!("could not rewrite the response body");
                            body.len()
                        }
                    }
                    Err(err) => {
                        let error_body = match self.api {
                            Some(api) => err.to_body(api),
                            None => err.to_openai_body(),
                        };
                        self.status = Some(err.status());
                        host::set_header(MapType::HttpResponseHeaders, ":status", &err.status().to_string());
                        host::set_header(MapType::HttpResponseHeaders, "content-type", "application/json");
                        if host::set_body(BufferType::HttpResponseBody, body_size, &error_body) {
                            error_body.len()
                        } else {
                            log::warn!("could not replace the response body with an error");
                            body.len()
                        }
                    }
                };
                let length = length.to_string();
                if self.content_length.as_deref() != Some(length.as_str()) {
                    host::set_header(MapType::HttpResponseHeaders, "content-length", &length);
                }
                // One clock read for the time to first token and everything `finish` records.
                let now = host::now();
                if self.status.is_some_and(|s| (200..300).contains(&s)) {
                    self.first_bytes_at(now.1);
                }
                self.finish_at(now);
                Action::Continue
            }
        }
    }
}

/// The upstream filter's context: one [`Attempt`] per attempt, unless the downstream filter
/// already ran the request's only attempt itself (a bootstrap that kept the upstream filter on a
/// direct route's cluster): then it stays out of the way.
pub struct Upstream {
    attempt: Attempt,
    /// The routing decision, read when the request headers arrive; taken by `prepare`.
    info: Option<RequestInfo>,
    /// The downstream filter handles this request's attempt: nothing to do here.
    inert: bool,
}

impl Upstream {
    pub fn new(shared: Rc<Shared>) -> Self {
        Upstream { attempt: Attempt::new(shared), info: None, inert: false }
    }

    fn prepare_or_fail(&mut self, body_size: usize) -> Action {
        match self.info.take() {
            Some(info) => self.attempt.prepare_or_fail(info, body_size),
            None => {
                self.attempt.fail(&GatewayError::new(
                    ErrorKind::Internal,
                    "request reached an upstream without a routing decision",
                ));
                Action::Pause
            }
        }
    }

    /// What a request callback returns once the attempt was prepared (or answered locally).
    fn after_prepare(&self) -> Action {
        if self.attempt.reaches_provider() {
            Action::Continue
        } else {
            Action::Pause
        }
    }
}

impl Context for Upstream {
    fn on_done(&mut self) -> bool {
        if !self.inert {
            self.attempt.finish();
        }
        true
    }
}

impl HttpContext for Upstream {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.info = host::property(&[REQUEST_INFO_KEY]).and_then(|b| RequestInfo::decode(&b));
        // A direct route's only attempt is the downstream filter's (ADR 0027), which writes no
        // routing decision for it: the attempt reaches a provider's own cluster instead of a
        // policy's aggregate one.
        let direct = match &self.info {
            Some(info) => info.direct,
            None => host::property_string(&["xds", "cluster_name"])
                .is_some_and(|cluster| self.attempt.shared.table.provider_by_cluster(&cluster, "").is_some()),
        };
        if direct {
            self.inert = true;
            return Action::Continue;
        }
        if end_of_stream {
            // The downstream filter never routes an empty body; and without a body buffer a
            // translated body could not be written (the host call would fail and panic the SDK).
            self.attempt.fail(&GatewayError::invalid("The request body must be a JSON object."));
            return Action::Pause;
        }
        Action::Pause
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.inert {
            return Action::Continue;
        }
        if self.attempt.prepared {
            return self.after_prepare();
        }
        if !end_of_stream {
            return Action::Pause;
        }
        self.prepare_or_fail(body_size)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        if self.inert {
            return Action::Continue;
        }
        if self.attempt.prepared {
            return self.after_prepare();
        }
        let limit = self.attempt.shared.table.config().limits.max_request_bytes.saturating_add(1);
        let size = host::body(BufferType::HttpRequestBody, limit).len();
        self.prepare_or_fail(size)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if self.inert || !self.attempt.reaches_provider() {
            return Action::Continue;
        }
        // One host call for the whole map instead of one per header.
        let headers = host::headers(MapType::HttpResponseHeaders);
        self.attempt.response_headers(&headers, end_of_stream)
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.inert {
            return Action::Continue;
        }
        self.attempt.response_body(body_size, end_of_stream)
    }
}

/// Whether a translated chunk carries the client stream's last event: `[DONE]` (OpenAI Chat),
/// `message_stop` (Anthropic) or a terminal Responses event. One pass over the chunk for
/// `event: ` (a comparison per byte position per name cost more than the translation).
fn ends_client_stream(out: &[u8]) -> bool {
    const TERMINAL: [&[u8]; 4] = [b"message_stop", b"response.completed", b"response.incomplete", b"response.failed"];
    out.ends_with(b"data: [DONE]\n\n")
        || memchr::memmem::find_iter(out, b"event: ").any(|at| {
            let name = out.get(at + 7..).unwrap_or_default();
            TERMINAL.iter().any(|t| name.starts_with(t))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_ends_the_client_stream_only_with_a_terminal_event() {
        for terminal in [
            &b"data: {\"choices\":[]}\n\ndata: [DONE]\n\n"[..],
            b"event: content_block_stop\ndata: {}\n\nevent: message_delta\ndata: {}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
            b"event: response.completed\ndata: {}\n\n",
            b"event: response.output_text.done\ndata: {}\n\nevent: response.incomplete\ndata: {}\n\n",
            b"event: response.failed\ndata: {}\n\n",
        ] {
            assert!(ends_client_stream(terminal), "{}", String::from_utf8_lossy(terminal));
        }
        for other in [
            &b""[..],
            b"event: ",
            b"data: {\"choices\":[{\"delta\":{\"content\":\"[DONE]\"}}]}\n\n",
            b"event: message_start\ndata: {}\n\nevent: content_block_delta\ndata: {}\n\n",
            b"event: response.output_text.delta\ndata: {\"delta\":\"response.completed\"}\n\n",
            b"event: message_",
        ] {
            assert!(!ends_client_stream(other), "{}", String::from_utf8_lossy(other));
        }
    }

    fn map(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        pairs.iter().map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec())).collect()
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn plan_keeps_only_allowlisted_and_wanted_headers() {
        let current = map(&[
            (":method", "POST"),
            (":path", "/v1/messages"),
            (":authority", "gw"),
            ("content-type", "application/json"),
            ("authorization", "Bearer sk-virtual"),
            ("x-stainless-lang", "python"),
            ("user-agent", "Anthropic/Python"),
            ("openai-organization", "org-evil"),
            ("x-test-id", "t1"),
            ("cookie", "a=b"),
            ("x-forwarded-for", "10.0.0.1"),
            ("content-length", "10"),
        ]);
        let wanted = owned(&[(":path", "/v1/messages"), ("x-api-key", "sk-ant"), ("content-length", "12")]);
        let extra = translate::parse_forward_list("x-test-id");
        let plan = header_plan(&current, &wanted, &extra, &[]);
        let names: Vec<&str> = plan.final_map.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [":method", ":authority", "content-type", "x-test-id", ":path", "x-api-key", "content-length"]
        );
        assert_eq!(
            plan.removals,
            ["authorization", "x-stainless-lang", "user-agent", "openai-organization", "cookie", "x-forwarded-for"]
        );
        // `:path` is unchanged, so only the new credential and length are set.
        assert_eq!(plan.sets, [("x-api-key", "sk-ant"), ("content-length", "12")]);
        // Without the operator's extra list the test header goes too.
        assert!(header_plan(&current, &wanted, &[], &[]).removals.contains(&"x-test-id"));
    }

    #[test]
    fn kept_headers_stay_for_envoy_until_the_route_removes_them() {
        // The downstream filter runs a direct route's attempt before the router routes, and
        // Envoy matches no route without x-forwarded-proto.
        let current = map(&[(":path", "/v1/chat/completions"), ("x-forwarded-proto", "http"), ("user-agent", "sdk")]);
        let wanted = owned(&[("authorization", "Bearer sk-provider")]);
        let plan = header_plan(&current, &wanted, &[], &["x-forwarded-proto"]);
        assert_eq!(plan.removals, ["user-agent"]);
        assert!(plan.final_map.contains(&("x-forwarded-proto", &b"http"[..])));
        assert!(header_plan(&current, &wanted, &[], &[]).removals.contains(&"x-forwarded-proto"));
    }

    #[test]
    fn repeated_wanted_headers_are_removed_before_being_set() {
        let current = map(&[(":path", "/x"), ("anthropic-beta", "a"), ("anthropic-beta", "b")]);
        let wanted = owned(&[("anthropic-beta", "a,b")]);
        let plan = header_plan(&current, &wanted, &[], &[]);
        assert_eq!(plan.removals, ["anthropic-beta"]);
        assert_eq!(plan.sets, [("anthropic-beta", "a,b")]);
        assert_eq!(plan.final_map.iter().filter(|(n, _)| *n == "anthropic-beta").count(), 1);
    }
}
