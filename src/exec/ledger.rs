//! The data-loss ledger, computed before the first step and confirmed by the operator: what is in
//! hand, what is reachable, what is known to exist, and what will be lost.
//!
//! For a failover it names the last log backup the backup instance restored, the newest log backup in
//! the copy folder and in the share (or that the share cannot be read: a loss to confirm, not an
//! error), the newest one msdb knows of, and the changes that are lost. Times come from the servers:
//! a backup's time from its file name (`<db>_<yyyymmddhhmmss>.trn`, UTC per reference A.4, UNVERIFIED)
//! or its header, "now" from the backup instance's clock, never the pcfail host's; a duration is
//! never negative. A planned failover expects no loss: its tail-log backup is applied before recovery
//! (recovery refuses to run without it). For a fail-back it says what the restore overwrites.

use serde_json::json;

use super::probe;
use super::session::Session;
use crate::action::Action;
use crate::plan::Plan;
use crate::runbook::Role;
use crate::situation::Observation;

pub(crate) struct Ledger {
    lines: Vec<String>,
    json: serde_json::Value,
}

impl Ledger {
    pub(crate) fn render(&self) -> String {
        self.lines.join("\n")
    }

    /// The facts as JSON, with the text the operator was shown (`text`), for the journal and the
    /// report.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut json = self.json.clone();
        if let Some(map) = json.as_object_mut() {
            map.insert("text".into(), self.lines.clone().into());
        }
        json
    }
}

pub(crate) async fn build(plan: &Plan, session: &mut Session<'_>, o: &Observation) -> Ledger {
    let copy_step = plan.steps.iter().find_map(|s| match &s.action {
        Action::CopyLogBackups(c) => Some(c),
        _ => None,
    });
    match copy_step {
        Some(copy) => failover(plan, session, o, copy.instance, &copy.database).await,
        None => other(plan),
    }
}

fn other(plan: &Plan) -> Ledger {
    let restore = plan.steps.iter().find_map(|s| match &s.action {
        Action::RestoreDatabase(r) => Some(r),
        _ => None,
    });
    let mut lines = vec!["Data-loss ledger:".to_owned()];
    match restore {
        Some(r) => lines.push(format!(
            "  `{}` on `{}` will be replaced by the backup `{}`: anything only the {} copy holds is lost.",
            r.database, r.instance, r.file, r.instance
        )),
        None => lines.push("  this procedure applies no log backups.".to_owned()),
    }
    if let Some(clear) = plan
        .steps
        .iter()
        .find(|s| matches!(&s.action, Action::SetActiveServers(a) if a.servers.is_empty()))
    {
        lines.push(format!(
            "  Persistent Chat accepts no new connections from step {} (`{}`) until the active servers are set again.",
            clear.number, clear.id
        ));
    }
    Ledger {
        json: json!({ "summary": lines[1..].join(" ") }),
        lines,
    }
}

async fn failover(
    plan: &Plan,
    session: &mut Session<'_>,
    o: &Observation,
    instance: Role,
    db: &str,
) -> Ledger {
    let captured = session.captured_log_shipping(db);
    let last_restored = captured.as_ref().and_then(|c| c.last_restored_file.clone());
    let last_restored_date = captured.as_ref().and_then(|c| c.last_restored_date.clone());
    let last_copied = captured.as_ref().and_then(|c| c.last_copied_file.clone());
    let primary_newest = o
        .instance(Role::Primary)
        .filter(|i| i.reachable)
        .and_then(|i| i.log_shipping_primary.as_ref())
        .and_then(|p| p.last_backup_file.clone());
    let share = &o.share;
    let copy = &o.copy_folder;
    let server_now = o.instance(instance).and_then(|i| i.server_time_utc.clone());
    let tail = plan.steps.iter().find_map(|s| match &s.action {
        Action::BackupLogTail(t) if t.database.eq_ignore_ascii_case(db) => Some((s, t)),
        _ => None,
    });

    // The newest log backup pcfail can reach, by name (names carry the time they were taken).
    let reachable: Vec<(&str, &str)> = [(share, "share"), (copy, "copy folder")]
        .into_iter()
        .filter(|(f, _)| f.reachable)
        .filter_map(|(f, where_)| Some((f.newest.as_deref()?, where_)))
        .collect();
    let newest = reachable.iter().max_by_key(|(name, _)| *name).copied();
    let newest_path = newest.and_then(|(name, where_)| {
        let folder = if where_ == "share" { share } else { copy };
        folder
            .path
            .as_ref()
            .map(|p| crate::exec::sql_path_join(p, name))
    });
    let header = match &newest_path {
        Some(path) => probe::log_backups_in(session, instance, db, path)
            .await
            .ok()
            .and_then(|sets| sets.into_iter().max_by_key(|b| b.last_lsn)),
        None => None,
    };
    let newest_time = newest.and_then(|(name, _)| backup_time(name));
    let rpo = match (&server_now, newest_time) {
        (Some(now), Some(t)) => server_time(now).map(|now| minutes_between(t, now)),
        _ => None,
    };

    let mut lines = vec!["Data-loss ledger (times from the servers):".to_owned()];
    lines.push(format!(
        "  last log backup restored on `{instance}`: {}",
        match (&last_restored, &last_restored_date) {
            (Some(f), Some(d)) => format!("{} (restored {d}, server time)", file_name(f)),
            (Some(f), None) => file_name(f).to_owned(),
            _ => "(none recorded in msdb)".to_owned(),
        }
    ));
    for (what, f) in [("copy folder", copy), ("backup share", share)] {
        let path = f.path.as_deref().unwrap_or("(unknown)");
        let mut from = match (&f.source, &f.msdb_path) {
            (Some("runbook"), Some(m)) => format!(" (runbook override; msdb records `{m}`)"),
            (Some(source), _) => format!(" ({source})"),
            _ => String::new(),
        };
        if let Some(local) = &f.pcfail_path {
            from.push_str(&format!(", pcfail reaches it as `{local}`"));
        }
        if f.reachable {
            lines.push(format!(
                "  {what} `{path}`{from}: {} log backup(s), newest {}",
                f.log_backups,
                f.newest.as_deref().unwrap_or("none")
            ));
        } else {
            lines.push(format!(
                "  {what} `{path}`{from}: CANNOT BE READ ({})",
                f.error.as_deref().unwrap_or("unknown error")
            ));
        }
    }
    let known = [last_copied.as_deref(), primary_newest.as_deref()]
        .into_iter()
        .flatten()
        .map(file_name)
        .max()
        .map(str::to_owned);
    if let Some(k) = &known {
        let beyond = newest.is_none_or(|(n, _)| k.as_str() > n);
        lines.push(format!(
            "  newest log backup msdb knows of: {k}{}",
            if beyond {
                " (NOT reachable: it and everything after it are lost)"
            } else {
                ""
            }
        ));
    }
    if let Some(h) = &header {
        lines.push(format!(
            "  newest reachable log backup: {} (ends at LSN {}, finished {} server time)",
            newest.map_or("", |(n, _)| n),
            h.last_lsn,
            h.finished
        ));
    }
    let share_lost = share.path.is_some() && !share.reachable;
    let no_loss = tail.is_some();
    if let Some((step, t)) = tail {
        lines.push(format!(
            "  planned failover: step {} (`{}`) backs up the tail of the log of `{db}` WITH NORECOVERY to `{}`, fencing the primary; recovery refuses to run until it is applied.",
            step.number, step.id, t.file
        ));
        lines.push("  NO DATA LOSS EXPECTED once the tail-log backup is applied.".to_owned());
    } else {
        let since = match (newest, newest_time) {
            (Some((name, _)), Some(t)) => format!(
                "after {} UTC (the end of {name}, per its name)",
                t.strftime("%Y-%m-%d %H:%M:%S")
            ),
            (Some((name, _)), None) => format!("after the end of {name}"),
            (None, _) => "since the last log backup restored".to_owned(),
        };
        lines.push(format!(
            "  LOST: every change made on the primary {since}{}.",
            match rpo {
                Some((m, false)) =>
                    format!(": up to {m} minute(s) as of the backup instance's clock (RPO)"),
                Some((_, true)) =>
                    ": 0 minute(s) or more (the servers' clocks disagree with the backup's time)"
                        .to_owned(),
                None => String::new(),
            }
        ));
        if share_lost {
            lines.push(format!(
                "  LOST: log backups in the share `{}` that were not copied yet cannot be copied (the share cannot be read); only the copy folder's are applied.",
                share.path.as_deref().unwrap_or_default()
            ));
        }
    }
    // What the check before step 1 verified (exec::verify_chain), and what failed, by name.
    let verification: Vec<String> = session
        .captured(super::verify_chain::KEY)
        .and_then(|v| v.get("lines"))
        .and_then(|v| v.as_array())
        .map(|lines| {
            lines
                .iter()
                .filter_map(|l| l.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    for line in &verification {
        lines.push(format!("  {line}"));
    }
    Ledger {
        json: json!({
            "verification": verification,
            "database": db,
            "instance": instance,
            "last_restored_file": last_restored,
            "last_restored_date": last_restored_date,
            "share": share.path,
            "share_source": share.source,
            "share_msdb": share.msdb_path,
            "share_reachable": share.reachable,
            "share_newest": share.newest,
            "copy_folder": copy.path,
            "copy_folder_reachable": copy.reachable,
            "copy_folder_newest": copy.newest,
            "newest_known": known,
            "newest_reachable": newest.map(|(n, _)| n),
            "newest_reachable_last_lsn": header.as_ref().map(|h| h.last_lsn.to_string()),
            "newest_reachable_finished": header.as_ref().map(|h| h.finished.clone()),
            "newest_reachable_time_utc": newest_time.map(|t| t.to_string()),
            "server_time_utc": server_now,
            "rpo_minutes_upper_bound": rpo.map(|(m, _)| m),
            "clocks_disagree": rpo.map(|(_, d)| d),
            "planned": no_loss,
            "no_data_loss_expected": no_loss,
        }),
        lines,
    }
}

/// Whole minutes from `from` to `to`, never negative; the flag says the clocks disagreed.
fn minutes_between(from: jiff::Timestamp, to: jiff::Timestamp) -> (i64, bool) {
    let seconds = to.as_second() - from.as_second();
    if seconds < 0 {
        (0, true)
    } else {
        (seconds / 60, false)
    }
}

/// A server `datetime` as the SQL adapter renders it (`YYYY-MM-DD hh:mm:ss.fff`), read as UTC.
fn server_time(text: &str) -> Option<jiff::Timestamp> {
    let text = text.get(..19)?;
    let dt = jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", text).ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

/// The UTC time in a log-shipping backup name: `<db>_<yyyymmddhhmmss>.trn`.
pub(crate) fn backup_time(name: &str) -> Option<jiff::Timestamp> {
    let stem = name
        .strip_suffix(".trn")
        .or_else(|| name.strip_suffix(".TRN"))?;
    let digits = stem.rsplit('_').next()?;
    if digits.len() != 14 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let dt = jiff::civil::DateTime::strptime("%Y%m%d%H%M%S", digits).ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

/// The last component of a Windows or Unix path.
fn file_name(path: &str) -> &str {
    path.rsplit(['\\', '/']).next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_names_carry_their_utc_time() {
        let cases = [
            ("mgc_20261122043000.trn", Some("2026-11-22T04:30:00Z")),
            ("my_db_20260101000001.trn", Some("2026-01-01T00:00:01Z")),
            ("mgc_20261122043000.wrk", None),
            ("mgc_2026112204300.trn", None),
            ("mgc_20261399043000.trn", None),
            ("mgc.trn", None),
            ("mgc_tail.trn", None),
        ];
        for (name, expected) in cases {
            assert_eq!(
                backup_time(name).map(|t| t.to_string()).as_deref(),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn durations_are_never_negative() {
        let t = |s: &str| server_time(s).unwrap();
        let cases = [
            (
                "2026-11-22 04:30:00.000",
                "2026-11-22 04:56:30.500",
                (26, false),
            ),
            (
                "2026-11-22 04:30:00.000",
                "2026-11-22 04:30:00.000",
                (0, false),
            ),
            // The backup's time is after the server's "now": the clocks disagree, not a negative RPO.
            (
                "2026-11-22 04:56:00.000",
                "2026-11-22 04:30:00.000",
                (0, true),
            ),
        ];
        for (from, to, expected) in cases {
            assert_eq!(minutes_between(t(from), t(to)), expected, "{from} -> {to}");
        }
    }

    #[test]
    fn paths_join_with_the_folders_own_separator() {
        assert_eq!(
            crate::exec::sql_path_join(r"\\atl\LogShipping\", "a.trn"),
            r"\\atl\LogShipping\a.trn"
        );
        assert_eq!(
            crate::exec::sql_path_join("/lab/share", "a.trn"),
            "/lab/share/a.trn"
        );
        assert_eq!(
            crate::exec::sql_path_join(r"D:\LogShippingCopy", "a.trn"),
            r"D:\LogShippingCopy\a.trn"
        );
    }
}
