//! Two orchestrate processes on one Firestore: a run executed by one is followed, cancelled
//! and resumed from the other, and a session is held against both.

use super::*;

/// Two instances of the same configuration (no run queue: each executes what it accepts).
fn pair(dir: &TempDir, yaml: &str, extra: &[(&str, &str)]) -> (TestApp, TestApp) {
    (instance(dir, yaml, extra), instance(dir, yaml, extra))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
async fn a_run_is_followed_from_another_instance_across_a_reconnection_with_last_event_id() {
    emulators();
    let model = by_turn(
        vec![
            tool_call("step", 1),
            tool_call("step", 2),
            Reply::text("done"),
        ],
        Duration::from_millis(400),
    );
    let mcp = FakeMcp::start(vec![FakeTool::new("step", Duration::from_millis(200))]);
    let dir = TempDir::new();
    let (a, b) = pair(&dir, &agent_yaml(&model, Some(&mcp), ""), &[]);
    let id = start(&a, json!({"input": "go"})).await;
    // The first events, then the client goes away mid-run.
    let mut reader = follow(&b, &id, None).await;
    let mut seen = Vec::new();
    while seen.len() < 3 {
        seen.push(reader.next().await.expect("an event before the end"));
    }
    drop(reader);
    let last = seen.last().unwrap().id.clone().expect("an id");
    assert_ne!(
        seen.last().unwrap().event,
        "run.finished",
        "the run was still going when the client left"
    );
    let rest = follow(&b, &id, Some(&last)).await.all().await;
    assert!(!rest.is_empty());
    seen.extend(rest);
    let summary = whole_stream(&id, &seen);
    assert_eq!(summary["status"], "completed", "{summary}");
    assert_eq!(summary["output"], "done");
    // The executing instance's own stream is the same.
    let there = follow(&a, &id, None).await.all().await;
    let kinds = |events: &[SseEvent]| -> Vec<(String, Value)> {
        events
            .iter()
            .map(|e| (e.event.clone(), e.data["seq"].clone()))
            .collect()
    };
    assert_eq!(kinds(&there), kinds(&seen));
    eprintln!("{} events, reconnected after seq {last}", seen.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
async fn a_cancel_sent_to_another_instance_stops_the_executing_one_within_a_second() {
    emulators();
    let model = FakeModel::openai(vec![Reply::Endless(Duration::from_millis(50))]);
    let dir = TempDir::new();
    let (a, b) = pair(&dir, &agent_yaml(&model, None, ""), &[]);
    let id = start(&a, json!({"input": "talk for ever"})).await;
    e2e::orchestrate::wait_until(|| !model.requests().is_empty(), "the model was never asked")
        .await;
    wait_status(&b, &id, &["running"], Duration::from_secs(10)).await;
    let asked = Instant::now();
    let (status, body) = call(&b, "POST", &format!("/v1/runs/{id}:cancel"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cancel_requested"], true, "{body}");
    let run = wait_status(&b, &id, &["cancelled"], Duration::from_secs(10)).await;
    let stopped = asked.elapsed();
    e2e::orchestrate::wait_until(|| model.hung_up() == 1, "the model's stream was kept").await;
    let dropped = asked.elapsed();
    eprintln!("cancel on B to cancelled: {stopped:?}; model stream dropped after {dropped:?}");
    assert!(stopped < Duration::from_millis(1500), "{stopped:?}");
    assert!(
        run["result"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("cancel")),
        "{run}"
    );
    // A run that ended cannot be cancelled again.
    let (again, body) = call(&a, "POST", &format!("/v1/runs/{id}:cancel"), None).await;
    assert_eq!(again, 409, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
async fn a_second_run_on_a_busy_session_gets_409_naming_the_first_from_any_instance() {
    emulators();
    let model = FakeModel::openai_responder(
        Responder::new(|_| Reply::text("answered")).latency(Duration::from_secs(2)),
    );
    let dir = TempDir::new();
    let (a, b) = pair(&dir, &agent_yaml(&model, None, ""), &[]);
    let session = unique("session");
    let first = start(&a, json!({"input": "one", "session_id": session})).await;
    for app in [&a, &b] {
        let (status, body) = submit(app, json!({"input": "two", "session_id": session}), &[]).await;
        assert_eq!(status, 409, "{body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(&first), "names the running run: {error}");
    }
    let (status, body) = call(
        &b,
        "POST",
        "/v1/run",
        Some(json!({"input": "two", "session_id": session})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    // "if_busy": "wait" waits for the first to end instead.
    let (status, body) = submit(
        &b,
        json!({"input": "three", "session_id": session, "if_busy": "wait"}),
        &[],
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let first = get_run(&a, &first).await;
    assert_eq!(first["status"], "completed", "{first}");
    let third = body["run_id"].as_str().unwrap();
    wait_status(&a, third, &["completed"], Duration::from_secs(20)).await;
    let (_, s) = call(&a, "GET", &format!("/v1/sessions/{session}"), None).await;
    let inputs: Vec<&str> = s["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["input"].as_str().unwrap())
        .collect();
    assert_eq!(inputs, ["one", "three"], "{s}");
}

/// A model that calls `delete` once, then answers with what the tool said.
fn deleting_model() -> FakeModel {
    FakeModel::openai_responder(Responder::new(|request| {
        match tool_results(request).last() {
            None => tool_call("delete", 1),
            Some(result) => Reply::text(&format!("the tool said: {result}")),
        }
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
async fn an_approval_gate_pauses_and_is_approved_or_denied_from_another_instance() {
    emulators();
    let model = deleting_model();
    let mcp = FakeMcp::start(vec![FakeTool::new("delete", Duration::ZERO)]);
    let dir = TempDir::new();
    let gate = "    approval:\n      tools: [delete]\n";
    let (a, b) = pair(&dir, &agent_yaml(&model, Some(&mcp), gate), &[]);
    let mut outputs = Vec::new();
    for verdict in ["approve", "deny"] {
        let id = start(&a, json!({"input": "clean up"})).await;
        let paused = wait_status(&b, &id, &["input_required"], Duration::from_secs(20)).await;
        let pending = paused["result"]["pending"].as_array().unwrap().clone();
        assert_eq!(pending.len(), 1, "{paused}");
        assert_eq!(pending[0]["tool"], "delete", "{paused}");
        assert_eq!(pending[0]["arguments"], json!({"n": 1}));
        let events = follow(&b, &id, None).await.all().await;
        let finished = &events.last().unwrap().data;
        assert_eq!(finished["status"], "input_required", "{finished}");
        let approval = pending[0]["approval_id"].as_str().unwrap();
        let before = mcp.calls().len();
        assert_eq!(before, outputs.len(), "nothing is called before approval");
        let body = json!({verdict: [approval], "message": "not today"});
        let (status, resumed) =
            call(&b, "POST", &format!("/v1/runs/{id}:resume"), Some(body)).await;
        assert_eq!(status, 200, "{resumed}");
        let run = wait_status(&b, &id, &["completed"], Duration::from_secs(20)).await;
        outputs.push(run["result"]["output"].as_str().unwrap().to_owned());
        // The resumed run's stream goes on after the pause, and ends with its own end.
        let events = follow(&a, &id, None).await.all().await;
        let last = &events.last().unwrap().data;
        assert_eq!(last["status"], "completed", "{last}");
        let seqs: Vec<u64> = events
            .iter()
            .map(|e| e.data["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, (0..events.len() as u64).collect::<Vec<_>>());
        // A run no longer paused cannot be resumed again.
        let (status, body) = call(
            &a,
            "POST",
            &format!("/v1/runs/{id}:resume"),
            Some(json!({"approve": [approval]})),
        )
        .await;
        assert_eq!(status, 409, "{body}");
    }
    let keys = calls_by_key(&mcp);
    assert_eq!(
        keys.len(),
        1,
        "approved: called once; denied: never: {keys:?}"
    );
    assert!(keys.values().all(|n| *n == 1));
    assert!(outputs[0].contains("delete done"), "{}", outputs[0]);
    assert!(
        outputs[1].contains("denied") && outputs[1].contains("not today"),
        "the model sees the denial as a tool error: {}",
        outputs[1]
    );
}
