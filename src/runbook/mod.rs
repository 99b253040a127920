//! The runbook: a TOML file that describes one Persistent Chat pool's topology and its failover and
//! fail-back steps, loaded into a validated model.
//!
//! [`load`] reads the file, parses it with `toml`'s recoverable parser (so a syntax error does not hide
//! the other problems), walks the spanned tree with a typed reader, and returns either a [`Runbook`]
//! whose every name, host, duration and reference has been checked, or every problem at once as
//! `path:line:column: error: message` lines. It does not decide what runs: that is `plan`'s job.
//! The file format is documented in docs/runbook.md.

mod check;
mod diagnostic;
mod encoding;
mod instance;
mod parse;
mod reader;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use crate::action::Action;

pub use diagnostic::Diagnostic;
pub use instance::{Address, Auth, Encryption, Instance, MirroringEndpoint, Role};
pub(crate) use parse::StepReader;
pub(crate) use reader::{Located, with_suggestion};

/// The PowerShell module that provides the Cs* cmdlets (reference H.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Module {
    SkypeForBusiness,
    Lync,
}

impl Module {
    /// The name `Import-Module` takes.
    pub fn name(self) -> &'static str {
        match self {
            Module::SkypeForBusiness => "SkypeForBusiness",
            Module::Lync => "Lync",
        }
    }
}

/// How to start the Management Shell host (docs/powershell-host-protocol.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PowerShell {
    pub program: String,
    pub module: Module,
    /// Arguments placed before the standard `-NoProfile -NonInteractive ...` ones.
    pub args: Vec<String>,
    /// Run every cmdlet on another computer through PowerShell remoting (`[powershell.remote]`).
    pub remote: Option<Remote>,
}

/// A PowerShell remoting session (WinRM) the host opens before its first cmdlet, so pcfail can run
/// where the copy folder is (the backup SQL Server) while the cmdlets run on a Front End, where the
/// SkypeForBusiness module is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// `New-PSSession -ComputerName`.
    pub computer: String,
    pub authentication: RemoteAuthentication,
    /// HTTPS (WinRM's 5986) instead of HTTP (5985, encrypted by Kerberos or NTLM itself).
    pub use_ssl: bool,
    pub port: Option<u16>,
    /// The session configuration (endpoint) on the remote computer; `None`: Microsoft.PowerShell.
    pub configuration_name: Option<String>,
    /// An explicit account; `None`: the operator's own Windows logon.
    pub credential: Option<RemoteCredential>,
}

/// The account a remote session logs on as. The password is read by the host from the variable,
/// never passed on a command line or in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCredential {
    /// `DOMAIN\name`.
    pub user: String,
    pub password_env: String,
}

/// `New-PSSession -Authentication`: the values of PowerShell's `AuthenticationMechanism` that make
/// sense against a domain-joined Front End. `Basic` and `Digest` are refused (Basic sends the
/// password in the clear over HTTP; neither is enabled on a default WinRM service).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteAuthentication {
    Default,
    Kerberos,
    Negotiate,
    CredSsp,
}

impl RemoteAuthentication {
    /// The name PowerShell's `AuthenticationMechanism` enumeration gives it.
    pub fn name(self) -> &'static str {
        match self {
            RemoteAuthentication::Default => "Default",
            RemoteAuthentication::Kerberos => "Kerberos",
            RemoteAuthentication::Negotiate => "Negotiate",
            RemoteAuthentication::CredSsp => "Credssp",
        }
    }
}

/// The Persistent Chat pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub fqdn: String,
    /// The `-Identity` passed to Set-CsPersistentChatState, e.g. `service:atl-cs-001.litwareinc.com`.
    pub identity: String,
}

/// A Persistent Chat server and the data center it stands in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatServer {
    pub fqdn: String,
    pub data_center: String,
}

/// `[central_management_store]`: where the Central Management Server's master can run, so that a
/// failover can tell whether it is in the data center the pool leaves (reference J.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagementStore {
    /// The Front End servers that can run the master, by data center.
    pub servers: Vec<ChatServer>,
    /// The SQL Server holding the store's backup (Topology Builder), for
    /// `Invoke-CsManagementServerFailover -BackupSqlServerFqdn`.
    pub backup_sql_server: Option<String>,
}

impl ManagementStore {
    /// The data center of the master `fqdn`, as the runbook declares it.
    pub fn data_center_of(&self, fqdn: &str) -> Option<&str> {
        self.servers
            .iter()
            .find(|s| s.fqdn.eq_ignore_ascii_case(fqdn.trim()))
            .map(|s| s.data_center.as_str())
    }
}

/// Folders that log shipping uses: overrides of what msdb records (as SQL Server names them), and
/// where pcfail reaches them when the machine it runs on names them otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogShippingOverrides {
    /// The backup share as SQL Server names it (`backup_source_directory`).
    pub share: Option<String>,
    /// The copy folder as the backup instance names it (`backup_destination_directory`), the path
    /// RESTORE reads from.
    pub copy_folder: Option<String>,
    /// Where pcfail reads the share; default: the name SQL Server uses.
    pub pcfail_share: Option<String>,
    /// Where pcfail reaches the copy folder; default: the name SQL Server uses.
    pub pcfail_copy_folder: Option<String>,
}

impl LogShippingOverrides {
    /// The share as pcfail reaches it, given the name SQL Server uses.
    pub fn share_for_pcfail(&self, sql_server: &str) -> PathBuf {
        PathBuf::from(self.pcfail_share.as_deref().unwrap_or(sql_server))
    }

    /// The copy folder as pcfail reaches it, given the name SQL Server uses.
    pub fn copy_folder_for_pcfail(&self, sql_server: &str) -> PathBuf {
        PathBuf::from(self.pcfail_copy_folder.as_deref().unwrap_or(sql_server))
    }
}

/// How long pcfail waits on a server outside a step's own timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunbookTimeouts {
    /// TCP connect and login together: how long a lost data center can keep pcfail waiting.
    pub connect: Duration,
    /// The read-only queries that check state.
    pub query: Duration,
}

impl Default for RunbookTimeouts {
    fn default() -> RunbookTimeouts {
        RunbookTimeouts {
            connect: Duration::from_secs(15),
            query: Duration::from_secs(60),
        }
    }
}

/// Which procedure: the two of Microsoft's runbook, and the planned (zero data loss) failover that
/// runs the runbook's `[planned_failover]` steps before the failover's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Failover,
    PlannedFailover,
    Failback,
}

impl Operation {
    /// The key in journals and JSON.
    pub fn key(self) -> &'static str {
        match self {
            Operation::Failover => "failover",
            Operation::PlannedFailover => "planned_failover",
            Operation::Failback => "failback",
        }
    }

    pub fn from_key(key: &str) -> Option<Operation> {
        [
            Operation::Failover,
            Operation::PlannedFailover,
            Operation::Failback,
        ]
        .into_iter()
        .find(|o| o.key() == key)
    }

    /// Where the operation moves the pool: a planned failover moves it the same way as a failover.
    pub fn direction(self) -> Operation {
        match self {
            Operation::PlannedFailover => Operation::Failover,
            other => other,
        }
    }

    /// For sentences: "failover", "planned failover", "fail-back".
    pub fn describe(self) -> &'static str {
        match self {
            Operation::Failover => "failover",
            Operation::PlannedFailover => "planned failover",
            Operation::Failback => "fail-back",
        }
    }
}

/// One step as the runbook declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub id: String,
    pub description: String,
    pub action: Action,
    /// `None` means the action's default; a pause has no timeout at all.
    pub timeout: Option<Duration>,
    /// Ask the operator before running this step.
    pub confirm: bool,
}

/// A procedure: its steps in order and the notes the operator must read first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Procedure {
    pub notes: Vec<String>,
    pub steps: Vec<Step>,
}

/// A validated runbook.
#[derive(Debug, Clone, PartialEq)]
pub struct Runbook {
    pub path: PathBuf,
    pub pool: Pool,
    pub powershell: PowerShell,
    /// The Persistent Chat store (`mgc`) and compliance (`mgccomp`) database names.
    pub chat_database: String,
    pub compliance_database: String,
    pub instances: BTreeMap<Role, Instance>,
    pub timeouts: RunbookTimeouts,
    pub log_shipping: LogShippingOverrides,
    /// `None`: the runbook does not say where the CMS master can run, so its location is not checked.
    pub management_store: Option<ManagementStore>,
    pub chat_servers: Vec<ChatServer>,
    pub active_after_failover: Vec<String>,
    pub active_after_failback: Vec<String>,
    pub failover: Procedure,
    /// Steps that run before the failover's when the primary is reachable (`failover --planned`).
    pub planned_failover: Option<Procedure>,
    pub failback: Procedure,
    /// Settings this build or platform cannot carry out (e.g. `auth = "integrated"` on Linux
    /// without Kerberos), located: `validate` and every command that connects refuse them.
    pub unsupported: Vec<Diagnostic>,
}

impl Runbook {
    /// `Err` with the located settings this build cannot carry out, if there are any.
    pub fn require_supported(&self) -> Result<(), LoadError> {
        if self.unsupported.is_empty() {
            Ok(())
        } else {
            Err(LoadError::Invalid {
                diagnostics: self.unsupported.clone(),
            })
        }
    }

    /// The steps of `operation`, in order, with the notes to read first. A planned failover is the
    /// `[planned_failover]` steps followed by the failover's; None when the runbook has no such steps.
    pub fn procedure(&self, operation: Operation) -> Option<Procedure> {
        match operation {
            Operation::Failover => Some(self.failover.clone()),
            Operation::Failback => Some(self.failback.clone()),
            Operation::PlannedFailover => {
                let planned = self.planned_failover.as_ref()?;
                Some(Procedure {
                    notes: planned
                        .notes
                        .iter()
                        .chain(&self.failover.notes)
                        .cloned()
                        .collect(),
                    steps: planned
                        .steps
                        .iter()
                        .chain(&self.failover.steps)
                        .cloned()
                        .collect(),
                })
            }
        }
    }
}

/// Why a runbook could not be loaded.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("runbook `{path}` not found")]
    NotFound { path: PathBuf },
    #[error("cannot read runbook `{path}`: permission denied")]
    PermissionDenied { path: PathBuf },
    #[error("cannot read runbook `{path}`: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Every problem found, in file order.
    #[error("{}", render_diagnostics(.diagnostics))]
    Invalid { diagnostics: Vec<Diagnostic> },
}

fn render_diagnostics(diagnostics: &[Diagnostic]) -> String {
    let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

/// Reads and validates the runbook at `path`.
pub fn load(path: &Path) -> Result<Runbook, LoadError> {
    let text = read_text(path)?;
    parse::parse(path, &text).map_err(|diagnostics| LoadError::Invalid { diagnostics })
}

/// The runbook file's text, decoded by its byte-order mark (UTF-8 without one; `encoding.rs`).
pub(crate) fn read_text(path: &Path) -> Result<String, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => LoadError::NotFound {
            path: path.to_owned(),
        },
        std::io::ErrorKind::PermissionDenied => LoadError::PermissionDenied {
            path: path.to_owned(),
        },
        _ => LoadError::Io {
            path: path.to_owned(),
            source,
        },
    })?;
    encoding::decode(&path.display().to_string(), &bytes).map_err(|diagnostic| LoadError::Invalid {
        diagnostics: vec![diagnostic],
    })
}

/// Validates runbook text; `path` is used for messages and recorded in the model.
pub fn parse_str(path: &Path, text: &str) -> Result<Runbook, LoadError> {
    parse::parse(path, text).map_err(|diagnostics| LoadError::Invalid { diagnostics })
}
