//! The situation of the pool as a whole: one read-only observation of every instance, the share and
//! the shell ([`observe`]), a plain name for what it means with what to do next ([`classify`]), what
//! the state directory says about earlier runs ([`History`]), and whether an operation is called for
//! ([`gate`]). `pcfail status --live`, `pcfail plan --check` and every run start from it, so they
//! cannot disagree.

mod classify;
mod gate;
mod history;
mod observe;
mod render;
#[cfg(test)]
mod testing;

pub(crate) use classify::classify;
pub(crate) use gate::{Gate, Request, gate, with_history};
pub(crate) use history::{History, RunSummary};
pub(crate) use observe::{KnownFolders, Observation, observe};
pub(crate) use render::{Report, report_json, report_text};

use crate::exec::probe::LogShippingSecondary;

/// The log-shipping folders an earlier run captured before removing log shipping, for when msdb no
/// longer has them.
pub(crate) fn known_folders(history: &History, db: &str) -> KnownFolders {
    let captured = history
        .last_captured(&crate::exec::session::log_shipping_key(db))
        .and_then(|(_, v)| serde_json::from_value::<LogShippingSecondary>(v.clone()).ok());
    KnownFolders {
        share: captured.as_ref().map(|c| c.backup_source_directory.clone()),
        copy_folder: captured.map(|c| c.backup_destination_directory),
    }
}
