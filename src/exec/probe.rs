//! Read-only questions the actions ask the servers: what state a database is in, where its redo
//! point is, who is connected, what log shipping and mirroring look like.
//!
//! Every query is parameterized (names travel as sp_executesql parameters, never as SQL text) except
//! RESTORE HEADERONLY, whose path is a literal quoted by `quote::sql_string`. Comparisons of
//! server-provided text (`PRINCIPAL`, `Principal`) are case-insensitive, because Microsoft's own
//! documentation disagrees on the case (reference E.4).

use super::chain::LogBackup;
use super::session::{Session, StepError};
use crate::quote;
use crate::runbook::Role;
use crate::sql::{Param, ResultSet, Value};

/// A database as sys.databases shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DbState {
    pub state_desc: String,
    pub is_in_standby: bool,
}

impl DbState {
    pub(crate) fn is_restoring(&self) -> bool {
        self.state_desc.eq_ignore_ascii_case("RESTORING")
    }

    /// Still accepting log backups: RESTORING (NORECOVERY), or a read-only STANDBY, which SQL Server
    /// reports as ONLINE with `is_in_standby = 1` (reference C).
    pub(crate) fn accepts_log(&self) -> bool {
        self.is_restoring() || self.is_in_standby
    }

    /// ONLINE and not a read-only standby (reference C: a STANDBY secondary is ONLINE too).
    pub(crate) fn is_recovered(&self) -> bool {
        self.state_desc.eq_ignore_ascii_case("ONLINE") && !self.is_in_standby
    }
}

pub(crate) async fn database(
    s: &mut Session<'_>,
    role: Role,
    db: &str,
) -> Result<Option<DbState>, StepError> {
    let set = s
        .query(
            role,
            "SELECT state_desc, is_in_standby FROM sys.databases WHERE name = @P1",
            &[Param::Str(db)],
        )
        .await?;
    Ok(set.rows.first().map(|row| DbState {
        state_desc: set.get(row, "state_desc").as_str().unwrap_or("").to_owned(),
        is_in_standby: set.get(row, "is_in_standby").as_i64() == Some(1),
    }))
}

/// Succeeds when `db` on `role` is ONLINE and not a standby; otherwise says what it is, `after` the
/// step that should have brought it online.
pub(crate) async fn require_online(
    s: &mut Session<'_>,
    role: Role,
    db: &str,
    after: &str,
) -> Result<(), StepError> {
    match database(s, role, db).await? {
        Some(state) if state.is_recovered() => Ok(()),
        Some(state) => Err(StepError::Failed(format!(
            "`{db}` on `{role}` is {} (standby: {}) {after}, not ONLINE",
            state.state_desc, state.is_in_standby
        ))),
        None => Err(StepError::Failed(format!(
            "`{db}` does not exist on `{role}` {after}"
        ))),
    }
}

/// `sys.master_files.redo_start_lsn` of the primary data file: where the next log must start. NULL
/// (None) unless the database is restoring (reference B.5).
pub(crate) async fn redo_start_lsn(
    s: &mut Session<'_>,
    role: Role,
    db: &str,
) -> Result<Option<i128>, StepError> {
    let set = s
        .query(
            role,
            "SELECT redo_start_lsn FROM sys.master_files WHERE database_id = DB_ID(@P1) AND file_id = 1",
            &[Param::Str(db)],
        )
        .await?;
    Ok(set
        .rows
        .first()
        .and_then(|row| set.get(row, "redo_start_lsn").as_i128()))
}

/// The copy and restore jobs of the log-shipping secondary `db`, found by id (reference A.3: names are
/// parameters), as (job_id, name). Empty when log shipping is no longer configured.
pub(crate) async fn log_shipping_jobs(
    s: &mut Session<'_>,
    role: Role,
    db: &str,
) -> Result<Vec<(String, String)>, StepError> {
    let ids = s
        .query(
            role,
            "SELECT s.copy_job_id, s.restore_job_id FROM msdb.dbo.log_shipping_secondary AS s JOIN msdb.dbo.log_shipping_secondary_databases AS d ON d.secondary_id = s.secondary_id WHERE d.secondary_database = @P1",
            &[Param::Str(db)],
        )
        .await?;
    let wanted: Vec<String> = ids
        .rows
        .iter()
        .flat_map(|row| {
            ["copy_job_id", "restore_job_id"]
                .into_iter()
                .filter_map(|c| ids.get(row, c).as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let jobs = s
        .query(role, "SELECT job_id, name FROM msdb.dbo.sysjobs", &[])
        .await?;
    Ok(jobs
        .rows
        .iter()
        .filter_map(|row| {
            let id = jobs.get(row, "job_id").as_str()?;
            let name = jobs.get(row, "name").as_str()?;
            wanted
                .iter()
                .any(|w| w.eq_ignore_ascii_case(id))
                .then(|| (id.to_owned(), name.to_owned()))
        })
        .collect())
}

/// Of `jobs` (ids), those SQL Server Agent is running now: a msdb.dbo.sysjobactivity row with a start
/// and no stop, with its start (server local time). UNVERIFIED: a row left by an Agent session that
/// ended while the job ran would also look running; the wait for it is bounded and says which job.
pub(crate) async fn running_jobs(
    s: &mut Session<'_>,
    role: Role,
    jobs: &[String],
) -> Result<Vec<(String, String)>, StepError> {
    let set = s
        .query(
            role,
            "SELECT job_id, start_execution_date FROM msdb.dbo.sysjobactivity WHERE start_execution_date IS NOT NULL AND stop_execution_date IS NULL",
            &[],
        )
        .await?;
    Ok(set
        .rows
        .iter()
        .filter_map(|row| {
            let id = set.get(row, "job_id").as_str()?;
            jobs.iter().any(|j| j.eq_ignore_ascii_case(id)).then(|| {
                let since = match set.get(row, "start_execution_date") {
                    Value::DateTime(d) => d.clone(),
                    _ => String::new(),
                };
                (id.to_owned(), since)
            })
        })
        .collect())
}

/// `sys.master_files.redo_start_fork_guid`: the recovery fork the next log backup must start on
/// (reference B.5); NULL unless the database is restoring.
pub(crate) async fn redo_start_fork(
    s: &mut Session<'_>,
    role: Role,
    db: &str,
) -> Result<Option<String>, StepError> {
    db_text(
        s,
        role,
        "SELECT redo_start_fork_guid FROM sys.master_files WHERE database_id = DB_ID(@P1) AND file_id = 1",
        db,
        "redo_start_fork_guid",
    )
    .await
}

/// The FamilyGUID of the backup set last restored into `db` on `role` (msdb restorehistory joined to
/// backupset): the database family every further log backup must belong to. None when msdb does not
/// say (no history, or a server that records no backupset for what it restored: reference B.5).
pub(crate) async fn restored_family(
    s: &mut Session<'_>,
    role: Role,
    db: &str,
) -> Result<Option<String>, StepError> {
    db_text(
        s,
        role,
        "SELECT TOP 1 bs.family_guid FROM msdb.dbo.restorehistory AS rh JOIN msdb.dbo.backupset AS bs ON bs.backup_set_id = rh.backup_set_id WHERE rh.destination_database_name = @P1 ORDER BY rh.restore_history_id DESC",
        db,
        "family_guid",
    )
    .await
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mirroring {
    pub role_desc: String,
    pub state_desc: String,
    pub partner_name: String,
}

/// The database's mirroring session, or None when it is not mirrored (all columns NULL).
pub(crate) async fn mirroring(
    s: &mut Session<'_>,
    role: Role,
    db: &str,
) -> Result<Option<Mirroring>, StepError> {
    let set = s
        .query(
            role,
            "SELECT mirroring_role_desc, mirroring_state_desc, mirroring_partner_name FROM sys.database_mirroring WHERE database_id = DB_ID(@P1)",
            &[Param::Str(db)],
        )
        .await?;
    Ok(set.rows.first().and_then(|row| {
        let text = |c: &str| set.get(row, c).as_str().map(str::to_owned);
        Some(Mirroring {
            role_desc: text("mirroring_role_desc")?,
            state_desc: text("mirroring_state_desc").unwrap_or_default(),
            partner_name: text("mirroring_partner_name").unwrap_or_default(),
        })
    }))
}

/// The instance's DATABASE_MIRRORING endpoint (at most one, reference E.1): its name, state and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MirroringEndpointState {
    pub name: String,
    /// `endpoint_id`: what sys.server_permissions calls its `major_id` (class 105).
    pub id: Option<i64>,
    pub state_desc: String,
    pub port: Option<i64>,
}

pub(crate) async fn mirroring_endpoint(
    s: &mut Session<'_>,
    role: Role,
) -> Result<Option<MirroringEndpointState>, StepError> {
    let set = s
        .query(
            role,
            "SELECT e.name, e.endpoint_id, e.state_desc, t.port FROM sys.database_mirroring_endpoints AS e JOIN sys.tcp_endpoints AS t ON t.endpoint_id = e.endpoint_id",
            &[],
        )
        .await?;
    Ok(set.rows.first().map(|row| MirroringEndpointState {
        name: set.get(row, "name").as_str().unwrap_or_default().to_owned(),
        id: set.get(row, "endpoint_id").as_i64(),
        state_desc: set
            .get(row, "state_desc")
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        port: set.get(row, "port").as_i64(),
    }))
}

/// `SERVERPROPERTY('InstanceDefaultDataPath')` and `...LogPath` of `role` (SQL Server 2012 and
/// later; NULL before), where a restore's files belong when they must be moved.
pub(crate) async fn default_paths(
    s: &mut Session<'_>,
    role: Role,
) -> Result<(Option<String>, Option<String>), StepError> {
    let set = s
        .query(
            role,
            "SELECT CAST(SERVERPROPERTY('InstanceDefaultDataPath') AS nvarchar(260)) AS data_path, CAST(SERVERPROPERTY('InstanceDefaultLogPath') AS nvarchar(260)) AS log_path",
            &[],
        )
        .await?;
    let get = |column: &str| {
        set.rows
            .first()
            .and_then(|row| set.get(row, column).as_str().map(str::to_owned))
    };
    Ok((get("data_path"), get("log_path")))
}

/// The files of `db` on `role` (`sys.master_files`): logical name, physical name, and whether it is
/// the log.
pub(crate) async fn database_files(
    s: &mut Session<'_>,
    role: Role,
    db: &str,
) -> Result<Vec<(String, String, bool)>, StepError> {
    let set = s
        .query(
            role,
            "SELECT name, physical_name, type_desc FROM sys.master_files WHERE database_id = DB_ID(@P1)",
            &[Param::Str(db)],
        )
        .await?;
    Ok(set
        .rows
        .iter()
        .map(|row| {
            let text = |c: &str| set.get(row, c).as_str().unwrap_or_default().to_owned();
            (
                text("name"),
                text("physical_name"),
                text("type_desc").eq_ignore_ascii_case("LOG"),
            )
        })
        .collect())
}

/// The Windows account `role`'s SQL Server service runs under (`sys.dm_server_services`; the
/// Database Engine's row is `SQL Server (<instance>)`, the Agent's `SQL Server Agent (...)`).
pub(crate) async fn service_account(
    s: &mut Session<'_>,
    role: Role,
) -> Result<Option<String>, StepError> {
    let set = s
        .query(
            role,
            "SELECT servicename, service_account FROM sys.dm_server_services",
            &[],
        )
        .await?;
    Ok(set.rows.iter().find_map(|row| {
        let name = set.get(row, "servicename").as_str()?;
        name.to_ascii_lowercase()
            .starts_with("sql server (")
            .then(|| set.get(row, "service_account").as_str().map(str::to_owned))?
    }))
}

/// Whether `login` exists on `role`, and whether it holds CONNECT (granted, or granted WITH GRANT
/// OPTION) on the endpoint whose id is `endpoint_id`.
pub(crate) async fn endpoint_connect(
    s: &mut Session<'_>,
    role: Role,
    login: &str,
    endpoint_id: Option<i64>,
) -> Result<(bool, bool), StepError> {
    let principals = s
        .query(
            role,
            "SELECT principal_id FROM sys.server_principals WHERE name = @P1",
            &[Param::Str(login)],
        )
        .await?;
    if principals.rows.is_empty() {
        return Ok((false, false));
    }
    let set = s
        .query(
            role,
            "SELECT p.major_id, p.permission_name, p.state FROM sys.server_permissions AS p JOIN sys.server_principals AS sp ON sp.principal_id = p.grantee_principal_id WHERE p.class = 105 AND sp.name = @P1",
            &[Param::Str(login)],
        )
        .await?;
    let granted = set.rows.iter().any(|row| {
        set.get(row, "major_id").as_i64() == endpoint_id
            && set
                .get(row, "permission_name")
                .as_str()
                .is_some_and(|p| p.eq_ignore_ascii_case("CONNECT"))
            && set
                .get(row, "state")
                .as_str()
                .is_some_and(|st| matches!(st.trim(), "G" | "W"))
    });
    Ok((true, granted))
}

/// `sys.databases.recovery_model_desc` of `db` (FULL, BULK_LOGGED or SIMPLE), if it exists.
pub(crate) async fn recovery_model(
    s: &mut Session<'_>,
    role: Role,
    db: &str,
) -> Result<Option<String>, StepError> {
    db_text(
        s,
        role,
        "SELECT recovery_model_desc FROM sys.databases WHERE name = @P1",
        db,
        "recovery_model_desc",
    )
    .await
}

/// What msdb records about a log-shipping secondary database (reference A.1): where its backups come
/// from and go, how far copying and restoring got, and the settings fail-back re-establishes. Fields
/// added after the first release default, so journals written by earlier versions still read.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct LogShippingSecondary {
    pub primary_server: String,
    pub primary_database: String,
    pub backup_source_directory: String,
    pub backup_destination_directory: String,
    pub last_copied_file: Option<String>,
    pub last_restored_file: Option<String>,
    /// Server local time, as msdb stores it.
    #[serde(default)]
    pub last_copied_date: Option<String>,
    #[serde(default)]
    pub last_restored_date: Option<String>,
    #[serde(default)]
    pub file_retention_period: Option<i64>,
    #[serde(default)]
    pub restore_delay: Option<i64>,
    #[serde(default)]
    pub restore_mode: Option<i64>,
    #[serde(default)]
    pub disconnect_users: Option<i64>,
    /// From log_shipping_monitor_secondary (minutes before an alert).
    #[serde(default)]
    pub restore_threshold: Option<i64>,
    /// The copy and restore jobs with their schedules (found by job id, reference A.3).
    #[serde(default)]
    pub copy_job: Option<AgentJob>,
    #[serde(default)]
    pub restore_job: Option<AgentJob>,
}

/// A SQL Agent job and how often its schedule runs it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct AgentJob {
    pub name: String,
    /// `freq_subday_interval` when `freq_subday_type` is 4 (minutes), else None.
    pub every_minutes: Option<i64>,
}

/// The secondary's configuration, without the jobs (one query; what the situation needs).
pub(crate) async fn log_shipping_secondary(
    s: &mut Session<'_>,
    role: Role,
    db: &str,
) -> Result<Option<LogShippingSecondary>, StepError> {
    let set = s
        .query(
            role,
            "SELECT s.primary_server, s.primary_database, s.backup_source_directory, s.backup_destination_directory, s.last_copied_file, s.last_copied_date, s.file_retention_period, d.last_restored_file, d.last_restored_date, d.restore_delay, d.restore_mode, d.disconnect_users FROM msdb.dbo.log_shipping_secondary AS s JOIN msdb.dbo.log_shipping_secondary_databases AS d ON d.secondary_id = s.secondary_id WHERE d.secondary_database = @P1",
            &[Param::Str(db)],
        )
        .await?;
    Ok(set.rows.first().map(|row| {
        let text = |c: &str| set.get(row, c).as_str().map(str::to_owned);
        let int = |c: &str| set.get(row, c).as_i64();
        LogShippingSecondary {
            primary_server: text("primary_server").unwrap_or_default(),
            primary_database: text("primary_database").unwrap_or_default(),
            backup_source_directory: text("backup_source_directory").unwrap_or_default(),
            backup_destination_directory: text("backup_destination_directory").unwrap_or_default(),
            last_copied_file: text("last_copied_file"),
            last_restored_file: text("last_restored_file"),
            last_copied_date: text("last_copied_date"),
            last_restored_date: text("last_restored_date"),
            file_retention_period: int("file_retention_period"),
            restore_delay: int("restore_delay"),
            restore_mode: int("restore_mode"),
            disconnect_users: int("disconnect_users"),
            restore_threshold: None,
            copy_job: None,
            restore_job: None,
        }
    }))
}

/// Everything fail-back needs to put log shipping back as it was: the configuration, the monitor's
/// restore threshold, and the copy and restore jobs with their schedules. Read before failover step 1
/// deletes them. The lab's T-SQL (like some tools) takes one join per query, so this is four queries.
pub(crate) async fn log_shipping_secondary_full(
    s: &mut Session<'_>,
    role: Role,
    db: &str,
) -> Result<Option<LogShippingSecondary>, StepError> {
    let Some(mut ls) = log_shipping_secondary(s, role, db).await? else {
        return Ok(None);
    };
    let monitor = s
        .query(
            role,
            "SELECT restore_threshold FROM msdb.dbo.log_shipping_monitor_secondary WHERE secondary_database = @P1",
            &[Param::Str(db)],
        )
        .await?;
    ls.restore_threshold = monitor
        .rows
        .first()
        .and_then(|r| monitor.get(r, "restore_threshold").as_i64());
    let ids = s
        .query(
            role,
            "SELECT s.copy_job_id, s.restore_job_id FROM msdb.dbo.log_shipping_secondary AS s JOIN msdb.dbo.log_shipping_secondary_databases AS d ON d.secondary_id = s.secondary_id WHERE d.secondary_database = @P1",
            &[Param::Str(db)],
        )
        .await?;
    let id = |c: &str| {
        ids.rows
            .first()
            .and_then(|r| ids.get(r, c).as_str().map(str::to_ascii_uppercase))
    };
    let (copy_id, restore_id) = (id("copy_job_id"), id("restore_job_id"));
    let jobs = s
        .query(role, "SELECT job_id, name FROM msdb.dbo.sysjobs", &[])
        .await?;
    let schedules = s
        .query(
            role,
            "SELECT js.job_id, sc.freq_subday_type, sc.freq_subday_interval FROM msdb.dbo.sysjobschedules AS js JOIN msdb.dbo.sysschedules AS sc ON sc.schedule_id = js.schedule_id",
            &[],
        )
        .await?;
    let job = |wanted: &Option<String>| -> Option<AgentJob> {
        let wanted = wanted.as_deref()?;
        let same =
            |v: &crate::sql::Value| v.as_str().is_some_and(|x| x.eq_ignore_ascii_case(wanted));
        let name = jobs
            .rows
            .iter()
            .find(|r| same(jobs.get(r, "job_id")))
            .and_then(|r| jobs.get(r, "name").as_str().map(str::to_owned))?;
        let every_minutes = schedules
            .rows
            .iter()
            .find(|r| same(schedules.get(r, "job_id")))
            .filter(|r| schedules.get(r, "freq_subday_type").as_i64() == Some(4))
            .and_then(|r| schedules.get(r, "freq_subday_interval").as_i64());
        Some(AgentJob {
            name,
            every_minutes,
        })
    };
    ls.copy_job = job(&copy_id);
    ls.restore_job = job(&restore_id);
    Ok(Some(ls))
}

/// What msdb on a log-shipping primary says about its newest log backup.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct LogShippingPrimary {
    pub last_backup_file: Option<String>,
    /// Server local time.
    pub last_backup_date: Option<String>,
}

pub(crate) async fn log_shipping_primary(
    s: &mut Session<'_>,
    role: Role,
    db: &str,
) -> Result<Option<LogShippingPrimary>, StepError> {
    let set = s
        .query(
            role,
            "SELECT last_backup_file, last_backup_date FROM msdb.dbo.log_shipping_primary_databases WHERE primary_database = @P1",
            &[Param::Str(db)],
        )
        .await?;
    Ok(set.rows.first().map(|row| LogShippingPrimary {
        last_backup_file: set.get(row, "last_backup_file").as_str().map(str::to_owned),
        last_backup_date: set.get(row, "last_backup_date").as_str().map(str::to_owned),
    }))
}

/// The instance's name and its clock: times in the ledger come from the servers, never pcfail's host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServerClock {
    pub server_name: String,
    /// `GETUTCDATE()` as the server renders it (`YYYY-MM-DD hh:mm:ss.fff`).
    pub utc_now: String,
    /// `GETDATE()`: the server's local time, the clock msdb's dates and backup headers use.
    pub local_now: String,
}

pub(crate) async fn server_clock(
    s: &mut Session<'_>,
    role: Role,
) -> Result<ServerClock, StepError> {
    let set = s
        .query(
            role,
            "SELECT @@SERVERNAME AS server_name, GETUTCDATE() AS utc_now, GETDATE() AS local_now",
            &[],
        )
        .await?;
    let row = set.rows.first();
    let text = |c: &str| {
        row.and_then(|r| set.get(r, c).as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    Ok(ServerClock {
        server_name: text("server_name"),
        utc_now: text("utc_now"),
        local_now: text("local_now"),
    })
}

/// A database's state and mirroring role in one query, or None when it does not exist.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct DbView {
    pub state: String,
    pub standby: bool,
    /// None when the database is not in a mirroring session.
    pub mirroring: Option<MirroringView>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct MirroringView {
    pub role: String,
    pub state: String,
    pub partner: String,
}

impl DbView {
    pub(crate) fn db_state(&self) -> DbState {
        DbState {
            state_desc: self.state.clone(),
            is_in_standby: self.standby,
        }
    }
}

pub(crate) async fn database_view(
    s: &mut Session<'_>,
    role: Role,
    db: &str,
) -> Result<Option<DbView>, StepError> {
    let set = s
        .query(
            role,
            "SELECT d.state_desc, d.is_in_standby, m.mirroring_role_desc, m.mirroring_state_desc, m.mirroring_partner_name FROM sys.databases AS d LEFT JOIN sys.database_mirroring AS m ON m.database_id = d.database_id WHERE d.name = @P1",
            &[Param::Str(db)],
        )
        .await?;
    Ok(set.rows.first().map(|row| {
        let text = |c: &str| set.get(row, c).as_str().map(str::to_owned);
        DbView {
            state: text("state_desc").unwrap_or_default(),
            standby: set.get(row, "is_in_standby").as_i64() == Some(1),
            mirroring: text("mirroring_role_desc").map(|role| MirroringView {
                role,
                state: text("mirroring_state_desc").unwrap_or_default(),
                partner: text("mirroring_partner_name").unwrap_or_default(),
            }),
        }
    }))
}

/// A session other than ours whose current database is `db`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DbSession {
    pub id: i64,
    pub login: String,
    pub host: String,
    pub program: String,
}

pub(crate) async fn sessions_using(
    s: &mut Session<'_>,
    role: Role,
    db: &str,
) -> Result<Vec<DbSession>, StepError> {
    let set = s
        .query(
            role,
            "SELECT session_id, login_name, host_name, program_name FROM sys.dm_exec_sessions WHERE database_id = DB_ID(@P1) AND is_user_process = 1 AND session_id <> @@SPID",
            &[Param::Str(db)],
        )
        .await?;
    Ok(set
        .rows
        .iter()
        .filter_map(|row| {
            let text = |c: &str| set.get(row, c).as_str().unwrap_or("").to_owned();
            Some(DbSession {
                id: set.get(row, "session_id").as_i64()?,
                login: text("login_name"),
                host: text("host_name"),
                program: text("program_name"),
            })
        })
        .collect())
}

/// The log backup sets of `db` in the file at `path` (as the server opens it).
pub(crate) async fn log_backups_in(
    s: &mut Session<'_>,
    role: Role,
    db: &str,
    path: &str,
) -> Result<Vec<LogBackup>, StepError> {
    let text = format!("RESTORE HEADERONLY FROM DISK = {}", quote::sql_string(path));
    let set = s.query(role, &text, &[]).await?;
    Ok(log_backups_of(&set, db, path))
}

/// [`log_backups_in`] for several files in one batch (one RESTORE HEADERONLY statement each, one
/// result set each, in order): one round trip instead of one per file. None when the batch failed
/// or did not answer one set per file; the caller then reads the files one at a time, so an error
/// names its file.
pub(crate) async fn log_backups_in_each(
    s: &mut Session<'_>,
    role: Role,
    db: &str,
    paths: &[&str],
) -> Result<Option<Vec<Vec<LogBackup>>>, StepError> {
    let text = paths
        .iter()
        .map(|p| format!("RESTORE HEADERONLY FROM DISK = {};", quote::sql_string(p)))
        .collect::<Vec<_>>()
        .join("\n");
    match s.query_sets(role, &text, &[]).await {
        Ok(sets) if sets.len() == paths.len() => Ok(Some(
            sets.iter()
                .zip(paths)
                .map(|(set, path)| log_backups_of(set, db, path))
                .collect(),
        )),
        Ok(_) => Ok(None),
        Err(StepError::Sql(e)) if !e.is_transport() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The log backup sets of `db` in one RESTORE HEADERONLY answer for the file at `path`.
fn log_backups_of(set: &ResultSet, db: &str, path: &str) -> Vec<LogBackup> {
    let mut out = Vec::new();
    for row in &set.rows {
        let is_log = set.get(row, "BackupType").as_i64() == Some(2);
        let same_db = set
            .get(row, "DatabaseName")
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(db));
        let (Some(first), Some(last)) = (
            set.get(row, "FirstLSN").as_i128(),
            set.get(row, "LastLSN").as_i128(),
        ) else {
            continue;
        };
        if is_log && same_db {
            out.push(LogBackup {
                path: path.to_owned(),
                position: set
                    .get(row, "Position")
                    .as_i64()
                    .and_then(|p| u32::try_from(p).ok())
                    .unwrap_or(1),
                first_lsn: first,
                last_lsn: last,
                finished: match set.get(row, "BackupFinishDate") {
                    Value::DateTime(d) => d.clone(),
                    _ => String::new(),
                },
                family: set.get(row, "FamilyGUID").as_str().map(str::to_owned),
                first_fork: set
                    .get(row, "FirstRecoveryForkID")
                    .as_str()
                    .map(str::to_owned),
                checksums: matches!(set.get(row, "HasBackupChecksums"), Value::Bool(true))
                    || set.get(row, "HasBackupChecksums").as_i64() == Some(1),
            });
        }
    }
    out
}

/// A BACKUP or RESTORE running on the server right now (`sys.dm_exec_requests`), by another session.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RunningRequest {
    pub session_id: i64,
    pub command: String,
    pub percent_complete: f64,
}

/// The BACKUP and RESTORE requests other sessions are running on `db`: an earlier attempt's statement
/// the client gave up on (a timeout, a crash) keeps running on the server, as does a log-shipping
/// restore job; examining or acting on the database before they end would race them.
pub(crate) async fn running_backups(
    s: &mut Session<'_>,
    role: Role,
    db: &str,
) -> Result<Vec<RunningRequest>, StepError> {
    let set = s
        .query(
            role,
            "SELECT r.session_id, r.command, r.percent_complete FROM sys.dm_exec_requests AS r WHERE r.database_id = DB_ID(@P1) AND r.session_id <> @@SPID AND (r.command LIKE N'RESTORE%' OR r.command LIKE N'BACKUP%')",
            &[Param::Str(db)],
        )
        .await?;
    Ok(set
        .rows
        .iter()
        .map(|row| RunningRequest {
            session_id: set.get(row, "session_id").as_i64().unwrap_or(0),
            command: set.get(row, "command").as_str().unwrap_or("").to_owned(),
            percent_complete: match set.get(row, "percent_complete") {
                Value::Float(f) => *f,
                other => other.as_i64().map_or(0.0, |i| i as f64),
            },
        })
        .collect())
}

/// The newest restore of `db` on `role` from msdb's history: its type (`D`, `L`, ...), whether it
/// recovered the database, and the restored backup set's LastLSN.
pub(crate) async fn last_restore(
    s: &mut Session<'_>,
    role: Role,
    db: &str,
) -> Result<Option<(String, bool, i128)>, StepError> {
    let set = s
        .query(
            role,
            "SELECT TOP 1 rh.restore_type, rh.recovery, bs.last_lsn FROM msdb.dbo.restorehistory AS rh JOIN msdb.dbo.backupset AS bs ON bs.backup_set_id = rh.backup_set_id WHERE rh.destination_database_name = @P1 ORDER BY rh.restore_history_id DESC",
            &[Param::Str(db)],
        )
        .await?;
    Ok(set.rows.first().and_then(|row| {
        Some((
            set.get(row, "restore_type").as_str()?.to_owned(),
            set.get(row, "recovery").as_i64() == Some(1),
            set.get(row, "last_lsn").as_i128()?,
        ))
    }))
}

/// The text in `column` of the first row `sql` answers on `role`, with `db` as its one parameter
/// (`@P1`); None when there is no row or the value is NULL.
async fn db_text(
    s: &mut Session<'_>,
    role: Role,
    sql: &str,
    db: &str,
    column: &str,
) -> Result<Option<String>, StepError> {
    let set = s.query(role, sql, &[Param::Str(db)]).await?;
    Ok(set
        .rows
        .first()
        .and_then(|row| set.get(row, column).as_str().map(str::to_owned)))
}
