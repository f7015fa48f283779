//! Bad input to the durable routes: unknown runs, a resume of a run that is not paused, pushes
//! that name no run (acknowledged, logged, never redelivered), and a store that is down.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
async fn unknown_runs_are_404_and_a_run_not_paused_cannot_be_resumed() {
    emulators();
    let model = FakeModel::openai(vec![Reply::text("done")]);
    let dir = TempDir::new();
    let app = instance(&dir, &agent_yaml(&model, None, ""), &[]);
    let nope = "run-00000000000000000000000000000000";
    for (method, path, body) in [
        ("GET", format!("/v1/runs/{nope}"), None),
        ("GET", format!("/v1/runs/{nope}/events"), None),
        ("POST", format!("/v1/runs/{nope}:cancel"), None),
        (
            "POST",
            format!("/v1/runs/{nope}:resume"),
            Some(json!({"approve": ["x"]})),
        ),
    ] {
        let (status, answer) = call(&app, method, &path, body).await;
        assert_eq!(status, 404, "{method} {path}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(nope),
            "{method} {path}: {answer}"
        );
    }
    let id = start(&app, json!({"input": "go"})).await;
    wait_status(&app, &id, &["completed"], Duration::from_secs(20)).await;
    let (status, answer) = call(
        &app,
        "POST",
        &format!("/v1/runs/{id}:resume"),
        Some(json!({"approve": ["x"]})),
    )
    .await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("not waiting"),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
async fn a_malformed_push_is_acknowledged_logged_and_never_redelivered() {
    emulators();
    let port = e2e::closed_port();
    let queue = PushQueue::to_port(port).await;
    let model = FakeModel::openai(Vec::new());
    let dir = TempDir::new();
    let port_text = port.to_string();
    let app = instance(
        &dir,
        &agent_yaml(&model, None, ""),
        &[("PORT", &port_text), ("RUNS_TOPIC", &queue.topic)],
    );
    // Straight to the route: not a push body at all.
    let r = clients::http1()
        .post(app.url("/v1/runs:execute"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    app.wait_for_log("the dropped push", |v| {
        v["severity"] == "WARNING"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("push acknowledged and dropped"))
    });
    // Through Pub/Sub: a message that names no run, and one naming a run that does not exist.
    queue.publish_raw(b"{\"hello\": 1}", json!({})).await;
    let ghost = "run-11111111111111111111111111111111";
    queue
        .publish_raw(json!({"run_id": ghost}).to_string().as_bytes(), json!({}))
        .await;
    let dropped = |app: &TestApp| {
        app.log_json()
            .into_iter()
            .filter(|v| {
                v["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("push acknowledged and dropped"))
            })
            .map(|v| v["message"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    e2e::orchestrate::wait_until(
        || dropped(&app).len() == 3,
        "the two pushes were not dropped",
    )
    .await;
    // Acked: more than the ack deadline (10 s) later, neither came again.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let lines = dropped(&app);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(
        lines[1..].iter().any(|l| l.contains("names no run")),
        "{lines:#?}"
    );
    assert!(lines[1..].iter().any(|l| l.contains(ghost)), "{lines:#?}");
    queue.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
async fn a_store_that_is_down_answers_503_naming_it_and_keeps_nothing_in_memory() {
    emulators();
    let model = FakeModel::openai(vec![Reply::text("never")]);
    let dir = TempDir::new();
    let closed = format!("127.0.0.1:{}", e2e::closed_port());
    let app = instance(
        &dir,
        &agent_yaml(&model, None, ""),
        &[("FIRESTORE_EMULATOR_HOST", &closed)],
    );
    let session = unique("session");
    for body in [
        json!({"input": "go"}),
        json!({"input": "go", "session_id": session}),
    ] {
        let (status, answer) = submit(&app, body, &[]).await;
        assert_eq!(status, 503, "{answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains("firestore"), "names the store: {error}");
    }
    // A session's turn on /v1/run needs the store too.
    let (status, answer) = call(
        &app,
        "POST",
        "/v1/run",
        Some(json!({"input": "go", "session_id": session})),
    )
    .await;
    assert_eq!(status, 503, "{answer}");
    // Nothing went on in memory instead: nothing was listed, the model was never asked.
    let (status, answer) = call(&app, "GET", "/v1/runs", None).await;
    assert_eq!(status, 503, "{answer}");
    assert!(model.requests().is_empty());
}
