//! JSON Schema (as OpenAI clients write it) → Gemini's `Schema`, an OpenAPI 3.0 subset that
//! rejects unknown members with a 400.
//!
//! | JSON Schema | Gemini |
//! |---|---|
//! | `type`, `format` (see below), `title`, `description`, `nullable`, `enum`, `items`, `properties`, `required`, `minItems`, `maxItems`, `minProperties`, `maxProperties`, `minLength`, `maxLength`, `pattern`, `minimum`, `maximum`, `default`, `example`, `anyOf`, `propertyOrdering` | kept (recursively for nested schemas) |
//! | `type: [T, "null"]` | `type: T, nullable: true` (several non-null types → `anyOf`) |
//! | `oneOf` | `anyOf` (Gemini has no exclusive union) |
//! | `allOf` | members merged into the schema (properties and required lists joined) |
//! | `const: v` | `enum: [v]` |
//! | `$ref` to `#/$defs/...` or `#/definitions/...` | inlined (Gemini has no references); a reference cycle or nesting deeper than 32 is a 400 |
//! | `format` on strings other than `enum` / `date-time` | dropped (Gemini rejects them) |
//! | `additionalProperties`, `$schema`, `$id`, `$defs`, `definitions`, `strict`, `examples`, `not`, `patternProperties`, `exclusiveMinimum`, ... any other member | dropped |
//!
//! Dropping is safe for the request (the model sees a slightly looser schema), and the caller
//! still validates what comes back.

use serde_json::{Map, Value};

use crate::error::GatewayError;

/// Deepest nesting (and `$ref` expansion) accepted.
const MAX_DEPTH: usize = 32;

/// Members Gemini's `Schema` accepts and that need no mapping.
const KEPT: &[&str] = &[
    "title",
    "description",
    "nullable",
    "enum",
    "required",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "default",
    "example",
    "propertyOrdering",
];

/// Converts `schema`; `param` names the request field for errors.
pub fn to_gemini(schema: &Value, param: &str) -> Result<Value, GatewayError> {
    let defs = Defs::of(schema);
    convert(schema, &defs, 0, param)
}

struct Defs<'a> {
    defs: Option<&'a Map<String, Value>>,
    definitions: Option<&'a Map<String, Value>>,
}

impl<'a> Defs<'a> {
    fn of(root: &'a Value) -> Self {
        Defs {
            defs: root.get("$defs").and_then(Value::as_object),
            definitions: root.get("definitions").and_then(Value::as_object),
        }
    }

    fn resolve(&self, reference: &str) -> Option<&'a Value> {
        if let Some(name) = reference.strip_prefix("#/$defs/") {
            return self.defs?.get(name);
        }
        if let Some(name) = reference.strip_prefix("#/definitions/") {
            return self.definitions?.get(name);
        }
        None
    }
}

fn too_deep(param: &str) -> GatewayError {
    GatewayError::invalid(format!(
        "The JSON schema is nested deeper than {MAX_DEPTH} levels or has recursive references, which the provider cannot express."
    ))
    .with_param(param)
}

fn convert(schema: &Value, defs: &Defs<'_>, depth: usize, param: &str) -> Result<Value, GatewayError> {
    if depth > MAX_DEPTH {
        return Err(too_deep(param));
    }
    let Some(object) = schema.as_object() else {
        // `true`/`false` schemas and other non-objects carry nothing Gemini can use.
        return Ok(Value::Object(Map::new()));
    };
    if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
        let Some(target) = defs.resolve(reference) else {
            return Err(GatewayError::invalid(format!("The JSON schema reference '{reference}' cannot be resolved."))
                .with_param(param));
        };
        let mut resolved = convert(target, defs, depth + 1, param)?;
        // Siblings of $ref (a description, typically) refine the referenced schema.
        if let (Some(out), Some(description)) = (resolved.as_object_mut(), object.get("description")) {
            out.insert("description".into(), description.clone());
        }
        return Ok(resolved);
    }

    let mut out = Map::new();
    for (key, value) in object {
        match key.as_str() {
            "type" => match value {
                Value::Array(types) => {
                    let non_null: Vec<&Value> = types.iter().filter(|t| t.as_str() != Some("null")).collect();
                    if non_null.len() < types.len() {
                        out.insert("nullable".into(), Value::Bool(true));
                    }
                    match non_null.as_slice() {
                        [] => {}
                        [one] => {
                            out.insert("type".into(), (*one).clone());
                        }
                        many => {
                            let variants = many.iter().map(|t| serde_json::json!({"type": t})).collect();
                            out.insert("anyOf".into(), Value::Array(variants));
                        }
                    }
                }
                other => {
                    out.insert("type".into(), other.clone());
                }
            },
            "format" => {
                let is_string =
                    object.get("type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("string"));
                let allowed = !is_string || matches!(value.as_str(), Some("enum" | "date-time"));
                if allowed {
                    out.insert(key.clone(), value.clone());
                }
            }
            "const" => {
                out.insert("enum".into(), Value::Array(vec![value.clone()]));
            }
            "properties" => {
                let Some(properties) = value.as_object() else { continue };
                let mut converted = Map::new();
                for (name, property) in properties {
                    converted.insert(name.clone(), convert(property, defs, depth + 1, param)?);
                }
                out.insert(key.clone(), Value::Object(converted));
            }
            "items" => {
                out.insert(key.clone(), convert(value, defs, depth + 1, param)?);
            }
            "anyOf" | "oneOf" => {
                let Some(variants) = value.as_array() else { continue };
                let converted =
                    variants.iter().map(|v| convert(v, defs, depth + 1, param)).collect::<Result<Vec<_>, _>>()?;
                out.insert("anyOf".into(), Value::Array(converted));
            }
            "allOf" => {}
            k if KEPT.contains(&k) => {
                out.insert(key.clone(), value.clone());
            }
            _ => {}
        }
    }
    if let Some(all_of) = object.get("allOf").and_then(Value::as_array) {
        for member in all_of {
            let converted = convert(member, defs, depth + 1, param)?;
            merge(&mut out, converted);
        }
    }
    Ok(Value::Object(out))
}

/// Folds an `allOf` member into `out`: properties and required lists are joined, other members
/// are taken when `out` has none.
fn merge(out: &mut Map<String, Value>, member: Value) {
    let Value::Object(member) = member else { return };
    for (key, value) in member {
        match (key.as_str(), out.get_mut(&key), value) {
            ("properties", Some(Value::Object(existing)), Value::Object(more)) => existing.extend(more),
            ("required", Some(Value::Array(existing)), Value::Array(more)) => {
                for name in more {
                    if !existing.contains(&name) {
                        existing.push(name);
                    }
                }
            }
            (_, Some(_), _) => {}
            (_, None, value) => {
                out.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conv(v: Value) -> Value {
        to_gemini(&v, "p").unwrap()
    }

    #[test]
    fn unsupported_members_are_dropped_and_supported_kept() {
        let out = conv(json!({
            "$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": false, "strict": true,
            "properties": {"q": {"type": "string", "description": "query", "minLength": 1, "format": "uri", "examples": ["a"]},
                           "when": {"type": "string", "format": "date-time"},
                           "n": {"type": "integer", "format": "int32", "minimum": 0, "exclusiveMaximum": 10}},
            "required": ["q"]
        }));
        assert_eq!(
            out,
            json!({"type": "object", "required": ["q"], "properties": {
            "q": {"type": "string", "description": "query", "minLength": 1},
            "when": {"type": "string", "format": "date-time"},
            "n": {"type": "integer", "format": "int32", "minimum": 0}}})
        );
    }

    #[test]
    fn nullable_types_const_one_of_and_refs() {
        let out = conv(
            json!({"type": "object", "$defs": {"City": {"type": "object", "properties": {"name": {"type": "string"}}}},
            "properties": {
                "a": {"type": ["string", "null"]},
                "b": {"type": ["string", "integer"]},
                "c": {"const": "fixed"},
                "d": {"oneOf": [{"type": "string"}, {"type": "number"}]},
                "e": {"$ref": "#/$defs/City", "description": "where"},
                "f": {"type": "array", "items": {"$ref": "#/$defs/City"}},
                "g": {"allOf": [{"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]}, {"properties": {"y": {"type": "string"}}, "required": ["y"]}]}
            }}),
        );
        let p = &out["properties"];
        assert_eq!(p["a"], json!({"type": "string", "nullable": true}));
        assert_eq!(p["b"], json!({"anyOf": [{"type": "string"}, {"type": "integer"}]}));
        assert_eq!(p["c"], json!({"enum": ["fixed"]}));
        assert_eq!(p["d"], json!({"anyOf": [{"type": "string"}, {"type": "number"}]}));
        assert_eq!(
            p["e"],
            json!({"type": "object", "properties": {"name": {"type": "string"}}, "description": "where"})
        );
        assert_eq!(p["f"]["items"]["properties"]["name"]["type"], "string");
        assert_eq!(
            p["g"],
            json!({"type": "object", "properties": {"x": {"type": "string"}, "y": {"type": "string"}}, "required": ["x", "y"]})
        );
        assert!(out.get("$defs").is_none());
    }

    #[test]
    fn recursive_or_unresolvable_refs_are_400() {
        let err = to_gemini(&json!({"$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}}}, "$ref": "#/$defs/N"}), "tools[0]").unwrap_err();
        assert_eq!((err.status(), err.param.as_deref()), (400, Some("tools[0]")));
        let err = to_gemini(&json!({"$ref": "https://example.com/s.json"}), "x").unwrap_err();
        assert_eq!(err.status(), 400);
        let mut deep = json!({"type": "string"});
        for _ in 0..40 {
            deep = json!({"type": "array", "items": deep});
        }
        assert_eq!(to_gemini(&deep, "x").unwrap_err().status(), 400);
    }
}
