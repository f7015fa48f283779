//! What a new user meets in the first hour with the real orchestrate binary, against the
//! loopback model servers (`e2e::model`, OpenAI's and Ollama's documented wire formats):
//! `tool_choice` as each API takes it and a step that says when its model called none of the
//! tools offered; the start-up line naming what was loaded (and no credential); a refused run
//! logged at WARN with its reason, and answered as a stream to a caller that asked for one; a
//! stream's end logged with the run's final status; run durations in buckets up to 3600 s.

use e2e::model::{FakeModel, Reply};
use e2e::orchestrate::{self, ollama_service, openai_service, post_run, react_yaml, stream_run};
use e2e::sse::SseReader;
use e2e::{TempDir, TestApp, clients, closed_port, metrics};
use serde_json::{Value, json};

const LOCAL_TOOLS: &str = "  - name: tools\n    transport: local\n    tools: [echo, get_weather]\n";

fn spawn(dir: &TempDir, service: &str, agent_extra: &str) -> TestApp {
    orchestrate::spawn(
        dir,
        &react_yaml(service, Some(LOCAL_TOOLS), agent_extra),
        &[],
    )
}

fn message(line: &Value) -> &str {
    line["message"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_choice_required_goes_to_an_openai_server_until_the_first_call() {
    let model = FakeModel::openai(vec![
        Reply::call("get_weather", json!({"city": "Paris"})),
        Reply::text("Sunny in Paris."),
    ]);
    let dir = TempDir::new();
    let app = spawn(&dir, &openai_service(&model), "    tool_choice: required\n");
    let (status, result) = post_run(&app, json!({"input": "Weather in Paris?"})).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["status"], "completed", "{result}");
    assert_eq!(result["steps"][0]["tool_calls"][0]["name"], "get_weather");
    let sent = model.requests();
    assert_eq!(sent[0]["tool_choice"], "required", "{}", sent[0]);
    // Then the model decides (else it would have to call a tool for ever).
    assert!(sent[1].get("tool_choice").is_none(), "{}", sent[1]);
    assert_eq!(sent[1]["tools"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_tool_is_openais_function_object() {
    let model = FakeModel::openai(vec![
        Reply::call("echo", json!({"text": "hi"})),
        Reply::text("hi"),
    ]);
    let dir = TempDir::new();
    let app = spawn(&dir, &openai_service(&model), "    tool_choice: echo\n");
    let (_, result) = post_run(&app, json!({"input": "say hi"})).await;
    assert_eq!(result["status"], "completed", "{result}");
    assert_eq!(
        model.requests()[0]["tool_choice"],
        json!({"type": "function", "function": {"name": "echo"}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_says_when_its_model_called_none_of_the_tools_offered() {
    let model = FakeModel::openai(vec![Reply::text("It is 31 degrees and sunny.")]);
    let dir = TempDir::new();
    let app = spawn(&dir, &openai_service(&model), "");
    let (_, result) = post_run(&app, json!({"input": "Weather in Paris?"})).await;
    assert_eq!(result["status"], "completed", "{result}");
    let step = &result["steps"][0];
    assert_eq!(
        step["tools_offered"],
        json!(["echo", "get_weather"]),
        "{result}"
    );
    assert_eq!(step["tool_calls"], json!([]));
    assert_eq!(step["usage"]["tool_calls"], 0);
    // No tool_choice configured: none is sent (the server's default, auto).
    assert!(model.requests()[0].get("tool_choice").is_none());
    app.wait_for_log("saying no tool was called", |v| {
        message(v) == "step finished without calling any of the tools offered"
            && v["tools_offered"] == 2
            && v["tool_calls"] == 0
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_gets_tool_choice_as_the_tools_offered_and_an_unmet_required_fails_the_step() {
    // `/api/chat` has no tool_choice field: `none` offers no tools.
    let model = FakeModel::ollama(vec![Reply::text("No tools here.")]);
    let dir = TempDir::new();
    let app = spawn(&dir, &ollama_service(&model), "    tool_choice: none\n");
    let (_, result) = post_run(&app, json!({"input": "hi"})).await;
    assert_eq!(result["status"], "completed", "{result}");
    let sent = &model.requests()[0];
    assert!(sent.get("tools").is_none(), "{sent}");
    assert!(sent.get("tool_choice").is_none(), "{sent}");
    assert!(
        result["steps"][0].get("tools_offered").is_none(),
        "{result}"
    );

    // `required` can't be enforced there: an answer without a call fails the step, saying why.
    let model = FakeModel::ollama(vec![Reply::text("Made up: sunny.")]);
    let dir = TempDir::new();
    let app = spawn(&dir, &ollama_service(&model), "    tool_choice: required\n");
    let (_, result) = post_run(&app, json!({"input": "Weather in Paris?"})).await;
    assert_eq!(result["status"], "failed", "{result}");
    let error = result["error"].as_str().unwrap();
    assert!(
        error.contains("tool_choice is required, but the model answered without calling a tool"),
        "{result}"
    );
    assert_eq!(model.requests()[0]["tools"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_names_the_configuration_workflows_models_and_mcp_servers_without_credentials() {
    let model = FakeModel::openai(vec![]);
    let base = model.base().replace("http://", "http://user:pass-secret@");
    let service = format!(
        "  - name: fake\n    provider: openai_compatible\n    model: fake-model\n    config:\n      \
         address: {base}?token=query-secret\n      api_key: sk-key-secret\n"
    );
    let yaml = format!(
        "mcp_servers:\n{LOCAL_TOOLS}  - name: remote\n    transport: grpc\n    address: \
         127.0.0.1:{}\nmodel_services:\n{service}agents:\n  - name: assistant\n    role: react\n    \
         model: fake\n    mcp_servers: [tools, remote]\n",
        closed_port()
    );
    let dir = TempDir::new();
    let path = dir.path().join("orchestrate.yaml").display().to_string();
    let app = orchestrate::spawn(&dir, &yaml, &[]);
    let line = app.wait_for_log("naming what was loaded", |v| {
        message(v).starts_with("configuration ")
    });
    assert_eq!(line["severity"], "INFO", "{line}");
    let text = message(&line);
    let expected = format!(
        "configuration {path}: workflows default; models fake (openai_compatible at {}); \
         MCP servers tools (local), remote (grpc at http://127.0.0.1:",
        model.base()
    );
    assert!(text.starts_with(&expected), "{text}\nexpected {expected}");
    let logs = app.logs().join("\n");
    for secret in ["pass-secret", "query-secret", "sk-key-secret"] {
        assert!(!logs.contains(secret), "{secret} logged:\n{logs}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_run_is_logged_at_warn_and_streamed_to_a_caller_that_asked_for_a_stream() {
    // A model server that is not there: runs are refused before they start.
    let service = format!(
        "  - name: fake\n    provider: openai_compatible\n    model: fake-model\n    config:\n      \
         address: http://127.0.0.1:{}/v1\n",
        closed_port()
    );
    let dir = TempDir::new();
    let app = orchestrate::spawn(&dir, &react_yaml(&service, None, ""), &[]);

    let (status, body) = post_run(&app, json!({"input": "hi"})).await;
    assert_eq!(status, 503, "{body}");
    let reason = body["error"].as_str().unwrap().to_owned();
    assert!(reason.contains("fake-model"), "{body}");
    let line = app.wait_for_log("refusing the run", |v| {
        message(v).starts_with("run refused")
    });
    assert_eq!(line["severity"], "WARNING", "{line}");
    assert_eq!(line["reason"], reason.as_str(), "{line}");
    assert_eq!(line["status"], 503);

    for (accept, body) in [
        (Some("text/event-stream"), json!({"input": "hi"})),
        (None, json!({"input": "hi", "stream": true})),
    ] {
        let mut request = clients::http1().post(app.url("/v1/run")).json(&body);
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        assert_eq!(r.headers()["retry-after"], "5");
        let events = SseReader::new(r).all().await;
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].event, "run.finished");
        let finished = &events[0].data;
        assert_eq!(finished["status"], "failed", "{finished}");
        assert_eq!(finished["error"], reason.as_str(), "{finished}");
        assert_eq!(finished["workflow"], "default");
        assert_eq!(finished["seq"], 0);
        assert!(finished["run_id"].as_str().unwrap().starts_with("run-"));
    }

    // A bad request keeps its status too, as a stream when one was asked for.
    let r = clients::http1()
        .post(app.url("/v1/run"))
        .header("accept", "text/event-stream")
        .json(&json!({"input": "hi", "workflow": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let events = SseReader::new(r).all().await;
    assert_eq!(events[0].event, "run.finished");
    assert!(
        events[0].data["error"]
            .as_str()
            .unwrap()
            .contains("unknown workflow \"nope\""),
        "{events:?}"
    );
    let (status, body) = post_run(&app, json!({"input": "hi", "workflow": "nope"})).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "not_found", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_runs_end_is_logged_with_its_status_and_runs_are_timed_up_to_an_hour() {
    let model = FakeModel::openai(vec![Reply::text("one two")]);
    let dir = TempDir::new();
    let app = spawn(&dir, &openai_service(&model), "");
    let events = SseReader::new(stream_run(&app, json!({"input": "count"})).await)
        .all()
        .await;
    let run_id = events[0].data["run_id"].as_str().unwrap().to_owned();
    let line = app.wait_for_log("ending the stream", |v| {
        message(v).starts_with("stream ended") && v["run_id"] == run_id.as_str()
    });
    assert_eq!(message(&line), "stream ended: completed", "{line}");
    assert_eq!(line["status"], "completed");
    assert!(line["duration_ms"].is_u64(), "{line}");

    let text = clients::http1()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let s = metrics::parse(&text);
    let run = [("workflow", "default"), ("status", "completed")];
    let count = metrics::value(&s, "aixgo_orchestrate_run_duration_seconds_count", &run);
    assert_eq!(count, Some(1.0), "{text}");
    for le in ["60", "300", "3600"] {
        let labels = [run[0], run[1], ("le", le)];
        let bucket = metrics::value(&s, "aixgo_orchestrate_run_duration_seconds_bucket", &labels);
        assert_eq!(bucket, Some(1.0), "le {le} in\n{text}");
    }
    let step = [("agent", "assistant"), ("le", "3600")];
    let bucket = metrics::value(&s, "aixgo_agent_execution_duration_seconds_bucket", &step);
    assert_eq!(bucket, Some(1.0), "{text}");
}
