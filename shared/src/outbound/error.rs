//! Why an outbound call failed, in words that name the host and the problem and never the
//! URL's userinfo, path or query, nor a header value.

use std::error::Error as _;
use std::time::Duration;

use reqwest::{StatusCode, Url};

/// Why an outbound call failed. `Display` is one line fit for a log or a tool result.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// No connection (refused, unreachable, DNS).
    #[error("cannot connect to {host}: {problem}")]
    Connect {
        /// `host[:port]`.
        host: String,
        /// What the system said.
        problem: String,
    },
    /// The TLS handshake failed (certificate, protocol).
    #[error("TLS with {host} failed: {problem}")]
    Tls {
        /// `host[:port]`.
        host: String,
        /// What the TLS library said.
        problem: String,
    },
    /// The deadline passed before the answer was complete.
    #[error("{host} did not answer within {}", seconds(*after))]
    TimedOut {
        /// `host[:port]`.
        host: String,
        /// The time the call was given.
        after: Duration,
    },
    /// A streamed body sent nothing for longer than the allowed gap.
    #[error("{host} sent nothing for {} in the middle of its answer", seconds(*gap))]
    Stalled {
        /// `host[:port]`.
        host: String,
        /// The longest allowed gap between two chunks.
        gap: Duration,
    },
    /// The body passed the call's cap.
    #[error("response from {host} exceeded {}", size(*limit))]
    TooLarge {
        /// `host[:port]`.
        host: String,
        /// The cap, in bytes.
        limit: usize,
    },
    /// The tool's budget of bytes in flight stayed full until the deadline.
    #[error("no room to buffer the response from {host}: too many large responses in flight")]
    Busy {
        /// `host[:port]`.
        host: String,
    },
    /// The answer's status was not a success ([`super::Response::error_for_status`]).
    #[error("{host} answered HTTP {} {}", status.as_u16(), status.canonical_reason().unwrap_or(""))]
    Status {
        /// `host[:port]`.
        host: String,
        /// The status.
        status: StatusCode,
    },
    /// A redirect that was not followed (too many, no Location, to plain http).
    #[error("redirect from {host} not followed: {problem}")]
    Redirect {
        /// `host[:port]`.
        host: String,
        /// Why.
        problem: String,
    },
    /// The body is not the JSON the caller expects.
    #[error("response from {host} is not the expected JSON: {problem}")]
    Decode {
        /// `host[:port]`.
        host: String,
        /// serde's description (position and expected type).
        problem: String,
    },
    /// The connection failed while the body was read.
    #[error("reading the response from {host} failed: {problem}")]
    Body {
        /// `host[:port]`.
        host: String,
        /// What went wrong.
        problem: String,
    },
    /// The request could not be built or sent.
    #[error("request to {host} failed: {problem}")]
    Request {
        /// `host[:port]`.
        host: String,
        /// What went wrong.
        problem: String,
    },
}

impl OutboundError {
    /// A short, stable name for OpenTelemetry's `error.type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Connect { .. } => "connect",
            Self::Tls { .. } => "tls",
            Self::TimedOut { .. } => "timeout",
            Self::Stalled { .. } => "stalled",
            Self::TooLarge { .. } => "too_large",
            Self::Busy { .. } => "busy",
            Self::Status { .. } => "http_status",
            Self::Redirect { .. } => "redirect",
            Self::Decode { .. } => "decode",
            Self::Body { .. } => "body",
            Self::Request { .. } => "request",
        }
    }

    /// The `host[:port]` the call went to.
    pub fn host(&self) -> &str {
        match self {
            Self::Connect { host, .. }
            | Self::Tls { host, .. }
            | Self::TimedOut { host, .. }
            | Self::Stalled { host, .. }
            | Self::TooLarge { host, .. }
            | Self::Busy { host }
            | Self::Status { host, .. }
            | Self::Redirect { host, .. }
            | Self::Decode { host, .. }
            | Self::Body { host, .. }
            | Self::Request { host, .. } => host,
        }
    }

    /// Whether the deadline (or the gap of a stream) passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::TimedOut { .. } | Self::Stalled { .. })
    }

    pub(super) fn timed_out(host: String, after: Duration) -> Self {
        Self::TimedOut { host, after }
    }

    /// reqwest's own `Display` carries the full URL, query included: only its cause chain is
    /// used, with anything of the URL that could be secret cut out as well.
    pub(super) fn from_reqwest(
        error: reqwest::Error,
        host: String,
        url: &Url,
        timeout: Duration,
    ) -> Self {
        let error = error.without_url();
        if error.is_timeout() {
            return Self::timed_out(host, timeout);
        }
        let problem = redact(deepest(&error), url);
        if is_tls(&error) {
            Self::Tls { host, problem }
        } else if error.is_connect() {
            Self::Connect { host, problem }
        } else if error.is_body() || error.is_decode() {
            Self::Body { host, problem }
        } else {
            Self::Request { host, problem }
        }
    }
}

/// `host[:port]` of a URL: what every message names (never userinfo, path or query).
pub(crate) fn host_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or("(no host)");
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// The innermost cause: the outer layers only say "error sending request".
fn deepest(error: &reqwest::Error) -> String {
    let mut current: &dyn std::error::Error = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// Whether a rustls error is in the chain. `io::Error::source` skips the error it wraps, so
/// each `io::Error` is opened by hand.
fn is_tls(error: &reqwest::Error) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = error.source();
    while let Some(e) = current {
        if e.is::<tokio_rustls::rustls::Error>() {
            return true;
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            && inner.is::<tokio_rustls::rustls::Error>()
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// Cuts the URL's password, username and query out of `text`, in case a layer below quoted it.
fn redact(text: String, url: &Url) -> String {
    let secrets = [url.password(), Some(url.username()), url.query()];
    secrets
        .into_iter()
        .flatten()
        .filter(|s| s.len() >= 3)
        .fold(text, |text, secret| text.replace(secret, "***"))
}

/// `1 s`, `0.5 s`.
fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// `32 MiB`, `64 KiB`, `100 bytes`.
pub(super) fn size(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * KIB;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}
