//! What SQL Server finds when it compiles a batch, before any statement runs: the syntax (the parser)
//! and the variables. A variable used before its DECLARE (137 "Must declare the scalar variable") or
//! declared twice (134) is a compile error, so nothing in the batch runs, not even the statements
//! before it. Run-time errors, and which of them end the batch, are exec.rs's business.

use super::errors::SqlError;
use super::parser::{self, AlterAction, Expr, SelectItem, Statement};

/// Parses and checks a batch. `declared` are the variables that exist before it (sp_executesql's
/// parameters).
pub(crate) fn compile(sql: &str, declared: &[String]) -> Result<Vec<Statement>, SqlError> {
    let stmts = parser::parse_batch(sql)?;
    check(&stmts, declared)?;
    Ok(stmts)
}

/// Walks the batch in order, as SQL Server's compiler reads it: a variable is known from its DECLARE
/// onwards, to the end of the batch.
fn check(stmts: &[Statement], declared: &[String]) -> Result<(), SqlError> {
    let mut known: Vec<String> = declared.to_vec();
    for stmt in stmts {
        let mut uses: Vec<&Expr> = Vec::new();
        let mut assigned: Vec<&str> = Vec::new();
        match stmt {
            Statement::Declare(vars) => {
                for (name, _, init) in vars {
                    if let Some(e) = init {
                        need(e, &known)?;
                    }
                    if is_known(name, &known) {
                        return Err(SqlError::new(134, &[name]));
                    }
                    known.push(name.clone());
                }
                continue;
            }
            Statement::SetVar(name, e) => {
                assigned.push(name);
                uses.push(e);
            }
            Statement::Select(s) => {
                uses.extend(s.top.iter());
                for item in &s.items {
                    match item {
                        SelectItem::Star(_) => {}
                        SelectItem::Expr { expr, .. } => uses.push(expr),
                        SelectItem::Assign { var, expr } => {
                            assigned.push(var);
                            uses.push(expr);
                        }
                    }
                }
                uses.extend(s.join.iter().map(|j| &j.on));
                uses.extend(s.filter.iter());
                uses.extend(s.order.iter().map(|(e, _)| e));
            }
            Statement::Exec(e) => {
                if let Some(ret) = &e.ret {
                    assigned.push(ret);
                }
                uses.extend(e.args.iter().filter_map(|a| a.value.as_ref()));
            }
            Statement::Print(e) | Statement::Kill(e) => uses.push(e),
            Statement::Backup(b) => {
                uses.push(&b.db);
                uses.extend(b.disks.iter());
                uses.extend(
                    b.options
                        .iter()
                        .flat_map(|o| o.value.iter().chain(&o.move_to)),
                );
            }
            Statement::Restore(r) => {
                uses.extend(r.db.iter());
                uses.extend(r.disks.iter());
                uses.extend(
                    r.options
                        .iter()
                        .flat_map(|o| o.value.iter().chain(&o.move_to)),
                );
            }
            Statement::AlterDatabase { action, .. } => match action {
                AlterAction::Partner(e) | AlterAction::Timeout(e) => uses.push(e),
                AlterAction::Witness(Some(e)) => uses.push(e),
                _ => {}
            },
            Statement::SetOption(..)
            | Statement::Use(_)
            | Statement::CreateEndpoint(_)
            | Statement::AlterEndpointState { .. }
            | Statement::DropEndpoint(_)
            | Statement::CreateLogin(_)
            | Statement::GrantConnect { .. }
            | Statement::BeginTran
            | Statement::Commit
            | Statement::Rollback => {}
        }
        for name in assigned {
            if !is_known(name, &known) {
                return Err(SqlError::new(137, &[name]));
            }
        }
        for e in uses {
            need(e, &known)?;
        }
    }
    Ok(())
}

fn is_known(name: &str, known: &[String]) -> bool {
    known.iter().any(|k| k.eq_ignore_ascii_case(name))
}

/// 137 for the first variable `e` reads that is not declared (`@@` functions are not variables).
fn need(e: &Expr, known: &[String]) -> Result<(), SqlError> {
    match e {
        Expr::Var(name) if !name.starts_with("@@") && !is_known(name, known) => {
            Err(SqlError::new(137, &[name]))
        }
        Expr::Var(_) | Expr::Lit(..) | Expr::Null | Expr::Col(..) | Expr::CountStar => Ok(()),
        Expr::Func(_, args) => args.iter().try_for_each(|a| need(a, known)),
        Expr::Cast(x, _) | Expr::Neg(x) | Expr::Not(x) | Expr::IsNull(x, _) => need(x, known),
        Expr::Bin(l, _, r) | Expr::Like(l, r, _) => {
            need(l, known)?;
            need(r, known)
        }
        Expr::In(x, list, _) => {
            need(x, known)?;
            list.iter().try_for_each(|a| need(a, known))
        }
        Expr::Case(arms, default) => {
            for (when, then) in arms {
                need(when, known)?;
                need(then, known)?;
            }
            default.iter().try_for_each(|d| need(d, known))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(sql: &str, declared: &[&str]) -> Option<u32> {
        let declared: Vec<String> = declared.iter().map(|d| (*d).to_owned()).collect();
        compile(sql, &declared).err().map(|e| e.number)
    }

    #[test]
    fn variables_must_be_declared_before_use_and_only_once() {
        let cases: [(&str, &[&str], Option<u32>); 9] = [
            ("DECLARE @a int = 1; SELECT @a", &[], None),
            ("SELECT 1; SELECT @a", &[], Some(137)),
            ("SELECT @a; DECLARE @a int", &[], Some(137)),
            ("DECLARE @a int = @a", &[], Some(137)),
            ("DECLARE @a int; DECLARE @A int", &[], Some(134)),
            ("SET @x = 1", &[], Some(137)),
            ("SELECT @@SPID, @@TRANCOUNT", &[], None),
            (
                "SELECT name FROM sys.databases WHERE name = @P1",
                &["@P1"],
                None,
            ),
            ("RESTORE LOG @db FROM DISK = @path", &["@db"], Some(137)),
        ];
        for (sql, declared, expected) in cases {
            assert_eq!(number(sql, declared), expected, "{sql}");
        }
    }
}
