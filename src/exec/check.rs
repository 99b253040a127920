//! `pcfail plan ... --check`: every precondition, checked read-only, as a pass/fail table.
//!
//! It starts from the situation (the same observation and gate every run starts from: does the
//! situation call for this operation at all?), then connects to each instance the plan uses, asks
//! only SELECT-shaped questions (the same probes the actions use), starts the PowerShell host to see
//! that the module loads and that every cmdlet and parameter the plan sends exists, and lists the
//! folders log shipping uses. It writes no journal and changes nothing; the host script goes to a
//! temporary folder.

use std::collections::BTreeSet;
use std::path::Path;

use super::probe;
use super::session::{Session, Timeouts};
use crate::action::{Action, Command, Target};
use crate::plan::Plan;
use crate::runbook::{Operation, Role, Runbook};
use crate::situation::{self, History};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CheckRow {
    pub ok: bool,
    pub check: String,
    pub detail: String,
}

impl CheckRow {
    fn new(ok: bool, check: impl Into<String>, detail: impl Into<String>) -> CheckRow {
        CheckRow {
            ok,
            check: check.into(),
            detail: detail.into(),
        }
    }
}

/// Renders the table: one row per check, PASS or FAIL first.
pub(crate) fn render(rows: &[CheckRow]) -> String {
    let width = rows.iter().map(|r| r.check.len()).max().unwrap_or(0);
    let mut out = String::new();
    for row in rows {
        out.push_str(&format!(
            "{}  {:width$}  {}\n",
            if row.ok { "PASS" } else { "FAIL" },
            row.check,
            row.detail
        ));
    }
    let failed = rows.iter().filter(|r| !r.ok).count();
    out.push_str(&match failed {
        0 => format!("all {} checks passed\n", rows.len()),
        1 => format!("1 of {} checks failed\n", rows.len()),
        n => format!("{n} of {} checks failed\n", rows.len()),
    });
    out
}

pub(crate) async fn preflight(
    runbook: &Runbook,
    plan: &Plan,
    history: &History,
    timeouts: Timeouts,
) -> Vec<CheckRow> {
    let host = super::host_settings(runbook, timeouts);
    let mut s = Session::unjournaled(runbook, host.clone(), timeouts);
    let mut rows = Vec::new();

    let known = situation::known_folders(history, &runbook.chat_database);
    let observation = situation::observe(runbook, timeouts, &host, &mut s, &known).await;
    let assessment = situation::classify(&observation);
    let request = situation::Request {
        operation: plan.operation,
        accept_split_brain: false,
    };
    let check = format!("the situation calls for a {}", plan.operation.describe());
    rows.push(
        match situation::gate(&request, &assessment, &observation, history, plan) {
            situation::Gate::Proceed { resume, .. } => CheckRow::new(
                true,
                check,
                match resume {
                    Some(run) => format!(
                        "{}; the unfinished run {} would be resumed",
                        assessment.kind.name(),
                        run.id
                    ),
                    None => assessment.kind.name().to_owned(),
                },
            ),
            situation::Gate::NothingToDo(message) => CheckRow::new(true, check, message),
            situation::Gate::Refuse(message) => CheckRow::new(false, check, message),
        },
    );

    for role in instances_used(plan) {
        let check = format!("instance `{role}` reachable, sysadmin");
        match s
            .query(
                role,
                "SELECT IS_SRVROLEMEMBER('sysadmin') AS is_sysadmin",
                &[],
            )
            .await
        {
            Ok(set) => {
                let admin = set
                    .rows
                    .first()
                    .and_then(|r| set.get(r, "is_sysadmin").as_i64())
                    == Some(1);
                rows.push(CheckRow::new(
                    admin,
                    check,
                    if admin { "logged in as a sysadmin" } else { "logged in, but not a member of sysadmin (log shipping, RESTORE and KILL need it)" },
                ));
            }
            Err(e) => rows.push(CheckRow::new(false, check, e.to_string())),
        }
    }

    match plan.operation.direction() {
        Operation::Failback => failback_checks(plan, &mut s, &mut rows).await,
        _ => failover_checks(plan, &mut s, &mut rows).await,
    }
    shell_checks(plan, &mut s, &mut rows).await;
    let _ = s.close().await;
    rows
}

async fn failover_checks(plan: &Plan, s: &mut Session<'_>, rows: &mut Vec<CheckRow>) {
    let mut endpoints_seen = BTreeSet::new();
    for step in &plan.steps {
        match &step.action {
            // The mirror step creates a missing endpoint and starts a stopped one, but stops at one on
            // another port (it is shared): that is worth knowing before step 1 (reference J.5).
            Action::MirrorDatabase(m) => {
                for (role, address) in [
                    (m.principal, &m.principal_endpoint),
                    (m.mirror, &m.mirror_endpoint),
                ] {
                    if !endpoints_seen.insert(role) {
                        continue;
                    }
                    let check = format!("mirroring endpoint of `{role}` fits the runbook");
                    rows.push(match probe::mirroring_endpoint(s, role).await {
                        Ok(None) => CheckRow::new(
                            true,
                            check,
                            format!(
                                "none yet: step {} creates one on port {}",
                                step.number, address.port
                            ),
                        ),
                        Ok(Some(e)) if e.port.is_some_and(|p| p != i64::from(address.port)) => {
                            CheckRow::new(
                                false,
                                check,
                                format!(
                                    "`{}` listens on port {}, but the runbook gives {address}: step {} would stop there",
                                    e.name,
                                    e.port.unwrap_or_default(),
                                    step.number
                                ),
                            )
                        }
                        Ok(Some(e)) if !e.state_desc.eq_ignore_ascii_case("STARTED") => {
                            CheckRow::new(
                                true,
                                check,
                                format!(
                                    "`{}` is {}: step {} starts it",
                                    e.name, e.state_desc, step.number
                                ),
                            )
                        }
                        Ok(Some(e)) => CheckRow::new(
                            true,
                            check,
                            format!("`{}` STARTED on port {}", e.name, address.port),
                        ),
                        Err(e) => CheckRow::new(false, check, e.to_string()),
                    });
                }
            }
            Action::ApplyLogBackups(a) => {
                let check = format!("`{}` on `{}` is restoring", a.database, a.instance);
                match probe::database(s, a.instance, &a.database).await {
                    Ok(Some(db)) if db.accepts_log() => {
                        rows.push(CheckRow::new(
                            true,
                            check,
                            format!("{} (standby: {})", db.state_desc, db.is_in_standby),
                        ));
                    }
                    Ok(Some(db)) => rows.push(CheckRow::new(
                        false,
                        check,
                        format!("it is {}: no log backup can be applied", db.state_desc),
                    )),
                    Ok(None) => {
                        rows.push(CheckRow::new(false, check, "the database does not exist"))
                    }
                    Err(e) => rows.push(CheckRow::new(false, check, e.to_string())),
                }
            }
            Action::RemoveLogShippingSecondary(r) => {
                let check = format!(
                    "log shipping of `{}` configured on `{}`",
                    r.database, r.instance
                );
                match probe::log_shipping_secondary(s, r.instance, &r.database).await {
                    Ok(Some(ls)) => {
                        rows.push(CheckRow::new(
                            true,
                            check,
                            format!(
                                "from {} (`{}`)",
                                ls.primary_server, ls.backup_source_directory
                            ),
                        ));
                        let overrides = s.runbook.log_shipping.clone();
                        let share = overrides
                            .share
                            .clone()
                            .unwrap_or(ls.backup_source_directory);
                        let copy = overrides
                            .copy_folder
                            .clone()
                            .unwrap_or(ls.backup_destination_directory);
                        rows.push(folder_row(
                            "backup share readable",
                            &overrides.share_for_pcfail(&share),
                        ));
                        rows.push(folder_row(
                            "copy folder readable",
                            &overrides.copy_folder_for_pcfail(&copy),
                        ));
                    }
                    Ok(None) => {
                        let overrides = &s.runbook.log_shipping;
                        let given = overrides.share.is_some() && overrides.copy_folder.is_some();
                        rows.push(CheckRow::new(
                            given,
                            check,
                            if given {
                                "not configured; the runbook's share and copy_folder will be used"
                            } else {
                                "not configured, and the runbook gives no share and copy_folder"
                            },
                        ));
                    }
                    Err(e) => rows.push(CheckRow::new(false, check, e.to_string())),
                }
            }
            _ => {}
        }
    }
}

async fn failback_checks(plan: &Plan, s: &mut Session<'_>, rows: &mut Vec<CheckRow>) {
    for step in &plan.steps {
        if let Action::BackupDatabase(b) = &step.action {
            let check = format!("`{}` on `{}` is online", b.database, b.instance);
            match probe::database(s, b.instance, &b.database).await {
                Ok(Some(db)) if db.is_recovered() => {
                    rows.push(CheckRow::new(true, check, "ONLINE"))
                }
                Ok(Some(db)) => rows.push(CheckRow::new(
                    false,
                    check,
                    format!("it is {}", db.state_desc),
                )),
                Ok(None) => rows.push(CheckRow::new(false, check, "the database does not exist")),
                Err(e) => rows.push(CheckRow::new(false, check, e.to_string())),
            }
        }
    }
}

async fn shell_checks(plan: &Plan, s: &mut Session<'_>, rows: &mut Vec<CheckRow>) {
    let mut used: Vec<(String, BTreeSet<String>)> = Vec::new();
    for step in &plan.steps {
        for command in &step.commands {
            if let Command::PowerShell { text, .. } = command {
                let (name, params) = cmdlet_and_parameters(text);
                match used.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                    Some((_, set)) => set.extend(params),
                    None => used.push((name, params)),
                }
            }
        }
        if let Action::SetPoolState(_) = &step.action {
            // Checked and verified with Get-CsPersistentChatState.
            if !used.iter().any(|(n, _)| n == "Get-CsPersistentChatState") {
                used.push((
                    "Get-CsPersistentChatState".to_owned(),
                    ["Identity".to_owned()].into(),
                ));
            }
        }
    }
    if used.is_empty() && !plan.steps.iter().any(|st| st.target == Target::Shell) {
        return;
    }
    for (name, params) in used {
        let check = format!("cmdlet `{name}` and its parameters exist");
        let command = format!("Get-Command -Name {}", crate::quote::ps_string(&name));
        match s.cmdlet(&command, s.timeouts.query).await {
            Ok(inv) => {
                let known: BTreeSet<String> = inv
                    .output
                    .first()
                    .and_then(|o| o.get("Parameters"))
                    .and_then(|p| p.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_ascii_lowercase))
                            .collect()
                    })
                    .unwrap_or_default();
                let missing: Vec<&String> = params
                    .iter()
                    .filter(|p| !known.contains(&p.to_ascii_lowercase()))
                    .collect();
                if missing.is_empty() {
                    rows.push(CheckRow::new(
                        true,
                        check,
                        format!("{} parameter(s) used", params.len()),
                    ));
                } else {
                    let list: Vec<String> = missing.iter().map(|p| format!("-{p}")).collect();
                    rows.push(CheckRow::new(
                        false,
                        check,
                        format!("unknown parameter(s): {}", list.join(", ")),
                    ));
                }
            }
            Err(e) => rows.push(CheckRow::new(false, check, e.to_string())),
        }
    }
}

/// The cmdlet name and the `-Parameter` names of a command pcfail rendered (one command; values are
/// single-quoted literals, so a `-` inside a value is never at a token start outside quotes).
fn cmdlet_and_parameters(text: &str) -> (String, BTreeSet<String>) {
    let mut params = BTreeSet::new();
    let mut name = String::new();
    let mut in_quote = false;
    let mut token = String::new();
    let mut tokens = Vec::new();
    for c in text.chars() {
        if crate::quote::is_powershell_single_quote(c) {
            in_quote = !in_quote;
            token.push(c);
        } else if c.is_whitespace() && !in_quote {
            if !token.is_empty() {
                tokens.push(std::mem::take(&mut token));
            }
        } else {
            token.push(c);
        }
    }
    if !token.is_empty() {
        tokens.push(token);
    }
    for (i, t) in tokens.iter().enumerate() {
        if i == 0 {
            name = t.clone();
        } else if let Some(p) = t.strip_prefix('-') {
            let p = p.split(':').next().unwrap_or(p);
            if !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric()) {
                params.insert(p.to_owned());
            }
        }
    }
    (name, params)
}

fn folder_row(what: &str, path: &Path) -> CheckRow {
    match std::fs::read_dir(path) {
        Ok(_) => CheckRow::new(true, what, format!("`{}`", path.display())),
        Err(e) => CheckRow::new(false, what, format!("`{}`: {e}", path.display())),
    }
}

/// Every instance a step of the plan talks to, plus the backup instance (the run lock lives there).
fn instances_used(plan: &Plan) -> Vec<Role> {
    let mut roles = BTreeSet::new();
    roles.insert(Role::Backup);
    for step in &plan.steps {
        if let Target::Instance(role) = step.target {
            roles.insert(role);
        }
        for command in &step.commands {
            if let Command::Sql { instance, .. } = command {
                roles.insert(*instance);
            }
        }
    }
    roles.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_read_from_rendered_commands_but_not_from_inside_values() {
        let (name, params) = cmdlet_and_parameters(
            "Set-CsPersistentChatState -Identity 'service:a -Force b' -PoolState 'FailedOver' -Confirm:$false",
        );
        assert_eq!(name, "Set-CsPersistentChatState");
        assert_eq!(
            params.into_iter().collect::<Vec<_>>(),
            vec!["Confirm", "Identity", "PoolState"]
        );
    }

    #[test]
    fn the_table_counts_failures_with_the_right_plural() {
        let rows = vec![
            CheckRow::new(true, "a", "fine"),
            CheckRow::new(false, "bb", "broken"),
        ];
        assert_eq!(
            render(&rows),
            "PASS  a   fine\nFAIL  bb  broken\n1 of 2 checks failed\n"
        );
    }
}
