//! Run journals on disk: starting a new run, reopening the one being resumed, and closing a stale
//! one as abandoned so that no later command can resume it.

use std::path::Path;

use super::ExecError;
use super::RunSettings;
use crate::journal::{Event, Journal, Record};
use crate::plan::Plan;
use crate::situation::RunSummary;

/// Opens `resume`'s journal (recording that it resumes) or creates a new run's.
pub(crate) fn open_or_create(
    plan: &Plan,
    runbook_sha256: &str,
    resume: Option<&RunSummary>,
    settings: &RunSettings,
) -> Result<(Journal, Vec<Record>), ExecError> {
    let audit = settings.state_dir.join("audit.jsonl");
    match resume {
        Some(run) => {
            let (journal, records, torn) = Journal::open(&run.path)?;
            let mut journal = journal.with_audit(&audit, &settings.operator, &settings.host)?;
            if torn && !settings.quiet {
                say!(
                    "note: the last journal record was cut short (pcfail was stopped while writing it); it was removed and its step is examined again"
                );
            }
            journal.append(Event::RunResumed {
                operator: settings.operator.clone(),
                host: settings.host.clone(),
            })?;
            Ok((journal, records))
        }
        None => {
            let run_id = format!(
                "{}-{}",
                // Milliseconds: two runs started within one second must not collide.
                jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.3fZ"),
                plan.operation.key()
            );
            let mut journal = Journal::create(&settings.state_dir.join("runs"), &run_id)?
                .with_audit(&audit, &settings.operator, &settings.host)?;
            journal.append(Event::RunStarted {
                operation: plan.operation.key().to_owned(),
                pool: plan.pool.clone(),
                runbook: plan.runbook.display().to_string(),
                runbook_sha256: runbook_sha256.to_owned(),
                operator: settings.operator.clone(),
                host: settings.host.clone(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })?;
            Ok((journal, Vec::new()))
        }
    }
}

/// Closes an unfinished run for good: its journal ends with `abandoned` and the reason.
pub(crate) fn abandon(
    run: &RunSummary,
    reason: &str,
    settings: &RunSettings,
) -> Result<(), ExecError> {
    let (journal, _, _) = Journal::open(&run.path)?;
    let mut journal = journal.with_audit(
        &settings.state_dir.join("audit.jsonl"),
        &settings.operator,
        &settings.host,
    )?;
    journal.append(Event::RunFinished {
        outcome: "abandoned".to_owned(),
        reason: Some(reason.to_owned()),
    })?;
    Ok(())
}

/// The runbook digest the run started with.
pub(crate) fn started_with(run: &RunSummary) -> Option<&str> {
    run.records.iter().find_map(|r| match &r.event {
        Event::RunStarted { runbook_sha256, .. } => Some(runbook_sha256.as_str()),
        _ => None,
    })
}

/// The file name of a journal, for messages.
pub(crate) fn shown(path: &Path) -> String {
    format!("`{}`", path.display())
}
