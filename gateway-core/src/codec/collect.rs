//! Folds a decoder's [`Event`]s back into one [`Response`]: provider decoders read a complete
//! JSON answer with the same state machine as their stream (one code path, so a buffered answer
//! and a streamed one cannot drift apart) and collect the events here.

use crate::conversation::{BlockStart, Delta, Event, Part, ProviderError, Response, ToolKind, Usage};

/// A [`Response`] being assembled from events.
#[derive(Debug, Default)]
pub struct Collector {
    id: Option<String>,
    model: Option<String>,
    parts: Vec<Part>,
    /// (block index, position in `parts`) of every block started so far.
    blocks: Vec<(u32, usize)>,
    finish: Option<crate::conversation::FinishReason>,
    usage: Usage,
    error: Option<ProviderError>,
}

impl Collector {
    /// Takes one event.
    pub fn push(&mut self, event: &Event) {
        match event {
            Event::Start { id, model } => {
                self.id = id.clone();
                self.model = model.clone();
            }
            Event::BlockStart { index, block } => {
                let part = match block {
                    BlockStart::Text => Part::text(""),
                    BlockStart::ToolCall { id, name, kind } => Part::ToolCall {
                        id: id.clone(),
                        name: name.clone(),
                        arguments: String::new(),
                        kind: *kind,
                        cache: None,
                    },
                    BlockStart::Reasoning => Part::Reasoning { text: String::new(), signature: None, cache: None },
                    BlockStart::RedactedReasoning { data } => Part::RedactedReasoning { data: data.clone() },
                    BlockStart::Unknown { family, raw } => Part::Unknown { family: *family, raw: raw.clone() },
                };
                self.blocks.push((*index, self.parts.len()));
                self.parts.push(part);
            }
            Event::Delta { index, delta } => {
                let Some(&(_, position)) = self.blocks.iter().rev().find(|(i, _)| i == index) else { return };
                let Some(part) = self.parts.get_mut(position) else { return };
                match (part, delta) {
                    (Part::Text { text, .. }, Delta::Text(t)) => text.push_str(t),
                    (Part::ToolCall { arguments, .. }, Delta::ToolArguments(a)) => arguments.push_str(a),
                    (Part::Reasoning { text, .. }, Delta::Reasoning(t)) => text.push_str(t),
                    (Part::Reasoning { signature, .. }, Delta::Signature(s)) => *signature = Some(s.clone()),
                    (Part::Text { citations, .. }, Delta::Citation(c)) => *citations = Some(c.clone()),
                    _ => {}
                }
            }
            Event::Usage(usage) => self.usage = self.usage.merge(*usage),
            Event::Finish(reason) => self.finish = Some(reason.clone()),
            Event::Error(error) => self.error = Some(error.clone()),
            Event::BlockStop { .. } | Event::End => {}
        }
    }

    /// The response, or the error the events ended with. A function call that streamed no
    /// argument text called with no arguments: `{}`, so the JSON-text invariant holds.
    pub fn finish(mut self) -> Result<Response, ProviderError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        for part in &mut self.parts {
            if let Part::ToolCall { arguments, kind: ToolKind::Function, .. } = part {
                if arguments.trim().is_empty() {
                    arguments.push_str("{}");
                }
            }
        }
        Ok(Response { id: self.id, model: self.model, parts: self.parts, finish: self.finish, usage: self.usage })
    }
}

/// Collects `events` into a response (or the error they ended with).
pub fn collect(events: &[Event]) -> Result<Response, ProviderError> {
    let mut collector = Collector::default();
    for event in events {
        collector.push(event);
    }
    collector.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::{Family, FinishReason, Opaque};

    #[test]
    fn blocks_deltas_usage_and_errors_fold_into_a_response() {
        let sig = Opaque { family: Family::Gemini, data: "s".into() };
        let events = vec![
            Event::Start { id: Some("r".into()), model: Some("m".into()) },
            Event::BlockStart { index: 0, block: BlockStart::Reasoning },
            Event::Delta { index: 0, delta: Delta::Reasoning("a".into()) },
            Event::Delta { index: 0, delta: Delta::Signature(sig.clone()) },
            Event::BlockStop { index: 0 },
            Event::BlockStart { index: 1, block: BlockStart::Text },
            Event::Delta { index: 1, delta: Delta::Text("x".into()) },
            Event::Delta { index: 1, delta: Delta::Text("y".into()) },
            Event::BlockStop { index: 1 },
            Event::BlockStart {
                index: 2,
                block: BlockStart::ToolCall { id: "c".into(), name: "f".into(), kind: ToolKind::Function },
            },
            Event::BlockStop { index: 2 },
            Event::Usage(Usage { input: Some(3), ..Default::default() }),
            Event::Usage(Usage { output: Some(4), ..Default::default() }),
            Event::Finish(FinishReason::ToolUse),
            Event::End,
        ];
        let r = collect(&events).unwrap();
        assert_eq!((r.id.as_deref(), r.model.as_deref()), (Some("r"), Some("m")));
        assert_eq!(
            r.parts,
            vec![
                Part::Reasoning { text: "a".into(), signature: Some(sig), cache: None },
                Part::text("xy"),
                Part::ToolCall {
                    id: "c".into(),
                    name: "f".into(),
                    arguments: "{}".into(),
                    kind: ToolKind::Function,
                    cache: None
                },
            ]
        );
        assert_eq!((r.usage.input, r.usage.output), (Some(3), Some(4)));
        assert_eq!(r.finish, Some(FinishReason::ToolUse));
        let error = ProviderError { status: 500, code: None, message: "x".into() };
        assert_eq!(collect(&[Event::Error(error.clone())]).unwrap_err(), error);
    }
}
