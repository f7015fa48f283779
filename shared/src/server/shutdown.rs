//! The shutdown signal: SIGTERM (what Cloud Run and Kubernetes send) or SIGINT (Ctrl-C).

use tokio::signal::unix::{Signal, SignalKind, signal};

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
