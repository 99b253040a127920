//! The lab's fixed topology: which SQL instances and Persistent Chat servers exist, with their names.
//!
//! One place for the Litware names used in Microsoft's Persistent Chat HA/DR documentation (pool
//! `atl-cs-001.litwareinc.com`, data centers ATL and DAL), so the engine's `WorldConfig` and lab.json
//! can never disagree. Addresses are not here: ports are chosen when the lab binds its listeners.

use std::path::Path;

use crate::engine::{InstanceConfig, Mount, Role, WindowsNames, WorldConfig};

/// The Persistent Chat pool whose state `Set-CsPersistentChatState` flips.
pub const POOL: &str = "atl-cs-001.litwareinc.com";
/// The login every instance accepts (SQL authentication; the password is random per lab).
pub const LOGIN_USER: &str = "sa";
/// Where pcfail's runbook tells it to look for the password: it never lives in the runbook itself.
pub const PASSWORD_ENV: &str = "PCFAIL_LAB_PASSWORD";
/// The instance name of every lab instance: each host runs one named instance, found through its
/// SQL Browser.
pub const INSTANCE_NAME: &str = "PCHAT";
/// The Windows domain the lab's hosts are joined to (NetBIOS name).
pub const DOMAIN: &str = "LITWAREINC";
/// The domain account every instance accepts through Windows authentication (a sysadmin, as the
/// account running a failover must be); its password is random per lab.
pub const WINDOWS_USER: &str = "LITWAREINC\\pcfail-admin";
/// Where pcfail's runbook reads the Windows account's password from.
pub const WINDOWS_PASSWORD_ENV: &str = "PCFAIL_LAB_WINDOWS_PASSWORD";
/// Chat messages the simulated Persistent Chat servers write into the active `mgc` per lab minute.
pub const CHAT_MESSAGES_PER_MIN: u32 = 6;

/// One SQL instance of the topology, minus its address.
pub(crate) struct InstanceSpec {
    pub role: Role,
    pub name: &'static str,
    pub data_center: &'static str,
    /// The instance the topology pairs with this one as its mirror (Topology Builder's "mirror SQL store").
    pub mirror: Option<Role>,
}

pub(crate) const INSTANCES: [InstanceSpec; 4] = [
    InstanceSpec {
        role: Role::Primary,
        name: "ATL-SQL-001",
        data_center: "ATL",
        mirror: Some(Role::PrimaryMirror),
    },
    InstanceSpec {
        role: Role::PrimaryMirror,
        name: "ATL-SQL-002",
        data_center: "ATL",
        mirror: None,
    },
    InstanceSpec {
        role: Role::Backup,
        name: "DAL-SQL-001",
        data_center: "DAL",
        mirror: Some(Role::BackupMirror),
    },
    InstanceSpec {
        role: Role::BackupMirror,
        name: "DAL-SQL-002",
        data_center: "DAL",
        mirror: None,
    },
];

/// Persistent Chat front ends: two per data center; the primary data center's are active at first.
pub const PERSISTENT_CHAT_SERVERS: [(&str, &str); 4] = [
    ("atl-pc-001.litwareinc.com", "ATL"),
    ("atl-pc-002.litwareinc.com", "ATL"),
    ("dal-pc-001.litwareinc.com", "DAL"),
    ("dal-pc-002.litwareinc.com", "DAL"),
];

/// Front End servers, one per data center, each able to run the Central Management Server's master
/// (Get-CsManagementStoreReplicationStatus -CentralManagementStoreStatus names it `ActiveMasterFqdn`).
/// The lab's Central Management Store starts in the backup data center (DAL), so that losing ATL, the
/// lab's usual disaster, leaves it reachable; a test puts it in ATL through cms.json (docs/lab.md).
pub const FRONT_END_SERVERS: [(&str, &str); 2] = [
    ("atl-fe-001.litwareinc.com", "ATL"),
    ("dal-fe-001.litwareinc.com", "DAL"),
];

/// The `mgc` database mirroring endpoint port; 5022 is the SSMS wizard's customary default (reference E.1).
const MIRRORING_PORT: u16 = 5022;

impl InstanceSpec {
    pub fn fqdn(&self) -> String {
        fqdn_of(self.name)
    }

    pub fn endpoint(&self) -> String {
        format!("TCP://{}:{MIRRORING_PORT}", self.fqdn())
    }

    pub fn mirror_fqdn(&self) -> Option<String> {
        self.mirror.map(|role| spec(role).fqdn())
    }
}

fn fqdn_of(name: &str) -> String {
    format!("{}.litwareinc.com", name.to_ascii_lowercase())
}

pub(crate) fn spec(role: Role) -> &'static InstanceSpec {
    INSTANCES
        .iter()
        .find(|s| s.role == role)
        .expect("every role is in the topology")
}

/// Parses a role as lab.json and the CLI spell it (`primary`, `primary_mirror`, `backup`, `backup_mirror`).
pub fn parse_role(text: &str) -> Option<Role> {
    Role::ALL.into_iter().find(|role| role.as_str() == text)
}

/// The engine's view of this topology, with the lab directory's folders and the schedule.
pub(crate) fn world_config(
    dir: &Path,
    password: &str,
    backup_every_min: u32,
    copy_every_min: u32,
    restore_every_min: u32,
    windows_paths: bool,
) -> WorldConfig {
    let instances = INSTANCES
        .iter()
        .map(|s| InstanceConfig {
            role: s.role,
            name: s.name.to_owned(),
            fqdn: s.fqdn(),
            data_center: s.data_center.to_owned(),
            endpoint: s.endpoint(),
            mirror_fqdn: s.mirror_fqdn(),
        })
        .collect();
    WorldConfig {
        lab_dir: dir.to_path_buf(),
        instances,
        login_user: LOGIN_USER.to_owned(),
        login_password: password.to_owned(),
        windows_login: None,
        share: dir.join("share"),
        copy_folder: dir.join("backup-copy"),
        backups: dir.join("backups"),
        backup_every_min,
        copy_every_min,
        restore_every_min,
        standby_secondary: false,
        distinct_service_accounts: false,
        data_paths_per_instance: false,
        chat_messages_per_min: CHAT_MESSAGES_PER_MIN,
        chat_servers: chat_servers(),
        initial_active_servers: initial_active_servers(),
        windows: windows_paths.then(|| windows_names(dir)),
        variants: Default::default(),
        io_mb_per_s: None,
    }
}

/// The Windows names of a lab run with Windows paths, mapped onto its folders (docs/lab.md): the
/// log-shipping share `\\atl-sql-001\LogShipping` (the primary's `D:\LogShipping`, DIR/share),
/// the full-backup share `\\dal-sql-001\Backups` (DIR/backups), the backup instance's copy folder
/// `D:\LogShippingCopy` (DIR/backup-copy), and every instance's `C:\` and `D:\` drives
/// (DIR/hosts/<host>/C and D).
pub(crate) fn windows_names(dir: &Path) -> WindowsNames {
    let host = |role: Role| spec(role).name.to_ascii_lowercase();
    let share = format!("\\\\{}\\LogShipping", host(Role::Primary));
    let backups = format!("\\\\{}\\Backups", host(Role::Backup));
    let mut mounts = vec![
        Mount {
            instance: None,
            windows: share.clone(),
            lab: dir.join("share"),
        },
        Mount {
            instance: None,
            windows: backups.clone(),
            lab: dir.join("backups"),
        },
        Mount {
            instance: Some(Role::Primary),
            windows: "D:\\LogShipping".to_owned(),
            lab: dir.join("share"),
        },
        Mount {
            instance: Some(Role::Backup),
            windows: "D:\\LogShippingCopy".to_owned(),
            lab: dir.join("backup-copy"),
        },
    ];
    for s in &INSTANCES {
        for drive in ["C", "D"] {
            mounts.push(Mount {
                instance: Some(s.role),
                windows: format!("{drive}:\\"),
                lab: dir.join("hosts").join(host(s.role)).join(drive),
            });
        }
    }
    WindowsNames {
        mounts,
        share,
        share_local: "D:\\LogShipping".to_owned(),
        copy_folder: "D:\\LogShippingCopy".to_owned(),
        backups,
    }
}

/// The Persistent Chat servers as the engine sees them: (fqdn, data center).
pub(crate) fn chat_servers() -> Vec<(String, String)> {
    PERSISTENT_CHAT_SERVERS
        .iter()
        .map(|(fqdn, dc)| ((*fqdn).to_owned(), (*dc).to_owned()))
        .collect()
}

/// The servers active when a lab is new: those in the primary's data center (lab.json `active_servers`).
pub(crate) fn initial_active_servers() -> Vec<String> {
    let primary_dc = spec(Role::Primary).data_center;
    PERSISTENT_CHAT_SERVERS
        .iter()
        .filter(|(_, dc)| *dc == primary_dc)
        .map(|(fqdn, _)| (*fqdn).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_documented_layout() {
        let cases = [
            (
                Role::Primary,
                "atl-sql-001.litwareinc.com",
                "TCP://atl-sql-001.litwareinc.com:5022",
                Some("atl-sql-002.litwareinc.com"),
            ),
            (
                Role::PrimaryMirror,
                "atl-sql-002.litwareinc.com",
                "TCP://atl-sql-002.litwareinc.com:5022",
                None,
            ),
            (
                Role::Backup,
                "dal-sql-001.litwareinc.com",
                "TCP://dal-sql-001.litwareinc.com:5022",
                Some("dal-sql-002.litwareinc.com"),
            ),
            (
                Role::BackupMirror,
                "dal-sql-002.litwareinc.com",
                "TCP://dal-sql-002.litwareinc.com:5022",
                None,
            ),
        ];
        for (role, fqdn, endpoint, mirror) in cases {
            let s = spec(role);
            assert_eq!(s.fqdn(), fqdn);
            assert_eq!(s.endpoint(), endpoint);
            assert_eq!(s.mirror_fqdn().as_deref(), mirror);
        }
    }

    #[test]
    fn role_names_round_trip_and_match_serde() {
        for role in Role::ALL {
            assert_eq!(parse_role(role.as_str()), Some(role));
            assert_eq!(
                serde_json::to_value(role).unwrap(),
                serde_json::json!(role.as_str())
            );
        }
        assert_eq!(parse_role("Primary"), None);
    }
}
