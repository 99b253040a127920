//! The `pcfail_lab_tds::Backend` of one instance: logins become sessions that run SQL against the
//! shared world.
//!
//! A login becomes an [`EngineSession`]; each request is admitted here (transcript, liveness, fault
//! rules) and then run by a task of its own (request.rs), so it completes even when its client is
//! gone. Fault delays happen here, before the request reaches the server, with the world's mutex
//! released.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pcfail_lab_tds::{Backend, Event, Login, Message, RpcCall, Session, WindowsDomain};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::errors::SqlError;
use super::exec::{self, SessionLocal};
use super::expr;
use super::faults;
use super::request::{Request, Worker, failed};
use super::world::{SessionInfo, World};
use super::{Clock, Role, SharedWorld};

fn lock(world: &Mutex<World>) -> MutexGuard<'_, World> {
    // A panic in one session must not take the whole lab down with a poisoned mutex.
    world.lock().unwrap_or_else(|e| e.into_inner())
}

/// One per instance; implements `pcfail_lab_tds::Backend`.
pub struct InstanceBackend {
    world: SharedWorld,
    role: Role,
    clock: Arc<Clock>,
}

impl InstanceBackend {
    pub fn new(world: SharedWorld, role: Role, clock: Arc<Clock>) -> Self {
        InstanceBackend { world, role, clock }
    }
}

fn refusal(e: SqlError) -> Vec<Message> {
    vec![exec::message(&e, 1)]
}

/// A login whose initial database cannot be opened: 4060, then the 18456 that ends every failed
/// login on SQL Server.
fn unavailable_database(database: &str, user: &str) -> Vec<Message> {
    vec![
        exec::message(&SqlError::new(4060, &[database]), 1),
        exec::message(&SqlError::new(18456, &[user]), 1),
    ]
}

impl Backend for InstanceBackend {
    type Session = EngineSession;

    fn login(
        &self,
        login: &Login,
        _peer: std::net::SocketAddr,
    ) -> Result<(EngineSession, CancellationToken), Vec<Message>> {
        let now = self.clock.now();
        let mut w = lock(&self.world);
        if !w.is_up(self.role) {
            return Err(refusal(SqlError::new(17187, &[])));
        }
        faults::refresh(&mut w, now);
        let config = &w.config;
        // A Windows login arrives verified (the protocol layer checked its NTLM proof): it only
        // has to be the account SQL Server has a login for.
        let known = if login.windows {
            config
                .windows_login
                .as_ref()
                .is_some_and(|(user, _)| login.user.eq_ignore_ascii_case(user))
        } else {
            login.user.eq_ignore_ascii_case(&config.login_user)
                && login.password == config.login_password
        };
        if !known {
            return Err(refusal(SqlError::new(18456, &[&login.user])));
        }
        let database = if login.database.is_empty() {
            "master".to_owned()
        } else {
            login.database.clone()
        };
        let Some(db) = w.inst(self.role).and_then(|i| i.db(&database)) else {
            return Err(unavailable_database(&database, &login.user));
        };
        if db.is_restoring() {
            return Err(unavailable_database(&database, &login.user));
        }
        let database = db.name.clone();
        let token = CancellationToken::new();
        let info = SessionInfo {
            spid: 0,
            login: login.user.clone(),
            host: login.host_name.clone(),
            program: login.app_name.clone(),
            database: database.clone(),
            login_time: now,
            last_batch: now,
            token: token.clone(),
            virtual_end: None,
            serial: 0,
            busy: false,
            orphaned: false,
            request: None,
        };
        let (spid, serial) = w.open_session(self.role, info);
        // The password never reaches the transcript.
        let text = format!(
            "user={} app={} host={} database={}",
            login.user, login.app_name, login.host_name, database
        );
        w.record(self.role, spid, "login", &text);
        drop(w);
        let session = EngineSession {
            world: self.world.clone(),
            role: self.role,
            clock: self.clock.clone(),
            spid,
            serial,
            token: token.clone(),
            local: SessionLocal::default(),
            running: None,
        };
        Ok((session, token))
    }

    fn server_version(&self) -> (String, [u8; 4]) {
        // SQL Server 2016 SP2: 13.0.5026 (5026 = 0x13A2), the version the whole engine emulates.
        ("Microsoft SQL Server".to_owned(), [13, 0, 0x13, 0xA2])
    }

    fn server_name(&self) -> String {
        lock(&self.world)
            .inst(self.role)
            .map(|i| i.config.name.clone())
            .unwrap_or_default()
    }

    fn unreachable(&self) -> Option<CancellationToken> {
        lock(&self.world).unreachable_token(self.role)
    }

    fn windows_domain(&self) -> Option<WindowsDomain> {
        let w = lock(&self.world);
        w.config.windows_login.as_ref()?;
        let instance = w.config.instances.iter().find(|i| i.role == self.role)?;
        let (netbios, _) = w.config.windows_login.as_ref()?.0.split_once('\\')?;
        let dns = instance
            .fqdn
            .split_once('.')
            .map(|(_, d)| d)
            .unwrap_or_default();
        Some(WindowsDomain {
            netbios: netbios.to_owned(),
            dns: dns.to_owned(),
            computer: instance.name.clone(),
            dns_computer: instance.fqdn.clone(),
        })
    }

    fn windows_password(&self, domain: &str, user: &str) -> Option<String> {
        let w = lock(&self.world);
        let (account, password) = w.config.windows_login.as_ref()?;
        let (netbios, name) = account.split_once('\\')?;
        let instance = w.config.instances.iter().find(|i| i.role == self.role)?;
        let dns = instance
            .fqdn
            .split_once('.')
            .map(|(_, d)| d)
            .unwrap_or_default();
        let domain_known = domain.eq_ignore_ascii_case(netbios) || domain.eq_ignore_ascii_case(dns);
        (domain_known && user.eq_ignore_ascii_case(name)).then(|| password.clone())
    }
}

pub struct EngineSession {
    world: SharedWorld,
    role: Role,
    clock: Arc<Clock>,
    spid: u16,
    serial: u64,
    token: CancellationToken,
    local: SessionLocal,
    /// The request whose task was started last, until its answer has been taken.
    running: Option<Running>,
}

/// A request's task and the token an Attention cancels.
struct Running {
    handle: JoinHandle<(Vec<Event>, SessionLocal)>,
    attention: CancellationToken,
}

/// The operation name 3013 needs when a fault fails a BACKUP/RESTORE statement.
fn backup_restore_op(sql: &str) -> Option<String> {
    let words: Vec<String> = sql
        .split_whitespace()
        .take(2)
        .map(str::to_uppercase)
        .collect();
    match words.as_slice() {
        [a, b] if (a == "BACKUP" || a == "RESTORE") => Some(format!("{a} {b}")),
        _ => None,
    }
}

/// The catalog error a fault names, its placeholders filled from the statement as well as the lab can.
fn fault_errors(number: u32, sql: &str) -> Vec<SqlError> {
    let literals: Vec<String> = parser_literals(sql);
    let e = if number == 3201 {
        let path = literals
            .iter()
            .find(|l| l.contains('/') || l.contains('\\'))
            .cloned()
            .unwrap_or_default();
        SqlError::new(
            3201,
            &[&path, "2(The system cannot find the file specified.)"],
        )
    } else {
        let args: Vec<&str> = literals.iter().map(String::as_str).collect();
        SqlError::new(number, &args)
    };
    let mut out = vec![e];
    if let Some(op) = backup_restore_op(sql) {
        out.push(SqlError::terminating(&op));
    }
    out
}

/// Identifiers in brackets and string literals of a statement, in order (for fault messages).
fn parser_literals(sql: &str) -> Vec<String> {
    super::lexer::lex(sql)
        .map(|toks| {
            toks.into_iter()
                .filter_map(|t| match t {
                    super::lexer::Tok::Str { text, .. } => Some(text),
                    super::lexer::Tok::Ident { text, quoted: true } => Some(text),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

impl EngineSession {
    /// Transcript, liveness and faults, before anything runs: `Ok` with the run time a fault gives
    /// the request, or `Err` with the whole answer.
    async fn admit(&mut self, kind: &str, text: &str) -> Result<Option<Duration>, Vec<Event>> {
        let fault = {
            let mut w = lock(&self.world);
            if w.is_lost(self.role) {
                return Err(vec![Event::Unanswered]);
            }
            if !w.is_up(self.role)
                || w.session(self.role, self.spid).is_none()
                || self.token.is_cancelled()
            {
                return Err(vec![Event::Disconnect]);
            }
            w.record(self.role, self.spid, kind, text);
            let now = self.clock.now();
            if let Some(s) = w.session_mut(self.role, self.spid) {
                s.last_batch = now;
            }
            faults::match_sql(&mut w, self.role, text, now)
        };
        let Some(fault) = fault else { return Ok(None) };
        if let Some(d) = fault.delay {
            tokio::select! {
                () = tokio::time::sleep(d) => {}
                () = self.token.cancelled() => return Err(vec![Event::Disconnect]),
            }
        }
        if fault.down {
            lock(&self.world).set_instance_up(self.role, false);
            return Err(vec![Event::Disconnect]);
        }
        if fault.drop_connection {
            return Err(vec![Event::Disconnect]);
        }
        if let Some(n) = fault.error {
            return Err(failed(fault_errors(n, text)));
        }
        Ok(fault.run)
    }

    /// Waits for the previous request's task (still running if the client gave up on it or sent
    /// an Attention) and takes the session's settings back from it.
    async fn settle(&mut self) {
        if let Some(running) = self.running.take() {
            match running.handle.await {
                Ok((_, local)) => self.local = local,
                Err(e) => tracing::error!(spid = self.spid, error = %e, "a request task failed"),
            }
        }
    }

    /// Hands the request to a task of its own and waits for its answer. If this future is dropped
    /// (the client closed the connection), the task runs on; the next request waits for it.
    async fn start(&mut self, request: Request, fault_run: Option<Duration>) -> Vec<Event> {
        let attention = CancellationToken::new();
        let modelled = {
            let mut w = lock(&self.world);
            w.request_started(self.role, self.spid, self.serial);
            w.config.io_mb_per_s.is_some()
        };
        let worker = Worker {
            world: self.world.clone(),
            role: self.role,
            clock: self.clock.clone(),
            spid: self.spid,
            serial: self.serial,
            token: self.token.clone(),
            attention: attention.clone(),
            local: std::mem::take(&mut self.local),
            fault_run,
            modelled,
        };
        let handle = tokio::spawn(worker.run(request));
        let running = self.running.insert(Running { handle, attention });
        let result = (&mut running.handle).await;
        self.running = None;
        match result {
            Ok((out, local)) => {
                self.local = local;
                out
            }
            Err(e) => {
                tracing::error!(spid = self.spid, error = %e, "a request task failed");
                vec![Event::Disconnect]
            }
        }
    }
}

impl Session for EngineSession {
    fn spid(&self) -> u16 {
        self.spid
    }

    fn database(&self) -> String {
        lock(&self.world).current_db(self.role, self.spid)
    }

    async fn batch(&mut self, sql: String) -> Vec<Event> {
        self.settle().await;
        let fault_run = match self.admit("batch", &sql).await {
            Ok(run) => run,
            Err(answer) => return answer,
        };
        self.start(Request::Batch(sql), fault_run).await
    }

    async fn rpc(&mut self, call: RpcCall) -> Vec<Event> {
        let is_executesql = call.proc_id == Some(10)
            || call
                .proc_name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case("sp_executesql"));
        let text = if is_executesql {
            call.params
                .first()
                .and_then(|p| expr::as_text(&p.value))
                .unwrap_or_default()
        } else {
            let args: Vec<String> = call
                .params
                .iter()
                .map(|p| {
                    format!(
                        "{}={}",
                        p.name,
                        expr::as_text(&p.value).unwrap_or_else(|| "NULL".to_owned())
                    )
                })
                .collect();
            format!(
                "{} {}",
                call.proc_name.clone().unwrap_or_default(),
                args.join(", ")
            )
        };
        self.settle().await;
        let fault_run = match self.admit("rpc", &text).await {
            Ok(run) => run,
            Err(answer) => return answer,
        };
        let request = if is_executesql {
            Request::ExecuteSql(call)
        } else {
            Request::Proc(call)
        };
        self.start(request, fault_run).await
    }

    fn attention(&mut self) {
        if let Some(running) = &self.running {
            running.attention.cancel();
        }
    }

    fn close(&mut self) {
        // A request still running goes on without its client; the session ends with it.
        lock(&self.world).client_gone(self.role, self.spid, self.serial);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faulted_backup_and_restore_errors_are_followed_by_3013() {
        let errs = fault_errors(
            3201,
            "RESTORE LOG [mgc] FROM DISK = N'/lab/copy/mgc_1.trn' WITH NORECOVERY",
        );
        let numbers: Vec<u32> = errs.iter().map(|e| e.number).collect();
        assert_eq!(numbers, vec![3201, 3013]);
        assert!(
            errs[0]
                .text
                .starts_with("Cannot open backup device '/lab/copy/mgc_1.trn'."),
            "{}",
            errs[0].text
        );
        assert_eq!(errs[1].text, "RESTORE LOG is terminating abnormally.");
        assert_eq!(
            fault_errors(1418, "ALTER DATABASE [mgc] SET PARTNER = N'TCP://x:5022'").len(),
            1
        );
    }
}
