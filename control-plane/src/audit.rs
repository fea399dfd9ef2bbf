//! The audit trail of configuration changes (ADR 0021): who changed which object, when, through
//! which request, and a diff of the changed fields in which every value not known to be safe is
//! redacted. Stores write the record in the same transaction as the change it describes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use aws_sdk_dynamodb::primitives::{DateTime, DateTimeFormat};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::model::ApiError;
use crate::store::{Kind, Record, StoreError};

/// What a diff shows instead of a value that is not on its kind's allowlist.
pub const REDACTED: &str = "<redacted>";
/// Largest JSON of one diff value shown; a larger one is replaced by a note of its size, so a
/// record always fits in one DynamoDB item (400 KB) whatever the object's size.
const MAX_VALUE_BYTES: usize = 4096;
/// Largest total JSON of a diff; fields past it are summarised by [`OMITTED_FIELD`].
const MAX_DIFF_BYTES: usize = 128 * 1024;
/// The diff entry that says how many changed fields did not fit.
pub const OMITTED_FIELD: &str = "<omitted>";

/// What a mutation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Delete,
    /// A virtual key's secret replaced (`POST /v1/keys/{name}/rotate`).
    Rotate,
    /// A virtual key revoked (`POST /v1/keys/{name}/revoke`).
    Revoke,
}

/// Which door a change came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// One object's REST endpoint.
    Api,
    /// `POST /v1/apply` (one record per changed object, sharing the request id).
    Apply,
}

/// Who makes a change and in which request: given to every store write, which turns it into an
/// audit record. Records of one request share `request_id` and `time_ms`; each gets the next
/// sequence number, so ids are unique within a request and sort by time across requests.
#[derive(Debug, Clone)]
pub struct AuditContext {
    /// `admin:<8 hex>`, `read-only:<8 hex>` (see [`actor_for`]), or a tool's own name.
    pub actor: String,
    pub via: Via,
    /// 16 lower-case hex characters.
    pub request_id: String,
    /// Milliseconds since the Unix epoch at which the request arrived.
    pub time_ms: u64,
    /// The action recorded instead of the store method's own (revoke is an update).
    pub action: Option<Action>,
    seq: Arc<AtomicU32>,
}

impl AuditContext {
    /// A context for a new request by `actor`: fresh request id, the current time.
    ///
    /// The request id is this process's arrival counter (8 hex digits) then 4 random bytes. The
    /// counter keeps two requests that arrive in the same millisecond in arrival order (ids sort
    /// by time first, then by request id); the random half keeps ids of different replicas apart.
    pub fn new(actor: impl Into<String>, via: Via) -> Self {
        static ARRIVALS: AtomicU32 = AtomicU32::new(0);
        let arrival = ARRIVALS.fetch_add(1, Ordering::Relaxed);
        let mut random = [0u8; 4];
        // Without randomness the id still differs by time and counter; the store enforces uniqueness.
        let _ = getrandom::fill(&mut random);
        Self::fixed(actor, via, format!("{arrival:08x}{}", hex::encode(random)), now_ms())
    }

    /// A context for a tool that writes the store directly (`tool:<name>`), not through the API.
    pub fn tool(name: &str) -> Self {
        Self::new(format!("tool:{name}"), Via::Api)
    }

    /// A context with a given request id and time: a replayed request. Its records collide with
    /// the first one's, and a store refuses to overwrite an audit record, so the write fails
    /// (which is how the conformance suite proves an audit write failure fails the change).
    pub fn fixed(actor: impl Into<String>, via: Via, request_id: impl Into<String>, time_ms: u64) -> Self {
        AuditContext {
            actor: actor.into(),
            via,
            request_id: request_id.into(),
            time_ms,
            action: None,
            seq: Arc::new(AtomicU32::new(0)),
        }
    }

    /// The same request recording `action` instead of the store method's own.
    pub fn with_action(&self, action: Action) -> Self {
        AuditContext { action: Some(action), ..self.clone() }
    }

    /// The same request through another door (apply).
    pub fn with_via(&self, via: Via) -> Self {
        AuditContext { via, ..self.clone() }
    }

    /// The next record id of this request: `<time ms, 13 digits>-<request id>-<sequence>`, so
    /// ids sort by time (until the year 2286) and the first 13 characters bound a time range.
    pub fn next_id(&self) -> String {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        format!("{:013}-{}-{seq:04}", self.time_ms, self.request_id)
    }

    /// The record of a write that turned `before` into `after` (`None`: absent), with the
    /// store method's `default` action. `after` is `None` for a delete.
    pub fn record(
        &self,
        default: Action,
        kind: Kind,
        name: &str,
        before: Option<&Record>,
        after: Option<&Record>,
    ) -> AuditRecord {
        self.record_as(self.next_id(), default, kind, name, before, after)
    }

    /// [`AuditContext::record`] under an id taken before (a write retried after a lost race
    /// keeps its id).
    pub fn record_as(
        &self,
        id: String,
        default: Action,
        kind: Kind,
        name: &str,
        before: Option<&Record>,
        after: Option<&Record>,
    ) -> AuditRecord {
        AuditRecord {
            id,
            time: format_time(self.time_ms),
            actor: self.actor.clone(),
            action: self.action.unwrap_or(default),
            via: self.via,
            kind: kind.as_str().to_string(),
            name: name.to_string(),
            version_before: before.map(|r| r.version),
            version_after: after.map(|r| r.version),
            diff: diff(kind, before.map(|r| &r.doc), after.map(|r| &r.doc)),
            request_id: self.request_id.clone(),
        }
    }
}

/// `<role>:<first 8 hex of SHA-256(token)>`: tells two tokens apart without revealing either.
pub fn actor_for(role: &str, token: &str) -> String {
    let d = Sha256::digest(token.as_bytes());
    format!("{role}:{}", hex::encode(d.get(..4).unwrap_or_default()))
}

/// One field's values before and after a change (`null`: absent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldChange {
    pub before: Value,
    pub after: Value,
}

/// One audit record, exactly as `GET /v1/audit` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRecord {
    /// Unique; sorts by time (see [`AuditContext::next_id`]).
    pub id: String,
    /// RFC 3339 UTC with milliseconds.
    pub time: String,
    pub actor: String,
    pub action: Action,
    pub via: Via,
    pub kind: String,
    pub name: String,
    pub version_before: Option<u64>,
    pub version_after: Option<u64>,
    /// Changed fields by path (`settings.azure.api_version`, `targets[0].weight`).
    pub diff: BTreeMap<String, FieldChange>,
    pub request_id: String,
}

impl AuditRecord {
    /// Milliseconds since the epoch, from the id (0 if the id is not one of ours).
    pub fn time_ms(&self) -> u64 {
        self.id.get(..13).and_then(|t| t.parse().ok()).unwrap_or(0)
    }

    /// One log line per committed record: who did what to which object (never the diff).
    pub fn log(&self) {
        tracing::info!(
            id = %self.id, actor = %self.actor, action = ?self.action, via = ?self.via, kind = %self.kind,
            name = %self.name, version_before = ?self.version_before, version_after = ?self.version_after,
            "audit"
        );
    }
}

/// Which records a listing returns, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub kind: Option<Kind>,
    pub name: Option<String>,
    pub actor: Option<String>,
    /// Inclusive, milliseconds since the epoch.
    pub since_ms: Option<u64>,
    /// Exclusive.
    pub until_ms: Option<u64>,
    /// Only records whose id sorts before this one (the previous page's last id).
    pub before_id: Option<String>,
    pub limit: usize,
}

impl AuditQuery {
    /// Whether `r` passes the filters that are not part of a store's key range.
    pub fn matches(&self, r: &AuditRecord) -> bool {
        self.kind.is_none_or(|k| r.kind == k.as_str())
            && self.name.as_ref().is_none_or(|n| &r.name == n)
            && self.actor.as_ref().is_none_or(|a| &r.actor == a)
    }

    /// The smallest id in range (inclusive): ids start with the 13-digit time.
    pub fn low_id(&self) -> String {
        self.since_ms.map(|t| format!("{t:013}")).unwrap_or_default()
    }

    /// An inclusive upper bound of ids in range; [`AuditQuery::before_id`] itself is excluded by
    /// the caller. `~` sorts after every character of an id.
    pub fn high_id(&self) -> String {
        let until = self.until_ms.map(|t| format!("{:013}~", t.saturating_sub(1)));
        if self.until_ms == Some(0) {
            return String::new();
        }
        match (until, &self.before_id) {
            (Some(u), Some(b)) => std::cmp::min(u, b.clone()),
            (Some(u), None) => u,
            (None, Some(b)) => b.clone(),
            (None, None) => "~".to_string(),
        }
    }
}

/// One page of audit records, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditPage {
    pub items: Vec<AuditRecord>,
    /// Pass back as [`AuditQuery::before_id`] for the next page; `None` at the end.
    pub next: Option<String>,
}

/// The store error of an audit record that already exists: records are never overwritten.
pub fn duplicate(id: &str) -> StoreError {
    StoreError::Backend(format!("audit record {id} already exists"))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// `2026-12-02T15:04:05.123Z`. The SDK's date type (already built for DynamoDB) formats and
/// parses RFC 3339, so no date library is added.
pub fn format_time(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    let whole = DateTime::from_secs(secs).fmt(DateTimeFormat::DateTime).unwrap_or_default();
    match whole.strip_suffix('Z') {
        Some(s) => format!("{s}.{:03}Z", ms % 1000),
        None => whole,
    }
}

/// Parses an RFC 3339 time (any offset) of a query parameter into epoch milliseconds; a bad
/// one is a 400 naming `param`.
pub fn parse_time(param: &str, value: &str) -> Result<u64, ApiError> {
    let bad = || ApiError::field(param, format!("{param} must be an RFC 3339 time such as 2026-12-02T15:04:05Z"));
    let t = DateTime::from_str(value, DateTimeFormat::DateTimeWithOffset).map_err(|_| bad())?;
    let ms = t.to_millis().map_err(|_| bad())?;
    u64::try_from(ms).map_err(|_| bad())
}

/// Paths shown in clear per kind; any other field (a credential reference, a key's secret
/// hashes, a setting added later) is redacted. `[]` stands for any array index.
fn allowed(kind: Kind, path: &str) -> bool {
    let list: &[&str] = match kind {
        Kind::Provider => &[
            "name",
            "kind",
            "cluster",
            "path_prefix",
            "settings.azure.url_form",
            "settings.azure.api_version",
            "settings.bedrock.region",
            "settings.bedrock.api",
            "settings.openai.organization",
            "settings.openai.project",
            "settings.responses.hosted_tools",
        ],
        Kind::Route => &["model", "targets[].provider", "targets[].model", "targets[].weight"],
        Kind::Key => &[
            "name",
            "owner",
            "allowed_models",
            "expires_at",
            "status",
            "rpm",
            "tpm",
            "budget.limit_usd",
            "budget.period",
            "rotation.rotated_at",
            "rotation.previous_expires_at",
        ],
        Kind::Price => &[
            "name",
            "provider",
            "model",
            "input_per_mtok",
            "output_per_mtok",
            "cache_read_per_mtok",
            "cache_write_per_mtok",
        ],
    };
    let pattern = generic_path(path);
    list.contains(&pattern.as_str())
}

/// `targets[3].weight` → `targets[].weight`.
fn generic_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

/// Leaf values by path: objects are walked (`a.b`), arrays holding objects or arrays too
/// (`a[0].b`); scalars and arrays of scalars are leaves.
fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    let join = |k: &str| if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                flatten(&join(k), child, out);
            }
        }
        Value::Array(items) if items.iter().any(|i| i.is_object() || i.is_array()) => {
            for (i, child) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), child, out);
            }
        }
        _ if prefix.is_empty() => {
            out.insert("(document)".to_string(), v.clone());
        }
        _ => {
            out.insert(prefix.to_string(), v.clone());
        }
    }
}

/// The changed fields between two documents of `kind` (`None`: the object did not exist), every
/// value off the kind's allowlist shown as [`REDACTED`] (a changed secret is visible as a
/// changed field, never by value).
pub fn diff(kind: Kind, before: Option<&Value>, after: Option<&Value>) -> BTreeMap<String, FieldChange> {
    let (mut b, mut a) = (BTreeMap::new(), BTreeMap::new());
    if let Some(v) = before {
        flatten("", v, &mut b);
    }
    if let Some(v) = after {
        flatten("", v, &mut a);
    }
    let mut paths: Vec<&String> = b.keys().chain(a.keys()).collect();
    paths.sort();
    paths.dedup();
    let mut out = BTreeMap::new();
    let mut total = 0usize;
    let mut omitted = 0usize;
    for path in paths {
        let (old, new) = (b.get(path), a.get(path));
        if old == new {
            continue;
        }
        let clear = allowed(kind, path);
        let show = |v: Option<&Value>| match v {
            None => Value::Null,
            Some(_) if !clear => Value::String(REDACTED.into()),
            Some(v) => cap(v),
        };
        let change = FieldChange { before: show(old), after: show(new) };
        let size = path.len() + 6 + serde_json::to_vec(&change).map_or(0, |b| b.len());
        if total + size > MAX_DIFF_BYTES {
            omitted += 1;
            continue;
        }
        total += size;
        out.insert(path.clone(), change);
    }
    if omitted > 0 {
        out.insert(
            OMITTED_FIELD.to_string(),
            FieldChange { before: Value::Null, after: Value::String(format!("{omitted} more changed fields")) },
        );
    }
    out
}

/// A value, or a note of its size when its JSON is over [`MAX_VALUE_BYTES`].
fn cap(v: &Value) -> Value {
    let len = serde_json::to_vec(v).map_or(0, |b| b.len());
    if len > MAX_VALUE_BYTES {
        Value::String(format!("<{len} bytes not shown>"))
    } else {
        v.clone()
    }
}

/// Parses the query of `GET /v1/audit` (names already checked by the authentication middleware).
pub fn query_from_params(p: &crate::api::QueryParams) -> Result<AuditQuery, ApiError> {
    let kind = match p.get("kind").map(String::as_str) {
        None => None,
        Some(k) => Some(
            Kind::ALL
                .into_iter()
                .find(|c| c.as_str() == k)
                .ok_or_else(|| ApiError::field("kind", "kind must be provider, route, key or price"))?,
        ),
    };
    let text = |name: &str| -> Result<Option<String>, ApiError> {
        match p.get(name) {
            None => Ok(None),
            Some(v) if v.is_empty() || v.len() > 512 || v.chars().any(char::is_control) => {
                Err(ApiError::field(name, format!("{name} must be 1 to 512 characters without control characters")))
            }
            Some(v) => Ok(Some(v.clone())),
        }
    };
    let limit = match p.get("limit") {
        None => 100,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=500).contains(&n) => n,
            _ => return Err(ApiError::field("limit", "limit must be an integer from 1 to 500")),
        },
    };
    let since_ms = p.get("since").map(|v| parse_time("since", v)).transpose()?;
    let until_ms = p.get("until").map(|v| parse_time("until", v)).transpose()?;
    let before_id = match p.get("cursor") {
        None => None,
        Some(c) => Some(
            hex::decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .filter(|id| id.len() >= 13 && id.is_ascii())
                .ok_or_else(|| ApiError::field("cursor", "cursor is not one this API returned"))?,
        ),
    };
    Ok(AuditQuery { kind, name: text("name")?, actor: text("actor")?, since_ms, until_ms, before_id, limit })
}

/// The opaque cursor of a record id.
pub fn cursor(id: &str) -> String {
    hex::encode(id.as_bytes())
}

/// Retention of audit records (`CP_AUDIT_RETENTION_DAYS`): `None` keeps them forever.
pub fn retention_secs(days: Option<u64>) -> Option<u64> {
    days.filter(|d| *d > 0).map(|d| d.saturating_mul(86_400))
}

/// JSON text of a record's diff map (for stores that keep it as one attribute).
pub fn to_json(r: &AuditRecord) -> Result<String, StoreError> {
    serde_json::to_string(r).map_err(|e| StoreError::Backend(e.to_string()))
}

/// A stored record from its JSON text.
pub fn from_json(s: &[u8]) -> Result<AuditRecord, StoreError> {
    serde_json::from_slice(s).map_err(|e| StoreError::Backend(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_format_and_parse() {
        assert_eq!(format_time(1_795_737_600_123), "2026-11-27T00:00:00.123Z");
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(parse_time("since", "2026-11-27T00:00:00.123Z").unwrap(), 1_795_737_600_123);
        assert_eq!(parse_time("since", "2026-11-27T01:00:00+01:00").unwrap(), 1_795_737_600_000);
        let e = parse_time("until", "yesterday").unwrap_err();
        assert_eq!((e.status, e.param.as_deref()), (400, Some("until")));
    }

    #[test]
    fn ids_sort_by_time_and_sequence() {
        let a = AuditContext::fixed("t", Via::Api, "00000000000000aa", 5);
        let b = AuditContext::fixed("t", Via::Api, "0000000000000000", 6);
        let (a0, a1, b0) = (a.next_id(), a.next_id(), b.next_id());
        assert!(a0 < a1 && a1 < b0, "{a0} {a1} {b0}");
        assert_eq!(a0, "0000000000005-00000000000000aa-0000");
    }

    #[test]
    fn requests_in_one_millisecond_sort_in_arrival_order() {
        let contexts: Vec<AuditContext> = (0..64).map(|_| AuditContext::new("t", Via::Api)).collect();
        let ids: Vec<String> = contexts.iter().map(|c| format!("{:013}-{}", 0, c.request_id)).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        assert!(contexts
            .iter()
            .all(|c| c.request_id.len() == 16 && c.request_id.bytes().all(|b| b.is_ascii_hexdigit())));
    }

    #[test]
    fn actor_names_role_and_token_digest_prefix() {
        let a = actor_for("admin", "abc");
        assert_eq!(a, "admin:ba7816bf");
        assert_ne!(actor_for("admin", "abd"), a);
    }

    #[test]
    fn diff_redacts_everything_off_the_allowlist() {
        let before = json!({"name": "p", "kind": "openai", "cluster": "c", "credential": "env:A_SECRET_REF",
            "settings": {"openai": {"project": "proj_1"}, "future": {"token": "t0"}}});
        let after = json!({"name": "p", "kind": "openai", "cluster": "c2", "credential": "env:B_SECRET_REF",
            "settings": {"openai": {"project": "proj_2"}, "future": {"token": "t1"}}});
        let d = diff(Kind::Provider, Some(&before), Some(&after));
        let text = serde_json::to_string(&d).unwrap();
        for leak in ["A_SECRET_REF", "B_SECRET_REF", "t0", "t1"] {
            assert!(!text.contains(leak), "{leak} in {text}");
        }
        assert_eq!(d["cluster"], FieldChange { before: json!("c"), after: json!("c2") });
        assert_eq!(d["credential"], FieldChange { before: json!(REDACTED), after: json!(REDACTED) });
        assert_eq!(d["settings.future.token"].after, json!(REDACTED));
        assert_eq!(d["settings.openai.project"].after, json!("proj_2"));
        assert!(!d.contains_key("name"), "unchanged fields are left out");
        // Created: every field, before null.
        let d = diff(Kind::Provider, None, Some(&after));
        assert_eq!(d["credential"], FieldChange { before: Value::Null, after: json!(REDACTED) });
        assert_eq!(d["kind"].after, json!("openai"));
    }

    #[test]
    fn key_hashes_and_array_paths() {
        let before = json!({"name": "k", "allowed_models": ["a"], "rotation": {"secret_hash": "h1", "previous_hash": "h0", "rotated_at": 1, "previous_expires_at": 2}});
        let after = json!({"name": "k", "allowed_models": ["a", "b"], "rotation": {"secret_hash": "h2", "previous_hash": "h1", "rotated_at": 3, "previous_expires_at": 4}});
        let d = diff(Kind::Key, Some(&before), Some(&after));
        let text = serde_json::to_string(&d).unwrap();
        assert!(!text.contains("h0") && !text.contains("h1") && !text.contains("h2"), "{text}");
        assert_eq!(d["allowed_models"].after, json!(["a", "b"]));
        assert_eq!(d["rotation.rotated_at"].after, json!(3));
        let r0 = json!({"model": "m", "targets": [{"provider": "p", "model": "x", "weight": 1}]});
        let r1 = json!({"model": "m", "targets": [{"provider": "p", "model": "x", "weight": 2}, {"provider": "q", "model": "y", "weight": 1, "secret": "s"}]});
        let d = diff(Kind::Route, Some(&r0), Some(&r1));
        assert_eq!(d["targets[0].weight"], FieldChange { before: json!(1), after: json!(2) });
        assert_eq!(d["targets[1].provider"].after, json!("q"));
        assert_eq!(d["targets[1].secret"].after, json!(REDACTED));
    }

    #[test]
    fn large_values_and_diffs_are_capped() {
        let big = "x".repeat(10_000);
        let d = diff(Kind::Key, None, Some(&json!({"owner": big})));
        assert_eq!(d["owner"].after, json!("<10002 bytes not shown>"));
        let many: Vec<Value> = (0..5000).map(|i| json!({"provider": format!("p{i:0>40}"), "model": "m"})).collect();
        let d = diff(Kind::Route, None, Some(&json!({"model": "m", "targets": many})));
        assert!(serde_json::to_vec(&d).unwrap().len() < MAX_DIFF_BYTES + 1024);
        assert!(d[OMITTED_FIELD].after.as_str().unwrap().ends_with("more changed fields"));
    }
}
