//! The executor: runs a [`Plan`] only when the situation calls for it, step by step, journaling before
//! and after each one, and resumes an unfinished run only while the servers still agree with it.
//!
//! A run goes: take the local lock; read the run history; observe the pool (read-only) and name its
//! situation; let the gate decide (refuse with exit 3, "nothing to do" with exit 0, or proceed, maybe
//! resuming and maybe closing stale runs as abandoned); take the server lock; open the journal and
//! record the situation; capture what step 1 will destroy; show the data-loss ledger and ask for the
//! typed confirmation before the first step that changes anything; then the steps (`steps`).
//!
//! One module per concern: `applock` and `crate::lock` (the two locks), `runs` (journal files),
//! `progress` (journal replay), `prompt` (the terminal), `capture` (facts kept before they go),
//! `ledger` (what is lost), `steps` (the loop), `outcome` (how a run ended, one value).

mod applock;
mod bar;
mod capture;
pub(crate) mod chain;
pub(crate) mod check;
pub(crate) mod copy;
pub(crate) mod headers;
pub(crate) mod ledger;
mod outcome;
mod preflight;
pub(crate) mod probe;
mod progress;
pub(crate) mod prompt;
pub(crate) mod relocate;
mod runs;
pub(crate) mod session;
mod steps;
mod verify_chain;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::journal::{Event, JournalError};
use crate::lock::{LockError, RunLock};
use crate::plan::Plan;
use crate::powershell::HostSettings;
use crate::runbook::Runbook;
use crate::situation::{self, Gate, History, Request, RunSummary};

pub(crate) use bar::Bar;
pub(crate) use outcome::{Outcome, Rendered};
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
    /// `--accept-split-brain`: fail over although the primary answers (after a typed confirmation).
    pub accept_split_brain: bool,
    /// `--accept-data-loss`: a gap in the log chain or a lost share ends the apply instead of the run.
    pub accept_data_loss: bool,
}

/// pcfail itself could not do its job: its journal, its lock, its state directory.
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
    /// A journal that cannot be trusted: nobody can tell where its run stood, so nothing runs.
    #[error(
        "{reason}; pcfail will not guess where that run stood, so nothing was done. Keep the file for the record, move it out of `{}`, and look at the servers (`pcfail status --live`) before running again",
        .path.parent().map(|p| p.display().to_string()).unwrap_or_default()
    )]
    Damaged { path: PathBuf, reason: String },
}

/// The PowerShell host a run (or a check) starts.
pub(crate) fn host_settings(runbook: &Runbook, timeouts: Timeouts) -> HostSettings {
    HostSettings {
        program: PathBuf::from(&runbook.powershell.program),
        args: runbook.powershell.args.clone(),
        // The remote session's password is the one secret the host needs; it is given to the host
        // explicitly when it starts (`Session`), whether or not pcfail's own environment has it.
        env_remove: runbook
            .instances
            .values()
            .filter_map(|i| match &i.auth {
                crate::runbook::Auth::Sql { password_env, .. }
                | crate::runbook::Auth::Windows { password_env, .. } => Some(password_env.clone()),
                crate::runbook::Auth::Integrated => None,
            })
            .chain(
                runbook
                    .powershell
                    .remote
                    .iter()
                    .filter_map(|r| r.credential.as_ref())
                    .map(|c| c.password_env.clone()),
            )
            .collect(),
        startup_timeout: timeouts.connect.max(Duration::from_secs(60)),
    }
}

/// Runs (or resumes) `plan` if the situation calls for it. `runbook_sha256` identifies the runbook's
/// exact contents.
pub(crate) async fn run(
    runbook: &Runbook,
    runbook_sha256: &str,
    plan: &Plan,
    settings: &RunSettings,
) -> Result<Outcome, ExecError> {
    let who = format!(
        "{} on {}, pid {}",
        settings.operator,
        settings.host,
        std::process::id()
    );
    let _lock = match RunLock::acquire(&settings.state_dir, &who) {
        Ok(lock) => lock,
        Err(LockError::Held { path, holder }) => {
            return Ok(Outcome::Locked {
                message: format!(
                    "another pcfail run holds the lock `{}` ({holder})",
                    path.display()
                ),
            });
        }
        Err(e) => return Err(ExecError::Lock(e)),
    };
    let history =
        History::read(&settings.state_dir, Some(&plan.pool)).map_err(|source| ExecError::Runs {
            path: settings.state_dir.join("runs"),
            source,
        })?;
    if let Some((path, reason)) = history.damaged.first() {
        return Err(ExecError::Damaged {
            path: path.clone(),
            reason: reason.clone(),
        });
    }
    for empty in &history.empty {
        // A run killed before its first record: it did nothing and says nothing.
        if std::fs::remove_file(empty).is_ok() && !settings.quiet {
            say!(
                "note: removed `{}`, the empty journal of a run stopped before its first record",
                empty.display()
            );
        }
    }

    let host = host_settings(runbook, settings.timeouts);
    let mut session = Session::new(
        runbook,
        host.clone(),
        settings.timeouts,
        settings.answers,
        settings.quiet,
    );
    session.set_accept_data_loss(settings.accept_data_loss);
    let known = situation::known_folders(&history, &runbook.chat_database);
    let observing = Instant::now();
    let observation =
        situation::observe(runbook, settings.timeouts, &host, &mut session, &known).await;
    let observed_us = crate::journal::micros_since(observing);
    let assessment = situation::classify(&observation);
    let request = Request {
        operation: plan.operation,
        accept_split_brain: settings.accept_split_brain,
    };
    let outcome = match situation::gate(&request, &assessment, &observation, &history, plan) {
        Gate::Refuse(message) => Ok(Outcome::Refused {
            message: nothing_done(&message),
        }),
        Gate::NothingToDo(message) => Ok(Outcome::NothingToDo { message }),
        Gate::Proceed {
            resume,
            abandon,
            split_brain,
        } => {
            // How long observing took: after a silent disaster, mostly the lost data center's
            // connect timeout, which the review (and the benchmarks) count as waiting, not work.
            let situation = serde_json::json!({
                "observation": observation,
                "assessment": assessment,
                "observed_us": observed_us,
            });
            let start = Start {
                headline: format!(
                    "situation: {} — {}",
                    assessment.kind.name(),
                    assessment.summary
                ),
                runbook_sha256,
                resume,
                abandon,
                split_brain,
                situation,
                observation: &observation,
            };
            proceed(plan, settings, &history, &mut session, start).await
        }
    };
    // The journal's tip goes outside this host (the backup instance's error log), after the run's
    // last record, whatever the outcome: a rewrite of the journal later shows against it.
    let mut outcome = outcome;
    if let Ok(outcome) = &mut outcome {
        match session.anchor().await {
            Ok(Some(anchor)) => {
                let line = format!(
                    "journal anchored on `backup` (SQL Server error log, event {}): {}",
                    crate::anchor::EVENT,
                    anchor.message()
                );
                match outcome {
                    Outcome::Completed { anchor, .. } => *anchor = Some(line),
                    _ if !settings.quiet => say!("{line}"),
                    _ => {}
                }
            }
            Ok(None) => {}
            Err(e) => say!(
                "warning: the journal could not be anchored on `backup` ({e}); `pcfail journal verify` will say so"
            ),
        }
    }
    // The host is stopped and its output kept, whatever happened.
    let closed = session.close().await;
    let outcome = outcome?;
    closed?;
    Ok(outcome)
}

/// After a signal ended a run: the run's journal (the newest unfinished one of this operation and
/// pool) gets a closing record that says so, so that `status` and the audit log show an interruption,
/// not a silence. The run stays resumable. Returns the journal, if the run had one.
pub(crate) fn record_interruption(
    plan: &Plan,
    settings: &RunSettings,
    signal: &str,
) -> Result<Option<PathBuf>, ExecError> {
    let history =
        History::read(&settings.state_dir, Some(&plan.pool)).map_err(|source| ExecError::Runs {
            path: settings.state_dir.join("runs"),
            source,
        })?;
    let Some(run) = history
        .runs
        .iter()
        .rev()
        .find(|r| r.operation == plan.operation.key() && r.outcome.is_none())
    else {
        return Ok(None);
    };
    let (journal, _, _) = crate::journal::Journal::open(&run.path)?;
    let mut journal = journal.with_audit(
        &settings.state_dir.join("audit.jsonl"),
        &settings.operator,
        &settings.host,
    )?;
    journal.append(Event::RunFinished {
        outcome: "interrupted".to_owned(),
        reason: Some(format!("interrupted by {signal}")),
    })?;
    Ok(Some(run.path.clone()))
}

/// A refusal says that nothing was done, at the end of its first line (findings may follow).
fn nothing_done(message: &str) -> String {
    let (first, rest) = message.split_once('\n').unwrap_or((message, ""));
    let said = if first.ends_with('.') {
        format!("{first} Nothing was done.")
    } else {
        format!("{first}; nothing was done")
    };
    if rest.is_empty() {
        said
    } else {
        format!("{said}\n{rest}")
    }
}

/// What the gate decided, for [`proceed`].
struct Start<'a> {
    /// The situation in one line, shown once the run holds both locks.
    headline: String,
    runbook_sha256: &'a str,
    resume: Option<Box<RunSummary>>,
    abandon: Vec<(RunSummary, String)>,
    split_brain: Option<String>,
    situation: serde_json::Value,
    observation: &'a situation::Observation,
}

async fn proceed(
    plan: &Plan,
    settings: &RunSettings,
    history: &History,
    session: &mut Session<'_>,
    start: Start<'_>,
) -> Result<Outcome, ExecError> {
    if let Some(why) = plan.unresolved() {
        return Ok(Outcome::Refused {
            message: nothing_done(&why),
        });
    }
    if let Some(run) = &start.resume
        && runs::started_with(run) != Some(start.runbook_sha256)
    {
        return Ok(Outcome::RunbookChanged {
            message: format!(
                "the unfinished {} run in {} was started with a different runbook; finish it with the runbook it started with, or move that journal away to start over",
                plan.operation.key(),
                runs::shown(&run.path)
            ),
        });
    }
    // The override of a live primary is typed at the terminal, before anything is touched.
    let split_brain = match &start.split_brain {
        Some(risk) => {
            say!("\nWARNING: {risk}.");
            match prompt::typed(
                "Type `split brain` to fail over anyway: ",
                "split brain",
                "run it at a terminal: this override cannot be confirmed in advance",
            )
            .await
            {
                Ok(how) => Some((risk.clone(), how)),
                Err(message) => {
                    return Ok(Outcome::Aborted {
                        journal: None,
                        message,
                    });
                }
            }
        }
        None => None,
    };
    // Read-only checks that can stop the run before anything is touched; a refusal leaves no journal
    // to resume, like the gate's.
    let preflight_timeout = settings.timeouts.query.max(Duration::from_secs(60));
    if let Some(outcome) =
        preflight::check(plan, session, start.observation, preflight_timeout).await
    {
        return Ok(outcome);
    }
    let mut applock = match applock::take(session.runbook, &plan.pool, settings.timeouts).await {
        Ok(lock) => lock,
        Err(outcome) => return Ok(outcome),
    };
    if !settings.quiet {
        say!("{}", start.headline);
    }
    for (run, reason) in &start.abandon {
        runs::abandon(run, reason, settings)?;
        if !settings.quiet {
            say!(
                "note: the unfinished {} run {} is not resumed and is closed as abandoned: {reason}",
                run.operation,
                run.id
            );
        }
    }
    let (journal, records) = runs::open_or_create(
        plan,
        start.runbook_sha256,
        start.resume.as_deref(),
        settings,
    )?;
    let journal_path = journal.path().to_owned();
    let run_id = journal.run().to_owned();
    session.set_journal(journal);
    if let Some(lock) = &applock {
        session.record(lock.event.clone())?;
    }
    session.capture("situation", start.situation.clone())?;
    if let Some((risk, how)) = split_brain {
        session.record(Event::Confirmed {
            step: String::new(),
            how: how.to_owned(),
            what: Some("split_brain".to_owned()),
        })?;
        session.capture("split_brain_override", serde_json::json!({ "risk": risk }))?;
    }
    if !settings.quiet {
        let verb = if records.is_empty() {
            "starting"
        } else {
            "resuming"
        };
        say!(
            "pcfail {} of {}: {verb} run {run_id} (journal `{}`)",
            plan.operation.key(),
            plan.pool,
            journal_path.display()
        );
    }
    let progress = progress::Progress::replay(&records);
    for (key, value) in &progress.captured {
        session.remember(key, value.clone());
    }

    if let Some(outcome) = capture::log_shipping(plan, &progress, session, history).await? {
        let reason = match &outcome {
            Outcome::Refused { message } => Some(message.clone()),
            _ => None,
        };
        finish(session, "precondition_failed", reason).await?;
        return Ok(outcome);
    }
    if !progress.operation_confirmed
        && let Err(message) = confirm_operation(plan, &progress, session, start.observation).await?
    {
        finish(session, "aborted", Some(message.clone())).await?;
        return Ok(Outcome::Aborted {
            journal: Some(journal_path),
            message,
        });
    }

    match steps::run(plan, &progress, session, applock.as_mut(), settings.quiet).await {
        Ok(steps) => {
            // The situation the run leaves, for the review (`pcfail report`).
            let known = situation::known_folders(history, &session.runbook.chat_database);
            let host = host_settings(session.runbook, settings.timeouts);
            let observing = Instant::now();
            let after =
                situation::observe(session.runbook, settings.timeouts, &host, session, &known)
                    .await;
            let observed_us = crate::journal::micros_since(observing);
            let assessment = situation::classify(&after);
            session.capture(
                "situation_after",
                serde_json::json!({
                    "observation": after,
                    "assessment": assessment,
                    "observed_us": observed_us,
                }),
            )?;
            finish(session, "completed", None).await?;
            let notes = session
                .captured(crate::action::CHAT_TEST_KEY)
                .and_then(|v| v.get("summary"))
                .and_then(|v| v.as_str())
                .map(|s| vec![format!("check: {s}")])
                .unwrap_or_default();
            Ok(Outcome::Completed {
                run: run_id,
                journal: journal_path,
                steps,
                notes,
                anchor: None,
            })
        }
        Err(stopped) => match stopped.error {
            StepError::Journal(e) => Err(e.into()),
            StepError::Aborted(message) => {
                finish(session, "aborted", Some(message.clone())).await?;
                Ok(Outcome::Aborted {
                    journal: Some(journal_path),
                    message,
                })
            }
            error => {
                finish(session, "failed", Some(error.to_string())).await?;
                Ok(Outcome::StepFailed {
                    journal: journal_path,
                    serving: serving(plan, stopped.number),
                    step: stopped.number,
                    id: stopped.id,
                    error,
                })
            }
        },
    }
}

/// Whether the steps before step `failed` put the pool in service: its state set and then servers made
/// active (the shipped failover sets the active servers before mirroring for exactly this reason, so
/// that a mirroring failure leaves a serving pool without high availability rather than a pool with
/// no active server). Says so, and what is still left to do. With the active servers still to come
/// (Microsoft's order: mirroring first), says that the pool does not serve yet and which step would
/// make it.
fn serving(plan: &Plan, failed: usize) -> Option<String> {
    use crate::action::Action;
    let before = &plan.steps[..failed.saturating_sub(1)];
    let state = before.iter().rev().find_map(|s| match &s.action {
        Action::SetPoolState(p) => Some((s.number, p.state.as_str())),
        _ => None,
    })?;
    let active = before.iter().rev().find_map(|s| match &s.action {
        Action::SetActiveServers(a) => Some((s.number, &a.servers)),
        _ => None,
    });
    let Some(active) = active.filter(|a| !a.1.is_empty() && a.0 > state.0) else {
        let next = plan.steps[failed.saturating_sub(1)..]
            .iter()
            .find_map(|s| match &s.action {
                Action::SetActiveServers(a) if !a.servers.is_empty() => Some((s, a)),
                _ => None,
            })?;
        if next.0.number == failed {
            return Some(format!(
                "the pool does not serve yet: step {} set it {}, but step {} (`{}`), which makes {} active, is the step that failed",
                state.0,
                state.1,
                next.0.number,
                next.0.id,
                next.1.servers.join(", ")
            ));
        }
        // Only high availability stood between the pool and service (Microsoft's order); after any
        // other failure the advice to serve first could skip what the next step waits for.
        let mirroring = plan.steps.get(failed.saturating_sub(1)).is_some_and(|s| {
            matches!(
                s.action,
                Action::MirrorDatabase(_) | Action::InstallMirrorDatabase(_)
            )
        });
        if !mirroring {
            return None;
        }
        return Some(format!(
            "the pool does not serve yet: step {} set it {}, but step {} (`{}`), which makes {} active, comes after the step that failed; to serve first and add high availability later, run that step's command by hand:\n    {}",
            state.0,
            state.1,
            next.0.number,
            next.0.id,
            next.1.servers.join(", "),
            next.1
                .render()
                .iter()
                .filter_map(|c| match c {
                    crate::action::Command::PowerShell { text, .. } => Some(text.as_str()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("\n    ")
        ));
    };
    let left: Vec<String> = plan.steps[failed.saturating_sub(1)..]
        .iter()
        .filter(|s| !matches!(s.action, Action::Pause(_)))
        .map(|s| format!("`{}`", s.id))
        .collect();
    Some(format!(
        "the pool is already serving: step {} set it {} and step {} made {} active, so Persistent Chat accepts connections; still to do: {}",
        state.0,
        state.1,
        active.0,
        active.1.join(", "),
        left.join(", ")
    ))
}

/// The run's closing record, after the host's output (so the journal ends with how the run ended).
async fn finish(
    session: &mut Session<'_>,
    outcome: &str,
    reason: Option<String>,
) -> Result<(), JournalError> {
    session.stop_host().await?;
    session.record(Event::RunFinished {
        outcome: outcome.to_owned(),
        reason,
    })
}

/// Before the first step that changes anything: the data-loss ledger and the point of no return,
/// then the pool's FQDN typed (or `--yes`). Never skipped because a step's effect is already there.
/// `Ok(Err(message))` when the operator did not confirm.
async fn confirm_operation(
    plan: &Plan,
    progress: &progress::Progress,
    session: &mut Session<'_>,
    observation: &situation::Observation,
) -> Result<Result<(), String>, JournalError> {
    let Some(first) = plan.steps.iter().find(|s| !progress.finished(&s.id)) else {
        return Ok(Ok(()));
    };
    let ledger = ledger::build(plan, session, observation).await;
    session.capture("data_loss_ledger", ledger.to_json())?;
    let mut text = format!(
        "\n{} of {}: step {} (`{}`) is the first that changes anything.",
        plan.operation.describe(),
        plan.pool,
        first.number,
        first.id
    );
    if let Some(ponr) = plan.point_of_no_return() {
        let step = &plan.steps[ponr - 1];
        text.push_str(&format!(
            "\nPOINT OF NO RETURN: step {} ({}) cannot be undone by pcfail.",
            step.number, step.id
        ));
    }
    for note in &plan.history_notes {
        text.push_str(&format!("\nnote: {note}"));
    }
    say!("{text}\n{}", ledger.render());
    let prompt_text = format!("Type the pool's FQDN ({}) to continue: ", plan.pool);
    let answer = prompt::confirm(session.answers(), &prompt_text, &plan.pool).await;
    match answer {
        Ok(how) => {
            session.record(Event::Confirmed {
                step: first.id.clone(),
                how: how.to_owned(),
                what: Some("operation".to_owned()),
            })?;
            Ok(Ok(()))
        }
        Err(message) => Ok(Err(message)),
    }
}

/// A file in a folder, as SQL Server names it: `D:\LogShippingCopy` + `x.trn` is
/// `D:\LogShippingCopy\x.trn` whatever platform pcfail runs on; a Unix folder gets `/`.
pub(crate) fn sql_path_join(folder: &str, name: &str) -> String {
    let sep = if folder.contains('\\') && !folder.contains('/') {
        '\\'
    } else {
        '/'
    };
    format!("{}{sep}{name}", folder.trim_end_matches(['\\', '/']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_powershell_host_inherits_no_password_variable() {
        let runbook = crate::runbook::parse_str(
            std::path::Path::new("runbooks/persistent-chat.toml"),
            include_str!("../../runbooks/persistent-chat.toml"),
        )
        .expect("the shipped runbook is valid");
        let timeouts = Timeouts {
            connect: Duration::from_secs(1),
            query: Duration::from_secs(1),
        };
        let host = host_settings(&runbook, timeouts);
        assert_eq!(host.env_remove, ["PCFAIL_DAL_SQL_002_PASSWORD"]);
    }
}
