//! pcfail's benchmarks: how much of an outage is pcfail's own work, measured side by side with the
//! limits it is held to (BENCHMARKS.md has the goals, the command and the results).
//!
//! Every figure is a ratio of arms measured in the same run, interleaved, over several repetitions
//! (min / median / max): these machines are shared and noisy, so absolute times mean little. The
//! output is Markdown, pasted into BENCHMARKS.md as it is.
//!
//! Suites: `apply` (log apply at N = 100, 1,000, 10,000), `apply-realistic` (the same with the lab's
//! duration model), `copy` (pcfail's copy step against cp and cp + fsync), `failover` (the share of
//! a whole failover that is pcfail's own work), `plan` (plan and validate latency and peak RSS),
//! `powershell` (host processes per run, pcfail's cost per cmdlet over a bare round trip).

mod apply;
mod copy;
mod failover;
mod journal;
mod plan;
mod powershell;
mod rig;
mod sql;
mod stats;

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

#[derive(Parser)]
#[command(about = "pcfail's benchmarks against the lab (see BENCHMARKS.md)")]
struct Cli {
    /// What to measure
    #[arg(value_enum, required = true)]
    suites: Vec<Suite>,
    /// Repetitions of every arm
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Pending log backups for `apply`
    #[arg(long, value_delimiter = ',', default_values_t = [100, 1000, 10_000])]
    n: Vec<usize>,
    /// Older, already-applied log backups in the copy folder (three days of five-minute backups)
    #[arg(long, default_value_t = 864)]
    applied: usize,
    /// Largest N at which the per-file `tsql` arm runs (it takes ~5 ms a file)
    #[arg(long, default_value_t = 1000)]
    tsql_max: usize,
    /// An earlier pcfail binary, measured beside this one in the `apply` suites (before/after)
    #[arg(long, value_name = "PCFAIL")]
    baseline: Option<PathBuf>,
    /// Where the labs and files go (default: a temporary folder, removed afterwards)
    #[arg(long)]
    work: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Suite {
    Apply,
    ApplyRealistic,
    Copy,
    Failover,
    Plan,
    Powershell,
}

/// The lab's duration model for "realistic": 1 MB per second, so a restore of one of the lab's
/// log backups (~26 KB) takes ~25 ms, about what SQL Server takes for a small log backup.
const REALISTIC_MB_PER_S: f64 = 1.0;

fn main() -> anyhow::Result<()> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == rig::TRAMPOLINE) {
        return rig::trampoline(&args[2..]);
    }
    let cli = Cli::parse();
    let tools = rig::Tools::find(cli.baseline.clone())?;
    let temp = tempfile::tempdir()?;
    let work = cli.work.clone().unwrap_or_else(|| temp.path().to_owned());
    std::fs::create_dir_all(&work)?;
    println!(
        "<!-- pcfail-bench {}; {} -->",
        std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        machine()
    );
    for suite in &cli.suites {
        match suite {
            Suite::Apply => apply::run(
                &tools,
                &work,
                &apply::Args {
                    ns: cli.n.clone(),
                    applied: cli.applied,
                    reps: cli.reps,
                    tsql_max: cli.tsql_max,
                    spec: rig::LabSpec { io_mb_per_s: None },
                    title: "Log apply, zero-delay lab".to_owned(),
                },
            )?,
            Suite::ApplyRealistic => apply::run(
                &tools,
                &work,
                &apply::Args {
                    ns: vec![1000],
                    applied: cli.applied,
                    reps: cli.reps,
                    tsql_max: 0,
                    spec: rig::LabSpec {
                        io_mb_per_s: Some(REALISTIC_MB_PER_S),
                    },
                    title: format!(
                        "Log apply, realistic server durations (RESTORE at {REALISTIC_MB_PER_S} MB/s)"
                    ),
                },
            )?,
            Suite::Copy => copy::run(&tools, &work, cli.reps, cli.applied)?,
            Suite::Failover => failover::run(&tools, &work, cli.reps, cli.applied)?,
            Suite::Plan => plan::run(&tools, &work, cli.reps)?,
            Suite::Powershell => powershell::run(&tools, &work, cli.reps)?,
        }
    }
    Ok(())
}

/// The machine, for the record: CPU model and count, memory.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().trim_end_matches(" kB").parse::<u64>().ok())
        .map_or_else(String::new, |kb| format!(", {} GiB", kb / 1024 / 1024));
    format!("{model}, {cpus} CPUs{mem}")
}
