//! The service on the memory store, the scripted model and scripted tools: sessions, cancel,
//! approval gates and idempotency, end to end below HTTP.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aixrun::llm::{ChatRequest, Message};
use serde_json::{Map, Value, json};
use tokio_util::task::TaskTracker;

use super::*;
use crate::config::Agent;
use crate::run::model::{Answer, Scripted};
use crate::run::{AgentTool, BoxFuture, ToolReply, Tools};
use crate::store::memory::MemoryStore;

/// `echo` and `delete`, counting calls by name.
#[derive(Default)]
struct CountingTools(Mutex<HashMap<String, usize>>);

impl Tools for CountingTools {
    fn list<'a>(&'a self, _agent: &'a Agent) -> BoxFuture<'a, Result<Vec<AgentTool>, String>> {
        let tool = |name: &str, destructive: bool| AgentTool {
            name: name.into(),
            server: "tools".into(),
            tool: name.into(),
            description: name.into(),
            parameters: json!({"type": "object"}),
            timeout: Duration::from_secs(5),
            annotations: Some(json!({"destructiveHint": destructive})),
        };
        Box::pin(async move { Ok(vec![tool("echo", false), tool("delete", true)]) })
    }

    fn call<'a>(
        &'a self,
        tool: &'a AgentTool,
        arguments: Map<String, Value>,
        _timeout: Duration,
        _key: &'a str,
    ) -> BoxFuture<'a, ToolReply> {
        *self.0.lock().unwrap().entry(tool.name.clone()).or_default() += 1;
        Box::pin(async move {
            ToolReply {
                text: format!("done by {}: {}", tool.name, Value::Object(arguments)),
                is_error: false,
            }
        })
    }
}

const YAML: &str = "model_services:\n  - {name: m, provider: ollama, model: fake}\nmcp_servers:\n  - {name: tools, transport: grpc, address: 127.0.0.1:1}\nagents:\n  - name: a\n    role: react\n    model: m\n    prompt: a\n    mcp_servers: [tools]\n    approval: {annotations: [destructiveHint], timeout: 1s}\n";

/// The last message's text, and whether any earlier user message says `needle`.
fn last(r: &ChatRequest) -> String {
    match r.messages.last() {
        Some(Message::User(t)) | Some(Message::Tool { content: t, .. }) => t.clone(),
        _ => String::new(),
    }
}

fn script(r: &ChatRequest) -> Answer {
    let last = last(r);
    if last.starts_with("delete ") {
        return Answer::Calls(vec![("delete".into(), json!({"what": "x"}))]);
    }
    if last.starts_with("remember") {
        return Answer::Text("noted".into());
    }
    if last.starts_with("what did I say") {
        // The session's earlier turn is in the messages.
        let said = r
            .messages
            .iter()
            .any(|m| matches!(m, Message::User(t) if t == "remember 42"));
        return Answer::Text(if said { "you said 42" } else { "nothing" }.into());
    }
    Answer::Text(format!("after: {last}"))
}

fn service() -> (Arc<RunService>, Arc<CountingTools>, Arc<Scripted>) {
    let model = Arc::new(Scripted::new(script));
    let tools = Arc::new(CountingTools::default());
    let engine = Arc::new(
        Engine::in_process(YAML, tools.clone(), Arc::new(model.clone()))
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let service = Arc::new(RunService::new(
        engine,
        Arc::new(MemoryStore::new(100)),
        TaskTracker::new(),
        aixrun::server::Shutdown::default(),
        Duration::from_secs(30),
    ));
    (service, tools, model)
}

fn request(service: &RunService, body: Value) -> RunRequest {
    let Value::Object(fields) = body else {
        panic!()
    };
    RunRequest::parse(&service.engine.orchestration, &fields).unwrap()
}

async fn until(service: &RunService, id: &str, done: impl Fn(RunStatus) -> bool) -> RunRecord {
    for _ in 0..200 {
        let record = service.get(id).await.unwrap();
        if done(record.status) {
            return record;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("run {id} never got there: {:?}", service.get(id).await);
}

#[tokio::test]
async fn an_approved_call_is_made_once_and_a_denied_one_reaches_the_model_as_an_error() {
    let (service, tools, _) = service();
    for (verdict, expected) in [("approve", 1), ("deny", 0)] {
        tools.0.lock().unwrap().clear();
        let (run, new) = service
            .submit(&request(&service, json!({"input": "delete x"})), None, None)
            .await
            .unwrap();
        assert!(new);
        service.dispatch(&run.run_id).await.unwrap();
        let paused = until(&service, &run.run_id, |s| {
            s == RunStatus::Stopped(Status::InputRequired)
        })
        .await;
        let pending = paused.result.unwrap().pending;
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].tool, "delete");
        assert_eq!(
            tools.0.lock().unwrap().get("delete"),
            None,
            "nothing ran before approval"
        );
        // Resuming a run that is not paused: 409.
        let ids = vec![pending[0].approval_id.clone()];
        let (approve, deny) = if verdict == "approve" {
            (ids, Vec::new())
        } else {
            (Vec::new(), ids)
        };
        service
            .resume(&run.run_id, &approve, &deny, Some("not today".into()))
            .await
            .unwrap();
        service.dispatch(&run.run_id).await.unwrap();
        let done = until(&service, &run.run_id, RunStatus::is_final).await;
        let events = service.store.events(&run.run_id, None, 100).await.unwrap();
        assert_eq!(
            done.status,
            RunStatus::Stopped(Status::Completed),
            "{verdict} {:#?}",
            events
                .iter()
                .filter_map(|e| match &e.event {
                    crate::run::Event::RunFinished(s) =>
                        Some((e.seq, s.status, s.error.clone(), e.at.clone())),
                    _ => None,
                })
                .collect::<Vec<_>>()
        );
        assert_eq!(
            tools.0.lock().unwrap().get("delete").copied().unwrap_or(0),
            expected
        );
        let output = done.result.unwrap().output;
        if verdict == "deny" {
            assert_eq!(output, "after: a reviewer denied this call: not today");
        } else {
            assert!(
                output
                    .as_str()
                    .unwrap()
                    .starts_with("after: done by delete"),
                "{output}"
            );
        }
        let err = service
            .resume(&run.run_id, &[], &[], None)
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Conflict);
    }
}

#[tokio::test]
async fn a_paused_run_past_its_approval_timeout_is_cancelled() {
    let (service, _, _) = service();
    let (run, _) = service
        .submit(&request(&service, json!({"input": "delete x"})), None, None)
        .await
        .unwrap();
    service.dispatch(&run.run_id).await.unwrap();
    until(&service, &run.run_id, |s| {
        s == RunStatus::Stopped(Status::InputRequired)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let record = service.get(&run.run_id).await.unwrap();
    assert_eq!(record.status, RunStatus::Stopped(Status::Cancelled));
    assert!(
        record
            .result
            .unwrap()
            .error
            .unwrap()
            .contains("approval.timeout")
    );
}

#[tokio::test]
async fn a_session_remembers_its_turns_and_takes_one_run_at_a_time() {
    let (service, _, _) = service();
    let turn = |input: &str| json!({"input": input, "session_id": "s1"});
    let (first, _) = service
        .submit(&request(&service, turn("remember 42")), None, None)
        .await
        .unwrap();
    // While the first holds the session, a second is refused with its id.
    let busy = service
        .submit(&request(&service, turn("what did I say?")), None, None)
        .await
        .unwrap_err();
    assert_eq!(busy.kind, ErrorKind::Conflict);
    assert!(busy.message.contains(&first.run_id));
    service.dispatch(&first.run_id).await.unwrap();
    until(&service, &first.run_id, RunStatus::is_final).await;
    let (second, _) = service
        .submit(&request(&service, turn("what did I say?")), None, None)
        .await
        .unwrap();
    service.dispatch(&second.run_id).await.unwrap();
    let done = until(&service, &second.run_id, RunStatus::is_final).await;
    assert_eq!(done.result.unwrap().output, "you said 42");
    let session = service.session("s1").await.unwrap().unwrap();
    assert_eq!(session.turns.len(), 2);
    assert_eq!(session.active_run, None);
}

#[tokio::test]
async fn an_idempotency_key_gives_the_same_run_and_cancel_ends_an_idle_one() {
    let (service, _, _) = service();
    let body = json!({"input": "hello"});
    let (a, new_a) = service
        .submit(&request(&service, body.clone()), Some("k1"), None)
        .await
        .unwrap();
    let (b, new_b) = service
        .submit(&request(&service, body), Some("k1"), None)
        .await
        .unwrap();
    assert_eq!((a.run_id.clone(), new_a, new_b), (b.run_id, true, false));
    // Never dispatched: cancel ends it here.
    let cancelled = service.cancel(&a.run_id).await.unwrap();
    assert_eq!(cancelled.status, RunStatus::Stopped(Status::Cancelled));
    let again = service.cancel(&a.run_id).await.unwrap_err();
    assert_eq!(again.kind, ErrorKind::Conflict);
    assert_eq!(
        service.cancel("nope").await.unwrap_err().kind,
        ErrorKind::NotFound
    );
}
