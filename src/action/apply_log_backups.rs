//! Failover step 3: restore, in sequence, every copied log backup the database has not applied yet.
//!
//! The set of files depends on live state: the headers of the files in the copy folder and the
//! database's redo point. A file is applied when `FirstLSN <= redo_start_lsn < LastLSN` (reference
//! B.5); a file whose FirstLSN is past the redo point is a gap, and applying stops there.

use std::time::Duration;

use super::copy_log_backups::copy_folder_from;
use super::{Command, MINUTE, Target, ident};
use crate::exec::chain::{self, ChainPlan, Gap};
use crate::exec::{Session, StepError, copy, probe};
use crate::quote;
use crate::runbook::{Role, StepReader};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyLogBackups {
    pub instance: Role,
    pub database: String,
    pub copy_folder: Option<String>,
}

impl ApplyLogBackups {
    pub(crate) fn parse(r: &mut StepReader<'_, '_, '_, '_>) -> Option<Self> {
        let instance = r.instance_or("instance", Role::Backup);
        let database = r.database("database");
        let copy_folder = r.context().overrides.copy_folder.clone();
        Some(Self {
            instance: instance?,
            database: database?,
            copy_folder,
        })
    }

    pub fn name(&self) -> &'static str {
        "apply_log_backups"
    }

    pub fn describe(&self) -> String {
        format!(
            "Apply the unapplied log backups of `{}` in sequence",
            self.database
        )
    }

    pub fn render(&self) -> Vec<Command> {
        vec![Command::Computed {
            what: format!(
                "RESTORE LOG {} FROM DISK = N'<file>' WITH NORECOVERY for each copied log backup whose LastLSN is past the redo point, oldest first, stopping at a gap in the LSN chain",
                ident(&self.database)
            ),
            from: format!(
                "RESTORE HEADERONLY of each file in {} and sys.master_files.redo_start_lsn of `{}` on {}",
                copy_folder_from(self.instance, self.copy_folder.as_deref()),
                self.database,
                self.instance,
            ),
        }]
    }

    pub fn target(&self) -> Target {
        Target::Instance(self.instance)
    }

    /// Applying with NORECOVERY keeps the database restoring: nothing is lost if pcfail stops here.
    pub fn irreversible(&self) -> bool {
        false
    }

    pub fn default_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(60 * MINUTE))
    }
}

/// Running it: the chain is built from the headers of the copied files and the redo point (see
/// `exec::chain`), all over the one connection to the instance. Done when no copied log backup ends
/// past the redo point.
impl ApplyLogBackups {
    async fn chain(&self, s: &mut Session<'_>) -> Result<Result<ChainPlan, Gap>, StepError> {
        let folder = self
            .copy_folder
            .clone()
            .or_else(|| {
                s.captured_log_shipping(&self.database)
                    .map(|c| c.backup_destination_directory.clone())
            })
            .ok_or_else(|| {
                StepError::Failed(format!(
                    "the copy folder of `{}` is unknown: msdb's log-shipping settings were not captured before they were removed; set `copy_folder` under [log_shipping] in the runbook",
                    self.database
                ))
            })?;
        let redo = match probe::redo_start_lsn(s, self.instance, &self.database).await? {
            Some(lsn) => lsn,
            None => {
                let state = probe::database(s, self.instance, &self.database).await?;
                return Err(StepError::Failed(match state {
                    Some(db) => format!(
                        "`{}` on `{}` is {}, not restoring: no log backup can be applied to it",
                        self.database, self.instance, db.state_desc
                    ),
                    None => format!("`{}` does not exist on `{}`", self.database, self.instance),
                }));
            }
        };
        let (names, _) = copy::list_log_backups(Path::new(&folder))
            .map_err(|e| StepError::Failed(e.to_string()))?;
        let mut backups = Vec::new();
        for name in names {
            let path = Path::new(&folder)
                .join(&name)
                .to_string_lossy()
                .into_owned();
            backups.extend(probe::log_backups_in(s, self.instance, &self.database, &path).await?);
        }
        Ok(chain::plan_chain(backups, redo))
    }

    pub(crate) async fn check_done(&self, s: &mut Session<'_>) -> Result<bool, StepError> {
        Ok(matches!(self.chain(s).await?, Ok(plan) if plan.to_apply.is_empty()))
    }

    pub(crate) async fn run(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        let plan = self
            .chain(s)
            .await?
            .map_err(|gap| StepError::Failed(gap.to_string()))?;
        let total = plan.to_apply.len();
        let mut bar = s.bar("applying");
        for (i, backup) in plan.to_apply.iter().enumerate() {
            let text = format!(
                "RESTORE LOG {} FROM DISK = {} WITH FILE = {}, NORECOVERY",
                ident(&self.database),
                quote::sql_string(&backup.path),
                backup.position
            );
            bar.update(i + 1, total, &backup.path);
            match s.execute_in_step(self.instance, &text).await {
                // 4326: already applied. Only possible if something else restored it since the
                // chain was read; the redo point moved past it, which is what we wanted.
                Err(e) if e.sql_number() == Some(4326) => {}
                other => {
                    other?;
                }
            }
        }
        Ok(())
    }

    pub(crate) async fn verify(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        match self.chain(s).await? {
            Ok(plan) if plan.to_apply.is_empty() => Ok(()),
            Ok(plan) => Err(StepError::Failed(format!(
                "{} log backup(s) are still not applied to `{}`",
                plan.to_apply.len(),
                self.database
            ))),
            Err(gap) => Err(StepError::Failed(gap.to_string())),
        }
    }
}
