//! What the state directory says about earlier runs of this pool: which completed, which stopped
//! part-way, and which facts they captured (the log-shipping settings, the active servers last set).
//!
//! Read from the journals only (no server is asked), so `status`, `plan` and every run agree on it.
//! Deciding what to do about an unfinished run is not this module's job: `gate` does that with the
//! live situation in hand.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::journal::{self, Event, Record};
use crate::runbook::Operation;

/// One run, summarised from its journal.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct RunSummary {
    pub id: String,
    #[serde(skip)]
    pub path: PathBuf,
    /// The operation key (`failover`, `planned_failover`, `failback`).
    pub operation: String,
    pub pool: String,
    pub started: String,
    pub operator: String,
    pub host: String,
    /// `completed`, `failed`, `aborted`, `abandoned`, ...; None while unfinished (or after a crash).
    pub outcome: Option<String>,
    pub finished: Option<String>,
    /// The last step that started, with its number, and whether it finished.
    pub last_step: Option<LastStep>,
    /// True once the operator confirmed the run (before its first step).
    pub confirmed: bool,
    /// Why a run was closed without completing, when it was.
    pub reason: Option<String>,
    #[serde(skip)]
    pub records: Vec<Record>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct LastStep {
    pub number: usize,
    pub id: String,
    /// `started`, `done` or `failed`.
    pub status: &'static str,
}

impl RunSummary {
    fn from_records(path: &Path, records: Vec<Record>) -> Option<RunSummary> {
        let first = records.first()?;
        let Event::RunStarted {
            operation,
            pool,
            operator,
            host,
            ..
        } = &first.event
        else {
            return None;
        };
        let mut summary = RunSummary {
            id: first.run.clone(),
            path: path.to_owned(),
            operation: operation.clone(),
            pool: pool.clone(),
            started: first.time.clone(),
            operator: operator.clone(),
            host: host.clone(),
            outcome: None,
            finished: None,
            last_step: None,
            confirmed: false,
            reason: None,
            records: Vec::new(),
        };
        for record in &records {
            match &record.event {
                Event::RunFinished { outcome, reason } => {
                    summary.outcome = Some(outcome.clone());
                    summary.finished = Some(record.time.clone());
                    summary.reason = reason.clone();
                }
                Event::RunResumed { .. } => {
                    summary.outcome = None;
                    summary.finished = None;
                    summary.reason = None;
                }
                Event::StepStarted { step, number } => {
                    summary.last_step = Some(LastStep {
                        number: *number,
                        id: step.clone(),
                        status: "started",
                    });
                }
                Event::StepFinished { step, ok, .. } => {
                    if let Some(last) = &mut summary.last_step
                        && &last.id == step
                    {
                        last.status = if *ok { "done" } else { "failed" };
                    }
                }
                Event::Confirmed { .. } => summary.confirmed = true,
                _ => {}
            }
        }
        summary.records = records;
        Some(summary)
    }

    pub(crate) fn completed(&self) -> bool {
        self.outcome.as_deref() == Some("completed")
    }

    /// Closed for good: completed, or abandoned (never to be resumed).
    pub(crate) fn closed(&self) -> bool {
        matches!(self.outcome.as_deref(), Some("completed" | "abandoned"))
    }

    /// Failover and planned failover move the pool the same way.
    pub(crate) fn direction(&self) -> Option<Operation> {
        Operation::from_key(&self.operation).map(Operation::direction)
    }

    /// "stopped at step 4 (`end-sessions`, failed)".
    pub(crate) fn where_stopped(&self) -> String {
        match &self.last_step {
            Some(s) => format!("stopped at step {} (`{}`, {})", s.number, s.id, s.status),
            None => "stopped before its first step".to_owned(),
        }
    }
}

/// The runs of one pool in a state directory, oldest first, and the damaged journals apart.
#[derive(Clone, Debug, Default)]
pub(crate) struct History {
    pub runs: Vec<RunSummary>,
    /// Journals that cannot be read (a broken chain, not JSON), with the first bad line: nobody can
    /// tell where their run stood, so no run goes on while one is there.
    pub damaged: Vec<(PathBuf, String)>,
    /// Journals with no complete record: a run killed before its first record was written. They say
    /// nothing and may be removed.
    pub empty: Vec<PathBuf>,
}

impl History {
    /// Reads every journal in `STATE_DIR/runs` that belongs to `pool` (case-insensitive).
    pub(crate) fn read(state_dir: &Path, pool: Option<&str>) -> std::io::Result<History> {
        let runs_dir = state_dir.join("runs");
        let entries = match std::fs::read_dir(&runs_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(History::default()),
            Err(e) => return Err(e),
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        // Run ids start with their UTC start time, so names sort oldest first.
        paths.sort();
        let mut history = History::default();
        for path in paths {
            match journal::read(&path) {
                Ok(records) if records.is_empty() => history.empty.push(path),
                Ok(records) => match RunSummary::from_records(&path, records) {
                    Some(run) => {
                        if pool.is_none_or(|p| run.pool.eq_ignore_ascii_case(p)) {
                            history.runs.push(run);
                        }
                    }
                    None => history
                        .damaged
                        .push((path, "its first record is not a run start".to_owned())),
                },
                Err(e) => history.damaged.push((path, e.to_string())),
            }
        }
        Ok(history)
    }

    /// The newest completed run.
    pub(crate) fn last_completed(&self) -> Option<&RunSummary> {
        self.runs.iter().rev().find(|r| r.completed())
    }

    /// The unfinished run that may be resumed: the newest run not closed, provided no run that
    /// started after it has completed (a later completed run means the world moved on without it).
    pub(crate) fn pending(&self) -> Option<&RunSummary> {
        let newest_open = self.runs.iter().rposition(|r| !r.closed())?;
        let superseded = self.runs[newest_open + 1..].iter().any(|r| r.completed());
        (!superseded).then(|| &self.runs[newest_open])
    }

    /// Unfinished runs that must never be resumed: every open run except the pending one.
    pub(crate) fn stale(&self) -> Vec<&RunSummary> {
        let pending = self.pending().map(|r| r.id.clone());
        self.runs
            .iter()
            .filter(|r| !r.closed() && Some(&r.id) != pending.as_ref())
            .collect()
    }

    /// The newest value captured under `key` by any run (e.g. the log-shipping settings a failover
    /// read before removing them, which fail-back puts back).
    pub(crate) fn last_captured(&self, key: &str) -> Option<(&RunSummary, &serde_json::Value)> {
        self.runs.iter().rev().find_map(|run| {
            run.records.iter().rev().find_map(|r| match &r.event {
                Event::Captured { key: k, value } if k == key => Some((run, value)),
                _ => None,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::situation::testing::run;

    fn ids(runs: Vec<&RunSummary>) -> Vec<&str> {
        runs.into_iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn an_unfinished_run_is_pending_only_until_a_later_run_completes() {
        type Case = (Vec<RunSummary>, Option<&'static str>, Vec<&'static str>);
        let cases: Vec<Case> = vec![
            (vec![], None, vec![]),
            (vec![run("1", "failover", Some("completed"))], None, vec![]),
            (
                vec![run("1", "failback", Some("failed"))],
                Some("1"),
                vec![],
            ),
            // A failed fail-back, then a completed failover: the fail-back is stale.
            (
                vec![
                    run("1", "failback", Some("failed")),
                    run("2", "failover", Some("completed")),
                ],
                None,
                vec!["1"],
            ),
            // Crashed (no outcome) after an older failed one: the newest is pending.
            (
                vec![
                    run("1", "failover", Some("failed")),
                    run("2", "failover", None),
                ],
                Some("2"),
                vec!["1"],
            ),
            // Abandoned runs are closed.
            (
                vec![
                    run("1", "failback", Some("abandoned")),
                    run("2", "failback", Some("aborted")),
                ],
                Some("2"),
                vec![],
            ),
        ];
        for (runs, pending, stale) in cases {
            let history = History {
                runs,
                ..History::default()
            };
            assert_eq!(
                history.pending().map(|r| r.id.as_str()),
                pending,
                "{:?}",
                history.runs
            );
            assert_eq!(ids(history.stale()), stale);
        }
    }
}
