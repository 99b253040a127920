//! Every PowerShell line pcfail renders, parsed by a real PowerShell grammar (tree-sitter-powershell):
//! exactly one statement of exactly one command, whose arguments are the intended literals, even when
//! runbook values try to break out.
//!
//! The grammar treats only U+0027 as a single quote, so it cannot see a breakout through the
//! typographic quotes (U+2018..U+201B) that real PowerShell also honours; `quote::ps_string`'s unit
//! tests cover those with PowerShell's own rules.

use serde_json::Value;
use tree_sitter::{Node, Parser};

use crate::test::{MINIMAL, SHIPPED, Test, edit};

/// One element of a parsed command line.
#[derive(Debug, PartialEq, Eq)]
enum Element {
    Parameter(String),
    String(String),
    Variable(String),
    Strings(Vec<String>),
}

fn text<'a>(node: Node<'_>, source: &'a str) -> &'a str {
    &source[node.byte_range()]
}

fn descendants<'t>(node: Node<'t>, kind: &str, out: &mut Vec<Node<'t>>) {
    if node.kind() == kind {
        out.push(node);
        return;
    }
    let mut cursor = node.walk();
    for child in node.named_children(&mut cursor) {
        descendants(child, kind, out);
    }
}

/// The value of a verbatim string literal as PowerShell reads it: outer quotes off, `''` is `'`.
fn verbatim(literal: &str) -> String {
    assert!(
        literal.starts_with('\'') && literal.ends_with('\'') && literal.len() >= 2,
        "not verbatim: {literal}"
    );
    literal[1..literal.len() - 1].replace("''", "'")
}

/// Parses `line`, asserts it is one statement holding one command, returns its name and elements.
fn command(line: &str) -> (String, Vec<Element>) {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_powershell::LANGUAGE.into())
        .expect("grammar loads");
    let tree = parser.parse(line, None).expect("parses");
    let root = tree.root_node();
    assert!(
        !root.has_error(),
        "syntax error in {line}: {}",
        root.to_sexp()
    );
    let mut commands = Vec::new();
    descendants(root, "command", &mut commands);
    let mut statements = Vec::new();
    descendants(root, "pipeline", &mut statements);
    assert_eq!(
        (statements.len(), commands.len()),
        (1, 1),
        "not exactly one command: {line}\n{}",
        root.to_sexp()
    );
    let command = commands[0];
    let name = text(
        command
            .child_by_field_name("command_name")
            .expect("command name"),
        line,
    )
    .to_owned();
    let mut elements = Vec::new();
    if let Some(list) = command.child_by_field_name("command_elements") {
        let mut cursor = list.walk();
        for element in list.named_children(&mut cursor) {
            match element.kind() {
                "command_argument_sep" => {}
                "command_parameter" => {
                    elements.push(Element::Parameter(text(element, line).to_owned()))
                }
                _ => {
                    let mut arrays = Vec::new();
                    descendants(element, "array_expression", &mut arrays);
                    let mut strings = Vec::new();
                    descendants(element, "string_literal", &mut strings);
                    let mut variables = Vec::new();
                    descendants(element, "variable", &mut variables);
                    let values: Vec<String> =
                        strings.iter().map(|s| verbatim(text(*s, line))).collect();
                    elements.push(match (arrays.len(), values.len(), variables.len()) {
                        (1, _, 0) => Element::Strings(values),
                        (0, 1, 0) => Element::String(values.into_iter().next().expect("one")),
                        (0, 0, 1) => Element::Variable(text(variables[0], line).to_owned()),
                        _ => panic!("unexpected argument `{}` in {line}", text(element, line)),
                    });
                }
            }
        }
    }
    (name, elements)
}

fn p(s: &str) -> Element {
    Element::Parameter(s.to_owned())
}

fn s(s: &str) -> Element {
    Element::String(s.to_owned())
}

fn v(s: &str) -> Element {
    Element::Variable(s.to_owned())
}

/// The PowerShell command texts of a plan, from its JSON.
fn powershell_lines(runbook: &str, operation: &str) -> Vec<String> {
    let output = Test::new()
        .runbook(runbook)
        .args(&["plan", operation, "--format", "json"])
        .stderr("")
        .run();
    let json: Value = serde_json::from_slice(&output.stdout).expect("JSON plan");
    let mut lines = Vec::new();
    for step in json["steps"].as_array().expect("steps") {
        for c in step["commands"].as_array().expect("commands") {
            if c["kind"] == "powershell" {
                lines.push(c["text"].as_str().expect("text").to_owned());
            }
        }
    }
    lines
}

#[test]
fn shipped_runbook_renders_single_commands_with_literal_arguments() {
    let failover: Vec<_> = powershell_lines(SHIPPED, "failover")
        .iter()
        .map(|l| command(l))
        .collect();
    let servers = |list: &[&str]| Element::Strings(list.iter().map(|s| (*s).to_owned()).collect());
    assert_eq!(
        failover,
        [
            (
                "Invoke-CsManagementServerFailover".to_owned(),
                vec![
                    p("-BackupSqlServerFqdn"),
                    s("dal-sql-001.litwareinc.com"),
                    p("-Force"),
                    p("-Confirm"),
                    v("$false")
                ]
            ),
            (
                "Set-CsPersistentChatState".to_owned(),
                vec![
                    p("-Identity"),
                    s("service:atl-cs-001.litwareinc.com"),
                    p("-PoolState"),
                    s("FailedOver"),
                    p("-Confirm"),
                    v("$false")
                ]
            ),
            (
                "Set-CsPersistentChatActiveServer".to_owned(),
                vec![
                    p("-Identity"),
                    s("service:atl-cs-001.litwareinc.com"),
                    p("-ActiveServers"),
                    servers(&["dal-pc-001.litwareinc.com", "dal-pc-002.litwareinc.com"]),
                    p("-Confirm"),
                    v("$false")
                ]
            ),
        ]
    );
    let failback: Vec<_> = powershell_lines(SHIPPED, "failback")
        .iter()
        .map(|l| command(l))
        .collect();
    assert_eq!(
        failback,
        [
            (
                "Set-CsPersistentChatActiveServer".to_owned(),
                vec![
                    p("-Identity"),
                    s("service:atl-cs-001.litwareinc.com"),
                    p("-ActiveServers"),
                    v("$null"),
                    p("-Confirm"),
                    v("$false")
                ]
            ),
            (
                "Set-CsPersistentChatState".to_owned(),
                vec![
                    p("-Identity"),
                    s("service:atl-cs-001.litwareinc.com"),
                    p("-PoolState"),
                    s("Normal"),
                    p("-Confirm"),
                    v("$false")
                ]
            ),
            (
                "Set-CsPersistentChatActiveServer".to_owned(),
                vec![
                    p("-Identity"),
                    s("service:atl-cs-001.litwareinc.com"),
                    p("-ActiveServers"),
                    servers(&["atl-pc-001.litwareinc.com", "atl-pc-002.litwareinc.com"]),
                    p("-Confirm"),
                    v("$false")
                ]
            ),
            (
                "Test-CsPersistentChatMessage".to_owned(),
                vec![p("-TargetFqdn"), s("atl-cs-001.litwareinc.com")]
            ),
        ]
    );
}

#[test]
fn install_mirror_database_alternative_renders_one_command() {
    let runbook = edit(
        MINIMAL,
        "[failback]",
        "[[failover.steps]]\nid = \"install-mirror\"\naction = \"install_mirror_database\"\ndatabase_type = \"PersistentChat\"\nfile_share = '\\\\dal-sql-001.litwareinc.com\\Mirroring'\n\n[failback]",
    );
    let lines = powershell_lines(&runbook, "failover");
    assert_eq!(
        lines.iter().map(|l| command(l)).collect::<Vec<_>>(),
        [(
            "Install-CsMirrorDatabase".to_owned(),
            vec![
                p("-DatabaseType"),
                s("PersistentChat"),
                p("-SqlServerFqdn"),
                s("dal-sql-001.litwareinc.com"),
                p("-FileShare"),
                s("\\\\dal-sql-001.litwareinc.com\\Mirroring"),
                p("-DropExistingDatabasesOnMirror"),
                p("-Confirm"),
                v("$false"),
            ]
        )]
    );
}

#[test]
fn hostile_values_stay_one_string() {
    let identity = "service:x'; Stop-Computer -Force; $(Remove-Item C:\\ -Recurse) '";
    let share = "\\\\x\\s'; Remove-Item C:\\ -Recurse; '";
    let runbook = edit(
        &edit(
            MINIMAL,
            "fqdn = \"atl-cs-001.litwareinc.com\"",
            &format!("fqdn = \"atl-cs-001.litwareinc.com\"\nidentity = {identity:?}"),
        ),
        "[failback]",
        &format!(
            "[[failover.steps]]\nid = \"install-mirror\"\naction = \"install_mirror_database\"\ndatabase_type = \"PersistentChat\"\nfile_share = \"{}\"\n\n[failback]",
            share.replace('\\', "\\\\")
        ),
    );
    let failover: Vec<_> = powershell_lines(&runbook, "failover")
        .iter()
        .map(|l| command(l))
        .collect();
    assert_eq!(failover.len(), 1);
    assert_eq!(failover[0].1[5], s(share));
    let failback: Vec<_> = powershell_lines(&runbook, "failback")
        .iter()
        .map(|l| command(l))
        .collect();
    assert_eq!(
        failback,
        [(
            "Set-CsPersistentChatState".to_owned(),
            vec![
                p("-Identity"),
                s(identity),
                p("-PoolState"),
                s("Normal"),
                p("-Confirm"),
                v("$false")
            ]
        )]
    );
}

/// The host script pcfail starts PowerShell with cannot be run here (no PowerShell), so a real
/// PowerShell grammar at least proves it parses: a syntax error would only show on the operator's
/// server, at the worst moment.
#[test]
fn the_host_script_parses_as_powershell() {
    let source = include_str!("../../assets/host.ps1");
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_powershell::LANGUAGE.into())
        .expect("grammar loads");
    let tree = parser.parse(source, None).expect("parses");
    let root = tree.root_node();
    assert!(
        !root.has_error(),
        "syntax error in assets/host.ps1: {}",
        root.to_sexp()
    );
    // The protocol's two sentinels are what pcfail reads; the script must write both.
    assert!(source.contains("'PCFAIL-READY '") && source.contains("'PCFAIL-RESULT '"));
}
