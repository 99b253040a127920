//! Small file-system helpers the runtime shares: atomic writes and "is that process alive".
//!
//! Atomic means temp file in the same directory, fsync, rename: a reader (another `pcfail` process
//! polling lab.json, a test reading state.json) sees the old file or the new one, never a torn one.

use std::io::Write;
use std::path::Path;

use crate::error::LabError;

/// Writes `bytes` to `path` through a temporary sibling and a rename. `private` files (lab.json holds
/// the sa password) are created readable by their owner only.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> Result<(), LabError> {
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    // The pid keeps two processes (a stale daemon and its successor) from sharing a temp file.
    let tmp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = options.open(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(source) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(LabError::io("write", tmp, source));
    }
    std::fs::rename(&tmp, path).map_err(|source| LabError::io("replace", path, source))
}

/// `N` bytes from the kernel's random source (passwords, port choice).
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], LabError> {
    let urandom = Path::new("/dev/urandom");
    let mut bytes = [0u8; N];
    let mut file = std::fs::File::open(urandom).map_err(|e| LabError::io("open", urandom, e))?;
    std::io::Read::read_exact(&mut file, &mut bytes)
        .map_err(|e| LabError::io("read", urandom, e))?;
    Ok(bytes)
}

/// Whether process `pid` exists and is not a zombie. Linux only (reads /proc), which is where the lab
/// runs; a zombie counts as gone because a crashed daemon whose parent has not reaped it is gone.
pub(crate) fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Field 3 is the state; field 2 (comm) is parenthesised and may contain spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
            .unwrap_or(false),
        Err(_) => false,
    }
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
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        assert!(process_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_alive(pid));
    }
}
