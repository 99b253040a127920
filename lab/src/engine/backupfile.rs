//! The lab's backup file format: what BACKUP writes and RESTORE reads.
//!
//! A file is a media header plus one or more backup sets (NOINIT appends, INIT/FORMAT overwrite), so
//! RESTORE ... WITH FILE = n and HEADERONLY's one-row-per-set work as on SQL Server (reference B.1).
//! The lab stores the metadata HEADERONLY shows plus the chat records the set carries, as JSON after a
//! magic line, so a person can read a lab backup and a stray file is recognised as "not a backup" (3241).

use std::io::ErrorKind;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::LabTime;
use super::errors::SqlError;
use super::guid::Guid;
use super::lsn::Lsn;
use super::model::{ChatRecord, DbFile, Recovery};
use super::paths::{LabPath, OsError};

const MAGIC: &str = "PCFAIL-LAB-BACKUP 1\n";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct BackupFile {
    pub media_set_guid: Guid,
    pub sets: Vec<BackupSet>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct BackupSet {
    pub position: i64,
    /// 'D' full database, 'L' transaction log.
    pub kind: char,
    pub name: Option<String>,
    pub description: Option<String>,
    pub user_name: String,
    pub server_name: String,
    pub machine_name: String,
    pub database_name: String,
    pub database_creation_date: LabTime,
    pub backup_start_date: LabTime,
    pub backup_finish_date: LabTime,
    pub first_lsn: Lsn,
    pub last_lsn: Lsn,
    pub checkpoint_lsn: Lsn,
    pub database_backup_lsn: Lsn,
    pub family_guid: Guid,
    pub database_guid: Guid,
    pub fork_guid: Guid,
    pub backup_set_guid: Guid,
    pub recovery: Recovery,
    pub compressed: bool,
    pub checksums: bool,
    pub copy_only: bool,
    /// The set's pages are damaged on the media (a test sets this in the file): its header still reads,
    /// but `RESTORE VERIFYONLY ... WITH CHECKSUM` finds it (3189) and a RESTORE of it fails (3183).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub damaged: bool,
    pub pages: i64,
    pub files: Vec<DbFile>,
    /// Full: every record below last_lsn. Log: the records in [first_lsn, last_lsn).
    pub records: Vec<ChatRecord>,
}

impl BackupSet {
    pub(crate) fn backup_size(&self) -> i64 {
        self.pages * 8192 + 10_240
    }
    pub(crate) fn compressed_size(&self) -> i64 {
        if self.compressed {
            self.backup_size() / 5
        } else {
            self.backup_size()
        }
    }
}

/// 3201 for an I/O error on `p`, with the OS error Windows would report.
pub(crate) fn device_error(p: &LabPath, e: &std::io::Error) -> SqlError {
    let os = match e.kind() {
        ErrorKind::NotFound
            if p.real
                .parent()
                .is_some_and(|d| !d.as_os_str().is_empty() && !d.exists()) =>
        {
            OsError::PathNotFound
        }
        ErrorKind::NotFound => OsError::FileNotFound,
        ErrorKind::PermissionDenied => OsError::AccessDenied,
        _ => OsError::DeviceError,
    };
    os.device(&p.shown)
}

pub(crate) fn read(p: &LabPath) -> Result<BackupFile, SqlError> {
    let text = std::fs::read_to_string(&p.real).map_err(|e| device_error(p, &e))?;
    let body = text
        .strip_prefix(MAGIC)
        .ok_or_else(|| SqlError::new(3241, &[&p.shown]))?;
    serde_json::from_str(body).map_err(|_| SqlError::new(3241, &[&p.shown]))
}

/// Writes the whole file; a reader never sees a half-written one because the lab writes a temporary
/// file next to it and renames it (the log-shipping job adds its own `.wrk` step on top).
pub(crate) fn write(p: &LabPath, file: &BackupFile) -> Result<(), SqlError> {
    let body = serde_json::to_string(file).expect("backup sets serialize");
    let mut tmp = p.real.clone().into_os_string();
    tmp.push(".lab-tmp");
    std::fs::write(&tmp, format!("{MAGIC}{body}")).map_err(|e| device_error(p, &e))?;
    std::fs::rename(&tmp, &p.real).map_err(|e| device_error(p, &e))
}

/// A lab path taken as given (the engine's own files: the initial full backup, job files).
pub(crate) fn local(path: &Path) -> LabPath {
    LabPath {
        shown: path.to_string_lossy().into_owned(),
        real: path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_and_missing_folder_give_os_errors_2_and_3() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("none.trn");
        let e = read(&local(&file)).unwrap_err();
        assert_eq!(e.number, 3201);
        assert!(
            e.text
                .ends_with("Operating system error 2(The system cannot find the file specified.)."),
            "{}",
            e.text
        );
        let nested = dir.path().join("nowhere/none.trn");
        let e = read(&local(&nested)).unwrap_err();
        assert!(
            e.text
                .ends_with("Operating system error 3(The system cannot find the path specified.)."),
            "{}",
            e.text
        );
    }

    #[test]
    fn a_file_that_is_not_a_lab_backup_is_error_3241() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.trn");
        std::fs::write(&file, "hello").unwrap();
        assert_eq!(read(&local(&file)).unwrap_err().number, 3241);
    }
}
