//! `POST /v1/run` on the real orchestrate binary, against a loopback model server that speaks
//! the OpenAI chat completions streaming format (`e2e::model`): JSON and SSE runs, the event
//! contract, bad requests, budgets, deadlines, cancellation by disconnect and SIGTERM; tools on
//! the real mcp-tool (gRPC, Streamable HTTP, in process) and on the official Python SDK's
//! legacy-only server, concurrent calls, and calls cancelled with their run.

use std::time::Duration;

use e2e::mcp::config_file;
use e2e::model::{FakeModel, Reply};
use e2e::orchestrate::{self, openai_service, post_run, react_yaml, stream_run, wait_until};
use e2e::python::PythonServer;
use e2e::sse::SseReader;
use e2e::upstream::Upstream;
use e2e::{DEFAULT_GRACE_PERIOD, EXIT_SLACK, STARTUP_TIMEOUT, TempDir, TestApp, clients, metrics};
use serde_json::{Value, json};

/// One react agent (no tools) on the fake model, then a logger.
fn spawn(dir: &TempDir, model: &FakeModel, extra: &[(&str, &str)]) -> TestApp {
    let yaml = react_yaml(
        &openai_service(model),
        None,
        "    prompt: Be brief.\n    outputs: [{target: log}]\n  - name: log\n    role: logger\n    \
         inputs: [{source: assistant}]\n",
    );
    orchestrate::spawn(dir, &yaml, extra)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_model_degrades_health_and_runs_get_503() {
    let dir = TempDir::new();
    let port = e2e::closed_port();
    let yaml = format!(
        "model_services:\n  - name: gone\n    provider: openai_compatible\n    model: m\n    \
         config: {{address: http://127.0.0.1:{port}/v1}}\n\
         agents:\n  - name: assistant\n    role: react\n    model: gone\n"
    );
    // Ready even so: one dependency's outage must not take every instance out of rotation.
    let app = orchestrate::spawn(&dir, &yaml, &[]);
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
    let yaml = react_yaml(&openai_service(model), Some(server_yaml), "");
    orchestrate::spawn(dir, &yaml, &[])
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

/// mcp-tool whose `get_weather` waits on `upstream` (which never answers).
fn hanging_weather_tools(upstream: &Upstream, dir: &TempDir) -> TestApp {
    let yaml = format!(
        "tools:\n  weather:\n    geocoding_url: {base}\n    forecast_url: {base}\n",
        base = upstream.base()
    );
    let path = config_file(dir, &yaml);
    tokio::task::block_in_place(|| {
        TestApp::spawn("mcp-tool", &[("MCP_TOOL_CONFIG", path.as_str())])
    })
}

fn weather_calls(cities: &[&str]) -> Reply {
    let calls = cities
        .iter()
        .map(|c| ("get_weather".to_owned(), json!({"location": c}).to_string()))
        .collect();
    Reply::ToolCalls(calls, (20, 8))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tool_calls_in_one_turn_run_at_once_and_the_deadline_cancels_both() {
    let upstream = Upstream::hanging();
    let tools_dir = TempDir::new();
    let tools = hanging_weather_tools(&upstream, &tools_dir);
    let model = FakeModel::openai(vec![weather_calls(&["Berlin", "Paris"])]);
    let dir = TempDir::new();
    let server = format!(
        "  - name: tools\n    transport: grpc\n    address: http://{}\n",
        tools.addr
    );
    let app = spawn_with_tools(&dir, &model, &server);
    // Both calls reach the upstream while neither has an answer: they run at the same time.
    let ((_, result), ()) = tokio::join!(
        post_run(&app, json!({"input": "weather?", "deadline_ms": 3000})),
        wait_until(
            || upstream.heads().len() == 2,
            "the two calls never ran at once"
        ),
    );
    assert_eq!(result["status"], "deadline", "{result}");
    let calls = result["steps"][0]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2, "{result}");
    for call in calls {
        assert!(
            call["error"]
                .as_str()
                .unwrap()
                .starts_with("cancelled: the run's time ran out"),
            "{call}"
        );
    }
    // The run's end cancelled both calls: mcp-tool dropped them and closed its upstream calls.
    wait_until(
        || upstream.hung_up() == 2,
        "the tool calls outlived the run",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_cancels_its_tool_calls_over_grpc_and_http() {
    let upstream = Upstream::hanging();
    let tools_dir = TempDir::new();
    let tools = hanging_weather_tools(&upstream, &tools_dir);
    for (n, server) in [
        format!(
            "  - name: tools\n    transport: grpc\n    address: http://{}\n",
            tools.addr
        ),
        format!(
            "  - name: tools\n    transport: http\n    url: http://{}/mcp\n",
            tools.addr
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let model = FakeModel::openai(vec![weather_calls(&["Berlin"])]);
        let dir = TempDir::new();
        let app = spawn_with_tools(&dir, &model, &server);
        let mut reader = SseReader::new(stream_run(&app, json!({"input": "weather?"})).await);
        while let Some(e) = reader.next().await {
            if e.event == "tool.call" {
                break;
            }
        }
        wait_until(
            || upstream.heads().len() == n + 1,
            "the tool call never started",
        )
        .await;
        drop(reader);
        wait_until(
            || upstream.hung_up() == n + 1,
            &format!("the tool call outlived its client ({server})"),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Python peers: run scripts/test-peers.sh"]
async fn a_legacy_only_server_gets_calls_and_notifications_cancelled() {
    // The official Python SDK's server: 2025-11-25 only, so the client falls back to initialize.
    let dir = TempDir::new();
    let cancelled = dir.path().join("cancelled.txt");
    let cancelled_path = cancelled.display().to_string();
    let Some(python) = tokio::task::block_in_place(|| {
        PythonServer::start(
            "legacy_mcp_server.py",
            &[("CANCELLED_FILE", cancelled_path.as_str())],
            STARTUP_TIMEOUT,
        )
    }) else {
        return;
    };
    let server = format!(
        "  - name: tools\n    transport: http\n    url: http://{}/mcp\n",
        python.addr
    );
    let model = FakeModel::openai(vec![
        Reply::call("echo", json!({"text": "hi"})),
        Reply::text("done"),
        Reply::call("wait", json!({"seconds": 60})),
    ]);
    let app = spawn_with_tools(&dir, &model, &server);
    let (_, result) = post_run(&app, json!({"input": "echo hi"})).await;
    assert_eq!(result["status"], "completed", "{result}");
    let call = &result["steps"][0]["tool_calls"][0];
    assert_eq!(call["result"], "hi", "{result}");

    // A client that goes away mid-call: the legacy server is told with notifications/cancelled.
    let mut reader = SseReader::new(stream_run(&app, json!({"input": "wait"})).await);
    while let Some(e) = reader.next().await {
        if e.event == "tool.call" {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // let the call reach the server
    drop(reader);
    wait_until(
        || std::fs::read_to_string(&cancelled).is_ok_and(|t| t.starts_with("cancelled")),
        "the legacy server never saw notifications/cancelled",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_a_json_run_as_interrupted_with_its_partial_output() {
    let model = FakeModel::openai(vec![Reply::Endless(Duration::from_millis(20))]);
    let dir = TempDir::new();
    let mut app = spawn(&dir, &model, &[]);
    let run = post_run(&app, json!({"input": "x"}));
    let signal = async {
        wait_until(
            || !model.requests().is_empty(),
            "the run never reached the model",
        )
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        app.sigterm();
    };
    let ((status, result), ()) = tokio::join!(run, signal);
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["status"], "interrupted", "{result}");
    assert!(
        result["output"].as_str().unwrap().starts_with("more "),
        "{result}"
    );
    let exit = tokio::task::block_in_place(|| app.wait_exit(DEFAULT_GRACE_PERIOD + EXIT_SLACK));
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_timeout_header_lowers_the_run_deadline() {
    let model = FakeModel::openai(vec![Reply::Endless(Duration::from_millis(20))]);
    let dir = TempDir::new();
    let app = spawn(&dir, &model, &[]);
    let r = clients::http1()
        .post(app.url("/v1/run"))
        .header("grpc-timeout", "300m")
        .json(&json!({"input": "x"}))
        .send()
        .await
        .unwrap();
    let result: Value = r.json().await.unwrap();
    assert_eq!(result["status"], "deadline", "{result}");
    wait_until(|| model.hung_up() == 1, "the model stream was never closed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_counted_in_metrics_and_logged_by_id_without_payloads() {
    let model = FakeModel::openai(vec![
        Reply::ToolCalls(
            vec![
                ("echo".into(), json!({"text": "zebra-argument"}).to_string()),
                ("nope".into(), "{}".into()),
            ],
            (20, 8),
        ),
        Reply::text("zebra-output"),
    ]);
    let dir = TempDir::new();
    let app = spawn_with_tools(&dir, &model, "  - name: tools\n    transport: local\n");
    let (_, result) = post_run(&app, json!({"input": "zebra-input"})).await;
    assert_eq!(result["status"], "completed", "{result}");
    let run_id = result["run_id"].as_str().unwrap();

    let text = clients::http1()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics::promtool_check(&text);
    let s = metrics::parse(&text);
    let get = |name: &str, labels: &[(&str, &str)]| {
        metrics::value(&s, name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
    };
    // The seed's agent series.
    let agent = [("agent", "assistant")];
    assert_eq!(
        get("aixgo_agent_messages_total", &[agent[0], ("type", "input")]),
        1.0
    );
    assert_eq!(
        get(
            "aixgo_agent_messages_total",
            &[agent[0], ("type", "output")]
        ),
        1.0
    );
    assert_eq!(
        get("aixgo_agent_execution_duration_seconds_count", &agent),
        1.0
    );
    assert_eq!(
        get(
            "aixgo_orchestrate_runs_total",
            &[("workflow", "default"), ("status", "completed")]
        ),
        1.0
    );
    // Model calls and tokens by provider and model (OpenTelemetry GenAI names).
    let model_labels = [
        ("gen_ai_provider_name", "openai_compatible"),
        ("gen_ai_request_model", "fake-model"),
    ];
    assert_eq!(
        get(
            "aixgo_model_calls_total",
            &[model_labels[0], model_labels[1], ("status", "ok")]
        ),
        2.0
    );
    assert_eq!(
        get(
            "gen_ai_client_operation_duration_seconds_count",
            &[model_labels[0], model_labels[1], ("status", "ok")]
        ),
        2.0
    );
    let tokens = |kind| {
        [
            model_labels[0],
            model_labels[1],
            ("gen_ai_token_type", kind),
        ]
    };
    assert_eq!(get("gen_ai_client_token_usage_sum", &tokens("input")), 32.0);
    assert_eq!(
        get("gen_ai_client_token_usage_count", &tokens("output")),
        2.0
    );
    // Tool calls by server, tool and outcome.
    assert_eq!(
        get(
            "aixgo_orchestrate_tool_calls_total",
            &[("server", "tools"), ("tool", "echo"), ("status", "success")]
        ),
        1.0
    );
    assert_eq!(
        get(
            "aixgo_orchestrate_tool_calls_total",
            &[("server", "unknown"), ("tool", "nope"), ("status", "error")]
        ),
        1.0
    );

    // One line per step and one per run, each with the run id; no input, argument or output.
    let run_line = tokio::task::block_in_place(|| {
        app.wait_for_log("the run's line", |v| v["message"] == "run finished")
    });
    assert_eq!(run_line["run_id"], run_id, "{run_line}");
    let logs = app.log_json();
    let steps: Vec<&Value> = logs
        .iter()
        .filter(|v| v["message"] == "step finished")
        .collect();
    assert_eq!(steps.len(), 1, "{logs:?}");
    assert_eq!(steps[0]["run_id"], run_id);
    assert_eq!(steps[0]["tool_calls"], 2);
    let all = app.logs().join("\n");
    assert!(!all.contains("zebra"), "a payload reached the log:\n{all}");
}
