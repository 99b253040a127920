//! `pcfail validate`: the shipped runbook passes; broken ones exit 2 with every problem located, and
//! the messages are checked word for word.

use crate::test::{MINIMAL, SHIPPED, Test, edit, portable};

#[test]
fn shipped_runbook_is_valid() {
    Test::new()
        .runbook(&portable(SHIPPED))
        .args(&["validate"])
        .stdout("runbook.toml: ok (11 failover steps, 12 fail-back steps)\n")
        .stderr("")
        .run();
}

/// What Windows tools save: Windows PowerShell 5.1's `>` writes UTF-16LE with a byte-order mark,
/// `Out-File -Encoding UTF8` and Notepad UTF-8 with one.
#[test]
fn runbooks_saved_as_utf16_or_with_a_byte_order_mark_are_read() {
    let text = portable(SHIPPED);
    let utf16le: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let utf16be: Vec<u8> = [0xFE, 0xFF]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
        .collect();
    let utf8_bom = [&[0xEF, 0xBB, 0xBF][..], text.as_bytes()].concat();
    for bytes in [utf16le, utf16be, utf8_bom] {
        Test::new()
            .runbook_bytes(&bytes)
            .args(&["validate"])
            .stdout("runbook.toml: ok (11 failover steps, 12 fail-back steps)\n")
            .stderr("")
            .run();
    }
}

/// A file in a legacy code page (Windows-1252's `ü` is the byte 0xFC) is not guessed at.
#[test]
fn a_runbook_in_another_encoding_is_located_with_the_fix() {
    let text = edit(
        MINIMAL,
        "data_center = \"ATL\"",
        "data_center = \"ATL\" # Z\u{FC}rich",
    );
    let bytes: Vec<u8> = text
        .chars()
        .map(|c| u8::try_from(u32::from(c)).expect("Latin-1"))
        .collect();
    Test::new()
        .runbook_bytes(&bytes)
        .args(&["validate"])
        .stdout("")
        .stderr("runbook.toml:10:24: error: the file is not UTF-8 text here (byte 0xFC); save the runbook as UTF-8 (or as UTF-16 with a byte-order mark, as Windows PowerShell's `>` writes it)\n")
        .status(2)
        .run();
}

/// The shipped runbook logs in as the Windows account running pcfail, which this build can do on
/// Windows and with Kerberos; elsewhere `validate` says so at each place, and exits 2.
#[test]
fn shipped_runbook_is_refused_where_this_build_cannot_log_in_as_the_current_user() {
    let test = Test::new().runbook(SHIPPED).args(&["validate"]);
    if cfg!(any(windows, feature = "kerberos")) {
        test.stdout("runbook.toml: ok (11 failover steps, 12 fail-back steps)\n")
            .stderr("")
            .run();
        return;
    }
    let why = "Windows authentication as the logged-on user needs Windows, or Kerberos through GSSAPI, which this build does not include (build pcfail with `--features kerberos` where libgssapi_krb5 is installed); or name the account with `auth = \"windows\"`, `user = \"DOMAIN\\name\"` and `password_env`";
    let expected: String = [(67, "primary"), (75, "primary_mirror"), (83, "backup")]
        .iter()
        .map(|(line, role)| {
            format!("runbook.toml:{line}:8: error: `auth = \"integrated\"` in `instances.{role}`: {why}\n")
        })
        .collect();
    test.stdout("").stderr(&expected).status(2).run();
}

/// Left to its default, `auth` is integrated: where this build cannot do that, the instance's table
/// is where it is reported. Every command that connects refuses the same way, before connecting;
/// `plan` still prints the plan.
#[test]
fn default_integrated_authentication_is_refused_at_the_instance_where_this_build_cannot_do_it() {
    if cfg!(any(windows, feature = "kerberos")) {
        return;
    }
    let why = "Windows authentication as the logged-on user needs Windows";
    for args in [
        &["validate"][..],
        &["plan", "failover", "--check"],
        &["status", "--live"],
        &["failover", "--pool", "atl-cs-001.litwareinc.com", "--yes"],
        &["failback", "--yes"],
    ] {
        let output = Test::new()
            .runbook(MINIMAL)
            .args(args)
            .stdout("")
            .status(2)
            .run();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{args:?}: {stderr}");
        assert!(
            lines[0].starts_with(&format!(
                "runbook.toml:8:1: error: `auth = \"integrated\"` in `instances.primary`: {why}"
            )),
            "{args:?}: {stderr}"
        );
        assert!(
            lines[1].starts_with(&format!(
                "runbook.toml:12:1: error: `auth = \"integrated\"` in `instances.backup`: {why}"
            )),
            "{args:?}: {stderr}"
        );
    }
    Test::new()
        .runbook(MINIMAL)
        .args(&["plan", "failover"])
        .stderr("")
        .run();
}

#[test]
fn quiet_validate_prints_nothing() {
    Test::new()
        .runbook(&portable(MINIMAL))
        .args(&["-q", "validate"])
        .stdout("")
        .stderr("")
        .run();
}

/// Runs `validate` on MINIMAL with one edit and expects exactly `stderr`.
fn rejects(from: &str, to: &str, stderr: &str) {
    Test::new()
        .runbook(&edit(MINIMAL, from, to))
        .args(&["validate"])
        .stdout("")
        .stderr(stderr)
        .status(2)
        .run();
}

#[test]
fn toml_syntax_error_is_located() {
    rejects(
        "fqdn = \"atl-cs-001.litwareinc.com\"\n\n[databases]",
        "fqdn = \"atl-cs-001.litwareinc.com\n\n[databases]",
        "runbook.toml:2:34: error: invalid TOML: invalid basic string, expected `\"`\n",
    );
}

#[test]
fn unknown_key_suggests_the_known_one() {
    rejects(
        "port = 1433",
        "prot = 1433",
        "runbook.toml:14:1: error: unknown key `prot` in `instances.backup`; did you mean `port`?\n",
    );
}

#[test]
fn missing_field_names_the_key_and_table() {
    rejects(
        "host = \"dal-sql-001.litwareinc.com\"\n",
        "",
        "runbook.toml:12:1: error: missing key `host` in `instances.backup`\n",
    );
}

#[test]
fn wrong_type_names_expected_and_found() {
    rejects(
        "port = 1433",
        "port = \"1433\"",
        "runbook.toml:14:8: error: `port` in `instances.backup` must be an integer, found a string\n",
    );
}

#[test]
fn duplicate_step_id_points_to_the_first() {
    rejects(
        "id = \"recover\"",
        "id = \"remove-log-shipping\"",
        "runbook.toml:38:6: error: duplicate step id `remove-log-shipping` in `failover` (first used on line 33)\n",
    );
}

#[test]
fn bad_identifier_is_refused() {
    rejects(
        "chat = \"mgc\"",
        "chat = \"1mgc\"",
        "runbook.toml:5:8: error: `1mgc` is not a valid SQL Server identifier: it must start with a letter or `_`\n",
    );
}

#[test]
fn injection_in_a_database_name_is_refused() {
    rejects(
        "chat = \"mgc\"",
        "chat = \"mgc]; DROP DATABASE x; --\"",
        "runbook.toml:5:8: error: `mgc]; DROP DATABASE x; --` is not a valid SQL Server identifier: `]` is not allowed (use letters, digits, `_`, `@`, `$`, `#`)\n",
    );
}

#[test]
fn injection_in_a_step_database_is_refused() {
    let text = edit(
        MINIMAL,
        "database = \"mgc\"\n\n[[failover.steps]]",
        "database = \"mgc]; DROP DATABASE x; --\"\n\n[[failover.steps]]",
    );
    Test::new()
        .runbook(&text)
        .args(&["validate"])
        .stderr("runbook.toml:35:12: error: `mgc]; DROP DATABASE x; --` is not a valid SQL Server identifier: `]` is not allowed (use letters, digits, `_`, `@`, `$`, `#`)\n")
        .status(2)
        .run();
}

#[test]
fn injection_in_a_host_is_refused() {
    rejects(
        "host = \"dal-sql-001.litwareinc.com\"",
        "host = \"a;b\"",
        "runbook.toml:13:8: error: `a;b` is not a valid host name or IP address\n",
    );
}

#[test]
fn inlined_password_is_refused() {
    rejects(
        "port = 1433\n",
        "port = 1433\nauth = \"sql\"\nuser = \"pcfail\"\npassword = \"hunter2\"\n",
        "runbook.toml:12:1: error: missing key `password_env` in `instances.backup`\n\
         runbook.toml:17:1: error: passwords must not be written in the runbook; put the password in an environment variable and name it with `password_env` in `instances.backup`\n",
    );
}

#[test]
fn password_value_never_appears_in_output() {
    let output = Test::new()
        .runbook(&edit(
            MINIMAL,
            "port = 1433\n",
            "port = 1433\npassword = \"hunter2\"\n",
        ))
        .args(&["validate"])
        .status(2)
        .run();
    let all = [output.stdout, output.stderr].concat();
    assert!(!String::from_utf8_lossy(&all).contains("hunter2"));
}

#[test]
fn active_servers_after_failover_must_be_in_the_backup_data_center() {
    rejects(
        "after_failover = [\"dal-pc-001.litwareinc.com\"]",
        "after_failover = [\"atl-pc-001.litwareinc.com\"]",
        "runbook.toml:26:19: error: active server `atl-pc-001.litwareinc.com` is in data center `ATL`, but after failover the active servers must be in data center `DAL`\n",
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = edit(
        &edit(MINIMAL, "port = 1433", "port = \"x\""),
        "action = \"recover_database\"",
        "action = \"recover_databse\"",
    );
    Test::new()
        .runbook(&text)
        .args(&["validate"])
        .stderr(
            "runbook.toml:14:8: error: `port` in `instances.backup` must be an integer, found a string\n\
             runbook.toml:39:10: error: unknown action `recover_databse`; did you mean `recover_database`?\n",
        )
        .status(2)
        .run();
}

#[test]
fn bad_duration_and_unknown_instance_are_located() {
    let text = edit(
        MINIMAL,
        "action = \"recover_database\"",
        "action = \"recover_database\"\ninstance = \"bakup\"\ntimeout = \"5 minutes\"",
    );
    Test::new()
        .runbook(&text)
        .args(&["validate"])
        .stderr(
            "runbook.toml:40:12: error: unknown instance `bakup`; did you mean `backup`?\n\
             runbook.toml:41:11: error: `5 minutes` is not a duration; write a number and a unit, e.g. `90s`, `15m`, `1h30m`\n",
        )
        .status(2)
        .run();
}

#[test]
fn missing_runbook_file_is_a_usage_error() {
    Test::new()
        .args(&["validate", "--runbook", "nope.toml"])
        .stderr("error: runbook `nope.toml` not found\n")
        .status(2)
        .run();
}

/// The message for a character that runbook text must not hold, at `place` (`line:column`).
fn refused(place: &str, what: &str, character: &str) -> String {
    format!(
        "runbook.toml:{place}: error: {what} contains {character}, which can make the text read differently from what runs\n"
    )
}

#[test]
fn a_bidirectional_override_in_a_description_is_refused() {
    rejects(
        "action = \"recover_database\"",
        "action = \"recover_database\"\ndescription = \"Recover \u{202e}cgm\"",
        &refused("40:15", "`description`", "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
    );
}

#[test]
fn a_line_break_in_a_sql_statement_is_refused() {
    rejects(
        "state = \"Normal\"\n",
        "state = \"Normal\"\n\n[[failback.steps]]\nid = \"check\"\naction = \"sql\"\ninstance = \"primary\"\ntext = \"SELECT 1\\nGO\"\n",
        &refused("52:8", "`text`", "U+000A (LINE FEED)"),
    );
}

#[test]
fn an_escape_sequence_in_a_note_is_refused() {
    rejects(
        "notes = [\"mgccomp is not failed over.\"]",
        "notes = [\"mgccomp is not failed over.\\u001B[2J\"]",
        &refused("30:10", "`notes`", "U+001B (ESCAPE)"),
    );
}

#[test]
fn a_zero_width_space_in_a_host_is_refused_before_the_host_check() {
    rejects(
        "host = \"dal-sql-001.litwareinc.com\"",
        "host = \"dal-sql-001\u{200b}.litwareinc.com\"",
        &refused("13:8", "`host`", "U+200B (ZERO WIDTH SPACE)"),
    );
}

#[test]
fn a_key_with_an_isolate_is_refused_without_echoing_it() {
    rejects(
        "fqdn = \"atl-cs-001.litwareinc.com\"\n",
        "fqdn = \"atl-cs-001.litwareinc.com\"\n\"\u{2066}fqdn\" = \"x\"\n",
        &refused("3:1", "a key in `[pool]`", "U+2066 (LEFT-TO-RIGHT ISOLATE)"),
    );
}

#[test]
fn step_timeouts_are_more_than_zero_and_at_most_a_day() {
    let text = edit(
        &edit(
            &edit(
                MINIMAL,
                "action = \"remove_log_shipping_secondary\"",
                "action = \"remove_log_shipping_secondary\"\ntimeout = \"0s\"",
            ),
            "action = \"recover_database\"",
            "action = \"recover_database\"\ntimeout = \"25h\"",
        ),
        "state = \"Normal\"",
        "state = \"Normal\"\ntimeout = \"99999999999999h\"",
    );
    Test::new()
        .runbook(&text)
        .args(&["validate"])
        .stdout("")
        .stderr(
            "runbook.toml:35:11: error: `timeout` must be more than 0s and at most 24h\n\
             runbook.toml:41:11: error: `timeout` must be more than 0s and at most 24h\n\
             runbook.toml:49:11: error: `timeout` must be more than 0s and at most 24h\n",
        )
        .status(2)
        .run();
}

#[test]
fn a_runbook_timeout_too_large_for_any_clock_is_located() {
    rejects(
        "state = \"Normal\"\n",
        "state = \"Normal\"\n\n[timeouts]\nconnect = \"99999999999999999999999s\"\n",
        "runbook.toml:49:11: error: `connect` must be more than 0s and at most 1h\n",
    );
}

#[test]
fn schedule_start_date_must_be_a_real_day() {
    let cases = [
        (
            "20260230",
            "runbook.toml:414:23: error: `schedule_start_date` must be a real date written `yyyymmdd`; `20260230` is day 30 of February 2026, which has 28 days\n",
        ),
        (
            "20261399",
            "runbook.toml:414:23: error: `schedule_start_date` must be a real date written `yyyymmdd`; `20261399` has no month 13\n",
        ),
        (
            "19891231",
            "runbook.toml:414:23: error: `schedule_start_date` must be between 19900101 and 99991231\n",
        ),
    ];
    for (date, stderr) in cases {
        Test::new()
            .runbook(&edit(
                SHIPPED,
                "# The schedules start on the instance's own date (GETDATE()) unless `schedule_start_date` sets one.",
                &format!("schedule_start_date = {date}"),
            ))
            .args(&["validate"])
            .stdout("")
            .stderr(stderr)
            .status(2)
            .run();
    }
}

#[test]
fn the_fuzz_seed_runbook_is_valid() {
    // The fuzzer (fuzz/) mutates from valid runbooks; a seed that no longer loads would leave it
    // exploring only the error paths.
    Test::new()
        .runbook(&portable(include_str!(
            "../../fuzz/seeds/every-action.toml"
        )))
        .args(&["validate"])
        .stdout("runbook.toml: ok (11 failover steps, 6 fail-back steps)\n")
        .stderr("")
        .run();
}

/// A CA file this machine does not have is refused by `validate` where the runbook names it, and
/// by every command that would connect, before connecting; `plan` still prints. Once the file is
/// there and holds a certificate, the runbook is valid.
#[test]
fn a_ca_file_that_is_not_there_is_refused_where_it_is_named() {
    let runbook = edit(
        &portable(MINIMAL),
        "port = 1433\n",
        "port = 1433\nencryption = \"required\"\nca_file = \"pki/site-ca.pem\"\n",
    );
    let line = 1 + runbook
        .lines()
        .position(|l| l.starts_with("ca_file"))
        .expect("ca_file line");
    let expected = format!(
        "runbook.toml:{line}:11: error: `ca_file` `pki/site-ca.pem` does not exist (a relative path is relative to the runbook's folder)\n"
    );
    for args in [&["validate"][..], &["status", "--live"]] {
        Test::new()
            .runbook(&runbook)
            .args(args)
            .stdout("")
            .stderr(&expected)
            .status(2)
            .run();
    }
    Test::new()
        .runbook(&runbook)
        .args(&["plan", "failover"])
        .stderr("")
        .run();

    let test = Test::new().runbook(&runbook).args(&["validate"]);
    std::fs::create_dir(test.path().join("pki")).unwrap();
    std::fs::write(
        test.path().join("pki/site-ca.pem"),
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    test.stdout("runbook.toml: ok (2 failover steps, 1 fail-back step)\n")
        .stderr("")
        .run();
}
