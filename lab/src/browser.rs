//! The SQL Server Browser service of each lab host: SSRP over UDP [MS-SQLR], so clients find a named
//! instance's TCP port as they do at a real site (`host\INSTANCE`).
//!
//! A real host runs one Browser on UDP 1434 for all its instances. The lab's four hosts share
//! 127.0.0.1, so each gets a Browser of its own on a port of its own (lab.json `browser`), answering
//! for its one instance. It answers whether or not the instance's service runs (the Browser is a
//! service of its own), and answers nothing while the host is lost, as a vanished host would.
//!
//! Requests [MS-SQLR 2.2.1-2.2.4]: CLNT_BCAST_EX (0x02) and CLNT_UCAST_EX (0x03) list the host's
//! instances; CLNT_UCAST_INST (0x04) names one, and an unknown name gets no answer. The answer
//! is SVR_RESP (0x05), its size (u16 LE), then `ServerName;H;InstanceName;I;IsClustered;No;
//! Version;V;tcp;PORT;;`. The dedicated admin connection (0x0F) is not modelled.

use std::net::SocketAddr;
use std::sync::Arc;

use pcfail_lab_tds::Backend;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::engine::InstanceBackend;

const CLNT_BCAST_EX: u8 = 0x02;
const CLNT_UCAST_EX: u8 = 0x03;
const CLNT_UCAST_INST: u8 = 0x04;
const SVR_RESP: u8 = 0x05;

/// What one host's Browser knows about its instance.
pub(crate) struct Listing {
    /// The host name, e.g. `DAL-SQL-001`.
    pub(crate) host: String,
    /// The instance name, e.g. `PCHAT`.
    pub(crate) instance: String,
    /// SQL Server's version as the Browser reports it.
    pub(crate) version: String,
    /// The instance's TCP address.
    pub(crate) tcp: SocketAddr,
}

impl Listing {
    fn text(&self) -> String {
        format!(
            "ServerName;{};InstanceName;{};IsClustered;No;Version;{};tcp;{};;",
            self.host,
            self.instance,
            self.version,
            self.tcp.port()
        )
    }

    /// The answer to one request, or `None` when the Browser stays silent.
    pub(crate) fn answer(&self, request: &[u8]) -> Option<Vec<u8>> {
        let text = match *request.first()? {
            CLNT_BCAST_EX | CLNT_UCAST_EX => self.text(),
            CLNT_UCAST_INST => {
                let name = &request[1..];
                // The name may come NUL-terminated [MS-SQLR 2.2.3]; tiberius sends it without.
                let name = name.split(|b| *b == 0).next().unwrap_or_default();
                let name = std::str::from_utf8(name).ok()?;
                if !name.eq_ignore_ascii_case(&self.instance) {
                    return None;
                }
                self.text()
            }
            _ => return None,
        };
        let mut out = vec![SVR_RESP];
        out.extend_from_slice(&(text.len() as u16).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
        Some(out)
    }
}

/// Answers SSRP requests on `socket` until `stop` is cancelled; silent while the host is lost.
pub(crate) async fn serve(
    socket: UdpSocket,
    listing: Listing,
    backend: Arc<InstanceBackend>,
    stop: CancellationToken,
) {
    let mut buf = [0u8; 1024];
    loop {
        let (len, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(error = %e, "browser: receive failed");
                    continue;
                }
            },
        };
        if backend.unreachable().is_some() {
            continue;
        }
        if let Some(answer) = listing.answer(&buf[..len])
            && let Err(e) = socket.send_to(&answer, peer).await
        {
            tracing::debug!(%peer, error = %e, "browser: answer not sent");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_name_the_port_only_for_the_hosts_instance() {
        let listing = Listing {
            host: "DAL-SQL-001".into(),
            instance: "PCHAT".into(),
            version: "13.0.5026.0".into(),
            tcp: "127.0.0.1:41003".parse().unwrap(),
        };
        let text = "ServerName;DAL-SQL-001;InstanceName;PCHAT;IsClustered;No;Version;13.0.5026.0;tcp;41003;;";
        let mut expected = vec![SVR_RESP, text.len() as u8, 0];
        expected.extend_from_slice(text.as_bytes());
        let cases: [(&[u8], Option<&[u8]>); 6] = [
            (b"\x04PCHAT", Some(&expected)),
            (b"\x04pchat\0", Some(&expected)),
            (b"\x03", Some(&expected)),
            (b"\x02", Some(&expected)),
            (b"\x04OTHER", None),
            (b"", None),
        ];
        for (request, answer) in cases {
            assert_eq!(listing.answer(request).as_deref(), answer, "{request:?}");
        }
    }
}
