//! gRPC request metrics: a layer around each gRPC service (inside gRPC-Web translation, so it
//! always sees native gRPC), recording the status from the trailers when the response ends.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{HeaderMap, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::Code;
use tonic::body::Body;
use tonic::server::NamedService;
use tower::{Layer, Service};

use super::{GrpcLabels, GrpcMethodLabels, Metrics};

/// Wraps a gRPC service with [`GrpcMetricsService`].
#[derive(Clone)]
pub struct GrpcMetricsLayer {
    metrics: Metrics,
}

impl GrpcMetricsLayer {
    /// Records into `metrics`.
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetricsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// A gRPC service that records `aixgo_grpc_requests_total` and
/// `aixgo_grpc_request_duration_seconds` for each call.
#[derive(Clone)]
pub struct GrpcMetricsService<S> {
    inner: S,
    metrics: Metrics,
}

impl<S: NamedService> NamedService for GrpcMetricsService<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B, ResBody> Service<Request<B>> for GrpcMetricsService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: HttpBody<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let recorder = Recorder {
            metrics: self.metrics.clone(),
            method: req.uri().path().to_owned(),
            start: Instant::now(),
            done: false,
        };
        let fut = self.inner.call(req);
        Box::pin(async move {
            let response = fut.await?;
            let (parts, body) = response.into_parts();
            // A trailers-only response carries the status in its headers.
            let recorder = match status_of(&parts.headers) {
                Some(code) => {
                    recorder.finish(code);
                    None
                }
                None => Some(recorder),
            };
            Ok(Response::from_parts(
                parts,
                Body::new(RecordingBody {
                    inner: body,
                    recorder,
                }),
            ))
        })
    }
}

/// Marks a gRPC response made before the call reached its service (the credential check's
/// refusal): the service's metrics layer never saw it, so the HTTP metrics layer, which lets
/// gRPC pass, counts it in the gRPC metrics instead.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Unserved;

/// Counts a gRPC call answered with `headers` (trailers-only) before it reached a service:
/// `method` is the call's path when it names a served service, else `unknown`.
pub(crate) fn record_unserved(
    metrics: &Metrics,
    method: String,
    headers: &HeaderMap,
    start: Instant,
) {
    let code = status_of(headers).unwrap_or(Code::Unknown);
    let mut recorder = Recorder {
        metrics: metrics.clone(),
        method,
        start,
        done: false,
    };
    recorder.record(code);
}

fn status_of(headers: &HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(Code::from_i32)
}

struct Recorder {
    metrics: Metrics,
    method: String,
    start: Instant,
    done: bool,
}

impl Recorder {
    fn finish(mut self, code: Code) {
        self.record(code);
    }

    fn record(&mut self, code: Code) {
        if self.done {
            return;
        }
        self.done = true;
        // Unimplemented means the method name came from the client, not our service table.
        let method = if code == Code::Unimplemented {
            "unknown"
        } else {
            self.method.as_str()
        };
        let status = code_name(code);
        let metrics = &self.metrics;
        let (requests, duration) = metrics.grpc_series.get(
            |(m, s)| *s == status && m == method,
            || {
                let requests = metrics
                    .grpc_requests
                    .get_or_create(&GrpcLabels {
                        method: method.to_owned(),
                        status,
                    })
                    .clone();
                let duration = metrics
                    .grpc_duration
                    .get_or_create(&GrpcMethodLabels {
                        method: method.to_owned(),
                    })
                    .clone();
                ((method.to_owned(), status), (requests, duration))
            },
        );
        requests.inc();
        duration.observe(self.start.elapsed().as_secs_f64());
    }
}

impl Drop for Recorder {
    /// A response body dropped before its trailers: the client went away.
    fn drop(&mut self) {
        self.record(Code::Cancelled);
    }
}

pin_project_lite::pin_project! {
    struct RecordingBody<B> {
        #[pin]
        inner: B,
        recorder: Option<Recorder>,
    }
}

impl<B> HttpBody for RecordingBody<B>
where
    B: HttpBody<Data = bytes::Bytes>,
{
    type Data = bytes::Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(status_of)
                    && let Some(r) = this.recorder.take()
                {
                    r.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(r) = this.recorder.take() {
                    r.finish(Code::Internal);
                }
            }
            Poll::Ready(None) => {
                if let Some(r) = this.recorder.take() {
                    r.finish(Code::Unknown);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Status names as gRPC's own libraries print them (`codes.Code.String()` in grpc-go).
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}
