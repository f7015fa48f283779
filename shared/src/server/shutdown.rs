//! The shutdown signal: SIGTERM (what Cloud Run and Kubernetes send) or SIGINT (Ctrl-C).

/// Resolves when the first of SIGTERM or SIGINT arrives, returning its name.
pub(crate) async fn signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the platform's SIGKILL is the only way out; keep serving.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
