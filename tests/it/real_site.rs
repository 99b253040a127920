//! The paths a real deployment takes, over TCP against a lab that looks like a real site: TLS
//! required (TDS 7.x) and strict (TDS 8.0) with the certificate checked against the lab's CA and
//! refused for another CA or another name, named instances found through the lab's SQL Browser,
//! explicit Windows credentials verified by the lab (NTLMv2) through a whole failover that writes
//! the password nowhere, and Windows paths with a separate pcfail-side view.

use pcfail_lab::{Encryption, Role};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use serde_json::Value;

use crate::lab_support::{LabRig, RestoreJob, assert_exit, files_containing, text};

/// `status --live --format json`, which connects to every instance read-only.
fn live(rig: &LabRig, env: &[(&str, &str)]) -> Value {
    let output = rig.pcfail_with_env(&["status", "--live", "--format", "json"], env);
    assert_exit(&output, 0);
    serde_json::from_slice(&output.stdout).expect("one JSON document")
}

/// The roles `status --live` could not ask, with the reason it gives.
fn unreachable(report: &Value) -> Vec<(String, String)> {
    report["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .filter(|i| i["reachable"] != true)
        .map(|i| {
            (
                i["role"].as_str().unwrap_or("?").to_owned(),
                i["error"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// The users that logged in to `role`, in order.
fn logins(rig: &LabRig, role: Role) -> Vec<String> {
    rig.transcript(role)
        .into_iter()
        .filter(|e| e.kind == "login")
        // The simulated Management Shell reaches the Central Management Store's SQL Server as the
        // Front End server does, under its own login: not one of pcfail's.
        .filter(|e| {
            !e.text
                .contains("app=Skype for Business Server Management Shell")
        })
        .filter_map(|e| {
            e.text
                .strip_prefix("user=")
                .and_then(|t| t.split(' ').next())
                .map(str::to_owned)
        })
        .collect()
}

#[test]
fn the_lab_runbook_reaches_named_instances_over_tls_checked_against_the_lab_ca() {
    let rig = LabRig::start(RestoreJob::Default);
    let runbook = std::fs::read_to_string(rig.runbook()).unwrap();
    for expected in [
        "instance = \"PCHAT\"",
        "encryption = \"required\"",
        "ca_file = ",
        "certificate_host = \"dal-sql-001.litwareinc.com\"",
        "pcfail_copy_folder = ",
        "backup_directory = 'D:\\LogShipping'",
    ] {
        assert!(
            runbook.contains(expected),
            "`{expected}` in the lab runbook:\n{runbook}"
        );
    }
    assert!(!runbook.contains("\nport = "), "no bare ports:\n{runbook}");
    let report = live(&rig, &[]);
    assert_eq!(report["situation"]["kind"], "normal", "{report:#}");
    assert_eq!(unreachable(&report), Vec::<(String, String)>::new());
    // The copy folder is named as SQL Server names it, and listed where pcfail reaches it.
    let copy = &report["copy_folder"];
    assert_eq!(copy["path"], "D:\\LogShippingCopy", "{copy:#}");
    assert_eq!(
        copy["pcfail_path"],
        rig.copy_folder().display().to_string(),
        "{copy:#}"
    );
    assert_eq!(copy["reachable"], true, "{copy:#}");
    for role in Role::ALL {
        assert!(logins(&rig, role).iter().all(|u| u == "sa"), "{role:?}");
        assert!(!logins(&rig, role).is_empty(), "{role:?} was asked");
    }
}

/// A CA certificate that did not issue the lab's certificates.
fn foreign_ca(dir: &std::path::Path) -> std::path::PathBuf {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "not the lab CA");
    let cert = params.self_signed(&KeyPair::generate().unwrap()).unwrap();
    let path = dir.join("foreign-ca.pem");
    std::fs::write(&path, cert.pem()).unwrap();
    path
}

#[test]
fn a_certificate_the_runbooks_ca_did_not_issue_is_refused_before_any_login() {
    let rig = LabRig::start(RestoreJob::Default);
    let lab_ca = rig
        .manifest()
        .ca_file
        .clone()
        .expect("a TLS lab has a CA file");
    let foreign = foreign_ca(&rig.lab_dir());
    rig.edit_runbook(
        &lab_ca.display().to_string(),
        &foreign.display().to_string(),
    );
    rig.clear_transcripts();
    let report = live(&rig, &[]);
    let refused = unreachable(&report);
    assert_eq!(refused.len(), 4, "{report:#}");
    for (role, error) in &refused {
        assert!(
            error.contains("certificate"),
            "`{role}` names the certificate: {error}"
        );
    }
    for role in Role::ALL {
        assert_eq!(logins(&rig, role), Vec::<String>::new(), "{role:?}");
    }
}

#[test]
fn strict_encryption_speaks_tds_8_and_a_tds_7_client_is_refused() {
    let rig = LabRig::start_with(RestoreJob::Default, |o| o.encryption = Encryption::Strict);
    let runbook = std::fs::read_to_string(rig.runbook()).unwrap();
    assert!(runbook.contains("encryption = \"strict\""), "{runbook}");
    let report = live(&rig, &[]);
    assert_eq!(report["situation"]["kind"], "normal", "{report:#}");
    assert_eq!(unreachable(&report), Vec::<(String, String)>::new());

    rig.edit_runbook("encryption = \"strict\"", "encryption = \"required\"");
    let report = live(&rig, &[]);
    assert_eq!(unreachable(&report).len(), 4, "{report:#}");
}

/// Points every instance of the lab runbook at the lab's Windows account; its login details.
fn use_windows_account(rig: &LabRig) -> pcfail_lab::LoginInfo {
    let windows = rig
        .manifest()
        .windows_login
        .clone()
        .expect("a Windows account");
    let account = windows.user.replace('\\', "\\\\");
    rig.edit_runbook("auth = \"sql\"", "auth = \"windows\"");
    rig.edit_runbook("user = \"sa\"", &format!("user = \"{account}\""));
    rig.edit_runbook(
        &format!("password_env = \"{}\"", rig.manifest().login.password_env),
        &format!("password_env = \"{}\"", windows.password_env),
    );
    assert_exit(&rig.pcfail(&["validate"]), 0);
    windows
}

#[test]
fn explicit_windows_credentials_are_verified_by_the_lab_through_ntlm() {
    let rig = LabRig::start(RestoreJob::Default);
    let windows = use_windows_account(&rig);
    rig.clear_transcripts();
    let report = live(&rig, &[(&windows.password_env, &windows.password)]);
    assert_eq!(report["situation"]["kind"], "normal", "{report:#}");
    for role in Role::ALL {
        let users = logins(&rig, role);
        assert!(
            !users.is_empty() && users.iter().all(|u| *u == windows.user),
            "{role:?}: {users:?}"
        );
    }

    rig.clear_transcripts();
    let report = live(&rig, &[(&windows.password_env, "not the password")]);
    let refused = unreachable(&report);
    assert_eq!(refused.len(), 4, "{report:#}");
    for (role, error) in &refused {
        assert!(error.contains("18452"), "`{role}`: {error}");
    }
    for role in Role::ALL {
        assert_eq!(logins(&rig, role), Vec::<String>::new(), "{role:?}");
    }
}

#[test]
fn an_instance_the_browser_does_not_know_is_reported_as_not_found() {
    let rig = LabRig::start(RestoreJob::Default);
    rig.edit_runbook("instance = \"PCHAT\"", "instance = \"NOSUCH\"");
    let output = rig.pcfail(&["status", "--live", "--format", "json"]);
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&output.stdout), text(&output.stderr)));
    let refused = unreachable(&report);
    assert_eq!(refused.len(), 4, "{report:#}");
    for (role, error) in &refused {
        assert!(
            error.contains("SQL Browser") && error.contains("NOSUCH"),
            "`{role}`: {error}"
        );
    }
}

#[test]
fn a_failover_as_a_windows_account_logs_in_through_ntlm_and_writes_its_password_nowhere() {
    let rig = LabRig::start(RestoreJob::Default);
    let windows = use_windows_account(&rig);
    rig.disaster();
    rig.clear_transcripts();
    let pool = rig.pool();
    let output = rig.pcfail_with_env(
        &["failover", "--pool", &pool, "--yes"],
        &[(&windows.password_env, &windows.password)],
    );
    assert_exit(&output, 0);
    // The backup instance did the work, logged in as the Windows account.
    let users = logins(&rig, Role::Backup);
    assert!(
        !users.is_empty() && users.iter().all(|u| *u == windows.user),
        "{users:?}"
    );
    for (what, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        assert!(
            !text(bytes).contains(&windows.password),
            "the password is on {what}"
        );
    }
    assert!(
        !rig.journals().is_empty(),
        "the run was journaled in {}",
        rig.state_dir().display()
    );
    assert_eq!(
        files_containing(&rig.state_dir(), &windows.password),
        Vec::<std::path::PathBuf>::new()
    );
}

#[test]
fn a_certificate_for_another_name_is_refused_before_any_login() {
    let rig = LabRig::start(RestoreJob::Default);
    rig.edit_runbook(
        "certificate_host = \"dal-sql-001.litwareinc.com\"",
        "certificate_host = \"dal-sql-009.litwareinc.com\"",
    );
    rig.clear_transcripts();
    let report = live(&rig, &[]);
    let refused = unreachable(&report);
    assert_eq!(
        refused
            .iter()
            .map(|(role, _)| role.as_str())
            .collect::<Vec<_>>(),
        ["backup"],
        "{report:#}"
    );
    assert!(refused[0].1.contains("certificate"), "{}", refused[0].1);
    assert_eq!(logins(&rig, Role::Backup), Vec::<String>::new());
}

/// A password whose variable is unset is asked for at the terminal (a pseudo-terminal made by
/// util-linux `script`), once for all the instances that use it, without echo.
#[test]
fn a_password_left_out_of_the_environment_is_asked_once_at_the_terminal_without_echo() {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};

    let rig = LabRig::start(RestoreJob::Default);
    let login = rig.manifest().login.clone();
    let quote = |p: &std::path::Path| format!("'{}'", p.display());
    let inner = format!(
        "{} status --live --runbook {} --state-dir {}",
        quote(std::path::Path::new(env!("CARGO_BIN_EXE_pcfail"))),
        quote(&rig.runbook()),
        quote(&rig.state_dir()),
    );
    rig.clear_transcripts();
    let mut child = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .env_remove(&login.password_env)
        .env_remove("PCFAIL_RUNBOOK")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux `script` is installed");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    // Typed only once the prompt is there and echo is off: earlier, the terminal would echo it,
    // as it would a person's typing ahead.
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !text(&seen).contains("is not set): ") {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => seen.extend(chunk),
            Err(_) => panic!("no prompt within 30 s: {}", text(&seen)),
        }
    }
    wait_for_echo_off(child.id(), deadline);
    write!(stdin, "{}\r", login.password).expect("type the password");
    let status = child.wait().expect("pcfail finished");
    drop(stdin);
    reader.join().expect("reader");
    seen.extend(rx.try_iter().flatten());
    let shown = text(&seen);
    assert!(status.success(), "{shown}");
    assert_eq!(
        shown
            .matches(&format!(
                "password of SQL login `{}` (${} is not set): ",
                login.user, login.password_env
            ))
            .count(),
        1,
        "{shown}"
    );
    assert!(!shown.contains(&login.password), "echoed: {shown}");
    assert!(
        shown.contains("Persistent Chat pool atl-cs-001.litwareinc.com: normal"),
        "{shown}"
    );
    for role in Role::ALL {
        assert_eq!(
            logins(&rig, role),
            std::slice::from_ref(&login.user),
            "{role:?}"
        );
    }
}

/// Waits until the terminal of the `pcfail` process under `script` (pid `root`) has echo off: the
/// prompt is printed just before rpassword turns echo off, so the prompt alone is not enough.
fn wait_for_echo_off(root: u32, deadline: std::time::Instant) {
    loop {
        let mut pending = vec![root];
        let mut terminal = None;
        while let Some(pid) = pending.pop() {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            if exe.file_name().is_some_and(|n| n == "pcfail") {
                terminal = std::fs::read_link(format!("/proc/{pid}/fd/0")).ok();
            }
            pending.extend(crate::lab_support::children_of(pid));
        }
        if let Some(tty) = terminal {
            let settings = std::process::Command::new("stty")
                .arg("-a")
                .arg("-F")
                .arg(&tty)
                .output()
                .expect("stty");
            if text(&settings.stdout)
                .split_whitespace()
                .any(|w| w == "-echo")
            {
                return;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the terminal's echo was never turned off"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Every `encryption` level against a server that requires TLS and one that has no certificate:
/// what SQL Server's negotiation allows connects [MS-TDS 2.2.6.5], and what it refuses is said
/// in terms of the setting to change, not of the TLS library's detail.
#[test]
fn each_encryption_level_connects_where_the_server_allows_it_and_says_why_not_otherwise() {
    let connects = "";
    let needs_tls =
        "the server requires encryption (Force Encryption); set `encryption = \"required\"`";
    let no_certificate_off = "the server offers no encryption, not even for the login that `encryption = \"off\"` encrypts; it has no certificate";
    let no_certificate = "the server offers no encryption (it has no certificate); configure one on the server, as encryption is required here";
    let not_tds8 = "SQL Server speaks TDS 8.0 from 2022 on; for an older server use `required`";
    let cases = [
        (
            Encryption::Required,
            [
                ("not_supported", needs_tls),
                ("off", connects),
                ("on", connects),
                ("required", connects),
                ("strict", connects),
            ],
        ),
        (
            Encryption::NotSupported,
            [
                ("not_supported", connects),
                ("off", no_certificate_off),
                ("on", no_certificate),
                ("required", no_certificate),
                ("strict", not_tds8),
            ],
        ),
    ];
    for (server, levels) in cases {
        let rig = LabRig::start_with(RestoreJob::Default, |o| o.encryption = server);
        let mut current = pcfail_lab::encryption_key(server).to_owned();
        for (level, expected) in levels {
            rig.edit_runbook(
                &format!("encryption = \"{current}\""),
                &format!("encryption = \"{level}\""),
            );
            current = level.to_owned();
            let report = live(&rig, &[]);
            let refused = unreachable(&report);
            if expected.is_empty() {
                assert_eq!(refused, Vec::new(), "{server:?} server, `{level}`");
                continue;
            }
            assert_eq!(refused.len(), 4, "{server:?} server, `{level}`: {report:#}");
            for (role, error) in &refused {
                assert!(
                    error.ends_with(expected),
                    "{server:?} server, `{level}`, `{role}`: {error}"
                );
            }
        }
    }
}
