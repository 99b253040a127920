//! The procedure as an expert runs it (issue 13): what Microsoft's pages leave out. The Central
//! Management Store's location, the order of the last failover steps, the mirroring prerequisites, the
//! log chain's edges, the log-shipping jobs still running, and the fail-back's return to a mirrored,
//! serving primary. Each test fails without the rule it names.

use std::path::{Path, PathBuf};

use pcfail_lab::Role;
use serde_json::{Value, json};

use crate::lab_support::{
    LabRig, RestoreJob, assert_exit, assert_failed_back, assert_failed_over, chat_servers_in,
    database, instance, journals_in, text,
};

/// Rewrites the lab backup file `from` into `to` after `edit` (docs/lab.md: the lab's backup format
/// is a magic line, then JSON with the backup sets).
fn rewrite(from: &Path, to: &Path, edit: impl FnOnce(&mut Value)) {
    let text = std::fs::read_to_string(from).expect("a lab backup file");
    let (magic, body) = text.split_once('\n').expect("the magic line");
    let mut file: Value = serde_json::from_str(body).expect("JSON");
    edit(&mut file);
    std::fs::write(to, format!("{magic}\n{file}")).expect("write the backup file");
}

/// The newest log backup in `folder`, by name.
fn newest_trn(folder: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".trn"))
        .collect();
    names.sort();
    names.pop().expect("a log backup")
}

/// The port of `role`'s mirroring endpoint as the runbook gives it (`TCP://host:port`).
fn endpoint_port(rig: &LabRig, role: Role) -> u16 {
    let address = crate::lab_support::endpoint(rig.manifest(), role);
    let (_, port) = address.rsplit_once(':').expect("TCP://host:port");
    port.parse().expect("a port number")
}

/// Step 1 was not sent: log shipping is still configured and `mgc` on the backup untouched.
fn assert_nothing_done(rig: &LabRig) {
    assert!(
        rig.transcript(Role::Backup).iter().all(|t| !t
            .text
            .contains("sp_delete_log_shipping_secondary_database")
            && !t.text.contains("sp_update_job")),
        "nothing was changed before the refusal"
    );
    let status = rig.status();
    let state = &database(&status, Role::Backup, "mgc")["state_desc"];
    assert!(state == "RESTORING" || state == "ONLINE", "{state}");
    assert_eq!(status.pool_state, "Normal");
}

/// The primary data center is lost and the failover completes, saying `note` on stderr; returns the
/// lab's status at the disaster, for `assert_failed_over`.
fn fail_over_saying(rig: &LabRig, note: &str) -> pcfail_lab::Status {
    let at_disaster = rig.disaster();
    let output = rig.failover();
    assert_exit(&output, 0);
    assert!(
        text(&output.stderr).contains(note),
        "{}",
        text(&output.stderr)
    );
    at_disaster
}

/// With the CMS master in the lost data center, Set-CsPersistentChatState would fail right after
/// `mgc` is recovered. The failover stops before step 1, with the command that moves the master; with
/// the runbook's `move-cms` step switched on, pcfail runs it itself and the failover completes.
#[test]
fn a_cms_master_in_the_lost_data_center_stops_the_failover_before_step_1_with_the_command() {
    let rig = LabRig::start(RestoreJob::Default);
    rig.put_cms_master_in("ATL");
    let at_disaster = rig.disaster();
    let refused = rig.failover();
    assert_exit(&refused, 3);
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains(
            "error: the Central Management Server's master `atl-fe-001.litwareinc.com` is in ATL, the data center this failover leaves"
        ) && stderr.contains(
            "\n    Invoke-CsManagementServerFailover -BackupSqlServerFqdn 'dal-sql-001.litwareinc.com' -Force\n"
        ),
        "{stderr}"
    );
    let untouched = rig.status();
    assert_eq!(
        database(&untouched, Role::Backup, "mgc")["state_desc"],
        "RESTORING"
    );
    assert!(
        rig.transcript(Role::Backup)
            .iter()
            .all(|t| !t.text.contains("sp_delete_log_shipping_secondary_database")),
        "step 1 was not sent"
    );

    rig.set_step_key("failover", "move-cms", "run", true.into());
    let output = rig.failover();
    assert_exit(&output, 0);
    assert!(
        text(&output.stdout)
            .lines()
            .any(|l| l.contains(" move-cms ") && l.contains(" done ")),
        "{}",
        text(&output.stdout)
    );
    assert_eq!(rig.cms()["master"]["data_center"], "DAL");
    assert_failed_over(&rig, &at_disaster, &rig.status());
}

/// The shipped failover sets the active servers before it mirrors: a mirroring failure (here the
/// mirror refusing the partner with 1465, a SIMPLE recovery model) stops the run with the pool
/// FailedOver and the backup data center's servers active, and the error says the pool serves.
#[test]
fn a_mirroring_failure_leaves_the_pool_failed_over_with_the_backup_servers_active() {
    let rig = LabRig::start(RestoreJob::Default);
    rig.disaster();
    rig.set_faults(json!([{
        "kind": "sql", "instance": "backup_mirror",
        "pattern": "ALTER DATABASE [mgc] SET PARTNER =", "error": 1465
    }]));
    let output = rig.failover();
    assert_exit(&output, 1);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("error: step 10 (`mirror-mgc`) failed: `backup_mirror` answered with an error: Msg 1465")
            && stderr.contains(
                "\nthe pool is already serving: step 8 set it FailedOver and step 9 made dal-pc-001.litwareinc.com, dal-pc-002.litwareinc.com active, so Persistent Chat accepts connections; still to do: `mirror-mgc`, `mirror-mgccomp`\n"
            ),
        "{stderr}"
    );
    let status = rig.status();
    assert_eq!(status.pool_state, "FailedOver");
    assert_eq!(
        status.active_servers,
        chat_servers_in(rig.manifest(), "DAL")
    );
    assert_eq!(
        database(&status, Role::Backup, "mgc")["state_desc"],
        "ONLINE"
    );
}

/// A file of the same name pattern left from another backup chain (another database family and
/// recovery fork) fits the LSNs and would fail with 4330 in the middle of the apply: it is refused
/// before step 1, by name. Once it is removed, the same command fails over.
#[test]
fn a_log_backup_from_another_chain_is_refused_before_step_1_with_its_name() {
    let rig = LabRig::start(RestoreJob::Idle);
    let at_disaster = rig.disaster();
    let newest = newest_trn(&rig.share());
    let stray_name = "mgc_20991231235959.trn";
    let stray = rig.share().join(stray_name);
    rewrite(&rig.share().join(&newest), &stray, |file| {
        let set = &mut file["sets"][0];
        let first = set["first_lsn"].as_u64().expect("first_lsn");
        let last = set["last_lsn"].as_u64().expect("last_lsn");
        set["first_lsn"] = json!(last);
        set["last_lsn"] = json!(last + (last - first).max(1));
        set["records"] = json!([]);
        set["family_guid"] = json!("6f9619ff-8b86-d011-b42d-00c04fc964ff");
        set["fork_guid"] = json!("6f9619ff-8b86-d011-b42d-00c04fc96500");
    });
    let refused = rig.failover();
    assert_exit(&refused, 3);
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("\n  FAILED `")
            && stderr.contains(&format!(
                "{stray_name}`: it belongs to another backup chain: "
            )),
        "{stderr}"
    );
    assert_nothing_done(&rig);
    for folder in [rig.share(), rig.copy_folder()] {
        let _ = std::fs::remove_file(folder.join(stray_name));
    }
    assert_exit(&rig.failover(), 0);
    assert_failed_over(&rig, &at_disaster, &rig.status());
}

/// A log backup whose pages are damaged still shows its header; `RESTORE VERIFYONLY ... WITH
/// CHECKSUM` before step 1 (the point of no return) finds it, and the refusal names it as the ledger
/// does. Repaired, the same command fails over.
#[test]
fn a_damaged_log_backup_is_caught_by_verification_before_the_point_of_no_return() {
    let rig = LabRig::start(RestoreJob::Idle);
    let at_disaster = rig.disaster();
    let victim = newest_trn(&rig.share());
    let damage = |damaged: bool| {
        for folder in [rig.share(), rig.copy_folder()] {
            let path: PathBuf = folder.join(&victim);
            if path.exists() {
                rewrite(&path, &path, |file| {
                    file["sets"][0]["damaged"] = json!(damaged)
                });
            }
        }
    };
    damage(true);
    let refused = rig.failover();
    assert_exit(&refused, 3);
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("\n  FAILED `")
            && stderr.contains(&format!(
                "{victim}`: it failed verification: `backup` answered with an error: Msg 3189, Level 16, State 1: Damage to the backup set was detected."
            )),
        "{stderr}"
    );
    assert_nothing_done(&rig);
    damage(false);
    let output = rig.failover();
    assert_exit(&output, 0);
    assert!(
        text(&output.stderr).contains("verified before step 1: "),
        "the ledger says what was verified: {}",
        text(&output.stderr)
    );
    assert_failed_over(&rig, &at_disaster, &rig.status());
}

/// A restore job already running when the failover starts keeps running after its job is deleted:
/// step 1 disables the copy and restore jobs and waits for the run to end before it removes log
/// shipping, saying what it waits for, so nothing races the apply.
#[test]
fn a_running_restore_job_is_waited_for_not_raced() {
    let rig = LabRig::start(RestoreJob::Default);
    let at_disaster = rig.disaster();
    rig.set_faults(json!([{
        "kind": "job", "instance": "backup", "job": "restore", "run_ms": 5000, "times": 1
    }]));
    rig.wait_for("the restore job to be running", |s| {
        instance(s, Role::Backup)["jobs"]
            .as_array()
            .is_some_and(|jobs| jobs.iter().any(|j| !j["running_since"].is_null()))
    });
    let output = rig.failover();
    assert_exit(&output, 0);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("log-shipping jobs disabled; waiting for the job `LSRestore_"),
        "{stderr}"
    );
    // In the journal: both jobs disabled, then log shipping removed, and no RESTORE of pcfail's
    // refused because the database was in use.
    let records = &journals_in(&rig.state_dir())[0];
    let texts: Vec<&str> = records
        .iter()
        .filter(|r| r["event"] == "command" && r["step"] == "remove-log-shipping")
        .filter_map(|r| r["text"].as_str())
        .collect();
    let disabled: Vec<usize> = texts
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            t.starts_with("EXEC msdb.dbo.sp_update_job @job_id = N'") && t.ends_with("@enabled = 0")
        })
        .map(|(i, _)| i)
        .collect();
    assert_eq!(disabled.len(), 2, "{texts:?}");
    let removed = texts
        .iter()
        .position(|t| t.contains("sp_delete_log_shipping_secondary_database"))
        .expect("log shipping removed");
    assert!(
        disabled.iter().all(|d| *d < removed)
            && texts[disabled[1]..removed]
                .iter()
                .filter(|t| t.contains("msdb.dbo.sysjobactivity"))
                .count()
                >= 2,
        "the jobs are disabled, then waited for, then log shipping is removed: {texts:?}"
    );
    assert!(
        records.iter().all(|r| r["error"]["number"] != 3101),
        "no RESTORE raced the job"
    );
    assert_failed_over(&rig, &at_disaster, &rig.status());
}

/// A secondary that restores WITH STANDBY is ONLINE, read-only, with is_in_standby = 1 (reference C),
/// and may show no redo_start_lsn: the failover takes its redo point from msdb's restore history and
/// ends as from a restoring secondary.
#[test]
fn a_standby_secondary_fails_over_like_a_restoring_one() {
    let rig = LabRig::start_with(RestoreJob::Default, |o| o.standby_secondary = true);
    rig.wait_for("the secondary to be in STANDBY", |s| {
        database(s, Role::Backup, "mgc")["is_in_standby"] == true
    });
    let at_disaster = rig.disaster();
    assert_exit(&rig.failover(), 0);
    let after = rig.status();
    assert_eq!(
        database(&after, Role::Backup, "mgc")["is_in_standby"],
        false
    );
    assert_failed_over(&rig, &at_disaster, &after);
}

/// Mirroring needs both endpoints STARTED (reference J.5): an existing endpoint the mirror step finds
/// STOPPED is started, not left to fail SET PARTNER, and the failover completes.
#[test]
fn a_stopped_mirroring_endpoint_is_started_by_the_mirror_step() {
    let rig = LabRig::start(RestoreJob::Default);
    // The lab's instances start without a mirroring endpoint; this one is left STOPPED on the port the
    // runbook gives.
    let port = endpoint_port(&rig, Role::BackupMirror);
    rig.sql(
        Role::BackupMirror,
        &format!(
            "CREATE ENDPOINT [Mirroring] STATE = STOPPED AS TCP (LISTENER_PORT = {port}) FOR DATABASE_MIRRORING (ROLE = PARTNER)"
        ),
    );
    let at_disaster = fail_over_saying(
        &rig,
        "the mirroring endpoint `Mirroring` on `backup_mirror` is STOPPED: starting it",
    );
    assert_failed_over(&rig, &at_disaster, &rig.status());
}

/// An existing endpoint on another port than the runbook's address cannot be reached there (1418),
/// and it is shared by every mirrored database, so pcfail does not move it: the mirror step stops
/// before any backup, saying which port it found, with the pool already serving.
#[test]
fn an_endpoint_on_another_port_stops_the_mirror_step_before_anything_is_restored() {
    let rig = LabRig::start(RestoreJob::Default);
    rig.sql(
        Role::BackupMirror,
        "CREATE ENDPOINT [Mirroring] STATE = STARTED AS TCP (LISTENER_PORT = 7022) FOR DATABASE_MIRRORING (ROLE = PARTNER)",
    );
    rig.disaster();
    // `plan --check` sees it before step 1.
    let check = rig.pcfail(&["plan", "failover", "--check"]);
    assert_exit(&check, 3);
    assert!(
        text(&check.stdout).lines().any(|l| l.starts_with("FAIL")
            && l.contains("mirroring endpoint of `backup_mirror` fits the runbook")
            && l.contains("`Mirroring` listens on port 7022, but the runbook gives ")),
        "{}",
        text(&check.stdout)
    );
    let output = rig.failover();
    assert_exit(&output, 1);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "error: step 10 (`mirror-mgc`) failed: the mirroring endpoint `Mirroring` on `backup_mirror` listens on port 7022, but the runbook gives `backup_mirror`'s mirroring_endpoint as {}",
            crate::lab_support::endpoint(rig.manifest(), Role::BackupMirror)
        )) && stderr.contains("\nthe pool is already serving: "),
        "{stderr}"
    );
    assert!(
        rig.transcript(Role::Backup)
            .iter()
            .all(|t| !t.text.starts_with("BACKUP DATABASE [mgc]")),
        "no backup was taken for the mirror"
    );
    let status = rig.status();
    assert_eq!(status.pool_state, "FailedOver");
    assert_eq!(
        status.active_servers,
        chat_servers_in(rig.manifest(), "DAL")
    );
}

/// A PowerShell host started without a console (a scheduled task, a remote session) cannot set the
/// console's encoding; pcfail's host script does not try, so it reports ready and the failover's
/// cmdlets run through it (the lab shell ends a script that sets it, as powershell.exe would).
#[test]
fn the_powershell_host_survives_having_no_console() {
    let rig = LabRig::start(RestoreJob::Default);
    rig.set_faults(json!([{ "kind": "host", "no_console": true }]));
    let at_disaster = rig.disaster();
    let output = rig.failover();
    assert_exit(&output, 0);
    assert!(
        !text(&output.stderr).contains("The handle is invalid"),
        "{}",
        text(&output.stderr)
    );
    assert_failed_over(&rig, &at_disaster, &rig.status());
}

/// Partners whose SQL Server services run under different Windows accounts reach each other's
/// endpoint only with a login and CONNECT on it (reference J.5; 1418 otherwise): the mirror step
/// grants each partner's account on the other's instance before anything is restored, on the way
/// over and, for the rebuilt primary pair, on the way back.
#[test]
fn partners_under_different_service_accounts_are_granted_connect_on_each_others_endpoint() {
    let rig = LabRig::start_with(RestoreJob::Default, |o| o.distinct_service_accounts = true);
    let at_disaster = fail_over_saying(
        &rig,
        "`backup` runs SQL Server as `LITWAREINC\\svc-dal-sql-001`, which may not connect to the mirroring endpoint `Mirroring` on `backup_mirror`: granting CONNECT",
    );
    for (role, account) in [
        (Role::BackupMirror, "svc-dal-sql-001"),
        (Role::Backup, "svc-dal-sql-002"),
    ] {
        let sent: Vec<String> = rig.transcript(role).into_iter().map(|t| t.text).collect();
        let login = sent
            .iter()
            .position(|t| t == &format!("CREATE LOGIN [LITWAREINC\\{account}] FROM WINDOWS"));
        let grant = sent.iter().position(|t| {
            t == &format!("GRANT CONNECT ON ENDPOINT::[Mirroring] TO [LITWAREINC\\{account}]")
        });
        assert!(
            matches!((login, grant), (Some(l), Some(g)) if l < g),
            "a login, then the grant, on `{role:?}`: {sent:?}"
        );
    }
    let after_failover = rig.status();
    assert_failed_over(&rig, &at_disaster, &after_failover);

    rig.rebuild_primary();
    assert_exit(&rig.failback(), 0);
    assert_failed_back(&rig, &after_failover, &rig.status());
}

/// A restore puts each file where it was on the instance the backup came from (reference J.3).
/// Where the restoring instance keeps its files in another directory, pcfail moves them into its
/// default data and log directories (SERVERPROPERTY) instead of failing with 5133/3156: the mirror
/// step on the way over, and on the way back the restore over the primary, log shipping's
/// initialization and the primary's mirror.
#[test]
fn backups_restored_on_another_instance_are_moved_into_its_own_directories() {
    let rig = LabRig::start_with(RestoreJob::Default, |o| o.data_paths_per_instance = true);
    let at_disaster = fail_over_saying(
        &rig,
        "`backup_mirror` keeps its files elsewhere than `backup`: moving `mgc`, `mgc_log` to ",
    );
    let dir =
        "C:\\Program Files\\Microsoft SQL Server\\MSSQL13.MSSQLSERVER\\MSSQL\\DATA\\DAL-SQL-002";
    assert!(
        rig.transcript(Role::BackupMirror).iter().any(|t| t
            .text
            .starts_with("RESTORE DATABASE [mgc] FROM DISK = ")
            && t.text.ends_with(&format!(
                ", NORECOVERY, REPLACE, MOVE N'mgc' TO N'{dir}\\mgc.mdf', MOVE N'mgc_log' TO N'{dir}\\mgc_log.ldf'"
            ))),
        "{:?}",
        rig.transcript(Role::BackupMirror)
            .iter()
            .map(|t| &t.text)
            .collect::<Vec<_>>()
    );
    let after_failover = rig.status();
    assert_failed_over(&rig, &at_disaster, &after_failover);

    // Back again: the restore over the primary, log shipping's initialization on the backup and the
    // primary's mirror each restore a backup taken on another instance, and MOVE it.
    rig.rebuild_primary();
    let output = rig.failback();
    assert_exit(&output, 0);
    assert_eq!(
        text(&output.stderr)
            .matches("the backup's files are not where `")
            .count(),
        2,
        "the restore over the primary and log shipping's initialization: {}",
        text(&output.stderr)
    );
    assert!(
        text(&output.stderr).contains("`primary_mirror` keeps its files elsewhere than `primary`"),
        "{}",
        text(&output.stderr)
    );
    assert_failed_back(&rig, &after_failover, &rig.status());
}

/// Fail-back sets the pool Normal, then waits until every replica of the Central Management Store
/// has that change (the Persistent Chat servers made active next read their local replica), and only
/// then sets the active servers; it ends with the synthetic chat test.
#[test]
fn failback_waits_for_cms_replication_before_it_makes_servers_active() {
    let rig = LabRig::start(RestoreJob::Default);
    rig.disaster();
    assert_exit(&rig.failover(), 0);
    let after_failover = rig.status();
    rig.rebuild_primary();
    // Replicas take 3 s to pick up each change from now on.
    rig.edit_cms(|cms| cms["master"]["replication_ms"] = json!(3000));
    let output = rig.failback();
    assert_exit(&output, 0);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("waiting for ")
            && stderr.contains(" replica(s) of the Central Management Store: "),
        "{stderr}"
    );
    let stdout = text(&output.stdout);
    let row = |id: &str| {
        stdout
            .lines()
            .position(|l| l.split_whitespace().nth(1) == Some(id))
            .unwrap_or_else(|| panic!("no row for `{id}`:\n{stdout}"))
    };
    assert!(
        row("set-pool-normal") < row("wait-cms-replication")
            && row("wait-cms-replication") < row("set-active-servers")
            && row("set-active-servers") < row("test-chat"),
        "{stdout}"
    );
    let waited: f64 = stdout
        .lines()
        .nth(row("wait-cms-replication"))
        .and_then(|l| {
            l.split_whitespace()
                .last()?
                .trim_end_matches('s')
                .parse()
                .ok()
        })
        .expect("the step's duration");
    assert!(waited >= 2.0, "the step waited for replication: {stdout}");
    assert_failed_back(&rig, &after_failover, &rig.status());
}

/// Microsoft's order stays available by moving `set-active-servers` after the mirroring steps; a
/// mirroring failure then leaves the pool FailedOver with no server of the backup data center active,
/// and the error says so, with the command that would put the pool in service first.
#[test]
fn in_microsofts_order_a_mirroring_failure_says_the_pool_does_not_serve_yet() {
    let rig = LabRig::start(RestoreJob::Default);
    rig.move_step_after("failover", "set-active-servers", "mirror-mgccomp");
    rig.disaster();
    let active_before = rig.status().active_servers;
    rig.set_faults(json!([{
        "kind": "sql", "instance": "backup_mirror",
        "pattern": "ALTER DATABASE [mgc] SET PARTNER =", "error": 1465
    }]));
    let output = rig.failover();
    assert_exit(&output, 1);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("error: step 9 (`mirror-mgc`) failed: `backup_mirror` answered with an error: Msg 1465")
            && stderr.contains(
                "\nthe pool does not serve yet: step 8 set it FailedOver, but step 11 (`set-active-servers`), which makes dal-pc-001.litwareinc.com, dal-pc-002.litwareinc.com active, comes after the step that failed; to serve first and add high availability later, run that step's command by hand:\n    Set-CsPersistentChatActiveServer -Identity 'service:atl-cs-001.litwareinc.com' -ActiveServers @('dal-pc-001.litwareinc.com','dal-pc-002.litwareinc.com') -Confirm:$false\n"
            ),
        "{stderr}"
    );
    let status = rig.status();
    assert_eq!(status.pool_state, "FailedOver");
    assert_eq!(status.active_servers, active_before);
}

/// A planned failover leaves a data center that still answers, so a CMS master there does not stop
/// it; the run says to move the master before that data center goes down, with the command.
#[test]
fn a_planned_failover_notes_a_cms_master_in_the_data_center_it_leaves() {
    let rig = LabRig::start(RestoreJob::Default);
    rig.put_cms_master_in("ATL");
    let pool = rig.pool();
    let output = rig.pcfail(&["failover", "--planned", "--pool", &pool, "--yes"]);
    assert_exit(&output, 0);
    assert!(
        text(&output.stderr).contains(
            "note: the Central Management Server's master `atl-fe-001.litwareinc.com` is in ATL, which this failover leaves; it still answers, but move it before ATL goes down: Invoke-CsManagementServerFailover -BackupSqlServerFqdn 'dal-sql-001.litwareinc.com' -Force"
        ),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(rig.cms()["master"]["data_center"], "ATL");
    assert_eq!(rig.status().pool_state, "FailedOver");
}
