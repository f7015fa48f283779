//! The access guard, one layer in front of every route (REST, MCP, gRPC, gRPC-Web): request
//! heads within `MAX_REQUEST_HEADER_BYTES`; bound to loopback, only local `Host` values (DNS
//! rebinding protection); a browser `Origin` only when allowed (local origins too on
//! loopback); and CORS, preflight included, for the allowed origins.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use tower::{Layer, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::{ApiError, ErrorKind};

/// Host names a loopback-bound server answers to.
const LOCAL_HOSTS: [&str; 4] = ["localhost", "127.0.0.1", "::1", "[::1]"];
/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// Who may call.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    /// The listener is bound to a loopback address.
    pub loopback: bool,
    /// Browser origins allowed (`scheme://host[:port]`; `:*` matches any port, `*` any origin).
    pub allowed_origins: Vec<String>,
    /// Largest request head.
    pub max_header_bytes: usize,
}

impl AccessPolicy {
    /// Whether a request from `origin` (the header's value) may proceed.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        if self
            .allowed_origins
            .iter()
            .any(|pattern| origin_matches(pattern, origin))
        {
            return true;
        }
        self.loopback && split_origin(origin).is_some_and(|(_, host)| is_local(host))
    }

    /// Whether `host` (a `Host` header or `:authority`, port included) may be served.
    pub fn host_allowed(&self, host: &str) -> bool {
        !self.loopback || is_local(strip_port(host))
    }

    /// Why a request is refused, if it is.
    fn refusal(&self, headers: &HeaderMap, authority: Option<&str>) -> Option<ApiError> {
        let head_bytes: usize = headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        if head_bytes > self.max_header_bytes {
            return Some(ApiError::new(
                ErrorKind::HeadersTooLarge,
                format!(
                    "request headers are {head_bytes} bytes; at most {} are accepted (MAX_REQUEST_HEADER_BYTES)",
                    self.max_header_bytes
                ),
            ));
        }
        let host = authority.or_else(|| headers.get(header::HOST).and_then(|v| v.to_str().ok()));
        if let Some(host) = host
            && !self.host_allowed(host)
        {
            return Some(ApiError::new(
                ErrorKind::Forbidden,
                "Host not allowed: this server is bound to loopback and answers only local \
                 names (DNS-rebinding protection); set HOST=0.0.0.0 to serve other names",
            ));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let allowed = origin.to_str().is_ok_and(|o| self.origin_allowed(o));
            if !allowed {
                return Some(ApiError::new(
                    ErrorKind::Forbidden,
                    "Origin not allowed: add it to ALLOWED_ORIGINS to let browsers on it call this server",
                ));
            }
        }
        None
    }
}

/// The guard's state: the policy and its CORS layer.
#[derive(Clone)]
pub(crate) struct Guard {
    policy: Arc<AccessPolicy>,
    cors: CorsLayer,
}

impl Guard {
    pub(crate) fn new(policy: AccessPolicy) -> Self {
        let policy = Arc::new(policy);
        Self {
            cors: cors(policy.clone()),
            policy,
        }
    }
}

/// Middleware: refuses what the policy does not allow, in the right form for gRPC or REST;
/// requests from a browser origin it allows go through CORS (preflights are answered there).
/// Requests without an `Origin` (not from a browser) skip CORS and its headers.
pub(crate) async fn guard(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    let authority = req.uri().authority().map(|a| a.as_str());
    if let Some(error) = guard.policy.refusal(req.headers(), authority) {
        return error.into_response_for(req.headers());
    }
    if req.headers().contains_key(header::ORIGIN) {
        let cors = guard.cors.layer(next);
        return match cors.oneshot(req).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
    }
    next.run(req).await
}

/// CORS for the allowed origins (gRPC-Web and MCP headers included), preflight answered.
fn cors(policy: Arc<AccessPolicy>) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin.to_str().is_ok_and(|o| policy.origin_allowed(o))
        }))
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::ACCEPT,
            HeaderName::from_static("x-grpc-web"),
            HeaderName::from_static("x-user-agent"),
            HeaderName::from_static("grpc-timeout"),
            HeaderName::from_static("mcp-protocol-version"),
            HeaderName::from_static("mcp-session-id"),
            HeaderName::from_static("mcp-method"),
            HeaderName::from_static("mcp-name"),
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("traceparent"),
            HeaderName::from_static("tracestate"),
            HeaderName::from_static("x-api-key"),
        ])
        .expose_headers([
            HeaderName::from_static("grpc-status"),
            HeaderName::from_static("grpc-message"),
            HeaderName::from_static("grpc-status-details-bin"),
            HeaderName::from_static("mcp-session-id"),
            HeaderName::from_static("mcp-protocol-version"),
            header::RETRY_AFTER,
            // A browser client reads the 401's challenge (what was wrong with its token).
            header::WWW_AUTHENTICATE,
        ])
        .max_age(PREFLIGHT_MAX_AGE)
}

fn is_local(host: &str) -> bool {
    LOCAL_HOSTS
        .iter()
        .any(|local| local.eq_ignore_ascii_case(host))
}

/// `host[:port]` or `[v6]:port` without the port.
fn strip_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().map_or(authority, |h| {
            &authority[..h.len() + 2] // keep the brackets: "[::1]"
        });
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// `scheme://host[:port]` into (scheme, host without port).
fn split_origin(origin: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = origin.split_once("://")?;
    if rest.contains('/') {
        return None;
    }
    Some((scheme, strip_port(rest)))
}

fn origin_matches(pattern: &str, origin: &str) -> bool {
    if pattern == "*" || pattern.eq_ignore_ascii_case(origin) {
        return true;
    }
    let Some(prefix) = pattern.strip_suffix(":*") else {
        return false;
    };
    // `http://localhost:*` matches the origin with any port, or with none.
    origin.len() >= prefix.len()
        && origin[..prefix.len()].eq_ignore_ascii_case(prefix)
        && match &origin[prefix.len()..] {
            "" => true,
            rest => rest
                .strip_prefix(':')
                .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())),
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(loopback: bool, origins: &[&str]) -> AccessPolicy {
        AccessPolicy {
            loopback,
            allowed_origins: origins.iter().map(|s| (*s).to_owned()).collect(),
            max_header_bytes: 16 * 1024,
        }
    }

    #[test]
    fn loopback_answers_local_hosts_only() {
        let p = policy(true, &[]);
        for host in [
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:80",
            "LOCALHOST",
            "127.0.0.1",
        ] {
            assert!(p.host_allowed(host), "{host}");
        }
        for host in [
            "evil.test:8080",
            "evil.test",
            "127.0.0.1.evil.test",
            "[::2]:80",
        ] {
            assert!(!p.host_allowed(host), "{host}");
        }
        assert!(policy(false, &[]).host_allowed("evil.test"));
    }

    #[test]
    fn origins_match_exactly_or_by_port_wildcard() {
        let p = policy(false, &["https://app.example.com", "http://dev.test:*"]);
        assert!(p.origin_allowed("https://app.example.com"));
        assert!(!p.origin_allowed("https://app.example.com.evil.test"));
        assert!(!p.origin_allowed("http://app.example.com"));
        assert!(p.origin_allowed("http://dev.test:5173"));
        assert!(p.origin_allowed("http://dev.test"));
        assert!(!p.origin_allowed("http://dev.test.evil:5173"));
        assert!(
            !p.origin_allowed("http://localhost:3000"),
            "not on loopback"
        );
        assert!(!p.origin_allowed("null"));
        let local = policy(true, &[]);
        assert!(local.origin_allowed("http://localhost:3000"));
        assert!(local.origin_allowed("http://[::1]:3000"));
        assert!(!local.origin_allowed("http://evil.test:3000"));
    }

    #[test]
    fn refusals_say_what_to_change() {
        let p = policy(true, &[]);
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("evil.test:80"));
        let e = p.refusal(&headers, None).unwrap();
        assert_eq!(e.kind, ErrorKind::Forbidden);
        assert!(e.message.contains("HOST=0.0.0.0"), "{e}");
        headers.insert(header::HOST, HeaderValue::from_static("localhost"));
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://evil.test"));
        assert!(
            p.refusal(&headers, None)
                .unwrap()
                .message
                .contains("ALLOWED_ORIGINS")
        );
    }
}
