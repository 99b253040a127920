//! Framing: READY, one response per request with its id, protocol errors, exit codes.

use serde_json::json;

use crate::support::{Lab, request};

const READY: &str = r#"PCFAIL-READY {"protocol":1,"host":"ConsoleHost","version":"5.1.17763.1"}"#;

#[test]
fn ready_comes_first_and_end_of_input_exits_zero() {
    let lab = Lab::new();
    let run = lab.run(&[]);
    assert_eq!(run.code, 0);
    assert_eq!(run.stdout, format!("{READY}\n"));
    assert_eq!(run.stderr, "");
}

#[test]
fn each_request_gets_one_response_with_its_id_in_order() {
    let lab = Lab::new();
    let run = lab.run_lines(&[
        request(7, "Get-Command -Name Import-Module"),
        request(9, "Get-Command Get-Command"),
    ]);
    let ids: Vec<_> = run.responses().iter().map(|r| r["id"].clone()).collect();
    assert_eq!(ids, vec![json!(7), json!(9)]);
    assert_eq!(run.code, 0);
}

#[test]
fn malformed_requests_get_a_protocol_error_and_the_shell_keeps_going() {
    let lab = Lab::new();
    let run = lab.run_lines(&[
        "this is not json".to_owned(),
        r#"{"id": 3}"#.to_owned(),
        r#"{"id": -1, "command": "Get-Command"}"#.to_owned(),
        request(4, "Get-Command -Name Import-Module"),
    ]);
    let responses = run.responses();
    assert_eq!(
        responses[0],
        json!({"id": null, "ok": false, "output": [], "warnings": [], "verbose": [], "error": {
            "type": "pcfail.ProtocolError",
            "message": "The request is not valid JSON: expected ident at line 1 column 2.",
            "fully_qualified_error_id": "pcfail.ProtocolError", "category": "InvalidData", "target": null}})
    );
    assert_eq!(responses[1]["id"], 3);
    assert_eq!(
        responses[1]["error"]["message"],
        "The request has no string `command`."
    );
    assert_eq!(responses[2]["id"], json!(null));
    assert_eq!(
        responses[2]["error"]["message"],
        "The request has no positive integer `id`."
    );
    assert_eq!(responses[3]["ok"], true);
    assert_eq!(run.code, 0);
}

#[test]
fn crlf_line_endings_are_accepted() {
    let lab = Lab::new();
    let run = lab.run_lines(&[format!("{}\r", request(1, "Get-Command -Name Get-Command"))]);
    assert_eq!(run.response()["ok"], true);
}

#[test]
fn a_request_without_any_statement_succeeds_with_no_output() {
    let lab = Lab::new();
    let response = lab.run(&["   # nothing to run"]).response();
    assert_eq!(
        response,
        json!({"id": 1, "ok": true, "output": [], "warnings": [], "verbose": []})
    );
}

#[test]
fn a_missing_host_script_fails_like_powershell_exe_before_ready() {
    let lab = Lab::new();
    let missing = lab.dir().join("nope.ps1");
    let args: Vec<String> = [
        "-NoProfile",
        "-NonInteractive",
        "-File",
        missing.to_str().unwrap(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let run = lab.run_with_args(&args, &[request(1, "Get-Command")]);
    assert_eq!(run.code, 64);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        format!(
            "The argument '{}' to the -File parameter does not exist. Provide the path to an existing '.ps1' file as an argument to the -File parameter.\n",
            missing.display()
        )
    );
}

#[test]
fn an_unknown_switch_becomes_a_command_that_is_not_recognized() {
    let lab = Lab::new();
    let args: Vec<String> = vec![
        "-NoProfil3".to_owned(),
        "-File".to_owned(),
        lab.host_script().display().to_string(),
    ];
    let run = lab.run_with_args(&args, &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with("-NoProfil3 : The term '-NoProfil3' is not recognized as the name of a cmdlet, function, script file, or operable program."),
        "{}",
        run.stderr
    );
}

#[test]
fn a_lab_directory_without_lab_json_fails_at_start() {
    let lab = Lab::new();
    std::fs::remove_file(lab.dir().join("lab.json")).unwrap();
    let run = lab.run(&["Get-Command"]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .starts_with("error: cannot read the lab manifest `"),
        "{}",
        run.stderr
    );
}

/// Started with no console (a scheduled task, a service), a host script that sets the console's
/// encoding under `$ErrorActionPreference = 'Stop'` dies before READY with PowerShell's error, exit 1;
/// pcfail's own host script (assets/host.ps1) reaches READY and answers.
#[test]
fn without_a_console_only_a_host_script_that_leaves_the_console_encoding_alone_gets_ready() {
    let lab = Lab::new();
    lab.write_faults(json!({ "rules": [{ "kind": "host", "no_console": true }] }));
    let old = lab.dir().join("old-host.ps1");
    std::fs::write(
        &old,
        "$ErrorActionPreference = 'Stop'\n$utf8 = New-Object System.Text.UTF8Encoding $false\n[Console]::InputEncoding = $utf8\n",
    )
    .unwrap();
    let run = lab.run_with_args(&crate::support::powershell_args(&old), &[]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "", "no READY");
    assert!(
        run.stderr.starts_with(&format!(
            "Exception setting \"InputEncoding\": \"The handle is invalid.\r\n\"\nAt {}:3 char:1\n",
            old.display()
        )),
        "{}",
        run.stderr
    );

    let shipped = lab.dir().join("host.ps1");
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/host.ps1"),
        &shipped,
    )
    .unwrap();
    let run = lab.run_with_args(
        &crate::support::powershell_args(&shipped),
        &[request(1, "Get-Command -Name Import-Module")],
    );
    assert_eq!((run.code, run.stderr.as_str()), (0, ""));
    assert!(run.stdout.starts_with(READY), "{}", run.stdout);
    assert_eq!(run.responses().len(), 1);
}
