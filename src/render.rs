//! Turns a [`Plan`] into what the operator reads (text) or what tools read (JSON, docs/plan-json.md).
//!
//! Both renderings show the same steps and the same command texts, byte for byte; neither adds
//! information the plan does not hold. Writing to stdout is the caller's business.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::action::{Command, Target};
use crate::plan::{Plan, PlanInstance};
use crate::runbook::{Address, Role};

/// Version of the JSON shape; bumped only on an incompatible change.
pub const JSON_FORMAT_VERSION: u32 = 1;

/// `90s`, `5m`, `1h30m`, as runbooks write durations.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            let _ = write!(out, "{n}{unit}");
        }
    }
    out
}

fn address(instance: &PlanInstance) -> String {
    match &instance.address {
        Address::Port(port) => format!("{}, port {port}", instance.host),
        Address::Named(name) => format!("{}, instance {name}", instance.host),
    }
}

fn where_(plan: &Plan, role: Role) -> String {
    match plan.instance(role) {
        Some(i) => format!("{role} ({})", address(i)),
        None => role.to_string(),
    }
}

/// The plan as text for a person.
pub fn text(plan: &Plan) -> String {
    let mut out = String::new();
    let op = match plan.operation {
        crate::runbook::Operation::Failover => "Failover",
        crate::runbook::Operation::PlannedFailover => "Planned failover",
        crate::runbook::Operation::Failback => "Fail-back",
    };
    let _ = writeln!(out, "{op} plan for Persistent Chat pool {}", plan.pool);
    let _ = writeln!(out, "Runbook: {}", plan.runbook.display());
    let _ = writeln!(out, "This is a plan only: nothing has been run.");
    let _ = writeln!(out);
    let _ = writeln!(out, "Instances:");
    for i in &plan.instances {
        let _ = writeln!(
            out,
            "  {:<15} {} (data center {})",
            i.role.key(),
            address(i),
            i.data_center
        );
    }
    let _ = match &plan.shell_session {
        None => writeln!(
            out,
            "Management Shell: `{}` on this machine",
            plan.shell_program
        ),
        Some(session) => writeln!(
            out,
            "Management Shell: `{}`, every cmdlet in a remoting session: {session}",
            plan.shell_program
        ),
    };
    if !plan.notes.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Read before you start:");
        for note in &plan.notes {
            let _ = writeln!(out, "  - {note}");
        }
    }
    let total = plan.steps.len();
    let point = plan.point_of_no_return();
    for step in &plan.steps {
        let _ = writeln!(out);
        if point == Some(step.number) {
            let _ = writeln!(
                out,
                "==== POINT OF NO RETURN: from step {} on, stopping does not restore the previous state ====",
                step.number
            );
            let _ = writeln!(out);
        }
        let _ = writeln!(out, "Step {} of {total}: {}", step.number, step.id);
        let _ = writeln!(out, "  {}", step.description);
        let on = match step.target {
            Target::Instance(role) => where_(plan, role),
            Target::Shell => match plan.shell_computer.as_deref() {
                Some(computer) => format!("Skype for Business Management Shell on {computer}"),
                None => "Skype for Business Management Shell".to_owned(),
            },
            Target::Operator => "operator".to_owned(),
        };
        let mut flags = vec![format!("on {on}")];
        flags.push(match step.timeout {
            Some(t) => format!("timeout {}", duration(t)),
            None => "no timeout".to_owned(),
        });
        if step.irreversible {
            flags.push("IRREVERSIBLE".to_owned());
        }
        if step.confirm {
            flags.push("asks for confirmation".to_owned());
        }
        let _ = writeln!(out, "  [{}]", flags.join("; "));
        for command in &step.commands {
            match command {
                Command::Sql {
                    instance,
                    database,
                    text,
                    when,
                } => {
                    let _ = writeln!(out, "  sql on {instance} (database {database}):");
                    if let Some(when) = when {
                        let _ = writeln!(out, "    -- {when}");
                    }
                    let _ = writeln!(out, "    {text}");
                }
                Command::PowerShell { text, when } => {
                    let _ = writeln!(out, "  powershell:");
                    if let Some(when) = when {
                        let _ = writeln!(out, "    # {when}");
                    }
                    let _ = writeln!(out, "    {text}");
                }
                Command::Computed { what, from } => {
                    let _ = writeln!(out, "  computed at run time:");
                    let _ = writeln!(out, "    {what}");
                    let _ = writeln!(out, "    from: {from}");
                }
                Command::Pause { message } => {
                    let _ = writeln!(out, "  pause for the operator:");
                    let _ = writeln!(out, "    {message}");
                }
            }
        }
    }
    out
}

#[derive(Serialize)]
struct JsonPlan<'a> {
    format_version: u32,
    operation: &'static str,
    pool: &'a str,
    runbook: String,
    instances: Vec<JsonInstance<'a>>,
    management_shell: JsonShell<'a>,
    notes: &'a [String],
    point_of_no_return: Option<usize>,
    steps: Vec<JsonStep<'a>>,
}

#[derive(Serialize)]
struct JsonInstance<'a> {
    role: Role,
    host: &'a str,
    port: Option<u16>,
    instance_name: Option<&'a str>,
    data_center: &'a str,
}

#[derive(Serialize)]
struct JsonShell<'a> {
    program: &'a str,
    computer: Option<&'a str>,
    remote_session: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonStep<'a> {
    number: usize,
    id: &'a str,
    action: &'static str,
    description: &'a str,
    target: Target,
    timeout_seconds: Option<u64>,
    irreversible: bool,
    confirm: bool,
    commands: &'a [Command],
}

/// The plan as JSON (docs/plan-json.md), pretty-printed, ending with a newline.
pub fn json(plan: &Plan) -> String {
    let doc = JsonPlan {
        format_version: JSON_FORMAT_VERSION,
        operation: plan.operation.key(),
        pool: &plan.pool,
        runbook: plan.runbook.display().to_string(),
        instances: plan
            .instances
            .iter()
            .map(|i| JsonInstance {
                role: i.role,
                host: &i.host,
                port: match i.address {
                    Address::Port(p) => Some(p),
                    Address::Named(_) => None,
                },
                instance_name: match &i.address {
                    Address::Named(n) => Some(n),
                    Address::Port(_) => None,
                },
                data_center: &i.data_center,
            })
            .collect(),
        management_shell: JsonShell {
            program: &plan.shell_program,
            computer: plan.shell_computer.as_deref(),
            remote_session: plan.shell_session.as_deref(),
        },
        notes: &plan.notes,
        point_of_no_return: plan.point_of_no_return(),
        steps: plan
            .steps
            .iter()
            .map(|s| JsonStep {
                number: s.number,
                id: &s.id,
                action: s.action.name(),
                description: &s.description,
                target: s.target,
                timeout_seconds: s.timeout.map(|t| t.as_secs()),
                irreversible: s.irreversible,
                confirm: s.confirm,
                commands: &s.commands,
            })
            .collect(),
    };
    let mut out = serde_json::to_string_pretty(&doc)
        .unwrap_or_else(|e| unreachable!("plan JSON is plain data: {e}"));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_render_as_runbooks_write_them() {
        let cases = [
            (90, "1m30s"),
            (300, "5m"),
            (3600, "1h"),
            (5400, "1h30m"),
            (45, "45s"),
        ];
        for (secs, expected) in cases {
            assert_eq!(duration(Duration::from_secs(secs)), expected);
        }
        assert_eq!(duration(Duration::from_millis(500)), "500ms");
    }
}
