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

use super::{now_unix, Kind, Page, Record, Store, StoreError};

/// `"<kind>\0<name>"` → JSON of [`Item`].
const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
/// Virtual key hash → key name.
const KEY_HASHES: TableDefinition<&str, &str> = TableDefinition::new("key_hashes");
/// `"revision"` → number of writes.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

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
        }
        txn.commit().map_err(backend)?;
        Ok(EmbeddedStore { db: Arc::new(db) })
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
    async fn create(&self, kind: Kind, name: &str, doc: &Value, key_hash: Option<&str>) -> Result<Record, StoreError> {
        let name = name.to_string();
        let doc = doc.clone();
        let key_hash = key_hash.map(str::to_string);
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
            bump_revision(&txn)?;
            txn.commit().map_err(backend)?;
            Ok(to_record(kind, &name, item))
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

    async fn update(&self, kind: Kind, name: &str, expected: Option<u64>, doc: &Value) -> Result<Record, StoreError> {
        let name = name.to_string();
        let doc = doc.clone();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(backend)?;
            let item;
            {
                let mut objects = txn.open_table(OBJECTS).map_err(backend)?;
                let k = object_key(kind, &name);
                let current = match objects.get(k.as_str()).map_err(backend)? {
                    Some(v) => decode(v.value())?,
                    None => return Err(StoreError::NotFound { kind, name }),
                };
                if let Some(e) = expected {
                    if e != current.version {
                        return Err(StoreError::VersionMismatch { kind, name, expected: e, current: current.version });
                    }
                }
                item = Item { version: current.version + 1, doc, updated_at: now_unix(), ..current };
                let bytes = serde_json::to_vec(&item).map_err(backend)?;
                objects.insert(k.as_str(), bytes.as_slice()).map_err(backend)?;
            }
            bump_revision(&txn)?;
            txn.commit().map_err(backend)?;
            Ok(to_record(kind, &name, item))
        })
        .await
    }

    async fn delete(&self, kind: Kind, name: &str, expected: Option<u64>) -> Result<(), StoreError> {
        let name = name.to_string();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(backend)?;
            {
                let mut objects = txn.open_table(OBJECTS).map_err(backend)?;
                let k = object_key(kind, &name);
                let current = match objects.get(k.as_str()).map_err(backend)? {
                    Some(v) => decode(v.value())?,
                    None => return Err(StoreError::NotFound { kind, name }),
                };
                if let Some(e) = expected {
                    if e != current.version {
                        return Err(StoreError::VersionMismatch { kind, name, expected: e, current: current.version });
                    }
                }
                objects.remove(k.as_str()).map_err(backend)?;
                if let Some(h) = &current.key_hash {
                    let mut hashes = txn.open_table(KEY_HASHES).map_err(backend)?;
                    hashes.remove(h.as_str()).map_err(backend)?;
                }
            }
            bump_revision(&txn)?;
            txn.commit().map_err(backend)?;
            Ok(())
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
}
