//! Killed anywhere, a run resumes to the same end: pcfail is stopped (as by `kill -9`) at crash
//! points spread over failover and fail-back (before and after journal records: a statement run but
//! not journaled, a step journaled but not acted on; around each copied file's rename), the same
//! command is run again, and the lab must end exactly as after an uninterrupted run, every log
//! backup applied once, in order.
//!
//! The points are counted by a debug-build hook (`PCFAIL_CRASH_AT=N`, exit status 99; see
//! `src/crash.rs`). Three chains share the work, each on its own lab: chain `c` crashes at points
//! `c`, `c + 3`, `c + 6`, ... of each operation, one failover and one fail-back per cycle, until
//! both operations finish without reaching the point.

use crate::lab_support::{
    LabRig, RestoreJob, assert_exit, assert_failed_back, assert_failed_over, primary_log_backups,
    text,
};

/// Far enough to pass the end of both operations on the lab.
const LAST_POINT: usize = 240;

/// Runs `args` stopped at crash point `k`, then again to the end. True when the first run crashed.
fn crash_then_resume(rig: &LabRig, args: &[&str], k: usize) -> bool {
    let output = rig
        .command_in(&rig.state_dir(), args)
        .env("PCFAIL_CRASH_AT", k.to_string())
        .output()
        .expect("run pcfail");
    match output.status.code() {
        Some(99) => {
            let resumed = rig.pcfail(args);
            assert_exit(&resumed, 0);
            true
        }
        Some(0) => false,
        other => panic!(
            "pcfail {args:?} with a crash at point {k} exited with {other:?}\nstderr:\n{}",
            text(&output.stderr)
        ),
    }
}

/// One chain: cycles of disaster, failover, rebuild, fail-back, each operation crashed once.
fn chain(first: usize) -> usize {
    let rig = LabRig::start(RestoreJob::Default);
    let pool = rig.pool();
    let failover = ["failover", "--pool", pool.as_str(), "--yes"];
    let failback = ["failback", "--yes"];
    let mut crashes = 0;
    let mut k = first;
    while k <= LAST_POINT {
        // Refusing rather than silent: the crashes are the subject here, not connect timeouts.
        let at_disaster = rig.disaster_with(pcfail_lab::Disaster {
            silent: false,
            share_lost: false,
        });
        let a = crash_then_resume(&rig, &failover, k);
        let after_failover = rig.status();
        assert_failed_over(&rig, &at_disaster, &after_failover);
        rig.rebuild_primary();
        let b = crash_then_resume(&rig, &failback, k);
        // Also waits until log shipping runs again.
        assert_failed_back(&rig, &after_failover, &rig.status());
        // The next cycle's disaster needs a backlog of log backups, as the first one had.
        rig.wait_for("the rebuilt primary to take a backlog of log backups", |s| {
            primary_log_backups(s).len() >= 4
        });
        crashes += usize::from(a) + usize::from(b);
        if !a && !b {
            break;
        }
        k += 3;
    }
    crashes
}

#[test]
fn crashes_at_points_1_4_7_resume_to_the_same_end() {
    let crashes = chain(1);
    assert!(crashes >= 17, "only {crashes} crash points were reached");
}

#[test]
fn crashes_at_points_2_5_8_resume_to_the_same_end() {
    let crashes = chain(2);
    assert!(crashes >= 17, "only {crashes} crash points were reached");
}

#[test]
fn crashes_at_points_3_6_9_resume_to_the_same_end() {
    let crashes = chain(3);
    assert!(crashes >= 17, "only {crashes} crash points were reached");
}
