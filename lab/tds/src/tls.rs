//! Encryption as SQL Server does it: TLS carried inside PRELOGIN packets for TDS 7.x, and TLS
//! before anything else for TDS 8.0 ("strict").
//!
//! This module owns the instance's encryption setting ([`Security`]), the negotiation that turns the
//! client's PRELOGIN ENCRYPTION option into the server's answer [2.2.6.5], and the byte streams a
//! connection runs over afterwards ([`Transport`]). It does not read or answer messages: the
//! connection does, over whichever transport this module hands it.
//!
//! TDS 7.x [2.2.6.5, 3.3.5.2]: after PRELOGIN, the TLS handshake records travel as the payload of
//! PRELOGIN (0x12) packets in both directions; once the handshake is complete, TLS records go on the
//! socket as they are, and every TDS packet travels inside them. TDS 8.0 [MS-TDS 3.3.5.1 in its 8.0
//! form]: the client opens with a TLS ClientHello (first byte 0x16, ALPN `tds/8.0`), and PRELOGIN
//! is the first message inside TLS. An instance that forces encryption takes either, as SQL Server
//! 2022 with "Force Encryption" does; one set to strict takes only TDS 8.0.
//!
//! Deliberately missing: encryption of the login packet alone (client and server both OFF). The lab
//! has no "off" setting: an instance either forces encryption or does not support it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::{TlsAcceptor, server::TlsStream};

use crate::packet::{HEADER_LEN, packet_type};

/// PRELOGIN ENCRYPTION values [2.2.6.5].
pub(crate) mod encrypt {
    pub(crate) const OFF: u8 = 0x00;
    pub(crate) const ON: u8 = 0x01;
    pub(crate) const NOT_SUP: u8 = 0x02;
    pub(crate) const REQ: u8 = 0x03;
}

/// The first byte of a TLS handshake record: a TDS 8.0 client starts with its ClientHello.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// The ALPN protocol a TDS 8.0 client offers.
const TDS_8_ALPN: &[u8] = b"tds/8.0";

/// How an instance treats encryption, as its "Force Encryption" / "Force Strict Encryption"
/// settings would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encryption {
    /// No certificate: PRELOGIN answers ENCRYPT_NOT_SUP and everything is plaintext.
    NotSupported,
    /// Force Encryption: every connection is encrypted, TDS 7.x (TLS inside PRELOGIN) or TDS 8.0.
    /// A client that does not support encryption is refused.
    Required,
    /// Force Strict Encryption: TDS 8.0 only; a connection that starts with a plaintext PRELOGIN
    /// is closed.
    Strict,
}

/// An instance's encryption setting with the certificate it presents.
#[derive(Clone)]
pub struct Security {
    encryption: Encryption,
    /// For TDS 7.x: TLS 1.2 only, as SQL Server before 2022 speaks it, and the only version that
    /// can be carried inside PRELOGIN packets (TLS 1.3 sends tickets after the client considers the
    /// handshake done, which would arrive framed where the client expects raw records).
    tds7: Option<TlsAcceptor>,
    /// For TDS 8.0: TLS 1.2 or 1.3, ALPN `tds/8.0`.
    tds8: Option<TlsAcceptor>,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("encryption", &self.encryption)
            .finish_non_exhaustive()
    }
}

impl Security {
    /// No certificate, no encryption.
    pub fn plaintext() -> Security {
        Security {
            encryption: Encryption::NotSupported,
            tds7: None,
            tds8: None,
        }
    }

    /// `encryption` with the certificate chain (leaf first, DER) and its private key (PKCS#8 DER).
    /// [`Encryption::NotSupported`] ignores the certificate.
    pub fn new(
        encryption: Encryption,
        chain: Vec<Vec<u8>>,
        key_pkcs8: Vec<u8>,
    ) -> Result<Security, String> {
        if encryption == Encryption::NotSupported {
            return Ok(Security::plaintext());
        }
        let chain: Vec<rustls::pki_types::CertificateDer<'static>> =
            chain.into_iter().map(Into::into).collect();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key_pkcs8.into());
        let config = |versions: &[&'static rustls::SupportedProtocolVersion], alpn: bool| {
            // One named provider: the process may link more than one, and rustls refuses to guess.
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let mut config = rustls::ServerConfig::builder_with_provider(provider)
                .with_protocol_versions(versions)
                .map_err(|e| format!("the lab's TLS settings are not usable: {e}"))?
                .with_no_client_auth()
                .with_single_cert(chain.clone(), key.clone_key())
                .map_err(|e| format!("the lab's certificate is not usable: {e}"))?;
            config.send_tls13_tickets = 0;
            if alpn {
                config.alpn_protocols = vec![TDS_8_ALPN.to_vec()];
            }
            Ok::<_, String>(TlsAcceptor::from(Arc::new(config)))
        };
        Ok(Security {
            encryption,
            tds7: Some(config(&[&rustls::version::TLS12], false)?),
            tds8: Some(config(
                &[&rustls::version::TLS13, &rustls::version::TLS12],
                true,
            )?),
        })
    }

    pub fn encryption(&self) -> Encryption {
        self.encryption
    }

    /// The server's ENCRYPTION answer to the client's [2.2.6.5], or `None` when the server must
    /// close the connection (a client that cannot encrypt, at an instance that forces it).
    pub(crate) fn answer(&self, client: u8) -> Option<u8> {
        // The client's value may carry ENCRYPT_CLIENT_CERT (0x80) on top of the level.
        let client = client & 0x0F;
        match self.encryption {
            Encryption::NotSupported => Some(encrypt::NOT_SUP),
            Encryption::Required | Encryption::Strict => match client {
                encrypt::NOT_SUP => None,
                // A client that would encrypt only its login is told the server requires more.
                encrypt::OFF => Some(encrypt::REQ),
                _ => Some(encrypt::ON),
            },
        }
    }

    /// Whether the client's first byte starts a TDS 8.0 connection this instance accepts.
    pub(crate) fn takes_strict(&self, first_byte: u8) -> bool {
        self.tds8.is_some() && first_byte == TLS_HANDSHAKE_RECORD
    }

    /// Whether a connection that starts with a plaintext PRELOGIN is refused.
    pub(crate) fn strict_only(&self) -> bool {
        self.encryption == Encryption::Strict
    }

    /// TDS 8.0: the TLS handshake straight on the socket.
    pub(crate) async fn accept_strict(&self, tcp: TcpStream) -> io::Result<Transport> {
        let acceptor = self.tds8.as_ref().expect("checked by takes_strict");
        let tls = acceptor.accept(tcp).await?;
        Ok(Transport::Strict(Box::new(tls)))
    }

    /// TDS 7.x: the TLS handshake inside PRELOGIN packets, then TLS records on the socket.
    pub(crate) async fn accept_in_prelogin(&self, tcp: TcpStream) -> io::Result<Transport> {
        let acceptor = self
            .tds7
            .as_ref()
            .expect("encryption is only negotiated with a certificate");
        let mut tls = acceptor.accept(PreloginFraming::new(tcp)).await?;
        tls.get_mut().0.handshake_done();
        Ok(Transport::Tls(Box::new(tls)))
    }
}

/// The byte stream a connection runs over once encryption is settled.
pub(crate) enum Transport {
    Plain(TcpStream),
    /// TDS 7.x encryption: TLS whose handshake went inside PRELOGIN packets.
    Tls(Box<TlsStream<PreloginFraming<TcpStream>>>),
    /// TDS 8.0: TLS from the first byte.
    Strict(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::Strict(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::Strict(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::Strict(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Transport::Strict(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// During the TDS 7.x handshake: strips the PRELOGIN packet headers from what the client sends
/// and frames what the server's TLS writes into PRELOGIN packets, one message per flush. After
/// [`PreloginFraming::handshake_done`], bytes pass through untouched.
pub(crate) struct PreloginFraming<S> {
    inner: S,
    framing: bool,
    header: [u8; HEADER_LEN],
    header_len: usize,
    /// Payload bytes of the current client packet still to be read.
    remaining: usize,
    /// TLS bytes written since the last flush.
    outgoing: Vec<u8>,
    /// Framed bytes not yet accepted by the socket.
    framed: Vec<u8>,
    framed_sent: usize,
}

impl<S> PreloginFraming<S> {
    fn new(inner: S) -> Self {
        PreloginFraming {
            inner,
            framing: true,
            header: [0; HEADER_LEN],
            header_len: 0,
            remaining: 0,
            outgoing: Vec::new(),
            framed: Vec::new(),
            framed_sent: 0,
        }
    }

    fn handshake_done(&mut self) {
        self.framing = false;
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for PreloginFraming<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.framing {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        while this.remaining == 0 {
            while this.header_len < HEADER_LEN {
                let mut header = ReadBuf::new(&mut this.header[this.header_len..]);
                ready!(Pin::new(&mut this.inner).poll_read(cx, &mut header))?;
                let n = header.filled().len();
                if n == 0 {
                    // End of stream: TLS reports the truncated handshake.
                    return Poll::Ready(Ok(()));
                }
                this.header_len += n;
            }
            this.header_len = 0;
            if this.header[0] != packet_type::PRELOGIN {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "packet type 0x{:02x} during the TLS handshake; expected PRELOGIN",
                        this.header[0]
                    ),
                )));
            }
            let length = u16::from_be_bytes([this.header[2], this.header[3]]) as usize;
            this.remaining = length.checked_sub(HEADER_LEN).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "PRELOGIN packet shorter than its header",
                )
            })?;
        }
        let want = this.remaining.min(buf.remaining());
        let mut limited = ReadBuf::new(buf.initialize_unfilled_to(want));
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut limited))?;
        let n = limited.filled().len();
        buf.advance(n);
        this.remaining -= n;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PreloginFraming<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.framing && this.framed.is_empty() && this.outgoing.is_empty() {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        this.outgoing.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.outgoing.is_empty() {
            let payload = std::mem::take(&mut this.outgoing);
            crate::packet::frame_message(
                &mut this.framed,
                packet_type::PRELOGIN,
                0,
                &payload,
                crate::packet::DEFAULT_PACKET_SIZE,
            );
        }
        while this.framed_sent < this.framed.len() {
            let n =
                ready!(Pin::new(&mut this.inner).poll_write(cx, &this.framed[this.framed_sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            this.framed_sent += n;
        }
        this.framed.clear();
        this.framed_sent = 0;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_follow_the_negotiation_table() {
        let required = Security {
            encryption: Encryption::Required,
            tds7: None,
            tds8: None,
        };
        let plain = Security::plaintext();
        let cases = [
            (&plain, encrypt::OFF, Some(encrypt::NOT_SUP)),
            (&plain, encrypt::ON, Some(encrypt::NOT_SUP)),
            (&plain, encrypt::NOT_SUP, Some(encrypt::NOT_SUP)),
            (&required, encrypt::OFF, Some(encrypt::REQ)),
            (&required, encrypt::ON, Some(encrypt::ON)),
            (&required, encrypt::REQ, Some(encrypt::ON)),
            (&required, encrypt::ON | 0x80, Some(encrypt::ON)),
            (&required, encrypt::NOT_SUP, None),
        ];
        for (security, client, expected) in cases {
            assert_eq!(
                security.answer(client),
                expected,
                "{:?} {client:#x}",
                security.encryption
            );
        }
    }
}
