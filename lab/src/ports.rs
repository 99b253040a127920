//! Choosing the instances' TCP ports: below the kernel's ephemeral range, so they can come back.
//!
//! An instance's port must survive a disaster: after `disaster` closes the listener, `rebuild_primary`
//! binds the same port again. A port handed out by the kernel (bind to port 0) lies in the ephemeral
//! range, which is also where every outgoing connection on the machine takes its local port; once the
//! listener is closed, any client socket (a test's, pcfail's) can grab that port, and the rebind fails
//! with "address in use" for as long as that socket, or its TIME_WAIT, lives. Ports below the
//! ephemeral range are only ever taken by an explicit bind, as SQL Server's fixed 1433 is.

use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::error::LabError;
use crate::fsutil;

/// How many ports below the ephemeral range the lab chooses from.
const POOL_SIZE: u16 = 12_000;
/// How many candidates to try before giving up (each try is one failed bind).
const ATTEMPTS: u16 = 500;
/// Linux's default when /proc does not say.
const DEFAULT_EPHEMERAL_LOW: u16 = 32_768;

/// Binds 127.0.0.1 on a free port below the ephemeral range, starting at a random candidate so that
/// concurrent labs rarely probe the same ports.
pub(crate) async fn bind_fresh(role: &'static str) -> Result<TcpListener, LabError> {
    let (low, high) = candidate_range(ephemeral_low());
    let span = high - low;
    let start = u16::from_le_bytes(fsutil::random_bytes::<2>()?) % span;
    let mut last_error = None;
    for i in 0..ATTEMPTS.min(span) {
        let port = low + (start + i) % span;
        match TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = Some(e),
        }
    }
    Err(LabError::Listen {
        role,
        address: format!("127.0.0.1:{low}-{high}"),
        source: last_error.unwrap_or_else(|| std::io::Error::other("no candidate ports")),
    })
}

/// A UDP socket on 127.0.0.1 for a host's SQL Browser: `wanted` (the port lab.json recorded) when
/// given, else a free port below the ephemeral range, chosen as for TCP.
pub(crate) async fn bind_udp(
    role: &'static str,
    wanted: Option<SocketAddr>,
) -> Result<tokio::net::UdpSocket, LabError> {
    let listen_error = |address: String, source| LabError::Listen {
        role,
        address,
        source,
    };
    if let Some(address) = wanted {
        return tokio::net::UdpSocket::bind(address)
            .await
            .map_err(|e| listen_error(format!("udp {address}"), e));
    }
    let (low, high) = candidate_range(ephemeral_low());
    let span = high - low;
    let start = u16::from_le_bytes(fsutil::random_bytes::<2>()?) % span;
    let mut last_error = None;
    for i in 0..ATTEMPTS.min(span) {
        let port = low + (start + i) % span;
        match tokio::net::UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], port))).await {
            Ok(socket) => return Ok(socket),
            Err(e) => last_error = Some(e),
        }
    }
    Err(listen_error(
        format!("udp 127.0.0.1:{low}-{high}"),
        last_error.unwrap_or_else(|| std::io::Error::other("no candidate ports")),
    ))
}

/// The lower bound of `net.ipv4.ip_local_port_range`.
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(DEFAULT_EPHEMERAL_LOW)
}

/// `[low, high)`: up to POOL_SIZE ports just below the ephemeral range, never privileged ones.
fn candidate_range(ephemeral_low: u16) -> (u16, u16) {
    let high = ephemeral_low.max(1024 + 100);
    (high.saturating_sub(POOL_SIZE).max(1024), high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_stay_below_the_ephemeral_range_and_above_the_privileged_ports() {
        let cases = [
            (32_768, (20_768, 32_768)),
            (10_000, (1024, 10_000)),
            (500, (1024, 1124)),
        ];
        for (ephemeral, expected) in cases {
            assert_eq!(candidate_range(ephemeral), expected, "{ephemeral}");
        }
    }

    #[tokio::test]
    async fn a_fresh_port_is_outside_the_ephemeral_range() {
        let listener = bind_fresh("primary").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(port < ephemeral_low() && port >= 1024, "{port}");
    }
}
