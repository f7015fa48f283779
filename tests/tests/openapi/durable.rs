//! Durable runs against the document, on an instance of their own whose model answers by the
//! request's last message (runs here overlap, so a script's order would not hold): "slow"
//! streams for ever (until the run is cancelled), "gate" calls the echo tool, a tool's result
//! gets "Echoed.", anything else is answered at once. Exercised:
//! a submit (202) polled to completion, the same `Idempotency-Key` giving the same run, the
//! events from the start and resumed after `Last-Event-ID` (or `after`), a session of three
//! turns (submitted, then `/v1/run` as JSON and as a stream) whose model sees the earlier
//! turns, the list by session a page at a time, a cancel of an ended run (409) and of a running
//! one (200, then `cancelled`), a busy session (409 from both doors and from its delete), the
//! session read and deleted, `on_disconnect`, approval gates and push deliveries ([`gates`]),
//! the 405s of the shared route, and the 400s and 404s.

use std::time::Duration;

use e2e::model::{FakeModel, Reply, Responder, last_message};
use e2e::orchestrate::{self, openai_service};
use e2e::{TempDir, TestApp, WAIT_TIMEOUT, clients};
use serde_json::{Value, json};

use crate::contract::Contract;
use crate::gates;

const RUN: &str = "/v1/runs/{id}";
const EVENTS: &str = "/v1/runs/{id}/events";
const CANCEL: &str = "/v1/runs/{id}:cancel";
const SESSION: &str = "/v1/sessions/{id}";
const RESUME: &str = "/v1/runs/{id}:resume";

fn config(model_service: &str) -> String {
    format!(
        "mcp_servers:
  - {{name: tools, transport: local, tools: [echo]}}
model_services:
{model_service}agents:
  - name: solo
    role: react
    model: fake
    prompt: Answer briefly.
  - name: careful
    role: react
    model: fake
    prompt: Use the echo tool.
    mcp_servers: [tools]
    approval: {{tools: [echo]}}
workflows:
  - {{name: default, agents: [solo]}}
  - {{name: other, agents: [solo]}}
  - {{name: gated, agents: [careful]}}
"
    )
}

pub(crate) fn submit(app: &TestApp, body: &Value) -> reqwest::RequestBuilder {
    clients::http1()
        .post(app.url("/v1/runs"))
        .header("content-type", "application/json")
        .body(body.to_string())
}

fn run(app: &TestApp, body: &Value) -> reqwest::RequestBuilder {
    clients::http1()
        .post(app.url("/v1/run"))
        .header("content-type", "application/json")
        .body(body.to_string())
}

fn get(app: &TestApp, path: &str) -> reqwest::RequestBuilder {
    clients::http1().get(app.url(path))
}

/// Submits `body`: the run's id, after checking the 202 and its `Location`.
pub(crate) async fn submitted(c: &mut Contract, request: reqwest::RequestBuilder) -> String {
    let (status, body, headers) = c.call("/v1/runs", request).await;
    assert_eq!(status, 202, "{body}");
    let id = body["run_id"].as_str().unwrap().to_owned();
    assert_eq!(headers["location"], format!("/v1/runs/{id}").as_str());
    id
}

/// Polls run `id` (each answer checked) until `done` holds for its record.
pub(crate) async fn poll(
    c: &mut Contract,
    app: &TestApp,
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT_TIMEOUT;
    loop {
        let (status, record, _) = c.call(RUN, get(app, &format!("/v1/runs/{id}"))).await;
        assert_eq!(status, 200, "{record}");
        if done(&record) {
            return record;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run {id} never got there: {record}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn ended(record: &Value) -> bool {
    !matches!(
        record["status"].as_str(),
        Some("submitted" | "running" | "suspended")
    )
}

fn seqs(events: &Value) -> Vec<u64> {
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect()
}

pub(crate) async fn exercise(c: &mut Contract) {
    let model = FakeModel::openai_responder(Responder::new(|request| {
        let asked = last_message(request);
        let after_tool = request["messages"]
            .as_array()
            .and_then(|m| m.last())
            .is_some_and(|m| m["role"] == "tool");
        if after_tool {
            Reply::text("Echoed.")
        } else if asked.contains("gate") {
            Reply::call("echo", json!({"text": "gated"}))
        } else if asked.contains("slow") {
            Reply::Endless(Duration::from_millis(50))
        } else {
            Reply::text(&format!("You said {asked}."))
        }
    }));
    let dir = TempDir::new();
    let app = orchestrate::spawn(&dir, &config(&openai_service(&model)), &[]);

    // A submitted run, polled until it completes; the same key gives the same run.
    let body = json!({"workflow": "default", "input": "first", "metadata": {"by": "openapi"},
                      "budget": {"model_calls": 3}});
    let keyed = || submit(&app, &body).header("idempotency-key", "openapi-1");
    let id = submitted(c, keyed()).await;
    let again = submitted(
        c,
        submit(&app, &json!({"input": "other", "workflow": "other"}))
            .header("idempotency-key", "openapi-1"),
    )
    .await;
    assert_eq!(again, id, "the same Idempotency-Key started another run");
    let record = poll(c, &app, &id, ended).await;
    assert_eq!(record["status"], "completed", "{record}");
    assert_eq!(record["result"]["output"], "You said first.", "{record}");
    assert_eq!(record["request"]["metadata"], json!({"by": "openapi"}));
    assert_eq!(record["attempts"], 1, "{record}");
    let (status, _, _) = c.call("/v1/runs", keyed()).await;
    assert_eq!(status, 202);
    let other = submitted(
        c,
        submit(&app, &body).header("idempotency-key", "openapi-2"),
    )
    .await;
    assert_ne!(other, id, "another key gave the same run");

    // Its events: all of them, then resumed after one, by header and by query.
    let url = format!("/v1/runs/{id}/events");
    let (_, all, headers) = c.call(EVENTS, get(&app, &url)).await;
    assert_eq!(headers["cache-control"], "no-cache");
    let all_seqs = seqs(&all);
    let last = *all_seqs.last().unwrap();
    assert_eq!(all_seqs, (0..=last).collect::<Vec<_>>(), "gaps or repeats");
    assert_eq!(Some(last), record["last_seq"].as_u64(), "{record}");
    assert!(last >= 3, "too few events to resume within: {all}");
    let (_, resumed, _) = c
        .call(EVENTS, get(&app, &url).header("last-event-id", "1"))
        .await;
    assert_eq!(seqs(&resumed), (2..=last).collect::<Vec<_>>());
    assert_eq!(
        resumed.as_array().unwrap()[..],
        all.as_array().unwrap()[2..]
    );
    let (_, by_query, _) = c
        .call(EVENTS, get(&app, &format!("{url}?after={}", last - 1)))
        .await;
    assert_eq!(seqs(&by_query), vec![last]);

    // A session of three turns: submitted, then /v1/run as JSON and as a stream.
    let s = "openapi-session";
    let first = submitted(c, submit(&app, &json!({"input": "hello", "session_id": s}))).await;
    poll(c, &app, &first, ended).await;
    let (status, result, _) = c
        .call(
            "/v1/run",
            run(
                &app,
                &json!({"input": "again", "session_id": s, "workflow": "default"}),
            ),
        )
        .await;
    assert_eq!(
        (status, result["status"].as_str()),
        (200, Some("completed")),
        "{result}"
    );
    let asked = model.requests().last().cloned().unwrap();
    let said: Vec<&str> = asked["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert!(
        said.contains(&"hello") && said.contains(&"You said hello."),
        "the second turn's model did not see the first: {said:?}"
    );
    let (status, events, _) = c
        .call(
            "/v1/run",
            run(
                &app,
                &json!({"input": "third", "session_id": s, "workflow": "default",
                              "stream": true, "if_busy": "wait"}),
            ),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        events.as_array().unwrap().last().unwrap()["status"],
        "completed"
    );
    let (status, session, _) = c
        .call(SESSION, get(&app, &format!("/v1/sessions/{s}")))
        .await;
    assert_eq!(status, 200);
    let inputs: Vec<&str> = session["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["input"].as_str().unwrap())
        .collect();
    assert_eq!(inputs, ["hello", "again", "third"], "{session}");

    // The session's runs, newest first, two to a page.
    let (status, page, _) = c
        .call(
            "/v1/runs",
            get(&app, &format!("/v1/runs?session_id={s}&page_size=2")),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["runs"].as_array().unwrap().len(), 2, "{page}");
    let token = page["next_page_token"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let (_, rest, _) = c
        .call(
            "/v1/runs",
            get(
                &app,
                &format!("/v1/runs?session_id={s}&page_size=2&page_token={token}"),
            ),
        )
        .await;
    assert_eq!(rest["next_page_token"], Value::Null, "{rest}");
    let listed: Vec<&str> = page["runs"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["runs"].as_array().unwrap())
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 3, "{page} {rest}");
    assert_eq!(listed[2], first, "not newest first: {listed:?}");
    let (_, completed, _) = c
        .call(
            "/v1/runs",
            get(&app, "/v1/runs?status=completed&page_size=100"),
        )
        .await;
    assert!(
        completed["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "completed"),
        "{completed}"
    );

    // An ended run cannot be cancelled.
    let (status, error, _) = c
        .call(
            CANCEL,
            clients::http1().post(app.url(&format!("/v1/runs/{id}:cancel"))),
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (409, Some("conflict")),
        "{error}"
    );

    // A running run holds its session: both doors and the delete answer 409; then it is
    // cancelled and its events end with run.finished `cancelled`.
    let busy = "openapi-busy";
    let slow = submitted(
        c,
        submit(&app, &json!({"input": "slow", "session_id": busy})),
    )
    .await;
    poll(c, &app, &slow, |r| r["status"] == "running").await;
    let (status, error, _) = c
        .call(
            "/v1/runs",
            submit(&app, &json!({"input": "x", "session_id": busy})),
        )
        .await;
    assert_eq!(status, 409, "{error}");
    assert!(error["error"].as_str().unwrap().contains(&slow), "{error}");
    let second = json!({"input": "x", "session_id": busy, "workflow": "default"});
    let (status, _, _) = c.call("/v1/run", run(&app, &second)).await;
    assert_eq!(status, 409);
    let (status, events, _) = c
        .call(
            "/v1/run",
            run(&app, &second).header("accept", "text/event-stream"),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(events[0]["status"], "failed", "{events}");
    let (status, session, _) = c
        .call(SESSION, get(&app, &format!("/v1/sessions/{busy}")))
        .await;
    assert_eq!(
        (status, session["active_run"].as_str()),
        (200, Some(slow.as_str()))
    );
    let delete = || clients::http1().delete(app.url(&format!("/v1/sessions/{busy}")));
    let (status, _, _) = c.call(SESSION, delete()).await;
    assert_eq!(status, 409);
    let (status, record, _) = c
        .call(
            CANCEL,
            clients::http1().post(app.url(&format!("/v1/runs/{slow}:cancel"))),
        )
        .await;
    assert_eq!(
        (status, record["cancel_requested"].as_bool()),
        (200, Some(true)),
        "{record}"
    );
    let (_, events, _) = c
        .call(EVENTS, get(&app, &format!("/v1/runs/{slow}/events")))
        .await;
    let finished = events.as_array().unwrap().last().unwrap();
    assert_eq!(finished["status"], "cancelled", "{finished}");
    let record = poll(c, &app, &slow, ended).await;
    assert_eq!(record["status"], "cancelled", "{record}");
    let (status, _, _) = c.call(SESSION, delete()).await;
    assert_eq!(status, 204);
    let (status, _, _) = c.call(SESSION, delete()).await;
    assert_eq!(status, 404);

    // A run that goes on when its caller leaves; here the caller stays for its result.
    let (status, result, _) = c
        .call(
            "/v1/run",
            run(
                &app,
                &json!({"input": "stay", "workflow": "default", "on_disconnect": "continue"}),
            ),
        )
        .await;
    assert_eq!(
        (status, result["output"].as_str()),
        (200, Some("You said stay.")),
        "{result}"
    );

    gates::exercise(c, &app).await;

    // Nothing by those ids.
    for (path, request) in [
        (RUN, get(&app, "/v1/runs/run-nope")),
        (
            CANCEL,
            clients::http1().post(app.url("/v1/runs/run-nope:cancel")),
        ),
        (
            RESUME,
            clients::http1()
                .post(app.url("/v1/runs/run-nope:resume"))
                .header("content-type", "application/json")
                .body(r#"{"approve": ["a1"]}"#),
        ),
        (EVENTS, get(&app, "/v1/runs/run-nope/events")),
        (SESSION, get(&app, "/v1/sessions/nope")),
        (
            SESSION,
            clients::http1().delete(app.url("/v1/sessions/nope")),
        ),
        (
            "/v1/runs",
            submit(&app, &json!({"input": "x", "workflow": "nope"})),
        ),
    ] {
        let (status, error, _) = c.call(path, request).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }

    // A run and its actions share a route, but each form allows only its own methods.
    let http = clients::http1();
    for (request, allow) in [
        (http.post(app.url(&format!("/v1/runs/{id}"))), "GET,HEAD"),
        (http.delete(app.url(&format!("/v1/runs/{id}"))), "GET,HEAD"),
        (http.get(app.url(&format!("/v1/runs/{id}:cancel"))), "POST"),
        (
            http.delete(app.url(&format!("/v1/runs/{id}:cancel"))),
            "POST",
        ),
    ] {
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 405, "{}", r.url());
        assert_eq!(r.headers()["allow"], allow, "{}", r.url());
    }

    // Bad requests.
    let bad_submits = [
        json!({"input": "x", "workflow": "default", "stream": false}),
        json!({"input": "x", "workflow": "default", "on_disconnect": "continue"}),
        json!({"input": "x", "workflow": "default", "session_id": "no spaces"}),
        json!({"input": "x", "workflow": "default", "if_busy": "maybe"}),
        json!({"workflow": "default"}),
    ];
    for body in &bad_submits {
        let (status, error, _) = c.call("/v1/runs", submit(&app, body)).await;
        assert_eq!(status, 400, "{body}: {error}");
    }
    let long_key = "k".repeat(256);
    let (status, _, _) = c
        .call(
            "/v1/runs",
            submit(&app, &json!({"input": "x", "workflow": "default"}))
                .header("idempotency-key", long_key),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _, _) = c
        .call(
            "/v1/runs",
            clients::http1()
                .post(app.url("/v1/runs"))
                .header("content-type", "application/json")
                .body(json!({"input": "x".repeat(1024 * 1024 + 1)}).to_string()),
        )
        .await;
    assert_eq!(status, 413);
    for query in [
        "colour=red",
        "status=done",
        "page_size=0",
        "page_size=101",
        "page_size=x",
    ] {
        let (status, error, _) = c
            .call("/v1/runs", get(&app, &format!("/v1/runs?{query}")))
            .await;
        assert_eq!(status, 400, "{query}: {error}");
    }
    let (status, _, _) = c
        .call(EVENTS, get(&app, &url).header("last-event-id", "abc"))
        .await;
    assert_eq!(status, 400);
    let (status, _, _) = c.call(EVENTS, get(&app, &format!("{url}?after=-1"))).await;
    assert_eq!(status, 400);
    for body in [
        json!({"input": "x", "workflow": "default", "on_disconnect": "later"}),
        json!({"input": "x", "workflow": "default", "if_busy": "maybe"}),
        json!({"input": "x", "workflow": "default", "session_id": ".."}),
    ] {
        let (status, _, _) = c.call("/v1/run", run(&app, &body)).await;
        assert_eq!(status, 400, "{body}");
    }
}
