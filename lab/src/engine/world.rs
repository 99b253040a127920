//! The world: the four simulated instances, their persistent state, and the runtime-only parts
//! (sessions, transcripts, application locks, the fault rules) that a restart does not keep.
//!
//! Owns the layout Microsoft's Persistent Chat HA/DR guide leaves behind ([`World::new_hadr`]), the
//! passage of time ([`World::tick`]: chat traffic and Agent jobs), and what `pcfail lab status` shows.
//! What individual statements do lives in the per-request files.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::backupfile::{self, BackupFile, BackupSet};
use super::faults::Faults;
use super::guid::{Guid, Rng};
use super::model::{
    Database, DbState, Endpoint, Instance, Job, JobKind, LsPrimaryDb, LsPrimarySecondary,
    LsSecondary, LsSecondaryDb, MirrorRole, Mirroring, Msdb, Schedule,
};
use super::{InstanceConfig, LabTime, Role, WorldConfig, time};

pub type SharedWorld = Arc<Mutex<World>>;

/// One thing a client sent, for tests to assert on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TranscriptEntry {
    pub spid: u16,
    /// "login", "batch" or "rpc".
    pub kind: String,
    pub text: String,
}

/// A connection (or a staged "virtual" one, e.g. a Persistent Chat server) as sys.dm_exec_sessions shows it.
#[derive(Clone, Debug)]
pub(crate) struct SessionInfo {
    pub spid: u16,
    pub login: String,
    pub host: String,
    pub program: String,
    pub database: String,
    pub login_time: LabTime,
    pub last_batch: LabTime,
    pub token: CancellationToken,
    /// None for a real TCP session; Some(end) for a virtual one (None = until killed).
    pub virtual_end: Option<Option<Instant>>,
    /// Tells this session apart from a later one that reuses its spid.
    pub serial: u64,
    /// A request of this session is running (its task may outlive the client).
    pub busy: bool,
    /// The client has gone while a request ran: the session ends when the request does.
    pub orphaned: bool,
    /// The statement this session is working on, while it takes time.
    pub request: Option<RunningRequest>,
}

/// A statement that takes time, as sys.dm_exec_requests and sp_who2 show it while it runs.
#[derive(Clone, Debug)]
pub(crate) struct RunningRequest {
    /// `RESTORE LOG`, `BACKUP DATABASE`, ...
    pub command: String,
    /// The database it works on (in use by its session meanwhile).
    pub database: Option<String>,
    /// Nobody else may enter the database until it ends.
    pub exclusive: bool,
    pub start: LabTime,
    pub began: Instant,
    /// Its whole run time, for percent_complete.
    pub total: std::time::Duration,
}

impl RunningRequest {
    /// How far the work has come, 0 to 100 (sys.dm_exec_requests.percent_complete).
    pub(crate) fn percent_complete(&self) -> f64 {
        if self.total.is_zero() {
            return 100.0;
        }
        (self.began.elapsed().as_secs_f64() / self.total.as_secs_f64() * 100.0).min(100.0)
    }

    /// Real milliseconds left (sys.dm_exec_requests.estimated_completion_time).
    pub(crate) fn remaining_ms(&self) -> i64 {
        self.total.saturating_sub(self.began.elapsed()).as_millis() as i64
    }
}

/// An application lock held through sp_getapplock (session-owned, reference: sp_getapplock docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AppLock {
    pub role: Role,
    pub database: String,
    pub resource: String,
    pub mode: String,
    pub spid: u16,
    pub count: u32,
    /// "Session" or "Transaction".
    pub owner: String,
}

/// A log-shipping job whose run takes time (a "job" fault rule): its RESTORE shows as a request of
/// an Agent session until `until`, then the job's work is done and its outcome recorded.
#[derive(Clone, Debug)]
pub(crate) struct RunningJob {
    pub role: Role,
    pub job: super::guid::Guid,
    pub spid: u16,
    pub until: Instant,
}

#[derive(Debug, Default)]
pub(crate) struct Runtime {
    /// Jobs running now (agent.rs).
    pub running_jobs: Vec<RunningJob>,
    pub sessions: HashMap<Role, Vec<SessionInfo>>,
    pub transcripts: HashMap<Role, Vec<TranscriptEntry>>,
    pub applocks: Vec<AppLock>,
    pub faults: Faults,
    /// A faults.json share rule currently makes the share unreachable (share.rs).
    pub share_fault: bool,
    /// Per lost instance: cancelled when its host is reachable again, which closes the connections
    /// that were left unanswered (pcfail_lab_tds::Backend::unreachable).
    pub reachable_again: HashMap<Role, CancellationToken>,
    /// The serial the next session gets.
    pub next_serial: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct ChatTraffic {
    pub last: Option<LabTime>,
    pub carry: f64,
    pub sent: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct World {
    pub(crate) config: WorldConfig,
    pub(crate) instances: Vec<Instance>,
    pub(crate) rng: Rng,
    pub(crate) chat: ChatTraffic,
    /// The share is lost with a data center, or made unreachable by `Lab::set_share_reachable`.
    #[serde(default)]
    pub(crate) share_lost: bool,
    /// Data centers lost in a disaster: their Persistent Chat servers write nothing.
    #[serde(default)]
    pub(crate) lost_data_centers: Vec<String>,
    #[serde(skip)]
    pub(crate) rt: Runtime,
}

/// The first spid a user connection gets; lower ones belong to system sessions (KILL -> 6107).
pub(crate) const FIRST_USER_SPID: u16 = 51;

impl World {
    /// Microsoft's HA/DR layout (reference H.6): primary `mgc` and `mgccomp` ONLINE, FULL recovery, each
    /// mirrored (principal) to the primary mirror (which holds them RESTORING, role MIRROR); the backup
    /// instance holds `mgc` initialized from a full backup of the primary, RESTORING, configured as
    /// log-shipping secondary of the primary (msdb tables + LSCopy_/LSRestore_ jobs enabled with
    /// schedules) and `mgccomp` ONLINE empty; the primary has the log-shipping primary config and
    /// LSBackup_mgc job; the backup mirror has no user databases.
    pub fn new_hadr(config: WorldConfig, now: LabTime) -> World {
        let mut world = World {
            instances: Vec::new(),
            rng: Rng(now.0 as u64 ^ 0x5EED_1AB5),
            chat: ChatTraffic {
                last: Some(now),
                ..ChatTraffic::default()
            },
            share_lost: false,
            lost_data_centers: Vec::new(),
            rt: Runtime::default(),
            config,
        };
        for ic in world.config.instances.clone() {
            let inst = world.bare_instance(ic, now);
            world.instances.push(inst);
        }
        for role in [Role::Primary, Role::PrimaryMirror] {
            if let Some(inst) = world.inst_mut(role) {
                inst.endpoint = Some(Endpoint::mirroring_default());
            }
        }
        // The primary pair was mirrored at deployment, so each may connect to the other's endpoint.
        super::logins::grant_partner(&mut world, Role::Primary, Role::PrimaryMirror);
        super::logins::grant_partner(&mut world, Role::PrimaryMirror, Role::Primary);
        if world.inst(Role::Primary).is_none() {
            return world;
        }
        world.create_user_db(Role::Primary, "mgc", now);
        world.create_user_db(Role::Primary, "mgccomp", now);
        // Some history, so the first log backups carry chat records.
        for _ in 0..5 {
            world.chat_message(Role::Primary, now);
        }
        for db in ["mgc", "mgccomp"] {
            let set = world.initial_full_backup(Role::Primary, db, now);
            if world.inst(Role::PrimaryMirror).is_some() {
                world.seed_copy(Role::PrimaryMirror, &set, now);
                world.establish_mirroring(Role::Primary, Role::PrimaryMirror, db);
            }
            if db == "mgc" && world.inst(Role::Backup).is_some() {
                world.seed_copy(Role::Backup, &set, now);
            }
        }
        if world.inst(Role::Backup).is_some() {
            world.create_user_db(Role::Backup, "mgccomp", now);
            world.configure_log_shipping(now);
        }
        world
    }

    fn bare_instance(&mut self, config: InstanceConfig, now: LabTime) -> Instance {
        let mut inst = Instance {
            config,
            up: true,
            lost: false,
            databases: Vec::new(),
            next_database_id: 5,
            endpoint: None,
            logins: Vec::new(),
            msdb: Msdb::default(),
            errorlog: Vec::new(),
        };
        let dir = inst.data_dir();
        for (id, name) in [(1, "master"), (2, "tempdb"), (3, "model"), (4, "msdb")] {
            let guids = [self.rng.guid(), self.rng.guid(), self.rng.guid()];
            inst.databases
                .push(Database::new(name, id, true, guids, now, &dir));
        }
        inst
    }

    pub(crate) fn create_user_db(&mut self, role: Role, name: &str, now: LabTime) {
        let guids = [self.rng.guid(), self.rng.guid(), self.rng.guid()];
        let Some(inst) = self.inst_mut(role) else {
            return;
        };
        let id = inst.next_database_id;
        inst.next_database_id += 1;
        let dir = inst.data_dir();
        inst.databases
            .retain(|d| !d.name.eq_ignore_ascii_case(name));
        inst.databases
            .push(Database::new(name, id, false, guids, now, &dir));
    }

    /// The full backup Topology Builder / SSMS took to initialize the mirror and the secondary; also
    /// written to `<backups>/<db>_init.bak` so it can be inspected with RESTORE HEADERONLY.
    fn initial_full_backup(&mut self, role: Role, db: &str, now: LabTime) -> BackupSet {
        let real = self.config.backups.join(format!("{db}_init.bak"));
        // msdb records the name SQL Server was given: the backup share's, with Windows paths.
        let path = match &self.config.windows {
            Some(w) => super::paths::join_shown(&w.backups, &format!("{db}_init.bak")),
            None => real.to_string_lossy().into_owned(),
        };
        let media = self.rng.guid();
        let set_guid = self.rng.guid();
        let set = super::backup::take_backup(self, role, db, false, false, now, set_guid, 1)
            .expect("a freshly created database can be backed up");
        let _ = std::fs::create_dir_all(&self.config.backups);
        // Best effort: a world can be built without its folders (unit tests); the history still records it.
        let _ = backupfile::write(
            &backupfile::local(&real),
            &BackupFile {
                media_set_guid: media,
                sets: vec![set.clone()],
            },
        );
        super::backup::record_backup_history(self, role, &set, &path);
        set
    }

    /// Restores `set` on `role` WITH NORECOVERY (the state the mirror and the secondary start in).
    fn seed_copy(&mut self, role: Role, set: &BackupSet, now: LabTime) {
        let id = {
            let Some(inst) = self.inst_mut(role) else {
                return;
            };
            let id = inst.next_database_id;
            inst.next_database_id += 1;
            id
        };
        // With one data directory per instance, the copy was restored into its own (with MOVE), as
        // it would have to be on such a site.
        let moves: Option<Vec<(String, String)>> = self.config.data_paths_per_instance.then(|| {
            let dir = self.inst(role).map(|i| i.data_dir()).unwrap_or_default();
            set.files
                .iter()
                .map(|f| {
                    let name = f.physical.rsplit('\\').next().unwrap_or(&f.physical);
                    (f.logical.clone(), format!("{dir}\\{name}"))
                })
                .collect()
        });
        let db = super::restore::database_from_full(set, id, moves.as_deref());
        let inst = self.inst_mut(role).expect("checked above");
        inst.databases.push(db);
        let user = self.config.login_user.clone();
        super::restore::record_restore_history(
            self,
            role,
            set,
            "",
            &set.database_name,
            &user,
            false,
            false,
            now,
        );
    }

    fn establish_mirroring(&mut self, principal: Role, mirror: Role, db: &str) {
        let guid = self.rng.guid();
        let (p_end, p_name) = self.endpoint_and_name(principal);
        let (m_end, m_name) = self.endpoint_and_name(mirror);
        if let Some(d) = self.inst_mut(principal).and_then(|i| i.db_mut(db)) {
            d.mirroring = Some(Mirroring::new(MirrorRole::Principal, m_end, m_name, guid));
        }
        if let Some(d) = self.inst_mut(mirror).and_then(|i| i.db_mut(db)) {
            d.mirroring = Some(Mirroring::new(MirrorRole::Mirror, p_end, p_name, guid));
        }
        self.sync_mirrors();
    }

    fn endpoint_and_name(&self, role: Role) -> (String, String) {
        self.inst(role)
            .map(|i| (i.config.endpoint.clone(), i.config.name.clone()))
            .unwrap_or_default()
    }

    /// The log-shipping configuration SSMS leaves (reference G): primary entry + LSBackup job on the
    /// primary, secondary entry + LSCopy/LSRestore jobs on the backup instance, all enabled and scheduled.
    fn configure_log_shipping(&mut self, now: LabTime) {
        let primary_name = self
            .inst(Role::Primary)
            .map(|i| i.config.name.clone())
            .unwrap_or_default();
        let backup_name = self
            .inst(Role::Backup)
            .map(|i| i.config.name.clone())
            .unwrap_or_default();
        // With Windows paths, msdb holds what SSMS would write: the primary's local folder and the
        // share's UNC name, the secondary's copy folder on its own drive.
        let (local, share, copy) = match &self.config.windows {
            Some(w) => (
                w.share_local.clone(),
                w.share.clone(),
                w.copy_folder.clone(),
            ),
            None => {
                let share = self.config.share.to_string_lossy().into_owned();
                let copy = self.config.copy_folder.to_string_lossy().into_owned();
                (share.clone(), share, copy)
            }
        };
        let (primary_id, backup_job) = (self.rng.guid(), self.rng.guid());
        let every = (
            self.config.backup_every_min,
            self.config.copy_every_min,
            self.config.restore_every_min,
        );
        let inst = self.inst_mut(Role::Primary).expect("checked by caller");
        inst.msdb.ls_primary_databases.push(LsPrimaryDb::new(
            primary_id, "mgc", &local, &share, backup_job,
        ));
        inst.msdb.ls_primary_secondaries.push(LsPrimarySecondary {
            primary_id,
            secondary_server: backup_name,
            secondary_database: "mgc".to_owned(),
        });
        let name = "LSBackup_mgc".to_owned();
        self.add_scheduled_job(
            Role::Primary,
            backup_job,
            &name,
            JobKind::LsBackup,
            primary_id,
            every.0,
            now,
        );

        let (secondary_id, copy_job, restore_job) =
            (self.rng.guid(), self.rng.guid(), self.rng.guid());
        let standby = self.config.standby_secondary;
        let inst = self.inst_mut(Role::Backup).expect("checked by caller");
        inst.msdb.ls_secondary.push(LsSecondary {
            secondary_id,
            primary_server: primary_name.clone(),
            primary_database: "mgc".to_owned(),
            backup_source_directory: share,
            backup_destination_directory: copy,
            file_retention_period: 4320,
            copy_job_id: copy_job,
            restore_job_id: restore_job,
            monitor_server: None,
            monitor_server_security_mode: 1,
            last_copied_file: None,
            last_copied_date: None,
        });
        let mut secondary = LsSecondaryDb::new("mgc", secondary_id);
        secondary.restore_mode = standby;
        inst.msdb.ls_secondary_databases.push(secondary);
        let copy_name = format!("LSCopy_{primary_name}_mgc");
        let restore_name = format!("LSRestore_{primary_name}_mgc");
        self.add_scheduled_job(
            Role::Backup,
            copy_job,
            &copy_name,
            JobKind::LsCopy,
            secondary_id,
            every.1,
            now,
        );
        self.add_scheduled_job(
            Role::Backup,
            restore_job,
            &restore_name,
            JobKind::LsRestore,
            secondary_id,
            every.2,
            now,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn add_scheduled_job(
        &mut self,
        role: Role,
        id: Guid,
        name: &str,
        kind: JobKind,
        ls_id: Guid,
        every_min: u32,
        now: LabTime,
    ) {
        let uid = self.rng.guid();
        let Some(inst) = self.inst_mut(role) else {
            return;
        };
        let mut job = Job::new(id, name, kind, Some(ls_id), now);
        job.enabled = true;
        // First run at the next period boundary, as SQL Agent computes next_run_date/time.
        let period = i64::from(every_min.max(1)) * 60_000;
        let midnight = now.0 - now.0.rem_euclid(86_400_000);
        job.next_run = Some(LabTime(
            midnight + ((now.0 - midnight) / period + 1) * period,
        ));
        inst.msdb.jobs.push(job);
        let schedule_id = inst.msdb.next_id();
        inst.msdb.schedules.push(Schedule::every_minutes(
            schedule_id,
            uid,
            name,
            i64::from(every_min.max(1)),
            now,
        ));
        inst.msdb.job_schedules.push((id, schedule_id));
    }

    /// Runs whatever is due at `now`: chat traffic into the active `mgc`, then each enabled job whose
    /// schedule is due (log backup on the primary, copy and restore on the secondary).
    pub fn tick(&mut self, now: LabTime) {
        // Fault rules that act without any SQL traffic (an unreachable share) take effect here too.
        super::faults::refresh(self, now);
        self.chat_traffic(now);
        super::agent::run_due_jobs(self, now);
        self.sync_mirrors();
    }

    /// Chat messages at `chat_messages_per_min` into the `mgc` the pool uses: in the data center that
    /// cms.json's pool state points at (Normal = the primary's, FailedOver = the backup's), the copy that
    /// is ONLINE and not a mirror.
    fn chat_traffic(&mut self, now: LabTime) {
        let last = self.chat.last.unwrap_or(now);
        self.chat.last = Some(now);
        let minutes = (now.0 - last.0).max(0) as f64 / 60_000.0;
        let due = self.chat.carry + minutes * f64::from(self.config.chat_messages_per_min);
        let count = due.floor() as u64;
        self.chat.carry = due - count as f64;
        let Some(role) = self.active_mgc() else {
            return;
        };
        // A lab left down for days does not replay days of chat.
        for _ in 0..count.min(10_000) {
            self.chat_message(role, now);
        }
    }

    /// The `mgc` chat records go to: the copy the pool uses (cms.json's pool state: Normal = the
    /// primary's data center, FailedOver = the backup's) that is ONLINE and not a mirror, and only
    /// while at least one active Persistent Chat server outside a lost data center can write to it.
    /// An empty active list (after `-ActiveServers $Null`) writes nothing.
    pub(crate) fn active_mgc(&self) -> Option<Role> {
        let cms = std::fs::read_to_string(self.config.lab_dir.join("cms.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
        let failed_over = cms
            .as_ref()
            .and_then(|v| v.get("pool_state"))
            .and_then(|s| s.as_str())
            .is_some_and(|s| s.eq_ignore_ascii_case("FailedOver"));
        let active: Vec<String> = match cms.as_ref().and_then(|v| v.get("active_servers")) {
            Some(list) => list
                .as_array()
                .map(|l| {
                    l.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            None => self.config.initial_active_servers.clone(),
        };
        let writes = active.iter().any(|fqdn| {
            self.config.chat_servers.iter().any(|(server, dc)| {
                server.eq_ignore_ascii_case(fqdn)
                    && !self
                        .lost_data_centers
                        .iter()
                        .any(|lost| lost.eq_ignore_ascii_case(dc))
            })
        });
        if !writes {
            return None;
        }
        let candidates = if failed_over {
            [Role::Backup, Role::BackupMirror]
        } else {
            [Role::Primary, Role::PrimaryMirror]
        };
        candidates.into_iter().find(|&r| {
            self.inst(r).is_some_and(|i| {
                i.up && i.db("mgc").is_some_and(|d| {
                    d.state == DbState::Online
                        && !d.standby
                        && d.mirroring
                            .as_ref()
                            .is_none_or(|m| m.role == MirrorRole::Principal || m.pending)
                })
            })
        })
    }

    fn chat_message(&mut self, role: Role, now: LabTime) {
        self.chat.sent += 1;
        let text = format!("chat message {} at {}", self.chat.sent, time::display(now));
        if let Some(db) = self.inst_mut(role).and_then(|i| i.db_mut("mgc")) {
            db.log(Some(text));
        }
    }

    /// Synchronous mirroring: every principal whose mirror is up and not suspended pushes its log to it.
    pub(crate) fn sync_mirrors(&mut self) {
        let mut pushes = Vec::new();
        for inst in &self.instances {
            if !inst.up {
                continue;
            }
            for db in &inst.databases {
                if let Some(m) = &db.mirroring
                    && m.role == MirrorRole::Principal
                    && !m.pending
                    && !m.suspended
                    && let Some(partner) = self.role_by_endpoint(&m.partner)
                {
                    pushes.push((
                        partner,
                        db.name.clone(),
                        db.records.clone(),
                        db.end_lsn,
                        db.clone(),
                    ));
                }
            }
        }
        for (partner, name, records, end, source) in pushes {
            let Some(inst) = self.inst_mut(partner) else {
                continue;
            };
            if !inst.up {
                continue;
            }
            if let Some(d) = inst.db_mut(&name)
                && d.mirroring
                    .as_ref()
                    .is_some_and(|m| m.role == MirrorRole::Mirror)
            {
                d.records = records;
                d.end_lsn = end;
                d.redo_start_lsn = Some(end);
                d.log_chain_lsn = source.log_chain_lsn;
                d.database_backup_lsn = source.database_backup_lsn;
                d.fork_guid = source.fork_guid;
            }
        }
    }

    /// The instance whose mirroring endpoint address is `address` (case-insensitive, `TCP://host:port`).
    pub(crate) fn role_by_endpoint(&self, address: &str) -> Option<Role> {
        let want = address.trim().trim_end_matches('/').to_lowercase();
        self.instances
            .iter()
            .find(|i| i.config.endpoint.to_lowercase() == want)
            .map(|i| i.config.role)
    }

    pub(crate) fn inst(&self, role: Role) -> Option<&Instance> {
        self.instances.iter().find(|i| i.config.role == role)
    }

    pub(crate) fn inst_mut(&mut self, role: Role) -> Option<&mut Instance> {
        self.instances.iter_mut().find(|i| i.config.role == role)
    }

    /// The instance stops (false: connections refused) or comes back (true). Either way a lost host
    /// is found again. Going down cancels all its sessions' tokens (the protocol layer then closes the
    /// sockets) and drops their locks.
    pub fn set_instance_up(&mut self, role: Role, up: bool) {
        let mut was_lost = false;
        if let Some(inst) = self.inst_mut(role) {
            was_lost = inst.lost;
            inst.up = up;
            inst.lost = false;
        }
        if let Some(token) = self.rt.reachable_again.remove(&role) {
            token.cancel();
        }
        // A host that was lost comes back restarted: the sessions it left hanging are gone too.
        if !up || was_lost {
            for s in self.rt.sessions.remove(&role).unwrap_or_default() {
                s.token.cancel();
            }
            self.rt.applocks.retain(|l| l.role != role);
        }
        if up {
            self.sync_mirrors();
        }
    }

    pub fn is_up(&self, role: Role) -> bool {
        self.inst(role).is_some_and(|i| i.up)
    }

    /// The instance's host vanishes (its data center is lost): it stops working, but unlike a stopped
    /// instance nothing tells its clients. Open sessions keep their sockets and get no more answers;
    /// new connections are never answered. [`World::set_instance_up`] brings it back.
    pub fn lose_instance(&mut self, role: Role) {
        if let Some(inst) = self.inst_mut(role) {
            inst.up = false;
            inst.lost = true;
        }
    }

    /// The data center an instance stands in.
    pub fn data_center(&self, role: Role) -> Option<String> {
        self.inst(role).map(|i| i.config.data_center.clone())
    }

    pub fn is_lost(&self, role: Role) -> bool {
        self.inst(role).is_some_and(|i| i.lost)
    }

    /// For a lost instance, the token cancelled when its host is reachable again.
    pub(crate) fn unreachable_token(&mut self, role: Role) -> Option<CancellationToken> {
        if !self.is_lost(role) {
            return None;
        }
        Some(self.rt.reachable_again.entry(role).or_default().clone())
    }

    /// A data center is lost (true) or back (false): its Persistent Chat servers stop writing.
    pub fn set_data_center_lost(&mut self, data_center: &str, lost: bool) {
        self.lost_data_centers
            .retain(|dc| !dc.eq_ignore_ascii_case(data_center));
        if lost {
            self.lost_data_centers.push(data_center.to_owned());
        }
    }

    /// The primary data center is back, rebuilt by Topology Builder: primary and primary mirror up,
    /// `mgc` and `mgccomp` recreated empty ONLINE FULL on the primary, nothing on the primary mirror, no
    /// mirroring, no log-shipping configuration or jobs on the primary.
    pub fn rebuild_primary(&mut self, now: LabTime) {
        for role in [Role::Primary, Role::PrimaryMirror] {
            self.set_instance_up(role, false);
            let Some(ic) = self.inst(role).map(|i| i.config.clone()) else {
                continue;
            };
            let mut fresh = self.bare_instance(ic, now);
            // The servers were rebuilt; their mirroring endpoints come back with the SQL Server install.
            fresh.endpoint = Some(Endpoint::mirroring_default());
            if let Some(inst) = self.inst_mut(role) {
                *inst = fresh;
            }
        }
        self.create_user_db(Role::Primary, "mgc", now);
        self.create_user_db(Role::Primary, "mgccomp", now);
        for role in [Role::Primary, Role::PrimaryMirror] {
            self.set_instance_up(role, true);
            if let Some(dc) = self.inst(role).map(|i| i.config.data_center.clone()) {
                self.set_data_center_lost(&dc, false);
            }
        }
        // A share lost with the data center comes back with it.
        self.set_share_lost(false);
    }

    /// Everything `pcfail lab status` shows about SQL, per instance (by role).
    pub fn status(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        for inst in &self.instances {
            out.insert(
                inst.config.role.as_str().to_owned(),
                super::status::instance_status(self, inst),
            );
        }
        json!({
            "instances": out,
            "active_mgc": self.active_mgc().map(Role::as_str),
            "chat_messages_sent": self.chat.sent,
            "share_reachable": self.share_reachable(),
            "lost_data_centers": self.lost_data_centers,
        })
    }

    /// What clients sent to `role`: logins and statement texts, in order.
    pub fn transcript(&self, role: Role) -> Vec<TranscriptEntry> {
        self.rt.transcripts.get(&role).cloned().unwrap_or_default()
    }

    pub fn clear_transcripts(&mut self) {
        self.rt.transcripts.clear();
    }

    pub(crate) fn record(&mut self, role: Role, spid: u16, kind: &str, text: &str) {
        self.rt
            .transcripts
            .entry(role)
            .or_default()
            .push(TranscriptEntry {
                spid,
                kind: kind.to_owned(),
                text: text.to_owned(),
            });
    }

    /// After deserializing: re-attach runtime-only parts (the login password is never persisted).
    pub fn restore_runtime(&mut self, config_password: &str) {
        self.config.login_password = config_password.to_owned();
        self.rt = Runtime::default();
        self.apply_share_folder();
    }

    // ---- sessions

    /// Registers a session and returns its spid, the lowest free id from 51 up, reused after a close
    /// like SQL Server does, and its serial, which is never reused.
    pub(crate) fn open_session(&mut self, role: Role, mut info: SessionInfo) -> (u16, u64) {
        self.rt.next_serial += 1;
        let serial = self.rt.next_serial;
        let list = self.rt.sessions.entry(role).or_default();
        let mut spid = FIRST_USER_SPID;
        while list.iter().any(|s| s.spid == spid) {
            spid += 1;
        }
        info.spid = spid;
        info.serial = serial;
        list.push(info);
        (spid, serial)
    }

    /// The session `spid` if it is still the one with `serial`.
    fn session_serial(&mut self, role: Role, spid: u16, serial: u64) -> Option<&mut SessionInfo> {
        self.session_mut(role, spid).filter(|s| s.serial == serial)
    }

    /// A request of the session starts running in its own task.
    pub(crate) fn request_started(&mut self, role: Role, spid: u16, serial: u64) {
        if let Some(s) = self.session_serial(role, spid, serial) {
            s.busy = true;
        }
    }

    /// The statement the session works on, or `None` when it is done.
    pub(crate) fn set_request(
        &mut self,
        role: Role,
        spid: u16,
        serial: u64,
        request: Option<RunningRequest>,
    ) {
        if let Some(s) = self.session_serial(role, spid, serial) {
            s.request = request;
        }
    }

    /// The session's request ended; if its client left meanwhile, the session ends now.
    pub(crate) fn request_finished(&mut self, role: Role, spid: u16, serial: u64) {
        let Some(s) = self.session_serial(role, spid, serial) else {
            return;
        };
        s.busy = false;
        s.request = None;
        if s.orphaned {
            self.close_session(role, spid);
        }
    }

    /// The client closed the connection. A session with a running request stays until it ends
    /// (SQL Server only notices the client is gone when it next writes to it).
    pub(crate) fn client_gone(&mut self, role: Role, spid: u16, serial: u64) {
        let Some(s) = self.session_serial(role, spid, serial) else {
            return;
        };
        if s.busy {
            s.orphaned = true;
        } else {
            self.close_session(role, spid);
        }
    }

    pub(crate) fn close_session(&mut self, role: Role, spid: u16) {
        if let Some(list) = self.rt.sessions.get_mut(&role) {
            list.retain(|s| s.spid != spid);
        }
        self.rt
            .applocks
            .retain(|l| !(l.role == role && l.spid == spid));
    }

    /// Ends virtual sessions whose time is up.
    pub(crate) fn prune_sessions(&mut self, role: Role) {
        let now = Instant::now();
        let ended: Vec<u16> = self
            .rt
            .sessions
            .get(&role)
            .map(|l| {
                l.iter()
                    .filter(|s| matches!(s.virtual_end, Some(Some(t)) if t <= now))
                    .map(|s| s.spid)
                    .collect()
            })
            .unwrap_or_default();
        for spid in ended {
            self.close_session(role, spid);
        }
    }

    pub(crate) fn sessions(&self, role: Role) -> &[SessionInfo] {
        self.rt
            .sessions
            .get(&role)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub(crate) fn session(&self, role: Role, spid: u16) -> Option<&SessionInfo> {
        self.sessions(role).iter().find(|s| s.spid == spid)
    }

    /// The session's current database, or master (the default database) for a session it does not know.
    pub(crate) fn current_db(&self, role: Role, spid: u16) -> String {
        self.session(role, spid)
            .map(|s| s.database.clone())
            .unwrap_or_else(|| "master".to_owned())
    }

    pub(crate) fn session_mut(&mut self, role: Role, spid: u16) -> Option<&mut SessionInfo> {
        self.rt
            .sessions
            .get_mut(&role)?
            .iter_mut()
            .find(|s| s.spid == spid)
    }

    /// Ends every session but `keep` whose current database is `db`, as ROLLBACK IMMEDIATE or a role
    /// switch does: each token is cancelled (the protocol layer closes the socket) and the session closed.
    pub(crate) fn disconnect_users_of(&mut self, role: Role, db: &str, keep: Option<u16>) {
        let victims: Vec<u16> = self
            .sessions(role)
            .iter()
            .filter(|s| {
                Some(s.spid) != keep
                    && (s.database.eq_ignore_ascii_case(db)
                        || s.request
                            .as_ref()
                            .and_then(|r| r.database.as_deref())
                            .is_some_and(|d| d.eq_ignore_ascii_case(db)))
            })
            .map(|s| s.spid)
            .collect();
        for spid in victims {
            if let Some(s) = self.session(role, spid) {
                s.token.cancel();
            }
            self.close_session(role, spid);
        }
    }

    /// Other sessions whose current database is `db`, or whose running BACKUP/RESTORE works on it
    /// (what makes RESTORE fail with 3101).
    pub(crate) fn other_users_of(&self, role: Role, spid: u16, db: &str) -> usize {
        self.sessions(role)
            .iter()
            .filter(|s| {
                s.spid != spid
                    && (s.database.eq_ignore_ascii_case(db)
                        || s.request
                            .as_ref()
                            .and_then(|r| r.database.as_deref())
                            .is_some_and(|d| d.eq_ignore_ascii_case(db)))
            })
            .count()
    }

    /// Whether another session's running RESTORE (or tail-log backup) holds `db` exclusively.
    pub(crate) fn held_exclusively(&self, role: Role, spid: u16, db: &str) -> bool {
        self.sessions(role).iter().any(|s| {
            s.spid != spid
                && s.request.as_ref().is_some_and(|r| {
                    r.exclusive
                        && r.database
                            .as_deref()
                            .is_some_and(|d| d.eq_ignore_ascii_case(db))
                })
        })
    }
}

impl Endpoint {
    pub(crate) fn mirroring_default() -> Endpoint {
        Endpoint {
            name: "Mirroring".to_owned(),
            id: 65536,
            port: 5022,
            started: true,
            state_desc: "STARTED".to_owned(),
            role: "PARTNER".to_owned(),
            connect: Vec::new(),
        }
    }
}

impl Mirroring {
    pub(crate) fn new(
        role: MirrorRole,
        partner: String,
        partner_instance: String,
        guid: Guid,
    ) -> Mirroring {
        Mirroring {
            role,
            partner,
            partner_instance,
            guid,
            safety_full: true,
            suspended: false,
            role_sequence: 1,
            safety_sequence: 1,
            timeout: 10,
            pending: false,
        }
    }
}

impl LsPrimaryDb {
    pub(crate) fn new(
        primary_id: Guid,
        db: &str,
        dir: &str,
        share: &str,
        job: Guid,
    ) -> LsPrimaryDb {
        LsPrimaryDb {
            primary_id,
            primary_database: db.to_owned(),
            backup_directory: dir.to_owned(),
            backup_share: share.to_owned(),
            backup_retention_period: 4320,
            backup_compression: 2,
            backup_job_id: job,
            monitor_server: None,
            monitor_server_security_mode: 1,
            backup_threshold: 60,
            threshold_alert: 14420,
            threshold_alert_enabled: false,
            history_retention_period: 14420,
            last_backup_file: None,
            last_backup_date: None,
        }
    }
}

impl LsSecondaryDb {
    pub(crate) fn new(db: &str, secondary_id: Guid) -> LsSecondaryDb {
        LsSecondaryDb {
            secondary_database: db.to_owned(),
            secondary_id,
            restore_delay: 0,
            restore_all: true,
            restore_mode: false,
            disconnect_users: false,
            block_size: -1,
            buffer_count: -1,
            max_transfer_size: None,
            restore_threshold: 45,
            threshold_alert: 14420,
            threshold_alert_enabled: true,
            history_retention_period: 14420,
            last_restored_file: None,
            last_restored_date: None,
            last_restored_latency: None,
            monitor_last_copied_file: None,
            monitor_last_copied_date: None,
        }
    }
}

impl Job {
    pub(crate) fn new(
        job_id: Guid,
        name: &str,
        kind: JobKind,
        ls_id: Option<Guid>,
        now: LabTime,
    ) -> Job {
        let category = match kind {
            JobKind::LsBackup => "Log Shipping Backup",
            JobKind::LsCopy => "Log Shipping Copy",
            JobKind::LsRestore => "Log Shipping Restore",
            JobKind::LsAlert => "Log Shipping Alert",
            JobKind::Other => "[Uncategorized (Local)]",
        };
        Job {
            job_id,
            name: name.to_owned(),
            // Log-shipping procs create their jobs disabled (reference G).
            enabled: false,
            category: category.to_owned(),
            kind,
            ls_id,
            date_created: now,
            next_run: None,
            start_requested: false,
            history: Vec::new(),
            running_since: None,
        }
    }
}

impl Schedule {
    pub(crate) fn every_minutes(
        id: i64,
        uid: Guid,
        name: &str,
        minutes: i64,
        now: LabTime,
    ) -> Schedule {
        Schedule {
            schedule_id: id,
            schedule_uid: uid,
            name: name.to_owned(),
            enabled: true,
            freq_type: 4,
            freq_interval: 1,
            freq_subday_type: 4,
            freq_subday_interval: minutes,
            freq_recurrence_factor: 0,
            active_start_date: time::date_int(now),
            active_end_date: 99_991_231,
            active_start_time: 0,
            active_end_time: 235_900,
        }
    }
}
