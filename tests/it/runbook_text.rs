//! Runbook text hygiene, field by field: every string the runbook can hold refuses control,
//! bidirectional and invisible characters, at the value's place, with the character named.
//!
//! The fields are not listed by hand (a list would miss the next one added): the test walks the
//! spanned TOML tree of a runbook that uses every key and puts a bad character into each string in
//! turn. `validate.rs` checks a few of the resulting messages through the real binary.

use std::path::Path;

use pcfail::runbook::{LoadError, parse_str};
use toml::de::{DeTable, DeValue};

use crate::test::{SHIPPED, edit};

/// The shipped runbook plus every optional string key it leaves out, and one step of each action it
/// does not use (`install_mirror_database`, `sql`, `cmdlet`).
fn every_key() -> String {
    let text = edit(SHIPPED, "args = []", r#"args = ["-Version", "5.1"]"#);
    let text = edit(
        &text,
        "[log_shipping]\n",
        "[log_shipping]\nshare = '\\\\atl-sql-001.litwareinc.com\\LogShipping'\ncopy_folder = 'D:\\LogShippingCopy'\npcfail_share = '/mnt/logshipping'\npcfail_copy_folder = '\\\\dal-sql-001.litwareinc.com\\LogShippingCopy'\n",
    );
    // TLS checked against a CA file for another name, and an explicit Windows account.
    let text = edit(
        &text,
        "host = \"dal-sql-001.litwareinc.com\"\nport = 1433",
        "host = \"dal-sql-001.litwareinc.com\"\nport = 1433\nca_file = \"pki/ca.pem\"\ncertificate_host = \"dal-sql-001.litwareinc.com\"",
    );
    let text = edit(
        &text,
        "auth = \"sql\"\nuser = \"pcfail\"",
        "auth = \"windows\"\nuser = 'LITWAREINC\\pcfail'",
    );
    // The primary mirror as a named instance with its own @@SERVERNAME.
    let text = edit(
        &text,
        "host = \"atl-sql-002.litwareinc.com\"\nport = 1433",
        "host = \"atl-sql-002.litwareinc.com\"\ninstance = \"PCHAT\"\nserver_name = \"ATL-SQL-002\\\\PCHAT\"",
    );
    let text = edit(
        &text,
        "# The schedules start on the instance's own date (GETDATE()) unless `schedule_start_date` sets one.",
        "schedule_start_date = 20260101\nbackup_share = '\\\\atl-sql-001.litwareinc.com\\LogShipping'\ncopy_folder = 'D:\\LogShippingCopy'\ncopy_job = \"LSCopy_mgc\"\nrestore_job = \"LSRestore_mgc\"",
    );
    text + r#"
[[failback.steps]]
id = "install-mirror"
action = "install_mirror_database"
database_type = "PersistentChat"
file_share = '\\dal-sql-002.litwareinc.com\Mirroring'

[[failback.steps]]
id = "count-chats"
action = "sql"
instance = "primary"
database = "mgc"
text = "SELECT COUNT(*) FROM dbo.tblChat"
irreversible = false

[[failback.steps]]
id = "pool-state"
action = "cmdlet"
text = "Get-CsPersistentChatState -Identity 'service:atl-cs-001.litwareinc.com'"
irreversible = false
"#
}

/// Each string value of the tree: the key it belongs to (an array's key for its items) and the byte
/// offset of its opening quote.
fn strings(table: &DeTable<'_>, out: &mut Vec<(String, usize)>) {
    for (key, value) in table.iter() {
        collect(key.get_ref(), value.get_ref(), value.span().start, out);
    }
}

fn collect(key: &str, value: &DeValue<'_>, start: usize, out: &mut Vec<(String, usize)>) {
    match value {
        DeValue::String(_) => out.push((key.to_owned(), start)),
        DeValue::Array(items) => {
            for item in items.iter() {
                collect(key, item.get_ref(), item.span().start, out);
            }
        }
        DeValue::Table(table) => strings(table, out),
        _ => {}
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn place(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

/// The diagnostics of `text` as `line:column: message`, or nothing when it loads.
fn problems(text: &str) -> Vec<String> {
    match parse_str(Path::new("rb.toml"), text) {
        Ok(_) => Vec::new(),
        Err(LoadError::Invalid { diagnostics }) => diagnostics
            .iter()
            .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
            .collect(),
        Err(other) => vec![other.to_string()],
    }
}

#[test]
fn the_runbook_with_every_key_is_valid() {
    assert_eq!(problems(&every_key()), Vec::<String>::new());
}

#[test]
fn every_string_field_refuses_bidirectional_invisible_and_control_characters() {
    let text = every_key();
    let (root, errors) = DeTable::parse_recoverable(&text);
    assert!(errors.is_empty(), "{errors:?}");
    let mut fields = Vec::new();
    strings(root.get_ref(), &mut fields);
    // The shipped runbook's strings and the ones added above: if this drops, the walk lost some.
    assert!(fields.len() > 120, "only {} strings found", fields.len());

    // Raw characters TOML allows in any string, and, for basic strings only, escapes that TOML turns
    // into control characters (a literal string cannot hold one at all).
    let raw = [
        ('\u{202e}', "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
        ('\u{2066}', "U+2066 (LEFT-TO-RIGHT ISOLATE)"),
        ('\u{200b}', "U+200B (ZERO WIDTH SPACE)"),
        ('\u{feff}', "U+FEFF (ZERO WIDTH NO-BREAK SPACE)"),
    ];
    let escaped = [
        ("\\u001B", "U+001B (ESCAPE)"),
        ("\\t", "U+0009 (CHARACTER TABULATION)"),
        ("\\n", "U+000A (LINE FEED)"),
    ];
    let mut checked = 0;
    for (key, start) in &fields {
        let quote = &text[*start..*start + 1];
        assert!(
            !text[*start..].starts_with("\"\"\"") && !text[*start..].starts_with("'''"),
            "multi-line strings are not handled here"
        );
        let mut inserts: Vec<(String, &str)> =
            raw.iter().map(|(c, name)| (c.to_string(), *name)).collect();
        if quote == "\"" {
            inserts.extend(escaped.iter().map(|(e, name)| ((*e).to_owned(), *name)));
        }
        let (line, column) = place(&text, *start);
        for (insert, name) in inserts {
            let bad = format!("{}{insert}{}", &text[..*start + 1], &text[*start + 1..]);
            assert_eq!(
                problems(&bad),
                [format!(
                    "{line}:{column}: `{key}` contains {name}, which can make the text read differently from what runs"
                )],
                "{insert:?} put into `{key}` on line {line}"
            );
            checked += 1;
        }
    }
    assert!(checked > 600, "only {checked} cases");
}
