//! Byte-preserving edits of a JSON object's top-level members: some removed, some appended, every
//! other byte (key order, whitespace, number formatting, escapes, unknown members) kept. The same
//! technique as [`super::super::anthropic_passthrough::replace_model`]: the object is parsed once
//! into raw member values, whose offsets in the body are pointer differences.

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::error::{ErrorKind, GatewayError};
use crate::translate::openai_passthrough::RawObject;

/// One top-level member: its key, raw value, and the span of its text in the body (from after
/// the `{` or `,` before it to the `,` or `}` after it, surrounding whitespace included).
pub(crate) struct Member<'a> {
    pub(crate) key: Cow<'a, str>,
    pub(crate) value: &'a RawValue,
    start: usize,
    end: usize,
}

/// A JSON object cut into its members.
pub(crate) struct SplitObject<'a> {
    body: &'a [u8],
    /// Just after the opening brace.
    open_end: usize,
    /// The closing brace.
    close: usize,
    pub(crate) members: Vec<Member<'a>>,
}

fn not_json(e: serde_json::Error) -> GatewayError {
    GatewayError::invalid(format!("The request body is not valid JSON: {e}"))
}

fn internal() -> GatewayError {
    GatewayError::new(ErrorKind::Internal, "could not locate a member in the request body")
}

/// The first non-whitespace byte at or after `from`, with its index.
fn next_token(body: &[u8], from: usize) -> Option<(usize, u8)> {
    body.get(from..)?.iter().position(|b| !b.is_ascii_whitespace()).and_then(|i| {
        let at = from.checked_add(i)?;
        Some((at, *body.get(at)?))
    })
}

/// Cuts `body` (a JSON object) into its members; 400 when it is not a JSON object.
pub(crate) fn split(body: &[u8]) -> Result<SplitObject<'_>, GatewayError> {
    let object: RawObject<'_> = serde_json::from_slice(body).map_err(not_json)?;
    let Some((brace, b'{')) = next_token(body, 0) else {
        return Err(GatewayError::invalid("The request body must be a JSON object."));
    };
    let base = body.as_ptr() as usize;
    let mut cursor = brace + 1;
    let mut members = Vec::with_capacity(object.0.len());
    let mut close = None;
    for (key, value) in object.0 {
        // RawValue borrows from `body`: its offset is a pointer difference, checked below.
        let vstart = (value.get().as_ptr() as usize).wrapping_sub(base);
        let vend = vstart.saturating_add(value.get().len());
        if vstart < cursor || body.get(vstart..vend) != Some(value.get().as_bytes()) {
            return Err(internal());
        }
        let start = cursor;
        match next_token(body, vend) {
            Some((at, b',')) => {
                members.push(Member { key, value, start, end: at });
                cursor = at + 1;
            }
            Some((at, b'}')) => {
                members.push(Member { key, value, start, end: at });
                close = Some(at);
            }
            _ => return Err(internal()),
        }
    }
    let close = match close {
        Some(at) => at,
        None => match next_token(body, cursor) {
            Some((at, b'}')) if members.is_empty() => at,
            _ => return Err(internal()),
        },
    };
    Ok(SplitObject { body, open_end: brace + 1, close, members })
}

impl<'a> SplitObject<'a> {
    /// The raw value of the first member named `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.members.iter().find(|m| m.key == key).map(|m| m.value)
    }

    /// The object with the members `keep` refuses left out and `append` (key, raw JSON value)
    /// added at the end; every kept byte as it was.
    pub(crate) fn render(&self, keep: impl Fn(&str) -> bool, append: &[(&str, &str)]) -> Vec<u8> {
        let extra: usize = append.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
        let mut out = Vec::with_capacity(self.body.len() + extra);
        out.extend_from_slice(self.body.get(..self.open_end).unwrap_or_default());
        let mut first = true;
        for member in self.members.iter().filter(|m| keep(&m.key)) {
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(self.body.get(member.start..member.end).unwrap_or_default());
        }
        for (key, value) in append {
            if !first {
                out.push(b',');
            }
            first = false;
            // Keys are the gateway's own constants; encoding a &str cannot fail.
            out.extend_from_slice(serde_json::to_string(key).unwrap_or_default().as_bytes());
            out.push(b':');
            out.extend_from_slice(value.as_bytes());
        }
        out.extend_from_slice(self.body.get(self.close..).unwrap_or_default());
        out
    }
}

/// `buf` with the JSON text of `raw` (which must borrow from `buf`) replaced by `replacement`;
/// `None` when `raw` does not lie inside `buf`.
pub(crate) fn splice(buf: &[u8], raw: &RawValue, replacement: &[u8]) -> Option<Vec<u8>> {
    let start = (raw.get().as_ptr() as usize).checked_sub(buf.as_ptr() as usize)?;
    let end = start.checked_add(raw.get().len())?;
    if buf.get(start..end)? != raw.get().as_bytes() {
        return None;
    }
    let mut out = Vec::with_capacity(buf.len() + replacement.len());
    out.extend_from_slice(buf.get(..start)?);
    out.extend_from_slice(replacement);
    out.extend_from_slice(buf.get(end..)?);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_render_is_byte_identical_and_removals_touch_only_their_member() {
        let body = " { \"model\" : \"a\" ,\n \"x\":[1, 2 ] ,\"stream\":true,\"y\" :{\"k\": 1.50e1}  }\n";
        let split = split(body.as_bytes()).unwrap();
        assert_eq!(split.render(|_| true, &[]), body.as_bytes());
        let out = String::from_utf8(split.render(|k| k != "model" && k != "stream", &[("v", "\"b\"")])).unwrap();
        assert_eq!(out, " {\n \"x\":[1, 2 ] ,\"y\" :{\"k\": 1.50e1}  ,\"v\":\"b\"}\n");
        let out = String::from_utf8(split.render(|k| k == "y", &[])).unwrap();
        assert_eq!(out, " {\"y\" :{\"k\": 1.50e1}  }\n");
        assert_eq!(split.get("x").unwrap().get(), "[1, 2 ]");
        let empty = split_obj("{ }");
        assert_eq!(empty.render(|_| true, &[("a", "1")]), b"{\"a\":1}");
        for bad in ["", "[1]", "{\"a\":", "nope"] {
            assert!(super::split(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    fn split_obj(s: &str) -> SplitObject<'_> {
        split(s.as_bytes()).unwrap()
    }

    #[test]
    fn splice_replaces_only_the_raw_value() {
        let buf = br#"{"a":{"model":"x"},"model":"y"}"#;
        let split = split(buf).unwrap();
        let raw = split.get("model").unwrap();
        assert_eq!(splice(buf, raw, b"\"z\"").unwrap(), br#"{"a":{"model":"x"},"model":"z"}"#);
        let other: &RawValue = serde_json::from_str("\"y\"").unwrap();
        assert_eq!(splice(buf, other, b"1"), None);
    }
}
