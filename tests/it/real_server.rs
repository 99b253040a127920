//! The real-server suite: read-only checks against a real SQL Server named by the environment
//! variable `PCFAIL_REAL_SQL`, an ADO.NET connection string (README, "A real SQL Server").
//! Without it, the same checks run against the lab's backup instance, reached the same way (an
//! ADO.NET string, TLS checked against the lab's CA): the lab answers as SQL Server does, so the
//! suite is exercised on every run and ready for the day an admin points it at a test instance.
//!
//! What it asks is what pcfail relies on and the lab imitates: that the catalog views have the
//! columns and types pcfail reads, that msdb's log-shipping tables are there, and that `pcfail plan
//! failover --check` (read-only) can connect with the runbook's settings and check preconditions.
//! Nothing here changes anything on the server.

use std::time::Duration;

use tiberius::{Client, Config, SqlBrowser};
use tokio::net::TcpStream;
use tokio_util::compat::TokioAsyncWriteCompatExt;

use pcfail_lab::Role;

use crate::lab_support::{LabRig, RestoreJob};
use crate::test::Test;

const VAR: &str = "PCFAIL_REAL_SQL";

/// The server the suite asks: its ADO.NET string, and the lab behind it when there is no real one.
struct Target {
    ado: String,
    _lab: Option<LabRig>,
}

/// `PCFAIL_REAL_SQL`, else the lab's backup instance (saying so).
fn target(test: &str) -> Target {
    if let Ok(ado) = std::env::var(VAR)
        && !ado.trim().is_empty()
    {
        return Target { ado, _lab: None };
    }
    eprintln!(
        "{test}: against the lab; set {VAR} to an ADO.NET connection string for a real SQL Server"
    );
    let lab = LabRig::start(RestoreJob::Default);
    let manifest = lab.manifest();
    let backup = manifest.instance(Role::Backup).expect("a backup instance");
    let ca = manifest.ca_file.as_ref().expect("the lab's CA");
    let ado = format!(
        "Server=tcp:{},{};User Id={};Password={};Encrypt=true;TrustServerCertificateCA={}",
        backup.address.ip(),
        backup.address.port(),
        manifest.login.user,
        manifest.login.password,
        ca.display()
    );
    Target {
        ado,
        _lab: Some(lab),
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

#[test]
fn real_server_catalog_answers_what_pcfail_reads() {
    let target = target("real_server_catalog_answers_what_pcfail_reads");
    // The lab (when it is the server) runs on a runtime of its own; the client gets this one.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(ask_catalog(&target.ado));
}

async fn ask_catalog(ado_string: &str) {
    let config = Config::from_ado_string(ado_string).expect("a valid connection string");
    // Through SQL Browser when the string names an instance (`Server=host\\INSTANCE`), else
    // straight to the port.
    let tcp = tokio::time::timeout(Duration::from_secs(30), TcpStream::connect_named(&config))
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
    let ca_file = ado(ado_string, &["trustservercertificateca"])
        .map(|path| format!("ca_file = \"{}\"\n", path.replace('\\', "\\\\")))
        .unwrap_or_default();
    let mut instances = String::new();
    for (role, dc) in [
        ("primary", "ATL"),
        ("primary_mirror", "ATL"),
        ("backup", "DAL"),
        ("backup_mirror", "DAL"),
    ] {
        instances.push_str(&format!(
            "[instances.{role}]\nhost = \"{host}\"\n{rest}\ndata_center = \"{dc}\"\nmirroring_endpoint = \"TCP://{host}:5022\"\n{auth}\nencryption = \"{encryption}\"\ntrust_server_certificate = {trust}\n{ca_file}\n"
        ));
    }
    let shipped = crate::test::SHIPPED;
    let start = shipped.find("[instances.primary]").unwrap();
    let end = shipped.find("# --- How long pcfail waits").unwrap();
    format!("{}{instances}{}", &shipped[..start], &shipped[end..])
}

#[test]
fn real_server_preflight_connects_and_checks_read_only() {
    let target = target("real_server_preflight_connects_and_checks_read_only");
    let ado_string = &target.ado;
    let password = ado(ado_string, &["password", "pwd"]).unwrap_or_default();
    let output = Test::new()
        .runbook(&runbook_for(ado_string))
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
