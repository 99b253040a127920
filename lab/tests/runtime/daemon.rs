//! `lab up` without `--foreground`: a detached daemon process that `status`, `disaster` and `down` reach
//! through lab.json and the control port.
//!
//! `up` spawns a program that behaves like `pcfail lab up --foreground ...`. The `pcfail` binary is not a
//! dependency of this crate, so this test executable plays it: a two-line shell script re-runs this very
//! executable on the test `labd_child`, handing it the arguments through an environment variable.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pcfail_lab::{LabError, LabOptions, LabState, Manifest, Role};

use crate::support::fast_options;

const CHILD_ENV: &str = "PCFAIL_LAB_TEST_DAEMON_ARGS";

/// In a daemon spawned by the test below: runs the lab in the foreground until `down`. As an ordinary
/// test: checks that the flags `up` passes read back into the options they came from.
#[test]
fn labd_child() {
    match std::env::var(CHILD_ENV) {
        Ok(args) => {
            let opts =
                LabOptions::from_foreground_args(args.lines()).expect("daemon arguments parse");
            let dir = opts.dir.clone();
            pcfail_lab::up(&dir, opts, true, Path::new("unused-in-foreground"))
                .expect("daemon ran and stopped");
        }
        Err(_) => {
            let opts = fast_options(Path::new("/tmp/some lab"));
            assert_eq!(
                LabOptions::from_foreground_args(opts.foreground_args()),
                Ok(opts)
            );
        }
    }
}

/// Stops the daemon even when an assertion fails, so no test leaves a process behind.
struct Daemon {
    dir: PathBuf,
    pid: u32,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if pcfail_lab::down(&self.dir).is_err() {
            let _ = std::process::Command::new("kill")
                .arg(self.pid.to_string())
                .status();
        }
    }
}

fn fake_pcfail(folder: &Path) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let script = folder.join("fake-pcfail");
    let text = format!(
        "#!/bin/sh\nexport {CHILD_ENV}=\"$(printf '%s\\n' \"$@\")\"\nexec '{}' --exact daemon::labd_child --nocapture --test-threads=1\n",
        exe.display()
    );
    std::fs::write(&script, text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

fn process_gone(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

#[test]
fn up_starts_a_detached_lab_that_status_disaster_and_down_reach() {
    let scratch = tempfile::tempdir().unwrap();
    let program = fake_pcfail(scratch.path());
    let dir = scratch.path().join("lab");

    let manifest =
        pcfail_lab::up(&dir, fast_options(&dir), false, &program).expect("daemon becomes ready");
    let pid = manifest.pid.expect("a ready lab names its process");
    let daemon = Daemon {
        dir: dir.clone(),
        pid,
    };
    assert_ne!(pid, std::process::id(), "the lab runs in its own process");
    assert_eq!(manifest.state, LabState::Ready);

    let again = pcfail_lab::up(&dir, fast_options(&dir), false, &program).unwrap_err();
    assert!(
        matches!(again, LabError::AlreadyRunning { pid: p, .. } if p == pid),
        "{again}"
    );

    let status = pcfail_lab::status(&dir).unwrap();
    assert!(status.running && status.pid == Some(pid));
    assert!(status.instances.iter().all(|i| i.up));

    pcfail_lab::disaster(&dir).unwrap();
    let status = pcfail_lab::status(&dir).unwrap();
    let primary = status
        .instances
        .iter()
        .find(|i| i.role == Role::Primary)
        .unwrap();
    assert!(!primary.up);

    pcfail_lab::down(&dir).unwrap();
    let stopped = Manifest::load(&dir).unwrap();
    assert_eq!((stopped.state, stopped.pid), (LabState::Stopped, None));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !process_gone(pid) {
        assert!(
            Instant::now() < deadline,
            "daemon {pid} still running after down"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!pcfail_lab::status(&dir).unwrap().running);
    drop(daemon);
}
