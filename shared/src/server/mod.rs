//! The one-port server: REST (axum), gRPC (tonic) and gRPC-Web (tonic-web) on one listener
//! that speaks HTTP/1.1 and h2c, with health, metrics, reflection, limits and graceful drain.

mod listener;
mod reflection;
mod shutdown;
mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use prometheus_client::registry::Registry;
use tonic::body::Body;
use tonic::server::NamedService;
use tower::{Layer, Service};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::config::{Env, RuntimeConfig};
use crate::error::StartupError;
use crate::health::{self, Health, HealthService, Identity};
use crate::logging::{self, RequestLog};
use crate::metrics::{self, GrpcMetricsLayer, Metrics};

/// The client's socket address, in every request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// A tonic-generated gRPC server (what `App::grpc` accepts).
pub trait GrpcService:
    Service<
        http::Request<Body>,
        Response = http::Response<Body>,
        Error = Infallible,
        Future: Send + 'static,
    > + NamedService
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> GrpcService for S where
    S: Service<
            http::Request<Body>,
            Response = http::Response<Body>,
            Error = Infallible,
            Future: Send + 'static,
        > + NamedService
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// Which function this is, for logs, `/health` and the exit line.
#[derive(Debug, Clone, Copy)]
pub struct Function {
    /// Binary name (`orchestrate`, `mcp-tool`, `health`).
    pub name: &'static str,
    /// Version reported by `/health`.
    pub version: &'static str,
}

/// A function being assembled: its configuration, health, metrics and routes. Built by
/// [`crate::run`]; the function adds routes, gRPC services and checks, then it serves.
pub struct App {
    function: Function,
    env: Env,
    config: Arc<RuntimeConfig>,
    health: Health,
    metrics: Metrics,
    registry: Registry,
    rest: Router,
    grpc: Router,
    grpc_names: Vec<String>,
    descriptors: Vec<&'static [u8]>,
}

impl App {
    /// A new app with the runtime's health and metrics in place and no routes yet.
    pub fn new(function: Function, env: Env, config: RuntimeConfig) -> Self {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let health = Health::new(
            Identity {
                version: function.version,
                k_service: config.k_service.clone(),
                k_revision: config.k_revision.clone(),
                k_configuration: config.k_configuration.clone(),
            },
            config.health_check_ttl,
        );
        Self {
            function,
            env,
            config: Arc::new(config),
            health,
            metrics,
            registry,
            rest: Router::new(),
            grpc: Router::new(),
            grpc_names: Vec::new(),
            descriptors: vec![tonic_health::pb::FILE_DESCRIPTOR_SET],
        }
    }

    /// The environment, for the function's own variables.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// The runtime configuration.
    pub fn config(&self) -> &Arc<RuntimeConfig> {
        &self.config
    }

    /// The health registry (add checks here).
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The runtime's metric families.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The registry, for the function's own metric families.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Which function this is.
    pub fn function(&self) -> Function {
        self.function
    }

    /// Adds REST routes (an axum router whose state is already applied).
    pub fn rest(mut self, router: Router) -> Self {
        self.rest = self.rest.merge(router);
        self
    }

    /// Adds a gRPC service, served for gRPC and gRPC-Web (binary and text) with metrics.
    pub fn grpc<S: GrpcService>(mut self, service: S) -> Self {
        self.grpc_names.push(S::NAME.to_owned());
        self.grpc = add_grpc(self.grpc, service, &self.metrics);
        self
    }

    /// Registers an encoded `FileDescriptorSet` for server reflection.
    pub fn file_descriptor_set(mut self, encoded: &'static [u8]) -> Self {
        self.descriptors.push(encoded);
        self
    }

    /// The whole service as one router (what the listener serves; tests call it directly).
    pub fn into_router(self) -> Router {
        let limits = &self.config.limits;
        let mut grpc = self.grpc;
        grpc = add_grpc(
            grpc,
            HealthService::new(self.health.clone(), self.grpc_names.clone()),
            &self.metrics,
        );
        let (v1, v1alpha) = reflection::services(self.descriptors);
        grpc = add_grpc(grpc, v1, &self.metrics);
        grpc = add_grpc(grpc, v1alpha, &self.metrics);

        let request_log = RequestLog {
            metadata_base: (self.config.on_platform() && self.config.project_id.is_none())
                .then(|| Arc::from(self.config.metadata_host.as_str())),
        };
        let rest = Router::new()
            .merge(health::router(self.health.clone()))
            .merge(metrics::router(Arc::new(self.registry)))
            .merge(self.rest)
            // REST only: gRPC has its own deadlines (grpc-timeout) and message limits.
            .layer(TimeoutLayer::with_status_code(
                StatusCode::GATEWAY_TIMEOUT,
                limits.request_timeout,
            ))
            .layer(RequestBodyLimitLayer::new(limits.max_body_bytes));
        rest.merge(grpc)
            .fallback(not_found)
            // Per route, so the route template is known; gRPC calls are skipped here and
            // counted by the gRPC metrics layer instead.
            .layer(from_fn_with_state(
                self.metrics.clone(),
                metrics::record_http,
            ))
            // Outermost but for panics: the trace span and request log cover everything.
            .layer(from_fn_with_state(request_log, logging::log_request))
            // A panicking handler becomes a 500 for its own request only.
            .layer(CatchPanicLayer::custom(panic_response))
    }

    /// Binds, serves until SIGTERM/SIGINT, then drains: readiness turns false at once, the
    /// listener closes, in-flight requests get the grace period, logs are flushed.
    pub async fn serve(self) -> Result<(), StartupError> {
        let started = Instant::now();
        let config = self.config.clone();
        let function = self.function;
        let health = self.health.clone();
        let metrics = self.metrics.clone();
        let signals = shutdown::Signals::install()
            .map_err(|e| StartupError::Other(format!("cannot install signal handlers: {e}")))?;
        let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
        let router = self.into_router();
        let addr = SocketAddr::new(config.host, config.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| StartupError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { addr, source })?;
        health.set_ready();
        tracing::info!(
            function = function.name,
            version = function.version,
            address = %local,
            tls = tls.is_some(),
            k_service = config.k_service.as_deref(),
            k_revision = config.k_revision.as_deref(),
            k_configuration = config.k_configuration.as_deref(),
            startup_ms = started.elapsed().as_secs_f64() * 1e3,
            "listening on {local}"
        );
        let grace = config.grace_period;
        let drain_health = health.clone();
        let shutdown = async move {
            let signal = signals.recv().await;
            drain_health.set_draining();
            tracing::info!(
                signal,
                grace_seconds = grace.as_secs_f64(),
                "draining: not ready, no new connections"
            );
        };
        let listener = listener::Listener {
            listener,
            tls,
            limits: config.limits.clone(),
            metrics,
        };
        let cut = listener.serve(router, shutdown, grace).await;
        if cut == 0 {
            tracing::info!("drained; exiting");
        } else {
            tracing::warn!(
                open_connections = cut,
                "grace period over with connections still open; exiting"
            );
        }
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        Ok(())
    }
}

/// Wraps a gRPC service with metrics (inside) and gRPC-Web translation (outside), and routes
/// `/{Service}/*` to it, as tonic's own `Routes` does.
fn add_grpc<S: GrpcService>(router: Router, service: S, metrics: &Metrics) -> Router {
    let service =
        tonic_web::GrpcWebLayer::new().layer(GrpcMetricsLayer::new(metrics.clone()).layer(service));
    router.route_service(
        &format!("/{}/{{*rest}}", S::NAME),
        tower::ServiceExt::map_request(service, |req: Request| req.map(Body::new)),
    )
}

/// No route: gRPC callers get UNIMPLEMENTED, everyone else a JSON 404.
async fn not_found(req: Request) -> Response {
    let is_grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if is_grpc {
        let path = req.uri().path();
        return tonic::Status::unimplemented(format!("unknown service or method {path}"))
            .into_http::<Body>()
            .into_response();
    }
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"error": format!("no route for {} {}", req.method(), req.uri().path()), "status": 404})),
    )
        .into_response()
}

fn panic_response(
    panic: Box<dyn std::any::Any + Send + 'static>,
) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = detail, "handler panicked");
    let mut response = http::Response::new(http_body_util::Full::from(
        r#"{"error":"internal error","status":500}"#,
    ));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body as AxumBody;
    use axum::routing::{get, post};
    use tower::ServiceExt;

    const TEST: Function = Function {
        name: "test",
        version: "0",
    };

    fn app(pairs: &[(&str, &str)]) -> Router {
        let env = Env::from_pairs(pairs.iter().copied());
        let config = RuntimeConfig::from_env(&env, false).unwrap();
        let routes = Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .route("/echo", post(|body: String| async move { body }))
            .route(
                "/panic",
                get(|| async {
                    if true {
                        panic!("handler bug");
                    }
                    "unreachable"
                }),
            );
        App::new(TEST, env, config).rest(routes).into_router()
    }

    async fn status(router: Router, req: http::Request<AxumBody>) -> StatusCode {
        router.oneshot(req).await.unwrap().status()
    }

    #[tokio::test]
    async fn a_request_over_the_time_limit_gets_504() {
        let router = app(&[("REQUEST_TIMEOUT", "20ms")]);
        let req = http::Request::get("/slow").body(AxumBody::empty()).unwrap();
        assert_eq!(status(router, req).await, StatusCode::GATEWAY_TIMEOUT);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_gets_413_even_without_content_length() {
        let router = app(&[("MAX_REQUEST_BODY_BYTES", "1KiB")]);
        let stream = futures_util::stream::iter(
            (0..4).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'x'; 512]))),
        );
        let req = http::Request::post("/echo")
            .body(AxumBody::from_stream(stream))
            .unwrap();
        assert_eq!(
            status(router.clone(), req).await,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let req = http::Request::post("/echo")
            .body(AxumBody::from("ok"))
            .unwrap();
        assert_eq!(status(router, req).await, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_500_for_that_request_only() {
        let router = app(&[]);
        let req = http::Request::get("/panic")
            .body(AxumBody::empty())
            .unwrap();
        assert_eq!(
            status(router.clone(), req).await,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let req = http::Request::get("/health/live")
            .body(AxumBody::empty())
            .unwrap();
        assert_eq!(status(router, req).await, StatusCode::OK);
    }
}
