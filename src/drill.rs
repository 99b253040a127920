//! `pcfail drill`: a whole failover and fail-back rehearsed against a lab, with no setup.
//!
//! The drill starts a lab in a folder of its own, lets log shipping build a realistic backlog, declares
//! the primary data center lost, and then runs exactly what an operator types, `pcfail failover
//! --pool ... --yes` and later `pcfail failback --yes`, as child processes of the same binary (so the
//! rehearsal goes through the real CLI, runbook, executor and both adapters). After each, it checks the
//! lab's end state the way an auditor would and reports each step's duration, the RPO and the RTO.
//!
//! It does not verify through pcfail's own code: the checks read the lab's state (`Lab::status`), so a
//! bug in the executor cannot vouch for itself.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pcfail_lab::{Lab, LabOptions, Role, Status};

use crate::journal::Event;
use crate::labrunbook;

/// How to drill.
#[derive(Clone, Debug)]
pub(crate) struct DrillOptions {
    /// Where the lab lives; a temporary folder (removed afterwards) when `None`.
    pub dir: Option<PathBuf>,
    /// Lab seconds per real second while log shipping builds its backlog.
    pub clock_speed: f64,
    /// Log backups to wait for before the disaster.
    pub backups_before_disaster: usize,
    /// The operator's runbook to rehearse, its path and (validated) text; the shipped one when `None`.
    pub runbook: Option<(PathBuf, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error("cannot prepare the drill: {0}")]
    Setup(String),
    #[error(transparent)]
    Runbook(#[from] labrunbook::LabRunbookError),
    #[error("the lab failed: {0}")]
    Lab(#[from] pcfail_lab::LabError),
    #[error("`pcfail {operation}` exited with status {status}; its journal is in `{journal_dir}`")]
    Run {
        operation: &'static str,
        status: String,
        journal_dir: PathBuf,
    },
    #[error("after the {operation}, the lab is not as it should be:\n{}", .problems.join("\n"))]
    Verify {
        operation: &'static str,
        problems: Vec<String>,
    },
}

/// Runs the drill and returns the report to print.
pub(crate) async fn drill(options: &DrillOptions) -> Result<String, DrillError> {
    let scratch;
    let dir = match &options.dir {
        Some(dir) => dir.clone(),
        None => {
            scratch = tempfile_dir()?;
            scratch.path().to_owned()
        }
    };
    let program = std::env::current_exe()
        .map_err(|e| DrillError::Setup(format!("cannot find the pcfail binary: {e}")))?;
    let mut lab_options = LabOptions::new(&dir);
    lab_options.clock_speed = options.clock_speed;
    // Copy and restore jobs that lag behind the backups, as they often do in production, so that
    // the failover has log backups left to copy and apply.
    lab_options.copy_every_min = 20;
    lab_options.restore_every_min = 60;
    say!("drill: starting a lab in `{}`", dir.display());
    let lab = Lab::start(lab_options).await?;
    let result = rehearse(&lab, &dir, &program, options).await;
    lab.shutdown().await?;
    result
}

async fn rehearse(
    lab: &Lab,
    dir: &Path,
    program: &Path,
    options: &DrillOptions,
) -> Result<String, DrillError> {
    let manifest = lab.manifest().clone();
    let runbook_path = dir.join("runbook.toml");
    let template = match &options.runbook {
        Some((path, text)) => labrunbook::Template::File { path, text },
        None => labrunbook::Template::Shipped,
    };
    let rendered = labrunbook::render_from(&manifest, dir, program, template)?;
    let rehearsed = match &options.runbook {
        Some((path, _)) => format!("`{}`", path.display()),
        None => "the shipped runbook (built in; name yours with --runbook)".to_owned(),
    };
    // What was re-pointed is in the report, at its top.
    say!("drill: rehearsing {rehearsed}");
    std::fs::write(&runbook_path, &rendered.text).map_err(|e| {
        DrillError::Setup(format!("cannot write `{}`: {e}", runbook_path.display()))
    })?;
    let state_dir = dir.join("pcfail-state");

    say!(
        "drill: letting log shipping run until {} log backups exist (clock x{})",
        options.backups_before_disaster,
        options.clock_speed
    );
    wait_for(lab, Duration::from_secs(120), |s| {
        trn_count(s) >= options.backups_before_disaster
    })
    .await
    .ok_or_else(|| DrillError::Setup("log shipping produced no backups in time".to_owned()))?;

    let pool = manifest.pool.clone();
    let pcfail = Pcfail {
        program,
        runbook: &runbook_path,
        state_dir: &state_dir,
        manifest: &manifest,
    };
    let mut situations = Vec::new();
    situations.push(
        pcfail
            .expect_situation("before the disaster", "normal")
            .await?,
    );
    // The gate, rehearsed: on a healthy site a failover would make a split brain, so it is refused.
    pcfail
        .expect_exit(&["failover", "--pool", &pool, "--yes"], 3, "failover")
        .await?;
    say!("drill: a failover on the healthy site was refused, as it must be");

    say!("drill: the primary data center (ATL) is lost");
    let disaster_lab_ms = lab.now().0;
    lab.disaster().await?;
    let disaster = Instant::now();
    // Now that the primary is gone, no backup can appear any more: this is what failover can recover.
    let at_disaster = lab.status().await;
    let newest_before = at_disaster
        .share
        .iter()
        .filter(|f| f.name.ends_with(".trn"))
        .map(|f| f.name.clone())
        .max();
    let primary_records =
        database(&at_disaster, Role::Primary, "mgc").and_then(|d| d["chat_records"].as_u64());
    situations.push(
        pcfail
            .expect_situation("after the disaster", "primary_lost")
            .await?,
    );

    pcfail
        .run(&["failover", "--pool", &pool, "--yes"], "failover")
        .await?;
    let rto = disaster.elapsed();
    let after_failover = lab.status().await;
    let problems = check_failover(&at_disaster, &after_failover);
    if !problems.is_empty() {
        return Err(DrillError::Verify {
            operation: "failover",
            problems,
        });
    }
    situations.push(
        pcfail
            .expect_situation("after the failover", "failed_over")
            .await?,
    );
    // Run again, a completed failover has nothing to do.
    pcfail
        .expect_exit(&["failover", "--pool", &pool, "--yes"], 0, "failover")
        .await?;

    say!("drill: the primary data center is rebuilt");
    lab.rebuild_primary().await?;
    situations.push(
        pcfail
            .expect_situation("after the rebuild", "ready_for_failback")
            .await?,
    );
    pcfail.run(&["failback", "--yes"], "failback").await?;
    let after_failback = lab.status().await;
    let problems = check_failback(&after_failover, &after_failback);
    if !problems.is_empty() {
        return Err(DrillError::Verify {
            operation: "failback",
            problems,
        });
    }
    situations.push(
        pcfail
            .expect_situation("after the fail-back", "normal")
            .await?,
    );

    let mut report = String::new();
    let _ = writeln!(
        report,
        "pcfail drill: failover and fail-back of {pool} rehearsed against the lab; every check passed.\n"
    );
    let _ = writeln!(report, "Runbook: {rehearsed}");
    for note in &rendered.notes {
        let _ = writeln!(report, "  re-pointed for the lab: {note}");
    }
    let _ = writeln!(report);
    let _ = writeln!(report, "Situations (pcfail status --live):");
    for line in &situations {
        let _ = writeln!(report, "  {line}");
    }
    let _ = writeln!(report);
    for (title, operation) in [("Failover", "failover"), ("Fail-back", "failback")] {
        let _ = writeln!(report, "{title}:");
        for (step, secs) in step_durations(&state_dir, operation) {
            let _ = writeln!(report, "  {step:<28} {secs:>8.2}s");
        }
    }
    let newest_ms = newest_before
        .as_deref()
        .and_then(crate::exec::ledger::backup_time)
        .map(|t| t.as_millisecond());
    let _ = writeln!(report);
    match newest_ms {
        Some(ms) => {
            let _ = writeln!(
                report,
                "RPO: {:.1} lab minutes (newest log backup {} taken before the disaster; chat written after it was lost)",
                (disaster_lab_ms - ms) as f64 / 60_000.0,
                newest_before.as_deref().unwrap_or("?")
            );
        }
        None => {
            let _ = writeln!(report, "RPO: unknown (no log backup name to date it)");
        }
    }
    let _ = writeln!(
        report,
        "RTO: {:.1} s from the disaster to the pool failed over and mirrored (real time)",
        rto.as_secs_f64()
    );
    if let Some(primary) = primary_records {
        let _ = writeln!(
            report,
            "Chat records on the primary at the disaster: {primary} (those after the newest log backup are the RPO's loss)"
        );
    }
    // The review's reports of the rehearsal: in the lab folder when it is kept, else beside the
    // system's temporary files (the lab folder goes away).
    let report_dir = match &options.dir {
        Some(_) => dir.to_owned(),
        None => std::env::temp_dir(),
    };
    for operation in ["failover", "failback"] {
        match write_report(&state_dir, operation, &report_dir) {
            Ok(path) => {
                let _ = writeln!(report, "Report of the {operation}: {}", path.display());
            }
            Err(why) => {
                let _ = writeln!(report, "Report of the {operation}: not written ({why})");
            }
        }
    }
    if options.dir.is_some() {
        let _ = writeln!(
            report,
            "Lab: `{}` (stopped; its state and both journals stay there)",
            dir.display()
        );
    } else {
        let _ = writeln!(
            report,
            "Lab: a temporary folder, removed now (keep the lab with `--dir DIR`)"
        );
    }
    Ok(report)
}

fn tempfile_dir() -> Result<tempfile::TempDir, DrillError> {
    tempfile::Builder::new()
        .prefix("pcfail-drill-")
        .tempdir()
        .map_err(|e| DrillError::Setup(format!("cannot create a temporary folder: {e}")))
}

/// The binary, runbook and state directory the drill runs `pcfail` with.
struct Pcfail<'a> {
    program: &'a Path,
    runbook: &'a Path,
    state_dir: &'a Path,
    manifest: &'a pcfail_lab::Manifest,
}

impl Pcfail<'_> {
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(self.program);
        command
            .args(args)
            .arg("--runbook")
            .arg(self.runbook)
            .arg("--state-dir")
            .arg(self.state_dir)
            .env(
                &self.manifest.login.password_env,
                &self.manifest.login.password,
            )
            .stdin(std::process::Stdio::null());
        // A runbook that logs on as a Windows account (to SQL Server or a remoting session) gets
        // the lab's, whose password is in lab.json like the SQL login's.
        if let Some(account) = &self.manifest.windows_login {
            command.env(&account.password_env, &account.password);
        }
        command
    }

    /// Runs `pcfail <args>` as an operator would, its output shown, and requires success.
    async fn run(&self, args: &[&str], operation: &'static str) -> Result<(), DrillError> {
        say!("drill: pcfail {}", args.join(" "));
        let status = self.command(args).status().await.map_err(|e| {
            DrillError::Setup(format!("cannot start `{}`: {e}", self.program.display()))
        })?;
        if status.success() {
            Ok(())
        } else {
            Err(DrillError::Run {
                operation,
                status: status.to_string(),
                journal_dir: self.state_dir.join("runs"),
            })
        }
    }

    /// Runs `pcfail <args>` (its output hidden) and checks its exit status.
    async fn expect_exit(
        &self,
        args: &[&str],
        expected: i32,
        operation: &'static str,
    ) -> Result<(), DrillError> {
        let output = self.command(args).output().await.map_err(|e| {
            DrillError::Setup(format!("cannot start `{}`: {e}", self.program.display()))
        })?;
        if output.status.code() == Some(expected) {
            Ok(())
        } else {
            Err(DrillError::Verify {
                operation,
                problems: vec![format!(
                    "`pcfail {}` exited with {} where {expected} was expected: {}",
                    args.join(" "),
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                )],
            })
        }
    }

    /// `pcfail status --live --format json`, checked to name `expected`; returns a report line.
    async fn expect_situation(&self, when: &str, expected: &str) -> Result<String, DrillError> {
        let output = self
            .command(&["status", "--live", "--format", "json"])
            .output()
            .await
            .map_err(|e| {
                DrillError::Setup(format!("cannot start `{}`: {e}", self.program.display()))
            })?;
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).map_err(|e| {
            DrillError::Setup(format!(
                "`pcfail status --live` printed no JSON document: {e}"
            ))
        })?;
        let kind = report["situation"]["kind"].as_str().unwrap_or("?");
        if kind != expected {
            return Err(DrillError::Verify {
                operation: "status",
                problems: vec![format!(
                    "{when}, the situation is `{kind}` where `{expected}` was expected: {}",
                    report["situation"]["summary"]
                )],
            });
        }
        Ok(format!(
            "{when:<22} {}",
            report["situation"]["name"].as_str().unwrap_or(kind)
        ))
    }
}

async fn wait_for(lab: &Lab, limit: Duration, ready: impl Fn(&Status) -> bool) -> Option<Status> {
    let deadline = Instant::now() + limit;
    loop {
        let status = lab.status().await;
        if ready(&status) {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn trn_count(status: &Status) -> usize {
    status
        .share
        .iter()
        .filter(|f| f.name.ends_with(".trn"))
        .count()
}

fn instance(status: &Status, role: Role) -> Option<&serde_json::Value> {
    status
        .instances
        .iter()
        .find(|i| i.role == role)
        .map(|i| &i.sql)
}

/// The engine's status of database `name` on `role`.
fn database<'a>(status: &'a Status, role: Role, name: &str) -> Option<&'a serde_json::Value> {
    instance(status, role)?["databases"]
        .as_array()?
        .iter()
        .find(|d| {
            d["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
}

fn mirroring_role(status: &Status, role: Role, db: &str) -> Option<String> {
    database(status, role, db)?["mirroring"]["role"]
        .as_str()
        .map(str::to_owned)
}

fn check_failover(at_disaster: &Status, after: &Status) -> Vec<String> {
    let mut problems = Vec::new();
    let mut expect = |ok: bool, what: String| {
        if !ok {
            problems.push(format!("  - {what}"));
        }
    };
    let mgc = database(after, Role::Backup, "mgc");
    expect(
        mgc.and_then(|d| d["state_desc"].as_str()) == Some("ONLINE"),
        format!(
            "backup `mgc` should be ONLINE, is {:?}",
            mgc.map(|d| &d["state_desc"])
        ),
    );
    expect(
        mirroring_role(after, Role::Backup, "mgc").as_deref() == Some("PRINCIPAL"),
        "backup `mgc` should be the mirroring principal".to_owned(),
    );
    expect(
        mirroring_role(after, Role::BackupMirror, "mgc").as_deref() == Some("MIRROR"),
        "backup mirror `mgc` should be the mirror".to_owned(),
    );
    let ls = instance(after, Role::Backup).map(|i| &i["log_shipping"]["secondary"]);
    expect(
        ls.and_then(|v| v.as_array()).is_some_and(Vec::is_empty),
        "log shipping should be removed from the backup instance".to_owned(),
    );
    // Every log backup taken before the disaster is applied exactly once: the backup's restore
    // history (newest first), read back to the full restore that initialized it, is one unbroken
    // chain of log restores without repeats, ending at the newest log backup's LastLSN.
    let newest_backup_end = instance(at_disaster, Role::Primary)
        .and_then(|i| i["backup_history"].as_array())
        .and_then(|h| {
            h.iter()
                .find(|b| b["type"] == "L" && b["database"] == "mgc")
        })
        .and_then(|b| b["last_lsn"].as_str().map(str::to_owned));
    let history = instance(after, Role::Backup)
        .and_then(|i| i["restore_history"].as_array())
        .cloned()
        .unwrap_or_default();
    let logs: Vec<(String, String)> = history
        .iter()
        .filter(|r| r["database"] == "mgc")
        .take_while(|r| r["type"] != "D")
        .filter(|r| r["type"] == "L")
        .filter_map(|r| {
            Some((
                r["first_lsn"].as_str()?.to_owned(),
                r["last_lsn"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let contiguous = logs.windows(2).all(|w| w[0].0 == w[1].1);
    expect(
        !logs.is_empty() && contiguous,
        format!(
            "the log restores of backup `mgc` should form one chain without repeats, were {logs:?}"
        ),
    );
    expect(
        newest_backup_end.is_some() && logs.first().map(|l| &l.1) == newest_backup_end.as_ref(),
        format!(
            "the last log restored on backup `mgc` should end at the newest log backup's LastLSN {newest_backup_end:?}, ends at {:?}",
            logs.first().map(|l| &l.1)
        ),
    );
    expect(
        after.pool_state == "FailedOver",
        format!("pool state should be FailedOver, is {}", after.pool_state),
    );
    expect(
        !after.active_servers.is_empty()
            && after.active_servers.iter().all(|s| s.starts_with("dal-")),
        format!(
            "active servers should be in DAL, are {:?}",
            after.active_servers
        ),
    );
    problems
}

fn check_failback(after_failover: &Status, after: &Status) -> Vec<String> {
    let mut problems = Vec::new();
    let mut expect = |ok: bool, what: String| {
        if !ok {
            problems.push(format!("  - {what}"));
        }
    };
    let primary = database(after, Role::Primary, "mgc");
    expect(
        primary.and_then(|d| d["state_desc"].as_str()) == Some("ONLINE"),
        format!(
            "primary `mgc` should be ONLINE, is {:?}",
            primary.map(|d| &d["state_desc"])
        ),
    );
    let recovered =
        database(after_failover, Role::Backup, "mgc").and_then(|d| d["chat_records"].as_u64());
    expect(
        recovered.is_some() && primary.and_then(|d| d["chat_records"].as_u64()) >= recovered,
        "primary `mgc` should hold every chat record the backup held".to_owned(),
    );
    for db in ["mgc", "mgccomp"] {
        expect(
            mirroring_role(after, Role::Backup, db).is_none(),
            format!("backup `{db}` should no longer be mirrored"),
        );
    }
    let primary_ls =
        instance(after, Role::Primary).and_then(|i| i["log_shipping"]["primary"].as_array());
    expect(
        primary_ls.is_some_and(|l| l.iter().any(|p| p["primary_database"] == "mgc")),
        "the primary should be the log-shipping primary of `mgc`".to_owned(),
    );
    let backup_ls =
        instance(after, Role::Backup).and_then(|i| i["log_shipping"]["secondary"].as_array());
    expect(
        backup_ls.is_some_and(|l| !l.is_empty()),
        "the backup instance should be a log-shipping secondary again".to_owned(),
    );
    let backup_mgc = database(after, Role::Backup, "mgc").and_then(|d| d["state_desc"].as_str());
    expect(
        backup_mgc == Some("RESTORING"),
        format!("backup `mgc` should be RESTORING, is {backup_mgc:?}"),
    );
    expect(
        after.pool_state == "Normal",
        format!("pool state should be Normal, is {}", after.pool_state),
    );
    expect(
        !after.active_servers.is_empty()
            && after.active_servers.iter().all(|s| s.starts_with("atl-")),
        format!(
            "active servers should be in ATL, are {:?}",
            after.active_servers
        ),
    );
    problems
}

/// Writes the HTML report of the newest completed run of `operation` into `dir`.
fn write_report(state_dir: &Path, operation: &str, dir: &Path) -> Result<PathBuf, String> {
    let history = crate::situation::History::read(state_dir, None).map_err(|e| e.to_string())?;
    let run = history
        .runs
        .iter()
        .rev()
        .find(|r| r.operation == operation && r.completed())
        .ok_or_else(|| format!("no completed {operation} run"))?;
    let (records, chain) = crate::journal::read_for_review(&run.path).map_err(|e| e.to_string())?;
    let report = crate::report::Report::from_records(&records, chain)
        .ok_or_else(|| "the journal does not begin with a run start".to_owned())?;
    let path = dir.join(format!("pcfail-drill-{}.html", run.id));
    crate::private::write(&path, report.html().as_bytes()).map_err(|e| e.to_string())?;
    Ok(path)
}

/// Each step's duration in the newest completed run of `operation`, from its journal.
fn step_durations(state_dir: &Path, operation: &str) -> Vec<(String, f64)> {
    let Ok(history) = crate::situation::History::read(state_dir, None) else {
        return Vec::new();
    };
    let Some(records) = history
        .runs
        .into_iter()
        .rev()
        .find(|r| r.operation == operation && r.completed())
        .map(|r| r.records)
    else {
        return Vec::new();
    };
    let mut started: Vec<(String, jiff::Timestamp)> = Vec::new();
    let mut out = Vec::new();
    for r in &records {
        let Ok(t) = r.time.parse::<jiff::Timestamp>() else {
            continue;
        };
        match &r.event {
            Event::StepStarted { step, .. } => started.push((step.clone(), t)),
            Event::StepFinished { step, .. } => {
                if let Some((_, t0)) = started.iter().rev().find(|(s, _)| s == step) {
                    out.push((
                        step.clone(),
                        (t - *t0).total(jiff::Unit::Second).unwrap_or(0.0),
                    ));
                }
            }
            _ => {}
        }
    }
    out
}
