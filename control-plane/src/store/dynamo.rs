//! DynamoDB store: the source of truth in the cloud. Table design: docs/control-plane.md.
//!
//! One table. Objects live at `pk = <kind>`, `sk = <name>`; a virtual key's hash is claimed by a
//! second item `pk = "key_hash"`, `sk = <hash>` so lookups are strongly consistent and a hash can
//! never be registered twice (a GSI could do neither). Every write is a transaction that also
//! adds one to `pk = "meta"`, `sk = "revision"`, so the revision counts writes exactly, and puts
//! the change's audit record twice: `pk = "audit"`, `sk = <id>` (the whole trail, newest first by
//! a descending query) and `pk = "audit#<kind>#<name>"`, `sk = <id>` (one object's history), both
//! conditional on not existing (ADR 0021).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, KeySchemaElement, KeyType, Put, ReturnValue,
    ScalarAttributeType, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use serde_json::Value;

use super::{now_unix, rotation_hashes, Kind, Page, Record, Store, StoreError};
use crate::audit::{self, Action, AuditContext, AuditPage, AuditQuery, AuditRecord};
use crate::usage::{Bucket, Counters, PeriodKind, UsageAggregate, MARKER_TTL_SECS};

const META_PK: &str = "meta";
const META_SK: &str = "revision";
const HASH_PK: &str = "key_hash";
/// Usage aggregates of one caller live in the partition `usage#<caller>`.
const USAGE_PK: &str = "usage#";
/// A batch chunk's marker: `pk = usage_batch#<marker>`, `sk = "-"` (one partition per marker, so
/// markers never concentrate on one partition).
const MARKER_PK: &str = "usage_batch#";
/// The partition of the whole audit trail; one object's records also live in
/// `audit#<kind>#<name>`.
const AUDIT_PK: &str = "audit";
/// Query pages (up to 1 MB each) one audit listing reads at most before it returns what it
/// found with a cursor, so a sparse filter never makes one request unbounded.
const AUDIT_MAX_PAGES: usize = 10;
/// Attempts for a write that lost a race on the revision counter (TransactionConflict).
const MAX_ATTEMPTS: u32 = 20;

/// Where and how to reach DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoSettings {
    pub table: String,
    /// `http://127.0.0.1:8000` for DynamoDB Local; `None` for the regional AWS endpoint.
    pub endpoint: Option<String>,
    pub region: String,
}

impl DynamoSettings {
    /// Settings from `CP_DYNAMODB_TABLE`, `CP_DYNAMODB_ENDPOINT` and `AWS_REGION`.
    pub fn from_env() -> Self {
        DynamoSettings {
            table: std::env::var("CP_DYNAMODB_TABLE").unwrap_or_else(|_| "ai-gateway".into()),
            endpoint: std::env::var("CP_DYNAMODB_ENDPOINT").ok().filter(|s| !s.is_empty()),
            region: std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
        }
    }
}

/// A store in one DynamoDB table.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Seconds an audit record is kept (its `expires_at` for DynamoDB TTL); `None`: forever.
    audit_retention: Option<u64>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn sdk_err<E: std::error::Error + 'static, R: std::fmt::Debug>(e: SdkError<E, R>) -> StoreError {
    StoreError::Backend(DisplayErrorContext(&e).to_string())
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, k: &str) -> Option<&'a str> {
    item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn get_n(item: &HashMap<String, AttributeValue>, k: &str) -> Result<u64, StoreError> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError::Backend(format!("item attribute '{k}' missing or not a number")))
}

/// `(pk, sk)` of a usage bucket: `d#<day>#<provider>#<model>`, `m#<month>#<provider>#<model>`,
/// `t#d#<day>`, `t#m#<month>` in the caller's partition.
fn usage_item_key(b: &Bucket) -> (String, String) {
    match b {
        Bucket::Model { caller, period, key, provider, model } => {
            (format!("{USAGE_PK}{caller}"), format!("{}#{key}#{provider}#{model}", period.tag()))
        }
        Bucket::Total { caller, period, key } => (format!("{USAGE_PK}{caller}"), format!("t#{}#{key}", period.tag())),
    }
}

fn audit_object_pk(kind: &str, name: &str) -> String {
    format!("{AUDIT_PK}#{kind}#{name}")
}

fn n_or_zero(item: &HashMap<String, AttributeValue>, k: &str) -> u64 {
    item.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn to_aggregate(item: &HashMap<String, AttributeValue>) -> Option<UsageAggregate> {
    Some(UsageAggregate {
        caller: get_s(item, "caller")?.to_string(),
        provider: get_s(item, "provider")?.to_string(),
        model: get_s(item, "model")?.to_string(),
        period: get_s(item, "period")?.to_string(),
        counters: Counters {
            requests: n_or_zero(item, "requests"),
            input: n_or_zero(item, "input"),
            output: n_or_zero(item, "output"),
            cache_read: n_or_zero(item, "cache_read"),
            cache_creation: n_or_zero(item, "cache_creation"),
            reasoning: n_or_zero(item, "reasoning"),
            cost_pusd: n_or_zero(item, "cost_pusd"),
        },
    })
}

fn to_record(kind: Kind, item: &HashMap<String, AttributeValue>) -> Result<Record, StoreError> {
    let name = get_s(item, "sk").ok_or_else(|| backend("item without sk"))?.to_string();
    let doc = serde_json::from_str(get_s(item, "doc").ok_or_else(|| backend("item without doc"))?).map_err(backend)?;
    Ok(Record {
        kind,
        name,
        version: get_n(item, "version")?,
        doc,
        key_hash: get_s(item, "key_hash").map(str::to_string),
        created_at: get_n(item, "created_at")?,
        updated_at: get_n(item, "updated_at")?,
    })
}

/// What a cancelled transaction tells about its first item (the object itself).
enum Cancel {
    /// The object's condition did not hold.
    Condition,
    /// Lost a race with a concurrent transaction; retry.
    Conflict,
    /// A later item's condition (e.g. the key-hash claim) failed.
    Other(String),
}

fn classify_cancel(
    err: &SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> Option<Cancel> {
    let TransactWriteItemsError::TransactionCanceledException(tc) = err.as_service_error()? else {
        return None;
    };
    let reasons = tc.cancellation_reasons();
    let code = |i: usize| reasons.get(i).and_then(|r| r.code()).unwrap_or("None");
    if code(0) == "ConditionalCheckFailed" {
        return Some(Cancel::Condition);
    }
    if reasons.iter().any(|r| r.code() == Some("TransactionConflict")) {
        return Some(Cancel::Conflict);
    }
    let first_failed = reasons.iter().position(|r| r.code().is_some_and(|c| c != "None"));
    Some(Cancel::Other(format!(
        "transaction cancelled: item {first_failed:?} {}",
        first_failed.map(code).unwrap_or("")
    )))
}

async fn backoff(attempt: u32) {
    // Jitter from the clock's low bits is enough to de-synchronise two writers.
    let jitter = u64::from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0) % 10,
    );
    tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt) + jitter)).await;
}

impl DynamoStore {
    /// A client for `settings`. With a local endpoint (DynamoDB Local) and no `AWS_ACCESS_KEY_ID`,
    /// dummy credentials (it accepts any); otherwise the SDK's default chain, which is how an ECS
    /// task role, web identity or the environment reaches the control plane, refreshed before expiry.
    pub async fn connect(settings: &DynamoSettings) -> Self {
        let region = Region::new(settings.region.clone());
        let local = settings.endpoint.is_some() && std::env::var_os("AWS_ACCESS_KEY_ID").is_none();
        let mut b = if local {
            aws_sdk_dynamodb::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(region)
                .credentials_provider(Credentials::new("local", "local", None, None, "dynamodb-local"))
        } else {
            let shared = aws_config::defaults(BehaviorVersion::latest()).region(region).load().await;
            aws_sdk_dynamodb::config::Builder::from(&shared)
        };
        if let Some(ep) = &settings.endpoint {
            b = b.endpoint_url(ep.clone());
        }
        DynamoStore { client: Client::from_conf(b.build()), table: settings.table.clone(), audit_retention: None }
    }

    /// Keeps audit records `days` days (`CP_AUDIT_RETENTION_DAYS`; `None` or 0: forever) by
    /// giving them an `expires_at` for the table's TTL.
    pub fn with_audit_retention(mut self, days: Option<u64>) -> Self {
        self.audit_retention = audit::retention_secs(days);
        self
    }

    /// The two puts of an audit record (trail and object history), each refusing to overwrite.
    fn audit_puts(&self, rec: &AuditRecord) -> Result<[TransactWriteItem; 2], StoreError> {
        let json = audit::to_json(rec)?;
        let put = |pk: String| -> Result<TransactWriteItem, StoreError> {
            let mut p = Put::builder()
                .table_name(&self.table)
                .item("pk", s(pk))
                .item("sk", s(rec.id.as_str()))
                .item("kind", s(rec.kind.as_str()))
                .item("object", s(rec.name.as_str()))
                .item("actor", s(rec.actor.as_str()))
                .item("record", s(json.as_str()))
                .condition_expression("attribute_not_exists(pk)");
            if let Some(secs) = self.audit_retention {
                p = p.item("expires_at", n((rec.time_ms() / 1000).saturating_add(secs)));
            }
            Ok(TransactWriteItem::builder().put(p.build().map_err(backend)?).build())
        };
        Ok([put(AUDIT_PK.to_string())?, put(audit_object_pk(&rec.kind, &rec.name))?])
    }

    /// Creates the table if it does not exist; returns whether it was created.
    pub async fn create_table(&self) -> Result<bool, StoreError> {
        let key = |name: &str, t: KeyType| {
            KeySchemaElement::builder().attribute_name(name).key_type(t).build().map_err(backend)
        };
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(backend)
        };
        let res = self
            .client
            .create_table()
            .table_name(&self.table)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match res {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|se| se.is_resource_in_use_exception()) => return Ok(false),
            Err(e) => return Err(sdk_err(e)),
        }
        for _ in 0..120 {
            let d = self.client.describe_table().table_name(&self.table).send().await.map_err(sdk_err)?;
            let active = d.table().and_then(|t| t.table_status()).is_some_and(|s| s.as_str() == "ACTIVE");
            if active {
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(backend("table did not become ACTIVE within 60 s"))
    }

    /// Turns on DynamoDB TTL on `expires_at` (Unix seconds): usage batch markers, and audit
    /// records when a retention is set (a table has one TTL attribute; both use it).
    pub async fn enable_marker_ttl(&self) -> Result<(), StoreError> {
        let spec = aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name("expires_at")
            .build()
            .map_err(backend)?;
        match self.client.update_time_to_live().table_name(&self.table).time_to_live_specification(spec).send().await {
            Ok(_) => Ok(()),
            // Already enabled (a second create-tables) is what we want.
            Err(e) if format!("{}", DisplayErrorContext(&e)).contains("already enabled") => Ok(()),
            Err(e) => Err(sdk_err(e)),
        }
    }

    fn usage_update(&self, bucket: &Bucket, c: &Counters) -> Result<TransactWriteItem, StoreError> {
        let (pk, sk) = usage_item_key(bucket);
        let mut u = Update::builder().table_name(&self.table).key("pk", s(pk)).key("sk", s(sk));
        // Descriptive attributes are SET (same value every time) so a query needs no key parsing.
        let mut set = vec![("caller", bucket.caller().to_string())];
        match bucket {
            Bucket::Model { period, key, provider, model, .. } => {
                set.push(("period", key.clone()));
                set.push(("period_kind", period.tag().to_string()));
                set.push(("provider", provider.clone()));
                set.push(("model", model.clone()));
            }
            Bucket::Total { period, key, .. } => {
                set.push(("period", key.clone()));
                set.push(("period_kind", period.tag().to_string()));
            }
        }
        let mut sets = Vec::new();
        for (i, (name, value)) in set.into_iter().enumerate() {
            sets.push(format!("#s{i} = :s{i}"));
            u = u
                .expression_attribute_names(format!("#s{i}"), name)
                .expression_attribute_values(format!(":s{i}"), s(value));
        }
        let mut adds = Vec::new();
        for (i, (name, value)) in c.fields().into_iter().enumerate() {
            adds.push(format!("#a{i} :a{i}"));
            u = u
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":a{i}"), n(value));
        }
        let u =
            u.update_expression(format!("SET {} ADD {}", sets.join(", "), adds.join(", "))).build().map_err(backend)?;
        Ok(TransactWriteItem::builder().update(u).build())
    }

    /// Deletes the table (tests use one table per run).
    pub async fn delete_table(&self) -> Result<(), StoreError> {
        self.client.delete_table().table_name(&self.table).send().await.map_err(sdk_err)?;
        Ok(())
    }

    /// Every item of the table rendered as text: lets audits and tests search what is stored.
    pub async fn scan_raw(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_err)?;
            out.extend(page.items().iter().map(|i| format!("{i:?}")));
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(out),
            }
        }
    }

    fn revision_bump(&self) -> Result<TransactWriteItem, StoreError> {
        let u = Update::builder()
            .table_name(&self.table)
            .key("pk", s(META_PK))
            .key("sk", s(META_SK))
            .update_expression("ADD #r :one")
            .expression_attribute_names("#r", "rev")
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(backend)?;
        Ok(TransactWriteItem::builder().update(u).build())
    }

    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<(), SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>> {
        self.client.transact_write_items().set_transact_items(Some(items)).send().await.map(|_| ())
    }

    /// Writes `mutation(current)` conditioned on the current version, retrying lost races;
    /// `expected` turns a version change into `VersionMismatch` instead of a retry.
    async fn conditional_write<F, T>(
        &self,
        kind: Kind,
        name: &str,
        expected: Option<u64>,
        mutation: F,
    ) -> Result<T, StoreError>
    where
        F: Fn(&Record) -> Result<(Vec<TransactWriteItem>, T), StoreError>,
    {
        for attempt in 0..MAX_ATTEMPTS {
            let current =
                self.get(kind, name).await?.ok_or_else(|| StoreError::NotFound { kind, name: name.to_string() })?;
            if let Some(e) = expected {
                if e != current.version {
                    return Err(StoreError::VersionMismatch {
                        kind,
                        name: name.to_string(),
                        expected: e,
                        current: current.version,
                    });
                }
            }
            let (items, result) = mutation(&current)?;
            match self.transact(items).await {
                Ok(()) => return Ok(result),
                Err(e) => match classify_cancel(&e) {
                    // Re-read: the next round reports NotFound or VersionMismatch, or retries.
                    Some(Cancel::Condition) | Some(Cancel::Conflict) => backoff(attempt).await,
                    Some(Cancel::Other(m)) => return Err(StoreError::Backend(m)),
                    None => return Err(sdk_err(e)),
                },
            }
        }
        Err(backend(format!("{kind} '{name}': too many concurrent writers, gave up")))
    }

    fn version_condition(v: u64) -> (&'static str, [(&'static str, &'static str); 1], AttributeValue) {
        ("#v = :expected", [("#v", "version")], n(v))
    }

    /// Replaces an object's document, conditional on its current version: the write shared by
    /// `update` and `rotate_key`.
    fn doc_update(
        table: &str,
        kind: Kind,
        name: &str,
        version: u64,
        doc_json: &str,
        now: u64,
    ) -> Result<Update, StoreError> {
        let (cond, names, val) = Self::version_condition(version);
        Update::builder()
            .table_name(table)
            .key("pk", s(kind.as_str()))
            .key("sk", s(name))
            .update_expression("SET #d = :doc, #v = :next, #u = :now")
            .condition_expression(cond)
            .expression_attribute_names(names[0].0, names[0].1)
            .expression_attribute_names("#d", "doc")
            .expression_attribute_names("#u", "updated_at")
            .expression_attribute_values(":expected", val)
            .expression_attribute_values(":next", n(version + 1))
            .expression_attribute_values(":doc", s(doc_json))
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(backend)
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn create(
        &self,
        kind: Kind,
        name: &str,
        doc: &Value,
        key_hash: Option<&str>,
        audit: &AuditContext,
    ) -> Result<Record, StoreError> {
        let now = now_unix();
        let doc_json = serde_json::to_string(doc).map_err(backend)?;
        let rec = Record {
            kind,
            name: name.to_string(),
            version: 1,
            doc: doc.clone(),
            key_hash: key_hash.map(str::to_string),
            created_at: now,
            updated_at: now,
        };
        let entry = audit.record(Action::Create, kind, name, None, Some(&rec));
        let audit_items = self.audit_puts(&entry)?;
        for attempt in 0..MAX_ATTEMPTS {
            let mut put = Put::builder()
                .table_name(&self.table)
                .item("pk", s(kind.as_str()))
                .item("sk", s(name))
                .item("version", n(1))
                .item("doc", s(doc_json.clone()))
                .item("created_at", n(now))
                .item("updated_at", n(now))
                .condition_expression("attribute_not_exists(pk)");
            if let Some(h) = key_hash {
                put = put.item("key_hash", s(h));
            }
            let mut items = vec![TransactWriteItem::builder().put(put.build().map_err(backend)?).build()];
            if let Some(h) = key_hash {
                let claim = Put::builder()
                    .table_name(&self.table)
                    .item("pk", s(HASH_PK))
                    .item("sk", s(h))
                    .item("name", s(name))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .map_err(backend)?;
                items.push(TransactWriteItem::builder().put(claim).build());
            }
            items.extend(audit_items.iter().cloned());
            items.push(self.revision_bump()?);
            match self.transact(items).await {
                Ok(()) => {
                    entry.log();
                    return Ok(rec);
                }
                Err(e) => match classify_cancel(&e) {
                    Some(Cancel::Condition) => return Err(StoreError::AlreadyExists { kind, name: name.to_string() }),
                    Some(Cancel::Conflict) => backoff(attempt).await,
                    Some(Cancel::Other(m)) => return Err(StoreError::Backend(m)),
                    None => return Err(sdk_err(e)),
                },
            }
        }
        Err(backend(format!("{kind} '{name}': too many concurrent writers, gave up")))
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Option<Record>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(kind.as_str()))
            .key("sk", s(name))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_err)?;
        out.item().map(|i| to_record(kind, i)).transpose()
    }

    async fn list(&self, kind: Kind, after: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        let limit = limit.clamp(1, 1000);
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .limit(i32::try_from(limit).unwrap_or(1000))
            .expression_attribute_values(":pk", s(kind.as_str()));
        q = match after {
            Some(a) => {
                q.key_condition_expression("pk = :pk AND sk > :after").expression_attribute_values(":after", s(a))
            }
            None => q.key_condition_expression("pk = :pk"),
        };
        let out = q.send().await.map_err(sdk_err)?;
        let items = out.items().iter().map(|i| to_record(kind, i)).collect::<Result<Vec<_>, _>>()?;
        // DynamoDB returns a LastEvaluatedKey whenever it stopped at the limit, even if nothing
        // follows: the caller then gets one empty page, which the contract allows.
        let next = if out.last_evaluated_key().is_some() { items.last().map(|r| r.name.clone()) } else { None };
        Ok(Page { items, next })
    }

    async fn update(
        &self,
        kind: Kind,
        name: &str,
        expected: Option<u64>,
        doc: &Value,
        audit: &AuditContext,
    ) -> Result<Record, StoreError> {
        let doc_json = serde_json::to_string(doc).map_err(backend)?;
        let table = self.table.clone();
        let id = audit.next_id();
        let (rec, entry) = self
            .conditional_write(kind, name, expected, |cur| {
                let now = now_unix();
                let u = Self::doc_update(&table, kind, name, cur.version, &doc_json, now)?;
                let rec = Record { version: cur.version + 1, doc: doc.clone(), updated_at: now, ..cur.clone() };
                let entry = audit.record_as(id.clone(), Action::Update, kind, name, Some(cur), Some(&rec));
                let mut items = vec![TransactWriteItem::builder().update(u).build()];
                items.extend(self.audit_puts(&entry)?);
                items.push(self.revision_bump()?);
                Ok((items, (rec, entry)))
            })
            .await?;
        entry.log();
        Ok(rec)
    }

    async fn delete(
        &self,
        kind: Kind,
        name: &str,
        expected: Option<u64>,
        audit: &AuditContext,
    ) -> Result<(), StoreError> {
        let table = self.table.clone();
        let id = audit.next_id();
        let entry = self
            .conditional_write(kind, name, expected, |cur| {
                let (cond, names, val) = Self::version_condition(cur.version);
                let d = Delete::builder()
                    .table_name(&table)
                    .key("pk", s(kind.as_str()))
                    .key("sk", s(name))
                    .condition_expression(cond)
                    .expression_attribute_names(names[0].0, names[0].1)
                    .expression_attribute_values(":expected", val)
                    .build()
                    .map_err(backend)?;
                let mut items = vec![TransactWriteItem::builder().delete(d).build()];
                for h in cur.key_hash.iter().cloned().chain(rotation_hashes(&cur.doc)) {
                    let d = Delete::builder()
                        .table_name(&table)
                        .key("pk", s(HASH_PK))
                        .key("sk", s(h.as_str()))
                        .build()
                        .map_err(backend)?;
                    items.push(TransactWriteItem::builder().delete(d).build());
                }
                let entry = audit.record_as(id.clone(), Action::Delete, kind, name, Some(cur), None);
                items.extend(self.audit_puts(&entry)?);
                items.push(self.revision_bump()?);
                Ok((items, entry))
            })
            .await?;
        entry.log();
        Ok(())
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
        let kind = Kind::Key;
        let doc_json = serde_json::to_string(doc).map_err(backend)?;
        let table = self.table.clone();
        let id = audit.next_id();
        let (rec, entry) = self
            .conditional_write(kind, name, expected, |cur| {
                let now = now_unix();
                let u = Self::doc_update(&table, kind, name, cur.version, &doc_json, now)?;
                let claim = Put::builder()
                    .table_name(&table)
                    .item("pk", s(HASH_PK))
                    .item("sk", s(new_hash))
                    .item("name", s(name))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .map_err(backend)?;
                let mut items = vec![
                    TransactWriteItem::builder().update(u).build(),
                    TransactWriteItem::builder().put(claim).build(),
                ];
                if let Some(r) = release.filter(|r| cur.key_hash.as_deref() != Some(*r)) {
                    let d = Delete::builder()
                        .table_name(&table)
                        .key("pk", s(HASH_PK))
                        .key("sk", s(r))
                        .build()
                        .map_err(backend)?;
                    items.push(TransactWriteItem::builder().delete(d).build());
                }
                let rec = Record { version: cur.version + 1, doc: doc.clone(), updated_at: now, ..cur.clone() };
                let entry = audit.record_as(id.clone(), Action::Rotate, kind, name, Some(cur), Some(&rec));
                items.extend(self.audit_puts(&entry)?);
                items.push(self.revision_bump()?);
                Ok((items, (rec, entry)))
            })
            .await?;
        entry.log();
        Ok(rec)
    }

    async fn list_audit(&self, query: &AuditQuery) -> Result<AuditPage, StoreError> {
        let limit = query.limit.max(1);
        // Key attributes cannot be empty strings; every id sorts after "0".
        let lo = Some(query.low_id()).filter(|l| !l.is_empty()).unwrap_or_else(|| "0".to_string());
        let hi = query.high_id();
        if hi.is_empty() || lo > hi {
            return Ok(AuditPage::default());
        }
        let by_object = match (&query.kind, &query.name) {
            (Some(k), Some(name)) => Some(audit_object_pk(k.as_str(), name)),
            _ => None,
        };
        let mut filters = Vec::new();
        let mut values: Vec<(&str, String)> = Vec::new();
        if by_object.is_none() {
            if let Some(k) = query.kind {
                filters.push("#kind = :kind");
                values.push((":kind", k.as_str().to_string()));
            }
            if let Some(name) = &query.name {
                filters.push("#object = :object");
                values.push((":object", name.clone()));
            }
        }
        if let Some(a) = &query.actor {
            filters.push("#actor = :actor");
            values.push((":actor", a.clone()));
        }
        let mut items: Vec<AuditRecord> = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        let mut last_seen: Option<String> = None;
        for _ in 0..AUDIT_MAX_PAGES {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .scan_index_forward(false)
                .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
                .expression_attribute_values(":pk", s(by_object.clone().unwrap_or_else(|| AUDIT_PK.to_string())))
                .expression_attribute_values(":lo", s(lo.as_str()))
                .expression_attribute_values(":hi", s(hi.as_str()))
                .set_exclusive_start_key(start.take());
            if filters.is_empty() {
                q = q.limit(i32::try_from(limit + 2).unwrap_or(1000));
            } else {
                q = q.filter_expression(filters.join(" AND "));
                for (name, attr) in [("#kind", "kind"), ("#object", "object"), ("#actor", "actor")] {
                    if filters.iter().any(|f| f.starts_with(name)) {
                        q = q.expression_attribute_names(name, attr);
                    }
                }
                for (k, v) in &values {
                    q = q.expression_attribute_values(*k, s(v.as_str()));
                }
            }
            let page = q.send().await.map_err(sdk_err)?;
            for item in page.items() {
                let id = get_s(item, "sk").unwrap_or_default();
                if query.before_id.as_deref() == Some(id) {
                    continue;
                }
                let json = get_s(item, "record").ok_or_else(|| backend("audit item without record"))?;
                let rec = audit::from_json(json.as_bytes())?;
                if query.matches(&rec) {
                    items.push(rec);
                }
            }
            if items.len() > limit {
                items.truncate(limit);
                let next = items.last().map(|r| r.id.clone());
                return Ok(AuditPage { items, next });
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => {
                    last_seen = k.get("sk").and_then(|v| v.as_s().ok()).cloned();
                    start = Some(k.clone());
                }
                _ => return Ok(AuditPage { items, next: None }),
            }
        }
        // Page budget spent: resume below the last item read (it was returned or filtered out).
        Ok(AuditPage { items, next: last_seen })
    }

    async fn find_key_by_hash(&self, hash: &str) -> Result<Option<Record>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(HASH_PK))
            .key("sk", s(hash))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_err)?;
        let Some(name) = out.item().and_then(|i| get_s(i, "name")) else {
            return Ok(None);
        };
        let name = name.to_string();
        self.get(Kind::Key, &name).await
    }

    async fn revision(&self) -> Result<u64, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(META_PK))
            .key("sk", s(META_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_err)?;
        match out.item() {
            Some(i) => get_n(i, "rev"),
            None => Ok(0),
        }
    }

    async fn bump_revision(&self) -> Result<u64, StoreError> {
        // A single-item `ADD` is atomic on its own and returns the new value; it only conflicts
        // with a transaction holding the revision item at that moment, and then is retried.
        for attempt in 0..MAX_ATTEMPTS {
            let out = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(META_PK))
                .key("sk", s(META_SK))
                .update_expression("ADD #r :one")
                .expression_attribute_names("#r", "rev")
                .expression_attribute_values(":one", n(1))
                .return_values(ReturnValue::UpdatedNew)
                .send()
                .await;
            match out {
                Ok(o) => {
                    let attrs = o.attributes().ok_or_else(|| backend("revision bump returned no attributes"))?;
                    return get_n(attrs, "rev");
                }
                Err(e) if matches!(e.as_service_error(), Some(UpdateItemError::TransactionConflictException(_))) => {
                    backoff(attempt).await
                }
                Err(e) => return Err(sdk_err(e)),
            }
        }
        Err(backend("revision bump: too many concurrent writers, gave up"))
    }

    async fn apply_usage(&self, marker: &str, increments: &[(Bucket, Counters)], now: u64) -> Result<bool, StoreError> {
        // The marker is item 0: its condition failing means "already applied", and then the
        // whole transaction (every ADD) is cancelled with it.
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(format!("{MARKER_PK}{marker}")))
            .item("sk", s("-"))
            .item("applied_at", n(now))
            .item("expires_at", n(now.saturating_add(MARKER_TTL_SECS)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(backend)?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        for (bucket, c) in increments {
            items.push(self.usage_update(bucket, c)?);
        }
        for attempt in 0..MAX_ATTEMPTS {
            match self.transact(items.clone()).await {
                Ok(()) => return Ok(true),
                Err(e) => match classify_cancel(&e) {
                    Some(Cancel::Condition) => return Ok(false),
                    // Two replicas adding to the same caller's totals at once: nothing was
                    // applied, so trying again cannot double count.
                    Some(Cancel::Conflict) => backoff(attempt).await,
                    Some(Cancel::Other(m)) => return Err(StoreError::Backend(m)),
                    None => return Err(sdk_err(e)),
                },
            }
        }
        Err(backend(format!("usage batch {marker}: too many concurrent writers, gave up")))
    }

    async fn caller_spend(&self, callers: &[String], day: &str, month: &str) -> Result<Vec<(u64, u64)>, StoreError> {
        // Every total item, read with BatchGetItem (100 keys per request, strongly consistent).
        let mut wanted: Vec<(String, String)> = Vec::with_capacity(callers.len() * 2);
        for c in callers {
            wanted.push(usage_item_key(&Bucket::Total {
                caller: c.clone(),
                period: PeriodKind::Day,
                key: day.to_string(),
            }));
            wanted.push(usage_item_key(&Bucket::Total {
                caller: c.clone(),
                period: PeriodKind::Month,
                key: month.to_string(),
            }));
        }
        let mut found: HashMap<(String, String), u64> = HashMap::new();
        for group in wanted.chunks(100) {
            let keys: Vec<HashMap<String, AttributeValue>> = group
                .iter()
                .map(|(pk, sk)| HashMap::from([("pk".to_string(), s(pk.as_str())), ("sk".to_string(), s(sk.as_str()))]))
                .collect();
            let mut pending = Some(
                aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .projection_expression("pk, sk, cost_pusd")
                    .build()
                    .map_err(backend)?,
            );
            let mut attempt = 0;
            while let Some(req) = pending.take() {
                let out = self.client.batch_get_item().request_items(&self.table, req).send().await.map_err(sdk_err)?;
                for item in out.responses().and_then(|r| r.get(&self.table)).map(Vec::as_slice).unwrap_or_default() {
                    if let (Some(pk), Some(sk)) = (get_s(item, "pk"), get_s(item, "sk")) {
                        found.insert((pk.to_string(), sk.to_string()), n_or_zero(item, "cost_pusd"));
                    }
                }
                // Throttled keys come back unprocessed: ask again for those only.
                pending =
                    out.unprocessed_keys().and_then(|u| u.get(&self.table)).filter(|k| !k.keys().is_empty()).cloned();
                if pending.is_some() {
                    attempt += 1;
                    if attempt >= MAX_ATTEMPTS {
                        return Err(backend("usage spend: keys still unprocessed after retries"));
                    }
                    backoff(attempt).await;
                }
            }
        }
        let get = |k: &(String, String)| found.get(k).copied().unwrap_or(0);
        Ok(wanted.chunks(2).map(|pair| (pair.first().map_or(0, get), pair.get(1).map_or(0, get))).collect())
    }

    async fn usage(
        &self,
        caller: Option<&str>,
        period: PeriodKind,
        from: &str,
        to: &str,
    ) -> Result<Vec<UsageAggregate>, StoreError> {
        let lo = format!("{}#{from}", period.tag());
        // Above every `<to>#<provider>#<model>` and every day of a `to` month.
        let hi = format!("{}#{to}{}", period.tag(), char::MAX);
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let (items, last) = match caller {
                Some(c) => {
                    let page = self
                        .client
                        .query()
                        .table_name(&self.table)
                        .consistent_read(true)
                        .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
                        .expression_attribute_values(":pk", s(format!("{USAGE_PK}{c}")))
                        .expression_attribute_values(":lo", s(lo.clone()))
                        .expression_attribute_values(":hi", s(hi.clone()))
                        .set_exclusive_start_key(start.take())
                        .send()
                        .await
                        .map_err(sdk_err)?;
                    (page.items().to_vec(), page.last_evaluated_key().cloned())
                }
                // Every caller: a Scan of the table (admin queries only; see docs/control-plane.md).
                None => {
                    let page = self
                        .client
                        .scan()
                        .table_name(&self.table)
                        .consistent_read(true)
                        .filter_expression("begins_with(pk, :usage) AND sk BETWEEN :lo AND :hi")
                        .expression_attribute_values(":usage", s(USAGE_PK))
                        .expression_attribute_values(":lo", s(lo.clone()))
                        .expression_attribute_values(":hi", s(hi.clone()))
                        .set_exclusive_start_key(start.take())
                        .send()
                        .await
                        .map_err(sdk_err)?;
                    (page.items().to_vec(), page.last_evaluated_key().cloned())
                }
            };
            out.extend(items.iter().filter_map(to_aggregate));
            match last {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        out.sort_by(|a, b| {
            (&a.caller, &a.period, &a.provider, &a.model).cmp(&(&b.caller, &b.period, &b.provider, &b.model))
        });
        Ok(out)
    }
}
