//! The log chain: which log backups to apply, in which order, and where the chain is broken.
//!
//! Pure logic over backup headers and the database's redo point, so every boundary is table-tested.
//! The rules are SQL Server's own (reference B.5): LastLSN is exclusive (the next backup's FirstLSN),
//! so a backup is already applied when `LastLSN <= redo_start_lsn` (SQL Server would answer 4326), it
//! is the next one when `FirstLSN <= redo_start_lsn < LastLSN`, and there is a gap when the earliest
//! remaining backup has `FirstLSN > redo_start_lsn` (4305). The order comes from the LSNs, never from
//! file names: a name's timestamp is only the time the backup job ran.

use std::fmt;

/// One log backup set as RESTORE HEADERONLY describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LogBackup {
    /// The file as SQL Server opens it.
    pub path: String,
    /// The backup set's position in the file (`FILE = n`).
    pub position: u32,
    pub first_lsn: i128,
    pub last_lsn: i128,
    /// BackupFinishDate as the server rendered it (for the data-loss ledger).
    pub finished: String,
    /// FamilyGUID and FirstRecoveryForkID: which database and which recovery path the set belongs to.
    /// A file of the same name from an earlier chain (a database restored or recovered since) has
    /// other ones, and its RESTORE would fail mid-apply with 4330 (reference B.4, B.5).
    pub family: Option<String>,
    pub first_fork: Option<String>,
    /// HasBackupChecksums: whether RESTORE VERIFYONLY ... WITH CHECKSUM can check it (otherwise
    /// SQL Server refuses WITH CHECKSUM with 3187).
    pub checksums: bool,
}

/// What the chain needs of a backup set: its LSN range and where it lies (file, `FILE = n`). The
/// full header ([`LogBackup`]) is what the checks before step 1 read; the apply step keeps only
/// this much of each pending file (see `exec::headers`), so its memory stays small with the backlog.
pub(crate) trait Link {
    fn file(&self) -> &str;
    fn position(&self) -> u32;
    fn first_lsn(&self) -> i128;
    fn last_lsn(&self) -> i128;
}

impl Link for LogBackup {
    fn file(&self) -> &str {
        &self.path
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

/// What applying needs to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ChainPlan<B> {
    /// Already contained in the database (LastLSN <= redo point): skipped.
    pub already_applied: Vec<B>,
    /// To restore, in this order: every backup that continues the chain, up to a gap if there is one.
    pub to_apply: Vec<B>,
    /// Where the chain breaks after `to_apply`, if it does: nothing past it can be applied.
    pub gap: Option<Gap>,
}

/// The chain is broken: no backup continues from `from`; the earliest one available starts at `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Gap {
    /// The LSN the database needs next (its redo point, or the end of the last backup in the chain).
    pub from: i128,
    /// The FirstLSN of the earliest backup that could follow.
    pub to: i128,
    /// That backup's file.
    pub next_file: String,
    /// How many backups would have applied before the gap.
    pub applicable_before_gap: usize,
}

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the log chain is broken: no log backup covers LSN {} up to {} (the next available, `{}`, begins at LSN {}); put the missing log backup in the copy folder and run the same command again, or accept losing everything after LSN {} by running it again with `--accept-data-loss`",
            self.from, self.to, self.next_file, self.to, self.from
        )
    }
}

/// Builds the apply order from the backups found and the database's redo point. Backup sets of the
/// same LSN range found twice (a file copied under two names) are applied once. A gap ends the
/// order: what comes before it is still applied (it holds changes nobody else has), what comes after
/// it cannot be.
pub(crate) fn plan_chain<B: Link + Clone>(
    mut backups: Vec<B>,
    redo_start_lsn: i128,
) -> ChainPlan<B> {
    // Unstable: the key is total (no two sets share file and position), and it sorts in place.
    backups.sort_unstable_by(|a, b| {
        (a.first_lsn(), a.last_lsn(), a.file(), a.position()).cmp(&(
            b.first_lsn(),
            b.last_lsn(),
            b.file(),
            b.position(),
        ))
    });
    backups.dedup_by(|later, earlier| {
        later.first_lsn() == earlier.first_lsn() && later.last_lsn() == earlier.last_lsn()
    });
    // The order to apply is kept in the list itself (what is skipped is removed in place), so
    // the backlog is never held twice; only the few already applied are copied out.
    let mut already_applied = Vec::new();
    let mut next = redo_start_lsn;
    let mut gap = None;
    let mut applicable = 0;
    backups.retain(|backup| {
        if backup.last_lsn() <= redo_start_lsn {
            already_applied.push(backup.clone());
            return false;
        }
        if gap.is_some() {
            return false;
        }
        if backup.first_lsn() > next {
            gap = Some(Gap {
                from: next,
                to: backup.first_lsn(),
                next_file: backup.file().to_owned(),
                applicable_before_gap: applicable,
            });
            return false;
        }
        if backup.last_lsn() <= next {
            // Entirely inside what an earlier backup of this chain already covers.
            return false;
        }
        next = backup.last_lsn();
        applicable += 1;
        true
    });
    ChainPlan {
        already_applied,
        to_apply: backups,
        gap,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(name: &str, first: i128, last: i128) -> LogBackup {
        LogBackup {
            path: name.to_owned(),
            position: 1,
            first_lsn: first,
            last_lsn: last,
            finished: String::new(),
            family: None,
            first_fork: None,
            checksums: true,
        }
    }

    fn names(list: &[LogBackup]) -> Vec<&str> {
        list.iter().map(|b| b.path.as_str()).collect()
    }

    #[test]
    fn boundaries_follow_sql_servers_rules() {
        // (backups, redo point, already applied, to apply)
        type Case = (Vec<LogBackup>, i128, Vec<&'static str>, Vec<&'static str>);
        let cases: Vec<Case> = vec![
            // LastLSN == redo point: exactly the last one restored (4326 if applied again).
            (
                vec![b("a", 100, 200), b("b", 200, 300)],
                200,
                vec!["a"],
                vec!["b"],
            ),
            // FirstLSN == redo point: the next one.
            (vec![b("b", 200, 300)], 200, vec![], vec!["b"]),
            // redo point strictly inside a backup: it still applies (FirstLSN <= redo < LastLSN).
            (
                vec![b("b", 200, 300), b("c", 300, 400)],
                250,
                vec![],
                vec!["b", "c"],
            ),
            // Order by LSN, not by the order files were found.
            (
                vec![b("c", 300, 400), b("a", 100, 200), b("b", 200, 300)],
                100,
                vec![],
                vec!["a", "b", "c"],
            ),
            // Nothing left to apply.
            (vec![b("a", 100, 200)], 200, vec!["a"], vec![]),
            (vec![], 200, vec![], vec![]),
        ];
        for (backups, redo, applied, apply) in cases {
            let plan = plan_chain(backups, redo);
            assert_eq!(plan.gap, None, "redo {redo}");
            assert_eq!(names(&plan.already_applied), applied, "redo {redo}");
            assert_eq!(names(&plan.to_apply), apply, "redo {redo}");
        }
    }

    #[test]
    fn gap_in_log_chain_stops_before_anything_is_applied_past_it() {
        let plan = plan_chain(
            vec![b("a", 100, 200), b("c", 300, 400), b("d", 400, 500)],
            100,
        );
        assert_eq!(
            names(&plan.to_apply),
            vec!["a"],
            "the prefix before the gap is applied"
        );
        let gap = plan.gap.unwrap();
        assert_eq!(
            gap,
            Gap {
                from: 200,
                to: 300,
                next_file: "c".into(),
                applicable_before_gap: 1
            }
        );
        assert_eq!(
            gap.to_string(),
            "the log chain is broken: no log backup covers LSN 200 up to 300 (the next available, `c`, begins at LSN 300); put the missing log backup in the copy folder and run the same command again, or accept losing everything after LSN 200 by running it again with `--accept-data-loss`"
        );
    }

    #[test]
    fn first_backup_too_recent_is_a_gap_at_the_redo_point() {
        let gap = plan_chain(vec![b("b", 250, 300)], 200).gap.unwrap();
        assert_eq!((gap.from, gap.to, gap.applicable_before_gap), (200, 250, 0));
    }

    #[test]
    fn the_same_backup_under_two_names_is_applied_once() {
        let plan = plan_chain(vec![b("a", 100, 200), b("a-copy", 100, 200)], 100);
        assert_eq!(names(&plan.to_apply), vec!["a"]);
    }
}
