//! The second step of argument handling: [`Cli`] (what was typed) resolved against the environment
//! into a [`Config`] (what to do). Pure, so a table of cases tests it.
//!
//! The runbook path comes from `--runbook`, else a non-empty `PCFAIL_RUNBOOK`, else
//! `runbooks/persistent-chat.toml` relative to the working directory. Secrets are not resolved here:
//! passwords stay environment-variable names until a connection needs them.

use std::ffi::OsString;
use std::path::PathBuf;

use clap_complete::Shell;

use crate::cli::{Cli, Command, Format, OperationArg};
use crate::runbook::Operation;

pub const RUNBOOK_ENV: &str = "PCFAIL_RUNBOOK";
pub const DEFAULT_RUNBOOK: &str = "runbooks/persistent-chat.toml";

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    Run {
        operation: Operation,
        pool: Option<String>,
        yes: bool,
    },
    Plan {
        operation: Operation,
        pool: Option<String>,
        format: Format,
    },
    Validate,
    Completions(Shell),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub runbook: PathBuf,
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
                operation: Operation::Failover,
                pool: Some(a.pool),
                yes: a.yes,
            },
            Command::Failback(a) => Task::Run {
                operation: Operation::Failback,
                pool: a.pool,
                yes: a.yes,
            },
            Command::Plan(a) => Task::Plan {
                operation: match a.operation {
                    OperationArg::Failover => Operation::Failover,
                    OperationArg::Failback => Operation::Failback,
                },
                pool: a.pool,
                format: a.format,
            },
            Command::Validate => Task::Validate,
            Command::Completions { shell } => Task::Completions(shell),
        };
        Config {
            runbook,
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
        Config::resolve(cli, |name| {
            assert_eq!(name, RUNBOOK_ENV);
            env_runbook.map(OsString::from)
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
                },
            ),
            (
                &["failback", "--yes"][..],
                Task::Run {
                    operation: Operation::Failback,
                    pool: None,
                    yes: true,
                },
            ),
            (
                &["plan", "failover"][..],
                Task::Plan {
                    operation: Operation::Failover,
                    pool: None,
                    format: Format::Text,
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
            &["-q", "-v", "validate"][..],
            &["plan"][..],
        ];
        for args in cases {
            let parsed = Cli::try_parse_from(std::iter::once("pcfail").chain(args.iter().copied()));
            assert!(parsed.is_err(), "args {args:?} should be refused");
        }
    }
}
