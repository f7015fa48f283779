//! Each role and the graph, on the scripted model and scripted tools: no sockets. The scripts
//! tell agents apart by their system prompt, or by the schema name of a structured call (the
//! agent's name).

use std::sync::Arc;
use std::time::Duration;

use aixrun::llm::{ChatRequest, Message};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::model::{Answer, Scripted};
use super::*;

const HEAD: &str = "model_services:\n  - {name: m, provider: ollama, model: fake}\nagents:\n";

fn engine(yaml: &str, model: Arc<Scripted>) -> Engine {
    let text = format!("{HEAD}{yaml}");
    Engine::in_process(&text, Arc::new(Echo), model).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn spec(engine: &Engine, input: &str, budget: Budget) -> RunSpec {
    RunSpec {
        run_id: run_id(),
        workflow: engine
            .orchestration
            .workflows
            .keys()
            .next()
            .cloned()
            .unwrap(),
        input: Value::String(input.into()),
        budget,
        deadline: Instant::now() + budget.wall_time,
    }
}

/// Runs `yaml`'s workflow on `input` with `script`; the result, every event, and the model.
async fn run_with(
    yaml: &str,
    input: &str,
    budget: Budget,
    script: impl Fn(&ChatRequest) -> Answer + Send + Sync + 'static,
) -> (RunResult, Vec<Envelope>, Arc<Scripted>) {
    let model = Arc::new(Scripted::new(script));
    let engine = engine(yaml, model.clone());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stop = Interruptions {
        cancel: CancellationToken::new(),
        shutdown: aixrun::server::Shutdown::default(),
    };
    let result = engine
        .run(spec(&engine, input, budget), Some(tx), stop)
        .await;
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (result, events, model)
}

async fn run(
    yaml: &str,
    input: &str,
    script: impl Fn(&ChatRequest) -> Answer + Send + Sync + 'static,
) -> (RunResult, Vec<Envelope>, Arc<Scripted>) {
    run_with(yaml, input, Budget::default(), script).await
}

/// The system prompt of a request.
fn system(r: &ChatRequest) -> &str {
    match r.messages.first() {
        Some(Message::System(s)) => s,
        _ => "",
    }
}

/// The schema name of a structured call.
fn schema(r: &ChatRequest) -> &str {
    r.output_schema.as_ref().map_or("", |s| s.name.as_str())
}

fn steps(result: &RunResult) -> Vec<(&str, Option<&str>, &str)> {
    result
        .summary
        .steps
        .iter()
        .map(|s| {
            (
                s.summary.agent.as_str(),
                s.parent_step_id.as_deref(),
                s.summary.status.as_str(),
            )
        })
        .collect()
}

fn agents(result: &RunResult) -> Vec<&str> {
    result
        .summary
        .steps
        .iter()
        .map(|s| s.summary.agent.as_str())
        .collect()
}

fn step<'a>(result: &'a RunResult, agent: &str) -> &'a StepRecord {
    result
        .summary
        .steps
        .iter()
        .find(|s| s.summary.agent == agent)
        .unwrap_or_else(|| panic!("no step of {agent}: {result:#?}"))
}

const ROUTER: &str = "  - name: router\n    role: classifier\n    model: m\n    classifier_config:\n      categories:\n        - {name: billing, description: Money, keywords: [invoice, refund]}\n        - {name: tech, description: Bugs, keywords: [crash]}\n      fallback: tech\n      keywords_first: true\n    outputs: [{target: b, when: billing}, {target: t, when: tech}]\n  - {name: b, role: react, model: m, prompt: billing desk}\n  - {name: t, role: react, model: m, prompt: tech desk}\n";

fn desks(r: &ChatRequest) -> Answer {
    match system(r) {
        "billing desk" => Answer::Text("billing answer".into()),
        "tech desk" => Answer::Text("tech answer".into()),
        _ => Answer::json(json!({"category": "billing", "confidence": 0.9, "reasoning": "money"})),
    }
}

#[tokio::test]
async fn a_classifier_routes_by_the_models_category_and_passes_its_input_on() {
    let (result, events, model) = run(ROUTER, "Where is my money?", desks).await;
    assert_eq!(result.summary.status, Status::Completed, "{result:#?}");
    assert_eq!(agents(&result), ["router", "b"]);
    assert_eq!(result.summary.output, "billing answer");
    let router = step(&result, "router");
    assert_eq!(router.summary.output, "Where is my money?");
    assert_eq!(
        router.summary.decisions,
        [event::Decision::Route {
            categories: vec!["billing".into()],
            confidence: Some(0.9),
            reasoning: Some("money".into()),
            by: "model".into()
        }]
    );
    // The classifier's call was constrained to the category names.
    let first = &model.requests()[0];
    assert_eq!(
        first.output_schema.as_ref().unwrap().schema["properties"]["category"]["enum"],
        json!(["billing", "tech"])
    );
    assert_eq!(step(&result, "b").branch.as_deref(), Some("billing"));
    // Events are numbered without gaps, the last one is run.finished.
    assert!(events.iter().enumerate().all(|(i, e)| e.seq == i as u64));
    assert_eq!(events.last().unwrap().event.name(), "run.finished");
}

#[tokio::test]
async fn keywords_route_without_a_model_call() {
    let (result, _, model) = run(ROUTER, "My app shows a CRASH at start", desks).await;
    assert_eq!(agents(&result), ["router", "t"]);
    let router = step(&result, "router");
    assert_eq!(router.summary.usage.model_calls, 0);
    assert!(matches!(
        &router.summary.decisions[0],
        event::Decision::Route { by, .. } if by == "keywords"
    ));
    assert_eq!(model.requests().len(), 1, "only the tech desk asked");
    // Two categories' keywords: the model decides.
    let (result, _, _) = run(ROUTER, "refund for the crash", desks).await;
    assert_eq!(step(&result, "router").summary.usage.model_calls, 1);
}

#[tokio::test]
async fn below_the_threshold_the_fallback_is_taken() {
    let (result, _, _) = run(ROUTER, "hello", |r| match system(r) {
        "tech desk" => Answer::Text("tech answer".into()),
        _ => Answer::json(json!({"category": "billing", "confidence": 0.2})),
    })
    .await;
    assert_eq!(agents(&result), ["router", "t"]);
    assert!(matches!(
        &step(&result, "router").summary.decisions[0],
        event::Decision::Route { by, categories, .. } if by == "fallback" && categories == &["tech"]
    ));
}

#[tokio::test]
async fn multi_label_fans_out_to_every_category_above_the_threshold() {
    let yaml = ROUTER.replace("keywords_first: true", "multi_label: true");
    let (result, _, _) = run(&yaml, "both", |r| match system(r) {
        "billing desk" => Answer::Text("b".into()),
        "tech desk" => Answer::Text("t".into()),
        _ => Answer::json(json!({"categories": [
            {"name": "billing", "confidence": 0.8},
            {"name": "tech", "confidence": 0.75},
        ]})),
    })
    .await;
    let mut ran = agents(&result);
    ran.sort_unstable();
    assert_eq!(ran, ["b", "router", "t"]);
    assert_eq!(result.summary.output, json!({"b": "b", "t": "t"}));
}

/// Three react agents on the input, then an aggregator with `config`.
fn three_then(config: &str) -> String {
    format!(
        "  - {{name: r1, role: react, model: m, prompt: r1}}\n  - {{name: r2, role: react, model: m, prompt: r2}}\n  - {{name: r3, role: react, model: m, prompt: r3}}\n  - name: agg\n    role: aggregator\n    inputs: [{{source: r1}}, {{source: r2}}, {{source: r3}}]\n{config}"
    )
}

fn answers(a: &'static str, b: &'static str, c: &'static str) -> impl Fn(&ChatRequest) -> Answer {
    move |r| {
        Answer::Text(
            match system(r) {
                "r1" => a,
                "r2" => b,
                "r3" => c,
                _ => "?",
            }
            .into(),
        )
    }
}

#[tokio::test]
async fn voting_counts_equal_answers_without_a_model() {
    let majority = three_then("    aggregator_config: {strategy: voting_majority}\n");
    let (result, _, model) = run(&majority, "q", answers("yes", "yes", "no")).await;
    assert_eq!(result.summary.output["outcome"], "winner");
    assert_eq!(result.summary.output["winner"], "yes");
    assert_eq!(result.summary.output["tally"][0]["votes"], 2);
    assert_eq!(model.requests().len(), 3, "the vote made no model call");

    let (result, _, _) = run(&majority, "q", answers("a", "b", "c")).await;
    assert_eq!(result.summary.output["outcome"], "tie");
    assert_eq!(result.summary.output["winner"], Value::Null);
    assert_eq!(result.summary.status, Status::Completed);

    let unanimous = three_then("    aggregator_config: {strategy: voting_unanimous}\n");
    let (result, _, _) = run(&unanimous, "q", answers("yes", "yes", "no")).await;
    assert_eq!(result.summary.output["outcome"], "not_unanimous");
    let (result, _, _) = run(&unanimous, "q", answers("yes", " yes", "yes ")).await;
    assert_eq!(result.summary.output["outcome"], "winner");

    let weighted =
        three_then("    aggregator_config: {strategy: voting_weighted, source_weights: {r3: 3}}\n");
    let (result, _, _) = run(&weighted, "q", answers("yes", "yes", "no")).await;
    assert_eq!(result.summary.output["winner"], "no");
    assert_eq!(result.summary.output["tally"][0]["weight"], 3.0);

    let field =
        three_then("    aggregator_config: {strategy: voting_majority, vote_field: verdict}\n");
    let (result, _, _) = run(
        &field,
        "q",
        answers(
            r#"{"verdict": "guilty", "why": "a"}"#,
            r#"{"verdict": "guilty", "why": "b"}"#,
            r#"{"verdict": "innocent"}"#,
        ),
    )
    .await;
    assert_eq!(result.summary.output["winner"], "guilty");
    let agg = step(&result, "agg");
    assert!(matches!(
        &agg.summary.decisions[0],
        event::Decision::Tally { strategy, outcome, .. } if strategy == "voting_majority" && outcome == "winner"
    ));
}

#[tokio::test]
async fn first_concat_and_consensus_merge_the_branches() {
    let first = three_then("    aggregator_config: {strategy: first}\n");
    let (result, _, _) = run(&first, "q", answers("a", "b", "c")).await;
    assert!(["a", "b", "c"].contains(&result.summary.output.as_str().unwrap()));

    let concat = three_then("    aggregator_config: {strategy: concat}\n");
    let (result, _, _) = run(&concat, "q", answers("a", "b", "c")).await;
    let text = result.summary.output.as_str().unwrap().to_owned();
    assert_eq!(text.split("\n\n").count(), 3, "{text}");

    let consensus = three_then("    model: m\n");
    let (result, _, model) = run(&consensus, "q", |r| match system(r) {
        "r1" | "r2" => Answer::Text("blue".into()),
        "r3" => Answer::Text("green".into()),
        _ => Answer::json(json!({"answer": "blue", "disagreements": ["r3 says green"]})),
    })
    .await;
    assert_eq!(result.summary.output, "blue");
    let agg = step(&result, "agg");
    assert!(matches!(
        &agg.summary.decisions[0],
        event::Decision::Tally { disagreements, .. } if disagreements == &["r3 says green"]
    ));
    let last = model.requests().pop().unwrap();
    let Message::User(prompt) = &last.messages[1] else {
        panic!()
    };
    assert!(prompt.contains("Answer of r3:\ngreen"), "{prompt}");
}

#[tokio::test]
async fn branches_run_at_the_same_time() {
    let yaml = three_then("    aggregator_config: {strategy: concat}\n");
    let model =
        Arc::new(Scripted::new(answers("a", "b", "c")).with_latency(Duration::from_millis(100)));
    let engine = engine(&yaml, model.clone());
    let stop = Interruptions {
        cancel: CancellationToken::new(),
        shutdown: aixrun::server::Shutdown::default(),
    };
    let started = std::time::Instant::now();
    let result = engine
        .run(spec(&engine, "q", Budget::default()), None, stop)
        .await;
    assert_eq!(result.summary.status, Status::Completed);
    assert_eq!(model.most_at_once(), 3);
    assert!(
        started.elapsed() < Duration::from_millis(290),
        "{:?}",
        started.elapsed()
    );
    for name in ["r1", "r2", "r3"] {
        assert_eq!(step(&result, name).branch.as_deref(), Some(name));
    }
}

#[tokio::test]
async fn a_failing_branch_fails_the_run_unless_its_feeder_continues() {
    let script = |r: &ChatRequest| match system(r) {
        "r2" => Answer::Fail("boom".into()),
        "r1" | "r3" => Answer::Text("fine".into()),
        _ => Answer::Text("?".into()),
    };
    let yaml = three_then("    aggregator_config: {strategy: concat}\n");
    let (result, _, _) = run(&yaml, "q", script).await;
    assert_eq!(result.summary.status, Status::Failed);
    assert!(
        result
            .summary
            .error
            .as_deref()
            .unwrap()
            .contains("agent r2"),
        "{result:#?}"
    );

    // A fan-out agent with on_error: continue tolerates its successors' failures.
    let yaml = format!(
        "  - {{name: split, role: logger, outputs: [{{target: r1}}, {{target: r2}}, {{target: r3}}], on_error: continue}}\n{}",
        three_then("    aggregator_config: {strategy: concat}\n")
    );
    let (result, _, _) = run(&yaml, "q", script).await;
    assert_eq!(result.summary.status, Status::Completed, "{result:#?}");
    assert_eq!(result.summary.output, "fine\n\nfine");
    assert!(matches!(
        &step(&result, "agg").summary.decisions[0],
        event::Decision::Tally { failed, .. } if failed[0]["agent"] == "r2"
    ));
}

#[tokio::test]
async fn an_agents_budget_stops_it_while_the_run_goes_on_where_the_workflow_allows() {
    let yaml = "  - {name: split, role: logger, outputs: [{target: a}, {target: b}], on_error: continue}\n  - {name: a, role: react, model: m, prompt: a, budget: {model_calls: 1}}\n  - {name: b, role: react, model: m, prompt: b}\n  - name: j\n    role: aggregator\n    inputs: [{source: a}, {source: b}]\n    aggregator_config: {strategy: concat}\n";
    // `a` wants a tool call first: its second model call is over its own budget.
    let script = |r: &ChatRequest| match (system(r), r.messages.len()) {
        ("a", 2) => Answer::Calls(vec![("echo".into(), json!({"text": "x"}))]),
        _ => Answer::Text("done".into()),
    };
    let (result, _, _) = run(yaml, "q", script).await;
    assert_eq!(result.summary.status, Status::Completed, "{result:#?}");
    let a = step(&result, "a");
    assert_eq!(a.summary.status, Status::BudgetExhausted);
    assert!(
        a.summary
            .error
            .as_deref()
            .unwrap()
            .contains("agent a's budget exhausted")
    );
    assert_eq!(result.summary.output, "done");

    // Without on_error: continue, the agent's budget ends the run.
    let (result, _, _) = run(&yaml.replace(", on_error: continue", ""), "q", script).await;
    assert_eq!(result.summary.status, Status::BudgetExhausted);
}

#[tokio::test]
async fn a_planner_runs_its_plan_as_child_steps_then_answers() {
    let yaml = "  - name: p\n    role: planner\n    model: m\n    prompt: planner\n    planner_config: {workers: [w1, w2], max_steps: 3}\n  - {name: w1, role: react, model: m, prompt: researcher}\n  - {name: w2, role: react, model: m, prompt: writer}\n";
    let (result, _, model) = run(yaml, "write about owls", |r| match (schema(r), system(r)) {
        ("p", _) => Answer::json(json!({"steps": [
            {"description": "find facts", "worker": "w1"},
            {"description": "write it", "worker": "w2"},
        ]})),
        (_, "researcher") => Answer::Text("owls hoot".into()),
        (_, "writer") => Answer::Text("An essay: owls hoot.".into()),
        _ => Answer::Text("Owls hoot.".into()),
    })
    .await;
    assert_eq!(result.summary.status, Status::Completed, "{result:#?}");
    assert_eq!(
        steps(&result),
        [
            ("p", None, "completed"),
            ("w1", Some("s1"), "completed"),
            ("w2", Some("s1"), "completed")
        ]
    );
    assert_eq!(result.summary.output, "Owls hoot.");
    assert!(matches!(
        &step(&result, "p").summary.decisions[0],
        event::Decision::Plan { steps, replanned: false } if steps.len() == 2
    ));
    // The second worker was given the first one's result.
    let writer = model
        .requests()
        .into_iter()
        .find(|r| system(r) == "writer")
        .unwrap();
    let Message::User(task) = &writer.messages[1] else {
        panic!()
    };
    assert!(task.contains("1. find facts: owls hoot"), "{task}");
    // The planner's usage includes its workers'.
    assert_eq!(step(&result, "p").summary.usage.model_calls, 4);
}

#[tokio::test]
async fn a_planner_replans_once_from_a_failed_step() {
    let yaml = "  - name: p\n    role: planner\n    model: m\n    prompt: planner\n    planner_config: {workers: [w1, w2], replan_on_failure: true}\n  - {name: w1, role: react, model: m, prompt: flaky}\n  - {name: w2, role: react, model: m, prompt: steady}\n";
    let (result, _, _) = run(yaml, "task", |r| match (schema(r), system(r)) {
        ("p", _)
            if r.messages.len() == 2
                && matches!(&r.messages[1], Message::User(u) if u.contains("failed")) =>
        {
            Answer::json(json!({"steps": [{"description": "try again", "worker": "w2"}]}))
        }
        ("p", _) => Answer::json(json!({"steps": [{"description": "try", "worker": "w1"}]})),
        (_, "flaky") => Answer::Fail("flaky failed".into()),
        (_, "steady") => Answer::Text("ok".into()),
        _ => Answer::Text("final".into()),
    })
    .await;
    assert_eq!(result.summary.status, Status::Completed, "{result:#?}");
    assert_eq!(
        steps(&result),
        [
            ("p", None, "completed"),
            ("w1", Some("s1"), "failed"),
            ("w2", Some("s1"), "completed")
        ]
    );
    let p = step(&result, "p");
    assert!(matches!(
        &p.summary.decisions[1],
        event::Decision::Plan {
            replanned: true,
            ..
        }
    ));
}

const SUPERVISED: &str = "  - {name: boss, role: supervisor, model: m, prompt: boss, workers: [a, b], max_rounds: 3}\n  - {name: a, role: react, model: m, prompt: worker a}\n  - {name: b, role: react, model: m, prompt: worker b}\n";

#[tokio::test]
async fn a_supervisor_delegates_until_it_finishes() {
    let (result, _, _) = run(SUPERVISED, "task", |r| match (schema(r), system(r)) {
        ("boss", _) if r.messages.len() == 2 => {
            Answer::json(json!({"action": "delegate", "worker": "a", "task": "part one"}))
        }
        ("boss", _) if r.messages.len() == 4 => {
            Answer::json(json!({"action": "delegate", "worker": "b", "task": "part two"}))
        }
        ("boss", _) => Answer::json(json!({"action": "finish", "answer": "all done"})),
        _ => Answer::Text("worked".into()),
    })
    .await;
    assert_eq!(result.summary.status, Status::Completed, "{result:#?}");
    assert_eq!(result.summary.output, "all done");
    assert_eq!(
        steps(&result),
        [
            ("boss", None, "completed"),
            ("a", Some("s1"), "completed"),
            ("b", Some("s1"), "completed")
        ]
    );
    assert_eq!(step(&result, "boss").summary.decisions.len(), 3);
}

#[tokio::test]
async fn a_supervisor_at_max_rounds_ends_budget_exhausted_with_its_best_answer() {
    let (result, _, _) = run(SUPERVISED, "task", |r| match schema(r) {
        "boss" => Answer::json(json!({"action": "delegate", "worker": "a", "task": "again"})),
        _ => Answer::Text("partial".into()),
    })
    .await;
    assert_eq!(
        result.summary.status,
        Status::BudgetExhausted,
        "{result:#?}"
    );
    assert_eq!(result.summary.output, "partial");
    assert!(
        result
            .summary
            .error
            .as_deref()
            .unwrap()
            .contains("max_rounds (3)")
    );
}

#[tokio::test]
async fn a_retried_structured_answer_is_retracted_from_the_stream() {
    let yaml = "  - name: a\n    role: react\n    model: m\n    output_schema: {type: object, properties: {n: {type: integer}}, required: [n]}\n";
    let (result, events, _) = run(yaml, "q", |r| {
        if r.messages.len() == 1 {
            Answer::Text("not json".into())
        } else {
            Answer::json(json!({"n": 1}))
        }
    })
    .await;
    assert_eq!(result.summary.output, json!({"n": 1}));
    let names: Vec<&str> = events.iter().map(|e| e.event.name()).collect();
    let retracted = names
        .iter()
        .position(|n| *n == "message.retracted")
        .unwrap();
    assert!(names[..retracted].contains(&"message.delta"));
    assert!(names[retracted..].contains(&"message.delta"));
}

#[tokio::test]
async fn an_answer_cut_at_the_token_limit_is_not_completed() {
    let (result, _, _) = run("  - {name: a, role: react, model: m}\n", "q", |_| {
        Answer::Cut("half an".into())
    })
    .await;
    assert_eq!(result.summary.status, Status::Failed);
    let a = step(&result, "a");
    assert_eq!(a.summary.finish_reason.as_deref(), Some("length"));
    assert_eq!(a.summary.output, "half an");
}

#[tokio::test]
async fn a_cancelled_fan_out_stops_every_branch_and_charges_what_streamed() {
    let yaml = three_then("    aggregator_config: {strategy: concat}\n");
    let model = Arc::new(Scripted::new(|_| Answer::Hang("some words then".into())));
    let engine = engine(&yaml, model.clone());
    let cancel = CancellationToken::new();
    let stop = Interruptions {
        cancel: cancel.clone(),
        shutdown: aixrun::server::Shutdown::default(),
    };
    let later = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        later.cancel();
    });
    let result = engine
        .run(spec(&engine, "q", Budget::default()), None, stop)
        .await;
    assert_eq!(result.summary.status, Status::Cancelled);
    assert_eq!(model.most_at_once(), 3);
    // Every branch's call was dropped: nothing is in flight any more.
    assert_eq!(model.requests().len(), 3);
    let usage = result.summary.usage;
    assert_eq!(usage.model_calls, 3);
    assert!(usage.estimated && usage.output_tokens > 0, "{usage:?}");
    assert_eq!(
        result.summary.output,
        json!({"r1": "some words then", "r2": "some words then", "r3": "some words then"})
    );
    for s in &result.summary.steps {
        assert_eq!(s.summary.status, Status::Cancelled);
    }
}

#[tokio::test]
async fn run_ids_are_128_random_bits() {
    let a = run_id();
    assert_eq!(a.len(), 36);
    assert_ne!(a, run_id());
}

#[tokio::test]
async fn join_any_takes_the_first_branch_and_cancels_the_rest() {
    let yaml = "  - {name: fast, role: react, model: m, prompt: fast}\n  - {name: slow, role: react, model: m, prompt: slow}\n  - name: first\n    role: aggregator\n    join: any\n    inputs: [{source: fast}, {source: slow}]\n    aggregator_config: {strategy: first}\n";
    let (result, _, _) = run(yaml, "q", |r| match system(r) {
        "slow" => Answer::Hang("still thinking".into()),
        _ => Answer::Text("quick".into()),
    })
    .await;
    assert_eq!(result.summary.status, Status::Completed, "{result:#?}");
    assert_eq!(result.summary.output, "quick");
    let slow = step(&result, "slow");
    assert_eq!(slow.summary.status, Status::Cancelled);
    assert_eq!(slow.summary.output, "still thinking");
}
