//! Declarative apply for GitOps: one document lists providers and routes; the plan is the exact
//! diff against the store, and executing it makes exactly that diff. Stored objects the document
//! does not list are deleted only with `prune` (`--prune`, `?prune=true`); without it they are
//! kept and the plan lists them as such, so an empty or partial document can never wipe the
//! configuration by accident.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audit::AuditContext;
use crate::model::{ApiError, PriceSpec, ProviderSpec, RouteSpec};
use crate::store::{list_all, Kind, Record, Store};

/// The whole desired state of providers and routes. Virtual keys are not part of it: they carry
/// secrets created once, which do not belong in a Git repository.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Desired {
    #[serde(default)]
    pub providers: Vec<ProviderSpec>,
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
    /// The whole price table; `name` may be omitted (it is `<provider>/<model>`). Absent: the
    /// stored prices are left alone, so documents written before prices existed change nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prices: Option<Vec<PriceSpec>>,
}

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Delete,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Change {
    pub action: Action,
    /// `provider`, `route` or `price`.
    #[schema(value_type = String)]
    pub kind: &'static str,
    pub name: String,
    /// The version the plan was computed against; the write is conditional on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
    /// Top-level fields that differ (updates only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    #[serde(skip)]
    kind_enum: Option<Kind>,
    #[serde(skip)]
    doc: Option<Value>,
}

/// A stored object the document does not list, left in place because the apply does not prune.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Kept {
    /// `provider`, `route` or `price`.
    #[schema(value_type = String)]
    pub kind: &'static str,
    pub name: String,
}

/// The ordered changes that turn the store into the desired state.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    pub changes: Vec<Change>,
    /// Objects missing from the document and kept (only without prune).
    pub kept: Vec<Kept>,
}

/// Parses a YAML (or JSON, which is YAML) document; errors name the bad field.
pub fn parse_yaml(bytes: &[u8]) -> Result<Desired, ApiError> {
    let de = serde_yaml::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        // A syntax error (or a wrong top-level type) is about the document as a whole; serde_yaml's
        // message gives its line and column.
        let param = if path == "." { "body".to_string() } else { path };
        ApiError::field(param, format!("invalid document: {}", e.into_inner()))
    })
}

fn to_doc<T: Serialize>(v: &T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::new(500, "internal", e.to_string()))
}

fn changed_fields(old: &Value, new: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let o = old.as_object().unwrap_or(&empty);
    let n = new.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().filter(|k| o.get(*k) != n.get(*k)).cloned().collect()
}

/// Validates the document as a whole (names unique, routes only reference listed providers,
/// prices valid and one per provider model). Fills in price names.
pub fn validate(desired: &mut Desired) -> Result<(), ApiError> {
    let mut names = HashSet::new();
    for (i, p) in desired.providers.iter().enumerate() {
        p.validate(&format!("providers[{i}]."))?;
        if !names.insert(p.name.as_str()) {
            return Err(ApiError::field(
                format!("providers[{i}].name"),
                format!("provider '{}' is listed twice", p.name),
            ));
        }
    }
    // Routes may only target providers of the document: apply replaces the whole set.
    let providers: Vec<_> = desired.providers.iter().map(ProviderSpec::to_config).collect();
    let mut models = HashSet::new();
    for (i, r) in desired.routes.iter().enumerate() {
        r.validate(&format!("routes[{i}]."), &providers)?;
        if !models.insert(r.model.as_str()) {
            return Err(ApiError::field(format!("routes[{i}].model"), format!("route '{}' is listed twice", r.model)));
        }
    }
    let mut priced = HashSet::new();
    for (i, p) in desired.prices.iter_mut().flatten().enumerate() {
        p.validate(&format!("prices[{i}]."))?;
        if !priced.insert(p.name.clone()) {
            return Err(ApiError::field(format!("prices[{i}].model"), format!("price '{}' is listed twice", p.name)));
        }
    }
    Ok(())
}

fn diff(
    kind: Kind,
    current: Vec<Record>,
    desired: Vec<(String, Value)>,
    upserts: &mut Vec<Change>,
    deletes: &mut Vec<Change>,
) {
    let mut current: BTreeMap<String, Record> = current.into_iter().map(|r| (r.name.clone(), r)).collect();
    for (name, doc) in desired {
        match current.remove(&name) {
            None => upserts.push(Change {
                action: Action::Create,
                kind: kind.as_str(),
                name,
                expected_version: None,
                fields: Vec::new(),
                kind_enum: Some(kind),
                doc: Some(doc),
            }),
            Some(rec) if rec.doc != doc => upserts.push(Change {
                action: Action::Update,
                kind: kind.as_str(),
                fields: changed_fields(&rec.doc, &doc),
                name,
                expected_version: Some(rec.version),
                kind_enum: Some(kind),
                doc: Some(doc),
            }),
            Some(_) => {}
        }
    }
    for (name, rec) in current {
        deletes.push(Change {
            action: Action::Delete,
            kind: kind.as_str(),
            name,
            expected_version: Some(rec.version),
            fields: Vec::new(),
            kind_enum: Some(kind),
            doc: None,
        });
    }
}

/// Computes the diff. Order: providers created/updated, routes created/updated, routes deleted,
/// providers deleted — so no step leaves a route pointing at a missing provider. Deletions are
/// planned only with `prune`; without it, objects missing from the document are listed in
/// [`Plan::kept`].
pub async fn plan(store: &dyn Store, desired: &Desired, prune: bool) -> Result<Plan, ApiError> {
    let mut desired = desired.clone();
    validate(&mut desired)?;
    let desired = &desired;
    let providers =
        desired.providers.iter().map(|p| Ok((p.name.clone(), to_doc(p)?))).collect::<Result<Vec<_>, ApiError>>()?;
    let routes =
        desired.routes.iter().map(|r| Ok((r.model.clone(), to_doc(r)?))).collect::<Result<Vec<_>, ApiError>>()?;
    let (mut p_up, mut p_del, mut r_up, mut r_del) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    diff(Kind::Provider, list_all(store, Kind::Provider).await?, providers, &mut p_up, &mut p_del);
    diff(Kind::Route, list_all(store, Kind::Route).await?, routes, &mut r_up, &mut r_del);
    let (mut c_up, mut c_del) = (Vec::new(), Vec::new());
    if let Some(prices) = &desired.prices {
        let prices = prices.iter().map(|p| Ok((p.name.clone(), to_doc(p)?))).collect::<Result<Vec<_>, ApiError>>()?;
        diff(Kind::Price, list_all(store, Kind::Price).await?, prices, &mut c_up, &mut c_del);
    }
    let mut kept = Vec::new();
    if !prune {
        for c in r_del.drain(..).chain(p_del.drain(..)).chain(c_del.drain(..)) {
            kept.push(Kept { kind: c.kind, name: c.name });
        }
    }
    let mut changes = p_up;
    changes.extend(r_up);
    changes.extend(r_del);
    changes.extend(p_del);
    // Prices reference providers by name only (a price may precede its provider).
    changes.extend(c_up);
    changes.extend(c_del);
    Ok(Plan { changes, kept })
}

/// Executes a plan step by step, each write conditional on the version the plan saw. If someone
/// else changed an object meanwhile, it stops with 412 (409 for a name created meanwhile); the
/// steps already done stay done (each with its audit record) and a new plan converges.
pub async fn execute(store: &dyn Store, plan: &Plan, audit: &AuditContext) -> Result<(), ApiError> {
    for c in &plan.changes {
        let kind = c.kind_enum.ok_or_else(|| ApiError::new(500, "internal", "change without kind"))?;
        let empty = Value::Null;
        let doc = c.doc.as_ref().unwrap_or(&empty);
        match c.action {
            Action::Create => {
                store.create(kind, &c.name, doc, None, audit).await?;
            }
            Action::Update => {
                store.update(kind, &c.name, c.expected_version, doc, audit).await?;
            }
            Action::Delete => store.delete(kind, &c.name, c.expected_version, audit).await?,
        }
    }
    Ok(())
}

impl Plan {
    /// Bytes of the documents this plan creates or rewrites (an upper bound of how much it can
    /// grow the snapshot).
    pub fn written_bytes(&self) -> usize {
        self.changes.iter().filter_map(|c| c.doc.as_ref()).map(|d| serde_json::to_vec(d).map_or(0, |b| b.len())).sum()
    }

    /// Human-readable diff, one line per change (`+` create, `~` update, `-` delete), then one
    /// per kept object (`=`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.changes.is_empty() {
            out.push_str("no changes\n");
        }
        for c in &self.changes {
            let sign = match c.action {
                Action::Create => '+',
                Action::Update => '~',
                Action::Delete => '-',
            };
            out.push_str(&format!("{sign} {} {}", c.kind, c.name));
            if !c.fields.is_empty() {
                out.push_str(&format!(" ({})", c.fields.join(", ")));
            }
            out.push('\n');
        }
        for k in &self.kept {
            out.push_str(&format!("= {} {} (kept: not in document; use --prune to delete)\n", k.kind, k.name));
        }
        out
    }
}
