//! Prometheus metrics: the seed's `aixgo_*` families, process metrics, and `GET /metrics`.
//!
//! One registry, made at start-up and passed down; each component registers its own families.
//! Every label has a bounded set of values (route templates, known methods, status codes).

pub(crate) mod grpc;
mod http;
mod process;
mod series;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use grpc::{GrpcMetricsLayer, GrpcMetricsService};
pub use http::record_http;

use series::SeriesCache;

/// Buckets for request durations in seconds: OpenTelemetry's HTTP server defaults up to 10 s,
/// then on to an hour, Cloud Run's longest request (streamed runs, long tool calls), so those
/// are not all lumped into `+Inf`.
pub const DURATION_BUCKETS: [f64; 21] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// A histogram family constructor with [`DURATION_BUCKETS`].
pub fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// Labels of `aixgo_http_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// Request method (unknown methods become `OTHER`).
    pub method: &'static str,
    /// Route template, or `unmatched`.
    pub path: String,
    /// Response status code.
    pub status: u16,
}

/// Labels of `aixgo_http_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpRouteLabels {
    /// Request method.
    pub method: &'static str,
    /// Route template, or `unmatched`.
    pub path: String,
}

/// Labels of `aixgo_grpc_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcLabels {
    /// Full method, `/package.Service/Method`, or `unknown`.
    pub method: String,
    /// gRPC status code name (`OK`, `NotFound`, ...).
    pub status: &'static str,
}

/// Labels of `aixgo_grpc_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcMethodLabels {
    /// Full method, or `unknown`.
    pub method: String,
}

type DurationFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// A request's counter and duration histogram, bumped together.
pub(crate) type SeriesHandles = (Counter, Histogram);
/// HTTP series by (method, route template, status).
pub(crate) type HttpSeries = SeriesCache<(&'static str, String, u16), SeriesHandles>;
/// gRPC series by (full method, status name).
pub(crate) type GrpcSeries = SeriesCache<(String, &'static str), SeriesHandles>;

/// The runtime's metric families; cheap to clone (every family is shared).
#[derive(Clone)]
pub struct Metrics {
    /// `aixgo_http_requests_total`.
    pub http_requests: Family<HttpLabels, Counter>,
    /// `aixgo_http_request_duration_seconds`.
    pub http_duration: DurationFamily<HttpRouteLabels>,
    /// `aixgo_grpc_requests_total`.
    pub grpc_requests: Family<GrpcLabels, Counter>,
    /// `aixgo_grpc_request_duration_seconds`.
    pub grpc_duration: DurationFamily<GrpcMethodLabels>,
    /// `aixgo_active_connections`.
    pub active_connections: Gauge,
    /// The HTTP series by (method, route, status), resolved once.
    pub(crate) http_series: Arc<HttpSeries>,
    /// The gRPC series by (method, status name), resolved once.
    pub(crate) grpc_series: Arc<GrpcSeries>,
}

impl Metrics {
    /// Makes the families and registers them, with the process collector, in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(duration_histogram),
            grpc_requests: Family::default(),
            grpc_duration: Family::new_with_constructor(duration_histogram),
            active_connections: Gauge::default(),
            http_series: Arc::default(),
            grpc_series: Arc::default(),
        };
        // prometheus-client appends `_total` to counter names itself.
        registry.register(
            "aixgo_http_requests",
            "HTTP requests by method, route template and status",
            m.http_requests.clone(),
        );
        registry.register(
            "aixgo_http_request_duration_seconds",
            "HTTP request duration in seconds by method and route template",
            m.http_duration.clone(),
        );
        registry.register(
            "aixgo_grpc_requests",
            "gRPC requests by full method and status code",
            m.grpc_requests.clone(),
        );
        registry.register(
            "aixgo_grpc_request_duration_seconds",
            "gRPC request duration in seconds by full method",
            m.grpc_duration.clone(),
        );
        registry.register(
            "aixgo_active_connections",
            "Open client connections",
            m.active_connections.clone(),
        );
        registry.register_collector(Box::new(process::ProcessCollector));
        m
    }
}

/// `GET /metrics` serving `registry`: Prometheus text 0.0.4 by default, OpenMetrics when the
/// scraper asks for it.
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(registry)
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn scrape(State(registry): State<Arc<Registry>>, headers: HeaderMap) -> impl IntoResponse {
    let wants_openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    let mut body = String::with_capacity(8 * 1024);
    let (result, content_type) = if wants_openmetrics {
        (
            prometheus_client::encoding::text::encode(&mut body, &registry),
            OPENMETRICS,
        )
    } else {
        (
            prometheus_client::encoding::prometheus_text::encode(&mut body, &registry),
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )
    };
    if result.is_err() {
        return (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))],
            "metrics encoding failed".to_string(),
        );
    }
    (
        axum::http::StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_are_bucketed_up_to_cloud_runs_longest_request() {
        let b = super::DURATION_BUCKETS;
        assert_eq!(b.last(), Some(&3600.0));
        assert!(b.windows(2).all(|w| w[0] < w[1]));
    }
}
