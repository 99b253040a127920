//! Failover step 4, first half: end every user session in the database so that recovery gets
//! exclusive access (otherwise RESTORE fails with 3101).
//!
//! The sessions exist only at run time, so the plan says how they will be found. A session that ends
//! by itself between the listing and the KILL answers 6106, which counts as ended (reference D).

use std::time::Duration;

use super::{Command, MINUTE, Target, ident};
use crate::exec::{Session, StepError, probe};
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

/// Running it: KILL every listed session, then look again, until none remain or the rounds run out.
/// 6106 means the session ended between the listing and the KILL (reference D): that is success.
impl EndSessions {
    pub(crate) async fn check_done(&self, s: &mut Session<'_>) -> Result<bool, StepError> {
        Ok(probe::sessions_using(s, self.instance, &self.database)
            .await?
            .is_empty())
    }

    pub(crate) async fn run(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        end_sessions(s, self.instance, &self.database).await
    }

    pub(crate) async fn verify(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        let left = probe::sessions_using(s, self.instance, &self.database).await?;
        if left.is_empty() {
            Ok(())
        } else {
            Err(still_connected(&self.database, &left))
        }
    }
}

/// Ends every other user session in `db` on `role`; shared with the recovery step's retry.
pub(crate) async fn end_sessions(
    s: &mut Session<'_>,
    role: Role,
    db: &str,
) -> Result<(), StepError> {
    const ROUNDS: usize = 10;
    for round in 0..ROUNDS {
        let sessions = probe::sessions_using(s, role, db).await?;
        if sessions.is_empty() {
            return Ok(());
        }
        for session in &sessions {
            s.progress(&format!(
                "ending session {} ({} from {}, {})",
                session.id, session.login, session.host, session.program
            ));
            match s
                .execute_in_step(role, &format!("KILL {}", session.id))
                .await
            {
                Err(e) if e.sql_number() == Some(6106) => {}
                other => {
                    other?;
                }
            }
        }
        // Sessions can reconnect (an application retrying); give them a moment to show up again.
        if round + 1 < ROUNDS {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    let left = probe::sessions_using(s, role, db).await?;
    if left.is_empty() {
        Ok(())
    } else {
        Err(still_connected(db, &left))
    }
}

fn still_connected(db: &str, left: &[probe::DbSession]) -> StepError {
    let who: Vec<String> = left
        .iter()
        .map(|x| format!("{} ({} from {}, {})", x.id, x.login, x.host, x.program))
        .collect();
    StepError::Failed(format!(
        "sessions keep connecting to `{db}`: {}; stop the application that opens them and run again",
        who.join(", ")
    ))
}
