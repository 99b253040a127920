//! The bench's own TDS client: tiberius on one connection, as a hand-written restore loop has it.

use std::net::SocketAddr;

use anyhow::Context;
use pcfail_lab::Manifest;
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

pub(crate) type Conn = Client<Compat<TcpStream>>;

pub(crate) async fn connect(manifest: &Manifest, address: SocketAddr) -> anyhow::Result<Conn> {
    let mut config = Config::new();
    config.host(address.ip().to_string());
    config.port(address.port());
    config.authentication(AuthMethod::sql_server(
        &manifest.login.user,
        &manifest.login.password,
    ));
    config.encryption(EncryptionLevel::NotSupported);
    let tcp = TcpStream::connect(address).await.context("connect")?;
    tcp.set_nodelay(true)?;
    Ok(Client::connect(config, tcp.compat_write()).await?)
}

/// `N'...'` for a path (the bench's paths are its own lab's).
pub(crate) fn literal(text: &str) -> String {
    format!("N'{}'", text.replace('\'', "''"))
}

pub(crate) fn restore_log(path: &str) -> String {
    format!(
        "RESTORE LOG [mgc] FROM DISK = {} WITH FILE = 1, NORECOVERY",
        literal(path)
    )
}
