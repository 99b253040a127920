//! The persistent state of one simulated instance: its databases (state, LSNs, chat records, files,
//! mirroring), its mirroring endpoint, and the msdb tables pcfail reads (backup and restore history,
//! log-shipping configuration, Agent jobs and schedules).
//!
//! Plain data with small helpers; behaviour lives in the per-request files (restore.rs, backup.rs, ...).

use serde::{Deserialize, Serialize};

use super::guid::Guid;
use super::lsn::Lsn;
use super::{InstanceConfig, LabTime};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum DbState {
    Online,
    Restoring,
}

impl DbState {
    pub(crate) fn code(self) -> i64 {
        match self {
            DbState::Online => 0,
            DbState::Restoring => 1,
        }
    }
    pub(crate) fn desc(self) -> &'static str {
        match self {
            DbState::Online => "ONLINE",
            DbState::Restoring => "RESTORING",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Recovery {
    Full,
    BulkLogged,
    Simple,
}

impl Recovery {
    pub(crate) fn code(self) -> i64 {
        match self {
            Recovery::Full => 1,
            Recovery::BulkLogged => 2,
            Recovery::Simple => 3,
        }
    }
    /// sys.databases / DATABASEPROPERTYEX spelling (reference C: BULK_LOGGED).
    pub(crate) fn desc(self) -> &'static str {
        match self {
            Recovery::Full => "FULL",
            Recovery::BulkLogged => "BULK_LOGGED",
            Recovery::Simple => "SIMPLE",
        }
    }
    /// backupset / RESTORE HEADERONLY spelling (reference C: BULK-LOGGED).
    pub(crate) fn backup_desc(self) -> &'static str {
        match self {
            Recovery::Full => "FULL",
            Recovery::BulkLogged => "BULK-LOGGED",
            Recovery::Simple => "SIMPLE",
        }
    }
    pub(crate) fn parse(s: &str) -> Option<Recovery> {
        match s.to_uppercase().replace('-', "_").as_str() {
            "FULL" => Some(Recovery::Full),
            "BULK_LOGGED" => Some(Recovery::BulkLogged),
            "SIMPLE" => Some(Recovery::Simple),
            _ => None,
        }
    }
}

/// One chat message written into `mgc`: the LSN of its log record and its text. Tests compare these
/// lists across instances to prove every log backup was applied exactly once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChatRecord {
    pub lsn: Lsn,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DbFile {
    pub file_id: i64,
    /// "D" data (ROWS) or "L" log.
    pub kind: char,
    pub logical: String,
    pub physical: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum MirrorRole {
    Principal,
    Mirror,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Mirroring {
    pub role: MirrorRole,
    /// The partner's endpoint address as given to SET PARTNER (`TCP://host:5022`).
    pub partner: String,
    /// The partner's `@@SERVERNAME`.
    pub partner_instance: String,
    pub guid: Guid,
    pub safety_full: bool,
    pub suspended: bool,
    pub role_sequence: i64,
    pub safety_sequence: i64,
    pub timeout: i64,
    /// Set on the mirror side after its SET PARTNER, until the principal's SET PARTNER starts the session.
    pub pending: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Database {
    pub name: String,
    pub id: i64,
    pub system: bool,
    pub state: DbState,
    pub standby: bool,
    pub recovery: Recovery,
    pub user_access: String,
    pub family_guid: Guid,
    pub database_guid: Guid,
    /// The recovery fork; a RESTORE WITH RECOVERY starts a new one (reference E.3).
    pub fork_guid: Guid,
    pub create_date: LabTime,
    /// The end of the log: the LSN the next log record gets.
    pub end_lsn: Lsn,
    /// Where the next roll-forward starts; Some only while RESTORING or in STANDBY (reference B.5).
    pub redo_start_lsn: Option<Lsn>,
    /// FirstLSN of the latest full backup (DatabaseBackupLSN); None = no log chain yet (4214).
    pub database_backup_lsn: Option<Lsn>,
    /// FirstLSN of the next log backup: where the last one ended.
    pub log_chain_lsn: Option<Lsn>,
    pub records: Vec<ChatRecord>,
    pub files: Vec<DbFile>,
    pub mirroring: Option<Mirroring>,
}

impl Database {
    pub(crate) fn new(
        name: &str,
        id: i64,
        system: bool,
        guids: [Guid; 3],
        now: LabTime,
        data_dir: &str,
    ) -> Database {
        let lsn = Lsn::initial(34 + id as i128);
        Database {
            name: name.to_owned(),
            id,
            system,
            state: DbState::Online,
            standby: false,
            // SQL Server installs master, tempdb and msdb in SIMPLE recovery; model (and so every
            // new database) is FULL.
            recovery: if ["master", "tempdb", "msdb"]
                .iter()
                .any(|s| s.eq_ignore_ascii_case(name))
            {
                Recovery::Simple
            } else {
                Recovery::Full
            },
            user_access: "MULTI_USER".to_owned(),
            family_guid: guids[0],
            database_guid: guids[1],
            fork_guid: guids[2],
            create_date: now,
            end_lsn: lsn,
            redo_start_lsn: None,
            database_backup_lsn: None,
            log_chain_lsn: None,
            records: Vec::new(),
            files: vec![
                DbFile {
                    file_id: 1,
                    kind: 'D',
                    logical: name.to_owned(),
                    physical: format!("{data_dir}\\{name}.mdf"),
                },
                DbFile {
                    file_id: 2,
                    kind: 'L',
                    logical: format!("{name}_log"),
                    physical: format!("{data_dir}\\{name}_log.ldf"),
                },
            ],
            mirroring: None,
        }
    }

    pub(crate) fn is_restoring(&self) -> bool {
        self.state == DbState::Restoring
    }

    /// Writes one log record (a chat message, or the marker a backup leaves) and returns its LSN.
    pub(crate) fn log(&mut self, text: Option<String>) -> Lsn {
        let lsn = self.end_lsn;
        let size = text.as_ref().map_or(96, |t| 96 + t.len());
        if let Some(text) = text {
            self.records.push(ChatRecord { lsn, text });
        }
        self.end_lsn = lsn.advance(size);
        lsn
    }

    /// Pages a backup of this database "contains", for the 4035/3014 messages.
    pub(crate) fn pages(&self) -> i64 {
        288 + self.records.len() as i64 / 8
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Endpoint {
    pub name: String,
    pub id: i64,
    pub port: i64,
    pub started: bool,
    pub state_desc: String,
    pub role: String,
    /// The logins granted CONNECT on it (`GRANT CONNECT ON ENDPOINT::[name] TO [login]`): a partner
    /// whose service account is another account must be one of them (reference J.5). Dropped with the
    /// endpoint, as its permissions are.
    #[serde(default)]
    pub connect: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct BackupSetRow {
    pub backup_set_id: i64,
    pub backup_set_uuid: Guid,
    pub media_set_id: i64,
    pub position: i64,
    pub name: Option<String>,
    pub user_name: String,
    pub first_lsn: Lsn,
    pub last_lsn: Lsn,
    pub checkpoint_lsn: Lsn,
    pub database_backup_lsn: Lsn,
    pub database_creation_date: LabTime,
    pub backup_start_date: LabTime,
    pub backup_finish_date: LabTime,
    /// 'D' full, 'L' log.
    pub kind: char,
    pub backup_size: i64,
    pub compressed_backup_size: i64,
    pub database_name: String,
    pub server_name: String,
    pub machine_name: String,
    pub recovery_model: String,
    pub has_backup_checksums: bool,
    pub is_copy_only: bool,
    pub database_guid: Guid,
    pub family_guid: Guid,
    pub fork_guid: Guid,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MediaFamilyRow {
    pub media_set_id: i64,
    pub physical_device_name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RestoreHistoryRow {
    pub restore_history_id: i64,
    pub restore_date: LabTime,
    pub destination_database_name: String,
    pub user_name: String,
    pub backup_set_id: i64,
    /// 'D' database, 'L' log.
    pub restore_type: char,
    pub replace: bool,
    pub recovery: bool,
    /// The restored set's first and last LSN, as the lab knows them: not a column of
    /// restorehistory, only for `lab status`, which must show them under the
    /// `restore_history_backupset=absent` variant too (backup_set_id then joins to nothing).
    #[serde(default)]
    pub set_lsns: Option<(Lsn, Lsn)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct LsPrimaryDb {
    pub primary_id: Guid,
    pub primary_database: String,
    pub backup_directory: String,
    pub backup_share: String,
    pub backup_retention_period: i64,
    pub backup_compression: i64,
    pub backup_job_id: Guid,
    pub monitor_server: Option<String>,
    pub monitor_server_security_mode: i64,
    pub backup_threshold: i64,
    pub threshold_alert: i64,
    pub threshold_alert_enabled: bool,
    pub history_retention_period: i64,
    pub last_backup_file: Option<String>,
    pub last_backup_date: Option<LabTime>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LsPrimarySecondary {
    pub primary_id: Guid,
    pub secondary_server: String,
    pub secondary_database: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct LsSecondary {
    pub secondary_id: Guid,
    pub primary_server: String,
    pub primary_database: String,
    pub backup_source_directory: String,
    pub backup_destination_directory: String,
    pub file_retention_period: i64,
    pub copy_job_id: Guid,
    pub restore_job_id: Guid,
    pub monitor_server: Option<String>,
    pub monitor_server_security_mode: i64,
    pub last_copied_file: Option<String>,
    pub last_copied_date: Option<LabTime>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct LsSecondaryDb {
    pub secondary_database: String,
    pub secondary_id: Guid,
    pub restore_delay: i64,
    pub restore_all: bool,
    pub restore_mode: bool,
    pub disconnect_users: bool,
    pub block_size: i64,
    pub buffer_count: i64,
    pub max_transfer_size: Option<i64>,
    pub restore_threshold: i64,
    pub threshold_alert: i64,
    pub threshold_alert_enabled: bool,
    pub history_retention_period: i64,
    pub last_restored_file: Option<String>,
    pub last_restored_date: Option<LabTime>,
    pub last_restored_latency: Option<i64>,
    /// The monitor row's copy of last_copied_* (log_shipping_monitor_secondary keeps its own, A.1).
    pub monitor_last_copied_file: Option<String>,
    pub monitor_last_copied_date: Option<LabTime>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum JobKind {
    LsBackup,
    LsCopy,
    LsRestore,
    /// The job `sp_add_log_shipping_alert_job` creates on a monitor (or, without one, on the primary
    /// and each secondary): it raises 14420/14421 when a threshold passes; the lab runs no step of it.
    LsAlert,
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JobRun {
    pub at: LabTime,
    pub succeeded: bool,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Job {
    pub job_id: Guid,
    pub name: String,
    pub enabled: bool,
    pub category: String,
    pub kind: JobKind,
    /// The log-shipping id the job works for (primary_id or secondary_id).
    pub ls_id: Option<Guid>,
    pub date_created: LabTime,
    pub next_run: Option<LabTime>,
    /// A sp_start_job request, run at the next tick.
    pub start_requested: bool,
    pub history: Vec<JobRun>,
    /// When the run under way started (msdb.dbo.sysjobactivity.start_execution_date); None when the
    /// job is idle.
    #[serde(default)]
    pub running_since: Option<LabTime>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Schedule {
    pub schedule_id: i64,
    pub schedule_uid: Guid,
    pub name: String,
    pub enabled: bool,
    pub freq_type: i64,
    pub freq_interval: i64,
    pub freq_subday_type: i64,
    pub freq_subday_interval: i64,
    pub freq_recurrence_factor: i64,
    pub active_start_date: i64,
    pub active_end_date: i64,
    pub active_start_time: i64,
    pub active_end_time: i64,
}

impl Schedule {
    /// The schedule's period in lab milliseconds (daily schedules with a sub-day interval are what log
    /// shipping uses; anything else runs once a day).
    pub(crate) fn period_ms(&self) -> i64 {
        let n = self.freq_subday_interval.max(1);
        match self.freq_subday_type {
            2 => n * 1000,
            4 => n * 60_000,
            8 => n * 3_600_000,
            _ => 86_400_000,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Msdb {
    pub backupset: Vec<BackupSetRow>,
    pub backupmediafamily: Vec<MediaFamilyRow>,
    pub restorehistory: Vec<RestoreHistoryRow>,
    pub ls_primary_databases: Vec<LsPrimaryDb>,
    pub ls_primary_secondaries: Vec<LsPrimarySecondary>,
    pub ls_secondary: Vec<LsSecondary>,
    pub ls_secondary_databases: Vec<LsSecondaryDb>,
    pub jobs: Vec<Job>,
    pub schedules: Vec<Schedule>,
    /// (job_id, schedule_id)
    pub job_schedules: Vec<(Guid, i64)>,
    pub next_id: i64,
    /// `log_shipping_monitor_alert`: the alert job's id, one row at most. `default` so a lab saved
    /// before the table was modelled still loads.
    #[serde(default)]
    pub monitor_alert: Option<Guid>,
}

impl Msdb {
    pub(crate) fn next_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }
    /// The primary_id of the log_shipping_primary_databases row for `db`, if it is configured.
    pub(crate) fn ls_primary_id(&self, db: &str) -> Option<Guid> {
        self.ls_primary_databases
            .iter()
            .find(|p| p.primary_database.eq_ignore_ascii_case(db))
            .map(|p| p.primary_id)
    }
    /// The secondary_id of the log_shipping_secondary row for (`server`, `db`), the key the procedures
    /// name it by.
    pub(crate) fn ls_secondary_id(&self, server: &str, db: &str) -> Option<Guid> {
        self.ls_secondary
            .iter()
            .find(|s| {
                s.primary_server.eq_ignore_ascii_case(server)
                    && s.primary_database.eq_ignore_ascii_case(db)
            })
            .map(|s| s.secondary_id)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Instance {
    pub config: InstanceConfig,
    /// False while the instance is stopped (connections refused) or lost (connections unanswered).
    pub up: bool,
    /// Its host cannot be reached at all (its data center is lost): connections are accepted by
    /// nothing and never answered, so clients wait for their own timeout. Implies `!up`.
    #[serde(default)]
    pub lost: bool,
    pub databases: Vec<Database>,
    pub next_database_id: i64,
    pub endpoint: Option<Endpoint>,
    /// Windows logins made with `CREATE LOGIN [DOMAIN\account] FROM WINDOWS`, in order (their
    /// principal_id is 256 + the index, as the first user-made principals get).
    #[serde(default)]
    pub logins: Vec<String>,
    pub msdb: Msdb,
    /// The SQL Server error log (the current one): what `xp_logevent` writes and `sp_readerrorlog`
    /// reads.
    #[serde(default)]
    pub errorlog: Vec<ErrorLogLine>,
}

/// One line of the SQL Server error log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ErrorLogLine {
    pub time: LabTime,
    /// `spid57`, `Server`, ... as the log's ProcessInfo column shows it.
    pub process: String,
    pub text: String,
}

impl Instance {
    pub(crate) fn db(&self, name: &str) -> Option<&Database> {
        self.databases
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }
    pub(crate) fn db_mut(&mut self, name: &str) -> Option<&mut Database> {
        self.databases
            .iter_mut()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }
    pub(crate) fn db_by_id(&self, id: i64) -> Option<&Database> {
        self.databases.iter().find(|d| d.id == id)
    }
    /// Where this instance keeps data files (names only; the lab keeps no data files).
    pub(crate) fn data_dir(&self) -> String {
        format!(
            "C:\\Program Files\\Microsoft SQL Server\\MSSQL13.MSSQLSERVER\\MSSQL\\DATA\\{}",
            self.config.name
        )
    }
    pub(crate) fn job(&self, id: Guid) -> Option<&Job> {
        self.msdb.jobs.iter().find(|j| j.job_id == id)
    }
}
