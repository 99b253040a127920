//! The lab's shape as the runtime hands it to the engine: the four instances and the log-shipping folders.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The part an instance plays in Microsoft's Persistent Chat HA/DR layout (reference H.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Primary,
    PrimaryMirror,
    Backup,
    BackupMirror,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Primary,
        Role::PrimaryMirror,
        Role::Backup,
        Role::BackupMirror,
    ];

    /// The name used in lab.json and faults.json.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::PrimaryMirror => "primary_mirror",
            Role::Backup => "backup",
            Role::BackupMirror => "backup_mirror",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceConfig {
    pub role: Role,
    /// `@@SERVERNAME`, e.g. `ATL-SQL-001`.
    pub name: String,
    pub fqdn: String,
    pub data_center: String,
    /// The database-mirroring endpoint address, `TCP://fqdn:5022`.
    pub endpoint: String,
    pub mirror_fqdn: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorldConfig {
    pub lab_dir: PathBuf,
    pub instances: Vec<InstanceConfig>,
    pub login_user: String,
    /// Never persisted: `World::restore_runtime` puts it back after loading state.json.
    #[serde(skip)]
    pub login_password: String,
    /// The Windows account (`DOMAIN\\user`, password) the instances accept through NTLM; set by
    /// the runtime at every start, never persisted.
    #[serde(skip)]
    pub windows_login: Option<(String, String)>,
    pub share: PathBuf,
    pub copy_folder: PathBuf,
    pub backups: PathBuf,
    pub backup_every_min: u32,
    pub copy_every_min: u32,
    pub restore_every_min: u32,
    /// The backup's log-shipping secondary restores WITH STANDBY (LabOptions.standby_secondary).
    #[serde(default)]
    pub standby_secondary: bool,
    /// Each instance's SQL Server service runs under an account of its own (logins.rs;
    /// LabOptions.distinct_service_accounts); otherwise all four share one.
    #[serde(default)]
    pub distinct_service_accounts: bool,
    /// Each instance has only its own data directory (`Instance::data_dir`): a RESTORE that would
    /// create a file elsewhere fails unless MOVE relocates it (restore.rs;
    /// LabOptions.data_paths_per_instance). Off: every path is accepted.
    #[serde(default)]
    pub data_paths_per_instance: bool,
    pub chat_messages_per_min: u32,
    /// The Persistent Chat servers (fqdn, data center): only an active one in a data center that is
    /// not lost writes chat records. Set by the runtime on every start from the fixed topology.
    #[serde(default)]
    pub chat_servers: Vec<(String, String)>,
    /// The active servers when cms.json does not exist yet (lab.json's `active_servers`).
    #[serde(default)]
    pub initial_active_servers: Vec<String>,
    /// Windows drive letters and UNC shares mapped onto lab folders; `None` keeps Linux paths only.
    #[serde(default)]
    pub windows: Option<super::WindowsNames>,
    /// The readings of UNVERIFIED behaviour this lab follows (variants.rs).
    #[serde(default)]
    pub variants: super::Variants,
    /// The duration model: a BACKUP or RESTORE moves its bytes at this many MB per lab second
    /// (request.rs). `None`: they take no time unless a fault rule gives them some.
    #[serde(default)]
    pub io_mb_per_s: Option<f64>,
}
