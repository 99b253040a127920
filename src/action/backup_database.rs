//! Fail-back: a full backup of the database to a file (normally on the log-shipping share), which the
//! next step restores over the primary.
//!
//! `INIT, FORMAT` so the file holds exactly this one backup set and the restore's `FILE = 1` is it;
//! `CHECKSUM` so a damaged copy is caught at restore time.

use std::time::Duration;

use super::{Command, MINUTE, Target, ident};
use crate::exec::{Session, StepError};
use crate::quote::sql_string;
use crate::runbook::{Role, StepReader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupDatabase {
    pub instance: Role,
    pub database: String,
    pub file: String,
}

impl BackupDatabase {
    pub(crate) fn parse(r: &mut StepReader<'_, '_, '_, '_>) -> Option<Self> {
        let instance = r.instance_or("instance", Role::Backup);
        let database = r.database("database");
        let file = r.text("file");
        Some(Self {
            instance: instance?,
            database: database?,
            file: file?,
        })
    }

    pub fn name(&self) -> &'static str {
        "backup_database"
    }

    pub fn describe(&self) -> String {
        format!(
            "Take a full backup of `{}` on the {} instance to `{}`",
            self.database, self.instance, self.file
        )
    }

    pub fn render(&self) -> Vec<Command> {
        vec![Command::sql(
            self.instance,
            format!(
                "BACKUP DATABASE {} TO DISK = {} WITH INIT, FORMAT, CHECKSUM",
                ident(&self.database),
                sql_string(&self.file)
            ),
        )]
    }

    pub fn target(&self) -> Target {
        Target::Instance(self.instance)
    }

    /// Only the backup file is overwritten; the database is untouched.
    pub fn irreversible(&self) -> bool {
        false
    }

    pub fn default_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(60 * MINUTE))
    }
}

/// Running it: a backup is never "already done" (the database may have changed since); WITH INIT,
/// FORMAT makes running it again overwrite the same file, so a resumed run simply takes it again.
impl BackupDatabase {
    pub(crate) async fn check_done(&self, _s: &mut Session<'_>) -> Result<bool, StepError> {
        Ok(false)
    }

    pub(crate) async fn run(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        s.run_all(&self.render()).await
    }

    pub(crate) async fn verify(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        let text = format!("RESTORE HEADERONLY FROM DISK = {}", sql_string(&self.file));
        let set = s.query(self.instance, &text, &[]).await?;
        let full = set.rows.iter().any(|row| {
            set.get(row, "BackupType").as_i64() == Some(1)
                && set
                    .get(row, "DatabaseName")
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(&self.database))
        });
        if full {
            Ok(())
        } else {
            Err(StepError::Failed(format!(
                "`{}` holds no full backup of `{}`",
                self.file, self.database
            )))
        }
    }
}
