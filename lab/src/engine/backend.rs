//! The `pcfail_lab_tds::Backend` of one instance: logins become sessions that run SQL against the
//! shared world.
//!
//! The world's mutex is held only while one statement runs; fault delays and application-lock waits
//! happen with it released, so one slow session never stalls the others or the lab's clock.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pcfail_lab_tds::{Backend, Event, Login, Message, RpcCall, Session, Value};
use tokio_util::sync::CancellationToken;

use super::errors::SqlError;
use super::exec::{self, Ctx, SessionLocal, Step};
use super::expr::{self, Vars};
use super::faults;
use super::parser::{self, Statement};
use super::procs::{self, Arg, ProcFail};
use super::world::{SessionInfo, World};
use super::{Clock, Role, SharedWorld};

/// How often a statement waiting for an application lock looks again.
const LOCK_POLL: Duration = Duration::from_millis(20);

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

fn refusal(e: SqlError) -> Message {
    exec::message(&e, 1)
}

impl Backend for InstanceBackend {
    type Session = EngineSession;

    fn login(
        &self,
        login: &Login,
        _peer: std::net::SocketAddr,
    ) -> Result<(EngineSession, CancellationToken), Message> {
        let now = self.clock.now();
        let mut w = lock(&self.world);
        if !w.is_up(self.role) {
            return Err(refusal(SqlError::new(17187, &[])));
        }
        faults::refresh(&mut w, now);
        let config = &w.config;
        if !login.user.eq_ignore_ascii_case(&config.login_user)
            || login.password != config.login_password
        {
            return Err(refusal(SqlError::new(18456, &[&login.user])));
        }
        let database = if login.database.is_empty() {
            "master".to_owned()
        } else {
            login.database.clone()
        };
        let Some(db) = w.inst(self.role).and_then(|i| i.db(&database)) else {
            return Err(refusal(SqlError::new(4060, &[&database])));
        };
        if db.is_restoring() {
            return Err(refusal(SqlError::new(4060, &[&database])));
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
            running: false,
        };
        let spid = w.open_session(self.role, info);
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
            token: token.clone(),
            local: SessionLocal::default(),
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
}

pub struct EngineSession {
    world: SharedWorld,
    role: Role,
    clock: Arc<Clock>,
    spid: u16,
    token: CancellationToken,
    local: SessionLocal,
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

fn failed(errors: Vec<SqlError>) -> Vec<Event> {
    let mut out: Vec<Event> = errors
        .iter()
        .map(|e| Event::Error(exec::message(e, 1)))
        .collect();
    out.push(Event::Done {
        row_count: None,
        error: true,
    });
    out
}

impl EngineSession {
    /// Transcript, liveness and faults, before anything runs. `Err` is the whole answer.
    async fn admit(&mut self, kind: &str, text: &str) -> Result<(), Vec<Event>> {
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
        let Some(fault) = fault else { return Ok(()) };
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
        Ok(())
    }

    /// Runs statements one at a time, each under the world's mutex, retrying a blocked one.
    async fn run_statements(&mut self, stmts: &[Statement], vars: &mut Vars, out: &mut Vec<Event>) {
        for stmt in stmts {
            let mut waiting_since = None;
            loop {
                if self.token.is_cancelled() {
                    out.push(Event::Disconnect);
                    return;
                }
                let blocked = {
                    let mut w = lock(&self.world);
                    if w.is_lost(self.role) {
                        out.push(Event::Unanswered);
                        return;
                    }
                    w.prune_sessions(self.role);
                    if w.session(self.role, self.spid).is_none() {
                        out.push(Event::Disconnect);
                        return;
                    }
                    let mut ctx = Ctx {
                        world: &mut w,
                        role: self.role,
                        spid: self.spid,
                        now: self.clock.now(),
                        vars,
                        out,
                        local: &mut self.local,
                        waiting_since,
                    };
                    let step = exec::run(&mut ctx, stmt);
                    waiting_since = ctx.waiting_since;
                    let blocked = matches!(step, Step::Blocked);
                    exec::finish(&mut ctx, step);
                    blocked
                };
                if !blocked {
                    break;
                }
                tokio::select! {
                    () = tokio::time::sleep(LOCK_POLL) => {}
                    () = self.token.cancelled() => {}
                }
            }
        }
    }

    async fn run_sql(&mut self, sql: &str, mut vars: Vars) -> Vec<Event> {
        let stmts = match parser::parse_batch(sql) {
            Ok(s) => s,
            Err(e) => return failed(vec![e]),
        };
        let mut out = Vec::new();
        self.run_statements(&stmts, &mut vars, &mut out).await;
        out
    }

    /// sp_executesql: `stmt`, `params` (declarations), then the values, bound as variables.
    async fn executesql(&mut self, call: RpcCall) -> Vec<Event> {
        let mut params = call.params.into_iter();
        let stmt = params
            .next()
            .and_then(|p| expr::as_text(&p.value))
            .unwrap_or_default();
        let decls = params
            .next()
            .and_then(|p| expr::as_text(&p.value))
            .unwrap_or_default();
        let declared = match parser::parse_param_decls(&decls) {
            Ok(d) => d,
            Err(e) => return failed(vec![e]),
        };
        let mut vars = Vars::default();
        for (i, p) in params.enumerate() {
            let name = if p.name.is_empty() {
                declared.get(i).map(|d| d.0.clone()).unwrap_or_default()
            } else {
                p.name.clone()
            };
            let ty = declared
                .iter()
                .find(|d| d.0.eq_ignore_ascii_case(&name))
                .map_or(p.ty.clone(), |d| d.1.clone());
            let value = match expr::convert(&(p.ty.clone(), p.value.clone()), &ty) {
                Ok(tv) => tv.1,
                Err(e) => return failed(vec![e]),
            };
            let _ = vars.declare(&name, ty, value);
        }
        let mut out = self.run_sql(&stmt, vars).await;
        if !out.contains(&Event::Disconnect) {
            out.push(Event::ReturnStatus(0));
        }
        out
    }

    async fn named_proc(&mut self, call: RpcCall) -> Vec<Event> {
        let name = call.proc_name.clone().unwrap_or_default();
        let proc = {
            let mut w = lock(&self.world);
            let ctx = Ctx {
                world: &mut w,
                role: self.role,
                spid: self.spid,
                now: self.clock.now(),
                vars: &mut Vars::default(),
                out: &mut Vec::new(),
                local: &mut self.local,
                waiting_since: None,
            };
            procs::resolve_rpc(&ctx, &name)
        };
        let Some(proc) = proc else {
            return failed(vec![SqlError::new(2812, &[&name])]);
        };
        let args: Vec<Arg> = call
            .params
            .iter()
            .map(|p| Arg {
                name: p.name.to_lowercase(),
                ty: p.ty.clone(),
                value: p.value.clone(),
            })
            .collect();
        let mut out = Vec::new();
        let mut waiting_since = None;
        loop {
            if self.token.is_cancelled() {
                return vec![Event::Disconnect];
            }
            let result = {
                let mut w = lock(&self.world);
                let mut vars = Vars::default();
                let mut ctx = Ctx {
                    world: &mut w,
                    role: self.role,
                    spid: self.spid,
                    now: self.clock.now(),
                    vars: &mut vars,
                    out: &mut out,
                    local: &mut self.local,
                    waiting_since,
                };
                let r = procs::call(&mut ctx, proc, args.clone());
                waiting_since = ctx.waiting_since;
                r
            };
            match result {
                Err(ProcFail::Blocked) => tokio::time::sleep(LOCK_POLL).await,
                Err(ProcFail::Errors(errs)) => {
                    out.extend(failed(errs));
                    return out;
                }
                Ok(po) => {
                    for e in &po.errors {
                        out.push(Event::Error(exec::message(e, 1)));
                    }
                    out.push(Event::Done {
                        row_count: None,
                        error: !po.errors.is_empty(),
                    });
                    for p in call.params.iter().filter(|p| p.output) {
                        let value = po
                            .outputs
                            .iter()
                            .find(|(n, _)| n.eq_ignore_ascii_case(&p.name))
                            .map(|(_, tv)| tv.clone());
                        let (ty, value) = value.unwrap_or((p.ty.clone(), Value::Null));
                        let value = expr::convert(&(ty, value), &p.ty)
                            .map(|tv| tv.1)
                            .unwrap_or(Value::Null);
                        out.push(Event::ReturnValue {
                            name: p.name.clone(),
                            ty: p.ty.clone(),
                            value,
                        });
                    }
                    out.push(Event::ReturnStatus(po.status));
                    return out;
                }
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
        if let Err(answer) = self.admit("batch", &sql).await {
            return answer;
        }
        self.run_sql(&sql, Vars::default()).await
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
        if let Err(answer) = self.admit("rpc", &text).await {
            return answer;
        }
        if is_executesql {
            self.executesql(call).await
        } else {
            self.named_proc(call).await
        }
    }

    fn close(&mut self) {
        lock(&self.world).close_session(self.role, self.spid);
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
