//! Failover step 3: restore, in sequence, every copied log backup the database has not applied yet.
//!
//! The set of files depends on live state: the headers of the files in the copy folder (read once
//! per run, and only for the files that can still matter: `exec::headers`) and the database's redo
//! point. A file is applied when `FirstLSN <= redo_start_lsn < LastLSN` (reference
//! B.5); a file whose FirstLSN is past the redo point is a gap, and applying stops there.

use std::time::Duration;

use super::copy_log_backups::copy_folder_from;
use super::{Command, MINUTE, Target, ident};
use crate::exec::chain::{ChainPlan, Gap};
use crate::exec::headers::Pending;
use crate::exec::{Session, StepError, headers, probe, prompt};
use crate::quote;
use crate::runbook::{Role, StepReader};

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
/// `exec::chain`), all over the one connection to the instance. Done when no copied log backup that
/// continues the chain is left, and any gap after it has been accepted as data loss. A database that
/// is already recovered takes no more log backups: nothing is left to do for this step.
impl ApplyLogBackups {
    /// The chain, or None when the database no longer accepts log backups because it is recovered.
    /// The LSN the next log backup must cover, or None when the database is recovered. A STANDBY
    /// secondary is ONLINE with `is_in_standby = 1` (reference C) and need not show a
    /// `redo_start_lsn` (documented only for RESTORING files): there the last log restored, from
    /// msdb's restore history, ends where the next one must begin.
    pub(crate) async fn redo_point(&self, s: &mut Session<'_>) -> Result<Option<i128>, StepError> {
        if let Some(lsn) = probe::redo_start_lsn(s, self.instance, &self.database).await? {
            return Ok(Some(lsn));
        }
        let state = probe::database(s, self.instance, &self.database).await?;
        match state {
            Some(db) if db.is_recovered() => Ok(None),
            Some(db) if db.is_in_standby => {
                match probe::last_restore(s, self.instance, &self.database).await? {
                    Some((_, false, last)) => Ok(Some(last)),
                    _ => Err(StepError::Failed(format!(
                        "`{}` on `{}` is a STANDBY secondary, but msdb records no restore of it that left it able to take log backups, so where its log chain ends is unknown",
                        self.database, self.instance
                    ))),
                }
            }
            Some(db) => Err(StepError::Failed(format!(
                "`{}` on `{}` is {}, not restoring: no log backup can be applied to it",
                self.database, self.instance, db.state_desc
            ))),
            None => Err(StepError::Failed(format!(
                "`{}` does not exist on `{}`",
                self.database, self.instance
            ))),
        }
    }

    /// The chain, and the copy folder as SQL Server names it (the files' paths are made from it when
    /// each is restored, not kept for all of them).
    async fn chain(
        &self,
        s: &mut Session<'_>,
    ) -> Result<Option<(ChainPlan<Pending>, String)>, StepError> {
        let Some(redo) = self.redo_point(s).await? else {
            return Ok(None);
        };
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
        // pcfail lists the folder where it reaches it; SQL Server reads each file under its own
        // name for the folder (`D:\LogShippingCopy\...`), which is what HEADERONLY and RESTORE get.
        let local = s.runbook.log_shipping.copy_folder_for_pcfail(&folder);
        let plan =
            headers::chain_from_folder(s, self.instance, &self.database, &local, &folder, redo)
                .await?;
        Ok(Some((plan, folder)))
    }

    /// Whether the operator accepted losing what lies past `gap` (now, or earlier in this run).
    async fn gap_accepted(&self, s: &mut Session<'_>, gap: &Gap) -> Result<bool, StepError> {
        let key = format!("data_loss_accepted:{}", self.database);
        if s.captured(&key)
            .and_then(|v| v.get("from_lsn"))
            .and_then(|v| v.as_str())
            == Some(gap.from.to_string().as_str())
        {
            return Ok(true);
        }
        let how = if s.accepts_data_loss() {
            "--accept-data-loss"
        } else {
            // Never `--yes`: this loss was not in the ledger the operator confirmed.
            say!("\n{gap}.");
            match prompt::typed(
                "Type `accept data loss` to recover without the rest: ",
                "accept data loss",
                "run again with `--accept-data-loss` to accept it",
            )
            .await
            {
                Ok(how) => how,
                Err(_) => return Ok(false),
            }
        };
        s.capture(
            &key,
            serde_json::json!({
                "from_lsn": gap.from.to_string(),
                "next_file": gap.next_file,
                "how": how,
            }),
        )?;
        s.progress(&format!(
            "the log chain ends at LSN {}: everything after it is lost (accepted: {how})",
            gap.from
        ));
        Ok(true)
    }

    pub(crate) async fn check_done(&self, s: &mut Session<'_>) -> Result<bool, StepError> {
        let Some((plan, _)) = self.chain(s).await? else {
            return Ok(true);
        };
        Ok(plan.to_apply.is_empty()
            && match &plan.gap {
                None => true,
                Some(gap) => self.gap_accepted(s, gap).await?,
            })
    }

    pub(crate) async fn run(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        let Some((plan, folder)) = self.chain(s).await? else {
            return Ok(());
        };
        let total = plan.to_apply.len();
        let mut bar = s.bar("applying");
        // Each file's path and statement are made as it is restored and dropped after it.
        for (i, backup) in plan.to_apply.iter().enumerate() {
            let path = backup.path(&folder);
            let text = format!(
                "RESTORE LOG {} FROM DISK = {} WITH FILE = {}, NORECOVERY",
                ident(&self.database),
                quote::sql_string(&path),
                backup.position()
            );
            bar.update(i + 1, total, &path);
            match s.execute_in_step(self.instance, &text).await {
                // 4326: already applied. Only possible if something else restored it since the
                // chain was read; the redo point moved past it, which is what we wanted.
                Err(e) if e.sql_number() == Some(4326) => {}
                other => {
                    other?;
                }
            }
        }
        drop(bar);
        if let Some(gap) = &plan.gap
            && !self.gap_accepted(s, gap).await?
        {
            return Err(StepError::Failed(format!(
                "applied {total} log backup(s), then stopped: {gap}"
            )));
        }
        Ok(())
    }

    pub(crate) async fn verify(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        let Some((plan, _)) = self.chain(s).await? else {
            return Ok(());
        };
        if !plan.to_apply.is_empty() {
            return Err(StepError::Failed(format!(
                "{} log backup(s) are still not applied to `{}`",
                plan.to_apply.len(),
                self.database
            )));
        }
        match &plan.gap {
            Some(gap) if !self.gap_accepted(s, gap).await? => {
                Err(StepError::Failed(gap.to_string()))
            }
            _ => Ok(()),
        }
    }
}
