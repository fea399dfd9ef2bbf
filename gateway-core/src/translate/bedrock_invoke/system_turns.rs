//! `system` turns inside `messages` (Claude Code's `mid-conversation-system` beta, which Bedrock
//! does not list) folded into the nearest user turn, in order: each becomes a text block
//! `<system-reminder>…</system-reminder>` (the form Claude Code itself uses for instructions
//! inside a user turn) appended to the next user turn, or to the previous one when an assistant
//! turn or the end follows, or a user turn of its own between two assistant turns. Appending
//! after a turn's blocks keeps `tool_result` blocks first, as Anthropic requires. Only the
//! touched turns are re-written; every other message keeps its bytes.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::GatewayError;

#[derive(Deserialize)]
struct Turn<'a> {
    #[serde(borrow, default)]
    role: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
}

/// A turn's `content`: a string or blocks. Told apart by the first byte: raw values cannot be
/// read through serde's untagged enums.
enum Content<'a> {
    Text(Cow<'a, str>),
    Blocks(Vec<&'a RawValue>),
}

fn content(raw: &RawValue) -> Option<Content<'_>> {
    if raw.get().trim_start().starts_with('[') {
        serde_json::from_str(raw.get()).ok().map(Content::Blocks)
    } else {
        serde_json::from_str(raw.get()).ok().map(Content::Text)
    }
}

#[derive(Deserialize)]
struct TextBlock<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    cache_control: Option<&'a RawValue>,
}

/// One message of the output: the client's bytes, or a user turn rebuilt with extra blocks.
enum Out<'a> {
    Raw(&'a RawValue),
    User(Vec<Cow<'a, str>>),
}

fn invalid(i: usize) -> GatewayError {
    GatewayError::invalid(format!("messages.{i}: a system turn's content must be text")).with_param("messages")
}

/// The text blocks of a user turn's content, as raw JSON.
fn user_blocks(content: Option<&RawValue>) -> Option<Vec<Cow<'_, str>>> {
    match self::content(content?)? {
        Content::Text(text) => Some(vec![Cow::Owned(text_block(&text, None))]),
        Content::Blocks(blocks) => Some(blocks.into_iter().map(|b| Cow::Borrowed(b.get())).collect()),
    }
}

fn text_block(text: &str, cache_control: Option<&RawValue>) -> String {
    let text = serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned());
    match cache_control {
        Some(cc) => format!("{{\"type\":\"text\",\"text\":{text},\"cache_control\":{}}}", cc.get()),
        None => format!("{{\"type\":\"text\",\"text\":{text}}}"),
    }
}

/// The `<system-reminder>` block standing for system turn `i`.
fn reminder(content: Option<&RawValue>, i: usize) -> Result<String, GatewayError> {
    let content = content.ok_or_else(|| invalid(i))?;
    let (text, cache_control) = match self::content(content).ok_or_else(|| invalid(i))? {
        Content::Text(text) => (text.into_owned(), None),
        Content::Blocks(blocks) => {
            let mut text = String::new();
            let mut cache_control = None;
            for block in blocks {
                let block: TextBlock<'_> = serde_json::from_str(block.get()).map_err(|_| invalid(i))?;
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&block.text.ok_or_else(|| invalid(i))?);
                cache_control = block.cache_control.or(cache_control);
            }
            (text, cache_control)
        }
    };
    Ok(text_block(&format!("<system-reminder>\n{text}\n</system-reminder>"), cache_control))
}

/// The `messages` array with its `system` turns folded into user turns; `None` when it has none
/// (the common case, decided without parsing unless the text `"system"` occurs).
pub(crate) fn fold(messages: &RawValue) -> Result<Option<String>, GatewayError> {
    if !messages.get().contains("\"system\"") {
        return Ok(None);
    }
    let Ok(turns) = serde_json::from_str::<Vec<&RawValue>>(messages.get()) else { return Ok(None) };
    let parsed: Vec<Turn<'_>> =
        turns.iter().map(|t| serde_json::from_str(t.get()).unwrap_or(Turn { role: None, content: None })).collect();
    if !parsed.iter().any(|t| t.role.as_deref() == Some("system")) {
        return Ok(None);
    }
    let mut out: Vec<Out<'_>> = Vec::with_capacity(turns.len());
    let mut pending: Vec<Cow<'_, str>> = Vec::new();
    for (i, (raw, turn)) in turns.iter().zip(&parsed).enumerate() {
        match turn.role.as_deref() {
            Some("system") => pending.push(Cow::Owned(reminder(turn.content, i)?)),
            Some("user") if !pending.is_empty() => match user_blocks(turn.content) {
                Some(mut blocks) => {
                    blocks.append(&mut pending);
                    out.push(Out::User(blocks));
                }
                // Content the gateway cannot read: left as it was, reminders in a turn of their own.
                None => {
                    out.push(Out::User(std::mem::take(&mut pending)));
                    out.push(Out::Raw(raw));
                }
            },
            _ => {
                flush(&mut out, &mut pending, &parsed, &turns);
                out.push(Out::Raw(raw));
            }
        }
    }
    flush(&mut out, &mut pending, &parsed, &turns);
    let mut json = String::with_capacity(messages.get().len() + 256);
    json.push('[');
    for (i, message) in out.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        match message {
            Out::Raw(raw) => json.push_str(raw.get()),
            Out::User(blocks) => {
                json.push_str("{\"role\":\"user\",\"content\":[");
                for (j, block) in blocks.iter().enumerate() {
                    if j > 0 {
                        json.push(',');
                    }
                    json.push_str(block);
                }
                json.push_str("]}");
            }
        }
    }
    json.push(']');
    Ok(Some(json))
}

/// Puts pending reminders into the previous user turn, or a user turn of their own.
fn flush<'a>(out: &mut Vec<Out<'a>>, pending: &mut Vec<Cow<'a, str>>, parsed: &[Turn<'a>], turns: &[&'a RawValue]) {
    if pending.is_empty() {
        return;
    }
    if let Some(Out::User(blocks)) = out.last_mut() {
        blocks.append(pending);
        return;
    }
    let previous_user = match out.last() {
        Some(Out::Raw(raw)) => turns
            .iter()
            .position(|t| std::ptr::eq(*t, *raw))
            .and_then(|i| parsed.get(i))
            .filter(|t| t.role.as_deref() == Some("user"))
            .and_then(|t| user_blocks(t.content)),
        _ => None,
    };
    match previous_user {
        Some(mut blocks) => {
            blocks.append(pending);
            if let Some(last) = out.last_mut() {
                *last = Out::User(blocks);
            }
        }
        None => out.push(Out::User(std::mem::take(pending))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn run(messages: Value) -> Option<Value> {
        let text = messages.to_string();
        let raw: &RawValue = serde_json::from_str(&text).unwrap();
        fold(raw).unwrap().map(|s| serde_json::from_str(&s).unwrap())
    }

    #[test]
    fn system_turns_join_the_nearest_user_turn_in_order() {
        assert_eq!(run(json!([{"role": "user", "content": "the system is down"}])), None);
        let reminder = |t: &str| json!({"type": "text", "text": format!("<system-reminder>\n{t}\n</system-reminder>")});
        let tool_use =
            json!({"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]});
        let result = json!({"type": "tool_result", "tool_use_id": "t", "content": "ok"});
        let out = run(json!([
            {"role": "user", "content": "hi"},
            tool_use,
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [result]},
        ]))
        .unwrap();
        assert_eq!(out[2], json!({"role": "user", "content": [result, reminder("be brief")]}));
        assert_eq!(out.as_array().unwrap().len(), 3);
        // After an assistant turn at the end: into the previous user turn... or a turn of its own.
        let out = run(json!([
            {"role": "user", "content": "hi"},
            {"role": "system", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b", "cache_control": {"type": "ephemeral"}}]},
            {"role": "assistant", "content": "yo"},
            {"role": "system", "content": "c"},
        ]))
        .unwrap();
        let mut ab = reminder("a\nb");
        ab["cache_control"] = json!({"type": "ephemeral"});
        assert_eq!(out[0], json!({"role": "user", "content": [{"type": "text", "text": "hi"}, ab]}));
        assert_eq!(out[1], json!({"role": "assistant", "content": "yo"}));
        assert_eq!(out[2], json!({"role": "user", "content": [reminder("c")]}));
        let bad: &RawValue = serde_json::from_str(r#"[{"role":"system","content":[{"type":"image"}]}]"#).unwrap();
        assert_eq!(fold(bad).unwrap_err().status(), 400);
    }
}
