//! Why a connection had to be closed: the protocol layer's typed errors.
//!
//! Nothing here ever reaches the client as a token. A [`ProtocolError`] means the peer broke the
//! framing or sent something we cannot decode, or the socket failed; the connection loop logs it and
//! closes the socket, because after a framing error there is no reliable place to resynchronise.
//! Errors the *client* should see (failed logins, SQL errors) travel as [`crate::Message`]s instead.

use std::io;

/// A reason to drop a connection.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("socket error: {0}")]
    Io(#[from] io::Error),

    /// A packet header that cannot be right [2.2.3.1]: length shorter than the header or longer
    /// than the largest packet we accept.
    #[error("bad packet header: length {length} (type 0x{packet_type:02x})")]
    BadPacketLength { packet_type: u8, length: u16 },

    /// The packets of one message disagree about the message type.
    #[error("packet of type 0x{got:02x} inside a message of type 0x{expected:02x}")]
    MixedPacketTypes { expected: u8, got: u8 },

    /// A client message larger than we are willing to buffer.
    #[error("message larger than {limit} bytes")]
    MessageTooLarge { limit: usize },

    /// The payload ended in the middle of a field.
    #[error("truncated {what}")]
    Truncated { what: &'static str },

    /// A field whose value makes no sense (bad offset, unknown type, bad UTF-16).
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },

    /// A message type that is not valid at this point of the conversation.
    #[error("unexpected message type 0x{packet_type:02x} while {state}")]
    UnexpectedMessage {
        packet_type: u8,
        state: &'static str,
    },

    /// The peer closed the socket in the middle of a message.
    #[error("connection closed in the middle of a message")]
    UnexpectedEof,
}

impl ProtocolError {
    pub(crate) fn malformed(what: &'static str, detail: impl Into<String>) -> Self {
        ProtocolError::Malformed {
            what,
            detail: detail.into(),
        }
    }
}
