//! Set (or clear) the Persistent Chat servers that accept new connections: failover step 7, and the
//! first and last fail-back steps (reference H.3).
//!
//! The lists come from `[active_servers]`, where the loader has already checked that the post-failover
//! servers stand in the backup data center. Clearing is `-ActiveServers $null`, as Microsoft documents.

use std::time::Duration;

use super::{Command, MINUTE, Target};
use crate::exec::{Session, StepError};
use crate::quote::ps_string;
use crate::runbook::StepReader;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetActiveServers {
    /// Which runbook list: `after_failover`, `after_failback` or `none`.
    pub list: &'static str,
    /// Empty means clear.
    pub servers: Vec<String>,
    /// The pool's identity (`[pool] identity`), given as `-Identity` so the cmdlet acts on this pool
    /// and no other; checked against Get-CsPersistentChatState before step 1.
    pub identity: String,
}

impl SetActiveServers {
    pub(crate) fn parse(r: &mut StepReader<'_, '_, '_, '_>) -> Option<Self> {
        let list = r.choice("servers", &["after_failover", "after_failback", "none"])?;
        let servers = match list {
            "after_failover" => r.context().active_after_failover.clone(),
            "after_failback" => r.context().active_after_failback.clone(),
            _ => Vec::new(),
        };
        Some(Self {
            list,
            servers,
            identity: r.context().pool_identity.clone(),
        })
    }

    pub fn name(&self) -> &'static str {
        "set_active_servers"
    }

    pub fn describe(&self) -> String {
        if self.servers.is_empty() {
            "Clear the list of active Persistent Chat servers".to_owned()
        } else {
            format!(
                "Make {} the active Persistent Chat servers",
                self.servers.join(", ")
            )
        }
    }

    pub fn render(&self) -> Vec<Command> {
        let value = if self.servers.is_empty() {
            "$null".to_owned()
        } else {
            let quoted: Vec<String> = self.servers.iter().map(|s| ps_string(s)).collect();
            format!("@({})", quoted.join(","))
        };
        vec![Command::powershell(format!(
            "Set-CsPersistentChatActiveServer -Identity {} -ActiveServers {value} -Confirm:$false",
            ps_string(&self.identity)
        ))]
    }

    pub fn target(&self) -> Target {
        Target::Shell
    }

    pub fn irreversible(&self) -> bool {
        false
    }

    pub fn default_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(5 * MINUTE))
    }
}

/// Running it: no cmdlet reads the active-server list back (Get-CsPersistentChatActiveServer does
/// not exist, reference H.3), so the step cannot be checked beforehand or verified afterwards beyond
/// the cmdlet's own success. Setting the list is idempotent, so it is simply always run. The list set
/// is journaled (`active_servers`) so that `status` can say what pcfail last set.
impl SetActiveServers {
    pub(crate) async fn check_done(&self, _s: &mut Session<'_>) -> Result<bool, StepError> {
        Ok(false)
    }

    pub(crate) async fn run(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        s.run_all(&self.render()).await?;
        s.capture("active_servers", serde_json::json!(self.servers))?;
        Ok(())
    }

    pub(crate) async fn verify(&self, _s: &mut Session<'_>) -> Result<(), StepError> {
        Ok(())
    }
}
