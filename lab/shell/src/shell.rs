//! [`Shell`]: runs one request's PowerShell text the way host.ps1 plus the real module would, and
//! turns the result into an [`Outcome`].
//!
//! Order of checks, as PowerShell's own: parse, command lookup (module imported?), parameter
//! binding, then execution. Injected faults strike at execution; -WhatIf and the confirmation prompt
//! come just before the cmdlet's own work. The shell never panics on input: every refusal is a
//! response.

use std::path::PathBuf;

use crate::binding::bind;
use crate::cmdlets::{Cmdlet, Invocation, Session, is_not_simulated};
use crate::error::ErrorRecord;
use crate::faults::{self, Fault};
use crate::manifest::LabManifest;
use crate::parse::{ParseError, parse_command};
use crate::protocol::{Body, RemoteRequest, Request, Response};
use crate::remoting::{self, Remote};
use crate::sql::Sql;

/// What the process must do after a request.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Write `host` lines to stdout, `stderr` lines to stderr, then the response.
    Respond {
        response: Box<Response>,
        host: Vec<String>,
        stderr: Vec<String>,
    },
    /// Never answer (an injected hang, or a prompt nobody will answer in an interactive host).
    Hang,
    /// Exit with code 1 without answering (an injected crash).
    Crash,
}

pub(crate) struct Shell {
    lab_dir: PathBuf,
    non_interactive: bool,
    session: Session,
    sql: Sql,
    /// The remoting session every command runs in, once a `remote` request opened it.
    remote: Option<Remote>,
}

impl Shell {
    pub(crate) fn new(lab_dir: PathBuf, non_interactive: bool, sql: Sql) -> Self {
        Shell {
            lab_dir,
            non_interactive,
            session: Session::default(),
            sql,
            remote: None,
        }
    }

    /// Answers one request.
    pub(crate) fn handle(&mut self, request: Request) -> Outcome {
        match request.body {
            Body::Command(text) => self.execute(request.id, &text),
            Body::Remote(remote) => self.open_remote(request.id, &remote),
        }
    }

    /// Opens the remoting session (remoting.rs); host.ps1 refuses a second one. The remote
    /// session starts without the module, whatever this one imported. Faults name `New-PSSession`.
    fn open_remote(&mut self, id: u64, request: &RemoteRequest) -> Outcome {
        let failed = |error| failed(id, error);
        if self.remote.is_some() {
            return failed(ErrorRecord::thrown("A remoting session is already open."));
        }
        match faults::take(&self.lab_dir, "New-PSSession") {
            Ok(Some(Fault::Crash)) => return Outcome::Crash,
            Ok(Some(Fault::Hang)) => return Outcome::Hang,
            Ok(Some(Fault::Error(message))) => {
                return failed(ErrorRecord::new(
                    "System.Management.Automation.Remoting.PSRemotingTransportException",
                    message,
                    "PSSessionOpenFailed",
                    "OpenError",
                    Some(request.computer.clone()),
                ));
            }
            Ok(None) | Err(_) => {}
        }
        let manifest = match LabManifest::load(&self.lab_dir) {
            Ok(m) => m,
            Err(e) => return failed(crate::cmdlets::lab_error(e.to_string())),
        };
        match remoting::open(&manifest, &self.sql, request, |name| {
            std::env::var(name).ok()
        }) {
            Ok((remote, summary)) => {
                self.remote = Some(remote);
                self.session = Session::default();
                Outcome::Respond {
                    response: Box::new(Response {
                        id: Some(id),
                        ok: true,
                        output: vec![summary],
                        ..Response::default()
                    }),
                    host: Vec::new(),
                    stderr: Vec::new(),
                }
            }
            Err(error) => failed(error),
        }
    }

    pub(crate) fn execute(&mut self, id: u64, text: &str) -> Outcome {
        let failed = |error| failed(id, error);
        let command = match parse_command(text) {
            Ok(Some(command)) => command,
            Ok(None) => {
                return Outcome::Respond {
                    response: Box::new(Response {
                        id: Some(id),
                        ok: true,
                        ..Response::default()
                    }),
                    host: Vec::new(),
                    stderr: Vec::new(),
                };
            }
            Err(e) => return failed(parse_error_record(&e)),
        };
        // A broken session fails every command before it is looked up (that happens remotely).
        if let Some(remote) = &self.remote {
            let broken = LabManifest::load(&self.lab_dir)
                .map_err(|e| crate::cmdlets::lab_error(e.to_string()))
                .and_then(|manifest| remoting::still_open(&manifest, &self.sql, remote));
            if let Err(error) = broken {
                return failed(error);
            }
        }
        let Some(cmdlet) = Cmdlet::find(&command.name, &self.session) else {
            if is_not_simulated(&command.name, &self.session) {
                return failed(ErrorRecord::new(
                    "pcfail.NotSimulated",
                    format!("The lab shell does not simulate '{}'.", command.name),
                    "pcfail.NotSimulated",
                    "NotImplemented",
                    Some(command.name.clone()),
                ));
            }
            return failed(ErrorRecord::command_not_found(&command.name));
        };
        let spec = cmdlet.spec();
        let bound = match bind(spec, &command) {
            Ok(bound) => bound,
            Err(e) => return failed(e),
        };
        let mut stderr = Vec::new();
        match faults::take(&self.lab_dir, spec.name) {
            Ok(None) => {}
            Ok(Some(Fault::Crash)) => return Outcome::Crash,
            Ok(Some(Fault::Hang)) => return Outcome::Hang,
            Ok(Some(Fault::Error(message))) => {
                return failed(ErrorRecord::new(
                    "Microsoft.Rtc.Management.ManagementException",
                    message,
                    format!(
                        "Microsoft.Rtc.Management.ManagementException,{}",
                        spec.type_name
                    ),
                    "NotSpecified",
                    None,
                ));
            }
            // A broken faults.json must not break the shell; say so where a human will see it.
            Err(e) => stderr.push(format!("pcfail lab shell: ignoring fault rules: {e}")),
        }
        let verbose_wanted = bound.switch("Verbose");
        let mut host = Vec::new();
        if bound.switch("WhatIf") {
            let target = bound
                .string("Identity")
                .or_else(|| bound.string("SqlServerFqdn"))
                .unwrap_or_default();
            host.push(format!(
                "What if: Performing the operation \"{}\" on target \"{target}\".",
                spec.name
            ));
            return Outcome::Respond {
                response: Box::new(Response {
                    id: Some(id),
                    ok: true,
                    ..Response::default()
                }),
                host,
                stderr,
            };
        }
        let asks = match bound.get("Confirm") {
            Some(crate::parse::Value::Bool(confirm)) => *confirm,
            _ => cmdlet.confirms_by_default() && !bound.switch("Force"),
        };
        if asks {
            if !self.non_interactive {
                // An interactive host would wait on the console for an answer that never comes.
                return Outcome::Hang;
            }
            return failed(ErrorRecord::non_interactive_prompt(spec.type_name));
        }
        let mut inv = Invocation {
            lab_dir: &self.lab_dir,
            session: &mut self.session,
            sql: &self.sql,
            bound,
            spec,
            output: Vec::new(),
            warnings: Vec::new(),
            verbose: Vec::new(),
            host,
            stderr,
        };
        let result = cmdlet.run(&mut inv);
        if let Some(remote) = &self.remote {
            remoting::mark(&mut inv.output, remote);
        }
        let response = Response {
            id: Some(id),
            ok: result.is_ok(),
            output: inv.output,
            warnings: inv.warnings,
            verbose: if verbose_wanted {
                inv.verbose
            } else {
                Vec::new()
            },
            error: result.err(),
        };
        Outcome::Respond {
            response: Box::new(response),
            host: inv.host,
            stderr: inv.stderr,
        }
    }
}

/// The response of a request that failed with `error`.
fn failed(id: u64, error: ErrorRecord) -> Outcome {
    Outcome::Respond {
        response: Box::new(Response {
            id: Some(id),
            ok: false,
            error: Some(error),
            ..Response::default()
        }),
        host: Vec::new(),
        stderr: Vec::new(),
    }
}

fn parse_error_record(error: &ParseError) -> ErrorRecord {
    match error {
        ParseError::Syntax { .. } => ErrorRecord::new(
            "pcfail.ParseError",
            error.to_string(),
            "ParseException",
            "ParserError",
            None,
        ),
        ParseError::MultipleStatements { .. } => ErrorRecord::new(
            "pcfail.MultipleStatements",
            error.to_string(),
            "pcfail.MultipleStatements",
            "InvalidArgument",
            None,
        ),
        ParseError::Unsupported { .. } => ErrorRecord::new(
            "pcfail.UnsupportedSyntax",
            error.to_string(),
            "pcfail.UnsupportedSyntax",
            "NotImplemented",
            None,
        ),
    }
}
