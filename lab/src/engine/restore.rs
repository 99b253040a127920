//! RESTORE: HEADERONLY and FILELISTONLY (SQL Server 2016's columns), VERIFYONLY, full database
//! restores (REPLACE, MOVE, NORECOVERY/RECOVERY/STANDBY), log restores with the LSN rules of reference
//! B.5, and the recovery-only `RESTORE DATABASE x WITH RECOVERY`.
//!
//! Every failure is the specific error followed by 3013 "<RESTORE kind> is terminating abnormally."
//! (reference B.4): clients that keep only the first error (tiberius) see the specific one.

use pcfail_lab_tds::{Column, Event, SqlType, Value};

use super::backup::{has, progress_messages, record_backup_history, throughput};
use super::backupfile::{self, BackupSet};
use super::catalog::{b, dt, g, i, lsn, s};
use super::errors::SqlError;
use super::exec::{Ctx, Step, Work};
use super::lsn::{LogFit, Lsn, log_fit};
use super::model::{Database, DbFile, DbState, RestoreHistoryRow};
use super::parser::{Restore, RestoreKind};
use super::paths::{self, LabPath};
use super::world::World;
use super::{LabTime, Role};

const KNOWN_OPTIONS: &[&str] = &[
    "FILE",
    "REPLACE",
    "NORECOVERY",
    "RECOVERY",
    "STANDBY",
    "MOVE",
    "STATS",
    "CHECKSUM",
    "NO_CHECKSUM",
    "NOREWIND",
    "REWIND",
    "NOUNLOAD",
    "UNLOAD",
    "KEEP_REPLICATION",
    "RESTRICTED_USER",
    "BUFFERCOUNT",
    "MAXTRANSFERSIZE",
    "BLOCKSIZE",
    "CONTINUE_AFTER_ERROR",
    "STOP_ON_ERROR",
];

/// How a restore leaves the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Finish {
    Recovery,
    NoRecovery,
    /// STANDBY with its undo file.
    Standby(LabPath),
}

/// A RESTORE statement with its arguments evaluated and its backup set read: what runs at once, or
/// after the statement's run time (request.rs). Nothing in the world has changed yet.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    op: &'static str,
    what: What,
}

#[derive(Clone, Debug)]
enum What {
    HeaderOnly(String),
    FileListOnly(String, i64),
    /// Verified while planning; only the 3262 message remains.
    VerifyOnly(i64),
    Recovery {
        db: String,
        finish: Finish,
    },
    Log {
        db: String,
        set: Box<BackupSet>,
        path: String,
        finish: Finish,
    },
    Full {
        db: String,
        set: Box<BackupSet>,
        path: String,
        finish: Finish,
        replace: bool,
        moves: Vec<(String, String)>,
    },
}

fn op_name(kind: RestoreKind) -> &'static str {
    match kind {
        RestoreKind::Database => "RESTORE DATABASE",
        RestoreKind::Log => "RESTORE LOG",
        RestoreKind::HeaderOnly => "RESTORE HEADERONLY",
        RestoreKind::FileListOnly => "RESTORE FILELISTONLY",
        // 3013 says "VERIFY DATABASE is terminating abnormally." for a failed VERIFYONLY.
        RestoreKind::VerifyOnly => "VERIFY DATABASE",
        RestoreKind::LabelOnly => "RESTORE LABELONLY",
    }
}

/// A failed RESTORE: the specific error, then 3013 (reference B.4).
fn failed(op: &str, e: SqlError) -> Vec<SqlError> {
    if e.number == super::errors::NOT_MODELLED {
        // The lab's own error stands alone: 3013 would pretend SQL Server had tried.
        return vec![e];
    }
    vec![e, SqlError::terminating(op)]
}

/// Runs a RESTORE at once (no run time).
pub(crate) fn restore(ctx: &mut Ctx, r: &Restore) -> Step {
    match plan(ctx, r) {
        Ok(p) => apply(ctx, p),
        Err(e) => Step::Failed(e),
    }
}

/// Evaluates the statement and reads its backup set; every error SQL Server reports before it starts
/// to work (syntax, options, a missing or unreadable device, FILE = n beyond the last set).
pub(crate) fn plan(ctx: &mut Ctx, r: &Restore) -> Result<Plan, Vec<SqlError>> {
    let op = op_name(r.kind);
    let what = plan_what(ctx, r).map_err(|e| failed(op, e))?;
    // Where the files go is part of planning the restore, whether it then runs at once or takes time.
    if let What::Full { set, moves, .. } = &what
        && ctx.world.config.data_paths_per_instance
    {
        let mut errors = data_path_errors(ctx.world, ctx.role, set, moves);
        if !errors.is_empty() {
            errors.push(SqlError::new(3119, &[]));
            errors.push(SqlError::terminating(op));
            return Err(errors);
        }
    }
    Ok(Plan { op, what })
}

fn plan_what(ctx: &mut Ctx, r: &Restore) -> Result<What, SqlError> {
    if let Some(o) = r
        .options
        .iter()
        .find(|o| !KNOWN_OPTIONS.contains(&o.name.as_str()))
    {
        return Err(SqlError::syntax(&o.name));
    }
    let path = match r.disks.as_slice() {
        [] => None,
        [one] => Some(ctx.eval_text(one)?.unwrap_or_default()),
        _ => return Err(SqlError::syntax("DISK")),
    };
    let file_no = match r
        .options
        .iter()
        .find(|o| o.name == "FILE")
        .and_then(|o| o.value.as_ref())
    {
        Some(e) => ctx
            .eval_text(e)?
            .and_then(|t| t.parse::<i64>().ok())
            .unwrap_or(1),
        None => 1,
    };
    let finish = finish_option(ctx, r)?;
    match r.kind {
        RestoreKind::HeaderOnly => Ok(What::HeaderOnly(path.unwrap_or_default())),
        RestoreKind::FileListOnly => Ok(What::FileListOnly(path.unwrap_or_default(), file_no)),
        RestoreKind::VerifyOnly => {
            let path = path.unwrap_or_default();
            let file = backupfile::read(&paths::resolve(ctx.world, ctx.role, &path)?)?;
            if file_no < 1 || file_no as usize > file.sets.len() {
                return Err(SqlError::new(4038, &[&file_no.to_string(), &path]));
            }
            // Only WITH CHECKSUM reads the pages' checksums: without it a damaged set still
            // "verifies" (the reason to ask for it, RESTORE VERIFYONLY docs).
            let set = &file.sets[file_no as usize - 1];
            if has(&r.options, "CHECKSUM") && !set.checksums {
                return Err(SqlError::new(3187, &[]));
            }
            if has(&r.options, "CHECKSUM") && set.damaged {
                return Err(SqlError::new(3189, &[]));
            }
            Ok(What::VerifyOnly(file_no))
        }
        RestoreKind::LabelOnly => Err(SqlError::not_modelled("RESTORE LABELONLY")),
        RestoreKind::Database | RestoreKind::Log => {
            if ctx.local.trancount > 0 {
                return Err(SqlError::new(3021, &[]));
            }
            let db = match &r.db {
                Some(e) => ctx.eval_text(e)?.unwrap_or_default(),
                None => String::new(),
            };
            let Some(path) = path else {
                if r.kind == RestoreKind::Log {
                    return Err(SqlError::syntax(&db));
                }
                return Ok(What::Recovery { db, finish });
            };
            let file = backupfile::read(&paths::resolve(ctx.world, ctx.role, &path)?)?;
            let set = file
                .sets
                .get((file_no.max(1) - 1) as usize)
                .filter(|_| file_no >= 1)
                .ok_or_else(|| SqlError::new(4038, &[&file_no.to_string(), &path]))?
                .clone();
            if set.damaged {
                return Err(SqlError::new(3183, &["1", "4242", &set.database_name]));
            }
            if r.kind == RestoreKind::Log {
                return Ok(What::Log {
                    db,
                    set: Box::new(set),
                    path,
                    finish,
                });
            }
            let mut moves = Vec::new();
            for o in r.options.iter().filter(|o| o.name == "MOVE") {
                let from = o
                    .value
                    .as_ref()
                    .map(|e| ctx.eval_text(e))
                    .transpose()?
                    .flatten()
                    .unwrap_or_default();
                let to = o
                    .move_to
                    .as_ref()
                    .map(|e| ctx.eval_text(e))
                    .transpose()?
                    .flatten()
                    .unwrap_or_default();
                moves.push((from, to));
            }
            Ok(What::Full {
                db,
                set: Box::new(set),
                path,
                finish,
                replace: has(&r.options, "REPLACE"),
                moves,
            })
        }
    }
}

/// What a planned RESTORE works on, for sys.dm_exec_requests and the exclusive hold, after the
/// checks SQL Server makes before it starts (3101, 4305, ...). Changes nothing.
pub(crate) fn check(ctx: &Ctx, p: &Plan) -> Result<Work, Vec<SqlError>> {
    let w = &*ctx.world;
    let (role, spid) = (ctx.role, Some(ctx.spid));
    let checked = match &p.what {
        What::HeaderOnly(_) | What::FileListOnly(..) | What::VerifyOnly(_) => {
            return Ok(Work::new(p.op, None, false, 0));
        }
        What::Recovery { db, .. } => check_recovery(w, role, spid, db).map(|name| (name, 0)),
        What::Log { db, set, path, .. } => {
            check_log(w, role, spid, db, set, path).map(|(name, _)| (name, set.backup_size()))
        }
        What::Full {
            db,
            set,
            path,
            replace,
            moves,
            ..
        } => check_full(w, role, spid, db, set, path, *replace, moves)
            .map(|name| (name, set.backup_size())),
    };
    let (name, bytes) = checked.map_err(|e| failed(p.op, e))?;
    let mut work = Work::new(p.op, Some(name), true, bytes.max(0) as u64);
    // Once recovery has started it runs to its end: neither an Attention nor KILL stops it.
    work.cancellable = !matches!(
        &p.what,
        What::Recovery {
            finish: Finish::Recovery,
            ..
        }
    );
    Ok(work)
}

/// Runs a planned RESTORE: the checks again (they are cheap, and the plan may have waited), then the
/// changes, the history, and the 4035/3014 messages.
pub(crate) fn apply(ctx: &mut Ctx, p: Plan) -> Step {
    let op = p.op;
    match apply_what(ctx, p) {
        Ok(n) => Step::Done(n),
        Err(e) => Step::Failed(failed(op, e)),
    }
}

fn apply_what(ctx: &mut Ctx, p: Plan) -> Result<Option<u64>, SqlError> {
    let op = p.op;
    let user = ctx.login_name();
    let set = match p.what {
        What::HeaderOnly(path) => return header_only(ctx, &path),
        What::FileListOnly(path, file_no) => return file_list_only(ctx, &path, file_no),
        What::VerifyOnly(file_no) => {
            ctx.info(SqlError::new(3262, &[&file_no.to_string()]));
            return Ok(None);
        }
        What::Recovery { db, finish } => {
            recovery_only(ctx.world, ctx.role, Some(ctx.spid), &db, &finish)?;
            ctx.info(throughput(op, 0));
            return Ok(None);
        }
        What::Log {
            db,
            set,
            path,
            finish,
        } => {
            apply_log(
                ctx.world,
                ctx.role,
                Some(ctx.spid),
                &db,
                &set,
                &path,
                &finish,
                &user,
                ctx.now,
            )?;
            set
        }
        What::Full {
            db,
            set,
            path,
            finish,
            replace,
            moves,
        } => {
            restore_full(
                ctx.world,
                ctx.role,
                Some(ctx.spid),
                &db,
                &set,
                &path,
                &finish,
                replace,
                &moves,
                &user,
                ctx.now,
            )?;
            set
        }
    };
    ctx.world.sync_mirrors();
    progress_messages(ctx, op, &set);
    Ok(None)
}

fn finish_option(ctx: &Ctx, r: &Restore) -> Result<Finish, SqlError> {
    // SQL Server takes one of RECOVERY, NORECOVERY and STANDBY (reference B.1); two of them are
    // 3031, "Option '%ls' conflicts with option(s) '%ls'." (number from the 3000-3999 catalog).
    let given: Vec<&str> = r
        .options
        .iter()
        .map(|o| o.name.as_str())
        .filter(|n| ["RECOVERY", "NORECOVERY", "STANDBY"].contains(n))
        .collect();
    if let [first, .., last] = given.as_slice()
        && first != last
    {
        return Err(SqlError::new(3031, &[last, first]));
    }
    if let Some(o) = r.options.iter().find(|o| o.name == "STANDBY") {
        // STANDBY needs an undo file name (reference B.1).
        let file = o
            .value
            .as_ref()
            .map(|e| ctx.eval_text(e))
            .transpose()?
            .flatten();
        let file = file.ok_or_else(|| SqlError::syntax("STANDBY"))?;
        return paths::resolve(ctx.world, ctx.role, &file).map(Finish::Standby);
    }
    Ok(if has(&r.options, "NORECOVERY") {
        Finish::NoRecovery
    } else {
        Finish::Recovery
    })
}

/// RESTORE (and a tail-log backup) needs the database to itself: 3102 when the caller's own context
/// is in it, 3101 when any other session is, or works on it (reference B.4).
pub(crate) fn exclusive(
    world: &World,
    role: Role,
    spid: Option<u16>,
    db: &str,
    op: &str,
) -> Result<(), SqlError> {
    if let Some(me) = spid
        && world
            .session(role, me)
            .is_some_and(|s| s.database.eq_ignore_ascii_case(db))
    {
        return Err(SqlError::new(3102, &[op, db]));
    }
    if world.other_users_of(role, spid.unwrap_or(0), db) > 0 {
        return Err(SqlError::new(3101, &[]));
    }
    Ok(())
}

/// The database a recovery-only RESTORE or a RESTORE LOG continues: 3118 when there is none, 3104
/// while it takes part in mirroring.
fn existing_target<'w>(world: &'w World, role: Role, db: &str) -> Result<&'w Database, SqlError> {
    let d = world.inst(role).and_then(|i| i.db(db)).ok_or_else(|| {
        // Reference B.4 maps this to 3118 (UNVERIFIED), hence the variant.
        let number = match world.config.variants.get("restore_missing_database") {
            "911" => 911,
            _ => 3118,
        };
        SqlError::new(number, &[db])
    })?;
    if d.mirroring.is_some() {
        return Err(SqlError::new(3104, &[&d.name]));
    }
    Ok(d)
}

fn write_standby_file(path: &LabPath) {
    // Best effort, like the rest of the lab's files: the undo file only shows that one exists.
    if path.real.parent().is_some_and(|d| d.is_dir()) {
        let _ = std::fs::write(&path.real, "PCFAIL-LAB-STANDBY-UNDO\n");
    }
}

fn apply_finish(d: &mut Database, finish: &Finish, new_fork: super::guid::Guid) {
    match finish {
        Finish::NoRecovery => {
            d.state = DbState::Restoring;
            d.standby = false;
        }
        Finish::Standby(file) => {
            // A STANDBY database is ONLINE, read-only, with is_in_standby = 1 (reference C).
            d.state = DbState::Online;
            d.standby = true;
            write_standby_file(file);
        }
        Finish::Recovery => {
            d.state = DbState::Online;
            d.standby = false;
            d.redo_start_lsn = None;
            d.fork_guid = new_fork;
        }
    }
}

/// The checks of a recovery-only restore; the database's own name.
fn check_recovery(
    world: &World,
    role: Role,
    spid: Option<u16>,
    db: &str,
) -> Result<String, SqlError> {
    let d = existing_target(world, role, db)?;
    if d.state == DbState::Online && !d.standby {
        return Err(SqlError::new(3153, &[]));
    }
    let name = d.name.clone();
    exclusive(world, role, spid, &name, "RESTORE")?;
    Ok(name)
}

/// `RESTORE DATABASE db WITH RECOVERY` without a backup: brings a RESTORING or STANDBY database online.
pub(crate) fn recovery_only(
    world: &mut World,
    role: Role,
    spid: Option<u16>,
    db: &str,
    finish: &Finish,
) -> Result<(), SqlError> {
    let name = check_recovery(world, role, spid, db)?;
    let fork = world.rng.guid();
    let d = world
        .inst_mut(role)
        .and_then(|i| i.db_mut(&name))
        .expect("checked above");
    // Recovery-only NORECOVERY/STANDBY changes nothing the lab models; SQL Server accepts it too.
    if *finish == Finish::Recovery {
        apply_finish(d, finish, fork);
    }
    Ok(())
}

/// The checks of RESTORE LOG, the LSN rules of reference B.5; the database's name and redo point.
fn check_log(
    world: &World,
    role: Role,
    spid: Option<u16>,
    db: &str,
    set: &BackupSet,
    path: &str,
) -> Result<(String, Lsn), SqlError> {
    if set.kind != 'L' {
        return Err(SqlError::new(3135, &[path, "BACKUP DATABASE"]));
    }
    let d = existing_target(world, role, db)?;
    let redo = match (d.state, d.standby, d.redo_start_lsn) {
        (DbState::Restoring, _, Some(redo)) | (DbState::Online, true, Some(redo)) => redo,
        _ => return Err(SqlError::new(3117, &[])),
    };
    let name = d.name.clone();
    exclusive(world, role, spid, &name, "RESTORE")?;
    if d.family_guid != set.family_guid {
        return Err(SqlError::new(3154, &[&name]));
    }
    if d.fork_guid != set.fork_guid {
        return Err(SqlError::new(4330, &[]));
    }
    match log_fit(set.first_lsn, set.last_lsn, redo) {
        LogFit::TooEarly => Err(SqlError::new(
            4326,
            &[&set.last_lsn.to_string(), &redo.to_string()],
        )),
        LogFit::TooRecent => Err(SqlError::new(
            4305,
            &[&set.first_lsn.to_string(), &redo.to_string()],
        )),
        LogFit::Applies => Ok((name, redo)),
    }
}

/// RESTORE LOG: the LSN rules of reference B.5, then the records of the log backup are applied.
#[allow(clippy::too_many_arguments)]
pub(crate) fn apply_log(
    world: &mut World,
    role: Role,
    spid: Option<u16>,
    db: &str,
    set: &BackupSet,
    path: &str,
    finish: &Finish,
    user: &str,
    now: LabTime,
) -> Result<(), SqlError> {
    let (name, redo) = check_log(world, role, spid, db, set, path)?;
    let fork = world.rng.guid();
    let d = world
        .inst_mut(role)
        .and_then(|i| i.db_mut(&name))
        .expect("checked above");
    // Only what lies past the redo point is new: each record is applied exactly once.
    d.records
        .extend(set.records.iter().filter(|r| r.lsn >= redo).cloned());
    d.end_lsn = set.last_lsn;
    d.redo_start_lsn = Some(set.last_lsn);
    d.log_chain_lsn = Some(set.last_lsn);
    d.database_backup_lsn = Some(set.database_backup_lsn);
    apply_finish(d, finish, fork);
    let recovery = *finish == Finish::Recovery;
    record_restore_history(world, role, set, path, &name, user, false, recovery, now);
    Ok(())
}

/// With `WorldConfig.data_paths_per_instance`, an instance has only its own data directory: a file the
/// backup places elsewhere, and no MOVE relocates, cannot be created there (reference J.3: files go to
/// their original locations by default). SQL Server reports each such file with 5133 (OS error 3) and
/// 3156, then 3119 while it plans the restore, before anything is written.
fn data_path_errors(
    w: &World,
    role: Role,
    set: &BackupSet,
    moves: &[(String, String)],
) -> Vec<SqlError> {
    let Some(dir) = w.inst(role).map(|i| i.data_dir()) else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    for f in &set.files {
        let target = moves
            .iter()
            .find(|(from, _)| from.eq_ignore_ascii_case(&f.logical))
            .map_or_else(|| f.physical.clone(), |(_, to)| to.clone());
        let parent = target.rsplit_once('\\').map_or("", |(p, _)| p);
        if !parent.eq_ignore_ascii_case(&dir) {
            errors.push(SqlError::new(
                5133,
                &[&target, "3(The system cannot find the path specified.)"],
            ));
            errors.push(SqlError::new(3156, &[&f.logical, &target]));
        }
    }
    errors
}

/// A database as a full backup describes it (files moved per `moves`), RESTORING until finished.
pub(crate) fn database_from_full(
    set: &BackupSet,
    id: i64,
    moves: Option<&[(String, String)]>,
) -> Database {
    let files: Vec<DbFile> = set
        .files
        .iter()
        .map(|f| {
            let to = moves
                .and_then(|m| {
                    m.iter()
                        .find(|(from, _)| from.eq_ignore_ascii_case(&f.logical))
                })
                .map(|(_, to)| to.clone());
            DbFile {
                physical: to.unwrap_or_else(|| f.physical.clone()),
                ..f.clone()
            }
        })
        .collect();
    Database {
        name: set.database_name.clone(),
        id,
        system: false,
        state: DbState::Restoring,
        standby: false,
        recovery: set.recovery,
        user_access: "MULTI_USER".to_owned(),
        family_guid: set.family_guid,
        database_guid: set.database_guid,
        fork_guid: set.fork_guid,
        create_date: set.database_creation_date,
        end_lsn: set.last_lsn,
        redo_start_lsn: Some(set.last_lsn),
        database_backup_lsn: Some(set.checkpoint_lsn),
        log_chain_lsn: Some(set.last_lsn),
        records: set.records.clone(),
        files,
        mirroring: None,
    }
}

/// The checks of RESTORE DATABASE ... FROM DISK: the safety checks REPLACE overrides (3154, 3159),
/// MOVE names (3234); the target database's name.
#[allow(clippy::too_many_arguments)]
fn check_full(
    world: &World,
    role: Role,
    spid: Option<u16>,
    db: &str,
    set: &BackupSet,
    path: &str,
    replace: bool,
    moves: &[(String, String)],
) -> Result<String, SqlError> {
    if set.kind != 'D' {
        return Err(SqlError::new(3135, &[path, "BACKUP LOG"]));
    }
    let target = if db.is_empty() {
        set.database_name.clone()
    } else {
        db.to_owned()
    };
    for (from, _) in moves {
        if !set
            .files
            .iter()
            .any(|f| f.logical.eq_ignore_ascii_case(from))
        {
            return Err(SqlError::new(3234, &[from, &set.database_name]));
        }
    }
    let inst = world
        .inst(role)
        .ok_or_else(|| SqlError::new(3118, &[&target]))?;
    let Some(d) = inst.db(&target) else {
        return Ok(target);
    };
    if d.system {
        return Err(SqlError::new(3101, &[]));
    }
    if d.mirroring.is_some() {
        return Err(SqlError::new(3104, &[&d.name]));
    }
    exclusive(world, role, spid, &d.name, "RESTORE")?;
    if !replace && d.family_guid != set.family_guid {
        return Err(SqlError::new(3154, &[&d.name]));
    }
    if !replace
        && d.state == DbState::Online
        && !d.standby
        && d.recovery != super::model::Recovery::Simple
    {
        return Err(SqlError::new(3159, &[&d.name]));
    }
    Ok(d.name.clone())
}

/// RESTORE DATABASE ... FROM DISK: the checks, then the database as the backup describes it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn restore_full(
    world: &mut World,
    role: Role,
    spid: Option<u16>,
    db: &str,
    set: &BackupSet,
    path: &str,
    finish: &Finish,
    replace: bool,
    moves: &[(String, String)],
    user: &str,
    now: LabTime,
) -> Result<(), SqlError> {
    let target = check_full(world, role, spid, db, set, path, replace, moves)?;
    let fork = world.rng.guid();
    let inst = world.inst_mut(role).expect("checked above");
    let existing_id = inst.db(&target).map(|d| d.id);
    let id = existing_id.unwrap_or_else(|| {
        let id = inst.next_database_id;
        inst.next_database_id += 1;
        id
    });
    let mut d = database_from_full(set, id, Some(moves));
    d.name = target.clone();
    apply_finish(&mut d, finish, fork);
    inst.databases
        .retain(|x| !x.name.eq_ignore_ascii_case(&target));
    inst.databases.push(d);
    inst.databases.sort_by_key(|x| x.id);
    let recovery = *finish == Finish::Recovery;
    record_restore_history(
        world, role, set, path, &target, user, replace, recovery, now,
    );
    Ok(())
}

/// restorehistory plus the backupset/backupmediafamily rows it joins to (that RESTORE adds those on
/// the restoring server is UNVERIFIED but consistent with the documented join, reference B.5).
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_restore_history(
    world: &mut World,
    role: Role,
    set: &BackupSet,
    path: &str,
    db: &str,
    user: &str,
    replace: bool,
    recovery: bool,
    now: LabTime,
) {
    // Reference B.5: that the restoring server records the set in its own backupset is
    // UNVERIFIED; under the `absent` variant only restorehistory is written.
    let backup_set_id = if world.config.variants.get("restore_history_backupset") == "absent" {
        world.inst_mut(role).map_or(0, |i| i.msdb.next_id())
    } else {
        record_backup_history(world, role, set, path)
    };
    let Some(inst) = world.inst_mut(role) else {
        return;
    };
    let id = inst.msdb.next_id();
    inst.msdb.restorehistory.push(RestoreHistoryRow {
        restore_history_id: id,
        restore_date: now,
        destination_database_name: db.to_owned(),
        user_name: user.to_owned(),
        backup_set_id,
        restore_type: set.kind,
        replace,
        recovery,
        set_lsns: Some((set.first_lsn, set.last_lsn)),
    });
}

fn col(name: &str, ty: SqlType) -> Column {
    Column {
        name: name.to_owned(),
        ty,
        nullable: true,
    }
}

const LSN_T: SqlType = SqlType::Numeric {
    precision: 25,
    scale: 0,
};

/// RESTORE HEADERONLY: one row per backup set, SQL Server 2016's 56 columns in order (reference B.2).
fn header_only(ctx: &mut Ctx, path: &str) -> Result<Option<u64>, SqlError> {
    let file = backupfile::read(&paths::resolve(ctx.world, ctx.role, path)?)?;
    let nv = SqlType::NVarChar(128);
    let columns = vec![
        col("BackupName", nv.clone()),
        col("BackupDescription", SqlType::NVarChar(255)),
        col("BackupType", SqlType::SmallInt),
        col("ExpirationDate", SqlType::DateTime),
        col("Compressed", SqlType::Bit),
        col("Position", SqlType::SmallInt),
        col("DeviceType", SqlType::TinyInt),
        col("UserName", nv.clone()),
        col("ServerName", nv.clone()),
        col("DatabaseName", nv.clone()),
        col("DatabaseVersion", SqlType::Int),
        col("DatabaseCreationDate", SqlType::DateTime),
        col(
            "BackupSize",
            SqlType::Numeric {
                precision: 20,
                scale: 0,
            },
        ),
        col("FirstLSN", LSN_T),
        col("LastLSN", LSN_T),
        col("CheckpointLSN", LSN_T),
        col("DatabaseBackupLSN", LSN_T),
        col("BackupStartDate", SqlType::DateTime),
        col("BackupFinishDate", SqlType::DateTime),
        col("SortOrder", SqlType::SmallInt),
        col("CodePage", SqlType::SmallInt),
        col("UnicodeLocaleId", SqlType::Int),
        col("UnicodeComparisonStyle", SqlType::Int),
        col("CompatibilityLevel", SqlType::TinyInt),
        col("SoftwareVendorId", SqlType::Int),
        col("SoftwareVersionMajor", SqlType::Int),
        col("SoftwareVersionMinor", SqlType::Int),
        col("SoftwareVersionBuild", SqlType::Int),
        col("MachineName", nv.clone()),
        col("Flags", SqlType::Int),
        col("BindingID", SqlType::UniqueIdentifier),
        col("RecoveryForkID", SqlType::UniqueIdentifier),
        col("Collation", nv.clone()),
        col("FamilyGUID", SqlType::UniqueIdentifier),
        col("HasBulkLoggedData", SqlType::Bit),
        col("IsSnapshot", SqlType::Bit),
        col("IsReadOnly", SqlType::Bit),
        col("IsSingleUser", SqlType::Bit),
        col("HasBackupChecksums", SqlType::Bit),
        col("IsDamaged", SqlType::Bit),
        col("BeginsLogChain", SqlType::Bit),
        col("HasIncompleteMetaData", SqlType::Bit),
        col("IsForceOffline", SqlType::Bit),
        col("IsCopyOnly", SqlType::Bit),
        col("FirstRecoveryForkID", SqlType::UniqueIdentifier),
        col("ForkPointLSN", LSN_T),
        col("RecoveryModel", SqlType::NVarChar(60)),
        col("DifferentialBaseLSN", LSN_T),
        col("DifferentialBaseGUID", SqlType::UniqueIdentifier),
        col("BackupTypeDescription", SqlType::NVarChar(60)),
        col("BackupSetGUID", SqlType::UniqueIdentifier),
        col("CompressedBackupSize", SqlType::BigInt),
        col("Containment", SqlType::TinyInt),
        col("KeyAlgorithm", SqlType::NVarChar(32)),
        col("EncryptorThumbprint", SqlType::VarBinary(20)),
        col("EncryptorType", SqlType::NVarChar(32)),
    ];
    let opt = |x: &Option<String>| x.as_deref().map_or(Value::Null, s);
    let rows: Vec<Vec<Value>> = file
        .sets
        .iter()
        .map(|st| {
            let log = st.kind == 'L';
            vec![
                opt(&st.name),
                opt(&st.description),
                i(if log { 2 } else { 1 }),
                Value::Null,
                b(st.compressed),
                i(st.position),
                i(2),
                s(&st.user_name),
                s(&st.server_name),
                s(&st.database_name),
                i(852),
                dt(st.database_creation_date),
                Value::Numeric(i128::from(st.backup_size()), 0),
                lsn(st.first_lsn),
                lsn(st.last_lsn),
                lsn(st.checkpoint_lsn),
                lsn(st.database_backup_lsn),
                dt(st.backup_start_date),
                dt(st.backup_finish_date),
                i(52),
                i(0),
                i(1033),
                i(196_609),
                i(130),
                i(4608),
                i(13),
                i(0),
                i(5026),
                s(&st.machine_name),
                i(if st.checksums { 528 } else { 512 }),
                g(st.database_guid),
                g(st.fork_guid),
                s(super::catalog::COLLATION),
                g(st.family_guid),
                b(false),
                b(false),
                b(false),
                b(false),
                b(st.checksums),
                b(false),
                b(false),
                b(false),
                b(false),
                b(st.copy_only),
                g(st.fork_guid),
                Value::Null,
                s(st.recovery.backup_desc()),
                Value::Null,
                Value::Null,
                s(if log { "TRANSACTION LOG" } else { "DATABASE" }),
                g(st.backup_set_guid),
                i(st.compressed_size()),
                i(0),
                Value::Null,
                Value::Null,
                Value::Null,
            ]
        })
        .collect();
    let n = rows.len() as u64;
    ctx.out.push(Event::Rows { columns, rows });
    Ok(Some(n))
}

/// RESTORE FILELISTONLY: one row per database file of the chosen set (reference B.3, 2016 columns).
fn file_list_only(ctx: &mut Ctx, path: &str, file_no: i64) -> Result<Option<u64>, SqlError> {
    let file = backupfile::read(&paths::resolve(ctx.world, ctx.role, path)?)?;
    let set = file
        .sets
        .get((file_no.max(1) - 1) as usize)
        .filter(|_| file_no >= 1)
        .ok_or_else(|| SqlError::new(4038, &[&file_no.to_string(), path]))?;
    let columns = vec![
        col("LogicalName", SqlType::NVarChar(128)),
        col("PhysicalName", SqlType::NVarChar(260)),
        col("Type", SqlType::Char(1)),
        col("FileGroupName", SqlType::NVarChar(128)),
        col(
            "Size",
            SqlType::Numeric {
                precision: 20,
                scale: 0,
            },
        ),
        col(
            "MaxSize",
            SqlType::Numeric {
                precision: 20,
                scale: 0,
            },
        ),
        col("FileID", SqlType::BigInt),
        col("CreateLSN", LSN_T),
        col("DropLSN", LSN_T),
        col("UniqueID", SqlType::UniqueIdentifier),
        col("ReadOnlyLSN", LSN_T),
        col("ReadWriteLSN", LSN_T),
        col("BackupSizeInBytes", SqlType::BigInt),
        col("SourceBlockSize", SqlType::Int),
        col("FileGroupID", SqlType::Int),
        col("LogGroupGUID", SqlType::UniqueIdentifier),
        col("DifferentialBaseLSN", LSN_T),
        col("DifferentialBaseGUID", SqlType::UniqueIdentifier),
        col("IsReadOnly", SqlType::Bit),
        col("IsPresent", SqlType::Bit),
        col("TDEThumbprint", SqlType::VarBinary(32)),
        col("SnapshotUrl", SqlType::NVarChar(360)),
    ];
    let rows: Vec<Vec<Value>> = set
        .files
        .iter()
        .map(|f| {
            let log = f.kind == 'L';
            vec![
                s(&f.logical),
                s(&f.physical),
                s(if log { "L" } else { "D" }),
                if log { Value::Null } else { s("PRIMARY") },
                Value::Numeric(if log { 8_388_608 } else { 33_554_432 }, 0),
                Value::Numeric(35_184_372_080_640, 0),
                i(f.file_id),
                Value::Numeric(0, 0),
                Value::Numeric(0, 0),
                g(set.database_guid),
                Value::Numeric(0, 0),
                Value::Numeric(0, 0),
                i(if log { 0 } else { set.backup_size() }),
                i(512),
                i(if log { 0 } else { 1 }),
                Value::Null,
                if log {
                    Value::Numeric(0, 0)
                } else {
                    lsn(set.checkpoint_lsn)
                },
                Value::Null,
                b(false),
                b(true),
                Value::Null,
                Value::Null,
            ]
        })
        .collect();
    let n = rows.len() as u64;
    ctx.out.push(Event::Rows { columns, rows });
    Ok(Some(n))
}
