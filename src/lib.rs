//! pcfail: failover and fail-back of a Skype for Business / Lync Persistent Chat pool between data
//! centers, following Microsoft's procedure step by step.
//!
//! Data flows one way:
//!
//! ```text
//! argv -> cli (clap derive, plain data) -> config (resolved paths, env, secrets by reference)
//!      -> runbook::load (TOML -> validated model, every problem with file:line:col)
//!      -> plan (pure function of runbook + operation)
//!           |-> render (text / json to stdout)            `pcfail plan`
//!           '-> situation (observe the pool read-only, name it, gate the operation)
//!                 '-> executor (journal before and after each step) -> adapters (sql via
//!                                                       tiberius, powershell host process)
//!      -> outcome (stdout report, one stderr message) -> exit status
//! ```
//!
//! The plan that `pcfail plan` prints is the very value an executor runs. Everything is in the library
//! so that [`run`] can be tested; `main.rs` only calls it. Errors are printed in one place, [`run`].

/// Writes a line to stderr for the person watching. Unlike `eprintln!` it never panics: a closed
/// stderr (a terminal gone, `2>&-`) must not stop a run half-way; the journal has everything anyway.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod action;
pub(crate) mod anchor;
pub(crate) mod audit;
#[doc(hidden)]
pub mod bench;
pub mod cli;
pub mod config;
pub(crate) mod crash;
pub mod error;
pub mod exit;
pub mod plan;
pub mod quote;
pub mod render;
pub mod runbook;

pub(crate) mod drill;
pub(crate) mod exec;
pub(crate) mod identity;
pub(crate) mod journal;
pub mod labrunbook;
pub(crate) mod lock;
mod operate;
pub(crate) mod powershell;
pub(crate) mod private;
pub(crate) mod report;
pub(crate) mod secret;
mod signals;
pub(crate) mod situation;
pub(crate) mod sql;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Format};
use crate::config::{Config, Task, Verbosity};
use crate::error::Error;
use crate::exit::Exit;
use crate::plan::Plan;
use crate::runbook::Runbook;

/// Runs pcfail with `args` (including the program name) and returns the exit status.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    keep_standard_streams_open();
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help and version on stdout and usage errors on stderr, with its own status.
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Ok
            }
            .into();
        }
    };
    let config = Config::resolve(cli, |name| std::env::var_os(name));
    init_logging(config.verbosity);
    let stdout = std::io::stdout();
    // The one place that prints an error or a failed outcome.
    match execute(&config, &mut stdout.lock()) {
        Ok(Done { exit, message }) => {
            if let Some(message) = message {
                say!("{message}");
            }
            exit.into()
        }
        Err(e) => {
            say!("{}", e.report());
            e.exit().into()
        }
    }
}

/// A process started with a standard stream closed (`2>&-`) would hand that descriptor to the next
/// file pcfail opens, and progress meant for stderr would land in a journal. Descriptors 0 to 2 are
/// filled with /dev/null first, so that cannot happen.
fn keep_standard_streams_open() {
    #[cfg(unix)]
    {
        use std::os::fd::{AsRawFd, IntoRawFd};
        while let Ok(null) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
        {
            if null.as_raw_fd() > 2 {
                break;
            }
            // It took the place of a closed standard stream: keep it open for the whole run.
            let _ = null.into_raw_fd();
        }
    }
}

/// How a command ended: its exit status and, for a refusal or a failure, the message for stderr.
#[derive(Debug, PartialEq, Eq)]
pub struct Done {
    pub exit: Exit,
    pub message: Option<String>,
}

impl From<Exit> for Done {
    fn from(exit: Exit) -> Done {
        Done {
            exit,
            message: None,
        }
    }
}

fn init_logging(verbosity: Verbosity) {
    let level = match verbosity {
        Verbosity::Quiet => tracing::Level::ERROR,
        Verbosity::Normal => tracing::Level::WARN,
        Verbosity::Verbose => tracing::Level::INFO,
        Verbosity::Debug => tracing::Level::DEBUG,
        Verbosity::Trace => tracing::Level::TRACE,
    };
    // tiberius warns on every plaintext connection (the runbook chose the encryption level on purpose)
    // and logs every server error at ERROR level, which pcfail reports itself, once: its own lines
    // show only from -vv on.
    let tiberius = if verbosity >= Verbosity::Debug {
        tracing::level_filters::LevelFilter::from_level(level)
    } else {
        tracing::level_filters::LevelFilter::OFF
    };
    let filter = tracing_subscriber::filter::Targets::new()
        .with_default(level)
        .with_target("tiberius", tiberius);
    // `RUST_LOG`, when set, says what to log instead (the usual `target=level` directives).
    let filter: Box<dyn tracing_subscriber::layer::Filter<_> + Send + Sync> =
        match std::env::var("RUST_LOG")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
        {
            Some(env) => Box::new(env),
            None => Box::new(filter),
        };
    // Colour only for a person at a terminal, and never when NO_COLOR is set (no-color.org): escape
    // codes in a log file or an old Windows console are noise.
    use std::io::IsTerminal as _;
    let ansi = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    // Logs go to stderr so that `pcfail plan > plan.txt` captures only the plan. `try_init` because
    // tests may call `run` more than once in a process.
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(ansi)
                .with_target(false)
                .with_filter(filter),
        )
        .with(sql::messages::layer())
        .try_init();
}

/// Carries out `config`, writing results to `out`.
pub fn execute(config: &Config, out: &mut dyn Write) -> Result<Done, Error> {
    match &config.task {
        Task::Completions(shell) => {
            clap_complete::generate(*shell, &mut Cli::command(), "pcfail", out);
            Ok(Exit::Ok.into())
        }
        Task::Validate {
            format: Format::Json,
        } => validate_json(config, out),
        Task::Validate {
            format: Format::Text,
        } => {
            let runbook = runbook::load(&config.runbook)?;
            runbook.require_supported()?;
            if config.verbosity > Verbosity::Quiet {
                writeln!(
                    out,
                    "{}: ok ({}, {})",
                    config.runbook.display(),
                    count(runbook.failover.steps.len(), "failover step"),
                    count(runbook.failback.steps.len(), "fail-back step")
                )?;
            }
            Ok(Exit::Ok.into())
        }
        Task::Plan {
            operation,
            pool,
            format,
            check,
        } => {
            let runbook = load_for_pool(config, pool.as_deref())?;
            require_procedure(&runbook, *operation)?;
            let plan =
                Plan::build(&runbook, *operation).with_history(&operate::history(config, &runbook));
            tracing::info!(
                steps = plan.steps.len(),
                operation = operation.key(),
                "plan built"
            );
            let text = match format {
                Format::Text => render::text(&plan),
                Format::Json => render::json(&plan),
            };
            if *check {
                // Before the plan is printed: a check that cannot connect has nothing to add to it.
                runbook.require_supported()?;
                return operate::check_plan(config, &runbook, &plan, *format, &text, out);
            }
            out.write_all(text.as_bytes())?;
            Ok(Exit::Ok.into())
        }
        Task::Run {
            operation,
            pool,
            yes,
            accept_split_brain,
            accept_data_loss,
        } => {
            let runbook = load_for_pool(config, pool.as_deref())?;
            require_procedure(&runbook, *operation)?;
            runbook.require_supported()?;
            let options = operate::RunOptions {
                yes: *yes,
                accept_split_brain: *accept_split_brain,
                accept_data_loss: *accept_data_loss,
            };
            operate::run_operation(config, &runbook, *operation, options, out)
        }
        Task::Report {
            run,
            format,
            output,
        } => operate::report(config, run, *format, output.as_deref(), out),
        Task::VerifyJournal { run, chain_only } => {
            operate::verify_journals(config, run.as_deref(), *chain_only, out)
        }
        Task::Status { live, format } => {
            if *live {
                let runbook = runbook::load(&config.runbook)?;
                runbook.require_supported()?;
                operate::status_live(config, &runbook, *format, out)
            } else {
                operate::status(config, *format, out)
            }
        }
        Task::Drill {
            dir,
            clock_speed,
            backups,
        } => operate::drill(config, dir.as_deref(), *clock_speed, *backups, out).map(Done::from),
        Task::Lab(command) => operate::lab(config, command, out).map(Done::from),
    }
}

/// `pcfail validate --format json`: one JSON document on stdout whatever the outcome (docs/json.md);
/// exit 2 when the runbook has problems, as in text.
fn validate_json(config: &Config, out: &mut dyn Write) -> Result<Done, Error> {
    // A setting this build cannot carry out is a located problem here too, as in the text form.
    let loaded = runbook::load(&config.runbook).and_then(|runbook| {
        runbook.require_supported()?;
        Ok(runbook)
    });
    let (value, exit) = match loaded {
        Ok(runbook) => (
            serde_json::json!({
                "format_version": 1,
                "runbook": config.runbook,
                "ok": true,
                "failover_steps": runbook.failover.steps.len(),
                "planned_failover_steps": runbook.planned_failover.as_ref().map(|p| p.steps.len()),
                "failback_steps": runbook.failback.steps.len(),
                "diagnostics": [],
            }),
            Exit::Ok,
        ),
        Err(runbook::LoadError::Invalid { diagnostics }) => (
            serde_json::json!({
                "format_version": 1,
                "runbook": config.runbook,
                "ok": false,
                "diagnostics": diagnostics.iter().map(|d| serde_json::json!({
                    "file": d.file,
                    "line": d.line,
                    "column": d.column,
                    "message": d.message,
                })).collect::<Vec<_>>(),
            }),
            Exit::Usage,
        ),
        Err(other) => (
            serde_json::json!({
                "format_version": 1,
                "runbook": config.runbook,
                "ok": false,
                "error": other.to_string(),
                "diagnostics": [],
            }),
            Exit::Usage,
        ),
    };
    let mut text = serde_json::to_string_pretty(&value).expect("JSON values serialize");
    text.push('\n');
    out.write_all(text.as_bytes())?;
    Ok(exit.into())
}

/// A planned failover needs the runbook's `[planned_failover]` steps.
fn require_procedure(runbook: &Runbook, operation: runbook::Operation) -> Result<(), Error> {
    if runbook.procedure(operation).is_none() {
        return Err(Error::NoPlannedSteps);
    }
    Ok(())
}

/// Loads the runbook and, if the operator named a pool, checks it is this runbook's pool.
fn load_for_pool(config: &Config, pool: Option<&str>) -> Result<Runbook, Error> {
    let runbook = runbook::load(&config.runbook)?;
    if let Some(given) = pool {
        // DNS names compare case-insensitively; a trailing dot is the same name.
        let norm = |s: &str| s.trim_end_matches('.').to_ascii_lowercase();
        if norm(given) != norm(&runbook.pool.fqdn) {
            return Err(Error::PoolMismatch {
                given: given.to_owned(),
                runbook: runbook.pool.fqdn.clone(),
            });
        }
    }
    Ok(runbook)
}

/// "1 step", "2 steps".
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
