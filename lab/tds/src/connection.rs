//! One client connection from accept to close: PRELOGIN and encryption, LOGIN7 (with its NTLM
//! exchange for a Windows login), then the request loop.
//!
//! Encryption is settled before the connection loop starts (`negotiate`): a TDS 8.0 client's TLS
//! handshake, or the plaintext PRELOGIN and then, when encryption was agreed, the TLS handshake
//! inside PRELOGIN packets. Everything after that runs over the resulting [`Transport`].
//!
//! The loop always watches three things at once: the socket (so an Attention is seen while a
//! request runs), the session's cancellation token (KILL, the instance going down) and the server's
//! shutdown token. Any of the last two closes the socket at once, mid-request or not. Requests are
//! answered strictly one message each, which is what keeps the client in step.
//!
//! An unreachable host ([`Backend::unreachable`], [`crate::Event::Unanswered`]) answers nothing at
//! all: the connection only reads and discards until the client gives up or the host is back.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::backend::{Backend, Message, Session};
use crate::error::ProtocolError;
use crate::login::{self, LoginReply};
use crate::ntlm;
use crate::packet::{
    ClientMessage, DEFAULT_PACKET_SIZE, HEADER_LEN, MessageReader, frame_message, packet_type,
};
use crate::request::{self, RequestError, TmRequest};
use crate::response::{self, Reply};
use crate::tls::{Security, Transport, encrypt};
use crate::token::{TokenWriter, done_status, env_type, token_type};

/// How long a client may take between connecting and finishing its login. SQL Server drops
/// connections that never complete a login; this keeps a silent port scanner from holding a task.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The CurCmd of SQL Server's Attention acknowledgement.
const ATTENTION_CUR_CMD: u16 = 0x00FD;

/// Why the connection ended, for the log.
#[derive(Debug)]
enum End {
    ClientClosed,
    Cancelled,
    LoginRefused,
    Disconnected,
    /// Nothing was answered (an unreachable host); the client closed or the host came back.
    Ignored,
    Protocol(ProtocolError),
}

impl From<ProtocolError> for End {
    fn from(e: ProtocolError) -> Self {
        End::Protocol(e)
    }
}

/// Serves one accepted socket until it closes.
pub(crate) async fn serve<B: Backend>(
    tcp: TcpStream,
    peer: SocketAddr,
    backend: Arc<B>,
    security: Arc<Security>,
    shutdown: CancellationToken,
) {
    // A lost host answers nothing, not even a TLS handshake.
    if backend.unreachable().is_some() {
        let (read, write) = tokio::io::split(Transport::Plain(tcp));
        let mut conn = Connection::new(read, write, peer, &*backend, shutdown.clone());
        if let Some(until) = backend.unreachable() {
            let end = conn.ignore(&until).await;
            tracing::debug!(%peer, end = ?end, "unreachable: connection never answered");
        }
        return;
    }
    let version = backend.server_version().1;
    let negotiated = tokio::select! {
        r = tokio::time::timeout(LOGIN_TIMEOUT, negotiate(tcp, &security, version)) => match r {
            Ok(r) => r,
            Err(_) => Err(ProtocolError::malformed("PRELOGIN", "no PRELOGIN within the login timeout")),
        },
        _ = shutdown.cancelled() => return,
    };
    let (transport, first) = match negotiated {
        Ok(Some(ok)) => ok,
        Ok(None) => {
            tracing::debug!(%peer, "closing connection: the client cannot encrypt and the instance requires it");
            return;
        }
        Err(e) => {
            tracing::warn!(%peer, error = %e, "closing connection during PRELOGIN");
            return;
        }
    };
    let settled = match transport {
        Transport::Plain(_) => encrypt::NOT_SUP,
        Transport::Tls(_) | Transport::Strict(_) => encrypt::ON,
    };
    let (read, write) = tokio::io::split(transport);
    let mut conn = Connection::new(read, write, peer, &*backend, shutdown);
    conn.settled = settled;
    conn.reader.prefill(first);
    let shutdown = conn.shutdown.clone();
    let login = tokio::select! {
        r = tokio::time::timeout(LOGIN_TIMEOUT, conn.login(&*backend)) => match r {
            Ok(r) => r,
            Err(_) => Err(ProtocolError::malformed("login", "no LOGIN7 within the login timeout").into()),
        },
        _ = shutdown.cancelled() => Err(End::Cancelled),
    };
    let end = match login {
        Ok((mut session, cancel)) => {
            let end = conn.requests(&mut session, &cancel).await;
            session.close();
            end
        }
        Err(end) => end,
    };
    match end {
        End::Protocol(e) => tracing::warn!(%peer, error = %e, "closing connection"),
        other => tracing::debug!(%peer, end = ?other, "connection ended"),
    }
}

struct Connection<R, W> {
    reader: MessageReader<R>,
    writer: W,
    peer: SocketAddr,
    server_name: String,
    spid: u16,
    packet_size: usize,
    /// Messages that arrived while a request was running (a client without MARS should not send
    /// any, but a tolerant server answers them in order rather than dropping them).
    queued: VecDeque<ClientMessage>,
    shutdown: CancellationToken,
    /// Transaction descriptors handed out through ENVCHANGE 8 [2.2.7.9].
    next_transaction: u64,
    transaction: Option<u64>,
    /// The TDS version agreed at login (LOGINACK's, big-endian form): it shapes requests and tokens.
    tds_version: u32,
    /// The ENCRYPTION answer to a PRELOGIN that reaches the connection: ON inside TLS (TDS 8.0),
    /// NOT_SUP at a plaintext instance.
    settled: u8,
}

/// Settles encryption: returns the transport the connection runs over, and the bytes already read
/// from it that the connection must still see (a client that skips PRELOGIN at a plaintext
/// instance, or sends its LOGIN7 without waiting for the PRELOGIN answer). `Ok(None)`: the connection must be closed (the instance requires
/// encryption the client cannot do, or strict encryption and the client did not start with TLS).
async fn negotiate(
    mut tcp: TcpStream,
    security: &Security,
    version: [u8; 4],
) -> Result<Option<(Transport, Vec<u8>)>, ProtocolError> {
    let mut first = [0u8; 1];
    if tcp.peek(&mut first).await? == 0 {
        return Ok(Some((Transport::Plain(tcp), Vec::new())));
    }
    if security.takes_strict(first[0]) {
        return Ok(Some((security.accept_strict(tcp).await?, Vec::new())));
    }
    if security.strict_only() {
        return Ok(None);
    }
    let (msg, leftover) = {
        let mut reader = MessageReader::new(&mut tcp);
        let Some(msg) = reader.next_message().await? else {
            return Ok(Some((Transport::Plain(tcp), Vec::new())));
        };
        (msg, reader.leftover())
    };
    if msg.packet_type != packet_type::PRELOGIN {
        return Ok(security
            .answer(encrypt::NOT_SUP)
            .map(|_| (Transport::Plain(tcp), framed(&msg, leftover))));
    }
    let client = crate::prelogin::check_client_prelogin(&msg.payload)?;
    let Some(answer) = security.answer(client) else {
        // SQL Server answers, then closes: the client learns why from the answer.
        let reply = crate::prelogin::server_prelogin(version, encrypt::REQ);
        let mut out = Vec::new();
        frame_message(
            &mut out,
            packet_type::TABULAR_RESULT,
            0,
            &reply,
            DEFAULT_PACKET_SIZE,
        );
        let _ = tcp.write_all(&out).await;
        return Ok(None);
    };
    let reply = crate::prelogin::server_prelogin(version, answer);
    let mut out = Vec::new();
    frame_message(
        &mut out,
        packet_type::TABULAR_RESULT,
        0,
        &reply,
        DEFAULT_PACKET_SIZE,
    );
    tcp.write_all(&out).await?;
    if answer == encrypt::NOT_SUP {
        return Ok(Some((Transport::Plain(tcp), leftover)));
    }
    if !leftover.is_empty() {
        return Err(ProtocolError::malformed(
            "PRELOGIN",
            "the client sent more before the TLS handshake",
        ));
    }
    Ok(Some((security.accept_in_prelogin(tcp).await?, Vec::new())))
}

/// `msg` framed again as one packet, followed by `rest`: the bytes the connection's reader starts
/// with when `negotiate` read a message that was not a PRELOGIN.
fn framed(msg: &ClientMessage, rest: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.payload.len() + HEADER_LEN + rest.len());
    frame_message(
        &mut out,
        msg.packet_type,
        0,
        &msg.payload,
        usize::from(u16::MAX),
    );
    out.extend(rest);
    out
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Connection<R, W> {
    fn new<B: Backend>(
        read: R,
        write: W,
        peer: SocketAddr,
        backend: &B,
        shutdown: CancellationToken,
    ) -> Self {
        Connection {
            reader: MessageReader::new(read),
            writer: write,
            peer,
            server_name: backend.server_name(),
            spid: 0,
            packet_size: DEFAULT_PACKET_SIZE,
            queued: VecDeque::new(),
            shutdown,
            next_transaction: 1,
            transaction: None,
            tds_version: crate::token::TDS_7_4,
            settled: encrypt::NOT_SUP,
        }
    }

    /// Requests carry ALL_HEADERS from TDS 7.2 on [2.2.5.3].
    fn headers(&self) -> bool {
        self.tds_version >= crate::token::TDS_7_2
    }

    async fn next_message(&mut self) -> Result<ClientMessage, End> {
        if let Some(m) = self.queued.pop_front() {
            return Ok(m);
        }
        match self.reader.next_message().await? {
            Some(m) => Ok(m),
            None => Err(End::ClientClosed),
        }
    }

    /// Sends one response message (split into packets, EOM on the last).
    async fn send(&mut self, ty: u8, payload: &[u8]) -> Result<(), End> {
        let mut out = Vec::with_capacity(payload.len() + 16);
        frame_message(&mut out, ty, self.spid, payload, self.packet_size);
        // A client that stops reading must not pin us: shutdown still wins.
        tokio::select! {
            r = self.writer.write_all(&out) => r.map_err(|e| End::Protocol(e.into())),
            _ = self.shutdown.cancelled() => Err(End::Cancelled),
        }
    }

    /// PRELOGIN (optional) then LOGIN7; returns the backend's session on success.
    async fn login<B: Backend>(
        &mut self,
        backend: &B,
    ) -> Result<(B::Session, CancellationToken), End> {
        let (program, version) = backend.server_version();
        let msg = loop {
            let msg = self.next_message().await?;
            match msg.packet_type {
                packet_type::PRELOGIN => {
                    // Inside TLS already (TDS 8.0), or a plaintext instance's PRELOGIN that
                    // `negotiate` passed on: encryption is settled either way.
                    crate::prelogin::check_client_prelogin(&msg.payload)?;
                    let answer = crate::prelogin::server_prelogin(version, self.settled);
                    self.send(packet_type::TABULAR_RESULT, &answer).await?;
                }
                packet_type::LOGIN7 => break msg,
                other => {
                    return Err(ProtocolError::UnexpectedMessage {
                        packet_type: other,
                        state: "waiting for PRELOGIN or LOGIN7",
                    }
                    .into());
                }
            }
        };
        let mut login7 = login::decode_login7(&msg.payload)?;
        let Some(tds_version) = login::negotiated_version(login7.login.tds_version) else {
            let error = login::unsupported_version(login7.login.tds_version, self.peer);
            let tokens =
                login::encode_refusal(&[error], &self.server_name, login7.login.tds_version);
            self.send(packet_type::TABULAR_RESULT, &tokens).await?;
            return Err(End::LoginRefused);
        };
        // The host may have become unreachable since the connection was accepted.
        if let Some(until) = backend.unreachable() {
            return Err(self.ignore(&until).await);
        }
        if let Some(negotiate) = login7.sspi.take() {
            match self.windows_login(backend, &negotiate, tds_version).await? {
                Some(user) => {
                    login7.login.user = user;
                    login7.login.windows = true;
                    login7.login.password.clear();
                }
                None => {
                    let error = untrusted_domain();
                    let tokens = login::encode_refusal(&[error], &self.server_name, tds_version);
                    self.send(packet_type::TABULAR_RESULT, &tokens).await?;
                    return Err(End::LoginRefused);
                }
            }
        }
        let (session, cancel) = match backend.login(&login7.login, self.peer) {
            Ok(ok) => ok,
            Err(errors) => {
                let tokens = login::encode_refusal(&errors, &self.server_name, tds_version);
                self.send(packet_type::TABULAR_RESULT, &tokens).await?;
                return Err(End::LoginRefused);
            }
        };
        self.spid = session.spid();
        let packet_size = login::negotiated_packet_size(login7.packet_size);
        let reply = LoginReply {
            database: &session.database(),
            server_name: &self.server_name,
            tds_version,
            packet_size,
            program: &program,
            version,
        }
        .encode();
        self.send(packet_type::TABULAR_RESULT, &reply).await?;
        // The new size applies from the first message after the login response [2.2.7.9].
        self.packet_size = packet_size as usize;
        self.tds_version = tds_version;
        Ok((session, cancel))
    }

    /// The NTLM exchange of a Windows login: CHALLENGE in an SSPI token, AUTHENTICATE in the
    /// client's next message. Returns `DOMAIN\\user` when the response proves the account's
    /// password, `None` when it does not (or the host is in no domain).
    async fn windows_login<B: Backend>(
        &mut self,
        backend: &B,
        negotiate: &[u8],
        tds_version: u32,
    ) -> Result<Option<String>, End> {
        let Some(domain) = backend.windows_domain() else {
            return Ok(None);
        };
        // Kerberos, or SPNEGO around it: the lab's hosts hold no service keys, so the ticket
        // cannot be decrypted, as on a SQL Server whose SPN's key is not the one the ticket was
        // issued for; SQL Server answers that failed SSPI handshake with 18452, not a dropped
        // connection.
        if !negotiate.starts_with(ntlm::SIGNATURE) {
            tracing::debug!(peer = %self.peer, "SSPI login that is not NTLM: refused");
            return Ok(None);
        }
        let server_challenge = random_challenge();
        let target = ntlm::Target {
            domain: &domain.netbios,
            computer: &domain.computer,
            dns_domain: &domain.dns,
            dns_computer: &domain.dns_computer,
        };
        let challenge = ntlm::challenge(negotiate, &target, server_challenge, filetime_now())?;
        let mut w = TokenWriter::for_version(tds_version);
        w.sspi(&challenge);
        self.send(packet_type::TABULAR_RESULT, &w.buf).await?;
        let msg = self.next_message().await?;
        // SSPI (0x11) is the message type [2.2.6.8]; tiberius's pure-Rust NTLM sends its
        // AUTHENTICATE as a second LOGIN7-typed message, which SQL Server takes as well.
        if msg.packet_type != packet_type::SSPI && msg.packet_type != packet_type::LOGIN7 {
            return Err(ProtocolError::UnexpectedMessage {
                packet_type: msg.packet_type,
                state: "waiting for the SSPI (NTLM AUTHENTICATE) message",
            }
            .into());
        }
        let auth = ntlm::Authenticate::parse(&msg.payload)?;
        let proved = backend
            .windows_password(&auth.domain, &auth.user)
            .is_some_and(|password| auth.proves(&password, &server_challenge));
        tracing::debug!(peer = %self.peer, domain = %auth.domain, user = %auth.user, proved, "NTLM login");
        Ok(proved.then(|| format!("{}\\{}", domain.netbios, auth.user)))
    }

    /// The request loop after a successful login.
    async fn requests<S: Session>(&mut self, session: &mut S, cancel: &CancellationToken) -> End {
        let shutdown = self.shutdown.clone();
        loop {
            let msg = tokio::select! {
                biased;
                _ = cancel.cancelled() => return End::Cancelled,
                _ = shutdown.cancelled() => return End::Cancelled,
                m = self.next_message() => match m {
                    Ok(m) => m,
                    Err(end) => return end,
                },
            };
            let result = match msg.packet_type {
                packet_type::SQL_BATCH => self.batch(session, cancel, &msg.payload).await,
                packet_type::RPC => self.rpc(session, cancel, &msg.payload).await,
                packet_type::TRANSACTION_MANAGER => self.transaction_manager(&msg.payload).await,
                // An Attention with nothing running (the response already went out): the client
                // still waits for the acknowledgement [2.2.1.7].
                packet_type::ATTENTION => self.ack_attention().await,
                other => Err(ProtocolError::UnexpectedMessage {
                    packet_type: other,
                    state: "waiting for a request",
                }
                .into()),
            };
            if let Err(end) = result {
                return end;
            }
        }
    }

    async fn batch<S: Session>(
        &mut self,
        session: &mut S,
        cancel: &CancellationToken,
        payload: &[u8],
    ) -> Result<(), End> {
        let sql = request::decode_sql_batch(payload, self.headers())?;
        let Some(events) = self.run(session.batch(sql), cancel).await? else {
            session.attention();
            return self.ack_attention().await;
        };
        match response::batch_reply(events, &self.server_name, self.tds_version) {
            Reply::Tokens(t) => self.send(packet_type::TABULAR_RESULT, &t).await,
            Reply::Disconnect => Err(End::Disconnected),
            Reply::Unanswered => Err(self.ignore(cancel).await),
        }
    }

    async fn rpc<S: Session>(
        &mut self,
        session: &mut S,
        cancel: &CancellationToken,
        payload: &[u8],
    ) -> Result<(), End> {
        let calls = match request::decode_rpc(payload, self.headers()) {
            Ok(calls) => calls,
            Err(RequestError::Protocol(e)) => return Err(e.into()),
            Err(RequestError::UnknownType {
                ordinal,
                name,
                type_byte,
            }) => {
                return self
                    .send_rpc_error(unknown_type_error(ordinal, &name, type_byte))
                    .await;
            }
        };
        let mut tokens = Vec::new();
        let count = calls.len();
        for (i, call) in calls.into_iter().enumerate() {
            let Some(events) = self.run(session.rpc(call.clone()), cancel).await? else {
                session.attention();
                return self.ack_attention().await;
            };
            match response::rpc_reply(
                events,
                &call,
                &self.server_name,
                i + 1 == count,
                self.tds_version,
            ) {
                Reply::Tokens(t) => tokens.extend(t),
                Reply::Disconnect => return Err(End::Disconnected),
                Reply::Unanswered => return Err(self.ignore(cancel).await),
            }
        }
        self.send(packet_type::TABULAR_RESULT, &tokens).await
    }

    /// Runs a backend future while still reading the socket. `Ok(None)` means the client sent an
    /// Attention: the future has been dropped, which is how a running statement is cancelled.
    async fn run<F>(
        &mut self,
        fut: F,
        cancel: &CancellationToken,
    ) -> Result<Option<Vec<crate::Event>>, End>
    where
        F: std::future::Future<Output = Vec<crate::Event>>,
    {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(End::Cancelled),
                _ = self.shutdown.cancelled() => return Err(End::Cancelled),
                events = &mut fut => return Ok(Some(events)),
                m = self.reader.next_message() => match m? {
                    Some(m) if m.packet_type == packet_type::ATTENTION => return Ok(None),
                    Some(m) => self.queued.push_back(m),
                    None => return Err(End::ClientClosed),
                },
            }
        }
    }

    /// Answers nothing from now on: reads and discards whatever the client sends until it closes,
    /// `until` is cancelled (the host is back, the session was ended) or the server shuts down.
    /// This is a vanished host as the client sees it: TCP accepted the bytes, nobody replies.
    async fn ignore(&mut self, until: &CancellationToken) -> End {
        loop {
            tokio::select! {
                biased;
                _ = until.cancelled() => return End::Ignored,
                _ = self.shutdown.cancelled() => return End::Cancelled,
                m = self.reader.next_message() => match m {
                    Ok(Some(_)) => {}
                    Ok(None) => return End::ClientClosed,
                    Err(e) => return End::Protocol(e),
                },
            }
        }
    }

    /// DONE with DONE_ATTN, alone in its own message [2.2.1.7, 2.2.7.6]. SQL Server sets its
    /// CurCmd to 0xFD, as a packet capture of SQL Server's acknowledgement shows
    /// (`FD 20 00 FD 00 ...`, dotnet/SqlClient pull request 2714); the lab sends the same bytes.
    async fn ack_attention(&mut self) -> Result<(), End> {
        let mut w = TokenWriter::for_version(self.tds_version);
        w.done(token_type::DONE, done_status::ATTN, ATTENTION_CUR_CMD, 0);
        self.send(packet_type::TABULAR_RESULT, &w.buf).await
    }

    async fn send_rpc_error(&mut self, error: Message) -> Result<(), End> {
        let mut w = TokenWriter::for_version(self.tds_version);
        w.message(token_type::ERROR, &error, &self.server_name);
        w.done(token_type::DONE, done_status::ERROR, 0, 0);
        self.send(packet_type::TABULAR_RESULT, &w.buf).await
    }

    /// Transaction Manager requests are answered here, not by the backend: the lab's engine
    /// models transactions through T-SQL, and all tiberius needs is the ENVCHANGE carrying the
    /// descriptor it must echo in later ALL_HEADERS, then DONE.
    async fn transaction_manager(&mut self, payload: &[u8]) -> Result<(), End> {
        let req = request::decode_tm(payload, self.headers())?;
        let mut w = TokenWriter::for_version(self.tds_version);
        let ended = self
            .transaction
            .take()
            .map(u64::to_le_bytes)
            .unwrap_or_default();
        match req {
            TmRequest::Begin => {
                let id = self.begin_transaction();
                w.env_change_bytes(env_type::BEGIN_TRAN, &id, &[]);
            }
            TmRequest::Commit { begin_new } | TmRequest::Rollback { begin_new } => {
                let ty = if matches!(req, TmRequest::Commit { .. }) {
                    env_type::COMMIT_TRAN
                } else {
                    env_type::ROLLBACK_TRAN
                };
                w.env_change_bytes(ty, &[], &ended);
                if begin_new {
                    let id = self.begin_transaction();
                    w.env_change_bytes(env_type::BEGIN_TRAN, &id, &[]);
                }
            }
            TmRequest::Other(_) => {}
        }
        w.done(token_type::DONE, 0, 0, 0);
        self.send(packet_type::TABULAR_RESULT, &w.buf).await
    }

    fn begin_transaction(&mut self) -> [u8; 8] {
        let id = self.next_transaction;
        self.next_transaction += 1;
        self.transaction = Some(id);
        id.to_le_bytes()
    }
}

/// A Windows login that did not verify: SQL Server's 18452 (the SSPI handshake failed).
fn untrusted_domain() -> Message {
    Message {
        number: 18452,
        state: 1,
        class: 14,
        message: "Login failed. The login is from an untrusted domain and cannot be used with Integrated authentication.".to_owned(),
        procedure: String::new(),
        line: 1,
    }
}

/// An NTLM server challenge: 8 bytes nobody can predict. std's hasher keys are random per
/// process and differ per `RandomState`, which is all a lab's challenge needs.
fn random_challenge() -> [u8; 8] {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish().to_le_bytes()
}

/// Now as a Windows FILETIME: 100 ns units since 1601-01-01 UTC.
fn filetime_now() -> u64 {
    const UNIX_TO_1601_SECS: u64 = 11_644_473_600;
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (since.as_secs() + UNIX_TO_1601_SECS) * 10_000_000 + u64::from(since.subsec_nanos() / 100)
}

/// SQL Server's answer to an RPC parameter of an unknown type: error 8009, class 16.
fn unknown_type_error(ordinal: usize, name: &str, type_byte: u8) -> Message {
    Message {
        number: 8009,
        state: 1,
        class: 16,
        message: format!(
            "The incoming tabular data stream (TDS) remote procedure call (RPC) protocol stream is incorrect. Parameter {ordinal} (\"{name}\"): Data type 0x{type_byte:02X} is unknown."
        ),
        procedure: String::new(),
        line: 1,
    }
}
