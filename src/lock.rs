//! The local half of "only one run at a time": an OS file lock in the state directory.
//!
//! The lock is the kernel's (`flock`/`LockFileEx` through `File::try_lock`), so it disappears with the
//! process even after kill -9 and never needs a stale-lock cleanup. The file also records who holds it,
//! only so the refusal message can name them; its contents are never trusted for the decision. The
//! other half, against a second machine, is `sp_getapplock` on the backup instance (the executor's).

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another pcfail run holds the lock `{path}` ({holder})")]
    Held { path: PathBuf, holder: String },
    #[error("cannot take the lock `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Held until dropped.
#[derive(Debug)]
pub(crate) struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the lock without waiting. `who` is written into the file for the next refusal message.
    pub(crate) fn acquire(dir: &Path, who: &str) -> Result<RunLock, LockError> {
        let path = dir.join("pcfail.lock");
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        crate::private::create_dir(dir).map_err(io)?;
        let mut file = crate::private::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        crate::private::restrict(&file).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Held {
                    path,
                    holder: if holder.is_empty() {
                        "holder unknown".to_owned()
                    } else {
                        holder.to_owned()
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(who.as_bytes()).map_err(io)?;
        Ok(RunLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_holders_name_and_can_take_it_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path(), "alice on host1, pid 10").unwrap();
        let err = RunLock::acquire(dir.path(), "bob").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "another pcfail run holds the lock `{}` (alice on host1, pid 10)",
                dir.path().join("pcfail.lock").display()
            )
        );
        drop(first);
        RunLock::acquire(dir.path(), "bob").unwrap();
    }
}
