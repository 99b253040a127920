//! FreeTDS `tsql` against the protocol layer: the second client implementation, stricter than
//! tiberius about LOGINACK and older protocol versions.
//!
//! `tsql` must be installed (Debian `freetds-bin`); if it is missing these tests fail and say so,
//! because a silently skipped client is a client nobody tests.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::Server;
use crate::backend::{PASSWORD, done, error};

const TSQL: &str = "/usr/bin/tsql";

pub(crate) struct Output {
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `tsql` with `input` on stdin; `tdsver` sets TDSVER.
pub(crate) async fn tsql(
    server: &Server,
    password: &str,
    input: &str,
    tdsver: Option<&str>,
) -> Output {
    assert!(
        std::path::Path::new(TSQL).exists(),
        "{TSQL} is missing: install the Debian package `freetds-bin` (CI installs it) to run the FreeTDS tests"
    );
    let mut cmd = Command::new(TSQL);
    cmd.args([
        "-H",
        "127.0.0.1",
        "-p",
        &server.addr.port().to_string(),
        "-U",
        "sa",
        "-P",
        password,
    ])
    .env_remove("TDSVER")
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    if let Some(v) = tdsver {
        cmd.env("TDSVER", v);
    }
    let mut child = cmd.spawn().expect("start tsql");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(15), child.wait_with_output())
        .await
        .expect("tsql hung")
        .unwrap();
    Output {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn tsql_prints_rows_and_error_text() {
    let backend = crate::backend::TestBackend::new();
    backend.script(
        "BAD",
        vec![error(3201, 16, 2, "Cannot open backup device 'X:\\mgc.bak'. Operating system error 3(The system cannot find the path specified.)."), done(None, true)],
    );
    let server = Server::start_with(backend).await;
    for tdsver in [None, Some("7.1"), Some("7.2"), Some("7.3"), Some("7.4")] {
        let out = tsql(
            &server,
            PASSWORD,
            "SELECT 1\ngo\nECHO hello from the lab\ngo\nBAD\ngo\nexit\n",
            tdsver,
        )
        .await;
        let lines: Vec<&str> = out.stdout.lines().map(str::trim).collect();
        assert!(
            lines.contains(&"1"),
            "row of SELECT 1 with TDSVER={tdsver:?}:\n{}\n{}",
            out.stdout,
            out.stderr
        );
        assert!(
            lines.contains(&"hello from the lab"),
            "echoed text with TDSVER={tdsver:?}:\n{}",
            out.stdout
        );
        let all = format!("{}{}", out.stdout, out.stderr);
        assert!(
            all.contains("Msg 3201 (severity 16, state 2)")
                && all.contains("Cannot open backup device 'X:\\mgc.bak'."),
            "error text with TDSVER={tdsver:?}:\n{all}"
        );
    }
}

#[tokio::test]
async fn tsql_reports_a_failed_login() {
    let server = Server::start().await;
    let out = tsql(&server, "wrong", "SELECT 1\ngo\nexit\n", None).await;
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("Login failed for user 'sa'."), "{all}");
    assert!(all.contains("18456"), "{all}");
}

#[tokio::test]
async fn tsql_with_tds_7_0_is_refused_cleanly() {
    let server = Server::start().await;
    let out = tsql(&server, PASSWORD, "SELECT 1\ngo\nexit\n", Some("7.0")).await;
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains("The Tabular Data Stream (TDS) version 0x70000000 of the client library used to open the connection is unsupported or unknown."),
        "{all}"
    );
    assert!(
        !out.stdout.lines().any(|l| l.trim() == "1"),
        "no query ran: {all}"
    );
    assert!(
        server.backend.transcript().is_empty(),
        "the backend never saw the login"
    );
}
