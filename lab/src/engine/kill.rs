//! KILL and the session listings operators use before it (sp_who2, sp_who), reference D.
//!
//! KILL ends a real session by cancelling its token (the protocol layer closes the socket) and a
//! virtual one by removing it. The race the reference warns about (a session ends between listing and
//! KILL, 6106) falls out naturally: the spid is simply gone.

use pcfail_lab_tds::{Column, Event, SqlType, Value};

use super::catalog::SYSTEM_SPIDS;
use super::errors::SqlError;
use super::exec::{Ctx, Step};
use super::expr;
use super::parser::Expr;
use super::procs::ProcFail;
use super::time;
use super::world::FIRST_USER_SPID;

/// The highest session id SQL Server accepts in KILL's range check (UNVERIFIED: 6101 prints the
/// instance's maximum; 32767, the smallint limit, is what a default instance is believed to show).
const MAX_SPID: i64 = 32767;

pub(crate) fn kill(ctx: &mut Ctx, target: &Expr) -> Step {
    let fail = |e: SqlError| Step::Failed(vec![e]);
    let tv = match ctx.eval(target) {
        Ok(tv) => tv,
        Err(e) => return fail(e),
    };
    let spid = match expr::convert(&tv, &SqlType::BigInt) {
        Ok((_, Value::Int(n))) => n,
        // KILL 'UOW-guid' (distributed transactions) is outside the lab's model.
        _ => return fail(SqlError::syntax(&expr::as_text(&tv.1).unwrap_or_default())),
    };
    if !(1..=MAX_SPID).contains(&spid) {
        return fail(SqlError::new(
            6101,
            &[&spid.to_string(), &MAX_SPID.to_string()],
        ));
    }
    if ctx.local.trancount > 0 {
        return fail(SqlError::new(6115, &[]));
    }
    if spid == i64::from(ctx.spid) {
        return fail(SqlError::new(6104, &[]));
    }
    if spid < i64::from(FIRST_USER_SPID) {
        return if SYSTEM_SPIDS.contains(&(spid as u16)) {
            fail(SqlError::new(6107, &[]))
        } else {
            fail(SqlError::new(6106, &[&spid.to_string()]))
        };
    }
    ctx.world.prune_sessions(ctx.role);
    let Some(session) = ctx.world.session(ctx.role, spid as u16) else {
        return fail(SqlError::new(6106, &[&spid.to_string()]));
    };
    session.token.cancel();
    ctx.world.close_session(ctx.role, spid as u16);
    Step::Done(None)
}

/// A listing's rows and their DONE, which carries the row count unless NOCOUNT is on [2.2.7.6].
fn result_set(ctx: &mut Ctx, columns: Vec<Column>, rows: Vec<Vec<Value>>) {
    let n = rows.len() as u64;
    ctx.out.push(Event::Rows { columns, rows });
    ctx.out.push(Event::Done {
        row_count: (!ctx.local.nocount).then_some(n),
        error: false,
    });
}

fn text_col(name: &str, len: u16) -> Column {
    Column {
        name: name.to_owned(),
        ty: SqlType::NVarChar(len),
        nullable: true,
    }
}

/// sp_who2's columns: character data whose exact type is UNVERIFIED (reference D), hence the
/// `sp_who2_types` variant.
fn who2_col(ctx: &Ctx, name: &str, len: u16) -> Column {
    let ty = if ctx.world.config.variants.get("sp_who2_types") == "varchar" {
        SqlType::VarChar(len)
    } else {
        SqlType::NVarChar(len)
    };
    Column {
        name: name.to_owned(),
        ty,
        nullable: true,
    }
}

/// sp_who2's 13 columns (reference D): all character data, SPID twice, BlkBy "  ." when not blocked.
pub(crate) fn sp_who2(ctx: &mut Ctx) -> Result<(), ProcFail> {
    ctx.world.prune_sessions(ctx.role);
    let columns = [
        ("SPID", 5),
        ("Status", 30),
        ("Login", 128),
        ("HostName", 128),
        ("BlkBy", 5),
        ("DBName", 128),
        ("Command", 16),
        ("CPUTime", 10),
        ("DiskIO", 10),
        ("LastBatch", 14),
        ("ProgramName", 128),
        ("SPID", 5),
        ("REQUESTID", 5),
    ]
    .iter()
    .map(|(name, len)| who2_col(ctx, name, *len))
    .collect();
    let s = |x: &str| Value::String(x.to_owned());
    let last_batch = |t| {
        let (_, mo, d, h, mi, se) = time::civil(t);
        format!("{mo:02}/{d:02} {h:02}:{mi:02}:{se:02}")
    };
    let mut rows = Vec::new();
    for spid in SYSTEM_SPIDS {
        let id = format!("{spid:<5}");
        rows.push(vec![
            s(&id),
            s("BACKGROUND"),
            s("sa"),
            s("  ."),
            s("  ."),
            s("master"),
            s("TASK MANAGER"),
            s("0"),
            s("0"),
            s(&last_batch(ctx.now)),
            s(""),
            s(&id),
            s("0"),
        ]);
    }
    let inst = ctx.world.inst(ctx.role).expect("session's instance");
    for sess in ctx.world.sessions(ctx.role) {
        let id = format!("{:<5}", sess.spid);
        let me = sess.spid == ctx.spid;
        let (status, command, db_id) = super::catalog::activity(inst, sess, Some(ctx.spid));
        let db = inst
            .db_by_id(db_id)
            .map_or_else(|| sess.database.clone(), |d| d.name.clone());
        rows.push(vec![
            s(&id),
            s(&status),
            s(&sess.login),
            s(&sess.host),
            s("  ."),
            s(&db),
            // sp_who2 shows its own session's INSERT #tmp EXEC as SELECT INTO.
            s(if me { "SELECT INTO" } else { &command }),
            s("0"),
            s("0"),
            s(&last_batch(sess.last_batch)),
            s(&sess.program),
            s(&id),
            s("0"),
        ]);
    }
    result_set(ctx, columns, rows);
    Ok(())
}

/// sp_who (documented): spid, ecid, status, loginame, hostname, blk, dbname, cmd, request_id.
pub(crate) fn sp_who(ctx: &mut Ctx) -> Result<(), ProcFail> {
    ctx.world.prune_sessions(ctx.role);
    let columns = vec![
        Column {
            name: "spid".into(),
            ty: SqlType::SmallInt,
            nullable: false,
        },
        Column {
            name: "ecid".into(),
            ty: SqlType::SmallInt,
            nullable: false,
        },
        text_col("status", 30),
        text_col("loginame", 128),
        text_col("hostname", 128),
        text_col("blk", 5),
        text_col("dbname", 128),
        text_col("cmd", 16),
        Column {
            name: "request_id".into(),
            ty: SqlType::Int,
            nullable: false,
        },
    ];
    let s = |x: &str| Value::String(x.to_owned());
    let mut rows = Vec::new();
    for spid in SYSTEM_SPIDS {
        rows.push(vec![
            Value::Int(i64::from(spid)),
            Value::Int(0),
            s("background"),
            s("sa"),
            s(""),
            s("0"),
            s("master"),
            s("TASK MANAGER"),
            Value::Int(0),
        ]);
    }
    for sess in ctx.world.sessions(ctx.role) {
        let me = sess.spid == ctx.spid;
        rows.push(vec![
            Value::Int(i64::from(sess.spid)),
            Value::Int(0),
            s(if me { "runnable" } else { "sleeping" }),
            s(&sess.login),
            s(&sess.host),
            s("0"),
            s(&sess.database),
            s(if me { "SELECT" } else { "AWAITING COMMAND" }),
            Value::Int(0),
        ]);
    }
    result_set(ctx, columns, rows);
    Ok(())
}
