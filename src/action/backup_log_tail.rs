//! Planned failover: the tail-log backup on the primary, `BACKUP LOG ... WITH NORECOVERY` (reference
//! J.1, G). It captures every transaction the primary committed and leaves its database RESTORING, so
//! nothing can write to it any more (it is fenced): applied on the backup, no data is lost.
//!
//! The file goes to the log-shipping share, where the copy step finds it with the other log backups.
//! Its end LSN is captured, so recovery on the backup refuses to run before it has been applied.

use std::time::Duration;

use super::{Command, MINUTE, Target, ident};
use crate::exec::{Session, StepError, probe};
use crate::quote::sql_string;
use crate::runbook::{Role, StepReader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupLogTail {
    pub instance: Role,
    pub database: String,
    /// The backup file as the primary opens it; normally in the log-shipping share.
    pub file: String,
}

/// The `Event::Captured` key of a database's tail-log backup: `{ "file": ..., "last_lsn": "..." }`.
pub(crate) fn tail_key(db: &str) -> String {
    format!("tail_log:{db}")
}

impl BackupLogTail {
    pub(crate) fn parse(r: &mut StepReader<'_, '_, '_, '_>) -> Option<Self> {
        let instance = r.instance_or("instance", Role::Primary);
        let database = r.database("database");
        let file = r.text("file");
        Some(Self {
            instance: instance?,
            database: database?,
            file: file?,
        })
    }

    pub fn name(&self) -> &'static str {
        "backup_log_tail"
    }

    pub fn describe(&self) -> String {
        format!(
            "Back up the tail of the log of `{}` on the {} instance WITH NORECOVERY (fences it) to `{}`",
            self.database, self.instance, self.file
        )
    }

    pub fn render(&self) -> Vec<Command> {
        // INIT, FORMAT: the file holds exactly this one backup set, even if an earlier planned
        // failover left a file of the same name in the share.
        vec![Command::sql(
            self.instance,
            format!(
                "BACKUP LOG {} TO DISK = {} WITH NORECOVERY, INIT, FORMAT, CHECKSUM",
                ident(&self.database),
                sql_string(&self.file)
            ),
        )]
    }

    pub fn target(&self) -> Target {
        Target::Instance(self.instance)
    }

    /// A recovery-only restore on the primary (`RESTORE DATABASE ... WITH RECOVERY`) undoes the fence.
    pub fn irreversible(&self) -> bool {
        false
    }

    pub fn default_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(30 * MINUTE))
    }
}

/// Running it: done when the primary's copy is RESTORING and the file holds a log backup of it that
/// ends at the primary's redo point (nothing was written after it, since nothing can be).
impl BackupLogTail {
    /// The newest log backup set of the database in the file, if the file can be read.
    async fn tail_in_file(&self, s: &mut Session<'_>) -> Result<Option<i128>, StepError> {
        let backups =
            match probe::log_backups_in(s, self.instance, &self.database, &self.file).await {
                Ok(b) => b,
                // 3201: no such file yet.
                Err(e) if e.sql_number() == Some(3201) => return Ok(None),
                Err(e) => return Err(e),
            };
        Ok(backups.iter().map(|b| b.last_lsn).max())
    }

    pub(crate) async fn check_done(&self, s: &mut Session<'_>) -> Result<bool, StepError> {
        let fenced = probe::database(s, self.instance, &self.database)
            .await?
            .is_some_and(|db| db.is_restoring());
        if !fenced {
            return Ok(false);
        }
        let Some(last) = self.tail_in_file(s).await? else {
            return Ok(false);
        };
        // UNVERIFIED that SQL Server reports the fenced database's redo point; without one, a log
        // backup of a database that can no longer change is its tail.
        let redo = probe::redo_start_lsn(s, self.instance, &self.database).await?;
        if redo.is_none_or(|r| r == last) {
            self.capture(s, last)?;
            return Ok(true);
        }
        Ok(false)
    }

    pub(crate) async fn run(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        s.run_all(&self.render()).await
    }

    pub(crate) async fn verify(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        match probe::database(s, self.instance, &self.database).await? {
            Some(db) if db.is_restoring() => {}
            Some(db) => {
                return Err(StepError::Failed(format!(
                    "`{}` on `{}` is {} after its tail-log backup; it should be RESTORING (fenced)",
                    self.database, self.instance, db.state_desc
                )));
            }
            None => {
                return Err(StepError::Failed(format!(
                    "`{}` no longer exists on `{}`",
                    self.database, self.instance
                )));
            }
        }
        match self.tail_in_file(s).await? {
            Some(last) => self.capture(s, last).map_err(StepError::from),
            None => Err(StepError::Failed(format!(
                "`{}` holds no log backup of `{}`",
                self.file, self.database
            ))),
        }
    }

    fn capture(
        &self,
        s: &mut Session<'_>,
        last_lsn: i128,
    ) -> Result<(), crate::journal::JournalError> {
        s.capture(
            &tail_key(&self.database),
            serde_json::json!({ "file": self.file, "last_lsn": last_lsn.to_string() }),
        )
    }
}
