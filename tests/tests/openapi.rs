//! orchestrate's OpenAPI document (`GET /openapi.json`) kept true against the real binary:
//! every request shape it documents is sent (JSON and streamed runs of a classifier, a react
//! agent with a tool and a supervisor with a worker, every run field, the `grpc-timeout` header,
//! each refusal: bad bodies, an unknown workflow, a body too large, a foreign origin, a missing
//! credential, an unreachable model; the workflows, the console on and off, health, metrics),
//! and each answer must have a status and content type the document lists for it and a body
//! that matches its schema; each server-sent event must match `RunEvent` and carry its
//! `event:` name as `type`. Durable runs ([`durable`]) are exercised on an instance of their
//! own. Every documented route must be exercised.

#[path = "openapi/contract.rs"]
mod contract;
#[path = "openapi/durable.rs"]
mod durable;
#[path = "openapi/gates.rs"]
mod gates;

use std::collections::BTreeSet;

use contract::Contract;
use e2e::model::{FakeModel, Reply};
use e2e::orchestrate::{self, openai_service};
use e2e::{TempDir, TestApp, clients, closed_port};
use serde_json::{Value, json};

const KEY: &str = "test-key-1";

/// A classifier routing to a react agent with the echo tool or to a chatter, a supervisor with
/// a helper as its worker, and a react agent alone.
fn config(model_service: &str) -> String {
    format!(
        "mcp_servers:
  - name: tools
    transport: local
    tools: [echo]
model_services:
{model_service}agents:
  - name: router
    role: classifier
    model: fake
    classifier_config:
      categories:
        - {{name: tools, description: Repeating things, keywords: [echo]}}
        - {{name: chat, keywords: [hello]}}
      keywords_first: true
      fallback: chat
    outputs:
      - {{target: assistant, when: tools}}
      - {{target: chatter, when: chat}}
  - name: assistant
    role: react
    model: fake
    prompt: Use the echo tool.
    mcp_servers: [tools]
  - name: chatter
    role: react
    model: fake
    prompt: Chat briefly.
  - name: solo
    role: react
    model: fake
    prompt: Answer briefly.
  - name: helper
    role: react
    model: fake
    prompt: Help.
  - name: lead
    role: supervisor
    model: fake
    workers: [helper]
    max_rounds: 3
workflows:
  - {{name: routed, description: A classifier and two specialists, agents: [router, assistant, chatter]}}
  - {{name: team, agents: [lead]}}
  - {{name: plain, agents: [solo]}}
"
    )
}

fn post(app: &TestApp, body: impl Into<reqwest::Body>) -> reqwest::RequestBuilder {
    clients::http1()
        .post(app.url("/v1/run"))
        .header("content-type", "application/json")
        .body(body)
}

fn get(app: &TestApp, path: &str) -> reqwest::RequestBuilder {
    clients::http1().get(app.url(path))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_request_shape_gets_a_documented_answer() {
    let model = FakeModel::openai(vec![
        // 1. routed, JSON: a tool call, then the answer.
        Reply::call("echo", json!({"text": "this"})),
        Reply::text("It said this."),
        // 2. routed, streamed by Accept.
        Reply::call("echo", json!({"text": "that"})),
        Reply::text("It said that."),
        // 3. team, streamed by the body: a delegation, the worker, the answer.
        Reply::text(r#"{"action": "delegate", "worker": "helper", "task": "say hi"}"#),
        Reply::text("hi"),
        Reply::text(r#"{"action": "finish", "answer": "They said hi."}"#),
        // 4. plain, every field.
        Reply::text("Fine."),
        // 5. plain, deadline_ms 0 (may end before asking the model).
        Reply::text("Late."),
    ]);
    let dir = TempDir::new();
    let app = orchestrate::spawn(&dir, &config(&openai_service(&model)), &[]);

    let (status, doc, _) = {
        let r = get(&app, "/openapi.json").send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap(), ())
    };
    assert_eq!(status, 200);
    let mut c = Contract::new(doc);
    c.call("/openapi.json", get(&app, "/openapi.json")).await;

    // The workflows, as graphs.
    let (_, workflows, _) = c.call("/v1/workflows", get(&app, "/v1/workflows")).await;
    let routed = &workflows["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "routed")
        .unwrap();
    assert_eq!(routed["entries"], json!(["router"]));
    assert_eq!(routed["edges"][0]["when"], "tools");
    let team = workflows["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "team")
        .unwrap();
    assert_eq!(team["workers"][0]["name"], "helper", "{team}");

    // 1. A JSON run through a keyword route and a tool call.
    let (status, result, _) = c
        .call(
            "/v1/run",
            post(
                &app,
                json!({"workflow": "routed", "input": "please echo this"}).to_string(),
            ),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(result["status"], "completed", "{result}");
    assert_eq!(result["steps"][0]["decisions"][0]["kind"], "route");
    assert_eq!(result["steps"][1]["tool_calls"][0]["name"], "echo");

    // 2. The same, streamed because of Accept.
    let (_, events, headers) = c
        .call(
            "/v1/run",
            post(
                &app,
                json!({"workflow": "routed", "input": "echo that"}).to_string(),
            )
            .header("accept", "text/event-stream"),
        )
        .await;
    assert_eq!(headers["cache-control"], "no-cache");
    let types: BTreeSet<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    for t in [
        "run.started",
        "agent.started",
        "agent.decided",
        "model.call",
        "tool.call",
        "tool.result",
        "message.delta",
        "agent.finished",
        "run.finished",
    ] {
        assert!(types.contains(t), "no {t} in {types:?}");
    }

    // 3. A supervisor's run, streamed because of the body: the worker's step is a child.
    let (_, events, _) = c
        .call(
            "/v1/run",
            post(
                &app,
                json!({"workflow": "team", "input": "greet", "stream": true}).to_string(),
            ),
        )
        .await;
    let finished = events.as_array().unwrap().last().unwrap();
    assert_eq!(finished["status"], "completed", "{finished}");
    assert!(
        finished["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["parent_step_id"].is_string()),
        "{finished}"
    );

    // 4. Every field, an object input and the caller's grpc-timeout.
    let every = json!({
        "workflow": "plain",
        "input": {"question": "how are you?"},
        "metadata": {"from": "the OpenAPI test"},
        "budget": {"wall_time_ms": 60000, "input_tokens": 10000, "output_tokens": 1000,
                   "model_calls": 5, "tool_calls": 5},
        "deadline_ms": 60000,
        "stream": null,
    });
    let (status, result, _) = c
        .call(
            "/v1/run",
            post(&app, every.to_string()).header("grpc-timeout", "30S"),
        )
        .await;
    assert_eq!(
        (status, result["status"].as_str()),
        (200, Some("completed")),
        "{result}"
    );

    // 5. A run out of time at once, JSON although Accept asks for a stream.
    let (status, result, _) = c
        .call(
            "/v1/run",
            post(
                &app,
                json!({"workflow": "plain", "input": "x", "deadline_ms": 0, "stream": false})
                    .to_string(),
            )
            .header("accept", "text/event-stream"),
        )
        .await;
    assert_eq!(status, 200, "{result}");

    // Refusals, each in the common error body.
    for (body, code) in [
        ("not json".to_owned(), 400),
        ("[1]".to_owned(), 400),
        (json!({}).to_string(), 400),
        (json!({"input": 1}).to_string(), 400),
        (json!({"input": "x", "colour": "red"}).to_string(), 400),
        (json!({"input": "x", "workflow": 7}).to_string(), 400),
        (json!({"input": "x", "metadata": []}).to_string(), 400),
        (json!({"input": "x", "stream": "yes"}).to_string(), 400),
        (json!({"input": "x", "deadline_ms": -1}).to_string(), 400),
        (
            json!({"input": "x", "workflow": "plain", "budget": {"model_calls": 1000}}).to_string(),
            400,
        ),
        (
            json!({"input": "x", "workflow": "plain", "budget": {"minutes": 1}}).to_string(),
            400,
        ),
        (json!({"input": "x"}).to_string(), 400), // three workflows, none named default
        (json!({"input": "x", "workflow": "nope"}).to_string(), 404),
        // Asked for as a stream: a stream of one run.finished, or the JSON error.
        (
            json!({"input": "x", "workflow": "nope", "stream": true}).to_string(),
            404,
        ),
        (
            json!({"input": "x".repeat(1024 * 1024 + 1), "workflow": "plain"}).to_string(),
            413,
        ),
    ] {
        let (status, error, _) = c.call("/v1/run", post(&app, body.clone())).await;
        assert_eq!(status, code, "{}: {error}", &body[..body.len().min(80)]);
        match error.as_array() {
            Some(events) => assert_eq!(events[0]["status"], "failed", "{error}"),
            None => assert_eq!(error["status"], code),
        }
    }
    let (status, _, _) = c
        .call(
            "/v1/run",
            post(&app, json!({"input": "x", "workflow": "plain"}).to_string())
                .header("grpc-timeout", "soon"),
        )
        .await;
    assert_eq!(status, 400);
    let (status, error, _) = c
        .call(
            "/v1/workflows",
            get(&app, "/v1/workflows").header("origin", "http://evil.example"),
        )
        .await;
    assert_eq!((status, error["code"].as_str()), (403, Some("forbidden")));

    // The console (on by default off the platform), health and metrics.
    let (status, page, headers) = c.call("/ui", get(&app, "/ui")).await;
    assert_eq!(status, 200);
    assert!(page.as_str().unwrap().contains("/ui/app.js"));
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    for asset in ["/ui/app.js", "/ui/app.css"] {
        let r = get(&app, asset).send().await.unwrap();
        assert_eq!(r.status(), 200, "{asset}");
    }
    let (_, health, _) = c.call("/health", get(&app, "/health")).await;
    assert!(health["checks"]["model:fake"].is_object(), "{health}");
    c.call("/health/live", get(&app, "/health/live")).await;
    c.call("/health/ready", get(&app, "/health/ready")).await;
    let (_, metrics, _) = c.call("/metrics", get(&app, "/metrics")).await;
    assert!(metrics.as_str().unwrap().contains("orchestrate_"));

    // An instance whose model does not answer, behind an API key, without the console.
    let dead = format!(
        "  - name: fake\n    provider: openai_compatible\n    model: fake-model\n    \
         config:\n      address: http://127.0.0.1:{}/v1\n",
        closed_port()
    );
    let dir2 = TempDir::new();
    let locked = orchestrate::spawn(
        &dir2,
        &config(&dead),
        &[
            ("AUTH_MODE", "api-key"),
            ("AUTH_API_KEYS", KEY),
            ("DEV_UI", "false"),
        ],
    );
    let (status, _, headers) = c.call("/v1/workflows", get(&locked, "/v1/workflows")).await;
    assert_eq!(status, 401);
    assert!(headers.contains_key("www-authenticate"));
    let (status, error, headers) = c
        .call(
            "/v1/run",
            post(
                &locked,
                json!({"input": "x", "workflow": "plain"}).to_string(),
            )
            .header("x-api-key", KEY),
        )
        .await;
    assert_eq!(status, 503, "{error}");
    assert!(headers.contains_key("retry-after"));
    let (status, error, headers) = c
        .call(
            "/v1/runs",
            clients::http1()
                .post(locked.url("/v1/runs"))
                .header("x-api-key", KEY)
                .json(&json!({"input": "x", "workflow": "plain"})),
        )
        .await;
    assert_eq!(status, 503, "{error}");
    assert!(headers.contains_key("retry-after"));
    for (path, url) in [
        ("/v1/runs", "/v1/runs"),
        ("/v1/runs/{id}", "/v1/runs/run-1"),
        ("/v1/runs/{id}/events", "/v1/runs/run-1/events"),
        ("/v1/sessions/{id}", "/v1/sessions/s-1"),
    ] {
        let (status, _, _) = c.call(path, get(&locked, url)).await;
        assert_eq!(status, 401, "{url}");
    }
    let (status, _, _) = c
        .call("/ui", get(&locked, "/ui").header("x-api-key", KEY))
        .await;
    assert_eq!(status, 404);
    let (status, health, _) = c.call("/health", get(&locked, "/health")).await;
    assert_eq!(
        (status, health["status"].as_str()),
        (200, Some("degraded")),
        "{health}"
    );

    durable::exercise(&mut c).await;

    c.assert_every_route_exercised();
}
