//! The plan: a pure function of a validated runbook and an operation, and the value both `pcfail plan`
//! prints and the executor runs.
//!
//! Each [`PlannedStep`] carries its typed [`Action`] (which the executor runs) together with the exact
//! commands rendered from it (which the operator reviews), its target, timeout and flags. Building a
//! plan touches nothing outside memory: no connection, no process, no file. Live preconditions and the
//! journal's progress are the executor's inputs, not this module's.

use std::path::PathBuf;
use std::time::Duration;

use crate::action::{Action, Command, Target};
use crate::exec::probe::LogShippingSecondary;
use crate::runbook::{Address, Operation, Role, Runbook};
use crate::situation::History;

/// Where an instance is, for the plan's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanInstance {
    pub role: Role,
    pub host: String,
    pub address: Address,
    pub data_center: String,
}

/// A failover's cmdlets cannot run in a remoting session on a server of the data center it is
/// leaving: after a disaster that computer is gone too. Said in the plan, where it can still be
/// changed; the run itself refuses when the session cannot be opened.
fn remote_in_lost_data_center(runbook: &Runbook, operation: Operation) -> Option<String> {
    if operation == Operation::Failback {
        return None;
    }
    let remote = runbook.powershell.remote.as_ref()?;
    let primary = runbook.instances.get(&Role::Primary)?;
    let server = runbook
        .management_store
        .iter()
        .flat_map(|m| &m.servers)
        .chain(&runbook.chat_servers)
        .find(|s| s.fqdn.eq_ignore_ascii_case(&remote.computer))?;
    server
        .data_center
        .eq_ignore_ascii_case(&primary.data_center)
        .then(|| {
            format!(
                "`[powershell.remote] computer` is `{}`, in data center {}, the primary's: after losing it, no cmdlet can run; name a Front End of the backup data center",
                remote.computer, server.data_center
            )
        })
}

/// One step, ready to review and to run.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedStep {
    /// 1-based position in the plan.
    pub number: usize,
    pub id: String,
    pub description: String,
    pub action: Action,
    pub target: Target,
    /// `None`: no limit (a pause waits for the operator).
    pub timeout: Option<Duration>,
    pub irreversible: bool,
    pub confirm: bool,
    pub commands: Vec<Command>,
}

/// A failover or fail-back, step by step.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub operation: Operation,
    pub pool: String,
    pub runbook: PathBuf,
    pub instances: Vec<PlanInstance>,
    /// Where the cmdlets run: the host program, and the remoting session it opens first, if any
    /// (as `New-PSSession ...` text).
    pub shell_program: String,
    pub shell_computer: Option<String>,
    pub shell_session: Option<String>,
    pub notes: Vec<String>,
    /// The notes that came from earlier runs' journals (also in `notes`), repeated at the
    /// confirmation before the first step.
    pub history_notes: Vec<String>,
    pub steps: Vec<PlannedStep>,
}

impl Plan {
    /// Builds the plan of `operation` from `runbook`.
    /// A planned failover of a runbook without `[planned_failover]` steps is an empty plan; the
    /// command line refuses it before building one.
    pub fn build(runbook: &Runbook, operation: Operation) -> Plan {
        let procedure = runbook.procedure(operation).unwrap_or_default();
        let steps = procedure
            .steps
            .iter()
            .enumerate()
            .map(|(i, step)| PlannedStep {
                number: i + 1,
                id: step.id.clone(),
                description: step.description.clone(),
                target: step.action.target(),
                timeout: step.timeout.or_else(|| step.action.default_timeout()),
                irreversible: step.action.irreversible(),
                // A pause is a confirmation by nature, whatever the runbook says.
                confirm: step.confirm || matches!(step.action, Action::Pause(_)),
                commands: step.action.render(),
                action: step.action.clone(),
            })
            .collect();
        Plan {
            operation,
            pool: runbook.pool.fqdn.clone(),
            runbook: runbook.path.clone(),
            instances: runbook
                .instances
                .values()
                .map(|i| PlanInstance {
                    role: i.role,
                    host: i.host.clone(),
                    address: i.address.clone(),
                    data_center: i.data_center.clone(),
                })
                .collect(),
            shell_program: runbook.powershell.program.clone(),
            shell_computer: runbook
                .powershell
                .remote
                .as_ref()
                .map(|r| r.computer.clone()),
            shell_session: runbook
                .powershell
                .remote
                .as_ref()
                .map(crate::powershell::remote_session_command),
            notes: procedure
                .notes
                .iter()
                .cloned()
                .chain(remote_in_lost_data_center(runbook, operation))
                .collect(),
            history_notes: Vec::new(),
            steps,
        }
    }

    /// Fills what the runbook leaves to facts an earlier run captured (the log-shipping settings a
    /// failover read before removing them, which fail-back puts back) and notes where the runbook
    /// says otherwise. `pcfail plan` and the executor both call it with the same state directory, so
    /// they show and run the same plan.
    pub(crate) fn with_history(mut self, history: &History) -> Plan {
        for step in &mut self.steps {
            let Action::ConfigureLogShipping(configure) = &mut step.action else {
                continue;
            };
            let key = crate::exec::session::log_shipping_key(&configure.database);
            let Some((run, value)) = history.last_captured(&key) else {
                continue;
            };
            let Ok(captured) = serde_json::from_value::<LogShippingSecondary>(value.clone()) else {
                continue;
            };
            let filling = configure.from_capture.clone();
            let notes = configure.resolve(&captured, &run.id);
            if !filling.is_empty() {
                self.history_notes.push(format!(
                    "step {} (`{}`) puts back log shipping as it was before the failover: {} from the settings run {} captured",
                    step.number,
                    step.id,
                    filling.join(", "),
                    run.id
                ));
            }
            self.history_notes.extend(notes);
            step.commands = step.action.render();
        }
        self.notes.extend(self.history_notes.iter().cloned());
        self
    }

    /// Why the plan cannot run yet: a step still waits for a fact no run captured.
    pub(crate) fn unresolved(&self) -> Option<String> {
        self.steps.iter().find_map(|step| match &step.action {
            Action::ConfigureLogShipping(c) => c
                .unresolved()
                .map(|why| format!("step {} (`{}`): {why}", step.number, step.id)),
            _ => None,
        })
    }

    /// The number of the first irreversible step: from there on, stopping does not restore the
    /// previous state.
    pub fn point_of_no_return(&self) -> Option<usize> {
        self.steps.iter().find(|s| s.irreversible).map(|s| s.number)
    }

    pub fn instance(&self, role: Role) -> Option<&PlanInstance> {
        self.instances.iter().find(|i| i.role == role)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::runbook;

    const SHIPPED: &str = include_str!("../runbooks/persistent-chat.toml");

    fn shipped() -> Runbook {
        runbook::parse_str(Path::new("runbooks/persistent-chat.toml"), SHIPPED)
            .expect("shipped runbook is valid")
    }

    fn sql_texts(plan: &Plan) -> Vec<(usize, Role, String)> {
        let mut out = Vec::new();
        for step in &plan.steps {
            for command in &step.commands {
                if let Command::Sql { instance, text, .. } = command {
                    out.push((step.number, *instance, text.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn failover_follows_microsofts_steps_with_service_before_mirroring() {
        let plan = Plan::build(&shipped(), Operation::Failover);
        let actions: Vec<&str> = plan.steps.iter().map(|s| s.action.name()).collect();
        assert_eq!(
            actions,
            [
                "remove_log_shipping_secondary",
                "copy_log_backups",
                "apply_log_backups",
                "end_sessions",
                "recover_database",
                "pause",
                "fail_over_management_store",
                "set_pool_state",
                "set_active_servers",
                "mirror_database",
                "mirror_database",
            ]
        );
        assert_eq!(plan.point_of_no_return(), Some(1));
    }

    #[test]
    fn failback_restores_mirrors_reships_logs_then_serves() {
        let plan = Plan::build(&shipped(), Operation::Failback);
        let actions: Vec<&str> = plan.steps.iter().map(|s| s.action.name()).collect();
        assert_eq!(
            actions,
            [
                "set_active_servers",
                "remove_mirroring",
                "remove_mirroring",
                "backup_database",
                "pause",
                "restore_database",
                "mirror_database",
                "configure_log_shipping",
                "set_pool_state",
                "wait_for_replication",
                "set_active_servers",
                "test_persistent_chat",
            ]
        );
        let restore = sql_texts(&plan)
            .into_iter()
            .find(|(_, _, t)| t.contains("REPLACE, RECOVERY"))
            .expect("a restore over the primary");
        assert_eq!(restore.1, Role::Primary);
        assert_eq!(plan.point_of_no_return(), Some(2));
    }

    #[test]
    fn mirroring_sets_the_partner_on_the_mirror_before_the_principal() {
        let plan = Plan::build(&shipped(), Operation::Failover);
        let partners: Vec<(Role, String)> = sql_texts(&plan)
            .into_iter()
            .filter(|(n, _, t)| *n == 10 && t.contains("SET PARTNER ="))
            .map(|(_, r, t)| (r, t))
            .collect();
        assert_eq!(
            partners,
            [
                (
                    Role::BackupMirror,
                    "ALTER DATABASE [mgc] SET PARTNER = N'TCP://dal-sql-001.litwareinc.com:5022'"
                        .to_owned()
                ),
                (
                    Role::Backup,
                    "ALTER DATABASE [mgc] SET PARTNER = N'TCP://dal-sql-002.litwareinc.com:5022'"
                        .to_owned()
                ),
            ]
        );
    }

    #[test]
    fn every_sql_statement_is_one_plain_statement() {
        for operation in [Operation::Failover, Operation::Failback] {
            let plan = Plan::build(&shipped(), operation);
            for (_, _, text) in sql_texts(&plan) {
                let upper = text.to_ascii_uppercase();
                for banned in ["IF ", "BEGIN", "DECLARE", "@@", ";", "\n"] {
                    assert!(!upper.contains(banned), "{banned:?} in {text}");
                }
            }
        }
    }

    #[test]
    fn plan_uses_step_timeout_or_the_action_default() {
        let plan = Plan::build(&shipped(), Operation::Failover);
        let cases = [(1, Some(Duration::from_secs(300))), (6, None)];
        for (number, expected) in cases {
            assert_eq!(plan.steps[number - 1].timeout, expected, "step {number}");
        }
    }
}
