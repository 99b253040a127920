//! Failover step 5 and the last fail-back step: switch the pool between its primary and backup
//! databases with `Set-CsPersistentChatState -PoolState` (reference H.1).
//!
//! The identity string comes from the runbook's `[pool]` (`service:<fqdn>` by default). `-Confirm:$false`
//! because the host runs non-interactively and a prompt would fail (reference I.2).

use std::time::Duration;

use super::{Command, MINUTE, Target};
use crate::exec::{Session, StepError};
use crate::quote::ps_string;
use crate::runbook::StepReader;

/// `Normal` (primary databases) or `FailedOver` (backup databases).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolState {
    Normal,
    FailedOver,
}

impl PoolState {
    pub fn as_str(self) -> &'static str {
        match self {
            PoolState::Normal => "Normal",
            PoolState::FailedOver => "FailedOver",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetPoolState {
    pub identity: String,
    pub state: PoolState,
}

impl SetPoolState {
    pub(crate) fn parse(r: &mut StepReader<'_, '_, '_, '_>) -> Option<Self> {
        let state = match r.choice("state", &["Normal", "FailedOver"])? {
            "Normal" => PoolState::Normal,
            _ => PoolState::FailedOver,
        };
        Some(Self {
            identity: r.context().pool_identity.clone(),
            state,
        })
    }

    pub fn name(&self) -> &'static str {
        "set_pool_state"
    }

    pub fn describe(&self) -> String {
        format!(
            "Set the Persistent Chat pool state to {}",
            self.state.as_str()
        )
    }

    pub fn render(&self) -> Vec<Command> {
        vec![Command::powershell(format!(
            "Set-CsPersistentChatState -Identity {} -PoolState {} -Confirm:$false",
            ps_string(&self.identity),
            ps_string(self.state.as_str())
        ))]
    }

    pub fn target(&self) -> Target {
        Target::Shell
    }

    /// Setting the state back is one more call of the same cmdlet.
    pub fn irreversible(&self) -> bool {
        false
    }

    pub fn default_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(5 * MINUTE))
    }
}

/// Running it: Get-CsPersistentChatState tells whether the pool is already in the wanted state, and
/// confirms it afterwards. The object's `PoolState` is compared by name, case-insensitively.
impl SetPoolState {
    async fn current(&self, s: &mut Session<'_>) -> Result<Option<String>, StepError> {
        let command = format!(
            "Get-CsPersistentChatState -Identity {}",
            ps_string(&self.identity)
        );
        let timeout = s.step_timeout();
        let invocation = s.cmdlet(&command, timeout).await?;
        Ok(invocation
            .output
            .first()
            .and_then(|o| o.get("PoolState"))
            .and_then(|v| v.as_str())
            .map(str::to_owned))
    }

    pub(crate) async fn check_done(&self, s: &mut Session<'_>) -> Result<bool, StepError> {
        Ok(self
            .current(s)
            .await?
            .is_some_and(|state| state.eq_ignore_ascii_case(self.state.as_str())))
    }

    pub(crate) async fn run(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        s.run_all(&self.render()).await
    }

    pub(crate) async fn verify(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        match self.current(s).await? {
            Some(state) if state.eq_ignore_ascii_case(self.state.as_str()) => Ok(()),
            other => Err(StepError::Failed(format!(
                "Get-CsPersistentChatState reports the pool as {}, not {}",
                other.as_deref().unwrap_or("(no state)"),
                self.state.as_str()
            ))),
        }
    }
}
