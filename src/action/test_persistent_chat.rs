//! Fail-back's last step: `Test-CsPersistentChatMessage`, the synthetic transaction that shows
//! Persistent Chat works on the databases the pool now uses (reference J.2).
//!
//! Like every Test-Cs cmdlet it reports a failed test as an object with `Result = Failure`, not as an
//! error, so the step reads `Result` and fails on anything but `Success`. A module without the cmdlet
//! (it is not documented for every version) is not an error either: the step says the pool was not
//! tested. Either way the outcome is captured and shown in the run's summary.

use std::time::Duration;

use super::{Command, MINUTE, Target};
use crate::exec::{Session, StepError};
use crate::quote::ps_string;
use crate::runbook::StepReader;

/// The key the outcome is captured under; the run's summary shows it.
pub(crate) const CAPTURE_KEY: &str = "chat_test";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestPersistentChat {
    pub pool: String,
}

impl TestPersistentChat {
    pub(crate) fn parse(r: &mut StepReader<'_, '_, '_, '_>) -> Option<Self> {
        Some(Self {
            pool: r.context().pool_fqdn.clone(),
        })
    }

    pub fn name(&self) -> &'static str {
        "test_persistent_chat"
    }

    pub fn describe(&self) -> String {
        format!(
            "Test Persistent Chat on {} with a synthetic message",
            self.pool
        )
    }

    fn command(&self) -> String {
        format!(
            "Test-CsPersistentChatMessage -TargetFqdn {}",
            ps_string(&self.pool)
        )
    }

    pub fn render(&self) -> Vec<Command> {
        vec![Command::powershell(self.command())]
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

    /// A test describes a moment: it is never "already done".
    pub(crate) async fn check_done(&self, _s: &mut Session<'_>) -> Result<bool, StepError> {
        Ok(false)
    }

    pub(crate) async fn run(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        let timeout = s.step_timeout();
        let invocation = match s.cmdlet(&self.command(), timeout).await {
            Ok(invocation) => invocation,
            Err(StepError::Cmdlet { error, .. })
                if error.kind.ends_with("CommandNotFoundException")
                    || error
                        .fully_qualified_error_id
                        .starts_with("CommandNotFoundException") =>
            {
                let said = "Test-CsPersistentChatMessage: not run, the module has no such cmdlet; Persistent Chat was not tested".to_owned();
                s.progress(&said);
                s.capture(CAPTURE_KEY, serde_json::json!({ "summary": said }))?;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let result = invocation.output.first();
        let field = |name: &str| {
            result
                .and_then(|o| o.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let outcome = field("Result").unwrap_or_else(|| "(no result)".to_owned());
        let said = match field("Latency") {
            Some(latency) => format!("Test-CsPersistentChatMessage: {outcome} (latency {latency})"),
            None => format!("Test-CsPersistentChatMessage: {outcome}"),
        };
        s.progress(&said);
        s.capture(CAPTURE_KEY, serde_json::json!({ "summary": said }))?;
        if outcome.eq_ignore_ascii_case("Success") {
            Ok(())
        } else {
            Err(StepError::Failed(format!(
                "{said}: {}",
                field("Error").unwrap_or_else(|| "no error given".to_owned())
            )))
        }
    }

    /// The test is its own read-back.
    pub(crate) async fn verify(&self, _s: &mut Session<'_>) -> Result<(), StepError> {
        Ok(())
    }
}
