//! Fail-back: end database mirroring on the backup instance (`ALTER DATABASE ... SET PARTNER OFF`).
//!
//! Either partner may run it; it removes the session for both copies and leaves the former mirror
//! RESTORING (reference E.3). Re-establishing it means a new full backup and restore.

use std::time::Duration;

use super::{Command, MINUTE, Target, ident};
use crate::runbook::{Role, StepReader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveMirroring {
    pub instance: Role,
    pub database: String,
}

impl RemoveMirroring {
    pub(crate) fn parse(r: &mut StepReader<'_, '_, '_, '_>) -> Option<Self> {
        let instance = r.instance_or("instance", Role::Backup);
        let database = r.database("database");
        Some(Self {
            instance: instance?,
            database: database?,
        })
    }

    pub fn name(&self) -> &'static str {
        "remove_mirroring"
    }

    pub fn describe(&self) -> String {
        format!(
            "Remove database mirroring of `{}` on the {} instance",
            self.database, self.instance
        )
    }

    pub fn render(&self) -> Vec<Command> {
        vec![Command::sql(
            self.instance,
            format!("ALTER DATABASE {} SET PARTNER OFF", ident(&self.database)),
        )]
    }

    pub fn target(&self) -> Target {
        Target::Instance(self.instance)
    }

    pub fn irreversible(&self) -> bool {
        true
    }

    pub fn default_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(5 * MINUTE))
    }
}
