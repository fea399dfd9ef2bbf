//! What the root context loads once per configuration, and the per-request facts the downstream
//! filter hands to the upstream filter through Envoy filter state.

use std::collections::HashMap;

use gateway_core::config::CredentialSource;
use gateway_core::routing::RoutingTable;
use gateway_core::{ClientApi, GatewayConfig};
use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;

/// Filter-state key (`wasm.` prefixed by Envoy) holding [`RequestInfo`] as JSON.
pub const REQUEST_INFO_KEY: &str = "ai_gateway.request";

/// Configuration shared by every HTTP context of one root context.
pub struct Shared {
    pub table: RoutingTable,
    /// Provider name → resolved secret. Never logged.
    credentials: HashMap<String, String>,
    pub metrics: Metrics,
}

impl Shared {
    /// Parses and validates the plugin configuration and resolves credentials from the
    /// environment. `lookup` is `std::env::var` in the VM, a map in tests.
    pub fn load(config: &[u8], lookup: impl Fn(&str) -> Option<String>) -> Result<Shared, String> {
        let config = GatewayConfig::from_json(config).map_err(|e| format!("invalid gateway configuration JSON: {e}"))?;
        let mut credentials = HashMap::new();
        for provider in &config.providers {
            match &provider.credential {
                Some(CredentialSource::Env(var)) => match lookup(var).filter(|v| !v.is_empty()) {
                    Some(secret) => {
                        credentials.insert(provider.name.clone(), secret);
                    }
                    None => log::warn!(
                        "provider '{}': environment variable {var} is not set (list it in vm_config.environment_variables.host_env_keys); requests go out without a credential",
                        provider.name
                    ),
                },
                None => {}
            }
        }
        let table = RoutingTable::new(config).map_err(|e| format!("invalid gateway configuration: {e}"))?;
        Ok(Shared { table, credentials, metrics: Metrics::default() })
    }

    pub fn credential(&self, provider: &str) -> Option<&str> {
        self.credentials.get(provider).map(String::as_str)
    }
}

/// Facts about one request, decided downstream and needed by every upstream attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestInfo {
    /// The model name the client asked for (route key).
    pub model: String,
    /// The provider the downstream filter selected (used if the attempt cannot tell its own).
    pub provider: String,
    /// The selected provider's model name.
    pub target_model: String,
    /// Client API, see [`api_name`].
    pub api: String,
    /// Unix seconds when the request arrived.
    pub created: u64,
    pub stream: bool,
}

/// Stable name of a client API in filter state.
pub fn api_name(api: ClientApi) -> &'static str {
    match api {
        ClientApi::OpenAiChat => "openai_chat",
    }
}

/// Inverse of [`api_name`].
pub fn api_from_name(name: &str) -> Option<ClientApi> {
    match name {
        "openai_chat" => Some(ClientApi::OpenAiChat),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = r#"{"providers":[{"name":"o","kind":"openai","cluster":"c_o","credential":{"env":"OPENAI_API_KEY"}},{"name":"a","kind":"anthropic","cluster":"c_a","credential":{"env":"MISSING"}}],
        "routes":[{"model":"m","targets":[{"provider":"o","model":"gpt"}]}]}"#;

    #[test]
    fn credentials_resolve_and_missing_ones_are_absent() {
        let s = Shared::load(CFG.as_bytes(), |k| (k == "OPENAI_API_KEY").then(|| "sk-test".to_owned())).unwrap();
        assert_eq!(s.credential("o"), Some("sk-test"));
        assert_eq!(s.credential("a"), None);
    }

    #[test]
    fn invalid_configs_are_rejected_with_a_reason() {
        assert!(Shared::load(b"{", |_| None).err().unwrap().contains("JSON"));
        let bad = r#"{"providers":[],"routes":[{"model":"m","targets":[{"provider":"x","model":"y"}]}]}"#;
        assert!(Shared::load(bad.as_bytes(), |_| None).err().unwrap().contains("unknown provider"));
    }

    #[test]
    fn api_names_round_trip() {
        assert_eq!(api_from_name(api_name(ClientApi::OpenAiChat)), Some(ClientApi::OpenAiChat));
        assert_eq!(api_from_name("nope"), None);
    }
}
