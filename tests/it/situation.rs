//! Every run starts from the situation: a failover on a healthy site is refused, a completed operation
//! run again has nothing to do, a planned failover loses nothing, a stale run is never resumed, the
//! ledger tells the loss honestly, and `status --live` names each situation. Checked from the lab's own
//! state and from what clients sent it (its transcripts), never from pcfail's word.

use std::process::{Command, Stdio};

use pcfail_lab::{Role, Status};
use serde_json::{Value, json};

use crate::lab_support::{
    LabRig, RestoreJob, assert_exit, chat_servers_in, database, operator, started_steps, text,
};

/// Statements any instance received that change state (anything but reading), across all roles.
fn changing_statements(rig: &LabRig) -> Vec<String> {
    const CHANGING: [&str; 14] = [
        "RESTORE DATABASE",
        "RESTORE LOG",
        "BACKUP ",
        "ALTER ",
        "KILL ",
        "SP_DELETE",
        "SP_ADD",
        "SP_UPDATE",
        "SP_ATTACH",
        "SP_GETAPPLOCK",
        "CREATE ",
        "DROP ",
        "INSERT ",
        "DELETE ",
    ];
    Role::ALL
        .into_iter()
        .flat_map(|role| rig.transcript(role))
        .map(|entry| entry.text)
        .filter(|t| {
            let upper = t.to_ascii_uppercase();
            CHANGING.iter().any(|c| upper.contains(c))
        })
        .collect()
}

/// `pcfail status --live --format json`, parsed.
fn live(rig: &LabRig) -> Value {
    let output = rig.pcfail(&["status", "--live", "--format", "json"]);
    assert_exit(&output, 0);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "status --live --format json is one JSON document ({e}):\n{}",
            text(&output.stdout)
        )
    })
}

fn kind(report: &Value) -> (&str, Option<&str>) {
    (
        report["situation"]["kind"].as_str().unwrap_or("?"),
        report["situation"]["operation"].as_str(),
    )
}

/// Never two writable copies of `mgc`: at most one of the primary and backup copies that answer is
/// ONLINE (a lost data center's copy is ONLINE in the model, but nobody can write to it).
fn assert_one_online_copy(status: &Status, when: &str) {
    let up = |role| status.instances.iter().any(|i| i.role == role && i.up);
    let online = |role| up(role) && database(status, role, "mgc")["state_desc"] == "ONLINE";
    assert!(
        !(online(Role::Primary) && online(Role::Backup)),
        "two ONLINE copies of `mgc` {when}"
    );
}

/// What the Central Management Store holds: the pool state and the active servers.
fn cms_state(rig: &LabRig) -> (String, Vec<String>) {
    let status = rig.status();
    (status.pool_state, status.active_servers)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn failover_on_a_healthy_site_is_refused_naming_the_live_primary_and_nothing_changes() {
    let rig = LabRig::start(RestoreJob::Default);
    let before = rig.status();
    rig.clear_transcripts();

    let output = rig.failover();
    assert_exit(&output, 3);
    let primary = rig.manifest().instance(Role::Primary).expect("primary");
    let pool = rig.pool();
    assert_eq!(
        text(&output.stderr),
        format!(
            "error: `mgc` answers ONLINE on `primary` ({}): a failover now leaves two writable copies (split brain); nothing was done\n",
            primary.address.ip()
        )
        .replace(
            "; nothing was done\n",
            &format!(
                ". The primary is not lost: to move the pool with no data loss, run `pcfail failover --planned --pool {pool}`. If the primary must not be used although it answers, `--accept-split-brain` overrides this after a typed confirmation. Nothing was done.\n"
            )
        )
    );
    let failback = rig.failback();
    assert_exit(&failback, 3);
    assert!(
        text(&failback.stderr)
            .starts_with("error: the pool is not failed over (pool state Normal; "),
        "{}",
        text(&failback.stderr)
    );

    let after = rig.status();
    assert_eq!(
        database(&after, Role::Primary, "mgc")["state_desc"],
        "ONLINE"
    );
    assert_eq!(
        database(&after, Role::Backup, "mgc")["state_desc"],
        "RESTORING"
    );
    assert_eq!(after.pool_state, "Normal");
    assert_eq!(after.active_servers, before.active_servers);
    assert_eq!(changing_statements(&rig), Vec::<String>::new());
    assert!(rig.journals().is_empty(), "a refused run writes no journal");
}

#[test]
fn a_completed_failover_or_failback_run_again_has_nothing_to_do() {
    let rig = LabRig::start(RestoreJob::Default);
    rig.disaster();
    assert_exit(&rig.failover(), 0);
    let run = rig.run_ids().pop().expect("the failover's run");

    let cms = cms_state(&rig);
    rig.clear_transcripts();
    let again = rig.failover();
    assert_exit(&again, 0);
    let stdout = text(&again.stdout);
    assert!(
        stdout.starts_with(&format!(
            "the pool is already failed over (run {run} completed at "
        )) && stdout.ends_with(&format!(" by {}); nothing to do\n", operator())),
        "{stdout}"
    );
    assert_eq!(text(&again.stderr), "");
    assert_eq!(changing_statements(&rig), Vec::<String>::new());
    assert_eq!(cms_state(&rig), cms);
    assert_eq!(rig.run_ids().len(), 1, "nothing to do writes no journal");

    // Fail-back asks before its first disruptive step, not after: declined, the DAL servers stay.
    rig.rebuild_primary();
    let pool = rig.pool();
    let declined = rig.pcfail(&["failback", "--pool", &pool]);
    assert_exit(&declined, 4);
    assert!(
        text(&declined.stderr).contains(
            "aborted: confirmation needed, but standard input is not a terminal; run again with `--yes` to confirm in advance; nothing more was done (journal: "
        ),
        "{}",
        text(&declined.stderr)
    );
    assert_eq!(
        sorted(rig.status().active_servers),
        chat_servers_in(rig.manifest(), "DAL")
    );
    let journals = rig.journals();
    assert_eq!(
        started_steps(journals.last().expect("the declined run's journal")),
        Vec::<String>::new(),
        "no step started before the confirmation"
    );

    assert_exit(&rig.failback(), 0);
    let cms = cms_state(&rig);
    rig.clear_transcripts();
    let again = rig.failback();
    assert_exit(&again, 0);
    assert!(
        text(&again.stdout).starts_with("the pool is already failed back (run "),
        "{}",
        text(&again.stdout)
    );
    assert_eq!(changing_statements(&rig), Vec::<String>::new());
    assert_eq!(cms_state(&rig), cms);
}

#[test]
fn a_planned_failover_on_a_healthy_site_fences_the_primary_and_loses_no_chat() {
    let rig = LabRig::start(RestoreJob::Default);
    let pool = rig.pool();
    let output = rig.pcfail(&["failover", "--planned", "--pool", &pool, "--yes"]);
    assert_exit(&output, 0);
    let after = rig.status();

    let primary = database(&after, Role::Primary, "mgc");
    let backup = database(&after, Role::Backup, "mgc");
    assert_eq!(
        primary["state_desc"], "RESTORING",
        "the primary is fenced: {primary}"
    );
    assert_eq!(backup["state_desc"], "ONLINE");
    // The fenced copy can no longer change: everything it holds reached the backup.
    let fenced = primary["chat_records"].as_u64().expect("chat records");
    assert!(
        backup["chat_records"].as_u64() >= Some(fenced) && fenced > 0,
        "the backup holds every chat record the primary had when it was fenced: {backup} vs {primary}"
    );
    assert_eq!(after.pool_state, "FailedOver");
    assert_eq!(
        sorted(after.active_servers.clone()),
        chat_servers_in(rig.manifest(), "DAL")
    );

    let journal = &rig.journals()[0];
    let ledger = journal
        .iter()
        .find(|r| r["event"] == "captured" && r["key"] == "data_loss_ledger")
        .expect("the ledger is journaled");
    assert_eq!(ledger["value"]["no_data_loss_expected"], true);
    let tail = journal
        .iter()
        .find(|r| r["event"] == "captured" && r["key"] == "tail_log:mgc")
        .expect("the tail-log backup is journaled");
    assert_eq!(
        started_steps(journal)[..4],
        [
            "stop-chat-writes",
            "unmirror-primary-mgc",
            "end-primary-sessions",
            "tail-log-backup"
        ]
    );
    // The last log restored on the backup is the tail-log backup.
    let last_restore = after
        .instances
        .iter()
        .find(|i| i.role == Role::Backup)
        .and_then(|i| i.sql["restore_history"].as_array())
        .and_then(|rows| {
            rows.iter()
                .find(|r| r["database"] == "mgc" && r["type"] == "L")
        })
        .cloned()
        .expect("log restores on the backup");
    assert_eq!(last_restore["last_lsn"], tail["value"]["last_lsn"]);
}

#[test]
fn a_planned_failover_that_stopped_before_fencing_is_abandoned_once_the_primary_is_lost() {
    let rig = LabRig::start(RestoreJob::Default);
    let pool = rig.pool();
    rig.set_faults(json!([
        { "kind": "cmdlet", "cmdlet": "Set-CsPersistentChatActiveServer", "error": "The Central Management Store is unavailable.", "times": 1 }
    ]));
    let stopped = rig.pcfail(&["failover", "--planned", "--pool", &pool, "--yes"]);
    assert_exit(&stopped, 1);
    assert_one_online_copy(&rig.status(), "after the planned failover stopped");
    let planned_run = rig.run_ids().pop().expect("the planned run");

    // The primary data center is lost before anyone resumes: the planned run cannot go on (its
    // primary is gone), so the unplanned failover runs, and the planned run is closed for good.
    rig.disaster();
    let failover = rig.failover();
    assert_exit(&failover, 0);
    let stderr = text(&failover.stderr);
    assert!(
        stderr.contains(&format!(
            "note: the unfinished planned_failover run {planned_run} is not resumed and is closed as abandoned: the servers no longer match where it stopped (stopped at step 1 (`stop-chat-writes`, failed)): "
        )),
        "{stderr}"
    );
    let journals = rig.journals();
    let last = journals[0].last().expect("records");
    assert_eq!(
        (&last["event"], &last["outcome"]),
        (&json!("run_finished"), &json!("abandoned"))
    );
    assert_one_online_copy(&rig.status(), "after the failover");

    // Asking for the planned failover again resumes nothing: the pool is already failed over.
    let again = rig.pcfail(&["failover", "--planned", "--pool", &pool, "--yes"]);
    assert_exit(&again, 0);
    assert!(
        text(&again.stdout).starts_with("the pool is already failed over (run "),
        "{}",
        text(&again.stdout)
    );
    assert_eq!(rig.journals().len(), 2);
}

#[test]
fn the_ledger_uses_the_servers_clocks_and_an_empty_share_override_is_a_loss_to_confirm() {
    let rig = LabRig::start(RestoreJob::Default);
    rig.disaster();
    let empty = rig.lab_dir().join("empty-share");
    std::fs::create_dir(&empty).expect("an empty folder");
    rig.edit_runbook_toml(|runbook| {
        // SQL Server and pcfail both know the empty folder by its Linux name.
        let overrides = runbook
            .entry("log_shipping")
            .or_insert_with(|| toml::Table::new().into())
            .as_table_mut()
            .expect("a table");
        overrides.insert("share".into(), empty.display().to_string().into());
        overrides.remove("pcfail_share");
    });

    // Without --yes and without a terminal, nobody confirmed the loss: nothing is done.
    let pool = rig.pool();
    let unconfirmed = rig.pcfail(&["failover", "--pool", &pool]);
    assert_exit(&unconfirmed, 4);
    let stderr = text(&unconfirmed.stderr);
    assert!(
        stderr.contains(&format!(
            "backup share `{}` (runbook override; msdb records `{}`): 0 log backup(s), newest none",
            empty.display(),
            rig.sql_share()
        )) && stderr.contains("LOST: every change made on the primary after "),
        "{stderr}"
    );
    assert_eq!(
        database(&rig.status(), Role::Backup, "mgc")["state_desc"],
        "RESTORING"
    );

    let confirmed = rig.pcfail(&["failover", "--pool", &pool, "--yes"]);
    assert_exit(&confirmed, 0);
    let journal = rig.journals().pop().expect("the confirmed run");
    let ledger = &journal
        .iter()
        .find(|r| r["event"] == "captured" && r["key"] == "data_loss_ledger")
        .expect("the ledger is journaled")["value"];
    let rpo = ledger["rpo_minutes_upper_bound"]
        .as_i64()
        .expect("an RPO from the servers' clocks");
    assert!(rpo >= 0, "{ledger}");
    assert_eq!(ledger["clocks_disagree"], false, "{ledger}");
    assert_eq!(ledger["share_msdb"], rig.sql_share());
}

#[test]
fn status_live_names_each_situation_with_the_next_command() {
    let rig = LabRig::start(RestoreJob::Default);
    let pool = rig.pool();
    let report = live(&rig);
    assert_eq!(kind(&report), ("normal", None), "{report:#}");
    assert_eq!(report["format_version"], 1);

    // The primary's mirror stops answering: the primary still serves.
    rig.set_faults(json!([
        { "kind": "sql", "instance": "primary_mirror", "pattern": "*", "down": true }
    ]));
    let report = live(&rig);
    assert_eq!(
        kind(&report),
        ("primary_alive_during_outage", None),
        "{report:#}"
    );

    rig.set_faults(json!([]));
    rig.disaster();
    let report = live(&rig);
    assert_eq!(kind(&report), ("primary_lost", None), "{report:#}");
    // The text form: the situation first, one table row per instance (role, answers, what each
    // copy of the two databases is), the next command last.
    let table = text(&rig.pcfail(&["status", "--live"]).stdout);
    assert!(
        table.starts_with(&format!("Persistent Chat pool {pool}: primary lost\n")),
        "{table}"
    );
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip_while(|l| l.trim() != "SQL Server instances")
        .skip(1)
        .take(5)
        .map(|l| l.split_whitespace().collect())
        .collect();
    let columns = |row: &Vec<&str>| [row[0], row[3], row[4], row[5]].map(str::to_owned);
    assert_eq!(
        rows.iter().map(columns).collect::<Vec<_>>(),
        [
            ["ROLE", "ANSWERS", "mgc", "mgccomp"],
            ["primary", "no", "-", "-"],
            ["primary_mirror", "no", "-", "-"],
            ["backup", "yes", "RESTORING", "ONLINE"],
            ["backup_mirror", "yes", "(none)", "(none)"],
        ]
        .map(|r| r.map(str::to_owned)),
        "{table}"
    );
    assert!(
        table.ends_with(&format!(
            "Next: fail over to the backup data center\n  pcfail failover --pool {pool}\n"
        )),
        "{table}"
    );
    assert_eq!(
        report["situation"]["next_command"],
        format!("pcfail failover --pool {pool}")
    );

    rig.set_faults(json!([
        { "kind": "cmdlet", "cmdlet": "Set-CsPersistentChatState", "error": "The Central Management Store is unavailable.", "times": 1 }
    ]));
    assert_exit(&rig.failover(), 1);
    let report = live(&rig);
    assert_eq!(
        kind(&report),
        ("mid_operation", Some("failover")),
        "{report:#}"
    );
    assert!(
        report["runs"]["pending"]["where_stopped"]
            .as_str()
            .is_some_and(|w| w.contains("set-pool-failed-over")),
        "{report:#}"
    );

    assert_exit(&rig.failover(), 0);
    let report = live(&rig);
    assert_eq!(kind(&report), ("failed_over", None), "{report:#}");
    assert_eq!(
        report["active_servers"]["last_set_by_pcfail"]["servers"],
        json!(chat_servers_in(rig.manifest(), "DAL"))
    );

    rig.rebuild_primary();
    let report = live(&rig);
    assert_eq!(kind(&report), ("ready_for_failback", None), "{report:#}");
    assert_eq!(
        report["situation"]["next_command"],
        format!("pcfail failback --pool {pool}")
    );
}

#[test]
fn two_online_copies_are_inconsistent_and_no_operation_runs() {
    let rig = LabRig::start(RestoreJob::Default);
    // Someone recovers the log-shipped copy by hand while the primary still serves.
    let backup = rig
        .manifest()
        .instance(Role::Backup)
        .expect("backup")
        .address;
    let mut tsql = Command::new("tsql")
        .args([
            "-H",
            &backup.ip().to_string(),
            "-p",
            &backup.port().to_string(),
        ])
        .args([
            "-U",
            &rig.manifest().login.user,
            "-P",
            &rig.manifest().login.password,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("FreeTDS tsql is installed (.ci/test installs it)");
    {
        use std::io::Write;
        let stdin = tsql.stdin.as_mut().expect("stdin");
        stdin
            .write_all(b"RESTORE DATABASE [mgc] WITH RECOVERY\ngo\nexit\n")
            .expect("write");
    }
    assert!(tsql.wait_with_output().expect("tsql").status.success());
    assert_eq!(
        database(&rig.status(), Role::Backup, "mgc")["state_desc"],
        "ONLINE"
    );

    let report = live(&rig);
    assert_eq!(kind(&report), ("inconsistent", None), "{report:#}");
    assert!(
        report["situation"]["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with(
                "split brain: `mgc` is ONLINE and writable on both `primary` and `backup`"
            )),
        "{report:#}"
    );
    let pool = rig.pool();
    rig.clear_transcripts();
    for args in [
        vec!["failover", "--pool", pool.as_str(), "--yes"],
        vec!["failover", "--planned", "--pool", pool.as_str(), "--yes"],
        vec!["failback", "--yes"],
    ] {
        let output = rig.pcfail(&args);
        assert_exit(&output, 3);
        assert!(
            text(&output.stderr).starts_with("error: the situation is inconsistent: split brain"),
            "{args:?}: {}",
            text(&output.stderr)
        );
    }
    assert_eq!(changing_statements(&rig), Vec::<String>::new());
}

#[test]
fn the_split_brain_override_is_typed_at_a_terminal_and_journaled() {
    let rig = LabRig::start(RestoreJob::Default);
    let pool = rig.pool();
    let args = [
        "failover",
        "--pool",
        pool.as_str(),
        "--yes",
        "--accept-split-brain",
    ];
    // `--yes` does not answer it, and without a terminal nobody can: nothing happens.
    let refused = rig.pcfail(&args);
    assert_exit(&refused, 4);
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("WARNING: `mgc` answers ONLINE on `primary` (")
            && stderr.ends_with(
                "aborted: confirmation needed, but standard input is not a terminal; run it at a terminal: this override cannot be confirmed in advance; nothing was done\n"
            ),
        "{stderr}"
    );
    assert_eq!(
        database(&rig.status(), Role::Backup, "mgc")["state_desc"],
        "RESTORING"
    );
    assert!(rig.journals().is_empty());

    // At a terminal (`script` gives pcfail one), the operator types the risk's name and it goes on.
    let inner = rig.command_in(&rig.state_dir(), &args);
    let quoted: Vec<String> = std::iter::once(inner.get_program())
        .chain(inner.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect();
    let mut outer = Command::new("script");
    outer
        .args(["-qec", &quoted.join(" "), "/dev/null"])
        .current_dir(rig.state_dir().parent().expect("the rig's folder"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in inner.get_envs() {
        match value {
            Some(value) => outer.env(name, value),
            None => outer.env_remove(name),
        };
    }
    let mut child = outer
        .spawn()
        .expect("script (util-linux) runs pcfail on a terminal");
    {
        use std::io::Write;
        let stdin = child.stdin.as_mut().expect("stdin");
        stdin
            .write_all(b"split brain\n")
            .expect("type the confirmation");
    }
    let output = child.wait_with_output().expect("script");
    assert_exit(&output, 0);
    let after = rig.status();
    assert_eq!(
        database(&after, Role::Backup, "mgc")["state_desc"],
        "ONLINE"
    );
    assert_eq!(after.pool_state, "FailedOver");
    let journal = &rig.journals()[0];
    let confirmed: Vec<(&str, &str)> = journal
        .iter()
        .filter(|r| r["event"] == "confirmed")
        .filter_map(|r| Some((r["what"].as_str()?, r["how"].as_str()?)))
        .collect();
    assert_eq!(confirmed[0], ("split_brain", "typed"));
    assert!(
        journal
            .iter()
            .any(|r| r["event"] == "captured" && r["key"] == "split_brain_override"),
        "the override and its risk are journaled"
    );
}
