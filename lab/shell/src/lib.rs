//! A simulated Skype for Business Management Shell speaking pcfail's PowerShell host protocol
//! (docs/powershell-host-protocol.md). `pcfail lab shell --dir DIR [powershell args...]` calls [`run`];
//! pcfail's PowerShell adapter cannot tell it from `powershell.exe -EncodedCommand <host.ps1>` with
//! the SkypeForBusiness module, which is the point: the lab is worth exactly its fidelity.
//!
//! ```text
//! powershell args -> args (validated like powershell.exe) -> [no console: console] -> READY line
//! stdin line -> protocol (JSON request) -> shell: parse (one statement, literals only)
//!     -> command lookup (module imported?) -> binding (parameter sets, conversions)
//!     [remote request: remoting (computer, its data center, credential) -> later commands "there"]
//!     -> faults.json (error / hang / crash) -> -WhatIf / confirmation -> cmdlets/*
//!          |-> cms.json (pool state, active servers)
//!          '-> sql (tiberius to the lab's SQL instances: mirroring, reachability)
//!     -> protocol (PCFAIL-RESULT line) -> stdout; stray host text -> stdout / stderr (clixml)
//! ```
//!
//! It does not share code with pcfail's client side (so a bug in one cannot cancel a bug in the other),
//! nor with the lab engine: it reads lab.json and faults.json with its own types.

mod args;
mod binding;
mod clixml;
mod cmdlets;
mod cms;
mod console;
mod error;
mod faults;
mod manifest;
mod parse;
mod protocol;
mod remoting;
mod shell;
mod sql;

use std::io::{BufRead, Write};
use std::path::Path;

use crate::args::Script;
use crate::manifest::LabManifest;
use crate::protocol::{Response, parse_request, ready_line};
use crate::shell::{Outcome, Shell};
use crate::sql::Sql;

/// Runs the shell: reads requests from `input`, writes responses to `output`, diagnostics to `errors`.
///
/// `powershell_args` are the trailing PowerShell arguments (`-NoProfile -NonInteractive
/// -ExecutionPolicy Bypass -EncodedCommand <host script>`, or `-File <path>`), validated as
/// powershell.exe does; with `-EncodedCommand`, stray host text goes to `errors` as CLIXML. Returns the process exit
/// code: 0 at end of input, 64 for a bad command line, 1 when the lab cannot be used or a
/// `"crash"` fault fires. A crash returns at once, mid-request and without a response, so the caller
/// must exit with the returned code immediately, as a crashing process would. A `"hang"` fault (or a
/// confirmation prompt in an interactive session) never returns.
pub fn run(
    lab_dir: &Path,
    powershell_args: &[String],
    mut input: impl BufRead,
    mut output: impl Write,
    mut errors: impl Write,
) -> i32 {
    let args = match args::parse(powershell_args) {
        Ok(args) => args,
        Err(e) => {
            let _ = errors.write_all(e.message.as_bytes());
            let _ = errors.flush();
            return e.exit_code;
        }
    };
    // Fail before READY if the lab is not there: every cmdlet would fail anyway, and the adapter
    // reports a host that dies at start as a host failure, which is what this is.
    if let Err(e) = LabManifest::load(lab_dir) {
        let _ = writeln!(errors, "error: {e}");
        return 1;
    }
    let sql = match Sql::new() {
        Ok(sql) => sql,
        Err(e) => {
            let _ = writeln!(errors, "error: cannot start the SQL client runtime: {e}");
            return 1;
        }
    };
    // A host without a console runs its script's first statements before it can report ready; the
    // ones that need a console fail there (console.rs).
    if console::missing(lab_dir) {
        // PowerShell names a script file in an error's position, and "line" for a command given
        // with -EncodedCommand ("At line:3 char:1").
        let (script, shown) = match &args.script {
            Script::File { path, .. } => match std::fs::read_to_string(path) {
                Ok(script) => (script, path.display().to_string()),
                Err(e) => {
                    let _ = writeln!(errors, "error: cannot read `{}`: {e}", path.display());
                    return 1;
                }
            },
            Script::Encoded(text) => (text.clone(), "line".to_owned()),
        };
        let (stderr, ends) = console::run_without_console(&script, &shown);
        for text in stderr {
            let _ = errors.write_all(text.as_bytes());
        }
        let _ = errors.flush();
        if ends {
            return 1;
        }
    }
    let mut shell = Shell::new(lab_dir.to_path_buf(), args.non_interactive, sql);
    // Started with -EncodedCommand, PowerShell writes its streams' records to stderr as CLIXML.
    let mut stderr = Stderr {
        serialized: matches!(args.script, Script::Encoded(_)),
        marked: false,
    };
    if writeln!(output, "{}", ready_line())
        .and_then(|()| output.flush())
        .is_err()
    {
        return 1;
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => return 0,
            Ok(_) => {}
            Err(e) => {
                let _ = writeln!(errors, "error: cannot read the request stream: {e}");
                return 1;
            }
        }
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        let (response, host, stray_errors) = match parse_request(&line) {
            Err(malformed) => (Response::protocol_error(malformed), Vec::new(), Vec::new()),
            Ok(request) => match shell.handle(request) {
                Outcome::Respond {
                    response,
                    host,
                    stderr,
                } => (*response, host, stderr),
                Outcome::Crash => {
                    let _ = output.flush();
                    let _ = errors.flush();
                    return 1;
                }
                Outcome::Hang => {
                    let _ = output.flush();
                    let _ = errors.flush();
                    loop {
                        std::thread::park();
                    }
                }
            },
        };
        for text in stray_errors {
            let _ = stderr.write(&mut errors, &text);
        }
        let _ = errors.flush();
        let written = host
            .iter()
            .try_for_each(|text| writeln!(output, "{text}"))
            .and_then(|()| writeln!(output, "{}", response.to_line()))
            .and_then(|()| output.flush());
        if written.is_err() {
            // Nobody is listening any more: like a host whose stdout pipe broke.
            return 1;
        }
    }
}

/// The host's stderr: plain lines, or CLIXML records after one marker line.
struct Stderr {
    serialized: bool,
    marked: bool,
}

impl Stderr {
    fn write(&mut self, errors: &mut impl Write, text: &str) -> std::io::Result<()> {
        if !self.serialized {
            return writeln!(errors, "{text}");
        }
        if !self.marked {
            writeln!(errors, "{}", clixml::MARKER)?;
            self.marked = true;
        }
        writeln!(errors, "{}", clixml::record(text))
    }
}
