//! Failover step 3: restore, in sequence, every copied log backup the database has not applied yet.
//!
//! The set of files depends on live state: the headers of the files in the copy folder and the
//! database's redo point. A file is applied when `FirstLSN <= redo_start_lsn < LastLSN` (reference
//! B.5); a file whose FirstLSN is past the redo point is a gap, and applying stops there.

use std::time::Duration;

use super::copy_log_backups::copy_folder_from;
use super::{Command, MINUTE, Target, ident};
use crate::runbook::{Role, StepReader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyLogBackups {
    pub instance: Role,
    pub database: String,
    pub copy_folder: Option<String>,
}

impl ApplyLogBackups {
    pub(crate) fn parse(r: &mut StepReader<'_, '_, '_, '_>) -> Option<Self> {
        let instance = r.instance_or("instance", Role::Backup);
        let database = r.database("database");
        let copy_folder = r.context().overrides.copy_folder.clone();
        Some(Self {
            instance: instance?,
            database: database?,
            copy_folder,
        })
    }

    pub fn name(&self) -> &'static str {
        "apply_log_backups"
    }

    pub fn describe(&self) -> String {
        format!(
            "Apply the unapplied log backups of `{}` in sequence",
            self.database
        )
    }

    pub fn render(&self) -> Vec<Command> {
        vec![Command::Computed {
            what: format!(
                "RESTORE LOG {} FROM DISK = N'<file>' WITH NORECOVERY for each copied log backup whose LastLSN is past the redo point, oldest first, stopping at a gap in the LSN chain",
                ident(&self.database)
            ),
            from: format!(
                "RESTORE HEADERONLY of each file in {} and sys.master_files.redo_start_lsn of `{}` on {}",
                copy_folder_from(self.instance, self.copy_folder.as_deref()),
                self.database,
                self.instance,
            ),
        }]
    }

    pub fn target(&self) -> Target {
        Target::Instance(self.instance)
    }

    /// Applying with NORECOVERY keeps the database restoring: nothing is lost if pcfail stops here.
    pub fn irreversible(&self) -> bool {
        false
    }

    pub fn default_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(60 * MINUTE))
    }
}
