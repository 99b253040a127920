//! A SQL Server instance of the Persistent Chat topology, named by its role.
//!
//! The runbook names instances by role (`primary`, `primary_mirror`, `backup`, `backup_mirror`), never by
//! host, so steps read the same in every deployment. Passwords are never held here: a SQL login names
//! the environment variable that holds its password, and [`Instance`]'s `Display` is what logs and plans
//! print. Opening connections is the SQL adapter's job, not this module's.

use std::fmt;

use serde::Serialize;

/// The four roles of Microsoft's Persistent Chat HA/DR layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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

    /// The key used in the runbook and in plans.
    pub fn key(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::PrimaryMirror => "primary_mirror",
            Role::Backup => "backup",
            Role::BackupMirror => "backup_mirror",
        }
    }

    pub fn from_key(key: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.key() == key)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// How to reach the instance: a TCP port, or a named instance resolved through SQL Browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Address {
    Port(u16),
    Named(String),
}

/// How pcfail logs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Auth {
    /// Windows integrated authentication as the account running pcfail.
    Integrated,
    /// A SQL login; the password is read from the named environment variable at connect time.
    Sql { user: String, password_env: String },
    /// An explicit Windows account, `DOMAIN\\name` (NTLM); the password comes from the named
    /// environment variable.
    Windows { user: String, password_env: String },
}

/// TDS encryption levels, named as the runbook writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encryption {
    NotSupported,
    Off,
    On,
    Required,
    Strict,
}

impl Encryption {
    pub const KEYS: [&'static str; 5] = ["not_supported", "off", "on", "required", "strict"];

    pub fn from_key(key: &str) -> Option<Encryption> {
        Some(match key {
            "not_supported" => Encryption::NotSupported,
            "off" => Encryption::Off,
            "on" => Encryption::On,
            "required" => Encryption::Required,
            "strict" => Encryption::Strict,
            _ => return None,
        })
    }

    pub fn key(self) -> &'static str {
        Encryption::KEYS[self as usize]
    }
}

/// A database-mirroring endpoint address, `TCP://host:port` (reference E.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MirroringEndpoint {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for MirroringEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TCP://{}:{}", self.host, self.port)
    }
}

/// One SQL Server instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instance {
    pub role: Role,
    pub host: String,
    pub address: Address,
    /// `@@SERVERNAME`, as log shipping records it (`@primary_server`, `@secondary_server`).
    pub server_name: String,
    pub data_center: String,
    pub mirroring_endpoint: Option<MirroringEndpoint>,
    pub auth: Auth,
    pub encryption: Encryption,
    pub trust_server_certificate: bool,
    /// The CA certificate the server's certificate must chain to (instead of the system's store).
    pub ca_file: Option<std::path::PathBuf>,
    /// The name the server's certificate must carry, when it differs from `host`.
    pub certificate_host: Option<String>,
    /// The UDP port of SQL Browser on `host`, for a named instance (1434).
    pub browser_port: u16,
}

/// Redacting by construction: there is no secret to print, only the variable's name.
impl fmt::Display for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.role, self.host)?;
        match &self.address {
            Address::Port(port) => write!(f, ", port {port}")?,
            Address::Named(name) if self.browser_port == 1434 => write!(f, ", instance {name}")?,
            Address::Named(name) => write!(
                f,
                ", instance {name} (SQL Browser on port {})",
                self.browser_port
            )?,
        }
        match &self.auth {
            Auth::Integrated => write!(f, ", integrated authentication")?,
            Auth::Sql { user, password_env } => {
                write!(f, ", SQL login `{user}`, password from ${password_env}")?
            }
            Auth::Windows { user, password_env } => write!(
                f,
                ", Windows account `{user}`, password from ${password_env}"
            )?,
        }
        write!(f, ", encryption {})", self.encryption.key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(auth: Auth, address: Address) -> Instance {
        Instance {
            role: Role::Backup,
            host: "dal-sql-001.litwareinc.com".into(),
            address,
            server_name: "DAL-SQL-001".into(),
            data_center: "DAL".into(),
            mirroring_endpoint: None,
            auth,
            encryption: Encryption::Required,
            trust_server_certificate: false,
            ca_file: None,
            certificate_host: None,
            browser_port: 1434,
        }
    }

    #[test]
    fn connection_settings_print_without_secrets() {
        let cases = [
            (
                instance(Auth::Integrated, Address::Port(1433)),
                "backup (dal-sql-001.litwareinc.com, port 1433, integrated authentication, encryption required)",
            ),
            (
                instance(
                    Auth::Sql {
                        user: "pcfail".into(),
                        password_env: "PCFAIL_SQL_PASSWORD".into(),
                    },
                    Address::Named("PCHAT".into()),
                ),
                "backup (dal-sql-001.litwareinc.com, instance PCHAT, SQL login `pcfail`, password from $PCFAIL_SQL_PASSWORD, encryption required)",
            ),
        ];
        for (instance, expected) in cases {
            assert_eq!(instance.to_string(), expected);
        }
    }

    #[test]
    fn role_and_encryption_keys_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::from_key(role.key()), Some(role));
        }
        for key in Encryption::KEYS {
            assert_eq!(Encryption::from_key(key).map(Encryption::key), Some(key));
        }
    }
}
