//! The Responses API client codec: any body decodes to a request or a 400; a decoded request's
//! parts, as an answer, encode to valid JSON and to a well-formed SSE stream whose
//! `response.completed` equals that JSON; and any sequence of events, in any order (read from
//! the same bytes), encodes without panicking into SSE frames whose data is JSON.
#![no_main]

use gateway_core::codec::responses::{decode_request, ResponsesEncoder};
use gateway_core::conversation::bridge::ClientEncoder;
use gateway_core::conversation::{
    BlockStart, Delta, Event, Family, FinishReason, Json, Opaque, Part, ProviderError, Response, ToolKind, Usage,
};
use libfuzzer_sys::fuzz_target;

/// Events a decoder streaming `parts` would produce.
fn events_for(parts: &[Part]) -> Vec<Event> {
    let mut events = vec![Event::Start { id: None, model: None }];
    for (i, part) in parts.iter().enumerate() {
        let index = u32::try_from(i).unwrap_or(u32::MAX);
        let (block, deltas) = match part {
            Part::Text { text, .. } => (BlockStart::Text, vec![Delta::Text(text.clone())]),
            Part::ToolCall { id, name, arguments, kind, .. } => (
                BlockStart::ToolCall { id: id.clone(), name: name.clone(), kind: *kind },
                vec![Delta::ToolArguments(arguments.clone())],
            ),
            Part::Reasoning { text, signature, .. } => {
                let mut deltas = vec![Delta::Reasoning(text.clone())];
                deltas.extend(signature.clone().map(Delta::Signature));
                (BlockStart::Reasoning, deltas)
            }
            Part::RedactedReasoning { data } => (BlockStart::RedactedReasoning { data: data.clone() }, vec![]),
            Part::Unknown { family, raw } => (BlockStart::Unknown { family: *family, raw: raw.clone() }, vec![]),
            _ => continue,
        };
        events.push(Event::BlockStart { index, block });
        events.extend(deltas.into_iter().map(|delta| Event::Delta { index, delta }));
        events.push(Event::BlockStop { index });
    }
    events.extend([Event::Finish(FinishReason::EndTurn), Event::Usage(Usage::default()), Event::End]);
    events
}

/// Arbitrary events, two bytes each: an operation and an argument.
fn arbitrary_events(bytes: &[u8]) -> Vec<Event> {
    // A short text, cloned into many events: the whole input would make this target quadratic.
    let text = String::from_utf8_lossy(bytes.get(..24).unwrap_or(bytes)).into_owned();
    let raw = Json::from_text(r#"{"type":"web_search_call","id":"ws"}"#);
    bytes
        .chunks(2)
        .take(2048)
        .filter_map(|pair| {
            let (op, arg) = (pair.first().copied().unwrap_or(0), pair.get(1).copied().unwrap_or(0));
            let index = u32::from(arg % 6);
            let n = u64::from(arg);
            let family = if arg & 1 == 0 { Family::Claude } else { Family::OpenAi };
            let kind = if arg & 2 == 0 { ToolKind::Function } else { ToolKind::Custom };
            Some(match op % 16 {
                0 => Event::Start { id: Some(text.clone()), model: None },
                1 => Event::BlockStart { index, block: BlockStart::Text },
                2 => Event::BlockStart { index, block: BlockStart::Reasoning },
                3 => Event::BlockStart {
                    index,
                    block: BlockStart::ToolCall { id: text.clone(), name: "f".into(), kind },
                },
                4 => Event::BlockStart { index, block: BlockStart::Unknown { family, raw: raw.clone()? } },
                5 => Event::BlockStart {
                    index,
                    block: BlockStart::RedactedReasoning { data: Opaque { family, data: text.clone() } },
                },
                6 => Event::Delta { index, delta: Delta::Text(text.clone()) },
                7 => Event::Delta { index, delta: Delta::Reasoning(text.clone()) },
                8 => Event::Delta { index, delta: Delta::ToolArguments(text.clone()) },
                9 => Event::Delta { index, delta: Delta::Signature(Opaque { family, data: text.clone() }) },
                10 => Event::Delta { index, delta: Delta::Citation(raw.clone()?) },
                11 => Event::BlockStop { index },
                12 => Event::Usage(Usage {
                    input: Some(n),
                    output: Some(n / 2),
                    cache_read: Some(n / 3),
                    cache_write: None,
                    reasoning: None,
                }),
                13 => Event::Finish(if arg & 1 == 0 {
                    FinishReason::MaxTokens
                } else {
                    FinishReason::Other(text.clone())
                }),
                14 => Event::End,
                _ => Event::Error(ProviderError {
                    status: u16::from(arg) * 3,
                    code: Some(text.clone()),
                    message: text.clone(),
                }),
            })
        })
        .collect()
}

/// The data of every SSE frame, checking the framing and that each frame's data is JSON.
fn frames(out: &[u8]) -> Vec<serde_json::Value> {
    let text = std::str::from_utf8(out).expect("SSE output is UTF-8");
    text.split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|frame| {
            let data = frame.lines().find_map(|l| l.strip_prefix("data: ")).expect("every frame has data");
            serde_json::from_str::<serde_json::Value>(data).expect("every frame's data is JSON")
        })
        .collect()
}

fuzz_target!(|body: &[u8]| {
    let mut out = Vec::new();
    match decode_request(body) {
        Ok((request, model)) => {
            let parts: Vec<Part> = request.messages.iter().flat_map(|m| m.parts.iter().cloned()).collect();
            let response =
                Response { id: None, model: None, parts: parts.clone(), finish: None, usage: Usage::default() };
            let mut encoder = ResponsesEncoder::new(model, "resp_fuzz", 1);
            let json: serde_json::Value =
                serde_json::from_slice(&encoder.encode_response(&response)).expect("the answer is JSON");
            let events = events_for(&parts);
            for batch in events.chunks(body.len() % 5 + 1) {
                encoder.encode_events(batch, &mut out);
            }
            assert!(encoder.finished());
            let frames = frames(&out);
            assert_eq!(frames.last().map(|f| &f["response"]), Some(&json), "the stream completes as the JSON answer");
        }
        Err(error) => {
            assert_eq!(error.status(), 400);
            let mut encoder = ResponsesEncoder::new("m", "resp_fuzz", 1);
            encoder.encode_events(&arbitrary_events(body), &mut out);
            frames(&out);
        }
    }
});
