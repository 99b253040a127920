//! The audit log: `STATE_DIR/audit.jsonl`, one JSON line per journal record of every run, with the
//! operator and the host, so "who did what, when, and what did the server say" is one `grep`.
//!
//! It is hash-chained like each journal, across runs: every line carries `audit_seq` (1, 2, ...) and
//! `audit_prev`, the SHA-256 of the previous line's bytes, so a line edited, removed or reordered
//! breaks the chain from there on. A torn last line (a crash in the middle of an append) is cut off
//! when the log is next opened. Reading journals and anchoring their hashes outside the host is not
//! this module's job (`crate::journal`, `crate::anchor`).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::journal::{JournalError, Record, sha256_hex};

/// The open audit log, positioned at its end.
pub(crate) struct Audit {
    file: File,
    path: PathBuf,
    operator: String,
    host: String,
    next_seq: u64,
    last_hash: String,
    /// Lines were written since the last sync.
    unsynced: bool,
}

impl Audit {
    /// Opens (or creates) the audit log at `path`, owner-only, continuing its chain.
    pub(crate) fn open(path: &Path, operator: &str, host: &str) -> Result<Audit, JournalError> {
        let io_err = |what, source| JournalError::Io {
            what,
            path: path.to_owned(),
            source,
        };
        let mut file = crate::private::options()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| io_err("open the audit log", e))?;
        crate::private::restrict(&file).map_err(|e| io_err("open the audit log", e))?;
        let (next_seq, last_hash) = continue_chain(&mut file, path)?;
        Ok(Audit {
            file,
            path: path.to_owned(),
            operator: operator.to_owned(),
            host: host.to_owned(),
            next_seq,
            last_hash,
            unsynced: false,
        })
    }

    /// Appends one journal record, tagged with who and where; with `durable`, syncs the log (the
    /// journal decides when: see `crate::journal`).
    pub(crate) fn append(&mut self, record: &Record, durable: bool) -> Result<(), JournalError> {
        let mut entry = serde_json::to_value(record).expect("journal records serialize");
        if let Some(map) = entry.as_object_mut() {
            map.insert("operator".into(), self.operator.clone().into());
            map.insert("host".into(), self.host.clone().into());
            map.insert("audit_seq".into(), self.next_seq.into());
            map.insert("audit_prev".into(), self.last_hash.clone().into());
        }
        let line = serde_json::to_string(&entry).expect("JSON values serialize");
        let mut bytes = line.clone().into_bytes();
        bytes.push(b'\n');
        self.file
            .write_all(&bytes)
            .and_then(|()| {
                if durable {
                    self.file.sync_data()
                } else {
                    Ok(())
                }
            })
            .map_err(|source| JournalError::Io {
                what: "append to",
                path: self.path.clone(),
                source,
            })?;
        self.unsynced = !durable;
        self.next_seq += 1;
        self.last_hash = sha256_hex(line.as_bytes());
        Ok(())
    }

    /// Makes every line written so far durable.
    pub(crate) fn sync(&mut self) -> Result<(), JournalError> {
        if self.unsynced {
            self.file.sync_data().map_err(|source| JournalError::Io {
                what: "sync",
                path: self.path.clone(),
                source,
            })?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// The number and hash of the last line written, for anchoring.
    pub(crate) fn tip(&self) -> (u64, &str) {
        (self.next_seq - 1, &self.last_hash)
    }
}

/// Cuts off a torn last line and returns the next `audit_seq` and the last line's hash. Only the
/// tail of the file is read: the log grows with every run.
fn continue_chain(file: &mut File, path: &Path) -> Result<(u64, String), JournalError> {
    let io_err = |source| JournalError::Io {
        what: "read the audit log",
        path: path.to_owned(),
        source,
    };
    let len = file.seek(SeekFrom::End(0)).map_err(io_err)?;
    if len == 0 {
        return Ok((1, String::new()));
    }
    let tail_len = len.min(1 << 20);
    file.seek(SeekFrom::Start(len - tail_len)).map_err(io_err)?;
    let mut tail = Vec::with_capacity(tail_len as usize);
    file.take(tail_len).read_to_end(&mut tail).map_err(io_err)?;
    let mut end = tail.len();
    if tail.last() != Some(&b'\n') {
        // A torn last line: cut it off, as the journal does.
        let keep = tail.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        file.set_len(len - tail_len + keep as u64).map_err(io_err)?;
        file.sync_data().map_err(io_err)?;
        end = keep;
    }
    if end == 0 {
        return Ok((1, String::new()));
    }
    let start = tail[..end - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = &tail[start..end - 1];
    let seq = serde_json::from_slice::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v.get("audit_seq").and_then(serde_json::Value::as_u64))
        // A log written before it was chained: start the chain after it.
        .unwrap_or(0);
    Ok((seq + 1, sha256_hex(line)))
}

/// Checks the whole audit log's chain; returns the number of lines and the last line's hash. Lines
/// written before the chain existed (no `audit_seq`) are accepted only before the first chained one.
pub(crate) fn verify(path: &Path) -> Result<Vec<String>, JournalError> {
    let file = File::open(path).map_err(|source| JournalError::Io {
        what: "read",
        path: path.to_owned(),
        source,
    })?;
    let mut hashes = Vec::new();
    let mut prev = String::new();
    let mut chained = false;
    for (i, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line = line.map_err(|source| JournalError::Io {
            what: "read",
            path: path.to_owned(),
            source,
        })?;
        let corrupt = |reason: &str| JournalError::Corrupt {
            path: path.to_owned(),
            line: i + 1,
            reason: reason.to_owned(),
        };
        let value: serde_json::Value =
            serde_json::from_slice(&line).map_err(|_| corrupt("not a JSON line"))?;
        match (
            value.get("audit_seq").and_then(serde_json::Value::as_u64),
            value.get("audit_prev").and_then(serde_json::Value::as_str),
        ) {
            (Some(_), Some(p)) => {
                if p != prev {
                    return Err(corrupt(
                        "its hash chain is broken (a line was changed, removed or reordered)",
                    ));
                }
                chained = true;
            }
            _ if chained => return Err(corrupt("it is not chained to the line before it")),
            _ => {}
        }
        prev = sha256_hex(&line);
        hashes.push(prev.clone());
    }
    Ok(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Event;

    fn record(seq: u64) -> Record {
        Record {
            seq,
            prev: String::new(),
            time: String::new(),
            run: "r".into(),
            event: Event::StepStarted {
                step: "s".into(),
                number: 1,
            },
        }
    }

    #[test]
    fn the_chain_continues_across_openings_and_an_edit_breaks_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut a = Audit::open(&path, "alice", "h").unwrap();
        a.append(&record(1), true).unwrap();
        a.append(&record(2), true).unwrap();
        drop(a);
        let mut a = Audit::open(&path, "bob", "h").unwrap();
        a.append(&record(1), true).unwrap();
        assert_eq!(a.tip().0, 3);
        assert_eq!(verify(&path).unwrap().len(), 3);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("alice", "mallory", 1)).unwrap();
        let err = verify(&path).unwrap_err();
        assert!(err.to_string().contains("damaged at line 2"), "{err}");
    }

    #[test]
    fn a_torn_last_line_is_cut_off_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut a = Audit::open(&path, "alice", "h").unwrap();
        a.append(&record(1), true).unwrap();
        drop(a);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"seq\":2,\"pre").unwrap();
        drop(f);
        let mut a = Audit::open(&path, "alice", "h").unwrap();
        a.append(&record(2), true).unwrap();
        assert_eq!(verify(&path).unwrap().len(), 2);
    }
}
