//! Turning a backend's [`Event`]s into the token stream of one response, with SQL Server's shapes.
//!
//! A batch answers each statement with `COLMETADATA ROW* DONE`; an RPC ends each statement with
//! DONEINPROC and the call with `RETURNSTATUS RETURNVALUE* DONEPROC` [2.2.4.3]. DONE_MORE is set
//! on every DONE-type token but the last of the response, because the client reads until a DONE
//! without it. If the backend forgets the final `Done`, one is added, so the client never waits
//! for an end that will not come.

use crate::backend::{Event, Message, RpcCall};
use crate::token::{EncodeError, TokenWriter, done_status, env_type, token_type};

/// What to do with a finished request.
#[derive(Debug)]
pub(crate) enum Reply {
    /// Send these tokens as one message.
    Tokens(Vec<u8>),
    /// Close the connection without answering ([`Event::Disconnect`]).
    Disconnect,
    /// Keep the connection but never answer ([`Event::Unanswered`]).
    Unanswered,
}

/// A response that is not sent at all: the connection is dropped, or left unanswered.
fn no_answer(events: &[Event]) -> Option<Reply> {
    if events.iter().any(|e| matches!(e, Event::Unanswered)) {
        Some(Reply::Unanswered)
    } else if events.iter().any(|e| matches!(e, Event::Disconnect)) {
        Some(Reply::Disconnect)
    } else {
        None
    }
}

/// Error number used when the backend produced a response we cannot encode. 50000 is the number
/// SQL Server gives user-defined `RAISERROR` text, the nearest thing to "this is not a real server
/// error"; the text names the lab so nobody mistakes it for SQL Server behaviour.
const ENCODE_FAILURE: u32 = 50000;

/// The response to a SQLBatch.
pub(crate) fn batch_reply(events: Vec<Event>, server: &str, version: u32) -> Reply {
    if let Some(reply) = no_answer(&events) {
        return reply;
    }
    let events = with_final_done(events);
    let last_done = events.iter().rposition(|e| matches!(e, Event::Done { .. }));
    let mut w = TokenWriter::for_version(version);
    let mut ordinal = 0;
    for (i, event) in events.iter().enumerate() {
        let encoded = match event {
            Event::Done { row_count, error } => {
                let more = Some(i) != last_done;
                w.done(
                    token_type::DONE,
                    done_bits(*row_count, *error, more),
                    0,
                    row_count.unwrap_or(0),
                );
                Ok(())
            }
            Event::ReturnStatus(s) => {
                w.return_status(*s);
                Ok(())
            }
            Event::ReturnValue { name, ty, value } => {
                ordinal += 1;
                w.return_value(ordinal, name, ty, value)
            }
            other => common(&mut w, other, server),
        };
        if let Err(e) = encoded {
            return encode_failure(&e, token_type::DONE, server, version);
        }
    }
    Reply::Tokens(w.buf)
}

/// The response to one RPC call; `last` is false for all but the final call of a batched RPC.
pub(crate) fn rpc_reply(
    events: Vec<Event>,
    call: &RpcCall,
    server: &str,
    last: bool,
    version: u32,
) -> Reply {
    if let Some(reply) = no_answer(&events) {
        return reply;
    }
    let mut events = events;
    // Only add a DONEINPROC for trailing output: a call whose statements produced nothing (or
    // only a return status) ends with DONEPROC alone, as a real procedure does.
    if events
        .iter()
        .rev()
        .take_while(|e| !matches!(e, Event::Done { .. }))
        .any(|e| matches!(e, Event::Rows { .. } | Event::Error(_)))
    {
        events = with_final_done(events);
    }
    let mut w = TokenWriter::for_version(version);
    let mut status = 0;
    let mut return_values = Vec::new();
    let mut any_error = false;
    for event in &events {
        let encoded = match event {
            Event::Done { row_count, error } => {
                w.done(
                    token_type::DONEINPROC,
                    done_bits(*row_count, *error, true),
                    0,
                    row_count.unwrap_or(0),
                );
                Ok(())
            }
            Event::ReturnStatus(s) => {
                status = *s;
                Ok(())
            }
            Event::ReturnValue { .. } => {
                return_values.push(event);
                Ok(())
            }
            other => {
                any_error |= matches!(other, Event::Error(_));
                common(&mut w, other, server)
            }
        };
        if let Err(e) = encoded {
            return encode_failure(&e, token_type::DONEPROC, server, version);
        }
    }
    // [2.2.4.3]: RETURNSTATUS, then the OUTPUT parameters' RETURNVALUEs, then DONEPROC.
    w.return_status(status);
    for rv in return_values {
        if let Event::ReturnValue { name, ty, value } = rv {
            let ordinal = param_ordinal(call, name);
            if let Err(e) = w.return_value(ordinal, name, ty, value) {
                return encode_failure(&e, token_type::DONEPROC, server, version);
            }
        }
    }
    let mut bits = if last { 0 } else { done_status::MORE };
    if any_error {
        bits |= done_status::ERROR;
    }
    w.done(token_type::DONEPROC, bits, 0, 0);
    Reply::Tokens(w.buf)
}

/// The tokens both request kinds share.
fn common(w: &mut TokenWriter, event: &Event, server: &str) -> Result<(), EncodeError> {
    match event {
        Event::Rows { columns, rows } => {
            w.col_metadata(columns)?;
            for row in rows {
                w.row(columns, row)?;
            }
        }
        Event::Info(m) => w.message(token_type::INFO, m, server),
        Event::Error(m) => w.message(token_type::ERROR, m, server),
        Event::DatabaseChanged { new, old } => w.env_change_text(env_type::DATABASE, new, old),
        Event::Done { .. }
        | Event::ReturnStatus(_)
        | Event::ReturnValue { .. }
        | Event::Disconnect
        | Event::Unanswered => {
            unreachable!("handled by the caller")
        }
    }
    Ok(())
}

fn done_bits(row_count: Option<u64>, error: bool, more: bool) -> u16 {
    let mut bits = 0;
    if more {
        bits |= done_status::MORE;
    }
    if error {
        bits |= done_status::ERROR;
    }
    if row_count.is_some() {
        bits |= done_status::COUNT;
    }
    bits
}

/// Appends a `Done` when the last statement's output is not closed by one: with the row count
/// of trailing rows and the error flag of a trailing error.
fn with_final_done(mut events: Vec<Event>) -> Vec<Event> {
    let trailing = events
        .iter()
        .rev()
        .take_while(|e| !matches!(e, Event::Done { .. }));
    let mut row_count = None;
    let mut error = false;
    let mut needed = false;
    for e in trailing {
        needed = true;
        match e {
            Event::Rows { rows, .. } if row_count.is_none() => row_count = Some(rows.len() as u64),
            Event::Error(_) => error = true,
            _ => {}
        }
    }
    if needed || events.is_empty() {
        events.push(Event::Done { row_count, error });
    }
    events
}

/// The ordinal RETURNVALUE carries: the parameter's position in the call (names compared without
/// `@`, case-insensitively, as SQL Server compares identifiers under a CI collation).
fn param_ordinal(call: &RpcCall, name: &str) -> u16 {
    let bare = |n: &str| n.trim_start_matches('@').to_lowercase();
    call.params
        .iter()
        .position(|p| bare(&p.name) == bare(name))
        .map_or(0, |i| i as u16)
}

/// Replaces a response the backend got wrong with an error the client can see, and logs it.
fn encode_failure(e: &EncodeError, done_token: u8, server: &str, version: u32) -> Reply {
    tracing::error!(error = %e, "backend produced a response that cannot be encoded");
    let mut w = TokenWriter::for_version(version);
    w.message(
        token_type::ERROR,
        &Message {
            number: ENCODE_FAILURE,
            state: 1,
            class: 16,
            message: format!("pcfail lab: the simulated server produced an invalid response: {e}"),
            procedure: String::new(),
            line: 1,
        },
        server,
    );
    if done_token == token_type::DONEPROC {
        w.return_status(0);
    }
    w.done(done_token, done_status::ERROR, 0, 0);
    Reply::Tokens(w.buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: u32 = crate::token::TDS_7_4;
    use crate::backend::{Column, RpcParam, SqlType, Value};

    /// Token types and DONE statuses of a response, in order (enough structure to check shapes).
    fn shape(bytes: &[u8]) -> Vec<String> {
        // Re-walks only the tokens these tests produce.
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let t = bytes[i];
            match t {
                0xFD..=0xFF => {
                    let status = u16::from_le_bytes([bytes[i + 1], bytes[i + 2]]);
                    out.push(format!("{:02X}:{status:02x}", t));
                    i += 13;
                }
                0x79 => {
                    out.push("79".into());
                    i += 5;
                }
                0xAA | 0xAB | 0xE3 | 0xAC => {
                    out.push(format!("{t:02X}"));
                    let len = u16::from_le_bytes([bytes[i + 1], bytes[i + 2]]) as usize;
                    i += 3 + len;
                    if t == 0xAC {
                        // RETURNVALUE has no length; these tests put it last.
                        break;
                    }
                }
                0x81 => {
                    // One INTN column named "n": count(2) + usertype(4) + flags(2) + 26 04 + name(3).
                    out.push("81".into());
                    i += 1 + 2 + 4 + 2 + 2 + 3;
                }
                0xD1 => {
                    out.push("D1".into());
                    i += 1 + 1 + bytes[i + 1] as usize;
                }
                _ => panic!("unexpected token {t:02X} at {i}"),
            }
        }
        out
    }

    fn rows(n: i64) -> Event {
        Event::Rows {
            columns: vec![Column {
                name: "n".into(),
                ty: SqlType::Int,
                nullable: true,
            }],
            rows: (0..n).map(|i| vec![Value::Int(i)]).collect(),
        }
    }

    fn err(number: u32) -> Event {
        Event::Error(Message {
            number,
            state: 1,
            class: 16,
            message: "x".into(),
            procedure: String::new(),
            line: 1,
        })
    }

    fn tokens(r: Reply) -> Vec<u8> {
        match r {
            Reply::Tokens(t) => t,
            Reply::Disconnect | Reply::Unanswered => panic!("unexpected non-answer"),
        }
    }

    #[test]
    fn batch_responses_have_sql_server_shapes() {
        let done = |n: Option<u64>| Event::Done {
            row_count: n,
            error: false,
        };
        let cases: Vec<(Vec<Event>, Vec<&str>)> = vec![
            (vec![], vec!["FD:00"]),
            (vec![rows(1), done(Some(1))], vec!["81", "D1", "FD:10"]),
            (
                vec![rows(2), done(Some(2)), rows(1), done(Some(1))],
                vec!["81", "D1", "D1", "FD:11", "81", "D1", "FD:10"],
            ),
            (vec![rows(1)], vec!["81", "D1", "FD:10"]),
            (vec![err(208), err(3013)], vec!["AA", "AA", "FD:02"]),
            (
                vec![
                    err(208),
                    Event::Done {
                        row_count: None,
                        error: true,
                    },
                ],
                vec!["AA", "FD:02"],
            ),
            (
                vec![
                    done(None),
                    Event::DatabaseChanged {
                        new: "a".into(),
                        old: "b".into(),
                    },
                    done(None),
                ],
                vec!["FD:01", "E3", "FD:00"],
            ),
        ];
        for (events, expected) in cases {
            let debug = format!("{events:?}");
            assert_eq!(
                shape(&tokens(batch_reply(events, "S", V))),
                expected,
                "{debug}"
            );
        }
    }

    #[test]
    fn rpc_responses_end_with_returnstatus_and_doneproc() {
        let call = RpcCall {
            proc_id: Some(10),
            proc_name: None,
            params: vec![RpcParam {
                name: "@out".into(),
                output: true,
                ty: SqlType::Int,
                value: Value::Null,
            }],
        };
        let cases: Vec<(Vec<Event>, bool, Vec<&str>)> = vec![
            (
                vec![
                    rows(1),
                    Event::Done {
                        row_count: Some(1),
                        error: false,
                    },
                ],
                true,
                vec!["81", "D1", "FF:11", "79", "FE:00"],
            ),
            (vec![], true, vec!["79", "FE:00"]),
            (vec![Event::ReturnStatus(1)], false, vec!["79", "FE:01"]),
            (vec![err(50000)], true, vec!["AA", "FF:03", "79", "FE:02"]),
            (
                vec![Event::ReturnValue {
                    name: "@out".into(),
                    ty: SqlType::Int,
                    value: Value::Int(5),
                }],
                true,
                vec!["79", "AC"],
            ),
        ];
        for (events, last, expected) in cases {
            let debug = format!("{events:?}");
            assert_eq!(
                shape(&tokens(rpc_reply(events, &call, "S", last, V))),
                expected,
                "{debug}"
            );
        }
    }

    #[test]
    fn disconnect_anywhere_means_no_answer() {
        let call = RpcCall {
            proc_id: Some(10),
            proc_name: None,
            params: vec![],
        };
        assert!(matches!(
            batch_reply(vec![rows(1), Event::Disconnect], "S", V),
            Reply::Disconnect
        ));
        assert!(matches!(
            rpc_reply(vec![Event::Disconnect], &call, "S", true, V),
            Reply::Disconnect
        ));
        assert!(matches!(
            batch_reply(vec![rows(1), Event::Unanswered], "S", V),
            Reply::Unanswered
        ));
    }

    #[test]
    fn an_unencodable_response_becomes_a_visible_error() {
        let bad = Event::Rows {
            columns: vec![Column {
                name: "n".into(),
                ty: SqlType::Int,
                nullable: false,
            }],
            rows: vec![vec![Value::String("x".into())]],
        };
        assert_eq!(
            shape(&tokens(batch_reply(vec![bad], "S", V))),
            vec!["AA", "FD:02"]
        );
    }
}
