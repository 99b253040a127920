//! What an observation means: one plain name for the pool's situation, what is wrong, and what to do
//! next. A pure function of the [`Observation`], so every situation is a row in a table test.
//!
//! The facts that decide are few: which side's `mgc` serves (ONLINE, not a standby, not a mirror),
//! whether the backup's copy still accepts log backups, whether the primary's copy was fenced by a
//! tail-log backup, and the pool state the Central Management Store holds. Everything else (a mirror
//! that does not answer, an unreachable share) is a finding that qualifies the name.

use serde::Serialize;

use super::observe::Observation;
use crate::exec::probe::DbView;
use crate::runbook::{Operation, Role};

/// The situations pcfail tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    /// The primary serves, log shipping feeds the backup, everything answers.
    Normal,
    /// The primary side does not serve (unreachable or not ONLINE); the backup still restores.
    PrimaryLost,
    /// The primary's `mgc` serves, but something around it is down.
    PrimaryAliveDuringOutage,
    /// The pool uses the backup databases; the primary does not answer.
    FailedOver,
    /// The pool uses the backup databases and the rebuilt primary answers.
    ReadyForFailback,
    /// Between the steps of an operation (a run stopped part-way, or the servers show a half-done move).
    MidOperation,
    /// Anything else, e.g. two ONLINE copies of `mgc`.
    Inconsistent,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Normal => "normal",
            Kind::PrimaryLost => "primary lost",
            Kind::PrimaryAliveDuringOutage => "primary alive during an outage",
            Kind::FailedOver => "failed over",
            Kind::ReadyForFailback => "primary rebuilt, ready for fail-back",
            Kind::MidOperation => "mid-operation",
            Kind::Inconsistent => "inconsistent",
        }
    }
}

/// The decisive facts, as read from the observation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Facts {
    /// The instance on the primary side whose `mgc` serves, if any.
    pub primary_serving: Option<Role>,
    /// The instance on the backup side whose `mgc` serves, if any.
    pub backup_serving: Option<Role>,
    /// The backup instance's `mgc` is RESTORING or a STANDBY: log backups can still be applied.
    pub backup_accepts_log: bool,
    /// The primary answers and its `mgc` is RESTORING (fenced by a tail-log backup WITH NORECOVERY).
    pub primary_fenced: bool,
    pub primary_reachable: bool,
    /// As Get-CsPersistentChatState reports it; None when the shell could not be asked.
    pub pool_state: Option<String>,
}

/// The situation, named, with what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Assessment {
    pub kind: Kind,
    /// For `mid_operation`: which operation is under way.
    pub operation: Option<Operation>,
    pub summary: String,
    /// What to do next, in a sentence.
    pub next: String,
    /// The command to type next, when there is one.
    pub next_command: Option<String>,
    /// What qualifies the name: instances that do not answer, folders out of reach, and so on.
    pub findings: Vec<String>,
    pub facts: Facts,
}

/// `mgc` serves from this copy: ONLINE, not a read-only standby, and not the mirror of a session.
pub(crate) fn serves(db: &DbView) -> bool {
    db.state.eq_ignore_ascii_case("ONLINE")
        && !db.standby
        && db
            .mirroring
            .as_ref()
            .is_none_or(|m| m.role.eq_ignore_ascii_case("PRINCIPAL"))
}

pub(crate) fn facts(o: &Observation) -> Facts {
    let serving = |roles: [Role; 2]| roles.into_iter().find(|&r| o.chat(r).is_some_and(serves));
    Facts {
        primary_serving: serving([Role::Primary, Role::PrimaryMirror]),
        backup_serving: serving([Role::Backup, Role::BackupMirror]),
        backup_accepts_log: o
            .chat(Role::Backup)
            .is_some_and(|d| d.db_state().accepts_log()),
        primary_fenced: o
            .chat(Role::Primary)
            .is_some_and(|d| d.state.eq_ignore_ascii_case("RESTORING")),
        primary_reachable: o.reachable(Role::Primary),
        pool_state: o.shell.pool_state.clone(),
    }
}

/// Names the situation. `pool` is the FQDN the next commands name.
pub(crate) fn classify(o: &Observation) -> Assessment {
    let f = facts(o);
    let findings = findings(o, &f);
    let pool = &o.pool;
    let db = &o.chat_database;
    let state = f.pool_state.as_deref().map(str::to_ascii_lowercase);
    let failed_over = state.as_deref() == Some("failedover");
    let normal = state.as_deref() == Some("normal");
    let failover = format!("pcfail failover --pool {pool}");
    let planned = format!("pcfail failover --planned --pool {pool}");
    let failback = format!("pcfail failback --pool {pool}");
    let status = "pcfail status --live".to_owned();

    let a = |kind, operation, summary: String, next: String, command: Option<String>| Assessment {
        kind,
        operation,
        summary,
        next,
        next_command: command,
        findings: findings.clone(),
        facts: f.clone(),
    };
    match (f.primary_serving, f.backup_serving) {
        (Some(p), Some(b)) if failed_over => a(
            Kind::ReadyForFailback,
            None,
            format!(
                "the pool uses `{db}` on `{b}`; the primary answers, and its `{db}` on `{p}` is ONLINE but not used by the pool (fail-back replaces it)"
            ),
            "fail back when the primary data center is ready".to_owned(),
            Some(failback),
        ),
        (Some(p), Some(b)) => a(
            Kind::Inconsistent,
            None,
            format!(
                "split brain: `{db}` is ONLINE and writable on both `{p}` and `{b}` (pool state {})",
                f.pool_state.as_deref().unwrap_or("unknown")
            ),
            "decide which copy holds the newer chat history before anything else; pcfail will not act on two live copies".to_owned(),
            None,
        ),
        (Some(p), None) if failed_over && f.backup_accepts_log => a(
            Kind::MidOperation,
            Some(Operation::Failback),
            format!(
                "a fail-back is under way: `{db}` on `{p}` serves again and log shipping feeds the backup, but the pool state is still FailedOver"
            ),
            "finish the fail-back".to_owned(),
            Some(failback),
        ),
        (Some(p), None) if failed_over => a(
            Kind::Inconsistent,
            None,
            format!(
                "the pool uses the backup databases, but `{db}` on the backup side is not online; `{db}` on `{p}` is"
            ),
            "set the pool state to match the copy that serves, by hand, after checking which holds the newer chat history".to_owned(),
            None,
        ),
        (Some(p), None) => {
            let healthy = f.backup_accepts_log
                && normal
                && findings.is_empty();
            if healthy {
                a(
                    Kind::Normal,
                    None,
                    format!(
                        "`{db}` serves on `{p}` and log shipping keeps the backup's copy restoring"
                    ),
                    format!(
                        "nothing to do; to move the pool to the backup data center with no data loss, `{planned}`"
                    ),
                    None,
                )
            } else {
                a(
                    Kind::PrimaryAliveDuringOutage,
                    None,
                    format!(
                        "`{db}` still serves on `{p}` although not everything around it answers"
                    ),
                    format!(
                        "a failover now would leave two writable copies (split brain); fix what is down, or move with no data loss: `{planned}`"
                    ),
                    None,
                )
            }
        }
        (None, Some(b)) if failed_over && f.primary_reachable => a(
            Kind::ReadyForFailback,
            None,
            format!("the pool uses `{db}` on `{b}`; the primary answers again"),
            "fail back when the primary data center is ready".to_owned(),
            Some(failback),
        ),
        (None, Some(b)) if failed_over => a(
            Kind::FailedOver,
            None,
            format!("the pool uses `{db}` on `{b}`; the primary does not answer"),
            format!(
                "nothing to do until the primary is rebuilt; then `{failback}`"
            ),
            None,
        ),
        (None, Some(b)) if normal => a(
            Kind::MidOperation,
            Some(Operation::Failover),
            format!(
                "a failover is under way: `{db}` on `{b}` is online, but the pool still uses the primary databases"
            ),
            "finish the failover".to_owned(),
            Some(failover),
        ),
        (None, Some(b)) => a(
            Kind::MidOperation,
            Some(Operation::Failover),
            format!(
                "`{db}` on `{b}` is online, and the pool state cannot be read, so whether the pool was switched is unknown"
            ),
            "restore access to the Management Shell, then look again".to_owned(),
            Some(status),
        ),
        (None, None) if f.backup_accepts_log && failed_over => a(
            Kind::Inconsistent,
            None,
            format!(
                "the pool uses the backup databases, but `{db}` on `backup` is still restoring and no copy serves"
            ),
            "finish the failover's recovery by hand, or set the pool state back to Normal".to_owned(),
            None,
        ),
        (None, None) if f.backup_accepts_log && f.primary_fenced => a(
            Kind::MidOperation,
            Some(Operation::PlannedFailover),
            format!(
                "a planned failover is under way: `{db}` on `primary` is fenced (RESTORING after its tail-log backup) and the backup still restores"
            ),
            "finish the planned failover".to_owned(),
            Some(planned),
        ),
        (None, None) if f.backup_accepts_log => a(
            Kind::PrimaryLost,
            None,
            format!(
                "no primary-side copy of `{db}` serves, and the backup's copy is restoring: the primary data center is lost"
            ),
            "fail over to the backup data center".to_owned(),
            Some(failover),
        ),
        (None, None)
            if o
                .instance(Role::Backup)
                .is_some_and(|i| i.cause == Some("configuration")) =>
        {
            a(
                Kind::Inconsistent,
                None,
                "pcfail cannot ask the backup instance, because of its own settings, so the situation is unknown".to_owned(),
                "fix the runbook or the environment as the findings say, then look again".to_owned(),
                Some(status.clone()),
            )
        }
        (None, None) if !o.reachable(Role::Backup) => a(
            Kind::Inconsistent,
            None,
            format!("no copy of `{db}` serves and the backup instance does not answer"),
            "restore access to the backup instance; nothing can be done without it".to_owned(),
            None,
        ),
        (None, None) => a(
            Kind::Inconsistent,
            None,
            format!(
                "no copy of `{db}` serves, and the backup's copy is {}",
                o.chat(Role::Backup)
                    .map_or("missing".to_owned(), |d| d.state.clone())
            ),
            "look at both instances in SQL Server Management Studio; pcfail has no procedure for this".to_owned(),
            None,
        ),
    }
}

/// Everything that qualifies the name, in a fixed order.
fn findings(o: &Observation, f: &Facts) -> Vec<String> {
    let mut out = Vec::new();
    for i in &o.instances {
        if !i.reachable && i.cause == Some("configuration") {
            out.push(format!(
                "`{}` ({}) cannot be asked, because of pcfail's own settings (not an outage): {}",
                i.role,
                i.host,
                i.error.as_deref().unwrap_or("unknown")
            ));
        } else if !i.reachable {
            out.push(format!(
                "`{}` ({}) does not answer: {}",
                i.role,
                i.host,
                i.error.as_deref().unwrap_or("no answer")
            ));
        } else if i.database(&o.chat_database).is_none()
            && matches!(i.role, Role::Primary | Role::Backup)
        {
            out.push(format!(
                "`{}` has no database `{}`",
                i.role, o.chat_database
            ));
        }
    }
    if !o.shell.reachable {
        out.push(format!(
            "the Management Shell could not be asked for the pool state: {}",
            o.shell.error.as_deref().unwrap_or("no answer")
        ));
    }
    if f.primary_serving.is_some() && f.backup_serving.is_none() {
        let secondary = o
            .instance(Role::Backup)
            .and_then(|i| i.log_shipping_secondary.as_ref());
        if o.reachable(Role::Backup) && secondary.is_none() {
            out.push(format!(
                "`backup` is not a log-shipping secondary of `{}`",
                o.chat_database
            ));
        }
        if o.reachable(Role::Backup) && !f.backup_accepts_log {
            out.push(format!(
                "`{}` on `backup` is not restoring: no log backup can reach it",
                o.chat_database
            ));
        }
    }
    for (what, folder) in [("backup share", &o.share), ("copy folder", &o.copy_folder)] {
        if folder.path.is_some() && !folder.reachable {
            out.push(format!(
                "the {what} `{}` cannot be read: {}",
                folder.path.as_deref().unwrap_or_default(),
                folder.error.as_deref().unwrap_or("unknown error")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::situation::testing::{db, observation};

    #[test]
    fn each_situation_gets_its_name() {
        let online = || Some(db("ONLINE", None));
        let principal = || Some(db("ONLINE", Some("PRINCIPAL")));
        let mirror = || Some(db("RESTORING", Some("MIRROR")));
        let restoring = || Some(db("RESTORING", None));
        let lost = || None;
        type Case = (Observation, Kind, Option<Operation>);
        let cases: Vec<Case> = vec![
            (
                observation(
                    principal(),
                    mirror(),
                    restoring(),
                    Some(None),
                    Some("Normal"),
                ),
                Kind::Normal,
                None,
            ),
            // The primary's mirror does not answer: the primary still serves.
            (
                observation(principal(), lost(), restoring(), Some(None), Some("Normal")),
                Kind::PrimaryAliveDuringOutage,
                None,
            ),
            // The primary lost, its mirror took over as principal: the primary side still serves.
            (
                observation(lost(), principal(), restoring(), Some(None), Some("Normal")),
                Kind::PrimaryAliveDuringOutage,
                None,
            ),
            (
                observation(lost(), lost(), restoring(), Some(None), Some("Normal")),
                Kind::PrimaryLost,
                None,
            ),
            // The shell is in the lost data center too: still a lost primary.
            (
                observation(lost(), lost(), restoring(), Some(None), None),
                Kind::PrimaryLost,
                None,
            ),
            (
                observation(lost(), lost(), online(), Some(None), Some("Normal")),
                Kind::MidOperation,
                Some(Operation::Failover),
            ),
            (
                observation(lost(), lost(), principal(), mirror(), Some("FailedOver")),
                Kind::FailedOver,
                None,
            ),
            // Rebuilt primary with a fresh, empty mgc: ready for fail-back, not a split brain.
            (
                observation(
                    online(),
                    Some(None),
                    principal(),
                    mirror(),
                    Some("FailedOver"),
                ),
                Kind::ReadyForFailback,
                None,
            ),
            // Fenced by a planned failover's tail-log backup.
            (
                observation(
                    restoring(),
                    mirror(),
                    principal(),
                    mirror(),
                    Some("FailedOver"),
                ),
                Kind::ReadyForFailback,
                None,
            ),
            (
                observation(
                    restoring(),
                    Some(None),
                    restoring(),
                    Some(None),
                    Some("Normal"),
                ),
                Kind::MidOperation,
                Some(Operation::PlannedFailover),
            ),
            (
                observation(
                    online(),
                    Some(None),
                    restoring(),
                    Some(None),
                    Some("FailedOver"),
                ),
                Kind::MidOperation,
                Some(Operation::Failback),
            ),
            // Split brain: both ONLINE while the pool uses the primary's.
            (
                observation(principal(), mirror(), online(), Some(None), Some("Normal")),
                Kind::Inconsistent,
                None,
            ),
            (
                observation(lost(), lost(), restoring(), Some(None), Some("FailedOver")),
                Kind::Inconsistent,
                None,
            ),
            (
                observation(lost(), lost(), lost(), lost(), None),
                Kind::Inconsistent,
                None,
            ),
        ];
        for (i, (o, kind, operation)) in cases.into_iter().enumerate() {
            let a = classify(&o);
            assert_eq!((a.kind, a.operation), (kind, operation), "case {i}: {a:#?}");
        }
    }

    #[test]
    fn the_next_command_names_the_pool() {
        let o = observation(
            None,
            None,
            Some(db("RESTORING", None)),
            None,
            Some("Normal"),
        );
        let a = classify(&o);
        assert_eq!(
            a.next_command.as_deref(),
            Some("pcfail failover --pool pool.example")
        );
        assert_eq!(
            a.findings,
            [
                "`primary` (primary.example) does not answer: timed out",
                "`primary_mirror` (primary_mirror.example) does not answer: timed out",
                "`backup_mirror` (backup_mirror.example) does not answer: timed out",
            ]
        );
    }
}
