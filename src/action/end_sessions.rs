//! Failover step 4, first half: end every user session in the database so that recovery gets
//! exclusive access (otherwise RESTORE fails with 3101).
//!
//! The sessions exist only at run time, so the plan says how they will be found. A session that ends
//! by itself between the listing and the KILL answers 6106, which counts as ended (reference D).

use std::time::Duration;

use super::{Command, MINUTE, Target, ident};
use crate::quote::sql_string;
use crate::runbook::{Role, StepReader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndSessions {
    pub instance: Role,
    pub database: String,
}

impl EndSessions {
    pub(crate) fn parse(r: &mut StepReader<'_, '_, '_, '_>) -> Option<Self> {
        let instance = r.instance_or("instance", Role::Backup);
        let database = r.database("database");
        Some(Self {
            instance: instance?,
            database: database?,
        })
    }

    pub fn name(&self) -> &'static str {
        "end_sessions"
    }

    pub fn describe(&self) -> String {
        format!(
            "End the user sessions connected to `{}` on the {} instance",
            self.database, self.instance
        )
    }

    pub fn render(&self) -> Vec<Command> {
        vec![Command::Computed {
            what: format!(
                "KILL <spid> for each user session whose current database is {} (error 6106, session already gone, counts as ended)",
                ident(&self.database)
            ),
            from: format!(
                "sys.dm_exec_sessions (is_user_process = 1, database_id = DB_ID({})) on {}, excluding pcfail's own session",
                sql_string(&self.database),
                self.instance
            ),
        }]
    }

    pub fn target(&self) -> Target {
        Target::Instance(self.instance)
    }

    pub fn irreversible(&self) -> bool {
        false
    }

    pub fn default_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(2 * MINUTE))
    }
}
