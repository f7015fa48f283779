//! The accept loop: one listener, HTTP/1.1 and h2c (or TLS with ALPN) on every connection,
//! a cap on open connections answered with 503 (and a hard cap closed at once), each
//! connection watched for its lifetime limits, and a drain on shutdown that loses no request
//! the client had already sent.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use http::{Request, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::PeerAddr;
use super::config::{ConnectionTimeouts, Limits};
use super::connection::{ConnState, Decision, InFlightBody, NO_DEADLINE, WatchedIo};
use crate::error::{ApiError, ErrorKind};
use crate::metrics::Metrics;

/// How long a TLS handshake may take before the connection is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after an accept error (such as running out of file descriptors) before retrying.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

pub(crate) struct Listener {
    pub(crate) listener: TcpListener,
    pub(crate) tls: Option<TlsAcceptor>,
    pub(crate) limits: Limits,
    pub(crate) timeouts: ConnectionTimeouts,
    pub(crate) metrics: Metrics,
}

/// What every connection task shares.
struct Shared {
    builder: auto::Builder<TokioExecutor>,
    app: Router,
    tls: Option<TlsAcceptor>,
    metrics: Metrics,
    timeouts: ConnectionTimeouts,
    /// Connections open now (ours, not the gauge, which a scrape may read mid-update).
    open: AtomicUsize,
    /// Beyond this, connections are answered 503 and closed after that answer.
    max_connections: usize,
    /// Beyond this, connections are closed at once, before any TLS handshake or read.
    hard_cap: usize,
    draining: watch::Receiver<bool>,
}

/// Connections past `MAX_CONNECTIONS` that still get their 503: a quarter more, at least 16.
fn hard_cap(max_connections: usize) -> usize {
    max_connections.saturating_add((max_connections / 4).max(16))
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
            builder: builder(&self.limits, &self.timeouts),
            app,
            tls: self.tls,
            metrics: self.metrics,
            timeouts: self.timeouts,
            open: AtomicUsize::new(0),
            max_connections: self.limits.max_connections,
            hard_cap: hard_cap(self.limits.max_connections),
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

fn builder(limits: &Limits, timeouts: &ConnectionTimeouts) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Heads up to the limit are parsed and answered with a JSON 431 by the access guard;
    // hyper's own (bodiless) 431 is the backstop at twice the limit.
    let parser_limit = limits.max_header_bytes.saturating_mul(2);
    builder
        .http1()
        .timer(TokioTimer::new())
        // hyper's header timer also runs while a keep-alive connection waits for its next
        // request, which would close idle connections the front end means to reuse: the
        // connection watcher below times heads from their first byte instead.
        .header_read_timeout(None)
        .max_buf_size(parser_limit);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(timeouts.h2_keepalive_interval)
        .keep_alive_timeout(timeouts.h2_keepalive_timeout)
        .max_header_list_size(u32::try_from(parser_limit).unwrap_or(u32::MAX));
    builder
}

fn spawn_connection(
    tracker: &TaskTracker,
    shared: &Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
) {
    let open = shared.open.load(Ordering::Relaxed);
    if open >= shared.hard_cap {
        tracing::debug!(%peer, open, "connection refused: over the hard cap");
        return;
    }
    let _ = stream.set_nodelay(true);
    let guard = ConnectionGuard::new(shared.clone());
    let over_limit = open >= shared.max_connections;
    let shared = shared.clone();
    tracker.spawn(async move {
        let _guard = guard;
        let state = Arc::new(ConnState::new(over_limit));
        match &shared.tls {
            None => serve_connection(&shared, stream, peer, state).await,
            Some(acceptor) => {
                // The handshake counts against the first-request deadline.
                let budget = shared.timeouts.first_request.min(TLS_HANDSHAKE_TIMEOUT);
                match tokio::time::timeout(budget, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => serve_connection(&shared, tls_stream, peer, state).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            }
        }
    });
}

async fn serve_connection<IO>(shared: &Shared, io: IO, peer: SocketAddr, state: Arc<ConnState>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let app = shared.app.clone();
    let conn_state = state.clone();
    let service = tower::service_fn(move |mut req: Request<Incoming>| {
        let http2 = req.version() == http::Version::HTTP_2;
        let in_flight = conn_state.request_started(http2);
        let app = app.clone();
        let over_limit = conn_state.over_limit;
        async move {
            let response = if over_limit {
                over_capacity(http2)
            } else {
                req.extensions_mut().insert(PeerAddr(peer));
                match app.oneshot(req).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            };
            // The request counts as in flight until its response body is done or dropped.
            Ok::<_, Infallible>(response.map(|body| {
                axum::body::Body::new(InFlightBody {
                    inner: body,
                    _guard: in_flight,
                })
            }))
        }
    });
    let io = WatchedIo {
        inner: io,
        state: state.clone(),
    };
    let conn = shared
        .builder
        .serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service));
    tokio::pin!(conn);
    let mut draining = shared.draining.clone();
    let mut drain_since: Option<Instant> = None;
    let mut closing: Option<Instant> = None;
    let result = loop {
        let now = Instant::now();
        let wake = match closing {
            Some(deadline) => deadline,
            None => state.next_deadline(&shared.timeouts, drain_since, now),
        };
        tokio::select! {
            result = conn.as_mut() => break result,
            changed = draining.wait_for(|d| *d), if drain_since.is_none() => {
                if changed.is_ok() {
                    drain_since = Some(Instant::now());
                }
            }
            () = state.changed.notified() => {}
            () = tokio::time::sleep_until(wake) => {}
        }
        let now = Instant::now();
        if closing.is_some_and(|deadline| now >= deadline) {
            tracing::debug!(%peer, "connection closed: it did not finish closing in time");
            return;
        }
        if closing.is_some() {
            continue;
        }
        match state.decide(&shared.timeouts, drain_since, now) {
            Decision::Wait => {}
            Decision::Close(why) => {
                tracing::debug!(%peer, why, "connection closed");
                return;
            }
            Decision::Shutdown { why, within } => {
                tracing::debug!(%peer, why, "connection closing gracefully");
                // In-flight requests finish; HTTP/2 peers get a GOAWAY; idle ones close now.
                conn.as_mut().graceful_shutdown();
                closing = Some(now + within.unwrap_or(NO_DEADLINE));
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
/// The answer on a connection beyond `MAX_CONNECTIONS`: a clear 503 rather than a reset. The
/// connection then closes (HTTP/1: `Connection: close`; HTTP/2: GOAWAY, sent by the watcher).
fn over_capacity(http2: bool) -> axum::response::Response {
    let mut response = ApiError::new(ErrorKind::Unavailable, "too many connections")
        .retry_after(1)
        .into_response();
    // HTTP/2 forbids connection headers; its GOAWAY says the same.
    if !http2 {
        response.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    response
}

/// Counts a connection, in our cap and in the `aixgo_active_connections` gauge, for as long as
/// it is open.
struct ConnectionGuard {
    shared: Arc<Shared>,
}

impl ConnectionGuard {
    fn new(shared: Arc<Shared>) -> Self {
        shared.open.fetch_add(1, Ordering::Relaxed);
        shared.metrics.active_connections.inc();
        Self { shared }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.shared.open.fetch_sub(1, Ordering::Relaxed);
        self.shared.metrics.active_connections.dec();
    }
}
