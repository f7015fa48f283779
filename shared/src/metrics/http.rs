//! REST request metrics, labelled by route template (axum's `MatchedPath`), never the raw path.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use super::{HttpLabels, HttpRouteLabels, Metrics};

/// Middleware recording `aixgo_http_requests_total` and `aixgo_http_request_duration_seconds`.
/// gRPC and gRPC-Web calls pass through uncounted: the gRPC metrics layer counts them.
pub async fn record_http(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let is_grpc = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    if is_grpc {
        // Counted by the service's gRPC metrics layer, unless refused before it (by the
        // credential check): then here, in the same gRPC metrics.
        let method = match req.extensions().get::<MatchedPath>() {
            Some(_) => req.uri().path().to_owned(),
            None => "unknown".to_owned(),
        };
        let start = Instant::now();
        let response = next.run(req).await;
        if response
            .extensions()
            .get::<super::grpc::Unserved>()
            .is_some()
        {
            super::grpc::record_unserved(&metrics, method, response.headers(), start);
        }
        return response;
    }
    let method = method_label(req.method());
    // The route template, shared with the router (no copy unless a new series is made).
    let route = req.extensions().get::<MatchedPath>().cloned();
    let path = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    if crate::telemetry::enabled() && route.is_some() {
        // The server span learns its route here, where routing has matched it.
        use opentelemetry::trace::TraceContextExt as _;
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        let span = tracing::Span::current();
        span.record("http.route", path);
        span.context()
            .span()
            .update_name(format!("{} {path}", req.method()));
    }
    let start = Instant::now();
    let response = next.run(req).await;
    let elapsed = start.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    let (requests, duration) = metrics.http_series.get(
        |(m, p, s)| *s == status && *m == method && p == path,
        || {
            let requests = metrics
                .http_requests
                .get_or_create(&HttpLabels {
                    method,
                    path: path.to_owned(),
                    status,
                })
                .clone();
            let duration = metrics
                .http_duration
                .get_or_create(&HttpRouteLabels {
                    method,
                    path: path.to_owned(),
                })
                .clone();
            ((method, path.to_owned(), status), (requests, duration))
        },
    );
    requests.inc();
    duration.observe(elapsed);
    response
}

/// The method as a label from a fixed set, so that made-up methods can't grow the series.
pub(crate) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}
