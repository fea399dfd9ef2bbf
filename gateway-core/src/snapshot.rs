//! The snapshot the control plane pushes to every filter: the routing config, the virtual keys
//! (hashes only) and the provider credentials the control plane resolved from their references.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::GatewayConfig;
use crate::error::{ErrorKind, GatewayError};

/// One versioned, self-contained configuration for the data plane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// Store revision this snapshot was built from; strictly increases with every change, so a
    /// filter compares one number per request and re-parses only when it moved.
    pub version: u64,
    /// Providers and routes. `credential` is left empty here: secrets travel in `credentials`.
    pub config: GatewayConfig,
    /// Provider secrets resolved by the control plane (environment or AWS Secrets Manager).
    #[serde(default)]
    pub credentials: Vec<ResolvedCredential>,
    /// Every virtual key, revoked ones included so a filter can tell why it refuses one.
    #[serde(default)]
    pub keys: Vec<VirtualKey>,
}

/// A provider's secret, resolved. `Debug` never prints the value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvedCredential {
    /// Name of the provider in `config.providers`.
    pub provider: String,
    pub secret: String,
}

impl fmt::Debug for ResolvedCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedCredential").field("provider", &self.provider).field("secret", &"<redacted>").finish()
    }
}

/// A virtual key as the data plane sees it: no secret, only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualKey {
    /// Lower-case hex SHA-256 of the whole secret string (`sk-gw-...`) as the client sends it.
    pub hash: String,
    pub name: String,
    /// Public model names this key may call; `"*"` allows every model.
    pub allowed_models: Vec<String>,
    /// Unix seconds after which the key is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    pub status: KeyStatus,
    /// Requests per minute this key may make (ADR 0008); absent: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    /// Tokens per minute (input + output) this key may use; absent: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    /// Spending cap per UTC day or month; absent: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<crate::pricing::BudgetLimit>,
    /// The key's identity across secret rotations (the hash of its first secret): rate-limit
    /// counters, usage and budgets belong to caller `key:<id>`, so the old and the new secret of
    /// a rotation share them. Absent: `hash` (a key never rotated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// Whether a key may still be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    Active,
    Revoked,
}

impl VirtualKey {
    /// True when `model` is in the allow list or the list contains `"*"`.
    pub fn allows_model(&self, model: &str) -> bool {
        self.allowed_models.iter().any(|m| m == "*" || m == model)
    }

    /// The caller this key counts as (`key:<id>`), the same for every secret of the key.
    pub fn caller(&self) -> String {
        format!("key:{}", self.id.as_deref().unwrap_or(&self.hash))
    }

    /// This key's rate limits.
    pub fn limits(&self) -> crate::ratelimit::Limits {
        crate::ratelimit::Limits { rpm: self.rpm, tpm: self.tpm }
    }
}

/// Why a virtual key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyDenied {
    #[error("invalid API key")]
    Unknown,
    #[error("API key has been revoked")]
    Revoked,
    #[error("API key has expired")]
    Expired,
    #[error("this API key may not use the requested model")]
    ModelNotAllowed,
}

impl KeyDenied {
    /// The client-visible error: 401 for a key that does not authenticate, 403 for a model the
    /// key may not use. Unknown, revoked and expired share one message so a caller cannot probe
    /// which keys exist; the `code` still helps an operator reading the client's logs.
    pub fn to_gateway_error(self) -> GatewayError {
        match self {
            KeyDenied::Unknown | KeyDenied::Revoked | KeyDenied::Expired => {
                let code = match self {
                    KeyDenied::Revoked => "key_revoked",
                    KeyDenied::Expired => "key_expired",
                    _ => "invalid_api_key",
                };
                GatewayError::new(ErrorKind::Authentication, "Incorrect or inactive API key provided.").with_code(code)
            }
            KeyDenied::ModelNotAllowed => GatewayError::new(ErrorKind::PermissionDenied, self.to_string())
                .with_param("model")
                .with_code("model_not_allowed"),
        }
    }
}

/// Virtual keys indexed by hash, built once per snapshot.
#[derive(Debug, Clone, Default)]
pub struct KeyIndex {
    keys: Vec<VirtualKey>,
    by_hash: HashMap<String, usize>,
}

impl KeyIndex {
    /// Indexes `keys`; when a hash repeats, the first entry wins (hashes of random secrets do not
    /// collide; this only keeps the index total).
    pub fn new(keys: Vec<VirtualKey>) -> Self {
        let mut by_hash = HashMap::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            by_hash.entry(k.hash.clone()).or_insert(i);
        }
        KeyIndex { keys, by_hash }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key with this hash, whatever its status.
    pub fn get(&self, hash_hex: &str) -> Option<&VirtualKey> {
        self.by_hash.get(hash_hex).and_then(|&i| self.keys.get(i))
    }

    /// Decides whether the key with this hash may call `model` at `now_unix` (seconds).
    pub fn authorize(&self, hash_hex: &str, model: &str, now_unix: u64) -> Result<&VirtualKey, KeyDenied> {
        let key = self.by_hash.get(hash_hex).and_then(|&i| self.keys.get(i)).ok_or(KeyDenied::Unknown)?;
        if key.status == KeyStatus::Revoked {
            return Err(KeyDenied::Revoked);
        }
        if key.expires_at.is_some_and(|t| now_unix >= t) {
            return Err(KeyDenied::Expired);
        }
        if !key.allows_model(model) {
            return Err(KeyDenied::ModelNotAllowed);
        }
        Ok(key)
    }
}

impl Snapshot {
    /// Parses a pushed snapshot.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Parses a pushed snapshot for serving: the objects that fail the shared validator (or do
    /// not even parse, e.g. a setting this filter does not know yet) are left out and returned
    /// with the reason, so one bad object never stops the rest, key revocations above all, from
    /// being applied. Only a document that is not a snapshot at all is an error.
    pub fn from_json_pruned(bytes: &[u8]) -> Result<(Self, Vec<crate::validate::Invalid>), serde_json::Error> {
        let (snapshot, mut rejected) = match Self::from_json(bytes) {
            Ok(s) => (s, Vec::new()),
            Err(strict) => lenient::parse(bytes).map_err(|_| strict)?,
        };
        let (snapshot, more) = crate::validate::prune_snapshot(snapshot);
        rejected.extend(more);
        Ok((snapshot, rejected))
    }

    /// The resolved secret of a provider, if the control plane pushed one.
    pub fn credential(&self, provider: &str) -> Option<&str> {
        self.credentials.iter().find(|c| c.provider == provider).map(|c| c.secret.as_str())
    }
}

/// Object-by-object parsing of a snapshot that does not parse as a whole.
mod lenient {
    use serde::de::DeserializeOwned;
    use serde::Deserialize;
    use serde_json::Value;

    use super::{ResolvedCredential, Snapshot, VirtualKey};
    use crate::config::{Defaults, GatewayConfig, Limits};
    use crate::validate::{shown, Invalid, ObjectKind};

    #[derive(Deserialize)]
    struct Doc {
        version: u64,
        config: Config,
        #[serde(default)]
        credentials: Vec<Value>,
        #[serde(default)]
        keys: Vec<Value>,
    }

    #[derive(Deserialize)]
    struct Config {
        #[serde(default)]
        version: u64,
        #[serde(default)]
        providers: Vec<Value>,
        #[serde(default)]
        routes: Vec<Value>,
        #[serde(default)]
        limits: Limits,
        #[serde(default)]
        defaults: Defaults,
        #[serde(default)]
        auth: crate::jwt::AuthConfig,
        #[serde(default)]
        prices: Vec<Value>,
    }

    fn each<T: DeserializeOwned>(
        values: Vec<Value>,
        kind: ObjectKind,
        name_member: &str,
        rejected: &mut Vec<Invalid>,
    ) -> Vec<T> {
        let mut out = Vec::with_capacity(values.len());
        for v in values {
            let name = match kind {
                ObjectKind::Price => format!(
                    "{}/{}",
                    v.get("provider").and_then(Value::as_str).unwrap_or("?"),
                    v.get("model").and_then(Value::as_str).unwrap_or("?")
                ),
                _ => v.get(name_member).and_then(Value::as_str).unwrap_or("?").to_owned(),
            };
            match serde_json::from_value::<T>(v) {
                Ok(t) => out.push(t),
                Err(e) => rejected.push(Invalid {
                    kind,
                    name: shown(&name),
                    field: String::new(),
                    reason: format!("unreadable: {e}"),
                }),
            }
        }
        out
    }

    /// The snapshot's readable objects and a rejection per unreadable one; config-wide members
    /// (limits, defaults, auth) must still parse.
    pub(super) fn parse(bytes: &[u8]) -> Result<(Snapshot, Vec<Invalid>), serde_json::Error> {
        let doc: Doc = serde_json::from_slice(bytes)?;
        let mut rejected = Vec::new();
        let providers = each(doc.config.providers, ObjectKind::Provider, "name", &mut rejected);
        let routes = each(doc.config.routes, ObjectKind::Route, "model", &mut rejected);
        let prices = each(doc.config.prices, ObjectKind::Price, "", &mut rejected);
        let keys: Vec<VirtualKey> = each(doc.keys, ObjectKind::Key, "name", &mut rejected);
        // A credential that does not parse is dropped quietly: its provider then sends none, and
        // naming it would put part of a secret document in a report.
        let credentials =
            doc.credentials.into_iter().filter_map(|v| serde_json::from_value::<ResolvedCredential>(v).ok()).collect();
        let config = GatewayConfig {
            version: doc.config.version,
            providers,
            routes,
            limits: doc.config.limits,
            defaults: doc.config.defaults,
            auth: doc.config.auth,
            prices,
        };
        Ok((Snapshot { version: doc.version, config, credentials, keys }, rejected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(hash: &str, models: &[&str], expires_at: Option<u64>, status: KeyStatus) -> VirtualKey {
        VirtualKey {
            hash: hash.into(),
            name: format!("k-{hash}"),
            allowed_models: models.iter().map(|m| m.to_string()).collect(),
            expires_at,
            status,
            rpm: None,
            tpm: None,
            budget: None,
            id: None,
        }
    }

    #[test]
    fn authorize_covers_every_refusal() {
        let idx = KeyIndex::new(vec![
            key("a", &["gpt-4o"], None, KeyStatus::Active),
            key("b", &["*"], Some(100), KeyStatus::Active),
            key("c", &["*"], None, KeyStatus::Revoked),
        ]);
        assert_eq!(idx.authorize("a", "gpt-4o", 0).map(|k| k.name.as_str()), Ok("k-a"));
        assert_eq!(idx.authorize("a", "claude", 0).err(), Some(KeyDenied::ModelNotAllowed));
        assert_eq!(idx.authorize("b", "anything", 99).map(|k| k.name.as_str()), Ok("k-b"));
        assert_eq!(idx.authorize("b", "anything", 100).err(), Some(KeyDenied::Expired));
        assert_eq!(idx.authorize("c", "gpt-4o", 0).err(), Some(KeyDenied::Revoked));
        assert_eq!(idx.authorize("zz", "gpt-4o", 0).err(), Some(KeyDenied::Unknown));
        assert_eq!(KeyDenied::Revoked.to_gateway_error().status(), 401);
        assert_eq!(KeyDenied::ModelNotAllowed.to_gateway_error().status(), 403);
    }

    #[test]
    fn rotated_secrets_share_one_caller() {
        let mut old = key("old", &["*"], Some(50), KeyStatus::Active);
        let mut new = key("new", &["*"], None, KeyStatus::Active);
        assert_eq!(new.caller(), "key:new");
        old.id = Some("first".into());
        new.id = Some("first".into());
        assert_eq!(old.caller(), new.caller());
        assert_eq!(new.caller(), "key:first");
        let idx = KeyIndex::new(vec![new, old]);
        assert!(idx.authorize("new", "m", 60).is_ok());
        assert!(idx.authorize("old", "m", 49).is_ok());
        assert_eq!(idx.authorize("old", "m", 50).err(), Some(KeyDenied::Expired));
    }

    #[test]
    fn pruned_parse_keeps_the_valid_part_of_an_unreadable_snapshot() {
        // A provider kind this filter does not know (a newer control plane), an azure provider
        // without api_version, and a revoked key: the revocation must still apply.
        let json = br#"{"version":5,"newer_member":1,"config":{"providers":[
                {"name":"o","kind":"openai","cluster":"c"},
                {"name":"x","kind":"future_kind","cluster":"c"},
                {"name":"az","kind":"azure_openai","cluster":"c"}],
              "routes":[{"model":"m","targets":[{"provider":"o","model":"gpt"}]},
                        {"model":"mx","targets":[{"provider":"x","model":"y"}]}]},
            "credentials":[{"provider":"o","secret":"s"},{"provider":"x","secret":"s2"}],
            "keys":[{"hash":"ab","name":"gone","allowed_models":["*"],"status":"revoked"},
                    {"hash":"cd","name":"k","allowed_models":["*"],"status":"active","colour":1}]}"#;
        assert!(Snapshot::from_json(json).is_err());
        let (s, rejected) = Snapshot::from_json_pruned(json).unwrap();
        assert_eq!(s.version, 5);
        assert_eq!(s.config.providers.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["o"]);
        assert_eq!(s.config.routes.iter().map(|r| r.model.as_str()).collect::<Vec<_>>(), ["m"]);
        assert_eq!(s.credentials.iter().map(|c| c.provider.as_str()).collect::<Vec<_>>(), ["o"]);
        let idx = KeyIndex::new(s.keys);
        assert_eq!(idx.authorize("ab", "m", 0).err(), Some(KeyDenied::Revoked));
        assert_eq!(idx.authorize("cd", "m", 0).err(), Some(KeyDenied::Unknown));
        let names: Vec<&str> = rejected.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["x", "k", "az", "mx"]);
        assert!(Snapshot::from_json_pruned(b"[1,2]").is_err());
    }

    #[test]
    fn debug_never_prints_a_secret() {
        let c = ResolvedCredential { provider: "openai".into(), secret: "sk-very-secret".into() };
        assert!(!format!("{c:?}").contains("sk-very-secret"));
    }

    #[test]
    fn snapshot_round_trips_and_is_strict() {
        let json = br#"{"version":7,"config":{"providers":[],"routes":[]},
            "credentials":[{"provider":"p","secret":"s"}],
            "keys":[{"hash":"h","name":"n","allowed_models":["*"],"status":"active"}]}"#;
        let s = Snapshot::from_json(json).expect("valid snapshot");
        assert_eq!(s.version, 7);
        assert_eq!(s.credential("p"), Some("s"));
        let again = Snapshot::from_json(&serde_json::to_vec(&s).expect("serializes")).expect("parses");
        assert_eq!(again, s);
        assert!(Snapshot::from_json(br#"{"version":1,"config":{"providers":[],"routes":[]},"extra":1}"#).is_err());
    }
}
