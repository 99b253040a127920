//! A small builder for driving `pcfail_lab_shell::run` in memory over a temporary lab directory.
//!
//! The lab.json written here points every SQL instance at a loopback port that was just freed, so
//! any SQL connection is refused: these tests need no SQL engine.

use std::collections::HashMap;
use std::io::{Cursor, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;

pub const POOL: &str = "atl-cs-001.litwareinc.com";

pub struct Lab {
    dir: TempDir,
    host_script: PathBuf,
}

/// What one run of the shell produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The JSON bodies of the `PCFAIL-RESULT` lines, in order.
    pub fn responses(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix("PCFAIL-RESULT "))
            .map(|body| serde_json::from_str(body).expect("a response is JSON"))
            .collect()
    }

    /// The only response (asserts there is exactly one).
    pub fn response(&self) -> Value {
        let responses = self.responses();
        assert_eq!(responses.len(), 1, "stdout was:\n{}", self.stdout);
        responses.into_iter().next().unwrap()
    }

    /// stdout lines that are neither READY nor a response.
    pub fn stray_stdout(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| !l.starts_with("PCFAIL-RESULT ") && !l.starts_with("PCFAIL-READY "))
            .collect()
    }
}

/// The standard arguments pcfail passes after `lab shell --dir DIR`.
pub fn powershell_args(host_script: &Path) -> Vec<String> {
    [
        "-NoProfile",
        "-NonInteractive",
        "-ExecutionPolicy",
        "Bypass",
        "-File",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain(std::iter::once(host_script.display().to_string()))
    .collect()
}

/// A request line with this id and command text.
pub fn request(id: u64, command: &str) -> String {
    json!({ "id": id, "command": command }).to_string()
}

impl Lab {
    /// A lab whose SQL instances all refuse connections.
    pub fn new() -> Lab {
        Lab::with_addresses(&HashMap::new())
    }

    /// A lab whose instances listen at these addresses (by FQDN); the others refuse connections.
    pub fn with_addresses(addresses: &HashMap<String, String>) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let host_script = dir.path().join("host.ps1");
        std::fs::write(
            &host_script,
            "# the lab shell only checks that this exists\n",
        )
        .unwrap();
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let refused_address = format!("127.0.0.1:{port}");
        let instance = |role: &str, fqdn: &str, mirror: Option<&str>| {
            json!({
                "role": role, "name": fqdn.split('.').next().unwrap().to_uppercase(), "fqdn": fqdn,
                "address": addresses.get(fqdn).unwrap_or(&refused_address), "data_center": &fqdn[..3].to_uppercase(),
                "endpoint": format!("TCP://{fqdn}:5022"), "mirror": mirror,
            })
        };
        let manifest = json!({
            "protocol": 1,
            "pid": 4242,
            "control": "127.0.0.1:40100",
            "login": { "user": "sa", "password": "lab-password", "password_env": "PCFAIL_LAB_PASSWORD" },
            "pool": POOL,
            "clock_speed": 60.0,
            "instances": [
                instance("primary", "atl-sql-001.litwareinc.com", Some("atl-sql-002.litwareinc.com")),
                instance("primary_mirror", "atl-sql-002.litwareinc.com", None),
                instance("backup", "dal-sql-001.litwareinc.com", Some("dal-sql-002.litwareinc.com")),
                instance("backup_mirror", "dal-sql-002.litwareinc.com", None),
            ],
            "persistent_chat_servers": [
                { "fqdn": "atl-pc-001.litwareinc.com", "data_center": "ATL" },
                { "fqdn": "atl-pc-002.litwareinc.com", "data_center": "ATL" },
                { "fqdn": "dal-pc-001.litwareinc.com", "data_center": "DAL" },
                { "fqdn": "dal-pc-002.litwareinc.com", "data_center": "DAL" },
            ],
            "active_servers": ["atl-pc-001.litwareinc.com", "atl-pc-002.litwareinc.com"],
            "share": dir.path().join("share"),
            "copy_folder": dir.path().join("backup-copy"),
            "backups": dir.path().join("backups"),
        });
        std::fs::write(
            dir.path().join("lab.json"),
            serde_json::to_vec_pretty(&manifest).unwrap(),
        )
        .unwrap();
        Lab { dir, host_script }
    }

    /// Sets a lab variant in lab.json, as `pcfail lab up --variant NAME=VALUE` records it.
    pub fn set_variant(&self, name: &str, value: &str) {
        let path = self.dir.path().join("lab.json");
        let mut manifest: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        manifest["variants"][name] = json!(value);
        std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn host_script(&self) -> &Path {
        &self.host_script
    }

    pub fn write_faults(&self, faults: Value) {
        std::fs::write(self.dir().join("faults.json"), faults.to_string()).unwrap();
    }

    pub fn faults(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir().join("faults.json")).unwrap()).unwrap()
    }

    pub fn write_cms(&self, cms: Value) {
        std::fs::write(self.dir().join("cms.json"), cms.to_string()).unwrap();
    }

    pub fn cms(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir().join("cms.json")).unwrap()).unwrap()
    }

    /// Runs the shell over these raw input lines with the standard arguments.
    pub fn run_lines(&self, lines: &[String]) -> Run {
        self.run_with_args(&powershell_args(&self.host_script), lines)
    }

    pub fn run_with_args(&self, args: &[String], lines: &[String]) -> Run {
        let mut input = lines.join("\n");
        if !lines.is_empty() {
            input.push('\n');
        }
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let code = pcfail_lab_shell::run(
            self.dir(),
            args,
            Cursor::new(input.into_bytes()),
            &mut stdout,
            &mut stderr,
        );
        Run {
            code,
            stdout: String::from_utf8(stdout).unwrap(),
            stderr: String::from_utf8(stderr).unwrap(),
        }
    }

    /// Runs these commands, with ids 1, 2, ... in order.
    pub fn run(&self, commands: &[&str]) -> Run {
        let lines: Vec<String> = commands
            .iter()
            .enumerate()
            .map(|(i, c)| request(i as u64 + 1, c))
            .collect();
        self.run_lines(&lines)
    }

    /// Runs these commands after importing the module, and returns only the last response.
    pub fn after_import(&self, command: &str) -> Value {
        let run = self.run(&["Import-Module SkypeForBusiness", command]);
        let mut responses = run.responses();
        assert_eq!(responses.len(), 2, "stdout was:\n{}", run.stdout);
        let import = responses.remove(0);
        assert_eq!(import["ok"], true, "{import}");
        responses.remove(0)
    }

    /// Starts the shell on a thread whose output can be watched while it runs (for hangs).
    pub fn spawn(&self, commands: &[&str]) -> SharedOutput {
        let lines: Vec<String> = commands
            .iter()
            .enumerate()
            .map(|(i, c)| request(i as u64 + 1, c))
            .collect();
        let mut input = lines.join("\n");
        input.push('\n');
        let out = SharedOutput::default();
        let writer = out.clone();
        let dir = self.dir().to_path_buf();
        let args = powershell_args(&self.host_script);
        std::thread::spawn(move || {
            pcfail_lab_shell::run(
                &dir,
                &args,
                Cursor::new(input.into_bytes()),
                writer,
                std::io::sink(),
            );
        });
        out
    }
}

/// stdout shared with a shell running on another thread.
#[derive(Clone, Default)]
pub struct SharedOutput(Arc<Mutex<Vec<u8>>>);

impl Write for SharedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedOutput {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// Waits until stdout holds `count` responses or `timeout` passes; returns the text.
    pub fn wait_for_responses(&self, count: usize, timeout: Duration) -> String {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let text = self.text();
            if text
                .lines()
                .filter(|l| l.starts_with("PCFAIL-RESULT "))
                .count()
                >= count
                || std::time::Instant::now() > deadline
            {
                return text;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The protocol's error object for a failed response.
pub fn error_of(response: &Value) -> &Value {
    assert_eq!(response["ok"], false, "expected a failure: {response}");
    &response["error"]
}
