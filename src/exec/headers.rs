//! Reading the copy folder's log backup headers: once per run, and only for files that can still
//! matter.
//!
//! A real copy folder keeps days of log backups (the copy job deletes them after
//! `file_retention_period`, 72 hours by default), almost all applied long ago. Reading every header
//! would make the apply step's cost grow with the folder, not with the backlog, and examining,
//! running and verifying the step would read each one three times. So:
//!
//! - Headers are cached for the run by the path SQL Server opens, with the file's size and
//!   modification time as pcfail sees them: a file replaced since (a corrupt copy repaired) is read
//!   again.
//! - Log shipping names its files `<database>_<yyyymmddhhmmss>.trn`, and its backup job takes them
//!   one after another, so for those names the name order is the LSN order. This is what SQL
//!   Server's own restore job (sqllogship) relies on. The scan reads those files newest first and
//!   stops at the first one the database already contains (LastLSN <= its redo point): every older
//!   one is applied too. Files named otherwise (a tail-log backup, one put there by hand) are always
//!   read.
//! - Headers not cached are read [`BATCH`] files to a round trip (one RESTORE HEADERONLY statement
//!   each, one result set each); a batch that fails is read again file by file, so an error names
//!   its file exactly as a single read would.
//! - A gap is never declared on part of the folder: when the scan finds one, every remaining header
//!   is read before the chain is planned again, so a misnamed file cannot cause data loss to be
//!   asked for.

use std::collections::HashMap;
use std::path::Path;

use super::chain::{self, ChainPlan, LogBackup};
use super::copy::{self, Stamp, shipped_name};
use super::probe;
use super::session::{Session, StepError};
use crate::runbook::Role;

/// Headers read in this run, by the path SQL Server opens, with how the file looked (size and
/// modification time as pcfail sees them) when it was read.
#[derive(Default)]
pub(crate) struct HeaderCache {
    files: HashMap<String, (Stamp, Vec<LogBackup>)>,
}

/// A file of the copy folder: its name, where pcfail reads it, and the path SQL Server opens.
struct Copied {
    name: String,
    sql_path: String,
    stamp: Option<Stamp>,
}

/// The apply plan for `db` on `role` from the copy folder (`local` as pcfail lists it, `sql_folder`
/// as SQL Server names it) and the database's redo point, reading as few headers as it can.
pub(crate) async fn chain_from_folder(
    s: &mut Session<'_>,
    role: Role,
    db: &str,
    local: &Path,
    sql_folder: &str,
    redo: i128,
) -> Result<ChainPlan, StepError> {
    let (names, _) = copy::list_log_backups(local).map_err(|e| StepError::Failed(e.to_string()))?;
    let files: Vec<Copied> = names
        .into_iter()
        .map(|name| Copied {
            stamp: Stamp::of(&local.join(&name)),
            sql_path: super::sql_path_join(sql_folder, &name),
            name,
        })
        .collect();
    let (ordered, others): (Vec<&Copied>, Vec<&Copied>) =
        files.iter().partition(|f| shipped_name(&f.name, db));

    let mut backups = Vec::new();
    for sets in read_all(s, role, db, &others).await? {
        backups.extend(sets);
    }
    // Newest first, a batch at a time, until a file the database already contains.
    let mut unread = ordered.len();
    'scan: while unread > 0 {
        let batch: Vec<&Copied> = ordered[unread.saturating_sub(BATCH)..unread]
            .iter()
            .rev()
            .copied()
            .collect();
        for sets in read_all(s, role, db, &batch).await? {
            unread -= 1;
            let contained = !sets.is_empty() && sets.iter().all(|b| b.last_lsn <= redo);
            backups.extend(sets);
            if contained {
                break 'scan;
            }
        }
    }
    let plan = chain::plan_chain(backups.clone(), redo);
    if plan.gap.is_none() || unread == 0 {
        return Ok(plan);
    }
    for sets in read_all(s, role, db, &ordered[..unread]).await? {
        backups.extend(sets);
    }
    Ok(chain::plan_chain(backups, redo))
}

/// Files whose headers are read in one round trip. A batch of this many statements is a few KB of
/// text; the gain of larger ones is small next to the restores themselves.
const BATCH: usize = 32;

/// The headers of `files`, in their order: from the cache while a file is unchanged, the rest read
/// [`BATCH`] to a round trip.
async fn read_all(
    s: &mut Session<'_>,
    role: Role,
    db: &str,
    files: &[&Copied],
) -> Result<Vec<Vec<LogBackup>>, StepError> {
    let mut out: Vec<Option<Vec<LogBackup>>> = files.iter().map(|f| cached(s, f)).collect();
    let missing: Vec<usize> = (0..files.len()).filter(|&i| out[i].is_none()).collect();
    for chunk in missing.chunks(BATCH) {
        let paths: Vec<&str> = chunk.iter().map(|&i| files[i].sql_path.as_str()).collect();
        let read = if chunk.len() > 1 {
            probe::log_backups_in_each(s, role, db, &paths).await?
        } else {
            None
        };
        let read = match read {
            Some(read) => read,
            None => {
                let mut one_by_one = Vec::with_capacity(chunk.len());
                for path in &paths {
                    one_by_one.push(probe::log_backups_in(s, role, db, path).await?);
                }
                one_by_one
            }
        };
        for (&i, sets) in chunk.iter().zip(read) {
            if let Some(stamp) = files[i].stamp {
                s.headers()
                    .files
                    .insert(files[i].sql_path.clone(), (stamp, sets.clone()));
            }
            out[i] = Some(sets);
        }
    }
    Ok(out.into_iter().map(Option::unwrap_or_default).collect())
}

/// The header of one file from the cache, while the file is unchanged.
fn cached(s: &mut Session<'_>, file: &Copied) -> Option<Vec<LogBackup>> {
    let stamp = file.stamp?;
    match s.headers().files.get(&file.sql_path) {
        Some((seen, sets)) if *seen == stamp => Some(sets.clone()),
        _ => None,
    }
}
