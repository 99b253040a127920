//! Stored procedures: name resolution (where each system procedure lives), argument binding (named
//! and positional, OUTPUT, DEFAULT), and dispatch to the files that implement them. Used by `EXEC` in a
//! batch and by RPC requests, which share [`call`].

use pcfail_lab_tds::{SqlType, Value};

use super::errors::SqlError;
use super::exec::{Ctx, Step};
use super::expr::{self, Tv};
use super::guid::Guid;
use super::parser::{Exec, ObjectName};

/// One bound argument. Names are lower-cased and keep their '@'.
#[derive(Clone, Debug)]
pub(crate) struct Arg {
    pub name: String,
    pub ty: SqlType,
    pub value: Value,
}

pub(crate) struct Args {
    pub proc: String,
    pub list: Vec<Arg>,
}

impl Args {
    pub(crate) fn value(&self, name: &str) -> Option<&Value> {
        self.list
            .iter()
            .find(|a| a.name == name)
            .map(|a| &a.value)
            .filter(|v| !matches!(v, Value::Null))
    }
    pub(crate) fn str(&self, name: &str) -> Option<String> {
        self.value(name).and_then(expr::as_text)
    }
    /// A required argument: 201 when missing.
    pub(crate) fn req(&self, name: &str) -> Result<String, SqlError> {
        self.str(name)
            .ok_or_else(|| SqlError::new(201, &[&self.proc, name]).in_proc(&self.proc))
    }
    pub(crate) fn int(&self, name: &str) -> Option<i64> {
        let arg = self
            .list
            .iter()
            .find(|a| a.name == name)
            .filter(|a| !matches!(a.value, Value::Null))?;
        match expr::convert(&(arg.ty.clone(), arg.value.clone()), &SqlType::BigInt) {
            Ok((_, Value::Int(i))) => Some(i),
            _ => None,
        }
    }
    pub(crate) fn guid(&self, name: &str) -> Option<Guid> {
        match self.value(name)? {
            Value::Guid(w) => Some(Guid::from_wire(*w)),
            other => expr::as_text(other).and_then(|s| Guid::parse(&s)),
        }
    }
}

/// A uniqueidentifier OUTPUT value (the ids the msdb procedures hand back).
pub(crate) fn guid_out(name: &str, g: Guid) -> (String, Tv) {
    (
        name.to_owned(),
        (SqlType::UniqueIdentifier, Value::Guid(g.to_wire())),
    )
}

/// What a procedure returns: its status, OUTPUT values by parameter name, and errors it raised
/// without stopping (sent before the statement's DONE).
#[derive(Default)]
pub(crate) struct ProcOut {
    pub status: i32,
    pub outputs: Vec<(String, Tv)>,
    pub errors: Vec<SqlError>,
}

impl ProcOut {
    pub(crate) fn ok() -> ProcOut {
        ProcOut::default()
    }
    /// Status 0 with these OUTPUT values.
    pub(crate) fn with_outputs(outputs: Vec<(String, Tv)>) -> ProcOut {
        ProcOut {
            outputs,
            ..ProcOut::default()
        }
    }
    /// A procedure that raised `e` and returned 1, the way the log-shipping procedures fail.
    pub(crate) fn failed(e: SqlError, proc: &str) -> ProcOut {
        ProcOut {
            status: 1,
            outputs: Vec::new(),
            errors: vec![e.in_proc(proc)],
        }
    }
}

pub(crate) enum ProcFail {
    Errors(Vec<SqlError>),
    Blocked,
}

impl From<SqlError> for ProcFail {
    fn from(e: SqlError) -> ProcFail {
        ProcFail::Errors(vec![e])
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Home {
    Master,
    Msdb,
}

/// (name, database it lives in, parameters in declaration order for positional calls).
const PROCS: &[(&str, Home, &[&str])] = &[
    ("sp_who2", Home::Master, &["@loginame"]),
    // Extended and undocumented procedures take their arguments by position only.
    ("xp_logevent", Home::Master, &["@p1", "@p2", "@p3"]),
    (
        "sp_readerrorlog",
        Home::Master,
        &["@p1", "@p2", "@p3", "@p4"],
    ),
    ("sp_who", Home::Master, &["@loginame"]),
    (
        "sp_getapplock",
        Home::Master,
        &[
            "@resource",
            "@lockmode",
            "@lockowner",
            "@locktimeout",
            "@dbprincipal",
        ],
    ),
    (
        "sp_releaseapplock",
        Home::Master,
        &["@resource", "@lockowner", "@dbprincipal"],
    ),
    (
        "sp_delete_log_shipping_secondary_database",
        Home::Master,
        &["@secondary_database"],
    ),
    (
        "sp_delete_log_shipping_secondary_primary",
        Home::Master,
        &["@primary_server", "@primary_database"],
    ),
    (
        "sp_delete_log_shipping_primary_secondary",
        Home::Master,
        &[
            "@primary_database",
            "@secondary_server",
            "@secondary_database",
        ],
    ),
    (
        "sp_delete_log_shipping_primary_database",
        Home::Master,
        &["@database"],
    ),
    (
        "sp_add_log_shipping_primary_database",
        Home::Master,
        &[
            "@database",
            "@backup_directory",
            "@backup_share",
            "@backup_job_name",
            "@backup_retention_period",
            "@monitor_server",
            "@monitor_server_security_mode",
            "@monitor_server_login",
            "@monitor_server_password",
            "@backup_threshold",
            "@threshold_alert",
            "@threshold_alert_enabled",
            "@history_retention_period",
            "@backup_job_id",
            "@primary_id",
            "@backup_compression",
            "@overwrite",
        ],
    ),
    (
        "sp_add_log_shipping_alert_job",
        Home::Master,
        &["@alert_job_id"],
    ),
    (
        "sp_add_log_shipping_primary_secondary",
        Home::Master,
        &[
            "@primary_database",
            "@secondary_server",
            "@secondary_database",
            "@overwrite",
        ],
    ),
    (
        "sp_add_log_shipping_secondary_primary",
        Home::Master,
        &[
            "@primary_server",
            "@primary_database",
            "@backup_source_directory",
            "@backup_destination_directory",
            "@copy_job_name",
            "@restore_job_name",
            "@file_retention_period",
            "@monitor_server",
            "@monitor_server_security_mode",
            "@monitor_server_login",
            "@monitor_server_password",
            "@copy_job_id",
            "@restore_job_id",
            "@secondary_id",
            "@overwrite",
        ],
    ),
    (
        "sp_add_log_shipping_secondary_database",
        Home::Master,
        &[
            "@secondary_database",
            "@primary_server",
            "@primary_database",
            "@restore_delay",
            "@restore_all",
            "@restore_mode",
            "@disconnect_users",
            "@block_size",
            "@buffer_count",
            "@max_transfer_size",
            "@restore_threshold",
            "@threshold_alert",
            "@threshold_alert_enabled",
            "@history_retention_period",
            "@overwrite",
            "@ignoreremotemonitor",
        ],
    ),
    (
        "sp_add_schedule",
        Home::Msdb,
        &[
            "@schedule_name",
            "@enabled",
            "@freq_type",
            "@freq_interval",
            "@freq_subday_type",
            "@freq_subday_interval",
            "@freq_relative_interval",
            "@freq_recurrence_factor",
            "@active_start_date",
            "@active_end_date",
            "@active_start_time",
            "@active_end_time",
            "@owner_login_name",
            "@schedule_uid",
            "@schedule_id",
            "@originating_server",
        ],
    ),
    (
        "sp_attach_schedule",
        Home::Msdb,
        &[
            "@job_id",
            "@job_name",
            "@schedule_id",
            "@schedule_name",
            "@automatic_post",
        ],
    ),
    (
        "sp_update_job",
        Home::Msdb,
        &[
            "@job_id",
            "@job_name",
            "@new_name",
            "@enabled",
            "@description",
            "@start_step_id",
            "@category_name",
            "@owner_login_name",
        ],
    ),
    (
        "sp_start_job",
        Home::Msdb,
        &[
            "@job_name",
            "@job_id",
            "@error_flag",
            "@server_name",
            "@step_name",
            "@output_flag",
        ],
    ),
    (
        "sp_add_jobschedule",
        Home::Msdb,
        &[
            "@job_id",
            "@job_name",
            "@name",
            "@enabled",
            "@freq_type",
            "@freq_interval",
            "@freq_subday_type",
            "@freq_subday_interval",
            "@freq_relative_interval",
            "@freq_recurrence_factor",
            "@active_start_date",
            "@active_end_date",
            "@active_start_time",
            "@active_end_time",
            "@schedule_id",
            "@automatic_post",
            "@schedule_uid",
        ],
    ),
    (
        "sp_delete_job",
        Home::Msdb,
        &[
            "@job_id",
            "@job_name",
            "@originating_server",
            "@delete_history",
            "@delete_unused_schedule",
        ],
    ),
];

/// Finds a procedure as SQL Server would: a qualified name in its own database; unqualified from the
/// current database, where `sp_` procedures of master are visible from everywhere.
fn resolve(ctx: &Ctx, name: &ObjectName) -> Option<(&'static str, &'static [&'static str])> {
    let lower = name.name.to_lowercase();
    let (proc, home, params) = PROCS.iter().find(|(n, _, _)| *n == lower)?;
    let db = name
        .db
        .clone()
        .unwrap_or_else(|| ctx.current_db())
        .to_lowercase();
    let visible = match home {
        Home::Master => true,
        Home::Msdb => db == "msdb",
    };
    visible.then_some((*proc, *params))
}

/// Real system procedures outside the lab's model: calling one is the lab's error, not 2812 (which
/// would claim SQL Server has no such procedure).
const NOT_MODELLED_PROCS: &[&str] = &[
    "sp_addlogin",
    "sp_change_users_login",
    "sp_configure",
    "sp_dbmmonitorresults",
    "sp_help",
    "sp_help_job",
    "sp_help_log_shipping_monitor",
    "sp_help_log_shipping_primary_database",
    "sp_help_log_shipping_secondary_database",
    "sp_helpdb",
    "sp_helpfile",
    "sp_helptext",
    "sp_lock",
    "sp_readerrorlog",
    "sp_refresh_log_shipping_monitor",
    "sp_spaceused",
    "xp_cmdshell",
    "xp_fixeddrives",
    "xp_readerrorlog",
];

/// The error for a procedure the lab cannot run: the lab's own for a real system procedure it does
/// not model, 2812 otherwise.
pub(crate) fn missing_proc(name: &str, shown: &str) -> SqlError {
    if NOT_MODELLED_PROCS
        .iter()
        .any(|p| p.eq_ignore_ascii_case(name))
    {
        SqlError::not_modelled(&format!("the procedure {}", name.to_lowercase()))
    } else {
        SqlError::new(2812, &[shown])
    }
}

/// `EXEC [@rc =] proc args` in a batch.
pub(crate) fn exec(ctx: &mut Ctx, e: &Exec) -> Step {
    if e.proc.name.eq_ignore_ascii_case("sp_executesql") {
        return executesql_in_batch(ctx, e);
    }
    let Some((proc, params)) = resolve(ctx, &e.proc) else {
        return Step::Failed(vec![missing_proc(&e.proc.name, &e.proc.display())]);
    };
    let mut list = Vec::new();
    for (pos, a) in e.args.iter().enumerate() {
        let name = match &a.name {
            Some(n) => n.to_lowercase(),
            None => match params.get(pos) {
                Some(p) => (*p).to_owned(),
                None => {
                    let msg = SqlError {
                        number: 8144,
                        class: 16,
                        state: 2,
                        text: format!(
                            "Procedure or function {proc} has too many arguments specified."
                        ),
                        procedure: proc.to_owned(),
                    };
                    return Step::Failed(vec![msg]);
                }
            },
        };
        let (ty, value) = match &a.value {
            Some(v) => match ctx.eval(v) {
                Ok(tv) => tv,
                Err(err) => return Step::Failed(vec![err]),
            },
            None => (SqlType::Int, Value::Null),
        };
        list.push(Arg { name, ty, value });
    }
    let out = match call(ctx, proc, list) {
        Ok(out) => out,
        Err(ProcFail::Blocked) => return Step::Blocked,
        Err(ProcFail::Errors(errs)) => return Step::Failed(errs),
    };
    // OUTPUT arguments write back into the variables passed for them.
    for a in &e.args {
        if !a.output {
            continue;
        }
        let (Some(name), Some(super::parser::Expr::Var(var))) = (&a.name, &a.value) else {
            continue;
        };
        if let Some((_, tv)) = out
            .outputs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            && let Err(err) = ctx.vars.set(var, tv.1.clone())
        {
            return Step::Failed(vec![err]);
        }
    }
    if let Some(rc) = &e.ret
        && let Err(err) = ctx.vars.set(rc, Value::Int(i64::from(out.status)))
    {
        return Step::Failed(vec![err]);
    }
    if out.errors.is_empty() {
        Step::Done(None)
    } else {
        Step::Failed(out.errors)
    }
}

/// Runs procedure `proc` (already resolved) with bound arguments.
pub(crate) fn call(ctx: &mut Ctx, proc: &str, list: Vec<Arg>) -> Result<ProcOut, ProcFail> {
    let params = PROCS
        .iter()
        .find(|(n, _, _)| *n == proc)
        .map(|p| p.2)
        .unwrap_or(&[]);
    if let Some(bad) = list.iter().find(|a| !params.contains(&a.name.as_str())) {
        return Err(SqlError::new(8145, &[&bad.name, proc]).in_proc(proc).into());
    }
    let args = Args {
        proc: proc.to_owned(),
        list,
    };
    match proc {
        "sp_who2" => super::kill::sp_who2(ctx).map(|()| ProcOut::ok()),
        "xp_logevent" => super::errorlog::xp_logevent(ctx, &args),
        "sp_readerrorlog" => super::errorlog::sp_readerrorlog(ctx, &args),
        "sp_who" => super::kill::sp_who(ctx).map(|()| ProcOut::ok()),
        "sp_getapplock" => super::applock::get(ctx, &args),
        "sp_releaseapplock" => super::applock::release(ctx, &args),
        "sp_add_schedule" | "sp_attach_schedule" | "sp_update_job" | "sp_start_job"
        | "sp_add_jobschedule" | "sp_delete_job" => super::agent::proc(ctx, proc, &args),
        _ => super::log_shipping::proc(ctx, proc, &args),
    }
}

/// Resolves a procedure named in an RPC request.
pub(crate) fn resolve_rpc(ctx: &Ctx, name: &str) -> Option<&'static str> {
    let parts: Vec<&str> = name
        .split('.')
        .map(|p| p.trim_matches(|c| c == '[' || c == ']'))
        .collect();
    let object = match parts.as_slice() {
        [n] => ObjectName {
            db: None,
            schema: None,
            name: (*n).to_owned(),
        },
        [s, n] => ObjectName {
            db: None,
            schema: Some((*s).to_owned()),
            name: (*n).to_owned(),
        },
        [d, s, n] => ObjectName {
            db: Some((*d).to_owned()),
            schema: (!s.is_empty()).then(|| (*s).to_owned()),
            name: (*n).to_owned(),
        },
        _ => return None,
    };
    resolve(ctx, &object).map(|(p, _)| p)
}

/// `EXEC sp_executesql N'stmt', N'@p type, ...', @p = value, ...` inside a batch: the statement runs
/// in its own variable scope, as dynamic SQL does.
fn executesql_in_batch(ctx: &mut Ctx, e: &Exec) -> Step {
    let mut texts = Vec::new();
    for a in e.args.iter().take(2) {
        match a.value.as_ref().map(|v| ctx.eval_text(v)).transpose() {
            Ok(t) => texts.push(t.flatten().unwrap_or_default()),
            Err(err) => return Step::Failed(vec![err]),
        }
    }
    let (stmt, decls) = (
        texts.first().cloned().unwrap_or_default(),
        texts.get(1).cloned().unwrap_or_default(),
    );
    let declared = match super::parser::parse_param_decls(&decls) {
        Ok(d) => d,
        Err(err) => return Step::Failed(vec![err]),
    };
    let mut scope = expr::Vars::default();
    for (i, a) in e.args.iter().skip(2).enumerate() {
        let name = a
            .name
            .clone()
            .or_else(|| declared.get(i).map(|d| d.0.clone()))
            .unwrap_or_default();
        let Some((_, ty, _)) = declared.iter().find(|d| d.0.eq_ignore_ascii_case(&name)) else {
            return Step::Failed(vec![SqlError::new(8145, &[&name, "sp_executesql"])]);
        };
        let value = match a
            .value
            .as_ref()
            .map(|v| ctx.eval(v).and_then(|tv| expr::convert(&tv, ty)))
            .transpose()
        {
            Ok(tv) => tv.map_or(Value::Null, |tv| tv.1),
            Err(err) => return Step::Failed(vec![err]),
        };
        let _ = scope.declare(&name, ty.clone(), value);
    }
    let declared: Vec<String> = scope.0.iter().map(|(n, _, _)| n.clone()).collect();
    let stmts = match super::compile::compile(&stmt, &declared) {
        Ok(s) => s,
        Err(err) => return Step::Failed(vec![err]),
    };
    let outer = std::mem::replace(ctx.vars, scope);
    for s in &stmts {
        let step = super::exec::run(ctx, s);
        if matches!(step, Step::Blocked) {
            // Re-running the whole EXEC would repeat the statements before the wait; the lab does not
            // model lock waits inside dynamic SQL and says so instead of guessing.
            *ctx.vars = outer;
            return Step::Failed(vec![SqlError::not_modelled(
                "a lock wait inside dynamic SQL (call sp_getapplock directly)",
            )]);
        }
        // A batch-aborting error ends the dynamic batch (its own scope); the caller's batch goes on.
        if super::exec::finish(ctx, step) == super::exec::Flow::Abort {
            break;
        }
    }
    *ctx.vars = outer;
    Step::Quiet
}
