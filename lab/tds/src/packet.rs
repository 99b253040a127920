//! TDS packet framing [2.2.3]: the 8-byte header, reassembly of client messages, and splitting of
//! server messages into packets of the negotiated size.
//!
//! This module knows message boundaries and nothing about what a message means. Reading is
//! cancel-safe (all partial state lives in [`MessageReader`]), so the connection loop can `select!`
//! between the next client message and a running request without losing bytes; that is how an
//! Attention arriving mid-request is seen.

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::ProtocolError;

/// Packet header length [2.2.3.1].
pub(crate) const HEADER_LEN: usize = 8;

/// Packet types [2.2.3.1.1].
pub(crate) mod packet_type {
    pub(crate) const SQL_BATCH: u8 = 0x01;
    pub(crate) const RPC: u8 = 0x03;
    pub(crate) const TABULAR_RESULT: u8 = 0x04;
    pub(crate) const ATTENTION: u8 = 0x06;
    pub(crate) const TRANSACTION_MANAGER: u8 = 0x0E;
    pub(crate) const LOGIN7: u8 = 0x10;
    pub(crate) const SSPI: u8 = 0x11;
    pub(crate) const PRELOGIN: u8 = 0x12;
}

/// Status bits [2.2.3.1.2].
const STATUS_EOM: u8 = 0x01;
const STATUS_IGNORE: u8 = 0x02;

/// We buffer a whole client message before decoding it; the lab's requests are small, and this
/// bound keeps a garbage length stream from eating memory.
pub(crate) const MAX_MESSAGE_LEN: usize = 64 * 1024 * 1024;

/// The packet size a server uses until LOGIN7 negotiates one; also SQL Server's default.
pub(crate) const DEFAULT_PACKET_SIZE: usize = 4096;

/// One reassembled client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientMessage {
    pub(crate) packet_type: u8,
    pub(crate) payload: Vec<u8>,
}

/// Reads whole client messages from a byte stream.
pub(crate) struct MessageReader<R> {
    io: R,
    /// Bytes read from the socket but not yet consumed as packets.
    buf: Vec<u8>,
    /// The message being assembled: its type and payload so far.
    partial: Option<ClientMessage>,
}

impl<R: AsyncRead + Unpin> MessageReader<R> {
    pub(crate) fn new(io: R) -> Self {
        MessageReader {
            io,
            buf: Vec::with_capacity(DEFAULT_PACKET_SIZE),
            partial: None,
        }
    }

    /// Bytes read past the last complete message (a client that sent its next message without
    /// waiting for the answer), to hand to the reader that takes over the stream.
    pub(crate) fn leftover(&self) -> Vec<u8> {
        self.buf.clone()
    }

    /// Starts with `bytes` already read from the stream (see [`MessageReader::leftover`]).
    pub(crate) fn prefill(&mut self, bytes: Vec<u8>) {
        self.buf.extend(bytes);
    }

    /// The next complete message, or `None` on a clean end of stream between messages.
    ///
    /// Cancel-safe: the only await point is a single `read`, and everything read is kept in `self`.
    pub(crate) async fn next_message(&mut self) -> Result<Option<ClientMessage>, ProtocolError> {
        loop {
            if let Some(msg) = self.take_buffered()? {
                return Ok(Some(msg));
            }
            let mut chunk = [0u8; 8192];
            let n = self.io.read(&mut chunk).await?;
            if n == 0 {
                return if self.buf.is_empty() && self.partial.is_none() {
                    Ok(None)
                } else {
                    Err(ProtocolError::UnexpectedEof)
                };
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Consumes complete packets from the buffer until a message is complete or bytes run out.
    fn take_buffered(&mut self) -> Result<Option<ClientMessage>, ProtocolError> {
        loop {
            if self.buf.len() < HEADER_LEN {
                return Ok(None);
            }
            let packet_type = self.buf[0];
            let status = self.buf[1];
            // Length is big-endian and includes the header [2.2.3.1.3].
            let length = u16::from_be_bytes([self.buf[2], self.buf[3]]);
            if (length as usize) < HEADER_LEN {
                return Err(ProtocolError::BadPacketLength {
                    packet_type,
                    length,
                });
            }
            if self.buf.len() < length as usize {
                return Ok(None);
            }
            let msg = self.partial.get_or_insert_with(|| ClientMessage {
                packet_type,
                payload: Vec::new(),
            });
            if msg.packet_type != packet_type {
                return Err(ProtocolError::MixedPacketTypes {
                    expected: msg.packet_type,
                    got: packet_type,
                });
            }
            if msg.payload.len() + length as usize > MAX_MESSAGE_LEN {
                return Err(ProtocolError::MessageTooLarge {
                    limit: MAX_MESSAGE_LEN,
                });
            }
            msg.payload
                .extend_from_slice(&self.buf[HEADER_LEN..length as usize]);
            self.buf.drain(..length as usize);
            if status & STATUS_EOM != 0 {
                let msg = self.partial.take().expect("partial was just inserted");
                // A client may abandon a message it started by sending its last packet with
                // IGNORE set [2.2.3.1.2]; the server discards the whole message.
                if status & STATUS_IGNORE != 0 {
                    continue;
                }
                return Ok(Some(msg));
            }
        }
    }
}

/// Appends `payload` to `out` as a server message of `packet_type`, split into packets of at most
/// `packet_size` bytes (header included), EOM on the last, `spid` in every header [2.2.3.1].
pub(crate) fn frame_message(
    out: &mut Vec<u8>,
    packet_type: u8,
    spid: u16,
    payload: &[u8],
    packet_size: usize,
) {
    let chunk = packet_size.clamp(512, u16::MAX as usize) - HEADER_LEN;
    // An empty message still needs one (EOM) packet.
    let mut pieces: Vec<&[u8]> = payload.chunks(chunk).collect();
    if pieces.is_empty() {
        pieces.push(&[]);
    }
    let last = pieces.len() - 1;
    for (i, piece) in pieces.into_iter().enumerate() {
        let status = if i == last { STATUS_EOM } else { 0 };
        let length = (piece.len() + HEADER_LEN) as u16;
        out.push(packet_type);
        out.push(status);
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&spid.to_be_bytes());
        // Packet id counts packets within the message, wrapping at 256 [2.2.3.1.5].
        out.push(((i + 1) % 256) as u8);
        out.push(0); // window, unused [2.2.3.1.6]
        out.extend_from_slice(piece);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(ty: u8, status: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![ty, status];
        p.extend_from_slice(&((payload.len() + HEADER_LEN) as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0, 1, 0]);
        p.extend_from_slice(payload);
        p
    }

    async fn read_all(bytes: Vec<u8>) -> Vec<Result<Option<ClientMessage>, String>> {
        let mut reader = MessageReader::new(&bytes[..]);
        let mut out = Vec::new();
        loop {
            let r = reader.next_message().await.map_err(|e| e.to_string());
            let stop = !matches!(r, Ok(Some(_)));
            out.push(r);
            if stop {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn messages_are_reassembled_until_eom() {
        let mut bytes = packet(1, 0, b"hel");
        bytes.extend(packet(1, 0, b"lo "));
        bytes.extend(packet(1, STATUS_EOM, b"world"));
        bytes.extend(packet(6, STATUS_EOM, b""));
        let got = read_all(bytes).await;
        assert_eq!(
            got,
            vec![
                Ok(Some(ClientMessage {
                    packet_type: 1,
                    payload: b"hello world".to_vec()
                })),
                Ok(Some(ClientMessage {
                    packet_type: 6,
                    payload: vec![]
                })),
                Ok(None),
            ]
        );
    }

    #[tokio::test]
    async fn bad_framing_is_an_error_not_a_panic() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![1, 1, 0, 3, 0, 0, 0, 0], "bad packet header"),
            (
                [packet(1, 0, b"a"), packet(3, 1, b"b")].concat(),
                "inside a message",
            ),
            (packet(1, 0, b"abc"), "closed in the middle"),
            (vec![1, 1, 0, 20, 0], "closed in the middle"),
        ];
        for (bytes, expected) in cases {
            let got = read_all(bytes).await;
            let err = got.last().unwrap().clone().unwrap_err();
            assert!(err.contains(expected), "{err} should contain {expected}");
        }
    }

    #[tokio::test]
    async fn a_message_ended_with_ignore_is_discarded() {
        let mut bytes = packet(1, 0, b"abc");
        bytes.extend(packet(1, STATUS_EOM | STATUS_IGNORE, b""));
        bytes.extend(packet(1, STATUS_EOM, b"x"));
        let got = read_all(bytes).await;
        assert_eq!(
            got[0],
            Ok(Some(ClientMessage {
                packet_type: 1,
                payload: b"x".to_vec()
            }))
        );
    }

    #[test]
    fn outgoing_messages_are_split_at_the_packet_size_with_eom_last() {
        let cases: &[(usize, usize, usize)] =
            &[(0, 512, 1), (504, 512, 1), (505, 512, 2), (5000, 4096, 2)];
        for &(len, size, packets) in cases {
            let payload = vec![7u8; len];
            let mut out = Vec::new();
            frame_message(&mut out, 4, 53, &payload, size);
            let mut pos = 0;
            let mut seen = 0;
            let mut body = Vec::new();
            while pos < out.len() {
                let l = u16::from_be_bytes([out[pos + 2], out[pos + 3]]) as usize;
                assert!(l <= size);
                assert_eq!(&out[pos + 4..pos + 6], &53u16.to_be_bytes());
                seen += 1;
                let eom = out[pos + 1] == STATUS_EOM;
                assert_eq!(eom, pos + l == out.len(), "EOM only on the last packet");
                body.extend_from_slice(&out[pos + HEADER_LEN..pos + l]);
                pos += l;
            }
            assert_eq!(seen, packets, "len {len} size {size}");
            assert_eq!(body, payload);
        }
    }
}
