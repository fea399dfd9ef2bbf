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
    /// JWT callers and their model policy (Envoy's `jwt_authn` verifies the tokens).
    #[serde(default, skip_serializing_if = "crate::jwt::AuthConfig::is_empty")]
    pub auth: crate::jwt::AuthConfig,
    /// USD per million tokens per provider model; turns usage into cost for budgets, access
    /// logs and usage reports. Unpriced models cost 0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prices: Vec<crate::pricing::PriceConfig>,
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
    /// Settings only some provider kinds need, one optional member per kind; empty by default,
    /// so that adding a kind's settings never changes other providers' documents.
    #[serde(default, skip_serializing_if = "ProviderSettings::is_empty")]
    pub settings: ProviderSettings,
}

/// The API family a provider speaks; decides the translator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    Openai,
    Anthropic,
    /// Google's Generative Language API (`generateContent`), API key in `x-goog-api-key`.
    Gemini,
    /// Azure OpenAI: OpenAI's wire format at deployment URLs, key in `api-key`.
    AzureOpenai,
    /// AWS Bedrock Runtime (Converse, or InvokeModel for Claude: `settings.bedrock.api`), SigV4-signed
    /// (`settings.bedrock.region`).
    Bedrock,
}

impl ProviderKind {
    /// The provider's `gen_ai.provider.name` in the OpenTelemetry GenAI conventions, so traces
    /// group by vendor whatever the operator named the provider.
    pub fn semconv_name(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gcp.gemini",
            ProviderKind::AzureOpenai => "azure.ai.openai",
            ProviderKind::Bedrock => "aws.bedrock",
        }
    }
}

/// Per-kind provider settings. Each member belongs to one kind and is ignored by the others.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    /// Azure OpenAI URL form and API version (kind `azure_openai`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureSettings>,
    /// AWS region and API choice of a Bedrock provider (kind `bedrock`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bedrock: Option<BedrockSettings>,
    /// The OpenAI organization and project the platform's key bills (kind `openai`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openai: Option<OpenAiSettings>,
    /// How OpenAI Responses API requests are translated for this provider (any kind but
    /// `openai`/`azure_openai`, which pass them through).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responses: Option<ResponsesSettings>,
}

/// Which OpenAI organization and project a provider's requests bill. Only configuration sets
/// them: a client's own `OpenAI-Organization` / `OpenAI-Project` headers never reach the provider
/// (a caller must not pick what the platform's key bills). Checked when a config is loaded
/// (`translate::validate_provider`): 1 to 64 characters of `A-Z a-z 0-9 _ -`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OpenAiSettings {
    /// Sent as `OpenAI-Organization` (e.g. `org-...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// Sent as `OpenAI-Project` (e.g. `proj_...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// Responses API translation settings of a provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ResponsesSettings {
    /// What happens to OpenAI hosted tools (`web_search`, `file_search`, `code_interpreter`...)
    /// this provider does not have: dropped and named in `x-ai-gateway-dropped` (default), or
    /// the request refused with a 400.
    #[serde(default)]
    pub hosted_tools: HostedTools,
}

/// The policy for OpenAI hosted tools on a provider without them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HostedTools {
    /// Left out of the request and named in `x-ai-gateway-dropped` (what Codex CLI needs: it
    /// sends `web_search` by default).
    #[default]
    Drop,
    /// A 400 naming the tool.
    Reject,
}

/// Where a Bedrock provider lives. The region is configuration, never request data: it becomes
/// the host name `bedrock-runtime.{region}.amazonaws.com` and the signature scope, and is
/// validated (`^[a-z]{2}(-[a-z]+)+-\d$`) when the routing table is built.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BedrockSettings {
    pub region: String,
    /// Which Bedrock Runtime API serves chat requests; `auto` when absent, so documents written
    /// before the setting existed keep their meaning and serialise unchanged.
    #[serde(default, skip_serializing_if = "BedrockApi::is_auto")]
    pub api: BedrockApi,
}

/// The Bedrock Runtime API a provider's chat requests use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BedrockApi {
    /// InvokeModel with Anthropic's own Messages body for Claude model ids (`anthropic.claude`
    /// in the id, inference profiles and ARNs included), Converse for every other model.
    #[default]
    Auto,
    /// Always Converse / ConverseStream.
    Converse,
    /// Always InvokeModel / InvokeModelWithResponseStream with an Anthropic Messages body: for
    /// Claude behind ids that do not name it (application inference profile ARNs).
    Invoke,
}

impl BedrockApi {
    /// True for the default, which is not serialised.
    pub fn is_auto(&self) -> bool {
        *self == BedrockApi::Auto
    }
}

impl ProviderSettings {
    /// True when no member is set (the common case; not serialised then).
    pub fn is_empty(&self) -> bool {
        self == &ProviderSettings::default()
    }
}

/// How an Azure OpenAI resource is addressed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AzureSettings {
    /// Which URL form to call.
    #[serde(default)]
    pub url_form: AzureUrlForm,
    /// The `api-version` query parameter. Required by the deployment form; optional for the v1
    /// form (sent only when set, e.g. `preview`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
}

/// Azure OpenAI URL forms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AzureUrlForm {
    /// `/openai/deployments/{deployment}/chat/completions?api-version=...`; the route target's
    /// model is the deployment name.
    #[default]
    Deployment,
    /// `/openai/v1/chat/completions`; the route target's model goes in the body's `model`.
    V1,
}

/// A reference to a secret, never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CredentialSource {
    /// An environment variable of the Envoy process, resolved when the filter loads its config.
    /// For Bedrock it may hold the AWS credentials JSON document (see [`crate::aws::AwsCredentials`]).
    Env(String),
    /// AWS keys from three environment variables of the Envoy process, for Bedrock:
    /// `{"aws": {"access_key_id_env": ..., "secret_access_key_env": ..., "session_token_env": ...}}`.
    /// Temporary credentials (ECS task role) expire: refreshing them is the control plane's job,
    /// which pushes them in snapshots; environment variables suit static keys.
    Aws(AwsEnvCredential),
}

/// Names of the environment variables holding AWS credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsEnvCredential {
    pub access_key_id_env: String,
    pub secret_access_key_env: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token_env: Option<String>,
}

impl CredentialSource {
    /// Every environment variable this source reads (Envoy must expose them to the Wasm VM).
    pub fn env_vars(&self) -> Vec<&str> {
        match self {
            CredentialSource::Env(var) => vec![var.as_str()],
            CredentialSource::Aws(aws) => {
                let mut vars = vec![aws.access_key_id_env.as_str(), aws.secret_access_key_env.as_str()];
                vars.extend(aws.session_token_env.as_deref());
                vars
            }
        }
    }

    /// Resolves the secret string with `lookup` (the environment in the filter). AWS sources
    /// become the credentials JSON document. The error names variables, never values.
    pub fn resolve(&self, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
        let get = |var: &str| {
            lookup(var).filter(|v| !v.is_empty()).ok_or_else(|| format!("environment variable {var} is not set"))
        };
        match self {
            CredentialSource::Env(var) => get(var),
            CredentialSource::Aws(aws) => Ok(crate::aws::AwsCredentials {
                access_key_id: get(&aws.access_key_id_env)?,
                secret_access_key: get(&aws.secret_access_key_env)?,
                session_token: match &aws.session_token_env {
                    Some(var) => Some(get(var)?),
                    None => None,
                },
            }
            .to_secret()),
        }
    }
}

/// A public model name and the provider models that serve it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The model name clients send.
    pub model: String,
    pub targets: Vec<TargetConfig>,
    /// Retries, fallback order, timeouts and health. Without it the route picks one target by
    /// weight and Envoy does not retry (the behaviour before policies existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<RoutePolicy>,
}

/// Prefix of the Envoy cluster that carries a route with a policy (`envoy/render.py` generates
/// it; the downstream filter routes to it).
pub const ROUTE_CLUSTER_PREFIX: &str = "ai_gateway_route_";

impl RouteConfig {
    /// The Envoy cluster this route is sent to when it has a policy: an aggregate cluster over
    /// its targets' clusters in order, so Envoy's router retries and falls back. `None` means the
    /// downstream filter picks one target by weight.
    pub fn envoy_cluster(&self) -> Option<String> {
        self.policy.as_ref().map(|_| format!("{ROUTE_CLUSTER_PREFIX}{}", self.model))
    }
}

/// How a route survives failing providers. Envoy's router enforces it (retry policy, timeouts,
/// outlier detection on the targets' clusters); the filter translates each attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutePolicy {
    /// Extra attempts after the first one, on the same or the next target.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Which failures start another attempt.
    #[serde(default = "default_retry_on")]
    pub retry_on: Vec<RetryOn>,
    /// Time to the provider's response headers per attempt; `None`: only the total timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_try_timeout_ms: Option<u64>,
    /// Whole request, all attempts and the complete (streamed) response; `None`: the
    /// gateway's route timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Jittered exponential backoff between attempts (Envoy's defaults when unset: 25 ms / 250 ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_base_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_max_ms: Option<u64>,
    /// How attempts move between targets.
    #[serde(default)]
    pub fallback: Fallback,
    /// Consecutive failures (5xx, resets, connect failures) that take a target out of rotation.
    #[serde(default = "default_eject_after")]
    pub eject_after_failures: u32,
    /// How long an ejected target stays out before it is probed again.
    #[serde(default = "default_ejection_ms")]
    pub ejection_ms: u64,
}

/// Failures that may be retried. A stream whose headers already reached the client is never
/// retried, whatever this says (Envoy cannot, and the client would see two answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RetryOn {
    /// The provider throttled.
    #[serde(rename = "429")]
    TooManyRequests,
    /// Any 5xx answer, the gateway's own 502/503/504 included.
    #[serde(rename = "5xx")]
    ServerError,
    #[serde(rename = "connect_failure")]
    ConnectFailure,
    /// The connection was reset or closed before the response headers.
    #[serde(rename = "reset")]
    Reset,
    /// The per-attempt timeout fired.
    #[serde(rename = "timeout")]
    Timeout,
}

/// How attempts move between a route's targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// Targets in the listed order: the first healthy one serves, a failed attempt moves on to
    /// the next (Envoy priorities 0..n). Weights are ignored.
    #[default]
    Ordered,
}

fn default_retries() -> u32 {
    2
}

fn default_retry_on() -> Vec<RetryOn> {
    vec![RetryOn::TooManyRequests, RetryOn::ServerError, RetryOn::ConnectFailure, RetryOn::Reset]
}

fn default_eject_after() -> u32 {
    5
}

fn default_ejection_ms() -> u64 {
    30_000
}

/// One provider model behind a route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
