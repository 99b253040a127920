//! Journal integrity: a damaged journal stops pcfail before anything is touched, naming the file and
//! the first bad line; `pcfail journal verify` checks chains; the empty journal of a run killed before
//! its first record is cleaned up.

use pcfail_lab::Role;

use crate::lab_support::{LabRig, RestoreJob, assert_exit, database, text};

#[test]
fn a_damaged_journal_stops_every_run_and_verify_names_the_first_bad_line() {
    let rig = LabRig::start(RestoreJob::Default);
    rig.disaster();
    assert_exit(&rig.failover(), 0);
    let run = rig.run_ids().pop().expect("the failover");
    let journal = rig.state_dir().join("runs").join(format!("{run}.jsonl"));

    let verified = rig.pcfail(&["journal", "verify", &run]);
    assert_exit(&verified, 0);
    assert!(
        text(&verified.stdout).contains(&format!("\n{run}: ok, ")),
        "{}",
        text(&verified.stdout)
    );

    // Someone rewrites who ran it, on line 1, leaving every other line as it was.
    let original = std::fs::read_to_string(&journal).expect("journal");
    let tampered = original.replacen("e2e-operator", "someone-else", 1);
    assert_ne!(original, tampered);
    std::fs::write(&journal, &tampered).expect("tamper");

    let damage = format!(
        "error: the journal `{}` is damaged at line 2: its hash chain is broken (a record was changed, removed or reordered); it was not changed",
        journal.display()
    );
    let verified = rig.pcfail(&["journal", "verify", "--all"]);
    assert_exit(&verified, 2);
    assert!(
        text(&verified.stdout).ends_with(&format!("{run}: DAMAGED\n")),
        "{}",
        text(&verified.stdout)
    );
    assert_eq!(text(&verified.stderr), format!("{damage}\n"));

    rig.rebuild_primary();
    let before = database(&rig.status(), Role::Backup, "mgc")["state_desc"].clone();
    let refused = rig.failback();
    assert_exit(&refused, 2);
    assert_eq!(
        text(&refused.stderr),
        format!(
            "{damage}; pcfail will not guess where that run stood, so nothing was done. Keep the file for the record, move it out of `{}`, and look at the servers (`pcfail status --live`) before running again\n",
            rig.state_dir().join("runs").display()
        )
    );
    assert_eq!(
        database(&rig.status(), Role::Backup, "mgc")["state_desc"],
        before
    );
    let status = rig.pcfail(&["status"]);
    assert_exit(&status, 2);
}

#[test]
fn the_empty_journal_of_a_run_killed_before_its_first_record_is_removed() {
    let rig = LabRig::start(RestoreJob::Default);
    rig.disaster();
    let runs = rig.state_dir().join("runs");
    std::fs::create_dir_all(&runs).expect("runs folder");
    let empty = runs.join("20260101T000000.000Z-failover.jsonl");
    std::fs::write(&empty, b"").expect("an empty journal");
    let output = rig.failover();
    assert_exit(&output, 0);
    assert!(
        text(&output.stderr).contains(&format!(
            "note: removed `{}`, the empty journal of a run stopped before its first record",
            empty.display()
        )),
        "{}",
        text(&output.stderr)
    );
    assert!(!empty.exists());
}

/// A journal rewritten whole, with its hash chain recomputed so that it is consistent again, passes a
/// chain check; the anchor the run left on the backup instance exposes it.
#[test]
fn a_journal_rewritten_with_a_consistent_chain_is_caught_by_its_anchor() {
    let rig = LabRig::start(RestoreJob::Default);
    rig.disaster();
    let output = rig.failover();
    assert_exit(&output, 0);
    assert!(
        text(&output.stdout).contains(
            "journal anchored on `backup` (SQL Server error log, event 61700): pcfail anchor run="
        ),
        "{}",
        text(&output.stdout)
    );
    let run = rig.run_ids().pop().expect("the failover");
    let journal = rig.state_dir().join("runs").join(format!("{run}.jsonl"));
    let verified = rig.pcfail(&["journal", "verify", &run]);
    assert_exit(&verified, 0);
    assert!(
        text(&verified.stdout).contains(&format!("{run}: ok, "))
            && text(&verified.stdout).contains(", anchored on `backup` up to record "),
        "{}",
        text(&verified.stdout)
    );

    // The 15-line script: change who ran it, then recompute every record's `prev` hash.
    let mut prev = String::new();
    let mut rewritten = String::new();
    for line in std::fs::read_to_string(&journal).expect("journal").lines() {
        let mut record: serde_json::Value = serde_json::from_str(line).expect("a record");
        if record["operator"] == "e2e-operator" {
            record["operator"] = "someone-else".into();
        }
        record["prev"] = prev.clone().into();
        let line = serde_json::to_string(&record).expect("JSON");
        prev = sha256_hex(line.as_bytes());
        rewritten.push_str(&line);
        rewritten.push('\n');
    }
    std::fs::write(&journal, rewritten).expect("rewrite");

    // The chain alone cannot tell...
    let chain_only = rig.pcfail(&["journal", "verify", &run, "--chain-only"]);
    assert_exit(&chain_only, 0);
    // ...the anchor can.
    let verified = rig.pcfail(&["journal", "verify", &run]);
    assert_exit(&verified, 2);
    assert!(
        text(&verified.stdout).ends_with(&format!("{run}: DAMAGED\n")),
        "{}",
        text(&verified.stdout)
    );
    assert!(
        text(&verified.stderr).starts_with(&format!("error: run {run}: record "))
            && text(&verified.stderr).contains("is not the one anchored on `backup`"),
        "{}",
        text(&verified.stderr)
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
