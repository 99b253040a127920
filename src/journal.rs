//! The run journal: an append-only, hash-chained record of one run, made durable when resuming
//! needs it.
//!
//! A run is resumable only if the journal tells the truth after a crash, so: every record is one JSON
//! line written with a single `write_all` (a killed process loses nothing: the line is in the page
//! cache); every record carries the SHA-256 of the previous line, so an edited or reordered journal
//! is detected; a torn tail (power lost in the middle of an append) is cut off on open, because the
//! step it announced is re-examined anyway.
//!
//! Durability (what survives a power loss) follows what resume needs ([`Event::must_be_durable`]):
//! every record that decides what a resumed run does (a step started or finished, a captured fact,
//! a confirmation, the run's start and end) is synced, with everything before it, before pcfail goes
//! on. The records of statements and cmdlets are not synced one by one: they ride along with the next
//! synced record, and at least once a second ([`GROUP_COMMIT`]). What they would tell a resumed run,
//! the servers already say (a database's redo point, msdb's restore history), and every step is
//! re-examined on resume. So a power loss costs at most a second of command records, never the truth
//! about a step; a 1,000-file apply costs a handful of syncs, not 2,000.
//!
//! Every record also goes to the audit log (`audit.jsonl` beside the runs), one JSON line per event
//! across all runs, with the operator and host on every line, so "who did what, when, and what did
//! the server say" is answered by one `grep`; it is synced with the journal. Records hold statement
//! texts and server messages, never a password: pcfail never puts one in a statement (SQL logins are
//! read from the environment at connect time). A raw `sql` step whose text holds a secret would be
//! logged as written.
//!
//! This module knows records and files; what a step's state means for the plan is `Progress`'s job,
//! and running steps is the executor's.

use std::fs::{File, OpenOptions};

use crate::audit::Audit;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One line of the journal.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct Record {
    pub seq: u64,
    /// Hex SHA-256 of the previous line's bytes (without its newline); empty for the first record.
    pub prev: String,
    /// RFC 3339, UTC.
    pub time: String,
    pub run: String,
    #[serde(flatten)]
    pub event: Event,
}

/// What happened. Field names are part of the audit format: keep them stable.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum Event {
    RunStarted {
        operation: String,
        pool: String,
        runbook: String,
        runbook_sha256: String,
        operator: String,
        host: String,
        version: String,
    },
    RunResumed {
        operator: String,
        host: String,
    },
    /// A fact read before it could be destroyed (the log-shipping settings before step 1 deletes them).
    Captured {
        key: String,
        value: serde_json::Value,
    },
    StepStarted {
        step: String,
        number: usize,
    },
    /// One statement or cmdlet call and what came back.
    Command {
        step: String,
        target: String,
        text: String,
        /// Microseconds (journals of earlier versions had whole milliseconds in `duration_ms`;
        /// they are read as this field).
        duration_us: u64,
        ok: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<serde_json::Value>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        messages: Vec<String>,
    },
    Confirmed {
        step: String,
        how: String,
        /// What was confirmed: `operation` (before the first step), `pause`, `split_brain`,
        /// `data_loss`. Absent in journals of earlier versions.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        what: Option<String>,
    },
    StepSkipped {
        step: String,
        reason: String,
    },
    StepFinished {
        step: String,
        ok: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    RunFinished {
        outcome: String,
        /// Why a run was closed without completing (an abandoned run, a refused resume).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// The longest a command record waits for a sync (see the module documentation).
pub(crate) const GROUP_COMMIT: Duration = Duration::from_secs(1);

impl Event {
    /// Whether this record must be on disk before pcfail goes on: everything but the record of one
    /// statement or cmdlet (see the module documentation).
    pub(crate) fn must_be_durable(&self) -> bool {
        !matches!(self, Event::Command { .. })
    }
}

/// Microseconds since `started`, for a command record.
pub(crate) fn micros_since(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot {what} the journal `{path}`: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("the journal `{path}` is damaged at line {line}: {reason}; it was not changed")]
    Corrupt {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// An open journal, positioned at its end.
pub(crate) struct Journal {
    file: File,
    path: PathBuf,
    run: String,
    next_seq: u64,
    last_hash: String,
    audit: Option<Audit>,
    /// When the journal was last synced, or None when everything written is synced.
    unsynced_since: Option<Instant>,
}

impl Journal {
    /// Creates the journal of a new run; fails if one with that id exists.
    pub(crate) fn create(dir: &Path, run: &str) -> Result<Journal, JournalError> {
        let path = dir.join(format!("{run}.jsonl"));
        let io_err = |what, source| JournalError::Io {
            what,
            path: path.clone(),
            source,
        };
        crate::private::create_dir(dir).map_err(|e| io_err("create the folder of", e))?;
        let file = crate::private::options()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io_err("create", e))?;
        // The directory entry itself must survive a crash, not only the file's contents.
        sync_dir(dir);
        Ok(Journal {
            file,
            path,
            run: run.to_owned(),
            next_seq: 1,
            last_hash: String::new(),
            audit: None,
            unsynced_since: None,
        })
    }

    /// Opens an existing journal for appending, returning its records after checking the chain. A torn
    /// last line is cut off (and reported in the returned flag).
    pub(crate) fn open(path: &Path) -> Result<(Journal, Vec<Record>, bool), JournalError> {
        let (records, good_len, last_hash, torn) = read_checked(path)?;
        let io_err = |what, source| JournalError::Io {
            what,
            path: path.to_owned(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| io_err("open", e))?;
        if torn {
            file.set_len(good_len).map_err(|e| io_err("repair", e))?;
            file.sync_data().map_err(|e| io_err("repair", e))?;
        }
        file.seek(SeekFrom::End(0)).map_err(|e| io_err("open", e))?;
        let run = records
            .first()
            .map(|r| r.run.clone())
            .unwrap_or_else(|| run_id_of(path));
        let next_seq = records.last().map_or(1, |r| r.seq + 1);
        Ok((
            Journal {
                file,
                path: path.to_owned(),
                run,
                next_seq,
                last_hash,
                audit: None,
                unsynced_since: None,
            },
            records,
            torn,
        ))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Copies every record appended from now on to the audit log at `path`, tagged with who and where.
    pub(crate) fn with_audit(
        mut self,
        path: &Path,
        operator: &str,
        host: &str,
    ) -> Result<Journal, JournalError> {
        self.audit = Some(Audit::open(path, operator, host)?);
        Ok(self)
    }

    /// The number of the last record written and its hash (the chain's tip), for anchoring.
    pub(crate) fn tip(&self) -> (u64, &str) {
        (self.next_seq - 1, &self.last_hash)
    }

    /// The audit log's tip, when there is one.
    pub(crate) fn audit_tip(&self) -> Option<(u64, &str)> {
        self.audit.as_ref().map(Audit::tip)
    }

    pub(crate) fn run(&self) -> &str {
        &self.run
    }

    /// Appends one record; makes it (and everything before it) durable before returning when it
    /// must be, or when the oldest unsynced record is a [`GROUP_COMMIT`] old.
    pub(crate) fn append(&mut self, event: Event) -> Result<Record, JournalError> {
        let durable = event.must_be_durable()
            || self
                .unsynced_since
                .is_some_and(|since| since.elapsed() >= GROUP_COMMIT);
        let record = Record {
            seq: self.next_seq,
            prev: self.last_hash.clone(),
            time: jiff::Timestamp::now().to_string(),
            run: self.run.clone(),
            event,
        };
        let line = serde_json::to_string(&record).expect("journal records serialize");
        let mut bytes = line.clone().into_bytes();
        bytes.push(b'\n');
        let io_err = |source| JournalError::Io {
            what: "append to",
            path: self.path.clone(),
            source,
        };
        crate::crash::point("before a journal record");
        self.file.write_all(&bytes).map_err(io_err)?;
        if durable {
            self.file.sync_data().map_err(io_err)?;
            self.unsynced_since = None;
        } else if self.unsynced_since.is_none() {
            self.unsynced_since = Some(Instant::now());
        }
        crate::crash::point("after a journal record");
        self.next_seq += 1;
        self.last_hash = sha256_hex(line.as_bytes());
        if let Some(audit) = &mut self.audit {
            audit.append(&record, durable)?;
        }
        Ok(record)
    }

    /// Makes every record written so far durable (at the end of a run, or before it stops).
    pub(crate) fn sync(&mut self) -> Result<(), JournalError> {
        if self.unsynced_since.take().is_some() {
            self.file.sync_data().map_err(|source| JournalError::Io {
                what: "sync",
                path: self.path.clone(),
                source,
            })?;
        }
        if let Some(audit) = &mut self.audit {
            audit.sync()?;
        }
        Ok(())
    }
}

impl Drop for Journal {
    /// Whatever ends the run, the records written are made durable (best effort: a failure here
    /// has no one left to tell, and the next open checks the chain anyway).
    fn drop(&mut self) {
        let _ = self.sync();
    }
}

/// The records of a journal whatever its chain says (for a report of a damaged journal), and whether
/// the chain is intact.
pub(crate) fn read_for_review(
    path: &Path,
) -> Result<(Vec<Record>, Result<(), String>), JournalError> {
    let chain = read(path).map(|_| ()).map_err(|e| e.to_string());
    let text = std::fs::read_to_string(path).map_err(|source| JournalError::Io {
        what: "read",
        path: path.to_owned(),
        source,
    })?;
    let records = text
        .lines()
        .filter_map(|l| parse_record(l.as_bytes()).ok())
        .collect();
    Ok((records, chain))
}

/// The SHA-256 of each line of a journal, in order (what anchors are checked against).
pub(crate) fn line_hashes(path: &Path) -> Result<Vec<String>, JournalError> {
    let bytes = std::fs::read(path).map_err(|source| JournalError::Io {
        what: "read",
        path: path.to_owned(),
        source,
    })?;
    Ok(bytes
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(sha256_hex)
        .collect())
}

/// Reads a journal without opening it for writing (for `pcfail status`).
pub(crate) fn read(path: &Path) -> Result<Vec<Record>, JournalError> {
    read_checked(path).map(|(records, ..)| records)
}

/// Returns the records, the byte length of the intact prefix, the hash of the last intact line, and
/// whether a torn last line followed it.
fn read_checked(path: &Path) -> Result<(Vec<Record>, u64, String, bool), JournalError> {
    let file = File::open(path).map_err(|source| JournalError::Io {
        what: "read",
        path: path.to_owned(),
        source,
    })?;
    let mut reader = BufReader::new(file);
    let mut records = Vec::new();
    let mut good_len = 0u64;
    let mut last_hash = String::new();
    let mut buf = Vec::new();
    let mut line_no = 0;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|source| JournalError::Io {
                what: "read",
                path: path.to_owned(),
                source,
            })?;
        if n == 0 {
            return Ok((records, good_len, last_hash, false));
        }
        line_no += 1;
        if buf.last() != Some(&b'\n') {
            // Only the tail can be torn: appends are whole lines, in order.
            return Ok((records, good_len, last_hash, true));
        }
        let line = &buf[..buf.len() - 1];
        let corrupt = |reason: String| JournalError::Corrupt {
            path: path.to_owned(),
            line: line_no,
            reason,
        };
        let record =
            parse_record(line).map_err(|e| corrupt(format!("not a journal record ({e})")))?;
        if record.prev != last_hash {
            return Err(corrupt(
                "its hash chain is broken (a record was changed, removed or reordered)".to_owned(),
            ));
        }
        let expected_seq = records.len() as u64 + 1;
        if record.seq != expected_seq {
            return Err(corrupt(format!(
                "sequence number {} where {expected_seq} was expected",
                record.seq
            )));
        }
        last_hash = sha256_hex(line);
        good_len += n as u64;
        records.push(record);
    }
}

/// One line as a record. A command record of an earlier version has `duration_ms`; it is read as
/// `duration_us` (the line's bytes, which the chain hashes, are left as they are).
fn parse_record(line: &[u8]) -> Result<Record, serde_json::Error> {
    let mut value: serde_json::Value = serde_json::from_slice(line)?;
    if let Some(map) = value.as_object_mut()
        && !map.contains_key("duration_us")
        && let Some(ms) = map.get("duration_ms").and_then(serde_json::Value::as_u64)
    {
        map.insert("duration_us".into(), ms.saturating_mul(1000).into());
    }
    serde_json::from_value(value)
}

fn run_id_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Best effort: on Unix, fsync the directory so a newly created file's name is durable too.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started() -> Event {
        Event::StepStarted {
            step: "recover".into(),
            number: 4,
        }
    }

    #[test]
    fn records_chain_and_reopen_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(dir.path(), "r1").unwrap();
        let first = journal.append(started()).unwrap();
        let second = journal
            .append(Event::RunFinished {
                outcome: "completed".into(),
                reason: None,
            })
            .unwrap();
        assert_eq!((first.seq, first.prev.as_str()), (1, ""));
        assert_eq!(second.prev.len(), 64);
        let path = journal.path().to_owned();
        drop(journal);
        let (mut reopened, records, torn) = Journal::open(&path).unwrap();
        assert_eq!(records, vec![first, second]);
        assert!(!torn);
        assert_eq!(reopened.append(started()).unwrap().seq, 3);
        assert_eq!(read(&path).unwrap().len(), 3);
    }

    #[test]
    fn a_torn_last_line_is_cut_off_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(dir.path(), "r2").unwrap();
        journal.append(started()).unwrap();
        let path = journal.path().to_owned();
        drop(journal);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"seq\":2,\"prev\":\"ab").unwrap();
        drop(f);
        let (mut journal, records, torn) = Journal::open(&path).unwrap();
        assert!(torn);
        assert_eq!(records.len(), 1);
        journal.append(started()).unwrap();
        assert_eq!(read(&path).unwrap().len(), 2);
    }

    #[test]
    fn an_edited_record_breaks_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(dir.path(), "r3").unwrap();
        journal.append(started()).unwrap();
        journal.append(started()).unwrap();
        journal.append(started()).unwrap();
        let path = journal.path().to_owned();
        drop(journal);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("\"number\":4", "\"number\":5", 1)).unwrap();
        let err = read(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the journal `{}` is damaged at line 2: its hash chain is broken (a record was changed, removed or reordered); it was not changed",
                path.display()
            )
        );
    }

    #[test]
    fn records_are_copied_to_the_audit_log_with_operator_and_host() {
        let dir = tempfile::tempdir().unwrap();
        let audit = dir.path().join("audit.jsonl");
        let mut journal = Journal::create(dir.path(), "r5")
            .unwrap()
            .with_audit(&audit, "alice", "ops-01")
            .unwrap();
        journal.append(started()).unwrap();
        let line: serde_json::Value =
            serde_json::from_str(std::fs::read_to_string(&audit).unwrap().trim()).unwrap();
        assert_eq!(
            (
                &line["event"],
                &line["step"],
                &line["operator"],
                &line["host"],
                &line["run"]
            ),
            (
                &serde_json::json!("step_started"),
                &serde_json::json!("recover"),
                &serde_json::json!("alice"),
                &serde_json::json!("ops-01"),
                &serde_json::json!("r5")
            )
        );
    }

    #[test]
    fn only_statement_records_wait_for_a_later_sync() {
        let command = Event::Command {
            step: "apply".into(),
            target: "backup".into(),
            text: "RESTORE LOG [mgc] ...".into(),
            duration_us: 1234,
            ok: true,
            error: None,
            messages: Vec::new(),
        };
        assert!(!command.must_be_durable());
        assert!(started().must_be_durable());
        assert!(
            Event::Captured {
                key: "log_shipping:mgc".into(),
                value: serde_json::Value::Null,
            }
            .must_be_durable()
        );
        // Whatever is written, durable or not, is read back whole and chained.
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(dir.path(), "r1").unwrap();
        journal.append(started()).unwrap();
        journal.append(command.clone()).unwrap();
        journal.append(command).unwrap();
        let path = journal.path().to_owned();
        drop(journal);
        assert_eq!(read(&path).unwrap().len(), 3);
    }

    #[test]
    fn a_command_record_of_an_earlier_version_reads_its_milliseconds_as_microseconds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.jsonl");
        let line = r#"{"seq":1,"prev":"","time":"2026-11-22T04:00:00Z","run":"old","event":"command","step":"apply","target":"backup","text":"SELECT 1","duration_ms":7,"ok":true}"#;
        std::fs::write(&path, format!("{line}\n")).unwrap();
        let records = read(&path).unwrap();
        match &records[0].event {
            Event::Command { duration_us, .. } => assert_eq!(*duration_us, 7000),
            other => panic!("{other:?}"),
        }
        // The chain is over the line as written.
        let (mut journal, _, _) = Journal::open(&path).unwrap();
        assert_eq!(
            journal.append(started()).unwrap().prev,
            sha256_hex(line.as_bytes())
        );
    }

    #[test]
    fn creating_a_run_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Journal::create(dir.path(), "r4").unwrap();
        assert!(matches!(
            Journal::create(dir.path(), "r4"),
            Err(JournalError::Io { what: "create", .. })
        ));
    }
}
