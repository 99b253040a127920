//! Killed anywhere, a run resumes to the same end: pcfail is stopped (as by `kill -9`) at crash
//! points all along a failover and a fail-back (before and after journal records: a statement run but
//! not journaled, a step journaled but not acted on; around each copied file's rename), the same
//! command is run again, and the lab must end exactly as after an uninterrupted run, every log
//! backup applied once, in order.
//!
//! The points are counted by a debug-build hook (`PCFAIL_CRASH_AT=N`: stop at the N-th point, exit
//! status 99; see `src/crash.rs`). An operation is run again and again, each attempt stopped a few
//! points further into it than the last one got, until an attempt finishes; every stop is at a
//! different place of the operation (the step it was in and how far into it).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::lab_support::{LabRig, RestoreJob, assert_failed_back, assert_failed_over, text};

/// Where an attempt stopped: the operation, the step it was in, and how many journal records that
/// step's attempt had written.
type Place = (String, String, usize);

/// Runs `args` over and over, the first attempt stopped at crash point `first`, each later one at
/// `preamble` plus a multiple of `stride` (crash points alternate before and after a record, so the
/// parity of `preamble` chooses which), until an attempt completes. Returns the places the attempts
/// stopped at.
fn crash_all_along(
    rig: &LabRig,
    args: &[&str],
    operation: &str,
    first: usize,
    preamble: usize,
    stride: usize,
) -> Vec<Place> {
    let mut places = Vec::new();
    // (step, points past the preamble) already asked for.
    let mut seen: BTreeSet<(String, usize)> = BTreeSet::new();
    let mut k = first;
    let mut further = 0;
    for attempt in 0.. {
        assert!(attempt < 200, "{operation} never finished: {places:?}");
        let output = rig
            .command_in(&rig.state_dir(), args)
            .env("PCFAIL_CRASH_AT", k.to_string())
            .output()
            .expect("run pcfail");
        match output.status.code() {
            Some(0) => return places,
            Some(99) => {}
            other => panic!(
                "pcfail {args:?} stopped at point {k} exited with {other:?}\nstderr:\n{}",
                text(&output.stderr)
            ),
        }
        let place = place_of(rig, operation);
        // A resumed attempt first writes a few records of its own (resumed, the lock, the
        // situation) and then starts again the step that was stopped. The next stop goes `stride`
        // points further into that step, or starts near the beginning of a step reached anew, and
        // goes further still when it would stop where an earlier attempt already did.
        let same_step = places.last().is_some_and(|p: &Place| p.1 == place.1);
        further = if same_step { further + stride } else { stride };
        while seen.contains(&(place.1.clone(), further)) {
            further += stride;
        }
        seen.insert((place.1.clone(), further));
        places.push(place);
        k = preamble + further;
    }
    unreachable!()
}

/// The step the newest journal of `operation` was in, and how many records it had written since.
fn place_of(rig: &LabRig, operation: &str) -> Place {
    // Stopped before its first record, a run leaves an empty journal (the next run removes it).
    let Some(journal) = rig
        .journals()
        .into_iter()
        .rev()
        .find(|records| records.first().is_some_and(|r| r["operation"] == operation))
        .filter(|records| !records.iter().any(|r| r["outcome"] == "completed"))
    else {
        return (operation.to_owned(), "(no record yet)".to_owned(), 0);
    };
    let started = journal.iter().rposition(|r| r["event"] == "step_started");
    match started {
        Some(at) => (
            operation.to_owned(),
            journal[at]["step"].as_str().unwrap_or("?").to_owned(),
            journal.len() - at,
        ),
        None => (
            operation.to_owned(),
            "(before the first step)".to_owned(),
            journal.len(),
        ),
    }
}

/// No full backup was restored over the rebuilt primary's `mgc` twice: an attempt stopped after its
/// `RESTORE ... WITH REPLACE, RECOVERY` (or while the server still worked on it) finds that very
/// backup set restored on resume instead of restoring it again over a database already recovered
/// (issue 9). (A resumed fail-back takes a new full backup when the backup instance's `mgc` moved on
/// since the last one, and restores that: a different set.)
fn assert_restored_over_the_primary_once(rig: &LabRig) {
    let status = rig.status();
    let mut sets: Vec<(String, String)> =
        crate::lab_support::history(&status, pcfail_lab::Role::Primary, "restore_history", "mgc")
            .into_iter()
            .filter(|r| r["type"] == "D")
            .map(|r| (r["first_lsn"].to_string(), r["last_lsn"].to_string()))
            .collect();
    let restores = sets.len();
    sets.sort();
    sets.dedup();
    assert_eq!(
        sets.len(),
        restores,
        "a backup set was restored over the primary more than once: {sets:?}"
    );
}

/// A disaster, a failover crashed all along, a rebuild, a fail-back crashed all along; the lab ends
/// as after uninterrupted runs, and at least `at_least` different places were crashed at.
fn crashes_resume_to_the_same_end(
    first: usize,
    preamble: usize,
    at_least: usize,
    steps_at_least: usize,
) {
    let stride = 2;
    let rig = LabRig::start(RestoreJob::Default);
    // Refusing rather than silent: the crashes are the subject here, not connect timeouts.
    let at_disaster = rig.disaster_with(pcfail_lab::Disaster {
        silent: false,
        share_lost: false,
    });
    let pool = rig.pool();
    let mut places = crash_all_along(
        &rig,
        &["failover", "--pool", &pool, "--yes"],
        "failover",
        first,
        preamble,
        stride,
    );
    let after_failover = rig.status();
    assert_failed_over(&rig, &at_disaster, &after_failover);
    rig.rebuild_primary();
    places.extend(crash_all_along(
        &rig,
        &["failback", "--yes"],
        "failback",
        first,
        preamble,
        stride,
    ));
    assert_failed_back(&rig, &after_failover, &rig.status());
    assert_restored_over_the_primary_once(&rig);

    let distinct: BTreeSet<&Place> = places.iter().collect();
    let steps: BTreeSet<(&str, &str)> = places
        .iter()
        .map(|(op, step, _)| (op.as_str(), step.as_str()))
        .collect();
    assert!(
        distinct.len() >= at_least,
        "only {} different places were crashed at: {places:?}",
        distinct.len()
    );
    // The crashes are spread over the steps of both operations (19 steps, plus before the first;
    // how many each chain reaches depends a little on the size of the backlog).
    assert!(
        steps.len() >= steps_at_least,
        "crashes reached only {steps:?}"
    );
    // The journals tell the same story: every attempt but the last of each operation ended
    // without a closing record, and the last one completed.
    for journal in rig.journals() {
        let last: &Value = journal.last().expect("records");
        assert_eq!(last["event"], "run_finished", "{last}");
        assert_eq!(last["outcome"], "completed", "{last}");
    }
}

#[test]
fn crashes_just_after_journal_records_resume_to_the_same_end() {
    crashes_resume_to_the_same_end(1, 6, 50, 15);
}

#[test]
fn crashes_just_before_journal_records_resume_to_the_same_end() {
    crashes_resume_to_the_same_end(2, 7, 50, 15);
}

/// Where msdb's `backupset` lacks the sets a server restored (a reading the reference leaves
/// UNVERIFIED, lab variant `restore_history_backupset = absent`), a fail-back killed anywhere, its
/// in-doubt `RESTORE DATABASE ... REPLACE` included, still resumes to the same end: the done-checks
/// then rest on the database's own state, not on restore history.
#[test]
fn a_failback_crashed_all_along_resumes_where_restore_history_lacks_backup_sets() {
    let rig = LabRig::start_with(RestoreJob::Default, |o| {
        o.variants
            .insert("restore_history_backupset".to_owned(), "absent".to_owned());
    });
    let at_disaster = rig.disaster_with(pcfail_lab::Disaster {
        silent: false,
        share_lost: false,
    });
    let output = rig.failover();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let after_failover = rig.status();
    assert_failed_over(&rig, &at_disaster, &after_failover);
    rig.rebuild_primary();
    let places = crash_all_along(&rig, &["failback", "--yes"], "failback", 1, 6, 2);
    assert_failed_back(&rig, &after_failover, &rig.status());
    assert_restored_over_the_primary_once(&rig);
    let steps: BTreeSet<&str> = places.iter().map(|(_, step, _)| step.as_str()).collect();
    assert!(
        steps.contains("restore-primary-mgc"),
        "no crash fell in the fail-back's restore: {places:?}"
    );
}
