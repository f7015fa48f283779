//! A durable run stopped mid-walk (its future dropped, as a crash drops it) and resumed from
//! what it committed: completed steps, model turns and tool calls are not made again, and the
//! events go on from the next number.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aixrun::llm::{ChatRequest, Message};
use serde_json::{Map, Value, json};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::model::{Answer, Scripted};
use super::*;
use crate::config::Agent;

/// What a store would keep: the events and the journal.
#[derive(Default)]
struct Saved {
    events: Vec<Envelope>,
    journal: HashMap<String, Value>,
    commits: usize,
}

struct MemPersist(Arc<Mutex<Saved>>);

impl Persist for MemPersist {
    fn commit(
        &self,
        events: Vec<Envelope>,
        entries: Vec<(String, Value)>,
    ) -> BoxFuture<'_, Result<(), String>> {
        let mut saved = self.0.lock().unwrap();
        saved.events.extend(events);
        saved.journal.extend(entries);
        saved.commits += 1;
        Box::pin(async { Ok(()) })
    }
}

/// `echo`, counting calls by text; a call whose text is `hang_on` hangs (after saying so)
/// while `hang` is set.
struct GatedTools {
    calls: Mutex<HashMap<String, usize>>,
    hang_on: &'static str,
    hang: std::sync::atomic::AtomicBool,
    reached: Notify,
}

impl Tools for GatedTools {
    fn list<'a>(&'a self, _agent: &'a Agent) -> BoxFuture<'a, Result<Vec<AgentTool>, String>> {
        Box::pin(async { Ok(vec![Echo::tool()]) })
    }

    fn call<'a>(
        &'a self,
        _tool: &'a AgentTool,
        arguments: Map<String, Value>,
        _timeout: Duration,
        _key: &'a str,
    ) -> BoxFuture<'a, ToolReply> {
        Box::pin(async move {
            let text = arguments["text"].as_str().unwrap_or_default().to_owned();
            *self.calls.lock().unwrap().entry(text.clone()).or_default() += 1;
            if text == self.hang_on && self.hang.load(std::sync::atomic::Ordering::SeqCst) {
                self.reached.notify_one();
                std::future::pending::<()>().await;
            }
            ToolReply {
                text,
                is_error: false,
            }
        })
    }
}

const YAML: &str = "model_services:\n  - {name: m, provider: ollama, model: fake}\nagents:\n  - {name: a, role: react, model: m, prompt: a, outputs: [{target: b}]}\n  - {name: b, role: react, model: m, prompt: b}\n";

fn script(r: &ChatRequest) -> Answer {
    let system = match r.messages.first() {
        Some(Message::System(s)) => s.as_str(),
        _ => "",
    };
    match (system, r.messages.len()) {
        ("a", 2) => Answer::Calls(vec![("echo".into(), json!({"text": "from a"}))]),
        ("a", _) => Answer::Text("a done".into()),
        ("b", 2) => Answer::Calls(vec![("echo".into(), json!({"text": "from b"}))]),
        (_, _) => Answer::Text("b done".into()),
    }
}

#[tokio::test]
async fn a_resumed_run_repeats_no_completed_step_turn_or_tool_call() {
    let model = Arc::new(Scripted::new(script));
    let tools = Arc::new(GatedTools {
        calls: Mutex::new(HashMap::new()),
        hang_on: "from b",
        hang: true.into(),
        reached: Notify::new(),
    });
    let engine = Engine::in_process(YAML, tools.clone(), Arc::new(model.clone())).unwrap();
    let saved = Arc::new(Mutex::new(Saved::default()));
    let budget = Budget::default();
    let spec = RunSpec {
        run_id: run_id(),
        workflow: "default".into(),
        input: Value::String("q".into()),
        budget,
        deadline: Instant::now() + budget.wall_time,
    };
    let stop = || Interruptions {
        cancel: CancellationToken::new(),
        shutdown: aixrun::server::Shutdown::default(),
    };
    let continuity = |saved: &Arc<Mutex<Saved>>| {
        let s = saved.lock().unwrap();
        Continuity {
            journal: Journal::durable(s.journal.clone(), Arc::new(MemPersist(saved.clone()))),
            past: s.events.clone(),
            history: Vec::new(),
        }
    };

    // The first attempt dies while b's tool call is in flight.
    let first = engine.attempt(spec.clone(), None, stop(), continuity(&saved), None);
    tokio::select! {
        _ = first => panic!("the first attempt should not end"),
        () = tools.reached.notified() => {}
    }
    let before = saved.lock().unwrap().events.len();
    assert!(before > 0, "the first attempt committed its events");

    // The second goes on from the journal.
    tools.hang.store(false, std::sync::atomic::Ordering::SeqCst);
    let Attempt::Finished(result) = engine
        .attempt(spec.clone(), None, stop(), continuity(&saved), None)
        .await
    else {
        panic!("the second attempt should finish");
    };
    assert_eq!(result.summary.status, Status::Completed, "{result:#?}");
    assert_eq!(result.summary.output, "b done");

    let calls = tools.calls.lock().unwrap().clone();
    assert_eq!(
        calls["from a"], 1,
        "a's completed tool call was not made again"
    );
    assert_eq!(
        calls["from b"], 2,
        "b's call was in flight at the crash: made again"
    );
    // a: two turns; b: its first turn (answered before the crash), then its second.
    assert_eq!(
        model.requests().len(),
        4,
        "no answered turn was asked again"
    );

    let events = saved.lock().unwrap().events.clone();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (0..events.len() as u64).collect::<Vec<_>>(),
        "one gapless stream"
    );
    let started = |agent: &str| {
        events
            .iter()
            .filter(|e| matches!(&e.event, Event::AgentStarted { agent: a, .. } if a == agent))
            .count()
    };
    assert_eq!(
        (started("a"), started("b")),
        (1, 1),
        "each step started once"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e.event, Event::RunStarted { .. }))
            .count(),
        1
    );
    assert!(matches!(
        events.last().unwrap().event,
        Event::RunFinished(_)
    ));
    assert_eq!(result.summary.usage.model_calls, 4);
}

#[tokio::test]
async fn a_suspended_attempt_commits_and_the_next_finishes() {
    let model = Arc::new(Scripted::new(script).with_latency(Duration::from_millis(30)));
    let tools = Arc::new(GatedTools {
        calls: Mutex::new(HashMap::new()),
        hang_on: "",
        hang: false.into(),
        reached: Notify::new(),
    });
    let engine = Engine::in_process(YAML, tools.clone(), Arc::new(model.clone())).unwrap();
    let saved = Arc::new(Mutex::new(Saved::default()));
    let budget = Budget::default();
    let spec = RunSpec {
        run_id: run_id(),
        workflow: "default".into(),
        input: Value::String("q".into()),
        budget,
        deadline: Instant::now() + budget.wall_time,
    };
    let mut attempts = 0;
    let result = loop {
        attempts += 1;
        assert!(attempts < 20, "the run never finished");
        let continuity = {
            let s = saved.lock().unwrap();
            Continuity {
                journal: Journal::durable(s.journal.clone(), Arc::new(MemPersist(saved.clone()))),
                past: s.events.clone(),
                history: Vec::new(),
            }
        };
        let stop = Interruptions {
            cancel: CancellationToken::new(),
            shutdown: aixrun::server::Shutdown::default(),
        };
        // Each attempt has 45 ms: about one model turn.
        let suspend_at = Some(Instant::now() + Duration::from_millis(45));
        match engine
            .attempt(spec.clone(), None, stop, continuity, suspend_at)
            .await
        {
            Attempt::Finished(result) => break result,
            Attempt::Suspended => {}
        }
    };
    assert!(attempts > 2, "it took several attempts ({attempts})");
    assert_eq!(result.summary.status, Status::Completed, "{result:#?}");
    assert_eq!(result.summary.output, "b done");
    assert_eq!(tools.calls.lock().unwrap()["from a"], 1);
    let events = saved.lock().unwrap().events.clone();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (0..events.len() as u64).collect::<Vec<_>>());
}
