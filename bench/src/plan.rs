//! `pcfail plan failover` and `pcfail validate` on the shipped runbook: latency and peak RSS of the
//! whole process, as an operator runs them.

use std::path::Path;

use anyhow::ensure;

use crate::rig::{Tools, measure};
use crate::stats::{Samples, Unit, table};

/// Runs per command: each takes milliseconds, so more samples than the other suites.
const RUNS_PER_REP: usize = 20;

pub(crate) fn run(tools: &Tools, work: &Path, reps: usize) -> anyhow::Result<()> {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runbooks/persistent-chat.toml");
    // The shipped runbook logs in as the current Windows user, which `validate` refuses (exit 2)
    // where this build cannot do that; a SQL login instead keeps the work measured the same
    // (the whole runbook read and checked) on every platform.
    let text: String = std::fs::read_to_string(&shipped)?
        .lines()
        .map(|line| match line {
            "auth = \"integrated\"" => {
                "auth = \"sql\"\nuser = \"pcfail\"\npassword_env = \"PCFAIL_BENCH_PASSWORD\"\n"
                    .to_owned()
            }
            other => format!("{other}\n"),
        })
        .collect();
    let runbook = work.join("persistent-chat.toml");
    std::fs::write(&runbook, text)?;
    let commands: [(&str, &[&str]); 3] = [
        ("plan failover", &["plan", "failover"]),
        ("plan failback", &["plan", "failback"]),
        ("validate", &["validate"]),
    ];
    let mut rows = Vec::new();
    for (label, args) in commands {
        let mut samples = Samples::default();
        let mut rss = 0;
        for _ in 0..reps * RUNS_PER_REP {
            let mut command = std::process::Command::new(&tools.pcfail);
            command.arg("--runbook").arg(&runbook).args(args);
            let cost = measure(&mut command, None)?;
            ensure!(cost.code == 0, "`pcfail {label}` exited {}", cost.code);
            samples.push(cost.wall);
            rss = rss.max(cost.max_rss_kib);
        }
        rows.push(vec![
            format!("`pcfail {label}`"),
            samples.show(Unit::Ms),
            format!("{:.1} MiB", rss as f64 / 1024.0),
        ]);
    }
    table(
        &format!(
            "plan and validate (whole process, min / median / max of {} runs)",
            reps * RUNS_PER_REP
        ),
        &["command", "wall time", "peak RSS"],
        &rows,
    );
    Ok(())
}
