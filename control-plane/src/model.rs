//! The objects of the admin API (providers, routes, virtual keys), their validation, and the
//! error type every API failure is reported with.

use gateway_core::config::ProviderSettings;
use gateway_core::config::TargetConfig;
use gateway_core::config::{ProviderConfig, RouteConfig};
use gateway_core::pricing::{Budget, PriceConfig};
use gateway_core::snapshot::KeyStatus;
use gateway_core::validate::Invalid;
use gateway_core::ProviderKind;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::store::{now_unix, Record, StoreError};

/// The version an `If-Match` tag that is not one of ours expects: objects start at version 1, so
/// it never matches, and the store's answer (412, or 404 for a missing object) comes after the
/// request was otherwise checked.
pub const NO_VERSION: u64 = 0;

/// A failed API call: HTTP status plus OpenAI's error shape, `param` naming the bad field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub param: Option<String>,
    pub code: &'static str,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), param: None, code }
    }

    /// A 400 naming the offending field.
    pub fn field(param: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError { status: 400, message: message.into(), param: Some(param.into()), code: "invalid_field" }
    }

    /// OpenAI's `error.type` for the status.
    pub fn error_type(&self) -> &'static str {
        match self.status {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            409 | 412 => "conflict_error",
            s if s >= 500 => "server_error",
            _ => "invalid_request_error",
        }
    }

    /// `{"error":{"message","type","param","code"}}`.
    pub fn body(&self) -> Value {
        let body = ErrorResponse {
            error: ErrorObject {
                message: self.message.clone(),
                r#type: self.error_type(),
                param: self.param.clone(),
                code: self.code,
            },
        };
        serde_json::to_value(body).unwrap_or(Value::Null)
    }
}

/// The body of every error answer: OpenAI's error shape, so OpenAI-style clients show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorResponse {
    pub error: ErrorObject,
}

/// What went wrong, for people (`message`) and programs (`type`, `code`, `param`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorObject {
    /// Human-readable explanation; names the offending value where it helps.
    pub message: String,
    /// OpenAI's error class, from the HTTP status.
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "invalid_request_error", pattern = "^(authentication_error|permission_error|not_found_error|conflict_error|server_error|invalid_request_error)$")]
    pub r#type: &'static str,
    /// The field, query parameter or path segment at fault (`targets[0].weight`, `limit`, `body`,
    /// `name`); null when the request as a whole is at fault.
    pub param: Option<String>,
    /// Machine-readable reason: `invalid_field`, `unknown_parameter`, `duplicate_parameter`,
    /// `invalid_path`, `request_too_large`, `unauthorized`, `forbidden`, `not_found`,
    /// `already_exists`, `in_use`, `version_mismatch`, `key_revoked`, `busy`, `snapshot_too_large`,
    /// `method_not_allowed`, `store_unavailable`, `not_ready`, `internal`.
    #[schema(value_type = String, example = "invalid_field")]
    pub code: &'static str,
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::AlreadyExists { .. } => ApiError::new(409, "already_exists", e.to_string()),
            StoreError::NotFound { .. } => ApiError::new(404, "not_found", e.to_string()),
            StoreError::VersionMismatch { kind, name, expected: NO_VERSION, current } => ApiError::new(
                412,
                "version_mismatch",
                format!("If-Match is not an ETag of {kind} '{name}' (its current one is \"{current}\")"),
            ),
            StoreError::VersionMismatch { .. } => ApiError::new(412, "version_mismatch", e.to_string()),
            StoreError::Backend(_) => {
                tracing::error!(error = %e, "store failure");
                ApiError::new(503, "store_unavailable", "the store is unavailable; retry later")
            }
        }
    }
}

/// Parses a JSON body; a failure is a 400 whose `param` is the path of the bad field, the missing
/// field's name, or `body` for a syntax error (the message gives its line and column).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let param = match inner.classify() {
            serde_json::error::Category::Data => match (missing_field(&inner.to_string()), path.as_str()) {
                (Some(f), ".") => f,
                (Some(f), p) => format!("{p}.{f}"),
                (None, ".") => "body".to_string(),
                (None, p) => p.to_string(),
            },
            // Syntax, premature end, I/O: the body as a whole; the message has line and column.
            _ => "body".to_string(),
        };
        ApiError::field(param, format!("invalid request body: {inner}"))
    })?;
    // Trailing characters after the value are a syntax error too.
    de.end().map_err(|e| ApiError::field("body", format!("invalid request body: {e}")))?;
    Ok(value)
}

/// The field named by serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next().filter(|f| !f.is_empty()).map(String::from)
}

/// Names are ids in URLs, storage keys and Envoy metadata: the shared validator's alphabet
/// ([`gateway_core::validate::check_name`]).
pub fn validate_name(param: &str, name: &str) -> Result<(), ApiError> {
    gateway_core::validate::check_name(name).map_err(|reason| ApiError::field(param, format!("'{param}' {reason}")))
}

/// The API error for an object the shared validator refused: 400, `param` = `prefix` + field.
pub fn invalid_field(prefix: &str, e: Invalid) -> ApiError {
    let param =
        if e.field.is_empty() { prefix.trim_end_matches('.').to_string() } else { format!("{prefix}{}", e.field) };
    let message = format!("{}: {}", if e.field.is_empty() { "invalid object" } else { e.field.as_str() }, e.reason);
    let mut err = ApiError::field(param, message);
    if err.param.as_deref() == Some("") {
        err.param = None;
    }
    err
}

/// A provider account as managed over the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    #[serde(default)]
    pub name: String,
    pub kind: ProviderKind,
    /// Envoy cluster that reaches the provider.
    pub cluster: String,
    /// `env:NAME` or an AWS Secrets Manager ARN; never the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// Kind-specific settings (Azure URL form and API version, ...), passed to filters as is.
    #[serde(default, skip_serializing_if = "ProviderSettings::is_empty")]
    pub settings: ProviderSettings,
}

/// Where a provider's secret is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialRef {
    Env(String),
    SecretsManager(String),
}

impl CredentialRef {
    /// `text` with this reference (and an environment reference's bare variable name) replaced
    /// by `<credential reference>`: log lines name the provider, never the reference (ADR 0021).
    pub fn redact_in(&self, text: &str) -> String {
        let forms: Vec<String> = match self {
            CredentialRef::Env(var) => vec![format!("env:{var}"), var.clone()],
            CredentialRef::SecretsManager(arn) => vec![arn.clone()],
        };
        forms.iter().fold(text.to_string(), |t, f| t.replace(f.as_str(), "<credential reference>"))
    }

    /// Parses a reference; anything else (for instance a pasted API key) is rejected so that a
    /// secret can never end up stored in plaintext.
    pub fn parse(s: &str) -> Option<Self> {
        if let Some(var) = s.strip_prefix("env:") {
            let mut chars = var.chars();
            let first_ok = chars.next().is_some_and(|c| c.is_ascii_uppercase() || c == '_');
            if first_ok && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') && var.len() <= 128 {
                return Some(CredentialRef::Env(var.to_string()));
            }
            return None;
        }
        let parts: Vec<&str> = s.split(':').collect();
        // arn:aws:secretsmanager:<region>:<account>:secret:<name>
        if parts.len() >= 7
            && parts.first() == Some(&"arn")
            && parts.get(1).is_some_and(|p| p.starts_with("aws"))
            && parts.get(2) == Some(&"secretsmanager")
            && parts.get(4).is_some_and(|a| a.len() == 12 && a.chars().all(|c| c.is_ascii_digit()))
            && parts.get(5) == Some(&"secret")
        {
            return Some(CredentialRef::SecretsManager(s.to_string()));
        }
        None
    }
}

impl ProviderSpec {
    /// The provider as a snapshot carries it (the credential travels resolved, separately).
    pub fn to_config(&self) -> ProviderConfig {
        ProviderConfig {
            name: self.name.clone(),
            kind: self.kind,
            cluster: self.cluster.clone(),
            credential: None,
            path_prefix: self.path_prefix.clone(),
            settings: self.settings.clone(),
        }
    }

    /// The shared validator's checks of the provider, plus the form of the credential reference
    /// (which only the control plane sees).
    pub fn validate(&self, prefix: &str) -> Result<(), ApiError> {
        gateway_core::validate::validate_provider(&self.to_config()).map_err(|e| invalid_field(prefix, e))?;
        if let Some(c) = &self.credential {
            if CredentialRef::parse(c).is_none() {
                return Err(ApiError::field(
                    format!("{prefix}credential"),
                    "credential must be a reference, 'env:VAR_NAME' or 'arn:aws:secretsmanager:<region>:<account>:secret:<name>', never the secret itself",
                ));
            }
        }
        Ok(())
    }
}

/// A public model name and its provider targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    #[serde(default)]
    pub model: String,
    pub targets: Vec<TargetConfig>,
}

impl RouteSpec {
    /// The route as a snapshot carries it (the REST API offers no policies).
    pub fn to_config(&self) -> RouteConfig {
        RouteConfig { model: self.model.clone(), targets: self.targets.clone(), policy: None }
    }

    /// The shared validator's checks; `providers` holds the providers the targets may name.
    pub fn validate(&self, prefix: &str, providers: &[ProviderConfig]) -> Result<(), ApiError> {
        gateway_core::validate::validate_route(&self.to_config(), providers).map_err(|e| invalid_field(prefix, e))
    }
}

/// A virtual key as stored (no secret, its hash lives beside the document).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    #[serde(default)]
    pub name: String,
    pub owner: String,
    pub allowed_models: Vec<String>,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    #[serde(default = "active")]
    pub status: KeyStatus,
    /// Requests per minute (ADR 0008); absent: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    /// Tokens per minute, input plus output; absent: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    /// Spending cap per UTC day or month; absent: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    /// Set by `POST /v1/keys/{name}/rotate` only; ignored in PUT bodies, refused at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<KeyRotation>,
}

/// The state of a key's last secret rotation. The hashes are store-internal: API views omit them
/// (see [`record_view`]), so a GET → edit → PUT round-trip still parses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRotation {
    /// SHA-256 of the current secret (the record's `key_hash` stays the first secret's, the key's
    /// stable identity, caller `key:<key_hash>`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schema(ignore)]
    pub secret_hash: String,
    /// SHA-256 of the secret it replaced, valid until `previous_expires_at`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schema(ignore)]
    pub previous_hash: String,
    /// Unix seconds of the rotation.
    pub rotated_at: u64,
    /// Unix seconds at which the previous secret stops working (rotation time + grace).
    pub previous_expires_at: u64,
}

/// Body of `POST /v1/keys/{name}/rotate`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// How long the old secret keeps working; default [`DEFAULT_GRACE_SECONDS`].
    #[serde(default)]
    pub grace_seconds: Option<u64>,
}

/// Grace period of the old secret when the rotate request names none: one hour.
pub const DEFAULT_GRACE_SECONDS: u64 = 3600;
/// Longest grace period: 30 days. Longer is a second key, not a rotation.
pub const MAX_GRACE_SECONDS: u64 = 30 * 86_400;

impl RotateRequest {
    /// The grace period in seconds, within 0 (cut the old secret off now) ..= 30 days.
    pub fn grace(&self) -> Result<u64, ApiError> {
        let grace = self.grace_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
        if grace > MAX_GRACE_SECONDS {
            return Err(ApiError::field(
                "grace_seconds",
                format!("grace_seconds must be from 0 to {MAX_GRACE_SECONDS} (30 days)"),
            ));
        }
        Ok(grace)
    }
}

fn active() -> KeyStatus {
    KeyStatus::Active
}

impl KeySpec {
    /// `creating` additionally requires a future expiry.
    pub fn validate(&self, creating: bool) -> Result<(), ApiError> {
        gateway_core::validate::validate_key_grants(&self.name, &self.allowed_models, self.rpm, self.tpm)
            .map_err(|e| invalid_field("", e))?;
        gateway_core::validate::check_owner(&self.owner)
            .map_err(|reason| ApiError::field("owner", format!("owner {reason}")))?;
        if creating && self.expires_at.is_some_and(|t| t <= now_unix()) {
            return Err(ApiError::field("expires_at", "expires_at must be in the future (Unix seconds)"));
        }
        if let Some(b) = &self.budget {
            validate_budget("budget.", b)?;
        }
        if creating && self.status != KeyStatus::Active {
            return Err(ApiError::field("status", "a new key is active"));
        }
        if creating && self.rotation.is_some() {
            return Err(ApiError::field("rotation", "rotation is set by POST /v1/keys/{name}/rotate, not at creation"));
        }
        Ok(())
    }
}

/// A budget's cap must be a positive number of USD within range; the error names `limit_usd`.
pub fn validate_budget(prefix: &str, b: &Budget) -> Result<(), ApiError> {
    let field = format!("{prefix}limit_usd");
    match b.limit_pusd() {
        // Zero would refuse every request; revoking the key says that more clearly.
        Ok(0) => Err(ApiError::field(field, "limit_usd must be greater than 0 (omit budget for no limit)")),
        Ok(_) => Ok(()),
        Err(e) => Err(ApiError::field(field, e.to_string())),
    }
}

/// One row of the price table as managed over the API: a [`PriceConfig`] plus its name, which is
/// always `<provider>/<model>` so that a provider model can have only one price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceSpec {
    #[serde(default)]
    pub name: String,
    pub provider: String,
    pub model: String,
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_per_mtok: Option<f64>,
}

impl PriceSpec {
    /// The name a price row is stored under.
    pub fn name_for(provider: &str, model: &str) -> String {
        format!("{provider}/{model}")
    }

    /// The gateway-core row the snapshot carries.
    pub fn to_config(&self) -> PriceConfig {
        PriceConfig {
            provider: self.provider.clone(),
            model: self.model.clone(),
            input_per_mtok: self.input_per_mtok,
            output_per_mtok: self.output_per_mtok,
            cache_read_per_mtok: self.cache_read_per_mtok,
            cache_write_per_mtok: self.cache_write_per_mtok,
        }
    }

    /// Checks names and prices (`PriceConfig::compile`) and fills in or checks `name`.
    pub fn validate(&mut self, prefix: &str) -> Result<(), ApiError> {
        gateway_core::validate::validate_price(&self.to_config()).map_err(|e| invalid_field(prefix, e))?;
        let expected = Self::name_for(&self.provider, &self.model);
        if self.name.is_empty() {
            self.name = expected;
        } else if self.name != expected {
            return Err(ApiError::field(
                format!("{prefix}name"),
                format!("a price's name is '<provider>/<model>', here '{expected}'"),
            ));
        }
        Ok(())
    }
}

/// Lower-case hex SHA-256: how a virtual key's secret is stored and looked up.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new virtual key secret: `sk-gw-` and 256 random bits.
pub fn generate_secret(prefix: &str) -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::new(500, "internal", format!("no randomness: {e}")))?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

/// The API view of a record: the document plus `version`, `created_at` and `updated_at`.
pub fn record_view(rec: &Record) -> Value {
    let mut v = rec.doc.clone();
    if let Some(rotation) = v.get_mut("rotation").and_then(Value::as_object_mut) {
        rotation.remove("secret_hash");
        rotation.remove("previous_hash");
    }
    if let Some(obj) = v.as_object_mut() {
        obj.insert("version".into(), json!(rec.version));
        obj.insert("created_at".into(), json!(rec.created_at));
        obj.insert("updated_at".into(), json!(rec.updated_at));
    }
    v
}

/// The HTTP entity tag of a version.
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_references_only() {
        assert_eq!(CredentialRef::parse("env:OPENAI_API_KEY"), Some(CredentialRef::Env("OPENAI_API_KEY".into())));
        assert!(CredentialRef::parse("arn:aws:secretsmanager:eu-west-1:123456789012:secret:openai-AbCdEf").is_some());
        for bad in [
            "sk-proj-abc",
            "env:",
            "env:lower",
            "env:A-B",
            "arn:aws:s3:::bucket",
            "arn:aws:secretsmanager:r:1:secret:x",
        ] {
            assert!(CredentialRef::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn bedrock_api_setting_is_accepted_validated_and_optional() {
        use gateway_core::config::BedrockApi;
        let spec = parse_json::<ProviderSpec>(
            br#"{"name":"b","kind":"bedrock","cluster":"c","settings":{"bedrock":{"region":"us-east-1","api":"invoke"}}}"#,
        )
        .unwrap();
        assert_eq!(spec.settings.bedrock.as_ref().map(|b| b.api), Some(BedrockApi::Invoke));
        assert!(serde_json::to_string(&spec).unwrap().contains(r#""api":"invoke""#));
        let old = parse_json::<ProviderSpec>(
            br#"{"name":"b","kind":"bedrock","cluster":"c","settings":{"bedrock":{"region":"us-east-1"}}}"#,
        )
        .unwrap();
        assert_eq!(old.settings.bedrock.as_ref().map(|b| b.api), Some(BedrockApi::Auto));
        assert!(!serde_json::to_string(&old).unwrap().contains("api"));
        let e = parse_json::<ProviderSpec>(
            br#"{"name":"b","kind":"bedrock","cluster":"c","settings":{"bedrock":{"region":"us-east-1","api":"chat"}}}"#,
        )
        .unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("chat") || e.message.contains("variant"), "{}", e.message);
    }

    #[test]
    fn parse_errors_name_the_field() {
        let e = parse_json::<RouteSpec>(br#"{"model":"m","targets":[{"provider":"p","model":"x","weight":"heavy"}]}"#)
            .unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.param.as_deref(), Some("targets[0].weight"));
        let e = parse_json::<ProviderSpec>(br#"{"name":"p","kind":"openai","cluster":"c","colour":1}"#).unwrap_err();
        assert!(e.message.contains("colour"), "{}", e.message);
    }

    #[test]
    fn secrets_are_random_and_hashed() {
        let a = generate_secret("sk-gw-").unwrap();
        let b = generate_secret("sk-gw-").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("sk-gw-") && a.len() == 6 + 64);
        assert_eq!(hash_secret("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
