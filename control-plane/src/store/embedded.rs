//! Embedded on-disk store (redb): the default for local runs, no AWS account needed.
//!
//! redb serialises write transactions, so the version check and the write happen in one
//! transaction and optimistic concurrency is exact.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{now_unix, rotation_hashes, Kind, Page, Record, Store, StoreError};
use crate::audit::{self, Action, AuditContext, AuditPage, AuditQuery, AuditRecord};
use crate::usage::{Bucket, Counters, PeriodKind, UsageAggregate, MARKER_TTL_SECS};

/// `"<kind>\0<name>"` → JSON of [`Item`].
const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
/// Virtual key hash → key name.
const KEY_HASHES: TableDefinition<&str, &str> = TableDefinition::new("key_hashes");
/// `"revision"` → number of writes.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Usage batch chunk marker → Unix seconds it was applied.
const USAGE_MARKERS: TableDefinition<&str, u64> = TableDefinition::new("usage_markers");
/// (applied at, marker): lets expired markers be pruned in time order.
const USAGE_MARKER_TIMES: TableDefinition<(u64, &str), ()> = TableDefinition::new("usage_marker_times");
/// `"<caller>\0<d|m>\0<period>\0<provider>\0<model>"` → JSON of [`Counters`].
const USAGE: TableDefinition<&str, &[u8]> = TableDefinition::new("usage");
/// `"<caller>\0<d|m>\0<period>"` → JSON of [`Counters`] (the caller's total).
const USAGE_TOTALS: TableDefinition<&str, &[u8]> = TableDefinition::new("usage_totals");
/// Audit record id → JSON of [`AuditRecord`] (ids sort by time).
const AUDIT: TableDefinition<&str, &[u8]> = TableDefinition::new("audit");
/// `"<kind>\0<name>\0<id>"`: one object's records, for listings filtered by object.
const AUDIT_BY_OBJECT: TableDefinition<&str, ()> = TableDefinition::new("audit_by_object");
/// Expired markers removed per applied chunk, so pruning never makes one write slow.
const PRUNE_PER_WRITE: usize = 64;

#[derive(Serialize, Deserialize)]
struct Item {
    version: u64,
    doc: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_hash: Option<String>,
    created_at: u64,
    updated_at: u64,
}

/// A store in one redb file.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    /// Audit records older than this many seconds are pruned as new ones are written.
    audit_retention: Option<u64>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn object_key(kind: Kind, name: &str) -> String {
    format!("{}\0{}", kind.as_str(), name)
}

fn to_record(kind: Kind, name: &str, item: Item) -> Record {
    Record {
        kind,
        name: name.to_string(),
        version: item.version,
        doc: item.doc,
        key_hash: item.key_hash,
        created_at: item.created_at,
        updated_at: item.updated_at,
    }
}

fn decode(bytes: &[u8]) -> Result<Item, StoreError> {
    serde_json::from_slice(bytes).map_err(backend)
}

/// The stored object at `key`, if its version is `expected` (when given): the optimistic
/// concurrency check every conditional write starts with.
fn current_item(
    objects: &impl ReadableTable<&'static str, &'static [u8]>,
    kind: Kind,
    name: &str,
    key: &str,
    expected: Option<u64>,
) -> Result<Item, StoreError> {
    let current = match objects.get(key).map_err(backend)? {
        Some(v) => decode(v.value())?,
        None => return Err(StoreError::NotFound { kind, name: name.to_owned() }),
    };
    match expected {
        Some(e) if e != current.version => {
            Err(StoreError::VersionMismatch { kind, name: name.to_owned(), expected: e, current: current.version })
        }
        _ => Ok(current),
    }
}

fn usage_key(b: &Bucket) -> (bool, String) {
    match b {
        Bucket::Model { caller, period, key, provider, model } => {
            (true, format!("{caller}\0{}\0{key}\0{provider}\0{model}", period.tag()))
        }
        Bucket::Total { caller, period, key } => (false, format!("{caller}\0{}\0{key}", period.tag())),
    }
}

fn decode_counters(bytes: &[u8]) -> Result<Counters, StoreError> {
    serde_json::from_slice(bytes).map_err(backend)
}

fn add_to(table: &mut redb::Table<&str, &[u8]>, key: &str, inc: &Counters) -> Result<(), StoreError> {
    let mut c = match table.get(key).map_err(backend)? {
        Some(v) => decode_counters(v.value())?,
        None => Counters::default(),
    };
    c.add(inc);
    let bytes = serde_json::to_vec(&c).map_err(backend)?;
    table.insert(key, bytes.as_slice()).map_err(backend)?;
    Ok(())
}

fn audit_index_key(kind: &str, name: &str, id: &str) -> String {
    format!("{kind}\0{name}\0{id}")
}

/// Most expired audit records pruned per write, so pruning never makes one write slow.
const AUDIT_PRUNE_PER_WRITE: usize = 64;

/// Appends `rec` in the write's transaction; an id already taken fails the transaction (records
/// are never overwritten). With a retention, drops up to [`AUDIT_PRUNE_PER_WRITE`] records older
/// than it.
fn append_audit(txn: &redb::WriteTransaction, rec: &AuditRecord, retention: Option<u64>) -> Result<(), StoreError> {
    let mut table = txn.open_table(AUDIT).map_err(backend)?;
    let mut index = txn.open_table(AUDIT_BY_OBJECT).map_err(backend)?;
    if table.get(rec.id.as_str()).map_err(backend)?.is_some() {
        return Err(audit::duplicate(&rec.id));
    }
    let bytes = audit::to_json(rec)?;
    table.insert(rec.id.as_str(), bytes.as_bytes()).map_err(backend)?;
    index.insert(audit_index_key(&rec.kind, &rec.name, &rec.id).as_str(), ()).map_err(backend)?;
    if let Some(secs) = retention {
        let cutoff = format!("{:013}", rec.time_ms().saturating_sub(secs.saturating_mul(1000)));
        let mut expired = Vec::new();
        for entry in table.range::<&str>(..cutoff.as_str()).map_err(backend)?.take(AUDIT_PRUNE_PER_WRITE) {
            let (k, v) = entry.map_err(backend)?;
            let old = audit::from_json(v.value())?;
            expired.push((k.value().to_string(), old.kind, old.name));
        }
        for (id, kind, name) in expired {
            table.remove(id.as_str()).map_err(backend)?;
            index.remove(audit_index_key(&kind, &name, &id).as_str()).map_err(backend)?;
        }
    }
    Ok(())
}

fn bump_revision(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    let mut meta = txn.open_table(META).map_err(backend)?;
    let current = meta.get("revision").map_err(backend)?.map(|v| v.value()).unwrap_or(0);
    meta.insert("revision", current + 1).map_err(backend)?;
    Ok(())
}

impl EmbeddedStore {
    /// Opens (or creates) the database file. Only one process may hold it at a time.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(backend)?;
        }
        let db = Database::create(path).map_err(backend)?;
        let txn = db.begin_write().map_err(backend)?;
        {
            // Create the tables up front so read transactions never see them missing.
            txn.open_table(OBJECTS).map_err(backend)?;
            txn.open_table(KEY_HASHES).map_err(backend)?;
            txn.open_table(META).map_err(backend)?;
            txn.open_table(USAGE_MARKERS).map_err(backend)?;
            txn.open_table(USAGE_MARKER_TIMES).map_err(backend)?;
            txn.open_table(USAGE).map_err(backend)?;
            txn.open_table(USAGE_TOTALS).map_err(backend)?;
            txn.open_table(AUDIT).map_err(backend)?;
            txn.open_table(AUDIT_BY_OBJECT).map_err(backend)?;
        }
        txn.commit().map_err(backend)?;
        Ok(EmbeddedStore { db: Arc::new(db), audit_retention: None })
    }

    /// Keeps audit records `days` days (`CP_AUDIT_RETENTION_DAYS`; `None` or 0: forever).
    pub fn with_audit_retention(mut self, days: Option<u64>) -> Self {
        self.audit_retention = audit::retention_secs(days);
        self
    }

    /// The raw stored bytes of every audit record and index entry, as text: lets tests search
    /// what the audit trail holds.
    pub async fn audit_raw(&self) -> Result<Vec<String>, StoreError> {
        self.blocking(|db| {
            let txn = db.begin_read().map_err(backend)?;
            let mut out = Vec::new();
            for entry in txn.open_table(AUDIT).map_err(backend)?.iter().map_err(backend)? {
                let (k, v) = entry.map_err(backend)?;
                out.push(format!("{}={}", k.value(), String::from_utf8_lossy(v.value())));
            }
            for entry in txn.open_table(AUDIT_BY_OBJECT).map_err(backend)?.iter().map_err(backend)? {
                out.push(entry.map_err(backend)?.0.value().to_string());
            }
            Ok(out)
        })
        .await
    }

    /// Runs blocking redb work off the async runtime's worker threads.
    async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db)).await.map_err(backend)?
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn create(
        &self,
        kind: Kind,
        name: &str,
        doc: &Value,
        key_hash: Option<&str>,
        audit: &AuditContext,
    ) -> Result<Record, StoreError> {
        let name = name.to_string();
        let doc = doc.clone();
        let key_hash = key_hash.map(str::to_string);
        let (ctx, retention) = (audit.clone(), self.audit_retention);
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(backend)?;
            let now = now_unix();
            let item = Item { version: 1, doc, key_hash, created_at: now, updated_at: now };
            {
                let mut objects = txn.open_table(OBJECTS).map_err(backend)?;
                let k = object_key(kind, &name);
                if objects.get(k.as_str()).map_err(backend)?.is_some() {
                    return Err(StoreError::AlreadyExists { kind, name });
                }
                let bytes = serde_json::to_vec(&item).map_err(backend)?;
                objects.insert(k.as_str(), bytes.as_slice()).map_err(backend)?;
                if let Some(h) = &item.key_hash {
                    let mut hashes = txn.open_table(KEY_HASHES).map_err(backend)?;
                    if hashes.get(h.as_str()).map_err(backend)?.is_some() {
                        return Err(StoreError::Backend("key hash already registered".into()));
                    }
                    hashes.insert(h.as_str(), name.as_str()).map_err(backend)?;
                }
            }
            let rec = to_record(kind, &name, item);
            let entry = ctx.record(Action::Create, kind, &name, None, Some(&rec));
            append_audit(&txn, &entry, retention)?;
            bump_revision(&txn)?;
            txn.commit().map_err(backend)?;
            entry.log();
            Ok(rec)
        })
        .await
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Option<Record>, StoreError> {
        let name = name.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let objects = txn.open_table(OBJECTS).map_err(backend)?;
            let found = objects.get(object_key(kind, &name).as_str()).map_err(backend)?;
            match found {
                Some(v) => Ok(Some(to_record(kind, &name, decode(v.value())?))),
                None => Ok(None),
            }
        })
        .await
    }

    async fn list(&self, kind: Kind, after: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        let after = after.map(str::to_string);
        let limit = limit.max(1);
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let objects = txn.open_table(OBJECTS).map_err(backend)?;
            let prefix = format!("{}\0", kind.as_str());
            // '\u{1}' sorts right after the '\0' separator: the end of this kind's key range.
            let end = format!("{}\u{1}", kind.as_str());
            let start = match &after {
                Some(a) => Bound::Excluded(format!("{prefix}{a}")),
                None => Bound::Included(prefix.clone()),
            };
            let start_ref = match &start {
                Bound::Included(s) => Bound::Included(s.as_str()),
                Bound::Excluded(s) => Bound::Excluded(s.as_str()),
                Bound::Unbounded => Bound::Unbounded,
            };
            let range = objects.range::<&str>((start_ref, Bound::Excluded(end.as_str()))).map_err(backend)?;
            let mut items = Vec::new();
            let mut more = false;
            for entry in range {
                let (k, v) = entry.map_err(backend)?;
                if items.len() == limit {
                    more = true;
                    break;
                }
                let name = k.value().strip_prefix(prefix.as_str()).unwrap_or_default().to_string();
                items.push(to_record(kind, &name, decode(v.value())?));
            }
            let next = if more { items.last().map(|r| r.name.clone()) } else { None };
            Ok(Page { items, next })
        })
        .await
    }

    async fn update(
        &self,
        kind: Kind,
        name: &str,
        expected: Option<u64>,
        doc: &Value,
        audit: &AuditContext,
    ) -> Result<Record, StoreError> {
        let name = name.to_string();
        let doc = doc.clone();
        let (ctx, retention) = (audit.clone(), self.audit_retention);
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(backend)?;
            let (before, item);
            {
                let mut objects = txn.open_table(OBJECTS).map_err(backend)?;
                let k = object_key(kind, &name);
                let current = current_item(&objects, kind, &name, &k, expected)?;
                before = to_record(kind, &name, Item { doc: current.doc.clone(), key_hash: None, ..current });
                item = Item { version: current.version + 1, doc, updated_at: now_unix(), ..current };
                let bytes = serde_json::to_vec(&item).map_err(backend)?;
                objects.insert(k.as_str(), bytes.as_slice()).map_err(backend)?;
            }
            let rec = to_record(kind, &name, item);
            let entry = ctx.record(Action::Update, kind, &name, Some(&before), Some(&rec));
            append_audit(&txn, &entry, retention)?;
            bump_revision(&txn)?;
            txn.commit().map_err(backend)?;
            entry.log();
            Ok(rec)
        })
        .await
    }

    async fn delete(
        &self,
        kind: Kind,
        name: &str,
        expected: Option<u64>,
        audit: &AuditContext,
    ) -> Result<(), StoreError> {
        let name = name.to_string();
        let (ctx, retention) = (audit.clone(), self.audit_retention);
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(backend)?;
            let before;
            {
                let mut objects = txn.open_table(OBJECTS).map_err(backend)?;
                let k = object_key(kind, &name);
                let current = current_item(&objects, kind, &name, &k, expected)?;
                objects.remove(k.as_str()).map_err(backend)?;
                let mut hashes = txn.open_table(KEY_HASHES).map_err(backend)?;
                for h in current.key_hash.iter().cloned().chain(rotation_hashes(&current.doc)) {
                    hashes.remove(h.as_str()).map_err(backend)?;
                }
                before = to_record(kind, &name, current);
            }
            let entry = ctx.record(Action::Delete, kind, &name, Some(&before), None);
            append_audit(&txn, &entry, retention)?;
            bump_revision(&txn)?;
            txn.commit().map_err(backend)?;
            entry.log();
            Ok(())
        })
        .await
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
        let name = name.to_string();
        let doc = doc.clone();
        let new_hash = new_hash.to_string();
        let release = release.map(str::to_string);
        let (ctx, retention) = (audit.clone(), self.audit_retention);
        self.blocking(move |db| {
            let kind = Kind::Key;
            let txn = db.begin_write().map_err(backend)?;
            let (before, item);
            {
                let mut objects = txn.open_table(OBJECTS).map_err(backend)?;
                let k = object_key(kind, &name);
                let current = current_item(&objects, kind, &name, &k, expected)?;
                let mut hashes = txn.open_table(KEY_HASHES).map_err(backend)?;
                if hashes.get(new_hash.as_str()).map_err(backend)?.is_some() {
                    return Err(StoreError::Backend("key hash already registered".into()));
                }
                hashes.insert(new_hash.as_str(), name.as_str()).map_err(backend)?;
                if let Some(r) = release.as_deref().filter(|r| current.key_hash.as_deref() != Some(*r)) {
                    hashes.remove(r).map_err(backend)?;
                }
                before = to_record(kind, &name, Item { doc: current.doc.clone(), key_hash: None, ..current });
                item = Item { version: current.version + 1, doc, updated_at: now_unix(), ..current };
                let bytes = serde_json::to_vec(&item).map_err(backend)?;
                objects.insert(k.as_str(), bytes.as_slice()).map_err(backend)?;
            }
            let rec = to_record(kind, &name, item);
            let entry = ctx.record(Action::Rotate, kind, &name, Some(&before), Some(&rec));
            append_audit(&txn, &entry, retention)?;
            bump_revision(&txn)?;
            txn.commit().map_err(backend)?;
            entry.log();
            Ok(rec)
        })
        .await
    }

    async fn list_audit(&self, query: &AuditQuery) -> Result<AuditPage, StoreError> {
        let q = query.clone();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let table = txn.open_table(AUDIT).map_err(backend)?;
            let (lo, hi) = (q.low_id(), q.high_id());
            let limit = q.limit.max(1);
            let mut items: Vec<AuditRecord> = Vec::new();
            if lo > hi {
                return Ok(AuditPage::default());
            }
            let mut take = |id: &str, bytes: &[u8]| -> Result<bool, StoreError> {
                if q.before_id.as_deref() == Some(id) {
                    return Ok(true);
                }
                let r = audit::from_json(bytes)?;
                if q.matches(&r) {
                    items.push(r);
                }
                Ok(items.len() <= limit)
            };
            match (&q.kind, &q.name) {
                // One object's records: its index range, not the whole trail.
                (Some(kind), Some(name)) => {
                    let index = txn.open_table(AUDIT_BY_OBJECT).map_err(backend)?;
                    let (from, to) =
                        (audit_index_key(kind.as_str(), name, &lo), audit_index_key(kind.as_str(), name, &hi));
                    let prefix_len = from.len() - lo.len();
                    for entry in index.range::<&str>(from.as_str()..=to.as_str()).map_err(backend)?.rev() {
                        let (k, _) = entry.map_err(backend)?;
                        let id = k.value().get(prefix_len..).unwrap_or_default().to_string();
                        let Some(v) = table.get(id.as_str()).map_err(backend)? else { continue };
                        if !take(&id, v.value())? {
                            break;
                        }
                    }
                }
                _ => {
                    for entry in table.range::<&str>(lo.as_str()..=hi.as_str()).map_err(backend)?.rev() {
                        let (k, v) = entry.map_err(backend)?;
                        if !take(k.value(), v.value())? {
                            break;
                        }
                    }
                }
            }
            let next = if items.len() > limit {
                items.truncate(limit);
                items.last().map(|r| r.id.clone())
            } else {
                None
            };
            Ok(AuditPage { items, next })
        })
        .await
    }

    async fn find_key_by_hash(&self, hash: &str) -> Result<Option<Record>, StoreError> {
        let hash = hash.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let hashes = txn.open_table(KEY_HASHES).map_err(backend)?;
            let name = match hashes.get(hash.as_str()).map_err(backend)? {
                Some(n) => n.value().to_string(),
                None => return Ok(None),
            };
            let objects = txn.open_table(OBJECTS).map_err(backend)?;
            let found = objects.get(object_key(Kind::Key, &name).as_str()).map_err(backend)?;
            match found {
                Some(v) => Ok(Some(to_record(Kind::Key, &name, decode(v.value())?))),
                None => Ok(None),
            }
        })
        .await
    }

    async fn revision(&self) -> Result<u64, StoreError> {
        self.blocking(|db| {
            let txn = db.begin_read().map_err(backend)?;
            let meta = txn.open_table(META).map_err(backend)?;
            Ok(meta.get("revision").map_err(backend)?.map(|v| v.value()).unwrap_or(0))
        })
        .await
    }

    async fn bump_revision(&self) -> Result<u64, StoreError> {
        self.blocking(|db| {
            let txn = db.begin_write().map_err(backend)?;
            bump_revision(&txn)?;
            let revision = {
                let meta = txn.open_table(META).map_err(backend)?;
                let current = meta.get("revision").map_err(backend)?.map(|v| v.value());
                current.unwrap_or(0)
            };
            txn.commit().map_err(backend)?;
            Ok(revision)
        })
        .await
    }

    async fn apply_usage(&self, marker: &str, increments: &[(Bucket, Counters)], now: u64) -> Result<bool, StoreError> {
        let marker = marker.to_string();
        let increments = increments.to_vec();
        self.blocking(move |db| {
            // One write transaction: redb has a single writer, so the marker check, the marker
            // and the increments commit together or not at all.
            let txn = db.begin_write().map_err(backend)?;
            {
                let mut markers = txn.open_table(USAGE_MARKERS).map_err(backend)?;
                if markers.get(marker.as_str()).map_err(backend)?.is_some() {
                    return Ok(false);
                }
                markers.insert(marker.as_str(), now).map_err(backend)?;
                let mut times = txn.open_table(USAGE_MARKER_TIMES).map_err(backend)?;
                times.insert((now, marker.as_str()), ()).map_err(backend)?;
                // Markers outlive any resend by far; drop the oldest expired ones as we go.
                let cutoff = now.saturating_sub(MARKER_TTL_SECS);
                let mut expired = Vec::new();
                for entry in times.range::<(u64, &str)>(..(cutoff, "")).map_err(backend)?.take(PRUNE_PER_WRITE) {
                    let (k, _) = entry.map_err(backend)?;
                    let (t, m) = k.value();
                    expired.push((t, m.to_string()));
                }
                for (t, m) in expired {
                    times.remove((t, m.as_str())).map_err(backend)?;
                    markers.remove(m.as_str()).map_err(backend)?;
                }
                let mut usage = txn.open_table(USAGE).map_err(backend)?;
                let mut totals = txn.open_table(USAGE_TOTALS).map_err(backend)?;
                for (bucket, inc) in &increments {
                    match usage_key(bucket) {
                        (true, k) => add_to(&mut usage, &k, inc)?,
                        (false, k) => add_to(&mut totals, &k, inc)?,
                    }
                }
            }
            txn.commit().map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn caller_spend(&self, callers: &[String], day: &str, month: &str) -> Result<Vec<(u64, u64)>, StoreError> {
        let (callers, day, month) = (callers.to_vec(), day.to_string(), month.to_string());
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let totals = txn.open_table(USAGE_TOTALS).map_err(backend)?;
            let cost = |caller: &str, period: PeriodKind, key: &str| -> Result<u64, StoreError> {
                let k = usage_key(&Bucket::Total { caller: caller.to_string(), period, key: key.to_string() }).1;
                Ok(match totals.get(k.as_str()).map_err(backend)? {
                    Some(v) => decode_counters(v.value())?.cost_pusd,
                    None => 0,
                })
            };
            callers.iter().map(|c| Ok((cost(c, PeriodKind::Day, &day)?, cost(c, PeriodKind::Month, &month)?))).collect()
        })
        .await
    }

    async fn usage(
        &self,
        caller: Option<&str>,
        period: PeriodKind,
        from: &str,
        to: &str,
    ) -> Result<Vec<UsageAggregate>, StoreError> {
        let (caller, from, to) = (caller.map(str::to_string), from.to_string(), to.to_string());
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let usage = txn.open_table(USAGE).map_err(backend)?;
            let tag = period.tag();
            let in_range = |p: &str| p >= from.as_str() && (p <= to.as_str() || p.starts_with(to.as_str()));
            let mut out = Vec::new();
            let mut push = |k: &str, v: &[u8]| -> Result<(), StoreError> {
                let parts: Vec<&str> = k.split('\0').collect();
                if let [c, t, p, provider, model] = parts.as_slice() {
                    if *t == tag && in_range(p) {
                        out.push(UsageAggregate {
                            caller: c.to_string(),
                            provider: provider.to_string(),
                            model: model.to_string(),
                            period: p.to_string(),
                            counters: decode_counters(v)?,
                        });
                    }
                }
                Ok(())
            };
            match &caller {
                Some(c) => {
                    let lo = format!("{c}\0{tag}\0{from}");
                    let hi = format!("{c}\0{tag}\0{to}{}", char::MAX);
                    for entry in usage.range::<&str>(lo.as_str()..=hi.as_str()).map_err(backend)? {
                        let (k, v) = entry.map_err(backend)?;
                        push(k.value(), v.value())?;
                    }
                }
                None => {
                    for entry in usage.iter().map_err(backend)? {
                        let (k, v) = entry.map_err(backend)?;
                        push(k.value(), v.value())?;
                    }
                }
            }
            Ok(out)
        })
        .await
    }
}
