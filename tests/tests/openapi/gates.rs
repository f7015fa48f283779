//! Approval gates and push deliveries against the document, on the durable runs' instance
//! ([`crate::durable`]): a tool call paused for approval, bad resumes (400), a resume (200)
//! that completes the run, a second resume (409); pushes to `:execute`, acknowledged (204).

use e2e::TestApp;
use e2e::clients;
use serde_json::{Value, json};

use crate::contract::Contract;
use crate::durable::{ended, poll, submit, submitted};

const RESUME: &str = "/v1/runs/{id}:resume";
const EXECUTE: &str = "/v1/runs:execute";

pub(crate) async fn exercise(c: &mut Contract, app: &TestApp) {
    // A gated tool call pauses the run until it is approved; then it completes.
    let gated = submitted(
        c,
        submit(app, &json!({"workflow": "gated", "input": "gate this"})),
    )
    .await;
    let paused = poll(c, app, &gated, |r| {
        r["status"] != "submitted" && r["status"] != "running"
    })
    .await;
    assert_eq!(paused["status"], "input_required", "{paused}");
    let approval = paused["result"]["pending"][0]["approval_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resume = |body: Value| {
        clients::http1()
            .post(app.url(&format!("/v1/runs/{gated}:resume")))
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    for body in [
        json!({}),
        json!({"approve": ["nope"]}),
        json!({"approve": "all"}),
    ] {
        let (status, error, _) = c.call(RESUME, resume(body.clone())).await;
        assert_eq!(status, 400, "{body}: {error}");
    }
    let (status, record, _) = c.call(RESUME, resume(json!({"approve": [approval]}))).await;
    assert_eq!(status, 200, "{record}");
    let record = poll(c, app, &gated, ended).await;
    assert_eq!(record["status"], "completed", "{record}");
    assert_eq!(
        record["result"]["steps"][0]["tool_calls"][0]["name"], "echo",
        "{record}"
    );
    let (status, error, _) = c.call(RESUME, resume(json!({"approve": [approval]}))).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (409, Some("conflict")),
        "{error}"
    );

    // A push delivery: without RUNS_TOPIC nothing publishes one, but whatever arrives is
    // acknowledged (malformed, or naming no run this store knows).
    let push = |body: Value| {
        clients::http1()
            .post(app.url("/v1/runs:execute"))
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    let data = "eyJydW5faWQiOiAicnVuLW5vcGUifQ=="; // {"run_id": "run-nope"}
    for body in [
        json!({}),
        json!({"subscription": "projects/p/subscriptions/s",
               "message": {"data": data, "messageId": "1", "publishTime": "2026-12-07T17:14:16Z"}}),
    ] {
        let (status, _, _) = c.call(EXECUTE, push(body.clone())).await;
        assert_eq!(status, 204, "{body}");
    }
}
