//! Copying log backups from the backup share to the copy folder, one file at a time, atomically.
//!
//! Each file is copied under a temporary name in the destination folder and renamed into place only
//! when complete and synced (the file, then the folder, so the rename survives a crash too), so a
//! crash never leaves a half-written `.trn` that the apply step (or SQL Server's restore job) could
//! mistake for a backup. Files already present with identical contents are left alone; `.wrk` files
//! are backups the backup agent is still writing (reference A.4) and are never copied. The share is
//! authoritative: a destination file that differs is replaced and said so.
//!
//! Copying is blocking file I/O, so the step runs it on a blocking thread; the `cancel` flag, checked
//! between chunks, lets the step's timeout stop it within one chunk.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct CopyReport {
    pub copied: Vec<String>,
    /// Present in the destination with identical contents.
    pub already_there: Vec<String>,
    /// Present in the destination with different contents, replaced from the share.
    pub replaced: Vec<String>,
    /// `.wrk` files skipped because the backup agent has not finished them.
    pub in_progress: Vec<String>,
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

/// Names of `.trn` files in `from` that are missing from `to` or differ there.
pub(crate) fn pending(from: &Path, to: &Path) -> Result<Vec<String>, CopyError> {
    let (names, _) = list_log_backups(from)?;
    let mut out = Vec::new();
    for name in names {
        let same =
            identical(&from.join(&name), &to.join(&name)).map_err(|source| CopyError::Copy {
                from: from.join(&name),
                to: to.join(&name),
                source,
            })?;
        if !same {
            out.push(name);
        }
    }
    Ok(out)
}

/// Copies every `.trn` of `from` that `to` lacks. `progress` is called before each file; `cancel`
/// stops the copy between chunks (the file in progress is not renamed into place).
pub(crate) fn copy_missing(
    from: &Path,
    to: &Path,
    mut progress: impl FnMut(usize, usize, &str),
    cancel: &AtomicBool,
) -> Result<CopyReport, CopyError> {
    let (names, wrk) = list_log_backups(from)?;
    let mut report = CopyReport {
        in_progress: wrk,
        ..CopyReport::default()
    };
    let total = names.len();
    for (i, name) in names.into_iter().enumerate() {
        let src = from.join(&name);
        let dst = to.join(&name);
        let copy_err = |source| CopyError::Copy {
            from: src.clone(),
            to: dst.clone(),
            source,
        };
        let exists = dst.exists();
        progress(i + 1, total, &name);
        if exists && identical(&src, &dst).map_err(copy_err)? {
            report.already_there.push(name);
        } else {
            match copy_atomically(&src, &dst, cancel) {
                Ok(true) => {}
                Ok(false) => return Err(CopyError::Cancelled { file: src }),
                Err(e) => return Err(copy_err(e)),
            }
            if exists {
                report.replaced.push(name);
            } else {
                report.copied.push(name);
            }
        }
    }
    Ok(report)
}

/// Copies `src` to `dst` by way of a temporary name; `Ok(false)` when `cancel` stopped it (the
/// temporary file is removed).
fn copy_atomically(src: &Path, dst: &Path, cancel: &AtomicBool) -> io::Result<bool> {
    let name = dst
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A dot-name without .trn: no scanner (ours or sqllogship's) takes it for a backup.
    let tmp = dst.with_file_name(format!(".{name}.pcfail-partial"));
    let mut input = File::open(src)?;
    // Opened for writing, so that syncing it works on every platform (Windows refuses to flush a
    // file opened read-only).
    let mut output = File::create(&tmp)?;
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        if cancel.load(Ordering::Relaxed) {
            drop(output);
            let _ = fs::remove_file(&tmp);
            return Ok(false);
        }
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        output.write_all(&buf[..n])?;
    }
    output.sync_all()?;
    drop(output);
    crate::crash::point("before a copied log backup is renamed into place");
    fs::rename(&tmp, dst)?;
    sync_folder(dst.parent().unwrap_or(Path::new(".")));
    crate::crash::point("after a copied log backup is renamed into place");
    Ok(true)
}

/// Makes a rename in `dir` durable (Unix; Windows has no handle to sync a folder through).
fn sync_folder(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// True when both files exist with the same bytes. Compares sizes first, then contents in chunks.
fn identical(a: &Path, b: &Path) -> io::Result<bool> {
    let (Ok(ma), Ok(mb)) = (fs::metadata(a), fs::metadata(b)) else {
        return Ok(false);
    };
    if ma.len() != mb.len() {
        return Ok(false);
    }
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(true);
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

        assert_eq!(
            pending(share.path(), copy.path()).unwrap(),
            vec!["mgc_20261122040500.trn", "mgc_20261122041000.trn"]
        );
        let mut calls = Vec::new();
        let report = copy_missing(
            share.path(),
            copy.path(),
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
            }
        );
        assert_eq!(calls, vec![(1, 3), (2, 3), (3, 3)]);
        assert_eq!(
            fs::read(copy.path().join("mgc_20261122040500.trn")).unwrap(),
            b"two"
        );
        assert!(!copy.path().join("mgc_20261122041500.wrk").exists());
        assert!(pending(share.path(), copy.path()).unwrap().is_empty());
        // No temporary file is left behind.
        let leftovers: Vec<_> = fs::read_dir(copy.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("pcfail-partial"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn a_cancelled_copy_leaves_no_file_behind() {
        let share = tempfile::tempdir().unwrap();
        let copy = tempfile::tempdir().unwrap();
        fs::write(share.path().join("mgc_20261122040000.trn"), b"one").unwrap();
        let err = copy_missing(
            share.path(),
            copy.path(),
            |_, _, _| {},
            &AtomicBool::new(true),
        )
        .unwrap_err();
        assert!(matches!(err, CopyError::Cancelled { .. }), "{err}");
        assert_eq!(fs::read_dir(copy.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_missing_share_is_reported_with_its_path() {
        let copy = tempfile::tempdir().unwrap();
        let err = copy_missing(
            Path::new("/nonexistent/pcfail-share"),
            copy.path(),
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
