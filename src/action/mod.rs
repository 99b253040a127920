//! The closed catalog of step actions: one file per action, one arm per action in each `match` here.
//!
//! An [`Action`] holds everything it needs, resolved when the runbook is loaded (names checked, roles
//! known, endpoint addresses and server names looked up), so [`Action::render`] is a pure function and
//! the plan that `pcfail plan` prints is the very value an executor runs. Each action file owns the
//! action's parameters (`parse`), its one-line summary (`describe`) and its exact commands (`render`).
//! Each file also says how the action is checked, run and verified against live servers
//! (`check_done`, `run`, `verify`), through the executor's `Session`.

mod apply_log_backups;
mod backup_database;
mod backup_log_tail;
mod cmdlet;
mod configure_log_shipping;
mod copy_log_backups;
mod end_sessions;
mod fail_over_management_store;
mod install_mirror_database;
mod mirror_database;
mod pause;
mod recover_database;
mod remove_log_shipping_secondary;
mod remove_mirroring;
mod restore_database;
mod set_active_servers;
mod set_pool_state;
mod sql;
mod test_persistent_chat;
mod wait_for_replication;

use std::time::Duration;

use serde::Serialize;

use crate::exec::{Session, StepError};
use crate::quote;
use crate::runbook::{Role, StepReader};

pub use apply_log_backups::ApplyLogBackups;
pub use backup_database::BackupDatabase;
pub use backup_log_tail::BackupLogTail;
pub(crate) use backup_log_tail::tail_key;
pub use cmdlet::Cmdlet;
pub use configure_log_shipping::ConfigureLogShipping;
pub use copy_log_backups::CopyLogBackups;
pub use end_sessions::EndSessions;
pub use fail_over_management_store::FailOverManagementStore;
pub(crate) use fail_over_management_store::active_master;
pub use install_mirror_database::InstallMirrorDatabase;
pub use mirror_database::MirrorDatabase;
pub use pause::Pause;
pub use recover_database::RecoverDatabase;
pub use remove_log_shipping_secondary::RemoveLogShippingSecondary;
pub use remove_mirroring::RemoveMirroring;
pub use restore_database::RestoreDatabase;
pub use set_active_servers::SetActiveServers;
pub use set_pool_state::{PoolState, SetPoolState};
pub use sql::Sql;
pub(crate) use test_persistent_chat::CAPTURE_KEY as CHAT_TEST_KEY;
pub use test_persistent_chat::TestPersistentChat;
pub use wait_for_replication::WaitForReplication;

/// One rendered command: what an executor sends, where, and under which condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Command {
    /// One plain T-SQL statement, run on the instance with this role, in this database.
    Sql {
        instance: Role,
        database: String,
        text: String,
        /// When present, the statement runs only if this condition holds (checked live).
        #[serde(skip_serializing_if = "Option::is_none")]
        when: Option<String>,
    },
    /// One PowerShell statement, sent to the Management Shell host.
    #[serde(rename = "powershell")]
    PowerShell {
        text: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        when: Option<String>,
    },
    /// Statements that depend on live state: what will be computed, and from where.
    Computed { what: String, from: String },
    /// Wait for the operator.
    Pause { message: String },
}

impl Command {
    fn sql(instance: Role, text: String) -> Command {
        Command::Sql {
            instance,
            database: "master".to_owned(),
            text,
            when: None,
        }
    }

    fn powershell(text: String) -> Command {
        Command::PowerShell { text, when: None }
    }
}

/// Where a step acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "role", rename_all = "snake_case")]
pub enum Target {
    /// A SQL Server instance, by role.
    Instance(Role),
    /// The Skype for Business Management Shell.
    Shell,
    /// The operator at the console.
    Operator,
}

/// Every kind of step pcfail can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    RemoveLogShippingSecondary(RemoveLogShippingSecondary),
    CopyLogBackups(CopyLogBackups),
    ApplyLogBackups(ApplyLogBackups),
    EndSessions(EndSessions),
    RecoverDatabase(RecoverDatabase),
    SetPoolState(SetPoolState),
    SetActiveServers(SetActiveServers),
    MirrorDatabase(MirrorDatabase),
    InstallMirrorDatabase(InstallMirrorDatabase),
    RemoveMirroring(RemoveMirroring),
    BackupDatabase(BackupDatabase),
    BackupLogTail(BackupLogTail),
    RestoreDatabase(RestoreDatabase),
    /// Boxed: it carries many names and paths, the other variants a few words.
    ConfigureLogShipping(Box<ConfigureLogShipping>),
    FailOverManagementStore(FailOverManagementStore),
    WaitForReplication(WaitForReplication),
    TestPersistentChat(TestPersistentChat),
    Pause(Pause),
    Sql(Sql),
    Cmdlet(Cmdlet),
}

/// Dispatches one method to the action's own file.
macro_rules! each {
    ($self:expr, $a:ident => $body:expr) => {
        match $self {
            Action::RemoveLogShippingSecondary($a) => $body,
            Action::CopyLogBackups($a) => $body,
            Action::ApplyLogBackups($a) => $body,
            Action::EndSessions($a) => $body,
            Action::RecoverDatabase($a) => $body,
            Action::SetPoolState($a) => $body,
            Action::SetActiveServers($a) => $body,
            Action::MirrorDatabase($a) => $body,
            Action::InstallMirrorDatabase($a) => $body,
            Action::RemoveMirroring($a) => $body,
            Action::BackupDatabase($a) => $body,
            Action::BackupLogTail($a) => $body,
            Action::RestoreDatabase($a) => $body,
            Action::ConfigureLogShipping($a) => $body,
            Action::FailOverManagementStore($a) => $body,
            Action::WaitForReplication($a) => $body,
            Action::TestPersistentChat($a) => $body,
            Action::Pause($a) => $body,
            Action::Sql($a) => $body,
            Action::Cmdlet($a) => $body,
        }
    };
}

impl Action {
    /// The `action = "..."` names, in catalog order.
    pub const NAMES: &'static [&'static str] = &[
        "remove_log_shipping_secondary",
        "copy_log_backups",
        "apply_log_backups",
        "end_sessions",
        "recover_database",
        "set_pool_state",
        "set_active_servers",
        "mirror_database",
        "install_mirror_database",
        "remove_mirroring",
        "backup_database",
        "backup_log_tail",
        "restore_database",
        "configure_log_shipping",
        "fail_over_management_store",
        "wait_for_replication",
        "test_persistent_chat",
        "pause",
        "sql",
        "cmdlet",
    ];

    /// Reads the action named `name` and its parameters from a runbook step.
    pub(crate) fn parse(
        name: &crate::runbook::Located<String>,
        r: &mut StepReader<'_, '_, '_, '_>,
    ) -> Option<Action> {
        Some(match name.value.as_str() {
            "remove_log_shipping_secondary" => {
                Action::RemoveLogShippingSecondary(RemoveLogShippingSecondary::parse(r)?)
            }
            "copy_log_backups" => Action::CopyLogBackups(CopyLogBackups::parse(r)?),
            "apply_log_backups" => Action::ApplyLogBackups(ApplyLogBackups::parse(r)?),
            "end_sessions" => Action::EndSessions(EndSessions::parse(r)?),
            "recover_database" => Action::RecoverDatabase(RecoverDatabase::parse(r)?),
            "set_pool_state" => Action::SetPoolState(SetPoolState::parse(r)?),
            "set_active_servers" => Action::SetActiveServers(SetActiveServers::parse(r)?),
            "mirror_database" => Action::MirrorDatabase(MirrorDatabase::parse(r)?),
            "install_mirror_database" => {
                Action::InstallMirrorDatabase(InstallMirrorDatabase::parse(r)?)
            }
            "remove_mirroring" => Action::RemoveMirroring(RemoveMirroring::parse(r)?),
            "backup_database" => Action::BackupDatabase(BackupDatabase::parse(r)?),
            "backup_log_tail" => Action::BackupLogTail(BackupLogTail::parse(r)?),
            "restore_database" => Action::RestoreDatabase(RestoreDatabase::parse(r)?),
            "configure_log_shipping" => {
                Action::ConfigureLogShipping(Box::new(ConfigureLogShipping::parse(r)?))
            }
            "fail_over_management_store" => {
                Action::FailOverManagementStore(FailOverManagementStore::parse(r)?)
            }
            "wait_for_replication" => Action::WaitForReplication(WaitForReplication::parse(r)?),
            "test_persistent_chat" => Action::TestPersistentChat(TestPersistentChat::parse(r)?),
            "pause" => Action::Pause(Pause::parse(r)?),
            "sql" => Action::Sql(Sql::parse(r)?),
            "cmdlet" => Action::Cmdlet(Cmdlet::parse(r)?),
            other => {
                r.d.error(
                    name.span.clone(),
                    crate::runbook::with_suggestion(
                        format!("unknown action `{other}`"),
                        other,
                        Action::NAMES.iter().copied(),
                    ),
                );
                return None;
            }
        })
    }

    /// The action's `action = "..."` name.
    pub fn name(&self) -> &'static str {
        each!(self, a => a.name())
    }

    /// A one-line summary for people.
    pub fn describe(&self) -> String {
        each!(self, a => a.describe())
    }

    /// The exact commands, in order.
    pub fn render(&self) -> Vec<Command> {
        each!(self, a => a.render())
    }

    /// Where the step acts.
    pub fn target(&self) -> Target {
        each!(self, a => a.target())
    }

    /// Whether the step destroys state that pcfail cannot put back (the point of no return is the
    /// first such step).
    pub fn irreversible(&self) -> bool {
        each!(self, a => a.irreversible())
    }

    /// Whether the step's effect is already in place (so running it again is skipped). Asked before
    /// every run, which is what makes a resumed run safe.
    pub(crate) async fn check_done(&self, s: &mut Session<'_>) -> Result<bool, StepError> {
        each!(self, a => a.check_done(s).await)
    }

    /// Carries the step out.
    pub(crate) async fn run(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        each!(self, a => a.run(s).await)
    }

    /// Checks the step's postcondition after it ran.
    pub(crate) async fn verify(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        each!(self, a => a.verify(s).await)
    }

    /// Whether the step's result describes a moment, so that a resumed run examines it again when a
    /// later step still has to use it: a full backup of a database that may have changed since, and
    /// the copied log backups (a file found corrupt and fixed in the share since must be copied again,
    /// or the apply step fails the same way forever).
    pub fn perishable(&self) -> bool {
        matches!(self, Action::BackupDatabase(_) | Action::CopyLogBackups(_))
    }

    /// The databases the step backs up or restores, by instance: before the step is examined, pcfail
    /// waits for a BACKUP or RESTORE still running on them (an earlier attempt's, or a log-shipping
    /// job's) instead of racing it.
    pub fn busy_with(&self) -> Vec<(Role, &str)> {
        match self {
            Action::ApplyLogBackups(a) => vec![(a.instance, a.database.as_str())],
            Action::RecoverDatabase(a) => vec![(a.instance, a.database.as_str())],
            Action::BackupDatabase(a) => vec![(a.instance, a.database.as_str())],
            Action::RestoreDatabase(a) => vec![(a.instance, a.database.as_str())],
            Action::BackupLogTail(a) => vec![(a.instance, a.database.as_str())],
            Action::MirrorDatabase(a) => vec![
                (a.principal, a.database.as_str()),
                (a.mirror, a.database.as_str()),
            ],
            Action::ConfigureLogShipping(a) => vec![
                (a.primary, a.database.as_str()),
                (a.secondary, a.database.as_str()),
            ],
            _ => Vec::new(),
        }
    }

    /// Why the step's effect cannot be read back after it ran, if it cannot: the report then says
    /// "done (not verified: ...)" rather than a plain "done".
    pub fn unverifiable(&self) -> Option<&'static str> {
        match self {
            Action::SetActiveServers(_) => Some(
                "no cmdlet reads the active servers back (Get-CsPersistentChatActiveServer does not exist)",
            ),
            Action::Sql(_) | Action::Cmdlet(_) => {
                Some("a statement written in the runbook has no postcondition pcfail knows")
            }
            _ => None,
        }
    }

    /// How long the step may take when the runbook sets no `timeout`; `None` waits indefinitely.
    pub fn default_timeout(&self) -> Option<Duration> {
        each!(self, a => a.default_timeout())
    }
}

/// A database name quoted as an identifier. Names are validated to at most 128 characters when the
/// runbook is loaded, which is the only way `sql_identifier` can refuse.
fn ident(name: &str) -> String {
    quote::sql_identifier(name)
        .unwrap_or_else(|_| unreachable!("database names are validated to 128 characters: {name}"))
}

const MINUTE: u64 = 60;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::MirroringEndpoint;

    fn sql(role: Role, text: &str) -> Command {
        Command::sql(role, text.to_owned())
    }

    fn ps(text: &str) -> Command {
        Command::powershell(text.to_owned())
    }

    #[test]
    fn each_action_renders_its_exact_commands() {
        let cases: Vec<(Action, Vec<Command>)> = vec![
            (
                Action::RemoveLogShippingSecondary(RemoveLogShippingSecondary {
                    instance: Role::Backup,
                    database: "mgc".into(),
                }),
                vec![
                    Command::Computed {
                        what: "EXEC msdb.dbo.sp_update_job @job_id = N'<id>', @enabled = 0 for the copy job and the restore job of `mgc`, then wait until neither runs (msdb.dbo.sysjobactivity) and no BACKUP or RESTORE works on `mgc` (sys.dm_exec_requests)".into(),
                        from: "msdb.dbo.log_shipping_secondary (copy_job_id, restore_job_id) on backup".into(),
                    },
                    sql(
                        Role::Backup,
                        "EXEC master.dbo.sp_delete_log_shipping_secondary_database @secondary_database = N'mgc'",
                    ),
                ],
            ),
            (
                Action::RecoverDatabase(RecoverDatabase {
                    instance: Role::Backup,
                    database: "mgc".into(),
                }),
                vec![sql(Role::Backup, "RESTORE DATABASE [mgc] WITH RECOVERY")],
            ),
            (
                Action::RemoveMirroring(RemoveMirroring {
                    instance: Role::Backup,
                    database: "mgccomp".into(),
                }),
                vec![sql(
                    Role::Backup,
                    "ALTER DATABASE [mgccomp] SET PARTNER OFF",
                )],
            ),
            (
                Action::BackupDatabase(BackupDatabase {
                    instance: Role::Backup,
                    database: "mgc".into(),
                    file: r"\\s\it's.bak".into(),
                }),
                vec![sql(
                    Role::Backup,
                    r"BACKUP DATABASE [mgc] TO DISK = N'\\s\it''s.bak' WITH INIT, FORMAT, CHECKSUM",
                )],
            ),
            (
                Action::RestoreDatabase(RestoreDatabase {
                    instance: Role::Primary,
                    database: "mgc".into(),
                    file: "/b/mgc.bak".into(),
                }),
                vec![
                    Command::Sql {
                        instance: Role::Primary,
                        database: "master".into(),
                        text: "ALTER DATABASE [mgc] SET SINGLE_USER WITH ROLLBACK IMMEDIATE".into(),
                        when: Some("only if `mgc` on primary is ONLINE (not RESTORING or a STANDBY, where nobody can use it)".into()),
                    },
                    sql(
                        Role::Primary,
                        "RESTORE DATABASE [mgc] FROM DISK = N'/b/mgc.bak' WITH FILE = 1, REPLACE, RECOVERY",
                    ),
                    Command::Computed {
                        what: "`, MOVE N'<logical>' TO N'<path>'` added to the RESTORE for each file the backup places outside primary's default data or log directory".into(),
                        from: "RESTORE FILELISTONLY of the file, SERVERPROPERTY('InstanceDefaultDataPath') and ('InstanceDefaultLogPath')".into(),
                    },
                ],
            ),
            (
                Action::SetPoolState(SetPoolState {
                    identity: "service:p’x".into(),
                    state: PoolState::FailedOver,
                }),
                vec![ps(
                    "Set-CsPersistentChatState -Identity 'service:p’’x' -PoolState 'FailedOver' -Confirm:$false",
                )],
            ),
            (
                Action::SetActiveServers(SetActiveServers {
                    list: "none",
                    servers: vec![],
                    identity: "service:p.x.com".into(),
                }),
                vec![ps(
                    "Set-CsPersistentChatActiveServer -Identity 'service:p.x.com' -ActiveServers $null -Confirm:$false",
                )],
            ),
            (
                Action::SetActiveServers(SetActiveServers {
                    list: "after_failover",
                    servers: vec!["a.x.com".into(), "b.x.com".into()],
                    identity: "service:p.x.com".into(),
                }),
                vec![ps(
                    "Set-CsPersistentChatActiveServer -Identity 'service:p.x.com' -ActiveServers @('a.x.com','b.x.com') -Confirm:$false",
                )],
            ),
            (
                Action::InstallMirrorDatabase(InstallMirrorDatabase {
                    instance: Role::Backup,
                    database_type: "PersistentChatCompliance",
                    sql_server_fqdn: "dal-sql-001.litwareinc.com".into(),
                    sql_instance_name: Some("PCHAT".into()),
                    file_share: r"\\dal\share".into(),
                }),
                vec![ps(
                    r"Install-CsMirrorDatabase -DatabaseType 'PersistentChatCompliance' -SqlServerFqdn 'dal-sql-001.litwareinc.com' -SqlInstanceName 'PCHAT' -FileShare '\\dal\share' -DropExistingDatabasesOnMirror -Confirm:$false",
                )],
            ),
            (
                Action::Pause(Pause {
                    message: "go?".into(),
                }),
                vec![Command::Pause {
                    message: "go?".into(),
                }],
            ),
            (
                Action::Sql(Sql {
                    instance: Role::Primary,
                    database: "mgc".into(),
                    text: "SELECT 1".into(),
                    irreversible: false,
                }),
                vec![Command::Sql {
                    instance: Role::Primary,
                    database: "mgc".into(),
                    text: "SELECT 1".into(),
                    when: None,
                }],
            ),
            (
                Action::Cmdlet(Cmdlet {
                    text: "Get-CsPool".into(),
                    irreversible: true,
                }),
                vec![ps("Get-CsPool")],
            ),
        ];
        for (action, expected) in cases {
            assert_eq!(action.render(), expected, "{}", action.name());
        }
    }

    #[test]
    fn mirroring_orders_endpoints_backups_restores_then_partners() {
        let action = MirrorDatabase {
            principal: Role::Backup,
            mirror: Role::BackupMirror,
            database: "mgc".into(),
            backup_file: "/m/mgc.bak".into(),
            principal_endpoint: MirroringEndpoint {
                host: "p.x.com".into(),
                port: 5022,
            },
            mirror_endpoint: MirroringEndpoint {
                host: "m.x.com".into(),
                port: 5023,
            },
        };
        let commands = action.render();
        assert!(
            matches!(&commands[3], Command::Computed { what, .. } if what.starts_with("ALTER ENDPOINT [<name>] STATE = STARTED on backup_mirror and on backup where")),
            "{:?}",
            commands[3]
        );
        let rendered: Vec<(Role, String, bool)> = commands
            .into_iter()
            .filter_map(|c| match c {
                Command::Sql {
                    instance,
                    text,
                    when,
                    ..
                } => Some((instance, text, when.is_some())),
                _ => None,
            })
            .collect();
        let endpoint = |port| {
            format!(
                "CREATE ENDPOINT [Mirroring] STATE = STARTED AS TCP (LISTENER_PORT = {port}) FOR DATABASE_MIRRORING (ROLE = PARTNER)"
            )
        };
        assert_eq!(
            rendered,
            [
                // Conditional: clears a half-made session left by an interrupted earlier attempt.
                (Role::BackupMirror, "ALTER DATABASE [mgc] SET PARTNER OFF".into(), true),
                (Role::BackupMirror, endpoint(5023), true),
                (Role::Backup, endpoint(5022), true),
                // Conditional: mirroring needs the FULL recovery model (1465).
                (Role::Backup, "ALTER DATABASE [mgc] SET RECOVERY FULL".into(), true),
                (Role::Backup, "BACKUP DATABASE [mgc] TO DISK = N'/m/mgc.bak' WITH INIT, FORMAT, CHECKSUM".into(), false),
                (Role::Backup, "BACKUP LOG [mgc] TO DISK = N'/m/mgc.bak' WITH NOINIT, CHECKSUM".into(), false),
                (Role::BackupMirror, "RESTORE DATABASE [mgc] FROM DISK = N'/m/mgc.bak' WITH FILE = 1, NORECOVERY, REPLACE".into(), false),
                (Role::BackupMirror, "RESTORE LOG [mgc] FROM DISK = N'/m/mgc.bak' WITH FILE = 2, NORECOVERY".into(), false),
                (Role::BackupMirror, "ALTER DATABASE [mgc] SET PARTNER = N'TCP://p.x.com:5022'".into(), false),
                (Role::Backup, "ALTER DATABASE [mgc] SET PARTNER = N'TCP://m.x.com:5023'".into(), false),
            ]
        );
    }

    #[test]
    fn irreversible_actions_are_the_destructive_ones() {
        let cases = [
            (
                Action::RecoverDatabase(RecoverDatabase {
                    instance: Role::Backup,
                    database: "mgc".into(),
                }),
                true,
            ),
            (
                Action::EndSessions(EndSessions {
                    instance: Role::Backup,
                    database: "mgc".into(),
                }),
                false,
            ),
            (
                Action::Pause(Pause {
                    message: "x".into(),
                }),
                false,
            ),
            (
                Action::Cmdlet(Cmdlet {
                    text: "x".into(),
                    irreversible: true,
                }),
                true,
            ),
            (
                Action::Sql(Sql {
                    instance: Role::Backup,
                    database: "master".into(),
                    text: "x".into(),
                    irreversible: false,
                }),
                false,
            ),
        ];
        for (action, expected) in cases {
            assert_eq!(action.irreversible(), expected, "{}", action.name());
        }
    }
}
