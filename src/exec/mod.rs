//! The executor: carries out a [`Plan`] step by step, journaling before and after each one, and
//! resumes an unfinished run where it stopped.
//!
//! For every step: skip it if the journal says it finished; otherwise journal that it starts, ask
//! the action whether its effect is already there (so a re-run after a crash is safe), ask the
//! operator where the plan says so, run it, verify its postcondition, and journal the outcome. A
//! failed step is an outcome (exit 1 with the step, the instance and the server's words), not an
//! `Err`: `Err` means pcfail itself could not do its job (its journal, its lock).
//!
//! Two facts must be read before anything changes: the log-shipping settings (step 1 deletes them,
//! and the copy and apply steps need the share and the copy folder) and, before the point of no
//! return, the data-loss ledger the operator confirms. Both go into the journal so a resumed run
//! sees exactly what the first one saw.

mod bar;
pub(crate) mod chain;
pub(crate) mod check;
pub(crate) mod copy;
pub(crate) mod ledger;
pub(crate) mod probe;
pub(crate) mod session;

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::action::Action;
use crate::journal::{self, Event, Journal, JournalError, Record};
use crate::lock::{LockError, RunLock};
use crate::plan::{Plan, PlannedStep};
use crate::powershell::HostSettings;
use crate::quote;
use crate::runbook::{Role, Runbook};
use crate::sql::{Sql, SqlError};

pub(crate) use bar::Bar;
pub(crate) use session::{Answers, Session, StepError, Timeouts};

/// How a run is carried out.
#[derive(Clone, Debug)]
pub(crate) struct RunSettings {
    /// Journals, the lock and the PowerShell host script live here.
    pub state_dir: PathBuf,
    pub answers: Answers,
    pub quiet: bool,
    pub timeouts: Timeouts,
    /// Who is running pcfail, for the journal.
    pub operator: String,
    pub host: String,
}

/// How a run ended.
#[derive(Debug)]
pub(crate) enum RunOutcome {
    Completed {
        run: String,
        journal: PathBuf,
        steps: Vec<StepReport>,
    },
    StepFailed {
        journal: PathBuf,
        step: usize,
        id: String,
        error: StepError,
    },
    /// The operator said no (or could not be asked).
    Aborted { journal: PathBuf, message: String },
    /// Something the run needs before its first step is not there.
    Precondition { message: String },
    /// Another run holds a lock.
    Locked { message: String },
    /// The unfinished run cannot be resumed with this runbook.
    Refused { message: String },
}

/// What happened to one step, for the report.
#[derive(Clone, Debug)]
pub(crate) struct StepReport {
    pub number: usize,
    pub id: String,
    pub status: &'static str,
    pub duration: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Lock(LockError),
    #[error("cannot list the runs in `{path}`: {source}")]
    Runs {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Runs (or resumes) `plan`. `runbook_sha256` identifies the runbook's exact contents.
pub(crate) async fn run(
    runbook: &Runbook,
    runbook_sha256: &str,
    plan: &Plan,
    settings: &RunSettings,
) -> Result<RunOutcome, ExecError> {
    let who = format!(
        "{} on {}, pid {}",
        settings.operator,
        settings.host,
        std::process::id()
    );
    let _lock = match RunLock::acquire(&settings.state_dir, &who) {
        Ok(lock) => lock,
        Err(LockError::Held { path, holder }) => {
            return Ok(RunOutcome::Locked {
                message: format!(
                    "another pcfail run holds the lock `{}` ({holder})",
                    path.display()
                ),
            });
        }
        Err(e) => return Err(ExecError::Lock(e)),
    };

    let runs_dir = settings.state_dir.join("runs");
    let audit_path = settings.state_dir.join("audit.jsonl");
    let unfinished = find_unfinished(&runs_dir, plan)?;
    if let Some((path, records)) = &unfinished {
        let started_with = records.iter().find_map(|r| match &r.event {
            Event::RunStarted { runbook_sha256, .. } => Some(runbook_sha256.clone()),
            _ => None,
        });
        if started_with.as_deref() != Some(runbook_sha256) {
            return Ok(RunOutcome::Refused {
                message: format!(
                    "the unfinished {} run in `{}` was started with a different runbook; finish it with the runbook it started with, or move that journal away to start over",
                    plan.operation.key(),
                    path.display()
                ),
            });
        }
    }

    // The database-level lock against a second machine, held on its own connection for the whole
    // run. Taken before the journal is touched: a run that cannot start leaves no trace to resume.
    let (_applock, applock_event) = match take_applock(runbook, plan, settings).await {
        Ok(held) => held,
        Err(outcome) => return Ok(*outcome),
    };

    let (mut journal, records) = match unfinished {
        Some((path, _)) => {
            let (journal, records, torn) = Journal::open(&path)?;
            let mut journal =
                journal.with_audit(&audit_path, &settings.operator, &settings.host)?;
            if torn && !settings.quiet {
                eprintln!(
                    "note: the last journal record was cut short (pcfail was stopped while writing it); it was removed and its step is examined again"
                );
            }
            journal.append(Event::RunResumed {
                operator: settings.operator.clone(),
                host: settings.host.clone(),
            })?;
            (journal, records)
        }
        None => {
            let run_id = format!(
                "{}-{}",
                // Milliseconds: two runs started within one second must not collide.
                jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.3fZ"),
                plan.operation.key()
            );
            let mut journal = Journal::create(&runs_dir, &run_id)?.with_audit(
                &audit_path,
                &settings.operator,
                &settings.host,
            )?;
            journal.append(Event::RunStarted {
                operation: plan.operation.key().to_owned(),
                pool: plan.pool.clone(),
                runbook: plan.runbook.display().to_string(),
                runbook_sha256: runbook_sha256.to_owned(),
                operator: settings.operator.clone(),
                host: settings.host.clone(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })?;
            (journal, Vec::new())
        }
    };
    if let Some(event) = applock_event {
        journal.append(event)?;
    }
    let journal_path = journal.path().to_owned();
    let run_id = journal.run().to_owned();
    if !settings.quiet {
        let verb = if records.is_empty() {
            "starting"
        } else {
            "resuming"
        };
        eprintln!(
            "pcfail {} of {}: {verb} run {run_id} (journal `{}`)",
            plan.operation.key(),
            plan.pool,
            journal_path.display()
        );
    }

    let host_settings = HostSettings {
        program: PathBuf::from(&runbook.powershell.program),
        args: runbook.powershell.args.clone(),
        script_dir: settings.state_dir.clone(),
        startup_timeout: settings.timeouts.connect.max(Duration::from_secs(60)),
    };
    let mut session = Session::new(
        runbook,
        journal,
        host_settings,
        settings.timeouts,
        settings.answers,
        settings.quiet,
    );
    let progress = Progress::replay(&records);
    for (key, value) in &progress.captured {
        session.remember(key, value.clone());
    }

    let outcome = run_steps(plan, &progress, &mut session, settings).await;
    let outcome = match outcome {
        Ok(steps) => {
            finish(&mut session, "completed")?;
            RunOutcome::Completed {
                run: run_id,
                journal: journal_path,
                steps,
            }
        }
        Err(Stop::Failed { step, id, error }) => {
            if let StepError::Journal(e) = error {
                return Err(e.into());
            }
            finish(&mut session, "failed")?;
            RunOutcome::StepFailed {
                journal: journal_path,
                step,
                id,
                error,
            }
        }
        Err(Stop::Aborted(message)) => {
            finish(&mut session, "aborted")?;
            RunOutcome::Aborted {
                journal: journal_path,
                message,
            }
        }
        Err(Stop::Precondition(message)) => {
            finish(&mut session, "precondition_failed")?;
            RunOutcome::Precondition { message }
        }
    };
    session.close().await?;
    Ok(outcome)
}

fn finish(session: &mut Session<'_>, outcome: &str) -> Result<(), JournalError> {
    session.record(Event::RunFinished {
        outcome: outcome.to_owned(),
    })
}

enum Stop {
    Failed {
        step: usize,
        id: String,
        error: StepError,
    },
    Aborted(String),
    Precondition(String),
}

async fn run_steps(
    plan: &Plan,
    progress: &Progress,
    session: &mut Session<'_>,
    settings: &RunSettings,
) -> Result<Vec<StepReport>, Stop> {
    capture_log_shipping(plan, progress, session).await?;
    let point_of_no_return = plan.point_of_no_return();
    let total = plan.steps.len();
    let mut reports = Vec::new();
    for step in &plan.steps {
        let say = |status: &str| {
            if !settings.quiet {
                eprintln!(
                    "[{}/{total}] {} — {}{status}",
                    step.number, step.id, step.description
                );
            }
        };
        if progress.finished.contains(&step.id) {
            say(": done in an earlier attempt (journal)");
            reports.push(StepReport {
                number: step.number,
                id: step.id.clone(),
                status: "done earlier",
                duration: Duration::ZERO,
            });
            continue;
        }
        say("");
        let started = Instant::now();
        session.set_step(&step.id, step.timeout, progress.started.contains(&step.id));
        let fail = |error: StepError| match error {
            StepError::Aborted(message) => Stop::Aborted(message),
            error => Stop::Failed {
                step: step.number,
                id: step.id.clone(),
                error,
            },
        };
        session
            .record(Event::StepStarted {
                step: step.id.clone(),
                number: step.number,
            })
            .map_err(|e| fail(e.into()))?;
        let result = run_one(plan, step, point_of_no_return, progress, session).await;
        let status = match &result {
            Ok(true) => "already done",
            Ok(false) => "done",
            Err(_) => "failed",
        };
        let message = result.as_ref().err().map(ToString::to_string);
        if let Ok(true) = result {
            session
                .record(Event::StepSkipped {
                    step: step.id.clone(),
                    reason: "its effect was already in place".to_owned(),
                })
                .map_err(|e| fail(e.into()))?;
        }
        session
            .record(Event::StepFinished {
                step: step.id.clone(),
                ok: result.is_ok(),
                message,
            })
            .map_err(|e| fail(e.into()))?;
        let duration = started.elapsed();
        result.map_err(fail)?;
        if !settings.quiet {
            eprintln!("      {status} in {:.1}s", duration.as_secs_f64());
        }
        reports.push(StepReport {
            number: step.number,
            id: step.id.clone(),
            status,
            duration,
        });
    }
    Ok(reports)
}

/// Runs one step; `Ok(true)` when its effect was already there.
async fn run_one(
    plan: &Plan,
    step: &PlannedStep,
    point_of_no_return: Option<usize>,
    progress: &Progress,
    session: &mut Session<'_>,
) -> Result<bool, StepError> {
    if step.action.check_done(session).await? {
        return Ok(true);
    }
    if point_of_no_return == Some(step.number) && !progress.confirmed.contains(&step.id) {
        let ledger = ledger::build(plan, session).await;
        session.capture("data_loss_ledger", ledger.to_json())?;
        confirm_point_of_no_return(plan, step, &ledger.render(), session)?;
    } else if step.confirm
        && !matches!(step.action, Action::Pause(_))
        && !progress.confirmed.contains(&step.id)
    {
        session.confirm_continue(&format!(
            "Step {} ({}) asks for confirmation: {}",
            step.number, step.id, step.description
        ))?;
    }
    step.action.run(session).await?;
    step.action.verify(session).await?;
    Ok(false)
}

/// Before the point of no return the operator types the pool's FQDN (or passed `--yes`).
fn confirm_point_of_no_return(
    plan: &Plan,
    step: &PlannedStep,
    ledger: &str,
    session: &mut Session<'_>,
) -> Result<(), StepError> {
    eprintln!(
        "\nPOINT OF NO RETURN: step {} ({}) cannot be undone by pcfail.\n{ledger}",
        step.number, step.id
    );
    let how = match session.answers() {
        Answers::Yes => "--yes".to_owned(),
        Answers::Ask => {
            if !std::io::stdin().is_terminal() {
                return Err(StepError::Aborted(
                    "confirmation needed before the point of no return, but standard input is not a terminal; run again with `--yes` to confirm in advance".to_owned(),
                ));
            }
            eprint!("Type the pool's FQDN ({}) to continue: ", plan.pool);
            let _ = std::io::stderr().flush();
            let mut line = String::new();
            let _ = std::io::stdin().lock().read_line(&mut line);
            if !line.trim().eq_ignore_ascii_case(&plan.pool) {
                return Err(StepError::Aborted(
                    "the operator did not confirm the point of no return".to_owned(),
                ));
            }
            "typed the pool FQDN".to_owned()
        }
    };
    session.record(Event::Confirmed {
        step: step.id.clone(),
        how,
    })?;
    Ok(())
}

/// Reads and journals the log-shipping settings before the step that deletes them runs.
async fn capture_log_shipping(
    plan: &Plan,
    progress: &Progress,
    session: &mut Session<'_>,
) -> Result<(), Stop> {
    for step in &plan.steps {
        let Action::RemoveLogShippingSecondary(remove) = &step.action else {
            continue;
        };
        let key = session::log_shipping_key(&remove.database);
        if progress.finished.contains(&step.id) || session.captured(&key).is_some() {
            continue;
        }
        let settings = probe::log_shipping_secondary(session, remove.instance, &remove.database)
            .await
            .map_err(|e| {
                Stop::Precondition(format!(
                    "cannot read the log-shipping settings of `{}` on `{}` before removing them: {e}",
                    remove.database, remove.instance
                ))
            })?;
        match settings {
            Some(settings) => {
                let value = serde_json::to_value(&settings).expect("settings serialize");
                session.capture(&key, value).map_err(|e| Stop::Failed {
                    step: step.number,
                    id: step.id.clone(),
                    error: e.into(),
                })?;
            }
            None => {
                let overrides = &session.runbook.log_shipping;
                if overrides.share.is_none() || overrides.copy_folder.is_none() {
                    return Err(Stop::Precondition(format!(
                        "`{}` on `{}` is not configured as a log-shipping secondary, so the backup share and copy folder are unknown; if log shipping was removed by hand, give `share` and `copy_folder` under [log_shipping] in the runbook",
                        remove.database, remove.instance
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Takes `sp_getapplock` on the backup instance for the run's duration, on a dedicated connection
/// (a session-owned application lock lives exactly as long as its connection). Returns the connection
/// and the journal record of the statement, to be written once the journal exists.
async fn take_applock(
    runbook: &Runbook,
    plan: &Plan,
    settings: &RunSettings,
) -> Result<(Option<Sql>, Option<Event>), Box<RunOutcome>> {
    let Some(instance) = runbook.instances.get(&Role::Backup) else {
        return Ok((None, None));
    };
    let precondition = |e: SqlError| {
        Box::new(RunOutcome::Precondition {
            message: format!("cannot take the run lock on `backup`: {e}"),
        })
    };
    let mut conn = Sql::connect(instance, settings.timeouts.connect)
        .await
        .map_err(precondition)?;
    let resource = format!("pcfail:{}", plan.pool.to_ascii_lowercase());
    let text = format!(
        "DECLARE @rc int; EXEC @rc = sp_getapplock @Resource = {}, @LockMode = 'Exclusive', @LockOwner = 'Session', @LockTimeout = 0; SELECT @rc AS rc;",
        quote::sql_string(&resource)
    );
    let started = Instant::now();
    let result = conn.batch(&text, settings.timeouts.query).await;
    let rc = result
        .as_ref()
        .ok()
        .and_then(|sets| sets.last())
        .and_then(|set| set.rows.first().and_then(|row| set.get(row, "rc").as_i64()));
    let event = Event::Command {
        step: String::new(),
        target: "backup".to_owned(),
        text: text.clone(),
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        ok: result.is_ok(),
        error: result
            .as_ref()
            .err()
            .map(|e| serde_json::Value::String(e.to_string())),
        messages: Vec::new(),
    };
    match (result, rc) {
        (Err(e), _) => Err(precondition(e)),
        // 0: granted; 1: granted after waiting for other locks to be released.
        (Ok(_), Some(0 | 1)) => Ok((Some(conn), Some(event))),
        (Ok(_), Some(-1)) => Err(Box::new(RunOutcome::Locked {
            message: format!(
                "another pcfail run holds the application lock `{resource}` on `backup` (sp_getapplock timed out)"
            ),
        })),
        (Ok(_), other) => Err(Box::new(RunOutcome::Precondition {
            message: format!(
                "sp_getapplock on `backup` returned {}; the run lock could not be taken",
                other.map_or("no status".to_owned(), |c| c.to_string())
            ),
        })),
    }
}

/// What an earlier attempt of this run got done, from its journal.
#[derive(Default, Debug)]
struct Progress {
    /// Steps an earlier attempt started (finished or not).
    started: Vec<String>,
    finished: Vec<String>,
    confirmed: Vec<String>,
    captured: BTreeMap<String, serde_json::Value>,
}

impl Progress {
    fn replay(records: &[Record]) -> Progress {
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
                Event::Confirmed { step, .. } => p.confirmed.push(step.clone()),
                Event::Captured { key, value } => {
                    p.captured.insert(key.clone(), value.clone());
                }
                _ => {}
            }
        }
        p
    }
}

/// The newest journal of `plan`'s operation and pool that did not complete.
fn find_unfinished(
    runs_dir: &Path,
    plan: &Plan,
) -> Result<Option<(PathBuf, Vec<Record>)>, ExecError> {
    let mut candidates = Vec::new();
    for (path, records) in list_runs(runs_dir)? {
        let Some(Event::RunStarted {
            operation, pool, ..
        }) = records.first().map(|r| &r.event)
        else {
            continue;
        };
        let completed = records
            .iter()
            .any(|r| matches!(&r.event, Event::RunFinished { outcome } if outcome == "completed"));
        if operation == plan.operation.key() && pool.eq_ignore_ascii_case(&plan.pool) && !completed
        {
            candidates.push((path, records));
        }
    }
    Ok(candidates.pop())
}

/// Every run journal in `runs_dir`, oldest first (run ids start with a UTC timestamp). A damaged
/// journal is listed with no records, so `status` can say so and resuming skips it.
pub(crate) fn list_runs(runs_dir: &Path) -> Result<Vec<(PathBuf, Vec<Record>)>, ExecError> {
    let entries = match std::fs::read_dir(runs_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ExecError::Runs {
                path: runs_dir.to_owned(),
                source,
            });
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    paths.sort();
    Ok(paths
        .into_iter()
        .map(|p| {
            let records = journal::read(&p).unwrap_or_default();
            (p, records)
        })
        .collect())
}
