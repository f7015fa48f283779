//! Per-route REST limits: how long a request may run (504), how large its body may be (413,
//! streamed bodies included) and how long its body may pause (408). Each router added with
//! [`crate::App::rest`] gets the runtime's defaults; [`crate::App::rest_with_limits`] sets its own.
//!
//! A handler that reads a body which breaks a limit sees a read error, and handlers (or the
//! libraries they use, such as rmcp) answer that error as they see fit, often with a 500.
//! The body records which limit broke, and the middleware answers that limit's error instead.
//! Error answers in a library's own form are rewritten into the common JSON body here too.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::config::Limits;
use crate::error::{ApiError, ErrorKind};

/// The limits of one group of REST routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteLimits {
    /// Longest a request may take to produce its response head (504 after). A streamed body
    /// is not cut: a streaming handler bounds itself (see [`Deadline`]).
    pub timeout: Duration,
    /// Largest request body (413 above).
    pub max_body_bytes: usize,
    /// Longest pause while the body arrives (408 after).
    pub body_read_timeout: Duration,
}

impl RouteLimits {
    /// The runtime's defaults (`REQUEST_TIMEOUT`, `MAX_REQUEST_BODY_BYTES`, `BODY_READ_TIMEOUT`).
    pub fn from_config(limits: &Limits) -> Self {
        Self {
            timeout: limits.request_timeout,
            max_body_bytes: limits.max_body_bytes,
            body_read_timeout: limits.body_read_timeout,
        }
    }

    /// With another time limit.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// With another body size limit.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }
}

/// When the request's time limit runs out, in every REST and gRPC request's extensions (for
/// gRPC, the caller's `grpc-timeout` capped by `REQUEST_TIMEOUT`): handlers that stream (SSE)
/// end their stream before it, and handlers that can answer early do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(pub Instant);

impl Deadline {
    /// Time left (zero once passed).
    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }
}

/// Middleware applying `limits` to the routes it wraps.
pub(crate) async fn limit(
    State(limits): State<RouteLimits>,
    mut req: Request,
    next: Next,
) -> Response {
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes as u64) {
        return too_large(limits.max_body_bytes).into_response();
    }
    let deadline = Instant::now() + limits.timeout;
    req.extensions_mut().insert(Deadline(deadline));
    let broken = Arc::new(OnceLock::new());
    let req = req.map(|body| {
        axum::body::Body::new(LimitedBody {
            inner: body,
            remaining: limits.max_body_bytes,
            max: limits.max_body_bytes,
            gap: limits.body_read_timeout,
            pause: None,
            broken: broken.clone(),
        })
    });
    let response = match tokio::time::timeout_at(deadline, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            return ApiError::new(
                ErrorKind::Timeout,
                format!(
                    "the request took longer than its {} s limit (REQUEST_TIMEOUT)",
                    limits.timeout.as_secs_f64()
                ),
            )
            .into_response();
        }
    };
    match broken.get() {
        Some(error) => error.clone().into_response(),
        None => crate::error::normalize(response).await,
    }
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        ErrorKind::PayloadTooLarge,
        format!("the request body is larger than {max} bytes (MAX_REQUEST_BODY_BYTES)"),
    )
}

pin_project_lite::pin_project! {
    /// A request body that fails (and records why) past its size or pause limit.
    struct LimitedBody<B> {
        #[pin]
        inner: B,
        remaining: usize,
        max: usize,
        gap: Duration,
        pause: Option<Pin<Box<Sleep>>>,
        broken: Arc<OnceLock<ApiError>>,
    }
}

impl<B> HttpBody for LimitedBody<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        if let Some(error) = this.broken.get() {
            return Poll::Ready(Some(Err(error.clone().into())));
        }
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                *this.pause = None;
                if let Some(data) = frame.data_ref() {
                    if data.len() > *this.remaining {
                        let error = too_large(*this.max);
                        let _ = this.broken.set(error.clone());
                        return Poll::Ready(Some(Err(error.into())));
                    }
                    *this.remaining -= data.len();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let gap = *this.gap;
                let pause = this
                    .pause
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(gap)));
                if pause.as_mut().poll(cx).is_ready() {
                    let error = ApiError::new(
                        ErrorKind::RequestTimeout,
                        format!(
                            "the request body stopped arriving for {} s (BODY_READ_TIMEOUT)",
                            gap.as_secs_f64()
                        ),
                    );
                    let _ = this.broken.set(error.clone());
                    return Poll::Ready(Some(Err(error.into())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
