//! The SQL adapter: one tiberius connection to one SQL Server instance, with timeouts and errors a
//! person can act on.
//!
//! It owns connecting (auth, encryption, named instances through SQL Browser, where the password
//! comes from: its environment variable, else a prompt at the terminal), running a batch or a
//! parameterized query under a timeout, and turning rows into plain [`Value`]s. It knows nothing about
//! log shipping or mirroring: the actions decide what to send and how to read the answer.
//!
//! Why a timeout abandons the connection: tiberius 0.13 cannot reliably cancel a running request
//! (`cancel_query()` after a partly read result desynchronises the stream, see the TDS notes §8), so
//! after a timeout the connection is marked broken and the caller reconnects. The server-side statement
//! may still complete; the actions are written to re-examine state before acting again.

pub(crate) mod build;
pub(crate) mod messages;
mod value;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tiberius::{AuthMethod, Client, Config, EncryptionLevel, SqlBrowser, ToSql};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use crate::runbook::{Address, Auth, Encryption, Instance};

pub(crate) use value::{ResultSet, Value};

/// An error the server sent (the first ERROR token of the response, which is the specific one: SQL
/// Server sends e.g. 4305 before 3013, and tiberius keeps only the first).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub(crate) struct ServerError {
    pub number: u32,
    pub class: u8,
    pub state: u8,
    pub message: String,
    pub server: String,
    pub procedure: String,
    pub line: u32,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Msg {}, Level {}, State {}: {}",
            self.number, self.class, self.state, self.message
        )
    }
}

/// Why pcfail could not get an answer from an instance. `instance` is the runbook's role key.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SqlError {
    #[error(
        "environment variable `{var}` is not set; it must hold the password of {user} on `{instance}` (or run pcfail at a terminal to be asked for it)"
    )]
    PasswordMissing {
        instance: String,
        user: String,
        var: String,
    },
    #[error("cannot connect to `{instance}`: {what}")]
    Unsupported { instance: String, what: String },
    #[error("cannot reach `{instance}` at {address}: {source}")]
    Connect {
        instance: String,
        address: String,
        source: std::io::Error,
    },
    #[error("`{instance}` refused the login: {error}")]
    Login {
        instance: String,
        error: ServerError,
    },
    #[error("`{instance}` answered with an error: {error}")]
    Server {
        instance: String,
        error: ServerError,
    },
    #[error("`{instance}` did not answer within {}; the connection was abandoned", shown(*.after))]
    Timeout { instance: String, after: Duration },
    #[error("the connection to `{instance}` failed: {message}")]
    Connection { instance: String, message: String },
    /// The local security library (GSSAPI, NTLM) could not produce a login: no Kerberos ticket,
    /// an account it cannot use. Not a network failure: reconnecting does not help.
    #[error("cannot log in to `{instance}` with Windows authentication: {message}")]
    // Built from tiberius's GSSAPI and sspi-rs errors, which exist on Unix only; with SChannel/SSPI
    // (`winauth`) on Windows a failed login comes back as another error.
    #[cfg_attr(windows, allow(dead_code))]
    Credentials { instance: String, message: String },
}

impl SqlError {
    /// The SQL Server error number, when the server sent one.
    pub(crate) fn number(&self) -> Option<u32> {
        match self {
            SqlError::Login { error, .. } | SqlError::Server { error, .. } => Some(error.number),
            _ => None,
        }
    }

    /// True when pcfail's own settings kept it from connecting (a password variable not set, a setting
    /// this build cannot do): the server was never asked.
    pub(crate) fn is_configuration(&self) -> bool {
        matches!(
            self,
            SqlError::PasswordMissing { .. }
                | SqlError::Unsupported { .. }
                | SqlError::Credentials { .. }
        )
    }

    /// True when the failure says nothing about the statement and retrying on a new connection is
    /// reasonable (the network, a timeout, a dropped connection).
    pub(crate) fn is_transport(&self) -> bool {
        matches!(
            self,
            SqlError::Connect { .. } | SqlError::Timeout { .. } | SqlError::Connection { .. }
        )
    }
}

/// A duration for a message: `90s`, `1.5s`, `250ms`.
pub(crate) fn shown(d: Duration) -> String {
    if d >= Duration::from_secs(10) || d.subsec_millis() == 0 && d >= Duration::from_secs(1) {
        format!("{}s", d.as_secs())
    } else if d >= Duration::from_secs(1) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// A parameter for [`Sql::query`], sent through sp_executesql so values never become SQL text.
pub(crate) enum Param<'a> {
    Str(&'a str),
}

impl Param<'_> {
    fn as_to_sql(&self) -> &dyn ToSql {
        match self {
            Param::Str(s) => s,
        }
    }
}

/// One open connection to one instance.
pub(crate) struct Sql {
    client: Option<Client<Compat<TcpStream>>>,
    instance: String,
}

impl Sql {
    /// Connects and logs in. `timeout` bounds the SQL Browser lookup, the TCP connect, the TLS
    /// handshake and the login together.
    pub(crate) async fn connect(target: &Instance, timeout: Duration) -> Result<Sql, SqlError> {
        let instance = target.role.key().to_owned();
        let mut config = config_for(target)?;
        let address = match &target.address {
            Address::Port(_) => config.get_addr(),
            Address::Named(name) => format!(
                "{}\\{name} (SQL Browser on UDP port {})",
                target.host, target.browser_port
            ),
        };
        // Whether the TCP connection was made, for a timeout to say what it was waiting for.
        let connected = AtomicBool::new(false);
        let connect = async {
            let tcp = match &target.address {
                Address::Port(_) => {
                    TcpStream::connect(config.get_addr())
                        .await
                        .map_err(|source| SqlError::Connect {
                            instance: instance.clone(),
                            address: address.clone(),
                            source,
                        })?
                }
                // tiberius asks the host's SQL Browser for the instance's port, then connects.
                Address::Named(name) => {
                    TcpStream::connect_named(&config)
                        .await
                        .map_err(|e| SqlError::Connect {
                            instance: instance.clone(),
                            address: address.clone(),
                            source: browser_error(e, name),
                        })?
                }
            };
            connected.store(true, Ordering::Relaxed);
            // Statements are small and latency matters more than throughput.
            let _ = tcp.set_nodelay(true);
            if let (Address::Named(_), Ok(peer)) = (&target.address, tcp.peer_addr()) {
                // tiberius names the service `MSSQLSvc/host:port` for Kerberos and NTLM with the
                // port it was given, which for a named instance is SQL Browser's (1434). SQL
                // Server registers its SPN with the instance's TCP port, so that is the one to
                // ask a ticket for: with 1434, GSSAPI finds no such service and Windows quietly
                // falls back from Kerberos to NTLM.
                config.port(peer.port());
            }
            Client::connect(config, tcp.compat_write())
                .await
                .map_err(|e| match e {
                    tiberius::error::Error::Server(t) => SqlError::Login {
                        instance: instance.clone(),
                        error: server_error(&t),
                    },
                    // Failures of the local security library: the server was not asked.
                    #[cfg(all(unix, feature = "kerberos"))]
                    tiberius::error::Error::Gssapi(message) => SqlError::Credentials {
                        instance: instance.clone(),
                        message: kerberos_hint(message),
                    },
                    #[cfg(unix)]
                    tiberius::error::Error::SspiRs(message) => SqlError::Credentials {
                        instance: instance.clone(),
                        message,
                    },
                    other => SqlError::Connection {
                        instance: instance.clone(),
                        message: encryption_hint(target.encryption, other.to_string()),
                    },
                })
        };
        let client = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| {
                if target.encryption == Encryption::Strict && connected.load(Ordering::Relaxed) {
                    // A server that does not speak TDS 8.0 takes the TLS ClientHello for the
                    // start of a TDS packet and waits for the rest of it.
                    SqlError::Connection {
                        instance: instance.clone(),
                        message: format!(
                            "no answer within {} to the TLS handshake that `encryption = \"strict\"` (TDS 8.0) opens with: SQL Server speaks TDS 8.0 from 2022 on; for an older server use `required`",
                            shown(timeout)
                        ),
                    }
                } else {
                    SqlError::Timeout {
                        instance: instance.clone(),
                        after: timeout,
                    }
                }
            })??;
        Ok(Sql {
            client: Some(client),
            instance,
        })
    }

    /// Runs one batch as SQLBatch (no parameters) and returns every result set in order.
    pub(crate) async fn batch(
        &mut self,
        sql: &str,
        timeout: Duration,
    ) -> Result<Vec<ResultSet>, SqlError> {
        let instance = self.instance.clone();
        let client = self.live_client()?;
        let work = async {
            let stream = client.simple_query(sql).await?;
            stream.into_results().await
        };
        let result = tokio::time::timeout(timeout, work).await;
        self.finish(result, &instance, timeout)
    }

    /// Runs one statement through sp_executesql with `@P1..@Pn` bound to `params`.
    pub(crate) async fn query(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        timeout: Duration,
    ) -> Result<Vec<ResultSet>, SqlError> {
        let instance = self.instance.clone();
        let client = self.live_client()?;
        let bound: Vec<&dyn ToSql> = params.iter().map(Param::as_to_sql).collect();
        let work = async {
            let stream = client.query(sql, &bound).await?;
            stream.into_results().await
        };
        let result = tokio::time::timeout(timeout, work).await;
        self.finish(result, &instance, timeout)
    }

    /// Closes the connection politely (a dropped `Sql` closes it too, just less politely).
    pub(crate) async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }

    fn live_client(&mut self) -> Result<&mut Client<Compat<TcpStream>>, SqlError> {
        let instance = self.instance.clone();
        self.client.as_mut().ok_or(SqlError::Connection {
            instance,
            message: "the connection was abandoned after an earlier failure".to_owned(),
        })
    }

    fn finish(
        &mut self,
        result: Result<tiberius::Result<Vec<Vec<tiberius::Row>>>, tokio::time::error::Elapsed>,
        instance: &str,
        timeout: Duration,
    ) -> Result<Vec<ResultSet>, SqlError> {
        match result {
            Err(_) => {
                // The request may still be running on the server; the stream is in an unknown
                // state, so it must not be reused.
                self.client = None;
                Err(SqlError::Timeout {
                    instance: instance.to_owned(),
                    after: timeout,
                })
            }
            Ok(Err(tiberius::error::Error::Server(t))) => Err(SqlError::Server {
                instance: instance.to_owned(),
                error: server_error(&t),
            }),
            Ok(Err(other)) => {
                self.client = None;
                Err(SqlError::Connection {
                    instance: instance.to_owned(),
                    message: other.to_string(),
                })
            }
            Ok(Ok(sets)) => Ok(sets.into_iter().map(ResultSet::from_rows).collect()),
        }
    }
}

/// tiberius's message when pcfail's encryption level and the server's do not fit together, with
/// what it means: the raw text names a TLS or protocol detail, not the setting to change.
fn encryption_hint(level: Encryption, message: String) -> String {
    let hint = match level {
        // The server answered ENCRYPT_REQ (Force Encryption) and closed the connection, as
        // SQL Server does for a client that cannot encrypt [MS-TDS 2.2.6.5].
        Encryption::NotSupported if message.contains("tls handshake eof") => {
            "the server requires encryption (Force Encryption); set `encryption = \"required\"`"
        }
        // A server with no certificate at all (ENCRYPT_NOT_SUP): tiberius still starts TLS
        // for the login.
        Encryption::Off if message.contains("tls handshake eof") => {
            "the server offers no encryption, not even for the login that `encryption = \"off\"` encrypts; it has no certificate"
        }
        Encryption::On | Encryption::Required
            if message.contains("does not allow the requested encryption level") =>
        {
            "the server offers no encryption (it has no certificate); configure one on the server, as encryption is required here"
        }
        _ => return message,
    };
    format!("{message}: {hint}")
}

/// GSSAPI's message, with what to do when the cause is the usual one: no ticket in the cache.
#[cfg(any(test, all(unix, feature = "kerberos")))]
fn kerberos_hint(message: String) -> String {
    if message.contains("No Kerberos credentials") || message.contains("No credentials") {
        format!(
            "{message}; obtain a Kerberos ticket for the account pcfail should use first (`kinit name@REALM`), or name the account with `auth = \"windows\"`"
        )
    } else {
        message
    }
}

/// What went wrong finding a named instance and connecting to it, as an I/O error a person can
/// read: a refused connection stays one, and SQL Browser's silence says what it may mean.
fn browser_error(e: tiberius::error::Error, instance: &str) -> std::io::Error {
    match e {
        tiberius::error::Error::Io { kind, message } => std::io::Error::new(kind, message),
        // tiberius 0.13 reports an unanswered SSRP request as a conversion error with this text.
        other if other.to_string().contains("SQL browser timeout") => std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "SQL Browser did not answer for instance `{instance}` (the host does not answer, its SQL Browser service is stopped, or it has no instance of that name)"
            ),
        ),
        other => std::io::Error::other(other.to_string()),
    }
}

fn server_error(t: &tiberius::error::TokenError) -> ServerError {
    ServerError {
        number: t.code(),
        class: t.class(),
        state: t.state(),
        message: t.message().to_owned(),
        server: t.server().to_owned(),
        procedure: t.procedure().to_owned(),
        line: t.line(),
    }
}

/// Builds tiberius's configuration, refusing what this build cannot do with a sentence saying so
/// (instead of an SSPI failure deep inside the handshake); `pcfail validate` reports the same
/// settings with their place in the runbook.
fn config_for(target: &Instance) -> Result<Config, SqlError> {
    let unsupported = |what: String| SqlError::Unsupported {
        instance: target.role.key().to_owned(),
        what,
    };
    let mut config = Config::new();
    config.host(&target.host);
    match &target.address {
        Address::Port(port) => config.port(*port),
        Address::Named(name) => {
            // With an instance name, tiberius's port is the SQL Browser's (UDP).
            config.instance_name(name);
            config.port(target.browser_port);
        }
    }
    config.application_name("pcfail");
    config.database("master");
    // tiberius 0.13 bounds every command by 30 s and the handshake by 15 s unless told otherwise; a
    // RESTORE of a large database sends nothing until it finishes. pcfail bounds connecting, each
    // query and each step itself (`Sql::connect`, `Sql::batch`, the runbook's timeouts), so the
    // library's own limits would only cut long statements short.
    config.command_timeout(None);
    config.handshake_timeout(None);
    config.encryption(match target.encryption {
        Encryption::NotSupported => EncryptionLevel::NotSupported,
        Encryption::Off => EncryptionLevel::Off,
        Encryption::On => EncryptionLevel::On,
        Encryption::Required => EncryptionLevel::Required,
        Encryption::Strict => EncryptionLevel::Strict,
    });
    // The runbook refuses both at once; the certificate is checked against the CA file, or not
    // at all, or (neither given) against the system's trust store.
    if target.trust_server_certificate {
        config.trust_cert();
    } else if let Some(ca) = &target.ca_file {
        config.trust_cert_ca(ca.display());
    }
    if let Some(name) = &target.certificate_host {
        config.hostname_in_certificate(name);
    }
    match &target.auth {
        Auth::Integrated => {
            build::integrated().map_err(|why| unsupported(why.to_owned()))?;
            #[cfg(any(windows, feature = "kerberos"))]
            config.authentication(AuthMethod::Integrated);
        }
        Auth::Sql { user, password_env } => {
            let password = password(target, &format!("SQL login `{user}`"), password_env)?;
            config.authentication(AuthMethod::sql_server(user, password));
        }
        Auth::Windows { user, password_env } => {
            let password = password(target, &format!("Windows account `{user}`"), password_env)?;
            config.authentication(AuthMethod::windows(user, password));
        }
    }
    Ok(config)
}

/// The password in `var` or asked at the terminal (`secret.rs`).
fn password(target: &Instance, who: &str, var: &str) -> Result<String, SqlError> {
    crate::secret::password(who, var).ok_or_else(|| SqlError::PasswordMissing {
        instance: target.role.key().to_owned(),
        user: who.to_owned(),
        var: var.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::Role;

    #[test]
    fn a_missing_kerberos_ticket_says_how_to_get_one() {
        let cases = [
            (
                "GSSAPI Error: No credentials were supplied, or the credentials were unavailable or inaccessible (No Kerberos credentials available (default cache: FILE:/tmp/krb5cc_0))",
                true,
            ),
            ("GSSAPI Error: Server not found in Kerberos database", false),
        ];
        for (message, hinted) in cases {
            let shown = kerberos_hint(message.to_owned());
            assert!(shown.starts_with(message), "{shown}");
            assert_eq!(shown.contains("`kinit name@REALM`"), hinted, "{shown}");
        }
    }

    #[test]
    fn the_library_sets_no_time_limit_of_its_own() {
        let instance = Instance {
            role: Role::Backup,
            host: "127.0.0.1".into(),
            address: Address::Port(1433),
            server_name: "DAL-SQL-001".into(),
            data_center: "DAL".into(),
            mirroring_endpoint: None,
            auth: Auth::Sql {
                user: "sa".into(),
                // Any variable that is set will do; the value is never printed.
                password_env: "PATH".into(),
            },
            encryption: Encryption::NotSupported,
            trust_server_certificate: false,
            ca_file: None,
            certificate_host: None,
            browser_port: 1434,
        };
        let config = config_for(&instance).expect("a plaintext SQL login is supported");
        assert_eq!(
            (config.get_command_timeout(), config.get_handshake_timeout()),
            (None, None),
            "a long RESTORE must not be cut at tiberius's 30 s default"
        );
    }
}
