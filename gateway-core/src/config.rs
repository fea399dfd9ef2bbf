//! The gateway configuration schema: providers, routes and limits. The same document is read from
//! the Envoy bootstrap today and pushed by the control plane later, so it is versioned and strict.

use serde::{Deserialize, Serialize};

/// Everything a filter needs to route and translate requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Monotonic version of this snapshot; filters only re-parse when it changes.
    #[serde(default)]
    pub version: u64,
    pub providers: Vec<ProviderConfig>,
    pub routes: Vec<RouteConfig>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub defaults: Defaults,
}

/// One upstream provider account: which API it speaks, which Envoy cluster reaches it, how to
/// authenticate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Unique name, referenced by route targets and by Envoy endpoint metadata.
    pub name: String,
    pub kind: ProviderKind,
    /// Envoy cluster that reaches this provider. Upstream addresses come only from here.
    pub cluster: String,
    /// Where the provider's API key comes from. `None` sends no credential (local upstreams).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialSource>,
    /// Path prefix in front of the API's own paths, for providers behind a proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
}

/// The API family a provider speaks; decides the translator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    Openai,
    Anthropic,
}

/// A reference to a secret, never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CredentialSource {
    /// An environment variable of the Envoy process, resolved when the filter loads its config.
    Env(String),
}

/// A public model name and the provider models that serve it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The model name clients send.
    pub model: String,
    pub targets: Vec<TargetConfig>,
}

/// One provider model behind a route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub provider: String,
    /// The model name the provider expects.
    pub model: String,
    /// Relative share of traffic among the route's targets.
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    1
}

/// Size limits enforced before any parsing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest request body accepted; agent requests with many tools routinely exceed 1 MiB.
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_request_bytes: default_max_request_bytes() }
    }
}

fn default_max_request_bytes() -> usize {
    16 * 1024 * 1024
}

/// Values used when a client leaves out a field the provider requires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Anthropic requires `max_tokens`; OpenAI clients usually omit it.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults { max_tokens: default_max_tokens() }
    }
}

fn default_max_tokens() -> u32 {
    4096
}

impl GatewayConfig {
    /// Parses a JSON config document. Validation of references happens in `RoutingTable::new`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}
