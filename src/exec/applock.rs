//! The server half of "only one run at a time": `sp_getapplock` on the backup instance, held on a
//! connection of its own for the whole run (a session-owned application lock lives exactly as long as
//! its connection), against a second pcfail on another machine with another state directory. The
//! local half is the file lock in `crate::lock`.

use std::time::Instant;

use super::outcome::Outcome;
use super::session::Timeouts;
use crate::journal::Event;
use crate::quote;
use crate::runbook::{Role, Runbook};
use crate::sql::{Sql, SqlError};

/// The held lock: its connection, and the journal record of the statement that took it (written
/// once the journal exists).
pub(crate) struct AppLock {
    conn: Sql,
    resource: String,
    timeouts: Timeouts,
    pub event: Event,
}

impl AppLock {
    /// Confirms the lock is still held, before each step. A session-owned application lock lives
    /// exactly as long as its session and only that session can release it, so the session answering
    /// means the lock is held; a session that was killed (or a connection that broke) means another
    /// pcfail may hold it now, and this run must stop.
    pub(crate) async fn confirm(&mut self) -> Result<(), String> {
        self.conn
            .batch("SELECT 1 AS pcfail_run_lock_alive", self.timeouts.query)
            .await
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "the run lock `{}` on `backup` was lost ({e}); another pcfail may hold it now, so this run stopped before the step. Check `pcfail status --live`, then run the same command again",
                    self.resource
                )
            })
    }
}

/// Takes the lock for `pool`, or says why not (another holder: `Locked`; no answer: `Refused`).
/// Without a backup instance in the runbook there is nothing to lock on: `Ok(None)`.
pub(crate) async fn take(
    runbook: &Runbook,
    pool: &str,
    timeouts: Timeouts,
) -> Result<Option<AppLock>, Outcome> {
    let Some(instance) = runbook.instances.get(&Role::Backup) else {
        return Ok(None);
    };
    let refused = |e: SqlError| Outcome::Refused {
        message: format!("cannot take the run lock on `backup`: {e}"),
    };
    let mut conn = Sql::connect(instance, timeouts.connect)
        .await
        .map_err(refused)?;
    let resource = format!("pcfail:{}", pool.to_ascii_lowercase());
    let text = format!(
        "DECLARE @rc int; EXEC @rc = sp_getapplock @Resource = {}, @LockMode = 'Exclusive', @LockOwner = 'Session', @LockTimeout = 0; SELECT @rc AS rc;",
        quote::sql_string(&resource)
    );
    let started = Instant::now();
    let result = conn.batch(&text, timeouts.query).await;
    let rc = result
        .as_ref()
        .ok()
        .and_then(|sets| sets.last())
        .and_then(|set| set.rows.first().and_then(|row| set.get(row, "rc").as_i64()));
    let event = Event::Command {
        step: String::new(),
        target: "backup".to_owned(),
        text: text.clone(),
        duration_us: crate::journal::micros_since(started),
        ok: result.is_ok(),
        error: result
            .as_ref()
            .err()
            .map(|e| serde_json::Value::String(e.to_string())),
        messages: Vec::new(),
    };
    match (result, rc) {
        (Err(e), _) => Err(refused(e)),
        // 0: granted; 1: granted after waiting for other locks to be released.
        (Ok(_), Some(0 | 1)) => Ok(Some(AppLock {
            conn,
            resource,
            timeouts,
            event,
        })),
        (Ok(_), Some(-1)) => Err(Outcome::Locked {
            message: format!(
                "another pcfail run holds the application lock `{resource}` on `backup` (sp_getapplock timed out)"
            ),
        }),
        (Ok(_), other) => Err(Outcome::Refused {
            message: format!(
                "sp_getapplock on `backup` returned {}; the run lock could not be taken",
                other.map_or("no status".to_owned(), |c| c.to_string())
            ),
        }),
    }
}
