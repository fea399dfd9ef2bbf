//! Provider credential references: which ones the control plane accepts (the policy checked at
//! every create, update and apply, and again when a snapshot is built), and how they are
//! resolved into the secrets pushed to the filters (environment variables, AWS Secrets Manager
//! with a TTL cache).
//!
//! Resolved values are secrets: they appear in no log line, error message or API response. Errors
//! name the reference (variable name or ARN), never a value.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::model::{ApiError, CredentialRef};
use crate::snapshot::SecretResolver;

/// Prefix an `env:` reference must carry unless configured otherwise (`CP_CREDENTIAL_ENV_PREFIX`).
pub const DEFAULT_ENV_PREFIX: &str = "AI_GATEWAY_PROVIDER_";

/// How long a secret read from Secrets Manager is reused before it is read again.
pub const DEFAULT_SECRETS_TTL: Duration = Duration::from_secs(300);

/// Variable name prefixes no reference may name, whatever the configured prefix: the control
/// plane's own settings and tokens (`CP_ADMIN_TOKEN`, `CP_READONLY_TOKEN`, `CP_WATCH_TOKEN`,
/// `CP_TOKEN`, `CP_DEV_CLIENTS`, ...) and its own AWS credentials.
const RESERVED_PREFIXES: &[&str] = &["CP_", "AWS_"];
/// Exact names no reference may name: Envoy's watch token (the same value as `CP_WATCH_TOKEN`,
/// and set in the control plane's environment by `./dev run`).
const RESERVED_NAMES: &[&str] = &["AI_GATEWAY_WATCH_TOKEN"];

/// Which credential references may be stored and resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialPolicy {
    env_prefix: String,
}

impl Default for CredentialPolicy {
    fn default() -> Self {
        CredentialPolicy { env_prefix: DEFAULT_ENV_PREFIX.to_string() }
    }
}

impl CredentialPolicy {
    /// A policy allowing `env:` references to variables starting with `env_prefix`, which must be
    /// a non-empty upper-case variable name prefix (an empty one would allow any variable).
    pub fn new(env_prefix: &str) -> Result<Self, String> {
        let ok = !env_prefix.is_empty()
            && env_prefix.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            && !env_prefix.starts_with(|c: char| c.is_ascii_digit());
        if !ok {
            return Err(format!(
                "credential environment prefix '{env_prefix}' must be non-empty and contain only A-Z, 0-9 and _"
            ));
        }
        Ok(CredentialPolicy { env_prefix: env_prefix.to_string() })
    }

    /// The configured `env:` prefix.
    pub fn env_prefix(&self) -> &str {
        &self.env_prefix
    }

    /// Whether the reference may be used; the error (safe to return and log) says why not.
    pub fn check(&self, reference: &CredentialRef) -> Result<(), String> {
        match reference {
            CredentialRef::Env(var) => {
                if RESERVED_PREFIXES.iter().any(|p| var.starts_with(p)) || RESERVED_NAMES.contains(&var.as_str()) {
                    return Err(format!(
                        "env:{var} names one of the control plane's own settings or credentials; provider credentials must be in variables starting with {}",
                        self.env_prefix
                    ));
                }
                if !var.starts_with(&self.env_prefix) || var.len() == self.env_prefix.len() {
                    return Err(format!(
                        "env:{var} is not allowed: provider credentials must be in variables starting with {} (CP_CREDENTIAL_ENV_PREFIX)",
                        self.env_prefix
                    ));
                }
                Ok(())
            }
            CredentialRef::SecretsManager(_) => Ok(()),
        }
    }

    /// Checks a provider's `credential` field (syntax and policy); the 400 names `param`.
    pub fn check_field(&self, param: &str, credential: Option<&str>) -> Result<(), ApiError> {
        let Some(c) = credential else { return Ok(()) };
        // Syntax errors are reported by the provider's own validation; only a parsed reference
        // can break the policy.
        match CredentialRef::parse(c) {
            Some(r) => self.check(&r).map_err(|m| ApiError::field(param, m)),
            None => Ok(()),
        }
    }
}

/// Fetches one secret from Secrets Manager; a trait so the cache can be tested without AWS.
#[async_trait]
pub trait SecretFetcher: Send + Sync + 'static {
    /// The `SecretString` of the secret's current version; errors never contain the value.
    async fn fetch(&self, arn: &str) -> Result<String, String>;
}

/// AWS Secrets Manager `GetSecretValue` through the SDK's default credential chain, with one
/// client per region (the region is the ARN's).
pub struct AwsSecretsManager {
    shared: aws_config::SdkConfig,
    endpoint: Option<String>,
    clients: Mutex<HashMap<String, aws_sdk_secretsmanager::Client>>,
}

impl AwsSecretsManager {
    /// Loads the default AWS configuration; `endpoint` overrides the regional endpoint (a local
    /// emulator in tests: `CP_SECRETSMANAGER_ENDPOINT`).
    pub async fn connect(endpoint: Option<String>) -> Self {
        // Each client gets the ARN's region; naming one here keeps the loader from asking the
        // instance metadata service for a default region at start.
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .load()
            .await;
        AwsSecretsManager { shared, endpoint, clients: Mutex::new(HashMap::new()) }
    }

    fn client(&self, region: &str) -> aws_sdk_secretsmanager::Client {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .entry(region.to_string())
            .or_insert_with(|| {
                let mut b = aws_sdk_secretsmanager::config::Builder::from(&self.shared)
                    .region(aws_sdk_secretsmanager::config::Region::new(region.to_string()));
                if let Some(ep) = &self.endpoint {
                    b = b.endpoint_url(ep.clone());
                }
                aws_sdk_secretsmanager::Client::from_conf(b.build())
            })
            .clone()
    }
}

#[async_trait]
impl SecretFetcher for AwsSecretsManager {
    async fn fetch(&self, arn: &str) -> Result<String, String> {
        let region = arn.split(':').nth(3).filter(|r| !r.is_empty()).ok_or_else(|| format!("{arn} names no region"))?;
        let out = self.client(region).get_secret_value().secret_id(arn).send().await.map_err(|e| {
            // The service error's code and message (AccessDenied, ResourceNotFound, ...): they name
            // the secret, never its value.
            use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
            let code = e.code().unwrap_or("error");
            let message = e.message().unwrap_or("");
            format!("Secrets Manager GetSecretValue {arn}: {code} {message}").trim_end().to_string()
        })?;
        match out.secret_string() {
            Some(s) if !s.is_empty() => Ok(s.to_string()),
            _ => Err(format!("Secrets Manager secret {arn} has no SecretString")),
        }
    }
}

/// How long one round of Secrets Manager reads may hold up a snapshot build: a slow or
/// unreachable Secrets Manager must not delay a key revocation by more than this.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(3);

struct Cached {
    /// The last value read successfully (kept, if stale, while Secrets Manager fails).
    secret: Option<String>,
    /// Why the last read failed, when it did.
    error: Option<String>,
    at: Instant,
}

/// Resolves references for the snapshot builder: `env:` from the process environment, Secrets
/// Manager ARNs through a cache refreshed every `ttl`, both only when the policy allows the
/// reference. A failed read is retried after `ttl / 10` (at least a second) and meanwhile the last
/// good value, if any, stays in use; the reads of one build run concurrently and are abandoned
/// after the fetch timeout.
pub struct Resolver {
    policy: CredentialPolicy,
    secrets: Option<Arc<dyn SecretFetcher>>,
    ttl: Duration,
    fetch_timeout: Duration,
    cache: Mutex<HashMap<String, Cached>>,
}

impl Resolver {
    /// `secrets`: `None` leaves Secrets Manager references unresolved (with a warning).
    pub fn new(policy: CredentialPolicy, secrets: Option<Arc<dyn SecretFetcher>>, ttl: Duration) -> Self {
        Resolver { policy, secrets, ttl, fetch_timeout: DEFAULT_FETCH_TIMEOUT, cache: Mutex::new(HashMap::new()) }
    }

    /// Overrides [`DEFAULT_FETCH_TIMEOUT`].
    pub fn with_fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    fn fresh(&self, c: &Cached, now: Instant) -> bool {
        let ttl = if c.error.is_none() { self.ttl } else { (self.ttl / 10).max(Duration::from_secs(1)).min(self.ttl) };
        now.duration_since(c.at) < ttl
    }
}

impl Resolver {
    /// Reads the allowed Secrets Manager references among `references` (only those not fresh in
    /// the cache unless `force`) concurrently, and caches the results.
    async fn read(&self, references: &[CredentialRef], force: bool) {
        let Some(fetcher) = &self.secrets else { return };
        let now = Instant::now();
        let mut wanted = Vec::new();
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            for r in references {
                if let CredentialRef::SecretsManager(arn) = r {
                    if self.policy.check(r).is_ok()
                        && (force || !cache.get(arn).is_some_and(|c| self.fresh(c, now)))
                        && !wanted.contains(arn)
                    {
                        wanted.push(arn.clone());
                    }
                }
            }
        }
        if wanted.is_empty() {
            return;
        }
        let mut reads = tokio::task::JoinSet::new();
        for arn in wanted.iter().cloned() {
            let fetcher = fetcher.clone();
            let timeout = self.fetch_timeout;
            reads.spawn(async move {
                let value = match tokio::time::timeout(timeout, fetcher.fetch(&arn)).await {
                    Ok(v) => v,
                    Err(_) => Err(format!("Secrets Manager GetSecretValue {arn}: no answer within {timeout:?}")),
                };
                (arn, value)
            });
        }
        let mut done = Vec::new();
        while let Some(joined) = reads.join_next().await {
            if let Ok(pair) = joined {
                done.push(pair);
            }
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let at = Instant::now();
        for (arn, value) in done {
            let previous = cache.remove(&arn).and_then(|c| c.secret);
            let entry = match value {
                Ok(secret) => Cached { secret: Some(secret), error: None, at },
                Err(e) => {
                    let reference = CredentialRef::SecretsManager(arn.clone());
                    tracing::warn!("a Secrets Manager credential was not refreshed: {}", reference.redact_in(&e));
                    Cached { secret: previous, error: Some(e), at }
                }
            };
            cache.insert(arn, entry);
        }
    }
}

#[async_trait]
impl SecretResolver for Resolver {
    async fn prepare(&self, references: &[CredentialRef]) {
        self.read(references, false).await
    }

    async fn refresh(&self, references: &[CredentialRef]) {
        self.read(references, true).await
    }

    fn resolve(&self, reference: &CredentialRef) -> Result<String, String> {
        self.policy.check(reference)?;
        match reference {
            CredentialRef::Env(var) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(v),
                _ => Err(format!("environment variable {var} is not set")),
            },
            CredentialRef::SecretsManager(arn) => {
                if self.secrets.is_none() {
                    return Err(format!("Secrets Manager is not configured ({arn})"));
                }
                let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                match cache.get(arn) {
                    Some(Cached { secret: Some(s), .. }) => Ok(s.clone()),
                    Some(Cached { error: Some(e), .. }) => Err(e.clone()),
                    _ => Err(format!("{arn} not read yet")),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn env_references_need_the_prefix_and_never_name_the_control_planes_own_variables() {
        let p = CredentialPolicy::default();
        assert!(p.check(&CredentialRef::Env("AI_GATEWAY_PROVIDER_OPENAI".into())).is_ok());
        for bad in ["OPENAI_API_KEY", "AI_GATEWAY_PROVIDER_", "CP_WATCH_TOKEN", "CP_ADMIN_TOKEN", "HOME"] {
            assert!(p.check(&CredentialRef::Env(bad.into())).is_err(), "{bad}");
        }
        // A prefix that would cover the control plane's own variables still cannot reach them.
        let wide = CredentialPolicy::new("C").unwrap();
        for bad in ["CP_WATCH_TOKEN", "CP_ADMIN_TOKEN", "CP_READONLY_TOKEN", "CP_TOKEN", "CP_DEV_CLIENTS"] {
            let e = wide.check(&CredentialRef::Env(bad.into())).unwrap_err();
            assert!(e.contains("control plane's own"), "{bad}: {e}");
        }
        assert!(wide.check(&CredentialRef::Env("CUSTOM_KEY".into())).is_ok());
        let a = CredentialPolicy::new("A").unwrap();
        assert!(a.check(&CredentialRef::Env("AWS_SECRET_ACCESS_KEY".into())).is_err());
        assert!(a.check(&CredentialRef::Env("AI_GATEWAY_WATCH_TOKEN".into())).is_err());
        for bad in ["", "lower", "A-B", "1A"] {
            assert!(CredentialPolicy::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_resolver_refuses_what_the_policy_refuses_even_if_the_variable_is_set() {
        std::env::set_var("CP_RESOLVER_TEST_TOKEN", "must-not-leave");
        let r = Resolver::new(CredentialPolicy::new("CP_RESOLVER").unwrap(), None, DEFAULT_SECRETS_TTL);
        let e = r.resolve(&CredentialRef::Env("CP_RESOLVER_TEST_TOKEN".into())).unwrap_err();
        assert!(!e.contains("must-not-leave"), "{e}");
    }

    struct Counting {
        calls: AtomicUsize,
        value: Mutex<String>,
    }

    #[async_trait]
    impl SecretFetcher for Counting {
        async fn fetch(&self, arn: &str) -> Result<String, String> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let v = self.value.lock().unwrap().clone();
            if v.is_empty() {
                Err(format!("{arn}: ResourceNotFoundException"))
            } else {
                Ok(v)
            }
        }
    }

    #[tokio::test]
    async fn secrets_are_cached_for_the_ttl_then_read_again() {
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:openai-AbCdEf";
        let r_ref = CredentialRef::SecretsManager(arn.into());
        let fetcher = Arc::new(Counting { calls: AtomicUsize::new(0), value: Mutex::new("first".into()) });
        let r = Resolver::new(CredentialPolicy::default(), Some(fetcher.clone()), Duration::from_millis(300));
        assert!(r.resolve(&r_ref).is_err(), "nothing is fetched before prepare");
        r.prepare(&[r_ref.clone(), r_ref.clone()]).await;
        assert_eq!(r.resolve(&r_ref).unwrap(), "first");
        *fetcher.value.lock().unwrap() = "second".into();
        for _ in 0..5 {
            r.prepare(std::slice::from_ref(&r_ref)).await;
        }
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 1, "one fetch within the TTL");
        assert_eq!(r.resolve(&r_ref).unwrap(), "first");
        tokio::time::sleep(Duration::from_millis(350)).await;
        r.prepare(std::slice::from_ref(&r_ref)).await;
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 2);
        assert_eq!(r.resolve(&r_ref).unwrap(), "second", "a rotated secret is picked up after the TTL");
        // The periodic refresh reads again within the TTL.
        *fetcher.value.lock().unwrap() = "third".into();
        r.refresh(std::slice::from_ref(&r_ref)).await;
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 3);
        assert_eq!(r.resolve(&r_ref).unwrap(), "third");
        *fetcher.value.lock().unwrap() = "second".into();
        r.refresh(std::slice::from_ref(&r_ref)).await;
        // Secrets Manager fails: the last good value stays in use.
        fetcher.value.lock().unwrap().clear();
        tokio::time::sleep(Duration::from_millis(350)).await;
        r.prepare(std::slice::from_ref(&r_ref)).await;
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 5);
        assert_eq!(r.resolve(&r_ref).unwrap(), "second");
        // A forced read that fails keeps it too.
        r.refresh(std::slice::from_ref(&r_ref)).await;
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 6);
        assert_eq!(r.resolve(&r_ref).unwrap(), "second");
    }

    struct Stalled;

    #[async_trait]
    impl SecretFetcher for Stalled {
        async fn fetch(&self, _: &str) -> Result<String, String> {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok("never".into())
        }
    }

    #[tokio::test]
    async fn a_stalled_secrets_manager_holds_a_build_up_only_for_the_fetch_timeout() {
        let refs: Vec<CredentialRef> = (0..5)
            .map(|i| {
                CredentialRef::SecretsManager(format!("arn:aws:secretsmanager:eu-west-1:123456789012:secret:s{i}"))
            })
            .collect();
        let r = Resolver::new(CredentialPolicy::default(), Some(Arc::new(Stalled)), DEFAULT_SECRETS_TTL)
            .with_fetch_timeout(Duration::from_millis(200));
        let started = Instant::now();
        r.prepare(&refs).await;
        assert!(started.elapsed() < Duration::from_secs(2), "reads run concurrently: {:?}", started.elapsed());
        let e = r.resolve(&refs[0]).unwrap_err();
        assert!(e.contains("no answer"), "{e}");
        // Within the retry backoff the next build does not wait again.
        let started = Instant::now();
        r.prepare(&refs).await;
        assert!(started.elapsed() < Duration::from_millis(100));
    }
}
