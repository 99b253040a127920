//! [`Sql`]: the shell's SQL client, tiberius over plaintext TDS to the lab's instances, the way the
//! real cmdlets reach SQL Server through SqlClient.
//!
//! Synchronous on purpose: the shell answers one request at a time, so each call blocks on a
//! current-thread tokio runtime owned here. Failures keep what a cmdlet error must show: the server,
//! the statement, and for server errors the SQL error number, class, state and text.

use std::time::Duration;

use thiserror::Error;
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use crate::manifest::{Instance, LabManifest};

/// TCP connect bound; tiberius's handshake timeout covers the rest of the login.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Per-response bound while a statement runs. Generous: the lab may delay BACKUP/RESTORE on purpose.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Error)]
pub(crate) enum SqlFailure {
    /// The wording of SqlClient's connection failure, which is what the real cmdlets show.
    #[error(
        "A network-related or instance-specific error occurred while establishing a connection to SQL Server. The server \
         was not found or was not accessible. Verify that the instance name is correct and that SQL Server is configured \
         to allow remote connections. (provider: TCP Provider, error: 0 - {reason})"
    )]
    Connect { fqdn: String, reason: String },
    /// An ERROR token from the server (tiberius surfaces the first one, as SqlException.Number does).
    #[error("SQL Server error {number}, severity {class}, state {state}: {message}")]
    Server {
        fqdn: String,
        number: u32,
        class: u8,
        state: u8,
        message: String,
    },
    /// Anything else that broke the conversation (timeout, dropped connection, protocol error).
    #[error("{message}")]
    Transport { fqdn: String, message: String },
}

impl SqlFailure {
    pub(crate) fn fqdn(&self) -> &str {
        match self {
            SqlFailure::Connect { fqdn, .. }
            | SqlFailure::Server { fqdn, .. }
            | SqlFailure::Transport { fqdn, .. } => fqdn,
        }
    }

    fn from_tiberius(fqdn: &str, error: tiberius::error::Error) -> Self {
        match error {
            tiberius::error::Error::Server(token) => SqlFailure::Server {
                fqdn: fqdn.to_owned(),
                number: token.code(),
                class: token.class(),
                state: token.state(),
                message: token.message().to_owned(),
            },
            other => SqlFailure::Transport {
                fqdn: fqdn.to_owned(),
                message: other.to_string(),
            },
        }
    }
}

/// Owns the runtime that drives every connection.
pub(crate) struct Sql {
    runtime: Runtime,
}

/// One logged-in connection to one instance, in master.
pub(crate) struct Connection<'a> {
    runtime: &'a Runtime,
    fqdn: String,
    client: Client<Compat<TcpStream>>,
}

impl Sql {
    pub(crate) fn new() -> std::io::Result<Self> {
        Ok(Sql {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
        })
    }

    /// Connects to `instance` with the lab's login, in master, plaintext (the lab speaks no TLS).
    /// Whether the lab's data center `data_center` is up, as the shell judges it: one of its SQL
    /// instances answers a login. Otherwise why not (the last instance's failure).
    pub(crate) fn reach_data_center(
        &self,
        manifest: &LabManifest,
        data_center: &str,
    ) -> Result<(), String> {
        let mut why = format!("No SQL Server of site {data_center} is known.");
        let stores = manifest.instances.iter().filter(|i| {
            i.data_center
                .as_deref()
                .is_some_and(|dc| dc.eq_ignore_ascii_case(data_center))
        });
        for store in stores {
            match self.connect(manifest, store) {
                Ok(_) => return Ok(()),
                Err(e) => why = e.to_string(),
            }
        }
        Err(why)
    }

    pub(crate) fn connect(
        &self,
        manifest: &LabManifest,
        instance: &Instance,
    ) -> Result<Connection<'_>, SqlFailure> {
        let fqdn = instance.fqdn.clone();
        let (host, port) = split_address(&instance.address);
        let mut config = Config::new();
        config.host(host);
        config.port(port);
        config.database("master");
        config.application_name("Skype for Business Server Management Shell");
        config.authentication(AuthMethod::sql_server(
            &manifest.login.user,
            manifest.password(),
        ));
        // A lab that requires encryption (its default since TLS came to the lab) gets TLS; the shell
        // stands in for a Front End server, which trusts the site's CA, so it trusts the lab's
        // certificate without checking it. A plaintext lab gets plaintext.
        match manifest.encryption.as_deref() {
            Some("required" | "strict") => {
                config.encryption(EncryptionLevel::Required);
                config.trust_cert();
            }
            _ => config.encryption(EncryptionLevel::NotSupported),
        }
        config.handshake_timeout(Some(CONNECT_TIMEOUT));
        config.command_timeout(Some(COMMAND_TIMEOUT));
        let address = instance.address.clone();
        let client = self.runtime.block_on(async {
            let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&address)).await {
                Ok(Ok(tcp)) => tcp,
                Ok(Err(e)) => return Err(SqlFailure::Connect { fqdn: fqdn.clone(), reason: connect_reason(&e) }),
                Err(_) => {
                    return Err(SqlFailure::Connect {
                        fqdn: fqdn.clone(),
                        reason: "A connection attempt failed because the connected party did not properly respond after a \
                                 period of time, or established connection failed because connected host has failed to respond."
                            .to_owned(),
                    });
                }
            };
            let _ = tcp.set_nodelay(true);
            Client::connect(config, tcp.compat_write()).await.map_err(|e| SqlFailure::from_tiberius(&fqdn, e))
        })?;
        Ok(Connection {
            runtime: &self.runtime,
            fqdn: instance.fqdn.clone(),
            client,
        })
    }
}

impl Connection<'_> {
    pub(crate) fn fqdn(&self) -> &str {
        &self.fqdn
    }

    /// Runs a batch and drains its results; the first server error fails it.
    pub(crate) fn execute(&mut self, sql: &str) -> Result<(), SqlFailure> {
        let fqdn = self.fqdn.clone();
        let client = &mut self.client;
        self.runtime.block_on(async {
            let stream = client
                .simple_query(sql)
                .await
                .map_err(|e| SqlFailure::from_tiberius(&fqdn, e))?;
            stream
                .into_results()
                .await
                .map_err(|e| SqlFailure::from_tiberius(&fqdn, e))?;
            Ok(())
        })
    }

    /// Runs a query and returns the first column of its first row as a string (`None`: no row or NULL).
    pub(crate) fn query_string(&mut self, sql: &str) -> Result<Option<String>, SqlFailure> {
        let fqdn = self.fqdn.clone();
        let client = &mut self.client;
        self.runtime.block_on(async {
            let stream = client
                .simple_query(sql)
                .await
                .map_err(|e| SqlFailure::from_tiberius(&fqdn, e))?;
            let row = stream
                .into_row()
                .await
                .map_err(|e| SqlFailure::from_tiberius(&fqdn, e))?;
            match row {
                None => Ok(None),
                Some(row) => row
                    .try_get::<&str, _>(0)
                    .map(|v| v.map(str::to_owned))
                    .map_err(|e| SqlFailure::from_tiberius(&fqdn, e)),
            }
        })
    }
}

/// Splits `host:port`; a missing or bad port means SQL Server's default 1433.
fn split_address(address: &str) -> (String, u16) {
    match address.rsplit_once(':') {
        Some((host, port)) => (
            host.trim_matches(['[', ']']).to_owned(),
            port.parse().unwrap_or(1433),
        ),
        None => (address.to_owned(), 1433),
    }
}

/// The Winsock wording SqlClient puts after "error: 0 - ".
fn connect_reason(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::ConnectionRefused => {
            "No connection could be made because the target machine actively refused it.".to_owned()
        }
        _ => format!("{error}."),
    }
}

/// `N'...'` with quotes doubled, for paths and endpoint addresses in T-SQL.
pub(crate) fn string_literal(value: &str) -> String {
    format!("N'{}'", value.replace('\'', "''"))
}

/// `[...]` with `]` doubled (QUOTENAME), for database names.
pub(crate) fn identifier(name: &str) -> String {
    format!("[{}]", name.replace(']', "]]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_identifiers_are_quoted_like_quotename() {
        let cases: &[(&str, &str, &str)] = &[
            ("mgc", "N'mgc'", "[mgc]"),
            ("o'brien", "N'o''brien'", "[o'brien]"),
            ("a]b", "N'a]b'", "[a]]b]"),
        ];
        for (raw, literal, ident) in cases {
            assert_eq!(string_literal(raw), *literal);
            assert_eq!(identifier(raw), *ident);
        }
    }

    #[test]
    fn addresses_split_into_host_and_port() {
        assert_eq!(
            split_address("127.0.0.1:40001"),
            ("127.0.0.1".to_owned(), 40001)
        );
        assert_eq!(split_address("[::1]:5"), ("::1".to_owned(), 5));
        assert_eq!(split_address("sql"), ("sql".to_owned(), 1433));
    }
}
