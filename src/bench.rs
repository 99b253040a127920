//! The one seam the benchmarks (`bench/`) call directly: the copy step's file work on any two
//! folders, for files larger than the lab's log backups. Everything else is measured through the
//! `pcfail` binary against the lab.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use crate::exec::copy::{self, CopyError, Horizon, Verified};

/// What the copy step does to the files when nothing was copied before: examine (the step's
/// check), examine and copy (its run), verify. Returns the number of files copied.
#[doc(hidden)]
pub fn copy_step(from: &Path, to: &Path) -> Result<usize, String> {
    let text = |e: CopyError| e.to_string();
    let horizon = Horizon::everything();
    let mut verified = Verified::default();
    copy::pending(from, to, &horizon, &mut verified).map_err(text)?;
    copy::pending(from, to, &horizon, &mut verified).map_err(text)?;
    let cancel = AtomicBool::new(false);
    let report = copy::copy_missing(from, to, &horizon, &mut verified, |_, _, _| {}, &cancel)
        .map_err(text)?;
    let left = copy::pending(from, to, &horizon, &mut verified).map_err(text)?;
    if !left.is_empty() {
        return Err(format!("{} file(s) differ after the copy", left.len()));
    }
    Ok(report.copied.len() + report.replaced.len())
}
