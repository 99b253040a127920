//! Copying log backups from the backup share to the copy folder: only the files that can still
//! matter, each read once, atomically in place.
//!
//! Each file is copied under a temporary name in the destination folder and renamed into place only
//! when complete and synced, and the folder is synced after each batch of renames, so a crash never
//! leaves a half-written `.trn` that the apply step (or SQL Server's restore job) could mistake for a
//! backup; a rename lost with the power is a file copied again. `.wrk` files are backups the backup
//! agent is still writing (reference A.4) and are never copied. The share is authoritative: a
//! destination file that differs is replaced and said so.
//!
//! What is examined: a log-shipping file (`<db>_<yyyymmddhhmmss>.trn`) older than the last one
//! msdb recorded as restored is applied already and is left alone, wherever it is; every other
//! file is compared, size first, then contents. A file found identical, or copied by this run, is
//! remembered with its size and modification time on both sides ([`Verified`]), so examining the
//! step again (running it, verifying it) costs a `stat`, not another read; a file changed since
//! (a corrupt copy repaired in the share) is compared again. A copy is verified as it is made: the
//! bytes written are the bytes read, and the source must look the same after the copy as before.
//!
//! Copying is blocking file I/O, so the step runs it on a blocking thread; the `cancel` flag, checked
//! between chunks, lets the step's timeout stop it within one chunk.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

/// The end of a copy's temporary name (`.<name>.pcfail-partial`).
const PARTIAL_SUFFIX: &str = ".pcfail-partial";

/// Bytes copied between two looks at the cancel flag: a fraction of a second on any disk.
const COPY_CHUNK: u64 = 64 * 1024 * 1024;

/// Renames made durable by one folder sync (also how many files one journal record names).
pub(crate) const RENAMES_PER_SYNC: usize = 64;

#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct CopyReport {
    pub copied: Vec<String>,
    /// Present in the destination with identical contents.
    pub already_there: Vec<String>,
    /// Present in the destination with different contents, replaced from the share.
    pub replaced: Vec<String>,
    /// `.wrk` files skipped because the backup agent has not finished them.
    pub in_progress: Vec<String>,
    /// Log-shipping files older than the last one msdb recorded as restored: not examined.
    pub applied_before: usize,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum CopyError {
    #[error("cannot list `{path}`: {source}")]
    List { path: PathBuf, source: io::Error },
    #[error("cannot copy `{from}` to `{to}`: {source}")]
    Copy {
        from: PathBuf,
        to: PathBuf,
        source: io::Error,
    },
    #[error("copying stopped before `{file}` was complete (the step's time was up)")]
    Cancelled { file: PathBuf },
}

impl CopyError {
    /// True when the failure is that `share` itself cannot be listed (lost, unreachable), as opposed
    /// to one file failing to copy.
    pub(crate) fn is_share_unreadable(&self, share: &Path) -> bool {
        matches!(self, CopyError::List { path, .. } if path == share)
    }
}

/// Which files can still matter: those not older than the last log backup msdb recorded as
/// restored (`last_restored`, a file name), for the database `db`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Horizon {
    pub db: String,
    pub last_restored: Option<String>,
}

impl Horizon {
    /// Every file matters.
    pub(crate) fn everything() -> Horizon {
        Horizon::default()
    }

    fn matters(&self, name: &str) -> bool {
        match &self.last_restored {
            Some(last) if shipped_name(name, &self.db) && shipped_name(last, &self.db) => {
                name.to_ascii_lowercase() >= last.to_ascii_lowercase()
            }
            _ => true,
        }
    }
}

/// `<db>_<14 digits>.trn`, as log shipping's backup job names its files (any letter case): the
/// names whose order is the order the backups were taken in.
pub(crate) fn shipped_name(name: &str, db: &str) -> bool {
    if db.is_empty() {
        return false;
    }
    let lower = name.to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix(&db.to_ascii_lowercase())
        .and_then(|r| r.strip_prefix('_'))
        .and_then(|r| r.strip_suffix(".trn"))
    else {
        return false;
    };
    rest.len() == 14 && rest.bytes().all(|b| b.is_ascii_digit())
}

/// Files known identical in both folders in this run, with how each side looked then. One entry
/// per file of the share: the name once, two 16-byte stamps.
#[derive(Debug, Default)]
pub(crate) struct Verified {
    files: HashMap<Box<str>, (Stamp, Stamp)>,
}

/// A file's size and modification time: what says it is still the file that was examined. The
/// time is kept as nanoseconds from the Unix epoch (`i64::MIN` when the platform gives none), so
/// a stamp is 16 bytes: caches keep one for every file of a backlog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    len: u64,
    modified_ns: i64,
}

impl Stamp {
    pub(crate) fn of(path: &Path) -> Option<Stamp> {
        let meta = fs::metadata(path).ok()?;
        let modified_ns = meta.modified().map_or(i64::MIN, |t| {
            match t.duration_since(SystemTime::UNIX_EPOCH) {
                Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
                Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN + 1, |n| -n),
            }
        });
        Some(Stamp {
            len: meta.len(),
            modified_ns,
        })
    }
}

/// The `.trn` files in `dir`, by name, and the `.wrk` ones apart.
pub(crate) fn list_log_backups(dir: &Path) -> Result<(Vec<String>, Vec<String>), CopyError> {
    let list_err = |source| CopyError::List {
        path: dir.to_owned(),
        source,
    };
    let mut trn = Vec::new();
    let mut wrk = Vec::new();
    for entry in fs::read_dir(dir).map_err(list_err)? {
        let entry = entry.map_err(list_err)?;
        if !entry.file_type().map_err(list_err)?.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".trn") {
            trn.push(name);
        } else if lower.ends_with(".wrk") {
            wrk.push(name);
        }
    }
    trn.sort();
    wrk.sort();
    Ok((trn, wrk))
}

/// What `from` holds that `to` lacks or holds differently.
enum State {
    Missing,
    Differs,
    Same,
}

fn state(from: &Path, to: &Path, name: &str, verified: &mut Verified) -> Result<State, CopyError> {
    let (src, dst) = (from.join(name), to.join(name));
    let copy_err = |source| CopyError::Copy {
        from: src.clone(),
        to: dst.clone(),
        source,
    };
    let (Some(a), Some(b)) = (Stamp::of(&src), Stamp::of(&dst)) else {
        return Ok(if dst.exists() {
            State::Differs
        } else {
            State::Missing
        });
    };
    if verified.files.get(name) == Some(&(a, b)) {
        return Ok(State::Same);
    }
    if a.len != b.len || !identical(&src, &dst).map_err(copy_err)? {
        return Ok(State::Differs);
    }
    verified.files.insert(name.into(), (a, b));
    Ok(State::Same)
}

/// Names of the `.trn` files of `from` that matter and are missing from `to` or differ there.
pub(crate) fn pending(
    from: &Path,
    to: &Path,
    horizon: &Horizon,
    verified: &mut Verified,
) -> Result<Vec<String>, CopyError> {
    let (names, _) = list_log_backups(from)?;
    let mut out = Vec::new();
    for name in names.into_iter().filter(|n| horizon.matters(n)) {
        if !matches!(state(from, to, &name, verified)?, State::Same) {
            out.push(name);
        }
    }
    Ok(out)
}

/// Copies every `.trn` of `from` that matters and that `to` lacks or holds differently. `progress`
/// is called before each file; `cancel` stops the copy between chunks (the file in progress is not
/// renamed into place).
///
/// Files go in batches of [`RENAMES_PER_SYNC`]: each is written under its temporary name, then the
/// batch's files are synced, renamed into place and the folder synced once. A file is never
/// renamed before its bytes are durable; syncing a batch after writing it lets the disk work on
/// all of its files at once instead of waiting on each in turn (what `cp` then `sync` does).
pub(crate) fn copy_missing(
    from: &Path,
    to: &Path,
    horizon: &Horizon,
    verified: &mut Verified,
    mut progress: impl FnMut(usize, usize, &str),
    cancel: &AtomicBool,
) -> Result<CopyReport, CopyError> {
    let (names, wrk) = list_log_backups(from)?;
    let (names, before): (Vec<String>, Vec<String>) =
        names.into_iter().partition(|n| horizon.matters(n));
    let mut report = CopyReport {
        in_progress: wrk,
        applied_before: before.len(),
        ..CopyReport::default()
    };
    remove_partials(to);
    let total = names.len();
    let mut batch = Batch::default();
    for (i, name) in names.into_iter().enumerate() {
        progress(i + 1, total, &name);
        let replacing = match state(from, to, &name, verified)? {
            State::Same => {
                report.already_there.push(name);
                continue;
            }
            State::Missing => false,
            State::Differs => true,
        };
        let src = from.join(&name);
        let dst = to.join(&name);
        let before = Stamp::of(&src);
        match write_partial(&src, &dst, cancel) {
            Ok(Some((tmp, file))) => batch.files.push(Written {
                name,
                src,
                dst,
                tmp,
                file,
                before,
                replacing,
            }),
            Ok(None) => {
                batch.abandon(to);
                return Err(CopyError::Cancelled { file: src });
            }
            Err(source) => {
                batch.abandon(to);
                return Err(CopyError::Copy {
                    from: src,
                    to: dst,
                    source,
                });
            }
        }
        if batch.files.len() == RENAMES_PER_SYNC {
            batch.commit(to, verified, &mut report)?;
        }
    }
    batch.commit(to, verified, &mut report)?;
    Ok(report)
}

/// Removes the temporary files a run stopped by a crash or kill left in `dir` (up to a batch of
/// them): their names are pcfail's own, so nothing else made them.
fn remove_partials(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(PARTIAL_SUFFIX) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// A file written under its temporary name, not yet synced or renamed.
struct Written {
    name: String,
    src: PathBuf,
    dst: PathBuf,
    tmp: PathBuf,
    file: File,
    /// The source as it looked before it was read.
    before: Option<Stamp>,
    replacing: bool,
}

/// The files written since the last folder sync.
#[derive(Default)]
struct Batch {
    files: Vec<Written>,
}

impl Batch {
    /// Syncs every file, renames each into place, syncs the folder, and records what was copied.
    fn commit(
        &mut self,
        to: &Path,
        verified: &mut Verified,
        report: &mut CopyReport,
    ) -> Result<(), CopyError> {
        if self.files.is_empty() {
            return Ok(());
        }
        for k in 0..self.files.len() {
            if let Err(source) = self.files[k].file.sync_all() {
                let failed = &self.files[k];
                let err = CopyError::Copy {
                    from: failed.src.clone(),
                    to: failed.dst.clone(),
                    source,
                };
                self.abandon(to);
                return Err(err);
            }
        }
        let files = std::mem::take(&mut self.files);
        for (renamed, w) in files.iter().enumerate() {
            crate::crash::point("before a copied log backup is renamed into place");
            if let Err(source) = fs::rename(&w.tmp, &w.dst) {
                self.files = files.into_iter().skip(renamed).collect();
                let failed = &self.files[0];
                let err = CopyError::Copy {
                    from: failed.src.clone(),
                    to: failed.dst.clone(),
                    source,
                };
                self.abandon(to);
                return Err(err);
            }
            crate::crash::point("after a copied log backup is renamed into place");
        }
        sync_folder(to);
        for w in files {
            // The bytes written are the bytes read; if the source did not change meanwhile, the
            // copy is identical to it without reading either again.
            if let (Some(a), Some(b)) = (w.before, Stamp::of(&w.dst))
                && Stamp::of(&w.src) == Some(a)
            {
                verified.files.insert(w.name.as_str().into(), (a, b));
            }
            if w.replacing {
                report.replaced.push(w.name);
            } else {
                report.copied.push(w.name);
            }
        }
        Ok(())
    }

    /// Removes the files not renamed into place, and makes what was renamed durable.
    fn abandon(&mut self, to: &Path) {
        for w in self.files.drain(..) {
            drop(w.file);
            let _ = fs::remove_file(&w.tmp);
        }
        sync_folder(to);
    }
}

/// Copies `src` to a temporary name beside `dst`, not synced yet; `Ok(None)` when `cancel`
/// stopped it (the temporary file is removed).
fn write_partial(
    src: &Path,
    dst: &Path,
    cancel: &AtomicBool,
) -> io::Result<Option<(PathBuf, File)>> {
    let name = dst
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A dot-name without .trn: no scanner (ours or sqllogship's) takes it for a backup.
    let tmp = dst.with_file_name(format!(".{name}{PARTIAL_SUFFIX}"));
    let mut input = File::open(src)?;
    // Opened for writing, so that syncing it works on every platform (Windows refuses to flush a
    // file opened read-only).
    let mut output = File::create(&tmp)?;
    // `io::copy` between files lets the kernel copy (copy_file_range on Linux, as `cp` does): the
    // bytes never pass through pcfail, and no buffer of ours can differ from what was read. A
    // chunk at a time, so that `cancel` is seen within one chunk.
    loop {
        if cancel.load(Ordering::Relaxed) {
            drop(output);
            let _ = fs::remove_file(&tmp);
            return Ok(None);
        }
        match io::copy(&mut (&mut input).take(COPY_CHUNK), &mut output) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                drop(output);
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        }
    }
    Ok(Some((tmp, output)))
}

/// Makes the renames in `dir` durable (Unix; Windows has no handle to sync a folder through).
fn sync_folder(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// True when both files have the same bytes (sizes were compared already). Compares in chunks.
fn identical(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 256 * 1024], vec![0u8; 256 * 1024]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(fb.read(&mut bb[..1])? == 0);
        }
        if fb.read_exact(&mut bb[..n]).is_err() || ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy_all(share: &Path, copy: &Path, horizon: &Horizon, v: &mut Verified) -> CopyReport {
        copy_missing(
            share,
            copy,
            horizon,
            v,
            |_, _, _| {},
            &AtomicBool::new(false),
        )
        .unwrap()
    }

    #[test]
    fn copies_missing_skips_identical_replaces_different_and_ignores_wrk() {
        let share = tempfile::tempdir().unwrap();
        let copy = tempfile::tempdir().unwrap();
        fs::write(share.path().join("mgc_20261122040000.trn"), b"one").unwrap();
        fs::write(share.path().join("mgc_20261122040500.trn"), b"two").unwrap();
        fs::write(share.path().join("mgc_20261122041000.trn"), b"three").unwrap();
        fs::write(share.path().join("mgc_20261122041500.wrk"), b"half").unwrap();
        fs::write(copy.path().join("mgc_20261122040000.trn"), b"one").unwrap();
        fs::write(copy.path().join("mgc_20261122040500.trn"), b"tw").unwrap();
        let everything = Horizon::everything();
        let mut verified = Verified::default();

        assert_eq!(
            pending(share.path(), copy.path(), &everything, &mut verified).unwrap(),
            vec!["mgc_20261122040500.trn", "mgc_20261122041000.trn"]
        );
        let mut calls = Vec::new();
        let report = copy_missing(
            share.path(),
            copy.path(),
            &everything,
            &mut verified,
            |i, n, _| calls.push((i, n)),
            &AtomicBool::new(false),
        )
        .unwrap();
        assert_eq!(
            report,
            CopyReport {
                copied: vec!["mgc_20261122041000.trn".into()],
                already_there: vec!["mgc_20261122040000.trn".into()],
                replaced: vec!["mgc_20261122040500.trn".into()],
                in_progress: vec!["mgc_20261122041500.wrk".into()],
                applied_before: 0,
            }
        );
        assert_eq!(calls, vec![(1, 3), (2, 3), (3, 3)]);
        assert_eq!(
            fs::read(copy.path().join("mgc_20261122040500.trn")).unwrap(),
            b"two"
        );
        assert!(!copy.path().join("mgc_20261122041500.wrk").exists());
        // Verified from what the run remembers, and from the files themselves by a fresh run.
        assert!(
            pending(share.path(), copy.path(), &everything, &mut verified)
                .unwrap()
                .is_empty()
        );
        assert!(
            pending(
                share.path(),
                copy.path(),
                &everything,
                &mut Verified::default()
            )
            .unwrap()
            .is_empty()
        );
        // No temporary file is left behind.
        let leftovers: Vec<_> = fs::read_dir(copy.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("pcfail-partial"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn a_same_sized_file_with_other_bytes_is_replaced_even_after_it_was_verified() {
        let share = tempfile::tempdir().unwrap();
        let copy = tempfile::tempdir().unwrap();
        let name = "mgc_20261122040000.trn";
        fs::write(share.path().join(name), b"good").unwrap();
        fs::write(copy.path().join(name), b"good").unwrap();
        let everything = Horizon::everything();
        let mut verified = Verified::default();
        assert!(
            pending(share.path(), copy.path(), &everything, &mut verified)
                .unwrap()
                .is_empty()
        );
        // The copy is damaged (same size), and later repaired in the share: each change is seen.
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(copy.path().join(name), b"bad!").unwrap();
        assert_eq!(
            pending(share.path(), copy.path(), &everything, &mut verified).unwrap(),
            vec![name]
        );
        let report = copy_all(share.path(), copy.path(), &everything, &mut verified);
        assert_eq!(report.replaced, vec![name]);
        assert_eq!(fs::read(copy.path().join(name)).unwrap(), b"good");
    }

    #[test]
    fn log_shipping_files_older_than_the_last_restored_are_not_examined() {
        let share = tempfile::tempdir().unwrap();
        let copy = tempfile::tempdir().unwrap();
        for (name, bytes) in [
            ("mgc_20261122040000.trn", &b"old, applied"[..]),
            ("mgc_20261122040500.trn", b"last restored"),
            ("mgc_20261122041000.trn", b"pending"),
            ("mgc_tail.trn", b"named by hand"),
        ] {
            fs::write(share.path().join(name), bytes).unwrap();
        }
        let horizon = Horizon {
            db: "mgc".into(),
            last_restored: Some("MGC_20261122040500.trn".into()),
        };
        let mut verified = Verified::default();
        assert_eq!(
            pending(share.path(), copy.path(), &horizon, &mut verified).unwrap(),
            vec![
                "mgc_20261122040500.trn",
                "mgc_20261122041000.trn",
                "mgc_tail.trn"
            ]
        );
        let report = copy_all(share.path(), copy.path(), &horizon, &mut verified);
        assert_eq!(report.applied_before, 1);
        assert_eq!(report.copied.len(), 3);
        assert!(!copy.path().join("mgc_20261122040000.trn").exists());
    }

    #[test]
    fn only_log_shipping_names_are_ordered() {
        assert!(shipped_name("mgc_20261129193527.trn", "mgc"));
        assert!(shipped_name("MGC_20261129193527.TRN", "mgc"));
        for other in [
            "mgc_tail.trn",
            "mgc_2026112919352.trn",
            "mgc_202611291935270.trn",
            "mgccomp_20261129193527.trn",
            "mgc20261129193527.trn",
            "mgc_20261129193527.trn.wrk",
            "mgc_2026112919352x.trn",
        ] {
            assert!(!shipped_name(other, "mgc"), "{other}");
        }
        assert!(!shipped_name("_20261129193527.trn", ""));
    }

    #[test]
    fn a_cancelled_copy_leaves_no_file_behind() {
        let share = tempfile::tempdir().unwrap();
        let copy = tempfile::tempdir().unwrap();
        fs::write(share.path().join("mgc_20261122040000.trn"), b"one").unwrap();
        let err = copy_missing(
            share.path(),
            copy.path(),
            &Horizon::everything(),
            &mut Verified::default(),
            |_, _, _| {},
            &AtomicBool::new(true),
        )
        .unwrap_err();
        assert!(matches!(err, CopyError::Cancelled { .. }), "{err}");
        assert_eq!(fs::read_dir(copy.path()).unwrap().count(), 0);
    }

    #[test]
    fn batches_of_files_are_all_copied_and_a_killed_runs_partials_are_removed() {
        let share = tempfile::tempdir().unwrap();
        let copy = tempfile::tempdir().unwrap();
        // More than two batches, so that full batches and a last partial one are committed.
        let names: Vec<String> = (0..RENAMES_PER_SYNC * 2 + 5)
            .map(|i| format!("mgc_20261122{:06}.trn", i))
            .collect();
        for (i, name) in names.iter().enumerate() {
            fs::write(share.path().join(name), format!("backup {i}")).unwrap();
        }
        // What a run killed between writing and renaming leaves behind.
        let stale = copy
            .path()
            .join(format!(".mgc_20261121000000.trn{PARTIAL_SUFFIX}"));
        fs::write(&stale, b"half").unwrap();
        let mut verified = Verified::default();
        let report = copy_missing(
            share.path(),
            copy.path(),
            &Horizon::everything(),
            &mut verified,
            |_, _, _| {},
            &AtomicBool::new(false),
        )
        .unwrap();
        assert_eq!(report.copied, names);
        for (i, name) in names.iter().enumerate() {
            assert_eq!(
                fs::read_to_string(copy.path().join(name)).unwrap(),
                format!("backup {i}")
            );
        }
        assert!(!stale.exists(), "the stale partial file is removed");
        assert_eq!(
            fs::read_dir(copy.path()).unwrap().count(),
            names.len(),
            "nothing but the copies"
        );
    }

    #[test]
    fn a_missing_share_is_reported_with_its_path() {
        let copy = tempfile::tempdir().unwrap();
        let err = copy_missing(
            Path::new("/nonexistent/pcfail-share"),
            copy.path(),
            &Horizon::everything(),
            &mut Verified::default(),
            |_, _, _| {},
            &AtomicBool::new(false),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot list `/nonexistent/pcfail-share`: "),
            "{err}"
        );
    }
}
