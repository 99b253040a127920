//! A small fluent builder for running the real `pcfail` binary: runbook text, arguments, environment,
//! expected stdout, stderr and status (after casey/just's `Test`).
//!
//! Each test runs in its own temporary directory, with the runbook written to `runbook.toml` there and
//! passed as `--runbook runbook.toml`, so messages show that short path.

use std::path::Path;
use std::process::{Command, Output};

/// The shipped runbook, as the repository holds it.
pub const SHIPPED: &str = include_str!("../../runbooks/persistent-chat.toml");

/// The smallest valid runbook, for tests about messages (line numbers below are stable).
pub const MINIMAL: &str = r#"[pool]
fqdn = "atl-cs-001.litwareinc.com"

[databases]
chat = "mgc"
compliance = "mgccomp"

[instances.primary]
host = "atl-sql-001.litwareinc.com"
data_center = "ATL"

[instances.backup]
host = "dal-sql-001.litwareinc.com"
port = 1433
data_center = "DAL"

[[persistent_chat_servers]]
fqdn = "atl-pc-001.litwareinc.com"
data_center = "ATL"

[[persistent_chat_servers]]
fqdn = "dal-pc-001.litwareinc.com"
data_center = "DAL"

[active_servers]
after_failover = ["dal-pc-001.litwareinc.com"]
after_failback = ["atl-pc-001.litwareinc.com"]

[failover]
notes = ["mgccomp is not failed over."]

[[failover.steps]]
id = "remove-log-shipping"
action = "remove_log_shipping_secondary"
database = "mgc"

[[failover.steps]]
id = "recover"
action = "recover_database"
database = "mgc"

[failback]
[[failback.steps]]
id = "normal"
action = "set_pool_state"
state = "Normal"
"#;

/// `text` with every instance logging in with a SQL login instead of integrated authentication
/// (written or left to the default), which not every build can do (`pcfail validate` says so): for
/// tests about something else that need a runbook valid on every platform.
pub fn portable(text: &str) -> String {
    const SQL: &str = "auth = \"sql\"\nuser = \"pcfail\"\npassword_env = \"PCFAIL_TEST_PASSWORD\"";
    let mut out = String::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim() == "auth = \"integrated\"" {
            out.push_str(SQL);
            out.push('\n');
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if line.starts_with("[instances.") {
            let block = lines[i + 1..].iter().take_while(|l| !l.starts_with('['));
            if !block.clone().any(|l| l.trim_start().starts_with("auth")) {
                out.push_str(SQL);
                out.push('\n');
            }
        }
    }
    out
}

/// Replaces `from` (which must occur) in `text`.
pub fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "runbook text has no {from:?}");
    text.replacen(from, to, 1)
}

pub struct Test {
    dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    runbook: bool,
    stdout: Option<String>,
    stderr: Option<String>,
    status: i32,
}

impl Test {
    pub fn new() -> Test {
        Test {
            dir: tempfile::tempdir().expect("temporary directory"),
            args: Vec::new(),
            env: Vec::new(),
            runbook: false,
            stdout: None,
            stderr: None,
            status: 0,
        }
    }

    /// Writes `text` as the runbook and passes `--runbook runbook.toml`.
    pub fn runbook(mut self, text: &str) -> Test {
        std::fs::write(self.dir.path().join("runbook.toml"), text).expect("write runbook");
        self.runbook = true;
        self
    }

    pub fn args(mut self, args: &[&str]) -> Test {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Test {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn stdout(mut self, expected: &str) -> Test {
        self.stdout = Some(expected.to_owned());
        self
    }

    pub fn stderr(mut self, expected: &str) -> Test {
        self.stderr = Some(expected.to_owned());
        self
    }

    pub fn status(mut self, status: i32) -> Test {
        self.status = status;
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs pcfail, checks what was asked, and returns the output for further checks.
    /// Runs pcfail and returns what it did, checking nothing (for a caller that can accept more
    /// than one outcome and says which).
    pub fn run_unchecked(self) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pcfail"));
        command
            .current_dir(self.dir.path())
            .env_remove("PCFAIL_RUNBOOK");
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command.args(&self.args);
        if self.runbook {
            command.args(["--runbook", "runbook.toml"]);
        }
        command.output().expect("run pcfail")
    }

    pub fn run(self) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pcfail"));
        command
            .current_dir(self.dir.path())
            .env_remove("PCFAIL_RUNBOOK");
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command.args(&self.args);
        if self.runbook {
            command.args(["--runbook", "runbook.toml"]);
        }
        let output = command.output().expect("run pcfail");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if let Some(expected) = &self.stdout {
            assert_eq!(stdout, *expected, "stdout of pcfail {:?}", self.args);
        }
        if let Some(expected) = &self.stderr {
            assert_eq!(stderr, *expected, "stderr of pcfail {:?}", self.args);
        }
        assert_eq!(
            output.status.code(),
            Some(self.status),
            "status of pcfail {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            self.args
        );
        output
    }
}
