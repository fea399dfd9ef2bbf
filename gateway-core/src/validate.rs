//! The one validator of configuration objects (ADR "shared validator"): every check a filter
//! applies to a provider, route, virtual key or price before it serves it. The control plane runs
//! exactly these functions before it accepts a write, so nothing the API accepts can be refused
//! by an Envoy; the filter runs them on every snapshot and leaves out the objects that fail (and
//! the routes that depend on them) instead of refusing the whole snapshot, so one bad object can
//! never stop a key revocation from reaching the data plane.
//!
//! Errors are [`Invalid`]: the object, the field (relative to the object, e.g.
//! `settings.azure.api_version` or `targets[0].model`) and a reason safe to show an operator.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::{CredentialSource, GatewayConfig, ProviderConfig, ProviderKind, RouteConfig};
use crate::pricing::PriceConfig;
use crate::snapshot::{Snapshot, VirtualKey};

/// Longest name (provider, cluster, route model, target model, key name, allowed model).
pub const MAX_NAME_LEN: usize = 128;
/// Longest key owner.
pub const MAX_OWNER_LEN: usize = 256;
/// Most entries in a key's `allowed_models` (`"*"` allows every model).
pub const MAX_ALLOWED_MODELS: usize = 1000;
/// Most targets of one route.
pub const MAX_TARGETS: usize = 64;
/// Longest provider `path_prefix`.
pub const MAX_PATH_PREFIX_LEN: usize = 256;
/// Longest environment variable name in a credential reference.
pub const MAX_ENV_NAME_LEN: usize = 128;
/// Largest snapshot the control plane lets its objects grow to (serialised JSON). Writes that
/// would pass it are refused; a snapshot is pushed whole to every Envoy on every change.
pub const MAX_SNAPSHOT_BYTES: usize = 8 * 1024 * 1024;
/// Longest virtual key hash or id accepted in a snapshot.
const MAX_HASH_LEN: usize = 128;

/// The kind of a configuration object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Provider,
    Route,
    Key,
    Price,
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ObjectKind::Provider => "provider",
            ObjectKind::Route => "route",
            ObjectKind::Key => "key",
            ObjectKind::Price => "price",
        })
    }
}

/// One object refused, and why. Never holds a secret: credentials are references or travel
/// outside the objects validated here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[error("{kind} '{name}': {field}: {reason}")]
pub struct Invalid {
    pub kind: ObjectKind,
    /// The object's name (route: its model), escaped and shortened for display.
    pub name: String,
    /// The offending field, relative to the object; empty for the object as a whole.
    pub field: String,
    pub reason: String,
}

impl Invalid {
    fn new(kind: ObjectKind, name: &str, field: impl Into<String>, reason: impl Into<String>) -> Self {
        Invalid { kind, name: shown(name), field: field.into(), reason: reason.into() }
    }
}

/// A value as it may appear in a message: control characters escaped, at most 160 characters.
pub fn shown(value: &str) -> String {
    let mut out: String = value.chars().take(MAX_NAME_LEN + 32).flat_map(char::escape_default).collect();
    if value.chars().count() > MAX_NAME_LEN + 32 {
        out.push_str("...");
    }
    out
}

/// Refuses control characters (C0, DEL, C1): they break logs, headers and terminals.
pub fn check_no_control(value: &str) -> Result<(), String> {
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(())
}

/// Names are ids in URLs, storage keys, Envoy cluster names and metadata: 1 to
/// [`MAX_NAME_LEN`] letters, digits and `- _ . : / @`, not starting with `.` or `/`, and no `.` or
/// `..` path segment.
pub fn check_name(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > MAX_NAME_LEN {
        return Err(format!("must be 1 to {MAX_NAME_LEN} characters"));
    }
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/' | '@');
    if !value.chars().all(ok_char) || value.starts_with(['.', '/']) {
        return Err("may contain only letters, digits and - _ . : / @, and must not start with . or /".to_owned());
    }
    if value.split('/').any(|s| s == "." || s == "..") {
        return Err("must not contain a '.' or '..' path segment".to_owned());
    }
    Ok(())
}

/// A provider `path_prefix`: starts with `/`, at most [`MAX_PATH_PREFIX_LEN`] characters of
/// letters, digits and `/ - . _ ~ % @ : +` (no query, fragment, space or control character), and
/// no `.` or `..` segment.
pub fn check_path_prefix(value: &str) -> Result<(), String> {
    if !value.starts_with('/') || value.len() > MAX_PATH_PREFIX_LEN {
        return Err(format!("must start with '/' and be at most {MAX_PATH_PREFIX_LEN} characters"));
    }
    let ok_char =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '.' | '_' | '~' | '%' | '@' | ':' | '+');
    if !value.chars().all(ok_char) {
        return Err(
            "may contain only letters, digits and / - . _ ~ % @ : + (no query, fragment, space or control characters)"
                .to_owned(),
        );
    }
    if value.split('/').any(|s| s == "." || s == "..") {
        return Err("must not contain a '.' or '..' path segment".to_owned());
    }
    Ok(())
}

/// An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`, at most [`MAX_ENV_NAME_LEN`].
fn check_env_name(value: &str) -> Result<(), String> {
    let mut chars = value.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') || value.len() > MAX_ENV_NAME_LEN {
        return Err(format!(
            "must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*, at most {MAX_ENV_NAME_LEN})"
        ));
    }
    Ok(())
}

/// Every check of one provider on its own.
pub fn validate_provider(p: &ProviderConfig) -> Result<(), Invalid> {
    let bad = |field: &str, reason: String| Invalid::new(ObjectKind::Provider, &p.name, field, reason);
    check_name(&p.name).map_err(|r| bad("name", r))?;
    check_name(&p.cluster).map_err(|r| bad("cluster", r))?;
    if let Some(prefix) = &p.path_prefix {
        check_path_prefix(prefix).map_err(|r| bad("path_prefix", r))?;
    }
    match &p.credential {
        None => {}
        Some(CredentialSource::Env(var)) => check_env_name(var).map_err(|r| bad("credential.env", r))?,
        Some(CredentialSource::Aws(aws)) => {
            check_env_name(&aws.access_key_id_env).map_err(|r| bad("credential.aws.access_key_id_env", r))?;
            check_env_name(&aws.secret_access_key_env).map_err(|r| bad("credential.aws.secret_access_key_env", r))?;
            if let Some(t) = &aws.session_token_env {
                check_env_name(t).map_err(|r| bad("credential.aws.session_token_env", r))?;
            }
        }
    }
    // URL parts from settings are checked now, not at the first request.
    if let Err(reason) = crate::translate::validate_provider(p) {
        let field = match p.kind {
            ProviderKind::AzureOpenai => "settings.azure.api_version",
            ProviderKind::Bedrock => "settings.bedrock.region",
            _ => "settings",
        };
        return Err(bad(field, reason));
    }
    Ok(())
}

/// Every check of one route. `providers` must hold every provider the route's targets name
/// (more is fine); a target naming another provider is refused.
pub fn validate_route(route: &RouteConfig, providers: &[ProviderConfig]) -> Result<(), Invalid> {
    let bad = |field: String, reason: String| Invalid::new(ObjectKind::Route, &route.model, field, reason);
    check_name(&route.model).map_err(|r| bad("model".into(), r))?;
    if route.targets.is_empty() || route.targets.len() > MAX_TARGETS {
        return Err(bad("targets".into(), format!("a route needs 1 to {MAX_TARGETS} targets")));
    }
    if !route.targets.iter().any(|t| t.weight > 0) {
        return Err(bad("targets".into(), "at least one target needs a positive weight".into()));
    }
    for (i, t) in route.targets.iter().enumerate() {
        let Some(provider) = providers.iter().find(|p| p.name == t.provider) else {
            return Err(bad(format!("targets[{i}].provider"), format!("unknown provider '{}'", shown(&t.provider))));
        };
        check_name(&t.model).map_err(|r| bad(format!("targets[{i}].model"), r))?;
        crate::translate::validate_target(provider, &t.model).map_err(|r| bad(format!("targets[{i}].model"), r))?;
    }
    if let Some(policy) = &route.policy {
        crate::routing::validate_policy(route, policy, providers).map_err(|r| bad("policy".into(), r))?;
    }
    Ok(())
}

/// A key owner: 1 to [`MAX_OWNER_LEN`] characters, not blank, no control characters.
pub fn check_owner(owner: &str) -> Result<(), String> {
    if owner.trim().is_empty() || owner.chars().count() > MAX_OWNER_LEN {
        return Err(format!("must be 1 to {MAX_OWNER_LEN} characters"));
    }
    check_no_control(owner)
}

/// What a virtual key grants: its name, its models (at most [`MAX_ALLOWED_MODELS`], each a name
/// or `"*"`) and positive limits. The control plane checks these on the key it stores; the
/// filter on the key it receives.
pub fn validate_key_grants(
    name: &str,
    allowed_models: &[String],
    rpm: Option<u64>,
    tpm: Option<u64>,
) -> Result<(), Invalid> {
    let bad = |field: String, reason: String| Invalid::new(ObjectKind::Key, name, field, reason);
    check_name(name).map_err(|r| bad("name".into(), r))?;
    if allowed_models.is_empty() || allowed_models.len() > MAX_ALLOWED_MODELS {
        return Err(bad("allowed_models".into(), format!("list 1 to {MAX_ALLOWED_MODELS} models, or \"*\" for all")));
    }
    for (i, m) in allowed_models.iter().enumerate() {
        if m != "*" {
            check_name(m).map_err(|r| bad(format!("allowed_models[{i}]"), r))?;
        }
    }
    // Zero would refuse every request; revoking the key says that more clearly.
    if rpm == Some(0) {
        return Err(bad("rpm".into(), "rpm must be at least 1 (omit it for no limit)".into()));
    }
    if tpm == Some(0) {
        return Err(bad("tpm".into(), "tpm must be at least 1 (omit it for no limit)".into()));
    }
    Ok(())
}

/// Every check of one virtual key as a snapshot carries it.
pub fn validate_key(key: &VirtualKey) -> Result<(), Invalid> {
    let bad = |field: &str, reason: &str| Invalid::new(ObjectKind::Key, &key.name, field, reason);
    let hash_ok = |h: &str| !h.is_empty() && h.len() <= MAX_HASH_LEN && h.bytes().all(|b| b.is_ascii_alphanumeric());
    if !hash_ok(&key.hash) {
        return Err(bad("hash", "must be 1 to 128 letters or digits"));
    }
    if key.id.as_deref().is_some_and(|id| !hash_ok(id)) {
        return Err(bad("id", "must be 1 to 128 letters or digits"));
    }
    validate_key_grants(&key.name, &key.allowed_models, key.rpm, key.tpm)
}

/// Every check of one price row; its name is `<provider>/<model>`.
pub fn validate_price(p: &PriceConfig) -> Result<(), Invalid> {
    let name = format!("{}/{}", p.provider, p.model);
    let bad = |field: &str, reason: String| Invalid::new(ObjectKind::Price, &name, field, reason);
    check_name(&p.provider).map_err(|r| bad("provider", r))?;
    check_name(&p.model).map_err(|r| bad("model", r))?;
    match p.compile() {
        Ok(_) => Ok(()),
        Err(e @ crate::pricing::PriceError::OutOfRange { field }) => Err(bad(field, e.to_string())),
        Err(e) => Err(bad("", e.to_string())),
    }
}

/// Validates every provider, route and price of `config`; returns the config without the
/// invalid ones (and without routes that target a provider left out), plus why each was left
/// out. A name used twice keeps its first object.
pub fn prune_config(mut config: GatewayConfig) -> (GatewayConfig, Vec<Invalid>) {
    let mut rejected = Vec::new();
    let mut names = HashSet::new();
    let providers = std::mem::take(&mut config.providers);
    let mut dropped_providers = HashSet::new();
    for p in providers {
        let outcome = if names.contains(&p.name) {
            Err(Invalid::new(ObjectKind::Provider, &p.name, "name", "provider name is used twice"))
        } else {
            validate_provider(&p)
        };
        match outcome {
            Ok(()) => {
                names.insert(p.name.clone());
                config.providers.push(p);
            }
            Err(e) => {
                dropped_providers.insert(p.name.clone());
                rejected.push(e);
            }
        }
    }
    let mut models = HashSet::new();
    for r in std::mem::take(&mut config.routes) {
        let outcome = if models.contains(&r.model) {
            Err(Invalid::new(ObjectKind::Route, &r.model, "model", "route is defined twice"))
        } else if let Some((i, t)) = r
            .targets
            .iter()
            .enumerate()
            .find(|(_, t)| dropped_providers.contains(&t.provider) && !names.contains(&t.provider))
        {
            Err(Invalid::new(
                ObjectKind::Route,
                &r.model,
                format!("targets[{i}].provider"),
                format!("provider '{}' was left out as invalid", shown(&t.provider)),
            ))
        } else {
            validate_route(&r, &config.providers)
        };
        match outcome {
            Ok(()) => {
                models.insert(r.model.clone());
                config.routes.push(r);
            }
            Err(e) => rejected.push(e),
        }
    }
    let mut priced = HashSet::new();
    for p in std::mem::take(&mut config.prices) {
        let key = (p.provider.clone(), p.model.clone());
        let outcome = if priced.contains(&key) {
            Err(Invalid::new(ObjectKind::Price, &format!("{}/{}", p.provider, p.model), "", "duplicate price"))
        } else {
            validate_price(&p)
        };
        match outcome {
            Ok(()) => {
                priced.insert(key);
                config.prices.push(p);
            }
            Err(e) => rejected.push(e),
        }
    }
    (config, rejected)
}

/// [`prune_config`] for a whole snapshot, keys and credentials included: an invalid key is left
/// out, which refuses it (a snapshot's key list is exhaustive), and credentials of providers
/// left out are dropped.
pub fn prune_snapshot(snapshot: Snapshot) -> (Snapshot, Vec<Invalid>) {
    let Snapshot { version, config, credentials, keys } = snapshot;
    let (config, mut rejected) = prune_config(config);
    let mut kept = Vec::with_capacity(keys.len());
    for k in keys {
        match validate_key(&k) {
            Ok(()) => kept.push(k),
            Err(e) => rejected.push(e),
        }
    }
    let credentials =
        credentials.into_iter().filter(|c| config.providers.iter().any(|p| p.name == c.provider)).collect();
    (Snapshot { version, config, credentials, keys: kept }, rejected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TargetConfig;

    fn provider(json: &str) -> ProviderConfig {
        serde_json::from_str(json).unwrap()
    }

    fn route(model: &str, provider: &str, target: &str) -> RouteConfig {
        RouteConfig {
            model: model.into(),
            targets: vec![TargetConfig { provider: provider.into(), model: target.into(), weight: 1 }],
            policy: None,
        }
    }

    fn key(name: &str, models: Vec<String>) -> VirtualKey {
        VirtualKey {
            hash: "ab".repeat(32),
            name: name.into(),
            allowed_models: models,
            expires_at: None,
            status: crate::snapshot::KeyStatus::Active,
            rpm: None,
            tpm: None,
            budget: None,
            id: None,
        }
    }

    #[test]
    fn the_issue_cases_are_refused_naming_the_field() {
        let azure = provider(r#"{"name":"az","kind":"azure_openai","cluster":"c"}"#);
        assert_eq!(validate_provider(&azure).unwrap_err().field, "settings.azure.api_version");
        let bedrock = provider(r#"{"name":"b","kind":"bedrock","cluster":"c"}"#);
        assert_eq!(validate_provider(&bedrock).unwrap_err().field, "settings.bedrock.region");
        let gemini = provider(r#"{"name":"g","kind":"gemini","cluster":"c"}"#);
        let e = validate_route(&route("m", "g", "models/../../v1/files"), std::slice::from_ref(&gemini)).unwrap_err();
        assert_eq!((e.kind, e.field.as_str()), (ObjectKind::Route, "targets[0].model"));
        assert!(validate_route(&route("m", "g", "models/gemini-2.5-flash"), &[gemini]).is_ok());
    }

    #[test]
    fn bounds_and_control_characters() {
        let models = |n: usize| (0..n).map(|i| format!("m{i}")).collect::<Vec<_>>();
        assert!(validate_key(&key("k", models(MAX_ALLOWED_MODELS))).is_ok());
        assert_eq!(validate_key(&key("k", models(MAX_ALLOWED_MODELS + 1))).unwrap_err().field, "allowed_models");
        assert_eq!(validate_key(&key("k", vec![])).unwrap_err().field, "allowed_models");
        assert_eq!(validate_key(&key("k\n", vec!["*".into()])).unwrap_err().field, "name");
        assert_eq!(validate_key(&key(&"k".repeat(129), vec!["*".into()])).unwrap_err().field, "name");
        assert!(check_owner("Ada Lovelace <ada@example.com>").is_ok());
        for bad in ["", "  ", "a\u{0}b", "a\rb", "x\u{7f}", "\u{85}", &"o".repeat(257)] {
            assert!(check_owner(bad).is_err(), "{bad:?}");
        }
        for ok in ["/", "/v1", "/proxy/openai/", "/a-b_c.d~e%20@:+"] {
            assert!(check_path_prefix(ok).is_ok(), "{ok}");
        }
        for bad in ["", "v1", "/a/../b", "/..", "/./x", "/a?b", "/a#b", "/a b", "/a\r\nX-Injected: 1", "/a\u{0}"] {
            assert!(check_path_prefix(bad).is_err(), "{bad:?}");
        }
        let p = provider(r#"{"name":"p","kind":"openai","cluster":"c","path_prefix":"/x/../y"}"#);
        assert_eq!(validate_provider(&p).unwrap_err().field, "path_prefix");
        for bad in ["", ".x", "/x", "a b", "a\tb", "a/../b", "a/./b", "é"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        let many = RouteConfig {
            targets: (0..=MAX_TARGETS)
                .map(|_| TargetConfig { provider: "p".into(), model: "x".into(), weight: 1 })
                .collect(),
            ..route("m", "p", "x")
        };
        let p = provider(r#"{"name":"p","kind":"openai","cluster":"c"}"#);
        assert_eq!(validate_route(&many, &[p]).unwrap_err().field, "targets");
    }

    #[test]
    fn pruning_keeps_everything_valid_and_drops_dependents() {
        let json = br#"{"providers":[
                {"name":"ok","kind":"openai","cluster":"c"},
                {"name":"az","kind":"azure_openai","cluster":"c2"},
                {"name":"ok","kind":"anthropic","cluster":"c3"}],
            "routes":[
                {"model":"good","targets":[{"provider":"ok","model":"gpt"}]},
                {"model":"on-az","targets":[{"provider":"az","model":"d"}]},
                {"model":"good","targets":[{"provider":"ok","model":"gpt2"}]},
                {"model":"ghost","targets":[{"provider":"nope","model":"x"}]}],
            "prices":[{"provider":"ok","model":"gpt","input_per_mtok":1,"output_per_mtok":2},
                      {"provider":"ok","model":"gpt","input_per_mtok":-1,"output_per_mtok":2}]}"#;
        let (config, rejected) = prune_config(GatewayConfig::from_json(json).unwrap());
        assert_eq!(config.providers.iter().map(|p| p.kind).collect::<Vec<_>>(), [ProviderKind::Openai]);
        assert_eq!(config.routes.iter().map(|r| r.model.as_str()).collect::<Vec<_>>(), ["good"]);
        assert_eq!(config.routes.first().map(|r| r.targets[0].model.as_str()), Some("gpt"));
        assert_eq!(config.prices.len(), 1);
        let got: Vec<(ObjectKind, &str, &str)> =
            rejected.iter().map(|e| (e.kind, e.name.as_str(), e.field.as_str())).collect();
        assert_eq!(
            got,
            [
                (ObjectKind::Provider, "az", "settings.azure.api_version"),
                (ObjectKind::Provider, "ok", "name"),
                (ObjectKind::Route, "on-az", "targets[0].provider"),
                (ObjectKind::Route, "good", "model"),
                (ObjectKind::Route, "ghost", "targets[0].provider"),
                (ObjectKind::Price, "ok/gpt", ""),
            ]
        );
        // The pruned config is one the routing table accepts.
        assert!(crate::RoutingTable::new(config).is_ok());
    }

    #[test]
    fn invalid_keys_are_left_out_and_secrets_never_shown() {
        let snap = Snapshot {
            version: 3,
            config: GatewayConfig::from_json(
                br#"{"providers":[{"name":"b","kind":"bedrock","cluster":"c"}],"routes":[]}"#,
            )
            .unwrap(),
            credentials: vec![crate::snapshot::ResolvedCredential { provider: "b".into(), secret: "sk-x".into() }],
            keys: vec![key("good", vec!["*".into()]), key("bad\u{1b}[31m", vec!["*".into()])],
        };
        let (snap, rejected) = prune_snapshot(snap);
        assert_eq!(snap.keys.len(), 1);
        assert!(snap.credentials.is_empty());
        assert_eq!(rejected.len(), 2);
        let text = rejected.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
        assert!(!text.contains('\u{1b}') && !text.contains("sk-x"), "{text}");
    }
}
