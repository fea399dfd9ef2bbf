//! The one Server-Sent Events framer every streaming translator uses: bytes in, whole events out,
//! whatever the chunk boundaries (LF, CRLF or CR line ends, an event or a CRLF split anywhere).

/// One complete SSE event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, when present.
    pub event: Option<String>,
    /// All `data:` lines of the event joined with `\n`.
    pub data: String,
}

/// A framing failure; the framer stays usable afterwards.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("an event exceeded {limit} bytes and was dropped")]
    EventTooLarge { limit: usize },
}

/// Largest event the framer holds by default. Provider events are a few KB; tool arguments or
/// images streamed as one event stay well below this.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

/// Incremental SSE parser with a bounded tail buffer; one per response stream.
///
/// Events go to a callback as borrowed `(event name, data)` slices of the framer's own buffers,
/// which are reused from one event to the next: framing a steady stream allocates nothing.
#[derive(Debug)]
pub struct SseFramer {
    max_event_bytes: usize,
    /// The current line, when it did not end in the previous chunk.
    line: Vec<u8>,
    /// The previous chunk ended in CR: a leading LF in the next chunk belongs to it.
    pending_cr: bool,
    /// The `event:` field of the current event (valid while `has_event`).
    event: Vec<u8>,
    has_event: bool,
    data: Vec<u8>,
    has_data: bool,
    /// Skipping the rest of an oversized event, up to its blank line.
    discarding: bool,
}

impl Default for SseFramer {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl SseFramer {
    /// A framer that drops events larger than `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        SseFramer {
            max_event_bytes,
            line: Vec::new(),
            pending_cr: false,
            event: Vec::new(),
            has_event: false,
            data: Vec::new(),
            has_data: false,
            discarding: false,
        }
    }

    /// Feeds one chunk; appends every event it completes to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        self.push_each(chunk, |event, data| {
            out.push(SseEvent { event: event.map(str::to_owned), data: data.to_owned() })
        })
    }

    /// Ends the stream: a last event without its closing blank line is still delivered.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        self.finish_each(|event, data| out.push(SseEvent { event: event.map(str::to_owned), data: data.to_owned() }))
    }

    /// Feeds one chunk; calls `on_event(event name, data)` for every event it completes, in
    /// order. Invalid UTF-8 reaches the callback replaced by U+FFFD, as [`Self::push`] gives it.
    pub fn push_each<F: FnMut(Option<&str>, &str)>(&mut self, chunk: &[u8], mut on_event: F) -> Result<(), SseError> {
        self.push_each_raw(chunk, |event, data| on_event(event.map(utf8_lossy).as_deref(), &utf8_lossy(data)))
    }

    /// [`Self::push_each`] lending the bytes as they came: for callers that read only part of an
    /// event (a delta's text) and check that part's UTF-8 themselves.
    pub fn push_each_raw<F: FnMut(Option<&[u8]>, &[u8])>(
        &mut self,
        chunk: &[u8],
        mut on_event: F,
    ) -> Result<(), SseError> {
        let mut rest = chunk;
        let mut result = Ok(());
        // An empty chunk must not consume the pending CR: its LF may still come next.
        if rest.is_empty() {
            return result;
        }
        if self.pending_cr {
            self.pending_cr = false;
            if let Some((b'\n', tail)) = rest.split_first() {
                rest = tail;
            }
        }
        while let Some(pos) = memchr::memchr2(b'\n', b'\r', rest) {
            let (line, tail) = rest.split_at(pos);
            let (terminator, mut tail) = match tail.split_first() {
                Some((&t, tail)) => (t, tail),
                None => break,
            };
            if terminator == b'\r' {
                match tail.split_first() {
                    Some((b'\n', after)) => tail = after,
                    Some(_) => {}
                    None => self.pending_cr = true,
                }
            }
            if self.line.is_empty() {
                if let Err(e) = self.process_line(line, &mut on_event) {
                    result = Err(e);
                }
            } else {
                let mut joined = std::mem::take(&mut self.line);
                if joined.len() + line.len() > self.max_event_bytes {
                    result = Err(self.overflow());
                } else {
                    joined.extend_from_slice(line);
                    if let Err(e) = self.process_line(&joined, &mut on_event) {
                        result = Err(e);
                    }
                }
                joined.clear();
                self.line = joined;
            }
            rest = tail;
        }
        if !rest.is_empty() && !self.discarding {
            if self.line.len() + self.data.len() + rest.len() > self.max_event_bytes {
                result = Err(self.overflow());
            } else {
                self.line.extend_from_slice(rest);
            }
        }
        result
    }

    /// [`Self::finish`] with a callback, like [`Self::push_each`].
    pub fn finish_each<F: FnMut(Option<&str>, &str)>(&mut self, mut on_event: F) {
        self.finish_each_raw(|event, data| on_event(event.map(utf8_lossy).as_deref(), &utf8_lossy(data)))
    }

    /// [`Self::finish`] with a callback lending bytes, like [`Self::push_each_raw`].
    pub fn finish_each_raw<F: FnMut(Option<&[u8]>, &[u8])>(&mut self, mut on_event: F) {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            let _ = self.process_line(&line, &mut on_event);
            self.line = line;
            self.line.clear();
        }
        self.dispatch(&mut on_event);
        self.pending_cr = false;
        self.discarding = false;
    }

    fn overflow(&mut self) -> SseError {
        self.line.clear();
        self.data.clear();
        self.event.clear();
        self.has_event = false;
        self.has_data = false;
        self.discarding = true;
        SseError::EventTooLarge { limit: self.max_event_bytes }
    }

    fn process_line<F: FnMut(Option<&[u8]>, &[u8])>(&mut self, line: &[u8], on_event: &mut F) -> Result<(), SseError> {
        if line.is_empty() {
            if self.discarding {
                self.discarding = false;
            } else {
                self.dispatch(on_event);
            }
            return Ok(());
        }
        if self.discarding || line.first() == Some(&b':') {
            return Ok(());
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let (field, value) = line.split_at(colon);
                let value = value.get(1..).unwrap_or_default();
                (field, value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match field {
            b"data" => {
                if self.data.len() + value.len() + 1 > self.max_event_bytes {
                    return Err(self.overflow());
                }
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => {
                self.event.clear();
                self.event.extend_from_slice(value);
                self.has_event = true;
            }
            // `id` and `retry` matter to browsers reconnecting, not to a proxy translating.
            _ => {}
        }
        Ok(())
    }

    fn dispatch<F: FnMut(Option<&[u8]>, &[u8])>(&mut self, on_event: &mut F) {
        if self.has_data {
            on_event(self.has_event.then_some(self.event.as_slice()), &self.data);
        }
        self.event.clear();
        self.has_event = false;
        self.data.clear();
        self.has_data = false;
    }
}

/// `bytes` as text, invalid UTF-8 replaced by U+FFFD. Checks with `str::from_utf8` first: its
/// ASCII fast path is several times cheaper than the lossy decoder, and provider events are
/// almost always valid.
pub fn utf8_lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// `json` with the whitespace outside strings removed, so it fits one `data:` line. Encoders
/// write JSON they built themselves (compact) plus values carried verbatim from a client or
/// provider (unknown blocks, citations), which may be pretty-printed: a `\r` or a blank line
/// inside `data` would end the event early for a client's SSE parser.
pub fn compact_json(json: &str) -> std::borrow::Cow<'_, str> {
    if !json.bytes().any(|b| matches!(b, b'\n' | b'\r' | b'\t')) {
        return std::borrow::Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
            in_string = c == '"';
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Appends one event in wire form (`event:` only when given; multi-line data split into lines).
pub fn write_event(out: &mut Vec<u8>, event: Option<&str>, data: &str) {
    if let Some(event) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(event.as_bytes());
        out.push(b'\n');
    }
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut framer = SseFramer::default();
        let mut out = Vec::new();
        for c in chunks {
            framer.push(c, &mut out).unwrap();
        }
        framer.finish(&mut out);
        out
    }

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent { event: event.map(str::to_owned), data: data.to_owned() }
    }

    #[test]
    fn all_three_line_endings() {
        for sep in ["\n", "\r\n", "\r"] {
            let text = format!("event: a{sep}data: 1{sep}{sep}: comment{sep}data:2{sep}data: 3{sep}{sep}");
            assert_eq!(frame_all(&[text.as_bytes()]), vec![ev(Some("a"), "1"), ev(None, "2\n3")], "sep {sep:?}");
        }
    }

    #[test]
    fn crlf_split_between_chunks_is_one_line_end() {
        assert_eq!(frame_all(&[b"data: x\r", b"\n\r", b"\ndata: y\r\n\r\n"]), vec![ev(None, "x"), ev(None, "y")]);
    }

    #[test]
    fn empty_chunk_between_cr_and_lf_keeps_them_one_line_end() {
        assert_eq!(frame_all(&[b"data: x\r", b"", b"\ndata: y\r\n\r\n"]), vec![ev(None, "x\ny")]);
    }

    #[test]
    fn last_event_without_blank_line_is_flushed() {
        assert_eq!(frame_all(&[b"data: [DONE]"]), vec![ev(None, "[DONE]")]);
    }

    #[test]
    fn oversized_event_is_dropped_and_framing_recovers() {
        let mut framer = SseFramer::new(16);
        let mut out = Vec::new();
        assert!(framer.push(b"data: 0123456789abcdefghij", &mut out).is_err());
        assert!(framer.push(b"klmnop\n\ndata: ok\n\n", &mut out).is_ok());
        assert_eq!(out, vec![ev(None, "ok")]);
    }

    #[test]
    fn invalid_utf8_does_not_panic() {
        let out = frame_all(&[b"data: \xff\xfe\n\n"]);
        assert_eq!(out.len(), 1);
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_events(
            events in proptest::collection::vec(("[a-z_]{0,8}", "[ -~]{0,40}"), 0..8),
            sep in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let mut text = String::new();
            for (name, data) in &events {
                if !name.is_empty() { text.push_str(&format!("event: {name}{sep}")); }
                text.push_str(&format!("data: {data}{sep}{sep}"));
            }
            let bytes = text.as_bytes();
            let whole = frame_all(&[bytes]);
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut start = 0;
            for p in points { chunks.push(&bytes[start..p]); start = p; }
            chunks.push(&bytes[start..]);
            prop_assert_eq!(frame_all(&chunks), whole.clone());
            prop_assert_eq!(whole.len(), events.len());
        }

        #[test]
        fn arbitrary_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
            let mut framer = SseFramer::new(128);
            let mut out = Vec::new();
            for c in &chunks { let _ = framer.push(c, &mut out); }
            framer.finish(&mut out);
        }
    }

    #[test]
    fn compact_json_keeps_strings_and_drops_layout() {
        let pretty = "{\n  \"a\": [1, 2],\r\n\t\"b\": \"x \\\" \\n y\"\n}";
        let compact = compact_json(pretty);
        assert_eq!(compact, "{\"a\":[1,2],\"b\":\"x \\\" \\n y\"}");
        let value: serde_json::Value = serde_json::from_str(&compact).unwrap();
        assert_eq!(value, serde_json::from_str::<serde_json::Value>(pretty).unwrap());
        assert!(matches!(compact_json(r#"{"a":"b c"}"#), std::borrow::Cow::Borrowed(_)));
    }
}
