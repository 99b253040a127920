//! Scripted SQL instances on loopback: the lab's TDS protocol layer with a tiny backend that records
//! every batch (instance, text) and answers from a script: `SELECT state_desc ...` gets a row, a
//! statement matching a failure rule gets that error (and 3013 after BACKUP/RESTORE, as SQL Server
//! sends it), anything else succeeds. Not the lab's engine: this checks what the shell sends and how
//! it reports what comes back.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use pcfail_lab_tds::{Backend, Column, Event, Login, Message, RpcCall, Session, SqlType, Value};
use tokio_util::sync::CancellationToken;

pub const PASSWORD: &str = "lab-password";

/// A statement prefix that fails with this error number, class and text.
#[derive(Clone)]
pub struct Failure {
    pub instance: &'static str,
    pub prefix: &'static str,
    pub number: u32,
    pub message: String,
}

#[derive(Clone, Default)]
struct Script {
    transcript: Arc<Mutex<Vec<(String, String)>>>,
    failures: Arc<Mutex<Vec<Failure>>>,
    /// `sys.databases.state_desc` of mgc per instance FQDN (absent: no row).
    mgc_state: Arc<Mutex<HashMap<String, String>>>,
}

struct ScriptedBackend {
    fqdn: String,
    script: Script,
}

struct ScriptedSession {
    fqdn: String,
    script: Script,
}

impl Backend for ScriptedBackend {
    type Session = ScriptedSession;

    fn login(
        &self,
        login: &Login,
        _peer: SocketAddr,
    ) -> Result<(ScriptedSession, CancellationToken), Vec<Message>> {
        if login.user != "sa" || login.password != PASSWORD {
            return Err(vec![message(
                18456,
                14,
                format!("Login failed for user '{}'.", login.user),
            )]);
        }
        Ok((
            ScriptedSession {
                fqdn: self.fqdn.clone(),
                script: self.script.clone(),
            },
            CancellationToken::new(),
        ))
    }

    fn server_name(&self) -> String {
        self.fqdn.split('.').next().unwrap().to_uppercase()
    }
}

fn message(number: u32, class: u8, text: String) -> Message {
    Message {
        number,
        state: 1,
        class,
        message: text,
        procedure: String::new(),
        line: 1,
    }
}

impl Session for ScriptedSession {
    fn spid(&self) -> u16 {
        52
    }

    fn database(&self) -> String {
        "master".to_owned()
    }

    async fn batch(&mut self, sql: String) -> Vec<Event> {
        self.script
            .transcript
            .lock()
            .unwrap()
            .push((self.fqdn.clone(), sql.clone()));
        if sql.starts_with("SELECT state_desc FROM sys.databases") {
            let state = self
                .script
                .mgc_state
                .lock()
                .unwrap()
                .get(&self.fqdn)
                .cloned();
            let rows = state
                .into_iter()
                .map(|s| vec![Value::String(s)])
                .collect::<Vec<_>>();
            let count = rows.len() as u64;
            return vec![
                Event::Rows {
                    columns: vec![Column {
                        name: "state_desc".to_owned(),
                        ty: SqlType::NVarChar(60),
                        nullable: true,
                    }],
                    rows,
                },
                Event::Done {
                    row_count: Some(count),
                    error: false,
                },
            ];
        }
        let failure = self
            .script
            .failures
            .lock()
            .unwrap()
            .iter()
            .find(|f| self.fqdn.starts_with(f.instance) && sql.starts_with(f.prefix))
            .cloned();
        match failure {
            None => vec![Event::Done {
                row_count: None,
                error: false,
            }],
            Some(f) => {
                let mut events = vec![Event::Error(message(f.number, 16, f.message))];
                if let Some(kind) = [
                    "BACKUP DATABASE",
                    "BACKUP LOG",
                    "RESTORE DATABASE",
                    "RESTORE LOG",
                ]
                .iter()
                .find(|k| sql.starts_with(**k))
                {
                    events.push(Event::Error(message(
                        3013,
                        16,
                        format!("{kind} is terminating abnormally."),
                    )));
                }
                events.push(Event::Done {
                    row_count: None,
                    error: true,
                });
                events
            }
        }
    }

    async fn rpc(&mut self, _call: RpcCall) -> Vec<Event> {
        vec![
            Event::Error(message(
                2812,
                16,
                "The shell sends batches only.".to_owned(),
            )),
            Event::Done {
                row_count: None,
                error: true,
            },
        ]
    }

    fn close(&mut self) {}
}

/// Four scripted instances named like the lab's, serving on a runtime of their own.
pub struct ScriptedSql {
    /// Owned only to keep the servers running until the struct drops.
    _runtime: tokio::runtime::Runtime,
    shutdown: CancellationToken,
    script: Script,
    pub addresses: HashMap<String, String>,
}

pub const FQDNS: [&str; 4] = [
    "atl-sql-001.litwareinc.com",
    "atl-sql-002.litwareinc.com",
    "dal-sql-001.litwareinc.com",
    "dal-sql-002.litwareinc.com",
];

impl ScriptedSql {
    pub fn start() -> ScriptedSql {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let shutdown = CancellationToken::new();
        let script = Script::default();
        let mut addresses = HashMap::new();
        for fqdn in FQDNS {
            let listener = runtime
                .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .unwrap();
            addresses.insert(fqdn.to_owned(), listener.local_addr().unwrap().to_string());
            let backend = Arc::new(ScriptedBackend {
                fqdn: fqdn.to_owned(),
                script: script.clone(),
            });
            runtime.spawn(pcfail_lab_tds::run(listener, backend, shutdown.clone()));
        }
        ScriptedSql {
            _runtime: runtime,
            shutdown,
            script,
            addresses,
        }
    }

    pub fn fail(&self, failure: Failure) {
        self.script.failures.lock().unwrap().push(failure);
    }

    pub fn set_mgc_state(&self, fqdn: &str, state: &str) {
        self.script
            .mgc_state
            .lock()
            .unwrap()
            .insert(fqdn.to_owned(), state.to_owned());
    }

    /// Every batch received, as (instance FQDN, SQL text), in arrival order.
    pub fn transcript(&self) -> Vec<(String, String)> {
        self.script.transcript.lock().unwrap().clone()
    }
}

impl Drop for ScriptedSql {
    fn drop(&mut self) {
        // Stop accepting; the runtime (and every connection task) goes when the struct drops.
        self.shutdown.cancel();
    }
}
