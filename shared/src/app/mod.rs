//! A function being assembled: the runtime's configuration, health, metrics and routes, put
//! together by [`crate::run`] and the function's `setup`, then served on the server's one port.

mod config;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::Route;
use prometheus_client::registry::Registry;
use tokio_util::task::TaskTracker;
use tonic::body::Body;
use tower::{Layer, Service};
use tower_http::catch_panic::CatchPanicLayer;

pub use config::RuntimeConfig;

use crate::config::Env;
use crate::error::{ApiError, ErrorKind, StartupError};
use crate::health::{self, Health, HealthService, Identity};
use crate::logging::{self, RequestLog};
use crate::metrics::{self, GrpcMetricsLayer, Metrics};
use crate::server::grpc_limits::GrpcLimitsLayer;
use crate::server::{
    AccessPolicy, GrpcService, RouteLimits, Shutdown, access, auth, limits, listener, reflection,
    shutdown, tls,
};

/// Which function this is, for logs, `/health` and the exit line.
#[derive(Debug, Clone, Copy)]
pub struct Function {
    /// Binary name (`orchestrate`, `mcp-tool`, `health`).
    pub name: &'static str,
    /// Version reported by `/health`.
    pub version: &'static str,
}

/// A function being assembled: its configuration, health, metrics and routes. Built by
/// [`crate::run`]; the function adds routes, gRPC services, checks and layers, then it serves.
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
    allowed_origins: Vec<String>,
    layers: Vec<Box<dyn FnOnce(Router) -> Router + Send>>,
    shutdown: Shutdown,
    tasks: TaskTracker,
}

impl App {
    /// A new app with the runtime's health and metrics in place and no routes yet.
    pub fn new(function: Function, env: Env, mut config: RuntimeConfig) -> Self {
        // The configuration was read before `sm://` values were resolved: keys come from them.
        config.auth.read_secrets(&env);
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
            allowed_origins: config.allowed_origins.clone(),
            config: Arc::new(config),
            health,
            metrics,
            registry,
            rest: Router::new(),
            grpc: Router::new(),
            grpc_names: Vec::new(),
            descriptors: vec![tonic_health::pb::FILE_DESCRIPTOR_SET],
            layers: Vec::new(),
            shutdown: Shutdown::default(),
            tasks: TaskTracker::new(),
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

    /// The shutdown signal (see [`Shutdown`]).
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Work a request starts that must finish before the process exits: spawn it on this
    /// tracker and the drain waits for it (within the grace period). Never use it for work
    /// after a response: Cloud Run throttles the CPU then.
    pub fn tasks(&self) -> TaskTracker {
        self.tasks.clone()
    }

    /// The default limits of REST routes, to adjust for [`Self::rest_with_limits`].
    pub fn route_limits(&self) -> RouteLimits {
        RouteLimits::from_config(&self.config.limits)
    }

    /// Adds REST routes (an axum router whose state is already applied), under the default
    /// limits.
    pub fn rest(self, router: Router) -> Self {
        let limits = self.route_limits();
        self.rest_with_limits(router, limits)
    }

    /// Adds REST routes under their own limits (a streaming route may need a longer time limit
    /// and a smaller body limit than the default).
    pub fn rest_with_limits(mut self, router: Router, limits: RouteLimits) -> Self {
        let router = router.layer(from_fn_with_state(limits, limits::limit));
        self.rest = self.rest.merge(router);
        self
    }

    /// Adds a gRPC service, served for gRPC and gRPC-Web (binary and text) with metrics and
    /// the runtime's deadline and message limits.
    pub fn grpc<S: GrpcService>(mut self, service: S) -> Self {
        self.grpc_names.push(S::NAME.to_owned());
        self.grpc = self.add_grpc(self.grpc.clone(), service);
        self
    }

    /// Registers an encoded `FileDescriptorSet` for server reflection.
    pub fn file_descriptor_set(mut self, encoded: &'static [u8]) -> Self {
        self.descriptors.push(encoded);
        self
    }

    /// Adds browser origins allowed to call every route (besides `ALLOWED_ORIGINS`).
    pub fn allow_origins(mut self, origins: impl IntoIterator<Item = String>) -> Self {
        self.allowed_origins.extend(origins);
        self
    }

    /// Applies a tower layer to every route, REST, gRPC and gRPC-Web alike (after the access
    /// guard and the credential check of `AUTH_MODE`, before routing). Layers added later run
    /// first.
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<Route> + Clone + Send + Sync + 'static,
        L::Service: Service<Request> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as Service<Request>>::Error: Into<Infallible> + 'static,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        self.layers
            .push(Box::new(move |router: Router| router.layer(layer)));
        self
    }

    /// Wraps a gRPC service with limits (innermost), metrics and gRPC-Web translation
    /// (outermost), and routes `/{Service}/*` to it, as tonic's own `Routes` does.
    fn add_grpc<S: GrpcService>(&self, router: Router, service: S) -> Router {
        let limits = GrpcLimitsLayer {
            max_message_bytes: self.config.limits.max_grpc_message_bytes,
            max_duration: self.config.limits.request_timeout,
        };
        let service = tonic_web::GrpcWebLayer::new()
            .layer(GrpcMetricsLayer::new(self.metrics.clone()).layer(limits.layer(service)));
        router.route_service(
            &format!("/{}/{{*rest}}", S::NAME),
            tower::ServiceExt::map_request(service, |req: Request| req.map(Body::new)),
        )
    }

    /// The whole service as one router (what the listener serves; tests call it directly).
    pub fn into_router(mut self) -> Router {
        let grpc = std::mem::take(&mut self.grpc);
        let grpc = self.add_grpc(
            grpc,
            HealthService::new(self.health.clone(), self.grpc_names.clone()),
        );
        let (v1, v1alpha) = reflection::services(std::mem::take(&mut self.descriptors));
        let grpc = self.add_grpc(grpc, v1);
        let grpc = self.add_grpc(grpc, v1alpha);

        let request_log = RequestLog {
            metadata_base: (self.config.on_platform() && self.config.project_id.is_none())
                .then(|| Arc::from(self.config.metadata_host.as_str())),
        };
        let guard = access::Guard::new(AccessPolicy {
            loopback: self.config.host.is_loopback(),
            allowed_origins: self.allowed_origins,
            max_header_bytes: self.config.limits.max_header_bytes,
        });
        let defaults = RouteLimits::from_config(&self.config.limits);
        let runtime_routes = Router::new()
            .merge(health::router(self.health.clone()))
            .merge(metrics::router(Arc::new(self.registry)))
            .layer(from_fn_with_state(defaults, limits::limit));
        let mut router = runtime_routes
            .merge(self.rest)
            .merge(grpc)
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed);
        for layer in self.layers {
            router = layer(router);
        }
        // Before the function's layers and every route (the fallback included, so unknown
        // paths are not revealed): credentials are checked unless AUTH_MODE is none. Inside
        // the HTTP metrics, so refusals are counted; inside the access guard, so allowed
        // browser preflights are answered before any credential is asked for.
        if let Some(verifier) = auth::Verifier::new(&self.config.auth, self.function.name) {
            router = router.layer(from_fn_with_state(verifier, auth::authenticate));
        }
        let routed = router
            // Per route, so the route template is known; gRPC calls are skipped here and
            // counted by the gRPC metrics layer instead.
            .layer(from_fn_with_state(
                self.metrics.clone(),
                metrics::record_http,
            ));
        // The layers that need no route are applied once, around the whole router, not by
        // `Router::layer`, which copies a layer into every route (building health's router
        // took 261K instructions with those copies, 202K without).
        Router::new()
            .fallback_service(routed)
            // Before any route or function layer: refused requests never reach them, and
            // preflights from allowed origins are answered here.
            .layer(from_fn_with_state(guard, access::guard))
            // Outermost but for panics: the trace span and request log cover everything.
            .layer(from_fn_with_state(request_log, logging::log_request))
            // A panicking handler becomes a 500 for its own request only.
            .layer(CatchPanicLayer::custom(panic_response))
    }

    /// Binds, serves until SIGTERM/SIGINT, then drains: readiness turns false at once, the
    /// shutdown signal fires, the listener closes, in-flight requests and tracked tasks get the
    /// grace period, logs are flushed.
    pub async fn serve(self) -> Result<(), StartupError> {
        let started = Instant::now();
        let config = self.config.clone();
        let function = self.function;
        let health = self.health.clone();
        let metrics = self.metrics.clone();
        let shutdown_signal = self.shutdown.clone();
        let tasks = self.tasks.clone();
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
        let (drain_started_tx, drain_started) = tokio::sync::oneshot::channel();
        let shutdown = async move {
            let signal = signals.recv().await;
            let _ = drain_started_tx.send(tokio::time::Instant::now());
            drain_health.set_draining();
            shutdown_signal.signal();
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
            timeouts: config.timeouts.clone(),
            metrics,
        };
        let cut = listener.serve(router, shutdown, grace).await;
        // Tracked work gets what is left of the grace period.
        tasks.close();
        let grace_ends = drain_started
            .await
            .map_or_else(|_| tokio::time::Instant::now(), |at| at + grace);
        let unfinished = match tokio::time::timeout_at(grace_ends, tasks.wait()).await {
            Ok(()) => 0,
            Err(_) => tasks.len(),
        };
        if cut == 0 && unfinished == 0 {
            tracing::info!("drained; exiting");
        } else {
            tracing::warn!(
                open_connections = cut,
                unfinished_tasks = unfinished,
                "grace period over with work still running; exiting"
            );
        }
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        Ok(())
    }
}

/// No route: gRPC callers get UNIMPLEMENTED, everyone else a JSON 404.
async fn not_found(req: Request) -> Response {
    let path = req.uri().path();
    if crate::error::is_grpc(req.headers()) {
        return tonic::Status::unimplemented(format!("unknown service or method {path}"))
            .into_http::<Body>()
            .into_response();
    }
    ApiError::new(
        ErrorKind::NotFound,
        format!("no route for {} {path}", req.method()),
    )
    .into_response()
}

/// A route that exists, asked with a method it does not serve.
async fn method_not_allowed(req: Request) -> Response {
    ApiError::new(
        ErrorKind::MethodNotAllowed,
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
    .into_response_for(req.headers())
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = detail, "handler panicked");
    ApiError::new(ErrorKind::Internal, "internal error").into_response()
}
