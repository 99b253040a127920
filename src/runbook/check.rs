//! Value checks for runbook fields: the characters any runbook text may hold ([`text`]), SQL Server
//! identifiers, host names, bounded durations, calendar dates, variable names.
//!
//! Each check returns the sentence to report, so the loader attaches the place. These checks make a
//! runbook fail early and clearly; they are not the injection defence (that is `quote`, which quotes
//! every value whether or not it passed here).

use std::net::IpAddr;
use std::ops::RangeInclusive;
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

/// An instance's `host`: a host name or IP address. Written as connection strings and SSMS write
/// a server (`HOST\\INSTANCE`, `HOST,PORT`, `tcp:HOST`), it gets the keys to write instead.
pub(crate) fn instance_host(text: &str) -> Result<(), String> {
    let Err(bad) = host(text) else {
        return Ok(());
    };
    let bare = text.strip_prefix("tcp:").unwrap_or(text);
    let suggestion = if let Some((name, instance)) = bare.split_once('\\') {
        (host(name).is_ok() && instance_name(instance).is_ok()).then(|| {
            format!(
                "write the instance on its own: `host = \"{name}\"` and `instance = \"{instance}\"`"
            )
        })
    } else if let Some((name, port)) = bare.split_once(',') {
        (host(name).is_ok() && port.trim().parse::<u16>().is_ok_and(|p| p > 0)).then(|| {
            format!(
                "write the port on its own: `host = \"{name}\"` and `port = {}`",
                port.trim()
            )
        })
    } else {
        (bare != text && host(bare).is_ok()).then(|| format!("write `host = \"{bare}\"`"))
    };
    Err(match suggestion {
        Some(s) => format!("{bad}; {s}"),
        None => bad,
    })
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

/// A Windows account written `DOMAIN\\name` (explicit credentials for NTLM).
pub(crate) fn windows_account(text: &str) -> Result<(), String> {
    let ok = text.split_once('\\').is_some_and(|(domain, name)| {
        let part = |p: &str| {
            !p.is_empty()
                && p.len() <= 104
                && !p
                    .chars()
                    .any(|c| c.is_control() || "\\/:*?\"<>|@[]".contains(c))
        };
        part(domain) && part(name)
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{text}` is not a Windows account: write it `DOMAIN\\name` (e.g. `LITWAREINC\\pcfail`)"
        ))
    }
}

/// A CA certificate file as tiberius reads it: PEM (`.pem`, `.crt`) or DER (`.der`).
pub(crate) fn ca_file(text: &str) -> Result<(), String> {
    let ext = std::path::Path::new(text)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("pem" | "crt" | "der") => Ok(()),
        _ => Err(format!(
            "`ca_file` `{text}` must end in `.pem` or `.crt` (PEM) or `.der` (DER)"
        )),
    }
}

/// The CA file on this machine: there, readable, and holding a certificate in the form its name
/// says. Checked by `validate` rather than left to the TLS handshake, which reports it per
/// instance as a server that "does not answer". `written` is the path as the runbook has it.
pub(crate) fn ca_file_contents(written: &str, path: &std::path::Path) -> Result<(), String> {
    // A CA certificate is a few KiB; anything much larger (or not a file) is not one, and is not
    // read whole.
    const LARGEST: u64 = 1 << 20;
    let relative = if std::path::Path::new(written).is_absolute() {
        ""
    } else {
        " (a relative path is relative to the runbook's folder)"
    };
    let metadata = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("`ca_file` `{written}` does not exist{relative}"),
        std::io::ErrorKind::PermissionDenied => {
            format!("`ca_file` `{written}` cannot be read: permission denied")
        }
        _ => format!("`ca_file` `{written}` cannot be read: {e}"),
    })?;
    if !metadata.is_file() || metadata.len() > LARGEST {
        return Err(format!(
            "`ca_file` `{written}` is not a certificate file{relative}"
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => {
            format!("`ca_file` `{written}` cannot be read: permission denied")
        }
        _ => format!("`ca_file` `{written}` cannot be read: {e}"),
    })?;
    let der = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("der"));
    // DER is an ASN.1 SEQUENCE (0x30); PEM has its armour line.
    let holds_one = if der {
        bytes.first() == Some(&0x30)
    } else {
        bytes
            .windows(27)
            .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    };
    if holds_one {
        Ok(())
    } else if der {
        Err(format!("`ca_file` `{written}` holds no DER certificate"))
    } else {
        Err(format!(
            "`ca_file` `{written}` holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)"
        ))
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

/// The names of the C0 control characters, U+0000..U+001F, as Unicode's name aliases give them.
const C0_NAMES: [&str; 32] = [
    "NULL",
    "START OF HEADING",
    "START OF TEXT",
    "END OF TEXT",
    "END OF TRANSMISSION",
    "ENQUIRY",
    "ACKNOWLEDGE",
    "ALERT",
    "BACKSPACE",
    "CHARACTER TABULATION",
    "LINE FEED",
    "LINE TABULATION",
    "FORM FEED",
    "CARRIAGE RETURN",
    "SHIFT OUT",
    "SHIFT IN",
    "DATA LINK ESCAPE",
    "DEVICE CONTROL ONE",
    "DEVICE CONTROL TWO",
    "DEVICE CONTROL THREE",
    "DEVICE CONTROL FOUR",
    "NEGATIVE ACKNOWLEDGE",
    "SYNCHRONOUS IDLE",
    "END OF TRANSMISSION BLOCK",
    "CANCEL",
    "END OF MEDIUM",
    "SUBSTITUTE",
    "ESCAPE",
    "INFORMATION SEPARATOR FOUR",
    "INFORMATION SEPARATOR THREE",
    "INFORMATION SEPARATOR TWO",
    "INFORMATION SEPARATOR ONE",
];

/// What a character that runbook text must not contain is called in messages, or None if the
/// character is allowed.
///
/// Three kinds are refused, because each makes what the operator reads in the runbook, the plan or a
/// terminal differ from what pcfail sends to a server:
/// - control characters (C0, DEL, C1): line breaks and escapes garble a one-line rendering, and a
///   terminal obeys escape sequences;
/// - bidirectional embeddings, overrides, isolates and marks (the "Trojan Source" characters,
///   CVE-2021-42574): they reorder what is displayed without changing what is stored;
/// - invisible characters (zero-width spaces and joiners, the word joiner and invisible operators,
///   the byte-order mark, soft hyphen, line and paragraph separators, interlinear annotations and tag
///   characters): two values that look the same are not.
///
/// No field of a runbook, not even the `sql` and `cmdlet` statements, needs any of them: a statement
/// is one line, and a name or path in another script is written with ordinary letters.
fn refused(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{0}'..='\u{1f}' => C0_NAMES[c as usize],
        '\u{7f}' => "DELETE",
        '\u{80}'..='\u{9f}' => "a control character",
        '\u{ad}' => "SOFT HYPHEN",
        '\u{61c}' => "ARABIC LETTER MARK",
        '\u{180e}' => "MONGOLIAN VOWEL SEPARATOR",
        '\u{200b}' => "ZERO WIDTH SPACE",
        '\u{200c}' => "ZERO WIDTH NON-JOINER",
        '\u{200d}' => "ZERO WIDTH JOINER",
        '\u{200e}' => "LEFT-TO-RIGHT MARK",
        '\u{200f}' => "RIGHT-TO-LEFT MARK",
        '\u{2028}' => "LINE SEPARATOR",
        '\u{2029}' => "PARAGRAPH SEPARATOR",
        '\u{202a}' => "LEFT-TO-RIGHT EMBEDDING",
        '\u{202b}' => "RIGHT-TO-LEFT EMBEDDING",
        '\u{202c}' => "POP DIRECTIONAL FORMATTING",
        '\u{202d}' => "LEFT-TO-RIGHT OVERRIDE",
        '\u{202e}' => "RIGHT-TO-LEFT OVERRIDE",
        '\u{2060}' => "WORD JOINER",
        '\u{2061}' => "FUNCTION APPLICATION",
        '\u{2062}' => "INVISIBLE TIMES",
        '\u{2063}' => "INVISIBLE SEPARATOR",
        '\u{2064}' => "INVISIBLE PLUS",
        '\u{2066}' => "LEFT-TO-RIGHT ISOLATE",
        '\u{2067}' => "RIGHT-TO-LEFT ISOLATE",
        '\u{2068}' => "FIRST STRONG ISOLATE",
        '\u{2069}' => "POP DIRECTIONAL ISOLATE",
        '\u{206a}'..='\u{206f}' => "a deprecated format character",
        '\u{feff}' => "ZERO WIDTH NO-BREAK SPACE",
        '\u{fff9}'..='\u{fffb}' => "an interlinear annotation character",
        '\u{e0001}' | '\u{e0020}'..='\u{e007f}' => "a tag character",
        _ => return None,
    })
}

/// Every piece of text read from a runbook, values and keys alike, passes here (the reader calls it
/// for each string it hands out): `what` names the value in the message, e.g. "`description`".
///
/// This is the one place that decides which characters runbook text may hold; see [`refused`].
pub(crate) fn text(what: &str, text: &str) -> Result<(), String> {
    match text.chars().find_map(|c| refused(c).map(|name| (c, name))) {
        Some((c, name)) => Err(format!(
            "{what} contains U+{:04X} ({name}), which can make the text read differently from what runs",
            u32::from(c)
        )),
        None => Ok(()),
    }
}

/// Free text that ends up inside a quoted literal (paths, messages, identities): anything [`text`]
/// lets through (the reader has checked that), but not nothing.
pub(crate) fn non_empty(what: &str, text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    Ok(())
}

/// A `sysname` value used as a literal (job and schedule names): not empty, at most 128 characters.
pub(crate) fn sysname(what: &str, text: &str) -> Result<(), String> {
    non_empty(what, text)?;
    if text.encode_utf16().count() > 128 {
        return Err(format!("{what} is longer than 128 characters"));
    }
    Ok(())
}

/// Why a duration could not be read.
#[derive(Debug, PartialEq, Eq)]
enum DurationError {
    /// Not number-unit pairs at all.
    Malformed,
    /// Well formed, but more seconds than a `Duration` holds; every bound refuses it.
    TooLong,
}

/// A duration such as `90s`, `15m`, `1h30m` or `500ms`: one or more number-unit pairs.
fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    use DurationError::{Malformed, TooLong};
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(Malformed);
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(Malformed);
        }
        // Only ASCII digits are left, so the one way to fail is a number too large for a u64.
        let n: u64 = rest[..digits].parse().map_err(|_| TooLong)?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit_len] {
            "ms" => Some(Duration::from_millis(n)),
            "s" => Some(Duration::from_secs(n)),
            "m" => n.checked_mul(60).map(Duration::from_secs),
            "h" => n.checked_mul(3600).map(Duration::from_secs),
            _ => return Err(Malformed),
        };
        total = part
            .and_then(|part| total.checked_add(part))
            .ok_or(TooLong)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// A duration that `what` (e.g. "`timeout`") may take: more than zero and at most `max`. A number
/// too large for any clock gets the same sentence as one merely above `max`: both are too long.
pub(crate) fn duration(what: &str, text: &str, max: Duration) -> Result<Duration, String> {
    let out_of_range = || {
        format!(
            "{what} must be more than 0s and at most {}",
            crate::render::duration(max)
        )
    };
    match parse_duration(text) {
        Ok(d) if !d.is_zero() && d <= max => Ok(d),
        Ok(_) | Err(DurationError::TooLong) => Err(out_of_range()),
        Err(DurationError::Malformed) => Err(format!(
            "`{text}` is not a duration; write a number and a unit, e.g. `90s`, `15m`, `1h30m`"
        )),
    }
}

/// A date written as the integer `yyyymmdd`, as SQL Server Agent's `sp_add_schedule` takes it:
/// `range` as integers, and a real day of the Gregorian calendar (no 30 February, no month 13).
pub(crate) fn yyyymmdd(what: &str, n: i64, range: RangeInclusive<i64>) -> Result<(), String> {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    if !range.contains(&n) {
        return Err(format!(
            "{what} must be between {} and {}",
            range.start(),
            range.end()
        ));
    }
    let not_a_date = |why: String| {
        Err(format!(
            "{what} must be a real date written `yyyymmdd`; `{n}` {why}"
        ))
    };
    let (year, month, day) = (n / 10_000, n / 100 % 100, n % 100);
    let (Ok(year), Ok(month), Ok(day)) =
        (i16::try_from(year), i8::try_from(month), i8::try_from(day))
    else {
        return not_a_date("is out of range".into());
    };
    if !(1..=12).contains(&month) {
        return not_a_date(format!("has no month {month}"));
    }
    // jiff knows the calendar: how long each month is, and which years are leap years.
    let first = jiff::civil::Date::new(year, month, 1).map_err(|e| e.to_string())?;
    let days = first.days_in_month();
    if !(1..=days).contains(&day) {
        let name = MONTHS[usize::from(month.unsigned_abs()) - 1];
        return not_a_date(format!(
            "is day {day} of {name} {year}, which has {days} days"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_written_as_in_a_connection_string_gets_the_keys_to_write_instead() {
        let bad = |t: &str| format!("`{t}` is not a valid host name or IP address");
        let cases = [
            ("dal-sql-001.litwareinc.com", Ok(())),
            (
                r"dal-sql-001\PCHAT",
                Err(format!(
                    "{}; write the instance on its own: `host = \"dal-sql-001\"` and `instance = \"PCHAT\"`",
                    bad(r"dal-sql-001\PCHAT")
                )),
            ),
            (
                "dal-sql-001, 1433",
                Err(format!(
                    "{}; write the port on its own: `host = \"dal-sql-001\"` and `port = 1433`",
                    bad("dal-sql-001, 1433")
                )),
            ),
            (
                "tcp:dal-sql-001",
                Err(format!(
                    "{}; write `host = \"dal-sql-001\"`",
                    bad("tcp:dal-sql-001")
                )),
            ),
            ("a;b", Err(bad("a;b"))),
            (r"a\b;c", Err(bad(r"a\b;c"))),
        ];
        for (text, expected) in cases {
            assert_eq!(instance_host(text), expected, "{text}");
        }
    }

    #[test]
    fn a_ca_file_must_be_there_and_hold_a_certificate_in_its_form() {
        let dir = tempfile::tempdir().unwrap();
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let files: [(&str, &[u8]); 4] = [
            ("ca.pem", pem.as_bytes()),
            ("ca.der", &[0x30, 0x82, 0x01]),
            ("key.pem", b"-----BEGIN PRIVATE KEY-----\n"),
            ("text.der", b"not DER"),
        ];
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        std::fs::create_dir(dir.path().join("folder.pem")).unwrap();
        let cases = [
            ("ca.pem", Ok(())),
            ("ca.der", Ok(())),
            (
                "key.pem",
                Err("`ca_file` `key.pem` holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)"),
            ),
            (
                "text.der",
                Err("`ca_file` `text.der` holds no DER certificate"),
            ),
            (
                "missing.pem",
                Err(
                    "`ca_file` `missing.pem` does not exist (a relative path is relative to the runbook's folder)",
                ),
            ),
            (
                "folder.pem",
                Err(
                    "`ca_file` `folder.pem` is not a certificate file (a relative path is relative to the runbook's folder)",
                ),
            ),
        ];
        for (name, expected) in cases {
            assert_eq!(
                ca_file_contents(name, &dir.path().join(name)),
                expected.map_err(str::to_owned),
                "{name}"
            );
        }
        let absolute = dir.path().join("gone.crt");
        let written = absolute.display().to_string();
        assert_eq!(
            ca_file_contents(&written, &absolute),
            Err(format!("`ca_file` `{written}` does not exist"))
        );
    }

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
            ("90s", Ok(90)),
            ("15m", Ok(900)),
            ("1h30m", Ok(5400)),
            ("2h", Ok(7200)),
            ("0s", Ok(0)),
            ("", Err(DurationError::Malformed)),
            ("15", Err(DurationError::Malformed)),
            ("m", Err(DurationError::Malformed)),
            ("15 minutes", Err(DurationError::Malformed)),
            ("-5s", Err(DurationError::Malformed)),
            ("99999999999999999999s", Err(DurationError::TooLong)),
            ("5124095576030432h", Err(DurationError::TooLong)),
            ("18446744073709551615s1s", Err(DurationError::TooLong)),
        ];
        for (text, expected) in cases {
            assert_eq!(
                parse_duration(text).map(|d| d.as_secs()),
                expected,
                "duration {text:?}"
            );
        }
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn durations_are_more_than_zero_and_at_most_the_bound() {
        let day = Duration::from_secs(24 * 3600);
        let too_long = "`timeout` must be more than 0s and at most 24h";
        let cases: &[(&str, Result<u64, &str>)] = &[
            ("1ms", Ok(0)),
            ("24h", Ok(86_400)),
            ("23h59m60s", Ok(86_400)),
            ("0s", Err(too_long)),
            ("0ms", Err(too_long)),
            ("24h1ms", Err(too_long)),
            ("25h", Err(too_long)),
            ("99999999999999h", Err(too_long)),
            ("99999999999999999999999999s", Err(too_long)),
            (
                "soon",
                Err(
                    "`soon` is not a duration; write a number and a unit, e.g. `90s`, `15m`, `1h30m`",
                ),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                duration("`timeout`", text, day).map(|d| d.as_secs()),
                expected.map_err(str::to_owned),
                "duration {text:?}"
            );
        }
        assert_eq!(
            duration("`connect`", "2h", Duration::from_secs(3600)),
            Err("`connect` must be more than 0s and at most 1h".to_owned())
        );
    }

    #[test]
    fn schedule_dates_are_real_days() {
        let what = "`schedule_start_date`";
        let range = 19_900_101..=99_991_231;
        let cases: &[(i64, Result<(), &str>)] = &[
            (20260101, Ok(())),
            (19900101, Ok(())),
            (99991231, Ok(())),
            (20240229, Ok(())),
            (20001231, Ok(())),
            (
                20261399,
                Err(
                    "`schedule_start_date` must be a real date written `yyyymmdd`; `20261399` has no month 13",
                ),
            ),
            (
                20260001,
                Err(
                    "`schedule_start_date` must be a real date written `yyyymmdd`; `20260001` has no month 0",
                ),
            ),
            (
                20260230,
                Err(
                    "`schedule_start_date` must be a real date written `yyyymmdd`; `20260230` is day 30 of February 2026, which has 28 days",
                ),
            ),
            (
                20250229,
                Err(
                    "`schedule_start_date` must be a real date written `yyyymmdd`; `20250229` is day 29 of February 2025, which has 28 days",
                ),
            ),
            (
                21000229,
                Err(
                    "`schedule_start_date` must be a real date written `yyyymmdd`; `21000229` is day 29 of February 2100, which has 28 days",
                ),
            ),
            (
                20260431,
                Err(
                    "`schedule_start_date` must be a real date written `yyyymmdd`; `20260431` is day 31 of April 2026, which has 30 days",
                ),
            ),
            (
                20260100,
                Err(
                    "`schedule_start_date` must be a real date written `yyyymmdd`; `20260100` is day 0 of January 2026, which has 31 days",
                ),
            ),
            (
                19891231,
                Err("`schedule_start_date` must be between 19900101 and 99991231"),
            ),
            (
                -20260101,
                Err("`schedule_start_date` must be between 19900101 and 99991231"),
            ),
        ];
        for (n, expected) in cases {
            assert_eq!(
                yyyymmdd(what, *n, range.clone()),
                expected.map_err(str::to_owned),
                "date {n}"
            );
        }
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
    fn text_refuses_control_bidirectional_and_invisible_characters() {
        let tail = "which can make the text read differently from what runs";
        let cases: &[(&str, Option<&str>)] = &[
            ("\\\\dal\\share", None),
            ("Müller 東京 مرحبا ‘quoted’ – ok", None),
            ("", None),
            ("a\0b", Some("U+0000 (NULL)")),
            ("a\tb", Some("U+0009 (CHARACTER TABULATION)")),
            ("a\nb", Some("U+000A (LINE FEED)")),
            ("a\rb", Some("U+000D (CARRIAGE RETURN)")),
            ("\u{1b}[31mred", Some("U+001B (ESCAPE)")),
            ("a\u{1f}", Some("U+001F (INFORMATION SEPARATOR ONE)")),
            ("a\u{7f}", Some("U+007F (DELETE)")),
            ("a\u{85}", Some("U+0085 (a control character)")),
            ("a\u{9b}", Some("U+009B (a control character)")),
            ("a\u{ad}b", Some("U+00AD (SOFT HYPHEN)")),
            ("a\u{61c}", Some("U+061C (ARABIC LETTER MARK)")),
            ("a\u{180e}", Some("U+180E (MONGOLIAN VOWEL SEPARATOR)")),
            ("a\u{200b}", Some("U+200B (ZERO WIDTH SPACE)")),
            ("a\u{200c}", Some("U+200C (ZERO WIDTH NON-JOINER)")),
            ("a\u{200d}", Some("U+200D (ZERO WIDTH JOINER)")),
            ("a\u{200e}", Some("U+200E (LEFT-TO-RIGHT MARK)")),
            ("a\u{200f}", Some("U+200F (RIGHT-TO-LEFT MARK)")),
            ("a\u{2028}", Some("U+2028 (LINE SEPARATOR)")),
            ("a\u{2029}", Some("U+2029 (PARAGRAPH SEPARATOR)")),
            ("a\u{202a}", Some("U+202A (LEFT-TO-RIGHT EMBEDDING)")),
            ("a\u{202b}", Some("U+202B (RIGHT-TO-LEFT EMBEDDING)")),
            ("a\u{202c}", Some("U+202C (POP DIRECTIONAL FORMATTING)")),
            ("a\u{202d}", Some("U+202D (LEFT-TO-RIGHT OVERRIDE)")),
            ("a\u{202e}", Some("U+202E (RIGHT-TO-LEFT OVERRIDE)")),
            ("a\u{2060}", Some("U+2060 (WORD JOINER)")),
            ("a\u{2064}", Some("U+2064 (INVISIBLE PLUS)")),
            ("a\u{2066}", Some("U+2066 (LEFT-TO-RIGHT ISOLATE)")),
            ("a\u{2067}", Some("U+2067 (RIGHT-TO-LEFT ISOLATE)")),
            ("a\u{2068}", Some("U+2068 (FIRST STRONG ISOLATE)")),
            ("a\u{2069}", Some("U+2069 (POP DIRECTIONAL ISOLATE)")),
            ("a\u{206f}", Some("U+206F (a deprecated format character)")),
            ("\u{feff}a", Some("U+FEFF (ZERO WIDTH NO-BREAK SPACE)")),
            (
                "a\u{fffa}",
                Some("U+FFFA (an interlinear annotation character)"),
            ),
            ("a\u{e0001}", Some("U+E0001 (a tag character)")),
            ("a\u{e0041}", Some("U+E0041 (a tag character)")),
            // The first refused character is the one named.
            ("a\u{2066}b\u{202e}", Some("U+2066 (LEFT-TO-RIGHT ISOLATE)")),
            // Neighbours of refused ranges that real text uses stay allowed.
            ("a\u{a0}b\u{2010}c\u{2065}\u{fffc}\u{e0080}\u{e0100}", None),
        ];
        for (value, refused) in cases {
            let expected = refused.map(|c| format!("`description` contains {c}, {tail}"));
            assert_eq!(
                text("`description`", value).err(),
                expected,
                "text {value:?}"
            );
        }
    }

    #[test]
    fn every_control_character_is_refused() {
        // The table above names the usual ones; this covers the rest of Rust's (and Unicode's) Cc.
        for c in (0..=0x10_ffff).filter_map(char::from_u32) {
            if c.is_control() {
                assert!(text("x", &c.to_string()).is_err(), "U+{:04X}", u32::from(c));
            }
        }
    }

    #[test]
    fn names_must_not_be_empty_and_sysnames_are_short() {
        assert_eq!(
            non_empty("`message`", ""),
            Err("`message` must not be empty".to_owned())
        );
        assert_eq!(non_empty("`message`", "x"), Ok(()));
        assert_eq!(sysname("`copy_job`", &"j".repeat(128)), Ok(()));
        assert_eq!(
            sysname("`copy_job`", &"j".repeat(129)),
            Err("`copy_job` is longer than 128 characters".to_owned())
        );
    }
}
