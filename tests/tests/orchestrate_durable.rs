//! Durable runs end to end: the real orchestrate binary on the real Firestore and Pub/Sub
//! emulators (`scripts/emulators.sh`), with a loopback model (`e2e::model`) and a loopback MCP
//! server that counts tool calls by idempotency key (`e2e::fake_mcp`). Background runs go
//! through a real push subscription to `POST /v1/runs:execute`; two processes share one
//! Firestore to follow, cancel and resume each other's runs; one is killed with SIGKILL mid-run
//! and a new one on the same port finishes the run from Pub/Sub's redelivery. Each test has
//! its own topic, subscription and session names.
//!
//! Without the emulators' variables every test fails naming the command (they are `#[ignore]`d
//! by default; `.ci/run` runs them with `--include-ignored`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use e2e::fake_mcp::{FakeMcp, FakeTool};
use e2e::model::{FakeModel, Reply, Responder};
use e2e::orchestrate::{openai_service, react_yaml};
use e2e::sse::{SseEvent, SseReader};
use e2e::{TempDir, TestApp, clients};
use serde_json::{Value, json};

use e2e::orchestrate::{NEEDS_EMULATORS as NEEDS, emulator_vars as emulators};

/// The store every instance here uses (the variables below point it at the emulator).
const STORE: &str = "firestore";

/// A name no other test, here or in an earlier run against the same emulators, uses.
fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}-{nanos}-{}", COUNT.fetch_add(1, Ordering::Relaxed))
}

fn env_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is unset; this test {NEEDS}"))
}

/// A Pub/Sub topic of the test's own with a push subscription to `POST /v1/runs:execute` on
/// `127.0.0.1:port` (ack deadline 10 s, the least Pub/Sub takes), made through the emulator's
/// REST API.
struct PushQueue {
    topic: String,
    subscription: String,
}

impl PushQueue {
    async fn to_port(port: u16) -> Self {
        let (topic, subscription) = (unique("runs"), unique("runs-push"));
        let project = env_var("GOOGLE_CLOUD_PROJECT");
        pubsub_admin(
            "PUT",
            &format!("projects/{project}/topics/{topic}"),
            json!({}),
        )
        .await;
        pubsub_admin(
            "PUT",
            &format!("projects/{project}/subscriptions/{subscription}"),
            json!({
                "topic": format!("projects/{project}/topics/{topic}"),
                "pushConfig": {"pushEndpoint": format!("http://127.0.0.1:{port}/v1/runs:execute")},
                "ackDeadlineSeconds": 10,
            }),
        )
        .await;
        Self {
            topic,
            subscription,
        }
    }

    /// Publishes `data` (raw bytes) to the topic, as any publisher could.
    async fn publish_raw(&self, data: &[u8], attributes: Value) {
        use base64::Engine as _;
        let project = env_var("GOOGLE_CLOUD_PROJECT");
        let data = base64::engine::general_purpose::STANDARD.encode(data);
        pubsub_admin(
            "POST",
            &format!("projects/{project}/topics/{}:publish", self.topic),
            json!({"messages": [{"data": data, "attributes": attributes}]}),
        )
        .await;
    }

    /// Deletes the subscription and the topic (messages left would be pushed for ever).
    async fn delete(self) {
        let project = env_var("GOOGLE_CLOUD_PROJECT");
        let sub = format!("projects/{project}/subscriptions/{}", self.subscription);
        pubsub_admin("DELETE", &sub, Value::Null).await;
        let topic = format!("projects/{project}/topics/{}", self.topic);
        pubsub_admin("DELETE", &topic, Value::Null).await;
    }
}

/// `METHOD http://$PUBSUB_EMULATOR_HOST/v1/{path}`, which must succeed.
async fn pubsub_admin(method: &str, path: &str, body: Value) {
    let url = format!("http://{}/v1/{path}", env_var("PUBSUB_EMULATOR_HOST"));
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = clients::http1().request(method.clone(), &url);
    if !body.is_null() {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "{method} {path}: {status} {text}");
}

/// An orchestrate process on the store (and `extra`), with `yaml` in `dir`.
fn instance(dir: &TempDir, yaml: &str, extra: &[(&str, &str)]) -> TestApp {
    let mut vars = emulators();
    vars.push(("RUN_STORE".into(), STORE.into()));
    let mut pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    pairs.extend_from_slice(extra);
    e2e::orchestrate::spawn(dir, yaml, &pairs)
}

/// A react agent on `model` with the MCP server `mcp`, and `agent_extra` in its entry.
fn agent_yaml(model: &FakeModel, mcp: Option<&FakeMcp>, agent_extra: &str) -> String {
    let server = mcp.map(FakeMcp::server_yaml);
    react_yaml(&openai_service(model), server.as_deref(), agent_extra)
}

/// A model whose reply is picked by how many tool results the request carries: the agent's
/// `n`th turn of the run gets `turns[n]` (a turn asked again after a resume gets the same
/// reply). Each answer is held back `latency` first.
fn by_turn(turns: Vec<Reply>, latency: Duration) -> FakeModel {
    FakeModel::openai_responder(
        Responder::new(move |request| {
            let done = tool_results(request).len();
            turns.get(done).cloned().unwrap_or_else(|| {
                Reply::Error(500, format!("no turn {done} scripted"), Vec::new())
            })
        })
        .latency(latency),
    )
}

/// A call of tool `name` with `{"n": n}`, under an id of its own in the run (as OpenAI gives
/// each call).
fn tool_call(name: &str, n: u64) -> Reply {
    Reply::call_with_id(&format!("call_{name}_{n}"), name, json!({"n": n}))
}

/// The tool messages of a chat request.
fn tool_results(request: &Value) -> Vec<String> {
    request["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter(|m| m["role"] == "tool")
                .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `POST /v1/runs` with `headers`: (status, body, Location).
async fn submit(app: &TestApp, body: Value, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = clients::http1().post(app.url("/v1/runs")).json(&body);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    if status == 202 {
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            location,
            format!("/v1/runs/{}", body["run_id"].as_str().unwrap())
        );
        return (status, body);
    }
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Submits `body` and returns the run's id (asserting the 202).
async fn start(app: &TestApp, body: Value) -> String {
    let (status, answer) = submit(app, body, &[]).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "submitted", "{answer}");
    answer["run_id"].as_str().unwrap().to_owned()
}

/// `METHOD path` with a JSON body or none: (status, body).
async fn call(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = clients::http1().request(method, app.url(path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get_run(app: &TestApp, id: &str) -> Value {
    let (status, body) = call(app, "GET", &format!("/v1/runs/{id}"), None).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Polls run `id` on `app` until its status is one of `statuses`, within `within`.
async fn wait_status(app: &TestApp, id: &str, statuses: &[&str], within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let run = get_run(app, id).await;
        if statuses.iter().any(|s| run["status"] == *s) {
            return run;
        }
        assert!(
            Instant::now() < deadline,
            "run {id} not {statuses:?} within {within:?}: {run}\nlogs:\n{}",
            app.logs().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET /v1/runs/{id}/events` on `app`, after `last_event_id`.
async fn follow(app: &TestApp, id: &str, last_event_id: Option<&str>) -> SseReader {
    let mut request = clients::http1().get(app.url(&format!("/v1/runs/{id}/events")));
    if let Some(last) = last_event_id {
        request = request.header("last-event-id", last);
    }
    let r = request.send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    SseReader::new(r)
}

/// Checks that `events` are run `id`'s whole stream: `seq` from 0 without a gap or a repeat,
/// equal to the SSE id, one `run.started` first and one `run.finished` last. Returns the
/// finished summary.
fn whole_stream(id: &str, events: &[SseEvent]) -> Value {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.data["run_id"], id, "{:?}", e.data);
        assert_eq!(e.data["seq"], i as u64, "seq {i}: {events:#?}");
        assert_eq!(e.id.as_deref(), Some(i.to_string().as_str()));
        assert_eq!(e.data["type"], e.event.as_str());
    }
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names.first(), Some(&"run.started"), "{names:?}");
    assert_eq!(names.last(), Some(&"run.finished"), "{names:?}");
    assert_eq!(names.iter().filter(|n| **n == "run.started").count(), 1);
    assert_eq!(names.iter().filter(|n| **n == "run.finished").count(), 1);
    events.last().unwrap().data.clone()
}

/// How many times each idempotency key reached the MCP server.
fn calls_by_key(mcp: &FakeMcp) -> BTreeMap<String, usize> {
    let mut by_key = BTreeMap::new();
    for c in mcp.calls() {
        let key = c
            .key
            .clone()
            .unwrap_or_else(|| panic!("a tools/call without an idempotency key: {c:?}"));
        *by_key.entry(key).or_insert(0) += 1;
    }
    by_key
}

/// Sends SIGKILL and waits for the process to be gone.
fn sigkill(app: &mut TestApp) {
    let status = std::process::Command::new("kill")
        .args(["-KILL", &app.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    app.wait_exit(Duration::from_secs(10));
}

#[path = "orchestrate_durable/background.rs"]
mod background;
#[path = "orchestrate_durable/bad_input.rs"]
mod bad_input;
#[path = "orchestrate_durable/crash.rs"]
mod crash;
#[path = "orchestrate_durable/instances.rs"]
mod instances;
#[path = "orchestrate_durable/sessions.rs"]
mod sessions;
