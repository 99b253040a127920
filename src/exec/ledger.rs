//! The data-loss ledger shown before the point of no return: what is in hand, what is lost.
//!
//! For a failover it says which log backup msdb last restored, the newest log backup the share holds,
//! and the time from that newest backup to now: everything the primary wrote after it is lost (the
//! RPO, measured to the moment of the decision since the moment of the disaster is not known). The
//! time of a backup comes from its file name, `<db>_<yyyymmddhhmmss>.trn` in UTC (reference A.4;
//! UTC is UNVERIFIED, so the ledger says "per its name"). For a fail-back it says what is overwritten.

use std::path::PathBuf;

use super::copy;
use super::session::Session;
use crate::action::Action;
use crate::plan::Plan;

pub(crate) struct Ledger {
    lines: Vec<String>,
    json: serde_json::Value,
}

impl Ledger {
    pub(crate) fn render(&self) -> String {
        self.lines.join("\n")
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        self.json.clone()
    }
}

pub(crate) async fn build(plan: &Plan, session: &mut Session<'_>) -> Ledger {
    let copy_step = plan.steps.iter().find_map(|s| match &s.action {
        Action::CopyLogBackups(c) => Some(c),
        _ => None,
    });
    let Some(copy_step) = copy_step else {
        let restore = plan.steps.iter().find_map(|s| match &s.action {
            Action::RestoreDatabase(r) => Some(r),
            _ => None,
        });
        let line = match restore {
            Some(r) => format!(
                "Data-loss ledger: `{}` on `{}` will be replaced by the backup `{}`; anything only the {} copy holds is lost.",
                r.database, r.instance, r.file, r.instance
            ),
            None => "Data-loss ledger: this procedure applies no log backups.".to_owned(),
        };
        return Ledger {
            json: serde_json::json!({ "summary": line }),
            lines: vec![line],
        };
    };
    let captured = session.captured_log_shipping(&copy_step.database);
    let share = copy_step
        .share
        .clone()
        .or_else(|| captured.as_ref().map(|c| c.backup_source_directory.clone()));
    let last_restored = captured.as_ref().and_then(|c| c.last_restored_file.clone());
    let newest = share.as_ref().and_then(|share| {
        copy::list_log_backups(&PathBuf::from(share))
            .ok()
            .and_then(|(names, _)| names.into_iter().max_by_key(|n| backup_time(n)))
    });
    let now = jiff::Timestamp::now();
    let newest_time = newest.as_deref().and_then(backup_time);
    let rpo_minutes = newest_time.map(|t| (now.as_second() - t.as_second()) / 60);
    let mut lines = vec!["Data-loss ledger:".to_owned()];
    lines.push(format!(
        "  last log backup restored by log shipping: {}",
        last_restored
            .as_deref()
            .unwrap_or("(none recorded in msdb)")
    ));
    match (&newest, newest_time) {
        (Some(name), Some(t)) => lines.push(format!(
            "  newest log backup in the share: {name} (taken {} UTC per its name); every earlier backup is applied before recovery",
            t.strftime("%Y-%m-%d %H:%M:%S")
        )),
        (Some(name), None) => lines.push(format!("  newest log backup in the share: {name}")),
        (None, _) => lines.push("  newest log backup in the share: none found".to_owned()),
    }
    if let Some(minutes) = rpo_minutes {
        lines.push(format!(
            "  data written to the primary after that backup is lost: up to {minutes} minute(s) as of now (RPO)"
        ));
    }
    Ledger {
        json: serde_json::json!({
            "last_restored_file": last_restored,
            "newest_backup": newest,
            "newest_backup_time_utc": newest_time.map(|t| t.to_string()),
            "rpo_minutes_upper_bound": rpo_minutes,
        }),
        lines,
    }
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
        ];
        for (name, expected) in cases {
            assert_eq!(
                backup_time(name).map(|t| t.to_string()).as_deref(),
                expected,
                "{name}"
            );
        }
    }
}
