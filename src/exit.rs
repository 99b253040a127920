//! pcfail's exit statuses: one enum, documented once, shown in `--help` and the README.
//!
//! Scripts and schedulers branch on these numbers, so they never change meaning. This module does not
//! decide which status a run ends with; `run` does.

use std::process::ExitCode;

/// Why pcfail exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Everything asked for was done.
    Ok = 0,
    /// A step failed; the journal says which and why.
    StepFailed = 1,
    /// Bad command line or runbook: nothing was done.
    Usage = 2,
    /// A check before a step found the world not as the step needs it: nothing more was done.
    PreconditionFailed = 3,
    /// The operator answered no at a confirmation.
    Aborted = 4,
    /// Another pcfail run holds the lock for this pool.
    Locked = 5,
    /// Interrupted (Ctrl-C); the journal says where to resume. 128 + SIGINT, as shells report it.
    Interrupted = 130,
}

impl Exit {
    pub const ALL: [Exit; 7] = [
        Exit::Ok,
        Exit::StepFailed,
        Exit::Usage,
        Exit::PreconditionFailed,
        Exit::Aborted,
        Exit::Locked,
        Exit::Interrupted,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Ok => "success",
            Exit::StepFailed => "a step failed",
            Exit::Usage => "usage or runbook error",
            Exit::PreconditionFailed => "a precondition check failed",
            Exit::Aborted => "aborted by the operator",
            Exit::Locked => "another run holds the lock",
            Exit::Interrupted => "interrupted",
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

/// The `--help` section; a test keeps it equal to what [`Exit::ALL`] says.
pub const HELP: &str = "\
Exit status:
    0    success
    1    a step failed
    2    usage or runbook error
    3    a precondition check failed
    4    aborted by the operator
    5    another run holds the lock
  130    interrupted";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_keep_their_documented_numbers() {
        let cases = [
            (Exit::Ok, 0),
            (Exit::StepFailed, 1),
            (Exit::Usage, 2),
            (Exit::PreconditionFailed, 3),
            (Exit::Aborted, 4),
            (Exit::Locked, 5),
            (Exit::Interrupted, 130),
        ];
        for (exit, code) in cases {
            assert_eq!(exit.code(), code, "{exit:?}");
        }
    }

    #[test]
    fn help_lists_every_exit_code_with_its_meaning() {
        let mut expected = String::from("Exit status:");
        for exit in Exit::ALL {
            expected.push_str(&format!("\n{:>5}    {}", exit.code(), exit.meaning()));
        }
        assert_eq!(HELP, expected);
    }
}
