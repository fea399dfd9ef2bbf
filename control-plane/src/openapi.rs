//! The REST API's OpenAPI 3.1 document, generated from the code (ADR 0024): operations from the
//! `#[utoipa::path]` attributes on the handlers in [`crate::api`], schemas from `ToSchema` on the
//! types the handlers parse and serialise, and the answers every endpoint shares (401, 403, 413,
//! 503, ...) added here by rule, from the shape of each operation.

use std::borrow::Cow;
use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use crate::model::{ErrorResponse, KeySpec, PriceSpec, ProviderSpec, RouteSpec};

/// The document's generator: every handler of the REST API is listed under `paths`.
#[derive(OpenApi)]
#[openapi(
    info(title = "AI gateway control plane", version = "1"),
    paths(
        crate::api::healthz,
        serve,
        crate::api::list_providers,
        crate::api::create_provider,
        crate::api::get_provider,
        crate::api::update_provider,
        crate::api::delete_provider,
        crate::api::list_routes,
        crate::api::create_route,
        crate::api::get_route,
        crate::api::update_route,
        crate::api::delete_route,
        crate::api::list_keys,
        crate::api::create_key,
        crate::api::get_key,
        crate::api::update_key,
        crate::api::delete_key,
        crate::api::revoke_key,
        crate::api::rotate_key,
        crate::api::list_prices,
        crate::api::create_price,
        crate::api::get_price,
        crate::api::update_price,
        crate::api::delete_price,
        crate::api::apply_handler,
        crate::api::snapshot_status,
        crate::api::usage_handler,
        crate::api::audit_handler,
        crate::api::whoami,
    ),
    components(schemas(ErrorResponse)),
    modifiers(&Conventions),
    security(("bearer" = [])),
    tags(
        (name = "providers", description = "Provider accounts: kind, Envoy cluster, credential reference."),
        (name = "routes", description = "Public model names and their weighted provider targets."),
        (name = "keys", description = "Virtual keys: grants, limits, budgets, rotation, revocation."),
        (name = "prices", description = "USD per million tokens per provider model, for costs and budgets."),
        (name = "apply", description = "Declarative configuration: plan and apply a whole document."),
        (name = "snapshot", description = "The configuration pushed to the Envoys."),
        (name = "usage", description = "Tokens and cost per caller, provider model and period."),
        (name = "audit", description = "Who changed which object, when, and which fields (secrets redacted)."),
        (name = "meta", description = "Liveness, the caller's access level and this document."),
    )
)]
pub struct ApiDoc;

/// What the whole API has in common, said once (it is the `info.description`).
const DESCRIPTION: &str = "Admin API of the AI gateway's control plane: providers, routes, virtual keys, prices, \
declarative apply, snapshot status and usage.\n\n\
**Authentication.** Every `/v1` endpoint takes `Authorization: Bearer <token>`. An *admin* token may do everything; \
a *read-only* token may call every `GET` and `POST /v1/apply?dry_run=true`, and gets a 403 (`forbidden`) for any \
other write. A missing or unknown token is a 401 with `WWW-Authenticate: Bearer`.\n\n\
**Concurrency.** Every object carries an `ETag` (its version). `PUT`, `DELETE`, revoke and rotate honour `If-Match` \
and answer 412 (`version_mismatch`) when it does not match.\n\n\
**Errors** use OpenAI's shape `{\"error\":{\"message\",\"type\",\"param\",\"code\"}}`, `param` naming the bad field, \
query parameter or path segment.\n\n\
**Query parameters.** Each endpoint accepts only the ones it documents; an unknown parameter or one given twice is a \
400 naming it (code `unknown_parameter` or `duplicate_parameter`). Boolean flags accept `true`/`1`/empty or \
`false`/`0` only.\n\n\
**Bodies** are limited to 2 MiB (2097152 bytes): a larger one is a 413 (`request_too_large`, param `body`). A JSON \
or YAML syntax error is a 400 with param `body` and the line and column in the message; an unknown or missing field \
is a 400 naming it.\n\n\
A method an endpoint does not serve is a 405 (`method_not_allowed`) and an unknown path a 404 (`not_found`), both in \
the same error shape.";

/// The document, generated from the attributes and types.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as served and as committed in `control-plane/openapi.json` (pretty, one final
/// newline).
pub static JSON: LazyLock<String> = LazyLock::new(|| {
    let mut s = document().to_pretty_json().unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
});

/// The API's OpenAPI 3.1 document (this one), generated from the code.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", operation_id = "get_openapi", security(()),
    responses((status = 200, description = "This OpenAPI 3.1 document.", content_type = "application/json", body = Object)))]
pub async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], JSON.as_str())
}

/// `limit` and `cursor` of the list endpoints.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Pagination {
    /// Page size, 1 to 1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page; absent for the first page. Any other value is a 400.
    cursor: Option<String>,
}

/// The query of `GET /v1/audit`, as `audit::query_from_params` reads it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AuditParams {
    /// Only objects of this kind.
    #[param(pattern = "^(provider|route|key|price)$")]
    kind: Option<String>,
    /// Only this object (with `kind`: its history, read from its own index).
    #[param(min_length = 1, max_length = 512)]
    name: Option<String>,
    /// Only this actor, e.g. `admin:1a2b3c4d` (role and the first 8 hex digits of the token's
    /// SHA-256).
    #[param(min_length = 1, max_length = 512)]
    actor: Option<String>,
    /// RFC 3339 time (any offset), inclusive.
    #[param(format = DateTime)]
    since: Option<String>,
    /// RFC 3339 time (any offset), exclusive.
    #[param(format = DateTime)]
    until: Option<String>,
    /// Page size, 1 to 500; default 100.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page; absent for the first page. Any other value is a 400.
    cursor: Option<String>,
}

/// The `If-Match` precondition of the writes to one object.
#[derive(utoipa::IntoParams)]
#[into_params(names("If-Match"), parameter_in = Header)]
#[allow(dead_code)]
pub struct IfMatch(
    /// The `ETag` the change is based on (`"3"`, `W/"3"`); `*` or absent for no precondition. A
    /// quoted tag that is not the object's current one is a 412; a value that is no entity tag
    /// (empty, unquoted) a 400.
    #[param(pattern = r#"^(\*|(W/)?"[^"]*")$"#)]
    Option<String>,
);

/// A stored object as the API returns it: `spec`'s fields plus `version`, `created_at` and
/// `updated_at`, with `name_field` always present, and `extra` fields (required).
fn stored(spec: RefOr<Schema>, name_field: &str, extra: &[(&str, Object)]) -> RefOr<Schema> {
    let RefOr::T(Schema::Object(mut obj)) = spec else { return spec };
    let meta = [
        ("version", "The object's version; its `ETag` is this number, quoted."),
        ("created_at", "Unix seconds."),
        ("updated_at", "Unix seconds."),
    ];
    for (field, description) in meta {
        let prop = ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::Integer))
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64)))
            .minimum(Some(0))
            .description(Some(description))
            .build();
        obj.properties.insert(field.to_string(), RefOr::T(Schema::Object(prop)));
        obj.required.push(field.to_string());
    }
    for (field, prop) in extra {
        obj.properties.insert((*field).to_string(), RefOr::T(Schema::Object(prop.clone())));
        obj.required.push((*field).to_string());
    }
    if !obj.required.iter().any(|r| r == name_field) {
        obj.required.push(name_field.to_string());
    }
    RefOr::T(Schema::Object(obj))
}

/// A page of a list endpoint: `items` of `item` and the cursor of the next page.
fn page(item: &str) -> RefOr<Schema> {
    let items =
        utoipa::openapi::schema::ArrayBuilder::new().items(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(item)));
    let next = ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .description(Some("Pass as `cursor` for the next page; null on the last page."));
    RefOr::T(Schema::Object(
        ObjectBuilder::new()
            .property("items", items)
            .property("next_cursor", next)
            .required("items")
            .required("next_cursor")
            .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::<Schema>::FreeForm(false)))
            .build(),
    ))
}

/// Declares a schema computed from real types (the stored views and list pages): the functions
/// above shape it, the types' own `ToSchema` supplies the fields.
macro_rules! computed_schema {
    ($(#[$doc:meta])* $name:ident, $schema:expr, [$($dep:ty),*]) => {
        $(#[$doc])*
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }

            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                $(
                    schemas.push((<$dep as ToSchema>::name().into_owned(), <$dep as PartialSchema>::schema()));
                    <$dep as ToSchema>::schemas(schemas);
                )*
            }
        }
    };
}

/// The `secret` member of the answers that show a key's secret.
fn secret() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::String))
        .pattern(Some("^sk-gw-[0-9a-f]{64}$"))
        .description(Some("The key's secret, shown only in this answer: the control plane keeps only its hash."))
        .build()
}

computed_schema!(
    /// A provider as stored.
    Provider, stored(ProviderSpec::schema(), "name", &[]), [ProviderSpec]);
computed_schema!(
    /// A route as stored.
    Route, stored(RouteSpec::schema(), "model", &[]), [RouteSpec]);
computed_schema!(
    /// A virtual key as stored (no secret, no hashes).
    Key, stored(KeySpec::schema(), "name", &[]), [KeySpec]);
computed_schema!(
    /// A virtual key with its new secret: the answer of create and rotate.
    KeyWithSecret, stored(KeySpec::schema(), "name", &[("secret", secret())]), [KeySpec]);
computed_schema!(
    /// A price row as stored.
    Price, stored(PriceSpec::schema(), "name", &[]), [PriceSpec]);
computed_schema!(
    /// A page of providers.
    ProviderList, page("Provider"), [Provider]);
computed_schema!(
    /// A page of routes.
    RouteList, page("Route"), [Route]);
computed_schema!(
    /// A page of keys.
    KeyList, page("Key"), [Key]);
computed_schema!(
    /// A page of prices.
    PriceList, page("Price"), [Price]);
computed_schema!(
    /// A page of audit records.
    AuditList, page("AuditRecord"), [crate::audit::AuditRecord]);

/// The document-wide parts: security scheme, description, and the error answers that follow
/// from an operation's shape rather than from its handler.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        doc.info.description = Some(DESCRIPTION.to_string());
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An admin token (every operation) or a read-only token (every GET, and POST /v1/apply with \
                         dry_run; other writes are a 403). Configured with --admin-token-file and \
                         --read-only-token-file.",
                    ))
                    .build(),
            ),
        );
        for (_, item) in doc.paths.paths.iter_mut() {
            let ops = [
                ("get", item.get.as_mut()),
                ("put", item.put.as_mut()),
                ("post", item.post.as_mut()),
                ("delete", item.delete.as_mut()),
            ];
            for (method, op) in ops {
                if let Some(op) = op {
                    add_common_errors(method, op);
                }
            }
        }
    }
}

/// Adds the answers every operation of its shape can give, unless its handler documents them.
fn add_common_errors(method: &str, op: &mut Operation) {
    // `security(())` (healthz, this document) is an empty requirement: no token, no errors.
    let public = op.security.as_ref().is_some_and(|s| s.iter().all(|r| r == &Default::default()));
    if public {
        return;
    }
    let params = op.parameters.as_deref().unwrap_or_default();
    let has = |place: ParameterIn| params.iter().any(|p| p.parameter_in == place);
    let mut errors: Vec<(&str, String)> = Vec::new();
    let mut bad = vec!["an unknown or repeated query parameter (`unknown_parameter`, `duplicate_parameter`)"];
    if has(ParameterIn::Query) {
        bad.push("an invalid query parameter value (`invalid_field`, param names it)");
    }
    if has(ParameterIn::Path) {
        bad.push("an object name that is not valid UTF-8 once decoded (`invalid_path`)");
    }
    if params.iter().any(|p| p.name == "If-Match") {
        bad.push("an `If-Match` that is no entity tag (`invalid_field`, param `If-Match`)");
    }
    if op.request_body.is_some() {
        bad.push("a body that does not parse or does not validate (`invalid_field`, param names the field)");
    }
    errors.push(("400", format!("Bad request: {}.", bad.join("; "))));
    errors.push((
        "401",
        "No token or an unknown one (`unauthorized`); the answer carries `WWW-Authenticate: Bearer`.".into(),
    ));
    if method != "get" {
        let who = if op.operation_id.as_deref() == Some("apply") {
            "The token is read-only and `dry_run` is not set (`forbidden`)."
        } else {
            "The token is read-only (`forbidden`)."
        };
        errors.push(("403", who.into()));
    }
    if params.iter().any(|p| p.name == "If-Match") {
        errors.push(("412", "`If-Match` does not match the object's current version (`version_mismatch`).".into()));
    }
    if op.request_body.is_some() {
        errors.push(("413", "The body is larger than 2097152 bytes (`request_too_large`).".into()));
    }
    errors.push(("503", "The store is unavailable (`store_unavailable`); retry later.".into()));
    for (status, description) in errors {
        if op.responses.responses.contains_key(status) {
            continue;
        }
        let response = ResponseBuilder::new()
            .description(description)
            .content("application/json", ContentBuilder::new().schema(Some(ErrorResponse::schema_ref())).build())
            .build();
        op.responses.responses.insert(status.to_string(), RefOr::T(response));
    }
}

/// A `$ref` to a type's component schema.
trait SchemaRef {
    fn schema_ref() -> RefOr<Schema>;
}

impl<T: ToSchema> SchemaRef for T {
    fn schema_ref() -> RefOr<Schema> {
        RefOr::Ref(utoipa::openapi::Ref::from_schema_name(T::name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    /// The query parameters each operation documents are exactly those the authentication
    /// middleware lets through (`api::allowed_params`), so the document and the strict parser
    /// cannot drift apart.
    #[test]
    fn documented_query_parameters_are_the_accepted_ones() {
        let doc = document();
        let mut checked = 0;
        for (path, item) in &doc.paths.paths {
            let ops = [
                (Method::GET, item.get.as_ref()),
                (Method::PUT, item.put.as_ref()),
                (Method::POST, item.post.as_ref()),
                (Method::DELETE, item.delete.as_ref()),
            ];
            for (method, op) in ops {
                let Some(op) = op else { continue };
                let mut documented: Vec<&str> = op
                    .parameters
                    .iter()
                    .flatten()
                    .filter(|p| p.parameter_in == ParameterIn::Query)
                    .map(|p| p.name.as_str())
                    .collect();
                documented.sort_unstable();
                // The router's pattern: `{*name}` where the document says `{name}`.
                let route = path
                    .replace("/v1/routes/{model}", "/v1/routes/{*model}")
                    .replace("/v1/prices/{name}", "/v1/prices/{*name}");
                let mut accepted = crate::api::allowed_params(&method, &route).to_vec();
                accepted.sort_unstable();
                assert_eq!(documented, accepted, "{method} {path}");
                checked += 1;
            }
        }
        assert!(checked >= 28, "only {checked} operations");
    }

    /// Every operation but the two public ones requires the bearer scheme (inherited from the
    /// document), and every one documents 401 and its error answers with the error schema.
    #[test]
    fn operations_declare_security_and_errors() {
        let v: serde_json::Value = serde_json::from_str(&JSON).unwrap();
        assert_eq!(v["openapi"], "3.1.0");
        assert_eq!(v["security"], serde_json::json!([{"bearer": []}]));
        assert_eq!(v["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
        for (path, item) in v["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let public = path == "/healthz" || path == "/openapi.json";
                assert_eq!(op.get("security") == Some(&serde_json::json!([{}])), public, "{method} {path}");
                let responses = op["responses"].as_object().unwrap();
                assert_eq!(responses.contains_key("401"), !public, "{method} {path}");
                for (status, r) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        assert_eq!(
                            r["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorResponse",
                            "{method} {path} {status}"
                        );
                    }
                }
                if method != "get" && !public {
                    assert!(responses.contains_key("403"), "{method} {path}");
                }
            }
        }
    }
}
