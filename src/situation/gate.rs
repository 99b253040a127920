//! Whether the situation calls for the operation the operator asked for, before anything is touched.
//!
//! Three answers: proceed (possibly resuming an unfinished run, possibly closing stale ones), nothing
//! to do (the operation's end state is already there: exit 0), or refuse (exit 3, with the sentence
//! that says why and what to do instead). A pure function of the request, the assessment, the
//! observation, the run history and the plan, so each rule is a row in a table test.

use super::classify::{Assessment, Kind};
use super::history::{History, RunSummary};
use super::observe::Observation;
use crate::action::Action;
use crate::plan::Plan;
use crate::runbook::{Operation, Role};

/// What the operator asked for.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub operation: Operation,
    /// `--accept-split-brain`: fail over although the primary's `mgc` serves.
    pub accept_split_brain: bool,
}

#[derive(Clone, Debug)]
pub(crate) enum Gate {
    Proceed {
        /// The unfinished run to resume, if one is still true to the servers (boxed: it carries
        /// its journal's records).
        resume: Option<Box<RunSummary>>,
        /// Unfinished runs never to be resumed, with the reason journaled when they are closed.
        abandon: Vec<(RunSummary, String)>,
        /// Set when the operator overrides a live primary: the risk they must confirm by typing.
        split_brain: Option<String>,
    },
    NothingToDo(String),
    Refuse(String),
}

pub(crate) fn gate(
    request: &Request,
    a: &Assessment,
    o: &Observation,
    history: &History,
    plan: &Plan,
) -> Gate {
    let op = request.operation;
    let mut abandon: Vec<(RunSummary, String)> = history
        .stale()
        .into_iter()
        .map(|r| {
            let reason = match history
                .runs
                .iter()
                .rev()
                .find(|l| l.completed() && l.started > r.started)
            {
                Some(later) => format!(
                    "a later {} run ({}) completed after it stopped",
                    later.operation, later.id
                ),
                None => "a newer run took its place".to_owned(),
            };
            (r.clone(), reason)
        })
        .collect();

    if let Some(pending) = history.pending() {
        let pending_op = Operation::from_key(&pending.operation);
        if pending_op.is_some_and(|p| resumable(p, a)) {
            if pending_op != Some(op) {
                let theirs = pending_op.map_or("unknown", Operation::key);
                return Gate::Refuse(format!(
                    "the {theirs} run {} is unfinished ({}); resume it with `{}` before starting a {}",
                    pending.id,
                    pending.where_stopped(),
                    command(pending_op.unwrap_or(op), &o.pool),
                    op.describe()
                ));
            }
            return Gate::Proceed {
                resume: Some(Box::new(pending.clone())),
                abandon,
                split_brain: None,
            };
        }
        abandon.push((
            pending.clone(),
            format!(
                "the servers no longer match where it stopped ({}): {}",
                pending.where_stopped(),
                a.summary
            ),
        ));
    }

    let proceed = |abandon, split_brain| Gate::Proceed {
        resume: None,
        abandon,
        split_brain,
    };
    let refuse = |why: String| Gate::Refuse(why);
    let inconsistent = || {
        let mut why = format!(
            "the situation is {}: {}. {}.",
            a.kind.name(),
            a.summary,
            capitalized(&a.next)
        );
        for finding in &a.findings {
            why.push_str("\n  - ");
            why.push_str(finding);
        }
        refuse(why)
    };
    match (op, a.kind, a.operation) {
        (Operation::Failover, Kind::PrimaryLost, _)
        | (Operation::Failover, Kind::MidOperation, Some(Operation::Failover))
        | (Operation::Failover, Kind::MidOperation, Some(Operation::PlannedFailover))
        | (Operation::PlannedFailover, Kind::Normal | Kind::PrimaryAliveDuringOutage, _)
        | (Operation::PlannedFailover, Kind::MidOperation, Some(Operation::PlannedFailover))
        | (Operation::Failback, Kind::ReadyForFailback, _)
        | (Operation::Failback, Kind::MidOperation, Some(Operation::Failback)) => {
            proceed(abandon, None)
        }
        (Operation::Failover, Kind::Normal | Kind::PrimaryAliveDuringOutage, _) => {
            let serving = a.facts.primary_serving.unwrap_or(Role::Primary);
            let host = o.instance(serving).map_or("", |i| i.host.as_str());
            let risk = format!(
                "`{}` answers ONLINE on `{serving}` ({host}): a failover now leaves two writable copies (split brain)",
                o.chat_database
            );
            if request.accept_split_brain {
                proceed(abandon, Some(risk))
            } else {
                refuse(format!(
                    "{risk}. The primary is not lost: to move the pool with no data loss, run `{}`. If the primary must not be used although it answers, `--accept-split-brain` overrides this after a typed confirmation.",
                    command(Operation::PlannedFailover, &o.pool)
                ))
            }
        }
        (
            Operation::Failover | Operation::PlannedFailover,
            Kind::FailedOver | Kind::ReadyForFailback,
            _,
        ) => already(
            history,
            Operation::Failover,
            a,
            &failover_differences(o, a, plan),
        ),
        (Operation::PlannedFailover, Kind::PrimaryLost, _) => refuse(format!(
            "a planned failover needs a primary whose `{}` serves, and {}. Fail over with `{}`",
            o.chat_database,
            a.summary,
            command(Operation::Failover, &o.pool)
        )),
        (Operation::Failback, Kind::Normal | Kind::PrimaryAliveDuringOutage, _)
            if history
                .last_completed()
                .is_some_and(|r| r.direction() == Some(Operation::Failback)) =>
        {
            already(history, Operation::Failback, a, &failback_differences(o, a))
        }
        (
            Operation::Failback,
            Kind::Normal | Kind::PrimaryAliveDuringOutage | Kind::PrimaryLost,
            _,
        ) => refuse(format!(
            "the pool is not failed over (pool state {}; {}): there is nothing to fail back",
            a.facts.pool_state.as_deref().unwrap_or("unknown"),
            a.summary
        )),
        (Operation::Failback, Kind::FailedOver, _) => refuse(format!(
            "{}; fail-back needs the rebuilt primary `primary` to answer",
            a.summary
        )),
        (_, Kind::MidOperation, Some(under_way)) => refuse(format!(
            "{}; finish it with `{}` before starting a {}",
            a.summary,
            command(under_way, &o.pool),
            op.describe()
        )),
        _ => inconsistent(),
    }
}

/// Whether an unfinished run of `op` may go on from the situation `a`.
fn resumable(op: Operation, a: &Assessment) -> bool {
    match op {
        Operation::Failover => matches!(
            (a.kind, a.operation),
            (
                Kind::PrimaryLost | Kind::FailedOver | Kind::ReadyForFailback,
                _
            ) | (
                Kind::MidOperation,
                Some(Operation::Failover | Operation::PlannedFailover)
            )
        ),
        // Not from a lost primary: a planned failover needs it (an unplanned one takes over).
        Operation::PlannedFailover => matches!(
            (a.kind, a.operation),
            (
                Kind::Normal
                    | Kind::PrimaryAliveDuringOutage
                    | Kind::FailedOver
                    | Kind::ReadyForFailback,
                _
            ) | (
                Kind::MidOperation,
                Some(Operation::Failover | Operation::PlannedFailover)
            )
        ),
        // From a normal pool too: the shipped fail-back puts the pool back in service (state Normal,
        // servers active) before it mirrors the primary and sets up log shipping, as a failover
        // resumes from a failed-over pool.
        Operation::Failback => matches!(
            (a.kind, a.operation),
            (
                Kind::ReadyForFailback | Kind::Normal | Kind::PrimaryAliveDuringOutage,
                _
            ) | (Kind::MidOperation, Some(Operation::Failback))
        ),
    }
}

/// The end state is there: nothing to do, unless it differs from what the operation leaves (drift).
fn already(
    history: &History,
    direction: Operation,
    a: &Assessment,
    differences: &[String],
) -> Gate {
    let last = history
        .last_completed()
        .filter(|r| r.direction() == Some(direction));
    let done = match direction {
        Operation::Failback => "failed back",
        _ => "failed over",
    };
    let by = match last {
        Some(r) => format!(
            "run {} completed at {} by {}",
            r.id,
            r.finished.as_deref().unwrap_or("?"),
            r.operator
        ),
        None => a.summary.clone(),
    };
    if differences.is_empty() {
        Gate::NothingToDo(format!("the pool is already {done} ({by}); nothing to do"))
    } else {
        Gate::Refuse(format!(
            "the pool is {done} ({by}), but it is no longer as that operation leaves it; put this right by hand:\n{}",
            differences
                .iter()
                .map(|d| format!("  - {d}"))
                .collect::<Vec<_>>()
                .join("\n")
        ))
    }
}

/// What a completed failover leaves, compared with what is there: the pool state, the backup's `mgc`
/// serving, and every database the plan mirrors mirrored as principal.
fn failover_differences(o: &Observation, a: &Assessment, plan: &Plan) -> Vec<String> {
    let mut out: Vec<String> = pool_state_differs(a, "FailedOver").into_iter().collect();
    for step in &plan.steps {
        let (role, db) = match &step.action {
            Action::MirrorDatabase(m) => (m.principal, m.database.clone()),
            Action::InstallMirrorDatabase(m) => (
                m.instance,
                if m.database_type == "PersistentChatCompliance" {
                    o.compliance_database.clone()
                } else {
                    o.chat_database.clone()
                },
            ),
            _ => continue,
        };
        let Some(instance) = o.instance(role).filter(|i| i.reachable) else {
            continue;
        };
        let principal = instance
            .database(&db)
            .and_then(|d| d.mirroring.as_ref())
            .is_some_and(|m| m.role.eq_ignore_ascii_case("PRINCIPAL"));
        if !principal {
            out.push(format!(
                "`{db}` on `{role}` is not mirrored (step {} `{}` mirrors it)",
                step.number, step.id
            ));
        }
    }
    out
}

/// What a completed fail-back leaves: the pool Normal, the primary serving, log shipping to the backup.
fn failback_differences(o: &Observation, a: &Assessment) -> Vec<String> {
    let mut out: Vec<String> = pool_state_differs(a, "Normal").into_iter().collect();
    if a.facts.primary_serving != Some(Role::Primary) {
        out.push(format!("`{}` does not serve on `primary`", o.chat_database));
    }
    if o.reachable(Role::Backup) {
        if !a.facts.backup_accepts_log {
            out.push(format!(
                "`{}` on `backup` is not restoring",
                o.chat_database
            ));
        }
        if o.instance(Role::Backup)
            .is_some_and(|i| i.log_shipping_secondary.is_none())
        {
            out.push(format!(
                "`backup` is not a log-shipping secondary of `{}`",
                o.chat_database
            ));
        }
    }
    out
}

/// "the pool state is X, not `expected`", unless it is.
fn pool_state_differs(a: &Assessment, expected: &str) -> Option<String> {
    let state = a.facts.pool_state.as_deref();
    (!state.is_some_and(|s| s.eq_ignore_ascii_case(expected))).then(|| {
        format!(
            "the pool state is {}, not {expected}",
            state.unwrap_or("unknown")
        )
    })
}

/// The command that runs `op` for `pool`.
pub(crate) fn command(op: Operation, pool: &str) -> String {
    match op {
        Operation::Failover => format!("pcfail failover --pool {pool}"),
        Operation::PlannedFailover => format!("pcfail failover --planned --pool {pool}"),
        Operation::Failback => format!("pcfail failback --pool {pool}"),
    }
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The assessment as `status` shows it: an unfinished run that may still go on makes the situation
/// mid-operation, with the command that resumes it; one that may not is a finding.
pub(crate) fn with_history(mut a: Assessment, history: &History, pool: &str) -> Assessment {
    let Some(pending) = history.pending() else {
        return a;
    };
    let Some(op) = Operation::from_key(&pending.operation) else {
        return a;
    };
    if resumable(op, &a) {
        a.kind = Kind::MidOperation;
        a.operation = Some(op);
        a.summary = format!(
            "the {} run {} {}; {}",
            op.describe(),
            pending.id,
            pending.where_stopped(),
            a.summary
        );
        a.next = format!("resume the {}", op.describe());
        a.next_command = Some(command(op, pool));
    } else {
        a.findings.push(format!(
            "the unfinished {} run {} ({}) no longer matches the servers; the next operation closes it as abandoned",
            op.describe(),
            pending.id,
            pending.where_stopped()
        ));
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::situation::classify::classify;
    use crate::situation::testing::{db, observation, run};

    fn plan(operation: Operation) -> Plan {
        let runbook = crate::runbook::parse_str(
            std::path::Path::new("runbooks/persistent-chat.toml"),
            include_str!("../../runbooks/persistent-chat.toml"),
        )
        .expect("the shipped runbook is valid");
        Plan::build(&runbook, operation)
    }

    /// What the gate answered, in a word, and the run it resumes.
    fn verdict(g: &Gate) -> (&'static str, Option<String>) {
        match g {
            Gate::Proceed { resume, .. } => ("proceed", resume.as_ref().map(|r| r.id.clone())),
            Gate::NothingToDo(_) => ("nothing", None),
            Gate::Refuse(_) => ("refuse", None),
        }
    }

    #[test]
    fn the_gate_follows_the_situation() {
        let principal = || Some(db("ONLINE", Some("PRINCIPAL")));
        let mirror = || Some(db("RESTORING", Some("MIRROR")));
        let restoring = || Some(db("RESTORING", None));
        let online = || Some(db("ONLINE", None));
        let healthy = || {
            observation(
                principal(),
                mirror(),
                restoring(),
                Some(None),
                Some("Normal"),
            )
        };
        let lost = || observation(None, None, restoring(), Some(None), Some("Normal"));
        let failed_over = || observation(None, None, principal(), mirror(), Some("FailedOver"));
        // Failed over, but the failover's mirroring of mgc is gone.
        let unmirrored = || observation(None, None, online(), Some(None), Some("FailedOver"));
        let rebuilt = || {
            observation(
                online(),
                Some(None),
                principal(),
                mirror(),
                Some("FailedOver"),
            )
        };
        let failed_back = || {
            observation(
                online(),
                Some(None),
                restoring(),
                Some(None),
                Some("Normal"),
            )
        };
        let none = History::default;
        let with = |runs: Vec<RunSummary>| History {
            runs,
            ..History::default()
        };
        type Case = (
            Operation,
            Observation,
            History,
            (&'static str, Option<String>),
        );
        let cases: Vec<Case> = vec![
            // A healthy site: no failover (split brain), a planned one, no fail-back.
            (Operation::Failover, healthy(), none(), ("refuse", None)),
            (
                Operation::PlannedFailover,
                healthy(),
                none(),
                ("proceed", None),
            ),
            (Operation::Failback, healthy(), none(), ("refuse", None)),
            (Operation::Failover, lost(), none(), ("proceed", None)),
            (Operation::PlannedFailover, lost(), none(), ("refuse", None)),
            (Operation::Failback, lost(), none(), ("refuse", None)),
            // Done already: nothing to do, unless it drifted.
            (
                Operation::Failover,
                failed_over(),
                none(),
                ("nothing", None),
            ),
            (
                Operation::PlannedFailover,
                failed_over(),
                none(),
                ("nothing", None),
            ),
            (Operation::Failover, unmirrored(), none(), ("refuse", None)),
            (Operation::Failback, failed_over(), none(), ("refuse", None)),
            (Operation::Failback, rebuilt(), none(), ("proceed", None)),
            (
                Operation::Failback,
                failed_back(),
                with(vec![run("1", "failback", Some("completed"))]),
                ("nothing", None),
            ),
            // An unfinished run goes on while the servers agree with it...
            (
                Operation::Failover,
                lost(),
                with(vec![run("1", "failover", Some("failed"))]),
                ("proceed", Some("1".to_owned())),
            ),
            // ...but not once a later run completed after it (it is closed as abandoned instead)...
            (
                Operation::Failback,
                rebuilt(),
                with(vec![
                    run("1", "failback", Some("failed")),
                    run("2", "failover", Some("completed")),
                ]),
                ("proceed", None),
            ),
            // ...nor when the servers no longer match it.
            (
                Operation::Failover,
                lost(),
                with(vec![run("1", "planned_failover", Some("failed"))]),
                ("proceed", None),
            ),
            // Another operation's unfinished run that is still true blocks this one.
            (
                Operation::Failover,
                rebuilt(),
                with(vec![run("1", "failback", Some("failed"))]),
                ("refuse", None),
            ),
        ];
        for (i, (op, o, history, expected)) in cases.into_iter().enumerate() {
            let a = classify(&o);
            let request = Request {
                operation: op,
                accept_split_brain: false,
            };
            let g = gate(&request, &a, &o, &history, &plan(op));
            assert_eq!(
                verdict(&g),
                expected,
                "case {i}: {:?} in {:?}: {g:?}",
                op,
                a.kind
            );
        }
    }

    #[test]
    fn a_live_primary_is_named_and_the_planned_failover_offered() {
        let o = observation(
            Some(db("ONLINE", Some("PRINCIPAL"))),
            Some(db("RESTORING", Some("MIRROR"))),
            Some(db("RESTORING", None)),
            Some(None),
            Some("Normal"),
        );
        let request = Request {
            operation: Operation::Failover,
            accept_split_brain: false,
        };
        let g = gate(
            &request,
            &classify(&o),
            &o,
            &History::default(),
            &plan(Operation::Failover),
        );
        let Gate::Refuse(message) = g else {
            panic!("{g:?}")
        };
        assert_eq!(
            message,
            "`mgc` answers ONLINE on `primary` (primary.example): a failover now leaves two writable copies (split brain). The primary is not lost: to move the pool with no data loss, run `pcfail failover --planned --pool pool.example`. If the primary must not be used although it answers, `--accept-split-brain` overrides this after a typed confirmation."
        );
        let request = Request {
            operation: Operation::Failover,
            accept_split_brain: true,
        };
        let g = gate(
            &request,
            &classify(&o),
            &o,
            &History::default(),
            &plan(Operation::Failover),
        );
        assert!(
            matches!(&g, Gate::Proceed { split_brain: Some(risk), .. } if risk.contains("split brain")),
            "{g:?}"
        );
    }

    #[test]
    fn drift_after_a_completed_failover_names_what_differs() {
        let o = observation(
            None,
            None,
            Some(db("ONLINE", None)),
            Some(None),
            Some("FailedOver"),
        );
        let history = History {
            runs: vec![run("R1", "failover", Some("completed"))],
            ..History::default()
        };
        let request = Request {
            operation: Operation::Failover,
            accept_split_brain: false,
        };
        let g = gate(
            &request,
            &classify(&o),
            &o,
            &history,
            &plan(Operation::Failover),
        );
        let Gate::Refuse(message) = g else {
            panic!("{g:?}")
        };
        assert_eq!(
            message,
            "the pool is failed over (run R1 completed at R1-end by u), but it is no longer as that operation leaves it; put this right by hand:\n  - `mgc` on `backup` is not mirrored (step 10 `mirror-mgc` mirrors it)\n  - `mgccomp` on `backup` is not mirrored (step 11 `mirror-mgccomp` mirrors it)"
        );
    }
}
