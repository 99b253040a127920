//! The command line as plain data (clap derive). No defaults that depend on the environment and no
//! behaviour live here: `config` resolves these values, `run` acts on them.
//!
//! Subcommands the executor and lab work add (`lab`, `drill`, `status`) slot into [`Command`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::exit;

/// Failover and fail-back of a Skype for Business / Lync Persistent Chat pool between data centers.
#[derive(Debug, Parser)]
#[command(name = "pcfail", version, about, after_help = exit::HELP)]
pub struct Cli {
    /// The runbook [env: PCFAIL_RUNBOOK] [default: runbooks/persistent-chat.toml]
    #[arg(long, global = true, value_name = "PATH")]
    pub runbook: Option<PathBuf>,

    /// More log output on stderr (repeat for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Less output: errors only
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fail the pool over to the backup data center
    Failover(FailoverArgs),
    /// Fail the pool back to the primary data center
    Failback(FailbackArgs),
    /// Print the exact steps of a failover or fail-back without running anything
    Plan(PlanArgs),
    /// Check the runbook and report every problem
    Validate,
    /// Print a shell completion script
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct FailoverArgs {
    /// The pool's FQDN; must match the runbook (a guard against the wrong runbook)
    #[arg(long, value_name = "FQDN", required = true)]
    pub pool: String,
    /// Do not ask for confirmation at steps that would ask
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct FailbackArgs {
    /// The pool's FQDN; if given, must match the runbook
    #[arg(long, value_name = "FQDN")]
    pub pool: Option<String>,
    /// Do not ask for confirmation at steps that would ask
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Which procedure
    pub operation: OperationArg,
    /// The pool's FQDN; if given, must match the runbook
    #[arg(long, value_name = "FQDN")]
    pub pool: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OperationArg {
    Failover,
    Failback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}
