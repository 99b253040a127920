//! Fail-back: re-establish log shipping from the primary instance to the backup instance, in the
//! documented order (reference G): initialize the secondary, register the primary, schedule and enable
//! its backup job, register the secondary, schedule its copy and restore jobs, link the two, enable.
//!
//! Jobs and schedules are addressed by the names the runbook chooses (`@job_name`, `@schedule_name`),
//! so no statement needs an OUTPUT variable and each is one plain statement. The retention and alert
//! numbers are the values SSMS proposes; the runbook can change the most common ones.
//!
//! As SQL Server's own setup does without a monitor server, the alert job (`LSAlert_<server>`,
//! `sp_add_log_shipping_alert_job`) is added on the primary, which then watches the backups, and on
//! the secondary, which watches the copies and restores (Microsoft: "Monitor log shipping").
//!
//! What only the servers know is read from them at run time, and the plan says so: the names the
//! procedures record are `@@SERVERNAME` (checked against the runbook, then used as the server spells
//! it), and the schedules start on each instance's own date unless the runbook sets
//! `schedule_start_date`.
//!
//! Fail-back puts back what the failover removed: the secondary's settings a failover captured from
//! msdb before step 1 (share, copy folder, job names, schedule, retention) fill every key the runbook
//! leaves out, and where the runbook says otherwise the plan notes the difference (`resolve`).

use std::time::Duration;

use super::{Command, MINUTE, Target, ident};
mod state;

use state::Side;

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
    /// `yyyymmdd` the schedules start on; None: the date of the instance the schedule is added on,
    /// read when the step runs (a runbook written months ahead must not start them in the past).
    pub schedule_start_date: Option<i64>,
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
        let explicit_date = r.table.raw("schedule_start_date").is_some();
        let schedule_start_date = r.date_or("schedule_start_date", 0, 19900101..=99991231);
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
            schedule_start_date: explicit_date.then_some(schedule_start_date?),
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

    /// The statements, in the documented order (reference G), each with the reason it may be left
    /// out at run time. A typed list, so the plan's text and what runs cannot drift apart.
    fn parts(&self) -> Vec<Part<'_>> {
        let (p, s) = (self.primary, self.secondary);
        vec![
            Part::RemoveStaleLink,
            Part::RemoveStalePrimary,
            Part::RemoveStaleSecondary,
            Part::InitBackup,
            Part::InitRestore,
            Part::AddPrimary,
            Part::AddSchedule(p, &self.backup_schedule),
            Part::Attach(p, &self.backup_job, &self.backup_schedule),
            // Where Microsoft's T-SQL order adds it: after the backup job's schedule (reference G.4).
            Part::AlertJob(p),
            Part::Enable(p, &self.backup_job),
            Part::AddSecondaryPrimary,
            Part::AddSchedule(s, &self.copy_schedule),
            Part::Attach(s, &self.copy_job, &self.copy_schedule),
            Part::AddSchedule(s, &self.restore_schedule),
            Part::Attach(s, &self.restore_job, &self.restore_schedule),
            Part::AddSecondaryDatabase,
            Part::AlertJob(s),
            Part::Link,
            Part::Enable(s, &self.copy_job),
            Part::Enable(s, &self.restore_job),
        ]
    }

    /// One part as the plan shows it and the run sends it.
    fn command(&self, part: &Part<'_>) -> Command {
        let (p, s) = (self.primary, self.secondary);
        let db = sql_string(&self.database);
        let init = sql_string(&self.initialize_file);
        let sql = |instance, text: String, when: String| Command::Sql {
            instance,
            database: "master".to_owned(),
            text,
            when: Some(format!("only if {when}")),
        };
        match part {
            Part::RemoveStaleLink => sql(
                p,
                format!(
                    "EXEC master.dbo.sp_delete_log_shipping_primary_secondary @primary_database = {db}, @secondary_server = {}, @secondary_database = {db}",
                    sql_string(&self.secondary_server)
                ),
                format!(
                    "{p} still lists {}.{} as its secondary from before this step (a planned failover leaves it)",
                    self.secondary_server, self.database
                ),
            ),
            Part::RemoveStalePrimary => sql(
                p,
                format!("EXEC master.dbo.sp_delete_log_shipping_primary_database @database = {db}"),
                format!(
                    "{p} still has a log-shipping primary entry for `{}` from before this step",
                    self.database
                ),
            ),
            Part::RemoveStaleSecondary => sql(
                s,
                format!(
                    "EXEC master.dbo.sp_delete_log_shipping_secondary_database @secondary_database = {db}"
                ),
                format!(
                    "{s} still has a log-shipping secondary entry for `{}` from before this step",
                    self.database
                ),
            ),
            Part::InitBackup => sql(
                p,
                format!(
                    "BACKUP DATABASE {} TO DISK = {init} WITH INIT, FORMAT, CHECKSUM",
                    ident(&self.database)
                ),
                format!(
                    "`{}` on {s} is not yet a log-shipping secondary",
                    self.database
                ),
            ),
            Part::InitRestore => sql(
                s,
                format!(
                    "RESTORE DATABASE {} FROM DISK = {init} WITH FILE = 1, NORECOVERY, REPLACE",
                    ident(&self.database)
                ),
                format!(
                    "`{}` on {s} is not yet a log-shipping secondary",
                    self.database
                ),
            ),
            Part::AddPrimary => sql(
                p,
                format!(
                    "EXEC master.dbo.sp_add_log_shipping_primary_database @database = {db}, @backup_directory = {}, @backup_share = {}, @backup_job_name = {}, @backup_retention_period = {}, @backup_threshold = 60, @threshold_alert_enabled = 1, @history_retention_period = 5760, @backup_compression = 2, @overwrite = 1",
                    sql_string(&self.backup_directory),
                    sql_string(&self.backup_share),
                    sql_string(&self.backup_job),
                    self.retention_minutes
                ),
                format!(
                    "{p} has no log-shipping primary entry for `{}`",
                    self.database
                ),
            ),
            Part::AddSchedule(role, name) => match self.schedule_start_date {
                Some(date) => sql(
                    *role,
                    self.add_schedule(name, &date.to_string()),
                    format!("{role} has no schedule named `{name}`"),
                ),
                // The date is the server's, known when the step runs: the plan shows the statement
                // with the one value it cannot know yet, and where that value comes from.
                None => Command::Computed {
                    what: format!(
                        "{}, unless {role} has a schedule named `{name}`",
                        self.add_schedule(name, &format!("<the {role}'s date at run time>"))
                    ),
                    from: format!(
                        "SELECT GETDATE() on {role}, as yyyymmdd (its own date, not this machine's)"
                    ),
                },
            },
            Part::AlertJob(role) => sql(
                *role,
                "EXEC master.dbo.sp_add_log_shipping_alert_job".to_owned(),
                format!(
                    "{role} has no log-shipping alert job (msdb.dbo.log_shipping_monitor_alert)"
                ),
            ),
            // By id, never by name: SQL Server allows two schedules of one name, and attaching by a
            // duplicated name fails with 14371 (reference J.4).
            Part::Attach(role, job, schedule) => Command::Computed {
                what: format!(
                    "EXEC msdb.dbo.sp_attach_schedule @job_name = {}, @schedule_id = <the id of the schedule named `{schedule}`>, unless the job has a schedule already",
                    sql_string(job)
                ),
                from: format!("msdb.dbo.sysschedules and sysjobschedules on {role}"),
            },
            Part::Enable(role, job) => sql(
                *role,
                format!(
                    "EXEC msdb.dbo.sp_update_job @job_name = {}, @enabled = 1",
                    sql_string(job)
                ),
                format!("job `{job}` on {role} is disabled"),
            ),
            Part::AddSecondaryPrimary => sql(
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
                format!(
                    "{s} has no log-shipping entry for {}.{}",
                    self.primary_server, self.database
                ),
            ),
            Part::AddSecondaryDatabase => sql(
                s,
                format!(
                    "EXEC master.dbo.sp_add_log_shipping_secondary_database @secondary_database = {db}, @primary_server = {}, @primary_database = {db}, @restore_delay = 0, @restore_mode = 0, @disconnect_users = 0, @restore_threshold = 45, @threshold_alert_enabled = 1, @history_retention_period = 5760, @overwrite = 1",
                    sql_string(&self.primary_server)
                ),
                format!(
                    "`{}` is not yet a log-shipping secondary database on {s}",
                    self.database
                ),
            ),
            Part::Link => sql(
                p,
                format!(
                    "EXEC master.dbo.sp_add_log_shipping_primary_secondary @primary_database = {db}, @secondary_server = {}, @secondary_database = {db}, @overwrite = 1",
                    sql_string(&self.secondary_server)
                ),
                format!(
                    "{p} does not list {}.{} as its secondary",
                    self.secondary_server, self.database
                ),
            ),
        }
    }

    /// The sp_add_schedule statement for schedule `name` starting on `date` (yyyymmdd).
    fn add_schedule(&self, name: &str, date: &str) -> String {
        format!(
            "EXEC msdb.dbo.sp_add_schedule @schedule_name = {}, @enabled = 1, @freq_type = 4, @freq_interval = 1, @freq_subday_type = 4, @freq_subday_interval = {}, @freq_recurrence_factor = 0, @active_start_date = {date}, @active_end_date = 99991231, @active_start_time = 0, @active_end_time = 235900",
            sql_string(name),
            self.interval_minutes,
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
        self.parts().iter().map(|p| self.command(p)).collect()
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

/// One statement of the configuration, by what it does.
#[derive(Clone, Copy, Debug)]
enum Part<'a> {
    /// What a planned failover leaves on the old primary and what an earlier configuration left on
    /// the secondary: removed when the step starts afresh, never on a resumed attempt (then it is
    /// this step's own work).
    RemoveStaleLink,
    RemoveStalePrimary,
    RemoveStaleSecondary,
    InitBackup,
    InitRestore,
    AddPrimary,
    AddSchedule(Role, &'a str),
    /// Job, schedule.
    Attach(Role, &'a str, &'a str),
    Enable(Role, &'a str),
    /// sp_add_log_shipping_alert_job on that side.
    AlertJob(Role),
    AddSecondaryPrimary,
    AddSecondaryDatabase,
    Link,
}

/// Running it: the live state of both sides decides which parts are still needed, so a step stopped
/// half-way (a crash, a failed statement) is finished on the next run, never called done early and
/// never doubled (no second schedule of one name). Done when both entries, the link and the three
/// jobs (enabled, scheduled) are all there.
impl ConfigureLogShipping {
    async fn read(&self, s: &mut Session<'_>) -> Result<(Side, Side), StepError> {
        let p = state::read(s, self.primary, &self.database, &self.primary_server).await?;
        let q = state::read(s, self.secondary, &self.database, &self.primary_server).await?;
        Ok((p, q))
    }

    fn side<'s>(&self, role: Role, sides: &'s (Side, Side)) -> &'s Side {
        if role == self.primary {
            &sides.0
        } else {
            &sides.1
        }
    }

    fn linked(&self, primary: &Side) -> bool {
        primary.secondaries.iter().any(|(server, db)| {
            server.eq_ignore_ascii_case(&self.secondary_server)
                && db.eq_ignore_ascii_case(&self.database)
        })
    }

    /// Whether `part` still has work to do. `fresh` is true when this step has not started before in
    /// this run, so that anything found is left over from before it.
    fn needed(&self, part: &Part<'_>, sides: &(Side, Side), fresh: bool) -> bool {
        let (primary, secondary) = (&sides.0, &sides.1);
        let configured = secondary.secondary_entry && secondary.secondary_database;
        match part {
            Part::RemoveStaleLink => fresh && self.linked(primary),
            Part::RemoveStalePrimary => fresh && primary.primary_entry,
            Part::RemoveStaleSecondary => fresh && secondary.secondary_database,
            Part::InitBackup | Part::InitRestore => !configured,
            Part::AddPrimary => !primary.primary_entry,
            Part::AddSchedule(role, name) => self.side(*role, sides).schedule_ids(name).is_empty(),
            Part::Attach(role, job, _) => self
                .side(*role, sides)
                .job(job)
                .is_none_or(|j| !j.scheduled),
            Part::Enable(role, job) => self.side(*role, sides).job(job).is_none_or(|j| !j.enabled),
            Part::AlertJob(role) => !self.side(*role, sides).alert_job,
            Part::AddSecondaryPrimary => !secondary.secondary_entry,
            Part::AddSecondaryDatabase => !secondary.secondary_database,
            Part::Link => !self.linked(primary),
        }
    }

    /// What is still missing, in words (empty when the configuration is complete).
    fn missing(&self, sides: &(Side, Side)) -> Vec<String> {
        self.parts()
            .iter()
            .filter(|p| {
                !matches!(
                    p,
                    Part::RemoveStaleLink
                        | Part::RemoveStalePrimary
                        | Part::RemoveStaleSecondary
                        | Part::InitBackup
                        | Part::InitRestore
                )
            })
            .filter(|p| self.needed(p, sides, false))
            .map(|p| match (p, self.command(p)) {
                (Part::AddSchedule(role, name), _) => {
                    format!("{role} has no schedule named `{name}`")
                }
                (_, Command::Sql { when: Some(w), .. }) => {
                    w.strip_prefix("only if ").unwrap_or(&w).to_owned()
                }
                (_, Command::Computed { what, .. }) => what,
                _ => String::new(),
            })
            .collect()
    }

    pub(crate) async fn check_done(&self, s: &mut Session<'_>) -> Result<bool, StepError> {
        if !self.from_capture.is_empty() {
            return Ok(false);
        }
        let sides = self.read(s).await?;
        Ok(self.missing(&sides).is_empty())
    }

    pub(crate) async fn run(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        if let Some(why) = self.unresolved() {
            return Err(StepError::Failed(why));
        }
        // Log shipping records server names as SQL Server knows them (`@@SERVERNAME`, reference
        // J.4); a runbook that names them otherwise would make links nothing ever matches. The
        // comparison ignores case as SQL Server does; what the procedures get is the server's own
        // spelling, so msdb reads as SQL Server's own setup would have written it.
        let mut this = self.clone();
        for (role, named) in [
            (self.primary, &mut this.primary_server),
            (self.secondary, &mut this.secondary_server),
        ] {
            let actual = probe::server_clock(s, role).await?.server_name;
            if !actual.eq_ignore_ascii_case(named) {
                return Err(StepError::Failed(format!(
                    "`{role}` calls itself `{actual}` (@@SERVERNAME), but the runbook names it `{named}`; set `server_name = \"{actual}\"` under [instances.{role}]"
                )));
            }
            *named = actual;
        }
        this.apply(s).await
    }

    /// The parts still needed, in order, with the server names as the servers spell them.
    async fn apply(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        let fresh = !s.retrying();
        let mut sides = self.read(s).await?;
        for part in self.parts() {
            if !self.needed(&part, &sides, fresh) {
                continue;
            }
            match (part, self.command(&part)) {
                (Part::Attach(role, job, schedule), _) => {
                    // The newest schedule of that name: the one this step just added, if several.
                    let Some(id) = self.side(role, &sides).schedule_ids(schedule).pop() else {
                        return Err(StepError::Failed(format!(
                            "no schedule named `{schedule}` exists on `{role}` to attach to job `{job}`"
                        )));
                    };
                    let text = format!(
                        "EXEC msdb.dbo.sp_attach_schedule @job_name = {}, @schedule_id = {id}",
                        sql_string(job)
                    );
                    s.execute_in_step(role, &text).await?;
                }
                // The primary's backup places its files where the primary keeps them; the secondary
                // may keep its own elsewhere (exec::relocate).
                (
                    Part::InitRestore,
                    Command::Sql {
                        instance,
                        database,
                        text,
                        when,
                    },
                ) => {
                    let moves = crate::exec::relocate::moves_for_backup(
                        s,
                        instance,
                        &self.initialize_file,
                        1,
                    )
                    .await?;
                    let command = Command::Sql {
                        instance,
                        database,
                        text: format!("{text}{moves}"),
                        when,
                    };
                    s.run_unconditionally(&command).await?
                }
                (Part::AddSchedule(role, name), Command::Computed { .. }) => {
                    let date = server_date(s, role).await?;
                    s.execute_in_step(role, &self.add_schedule(name, &date.to_string()))
                        .await?;
                }
                (_, command) => s.run_unconditionally(&command).await?,
            }
            // Read again the side the part changed: it may have created jobs and schedules whose
            // ids the next parts need.
            let role = match part {
                Part::RemoveStaleLink | Part::RemoveStalePrimary | Part::InitBackup => self.primary,
                Part::AddPrimary | Part::Link => self.primary,
                Part::AddSchedule(role, _)
                | Part::Attach(role, _, _)
                | Part::Enable(role, _)
                | Part::AlertJob(role) => role,
                _ => self.secondary,
            };
            let side = state::read(s, role, &self.database, &self.primary_server).await?;
            if role == self.primary {
                sides.0 = side;
            } else {
                sides.1 = side;
            }
        }
        Ok(())
    }

    pub(crate) async fn verify(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        let sides = self.read(s).await?;
        let missing = self.missing(&sides);
        if !missing.is_empty() {
            return Err(StepError::Failed(format!(
                "log shipping of `{}` is not complete: {}",
                self.database,
                missing.join("; ")
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

/// `role`'s own date as `yyyymmdd`, from `GETDATE()`: the server's local date is the one SQL Agent
/// compares `active_start_date` with, whatever this machine's clock or time zone says.
async fn server_date(s: &mut Session<'_>, role: Role) -> Result<i64, StepError> {
    let now = probe::server_clock(s, role).await?.local_now;
    yyyymmdd(&now).ok_or_else(|| {
        StepError::Failed(format!(
            "`{role}` answered GETDATE() with `{now}`, which is no date pcfail can read"
        ))
    })
}

/// `2026-11-29 23:10:15.000` -> 20261129.
fn yyyymmdd(datetime: &str) -> Option<i64> {
    let date = datetime.get(..10)?;
    let digits: String = date.split('-').collect();
    (digits.len() == 8 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::yyyymmdd;

    #[test]
    fn a_server_datetime_gives_its_date() {
        for (text, date) in [
            ("2026-11-29 23:10:15.000", Some(20261129)),
            ("1990-01-01 00:00:00.000", Some(19900101)),
            ("2026-11-2", None),
            ("", None),
            ("20261129 00:00", None),
        ] {
            assert_eq!(yyyymmdd(text), date, "{text}");
        }
    }
}
