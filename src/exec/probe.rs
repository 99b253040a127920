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
use crate::sql::{Param, Value};

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

pub(crate) async fn has_mirroring_endpoint(
    s: &mut Session<'_>,
    role: Role,
) -> Result<bool, StepError> {
    let set = s
        .query(
            role,
            "SELECT name, state_desc FROM sys.database_mirroring_endpoints",
            &[],
        )
        .await?;
    Ok(!set.rows.is_empty())
}

/// What msdb records about a log-shipping secondary database (reference A.1).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct LogShippingSecondary {
    pub primary_server: String,
    pub primary_database: String,
    pub backup_source_directory: String,
    pub backup_destination_directory: String,
    pub last_copied_file: Option<String>,
    pub last_restored_file: Option<String>,
}

pub(crate) async fn log_shipping_secondary(
    s: &mut Session<'_>,
    role: Role,
    db: &str,
) -> Result<Option<LogShippingSecondary>, StepError> {
    let set = s
        .query(
            role,
            "SELECT s.primary_server, s.primary_database, s.backup_source_directory, s.backup_destination_directory, s.last_copied_file, d.last_restored_file FROM msdb.dbo.log_shipping_secondary AS s JOIN msdb.dbo.log_shipping_secondary_databases AS d ON d.secondary_id = s.secondary_id WHERE d.secondary_database = @P1",
            &[Param::Str(db)],
        )
        .await?;
    Ok(set.rows.first().map(|row| {
        let text = |c: &str| set.get(row, c).as_str().map(str::to_owned);
        LogShippingSecondary {
            primary_server: text("primary_server").unwrap_or_default(),
            primary_database: text("primary_database").unwrap_or_default(),
            backup_source_directory: text("backup_source_directory").unwrap_or_default(),
            backup_destination_directory: text("backup_destination_directory").unwrap_or_default(),
            last_copied_file: text("last_copied_file"),
            last_restored_file: text("last_restored_file"),
        }
    }))
}

pub(crate) async fn is_log_shipping_primary(
    s: &mut Session<'_>,
    role: Role,
    db: &str,
) -> Result<bool, StepError> {
    let set = s
        .query(
            role,
            "SELECT primary_id FROM msdb.dbo.log_shipping_primary_databases WHERE primary_database = @P1",
            &[Param::Str(db)],
        )
        .await?;
    Ok(!set.rows.is_empty())
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
            });
        }
    }
    Ok(out)
}
