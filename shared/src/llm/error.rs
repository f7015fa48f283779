//! Why a model call failed: one enum whose messages name the host and the problem, never the
//! API key nor the full URL.

use std::time::Duration;

use crate::outbound::OutboundError;

/// Why a model call failed. `Display` is one line fit for a log, an event or a tool result.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// No connection, after the retries the deadline allowed.
    #[error("cannot connect to {host}: {problem}")]
    Connect {
        /// `host[:port]`.
        host: String,
        /// What the system said.
        problem: String,
    },
    /// The model sent no output within the first-token timeout (a cold model load included).
    #[error("{host} sent no output within {} s", after.as_secs_f64())]
    NoFirstToken {
        /// `host[:port]`.
        host: String,
        /// The first-token timeout.
        after: Duration,
    },
    /// The stream sent nothing for longer than the allowed gap once output had started.
    #[error("{host} sent nothing for {} s in the middle of its answer", gap.as_secs_f64())]
    Stalled {
        /// `host[:port]`.
        host: String,
        /// The longest allowed gap.
        gap: Duration,
    },
    /// The caller's deadline passed.
    #[error("{host} did not finish within {} s", after.as_secs_f64())]
    TimedOut {
        /// `host[:port]`.
        host: String,
        /// The time the call was given.
        after: Duration,
    },
    /// Ollama does not have the model.
    #[error("{host} has no model {model}: run `ollama pull {model}` on it")]
    ModelNotFound {
        /// `host[:port]`.
        host: String,
        /// The model asked for.
        model: String,
    },
    /// The server refused the request with an HTTP error.
    #[error("{host} answered HTTP {status}: {message}")]
    Status {
        /// `host[:port]`.
        host: String,
        /// The status code.
        status: u16,
        /// The server's message (one line, cut to a few hundred characters, key redacted).
        message: String,
    },
    /// The server reported an error after the answer had begun.
    #[error("{host} reported an error in the middle of its answer: {message}")]
    Model {
        /// `host[:port]`.
        host: String,
        /// The server's message (one line, key redacted).
        message: String,
    },
    /// The stream ended before the answer was complete.
    #[error(
        "{host} closed the stream before the answer was complete{}",
        detail(problem)
    )]
    Interrupted {
        /// `host[:port]`.
        host: String,
        /// What the connection said, if anything.
        problem: Option<String>,
    },
    /// The server sent something that is not the wire format it should speak.
    #[error("{host} sent an answer that does not parse: {problem}")]
    Protocol {
        /// `host[:port]`.
        host: String,
        /// Where and what (line number and parser message).
        problem: String,
    },
    /// Any other outbound failure (TLS, the response cap, the byte budget).
    #[error(transparent)]
    Outbound(#[from] OutboundError),
}

impl LlmError {
    /// A short, stable name for OpenTelemetry's `error.type`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Connect { .. } => "connect",
            Self::NoFirstToken { .. } => "first_token_timeout",
            Self::Stalled { .. } => "stalled",
            Self::TimedOut { .. } => "timeout",
            Self::ModelNotFound { .. } => "model_not_found",
            Self::Status { .. } => "http_status",
            Self::Model { .. } => "model_error",
            Self::Interrupted { .. } => "interrupted",
            Self::Protocol { .. } => "protocol",
            Self::Outbound(_) => "outbound",
        }
    }
}

fn detail(problem: &Option<String>) -> String {
    problem
        .as_ref()
        .map(|p| format!(": {p}"))
        .unwrap_or_default()
}

/// A server's message in one line of at most 300 characters.
pub(super) fn one_line(text: &str) -> String {
    crate::error::one_line(text, 300)
}
