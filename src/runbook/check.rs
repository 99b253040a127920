//! Value checks for runbook fields: SQL Server identifiers, host names, durations, variable names.
//!
//! Each check returns the sentence to report, so the loader attaches the place. These checks make a
//! runbook fail early and clearly; they are not the injection defence (that is `quote`, which quotes
//! every value whether or not it passed here).

use std::net::IpAddr;
use std::time::Duration;

/// T-SQL reserved keywords (Microsoft's "Reserved Keywords (Transact-SQL)" list): a regular identifier
/// must not be one of them.
const RESERVED: &[&str] = &[
    "ADD",
    "ALL",
    "ALTER",
    "AND",
    "ANY",
    "AS",
    "ASC",
    "AUTHORIZATION",
    "BACKUP",
    "BEGIN",
    "BETWEEN",
    "BREAK",
    "BROWSE",
    "BULK",
    "BY",
    "CASCADE",
    "CASE",
    "CHECK",
    "CHECKPOINT",
    "CLOSE",
    "CLUSTERED",
    "COALESCE",
    "COLLATE",
    "COLUMN",
    "COMMIT",
    "COMPUTE",
    "CONSTRAINT",
    "CONTAINS",
    "CONTAINSTABLE",
    "CONTINUE",
    "CONVERT",
    "CREATE",
    "CROSS",
    "CURRENT",
    "CURRENT_DATE",
    "CURRENT_TIME",
    "CURRENT_TIMESTAMP",
    "CURRENT_USER",
    "CURSOR",
    "DATABASE",
    "DBCC",
    "DEALLOCATE",
    "DECLARE",
    "DEFAULT",
    "DELETE",
    "DENY",
    "DESC",
    "DISK",
    "DISTINCT",
    "DISTRIBUTED",
    "DOUBLE",
    "DROP",
    "DUMP",
    "ELSE",
    "END",
    "ERRLVL",
    "ESCAPE",
    "EXCEPT",
    "EXEC",
    "EXECUTE",
    "EXISTS",
    "EXIT",
    "EXTERNAL",
    "FETCH",
    "FILE",
    "FILLFACTOR",
    "FOR",
    "FOREIGN",
    "FREETEXT",
    "FREETEXTTABLE",
    "FROM",
    "FULL",
    "FUNCTION",
    "GOTO",
    "GRANT",
    "GROUP",
    "HAVING",
    "HOLDLOCK",
    "IDENTITY",
    "IDENTITY_INSERT",
    "IDENTITYCOL",
    "IF",
    "IN",
    "INDEX",
    "INNER",
    "INSERT",
    "INTERSECT",
    "INTO",
    "IS",
    "JOIN",
    "KEY",
    "KILL",
    "LEFT",
    "LIKE",
    "LINENO",
    "LOAD",
    "MERGE",
    "NATIONAL",
    "NOCHECK",
    "NONCLUSTERED",
    "NOT",
    "NULL",
    "NULLIF",
    "OF",
    "OFF",
    "OFFSETS",
    "ON",
    "OPEN",
    "OPENDATASOURCE",
    "OPENQUERY",
    "OPENROWSET",
    "OPENXML",
    "OPTION",
    "OR",
    "ORDER",
    "OUTER",
    "OVER",
    "PERCENT",
    "PIVOT",
    "PLAN",
    "PRECISION",
    "PRIMARY",
    "PRINT",
    "PROC",
    "PROCEDURE",
    "PUBLIC",
    "RAISERROR",
    "READ",
    "READTEXT",
    "RECONFIGURE",
    "REFERENCES",
    "REPLICATION",
    "RESTORE",
    "RESTRICT",
    "RETURN",
    "REVERT",
    "REVOKE",
    "RIGHT",
    "ROLLBACK",
    "ROWCOUNT",
    "ROWGUIDCOL",
    "RULE",
    "SAVE",
    "SCHEMA",
    "SECURITYAUDIT",
    "SELECT",
    "SEMANTICKEYPHRASETABLE",
    "SEMANTICSIMILARITYDETAILSTABLE",
    "SEMANTICSIMILARITYTABLE",
    "SESSION_USER",
    "SET",
    "SETUSER",
    "SHUTDOWN",
    "SOME",
    "STATISTICS",
    "SYSTEM_USER",
    "TABLE",
    "TABLESAMPLE",
    "TEXTSIZE",
    "THEN",
    "TO",
    "TOP",
    "TRAN",
    "TRANSACTION",
    "TRIGGER",
    "TRUNCATE",
    "TRY_CONVERT",
    "TSEQUAL",
    "UNION",
    "UNIQUE",
    "UNPIVOT",
    "UPDATE",
    "UPDATETEXT",
    "USE",
    "USER",
    "VALUES",
    "VARYING",
    "VIEW",
    "WAITFOR",
    "WHEN",
    "WHERE",
    "WHILE",
    "WITH",
    "WITHIN GROUP",
    "WRITETEXT",
];

/// A database name that is a SQL Server *regular* identifier: first a letter or `_`, then letters,
/// decimal digits, `@`, `$`, `#`, `_`; not a reserved word; at most 128 characters.
///
/// The rules also allow a leading `@` or `#`, but those mean a variable or a temporary object, never a
/// database, so they are refused here. "Letter" is taken as Unicode alphabetic, which is what the
/// documentation's "letters as defined by the Unicode Standard 3.2" amounts to for real names.
pub(crate) fn sql_identifier(name: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "`{name}` is not a valid SQL Server identifier: {why}"
        ))
    };
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return bad("it is empty");
    };
    if name.encode_utf16().count() > 128 {
        return bad("it is longer than 128 characters");
    }
    if !(first.is_alphabetic() || first == '_') {
        return bad("it must start with a letter or `_`");
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_alphanumeric() || matches!(c, '_' | '@' | '$' | '#')))
    {
        let shown = if c.is_control() || c == ' ' {
            format!("{c:?}")
        } else {
            format!("`{c}`")
        };
        return bad(&format!(
            "{shown} is not allowed (use letters, digits, `_`, `@`, `$`, `#`)"
        ));
    }
    if RESERVED.contains(&name.to_ascii_uppercase().as_str()) {
        return bad("it is a reserved word");
    }
    Ok(())
}

/// A host: an IP address, or a DNS name of letter-digit-hyphen labels (1-63 characters, no leading or
/// trailing hyphen, 253 in all).
pub(crate) fn host(text: &str) -> Result<(), String> {
    let bad = || Err(format!("`{text}` is not a valid host name or IP address"));
    if text.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if text.is_empty() || text.len() > 253 {
        return bad();
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if text.trim_end_matches('.').split('.').all(label_ok) {
        Ok(())
    } else {
        bad()
    }
}

/// A fully qualified domain name: a valid host name with at least two labels (no bare IP address).
pub(crate) fn fqdn(text: &str) -> Result<(), String> {
    let not_fqdn = || Err(format!("`{text}` is not a fully qualified domain name"));
    if text.parse::<IpAddr>().is_ok()
        || host(text).is_err()
        || !text.trim_end_matches('.').contains('.')
    {
        return not_fqdn();
    }
    // A DNS name whose last label is all digits would read as an IPv4 address to many tools.
    if text
        .trim_end_matches('.')
        .rsplit('.')
        .next()
        .is_some_and(|l| l.chars().all(|c| c.is_ascii_digit()))
    {
        return not_fqdn();
    }
    Ok(())
}

/// A SQL Server named-instance name: 1-16 characters, letters, digits, `_`, `$`, starting with a
/// letter or `_` (SQL Server setup's rules).
pub(crate) fn instance_name(text: &str) -> Result<(), String> {
    let ok = (1..=16).contains(&text.chars().count())
        && text
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
        && text
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '$');
    if ok {
        Ok(())
    } else {
        Err(format!("`{text}` is not a valid SQL Server instance name"))
    }
}

/// An environment variable name as shells accept it: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn env_name(text: &str) -> Result<(), String> {
    let ok = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!("`{text}` is not a valid environment variable name"))
    }
}

/// Free text that ends up inside a quoted literal (paths, job names, messages): any characters but
/// control characters, which no real path or name has and which would garble a one-line rendering.
pub(crate) fn plain_text(what: &str, text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    match text.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!(
            "{what} must not contain control characters (found {c:?})"
        )),
        None => Ok(()),
    }
}

/// A `sysname` value used as a literal (job and schedule names): plain text, at most 128 characters.
pub(crate) fn sysname(what: &str, text: &str) -> Result<(), String> {
    plain_text(what, text)?;
    if text.encode_utf16().count() > 128 {
        return Err(format!("{what} is longer than 128 characters"));
    }
    Ok(())
}

/// A duration such as `90s`, `15m`, `1h30m` or `500ms`: one or more number-unit pairs.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        Err(format!(
            "`{text}` is not a duration; write a number and a unit, e.g. `90s`, `15m`, `1h30m`"
        ))
    };
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return bad();
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return bad();
        }
        let Ok(n) = rest[..digits].parse::<u64>() else {
            return bad();
        };
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            _ => return bad(),
        };
        total = total.saturating_add(part);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_identifiers_follow_regular_identifier_rules() {
        let cases: &[(&str, Result<(), &str>)] = &[
            ("mgc", Ok(())),
            ("mgccomp", Ok(())),
            ("_x1$#@", Ok(())),
            ("Müller", Ok(())),
            (
                "",
                Err("`` is not a valid SQL Server identifier: it is empty"),
            ),
            (
                "1mgc",
                Err(
                    "`1mgc` is not a valid SQL Server identifier: it must start with a letter or `_`",
                ),
            ),
            (
                "#tmp",
                Err(
                    "`#tmp` is not a valid SQL Server identifier: it must start with a letter or `_`",
                ),
            ),
            (
                "mgc]; DROP DATABASE x; --",
                Err(
                    "`mgc]; DROP DATABASE x; --` is not a valid SQL Server identifier: `]` is not allowed (use letters, digits, `_`, `@`, `$`, `#`)",
                ),
            ),
            (
                "a b",
                Err(
                    "`a b` is not a valid SQL Server identifier: ' ' is not allowed (use letters, digits, `_`, `@`, `$`, `#`)",
                ),
            ),
            (
                "a\nb",
                Err(
                    "`a\nb` is not a valid SQL Server identifier: '\\n' is not allowed (use letters, digits, `_`, `@`, `$`, `#`)",
                ),
            ),
            (
                "drop",
                Err("`drop` is not a valid SQL Server identifier: it is a reserved word"),
            ),
        ];
        for (name, expected) in cases {
            assert_eq!(
                sql_identifier(name),
                expected.map_err(str::to_owned),
                "name {name:?}"
            );
        }
        assert!(sql_identifier(&"a".repeat(128)).is_ok());
        assert!(sql_identifier(&"a".repeat(129)).is_err());
    }

    #[test]
    fn hosts_are_dns_names_or_ip_addresses() {
        let cases = [
            ("dal-sql-001.litwareinc.com", true),
            ("localhost", true),
            ("127.0.0.1", true),
            ("::1", true),
            ("a;b", false),
            ("-bad.example.com", false),
            ("bad-.example.com", false),
            ("a..b", false),
            ("", false),
            ("host name", false),
            ("x'y", false),
        ];
        for (text, ok) in cases {
            assert_eq!(host(text).is_ok(), ok, "host {text:?}");
        }
    }

    #[test]
    fn fqdns_need_a_dot_and_are_not_addresses() {
        let cases = [
            ("atl-cs-001.litwareinc.com", true),
            ("atl-cs-001", false),
            ("10.0.0.1", false),
            ("a;b.com", false),
        ];
        for (text, ok) in cases {
            assert_eq!(fqdn(text).is_ok(), ok, "fqdn {text:?}");
        }
    }

    #[test]
    fn durations_parse_unit_pairs() {
        let cases = [
            ("90s", Some(90)),
            ("15m", Some(900)),
            ("1h30m", Some(5400)),
            ("2h", Some(7200)),
            ("", None),
            ("15", None),
            ("m", None),
            ("15 minutes", None),
            ("-5s", None),
        ];
        for (text, secs) in cases {
            assert_eq!(
                duration(text).ok().map(|d| d.as_secs()),
                secs,
                "duration {text:?}"
            );
        }
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn names_of_instances_and_variables_are_checked() {
        let instances = [
            ("PCHAT", true),
            ("SQL$1", true),
            ("", false),
            ("A;B", false),
            ("TOOLONGINSTANCE17", false),
        ];
        for (text, ok) in instances {
            assert_eq!(instance_name(text).is_ok(), ok, "instance {text:?}");
        }
        let envs = [
            ("PCFAIL_SQL_PASSWORD", true),
            ("_X", true),
            ("1X", false),
            ("A-B", false),
            ("", false),
        ];
        for (text, ok) in envs {
            assert_eq!(env_name(text).is_ok(), ok, "env {text:?}");
        }
    }

    #[test]
    fn plain_text_refuses_control_characters() {
        let cases = [
            ("\\\\dal\\share", Ok(())),
            ("", Err("path must not be empty")),
            (
                "a\nb",
                Err("path must not contain control characters (found '\\n')"),
            ),
            (
                "a\0b",
                Err("path must not contain control characters (found '\\0')"),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                plain_text("path", text),
                expected.map_err(str::to_owned),
                "text {text:?}"
            );
        }
    }
}
