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
//! Plaintext only: PRELOGIN answers ENCRYPT_NOT_SUP, so clients must use
//! `EncryptionLevel::NotSupported`.

mod backend;
mod connection;
mod error;
mod login;
mod packet;
mod prelogin;
mod request;
mod response;
mod server;
mod token;
mod wire;

pub use backend::{
    Backend, Column, Event, Login, Message, RpcCall, RpcParam, Session, SqlType, Value,
};
pub use error::ProtocolError;
pub use server::run;
pub use token::EncodeError;
