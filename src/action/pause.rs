//! A manual confirmation: the run stops until the operator says to go on (or aborts, exit 4).
//!
//! Used where a person must check something pcfail cannot, such as "the clients reconnected".

use std::time::Duration;

use super::{Command, Target};
use crate::exec::{Session, StepError};
use crate::runbook::StepReader;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    pub message: String,
}

impl Pause {
    pub(crate) fn parse(r: &mut StepReader<'_, '_, '_, '_>) -> Option<Self> {
        Some(Self {
            message: r.text("message")?,
        })
    }

    pub fn name(&self) -> &'static str {
        "pause"
    }

    pub fn describe(&self) -> String {
        "Wait for the operator to confirm".to_owned()
    }

    pub fn render(&self) -> Vec<Command> {
        vec![Command::Pause {
            message: self.message.clone(),
        }]
    }

    pub fn target(&self) -> Target {
        Target::Operator
    }

    pub fn irreversible(&self) -> bool {
        false
    }

    /// A person decides; pcfail does not guess how long that takes.
    pub fn default_timeout(&self) -> Option<Duration> {
        None
    }
}

/// Running it: the operator answers; `--yes` answers for them (and the journal says so).
impl Pause {
    pub(crate) async fn check_done(&self, _s: &mut Session<'_>) -> Result<bool, StepError> {
        Ok(false)
    }

    pub(crate) async fn run(&self, s: &mut Session<'_>) -> Result<(), StepError> {
        s.confirm_continue(&self.message).await
    }

    pub(crate) async fn verify(&self, _s: &mut Session<'_>) -> Result<(), StepError> {
        Ok(())
    }
}
