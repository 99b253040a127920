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
use crate::parse::{ParseError, parse_command};
use crate::protocol::Response;
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
}

impl Shell {
    pub(crate) fn new(lab_dir: PathBuf, non_interactive: bool, sql: Sql) -> Self {
        Shell {
            lab_dir,
            non_interactive,
            session: Session::default(),
            sql,
        }
    }

    pub(crate) fn execute(&mut self, id: u64, text: &str) -> Outcome {
        let failed = |error: ErrorRecord| Outcome::Respond {
            response: Box::new(Response {
                id: Some(id),
                ok: false,
                error: Some(error),
                ..Response::default()
            }),
            host: Vec::new(),
            stderr: Vec::new(),
        };
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
