//! Injection attempts and statement refusal, end to end.

use serde_json::json;

use crate::support::{Lab, error_of};

#[test]
fn doubled_typographic_quotes_keep_a_break_out_inside_one_string() {
    let lab = Lab::new();
    for quote in ['\'', '\u{2018}', '\u{2019}', '\u{201A}', '\u{201B}'] {
        let command = format!(
            "Set-CsPersistentChatState -Identity 'x{quote}{quote}; Remove-Item C:\\ -Recurse' -PoolState Normal -Confirm:$false"
        );
        let response = lab.after_import(&command);
        // The whole text reached the cmdlet as one identity, which names no pool.
        assert_eq!(
            error_of(&response)["target"],
            format!("x{quote}; Remove-Item C:\\ -Recurse"),
            "{command}"
        );
        assert_eq!(
            error_of(&response)["type"],
            "Microsoft.Rtc.Management.ManagementException"
        );
    }
}

#[test]
fn an_undoubled_typographic_quote_is_a_parse_error_not_a_second_command() {
    let lab = Lab::new();
    let response = lab
        .after_import("Set-CsPersistentChatState -Identity 'x\u{2019}; Remove-Item C:\\ -Recurse'");
    assert_eq!(
        error_of(&response),
        &json!({
            "type": "pcfail.ParseError",
            "message": "At line:1 char:66\r\n+ Set-CsPersistentChatState -Identity 'x\u{2019}; Remove-Item C:\\ -Recurse'\r\n+                                                                  ~\r\nThe string is missing the terminator: '.",
            "fully_qualified_error_id": "ParseException",
            "category": "ParserError",
            "target": null,
        })
    );
}

#[test]
fn more_than_one_statement_is_refused() {
    let lab = Lab::new();
    let cases = [
        (
            "Get-CsPersistentChatState; Remove-Item C:\\ -Recurse",
            "';' ends the first statement at char 26",
        ),
        (
            "Get-CsPersistentChatState\nRemove-Item C:\\",
            "a newline ends the first statement at char 26",
        ),
        (
            "Get-CsPersistentChatState | Remove-Item",
            "'|' pipes into another command at char 27",
        ),
        (
            "Get-CsPersistentChatState && Remove-Item x",
            "'&&' chains another pipeline at char 27",
        ),
        (
            "Get-CsPersistentChatState -Identity $(Remove-Item x)",
            "a subexpression '$(' would run code at char 37",
        ),
        (
            "Get-CsPersistentChatState -Identity { Remove-Item x }",
            "a script block '{' would run code at char 37",
        ),
    ];
    for (command, detail) in cases {
        let response = lab.run(&[command]).response();
        assert_eq!(
            error_of(&response),
            &json!({
                "type": "pcfail.MultipleStatements",
                "message": format!("The request must be exactly one command; {detail}."),
                "fully_qualified_error_id": "pcfail.MultipleStatements",
                "category": "InvalidArgument",
                "target": null,
            }),
            "{command}"
        );
    }
}

#[test]
fn variables_are_refused_rather_than_expanded() {
    let lab = Lab::new();
    let response = lab
        .run(&["Get-CsPersistentChatState -Identity \"service:$env:COMPUTERNAME\""])
        .response();
    assert_eq!(
        error_of(&response),
        &json!({
            "type": "pcfail.UnsupportedSyntax",
            "message": "The lab shell does not evaluate the variable '$env:COMPUTERNAME' (at char 46); pcfail sends only literal values.",
            "fully_qualified_error_id": "pcfail.UnsupportedSyntax",
            "category": "NotImplemented",
            "target": null,
        })
    );
}
