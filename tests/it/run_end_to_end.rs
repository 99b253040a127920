//! Failover and fail-back end to end: the real `pcfail` binary against a lab over TCP, through the SQL
//! adapter (tiberius) and the PowerShell adapter (the lab's shell), checked from the lab's own state.
//!
//! The first "done when" item, and the start of every other end-to-end file: these two runs
//! are what a fault or an interruption must still end in.

use crate::lab_support::{
    LabRig, RestoreJob, assert_exit, assert_failed_back, assert_failed_over, operator, text,
};

#[test]
fn failover_leaves_the_backup_online_mirrored_and_the_pool_failed_over() {
    let rig = LabRig::start(RestoreJob::Default);
    let at_disaster = rig.disaster();
    let output = rig.failover();
    assert_exit(&output, 0);
    let stdout = text(&output.stdout);
    assert!(
        stdout.starts_with(&format!("failover of {} completed (run ", rig.pool())),
        "{stdout}"
    );
    assert_failed_over(&rig, &at_disaster, &rig.status());

    // `--yes` answered for the operator, and the journal says so: at the point of no return (after
    // the data-loss ledger was captured) and at the operator check.
    let journal = &rig.journals()[0];
    let confirmed: Vec<(&str, &str)> = journal
        .iter()
        .filter(|r| r["event"] == "confirmed")
        .filter_map(|r| Some((r["step"].as_str()?, r["how"].as_str()?)))
        .collect();
    assert_eq!(
        confirmed,
        [
            ("remove-log-shipping", "--yes"),
            ("confirm-mgc-online", "--yes")
        ]
    );
    assert!(
        journal
            .iter()
            .any(|r| r["event"] == "captured" && r["key"] == "data_loss_ledger"),
        "the data-loss ledger is journaled"
    );
}

/// Neither the journal nor the audit log holds the SQL login's password, though every statement and
/// cmdlet of the run is in them.
#[test]
fn a_run_leaves_no_password_in_its_journal_or_audit_log() {
    let rig = LabRig::start(RestoreJob::Default);
    rig.disaster();
    assert_exit(&rig.failover(), 0);
    let audit = std::fs::read_to_string(rig.state_dir().join("audit.jsonl")).expect("audit log");
    let lines: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["text"] == "RESTORE DATABASE [mgc] WITH RECOVERY" && l["target"] == "backup"),
        "the audit log records the statements sent"
    );
    assert!(
        lines.iter().all(|l| l["operator"] == operator()),
        "every audit line names the operator"
    );
    let password = &rig.manifest().login.password;
    for entry in std::fs::read_dir(rig.state_dir().join("runs")).expect("runs") {
        let path = entry.expect("entry").path();
        let journal = std::fs::read_to_string(&path).expect("journal");
        assert!(!journal.contains(password.as_str()), "{}", path.display());
    }
    assert!(
        !audit.contains(password.as_str()),
        "the audit log holds the password"
    );
}

#[test]
fn failback_restores_the_primary_and_log_shipping() {
    let rig = LabRig::start(RestoreJob::Default);
    let at_disaster = rig.disaster();
    assert_exit(&rig.failover(), 0);
    let after_failover = rig.status();
    assert_failed_over(&rig, &at_disaster, &after_failover);

    rig.rebuild_primary();
    let output = rig.failback();
    assert_exit(&output, 0);
    assert!(
        text(&output.stdout).starts_with(&format!("failback of {} completed (run ", rig.pool())),
        "{}",
        text(&output.stdout)
    );
    // The synthetic check Microsoft documents ends the fail-back, and the summary says how it went.
    assert!(
        text(&output.stdout).contains("\ncheck: Test-CsPersistentChatMessage: Success (latency "),
        "{}",
        text(&output.stdout)
    );
    assert_failed_back(&rig, &after_failover, &rig.status());
}

/// Fail-back puts back the log shipping the failover removed: the share, the copy folder and the
/// job names msdb had before failover step 1, read from the failover's journal; a value the runbook
/// sets differently is used, and the plan says so.
#[test]
fn failback_puts_back_the_log_shipping_the_failover_removed_and_notes_what_the_runbook_changes() {
    let rig = LabRig::start(RestoreJob::Default);
    let secondary = |status: &pcfail_lab::Status| {
        crate::lab_support::instance(status, pcfail_lab::Role::Backup)["log_shipping"]["secondary"]
            [0]
        .clone()
    };
    let job_names = |status: &pcfail_lab::Status| -> Vec<String> {
        let mut names: Vec<String> = crate::lab_support::instance(status, pcfail_lab::Role::Backup)
            ["jobs"]
            .as_array()
            .map(|jobs| {
                jobs.iter()
                    .filter_map(|j| j["name"].as_str().map(str::to_owned))
                    .filter(|n| n.starts_with("LSCopy") || n.starts_with("LSRestore"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    let before = rig.status();
    let at_disaster = rig.disaster();
    assert_exit(&rig.failover(), 0);
    let after_failover = rig.status();
    assert_failed_over(&rig, &at_disaster, &after_failover);
    rig.rebuild_primary();

    rig.set_step_key(
        "failback",
        "configure-log-shipping",
        "retention_minutes",
        999.into(),
    );

    let failover_run = rig.run_ids()[0].clone();
    let plan = rig.pcfail(&["plan", "failback"]);
    assert_exit(&plan, 0);
    let stdout = text(&plan.stdout);
    for note in [
        format!(
            "step 8 (`configure-log-shipping`) puts back log shipping as it was before the failover: backup_share, copy_folder, copy_job, restore_job, interval_minutes from the settings run {failover_run} captured"
        ),
        format!(
            "fail-back sets log shipping's `retention_minutes` to `999` as the runbook says; before the failover (run {failover_run}) msdb had `4320`"
        ),
    ] {
        assert!(stdout.contains(&note), "{note}\nnot in:\n{stdout}");
    }

    assert_exit(&rig.failback(), 0);
    let after = rig.status();
    for key in ["backup_source_directory", "backup_destination_directory"] {
        assert_eq!(secondary(&after)[key], secondary(&before)[key], "{key}");
    }
    assert_eq!(job_names(&after), job_names(&before));
}

/// Journals, the audit log, the lock and the host script are the operator's alone, even under
/// `umask 000`: they hold every statement, and the script is code pcfail runs.
#[cfg(unix)]
#[test]
fn state_files_are_owner_only_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let rig = LabRig::start(RestoreJob::Default);
    rig.disaster();
    let pool = rig.pool();
    let inner = rig.command_in(&rig.state_dir(), &["failover", "--pool", &pool, "--yes"]);
    let line: Vec<String> = std::iter::once(inner.get_program())
        .chain(inner.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect();
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg(format!("umask 000; exec {}", line.join(" ")));
    for (name, value) in inner.get_envs() {
        if let Some(value) = value {
            command.env(name, value);
        }
    }
    let output = command.output().expect("sh runs pcfail");
    assert_exit(&output, 0);
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let state = rig.state_dir();
    assert_eq!(mode(&state), 0o700, "the state directory");
    assert_eq!(mode(&state.join("runs")), 0o700, "the runs folder");
    for file in ["audit.jsonl", "pcfail.lock"] {
        assert_eq!(mode(&state.join(file)), 0o600, "{file}");
    }
    for id in rig.run_ids() {
        assert_eq!(
            mode(&state.join("runs").join(format!("{id}.jsonl"))),
            0o600,
            "{id}"
        );
    }
}
