//! PowerShell remoting (`[powershell.remote]`): pcfail runs where the SQL side is and its cmdlets run
//! in a session on a Front End, over TCP to the lab's instances and through the real PowerShell
//! adapter to the lab shell, which plays the remote computer (its data center, its WinRM ports, its
//! one Windows account).

use pcfail_lab::Role;
use serde_json::Value;

use crate::lab_support::{
    LabRig, RestoreJob, assert_exit, assert_failed_over, database, files_containing, started_steps,
    text,
};

/// The lab's Front End server in the data center of `role`'s instance.
fn front_end(rig: &LabRig, role: Role) -> String {
    let manifest = rig.manifest();
    let dc = &manifest.instance(role).expect("instance").data_center;
    manifest
        .front_end_servers
        .iter()
        .find(|f| &f.data_center == dc)
        .expect("a Front End server in every data center")
        .fqdn
        .clone()
}

/// Adds `[powershell.remote]` to the lab runbook: `computer` and more `key = value` lines.
fn remote_to(rig: &LabRig, computer: &str, more: &str) {
    let mut runbook = std::fs::read_to_string(rig.runbook()).expect("runbook");
    runbook.push_str(&format!(
        "\n[powershell.remote]\ncomputer = \"{computer}\"\n{more}\n"
    ));
    std::fs::write(rig.runbook(), runbook).expect("write runbook");
    assert_exit(&rig.pcfail(&["validate"]), 0);
}

/// [`remote_to`] as the lab's Windows account (its password variable named, not set); its details.
fn remote_as_windows_account(rig: &LabRig, computer: &str, more: &str) -> pcfail_lab::LoginInfo {
    let windows = rig
        .manifest()
        .windows_login
        .clone()
        .expect("a Windows account");
    let account = format!(
        "user = \"{}\"\npassword_env = \"{}\"",
        windows.user.replace('\\', "\\\\"),
        windows.password_env
    );
    remote_to(rig, computer, &format!("{more}\n{account}"));
    windows
}

/// The `powershell` command records of a journal, in order.
fn cmdlets(journal: &[Value]) -> Vec<&Value> {
    journal
        .iter()
        .filter(|r| r["event"] == "command" && r["target"] == "powershell")
        .collect()
}

#[test]
fn a_failover_runs_its_cmdlets_in_a_session_on_the_backup_data_centers_front_end() {
    let rig = LabRig::start(RestoreJob::Default);
    let fe = front_end(&rig, Role::Backup);
    let windows = remote_as_windows_account(&rig, &fe, "authentication = \"Negotiate\"");
    let pool = rig.pool();
    let plan = rig.pcfail(&["plan", "failover", "--pool", &pool]);
    assert_exit(&plan, 0);
    let shown = text(&plan.stdout);
    assert!(
        shown.contains(&format!("on Skype for Business Management Shell on {fe}"))
            && shown.contains(&format!(
                "New-PSSession -ComputerName '{fe}' -Authentication Negotiate -Credential (account '{}', password from ${{env:{}}})",
                windows.user, windows.password_env
            )),
        "{shown}"
    );

    let env = [(windows.password_env.as_str(), windows.password.as_str())];
    let status = text(&rig.pcfail_with_env(&["status", "--live"], &env).stdout);
    assert!(
        status.contains(&format!(
            "Pool state      Normal (Get-CsPersistentChatState -Identity service:{pool}, in a remoting session on {fe})"
        )),
        "{status}"
    );

    let at_disaster = rig.disaster();
    let output = rig.pcfail_with_env(&["failover", "--pool", &pool, "--yes"], &env);
    assert_exit(&output, 0);
    assert_failed_over(&rig, &at_disaster, &rig.status());

    // The host opened its session first and imported the module there; the journal's situation
    // says where, in the shell's own words.
    let journals = rig.journals();
    let run = journals.last().expect("the failover's journal");
    let start = run
        .iter()
        .find(|r| r["event"] == "captured" && r["key"] == "situation")
        .expect("the situation record");
    let session = &start["value"]["observation"]["shell"]["remoting_session"];
    assert!(
        session["ComputerName"] == fe.as_str() && session["State"] == "Opened",
        "{start:#}"
    );
    assert!(
        !cmdlets(run).is_empty(),
        "the failover's cmdlets are journaled"
    );
    for (what, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        assert!(
            !text(bytes).contains(&windows.password),
            "the password is on {what}"
        );
    }
    assert_eq!(
        files_containing(&rig.state_dir(), &windows.password),
        Vec::<std::path::PathBuf>::new()
    );
}

#[test]
fn a_session_to_a_front_end_in_the_lost_data_center_stops_the_failover_before_it_changes_anything()
{
    let rig = LabRig::start(RestoreJob::Default);
    let fe = front_end(&rig, Role::Primary);
    remote_to(&rig, &fe, "");
    let pool = rig.pool();
    let plan = rig.pcfail(&["plan", "failover", "--pool", &pool]);
    assert!(
        text(&plan.stdout).contains(&format!(
            "`[powershell.remote] computer` is `{fe}`, in data center ATL, the primary's: after losing it, no cmdlet can run"
        )),
        "{}",
        text(&plan.stdout)
    );
    rig.disaster();
    let output = rig.failover();
    let stderr = text(&output.stderr);
    // Refused (exit 3): without its Management Shell the failover would stop after its point
    // of no return.
    assert_exit(&output, 3);
    assert!(
        stderr.contains(&format!("Connecting to remote server {fe} failed")),
        "{stderr}"
    );
    assert_eq!(
        database(&rig.status(), Role::Backup, "mgc")["state_desc"],
        "RESTORING",
        "{stderr}"
    );
    for journal in rig.journals() {
        assert_eq!(started_steps(&journal), Vec::<String>::new(), "{stderr}");
    }
}

#[test]
fn a_wrong_password_or_a_computer_nobody_knows_is_refused_in_powershells_words() {
    let rig = LabRig::start(RestoreJob::Default);
    let fe = front_end(&rig, Role::Backup);
    let windows = remote_as_windows_account(&rig, &fe, "");
    let live = |env: &[(&str, &str)]| {
        let output = rig.pcfail_with_env(&["status", "--live", "--format", "json"], env);
        assert_exit(&output, 0);
        let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
        report
    };
    let report = live(&[(&windows.password_env, &windows.password)]);
    assert_eq!(report["shell"]["reachable"], true, "{report:#}");

    let report = live(&[(&windows.password_env, "not the password")]);
    let error = report["shell"]["error"].as_str().unwrap_or_default();
    assert!(
        report["shell"]["reachable"] == false
            && error.contains(&format!("Connecting to remote server {fe} failed"))
            && error.contains("Access is denied"),
        "{report:#}"
    );

    let report = live(&[]);
    let error = report["shell"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!(
            "no password for the remoting session's account `{}`: set the environment variable {}",
            windows.user, windows.password_env
        )),
        "{report:#}"
    );

    // A fault rule for `New-PSSession` strikes when the session opens.
    rig.set_faults(serde_json::json!([
        { "kind": "cmdlet", "cmdlet": "New-PSSession", "error": "The WinRM client received an HTTP server error status (500).", "times": 1 }
    ]));
    let report = live(&[(&windows.password_env, &windows.password)]);
    let error = report["shell"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("HTTP server error status (500)"),
        "{report:#}"
    );

    // WinRM listens on 5985 (5986 with SSL); the endpoint must exist there.
    let env = [(windows.password_env.as_str(), windows.password.as_str())];
    for (extra, expected) in [
        ("port = 5986", "WinRM cannot complete the operation"),
        (
            "configuration_name = \"Microsoft.Exchange\"",
            "Cannot find the Microsoft.Exchange session configuration",
        ),
    ] {
        let marker = format!("computer = \"{fe}\"");
        rig.edit_runbook(&marker, &format!("{marker}\n{extra}"));
        let report = live(&env);
        let error = report["shell"]["error"].as_str().unwrap_or_default();
        assert!(error.contains(expected), "{extra}: {report:#}");
        rig.edit_runbook(&format!("{marker}\n{extra}"), &marker);
    }

    rig.edit_runbook(
        &format!("computer = \"{fe}\""),
        "computer = \"fe-nobody.litwareinc.com\"",
    );
    let report = live(&[(&windows.password_env, &windows.password)]);
    let error = report["shell"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("Cannot find the computer fe-nobody.litwareinc.com"),
        "{report:#}"
    );
}
