//! Failover step 1: remove log shipping on the backup instance (`sp_delete_log_shipping_secondary_database`).
//!
//! Microsoft does this first (reference H.6). It also deletes the copy and restore jobs when it is the
//! last database for that primary (reference A.2), which is why the copy and apply steps that follow
//! are done by pcfail itself. The database is left RESTORING; recovering it is a later step.
//!
//! Deleting a job does not stop a run of it already under way: a restore job still restoring keeps the
//! database busy and would race pcfail's own RESTORE LOG (3101), or restore a file pcfail is about to
//! apply. So the copy and restore jobs are first disabled (`sp_update_job @enabled = 0`: no new run
//! starts) and the step waits, within its time, until msdb.dbo.sysjobactivity shows neither running and
//! no BACKUP or RESTORE runs on the database, saying which job it waits for.

use std::time::Duration;

use super::{Command, MINUTE, Target};
use crate::exec::{Session, StepError, probe};
use crate::quote::sql_string;
use crate::runbook::{Role, StepReader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveLogShippingSecondary {
    pub instance: Role,
    pub database: String,
}

impl RemoveLogShippingSecondary {
    pub(crate) fn parse(r: &mut StepReader<'_, '_, '_, '_>) -> Option<Self> {
        let instance = r.instance_or("instance", Role::Backup);
        let database = r.database("database");
        Some(Self {
            instance: instance?,
            database: database?,
        })
    }

    pub fn name(&self) -> &'static str {
        "remove_log_shipping_secondary"
    }

    pub fn describe(&self) -> String {
        format!(
            "Remove log shipping for `{}` on the {} instance",
            self.database, self.instance
        )
    }

    pub fn render(&self) -> Vec<Command> {
        vec![
            Command::Computed {
                what: format!(
                    "EXEC msdb.dbo.sp_update_job @job_id = N'<id>', @enabled = 0 for the copy job and the restore job of `{}`, then wait until neither runs (msdb.dbo.sysjobactivity) and no BACKUP or RESTORE works on `{}` (sys.dm_exec_requests)",
                    self.database, self.database
                ),
                from: format!(
                    "msdb.dbo.log_shipping_secondary (copy_job_id, restore_job_id) on {}",
                    self.instance
                ),
            },
            self.delete(),
        ]
    }

    fn delete(&self) -> Command {
        Command::sql(
            self.instance,
            format!(
                "EXEC master.dbo.sp_delete_log_shipping_secondary_database @secondary_database = {}",
                sql_string(&self.database)
            ),
        )
    }

    pub fn target(&self) -> Target {
        Target::Instance(self.instance)
    }

    /// The copy and restore jobs and the msdb configuration are deleted; pcfail cannot recreate them.
    pub fn irreversible(&self) -> bool {
        true
    }

    pub fn default_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(5 * MINUTE))
    }
}

/// Running it: done when msdb no longer lists the database as a log-shipping secondary. 32014 ("does
/// not exist as log shipping secondary", UNVERIFIED as this procedure's answer, reference A.2) means
/// someone removed it between the check and the call, which is the state we want.
impl RemoveLogShippingSecondary {
    pub(crate) async fn check_done(&self, s: &mut Session<'_>) -> Result<bool, StepError> {
        Ok(
            probe::log_shipping_secondary(s, self.instance, &self.database)
                .await?
                .is_none(),
        )
    }

    pub(crate) async fn run(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        self.quiesce_jobs(s).await?;
        match s.run_command(&self.delete()).await {
            Err(e) if e.sql_number() == Some(32014) => Ok(()),
            other => other,
        }
    }

    /// Disables the copy and restore jobs and waits until nothing of them runs (see the module doc).
    async fn quiesce_jobs(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        let jobs = probe::log_shipping_jobs(s, self.instance, &self.database).await?;
        for (id, _) in &jobs {
            let text = format!(
                "EXEC msdb.dbo.sp_update_job @job_id = {}, @enabled = 0",
                sql_string(id)
            );
            s.execute_in_step(self.instance, &text).await?;
        }
        let ids: Vec<String> = jobs.iter().map(|(id, _)| id.clone()).collect();
        let started = std::time::Instant::now();
        let mut said = false;
        loop {
            let running = probe::running_jobs(s, self.instance, &ids).await?;
            let requests = probe::running_backups(s, self.instance, &self.database).await?;
            let what: Vec<String> = running
                .iter()
                .map(|(id, since)| {
                    let name = jobs
                        .iter()
                        .find(|(j, _)| j.eq_ignore_ascii_case(id))
                        .map_or(id.as_str(), |(_, n)| n.as_str());
                    format!("the job `{name}` (running since {since}, server time)")
                })
                .chain(requests.iter().map(|r| {
                    format!(
                        "`{}` of `{}` by session {} ({:.0}% done)",
                        r.command, self.database, r.session_id, r.percent_complete
                    )
                }))
                .collect();
            if what.is_empty() {
                if said {
                    s.progress(&format!(
                        "the log-shipping jobs are idle after {:.0}s",
                        started.elapsed().as_secs_f64()
                    ));
                }
                return Ok(());
            }
            if s.step_timeout() <= Duration::from_secs(1) {
                return Err(StepError::Failed(format!(
                    "{} still running on `{}` after the copy and restore jobs were disabled; the step's time ran out waiting. Run the same command again when it has finished",
                    what.join(" and "),
                    self.instance
                )));
            }
            if !said {
                s.progress(&format!(
                    "log-shipping jobs disabled; waiting for {} to finish before removing log shipping",
                    what.join(" and ")
                ));
                said = true;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    pub(crate) async fn verify(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        if !self.check_done(s).await? {
            return Err(StepError::Failed(format!(
                "msdb on `{}` still lists `{}` as a log-shipping secondary",
                self.instance, self.database
            )));
        }
        // The procedure must leave the database itself alone (reference A.2): still restoring.
        match probe::database(s, self.instance, &self.database).await? {
            Some(db) if db.accepts_log() => Ok(()),
            Some(db) => Err(StepError::Failed(format!(
                "`{}` on `{}` is {} after removing log shipping; it should still be restoring",
                self.database, self.instance, db.state_desc
            ))),
            None => Err(StepError::Failed(format!(
                "`{}` no longer exists on `{}`",
                self.database, self.instance
            ))),
        }
    }
}
