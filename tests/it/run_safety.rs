//! The safety promises of a run, against a lab: a broken log chain stops before recovery, one run at a
//! time (the local lock and the application lock on the backup instance), a plan touches nothing,
//! `plan --check` tells a possible failover from an impossible fail-back, and a run killed with
//! kill -9 resumes where it stopped.

use std::process::Output;

use pcfail_lab::Role;
use serde_json::{Value, json};

use crate::lab_support::{
    LabRig, RestoreJob, assert_exit, assert_failed_over, database, history, host, journals_in,
    kill_hard, log_restores_since_full, operator, started_steps, text, trn_names,
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
            LabRig::sql_file(&rig.sql_copy_folder(), next)
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
            "error: another pcfail run holds the lock `{}` ({} on {}, pid {})\n",
            rig.state_dir().join("pcfail.lock").display(),
            operator(),
            host(),
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
            "mirroring endpoint of `backup` fits the runbook",
            "mirroring endpoint of `backup_mirror` fits the runbook",
            "cmdlet `Invoke-CsManagementServerFailover` and its parameters exist",
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
    assert!(stdout.ends_with("all 13 checks passed\n"), "{stdout}");

    let failback = rig.pcfail(&["plan", "failback", "--check"]);
    assert_exit(&failback, 3);
    let stdout = text(&failback.stdout);
    let failed: Vec<(String, String)> = check_rows(&stdout)
        .into_iter()
        .filter(|(verdict, _, _)| verdict == "FAIL")
        .map(|(_, check, detail)| (check, detail))
        .collect();
    assert_eq!(
        failed,
        [
            (
                "the situation calls for a fail-back".to_owned(),
                "the pool is not failed over (pool state Normal; no primary-side copy of `mgc` serves, and the backup's copy is restoring: the primary data center is lost): there is nothing to fail back".to_owned(),
            ),
            // A lost data center does not refuse: it never answers.
            (
                "instance `primary` reachable, sysadmin".to_owned(),
                format!(
                    "cannot reach `primary` at 127.0.0.1\\PCHAT (SQL Browser on UDP port {}): SQL Browser did not answer for instance `PCHAT` (the host does not answer, its SQL Browser service is stopped, or it has no instance of that name)",
                    rig.manifest().instance(Role::Primary).and_then(|i| i.browser).expect("a Browser").port()
                )
            ),
            // The fail-back mirrors the primary's `mgc` again: its mirror is needed too.
            (
                "instance `primary_mirror` reachable, sysadmin".to_owned(),
                format!(
                    "cannot reach `primary_mirror` at 127.0.0.1\\PCHAT (SQL Browser on UDP port {}): SQL Browser did not answer for instance `PCHAT` (the host does not answer, its SQL Browser service is stopped, or it has no instance of that name)",
                    rig.manifest().instance(Role::PrimaryMirror).and_then(|i| i.browser).expect("a Browser").port()
                )
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

    // As JSON, the plan and the checks are one document.
    let json = rig.pcfail(&["plan", "failback", "--check", "--format", "json"]);
    assert_exit(&json, 3);
    let document: Value = serde_json::from_slice(&json.stdout).expect("one JSON document");
    assert_eq!(document["ok"], false);
    assert_eq!(document["plan"]["operation"], "failback");
    assert_eq!(
        document["checks"]
            .as_array()
            .map(|c| c.iter().filter(|r| r["ok"] == false).count()),
        Some(failed.len())
    );

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
        ("move-cms", "done earlier"),
        ("set-pool-failed-over", "done"),
        ("set-active-servers", "done, not verified"),
        ("mirror-mgc", "done"),
        ("mirror-mgccomp", "done"),
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
            "move-cms",
            "set-pool-failed-over",
            "set-pool-failed-over",
            "set-active-servers",
            "mirror-mgc",
            "mirror-mgccomp",
        ]
    );
    assert!(
        journals[0].iter().any(|r| r["event"] == "run_resumed"),
        "the journal says the run was resumed"
    );
    assert_failed_over(&rig, &at_disaster, &rig.status());
}

/// SIGTERM (a service manager, `kill`) ends a run the way Ctrl-C does: the PowerShell host is not
/// left behind, the journal records the interruption, the exit status is 130, and the same command
/// resumes.
#[cfg(unix)]
#[test]
fn sigterm_stops_the_run_and_its_host_and_the_run_resumes() {
    let rig = LabRig::start(RestoreJob::Default);
    rig.disaster();
    rig.set_faults(json!([
        { "kind": "cmdlet", "cmdlet": "Set-CsPersistentChatState", "hang": true, "times": 1 }
    ]));
    let pool = rig.pool();
    let args = ["failover", "--pool", pool.as_str(), "--yes"];
    let child = rig
        .command_in(&rig.state_dir(), &args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start pcfail");
    rig.wait_for_step("set-pool-failed-over");
    // The step starts with a read of the pool state; wait until the hanging Set- call itself took
    // the fault, so the resumed run does not hang on it in turn.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while rig.faults()[0]["times"] != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the fault never fired"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let host = crate::lab_support::children_of(child.id());
    assert!(!host.is_empty(), "the PowerShell host runs");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let output = child.wait_with_output().expect("pcfail ends");
    assert_exit(&output, 130);
    let journal = rig
        .state_dir()
        .join("runs")
        .join(format!("{}.jsonl", rig.run_ids().pop().expect("a run")));
    assert_eq!(
        text(&output.stderr).lines().last(),
        Some(
            format!(
                "interrupted by SIGTERM; the journal `{}` records where the run stopped: run the same command again to resume (the step that was running is examined again first)",
                journal.display()
            )
            .as_str()
        )
    );
    for pid in host {
        // The host was killed with its parent's run: nothing by that id is left (or only a zombie
        // already reaped by init).
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| !stat.contains(") Z "));
        assert!(!alive, "the PowerShell host {pid} outlived the run");
    }
    let last = rig.journals()[0].last().cloned().expect("records");
    assert_eq!(
        (&last["event"], &last["outcome"], &last["reason"]),
        (
            &json!("run_finished"),
            &json!("interrupted"),
            &json!("interrupted by SIGTERM")
        )
    );
    // The same command resumes and finishes.
    assert_exit(&rig.failover(), 0);
    assert_eq!(rig.run_ids().len(), 1, "the interrupted run was resumed");
}

/// A closed stderr (the terminal went away, `2>&-`) does not stop a run half-way.
#[cfg(unix)]
#[test]
fn a_closed_stderr_does_not_stop_a_run() {
    let rig = LabRig::start(RestoreJob::Default);
    let at_disaster = rig.disaster();
    let pool = rig.pool();
    let inner = rig.command_in(&rig.state_dir(), &["failover", "--pool", &pool, "--yes"]);
    let line: Vec<String> = std::iter::once(inner.get_program())
        .chain(inner.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect();
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg(format!("exec {} 2>&-", line.join(" ")));
    for (name, value) in inner.get_envs() {
        if let Some(value) = value {
            command.env(name, value);
        }
    }
    let output = command.output().expect("sh runs pcfail");
    assert_exit(&output, 0);
    assert_failed_over(&rig, &at_disaster, &rig.status());
    // What was meant for stderr did not land in a file pcfail opened in its place.
    let status = rig.pcfail(&["status", "--format", "json"]);
    let runs: Value = serde_json::from_slice(&status.stdout).expect("JSON");
    assert_eq!(runs["damaged"], json!([]), "{runs:#}");
    let lock = std::fs::read_to_string(rig.state_dir().join("pcfail.lock")).expect("lock");
    assert!(!lock.contains("situation:"), "{lock}");
}

/// Ctrl-C while pcfail waits for the operator's confirmation interrupts at once (exit 130), instead
/// of after the next Enter as "the operator did not confirm".
#[cfg(unix)]
#[test]
fn ctrl_c_at_a_confirmation_interrupts_at_once() {
    use std::io::{Read, Write};
    let rig = LabRig::start(RestoreJob::Default);
    rig.disaster();
    let pool = rig.pool();
    let inner = rig.command_in(&rig.state_dir(), &["failover", "--pool", &pool]);
    let quoted: Vec<String> = std::iter::once(inner.get_program())
        .chain(inner.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect();
    // `exec`: whatever shell `script` starts (bash execs a lone command, dash does not), pcfail is
    // then the terminal's foreground process, as when an operator types the command.
    let mut outer = std::process::Command::new("script");
    outer
        .args(["-qec", &format!("exec {}", quoted.join(" ")), "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    for (name, value) in inner.get_envs() {
        if let Some(value) = value {
            outer.env(name, value);
        }
    }
    let mut script = outer
        .spawn()
        .expect("script (util-linux) gives pcfail a terminal");
    let mut stdout = script.stdout.take().expect("stdout");
    // A run that never answers must fail this test, not hang the suite: after two minutes the
    // terminal is taken away (SIGHUP to pcfail) and the reads below see its end.
    let (finished, watchdog) = std::sync::mpsc::channel::<()>();
    let script_pid = script.id().to_string();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            watchdog.recv_timeout(std::time::Duration::from_secs(120))
        {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &script_pid])
                .status();
        }
    });
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("Type the pool's FQDN") {
        let n = stdout.read(&mut buf).expect("read the terminal");
        assert!(n > 0, "no prompt:\n{}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    // Ctrl-C as the operator presses it: the terminal turns it into SIGINT for its foreground
    // process group.
    let mut keyboard = script.stdin.take().expect("stdin");
    keyboard.write_all(b"\x03").expect("type Ctrl-C");
    keyboard.flush().expect("flush");
    let _ = stdout.read_to_end(&mut seen);
    let status = script.wait().expect("script ends");
    drop(finished);
    assert_eq!(
        status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    assert!(
        String::from_utf8_lossy(&seen).contains("interrupted by Ctrl-C (SIGINT)"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    assert_eq!(
        database(&rig.status(), Role::Backup, "mgc")["state_desc"],
        "RESTORING",
        "nothing ran"
    );
}

/// The run lock on the backup instance is confirmed before every step: when its session is gone
/// (killed, or its connection broke), another pcfail may hold the lock, so the run stops at once.
#[test]
fn a_lost_run_lock_stops_the_run_before_the_next_step() {
    let rig = LabRig::start(RestoreJob::Default);
    let at_disaster = rig.disaster();
    rig.set_faults(json!([
        { "kind": "sql", "instance": "backup", "pattern": "SELECT 1 AS pcfail_run_lock_alive", "drop_connection": true, "times": 1 }
    ]));
    let output = rig.failover();
    assert_exit(&output, 1);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("error: step 1 (`remove-log-shipping`) failed: the run lock `pcfail:")
            && stderr.contains("was lost ("),
        "{stderr}"
    );
    assert_eq!(
        started_steps(&rig.journals()[0]),
        Vec::<String>::new(),
        "nothing ran without the lock"
    );
    assert_exit(&rig.failover(), 0);
    assert_failed_over(&rig, &at_disaster, &rig.status());
}

/// The runbook's timeout bounds a step as a whole: statements that each finish in time but together
/// take longer stop the step, and the message says it was the step's timeout.
#[test]
fn a_step_timeout_bounds_the_whole_step_not_each_statement() {
    let rig = LabRig::start(RestoreJob::Idle);
    let at_disaster = rig.disaster();
    assert!(trn_names(&at_disaster).len() >= 4, "a backlog to apply");
    rig.set_step_key("failover", "apply-log-backups", "timeout", "1s".into());
    // Each restore takes 0.7 s: the first fits in the step's second, the second does not.
    rig.set_faults(json!([
        { "kind": "sql", "instance": "backup", "pattern": "RESTORE LOG", "delay_ms": 700 }
    ]));
    let output = rig.failover();
    assert_exit(&output, 1);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("error: step 3 (`apply-log-backups`) failed: the step's timeout of 1s ran out while `backup` was still working on `RESTORE LOG [mgc] FROM DISK = N'"),
        "{stderr}"
    );
    assert_eq!(
        database(&rig.status(), Role::Backup, "mgc")["state_desc"],
        "RESTORING"
    );
    rig.set_faults(json!([]));
    assert_exit(&rig.failover(), 0);
    assert_failed_over(&rig, &at_disaster, &rig.status());
}

/// A RESTORE the client gave up on keeps running on the server. The next attempt waits for it (it is
/// visible in `sys.dm_exec_requests`) instead of racing it, then finds it applied: every log backup
/// is restored once.
#[test]
fn a_restore_still_running_on_the_server_is_waited_for_not_raced() {
    let rig = LabRig::start(RestoreJob::Idle);
    let at_disaster = rig.disaster();
    rig.set_step_key("failover", "apply-log-backups", "timeout", "2s".into());
    // The first RESTORE LOG takes the server 6 s; the client gives up after 2.
    rig.set_faults(json!([
        { "kind": "sql", "instance": "backup", "pattern": "RESTORE LOG", "run_ms": 6000, "times": 1 }
    ]));
    let first = rig.failover();
    assert_exit(&first, 1);
    assert!(
        text(&first.stderr).contains(
            "the step's timeout of 2s ran out while `backup` was still working on `RESTORE LOG"
        ),
        "{}",
        text(&first.stderr)
    );
    // At once, while the server still restores: the next attempt waits for that RESTORE (within
    // its step's 2 s, so it may have to be run once more) and never sends one of its own beside it.
    let mut attempts = Vec::new();
    loop {
        let output = rig.failover();
        let code = output.status.code();
        attempts.push(text(&output.stderr));
        match code {
            Some(0) => break,
            Some(1) if attempts.len() < 4 => continue,
            other => panic!(
                "attempt {} exited with {other:?}: {attempts:?}",
                attempts.len()
            ),
        }
    }
    assert!(
        attempts[0].contains("waiting for `RESTORE LOG` of `mgc` by session "),
        "{attempts:?}"
    );
    assert!(
        attempts.iter().all(|a| !a.contains("Msg 3101")),
        "no RESTORE raced the running one: {attempts:?}"
    );
    assert_failed_over(&rig, &at_disaster, &rig.status());
}
