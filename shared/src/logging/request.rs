//! The request span (carrying the caller's trace) and one log line per request with Cloud
//! Logging's `httpRequest` fields. Probes and scrapes that succeed log at DEBUG so they don't
//! drown the lines that matter.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderMap, Version};
use tracing::{Instrument, Span};

use super::{TraceContext, project};
use crate::server::{PeerAddr, Principal};

/// What the request-log middleware needs.
#[derive(Clone)]
pub struct RequestLog {
    /// Metadata server base for the one lazy project-id lookup, when on the platform.
    pub metadata_base: Option<Arc<str>>,
}

/// The span every request runs in. It is created at ERROR level on purpose: the trace fields
/// must reach every line the request logs, whatever `LOG_LEVEL` filters out.
pub fn request_span(trace: Option<&TraceContext>) -> Span {
    match trace {
        Some(t) => tracing::error_span!(
            "request",
            trace_id = t.trace_id.as_str(),
            span_id = t.span_id.as_str(),
            trace_sampled = t.sampled
        ),
        None => tracing::error_span!("request"),
    }
}

/// Middleware: request span, lazy project lookup, and the request's log line.
pub async fn log_request(State(log): State<RequestLog>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let tracing_on = crate::telemetry::enabled();
    // With tracing on, the server span is the request span and carries the trace; off, the
    // caller's trace headers are only copied into the log lines.
    let trace = if tracing_on {
        None
    } else {
        TraceContext::from_headers(req.headers())
    };
    if (tracing_on || trace.is_some())
        && let Some(base) = &log.metadata_base
    {
        project::ensure(base).await;
    }
    let span = if tracing_on {
        server_span(&req)
    } else {
        request_span(trace.as_ref())
    };
    let method = req.method().clone();
    // Path and query only: HTTP/2 requests carry scheme and authority, HTTP/1.1 ones don't.
    let url = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), ToString::to_string);
    let path = req.uri().path().to_owned();
    let protocol = protocol(req.version());
    let user_agent = header(req.headers(), "user-agent");
    let remote_ip = remote_ip(req.headers(), req.extensions().get::<PeerAddr>());
    let response = next.run(req).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let latency = format!("{:.6}s", start.elapsed().as_secs_f64());
    // Who the request was verified as (AUTH_MODE), when it was.
    let principal = response.extensions().get::<Principal>();
    let auth_mode = principal.map(|p| p.mode.as_str());
    let principal = principal.map(|p| p.name.as_str());
    if tracing_on {
        record_response(&span, &response);
    }
    let quiet = status < 400 && (path.starts_with("/health") || path == "/metrics");
    let _entered = span.enter();
    macro_rules! line {
        ($level:expr) => {
            tracing::event!(
                $level,
                httpRequest.requestMethod = method.as_str(),
                httpRequest.requestUrl = url.as_str(),
                httpRequest.status = status,
                httpRequest.latency = latency.as_str(),
                httpRequest.userAgent = user_agent.as_str(),
                httpRequest.remoteIp = remote_ip.as_str(),
                httpRequest.protocol = protocol,
                principal,
                auth_mode,
                "{method} {path} {status}"
            )
        };
    }
    match status {
        500.. => line!(tracing::Level::ERROR),
        _ if quiet => line!(tracing::Level::DEBUG),
        _ => line!(tracing::Level::INFO),
    }
    response
}

/// The SERVER span of one request: `{method}` (the route is added once routing knows it,
/// see [`crate::metrics`]) or, for gRPC and gRPC-Web, `{service}/{method}`; its parent is the
/// caller's `traceparent` (or `X-Cloud-Trace-Context`). ERROR level so that the log filter
/// never drops it: the trace must reach every line the request logs.
fn server_span(req: &Request) -> Span {
    use tracing::field::Empty;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let path = req.uri().path();
    let span = if crate::error::is_grpc(req.headers()) {
        let rpc = path.trim_start_matches('/');
        let (service, method) = rpc.split_once('/').unwrap_or((rpc, ""));
        tracing::error_span!(
            "request",
            otel.name = rpc,
            otel.kind = "server",
            otel.status_code = Empty,
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            rpc.grpc.status_code = Empty,
            error.type = Empty,
        )
    } else {
        let method = req.method().as_str();
        tracing::error_span!(
            "request",
            otel.name = method,
            otel.kind = "server",
            otel.status_code = Empty,
            http.request.method = method,
            url.path = path,
            http.route = Empty,
            http.response.status_code = Empty,
            network.protocol.version = protocol(req.version()).trim_start_matches("HTTP/"),
            error.type = Empty,
        )
    };
    if let Some(parent) = crate::telemetry::propagation::extract(req.headers()) {
        let _ = span.set_parent(parent);
    }
    span
}

/// The answer's status on the server span; 5xx (and gRPC's server-fault codes) are errors.
fn record_response(span: &Span, response: &Response) {
    let status = response.status().as_u16();
    let grpc_status = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u16>().ok());
    if let Some(code) = grpc_status {
        span.record("rpc.grpc.status_code", code);
        // UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS.
        if matches!(code, 2 | 4 | 12 | 13 | 14 | 15) {
            span.record("otel.status_code", "error");
            span.record("error.type", code);
        }
        return;
    }
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "error");
        span.record("error.type", status);
    }
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The client as the platform saw it (first `X-Forwarded-For` hop), else the socket peer.
fn remote_ip(headers: &HeaderMap, peer: Option<&PeerAddr>) -> String {
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_owned())
        .or_else(|| peer.map(|p| p.0.ip().to_string()))
        .unwrap_or_default()
}

fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP",
    }
}
