//! `POST /v1/run` on the real orchestrate binary, against a loopback model server that speaks
//! the OpenAI chat completions streaming format (`e2e::model`): JSON and SSE runs, the event
//! contract, bad requests, budgets, deadlines, cancellation by disconnect and SIGTERM.

use std::time::Duration;

use e2e::model::{FakeModel, Reply};
use e2e::sse::SseReader;
use e2e::{DEFAULT_GRACE_PERIOD, EXIT_SLACK, TempDir, TestApp, WAIT_TIMEOUT, clients};
use serde_json::{Value, json};

/// A config with one react agent (no tools) on the fake model, then a logger.
fn config(dir: &TempDir, model: &FakeModel) -> String {
    let yaml = format!(
        "model_services:\n  - name: fake\n    provider: openai_compatible\n    model: fake-model\n    \
         config: {{address: {base}}}\n\
         agents:\n  - name: assistant\n    role: react\n    model: fake\n    prompt: Be brief.\n    \
         outputs: [{{target: log}}]\n  - name: log\n    role: logger\n    inputs: [{{source: assistant}}]\n",
        base = model.base()
    );
    let path = dir.path().join("orchestrate.yaml");
    std::fs::write(&path, yaml).unwrap();
    path.display().to_string()
}

fn spawn(dir: &TempDir, model: &FakeModel, extra: &[(&str, &str)]) -> TestApp {
    let path = config(dir, model);
    let mut envs = vec![("ORCHESTRATE_CONFIG", path.as_str())];
    envs.extend_from_slice(extra);
    tokio::task::block_in_place(|| TestApp::spawn("orchestrate", &envs))
}

async fn post_run(app: &TestApp, body: Value) -> (u16, Value) {
    let r = clients::http1()
        .post(app.url("/v1/run"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn stream_run(app: &TestApp, body: Value) -> reqwest::Response {
    let r = clients::http1()
        .post(app.url("/v1/run"))
        .header("accept", "text/event-stream")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_run_answers_with_its_output_steps_and_usage() {
    let model = FakeModel::openai(vec![Reply::text("Hello there")]);
    let dir = TempDir::new();
    let app = spawn(&dir, &model, &[]);
    let (status, result) = post_run(&app, json!({"input": "hi"})).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["status"], "completed", "{result}");
    assert_eq!(result["output"], "Hello there");
    let steps = result["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "react then logger: {result}");
    assert_eq!(steps[0]["agent"], "assistant");
    assert_eq!(steps[0]["model"], "fake-model");
    assert_eq!(steps[1]["role"], "logger");
    assert_eq!(result["usage"]["model_calls"], 1);
    assert_eq!(result["usage"]["input_tokens"], 12);
    assert!(result["run_id"].as_str().unwrap().starts_with("run-"));
    // What the model was sent: the prompt, the input, streaming with usage.
    let sent = &model.requests()[0];
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["stream_options"]["include_usage"], true);
    assert_eq!(sent["messages"][0]["role"], "system");
    assert_eq!(sent["messages"][1]["content"], "hi");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_run_sends_its_events_in_order_ending_with_run_finished() {
    let model = FakeModel::openai(vec![Reply::text("one two three")]);
    let dir = TempDir::new();
    let app = spawn(&dir, &model, &[]);
    let r = stream_run(&app, json!({"input": "count"})).await;
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    assert_eq!(r.headers()["cache-control"], "no-cache");
    assert_eq!(r.headers()["x-accel-buffering"], "no");
    let events = SseReader::new(r).all().await;
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names.first(), Some(&"run.started"), "{names:?}");
    assert_eq!(names.last(), Some(&"run.finished"), "{names:?}");
    assert_eq!(names[1], "agent.started");
    let deltas: String = events
        .iter()
        .filter(|e| e.event == "message.delta")
        .map(|e| e.data["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, "one two three");
    assert_eq!(names.iter().filter(|n| **n == "agent.finished").count(), 2);
    let ids: Vec<u64> = events
        .iter()
        .map(|e| e.id.as_deref().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let finished = &events.last().unwrap().data;
    assert_eq!(finished["status"], "completed");
    assert_eq!(finished["output"], "one two three");
    assert_eq!(finished["usage"]["model_calls"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_4xx_naming_the_problem() {
    let model = FakeModel::openai(vec![]);
    let dir = TempDir::new();
    let app = spawn(&dir, &model, &[]);
    let client = clients::http1();
    let r = client
        .post(app.url("/v1/run"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("not JSON"),
        "{body}"
    );
    for (request, status, says) in [
        (json!({}), 400, "input is required"),
        (json!({"input": 3}), 400, "input must be"),
        (
            json!({"input": "x", "workflow": "nope"}),
            404,
            "unknown workflow",
        ),
        (
            json!({"input": "x", "budget": {"model_calls": 100000}}),
            400,
            "above the configured",
        ),
        (json!({"input": "x", "extra": 1}), 400, "unknown field"),
    ] {
        let (got, body) = post_run(&app, request.clone()).await;
        assert_eq!(got, status, "{request}: {body}");
        assert_eq!(body["status"], status);
        assert!(
            body["error"].as_str().unwrap().contains(says),
            "{request}: {body}"
        );
    }
    assert!(
        model.requests().is_empty(),
        "no bad request reached the model"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_budget_ends_the_run_with_its_partial_output() {
    let model = FakeModel::openai(vec![Reply::text("a long answer that costs many tokens")]);
    let dir = TempDir::new();
    let app = spawn(&dir, &model, &[]);
    let (_, result) = post_run(&app, json!({"input": "x", "budget": {"output_tokens": 2}})).await;
    assert_eq!(result["status"], "budget_exhausted", "{result}");
    assert!(
        result["error"].as_str().unwrap().contains("output tokens"),
        "{result}"
    );
    assert_eq!(result["output"], "a long answer that costs many tokens");
    // The model was asked for no more than the budget allows.
    assert_eq!(model.requests()[0]["max_tokens"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_ends_a_run_with_partial_output_and_closes_the_model_stream() {
    let model = FakeModel::openai(vec![Reply::Endless(Duration::from_millis(20))]);
    let dir = TempDir::new();
    let app = spawn(&dir, &model, &[]);
    let (_, result) = post_run(&app, json!({"input": "x", "deadline_ms": 300})).await;
    assert_eq!(result["status"], "deadline", "{result}");
    assert!(
        result["output"].as_str().unwrap().starts_with("more "),
        "{result}"
    );
    wait_until(|| model.hung_up() == 1, "the model stream was never closed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_cancels_its_run() {
    let model = FakeModel::openai(vec![Reply::Endless(Duration::from_millis(20))]);
    let dir = TempDir::new();
    let app = spawn(&dir, &model, &[]);
    let mut reader = SseReader::new(stream_run(&app, json!({"input": "x"})).await);
    while let Some(e) = reader.next().await {
        if e.event == "message.delta" {
            break;
        }
    }
    drop(reader);
    wait_until(
        || model.hung_up() == 1,
        "the model stream outlived its client",
    )
    .await;
    let line = tokio::task::block_in_place(|| {
        app.wait_for_log("the run's end", |v| v["message"] == "run finished")
    });
    assert_eq!(line["status"], "cancelled", "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_a_streamed_run_with_run_finished_interrupted() {
    let model = FakeModel::openai(vec![Reply::Endless(Duration::from_millis(20))]);
    let dir = TempDir::new();
    let mut app = spawn(&dir, &model, &[]);
    let mut reader = SseReader::new(stream_run(&app, json!({"input": "x"})).await);
    while let Some(e) = reader.next().await {
        if e.event == "message.delta" {
            break;
        }
    }
    app.sigterm();
    let mut last = None;
    while let Some(e) = reader.next().await {
        last = Some(e);
    }
    let last = last.expect("events after SIGTERM");
    assert_eq!(last.event, "run.finished");
    assert_eq!(last.data["status"], "interrupted", "{:?}", last.data);
    assert!(last.data["output"].as_str().unwrap().starts_with("more "));
    let status = tokio::task::block_in_place(|| app.wait_exit(DEFAULT_GRACE_PERIOD + EXIT_SLACK));
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_lists_agents_and_models() {
    let model = FakeModel::openai(vec![]);
    let dir = TempDir::new();
    let app = spawn(&dir, &model, &[]);
    let body: Value = clients::http1()
        .get(app.url("/v1/workflows"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let agents = &body["workflows"][0]["agents"];
    assert_eq!(agents[0]["name"], "assistant", "{body}");
    assert_eq!(agents[0]["model"]["model"], "fake-model");
    assert_eq!(agents[1]["role"], "logger");
}

async fn wait_until(done: impl Fn() -> bool, what: &str) {
    let deadline = tokio::time::Instant::now() + WAIT_TIMEOUT;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_model_degrades_health_and_runs_get_503() {
    let dir = TempDir::new();
    let port = e2e::closed_port();
    let yaml = format!(
        "model_services:\n  - name: gone\n    provider: openai_compatible\n    model: m\n    \
         config: {{address: http://127.0.0.1:{port}/v1}}\n\
         agents:\n  - name: assistant\n    role: react\n    model: gone\n"
    );
    let path = dir.path().join("orchestrate.yaml");
    std::fs::write(&path, yaml).unwrap();
    let path = path.display().to_string();
    // Ready even so: one dependency's outage must not take every instance out of rotation.
    let app = tokio::task::block_in_place(|| {
        TestApp::spawn("orchestrate", &[("ORCHESTRATE_CONFIG", path.as_str())])
    });
    let health: Value = clients::http1()
        .get(app.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "degraded", "{health}");
    let check = &health["checks"]["model:gone"];
    assert_eq!(check["status"], "unhealthy", "{health}");
    let message = check["message"].as_str().unwrap();
    assert!(
        message.contains("model m") && message.contains(&port.to_string()),
        "{message}"
    );
    let (status, body) = post_run(&app, json!({"input": "x"})).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "unavailable");
    assert!(
        body["error"].as_str().unwrap().contains(&port.to_string()),
        "{body}"
    );
}

/// A react agent whose MCP server is `server_yaml` (one `mcp_servers` entry named `tools`).
fn spawn_with_tools(dir: &TempDir, model: &FakeModel, server_yaml: &str) -> TestApp {
    let yaml = format!(
        "mcp_servers:\n{server_yaml}\
         model_services:\n  - name: fake\n    provider: openai_compatible\n    model: fake-model\n    \
         config: {{address: {base}}}\n\
         agents:\n  - name: assistant\n    role: react\n    model: fake\n    mcp_servers: [tools]\n",
        base = model.base()
    );
    let path = dir.path().join("orchestrate.yaml");
    std::fs::write(&path, yaml).unwrap();
    let path = path.display().to_string();
    tokio::task::block_in_place(|| {
        TestApp::spawn("orchestrate", &[("ORCHESTRATE_CONFIG", path.as_str())])
    })
}

async fn two_calls_then_an_answer(app: &TestApp, model: &FakeModel) {
    let (_, result) = post_run(app, json!({"input": "echo hi"})).await;
    assert_eq!(result["status"], "completed", "{result}");
    assert_eq!(result["output"], "done");
    let calls = result["steps"][0]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2, "{result}");
    assert_eq!(calls[0]["name"], "echo");
    assert!(
        calls[0]["result"].as_str().unwrap().contains("hi"),
        "{result}"
    );
    // A tool the model made up goes back to it as a tool error, not a failed run.
    assert!(
        calls[1]["error"].as_str().unwrap().contains("unknown tool"),
        "{result}"
    );
    assert_eq!(result["usage"]["tool_calls"], 2);
    // The model saw the tools, then both results, in its own order.
    let first = &model.requests()[0];
    assert!(
        first["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["function"]["name"] == "echo")
    );
    let second = &model.requests()[1]["messages"];
    let tool_messages: Vec<&Value> = second
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .collect();
    assert_eq!(tool_messages.len(), 2, "{second}");
    assert_eq!(tool_messages[0]["tool_call_id"], "call_0");
    assert_eq!(tool_messages[1]["tool_call_id"], "call_1");
}

fn script() -> Vec<Reply> {
    vec![
        Reply::ToolCalls(
            vec![
                ("echo".into(), json!({"text": "hi"}).to_string()),
                ("nope".into(), "{}".into()),
            ],
            (20, 8),
        ),
        Reply::text("done"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_react_run_calls_tools_over_grpc_and_feeds_a_wrong_call_back() {
    let tools = tokio::task::block_in_place(|| TestApp::spawn("mcp-tool", &[]));
    let model = FakeModel::openai(script());
    let dir = TempDir::new();
    let server = format!(
        "  - name: tools\n    transport: grpc\n    address: http://{}\n",
        tools.addr
    );
    let app = spawn_with_tools(&dir, &model, &server);
    two_calls_then_an_answer(&app, &model).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_react_run_calls_tools_over_streamable_http() {
    let tools = tokio::task::block_in_place(|| TestApp::spawn("mcp-tool", &[]));
    let model = FakeModel::openai(script());
    let dir = TempDir::new();
    let server = format!(
        "  - name: tools\n    transport: http\n    url: http://{}/mcp\n",
        tools.addr
    );
    let app = spawn_with_tools(&dir, &model, &server);
    two_calls_then_an_answer(&app, &model).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_react_run_calls_local_tools_in_process() {
    let model = FakeModel::openai(script());
    let dir = TempDir::new();
    let app = spawn_with_tools(&dir, &model, "  - name: tools\n    transport: local\n");
    two_calls_then_an_answer(&app, &model).await;
}
