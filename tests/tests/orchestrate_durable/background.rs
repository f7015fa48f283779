//! Background runs through Pub/Sub: `POST /v1/runs` publishes the run to `RUNS_TOPIC`, a real
//! push subscription delivers it to `POST /v1/runs:execute`, which executes it inside that
//! request; a run longer than the request's deadline goes on across deliveries.

use super::*;

/// A tool call then an answer.
fn one_call_then_done() -> Vec<Reply> {
    vec![tool_call("step", 1), Reply::text("done")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
async fn a_background_run_is_published_and_executed_by_a_real_push_delivery() {
    emulators();
    let port = e2e::closed_port();
    let queue = PushQueue::to_port(port).await;
    let model = by_turn(one_call_then_done(), Duration::ZERO);
    let mcp = FakeMcp::start(vec![FakeTool::new("step", Duration::ZERO)]);
    let dir = TempDir::new();
    let port_text = port.to_string();
    let app = instance(
        &dir,
        &agent_yaml(&model, Some(&mcp), ""),
        &[("PORT", &port_text), ("RUNS_TOPIC", &queue.topic)],
    );
    let started = Instant::now();
    let key = unique("key");
    let (status, answer) = submit(&app, json!({"input": "go"}), &[("idempotency-key", &key)]).await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["run_id"].as_str().unwrap().to_owned();
    let run = wait_status(&app, &id, &["completed"], Duration::from_secs(30)).await;
    eprintln!(
        "submitted to completed through Pub/Sub: {:?}",
        started.elapsed()
    );
    assert_eq!(run["result"]["output"], "done", "{run}");
    assert_eq!(run["attempts"], 1, "{run}");
    // It ran inside a push delivery, which logged its end.
    let delivery = app.wait_for_log("the delivery's end", |v| {
        v["message"] == "delivery done" && v["run_id"] == id.as_str()
    });
    assert!(delivery["message_id"].is_string(), "{delivery}");
    // The same key gives the same run, which is not queued again.
    let (again, same) = submit(&app, json!({"input": "go"}), &[("idempotency-key", &key)]).await;
    assert_eq!(again, 202);
    assert_eq!(same["run_id"], id.as_str(), "{same}");
    assert_eq!(same["status"], "completed", "{same}");
    let keys = calls_by_key(&mcp);
    assert_eq!(keys.len(), 1, "{keys:?}");
    let (key, count) = keys.iter().next().unwrap();
    assert_eq!(*count, 1);
    assert!(key.starts_with(&format!("{id}/")), "{key}");
    assert_eq!(model.requests().len(), 2);
    queue.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
async fn a_run_longer_than_the_request_deadline_goes_on_across_three_deliveries() {
    emulators();
    let port = e2e::closed_port();
    let queue = PushQueue::to_port(port).await;
    // Each model turn takes 1.6 s and a delivery stops 0.3 s before its 3 s deadline: two
    // turns never fit in one delivery, so three turns need three.
    let model = by_turn(
        vec![
            tool_call("step", 1),
            tool_call("step", 2),
            Reply::text("done"),
        ],
        Duration::from_millis(1600),
    );
    let mcp = FakeMcp::start(vec![FakeTool::new("step", Duration::ZERO)]);
    let dir = TempDir::new();
    let port_text = port.to_string();
    let app = instance(
        &dir,
        &agent_yaml(&model, Some(&mcp), ""),
        &[
            ("PORT", &port_text),
            ("RUNS_TOPIC", &queue.topic),
            ("REQUEST_TIMEOUT", "3s"),
        ],
    );
    let started = Instant::now();
    let id = start(&app, json!({"input": "go"})).await;
    let run = wait_status(
        &app,
        &id,
        &["completed", "failed", "deadline", "cancelled"],
        Duration::from_secs(40),
    )
    .await;
    eprintln!("three deliveries: {:?}", started.elapsed());
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["result"]["output"], "done", "{run}");
    assert_eq!(run["attempts"], 3, "{run}");
    // Each tool call ran once, whatever the deliveries.
    let keys = calls_by_key(&mcp);
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.values().all(|n| *n == 1), "{keys:?}");
    // The last delivery logs its end after the run it finished is stored: wait for the line.
    let deliveries = tokio::task::block_in_place(|| {
        app.wait_for_logs("of three deliveries' ends", 3, |v| {
            v["message"] == "delivery done" && v["run_id"] == id.as_str()
        })
    });
    assert_eq!(deliveries.len(), 3, "three deliveries answered");
    // One stream across the three: nothing repeated, nothing lost.
    let events = follow(&app, &id, None).await.all().await;
    let summary = whole_stream(&id, &events);
    assert_eq!(summary["status"], "completed");
    queue.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
async fn each_tool_call_has_its_own_idempotency_key_when_the_model_reuses_call_ids() {
    emulators();
    // Servers that give no ids (Ollama, some OpenAI-compatible ones) number each turn's calls
    // from the start: both turns' calls are `call_0` here.
    let model = by_turn(
        vec![
            Reply::call("step", json!({"n": 1})),
            Reply::call("step", json!({"n": 2})),
            Reply::text("done"),
        ],
        Duration::ZERO,
    );
    let mcp = FakeMcp::start(vec![FakeTool::new("step", Duration::ZERO)]);
    let dir = TempDir::new();
    let app = instance(&dir, &agent_yaml(&model, Some(&mcp), ""), &[]);
    let id = start(&app, json!({"input": "go"})).await;
    wait_status(&app, &id, &["completed"], Duration::from_secs(20)).await;
    let calls = mcp.calls();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    // A tool server that deduplicates by key would answer the second call with the first's
    // result.
    assert_ne!(calls[0].key, calls[1].key, "{calls:#?}");
}

/// A wrapped push body naming run `id`, as Pub/Sub sends it.
fn push_body(id: &str, message_id: &str) -> Value {
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD.encode(json!({"run_id": id}).to_string());
    json!({
        "message": {"data": data, "attributes": {"run_id": id}, "messageId": message_id},
        "subscription": "projects/aixrun-test/subscriptions/duplicate",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
async fn a_duplicate_push_of_a_run_executing_on_the_same_instance_is_acked_and_does_nothing() {
    emulators();
    let port = e2e::closed_port();
    let queue = PushQueue::to_port(port).await;
    let model = by_turn(
        vec![tool_call("slow", 1), Reply::text("done")],
        Duration::ZERO,
    );
    let mcp = FakeMcp::start(vec![FakeTool::new("slow", Duration::from_secs(3))]);
    let dir = TempDir::new();
    let port_text = port.to_string();
    let app = instance(
        &dir,
        &agent_yaml(&model, Some(&mcp), ""),
        &[("PORT", &port_text), ("RUNS_TOPIC", &queue.topic)],
    );
    let id = start(&app, json!({"input": "go"})).await;
    e2e::orchestrate::wait_until(|| !mcp.calls().is_empty(), "the tool was never called").await;
    // Pub/Sub pushes a message again when its ack deadline passes before the answer (up to
    // 600 s, while a delivery may execute for an hour); the emulator holds an unanswered push
    // instead, so the duplicate is sent here, to the instance executing the run.
    let (status, body) = call(
        &app,
        "POST",
        "/v1/runs:execute",
        Some(push_body(&id, "dup-1")),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    // Answered at once, not after executing or waiting: the tool (3 s) still runs.
    let run = get_run(&app, &id).await;
    assert_eq!(run["status"], "running", "{run}");
    let duplicate = tokio::task::block_in_place(|| {
        app.wait_for_log("the duplicate's answer", |v| {
            v["message"] == "delivery done" && v["message_id"] == "dup-1"
        })
    });
    assert_eq!(duplicate["executed"], "HeldHere", "{duplicate}");
    let run = wait_status(&app, &id, &["completed", "failed"], Duration::from_secs(20)).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["attempts"], 1, "{run}");
    assert_eq!(
        calls_by_key(&mcp).values().sum::<usize>(),
        1,
        "{:#?}",
        mcp.calls()
    );
    assert_eq!(model.requests().len(), 2);
    queue.delete().await;
}
