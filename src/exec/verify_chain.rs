//! Before step 1 (the point of no return), the log backups the failover is about to apply are read
//! and checked where they lie, so that no file stops the apply half-way:
//!
//! - **binding**: each set's FamilyGUID must be the family of the database (the set msdb last restored
//!   into it) and its FirstRecoveryForkID the fork the database continues
//!   (`sys.master_files.redo_start_fork_guid`). A file of the same name left from an earlier chain
//!   fits the LSNs but fails with 4330 mid-apply (reference B.4, B.5);
//! - **media**: `RESTORE VERIFYONLY ... WITH CHECKSUM` (without CHECKSUM for a set that carries none,
//!   which SQL Server would refuse with 3187).
//!
//! The files are those in the copy folder and, for names not yet copied or copied from a share that
//! holds them, the share's (the copy step copies those before the apply). What cannot be read is a
//! problem too. Problems stop the run (exit 3) with each file named, as the ledger shows them; what was
//! verified is remembered for the ledger.

use std::collections::BTreeMap;
use std::path::Path;

use super::chain::{self, LogBackup};
use super::outcome::Outcome;
use super::session::Session;
use super::{copy, probe};
use crate::action::Action;
use crate::plan::Plan;
use crate::quote;
use crate::situation::Observation;

/// The key the outcome is remembered under, for the ledger.
pub(crate) const KEY: &str = "log_chain_verified";

pub(crate) async fn check(
    plan: &Plan,
    session: &mut Session<'_>,
    o: &Observation,
) -> Option<Outcome> {
    let apply = plan.steps.iter().find_map(|s| match &s.action {
        Action::ApplyLogBackups(a) => Some(a),
        _ => None,
    })?;
    let (role, db) = (apply.instance, apply.database.clone());
    // Only while the database still takes log backups: a recovered one has nothing left to apply.
    let redo = match apply.redo_point(session).await {
        Ok(Some(redo)) => redo,
        _ => return None,
    };
    // The files by name: the share's copy wins where the share is readable, since the copy step
    // copies it again over a copy that differs.
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for folder in [&o.copy_folder, &o.share] {
        let (Some(path), true) = (&folder.path, folder.reachable) else {
            continue;
        };
        // Listed where pcfail reaches the folder; read by SQL Server under its own name for it.
        let local = folder.pcfail_path.as_ref().unwrap_or(path);
        let Ok((names, _)) = copy::list_log_backups(Path::new(local)) else {
            continue;
        };
        let separator = if path.contains('\\') { '\\' } else { '/' };
        for name in names {
            let full = format!("{}{separator}{name}", path.trim_end_matches(['\\', '/']));
            files.insert(name, full);
        }
    }
    let mut problems: Vec<(String, String)> = Vec::new();
    let mut sets: Vec<LogBackup> = Vec::new();
    for path in files.values() {
        match probe::log_backups_in(session, role, &db, path).await {
            Ok(found) => sets.extend(found),
            Err(e) => problems.push((path.clone(), format!("its header cannot be read: {e}"))),
        }
    }
    let family = probe::restored_family(session, role, &db)
        .await
        .ok()
        .flatten();
    let fork = probe::redo_start_fork(session, role, &db)
        .await
        .ok()
        .flatten();
    let to_apply = chain::plan_chain(sets, redo).to_apply;
    let mut verified = Vec::new();
    for set in &to_apply {
        if let (Some(want), Some(has)) = (&family, &set.family)
            && !want.eq_ignore_ascii_case(has)
        {
            problems.push((
                set.path.clone(),
                format!(
                    "it belongs to another backup chain: its FamilyGUID is {has}, but `{db}` on `{role}` was restored from family {want}"
                ),
            ));
            continue;
        }
        if let (Some(want), Some(has)) = (&fork, &set.first_fork)
            && !want.eq_ignore_ascii_case(has)
        {
            problems.push((
                set.path.clone(),
                format!(
                    "it belongs to another backup chain: it starts on recovery fork {has}, but `{db}` on `{role}` continues fork {want} (its RESTORE would fail with 4330)"
                ),
            ));
            continue;
        }
        let text = format!(
            "RESTORE VERIFYONLY FROM DISK = {} WITH FILE = {}{}",
            quote::sql_string(&set.path),
            set.position,
            if set.checksums { ", CHECKSUM" } else { "" }
        );
        match session.query(role, &text, &[]).await {
            Ok(_) => verified.push((set.path.clone(), set.checksums)),
            Err(e) => problems.push((set.path.clone(), format!("it failed verification: {e}"))),
        }
    }
    let lines = ledger_lines(&verified, &problems);
    session.remember(KEY, serde_json::json!({ "lines": lines }));
    if problems.is_empty() {
        return None;
    }
    let mut message = format!(
        "{} log backup(s) that the failover would apply to `{db}` cannot be applied; nothing was changed. Replace or remove each (a file from another chain does not belong in the folder), then run the same command again:",
        problems.len()
    );
    for line in &lines {
        message.push_str("\n  ");
        message.push_str(line);
    }
    Some(Outcome::Refused { message })
}

/// What the ledger shows: what was verified, and each file that failed, by name.
fn ledger_lines(verified: &[(String, bool)], problems: &[(String, String)]) -> Vec<String> {
    let mut lines = Vec::new();
    if !verified.is_empty() {
        let without = verified.iter().filter(|(_, checksums)| !checksums).count();
        lines.push(format!(
            "verified before step 1: {} log backup(s) to apply (RESTORE VERIFYONLY{}){}",
            verified.len(),
            if without == verified.len() {
                ""
            } else {
                " WITH CHECKSUM"
            },
            if without > 0 && without < verified.len() {
                format!("; {without} without checksums, which they do not carry")
            } else if without > 0 {
                "; without checksums, which they do not carry".to_owned()
            } else {
                String::new()
            }
        ));
    }
    for (path, why) in problems {
        lines.push(format!("FAILED `{path}`: {why}"));
    }
    lines
}
