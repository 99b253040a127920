//! Reading a pcfail run journal (JSON lines) for where the time went: step boundaries and the
//! duration of every statement and cmdlet, as pcfail measured them.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

pub(crate) struct Record {
    pub time: jiff::Timestamp,
    pub event: String,
    pub step: Option<String>,
    /// A `command` record's duration: `duration_us`, or `duration_ms` in journals of earlier versions.
    pub duration: Option<Duration>,
    /// A `captured` situation's `observed_us`: the time its observation took (mostly waiting for
    /// instances to answer, or for a lost one's connect timeout).
    pub observed: Option<Duration>,
    /// A `captured` record's key.
    pub key: Option<String>,
}

pub(crate) struct Journal {
    pub records: Vec<Record>,
}

impl Journal {
    pub(crate) fn read(path: &Path) -> anyhow::Result<Journal> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read `{}`", path.display()))?;
        let mut records = Vec::new();
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).context("a journal line is not JSON")?;
            let time = v["time"]
                .as_str()
                .context("a journal record has no time")?
                .parse()
                .context("a journal time")?;
            let duration = v["duration_us"]
                .as_u64()
                .map(Duration::from_micros)
                .or_else(|| v["duration_ms"].as_u64().map(Duration::from_millis));
            let observed = v["value"]["observed_us"]
                .as_u64()
                .map(Duration::from_micros);
            records.push(Record {
                time,
                observed,
                key: v["key"].as_str().map(str::to_owned),
                event: v["event"].as_str().unwrap_or_default().to_owned(),
                step: v["step"].as_str().map(str::to_owned),
                duration,
            });
        }
        Ok(Journal { records })
    }

    /// From the record before the step's first record to its `step_finished` (or `step_skipped`):
    /// examining, running and verifying it, as the operator waits for it.
    pub(crate) fn step_span(&self, step: &str) -> anyhow::Result<Duration> {
        let first = self
            .records
            .iter()
            .position(|r| r.step.as_deref() == Some(step))
            .with_context(|| format!("step `{step}` is not in the journal"))?;
        let end = self
            .records
            .iter()
            .position(|r| {
                r.step.as_deref() == Some(step)
                    && matches!(r.event.as_str(), "step_finished" | "step_skipped")
            })
            .with_context(|| format!("step `{step}` did not finish"))?;
        let start = self.records[first.saturating_sub(1)].time;
        Ok(span(start, self.records[end].time))
    }

    /// Statements and cmdlets of `step` (all steps with None): how many, and the time spent waiting
    /// for their answers.
    pub(crate) fn commands(&self, step: Option<&str>) -> (usize, Duration) {
        self.records
            .iter()
            .filter(|r| r.event == "command" && (step.is_none() || r.step.as_deref() == step))
            .fold((0, Duration::ZERO), |(n, total), r| {
                (n + 1, total + r.duration.unwrap_or_default())
            })
    }

    /// The time spent observing the situation after the steps (`situation_after`), within the
    /// journal's span: waiting on servers, like a statement. (The observation before the run
    /// precedes the first record.)
    pub(crate) fn observing_after(&self) -> Duration {
        self.records
            .iter()
            .filter(|r| r.event == "captured" && r.key.as_deref() == Some("situation_after"))
            .filter_map(|r| r.observed)
            .sum()
    }

    /// The first record to the last.
    pub(crate) fn span(&self) -> Duration {
        match (self.records.first(), self.records.last()) {
            (Some(a), Some(b)) => span(a.time, b.time),
            _ => Duration::ZERO,
        }
    }
}

fn span(a: jiff::Timestamp, b: jiff::Timestamp) -> Duration {
    Duration::try_from(b.duration_since(a)).unwrap_or_default()
}
