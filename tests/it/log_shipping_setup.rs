//! What fail-back's `configure-log-shipping` leaves in msdb, read back from the lab after a real
//! failover and fail-back over TCP: the alert job SQL Server's own setup adds (on the primary and on
//! the secondary, no monitor server), schedules that start on the server's date, and server names
//! as `@@SERVERNAME` spells them. How each step fails and resumes is `run_failback_faults`.

use pcfail_lab::{Role, Status};
use serde_json::{Value, json};

use crate::lab_support::{LabRig, RestoreJob, assert_exit, instance, text};

/// A rig failed over with the primary rebuilt: ready for fail-back.
fn failed_over() -> LabRig {
    let rig = LabRig::start(RestoreJob::Default);
    rig.disaster();
    assert_exit(&rig.failover(), 0);
    rig.rebuild_primary();
    rig
}

fn jobs(status: &Status, role: Role) -> Vec<Value> {
    instance(status, role)["jobs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn job(status: &Status, role: Role, name: &str) -> Value {
    jobs(status, role)
        .into_iter()
        .find(|j| j["name"] == name)
        .unwrap_or_else(|| {
            panic!(
                "no job `{name}` on {role:?}: {:#}",
                jobs(status, role).len()
            )
        })
}

fn server_name(rig: &LabRig, role: Role) -> String {
    rig.manifest()
        .instance(role)
        .expect("instance")
        .name
        .clone()
}

/// `yyyymmdd` of the lab's clock when `status` was taken.
fn lab_date(status: &Status) -> i64 {
    let time = status
        .lab_time
        .as_deref()
        .expect("the lab reports its time");
    time[..10].replace('-', "").parse().expect("a date")
}

/// "If a monitor server is not specified, an alert job runs on the primary server instance ... [and]
/// on each secondary server instance" (Microsoft, "Monitor log shipping"): after fail-back each has
/// exactly one `LSAlert_<@@SERVERNAME>`, enabled, on sp_add_log_shipping_alert_job's two-minute
/// schedule. A fail-back stopped after both were added does not send the procedure again on
/// resuming: the done-check read them from msdb.
#[test]
fn failback_adds_one_alert_job_on_each_side_and_a_resumed_run_does_not_add_them_again() {
    let rig = LabRig::start(RestoreJob::Default);
    rig.disaster();
    assert_exit(&rig.failover(), 0);
    let after_failover = rig.status();
    rig.rebuild_primary();
    // The link is the last statement before the jobs are enabled: both alert jobs exist by then.
    rig.set_faults(json!([{ "kind": "sql", "instance": "primary",
        "pattern": "sp_add_log_shipping_primary_secondary", "error": 50000, "times": 1 }]));
    assert_exit(&rig.failback(), 1);
    rig.clear_transcripts();
    assert_exit(&rig.failback(), 0);
    let status = rig.status();
    // The half-made configuration was finished, not taken for done: the link exists, the jobs run,
    // and a new log backup reaches the backup instance (issue 9).
    crate::lab_support::assert_failed_back(&rig, &after_failover, &status);
    for role in [Role::Primary, Role::Backup] {
        let name = format!("LSAlert_{}", server_name(&rig, role));
        let alerts: Vec<Value> = jobs(&status, role)
            .into_iter()
            .filter(|j| {
                j["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("LSAlert_"))
            })
            .collect();
        assert_eq!(alerts.len(), 1, "{role:?}: {alerts:#?}");
        let alert = &alerts[0];
        assert_eq!(alert["name"], name.as_str());
        assert_eq!(alert["category"], "Log Shipping Alert");
        assert_eq!(alert["enabled"], true);
        assert_eq!(
            alert["schedules"][0]["name"],
            "Log shipping alert job schedule."
        );
        assert_eq!(alert["schedules"][0]["freq_subday_interval"], 2);
        let resent: Vec<String> = rig
            .transcript(role)
            .into_iter()
            .map(|e| e.text)
            .filter(|t| t.contains("sp_add_log_shipping_alert_job"))
            .collect();
        assert!(resent.is_empty(), "{role:?} got again: {resent:?}");
    }
}

/// Without `schedule_start_date` the backup, copy and restore schedules start on the lab's own date
/// (read with GETDATE() from each instance), not on a date written into pcfail or the runbook.
#[test]
fn schedules_start_on_the_servers_date_unless_the_runbook_sets_one() {
    let rig = failed_over();
    let before = lab_date(&rig.status());
    assert_exit(&rig.failback(), 0);
    let status = rig.status();
    let after = lab_date(&status);
    for (role, job_name, schedule) in [
        (Role::Primary, "LSBackup_mgc", "LSBackupSchedule_mgc"),
        (Role::Backup, "", "LSCopySchedule_mgc"),
        (Role::Backup, "", "LSRestoreSchedule_mgc"),
    ] {
        let found: Vec<Value> = jobs(&status, role)
            .iter()
            .filter(|j| job_name.is_empty() || j["name"] == job_name)
            .flat_map(|j| j["schedules"].as_array().cloned().unwrap_or_default())
            .filter(|s| s["name"] == schedule)
            .collect();
        assert_eq!(found.len(), 1, "{role:?} {schedule}: {found:?}");
        let date = found[0]["active_start_date"].as_i64().expect("a date");
        assert!(
            (before..=after).contains(&date),
            "{schedule} starts {date}, the lab's date was {before}..={after}"
        );
    }
}

/// A `schedule_start_date` in the runbook is used as written, and the plan shows it.
#[test]
fn a_schedule_start_date_in_the_runbook_is_used_as_written() {
    let rig = failed_over();
    rig.set_step_key(
        "failback",
        "configure-log-shipping",
        "schedule_start_date",
        20_991_231.into(),
    );
    let plan = rig.pcfail(&["plan", "failback"]);
    assert_exit(&plan, 0);
    assert!(
        text(&plan.stdout).contains("@schedule_name = N'LSBackupSchedule_mgc', @enabled = 1, @freq_type = 4, @freq_interval = 1, @freq_subday_type = 4, @freq_subday_interval = 15, @freq_recurrence_factor = 0, @active_start_date = 20991231,"),
        "{}",
        text(&plan.stdout)
    );
    assert_exit(&rig.failback(), 0);
    let status = rig.status();
    let backup = job(&status, Role::Primary, "LSBackup_mgc");
    assert_eq!(backup["schedules"][0]["active_start_date"], 20_991_231);
}

/// The runbook may spell a server name in another case (SQL Server compares names without case);
/// msdb on both sides still records the names as `@@SERVERNAME` spells them, as SQL Server's own
/// setup would.
#[test]
fn log_shipping_records_the_server_names_as_the_servers_spell_them() {
    let rig = failed_over();
    let (primary, backup) = (
        server_name(&rig, Role::Primary),
        server_name(&rig, Role::Backup),
    );
    assert_ne!(
        primary,
        primary.to_lowercase(),
        "the lab's names have capitals"
    );
    rig.edit_runbook_toml(|runbook| {
        for (role, name) in [("primary", &primary), ("backup", &backup)] {
            runbook["instances"][role]
                .as_table_mut()
                .expect("a table")
                .insert("server_name".into(), name.to_lowercase().into());
        }
    });
    let output = rig.failback();
    assert_exit(&output, 0);
    let status = rig.status();
    let ls = &instance(&status, Role::Backup)["log_shipping"];
    assert_eq!(ls["secondary"][0]["primary_server"], primary.as_str());
    let ls = &instance(&status, Role::Primary)["log_shipping"];
    assert_eq!(
        ls["primary"][0]["secondaries"],
        json!([format!("{backup}.mgc")])
    );
}
