//! The control port: how `pcfail lab status/disaster/rebuild-primary/down` reach a lab in another process.
//!
//! JSON lines on 127.0.0.1, one request and one response per line, any number per connection:
//!
//! ```text
//! -> {"op":"status"}                         <- {"ok":true,"status":{...}}
//! -> {"op":"disaster"}                       <- {"ok":true}   (silent, share kept)
//! -> {"op":"disaster","refuse":true,"share_lost":true}            <- {"ok":true}
//! -> {"op":"rebuild_primary"}                <- {"ok":true}
//! -> {"op":"stop_instance","role":"backup"}  <- {"ok":true}   (refuses connections)
//! -> {"op":"start_instance","role":"backup"} <- {"ok":true}
//! -> {"op":"share","reachable":false}        <- {"ok":true}
//! -> {"op":"backlog","pending":1000,"applied":864,"copied":true,"spacing_ms":1000}
//!                                            <- {"ok":true,"backlog":{"pending":1000,"applied":864,"now":...}}
//! -> {"op":"transcript","role":"backup"}     <- {"ok":true,"transcript":[{"spid":52,"kind":"batch","text":"..."}]}
//! -> {"op":"clear_transcripts"}              <- {"ok":true}
//! -> {"op":"down"}                           <- {"ok":true}   (the lab then shuts down)
//! anything else                              <- {"ok":false,"error":"..."}
//! ```
//!
//! Loopback only and unauthenticated: it controls a rehearsal lab on the operator's own machine, whose
//! lab.json (mode 0600) already gives the sa password to whoever may read it.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::engine::{Backlog, BacklogMade, Role, TranscriptEntry};
use crate::error::LabError;
use crate::lab::{Disaster, Inner};
use crate::status::Status;

/// How long a client waits for the lab to answer one request (status reads a few files; disaster waits
/// for accept loops to stop, bounded at 5 s each).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Request {
    Status,
    Disaster {
        /// The instances refuse connections instead of leaving them unanswered.
        #[serde(default, skip_serializing_if = "is_false")]
        refuse: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        share_lost: bool,
    },
    RebuildPrimary,
    StopInstance {
        role: Role,
    },
    StartInstance {
        role: Role,
    },
    Share {
        reachable: bool,
    },
    Backlog(Backlog),
    Transcript {
        role: Role,
    },
    ClearTranscripts,
    Down,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<Vec<WireEntry>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog: Option<BacklogMade>,
}

/// A transcript entry on the wire. The engine's `TranscriptEntry` only serializes, so the client
/// rebuilds it from this mirror of its public fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WireEntry {
    pub spid: u16,
    pub kind: String,
    pub text: String,
}

impl From<WireEntry> for TranscriptEntry {
    fn from(e: WireEntry) -> Self {
        TranscriptEntry {
            spid: e.spid,
            kind: e.kind,
            text: e.text,
        }
    }
}

impl From<TranscriptEntry> for WireEntry {
    fn from(e: TranscriptEntry) -> Self {
        WireEntry {
            spid: e.spid,
            kind: e.kind,
            text: e.text,
        }
    }
}

/// Accepts control connections until the lab stops.
pub(crate) async fn serve(listener: TcpListener, inner: Arc<Inner>) {
    loop {
        let accepted = tokio::select! {
            _ = inner.stop_token().cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                tokio::spawn(connection(stream, inner.clone()));
            }
            Err(e) => {
                tracing::warn!("control port accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn connection(stream: tokio::net::TcpStream, inner: Arc<Inner>) {
    let (read, mut write) = stream.into_split();
    let mut lines = tokio::io::BufReader::new(read).lines();
    loop {
        let line = tokio::select! {
            _ = inner.stop_token().cancelled() => return,
            line = lines.next_line() => line,
        };
        let Ok(Some(line)) = line else { return };
        if line.trim().is_empty() {
            continue;
        }
        let response = match serde_json::from_str::<Request>(&line) {
            Ok(request) => handle(request, &inner).await,
            Err(e) => Response {
                ok: false,
                error: Some(format!("unknown request: {e}")),
                ..Response::default()
            },
        };
        let mut bytes = serde_json::to_vec(&response).expect("responses always serialize");
        bytes.push(b'\n');
        if write.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

async fn handle(request: Request, inner: &Inner) -> Response {
    let done = |result: Result<(), LabError>| match result {
        Ok(()) => Response {
            ok: true,
            ..Response::default()
        },
        Err(e) => Response {
            ok: false,
            error: Some(e.to_string()),
            ..Response::default()
        },
    };
    match request {
        Request::Status => Response {
            ok: true,
            status: Some(inner.status().await),
            ..Response::default()
        },
        Request::Disaster { refuse, share_lost } => done(
            inner
                .disaster(Disaster {
                    silent: !refuse,
                    share_lost,
                })
                .await,
        ),
        Request::RebuildPrimary => done(inner.rebuild_primary().await),
        Request::StopInstance { role } => done(inner.stop_instance(role).await),
        Request::StartInstance { role } => done(inner.start_instance(role).await),
        Request::Share { reachable } => {
            inner.set_share_reachable(reachable);
            done(Ok(()))
        }
        Request::Backlog(spec) => match inner.make_backlog(&spec) {
            Ok(made) => Response {
                ok: true,
                backlog: Some(made),
                ..Response::default()
            },
            Err(e) => done(Err(e)),
        },
        Request::Transcript { role } => Response {
            ok: true,
            transcript: Some(
                inner
                    .transcript(role)
                    .into_iter()
                    .map(WireEntry::from)
                    .collect(),
            ),
            ..Response::default()
        },
        Request::ClearTranscripts => {
            inner.clear_transcripts();
            done(Ok(()))
        }
        Request::Down => {
            inner.request_down();
            done(Ok(()))
        }
    }
}

/// Sends one request to the lab in `dir` listening on `control` and waits for its answer (blocking).
pub(crate) fn call(
    dir: &Path,
    control: SocketAddr,
    request: &Request,
) -> Result<Response, LabError> {
    let io_error = |source| LabError::Control {
        dir: dir.to_path_buf(),
        control: control.to_string(),
        source,
    };
    let stream = TcpStream::connect_timeout(&control, Duration::from_secs(2)).map_err(io_error)?;
    stream
        .set_read_timeout(Some(REQUEST_TIMEOUT))
        .map_err(io_error)?;
    let mut line = serde_json::to_vec(request).expect("requests always serialize");
    line.push(b'\n');
    (&stream).write_all(&line).map_err(io_error)?;
    let mut answer = String::new();
    BufReader::new(&stream)
        .read_line(&mut answer)
        .map_err(io_error)?;
    if answer.is_empty() {
        return Err(io_error(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed without an answer",
        )));
    }
    let response: Response = serde_json::from_str(&answer)
        .map_err(|e| io_error(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    if !response.ok {
        let message = response
            .error
            .unwrap_or_else(|| "no reason given".to_owned());
        return Err(LabError::Refused {
            dir: dir.to_path_buf(),
            message,
        });
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_the_documented_wire_form() {
        let cases = [
            (Request::Status, r#"{"op":"status"}"#),
            (
                Request::Disaster {
                    refuse: false,
                    share_lost: false,
                },
                r#"{"op":"disaster"}"#,
            ),
            (
                Request::Disaster {
                    refuse: true,
                    share_lost: true,
                },
                r#"{"op":"disaster","refuse":true,"share_lost":true}"#,
            ),
            (Request::RebuildPrimary, r#"{"op":"rebuild_primary"}"#),
            (
                Request::StopInstance {
                    role: Role::BackupMirror,
                },
                r#"{"op":"stop_instance","role":"backup_mirror"}"#,
            ),
            (
                Request::StartInstance { role: Role::Backup },
                r#"{"op":"start_instance","role":"backup"}"#,
            ),
            (
                Request::Share { reachable: false },
                r#"{"op":"share","reachable":false}"#,
            ),
            (
                Request::Transcript { role: Role::Backup },
                r#"{"op":"transcript","role":"backup"}"#,
            ),
            (Request::ClearTranscripts, r#"{"op":"clear_transcripts"}"#),
            (Request::Down, r#"{"op":"down"}"#),
        ];
        for (request, wire) in cases {
            assert_eq!(serde_json::to_string(&request).unwrap(), wire);
            assert_eq!(serde_json::from_str::<Request>(wire).unwrap(), request);
        }
    }
}
