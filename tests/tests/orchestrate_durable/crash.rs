//! An instance stopped in the middle of a run's tool call. SIGKILL: the push it was answering
//! is never acked, Pub/Sub delivers it again to a new instance on the same port once the dead
//! one's lease has run out, and the run ends there from its journal without calling a
//! completed tool again. SIGTERM: the instance saves the run, releases its lease, publishes the
//! continuation and answers its push before it exits; the next instance goes on at once.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
async fn a_run_whose_instance_is_killed_completes_on_a_new_one_without_repeating_a_tool_call() {
    emulators();
    let port = e2e::closed_port();
    let queue = PushQueue::to_port(port).await;
    let model = by_turn(
        vec![
            tool_call("fast", 1),
            tool_call("slow", 2),
            tool_call("fast", 3),
            Reply::text("done"),
        ],
        Duration::ZERO,
    );
    let mcp = FakeMcp::start(vec![
        FakeTool::new("fast", Duration::ZERO),
        FakeTool::new("slow", Duration::from_secs(4)),
    ]);
    let dir = TempDir::new();
    let yaml = agent_yaml(&model, Some(&mcp), "");
    let port_text = port.to_string();
    let vars = [
        ("PORT", port_text.as_str()),
        ("RUNS_TOPIC", queue.topic.as_str()),
        ("RUN_LEASE_TTL", "3s"),
    ];
    let mut first = instance(&dir, &yaml, &vars);
    let id = start(&first, json!({"input": "go"})).await;
    e2e::orchestrate::wait_until(
        || mcp.calls().iter().any(|c| c.name == "slow"),
        "the slow tool was never called",
    )
    .await;
    sigkill(&mut first);
    let killed = Instant::now();
    let second = instance(&dir, &yaml, &vars);
    let run = wait_status(
        &second,
        &id,
        &["completed", "failed", "cancelled", "deadline"],
        Duration::from_secs(60),
    )
    .await;
    let recovered = killed.elapsed();
    eprintln!("SIGKILL to completed on the new instance: {recovered:?}");
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["result"]["output"], "done", "{run}");
    assert!(run["attempts"].as_u64().unwrap() >= 2, "{run}");
    // Every call reached the tool server once, but the one in flight at the kill, which may
    // have run again (with the same key, so the server can tell).
    let calls = mcp.calls();
    let keys = calls_by_key(&mcp);
    assert_eq!(keys.len(), 3, "{calls:#?}");
    for c in &calls {
        let n = keys[c.key.as_ref().unwrap()];
        match c.name.as_str() {
            "fast" => assert_eq!(n, 1, "a completed call was repeated: {calls:#?}"),
            _ => assert!(n <= 2, "{calls:#?}"),
        }
    }
    // One stream across both instances.
    let events = follow(&second, &id, None).await.all().await;
    let summary = whole_stream(&id, &events);
    assert_eq!(summary["status"], "completed");
    // The redelivery reached the new instance.
    second.wait_for_log("the redelivery's end", |v| {
        v["message"] == "delivery done" && v["run_id"] == id.as_str()
    });
    queue.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
async fn a_run_whose_instance_gets_sigterm_is_released_and_goes_on_on_the_next_one() {
    emulators();
    let port = e2e::closed_port();
    let queue = PushQueue::to_port(port).await;
    let model = by_turn(
        vec![
            tool_call("fast", 1),
            tool_call("slow", 2),
            tool_call("fast", 3),
            Reply::text("done"),
        ],
        Duration::ZERO,
    );
    let mcp = FakeMcp::start(vec![
        FakeTool::new("fast", Duration::ZERO),
        FakeTool::new("slow", Duration::from_secs(4)),
    ]);
    let dir = TempDir::new();
    let yaml = agent_yaml(&model, Some(&mcp), "");
    let port_text = port.to_string();
    // A lease far longer than the test: the next instance can only go on because the first
    // released the run, not because its lease ran out.
    let vars = [
        ("PORT", port_text.as_str()),
        ("RUNS_TOPIC", queue.topic.as_str()),
        ("RUN_LEASE_TTL", "600s"),
    ];
    let mut first = instance(&dir, &yaml, &vars);
    let id = start(&first, json!({"input": "go"})).await;
    e2e::orchestrate::wait_until(
        || mcp.calls().iter().any(|c| c.name == "slow"),
        "the slow tool was never called",
    )
    .await;
    first.sigterm();
    let status = tokio::task::block_in_place(|| first.wait_exit(Duration::from_secs(15)));
    assert!(status.success(), "{status:?}");
    // It answered its push (suspended) before it exited, and left the run for another.
    let line = tokio::task::block_in_place(|| {
        first.wait_for_log("the suspended delivery's end", |v| {
            v["message"] == "delivery done" && v["run_id"] == id.as_str()
        })
    });
    assert_eq!(line["executed"], "Suspended", "{line}");
    let second = instance(&dir, &yaml, &vars);
    let run = wait_status(
        &second,
        &id,
        &["completed", "failed", "cancelled", "deadline"],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["result"]["output"], "done", "{run}");
    assert_eq!(run["attempts"], 2, "{run}");
    // The completed calls were not made again; the one cut by SIGTERM ran again with its key.
    let calls = mcp.calls();
    let keys = calls_by_key(&mcp);
    assert_eq!(keys.len(), 3, "{calls:#?}");
    for c in &calls {
        let n = keys[c.key.as_ref().unwrap()];
        match c.name.as_str() {
            "fast" => assert_eq!(n, 1, "a completed call was repeated: {calls:#?}"),
            _ => assert!(n <= 2, "{calls:#?}"),
        }
    }
    let events = follow(&second, &id, None).await.all().await;
    let summary = whole_stream(&id, &events);
    assert_eq!(summary["status"], "completed");
    queue.delete().await;
}
