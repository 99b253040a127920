//! A request as the server runs it: one batch or RPC, executed in a task of its own to completion,
//! whether or not its client is still there.
//!
//! The connection hands the request over and waits for the answer. If the client disconnects or
//! gives up (a timeout), the task carries on and its effects and msdb history are recorded: the case
//! "the client gave up but the server finished the work" that a failover tool must survive. What stops
//! a request is what stops it on SQL Server: an Attention, a KILL or the instance going down cancel a
//! statement that can be cancelled, at no effect; a recovery that has started runs to its end.
//!
//! Statements take time as work the server does: a faults.json rule's `run_ms`, and, when the lab runs
//! the duration model (`io_mb_per_s`), a BACKUP or RESTORE's size at that rate. While a statement
//! works it is visible in sys.dm_exec_requests and sp_who2, and its database is in use (a competing
//! RESTORE or recovery gets 3101, a `USE` of a database being restored waits). Statements are checked
//! before the work starts, so an error SQL Server finds at once (4305, 3101) comes at once.
//!
//! The world's mutex is held only while one statement is checked or applied; waiting (run time, a
//! blocked application lock) happens with it released, so one slow request never stalls the others.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pcfail_lab_tds::{Event, RpcCall, Value};
use tokio_util::sync::CancellationToken;

use super::compile;
use super::errors::SqlError;
use super::exec::{self, Ctx, Flow, SessionLocal, Step, Work};
use super::expr::{self, Vars};
use super::parser::{self, Statement};
use super::procs::{self, Arg, ProcFail};
use super::world::{RunningRequest, World};
use super::{Clock, Role, SharedWorld};

/// How often a statement waiting for an application lock (or a database being restored) looks again.
const LOCK_POLL: Duration = Duration::from_millis(20);

fn lock(world: &Mutex<World>) -> MutexGuard<'_, World> {
    // A panic in one session must not take the whole lab down with a poisoned mutex.
    world.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a session's request is: a SQLBatch, sp_executesql, or a procedure called by name.
pub(crate) enum Request {
    Batch(String),
    ExecuteSql(RpcCall),
    Proc(RpcCall),
}

/// Runs one request for one session; owns the session's settings while it runs and gives them back.
pub(crate) struct Worker {
    pub world: SharedWorld,
    pub role: Role,
    pub clock: Arc<Clock>,
    pub spid: u16,
    /// Tells this session apart from a later one that reuses its spid.
    pub serial: u64,
    /// The session's token: cancelled by KILL and when the instance stops.
    pub token: CancellationToken,
    /// This request's token: cancelled when the client sends an Attention.
    pub attention: CancellationToken,
    pub local: SessionLocal,
    /// The run time a faults.json rule gave this request.
    pub fault_run: Option<Duration>,
    /// The lab runs the duration model: every BACKUP and RESTORE takes time.
    pub modelled: bool,
}

/// How a statement's work ended.
enum Waited {
    Done,
    /// An Attention: the request stops, the client gets only the acknowledgement.
    Attention,
    /// KILL or the instance stopping: the connection is closed.
    Killed,
}

/// What the rest of a batch does after a statement.
enum Next {
    Continue,
    /// Nothing more runs and nothing more is answered (cancelled, killed, lost).
    Stop,
}

/// A failed statement's events: its errors and a DONE with the error bit.
pub(crate) fn failed(errors: Vec<SqlError>) -> Vec<Event> {
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

impl Worker {
    /// Runs the request to its end and hands back its events and the session's settings.
    pub(crate) async fn run(mut self, request: Request) -> (Vec<Event>, SessionLocal) {
        let out = match request {
            Request::Batch(sql) => self.run_sql(&sql, Vars::default()).await,
            Request::ExecuteSql(call) => self.executesql(call).await,
            Request::Proc(call) => self.named_proc(call).await,
        };
        // The request is over: a session whose client left while it ran ends now.
        let mut w = lock(&self.world);
        w.request_finished(self.role, self.spid, self.serial);
        drop(w);
        (out, self.local)
    }

    fn ctx<'a>(
        &'a mut self,
        w: &'a mut World,
        vars: &'a mut Vars,
        out: &'a mut Vec<Event>,
        waiting_since: Option<Instant>,
    ) -> Ctx<'a> {
        Ctx {
            world: w,
            role: self.role,
            spid: self.spid,
            now: self.clock.now(),
            vars,
            out,
            local: &mut self.local,
            waiting_since,
        }
    }

    /// Why nothing more may run for this session, as the events that say so (none: it may run).
    fn stopped(&self, w: &World) -> Option<Event> {
        if w.is_lost(self.role) {
            return Some(Event::Unanswered);
        }
        if self.token.is_cancelled() || w.session(self.role, self.spid).is_none() {
            return Some(Event::Disconnect);
        }
        None
    }

    /// The statement a fault's run time belongs to: the first BACKUP or RESTORE, else the first.
    fn fault_target(stmts: &[Statement]) -> usize {
        stmts
            .iter()
            .position(|s| matches!(s, Statement::Backup(_) | Statement::Restore(_)))
            .unwrap_or(0)
    }

    async fn run_statements(&mut self, stmts: &[Statement], vars: &mut Vars, out: &mut Vec<Event>) {
        let target = Self::fault_target(stmts);
        for (i, stmt) in stmts.iter().enumerate() {
            if self.attention.is_cancelled() {
                return;
            }
            let fault_run = if i == target {
                self.fault_run.take()
            } else {
                None
            };
            let modelled =
                self.modelled && matches!(stmt, Statement::Backup(_) | Statement::Restore(_));
            let next = if fault_run.is_some() || modelled {
                self.run_working(stmt, fault_run, vars, out).await
            } else {
                self.run_now(stmt, vars, out).await
            };
            if matches!(next, Next::Stop) {
                return;
            }
        }
    }

    /// Runs a statement at once under the world's mutex, retrying while it is blocked.
    async fn run_now(&mut self, stmt: &Statement, vars: &mut Vars, out: &mut Vec<Event>) -> Next {
        let mut waiting_since = None;
        loop {
            let flow = {
                let world = self.world.clone();
                let mut w = lock(&world);
                w.prune_sessions(self.role);
                if let Some(end) = self.stopped(&w) {
                    out.push(end);
                    return Next::Stop;
                }
                let mut ctx = self.ctx(&mut w, vars, out, waiting_since);
                let step = exec::run(&mut ctx, stmt);
                waiting_since = ctx.waiting_since;
                if matches!(step, Step::Blocked) {
                    None
                } else {
                    Some(exec::finish(&mut ctx, step))
                }
            };
            match flow {
                Some(Flow::Continue) => return Next::Continue,
                Some(Flow::Abort) => return Next::Stop,
                None => {}
            }
            tokio::select! {
                () = tokio::time::sleep(LOCK_POLL) => {}
                () = self.token.cancelled() => {}
                () = self.attention.cancelled() => return Next::Stop,
            }
        }
    }

    /// Runs a statement that takes time: checked, then worked on (visible, holding its database)
    /// without the world's mutex, then applied.
    async fn run_working(
        &mut self,
        stmt: &Statement,
        fault_run: Option<Duration>,
        vars: &mut Vars,
        out: &mut Vec<Event>,
    ) -> Next {
        let world = self.world.clone();
        let (work, pending, total) = {
            let mut w = lock(&world);
            if let Some(end) = self.stopped(&w) {
                out.push(end);
                return Next::Stop;
            }
            let speed = self.clock.speed();
            let rate = w.config.io_mb_per_s;
            let mut ctx = self.ctx(&mut w, vars, out, None);
            let (work, pending) = match exec::prepare(&mut ctx, stmt) {
                Ok(ready) => ready,
                Err(errors) => {
                    return match exec::finish(&mut ctx, Step::Failed(errors)) {
                        Flow::Continue => Next::Continue,
                        Flow::Abort => Next::Stop,
                    };
                }
            };
            let total = fault_run.unwrap_or_default() + modelled_time(&work, rate, speed);
            let now = ctx.now;
            w.set_request(
                self.role,
                self.spid,
                self.serial,
                Some(RunningRequest {
                    command: work.command.clone(),
                    database: work.database.clone(),
                    exclusive: work.exclusive,
                    start: now,
                    began: Instant::now(),
                    total,
                }),
            );
            (work, pending, total)
        };
        let waited = self.work_for(total, work.cancellable).await;
        let applied = {
            let mut w = lock(&world);
            w.set_request(self.role, self.spid, self.serial, None);
            match waited {
                Waited::Attention => return Next::Stop,
                Waited::Killed => {
                    out.push(Event::Disconnect);
                    return Next::Stop;
                }
                Waited::Done => {}
            }
            if w.is_lost(self.role) {
                // The host vanished while it worked: nothing is applied, nothing answered.
                out.push(Event::Unanswered);
                return Next::Stop;
            }
            let mut ctx = self.ctx(&mut w, vars, out, None);
            exec::complete(&mut ctx, stmt, pending).map(|step| exec::finish(&mut ctx, step))
        };
        match applied {
            Some(Flow::Continue) => Next::Continue,
            Some(Flow::Abort) => Next::Stop,
            // An ordinary statement that was given a run time: it runs now, as any other.
            None => self.run_now(stmt, vars, out).await,
        }
    }

    /// Lets `total` pass as the statement's work. A cancellable statement stops on an Attention
    /// or when its session is killed; a recovery that has started runs on regardless.
    async fn work_for(&self, total: Duration, cancellable: bool) -> Waited {
        let sleep = tokio::time::sleep(total);
        tokio::pin!(sleep);
        tokio::select! {
            () = &mut sleep => Waited::Done,
            () = self.attention.cancelled(), if cancellable => Waited::Attention,
            () = self.token.cancelled(), if cancellable => Waited::Killed,
        }
    }

    async fn run_sql(&mut self, sql: &str, mut vars: Vars) -> Vec<Event> {
        // A compile error (syntax, an undeclared variable) means nothing in the batch runs.
        let declared: Vec<String> = vars.0.iter().map(|(n, _, _)| n.clone()).collect();
        let stmts = match compile::compile(sql, &declared) {
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
        if !out
            .iter()
            .any(|e| matches!(e, Event::Disconnect | Event::Unanswered))
        {
            out.push(Event::ReturnStatus(0));
        }
        out
    }

    async fn named_proc(&mut self, call: RpcCall) -> Vec<Event> {
        let name = call.proc_name.clone().unwrap_or_default();
        let world = self.world.clone();
        let proc = {
            let mut w = lock(&world);
            let (mut vars, mut out) = (Vars::default(), Vec::new());
            let ctx = self.ctx(&mut w, &mut vars, &mut out, None);
            procs::resolve_rpc(&ctx, &name)
        };
        let Some(proc) = proc else {
            let bare = name
                .rsplit('.')
                .next()
                .unwrap_or(&name)
                .trim_matches(|c| c == '[' || c == ']');
            return failed(vec![procs::missing_proc(bare, &name)]);
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
            let result = {
                let mut w = lock(&world);
                if let Some(end) = self.stopped(&w) {
                    return vec![end];
                }
                let mut vars = Vars::default();
                let mut ctx = self.ctx(&mut w, &mut vars, &mut out, waiting_since);
                let r = procs::call(&mut ctx, proc, args.clone());
                waiting_since = ctx.waiting_since;
                r
            };
            match result {
                Err(ProcFail::Blocked) => {
                    tokio::select! {
                        () = tokio::time::sleep(LOCK_POLL) => {}
                        () = self.attention.cancelled() => return Vec::new(),
                    }
                }
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

/// The duration model: the bytes a BACKUP or RESTORE moves, at `rate` MB per lab second, as real
/// time at the lab clock's `speed`. Zero without the model or without bytes.
fn modelled_time(work: &Work, rate: Option<f64>, speed: f64) -> Duration {
    match rate {
        Some(rate) if rate > 0.0 && work.bytes > 0 && speed > 0.0 => {
            let lab_secs = work.bytes as f64 / (rate * 1_048_576.0);
            Duration::from_secs_f64(lab_secs / speed)
        }
        _ => Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_duration_model_scales_with_size_and_the_clock() {
        let work = Work::new("RESTORE LOG", None, true, 10 * 1_048_576);
        assert_eq!(modelled_time(&work, None, 60.0), Duration::ZERO);
        // 10 MB at 5 MB per lab second is 2 lab seconds; at 2x the lab clock, 1 real second.
        assert_eq!(modelled_time(&work, Some(5.0), 2.0), Duration::from_secs(1));
        let nothing = Work::new("RESTORE HEADERONLY", None, false, 0);
        assert_eq!(modelled_time(&nothing, Some(5.0), 1.0), Duration::ZERO);
    }
}
