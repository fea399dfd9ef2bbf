//! Builds the snapshot pushed to the filters and republishes it whenever the store changes.
//!
//! The builder keeps a materialised view of the store (providers, routes, keys) in memory.
//! Writes made through this process go through [`TrackedStore`], which records each committed
//! write in a journal; the builder applies the journal to the view instead of listing the whole
//! store again. Writes it did not see (another control plane replica, a test writing to the raw
//! store, a write whose outcome was lost) show up as a gap between the view's revision plus the
//! journal and the store's revision, and trigger a full reload, so replicas stay correct.
//!
//! Secrets live outside the store: every `secrets_refresh` the builder reads them again and, when
//! what it would publish differs from what it last published, advances the store's revision
//! ([`Store::bump_revision`]) so that a new version reaches every filter (and every replica).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use gateway_core::config::{Defaults, GatewayConfig, Limits, ProviderConfig, RouteConfig};
use gateway_core::snapshot::{ResolvedCredential, Snapshot, VirtualKey};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::{watch, Mutex, Notify};

use crate::audit::{AuditContext, AuditPage, AuditQuery};
use crate::credentials::CredentialPolicy;
use crate::model::{CredentialRef, KeySpec, PriceSpec, ProviderSpec, RouteSpec};
use crate::store::{list_all, Kind, Page, Record, Store, StoreError};
use crate::usage::{Bucket, Counters, PeriodKind, UsageAggregate};

/// A snapshot plus what it took to build it; `Debug` of the snapshot redacts secrets.
#[derive(Debug)]
pub struct BuiltSnapshot {
    pub snapshot: Snapshot,
    /// Serialized once per version; every Watch subscriber shares these bytes.
    pub json: Bytes,
    /// Bringing the view up to date, assembling and serializing.
    pub build_time: Duration,
    /// Objects left out of the snapshot and why (never containing a secret).
    pub warnings: Vec<String>,
    /// Objects in the snapshot that the shared validator refuses: written around the API (another
    /// tool, an older version's rules). Filters leave them out and report them back.
    pub invalid: Vec<gateway_core::validate::Invalid>,
    /// How the view reached this version.
    pub source: BuildSource,
}

/// How the materialised view was brought to a snapshot's revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildSource {
    /// Journaled writes applied to the previous view (this many).
    Incremental(usize),
    /// The whole store listed again (start, or writes this process did not make).
    Reload,
}

/// Turns credential references into secrets.
#[async_trait]
pub trait SecretResolver: Send + Sync + 'static {
    /// Called before each build with every reference the snapshot needs, so a resolver that
    /// reads a remote store (Secrets Manager) can fetch and cache them; `resolve` stays cheap.
    async fn prepare(&self, _references: &[CredentialRef]) {}

    /// Called by the periodic secret refresh: like `prepare`, but reads every remote secret
    /// again whatever its cache age, so a value changed at the source is seen within one refresh
    /// interval.
    async fn refresh(&self, references: &[CredentialRef]) {
        self.prepare(references).await
    }

    /// The secret, or a message safe to log (it names the reference, never a value).
    fn resolve(&self, reference: &CredentialRef) -> Result<String, String>;
}

/// Reads `env:` references allowed by the default [`CredentialPolicy`] from the control plane's
/// environment; leaves Secrets Manager references unresolved. `serve` uses
/// [`crate::credentials::Resolver`], which also reads Secrets Manager.
pub struct EnvResolver;

impl SecretResolver for EnvResolver {
    fn resolve(&self, reference: &CredentialRef) -> Result<String, String> {
        CredentialPolicy::default().check(reference)?;
        match reference {
            CredentialRef::Env(var) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(v),
                _ => Err(format!("environment variable {var} is not set")),
            },
            CredentialRef::SecretsManager(arn) => Err(format!("Secrets Manager is not configured ({arn})")),
        }
    }
}

/// The store's objects at one revision, keys already converted to their snapshot form so that
/// a change costs one object's parse, not ten thousand.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    revision: u64,
    providers: BTreeMap<String, Record>,
    routes: BTreeMap<String, Record>,
    /// `None`: unreadable document or missing hash (reported as a warning, left out).
    keys: BTreeMap<String, Option<Vec<VirtualKey>>>,
    prices: BTreeMap<String, Record>,
}

/// A key's entries: its current secret, and during a rotation's grace period (and after, until
/// the next rotation, refused as expired) the previous one. Both carry the first secret's hash as
/// `id`, so they are one caller with one set of counters.
fn virtual_keys(rec: &Record) -> Option<Vec<VirtualKey>> {
    let mut current = virtual_key(rec)?;
    let Some(rotation) = KeySpec::deserialize(&rec.doc).ok()?.rotation else {
        return Some(vec![current]);
    };
    if rotation.secret_hash.is_empty() {
        return None;
    }
    current.id = Some(current.hash.clone());
    current.hash = rotation.secret_hash;
    let mut keys = vec![current.clone()];
    if !rotation.previous_hash.is_empty() {
        let expires_at =
            current.expires_at.map_or(rotation.previous_expires_at, |t| t.min(rotation.previous_expires_at));
        keys.push(VirtualKey { hash: rotation.previous_hash, expires_at: Some(expires_at), ..current });
    }
    Some(keys)
}

fn virtual_key(rec: &Record) -> Option<VirtualKey> {
    let spec = KeySpec::deserialize(&rec.doc).ok()?;
    Some(VirtualKey {
        id: None,
        hash: rec.key_hash.clone()?,
        name: rec.name.clone(),
        allowed_models: spec.allowed_models,
        expires_at: spec.expires_at,
        status: spec.status,
        rpm: spec.rpm,
        tpm: spec.tpm,
        // An unreadable budget leaves the key out (refused) rather than unlimited.
        budget: match spec.budget {
            Some(b) => Some(b.compile().ok()?),
            None => None,
        },
    })
}

impl View {
    /// The store's revision this view reflects.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Lists the whole store at one revision.
    pub async fn load(store: &dyn Store) -> Result<View, StoreError> {
        // Listing is not one transaction: retry until the revision is the same before and after,
        // so the view's revision names exactly the writes it contains.
        let mut attempt = 0;
        loop {
            let before = store.revision().await?;
            let providers = list_all(store, Kind::Provider).await?;
            let routes = list_all(store, Kind::Route).await?;
            let keys = list_all(store, Kind::Key).await?;
            let prices = list_all(store, Kind::Price).await?;
            let after = store.revision().await?;
            attempt += 1;
            if before == after || attempt >= 5 {
                let mut view = View {
                    // When writers never let the listing settle, claim the older revision: the
                    // next refresh then sees a gap and lists again instead of trusting a mix.
                    revision: before.min(after),
                    ..View::default()
                };
                for rec in providers.into_iter().chain(routes).chain(keys).chain(prices) {
                    view.put(rec);
                }
                return Ok(view);
            }
        }
    }

    fn put(&mut self, rec: Record) {
        match rec.kind {
            Kind::Provider => {
                self.providers.insert(rec.name.clone(), rec);
            }
            Kind::Route => {
                self.routes.insert(rec.name.clone(), rec);
            }
            Kind::Key => {
                self.keys.insert(rec.name.clone(), virtual_keys(&rec));
            }
            Kind::Price => {
                self.prices.insert(rec.name.clone(), rec);
            }
        }
    }

    fn apply(&mut self, change: &Change) {
        match change {
            Change::Put(rec) => self.put(rec.clone()),
            Change::Delete(kind, name) => {
                match kind {
                    Kind::Provider => self.providers.remove(name).map(drop),
                    Kind::Route => self.routes.remove(name).map(drop),
                    Kind::Key => self.keys.remove(name).map(drop),
                    Kind::Price => self.prices.remove(name).map(drop),
                };
            }
            Change::Bump => {}
        }
    }

    /// Every credential reference the providers of this view name (what [`SecretResolver::prepare`] gets).
    pub fn credential_refs(&self) -> Vec<CredentialRef> {
        self.providers
            .values()
            .filter_map(|rec| rec.doc.get("credential").and_then(Value::as_str).and_then(CredentialRef::parse))
            .collect()
    }

    /// The resolved credentials of this view's readable providers, in provider name order
    /// (exactly the snapshot's `credentials`), and a warning per reference not resolved.
    pub fn credentials(&self, resolver: &dyn SecretResolver) -> (Vec<ResolvedCredential>, Vec<String>) {
        let mut credentials = Vec::new();
        let mut warnings = Vec::new();
        for rec in self.providers.values() {
            let Ok(spec) = ProviderSpec::deserialize(&rec.doc) else { continue };
            // Resolved on every build, so a rotated environment value or secret is picked up
            // with the next change (and by the periodic refresh without one).
            if let Some(reference) = spec.credential.as_deref().and_then(CredentialRef::parse) {
                match resolver.resolve(&reference) {
                    Ok(secret) => credentials.push(ResolvedCredential { provider: rec.name.clone(), secret }),
                    Err(m) => warnings.push(format!("provider '{}': credential not resolved: {m}", rec.name)),
                }
            }
        }
        (credentials, warnings)
    }

    /// The snapshot of this view, serialized.
    #[allow(clippy::type_complexity)]
    pub fn assemble(
        &self,
        resolver: &dyn SecretResolver,
    ) -> Result<(Snapshot, Bytes, Vec<String>, Vec<gateway_core::validate::Invalid>), StoreError> {
        let revision = self.revision;
        let mut warnings = Vec::new();
        let mut provider_cfgs = Vec::with_capacity(self.providers.len());
        let (credentials, credential_warnings) = self.credentials(resolver);
        for rec in self.providers.values() {
            let spec: ProviderSpec = match ProviderSpec::deserialize(&rec.doc) {
                Ok(s) => s,
                Err(e) => {
                    warnings.push(format!("provider '{}' skipped: unreadable document: {e}", rec.name));
                    continue;
                }
            };
            provider_cfgs.push(ProviderConfig {
                name: rec.name.clone(),
                kind: spec.kind,
                cluster: spec.cluster,
                credential: None,
                path_prefix: spec.path_prefix,
                settings: spec.settings,
            });
        }

        warnings.extend(credential_warnings);

        let mut route_cfgs = Vec::with_capacity(self.routes.len());
        for rec in self.routes.values() {
            let spec: RouteSpec = match RouteSpec::deserialize(&rec.doc) {
                Ok(s) => s,
                Err(e) => {
                    warnings.push(format!("route '{}' skipped: unreadable document: {e}", rec.name));
                    continue;
                }
            };
            // A route whose provider was deleted concurrently would make the whole snapshot
            // invalid for the filter; leaving the one route out keeps every other route serving.
            if let Some(t) = spec.targets.iter().find(|t| !provider_cfgs.iter().any(|p| p.name == t.provider)) {
                warnings.push(format!("route '{}' skipped: unknown provider '{}'", rec.name, t.provider));
                continue;
            }
            // Policies need Envoy clusters rendered into the bootstrap (ADR 0003); the REST API does not offer them yet.
            route_cfgs.push(RouteConfig { model: rec.name.clone(), targets: spec.targets, policy: None });
        }

        let mut vkeys = Vec::with_capacity(self.keys.len());
        for (name, key) in &self.keys {
            match key {
                Some(k) => vkeys.extend(k.iter().cloned()),
                None => warnings.push(format!("key '{name}' skipped: unreadable document or missing hash")),
            }
        }

        let mut prices = Vec::with_capacity(self.prices.len());
        for rec in self.prices.values() {
            match PriceSpec::deserialize(&rec.doc) {
                Ok(p) => prices.push(p.to_config()),
                Err(e) => warnings.push(format!("price '{}' skipped: unreadable document: {e}", rec.name)),
            }
        }

        let config = GatewayConfig {
            version: revision,
            providers: provider_cfgs,
            routes: route_cfgs,
            limits: Limits::default(),
            defaults: Defaults::default(),
            // JWT policy belongs with Envoy's jwt_authn, in the bootstrap (ADR 0004).
            auth: Default::default(),
            prices,
        };
        let snapshot = Snapshot { version: revision, config, credentials, keys: vkeys };
        // Pushed as stored: each filter applies the validator of its own version and leaves out
        // what it refuses (a rollout can run two versions); this list is the control plane's view.
        let (_, invalid) = gateway_core::validate::prune_snapshot(snapshot.clone());
        for e in &invalid {
            warnings.push(format!("invalid {e}; filters leave it out"));
        }
        let json = serde_json::to_vec(&snapshot).map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok((snapshot, Bytes::from(json), warnings, invalid))
    }
}

/// Reads providers, routes and keys at one store revision and builds the snapshot (a full
/// reload; the running builder uses it only when it cannot apply journaled writes).
pub async fn build(store: &dyn Store, resolver: &dyn SecretResolver) -> Result<BuiltSnapshot, StoreError> {
    let started = Instant::now();
    let view = View::load(store).await?;
    resolver.prepare(&view.credential_refs()).await;
    let (snapshot, json, warnings, invalid) = view.assemble(resolver)?;
    Ok(BuiltSnapshot { snapshot, json, build_time: started.elapsed(), warnings, invalid, source: BuildSource::Reload })
}

/// What the published credentials were, per provider: SHA-256 of each resolved value, so the
/// refresh can tell a changed secret without keeping a second copy of it (and never logs either).
type CredentialPrints = BTreeMap<String, [u8; 32]>;

fn credential_prints(credentials: &[ResolvedCredential]) -> CredentialPrints {
    credentials.iter().map(|c| (c.provider.clone(), Sha256::digest(c.secret.as_bytes()).into())).collect()
}

/// Providers whose credential differs between two prints (changed, appeared or disappeared).
fn changed_providers(a: &CredentialPrints, b: &CredentialPrints) -> Vec<String> {
    let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    names.into_iter().filter(|n| a.get(*n) != b.get(*n)).cloned().collect()
}

/// A committed write made through [`TrackedStore`].
#[derive(Debug, Clone)]
enum Change {
    Put(Record),
    Delete(Kind, String),
    /// [`Store::bump_revision`]: a write that changes no object but counts like one.
    Bump,
}

/// Writes committed through this process and not yet applied to the view, in commit order.
/// The lock is held across each write and its recording, and by the builder while it compares
/// revisions, so "committed but not yet journaled" is never observed as a gap.
#[derive(Default)]
struct Journal {
    pending: Mutex<Vec<Change>>,
}

/// A [`Store`] that journals its successful writes for the snapshot builder. Writes through it
/// are serialised within this process (both backends serialise them anyway: redb has one
/// writer, DynamoDB writes contend on the revision item).
pub struct TrackedStore {
    inner: Arc<dyn Store>,
    journal: Arc<Journal>,
}

#[async_trait]
impl Store for TrackedStore {
    async fn create(
        &self,
        kind: Kind,
        name: &str,
        doc: &Value,
        key_hash: Option<&str>,
        audit: &AuditContext,
    ) -> Result<Record, StoreError> {
        let mut pending = self.journal.pending.lock().await;
        let rec = self.inner.create(kind, name, doc, key_hash, audit).await?;
        pending.push(Change::Put(rec.clone()));
        Ok(rec)
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Option<Record>, StoreError> {
        self.inner.get(kind, name).await
    }

    async fn list(&self, kind: Kind, after: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        self.inner.list(kind, after, limit).await
    }

    async fn update(
        &self,
        kind: Kind,
        name: &str,
        expected: Option<u64>,
        doc: &Value,
        audit: &AuditContext,
    ) -> Result<Record, StoreError> {
        let mut pending = self.journal.pending.lock().await;
        let rec = self.inner.update(kind, name, expected, doc, audit).await?;
        pending.push(Change::Put(rec.clone()));
        Ok(rec)
    }

    async fn delete(
        &self,
        kind: Kind,
        name: &str,
        expected: Option<u64>,
        audit: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut pending = self.journal.pending.lock().await;
        self.inner.delete(kind, name, expected, audit).await?;
        pending.push(Change::Delete(kind, name.to_string()));
        Ok(())
    }

    async fn find_key_by_hash(&self, hash: &str) -> Result<Option<Record>, StoreError> {
        self.inner.find_key_by_hash(hash).await
    }

    async fn rotate_key(
        &self,
        name: &str,
        expected: Option<u64>,
        doc: &Value,
        new_hash: &str,
        release: Option<&str>,
        audit: &AuditContext,
    ) -> Result<Record, StoreError> {
        let mut pending = self.journal.pending.lock().await;
        let rec = self.inner.rotate_key(name, expected, doc, new_hash, release, audit).await?;
        pending.push(Change::Put(rec.clone()));
        Ok(rec)
    }

    async fn revision(&self) -> Result<u64, StoreError> {
        self.inner.revision().await
    }

    async fn list_audit(&self, query: &AuditQuery) -> Result<AuditPage, StoreError> {
        self.inner.list_audit(query).await
    }

    // Journaled like any write: the revision moves by one, so without an entry the builder would
    // see a gap and list the whole store again.
    async fn bump_revision(&self) -> Result<u64, StoreError> {
        let mut pending = self.journal.pending.lock().await;
        let revision = self.inner.bump_revision().await?;
        pending.push(Change::Bump);
        Ok(revision)
    }

    // Usage is not config: it bypasses the journal and never triggers a snapshot.
    async fn apply_usage(&self, marker: &str, increments: &[(Bucket, Counters)], now: u64) -> Result<bool, StoreError> {
        self.inner.apply_usage(marker, increments, now).await
    }

    async fn caller_spend(&self, callers: &[String], day: &str, month: &str) -> Result<Vec<(u64, u64)>, StoreError> {
        self.inner.caller_spend(callers, day, month).await
    }

    async fn usage(
        &self,
        caller: Option<&str>,
        period: PeriodKind,
        from: &str,
        to: &str,
    ) -> Result<Vec<UsageAggregate>, StoreError> {
        self.inner.usage(caller, period, from, to).await
    }
}

/// Brings `view` up to the store's revision: applies the journal when it accounts for every
/// write since the view's revision, else lists the store again. `None` when nothing changed.
async fn refresh(
    store: &dyn Store,
    journal: &Journal,
    view: &mut Option<View>,
) -> Result<Option<BuildSource>, StoreError> {
    let mut pending = journal.pending.lock().await;
    let revision = store.revision().await?;
    let changes = std::mem::take(&mut *pending);
    if let Some(v) = view.as_mut() {
        if v.revision.checked_add(changes.len() as u64) == Some(revision) {
            if changes.is_empty() {
                return Ok(None);
            }
            for c in &changes {
                v.apply(c);
            }
            v.revision = revision;
            return Ok(Some(BuildSource::Incremental(changes.len())));
        }
    }
    // Keep the journal locked while listing: a write of ours committed during the listing
    // could otherwise be both in the view and in the journal.
    *view = None;
    *view = Some(View::load(store).await?);
    Ok(Some(BuildSource::Reload))
}

/// The latest snapshot, `None` until the first build succeeded.
pub type SnapshotRx = watch::Receiver<Option<Arc<BuiltSnapshot>>>;

/// How the builder reacts to changes.
#[derive(Debug, Clone, Copy)]
pub struct BuilderOptions {
    /// How often the store's revision is checked for writes this process did not make.
    pub poll: Duration,
    /// Minimum time between two published snapshots. The first change after a quiet period is
    /// published at once; changes arriving within this interval of the last publication are
    /// folded into one snapshot, so a burst of writes does not send every filter a full snapshot
    /// per write.
    pub min_interval: Duration,
    /// How often every referenced secret is read again ([`SecretResolver::refresh`]); when a
    /// value differs from the last published one, the store's revision is advanced so a new
    /// snapshot version carries it. `None`: only builds triggered by writes resolve secrets.
    pub secrets_refresh: Option<Duration>,
}

impl BuilderOptions {
    /// `poll` as given, changes coalesced within 50 ms, no periodic secret refresh.
    pub fn with_poll(poll: Duration) -> Self {
        BuilderOptions { poll, min_interval: Duration::from_millis(50), secrets_refresh: None }
    }
}

/// Reads the view's secrets again and advances the store's revision when what would be
/// published differs from `published`. Returns whether it did.
async fn refresh_secrets(
    view: &View,
    resolver: &dyn SecretResolver,
    published: &CredentialPrints,
    store: &TrackedStore,
) -> bool {
    resolver.refresh(&view.credential_refs()).await;
    let (credentials, _) = view.credentials(resolver);
    let changed = changed_providers(published, &credential_prints(&credentials));
    if changed.is_empty() {
        return false;
    }
    // Names only: the values and their hashes stay out of the logs.
    match store.bump_revision().await {
        Ok(revision) => {
            tracing::info!(revision, providers = ?changed, "provider credentials changed; publishing a new snapshot version");
            true
        }
        Err(e) => {
            tracing::error!(error = %e, providers = ?changed, "provider credentials changed but the revision could not be advanced; retrying at the next refresh");
            false
        }
    }
}

/// Waits for the next tick of `interval`, forever when there is none.
async fn next_tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// What [`spawn`] returns.
pub struct SnapshotService {
    /// Writes through this store reach the snapshot incrementally; writes that bypass it still
    /// do, through a full reload.
    pub store: Arc<dyn Store>,
    pub snapshots: SnapshotRx,
}

/// Starts the builder. It publishes a snapshot whenever `changed` is notified (writes through
/// this process) or the store's revision moved (checked every `options.poll`).
pub fn spawn(
    store: Arc<dyn Store>,
    resolver: Arc<dyn SecretResolver>,
    changed: Arc<Notify>,
    options: BuilderOptions,
) -> SnapshotService {
    let journal = Arc::new(Journal::default());
    let tracked = Arc::new(TrackedStore { inner: store.clone(), journal: journal.clone() });
    let bumper = tracked.clone();
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let mut view: Option<View> = None;
        let mut last_publish: Option<Instant> = None;
        // The credentials of the last published snapshot, as the refresh compares them.
        let mut published = CredentialPrints::new();
        let mut secrets_tick = options.secrets_refresh.filter(|d| !d.is_zero()).map(|period| {
            let mut i = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        loop {
            let started = Instant::now();
            match refresh(store.as_ref(), &journal, &mut view).await {
                Ok(None) => {}
                Ok(Some(source)) => {
                    let Some(v) = view.as_ref() else { continue };
                    resolver.prepare(&v.credential_refs()).await;
                    match v.assemble(resolver.as_ref()) {
                        Ok((snapshot, json, warnings, invalid)) => {
                            let built = BuiltSnapshot {
                                snapshot,
                                json,
                                build_time: started.elapsed(),
                                warnings,
                                invalid,
                                source,
                            };
                            // GET /v1/snapshot shows the warnings whole; the log leaves references out.
                            let refs = v.credential_refs();
                            for w in &built.warnings {
                                let line = refs.iter().fold(w.clone(), |line, r| r.redact_in(&line));
                                tracing::warn!("{line}");
                            }
                            tracing::info!(
                                version = built.snapshot.version,
                                providers = built.snapshot.config.providers.len(),
                                routes = built.snapshot.config.routes.len(),
                                keys = built.snapshot.keys.len(),
                                bytes = built.json.len(),
                                build_us = built.build_time.as_micros() as u64,
                                source = ?built.source,
                                "snapshot built"
                            );
                            last_publish = Some(Instant::now());
                            published = credential_prints(&built.snapshot.credentials);
                            if tx.send(Some(Arc::new(built))).is_err() {
                                return;
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "snapshot serialization failed; keeping the last one"),
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot bring the snapshot up to date; keeping the last one"),
            }
            tokio::select! {
                _ = changed.notified() => {}
                _ = tokio::time::sleep(options.poll) => {}
                _ = next_tick(&mut secrets_tick) => {
                    // The bump is journaled, so the next round applies it and publishes.
                    if let Some(v) = view.as_ref() {
                        refresh_secrets(v, resolver.as_ref(), &published, &bumper).await;
                    }
                }
                _ = tx.closed() => return,
            }
            if let Some(at) = last_publish {
                let due = at + options.min_interval;
                if Instant::now() < due {
                    tokio::time::sleep_until(due.into()).await;
                }
            }
        }
    });
    SnapshotService { store: tracked, snapshots: rx }
}

/// [`spawn`] for callers that write to `store` directly: every change is a full reload.
pub fn spawn_builder(
    store: Arc<dyn Store>,
    resolver: Arc<dyn SecretResolver>,
    changed: Arc<Notify>,
    poll: Duration,
) -> SnapshotRx {
    spawn(store, resolver, changed, BuilderOptions::with_poll(poll)).snapshots
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::embedded::EmbeddedStore;
    use serde_json::json;

    struct NoSecrets;
    impl SecretResolver for NoSecrets {
        fn resolve(&self, _: &CredentialRef) -> Result<String, String> {
            Ok("resolved".into())
        }
    }

    fn setup() -> (tempfile::TempDir, Arc<dyn Store>, Arc<Journal>, TrackedStore) {
        let dir = tempfile::tempdir().unwrap();
        let raw: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.path().join("s.redb")).unwrap());
        let journal = Arc::new(Journal::default());
        let tracked = TrackedStore { inner: raw.clone(), journal: journal.clone() };
        (dir, raw, journal, tracked)
    }

    fn provider(name: &str) -> Value {
        json!({"name": name, "kind": "openai", "cluster": format!("c-{name}"), "credential": "env:X"})
    }
    fn route(model: &str, provider: &str) -> Value {
        json!({"model": model, "targets": [{"provider": provider, "model": "m"}]})
    }
    fn key(name: &str, model: &str, status: &str) -> Value {
        json!({"name": name, "owner": "o", "allowed_models": [model], "status": status})
    }

    /// Deterministic mixed writes through `store`: creates, updates and deletes of every kind.
    async fn churn(store: &dyn Store, seed: u64, n: usize) {
        let mut s = seed | 1;
        for i in 0..n {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let slot = s % 8;
            let _ = match s % 9 {
                0 => store
                    .create(
                        Kind::Provider,
                        &format!("p{slot}"),
                        &provider(&format!("p{slot}")),
                        None,
                        &crate::audit::AuditContext::tool("test"),
                    )
                    .await
                    .map(drop),
                1 => store
                    .update(
                        Kind::Provider,
                        &format!("p{slot}"),
                        None,
                        &provider(&format!("p{slot}")),
                        &crate::audit::AuditContext::tool("test"),
                    )
                    .await
                    .map(drop),
                2 => {
                    store
                        .delete(Kind::Provider, &format!("p{slot}"), None, &crate::audit::AuditContext::tool("test"))
                        .await
                }
                3 => store
                    .create(
                        Kind::Route,
                        &format!("r{slot}"),
                        &route(&format!("r{slot}"), &format!("p{}", slot % 3)),
                        None,
                        &crate::audit::AuditContext::tool("test"),
                    )
                    .await
                    .map(drop),
                4 => store
                    .update(
                        Kind::Route,
                        &format!("r{slot}"),
                        None,
                        &route(&format!("r{slot}"), "p1"),
                        &crate::audit::AuditContext::tool("test"),
                    )
                    .await
                    .map(drop),
                5 => {
                    store
                        .delete(Kind::Route, &format!("r{slot}"), None, &crate::audit::AuditContext::tool("test"))
                        .await
                }
                6 => store
                    .create(
                        Kind::Key,
                        &format!("k{slot}"),
                        &key(&format!("k{slot}"), "r1", "active"),
                        Some(&format!("{seed:x}{i:060x}")),
                        &crate::audit::AuditContext::tool("test"),
                    )
                    .await
                    .map(drop),
                7 => store
                    .update(
                        Kind::Key,
                        &format!("k{slot}"),
                        None,
                        &key(&format!("k{slot}"), "*", "revoked"),
                        &crate::audit::AuditContext::tool("test"),
                    )
                    .await
                    .map(drop),
                _ => {
                    store.delete(Kind::Key, &format!("k{slot}"), None, &crate::audit::AuditContext::tool("test")).await
                }
            };
        }
    }

    #[tokio::test]
    async fn journaled_writes_keep_the_view_equal_to_a_full_listing() {
        let (_dir, raw, journal, tracked) = setup();
        let mut view = None;
        assert_eq!(refresh(raw.as_ref(), &journal, &mut view).await.unwrap(), Some(BuildSource::Reload));
        assert_eq!(refresh(raw.as_ref(), &journal, &mut view).await.unwrap(), None, "nothing changed");
        for round in 0..30u64 {
            churn(&tracked, round + 1, 7).await;
            let source = refresh(raw.as_ref(), &journal, &mut view).await.unwrap();
            let full = View::load(raw.as_ref()).await.unwrap();
            if full.revision != view.as_ref().map_or(0, |v| v.revision) || source.is_some() {
                assert!(matches!(source, Some(BuildSource::Incremental(_))), "round {round}: {source:?}");
            }
            assert_eq!(view.as_ref(), Some(&full), "round {round}");
        }
        // Same bytes as a build from scratch.
        let v = view.as_ref().unwrap();
        assert!(!v.keys.is_empty() && !v.routes.is_empty(), "the churn exercised every kind");
        let (_, json, warnings, _) = v.assemble(&NoSecrets).unwrap();
        let full = build(raw.as_ref(), &NoSecrets).await.unwrap();
        assert_eq!(json, full.json);
        assert_eq!(warnings, full.warnings);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_never_look_like_a_gap() {
        let (_dir, raw, journal, tracked) = setup();
        let tracked = Arc::new(tracked);
        let mut view = None;
        refresh(raw.as_ref(), &journal, &mut view).await.unwrap();
        let writers: Vec<_> = (0..4u64)
            .map(|w| {
                let t = tracked.clone();
                tokio::spawn(async move { churn(t.as_ref(), 100 + w, 40).await })
            })
            .collect();
        let mut reloads = 0;
        while !writers.iter().all(|w| w.is_finished()) {
            if refresh(raw.as_ref(), &journal, &mut view).await.unwrap() == Some(BuildSource::Reload) {
                reloads += 1;
            }
            tokio::task::yield_now().await;
        }
        for w in writers {
            w.await.unwrap();
        }
        if refresh(raw.as_ref(), &journal, &mut view).await.unwrap() == Some(BuildSource::Reload) {
            reloads += 1;
        }
        assert_eq!(reloads, 0, "writes through the tracked store are applied, never reloaded");
        assert_eq!(view, Some(View::load(raw.as_ref()).await.unwrap()));
    }

    #[tokio::test]
    async fn a_write_the_journal_missed_triggers_a_reload() {
        let (_dir, raw, journal, tracked) = setup();
        let mut view = None;
        refresh(raw.as_ref(), &journal, &mut view).await.unwrap();
        tracked
            .create(Kind::Provider, "a", &provider("a"), None, &crate::audit::AuditContext::tool("test"))
            .await
            .unwrap();
        // Another replica (the raw store) writes too.
        raw.create(Kind::Provider, "b", &provider("b"), None, &crate::audit::AuditContext::tool("test")).await.unwrap();
        tracked
            .create(Kind::Route, "r", &route("r", "b"), None, &crate::audit::AuditContext::tool("test"))
            .await
            .unwrap();
        assert_eq!(refresh(raw.as_ref(), &journal, &mut view).await.unwrap(), Some(BuildSource::Reload));
        assert_eq!(view, Some(View::load(raw.as_ref()).await.unwrap()));
        assert_eq!(view.as_ref().unwrap().revision(), 3);
        // Back to incremental once the gap is closed.
        tracked.delete(Kind::Route, "r", None, &crate::audit::AuditContext::tool("test")).await.unwrap();
        assert_eq!(refresh(raw.as_ref(), &journal, &mut view).await.unwrap(), Some(BuildSource::Incremental(1)));
        assert_eq!(view, Some(View::load(raw.as_ref()).await.unwrap()));
        // A failed write is not journaled and does not move the revision.
        assert!(tracked
            .create(Kind::Provider, "a", &provider("a"), None, &crate::audit::AuditContext::tool("test"))
            .await
            .is_err());
        assert_eq!(refresh(raw.as_ref(), &journal, &mut view).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_bump_is_journaled_like_a_write_and_changes_no_object() {
        let (_dir, raw, journal, tracked) = setup();
        let mut view = None;
        tracked
            .create(Kind::Provider, "a", &provider("a"), None, &crate::audit::AuditContext::tool("test"))
            .await
            .unwrap();
        refresh(raw.as_ref(), &journal, &mut view).await.unwrap();
        let before = view.clone().unwrap();
        assert_eq!(tracked.bump_revision().await.unwrap(), 2);
        assert_eq!(refresh(raw.as_ref(), &journal, &mut view).await.unwrap(), Some(BuildSource::Incremental(1)));
        let after = view.clone().unwrap();
        assert_eq!(after.revision(), 2);
        assert_eq!(View { revision: 1, ..after }, before, "only the revision moved");
        assert_eq!(view, Some(View::load(raw.as_ref()).await.unwrap()));
        // A bump by another replica is a gap like any write it made.
        assert_eq!(raw.bump_revision().await.unwrap(), 3);
        assert_eq!(refresh(raw.as_ref(), &journal, &mut view).await.unwrap(), Some(BuildSource::Reload));
        assert_eq!(view.as_ref().unwrap().revision(), 3);
    }

    /// Resolves every reference to the current value of a shared cell (a secret that can be
    /// changed at its source) as of the last `refresh`, like the Secrets Manager cache.
    struct Rotating {
        source: Arc<std::sync::Mutex<String>>,
        cached: std::sync::Mutex<String>,
        refreshes: std::sync::atomic::AtomicUsize,
    }

    impl Rotating {
        fn new(source: &Arc<std::sync::Mutex<String>>) -> Arc<Self> {
            let cached = std::sync::Mutex::new(source.lock().unwrap().clone());
            Arc::new(Rotating { source: source.clone(), cached, refreshes: Default::default() })
        }
    }

    #[async_trait]
    impl SecretResolver for Rotating {
        async fn refresh(&self, _: &[CredentialRef]) {
            self.refreshes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            *self.cached.lock().unwrap() = self.source.lock().unwrap().clone();
        }
        fn resolve(&self, _: &CredentialRef) -> Result<String, String> {
            Ok(self.cached.lock().unwrap().clone())
        }
    }

    fn secrets_options(refresh_ms: u64, poll_ms: u64) -> BuilderOptions {
        BuilderOptions {
            poll: Duration::from_millis(poll_ms),
            min_interval: Duration::from_millis(10),
            secrets_refresh: Some(Duration::from_millis(refresh_ms)),
        }
    }

    async fn wait_for_credential(rx: &mut SnapshotRx, value: &str) -> Arc<BuiltSnapshot> {
        let wait = rx.wait_for(|s| s.as_ref().is_some_and(|b| b.snapshot.credential("p") == Some(value)));
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .expect("credential published")
            .unwrap()
            .clone()
            .unwrap()
    }

    #[tokio::test]
    async fn a_changed_secret_is_published_under_a_new_version_without_an_api_write() {
        let (_dir, raw, _, _) = setup();
        let source = Arc::new(std::sync::Mutex::new("first-value".to_string()));
        let resolver = Rotating::new(&source);
        let changed = Arc::new(Notify::new());
        let svc = spawn(raw.clone(), resolver.clone(), changed.clone(), secrets_options(100, 60_000));
        let mut rx = svc.snapshots.clone();
        svc.store
            .create(Kind::Provider, "p", &provider("p"), None, &crate::audit::AuditContext::tool("test"))
            .await
            .unwrap();
        changed.notify_one();
        let first = wait_for_credential(&mut rx, "first-value").await;
        assert_eq!(first.snapshot.version, 1);

        // Unchanged values: several refreshes, no new version.
        let seen = resolver.refreshes.load(std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(resolver.refreshes.load(std::sync::atomic::Ordering::SeqCst) >= seen + 3, "the refresh runs");
        assert_eq!(raw.revision().await.unwrap(), 1, "no version churn");
        assert_eq!(rx.borrow().as_ref().unwrap().snapshot.version, 1);

        // The value changes at its source: a new version carries it, with no object written.
        *source.lock().unwrap() = "second-value".into();
        let second = wait_for_credential(&mut rx, "second-value").await;
        assert_eq!(second.snapshot.version, 2);
        assert_eq!(second.source, BuildSource::Incremental(1), "the bump was journaled, not reloaded");
        assert_eq!(raw.get(Kind::Provider, "p").await.unwrap().unwrap().version, 1, "no object changed");
        assert_eq!(second.snapshot.config, GatewayConfig { version: 2, ..first.snapshot.config.clone() });
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(raw.revision().await.unwrap(), 2, "one bump per change");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replicas_converge_on_one_version_carrying_the_new_secret() {
        let (_dir, raw, _, _) = setup();
        let source = Arc::new(std::sync::Mutex::new("first-value".to_string()));
        let changed = Arc::new(Notify::new());
        // Two replicas on one store, refreshing at different moments, each with its own cache.
        let a = spawn(raw.clone(), Rotating::new(&source), changed.clone(), secrets_options(150, 50));
        let b = spawn(raw.clone(), Rotating::new(&source), Arc::new(Notify::new()), secrets_options(400, 50));
        let (mut ra, mut rb) = (a.snapshots.clone(), b.snapshots.clone());
        a.store
            .create(Kind::Provider, "p", &provider("p"), None, &crate::audit::AuditContext::tool("test"))
            .await
            .unwrap();
        changed.notify_one();
        wait_for_credential(&mut ra, "first-value").await;
        wait_for_credential(&mut rb, "first-value").await;

        *source.lock().unwrap() = "second-value".into();
        wait_for_credential(&mut ra, "second-value").await;
        wait_for_credential(&mut rb, "second-value").await;
        // Each replica bumps at most once; after that both publish the store's revision with
        // the new value, whatever an Envoy switching between them has seen before.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let revision = raw.revision().await.unwrap();
        assert!((2..=3).contains(&revision), "revision {revision}");
        for rx in [&ra, &rb] {
            let b = rx.borrow().clone().unwrap();
            assert_eq!((b.snapshot.version, b.snapshot.credential("p")), (revision, Some("second-value")));
        }
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(raw.revision().await.unwrap(), revision, "no churn once converged");
    }

    #[tokio::test]
    async fn bursts_are_coalesced_and_each_snapshot_is_shared() {
        let (_dir, raw, _, _) = setup();
        let changed = Arc::new(Notify::new());
        let opts = BuilderOptions {
            poll: Duration::from_secs(60),
            min_interval: Duration::from_secs(2),
            secrets_refresh: None,
        };
        let svc = spawn(raw, Arc::new(NoSecrets), changed.clone(), opts);
        let mut rx = svc.snapshots.clone();
        rx.wait_for(|s| s.is_some()).await.unwrap();
        svc.store
            .create(Kind::Provider, "p", &provider("p"), None, &crate::audit::AuditContext::tool("test"))
            .await
            .unwrap();
        changed.notify_one();
        let first =
            rx.wait_for(|s| s.as_ref().is_some_and(|b| b.snapshot.version == 1)).await.unwrap().clone().unwrap();
        assert_eq!(first.source, BuildSource::Incremental(1));
        // Twenty writes within the interval after that publication: one more snapshot, not twenty.
        for i in 0..20 {
            svc.store
                .create(
                    Kind::Route,
                    &format!("r{i}"),
                    &route(&format!("r{i}"), "p"),
                    None,
                    &crate::audit::AuditContext::tool("test"),
                )
                .await
                .unwrap();
            changed.notify_one();
        }
        let mut versions = Vec::new();
        let last = loop {
            rx.changed().await.unwrap();
            let b = rx.borrow_and_update().clone().unwrap();
            versions.push(b.snapshot.version);
            if b.snapshot.version == 21 {
                break b;
            }
        };
        // Writes slower than the interval (a loaded machine, fsync) may split the burst once more.
        assert!(versions.len() <= 3, "published versions {versions:?}");
        assert!(matches!(last.source, BuildSource::Incremental(n) if n >= 10), "{:?}", last.source);
        // Subscribers get clones of one buffer, not copies.
        let a = rx.borrow().clone().unwrap().json.clone();
        assert_eq!(a.as_ptr(), last.json.as_ptr());
    }
}
