//! Anchoring a run's journal outside the pcfail host, where a later rewrite of the journal cannot
//! follow: at the end of every run attempt, the journal's tip (its last record number and that line's
//! SHA-256) and the audit log's tip go into the backup instance's SQL Server error log through
//! `xp_logevent`, which SQL Server also writes to the Windows Application event log of its host.
//! `pcfail journal verify` reads them back with `sp_readerrorlog` and checks that the journal still
//! has, at that record, a line with that hash.
//!
//! What it detects: a journal or audit log edited, truncated or rewritten with a recomputed chain
//! after its run ended, by someone without sysadmin on the backup instance. What it does not: a run
//! whose end could not reach the backup instance (no anchor; `verify` says so), or someone who can
//! also write the backup instance's error log (sysadmin) and the event log.

use std::time::Duration;

use crate::sql::{Sql, SqlError};

/// The user-defined event number pcfail logs its anchors under (xp_logevent takes more than 50000).
pub(crate) const EVENT: u32 = 61_700;

/// What one anchor records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Anchor {
    pub run: String,
    pub seq: u64,
    pub sha256: String,
    pub audit_seq: u64,
    pub audit_sha256: String,
}

impl Anchor {
    /// The error-log text: one line, fields as `key=value`, easy to find and to read by a person.
    pub(crate) fn message(&self) -> String {
        format!(
            "pcfail anchor run={} seq={} sha256={} audit_seq={} audit_sha256={}",
            self.run, self.seq, self.sha256, self.audit_seq, self.audit_sha256
        )
    }

    pub(crate) fn parse(text: &str) -> Option<Anchor> {
        let rest = text.trim().strip_prefix("pcfail anchor ")?;
        let field = |key: &str| {
            rest.split_whitespace()
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_owned)
        };
        Some(Anchor {
            run: field("run")?,
            seq: field("seq")?.parse().ok()?,
            sha256: field("sha256")?,
            audit_seq: field("audit_seq")?.parse().ok()?,
            audit_sha256: field("audit_sha256")?,
        })
    }
}

/// Writes `anchor` to the instance's error log.
pub(crate) async fn write(
    conn: &mut Sql,
    anchor: &Anchor,
    timeout: Duration,
) -> Result<(), SqlError> {
    let text = format!(
        "EXEC master.dbo.xp_logevent {EVENT}, {}, 'informational'",
        crate::quote::sql_string(&anchor.message())
    );
    conn.batch(&text, timeout).await.map(|_| ())
}

/// Every anchor of `run` in the instance's current and archived error logs (0 to 6, SQL Server's
/// default number kept), oldest log first.
pub(crate) async fn read(
    conn: &mut Sql,
    run: &str,
    timeout: Duration,
) -> Result<Vec<Anchor>, SqlError> {
    let mut found = Vec::new();
    for log in (0..=6).rev() {
        let text = format!(
            "EXEC sp_readerrorlog {log}, 1, N'pcfail anchor', {}",
            crate::quote::sql_string(&format!("run={run} "))
        );
        let sets = match conn.batch(&text, timeout).await {
            Ok(sets) => sets,
            // An archive that does not exist: nothing to read there.
            Err(SqlError::Server { .. }) => continue,
            Err(e) => return Err(e),
        };
        for set in sets {
            for row in &set.rows {
                if let Some(anchor) = set.get(row, "Text").as_str().and_then(Anchor::parse)
                    && anchor.run == run
                {
                    found.push(anchor);
                }
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_anchor_reads_back_from_its_own_message() {
        let anchor = Anchor {
            run: "20261129T170429.737Z-failover".into(),
            seq: 42,
            sha256: "ab".repeat(32),
            audit_seq: 900,
            audit_sha256: "cd".repeat(32),
        };
        assert_eq!(Anchor::parse(&anchor.message()), Some(anchor));
        assert_eq!(Anchor::parse("Error: 61700, Severity: 10, State: 1."), None);
    }
}
