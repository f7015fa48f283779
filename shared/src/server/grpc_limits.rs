//! gRPC limits the runtime applies to every gRPC service it serves (health and reflection
//! included), inside gRPC-Web translation so they always see native gRPC:
//! - a deadline: the caller's `grpc-timeout`, never more than `REQUEST_TIMEOUT`; when it
//!   passes, the handler (and any response stream) is dropped, which cancels it and frees what
//!   it held, and the caller gets DEADLINE_EXCEEDED; handlers find it in their request's
//!   extensions as a [`Deadline`], as REST handlers do;
//! - a message size cap both ways (`MAX_GRPC_MESSAGE_BYTES`), checked on each message's
//!   length prefix before anything is buffered: RESOURCE_EXHAUSTED.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tonic::Status;
use tonic::body::Body;
use tonic::server::NamedService;
use tower::{Layer, Service};

use super::Deadline;

/// Wraps a gRPC service with [`GrpcLimits`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct GrpcLimitsLayer {
    pub(crate) max_message_bytes: usize,
    pub(crate) max_duration: Duration,
}

impl<S> Layer<S> for GrpcLimitsLayer {
    type Service = GrpcLimits<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcLimits {
            inner,
            limits: *self,
        }
    }
}

/// A gRPC service under the runtime's deadline and message limits.
#[derive(Debug, Clone)]
pub(crate) struct GrpcLimits<S> {
    inner: S,
    limits: GrpcLimitsLayer,
}

impl<S: NamedService> NamedService for GrpcLimits<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<Request<Body>> for GrpcLimits<S>
where
    S: Service<Request<Body>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let limits = self.limits;
        let timeout = match grpc_timeout(req.headers()) {
            Some(asked) => asked.min(limits.max_duration),
            None => limits.max_duration,
        };
        let deadline = Instant::now() + timeout;
        let mut req =
            req.map(|body| Body::new(MessageLimitBody::new(body, limits.max_message_bytes, None)));
        // For a handler that should answer before it (tonic carries extensions to the request).
        req.extensions_mut().insert(Deadline(deadline));
        let fut = self.inner.call(req);
        Box::pin(async move {
            match tokio::time::timeout_at(deadline, fut).await {
                Ok(Ok(response)) => Ok(response.map(|body| {
                    Body::new(MessageLimitBody::new(
                        body,
                        limits.max_message_bytes,
                        Some(Box::pin(tokio::time::sleep_until(deadline))),
                    ))
                })),
                Ok(Err(e)) => Err(e),
                Err(_) => Ok(deadline_exceeded(timeout).into_http()),
            }
        })
    }
}

fn deadline_exceeded(timeout: Duration) -> Status {
    Status::deadline_exceeded(format!(
        "deadline of {} ms exceeded (grpc-timeout, at most REQUEST_TIMEOUT)",
        timeout.as_millis()
    ))
}

/// `grpc-timeout`: at most 8 digits and a unit (H, M, S, m, u, n); None if absent or invalid.
/// REST routes that honour a caller's gRPC-style deadline (orchestrate's `/v1/run`) read it too.
pub fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers.get("grpc-timeout")?.to_str().ok()?;
    if raw.len() < 2 || raw.len() > 9 {
        return None;
    }
    let (digits, unit) = raw.split_at(raw.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Where the length-prefixed message framing of a gRPC body stands.
#[derive(Debug, Default)]
struct Framing {
    /// Bytes of the current message still to come.
    in_message: usize,
    /// The 5-byte prefix of the next message, as far as it has arrived.
    prefix: [u8; 5],
    prefix_len: usize,
}

impl Framing {
    /// Walks `data`; the length of the first message declared larger than `max`, if any.
    fn oversized(&mut self, mut data: &[u8], max: usize) -> Option<usize> {
        while !data.is_empty() {
            if self.in_message > 0 {
                let n = self.in_message.min(data.len());
                self.in_message -= n;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.prefix_len).min(data.len());
            self.prefix[self.prefix_len..self.prefix_len + n].copy_from_slice(&data[..n]);
            self.prefix_len += n;
            data = &data[n..];
            if self.prefix_len == 5 {
                self.prefix_len = 0;
                let len = u32::from_be_bytes([
                    self.prefix[1],
                    self.prefix[2],
                    self.prefix[3],
                    self.prefix[4],
                ]) as usize;
                if len > max {
                    return Some(len);
                }
                self.in_message = len;
            }
        }
        None
    }
}

pin_project_lite::pin_project! {
    /// A gRPC body checked message by message; as a response body it also ends the call with
    /// DEADLINE_EXCEEDED when the deadline passes (dropping the stream behind it).
    struct MessageLimitBody<B> {
        inner: Option<B>,
        framing: Framing,
        max: usize,
        deadline: Option<Pin<Box<Sleep>>>,
    }
}

impl<B> MessageLimitBody<B> {
    fn new(inner: B, max: usize, deadline: Option<Pin<Box<Sleep>>>) -> Self {
        Self {
            inner: Some(inner),
            framing: Framing::default(),
            max,
            deadline,
        }
    }
}

/// A trailers frame that ends the call with `status`.
fn status_trailers(status: &Status) -> Frame<Bytes> {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(status.code() as i32));
    if let Ok(message) = HeaderValue::from_str(&percent_encode(status.message())) {
        trailers.insert("grpc-message", message);
    }
    Frame::trailers(trailers)
}

/// grpc-message is percent-encoded outside printable ASCII (and `%` itself).
fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl<B> HttpBody for MessageLimitBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Data = Bytes;
    type Error = tonic::codegen::StdError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let is_response = this.deadline.is_some();
        if let Some(deadline) = this.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            *this.inner = None;
            let status = Status::deadline_exceeded("deadline exceeded while streaming");
            return Poll::Ready(Some(Ok(status_trailers(&status))));
        }
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref()
                    && let Some(len) = this.framing.oversized(data, *this.max)
                {
                    let status = Status::resource_exhausted(format!(
                        "a {} message of {len} bytes is larger than the limit of {} (MAX_GRPC_MESSAGE_BYTES)",
                        if is_response { "response" } else { "request" },
                        *this.max
                    ));
                    *this.inner = None;
                    if is_response {
                        return Poll::Ready(Some(Ok(status_trailers(&status))));
                    }
                    // tonic answers a body error that is a Status with that status.
                    return Poll::Ready(Some(Err(Box::new(status))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => {
                *this.inner = None;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_units() {
        let t = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("grpc-timeout", HeaderValue::from_str(v).unwrap());
            grpc_timeout(&h)
        };
        assert_eq!(t("100m"), Some(Duration::from_millis(100)));
        assert_eq!(t("2S"), Some(Duration::from_secs(2)));
        assert_eq!(t("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(t("5u"), Some(Duration::from_micros(5)));
        assert_eq!(t("m"), None);
        assert_eq!(t("123456789S"), None, "at most 8 digits");
        assert_eq!(t("10x"), None);
    }

    #[test]
    fn framing_finds_an_oversized_prefix_across_chunks() {
        let mut f = Framing::default();
        let mut ok = vec![0u8, 0, 0, 0, 3, b'a', b'b', b'c'];
        ok.extend_from_slice(&[0, 0, 0x10]);
        assert_eq!(f.oversized(&ok, 1024), None);
        // The rest of the second prefix: 0x10_00_00 bytes declared.
        assert_eq!(f.oversized(&[0, 0], 1024), Some(0x10_0000));
        let mut f = Framing::default();
        assert_eq!(f.oversized(&[0, 0, 0, 0, 2, 1], 4), None);
        assert_eq!(f.oversized(&[2, 0, 0, 0, 0, 4, 1, 2, 3, 4], 4), None);
    }
}
