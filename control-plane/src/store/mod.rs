//! Persistence of providers, routes and virtual keys behind one trait, with optimistic
//! concurrency on every object and a global revision that versions config snapshots.

pub mod dynamo;
pub mod embedded;

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde_json::Value;

use crate::audit::{AuditContext, AuditPage, AuditQuery};
use crate::usage::{Bucket, Counters, PeriodKind, UsageAggregate};

/// The collections the store holds. Names are unique within a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Provider,
    Route,
    Key,
    /// A price table row (`<provider>/<model>`).
    Price,
}

impl Kind {
    /// Every kind, in the order snapshots and apply plans handle them.
    pub const ALL: [Kind; 4] = [Kind::Provider, Kind::Route, Kind::Key, Kind::Price];

    /// Stable identifier used in storage keys and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Provider => "provider",
            Kind::Route => "route",
            Kind::Key => "key",
            Kind::Price => "price",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stored object with its concurrency metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub kind: Kind,
    pub name: String,
    /// Starts at 1 and grows by one with every update; the HTTP `ETag`.
    pub version: u64,
    /// The object's JSON document (never a secret: credentials are references, keys are hashed).
    pub doc: Value,
    /// SHA-256 (hex) of a virtual key's secret; `None` for other kinds. Immutable after creation.
    pub key_hash: Option<String>,
    pub created_at: u64,
    pub updated_at: u64,
}

/// One page of a listing, in name order.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub items: Vec<Record>,
    /// Name of the last item when more may follow; pass it back as `after`.
    pub next: Option<String>,
}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} '{name}' already exists")]
    AlreadyExists { kind: Kind, name: String },
    #[error("{kind} '{name}' not found")]
    NotFound { kind: Kind, name: String },
    #[error("{kind} '{name}' is at version {current}, not the expected {expected}")]
    VersionMismatch { kind: Kind, name: String, expected: u64, current: u64 },
    #[error("store backend error: {0}")]
    Backend(String),
}

/// Storage of config objects. Every successful create, update, delete, key rotation and
/// [`Store::bump_revision`] increments the store's revision by exactly one, atomically with the
/// write, so a snapshot's version says exactly which writes it contains. Every create, update,
/// delete and rotation also appends an audit record built from `audit` in the same transaction
/// (ADR 0021): an audit write that fails fails the change, and a change that fails leaves no
/// record.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates an object; fails with `AlreadyExists` if the name is taken.
    async fn create(
        &self,
        kind: Kind,
        name: &str,
        doc: &Value,
        key_hash: Option<&str>,
        audit: &AuditContext,
    ) -> Result<Record, StoreError>;
    async fn get(&self, kind: Kind, name: &str) -> Result<Option<Record>, StoreError>;
    /// Up to `limit` objects whose names sort after `after`.
    async fn list(&self, kind: Kind, after: Option<&str>, limit: usize) -> Result<Page, StoreError>;
    /// Replaces the document. With `expected`, succeeds only if the stored version equals it.
    async fn update(
        &self,
        kind: Kind,
        name: &str,
        expected: Option<u64>,
        doc: &Value,
        audit: &AuditContext,
    ) -> Result<Record, StoreError>;
    /// Deletes the object. With `expected`, succeeds only if the stored version equals it.
    async fn delete(
        &self,
        kind: Kind,
        name: &str,
        expected: Option<u64>,
        audit: &AuditContext,
    ) -> Result<(), StoreError>;
    /// The virtual key whose secret hashes to `hash`.
    async fn find_key_by_hash(&self, hash: &str) -> Result<Option<Record>, StoreError>;
    /// Rotates a virtual key's secret in one atomic write: claims `new_hash` (unique across
    /// every key, like at creation; a taken hash is a `Backend` error), releases the claim of
    /// `release` (the secret two rotations back, never the record's own `key_hash`), and replaces
    /// the document (which names the current and previous hashes, [`rotation_hashes`]). With
    /// `expected`, succeeds only if the stored version equals it.
    async fn rotate_key(
        &self,
        name: &str,
        expected: Option<u64>,
        doc: &Value,
        new_hash: &str,
        release: Option<&str>,
        audit: &AuditContext,
    ) -> Result<Record, StoreError>;
    /// Number of writes ever applied; 0 for an empty store.
    async fn revision(&self) -> Result<u64, StoreError>;
    /// Audit records matching `query`, newest first (not config: never moves the revision).
    async fn list_audit(&self, query: &AuditQuery) -> Result<AuditPage, StoreError>;
    /// Advances the revision by one without changing any object, and returns the new revision:
    /// a write that makes every replica publish a new snapshot version when something outside
    /// the store (a secret rotated in Secrets Manager) changed what the snapshot holds.
    async fn bump_revision(&self) -> Result<u64, StoreError>;

    /// Usage accounting (not config: it never moves the revision). Atomically records `marker`
    /// and adds every increment, unless `marker` is already recorded, in which case nothing
    /// changes. Returns whether it was applied. At most [`crate::usage::MAX_ITEMS_PER_CHUNK`]
    /// items including the marker; each bucket at most once.
    async fn apply_usage(&self, marker: &str, increments: &[(Bucket, Counters)], now: u64) -> Result<bool, StoreError>;
    /// Each caller's total cost in picodollars on `day` (`YYYY-MM-DD`) and in `month`
    /// (`YYYY-MM`), in the order of `callers`.
    async fn caller_spend(&self, callers: &[String], day: &str, month: &str) -> Result<Vec<(u64, u64)>, StoreError>;
    /// Per provider model aggregates of one caller (or every caller) whose period lies between
    /// `from` and `to` inclusive (prefix comparison: a month bounds the days in it), sorted by
    /// caller, period, provider, model.
    async fn usage(
        &self,
        caller: Option<&str>,
        period: PeriodKind,
        from: &str,
        to: &str,
    ) -> Result<Vec<UsageAggregate>, StoreError>;
}

/// The secret hashes a key's rotation claimed besides its `key_hash` (its first secret): the
/// document's `rotation.secret_hash` and `rotation.previous_hash`. Deleting the key releases them.
pub fn rotation_hashes(doc: &Value) -> Vec<String> {
    let Some(rotation) = doc.get("rotation") else { return Vec::new() };
    ["secret_hash", "previous_hash"]
        .iter()
        .filter_map(|f| rotation.get(*f).and_then(Value::as_str))
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .collect()
}

/// Reads every object of a kind, following pagination.
pub async fn list_all(store: &dyn Store, kind: Kind) -> Result<Vec<Record>, StoreError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list(kind, after.as_deref(), 1000).await?;
        out.extend(page.items);
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
