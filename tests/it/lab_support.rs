//! A lab to run the real `pcfail` binary against: four simulated SQL Server instances on loopback and
//! the simulated management shell, started in-process in a temporary folder, with the runbook that
//! `pcfail drill` would write for it.
//!
//! What this module owns: starting and stopping a lab (its own tokio runtime, so the lab keeps
//! answering while a test thread blocks on a child `pcfail`), running `pcfail` with the lab's
//! password, fault rules (`faults.json`), reading the journal, and asserting the end states the
//! issue's "done when" names. Every check reads the lab's own state (`Lab::status()`), never pcfail's
//! output, so the executor cannot vouch for itself. What it does not do: decide what a test proves.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use pcfail_lab::{Lab, LabOptions, Manifest, Role, Status};
use serde_json::Value;

/// Lab seconds per real second: the 5-minute log backup job runs twice a second, so a backlog of log
/// backups builds in about two seconds.
const CLOCK_SPEED: f64 = 600.0;
/// Log backups to let the primary take before the disaster.
const BACKUPS_BEFORE_DISASTER: usize = 4;
/// A bound on every wait for the lab's jobs; generous because two cores run several labs at once.
const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// The host every run here records: the kernel's host name, as `uname -n` tells it.
pub fn host() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let uname = Command::new("uname").arg("-n").output().expect("uname -n");
        String::from_utf8_lossy(&uname.stdout).trim().to_owned()
    })
}

/// The operator every run here records: the operating system's name for the test's own user, as
/// `id -un` tells it (pcfail asks the OS, not `USER`, which the runs below set to a decoy).
pub fn operator() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let id = Command::new("id").arg("-un").output().expect("id -un");
        String::from_utf8_lossy(&id.stdout).trim().to_owned()
    })
}

/// How the lab's log-shipping restore job is scheduled before the disaster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreJob {
    /// Every 15 lab minutes (SSMS's default): the backup instance keeps up with part of the backlog,
    /// and pcfail applies the rest.
    Default,
    /// First run a week of lab time away: nothing is restored after the initializing full backup,
    /// so the failover's apply step certainly has log backups to apply (and a deleted one is a gap).
    Idle,
}

/// A running lab with its runbook, in a temporary folder removed afterwards.
pub struct LabRig {
    runtime: tokio::runtime::Runtime,
    lab: Option<Lab>,
    manifest: Manifest,
    // Dropped after the lab (fields drop in order): the lab's files outlive its tasks.
    dir: tempfile::TempDir,
}

impl LabRig {
    /// Starts a lab, lets log shipping build a backlog of log backups, and writes `runbook.toml`.
    pub fn start(restore: RestoreJob) -> LabRig {
        LabRig::start_with(restore, |_| {})
    }

    /// [`LabRig::start`], with `adjust` changing the lab's options first (variants, Windows paths,
    /// the duration model).
    pub fn start_with(restore: RestoreJob, adjust: impl FnOnce(&mut LabOptions)) -> LabRig {
        let dir = tempfile::Builder::new()
            .prefix("pcfail-e2e-")
            .tempdir()
            .expect("temporary directory");
        // Two workers: the lab's listeners, scheduler and control port must run while the test
        // thread waits on a child process; one worker would do, two keep a slow tick from stalling.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let mut options = LabOptions::new(dir.path().join("lab"));
        options.clock_speed = CLOCK_SPEED;
        if restore == RestoreJob::Idle {
            // A period longer than a day puts the first run at midnight plus the period (the lab
            // schedules like SQL Agent, from midnight), at least six lab days away: never, here.
            options.restore_every_min = 7 * 24 * 60;
        }
        adjust(&mut options);
        let lab = runtime.block_on(Lab::start(options)).expect("lab starts");
        let manifest = lab.manifest().clone();
        let rig = LabRig {
            runtime,
            lab: Some(lab),
            manifest,
            dir,
        };
        let runbook = pcfail::labrunbook::render(
            &rig.manifest,
            &rig.lab_dir(),
            Path::new(env!("CARGO_BIN_EXE_pcfail")),
        )
        .expect("lab runbook renders");
        std::fs::write(rig.runbook(), runbook).expect("write runbook");
        rig.wait_for("the primary to take enough log backups", |s| {
            trn_names(s).len() >= BACKUPS_BEFORE_DISASTER
        });
        rig
    }

    fn lab(&self) -> &Lab {
        self.lab.as_ref().expect("lab running")
    }

    /// The lab folder (lab.json, share/, backup-copy/, faults.json).
    pub fn lab_dir(&self) -> PathBuf {
        self.lab().dir().to_owned()
    }

    pub fn runbook(&self) -> PathBuf {
        self.dir.path().join("runbook.toml")
    }

    /// pcfail's `--state-dir`: journals and the run lock.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn pool(&self) -> String {
        self.manifest.pool.clone()
    }

    /// The lab's log-shipping share and the backup instance's copy folder.
    pub fn share(&self) -> PathBuf {
        self.lab_dir().join("share")
    }

    pub fn copy_folder(&self) -> PathBuf {
        self.lab_dir().join("backup-copy")
    }

    /// The share as SQL Server names it (msdb, RESTORE): its Windows name in a lab with Windows
    /// paths (the default), else the folder itself.
    pub fn sql_share(&self) -> String {
        match &self.manifest.windows_paths {
            Some(w) => w.share.clone(),
            None => self.share().display().to_string(),
        }
    }

    /// The copy folder as the backup instance names it.
    pub fn sql_copy_folder(&self) -> String {
        match &self.manifest.windows_paths {
            Some(w) => w.copy_folder.clone(),
            None => self.copy_folder().display().to_string(),
        }
    }

    /// The folder of other backup files as SQL Server names it.
    pub fn sql_backups(&self) -> String {
        match &self.manifest.windows_paths {
            Some(w) => w.backups.clone(),
            None => self.lab_dir().join("backups").display().to_string(),
        }
    }

    /// A file in one of the folders above, with the folder's own separator.
    pub fn sql_file(folder: &str, name: &str) -> String {
        let sep = if folder.contains('\\') { '\\' } else { '/' };
        format!("{folder}{sep}{name}")
    }

    /// `pcfail ARGS --runbook DIR/runbook.toml --state-dir DIR/state`, with the lab's password in the
    /// variable the runbook names. Blocking is fine here: the test thread is not one of the lab
    /// runtime's workers, so the lab keeps answering while pcfail runs.
    pub fn pcfail(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run pcfail")
    }

    /// The same command, started and left running (for the lock and kill -9 tests). Its output is
    /// discarded: nobody reads it while it runs, and a full pipe must not block it.
    pub fn spawn_pcfail(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pcfail")
    }

    /// Waits (bounded) until the newest journal records that `step` started.
    pub fn wait_for_step(&self, step: &str) {
        let deadline = Instant::now() + WAIT_LIMIT;
        let reached = || {
            self.journals()
                .last()
                .and_then(|records| started_steps(records).last().cloned())
                .is_some_and(|s| s == step)
        };
        while !reached() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for step `{step}` to start; journals: {:?}",
                self.journals()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        self.command_in(&self.state_dir(), args)
    }

    /// The command with another state directory: what a second machine, with its own disk, runs.
    pub fn command_in(&self, state_dir: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pcfail"));
        command
            .args(args)
            .arg("--runbook")
            .arg(self.runbook())
            .arg("--state-dir")
            .arg(state_dir)
            .current_dir(self.dir.path())
            .env_remove("PCFAIL_RUNBOOK")
            // Decoys: who and where come from the OS, so these must not reach the journal.
            .env("USER", "decoy-user")
            .env("USERNAME", "decoy-user")
            .env("COMPUTERNAME", "decoy-host")
            .env(
                &self.manifest.login.password_env,
                &self.manifest.login.password,
            )
            .stdin(Stdio::null());
        command
    }

    /// [`LabRig::pcfail`] with more environment (a Windows account's password).
    pub fn pcfail_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = self.command(args);
        command.envs(env.iter().copied());
        command.output().expect("run pcfail")
    }

    /// Replaces `from` (which must occur) by `to` in the lab runbook, everywhere.
    pub fn edit_runbook(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(self.runbook()).expect("read runbook");
        assert!(
            text.contains(from),
            "`{from}` is not in the lab runbook:\n{text}"
        );
        std::fs::write(self.runbook(), text.replace(from, to)).expect("write runbook");
    }

    /// `pcfail failover --pool POOL --yes`, as an operator who confirmed in advance types it.
    pub fn failover(&self) -> Output {
        let pool = self.pool();
        self.pcfail(&["failover", "--pool", &pool, "--yes"])
    }

    pub fn failback(&self) -> Output {
        self.pcfail(&["failback", "--yes"])
    }

    pub fn status(&self) -> Status {
        self.runtime.block_on(self.lab().status())
    }

    /// The primary data center is lost the realistic way (`Lab::disaster`): its instances leave every
    /// connection unanswered until the client's own timeout (the lab runbook's `[timeouts] connect`).
    pub fn disaster(&self) -> Status {
        self.runtime
            .block_on(self.lab().disaster())
            .expect("disaster");
        self.status()
    }

    /// The primary data center is lost as `how` says (refusing instead of silent, with the share).
    pub fn disaster_with(&self, how: pcfail_lab::Disaster) -> Status {
        self.runtime
            .block_on(self.lab().disaster_with(how))
            .expect("disaster");
        self.status()
    }

    /// One instance stops: its port refuses connections ("instance stopped").
    pub fn stop_instance(&self, role: Role) {
        self.runtime
            .block_on(self.lab().stop_instance(role))
            .expect("stop instance");
    }

    pub fn start_instance(&self, role: Role) {
        self.runtime
            .block_on(self.lab().start_instance(role))
            .expect("start instance");
    }

    /// The log-shipping share becomes unreachable (false) or reachable again (true).
    pub fn set_share_reachable(&self, reachable: bool) {
        self.lab().set_share_reachable(reachable);
    }

    pub fn rebuild_primary(&self) {
        self.runtime
            .block_on(self.lab().rebuild_primary())
            .expect("rebuild primary");
    }

    /// What clients sent to `role`, in order.
    pub fn transcript(&self, role: Role) -> Vec<pcfail_lab::TranscriptEntry> {
        self.lab().transcript(role)
    }

    /// Forgets what clients sent so far (through the lab's control port, as `pcfail lab` would).
    pub fn clear_transcripts(&self) {
        pcfail_lab::clear_transcripts(&self.lab_dir()).expect("clear transcripts");
    }

    /// Writes `DIR/faults.json` with these rules (docs/lab.md), atomically so that neither the engine
    /// nor the shell can read half a file.
    pub fn set_faults(&self, rules: Value) {
        let path = self.lab_dir().join("faults.json");
        let tmp = self.lab_dir().join(".faults.json.test-tmp");
        let text = serde_json::to_string_pretty(&serde_json::json!({ "rules": rules }))
            .expect("JSON serializes");
        std::fs::write(&tmp, text).expect("write faults");
        std::fs::rename(&tmp, &path).expect("install faults");
    }

    /// The rules as the lab left them (with `times` counted down).
    pub fn faults(&self) -> Value {
        let text = std::fs::read_to_string(self.lab_dir().join("faults.json")).expect("faults");
        serde_json::from_str::<Value>(&text).expect("faults parse")["rules"].clone()
    }

    /// Polls the lab until `ready` holds; panics naming `what` after [`WAIT_LIMIT`].
    pub fn wait_for(&self, what: &str, ready: impl Fn(&Status) -> bool) -> Status {
        let deadline = Instant::now() + WAIT_LIMIT;
        loop {
            let status = self.status();
            if ready(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the lab:\n{}",
                status.render_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The journal file names (run ids) in the state directory, oldest first.
    pub fn run_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(self.state_dir().join("runs"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                    .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// Every journal record of every run, oldest run first (each line as JSON).
    pub fn journals(&self) -> Vec<Vec<Value>> {
        journals_in(&self.state_dir())
    }
}

impl Drop for LabRig {
    fn drop(&mut self) {
        if let Some(lab) = self.lab.take() {
            // A failed shutdown only matters to a test that already failed; do not panic in drop.
            let _ = self.runtime.block_on(lab.shutdown());
        }
    }
}

/// kill -9 of a running `pcfail`, and of the processes it started (the lab shell standing in for
/// PowerShell): a hung shell whose parent is gone would otherwise wait forever. Each is killed by
/// its own id, read from /proc before the parent dies.
pub fn kill_hard(child: &mut Child) {
    let children = children_of(child.id());
    child.kill().expect("kill pcfail");
    child.wait().expect("reap pcfail");
    for pid in children {
        // The shell may have exited on its own in the meantime; nothing to report then.
        let _ = Command::new("kill")
            .args(["-9", &pid.to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

/// The direct children of process `pid` (Linux: every thread's `children` list).
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// The journals in `state_dir/runs`, by file name (which starts with the run's UTC start time).
pub fn journals_in(state_dir: &Path) -> Vec<Vec<Value>> {
    let Ok(entries) = std::fs::read_dir(state_dir.join("runs")) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .expect("read journal")
                .lines()
                // A line cut short by kill -9 is not JSON; the executor drops it too.
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()
        })
        .collect()
}

/// The steps a journal records as started, in order (a step started twice appears twice).
pub fn started_steps(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .filter(|r| r["event"] == "step_started")
        .filter_map(|r| r["step"].as_str().map(str::to_owned))
        .collect()
}

/// The text of stdout or stderr.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts pcfail's exit status, showing both streams when it is wrong.
pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "pcfail exited with {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
}

/// The names of the finished log backups in the share, oldest first.
pub fn trn_names(status: &Status) -> Vec<String> {
    status
        .share
        .iter()
        .filter(|f| f.kind == pcfail_lab::BackupFileKind::Trn)
        .map(|f| f.name.clone())
        .collect()
}

/// The engine's view of one instance.
pub fn instance(status: &Status, role: Role) -> &Value {
    &status
        .instances
        .iter()
        .find(|i| i.role == role)
        .expect("every role is in the status")
        .sql
}

/// Database `name` on `role`, or `Value::Null` when it does not exist.
pub fn database<'a>(status: &'a Status, role: Role, name: &str) -> &'a Value {
    instance(status, role)["databases"]
        .as_array()
        .and_then(|dbs| dbs.iter().find(|d| d["name"] == name))
        .unwrap_or(&Value::Null)
}

/// The instance's history rows (`backup_history` or `restore_history`, newest first) for database `db`.
pub fn history<'a>(status: &'a Status, role: Role, key: &str, db: &str) -> Vec<&'a Value> {
    instance(status, role)[key]
        .as_array()
        .map(|rows| rows.iter().filter(|r| r["database"] == db).collect())
        .unwrap_or_default()
}

fn lsn(value: &Value) -> u128 {
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an LSN: {value}"))
}

/// The mirroring endpoint the lab gives `role` (what `SET PARTNER` names).
pub fn endpoint(manifest: &Manifest, role: Role) -> String {
    manifest
        .instance(role)
        .expect("every role is in the manifest")
        .endpoint
        .clone()
}

/// The lab's Persistent Chat servers in data center `dc`, sorted.
pub fn chat_servers_in(manifest: &Manifest, dc: &str) -> Vec<String> {
    let mut servers: Vec<String> = manifest
        .persistent_chat_servers
        .iter()
        .filter(|s| s.data_center == dc)
        .map(|s| s.fqdn.clone())
        .collect();
    servers.sort();
    servers
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The log backups of `mgc` the primary took (the newest the lab status lists), as (FirstLSN, LastLSN),
/// oldest first.
pub fn primary_log_backups(at_disaster: &Status) -> Vec<(u128, u128)> {
    let mut logs: Vec<(u128, u128)> = history(at_disaster, Role::Primary, "backup_history", "mgc")
        .into_iter()
        .filter(|b| b["type"] == "L")
        .map(|b| (lsn(&b["first_lsn"]), lsn(&b["last_lsn"])))
        .collect();
    logs.reverse();
    logs
}

/// The log restores of `mgc` on `role` since its last full restore, oldest first, and that full
/// restore's row.
pub fn log_restores_since_full(status: &Status, role: Role) -> (Vec<(u128, u128)>, Value) {
    let rows = history(status, role, "restore_history", "mgc");
    let full = rows
        .iter()
        .position(|r| r["type"] == "D")
        .expect("a full restore initialized mgc");
    let mut logs: Vec<(u128, u128)> = rows[..full]
        .iter()
        .filter(|r| r["type"] == "L")
        .map(|r| (lsn(&r["first_lsn"]), lsn(&r["last_lsn"])))
        .collect();
    logs.reverse();
    (logs, rows[full].clone())
}

/// The end state after a failover: backup `mgc` ONLINE and PRINCIPAL partnered with the
/// backup mirror (MIRROR), `mgccomp` mirrored likewise, log shipping gone from the backup instance
/// (configuration and jobs), every log backup the primary took applied exactly once in an unbroken
/// chain, the pool FailedOver and the DAL servers active.
pub fn assert_failed_over(rig: &LabRig, at_disaster: &Status, after: &Status) {
    let manifest = rig.manifest();
    let backup_ep = endpoint(manifest, Role::Backup);
    let mirror_ep = endpoint(manifest, Role::BackupMirror);
    for db in ["mgc", "mgccomp"] {
        let principal = database(after, Role::Backup, db);
        let mirror = database(after, Role::BackupMirror, db);
        if db == "mgc" {
            assert_eq!(
                principal["state_desc"], "ONLINE",
                "backup `mgc`: {principal}"
            );
        }
        assert_eq!(
            (
                &principal["mirroring"]["role"],
                &principal["mirroring"]["partner"]
            ),
            (&Value::from("PRINCIPAL"), &Value::from(mirror_ep.as_str())),
            "backup `{db}` should be the principal partnered with the backup mirror: {principal}"
        );
        assert_eq!(
            (
                &mirror["mirroring"]["role"],
                &mirror["mirroring"]["partner"]
            ),
            (&Value::from("MIRROR"), &Value::from(backup_ep.as_str())),
            "backup mirror `{db}` should be the mirror partnered with the backup: {mirror}"
        );
        assert_eq!(
            mirror["state_desc"], "RESTORING",
            "a mirror database restores"
        );
    }

    let backup = instance(after, Role::Backup);
    assert_eq!(
        backup["log_shipping"]["secondary"],
        serde_json::json!([]),
        "log shipping should be removed from the backup instance"
    );
    let ls_jobs: Vec<&Value> = backup["jobs"]
        .as_array()
        .map(|jobs| {
            jobs.iter()
                .filter(|j| {
                    j["name"]
                        .as_str()
                        .is_some_and(|n| n.starts_with("LSCopy_") || n.starts_with("LSRestore_"))
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(
        ls_jobs.is_empty(),
        "the copy and restore jobs should be gone: {ls_jobs:?}"
    );

    // Every log backup taken before the disaster, applied exactly once and in order: the restores
    // since the initializing full restore are exactly the primary's log backups since then.
    let taken = primary_log_backups(at_disaster);
    let (applied, full) = log_restores_since_full(after, Role::Backup);
    assert!(
        taken.len() >= BACKUPS_BEFORE_DISASTER,
        "the primary took {taken:?}"
    );
    let full_last = lsn(&full["last_lsn"]);
    let taken_since_full: Vec<(u128, u128)> = taken
        .iter()
        .copied()
        .filter(|(_, last)| *last > full_last)
        .collect();
    assert_eq!(
        applied, taken_since_full,
        "the log restores of backup `mgc` since its full restore (ending at LSN {full_last}) should be the primary's log backups, once each, in order"
    );
    assert!(
        applied.windows(2).all(|w| w[0].1 == w[1].0),
        "the restored chain is unbroken: {applied:?}"
    );
    assert_eq!(
        applied.last().map(|l| l.1),
        taken.last().map(|l| l.1),
        "the last log restored ends at the primary's newest log backup"
    );
    assert_eq!(after.pool_state, "FailedOver");
    assert_eq!(
        sorted(after.active_servers.clone()),
        chat_servers_in(manifest, "DAL")
    );
}

/// The end state after a fail-back, and log shipping running again: waits (bounded) until
/// the primary takes a log backup after the fail-back and the backup instance restores it.
pub fn assert_failed_back(rig: &LabRig, after_failover: &Status, after: &Status) {
    let manifest = rig.manifest();
    let primary_mgc = database(after, Role::Primary, "mgc");
    assert_eq!(
        primary_mgc["state_desc"], "ONLINE",
        "primary `mgc`: {primary_mgc}"
    );
    let recovered = database(after_failover, Role::Backup, "mgc")["chat_records"]
        .as_u64()
        .expect("chat records");
    assert!(
        primary_mgc["chat_records"].as_u64() >= Some(recovered),
        "primary `mgc` holds the {recovered} chat records the backup held: {primary_mgc}"
    );
    let full_restores: Vec<&Value> = history(after, Role::Primary, "restore_history", "mgc")
        .into_iter()
        .filter(|r| r["type"] == "D")
        .collect();
    assert!(
        full_restores
            .first()
            .is_some_and(|r| r["replace"] == true && r["recovery"] == true),
        "the primary's newest full restore of `mgc` is WITH REPLACE, RECOVERY: {full_restores:?}"
    );

    // Restored from the full backup the fail-back took on the backup instance, not another one.
    // (msdb also lists backup sets it restored, so the set is found by its file, the runbook's.)
    let taken = history(after, Role::Backup, "backup_history", "mgc")
        .into_iter()
        .find(|b| {
            b["type"] == "D"
                && b["device"]
                    .as_str()
                    .is_some_and(|d| d.ends_with("mgc_failback.bak"))
        })
        .expect("the fail-back took a full backup of `mgc` on the backup instance");
    assert_eq!(
        (
            &full_restores[0]["first_lsn"],
            &full_restores[0]["last_lsn"]
        ),
        (&taken["first_lsn"], &taken["last_lsn"]),
        "the primary restored the backup instance's full backup {taken}"
    );

    for db in ["mgc", "mgccomp"] {
        assert_eq!(
            database(after, Role::Backup, db)["mirroring"],
            Value::Null,
            "backup `{db}` is no longer mirrored"
        );
    }

    // The shipped fail-back mirrors the primary's `mgc` again, as the topology declares it.
    let primary_ep = endpoint(manifest, Role::Primary);
    let primary_mirror_ep = endpoint(manifest, Role::PrimaryMirror);
    assert_eq!(
        (
            &primary_mgc["mirroring"]["role"],
            &primary_mgc["mirroring"]["partner"]
        ),
        (
            &Value::from("PRINCIPAL"),
            &Value::from(primary_mirror_ep.as_str())
        ),
        "primary `mgc` should be the principal partnered with its mirror again: {primary_mgc}"
    );
    let mirrored = database(after, Role::PrimaryMirror, "mgc");
    assert_eq!(
        (
            &mirrored["mirroring"]["role"],
            &mirrored["mirroring"]["partner"]
        ),
        (&Value::from("MIRROR"), &Value::from(primary_ep.as_str())),
        "primary mirror `mgc`: {mirrored}"
    );

    let primary_name = &manifest.instance(Role::Primary).expect("primary").name;
    let backup_name = &manifest.instance(Role::Backup).expect("backup").name;
    let shipping = &instance(after, Role::Primary)["log_shipping"]["primary"];
    assert!(
        shipping.as_array().is_some_and(|p| p.iter().any(|p| {
            p["primary_database"] == "mgc"
                && p["secondaries"]
                    .as_array()
                    .is_some_and(|s| s.contains(&Value::from(format!("{backup_name}.mgc"))))
        })),
        "the primary ships `mgc` to the backup instance: {shipping}"
    );
    let secondary = &instance(after, Role::Backup)["log_shipping"]["secondary"];
    assert!(
        secondary
            .as_array()
            .is_some_and(|s| s
                .iter()
                .any(|s| s["primary_server"] == primary_name.as_str()
                    && s["primary_database"] == "mgc")),
        "the backup instance is the log-shipping secondary of {primary_name}.mgc: {secondary}"
    );
    assert_eq!(after.pool_state, "Normal");
    assert_eq!(
        sorted(after.active_servers.clone()),
        chat_servers_in(manifest, "ATL")
    );

    // Running, not just configured: a log backup taken after the fail-back reaches the backup.
    let known: Vec<u128> = history(after, Role::Primary, "backup_history", "mgc")
        .iter()
        .filter(|b| b["type"] == "L")
        .map(|b| lsn(&b["last_lsn"]))
        .collect();
    let shipped = rig.wait_for(
        "a log backup taken after the fail-back to be restored on the backup instance",
        |s| {
            let new_backups: Vec<u128> = history(s, Role::Primary, "backup_history", "mgc")
                .iter()
                .filter(|b| b["type"] == "L")
                .map(|b| lsn(&b["last_lsn"]))
                .filter(|l| !known.contains(l))
                .collect();
            history(s, Role::Backup, "restore_history", "mgc")
                .iter()
                .any(|r| r["type"] == "L" && new_backups.contains(&lsn(&r["last_lsn"])))
        },
    );
    assert_eq!(
        database(&shipped, Role::Backup, "mgc")["state_desc"],
        "RESTORING",
        "the log-shipped `mgc` on the backup instance stays restoring"
    );
}

impl LabRig {
    /// Sets `key = value` on the runbook step `id` of `procedure` (`failover`, `failback`), as an
    /// operator editing the lab's runbook would.
    pub fn set_step_key(&self, procedure: &str, id: &str, key: &str, value: toml::Value) {
        self.edit_steps(procedure, |steps| {
            let step = steps
                .iter_mut()
                .filter_map(toml::Value::as_table_mut)
                .find(|s| s.get("id").and_then(toml::Value::as_str) == Some(id))
                .unwrap_or_else(|| panic!("no step `{id}` in `{procedure}`"));
            step.insert(key.to_owned(), value);
        });
    }

    /// Moves the runbook step `id` of `procedure` to just after step `after`, as an operator
    /// reordering the lab's runbook would.
    pub fn move_step_after(&self, procedure: &str, id: &str, after: &str) {
        self.edit_steps(procedure, |steps| {
            let index = |steps: &[toml::Value], id: &str| {
                steps
                    .iter()
                    .position(|s| s.get("id").and_then(toml::Value::as_str) == Some(id))
                    .unwrap_or_else(|| panic!("no step `{id}` in `{procedure}`"))
            };
            let step = steps.remove(index(steps, id));
            let at = index(steps, after) + 1;
            steps.insert(at, step);
        });
    }

    /// Sets `[pool] identity` in the lab's runbook, as an operator would.
    pub fn set_pool_identity(&self, identity: &str) {
        self.edit_runbook_toml(|runbook| {
            runbook
                .get_mut("pool")
                .and_then(toml::Value::as_table_mut)
                .expect("[pool]")
                .insert("identity".to_owned(), identity.into());
        });
    }

    /// Edits the steps of `procedure` in the lab's runbook.
    fn edit_steps(&self, procedure: &str, edit: impl FnOnce(&mut Vec<toml::Value>)) {
        self.edit_runbook_toml(|runbook| {
            edit(
                runbook
                    .get_mut(procedure)
                    .and_then(|p| p.get_mut("steps"))
                    .and_then(toml::Value::as_array_mut)
                    .unwrap_or_else(|| panic!("no `{procedure}` steps")),
            )
        });
    }

    /// Reads the lab's runbook as TOML, lets `edit` change it, and writes it back.
    pub fn edit_runbook_toml(&self, edit: impl FnOnce(&mut toml::Table)) {
        let mut runbook: toml::Table = std::fs::read_to_string(self.runbook())
            .expect("runbook")
            .parse()
            .expect("the lab runbook is TOML");
        edit(&mut runbook);
        std::fs::write(self.runbook(), toml::to_string(&runbook).expect("TOML")).expect("write");
    }

    /// The shell's Central Management Store (cms.json, docs/lab.md), as it is now; created as the
    /// shell would create it when no cmdlet has run yet.
    pub fn cms(&self) -> Value {
        let path = self.lab_dir().join("cms.json");
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).expect("cms.json parses"),
            Err(_) => {
                let m = self.manifest();
                let dal = m
                    .front_end_servers
                    .iter()
                    .find(|f| f.data_center == "DAL")
                    .expect("a Front End server in DAL");
                serde_json::json!({
                    "pool": m.pool,
                    "pool_state": "Normal",
                    "active_servers": m.active_servers,
                    "master": { "fqdn": dal.fqdn, "data_center": "DAL" },
                })
            }
        }
    }

    /// Writes cms.json after `edit`, atomically (the shell re-reads it for every cmdlet).
    pub fn edit_cms(&self, edit: impl FnOnce(&mut Value)) {
        let mut cms = self.cms();
        edit(&mut cms);
        let path = self.lab_dir().join("cms.json");
        let tmp = self.lab_dir().join(".cms.json.test-tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&cms).expect("JSON")).expect("write cms");
        std::fs::rename(&tmp, &path).expect("install cms");
    }

    /// Puts the Central Management Server's master on the Front End server of data center `dc`.
    pub fn put_cms_master_in(&self, dc: &str) {
        let fe = self
            .manifest()
            .front_end_servers
            .iter()
            .find(|f| f.data_center == dc)
            .unwrap_or_else(|| panic!("no Front End server in {dc}"))
            .fqdn
            .clone();
        self.edit_cms(|cms| {
            cms["master"] = serde_json::json!({ "fqdn": fe, "data_center": dc });
        });
    }
}

impl LabRig {
    /// Runs `text` on the instance with `role` as the lab's login, the way an administrator's
    /// SSMS window would (for a test's set-up; pcfail is what the test examines).
    pub fn sql(&self, role: Role, text: &str) {
        let instance = self
            .manifest
            .instance(role)
            .expect("every role is in the manifest");
        let mut config = tiberius::Config::new();
        config.host(instance.address.ip().to_string());
        config.port(instance.address.port());
        config.authentication(tiberius::AuthMethod::sql_server(
            &self.manifest.login.user,
            &self.manifest.login.password,
        ));
        // The lab requires encryption by default; its certificate comes from its own CA.
        config.encryption(tiberius::EncryptionLevel::Required);
        config.trust_cert();
        self.runtime.block_on(async {
            use tokio_util::compat::TokioAsyncWriteCompatExt;
            let tcp = tokio::net::TcpStream::connect(instance.address)
                .await
                .expect("connect to the lab");
            let mut client = tiberius::Client::connect(config, tcp.compat_write())
                .await
                .expect("log in to the lab");
            client
                .simple_query(text)
                .await
                .expect("the statement runs")
                .into_results()
                .await
                .unwrap_or_else(|e| panic!("{text}: {e}"));
        });
    }
}

/// Every file under `dir` whose bytes contain `secret`.
pub fn files_containing(dir: &std::path::Path, secret: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if std::fs::read(&path)
                .is_ok_and(|bytes| bytes.windows(secret.len()).any(|w| w == secret.as_bytes()))
            {
                found.push(path);
            }
        }
    }
    found
}
