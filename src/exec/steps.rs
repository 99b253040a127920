//! The step loop: for each step, skip it if the journal says it finished; otherwise journal that it
//! starts, ask the action whether its effect is already there, ask the operator where the plan says
//! so, run it, verify its postcondition, and journal the outcome.

use std::time::{Duration, Instant};

use super::applock::AppLock;
use super::outcome::StepReport;
use super::progress::Progress;
use super::session::{Session, StepError};
use crate::action::Action;
use crate::exec::probe;
use crate::journal::Event;
use crate::plan::{Plan, PlannedStep};
use crate::runbook::Role;

/// A step that did not complete: its number, id and why.
pub(crate) struct Stopped {
    pub number: usize,
    pub id: String,
    pub error: StepError,
}

pub(crate) async fn run(
    plan: &Plan,
    progress: &Progress,
    session: &mut Session<'_>,
    mut lock: Option<&mut AppLock>,
    quiet: bool,
) -> Result<Vec<StepReport>, Stopped> {
    let total = plan.steps.len();
    let mut reports = Vec::new();
    for (index, step) in plan.steps.iter().enumerate() {
        let say = |status: &str| {
            if !quiet {
                say!(
                    "[{}/{total}] {} — {}{status}",
                    step.number,
                    step.id,
                    step.description
                );
            }
        };
        if progress.finished(&step.id) && !stale(plan, index, progress) {
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
        if let Some(lock) = lock.as_mut()
            && let Err(lost) = lock.confirm().await
        {
            return Err(Stopped {
                number: step.number,
                id: step.id.clone(),
                error: StepError::Failed(lost),
            });
        }
        let started = Instant::now();
        session.set_step(&step.id, step.timeout, progress.started.contains(&step.id));
        let stop = |error: StepError| Stopped {
            number: step.number,
            id: step.id.clone(),
            error,
        };
        session
            .record(Event::StepStarted {
                step: step.id.clone(),
                number: step.number,
            })
            .map_err(|e| stop(e.into()))?;
        let result = run_one(step, progress, session).await;
        let status = match (&result, step.action.unverifiable()) {
            (Ok(true), _) => "already done",
            (Ok(false), None) => "done",
            (Ok(false), Some(_)) => "done, not verified",
            (Err(_), _) => "failed",
        };
        let message = match (&result, step.action.unverifiable()) {
            (Err(e), _) => Some(e.to_string()),
            (Ok(false), Some(why)) => Some(format!("not verified: {why}")),
            _ => None,
        };
        if let Ok(true) = result {
            session
                .record(Event::StepSkipped {
                    step: step.id.clone(),
                    reason: "its effect was already in place".to_owned(),
                })
                .map_err(|e| stop(e.into()))?;
        }
        session
            .record(Event::StepFinished {
                step: step.id.clone(),
                ok: result.is_ok(),
                message,
            })
            .map_err(|e| stop(e.into()))?;
        let duration = started.elapsed();
        result.map_err(stop)?;
        if !quiet {
            match (status, step.action.unverifiable()) {
                ("done, not verified", Some(why)) => say!(
                    "      done in {:.1}s, not verified: {why}",
                    duration.as_secs_f64()
                ),
                _ => say!("      {status} in {:.1}s", duration.as_secs_f64()),
            }
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

/// A finished step whose result describes a moment (a full backup) is taken again when the step that
/// uses it (the next one that is not a pause) has not finished: the database may have changed since.
fn stale(plan: &Plan, index: usize, progress: &Progress) -> bool {
    plan.steps[index].action.perishable()
        && plan.steps[index + 1..]
            .iter()
            .find(|later| !matches!(later.action, Action::Pause(_)))
            .is_some_and(|user| !progress.finished(&user.id))
}

/// Runs one step; `Ok(true)` when its effect was already there.
async fn run_one(
    step: &PlannedStep,
    progress: &Progress,
    session: &mut Session<'_>,
) -> Result<bool, StepError> {
    for (role, db) in step.action.busy_with() {
        wait_until_idle(session, role, db).await?;
    }
    if step.action.check_done(session).await? {
        return Ok(true);
    }
    if step.confirm
        && !matches!(step.action, Action::Pause(_))
        && !progress.confirmed.contains(&step.id)
    {
        session
            .confirm_continue(&format!(
                "Step {} ({}) asks for confirmation: {}",
                step.number, step.id, step.description
            ))
            .await?;
    }
    step.action.run(session).await?;
    step.action.verify(session).await?;
    Ok(false)
}

/// Waits, within the step's time, until no other session runs a BACKUP or RESTORE on `db`.
async fn wait_until_idle(session: &mut Session<'_>, role: Role, db: &str) -> Result<(), StepError> {
    let mut said = false;
    loop {
        let running = probe::running_backups(session, role, db).await?;
        let Some(request) = running.first() else {
            return Ok(());
        };
        let what = format!(
            "`{}` of `{db}` by session {} on `{role}` ({:.0}% done)",
            request.command, request.session_id, request.percent_complete
        );
        if session.step_timeout() <= Duration::from_secs(1) {
            return Err(StepError::Failed(format!(
                "{what} is still running; the step's time ran out waiting for it. Run the same command again when it has finished"
            )));
        }
        if !said {
            session.progress(&format!("waiting for {what} to finish before going on"));
            said = true;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
