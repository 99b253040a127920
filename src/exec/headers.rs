//! Reading the copy folder's log backup headers: once per run, and only for files that can still
//! matter.
//!
//! A real copy folder keeps days of log backups (the copy job deletes them after
//! `file_retention_period`, 72 hours by default), almost all applied long ago. Reading every header
//! would make the apply step's cost grow with the folder, not with the backlog, and examining,
//! running and verifying the step would read each one three times. So:
//!
//! - Headers are cached for the run by file name (the folder, as SQL Server names it, kept once),
//!   with the file's size and modification time as pcfail sees them: a file replaced since (a
//!   corrupt copy repaired) is read again. Only what the chain needs is kept (position and LSNs,
//!   about a hundred bytes a file with its name), and the apply plan shares the cache's names: a
//!   backlog of ten thousand files costs about a megabyte, not the whole headers twice over.
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
use std::sync::Arc;

use super::chain::{self, ChainPlan, Link};
use super::copy::{self, Stamp, shipped_name};
use super::probe;
use super::session::{Session, StepError};
use crate::runbook::Role;

/// Headers read in this run: for each file of the copy folder, by name, how it looked (size and
/// modification time as pcfail sees them) when it was read, and its sets reduced to what the chain
/// needs. The folder, as SQL Server names it, is kept once: the cache holds one entry per file
/// of a backlog that can be tens of thousands long, so an entry is kept small.
#[derive(Default)]
pub(crate) struct HeaderCache {
    folder: String,
    files: HashMap<Arc<str>, (Stamp, Box<[Span]>)>,
}

/// Where a backup set lies in its file and the LSNs it covers.
#[derive(Clone, Copy, Debug)]
struct Span {
    position: u32,
    first_lsn: i128,
    last_lsn: i128,
}

/// A log backup set of the copy folder as the apply step keeps it: the file's name (shared with
/// the cache, not copied), its position, its LSNs. The path SQL Server opens is
/// [`Pending::path`].
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    name: Arc<str>,
    span: Span,
}

impl Pending {
    /// The file as SQL Server opens it, in the folder as SQL Server names it.
    pub(crate) fn path(&self, sql_folder: &str) -> String {
        super::sql_path_join(sql_folder, &self.name)
    }

    pub(crate) fn position(&self) -> u32 {
        self.span.position
    }
}

impl Link for Pending {
    fn file(&self) -> &str {
        &self.name
    }
    fn position(&self) -> u32 {
        self.span.position
    }
    fn first_lsn(&self) -> i128 {
        self.span.first_lsn
    }
    fn last_lsn(&self) -> i128 {
        self.span.last_lsn
    }
}

/// The apply plan for `db` on `role` from the copy folder (`local` as pcfail lists it, `sql_folder`
/// as SQL Server names it) and the database's redo point, reading as few headers as it can. A
/// gap's file is named by the path SQL Server opens.
pub(crate) async fn chain_from_folder(
    s: &mut Session<'_>,
    role: Role,
    db: &str,
    local: &Path,
    sql_folder: &str,
    redo: i128,
) -> Result<ChainPlan<Pending>, StepError> {
    if s.headers().folder != sql_folder {
        // Names are only unique within one folder.
        *s.headers() = HeaderCache {
            folder: sql_folder.to_owned(),
            files: HashMap::new(),
        };
    }
    let (names, _) = copy::list_log_backups(local).map_err(|e| StepError::Failed(e.to_string()))?;
    let (ordered, others): (Vec<&str>, Vec<&str>) = names
        .iter()
        .map(String::as_str)
        .partition(|name| shipped_name(name, db));

    let mut backups = Vec::new();
    read_all(s, role, db, local, &others, |name, spans| {
        backups.extend(pending(name, spans));
        true
    })
    .await?;
    // Newest first, a batch at a time, until a file the database already contains.
    let mut unread = ordered.len();
    let mut contained = false;
    while unread > 0 && !contained {
        let batch: Vec<&str> = ordered[unread.saturating_sub(BATCH)..unread]
            .iter()
            .rev()
            .copied()
            .collect();
        read_all(s, role, db, local, &batch, |name, spans| {
            unread -= 1;
            contained = !spans.is_empty() && spans.iter().all(|b| b.last_lsn <= redo);
            backups.extend(pending(name, spans));
            !contained
        })
        .await?;
    }
    let plan = chain::plan_chain(backups, redo);
    let plan = if plan.gap.is_none() || unread == 0 {
        plan
    } else {
        // Every header, before a gap is declared: those read so far come from the cache.
        drop(plan);
        let mut backups = Vec::new();
        for part in [&others, &ordered] {
            read_all(s, role, db, local, part, |name, spans| {
                backups.extend(pending(name, spans));
                true
            })
            .await?;
        }
        chain::plan_chain(backups, redo)
    };
    Ok(ChainPlan {
        gap: plan.gap.map(|mut gap| {
            gap.next_file = super::sql_path_join(sql_folder, &gap.next_file);
            gap
        }),
        ..plan
    })
}

/// Files whose headers are read in one round trip. A batch of this many statements is a few KB of
/// text; the gain of larger ones is small next to the restores themselves.
const BATCH: usize = 32;

/// The headers of `names` (files of `local`), in their order, each handed to `take` as soon as it
/// is known: from the cache while a file is unchanged, the rest read [`BATCH`] to a round trip.
/// `take` returns false to stop: no header after that one is read.
async fn read_all(
    s: &mut Session<'_>,
    role: Role,
    db: &str,
    local: &Path,
    names: &[&str],
    mut take: impl FnMut(&Arc<str>, &[Span]) -> bool,
) -> Result<(), StepError> {
    let folder = s.headers().folder.clone();
    let mut i = 0;
    while i < names.len() {
        // The cached ones up to the next file that must be read.
        let stamp = Stamp::of(&local.join(names[i]));
        if let Some(stamp) = stamp
            && let Some((name, (seen, spans))) = s.headers().files.get_key_value(names[i])
            && *seen == stamp
        {
            if !take(name, spans) {
                return Ok(());
            }
            i += 1;
            continue;
        }
        // The next files not cached, up to a batch, read in one round trip.
        let mut chunk = vec![(names[i], stamp)];
        let mut j = i + 1;
        while j < names.len() && chunk.len() < BATCH {
            let stamp = Stamp::of(&local.join(names[j]));
            if stamp.is_some_and(|stamp| {
                s.headers()
                    .files
                    .get(names[j])
                    .is_some_and(|(seen, _)| *seen == stamp)
            }) {
                break;
            }
            chunk.push((names[j], stamp));
            j += 1;
        }
        let paths: Vec<String> = chunk
            .iter()
            .map(|(name, _)| super::sql_path_join(&folder, name))
            .collect();
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
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
        for ((name, stamp), sets) in chunk.into_iter().zip(read) {
            let name: Arc<str> = Arc::from(name);
            let spans: Box<[Span]> = sets
                .iter()
                .map(|b| Span {
                    position: b.position,
                    first_lsn: b.first_lsn,
                    last_lsn: b.last_lsn,
                })
                .collect();
            let more = take(&name, &spans);
            // Kept for the rest of the run when the file could be stamped (so a change shows).
            if let Some(stamp) = stamp {
                s.headers().files.insert(name, (stamp, spans));
            }
            if !more {
                return Ok(());
            }
        }
        i = j;
    }
    Ok(())
}

/// A file's sets as the chain takes them, each sharing the one copy of the file's name.
fn pending<'a>(name: &'a Arc<str>, spans: &'a [Span]) -> impl Iterator<Item = Pending> + 'a {
    spans.iter().map(|&span| Pending {
        name: Arc::clone(name),
        span,
    })
}
