//! [`Cms`]: the shell's Central Management Store, `<lab dir>/cms.json` (format in docs/lab.md).
//!
//! Created from lab.json on first use; re-read for every request because `pcfail lab status` and
//! other shells may read or write it concurrently; written atomically (a temporary file in the same
//! directory, then a rename) so a reader never sees half a file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::manifest::LabManifest;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Cms {
    pub pool: String,
    /// `Normal` or `FailedOver`.
    pub pool_state: String,
    pub active_servers: Vec<String>,
    /// Where the Central Management Server's master runs; absent in a cms.json written before the
    /// lab modelled it, and then filled from lab.json's Front End servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<Master>,
}

/// The Central Management Server's master (reference J.2): the Front End server running it, its data
/// center, and when the store last changed, for the replication status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Master {
    /// `ActiveMasterFqdn`.
    pub fqdn: String,
    pub data_center: String,
    /// When a cmdlet last wrote the store (ms since the Unix epoch).
    #[serde(default)]
    pub changed_ms: i64,
    /// How long the replicas take to pick up a change (ms); 0 by default, a test raises it.
    #[serde(default)]
    pub replication_ms: i64,
}

impl Master {
    /// The lab's starting point: the Front End server of the backup data center (docs/lab.md).
    pub(crate) fn initial(manifest: &LabManifest) -> Option<Master> {
        let dc = manifest.instance_by_role("backup")?.data_center.clone()?;
        let fe = manifest
            .front_end_servers
            .iter()
            .find(|f| f.data_center.eq_ignore_ascii_case(&dc))?;
        Some(Master {
            fqdn: fe.fqdn.clone(),
            data_center: fe.data_center.clone(),
            changed_ms: 0,
            replication_ms: 0,
        })
    }
}

/// Now, in ms since the Unix epoch, for the replication status.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Debug, Error)]
pub(crate) enum CmsError {
    #[error("cannot read the CMS store `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the CMS store `{path}` is not valid: {source}")]
    Invalid {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write the CMS store `{path}`: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Cms {
    fn path(lab_dir: &Path) -> PathBuf {
        lab_dir.join("cms.json")
    }

    /// Reads cms.json, or the initial state from lab.json when it does not exist yet (and writes it).
    pub(crate) fn load(lab_dir: &Path, manifest: &LabManifest) -> Result<Self, CmsError> {
        let path = Self::path(lab_dir);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let mut cms: Cms = serde_json::from_slice(&bytes)
                    .map_err(|source| CmsError::Invalid { path, source })?;
                if cms.master.is_none() {
                    cms.master = Master::initial(manifest);
                }
                Ok(cms)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let cms = Cms {
                    pool: manifest.pool.clone(),
                    pool_state: "Normal".to_owned(),
                    active_servers: manifest.active_servers.clone(),
                    master: Master::initial(manifest),
                };
                cms.save(lab_dir)?;
                Ok(cms)
            }
            Err(source) => Err(CmsError::Read { path, source }),
        }
    }

    pub(crate) fn save(&self, lab_dir: &Path) -> Result<(), CmsError> {
        let path = Self::path(lab_dir);
        let mut bytes = serde_json::to_vec_pretty(self).expect("the CMS state always serializes");
        bytes.push(b'\n');
        write_atomically(&path, &bytes).map_err(|source| CmsError::Write { path, source })
    }
}

/// Writes `bytes` to a sibling temporary file, then renames it over `path` (tempfile's `persist`,
/// which replaces an existing file on Windows too).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temporary = tempfile::Builder::new().prefix(".").tempfile_in(dir)?;
    temporary.write_all(bytes)?;
    temporary.persist(path).map_err(|e| e.error)?;
    Ok(())
}
