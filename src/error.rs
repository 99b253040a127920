//! Why pcfail could not do what was asked, and which exit status that means.
//!
//! These are pcfail's own failures (bad runbook, wrong pool, cannot write output or keep a journal,
//! a lab or drill that failed). A step that fails against a server is an outcome the executor
//! reports, not one of these.

use thiserror::Error;

use crate::exit::Exit;
use crate::runbook::LoadError;

#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Runbook(#[from] LoadError),

    #[error("--pool `{given}` does not match the runbook's pool `{runbook}`")]
    PoolMismatch { given: String, runbook: String },

    #[error(transparent)]
    Exec(#[from] crate::exec::ExecError),

    #[error(transparent)]
    Lab(#[from] pcfail_lab::LabError),

    #[error(transparent)]
    Drill(#[from] crate::drill::DrillError),

    #[error(transparent)]
    LabRunbook(#[from] crate::labrunbook::LabRunbookError),

    #[error(
        "the runbook has no `[planned_failover]` steps, so `--planned` has nothing to run; docs/runbook.md shows the steps a planned failover needs"
    )]
    NoPlannedSteps,

    #[error("cannot read runbook `{path}`: {source}")]
    RunbookBytes {
        path: std::path::PathBuf,
        source: std::io::Error,
    },

    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl Error {
    pub fn exit(&self) -> Exit {
        match self {
            Error::Runbook(_)
            | Error::PoolMismatch { .. }
            | Error::NoPlannedSteps
            | Error::RunbookBytes { .. }
            | Error::LabRunbook(_) => Exit::Usage,
            // The operator's runbook cannot be mapped onto the lab: fix the runbook, as above.
            Error::Drill(crate::drill::DrillError::Runbook(_)) => Exit::Usage,
            // A damaged journal must be looked at by a person before anything runs.
            Error::Exec(crate::exec::ExecError::Damaged { .. }) => Exit::Usage,
            // pcfail could not keep its journal or lock, a lab would not start, a drill failed.
            Error::Exec(_) | Error::Lab(_) | Error::Drill(_) => Exit::StepFailed,
            // A closed pipe (`pcfail plan | head`) is not the plan's fault, but it is not success either.
            Error::Output(_) => Exit::StepFailed,
        }
    }

    /// The text printed on stderr. Runbook diagnostics already carry `path:line:column: error:`.
    pub fn report(&self) -> String {
        match self {
            Error::Runbook(LoadError::Invalid { .. }) => self.to_string(),
            _ => format!("error: {self}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_exit_statuses_and_messages() {
        let cases = [
            (
                Error::PoolMismatch {
                    given: "x.example.com".into(),
                    runbook: "atl-cs-001.litwareinc.com".into(),
                },
                Exit::Usage,
                "error: --pool `x.example.com` does not match the runbook's pool `atl-cs-001.litwareinc.com`",
            ),
            (
                Error::Runbook(LoadError::NotFound {
                    path: "nope.toml".into(),
                }),
                Exit::Usage,
                "error: runbook `nope.toml` not found",
            ),
        ];
        for (error, exit, report) in cases {
            assert_eq!((error.exit(), error.report().as_str()), (exit, report));
        }
    }
}
