//! The optional real-server suite: read-only checks against a real SQL Server, enabled by the
//! environment variable `PCFAIL_REAL_SQL` holding an ADO.NET connection string (README, "A real SQL
//! Server"). Without it each test says it was skipped and passes: the lab is the default oracle.
//!
//! What it asks is what pcfail relies on and the lab imitates: that the catalog views have the
//! columns and types pcfail reads, that msdb's log-shipping tables are there, and that `pcfail plan
//! failover --check` (read-only) can connect with the runbook's settings and check preconditions.
//! Nothing here changes anything on the server.

use std::time::Duration;

use tiberius::{Client, Config};
use tokio::net::TcpStream;
use tokio_util::compat::TokioAsyncWriteCompatExt;

use crate::test::Test;

const VAR: &str = "PCFAIL_REAL_SQL";

/// The connection string, or `None` after saying the suite is skipped.
fn connection_string(test: &str) -> Option<String> {
    match std::env::var(VAR) {
        Ok(s) if !s.trim().is_empty() => Some(s),
        _ => {
            eprintln!(
                "{test}: skipped: set {VAR} to an ADO.NET connection string to run it against a real SQL Server"
            );
            None
        }
    }
}

/// The value of `key` (case-insensitive, with its usual synonyms) in an ADO.NET string.
fn ado(s: &str, keys: &[&str]) -> Option<String> {
    s.split(';').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        keys.iter()
            .any(|key| k.trim().eq_ignore_ascii_case(key))
            .then(|| v.trim().to_owned())
    })
}

fn yes(value: Option<String>) -> bool {
    value.is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "yes" | "sspi"))
}

#[tokio::test]
async fn real_server_catalog_answers_what_pcfail_reads() {
    let Some(ado_string) = connection_string("real_server_catalog_answers_what_pcfail_reads")
    else {
        return;
    };
    let config = Config::from_ado_string(&ado_string).expect("a valid connection string");
    let tcp = tokio::time::timeout(
        Duration::from_secs(30),
        TcpStream::connect(config.get_addr()),
    )
    .await
    .expect("connect within 30 s")
    .expect("reach the server");
    tcp.set_nodelay(true).unwrap();
    let mut client = Client::connect(config, tcp.compat_write())
        .await
        .expect("log in");
    let row = client
        .simple_query(
            "SELECT @@SERVERNAME, CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)), GETUTCDATE()",
        )
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .expect("one row");
    let server: &str = row.get(0).expect("@@SERVERNAME is set");
    let version: &str = row.get(1).expect("a version");
    eprintln!("connected to {server}, SQL Server {version}");
    // The columns pcfail's probes read, with the types they are read as (a type the client does
    // not expect panics in `get`, which is what this is here to catch).
    let rows = client
        .simple_query(
            "SELECT name, state_desc, recovery_model_desc, is_read_only FROM sys.databases",
        )
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert!(rows.iter().any(|r| r.get::<&str, _>(0) == Some("master")));
    for r in &rows {
        let _: Option<&str> = r.get(1);
        let _: Option<&str> = r.get(2);
        let _: Option<bool> = r.get(3);
    }
    for table in [
        "msdb.dbo.log_shipping_secondary",
        "msdb.dbo.log_shipping_secondary_databases",
        "msdb.dbo.log_shipping_primary_databases",
        "msdb.dbo.restorehistory",
    ] {
        client
            .simple_query(format!("SELECT TOP (0) * FROM {table}"))
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"))
            .into_results()
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"));
    }
    client.close().await.unwrap();
}

/// A runbook whose four roles are all the one real server, connected as the string says.
fn runbook_for(ado_string: &str) -> String {
    let server = ado(ado_string, &["server", "data source", "address", "addr"])
        .expect("the connection string names a server");
    let server = server.trim_start_matches("tcp:");
    let (host, rest) = match server.split_once(',') {
        Some((host, port)) => (host.to_owned(), format!("port = {}", port.trim())),
        None => match server.split_once('\\') {
            Some((host, instance)) => (host.to_owned(), format!("instance = \"{instance}\"")),
            None => (server.to_owned(), "port = 1433".to_owned()),
        },
    };
    let auth = if yes(ado(
        ado_string,
        &["integrated security", "trusted_connection"],
    )) {
        "auth = \"integrated\"".to_owned()
    } else {
        let user =
            ado(ado_string, &["user id", "uid", "user"]).expect("a user or integrated security");
        let kind = if user.contains('\\') {
            "windows"
        } else {
            "sql"
        };
        format!(
            "auth = \"{kind}\"\nuser = \"{}\"\npassword_env = \"PCFAIL_REAL_SQL_PASSWORD\"",
            user.replace('\\', "\\\\")
        )
    };
    let encryption = match ado(ado_string, &["encrypt"]).map(|v| v.to_ascii_lowercase()) {
        Some(v) if v == "strict" => "strict",
        Some(v) if v == "false" || v == "no" || v == "optional" => "off",
        _ => "required",
    };
    let trust = yes(ado(ado_string, &["trustservercertificate"]));
    let mut instances = String::new();
    for (role, dc) in [
        ("primary", "ATL"),
        ("primary_mirror", "ATL"),
        ("backup", "DAL"),
        ("backup_mirror", "DAL"),
    ] {
        instances.push_str(&format!(
            "[instances.{role}]\nhost = \"{host}\"\n{rest}\ndata_center = \"{dc}\"\n{auth}\nencryption = \"{encryption}\"\ntrust_server_certificate = {trust}\n\n"
        ));
    }
    let shipped = crate::test::SHIPPED;
    let start = shipped.find("[instances.primary]").unwrap();
    let end = shipped.find("# --- How long pcfail waits").unwrap();
    format!("{}{instances}{}", &shipped[..start], &shipped[end..])
}

#[test]
fn real_server_preflight_connects_and_checks_read_only() {
    let Some(ado_string) = connection_string("real_server_preflight_connects_and_checks_read_only")
    else {
        return;
    };
    let password = ado(&ado_string, &["password", "pwd"]).unwrap_or_default();
    let output = Test::new()
        .runbook(&runbook_for(&ado_string))
        .env("PCFAIL_REAL_SQL_PASSWORD", &password)
        .args(&["plan", "failover", "--check"])
        .run_unchecked();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}\n{stderr}");
    // 0: every precondition holds; 3: some do not (a lone server has no log shipping). Either way
    // pcfail connected with these settings and checked; 2 (a setting refused) or a crash is a failure.
    let code = output.status.code();
    assert!(matches!(code, Some(0 | 3)), "exit {code:?}");
    assert!(
        !stdout.contains("cannot be asked") && !stderr.contains("cannot be asked"),
        "every role was reached"
    );
}
