//! The routing decision: from a public model name to one provider target, with weights.

use std::collections::HashMap;

use crate::config::{GatewayConfig, ProviderConfig, RouteConfig, RoutePolicy, TargetConfig};
use crate::error::{ErrorKind, GatewayError};

/// A configuration that cannot be served, found when a bootstrap config is loaded. Snapshots
/// pushed by the control plane are pruned instead ([`crate::validate::prune_snapshot`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A provider, route or price fails the shared validator.
    #[error("{0}")]
    Invalid(#[from] crate::validate::Invalid),
    #[error("auth.jwt.limits['{client}']: {reason}")]
    InvalidCallerLimits { client: String, reason: String },
}

/// Validated, indexed configuration, built once per snapshot and shared by every request.
#[derive(Debug, Clone)]
pub struct RoutingTable {
    config: GatewayConfig,
    providers: HashMap<String, usize>,
    routes: HashMap<String, usize>,
    prices: crate::pricing::PriceTable,
}

/// The target chosen for one request.
#[derive(Debug, Clone, Copy)]
pub struct Selection<'a> {
    pub route: &'a RouteConfig,
    pub target: &'a TargetConfig,
    pub provider: &'a ProviderConfig,
}

impl RoutingTable {
    /// Validates every object (all-or-nothing: the first invalid object refuses the config) and
    /// indexes the config.
    pub fn new(config: GatewayConfig) -> Result<Self, ConfigError> {
        let (pruned, rejected) = crate::validate::prune_config(config);
        if let Some(first) = rejected.into_iter().next() {
            return Err(ConfigError::Invalid(first));
        }
        Self::from_valid(pruned)
    }

    /// Leaves out the objects that fail validation (and routes depending on them) and indexes
    /// the rest; returns why each object was left out. Only config-wide settings (JWT caller
    /// limits) can still refuse the whole config.
    pub fn new_pruned(config: GatewayConfig) -> Result<(Self, Vec<crate::validate::Invalid>), ConfigError> {
        let (pruned, rejected) = crate::validate::prune_config(config);
        Ok((Self::from_valid(pruned)?, rejected))
    }

    fn from_valid(config: GatewayConfig) -> Result<Self, ConfigError> {
        let providers = config.providers.iter().enumerate().map(|(i, p)| (p.name.clone(), i)).collect();
        let routes = config.routes.iter().enumerate().map(|(i, r)| (r.model.clone(), i)).collect();
        // Rows were validated one by one, duplicates included; this cannot fail any more.
        let prices = crate::pricing::PriceTable::new(&config.prices).unwrap_or_default();
        if let Some(jwt) = &config.auth.jwt {
            for (client, limits) in &jwt.limits {
                let invalid = |reason: &str| ConfigError::InvalidCallerLimits {
                    client: client.clone(),
                    reason: reason.to_owned(),
                };
                if limits.rpm == Some(0) || limits.tpm == Some(0) {
                    return Err(invalid("rpm and tpm must be positive when set"));
                }
                if let Some(budget) = &limits.budget {
                    budget.limit_pusd().map_err(|e| invalid(&e.to_string()))?;
                }
            }
        }
        Ok(RoutingTable { config, providers, routes, prices })
    }

    /// The price table from `config.prices`, validated.
    pub fn prices(&self) -> &crate::pricing::PriceTable {
        &self.prices
    }

    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        self.providers.get(name).and_then(|&i| self.config.providers.get(i))
    }

    /// The provider an upstream attempt on Envoy cluster `cluster` reaches, when the endpoint
    /// does not say: the downstream choice `selected` when it is behind that cluster (several
    /// providers may share one cluster, ADR "shared validator"), else the first provider behind
    /// it (a fallback attempt of a policy route, whose clusters each serve one provider).
    pub fn provider_by_cluster(&self, cluster: &str, selected: &str) -> Option<&ProviderConfig> {
        match self.provider(selected) {
            Some(p) if p.cluster == cluster => Some(p),
            _ => self.config.providers.iter().find(|p| p.cluster == cluster),
        }
    }

    pub fn route(&self, model: &str) -> Option<&RouteConfig> {
        self.routes.get(model).and_then(|&i| self.config.routes.get(i))
    }

    /// Picks a target for `model`. `random` is any uniformly distributed number; passing it in
    /// keeps this function deterministic and testable.
    pub fn select(&self, model: &str, random: u64) -> Result<Selection<'_>, GatewayError> {
        let route = self.route(model).ok_or_else(|| {
            GatewayError::new(
                ErrorKind::NotFound,
                format!("The model `{model}` does not exist or you do not have access to it."),
            )
            .with_param("model")
            .with_code("model_not_found")
        })?;
        let total: u64 = route.targets.iter().map(|t| u64::from(t.weight)).sum();
        let mut point = if total == 0 { 0 } else { random % total };
        let target = route
            .targets
            .iter()
            .find(|t| {
                let w = u64::from(t.weight);
                if point < w {
                    true
                } else {
                    point -= w;
                    false
                }
            })
            .or_else(|| route.targets.first())
            .ok_or_else(|| GatewayError::new(ErrorKind::Internal, "route has no targets"))?;
        let provider = self
            .provider(&target.provider)
            .ok_or_else(|| GatewayError::new(ErrorKind::Internal, "route target names an unknown provider"))?;
        Ok(Selection { route, target, provider })
    }

    /// The target of `model`'s route served by `provider`, for an attempt that Envoy sent to that
    /// provider (fallback picks the provider; the route says which of its models).
    pub fn target_for_provider(&self, model: &str, provider: &str) -> Option<&TargetConfig> {
        self.route(model)?.targets.iter().find(|t| t.provider == provider)
    }
}

/// Limits that keep a policy meaningful in Envoy: a cluster name Envoy and a header can carry,
/// one target per provider cluster (the attempt's provider is read from the cluster's endpoint
/// metadata), timeouts that leave room for an attempt.
pub(crate) fn validate_policy(
    route: &RouteConfig,
    policy: &RoutePolicy,
    providers: &[ProviderConfig],
) -> Result<(), String> {
    if route.model.is_empty() || !route.model.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._:/@".contains(&b)) {
        return Err(
            "a route with a policy needs a model name of letters, digits and -._:/@ (it names an Envoy cluster)".into(),
        );
    }
    if policy.retries > 10 {
        return Err("retries must be at most 10".into());
    }
    if policy.retries > 0 && policy.retry_on.is_empty() {
        return Err("retries need at least one retry_on condition".into());
    }
    if policy.eject_after_failures == 0 {
        return Err("eject_after_failures must be at least 1".into());
    }
    if policy.ejection_ms == 0 {
        return Err("ejection_ms must be positive".into());
    }
    if [policy.per_try_timeout_ms, policy.timeout_ms, policy.backoff_base_ms, policy.backoff_max_ms].contains(&Some(0))
    {
        return Err("timeouts and backoff must be positive".into());
    }
    if let (Some(per_try), Some(total)) = (policy.per_try_timeout_ms, policy.timeout_ms) {
        if per_try > total {
            return Err("per_try_timeout_ms exceeds timeout_ms".into());
        }
    }
    if let (Some(base), Some(max)) = (policy.backoff_base_ms, policy.backoff_max_ms) {
        if base > max {
            return Err("backoff_base_ms exceeds backoff_max_ms".into());
        }
    }
    let mut clusters: Vec<&str> = Vec::with_capacity(route.targets.len());
    for t in &route.targets {
        let Some(p) = providers.iter().find(|p| p.name == t.provider) else {
            continue; // reported as UnknownProvider
        };
        if clusters.contains(&p.cluster.as_str()) {
            return Err(format!(
                "two targets reach cluster '{}'; an ordered fallback needs one target per cluster",
                p.cluster
            ));
        }
        if providers.iter().filter(|q| q.cluster == p.cluster).count() > 1 {
            return Err(format!(
                "cluster '{}' serves several providers, so an attempt's provider would be ambiguous",
                p.cluster
            ));
        }
        clusters.push(&p.cluster);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RoutingTable {
        let cfg = GatewayConfig::from_json(
            br#"{"providers":[{"name":"a","kind":"anthropic","cluster":"c_a"},{"name":"o","kind":"openai","cluster":"c_o","credential":{"env":"OPENAI_API_KEY"}}],
                 "routes":[{"model":"m","targets":[{"provider":"a","model":"claude","weight":3},{"provider":"o","model":"gpt","weight":1}]}]}"#,
        )
        .unwrap();
        RoutingTable::new(cfg).unwrap()
    }

    #[test]
    fn weights_split_traffic_proportionally() {
        let t = table();
        let picks: Vec<_> = (0..4).map(|r| t.select("m", r).unwrap().provider.name.clone()).collect();
        assert_eq!(picks, ["a", "a", "a", "o"]);
    }

    #[test]
    fn providers_sharing_a_cluster_resolve_to_the_selected_one() {
        let cfg = GatewayConfig::from_json(
            br#"{"providers":[{"name":"a-second","kind":"openai","cluster":"shared"},{"name":"main","kind":"openai","cluster":"shared"},{"name":"other","kind":"anthropic","cluster":"c_a"}],
                 "routes":[{"model":"m","targets":[{"provider":"main","model":"gpt"}]}]}"#,
        )
        .unwrap();
        let t = RoutingTable::new(cfg).unwrap();
        assert_eq!(t.provider_by_cluster("shared", "main").map(|p| p.name.as_str()), Some("main"));
        assert_eq!(t.provider_by_cluster("shared", "a-second").map(|p| p.name.as_str()), Some("a-second"));
        // An attempt on another cluster than the selection's (a policy fallback) names that cluster's provider.
        assert_eq!(t.provider_by_cluster("c_a", "main").map(|p| p.name.as_str()), Some("other"));
        assert!(t.provider_by_cluster("nowhere", "main").is_none());
    }

    #[test]
    fn unknown_model_is_404_model_not_found() {
        let err = table().select("nope", 0).unwrap_err();
        assert_eq!(err.status(), 404);
        assert_eq!(err.code.as_deref(), Some("model_not_found"));
    }

    #[test]
    fn invalid_references_are_rejected() {
        let cfg = GatewayConfig::from_json(
            br#"{"providers":[],"routes":[{"model":"m","targets":[{"provider":"x","model":"y"}]}]}"#,
        )
        .unwrap();
        assert!(
            matches!(RoutingTable::new(cfg), Err(ConfigError::Invalid(crate::validate::Invalid { ref field, .. })) if field == "targets[0].provider")
        );
    }

    #[test]
    fn policies_default_and_validate() {
        let load = |policy: &str| {
            let doc = format!(
                r#"{{"providers":[{{"name":"a","kind":"anthropic","cluster":"c_a"}},{{"name":"o","kind":"openai","cluster":"c_o"}}],
                    "routes":[{{"model":"m","targets":[{{"provider":"o","model":"g"}},{{"provider":"a","model":"c"}}],"policy":{policy}}}]}}"#
            );
            RoutingTable::new(GatewayConfig::from_json(doc.as_bytes()).map_err(|e| {
                ConfigError::Invalid(crate::validate::Invalid {
                    kind: crate::validate::ObjectKind::Route,
                    name: "m".into(),
                    field: "policy".into(),
                    reason: e.to_string(),
                })
            })?)
        };
        let t = load("{}").unwrap();
        let route = t.route("m").unwrap();
        let policy = route.policy.as_ref().unwrap();
        assert_eq!(policy.retries, 2);
        assert!(policy.retry_on.contains(&crate::config::RetryOn::TooManyRequests));
        assert_eq!(route.envoy_cluster().as_deref(), Some("ai_gateway_route_m"));
        assert!(load(r#"{"retry_on":["429","5xx","connect_failure","reset","timeout"],"per_try_timeout_ms":500,"timeout_ms":2000,"fallback":"ordered"}"#).is_ok());
        assert!(
            matches!(load(r#"{"retry_on":["418"]}"#), Err(ConfigError::Invalid(crate::validate::Invalid { ref field, .. })) if field == "policy")
        );
        assert!(matches!(
            load(r#"{"per_try_timeout_ms":3000,"timeout_ms":2000}"#),
            Err(ConfigError::Invalid(crate::validate::Invalid { ref field, .. })) if field == "policy"
        ));
        assert!(
            matches!(load(r#"{"ejection_ms":0}"#), Err(ConfigError::Invalid(crate::validate::Invalid { ref field, .. })) if field == "policy")
        );
        assert!(
            matches!(load(r#"{"retries":1,"retry_on":[]}"#), Err(ConfigError::Invalid(crate::validate::Invalid { ref field, .. })) if field == "policy")
        );
        // Routes without a policy keep the weighted choice and no route cluster.
        assert_eq!(table().route("m").unwrap().envoy_cluster(), None);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(GatewayConfig::from_json(br#"{"providers":[],"routes":[],"extra":1}"#).is_err());
    }

    #[test]
    fn gemini_models_and_azure_settings_are_validated_at_load() {
        let load = |providers: &str, target: &str| {
            let doc = format!(
                r#"{{"providers":[{providers}],"routes":[{{"model":"m","targets":[{{"provider":"p","model":"{target}"}}]}}]}}"#
            );
            RoutingTable::new(GatewayConfig::from_json(doc.as_bytes()).unwrap())
        };
        let gemini = r#"{"name":"p","kind":"gemini","cluster":"c"}"#;
        assert!(load(gemini, "gemini-2.5-flash").is_ok());
        assert!(
            matches!(load(gemini, "../files?x"), Err(ConfigError::Invalid(crate::validate::Invalid { ref field, .. })) if field == "targets[0].model")
        );
        let azure =
            r#"{"name":"p","kind":"azure_openai","cluster":"c","settings":{"azure":{"api_version":"2024-10-21"}}}"#;
        assert!(load(azure, "gpt-4o-deploy").is_ok());
        assert!(
            matches!(load(azure, "a/b"), Err(ConfigError::Invalid(crate::validate::Invalid { ref field, .. })) if field == "targets[0].model")
        );
        let no_version = r#"{"name":"p","kind":"azure_openai","cluster":"c"}"#;
        assert!(
            matches!(load(no_version, "d"), Err(ConfigError::Invalid(crate::validate::Invalid { ref field, .. })) if field == "settings.azure.api_version")
        );
        let bad_version =
            r#"{"name":"p","kind":"azure_openai","cluster":"c","settings":{"azure":{"api_version":"1&x=2"}}}"#;
        assert!(
            matches!(load(bad_version, "d"), Err(ConfigError::Invalid(crate::validate::Invalid { ref field, .. })) if field == "settings.azure.api_version")
        );
        let v1 = r#"{"name":"p","kind":"azure_openai","cluster":"c","settings":{"azure":{"url_form":"v1"}}}"#;
        assert!(load(v1, "any/model-name").is_ok());
    }
}

#[cfg(test)]
mod pricing_tests {
    use super::*;

    fn config(extra: &str) -> Result<RoutingTable, ConfigError> {
        let json = format!(
            r#"{{"providers":[{{"name":"p","kind":"openai","cluster":"c"}}],
                "routes":[{{"model":"m","targets":[{{"provider":"p","model":"gpt"}}]}}]{extra}}}"#
        );
        RoutingTable::new(GatewayConfig::from_json(json.as_bytes()).unwrap())
    }

    #[test]
    fn prices_load_with_the_config_and_bad_ones_refuse_it() {
        let table =
            config(r#","prices":[{"provider":"p","model":"gpt","input_per_mtok":1,"output_per_mtok":2}]"#).unwrap();
        assert_eq!(table.prices().get("p", "gpt").map(|p| p.output), Some(2_000_000));
        let bad = config(r#","prices":[{"provider":"p","model":"gpt","input_per_mtok":-1,"output_per_mtok":2}]"#);
        assert!(
            matches!(bad, Err(ConfigError::Invalid(crate::validate::Invalid { ref field, .. })) if field == "input_per_mtok")
        );
    }

    #[test]
    fn jwt_client_limits_are_validated_and_star_is_the_fallback() {
        let auth =
            |limits: &str| format!(r#","auth":{{"jwt":{{"issuer":"i","jwks":{{"local":"{{}}"}},"limits":{limits}}}}}"#);
        let table =
            config(&auth(r#"{"*":{"rpm":5},"batch":{"tpm":100,"budget":{"limit_usd":2.5,"period":"day"}}}"#)).unwrap();
        let jwt = table.config().auth.jwt.as_ref().unwrap();
        assert_eq!(jwt.limits_for("batch").and_then(|l| l.tpm), Some(100));
        assert_eq!(jwt.limits_for("other").and_then(|l| l.rpm), Some(5));
        assert!(config(&auth(r#"{"x":{"rpm":0}}"#)).is_err());
        assert!(config(&auth(r#"{"x":{"budget":{"limit_usd":-3}}}"#)).is_err());
    }
}
