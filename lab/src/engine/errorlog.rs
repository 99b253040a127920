//! The SQL Server error log: `xp_logevent` writes a line to it (SQL Server also writes it to the
//! Windows Application event log), `sp_readerrorlog` reads it back, filtered by up to two strings.
//!
//! Facts (SQL Server docs, "xp_logevent (Transact-SQL)"): arguments by position only; a user-defined
//! error number larger than 50,000; a message of at most 2048 characters; severity INFORMATIONAL
//! (default), WARNING or ERROR; sysadmin or db_owner in master. `sp_readerrorlog` is undocumented; its
//! shape (log number, 1 = SQL Server log or 2 = Agent log, then two search strings; rows of LogDate,
//! ProcessInfo, Text) is how every public script calls it (UNVERIFIED in Microsoft's docs). The lab
//! keeps only the current log (number 0); older numbers read as empty, an Agent log too.

use pcfail_lab_tds::{Column, Event, SqlType, Value};

use super::errors::SqlError;
use super::exec::Ctx;
use super::model::ErrorLogLine;
use super::procs::{Args, ProcFail, ProcOut};
use super::time;

pub(crate) fn xp_logevent(ctx: &mut Ctx, args: &Args) -> Result<ProcOut, ProcFail> {
    let number = args.int("@p1").unwrap_or(0);
    if number <= 50_000 {
        return Err(
            SqlError::not_modelled("xp_logevent with an error number of 50000 or less").into(),
        );
    }
    let message = args.str("@p2").unwrap_or_default();
    if message.chars().count() > 2048 {
        return Err(
            SqlError::not_modelled("xp_logevent with a message over 2048 characters").into(),
        );
    }
    let severity = match args
        .str("@p3")
        .unwrap_or_else(|| "INFORMATIONAL".to_owned())
        .to_ascii_uppercase()
        .as_str()
    {
        "INFORMATIONAL" => 10,
        "WARNING" => 16,
        "ERROR" => 16,
        other => {
            return Err(SqlError::not_modelled(&format!("xp_logevent severity `{other}`")).into());
        }
    };
    let process = format!("spid{}", ctx.spid);
    let now = ctx.now;
    let Some(inst) = ctx.world.inst_mut(ctx.role) else {
        return Ok(ProcOut::ok());
    };
    // As SQL Server logs a raised error: its number line, then its text.
    inst.errorlog.push(ErrorLogLine {
        time: now,
        process: process.clone(),
        text: format!("Error: {number}, Severity: {severity}, State: 1."),
    });
    inst.errorlog.push(ErrorLogLine {
        time: now,
        process,
        text: message,
    });
    Ok(ProcOut::ok())
}

pub(crate) fn sp_readerrorlog(ctx: &mut Ctx, args: &Args) -> Result<ProcOut, ProcFail> {
    let log = args.int("@p1").unwrap_or(0);
    let kind = args.int("@p2").unwrap_or(1);
    let wanted: Vec<String> = ["@p3", "@p4"]
        .iter()
        .filter_map(|p| args.str(p))
        .map(|s| s.to_lowercase())
        .collect();
    let lines: Vec<ErrorLogLine> = match (log, kind) {
        (0, 1) => ctx
            .world
            .inst(ctx.role)
            .map(|i| i.errorlog.clone())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let columns = vec![
        Column {
            name: "LogDate".into(),
            ty: SqlType::DateTime,
            nullable: true,
        },
        Column {
            name: "ProcessInfo".into(),
            ty: SqlType::NVarChar(100),
            nullable: true,
        },
        Column {
            name: "Text".into(),
            ty: SqlType::NVarChar(4000),
            nullable: true,
        },
    ];
    let rows: Vec<Vec<Value>> = lines
        .into_iter()
        .filter(|l| {
            let text = l.text.to_lowercase();
            wanted.iter().all(|w| text.contains(w))
        })
        .map(|l| {
            vec![
                time::datetime(l.time),
                Value::String(l.process),
                Value::String(l.text),
            ]
        })
        .collect();
    let n = rows.len() as u64;
    ctx.out.push(Event::Rows { columns, rows });
    ctx.out.push(Event::Done {
        row_count: (!ctx.local.nocount).then_some(n),
        error: false,
    });
    Ok(ProcOut::ok())
}
