//! `pcfail lab up/status/disaster/rebuild-primary/down/transcript`: operations on a lab in ANOTHER
//! process, found through DIR/lab.json and reached through its control port.
//!
//! These functions block (std networking, polling): call them from synchronous code, not from inside an
//! async runtime's worker. `up` spawns the `pcfail` binary as a detached daemon (`lab up --foreground`),
//! which runs [`run_foreground`].

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::control::{self, Request};
use crate::engine::{Backlog, BacklogMade, Role, TranscriptEntry, World};
use crate::error::LabError;
use crate::lab::{Disaster, Lab};
use crate::manifest::{LabState, Liveness, Manifest};
use crate::options::LabOptions;
use crate::status::Status;

/// How long `up` waits for the daemon to write a ready lab.json, and `down` for it to stop.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);
/// Lines of lab.log quoted when the daemon dies during start-up.
const LOG_TAIL_LINES: usize = 20;

/// Starts a lab in `dir`. With `foreground`, runs it in this process until `down` or SIGINT/SIGTERM (and
/// must be called outside any async runtime). Otherwise spawns `program lab up --foreground ...` detached
/// (own process group, stdin null, output to DIR/lab.log) and returns once its lab.json says ready.
/// A live lab in `dir` is an error; a stale lab.json (process gone) is taken over.
pub fn up(
    dir: &Path,
    opts: LabOptions,
    foreground: bool,
    program: &Path,
) -> Result<Manifest, LabError> {
    let opts = LabOptions {
        dir: dir.to_path_buf(),
        ..opts
    };
    if foreground {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(LabError::InsideRuntime);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| LabError::io("start a runtime for", dir, e))?;
        runtime.block_on(run_foreground(opts))?;
        return Manifest::load(dir);
    }

    match Manifest::load(dir) {
        Ok(m) => {
            if let Liveness::Running { pid } = m.liveness() {
                let control = m
                    .control
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "not yet open".to_owned());
                return Err(LabError::AlreadyRunning {
                    dir: dir.to_path_buf(),
                    pid,
                    control,
                });
            }
        }
        Err(LabError::NoLab { .. }) => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(dir).map_err(|e| LabError::io("create", dir, e))?;
    let log_path = dir.join("lab.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| LabError::io("open", &log_path, e))?;
    let log_err = log
        .try_clone()
        .map_err(|e| LabError::io("open", &log_path, e))?;

    use std::os::unix::process::CommandExt;
    let mut child = Command::new(program)
        .args(opts.foreground_args())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        // Its own process group: the terminal's Ctrl-C for `lab up` must not reach the daemon.
        .process_group(0)
        .spawn()
        .map_err(|source| LabError::Spawn {
            program: program.to_path_buf(),
            source,
        })?;

    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(LabError::ExitedEarly {
                dir: dir.to_path_buf(),
                status: status.to_string(),
                tail: log_tail(&log_path),
                log: log_path,
            });
        }
        if let Ok(m) = Manifest::load(dir)
            && m.state == LabState::Ready
            && m.pid == Some(child.id())
        {
            return Ok(m);
        }
        if Instant::now() >= deadline {
            // Ours and unready: do not leave a half-started daemon holding the ports.
            let _ = child.kill();
            let _ = child.wait();
            return Err(LabError::NotReady {
                dir: dir.to_path_buf(),
                seconds: READY_TIMEOUT.as_secs(),
                log: log_path,
            });
        }
        std::thread::sleep(POLL);
    }
}

/// Runs a lab in this process (inside the caller's tokio runtime) until a `down` request, SIGINT or
/// SIGTERM, then shuts it down cleanly.
pub async fn run_foreground(opts: LabOptions) -> Result<(), LabError> {
    let lab = Lab::start(opts).await?;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| LabError::io("watch for SIGTERM in", lab.dir(), e))?;
    tokio::select! {
        _ = lab.down_requested() => tracing::info!("down requested"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted"),
        _ = sigterm.recv() => tracing::info!("terminated"),
    }
    lab.shutdown().await
}

/// The lab's status: live through the control port, or from state.json (instances down) when no lab
/// process serves `dir`.
pub fn status(dir: &Path) -> Result<Status, LabError> {
    let manifest = Manifest::load(dir)?;
    if let (Liveness::Running { .. }, Some(control)) = (manifest.liveness(), manifest.control) {
        let response = control::call(dir, control, &Request::Status)?;
        return response.status.ok_or_else(|| LabError::Refused {
            dir: dir.to_path_buf(),
            message: "the status answer was empty".to_owned(),
        });
    }
    let state_path = dir.join("state.json");
    let engine = match std::fs::read(&state_path) {
        Ok(bytes) => {
            let world: World =
                serde_json::from_slice(&bytes).map_err(|source| LabError::BadState {
                    path: state_path,
                    source,
                })?;
            world.status()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::Value::Null,
        Err(e) => return Err(LabError::io("read", state_path, e)),
    };
    Ok(Status::gather(
        dir,
        &manifest,
        false,
        None,
        &engine,
        &|_| false,
    ))
}

/// The primary data center (primary and primary mirror) is lost the realistic way: its instances go
/// silent ([`Disaster::default`]).
pub fn disaster(dir: &Path) -> Result<(), LabError> {
    disaster_with(dir, Disaster::default())
}

/// The primary data center is lost as `how` says (silent or refusing, with or without the share).
pub fn disaster_with(dir: &Path, how: Disaster) -> Result<(), LabError> {
    let request = Request::Disaster {
        refuse: !how.silent,
        share_lost: how.share_lost,
    };
    request_ok(dir, &request)
}

/// One instance's SQL Server service stops: its port refuses connections at once.
pub fn stop_instance(dir: &Path, role: Role) -> Result<(), LabError> {
    request_ok(dir, &Request::StopInstance { role })
}

/// A stopped or lost instance answers again.
pub fn start_instance(dir: &Path, role: Role) -> Result<(), LabError> {
    request_ok(dir, &Request::StartInstance { role })
}

/// The log-shipping share becomes unreachable (false) or reachable again (true).
pub fn set_share_reachable(dir: &Path, reachable: bool) -> Result<(), LabError> {
    request_ok(dir, &Request::Share { reachable })
}

/// Makes a log-shipping backlog in the running lab (see [`Backlog`]).
pub fn make_backlog(dir: &Path, spec: Backlog) -> Result<BacklogMade, LabError> {
    request(dir, &Request::Backlog(spec))?
        .backlog
        .ok_or_else(|| LabError::Refused {
            dir: dir.to_path_buf(),
            message: "the backlog answer was empty".to_owned(),
        })
}

fn request_ok(dir: &Path, request: &Request) -> Result<(), LabError> {
    self::request(dir, request).map(drop)
}

/// The primary data center comes back, rebuilt empty by Topology Builder, on the same ports.
pub fn rebuild_primary(dir: &Path) -> Result<(), LabError> {
    request(dir, &Request::RebuildPrimary).map(drop)
}

/// What clients sent to one instance of the running lab.
pub fn transcript(dir: &Path, role: Role) -> Result<Vec<TranscriptEntry>, LabError> {
    let response = request(dir, &Request::Transcript { role })?;
    Ok(response
        .transcript
        .unwrap_or_default()
        .into_iter()
        .map(TranscriptEntry::from)
        .collect())
}

/// Forgets every instance's transcript (so a test can assert on what one command sent).
pub fn clear_transcripts(dir: &Path) -> Result<(), LabError> {
    request(dir, &Request::ClearTranscripts).map(drop)
}

/// Stops the lab in `dir` and waits until it has saved its state. A stale lab.json is marked stopped; a
/// stopped lab is left as it is.
pub fn down(dir: &Path) -> Result<(), LabError> {
    let mut manifest = Manifest::load(dir)?;
    let pid = match manifest.liveness() {
        Liveness::Stopped => return Ok(()),
        Liveness::Stale { pid } => {
            tracing::warn!(pid, "the lab process is gone; marking the lab stopped");
            manifest.state = LabState::Stopped;
            manifest.pid = None;
            manifest.control = None;
            return manifest.save(dir);
        }
        Liveness::Running { pid } => pid,
    };
    request(dir, &Request::Down)?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let stopped =
            Manifest::load(dir).map(|m| m.state == LabState::Stopped || m.pid != Some(pid));
        if matches!(stopped, Ok(true)) || !crate::fsutil::process_alive(pid) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(LabError::DidNotStop {
                dir: dir.to_path_buf(),
                pid,
                seconds: READY_TIMEOUT.as_secs(),
                log: dir.join("lab.log"),
            });
        }
        std::thread::sleep(POLL);
    }
}

/// Sends a request to the running lab in `dir`, or explains why there is none.
fn request(dir: &Path, request: &Request) -> Result<control::Response, LabError> {
    let manifest = Manifest::load(dir)?;
    match (manifest.liveness(), manifest.control) {
        (Liveness::Running { .. }, Some(control)) => control::call(dir, control, request),
        (Liveness::Running { pid }, None) | (Liveness::Stale { pid }, _) => {
            Err(LabError::NotRunning {
                dir: dir.to_path_buf(),
                pid,
            })
        }
        (Liveness::Stopped, _) => Err(LabError::Stopped {
            dir: dir.to_path_buf(),
        }),
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}
