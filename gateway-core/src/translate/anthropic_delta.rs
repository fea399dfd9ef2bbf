//! The fast path for the event that makes up nearly all of an Anthropic stream, a text or
//! thinking delta:
//! `{"type":"content_block_delta","index":N,"delta":{"type":"text_delta","text":"…"}}`.
//!
//! Parsing it into `StreamEvent` with serde cost about 4,000 instructions per chunk (every key
//! matched, every string checked for UTF-8 twice, the text unescaped into a `String` when it had
//! any escape), only for the text to be escaped again on the way out. This scanner reads exactly
//! that shape and hands back the text *as it is escaped in the event*, which is what the output
//! needs: a JSON string whose escapes are all among `\" \\ \n \r \t \b \f` is byte for byte what
//! serde_json (and `openai_chunks::escape_str`) writes for its decoded value, so it is copied
//! as is.
//!
//! It accepts the members in any order and JSON whitespace between tokens (Anthropic pads its
//! events with spaces before the last brace), and nothing else: any other member, a repeated
//! member, an escape in a key, `\/` or `\u` in the text, a control character, invalid UTF-8, a
//! number that is not a plain `u64` or trailing bytes return `None`, and the caller takes the
//! general serde path, which keeps deciding every case this one does not.

/// Which delta the event carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaKind {
    /// `text_delta`, text in `text`.
    Text,
    /// `thinking_delta`, text in `thinking`.
    Thinking,
}

/// A text or thinking delta read by [`scan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawDelta<'a> {
    /// Text or thinking.
    pub kind: DeltaKind,
    /// The content block index.
    pub index: u64,
    /// The text as escaped in the event (without quotes), valid UTF-8; also its JSON escaping
    /// for the output.
    pub escaped: &'a [u8],
}

/// Reads `data` as a text or thinking `content_block_delta`, if it is exactly one.
pub fn scan(data: &[u8]) -> Option<RawDelta<'_>> {
    let mut cur = Cursor { bytes: data, at: 0 };
    cur.eat(b'{')?;
    let (mut typed, mut index, mut delta) = (false, None, None);
    loop {
        // Keys and type names are matched with their quotes as literals, which also leaves an
        // escaped spelling to serde (which decodes it); the key's first letter picks the one
        // literal to compare.
        match cur.peek(1) {
            Some(b't') if !typed && cur.literal(br#""type""#) => {
                cur.eat(b':')?;
                typed = cur.literal(br#""content_block_delta""#);
                if !typed {
                    return None;
                }
            }
            Some(b'i') if index.is_none() && cur.literal(br#""index""#) => {
                cur.eat(b':')?;
                index = Some(cur.u64()?);
            }
            Some(b'd') if delta.is_none() && cur.literal(br#""delta""#) => {
                cur.eat(b':')?;
                delta = Some(cur.delta()?);
            }
            _ => return None,
        }
        if !cur.end_member()? {
            break;
        }
    }
    cur.skip_ws();
    if cur.at != data.len() || !typed {
        return None;
    }
    let (kind, escaped) = delta?;
    Some(RawDelta { kind, index: index?, escaped })
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        self.skip_ws();
        if self.bytes.get(self.at) != Some(&byte) {
            return None;
        }
        self.at += 1;
        Some(())
    }

    /// The byte `ahead` bytes past the next token's start.
    fn peek(&mut self, ahead: usize) -> Option<u8> {
        self.skip_ws();
        self.bytes.get(self.at + ahead).copied()
    }

    /// Steps over `literal` if it comes next.
    fn literal(&mut self, literal: &[u8]) -> bool {
        self.skip_ws();
        let found = self.bytes.get(self.at..).is_some_and(|rest| rest.starts_with(literal));
        if found {
            self.at += literal.len();
        }
        found
    }

    /// After a member: `true` at `,` (another follows), `false` at `}` (object closed).
    fn end_member(&mut self) -> Option<bool> {
        self.skip_ws();
        let more = match self.bytes.get(self.at)? {
            b',' => true,
            b'}' => false,
            _ => return None,
        };
        self.at += 1;
        Some(more)
    }

    /// A JSON integer serde reads as `u64`: no sign, fraction, exponent or leading zero. At most
    /// 19 digits, which cannot overflow; a longer one goes to serde.
    fn u64(&mut self) -> Option<u64> {
        self.skip_ws();
        let start = self.at;
        let mut value = 0u64;
        while let Some(&digit @ b'0'..=b'9') = self.bytes.get(self.at) {
            if self.at - start == 19 {
                return None;
            }
            value = value * 10 + u64::from(digit - b'0');
            self.at += 1;
        }
        let digits = self.at - start;
        if digits == 0 || (digits > 1 && self.bytes.get(start) == Some(&b'0')) {
            return None;
        }
        Some(value)
    }

    /// `{"type":"text_delta","text":"…"}` or the thinking twin, in either order.
    fn delta(&mut self) -> Option<(DeltaKind, &'a [u8])> {
        self.eat(b'{')?;
        let (mut kind, mut text) = (None, None);
        loop {
            // `type`, `text` and `thinking` differ in their second letter.
            match self.peek(2) {
                Some(b'y') if kind.is_none() && self.literal(br#""type""#) => {
                    self.eat(b':')?;
                    kind = Some(if self.literal(br#""text_delta""#) {
                        DeltaKind::Text
                    } else if self.literal(br#""thinking_delta""#) {
                        DeltaKind::Thinking
                    } else {
                        return None;
                    });
                }
                Some(b'e') if text.is_none() && self.literal(br#""text""#) => {
                    self.eat(b':')?;
                    text = Some((DeltaKind::Text, self.verbatim_str()?));
                }
                Some(b'h') if text.is_none() && self.literal(br#""thinking""#) => {
                    self.eat(b':')?;
                    text = Some((DeltaKind::Thinking, self.verbatim_str()?));
                }
                _ => return None,
            }
            if !self.end_member()? {
                break;
            }
        }
        match (kind, text) {
            (Some(kind), Some((key_kind, text))) if kind == key_kind => Some((kind, text)),
            _ => None,
        }
    }

    /// The inside of a JSON string whose decoded value serde_json escapes back to the same
    /// bytes: valid UTF-8, no control character, and only the escapes serde_json writes itself.
    fn verbatim_str(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.at;
        // Most deltas are ASCII, which needs no UTF-8 check.
        let mut high = 0u8;
        loop {
            match *self.bytes.get(self.at)? {
                b'"' => break,
                b'\\' => match self.bytes.get(self.at + 1)? {
                    b'"' | b'\\' | b'n' | b'r' | b't' | b'b' | b'f' => self.at += 2,
                    _ => return None,
                },
                0x00..=0x1f => return None,
                byte => {
                    high |= byte;
                    self.at += 1;
                }
            }
        }
        let raw = self.bytes.get(start..self.at)?;
        self.at += 1;
        if high >= 0x80 {
            std::str::from_utf8(raw).ok()?;
        }
        Some(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(data: &str) -> Option<(DeltaKind, u64, String)> {
        scan(data.as_bytes()).map(|d| (d.kind, d.index, String::from_utf8(d.escaped.to_vec()).unwrap()))
    }

    #[test]
    fn reads_anthropics_shape_padding_and_any_order() {
        let expected = Some((DeltaKind::Text, 1, "a\\\"b\\n".to_owned()));
        assert_eq!(
            text(r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"a\"b\n"}}"#),
            expected
        );
        assert_eq!(
            text(r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"a\"b\n"}     }"#),
            expected
        );
        assert_eq!(
            text(" {\"delta\" : {\"text\":\"a\\\"b\\n\",\"type\":\"text_delta\"}, \"index\":1,\r\n\t\"type\":\"content_block_delta\"} "),
            expected
        );
        assert_eq!(
            text(r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"é"}}"#),
            Some((DeltaKind::Thinking, 0, "é".to_owned()))
        );
    }

    #[test]
    fn anything_else_goes_to_the_general_path() {
        for data in [
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\/"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\u00e9"}}"#,
            "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\t\"}}",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","thinking":"x"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x","text":"y"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x","extra":1}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"x"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"text":"x"}}"#,
            r#"{"type":"content_block_delta","delta":{"type":"text_delta","text":"x"}}"#,
            r#"{"type":"content_block_delta","index":01,"delta":{"type":"text_delta","text":"x"}}"#,
            r#"{"type":"content_block_delta","index":-1,"delta":{"type":"text_delta","text":"x"}}"#,
            r#"{"type":"content_block_delta","index":1.0,"delta":{"type":"text_delta","text":"x"}}"#,
            r#"{"type":"content_block_delta","index":null,"delta":{"type":"text_delta","text":"x"}}"#,
            r#"{"type":"content_block_delta","index":12345678901234567890,"delta":{"type":"text_delta","text":"x"}}"#,
            r#"{"type":"content_block_delta","index":0,"index":0,"delta":{"type":"text_delta","text":"x"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}x"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"},}"#,
            r#"{"typ\u0065":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}"#,
            r#"{"type":"message_delta","index":0,"delta":{"type":"text_delta","text":"x"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"},"usage":{}}"#,
            r#"{}"#,
            "",
        ] {
            assert_eq!(scan(data.as_bytes()), None, "{data}");
        }
        assert_eq!(
            scan(
                b"{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\xff\"}}"
            ),
            None
        );
    }
}
