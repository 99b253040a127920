//! Integration tests: the protocol layer against real clients (tiberius over TCP, FreeTDS `tsql`)
//! and against hand-made garbage, with the scripted [`backend::TestBackend`].

mod backend;
mod freetds;
mod robustness;
mod tiberius_client;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};
use tokio_util::sync::CancellationToken;

use backend::TestBackend;

/// A running server on an ephemeral loopback port.
pub struct Server {
    pub addr: SocketAddr,
    pub backend: Arc<TestBackend>,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<()>,
}

impl Server {
    pub async fn start() -> Server {
        Self::start_with(TestBackend::new()).await
    }

    pub async fn start_with(backend: Arc<TestBackend>) -> Server {
        Self::start_secured(backend, pcfail_lab_tds::Security::plaintext()).await
    }

    pub async fn start_secured(
        backend: Arc<TestBackend>,
        security: pcfail_lab_tds::Security,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(pcfail_lab_tds::run_secured(
            listener,
            backend.clone(),
            Arc::new(security),
            shutdown.clone(),
        ));
        Server {
            addr,
            backend,
            shutdown,
            task,
        }
    }

    pub async fn connect(&self) -> Client<Compat<TcpStream>> {
        self.connect_as("sa", backend::PASSWORD)
            .await
            .expect("login")
    }

    pub async fn connect_as(
        &self,
        user: &str,
        password: &str,
    ) -> tiberius::Result<Client<Compat<TcpStream>>> {
        let mut config = Config::new();
        config.host("127.0.0.1");
        config.port(self.addr.port());
        config.authentication(AuthMethod::sql_server(user, password));
        config.encryption(EncryptionLevel::NotSupported);
        // A protocol bug should fail a test in seconds, not after tiberius's 30 s default.
        config.command_timeout(Some(Duration::from_secs(5)));
        let tcp = TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        Client::connect(config, tcp.compat_write()).await
    }
}

/// The first row of a batch (`None`: it returned none); any error fails the test.
pub async fn first_row(client: &mut Client<Compat<TcpStream>>, sql: &str) -> Option<tiberius::Row> {
    client
        .simple_query(sql)
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
}

/// Fails the test instead of hanging when the server does not answer.
pub async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within 10 s"))
}
