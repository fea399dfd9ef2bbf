//! The JSON member reader both client request decoders share (Anthropic Messages, Responses): an
//! object's members in body order with their values left as raw JSON, and the kind of a raw
//! value from its first byte. Each decoder wraps it in its own `Obj` with its API's error wording.

use std::borrow::Cow;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// `parent.key`, or `key` at the top level.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// Collects an object's members without parsing their values.
struct ObjVisitor;

impl<'de> Visitor<'de> for ObjVisitor {
    type Value = Vec<(Cow<'de, str>, &'de RawValue)>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let value: &'de RawValue = map.next_value()?;
            members.push((key, value));
        }
        Ok(members)
    }
}

/// Borrows the members of an object; a key with escapes is unescaped into an owned string.
pub(crate) struct Members<'a>(pub(crate) Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjVisitor).map(Members)
    }
}

/// Whether a raw value is JSON `null` (absent, as the SDKs send unset members).
pub(crate) fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

/// The first byte of a raw value (serde_json trims them): its JSON kind.
fn lead(raw: &RawValue) -> u8 {
    raw.get().bytes().next().unwrap_or(b' ')
}

/// Whether a raw value is a JSON object.
pub(crate) fn is_object(raw: &RawValue) -> bool {
    lead(raw) == b'{'
}

/// Whether a raw value is a JSON array.
pub(crate) fn is_array(raw: &RawValue) -> bool {
    lead(raw) == b'['
}

/// Whether a raw value is a JSON string.
pub(crate) fn is_string(raw: &RawValue) -> bool {
    lead(raw) == b'"'
}
