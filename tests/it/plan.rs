//! `pcfail plan`: the steps in Microsoft's order with their exact statements, the same steps in text
//! and JSON, and the pool guard.

use serde_json::Value;

use crate::test::{MINIMAL, SHIPPED, Test};

fn stdout(args: &[&str], runbook: &str) -> String {
    let output = Test::new().runbook(runbook).args(args).stderr("").run();
    String::from_utf8(output.stdout).expect("utf-8")
}

/// Asserts that `needles` occur in `haystack` in this order.
fn assert_in_order(haystack: &str, needles: &[&str]) {
    let mut from = 0;
    for needle in needles {
        match haystack[from..].find(needle) {
            Some(at) => from += at + needle.len(),
            None => panic!("{needle:?} not found (in order) in:\n{haystack}"),
        }
    }
}

#[test]
fn failover_plan_prints_microsofts_steps_in_order() {
    let text = stdout(
        &["plan", "failover", "--pool", "atl-cs-001.litwareinc.com"],
        SHIPPED,
    );
    assert_in_order(
        &text,
        &[
            "mgccomp is not failed over",
            "==== POINT OF NO RETURN: from step 1 on",
            "Step 1 of 11: remove-log-shipping",
            "sql on backup (database master):\n    EXEC master.dbo.sp_delete_log_shipping_secondary_database @secondary_database = N'mgc'\n",
            "Step 2 of 11: copy-log-backups",
            "computed at run time:\n    copy each `mgc_*.trn` log backup",
            "Step 3 of 11: apply-log-backups",
            "RESTORE LOG [mgc] FROM DISK = N'<file>' WITH NORECOVERY",
            "Step 4 of 11: end-sessions",
            "KILL <spid>",
            "Step 5 of 11: recover-mgc",
            "IRREVERSIBLE",
            "    RESTORE DATABASE [mgc] WITH RECOVERY\n",
            "Step 6 of 11: confirm-mgc-online",
            "pause for the operator:",
            "Step 7 of 11: move-cms",
            "    # only if `ActiveMasterFqdn` of Get-CsManagementStoreReplicationStatus -CentralManagementStoreStatus is in ATL; this step is off (`run = false`): pcfail stops before step 1 with this command instead\n    Invoke-CsManagementServerFailover -BackupSqlServerFqdn 'dal-sql-001.litwareinc.com' -Force -Confirm:$false\n",
            "Step 8 of 11: set-pool-failed-over",
            "    Set-CsPersistentChatState -Identity 'service:atl-cs-001.litwareinc.com' -PoolState 'FailedOver' -Confirm:$false\n",
            "Step 9 of 11: set-active-servers",
            "    Set-CsPersistentChatActiveServer -Identity 'service:atl-cs-001.litwareinc.com' -ActiveServers @('dal-pc-001.litwareinc.com','dal-pc-002.litwareinc.com') -Confirm:$false\n",
            "Step 10 of 11: mirror-mgc",
            "CREATE ENDPOINT [Mirroring] STATE = STARTED AS TCP (LISTENER_PORT = 5022) FOR DATABASE_MIRRORING (ROLE = PARTNER)",
            "BACKUP DATABASE [mgc] TO DISK = N'\\\\dal-sql-001.litwareinc.com\\Mirroring\\mgc_mirror.bak' WITH INIT, FORMAT, CHECKSUM",
            "RESTORE LOG [mgc] FROM DISK = N'\\\\dal-sql-001.litwareinc.com\\Mirroring\\mgc_mirror.bak' WITH FILE = 2, NORECOVERY",
            "sql on backup_mirror (database master):\n    ALTER DATABASE [mgc] SET PARTNER = N'TCP://dal-sql-001.litwareinc.com:5022'\n",
            "sql on backup (database master):\n    ALTER DATABASE [mgc] SET PARTNER = N'TCP://dal-sql-002.litwareinc.com:5022'\n",
            "Step 11 of 11: mirror-mgccomp",
            "ALTER DATABASE [mgccomp] SET PARTNER",
        ],
    );
}

#[test]
fn failback_plan_prints_its_steps_in_order() {
    // With the keys fail-back would otherwise take from a failover's journal set in the runbook.
    let runbook = crate::test::edit(
        SHIPPED,
        "# backup_share = '\\\\atl-sql-001.litwareinc.com\\LogShipping'\n# copy_folder = 'D:\\LogShippingCopy'\n# copy_job = \"LSCopy_ATL-SQL-001_mgc\"\n# restore_job = \"LSRestore_ATL-SQL-001_mgc\"\n# interval_minutes = 15\n# retention_minutes = 4320\n",
        "backup_share = '\\\\atl-sql-001.litwareinc.com\\LogShipping'\ncopy_folder = 'D:\\LogShippingCopy'\ncopy_job = \"LSCopy_ATL-SQL-001_mgc\"\nrestore_job = \"LSRestore_ATL-SQL-001_mgc\"\ninterval_minutes = 15\nretention_minutes = 4320\n",
    );
    let text = stdout(&["plan", "failback"], &runbook);
    assert_in_order(
        &text,
        &[
            "Step 1 of 12: clear-active-servers",
            "    Set-CsPersistentChatActiveServer -Identity 'service:atl-cs-001.litwareinc.com' -ActiveServers $null -Confirm:$false\n",
            "==== POINT OF NO RETURN: from step 2 on",
            "    ALTER DATABASE [mgc] SET PARTNER OFF\n",
            "    ALTER DATABASE [mgccomp] SET PARTNER OFF\n",
            "    BACKUP DATABASE [mgc] TO DISK = N'\\\\atl-sql-001.litwareinc.com\\LogShipping\\mgc_failback.bak' WITH INIT, FORMAT, CHECKSUM\n",
            "sql on primary (database master):\n    RESTORE DATABASE [mgc] FROM DISK = N'\\\\atl-sql-001.litwareinc.com\\LogShipping\\mgc_failback.bak' WITH FILE = 1, REPLACE, RECOVERY\n",
            "Step 7 of 12: mirror-primary-mgc",
            "sql on primary_mirror (database master):\n    ALTER DATABASE [mgc] SET PARTNER = N'TCP://atl-sql-001.litwareinc.com:5022'\n",
            "sql on primary (database master):\n    ALTER DATABASE [mgc] SET PARTNER = N'TCP://atl-sql-002.litwareinc.com:5022'\n",
            "Step 8 of 12: configure-log-shipping",
            "sql on backup (database master):\n    -- only if `mgc` on backup is not yet a log-shipping secondary\n    RESTORE DATABASE [mgc] FROM DISK = N'\\\\atl-sql-001.litwareinc.com\\LogShipping\\mgc_init.bak' WITH FILE = 1, NORECOVERY, REPLACE\n",
            "EXEC master.dbo.sp_add_log_shipping_primary_database @database = N'mgc', @backup_directory = N'D:\\LogShipping', @backup_share = N'\\\\atl-sql-001.litwareinc.com\\LogShipping', @backup_job_name = N'LSBackup_mgc', @backup_retention_period = 4320, @backup_threshold = 60, @threshold_alert_enabled = 1, @history_retention_period = 5760, @backup_compression = 2, @overwrite = 1\n",
            // No `schedule_start_date` in the runbook: each schedule starts on its instance's date.
            "  computed at run time:\n    EXEC msdb.dbo.sp_add_schedule @schedule_name = N'LSBackupSchedule_mgc', @enabled = 1, @freq_type = 4, @freq_interval = 1, @freq_subday_type = 4, @freq_subday_interval = 15, @freq_recurrence_factor = 0, @active_start_date = <the primary's date at run time>, @active_end_date = 99991231, @active_start_time = 0, @active_end_time = 235900, unless primary has a schedule named `LSBackupSchedule_mgc`\n    from: SELECT GETDATE() on primary, as yyyymmdd (its own date, not this machine's)\n",
            "EXEC msdb.dbo.sp_attach_schedule @job_name = N'LSBackup_mgc', @schedule_id = <the id of the schedule named `LSBackupSchedule_mgc`>, unless the job has a schedule already\n",
            "sql on primary (database master):\n    -- only if primary has no log-shipping alert job (msdb.dbo.log_shipping_monitor_alert)\n    EXEC master.dbo.sp_add_log_shipping_alert_job\n",
            "EXEC msdb.dbo.sp_update_job @job_name = N'LSBackup_mgc', @enabled = 1\n",
            "EXEC master.dbo.sp_add_log_shipping_secondary_primary @primary_server = N'ATL-SQL-001', @primary_database = N'mgc', @backup_source_directory = N'\\\\atl-sql-001.litwareinc.com\\LogShipping', @backup_destination_directory = N'D:\\LogShippingCopy', @copy_job_name = N'LSCopy_ATL-SQL-001_mgc', @restore_job_name = N'LSRestore_ATL-SQL-001_mgc', @file_retention_period = 4320, @overwrite = 1\n",
            "EXEC master.dbo.sp_add_log_shipping_secondary_database @secondary_database = N'mgc', @primary_server = N'ATL-SQL-001', @primary_database = N'mgc', @restore_delay = 0, @restore_mode = 0, @disconnect_users = 0, @restore_threshold = 45, @threshold_alert_enabled = 1, @history_retention_period = 5760, @overwrite = 1\n",
            "sql on backup (database master):\n    -- only if backup has no log-shipping alert job (msdb.dbo.log_shipping_monitor_alert)\n    EXEC master.dbo.sp_add_log_shipping_alert_job\n",
            "EXEC master.dbo.sp_add_log_shipping_primary_secondary @primary_database = N'mgc', @secondary_server = N'DAL-SQL-001', @secondary_database = N'mgc', @overwrite = 1\n",
            "EXEC msdb.dbo.sp_update_job @job_name = N'LSRestore_ATL-SQL-001_mgc', @enabled = 1\n",
            "Step 9 of 12: set-pool-normal",
            "    Set-CsPersistentChatState -Identity 'service:atl-cs-001.litwareinc.com' -PoolState 'Normal' -Confirm:$false\n",
            "Step 10 of 12: wait-cms-replication",
            "computed at run time:\n    wait until every replica reports UpToDate = True, polling every 2 seconds within the step's time\n    from: Get-CsManagementStoreReplicationStatus\n",
            "Step 11 of 12: set-active-servers",
            "    Set-CsPersistentChatActiveServer -Identity 'service:atl-cs-001.litwareinc.com' -ActiveServers @('atl-pc-001.litwareinc.com','atl-pc-002.litwareinc.com') -Confirm:$false\n",
            "Step 12 of 12: test-chat",
            "    Test-CsPersistentChatMessage -TargetFqdn 'atl-cs-001.litwareinc.com'\n",
        ],
    );
}

#[test]
fn failback_without_a_failover_journal_says_where_log_shippings_settings_will_come_from() {
    let text = stdout(&["plan", "failback"], SHIPPED);
    assert_in_order(
        &text,
        &[
            "Step 8 of 12: configure-log-shipping",
            "computed at run time:\n    the log-shipping configuration of `mgc` from primary to backup, as before the failover: backup_share, copy_folder, copy_job, restore_job, interval_minutes, retention_minutes as the failover captured them\n    from: the settings a failover read from msdb on backup before removing log shipping (its journal); none is in this state directory yet\n",
        ],
    );
}

#[test]
fn small_plan_renders_exactly() {
    Test::new()
        .runbook(MINIMAL)
        .args(&["plan", "failback"])
        .stdout(
            "Fail-back plan for Persistent Chat pool atl-cs-001.litwareinc.com
Runbook: runbook.toml
This is a plan only: nothing has been run.

Instances:
  primary         atl-sql-001.litwareinc.com, port 1433 (data center ATL)
  backup          dal-sql-001.litwareinc.com, port 1433 (data center DAL)
Management Shell: `powershell.exe` on this machine

Step 1 of 1: normal
  Set the Persistent Chat pool state to Normal
  [on Skype for Business Management Shell; timeout 5m]
  powershell:
    Set-CsPersistentChatState -Identity 'service:atl-cs-001.litwareinc.com' -PoolState 'Normal' -Confirm:$false
",
        )
        .stderr("")
        .run();
}

/// The step headers of a text plan, as (number, id).
fn text_steps(text: &str) -> Vec<(u64, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("Step "))
        .map(|rest| {
            let (number, rest) = rest.split_once(" of ").expect("numbered");
            let (_, id) = rest.split_once(": ").expect("id");
            (number.parse().expect("number"), id.to_owned())
        })
        .collect()
}

#[test]
fn json_plan_parses_and_lists_the_same_steps_as_text() {
    for operation in ["failover", "failback"] {
        let text = stdout(&["plan", operation], SHIPPED);
        let json: Value =
            serde_json::from_str(&stdout(&["plan", operation, "--format", "json"], SHIPPED))
                .expect("valid JSON");
        assert_eq!(json["format_version"], 1);
        assert_eq!(json["operation"], operation);
        assert_eq!(json["pool"], "atl-cs-001.litwareinc.com");
        let steps: Vec<(u64, String)> = json["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .map(|s| {
                (
                    s["number"].as_u64().expect("number"),
                    s["id"].as_str().expect("id").to_owned(),
                )
            })
            .collect();
        assert_eq!(steps, text_steps(&text), "{operation}");
        // Every command text in the JSON appears verbatim in the text rendering.
        for step in json["steps"].as_array().expect("steps") {
            for command in step["commands"].as_array().expect("commands") {
                if let Some(t) = command["text"].as_str() {
                    assert!(text.contains(t), "{t} missing from the text plan");
                }
            }
        }
    }
}

#[test]
fn json_plan_marks_irreversible_steps_and_the_point_of_no_return() {
    let json: Value =
        serde_json::from_str(&stdout(&["plan", "failover", "--format", "json"], SHIPPED))
            .expect("valid JSON");
    assert_eq!(json["point_of_no_return"], 1);
    let irreversible: Vec<&str> = json["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["irreversible"] == true)
        .map(|s| s["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        irreversible,
        [
            "remove-log-shipping",
            "recover-mgc",
            "mirror-mgc",
            "mirror-mgccomp"
        ]
    );
    let pause = &json["steps"][5];
    assert_eq!(pause["commands"][0]["kind"], "pause");
    assert_eq!(pause["confirm"], true);
    assert_eq!(pause["timeout_seconds"], Value::Null);
}

#[test]
fn plan_refuses_a_pool_other_than_the_runbooks() {
    Test::new()
        .runbook(MINIMAL)
        .args(&["plan", "failover", "--pool", "other.litwareinc.com"])
        .stdout("")
        .stderr("error: --pool `other.litwareinc.com` does not match the runbook's pool `atl-cs-001.litwareinc.com`\n")
        .status(2)
        .run();
}

#[test]
fn plan_accepts_the_pool_in_any_case() {
    Test::new()
        .runbook(MINIMAL)
        .args(&["plan", "failover", "--pool", "ATL-CS-001.litwareinc.com."])
        .stderr("")
        .run();
}

#[test]
fn plan_of_an_invalid_runbook_prints_the_diagnostics_only() {
    Test::new()
        .runbook(&crate::test::edit(MINIMAL, "state = \"Normal\"", "state = \"normal\""))
        .args(&["plan", "failback"])
        .stdout("")
        .stderr("runbook.toml:46:9: error: `state` must be one of `Normal`, `FailedOver`, found `normal`\n")
        .status(2)
        .run();
}
