//! Fail-back: wait until the Central Management Store's replicas have the change just made (the pool
//! state back to Normal) before the next cmdlet relies on it (reference J.2).
//!
//! Every Front End and Persistent Chat server reads the store from its local replica; the Persistent
//! Chat servers made active next would otherwise start on a replica that still says FailedOver and
//! use the backup databases. `Get-CsManagementStoreReplicationStatus` reports each replica's
//! `UpToDate` (its documented example filters on it); the step polls it, bounded by its timeout.

use std::time::Duration;

use super::{Command, MINUTE, Target};
use crate::exec::{Session, StepError};
use crate::runbook::StepReader;

const STATUS: &str = "Get-CsManagementStoreReplicationStatus";
/// Between two polls: replication is a matter of seconds to minutes, and each poll is one cmdlet.
const POLL: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitForReplication {}

impl WaitForReplication {
    pub(crate) fn parse(_r: &mut StepReader<'_, '_, '_, '_>) -> Option<Self> {
        Some(Self {})
    }

    pub fn name(&self) -> &'static str {
        "wait_for_replication"
    }

    pub fn describe(&self) -> String {
        "Wait until every replica of the Central Management Store is up to date".to_owned()
    }

    pub fn render(&self) -> Vec<Command> {
        vec![Command::Computed {
            what: "wait until every replica reports UpToDate = True, polling every 2 seconds within the step's time".to_owned(),
            from: STATUS.to_owned(),
        }]
    }

    pub fn target(&self) -> Target {
        Target::Shell
    }

    pub fn irreversible(&self) -> bool {
        false
    }

    pub fn default_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(10 * MINUTE))
    }

    /// The replicas that do not report `UpToDate`.
    async fn behind(&self, s: &mut Session<'_>) -> Result<Vec<String>, StepError> {
        let timeout = s.step_timeout();
        let invocation = s.cmdlet(STATUS, timeout).await?;
        Ok(invocation
            .output
            .iter()
            .filter(|o| o.get("UpToDate").and_then(|v| v.as_bool()) != Some(true))
            .map(|o| {
                o.get("ReplicaFqdn")
                    .and_then(|v| v.as_str())
                    .unwrap_or("(unnamed replica)")
                    .to_owned()
            })
            .collect())
    }

    pub(crate) async fn check_done(&self, s: &mut Session<'_>) -> Result<bool, StepError> {
        Ok(self.behind(s).await?.is_empty())
    }

    pub(crate) async fn run(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        let mut said = false;
        loop {
            let behind = self.behind(s).await?;
            if behind.is_empty() {
                return Ok(());
            }
            if s.step_timeout() <= POLL {
                return Err(StepError::Failed(format!(
                    "{} replica(s) of the Central Management Store are still not up to date: {}; the step's time ran out. Run the same command again once `{STATUS}` reports them up to date",
                    behind.len(),
                    behind.join(", ")
                )));
            }
            if !said {
                s.progress(&format!(
                    "waiting for {} replica(s) of the Central Management Store: {}",
                    behind.len(),
                    behind.join(", ")
                ));
                said = true;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    pub(crate) async fn verify(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        let behind = self.behind(s).await?;
        if behind.is_empty() {
            Ok(())
        } else {
            Err(StepError::Failed(format!(
                "replicas not up to date: {}",
                behind.join(", ")
            )))
        }
    }
}
