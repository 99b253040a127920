//! `DaemonLock`: DIR/lab.lock, locked by the process that runs the lab for as long as it runs.
//!
//! Whether a lab is alive is whether its lock is held. The kernel releases a lock when its holder
//! exits, however it exits (a crash, `kill -9`, a zombie not yet reaped), and a lock cannot outlive
//! its process to be confused with a stranger that later gets the same pid. It needs nothing beyond
//! the standard library's file locks (`flock` on Unix, `LockFileEx` on Windows), so liveness reads
//! the same on every platform, where a pid would need /proc on Linux and the process API on Windows.
//! The pid in lab.json stays, for people and messages.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::LabError;

/// How long `acquire` keeps trying while the lock is taken: a process checking liveness holds a
/// shared lock for an instant, a running lab holds it for good.
const ACQUIRE_TRIES: u32 = 40;
const ACQUIRE_PAUSE: Duration = Duration::from_millis(25);

/// The held lock; dropping it (or exiting) releases it.
#[derive(Debug)]
pub(crate) struct DaemonLock {
    _file: File,
}

impl DaemonLock {
    pub(crate) fn path(dir: &Path) -> PathBuf {
        dir.join("lab.lock")
    }

    /// Takes the lock of the lab in `dir`; `Ok(None)` when a running lab holds it.
    pub(crate) fn acquire(dir: &Path) -> Result<Option<DaemonLock>, LabError> {
        let path = DaemonLock::path(dir);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| LabError::io("open", &path, e))?;
        for _ in 0..ACQUIRE_TRIES {
            match file.try_lock() {
                Ok(()) => return Ok(Some(DaemonLock { _file: file })),
                Err(TryLockError::WouldBlock) => std::thread::sleep(ACQUIRE_PAUSE),
                Err(TryLockError::Error(e)) => return Err(LabError::io("lock", &path, e)),
            }
        }
        Ok(None)
    }

    /// Whether a running process holds the lock of the lab in `dir`. A folder without a lock file,
    /// or whose file system cannot lock, has no running lab as far as this can tell.
    pub(crate) fn held(dir: &Path) -> bool {
        let path = DaemonLock::path(dir);
        let Ok(file) = File::open(&path) else {
            return false;
        };
        match file.try_lock_shared() {
            // Ours for an instant: released when `file` is dropped.
            Ok(()) => false,
            Err(TryLockError::WouldBlock) => true,
            Err(TryLockError::Error(e)) => {
                tracing::warn!(path = %path.display(), "cannot check the lab's lock: {e}");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_is_held_while_its_holder_keeps_it_and_only_once() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!DaemonLock::held(dir.path()), "no lock file yet");
        let lock = DaemonLock::acquire(dir.path()).unwrap().expect("free");
        assert!(DaemonLock::held(dir.path()));
        assert!(DaemonLock::acquire(dir.path()).unwrap().is_none(), "taken");
        drop(lock);
        assert!(!DaemonLock::held(dir.path()));
        assert!(
            DaemonLock::acquire(dir.path()).unwrap().is_some(),
            "free again"
        );
    }
}
