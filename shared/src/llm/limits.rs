//! How long a model call may take and how it is retried: a short connect timeout, a long
//! first-token timeout (a cold model load), a bounded gap between chunks, and backoff with
//! jitter ([`RetryPolicy`]) on connection errors, 429 and 503 only.

use std::time::Duration;

use crate::outbound::RetryPolicy;

/// The limits of one model call. `Default` suits a model on CPU that may need loading.
#[derive(Debug, Clone, PartialEq)]
pub struct CallLimits {
    /// The whole call, retries and the streamed answer included: the caller's deadline.
    pub total: Duration,
    /// Longest wait for each TCP (and TLS) connection.
    pub connect: Duration,
    /// Longest wait from sending the request to the first output (text, thinking or a tool
    /// call): Ollama answers nothing while it loads a model, which takes tens of seconds on CPU.
    pub first_token: Duration,
    /// Longest pause between two chunks once output has started.
    pub gap: Duration,
    /// The most bytes the streamed answer may have.
    pub max_bytes: usize,
    /// Retries before the answer starts.
    pub retry: RetryPolicy,
}

impl Default for CallLimits {
    fn default() -> Self {
        Self {
            total: Duration::from_secs(300),
            connect: Duration::from_secs(5),
            first_token: Duration::from_secs(120),
            gap: Duration::from_secs(60),
            max_bytes: 16 * 1024 * 1024,
            retry: RetryPolicy::default(),
        }
    }
}
