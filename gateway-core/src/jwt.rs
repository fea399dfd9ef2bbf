//! JWT callers (OAuth2 client_credentials, Cognito-style access tokens): the `auth.jwt` config
//! section and the scope → model policy. Envoy's `jwt_authn` verifies signature, issuer, expiry
//! and audience before the filter runs; this module only decides what a verified caller may do.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, GatewayError};

/// Authentication settings beyond virtual keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// JWT callers; `None` accepts no JWTs (virtual keys only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtConfig>,
}

impl AuthConfig {
    /// True when nothing is configured (not serialised then).
    pub fn is_empty(&self) -> bool {
        self == &AuthConfig::default()
    }
}

/// One trusted token issuer and what its callers may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// Exact `iss` claim (Cognito: `https://cognito-idp.<region>.amazonaws.com/<pool id>`).
    pub issuer: String,
    /// Accepted `aud` values; empty skips the check. Cognito access tokens carry no `aud`
    /// (they have `client_id`), so Cognito setups leave this empty and use `client_ids`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// Where the signing keys come from.
    pub jwks: JwksSource,
    /// Allowed `client_id` claims; empty allows every client of the issuer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_ids: Vec<String>,
    /// Scope → models its holders may call (`"*"`: all). A caller may call the union over its
    /// scopes.
    #[serde(default)]
    pub scopes: BTreeMap<String, Vec<String>>,
    /// `client_id` → models, replacing the scope policy for that client.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub clients: BTreeMap<String, Vec<String>>,
    /// `client_id` → rate limits and budget (`"*"`: every client without its own entry).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, CallerLimits>,
}

/// Rate limits and budget of one JWT client, as configured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerLimits {
    /// Requests per minute; absent: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    /// Tokens per minute (input + output); absent: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    /// Spending cap; absent: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<crate::pricing::Budget>,
}

/// The JSON Web Key Set: inline (tests, local runs) or fetched by Envoy from a URL (Cognito:
/// `https://cognito-idp.<region>.amazonaws.com/<pool id>/.well-known/jwks.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum JwksSource {
    /// The JWKS document itself, as a JSON string.
    Local(String),
    /// An `http(s)://` URL Envoy fetches and caches.
    Remote(RemoteJwks),
}

/// A JWKS URL and how long Envoy caches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteJwks {
    pub uri: String,
    #[serde(default = "default_cache_seconds")]
    pub cache_seconds: u64,
}

fn default_cache_seconds() -> u64 {
    600
}

/// A caller whose token Envoy verified: the claims the policy reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JwtCaller {
    /// `client_id` (Cognito access tokens), else `sub`.
    pub client_id: String,
    /// The space-separated `scope` claim, split.
    pub scopes: Vec<String>,
}

impl JwtCaller {
    /// From the verified claims; `scope` is OAuth2's space-separated list.
    pub fn new(client_id: Option<&str>, sub: Option<&str>, scope: Option<&str>) -> Self {
        JwtCaller {
            client_id: client_id.or(sub).unwrap_or("").to_owned(),
            scopes: scope.unwrap_or("").split_ascii_whitespace().map(str::to_owned).collect(),
        }
    }
}

impl JwtConfig {
    /// The limits of `client_id`: its own entry, else the `"*"` entry, else none.
    pub fn limits_for(&self, client_id: &str) -> Option<&CallerLimits> {
        self.limits.get(client_id).or_else(|| self.limits.get("*"))
    }

    /// 401 when the client is not on the allow list (same message as any bad credential).
    pub fn authenticate(&self, caller: &JwtCaller) -> Result<(), GatewayError> {
        if self.client_ids.is_empty() || self.client_ids.iter().any(|c| c == &caller.client_id) {
            return Ok(());
        }
        Err(GatewayError::new(ErrorKind::Authentication, "The token's client is not allowed to use this gateway.")
            .with_code("invalid_client"))
    }

    /// 403 `model_not_allowed` unless the client's override or one of its scopes allows `model`.
    pub fn authorize(&self, caller: &JwtCaller, model: &str) -> Result<(), GatewayError> {
        let allows = |models: &Vec<String>| models.iter().any(|m| m == "*" || m == model);
        let allowed = match self.clients.get(&caller.client_id) {
            Some(models) => allows(models),
            None => caller.scopes.iter().filter_map(|s| self.scopes.get(s)).any(allows),
        };
        if allowed {
            return Ok(());
        }
        Err(GatewayError::new(ErrorKind::PermissionDenied, "The token's scopes do not allow the requested model.")
            .with_param("model")
            .with_code("model_not_allowed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> JwtConfig {
        serde_json::from_str(
            r#"{"issuer":"https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc",
                "jwks":{"remote":{"uri":"https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc/.well-known/jwks.json"}},
                "scopes":{"gateway/claude":["claude-sonnet"],"gateway/all":["*"]},
                "clients":{"batch":["gpt-mini"]}}"#,
        )
        .unwrap()
    }

    #[test]
    fn scopes_grant_the_union_and_overrides_replace_them() {
        let c = cfg();
        let claude = JwtCaller::new(Some("svc"), None, Some("openid gateway/claude"));
        assert!(c.authorize(&claude, "claude-sonnet").is_ok());
        let denied = c.authorize(&claude, "gpt-mini").unwrap_err();
        assert_eq!((denied.status(), denied.code.as_deref()), (403, Some("model_not_allowed")));
        let all = JwtCaller::new(Some("svc"), None, Some("gateway/claude gateway/all"));
        assert!(c.authorize(&all, "anything").is_ok());
        let none = JwtCaller::new(Some("svc"), None, None);
        assert!(c.authorize(&none, "claude-sonnet").is_err());
        // The override wins even over a wildcard scope.
        let batch = JwtCaller::new(Some("batch"), None, Some("gateway/all"));
        assert!(c.authorize(&batch, "gpt-mini").is_ok());
        assert!(c.authorize(&batch, "claude-sonnet").is_err());
        assert!(matches!(c.jwks, JwksSource::Remote(RemoteJwks { cache_seconds: 600, .. })));
    }

    #[test]
    fn client_allow_list_and_sub_fallback() {
        let mut c = cfg();
        assert!(c.authenticate(&JwtCaller::new(None, None, None)).is_ok());
        c.client_ids = vec!["svc".to_owned()];
        assert!(c.authenticate(&JwtCaller::new(Some("svc"), None, None)).is_ok());
        assert!(c.authenticate(&JwtCaller::new(None, Some("svc"), None)).is_ok());
        assert_eq!(c.authenticate(&JwtCaller::new(Some("other"), Some("svc"), None)).unwrap_err().status(), 401);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let bad = r#"{"issuer":"i","jwks":{"local":"{}"},"scope":{}}"#;
        assert!(serde_json::from_slice::<JwtConfig>(bad.as_bytes()).is_err());
        let ok: AuthConfig =
            serde_json::from_str(r#"{"jwt":{"issuer":"i","jwks":{"local":"{\"keys\":[]}"}}}"#).unwrap();
        assert!(!ok.is_empty());
        assert!(AuthConfig::default().is_empty());
    }
}
