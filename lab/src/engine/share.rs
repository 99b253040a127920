//! Whether the log-shipping share can be reached, and what that means on disk.
//!
//! Two things make the share unreachable: a disaster that takes it with the lost data center (or
//! `Lab::set_share_reachable(false)`), kept in the world and persisted; and a faults.json rule
//! `{ "kind": "share", "unreachable": true }`, which lasts as long as the rule does. Either one is
//! enough (reference J.6: a share in the lost data center is simply gone).
//!
//! The SQL engine asks [`World::share_reachable`] before it opens a path under the share (3201 with
//! OS error 53 or 3, see `paths.rs`). Processes outside the lab (pcfail's copy step) only see the file
//! system, so while the share is unreachable its folder is moved aside to a hidden sibling
//! (`DIR/.share-unreachable`) and listing `DIR/share` fails; it is moved back when the share returns.
//! This module does not decide *when* the share is lost: the runtime and the fault rules do.

use std::path::{Path, PathBuf};

use super::world::World;

impl World {
    /// False while the share is lost with a data center or a fault rule makes it unreachable.
    pub fn share_reachable(&self) -> bool {
        !self.share_lost && !self.rt.share_fault
    }

    /// The share is lost (false) or back (true), as a disaster or `Lab::set_share_reachable` says.
    pub fn set_share_lost(&mut self, lost: bool) {
        self.share_lost = lost;
        self.apply_share_folder();
    }

    /// faults.json's share rule appeared (true) or went away (false).
    pub(crate) fn set_share_fault(&mut self, unreachable: bool) {
        if self.rt.share_fault != unreachable {
            self.rt.share_fault = unreachable;
            self.apply_share_folder();
        }
    }

    /// Moves the share folder aside or back so the file system agrees with [`World::share_reachable`].
    /// Best effort: a world built without its folders (unit tests) has nothing to move.
    pub(crate) fn apply_share_folder(&self) {
        let share = self.config.share.clone();
        let aside = aside_of(&share);
        let result = if self.share_reachable() {
            move_folder(&aside, &share)
        } else {
            move_folder(&share, &aside)
        };
        if let Err(e) = result {
            tracing::warn!(share = %share.display(), error = %e, "could not move the share folder");
        }
    }
}

/// Where an unreachable share's files wait: a hidden sibling, so nothing outside the lab finds them.
fn aside_of(share: &Path) -> PathBuf {
    let name = share
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "share".to_owned());
    share.with_file_name(format!(".{name}-unreachable"))
}

/// Moves `from` to `to`. When both exist (a folder recreated by someone meanwhile), `from`'s files
/// join `to`'s, so nothing written on either side is lost.
fn move_folder(from: &Path, to: &Path) -> std::io::Result<()> {
    if !from.exists() {
        return Ok(());
    }
    if !to.exists() {
        return std::fs::rename(from, to);
    }
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if !target.exists() {
            std::fs::rename(entry.path(), target)?;
        }
    }
    std::fs::remove_dir_all(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_share_folder_is_moved_aside_and_back_with_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let share = dir.path().join("share");
        std::fs::create_dir(&share).unwrap();
        std::fs::write(share.join("mgc_1.trn"), "x").unwrap();
        let aside = aside_of(&share);
        assert_eq!(aside, dir.path().join(".share-unreachable"));

        move_folder(&share, &aside).unwrap();
        assert!(
            std::fs::read_dir(&share).is_err(),
            "listing the share fails"
        );
        // Someone recreates the folder meanwhile and writes into it: both files survive the return.
        std::fs::create_dir(&share).unwrap();
        std::fs::write(share.join("mgc_2.trn"), "y").unwrap();
        move_folder(&aside, &share).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&share)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["mgc_1.trn", "mgc_2.trn"]);
        assert!(!aside.exists());
    }
}
