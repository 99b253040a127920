//! pcfail under each reading of what the reference leaves UNVERIFIED: the lab switches a behaviour
//! (a variant, docs/lab.md), and the failover must still end where it should, or stop where a
//! real server would stop it. STYLE.md: "where the reference is UNVERIFIED, let the lab switch
//! between readings and test the client under each".

use pcfail_lab::Role;

use crate::lab_support::{
    LabRig, RestoreJob, assert_exit, assert_failed_back, assert_failed_over, database, text,
};

/// A lab following `name = value`, its primary data center lost.
fn rig_with(name: &str, value: &str) -> LabRig {
    let (name, value) = (name.to_owned(), value.to_owned());
    LabRig::start_with(RestoreJob::Default, move |o| {
        o.variants.insert(name, value);
    })
}

#[test]
fn failover_completes_under_every_reading_it_does_not_depend_on() {
    let cases = [
        ("trn_name_time", "local"),
        ("restore_job_order", "lsn"),
        ("standby_read_only", "0"),
        ("mirroring_partner_name", "server"),
        ("sp_who2_types", "varchar"),
        ("pool_identity", "service"),
        ("delete_secondary_not_configured", "silent"),
    ];
    for (name, value) in cases {
        failed_over_under(name, value);
    }
}

/// The readings the failover alone does not meet, each through a whole failover and fail-back:
/// a recovery or fail-back restore whose database is missing (911), msdb's backupset without the
/// sets a server restored (the fail-back's done-checks), the bulk-logged model's other spelling,
/// and a mirror that accepts `SET PARTNER` without a started endpoint (the principal's 1418 then).
#[test]
fn failover_and_failback_complete_under_the_other_readings() {
    let cases = [
        ("restore_missing_database", "911"),
        ("restore_history_backupset", "absent"),
        ("bulk_logged_desc", "BULK-LOGGED"),
        ("partner_without_endpoint", "accepted"),
    ];
    for (name, value) in cases {
        let (rig, after_failover) = failed_over_under(name, value);
        rig.rebuild_primary();
        completed(&rig.failback(), &format!("fail-back, {name} = {value}"));
        assert_failed_back(&rig, &after_failover, &rig.status());
    }
}

/// A lab following `name = value` after a disaster, failed over by pcfail and checked; the lab's
/// status after the failover.
fn failed_over_under(name: &str, value: &str) -> (LabRig, pcfail_lab::Status) {
    let rig = rig_with(name, value);
    let at_disaster = rig.disaster();
    completed(&rig.failover(), &format!("failover, {name} = {value}"));
    let after = rig.status();
    assert_failed_over(&rig, &at_disaster, &after);
    (rig, after)
}

/// The command exited 0; if not, its output says why.
fn completed(output: &std::process::Output, what: &str) {
    assert_eq!(
        output.status.code(),
        Some(0),
        "{what}:\n{}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

/// A planned failover on a server that lets a mirrored database take its tail-log backup (the
/// other reading of J.1): the same end, the primary fenced and nothing lost.
#[test]
fn a_planned_failover_completes_when_a_mirrored_tail_log_backup_is_allowed() {
    let rig = rig_with("tail_log_on_mirrored", "allowed");
    let pool = rig.pool();
    let output = rig.pcfail(&["failover", "--planned", "--pool", &pool, "--yes"]);
    assert_exit(&output, 0);
    let after = rig.status();
    let primary = database(&after, Role::Primary, "mgc");
    let backup = database(&after, Role::Backup, "mgc");
    assert_eq!(primary["state_desc"], "RESTORING", "fenced: {primary}");
    assert_eq!(backup["state_desc"], "ONLINE", "{backup}");
    assert!(
        backup["chat_records"].as_u64() >= primary["chat_records"].as_u64(),
        "nothing lost: {backup} vs {primary}"
    );
    assert_eq!(after.pool_state, "FailedOver");
}

/// The runbook names the pool `service:<fqdn>`; a shell that takes only the other form is found out
/// before step 1 (the observation asks for the pool by the runbook's identity), and the refusal names
/// the identity the shell reads back. With that identity in the runbook, the failover completes.
#[test]
fn a_shell_that_takes_only_the_other_pool_identity_is_found_out_before_step_1() {
    let rig = rig_with("pool_identity", "persistentchatserver");
    let at_disaster = rig.disaster();
    let output = rig.failover();
    assert_exit(&output, 3);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(
            "error: the pool identity `service:atl-cs-001.litwareinc.com` does not resolve in the Management Shell (Get-CsPersistentChatState: `Get-CsPersistentChatState -Identity 'service:atl-cs-001.litwareinc.com'` failed: Management object not found for identity \"service:atl-cs-001.litwareinc.com\".); the shell knows this pool as `PersistentChatServer:atl-cs-001.litwareinc.com`: set `identity = \"PersistentChatServer:atl-cs-001.litwareinc.com\"` under [pool] in the runbook"
        ),
        "{stderr}"
    );
    let untouched = rig.status();
    assert_eq!(
        crate::lab_support::database(&untouched, pcfail_lab::Role::Backup, "mgc")["state_desc"],
        "RESTORING",
        "nothing was done"
    );
    rig.set_pool_identity("PersistentChatServer:atl-cs-001.litwareinc.com");
    assert_exit(&rig.failover(), 0);
    assert_failed_over(&rig, &at_disaster, &rig.status());
}
