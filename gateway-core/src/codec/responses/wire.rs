//! Reading JSON objects member by member, so every bad value is named by its path in OpenAI's
//! wording (`Invalid type for 'input[2].call_id': expected a string.`, `param: input[2].call_id`)
//! instead of a serde line and column inside a large body.

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::codec::members::Members;
pub(super) use crate::codec::members::{is_array, is_null, is_object, is_string, join};

use crate::conversation::Json;
use crate::error::GatewayError;

/// A 400 naming `param`, with OpenAI's `code`.
fn error(param: &str, message: String, code: &str) -> GatewayError {
    GatewayError::invalid(message).with_param(param).with_code(code)
}

/// `Missing required parameter: '<param>'.`
pub(super) fn missing(param: &str) -> GatewayError {
    error(param, format!("Missing required parameter: '{param}'."), "missing_required_parameter")
}

/// `Invalid type for '<param>': expected <expected>.`
pub(super) fn invalid_type(param: &str, expected: &str) -> GatewayError {
    error(param, format!("Invalid type for '{param}': expected {expected}."), "invalid_type")
}

/// `Invalid value: '<value>'. Supported values are: <supported>.`
pub(super) fn invalid_value(param: &str, value: &str, supported: &str) -> GatewayError {
    // A client's value is echoed, but bounded: it may be anything.
    let shown: String = value.chars().take(64).collect();
    error(param, format!("Invalid value: '{shown}'. Supported values are: {supported}."), "invalid_value")
}

/// A 400 about `param` in free wording.
pub(super) fn invalid(param: &str, message: String, code: &str) -> GatewayError {
    error(param, message, code)
}

/// A JSON object's members in body order, values unparsed.
pub(super) struct Obj<'a> {
    /// Name and raw value of each member, repeated names included.
    pub members: Vec<(Cow<'a, str>, &'a RawValue)>,
    /// Where this object sits in the request, for error messages.
    pub path: String,
}

impl<'a> Obj<'a> {
    /// Reads `raw` as an object located at `path`.
    pub fn parse(raw: &'a RawValue, path: String) -> Result<Obj<'a>, GatewayError> {
        if !is_object(raw) {
            return Err(invalid_type(&path, "an object"));
        }
        let members: Members<'a> = serde_json::from_str(raw.get())
            .map_err(|e| invalid(&path, format!("Invalid object at '{path}': {e}"), "invalid_value"))?;
        Ok(Obj { members: members.0, path })
    }

    /// Reads a whole request body (already known to start with `{`).
    pub fn body(body: &'a [u8]) -> Result<Obj<'a>, GatewayError> {
        let members: Members<'a> = serde_json::from_slice(body).map_err(|e| {
            GatewayError::invalid(format!(
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. {e})"
            ))
        })?;
        Ok(Obj { members: members.0, path: String::new() })
    }

    /// The member `key` (the last one if repeated), `null` counting as absent.
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v).filter(|v| !is_null(v))
    }

    /// The path of member `key`.
    pub fn at(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Whether every member that is not `null` is one of `known`.
    pub fn only(&self, known: &[&str]) -> bool {
        self.members.iter().all(|(k, v)| is_null(v) || known.contains(&k.as_ref()))
    }

    /// An optional string member.
    pub fn opt_str(&self, key: &str) -> Result<Option<String>, GatewayError> {
        self.get(key).map(|raw| string(raw, &self.at(key))).transpose()
    }

    /// A required string member.
    pub fn req_str(&self, key: &str) -> Result<String, GatewayError> {
        self.opt_str(key)?.ok_or_else(|| missing(&self.at(key)))
    }

    /// An optional boolean member.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, GatewayError> {
        self.get(key)
            .map(|raw| serde_json::from_str::<bool>(raw.get()).map_err(|_| invalid_type(&self.at(key), "a boolean")))
            .transpose()
    }

    /// An optional non-negative integer member.
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>, GatewayError> {
        self.get(key)
            .map(|raw| serde_json::from_str::<u64>(raw.get()).map_err(|_| invalid_type(&self.at(key), "an integer")))
            .transpose()
    }

    /// An optional number member within `[min, max]`.
    pub fn opt_f64_in(&self, key: &str, min: f64, max: f64) -> Result<Option<f64>, GatewayError> {
        let Some(raw) = self.get(key) else { return Ok(None) };
        let path = self.at(key);
        let value = serde_json::from_str::<f64>(raw.get()).map_err(|_| invalid_type(&path, "a decimal"))?;
        if value < min {
            return Err(invalid(
                &path,
                format!("Invalid '{path}': decimal below minimum value. Expected a value >= {min}, but got {value} instead."),
                "decimal_below_min_value",
            ));
        }
        if value > max {
            return Err(invalid(
                &path,
                format!("Invalid '{path}': decimal above maximum value. Expected a value <= {max}, but got {value} instead."),
                "decimal_above_max_value",
            ));
        }
        Ok(Some(value))
    }

    /// An optional member that must be a JSON object, kept verbatim.
    pub fn opt_object(&self, key: &str) -> Result<Option<Json>, GatewayError> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) if is_object(raw) => Ok(Some(Json(raw.to_owned()))),
            Some(_) => Err(invalid_type(&self.at(key), "an object")),
        }
    }

    /// The member `key` as an array of raw elements (`Ok(None)` when absent).
    pub fn opt_array(&self, key: &str) -> Result<Option<Vec<&'a RawValue>>, GatewayError> {
        self.get(key).map(|raw| array(raw, &self.at(key))).transpose()
    }
}

/// A raw value that must be a string.
pub(super) fn string(raw: &RawValue, path: &str) -> Result<String, GatewayError> {
    serde_json::from_str::<String>(raw.get()).map_err(|_| invalid_type(path, "a string"))
}

/// A raw value that must be an array.
pub(super) fn array<'a>(raw: &'a RawValue, path: &str) -> Result<Vec<&'a RawValue>, GatewayError> {
    if !is_array(raw) {
        return Err(invalid_type(path, "an array"));
    }
    serde_json::from_str::<Vec<&'a RawValue>>(raw.get())
        .map_err(|e| invalid(path, format!("Invalid array at '{path}': {e}"), "invalid_value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> &RawValue {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn members_keep_order_null_is_absent_and_errors_speak_openai() {
        let obj = Obj::parse(raw(r#"{"b":1,"c":null,"b":2,"t":-1}"#), "p".into()).unwrap();
        assert_eq!(obj.get("b").unwrap().get(), "2");
        assert!(obj.get("c").is_none());
        assert!(obj.only(&["b", "t"]));
        let err = obj.opt_str("b").unwrap_err();
        assert_eq!(err.message, "Invalid type for 'p.b': expected a string.");
        assert_eq!((err.param.as_deref(), err.code.as_deref()), (Some("p.b"), Some("invalid_type")));
        let err = obj.req_str("zz").unwrap_err();
        assert_eq!(err.message, "Missing required parameter: 'p.zz'.");
        let err = obj.opt_f64_in("t", 0.0, 2.0).unwrap_err();
        assert_eq!(err.code.as_deref(), Some("decimal_below_min_value"));
        assert!(err.message.contains("Expected a value >= 0, but got -1 instead."), "{}", err.message);
        assert!(Obj::parse(raw("[1]"), "q".into()).is_err());
    }
}
