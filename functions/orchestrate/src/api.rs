//! The run API on the runtime's one port: `POST /v1/run` answers one JSON result, or the same
//! run as server-sent events (`Accept: text/event-stream` or `"stream": true`) ending always in
//! `run.finished`; `GET /v1/workflows` lists what is loaded. A caller that goes away cancels
//! its run: a JSON run's handler is dropped, a streamed run's token is cancelled when its body is.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument as _;

use aixrun::error::{ApiError, ErrorKind};
use aixrun::server::{Deadline, Shutdown, grpc_timeout};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::run::{Engine, Envelope, Interruptions, RunSpec, RunSummary, Status, Usage, lowered};

/// A comment goes out when nothing else has for this long, so idle-timeout proxies keep the
/// stream open.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// Taken off the request's deadline so that a run answers before the platform's 504.
const MAX_DEADLINE_MARGIN: Duration = Duration::from_secs(2);
/// The fields a run request may have.
const FIELDS: [&str; 6] = [
    "input",
    "workflow",
    "metadata",
    "budget",
    "stream",
    "deadline_ms",
];

/// What the routes share.
#[derive(Clone)]
pub struct Api {
    /// The engine every entry point drives.
    pub engine: Arc<Engine>,
    /// Whether the models answer.
    pub models: Arc<crate::reachability::Reachability>,
    /// Streamed runs are spawned here, so the drain waits for their final event.
    pub tasks: TaskTracker,
    /// SIGTERM, which interrupts runs.
    pub shutdown: Shutdown,
}

/// `POST /v1/run` and `GET /v1/workflows`.
pub fn router(api: Api) -> Router {
    Router::new()
        .route("/v1/run", post(run))
        .route("/v1/workflows", get(workflows))
        .with_state(api)
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::BadRequest, message)
}

/// A run that will not start: why, and whether the caller asked for a stream (then the
/// refusal is one.)
struct Refusal {
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
    let (spec, stream) = match admit(&api, deadline.map(|d| d.0), &headers, &body).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refused(refusal),
    };
    if !stream {
        // The handler owns the run: a caller that disconnects drops it, and the run with it.
        let stop = Interruptions {
            cancel: CancellationToken::new(),
            shutdown: api.shutdown.clone(),
        };
        let result = api.engine.run(spec, None, stop).await;
        return axum::Json(result).into_response();
    }
    streamed(api, spec)
}

/// The run a request asks for and whether it is streamed, or why it is refused.
async fn admit(
    api: &Api,
    route_deadline: Option<Deadline>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(RunSpec, bool), Refusal> {
    // Until the body says otherwise, the caller wants a stream when it accepts one.
    let mut stream = accepts_event_stream(headers);
    let mut workflow = String::new();
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
    match fields.get("stream") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => stream = *b,
        Some(_) => return Err(refuse(bad("stream must be true or false"), stream, "")),
    }
    if let Some(Value::String(name)) = fields.get("workflow") {
        workflow.clone_from(name);
    }
    if let Some(unknown) = fields.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        let message = format!("unknown field {unknown:?}; expected {}", FIELDS.join(", "));
        return Err(refuse(bad(message), stream, &workflow));
    }
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
    let spec = spec(api, &fields, route_deadline, caller_deadline)
        .map_err(|error| refuse(error, stream, &workflow))?;
    if let Some(found) = api.engine.workflow(&spec.workflow)
        && let Err(why) = api.models.workflow(found, &api.engine.orchestration).await
    {
        let error = ApiError::new(ErrorKind::Unavailable, why).retry_after(5);
        return Err(refuse(error, stream, &spec.workflow));
    }
    Ok((spec, stream))
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

fn sse_event(envelope: &Envelope) -> Event {
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
    // Unbounded: the recorder never waits on a slow client, and what a run can send is bounded
    // by its own budget.
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let stop = Interruptions {
        cancel: cancel.clone(),
        shutdown: api.shutdown.clone(),
    };
    let engine = api.engine.clone();
    let run_id = spec.run_id.clone();
    // In the request's span: the run's spans belong to the request's trace.
    api.tasks.spawn(
        async move {
            engine.run(spec, Some(tx), stop).await;
        }
        .instrument(tracing::Span::current()),
    );
    let guard = cancel.drop_guard();
    let end = StreamEnd {
        span: tracing::Span::current(),
        run_id,
        started: Instant::now(),
        status: None,
    };
    // The stream ends when the run's task drops its sender, after run.finished; dropping the
    // stream (the client left) drops the guard, which cancels the run.
    let events =
        futures_util::stream::unfold((rx, guard, end), |(mut rx, guard, mut end)| async move {
            let envelope: Envelope = rx.recv().await?;
            if let crate::run::Event::RunFinished(summary) = &envelope.event {
                end.status = Some(summary.status);
            }
            let sse = sse_event(&envelope);
            Some((Ok::<_, Infallible>(sse), (rx, guard, end)))
        });
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

/// The run a request asks for, or the 4xx that says what is wrong with it.
fn spec(
    api: &Api,
    fields: &Map<String, Value>,
    route_deadline: Option<Deadline>,
    caller_timeout: Option<Duration>,
) -> Result<RunSpec, ApiError> {
    let input = match fields.get("input") {
        Some(v @ (Value::String(_) | Value::Object(_))) => v.clone(),
        Some(_) => return Err(bad("input must be a string or an object")),
        None => return Err(bad("input is required (a string or an object)")),
    };
    let orchestration = &api.engine.orchestration;
    let names = || {
        orchestration
            .workflows
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let workflow = match fields.get("workflow") {
        Some(Value::String(name)) => name.clone(),
        Some(_) => return Err(bad("workflow must be a string")),
        None if orchestration.workflows.len() == 1 => orchestration
            .workflows
            .keys()
            .next()
            .cloned()
            .unwrap_or_default(),
        None if orchestration.workflows.contains_key("default") => "default".to_owned(),
        None => return Err(bad(format!("workflow is required: one of {}", names()))),
    };
    if !orchestration.workflows.contains_key(&workflow) {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            format!(
                "unknown workflow {workflow:?}; the workflows are {}",
                names()
            ),
        ));
    }
    if fields.get("metadata").is_some_and(|m| !m.is_object()) {
        return Err(bad("metadata must be an object"));
    }
    let budget = match fields.get("budget") {
        None => orchestration.defaults.budget,
        Some(asked) => lowered(orchestration.defaults.budget, asked).map_err(bad)?,
    };
    let now = Instant::now();
    let mut deadline = now + budget.wall_time;
    if let Some(route) = route_deadline {
        let left = route.remaining();
        let margin = MAX_DEADLINE_MARGIN.min(left / 10);
        deadline = deadline.min(now + left.saturating_sub(margin));
    }
    // The caller's own deadline (`grpc-timeout`, `deadline_ms`) can only shorten the run.
    if let Some(timeout) = caller_timeout {
        deadline = deadline.min(now + timeout);
    }
    match fields.get("deadline_ms") {
        None => {}
        Some(v) => match v.as_u64() {
            Some(ms) => deadline = deadline.min(now + Duration::from_millis(ms)),
            None => return Err(bad("deadline_ms must be a whole number of milliseconds")),
        },
    }
    Ok(RunSpec {
        run_id: crate::run::run_id(),
        workflow,
        input,
        budget,
        deadline,
    })
}

/// Each workflow as a graph: its agents (nodes, with their role's settings) and edges (with
/// their conditions), its entries and exit, and the workers its planners and supervisors use.
async fn workflows(State(api): State<Api>) -> axum::Json<Value> {
    let orchestration = &api.engine.orchestration;
    let workflows: Vec<Value> = orchestration
        .workflows
        .values()
        .map(|w| {
            let name = |i: usize| w.nodes[i].name.clone();
            let workers: Vec<Value> = w
                .agents(orchestration)
                .into_iter()
                .filter(|a| !w.nodes.iter().any(|n| n.name == a.name))
                .map(|a| agent_json(a))
                .collect();
            json!({
                "name": w.name,
                "description": w.description,
                "agents": w.nodes.iter().map(|a| agent_json(a)).collect::<Vec<_>>(),
                "edges": w.edges.iter().map(|e| json!({
                    "from": name(e.from),
                    "to": name(e.to),
                    "when": e.when,
                })).collect::<Vec<_>>(),
                "entries": (0..w.nodes.len())
                    .filter(|&i| w.inputs(i).next().is_none())
                    .map(name)
                    .collect::<Vec<_>>(),
                "exit": w.exit.map(name),
                "workers": workers,
            })
        })
        .collect();
    axum::Json(json!({ "workflows": workflows }))
}

fn agent_json(a: &crate::config::Agent) -> Value {
    use crate::config::Role;
    let mut agent = json!({
        "name": a.name,
        "role": a.role.name(),
        "model": a.model.as_ref().map(|m| json!({
            "name": m.name,
            "model": m.model,
            "provider": m.endpoint.provider().name(),
        })),
        "mcp_servers": a.mcp_servers.iter().map(|s| json!({
            "name": s.name,
            "tools": s.tools,
        })).collect::<Vec<_>>(),
        "max_iterations": a.max_iterations,
    });
    let settings = match &a.role {
        Role::Classifier(c) => json!({
            "categories": c.categories.iter().map(|c| json!({
                "name": c.name, "description": c.description, "keywords": c.keywords,
            })).collect::<Vec<_>>(),
            "confidence_threshold": c.confidence_threshold,
            "multi_label": c.multi_label,
            "fallback": c.fallback,
            "keywords_first": c.keywords_first,
        }),
        Role::Aggregator(g) => json!({
            "strategy": g.strategy.name(),
            "source_weights": g.source_weights,
            "vote_field": g.vote_field,
        }),
        Role::Planner(p) => json!({
            "max_steps": p.max_steps,
            "workers": p.workers,
            "replan_on_failure": p.replan_on_failure,
        }),
        Role::Supervisor(s) => json!({"workers": s.workers, "max_rounds": s.max_rounds}),
        Role::React | Role::Logger => Value::Null,
    };
    if !settings.is_null() {
        agent[format!("{}_config", a.role.name())] = settings;
    }
    agent
}
