//! Failover step 1: remove log shipping on the backup instance (`sp_delete_log_shipping_secondary_database`).
//!
//! Microsoft does this first (reference H.6). It also deletes the copy and restore jobs when it is the
//! last database for that primary (reference A.2), which is why the copy and apply steps that follow
//! are done by pcfail itself. The database is left RESTORING; recovering it is a later step.

use std::time::Duration;

use super::{Command, MINUTE, Target};
use crate::exec::{Session, StepError, probe};
use crate::quote::sql_string;
use crate::runbook::{Role, StepReader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveLogShippingSecondary {
    pub instance: Role,
    pub database: String,
}

impl RemoveLogShippingSecondary {
    pub(crate) fn parse(r: &mut StepReader<'_, '_, '_, '_>) -> Option<Self> {
        let instance = r.instance_or("instance", Role::Backup);
        let database = r.database("database");
        Some(Self {
            instance: instance?,
            database: database?,
        })
    }

    pub fn name(&self) -> &'static str {
        "remove_log_shipping_secondary"
    }

    pub fn describe(&self) -> String {
        format!(
            "Remove log shipping for `{}` on the {} instance",
            self.database, self.instance
        )
    }

    pub fn render(&self) -> Vec<Command> {
        vec![Command::sql(
            self.instance,
            format!(
                "EXEC master.dbo.sp_delete_log_shipping_secondary_database @secondary_database = {}",
                sql_string(&self.database)
            ),
        )]
    }

    pub fn target(&self) -> Target {
        Target::Instance(self.instance)
    }

    /// The copy and restore jobs and the msdb configuration are deleted; pcfail cannot recreate them.
    pub fn irreversible(&self) -> bool {
        true
    }

    pub fn default_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(5 * MINUTE))
    }
}

/// Running it: done when msdb no longer lists the database as a log-shipping secondary. 32014 ("does
/// not exist as log shipping secondary", UNVERIFIED as this procedure's answer, reference A.2) means
/// someone removed it between the check and the call, which is the state we want.
impl RemoveLogShippingSecondary {
    pub(crate) async fn check_done(&self, s: &mut Session<'_>) -> Result<bool, StepError> {
        Ok(
            probe::log_shipping_secondary(s, self.instance, &self.database)
                .await?
                .is_none(),
        )
    }

    pub(crate) async fn run(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        for command in self.render() {
            match s.run_command(&command).await {
                Err(e) if e.sql_number() == Some(32014) => {}
                other => other?,
            }
        }
        Ok(())
    }

    pub(crate) async fn verify(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        if !self.check_done(s).await? {
            return Err(StepError::Failed(format!(
                "msdb on `{}` still lists `{}` as a log-shipping secondary",
                self.instance, self.database
            )));
        }
        // The procedure must leave the database itself alone (reference A.2): still restoring.
        match probe::database(s, self.instance, &self.database).await? {
            Some(db) if db.accepts_log() => Ok(()),
            Some(db) => Err(StepError::Failed(format!(
                "`{}` on `{}` is {} after removing log shipping; it should still be restoring",
                self.database, self.instance, db.state_desc
            ))),
            None => Err(StepError::Failed(format!(
                "`{}` no longer exists on `{}`",
                self.database, self.instance
            ))),
        }
    }
}
