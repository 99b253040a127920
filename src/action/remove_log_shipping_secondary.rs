//! Failover step 1: remove log shipping on the backup instance (`sp_delete_log_shipping_secondary_database`).
//!
//! Microsoft does this first (reference H.6). It also deletes the copy and restore jobs when it is the
//! last database for that primary (reference A.2), which is why the copy and apply steps that follow
//! are done by pcfail itself. The database is left RESTORING; recovering it is a later step.

use std::time::Duration;

use super::{Command, MINUTE, Target};
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
