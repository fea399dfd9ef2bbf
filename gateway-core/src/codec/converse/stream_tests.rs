use super::*;
use crate::aws::eventstream::{encode_message, HeaderValue};
use crate::conversation::{FinishReason, Usage};
use serde_json::{json, Value};

fn event(kind: &str, payload: Value) -> Vec<u8> {
    encode_message(
        &[
            (":event-type", HeaderValue::String(kind.into())),
            (":content-type", HeaderValue::String("application/json".into())),
            (":message-type", HeaderValue::String("event".into())),
        ],
        payload.to_string().as_bytes(),
    )
}

fn exception(kind: &str, message: &str) -> Vec<u8> {
    encode_message(
        &[
            (":exception-type", HeaderValue::String(kind.into())),
            (":content-type", HeaderValue::String("application/json".into())),
            (":message-type", HeaderValue::String("exception".into())),
        ],
        json!({"message": message}).to_string().as_bytes(),
    )
}

fn run(family: Family, stream: &[u8]) -> Vec<Event> {
    let mut d = StreamDecoder::new(family, "model-x".into());
    let mut out = Vec::new();
    d.push(stream, true, &mut out);
    out
}

fn start() -> Event {
    Event::Start { id: None, model: Some("model-x".into()) }
}

fn delta(index: u32, delta: Delta) -> Event {
    Event::Delta { index, delta }
}

fn full_stream() -> Vec<u8> {
    [
        event("messageStart", json!({"role": "assistant"})),
        event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Let me "}}})),
        event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "think."}}})),
        event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "EqQB=="}}})),
        event("contentBlockStop", json!({"contentBlockIndex": 0})),
        event("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"reasoningContent": {"redactedContent": "AAEC"}}})),
        event("contentBlockStop", json!({"contentBlockIndex": 1})),
        event("contentBlockDelta", json!({"contentBlockIndex": 2, "delta": {"text": ""}})),
        event("contentBlockDelta", json!({"contentBlockIndex": 2, "delta": {"text": "Checking."}})),
        event("contentBlockStop", json!({"contentBlockIndex": 2})),
        event("contentBlockStart", json!({"contentBlockIndex": 3, "start": {"toolUse": {"toolUseId": "tooluse_a", "name": "get"}}})),
        event("contentBlockDelta", json!({"contentBlockIndex": 3, "delta": {"toolUse": {"input": "{\"city\": "}}})),
        event("contentBlockDelta", json!({"contentBlockIndex": 3, "delta": {"toolUse": {"input": "\"Paris\"}"}}})),
        event("contentBlockStop", json!({"contentBlockIndex": 3})),
        event("contentBlockDelta", json!({"contentBlockIndex": 4, "delta": {"text": ""}})),
        event("contentBlockStop", json!({"contentBlockIndex": 4})),
        event("messageStop", json!({"stopReason": "tool_use"})),
        event("metadata", json!({"usage": {"inputTokens": 10, "outputTokens": 30, "totalTokens": 47, "cacheReadInputTokens": 4, "cacheWriteInputTokens": 3}, "metrics": {"latencyMs": 1}})),
    ]
    .concat()
}

#[test]
fn every_block_kind_with_synthesised_starts_and_usage() {
    let events = run(Family::Claude, &full_stream());
    let sig = Opaque { family: Family::Claude, data: "EqQB==".into() };
    let redacted = Opaque { family: Family::Claude, data: "AAEC".into() };
    assert_eq!(
        events,
        vec![
            start(),
            Event::BlockStart { index: 0, block: BlockStart::Reasoning },
            delta(0, Delta::Reasoning("Let me ".into())),
            delta(0, Delta::Reasoning("think.".into())),
            delta(0, Delta::Signature(sig)),
            Event::BlockStop { index: 0 },
            Event::BlockStart { index: 1, block: BlockStart::RedactedReasoning { data: redacted } },
            Event::BlockStop { index: 1 },
            Event::BlockStart { index: 2, block: BlockStart::Text },
            delta(2, Delta::Text("Checking.".into())),
            Event::BlockStop { index: 2 },
            Event::BlockStart {
                index: 3,
                block: BlockStart::ToolCall { id: "tooluse_a".into(), name: "get".into(), kind: ToolKind::Function }
            },
            delta(3, Delta::ToolArguments("{\"city\": ".into())),
            delta(3, Delta::ToolArguments("\"Paris\"}".into())),
            Event::BlockStop { index: 3 },
            Event::Finish(FinishReason::ToolUse),
            Event::Usage(Usage {
                input: Some(17),
                output: Some(30),
                cache_read: Some(4),
                cache_write: Some(3),
                reasoning: None
            }),
            Event::End,
        ]
    );
    // Another model's signatures are Converse's.
    let events = run(Family::Converse, &full_stream());
    assert!(events.contains(&delta(0, Delta::Signature(Opaque { family: Family::Converse, data: "EqQB==".into() }))));
}

#[test]
fn open_blocks_are_stopped_before_finish_and_stop_sequences_kept() {
    let stream = [
        event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "a"}})),
        event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "r"}}})),
        event(
            "messageStop",
            json!({"stopReason": "stop_sequence", "additionalModelResponseFields": {"stop_sequence": "END"}}),
        ),
    ]
    .concat();
    // No messageStart, no metadata: Start is synthesised, the answer is complete after messageStop.
    assert_eq!(
        run(Family::Claude, &stream),
        vec![
            start(),
            Event::BlockStart { index: 0, block: BlockStart::Text },
            delta(0, Delta::Text("a".into())),
            Event::BlockStop { index: 0 },
            Event::BlockStart { index: 1, block: BlockStart::Reasoning },
            delta(1, Delta::Reasoning("r".into())),
            Event::BlockStop { index: 1 },
            Event::Finish(FinishReason::StopSequence(Some("END".into()))),
            Event::End,
        ]
    );
}

#[test]
fn exceptions_become_errors_with_their_status_and_nothing_follows() {
    for (kind, status) in [
        ("throttlingException", 429),
        ("validationException", 400),
        ("modelStreamErrorException", 500),
        ("serviceUnavailableException", 503),
    ] {
        let stream = [
            event("messageStart", json!({"role": "assistant"})),
            exception(kind, "went wrong"),
            event("messageStop", json!({"stopReason": "end_turn"})),
        ]
        .concat();
        assert_eq!(
            run(Family::Claude, &stream),
            vec![
                start(),
                Event::Error(ProviderError { status, code: Some(kind.into()), message: "went wrong".into() })
            ],
            "{kind}"
        );
    }
    let err = encode_message(
        &[
            (":message-type", HeaderValue::String("error".into())),
            (":error-code", HeaderValue::String("InternalFailure".into())),
            (":error-message", HeaderValue::String("boom".into())),
        ],
        b"",
    );
    assert_eq!(
        run(Family::Claude, &err),
        vec![Event::Error(ProviderError { status: 500, code: Some("InternalFailure".into()), message: "boom".into() })]
    );
}

#[test]
fn corruption_truncation_and_bad_json_end_with_one_error() {
    let code = |events: &[Event]| match events.last() {
        Some(Event::Error(e)) => (e.status, e.code.clone()),
        other => panic!("{other:?}"),
    };
    let mut stream = full_stream();
    let n = stream.len();
    stream[n - 1] ^= 1;
    let events = run(Family::Claude, &stream);
    assert_eq!(code(&events), (502, Some("invalid_event_stream".into())));
    assert!(!events.contains(&Event::End));
    let stream = full_stream();
    assert_eq!(code(&run(Family::Claude, &stream[..stream.len() - 5])), (502, Some("invalid_event_stream".into())));
    let first = event("messageStart", json!({}));
    assert_eq!(
        run(Family::Claude, &first),
        vec![
            start(),
            Event::Error(ProviderError {
                status: 502,
                code: Some("incomplete_stream".into()),
                message: "The provider's stream ended before the answer was complete.".into(),
            })
        ]
    );
    assert_eq!(code(&run(Family::Claude, b"")), (502, Some("incomplete_stream".into())));
    // Unknown event types are skipped unread; known ones must parse.
    let unknown = encode_message(&[(":event-type", HeaderValue::String("initial-response".into()))], b"");
    let stream = [unknown, full_stream()].concat();
    assert_eq!(run(Family::Claude, &stream), run(Family::Claude, &full_stream()));
    let bad = encode_message(&[(":event-type", HeaderValue::String("contentBlockDelta".into()))], b"{not json");
    assert_eq!(code(&run(Family::Claude, &bad)), (502, Some("invalid_event_stream".into())));
    // Input after the end is ignored.
    let mut d = StreamDecoder::new(Family::Claude, "m".into());
    let mut out = Vec::new();
    d.push(&full_stream(), false, &mut out);
    assert_eq!(out.last(), Some(&Event::End));
    out.clear();
    d.push(&full_stream(), true, &mut out);
    assert!(out.is_empty());
}

#[test]
fn tool_arguments_without_a_started_call_are_skipped_and_too_many_open_blocks_fail() {
    let stream = [
        event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": "{}"}}})),
        event("messageStop", json!({"stopReason": "end_turn"})),
    ]
    .concat();
    assert_eq!(run(Family::Claude, &stream), vec![start(), Event::Finish(FinishReason::EndTurn), Event::End]);
    let many: Vec<u8> = (0..=MAX_OPEN_BLOCKS as u64)
        .flat_map(|i| event("contentBlockDelta", json!({"contentBlockIndex": i, "delta": {"text": "x"}})))
        .collect();
    let events = run(Family::Claude, &many);
    assert!(matches!(events.last(), Some(Event::Error(e)) if e.status == 502));
}

#[test]
fn events_do_not_depend_on_chunk_boundaries() {
    let stream = full_stream();
    let whole = run(Family::Claude, &stream);
    for step in [1, 2, 3, 7, 64, 1000] {
        let mut d = StreamDecoder::new(Family::Claude, "model-x".into());
        let mut got = Vec::new();
        let pieces: Vec<&[u8]> = stream.chunks(step).collect();
        for (k, piece) in pieces.iter().enumerate() {
            d.push(piece, k + 1 == pieces.len(), &mut got);
        }
        assert_eq!(got, whole, "step {step}");
    }
}
