//! JWT callers: the claims Envoy's `jwt_authn` verified and left in dynamic metadata, and the
//! bootstrap's `auth.jwt` policy that maps them to models (ADR 0004).

use std::cell::RefCell;
use std::rc::Rc;

use gateway_core::jwt::{JwtCaller, JwtConfig};

use crate::host;

/// Dynamic-metadata path of the verified payload (`payload_in_metadata` in envoy/render.py).
const PAYLOAD_PATH: [&str; 4] = ["metadata", "filter_metadata", "envoy.filters.http.jwt_authn", "jwt_payload"];
/// Filter-state key (`wasm.` prefixed by Envoy) naming the caller, for usage accounting:
/// `jwt:<client_id>` or `key:<sha-256 of the virtual key>`.
pub const CALLER_KEY: &str = "ai_gateway.caller";

thread_local! {
    // The policy travels with jwt_authn in the bootstrap, not in pushed snapshots: one per VM.
    static POLICY: RefCell<Option<Rc<JwtConfig>>> = const { RefCell::new(None) };
}

/// Installs the bootstrap's `auth.jwt` (or none) for this VM's downstream filter.
pub fn set_policy(policy: Option<JwtConfig>) {
    POLICY.with(|cell| {
        if let Ok(mut slot) = cell.try_borrow_mut() {
            *slot = policy.map(Rc::new);
        }
    });
}

/// The JWT policy, if the bootstrap configured JWT callers.
pub fn policy() -> Option<Rc<JwtConfig>> {
    POLICY.with(|cell| cell.try_borrow().ok().and_then(|p| p.clone()))
}

/// The verified caller, if jwt_authn accepted a token on this request. Leaf string claims come
/// back from the host as their raw bytes; the payload itself only tells that one was verified.
pub fn verified_caller() -> Option<JwtCaller> {
    host::property(&PAYLOAD_PATH)?;
    let claim = |name: &str| {
        let [a, b, c, d] = PAYLOAD_PATH;
        host::property_string(&[a, b, c, d, name])
    };
    Some(JwtCaller::new(claim("client_id").as_deref(), claim("sub").as_deref(), claim("scope").as_deref()))
}

/// Records who called in filter state, for the access log; failures only cost the attribution.
pub fn record_caller(caller: &str) {
    // Only the logs read it (the upstream filter gets the caller in the request state).
    if !crate::log_state_wanted() {
        return;
    }
    if !host::set_property(&[CALLER_KEY], caller.as_bytes()) {
        log::debug!("could not record the caller in filter state");
    }
}
