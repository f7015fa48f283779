//! The run API on the runtime's one port: `POST /v1/run` answers one JSON result, or the same
//! run as server-sent events (`Accept: text/event-stream` or `"stream": true`) ending always in
//! `run.finished`; `GET /v1/workflows` lists what is loaded; [`runs`] has the durable runs'
//! routes (`/v1/runs`, their events, cancel, sessions). A caller that goes away cancels its
//! run unless it asked `"on_disconnect": "continue"`: a JSON run's handler is dropped, a
//! streamed run's token is cancelled when its body is.

mod runs;
mod workflows;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use aixrun::error::{ApiError, ErrorKind};
use aixrun::server::{Deadline, grpc_timeout};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::StreamExt as _;
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::run::{Envelope, Interruptions, RunSpec, RunSummary, Status, Usage};
use crate::service::start::Admitted;
use crate::service::{RunRequest, RunService};

/// A comment goes out when nothing else has for this long, so idle-timeout proxies keep the
/// stream open.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// What the routes share.
#[derive(Clone)]
pub struct Api {
    /// The run service every route drives.
    pub service: Arc<RunService>,
    /// Whether the models answer.
    pub models: Arc<crate::reachability::Reachability>,
}

/// The run API's routes.
pub fn router(api: Api) -> Router {
    Router::new()
        .route("/v1/run", post(run))
        .route("/v1/workflows", get(workflows::workflows))
        .merge(runs::router())
        .with_state(api)
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::BadRequest, message)
}

/// A run that will not start: why, and whether the caller asked for a stream (then the
/// refusal is one.)
pub(crate) struct Refusal {
    error: ApiError,
    stream: bool,
    workflow: String,
}

async fn run(
    State(api): State<Api>,
    deadline: Option<axum::Extension<Deadline>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let deadline = deadline.map(|d| d.0);
    let (admitted, stream) = match admit(&api, deadline, &headers, &body).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refused(refusal),
    };
    // A run that must outlive this request, or that continues a session, goes through the
    // store; the caller follows it there.
    if admitted.stored() {
        return runs::attached(api, admitted.request, deadline, stream).await;
    }
    let spec = admitted.spec;
    let service = &api.service;
    if !stream {
        // The handler owns the run: a caller that disconnects drops it, and the run with it.
        let stop = Interruptions {
            cancel: CancellationToken::new(),
            shutdown: service.shutdown.clone(),
        };
        let result = service.engine.run(spec, None, stop).await;
        return axum::Json(result).into_response();
    }
    streamed(api, spec)
}

/// The checked run and whether it is streamed, or why it is refused.
async fn admit(
    api: &Api,
    route_deadline: Option<Deadline>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Admitted, bool), Refusal> {
    // Until the body says otherwise, the caller wants a stream when it accepts one.
    let mut stream = accepts_event_stream(headers);
    let refuse = |error: ApiError, stream: bool, workflow: &str| Refusal {
        error,
        stream,
        workflow: workflow.to_owned(),
    };
    let request: Value = serde_json::from_slice(body)
        .map_err(|e| refuse(bad(format!("the body is not JSON: {e}")), stream, ""))?;
    let Value::Object(fields) = request else {
        return Err(refuse(
            bad("the body must be a JSON object with an \"input\""),
            stream,
            "",
        ));
    };
    if let Some(Value::Bool(b)) = fields.get("stream") {
        stream = *b;
    }
    let workflow = RunRequest::workflow_named(&api.service.engine.orchestration, &fields);
    let caller_deadline = match headers.get("grpc-timeout") {
        None => None,
        Some(_) => Some(grpc_timeout(headers).ok_or_else(|| {
            refuse(
                bad("grpc-timeout must be up to 8 digits and a unit: H, M, S, m, u or n"),
                stream,
                &workflow,
            )
        })?),
    };
    let admitted = api
        .service
        .admit(
            &api.models,
            &fields,
            route_deadline.map(|d| d.remaining()),
            caller_deadline,
        )
        .await
        .map_err(|e| refuse(e, stream, &workflow))?;
    Ok((admitted, stream))
}

/// The answer to a refused run, logged at WARN with its reason: the JSON error, or for a
/// caller that asked for a stream, a stream with the same status and headers holding one
/// `run.finished` (`failed`, the reason), so that an event reader sees why.
fn refused(refusal: Refusal) -> Response {
    let Refusal {
        error,
        stream,
        workflow,
    } = refusal;
    let status = error.kind.status().as_u16();
    tracing::warn!(
        status,
        workflow = (!workflow.is_empty()).then_some(workflow.as_str()),
        reason = error.message.as_str(),
        stream,
        "run refused: {}",
        error.message
    );
    if !stream {
        return error.into_response();
    }
    let summary = RunSummary {
        workflow,
        status: Status::Failed,
        output: Value::Null,
        error: Some(error.message.clone()),
        steps: Vec::new(),
        usage: Usage::default(),
        duration_ms: 0,
        pending: Vec::new(),
    };
    let envelope = Envelope {
        run_id: crate::run::run_id(),
        seq: 0,
        at: crate::run::now(),
        step_id: None,
        parent_step_id: None,
        event: crate::run::Event::RunFinished(summary),
    };
    let event = sse_event(&envelope);
    let mut response =
        Sse::new(futures_util::stream::iter([Ok::<_, Infallible>(event)])).into_response();
    *response.status_mut() = error.kind.status();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(secs) = error.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

pub(crate) fn sse_event(envelope: &Envelope) -> Event {
    Event::default()
        .event(envelope.event.name())
        .id(envelope.seq.to_string())
        .json_data(envelope)
        .unwrap_or_else(|_| Event::default().event("error").data("unencodable event"))
}

/// A streamed run's last line: its final status and how long the stream lasted (the request
/// line's latency is the time to the stream's headers), or that the caller left first.
struct StreamEnd {
    span: tracing::Span,
    run_id: String,
    started: Instant,
    status: Option<Status>,
}

impl Drop for StreamEnd {
    fn drop(&mut self) {
        let _entered = self.span.enter();
        let duration_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match self.status {
            Some(status) => tracing::info!(
                run_id = self.run_id,
                status = status.as_str(),
                duration_ms,
                "stream ended: {}",
                status.as_str()
            ),
            None => tracing::info!(
                run_id = self.run_id,
                duration_ms,
                "stream ended: the caller left before run.finished"
            ),
        }
    }
}

/// A run as server-sent events: the run is a tracked task, cancelled when the body is dropped.
fn streamed(api: Api, spec: RunSpec) -> Response {
    let end = StreamEnd {
        span: tracing::Span::current(),
        run_id: spec.run_id.clone(),
        started: Instant::now(),
        status: None,
    };
    let events = api.service.run_here(spec).scan(end, |end, envelope| {
        if let crate::run::Event::RunFinished(summary) = &envelope.event {
            end.status = Some(summary.status);
        }
        std::future::ready(Some(Ok::<_, Infallible>(sse_event(&envelope))))
    });
    sse_response(events)
}

/// An SSE answer of `events`: heartbeats while nothing else goes out, and no caching or
/// proxy buffering.
pub(crate) fn sse_response<S>(events: S) -> Response
where
    S: futures_util::Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat"))
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}
