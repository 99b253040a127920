//! Copy: pcfail's copy step against `cp` and `cp` + fsync (`sync FILE...`), on the same files.
//!
//! Two parts. Files of three sizes (many small, some 10 MiB, a few 500 MiB) through the copy step's
//! file work (`pcfail::bench::copy_step`: examine, copy, verify), each repetition into an empty
//! folder. And the step itself in a failover against the lab: a backlog left in the share, older
//! backups already in the copy folder, timed by the journal.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};

use crate::rig::{LabSpec, Snapshot, Tools, measure, trn_files};
use crate::stats::{Samples, Unit, table};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Arm {
    Pcfail,
    Cp,
    CpSync,
}

const ARMS: [Arm; 3] = [Arm::Pcfail, Arm::Cp, Arm::CpSync];

impl Arm {
    fn name(self) -> &'static str {
        match self {
            Arm::Pcfail => "pcfail copy (verified)",
            Arm::Cp => "cp",
            Arm::CpSync => "cp + fsync",
        }
    }
}

/// The file sets: name, count, size in bytes.
const SETS: [(&str, usize, usize); 3] = [
    ("1,000 x 64 KiB", 1000, 64 << 10),
    ("20 x 10 MiB", 20, 10 << 20),
    ("2 x 500 MiB", 2, 500 << 20),
];

/// Pending log backups left in the share for the step in a failover.
const STEP_PENDING: usize = 1000;

pub(crate) fn run(tools: &Tools, work: &Path, reps: usize, applied: usize) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for (label, count, size) in SETS {
        eprintln!("copy: {label}");
        let source = work.join("copy-source");
        make_files(&source, count, size)?;
        let dest = work.join("copy-dest");
        let mut samples = ARMS.map(|a| (a, Samples::default()));
        for rep in 0..reps {
            for k in 0..ARMS.len() {
                let arm = ARMS[(rep + k) % ARMS.len()];
                fresh(&dest)?;
                let took = match arm {
                    Arm::Pcfail => {
                        let started = Instant::now();
                        let copied =
                            pcfail::bench::copy_step(&source, &dest).map_err(anyhow::Error::msg)?;
                        ensure!(copied == count, "pcfail copied {copied} of {count} files");
                        started.elapsed()
                    }
                    Arm::Cp => cp(&source, &dest, false)?,
                    Arm::CpSync => cp(&source, &dest, true)?,
                };
                samples[k_of(arm)].1.push(took);
            }
        }
        std::fs::remove_dir_all(&source)?;
        std::fs::remove_dir_all(&dest)?;
        rows.extend(rows_for(label, &samples));
    }

    eprintln!("copy: the step in a failover");
    let snapshot = Snapshot::make(
        tools,
        &work.join("live"),
        &work.join("saved"),
        LabSpec { io_mb_per_s: None },
        STEP_PENDING,
        applied,
        false,
    )?;
    let mut samples = ARMS.map(|a| (a, Samples::default()));
    for rep in 0..reps {
        for k in 0..ARMS.len() {
            let arm = ARMS[(rep + k) % ARMS.len()];
            let lab = snapshot.start(tools)?;
            let took = match arm {
                Arm::Pcfail => {
                    let pool = lab.manifest.pool.clone();
                    let log = work.join("pcfail-copy.log");
                    let cost = measure(
                        &mut lab.pcfail(&["failover", "--pool", &pool, "--yes"]),
                        Some(&log),
                    )?;
                    ensure!(cost.code == 0, "pcfail failover exited {}", cost.code);
                    lab.journal()?.step_span("copy-log-backups")?
                }
                Arm::Cp | Arm::CpSync => {
                    // The same files the step copies: the share's backups the copy folder lacks.
                    let have: std::collections::HashSet<_> = trn_files(&lab.manifest.copy_folder)?
                        .iter()
                        .filter_map(|p| p.file_name().map(|n| n.to_owned()))
                        .collect();
                    let missing: Vec<PathBuf> = trn_files(&lab.manifest.share)?
                        .into_iter()
                        .filter(|p| p.file_name().is_some_and(|n| !have.contains(n)))
                        .collect();
                    ensure!(missing.len() == STEP_PENDING, "{} to copy", missing.len());
                    cp_files(&missing, &lab.manifest.copy_folder, arm == Arm::CpSync)?
                }
            };
            samples[k_of(arm)].1.push(took);
        }
    }
    rows.extend(rows_for(
        &format!(
            "the step in a failover: {STEP_PENDING} lab log backups, {applied} already copied"
        ),
        &samples,
    ));
    table(
        &format!("Copy (whole set, min / median / max of {reps} repetitions)"),
        &["files", "arm", "time", "pcfail vs arm (medians)"],
        &rows,
    );
    Ok(())
}

fn k_of(arm: Arm) -> usize {
    ARMS.iter().position(|a| *a == arm).expect("a known arm")
}

fn rows_for(label: &str, samples: &[(Arm, Samples); 3]) -> Vec<Vec<String>> {
    let pcfail = &samples[0].1;
    samples
        .iter()
        .map(|(arm, s)| {
            vec![
                label.to_owned(),
                arm.name().to_owned(),
                s.show(if s.median() > Duration::from_secs(1) {
                    Unit::S
                } else {
                    Unit::Ms
                }),
                if *arm == Arm::Pcfail {
                    String::new()
                } else {
                    format!("{:.2}x", pcfail.ratio(s))
                },
            ]
        })
        .collect()
}

/// `count` files of `size` bytes of varied content, named like log backups.
fn make_files(dir: &Path, count: usize, size: usize) -> anyhow::Result<()> {
    fresh(dir)?;
    let mut block = vec![0u8; size.min(1 << 20)];
    for i in 0..count {
        // Cheap, varied bytes (an LCG): no file is all zeros, no two files are equal.
        let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let path = dir.join(format!("mgc_2026112904{:04}{:02}.trn", i / 60, i % 60));
        let mut file = std::fs::File::create(&path)?;
        let mut left = size;
        while left > 0 {
            for b in block.iter_mut() {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                *b = (x >> 56) as u8;
            }
            let n = left.min(block.len());
            std::io::Write::write_all(&mut file, &block[..n])?;
            left -= n;
        }
    }
    // Written out before any arm runs, so no arm pays for the set's own write-back.
    let status = Command::new("sync").status()?;
    ensure!(status.success(), "sync failed");
    Ok(())
}

fn fresh(dir: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    std::fs::create_dir_all(dir).context("create a folder")
}

fn cp(from: &Path, to: &Path, sync: bool) -> anyhow::Result<Duration> {
    cp_files(&trn_files(from)?, to, sync)
}

/// `cp FILES DEST`, then with `sync` `sync FILE...` on the copies (coreutils fsyncs each).
fn cp_files(files: &[PathBuf], to: &Path, sync: bool) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let status = Command::new("cp").args(files).arg(to).status()?;
    ensure!(status.success(), "cp failed");
    if sync {
        let copies = files
            .iter()
            .filter_map(|f| f.file_name().map(|n| to.join(n)));
        let status = Command::new("sync").args(copies).status()?;
        ensure!(status.success(), "sync failed");
    }
    Ok(started.elapsed())
}
