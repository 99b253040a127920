//! The second step of argument handling: [`Cli`] (what was typed) resolved against the environment
//! into a [`Config`] (what to do). Pure, so a table of cases tests it.
//!
//! The runbook path comes from `--runbook`, else a non-empty `PCFAIL_RUNBOOK`, else
//! `runbooks/persistent-chat.toml` relative to the working directory. Secrets are not resolved here:
//! passwords stay environment-variable names until a connection needs them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap_complete::Shell;

use crate::cli::{Cli, Command, Format, JournalCommand, LabCommand, OperationArg, ReportFormat};
use crate::runbook::Operation;

pub const RUNBOOK_ENV: &str = "PCFAIL_RUNBOOK";
pub const DEFAULT_RUNBOOK: &str = "runbooks/persistent-chat.toml";
pub const STATE_DIR_ENV: &str = "PCFAIL_STATE_DIR";

/// How much pcfail logs to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
    Debug,
    Trace,
}

/// What to do.
#[derive(Debug, PartialEq)]
pub enum Task {
    Run {
        operation: Operation,
        pool: Option<String>,
        yes: bool,
        accept_split_brain: bool,
        accept_data_loss: bool,
    },
    Plan {
        operation: Operation,
        pool: Option<String>,
        format: Format,
        /// Also check every precondition, read-only.
        check: bool,
    },
    Validate {
        format: Format,
    },
    Completions(Shell),
    Status {
        live: bool,
        format: Format,
    },
    Report {
        run: String,
        format: ReportFormat,
        output: Option<PathBuf>,
    },
    /// `journal verify`: one run, or every run when `None`.
    VerifyJournal {
        run: Option<String>,
        chain_only: bool,
    },
    Drill {
        dir: Option<PathBuf>,
        clock_speed: f64,
        backups: usize,
    },
    Lab(LabCommand),
}

#[derive(Debug, PartialEq)]
pub struct Config {
    pub runbook: PathBuf,
    /// Journals and the run lock: `--state-dir`, else `PCFAIL_STATE_DIR`, else `pcfail-state` next
    /// to the runbook (so a runbook and the record of running it stay together).
    pub state_dir: PathBuf,
    pub verbosity: Verbosity,
    pub task: Task,
}

impl Config {
    /// Resolves `cli`; `env` looks up an environment variable (injected so tests need no real env).
    pub fn resolve(cli: Cli, env: impl Fn(&str) -> Option<OsString>) -> Config {
        let runbook = cli
            .runbook
            .or_else(|| {
                env(RUNBOOK_ENV)
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| PathBuf::from(DEFAULT_RUNBOOK));
        let verbosity = match (cli.quiet, cli.verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, 1) => Verbosity::Verbose,
            (false, 2) => Verbosity::Debug,
            (false, _) => Verbosity::Trace,
        };
        let task = match cli.command {
            Command::Failover(a) => Task::Run {
                operation: if a.planned {
                    Operation::PlannedFailover
                } else {
                    Operation::Failover
                },
                pool: Some(a.pool),
                yes: a.yes,
                accept_split_brain: a.accept_split_brain,
                accept_data_loss: a.accept_data_loss,
            },
            Command::Failback(a) => Task::Run {
                operation: Operation::Failback,
                pool: a.pool,
                yes: a.yes,
                accept_split_brain: false,
                accept_data_loss: false,
            },
            Command::Plan(a) => Task::Plan {
                operation: match (a.operation, a.planned) {
                    (OperationArg::Failover, false) => Operation::Failover,
                    (OperationArg::Failover, true) => Operation::PlannedFailover,
                    (OperationArg::Failback, _) => Operation::Failback,
                },
                pool: a.pool,
                format: a.format,
                check: a.check,
            },
            Command::Validate(a) => Task::Validate { format: a.format },
            Command::Completions { shell } => Task::Completions(shell),
            Command::Journal(JournalCommand::Verify {
                run, chain_only, ..
            }) => Task::VerifyJournal { run, chain_only },
            Command::Report(a) => Task::Report {
                run: a.run,
                format: a.format,
                output: a.output,
            },
            Command::Status(a) => Task::Status {
                live: a.live,
                format: a.format,
            },
            Command::Drill(a) => Task::Drill {
                dir: a.dir,
                clock_speed: a.clock_speed,
                backups: a.backups,
            },
            Command::Lab(lab) => Task::Lab(lab),
        };
        let state_dir = cli
            .state_dir
            .or_else(|| {
                env(STATE_DIR_ENV)
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| {
                runbook
                    .parent()
                    .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
                    .join("pcfail-state")
            });
        Config {
            runbook,
            state_dir,
            verbosity,
            task,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn resolve(args: &[&str], env_runbook: Option<&str>) -> Config {
        let cli = Cli::try_parse_from(std::iter::once("pcfail").chain(args.iter().copied()))
            .expect("valid arguments");
        Config::resolve(cli, |name| match name {
            RUNBOOK_ENV => env_runbook.map(OsString::from),
            STATE_DIR_ENV => None,
            other => panic!("unexpected environment variable {other}"),
        })
    }

    #[test]
    fn runbook_path_comes_from_flag_then_env_then_default() {
        let cases = [
            (&["validate"][..], None, DEFAULT_RUNBOOK),
            (&["validate"][..], Some(""), DEFAULT_RUNBOOK),
            (&["validate"][..], Some("/etc/pc.toml"), "/etc/pc.toml"),
            (
                &["validate", "--runbook", "x.toml"][..],
                Some("/etc/pc.toml"),
                "x.toml",
            ),
            (&["--runbook", "y.toml", "validate"][..], None, "y.toml"),
        ];
        for (args, env, expected) in cases {
            assert_eq!(
                resolve(args, env).runbook,
                PathBuf::from(expected),
                "args {args:?} env {env:?}"
            );
        }
    }

    #[test]
    fn state_dir_comes_from_flag_then_env_then_next_to_the_runbook() {
        let resolve_state = |args: &[&str], env_state: Option<&str>| {
            let cli = Cli::try_parse_from(std::iter::once("pcfail").chain(args.iter().copied()))
                .expect("valid arguments");
            Config::resolve(cli, |name| match name {
                STATE_DIR_ENV => env_state.map(OsString::from),
                _ => None,
            })
            .state_dir
        };
        let cases = [
            (&["status"][..], None, "runbooks/pcfail-state"),
            (
                &["status", "--runbook", "pc.toml"][..],
                None,
                "pcfail-state",
            ),
            (
                &["status", "--runbook", "/etc/pc/pc.toml"][..],
                None,
                "/etc/pc/pcfail-state",
            ),
            (&["status"][..], Some("/var/lib/pcfail"), "/var/lib/pcfail"),
            (
                &["status", "--state-dir", "s"][..],
                Some("/var/lib/pcfail"),
                "s",
            ),
        ];
        for (args, env, expected) in cases {
            assert_eq!(
                resolve_state(args, env),
                PathBuf::from(expected),
                "args {args:?} env {env:?}"
            );
        }
    }

    #[test]
    fn verbosity_follows_v_and_q() {
        let cases = [
            (&["validate"][..], Verbosity::Normal),
            (&["-v", "validate"][..], Verbosity::Verbose),
            (&["-vv", "validate"][..], Verbosity::Debug),
            (&["validate", "-vvvv"][..], Verbosity::Trace),
            (&["-q", "validate"][..], Verbosity::Quiet),
        ];
        for (args, expected) in cases {
            assert_eq!(resolve(args, None).verbosity, expected, "args {args:?}");
        }
    }

    #[test]
    fn subcommands_become_tasks() {
        let cases = [
            (
                &["failover", "--pool", "atl-cs-001.litwareinc.com"][..],
                Task::Run {
                    operation: Operation::Failover,
                    pool: Some("atl-cs-001.litwareinc.com".into()),
                    yes: false,
                    accept_split_brain: false,
                    accept_data_loss: false,
                },
            ),
            (
                &[
                    "failover",
                    "--planned",
                    "--pool",
                    "p.example.com",
                    "--accept-data-loss",
                ][..],
                Task::Run {
                    operation: Operation::PlannedFailover,
                    pool: Some("p.example.com".into()),
                    yes: false,
                    accept_split_brain: false,
                    accept_data_loss: true,
                },
            ),
            (
                &["failback", "--yes"][..],
                Task::Run {
                    operation: Operation::Failback,
                    pool: None,
                    yes: true,
                    accept_split_brain: false,
                    accept_data_loss: false,
                },
            ),
            (
                &["plan", "failover", "--planned"][..],
                Task::Plan {
                    operation: Operation::PlannedFailover,
                    pool: None,
                    format: Format::Text,
                    check: false,
                },
            ),
            (
                &["status", "--live", "--format", "json"][..],
                Task::Status {
                    live: true,
                    format: Format::Json,
                },
            ),
            (
                &["plan", "failover"][..],
                Task::Plan {
                    operation: Operation::Failover,
                    pool: None,
                    format: Format::Text,
                    check: false,
                },
            ),
            (
                &[
                    "plan",
                    "failback",
                    "--format",
                    "json",
                    "--pool",
                    "p.example.com",
                ][..],
                Task::Plan {
                    operation: Operation::Failback,
                    pool: Some("p.example.com".into()),
                    format: Format::Json,
                    check: false,
                },
            ),
            (&["completions", "bash"][..], Task::Completions(Shell::Bash)),
        ];
        for (args, expected) in cases {
            assert_eq!(resolve(args, None).task, expected, "args {args:?}");
        }
    }

    #[test]
    fn failover_requires_the_pool_and_q_excludes_v() {
        let cases = [
            &["failover"][..],
            &[
                "failover",
                "--pool",
                "p",
                "--planned",
                "--accept-split-brain",
            ][..],
            &["-q", "-v", "validate"][..],
            &["plan"][..],
        ];
        for args in cases {
            let parsed = Cli::try_parse_from(std::iter::once("pcfail").chain(args.iter().copied()));
            assert!(parsed.is_err(), "args {args:?} should be refused");
        }
    }
}
