//! What one run holds open: a connection per instance, the PowerShell host, the journal.
//!
//! Every statement and cmdlet an action sends goes through here, so every one of them is journaled
//! (what, where, how long, what came back) without the actions having to remember to. Connections
//! and the host are opened on first use: a failback that never touches the backup mirror never
//! connects to it, and a plan that needs no cmdlet never starts PowerShell.
//!
//! What this module deliberately does not do: retry a statement that changes state. A dropped
//! connection in the middle of a RESTORE fails the step; the next run re-examines the step with its
//! done-check before anything is sent again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use std::path::Path;

use super::copy::CopyReport;
use super::probe::LogShippingSecondary;
use crate::action::Command;
use crate::journal::{Event, Journal, JournalError};
use crate::powershell::{CmdletError, HostError, HostSettings, Invocation, PowerShell};
use crate::quote;
use crate::runbook::{Role, Runbook};
use crate::sql::{Param, ResultSet, Sql, SqlError};

/// Why a step could not complete. Reported with the step, journaled, and turned into exit code 1.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StepError {
    #[error(transparent)]
    Sql(#[from] SqlError),
    #[error(transparent)]
    Host(#[from] HostError),
    /// The host failed while running a cmdlet: `what` says which, and `host` keeps the host's
    /// stderr for the report.
    #[error("{what}")]
    HostStopped { what: String, host: HostError },
    #[error("`{command}` failed: {}", .error.message)]
    Cmdlet {
        command: String,
        error: Box<CmdletError>,
    },
    #[error("{0}")]
    Failed(String),
    /// The operator declined to continue (or could not be asked).
    #[error("{0}")]
    Aborted(String),
    /// pcfail itself cannot go on: the journal is the one thing a run cannot do without.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

impl StepError {
    /// The SQL Server error number, when the server sent one.
    pub(crate) fn sql_number(&self) -> Option<u32> {
        match self {
            StepError::Sql(e) => e.number(),
            _ => None,
        }
    }
}

/// How the operator answers questions during a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answers {
    /// `--yes`: every confirmation is given, and journaled as given by `--yes`.
    Yes,
    /// Ask on the terminal.
    Ask,
}

/// When a step has no timeout of its own: effectively forever, but a number tokio can add to now.
const NO_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// Timeouts that are not per step.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    pub connect: Duration,
    /// For the read-only queries actions make to check state.
    pub query: Duration,
}

pub(crate) struct Session<'r> {
    pub(crate) runbook: &'r Runbook,
    /// `None` for read-only checks (`plan --check`), which must leave no journal behind.
    journal: Option<Journal>,
    sql: BTreeMap<Role, Sql>,
    host: Option<PowerShell>,
    host_settings: HostSettings,
    /// The remoting session the host opened (`[powershell.remote]`), as the host described it.
    remoting: Option<serde_json::Value>,
    pub(crate) timeouts: Timeouts,
    /// The step whose commands are being journaled, and when its time is up: the runbook's timeout
    /// bounds the step as a whole, not each statement in it.
    step: String,
    step_deadline: Instant,
    /// The current step's timeout as the plan gives it (None: no limit).
    step_limit: Option<Duration>,
    retrying: bool,
    /// Facts captured before they could be destroyed, by key (see `Event::Captured`).
    captured: BTreeMap<String, serde_json::Value>,
    answers: Answers,
    accept_data_loss: bool,
    quiet: bool,
    /// Log backup headers read in this run (see `exec::headers`).
    headers: super::headers::HeaderCache,
    /// Log backups known identical in the share and the copy folder (see `exec::copy`).
    verified_copies: super::copy::Verified,
}

impl<'r> Session<'r> {
    /// A session with no journal yet: what it sends is journaled once [`Session::set_journal`] gives
    /// it one (a run observes the pool before it knows whether it will run at all).
    pub(crate) fn new(
        runbook: &'r Runbook,
        host_settings: HostSettings,
        timeouts: Timeouts,
        answers: Answers,
        quiet: bool,
    ) -> Session<'r> {
        Session {
            runbook,
            journal: None,
            sql: BTreeMap::new(),
            host: None,
            remoting: None,
            host_settings,
            timeouts,
            step: String::new(),
            step_deadline: Instant::now() + NO_TIMEOUT,
            step_limit: None,
            retrying: false,
            captured: BTreeMap::new(),
            answers,
            accept_data_loss: false,
            quiet,
            headers: Default::default(),
            verified_copies: Default::default(),
        }
    }

    /// The log backup headers read so far in this run.
    pub(crate) fn headers(&mut self) -> &mut super::headers::HeaderCache {
        &mut self.headers
    }

    /// The log backups this run found (or made) identical in the share and the copy folder.
    pub(crate) fn verified_copies(&mut self) -> &mut super::copy::Verified {
        &mut self.verified_copies
    }

    /// From now on every statement, cmdlet and fact is journaled.
    pub(crate) fn set_journal(&mut self, journal: Journal) {
        self.journal = Some(journal);
    }

    /// `--accept-data-loss`: a gap in the log chain, or a share that became unreachable, ends the
    /// apply or copy instead of stopping the run.
    pub(crate) fn set_accept_data_loss(&mut self, accept: bool) {
        self.accept_data_loss = accept;
    }

    pub(crate) fn accepts_data_loss(&self) -> bool {
        self.accept_data_loss
    }

    /// Makes a fact captured earlier (from this run's journal) available to the actions.
    pub(crate) fn remember(&mut self, key: &str, value: serde_json::Value) {
        self.captured.insert(key.to_owned(), value);
    }

    pub(crate) fn captured(&self, key: &str) -> Option<&serde_json::Value> {
        self.captured.get(key)
    }

    /// Captures a fact: journaled first, then remembered.
    pub(crate) fn capture(
        &mut self,
        key: &str,
        value: serde_json::Value,
    ) -> Result<(), JournalError> {
        self.record(Event::Captured {
            key: key.to_owned(),
            value: value.clone(),
        })?;
        self.remember(key, value);
        Ok(())
    }

    /// The log-shipping settings of `db` as captured before step 1 removed them.
    pub(crate) fn captured_log_shipping(&self, db: &str) -> Option<LogShippingSecondary> {
        self.captured
            .get(&log_shipping_key(db))
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    pub(crate) fn answers(&self) -> Answers {
        self.answers
    }

    /// What is left of the current step's time (at least a millisecond, so a statement sent at the
    /// last moment still gets a clean timeout rather than none).
    pub(crate) fn step_timeout(&self) -> Duration {
        self.step_deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    }

    /// A line of progress for the person watching (stderr; the journal has the details).
    pub(crate) fn progress(&self, line: &str) {
        if !self.quiet {
            say!("      {line}");
        }
    }

    /// Progress of a long step over many items (see `Bar`).
    pub(crate) fn bar(&self, verb: &'static str) -> super::Bar {
        super::Bar::new(verb, self.quiet)
    }

    /// Asks the operator whether to go on (a `pause` step, a step with `confirm = true`), journaling
    /// the answer. `Err(Aborted)` when they say no or cannot be asked.
    pub(crate) async fn confirm_continue(&mut self, message: &str) -> Result<(), StepError> {
        say!("\n{message}");
        let how = super::prompt::confirm(self.answers, "Type `yes` to continue: ", "yes")
            .await
            .map_err(StepError::Aborted)?;
        self.record(Event::Confirmed {
            step: self.step.clone(),
            how: how.to_owned(),
            what: Some("pause".to_owned()),
        })?;
        Ok(())
    }

    /// Runs one rendered command exactly as the plan shows it. Conditional commands (`when`) must be
    /// decided by their action first, then run with [`Session::run_unconditionally`].
    pub(crate) async fn run_command(&mut self, command: &Command) -> Result<(), StepError> {
        match command {
            Command::Sql {
                when: Some(when), ..
            }
            | Command::PowerShell {
                when: Some(when), ..
            } => Err(StepError::Failed(format!(
                "internal error: the conditional command ({when}) reached the executor undecided"
            ))),
            other => self.run_unconditionally(other).await,
        }
    }

    /// Runs every command in order, exactly as rendered; stops at the first failure.
    pub(crate) async fn run_all(&mut self, commands: &[Command]) -> Result<(), StepError> {
        for command in commands {
            self.run_command(command).await?;
        }
        Ok(())
    }

    pub(crate) async fn run_unconditionally(&mut self, command: &Command) -> Result<(), StepError> {
        match command {
            Command::Sql {
                instance,
                database,
                text,
                ..
            } => {
                let batch = if database.eq_ignore_ascii_case("master") {
                    text.clone()
                } else {
                    // Back to master at the end: a session left in a database blocks RESTORE
                    // of that database with 3102.
                    let db = quote::sql_identifier(database)
                        .map_err(|e| StepError::Failed(e.to_string()))?;
                    format!("USE {db};\n{text};\nUSE [master];")
                };
                self.execute(*instance, &batch, self.step_timeout()).await?;
                Ok(())
            }
            Command::PowerShell { text, .. } => {
                self.cmdlet(text, self.step_timeout()).await?;
                Ok(())
            }
            Command::Computed { what, .. } => Err(StepError::Failed(format!(
                "internal error: a computed command ({what}) cannot run as text"
            ))),
            Command::Pause { message } => self.confirm_continue(message).await,
        }
    }

    /// [`Session::execute`] with the current step's timeout.
    pub(crate) async fn execute_in_step(
        &mut self,
        role: Role,
        text: &str,
    ) -> Result<Vec<ResultSet>, StepError> {
        let timeout = self.step_timeout();
        self.execute(role, text, timeout).await
    }

    /// Journals a file copy as one command per batch of files made durable together (issue 11:
    /// a record per file cost a hash and a write each), naming every file, so the audit log still
    /// shows every file moved. A file copied again over a damaged copy is marked "(replaced)".
    pub(crate) fn record_file_copy(
        &mut self,
        from: &Path,
        to: &Path,
        report: &CopyReport,
        started: Instant,
    ) -> Result<(), JournalError> {
        let moved: Vec<String> = report
            .copied
            .iter()
            .cloned()
            .chain(
                report
                    .replaced
                    .iter()
                    .map(|name| format!("{name} (replaced)")),
            )
            .collect();
        for batch in moved.chunks(super::copy::RENAMES_PER_SYNC) {
            self.record(Event::Command {
                step: self.step.clone(),
                target: "filesystem".to_owned(),
                text: format!(
                    "copy {} file(s) from `{}` to `{}`: {}",
                    batch.len(),
                    from.display(),
                    to.display(),
                    batch.join(", ")
                ),
                duration_us: crate::journal::micros_since(started),
                ok: true,
                error: None,
                messages: Vec::new(),
            })?;
        }
        if !report.in_progress.is_empty() {
            self.record(Event::Captured {
                key: "copy_skipped_in_progress".to_owned(),
                value: serde_json::json!(report.in_progress),
            })?;
        }
        Ok(())
    }

    /// A session that journals nothing, for read-only checks.
    pub(crate) fn unjournaled(
        runbook: &'r Runbook,
        host_settings: HostSettings,
        timeouts: Timeouts,
    ) -> Session<'r> {
        Session::new(runbook, host_settings, timeouts, Answers::Ask, true)
    }

    /// Opens the connection to `role` now, bounded by the connect timeout; an instance that does not
    /// answer is reported once, without the retry a read-only query would make.
    pub(crate) async fn connect(&mut self, role: Role) -> Result<(), SqlError> {
        self.connection(role).await.map(|_| ())
    }

    /// Names the step whose commands follow; `retrying` when an earlier attempt of this run started it.
    pub(crate) fn set_step(&mut self, step: &str, timeout: Option<Duration>, retrying: bool) {
        self.step = step.to_owned();
        self.step_deadline = Instant::now() + timeout.unwrap_or(NO_TIMEOUT);
        self.step_limit = timeout;
        self.retrying = retrying;
    }

    /// Whether an earlier attempt of this run started the current step (and may have left it half done).
    pub(crate) fn retrying(&self) -> bool {
        self.retrying
    }

    pub(crate) fn record(&mut self, event: Event) -> Result<(), JournalError> {
        match &mut self.journal {
            Some(journal) => journal.append(event).map(|_| ()),
            None => Ok(()),
        }
    }

    /// Runs a batch that may change state; journaled before success or failure is known to anyone.
    pub(crate) async fn execute(
        &mut self,
        role: Role,
        text: &str,
        timeout: Duration,
    ) -> Result<Vec<ResultSet>, StepError> {
        let started = Instant::now();
        // Whatever was caught before belongs to no statement of this run's journal.
        crate::sql::messages::take();
        let result = match self.connection(role).await {
            Ok(conn) => conn.batch(text, timeout).await,
            Err(e) => Err(e),
        };
        self.journal_sql(role, text, started, &result)?;
        self.forget_broken(role, &result);
        match result {
            // The step's own timeout ran out, not a statement's: say so, and that the server may
            // still be working on it (the next attempt examines the step before doing anything).
            Err(SqlError::Timeout { instance, .. })
                if Instant::now() >= self.step_deadline && self.step_limit.is_some() =>
            {
                Err(StepError::Failed(format!(
                    "the step's timeout of {} ran out while `{instance}` was still working on `{}`; the statement may still complete on the server",
                    crate::sql::shown(self.step_limit.unwrap_or_default()),
                    first_line(text)
                )))
            }
            other => Ok(other?),
        }
    }

    /// Runs a read-only query with parameters. Transport failures are retried once on a fresh
    /// connection, because reading twice is harmless.
    pub(crate) async fn query(
        &mut self,
        role: Role,
        text: &str,
        params: &[Param<'_>],
    ) -> Result<ResultSet, StepError> {
        let mut sets = self.query_sets(role, text, params).await?;
        Ok(if sets.is_empty() {
            ResultSet::default()
        } else {
            sets.remove(0)
        })
    }

    /// [`Session::query`] for a batch of read-only statements: every result set, in order.
    pub(crate) async fn query_sets(
        &mut self,
        role: Role,
        text: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<ResultSet>, StepError> {
        // A read-only question gets its own bound, and never more than the step has left.
        let timeout = self.timeouts.query.min(self.step_timeout());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            crate::sql::messages::take();
            let result = match self.connection(role).await {
                Ok(conn) => conn.query(text, params, timeout).await,
                Err(e) => Err(e),
            };
            self.journal_sql(role, text, started, &result)?;
            self.forget_broken(role, &result);
            match result {
                Err(e) if e.is_transport() && attempt == 1 => continue,
                Err(e) => return Err(e.into()),
                Ok(sets) => return Ok(sets),
            }
        }
    }

    /// The remoting session the current host opened, if the runbook asks for one.
    pub(crate) fn remoting_session(&self) -> Option<&serde_json::Value> {
        self.remoting.as_ref()
    }

    /// Runs one cmdlet through the host, starting it (and importing the module) on first use. A
    /// failed cmdlet is `Err(StepError::Cmdlet)`.
    pub(crate) async fn cmdlet(
        &mut self,
        command: &str,
        timeout: Duration,
    ) -> Result<Invocation, StepError> {
        let invocation = self.invoke_logged(command, timeout).await?;
        succeeded(command, invocation)
    }

    async fn invoke_logged(
        &mut self,
        command: &str,
        timeout: Duration,
    ) -> Result<Invocation, StepError> {
        if self.host.is_none() {
            let started = Instant::now();
            // A remoting session's password reaches the host through its environment only.
            let secret = match self
                .runbook
                .powershell
                .remote
                .as_ref()
                .and_then(|r| r.credential.as_ref())
            {
                Some(c) => {
                    let who = format!("Windows account `{}` (PowerShell remoting)", c.user);
                    let password = crate::secret::password(&who, &c.password_env).ok_or_else(|| {
                        StepError::Failed(format!(
                            "no password for the remoting session's account `{}`: set the environment variable {} (or run pcfail at a terminal to be asked)",
                            c.user, c.password_env
                        ))
                    })?;
                    Some((c.password_env.as_str(), password))
                }
                None => None,
            };
            let mut host = PowerShell::start(&self.host_settings, secret).await?;
            // With `[powershell.remote]`, everything from here on, the module's import included,
            // runs in a session on that computer.
            self.remoting = None;
            if let Some(remote) = &self.runbook.powershell.remote {
                let shown = crate::powershell::remote_session_command(remote);
                let mut result = host.open_remote(remote, timeout).await;
                // Where the cmdlets ran, as the host saw the session, goes into the journal.
                if let Ok(opened) = &mut result
                    && opened.error.is_none()
                    && let Some(session) = opened.output.first()
                {
                    let line = format!("remoting session: {session}");
                    self.remoting = Some(session.clone());
                    opened.verbose.push(line);
                }
                self.journal_cmdlet(&shown, started, &result)?;
                succeeded(&shown, result?)?;
            }
            let import = format!(
                "Import-Module -Name {}",
                quote::ps_string(self.runbook.powershell.module.name())
            );
            let result = host.invoke(&import, timeout).await;
            self.journal_cmdlet(&import, started, &result)?;
            succeeded(&import, result?)?;
            self.host = Some(host);
        }
        let host = self.host.as_mut().expect("started above");
        let started = Instant::now();
        let result = host.invoke(command, timeout).await;
        self.journal_cmdlet(command, started, &result)?;
        if result.is_err() {
            // A host that failed is gone; the next cmdlet starts a fresh one.
            if let Some(host) = self.host.take() {
                self.record_host_streams(&host)?;
            }
        }
        match result {
            // The host was given what was left of the step, so its own message would name that
            // remainder ("within 1s" under a 2s step timeout). Name the runbook's timeout instead,
            // as `execute` does for SQL (found by the fault matrix, issue 9).
            Err(host @ HostError::Timeout { .. })
                if Instant::now() >= self.step_deadline && self.step_limit.is_some() =>
            {
                Err(StepError::HostStopped {
                    what: format!(
                        "the step's timeout of {} ran out while `{command}` was still running; the PowerShell host was stopped",
                        crate::sql::shown(self.step_limit.unwrap_or_default())
                    ),
                    host,
                })
            }
            // The host's own message does not say what it was running when it died; the
            // operator needs the cmdlet to judge whether it took effect (issue 9).
            Err(host @ HostError::Exited { .. }) => Err(StepError::HostStopped {
                what: format!("`{command}` did not finish: {host}"),
                host,
            }),
            other => Ok(other?),
        }
    }

    /// Closes everything, keeping the host's stderr and stray output in the journal.
    pub(crate) async fn close(mut self) -> Result<(), JournalError> {
        self.stop_host().await?;
        for (_, conn) in std::mem::take(&mut self.sql) {
            conn.close().await;
        }
        Ok(())
    }

    /// Anchors the journal's and the audit log's tips on the backup instance (`crate::anchor`),
    /// after the run's last record: the statement is not journaled, since journaling it would move
    /// the tip. `Ok(None)` when there is no journal.
    pub(crate) async fn anchor(&mut self) -> Result<Option<crate::anchor::Anchor>, SqlError> {
        let Some(journal) = &self.journal else {
            return Ok(None);
        };
        let (seq, sha256) = journal.tip();
        let (audit_seq, audit_sha256) = journal.audit_tip().unwrap_or((0, ""));
        let anchor = crate::anchor::Anchor {
            run: journal.run().to_owned(),
            seq,
            sha256: sha256.to_owned(),
            audit_seq,
            audit_sha256: audit_sha256.to_owned(),
        };
        let timeout = self.timeouts.query;
        let conn = self.connection(Role::Backup).await?;
        crate::anchor::write(conn, &anchor, timeout).await?;
        Ok(Some(anchor))
    }

    /// Stops the PowerShell host, if one runs, keeping its stderr and stray output in the journal
    /// (a run does this before its closing record, so the journal ends with how the run ended).
    pub(crate) async fn stop_host(&mut self) -> Result<(), JournalError> {
        if let Some(host) = self.host.take() {
            self.record_host_streams(&host)?;
            host.close().await;
        }
        Ok(())
    }

    fn record_host_streams(&mut self, host: &PowerShell) -> Result<(), JournalError> {
        let stderr = host.stderr_all();
        let stray = host.stray_output();
        if stderr.is_empty() && stray.is_empty() {
            return Ok(());
        }
        self.record(Event::Captured {
            key: "powershell_streams".to_owned(),
            value: serde_json::json!({ "stderr": stderr, "stdout_other": stray }),
        })
    }

    async fn connection(&mut self, role: Role) -> Result<&mut Sql, SqlError> {
        if !self.sql.contains_key(&role) {
            let instance =
                self.runbook
                    .instances
                    .get(&role)
                    .ok_or_else(|| SqlError::Connection {
                        instance: role.key().to_owned(),
                        message: "the runbook describes no such instance".to_owned(),
                    })?;
            let conn = Sql::connect(instance, self.timeouts.connect).await?;
            // The login's own chatter (database context, language) belongs to no statement.
            crate::sql::messages::take();
            self.sql.insert(role, conn);
        }
        Ok(self.sql.get_mut(&role).expect("inserted above"))
    }

    fn forget_broken<T>(&mut self, role: Role, result: &Result<T, SqlError>) {
        if matches!(result, Err(e) if e.is_transport()) {
            self.sql.remove(&role);
        }
    }

    fn journal_sql<T>(
        &mut self,
        role: Role,
        text: &str,
        started: Instant,
        result: &Result<T, SqlError>,
    ) -> Result<(), JournalError> {
        let error = result.as_ref().err().map(|e| match e {
            SqlError::Server { error, .. } | SqlError::Login { error, .. } => {
                serde_json::to_value(error).expect("server errors serialize")
            }
            other => serde_json::Value::String(other.to_string()),
        });
        self.record(Event::Command {
            step: self.step.clone(),
            target: role.key().to_owned(),
            text: text.to_owned(),
            duration_us: crate::journal::micros_since(started),
            ok: result.is_ok(),
            error,
            messages: crate::sql::messages::take(),
        })
    }

    fn journal_cmdlet(
        &mut self,
        command: &str,
        started: Instant,
        result: &Result<Invocation, HostError>,
    ) -> Result<(), JournalError> {
        let (ok, error, messages) = match result {
            Ok(inv) => (
                inv.error.is_none(),
                inv.error
                    .as_ref()
                    .map(|e| serde_json::to_value(e).expect("cmdlet errors serialize")),
                inv.warnings.iter().chain(&inv.verbose).cloned().collect(),
            ),
            Err(e) => (
                false,
                Some(serde_json::Value::String(e.to_string())),
                Vec::new(),
            ),
        };
        self.record(Event::Command {
            step: self.step.clone(),
            target: "powershell".to_owned(),
            text: command.to_owned(),
            duration_us: crate::journal::micros_since(started),
            ok,
            error,
            messages,
        })
    }
}

/// `invocation` of `command`, or the command's failure as a step error when it failed.
fn succeeded(command: &str, invocation: Invocation) -> Result<Invocation, StepError> {
    match invocation.error {
        Some(error) => Err(StepError::Cmdlet {
            command: command.to_owned(),
            error: Box::new(error),
        }),
        None => Ok(invocation),
    }
}

/// The first line of a statement, for a message.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// The `Event::Captured` key of a database's log-shipping settings.
pub(crate) fn log_shipping_key(db: &str) -> String {
    format!("log_shipping:{db}")
}
