//! A failure at any failover step stops the run (exit 1) with a message naming the step, the instance
//! and the server's error; once the fault is gone, the same command finishes the run without redoing
//! what was done. The second "done when" item, one test per step.
//!
//! SQL faults are matched by the lab on the statement a step sends (a case-insensitive substring), and
//! `"times"` makes them fire only so often, so "the fault is cleared" needs nothing from the test; the
//! copy step's fault is on the file system, and the test undoes it. The operator-check step
//! (`confirm-mgc-online`, a pause) cannot fail under `--yes`: there is nothing to inject there.
//!
//! Then the rest of issue 9's fault matrix, each through the same scenario: the shell crashing or
//! hanging past its step's timeout, a connection dropped under a statement, an instance stopped
//! mid-run, a statement slower than its step's timeout, a read-only copy folder. Not here: a full
//! copy folder (it needs a small file system mounted over the folder, which takes privileges a test
//! run may not have).

use pcfail_lab::Role;
use serde_json::{Value, json};

use crate::lab_support::{
    LabRig, RestoreJob, assert_exit, assert_failed_over, database, operator, started_steps, text,
    trn_names,
};

/// One failover step and how to make it fail.
struct Fault {
    /// The step's id and number in the shipped runbook.
    step: &'static str,
    number: usize,
    restore: RestoreJob,
    /// Makes the step fail; called after the disaster, before the first run.
    inject: fn(&LabRig),
    /// Undoes what `inject` did that does not undo itself (`times` rules run out on their own).
    clear: fn(&LabRig),
    /// The error line pcfail prints (paths differ per lab, hence a function).
    error: fn(&LabRig) -> String,
    /// False when only the beginning of the line is pcfail's and the rest is the lab's approximation
    /// of a server text (placeholders it cannot fill faithfully).
    whole_line: bool,
}

const FAILOVER_STEPS: [&str; 11] = [
    "remove-log-shipping",
    "copy-log-backups",
    "apply-log-backups",
    "end-sessions",
    "recover-mgc",
    "confirm-mgc-online",
    "move-cms",
    "set-pool-failed-over",
    "set-active-servers",
    "mirror-mgc",
    "mirror-mgccomp",
];

fn nothing(_: &LabRig) {}

fn sql_fault(instance: &str, pattern: &str, error: u32, times: u32) -> Value {
    json!({ "kind": "sql", "instance": instance, "pattern": pattern, "error": error, "times": times })
}

fn cmdlet_fault(cmdlet: &str, message: &str) -> Value {
    json!({ "kind": "cmdlet", "cmdlet": cmdlet, "error": message, "times": 1 })
}

/// The whole scenario: disaster, fault, failed run, fault gone, the same command again.
fn fails_then_resumes(fault: Fault) {
    fails_then_resumes_while(fault, nothing);
}

/// [`fails_then_resumes`], with `during` run on a thread of its own while the failing run runs: for
/// faults that must strike mid-run (an instance stopped once the run reached a step).
fn fails_then_resumes_while(fault: Fault, during: fn(&LabRig)) {
    assert_eq!(
        FAILOVER_STEPS[fault.number - 1],
        fault.step,
        "step numbering"
    );
    let rig = LabRig::start(fault.restore);
    let at_disaster = rig.disaster();
    (fault.inject)(&rig);

    let failed = std::thread::scope(|scope| {
        let during = scope.spawn(|| during(&rig));
        let failed = rig.failover();
        during.join().expect("the mid-run fault was injected");
        failed
    });
    assert_exit(&failed, 1);
    let stderr = text(&failed.stderr);
    let error_lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    let expected = (fault.error)(&rig);
    match error_lines.as_slice() {
        [line] if fault.whole_line => assert_eq!(*line, expected),
        [line] => assert!(
            line.starts_with(&expected),
            "{line}\nshould start with\n{expected}"
        ),
        _ => panic!("one error line expected, stderr:\n{stderr}"),
    }
    assert!(
        stderr.contains(
            "the run stopped before anything else was done; fix the cause and run the same command again to resume at this step"
        ),
        "{stderr}"
    );
    // Every counted rule fired as often as it was meant to, so the rerun runs without it.
    let rules = rig.lab_dir().join("faults.json");
    if rules.exists() {
        for rule in rig.faults().as_array().expect("rules") {
            assert!(
                rule.get("times").is_none_or(|t| t == 0),
                "a fault rule did not fire as often as intended: {rule}"
            );
        }
    }
    let run = rig.run_ids().pop().expect("the failed run left a journal");
    let status = rig.pcfail(&["status"]);
    assert_exit(&status, 0);
    assert_eq!(
        text(&status.stdout),
        format!(
            "{run}: failover of {} by {}: failed; last step: {} (failed)\n",
            rig.pool(),
            operator(),
            fault.step
        )
    );
    (fault.clear)(&rig);

    let resumed = rig.failover();
    assert_exit(&resumed, 0);
    let stdout = text(&resumed.stdout);
    for (i, step) in FAILOVER_STEPS.iter().enumerate() {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(*step))
            .unwrap_or_else(|| panic!("no report line for `{step}`:\n{stdout}"));
        // The copy describes a moment: when the apply that uses it failed, it is examined again
        // (and found already done) rather than trusted from the journal.
        if *step == "copy-log-backups" && fault.step == "apply-log-backups" {
            assert!(line.contains(" already done "), "{line}");
            continue;
        }
        let earlier = line.contains(" done earlier ");
        assert_eq!(
            earlier,
            i + 1 < fault.number,
            "`{step}` should be reported done earlier exactly when it precedes the failed step: {line}"
        );
    }
    assert!(
        text(&resumed.stderr).contains(": resuming run "),
        "{}",
        text(&resumed.stderr)
    );

    // One journal, resumed: the steps before the failure started once, the failed one twice.
    let journals = rig.journals();
    assert_eq!(journals.len(), 1, "the rerun resumes the same run");
    let mut expected: Vec<String> = FAILOVER_STEPS[..fault.number]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    if fault.step == "apply-log-backups" {
        expected.push("copy-log-backups".to_owned());
    }
    expected.extend(
        FAILOVER_STEPS[fault.number - 1..]
            .iter()
            .map(|s| (*s).to_owned()),
    );
    assert_eq!(started_steps(&journals[0]), expected);

    let status = rig.pcfail(&["status"]);
    assert_eq!(
        text(&status.stdout),
        format!(
            "{run}: failover of {} by {}: completed; last step: mirror-mgccomp (done)\n",
            rig.pool(),
            operator()
        )
    );
    assert_failed_over(&rig, &at_disaster, &rig.status());
}

fn step_error(number: usize, step: &str, what: &str) -> String {
    format!("error: step {number} (`{step}`) failed: {what}")
}

#[test]
fn an_error_removing_log_shipping_stops_the_run_and_the_same_command_resumes() {
    fails_then_resumes(Fault {
        step: "remove-log-shipping",
        number: 1,
        restore: RestoreJob::Default,
        inject: |rig| {
            // A job deleted by hand makes sp_delete_job, called inside, fail; not "already removed".
            rig.set_faults(json!([sql_fault(
                "backup",
                "sp_delete_log_shipping_secondary_database",
                14262,
                1
            )]));
        },
        clear: nothing,
        // The lab fills the placeholders of 14262 ("The specified %s ('%s') does not exist.") from
        // the statement's literals, which SQL Server would fill with `@job_id` and the job's id.
        error: |_| {
            step_error(
                1,
                "remove-log-shipping",
                "`backup` answered with an error: Msg 14262, Level 16, State 1: The specified ",
            )
        },
        whole_line: false,
    });
}

#[test]
fn an_unusable_copy_folder_stops_the_run_and_the_same_command_resumes() {
    fails_then_resumes(Fault {
        step: "copy-log-backups",
        number: 2,
        restore: RestoreJob::Default,
        inject: |rig| {
            // The folder replaced by a file: nothing can be listed or written inside it.
            let copy = rig.copy_folder();
            std::fs::rename(&copy, copy.with_extension("away")).expect("move the copy folder");
            std::fs::write(&copy, b"not a folder").expect("a file in its place");
        },
        clear: |rig| {
            let copy = rig.copy_folder();
            std::fs::remove_file(&copy).expect("remove the file");
            std::fs::rename(copy.with_extension("away"), &copy).expect("restore the copy folder");
        },
        error: |rig| {
            let first = first_file_examined(rig);
            step_error(
                2,
                "copy-log-backups",
                &format!(
                    "cannot copy `{}` to `{}`: Not a directory (os error 20)",
                    rig.share().join(&first).display(),
                    rig.copy_folder().join(&first).display()
                ),
            )
        },
        whole_line: true,
    });
}

#[test]
fn an_error_applying_a_log_backup_stops_the_run_and_the_same_command_resumes() {
    fails_then_resumes(Fault {
        step: "apply-log-backups",
        number: 3,
        // Nothing restored by the lab's job: the step certainly sends RESTORE LOG.
        restore: RestoreJob::Idle,
        inject: |rig| rig.set_faults(json!([sql_fault("backup", "RESTORE LOG", 3201, 1)])),
        clear: nothing,
        error: |rig| {
            let first = first_file_examined(rig);
            step_error(
                3,
                "apply-log-backups",
                &format!(
                    "`backup` answered with an error: Msg 3201, Level 16, State 1: Cannot open backup device '{}'. Operating system error 2(The system cannot find the file specified.).",
                    LabRig::sql_file(&rig.sql_copy_folder(), &first)
                ),
            )
        },
        whole_line: true,
    });
}

#[test]
fn an_error_ending_a_session_stops_the_run_and_the_same_command_resumes() {
    fails_then_resumes(Fault {
        step: "end-sessions",
        number: 4,
        restore: RestoreJob::Default,
        inject: |rig| {
            // A session in `mgc` would make the earlier RESTORE LOG fail with 3101, so wait until
            // the lab's own restore job has applied everything: then pcfail applies nothing.
            let newest = crate::lab_support::primary_log_backups(&rig.status())
                .last()
                .expect("log backups")
                .1
                .to_string();
            rig.wait_for("the restore job to catch up", |s| {
                database(s, Role::Backup, "mgc")["redo_start_lsn"] == newest.as_str()
            });
            rig.set_faults(json!([
                { "kind": "session", "instance": "backup", "database": "mgc", "count": 1 },
                sql_fault("backup", "KILL", 6107, 1),
            ]));
        },
        clear: nothing,
        error: |_| {
            step_error(
                4,
                "end-sessions",
                "`backup` answered with an error: Msg 6107, Level 14, State 1: Only user processes can be killed.",
            )
        },
        whole_line: true,
    });
}

#[test]
fn recovery_that_stays_blocked_past_its_retries_stops_the_run_and_the_same_command_resumes() {
    fails_then_resumes(Fault {
        step: "recover-mgc",
        number: 5,
        restore: RestoreJob::Default,
        // The step retries 3101 twice after ending sessions again; a third 3101 is a failure.
        inject: |rig| {
            rig.set_faults(json!([sql_fault(
                "backup",
                "RESTORE DATABASE [mgc] WITH RECOVERY",
                3101,
                3
            )]))
        },
        clear: nothing,
        error: |_| {
            step_error(
                5,
                "recover-mgc",
                "`backup` answered with an error: Msg 3101, Level 16, State 1: Exclusive access could not be obtained because the database is in use.",
            )
        },
        whole_line: true,
    });
}

#[test]
fn a_cmdlet_error_setting_the_pool_state_stops_the_run_and_the_same_command_resumes() {
    fails_then_resumes(Fault {
        step: "set-pool-failed-over",
        number: 8,
        restore: RestoreJob::Default,
        inject: |rig| {
            rig.set_faults(json!([cmdlet_fault(
                "Set-CsPersistentChatState",
                "Cannot connect to the Central Management Store."
            )]))
        },
        clear: nothing,
        error: |_| {
            step_error(
                8,
                "set-pool-failed-over",
                "`Set-CsPersistentChatState -Identity 'service:atl-cs-001.litwareinc.com' -PoolState 'FailedOver' -Confirm:$false` failed: Cannot connect to the Central Management Store.",
            )
        },
        whole_line: true,
    });
}

#[test]
fn an_unreachable_mirror_partner_stops_the_run_and_the_same_command_resumes() {
    fails_then_resumes(Fault {
        step: "mirror-mgc",
        number: 10,
        restore: RestoreJob::Default,
        inject: |rig| {
            // The mirror's SET PARTNER (sent first) cannot reach the principal's endpoint.
            rig.set_faults(json!([sql_fault(
                "backup_mirror",
                "ALTER DATABASE [mgc] SET PARTNER",
                1418,
                1
            )]))
        },
        clear: nothing,
        // The lab fills 1418's address placeholder with the statement's first literal (`mgc`);
        // SQL Server names the partner address there.
        error: |_| {
            step_error(
                10,
                "mirror-mgc",
                "`backup_mirror` answered with an error: Msg 1418, Level 16, State 1: The server network address \"",
            )
        },
        whole_line: false,
    });
}

#[test]
fn a_principal_refusing_its_mirror_partner_stops_the_run_and_the_same_command_resumes() {
    // The mirror's SET PARTNER succeeded, the principal's failed: the re-run must clear the mirror's
    // half-made session before restoring it again (RESTORE would refuse it with 3104).
    fails_then_resumes(Fault {
        step: "mirror-mgc",
        number: 10,
        restore: RestoreJob::Default,
        inject: |rig| {
            rig.set_faults(json!([sql_fault(
                "backup",
                "ALTER DATABASE [mgc] SET PARTNER",
                1412,
                1
            )]))
        },
        clear: nothing,
        error: |_| {
            step_error(
                10,
                "mirror-mgc",
                "`backup` answered with an error: Msg 1412, Level 16, State 1: The remote copy of database \"mgc\" has not been rolled forward to a point in time that is encompassed in the local copy of the database log.",
            )
        },
        whole_line: true,
    });
}

#[test]
fn an_error_backing_up_mgccomp_for_its_mirror_stops_the_run_and_the_same_command_resumes() {
    fails_then_resumes(Fault {
        step: "mirror-mgccomp",
        number: 11,
        restore: RestoreJob::Default,
        inject: |rig| {
            rig.set_faults(json!([sql_fault(
                "backup",
                "BACKUP DATABASE [mgccomp]",
                3201,
                1
            )]))
        },
        clear: nothing,
        error: |rig| {
            step_error(
                11,
                "mirror-mgccomp",
                &format!(
                    "`backup` answered with an error: Msg 3201, Level 16, State 1: Cannot open backup device '{}'. Operating system error 2(The system cannot find the file specified.).",
                    LabRig::sql_file(&rig.sql_backups(), "mgccomp_mirror.bak")
                ),
            )
        },
        whole_line: true,
    });
}

#[test]
fn a_cmdlet_error_setting_the_active_servers_stops_the_run_and_the_same_command_resumes() {
    fails_then_resumes(Fault {
        step: "set-active-servers",
        number: 9,
        restore: RestoreJob::Default,
        inject: |rig| {
            rig.set_faults(json!([cmdlet_fault(
                "Set-CsPersistentChatActiveServer",
                "The server dal-pc-002.litwareinc.com is not a Persistent Chat server of this pool."
            )]))
        },
        clear: nothing,
        error: |_| {
            step_error(
                9,
                "set-active-servers",
                "`Set-CsPersistentChatActiveServer -Identity 'service:atl-cs-001.litwareinc.com' -ActiveServers @('dal-pc-001.litwareinc.com','dal-pc-002.litwareinc.com') -Confirm:$false` failed: The server dal-pc-002.litwareinc.com is not a Persistent Chat server of this pool.",
            )
        },
        whole_line: true,
    });
}

/// The shell process (the PowerShell host) dies while a cmdlet runs: the step fails naming the host's
/// exit and the cmdlet it was running, and the next run starts a new host.
#[test]
fn a_shell_crashing_mid_cmdlet_stops_the_run_and_the_same_command_resumes() {
    fails_then_resumes(Fault {
        step: "set-pool-failed-over",
        number: 8,
        restore: RestoreJob::Default,
        inject: |rig| {
            rig.set_faults(json!([
                { "kind": "cmdlet", "cmdlet": "Set-CsPersistentChatState", "crash": true, "times": 1 }
            ]))
        },
        clear: nothing,
        error: |_| {
            step_error(
                8,
                "set-pool-failed-over",
                "`Set-CsPersistentChatState -Identity 'service:atl-cs-001.litwareinc.com' -PoolState 'FailedOver' -Confirm:$false` did not finish: the PowerShell host exited unexpectedly (exit status: 1)",
            )
        },
        whole_line: true,
    });
}

/// A cmdlet that never answers is bounded by its step's timeout: the host is stopped, the step fails
/// naming the cmdlet and the timeout, and the next run (with a host that answers) finishes.
#[test]
fn a_shell_hanging_past_the_step_timeout_stops_the_run_and_the_same_command_resumes() {
    fails_then_resumes(Fault {
        step: "set-active-servers",
        number: 9,
        restore: RestoreJob::Default,
        inject: |rig| {
            rig.set_step_key("failover", "set-active-servers", "timeout", "2s".into());
            rig.set_faults(json!([
                { "kind": "cmdlet", "cmdlet": "Set-CsPersistentChatActiveServer", "hang": true, "times": 1 }
            ]));
        },
        clear: nothing,
        error: |_| {
            step_error(
                9,
                "set-active-servers",
                "the step's timeout of 2s ran out while `Set-CsPersistentChatActiveServer -Identity 'service:atl-cs-001.litwareinc.com' -ActiveServers @('dal-pc-001.litwareinc.com','dal-pc-002.litwareinc.com') -Confirm:$false` was still running; the PowerShell host was stopped",
            )
        },
        whole_line: true,
    });
}

/// The connection breaks while the server has a RESTORE LOG in hand (the lab drops it before running
/// the statement): the step fails naming the instance and the broken connection; the next run
/// reconnects and applies every log backup once.
#[test]
fn a_connection_dropped_mid_restore_stops_the_run_and_the_same_command_resumes() {
    fails_then_resumes(Fault {
        step: "apply-log-backups",
        number: 3,
        restore: RestoreJob::Idle,
        inject: |rig| {
            rig.set_faults(json!([
                { "kind": "sql", "instance": "backup", "pattern": "RESTORE LOG", "drop_connection": true, "times": 1 }
            ]))
        },
        clear: nothing,
        error: |_| {
            step_error(
                3,
                "apply-log-backups",
                "the connection to `backup` failed: ",
            )
        },
        whole_line: false,
    });
}

/// The same on the mirroring statement, sent to the mirror instance.
#[test]
fn a_connection_dropped_mid_set_partner_stops_the_run_and_the_same_command_resumes() {
    fails_then_resumes(Fault {
        step: "mirror-mgc",
        number: 10,
        restore: RestoreJob::Default,
        inject: |rig| {
            rig.set_faults(json!([
                { "kind": "sql", "instance": "backup_mirror", "pattern": "ALTER DATABASE [mgc] SET PARTNER", "drop_connection": true, "times": 1 }
            ]))
        },
        clear: nothing,
        error: |_| {
            step_error(
                10,
                "mirror-mgc",
                "the connection to `backup_mirror` failed: ",
            )
        },
        whole_line: false,
    });
}

/// The mirror instance stops while the run is in the mirroring step (held there by a slow full
/// backup on the principal, so the stop lands mid-step): the step fails naming `backup_mirror` and
/// the closed connection; once the instance is started again, the same command finishes.
#[test]
fn an_instance_stopped_mid_run_stops_the_run_and_the_same_command_resumes() {
    fails_then_resumes_while(
        Fault {
            step: "mirror-mgc",
            number: 10,
            restore: RestoreJob::Default,
            inject: |rig| {
                rig.set_faults(json!([
                    { "kind": "sql", "instance": "backup", "pattern": "BACKUP DATABASE [mgc]", "run_ms": 3000, "times": 1 }
                ]))
            },
            clear: |rig| rig.start_instance(Role::BackupMirror),
            // The session pcfail opened on the mirror earlier in the step is closed under it.
            error: |_| {
                step_error(
                    10,
                    "mirror-mgc",
                    "the connection to `backup_mirror` failed: ",
                )
            },
            whole_line: false,
        },
        |rig| {
            rig.wait_for_step("mirror-mgc");
            // Once the principal is busy with the backup (the rule fired), the mirror's turn is
            // still to come: stop it now.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while rig.faults()[0]["times"] != 0 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the BACKUP never started"
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            rig.stop_instance(Role::BackupMirror);
        },
    );
}

/// A statement the server works on for longer than 30 seconds (a large database's BACKUP for its
/// mirror) finishes within its step's timeout: no library default cuts it off (tiberius's own command
/// timeout is 30 s; issue 9).
#[test]
fn a_statement_longer_than_thirty_seconds_finishes_within_its_step_timeout() {
    let rig = LabRig::start(RestoreJob::Default);
    let at_disaster = rig.disaster();
    rig.set_step_key("failover", "mirror-mgccomp", "timeout", "10m".into());
    rig.set_faults(json!([
        { "kind": "sql", "instance": "backup", "pattern": "BACKUP DATABASE [mgccomp]", "run_ms": 35_000, "times": 1 }
    ]));
    let started = std::time::Instant::now();
    assert_exit(&rig.failover(), 0);
    assert_failed_over(&rig, &at_disaster, &rig.status());
    assert_eq!(rig.faults()[0]["times"], 0, "the slow BACKUP ran");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(35),
        "the run waited for the slow BACKUP"
    );
}

/// How long the slow statement below keeps the server busy, and the step timeout that gives up first.
const SLOW_RUN_MS: u64 = 5000;

/// A statement the server takes longer over than its step may (the BACKUP of `mgccomp` for its
/// mirror): the step fails naming the timeout, the instance and the statement; once the server has
/// finished it, the same command (same timeout) finishes the failover.
#[test]
fn a_statement_slower_than_its_step_timeout_stops_the_run_and_the_same_command_resumes() {
    fails_then_resumes(Fault {
        step: "mirror-mgccomp",
        number: 11,
        restore: RestoreJob::Default,
        inject: |rig| {
            rig.set_step_key("failover", "mirror-mgccomp", "timeout", "2s".into());
            rig.set_faults(json!([
                { "kind": "sql", "instance": "backup", "pattern": "BACKUP DATABASE [mgccomp]", "run_ms": SLOW_RUN_MS, "times": 1 }
            ]));
        },
        // The server finishes the abandoned BACKUP on its own: cleared once it is done.
        clear: |_| std::thread::sleep(std::time::Duration::from_millis(SLOW_RUN_MS)),
        error: |_| {
            step_error(
                11,
                "mirror-mgccomp",
                "the step's timeout of 2s ran out while `backup` was still working on `BACKUP DATABASE [mgccomp]",
            )
        },
        whole_line: false,
    });
}

/// Makes `folder` refuse new files even to root (tests may run as root, for whom mode 0555 does not
/// bite): mode 0555, and where that is not enough the immutable attribute (`chattr +i`, which root
/// can set on the file systems tests use). Panics if neither makes the folder read-only.
#[cfg(unix)]
fn make_read_only(folder: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o555)).expect("chmod 0555");
    let probe = folder.join(".write-probe");
    if std::fs::write(&probe, b"x").is_ok() {
        std::fs::remove_file(&probe).expect("remove probe");
        let status = std::process::Command::new("chattr")
            .arg("+i")
            .arg(folder)
            .status()
            .expect("run chattr");
        assert!(
            status.success(),
            "cannot make `{}` read-only",
            folder.display()
        );
        assert!(
            std::fs::write(&probe, b"x").is_err(),
            "`{}` is still writable",
            folder.display()
        );
    }
}

#[cfg(unix)]
fn make_writable(folder: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    // Fails harmlessly where the attribute was never set (a run as another user).
    let _ = std::process::Command::new("chattr")
        .arg("-i")
        .arg(folder)
        .stderr(std::process::Stdio::null())
        .status();
    std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o755)).expect("chmod 0755");
}

/// A copy folder that refuses new files (read-only): the copy step fails naming the file it could
/// not write and why; once the folder is writable again, the same command finishes.
#[cfg(unix)]
#[test]
fn a_read_only_copy_folder_stops_the_run_and_the_same_command_resumes() {
    fails_then_resumes(Fault {
        step: "copy-log-backups",
        number: 2,
        restore: RestoreJob::Default,
        inject: |rig| {
            // Emptied first (as a retention clean-up would), so the step has files to write.
            for entry in std::fs::read_dir(rig.copy_folder()).expect("list the copy folder") {
                std::fs::remove_file(entry.expect("entry").path()).expect("remove a copy");
            }
            make_read_only(&rig.copy_folder());
        },
        clear: |rig| make_writable(&rig.copy_folder()),
        error: |rig| {
            let first = first_file_examined(rig);
            // The cause is the OS's: "Permission denied" (mode 0555) or "Operation not permitted"
            // (immutable, as root); a write of our own, while the fault is in place, says which.
            let cause = std::fs::write(rig.copy_folder().join(".write-probe"), b"x")
                .expect_err("the copy folder is read-only");
            step_error(
                2,
                "copy-log-backups",
                &format!(
                    "cannot copy `{}` to `{}`: {cause}",
                    rig.share().join(&first).display(),
                    rig.copy_folder().join(&first).display()
                ),
            )
        },
        whole_line: true,
    });
}

/// The journal of the failed run records the server's error on the statement that failed, with its
/// number, for the audit trail (not only on stderr).
#[test]
fn the_journal_keeps_the_server_error_of_the_failed_statement() {
    let rig = LabRig::start(RestoreJob::Idle);
    rig.disaster();
    rig.set_faults(json!([sql_fault("backup", "RESTORE LOG", 3201, 1)]));
    assert_exit(&rig.failover(), 1);
    let journals = rig.journals();
    let failed: Vec<&Value> = journals[0]
        .iter()
        .filter(|r| r["event"] == "command" && r["ok"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["step"], "apply-log-backups");
    assert_eq!(failed[0]["target"], "backup");
    assert_eq!(failed[0]["error"]["number"], 3201);
    assert!(
        failed[0]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("RESTORE LOG [mgc] FROM DISK = N'")),
        "{}",
        failed[0]["text"]
    );
}

/// A log backup corrupt in the share (and so in the copy folder) is found before step 1, named, and
/// nothing is changed; once the share holds a good copy again, the same command copies it again over
/// the bad copy and finishes (the share's copy of a name is the one checked, since the copy step
/// copies it again).
#[test]
fn a_corrupt_log_backup_repaired_in_the_share_is_copied_again_and_the_failover_finishes() {
    let rig = LabRig::start(RestoreJob::Idle);
    let at_disaster = rig.disaster();
    let names = trn_names(&at_disaster);
    let victim = names[names.len() / 2].clone();
    rig.wait_for("the copy job to copy the file to damage", |s| {
        s.copy_folder.iter().any(|f| f.name == victim)
    });
    let good = std::fs::read(rig.share().join(&victim)).expect("the good backup");
    for folder in [rig.share(), rig.copy_folder()] {
        std::fs::write(folder.join(&victim), b"not a backup any more").expect("damage");
    }
    let failed = rig.failover();
    assert_exit(&failed, 3);
    let stderr = text(&failed.stderr);
    assert!(
        // Named as SQL Server names it (`\\atl-sql-001\LogShipping\...` with Windows paths).
        stderr.contains("\n  FAILED `")
            && stderr.contains(&format!(
                "{victim}`: its header cannot be read: `backup` answered with an error: Msg 3241"
            )),
        "{stderr}"
    );
    std::fs::write(rig.share().join(&victim), good).expect("repair the share");
    assert_exit(&rig.failover(), 0);
    assert_failed_over(&rig, &at_disaster, &rig.status());
}

/// A copy damaged after the copy step finished (a disk error, a virus scanner, a hand) is found and
/// copied again from the share when the run resumes: the copy step is examined again until the apply
/// that uses its copies is done, not trusted from the journal (issue 9).
#[test]
fn a_copy_damaged_after_the_copy_step_is_copied_again_from_the_share_when_the_run_resumes() {
    let rig = LabRig::start(RestoreJob::Idle);
    let at_disaster = rig.disaster();
    rig.set_faults(json!([sql_fault("backup", "RESTORE LOG", 3201, 1)]));
    let stopped = rig.failover();
    assert_exit(&stopped, 1);
    assert!(
        text(&stopped.stderr).contains("step 3 (`apply-log-backups`) failed"),
        "{}",
        text(&stopped.stderr)
    );
    let victim = trn_names(&rig.status())
        .into_iter()
        .rfind(|name| rig.copy_folder().join(name).exists())
        .expect("a copied log backup");
    std::fs::write(rig.copy_folder().join(&victim), b"not a backup any more").expect("damage");

    let resumed = rig.failover();
    assert_exit(&resumed, 0);
    assert_failed_over(&rig, &at_disaster, &rig.status());
    assert_eq!(
        std::fs::read(rig.copy_folder().join(&victim)).expect("the copy"),
        std::fs::read(rig.share().join(&victim)).expect("the share's"),
        "{victim} was copied again"
    );
    // The journal names it among the files of its batch, as a copy made again.
    let copies: Vec<String> = rig
        .journals()
        .concat()
        .iter()
        .filter(|r| r["event"] == "command" && r["target"] == "filesystem")
        .filter_map(|r| r["text"].as_str().map(str::to_owned))
        .collect();
    assert!(
        copies.iter().any(|t| t.starts_with("copy ")
            && t.contains(" file(s) from `")
            && t.contains(&format!("{victim} (replaced)"))),
        "{copies:#?}"
    );
}

/// The first log backup the copy and apply steps examine: the last one msdb recorded as restored,
/// as captured before step 1 (older ones are applied already and left alone), or the oldest in the
/// share when the secondary has restored none.
fn first_file_examined(rig: &LabRig) -> String {
    let captured = rig
        .journals()
        .iter()
        .flatten()
        .find(|r| r["event"] == "captured" && r["key"] == "log_shipping:mgc")
        .map(|r| r["value"]["last_restored_file"].clone())
        .expect("the log-shipping settings were captured");
    let last_restored = captured
        .as_str()
        // msdb names the file as the instance does: `D:\...` in a lab with Windows paths.
        .and_then(|p| p.rsplit(['\\', '/']).next())
        .unwrap_or_default()
        .to_owned();
    crate::lab_support::trn_names(&rig.status())
        .into_iter()
        .find(|name| *name >= last_restored)
        .expect("log backups")
}
