//! How a run ended, as one value: the executor returns it, `operate` prints it, `run` exits with its
//! status. A failed step is an outcome (journaled and reported), not an error: `ExecError` is kept for
//! pcfail itself failing (its journal, its lock).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use super::session::StepError;
use crate::exit::Exit;
use crate::runbook::Operation;

/// What happened to one step, for the report.
#[derive(Clone, Debug)]
pub(crate) struct StepReport {
    pub number: usize,
    pub id: String,
    pub status: &'static str,
    pub duration: Duration,
}

#[derive(Debug)]
pub(crate) enum Outcome {
    Completed {
        run: String,
        journal: PathBuf,
        steps: Vec<StepReport>,
        /// Findings for the operator after the step table (the synthetic chat test's result).
        notes: Vec<String>,
        /// Where the journal's tip was recorded outside this host, for the incident ticket.
        anchor: Option<String>,
    },
    /// The operation's end state is already there; nothing was sent that changes anything.
    NothingToDo { message: String },
    StepFailed {
        journal: PathBuf,
        step: usize,
        id: String,
        error: StepError,
        /// When the steps before the failed one already put the pool in service (its state and its
        /// active servers set), what that means for the operator.
        serving: Option<String>,
    },
    /// The operator said no (or could not be asked).
    Aborted {
        journal: Option<PathBuf>,
        message: String,
    },
    /// The situation does not call for the operation, or something the run needs is not there:
    /// nothing was done.
    Refused { message: String },
    /// The unfinished run cannot be resumed with this runbook.
    RunbookChanged { message: String },
    /// Another run holds a lock.
    Locked { message: String },
}

/// What to print: the report on stdout, the error on stderr, and the exit status.
pub(crate) struct Rendered {
    pub stdout: String,
    pub stderr: Option<String>,
    pub exit: Exit,
}

impl Outcome {
    pub(crate) fn render(&self, operation: Operation, pool: &str) -> Rendered {
        match self {
            Outcome::Completed {
                run,
                journal,
                steps,
                notes,
                anchor,
            } => {
                let mut out = format!("{} of {pool} completed (run {run})\n", operation.key());
                for step in steps {
                    let _ = writeln!(
                        out,
                        "  {:>2}. {:<28} {:<18} {:>7.1}s",
                        step.number,
                        step.id,
                        step.status,
                        step.duration.as_secs_f64()
                    );
                }
                for note in notes {
                    let _ = writeln!(out, "{note}");
                }
                let _ = writeln!(out, "journal: {}", journal.display());
                if let Some(anchor) = anchor {
                    let _ = writeln!(out, "{anchor}");
                }
                if operation.direction() == Operation::Failover {
                    out.push_str("note: mgccomp (compliance) was not failed over; its contents are transient (Microsoft's procedure).\n");
                }
                Rendered {
                    stdout: out,
                    stderr: None,
                    exit: Exit::Ok,
                }
            }
            Outcome::NothingToDo { message } => Rendered {
                stdout: format!("{message}\n"),
                stderr: None,
                exit: Exit::Ok,
            },
            Outcome::StepFailed {
                journal,
                step,
                id,
                error,
                serving,
            } => {
                let mut err = format!("error: step {step} (`{id}`) failed: {error}");
                if let Some(serving) = serving {
                    let _ = write!(err, "\n{serving}");
                }
                if let StepError::Host(h) | StepError::HostStopped { host: h, .. } = error {
                    let tail = h.stderr_tail();
                    if !tail.is_empty() {
                        err.push_str("\n--- PowerShell stderr (last lines) ---");
                        for line in tail {
                            err.push('\n');
                            err.push_str(line);
                        }
                        err.push_str("\n---");
                    }
                }
                let _ = write!(
                    err,
                    "\nthe run stopped before anything else was done; fix the cause and run the same command again to resume at this step (journal: {})",
                    journal.display()
                );
                Rendered {
                    stdout: String::new(),
                    stderr: Some(err),
                    exit: Exit::StepFailed,
                }
            }
            Outcome::Aborted { journal, message } => Rendered {
                stdout: String::new(),
                stderr: Some(match journal {
                    Some(j) => format!(
                        "aborted: {message}; nothing more was done (journal: {})",
                        j.display()
                    ),
                    None => format!("aborted: {message}; nothing was done"),
                }),
                exit: Exit::Aborted,
            },
            Outcome::Refused { message } => Rendered {
                stdout: String::new(),
                stderr: Some(format!("error: {message}")),
                exit: Exit::PreconditionFailed,
            },
            Outcome::RunbookChanged { message } => Rendered {
                stdout: String::new(),
                stderr: Some(format!("error: {message}")),
                exit: Exit::Usage,
            },
            Outcome::Locked { message } => Rendered {
                stdout: String::new(),
                stderr: Some(format!("error: {message}")),
                exit: Exit::Locked,
            },
        }
    }
}
