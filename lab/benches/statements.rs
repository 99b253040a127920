//! Statement throughput of one lab instance: the real engine behind the real TDS layer, measured from
//! tiberius on ONE connection, statements sent strictly one after another.
//!
//! A plain `main` (harness = false): it prints a Markdown table for lab/BENCHMARKS.md. Run with
//! `cargo bench -p pcfail-lab --bench statements`; `PCFAIL_BENCH_N` overrides the 20,000 statements per
//! query. The lab's scheduler is slowed to a crawl (clock speed 1, one tick per hour) so jobs and chat
//! traffic do not compete with the measured statements; the instance measured is the backup mirror,
//! which holds no user databases and takes no part in log shipping.

use std::time::{Duration, Instant};

use pcfail_lab::{Lab, LabOptions, Role};
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::TokioAsyncWriteCompatExt;

const DEFAULT_N: usize = 20_000;
const TARGET_PER_SECOND: f64 = 10_000.0;

struct Measurement {
    label: &'static str,
    n: usize,
    total: Duration,
    p50: Duration,
    p99: Duration,
}

fn main() -> anyhow::Result<()> {
    let n = std::env::var("PCFAIL_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_N);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let results = runtime.block_on(measure(n))?;

    println!("| statement | N | statements/s | p50 latency | p99 latency |");
    println!("|---|---:|---:|---:|---:|");
    for m in &results {
        println!(
            "| `{}` | {} | {:.0} | {:.1} µs | {:.1} µs |",
            m.label,
            m.n,
            m.n as f64 / m.total.as_secs_f64(),
            m.p50.as_secs_f64() * 1e6,
            m.p99.as_secs_f64() * 1e6
        );
    }
    for m in &results {
        let rate = m.n as f64 / m.total.as_secs_f64();
        if rate < TARGET_PER_SECOND {
            println!(
                "below target: `{}` ran at {rate:.0} statements/s (target {TARGET_PER_SECOND:.0})",
                m.label
            );
        }
    }
    Ok(())
}

async fn measure(n: usize) -> anyhow::Result<Vec<Measurement>> {
    let dir = tempfile::tempdir()?;
    let opts = LabOptions {
        clock_speed: 1.0,
        tick_ms: 3_600_000,
        ..LabOptions::plain(dir.path())
    };
    let lab = Lab::start(opts).await?;
    let manifest = lab.manifest().clone();
    let instance = manifest
        .instance(Role::BackupMirror)
        .expect("backup mirror in lab.json");

    let mut config = Config::new();
    config.host("127.0.0.1");
    config.port(instance.address.port());
    config.authentication(AuthMethod::sql_server(
        &manifest.login.user,
        &manifest.login.password,
    ));
    config.encryption(EncryptionLevel::NotSupported);
    let tcp = TcpStream::connect(instance.address).await?;
    tcp.set_nodelay(true)?;
    let mut client = Client::connect(config, tcp.compat_write()).await?;

    let mut results = Vec::new();
    for (label, sql) in [
        ("SELECT 1", "SELECT 1"),
        (
            "SELECT name, state_desc FROM sys.databases",
            "SELECT name, state_desc FROM sys.databases",
        ),
    ] {
        // Warm-up: first-use costs (allocations, parser paths) are not what is being measured.
        for _ in 0..n.min(500) {
            client.simple_query(sql).await?.into_results().await?;
        }
        let mut latencies = Vec::with_capacity(n);
        let started = Instant::now();
        for _ in 0..n {
            let t = Instant::now();
            let rows = client.simple_query(sql).await?.into_first_result().await?;
            latencies.push(t.elapsed());
            anyhow::ensure!(!rows.is_empty(), "`{sql}` returned no rows");
        }
        let total = started.elapsed();
        latencies.sort();
        let pick =
            |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        results.push(Measurement {
            label,
            n,
            total,
            p50: pick(0.50),
            p99: pick(0.99),
        });
    }
    client.close().await?;
    lab.shutdown().await?;
    Ok(results)
}
