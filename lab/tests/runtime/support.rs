//! Shared test helpers: start a fast lab in a temporary directory, connect to an instance with tiberius,
//! and poll for a condition with a bounded deadline (no fixed sleeps).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pcfail_lab::{Lab, LabOptions, Manifest, Role};
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

pub type SqlClient = Client<Compat<TcpStream>>;

/// A lab whose jobs run every lab minute at 600x: a backup, a copy and a restore about every 100 ms.
pub fn fast_options(dir: &std::path::Path) -> LabOptions {
    LabOptions {
        clock_speed: 600.0,
        backup_every_min: 1,
        copy_every_min: 1,
        restore_every_min: 1,
        tick_ms: 20,
        ..LabOptions::plain(dir)
    }
}

pub async fn start_fast_lab() -> (tempfile::TempDir, Lab) {
    let dir = tempfile::tempdir().expect("temp dir");
    let lab = Lab::start(fast_options(dir.path()))
        .await
        .expect("lab starts");
    (dir, lab)
}

pub fn address(manifest: &Manifest, role: Role) -> SocketAddr {
    manifest
        .instance(role)
        .expect("every role is in lab.json")
        .address
}

/// Logs in to one instance with the manifest's SQL login, plaintext (the lab has no TLS).
pub async fn connect(manifest: &Manifest, role: Role) -> Result<SqlClient, tiberius::error::Error> {
    let addr = address(manifest, role);
    let mut config = Config::new();
    config.host("127.0.0.1");
    config.port(addr.port());
    config.authentication(AuthMethod::sql_server(
        &manifest.login.user,
        &manifest.login.password,
    ));
    config.encryption(EncryptionLevel::NotSupported);
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    Client::connect(config, tcp.compat_write()).await
}

/// Runs a query and returns every row's columns as strings (NULL as None), bounded by a timeout so a
/// protocol bug fails the test instead of hanging it.
pub async fn query_strings(client: &mut SqlClient, sql: &str) -> Vec<Vec<Option<String>>> {
    let rows = tokio::time::timeout(Duration::from_secs(10), async {
        client
            .simple_query(sql)
            .await
            .expect("query runs")
            .into_first_result()
            .await
            .expect("rows arrive")
    })
    .await
    .expect("query answered in time");
    rows.iter()
        .map(|row| {
            (0..row.len())
                .map(|i| {
                    row.try_get::<&str, _>(i)
                        .map(|v| v.map(str::to_owned))
                        .or_else(|_| row.try_get::<i32, _>(i).map(|v| v.map(|n| n.to_string())))
                        .or_else(|_| row.try_get::<i64, _>(i).map(|v| v.map(|n| n.to_string())))
                        .or_else(|_| row.try_get::<u8, _>(i).map(|v| v.map(|n| n.to_string())))
                        .or_else(|_| row.try_get::<bool, _>(i).map(|v| v.map(|b| b.to_string())))
                        .unwrap_or(None)
                })
                .collect()
        })
        .collect()
}

/// Polls `check` every 20 ms until it returns `Some` or `limit` passes.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The names of the `.trn` files in a folder, sorted.
pub fn trn_files(folder: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(".trn"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Every value under a key named `key`, anywhere in a JSON document (the engine owns its status layout).
pub fn find_values<'a>(
    json: &'a serde_json::Value,
    key: &str,
    out: &mut Vec<&'a serde_json::Value>,
) {
    match json {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if k == key {
                    out.push(v);
                }
                find_values(v, key, out);
            }
        }
        serde_json::Value::Array(list) => list.iter().for_each(|v| find_values(v, key, out)),
        _ => {}
    }
}
