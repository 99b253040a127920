//! Runs parsed statements for one session against the world: the dispatcher from [`Statement`] to the
//! per-request files, and the small statements that need no file of their own (DECLARE, SET, USE,
//! PRINT, transactions).
//!
//! A statement ends in a [`Step`]: done (with a row count), failed (errors in SQL Server's order), or
//! blocked (waiting for an application lock; the caller retries without holding the world's mutex).

use std::time::Instant;

use pcfail_lab_tds::{Event, Message, Value};

use super::errors::SqlError;
use super::expr::{self, Env, RelCol, Tv, Vars};
use super::parser::{Expr, Statement};
use super::world::World;
use super::{LabTime, Role};

/// Session-scoped settings that outlive a batch.
#[derive(Debug, Default)]
pub(crate) struct SessionLocal {
    pub nocount: bool,
    pub trancount: u32,
    /// SET XACT_ABORT ON: any run-time error ends the batch and rolls the transaction back.
    pub xact_abort: bool,
    /// @@ERROR and @@ROWCOUNT after the last statement.
    pub error: u32,
    pub rowcount: u64,
}

pub(crate) struct Ctx<'a> {
    pub world: &'a mut World,
    pub role: Role,
    pub spid: u16,
    pub now: LabTime,
    pub vars: &'a mut Vars,
    pub out: &'a mut Vec<Event>,
    pub local: &'a mut SessionLocal,
    /// When the current statement started waiting for an application lock.
    pub waiting_since: Option<Instant>,
}

/// What a statement works on while it runs: what sys.dm_exec_requests and sp_who2 show, the
/// database a running BACKUP/RESTORE uses (so a competing RESTORE gets 3101), and how much work the
/// duration model gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Work {
    /// `RESTORE LOG`, `BACKUP DATABASE`, `SELECT`, ... as sys.dm_exec_requests.command shows it.
    pub command: String,
    /// The database it works on, counted as in use by its session while it runs.
    pub database: Option<String>,
    /// Nobody else may even enter the database meanwhile (a RESTORE, a tail-log backup): `USE`
    /// waits for it.
    pub exclusive: bool,
    /// What the duration model scales with: the bytes read or written.
    pub bytes: u64,
    /// An Attention or KILL stops it with no effect; false once a recovery has started.
    pub cancellable: bool,
}

impl Work {
    pub(crate) fn new(
        command: &str,
        database: Option<String>,
        exclusive: bool,
        bytes: u64,
    ) -> Work {
        Work {
            command: command.to_owned(),
            database,
            exclusive,
            bytes,
            cancellable: true,
        }
    }
}

pub(crate) enum Step {
    Done(Option<u64>),
    /// A statement that sends no DONE of its own (DECLARE, SET @v).
    Quiet,
    Failed(Vec<SqlError>),
    Blocked,
}

impl From<Result<Option<u64>, Vec<SqlError>>> for Step {
    fn from(r: Result<Option<u64>, Vec<SqlError>>) -> Step {
        match r {
            Ok(n) => Step::Done(n),
            Err(e) => Step::Failed(e),
        }
    }
}

pub(crate) fn message(e: &SqlError, server_line: u32) -> Message {
    Message {
        number: e.number,
        state: e.state,
        class: e.class,
        message: e.text.clone(),
        procedure: e.procedure.clone(),
        line: server_line,
    }
}

impl Ctx<'_> {
    pub(crate) fn current_db(&self) -> String {
        self.world.current_db(self.role, self.spid)
    }

    pub(crate) fn env<'b>(&'b self, cols: &'b [RelCol]) -> Env<'b> {
        Env {
            world: self.world,
            globals: expr::Globals {
                trancount: self.local.trancount,
                error: self.local.error,
                rowcount: self.local.rowcount,
            },
            role: self.role,
            spid: self.spid,
            now: self.now,
            vars: self.vars,
            cols,
            row: None,
            group: None,
        }
    }

    pub(crate) fn eval(&self, e: &Expr) -> Result<Tv, SqlError> {
        expr::eval(e, &self.env(&[]))
    }

    /// Evaluates to text (a database name, a path); NULL is None.
    pub(crate) fn eval_text(&self, e: &Expr) -> Result<Option<String>, SqlError> {
        Ok(expr::as_text(&self.eval(e)?.1))
    }

    /// Sends an informational message (INFO token) now, in order with the other output.
    pub(crate) fn info(&mut self, e: SqlError) {
        self.out.push(Event::Info(message(&e, 1)));
    }

    pub(crate) fn login_name(&self) -> String {
        self.world
            .session(self.role, self.spid)
            .map(|s| s.login.clone())
            .unwrap_or_else(|| "sa".to_owned())
    }
}

/// What the rest of the batch does after a statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    /// The error aborts the batch: nothing after this statement runs.
    Abort,
}

/// Appends the DONE (or the errors and a DONE with the error bit) that ends a statement, sets
/// @@ERROR and @@ROWCOUNT, and says whether the batch goes on. Most errors end only their statement;
/// a batch-aborting one (208 and its kind, see [`SqlError::aborts_batch`]) or any error under
/// XACT_ABORT ends the batch, the latter rolling back the open transaction too.
pub(crate) fn finish(ctx: &mut Ctx, step: Step) -> Flow {
    match step {
        Step::Done(n) => {
            ctx.local.error = 0;
            ctx.local.rowcount = n.unwrap_or(0);
            ctx.out.push(Event::Done {
                row_count: if ctx.local.nocount { None } else { n },
                error: false,
            });
            Flow::Continue
        }
        Step::Quiet => {
            ctx.local.error = 0;
            Flow::Continue
        }
        Step::Blocked => Flow::Continue,
        Step::Failed(errors) => {
            for e in &errors {
                ctx.out.push(if e.is_info() {
                    Event::Info(message(e, 1))
                } else {
                    Event::Error(message(e, 1))
                });
            }
            ctx.out.push(Event::Done {
                row_count: None,
                error: true,
            });
            let real: Vec<&SqlError> = errors.iter().filter(|e| !e.is_info()).collect();
            ctx.local.error = real.last().map_or(0, |e| e.number);
            ctx.local.rowcount = 0;
            if ctx.local.xact_abort && !real.is_empty() {
                if ctx.local.trancount > 0 {
                    ctx.local.trancount = 0;
                    super::applock::release_transaction_locks(ctx.world, ctx.role, ctx.spid);
                }
                return Flow::Abort;
            }
            if real.iter().any(|e| e.aborts_batch()) {
                Flow::Abort
            } else {
                Flow::Continue
            }
        }
    }
}

/// A statement checked and ready to apply after its run time.
pub(crate) enum Pending {
    Restore(super::restore::Plan),
    Backup(super::backup::Plan),
    /// Anything else: it simply runs when its time is up.
    Statement,
}

/// The command name sys.dm_exec_requests shows for a statement.
fn command(stmt: &Statement) -> &'static str {
    match stmt {
        Statement::Select(_) | Statement::SetVar(..) => "SELECT",
        Statement::Declare(_) | Statement::SetOption(..) | Statement::Use(_) => "SET OPTION ON",
        Statement::Exec(_) => "EXECUTE",
        Statement::Print(_) => "PRINT",
        Statement::Kill(_) => "KILL",
        Statement::Backup(b) if b.log => "BACKUP LOG",
        Statement::Backup(_) => "BACKUP DATABASE",
        Statement::Restore(_) => "RESTORE DATABASE",
        Statement::AlterDatabase { .. } => "ALTER DATABASE",
        Statement::CreateEndpoint(_) => "CREATE ENDPOINT",
        Statement::AlterEndpointState { .. } => "ALTER ENDPOINT",
        Statement::DropEndpoint(_) => "DROP ENDPOINT",
        Statement::CreateLogin(_) => "CREATE LOGIN",
        Statement::GrantConnect { .. } => "GRANT",
        Statement::BeginTran => "BEGIN TRANSACTION",
        Statement::Commit => "COMMIT TRANSACTION",
        Statement::Rollback => "ROLLBACK TRANSACTION",
    }
}

/// Checks a statement that is about to take time, changing nothing: a BACKUP or RESTORE is planned
/// and checked as SQL Server checks it before it starts (its errors come now, not after the work);
/// any other statement is only named.
pub(crate) fn prepare(ctx: &mut Ctx, stmt: &Statement) -> Result<(Work, Pending), Vec<SqlError>> {
    match stmt {
        Statement::Restore(r) => {
            let plan = super::restore::plan(ctx, r)?;
            let work = super::restore::check(ctx, &plan)?;
            Ok((work, Pending::Restore(plan)))
        }
        Statement::Backup(b) => {
            let plan = super::backup::plan(ctx, b)?;
            let work = super::backup::check(ctx, &plan)?;
            Ok((work, Pending::Backup(plan)))
        }
        other => Ok((
            Work::new(command(other), None, false, 0),
            Pending::Statement,
        )),
    }
}

/// Applies a prepared BACKUP or RESTORE; `None` for any other statement, which the caller runs.
pub(crate) fn complete(ctx: &mut Ctx, _stmt: &Statement, pending: Pending) -> Option<Step> {
    match pending {
        Pending::Restore(p) => Some(super::restore::apply(ctx, p)),
        Pending::Backup(p) => Some(super::backup::apply(ctx, p)),
        Pending::Statement => None,
    }
}

pub(crate) fn run(ctx: &mut Ctx, stmt: &Statement) -> Step {
    let one = |e: SqlError| Step::Failed(vec![e]);
    match stmt {
        Statement::Select(s) => super::query::select(ctx, s).into(),
        Statement::Declare(vars) => {
            for (name, ty, init) in vars {
                let value = match init {
                    Some(e) => match ctx.eval(e).and_then(|tv| expr::convert(&tv, ty)) {
                        Ok(tv) => tv.1,
                        Err(e) => return one(e),
                    },
                    None => Value::Null,
                };
                if let Err(e) = ctx.vars.declare(name, ty.clone(), value) {
                    return one(e);
                }
            }
            Step::Quiet
        }
        Statement::SetVar(name, e) => match ctx.eval(e).and_then(|tv| ctx.vars.set(name, tv.1)) {
            Ok(()) => Step::Quiet,
            Err(e) => one(e),
        },
        Statement::SetOption(option, value) => set_option(ctx, option, value),
        Statement::Use(db) => use_db(ctx, db),
        Statement::Exec(e) => super::procs::exec(ctx, e),
        Statement::Print(e) => match ctx.eval_text(e) {
            Ok(text) => {
                // PRINT is an INFO with number 0 and class 0.
                let msg = SqlError {
                    number: 0,
                    class: 0,
                    state: 1,
                    text: text.unwrap_or_default(),
                    procedure: String::new(),
                };
                ctx.info(msg);
                Step::Done(None)
            }
            Err(e) => one(e),
        },
        Statement::Kill(e) => super::kill::kill(ctx, e),
        Statement::Backup(b) => super::backup::backup(ctx, b),
        Statement::Restore(r) => super::restore::restore(ctx, r),
        Statement::AlterDatabase { db, action } => {
            super::mirroring::alter_database(ctx, db, action)
        }
        Statement::CreateEndpoint(def) => super::mirroring::create_endpoint(ctx, def),
        Statement::AlterEndpointState { name, state } => {
            super::mirroring::alter_endpoint(ctx, name, state)
        }
        Statement::DropEndpoint(name) => super::mirroring::drop_endpoint(ctx, name),
        Statement::CreateLogin(name) => super::logins::create_login(ctx, name),
        Statement::GrantConnect { endpoint, login } => {
            super::logins::grant_connect(ctx, endpoint, login)
        }
        Statement::BeginTran => {
            ctx.local.trancount += 1;
            Step::Done(None)
        }
        Statement::Commit | Statement::Rollback => {
            if ctx.local.trancount == 0 {
                return one(SqlError::new(
                    if matches!(stmt, Statement::Commit) {
                        3902
                    } else {
                        3903
                    },
                    &[],
                ));
            }
            ctx.local.trancount = if matches!(stmt, Statement::Commit) {
                ctx.local.trancount - 1
            } else {
                0
            };
            if ctx.local.trancount == 0 {
                super::applock::release_transaction_locks(ctx.world, ctx.role, ctx.spid);
            }
            Step::Done(None)
        }
    }
}

const SET_OPTIONS: &[&str] = &[
    "ANSI_NULLS",
    "ANSI_PADDING",
    "ANSI_WARNINGS",
    "ARITHABORT",
    "CONCAT_NULL_YIELDS_NULL",
    "QUOTED_IDENTIFIER",
    "ANSI_NULL_DFLT_ON",
    "ANSI_NULL_DFLT_OFF",
    "CURSOR_CLOSE_ON_COMMIT",
    "IMPLICIT_TRANSACTIONS",
    "TEXTSIZE",
    "DATEFORMAT",
    "DATEFIRST",
    "LANGUAGE",
    "LOCK_TIMEOUT",
    "XACT_ABORT",
    "DEADLOCK_PRIORITY",
    "TRANSACTION",
    "NUMERIC_ROUNDABORT",
    "ROWCOUNT",
    "NOEXEC",
    "FMTONLY",
    "STATISTICS",
    "SHOWPLAN_ALL",
    "ANSI_DEFAULTS",
];

fn set_option(ctx: &mut Ctx, option: &str, value: &str) -> Step {
    if option == "NOCOUNT" {
        ctx.local.nocount = value == "ON";
        return Step::Done(None);
    }
    if option == "XACT_ABORT" {
        ctx.local.xact_abort = value == "ON";
        return Step::Done(None);
    }
    if SET_OPTIONS.contains(&option) {
        // Accepted and without effect in the lab: no lab behaviour depends on them.
        return Step::Done(None);
    }
    Step::Failed(vec![SqlError::new(195, &[option, "SET option"])])
}

fn use_db(ctx: &mut Ctx, name: &str) -> Step {
    let Some(inst) = ctx.world.inst(ctx.role) else {
        return Step::Failed(vec![SqlError::new(911, &[name])]);
    };
    let Some(db) = inst.db(name) else {
        return Step::Failed(vec![SqlError::new(911, &[name])]);
    };
    // A database that another session is restoring cannot be entered until that ends: SQL Server
    // makes `USE` wait for the database lock; the lab waits the same way.
    if ctx.world.held_exclusively(ctx.role, ctx.spid, &db.name) {
        if ctx.waiting_since.is_none() {
            ctx.waiting_since = Some(Instant::now());
        }
        return Step::Blocked;
    }
    let db = ctx
        .world
        .inst(ctx.role)
        .and_then(|i| i.db(name))
        .expect("looked up above");
    if db.is_restoring() {
        return Step::Failed(vec![SqlError::new(927, &[&db.name])]);
    }
    let new = db.name.clone();
    let old = ctx.current_db();
    if let Some(s) = ctx.world.session_mut(ctx.role, ctx.spid) {
        s.database = new.clone();
    }
    ctx.out.push(Event::DatabaseChanged {
        new: new.clone(),
        old,
    });
    // sys.messages gives 5701 severity 10, but SQL Server sends this INFO with class 0 (and state 1
    // after USE; the login's copy has state 2).
    let mut changed = SqlError::new(5701, &[&new]);
    changed.class = 0;
    ctx.info(changed);
    Step::Done(None)
}
