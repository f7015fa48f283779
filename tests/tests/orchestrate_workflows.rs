//! The shipped workflows of `examples/` through the real orchestrate binary, each started on
//! the example file as it is (its `${ORCHESTRATE_MODEL}` pointed at a loopback Ollama,
//! `e2e::model`, whose answers are picked by the request's system prompt, since parallel
//! branches ask in no fixed order): JSON and SSE runs with their step trees, a classifier's
//! route, an aggregator's tally, a planner's plan and a supervisor's rounds; branches running
//! at the same time; a client's disconnect and a deadline during a fan-out; and the graph's
//! configuration errors, one line each with file:line:column and exit code 2.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use e2e::mcp::config_file;
use e2e::model::{FakeModel, Reply, Responder, last_message, output_schema, system_prompt};
use e2e::orchestrate::{example, post_run, spawn_example, stream_run, wait_until};
use e2e::sse::{SseEvent, SseReader};
use e2e::upstream::Upstream;
use e2e::{TempDir, TestApp, clients, formats};
use serde_json::{Value, json};

/// Replies by the start of the request's system prompt; a request no entry matches gets a 500
/// naming its prompt, which fails the step visibly.
fn by_prompt(table: Vec<(&'static str, Reply)>) -> impl Fn(&Value) -> Reply + Send + Sync {
    move |request| {
        let prompt = system_prompt(request);
        table
            .iter()
            .find(|(start, _)| prompt.starts_with(start))
            .map_or_else(
                || Reply::Error(500, format!("no reply scripted for {prompt:?}"), Vec::new()),
                |(_, reply)| reply.clone(),
            )
    }
}

/// The requests whose system prompt starts with `start`.
fn asked(model: &FakeModel, start: &str) -> Vec<Value> {
    model
        .requests()
        .into_iter()
        .filter(|r| system_prompt(r).starts_with(start))
        .collect()
}

async fn workflow_graph(app: &TestApp) -> Value {
    let body: Value = clients::http1()
        .get(app.url("/v1/workflows"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["workflows"][0].clone()
}

/// The step tree of a result (or of `run.finished`): each step as (agent, its parent's agent,
/// branch), parents resolved through their step ids, in the order the steps started.
fn tree(result: &Value) -> Vec<(String, Option<String>, Option<String>)> {
    let steps = result["steps"].as_array().expect("steps");
    let agent_of = |id: &Value| {
        steps
            .iter()
            .find(|s| &s["step_id"] == id)
            .map(|s| s["agent"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("parent {id} is no step of {result}"))
    };
    steps
        .iter()
        .map(|s| {
            (
                s["agent"].as_str().unwrap().to_owned(),
                s.get("parent_step_id").map(agent_of),
                s["branch"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// The step of `agent` (the first, when it ran several times).
fn step<'a>(result: &'a Value, agent: &str) -> &'a Value {
    result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["agent"] == agent)
        .unwrap_or_else(|| panic!("no step of {agent}: {result}"))
}

fn owned(
    tree: &[(&str, Option<&str>, Option<&str>)],
) -> Vec<(String, Option<String>, Option<String>)> {
    tree.iter()
        .map(|(a, p, b)| ((*a).to_owned(), p.map(str::to_owned), b.map(str::to_owned)))
        .collect()
}

/// Checks a whole event stream's envelopes and its step tree, and returns `run.finished`'s
/// data. Every event's `data` is `{run_id, seq, at, step_id?, parent_step_id?, type, ...}`: one
/// run id, `seq` from 0 without gaps and equal to the SSE `id`, `type` the SSE event name,
/// `at` RFC 3339. Each step starts once with `agent.started` (its id, parent and branch) and
/// ends once with `agent.finished`; every step event names a started step and its parent; and
/// the tree the events draw is the one `run.finished` reports.
fn check_stream(events: &[SseEvent]) -> Value {
    assert_eq!(
        events.first().map(|e| e.event.as_str()),
        Some("run.started")
    );
    let last = events.last().expect("events");
    assert_eq!(last.event, "run.finished", "run.finished comes last");
    let run_id = events[0].data["run_id"]
        .as_str()
        .expect("run_id")
        .to_owned();
    assert!(run_id.starts_with("run-"), "{run_id}");
    // (step_id, agent, parent_step_id, branch) in the order the steps started.
    let mut started: Vec<(String, String, Option<String>, Option<String>)> = Vec::new();
    let mut finished: Vec<String> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let d = &e.data;
        assert_eq!(d["run_id"], run_id.as_str(), "{d}");
        assert_eq!(d["seq"], i as u64, "seq from 0 without gaps: {d}");
        assert_eq!(e.id.as_deref(), Some(i.to_string().as_str()), "{d}");
        assert_eq!(d["type"], e.event.as_str(), "{d}");
        assert!(
            formats::is_rfc3339(d["at"].as_str().unwrap_or_default()),
            "{d}"
        );
        let id = d["step_id"].as_str().map(str::to_owned);
        let parent = d["parent_step_id"].as_str().map(str::to_owned);
        match e.event.as_str() {
            "run.started" | "run.finished" => {
                assert!(
                    id.is_none() && parent.is_none(),
                    "a run event has no step: {d}"
                );
            }
            "agent.started" => {
                let id = id.expect("agent.started has its step_id");
                assert!(!started.iter().any(|s| s.0 == id), "started twice: {d}");
                if let Some(p) = &parent {
                    assert!(started.iter().any(|s| &s.0 == p), "unknown parent: {d}");
                }
                let branch = d["branch"].as_str().map(str::to_owned);
                started.push((id, d["agent"].as_str().unwrap().to_owned(), parent, branch));
            }
            _ => {
                let id = id.unwrap_or_else(|| panic!("{} has a step_id: {d}", e.event));
                let s = started
                    .iter()
                    .find(|s| s.0 == id)
                    .unwrap_or_else(|| panic!("{} of a step never started: {d}", e.event));
                assert_eq!(parent, s.2, "the step's parent, on each of its events: {d}");
                assert_eq!(d["agent"], s.1.as_str(), "{d}");
                assert!(
                    !finished.contains(&id),
                    "an event after agent.finished: {d}"
                );
                if e.event == "agent.finished" {
                    finished.push(id);
                }
            }
        }
    }
    assert_eq!(finished.len(), started.len(), "every step ends once");
    let summary = last.data.clone();
    let steps: Vec<(String, String, Option<String>, Option<String>)> = summary["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["step_id"].as_str().unwrap().to_owned(),
                s["agent"].as_str().unwrap().to_owned(),
                s["parent_step_id"].as_str().map(str::to_owned),
                s["branch"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(steps, started, "run.finished's tree is the events' tree");
    summary
}

async fn stream(app: &TestApp, body: Value) -> Vec<SseEvent> {
    SseReader::new(stream_run(app, body).await).all().await
}

fn named<'a>(events: &'a [SseEvent], name: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e.event == name)
        .map(|e| &e.data)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// router.yaml: a classifier sends each request to one of two specialists.

const BILLING: &str = "You answer billing questions";
const SUPPORT: &str = "You answer product support";
const CLASSIFY: &str = "Classify the user's message";

fn router_model(category: &'static str, confidence: f64) -> FakeModel {
    FakeModel::ollama_responder(Responder::new(by_prompt(vec![
        (
            CLASSIFY,
            Reply::json(&json!({"category": category, "confidence": confidence,
                                "reasoning": "it is about money"})),
        ),
        (BILLING, Reply::text("A refund is on its way.")),
        (SUPPORT, Reply::text("Restart the app and try again.")),
    ])))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_routes_by_the_models_category_to_that_specialist() {
    let model = router_model("billing", 0.9);
    let app = spawn_example("router", &model, &[]);
    let graph = workflow_graph(&app).await;
    assert_eq!(graph["entries"], json!(["router"]), "{graph}");
    assert_eq!(
        graph["edges"],
        json!([{"from": "router", "to": "billing", "when": "billing"},
               {"from": "router", "to": "support", "when": "support"}]),
        "{graph}"
    );
    assert_eq!(
        graph["agents"][0]["classifier_config"]["fallback"],
        "support"
    );

    let (status, result) = post_run(&app, json!({"input": "I was charged twice"})).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["status"], "completed", "{result}");
    assert_eq!(result["output"], "A refund is on its way.");
    assert_eq!(
        tree(&result),
        owned(&[("router", None, None), ("billing", None, Some("billing"))]),
        "{result}"
    );
    let router = step(&result, "router");
    assert_eq!(
        router["decisions"],
        json!([{"kind": "route", "categories": ["billing"], "confidence": 0.9,
                "reasoning": "it is about money", "by": "model"}]),
        "{result}"
    );
    assert_eq!(router["status"], "completed");
    assert_eq!(router["finish_reason"], "stop");
    assert_eq!(router["usage"]["model_calls"], 1);
    assert_eq!(result["usage"]["model_calls"], 2);
    // The classifier asked for a structured answer constrained to the category names, in
    // Ollama's `format`; the specialist was given the input unchanged; support never ran.
    let classify = &asked(&model, CLASSIFY)[0];
    let schema = output_schema(classify).expect("a structured request");
    assert_eq!(
        schema["properties"]["category"]["enum"],
        json!(["billing", "support"])
    );
    assert_eq!(last_message(classify), "I was charged twice");
    assert_eq!(
        last_message(&asked(&model, BILLING)[0]),
        "I was charged twice"
    );
    assert!(asked(&model, SUPPORT).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_streams_a_keyword_route_without_a_model_call_and_a_fallback_route() {
    // Below the example's threshold (0.6): the route is the fallback, support.
    let model = router_model("billing", 0.3);
    let app = spawn_example("router", &model, &[]);

    // "refund" is a billing keyword, and only billing's: routed without asking the model.
    let events = stream(&app, json!({"input": "Where is my refund?"})).await;
    let end = check_stream(&events);
    assert_eq!(end["status"], "completed", "{end}");
    assert_eq!(end["output"], "A refund is on its way.");
    assert!(asked(&model, CLASSIFY).is_empty(), "no model call to route");
    let decided = named(&events, "agent.decided");
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["agent"], "router");
    assert_eq!(
        decided[0]["decision"],
        json!({"kind": "route", "categories": ["billing"], "confidence": 1.0, "by": "keywords"})
    );
    let router = step(&end, "router");
    assert_eq!(router["usage"]["model_calls"], 0, "{end}");
    assert_eq!(router["usage"]["input_tokens"], 0, "{end}");
    let started = named(&events, "agent.started");
    assert_eq!(started[1]["agent"], "billing");
    assert_eq!(started[1]["branch"], "billing");
    // The specialist's answer streams; the classifier's does not (it is a decision).
    let deltas: String = named(&events, "message.delta")
        .iter()
        .map(|d| {
            assert_eq!(d["agent"], "billing", "{d}");
            d["delta"].as_str().unwrap()
        })
        .collect();
    assert_eq!(deltas, "A refund is on its way.");

    // No keyword: the model is asked, answers billing at 0.3, and the run takes the fallback.
    let events = stream(&app, json!({"input": "I was charged twice"})).await;
    let end = check_stream(&events);
    assert_eq!(end["status"], "completed", "{end}");
    assert_eq!(end["output"], "Restart the app and try again.");
    assert_eq!(
        tree(&end),
        owned(&[("router", None, None), ("support", None, Some("support"))])
    );
    let decision = &step(&end, "router")["decisions"][0];
    assert_eq!(decision["by"], "fallback", "{end}");
    assert_eq!(decision["categories"], json!(["support"]));
    assert_eq!(decision["confidence"], 0.3);
    let calls = named(&events, "model.call");
    assert_eq!(calls.len(), 2, "the classifier's and support's");
    for call in &calls {
        assert_eq!(call["status"], "ok", "{call}");
        assert_eq!(call["provider"], "ollama", "{call}");
        assert_eq!(call["finish_reason"], "stop", "{call}");
    }
}

// ---------------------------------------------------------------------------------------------
// parallel-research.yaml: three researchers at once, then a consensus aggregator.

const OPTIMIST: &str = "Research the question and give the strongest case for yes";
const SKEPTIC: &str = "Research the question and give the strongest case for no";
const SCIENTIST: &str = "Summarise what the evidence says";
const EDITOR: &str = "You are an editor";
const RESEARCHERS: [&str; 3] = ["optimist", "skeptic", "scientist"];

fn research_replies(skeptic: Reply, editor: Reply) -> Vec<(&'static str, Reply)> {
    vec![
        (OPTIMIST, Reply::text("Coffee lowers the risk of diabetes.")),
        (SKEPTIC, skeptic),
        (SCIENTIST, Reply::text("Moderate coffee is fine for most.")),
        (EDITOR, editor),
    ]
}

fn consensus() -> Reply {
    Reply::json(
        &json!({"answer": "Moderate coffee is healthy for most adults.",
                        "disagreements": ["how much sleep it costs"]}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_research_runs_its_branches_at_once_and_synthesises_them() {
    // Each answer waits until the three researchers' requests are in flight together: they
    // can only be if the engine sends them at the same time.
    let model = FakeModel::ollama_responder(
        Responder::new(by_prompt(research_replies(
            Reply::text("Coffee disturbs sleep."),
            consensus(),
        )))
        .together(3),
    );
    let app = spawn_example("parallel-research", &model, &[]);
    let graph = workflow_graph(&app).await;
    assert_eq!(graph["entries"], json!(RESEARCHERS), "{graph}");
    assert_eq!(graph["exit"], "synthesis", "{graph}");
    assert_eq!(graph["edges"].as_array().unwrap().len(), 3, "{graph}");

    let (status, result) = post_run(&app, json!({"input": "Is coffee healthy?"})).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["status"], "completed", "{result}");
    assert_eq!(
        result["output"],
        "Moderate coffee is healthy for most adults."
    );
    assert_eq!(model.max_in_flight(), 3, "the three branches overlapped");
    // Three branches (in any order), each on its own branch, then the aggregator.
    let mut shape = tree(&result);
    assert_eq!(
        shape.pop(),
        Some(("synthesis".to_owned(), None, None)),
        "{result}"
    );
    let branches: BTreeSet<_> = shape.into_iter().collect();
    let expected: BTreeSet<_> = RESEARCHERS
        .iter()
        .map(|a| ((*a).to_owned(), None, Some((*a).to_owned())))
        .collect();
    assert_eq!(branches, expected, "{result}");
    let ids: BTreeSet<&str> = result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4, "each step its own id: {result}");
    let synthesis = step(&result, "synthesis");
    assert_eq!(
        synthesis["decisions"],
        json!([{"kind": "tally", "strategy": "consensus", "outcome": "merged",
                "disagreements": ["how much sleep it costs"]}]),
        "{result}"
    );
    // The editor read the three answers, by researcher.
    let editor = &asked(&model, EDITOR)[0];
    let read = last_message(editor);
    for (agent, answer) in [
        ("optimist", "Coffee lowers the risk of diabetes."),
        ("skeptic", "Coffee disturbs sleep."),
        ("scientist", "Moderate coffee is fine for most."),
    ] {
        assert!(
            read.contains(&format!("Answer of {agent}:\n{answer}")),
            "{read}"
        );
    }
    assert!(
        output_schema(editor).is_some(),
        "consensus is a structured answer"
    );
    assert_eq!(result["usage"]["model_calls"], 4, "{result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_research_streams_on_without_a_failed_researcher_and_names_it() {
    let model = FakeModel::ollama_responder(Responder::new(by_prompt(research_replies(
        Reply::Error(500, "the skeptic's GPU fell over".into(), Vec::new()),
        consensus(),
    ))));
    let app = spawn_example("parallel-research", &model, &[]);
    let events = stream(&app, json!({"input": "Is coffee healthy?"})).await;
    let end = check_stream(&events);
    // `on_error: continue` on the researchers: the run goes on with the two that answered.
    assert_eq!(end["status"], "completed", "{end}");
    assert_eq!(end["output"], "Moderate coffee is healthy for most adults.");
    let skeptic = step(&end, "skeptic");
    assert_eq!(skeptic["status"], "failed", "{end}");
    assert!(
        skeptic["error"].as_str().unwrap().contains("GPU fell over"),
        "{end}"
    );
    let failed_call = named(&events, "model.call")
        .into_iter()
        .find(|c| c["agent"] == "skeptic")
        .expect("the skeptic's call is reported");
    assert_ne!(failed_call["status"], "ok", "{failed_call}");
    let tally = &step(&end, "synthesis")["decisions"][0];
    assert_eq!(tally["failed"][0]["agent"], "skeptic", "{end}");
    assert_eq!(tally["outcome"], "merged");
    let read = last_message(&asked(&model, EDITOR)[0]).to_owned();
    assert!(
        read.contains("skeptic failed:"),
        "the editor is told: {read}"
    );
    assert!(read.contains("Answer of optimist:"), "{read}");
    // Each agent.finished carries the step's summary: status, finish_reason, usage.
    for finished in named(&events, "agent.finished") {
        if finished["agent"] == "skeptic" {
            continue;
        }
        assert_eq!(finished["status"], "completed", "{finished}");
        assert_eq!(finished["finish_reason"], "stop", "{finished}");
        assert_eq!(finished["usage"]["model_calls"], 1, "{finished}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_research_fails_when_its_aggregator_fails() {
    // The editor never gives the answer's shape (twice): the exit fails, and so does the run,
    // whatever the researchers' `on_error: continue` tolerates upstream of it.
    let model = FakeModel::ollama_responder(Responder::new(by_prompt(research_replies(
        Reply::text("Coffee disturbs sleep."),
        Reply::text("They mostly agree."),
    ))));
    let app = spawn_example("parallel-research", &model, &[]);
    let (_, result) = post_run(&app, json!({"input": "Is coffee healthy?"})).await;
    assert_eq!(step(&result, "synthesis")["status"], "failed", "{result}");
    assert_eq!(result["status"], "failed", "{result}");
    let error = result["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("agent synthesis: ") && error.contains("JSON Schema"),
        "{result}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_research_fails_when_every_researcher_does() {
    // Nothing reaches the aggregator, which cannot run: the run has no answer to give.
    let down = Reply::Error(500, "down".into(), Vec::new());
    let model = FakeModel::ollama_responder(Responder::new(by_prompt(vec![
        (OPTIMIST, down.clone()),
        (SKEPTIC, down.clone()),
        (SCIENTIST, down),
    ])));
    let app = spawn_example("parallel-research", &model, &[]);
    let (_, result) = post_run(&app, json!({"input": "Is coffee healthy?"})).await;
    assert_eq!(result["status"], "failed", "{result}");
    let error = result["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("synthesis never ran"), "{result}");
    assert!(
        result["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["agent"] != "synthesis" && s["status"] == "failed"),
        "{result}"
    );
}

/// The researchers stream for ever; the editor is never reached.
fn endless_research() -> FakeModel {
    let endless = Reply::Endless(Duration::from_millis(20));
    FakeModel::ollama_responder(Responder::new(by_prompt(vec![
        (OPTIMIST, endless.clone()),
        (SKEPTIC, endless.clone()),
        (SCIENTIST, endless),
    ])))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_during_a_fan_out_cancels_every_branch() {
    let model = endless_research();
    let app = spawn_example("parallel-research", &model, &[]);
    let mut reader = SseReader::new(stream_run(&app, json!({"input": "Is coffee healthy?"})).await);
    // Read until each of the three branches has streamed some of its answer, then go away.
    let mut streaming = BTreeSet::new();
    while streaming.len() < 3 {
        let e = reader.next().await.expect("the stream ended early");
        if e.event == "message.delta" {
            streaming.insert(e.data["step_id"].as_str().unwrap().to_owned());
        }
    }
    drop(reader);
    // Each branch's model stream is closed: the fake sees three connections hang up.
    wait_until(
        || model.hung_up() == 3,
        "a branch's model stream outlived its client",
    )
    .await;
    let line = tokio::task::block_in_place(|| {
        app.wait_for_log("the run's end", |v| v["message"] == "run finished")
    });
    assert_eq!(line["status"], "cancelled", "{line}");
    assert!(asked(&model, EDITOR).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_during_a_fan_out_ends_the_run_with_each_branchs_partial_output() {
    let model = endless_research();
    let app = spawn_example("parallel-research", &model, &[]);
    let (status, result) = post_run(
        &app,
        json!({"input": "Is coffee healthy?", "deadline_ms": 1500}),
    )
    .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["status"], "deadline", "{result}");
    // The exit never ran: the output is the branches' outputs so far, by agent.
    let output = result["output"].as_object().expect("an object by agent");
    assert_eq!(
        output.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        RESEARCHERS.into_iter().collect(),
        "{result}"
    );
    for (agent, text) in output {
        assert!(
            text.as_str().unwrap().starts_with("more "),
            "{agent}: {result}"
        );
        let s = step(&result, agent);
        assert_eq!(s["status"], "deadline", "{result}");
        // Cut off: its tokens are counted from the text streamed, and marked so.
        assert_eq!(s["usage"]["estimated"], true, "{result}");
        assert_eq!(s["usage"]["model_calls"], 1, "{result}");
        assert!(
            s["usage"]["output_tokens"].as_u64().unwrap() > 0,
            "{result}"
        );
    }
    assert_eq!(result["usage"]["estimated"], true, "{result}");
    wait_until(
        || model.hung_up() == 3,
        "a branch's model stream outlived the deadline",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// vote.yaml: three reviewers with a structured verdict, counted without a model.

const CAUTIOUS: &str = "You review proposals and care most about risk";
const PRAGMATIC: &str = "You review proposals and care most about shipping";
const CUSTOMER: &str = "You review proposals as the customer";

fn verdict(v: &str) -> Reply {
    Reply::json(&json!({"verdict": v, "reason": format!("I say {v}")}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vote_counts_the_reviewers_verdicts_without_a_model() {
    let model = FakeModel::ollama_responder(
        Responder::new(by_prompt(vec![
            (CAUTIOUS, verdict("reject")),
            (PRAGMATIC, verdict("approve")),
            (CUSTOMER, verdict("approve")),
        ]))
        .together(3),
    );
    let app = spawn_example("vote", &model, &[]);
    let graph = workflow_graph(&app).await;
    assert_eq!(graph["exit"], "tally", "{graph}");
    let tally_node = &graph["agents"][3];
    assert_eq!(tally_node["model"], Value::Null, "{graph}");
    assert_eq!(tally_node["aggregator_config"]["vote_field"], "verdict");

    let (_, result) = post_run(&app, json!({"input": "Ship the release on Friday?"})).await;
    assert_eq!(result["status"], "completed", "{result}");
    assert_eq!(model.max_in_flight(), 3, "the three reviewers overlapped");
    assert_eq!(model.requests().len(), 3, "nobody asked a model to count");
    assert_eq!(result["output"]["outcome"], "winner", "{result}");
    assert_eq!(result["output"]["winner"], "approve", "{result}");
    let tally = &step(&result, "tally")["decisions"][0];
    assert_eq!(tally["kind"], "tally");
    assert_eq!(tally["strategy"], "voting_majority");
    assert_eq!(tally["outcome"], "winner");
    let counted = tally["tally"].as_array().unwrap();
    assert_eq!(counted[0]["value"], "approve", "{tally}");
    assert_eq!(counted[0]["votes"], 2);
    let mut sources: Vec<&str> = counted[0]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    sources.sort_unstable();
    assert_eq!(sources, ["customer", "pragmatic"]);
    assert_eq!(counted[1]["value"], "reject");
    assert_eq!(counted[1]["votes"], 1);
    let tally_step = step(&result, "tally");
    assert!(tally_step.get("model").is_none(), "{result}");
    assert_eq!(tally_step["usage"]["model_calls"], 0);
    // Each reviewer's answer was constrained to the example's verdict schema, and is its
    // step's output as JSON.
    for r in model.requests() {
        let schema = output_schema(&r).expect("structured");
        assert_eq!(
            schema["properties"]["verdict"]["enum"],
            json!(["approve", "reject"])
        );
    }
    assert_eq!(step(&result, "cautious")["output"]["verdict"], "reject");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vote_streams_the_retraction_of_an_answer_that_missed_its_schema() {
    // The customer's first answer is no verdict; its second is.
    let customer_calls = Arc::new(AtomicUsize::new(0));
    let calls = customer_calls.clone();
    let others = by_prompt(vec![
        (CAUTIOUS, verdict("approve")),
        (PRAGMATIC, verdict("reject")),
    ]);
    let model = FakeModel::ollama_responder(Responder::new(move |r| {
        if !system_prompt(r).starts_with(CUSTOMER) {
            return others(r);
        }
        match calls.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::text("Looks fine to me"),
            _ => verdict("approve"),
        }
    }));
    let app = spawn_example("vote", &model, &[]);
    let events = stream(&app, json!({"input": "Ship the release on Friday?"})).await;
    let end = check_stream(&events);
    assert_eq!(end["status"], "completed", "{end}");
    assert_eq!(end["output"]["winner"], "approve", "{end}");
    assert_eq!(customer_calls.load(Ordering::SeqCst), 2);
    let customer = step(&end, "customer");
    let id = customer["step_id"].as_str().unwrap();
    // The customer's text, as streamed: the first answer, its retraction, then the second.
    let of_customer: Vec<&SseEvent> = events.iter().filter(|e| e.data["step_id"] == id).collect();
    let retracted = of_customer
        .iter()
        .position(|e| e.event == "message.retracted")
        .expect("the first answer is retracted");
    let text = |events: &[&SseEvent]| -> String {
        events
            .iter()
            .filter(|e| e.event == "message.delta")
            .map(|e| e.data["delta"].as_str().unwrap())
            .collect()
    };
    assert_eq!(text(&of_customer[..retracted]), "Looks fine to me");
    let second: Value = serde_json::from_str(&text(&of_customer[retracted..])).unwrap();
    assert_eq!(second["verdict"], "approve");
    assert!(
        of_customer[retracted].data["reason"]
            .as_str()
            .unwrap()
            .contains("JSON Schema"),
        "{:?}",
        of_customer[retracted].data
    );
    // The step's output is the second answer only, and both calls are charged.
    assert_eq!(customer["output"]["verdict"], "approve", "{end}");
    assert_eq!(customer["usage"]["model_calls"], 2, "{end}");
    let decided = named(&events, "agent.decided");
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["decision"]["outcome"], "winner");
}

// ---------------------------------------------------------------------------------------------
// planner.yaml: a plan, each step a child step with its worker, then the answer.

const PLANNER: &str = "You plan small tasks";
const RESEARCHER: &str = "Researcher.";
const WRITER: &str = "Writer.";

/// A loopback Open-Meteo answering every request (geocoding and forecast alike) with one body
/// that both parse: `city` at 21.5 °C, clear sky.
fn open_meteo(city: &str) -> Upstream {
    let body = json!({
        "results": [{"name": city, "latitude": 52.52, "longitude": 13.41,
                     "country": "Germany", "timezone": "Europe/Berlin"}],
        "timezone": "Europe/Berlin",
        "current_units": {"temperature_2m": "°C", "wind_speed_10m": "km/h"},
        "current": {"time": "2026-12-07T12:00", "temperature_2m": 21.5,
                    "relative_humidity_2m": 40, "apparent_temperature": 21.0,
                    "weather_code": 0, "wind_speed_10m": 10.0}
    });
    Upstream::answering(
        "200 OK",
        "Content-Type: application/json\r\n",
        Box::leak(body.to_string().into_boxed_str()),
    )
}

/// `MCP_TOOL_CONFIG` for the examples' in-process tools: `get_weather` on `upstream`.
fn weather_config(dir: &TempDir, upstream: &Upstream) -> String {
    config_file(
        dir,
        &format!(
            "tools:\n  weather:\n    geocoding_url: {base}\n    forecast_url: {base}\n",
            base = upstream.base()
        ),
    )
}

/// A react worker: a weather call first, then an answer once it has the tool's result.
fn weather_worker(city: &'static str, answer: &'static str) -> impl Fn(&Value) -> Reply {
    move |r| {
        let has_result = r["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["role"] == "tool");
        if has_result {
            Reply::text(answer)
        } else {
            Reply::call("get_weather", json!({"location": city}))
        }
    }
}

fn plan(steps: Value) -> Reply {
    Reply::json(&json!({ "steps": steps }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planner_runs_each_step_of_its_plan_as_a_child_step_of_its_worker() {
    let weather = open_meteo("Berlin");
    let dir = TempDir::new();
    let config = weather_config(&dir, &weather);
    let researcher = weather_worker("Berlin", "Sunny, 21.5 °C in Berlin.");
    let model = FakeModel::ollama_responder(Responder::new(move |r| {
        let prompt = system_prompt(r);
        if prompt.starts_with(PLANNER) && output_schema(r).is_some() {
            plan(json!([
                {"description": "Check the weather in Berlin", "worker": "researcher"},
                {"description": "Write the day plan", "worker": "writer"}
            ]))
        } else if prompt.starts_with(PLANNER) {
            Reply::text("Walk in the Tiergarten: sunny, 21.5 °C.")
        } else if prompt.starts_with(RESEARCHER) {
            researcher(r)
        } else if prompt.starts_with(WRITER) {
            Reply::text("A walk in the Tiergarten, then lunch outside.")
        } else {
            Reply::Error(500, format!("unexpected {prompt:?}"), Vec::new())
        }
    }));
    let app = spawn_example("planner", &model, &[("MCP_TOOL_CONFIG", config.as_str())]);
    let graph = workflow_graph(&app).await;
    assert_eq!(graph["entries"], json!(["planner"]), "{graph}");
    let workers: BTreeSet<&str> = graph["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(workers, BTreeSet::from(["researcher", "writer"]), "{graph}");

    let (_, result) = post_run(
        &app,
        json!({"input": "Plan a day out in Berlin and check the weather there"}),
    )
    .await;
    assert_eq!(result["status"], "completed", "{result}");
    assert_eq!(result["output"], "Walk in the Tiergarten: sunny, 21.5 °C.");
    assert_eq!(
        tree(&result),
        owned(&[
            ("planner", None, None),
            ("researcher", Some("planner"), None),
            ("writer", Some("planner"), None),
        ]),
        "{result}"
    );
    let planner = step(&result, "planner");
    assert_eq!(
        planner["decisions"],
        json!([{"kind": "plan", "steps": [
            {"description": "Check the weather in Berlin", "worker": "researcher"},
            {"description": "Write the day plan", "worker": "writer"}
        ]}]),
        "{result}"
    );
    // The researcher called the in-process get_weather, which asked the loopback Open-Meteo.
    let calls = step(&result, "researcher")["tool_calls"]
        .as_array()
        .unwrap();
    assert_eq!(calls.len(), 1, "{result}");
    assert_eq!(calls[0]["name"], "get_weather");
    assert_eq!(calls[0]["server"], "tools");
    assert!(
        calls[0]["result"].as_str().unwrap().contains("Berlin"),
        "{result}"
    );
    assert!(!weather.heads().is_empty());
    // Each worker is told the task, the results so far and its step; the answer is written
    // from every result.
    let writer = last_message(&asked(&model, WRITER)[0]).to_owned();
    assert!(
        writer.contains("Task: Plan a day out in Berlin"),
        "{writer}"
    );
    assert!(writer.contains("Sunny, 21.5 °C in Berlin."), "{writer}");
    assert!(
        writer.contains("Do this step now: Write the day plan"),
        "{writer}"
    );
    let final_ask = asked(&model, PLANNER)
        .into_iter()
        .find(|r| output_schema(r).is_none())
        .expect("the answer's request");
    assert!(
        last_message(&final_ask).contains("A walk in the Tiergarten, then lunch outside."),
        "{final_ask}"
    );
    // The planner's usage includes its children's: plan, two researcher turns, writer, answer.
    assert_eq!(planner["usage"]["model_calls"], 5, "{result}");
    assert_eq!(planner["usage"]["tool_calls"], 1, "{result}");
    assert_eq!(planner["usage"], result["usage"], "{result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planner_streams_a_new_plan_after_a_failed_step() {
    let model = FakeModel::ollama_responder(Responder::new(|r| {
        let prompt = system_prompt(r);
        if prompt.starts_with(PLANNER) && output_schema(r).is_some() {
            if last_message(r).contains("failed") {
                plan(json!([{"description": "Write from what is known", "worker": "writer"}]))
            } else {
                plan(json!([
                    {"description": "Check the weather", "worker": "researcher"},
                    {"description": "Write the day plan", "worker": "writer"}
                ]))
            }
        } else if prompt.starts_with(PLANNER) {
            Reply::text("Take an umbrella, just in case.")
        } else if prompt.starts_with(RESEARCHER) {
            Reply::Error(500, "the researcher's model is down".into(), Vec::new())
        } else {
            Reply::text("Museums in the morning, a walk after.")
        }
    }));
    let app = spawn_example("planner", &model, &[]);
    let events = stream(
        &app,
        json!({"input": "Plan a day out in Berlin and check the weather there"}),
    )
    .await;
    let end = check_stream(&events);
    assert_eq!(end["status"], "completed", "{end}");
    assert_eq!(end["output"], "Take an umbrella, just in case.");
    assert_eq!(
        tree(&end),
        owned(&[
            ("planner", None, None),
            ("researcher", Some("planner"), None),
            ("writer", Some("planner"), None),
        ]),
        "{end}"
    );
    assert_eq!(step(&end, "researcher")["status"], "failed", "{end}");
    let plans = named(&events, "agent.decided");
    assert_eq!(plans.len(), 2, "the plan, then the new plan");
    assert_eq!(plans[0]["decision"]["kind"], "plan");
    assert!(plans[0]["decision"].get("replanned").is_none());
    assert_eq!(plans[1]["decision"]["replanned"], true);
    assert_eq!(
        plans[1]["decision"]["steps"],
        json!([{"description": "Write from what is known", "worker": "writer"}])
    );
    // The replanning request says which step failed and why.
    let replan = asked(&model, PLANNER)
        .into_iter()
        .find(|r| last_message(r).contains("failed"))
        .expect("a replanning request");
    assert!(
        last_message(&replan).contains("the researcher's model is down"),
        "{replan}"
    );
    // The workers' events carry the planner's step as their parent.
    let planner_id = step(&end, "planner")["step_id"].clone();
    for started in named(&events, "agent.started").iter().skip(1) {
        assert_eq!(started["parent_step_id"], planner_id, "{started}");
    }
}

// ---------------------------------------------------------------------------------------------
// supervisor.yaml: rounds of delegation to two workers, then the answer.

const LEAD: &str = "You lead a small team";
const FORECASTER: &str = "Forecaster.";
const POET: &str = "Poet.";

/// The results the lead has been given so far.
fn rounds_done(r: &Value) -> usize {
    r["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "user" && m["content"].as_str().unwrap().starts_with("Result of"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisor_delegates_round_by_round_and_answers() {
    let weather = open_meteo("Paris");
    let dir = TempDir::new();
    let config = weather_config(&dir, &weather);
    let forecaster = weather_worker("Paris", "Clear and 21.5 °C in Paris.");
    let model = FakeModel::ollama_responder(Responder::new(move |r| {
        let prompt = system_prompt(r);
        if prompt.starts_with(LEAD) {
            match rounds_done(r) {
                0 => Reply::json(&json!({"action": "delegate", "worker": "forecaster",
                                         "task": "The weather in Paris now"})),
                1 => Reply::json(&json!({"action": "delegate", "worker": "poet",
                                         "task": "A haiku: clear, 21.5 °C, Paris"})),
                _ => Reply::json(&json!({"action": "finish",
                                         "answer": "Clear Paris sky / twenty-one degrees"})),
            }
        } else if prompt.starts_with(FORECASTER) {
            forecaster(r)
        } else if prompt.starts_with(POET) {
            Reply::text("Clear Paris sky / twenty-one degrees")
        } else {
            Reply::Error(500, format!("unexpected {prompt:?}"), Vec::new())
        }
    }));
    let app = spawn_example(
        "supervisor",
        &model,
        &[("MCP_TOOL_CONFIG", config.as_str())],
    );
    let graph = workflow_graph(&app).await;
    assert_eq!(
        graph["agents"][0]["supervisor_config"],
        json!({"workers": ["forecaster", "poet"], "max_rounds": 4}),
        "{graph}"
    );

    let (_, result) = post_run(
        &app,
        json!({"input": "Write a haiku about the weather in Paris"}),
    )
    .await;
    assert_eq!(result["status"], "completed", "{result}");
    assert_eq!(result["output"], "Clear Paris sky / twenty-one degrees");
    assert_eq!(
        tree(&result),
        owned(&[
            ("lead", None, None),
            ("forecaster", Some("lead"), None),
            ("poet", Some("lead"), None),
        ]),
        "{result}"
    );
    assert_eq!(
        step(&result, "lead")["decisions"],
        json!([
            {"kind": "round", "round": 1, "worker": "forecaster", "task": "The weather in Paris now"},
            {"kind": "round", "round": 2, "worker": "poet", "task": "A haiku: clear, 21.5 °C, Paris"},
            {"kind": "round", "round": 3, "finished": true}
        ]),
        "{result}"
    );
    let calls = step(&result, "forecaster")["tool_calls"]
        .as_array()
        .unwrap();
    assert!(
        calls[0]["result"].as_str().unwrap().contains("Paris"),
        "{result}"
    );
    // The poet was given the task the lead wrote; the lead read both results.
    assert_eq!(
        last_message(&asked(&model, POET)[0]),
        "A haiku: clear, 21.5 °C, Paris"
    );
    let last_round = asked(&model, LEAD).pop().unwrap();
    assert_eq!(rounds_done(&last_round), 2, "{last_round}");
    let lead = step(&result, "lead");
    // Three rounds, two forecaster turns, one poem.
    assert_eq!(lead["usage"]["model_calls"], 6, "{result}");
    assert_eq!(lead["usage"], result["usage"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisor_streams_its_rounds_up_to_max_rounds_then_ends_budget_exhausted() {
    let poems = Arc::new(AtomicUsize::new(0));
    let count = poems.clone();
    let model = FakeModel::ollama_responder(Responder::new(move |r| {
        if system_prompt(r).starts_with(LEAD) {
            Reply::json(&json!({"action": "delegate", "worker": "poet", "task": "Once more"}))
        } else {
            let n = count.fetch_add(1, Ordering::SeqCst) + 1;
            Reply::text(&format!("poem {n}"))
        }
    }));
    let app = spawn_example("supervisor", &model, &[]);
    let events = stream(
        &app,
        json!({"input": "Write a haiku about the weather in Paris"}),
    )
    .await;
    let end = check_stream(&events);
    // The example's max_rounds is 4: four poems, then the last one is the best answer.
    assert_eq!(end["status"], "budget_exhausted", "{end}");
    assert_eq!(end["output"], "poem 4", "{end}");
    assert!(
        end["error"].as_str().unwrap().contains("max_rounds (4)"),
        "{end}"
    );
    assert_eq!(poems.load(Ordering::SeqCst), 4);
    let rounds: Vec<u64> = named(&events, "agent.decided")
        .iter()
        .map(|d| {
            assert_eq!(d["decision"]["worker"], "poet", "{d}");
            d["decision"]["round"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(rounds, [1, 2, 3, 4]);
    let shape = tree(&end);
    assert_eq!(shape.len(), 5, "{end}");
    assert!(
        shape[1..]
            .iter()
            .all(|s| s == &("poet".to_owned(), Some("lead".to_owned()), None)),
        "{end}"
    );
    let lead = step(&end, "lead");
    assert_eq!(lead["status"], "budget_exhausted", "{end}");
    for poet in &end["steps"].as_array().unwrap()[1..] {
        assert_eq!(poet["status"], "completed", "{poet}");
    }
}

// ---------------------------------------------------------------------------------------------
// The graph's configuration errors: exit code 2 and one line naming file:line:column.

/// orchestrate on `yaml` (written to a file): asserts exit code 2, nothing on stdout and one
/// stderr line; returns it with the file's path.
fn config_error(yaml: &str) -> (String, String) {
    let dir = TempDir::new();
    let path = dir.path().join("workflow.yaml");
    std::fs::write(&path, yaml).unwrap();
    let shown = path.display().to_string();
    let out = e2e::run(
        "orchestrate",
        &[],
        &[
            ("ORCHESTRATE_CONFIG", shown.as_str()),
            ("ORCHESTRATE_MODEL", "ollama:fake-model"),
        ],
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2), "{yaml}\n{out:?}");
    assert!(out.stdout.is_empty(), "nothing on stdout: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one stderr line: {lines:?}");
    (lines[0].to_owned(), shown)
}

/// `file:line:column: ` (1-based) of `inner` in the first occurrence of `context` in `yaml`.
fn position_of(path: &str, yaml: &str, context: &str, inner: &str) -> String {
    let start = yaml
        .find(context)
        .unwrap_or_else(|| panic!("{context:?} not in the file"));
    let offset = start + context.find(inner).expect("inner is part of context");
    let line = yaml[..offset].matches('\n').count() + 1;
    let column = offset - yaml[..offset].rfind('\n').map_or(0, |n| n + 1) + 1;
    format!("{path}:{line}:{column}: ")
}

#[test]
fn a_route_to_a_category_the_classifier_does_not_have_is_refused_at_its_line() {
    let router = std::fs::read_to_string(example("router")).unwrap();
    let yaml = router.replace(
        "{target: support, when: support}",
        "{target: support, when: sales}",
    );
    assert_ne!(yaml, router);
    let (line, path) = config_error(&yaml);
    // At the entry's target (its `when` is on the same line).
    let at = position_of(&path, &yaml, "{target: support, when: sales}", "support");
    assert!(line.contains(&at), "at {at}: {line}");
    assert!(line.contains("unknown category \"sales\""), "{line}");
    assert!(
        line.contains("billing") && line.contains("support"),
        "names the categories: {line}"
    );
}

#[test]
fn a_fan_in_of_an_agent_outside_the_workflow_is_refused_at_its_line() {
    let yaml = "\
agents:
  - {name: a, role: react, model: ollama:m}
  - {name: b, role: react, model: ollama:m}
  - name: merge
    role: aggregator
    inputs: [{source: a}, {source: b}]
    aggregator_config: {strategy: concat}
workflows:
  - name: main
    agents: [a, merge]
";
    let (line, path) = config_error(yaml);
    let at = position_of(&path, yaml, "{source: b}", "b}");
    assert!(line.contains(&at), "at {at}: {line}");
    assert!(
        line.contains("merge takes input from b, which is not in workflow main"),
        "{line}"
    );
}

#[test]
fn a_cycle_outside_a_supervisor_is_refused_at_the_edge_that_closes_it() {
    let yaml = "\
agents:
  - name: a
    role: react
    model: ollama:m
    outputs: [{target: b}]
  - name: b
    role: react
    model: ollama:m
    outputs: [{target: a}]
";
    let (line, path) = config_error(yaml);
    assert!(line.contains(&format!("{path}:")), "{line}");
    assert!(line.contains("dependency cycle: a -> b -> a"), "{line}");
    let closing = position_of(&path, yaml, "{target: a}", "a}");
    assert!(line.contains(&closing), "at {closing}: {line}");
}

#[test]
fn the_producer_role_is_refused_naming_what_replaces_it() {
    let yaml = "\
agents:
  - name: ticker
    role: producer
";
    let (line, path) = config_error(yaml);
    let at = position_of(&path, yaml, "producer", "producer");
    assert!(line.contains(&at), "at {at}: {line}");
    assert!(line.contains("POST /v1/run"), "{line}");
    assert!(line.contains("not yet built"), "{line}");
}
