//! Every outbound HTTP call of every function: one shared client, a deadline over the whole
//! call (body included), a cap on response bytes, a per-tool budget of bytes in flight, no
//! redirects unless asked for, and errors that name the host and the problem but never the
//! URL's userinfo, path or query.
//!
//! ```no_run
//! # async fn example() -> Result<(), aixrun::outbound::OutboundError> {
//! use std::time::Duration;
//! use aixrun::outbound::{ByteBudget, Call, Request, Url};
//!
//! #[derive(serde::Deserialize)]
//! struct Answer { value: f64 }
//!
//! let budget = ByteBudget::new(8 * 1024 * 1024);
//! let call = Call::new(Duration::from_secs(10), 1024 * 1024).budget(&budget);
//! let url = Url::parse("https://api.example.com/v1/thing?q=1").unwrap();
//! let response = Request::get(url).send(&call).await?;
//! if response.status().is_success() {
//!     let answer: Answer = response.body_json().await?;
//! }
//! # Ok(()) }
//! ```

pub mod auth;
mod body;
mod budget;
mod error;
pub mod one_runtime;
mod retry;
#[cfg(test)]
mod tests;

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{
    AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HeaderMap, HeaderName, HeaderValue,
    LOCATION, PROXY_AUTHORIZATION,
};
use tokio::time::Instant;

pub use auth::{AuthProvider, StaticBearer, with_refresh};
pub use body::{Body, Chunks, Response};
pub use budget::ByteBudget;
pub use error::OutboundError;
pub(crate) use error::host_of;
pub use reqwest::{Method, StatusCode, Url};
pub use retry::{RetryPolicy, retry_after};

/// Longest wait for a TCP (and TLS) connection, whatever the call's deadline, unless the call
/// sets its own ([`Call::connect_timeout`]).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Most redirects a call that follows them will take.
pub const MAX_REDIRECTS: usize = 5;

static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
/// Clients for calls that set another connect timeout. reqwest fixes the connect timeout per
/// client, so each distinct value gets one client (and one pool); callers use a handful of
/// values at most, so a short list is enough.
static OTHER_CLIENTS: Mutex<Vec<(Duration, reqwest::Client)>> = Mutex::new(Vec::new());

/// The shared client for `connect_timeout`, built on first use: building it loads TLS roots,
/// which is start-up work a request may never need. Connection pools are per client, so every
/// call with the same connect timeout shares one. It follows no redirects itself:
/// [`Request::send`] does, when the call asks.
fn client(connect_timeout: Duration) -> reqwest::Client {
    if connect_timeout == CONNECT_TIMEOUT {
        return CLIENT.get_or_init(|| build_client(CONNECT_TIMEOUT)).clone();
    }
    // A poisoned lock only means another thread panicked while pushing: the list is still whole.
    let mut others = OTHER_CLIENTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, client)) = others.iter().find(|(t, _)| *t == connect_timeout) {
        return client.clone();
    }
    let client = build_client(connect_timeout);
    others.push((connect_timeout, client.clone()));
    client
}

fn build_client(connect_timeout: Duration) -> reqwest::Client {
    crate::crypto::install_provider();
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("aixrun/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// The limits of one call: its deadline, the most response bytes it may read, the budget of
/// bytes in flight it draws from, and whether it follows redirects. One `Call` may cover
/// several requests (retries, a lookup and then a fetch): they share its deadline.
#[derive(Debug, Clone)]
pub struct Call {
    deadline: Instant,
    timeout: Duration,
    max_bytes: usize,
    budget: Option<ByteBudget>,
    follow_redirects: bool,
    connect_timeout: Duration,
}

impl Call {
    /// A call that must end, body read included, within `timeout` from now and may read at
    /// most `max_bytes` of each response body. No budget, no redirects.
    pub fn new(timeout: Duration, max_bytes: usize) -> Self {
        Self {
            deadline: Instant::now() + timeout,
            timeout,
            max_bytes,
            budget: None,
            follow_redirects: false,
            connect_timeout: CONNECT_TIMEOUT,
        }
    }

    /// The longest wait for each TCP (and TLS) connection, instead of [`CONNECT_TIMEOUT`]; the
    /// call's deadline still bounds it. A host that does not answer fails fast with
    /// [`OutboundError::Connect`] while a slow answer may still use the whole deadline.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Draws the bytes of every body read from `budget` (shared by the calls of one tool), so
    /// that many calls at once cannot hold many caps' worth of memory.
    pub fn budget(mut self, budget: &ByteBudget) -> Self {
        self.budget = Some(budget.clone());
        self
    }

    /// Follows up to [`MAX_REDIRECTS`] redirects. `Authorization`, `Cookie` and
    /// `Proxy-Authorization` are dropped when a redirect leaves the origin, and a redirect from
    /// https to plain http is refused.
    pub fn follow_redirects(mut self) -> Self {
        self.follow_redirects = true;
        self
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The whole time the call was given (for messages).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// One request: method, URL, headers and an optional body held in memory (so that it can be
/// sent again on a redirect). Problems building it are reported when it is sent.
#[derive(Debug)]
pub struct Request {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Bytes>,
    problem: Option<String>,
}

impl Request {
    /// A request with this method. Userinfo in the URL (`user:password@`) is sent as basic
    /// authentication and never appears in errors.
    pub fn new(method: Method, url: Url) -> Self {
        Self {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            problem: None,
        }
    }

    /// `GET url`.
    pub fn get(url: Url) -> Self {
        Self::new(Method::GET, url)
    }

    /// `POST url`.
    pub fn post(url: Url) -> Self {
        Self::new(Method::POST, url)
    }

    /// Adds a header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// `Authorization: Bearer token`, marked sensitive so that it is never printed.
    pub fn bearer(mut self, token: &str) -> Self {
        match HeaderValue::try_from(format!("Bearer {token}")) {
            Ok(mut value) => {
                value.set_sensitive(true);
                self.headers.insert(AUTHORIZATION, value);
            }
            // The token itself must not reach the message.
            Err(_) => self.problem = Some("the access token is not a valid header value".into()),
        }
        self
    }

    /// `body` as JSON, with `Content-Type: application/json`.
    pub fn json<T: serde::Serialize + ?Sized>(mut self, body: &T) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => {
                self.headers
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                self.body = Some(bytes.into());
            }
            Err(e) => self.problem = Some(format!("the request body is not JSON: {e}")),
        }
        self
    }

    /// Sends the request within `call`'s deadline, following redirects only if it asks. The
    /// response's status is not judged here: a 3xx, 4xx or 5xx is a [`Response`] too.
    ///
    /// With tracing on, the request is a CLIENT span (`{method}`) whose context travels in
    /// `traceparent`.
    pub async fn send(mut self, call: &Call) -> Result<Response, OutboundError> {
        if !crate::telemetry::enabled() {
            return self.send_untraced(call).await;
        }
        use tracing::Instrument as _;
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        let span = client_span(&self.method, &self.url);
        crate::telemetry::propagation::inject(&span.context(), &mut self.headers);
        let result = self.send_untraced(call).instrument(span.clone()).await;
        match &result {
            Ok(response) => {
                let status = response.status().as_u16();
                span.record("http.response.status_code", status);
                if status >= 400 {
                    span.record("otel.status_code", "error");
                    span.record("error.type", status);
                }
            }
            Err(e) => {
                span.record("otel.status_code", "error");
                span.record("error.type", e.kind());
            }
        }
        result
    }

    async fn send_untraced(self, call: &Call) -> Result<Response, OutboundError> {
        let Self {
            mut method,
            mut url,
            mut headers,
            mut body,
            problem,
        } = self;
        let mut host = error::host_of(&url);
        if let Some(problem) = problem {
            return Err(OutboundError::Request { host, problem });
        }
        let mut hops = 0;
        loop {
            let mut builder = client(call.connect_timeout)
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(body) = &body {
                builder = builder.body(body.clone());
            }
            let response = match tokio::time::timeout_at(call.deadline, builder.send()).await {
                Err(_) => return Err(OutboundError::timed_out(host, call.timeout)),
                // reqwest reports its connect timeout as a timeout too: it is a connect failure,
                // and saying "did not answer within" the whole deadline would mislead.
                Ok(Err(e)) if e.is_connect() && e.is_timeout() => {
                    return Err(OutboundError::Connect {
                        host,
                        problem: format!(
                            "no connection within {} s",
                            call.connect_timeout.as_secs_f64()
                        ),
                    });
                }
                Ok(Err(e)) => {
                    return Err(OutboundError::from_reqwest(e, host, &url, call.timeout));
                }
                Ok(Ok(response)) => response,
            };
            let status = response.status();
            let redirect = status.is_redirection() && status != StatusCode::NOT_MODIFIED;
            if !call.follow_redirects || !redirect {
                return Ok(Response::new(response, host, call));
            }
            hops += 1;
            let refuse = |problem: String| OutboundError::Redirect {
                host: host.clone(),
                problem,
            };
            if hops > MAX_REDIRECTS {
                return Err(refuse(format!("more than {MAX_REDIRECTS} redirects")));
            }
            let next = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| refuse(format!("HTTP {} without a Location", status.as_u16())))
                .and_then(|location| {
                    url.join(location)
                        .map_err(|_| refuse("the Location is not a URL".into()))
                })?;
            if !matches!(next.scheme(), "http" | "https") {
                return Err(refuse(format!("to a {} URL", next.scheme())));
            }
            if url.scheme() == "https" && next.scheme() == "http" {
                return Err(refuse("from https to plain http".into()));
            }
            if next.origin() != url.origin() {
                // Credentials are for the origin they were given for, never the next one.
                for name in [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION] {
                    headers.remove(name);
                }
            }
            let to_get = status == StatusCode::SEE_OTHER
                || (matches!(status.as_u16(), 301 | 302) && method == Method::POST);
            if to_get {
                method = Method::GET;
                body = None;
                headers.remove(CONTENT_TYPE);
                headers.remove(CONTENT_LENGTH);
            }
            url = next;
            host = error::host_of(&url);
        }
    }
}

/// The CLIENT span of one outbound request. The URL without its query and userinfo (keys
/// travel in queries).
fn client_span(method: &Method, url: &Url) -> tracing::Span {
    use tracing::field::Empty;
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or_default();
    let full = format!("{}://{host}:{port}{}", url.scheme(), url.path());
    tracing::info_span!(
        "outbound",
        otel.name = method.as_str(),
        otel.kind = "client",
        otel.status_code = Empty,
        http.request.method = method.as_str(),
        server.address = host,
        server.port = port,
        url.full = full,
        http.response.status_code = Empty,
        error.type = Empty,
    )
}
