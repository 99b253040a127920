//! pcfail against the lab where a real data center hurts: a primary data center that goes silent
//! instead of refusing, a log-shipping share lost with it, an instance that stops on its own.
//!
//! Each test reads the end state from the lab itself (`LabRig::status`), as the other end-to-end
//! files do.

use pcfail_lab::{Disaster, Role};

use crate::lab_support::{LabRig, RestoreJob, assert_exit, assert_failed_over, text};

#[test]
fn failover_runs_while_the_primary_data_center_is_silent() {
    let rig = LabRig::start(RestoreJob::Default);
    let at_disaster = rig.disaster_silent();
    let output = rig.failover();
    assert_exit(&output, 0);
    assert_failed_over(&rig, &at_disaster, &rig.status());
}

/// A share lost with the data center cannot be listed; pcfail stops at the copy step and names it.
/// Once the share is reachable again, running the same command resumes and finishes the failover.
#[test]
fn a_lost_share_stops_the_copy_step_until_the_share_is_back() {
    let rig = LabRig::start(RestoreJob::Default);
    let at_disaster = rig.disaster_with(Disaster {
        silent: true,
        share_lost: true,
    });
    let output = rig.failover();
    assert_exit(&output, 1);
    let stderr = text(&output.stderr);
    let share = rig.share();
    assert!(
        stderr.contains(&format!(
            "step 2 (`copy-log-backups`) failed: cannot list `{}`",
            share.display()
        )),
        "{stderr}"
    );
    rig.set_share_reachable(true);
    assert_exit(&rig.failover(), 0);
    assert_failed_over(&rig, &at_disaster, &rig.status());
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
        stderr.contains("step 8 (`mirror-mgc`) failed: cannot reach `backup_mirror` at ")
            && stderr.contains("Connection refused"),
        "{stderr}"
    );
    rig.start_instance(Role::BackupMirror);
    assert_exit(&rig.failover(), 0);
    assert_failed_over(&rig, &at_disaster, &rig.status());
}
