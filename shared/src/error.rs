//! Errors, in one table: why a function could not start ([`StartupError`], one line and an exit
//! code), and every error a request is answered with ([`ApiError`]: its HTTP status, gRPC code
//! and JSON body together, so REST, gRPC and gRPC-Web clients hear the same thing).

use std::process::ExitCode;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use crate::config::ConfigError;

/// Why a function could not start (or could not keep serving).
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A configuration value is unusable: exit code 2.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The port could not be bound: exit code 1.
    #[error("cannot listen on {addr}: {source}; set PORT (and HOST) to a free address")]
    Bind {
        /// The address tried.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Anything else that stops start-up: exit code 1.
    #[error("{0}")]
    Other(String),
}

impl StartupError {
    /// 2 for configuration problems, 1 for everything else.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Config(_) => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        }
    }
}

/// What went wrong with a request, as a kind that fixes its HTTP status and gRPC code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or its arguments are invalid.
    BadRequest,
    /// No credentials, or credentials that could not be verified.
    Unauthenticated,
    /// Verified, but not allowed (a refused Host or Origin too).
    Forbidden,
    /// No such route, method or resource.
    NotFound,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// The resource is not in a state that allows this (a busy session, a run that has
    /// ended, a run that is not paused).
    Conflict,
    /// The client does not accept any form the route answers in.
    NotAcceptable,
    /// The client stopped sending its request.
    RequestTimeout,
    /// The request body is larger than the route allows.
    PayloadTooLarge,
    /// The request body is not of a type the route reads.
    UnsupportedMediaType,
    /// The request head is larger than allowed.
    HeadersTooLarge,
    /// A rate or concurrency limit was reached.
    TooManyRequests,
    /// A bug on our side (a panic included).
    Internal,
    /// A dependency answered badly.
    BadGateway,
    /// The instance can't take this now (too many connections, draining, a dependency down).
    Unavailable,
    /// The request ran out of time.
    Timeout,
}

/// Each kind's HTTP status, gRPC code and stable `code` string: the whole mapping.
const TABLE: [(ErrorKind, StatusCode, tonic::Code, &str); 16] = [
    (
        ErrorKind::BadRequest,
        StatusCode::BAD_REQUEST,
        tonic::Code::InvalidArgument,
        "bad_request",
    ),
    (
        ErrorKind::Unauthenticated,
        StatusCode::UNAUTHORIZED,
        tonic::Code::Unauthenticated,
        "unauthenticated",
    ),
    (
        ErrorKind::Forbidden,
        StatusCode::FORBIDDEN,
        tonic::Code::PermissionDenied,
        "forbidden",
    ),
    (
        ErrorKind::NotFound,
        StatusCode::NOT_FOUND,
        tonic::Code::NotFound,
        "not_found",
    ),
    (
        ErrorKind::MethodNotAllowed,
        StatusCode::METHOD_NOT_ALLOWED,
        tonic::Code::Unimplemented,
        "method_not_allowed",
    ),
    (
        ErrorKind::Conflict,
        StatusCode::CONFLICT,
        tonic::Code::Aborted,
        "conflict",
    ),
    (
        ErrorKind::NotAcceptable,
        StatusCode::NOT_ACCEPTABLE,
        tonic::Code::InvalidArgument,
        "not_acceptable",
    ),
    (
        ErrorKind::RequestTimeout,
        StatusCode::REQUEST_TIMEOUT,
        tonic::Code::DeadlineExceeded,
        "request_timeout",
    ),
    (
        ErrorKind::PayloadTooLarge,
        StatusCode::PAYLOAD_TOO_LARGE,
        tonic::Code::ResourceExhausted,
        "payload_too_large",
    ),
    (
        ErrorKind::UnsupportedMediaType,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        tonic::Code::InvalidArgument,
        "unsupported_media_type",
    ),
    (
        ErrorKind::HeadersTooLarge,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        tonic::Code::ResourceExhausted,
        "headers_too_large",
    ),
    (
        ErrorKind::TooManyRequests,
        StatusCode::TOO_MANY_REQUESTS,
        tonic::Code::ResourceExhausted,
        "too_many_requests",
    ),
    (
        ErrorKind::Internal,
        StatusCode::INTERNAL_SERVER_ERROR,
        tonic::Code::Internal,
        "internal",
    ),
    (
        ErrorKind::BadGateway,
        StatusCode::BAD_GATEWAY,
        tonic::Code::Unavailable,
        "bad_gateway",
    ),
    (
        ErrorKind::Unavailable,
        StatusCode::SERVICE_UNAVAILABLE,
        tonic::Code::Unavailable,
        "unavailable",
    ),
    (
        ErrorKind::Timeout,
        StatusCode::GATEWAY_TIMEOUT,
        tonic::Code::DeadlineExceeded,
        "timeout",
    ),
];

impl ErrorKind {
    fn row(self) -> &'static (ErrorKind, StatusCode, tonic::Code, &'static str) {
        TABLE.iter().find(|row| row.0 == self).unwrap_or(&TABLE[12])
    }

    /// The kind answered with `status`, if the table has one.
    pub fn from_status(status: StatusCode) -> Option<Self> {
        TABLE.iter().find(|row| row.1 == status).map(|row| row.0)
    }

    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        self.row().1
    }

    /// The gRPC code.
    pub fn grpc_code(self) -> tonic::Code {
        self.row().2
    }

    /// The stable machine-readable name in the JSON body (`payload_too_large`).
    pub fn code(self) -> &'static str {
        self.row().3
    }
}

/// An error answered to a client: REST gets `{"error": message, "status": N, "code": name}`,
/// gRPC a status with the same message. The message must be safe to show (no secrets, no
/// argument values).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What a client can act on.
    pub message: String,
    /// Seconds to wait before retrying, sent as `Retry-After`.
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Adds `Retry-After: secs`.
    pub fn retry_after(mut self, secs: u32) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "error": self.message,
            "status": self.kind.status().as_u16(),
            "code": self.kind.code(),
        })
    }

    /// The gRPC status carrying the same message.
    pub fn to_status(&self) -> tonic::Status {
        tonic::Status::new(self.kind.grpc_code(), self.message.clone())
    }

    /// The answer for a request that may be gRPC: a trailers-only gRPC response when its
    /// content type is `application/grpc*` (gRPC-Web translation happens outside), else JSON.
    pub fn into_response_for(self, headers: &http::HeaderMap) -> Response {
        if is_grpc(headers) {
            let mut response = self.to_status().into_http::<tonic::body::Body>();
            if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, content_type.clone());
            }
            return response.into_response();
        }
        self.into_response()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.kind.status(), axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Longest error body a library may answer that [`normalize`] rewrites (longer ones keep a
/// generic message).
const MAX_LIBRARY_ERROR_BYTES: usize = 4096;

/// Rewrites an error response a library produced in its own form (rmcp answers plain text)
/// into the common JSON body, keeping its status and headers. JSON and gRPC answers, and
/// successes, pass through untouched.
pub async fn normalize(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map_or(&b""[..], HeaderValue::as_bytes);
    let is_json_or_grpc = content_type.starts_with(b"application/json")
        || content_type.starts_with(b"application/grpc")
        || content_type.starts_with(b"text/event-stream");
    if is_json_or_grpc {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_LIBRARY_ERROR_BYTES)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    let code = ErrorKind::from_status(status).map_or("error", ErrorKind::code);
    let body = serde_json::json!({"error": text, "status": status.as_u16(), "code": code});
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(body.to_string()))
}

/// Whether a request is gRPC or gRPC-Web (by content type).
pub fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// A server's message made fit to quote in one line: whitespace runs become one space, and
/// text past `max` characters is cut with `...` (error bodies can be pages of HTML).
pub fn one_line(text: &str, max: usize) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined.char_indices().nth(max) {
        Some((at, _)) => format!("{}...", &joined[..at]),
        None => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_row() {
        for (kind, status, _, code) in TABLE {
            assert_eq!(kind.status(), status);
            assert_eq!(kind.code(), code);
        }
        assert_eq!(
            ErrorKind::PayloadTooLarge.grpc_code(),
            tonic::Code::ResourceExhausted
        );
    }

    #[test]
    fn body_has_the_common_shape() {
        let e = ApiError::new(ErrorKind::Timeout, "too slow");
        assert_eq!(
            e.body(),
            serde_json::json!({"error": "too slow", "status": 504, "code": "timeout"})
        );
    }

    #[test]
    fn grpc_requests_get_a_status() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        let r = ApiError::new(ErrorKind::Forbidden, "no").into_response_for(&headers);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["grpc-status"], "7");
    }
}
