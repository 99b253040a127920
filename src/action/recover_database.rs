//! Failover step 4, second half: bring the restoring database online (`RESTORE DATABASE ... WITH RECOVERY`).
//!
//! A recovery-only restore reads no backup. Afterwards no further log backup can be applied, so this
//! ends log shipping for good: the point of no return of a failover in Microsoft's procedure.

use std::time::Duration;

use super::{Command, MINUTE, Target, ident};
use crate::exec::{Session, StepError, probe};
use crate::runbook::{Role, StepReader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoverDatabase {
    pub instance: Role,
    pub database: String,
}

impl RecoverDatabase {
    pub(crate) fn parse(r: &mut StepReader<'_, '_, '_, '_>) -> Option<Self> {
        let instance = r.instance_or("instance", Role::Backup);
        let database = r.database("database");
        Some(Self {
            instance: instance?,
            database: database?,
        })
    }

    pub fn name(&self) -> &'static str {
        "recover_database"
    }

    pub fn describe(&self) -> String {
        format!(
            "Recover `{}` on the {} instance and bring it online",
            self.database, self.instance
        )
    }

    pub fn render(&self) -> Vec<Command> {
        vec![Command::sql(
            self.instance,
            format!("RESTORE DATABASE {} WITH RECOVERY", ident(&self.database)),
        )]
    }

    pub fn target(&self) -> Target {
        Target::Instance(self.instance)
    }

    pub fn irreversible(&self) -> bool {
        true
    }

    pub fn default_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(30 * MINUTE))
    }
}

/// Running it: 3101 (exclusive access could not be obtained) means a session slipped in after the
/// sessions were ended; end them again and retry, a bounded number of times. 3153 (already fully
/// recovered) means it is done.
impl RecoverDatabase {
    pub(crate) async fn check_done(&self, s: &mut Session<'_>) -> Result<bool, StepError> {
        Ok(probe::database(s, self.instance, &self.database)
            .await?
            .is_some_and(|db| db.is_recovered()))
    }

    /// A planned failover took a tail-log backup: recovering before it is applied would throw away
    /// the primary's last transactions, which is exactly what the planned failover promised to keep.
    async fn require_tail_applied(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        let Some(tail) = s.captured(&super::tail_key(&self.database)).cloned() else {
            return Ok(());
        };
        let last = tail
            .get("last_lsn")
            .and_then(|v| v.as_str())
            .and_then(|v| v.parse::<i128>().ok());
        let redo = probe::redo_start_lsn(s, self.instance, &self.database).await?;
        match (last, redo) {
            (Some(last), Some(redo)) if redo >= last => Ok(()),
            (Some(last), redo) => Err(StepError::Failed(format!(
                "the tail-log backup `{}` (ending at LSN {last}) has not been applied to `{}` on `{}` (its redo point is {}); recovering now would lose the primary's last transactions",
                tail.get("file").and_then(|v| v.as_str()).unwrap_or("?"),
                self.database,
                self.instance,
                redo.map_or("unknown".to_owned(), |r| r.to_string())
            ))),
            (None, _) => Ok(()),
        }
    }

    pub(crate) async fn run(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        self.require_tail_applied(s).await?;
        const ATTEMPTS: usize = 3;
        let command = &self.render()[0];
        for attempt in 1..=ATTEMPTS {
            match s.run_command(command).await {
                Ok(()) => return Ok(()),
                Err(e) if e.sql_number() == Some(3153) => return Ok(()),
                Err(e) if e.sql_number() == Some(3101) && attempt < ATTEMPTS => {
                    s.progress("the database is in use again; ending its sessions and retrying");
                    super::end_sessions::end_sessions(s, self.instance, &self.database).await?;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the last attempt returns")
    }

    pub(crate) async fn verify(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        probe::require_online(
            s,
            self.instance,
            &self.database,
            "after RESTORE WITH RECOVERY",
        )
        .await
    }
}
