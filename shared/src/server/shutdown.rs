//! The shutdown signal: SIGTERM (what Cloud Run and Kubernetes send) or SIGINT (Ctrl-C).

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// The shutdown signal, for handlers with long-lived work: resolves when SIGTERM (or SIGINT)
/// starts the drain, so an SSE or gRPC stream can send its final event and end within the
/// grace period.
#[derive(Debug, Clone, Default)]
pub struct Shutdown(CancellationToken);

impl Shutdown {
    /// Resolves once the drain has begun.
    pub async fn signalled(&self) {
        self.0.cancelled().await;
    }

    /// Whether the drain has begun.
    pub fn is_signalled(&self) -> bool {
        self.0.is_cancelled()
    }

    pub(crate) fn signal(&self) {
        self.0.cancel();
    }
}

/// Handlers for SIGTERM and SIGINT. Installed before the function reports ready, so that a
/// signal arriving at any moment after that drains instead of killing the process.
pub(crate) struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Installs both handlers.
    pub(crate) fn install() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves when the first of SIGTERM or SIGINT arrives, returning its name.
    pub(crate) async fn recv(mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_shutdown_signal_wakes_its_waiters() {
        let shutdown = Shutdown::default();
        let waiter = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { shutdown.signalled().await }
        });
        assert!(!shutdown.is_signalled());
        shutdown.signal();
        waiter.await.unwrap();
        assert!(shutdown.is_signalled());
    }
}
