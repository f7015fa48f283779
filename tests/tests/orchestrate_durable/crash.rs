//! An instance stopped in the middle of a run's tool call. SIGKILL: the push it was answering
//! is never acked, Pub/Sub delivers it again to a new instance on the same port once the dead
//! one's lease has run out, and the run ends there from its journal without calling a
//! completed tool again. SIGTERM: the instance saves the run, releases its lease, publishes the
//! continuation and answers its push before it exits; the next instance goes on at once.

use super::*;

/// A run of four turns (fast, slow, fast, done) on an instance behind a real push
/// subscription, stopped while its slow tool call (4 s) is in flight.
struct Stopped {
    queue: PushQueue,
    mcp: FakeMcp,
    // The instances' configuration files; the model they call, kept alive.
    dir: TempDir,
    _model: FakeModel,
    yaml: String,
    vars: Vec<(&'static str, String)>,
    first: TestApp,
    id: String,
}

impl Stopped {
    async fn start(lease: &str) -> Self {
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
        let vars = vec![
            ("PORT", port.to_string()),
            ("RUNS_TOPIC", queue.topic.clone()),
            ("RUN_LEASE_TTL", lease.to_owned()),
        ];
        let first = instance(&dir, &yaml, &Self::pairs(&vars));
        let id = start(&first, json!({"input": "go"})).await;
        e2e::orchestrate::wait_until(
            || mcp.calls().iter().any(|c| c.name == "slow"),
            "the slow tool was never called",
        )
        .await;
        Self {
            queue,
            mcp,
            dir,
            _model: model,
            yaml,
            vars,
            first,
            id,
        }
    }

    fn pairs<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
        vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    /// Another instance on the same port; the run, once it ended there.
    async fn next_instance(&self) -> (TestApp, Value) {
        let second = instance(&self.dir, &self.yaml, &Self::pairs(&self.vars));
        let run = wait_status(
            &second,
            &self.id,
            &["completed", "failed", "cancelled", "deadline"],
            Duration::from_secs(60),
        )
        .await;
        (second, run)
    }

    /// The run completed on `second`, no completed call was made again (the one in flight at
    /// the stop may have run twice, with the same key), and its events are one stream.
    async fn check(&self, second: &TestApp, run: &Value) {
        assert_eq!(run["status"], "completed", "{run}");
        assert_eq!(run["result"]["output"], "done", "{run}");
        let calls = self.mcp.calls();
        let keys = calls_by_key(&self.mcp);
        assert_eq!(keys.len(), 3, "{calls:#?}");
        for c in &calls {
            let n = keys[c.key.as_ref().unwrap()];
            match c.name.as_str() {
                "fast" => assert_eq!(n, 1, "a completed call was repeated: {calls:#?}"),
                _ => assert!(n <= 2, "{calls:#?}"),
            }
        }
        let events = follow(second, &self.id, None).await.all().await;
        let summary = whole_stream(&self.id, &events);
        assert_eq!(summary["status"], "completed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
async fn a_run_whose_instance_is_killed_completes_on_a_new_one_without_repeating_a_tool_call() {
    let mut stopped = Stopped::start("3s").await;
    sigkill(&mut stopped.first);
    let killed = Instant::now();
    let (second, run) = stopped.next_instance().await;
    eprintln!(
        "SIGKILL to completed on the new instance: {:?}",
        killed.elapsed()
    );
    assert!(run["attempts"].as_u64().unwrap() >= 2, "{run}");
    stopped.check(&second, &run).await;
    // The redelivery reached the new instance.
    tokio::task::block_in_place(|| {
        second.wait_for_log("the redelivery's end", |v| {
            v["message"] == "delivery done" && v["run_id"] == stopped.id.as_str()
        })
    });
    stopped.queue.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
async fn a_run_whose_instance_gets_sigterm_is_released_and_goes_on_on_the_next_one() {
    // A lease far longer than the test: the next instance can only go on because the first
    // released the run, not because its lease ran out.
    let mut stopped = Stopped::start("600s").await;
    stopped.first.sigterm();
    let status = tokio::task::block_in_place(|| stopped.first.wait_exit(Duration::from_secs(15)));
    assert!(status.success(), "{status:?}");
    // It answered its push (suspended) before it exited, and left the run for another.
    let line = tokio::task::block_in_place(|| {
        stopped
            .first
            .wait_for_log("the suspended delivery's end", |v| {
                v["message"] == "delivery done" && v["run_id"] == stopped.id.as_str()
            })
    });
    assert_eq!(line["executed"], "Suspended", "{line}");
    let (second, run) = stopped.next_instance().await;
    assert_eq!(run["attempts"], 2, "{run}");
    stopped.check(&second, &run).await;
    stopped.queue.delete().await;
}
