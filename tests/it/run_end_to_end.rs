//! Failover and fail-back end to end: the real `pcfail` binary against a lab over TCP, through the SQL
//! adapter (tiberius) and the PowerShell adapter (the lab's shell), checked from the lab's own state.
//!
//! The first "done when" item, and the start of every other end-to-end file: these two runs
//! are what a fault or an interruption must still end in.

use crate::lab_support::{
    LabRig, OPERATOR, RestoreJob, assert_exit, assert_failed_back, assert_failed_over, text,
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
        lines.iter().all(|l| l["operator"] == OPERATOR),
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
    assert_failed_back(&rig, &after_failover, &rig.status());
}
