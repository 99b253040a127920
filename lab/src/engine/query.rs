//! SELECT evaluation over the virtual catalog: one table or a two-table INNER/LEFT JOIN on any
//! condition, WHERE, aggregates (one group), ORDER BY, TOP, `*` and aliases, and `SELECT @v = expr`.

use std::cmp::Ordering;

use pcfail_lab_tds::{Column, Event, SqlType, Value};

use super::catalog::{self, Table};
use super::errors::SqlError;
use super::exec::Ctx;
use super::expr::{self, Env, RelCol, Tv, eval, has_aggregate, truthy};
use super::model::Database;
use super::parser::{Select, SelectItem, TableRef};

/// DATABASEPROPERTYEX(db, prop) for the properties the reference lists (C); None is NULL.
pub(crate) fn database_property(d: &Database, prop: &str) -> Option<Tv> {
    let s = |x: &str| Some((SqlType::NVarChar(128), Value::String(x.to_owned())));
    match prop.to_lowercase().as_str() {
        "status" => s(d.state.desc()),
        "isinstandby" => Some((SqlType::Int, Value::Int(i64::from(d.standby)))),
        "recovery" => s(d.recovery.desc()),
        "updateability" => s(if d.standby { "READ_ONLY" } else { "READ_WRITE" }),
        "useraccess" => s(&d.user_access),
        // NULL while the database cannot be opened: the docs' way to tell "accepts connections".
        "collation" if d.is_restoring() => None,
        "collation" => s(catalog::COLLATION),
        "version" => Some((SqlType::Int, Value::Int(852))),
        _ => None,
    }
}

fn relation(table: Table, alias: &str) -> (Vec<RelCol>, Vec<Vec<Value>>) {
    let cols = table
        .cols
        .into_iter()
        .map(|c| RelCol {
            qual: alias.to_owned(),
            name: c.name,
            ty: c.ty,
            nullable: c.nullable,
        })
        .collect();
    (cols, table.rows)
}

fn alias_of(t: &TableRef) -> String {
    t.alias.clone().unwrap_or_else(|| t.name.name.clone())
}

pub(crate) fn select(ctx: &mut Ctx, s: &Select) -> Result<Option<u64>, Vec<SqlError>> {
    let one = |e: SqlError| vec![e];
    let current_db = ctx.current_db();
    // FROM: build the relation (columns qualified by alias) and its rows.
    let (cols, mut rows) = match &s.from {
        None => (Vec::new(), vec![Vec::new()]),
        Some(from) => {
            let left = catalog::lookup(ctx, &current_db, &from.name).map_err(one)?;
            let (mut cols, left_rows) = relation(left, &alias_of(from));
            match &s.join {
                None => (cols, left_rows),
                Some(join) => {
                    let right = catalog::lookup(ctx, &current_db, &join.table.name).map_err(one)?;
                    let (rcols, right_rows) = relation(right, &alias_of(&join.table));
                    let width = rcols.len();
                    cols.extend(rcols.into_iter().map(|mut c| {
                        c.nullable |= join.left;
                        c
                    }));
                    let env = ctx.env(&cols);
                    let mut joined = Vec::new();
                    for l in &left_rows {
                        let mut matched = false;
                        for r in &right_rows {
                            let row: Vec<Value> = l.iter().chain(r.iter()).cloned().collect();
                            if truthy(&eval(&join.on, &env.with_row(Some(&row))).map_err(one)?.1)
                                == Some(true)
                            {
                                matched = true;
                                joined.push(row);
                            }
                        }
                        if join.left && !matched {
                            joined.push(
                                l.iter()
                                    .cloned()
                                    .chain(std::iter::repeat_n(Value::Null, width))
                                    .collect(),
                            );
                        }
                    }
                    (cols, joined)
                }
            }
        }
    };
    let env = ctx.env(&cols);
    if let Some(filter) = &s.filter {
        let mut kept = Vec::new();
        for row in rows {
            if truthy(&eval(filter, &env.with_row(Some(&row))).map_err(one)?.1) == Some(true) {
                kept.push(row);
            }
        }
        rows = kept;
    }
    if !s.order.is_empty() {
        let mut keyed = Vec::new();
        for row in rows {
            let mut keys = Vec::new();
            for (e, _) in &s.order {
                keys.push(order_key(e, s, &env, &row).map_err(one)?);
            }
            keyed.push((keys, row));
        }
        let mut failure = None;
        keyed.sort_by(|(a, _), (b, _)| {
            for (i, (_, desc)) in s.order.iter().enumerate() {
                // NULLs sort first ascending, as in SQL Server.
                let o = match (&a[i].1, &b[i].1) {
                    (Value::Null, Value::Null) => Ordering::Equal,
                    (Value::Null, _) => Ordering::Less,
                    (_, Value::Null) => Ordering::Greater,
                    _ => match expr::compare(&a[i], &b[i]) {
                        Ok(o) => o.unwrap_or(Ordering::Equal),
                        Err(e) => {
                            failure.get_or_insert(e);
                            Ordering::Equal
                        }
                    },
                };
                let o = if *desc { o.reverse() } else { o };
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        });
        if let Some(e) = failure {
            return Err(vec![e]);
        }
        rows = keyed.into_iter().map(|(_, r)| r).collect();
    }
    let aggregate = s.items.iter().any(|i| match i {
        SelectItem::Expr { expr, .. } | SelectItem::Assign { expr, .. } => has_aggregate(expr),
        SelectItem::Star(_) => false,
    });
    // Output rows: one per input row, or one for the whole (single) group.
    let groups: Vec<Group> = if aggregate {
        vec![(rows.first().cloned(), Some(rows.as_slice()))]
    } else {
        rows.iter().map(|r| (Some(r.clone()), None)).collect()
    };
    let top = match &s.top {
        Some(e) => {
            let v = expr::convert(&eval(e, &env).map_err(one)?, &SqlType::BigInt)
                .map_err(one)?
                .1;
            match v {
                Value::Int(n) if n >= 0 => Some(n as usize),
                _ => None,
            }
        }
        None => None,
    };
    let assigns = s
        .items
        .iter()
        .any(|i| matches!(i, SelectItem::Assign { .. }));
    if assigns {
        // SELECT @v = expr: assigns from each row in turn (the last wins); returns no result set.
        let mut pending: Vec<(String, Value)> = Vec::new();
        for (row, group) in groups.iter().take(top.unwrap_or(usize::MAX)) {
            let e = Env {
                group: *group,
                ..env.with_row(row.as_deref())
            };
            for item in &s.items {
                match item {
                    SelectItem::Assign { var, expr } => pending.push((var.clone(), eval(expr, &e).map_err(one)?.1)),
                    _ => return Err(vec![SqlError { number: 141, class: 15, state: 1, text: "A SELECT statement that assigns a value to a variable must not be combined with data-retrieval operations.".to_owned(), procedure: String::new() }]),
                }
            }
        }
        for (var, value) in pending {
            ctx.vars.set(&var, value).map_err(one)?;
        }
        return Ok(Some(groups.len() as u64));
    }
    // Column metadata: evaluate each item against a NULL row so the type never depends on data.
    let mut columns: Vec<Column> = Vec::new();
    let mut plan: Vec<OutCol> = Vec::new();
    for item in &s.items {
        match item {
            SelectItem::Star(q) => {
                let mut any = false;
                for (i, c) in cols.iter().enumerate() {
                    if q.as_ref().is_none_or(|q| c.qual.eq_ignore_ascii_case(q)) {
                        any = true;
                        columns.push(Column {
                            name: c.name.clone(),
                            ty: c.ty.clone(),
                            nullable: c.nullable,
                        });
                        plan.push(OutCol::Index(i));
                    }
                }
                if !any {
                    let q = q.clone().unwrap_or_default();
                    return Err(vec![SqlError {
                        number: 4104,
                        class: 16,
                        state: 1,
                        text: format!("The multi-part identifier \"{q}\" could not be bound."),
                        procedure: String::new(),
                    }]);
                }
            }
            SelectItem::Expr { expr, alias } => {
                let probe = Env {
                    group: Some(&[]),
                    ..env.with_row(None)
                };
                let ty = eval(expr, &probe).map_err(one)?.0;
                let name = alias.clone().unwrap_or_else(|| match expr {
                    super::parser::Expr::Col(_, n) => cols
                        .iter()
                        .find(|c| c.name.eq_ignore_ascii_case(n))
                        .map_or(n.clone(), |c| c.name.clone()),
                    _ => String::new(),
                });
                let nullable = match expr {
                    super::parser::Expr::Col(_, n) => cols
                        .iter()
                        .find(|c| c.name.eq_ignore_ascii_case(n))
                        .is_none_or(|c| c.nullable),
                    _ => true,
                };
                columns.push(Column {
                    name,
                    ty: ty.clone(),
                    nullable,
                });
                plan.push(OutCol::Expr(expr.clone(), ty));
            }
            SelectItem::Assign { .. } => unreachable!("handled above"),
        }
    }
    let mut out_rows = Vec::new();
    for (row, group) in groups.iter().take(top.unwrap_or(usize::MAX)) {
        let e = Env {
            group: *group,
            ..env.with_row(row.as_deref())
        };
        let mut out = Vec::with_capacity(plan.len());
        for p in &plan {
            out.push(match p {
                OutCol::Index(i) => row.as_ref().map_or(Value::Null, |r| r[*i].clone()),
                OutCol::Expr(ex, ty) => {
                    let tv = eval(ex, &e).map_err(one)?;
                    // Keep the declared column type even when a branch produced another one.
                    if &tv.0 == ty {
                        tv.1
                    } else {
                        expr::convert(&tv, ty).map_err(one)?.1
                    }
                }
            });
        }
        out_rows.push(out);
    }
    let n = out_rows.len() as u64;
    ctx.out.push(Event::Rows {
        columns,
        rows: out_rows,
    });
    Ok(Some(n))
}

/// One output row's source: the input row (None for an empty aggregate) and, when aggregating, the group.
type Group<'a> = (Option<Vec<Value>>, Option<&'a [Vec<Value>]>);

enum OutCol {
    Index(usize),
    Expr(super::parser::Expr, SqlType),
}

/// ORDER BY may name a select-list alias or an expression over the source columns.
fn order_key(
    e: &super::parser::Expr,
    s: &Select,
    env: &Env,
    row: &[Value],
) -> Result<Tv, SqlError> {
    if let super::parser::Expr::Col(None, name) = e {
        for item in &s.items {
            if let SelectItem::Expr {
                expr,
                alias: Some(a),
            } = item
                && a.eq_ignore_ascii_case(name)
            {
                return eval(expr, &env.with_row(Some(row)));
            }
        }
    }
    eval(e, &env.with_row(Some(row)))
}
