//! Failover step 4, second half: bring the restoring database online (`RESTORE DATABASE ... WITH RECOVERY`).
//!
//! A recovery-only restore reads no backup. Afterwards no further log backup can be applied, so this
//! ends log shipping for good: the point of no return of a failover in Microsoft's procedure.

use std::time::Duration;

use super::{Command, MINUTE, Target, ident};
use crate::runbook::{Role, StepReader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoverDatabase {
    pub instance: Role,
    pub database: String,
}

impl RecoverDatabase {
    pub(crate) fn parse(r: &mut StepReader<'_, '_, '_, '_>) -> Option<Self> {
        let instance = r.instance_or("instance", Role::Backup);
        let database = r.database("database");
        Some(Self {
            instance: instance?,
            database: database?,
        })
    }

    pub fn name(&self) -> &'static str {
        "recover_database"
    }

    pub fn describe(&self) -> String {
        format!(
            "Recover `{}` on the {} instance and bring it online",
            self.database, self.instance
        )
    }

    pub fn render(&self) -> Vec<Command> {
        vec![Command::sql(
            self.instance,
            format!("RESTORE DATABASE {} WITH RECOVERY", ident(&self.database)),
        )]
    }

    pub fn target(&self) -> Target {
        Target::Instance(self.instance)
    }

    pub fn irreversible(&self) -> bool {
        true
    }

    pub fn default_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(30 * MINUTE))
    }
}
