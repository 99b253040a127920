//! A whole failover: how much of its wall time is pcfail's own work.
//!
//! The journal times every statement and cmdlet (the wait for a server or the shell), and the
//! observation of the situation the run leaves (`observed_us`: the same waits, plus a lost data
//! center's connect timeout); the rest of the run, from its first record to its last, is pcfail's
//! own: CPU, fsync, bookkeeping. Before the
//! first record pcfail observes the situation, which after a silent disaster is mostly waiting for
//! the lost data center's connect timeout; that part is shown apart. CPU is the process tree's (the
//! lab's simulated shell is a child of pcfail and counts too).

use anyhow::ensure;
use std::path::Path;

use crate::rig::{LabSpec, Snapshot, Tools, measure};
use crate::stats::{Samples, Unit, table};

/// A night's outage: 100 log backups copied and not yet applied.
const PENDING: usize = 100;

pub(crate) fn run(tools: &Tools, work: &Path, reps: usize, applied: usize) -> anyhow::Result<()> {
    let modes = [
        ("zero-delay lab", None),
        (
            "realistic server durations",
            Some(crate::REALISTIC_MB_PER_S),
        ),
    ];
    let mut rows = Vec::new();
    for (label, io) in modes {
        eprintln!("failover: {label}");
        let snapshot = Snapshot::make(
            tools,
            &work.join("live"),
            &work.join("saved"),
            LabSpec { io_mb_per_s: io },
            PENDING,
            applied,
            true,
        )?;
        let [mut wall, mut before, mut waits, mut own, mut cpu] =
            std::array::from_fn(|_| Samples::default());
        let mut share = Vec::new();
        let mut statements = 0;
        for _ in 0..reps {
            let lab = snapshot.start(tools)?;
            let pool = lab.manifest.pool.clone();
            let log = work.join("pcfail-failover.log");
            let cost = measure(
                &mut lab.pcfail(&["failover", "--pool", &pool, "--yes"]),
                Some(&log),
            )?;
            ensure!(cost.code == 0, "pcfail failover exited {}", cost.code);
            let journal = lab.journal()?;
            let span = journal.span();
            let (n, commands) = journal.commands(None);
            let waited = commands + journal.observing_after();
            statements = n;
            let mine = span.saturating_sub(waited);
            wall.push(cost.wall);
            before.push(cost.wall.saturating_sub(span));
            waits.push(waited);
            own.push(mine);
            cpu.push(cost.cpu);
            share.push(mine.as_secs_f64() / cost.wall.as_secs_f64());
        }
        share.sort_by(f64::total_cmp);
        rows.push(vec![
            label.to_owned(),
            wall.show(Unit::S),
            before.show(Unit::S),
            waits.show(Unit::S),
            own.show(Unit::S),
            format!(
                "{:.1}% / {:.1}% / {:.1}%",
                share[0] * 100.0,
                share[(share.len() - 1) / 2] * 100.0,
                share[share.len() - 1] * 100.0
            ),
            cpu.show(Unit::S),
            statements.to_string(),
        ]);
    }
    table(
        &format!(
            "Whole failover, {PENDING} pending log backups ({applied} applied before), min / median / max of {reps}"
        ),
        &[
            "lab",
            "wall",
            "before the first record",
            "waiting on servers and shell",
            "pcfail's own work in the run",
            "own share of wall",
            "CPU (process tree)",
            "statements + cmdlets",
        ],
        &rows,
    );
    Ok(())
}
