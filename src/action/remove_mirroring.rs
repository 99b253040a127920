//! Fail-back: end database mirroring on the backup instance (`ALTER DATABASE ... SET PARTNER OFF`).
//!
//! Either partner may run it; it removes the session for both copies and leaves the former mirror
//! RESTORING (reference E.3). Re-establishing it means a new full backup and restore.

use std::time::Duration;

use super::{Command, MINUTE, Target, ident};
use crate::exec::{Session, StepError, probe};
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

/// Running it: 1416 (not configured for database mirroring) means it is already removed.
impl RemoveMirroring {
    pub(crate) async fn check_done(&self, s: &mut Session<'_>) -> Result<bool, StepError> {
        Ok(probe::mirroring(s, self.instance, &self.database)
            .await?
            .is_none())
    }

    pub(crate) async fn run(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        for command in self.render() {
            match s.run_command(&command).await {
                Err(e) if e.sql_number() == Some(1416) => {}
                other => other?,
            }
        }
        Ok(())
    }

    pub(crate) async fn verify(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        match probe::mirroring(s, self.instance, &self.database).await? {
            None => Ok(()),
            Some(m) => Err(StepError::Failed(format!(
                "`{}` on `{}` is still mirrored ({} with {})",
                self.database, self.instance, m.role_desc, m.partner_name
            ))),
        }
    }
}
