//! A log-shipping backlog made on demand: what a secondary looks like after its restore job has
//! been stopped for a while, built in one call instead of hours of lab time.
//!
//! Benchmarks and tests need a backup instance with N log backups copied but not applied (and M
//! older ones applied long ago, as a real copy folder keeps 72 hours of them). Waiting for the
//! schedule would take N backup intervals; this runs the very jobs the scheduler runs (backup on
//! the primary, copy and restore on the backup instance) at lab times one `spacing` apart, so every
//! file, msdb row and LSN is exactly what those jobs make. The restore job is left disabled, as an
//! admin who paused it (or a restore job failing for hours) leaves it, so the backlog stays.
//!
//! Lab time moves forward by `count x spacing`; the caller advances its clock to the returned time
//! so the files are not in the future. Every job's next run is then scheduled from that time, so
//! nothing due in the jump runs afterwards.

use serde::{Deserialize, Serialize};

use super::agent;
use super::clock::LabTime;
use super::config::Role;
use super::world::World;

/// What to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backlog {
    /// Log backups taken, copied (unless `copied` is false) and NOT restored.
    pub pending: usize,
    /// Log backups taken, copied and restored before the pending ones (the copy folder's history).
    pub applied: usize,
    /// Whether the copy job copies the pending backups to the copy folder.
    pub copied: bool,
    /// Lab milliseconds between two backups; at least 1,000, because backup file names have whole
    /// seconds.
    pub spacing_ms: i64,
}

/// What was made, and the lab time after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BacklogMade {
    pub pending: usize,
    pub applied: usize,
    pub now: LabTime,
}

impl World {
    /// Makes `spec`'s backlog for the database log shipping sends from the primary to the backup
    /// instance, starting just after `now`. Errors name the job that failed and its message.
    pub fn make_backlog(&mut self, now: LabTime, spec: &Backlog) -> Result<BacklogMade, String> {
        if spec.spacing_ms < 1_000 {
            return Err("backups must be at least one second apart".to_owned());
        }
        let backup_job = self
            .inst(Role::Primary)
            .and_then(|i| i.msdb.ls_primary_databases.first())
            .map(|p| p.backup_job_id)
            .ok_or("the primary has no log-shipping primary database")?;
        let (copy_job, restore_job) = self
            .inst(Role::Backup)
            .and_then(|i| i.msdb.ls_secondary.first())
            .map(|s| (s.copy_job_id, s.restore_job_id))
            .ok_or("the backup instance has no log-shipping secondary")?;
        self.set_job_enabled(Role::Backup, restore_job, false);

        let mut t = now;
        for _ in 0..spec.applied {
            t = LabTime(t.0 + spec.spacing_ms);
            self.run_job_checked(Role::Primary, backup_job, t)?;
        }
        if spec.applied > 0 {
            self.run_job_checked(Role::Backup, copy_job, t)?;
            self.run_job_checked(Role::Backup, restore_job, t)?;
        }
        for _ in 0..spec.pending {
            t = LabTime(t.0 + spec.spacing_ms);
            self.run_job_checked(Role::Primary, backup_job, t)?;
        }
        if spec.copied && spec.pending > 0 {
            self.run_job_checked(Role::Backup, copy_job, t)?;
        }
        agent::reschedule_all(self, t);
        Ok(BacklogMade {
            pending: spec.pending,
            applied: spec.applied,
            now: t,
        })
    }

    fn set_job_enabled(&mut self, role: Role, job: super::guid::Guid, enabled: bool) {
        if let Some(j) = self
            .inst_mut(role)
            .and_then(|i| i.msdb.jobs.iter_mut().find(|j| j.job_id == job))
        {
            j.enabled = enabled;
        }
    }

    /// Runs one job and fails with its history message if it failed.
    fn run_job_checked(
        &mut self,
        role: Role,
        job: super::guid::Guid,
        at: LabTime,
    ) -> Result<(), String> {
        agent::run_job(self, role, job, at);
        let last = self
            .inst(role)
            .and_then(|i| i.job(job))
            .and_then(|j| j.history.last().cloned());
        match last {
            Some(run) if run.succeeded => Ok(()),
            Some(run) => Err(run.message),
            None => Err("the job left no history".to_owned()),
        }
    }
}
