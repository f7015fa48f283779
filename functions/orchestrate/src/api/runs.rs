//! Durable runs over HTTP: `POST /v1/runs` (202, then executed in the background), `GET
//! /v1/runs/{id}`, `GET /v1/runs` (by session and status, a page at a time), `POST
//! /v1/runs/{id}:cancel`, `GET /v1/runs/{id}/events` (SSE from the store, resuming after
//! `Last-Event-ID`), the session routes, and `/v1/run`'s attached form of a durable run.

use std::convert::Infallible;

use aixrun::error::{ApiError, ErrorKind};
use aixrun::server::Deadline;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use serde::Deserialize;
use serde_json::{Value, json};

use aixrun::gcp::pubsub::PushMessage;
use tracing::Instrument as _;

use super::{Api, Refusal, bad, refused, sse_event};
use crate::run::{Envelope, Event, RunResult};
use crate::service::RunRequest;
use crate::service::start::Attached;
use crate::store::{RunFilter, RunRecord, RunStatus};

/// The routes.
pub(super) fn router() -> Router<Api> {
    Router::new()
        .route("/v1/runs", post(submit).get(list))
        .route("/v1/runs:execute", post(execute))
        .route(
            "/v1/runs/{id}",
            get(get_run).post(action).fallback(other_method),
        )
        .route("/v1/runs/{id}/events", get(events))
        .route("/v1/sessions/{id}", get(get_session).delete(delete_session))
}

/// `Idempotency-Key`: the same key gives the same run.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

fn record_json(record: &RunRecord) -> Value {
    serde_json::to_value(record).unwrap_or(Value::Null)
}

/// `POST /v1/runs`: stores the run and answers 202 with its id; an instance executes it.
async fn submit(
    State(api): State<Api>,
    deadline: Option<axum::Extension<Deadline>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let fields = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(fields)) => fields,
        Ok(_) => return Err(bad("the body must be a JSON object with an \"input\"")),
        Err(e) => return Err(bad(format!("the body is not JSON: {e}"))),
    };
    for field in ["stream", "on_disconnect"] {
        if fields.get(field).is_some() {
            return Err(bad(format!(
                "{field} does not apply to /v1/runs: a submitted run goes on by itself; follow \
                 it with GET /v1/runs/{{id}}/events"
            )));
        }
    }
    // A submitted run may wait in a queue and go on over several requests: its time is its
    // budget's wall_time, spent only while it executes.
    if fields.get("deadline_ms").is_some() {
        return Err(bad(
            "deadline_ms does not apply to /v1/runs: limit a submitted run's time with \
             budget.wall_time (counted only while it executes), and cancel it with POST \
             /v1/runs/{id}:cancel",
        ));
    }
    let service = &api.service;
    let request = RunRequest::parse(&service.engine.orchestration, &fields)?;
    let key = match headers.get(IDEMPOTENCY_KEY) {
        None => None,
        Some(v) => match v.to_str() {
            Ok(k) if (1..=255).contains(&k.len()) => Some(k.to_owned()),
            _ => {
                return Err(bad(
                    "Idempotency-Key must be 1-255 visible ASCII characters",
                ));
            }
        },
    };
    if let Some(found) = service.engine.workflow(&request.workflow)
        && let Err(why) = api
            .models
            .workflow(found, &service.engine.orchestration)
            .await
    {
        return Err(ApiError::new(ErrorKind::Unavailable, why).retry_after(5));
    }
    let wait_until = deadline.map(|d| d.0.0);
    let (record, new) = service.submit(&request, key.as_deref(), wait_until).await?;
    // A run the same key made before that never got queued (the queue was down) is queued
    // now.
    if new || record.status == RunStatus::Submitted && record.lease.is_none() {
        service.dispatch(&record.run_id).await?;
    }
    let mut response = (
        StatusCode::ACCEPTED,
        axum::Json(json!({"run_id": record.run_id, "status": record.status.as_str()})),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/runs/{}", record.run_id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `POST /v1/runs:execute`: a Pub/Sub push naming a run, which executes inside this request.
/// The answer follows Pub/Sub's rules: 2xx acknowledges (the run ended, was suspended and
/// published again, runs elsewhere, or the message can never succeed: logged and dropped);
/// 503 asks for the message again (the store or the queue is down).
async fn execute(
    State(api): State<Api>,
    deadline: Option<axum::Extension<Deadline>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let drop_it = |why: String| {
        tracing::warn!(
            reason = why.as_str(),
            "push acknowledged and dropped: {why}"
        );
        StatusCode::NO_CONTENT.into_response()
    };
    let message = match PushMessage::parse(&headers, &body) {
        Ok(message) => message,
        Err(e) => return drop_it(e.to_string()),
    };
    let from_data = serde_json::from_slice::<Value>(&message.data)
        .ok()
        .and_then(|v| v.get("run_id").and_then(Value::as_str).map(str::to_owned));
    let Some(run_id) = from_data.or_else(|| message.attribute("run_id").map(str::to_owned)) else {
        return drop_it(format!(
            "message {} names no run (data {{\"run_id\"}} or a run_id attribute)",
            message.message_id
        ));
    };
    let span = tracing::info_span!(
        "delivery",
        run_id = run_id.as_str(),
        message_id = message.message_id.as_str(),
        attempt = message.delivery_attempt
    );
    let outcome = api
        .service
        .deliver(&run_id, deadline.map(|d| d.0.0))
        .instrument(span)
        .await;
    match outcome {
        Ok(executed) => {
            tracing::info!(
                run_id,
                message_id = message.message_id,
                ?executed,
                "delivery done"
            );
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) if e.kind == ErrorKind::Unavailable => e.into_response(),
        Err(e) => drop_it(format!("run {run_id}: {}", e.message)),
    }
}

/// The actions POSTed as `/v1/runs/{id}:ACTION`.
const ACTIONS: [&str; 2] = ["cancel", "resume"];

/// `/v1/runs/{id}` and `/v1/runs/{id}:ACTION` share one route: a method either does not
/// serve answers 405 with the methods of the form asked (`Allow: GET,HEAD` for a run, `POST`
/// for an action), not the route's union.
fn wrong_method(method: &axum::http::Method, id: &str) -> Response {
    let (allow, hint) = if id.contains(':') {
        ("POST", "a run's actions are POSTed")
    } else {
        (
            "GET,HEAD",
            "a run is read with GET; its actions are POSTed as /v1/runs/{id}:cancel and \
             /v1/runs/{id}:resume",
        )
    };
    let mut response = ApiError::new(
        ErrorKind::MethodNotAllowed,
        format!("{method} is not allowed on /v1/runs/{id}: {hint}"),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

async fn other_method(method: axum::http::Method, Path(id): Path<String>) -> Response {
    wrong_method(&method, &id)
}

async fn get_run(
    method: axum::http::Method,
    State(api): State<Api>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if id
        .rsplit_once(':')
        .is_some_and(|(_, verb)| ACTIONS.contains(&verb))
    {
        return Ok(wrong_method(&method, &id));
    }
    let record = api.service.get(&id).await?;
    Ok(axum::Json(record_json(&record)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    session_id: Option<String>,
    status: Option<String>,
    page_size: Option<usize>,
    page_token: Option<String>,
}

/// `GET /v1/runs?session_id=&status=&page_size=&page_token=`, newest first.
async fn list(
    State(api): State<Api>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| {
        bad(format!(
            "{}; the parameters are session_id, status, page_size and page_token",
            e.body_text()
        ))
    })?;
    let status = match query.status.as_deref() {
        None => None,
        Some(s) => Some(RunStatus::parse(s).ok_or_else(|| {
            bad(format!(
                "unknown status {s:?}; one of submitted, running, suspended, completed, \
                 budget_exhausted, deadline, failed, cancelled, interrupted"
            ))
        })?),
    };
    let page_size = query.page_size.unwrap_or(20);
    if !(1..=100).contains(&page_size) {
        return Err(bad("page_size must be 1 to 100"));
    }
    let filter = RunFilter {
        session_id: query.session_id,
        status,
        page_size,
        page_token: query.page_token,
    };
    let page = api.service.list(&filter).await?;
    Ok(axum::Json(json!({
        "runs": page.runs.iter().map(record_json).collect::<Vec<_>>(),
        "next_page_token": page.next_page_token,
    }))
    .into_response())
}

/// `POST /v1/runs/{id}:cancel`.
/// `:resume`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Verdicts {
    #[serde(default)]
    approve: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
    message: Option<String>,
}

async fn action(
    method: axum::http::Method,
    State(api): State<Api>,
    Path(id_action): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Some((id, verb)) = id_action.rsplit_once(':') else {
        // A run is read with GET; only its actions are POSTed.
        return Ok(wrong_method(&method, &id_action));
    };
    match verb {
        "cancel" => {
            let record = api.service.cancel(id).await?;
            Ok(axum::Json(record_json(&record)).into_response())
        }
        "resume" => {
            let verdicts: Verdicts = serde_json::from_slice(&body).map_err(|e| {
                bad(format!(
                    "the body must be {{\"approve\": [approval_id], \"deny\": [approval_id], \"message\"?: text}}: {e}"
                ))
            })?;
            let record = api
                .service
                .resume(id, &verdicts.approve, &verdicts.deny, verdicts.message)
                .await?;
            api.service.dispatch(id).await?;
            Ok(axum::Json(record_json(&record)).into_response())
        }
        other => Err(ApiError::new(
            ErrorKind::NotFound,
            format!("no action {other:?} on runs; the actions are :cancel and :resume"),
        )),
    }
}

/// `GET /v1/runs/{id}/events`: the run's events from the store, after `Last-Event-ID` (or
/// `?after=`), ending with `run.finished`.
async fn events(
    State(api): State<Api>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let after =
        match headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .or(query.get("after").map(String::as_str))
        {
            None | Some("") => None,
            Some(raw) => Some(raw.trim().parse::<u64>().map_err(|_| {
                bad("Last-Event-ID (or after) must be an event's seq, a whole number")
            })?),
        };
    api.service.get(&id).await?;
    Ok(sse(api.service.follow(&id, after)))
}

/// An SSE answer of `events` (a store error ends it with an `error` event).
fn sse<S>(events: S) -> Response
where
    S: Stream<Item = Result<Envelope, crate::store::StoreError>> + Send + 'static,
{
    let events = events.map(|item| {
        Ok::<_, Infallible>(match item {
            Ok(envelope) => sse_event(&envelope),
            Err(e) => axum::response::sse::Event::default()
                .event("error")
                .data(e.to_string()),
        })
    });
    super::sse_response(events)
}

/// `/v1/run` for a run that goes through the store (a session's turn, or
/// `"on_disconnect": "continue"`): submitted, executed by this instance, followed from the
/// store as SSE or until its result.
pub(super) async fn attached(
    api: Api,
    request: RunRequest,
    deadline: Option<Deadline>,
    stream: bool,
) -> Response {
    let service = api.service.clone();
    let Attached { run_id, events } = match service.attach(&request, deadline.map(|d| d.0)).await {
        Ok(attached) => attached,
        Err(error) => {
            return refused(Refusal {
                error,
                stream,
                workflow: request.workflow.clone(),
            });
        }
    };
    if stream {
        return sse(events);
    }
    let mut events = events;
    while let Some(item) = events.next().await {
        match item {
            Ok(Envelope {
                event: Event::RunFinished(summary),
                ..
            }) => return axum::Json(RunResult { run_id, summary }).into_response(),
            Ok(_) => {}
            Err(e) => {
                return ApiError::new(ErrorKind::Unavailable, e.to_string())
                    .retry_after(5)
                    .into_response();
            }
        }
    }
    match service.get(&run_id).await {
        Ok(record) => axum::Json(record_json(&record)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn get_session(State(api): State<Api>, Path(id): Path<String>) -> Result<Response, ApiError> {
    match api.service.session(&id).await? {
        Some(session) => Ok(axum::Json(session).into_response()),
        None => Err(ApiError::new(
            ErrorKind::NotFound,
            format!("no session {id:?}"),
        )),
    }
}

async fn delete_session(
    State(api): State<Api>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if api.service.delete_session(&id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::new(
            ErrorKind::NotFound,
            format!("no session {id:?}"),
        ))
    }
}
