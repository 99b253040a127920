//! The command line: exit codes, the runbook path from the environment, the guard on failover, the
//! not-yet-available execution, completions and help.

use serde_json::json;

use crate::test::{MINIMAL, SHIPPED, Test};

#[test]
fn failover_requires_pool() {
    let output = Test::new()
        .runbook(MINIMAL)
        .args(&["failover"])
        .stdout("")
        .status(2)
        .run();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(
            "error: the following required arguments were not provided:\n  --pool <FQDN>\n"
        ),
        "{stderr}"
    );
}

#[test]
fn failover_that_reaches_no_instance_refuses_and_says_why_for_each() {
    // The shipped runbook, with SQL logins so every build can try: its hosts do not resolve here and
    // it names `powershell.exe`, which this machine does not have. The situation cannot be known, so
    // nothing runs, and the refusal says why for every instance and the shell.
    let output = Test::new()
        .runbook(&crate::test::portable(SHIPPED))
        .env("PCFAIL_TEST_PASSWORD", "not used")
        .env("PCFAIL_DAL_SQL_002_PASSWORD", "not used")
        .args(&["failover", "--pool", "atl-cs-001.litwareinc.com", "--yes"])
        .stdout("")
        .status(3)
        .run();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: the situation is inconsistent: "),
        "{stderr}"
    );
    for (role, host) in [
        ("primary", "atl-sql-001"),
        ("primary_mirror", "atl-sql-002"),
        ("backup", "dal-sql-001"),
        ("backup_mirror", "dal-sql-002"),
    ] {
        assert!(
            stderr.contains(&format!("  - `{role}` ({host}.litwareinc.com) ")),
            "{role}: {stderr}"
        );
    }
    assert!(
        stderr.contains("  - the Management Shell could not be asked for the pool state: cannot start `powershell.exe`: No such file or directory (os error 2)\n"),
        "{stderr}"
    );
}

#[test]
fn failback_validates_the_runbook_before_connecting() {
    Test::new()
        .runbook(&crate::test::edit(MINIMAL, "port = 1433", "port = 0"))
        .args(&["failback"])
        .stderr("runbook.toml:14:8: error: `port` must be between 1 and 65535\n")
        .status(2)
        .run();
}

#[test]
fn failover_checks_the_pool_against_the_runbook() {
    Test::new()
        .runbook(MINIMAL)
        .args(&["failover", "--pool", "atl-cs-002.litwareinc.com"])
        .stderr("error: --pool `atl-cs-002.litwareinc.com` does not match the runbook's pool `atl-cs-001.litwareinc.com`\n")
        .status(2)
        .run();
}

#[test]
fn runbook_path_comes_from_the_environment() {
    let test = Test::new();
    std::fs::write(test.path().join("env.toml"), crate::test::portable(MINIMAL))
        .expect("write runbook");
    test.env("PCFAIL_RUNBOOK", "env.toml")
        .args(&["validate"])
        .stdout("env.toml: ok (2 failover steps, 1 fail-back step)\n")
        .run();
}

#[test]
fn default_runbook_path_is_runbooks_persistent_chat_toml() {
    Test::new()
        .args(&["validate"])
        .stderr("error: runbook `runbooks/persistent-chat.toml` not found\n")
        .status(2)
        .run();
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    Test::new().args(&["explode"]).stdout("").status(2).run();
}

#[test]
fn help_shows_the_exit_codes() {
    let output = Test::new().args(&["--help"]).stderr("").run();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.contains(
            "Exit status:\n    0    success\n    1    a step failed\n    2    usage or runbook error\n    3    a precondition check failed\n    4    aborted by the operator\n    5    another run holds the lock\n  130    interrupted\n"
        ),
        "{help}"
    );
}

#[test]
fn completions_are_generated_for_bash() {
    let output = Test::new().args(&["completions", "bash"]).stderr("").run();
    let script = String::from_utf8_lossy(&output.stdout);
    assert!(script.contains("_pcfail()"), "{script}");
    assert!(script.contains("failover"), "{script}");
}

#[test]
fn validate_json_is_one_document_with_every_problem_located() {
    let output = Test::new()
        .runbook(&crate::test::portable(SHIPPED))
        .args(&["validate", "--format", "json"])
        .stderr("")
        .run();
    let ok: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(
        (&ok["ok"], &ok["failover_steps"], &ok["failback_steps"]),
        (&json!(true), &json!(11), &json!(12))
    );
    let output = Test::new()
        .runbook(&crate::test::edit(MINIMAL, "port = 1433", "port = 0"))
        .args(&["validate", "--format", "json"])
        .stderr("")
        .status(2)
        .run();
    let bad: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(bad["ok"], json!(false));
    let diagnostics = bad["diagnostics"].as_array().expect("diagnostics");
    assert_eq!(diagnostics.len(), 1, "{bad:#}");
    assert_eq!(
        (&diagnostics[0]["file"], &diagnostics[0]["line"]),
        (&json!("runbook.toml"), &json!(14))
    );
}

/// What this build cannot carry out is located in the JSON form too, as `validate` says in text.
#[test]
fn validate_json_locates_settings_this_build_cannot_carry_out() {
    if cfg!(any(windows, feature = "kerberos")) {
        // Integrated authentication works in this build: nothing to refuse.
        Test::new()
            .runbook(SHIPPED)
            .args(&["validate", "--format", "json"])
            .stderr("")
            .run();
        return;
    }
    let output = Test::new()
        .runbook(SHIPPED)
        .args(&["validate", "--format", "json"])
        .stderr("")
        .status(2)
        .run();
    let bad: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(bad["ok"], json!(false), "{bad:#}");
    let located: Vec<(u64, u64, bool)> = bad["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .map(|d| {
            let message = d["message"].as_str().unwrap_or_default();
            (
                d["line"].as_u64().unwrap_or_default(),
                d["column"].as_u64().unwrap_or_default(),
                message.starts_with("`auth = \"integrated\"` in `instances."),
            )
        })
        .collect();
    assert_eq!(
        located,
        [(67, 8, true), (75, 8, true), (83, 8, true)],
        "{bad:#}"
    );
}

/// At a terminal (a pseudo-terminal made by util-linux `script`), logs are coloured, unless
/// `NO_COLOR` is set to anything but the empty string (no-color.org).
#[cfg(unix)]
#[test]
fn logs_at_a_terminal_are_coloured_unless_no_color_is_set() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runbook = dir.path().join("runbook.toml");
    std::fs::write(&runbook, SHIPPED).expect("write runbook");
    let at_terminal = |no_color: Option<&str>| {
        let command = format!(
            "exec '{}' -vv plan failover --runbook '{}' --state-dir '{}'",
            env!("CARGO_BIN_EXE_pcfail"),
            runbook.display(),
            dir.path().join("state").display()
        );
        let mut script = std::process::Command::new("script");
        script
            .args(["-qec", &command, "/dev/null"])
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .env_remove("PCFAIL_RUNBOOK")
            .stdin(std::process::Stdio::null());
        if let Some(value) = no_color {
            script.env("NO_COLOR", value);
        }
        let output = script
            .output()
            .expect("util-linux `script` runs pcfail on a terminal");
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let coloured = at_terminal(None);
    assert!(
        coloured.contains("plan built") && coloured.contains('\u{1b}'),
        "{coloured:?}"
    );
    let empty = at_terminal(Some(""));
    assert!(
        empty.contains('\u{1b}'),
        "NO_COLOR=\"\" is unset: {empty:?}"
    );
    let plain = at_terminal(Some("1"));
    assert!(
        plain.contains("plan built") && !plain.contains('\u{1b}'),
        "{plain:?}"
    );
}

/// Logs on stderr carry no colour codes when stderr is not a terminal (a file, a pipe), whatever
/// RUST_LOG asks for.
#[test]
fn logs_piped_to_a_file_carry_no_escape_codes() {
    for env in [None, Some("debug")] {
        let mut test = Test::new()
            .runbook(SHIPPED)
            .args(&["-vv", "plan", "failover"]);
        if let Some(level) = env {
            test = test.env("RUST_LOG", level);
        }
        let output = test.run();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(stderr.contains("plan built"), "{stderr}");
        assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
    }
}
