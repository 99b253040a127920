//! A plain `plan` (and `validate`) opens no connection and starts no process: the runbook points every
//! instance at a TCP listener this test owns and the PowerShell program at a script that would leave a
//! marker file; afterwards no connection is pending and no marker exists.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::test::{SHIPPED, Test, edit};

/// A "PowerShell" that proves it was started by creating the file named by its first argument.
fn write_marker_script(path: &Path) {
    std::fs::write(path, "#!/bin/sh\ntouch \"$1\"\n").expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod script");
}

#[test]
fn plan_does_not_connect_or_start_a_process() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("address").port();

    let test = Test::new();
    let dir = test.path().to_owned();
    let script = dir.join("fake-powershell.sh");
    write_marker_script(&script);
    // The script works: started directly, it leaves its marker (so its absence below means something).
    let probe = dir.join("probe");
    let status = Command::new(&script)
        .arg(&probe)
        .status()
        .expect("run script");
    assert!(status.success() && probe.exists());

    let marker = dir.join("started");
    let mut runbook = SHIPPED.to_owned();
    for host in ["atl-sql-001", "atl-sql-002", "dal-sql-001", "dal-sql-002"] {
        runbook = edit(
            &runbook,
            &format!("host = \"{host}.litwareinc.com\""),
            "host = \"127.0.0.1\"",
        );
    }
    runbook = runbook.replace("port = 1433", &format!("port = {port}"));
    // SQL logins everywhere: integrated authentication is not in every build, and validate says so.
    runbook = crate::test::portable(&runbook);
    runbook = edit(
        &runbook,
        "program = \"powershell.exe\"",
        &format!("program = {:?}", script.display().to_string()),
    );
    runbook = edit(
        &runbook,
        "args = []",
        &format!("args = [{:?}]", marker.display().to_string()),
    );
    std::fs::write(dir.join("runbook.toml"), &runbook).expect("write runbook");

    let runs: [&[&str]; 4] = [
        &["plan", "failover", "--pool", "atl-cs-001.litwareinc.com"],
        &["plan", "failback"],
        &["plan", "failover", "--format", "json"],
        &["validate"],
    ];
    for args in runs {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pcfail"));
        let output = command
            .current_dir(&dir)
            .args(args)
            .args(["--runbook", "runbook.toml"])
            .output()
            .expect("run pcfail");
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("127.0.0.1") || args == ["validate"]
        );
    }

    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Ok((_, peer)) => panic!("plan connected to the instance listener from {peer}"),
        Err(e) => panic!("accept failed: {e}"),
    }
    assert!(!marker.exists(), "plan started the PowerShell program");
    drop(test);
}
