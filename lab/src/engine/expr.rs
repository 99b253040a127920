//! Expression evaluation: literals, variables, columns, operators with SQL's three-valued logic,
//! CAST/CONVERT, and the built-in functions pcfail uses (DB_ID, DATABASEPROPERTYEX, SERVERPROPERTY, ...).
//!
//! Every value carries its SQL type, because the result set's column metadata must match the real
//! server's types (tiberius panics on `row.get` with a wrong type).

use std::cmp::Ordering;

use pcfail_lab_tds::{SqlType, Value};

use super::errors::SqlError;
use super::guid::Guid;
use super::parser::{BinOp, Expr};
use super::world::World;
use super::{LabTime, Role, time};

/// A typed value.
pub(crate) type Tv = (SqlType, Value);

/// The variables of one batch (DECLAREd ones and sp_executesql parameters), names lower-cased with '@'.
#[derive(Clone, Debug, Default)]
pub(crate) struct Vars(pub Vec<(String, SqlType, Value)>);

impl Vars {
    pub(crate) fn get(&self, name: &str) -> Option<&(String, SqlType, Value)> {
        self.0.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(name))
    }
    pub(crate) fn declare(
        &mut self,
        name: &str,
        ty: SqlType,
        value: Value,
    ) -> Result<(), SqlError> {
        if self.get(name).is_some() {
            return Err(SqlError::new(134, &[name]));
        }
        self.0.push((name.to_owned(), ty, value));
        Ok(())
    }
    pub(crate) fn set(&mut self, name: &str, value: Value) -> Result<(), SqlError> {
        let slot = self
            .0
            .iter_mut()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(name));
        match slot {
            Some((_, ty, v)) => {
                *v = convert(&(ty.clone(), value.clone()), ty)?.1;
                Ok(())
            }
            None => Err(SqlError::new(137, &[name])),
        }
    }
}

/// A column of a relation being queried: which table alias it came from, its name and type.
#[derive(Clone, Debug)]
pub(crate) struct RelCol {
    pub qual: String,
    pub name: String,
    pub ty: SqlType,
    pub nullable: bool,
}

/// Everything an expression can see.
/// The session's @@ values an expression can read.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Globals {
    /// @@TRANCOUNT: open BEGIN TRANs.
    pub trancount: u32,
    /// @@ERROR: the number of the last statement's last error, 0 after a success.
    pub error: u32,
    /// @@ROWCOUNT: rows the last statement returned or affected.
    pub rowcount: u64,
}

pub(crate) struct Env<'a> {
    pub world: &'a World,
    pub globals: Globals,
    pub role: Role,
    pub spid: u16,
    pub now: LabTime,
    pub vars: &'a Vars,
    pub cols: &'a [RelCol],
    pub row: Option<&'a [Value]>,
    /// The rows of the group when evaluating aggregates.
    pub group: Option<&'a [Vec<Value>]>,
}

impl<'a> Env<'a> {
    pub(crate) fn with_row(&self, row: Option<&'a [Value]>) -> Env<'a> {
        Env {
            world: self.world,
            globals: self.globals,
            role: self.role,
            spid: self.spid,
            now: self.now,
            vars: self.vars,
            cols: self.cols,
            row,
            group: None,
        }
    }

    fn current_db(&self) -> String {
        self.world.current_db(self.role, self.spid)
    }
}

fn nv(s: impl Into<String>) -> Tv {
    (SqlType::NVarChar(128), Value::String(s.into()))
}

fn int(v: i64) -> Tv {
    (SqlType::Int, Value::Int(v))
}

pub(crate) fn truthy(v: &Value) -> Option<bool> {
    match v {
        Value::Null => None,
        Value::Bit(b) => Some(*b),
        Value::Int(i) => Some(*i != 0),
        _ => Some(true),
    }
}

fn bool_tv(b: Option<bool>) -> Tv {
    (SqlType::Bit, b.map_or(Value::Null, Value::Bit))
}

pub(crate) fn eval(e: &Expr, env: &Env) -> Result<Tv, SqlError> {
    Ok(match e {
        Expr::Lit(v, ty) => (ty.clone(), v.clone()),
        Expr::Null => (SqlType::Int, Value::Null),
        Expr::Var(name) => return var(name, env),
        Expr::Col(qual, name) => return column(qual.as_deref(), name, env),
        Expr::CountStar => match env.group {
            Some(rows) => int(rows.len() as i64),
            None => return Err(SqlError::syntax("*")),
        },
        Expr::Func(name, args) => return func(name, args, env),
        Expr::Cast(inner, ty) => return convert(&eval(inner, env)?, ty),
        Expr::Neg(inner) => {
            let (ty, v) = eval(inner, env)?;
            match v {
                Value::Int(i) => (ty, Value::Int(-i)),
                Value::Numeric(n, s) => (ty, Value::Numeric(-n, s)),
                Value::Float(f) => (ty, Value::Float(-f)),
                Value::Null => (ty, Value::Null),
                other => return Err(conversion_error(&other, "int")),
            }
        }
        Expr::Not(inner) => bool_tv(truthy(&eval(inner, env)?.1).map(|b| !b)),
        Expr::IsNull(inner, negated) => {
            let is_null = matches!(eval(inner, env)?.1, Value::Null);
            bool_tv(Some(is_null != *negated))
        }
        Expr::In(left, list, negated) => {
            let l = eval(left, env)?;
            let mut result = Some(false);
            for item in list {
                match compare(&l, &eval(item, env)?)? {
                    Some(Ordering::Equal) => {
                        result = Some(true);
                        break;
                    }
                    None => result = None,
                    _ => {}
                }
            }
            bool_tv(result.map(|b| b != *negated))
        }
        Expr::Like(left, pattern, negated) => {
            let l = eval(left, env)?.1;
            let p = eval(pattern, env)?.1;
            match (as_text(&l), as_text(&p)) {
                (Some(l), Some(p)) => {
                    bool_tv(Some(like(&l.to_lowercase(), &p.to_lowercase()) != *negated))
                }
                _ => bool_tv(None),
            }
        }
        Expr::Case(arms, other) => {
            for (cond, value) in arms {
                if truthy(&eval(cond, env)?.1) == Some(true) {
                    return eval(value, env);
                }
            }
            match other {
                Some(o) => eval(o, env)?,
                None => (
                    eval(&arms[0].1, &env.with_row(None))
                        .map(|t| t.0)
                        .unwrap_or(SqlType::Int),
                    Value::Null,
                ),
            }
        }
        Expr::Bin(l, op, r) => return binary(l, *op, r, env),
    })
}

fn var(name: &str, env: &Env) -> Result<Tv, SqlError> {
    if let Some(rest) = name.strip_prefix("@@") {
        let inst = env.world.inst(env.role);
        return Ok(match rest.to_uppercase().as_str() {
            "SERVERNAME" => nv(inst.map(|i| i.config.name.clone()).unwrap_or_default()),
            "SPID" => (SqlType::SmallInt, Value::Int(i64::from(env.spid))),
            "VERSION" => (
                SqlType::NVarChar(300),
                Value::String(VERSION_TEXT.to_owned()),
            ),
            "TRANCOUNT" => int(i64::from(env.globals.trancount)),
            "ERROR" => int(i64::from(env.globals.error)),
            "ROWCOUNT" => int(env.globals.rowcount as i64),
            "SERVICENAME" => nv("MSSQLSERVER"),
            _ => return Err(SqlError::new(137, &[name])),
        });
    }
    match env.vars.get(name) {
        Some((_, ty, v)) => Ok((ty.clone(), v.clone())),
        None => Err(SqlError::new(137, &[name])),
    }
}

/// SQL Server 2016 SP2, the one version the lab emulates (HEADERONLY's columns follow it too).
pub(crate) const PRODUCT_VERSION: &str = "13.0.5026.0";
const VERSION_TEXT: &str = "Microsoft SQL Server 2016 (SP2) (KB4052908) - 13.0.5026.0 (X64) \n\tMar 18 2018 09:11:49 \n\tCopyright (c) Microsoft Corporation\n\tEnterprise Edition (64-bit) on Windows Server 2016 Datacenter 10.0 <X64> (Build 14393: ) (Hypervisor)\n";

fn column(qual: Option<&str>, name: &str, env: &Env) -> Result<Tv, SqlError> {
    let matches: Vec<usize> = env
        .cols
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            c.name.eq_ignore_ascii_case(name) && qual.is_none_or(|q| c.qual.eq_ignore_ascii_case(q))
        })
        .map(|(i, _)| i)
        .collect();
    let display = match qual {
        Some(q) => format!("{q}.{name}"),
        None => name.to_owned(),
    };
    match matches.as_slice() {
        [] => Err(
            if qual.is_some()
                && !env
                    .cols
                    .iter()
                    .any(|c| qual.is_some_and(|q| c.qual.eq_ignore_ascii_case(q)))
            {
                // SQL Server: "The multi-part identifier "x.y" could not be bound." (4104)
                SqlError {
                    number: 4104,
                    class: 16,
                    state: 1,
                    text: format!("The multi-part identifier \"{display}\" could not be bound."),
                    procedure: String::new(),
                }
            } else {
                SqlError::new(207, &[name])
            },
        ),
        [i] => {
            let c = &env.cols[*i];
            let v = env.row.map_or(Value::Null, |r| r[*i].clone());
            Ok((c.ty.clone(), v))
        }
        _ => Err(SqlError::new(209, &[name])),
    }
}

fn binary(l: &Expr, op: BinOp, r: &Expr, env: &Env) -> Result<Tv, SqlError> {
    match op {
        BinOp::And => {
            let a = truthy(&eval(l, env)?.1);
            if a == Some(false) {
                return Ok(bool_tv(Some(false)));
            }
            let b = truthy(&eval(r, env)?.1);
            Ok(bool_tv(match (a, b) {
                (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            }))
        }
        BinOp::Or => {
            let a = truthy(&eval(l, env)?.1);
            if a == Some(true) {
                return Ok(bool_tv(Some(true)));
            }
            let b = truthy(&eval(r, env)?.1);
            Ok(bool_tv(match (a, b) {
                (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            }))
        }
        BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge => {
            let ord = compare(&eval(l, env)?, &eval(r, env)?)?;
            Ok(bool_tv(ord.map(|o| match op {
                BinOp::Eq => o == Ordering::Equal,
                BinOp::Ne => o != Ordering::Equal,
                BinOp::Lt => o == Ordering::Less,
                BinOp::Gt => o == Ordering::Greater,
                BinOp::Le => o != Ordering::Greater,
                _ => o != Ordering::Less,
            })))
        }
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => {
            let a = eval(l, env)?;
            let b = eval(r, env)?;
            arithmetic(a, op, b)
        }
    }
}

fn arithmetic(a: Tv, op: BinOp, b: Tv) -> Result<Tv, SqlError> {
    if matches!(a.1, Value::Null) || matches!(b.1, Value::Null) {
        return Ok((a.0, Value::Null));
    }
    if op == BinOp::Add && (as_text_typed(&a).is_some() || as_text_typed(&b).is_some()) {
        let (x, y) = (
            as_text(&a.1).unwrap_or_default(),
            as_text(&b.1).unwrap_or_default(),
        );
        return Ok((
            SqlType::NVarChar(4000),
            Value::String(truncate_units(&(x + &y), 4000)),
        ));
    }
    let (x, sx) = numeric_of(&a.1)?;
    let (y, sy) = numeric_of(&b.1)?;
    let scale = sx.max(sy);
    let x = x * 10i128.pow(u32::from(scale - sx));
    let y = y * 10i128.pow(u32::from(scale - sy));
    let v = match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => return Ok(rescaled(x * y, scale * 2, &a.0)),
        BinOp::Div if y == 0 => {
            return Err(SqlError {
                number: 8134,
                class: 16,
                state: 1,
                text: "Divide by zero error encountered.".to_owned(),
                procedure: String::new(),
            });
        }
        BinOp::Div => x / y * 10i128.pow(u32::from(scale)),
        _ => x % y,
    };
    Ok(rescaled(v, scale, &a.0))
}

fn rescaled(v: i128, scale: u8, ty: &SqlType) -> Tv {
    if scale == 0 {
        match ty {
            SqlType::Numeric { .. } => (
                SqlType::Numeric {
                    precision: 38,
                    scale: 0,
                },
                Value::Numeric(v, 0),
            ),
            SqlType::BigInt => (SqlType::BigInt, Value::Int(v as i64)),
            _ => (SqlType::Int, Value::Int(v as i64)),
        }
    } else {
        (
            SqlType::Numeric {
                precision: 38,
                scale,
            },
            Value::Numeric(v, scale),
        )
    }
}

fn numeric_of(v: &Value) -> Result<(i128, u8), SqlError> {
    match v {
        Value::Int(i) => Ok((i128::from(*i), 0)),
        Value::Bit(b) => Ok((i128::from(*b), 0)),
        Value::Numeric(n, s) => Ok((*n, *s)),
        Value::Float(f) => Ok(((*f * 1e6) as i128, 6)),
        Value::String(s) => parse_numeric(s).ok_or_else(|| conversion_error(v, "int")),
        Value::Variant(b) => numeric_of(&b.1),
        other => Err(conversion_error(other, "int")),
    }
}

fn parse_numeric(s: &str) -> Option<(i128, u8)> {
    let s = s.trim();
    match s.split_once('.') {
        Some((i, f)) => {
            let v: i128 = format!("{i}{f}").parse().ok()?;
            Some((v, f.len() as u8))
        }
        None => s.parse().ok().map(|v| (v, 0)),
    }
}

fn as_text_typed(t: &Tv) -> Option<String> {
    match t.0 {
        SqlType::NVarChar(_) | SqlType::NVarCharMax | SqlType::VarChar(_) | SqlType::Char(_) => {
            as_text(&t.1)
        }
        _ => None,
    }
}

/// The text form of a value (what CAST(x AS nvarchar) gives).
pub(crate) fn as_text(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Bit(b) => (if *b { "1" } else { "0" }).to_owned(),
        Value::Float(f) => f.to_string(),
        Value::Numeric(n, 0) => n.to_string(),
        Value::Numeric(n, s) => {
            let p = 10i128.pow(u32::from(*s));
            let sign = if *n < 0 { "-" } else { "" };
            format!(
                "{sign}{}.{:0width$}",
                n.abs() / p,
                n.abs() % p,
                width = usize::from(*s)
            )
        }
        Value::DateTime { days, ticks } => {
            let ms = (i64::from(*days) - 25_567) * 86_400_000 + i64::from(*ticks) * 1000 / 300;
            time::display(LabTime(ms))
        }
        Value::Guid(g) => Guid::from_wire(*g).to_string(),
        Value::Binary(b) => format!(
            "0x{}",
            b.iter().map(|x| format!("{x:02X}")).collect::<String>()
        ),
        Value::Variant(b) => return as_text(&b.1),
        // Newer date/time types only arrive as RPC parameters; their wire form is shown as is.
        Value::Date(d) => format!("date({d})"),
        Value::Time { increments, scale } => format!("time({increments}e-{scale})"),
        Value::DateTime2 {
            days,
            increments,
            scale,
        } => format!("datetime2({days}, {increments}e-{scale})"),
        Value::DateTimeOffset {
            days,
            increments,
            scale,
            offset_minutes,
        } => {
            format!("datetimeoffset({days}, {increments}e-{scale}, {offset_minutes})")
        }
    })
}

fn type_name(ty: &SqlType) -> &'static str {
    match ty {
        SqlType::TinyInt => "tinyint",
        SqlType::SmallInt => "smallint",
        SqlType::Int => "int",
        SqlType::BigInt => "bigint",
        SqlType::Bit => "bit",
        SqlType::Float => "float",
        SqlType::NVarChar(_) | SqlType::NVarCharMax => "nvarchar",
        SqlType::VarChar(_) => "varchar",
        SqlType::Char(_) => "char",
        SqlType::Numeric { .. } => "numeric",
        SqlType::DateTime => "datetime",
        SqlType::UniqueIdentifier => "uniqueidentifier",
        SqlType::VarBinary(_) => "varbinary",
        SqlType::Variant => "sql_variant",
        SqlType::Real => "real",
        SqlType::SmallDateTime => "smalldatetime",
        SqlType::Date => "date",
        SqlType::Time(_) => "time",
        SqlType::DateTime2(_) => "datetime2",
        SqlType::DateTimeOffset(_) => "datetimeoffset",
        SqlType::Xml => "xml",
        SqlType::VarBinaryMax => "varbinary",
        SqlType::VarCharMax => "varchar",
    }
}

fn conversion_error(v: &Value, to: &str) -> SqlError {
    let from = match v {
        Value::String(_) => "nvarchar",
        _ => "value",
    };
    SqlError::new(245, &[from, &as_text(v).unwrap_or_default(), to])
}

/// CAST/CONVERT, and the implicit conversion when assigning to a typed variable.
pub(crate) fn convert(tv: &Tv, to: &SqlType) -> Result<Tv, SqlError> {
    let v = match &tv.1 {
        Value::Variant(b) if *to != SqlType::Variant => b.1.clone(),
        other => other.clone(),
    };
    if matches!(v, Value::Null) {
        return Ok((to.clone(), Value::Null));
    }
    let out = match to {
        SqlType::TinyInt | SqlType::SmallInt | SqlType::Int | SqlType::BigInt => {
            let (n, s) = numeric_of(&v).map_err(|_| conversion_error(&v, type_name(to)))?;
            Value::Int((n / 10i128.pow(u32::from(s))) as i64)
        }
        SqlType::Bit => match &v {
            Value::String(s) if s.eq_ignore_ascii_case("true") => Value::Bit(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Value::Bit(false),
            _ => Value::Bit(numeric_of(&v).map_err(|_| conversion_error(&v, "bit"))?.0 != 0),
        },
        SqlType::Float | SqlType::Real => {
            let (n, s) = numeric_of(&v).map_err(|_| conversion_error(&v, "float"))?;
            Value::Float(n as f64 / 10f64.powi(i32::from(s)))
        }
        SqlType::Numeric { scale, .. } => {
            let (n, s) = numeric_of(&v).map_err(|_| conversion_error(&v, "numeric"))?;
            let n = if *scale >= s { n * 10i128.pow(u32::from(scale - s)) } else { n / 10i128.pow(u32::from(s - scale)) };
            Value::Numeric(n, *scale)
        }
        SqlType::NVarChar(_)
        | SqlType::NVarCharMax
        | SqlType::VarChar(_)
        | SqlType::Char(_)
        | SqlType::VarCharMax
        | SqlType::Xml => {
            let mut s = as_text(&v).unwrap_or_default();
            match to {
                SqlType::NVarChar(n) => s = truncate_units(&s, usize::from(*n)),
                SqlType::VarChar(n) | SqlType::Char(n) => {
                    s = s.chars().take(usize::from(*n)).collect()
                }
                _ => {}
            }
            Value::String(s)
        }
        SqlType::UniqueIdentifier => match &v {
            Value::Guid(g) => Value::Guid(*g),
            Value::String(s) => {
                Value::Guid(Guid::parse(s).ok_or_else(|| SqlError { number: 8169, class: 16, state: 2, text: "Conversion failed when converting from a character string to uniqueidentifier.".to_owned(), procedure: String::new() })?.to_wire())
            }
            other => return Err(conversion_error(other, "uniqueidentifier")),
        },
        SqlType::DateTime | SqlType::SmallDateTime => match &v {
            Value::DateTime { .. } => v.clone(),
            other => return Err(conversion_error(other, type_name(to))),
        },
        SqlType::Date | SqlType::Time(_) | SqlType::DateTime2(_) | SqlType::DateTimeOffset(_) => match &v {
            Value::Date(_) | Value::Time { .. } | Value::DateTime2 { .. } | Value::DateTimeOffset { .. } => v.clone(),
            other => return Err(conversion_error(other, type_name(to))),
        },
        SqlType::Variant => match &v {
            Value::Variant(_) => v.clone(),
            other => Value::Variant(Box::new((tv.0.clone(), other.clone()))),
        },
        SqlType::VarBinary(_) | SqlType::VarBinaryMax => match &v {
            Value::Binary(_) => v.clone(),
            Value::String(s) => Value::Binary(s.as_bytes().to_vec()),
            other => return Err(conversion_error(other, "varbinary")),
        },
    };
    Ok((to.clone(), out))
}

/// The longest prefix of `s` within `units` UTF-16 code units (nvarchar(n) counts those, not
/// characters), never splitting a surrogate pair.
pub(crate) fn truncate_units(s: &str, units: usize) -> String {
    let mut used = 0;
    s.chars()
        .take_while(|c| {
            used += c.len_utf16();
            used <= units
        })
        .collect()
}

/// SQL comparison: None when either side is NULL. Strings compare case-insensitively (the lab's
/// collation is SQL_Latin1_General_CP1_CI_AS); a string meets a number or a GUID by conversion.
pub(crate) fn compare(a: &Tv, b: &Tv) -> Result<Option<Ordering>, SqlError> {
    let unwrap = |v: &Value| match v {
        Value::Variant(b) => b.1.clone(),
        other => other.clone(),
    };
    let (x, y) = (unwrap(&a.1), unwrap(&b.1));
    Ok(Some(match (&x, &y) {
        (Value::Null, _) | (_, Value::Null) => return Ok(None),
        (Value::String(s), Value::String(t)) => s
            .trim_end()
            .to_lowercase()
            .cmp(&t.trim_end().to_lowercase()),
        (Value::Guid(g), Value::Guid(h)) => Guid::from_wire(*g).cmp(&Guid::from_wire(*h)),
        (Value::Guid(g), Value::String(s)) | (Value::String(s), Value::Guid(g)) => {
            let parsed = convert(
                &(SqlType::NVarChar(36), Value::String(s.clone())),
                &SqlType::UniqueIdentifier,
            )?;
            let Value::Guid(p) = parsed.1 else {
                return Ok(None);
            };
            let o = Guid::from_wire(*g).cmp(&Guid::from_wire(p));
            if matches!(x, Value::Guid(_)) {
                o
            } else {
                o.reverse()
            }
        }
        (
            Value::DateTime {
                days: d1,
                ticks: t1,
            },
            Value::DateTime {
                days: d2,
                ticks: t2,
            },
        ) => (d1, t1).cmp(&(d2, t2)),
        (Value::Binary(p), Value::Binary(q)) => p.cmp(q),
        _ => {
            let (n, s) = numeric_of(&x)?;
            let (m, t) = numeric_of(&y)?;
            let scale = s.max(t);
            (n * 10i128.pow(u32::from(scale - s))).cmp(&(m * 10i128.pow(u32::from(scale - t))))
        }
    }))
}

/// LIKE with `%`, `_` and `[abc]` / `[^abc]`, on lower-cased text.
fn like(s: &str, p: &str) -> bool {
    fn go(s: &[char], p: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('%') => (0..=s.len()).any(|i| go(&s[i..], &p[1..])),
            Some('_') => !s.is_empty() && go(&s[1..], &p[1..]),
            Some('[') => {
                let Some(end) = p.iter().position(|c| *c == ']') else {
                    return !s.is_empty() && s[0] == '[' && go(&s[1..], &p[1..]);
                };
                let set = &p[1..end];
                let (neg, set) = if set.first() == Some(&'^') {
                    (true, &set[1..])
                } else {
                    (false, set)
                };
                !s.is_empty() && (set.contains(&s[0]) != neg) && go(&s[1..], &p[end + 1..])
            }
            Some(c) => !s.is_empty() && s[0] == *c && go(&s[1..], &p[1..]),
        }
    }
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = p.chars().collect();
    go(&s, &p)
}

fn arg_text(args: &[Expr], i: usize, env: &Env) -> Result<Option<String>, SqlError> {
    match args.get(i) {
        Some(e) => Ok(as_text(&eval(e, env)?.1)),
        None => Ok(None),
    }
}

fn func(name: &str, args: &[Expr], env: &Env) -> Result<Tv, SqlError> {
    let inst = env.world.inst(env.role);
    let argc = |min: usize, max: usize| -> Result<(), SqlError> {
        if args.len() < min || args.len() > max {
            Err(SqlError {
                number: 174,
                class: 15,
                state: 1,
                text: format!(
                    "The {} function requires {min} argument(s).",
                    name.to_lowercase()
                ),
                procedure: String::new(),
            })
        } else {
            Ok(())
        }
    };
    Ok(match name {
        "DB_ID" => {
            argc(0, 1)?;
            let db = arg_text(args, 0, env)?;
            let db = if args.is_empty() {
                Some(env.current_db())
            } else {
                db
            };
            let id = db.and_then(|n| inst.and_then(|i| i.db(&n)).map(|d| d.id));
            (SqlType::Int, id.map_or(Value::Null, Value::Int))
        }
        "DB_NAME" => {
            argc(0, 1)?;
            let name = if args.is_empty() {
                Some(env.current_db())
            } else {
                match eval(&args[0], env)?.1 {
                    Value::Null => None,
                    v => numeric_of(&v).ok().and_then(|(id, _)| {
                        inst.and_then(|i| i.db_by_id(id as i64))
                            .map(|d| d.name.clone())
                    }),
                }
            };
            (
                SqlType::NVarChar(128),
                name.map_or(Value::Null, Value::String),
            )
        }
        "DATABASEPROPERTYEX" => {
            argc(2, 2)?;
            let db = arg_text(args, 0, env)?.unwrap_or_default();
            let prop = arg_text(args, 1, env)?.unwrap_or_default();
            let v = inst
                .and_then(|i| i.db(&db))
                .and_then(|d| super::query::database_property(d, &prop));
            (
                SqlType::Variant,
                v.map_or(Value::Null, |tv| Value::Variant(Box::new(tv))),
            )
        }
        "SERVERPROPERTY" => {
            argc(1, 1)?;
            let prop = arg_text(args, 0, env)?.unwrap_or_default();
            let name = inst.map(|i| i.config.name.clone()).unwrap_or_default();
            let v = match prop.to_lowercase().as_str() {
                "productversion" => Some(PRODUCT_VERSION.to_owned()),
                "productlevel" => Some("SP2".to_owned()),
                "edition" => Some("Enterprise Edition (64-bit)".to_owned()),
                "servername" | "machinename" | "computernamephysicalnetbios" => Some(name),
                "instancename" => None, // the default instance: NULL, as SQL Server returns
                "ishadrenabled" | "isclustered" => Some("0".to_owned()),
                // SQL Server 2012 and later, with the trailing backslash SQL Server gives.
                "instancedefaultdatapath" | "instancedefaultlogpath" => {
                    inst.map(|i| format!("{}\\", i.data_dir()))
                }
                _ => None,
            };
            let tv = v.map(|s| {
                if prop.eq_ignore_ascii_case("ishadrenabled")
                    || prop.eq_ignore_ascii_case("isclustered")
                {
                    (SqlType::Int, Value::Int(0))
                } else {
                    (SqlType::NVarChar(128), Value::String(s))
                }
            });
            (
                SqlType::Variant,
                tv.map_or(Value::Null, |tv| Value::Variant(Box::new(tv))),
            )
        }
        "IS_SRVROLEMEMBER" => {
            argc(1, 2)?;
            let role = arg_text(args, 0, env)?.unwrap_or_default().to_lowercase();
            // The lab's only login is sa: a member of every fixed server role.
            let known = [
                "sysadmin",
                "serveradmin",
                "securityadmin",
                "processadmin",
                "setupadmin",
                "bulkadmin",
                "diskadmin",
                "dbcreator",
                "public",
            ];
            (
                SqlType::Int,
                if known.contains(&role.as_str()) {
                    Value::Int(1)
                } else {
                    Value::Null
                },
            )
        }
        "ISNULL" => {
            argc(2, 2)?;
            let a = eval(&args[0], env)?;
            if matches!(a.1, Value::Null) {
                convert(&eval(&args[1], env)?, &a.0)?
            } else {
                a
            }
        }
        "COALESCE" => {
            let mut first_ty = None;
            for a in args {
                let tv = eval(a, env)?;
                first_ty.get_or_insert(tv.0.clone());
                if !matches!(tv.1, Value::Null) {
                    return Ok(tv);
                }
            }
            (first_ty.unwrap_or(SqlType::Int), Value::Null)
        }
        "GETDATE" | "GETUTCDATE" | "SYSDATETIME" | "SYSUTCDATETIME" | "CURRENT_TIMESTAMP" => {
            argc(0, 0)?;
            (SqlType::DateTime, time::datetime(env.now))
        }
        "SUSER_SNAME" | "SUSER_NAME" | "ORIGINAL_LOGIN" => {
            let login = env
                .world
                .session(env.role, env.spid)
                .map(|s| s.login.clone())
                .unwrap_or_default();
            nv(login)
        }
        "HOST_NAME" => nv(env
            .world
            .session(env.role, env.spid)
            .map(|s| s.host.clone())
            .unwrap_or_default()),
        "APP_NAME" => nv(env
            .world
            .session(env.role, env.spid)
            .map(|s| s.program.clone())
            .unwrap_or_default()),
        "LEN" => {
            argc(1, 1)?;
            let t = arg_text(args, 0, env)?;
            (
                SqlType::Int,
                // Under the lab's collation (not a _SC one) a character outside the BMP counts
                // as two, as its surrogate pair does in nvarchar.
                t.map_or(Value::Null, |s| {
                    Value::Int(s.trim_end().encode_utf16().count() as i64)
                }),
            )
        }
        "UPPER" | "LOWER" | "LTRIM" | "RTRIM" => {
            argc(1, 1)?;
            let (ty, v) = eval(&args[0], env)?;
            let t = as_text(&v).map(|s| match name {
                "UPPER" => s.to_uppercase(),
                "LOWER" => s.to_lowercase(),
                "LTRIM" => s.trim_start().to_owned(),
                _ => s.trim_end().to_owned(),
            });
            (ty, t.map_or(Value::Null, Value::String))
        }
        "QUOTENAME" => {
            argc(1, 2)?;
            let t = arg_text(args, 0, env)?;
            (
                SqlType::NVarChar(258),
                t.map_or(Value::Null, |s| {
                    Value::String(format!("[{}]", s.replace(']', "]]")))
                }),
            )
        }
        "NEWID" => {
            // Derived from the clock and the session: unique enough for a lab, and needs no &mut World.
            let g = Guid((env.now.0 as u128) << 64 | u128::from(env.spid) << 32 | 0x4000_8000);
            (SqlType::UniqueIdentifier, Value::Guid(g.to_wire()))
        }
        "COUNT" | "MAX" | "MIN" | "SUM" => {
            argc(1, 1)?;
            let Some(rows) = env.group else {
                return Err(SqlError { number: 147, class: 15, state: 1, text: "An aggregate may not appear in the WHERE clause unless it is in a subquery contained in a HAVING clause or a select list, and the column being aggregated is an outer reference.".to_owned(), procedure: String::new() });
            };
            let ty = eval(&args[0], &env.with_row(None))?.0;
            let mut values = Vec::new();
            for r in rows {
                let tv = eval(&args[0], &env.with_row(Some(r)))?;
                if !matches!(tv.1, Value::Null) {
                    values.push(tv);
                }
            }
            match name {
                "COUNT" => int(values.len() as i64),
                "SUM" => {
                    let mut acc: Tv = (ty.clone(), Value::Null);
                    for v in values {
                        acc = if matches!(acc.1, Value::Null) {
                            v
                        } else {
                            arithmetic(acc, BinOp::Add, v)?
                        };
                    }
                    acc
                }
                _ => {
                    let mut best: Option<Tv> = None;
                    for v in values {
                        let better = match &best {
                            None => true,
                            Some(b) => {
                                let o = compare(&v, b)?;
                                if name == "MAX" {
                                    o == Some(Ordering::Greater)
                                } else {
                                    o == Some(Ordering::Less)
                                }
                            }
                        };
                        if better {
                            best = Some(v);
                        }
                    }
                    best.unwrap_or((ty, Value::Null))
                }
            }
        }
        _ if NOT_MODELLED_FUNCTIONS.contains(&name) => {
            return Err(SqlError::not_modelled(&format!(
                "the function {}",
                name.to_uppercase()
            )));
        }
        _ => {
            return Err(SqlError::new(
                195,
                &[&name.to_lowercase(), "built-in function name"],
            ));
        }
    })
}

/// Real built-in functions the lab does not model: the lab's own error, not 195 (which would claim
/// SQL Server has no such function). Names upper-cased, as calls reach `call`.
const NOT_MODELLED_FUNCTIONS: &[&str] = &[
    "ABS",
    "AVG",
    "CHARINDEX",
    "CONCAT",
    "DATEADD",
    "DATEDIFF",
    "DATENAME",
    "DATEPART",
    "DB_ID_FROM_NAME",
    "ERROR_MESSAGE",
    "ERROR_NUMBER",
    "FILE_ID",
    "FORMAT",
    "HAS_DBACCESS",
    "IIF",
    "LEFT",
    "NULLIF",
    "OBJECT_ID",
    "OBJECT_NAME",
    "REPLACE",
    "REPLICATE",
    "RIGHT",
    "ROUND",
    "ROW_NUMBER",
    "SCHEMA_NAME",
    "SCOPE_IDENTITY",
    "STR",
    "STRING_AGG",
    "SUBSTRING",
    "TRY_CAST",
    "TRY_CONVERT",
    "USER_NAME",
];

/// Whether an expression contains an aggregate (then the SELECT produces one row).
pub(crate) fn has_aggregate(e: &Expr) -> bool {
    match e {
        Expr::CountStar => true,
        Expr::Func(n, args) => {
            matches!(n.as_str(), "COUNT" | "MAX" | "MIN" | "SUM") || args.iter().any(has_aggregate)
        }
        Expr::Cast(i, _) | Expr::Neg(i) | Expr::Not(i) | Expr::IsNull(i, _) => has_aggregate(i),
        Expr::Bin(l, _, r) => has_aggregate(l) || has_aggregate(r),
        Expr::Case(arms, other) => {
            arms.iter()
                .any(|(c, v)| has_aggregate(c) || has_aggregate(v))
                || other.as_deref().is_some_and(has_aggregate)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_handles_wildcards_and_sets() {
        let cases = [
            ("mgc_20240301.trn", "mgc%.trn", true),
            ("mgc", "m_c", true),
            ("mgc", "m[a-z]c", false), // ranges are not needed; a set lists characters
            ("mgc", "m[g]c", true),
            ("mgccomp", "mgc", false),
        ];
        for (s, p, expected) in cases {
            assert_eq!(like(s, p), expected, "{s} LIKE {p}");
        }
    }

    #[test]
    fn comparisons_follow_sql_rules() {
        let s = |x: &str| (SqlType::NVarChar(10), Value::String(x.to_owned()));
        let cases = [
            (s("MGC"), s("mgc"), Some(Ordering::Equal)),
            (
                (SqlType::Int, Value::Int(57)),
                s("57"),
                Some(Ordering::Equal),
            ),
            (
                (SqlType::Int, Value::Null),
                (SqlType::Int, Value::Int(1)),
                None,
            ),
            (
                (
                    SqlType::Numeric {
                        precision: 25,
                        scale: 0,
                    },
                    Value::Numeric(10, 0),
                ),
                (SqlType::Int, Value::Int(9)),
                Some(Ordering::Greater),
            ),
        ];
        for (a, b, expected) in cases {
            assert_eq!(compare(&a, &b).unwrap(), expected, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn casts_convert_like_sql_server() {
        let cases = [
            (
                (SqlType::NVarChar(5), Value::String("42".into())),
                SqlType::Int,
                Value::Int(42),
            ),
            (
                (
                    SqlType::Numeric {
                        precision: 25,
                        scale: 0,
                    },
                    Value::Numeric(34_000_000_016_800_001, 0),
                ),
                SqlType::NVarChar(40),
                Value::String("34000000016800001".into()),
            ),
            (
                (SqlType::Int, Value::Int(1)),
                SqlType::Bit,
                Value::Bit(true),
            ),
        ];
        for (from, to, expected) in cases {
            assert_eq!(convert(&from, &to).unwrap().1, expected);
        }
        let e = convert(
            &(SqlType::NVarChar(3), Value::String("abc".into())),
            &SqlType::Int,
        )
        .unwrap_err();
        assert_eq!(
            (e.number, e.text.as_str()),
            (
                245,
                "Conversion failed when converting the nvarchar value 'abc' to data type int."
            )
        );
    }
}
