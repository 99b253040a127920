//! The bench's lab and child processes: a lab with a backlog, saved once and restored for every
//! repetition, so each arm starts from the very same state; and children measured with wait4(2).
//!
//! The lab runs as its own daemon (`pcfail lab up`), never inside the bench, so every arm (pcfail,
//! a tiberius loop in this process, `tsql`) talks to the same separate process over TCP. A lab's
//! files name its own folder (msdb's backup directories, runbook.toml), so a snapshot is restored to
//! the path it was made at.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use pcfail_lab::{Manifest, Role};

/// The programs the arms run.
pub(crate) struct Tools {
    pub pcfail: PathBuf,
    pub tsql: Option<PathBuf>,
    /// An earlier build of pcfail (`--baseline`), measured as one more arm in the same run.
    pub baseline: Option<PathBuf>,
}

impl Tools {
    /// `pcfail` is the release binary beside this one (`cargo build --release` builds both).
    pub(crate) fn find(baseline: Option<PathBuf>) -> anyhow::Result<Tools> {
        let me = std::env::current_exe().context("cannot find the bench binary")?;
        let pcfail = me.with_file_name("pcfail");
        ensure!(
            pcfail.exists(),
            "`{}` is missing: run `cargo build --release --workspace` first",
            pcfail.display()
        );
        let tsql = which("tsql");
        if let Some(b) = &baseline {
            ensure!(b.exists(), "the baseline `{}` is missing", b.display());
        }
        Ok(Tools {
            pcfail,
            tsql,
            baseline,
        })
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// How a bench lab runs.
#[derive(Clone, Debug)]
pub(crate) struct LabSpec {
    /// BACKUP and RESTORE take size / rate (the lab's duration model); None: no time of their own.
    pub io_mb_per_s: Option<f64>,
}

impl LabSpec {
    /// Real time (clock speed 1) and a scheduler that wakes once a second, so no job and little
    /// chat traffic competes with what is measured. The plain lab (plaintext TDS, bare ports, Linux
    /// paths): every arm, pcfail's and the hand-written ones alike, pays for statements and files
    /// alone, not for TLS handshakes or Browser lookups that only some of them would make.
    fn args(&self) -> Vec<String> {
        let mut args = [
            "--clock-speed",
            "1",
            "--tick-ms",
            "1000",
            "--encryption",
            "not_supported",
            "--ports",
            "--linux-paths",
        ]
        .map(String::from)
        .to_vec();
        if let Some(rate) = self.io_mb_per_s {
            args.extend(["--io-mb-per-s".to_owned(), rate.to_string()]);
        }
        args
    }
}

/// A stopped lab saved aside, restored to `live` for each repetition.
pub(crate) struct Snapshot {
    saved: PathBuf,
    live: PathBuf,
    spec: LabSpec,
}

impl Snapshot {
    /// Starts a lab at `live`, makes the backlog, stops it and moves it to `saved`.
    pub(crate) fn make(
        tools: &Tools,
        live: &Path,
        saved: &Path,
        spec: LabSpec,
        pending: usize,
        applied: usize,
        copied: bool,
    ) -> anyhow::Result<Snapshot> {
        remove(tools, live)?;
        remove(tools, saved)?;
        pcfail_ok(tools, &lab_up_args(live, &spec))?;
        let mut backlog = vec![
            "lab".to_owned(),
            "backlog".into(),
            "--dir".into(),
            live.display().to_string(),
            "--pending".into(),
            pending.to_string(),
            "--applied".into(),
            applied.to_string(),
        ];
        if !copied {
            backlog.push("--not-copied".into());
        }
        let made = pcfail_ok(tools, &backlog);
        pcfail_ok(tools, &lab_args("down", live))?;
        made?;
        std::fs::rename(live, saved)
            .with_context(|| format!("cannot move `{}` aside", live.display()))?;
        Ok(Snapshot {
            saved: saved.to_owned(),
            live: live.to_owned(),
            spec,
        })
    }

    /// The saved lab, restored and running, its primary data center lost (silently).
    pub(crate) fn start(&self, tools: &Tools) -> anyhow::Result<LiveLab> {
        remove(tools, &self.live)?;
        let status = Command::new("cp")
            .arg("-a")
            .arg(&self.saved)
            .arg(&self.live)
            .status()
            .context("cp")?;
        ensure!(status.success(), "cannot restore the lab snapshot");
        pcfail_ok(tools, &lab_up_args(&self.live, &self.spec))?;
        let live = LiveLab {
            dir: self.live.clone(),
            manifest: Manifest::load(&self.live)?,
            pcfail: tools.pcfail.clone(),
        };
        pcfail_ok(tools, &lab_args("disaster", &self.live))?;
        Ok(live)
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.saved);
    }
}

/// A running lab; stopped and removed when dropped.
pub(crate) struct LiveLab {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pcfail: PathBuf,
}

impl LiveLab {
    pub(crate) fn address(&self, role: Role) -> anyhow::Result<std::net::SocketAddr> {
        Ok(self
            .manifest
            .instance(role)
            .context("instance missing from lab.json")?
            .address)
    }

    /// The `.trn` files of the copy folder, by name (oldest first).
    pub(crate) fn copy_folder_files(&self) -> anyhow::Result<Vec<PathBuf>> {
        trn_files(&self.manifest.copy_folder)
    }

    /// `pcfail ARGS` against this lab: its runbook, a state folder inside it, the password in the
    /// environment (never in argv).
    pub(crate) fn pcfail(&self, args: &[&str]) -> Command {
        self.pcfail_of(&self.pcfail, args)
    }

    /// [`LiveLab::pcfail`] with another build of pcfail (the baseline).
    pub(crate) fn pcfail_of(&self, program: &std::path::Path, args: &[&str]) -> Command {
        let mut command = Command::new(program);
        command
            .arg("--runbook")
            .arg(self.dir.join("runbook.toml"))
            .arg("--state-dir")
            .arg(self.state_dir())
            .args(args)
            .env(
                &self.manifest.login.password_env,
                &self.manifest.login.password,
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        command
    }

    pub(crate) fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// The journal of the one run this lab has seen.
    pub(crate) fn journal(&self) -> anyhow::Result<crate::journal::Journal> {
        let runs = self.state_dir().join("runs");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&runs)
            .with_context(|| format!("no journals in `{}`", runs.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        files.sort();
        let last = files.last().context("no journal was written")?;
        crate::journal::Journal::read(last)
    }
}

impl Drop for LiveLab {
    fn drop(&mut self) {
        let _ = Command::new(&self.pcfail)
            .args(["lab", "down", "--dir"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn trn_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list `{}`", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "trn"))
        .collect();
    files.sort();
    Ok(files)
}

fn lab_args(verb: &str, dir: &Path) -> Vec<String> {
    vec![
        "lab".to_owned(),
        verb.to_owned(),
        "--dir".to_owned(),
        dir.display().to_string(),
    ]
}

fn lab_up_args(dir: &Path, spec: &LabSpec) -> Vec<String> {
    let mut args = lab_args("up", dir);
    args.extend(spec.args());
    args
}

fn pcfail_ok(tools: &Tools, args: &[String]) -> anyhow::Result<()> {
    let out = Command::new(&tools.pcfail)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run pcfail")?;
    if !out.status.success() {
        bail!(
            "`pcfail {}` failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn remove(tools: &Tools, dir: &Path) -> anyhow::Result<()> {
    if dir.join("lab.json").exists() {
        // A lab left running by an interrupted bench.
        let _ = pcfail_ok(tools, &lab_args("down", dir));
    }
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove `{}`", dir.display()))
        }
        _ => Ok(()),
    }
}

/// What one child process cost.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChildCost {
    pub wall: Duration,
    pub cpu: Duration,
    /// Peak resident set size, KiB (of the child, or of a descendant it waited for if larger).
    pub max_rss_kib: u64,
    pub code: i32,
}

/// The hidden first argument that makes this binary the measuring trampoline ([`trampoline`]).
pub(crate) const TRAMPOLINE: &str = "__measure-child";

/// Runs `command` to the end with its output discarded (or kept in `log`) and measures it.
///
/// Through a trampoline, a fresh exec of this binary that starts the command and waits for it:
/// Linux carries a process's peak RSS across fork and exec (the new program starts with the
/// high-water mark of the address space it replaced), so a child started from this process, which
/// holds file lists and a lab's snapshot, would report this process's peak as its own. The
/// trampoline's address space is new and small; its child's figure is the child's own.
pub(crate) fn measure(command: &mut Command, log: Option<&Path>) -> anyhow::Result<ChildCost> {
    let result = tempfile::NamedTempFile::new()?;
    let mut outer = Command::new(std::env::current_exe()?);
    outer
        .arg(TRAMPOLINE)
        .arg(result.path())
        .arg(command.get_program())
        .args(command.get_args())
        .stdin(Stdio::null());
    if let Some(dir) = command.get_current_dir() {
        outer.current_dir(dir);
    }
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => outer.env(name, value),
            None => outer.env_remove(name),
        };
    }
    match log {
        Some(path) => {
            let file = std::fs::File::create(path)?;
            outer.stdout(file.try_clone()?).stderr(file);
        }
        None => {
            outer.stdout(Stdio::null()).stderr(Stdio::null());
        }
    }
    let status = outer.status().context("cannot start the trampoline")?;
    ensure!(status.success(), "the measuring trampoline failed");
    let text = std::fs::read_to_string(result.path())?;
    let numbers: Vec<i64> = text
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .context("the trampoline's answer")?;
    let [wall_us, cpu_us, max_rss_kib, code] = numbers[..] else {
        anyhow::bail!("the trampoline answered `{text}`");
    };
    let us = |n: i64| Duration::from_micros(u64::try_from(n).unwrap_or(0));
    Ok(ChildCost {
        wall: us(wall_us),
        cpu: us(cpu_us),
        max_rss_kib: u64::try_from(max_rss_kib).unwrap_or(0),
        code: i32::try_from(code).unwrap_or(-1),
    })
}

/// The trampoline: `TRAMPOLINE RESULT PROGRAM ARGS...` runs PROGRAM with this process's stdio and
/// environment, waits for it and writes `wall_us cpu_us max_rss_kib exit_code` to RESULT.
pub(crate) fn trampoline(args: &[std::ffi::OsString]) -> anyhow::Result<()> {
    let [result, program, rest @ ..] = args else {
        anyhow::bail!("usage: {TRAMPOLINE} RESULT PROGRAM [ARGS...]");
    };
    let started = Instant::now();
    let child = Command::new(program)
        .args(rest)
        .spawn()
        .with_context(|| format!("cannot start `{}`", program.to_string_lossy()))?;
    let pid = libc::pid_t::try_from(child.id()).context("pid")?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet waited for (std's `Child` is dropped without waiting),
    // and both out-pointers are valid for the call.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    ensure!(
        rc == pid,
        "wait4 failed: {}",
        std::io::Error::last_os_error()
    );
    let us = |t: libc::timeval| t.tv_sec * 1_000_000 + t.tv_usec;
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    std::fs::write(
        result,
        format!(
            "{} {} {} {code}",
            wall.as_micros(),
            us(usage.ru_utime) + us(usage.ru_stime),
            usage.ru_maxrss
        ),
    )?;
    Ok(())
}
