//! The accept loop: one task per connection, all of them ended by one shutdown token.
//!
//! The listener is injected (bound by the caller, port 0 in tests), so the caller knows the address
//! before any client connects and nothing here chooses ports.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backend::Backend;
use crate::tls::Security;

/// Serves plaintext TDS on `listener` until `shutdown` is cancelled (see [`run_secured`]).
pub async fn run<B: Backend>(listener: TcpListener, backend: Arc<B>, shutdown: CancellationToken) {
    run_secured(listener, backend, Arc::new(Security::plaintext()), shutdown).await
}

/// Serves TDS on `listener` with `security`'s encryption until `shutdown` is cancelled, then stops
/// accepting, closes every connection (each one watches the same token) and returns when all of
/// them are gone.
pub async fn run_secured<B: Backend>(
    listener: TcpListener,
    backend: Arc<B>,
    security: Arc<Security>,
    shutdown: CancellationToken,
) {
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                // Requests and answers are small and strictly alternate; Nagle would add a
                // delayed-ACK stall to every round trip.
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(%peer, error = %e, "could not set TCP_NODELAY");
                }
                connections.spawn(crate::connection::serve(
                    stream,
                    peer,
                    backend.clone(),
                    security.clone(),
                    shutdown.clone(),
                ));
            }
            Err(e) => {
                // Running out of file descriptors is transient; back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}
