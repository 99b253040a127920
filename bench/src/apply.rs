//! Log apply: pcfail's apply step against the limits it is measured by, at N pending backups.
//!
//! Every repetition restores the same lab (N backups copied and not applied, after `applied` older
//! ones that were, as a copy folder keeps days of them), loses the primary data center, then runs
//! one arm. Arms rotate order from repetition to repetition, so drift in the machine's speed falls
//! on all of them. The figure is time per pending backup.
//!
//! - pcfail: `pcfail failover`, its `apply-log-backups` step as its journal times it (examining,
//!   applying and verifying: what the operator waits for).
//! - bare: the same RESTORE LOG statements on one tiberius connection, nothing else (the limit).
//! - header: the same loop reading each file's header once first and checking the LSN chain (the
//!   limit for a safe apply).
//! - tsql: one FreeTDS `tsql` process per file, as an admin's script does it.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use pcfail_lab::Role;
use tiberius::numeric::Numeric;

use crate::rig::{LabSpec, LiveLab, Snapshot, Tools, measure};
use crate::sql;
use crate::stats::{Samples, Unit, table};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arm {
    Pcfail,
    Baseline,
    Bare,
    Header,
    Tsql,
}

impl Arm {
    fn name(self) -> &'static str {
        match self {
            Arm::Pcfail => "pcfail apply step",
            Arm::Baseline => "pcfail apply step, baseline build",
            Arm::Bare => "(a) bare tiberius loop",
            Arm::Header => "(b) loop + one header read",
            Arm::Tsql => "(c) one tsql per file",
        }
    }
}

pub(crate) struct Args {
    pub ns: Vec<usize>,
    pub applied: usize,
    pub reps: usize,
    /// `tsql` takes ~5 ms a file: above this N it is left out.
    pub tsql_max: usize,
    pub spec: LabSpec,
    pub title: String,
}

/// Per N: each arm's samples, statements pcfail sent in the step, pcfail's peak RSS.
struct Result {
    n: usize,
    arms: Vec<(Arm, Samples)>,
    statements: usize,
    max_rss_kib: u64,
    /// The baseline build's statements and peak RSS, when it was measured.
    baseline: Option<(usize, u64)>,
}

pub(crate) fn run(tools: &Tools, work: &std::path::Path, args: &Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut results = Vec::new();
    for &n in &args.ns {
        eprintln!("apply: N = {n}: making the backlog");
        let snapshot = Snapshot::make(
            tools,
            &work.join("live"),
            &work.join("saved"),
            args.spec.clone(),
            n,
            args.applied,
            true,
        )?;
        let mut arms = vec![Arm::Pcfail, Arm::Bare, Arm::Header];
        if tools.baseline.is_some() {
            arms.insert(1, Arm::Baseline);
        }
        if tools.tsql.is_some() && n <= args.tsql_max {
            arms.push(Arm::Tsql);
        }
        let mut samples: Vec<(Arm, Samples)> =
            arms.iter().map(|&a| (a, Samples::default())).collect();
        let (mut statements, mut max_rss_kib) = (0, 0);
        let mut baseline: Option<(usize, u64)> = None;
        for rep in 0..args.reps {
            for k in 0..arms.len() {
                let arm = arms[(rep + k) % arms.len()];
                eprintln!("apply: N = {n}, repetition {}, {}", rep + 1, arm.name());
                let lab = snapshot.start(tools)?;
                let pending = pending_files(&lab, n)?;
                let took = match arm {
                    Arm::Pcfail => {
                        let (took, sent, rss) = pcfail(&lab, work, &tools.pcfail)?;
                        statements = sent;
                        max_rss_kib = max_rss_kib.max(rss);
                        took
                    }
                    Arm::Baseline => {
                        let program = tools.baseline.as_ref().expect("only with a baseline");
                        let (took, sent, rss) = pcfail(&lab, work, program)?;
                        baseline = Some((sent, baseline.map_or(rss, |(_, r)| r.max(rss))));
                        took
                    }
                    Arm::Bare => runtime.block_on(bare(&lab, &pending, false))?,
                    Arm::Header => runtime.block_on(bare(&lab, &pending, true))?,
                    Arm::Tsql => tsql(tools, &lab, &pending)?,
                };
                if !matches!(arm, Arm::Pcfail | Arm::Baseline) {
                    runtime.block_on(check_applied(&lab, &pending))?;
                }
                let per_file = took / u32::try_from(n.max(1)).unwrap_or(u32::MAX);
                samples
                    .iter_mut()
                    .find(|(a, _)| *a == arm)
                    .expect("every arm has samples")
                    .1
                    .push(per_file);
            }
        }
        results.push(Result {
            n,
            arms: samples,
            statements,
            max_rss_kib,
            baseline,
        });
    }
    print(args, &results);
    Ok(())
}

fn print(args: &Args, results: &[Result]) {
    let mut rows = Vec::new();
    for r in results {
        let get = |arm: Arm| r.arms.iter().find(|(a, _)| *a == arm).map(|(_, s)| s);
        let pcfail = get(Arm::Pcfail).expect("pcfail is always measured");
        for (arm, s) in &r.arms {
            let vs = |other: Arm| {
                get(other)
                    .filter(|o| !o.is_empty())
                    .map(|o| format!("{:.2}x", pcfail.ratio(o)))
                    .unwrap_or_else(|| "-".to_owned())
            };
            rows.push(vec![
                r.n.to_string(),
                arm.name().to_owned(),
                s.show(Unit::Ms),
                if *arm == Arm::Pcfail {
                    format!(
                        "{}{} (a) · {} (b) · {} (c)",
                        get(Arm::Baseline)
                            .map(|b| format!("{} than the baseline · ", faster(b.ratio(pcfail))))
                            .unwrap_or_default(),
                        vs(Arm::Bare),
                        vs(Arm::Header),
                        {
                            get(Arm::Tsql)
                                .map(|t| faster(t.ratio(pcfail)))
                                .unwrap_or_else(|| "-".to_owned())
                        }
                    )
                } else {
                    String::new()
                },
            ]);
        }
        rows.push(vec![
            r.n.to_string(),
            "pcfail: statements in the step · peak RSS".to_owned(),
            format!(
                "{} · {:.1} MiB",
                r.statements,
                r.max_rss_kib as f64 / 1024.0
            ),
            String::new(),
        ]);
        if let Some((statements, rss)) = r.baseline {
            rows.push(vec![
                r.n.to_string(),
                "baseline: statements in the step · peak RSS".to_owned(),
                format!("{statements} · {:.1} MiB", rss as f64 / 1024.0),
                String::new(),
            ]);
        }
    }
    table(
        &format!(
            "{} (per pending backup, min / median / max of {} repetitions; {} older backups already applied in the copy folder)",
            args.title, args.reps, args.applied
        ),
        &["N", "arm", "time per file", "pcfail vs arm (medians)"],
        &rows,
    );
}

/// `other / pcfail` as words: "3.1x faster", or "2.0x slower" below one.
fn faster(ratio: f64) -> String {
    if ratio >= 1.0 {
        format!("{ratio:.1}x faster")
    } else {
        format!("{:.1}x slower", 1.0 / ratio)
    }
}

/// The newest `n` backups of the copy folder: the ones the backlog left unapplied.
fn pending_files(lab: &LiveLab, n: usize) -> anyhow::Result<Vec<String>> {
    let files = lab.copy_folder_files()?;
    ensure!(files.len() >= n, "the copy folder has fewer than {n} files");
    Ok(files[files.len() - n..]
        .iter()
        .map(|p| p.display().to_string())
        .collect())
}

/// The whole failover, timed by its journal; returns the apply step's span, the statements it
/// sent and the process's peak RSS.
fn pcfail(
    lab: &LiveLab,
    work: &std::path::Path,
    program: &std::path::Path,
) -> anyhow::Result<(Duration, usize, u64)> {
    let pool = lab.manifest.pool.clone();
    let log = work.join("pcfail-failover.log");
    let cost = measure(
        &mut lab.pcfail_of(program, &["failover", "--pool", &pool, "--yes"]),
        Some(&log),
    )?;
    ensure!(
        cost.code == 0,
        "pcfail failover exited {}; see `{}`",
        cost.code,
        log.display()
    );
    let journal = lab.journal()?;
    let step = "apply-log-backups";
    Ok((
        journal.step_span(step)?,
        journal.commands(Some(step)).0,
        cost.max_rss_kib,
    ))
}

/// The restore loop on one connection, timed from its first statement to its last answer.
async fn bare(lab: &LiveLab, files: &[String], headers: bool) -> anyhow::Result<Duration> {
    let mut conn = sql::connect(&lab.manifest, lab.address(Role::Backup)?).await?;
    let started = Instant::now();
    let mut last_lsn: Option<Numeric> = None;
    for file in files {
        if headers {
            let rows = conn
                .simple_query(format!(
                    "RESTORE HEADERONLY FROM DISK = {}",
                    sql::literal(file)
                ))
                .await?
                .into_first_result()
                .await?;
            let row = rows.first().context("HEADERONLY returned no row")?;
            let first: Numeric = row.get("FirstLSN").context("FirstLSN")?;
            if let Some(previous) = last_lsn {
                ensure!(previous == first, "the LSN chain breaks at `{file}`");
            }
            last_lsn = Some(row.get("LastLSN").context("LastLSN")?);
        }
        conn.simple_query(sql::restore_log(file))
            .await?
            .into_results()
            .await?;
    }
    let took = started.elapsed();
    conn.close().await?;
    Ok(took)
}

/// One `tsql` per file: a new process, login and statement each time. The lab's password goes on
/// tsql's command line, which only a rehearsal lab's may.
fn tsql(tools: &Tools, lab: &LiveLab, files: &[String]) -> anyhow::Result<Duration> {
    use std::io::Write;
    let program = tools.tsql.as_ref().context("tsql is not installed")?;
    let address = lab.address(Role::Backup)?;
    let started = Instant::now();
    for file in files {
        let mut child = std::process::Command::new(program)
            .args(["-H", &address.ip().to_string()])
            .args(["-p", &address.port().to_string()])
            .args(["-U", &lab.manifest.login.user])
            .args(["-P", &lab.manifest.login.password])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("cannot start tsql")?;
        child
            .stdin
            .as_mut()
            .context("tsql stdin")?
            .write_all(format!("{}\ngo\nexit\n", sql::restore_log(file)).as_bytes())?;
        ensure!(child.wait()?.success(), "tsql failed on `{file}`");
    }
    Ok(started.elapsed())
}

/// The arm really applied every pending file: the database's redo point is the last file's end.
async fn check_applied(lab: &LiveLab, files: &[String]) -> anyhow::Result<()> {
    let last = files.last().context("no files")?;
    let mut conn = sql::connect(&lab.manifest, lab.address(Role::Backup)?).await?;
    let header = conn
        .simple_query(format!(
            "RESTORE HEADERONLY FROM DISK = {}",
            sql::literal(last)
        ))
        .await?
        .into_first_result()
        .await?;
    let end: Numeric = header
        .first()
        .and_then(|r| r.get("LastLSN"))
        .context("LastLSN")?;
    let redo = conn
        .simple_query(
            "SELECT redo_start_lsn FROM sys.master_files WHERE database_id = DB_ID(N'mgc') AND file_id = 1",
        )
        .await?
        .into_first_result()
        .await?;
    let at: Option<Numeric> = redo.first().and_then(|r| r.get("redo_start_lsn"));
    ensure!(
        at == Some(end),
        "`{last}` was not restored (redo point {at:?})"
    );
    conn.close().await?;
    Ok(())
}
