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
use std::sync::Arc;

use super::chain::{self, Link};
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
    // copies it again over a copy that differs. Each name is kept once, with which folder it is
    // read from; its full path is made when it is read or named.
    let mut folders: Vec<String> = Vec::new();
    let mut files: BTreeMap<Arc<str>, usize> = BTreeMap::new();
    for folder in [&o.copy_folder, &o.share] {
        let (Some(path), true) = (&folder.path, folder.reachable) else {
            continue;
        };
        // Listed where pcfail reaches the folder; read by SQL Server under its own name for it.
        let local = folder.pcfail_path.as_ref().unwrap_or(path);
        let Ok((names, _)) = copy::list_log_backups(Path::new(local)) else {
            continue;
        };
        folders.push(path.clone());
        for name in names {
            files.insert(name.into(), folders.len() - 1);
        }
    }
    let full_path = |name: &str, folder: usize| {
        let path = &folders[folder];
        let separator = if path.contains('\\') { '\\' } else { '/' };
        format!("{}{separator}{name}", path.trim_end_matches(['\\', '/']))
    };
    let mut problems: Vec<(String, String)> = Vec::new();
    // A backlog's sets, kept small: GUIDs are few (one family, a fork or two), so each set keeps an
    // index into `guids` rather than its own copy.
    let mut guids: Vec<String> = Vec::new();
    let mut intern = |guid: Option<String>| {
        guid.map(|g| match guids.iter().position(|known| *known == g) {
            Some(i) => i,
            None => {
                guids.push(g);
                guids.len() - 1
            }
        })
    };
    let mut sets: Vec<Found> = Vec::new();
    for (name, &folder) in &files {
        let path = full_path(name, folder);
        match probe::log_backups_in(session, role, &db, &path).await {
            Ok(found) => sets.extend(found.into_iter().map(|b| Found {
                name: Arc::clone(name),
                folder,
                position: b.position,
                first_lsn: b.first_lsn,
                last_lsn: b.last_lsn,
                family: intern(b.family),
                first_fork: intern(b.first_fork),
                checksums: b.checksums,
            })),
            Err(e) => problems.push((path, format!("its header cannot be read: {e}"))),
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
        let path = full_path(&set.name, set.folder);
        if let (Some(want), Some(has)) = (&family, set.family.map(|i| &guids[i]))
            && !want.eq_ignore_ascii_case(has)
        {
            problems.push((
                path,
                format!(
                    "it belongs to another backup chain: its FamilyGUID is {has}, but `{db}` on `{role}` was restored from family {want}"
                ),
            ));
            continue;
        }
        if let (Some(want), Some(has)) = (&fork, set.first_fork.map(|i| &guids[i]))
            && !want.eq_ignore_ascii_case(has)
        {
            problems.push((
                path,
                format!(
                    "it belongs to another backup chain: it starts on recovery fork {has}, but `{db}` on `{role}` continues fork {want} (its RESTORE would fail with 4330)"
                ),
            ));
            continue;
        }
        let text = format!(
            "RESTORE VERIFYONLY FROM DISK = {} WITH FILE = {}{}",
            quote::sql_string(&path),
            set.position,
            if set.checksums { ", CHECKSUM" } else { "" }
        );
        match session.query(role, &text, &[]).await {
            // Only the count and whether checksums were used reach the ledger.
            Ok(_) => verified.push(set.checksums),
            Err(e) => problems.push((path, format!("it failed verification: {e}"))),
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
fn ledger_lines(verified: &[bool], problems: &[(String, String)]) -> Vec<String> {
    let mut lines = Vec::new();
    if !verified.is_empty() {
        let without = verified.iter().filter(|checksums| !**checksums).count();
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

/// A backup set found in the folders, reduced to what the checks need: the file's name (shared
/// with the listing) and folder, where the set lies, its LSNs, its GUIDs as indexes into the few
/// distinct ones read, whether it carries checksums.
#[derive(Clone, Debug)]
struct Found {
    name: Arc<str>,
    folder: usize,
    position: u32,
    first_lsn: i128,
    last_lsn: i128,
    family: Option<usize>,
    first_fork: Option<usize>,
    checksums: bool,
}

impl Link for Found {
    fn file(&self) -> &str {
        &self.name
    }
    fn position(&self) -> u32 {
        self.position
    }
    fn first_lsn(&self) -> i128 {
        self.first_lsn
    }
    fn last_lsn(&self) -> i128 {
        self.last_lsn
    }
}
