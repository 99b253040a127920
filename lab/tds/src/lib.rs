//! Server side of the TDS protocol (7.2 to 7.4) for the pcfail lab.
//!
//! Owns framing, PRELOGIN, LOGIN7, request decoding and token encoding; gives SQL no meaning (that is
//! the [`Backend`]'s job). See `/work/shared/reference/tds-wire-notes.md` for the facts it follows.
//!
//! ```text
//! TcpListener -> server::run (accept, one task per socket, shutdown token)
//!   -> connection (PRELOGIN, LOGIN7, request loop; watches socket + KILL token + shutdown)
//!        packet   bytes <-> messages (8-byte headers, EOM, packet size)
//!        prelogin / login / request   messages -> plain data (Login, SQL text, RpcCall)
//!        Backend / Session            plain data -> Vec<Event>
//!        response + token             Vec<Event> -> tokens (COLMETADATA, ROW, DONE, ...)
//! ```
//!
//! Encryption is the instance's [`Security`]: plaintext (PRELOGIN answers ENCRYPT_NOT_SUP),
//! required (TLS inside PRELOGIN for TDS 7.x, or TDS 8.0), or strict (TDS 8.0 only); see `tls`.
//! Windows logins (NTLMv2 inside LOGIN7's SSPI) are verified here, against the accounts the
//! backend knows; see `ntlm`.

mod backend;
mod connection;
mod error;
mod login;
mod ntlm;
mod packet;
mod prelogin;
mod request;
mod response;
mod server;
mod tls;
mod token;
mod wire;

pub use backend::{
    Backend, Column, Event, Login, Message, RpcCall, RpcParam, Session, SqlType, Value,
    WindowsDomain,
};
pub use error::ProtocolError;
pub use server::{run, run_secured};
pub use tls::{Encryption, Security};
pub use token::EncodeError;
