//! The commands that reach outside the process: running a plan, checking preconditions, listing
//! runs, the lab and the drill. Each turns its outcome into text and an exit status here, so `run`
//! stays the one place that prints errors.
//!
//! Every async command gets its own tokio runtime: pcfail does one thing per invocation, and a plain
//! `plan` or `validate` must not start threads it does not need.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use crate::cli::{Format, LabCommand, LabUpArgs};
use crate::config::{Config, Verbosity};
use crate::drill::{self, DrillOptions};
use crate::error::Error;
use crate::exec::{self, Answers, RunOutcome, RunSettings, Timeouts, check};
use crate::exit::Exit;
use crate::journal::{Event, sha256_hex};
use crate::plan::Plan;
use crate::runbook::{Operation, Runbook};

/// Connection and read timeouts for runs and checks. Step timeouts come from the runbook.
const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(15),
    query: Duration::from_secs(60),
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
}

/// `pcfail failover` / `pcfail failback`.
pub(crate) fn run_operation(
    config: &Config,
    runbook: &Runbook,
    operation: Operation,
    yes: bool,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    let bytes = std::fs::read(&config.runbook).map_err(|source| Error::RunbookBytes {
        path: config.runbook.clone(),
        source,
    })?;
    let plan = Plan::build(runbook, operation);
    let settings = RunSettings {
        state_dir: config.state_dir.clone(),
        answers: if yes { Answers::Yes } else { Answers::Ask },
        quiet: config.verbosity == Verbosity::Quiet,
        timeouts: TIMEOUTS,
        operator: operator(),
        host: host_name(),
    };
    let digest = sha256_hex(&bytes);
    let rt = runtime();
    let outcome = rt.block_on(async {
        tokio::select! {
            outcome = exec::run(runbook, &digest, &plan, &settings) => Some(outcome),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    let Some(outcome) = outcome else {
        eprintln!(
            "interrupted: the journal records where the run stopped; run the same command again to resume (the step that was running is examined again first)"
        );
        return Ok(Exit::Interrupted);
    };
    Ok(match outcome? {
        RunOutcome::Completed {
            run,
            journal,
            steps,
        } => {
            writeln!(
                out,
                "{} of {} completed (run {run})",
                operation.key(),
                plan.pool
            )?;
            for step in steps {
                writeln!(
                    out,
                    "  {:>2}. {:<28} {:<13} {:>7.1}s",
                    step.number,
                    step.id,
                    step.status,
                    step.duration.as_secs_f64()
                )?;
            }
            writeln!(out, "journal: {}", journal.display())?;
            if operation == Operation::Failover {
                writeln!(
                    out,
                    "note: mgccomp (compliance) was not failed over; its contents are transient (Microsoft's procedure)."
                )?;
            }
            Exit::Ok
        }
        RunOutcome::StepFailed {
            journal,
            step,
            id,
            error,
        } => {
            eprintln!("error: step {step} (`{id}`) failed: {error}");
            let tail = match &error {
                exec::StepError::Host(h) => h.stderr_tail().to_vec(),
                _ => Vec::new(),
            };
            if !tail.is_empty() {
                eprintln!("--- PowerShell stderr (last lines) ---");
                for line in tail {
                    eprintln!("{line}");
                }
                eprintln!("---");
            }
            eprintln!(
                "the run stopped before anything else was done; fix the cause and run the same command again to resume at this step (journal: {})",
                journal.display()
            );
            Exit::StepFailed
        }
        RunOutcome::Aborted { journal, message } => {
            eprintln!(
                "aborted: {message}; nothing more was done (journal: {})",
                journal.display()
            );
            Exit::Aborted
        }
        RunOutcome::Precondition { message } => {
            eprintln!("error: {message}");
            Exit::PreconditionFailed
        }
        RunOutcome::Locked { message } => {
            eprintln!("error: {message}");
            Exit::Locked
        }
        RunOutcome::Refused { message } => {
            eprintln!("error: {message}");
            Exit::Usage
        }
    })
}

/// `pcfail plan ... --check`: the pass/fail table on stdout.
pub(crate) fn check_plan(
    runbook: &Runbook,
    plan: &Plan,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    let rows = runtime().block_on(check::preflight(runbook, plan, TIMEOUTS));
    writeln!(out, "\nPrecondition checks (read-only):")?;
    out.write_all(check::render(&rows).as_bytes())?;
    Ok(if rows.iter().all(|r| r.ok) {
        Exit::Ok
    } else {
        Exit::PreconditionFailed
    })
}

/// `pcfail status`: every run in the state directory and where it stands.
pub(crate) fn status(config: &Config, out: &mut dyn Write) -> Result<Exit, Error> {
    let runs = exec::list_runs(&config.state_dir.join("runs"))?;
    if runs.is_empty() {
        writeln!(out, "no runs in `{}`", config.state_dir.display())?;
        return Ok(Exit::Ok);
    }
    for (path, records) in runs {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(Event::RunStarted {
            operation,
            pool,
            operator,
            ..
        }) = records.first().map(|r| &r.event)
        else {
            writeln!(
                out,
                "{name}: the journal is damaged or empty; see `{}`",
                path.display()
            )?;
            continue;
        };
        let outcome = records.iter().rev().find_map(|r| match &r.event {
            Event::RunFinished { outcome } => Some(outcome.as_str()),
            Event::RunResumed { .. } | Event::StepStarted { .. } => Some("unfinished"),
            _ => None,
        });
        let last_step = records.iter().rev().find_map(|r| match &r.event {
            Event::StepFinished { step, ok, .. } => {
                Some(format!("{step} ({})", if *ok { "done" } else { "failed" }))
            }
            Event::StepStarted { step, .. } => Some(format!("{step} (started, not finished)")),
            _ => None,
        });
        writeln!(
            out,
            "{name}: {operation} of {pool} by {operator}: {}; last step: {}",
            outcome.unwrap_or("unfinished"),
            last_step.as_deref().unwrap_or("none")
        )?;
    }
    Ok(Exit::Ok)
}

/// `pcfail drill`.
pub(crate) fn drill(
    dir: Option<&Path>,
    clock_speed: f64,
    backups: usize,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    let options = DrillOptions {
        dir: dir.map(Path::to_path_buf),
        clock_speed,
        backups_before_disaster: backups,
    };
    let report = runtime().block_on(drill::drill(&options))?;
    out.write_all(report.as_bytes())?;
    Ok(Exit::Ok)
}

/// `pcfail lab ...`.
pub(crate) fn lab(command: &LabCommand, out: &mut dyn Write) -> Result<Exit, Error> {
    match command {
        LabCommand::Up(args) => lab_up(args, out),
        LabCommand::Status { dir, format } => {
            let status = pcfail_lab::status(dir)?;
            match format {
                Format::Text => out.write_all(status.render_text().as_bytes())?,
                Format::Json => {
                    let mut text =
                        serde_json::to_string_pretty(&status).expect("a lab status serializes");
                    text.push('\n');
                    out.write_all(text.as_bytes())?;
                }
            }
            Ok(Exit::Ok)
        }
        LabCommand::Disaster {
            dir,
            refuse,
            share_lost,
        } => {
            let how = pcfail_lab::Disaster {
                silent: !refuse,
                share_lost: *share_lost,
            };
            pcfail_lab::disaster_with(dir, how)?;
            let answer = if *refuse {
                "refuse connections"
            } else {
                "no longer answer"
            };
            let share = if *share_lost {
                ", and the log-shipping share is gone"
            } else {
                ""
            };
            writeln!(
                out,
                "the primary data center in `{}` is lost: the primary and its mirror {answer}{share}",
                dir.display()
            )?;
            Ok(Exit::Ok)
        }
        LabCommand::RebuildPrimary { dir } => {
            pcfail_lab::rebuild_primary(dir)?;
            writeln!(
                out,
                "the primary data center in `{}` is back, its databases rebuilt empty",
                dir.display()
            )?;
            Ok(Exit::Ok)
        }
        LabCommand::Down { dir } => {
            pcfail_lab::down(dir)?;
            writeln!(
                out,
                "the lab in `{}` is stopped; its state stays there",
                dir.display()
            )?;
            Ok(Exit::Ok)
        }
        LabCommand::Shell { dir, args } => {
            let stdin = std::io::stdin();
            let stdout = std::io::stdout();
            let stderr = std::io::stderr();
            let code = pcfail_lab_shell::run(dir, args, stdin.lock(), stdout.lock(), stderr.lock());
            // The shell's own exit codes (64 for a bad command line, 1 for a simulated crash) are
            // PowerShell's, not pcfail's; and a simulated crash must end the process at once.
            std::process::exit(code);
        }
    }
}

fn lab_up(args: &LabUpArgs, out: &mut dyn Write) -> Result<Exit, Error> {
    let mut options = pcfail_lab::LabOptions::new(&args.dir);
    options.clock_speed = args.clock_speed;
    options.backup_every_min = args.backup_every_min;
    options.copy_every_min = args.copy_every_min;
    options.restore_every_min = args.restore_every_min;
    options.tick_ms = args.tick_ms;
    options.variants = args.variants.iter().cloned().collect();
    options.io_mb_per_s = args.io_mb_per_s;
    options.windows_paths = args.windows_paths;
    let program = std::env::current_exe().map_err(|e| {
        Error::Output(std::io::Error::new(
            e.kind(),
            format!("cannot find the pcfail binary: {e}"),
        ))
    })?;
    if args.foreground {
        runtime().block_on(pcfail_lab::run_foreground(options))?;
        return Ok(Exit::Ok);
    }
    let manifest = pcfail_lab::up(&args.dir, options, false, &program)?;
    let runbook = crate::labrunbook::render(&manifest, &args.dir, &program)
        .map_err(|e| Error::Output(std::io::Error::other(e.to_string())))?;
    let path = args.dir.join("runbook.toml");
    std::fs::write(&path, runbook)?;
    writeln!(out, "lab up in `{}`", args.dir.display())?;
    for instance in &manifest.instances {
        writeln!(
            out,
            "  {:<15} {:<28} {}",
            instance.name, instance.fqdn, instance.address
        )?;
    }
    writeln!(out, "runbook: {}", path.display())?;
    writeln!(
        out,
        "the SQL login `{}`'s password is in lab.json; export it as {} before running pcfail against this lab",
        manifest.login.user, manifest.login.password_env
    )?;
    Ok(Exit::Ok)
}

/// Who runs pcfail, for the journal: the login name the OS gives.
fn operator() -> String {
    ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn host_name() -> String {
    ["COMPUTERNAME", "HOSTNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}
