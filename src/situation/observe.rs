//! One read-only look at the whole pool: every SQL instance of the runbook (reachable or not, within a
//! bounded connect timeout, all at once so a lost data center costs one timeout, not one per
//! instance), the chat and compliance databases on each, log shipping on each side, the backup share
//! and the copy folder as the pcfail host sees them, and the pool state from the Management Shell.
//!
//! Nothing here changes anything: only SELECT-shaped queries, a directory listing and a Get- cmdlet.
//! What the observation means is `classify`'s job.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::exec::copy;
use crate::exec::probe::{self, DbView, LogShippingPrimary, LogShippingSecondary};
use crate::exec::{Session, Timeouts};
use crate::powershell::HostSettings;
use crate::quote;
use crate::runbook::{Role, Runbook};

/// The whole pool at one moment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Observation {
    pub pool: String,
    pub chat_database: String,
    pub compliance_database: String,
    pub instances: Vec<InstanceView>,
    pub share: FolderView,
    pub copy_folder: FolderView,
    pub shell: ShellView,
}

/// One SQL Server instance as it answered (or did not).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct InstanceView {
    pub role: Role,
    pub host: String,
    pub data_center: String,
    pub reachable: bool,
    /// Why it could not be asked (connect timeout, refused, login failed, a query failed).
    pub error: Option<String>,
    /// `configuration` when pcfail's own settings kept it from asking (a password variable not set,
    /// a setting this build cannot do): not an outage, and not to be taken for one.
    pub cause: Option<&'static str>,
    pub server_name: Option<String>,
    /// `GETUTCDATE()` on the instance when it was asked.
    pub server_time_utc: Option<String>,
    pub databases: Vec<DatabaseEntry>,
    pub log_shipping_secondary: Option<LogShippingSecondary>,
    pub log_shipping_primary: Option<LogShippingPrimary>,
}

/// A database by name: `view` is None when the instance has no database of that name.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct DatabaseEntry {
    pub name: String,
    pub exists: bool,
    #[serde(flatten)]
    pub view: Option<DbView>,
}

/// A folder log shipping uses, as the pcfail host sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct FolderView {
    /// None when no source names it (no override, no msdb row, no journal).
    pub path: Option<String>,
    /// Where the path came from: `runbook`, `msdb` or `journal` (captured by an earlier run).
    pub source: Option<&'static str>,
    /// What msdb records, when an override differs from it (shown side by side).
    pub msdb_path: Option<String>,
    /// Where pcfail reaches the folder when the runbook says it differs from `path`, the name SQL
    /// Server uses (`pcfail_share`, `pcfail_copy_folder`); the listing below is of this one.
    pub pcfail_path: Option<String>,
    pub reachable: bool,
    pub error: Option<String>,
    /// Finished log backups (`.trn`) in the folder, and the newest by name.
    pub log_backups: usize,
    pub newest: Option<String>,
}

/// The Management Shell's view of the pool.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct ShellView {
    pub identity: String,
    pub reachable: bool,
    /// `Normal` or `FailedOver`, as Get-CsPersistentChatState reports it.
    pub pool_state: Option<String>,
    pub error: Option<String>,
    /// With `[powershell.remote]`: the session the cmdlets ran in, as the host reported it
    /// (`ComputerName`, `State`, ...), for the journal and the review.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remoting_session: Option<serde_json::Value>,
}

impl Observation {
    pub(crate) fn instance(&self, role: Role) -> Option<&InstanceView> {
        self.instances.iter().find(|i| i.role == role)
    }

    /// The chat database on `role`, if the instance answered and has it.
    pub(crate) fn chat(&self, role: Role) -> Option<&DbView> {
        self.instance(role)
            .filter(|i| i.reachable)
            .and_then(|i| i.database(&self.chat_database))
    }

    pub(crate) fn reachable(&self, role: Role) -> bool {
        self.instance(role).is_some_and(|i| i.reachable)
    }
}

impl InstanceView {
    pub(crate) fn database(&self, name: &str) -> Option<&DbView> {
        self.databases
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
            .and_then(|d| d.view.as_ref())
    }
}

/// Where the log-shipping folders are known from when msdb no longer has them: a failover captured
/// them before removing log shipping.
#[derive(Clone, Debug, Default)]
pub(crate) struct KnownFolders {
    pub share: Option<String>,
    pub copy_folder: Option<String>,
}

/// Takes the observation. `shell` is the session whose PowerShell host asks for the pool state (a run
/// passes its own, so the host started here is the one the run keeps using).
pub(crate) async fn observe(
    runbook: &Runbook,
    timeouts: Timeouts,
    host: &HostSettings,
    shell: &mut Session<'_>,
    journal_folders: &KnownFolders,
) -> Observation {
    let roles: Vec<Role> = runbook.instances.keys().copied().collect();
    let sql = futures_util::future::join_all(
        roles
            .iter()
            .map(|&role| observe_instance(runbook, role, timeouts, host)),
    );
    let (instances, shell_view) = tokio::join!(sql, observe_shell(runbook, shell, timeouts));

    let secondary = instances
        .iter()
        .find(|i| i.role == Role::Backup)
        .and_then(|i| i.log_shipping_secondary.as_ref());
    let overrides = &runbook.log_shipping;
    let share = folder(
        overrides.share.as_deref(),
        secondary.map(|s| s.backup_source_directory.as_str()),
        journal_folders.share.as_deref(),
        overrides.pcfail_share.as_deref(),
        timeouts.connect,
    );
    let copy_folder = folder(
        overrides.copy_folder.as_deref(),
        secondary.map(|s| s.backup_destination_directory.as_str()),
        journal_folders.copy_folder.as_deref(),
        overrides.pcfail_copy_folder.as_deref(),
        timeouts.connect,
    );
    let (share, copy_folder) = tokio::join!(share, copy_folder);
    Observation {
        pool: runbook.pool.fqdn.clone(),
        chat_database: runbook.chat_database.clone(),
        compliance_database: runbook.compliance_database.clone(),
        instances,
        share,
        copy_folder,
        shell: shell_view,
    }
}

async fn observe_instance(
    runbook: &Runbook,
    role: Role,
    timeouts: Timeouts,
    host: &HostSettings,
) -> InstanceView {
    let instance = &runbook.instances[&role];
    let mut view = InstanceView {
        role,
        host: instance.host.clone(),
        data_center: instance.data_center.clone(),
        reachable: false,
        error: None,
        cause: None,
        server_name: None,
        server_time_utc: None,
        databases: Vec::new(),
        log_shipping_secondary: None,
        log_shipping_primary: None,
    };
    // A session of its own per instance: the four are asked at the same time.
    let mut s = Session::unjournaled(runbook, host.clone(), timeouts);
    if let Err(e) = s.connect(role).await {
        view.cause = Some(if e.is_configuration() {
            "configuration"
        } else if e.is_transport() {
            "unreachable"
        } else {
            "refused"
        });
        view.error = Some(e.to_string());
        return view;
    }
    let result = async {
        let clock = probe::server_clock(&mut s, role).await?;
        view.server_name = Some(clock.server_name);
        view.server_time_utc = Some(clock.utc_now);
        for name in [&runbook.chat_database, &runbook.compliance_database] {
            let db = probe::database_view(&mut s, role, name).await?;
            view.databases.push(DatabaseEntry {
                name: name.clone(),
                exists: db.is_some(),
                view: db,
            });
        }
        view.log_shipping_secondary =
            probe::log_shipping_secondary(&mut s, role, &runbook.chat_database).await?;
        view.log_shipping_primary =
            probe::log_shipping_primary(&mut s, role, &runbook.chat_database).await?;
        Ok::<(), crate::exec::StepError>(())
    }
    .await;
    match result {
        Ok(()) => view.reachable = true,
        Err(e) => {
            // It answered the login but not a question: as good as unreachable for deciding.
            view.cause = Some("error");
            view.error = Some(e.to_string());
        }
    }
    let _ = s.close().await;
    view
}

async fn observe_shell(runbook: &Runbook, s: &mut Session<'_>, timeouts: Timeouts) -> ShellView {
    let identity = runbook.pool.identity.clone();
    let command = format!(
        "Get-CsPersistentChatState -Identity {}",
        quote::ps_string(&identity)
    );
    // Starting the host includes importing the module, which can take a while on a real server.
    let timeout = timeouts.query.max(Duration::from_secs(60));
    match s.cmdlet(&command, timeout).await {
        Ok(invocation) => ShellView {
            identity,
            reachable: true,
            pool_state: invocation
                .output
                .first()
                .and_then(|o| o.get("PoolState"))
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            error: None,
            remoting_session: s.remoting_session().cloned(),
        },
        Err(e) => ShellView {
            identity,
            reachable: false,
            pool_state: None,
            error: Some(e.to_string()),
            remoting_session: None,
        },
    }
}

/// Lists a folder, bounded: a share in a lost data center can keep a directory listing waiting. The
/// folder is named as SQL Server names it (runbook, msdb, journal); pcfail lists it where the
/// runbook says pcfail reaches it (`pcfail`), or under that same name.
async fn folder(
    runbook: Option<&str>,
    msdb: Option<&str>,
    journal: Option<&str>,
    pcfail: Option<&str>,
    timeout: Duration,
) -> FolderView {
    let (path, source) = match (runbook, msdb, journal) {
        (Some(p), _, _) => (Some(p.to_owned()), Some("runbook")),
        (None, Some(p), _) => (Some(p.to_owned()), Some("msdb")),
        (None, None, Some(p)) => (Some(p.to_owned()), Some("journal")),
        (None, None, None) => (None, None),
    };
    let msdb_path = match (runbook, msdb) {
        (Some(r), Some(m)) if !same_path(r, m) => Some(m.to_owned()),
        _ => None,
    };
    let mut view = FolderView {
        path: path.clone(),
        source,
        msdb_path,
        pcfail_path: pcfail.map(str::to_owned),
        reachable: false,
        error: None,
        log_backups: 0,
        newest: None,
    };
    let Some(path) = pcfail.map(str::to_owned).or(path) else {
        view.error = Some("no runbook override, msdb row or earlier run names it".to_owned());
        return view;
    };
    let listing = tokio::task::spawn_blocking(move || copy::list_log_backups(Path::new(&path)));
    match tokio::time::timeout(timeout, listing).await {
        Ok(Ok(Ok((names, _)))) => {
            view.reachable = true;
            view.log_backups = names.len();
            view.newest = names.into_iter().max();
        }
        Ok(Ok(Err(e))) => view.error = Some(e.to_string()),
        Ok(Err(e)) => view.error = Some(format!("the listing failed: {e}")),
        Err(_) => {
            view.error = Some(format!(
                "no answer within {}s (the folder may be in a lost data center)",
                timeout.as_secs()
            ))
        }
    }
    view
}

/// Windows paths compare case-insensitively and with either separator.
fn same_path(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.replace('/', "\\").trim_end_matches('\\').to_lowercase();
    norm(a) == norm(b)
}
