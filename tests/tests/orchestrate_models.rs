//! orchestrate's model providers end to end: the real binary against loopback servers that
//! reproduce Ollama's native `/api/chat` NDJSON and the OpenAI chat completions SSE formats
//! (`e2e::model`, which cites the documents), including their errors before and after the
//! stream began, 404, 429 with `Retry-After`, garbage and cut streams, and structured output.

use std::time::{Duration, Instant};

use e2e::model::{FakeModel, Reply};
use e2e::orchestrate::{self, ollama_service, openai_service, post_run, react_yaml, stream_run};
use e2e::sse::SseReader;
use e2e::{TempDir, TestApp};
use serde_json::{Value, json};

const LOCAL_TOOLS: &str = "  - name: tools\n    transport: local\n    tools: [echo]\n";

/// A react agent with the local `echo` tool on the fake Ollama, with Ollama's own options.
fn ollama_app(dir: &TempDir, model: &FakeModel, agent_extra: &str) -> TestApp {
    let service = format!(
        "{}      keep_alive: 5m\n      think: false\n      temperature: 0.2\n",
        ollama_service(model)
    );
    orchestrate::spawn(
        dir,
        &react_yaml(&service, Some(LOCAL_TOOLS), agent_extra),
        &[],
    )
}

fn openai_app(dir: &TempDir, model: &FakeModel, agent_extra: &str) -> TestApp {
    orchestrate::spawn(
        dir,
        &react_yaml(&openai_service(model), None, agent_extra),
        &[],
    )
}

fn error_of(result: &Value) -> &str {
    result["error"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ollama_run_streams_calls_a_tool_and_counts_tokens() {
    let model = FakeModel::ollama(vec![
        Reply::call("echo", json!({"text": "hi"})),
        Reply::Text(vec!["It said ".into(), "hi".into()], (40, 3)),
    ]);
    let dir = TempDir::new();
    let app = ollama_app(&dir, &model, "");
    let events = SseReader::new(stream_run(&app, json!({"input": "echo hi"})).await)
        .all()
        .await;
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    let call = events.iter().find(|e| e.event == "tool.call").unwrap();
    assert_eq!(call.data["name"], "echo", "{names:?}");
    let result = events.iter().find(|e| e.event == "tool.result").unwrap();
    assert!(
        result.data["result"].as_str().unwrap().contains("hi"),
        "{:?}",
        result.data
    );
    let finished = &events.last().unwrap().data;
    assert_eq!(finished["status"], "completed", "{finished}");
    assert_eq!(finished["output"], "It said hi");
    assert_eq!(finished["usage"]["input_tokens"], 60, "{finished}");
    assert_eq!(finished["usage"]["output_tokens"], 11, "{finished}");
    assert_eq!(finished["usage"]["model_calls"], 2);

    // What Ollama was sent: its native body, with the service's options.
    let first = &model.requests()[0];
    assert_eq!(first["model"], "fake-model");
    assert_eq!(first["stream"], true);
    assert_eq!(first["keep_alive"], 300.0, "{first}");
    assert_eq!(first["think"], false);
    assert_eq!(first["options"]["temperature"], 0.2);
    assert!(
        first["options"]["num_predict"].as_u64().unwrap() > 0,
        "{first}"
    );
    assert_eq!(first["tools"][0]["function"]["name"], "echo");
    // The call had no id on the wire; the result goes back by tool name (Ollama's way).
    let messages = model.requests()[1]["messages"].as_array().unwrap().clone();
    let asked = messages.iter().find(|m| m["role"] == "assistant").unwrap();
    assert_eq!(
        asked["tool_calls"][0]["function"]["arguments"],
        json!({"text": "hi"})
    );
    let tool = messages.iter().find(|m| m["role"] == "tool").unwrap();
    assert_eq!(tool["tool_name"], "echo", "{tool}");
    assert!(tool["content"].as_str().unwrap().contains("hi"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ollama_model_that_is_not_pulled_says_to_pull_it() {
    let model = FakeModel::ollama(vec![Reply::Error(
        404,
        "model 'fake-model' not found, try pulling it first".into(),
        vec![],
    )]);
    let dir = TempDir::new();
    let app = ollama_app(&dir, &model, "");
    let (status, result) = post_run(&app, json!({"input": "x"})).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["status"], "failed", "{result}");
    assert!(
        error_of(&result).contains("ollama pull fake-model"),
        "{result}"
    );
    assert_eq!(model.requests().len(), 1, "a 404 is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_after_the_stream_began_fails_the_run_and_the_instance_serves_on() {
    let script = |message: &str| {
        vec![
            Reply::FailMidStream(vec!["partial ".into()], message.into()),
            Reply::text("fine again"),
        ]
    };
    for (model, ollama) in [
        (
            FakeModel::ollama(script("llama runner process has terminated")),
            true,
        ),
        (FakeModel::openai(script("upstream overloaded")), false),
    ] {
        let dir = TempDir::new();
        let app = if ollama {
            ollama_app(&dir, &model, "")
        } else {
            openai_app(&dir, &model, "")
        };
        let (_, result) = post_run(&app, json!({"input": "x"})).await;
        assert_eq!(result["status"], "failed", "{result}");
        let error = error_of(&result);
        assert!(
            error.contains("terminated") || error.contains("overloaded"),
            "the server's own message: {result}"
        );
        assert_eq!(
            result["output"], "partial ",
            "partial output kept: {result}"
        );
        assert_eq!(model.requests().len(), 1, "never retried once output began");
        let (_, again) = post_run(&app, json!({"input": "x"})).await;
        assert_eq!(again["status"], "completed", "{again}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_cut_streams_fail_the_run_with_a_clear_message() {
    let model = FakeModel::openai(vec![
        Reply::Garbage("<html><body>502 Bad Gateway</body></html>\n\n".into()),
        Reply::Cut(vec!["half an ".into()]),
        Reply::text("still here"),
    ]);
    let dir = TempDir::new();
    let app = openai_app(&dir, &model, "");
    let (_, garbage) = post_run(&app, json!({"input": "x"})).await;
    assert_eq!(garbage["status"], "failed", "{garbage}");
    assert!(!error_of(&garbage).is_empty(), "{garbage}");
    assert!(
        error_of(&garbage).contains("closed the stream"),
        "{garbage}"
    );
    let (_, cut) = post_run(&app, json!({"input": "x"})).await;
    assert_eq!(cut["status"], "failed", "{cut}");
    assert!(error_of(&cut).contains("closed the stream"), "{cut}");
    assert_eq!(
        cut["steps"][0]["usage"]["model_calls"], 1,
        "a failed call counts: {cut}"
    );
    assert_eq!(cut["output"], "half an ");
    let (_, fine) = post_run(&app, json!({"input": "x"})).await;
    assert_eq!(fine["status"], "completed", "{fine}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_retried_after_the_wait_it_asks_for_and_a_400_is_not() {
    let model = FakeModel::openai(vec![
        Reply::Error(
            429,
            "Rate limit reached".into(),
            vec![("Retry-After".into(), "1".into())],
        ),
        Reply::text("after the wait"),
        Reply::Error(400, "messages: bad role".into(), vec![]),
    ]);
    let dir = TempDir::new();
    let app = openai_app(&dir, &model, "");
    let started = Instant::now();
    let (_, result) = post_run(&app, json!({"input": "x"})).await;
    assert_eq!(result["status"], "completed", "{result}");
    assert_eq!(result["output"], "after the wait");
    assert_eq!(model.requests().len(), 2);
    // Honouring `Retry-After: 1` (a lower bound on the wait, not a speed assertion).
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );

    let (_, refused) = post_run(&app, json!({"input": "x"})).await;
    assert_eq!(refused["status"], "failed", "{refused}");
    assert!(error_of(&refused).contains("bad role"), "{refused}");
    assert_eq!(model.requests().len(), 3, "a 400 is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn structured_output_is_requested_validated_and_retried_once() {
    let model = FakeModel::openai(vec![
        Reply::text(r#"{"town": "Paris"}"#),
        Reply::text(r#"{"city": "Paris"}"#),
    ]);
    let dir = TempDir::new();
    let schema =
        "    output_schema: {type: object, properties: {city: {type: string}}, required: [city]}\n";
    let app = openai_app(&dir, &model, schema);
    let (_, result) = post_run(&app, json!({"input": "where?"})).await;
    assert_eq!(result["status"], "completed", "{result}");
    assert_eq!(result["output"], json!({"city": "Paris"}));
    let first = &model.requests()[0];
    assert_eq!(first["response_format"]["type"], "json_schema", "{first}");
    assert_eq!(
        first["response_format"]["json_schema"]["schema"]["required"],
        json!(["city"])
    );
    // The retry carries the validation error.
    let retry = model.requests()[1]["messages"].clone();
    let last = retry.as_array().unwrap().last().unwrap();
    assert_eq!(last["role"], "user");
    assert!(last["content"].as_str().unwrap().contains("city"), "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_loops_on_tools_stops_at_max_iterations() {
    let call = || Reply::call("echo", json!({"text": "again"}));
    let model = FakeModel::ollama(vec![call(), call(), call()]);
    let dir = TempDir::new();
    let app = ollama_app(&dir, &model, "    max_iterations: 2\n");
    let (_, result) = post_run(&app, json!({"input": "x"})).await;
    assert_eq!(result["status"], "budget_exhausted", "{result}");
    assert!(error_of(&result).contains("max_iterations (2)"), "{result}");
    assert_eq!(model.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_is_found_through_ollama_url_then_ollama_host_without_a_scheme() {
    let yaml = |_: &FakeModel| {
        "model_services:\n  - name: fake\n    provider: ollama\n    model: fake-model\n\
         agents:\n  - name: assistant\n    role: react\n    model: fake\n"
            .to_owned()
    };
    // OLLAMA_HOST as Ollama itself reads it: host:port, no scheme.
    let model = FakeModel::ollama(vec![Reply::text("via host")]);
    let dir = TempDir::new();
    let host = model.addr.to_string();
    let app = orchestrate::spawn(&dir, &yaml(&model), &[("OLLAMA_HOST", host.as_str())]);
    let (_, result) = post_run(&app, json!({"input": "x"})).await;
    assert_eq!(result["output"], "via host", "{result}");

    // OLLAMA_URL wins over OLLAMA_HOST.
    let model = FakeModel::ollama(vec![Reply::text("via url")]);
    let dir = TempDir::new();
    let closed = format!("127.0.0.1:{}", e2e::closed_port());
    let url = model.origin();
    let app = orchestrate::spawn(
        &dir,
        &yaml(&model),
        &[
            ("OLLAMA_URL", url.as_str()),
            ("OLLAMA_HOST", closed.as_str()),
        ],
    );
    let (_, result) = post_run(&app, json!({"input": "x"})).await;
    assert_eq!(result["output"], "via url", "{result}");
}
