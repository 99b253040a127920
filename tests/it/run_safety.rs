//! The safety promises of a run, against a lab: a broken log chain stops before recovery, one run at a
//! time (the local lock and the application lock on the backup instance), a plan touches nothing,
//! `plan --check` tells a possible failover from an impossible fail-back, and a run killed with
//! kill -9 resumes where it stopped.

use std::process::Output;

use pcfail_lab::Role;
use serde_json::{Value, json};

use crate::lab_support::{
    LabRig, RestoreJob, assert_exit, assert_failed_over, database, history, journals_in, kill_hard,
    log_restores_since_full, started_steps, text, trn_names,
};

/// The first and last LSN of the primary's log backup written to a file named `name`.
fn lsns_of(status: &pcfail_lab::Status, name: &str) -> (String, String) {
    let backup = history(status, Role::Primary, "backup_history", "mgc")
        .into_iter()
        .find(|b| b["type"] == "L" && b["device"].as_str().is_some_and(|d| d.ends_with(name)))
        .unwrap_or_else(|| panic!("no log backup in `{name}`"));
    let s = |v: &Value| v.as_str().expect("LSN").to_owned();
    (s(&backup["first_lsn"]), s(&backup["last_lsn"]))
}

#[test]
fn gap_in_log_chain_applies_the_prefix_stops_before_recovery_and_recovers_once_the_loss_is_accepted()
 {
    // No restore job: the deleted backup is certainly one the backup instance still needs.
    let rig = LabRig::start(RestoreJob::Idle);
    let at_disaster = rig.disaster();
    let names = trn_names(&at_disaster);
    let (missing, next) = (&names[names.len() / 2], &names[names.len() / 2 + 1]);
    assert!(names.len() >= 4 && missing != &names[0], "{names:?}");
    let (first, last) = lsns_of(&at_disaster, missing);
    // Wait for the copy job to have brought it over, so it is gone from both places afterwards.
    rig.wait_for("the copy job to copy the file to remove", |s| {
        s.copy_folder.iter().any(|f| &f.name == missing)
    });
    std::fs::remove_file(rig.share().join(missing)).expect("delete from the share");
    std::fs::remove_file(rig.copy_folder().join(missing)).expect("delete from the copy folder");

    let output = rig.failover();
    assert_exit(&output, 1);
    let stderr = text(&output.stderr);
    let error: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    // The restore job never ran: every log backup before the missing one is applied by pcfail.
    let before_gap = names.iter().position(|n| n == missing).expect("listed");
    assert_eq!(
        error,
        [format!(
            "error: step 3 (`apply-log-backups`) failed: applied {before_gap} log backup(s), then stopped: the log chain is broken: no log backup covers LSN {first} up to {last} (the next available, `{}`, begins at LSN {last}); put the missing log backup in the copy folder and run the same command again, or accept losing everything after LSN {first} by running it again with `--accept-data-loss`",
            rig.copy_folder().join(next).display()
        )]
    );
    let after = rig.status();
    assert_eq!(
        database(&after, Role::Backup, "mgc")["state_desc"],
        "RESTORING",
        "backup `mgc` must not be recovered past a gap"
    );
    let (applied, _) = log_restores_since_full(&after, Role::Backup);
    assert_eq!(
        applied.last().map(|(_, end)| end.to_string()),
        Some(first.clone()),
        "the prefix up to the gap is applied: {applied:?}"
    );
    assert_eq!(applied.len(), before_gap);
    let journals = rig.journals();
    assert_eq!(
        started_steps(&journals[0]),
        [
            "remove-log-shipping",
            "copy-log-backups",
            "apply-log-backups"
        ]
    );
    assert!(
        !journals[0].iter().any(|r| r["event"] == "command"
            && r["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("RESTORE DATABASE"))),
        "nothing is recovered past a gap"
    );

    // The operator accepts the loss: the same command with --accept-data-loss recovers what there is.
    let pool = rig.pool();
    let accepted = rig.pcfail(&["failover", "--pool", &pool, "--yes", "--accept-data-loss"]);
    assert_exit(&accepted, 0);
    let after = rig.status();
    assert_eq!(
        database(&after, Role::Backup, "mgc")["state_desc"],
        "ONLINE"
    );
    let journal = &rig.journals()[0];
    let acceptance = journal
        .iter()
        .find(|r| r["event"] == "captured" && r["key"] == "data_loss_accepted:mgc")
        .expect("the accepted loss is journaled");
    assert_eq!(acceptance["value"]["from_lsn"], first.as_str());
    assert_eq!(acceptance["value"]["how"], "--accept-data-loss");
}

/// A first run hangs in `Set-CsPersistentChatState` (the lab shell never answers) while holding both
/// locks; a second run on the same machine, and one from "another machine" (its own state
/// directory), are refused with exit 5.
#[test]
fn a_second_run_is_refused_while_one_holds_the_lock() {
    let rig = LabRig::start(RestoreJob::Default);
    rig.disaster();
    rig.set_faults(json!([
        { "kind": "cmdlet", "cmdlet": "Set-CsPersistentChatState", "hang": true }
    ]));
    let pool = rig.pool();
    let args = ["failover", "--pool", pool.as_str(), "--yes"];
    let mut first = rig
        .command_in(&rig.state_dir(), &args)
        .env("USER", "first-operator")
        .env("COMPUTERNAME", "atl-admin-01")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the first run");
    rig.wait_for_step("set-pool-failed-over");

    let second = rig.pcfail(&args);
    assert_exit(&second, 5);
    assert_eq!(
        text(&second.stderr),
        format!(
            "error: another pcfail run holds the lock `{}` (first-operator on atl-admin-01, pid {})\n",
            rig.state_dir().join("pcfail.lock").display(),
            first.id()
        )
    );

    let elsewhere = tempfile::tempdir().expect("another machine's state directory");
    let other_machine: Output = rig
        .command_in(elsewhere.path(), &args)
        .output()
        .expect("run pcfail");
    assert_exit(&other_machine, 5);
    assert_eq!(
        text(&other_machine.stderr),
        format!(
            "error: another pcfail run holds the application lock `pcfail:{pool}` on `backup` (sp_getapplock timed out)\n"
        )
    );
    assert!(
        journals_in(elsewhere.path()).is_empty(),
        "a refused run leaves no journal to resume"
    );
    assert_eq!(rig.journals().len(), 1, "the refused run wrote no journal");

    kill_hard(&mut first);
}

#[test]
fn plan_against_the_lab_touches_nothing() {
    let rig = LabRig::start(RestoreJob::Default);
    rig.disaster();
    let cms = std::fs::read(rig.lab_dir().join("cms.json")).ok();
    rig.clear_transcripts();
    for operation in ["failover", "failback"] {
        let output = rig.pcfail(&["plan", operation]);
        assert_exit(&output, 0);
        assert!(
            text(&output.stdout).contains("Set-CsPersistentChatState"),
            "the plan shows the cmdlets it would run:\n{}",
            text(&output.stdout)
        );
    }
    for role in Role::ALL {
        assert_eq!(
            rig.transcript(role),
            [],
            "`pcfail plan` sent something to {role:?}"
        );
    }
    assert!(
        !rig.state_dir().exists(),
        "`pcfail plan` created the state directory (journal or lock)"
    );
    assert_eq!(
        std::fs::read(rig.lab_dir().join("cms.json")).ok(),
        cms,
        "`pcfail plan` changed the shell's store"
    );

    // The control: the transcript does record what a connecting command sends.
    assert_exit(&rig.pcfail(&["plan", "failover", "--check"]), 0);
    assert_ne!(rig.transcript(Role::Backup), []);
}

/// The rows of a `plan --check` table: (PASS or FAIL, check, detail).
fn check_rows(stdout: &str) -> Vec<(String, String, String)> {
    stdout
        .split("\nPrecondition checks (read-only):\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no check table in:\n{stdout}"))
        .lines()
        .filter_map(|l| {
            let (verdict, rest) = l.split_once("  ")?;
            // Columns are padded with spaces; names and details contain single spaces only.
            let (check, detail) = rest.split_once("  ").unwrap_or((rest, ""));
            ["PASS", "FAIL"].contains(&verdict).then(|| {
                (
                    verdict.to_owned(),
                    check.to_owned(),
                    detail.trim_start().to_owned(),
                )
            })
        })
        .collect()
}

#[test]
fn plan_check_passes_before_a_failover_and_fails_for_a_failback_without_a_primary() {
    let rig = LabRig::start(RestoreJob::Default);
    rig.disaster();
    let before = rig.status();

    let failover = rig.pcfail(&["plan", "failover", "--check"]);
    assert_exit(&failover, 0);
    let stdout = text(&failover.stdout);
    let rows = check_rows(&stdout);
    let checks: Vec<&str> = rows.iter().map(|(_, check, _)| check.as_str()).collect();
    assert_eq!(
        checks,
        [
            "the situation calls for a failover",
            "instance `backup` reachable, sysadmin",
            "instance `backup_mirror` reachable, sysadmin",
            "log shipping of `mgc` configured on `backup`",
            "backup share readable",
            "copy folder readable",
            "`mgc` on `backup` is restoring",
            "cmdlet `Set-CsPersistentChatState` and its parameters exist",
            "cmdlet `Get-CsPersistentChatState` and its parameters exist",
            "cmdlet `Set-CsPersistentChatActiveServer` and its parameters exist",
        ],
        "{stdout}"
    );
    assert!(
        rows.iter().all(|(verdict, _, _)| verdict == "PASS"),
        "every check passes before a failover:\n{stdout}"
    );
    assert!(stdout.ends_with("all 10 checks passed\n"), "{stdout}");

    let failback = rig.pcfail(&["plan", "failback", "--check"]);
    assert_exit(&failback, 3);
    let stdout = text(&failback.stdout);
    let failed: Vec<(String, String)> = check_rows(&stdout)
        .into_iter()
        .filter(|(verdict, _, _)| verdict == "FAIL")
        .map(|(_, check, detail)| (check, detail))
        .collect();
    let primary = rig
        .manifest()
        .instance(Role::Primary)
        .expect("primary")
        .address;
    assert_eq!(
        failed,
        [
            (
                "the situation calls for a fail-back".to_owned(),
                "the pool is not failed over (pool state Normal; no primary-side copy of `mgc` serves, and the backup's copy is restoring: the primary data center is lost): there is nothing to fail back".to_owned(),
            ),
            (
                "instance `primary` reachable, sysadmin".to_owned(),
                format!("cannot reach `primary` at {primary}: Connection refused (os error 111)")
            ),
            // A fail-back starts from a failed-over pool, whose backup `mgc` is online.
            (
                "`mgc` on `backup` is online".to_owned(),
                "it is RESTORING".to_owned()
            ),
        ],
        "{stdout}"
    );
    assert!(stdout.ends_with(" checks failed\n"), "{stdout}");

    // Read-only: nothing changed on the backup side, and no journal was written.
    let after = rig.status();
    for db in ["mgc", "mgccomp"] {
        assert_eq!(
            database(&after, Role::Backup, db)["state_desc"],
            database(&before, Role::Backup, db)["state_desc"]
        );
    }
    assert_eq!(after.pool_state, before.pool_state);
    assert!(!rig.state_dir().exists(), "`plan --check` wrote a journal");
}

#[test]
fn interrupted_run_resumes_where_it_stopped() {
    let rig = LabRig::start(RestoreJob::Default);
    let at_disaster = rig.disaster();
    rig.set_faults(json!([
        { "kind": "cmdlet", "cmdlet": "Set-CsPersistentChatState", "hang": true }
    ]));
    let pool = rig.pool();
    let args = ["failover", "--pool", pool.as_str(), "--yes"];
    let mut first = rig.spawn_pcfail(&args);
    rig.wait_for_step("set-pool-failed-over");
    kill_hard(&mut first);
    rig.set_faults(json!([]));

    let output = rig.pcfail(&args);
    assert_exit(&output, 0);
    let stdout = text(&output.stdout);
    let reported: Vec<(String, String)> = stdout
        .lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            // "   7. set-pool-failed-over         done            1.2s"
            (words.len() >= 4 && words[0].ends_with('.'))
                .then(|| (words[1].to_owned(), words[2..words.len() - 1].join(" ")))
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("remove-log-shipping", "done earlier"),
        ("copy-log-backups", "done earlier"),
        ("apply-log-backups", "done earlier"),
        ("end-sessions", "done earlier"),
        ("recover-mgc", "done earlier"),
        ("confirm-mgc-online", "done earlier"),
        ("set-pool-failed-over", "done"),
        ("mirror-mgc", "done"),
        ("mirror-mgccomp", "done"),
        ("set-active-servers", "done"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(reported, expected, "{stdout}");

    let journals = rig.journals();
    assert_eq!(journals.len(), 1, "the rerun resumed the killed run");
    let started = started_steps(&journals[0]);
    assert_eq!(
        started,
        [
            "remove-log-shipping",
            "copy-log-backups",
            "apply-log-backups",
            "end-sessions",
            "recover-mgc",
            "confirm-mgc-online",
            "set-pool-failed-over",
            "set-pool-failed-over",
            "mirror-mgc",
            "mirror-mgccomp",
            "set-active-servers",
        ]
    );
    assert!(
        journals[0].iter().any(|r| r["event"] == "run_resumed"),
        "the journal says the run was resumed"
    );
    assert_failed_over(&rig, &at_disaster, &rig.status());
}
