//! The seam between the TDS protocol layer and whatever gives SQL its meaning.
//!
//! This crate owns bytes on the wire; it never interprets SQL. A [`Backend`] turns a login into a
//! [`Session`], and a session turns each request into a list of [`Event`]s, which the protocol layer
//! encodes as tokens [MS-TDS 2.2.7]. The lab's engine implements these traits; tests in this crate
//! implement a tiny echo backend.
//!
//! Deliberately simple shapes: a whole response is produced before it is encoded (the lab's result
//! sets are small), and every value carries its own SQL type through the [`Column`] that describes it.

use std::future::Future;

use tokio_util::sync::CancellationToken;

/// What the client sent in LOGIN7 [2.2.6.4], decoded. The password is already de-obfuscated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    pub password: String,
    pub database: String,
    pub app_name: String,
    pub host_name: String,
    pub server_name: String,
    /// TDS version the client asked for, as sent (little-endian decoded), e.g. 0x74000004.
    pub tds_version: u32,
    /// True when Windows authenticated the user (an NTLM login the protocol layer verified with
    /// [`Backend::windows_password`]); `user` is then `DOMAIN\user` and `password` is empty.
    pub windows: bool,
}

/// The Windows domain an instance's host is joined to, as its NTLM CHALLENGE names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowsDomain {
    /// NetBIOS domain name, e.g. `LITWAREINC`.
    pub netbios: String,
    /// DNS domain name, e.g. `litwareinc.com`.
    pub dns: String,
    /// The host's NetBIOS name, e.g. `DAL-SQL-001`.
    pub computer: String,
    /// The host's FQDN.
    pub dns_computer: String,
}

/// An ERROR or INFO token's contents [2.2.7.10], [2.2.7.13].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub number: u32,
    pub state: u8,
    pub class: u8,
    pub message: String,
    /// Procedure name, empty for a batch.
    pub procedure: String,
    pub line: u32,
}

/// The SQL type of a result column or a value, as the real catalog declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SqlType {
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Bit,
    /// `float` (8 bytes).
    Float,
    /// `nvarchar(n)` with n in characters (1..=4000); `sysname` is `NVarChar(128)`.
    NVarChar(u16),
    /// `nvarchar(max)`, sent as PLP.
    NVarCharMax,
    /// `varchar(n)` / `char(n)`: single-byte, Latin1_General code page 1252.
    VarChar(u16),
    Char(u16),
    /// `numeric(p, s)`, e.g. LSNs are `numeric(25, 0)`.
    Numeric {
        precision: u8,
        scale: u8,
    },
    /// Classic `datetime`.
    DateTime,
    UniqueIdentifier,
    VarBinary(u16),
    /// `sql_variant` (DATABASEPROPERTYEX); the value's own type travels with it.
    Variant,
    /// `real` (4-byte float); values travel as [`Value::Float`].
    Real,
    /// `smalldatetime`; values travel as [`Value::DateTime`] (ticks rounded to whole minutes).
    SmallDateTime,
    /// `date`; values are [`Value::Date`].
    Date,
    /// `time(scale)`; values are [`Value::Time`].
    Time(u8),
    /// `datetime2(scale)`; values are [`Value::DateTime2`].
    DateTime2(u8),
    /// `datetimeoffset(scale)`; values are [`Value::DateTimeOffset`].
    DateTimeOffset(u8),
    /// `xml` (untyped); values travel as [`Value::String`].
    Xml,
    /// `varbinary(max)`, sent as PLP.
    VarBinaryMax,
    /// `varchar(max)`, sent as PLP.
    VarCharMax,
}

/// One value in a row, a parameter, or a return value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    /// Any integer type (tinyint..bigint) and bit as 0/1.
    Int(i64),
    Bit(bool),
    Float(f64),
    String(String),
    /// Scaled integer: `Numeric(v, s)` is v / 10^s.
    Numeric(i128, u8),
    /// Days since 1900-01-01 and 1/300 s ticks since midnight, as `datetime` stores them [2.2.5.5.1.8].
    DateTime {
        days: i32,
        ticks: u32,
    },
    /// The 16 bytes in SQL Server's wire order (first three groups little-endian).
    Guid([u8; 16]),
    Binary(Vec<u8>),
    /// A `sql_variant`: base type and value.
    Variant(Box<(SqlType, Value)>),
    /// `date`: days since 0001-01-01 [2.2.5.5.1.7].
    Date(u32),
    /// `time`: `increments` units of 10^-scale seconds since midnight [2.2.5.5.1.7].
    Time {
        increments: u64,
        scale: u8,
    },
    /// `datetime2`: date and time as for [`Value::Date`] and [`Value::Time`].
    DateTime2 {
        days: u32,
        increments: u64,
        scale: u8,
    },
    /// `datetimeoffset`: the *UTC* date and time (as on the wire) plus the offset in minutes.
    DateTimeOffset {
        days: u32,
        increments: u64,
        scale: u8,
        offset_minutes: i16,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub ty: SqlType,
    pub nullable: bool,
}

/// A decoded RPC parameter [2.2.6.6].
#[derive(Clone, Debug, PartialEq)]
pub struct RpcParam {
    /// Name as sent, with its leading `@` if the client sent one (sp_executesql's `stmt` and `params`
    /// arrive without it).
    pub name: String,
    /// True when the ByRef (OUTPUT) status flag is set.
    pub output: bool,
    pub ty: SqlType,
    pub value: Value,
}

/// A decoded RPC request: either a procedure id (0xFFFF + id; 10 = sp_executesql) or a name.
#[derive(Clone, Debug, PartialEq)]
pub struct RpcCall {
    pub proc_id: Option<u16>,
    pub proc_name: Option<String>,
    pub params: Vec<RpcParam>,
}

/// One piece of a response, in the order it goes on the wire.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// COLMETADATA then one ROW per row.
    Rows {
        columns: Vec<Column>,
        rows: Vec<Vec<Value>>,
    },
    /// The end of one statement: DONE in a batch, DONEINPROC inside an RPC. The protocol layer sets
    /// DONE_MORE on every DONE but the last of the response. `row_count: Some` sets DONE_COUNT.
    Done {
        row_count: Option<u64>,
        error: bool,
    },
    Info(Message),
    Error(Message),
    /// RETURNSTATUS of an RPC (the protocol layer follows it with DONEPROC).
    ReturnStatus(i32),
    /// RETURNVALUE of an OUTPUT parameter.
    ReturnValue {
        name: String,
        ty: SqlType,
        value: Value,
    },
    /// ENVCHANGE type 1 (database) after `USE`. The backend sends the accompanying INFO 5701
    /// ("Changed database context to '<db>'.") itself, as its own [`Event::Info`] after this one.
    DatabaseChanged {
        new: String,
        old: String,
    },
    /// Close the connection without answering (fault injection: a dropped connection).
    Disconnect,
    /// Never answer: the server's host became unreachable while the request ran (a lost data
    /// center). The socket stays open and nothing more is read or sent until the session's token is
    /// cancelled, the server shuts down, or the client gives up and closes it, exactly what a client
    /// sees when the machine behind an established TCP connection vanishes.
    Unanswered,
}

/// Turns logins into sessions. One per simulated instance.
pub trait Backend: Send + Sync + 'static {
    type Session: Session;

    /// Accept or refuse a login. `Err` carries the ERROR tokens to send, in order (18456 for a bad
    /// password; 4060 then 18456 for an unavailable initial database, as SQL Server sends them). The
    /// token is cancelled when the session must end (KILL, the instance going down): the protocol
    /// layer then closes the socket.
    fn login(
        &self,
        login: &Login,
        peer: std::net::SocketAddr,
    ) -> Result<(Self::Session, CancellationToken), Vec<Message>>;

    /// Text for LOGINACK's program name and the PRELOGIN version, e.g. ("Microsoft SQL Server", [16,0,4223]).
    fn server_version(&self) -> (String, [u8; 4]) {
        ("Microsoft SQL Server".to_owned(), [16, 0, 0x10, 0x7F])
    }

    /// The instance's name as SQL Server reports it in ERROR/INFO tokens (`@@SERVERNAME`).
    fn server_name(&self) -> String;

    /// `Some(token)` while the instance's host cannot be reached at all (its data center is lost):
    /// a new connection is then accepted by nothing, neither PRELOGIN nor LOGIN7 is ever answered,
    /// so the client waits for its own timeout instead of being refused. The connection is closed
    /// once `token` is cancelled (the host is back: the client's half-open connection is dead).
    /// `None` (the default) is a reachable host.
    fn unreachable(&self) -> Option<CancellationToken> {
        None
    }

    /// The domain the host is joined to; `None` (the default): not joined, Windows logins fail.
    fn windows_domain(&self) -> Option<WindowsDomain> {
        None
    }

    /// The password of a domain account as the domain controller knows it, to verify an NTLM
    /// login; `None` when there is no such account. Names compare case-insensitively.
    fn windows_password(&self, _domain: &str, _user: &str) -> Option<String> {
        None
    }
}

/// A logged-in connection.
pub trait Session: Send + 'static {
    /// The session id (`@@SPID`) the packets carry.
    fn spid(&self) -> u16;
    /// The current database (for the login's ENVCHANGE).
    fn database(&self) -> String;
    /// Run a SQLBatch. The future is dropped on an Attention (see [`Session::attention`]) and when
    /// the client goes away.
    fn batch(&mut self, sql: String) -> impl Future<Output = Vec<Event>> + Send;
    /// Run an RPC request.
    fn rpc(&mut self, call: RpcCall) -> impl Future<Output = Vec<Event>> + Send;
    /// The client sent an Attention while the last request ran; its future has been dropped. A
    /// backend whose requests outlive their futures (a server finishing work its client gave up on)
    /// cancels here what can be cancelled. The default does nothing.
    fn attention(&mut self) {}
    /// The connection ended (FIN, reset, KILL or shutdown); release what the session holds.
    fn close(&mut self);
}
