//! What log shipping between the two instances looks like right now, read from msdb on both sides
//! (reference A.1, G): the primary's and the secondary's entries, the link between them, and the Agent
//! jobs with their schedules. The configure step decides from it which of its statements are still
//! needed, so a run stopped half-way finishes the job instead of calling it done or doing it twice.
//!
//! The lab's T-SQL (like some tools) takes one join per query, so each table is read on its own and
//! joined here.

use crate::exec::{Session, StepError};
use crate::runbook::Role;
use crate::sql::{Param, ResultSet};

/// An Agent job by name: whether it is enabled and has a schedule attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Job {
    pub enabled: bool,
    pub scheduled: bool,
}

/// One instance's msdb, as far as log shipping of one database goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Side {
    /// `log_shipping_primary_databases` has the database.
    pub primary_entry: bool,
    /// `log_shipping_primary_secondaries`: (secondary server, secondary database) pairs.
    pub secondaries: Vec<(String, String)>,
    /// `log_shipping_secondary` has an entry for (primary server, primary database).
    pub secondary_entry: bool,
    /// `log_shipping_secondary_databases` has the database.
    pub secondary_database: bool,
    /// Agent jobs by name.
    pub jobs: Vec<(String, Job)>,
    /// Agent schedules: (schedule_id, name).
    pub schedules: Vec<(i64, String)>,
    /// `log_shipping_monitor_alert` names a job that exists: sp_add_log_shipping_alert_job checks
    /// for the job, so a row left by a deleted job does not count.
    pub alert_job: bool,
}

impl Side {
    pub(crate) fn job(&self, name: &str) -> Option<&Job> {
        self.jobs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, j)| j)
    }

    /// The ids of the schedules named `name`, oldest first (SQL Server allows several, J.4).
    pub(crate) fn schedule_ids(&self, name: &str) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .schedules
            .iter()
            .filter(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }
}

/// Reads `role`'s side for database `db` shipped from `primary_server`.
pub(crate) async fn read(
    s: &mut Session<'_>,
    role: Role,
    db: &str,
    primary_server: &str,
) -> Result<Side, StepError> {
    let text = |set: &ResultSet, row: &[crate::sql::Value], c: &str| {
        set.get(row, c).as_str().unwrap_or("").to_owned()
    };
    let primaries = s
        .query(
            role,
            "SELECT primary_database FROM msdb.dbo.log_shipping_primary_databases WHERE primary_database = @P1",
            &[Param::Str(db)],
        )
        .await?;
    let links = s
        .query(
            role,
            "SELECT secondary_server, secondary_database FROM msdb.dbo.log_shipping_primary_secondaries",
            &[],
        )
        .await?;
    let secondary = s
        .query(
            role,
            "SELECT primary_server FROM msdb.dbo.log_shipping_secondary WHERE primary_database = @P1",
            &[Param::Str(db)],
        )
        .await?;
    let secondary_databases = s
        .query(
            role,
            "SELECT secondary_database FROM msdb.dbo.log_shipping_secondary_databases WHERE secondary_database = @P1",
            &[Param::Str(db)],
        )
        .await?;
    let jobs = s
        .query(
            role,
            "SELECT job_id, name, enabled FROM msdb.dbo.sysjobs",
            &[],
        )
        .await?;
    let attached = s
        .query(
            role,
            "SELECT job_id, schedule_id FROM msdb.dbo.sysjobschedules",
            &[],
        )
        .await?;
    let schedules = s
        .query(
            role,
            "SELECT schedule_id, name FROM msdb.dbo.sysschedules",
            &[],
        )
        .await?;
    let alert = s
        .query(
            role,
            "SELECT alert_job_id FROM msdb.dbo.log_shipping_monitor_alert",
            &[],
        )
        .await?;
    let alert_job = alert.rows.iter().any(|a| {
        alert.get(a, "alert_job_id").as_str().is_some_and(|id| {
            jobs.rows.iter().any(|j| {
                jobs.get(j, "job_id")
                    .as_str()
                    .is_some_and(|j| j.eq_ignore_ascii_case(id))
            })
        })
    });
    let scheduled = |job_id: &str| {
        attached.rows.iter().any(|r| {
            attached
                .get(r, "job_id")
                .as_str()
                .is_some_and(|id| id.eq_ignore_ascii_case(job_id))
        })
    };
    Ok(Side {
        primary_entry: !primaries.rows.is_empty(),
        secondaries: links
            .rows
            .iter()
            .map(|r| {
                (
                    text(&links, r, "secondary_server"),
                    text(&links, r, "secondary_database"),
                )
            })
            .collect(),
        secondary_entry: secondary
            .rows
            .iter()
            .any(|r| text(&secondary, r, "primary_server").eq_ignore_ascii_case(primary_server)),
        secondary_database: !secondary_databases.rows.is_empty(),
        jobs: jobs
            .rows
            .iter()
            .map(|r| {
                (
                    text(&jobs, r, "name"),
                    Job {
                        enabled: jobs.get(r, "enabled").as_i64() == Some(1),
                        scheduled: scheduled(&text(&jobs, r, "job_id")),
                    },
                )
            })
            .collect(),
        schedules: schedules
            .rows
            .iter()
            .filter_map(|r| {
                Some((
                    schedules.get(r, "schedule_id").as_i64()?,
                    text(&schedules, r, "name"),
                ))
            })
            .collect(),
        alert_job,
    })
}
