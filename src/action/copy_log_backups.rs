//! Failover step 2: copy log backups from the share that the copy job had not copied yet.
//!
//! Which files to copy depends on what is in the share and the copy folder at run time, so the plan
//! says what will be computed and from where. The folders come from msdb's log-shipping tables on the
//! backup instance, read before step 1 deletes them, unless the runbook overrides them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Command, MINUTE, Target};
use crate::exec::{Session, StepError, copy, probe};
use crate::runbook::{Role, StepReader};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyLogBackups {
    pub instance: Role,
    pub database: String,
    /// Runbook overrides; `None` means "as recorded in msdb".
    pub share: Option<String>,
    pub copy_folder: Option<String>,
}

/// Where the log-shipping folders come from, for the plan's `from` text.
pub(crate) fn folders_from(
    instance: Role,
    share: Option<&str>,
    copy_folder: Option<&str>,
) -> String {
    let share = share.map_or_else(
        || {
            format!(
                "the share in msdb.dbo.log_shipping_secondary.backup_source_directory on {instance}"
            )
        },
        |s| format!("the share `{s}` (runbook override)"),
    );
    let copy = copy_folder_from(instance, copy_folder);
    format!("{share}; {copy}; msdb is read before log shipping is removed")
}

/// Where the copy folder comes from.
pub(crate) fn copy_folder_from(instance: Role, copy_folder: Option<&str>) -> String {
    copy_folder.map_or_else(
        || format!("the copy folder in msdb.dbo.log_shipping_secondary.backup_destination_directory on {instance}"),
        |c| format!("the copy folder `{c}` (runbook override)"),
    )
}

impl CopyLogBackups {
    pub(crate) fn parse(r: &mut StepReader<'_, '_, '_, '_>) -> Option<Self> {
        let instance = r.instance_or("instance", Role::Backup);
        let database = r.database("database");
        let overrides = r.context().overrides.clone();
        Some(Self {
            instance: instance?,
            database: database?,
            share: overrides.share,
            copy_folder: overrides.copy_folder,
        })
    }

    pub fn name(&self) -> &'static str {
        "copy_log_backups"
    }

    pub fn describe(&self) -> String {
        format!(
            "Copy any uncopied log backups of `{}` from the share to the copy folder",
            self.database
        )
    }

    pub fn render(&self) -> Vec<Command> {
        vec![Command::Computed {
            what: format!(
                "copy each `{}_*.trn` log backup in the share that is not yet in the copy folder (`*.wrk` files are still being written and are skipped)",
                self.database
            ),
            from: folders_from(
                self.instance,
                self.share.as_deref(),
                self.copy_folder.as_deref(),
            ),
        }]
    }

    pub fn target(&self) -> Target {
        Target::Instance(self.instance)
    }

    pub fn irreversible(&self) -> bool {
        false
    }

    pub fn default_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(30 * MINUTE))
    }
}

/// Running it: the folders come from the runbook's overrides, else from the log-shipping settings
/// captured before step 1 removed them. Done when every `.trn` in the share is in the copy folder
/// with identical contents, or when the database is already recovered (nothing more can be applied).
/// A share that cannot be read is the loss the operator confirmed in the ledger (or accepts with
/// `--accept-data-loss`): what the copy folder holds is applied, nothing more.
impl CopyLogBackups {
    /// The share and the copy folder where pcfail reaches them.
    fn folders(&self, s: &Session<'_>) -> Result<(PathBuf, PathBuf), StepError> {
        let captured = s.captured_log_shipping(&self.database);
        let share = self
            .share
            .clone()
            .or_else(|| captured.as_ref().map(|c| c.backup_source_directory.clone()));
        let copy = self.copy_folder.clone().or_else(|| {
            captured
                .as_ref()
                .map(|c| c.backup_destination_directory.clone())
        });
        // Named as SQL Server names them; copied where pcfail reaches them.
        let overrides = &s.runbook.log_shipping;
        match (share, copy) {
            (Some(share), Some(copy)) => Ok((
                overrides.share_for_pcfail(&share),
                overrides.copy_folder_for_pcfail(&copy),
            )),
            _ => Err(StepError::Failed(format!(
                "the backup share and copy folder of `{}` are unknown: msdb's log-shipping settings were not captured before they were removed; set `share` and `copy_folder` under [log_shipping] in the runbook",
                self.database
            ))),
        }
    }

    /// True when the database no longer takes log backups: copying would serve nothing.
    async fn recovered(&self, s: &mut Session<'_>) -> Result<bool, StepError> {
        Ok(probe::database(s, self.instance, &self.database)
            .await?
            .is_some_and(|db| db.is_recovered()))
    }

    /// Whether a share that cannot be read may be left behind: the ledger the operator confirmed
    /// said so, or `--accept-data-loss` says so now.
    fn share_loss_accepted(&self, s: &Session<'_>) -> Option<&'static str> {
        let confirmed = s
            .captured("data_loss_ledger")
            .and_then(|l| l.get("share_reachable"))
            .and_then(serde_json::Value::as_bool)
            == Some(false);
        if confirmed {
            Some("the ledger confirmed before the first step")
        } else if s.accepts_data_loss() {
            Some("--accept-data-loss")
        } else {
            None
        }
    }

    /// Which files can still matter: not those older than the last log backup msdb recorded as
    /// restored before step 1 removed log shipping (see `exec::copy`).
    fn horizon(&self, s: &Session<'_>) -> copy::Horizon {
        match s.captured_log_shipping(&self.database) {
            Some(c) => copy::Horizon {
                db: if c.primary_database.is_empty() {
                    self.database.clone()
                } else {
                    c.primary_database.clone()
                },
                // msdb stores a path in the instance's own form (`D:\...` or `/...`).
                last_restored: c
                    .last_restored_file
                    .as_deref()
                    .and_then(|f| f.rsplit(['\\', '/']).next())
                    .map(str::to_owned),
            },
            None => copy::Horizon::everything(),
        }
    }

    /// What is still to copy, or None when the share cannot be read and that loss is accepted.
    fn pending(
        &self,
        s: &mut Session<'_>,
        share: &Path,
        copy: &Path,
    ) -> Result<Option<Vec<String>>, StepError> {
        let horizon = self.horizon(s);
        match copy::pending(share, copy, &horizon, s.verified_copies()) {
            Ok(list) => Ok(Some(list)),
            Err(e) if e.is_share_unreadable(share) => match self.share_loss_accepted(s) {
                Some(_) => Ok(None),
                None => Err(StepError::Failed(format!(
                    "{e}; the share was readable when the ledger was confirmed. Run the same command again once it is back, or, to apply only what the copy folder holds and lose the rest, run it again with `--accept-data-loss`"
                ))),
            },
            Err(e) => Err(StepError::Failed(e.to_string())),
        }
    }

    pub(crate) async fn check_done(&self, s: &mut Session<'_>) -> Result<bool, StepError> {
        if self.recovered(s).await? {
            return Ok(true);
        }
        let (share, copy) = self.folders(s)?;
        Ok(self.pending(s, &share, &copy)?.is_none_or(|p| p.is_empty()))
    }

    pub(crate) async fn run(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        let (share, copy) = self.folders(s)?;
        if self.pending(s, &share, &copy)?.is_none() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let mut bar = s.bar("copied");
        let cancel = Arc::new(AtomicBool::new(false));
        let horizon = self.horizon(s);
        let mut verified = std::mem::take(s.verified_copies());
        let work = {
            let (share, copy, cancel) = (share.clone(), copy.clone(), Arc::clone(&cancel));
            tokio::task::spawn_blocking(move || {
                let report = copy::copy_missing(
                    &share,
                    &copy,
                    &horizon,
                    &mut verified,
                    |done, total, name| bar.update(done, total, name),
                    &cancel,
                );
                (report, verified)
            })
        };
        // The step's timeout bounds the whole copy: when it is up, the copy stops within one chunk.
        let mut work = work;
        let (report, verified) = match tokio::time::timeout(s.step_timeout(), &mut work).await {
            Ok(joined) => joined,
            Err(_) => {
                cancel.store(true, Ordering::Relaxed);
                work.await
            }
        }
        .map_err(|e| StepError::Failed(format!("the copy stopped unexpectedly: {e}")))?;
        *s.verified_copies() = verified;
        let report = report.map_err(|e| StepError::Failed(e.to_string()))?;
        if report.applied_before > 0 {
            s.progress(&format!(
                "{} log backup(s) older than the last one msdb recorded as restored were left alone",
                report.applied_before
            ));
        }
        s.record_file_copy(&share, &copy, &report, started)?;
        Ok(())
    }

    pub(crate) async fn verify(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        let (share, copy) = self.folders(s)?;
        let Some(missing) = self.pending(s, &share, &copy)? else {
            s.progress(&format!(
                "the share `{}` cannot be read; only the copy folder's log backups are applied (accepted: {})",
                share.display(),
                self.share_loss_accepted(s).unwrap_or("?")
            ));
            return Ok(());
        };
        if missing.is_empty() {
            Ok(())
        } else {
            Err(StepError::Failed(format!(
                "{} log backup(s) still differ between `{}` and `{}`: {}",
                missing.len(),
                share.display(),
                copy.display(),
                missing.join(", ")
            )))
        }
    }
}
