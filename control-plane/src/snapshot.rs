//! Builds the snapshot pushed to the filters from the store, resolves provider credentials, and
//! republishes whenever the store's revision moves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway_core::config::{Defaults, GatewayConfig, Limits, ProviderConfig, RouteConfig};
use gateway_core::snapshot::{ResolvedCredential, Snapshot, VirtualKey};
use gateway_core::RoutingTable;
use tokio::sync::{watch, Notify};

use crate::model::{CredentialRef, KeySpec, ProviderSpec, RouteSpec};
use crate::store::{list_all, Kind, Store, StoreError};

/// A snapshot plus what it took to build it; `Debug` of the snapshot redacts secrets.
#[derive(Debug)]
pub struct BuiltSnapshot {
    pub snapshot: Snapshot,
    /// Serialized once, shared by every subscriber.
    pub json: Vec<u8>,
    pub build_time: Duration,
    /// Objects left out of the snapshot and why (never containing a secret).
    pub warnings: Vec<String>,
}

/// Turns credential references into secrets.
pub trait SecretResolver: Send + Sync + 'static {
    /// The secret, or a message safe to log (it names the reference, never a value).
    fn resolve(&self, reference: &CredentialRef) -> Result<String, String>;
}

/// Reads `env:` references from the control plane's environment. Secrets Manager ARNs are not
/// resolved yet (it needs the AWS SDK's Secrets Manager client; see docs/control-plane.md).
pub struct EnvResolver;

impl SecretResolver for EnvResolver {
    fn resolve(&self, reference: &CredentialRef) -> Result<String, String> {
        match reference {
            CredentialRef::Env(var) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(v),
                _ => Err(format!("environment variable {var} is not set")),
            },
            CredentialRef::SecretsManager(arn) => {
                Err(format!("Secrets Manager references are not resolved yet ({arn})"))
            }
        }
    }
}

/// Reads providers, routes and keys at one store revision and builds the snapshot.
pub async fn build(store: &dyn Store, resolver: &dyn SecretResolver) -> Result<BuiltSnapshot, StoreError> {
    let started = Instant::now();
    // Listing is not one transaction: retry until the revision is the same before and after, so
    // the snapshot's version names exactly the writes it contains.
    let mut attempt = 0;
    let (revision, providers, routes, keys) = loop {
        let before = store.revision().await?;
        let providers = list_all(store, Kind::Provider).await?;
        let routes = list_all(store, Kind::Route).await?;
        let keys = list_all(store, Kind::Key).await?;
        let after = store.revision().await?;
        attempt += 1;
        if before == after || attempt >= 5 {
            break (after.max(before), providers, routes, keys);
        }
    };

    let mut warnings = Vec::new();
    let mut provider_cfgs = Vec::with_capacity(providers.len());
    let mut credentials = Vec::new();
    for rec in &providers {
        let spec: ProviderSpec = match serde_json::from_value(rec.doc.clone()) {
            Ok(s) => s,
            Err(e) => {
                warnings.push(format!("provider '{}' skipped: unreadable document: {e}", rec.name));
                continue;
            }
        };
        if let Some(reference) = spec.credential.as_deref().and_then(CredentialRef::parse) {
            match resolver.resolve(&reference) {
                Ok(secret) => credentials.push(ResolvedCredential { provider: rec.name.clone(), secret }),
                Err(m) => warnings.push(format!("provider '{}': credential not resolved: {m}", rec.name)),
            }
        }
        provider_cfgs.push(ProviderConfig {
            name: rec.name.clone(),
            kind: spec.kind,
            cluster: spec.cluster,
            credential: None,
            path_prefix: spec.path_prefix,
            settings: spec.settings,
        });
    }

    let mut route_cfgs = Vec::with_capacity(routes.len());
    for rec in &routes {
        let spec: RouteSpec = match serde_json::from_value(rec.doc.clone()) {
            Ok(s) => s,
            Err(e) => {
                warnings.push(format!("route '{}' skipped: unreadable document: {e}", rec.name));
                continue;
            }
        };
        // A route whose provider was deleted concurrently would make the whole snapshot invalid
        // for the filter; leaving the one route out keeps every other route serving.
        if let Some(t) = spec.targets.iter().find(|t| !provider_cfgs.iter().any(|p| p.name == t.provider)) {
            warnings.push(format!("route '{}' skipped: unknown provider '{}'", rec.name, t.provider));
            continue;
        }
        route_cfgs.push(RouteConfig { model: rec.name.clone(), targets: spec.targets });
    }

    let mut vkeys = Vec::with_capacity(keys.len());
    for rec in &keys {
        let (Ok(spec), Some(hash)) = (serde_json::from_value::<KeySpec>(rec.doc.clone()), rec.key_hash.clone()) else {
            warnings.push(format!("key '{}' skipped: unreadable document or missing hash", rec.name));
            continue;
        };
        vkeys.push(VirtualKey {
            hash,
            name: rec.name.clone(),
            allowed_models: spec.allowed_models,
            expires_at: spec.expires_at,
            status: spec.status,
        });
    }

    let config = GatewayConfig {
        version: revision,
        providers: provider_cfgs,
        routes: route_cfgs,
        limits: Limits::default(),
        defaults: Defaults::default(),
    };
    if let Err(e) = RoutingTable::new(config.clone()) {
        warnings.push(format!("snapshot does not validate: {e}"));
    }
    let snapshot = Snapshot { version: revision, config, credentials, keys: vkeys };
    let json = serde_json::to_vec(&snapshot).map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(BuiltSnapshot { snapshot, json, build_time: started.elapsed(), warnings })
}

/// The latest snapshot, `None` until the first build succeeded.
pub type SnapshotRx = watch::Receiver<Option<Arc<BuiltSnapshot>>>;

/// Rebuilds the snapshot whenever `changed` is notified (writes through this process) or the
/// store's revision moved (writes by another replica), checked every `poll`.
pub fn spawn_builder(
    store: Arc<dyn Store>,
    resolver: Arc<dyn SecretResolver>,
    changed: Arc<Notify>,
    poll: Duration,
) -> SnapshotRx {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let mut last: Option<u64> = None;
        loop {
            match store.revision().await {
                Ok(rev) if Some(rev) != last => match build(store.as_ref(), resolver.as_ref()).await {
                    Ok(built) => {
                        for w in &built.warnings {
                            tracing::warn!("{w}");
                        }
                        tracing::info!(
                            version = built.snapshot.version,
                            providers = built.snapshot.config.providers.len(),
                            routes = built.snapshot.config.routes.len(),
                            keys = built.snapshot.keys.len(),
                            bytes = built.json.len(),
                            build_ms = built.build_time.as_millis() as u64,
                            "snapshot built"
                        );
                        last = Some(built.snapshot.version);
                        if tx.send(Some(Arc::new(built))).is_err() {
                            return;
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "snapshot build failed; keeping the last one"),
                },
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "cannot read store revision"),
            }
            tokio::select! {
                _ = changed.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = tx.closed() => return,
            }
        }
    });
    rx
}
