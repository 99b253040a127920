//! The protocol layer's own cost: sequential `simple_query("SELECT 1")` round trips from tiberius
//! on one connection against a backend that answers instantly.
//!
//! Run with `cargo bench -p pcfail-lab-tds --bench echo` (release build). The lab-level benchmark
//! with the real SQL engine lives elsewhere; this one isolates framing, decoding and encoding.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use pcfail_lab_tds::{Backend, Column, Event, Login, Message, RpcCall, Session, SqlType, Value};
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::compat::TokioAsyncWriteCompatExt;
use tokio_util::sync::CancellationToken;

const STATEMENTS: usize = 10_000;

/// Answers every request with one NOT NULL int row, as `SELECT 1` would.
struct Echo;

struct EchoSession;

impl Backend for Echo {
    type Session = EchoSession;

    fn login(
        &self,
        _login: &Login,
        _peer: SocketAddr,
    ) -> Result<(EchoSession, CancellationToken), Vec<Message>> {
        Ok((EchoSession, CancellationToken::new()))
    }

    fn server_name(&self) -> String {
        "BENCH".to_owned()
    }
}

fn one() -> Vec<Event> {
    vec![
        Event::Rows {
            columns: vec![Column {
                name: String::new(),
                ty: SqlType::Int,
                nullable: false,
            }],
            rows: vec![vec![Value::Int(1)]],
        },
        Event::Done {
            row_count: Some(1),
            error: false,
        },
    ]
}

impl Session for EchoSession {
    fn spid(&self) -> u16 {
        51
    }
    fn database(&self) -> String {
        "master".to_owned()
    }
    async fn batch(&mut self, _sql: String) -> Vec<Event> {
        one()
    }
    async fn rpc(&mut self, _call: RpcCall) -> Vec<Event> {
        one()
    }
    fn close(&mut self) {}
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(pcfail_lab_tds::run(
        listener,
        Arc::new(Echo),
        shutdown.clone(),
    ));

    let mut config = Config::new();
    config.host("127.0.0.1");
    config.port(addr.port());
    config.authentication(AuthMethod::sql_server("sa", "bench"));
    config.encryption(EncryptionLevel::NotSupported);
    let login_started = Instant::now();
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let mut client = Client::connect(config, tcp.compat_write()).await?;
    let login = login_started.elapsed();

    // Warm up, then measure.
    for _ in 0..100 {
        client.simple_query("SELECT 1").await?.into_row().await?;
    }
    let started = Instant::now();
    for _ in 0..STATEMENTS {
        let row = client.simple_query("SELECT 1").await?.into_row().await?;
        anyhow::ensure!(
            row.and_then(|r| r.get::<i32, _>(0)) == Some(1),
            "wrong answer"
        );
    }
    let elapsed = started.elapsed();
    println!(
        "echo: {STATEMENTS} sequential SELECT 1 in {:.1} ms = {:.0} statements/s (login {:.2} ms)",
        elapsed.as_secs_f64() * 1000.0,
        STATEMENTS as f64 / elapsed.as_secs_f64(),
        login.as_secs_f64() * 1000.0
    );
    drop(client);
    shutdown.cancel();
    server.await?;
    Ok(())
}
