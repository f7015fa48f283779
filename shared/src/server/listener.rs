//! The accept loop: one listener, HTTP/1.1 and h2c (or TLS with ALPN) on every connection,
//! a cap on open connections answered with 503, and a graceful drain on shutdown.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::PeerAddr;
use crate::config::Limits;
use crate::metrics::Metrics;

/// How long a TLS handshake may take before the connection is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after an accept error (such as running out of file descriptors) before retrying.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

pub(crate) struct Listener {
    pub(crate) listener: TcpListener,
    pub(crate) tls: Option<TlsAcceptor>,
    pub(crate) limits: Limits,
    pub(crate) metrics: Metrics,
}

impl Listener {
    /// Serves `app` until `shutdown` resolves, then stops accepting and gives in-flight
    /// requests up to `grace` to finish. Returns how many connections were still open when
    /// the grace period ran out (0 on a clean drain).
    pub(crate) async fn serve(
        self,
        app: Router,
        shutdown: impl Future<Output = ()>,
        grace: Duration,
    ) -> usize {
        let builder = Arc::new(self.builder());
        let graceful = GracefulShutdown::new();
        let open = Arc::new(AtomicUsize::new(0));
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let guard = ConnectionGuard::new(open.clone(), self.metrics.clone());
            let over_limit = guard.count > self.limits.max_connections;
            let service = if over_limit {
                None
            } else {
                Some(app.clone().map_request(move |mut req: Request<Incoming>| {
                    req.extensions_mut().insert(PeerAddr(peer));
                    req
                }))
            };
            let builder = builder.clone();
            let watcher = graceful.watcher();
            let tls = self.tls.clone();
            tokio::spawn(async move {
                let _guard = guard;
                match tls {
                    None => serve_connection(&builder, watcher, stream, service).await,
                    Some(acceptor) => {
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(tls_stream)) => {
                                serve_connection(&builder, watcher, tls_stream, service).await
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed")
                            }
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    }
                }
            });
        }
        drop(self.listener);
        tokio::select! {
            () = graceful.shutdown() => 0,
            () = tokio::time::sleep(grace) => open.load(Ordering::SeqCst),
        }
    }

    fn builder(&self) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // hyper answers a request head larger than its read buffer with 431.
        builder
            .http1()
            .timer(TokioTimer::new())
            .max_buf_size(self.limits.max_header_bytes);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(self.limits.max_header_bytes).unwrap_or(u32::MAX));
        builder
    }
}

async fn serve_connection<IO, S>(
    builder: &auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    io: IO,
    service: Option<S>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<Request<Incoming>, Response = axum::response::Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let io = TokioIo::new(io);
    let result = match service {
        Some(service) => {
            let conn =
                builder.serve_connection_with_upgrades(io, TowerToHyperService::new(service));
            watcher.watch(conn.into_owned()).await
        }
        None => {
            let conn = builder.serve_connection(io, hyper::service::service_fn(over_capacity));
            watcher.watch(conn.into_owned()).await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// The answer on a connection beyond `MAX_CONNECTIONS`: a clear 503 rather than a reset.
async fn over_capacity(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(
        br#"{"error":"too many connections","status":503}"#,
    )));
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
    Ok(response)
}

/// Counts a connection in the open total and the `aixgo_active_connections` gauge.
struct ConnectionGuard {
    open: Arc<AtomicUsize>,
    metrics: Metrics,
    count: usize,
}

impl ConnectionGuard {
    fn new(open: Arc<AtomicUsize>, metrics: Metrics) -> Self {
        let count = open.fetch_add(1, Ordering::SeqCst) + 1;
        metrics.active_connections.inc();
        Self {
            open,
            metrics,
            count,
        }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
        self.metrics.active_connections.dec();
    }
}
