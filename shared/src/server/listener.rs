//! The accept loop: one listener, HTTP/1.1 and h2c (or TLS with ALPN) on every connection,
//! a cap on open connections answered with 503, and a drain on shutdown that loses no request
//! the client had already sent.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::PeerAddr;
use crate::config::Limits;
use crate::metrics::Metrics;

/// How long a TLS handshake may take before the connection is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after an accept error (such as running out of file descriptors) before retrying.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);
/// On drain, how long a connection that has not delivered a request yet may take to do so.
/// A client that connected before the signal has usually written its request already; hyper
/// would otherwise drop those unread bytes and reset the connection.
const FIRST_REQUEST_WINDOW: Duration = Duration::from_secs(1);

pub(crate) struct Listener {
    pub(crate) listener: TcpListener,
    pub(crate) tls: Option<TlsAcceptor>,
    pub(crate) limits: Limits,
    pub(crate) metrics: Metrics,
}

/// What every connection task shares.
struct Shared {
    builder: auto::Builder<TokioExecutor>,
    app: Router,
    tls: Option<TlsAcceptor>,
    metrics: Metrics,
    max_connections: usize,
    draining: watch::Receiver<bool>,
}

impl Listener {
    /// Serves `app` until `shutdown` resolves. Then: connections already queued by the kernel
    /// are still accepted, the listener closes, each connection finishes its in-flight requests
    /// and closes, and all of that gets up to `grace`. Returns how many connections were still
    /// open when the grace period ran out (0 on a clean drain).
    pub(crate) async fn serve(
        self,
        app: Router,
        shutdown: impl Future<Output = ()>,
        grace: Duration,
    ) -> usize {
        let (drain_tx, draining) = watch::channel(false);
        let shared = Arc::new(Shared {
            builder: builder(&self.limits),
            app,
            tls: self.tls,
            metrics: self.metrics,
            max_connections: self.limits.max_connections,
            draining,
        });
        let tracker = TaskTracker::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => spawn_connection(&tracker, &shared, stream, peer),
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
                () = &mut shutdown => break,
            }
        }
        let _ = drain_tx.send(true);
        // Clients whose connection the kernel completed before the signal are owed an answer.
        while let Some(Ok((stream, peer))) = accept_queued(&self.listener) {
            spawn_connection(&tracker, &shared, stream, peer);
        }
        drop(self.listener);
        tracker.close();
        match tokio::time::timeout(grace, tracker.wait()).await {
            Ok(()) => 0,
            Err(_) => tracker.len(),
        }
    }
}

/// One connection already waiting in the accept queue, without waiting for more.
fn accept_queued(listener: &TcpListener) -> Option<std::io::Result<(TcpStream, SocketAddr)>> {
    let waker = std::task::Waker::noop();
    match listener.poll_accept(&mut std::task::Context::from_waker(waker)) {
        std::task::Poll::Ready(result) => Some(result),
        std::task::Poll::Pending => None,
    }
}

fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper answers a request head larger than its read buffer with 431.
    builder
        .http1()
        .timer(TokioTimer::new())
        .max_buf_size(limits.max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

fn spawn_connection(
    tracker: &TaskTracker,
    shared: &Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
) {
    let _ = stream.set_nodelay(true);
    let guard = ConnectionGuard::new(shared.metrics.clone());
    let over_limit = shared.metrics.active_connections.get() > shared.max_connections as i64;
    let shared = shared.clone();
    tracker.spawn(async move {
        let _guard = guard;
        match &shared.tls {
            None => serve_connection(&shared, stream, peer, over_limit).await,
            Some(acceptor) => {
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => {
                        serve_connection(&shared, tls_stream, peer, over_limit).await
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            }
        }
    });
}

async fn serve_connection<IO>(shared: &Shared, io: IO, peer: SocketAddr, over_limit: bool)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Stores a permit once the connection has delivered a request (see FIRST_REQUEST_WINDOW).
    let first_request = Arc::new(Notify::new());
    let seen = first_request.clone();
    let app = shared.app.clone();
    let service = tower::service_fn(move |mut req: Request<Incoming>| {
        seen.notify_one();
        let app = app.clone();
        async move {
            if over_limit {
                return Ok::<_, Infallible>(over_capacity());
            }
            req.extensions_mut().insert(PeerAddr(peer));
            app.oneshot(req).await
        }
    });
    let conn = shared
        .builder
        .serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service));
    tokio::pin!(conn);
    let mut draining = shared.draining.clone();
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = async { drop(draining.wait_for(|d| *d).await) } => {
            tokio::select! {
                result = conn.as_mut() => result,
                () = async {
                    let _ = tokio::time::timeout(FIRST_REQUEST_WINDOW, first_request.notified()).await;
                } => {
                    // In-flight requests finish; idle keep-alive connections close now.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// The answer on a connection beyond `MAX_CONNECTIONS`: a clear 503 rather than a reset.
fn over_capacity() -> axum::response::Response {
    let mut response = Response::new(axum::body::Body::new(Full::new(Bytes::from_static(
        br#"{"error":"too many connections","status":503}"#,
    ))));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    headers.insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    response
}

/// Counts a connection in the `aixgo_active_connections` gauge for as long as it is open.
struct ConnectionGuard {
    metrics: Metrics,
}

impl ConnectionGuard {
    fn new(metrics: Metrics) -> Self {
        metrics.active_connections.inc();
        Self { metrics }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.metrics.active_connections.dec();
    }
}
