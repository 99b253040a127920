//! BACKUP DATABASE / BACKUP LOG (reference F): backup sets appended to (NOINIT) or replacing (INIT,
//! FORMAT) a file in the lab's format, the log chain they advance, and the msdb history they leave.
//!
//! Every failure is the specific error followed by 3013 "BACKUP DATABASE|LOG is terminating abnormally.".

use super::backupfile::{self, BackupFile, BackupSet};
use super::errors::SqlError;
use super::exec::{Ctx, Step, Work};
use super::guid::Guid;
use super::model::{BackupSetRow, MediaFamilyRow, Recovery};
use super::parser::{Backup, Opt};
use super::paths::{self, LabPath};
use super::world::World;
use super::{LabTime, Role};

const KNOWN_OPTIONS: &[&str] = &[
    "INIT",
    "NOINIT",
    "FORMAT",
    "NOFORMAT",
    "COPY_ONLY",
    "CHECKSUM",
    "NO_CHECKSUM",
    "COMPRESSION",
    "NO_COMPRESSION",
    "STATS",
    "SKIP",
    "NOSKIP",
    "NAME",
    "DESCRIPTION",
    "MEDIANAME",
    "NOREWIND",
    "REWIND",
    "NOUNLOAD",
    "UNLOAD",
    "NORECOVERY",
    "NO_TRUNCATE",
    "CONTINUE_AFTER_ERROR",
    "STOP_ON_ERROR",
    "BUFFERCOUNT",
    "MAXTRANSFERSIZE",
    "BLOCKSIZE",
];

pub(crate) fn has(opts: &[Opt], name: &str) -> bool {
    opts.iter().any(|o| o.name == name)
}

/// A BACKUP statement with its arguments evaluated and its device resolved: what runs at once, or
/// after the statement's run time (request.rs). Nothing has changed yet.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    op: &'static str,
    log: bool,
    db: String,
    path: String,
    device: LabPath,
    options: Vec<Opt>,
    set_name: Option<String>,
    description: Option<String>,
}

impl Plan {
    /// `BACKUP LOG ... WITH NORECOVERY`: a tail-log backup, which leaves the database RESTORING.
    fn tail(&self) -> bool {
        self.log && has(&self.options, "NORECOVERY")
    }
}

/// Runs a BACKUP at once (no run time).
pub(crate) fn backup(ctx: &mut Ctx, b: &Backup) -> Step {
    match plan(ctx, b) {
        Ok(p) => apply(ctx, p),
        Err(e) => Step::Failed(e),
    }
}

fn failed(op: &str, e: SqlError) -> Vec<SqlError> {
    if e.number == super::errors::NOT_MODELLED {
        // The lab's own error stands alone: 3013 would pretend SQL Server had tried.
        return vec![e];
    }
    vec![e, SqlError::terminating(op)]
}

/// Evaluates the statement: options, the database name, the device (3201 for a path the instance
/// does not have).
pub(crate) fn plan(ctx: &mut Ctx, b: &Backup) -> Result<Plan, Vec<SqlError>> {
    let op = if b.log {
        "BACKUP LOG"
    } else {
        "BACKUP DATABASE"
    };
    plan_inner(ctx, b, op).map_err(|e| failed(op, e))
}

fn plan_inner(ctx: &mut Ctx, b: &Backup, op: &'static str) -> Result<Plan, SqlError> {
    if let Some(o) = b
        .options
        .iter()
        .find(|o| !KNOWN_OPTIONS.contains(&o.name.as_str()))
    {
        return Err(SqlError::syntax(&o.name));
    }
    if ctx.local.trancount > 0 {
        return Err(SqlError::new(3021, &[]));
    }
    let db = ctx.eval_text(&b.db)?.unwrap_or_default();
    let path = match b.disks.as_slice() {
        [one] => ctx.eval_text(one)?.unwrap_or_default(),
        // Striped backups are outside the lab's model.
        _ => return Err(SqlError::syntax("DISK")),
    };
    let text_opt = |n: &str| {
        b.options
            .iter()
            .find(|o| o.name == n)
            .and_then(|o| o.value.as_ref())
    };
    let set_name = text_opt("NAME")
        .map(|e| ctx.eval_text(e))
        .transpose()?
        .flatten();
    let description = text_opt("DESCRIPTION")
        .map(|e| ctx.eval_text(e))
        .transpose()?
        .flatten();
    let device = paths::resolve(ctx.world, ctx.role, &path)?;
    Ok(Plan {
        op,
        log: b.log,
        db,
        path,
        device,
        options: b.options.clone(),
        set_name,
        description,
    })
}

/// The checks SQL Server makes before a backup starts; what it works on. Changes nothing.
pub(crate) fn check(ctx: &Ctx, p: &Plan) -> Result<Work, Vec<SqlError>> {
    let (name, bytes) = check_inner(ctx, p).map_err(|e| failed(p.op, e))?;
    // A tail-log backup holds the database exclusively; an ordinary one only uses it.
    Ok(Work::new(p.op, Some(name), p.tail(), bytes))
}

/// The database's own name and the bytes the backup will write.
fn check_inner(ctx: &Ctx, p: &Plan) -> Result<(String, u64), SqlError> {
    let inst = ctx
        .world
        .inst(ctx.role)
        .ok_or_else(|| SqlError::new(911, &[&p.db]))?;
    let db = inst.db(&p.db).ok_or_else(|| SqlError::new(911, &[&p.db]))?;
    if db.standby {
        return Err(SqlError::new(3036, &[&db.name]));
    }
    if db.is_restoring() {
        // UNVERIFIED which number SQL Server raises here; 927 says what is wrong in the same words.
        return Err(SqlError::new(927, &[&db.name]));
    }
    if p.log && db.recovery == Recovery::Simple {
        return Err(SqlError::new(4208, &["BACKUP LOG"]));
    }
    if p.log && db.database_backup_lsn.is_none() {
        return Err(SqlError::new(4214, &[]));
    }
    if p.tail() {
        // A tail-log backup leaves the database RESTORING, so it needs the database to itself
        // (reference J.1). While mirrored it is refused: "Backup of the principal database is
        // allowed, but BACKUP LOG WITH NORECOVERY is not allowed" (Microsoft, "Database Mirroring
        // and Backup and Restore"); which error says so is UNVERIFIED, hence the variant.
        if db.mirroring.is_some() && ctx.world.config.variants.get("tail_log_on_mirrored") == "1468"
        {
            return Err(SqlError::new(1468, &[&db.name]));
        }
        super::restore::exclusive(ctx.world, ctx.role, Some(ctx.spid), &db.name, p.op)?;
    }
    existing_sets(p)?;
    let bytes = if p.log {
        log_bytes(db.records.len())
    } else {
        db.pages() * 8192
    };
    Ok((db.name.clone(), bytes.max(0) as u64))
}

/// The backup sets already in the device that NOINIT appends to (none for INIT/FORMAT or a new file);
/// 3201 when the file cannot be read or its folder is missing.
fn existing_sets(p: &Plan) -> Result<Option<BackupFile>, SqlError> {
    let overwrite = has(&p.options, "INIT") || has(&p.options, "FORMAT");
    match backupfile::read(&p.device) {
        Ok(f) if !overwrite => Ok(Some(f)),
        Ok(_) => Ok(None),
        Err(e) if e.number == 3201 && !p.device.real.exists() => {
            // A new file is fine as long as its folder exists.
            let parent_ok = p
                .device
                .real
                .parent()
                .is_none_or(|d| d.as_os_str().is_empty() || d.is_dir());
            if parent_ok { Ok(None) } else { Err(e) }
        }
        Err(_) if has(&p.options, "FORMAT") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Runs a planned BACKUP: the checks again, then the backup set, the file, the history and the
/// 4035/3014 messages.
pub(crate) fn apply(ctx: &mut Ctx, p: Plan) -> Step {
    let op = p.op;
    match apply_inner(ctx, p) {
        Ok(()) => Step::Done(None),
        Err(e) => Step::Failed(failed(op, e)),
    }
}

fn apply_inner(ctx: &mut Ctx, p: Plan) -> Result<(), SqlError> {
    let (db_name, _) = check_inner(ctx, &p)?;
    let existing = existing_sets(&p)?;
    let position = existing.as_ref().map_or(1, |f| f.sets.len() as i64 + 1);
    let media = existing
        .as_ref()
        .map_or_else(|| ctx.world.rng.guid(), |f| f.media_set_guid);
    let set_guid = ctx.world.rng.guid();
    let copy_only = has(&p.options, "COPY_ONLY");
    let mut set = take_backup(
        ctx.world, ctx.role, &db_name, p.log, copy_only, ctx.now, set_guid, position,
    )?;
    set.name = p.set_name.clone();
    set.description = p.description.clone();
    set.user_name = ctx.login_name();
    set.compressed = has(&p.options, "COMPRESSION");
    set.checksums = has(&p.options, "CHECKSUM");
    let mut file = existing.unwrap_or(BackupFile {
        media_set_guid: media,
        sets: Vec::new(),
    });
    file.sets.push(set.clone());
    backupfile::write(&p.device, &file)?;
    record_backup_history(ctx.world, ctx.role, &set, &p.path);
    if p.tail() {
        // A tail-log backup WITH NORECOVERY leaves the database RESTORING (reference G, failover).
        if let Some(d) = ctx
            .world
            .inst_mut(ctx.role)
            .and_then(|i| i.db_mut(&db_name))
        {
            d.state = super::model::DbState::Restoring;
            d.redo_start_lsn = Some(set.last_lsn);
        }
    }
    ctx.world.sync_mirrors();
    progress_messages(ctx, p.op, &set);
    Ok(())
}

/// The bytes a log backup of a database with `records` records writes (two pages and the records).
fn log_bytes(records: usize) -> i64 {
    (2 + records as i64 / 16) * 8192
}

/// The 4035 per file and the closing 3014 that a successful BACKUP or RESTORE prints.
pub(crate) fn progress_messages(ctx: &mut Ctx, op: &str, set: &BackupSet) {
    let log_pages = 2 + set.records.len() as i64 / 16;
    let data_pages = if set.kind == 'D' { set.pages } else { 0 };
    for f in &set.files {
        let pages = if f.kind == 'L' { log_pages } else { data_pages };
        if set.kind == 'L' && f.kind != 'L' {
            continue;
        }
        ctx.info(SqlError::new(
            4035,
            &[
                &pages.to_string(),
                &set.database_name,
                &f.logical,
                &set.position.to_string(),
            ],
        ));
    }
    ctx.info(throughput(op, data_pages + log_pages));
}

/// 3014 with a plausible duration: the lab "processes" 80 MB/s.
pub(crate) fn throughput(op: &str, pages: i64) -> SqlError {
    let mb = pages as f64 * 8192.0 / 1_048_576.0;
    let secs = (mb / 80.0).max(0.004);
    let rate = mb / secs;
    let ms = (secs * 1000.0).round() as i64;
    let rate_milli = (rate * 1000.0).round() as i64;
    SqlError::new(
        3014,
        &[
            op,
            &pages.to_string(),
            &(ms / 1000).to_string(),
            &format!("{:03}", ms % 1000),
            &(rate_milli / 1000).to_string(),
            &format!("{:03}", rate_milli % 1000),
        ],
    )
}

/// Takes a backup set of `db` and advances the database's log chain the way SQL Server does: a full
/// backup starts the chain if there is none (and, unless COPY_ONLY, becomes the differential base); a
/// log backup covers [end of the previous log backup, now) and, unless COPY_ONLY, moves the chain on.
#[allow(clippy::too_many_arguments)]
pub(crate) fn take_backup(
    world: &mut World,
    role: Role,
    db: &str,
    log: bool,
    copy_only: bool,
    now: LabTime,
    set_guid: Guid,
    position: i64,
) -> Result<BackupSet, SqlError> {
    let inst = world
        .inst_mut(role)
        .ok_or_else(|| SqlError::new(911, &[db]))?;
    let server = inst.config.name.clone();
    let d = inst.db_mut(db).ok_or_else(|| SqlError::new(911, &[db]))?;
    let (first, checkpoint) = if log {
        let first = d.log_chain_lsn.ok_or_else(|| SqlError::new(4214, &[]))?;
        (first, first)
    } else {
        (d.end_lsn, d.end_lsn)
    };
    // The backup itself writes a log record, so LastLSN always moves past FirstLSN.
    d.log(None);
    let last = d.end_lsn;
    let database_backup_lsn = if log {
        d.database_backup_lsn.unwrap_or(first)
    } else {
        d.database_backup_lsn.unwrap_or(checkpoint)
    };
    let records = d
        .records
        .iter()
        .filter(|r| r.lsn < last && (!log || r.lsn >= first))
        .cloned()
        .collect();
    if log {
        if !copy_only {
            d.log_chain_lsn = Some(last);
        }
    } else {
        if !copy_only {
            d.database_backup_lsn = Some(checkpoint);
        }
        if d.log_chain_lsn.is_none() {
            d.log_chain_lsn = Some(first);
        }
    }
    Ok(BackupSet {
        position,
        kind: if log { 'L' } else { 'D' },
        name: None,
        description: None,
        user_name: "sa".to_owned(),
        server_name: server.clone(),
        machine_name: server,
        database_name: d.name.clone(),
        database_creation_date: d.create_date,
        backup_start_date: now,
        backup_finish_date: now,
        first_lsn: first,
        last_lsn: last,
        checkpoint_lsn: checkpoint,
        database_backup_lsn,
        family_guid: d.family_guid,
        database_guid: d.database_guid,
        fork_guid: d.fork_guid,
        backup_set_guid: set_guid,
        recovery: d.recovery,
        compressed: false,
        checksums: false,
        copy_only,
        damaged: false,
        pages: if log { 2 } else { d.pages() },
        files: d.files.clone(),
        records,
    })
}

/// msdb.dbo.backupset + backupmediafamily rows for a set written to (or read from) `path`.
pub(crate) fn record_backup_history(
    world: &mut World,
    role: Role,
    set: &BackupSet,
    path: &str,
) -> i64 {
    let Some(inst) = world.inst_mut(role) else {
        return 0;
    };
    let msdb = &mut inst.msdb;
    let backup_set_id = msdb.next_id();
    let media_set_id = msdb.next_id();
    msdb.backupset.push(BackupSetRow {
        backup_set_id,
        backup_set_uuid: set.backup_set_guid,
        media_set_id,
        position: set.position,
        name: set.name.clone(),
        user_name: set.user_name.clone(),
        first_lsn: set.first_lsn,
        last_lsn: set.last_lsn,
        checkpoint_lsn: set.checkpoint_lsn,
        database_backup_lsn: set.database_backup_lsn,
        database_creation_date: set.database_creation_date,
        backup_start_date: set.backup_start_date,
        backup_finish_date: set.backup_finish_date,
        kind: set.kind,
        backup_size: set.backup_size(),
        compressed_backup_size: set.compressed_size(),
        database_name: set.database_name.clone(),
        server_name: set.server_name.clone(),
        machine_name: set.machine_name.clone(),
        recovery_model: set.recovery.backup_desc().to_owned(),
        has_backup_checksums: set.checksums,
        is_copy_only: set.copy_only,
        database_guid: set.database_guid,
        family_guid: set.family_guid,
        fork_guid: set.fork_guid,
    });
    msdb.backupmediafamily.push(MediaFamilyRow {
        media_set_id,
        physical_device_name: path.to_owned(),
    });
    backup_set_id
}
