//! The command line as plain data (clap derive). No defaults that depend on the environment and no
//! behaviour live here: `config` resolves these values, `run` acts on them.
//!

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

    /// Where run journals and the run lock are kept [env: PCFAIL_STATE_DIR] [default: pcfail-state
    /// next to the runbook]
    #[arg(long, global = true, value_name = "PATH")]
    pub state_dir: Option<PathBuf>,

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
    Validate(ValidateArgs),
    /// List the runs in the state directory; with --live, observe the pool and name its situation
    Status(StatusArgs),
    /// Check run journals: their hash chains, record by record
    #[command(subcommand)]
    Journal(JournalCommand),
    /// Write a run's report for the post-incident review (HTML, or Markdown)
    Report(ReportArgs),
    /// Rehearse a whole failover and fail-back of the runbook (--runbook) against a lab of simulated servers
    Drill(DrillArgs),
    /// Run and inspect a lab: simulated SQL Server instances and Management Shell
    #[command(subcommand)]
    Lab(LabCommand),
    /// Print a shell completion script
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// Keep the lab in this folder (default: a temporary folder, removed afterwards)
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Lab seconds per real second while log shipping builds its backlog
    #[arg(long, default_value_t = 600.0, value_name = "N")]
    pub clock_speed: f64,
    /// How many log backups to let the primary take before the disaster
    #[arg(long, default_value_t = 6, value_name = "N")]
    pub backups: usize,
}

#[derive(Debug, PartialEq, Subcommand)]
pub enum LabCommand {
    /// Start a lab (four instances, log shipping running, the shell) and write DIR/runbook.toml
    Up(LabUpArgs),
    /// Show a lab's instances, databases, log shipping, backup files and pool state
    Status {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// The primary data center is lost: the primary and its mirror stop answering
    Disaster {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Refuse connections at once (stopped services) instead of leaving them unanswered
        #[arg(long)]
        refuse: bool,
        /// The log-shipping share is lost with the data center
        #[arg(long)]
        share_lost: bool,
    },
    /// Build a log-shipping backlog at once: the restore job stops, the primary takes log backups
    /// and the copy job copies them (for benchmarks and rehearsing a long outage)
    Backlog {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Log backups copied but not restored
        #[arg(long, value_name = "N")]
        pending: usize,
        /// Older log backups copied and restored first, as a copy folder keeps them for days
        #[arg(long, default_value_t = 0, value_name = "N")]
        applied: usize,
        /// Leave the pending backups in the share, not copied
        #[arg(long)]
        not_copied: bool,
        /// Lab seconds between two log backups (file names have whole seconds)
        #[arg(long, default_value_t = 1, value_name = "S", value_parser = clap::value_parser!(u32).range(1..))]
        spacing_s: u32,
    },
    /// The primary data center is back, its databases rebuilt empty
    RebuildPrimary {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
    /// Stop a lab (its state stays in DIR)
    Down {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
    /// The simulated Management Shell (started by pcfail's PowerShell adapter, not by people)
    #[command(hide = true)]
    Shell {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The PowerShell arguments the adapter passes (-NoProfile ... -EncodedCommand <host script>)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Debug, PartialEq, Args)]
pub struct LabUpArgs {
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Run in this process instead of starting a background lab
    #[arg(long)]
    pub foreground: bool,
    /// Lab seconds per real second
    #[arg(long, default_value_t = 60.0, value_name = "N")]
    pub clock_speed: f64,
    #[arg(long, default_value_t = 5, value_name = "MIN")]
    pub backup_every_min: u32,
    #[arg(long, default_value_t = 15, value_name = "MIN")]
    pub copy_every_min: u32,
    #[arg(long, default_value_t = 15, value_name = "MIN")]
    pub restore_every_min: u32,
    #[arg(long, default_value_t = 200, value_name = "MS")]
    pub tick_ms: u64,
    /// Linux paths only, instead of the Windows drive letters and UNC shares a real site has
    #[arg(long)]
    pub linux_paths: bool,
    /// How the instances treat encryption: `required` (TLS, TDS 7.x or 8.0), `strict` (TDS 8.0
    /// only) or `not_supported` (plaintext)
    #[arg(long, default_value = "required", value_name = "LEVEL", value_parser = pcfail_lab::parse_encryption)]
    pub encryption: pcfail_lab::Encryption,
    /// Bare TCP ports instead of named instances behind SQL Browser
    #[arg(long)]
    pub ports: bool,
    /// The backup instance's log-shipping secondary restores WITH STANDBY (new labs only)
    #[arg(long)]
    pub standby_secondary: bool,
    /// Each SQL Server instance runs under its own service account, so mirroring partners need CONNECT grants (new labs only)
    #[arg(long)]
    pub distinct_service_accounts: bool,
    /// Each instance has only its own data directory, so a restore into another's needs MOVE (new labs only)
    #[arg(long)]
    pub data_paths_per_instance: bool,
    /// Give BACKUP and RESTORE a run time proportional to their size, at N MB per lab second
    #[arg(long, value_name = "N")]
    pub io_mb_per_s: Option<f64>,
    /// Follow another reading of behaviour the reference leaves UNVERIFIED (see docs/lab.md); repeatable
    #[arg(long = "variant", value_name = "NAME=VALUE", value_parser = parse_variant)]
    pub variants: Vec<(String, String)>,
}

/// `--variant NAME=VALUE`; the lab checks the name and the value when it starts.
fn parse_variant(text: &str) -> Result<(String, String), String> {
    pcfail_lab::parse_variant(text)
}

#[derive(Debug, Args)]
pub struct FailoverArgs {
    /// The pool's FQDN; must match the runbook (a guard against the wrong runbook)
    #[arg(long, value_name = "FQDN", required = true)]
    pub pool: String,
    /// Do not ask for confirmation at steps that would ask
    #[arg(long)]
    pub yes: bool,
    /// The primary is reachable: stop chat writes, take a tail-log backup that fences it, and move
    /// with no data loss (the runbook's [planned_failover] steps, then the failover's)
    #[arg(long)]
    pub planned: bool,
    /// Fail over although the primary's mgc answers ONLINE (two writable copies); asks for a typed
    /// confirmation at the terminal
    #[arg(long, conflicts_with = "planned")]
    pub accept_split_brain: bool,
    /// Accept losing the log backups that cannot be had (a gap in the chain, a share lost mid-run)
    /// and recover with what is there
    #[arg(long)]
    pub accept_data_loss: bool,
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
    /// Also connect (read-only) and check every precondition; exit 3 if one fails
    #[arg(long)]
    pub check: bool,
    /// The planned failover (with `failover`): the [planned_failover] steps, then the failover's
    #[arg(long)]
    pub planned: bool,
}

#[derive(Debug, PartialEq, Subcommand)]
pub enum JournalCommand {
    /// Check a run's journal (or every journal with --all) and the audit log: their hash chains, and
    /// the anchors on the backup instance; exit 2 naming the first bad record
    Verify {
        /// The run id (the journal's file name without `.jsonl`)
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        run: Option<String>,
        /// Every journal in the state directory
        #[arg(long)]
        all: bool,
        /// Check the hash chains only, without reading the anchors on the backup instance
        #[arg(long)]
        chain_only: bool,
    },
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run id (the journal's file name without `.jsonl`)
    pub run: String,
    /// Output format
    #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
    pub format: ReportFormat,
    /// Write to this file instead of standard output
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Html,
    Md,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Observe the pool now (read-only): every instance, the share, the pool state; name the
    /// situation and the next command
    #[arg(long)]
    pub live: bool,
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
