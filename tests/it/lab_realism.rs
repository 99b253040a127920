//! pcfail against the lab where a real data center hurts: a primary data center that goes silent
//! instead of refusing, a log-shipping share lost with it, an instance that stops on its own.
//!
//! Each test reads the end state from the lab itself (`LabRig::status`), as the other end-to-end
//! files do.

use pcfail_lab::{Disaster, Role};

use crate::lab_support::{
    LabRig, RestoreJob, assert_exit, assert_failed_over, database, log_restores_since_full,
    primary_log_backups, text,
};

#[test]
fn failover_runs_while_the_primary_data_center_is_silent() {
    let rig = LabRig::start(RestoreJob::Default);
    let at_disaster = rig.disaster();
    let output = rig.failover();
    assert_exit(&output, 0);
    assert_failed_over(&rig, &at_disaster, &rig.status());
}

/// A share lost with the data center cannot be listed: that is data loss to confirm before the first
/// step (reference J.6), not an error after the point of no return. The failover recovers what the
/// copy job had brought over, in an unbroken chain.
#[test]
fn a_share_lost_with_the_data_center_is_a_confirmed_loss_and_the_failover_goes_on() {
    let rig = LabRig::start(RestoreJob::Default);
    let at_disaster = rig.disaster_with(Disaster {
        silent: true,
        share_lost: true,
    });
    let output = rig.failover();
    assert_exit(&output, 0);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "backup share `{}` (msdb), pcfail reaches it as `{}`: CANNOT BE READ",
            rig.sql_share(),
            rig.share().display()
        )) && stderr.contains("LOST: log backups in the share"),
        "{stderr}"
    );
    let after = rig.status();
    assert_eq!(
        database(&after, Role::Backup, "mgc")["state_desc"],
        "ONLINE"
    );
    assert_eq!(after.pool_state, "FailedOver");
    // What was applied is the primary's chain up to what had been copied: a prefix, unbroken.
    let taken = primary_log_backups(&at_disaster);
    let (applied, _) = log_restores_since_full(&after, Role::Backup);
    assert!(
        applied.windows(2).all(|w| w[0].1 == w[1].0),
        "the restored chain is unbroken: {applied:?}"
    );
    assert!(
        applied.iter().all(|a| taken.contains(a)),
        "only the primary's log backups were applied: {applied:?} of {taken:?}"
    );
}

/// The share was readable when the operator confirmed the ledger, then went away before the copy:
/// the copy step stops rather than losing data nobody confirmed; `--accept-data-loss` goes on.
#[test]
fn a_share_that_goes_away_after_the_ledger_stops_the_copy_until_the_loss_is_accepted() {
    let rig = LabRig::start(RestoreJob::Default);
    rig.disaster();
    rig.set_faults(serde_json::json!([
        { "kind": "sql", "instance": "backup", "pattern": "sp_delete_log_shipping_secondary_database", "error": 14262, "times": 1 }
    ]));
    assert_exit(&rig.failover(), 1);
    rig.set_share_reachable(false);
    let output = rig.failover();
    assert_exit(&output, 1);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("error: step 2 (`copy-log-backups`) failed: cannot list `")
            && stderr.contains("the share was readable when the ledger was confirmed. Run the same command again once it is back, or, to apply only what the copy folder holds and lose the rest, run it again with `--accept-data-loss`"),
        "{stderr}"
    );
    let pool = rig.pool();
    assert_exit(
        &rig.pcfail(&["failover", "--pool", &pool, "--yes", "--accept-data-loss"]),
        0,
    );
    assert_eq!(
        database(&rig.status(), Role::Backup, "mgc")["state_desc"],
        "ONLINE"
    );
}

/// An instance whose service stopped refuses at once; the failover stops at the first step that
/// needs it and resumes once it is started again.
#[test]
fn a_stopped_backup_mirror_stops_the_failover_at_the_mirror_step_until_it_is_started() {
    let rig = LabRig::start(RestoreJob::Default);
    let at_disaster = rig.disaster();
    rig.stop_instance(Role::BackupMirror);
    let output = rig.failover();
    assert_exit(&output, 1);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("step 10 (`mirror-mgc`) failed: cannot reach `backup_mirror` at ")
            && stderr.contains("Connection refused"),
        "{stderr}"
    );
    rig.start_instance(Role::BackupMirror);
    assert_exit(&rig.failover(), 0);
    assert_failed_over(&rig, &at_disaster, &rig.status());
}
