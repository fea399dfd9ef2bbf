//! proxy-wasm adapter that runs `gateway-core` inside Envoy.
//!
//! One module, two root contexts in the same VM: root_id `ai_gateway` is the downstream HTTP
//! filter (once per request: validate, route; on a direct route also its only attempt, ADR
//! 0027), root_id `ai_gateway_upstream` is the upstream HTTP filter on the router (once per
//! attempt of a route with a policy: translate for the provider actually reached).
//! Both read the same gateway configuration JSON from the plugin `configuration`: the bootstrap
//! config, used until the control plane pushes a snapshot. root_id `ai_gateway_service` is the
//! singleton service that receives those snapshots (see `service`).

pub mod auth;
pub mod budget;
pub mod downstream;
pub mod host;
pub mod jwt;
pub mod knobs;
pub mod metrics;
pub mod proto;
pub mod ratelimit;
pub mod service;
pub mod snapshot;
pub mod state;
pub mod upstream;
pub mod usage;

use std::cell::Cell;
use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel};

use crate::state::Shared;

/// Root id of the downstream filter.
pub const DOWNSTREAM_ROOT_ID: &str = "ai_gateway";
/// Root id of the upstream (per-attempt) filter.
pub const UPSTREAM_ROOT_ID: &str = "ai_gateway_upstream";
/// Root id of the singleton service that watches the control plane.
pub const SERVICE_ROOT_ID: &str = "ai_gateway_service";
/// Request header the downstream filter sets; the route uses it as `cluster_header`.
pub const CLUSTER_HEADER: &str = "x-ai-gateway-cluster";
/// Request header set just before a filter's local reply, so `local_reply_config` keeps the body.
pub const LOCAL_REPLY_MARKER: &str = "x-ai-gateway-local-reply";
/// Endpoint metadata namespace whose `provider` key names the provider behind an endpoint.
pub const METADATA_NAMESPACE: &str = "ai_gateway";
/// Response header naming the provider that served the request.
pub const PROVIDER_RESPONSE_HEADER: &str = "x-ai-gateway-provider";
/// Response header naming the provider model that served the request.
pub const MODEL_RESPONSE_HEADER: &str = "x-ai-gateway-model";
/// Response header listing request fields the provider could not take and the gateway left out.
pub const DROPPED_RESPONSE_HEADER: &str = "x-ai-gateway-dropped";
/// Environment variable (set by render.py in `vm_config.environment_variables.key_values`): `0`
/// when the bootstrap has neither an access log nor tracing, so nothing reads the filter state
/// `wasm.ai_gateway.*` the filter writes for them and the writes are skipped. Unset or any other
/// value: written (bootstraps made without render.py keep their logs).
pub const LOG_STATE_ENV: &str = "AI_GATEWAY_LOG_STATE";

thread_local! {
    /// [`LOG_STATE_ENV`], read once per VM.
    static LOG_STATE: bool = std::env::var(LOG_STATE_ENV).map_or(true, |v| v.trim() != "0");
}

/// Whether the access log or tracing reads the filter state `wasm.ai_gateway.*` ([`LOG_STATE_ENV`]).
pub fn log_state_wanted() -> bool {
    LOG_STATE.with(|w| *w)
}

/// Response header: how many attempts (retries and fallbacks included) the request took.
pub const ATTEMPTS_RESPONSE_HEADER: &str = "x-ai-gateway-attempts";

proxy_wasm::main! {{
    // Also installs a panic hook that logs the panic before the VM dies.
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

/// Which filter a root context serves, from its `root_id`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Downstream,
    Upstream,
    Service,
}

/// One root context per plugin (`root_id`) per VM.
#[derive(Default)]
struct Root {
    role: Option<Role>,
    /// The bootstrap config from the plugin configuration (HTTP roles).
    shared: Option<Rc<Shared>>,
    service: Option<service::Service>,
    /// Mixed into the per-request random number so that every request draws a new one.
    counter: Cell<u64>,
    /// Clock at the first draw in this root: one host call per VM instead of one per request.
    seed: Cell<Option<u64>>,
}

impl Root {
    fn random(&self, context_id: u32) -> u64 {
        let n = self.counter.get().wrapping_add(1);
        self.counter.set(n);
        let seed = match self.seed.get() {
            Some(seed) => seed,
            None => {
                let seed = host::now().1 as u64;
                self.seed.set(Some(seed));
                seed
            }
        };
        splitmix64(seed ^ (u64::from(context_id) << 32) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }
}

/// A well-mixed 64-bit hash; enough for weighted target selection and jitter (not for secrets).
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Context for Root {
    fn on_grpc_stream_initial_metadata(&mut self, token_id: u32, _num_elements: u32) {
        if let Some(service) = self.service.as_mut() {
            service.on_connected(token_id);
        }
    }

    fn on_grpc_stream_message(&mut self, token_id: u32, message_size: usize) {
        if let Some(service) = self.service.as_mut() {
            service.on_message(token_id, message_size);
        }
    }

    fn on_grpc_stream_close(&mut self, token_id: u32, status_code: u32) {
        if let Some(service) = self.service.as_mut() {
            service.on_close(token_id, status_code);
        }
    }

    fn on_grpc_call_response(&mut self, token_id: u32, status_code: u32, response_size: usize) {
        if let Some(service) = self.service.as_mut() {
            service.on_call_response(token_id, status_code, response_size);
        }
    }
}

impl RootContext for Root {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        // Skip formatting log records Envoy would drop anyway.
        if let Ok(level) = hostcalls::get_log_level() {
            proxy_wasm::set_log_level(level);
        }
        true
    }

    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        let root_id = host::property_string(&["plugin_root_id"]).unwrap_or_default();
        let role = match root_id.as_str() {
            DOWNSTREAM_ROOT_ID => Role::Downstream,
            UPSTREAM_ROOT_ID => Role::Upstream,
            SERVICE_ROOT_ID => Role::Service,
            other => {
                log::error!(
                    "ai_gateway: unknown root_id '{other}'; expected '{DOWNSTREAM_ROOT_ID}', '{UPSTREAM_ROOT_ID}' or '{SERVICE_ROOT_ID}'"
                );
                return false;
            }
        };
        let config = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, plugin_configuration_size) {
            Ok(Some(c)) => c,
            _ if role == Role::Service => Vec::new(),
            _ => {
                log::error!(
                    "ai_gateway ({root_id}): the plugin configuration is empty; it must hold the gateway config JSON"
                );
                return false;
            }
        };
        if role == Role::Service {
            return match service::ServiceConfig::from_json(&config) {
                Ok(cfg) => {
                    let token =
                        cfg.token_env.as_deref().and_then(|name| std::env::var(name).ok()).filter(|t| !t.is_empty());
                    let mut svc = service::Service::new(cfg, token);
                    let started = svc.start();
                    self.role = Some(role);
                    self.service = Some(svc);
                    started
                }
                Err(e) => {
                    log::error!("ai_gateway ({root_id}): {e}");
                    false
                }
            };
        }
        match Shared::load(&config, |name| std::env::var(name).ok()) {
            Ok(shared) => {
                let cfg = shared.table.config();
                log::info!(
                    "ai_gateway ({root_id}): loaded config version {} with {} providers and {} routes",
                    cfg.version,
                    cfg.providers.len(),
                    cfg.routes.len()
                );
                if role == Role::Downstream {
                    jwt::set_policy(cfg.auth.jwt.clone());
                    // Budget and rate-limit entries of named clients exist before traffic: the
                    // first write of a shared-data key cannot be conditional (ADR 0008).
                    for (client, limits) in cfg.auth.jwt.iter().flat_map(|j| j.limits.iter()) {
                        if client == "*" {
                            continue;
                        }
                        if limits.budget.is_some() {
                            budget::seed(&format!("jwt:{client}"));
                        }
                        if limits.rpm.is_some() || limits.tpm.is_some() {
                            ratelimit::seed(&format!("jwt:{client}"));
                        }
                    }
                }
                self.role = Some(role);
                self.shared = Some(Rc::new(shared));
                true
            }
            Err(e) => {
                log::error!("ai_gateway ({root_id}): {e}");
                false
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Returning None would panic in the SDK dispatcher; an unconfigured root lets traffic
        // through untouched (Envoy does not create streams for plugins that failed to configure).
        let Some(bootstrap) = self.shared.as_ref() else {
            return Some(Box::new(Inert));
        };
        if knobs::skip(knobs::Piece::All) || (self.role == Some(Role::Upstream) && knobs::skip(knobs::Piece::Upstream))
        {
            return Some(Box::new(Inert));
        }
        // One small shared-data read per request, by the downstream context; the snapshot is
        // re-parsed only on a change. The upstream context of the same request comes after it
        // in this VM and takes what it found.
        let shared = if knobs::skip(knobs::Piece::Snapshot) {
            Rc::clone(bootstrap)
        } else if self.role == Some(Role::Upstream) {
            snapshot::cached(bootstrap)
        } else {
            snapshot::current(bootstrap)
        };
        match self.role {
            Some(Role::Downstream) => Some(Box::new(downstream::Downstream::new(shared, self.random(context_id)))),
            Some(Role::Upstream) => Some(Box::new(upstream::Upstream::new(shared))),
            Some(Role::Service) | None => Some(Box::new(Inert)),
        }
    }

    fn on_tick(&mut self) {
        if let Some(service) = self.service.as_mut() {
            service.on_tick();
        }
    }

    fn on_queue_ready(&mut self, _queue_id: u32) {
        if let Some(service) = self.service.as_mut() {
            service.on_queue_ready();
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// A context that does nothing, for roots that could not be configured.
struct Inert;

impl Context for Inert {}
impl HttpContext for Inert {}
