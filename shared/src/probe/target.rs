//! One readiness target: an HTTP function (its `/health/ready`, ready only on 2xx, redirects
//! not followed) or a gRPC server (`grpc.health.v1.Health/Check` for the overall status),
//! optionally asked with a Google ID token (`Authorization: Bearer`, minted for the target's
//! audience by [`crate::gcp::idtoken`]), as Cloud Run services deployed with
//! `--no-allow-unauthenticated` require.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument as _;

use crate::gcp::idtoken::{IdTokens, default_audience};
use crate::outbound::{Call, Request, StatusCode, Url};

use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// How a target is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// `GET` on the URL.
    Http,
    /// `grpc.health.v1.Health/Check` with service `""`.
    Grpc,
}

/// A named URL to check.
#[derive(Debug, Clone)]
pub struct Target {
    /// Name in `/health` and the `target` label.
    pub name: String,
    /// What is requested: for HTTP the full readiness URL (userinfo is sent as basic
    /// authentication), for gRPC the endpoint.
    pub url: String,
    /// The URL as `/health`, logs and `health probe` show it: no userinfo, no query.
    pub shown: String,
    /// How it is asked.
    pub protocol: Protocol,
    /// The ID token sent with each check, if any.
    pub id_token: Option<IdToken>,
}

/// A Google ID token for one audience, from a shared cache.
#[derive(Clone)]
pub struct IdToken {
    tokens: Arc<IdTokens>,
    /// What the token is minted for.
    pub audience: String,
}

impl std::fmt::Debug for IdToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdToken({})", self.audience)
    }
}

impl Target {
    /// `http(s)://host[:port][/path]` (path defaults to `/health/ready`), or
    /// `grpc://host:port` / `grpcs://host[:port]` for gRPC health.
    pub fn parse(name: &str, url: &str) -> Result<Self, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("{url:?} has no scheme"))?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(format!("{url:?} has no host"));
        }
        let (protocol, url) = match scheme {
            "http" | "https" => {
                let url = match rest.find('/') {
                    None => format!("{url}/health/ready"),
                    Some(i) if rest[i..] == *"/" => format!("{}health/ready", url),
                    Some(_) => url.to_owned(),
                };
                (Protocol::Http, url)
            }
            // gRPC health has no use for userinfo or a query: neither is kept.
            "grpc" => (Protocol::Grpc, redacted(&format!("http://{rest}"))),
            "grpcs" => (Protocol::Grpc, redacted(&format!("https://{rest}"))),
            other => {
                return Err(format!(
                    "scheme {other:?} is not http, https, grpc or grpcs"
                ));
            }
        };
        if Url::parse(&url).is_err() {
            return Err(format!("{:?} is not a URL", redacted(&url)));
        }
        Ok(Self {
            name: name.to_owned(),
            shown: redacted(&url),
            url,
            protocol,
            id_token: None,
        })
    }

    /// Sends a Google ID token from `tokens` with every check, minted for `audience` (default:
    /// the target URL's origin, which is what Cloud Run expects).
    pub fn with_id_token(mut self, tokens: Arc<IdTokens>, audience: Option<String>) -> Self {
        let audience = audience.unwrap_or_else(|| {
            Url::parse(&self.url)
                .map(|u| default_audience(&u))
                .unwrap_or_default()
        });
        self.id_token = Some(IdToken { tokens, audience });
        self
    }

    /// Whether the target is reached over TLS (`https://` or `grpcs://`).
    pub fn is_https(&self) -> bool {
        self.url.starts_with("https://")
    }

    /// Asks the target once, within `timeout`: `Ok(description)` when ready.
    pub async fn check(&self, timeout: Duration) -> Result<String, String> {
        let start = Instant::now();
        let outcome = self.ask(timeout).await;
        let ms = start.elapsed().as_secs_f64() * 1e3;
        outcome
            .map(|m| format!("{m} in {ms:.1} ms"))
            .map_err(|m| format!("{m} after {ms:.1} ms"))
    }

    async fn ask(&self, timeout: Duration) -> Result<String, String> {
        let token = match &self.id_token {
            None => None,
            Some(t) => Some(
                tokio::time::timeout(timeout, t.tokens.token(&t.audience))
                    .await
                    .map_err(|_| format!("no ID token within {timeout:?}"))?
                    .map_err(|e| e.to_string())?,
            ),
        };
        let outcome = match self.protocol {
            Protocol::Http => http_ready(&self.url, timeout, token.as_deref()).await,
            Protocol::Grpc => grpc_serving(&self.url, timeout, token.as_deref()).await,
        };
        if let (Err(Refusal::Unauthenticated(_)), Some(t)) = (&outcome, &self.id_token) {
            // The next check mints a fresh token.
            t.tokens.refused(&t.audience).await;
        }
        outcome.map_err(Refusal::into_message)
    }
}

/// Why a target is not ready.
enum Refusal {
    /// It refused the credentials (HTTP 401, gRPC UNAUTHENTICATED).
    Unauthenticated(String),
    /// Anything else.
    Other(String),
}

impl Refusal {
    fn into_message(self) -> String {
        match self {
            Self::Unauthenticated(m) | Self::Other(m) => m,
        }
    }
}

impl From<String> for Refusal {
    fn from(m: String) -> Self {
        Self::Other(m)
    }
}

/// Longest part of a not-ready answer's body quoted in the message.
const MAX_QUOTED_BYTES: usize = 200;

/// Ready on 2xx only: a 3xx (a login page, a moved service) is not the target answering ready,
/// and the redirect is not followed.
async fn http_ready(url: &str, timeout: Duration, token: Option<&str>) -> Result<String, Refusal> {
    let url = Url::parse(url).map_err(|_| "not a URL".to_owned())?;
    let call = Call::new(timeout, MAX_QUOTED_BYTES);
    let mut request = Request::get(url);
    if let Some(token) = token {
        request = request.bearer(token);
    }
    let response = request.send(&call).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let line = format!("{} {}", status.as_u16(), reason(status));
    if status.is_success() {
        return Ok(line);
    }
    if status.is_redirection() {
        return Err(format!("{line}: redirects are not followed").into());
    }
    let body = response.body_prefix(MAX_QUOTED_BYTES).await;
    let message = format!("{line}: {}", String::from_utf8_lossy(&body).trim());
    Err(if status == StatusCode::UNAUTHORIZED {
        Refusal::Unauthenticated(message)
    } else {
        Refusal::Other(message)
    })
}

fn reason(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("")
}

/// `url` without userinfo, query or fragment, for display.
fn redacted(url: &str) -> String {
    if !url.contains(['@', '?', '#']) {
        return url.to_owned();
    }
    let Ok(mut parsed) = Url::parse(url) else {
        // Not a URL: show only what comes before anything secret could start.
        let cut = url.find(['@', '?', '#']).unwrap_or(url.len());
        return format!("{}…", &url[..cut]);
    };
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    parsed.set_query(None);
    parsed.set_fragment(None);
    parsed.to_string()
}

async fn grpc_serving(
    url: &str,
    timeout: Duration,
    token: Option<&str>,
) -> Result<String, Refusal> {
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| format!("bad endpoint {}: {e}", redacted(url)))?
        .connect_timeout(timeout)
        .timeout(timeout);
    if url.starts_with("https://") {
        endpoint = endpoint
            .tls_config(crate::crypto::grpc_client_tls())
            .map_err(|e| format!("TLS: {e}"))?;
    }
    let host = endpoint.uri().host().unwrap_or_default().to_owned();
    let span = crate::telemetry::spans::grpc_client("grpc.health.v1.Health/Check", &host);
    let check = async {
        let channel: Channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("cannot connect: {}", deepest(&e)))?;
        let mut request = tonic::Request::new(HealthCheckRequest {
            service: String::new(),
        });
        crate::telemetry::propagation::inject_current_metadata(request.metadata_mut());
        if let Some(token) = token {
            let mut value = tonic::metadata::MetadataValue::try_from(format!("Bearer {token}"))
                .map_err(|_| "the ID token is not a valid header value".to_owned())?;
            value.set_sensitive(true);
            request.metadata_mut().insert("authorization", value);
        }
        let response = HealthClient::new(channel)
            .check(request)
            .await
            .map_err(|s| {
                span.record("rpc.grpc.status_code", s.code() as i32);
                crate::telemetry::spans::record_error(&span, &format!("{:?}", s.code()));
                let message = format!("{:?}: {}", s.code(), s.message());
                if s.code() == tonic::Code::Unauthenticated {
                    Refusal::Unauthenticated(message)
                } else {
                    Refusal::Other(message)
                }
            })?;
        let status =
            ServingStatus::try_from(response.into_inner().status).unwrap_or(ServingStatus::Unknown);
        match status {
            ServingStatus::Serving => Ok("SERVING".to_owned()),
            other => Err(other.as_str_name().to_owned().into()),
        }
    };
    tokio::time::timeout(timeout, check.instrument(span.clone()))
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}").into()))
}

fn deepest(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_targets_default_to_readiness() {
        let t = Target::parse("a", "http://x:1").unwrap();
        assert_eq!(t.url, "http://x:1/health/ready");
        let t = Target::parse("a", "https://x.run.app/").unwrap();
        assert_eq!(t.url, "https://x.run.app/health/ready");
        let t = Target::parse("a", "http://x/custom").unwrap();
        assert_eq!(t.url, "http://x/custom");
        let t = Target::parse("a", "grpc://x:9").unwrap();
        assert_eq!((t.url.as_str(), t.protocol), ("http://x:9", Protocol::Grpc));
    }

    #[test]
    fn credentials_are_never_shown() {
        let t = Target::parse("a", "https://admin:s3cret@x.run.app/ready?token=abc").unwrap();
        assert_eq!(t.url, "https://admin:s3cret@x.run.app/ready?token=abc");
        assert_eq!(t.shown, "https://x.run.app/ready");
        let t = Target::parse("a", "http://u:p@x:1").unwrap();
        assert_eq!(t.shown, "http://x:1/health/ready");
        let t = Target::parse("a", "grpcs://u:p@x:443?k=v").unwrap();
        assert_eq!(
            (t.url.as_str(), t.shown.as_str()),
            ("https://x/", "https://x/")
        );
        assert_eq!(redacted("no url u:p@x"), "no url u:p…");
    }
}
