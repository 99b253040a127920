//! Escape hatch: one raw T-SQL statement on a named instance, written in the runbook.
//!
//! pcfail cannot know what it does, so it is irreversible unless the runbook says otherwise, and it is
//! shown verbatim in the plan for the operator to review.

use std::time::Duration;

use super::{Command, MINUTE, Target};
use crate::exec::{Session, StepError};
use crate::runbook::{Role, StepReader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sql {
    pub instance: Role,
    pub database: String,
    pub text: String,
    pub irreversible: bool,
}

impl Sql {
    pub(crate) fn parse(r: &mut StepReader<'_, '_, '_, '_>) -> Option<Self> {
        let instance = r.instance("instance");
        let database = match r.table.raw("database") {
            Some(_) => r.database("database"),
            None => Some("master".to_owned()),
        };
        let text = r.text("text");
        let irreversible = r.bool_or("irreversible", true);
        Some(Self {
            instance: instance?,
            database: database?,
            text: text?,
            irreversible,
        })
    }

    pub fn name(&self) -> &'static str {
        "sql"
    }

    pub fn describe(&self) -> String {
        format!("Run a T-SQL statement on the {} instance", self.instance)
    }

    pub fn render(&self) -> Vec<Command> {
        vec![Command::Sql {
            instance: self.instance,
            database: self.database.clone(),
            text: self.text.clone(),
            when: None,
        }]
    }

    pub fn target(&self) -> Target {
        Target::Instance(self.instance)
    }

    pub fn irreversible(&self) -> bool {
        self.irreversible
    }

    pub fn default_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(10 * MINUTE))
    }
}

/// Running it: raw T-SQL cannot be checked or verified by pcfail; it runs every time the step runs.
impl Sql {
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
