//! The request span (carrying the caller's trace) and one log line per request with Cloud
//! Logging's `httpRequest` fields. Probes and scrapes that succeed log at DEBUG so they don't
//! drown the lines that matter.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::borrow::Cow;

use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderValue, Version, header};
use tracing::{Instrument, Level, Span};

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
    // Without tracing or a caller's trace the span would carry nothing to any line: none is
    // made, and the request is not entered into and out of one at every poll.
    let span = if tracing_on {
        server_span(&req)
    } else if trace.is_some() {
        request_span(trace.as_ref())
    } else {
        Span::none()
    };
    // What the line needs from the request, kept without copying (the method, URI and header
    // values share their bytes): a line filtered out by LOG_LEVEL costs no formatting.
    let method = req.method().clone();
    let uri = req.uri().clone();
    let protocol = protocol(req.version());
    let user_agent = req.headers().get(header::USER_AGENT).cloned();
    let forwarded = req.headers().get("x-forwarded-for").cloned();
    let peer = req.extensions().get::<PeerAddr>().copied();
    let response = if span.is_none() {
        next.run(req).await
    } else {
        next.run(req).instrument(span.clone()).await
    };
    let status = response.status().as_u16();
    let elapsed = start.elapsed();
    if tracing_on {
        record_response(&span, &response);
    }
    let path = uri.path();
    let level = level(status, response.headers(), path);
    if !level_enabled(level) {
        return response;
    }
    // Who the request was verified as (AUTH_MODE), when it was.
    let principal = response.extensions().get::<Principal>();
    let auth_mode = principal.map(|p| p.mode.as_str());
    let principal = principal.map(|p| p.name.as_str());
    // Path and query only: HTTP/2 requests carry scheme and authority, HTTP/1.1 ones don't.
    let url = uri.path_and_query().map_or("/", PathAndQuery::as_str);
    let latency = format!("{:.6}s", elapsed.as_secs_f64());
    let user_agent = user_agent
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let remote_ip = remote_ip(forwarded.as_ref(), peer.as_ref());
    let _entered = span.enter();
    macro_rules! line {
        ($level:expr) => {
            tracing::event!(
                $level,
                httpRequest.requestMethod = method.as_str(),
                httpRequest.requestUrl = url,
                httpRequest.status = status,
                httpRequest.latency = latency.as_str(),
                httpRequest.userAgent = user_agent,
                httpRequest.remoteIp = remote_ip.as_ref(),
                httpRequest.protocol = protocol,
                principal,
                auth_mode,
                "{method} {path} {status}"
            )
        };
    }
    match level {
        Level::ERROR => line!(Level::ERROR),
        Level::WARN => line!(Level::WARN),
        Level::DEBUG => line!(Level::DEBUG),
        _ => line!(Level::INFO),
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

/// The line's level: server faults at ERROR, but a 503 that says when to come back
/// (`Retry-After`: load shed, draining, a dependency down for now) is a refusal the server
/// chose, at WARN; probes and scrapes that succeed at DEBUG; the rest at INFO.
fn level(status: u16, headers: &HeaderMap, path: &str) -> Level {
    match status {
        503 if headers.contains_key(header::RETRY_AFTER) => Level::WARN,
        500.. => Level::ERROR,
        ..400 if path.starts_with("/health") || path == "/metrics" => Level::DEBUG,
        _ => Level::INFO,
    }
}

/// Whether a line at `level` would be written (the filter's most verbose level admits it).
fn level_enabled(level: Level) -> bool {
    level <= tracing::level_filters::LevelFilter::current()
}

/// The client as the platform saw it (first `X-Forwarded-For` hop), else the socket peer.
fn remote_ip<'a>(forwarded: Option<&'a HeaderValue>, peer: Option<&PeerAddr>) -> Cow<'a, str> {
    forwarded
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| Cow::Borrowed(v.trim()))
        .or_else(|| peer.map(|p| Cow::Owned(p.0.ip().to_string())))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_with_retry_after_are_warnings_and_faults_are_errors() {
        let mut retry = HeaderMap::new();
        retry.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        let none = HeaderMap::new();
        assert_eq!(level(503, &retry, "/mcp"), Level::WARN);
        assert_eq!(level(503, &none, "/mcp"), Level::ERROR);
        assert_eq!(level(500, &retry, "/mcp"), Level::ERROR);
        assert_eq!(level(200, &none, "/health/ready"), Level::DEBUG);
        assert_eq!(level(200, &none, "/metrics"), Level::DEBUG);
        assert_eq!(level(503, &retry, "/health/ready"), Level::WARN);
        assert_eq!(level(404, &none, "/health/nope"), Level::INFO);
        assert_eq!(level(200, &none, "/mcp"), Level::INFO);
    }

    #[test]
    fn the_client_is_the_first_forwarded_hop_else_the_peer() {
        let peer = PeerAddr("10.0.0.9:5000".parse().unwrap());
        let forwarded = HeaderValue::from_static(" 203.0.113.7 , 10.0.0.1");
        assert_eq!(remote_ip(Some(&forwarded), Some(&peer)), "203.0.113.7");
        assert_eq!(remote_ip(None, Some(&peer)), "10.0.0.9");
        assert_eq!(remote_ip(None, None), "");
    }
}
