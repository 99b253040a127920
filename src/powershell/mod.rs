//! The PowerShell adapter: one long-lived host process per run, one request per line.
//!
//! It owns starting the host (`<program> <args> -NoProfile -NonInteractive -ExecutionPolicy Bypass
//! -EncodedCommand <assets/host.ps1 as base64 of UTF-16LE>`), framing requests and responses
//! (docs/powershell-host-protocol.md), per-request timeouts that kill the process, and keeping the
//! host's stderr and stray output for the journal (decoded from CLIXML, `clixml.rs`). It does not
//! build command text: the actions do, through the one quoting function in `quote.rs`.
//!
//! Why one process: importing the SkypeForBusiness module is slow (reportedly; reference I.3) and the
//! run's overhead should be near zero. Why stdout and stderr are read by their own tasks: a child that
//! fills one pipe while we wait on the other would deadlock. Why `-EncodedCommand` and no script file:
//! an execution policy set by Group Policy overrides `-ExecutionPolicy Bypass` and can refuse to run
//! any `.ps1` file, but an execution policy governs script files, not a command given on the command
//! line; and nothing is written to disk that someone else could change before it runs.

mod clixml;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::quote;
use crate::runbook::Remote;

/// The host script, shipped inside the binary and handed to PowerShell on its command line.
const HOST_SCRIPT: &str = include_str!("../../assets/host.ps1");
const RESULT_PREFIX: &str = "PCFAIL-RESULT ";
const READY_PREFIX: &str = "PCFAIL-READY ";
/// How many stderr lines an error message shows; the journal keeps them all.
const STDERR_TAIL_LINES: usize = 12;

/// How to start the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HostSettings {
    /// `powershell.exe` in production; the `pcfail` binary for the lab.
    pub program: PathBuf,
    /// Arguments placed before the standard ones (the lab: `lab shell --dir DIR`).
    pub args: Vec<String>,
    /// Environment variables the host must not inherit (the runbook's password variables: the
    /// Management Shell needs none of them).
    pub env_remove: Vec<String>,
    pub startup_timeout: Duration,
}

/// The ErrorRecord of a failed command, as the host reports it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub(crate) struct CmdletError {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    #[serde(default)]
    pub fully_qualified_error_id: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub target: Option<String>,
}

/// What one request produced. `error` is `Some` exactly when the command failed.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub(crate) struct Invocation {
    pub output: Vec<serde_json::Value>,
    pub warnings: Vec<String>,
    pub verbose: Vec<String>,
    pub error: Option<CmdletError>,
    pub duration: Duration,
}

#[derive(Deserialize)]
struct Response {
    id: Option<u64>,
    ok: bool,
    #[serde(default)]
    output: Vec<serde_json::Value>,
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default)]
    verbose: Vec<String>,
    error: Option<CmdletError>,
}

/// The host itself failed (as opposed to a command failing inside it).
#[derive(Debug, thiserror::Error)]
pub(crate) enum HostError {
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`{program}` did not become ready within {}s", .after.as_secs())]
    NotReady {
        program: String,
        after: Duration,
        stderr: Vec<String>,
    },
    #[error("the PowerShell host exited unexpectedly ({status})")]
    Exited { status: String, stderr: Vec<String> },
    #[error("`{command}` did not finish within {}s; the PowerShell host was stopped", .after.as_secs())]
    Timeout {
        command: String,
        after: Duration,
        stderr: Vec<String>,
    },
    #[error("the PowerShell host broke the protocol: {message}")]
    Protocol { message: String },
}

impl HostError {
    /// The last lines the host wrote to stderr, for a fenced excerpt under the message.
    pub(crate) fn stderr_tail(&self) -> &[String] {
        match self {
            HostError::NotReady { stderr, .. }
            | HostError::Exited { stderr, .. }
            | HostError::Timeout { stderr, .. } => stderr,
            _ => &[],
        }
    }
}

enum Line {
    Ready,
    Result(String),
}

/// A running host.
pub(crate) struct PowerShell {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<Line>,
    stderr: Arc<Mutex<Vec<String>>>,
    stray: Arc<Mutex<Vec<String>>>,
    next_id: u64,
    dead: bool,
}

impl PowerShell {
    /// Starts the process with the host script on its command line and waits for its READY line.
    /// `secret` is a variable and its value for the host's environment only (the remoting
    /// session's password, which the host reads and clears).
    pub(crate) async fn start(
        settings: &HostSettings,
        secret: Option<(&str, String)>,
    ) -> Result<PowerShell, HostError> {
        let program = settings.program.display().to_string();
        let mut command = Command::new(&settings.program);
        for name in &settings.env_remove {
            command.env_remove(name);
        }
        if let Some((name, value)) = secret {
            command.env(name, value);
        }
        let mut child = command
            .args(&settings.args)
            .args(standard_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| HostError::Spawn {
                program: program.clone(),
                source,
            })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout was piped");
        let stderr_pipe = child.stderr.take().expect("stderr was piped");

        let (tx, lines) = mpsc::unbounded_channel();
        let stray = Arc::new(Mutex::new(Vec::new()));
        let stray_writer = Arc::clone(&stray);
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let line = line.trim_end_matches('\r').to_owned();
                let item = if let Some(json) = line.strip_prefix(RESULT_PREFIX) {
                    Line::Result(json.to_owned())
                } else if line.starts_with(READY_PREFIX) {
                    Line::Ready
                } else {
                    stray_writer.lock().expect("stray lock").push(line);
                    continue;
                };
                if tx.send(item).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_writer = Arc::clone(&stderr);
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr_pipe).lines();
            let mut decoder = clixml::Decoder::default();
            while let Ok(Some(line)) = reader.next_line().await {
                let lines = decoder.lines(line.trim_end_matches('\r'));
                stderr_writer.lock().expect("stderr lock").extend(lines);
            }
        });

        let mut host = PowerShell {
            child,
            stdin,
            lines,
            stderr,
            stray,
            next_id: 1,
            dead: false,
        };
        match tokio::time::timeout(settings.startup_timeout, host.lines.recv()).await {
            Ok(Some(Line::Ready)) => Ok(host),
            Ok(Some(Line::Result(_))) => Err(HostError::Protocol {
                message: "a result arrived before the READY line".to_owned(),
            }),
            Ok(None) => Err(host.exited().await),
            Err(_) => {
                host.kill().await;
                Err(HostError::NotReady {
                    program,
                    after: settings.startup_timeout,
                    stderr: host.stderr_tail(),
                })
            }
        }
    }

    /// Sends one command and waits for its response. `Ok` with `error: Some(..)` is a failed
    /// command; `Err` is a failed host, which is then unusable.
    pub(crate) async fn invoke(
        &mut self,
        command: &str,
        timeout: Duration,
    ) -> Result<Invocation, HostError> {
        self.exchange("command", command.into(), command, timeout)
            .await
    }

    /// Opens the PowerShell remoting session every later request runs in (protocol: the `remote`
    /// request). The password, if any, stays in the variable the runbook names: the request carries
    /// its name only.
    pub(crate) async fn open_remote(
        &mut self,
        remote: &Remote,
        timeout: Duration,
    ) -> Result<Invocation, HostError> {
        let request = serde_json::json!({
            "computer": remote.computer,
            "authentication": remote.authentication.name(),
            "use_ssl": remote.use_ssl,
            "port": remote.port,
            "configuration_name": remote.configuration_name,
            "user": remote.credential.as_ref().map(|c| &c.user),
            "password_env": remote.credential.as_ref().map(|c| &c.password_env),
        });
        self.exchange("remote", request, &remote_session_command(remote), timeout)
            .await
    }

    /// Sends one request, `{"id": <next>, <kind>: <body>}` (`shown` names it in errors), and waits
    /// for its response.
    async fn exchange(
        &mut self,
        kind: &str,
        body: serde_json::Value,
        shown: &str,
        timeout: Duration,
    ) -> Result<Invocation, HostError> {
        if self.dead {
            return Err(HostError::Protocol {
                message: "the host was stopped after an earlier failure".to_owned(),
            });
        }
        let id = self.next_id;
        self.next_id += 1;
        let started = Instant::now();
        let mut request = serde_json::json!({ "id": id, kind: body }).to_string();
        request.push('\n');
        let stdin = self.stdin.as_mut().ok_or(HostError::Protocol {
            message: "stdin is closed".to_owned(),
        })?;
        if stdin.write_all(request.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
            return Err(self.exited().await);
        }
        let line = match tokio::time::timeout(timeout, self.lines.recv()).await {
            Ok(Some(Line::Result(json))) => json,
            Ok(Some(Line::Ready)) => {
                self.kill().await;
                return Err(HostError::Protocol {
                    message: "an unexpected second READY line".to_owned(),
                });
            }
            Ok(None) => return Err(self.exited().await),
            Err(_) => {
                self.kill().await;
                return Err(HostError::Timeout {
                    command: shown.to_owned(),
                    after: timeout,
                    stderr: self.stderr_tail(),
                });
            }
        };
        let response: Response = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                self.kill().await;
                return Err(HostError::Protocol {
                    message: format!("an unreadable response ({e})"),
                });
            }
        };
        if response.id != Some(id) {
            self.kill().await;
            return Err(HostError::Protocol {
                message: format!(
                    "the response answers request {:?}, not request {id}",
                    response.id
                ),
            });
        }
        let error = match (response.ok, response.error) {
            (true, _) => None,
            (false, Some(e)) => Some(e),
            (false, None) => Some(CmdletError {
                kind: "pcfail.UnknownError".to_owned(),
                message: "the host reported a failure without an error record".to_owned(),
                fully_qualified_error_id: String::new(),
                category: String::new(),
                target: None,
            }),
        };
        Ok(Invocation {
            output: response.output,
            warnings: response.warnings,
            verbose: response.verbose,
            error,
            duration: started.elapsed(),
        })
    }

    /// Everything the host wrote to stderr so far (for the journal).
    pub(crate) fn stderr_all(&self) -> Vec<String> {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// Stdout lines that were not protocol messages (for the journal).
    pub(crate) fn stray_output(&self) -> Vec<String> {
        self.stray.lock().expect("stray lock").clone()
    }

    /// Closes stdin (the host exits 0) and waits briefly; kills it if it lingers.
    pub(crate) async fn close(mut self) {
        self.stdin.take();
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            self.kill().await;
        }
    }

    fn stderr_tail(&self) -> Vec<String> {
        let all = self.stderr.lock().expect("stderr lock");
        all[all.len().saturating_sub(STDERR_TAIL_LINES)..].to_vec()
    }

    async fn kill(&mut self) {
        self.dead = true;
        let _ = self.child.kill().await;
    }

    async fn exited(&mut self) -> HostError {
        self.dead = true;
        let status = match tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await {
            Ok(Ok(status)) => status.to_string(),
            _ => {
                let _ = self.child.kill().await;
                "did not exit; killed".to_owned()
            }
        };
        // Give the stderr reader a moment to drain what the dying host wrote.
        tokio::time::sleep(Duration::from_millis(50)).await;
        HostError::Exited {
            status,
            stderr: self.stderr_tail(),
        }
    }
}

/// The remoting session as PowerShell would be told to open it: what the plan shows and the journal
/// records for the `remote` request. The credential appears as its account and the variable its
/// password comes from, never the password.
pub(crate) fn remote_session_command(remote: &Remote) -> String {
    let mut text = format!(
        "New-PSSession -ComputerName {} -Authentication {}",
        quote::ps_string(&remote.computer),
        remote.authentication.name()
    );
    if remote.use_ssl {
        text.push_str(" -UseSSL");
    }
    if let Some(port) = remote.port {
        text.push_str(&format!(" -Port {port}"));
    }
    if let Some(name) = &remote.configuration_name {
        text.push_str(&format!(" -ConfigurationName {}", quote::ps_string(name)));
    }
    if let Some(credential) = &remote.credential {
        text.push_str(&format!(
            " -Credential (account {}, password from ${{env:{}}})",
            quote::ps_string(&credential.user),
            credential.password_env
        ));
    }
    text
}

/// What follows the runbook's own arguments: PowerShell's switches and the host script, encoded as
/// `-EncodedCommand` takes it (base64 of UTF-16LE text, reference I.2).
fn standard_args() -> [String; 6] {
    [
        "-NoProfile".to_owned(),
        "-NonInteractive".to_owned(),
        // Still useful where no Group Policy sets a policy: modules may load script files.
        "-ExecutionPolicy".to_owned(),
        "Bypass".to_owned(),
        "-EncodedCommand".to_owned(),
        encoded_command(HOST_SCRIPT),
    ]
}

fn encoded_command(script: &str) -> String {
    use base64::Engine as _;
    let utf16le: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    base64::engine::general_purpose::STANDARD.encode(utf16le)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The longest command line `CreateProcess` accepts, in UTF-16 code units with its terminating NUL.
    const WINDOWS_COMMAND_LINE_MAX: usize = 32_767;

    #[test]
    fn the_encoded_command_is_base64_of_utf16le() {
        // Known answers, worked by hand: "a" is 61 00, "dir" is 64 00 69 00 72 00.
        let cases = [("a", "YQA="), ("dir", "ZABpAHIA"), ("é", "6QA=")];
        for (script, encoded) in cases {
            assert_eq!(encoded_command(script), encoded, "{script:?}");
        }
    }

    #[test]
    fn the_host_command_line_fits_windows_limit_with_room_for_the_runbook() {
        // Windows quotes no argument here (base64 and the switches have no spaces): each costs its
        // length plus a separating space. `program` is at most MAX_PATH; leave 4096 for `args`.
        let standard: usize = standard_args().iter().map(|a| a.len() + 1).sum();
        assert!(
            260 + 4096 + standard < WINDOWS_COMMAND_LINE_MAX,
            "the host script makes a {standard}-character command line; shorten assets/host.ps1"
        );
    }
}
