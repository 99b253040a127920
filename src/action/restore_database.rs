//! Fail-back: restore the backup over the primary's database, "overwrite the existing database"
//! (REPLACE) and "leave the database ready to use" (RECOVERY), as Microsoft's runbook says (reference H.6).
//! The backup was taken on another instance: files it places outside this instance's default
//! directories are MOVEd into them (`exec::relocate`).

use std::time::Duration;

use super::{Command, MINUTE, Target, ident};
use crate::exec::{Session, StepError, probe};
use crate::quote::sql_string;
use crate::runbook::{Role, StepReader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreDatabase {
    pub instance: Role,
    pub database: String,
    pub file: String,
}

impl RestoreDatabase {
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
        "restore_database"
    }

    pub fn describe(&self) -> String {
        format!(
            "Restore `{}` on the {} instance from `{}`, replacing it",
            self.database, self.instance, self.file
        )
    }

    pub fn render(&self) -> Vec<Command> {
        vec![
            // A restore over a database in use fails with 3101 (reference J.3): the usual way is to
            // take it to single-user first. That statement fails on a RESTORING (5011) or STANDBY
            // (5063) database, which nobody can be using anyway.
            Command::Sql {
                instance: self.instance,
                database: "master".to_owned(),
                text: format!(
                    "ALTER DATABASE {} SET SINGLE_USER WITH ROLLBACK IMMEDIATE",
                    ident(&self.database)
                ),
                when: Some(format!(
                    "only if `{}` on {} is ONLINE (not RESTORING or a STANDBY, where nobody can use it)",
                    self.database, self.instance
                )),
            },
            Command::sql(
                self.instance,
                format!(
                    "RESTORE DATABASE {} FROM DISK = {} WITH FILE = 1, REPLACE, RECOVERY",
                    ident(&self.database),
                    sql_string(&self.file)
                ),
            ),
            Command::Computed {
                what: format!(
                    "`, MOVE N'<logical>' TO N'<path>'` added to the RESTORE for each file the backup places outside {}'s default data or log directory",
                    self.instance
                ),
                from: "RESTORE FILELISTONLY of the file, SERVERPROPERTY('InstanceDefaultDataPath') and ('InstanceDefaultLogPath')".to_owned(),
            },
        ]
    }

    pub fn target(&self) -> Target {
        Target::Instance(self.instance)
    }

    /// REPLACE discards whatever the primary's database held.
    pub fn irreversible(&self) -> bool {
        true
    }

    pub fn default_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(60 * MINUTE))
    }
}

/// Running it: done when msdb's restore history says the newest restore of the database is a full
/// restore WITH RECOVERY of the very backup set the file holds, and the database is ONLINE: a restore
/// the client gave up on may have completed on the server, and a second one is an hour lost.
impl RestoreDatabase {
    pub(crate) async fn check_done(&self, s: &mut Session<'_>) -> Result<bool, StepError> {
        let Some((kind, recovered, last_lsn)) =
            probe::last_restore(s, self.instance, &self.database).await?
        else {
            return Ok(false);
        };
        if kind != "D" || !recovered {
            return Ok(false);
        }
        let text = format!("RESTORE HEADERONLY FROM DISK = {}", sql_string(&self.file));
        let set = match s.query(self.instance, &text, &[]).await {
            Ok(set) => set,
            // The file is gone or unreadable: nothing to compare with, so not known to be done.
            Err(_) => return Ok(false),
        };
        let same_set = set.rows.iter().any(|row| {
            set.get(row, "BackupType").as_i64() == Some(1)
                && set.get(row, "Position").as_i64() == Some(1)
                && set.get(row, "LastLSN").as_i128() == Some(last_lsn)
        });
        Ok(same_set
            && probe::database(s, self.instance, &self.database)
                .await?
                .is_some_and(|db| db.is_recovered()))
    }

    pub(crate) async fn run(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        const ATTEMPTS: usize = 3;
        let commands = self.render();
        let moves =
            crate::exec::relocate::moves_for_backup(s, self.instance, &self.file, 1).await?;
        let restore = match &commands[1] {
            Command::Sql {
                instance,
                database,
                text,
                when,
            } => Command::Sql {
                instance: *instance,
                database: database.clone(),
                text: format!("{text}{moves}"),
                when: when.clone(),
            },
            other => other.clone(),
        };
        let (single_user, restore) = (&commands[0], &restore);
        for attempt in 1..=ATTEMPTS {
            let online = probe::database(s, self.instance, &self.database)
                .await?
                .is_some_and(|db| db.is_recovered());
            if online {
                s.run_unconditionally(single_user).await?;
            }
            match s.run_command(restore).await {
                Ok(()) => return Ok(()),
                // A session slipped in between: end the sessions and try again, a few times.
                Err(e) if e.sql_number() == Some(3101) && attempt < ATTEMPTS => {
                    s.progress("the database is in use; ending its sessions and retrying");
                    super::end_sessions::end_sessions(s, self.instance, &self.database).await?;
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the last attempt returns")
    }

    pub(crate) async fn verify(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        probe::require_online(s, self.instance, &self.database, "after the restore").await
    }
}
