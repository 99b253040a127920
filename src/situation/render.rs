//! `pcfail status --live`: the observation as a table and the situation with the next command, as text
//! for people and as JSON for scripts (`format_version` 1, docs/status-json.md; fields are only ever
//! added).

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::json;

use super::classify::Assessment;
use super::history::{History, RunSummary};
use super::observe::{FolderView, InstanceView, Observation};

/// Everything `status --live` shows.
pub(crate) struct Report<'a> {
    pub observation: &'a Observation,
    pub assessment: &'a Assessment,
    pub history: &'a History,
}

#[derive(Serialize)]
struct RunBrief<'a> {
    id: &'a str,
    operation: &'a str,
    started: &'a str,
    finished: Option<&'a str>,
    outcome: Option<&'a str>,
    operator: &'a str,
    host: &'a str,
    where_stopped: Option<String>,
}

fn brief(run: &RunSummary) -> RunBrief<'_> {
    RunBrief {
        id: &run.id,
        operation: &run.operation,
        started: &run.started,
        finished: run.finished.as_deref(),
        outcome: run.outcome.as_deref(),
        operator: &run.operator,
        host: &run.host,
        where_stopped: (!run.completed()).then(|| run.where_stopped()),
    }
}

/// The active servers as pcfail last set them (no cmdlet reads them back, reference H.3).
fn active_servers(history: &History) -> serde_json::Value {
    match history.last_captured("active_servers") {
        Some((run, servers)) => json!({
            "readable": false,
            "last_set_by_pcfail": { "run": run.id, "servers": servers },
        }),
        None => json!({ "readable": false, "last_set_by_pcfail": null }),
    }
}

pub(crate) fn report_json(r: &Report<'_>) -> String {
    let a = r.assessment;
    let value = json!({
        "format_version": 1,
        "pool": r.observation.pool,
        "situation": {
            "kind": a.kind,
            "name": a.kind.name(),
            "operation": a.operation.map(|o| o.key()),
            "summary": a.summary,
            "next": a.next,
            "next_command": a.next_command,
            "findings": a.findings,
            "facts": a.facts,
        },
        "instances": r.observation.instances,
        "share": r.observation.share,
        "copy_folder": r.observation.copy_folder,
        "shell": r.observation.shell,
        "active_servers": active_servers(r.history),
        "runs": {
            "last_completed": r.history.last_completed().map(brief),
            "pending": r.history.pending().map(brief),
            "damaged": r.history.damaged.iter().map(|(p, why)| json!({ "path": p, "reason": why })).collect::<Vec<_>>(),
        },
    });
    let mut text = serde_json::to_string_pretty(&value).expect("the report serializes");
    text.push('\n');
    text
}

pub(crate) fn report_text(r: &Report<'_>) -> String {
    let o = r.observation;
    let a = r.assessment;
    let mut out = String::new();
    let _ = writeln!(out, "Persistent Chat pool {}: {}", o.pool, a.kind.name());
    let _ = writeln!(out, "  {}", a.summary);
    out.push_str("\nSQL Server instances\n");
    let rows: Vec<[String; 6]> = o.instances.iter().map(|i| instance_row(i, o)).collect();
    let header = [
        "ROLE".to_owned(),
        "HOST".to_owned(),
        "DC".to_owned(),
        "ANSWERS".to_owned(),
        o.chat_database.clone(),
        o.compliance_database.clone(),
    ];
    let mut widths = [0usize; 6];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect();
        let _ = writeln!(out, "  {}", cells.join("  ").trim_end());
    }
    for i in &o.instances {
        if let Some(ls) = &i.log_shipping_secondary {
            let _ = writeln!(
                out,
                "  {}: log-shipping secondary of {}.{}; last copied {}, last restored {}",
                i.role,
                ls.primary_server,
                ls.primary_database,
                ls.last_copied_file.as_deref().map_or("-", file_name),
                ls.last_restored_file.as_deref().map_or("-", file_name),
            );
        }
        if let Some(lp) = &i.log_shipping_primary {
            let _ = writeln!(
                out,
                "  {}: log-shipping primary; last log backup {}",
                i.role,
                lp.last_backup_file.as_deref().map_or("-", file_name)
            );
        }
    }
    out.push('\n');
    let _ = writeln!(out, "Backup share    {}", folder(&o.share));
    let _ = writeln!(out, "Copy folder     {}", folder(&o.copy_folder));
    let _ = writeln!(
        out,
        "Pool state      {}",
        match (&o.shell.pool_state, &o.shell.error) {
            (Some(s), _) => format!(
                "{s} (Get-CsPersistentChatState -Identity {}{})",
                o.shell.identity,
                o.shell
                    .remoting_session
                    .as_ref()
                    .and_then(|session| session["ComputerName"].as_str())
                    .map(|computer| format!(", in a remoting session on {computer}"))
                    .unwrap_or_default()
            ),
            (None, Some(e)) => format!("unknown: {e}"),
            (None, None) => "unknown".to_owned(),
        }
    );
    let _ = writeln!(
        out,
        "Active servers  {}",
        match r.history.last_captured("active_servers") {
            Some((run, servers)) => format!(
                "cannot be read back (no Get- cmdlet exists); last set by pcfail in run {}: {}",
                run.id,
                servers
                    .as_array()
                    .map(|s| s
                        .iter()
                        .filter_map(|v| v.as_str())
                        .collect::<Vec<_>>()
                        .join(", "))
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "none (cleared)".to_owned())
            ),
            None => "cannot be read back (no Get- cmdlet exists); pcfail has not set them here"
                .to_owned(),
        }
    );
    let _ = writeln!(
        out,
        "Runs            {}",
        match (r.history.last_completed(), r.history.pending()) {
            (None, None) => "none in this state directory".to_owned(),
            (last, pending) => {
                let mut parts = Vec::new();
                if let Some(l) = last {
                    parts.push(format!(
                        "last completed: {} ({} by {})",
                        l.id, l.operation, l.operator
                    ));
                }
                if let Some(p) = pending {
                    parts.push(format!(
                        "unfinished: {} ({}, {})",
                        p.id,
                        p.operation,
                        p.where_stopped()
                    ));
                }
                parts.join("; ")
            }
        }
    );
    if !a.findings.is_empty() {
        out.push_str("\nFindings\n");
        for f in &a.findings {
            let _ = writeln!(out, "  - {f}");
        }
    }
    let _ = writeln!(out, "\nNext: {}", a.next);
    if let Some(command) = &a.next_command {
        let _ = writeln!(out, "  {command}");
    }
    out
}

fn instance_row(i: &InstanceView, o: &Observation) -> [String; 6] {
    let db = |name: &str| -> String {
        if !i.reachable {
            return "-".to_owned();
        }
        match i.database(name) {
            None => "(none)".to_owned(),
            Some(d) => {
                let mut s = d.state.clone();
                if d.standby {
                    s.push_str(" standby");
                }
                if let Some(m) = &d.mirroring {
                    s.push_str(&format!(" ({} {})", m.role, m.state));
                }
                s
            }
        }
    };
    [
        i.role.to_string(),
        i.host.clone(),
        i.data_center.clone(),
        if i.reachable { "yes" } else { "no" }.to_owned(),
        db(&o.chat_database),
        db(&o.compliance_database),
    ]
}

fn folder(f: &FolderView) -> String {
    let Some(path) = &f.path else {
        return "unknown".to_owned();
    };
    let mut s = format!("`{path}` ({})", f.source.unwrap_or("?"));
    if let Some(m) = &f.msdb_path {
        s.push_str(&format!(", msdb records `{m}`"));
    }
    if let Some(local) = &f.pcfail_path {
        s.push_str(&format!(", pcfail reaches it as `{local}`"));
    }
    if f.reachable {
        s.push_str(&format!(
            ": {} log backup(s), newest {}",
            f.log_backups,
            f.newest.as_deref().unwrap_or("-")
        ));
    } else {
        s.push_str(&format!(
            ": cannot be read: {}",
            f.error.as_deref().unwrap_or("unknown error")
        ));
    }
    s
}

/// The last component of a Windows or Unix path.
fn file_name(path: &str) -> &str {
    path.rsplit(['\\', '/']).next().unwrap_or(path)
}
