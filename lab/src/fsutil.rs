//! Atomic file replacement for the files other processes read while the lab writes them (lab.json,
//! state.json).
//!
//! Atomic means a temporary file in the same directory, fsync, then a replacing rename (tempfile's
//! `persist`, which replaces an existing file on Unix and on Windows alike): a reader (another
//! `pcfail` process polling lab.json, a test reading state.json) sees the old file or the new one,
//! never a torn one.

use std::io::Write;
use std::path::Path;

use crate::error::LabError;

/// Writes `bytes` to `path` through a temporary sibling and a rename. `private` files (lab.json holds
/// the sa password) are readable by their owner only on Unix (tempfile creates them 0600); others get
/// the usual 0644. On Windows both get the folder's ACL.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> Result<(), LabError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let suffix = format!(".{file_name}.tmp");
    let mut builder = tempfile::Builder::new();
    // A dot name, so that a listing of the lab folder (the share, say) never shows it as a real file.
    builder.prefix(".").suffix(&suffix);
    #[cfg(unix)]
    if !private {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut tmp = builder
        .tempfile_in(dir)
        .map_err(|e| LabError::io("create a temporary file in", dir, e))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| LabError::io("write", tmp.path(), e))?;
    tmp.persist(path)
        .map_err(|e| LabError::io("replace", path, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_the_whole_file_and_leaves_no_temp_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lab.json");
        write_atomic(&path, b"first, longer content", true).unwrap();
        write_atomic(&path, b"second", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("lab.json")]);
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_owner_only_and_others_readable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |name: &str, private: bool| {
            let path = dir.path().join(name);
            write_atomic(&path, b"x", private).unwrap();
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777
        };
        assert_eq!(
            (mode("lab.json", true), mode("state.json", false)),
            (0o600, 0o644)
        );
    }
}
