//! Moving the Central Management Store's master out of the data center the pool leaves, with
//! `Invoke-CsManagementServerFailover` (reference J.2; cmdlet reference: "Failover when the CMS is
//! unavailable (in disaster recovery mode) by specifying the BackupSqlServerFqdn parameter").
//!
//! `Set-CsPersistentChatState` and `Set-CsPersistentChatActiveServer` write the store, so with its
//! master in the lost data center both fail, right after `mgc` was recovered. pcfail always checks
//! where the master is before step 1 (`exec::preflight`) and stops there with this command; this step
//! runs it instead, but only where the runbook says `run = true` (off by default: moving the CMS is a
//! decision for the whole Skype for Business deployment, not only for Persistent Chat).
//!
//! Where the master is comes from `Get-CsManagementStoreReplicationStatus -CentralManagementStoreStatus`
//! (`ActiveMasterFqdn`), mapped to a data center by `[central_management_store] servers` in the runbook.

use std::time::Duration;

use super::{Command, MINUTE, Target};
use crate::exec::{Session, StepError};
use crate::quote::ps_string;
use crate::runbook::{Role, StepReader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailOverManagementStore {
    /// The data center the pool leaves (the primary instance's).
    pub leave: String,
    /// `-BackupSqlServerFqdn`: the SQL Server holding the store's backup.
    pub backup_sql_server: String,
    /// Off by default: the run stops before step 1 with the command instead.
    pub run: bool,
    /// The Front End servers that can run the master, by data center.
    pub servers: Vec<(String, String)>,
}

impl FailOverManagementStore {
    pub(crate) fn parse(r: &mut StepReader<'_, '_, '_, '_>) -> Option<Self> {
        let run = r.bool_or("run", false);
        let leave = r.instance_info(Role::Primary)?.data_center.clone();
        let Some(store) = r.context().management_store.clone() else {
            r.d.error(
                r.table.span(),
                "`fail_over_management_store` needs `[central_management_store]` with its `servers` and `backup_sql_server`",
            );
            return None;
        };
        let Some(backup_sql_server) = store.backup_sql_server.clone() else {
            r.d.error(
                r.table.span(),
                "`fail_over_management_store` needs `backup_sql_server` under `[central_management_store]`",
            );
            return None;
        };
        Some(Self {
            leave,
            backup_sql_server,
            run,
            servers: store
                .servers
                .iter()
                .map(|s| (s.fqdn.clone(), s.data_center.clone()))
                .collect(),
        })
    }

    pub fn name(&self) -> &'static str {
        "fail_over_management_store"
    }

    pub fn describe(&self) -> String {
        format!(
            "Move the Central Management Store's master out of {} if it is there{}",
            self.leave,
            if self.run {
                ""
            } else {
                " (off: the run stops before step 1 instead)"
            }
        )
    }

    /// The command, as the operator would type it on a Front End server of the other data center.
    pub(crate) fn command(&self) -> String {
        format!(
            "Invoke-CsManagementServerFailover -BackupSqlServerFqdn {} -Force -Confirm:$false",
            ps_string(&self.backup_sql_server)
        )
    }

    pub fn render(&self) -> Vec<Command> {
        vec![Command::PowerShell {
            text: self.command(),
            when: Some(format!(
                "only if `ActiveMasterFqdn` of Get-CsManagementStoreReplicationStatus -CentralManagementStoreStatus is in {}{}",
                self.leave,
                if self.run {
                    ""
                } else {
                    "; this step is off (`run = false`): pcfail stops before step 1 with this command instead"
                }
            )),
        }]
    }

    pub fn target(&self) -> Target {
        Target::Shell
    }

    pub fn irreversible(&self) -> bool {
        false
    }

    pub fn default_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(15 * MINUTE))
    }

    /// The data center of master `fqdn`, as the runbook declares it.
    fn data_center_of(&self, fqdn: &str) -> Option<&str> {
        self.servers
            .iter()
            .find(|(f, _)| f.eq_ignore_ascii_case(fqdn.trim()))
            .map(|(_, dc)| dc.as_str())
    }

    /// Whether the master is in the data center the pool leaves.
    async fn master_in_leaving(&self, s: &mut Session<'_>) -> Result<bool, StepError> {
        let timeout = s.step_timeout();
        let fqdn = active_master(s, timeout).await?;
        match self.data_center_of(&fqdn) {
            Some(dc) => Ok(dc.eq_ignore_ascii_case(&self.leave)),
            None => Err(StepError::Failed(format!(
                "the Central Management Server's master `{fqdn}` is not among `[central_management_store] servers` in the runbook, so pcfail cannot tell its data center"
            ))),
        }
    }

    pub(crate) async fn check_done(&self, s: &mut Session<'_>) -> Result<bool, StepError> {
        if !self.master_in_leaving(s).await? {
            return Ok(true);
        }
        if !self.run {
            // Off: the check before step 1 stopped every run that needed it; what is left is a
            // planned failover, whose primary data center still answers.
            s.progress(&format!(
                "the Central Management Server's master is in {}; this step is off (`run = false`), so it stays there",
                self.leave
            ));
            return Ok(true);
        }
        Ok(false)
    }

    pub(crate) async fn run(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        s.run_unconditionally(&Command::powershell(self.command()))
            .await
    }

    pub(crate) async fn verify(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        if self.master_in_leaving(s).await? {
            return Err(StepError::Failed(format!(
                "Get-CsManagementStoreReplicationStatus still names a master in {}",
                self.leave
            )));
        }
        Ok(())
    }
}

/// `ActiveMasterFqdn` from `Get-CsManagementStoreReplicationStatus -CentralManagementStoreStatus`.
pub(crate) async fn active_master(
    s: &mut Session<'_>,
    timeout: Duration,
) -> Result<String, StepError> {
    let command = "Get-CsManagementStoreReplicationStatus -CentralManagementStoreStatus";
    let invocation = s.cmdlet(command, timeout).await?;
    invocation
        .output
        .iter()
        .find_map(|o| o.get("ActiveMasterFqdn").and_then(|v| v.as_str()))
        .map(str::to_owned)
        .ok_or_else(|| StepError::Failed(format!("`{command}` named no `ActiveMasterFqdn`")))
}
