//! Fail-back: re-establish log shipping from the primary instance to the backup instance, in the
//! documented order (reference G): initialize the secondary, register the primary, schedule and enable
//! its backup job, register the secondary, schedule its copy and restore jobs, link the two, enable.
//!
//! Jobs and schedules are addressed by the names the runbook chooses (`@job_name`, `@schedule_name`),
//! so no statement needs an OUTPUT variable and each is one plain statement. The retention and alert
//! numbers are the values SSMS proposes; the runbook can change the most common ones.
//!
//! Fail-back puts back what the failover removed: the secondary's settings a failover captured from
//! msdb before step 1 (share, copy folder, job names, schedule, retention) fill every key the runbook
//! leaves out, and where the runbook says otherwise the plan notes the difference (`resolve`).

use std::time::Duration;

use super::{Command, MINUTE, Target, ident};
use crate::exec::probe::LogShippingSecondary;
use crate::exec::{Session, StepError, probe};
use crate::quote::sql_string;
use crate::runbook::{Role, StepReader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigureLogShipping {
    pub primary: Role,
    pub secondary: Role,
    pub database: String,
    /// `@@SERVERNAME` of each side, as the procedures record them.
    pub primary_server: String,
    pub secondary_server: String,
    /// Folder the primary writes log backups to (local path on the primary).
    pub backup_directory: String,
    /// The same folder as a share the secondary reads.
    pub backup_share: String,
    /// Folder on the secondary the copy job copies into.
    pub copy_folder: String,
    /// Full backup written by the primary and restored WITH NORECOVERY on the secondary.
    pub initialize_file: String,
    pub backup_job: String,
    pub backup_schedule: String,
    pub copy_job: String,
    pub copy_schedule: String,
    pub restore_job: String,
    pub restore_schedule: String,
    pub interval_minutes: i64,
    pub retention_minutes: i64,
    pub schedule_start_date: i64,
    /// Keys the runbook leaves to the settings a failover captured, until [`Self::resolve`] fills
    /// them; a step with any left cannot run.
    pub from_capture: Vec<&'static str>,
}

impl ConfigureLogShipping {
    pub(crate) fn parse(r: &mut StepReader<'_, '_, '_, '_>) -> Option<Self> {
        let primary = r.instance_or("instance", Role::Primary);
        let secondary = r.instance_or("secondary", Role::Backup);
        let database = r.database("database");
        let backup_directory = r.text("backup_directory");
        let initialize_file = r.text("initialize_file");
        let db = database.clone().unwrap_or_default();
        // What the runbook leaves out comes from the failover's capture (`resolve`).
        let from_capture: Vec<&'static str> = [
            "backup_share",
            "copy_folder",
            "copy_job",
            "restore_job",
            "interval_minutes",
            "retention_minutes",
        ]
        .into_iter()
        .filter(|key| r.table.raw(key).is_none())
        .collect();
        let backup_share = r.text_or("backup_share", String::new());
        let copy_folder = r.text_or("copy_folder", String::new());
        let backup_job = r.sysname_or("backup_job", format!("LSBackup_{db}"));
        let backup_schedule = r.sysname_or("backup_schedule", format!("LSBackupSchedule_{db}"));
        let copy_job = r.sysname_or("copy_job", format!("LSCopy_{db}"));
        let copy_schedule = r.sysname_or("copy_schedule", format!("LSCopySchedule_{db}"));
        let restore_job = r.sysname_or("restore_job", format!("LSRestore_{db}"));
        let restore_schedule = r.sysname_or("restore_schedule", format!("LSRestoreSchedule_{db}"));
        let interval_minutes = r.integer_or("interval_minutes", 15, 1..=1440);
        let retention_minutes = r.integer_or("retention_minutes", 4320, 1..=525_600);
        // sp_add_schedule takes a yyyymmdd integer; 1990-01-01 is SQL Agent's earliest valid date. A
        // number that is no day (20260230) would only fail at the server, after the restore.
        let schedule_start_date = r.date_or("schedule_start_date", 20260101, 19900101..=99991231);
        let (primary, secondary) = (primary?, secondary?);
        if primary == secondary {
            r.d.error(
                r.table.span(),
                format!(
                    "{} ships `{primary}` to itself; `secondary` must be another instance",
                    r.table.context()
                ),
            );
            return None;
        }
        let primary_server = r.instance_info(primary)?.server_name.clone();
        let secondary_server = r.instance_info(secondary)?.server_name.clone();
        Some(Self {
            primary,
            secondary,
            database: database?,
            primary_server,
            secondary_server,
            backup_directory: backup_directory?,
            backup_share: backup_share?,
            copy_folder: copy_folder?,
            initialize_file: initialize_file?,
            backup_job: backup_job?,
            backup_schedule: backup_schedule?,
            copy_job: copy_job?,
            copy_schedule: copy_schedule?,
            restore_job: restore_job?,
            restore_schedule: restore_schedule?,
            interval_minutes: interval_minutes?,
            retention_minutes: retention_minutes?,
            schedule_start_date: schedule_start_date?,
            from_capture,
        })
    }

    /// Fills the keys the runbook left out from what a failover captured (`run` names it) and returns
    /// a note for each key the runbook sets to something else than what was captured.
    pub(crate) fn resolve(&mut self, captured: &LogShippingSecondary, run: &str) -> Vec<String> {
        let mut notes = Vec::new();
        let values: [(&'static str, Option<String>, String); 6] = [
            (
                "backup_share",
                Some(captured.backup_source_directory.clone()).filter(|v| !v.is_empty()),
                self.backup_share.clone(),
            ),
            (
                "copy_folder",
                Some(captured.backup_destination_directory.clone()).filter(|v| !v.is_empty()),
                self.copy_folder.clone(),
            ),
            (
                "copy_job",
                captured.copy_job.as_ref().map(|j| j.name.clone()),
                self.copy_job.clone(),
            ),
            (
                "restore_job",
                captured.restore_job.as_ref().map(|j| j.name.clone()),
                self.restore_job.clone(),
            ),
            (
                "interval_minutes",
                captured
                    .copy_job
                    .as_ref()
                    .and_then(|j| j.every_minutes)
                    .map(|m| m.to_string()),
                self.interval_minutes.to_string(),
            ),
            (
                "retention_minutes",
                captured.file_retention_period.map(|m| m.to_string()),
                self.retention_minutes.to_string(),
            ),
        ];
        let mut filled = Vec::new();
        for (key, was, now) in values {
            let Some(was) = was else { continue };
            if self.from_capture.contains(&key) {
                filled.push(key);
                match key {
                    "backup_share" => self.backup_share = was,
                    "copy_folder" => self.copy_folder = was,
                    "copy_job" => self.copy_job = was,
                    "restore_job" => self.restore_job = was,
                    "interval_minutes" => self.interval_minutes = was.parse().unwrap_or(15),
                    _ => self.retention_minutes = was.parse().unwrap_or(4320),
                }
            } else if now != was {
                notes.push(format!(
                    "fail-back sets log shipping's `{key}` to `{now}` as the runbook says; before the failover (run {run}) msdb had `{was}`"
                ));
            }
        }
        self.from_capture.retain(|k| !filled.contains(k));
        notes
    }

    /// Why the step cannot run yet, if some key is still waiting for a capture.
    pub(crate) fn unresolved(&self) -> Option<String> {
        (!self.from_capture.is_empty()).then(|| {
            format!(
                "the runbook leaves {} of `{}`'s log shipping to the settings a failover captures before removing log shipping, and no failover in this state directory captured them; set them in the runbook's `configure_log_shipping` step",
                self.from_capture
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                self.database
            )
        })
    }

    pub fn name(&self) -> &'static str {
        "configure_log_shipping"
    }

    pub fn describe(&self) -> String {
        format!(
            "Configure log shipping of `{}` from the {} instance to the {} instance",
            self.database, self.primary, self.secondary
        )
    }

    fn schedule(&self, name: &str) -> String {
        format!(
            "EXEC msdb.dbo.sp_add_schedule @schedule_name = {}, @enabled = 1, @freq_type = 4, @freq_interval = 1, @freq_subday_type = 4, @freq_subday_interval = {}, @freq_recurrence_factor = 0, @active_start_date = {}, @active_end_date = 99991231, @active_start_time = 0, @active_end_time = 235900",
            sql_string(name),
            self.interval_minutes,
            self.schedule_start_date
        )
    }

    fn attach(job: &str, schedule: &str) -> String {
        format!(
            "EXEC msdb.dbo.sp_attach_schedule @job_name = {}, @schedule_name = {}",
            sql_string(job),
            sql_string(schedule)
        )
    }

    fn enable(job: &str) -> String {
        format!(
            "EXEC msdb.dbo.sp_update_job @job_name = {}, @enabled = 1",
            sql_string(job)
        )
    }

    pub fn render(&self) -> Vec<Command> {
        if !self.from_capture.is_empty() {
            // Without the captured values the statements cannot be written out; the plan says
            // where they will come from, and the run refuses until they are known.
            return vec![Command::Computed {
                what: format!(
                    "the log-shipping configuration of `{}` from {} to {}, as before the failover: {} as the failover captured them",
                    self.database,
                    self.primary,
                    self.secondary,
                    self.from_capture.join(", ")
                ),
                from: format!(
                    "the settings a failover read from msdb on {} before removing log shipping (its journal); none is in this state directory yet",
                    self.secondary
                ),
            }];
        }
        let (p, s) = (self.primary, self.secondary);
        let db = sql_string(&self.database);
        let init = sql_string(&self.initialize_file);
        vec![
            Command::sql(
                p,
                format!(
                    "BACKUP DATABASE {} TO DISK = {init} WITH INIT, FORMAT, CHECKSUM",
                    ident(&self.database)
                ),
            ),
            Command::sql(
                s,
                format!(
                    "RESTORE DATABASE {} FROM DISK = {init} WITH FILE = 1, NORECOVERY, REPLACE",
                    ident(&self.database)
                ),
            ),
            Command::sql(
                p,
                format!(
                    "EXEC master.dbo.sp_add_log_shipping_primary_database @database = {db}, @backup_directory = {}, @backup_share = {}, @backup_job_name = {}, @backup_retention_period = {}, @backup_threshold = 60, @threshold_alert_enabled = 1, @history_retention_period = 5760, @backup_compression = 2, @overwrite = 1",
                    sql_string(&self.backup_directory),
                    sql_string(&self.backup_share),
                    sql_string(&self.backup_job),
                    self.retention_minutes
                ),
            ),
            Command::sql(p, self.schedule(&self.backup_schedule)),
            Command::sql(p, Self::attach(&self.backup_job, &self.backup_schedule)),
            Command::sql(p, Self::enable(&self.backup_job)),
            Command::sql(
                s,
                format!(
                    "EXEC master.dbo.sp_add_log_shipping_secondary_primary @primary_server = {}, @primary_database = {db}, @backup_source_directory = {}, @backup_destination_directory = {}, @copy_job_name = {}, @restore_job_name = {}, @file_retention_period = {}, @overwrite = 1",
                    sql_string(&self.primary_server),
                    sql_string(&self.backup_share),
                    sql_string(&self.copy_folder),
                    sql_string(&self.copy_job),
                    sql_string(&self.restore_job),
                    self.retention_minutes
                ),
            ),
            Command::sql(s, self.schedule(&self.copy_schedule)),
            Command::sql(s, Self::attach(&self.copy_job, &self.copy_schedule)),
            Command::sql(s, self.schedule(&self.restore_schedule)),
            Command::sql(s, Self::attach(&self.restore_job, &self.restore_schedule)),
            Command::sql(
                s,
                format!(
                    "EXEC master.dbo.sp_add_log_shipping_secondary_database @secondary_database = {db}, @primary_server = {}, @primary_database = {db}, @restore_delay = 0, @restore_mode = 0, @disconnect_users = 0, @restore_threshold = 45, @threshold_alert_enabled = 1, @history_retention_period = 5760, @overwrite = 1",
                    sql_string(&self.primary_server)
                ),
            ),
            Command::sql(
                p,
                format!(
                    "EXEC master.dbo.sp_add_log_shipping_primary_secondary @primary_database = {db}, @secondary_server = {}, @secondary_database = {db}, @overwrite = 1",
                    sql_string(&self.secondary_server)
                ),
            ),
            Command::sql(s, Self::enable(&self.copy_job)),
            Command::sql(s, Self::enable(&self.restore_job)),
        ]
    }

    pub fn target(&self) -> Target {
        Target::Instance(self.primary)
    }

    /// Initializing restores WITH REPLACE over the secondary's copy of the database.
    pub fn irreversible(&self) -> bool {
        true
    }

    pub fn default_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(60 * MINUTE))
    }
}

/// Running it: done when the primary lists the database as a log-shipping primary and the secondary
/// as a secondary. The procedures are called with `@overwrite = 1`, so a resumed run may call them again.
impl ConfigureLogShipping {
    pub(crate) async fn check_done(&self, s: &mut Session<'_>) -> Result<bool, StepError> {
        Ok(
            probe::is_log_shipping_primary(s, self.primary, &self.database).await?
                && probe::log_shipping_secondary(s, self.secondary, &self.database)
                    .await?
                    .is_some(),
        )
    }

    pub(crate) async fn run(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        if let Some(why) = self.unresolved() {
            return Err(StepError::Failed(why));
        }
        s.run_all(&self.render()).await
    }

    pub(crate) async fn verify(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        if !probe::is_log_shipping_primary(s, self.primary, &self.database).await? {
            return Err(StepError::Failed(format!(
                "`{}` on `{}` is not a log-shipping primary",
                self.database, self.primary
            )));
        }
        if probe::log_shipping_secondary(s, self.secondary, &self.database)
            .await?
            .is_none()
        {
            return Err(StepError::Failed(format!(
                "`{}` on `{}` is not a log-shipping secondary",
                self.database, self.secondary
            )));
        }
        match probe::database(s, self.secondary, &self.database).await? {
            Some(db) if db.accepts_log() => Ok(()),
            Some(db) => Err(StepError::Failed(format!(
                "`{}` on `{}` is {}; a log-shipping secondary must be restoring",
                self.database, self.secondary, db.state_desc
            ))),
            None => Err(StepError::Failed(format!(
                "`{}` does not exist on `{}`",
                self.database, self.secondary
            ))),
        }
    }
}
