//! A failure at any fail-back step stops the run (exit 1) naming the step, the instance and the
//! server's or cmdlet's error; with the fault gone, the same command finishes the fail-back and the
//! lab ends as `failback_restores_the_primary_and_log_shipping` expects. The failover counterpart is
//! `run_faults`. Not here: `confirm-restore` (a pause cannot fail under `--yes`) and `set-active-servers`,
//! whose cmdlet is the one `clear-active-servers` calls first, and the lab's cmdlet faults match by
//! cmdlet name only, so a fault meant for it fires at step 1 (covered by the first test).

use pcfail_lab::Role;
use serde_json::{Value, json};

use crate::lab_support::{
    LabRig, RestoreJob, assert_exit, assert_failed_back, assert_failed_over, started_steps, text,
};

const FAILBACK_STEPS: [&str; 12] = [
    "clear-active-servers",
    "unmirror-mgc",
    "unmirror-mgccomp",
    "backup-mgc",
    "confirm-restore",
    "restore-primary-mgc",
    "mirror-primary-mgc",
    "configure-log-shipping",
    "set-pool-normal",
    "wait-cms-replication",
    "set-active-servers",
    "test-chat",
];

fn sql_fault(instance: &str, pattern: &str, error: u32) -> Value {
    json!({ "kind": "sql", "instance": instance, "pattern": pattern, "error": error, "times": 1 })
}

fn cmdlet_fault(cmdlet: &str, message: &str) -> Value {
    json!({ "kind": "cmdlet", "cmdlet": cmdlet, "error": message, "times": 1 })
}

/// Fails over, rebuilds the primary, injects `fault`, and checks the failed and the resumed fail-back.
fn failback_fails_then_resumes(step: &str, fault: Value, error_start: &str) {
    let number = FAILBACK_STEPS
        .iter()
        .position(|s| *s == step)
        .expect("a fail-back step")
        + 1;
    let rig = LabRig::start(RestoreJob::Default);
    let at_disaster = rig.disaster();
    assert_exit(&rig.failover(), 0);
    let after_failover = rig.status();
    assert_failed_over(&rig, &at_disaster, &after_failover);
    rig.rebuild_primary();
    rig.set_faults(json!([fault]));

    let failed = rig.failback();
    assert_exit(&failed, 1);
    let stderr = text(&failed.stderr);
    let expected = format!("error: step {number} (`{step}`) failed: {error_start}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert!(
        matches!(errors.as_slice(), [line] if line.starts_with(&expected)),
        "one error line starting with\n{expected}\nexpected, stderr:\n{stderr}"
    );

    let resumed = rig.failback();
    assert_exit(&resumed, 0);
    // The steps before the failed one ran once; from the failed one on, the journal of the
    // fail-back run shows them again.
    let failback_journal = rig
        .journals()
        .into_iter()
        .find(|records| {
            records
                .first()
                .is_some_and(|r| r["event"] == "run_started" && r["operation"] == "failback")
        })
        .expect("a fail-back journal");
    let mut expected_steps: Vec<String> = FAILBACK_STEPS[..number]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    // A full backup describes a moment: when the restore that uses it has to be redone, the backup
    // is taken again first (the database may have changed since), not trusted from the journal.
    if step == "restore-primary-mgc" {
        expected_steps.push("backup-mgc".to_owned());
    }
    expected_steps.extend(FAILBACK_STEPS[number - 1..].iter().map(|s| (*s).to_owned()));
    assert_eq!(started_steps(&failback_journal), expected_steps);
    assert_failed_back(&rig, &after_failover, &rig.status());
}

#[test]
fn a_cmdlet_error_clearing_the_active_servers_stops_the_failback_and_it_resumes() {
    failback_fails_then_resumes(
        "clear-active-servers",
        cmdlet_fault(
            "Set-CsPersistentChatActiveServer",
            "The Central Management Store is unavailable.",
        ),
        "`Set-CsPersistentChatActiveServer -Identity 'service:atl-cs-001.litwareinc.com' -ActiveServers $null -Confirm:$false` failed: The Central Management Store is unavailable.",
    );
}

#[test]
fn an_error_removing_mirroring_stops_the_failback_and_it_resumes() {
    failback_fails_then_resumes(
        "unmirror-mgc",
        sql_fault("backup", "ALTER DATABASE [mgc] SET PARTNER OFF", 1404),
        "`backup` answered with an error: Msg 1404, Level 16, State 1: The command failed because the database mirror is busy. Reissue the command later.",
    );
}

#[test]
fn an_error_removing_the_compliance_mirroring_stops_the_failback_and_it_resumes() {
    failback_fails_then_resumes(
        "unmirror-mgccomp",
        sql_fault("backup", "ALTER DATABASE [mgccomp] SET PARTNER OFF", 1404),
        "`backup` answered with an error: Msg 1404, Level 16, State 1: ",
    );
}

#[test]
fn an_error_taking_the_full_backup_stops_the_failback_and_it_resumes() {
    failback_fails_then_resumes(
        "backup-mgc",
        sql_fault("backup", "BACKUP DATABASE [mgc]", 3201),
        "`backup` answered with an error: Msg 3201, Level 16, State 1: Cannot open backup device",
    );
}

#[test]
fn an_error_restoring_over_the_primary_stops_the_failback_and_it_resumes() {
    failback_fails_then_resumes(
        "restore-primary-mgc",
        sql_fault("primary", "RESTORE DATABASE [mgc] FROM DISK", 3201),
        "`primary` answered with an error: Msg 3201, Level 16, State 1: Cannot open backup device",
    );
}

#[test]
fn an_error_configuring_log_shipping_stops_the_failback_and_it_resumes() {
    failback_fails_then_resumes(
        "configure-log-shipping",
        sql_fault("backup", "sp_add_log_shipping_secondary_primary", 32024),
        "`backup` answered with an error: Msg 32024, Level 16, State 1: ",
    );
}

#[test]
fn a_cmdlet_error_setting_the_pool_state_stops_the_failback_and_it_resumes() {
    failback_fails_then_resumes(
        "set-pool-normal",
        cmdlet_fault(
            "Set-CsPersistentChatState",
            "The Central Management Store is unavailable.",
        ),
        "`Set-CsPersistentChatState -Identity 'service:atl-cs-001.litwareinc.com' -PoolState 'Normal' -Confirm:$false` failed: The Central Management Store is unavailable.",
    );
}

/// Log shipping records server names as SQL Server knows them: a runbook that names the primary
/// otherwise is stopped at the configure step, before any link is made, and told the real name.
#[test]
fn a_server_name_other_than_the_servers_own_stops_log_shipping_set_up_and_says_which() {
    let rig = LabRig::start(RestoreJob::Default);
    rig.disaster();
    assert_exit(&rig.failover(), 0);
    rig.rebuild_primary();
    rig.edit_runbook_toml(|runbook| {
        runbook["instances"]["primary"]
            .as_table_mut()
            .expect("a table")
            .insert("server_name".into(), "ATL-SQL-OLD".into());
    });
    let output = rig.failback();
    assert_exit(&output, 1);
    let real = &rig
        .manifest()
        .instance(Role::Primary)
        .expect("primary")
        .name;
    assert!(
        text(&output.stderr).contains(&format!(
            "error: step 8 (`configure-log-shipping`) failed: `primary` calls itself `{real}` (@@SERVERNAME), but the runbook names it `ATL-SQL-OLD`; set `server_name = \"{real}\"` under [instances.primary]"
        )),
        "{}",
        text(&output.stderr)
    );
}
