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
    for file in others {
        backups.extend(read(s, role, db, file).await?);
    }
    // Newest first, until a file the database already contains.
    let mut unread = ordered.len();
    for file in ordered.iter().rev() {
        let sets = read(s, role, db, file).await?;
        unread -= 1;
        let contained = !sets.is_empty() && sets.iter().all(|b| b.last_lsn <= redo);
        backups.extend(sets);
        if contained {
            break;
        }
    }
    let plan = chain::plan_chain(backups.clone(), redo);
    if plan.gap.is_none() || unread == 0 {
        return Ok(plan);
    }
    for file in &ordered[..unread] {
        backups.extend(read(s, role, db, file).await?);
    }
    Ok(chain::plan_chain(backups, redo))
}

/// The header of one file, from the cache while the file is unchanged.
async fn read(
    s: &mut Session<'_>,
    role: Role,
    db: &str,
    file: &Copied,
) -> Result<Vec<LogBackup>, StepError> {
    if let Some(stamp) = file.stamp
        && let Some((seen, sets)) = s.headers().files.get(&file.sql_path)
        && *seen == stamp
    {
        return Ok(sets.clone());
    }
    let sets = probe::log_backups_in(s, role, db, &file.sql_path).await?;
    if let Some(stamp) = file.stamp {
        s.headers()
            .files
            .insert(file.sql_path.clone(), (stamp, sets.clone()));
    }
    Ok(sets)
}
