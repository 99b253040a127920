//! Escape hatch: one raw PowerShell statement, written in the runbook, sent to the Management Shell.
//!
//! The host refuses text that is more than one statement (docs/powershell-host-protocol.md); the
//! runbook text is not quoted by pcfail because the operator wrote it as code. Irreversible unless the
//! runbook says otherwise.

use std::time::Duration;

use super::{Command, MINUTE, Target};
use crate::exec::{Session, StepError};
use crate::runbook::StepReader;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmdlet {
    pub text: String,
    pub irreversible: bool,
}

impl Cmdlet {
    pub(crate) fn parse(r: &mut StepReader<'_, '_, '_, '_>) -> Option<Self> {
        let text = r.text("text");
        let irreversible = r.bool_or("irreversible", true);
        Some(Self {
            text: text?,
            irreversible,
        })
    }

    pub fn name(&self) -> &'static str {
        "cmdlet"
    }

    pub fn describe(&self) -> String {
        "Run a PowerShell command in the Management Shell".to_owned()
    }

    pub fn render(&self) -> Vec<Command> {
        vec![Command::powershell(self.text.clone())]
    }

    pub fn target(&self) -> Target {
        Target::Shell
    }

    pub fn irreversible(&self) -> bool {
        self.irreversible
    }

    pub fn default_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(10 * MINUTE))
    }
}

/// Running it: a raw cmdlet cannot be checked or verified by pcfail beyond its own success.
impl Cmdlet {
    pub(crate) async fn check_done(&self, _s: &mut Session<'_>) -> Result<bool, StepError> {
        Ok(false)
    }

    pub(crate) async fn run(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        s.run_all(&self.render()).await
    }

    pub(crate) async fn verify(&self, _s: &mut Session<'_>) -> Result<(), StepError> {
        Ok(())
    }
}
