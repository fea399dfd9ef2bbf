//! Reading JSON objects field by field, so every bad value is named by its path in Anthropic's
//! wording (`messages[2].content[0].signature: Input should be a valid string`) instead of a
//! serde line and column inside a 76 KB body.

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::codec::members::Members;
pub(super) use crate::codec::members::{is_array, is_null, is_object, join};

use crate::conversation::{Cache, Json};
use crate::error::GatewayError;

/// A 400 naming `param`, Anthropic style (`<param>: <why>`).
pub(super) fn invalid(param: &str, why: &str) -> GatewayError {
    GatewayError::invalid(format!("{param}: {why}")).with_param(param)
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
            return Err(invalid(&path, "Input should be a valid dictionary"));
        }
        let members: Members<'a> =
            serde_json::from_str(raw.get()).map_err(|e| invalid(&path, &format!("Invalid object: {e}")))?;
        Ok(Obj { members: members.0, path })
    }

    /// Reads a whole request body (already known to start with `{`); one pass over its bytes.
    pub fn body(body: &'a [u8]) -> Result<Obj<'a>, GatewayError> {
        let members: Members<'a> = serde_json::from_slice(body)
            .map_err(|e| GatewayError::invalid(format!("The request body is not valid JSON: {e}")))?;
        Ok(Obj { members: members.0, path: String::new() })
    }

    /// The member `key` (the last one if the client repeated it), `null` counting as absent.
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v).filter(|v| !is_null(v))
    }

    /// The path of member `key`.
    pub fn at(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Whether every member is one of `known`.
    pub fn only(&self, known: &[&str]) -> bool {
        self.members.iter().all(|(k, _)| known.contains(&k.as_ref()))
    }

    /// An optional string member.
    pub fn opt_str(&self, key: &str) -> Result<Option<String>, GatewayError> {
        self.get(key).map(|raw| string(raw, &self.at(key))).transpose()
    }

    /// A required string member.
    pub fn req_str(&self, key: &str) -> Result<String, GatewayError> {
        self.opt_str(key)?.ok_or_else(|| invalid(&self.at(key), "Field required"))
    }

    /// An optional boolean member.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, GatewayError> {
        self.get(key)
            .map(|raw| {
                serde_json::from_str::<bool>(raw.get())
                    .map_err(|_| invalid(&self.at(key), "Input should be a valid boolean"))
            })
            .transpose()
    }

    /// An optional non-negative integer member.
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>, GatewayError> {
        self.get(key)
            .map(|raw| {
                serde_json::from_str::<u64>(raw.get())
                    .map_err(|_| invalid(&self.at(key), "Input should be a valid non-negative integer"))
            })
            .transpose()
    }

    /// An optional number member.
    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>, GatewayError> {
        self.get(key)
            .map(|raw| {
                serde_json::from_str::<f64>(raw.get())
                    .map_err(|_| invalid(&self.at(key), "Input should be a valid number"))
            })
            .transpose()
    }

    /// An optional member that must be a JSON object, kept verbatim.
    pub fn opt_object(&self, key: &str) -> Result<Option<Json>, GatewayError> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) if is_object(raw) => Ok(Some(Json(raw.to_owned()))),
            Some(_) => Err(invalid(&self.at(key), "Input should be a valid dictionary")),
        }
    }

    /// `cache_control`: `{"type":"ephemeral","ttl":"1h"}`.
    pub fn cache(&self) -> Result<Option<Cache>, GatewayError> {
        let Some(raw) = self.get("cache_control") else { return Ok(None) };
        let obj = Obj::parse(raw, self.at("cache_control"))?;
        Ok(Some(Cache { kind: obj.req_str("type")?, ttl: obj.opt_str("ttl")? }))
    }

    /// The member `key` as an array of raw elements (`Ok(None)` when absent).
    pub fn opt_array(&self, key: &str) -> Result<Option<Vec<&'a RawValue>>, GatewayError> {
        self.get(key).map(|raw| array(raw, &self.at(key))).transpose()
    }
}

/// A raw value that must be a string.
pub(super) fn string(raw: &RawValue, path: &str) -> Result<String, GatewayError> {
    serde_json::from_str::<String>(raw.get()).map_err(|_| invalid(path, "Input should be a valid string"))
}

/// A raw value that must be an array.
pub(super) fn array<'a>(raw: &'a RawValue, path: &str) -> Result<Vec<&'a RawValue>, GatewayError> {
    if !is_array(raw) {
        return Err(invalid(path, "Input should be a valid list"));
    }
    serde_json::from_str::<Vec<&'a RawValue>>(raw.get()).map_err(|e| invalid(path, &format!("Invalid list: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> &RawValue {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn members_keep_order_and_null_is_absent() {
        let r = raw(r#"{"b":1,"a\n":"x","c":null,"b":2}"#);
        let obj = Obj::parse(r, "p".into()).unwrap();
        let keys: Vec<&str> = obj.members.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["b", "a\n", "c", "b"]);
        assert_eq!(obj.get("b").unwrap().get(), "2");
        assert!(obj.get("c").is_none());
        assert_eq!(obj.opt_u64("b").unwrap(), Some(2));
        assert_eq!(obj.opt_str("a\n").unwrap().as_deref(), Some("x"));
        let err = obj.opt_str("b").unwrap_err();
        assert_eq!((err.message.as_str(), err.param.as_deref()), ("p.b: Input should be a valid string", Some("p.b")));
        assert_eq!(obj.req_str("zz").unwrap_err().message, "p.zz: Field required");
        assert!(Obj::parse(raw("[1]"), "q".into()).is_err());
    }
}
