//! Reading an answer: status and headers at once, the body only through capped, deadline-bound
//! reads that draw from the call's byte budget (whole and decoded, a quoted prefix, or chunk by
//! chunk for streams).

use std::ops::Deref;
use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::budget::{ByteBudget, Drawn};
use super::{Call, OutboundError};

/// An answer whose body has not been read yet.
#[derive(Debug)]
pub struct Response {
    inner: reqwest::Response,
    host: String,
    deadline: Instant,
    timeout: Duration,
    max_bytes: usize,
    budget: Option<ByteBudget>,
}

/// A whole body, read within the cap. Its bytes stay drawn from the budget until it is dropped.
#[derive(Debug)]
pub struct Body {
    bytes: Vec<u8>,
    _drawn: Drawn,
}

impl Deref for Body {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Response {
    pub(super) fn new(inner: reqwest::Response, host: String, call: &Call) -> Self {
        Self {
            inner,
            host,
            deadline: call.deadline,
            timeout: call.timeout,
            max_bytes: call.max_bytes,
            budget: call.budget.clone(),
        }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.inner.status()
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers()
    }

    /// The `host[:port]` that answered.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The response itself on a 2xx, else [`OutboundError::Status`] (the body unread).
    pub fn error_for_status(self) -> Result<Self, OutboundError> {
        let status = self.status();
        if status.is_success() {
            Ok(self)
        } else {
            Err(OutboundError::Status {
                host: self.host,
                status,
            })
        }
    }

    /// The whole body as JSON, decoded into the caller's type (never `serde_json::Value` for
    /// big bodies: typed decoding keeps only what is used). The bytes count against the budget
    /// until decoding ends.
    pub async fn body_json<T: DeserializeOwned>(self) -> Result<T, OutboundError> {
        let host = self.host.clone();
        let body = self.body_bytes().await?;
        serde_json::from_slice(&body).map_err(|e| OutboundError::Decode {
            host,
            problem: e.to_string(),
        })
    }

    /// The whole body, stopping with [`OutboundError::TooLarge`] as soon as it passes the cap
    /// (at once when `Content-Length` says it will). The cap is the call's `max_bytes`, or the
    /// budget's total when that is smaller.
    pub async fn body_bytes(mut self) -> Result<Body, OutboundError> {
        let limit = self
            .budget
            .as_ref()
            .map_or(self.max_bytes, |b| self.max_bytes.min(b.total()));
        let mut drawn = Drawn::from(self.budget.as_ref());
        let declared = self.inner.content_length();
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(self.too_large(limit));
        }
        // A declared length is drawn in one go, so that reads never hold part of the budget
        // while they wait for the rest.
        let mut bytes = Vec::new();
        if let Some(n) = declared {
            let n = n as usize;
            if !drawn.draw(n, self.deadline).await {
                return Err(self.busy());
            }
            bytes.reserve_exact(n);
        }
        while let Some(chunk) = self.next_chunk(self.deadline).await? {
            if bytes.len() + chunk.len() > limit {
                return Err(self.too_large(limit));
            }
            if declared.is_none() && !drawn.draw(chunk.len(), self.deadline).await {
                return Err(self.busy());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Body {
            bytes,
            _drawn: drawn,
        })
    }

    /// At most `limit` bytes of the body, for quoting in an error message: a longer body is
    /// cut, and one that fails or times out gives what had arrived.
    pub async fn body_prefix(mut self, limit: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        while bytes.len() < limit {
            match self.next_chunk(self.deadline).await {
                Ok(Some(chunk)) => {
                    let take = chunk.len().min(limit - bytes.len());
                    bytes.extend_from_slice(&chunk[..take]);
                }
                Ok(None) | Err(_) => break,
            }
        }
        bytes
    }

    /// The body chunk by chunk, for streamed answers (NDJSON, server-sent events): each chunk
    /// must arrive within `gap` of the previous one and before the call's deadline, and all of
    /// them together may not pass the call's `max_bytes`. Each chunk is drawn from the budget
    /// until the next one is asked for.
    pub fn into_chunks(self, gap: Duration) -> Chunks {
        Chunks {
            drawn: Drawn::from(self.budget.as_ref()),
            response: self,
            gap,
            read: 0,
            done: false,
        }
    }

    async fn next_chunk(&mut self, until: Instant) -> Result<Option<Bytes>, OutboundError> {
        match tokio::time::timeout_at(until, self.inner.chunk()).await {
            Err(_) => Err(OutboundError::timed_out(self.host.clone(), self.timeout)),
            Ok(Err(e)) => Err(OutboundError::from_reqwest(
                e,
                self.host.clone(),
                self.inner.url(),
                self.timeout,
            )),
            Ok(Ok(chunk)) => Ok(chunk),
        }
    }

    fn too_large(&self, limit: usize) -> OutboundError {
        OutboundError::TooLarge {
            host: self.host.clone(),
            limit,
        }
    }

    fn busy(&self) -> OutboundError {
        OutboundError::Busy {
            host: self.host.clone(),
        }
    }
}

/// A streamed body, read with [`Chunks::next`].
#[derive(Debug)]
pub struct Chunks {
    response: Response,
    drawn: Drawn,
    gap: Duration,
    read: usize,
    done: bool,
}

impl Chunks {
    /// The next chunk; `None` at the end of the body or after an error.
    pub async fn next(&mut self) -> Option<Result<Bytes, OutboundError>> {
        // The caller is done with the previous chunk.
        self.drawn.release();
        if self.done {
            return None;
        }
        let outcome = self.read_one().await;
        if !matches!(outcome, Some(Ok(_))) {
            self.done = true;
        }
        outcome
    }

    /// Changes the longest wait for each later chunk: a model stream allows a long wait for its
    /// first token (a cold model load) and a shorter one between the tokens after it.
    pub fn set_gap(&mut self, gap: Duration) {
        self.gap = gap;
    }

    /// The `host[:port]` that answered.
    pub fn host(&self) -> &str {
        &self.response.host
    }

    async fn read_one(&mut self) -> Option<Result<Bytes, OutboundError>> {
        let response = &mut self.response;
        let until = response.deadline.min(Instant::now() + self.gap);
        let chunk = match response.next_chunk(until).await {
            Ok(chunk) => chunk?,
            Err(OutboundError::TimedOut { host, .. }) if Instant::now() < response.deadline => {
                return Some(Err(OutboundError::Stalled {
                    host,
                    gap: self.gap,
                }));
            }
            Err(e) => return Some(Err(e)),
        };
        self.read += chunk.len();
        if self.read > response.max_bytes {
            return Some(Err(response.too_large(response.max_bytes)));
        }
        if !self.drawn.draw(chunk.len(), response.deadline).await {
            return Some(Err(response.busy()));
        }
        Some(Ok(chunk))
    }
}
