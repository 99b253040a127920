//! What must hold before step 1, read without changing anything, so that a failover does not stop
//! half-way for a reason it could have seen at the start: the pool identity the Persistent Chat
//! cmdlets are given resolves, and the Central Management Store's master is not in the data center the
//! pool leaves (reference J.2: Set-CsPersistentChatState and Set-CsPersistentChatActiveServer write the
//! store, so they would fail right after `mgc` was recovered).
//!
//! Then the log backups about to be applied are checked where they lie (`verify_chain`: binding, fork,
//! RESTORE VERIFYONLY), before the point of no return.
//!
//! Each check either passes, stops the run before anything is touched (an [`Outcome::Refused`] that
//! says what to do), or, when it cannot be made, says so on stderr and in the journal. The log-chain
//! checks (binding, fork, VERIFYONLY) live in `verify_chain`, which also feeds the ledger.

use std::time::Duration;

use super::outcome::Outcome;
use super::session::{Session, StepError};
use crate::action::{self, Action};
use crate::plan::Plan;
use crate::quote::ps_string;
use crate::runbook::{Operation, Role};
use crate::situation::Observation;

/// `Ok(Some(outcome))` when the run must stop before step 1.
pub(crate) async fn check(
    plan: &Plan,
    session: &mut Session<'_>,
    observation: &Observation,
    timeout: Duration,
) -> Option<Outcome> {
    if plan.operation.direction() == Operation::Failover
        && let Some(refusal) = super::verify_chain::check(plan, session, observation).await
    {
        return Some(refusal);
    }
    let uses_shell = plan.steps.iter().any(|s| {
        matches!(
            s.action,
            Action::SetPoolState(_)
                | Action::SetActiveServers(_)
                | Action::FailOverManagementStore(_)
        )
    });
    if !uses_shell {
        return None;
    }
    if let Some(refusal) = identity(plan, session, observation, timeout).await {
        return Some(refusal);
    }
    management_store(plan, session, observation, timeout).await
}

/// The identity the runbook gives the cmdlets must be one the Management Shell resolves: the cmdlet
/// reference writes `PersistentChatServer:<fqdn>`, the HA/DR pages `service:<fqdn>` (reference H.1),
/// and only the shell can say which it takes. The observation already asked for it by that identity.
async fn identity(
    plan: &Plan,
    session: &mut Session<'_>,
    observation: &Observation,
    timeout: Duration,
) -> Option<Outcome> {
    let shell = &observation.shell;
    if shell.reachable {
        return None;
    }
    // Which identities does the shell know for this pool?
    let known: Vec<String> = match session.cmdlet("Get-CsPersistentChatState", timeout).await {
        Ok(invocation) => invocation
            .output
            .iter()
            .filter_map(|o| o.get("Identity").and_then(|v| v.as_str()))
            .filter(|i| {
                i.to_ascii_lowercase()
                    .ends_with(&plan.pool.to_ascii_lowercase())
            })
            .map(str::to_owned)
            .collect(),
        // The shell itself does not answer: the gate has already said what that means.
        Err(_) => return None,
    };
    let why = shell.error.as_deref().unwrap_or("no answer");
    Some(Outcome::Refused {
        message: match known.first() {
            Some(real) if !real.eq_ignore_ascii_case(&shell.identity) => format!(
                "the pool identity `{}` does not resolve in the Management Shell (Get-CsPersistentChatState: {why}); the shell knows this pool as `{real}`: set `identity = \"{real}\"` under [pool] in the runbook",
                shell.identity
            ),
            _ => format!(
                "the pool identity `{}` does not resolve in the Management Shell (Get-CsPersistentChatState: {why}), and no Persistent Chat pool named `{}` is known to it; check `[pool]` in the runbook",
                shell.identity, plan.pool
            ),
        },
    })
}

/// Where the Central Management Server's master is. A failover leaving its data center stops here,
/// with the command that moves it, unless the plan moves it itself (`fail_over_management_store`
/// with `run = true`).
async fn management_store(
    plan: &Plan,
    session: &mut Session<'_>,
    observation: &Observation,
    timeout: Duration,
) -> Option<Outcome> {
    if plan.operation.direction() != Operation::Failover {
        return None;
    }
    let Some(store) = session.runbook.management_store.clone() else {
        session.progress(
            "the Central Management Store's location is not checked: the runbook has no [central_management_store]",
        );
        return None;
    };
    let leave = session
        .runbook
        .instances
        .get(&Role::Primary)
        .map(|i| i.data_center.clone())
        .unwrap_or_default();
    let moves_it = plan.steps.iter().find_map(|s| match &s.action {
        Action::FailOverManagementStore(m) if m.run => Some(s.number),
        _ => None,
    });
    let command = match &store.backup_sql_server {
        Some(sql) => format!(
            "Invoke-CsManagementServerFailover -BackupSqlServerFqdn {} -Force",
            ps_string(sql)
        ),
        None => "Invoke-CsManagementServerFailover -BackupSqlServerFqdn <the store's backup SQL Server> -Force".to_owned(),
    };
    let master = match action::active_master(session, timeout).await {
        Ok(master) => master,
        Err(e) => {
            return Some(Outcome::Refused {
                message: cannot_read(&e, &command),
            });
        }
    };
    let Some(dc) = store.data_center_of(&master).map(str::to_owned) else {
        return Some(Outcome::Refused {
            message: format!(
                "the Central Management Server's master is `{master}`, which is not among `[central_management_store] servers` in the runbook, so pcfail cannot tell whether this failover leaves it behind; add it with its data center"
            ),
        });
    };
    if !dc.eq_ignore_ascii_case(&leave) {
        return None;
    }
    if let Some(step) = moves_it {
        session.progress(&format!(
            "the Central Management Server's master `{master}` is in {leave}: step {step} moves it first"
        ));
        return None;
    }
    // A planned failover leaves a data center that still answers: the store stays writable.
    if plan.operation == Operation::PlannedFailover || observation.reachable(Role::Primary) {
        session.progress(&format!(
            "note: the Central Management Server's master `{master}` is in {leave}, which this failover leaves; it still answers, but move it before {leave} goes down: {command}"
        ));
        return None;
    }
    Some(Outcome::Refused {
        message: format!(
            "the Central Management Server's master `{master}` is in {leave}, the data center this failover leaves: Set-CsPersistentChatState and Set-CsPersistentChatActiveServer write the Central Management Store and would fail after `mgc` is recovered. Move it first, from a Front End server in the other data center:\n    {command}\nthen run the same command again (or set `run = true` on the `fail_over_management_store` step to let pcfail do it)"
        ),
    })
}

fn cannot_read(e: &StepError, command: &str) -> String {
    format!(
        "cannot tell where the Central Management Server's master is ({e}); if it was in the lost data center, move it first:\n    {command}\nthen run the same command again"
    )
}
