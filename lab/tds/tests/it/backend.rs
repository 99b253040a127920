//! A small scripted backend for the protocol tests: a fixed login, built-in commands, and
//! per-test scripts keyed by SQL text.
//!
//! Built-ins (batch text, or sp_executesql's `stmt`):
//! - `SELECT 1`: one NOT NULL int column, value 1.
//! - `ECHO <text>`: one nvarchar(max) column holding `<text>` (proves long requests arrive whole).
//! - `ECHO PARAMS` (RPC only): one row, one column per `@P` parameter, typed and valued as decoded.
//! - `WAITFOR FOREVER`: never completes; records `dropped` when the protocol layer drops it.
//! - `DISCONNECT`: [`Event::Disconnect`].
//! - anything registered with [`TestBackend::script`].
//!
//! RPC by name `echo_proc`: every OUTPUT parameter comes back as a RETURNVALUE of its input, and the
//! return status is 7.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use pcfail_lab_tds::{
    Backend, Column, Event, Login, Message, RpcCall, Session, SqlType, Value, WindowsDomain,
};
use tokio_util::sync::CancellationToken;

pub const PASSWORD: &str = "Lab-Pässw0rd!";
pub const SERVER_NAME: &str = "ATL-SQL-001";
/// The one Windows account the test domain knows, and its password.
pub const WINDOWS_USER: &str = "LITWAREINC\\pcfail";
pub const WINDOWS_PASSWORD: &str = "Wïndows-Pa55!";

#[derive(Default)]
pub struct TestBackend {
    next_spid: AtomicU16,
    scripts: Mutex<HashMap<String, Vec<Event>>>,
    /// Every session's KILL token, by spid.
    pub sessions: Mutex<Vec<(u16, CancellationToken)>>,
    /// What happened, in order: `batch <sql>`, `rpc <name>`, `dropped`, `closed <spid>`.
    pub transcript: Arc<Mutex<Vec<String>>>,
}

impl TestBackend {
    pub fn new() -> Arc<Self> {
        Arc::new(TestBackend {
            next_spid: AtomicU16::new(51),
            ..Default::default()
        })
    }

    /// Makes `sql` answer with `events`.
    pub fn script(&self, sql: &str, events: Vec<Event>) {
        self.scripts.lock().unwrap().insert(sql.to_owned(), events);
    }

    pub fn transcript(&self) -> Vec<String> {
        self.transcript.lock().unwrap().clone()
    }
}

pub fn error(number: u32, class: u8, state: u8, text: &str) -> Event {
    Event::Error(Message {
        number,
        state,
        class,
        message: text.to_owned(),
        procedure: String::new(),
        line: 1,
    })
}

pub fn done(row_count: Option<u64>, error: bool) -> Event {
    Event::Done { row_count, error }
}

pub fn column(name: &str, ty: SqlType, nullable: bool) -> Column {
    Column {
        name: name.to_owned(),
        ty,
        nullable,
    }
}

impl Backend for TestBackend {
    type Session = TestSession;

    fn login(
        &self,
        login: &Login,
        _peer: SocketAddr,
    ) -> Result<(TestSession, CancellationToken), Vec<Message>> {
        let known = if login.windows {
            login.user == WINDOWS_USER
        } else {
            login.user == "sa" && login.password == PASSWORD
        };
        if !known {
            return Err(vec![Message {
                number: 18456,
                state: 1,
                class: 14,
                message: format!("Login failed for user '{}'.", login.user),
                procedure: String::new(),
                line: 1,
            }]);
        }
        let spid = self.next_spid.fetch_add(1, Ordering::SeqCst);
        let token = CancellationToken::new();
        self.sessions.lock().unwrap().push((spid, token.clone()));
        let database = if login.database.is_empty() {
            "master".to_owned()
        } else {
            login.database.clone()
        };
        let session = TestSession {
            spid,
            database,
            scripts: self.scripts.lock().unwrap().clone(),
            transcript: self.transcript.clone(),
        };
        Ok((session, token))
    }

    fn server_name(&self) -> String {
        SERVER_NAME.to_owned()
    }

    fn windows_domain(&self) -> Option<WindowsDomain> {
        Some(WindowsDomain {
            netbios: "LITWAREINC".into(),
            dns: "litwareinc.com".into(),
            computer: SERVER_NAME.into(),
            dns_computer: "atl-sql-001.litwareinc.com".into(),
        })
    }

    fn windows_password(&self, domain: &str, user: &str) -> Option<String> {
        let (d, u) = WINDOWS_USER.split_once('\\').unwrap();
        let domain_known =
            domain.eq_ignore_ascii_case(d) || domain.eq_ignore_ascii_case("litwareinc.com");
        (domain_known && user.eq_ignore_ascii_case(u)).then(|| WINDOWS_PASSWORD.to_owned())
    }
}

pub struct TestSession {
    spid: u16,
    database: String,
    scripts: HashMap<String, Vec<Event>>,
    transcript: Arc<Mutex<Vec<String>>>,
}

/// Records `dropped` when the future holding it is dropped before finishing.
struct DropRecorder(Arc<Mutex<Vec<String>>>);

impl Drop for DropRecorder {
    fn drop(&mut self) {
        self.0.lock().unwrap().push("dropped".to_owned());
    }
}

impl TestSession {
    fn log(&self, line: String) {
        self.transcript.lock().unwrap().push(line);
    }

    async fn statement(&self, sql: &str) -> Vec<Event> {
        // tsql sends each batch with its trailing newline.
        let sql = sql.trim();
        if let Some(events) = self.scripts.get(sql) {
            return events.clone();
        }
        if sql == "SELECT 1" {
            return vec![
                Event::Rows {
                    columns: vec![column("", SqlType::Int, false)],
                    rows: vec![vec![Value::Int(1)]],
                },
                done(Some(1), false),
            ];
        }
        if let Some(text) = sql.strip_prefix("ECHO ") {
            return vec![
                Event::Rows {
                    columns: vec![column("text", SqlType::NVarCharMax, true)],
                    rows: vec![vec![Value::String(text.to_owned())]],
                },
                done(Some(1), false),
            ];
        }
        if sql == "WAITFOR FOREVER" {
            let _recorder = DropRecorder(self.transcript.clone());
            std::future::pending::<()>().await;
        }
        if sql == "DISCONNECT" {
            return vec![Event::Disconnect];
        }
        vec![
            error(
                2812,
                16,
                62,
                &format!("Could not find stored procedure '{sql}'."),
            ),
            done(None, true),
        ]
    }
}

impl Session for TestSession {
    fn spid(&self) -> u16 {
        self.spid
    }

    fn database(&self) -> String {
        self.database.clone()
    }

    async fn batch(&mut self, sql: String) -> Vec<Event> {
        self.log(format!("batch {sql}"));
        self.statement(&sql).await
    }

    async fn rpc(&mut self, call: RpcCall) -> Vec<Event> {
        let name = call
            .proc_name
            .clone()
            .unwrap_or_else(|| format!("#{}", call.proc_id.unwrap_or(0)));
        self.log(format!("rpc {name}"));
        if call.proc_name.as_deref() == Some("echo_proc") {
            let mut events: Vec<Event> = call
                .params
                .iter()
                .filter(|p| p.output)
                .map(|p| Event::ReturnValue {
                    name: p.name.clone(),
                    ty: p.ty.clone(),
                    value: p.value.clone(),
                })
                .collect();
            events.push(Event::ReturnStatus(7));
            return events;
        }
        let stmt = match call.params.first().map(|p| &p.value) {
            Some(Value::String(s)) => s.clone(),
            _ => {
                return vec![
                    error(
                        8144,
                        16,
                        2,
                        "Procedure or function has too many arguments specified.",
                    ),
                    done(None, true),
                ];
            }
        };
        if stmt == "ECHO PARAMS" {
            let params: Vec<_> = call.params.iter().skip(2).collect();
            return vec![
                Event::Rows {
                    columns: params
                        .iter()
                        .map(|p| column(&p.name, p.ty.clone(), true))
                        .collect(),
                    rows: vec![params.iter().map(|p| p.value.clone()).collect()],
                },
                done(Some(1), false),
            ];
        }
        self.statement(&stmt).await
    }

    fn close(&mut self) {
        self.log(format!("closed {}", self.spid));
    }
}
