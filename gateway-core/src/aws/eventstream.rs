//! Decoder for AWS's binary event stream (`application/vnd.amazon.eventstream`), the framing of
//! Bedrock's ConverseStream.
//!
//! A message is: total length (u32 BE), headers length (u32 BE), CRC32 of those 8 bytes, the
//! headers, the payload, and a CRC32 of everything before it. Both CRCs are checked. Bytes arrive
//! in arbitrary pieces, so the decoder keeps the unfinished tail; it is bounded by the largest
//! message it accepts. Once a frame is corrupt the stream cannot be resynchronised (there is no
//! delimiter to look for), so the decoder reports the error once and then ignores further input.

/// Largest message accepted by default. AWS caps event payloads at 16 MiB; Converse events are
/// a few hundred bytes, so a smaller cap bounds memory without refusing real traffic.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// Prelude (12 bytes) plus the message CRC (4 bytes).
const MIN_MESSAGE_BYTES: usize = 16;

/// A header value, one variant per wire type (0..=9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Vec<u8>),
    String(String),
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
    Uuid([u8; 16]),
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Vec<u8>,
}

impl Message {
    /// The value of a string header such as `:event-type`.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).and_then(|(_, v)| match v {
            HeaderValue::String(s) => Some(s.as_str()),
            _ => None,
        })
    }
}

/// Why the stream could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventStreamError {
    #[error("event stream prelude checksum mismatch")]
    PreludeChecksum,
    #[error("event stream message checksum mismatch")]
    MessageChecksum,
    #[error("event stream message length {0} is invalid")]
    InvalidLength(u32),
    #[error("event stream message of {length} bytes exceeds the {limit}-byte limit")]
    TooLarge { length: usize, limit: usize },
    #[error("event stream header is malformed: {0}")]
    BadHeader(&'static str),
    #[error("event stream ended in the middle of a message ({0} bytes left over)")]
    Truncated(usize),
}

/// Incremental decoder; one per response stream.
#[derive(Debug)]
pub struct EventStreamDecoder {
    buf: Vec<u8>,
    max_message_bytes: usize,
    failed: bool,
}

impl Default for EventStreamDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_MESSAGE_BYTES)
    }
}

impl EventStreamDecoder {
    pub fn new(max_message_bytes: usize) -> Self {
        EventStreamDecoder { buf: Vec::new(), max_message_bytes, failed: false }
    }

    /// True once a corrupt frame was seen; later input is ignored.
    pub fn has_failed(&self) -> bool {
        self.failed
    }

    /// Feeds one chunk; appends every message it completes to `out`. Messages completed before a
    /// corrupt one are still delivered.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Message>) -> Result<(), EventStreamError> {
        if self.failed {
            return Ok(());
        }
        self.buf.extend_from_slice(chunk);
        let mut offset = 0;
        let result = loop {
            let rest = self.buf.get(offset..).unwrap_or_default();
            match self.next_message(rest) {
                Ok(Some((message, used))) => {
                    out.push(message);
                    offset += used;
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        if result.is_err() {
            self.failed = true;
            self.buf = Vec::new();
        } else {
            self.buf.drain(..offset.min(self.buf.len()));
        }
        result
    }

    /// Ends the stream: bytes of an unfinished message mean the stream was cut.
    pub fn finish(&mut self) -> Result<(), EventStreamError> {
        if self.failed || self.buf.is_empty() {
            return Ok(());
        }
        let left = self.buf.len();
        self.failed = true;
        self.buf = Vec::new();
        Err(EventStreamError::Truncated(left))
    }

    /// Decodes the message at the start of `bytes`, if it is complete; returns it and its size.
    fn next_message(&self, bytes: &[u8]) -> Result<Option<(Message, usize)>, EventStreamError> {
        let Some(prelude) = bytes.get(..12) else { return Ok(None) };
        let total = be_u32(prelude, 0);
        let headers_len = be_u32(prelude, 4);
        let prelude_crc = be_u32(prelude, 8);
        if crc32(prelude.get(..8).unwrap_or_default()) != prelude_crc {
            return Err(EventStreamError::PreludeChecksum);
        }
        let total_usize = total as usize;
        if total_usize < MIN_MESSAGE_BYTES || (headers_len as usize) > total_usize - MIN_MESSAGE_BYTES {
            return Err(EventStreamError::InvalidLength(total));
        }
        if total_usize > self.max_message_bytes {
            return Err(EventStreamError::TooLarge { length: total_usize, limit: self.max_message_bytes });
        }
        let Some(frame) = bytes.get(..total_usize) else { return Ok(None) };
        let (body, crc) = frame.split_at(total_usize - 4);
        if crc32(body) != be_u32(crc, 0) {
            return Err(EventStreamError::MessageChecksum);
        }
        let headers_end = 12 + headers_len as usize;
        let headers = parse_headers(body.get(12..headers_end).unwrap_or_default())?;
        let payload = body.get(headers_end..).unwrap_or_default().to_vec();
        Ok(Some((Message { headers, payload }, total_usize)))
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    match bytes.get(at..at + 4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => 0,
    }
}

/// Takes `n` bytes off the front of `rest`.
fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], EventStreamError> {
    if rest.len() < n {
        return Err(EventStreamError::BadHeader("value runs past the headers"));
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

fn fixed<const N: usize>(rest: &mut &[u8]) -> Result<[u8; N], EventStreamError> {
    let bytes = take(rest, N)?;
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    Ok(out)
}

fn parse_headers(mut rest: &[u8]) -> Result<Vec<(String, HeaderValue)>, EventStreamError> {
    let mut headers = Vec::new();
    while !rest.is_empty() {
        let [name_len] = fixed::<1>(&mut rest)?;
        let name = std::str::from_utf8(take(&mut rest, usize::from(name_len))?)
            .map_err(|_| EventStreamError::BadHeader("name is not UTF-8"))?
            .to_owned();
        let [kind] = fixed::<1>(&mut rest)?;
        let value = match kind {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes(fixed::<1>(&mut rest)?)),
            3 => HeaderValue::Short(i16::from_be_bytes(fixed::<2>(&mut rest)?)),
            4 => HeaderValue::Int(i32::from_be_bytes(fixed::<4>(&mut rest)?)),
            5 => HeaderValue::Long(i64::from_be_bytes(fixed::<8>(&mut rest)?)),
            6 | 7 => {
                let len = u16::from_be_bytes(fixed::<2>(&mut rest)?);
                let bytes = take(&mut rest, usize::from(len))?;
                if kind == 6 {
                    HeaderValue::Bytes(bytes.to_vec())
                } else {
                    let s = std::str::from_utf8(bytes)
                        .map_err(|_| EventStreamError::BadHeader("string value is not UTF-8"))?;
                    HeaderValue::String(s.to_owned())
                }
            }
            8 => HeaderValue::Timestamp(i64::from_be_bytes(fixed::<8>(&mut rest)?)),
            9 => HeaderValue::Uuid(fixed::<16>(&mut rest)?),
            _ => return Err(EventStreamError::BadHeader("unknown value type")),
        };
        headers.push((name, value));
    }
    Ok(headers)
}

/// Encodes a message; the inverse of the decoder, for tests, fuzz seeds and replay fixtures.
pub fn encode_message(headers: &[(&str, HeaderValue)], payload: &[u8]) -> Vec<u8> {
    let mut encoded_headers = Vec::new();
    for (name, value) in headers {
        let name = name.as_bytes();
        let name = name.get(..255).unwrap_or(name);
        encoded_headers.push(name.len() as u8);
        encoded_headers.extend_from_slice(name);
        match value {
            HeaderValue::Bool(true) => encoded_headers.push(0),
            HeaderValue::Bool(false) => encoded_headers.push(1),
            HeaderValue::Byte(v) => {
                encoded_headers.push(2);
                encoded_headers.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Short(v) => {
                encoded_headers.push(3);
                encoded_headers.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Int(v) => {
                encoded_headers.push(4);
                encoded_headers.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Long(v) => {
                encoded_headers.push(5);
                encoded_headers.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Bytes(v) => {
                let v = v.get(..usize::from(u16::MAX)).unwrap_or(v);
                encoded_headers.push(6);
                encoded_headers.extend_from_slice(&(v.len() as u16).to_be_bytes());
                encoded_headers.extend_from_slice(v);
            }
            HeaderValue::String(v) => {
                let v = v.as_bytes();
                let v = v.get(..usize::from(u16::MAX)).unwrap_or(v);
                encoded_headers.push(7);
                encoded_headers.extend_from_slice(&(v.len() as u16).to_be_bytes());
                encoded_headers.extend_from_slice(v);
            }
            HeaderValue::Timestamp(v) => {
                encoded_headers.push(8);
                encoded_headers.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Uuid(v) => {
                encoded_headers.push(9);
                encoded_headers.extend_from_slice(v);
            }
        }
    }
    let total = (MIN_MESSAGE_BYTES + encoded_headers.len() + payload.len()) as u32;
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&(encoded_headers.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&encoded_headers);
    out.extend_from_slice(payload);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the checksum the event stream uses.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        let index = ((crc ^ u32::from(b)) & 0xff) as usize;
        crc = CRC_TABLE.get(index).copied().unwrap_or(0) ^ (crc >> 8);
    }
    !crc
}

const CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, payload: &str) -> Vec<u8> {
        encode_message(
            &[
                (":event-type", HeaderValue::String(kind.into())),
                (":content-type", HeaderValue::String("application/json".into())),
                (":message-type", HeaderValue::String("event".into())),
            ],
            payload.as_bytes(),
        )
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn round_trip_every_header_type() {
        let headers = vec![
            ("t", HeaderValue::Bool(true)),
            ("f", HeaderValue::Bool(false)),
            ("b", HeaderValue::Byte(-3)),
            ("s", HeaderValue::Short(-300)),
            ("i", HeaderValue::Int(70_000)),
            ("l", HeaderValue::Long(-5_000_000_000)),
            ("y", HeaderValue::Bytes(vec![0, 1, 255])),
            ("str", HeaderValue::String("héllo".into())),
            ("ts", HeaderValue::Timestamp(1_700_000_000_000)),
            ("u", HeaderValue::Uuid([7; 16])),
        ];
        let bytes = encode_message(&headers, b"{\"a\":1}");
        let mut out = Vec::new();
        EventStreamDecoder::default().push(&bytes, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        let expected: Vec<(String, HeaderValue)> = headers.into_iter().map(|(n, v)| (n.to_owned(), v)).collect();
        assert_eq!(out[0].headers, expected);
        assert_eq!(out[0].payload, b"{\"a\":1}");
        assert_eq!(out[0].header_str("str"), Some("héllo"));
        assert_eq!(out[0].header_str("i"), None);
    }

    #[test]
    fn messages_split_at_every_offset_decode_identically() {
        let mut stream = event("messageStart", r#"{"role":"assistant"}"#);
        stream.extend(event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"hi"}}"#));
        stream.extend(encode_message(&[], b""));
        let mut whole = Vec::new();
        EventStreamDecoder::default().push(&stream, &mut whole).unwrap();
        assert_eq!(whole.len(), 3);
        for cut in 0..=stream.len() {
            let (a, b) = stream.split_at(cut);
            let mut d = EventStreamDecoder::default();
            let mut got = Vec::new();
            d.push(a, &mut got).unwrap();
            d.push(b, &mut got).unwrap();
            d.finish().unwrap();
            assert_eq!(got, whole, "cut at {cut}");
        }
        // One byte at a time.
        let mut d = EventStreamDecoder::default();
        let mut got = Vec::new();
        for b in &stream {
            d.push(std::slice::from_ref(b), &mut got).unwrap();
        }
        assert_eq!(got, whole);
    }

    #[test]
    fn every_single_bit_flip_is_an_error_or_a_different_message_never_a_panic() {
        let frame = event("messageStop", r#"{"stopReason":"end_turn"}"#);
        for i in 0..frame.len() * 8 {
            let mut bad = frame.clone();
            bad[i / 8] ^= 1 << (i % 8);
            let mut d = EventStreamDecoder::default();
            let mut out = Vec::new();
            let result = d.push(&bad, &mut out).and_then(|()| d.finish());
            // A flipped length may ask for more bytes (then finish reports truncation); a flipped
            // byte anywhere else breaks one of the two checksums.
            assert!(result.is_err(), "bit {i} went unnoticed");
            assert!(out.is_empty(), "bit {i}");
        }
    }

    #[test]
    fn corruption_is_reported_once_after_good_messages_and_input_is_then_ignored() {
        let good = event("messageStart", "{}");
        let mut bad = event("contentBlockDelta", "{}");
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        let mut d = EventStreamDecoder::default();
        let mut out = Vec::new();
        let mut input = good.clone();
        input.extend(&bad);
        assert_eq!(d.push(&input, &mut out), Err(EventStreamError::MessageChecksum));
        assert_eq!(out.len(), 1);
        assert!(d.has_failed());
        assert_eq!(d.push(&good, &mut out), Ok(()));
        assert_eq!(out.len(), 1);
        assert_eq!(d.finish(), Ok(()));
    }

    #[test]
    fn lengths_out_of_range_and_truncation() {
        let mut d = EventStreamDecoder::new(64);
        let big = event("x", &"a".repeat(100));
        assert!(matches!(d.push(&big, &mut Vec::new()), Err(EventStreamError::TooLarge { .. })));
        // total length below the minimum, with a valid prelude CRC
        let mut tiny = Vec::new();
        tiny.extend_from_slice(&8u32.to_be_bytes());
        tiny.extend_from_slice(&0u32.to_be_bytes());
        let c = crc32(&tiny);
        tiny.extend_from_slice(&c.to_be_bytes());
        assert_eq!(EventStreamDecoder::default().push(&tiny, &mut Vec::new()), Err(EventStreamError::InvalidLength(8)));
        // headers longer than the message
        let mut h = Vec::new();
        h.extend_from_slice(&20u32.to_be_bytes());
        h.extend_from_slice(&10u32.to_be_bytes());
        let c = crc32(&h);
        h.extend_from_slice(&c.to_be_bytes());
        assert_eq!(EventStreamDecoder::default().push(&h, &mut Vec::new()), Err(EventStreamError::InvalidLength(20)));
        let frame = event("messageStart", "{}");
        let mut d = EventStreamDecoder::default();
        d.push(&frame[..frame.len() - 3], &mut Vec::new()).unwrap();
        assert_eq!(d.finish(), Err(EventStreamError::Truncated(frame.len() - 3)));
    }

    #[test]
    fn malformed_headers_inside_a_valid_frame_are_errors() {
        for headers in
            [&[5u8, b'a'][..], &[1, b'a', 42], &[1, b'a', 7, 0, 9, b'x'], &[1, b'a', 7, 0, 1, 0xff], &[1, 0xff, 0]]
        {
            let mut frame = Vec::new();
            let total = (16 + headers.len()) as u32;
            frame.extend_from_slice(&total.to_be_bytes());
            frame.extend_from_slice(&(headers.len() as u32).to_be_bytes());
            let c = crc32(&frame);
            frame.extend_from_slice(&c.to_be_bytes());
            frame.extend_from_slice(headers);
            let c = crc32(&frame);
            frame.extend_from_slice(&c.to_be_bytes());
            let result = EventStreamDecoder::default().push(&frame, &mut Vec::new());
            assert!(matches!(result, Err(EventStreamError::BadHeader(_))), "{headers:?}: {result:?}");
        }
    }
}
