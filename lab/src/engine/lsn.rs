//! Log sequence numbers shaped like SQL Server's: `numeric(25,0)` values such as `34000000016800001`,
//! i.e. VLF sequence number * 10^15 + log block offset * 10^5 + slot. They only grow.
//!
//! This module also holds the one rule that decides whether a log backup can be applied (reference B.5),
//! because both RESTORE LOG and the log-shipping restore job depend on it.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) struct Lsn(pub i128);

const VLF: i128 = 1_000_000_000_000_000;
const BLOCK: i128 = 100_000;
/// Blocks per virtual log file before the log moves on to the next VLF.
const BLOCKS_PER_VLF: i128 = 40_000;

impl Lsn {
    /// Where a freshly created database's log starts.
    pub(crate) fn initial(vlf: i128) -> Lsn {
        Lsn(vlf * VLF + 16 * BLOCK + 1)
    }

    /// The LSN after one more log record: a record of `size` bytes advances the block offset by
    /// size/512 rounded up, like the log writer's 512-byte sectors.
    pub(crate) fn advance(self, size: usize) -> Lsn {
        let vlf = self.0 / VLF;
        let block = (self.0 % VLF) / BLOCK;
        let blocks = ((size as i128 + 511) / 512).max(1);
        let mut next_block = block + blocks;
        let mut next_vlf = vlf;
        if next_block >= BLOCKS_PER_VLF {
            next_vlf += 1;
            next_block = 16;
        }
        Lsn(next_vlf * VLF + next_block * BLOCK + 1)
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What RESTORE LOG decides for a log backup [first, last) against the database's redo point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogFit {
    /// `last <= redo`: already applied (4326).
    TooEarly,
    /// `first > redo`: a log backup is missing (4305).
    TooRecent,
    /// `first <= redo < last`.
    Applies,
}

pub(crate) fn log_fit(first: Lsn, last: Lsn, redo: Lsn) -> LogFit {
    if last <= redo {
        LogFit::TooEarly
    } else if first > redo {
        LogFit::TooRecent
    } else {
        LogFit::Applies
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_fit_follows_the_reference_boundaries() {
        let redo = Lsn(34_000_000_016_800_001);
        let cases = [
            // (first, last, expected)
            (Lsn(33_000_000_000_100_001), redo, LogFit::TooEarly), // last == redo: the file just restored
            (
                Lsn(33_000_000_000_100_001),
                Lsn(redo.0 - 1),
                LogFit::TooEarly,
            ),
            (redo, Lsn(redo.0 + 100_000), LogFit::Applies), // first == redo
            (Lsn(redo.0 - 100_000), Lsn(redo.0 + 1), LogFit::Applies),
            (Lsn(redo.0 + 1), Lsn(redo.0 + 100_000), LogFit::TooRecent),
        ];
        for (first, last, expected) in cases {
            assert_eq!(
                log_fit(first, last, redo),
                expected,
                "first {first} last {last}"
            );
        }
    }

    #[test]
    fn lsns_only_grow_and_look_like_sql_servers() {
        let mut lsn = Lsn::initial(34);
        assert_eq!(lsn.to_string(), "34000000001600001");
        for size in [1, 100, 513, 70_000, 5_000_000] {
            let next = lsn.advance(size);
            assert!(next > lsn, "{next} after {lsn}");
            assert_eq!(next.0 % 100_000, 1, "slot 1 in {next}");
            lsn = next;
        }
    }
}
