//! SQL Server Agent in the lab: the msdb job procedures (sp_add_schedule, sp_attach_schedule,
//! sp_update_job, sp_start_job) and the scheduler that runs due log-shipping jobs on each tick:
//! backup (log backup into the share, `.wrk` renamed to `.trn`), copy, and restore (reference A.3, A.4).

use std::path::{Path, PathBuf};

use pcfail_lab_tds::{SqlType, Value};

use super::backup::{record_backup_history, take_backup};
use super::backupfile::{self, BackupFile};
use super::errors::SqlError;
use super::exec::Ctx;
use super::guid::Guid;
use super::lsn::{LogFit, log_fit};
use super::model::Job;
use super::model::{DbState, JobKind, JobRun, LsSecondary, MirrorRole, Schedule};
use super::paths;
use super::procs::{Args, ProcFail, ProcOut, guid_out};
use super::restore::{Finish, apply_log};
use super::world::{RunningJob, RunningRequest, SessionInfo, World};
use super::{LabTime, Role, time};

pub(crate) fn proc(ctx: &mut Ctx, proc: &str, a: &Args) -> Result<ProcOut, ProcFail> {
    let fail = |e: SqlError| Ok(ProcOut::failed(e, proc));
    let (role, now) = (ctx.role, ctx.now);
    match proc {
        "sp_add_schedule" => {
            let name = a.req("@schedule_name")?;
            let (id, uid) = add_schedule(ctx, name, a);
            Ok(schedule_outputs(id, uid))
        }
        "sp_add_jobschedule" => {
            // The older form: a schedule created for, and attached to, one job.
            let job = match find_job(ctx.world, role, a) {
                Ok(j) => j,
                Err(e) => return fail(e),
            };
            let name = a.req("@name")?;
            let (id, uid) = add_schedule(ctx, name, a);
            if let Some(inst) = ctx.world.inst_mut(role) {
                inst.msdb.job_schedules.push((job, id));
            }
            reschedule(ctx.world, role, job, now);
            Ok(schedule_outputs(id, uid))
        }
        "sp_delete_job" => {
            let job = match find_job(ctx.world, role, a) {
                Ok(j) => j,
                Err(e) => return fail(e),
            };
            super::log_shipping::remove_jobs(ctx.world, role, &[job]);
            Ok(ProcOut::ok())
        }
        "sp_attach_schedule" => {
            let job = match find_job(ctx.world, role, a) {
                Ok(j) => j,
                Err(e) => return fail(e),
            };
            let inst = ctx.world.inst_mut(role).expect("session's instance");
            let schedule = match (a.int("@schedule_id"), a.str("@schedule_name")) {
                (Some(id), _) => inst
                    .msdb
                    .schedules
                    .iter()
                    .find(|s| s.schedule_id == id)
                    .map(|s| s.schedule_id)
                    .ok_or_else(|| SqlError::new(14262, &["@schedule_id", &id.to_string()])),
                (None, Some(name)) => {
                    let named: Vec<i64> = inst
                        .msdb
                        .schedules
                        .iter()
                        .filter(|s| s.name.eq_ignore_ascii_case(&name))
                        .map(|s| s.schedule_id)
                        .collect();
                    match named.as_slice() {
                        [] => Err(SqlError::new(14262, &["@schedule_name", &name])),
                        [id] => Ok(*id),
                        // Reference J.4: two schedules of one name cannot be told apart by name.
                        _ => Err(SqlError::new(
                            14371,
                            &[&name, "@schedule_id", "@schedule_name"],
                        )),
                    }
                }
                (None, None) => Err(SqlError::new(201, &[proc, "@schedule_id"])),
            };
            let schedule = match schedule {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            if !inst.msdb.job_schedules.contains(&(job, schedule)) {
                inst.msdb.job_schedules.push((job, schedule));
            }
            reschedule(ctx.world, role, job, now);
            Ok(ProcOut::ok())
        }
        "sp_update_job" => {
            let job = match find_job(ctx.world, role, a) {
                Ok(j) => j,
                Err(e) => return fail(e),
            };
            let inst = ctx.world.inst_mut(role).expect("session's instance");
            let j = inst
                .msdb
                .jobs
                .iter_mut()
                .find(|j| j.job_id == job)
                .expect("found above");
            if let Some(enabled) = a.int("@enabled") {
                j.enabled = enabled != 0;
            }
            if let Some(new_name) = a.str("@new_name") {
                j.name = new_name;
            }
            reschedule(ctx.world, role, job, now);
            Ok(ProcOut::ok())
        }
        "sp_start_job" => {
            let job = match find_job(ctx.world, role, a) {
                Ok(j) => j,
                Err(e) => return fail(e),
            };
            let name = ctx
                .world
                .inst(role)
                .and_then(|i| i.job(job))
                .map(|j| j.name.clone())
                .unwrap_or_default();
            // SQL Agent runs the job asynchronously; the lab runs it before returning, so a test sees its
            // effect as soon as sp_start_job answers.
            run_job(ctx.world, role, job, now);
            ctx.info(SqlError::new(14243, &[&name]));
            Ok(ProcOut::ok())
        }
        _ => Err(SqlError::new(2812, &[proc]).into()),
    }
}

fn add_schedule(ctx: &mut Ctx, name: String, a: &Args) -> (i64, Guid) {
    let uid = ctx.world.rng.guid();
    let now = ctx.now;
    let inst = ctx.world.inst_mut(ctx.role).expect("session's instance");
    let id = inst.msdb.next_id();
    inst.msdb.schedules.push(Schedule {
        schedule_id: id,
        schedule_uid: uid,
        name,
        enabled: a.int("@enabled").unwrap_or(1) == 1,
        freq_type: a.int("@freq_type").unwrap_or(0),
        freq_interval: a.int("@freq_interval").unwrap_or(0),
        freq_subday_type: a.int("@freq_subday_type").unwrap_or(0),
        freq_subday_interval: a.int("@freq_subday_interval").unwrap_or(0),
        freq_recurrence_factor: a.int("@freq_recurrence_factor").unwrap_or(0),
        active_start_date: a
            .int("@active_start_date")
            .unwrap_or_else(|| time::date_int(now)),
        active_end_date: a.int("@active_end_date").unwrap_or(99_991_231),
        active_start_time: a.int("@active_start_time").unwrap_or(0),
        active_end_time: a.int("@active_end_time").unwrap_or(235_959),
    });
    (id, uid)
}

fn schedule_outputs(id: i64, uid: Guid) -> ProcOut {
    ProcOut::with_outputs(vec![
        guid_out("@schedule_uid", uid),
        ("@schedule_id".to_owned(), (SqlType::Int, Value::Int(id))),
    ])
}

/// A job by @job_id or @job_name (14262 when it does not exist).
fn find_job(world: &World, role: Role, a: &Args) -> Result<Guid, SqlError> {
    let inst = world.inst(role).expect("session's instance");
    if let Some(id) = a.guid("@job_id") {
        return inst
            .job(id)
            .map(|j| j.job_id)
            .ok_or_else(|| SqlError::new(14262, &["@job_id", &id.to_string()]));
    }
    if let Some(name) = a.str("@job_name") {
        return inst
            .msdb
            .jobs
            .iter()
            .find(|j| j.name.eq_ignore_ascii_case(&name))
            .map(|j| j.job_id)
            .ok_or_else(|| SqlError::new(14262, &["@job_name", &name]));
    }
    Err(SqlError {
        number: 14294,
        class: 16,
        state: 1,
        text: "Supply either @job_id or @job_name to identify the job.".to_owned(),
        procedure: String::new(),
    })
}

/// The job's period: the shortest enabled schedule attached to it.
fn period(world: &World, role: Role, job: Guid) -> Option<i64> {
    let inst = world.inst(role)?;
    inst.msdb
        .job_schedules
        .iter()
        .filter(|(j, _)| *j == job)
        .filter_map(|(_, s)| {
            inst.msdb
                .schedules
                .iter()
                .find(|x| x.schedule_id == *s && x.enabled)
        })
        .map(Schedule::period_ms)
        .min()
}

/// The next run: the first multiple of the period (counted from midnight UTC) after `now`.
fn next_boundary(now: LabTime, period: i64) -> LabTime {
    let midnight = now.0 - now.0.rem_euclid(86_400_000);
    let since = now.0 - midnight;
    LabTime(midnight + (since / period + 1) * period)
}

/// Schedules every job's next run from `now`, as if the scheduler had just looked: after lab time
/// jumps (a made backlog), nothing that fell due inside the jump runs late.
pub(crate) fn reschedule_all(world: &mut World, now: LabTime) {
    for role in Role::ALL {
        let ids: Vec<Guid> = world
            .inst(role)
            .map(|i| i.msdb.jobs.iter().map(|j| j.job_id).collect())
            .unwrap_or_default();
        for id in ids {
            reschedule(world, role, id, now);
        }
    }
}

pub(crate) fn reschedule(world: &mut World, role: Role, job: Guid, now: LabTime) {
    let p = period(world, role, job);
    if let Some(j) = world
        .inst_mut(role)
        .and_then(|i| i.msdb.jobs.iter_mut().find(|j| j.job_id == job))
    {
        j.next_run = match (j.enabled, p) {
            (true, Some(p)) => Some(next_boundary(now, p)),
            _ => None,
        };
    }
}

/// Runs every enabled, scheduled job that is due; missed runs while the lab was stopped collapse into one.
/// A job still running is not started again (SQL Server Agent does not run a job twice at once), and
/// disabling it does not stop the run under way.
pub(crate) fn run_due_jobs(world: &mut World, now: LabTime) {
    finish_running_jobs(world, now);
    for role in Role::ALL {
        if !world.is_up(role) {
            continue;
        }
        let jobs: Vec<(Guid, bool, Option<LabTime>)> = world
            .inst(role)
            .map(|i| {
                i.msdb
                    .jobs
                    .iter()
                    .map(|j| (j.job_id, j.enabled, j.next_run))
                    .collect()
            })
            .unwrap_or_default();
        for (id, enabled, next) in jobs {
            let Some(p) = period(world, role, id).filter(|_| enabled) else {
                continue;
            };
            if world.rt.running_jobs.iter().any(|r| r.job == id) {
                continue;
            }
            match next {
                None => reschedule(world, role, id, now),
                Some(t) if t <= now => {
                    run_job(world, role, id, now);
                    if let Some(j) = world
                        .inst_mut(role)
                        .and_then(|i| i.msdb.jobs.iter_mut().find(|j| j.job_id == id))
                    {
                        j.next_run = Some(next_boundary(now, p));
                    }
                }
                Some(_) => {}
            }
        }
    }
}

/// A restore job whose run takes time (a "job" fault rule, docs/lab.md): it starts now and works
/// until `run` has passed, its RESTORE LOG visible as a request of an Agent session (so
/// sys.dm_exec_requests shows it and a competing RESTORE gets 3101), and msdb.dbo.sysjobactivity shows
/// it running. Its files are restored when it ends (`finish_running_jobs`).
fn start_long_run(
    world: &mut World,
    role: Role,
    job: &Job,
    run: std::time::Duration,
    now: LabTime,
) {
    let database = job
        .ls_id
        .and_then(|id| {
            world.inst(role).and_then(|i| {
                i.msdb
                    .ls_secondary_databases
                    .iter()
                    .find(|d| d.secondary_id == id)
                    .map(|d| d.secondary_database.clone())
            })
        })
        .unwrap_or_else(|| "master".to_owned());
    let info = SessionInfo {
        spid: 0,
        login: "NT SERVICE\\SQLSERVERAGENT".to_owned(),
        host: world
            .inst(role)
            .map(|i| i.config.name.clone())
            .unwrap_or_default(),
        program: format!("SQLAgent - TSQL JobStep (Job {} : Step 1)", job.name),
        database: "master".to_owned(),
        login_time: now,
        last_batch: now,
        token: tokio_util::sync::CancellationToken::new(),
        virtual_end: Some(None),
        serial: 0,
        busy: true,
        orphaned: false,
        request: Some(RunningRequest {
            command: "RESTORE LOG".to_owned(),
            database: Some(database),
            exclusive: true,
            start: now,
            began: std::time::Instant::now(),
            total: run,
        }),
    };
    let (spid, _) = world.open_session(role, info);
    world.rt.running_jobs.push(RunningJob {
        role,
        job: job.job_id,
        spid,
        until: std::time::Instant::now() + run,
    });
    if let Some(j) = world
        .inst_mut(role)
        .and_then(|i| i.msdb.jobs.iter_mut().find(|j| j.job_id == job.job_id))
    {
        j.running_since = Some(now);
    }
}

/// Ends the long job runs whose time is up: their work is done now, and recorded.
fn finish_running_jobs(world: &mut World, now: LabTime) {
    let due: Vec<RunningJob> = world
        .rt
        .running_jobs
        .iter()
        .filter(|r| r.until <= std::time::Instant::now())
        .cloned()
        .collect();
    for r in due {
        world.rt.running_jobs.retain(|x| x.job != r.job);
        world.close_session(r.role, r.spid);
        run_job_now(world, r.role, r.job, now);
    }
}

/// Runs one job now and records its outcome in the job's history (msdb.dbo.sysjobhistory); a restore
/// job a "job" fault rule makes slow starts running instead (`start_long_run`).
pub(crate) fn run_job(world: &mut World, role: Role, job: Guid, now: LabTime) {
    let Some(j) = world.inst(role).and_then(|i| i.job(job)).cloned() else {
        return;
    };
    if j.kind == JobKind::LsRestore
        && let Some(run) = super::faults::match_job(world, role, "restore", now)
    {
        start_long_run(world, role, &j, run, now);
        return;
    }
    run_job_now(world, role, job, now);
}

fn run_job_now(world: &mut World, role: Role, job: Guid, now: LabTime) {
    let Some(j) = world.inst(role).and_then(|i| i.job(job)).cloned() else {
        // Deleted while it ran (sp_delete_job): the run's work is lost with its configuration.
        return;
    };
    let outcome = match (j.kind, j.ls_id) {
        (JobKind::LsBackup, Some(id)) => backup_job(world, role, id, now),
        (JobKind::LsCopy, Some(id)) => copy_job(world, role, id, now),
        (JobKind::LsRestore, Some(id)) => restore_job(world, role, id, now),
        _ => Ok("The job has no steps the lab can run.".to_owned()),
    };
    let (succeeded, message) = match outcome {
        Ok(m) => (true, m),
        Err(m) => (false, m),
    };
    if let Some(j) = world
        .inst_mut(role)
        .and_then(|i| i.msdb.jobs.iter_mut().find(|j| j.job_id == job))
    {
        j.running_since = None;
        j.history.push(JobRun {
            at: now,
            succeeded,
            message,
        });
        // Keep the history bounded like msdb's job history retention.
        if j.history.len() > 200 {
            j.history.remove(0);
        }
    }
}

/// The log backup job: BACKUP LOG into `<backup_directory>/<db>_<yyyymmddhhmmss>.trn` (UTC), written
/// as `.wrk` first and renamed once complete (message 32029).
fn backup_job(
    world: &mut World,
    role: Role,
    primary_id: Guid,
    now: LabTime,
) -> Result<String, String> {
    let inst = world.inst(role).ok_or("no instance")?;
    let row = inst
        .msdb
        .ls_primary_databases
        .iter()
        .find(|p| p.primary_id == primary_id)
        .ok_or("log shipping primary entry is gone")?
        .clone();
    let db = inst
        .db(&row.primary_database)
        .ok_or_else(|| format!("Database {} does not exist.", row.primary_database))?;
    if db.state != DbState::Online
        || db.standby
        || db
            .mirroring
            .as_ref()
            .is_some_and(|m| m.role == MirrorRole::Mirror)
    {
        // On a mirror (or a restoring copy) the backup job has nothing to back up: skipped, as sqllogship does.
        return Ok(format!(
            "Database {} is not the active copy; backup skipped.",
            row.primary_database
        ));
    }
    // Named by UTC (reference A.4, widely relied on but UNVERIFIED), or by the primary's local time
    // under the `trn_name_time` variant: the lab's ATL servers run at a fixed UTC-05:00.
    let named_at = if world.config.variants.get("trn_name_time") == "local" {
        LabTime(now.0 - LOCAL_OFFSET_MS)
    } else {
        now
    };
    let base = format!("{}_{}", row.primary_database, time::stamp(named_at));
    // The folder is checked before the backup is taken: a backup that cannot be written must not
    // move the log chain on, or the next file would leave a gap.
    let dir = paths::folder(world, role, &row.backup_directory)?;
    let trn = dir.real.join(format!("{base}.trn"));
    let wrk = dir.real.join(format!("{base}.wrk"));
    let trn_s = paths::join_shown(&row.backup_directory, &format!("{base}.trn"));
    if trn.exists() {
        return Ok(format!(
            "{trn_s} already exists; nothing to do this second."
        ));
    }
    let set_guid = world.rng.guid();
    let media = world.rng.guid();
    let mut set = take_backup(
        world,
        role,
        &row.primary_database,
        true,
        false,
        now,
        set_guid,
        1,
    )
    .map_err(|e| e.text)?;
    // The lab's servers run with `backup checksum default` on, so log-shipping backups carry
    // checksums and RESTORE VERIFYONLY ... WITH CHECKSUM can check them (docs/lab.md).
    set.checksums = true;
    let wrk_path = backupfile::local(&wrk);
    backupfile::write(
        &wrk_path,
        &BackupFile {
            media_set_guid: media,
            sets: vec![set.clone()],
        },
    )
    .map_err(|e| e.text)?;
    std::fs::rename(&wrk, &trn).map_err(|e| format!("rename {}: {e}", wrk_path.shown))?;
    record_backup_history(world, role, &set, &trn_s);
    let server = world
        .inst(role)
        .map(|i| i.config.name.clone())
        .unwrap_or_default();
    if let Some(p) = world.inst_mut(role).and_then(|i| {
        i.msdb
            .ls_primary_databases
            .iter_mut()
            .find(|p| p.primary_id == primary_id)
    }) {
        p.last_backup_file = Some(trn_s.clone());
        p.last_backup_date = Some(now);
    }
    world.sync_mirrors();
    let stem = paths::join_shown(&row.backup_directory, &base);
    Ok(SqlError::new(32029, &[&server, &stem, &stem]).text)
}

/// The primary's local time zone under the `trn_name_time = local` variant: Eastern Standard Time.
const LOCAL_OFFSET_MS: i64 = 5 * 3_600_000;

/// `.trn` files for `db` in `dir`, sorted by name (their UTC timestamps make that chronological).
fn trn_files(dir: &Path, db: &str) -> Vec<PathBuf> {
    let prefix = format!("{}_", db.to_lowercase());
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    let name = p
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or("")
                        .to_lowercase();
                    name.starts_with(&prefix) && name.ends_with(".trn")
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn file_name(p: &str) -> String {
    Path::new(p)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(p)
        .to_owned()
}

/// The copy and restore jobs' log_shipping_secondary row, cloned so the job can change the world as
/// it works; the error is the job's history message.
fn secondary_row(world: &World, role: Role, secondary_id: Guid) -> Result<LsSecondary, String> {
    let inst = world.inst(role).ok_or("no instance")?;
    Ok(inst
        .msdb
        .ls_secondary
        .iter()
        .find(|s| s.secondary_id == secondary_id)
        .ok_or("log shipping secondary entry is gone")?
        .clone())
}

/// The copy job: every `.trn` newer than last_copied_file goes from the share to the copy folder.
fn copy_job(
    world: &mut World,
    role: Role,
    secondary_id: Guid,
    now: LabTime,
) -> Result<String, String> {
    let row = secondary_row(world, role, secondary_id)?;
    let last = row
        .last_copied_file
        .as_deref()
        .map(file_name)
        .unwrap_or_default();
    let source = paths::folder(world, role, &row.backup_source_directory)?;
    let dest =
        paths::resolve(world, role, &row.backup_destination_directory).map_err(|e| e.text)?;
    let dest_dir = dest.real;
    std::fs::create_dir_all(&dest_dir).map_err(|e| format!("{}: {e}", dest.shown))?;
    let mut copied = 0;
    for src in trn_files(&source.real, &row.primary_database) {
        let name = src
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_owned();
        if name.to_lowercase() <= last.to_lowercase() {
            continue;
        }
        let target = dest_dir.join(&name);
        // Copy under a temporary name, so the restore job never reads half a file.
        let tmp = dest_dir.join(format!("{name}.tmp"));
        std::fs::copy(&src, &tmp).map_err(|e| format!("copy {}: {e}", src.display()))?;
        std::fs::rename(&tmp, &target).map_err(|e| format!("rename {}: {e}", tmp.display()))?;
        copied += 1;
        let dest_s = paths::join_shown(&row.backup_destination_directory, &name);
        if let Some(inst) = world.inst_mut(role) {
            if let Some(s) = inst
                .msdb
                .ls_secondary
                .iter_mut()
                .find(|s| s.secondary_id == secondary_id)
            {
                s.last_copied_file = Some(dest_s.clone());
                s.last_copied_date = Some(now);
            }
            for d in inst
                .msdb
                .ls_secondary_databases
                .iter_mut()
                .filter(|d| d.secondary_id == secondary_id)
            {
                d.monitor_last_copied_file = Some(dest_s.clone());
                d.monitor_last_copied_date = Some(now);
            }
        }
    }
    Ok(format!("Copied {copied} file(s)."))
}

/// The restore job: copied files in order; already-applied ones are skipped, a gap stops the job.
fn restore_job(
    world: &mut World,
    role: Role,
    secondary_id: Guid,
    now: LabTime,
) -> Result<String, String> {
    let row = secondary_row(world, role, secondary_id)?;
    let inst = world.inst(role).ok_or("no instance")?;
    let dbs: Vec<_> = inst
        .msdb
        .ls_secondary_databases
        .iter()
        .filter(|d| d.secondary_id == secondary_id)
        .cloned()
        .collect();
    let folder = paths::folder(world, role, &row.backup_destination_directory)?;
    let mut files = trn_files(&folder.real, &row.primary_database);
    if world.config.variants.get("restore_job_order") == "lsn" {
        // The other reading of reference A.4: by the headers' FirstLSN; unreadable files last.
        let first_lsn = |f: &PathBuf| {
            backupfile::read(&backupfile::local(f))
                .ok()
                .and_then(|b| b.sets.first().map(|s| s.first_lsn))
        };
        files.sort_by_key(|f| (first_lsn(f).is_none(), first_lsn(f)));
    }
    let mut restored = 0;
    for sdb in dbs {
        if sdb.disconnect_users {
            world.disconnect_users_of(role, &sdb.secondary_database, None);
        }
        for f in &files {
            let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let path = paths::join_shown(&row.backup_destination_directory, name);
            let Some(d) = world.inst(role).and_then(|i| i.db(&sdb.secondary_database)) else {
                return Err(format!(
                    "Database {} does not exist.",
                    sdb.secondary_database
                ));
            };
            let Some(redo) = d.redo_start_lsn else {
                return Err(SqlError::new(3117, &[]).text);
            };
            let file = backupfile::read(&backupfile::local(f))
                .map_err(|e| e.text.replace(&f.to_string_lossy().into_owned(), &path))?;
            let Some(set) = file.sets.first() else {
                continue;
            };
            if set.damaged {
                return Err(SqlError::new(3183, &["1", "4242", &set.database_name]).text);
            }
            match log_fit(set.first_lsn, set.last_lsn, redo) {
                LogFit::TooEarly => continue,
                LogFit::TooRecent => {
                    return Err(SqlError::new(
                        4305,
                        &[&set.first_lsn.to_string(), &redo.to_string()],
                    )
                    .text);
                }
                LogFit::Applies => {}
            }
            let finish = if sdb.restore_mode {
                let undo = format!("{}_standby.tuf", sdb.secondary_database);
                Finish::Standby(paths::LabPath {
                    shown: paths::join_shown(&row.backup_destination_directory, &undo),
                    real: folder.real.join(undo),
                })
            } else {
                Finish::NoRecovery
            };
            apply_log(
                world,
                role,
                None,
                &sdb.secondary_database,
                set,
                &path,
                &finish,
                "NT SERVICE\\SQLSERVERAGENT",
                now,
            )
            .map_err(|e| e.text)?;
            restored += 1;
            let latency = (now.0 - set.backup_finish_date.0) / 60_000;
            if let Some(d) = world.inst_mut(role).and_then(|i| {
                i.msdb.ls_secondary_databases.iter_mut().find(|d| {
                    d.secondary_database
                        .eq_ignore_ascii_case(&sdb.secondary_database)
                })
            }) {
                d.last_restored_file = Some(path.clone());
                d.last_restored_date = Some(now);
                d.last_restored_latency = Some(latency);
            }
            if !sdb.restore_all {
                break;
            }
        }
    }
    world.sync_mirrors();
    Ok(format!("Restored {restored} file(s)."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_run_on_period_boundaries_from_midnight() {
        let minute = 60_000;
        let midnight = LabTime(1_709_251_200_000); // 2024-03-01 00:00 UTC
        let cases = [
            (
                LabTime(midnight.0),
                15 * minute,
                LabTime(midnight.0 + 15 * minute),
            ),
            (
                LabTime(midnight.0 + 14 * minute),
                15 * minute,
                LabTime(midnight.0 + 15 * minute),
            ),
            (
                LabTime(midnight.0 + 15 * minute),
                15 * minute,
                LabTime(midnight.0 + 30 * minute),
            ),
            (
                LabTime(midnight.0 + 7 * minute + 1),
                5 * minute,
                LabTime(midnight.0 + 10 * minute),
            ),
        ];
        for (now, p, expected) in cases {
            assert_eq!(next_boundary(now, p), expected);
        }
    }
}
