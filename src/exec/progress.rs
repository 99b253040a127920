//! What an earlier attempt of this run got done, replayed from its journal.
//!
//! The journal says which steps finished; the steps' own done-checks then ask the servers whether
//! their effects are still there. One exception to trusting a finished step: a step whose result
//! describes a moment (a full backup) is redone when a later step still has to use it, because the
//! database may have changed since.

use std::collections::BTreeMap;

use crate::journal::{Event, Record};

#[derive(Default, Debug)]
pub(crate) struct Progress {
    /// Steps an earlier attempt started (finished or not).
    pub started: Vec<String>,
    pub finished: Vec<String>,
    /// Steps whose own confirmation (a pause, `confirm = true`, a data loss) was given.
    pub confirmed: Vec<String>,
    /// The operator confirmed the operation itself (before its first step).
    pub operation_confirmed: bool,
    pub captured: BTreeMap<String, serde_json::Value>,
}

impl Progress {
    pub(crate) fn replay(records: &[Record]) -> Progress {
        let mut p = Progress::default();
        for r in records {
            match &r.event {
                Event::StepFinished { step, ok: true, .. } => p.finished.push(step.clone()),
                // A step that started again is no longer finished (it cannot be: steps run in
                // order), but keep the rule simple and robust to odd journals.
                Event::StepStarted { step, .. } => {
                    p.finished.retain(|s| s != step);
                    p.started.push(step.clone());
                }
                Event::Confirmed { what, .. } if what.as_deref() == Some("operation") => {
                    p.operation_confirmed = true;
                }
                Event::Confirmed { step, .. } => p.confirmed.push(step.clone()),
                Event::Captured { key, value } => {
                    p.captured.insert(key.clone(), value.clone());
                }
                _ => {}
            }
        }
        p
    }

    pub(crate) fn finished(&self, step: &str) -> bool {
        self.finished.iter().any(|s| s == step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(event: Event) -> Record {
        Record {
            seq: 0,
            prev: String::new(),
            time: String::new(),
            run: "r".into(),
            event,
        }
    }

    #[test]
    fn replay_tracks_finished_steps_and_the_operation_confirmation() {
        let records: Vec<Record> = [
            Event::Confirmed {
                step: "a".into(),
                how: "--yes".into(),
                what: Some("operation".into()),
            },
            Event::StepStarted {
                step: "a".into(),
                number: 1,
            },
            Event::StepFinished {
                step: "a".into(),
                ok: true,
                message: None,
            },
            Event::StepStarted {
                step: "b".into(),
                number: 2,
            },
            Event::Confirmed {
                step: "b".into(),
                how: "typed".into(),
                what: Some("pause".into()),
            },
            Event::StepFinished {
                step: "b".into(),
                ok: false,
                message: Some("x".into()),
            },
        ]
        .into_iter()
        .map(record)
        .collect();
        let p = Progress::replay(&records);
        assert!(p.operation_confirmed);
        assert_eq!(p.finished, ["a"]);
        assert_eq!(p.started, ["a", "b"]);
        assert_eq!(p.confirmed, ["b"]);
    }
}
