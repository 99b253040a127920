//! The commands that reach outside the process: running a plan, checking preconditions, listing
//! runs, the lab and the drill. Each turns its outcome into text and an exit status here, so `run`
//! stays the one place that prints errors.
//!
//! Every async command gets its own tokio runtime: pcfail does one thing per invocation, and a plain
//! `plan` or `validate` must not start threads it does not need.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::Done;
use crate::cli::{Format, LabCommand, LabUpArgs};
use crate::config::{Config, Verbosity};
use crate::drill::{self, DrillOptions};
use crate::error::Error;
use crate::exec::{self, Answers, Rendered, RunSettings, Timeouts, check};
use crate::exit::Exit;
use crate::journal::sha256_hex;
use crate::plan::Plan;
use crate::runbook::{Operation, Runbook};
use crate::situation::{self, History};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
}

/// Connection and read timeouts for runs and checks, from the runbook's `[timeouts]`. Step timeouts
/// come from each step.
fn timeouts(runbook: &Runbook) -> Timeouts {
    Timeouts {
        connect: runbook.timeouts.connect,
        query: runbook.timeouts.query,
    }
}

/// The flags of `pcfail failover` / `pcfail failback`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RunOptions {
    pub yes: bool,
    pub accept_split_brain: bool,
    pub accept_data_loss: bool,
}

/// `pcfail failover` / `pcfail failback`.
pub(crate) fn run_operation(
    config: &Config,
    runbook: &Runbook,
    operation: Operation,
    options: RunOptions,
    out: &mut dyn Write,
) -> Result<Done, Error> {
    let bytes = std::fs::read(&config.runbook).map_err(|source| Error::RunbookBytes {
        path: config.runbook.clone(),
        source,
    })?;
    let plan = Plan::build(runbook, operation).with_history(&history(config, runbook));
    let settings = RunSettings {
        state_dir: config.state_dir.clone(),
        answers: if options.yes {
            Answers::Yes
        } else {
            Answers::Ask
        },
        quiet: config.verbosity == Verbosity::Quiet,
        timeouts: timeouts(runbook),
        operator: crate::identity::operator(),
        host: crate::identity::host(),
        accept_split_brain: options.accept_split_brain,
        accept_data_loss: options.accept_data_loss,
    };
    let digest = sha256_hex(&bytes);
    let rt = runtime();
    let outcome = rt.block_on(async {
        // Installed before the run can print a prompt: see `signals`.
        let mut interrupts = crate::signals::Interrupts::install();
        tokio::select! {
            outcome = exec::run(runbook, &digest, &plan, &settings) => Ok(outcome),
            signal = interrupts.first() => Err(signal),
        }
    });
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(signal) => {
            // The run's future is gone: its connections are closed and the PowerShell host killed
            // (kill_on_drop). A prompt's reading thread may still wait on stdin: do not wait for it.
            rt.shutdown_background();
            let recorded = exec::record_interruption(&plan, &settings, signal);
            return Ok(Done {
                exit: Exit::Interrupted,
                message: Some(format!(
                    "interrupted by {signal}{}: run the same command again to resume (the step that was running is examined again first)",
                    match recorded {
                        Ok(Some(journal)) => format!(
                            "; the journal `{}` records where the run stopped",
                            journal.display()
                        ),
                        Ok(None) => String::new(),
                        Err(e) => format!(" (and the interruption could not be journaled: {e})"),
                    }
                )),
            });
        }
    };
    let Rendered {
        stdout,
        stderr,
        exit,
    } = outcome?.render(operation, &plan.pool);
    out.write_all(stdout.as_bytes())?;
    Ok(Done {
        exit,
        message: stderr,
    })
}

/// `pcfail plan ... --check`: the situation and the pass/fail table on stdout.
/// `rendered` is the plan as `format` shows it; with `--format json` the plan and the checks are one
/// JSON document (`{"plan": ..., "checks": [...], "ok": ...}`), so the output parses.
pub(crate) fn check_plan(
    config: &Config,
    runbook: &Runbook,
    plan: &Plan,
    format: Format,
    rendered: &str,
    out: &mut dyn Write,
) -> Result<Done, Error> {
    let history = History::read(&config.state_dir, Some(&plan.pool)).unwrap_or_default();
    let rows = runtime().block_on(check::preflight(runbook, plan, &history, timeouts(runbook)));
    let ok = rows.iter().all(|r| r.ok);
    match format {
        Format::Text => {
            out.write_all(rendered.as_bytes())?;
            writeln!(out, "\nPrecondition checks (read-only):")?;
            out.write_all(check::render(&rows).as_bytes())?;
        }
        Format::Json => {
            let plan: serde_json::Value =
                serde_json::from_str(rendered).expect("the plan renders as JSON");
            let value = serde_json::json!({
                "format_version": 1,
                "plan": plan,
                "checks": rows.iter().map(|r| serde_json::json!({
                    "ok": r.ok,
                    "check": r.check,
                    "detail": r.detail,
                })).collect::<Vec<_>>(),
                "ok": ok,
            });
            let mut text = serde_json::to_string_pretty(&value).expect("JSON values serialize");
            text.push('\n');
            out.write_all(text.as_bytes())?;
        }
    }
    Ok(if ok {
        Exit::Ok
    } else {
        Exit::PreconditionFailed
    }
    .into())
}

/// `pcfail status --live`: observe the pool, name the situation, say what to type next.
pub(crate) fn status_live(
    config: &Config,
    runbook: &Runbook,
    format: Format,
    out: &mut dyn Write,
) -> Result<Done, Error> {
    let history = read_history(config, Some(&runbook.pool.fqdn))?;
    let timeouts = timeouts(runbook);
    let host = exec::host_settings(runbook, timeouts);
    let (observation, assessment) = runtime().block_on(async {
        let mut shell = exec::Session::unjournaled(runbook, host.clone(), timeouts);
        let known = situation::known_folders(&history, &runbook.chat_database);
        let observation = situation::observe(runbook, timeouts, &host, &mut shell, &known).await;
        let _ = shell.close().await;
        let assessment = situation::with_history(
            situation::classify(&observation),
            &history,
            &runbook.pool.fqdn,
        );
        (observation, assessment)
    });
    let report = situation::Report {
        observation: &observation,
        assessment: &assessment,
        history: &history,
    };
    let text = match format {
        Format::Text => situation::report_text(&report),
        Format::Json => situation::report_json(&report),
    };
    out.write_all(text.as_bytes())?;
    Ok(Exit::Ok.into())
}

/// The runs in the state directory, for filling a plan from what they captured. A state directory
/// that cannot be read fills nothing: the run itself reports it when it reads its history.
pub(crate) fn history(config: &Config, runbook: &Runbook) -> History {
    History::read(&config.state_dir, Some(&runbook.pool.fqdn)).unwrap_or_default()
}

fn read_history(config: &Config, pool: Option<&str>) -> Result<History, Error> {
    History::read(&config.state_dir, pool).map_err(|source| {
        Error::Exec(exec::ExecError::Runs {
            path: config.state_dir.join("runs"),
            source,
        })
    })
}

/// `pcfail journal verify [RUN | --all] [--chain-only]`: each journal's chain, the audit log's chain,
/// and (unless `--chain-only`) each run's anchors on the backup instance. Exit 2 naming the first
/// problem; a run with no anchor is a problem too, since its journal could have been rewritten whole.
pub(crate) fn verify_journals(
    config: &Config,
    run: Option<&str>,
    chain_only: bool,
    out: &mut dyn Write,
) -> Result<Done, Error> {
    let runs_dir = config.state_dir.join("runs");
    let paths: Vec<std::path::PathBuf> = match run {
        Some(run) => {
            let path = runs_dir.join(format!("{run}.jsonl"));
            if !path.is_file() {
                return Ok(Done {
                    exit: Exit::Usage,
                    message: Some(format!(
                        "error: no journal of run `{run}` in `{}`",
                        runs_dir.display()
                    )),
                });
            }
            vec![path]
        }
        None => {
            let mut paths: Vec<_> = std::fs::read_dir(&runs_dir)
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .map(|e| e.path())
                        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                        .collect()
                })
                .unwrap_or_default();
            paths.sort();
            paths
        }
    };
    if paths.is_empty() {
        writeln!(out, "no journals in `{}`", runs_dir.display())?;
        return Ok(Exit::Ok.into());
    }
    let mut problems: Vec<String> = Vec::new();
    let audit_path = config.state_dir.join("audit.jsonl");
    let audit_hashes = if audit_path.is_file() {
        match crate::audit::verify(&audit_path) {
            Ok(hashes) => {
                writeln!(
                    out,
                    "audit.jsonl: ok, {} line(s), hash chain intact",
                    hashes.len()
                )?;
                Some(hashes)
            }
            Err(e) => {
                writeln!(out, "audit.jsonl: DAMAGED")?;
                problems.push(e.to_string());
                None
            }
        }
    } else {
        None
    };
    // The anchors live on the backup instance; reading them needs the runbook and a connection.
    let anchors: Option<Result<Vec<crate::anchor::Anchor>, String>> = if chain_only {
        None
    } else {
        Some(read_anchors(config, &paths))
    };
    for path in &paths {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Err(e) = crate::journal::read(path) {
            writeln!(out, "{name}: DAMAGED")?;
            problems.push(e.to_string());
            continue;
        }
        let hashes = crate::journal::line_hashes(path).map_err(crate::exec::ExecError::from)?;
        let chain = format!("{} record(s), hash chain intact", hashes.len());
        let Some(anchors) = &anchors else {
            writeln!(out, "{name}: ok, {chain} (anchors not checked)")?;
            continue;
        };
        let anchors = match anchors {
            Ok(all) => all.iter().filter(|a| a.run == name).collect::<Vec<_>>(),
            Err(why) => {
                problems.push(why.clone());
                break;
            }
        };
        let mut bad = None;
        for a in &anchors {
            let at = usize::try_from(a.seq).unwrap_or(usize::MAX);
            if hashes.get(at.wrapping_sub(1)) != Some(&a.sha256) {
                bad = Some(format!(
                    "run {name}: record {} of `{}` is not the one anchored on `backup` (its hash there is {}): the journal was changed after that attempt ended",
                    a.seq,
                    path.display(),
                    a.sha256
                ));
                break;
            }
            if let Some(audit) = &audit_hashes
                && a.audit_seq > 0
            {
                let at = usize::try_from(a.audit_seq).unwrap_or(usize::MAX);
                if audit.get(at - 1) != Some(&a.audit_sha256) {
                    bad = Some(format!(
                        "run {name}: line {} of `{}` is not the one anchored on `backup`: the audit log was changed after that attempt ended",
                        a.audit_seq,
                        audit_path.display()
                    ));
                    break;
                }
            }
        }
        match (bad, anchors.last()) {
            (Some(why), _) => {
                writeln!(out, "{name}: DAMAGED")?;
                problems.push(why);
            }
            (None, None) => {
                writeln!(out, "{name}: {chain}, but NOT ANCHORED")?;
                problems.push(format!(
                    "run {name} has no anchor on `backup`: its journal could have been rewritten whole and nothing would show it"
                ));
            }
            (None, Some(last)) => writeln!(
                out,
                "{name}: ok, {chain}, anchored on `backup` up to record {}",
                last.seq
            )?,
        }
    }
    Ok(match problems.first() {
        None => Exit::Ok.into(),
        Some(first) => Done {
            exit: Exit::Usage,
            message: Some(format!("error: {first}")),
        },
    })
}

/// Every pcfail anchor of the runs in `paths` on the backup instance, or why they cannot be read.
fn read_anchors(
    config: &Config,
    paths: &[std::path::PathBuf],
) -> Result<Vec<crate::anchor::Anchor>, String> {
    let instead = "run with `--chain-only` to check the chains alone";
    let runbook = crate::runbook::load(&config.runbook).map_err(|e| {
        format!("cannot read the anchors: the runbook does not load ({e}); {instead}")
    })?;
    let Some(backup) = runbook.instances.get(&crate::runbook::Role::Backup) else {
        return Err(format!(
            "cannot read the anchors: the runbook has no `backup` instance; {instead}"
        ));
    };
    let t = timeouts(&runbook);
    runtime().block_on(async {
        let mut conn = crate::sql::Sql::connect(backup, t.connect)
            .await
            .map_err(|e| format!("cannot read the anchors on `backup`: {e}; {instead}"))?;
        let mut all = Vec::new();
        for path in paths {
            let run = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            all.extend(
                crate::anchor::read(&mut conn, &run, t.query)
                    .await
                    .map_err(|e| format!("cannot read the anchors on `backup`: {e}; {instead}"))?,
            );
        }
        conn.close().await;
        Ok(all)
    })
}

/// `pcfail report RUN`: the run's report, HTML or Markdown, on stdout or into `output`.
pub(crate) fn report(
    config: &Config,
    run: &str,
    format: crate::cli::ReportFormat,
    output: Option<&std::path::Path>,
    out: &mut dyn Write,
) -> Result<Done, Error> {
    let path = config.state_dir.join("runs").join(format!("{run}.jsonl"));
    if !path.is_file() {
        return Ok(Done {
            exit: Exit::Usage,
            message: Some(format!(
                "error: no journal of run `{run}` in `{}`",
                config.state_dir.join("runs").display()
            )),
        });
    }
    let (records, chain) =
        crate::journal::read_for_review(&path).map_err(crate::exec::ExecError::from)?;
    let Some(report) = crate::report::Report::from_records(&records, chain) else {
        return Ok(Done {
            exit: Exit::Usage,
            message: Some(format!(
                "error: the journal `{}` does not begin with a run start",
                path.display()
            )),
        });
    };
    let text = match format {
        crate::cli::ReportFormat::Html => report.html(),
        crate::cli::ReportFormat::Md => report.markdown(),
    };
    match output {
        Some(file) => crate::private::write(file, text.as_bytes())?,
        None => out.write_all(text.as_bytes())?,
    }
    Ok(Exit::Ok.into())
}

/// `pcfail status`: every run in the state directory and where it stands.
pub(crate) fn status(config: &Config, format: Format, out: &mut dyn Write) -> Result<Done, Error> {
    let history = read_history(config, None)?;
    if format == Format::Json {
        let value = serde_json::json!({
            "format_version": 1,
            "state_dir": config.state_dir,
            "runs": history.runs,
            "damaged": history
                .damaged
                .iter()
                .map(|(p, why)| serde_json::json!({ "path": p, "reason": why }))
                .collect::<Vec<_>>(),
        });
        let mut text = serde_json::to_string_pretty(&value).expect("runs serialize");
        text.push('\n');
        out.write_all(text.as_bytes())?;
        return Ok(Exit::Ok.into());
    }
    if history.runs.is_empty() && history.damaged.is_empty() {
        writeln!(out, "no runs in `{}`", config.state_dir.display())?;
        return Ok(Exit::Ok.into());
    }
    for run in &history.runs {
        let last_step = run.last_step.as_ref().map_or("none".to_owned(), |s| {
            format!(
                "{} ({})",
                s.id,
                match s.status {
                    "started" => "started, not finished",
                    other => other,
                }
            )
        });
        writeln!(
            out,
            "{}: {} of {} by {}: {}; last step: {last_step}",
            run.id,
            run.operation,
            run.pool,
            run.operator,
            run.outcome.as_deref().unwrap_or("unfinished"),
        )?;
    }
    for (path, _) in &history.damaged {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        writeln!(out, "{name}: DAMAGED; see `{}`", path.display())?;
    }
    Ok(match history.damaged.first() {
        None => Exit::Ok.into(),
        // A damaged journal is not a status line to skim past: say it, and fail.
        Some((_, why)) => Done {
            exit: Exit::Usage,
            message: Some(format!("error: {why}")),
        },
    })
}

/// `pcfail drill`.
pub(crate) fn drill(
    config: &Config,
    dir: Option<&Path>,
    clock_speed: f64,
    backups: usize,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    let options = DrillOptions {
        dir: dir.map(Path::to_path_buf),
        clock_speed,
        backups_before_disaster: backups,
        runbook: rehearsed_runbook(config)?,
    };
    let report = runtime().block_on(drill::drill(&options))?;
    out.write_all(report.as_bytes())?;
    Ok(Exit::Ok)
}

/// The runbook a drill or a new lab rehearses, with its text: the one the operator named, or the
/// default path when that file exists (an operator who edited it in place rehearses the edit); `None`
/// means the shipped runbook built into the binary, so `pcfail drill` works anywhere. It is validated
/// first, so its problems are reported with their locations (exit 2) before any lab starts.
fn rehearsed_runbook(config: &Config) -> Result<Option<(PathBuf, String)>, Error> {
    if !config.runbook_named && !config.runbook.is_file() {
        return Ok(None);
    }
    crate::runbook::load(&config.runbook)?;
    let text = crate::runbook::read_text(&config.runbook)?;
    Ok(Some((config.runbook.clone(), text)))
}

/// `pcfail lab ...`.
pub(crate) fn lab(
    config: &Config,
    command: &LabCommand,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    match command {
        LabCommand::Up(args) => lab_up(args, rehearsed_runbook(config)?, out),
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
        LabCommand::Backlog {
            dir,
            pending,
            applied,
            not_copied,
            spacing_s,
        } => {
            let made = pcfail_lab::make_backlog(
                dir,
                pcfail_lab::Backlog {
                    pending: *pending,
                    applied: *applied,
                    copied: !*not_copied,
                    spacing_ms: i64::from(*spacing_s) * 1000,
                },
            )?;
            writeln!(
                out,
                "the backup instance in `{}` has {} log backup(s) {} and not restored, after {} restored; its restore job is disabled",
                dir.display(),
                made.pending,
                if *not_copied {
                    "in the share"
                } else {
                    "copied"
                },
                made.applied
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

fn lab_up(
    args: &LabUpArgs,
    rehearsed: Option<(PathBuf, String)>,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    let mut options = pcfail_lab::LabOptions::new(&args.dir);
    options.clock_speed = args.clock_speed;
    options.backup_every_min = args.backup_every_min;
    options.copy_every_min = args.copy_every_min;
    options.restore_every_min = args.restore_every_min;
    options.tick_ms = args.tick_ms;
    options.variants = args.variants.iter().cloned().collect();
    options.io_mb_per_s = args.io_mb_per_s;
    options.windows_paths = !args.linux_paths;
    options.encryption = args.encryption;
    options.named_instances = !args.ports;
    options.standby_secondary = args.standby_secondary;
    options.distinct_service_accounts = args.distinct_service_accounts;
    options.data_paths_per_instance = args.data_paths_per_instance;
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
    let template = match &rehearsed {
        Some((path, text)) => crate::labrunbook::Template::File { path, text },
        None => crate::labrunbook::Template::Shipped,
    };
    let rendered = match crate::labrunbook::render_from(&manifest, &args.dir, &program, template) {
        Ok(rendered) => rendered,
        Err(e) => {
            // A lab nobody can use is not left running.
            let _ = pcfail_lab::down(&args.dir);
            return Err(e.into());
        }
    };
    let path = args.dir.join("runbook.toml");
    std::fs::write(&path, &rendered.text)?;
    writeln!(out, "lab up in `{}`", args.dir.display())?;
    for instance in &manifest.instances {
        writeln!(
            out,
            "  {:<15} {:<28} {}",
            instance.name, instance.fqdn, instance.address
        )?;
    }
    match &rehearsed {
        Some((from, _)) => writeln!(
            out,
            "runbook: {} (from `{}`)",
            path.display(),
            from.display()
        )?,
        None => writeln!(out, "runbook: {}", path.display())?,
    }
    for note in &rendered.notes {
        writeln!(out, "  re-pointed for the lab: {note}")?;
    }
    writeln!(
        out,
        "the SQL login `{}`'s password is in lab.json; export it as {} before running pcfail against this lab",
        manifest.login.user, manifest.login.password_env
    )?;
    Ok(Exit::Ok)
}
