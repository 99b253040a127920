//! `LabError`: everything that can stop the lab runtime from doing what it was asked.
//!
//! Messages are written for the operator who typed `pcfail lab ...`: lowercase, names in backticks, and
//! the next command to run where there is one. They carry no `error: ` prefix; the binary prints that
//! in its one place for errors. SQL failures are not here: those travel to clients as TDS ERROR tokens.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("{0}")]
    Tls(String),

    #[error(
        "no lab in `{dir}` (lab.json not found); start one with `pcfail lab up --dir {dir}`",
        dir = dir.display()
    )]
    NoLab { dir: PathBuf },

    #[error("the lab in `{dir}` is not running (pid {pid})", dir = dir.display())]
    NotRunning { dir: PathBuf, pid: u32 },

    #[error(
        "the lab in `{dir}` is not running (it was stopped); start it with `pcfail lab up --dir {dir}`",
        dir = dir.display()
    )]
    Stopped { dir: PathBuf },

    #[error(
        "a lab is already running in `{dir}` (pid {pid}, control {control}); stop it with `pcfail lab down --dir {dir}`",
        dir = dir.display()
    )]
    AlreadyRunning {
        dir: PathBuf,
        pid: u32,
        control: String,
    },

    #[error("`{path}` is not a valid lab manifest: {source}", path = path.display())]
    BadManifest {
        path: PathBuf,
        source: serde_json::Error,
    },

    #[error(
        "`{path}` is not a valid lab state: {source}; remove it to start the lab afresh",
        path = path.display()
    )]
    BadState {
        path: PathBuf,
        source: serde_json::Error,
    },

    #[error("could not {action} `{path}`: {source}", path = path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("could not listen for the `{role}` instance on {address}: {source}")]
    Listen {
        role: &'static str,
        address: String,
        source: std::io::Error,
    },

    #[error("the lab in `{dir}` did not answer on its control port {control}: {source}", dir = dir.display())]
    Control {
        dir: PathBuf,
        control: String,
        source: std::io::Error,
    },

    #[error("cannot make the backlog: {0}")]
    Backlog(String),

    #[error("the lab in `{dir}` refused the request: {message}", dir = dir.display())]
    Refused { dir: PathBuf, message: String },

    #[error("could not start `{program}`: {source}", program = program.display())]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "the lab in `{dir}` exited before it was ready ({status}); last lines of `{log}`:\n{tail}",
        dir = dir.display(),
        log = log.display()
    )]
    ExitedEarly {
        dir: PathBuf,
        status: String,
        log: PathBuf,
        tail: String,
    },

    #[error(
        "the lab in `{dir}` did not become ready within {seconds} s; see `{log}`",
        dir = dir.display(),
        log = log.display()
    )]
    NotReady {
        dir: PathBuf,
        seconds: u64,
        log: PathBuf,
    },

    #[error(
        "the lab in `{dir}` did not stop within {seconds} s (pid {pid}); see `{log}`",
        dir = dir.display(),
        log = log.display()
    )]
    DidNotStop {
        dir: PathBuf,
        pid: u32,
        seconds: u64,
        log: PathBuf,
    },

    #[error("the lab must run in the foreground outside an async runtime (it starts its own)")]
    InsideRuntime,

    /// A `--variant` the lab does not know, or a value it does not allow.
    #[error("{0}")]
    BadVariant(String),
}

impl LabError {
    /// Shorthand for the common "this file operation failed" case.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        LabError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_sentences_for_the_operator() {
        let dir = PathBuf::from("/tmp/lab");
        let cases = [
            (
                LabError::NoLab { dir: dir.clone() },
                "no lab in `/tmp/lab` (lab.json not found); start one with `pcfail lab up --dir /tmp/lab`",
            ),
            (
                LabError::NotRunning {
                    dir: dir.clone(),
                    pid: 42,
                },
                "the lab in `/tmp/lab` is not running (pid 42)",
            ),
            (
                LabError::AlreadyRunning {
                    dir: dir.clone(),
                    pid: 7,
                    control: "127.0.0.1:9".into(),
                },
                "a lab is already running in `/tmp/lab` (pid 7, control 127.0.0.1:9); stop it with `pcfail lab down --dir /tmp/lab`",
            ),
            (
                LabError::NotReady {
                    dir: dir.clone(),
                    seconds: 10,
                    log: dir.join("lab.log"),
                },
                "the lab in `/tmp/lab` did not become ready within 10 s; see `/tmp/lab/lab.log`",
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(error.to_string(), expected);
        }
    }
}
