//! The protobuf messages of `aigateway.v1.ConfigService` (`Watch`, `ReportUsage`)
//! (`control-plane/proto/config.proto`), encoded and decoded by hand.
//!
//! Two fields each do not justify a protobuf runtime in the Wasm module. The decoder takes bytes
//! from the network, so it is total: every malformed input is an error, never a panic.

/// `WatchRequest{node_id = 1 (string), known_version = 2 (uint64), heartbeat_secs = 3 (uint32)}`.
pub fn encode_watch_request(node_id: &str, known_version: u64, heartbeat_secs: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(node_id.len() + 16);
    if !node_id.is_empty() {
        put_varint(&mut out, (1 << 3) | WIRE_LEN);
        put_varint(&mut out, node_id.len() as u64);
        out.extend_from_slice(node_id.as_bytes());
    }
    // proto3 omits default values; the server reads a missing field as 0.
    if known_version != 0 {
        put_varint(&mut out, 2 << 3);
        put_varint(&mut out, known_version);
    }
    if heartbeat_secs != 0 {
        put_varint(&mut out, 3 << 3);
        put_varint(&mut out, u64::from(heartbeat_secs));
    }
    out
}

/// `NodeStatus{node_id = 1 (string), version = 2 (uint64), rejected_json = 3 (bytes)}`: what a
/// filter did with a snapshot, for `ReportStatus`.
pub fn encode_node_status(node_id: &str, version: u64, rejected_json: &[u8]) -> Vec<u8> {
    let mut out = encode_watch_request(node_id, version, 0);
    if !rejected_json.is_empty() {
        put_varint(&mut out, (3 << 3) | WIRE_LEN);
        put_varint(&mut out, rejected_json.len() as u64);
        out.extend_from_slice(rejected_json);
    }
    out
}

/// A decoded `SnapshotMessage`; borrows the JSON from the received buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotMessage<'a> {
    pub version: u64,
    pub snapshot_json: &'a [u8],
}

impl SnapshotMessage<'_> {
    /// A heartbeat: the control plane's current version without a payload. Never a snapshot to
    /// parse (an empty document is not valid JSON anyway).
    pub fn is_heartbeat(&self) -> bool {
        self.snapshot_json.is_empty()
    }
}

/// Why a received frame could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated varint")]
    TruncatedVarint,
    #[error("varint longer than 10 bytes")]
    VarintTooLong,
    #[error("length-delimited field runs past the end of the message")]
    TruncatedField,
    #[error("unsupported wire type {0}")]
    WireType(u8),
    #[error("field {0} has the wrong wire type")]
    FieldType(u64),
}

const WIRE_VARINT: u64 = 0;
const WIRE_I64: u64 = 1;
const WIRE_LEN: u64 = 2;
const WIRE_I32: u64 = 5;

/// `SnapshotMessage{version = 1 (uint64), snapshot_json = 2 (bytes)}`. Unknown fields are skipped
/// (forward compatibility); the last occurrence of a known field wins, as protobuf specifies.
pub fn decode_snapshot_message(mut buf: &[u8]) -> Result<SnapshotMessage<'_>, DecodeError> {
    let mut msg = SnapshotMessage { version: 0, snapshot_json: &[] };
    while !buf.is_empty() {
        let key = take_varint(&mut buf)?;
        let field = key >> 3;
        let wire = key & 7;
        match (field, wire) {
            (1, WIRE_VARINT) => msg.version = take_varint(&mut buf)?,
            (2, WIRE_LEN) => msg.snapshot_json = take_len(&mut buf)?,
            (1, _) | (2, _) => return Err(DecodeError::FieldType(field)),
            (_, WIRE_VARINT) => {
                take_varint(&mut buf)?;
            }
            (_, WIRE_LEN) => {
                take_len(&mut buf)?;
            }
            (_, WIRE_I64) => skip(&mut buf, 8)?,
            (_, WIRE_I32) => skip(&mut buf, 4)?,
            // Groups (3, 4) are deprecated and never produced by prost for these messages.
            (_, w) => return Err(DecodeError::WireType(w as u8)),
        }
    }
    Ok(msg)
}

/// `SnapshotMessage.replicas` (field 3, uint32): how many Envoys watch the control plane (ADR
/// 0008). `None` when absent, zero, out of range or undecodable: then the whole limit applies.
pub fn snapshot_message_replicas(mut buf: &[u8]) -> Option<u32> {
    let mut replicas = None;
    while !buf.is_empty() {
        let key = take_varint(&mut buf).ok()?;
        match (key >> 3, key & 7) {
            (3, WIRE_VARINT) => replicas = u32::try_from(take_varint(&mut buf).ok()?).ok(),
            (_, WIRE_VARINT) => {
                take_varint(&mut buf).ok()?;
            }
            (_, WIRE_LEN) => {
                take_len(&mut buf).ok()?;
            }
            (_, WIRE_I64) => skip(&mut buf, 8).ok()?,
            (_, WIRE_I32) => skip(&mut buf, 4).ok()?,
            _ => return None,
        }
    }
    replicas.filter(|&n| n > 0)
}

/// `UsageReport{bytes batch_json = 1}`: the one-field message `ReportUsage` takes.
pub fn encode_bytes_message(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 11);
    if !payload.is_empty() {
        put_varint(&mut out, (1 << 3) | WIRE_LEN);
        put_varint(&mut out, payload.len() as u64);
        out.extend_from_slice(payload);
    }
    out
}

/// `UsageAck{bytes ack_json = 1}`: field 1, empty when absent. Unknown fields are skipped; the
/// last occurrence of field 1 wins.
pub fn decode_bytes_message(mut buf: &[u8]) -> Result<&[u8], DecodeError> {
    let mut payload: &[u8] = &[];
    while !buf.is_empty() {
        let key = take_varint(&mut buf)?;
        match (key >> 3, key & 7) {
            (1, WIRE_LEN) => payload = take_len(&mut buf)?,
            (1, _) => return Err(DecodeError::FieldType(1)),
            (_, WIRE_VARINT) => {
                take_varint(&mut buf)?;
            }
            (_, WIRE_LEN) => {
                take_len(&mut buf)?;
            }
            (_, WIRE_I64) => skip(&mut buf, 8)?,
            (_, WIRE_I32) => skip(&mut buf, 4)?,
            (_, w) => return Err(DecodeError::WireType(w as u8)),
        }
    }
    Ok(payload)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_varint(buf: &mut &[u8]) -> Result<u64, DecodeError> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let Some((&byte, rest)) = buf.split_first() else {
            return Err(DecodeError::TruncatedVarint);
        };
        *buf = rest;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::VarintTooLong)
}

fn take_len<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], DecodeError> {
    let len = take_varint(buf)?;
    let len = usize::try_from(len).map_err(|_| DecodeError::TruncatedField)?;
    if len > buf.len() {
        return Err(DecodeError::TruncatedField);
    }
    let (field, rest) = buf.split_at(len);
    *buf = rest;
    Ok(field)
}

fn skip(buf: &mut &[u8], n: usize) -> Result<(), DecodeError> {
    if n > buf.len() {
        return Err(DecodeError::TruncatedField);
    }
    *buf = buf.split_at(n).1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_status_matches_protobuf_encoding() {
        // prost's bytes for NodeStatus{node_id: "n1", version: 300, rejected_json: b"[]"}.
        assert_eq!(encode_node_status("n1", 300, b"[]"), [0x0a, 2, b'n', b'1', 0x10, 0xac, 0x02, 0x1a, 2, b'[', b']']);
        assert_eq!(encode_node_status("", 0, b""), Vec::<u8>::new());
    }

    #[test]
    fn watch_request_matches_protobuf_encoding() {
        // Bytes prost produces for WatchRequest{node_id: "n1", known_version: 300}.
        assert_eq!(encode_watch_request("n1", 300, 0), vec![0x0a, 2, b'n', b'1', 0x10, 0xac, 0x02]);
        assert_eq!(encode_watch_request("", 0, 0), Vec::<u8>::new());
        assert_eq!(encode_watch_request("", u64::MAX, 0).len(), 1 + 10);
        // ... heartbeat_secs: 10 (field 3, varint).
        assert_eq!(encode_watch_request("n1", 300, 10), vec![0x0a, 2, b'n', b'1', 0x10, 0xac, 0x02, 0x18, 10]);
        assert_eq!(encode_watch_request("", 0, 3600), vec![0x18, 0x90, 0x1c]);
    }

    #[test]
    fn snapshot_message_decodes_and_skips_unknown_fields() {
        let mut buf = vec![0x08, 0xac, 0x02, 0x12, 3, b'{', b'}', b'\n'];
        // Unknown fields of every skippable wire type: 3 varint, 4 fixed64, 5 bytes, 6 fixed32.
        buf.extend_from_slice(&[0x18, 0x01, 0x21, 0, 0, 0, 0, 0, 0, 0, 0, 0x2a, 1, b'x', 0x35, 0, 0, 0, 0]);
        let m = decode_snapshot_message(&buf).unwrap();
        assert_eq!(m.version, 300);
        assert_eq!(m.snapshot_json, b"{}\n");
        assert_eq!(decode_snapshot_message(&[]).unwrap(), SnapshotMessage { version: 0, snapshot_json: &[] });
    }

    #[test]
    fn replicas_come_from_field_3_of_any_message() {
        // SnapshotMessage{version: 7, snapshot_json: "{}", replicas: 2}, then a heartbeat with 3.
        assert_eq!(snapshot_message_replicas(&[0x08, 7, 0x12, 2, b'{', b'}', 0x18, 2]), Some(2));
        assert_eq!(snapshot_message_replicas(&[0x08, 7, 0x18, 3]), Some(3));
        // Absent or 0: unknown; garbage never panics.
        assert_eq!(snapshot_message_replicas(&[0x08, 7]), None);
        assert_eq!(snapshot_message_replicas(&[0x18, 0]), None);
        assert_eq!(snapshot_message_replicas(&[0x18, 0xff, 0xff, 0xff, 0xff, 0x7f]), None);
        assert_eq!(snapshot_message_replicas(&[0x18]), None);
        assert_eq!(snapshot_message_replicas(&[0x12, 9, 1]), None);
        // The snapshot decoder still skips the new field.
        assert!(decode_snapshot_message(&[0x08, 7, 0x18, 3]).unwrap().is_heartbeat());
    }

    #[test]
    fn heartbeat_is_a_version_without_payload() {
        // What prost sends for SnapshotMessage{version: 7, snapshot_json: empty}: proto3 omits
        // the empty bytes field.
        let beat = decode_snapshot_message(&[0x08, 7]).unwrap();
        assert_eq!(beat, SnapshotMessage { version: 7, snapshot_json: &[] });
        assert!(beat.is_heartbeat());
        // An explicitly empty field is a heartbeat too.
        assert!(decode_snapshot_message(&[0x08, 7, 0x12, 0]).unwrap().is_heartbeat());
        // Before the first snapshot the version is 0 (field omitted): still a heartbeat.
        assert!(decode_snapshot_message(&[]).unwrap().is_heartbeat());
        assert!(!decode_snapshot_message(&[0x08, 7, 0x12, 2, b'{', b'}']).unwrap().is_heartbeat());
    }

    #[test]
    fn malformed_frames_are_errors() {
        assert_eq!(decode_snapshot_message(&[0x08]), Err(DecodeError::TruncatedVarint));
        assert_eq!(decode_snapshot_message(&[0x08, 0xff]), Err(DecodeError::TruncatedVarint));
        assert_eq!(
            decode_snapshot_message(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(DecodeError::VarintTooLong)
        );
        assert_eq!(decode_snapshot_message(&[0x12, 5, b'a']), Err(DecodeError::TruncatedField));
        assert_eq!(
            decode_snapshot_message(&[0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(DecodeError::TruncatedField)
        );
        assert_eq!(decode_snapshot_message(&[0x0a, 0]), Err(DecodeError::FieldType(1)));
        assert_eq!(decode_snapshot_message(&[0x10, 1]), Err(DecodeError::FieldType(2)));
        assert_eq!(decode_snapshot_message(&[0x1b]), Err(DecodeError::WireType(3)));
        assert_eq!(decode_snapshot_message(&[0x21, 0]), Err(DecodeError::TruncatedField));
    }

    #[test]
    fn usage_messages_round_trip_and_garbage_is_an_error_not_a_panic() {
        // prost's bytes for UsageReport{batch_json: b"{}"}.
        assert_eq!(encode_bytes_message(b"{}"), vec![0x0a, 2, b'{', b'}']);
        assert_eq!(encode_bytes_message(b""), Vec::<u8>::new());
        let big = vec![b'x'; 300];
        let encoded = encode_bytes_message(&big);
        assert_eq!(&encoded[..3], &[0x0a, 0xac, 0x02]);
        assert_eq!(decode_bytes_message(&encoded).unwrap(), big.as_slice());
        assert_eq!(decode_bytes_message(&[]).unwrap(), b"");
        // Unknown fields skipped.
        assert_eq!(decode_bytes_message(&[0x10, 1, 0x0a, 1, b'a', 0x1a, 0]).unwrap(), b"a");
        assert_eq!(decode_bytes_message(&[0x08, 1]), Err(DecodeError::FieldType(1)));
        assert_eq!(decode_bytes_message(&[0x0a, 5, b'a']), Err(DecodeError::TruncatedField));
        assert_eq!(decode_bytes_message(&[0x0a]), Err(DecodeError::TruncatedVarint));
        assert_eq!(decode_bytes_message(&[0x13]), Err(DecodeError::WireType(3)));
        for cut in 0..encoded.len() {
            let _ = decode_bytes_message(&encoded[..cut]);
        }
        let mut state: u64 = 0x0123_4567_89ab_cdef;
        for len in 0..3000usize {
            let mut buf = Vec::with_capacity(len % 64);
            for _ in 0..(len % 64) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                buf.push(state as u8);
            }
            let _ = decode_bytes_message(&buf);
        }
    }

    #[test]
    fn round_trip_and_garbage_never_panic() {
        // Deterministic pseudo-random garbage: decoding must return, whatever the bytes.
        let mut state: u64 = 0x1234_5678_9abc_def0;
        for len in 0..2000usize {
            let mut buf = Vec::with_capacity(len % 64);
            for _ in 0..(len % 64) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                buf.push(state as u8);
            }
            let _ = decode_snapshot_message(&buf);
        }
        let mut buf = Vec::new();
        put_varint(&mut buf, 1 << 3);
        put_varint(&mut buf, u64::MAX);
        put_varint(&mut buf, (2 << 3) | WIRE_LEN);
        put_varint(&mut buf, 2);
        buf.extend_from_slice(b"ok");
        assert_eq!(decode_snapshot_message(&buf).unwrap(), SnapshotMessage { version: u64::MAX, snapshot_json: b"ok" });
    }
}
