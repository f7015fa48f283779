//! The `planner` agent: asks its model for a plan (ordered steps, each with a description and,
//! optionally, the worker to do it), runs each step as a child step with that worker (a react
//! agent of `planner_config.workers`, else the planner's own react loop with its own tools),
//! feeding it the results so far, then writes the answer from the step results. With
//! `replan_on_failure`, a failed step makes it ask once for a new plan from that step on.

use aixrun::llm::Message;
use serde_json::{Value, json};

use crate::config::Planner;
use crate::run::event::Decision;
use crate::run::step::{Input, Step, StepEnd, as_text, run_step};
use crate::run::turn::{model_turn, structured};

/// One step of a plan.
#[derive(Debug, Clone, PartialEq)]
struct PlanStep {
    description: String,
    worker: Option<String>,
}

/// Plans, executes and answers.
pub(crate) async fn run(step: &Step<'_>, config: &Planner, input: &Input) -> StepEnd {
    let Some(service) = &step.agent.model else {
        return StepEnd::Failed("a planner needs a model".to_owned());
    };
    let task = input.text();
    let mut plan = match ask(step, config, &task, &[], None).await {
        Ok(plan) => plan,
        Err(end) => return end,
    };
    let mut results: Vec<(String, Value)> = Vec::new();
    let mut replanned = false;
    let mut i = 0;
    while i < plan.len() {
        let current = plan[i].clone();
        let worker = match &current.worker {
            Some(name) => match step.run.engine.orchestration.agents.get(name) {
                Some(agent) => agent.as_ref(),
                None => return StepEnd::Failed(format!("the plan names no worker {name:?}")),
            },
            None => step.agent,
        };
        let brief = Input::One(Value::String(brief(&task, &results, &current.description)));
        let end = run_step(
            step.run,
            worker,
            &brief,
            Some(step),
            None,
            current.worker.is_none(),
        )
        .await;
        let error = match end {
            StepEnd::Done { output, .. } => {
                results.push((current.description, output));
                i += 1;
                continue;
            }
            StepEnd::Stopped(stop, _) if stop.stops(&step.agent.name) => {
                return StepEnd::Stopped(stop, None);
            }
            StepEnd::Stopped(stop, _) => stop.message(),
            StepEnd::Failed(e) => e,
        };
        if !config.replan_on_failure || replanned {
            return StepEnd::Failed(format!(
                "plan step {} ({}) failed: {error}",
                i + 1,
                current.description
            ));
        }
        replanned = true;
        let failure = (i + 1, current.description.clone(), error);
        match ask(step, config, &task, &results, Some(&failure)).await {
            Ok(new) => {
                plan.truncate(i);
                plan.extend(new);
            }
            Err(end) => return end,
        }
    }
    let mut messages = Vec::new();
    let instructions =
        step.prompt_then("Write the answer to the task from the results of its steps.");
    messages.push(Message::System(instructions));
    messages.push(Message::User(brief(&task, &results, "")));
    match model_turn(step, service, &messages, &[], None, true).await {
        Ok(turn) => StepEnd::done(Value::String(turn.text)),
        Err(end) => end,
    }
}

/// Asks for a plan (after a failed step: for the rest of the task from that step on).
async fn ask(
    step: &Step<'_>,
    config: &Planner,
    task: &str,
    results: &[(String, Value)],
    failure: Option<&(usize, String, String)>,
) -> Result<Vec<PlanStep>, StepEnd> {
    let Some(service) = &step.agent.model else {
        return Err(StepEnd::Failed("a planner needs a model".to_owned()));
    };
    let mut item = json!({
        "type": "object",
        "properties": {"description": {"type": "string"}},
        "required": ["description"]
    });
    let mut instructions = step.prompt_then(&format!(
        "Break the task into at most {} ordered steps, each one thing to do.",
        config.max_steps
    ));
    if !config.workers.is_empty() {
        item["properties"]["worker"] = json!({"enum": config.workers});
        instructions.push_str(" Name the worker that does each step: ");
        let mut described = Vec::new();
        for name in &config.workers {
            described.push(format!("{name} ({})", step.worker_summary(name)));
        }
        instructions.push_str(&described.join(", "));
        instructions.push('.');
    }
    instructions.push_str(" Answer with JSON only: {\"steps\": [{\"description\": \"...\"}]}.");
    let schema = json!({
        "type": "object",
        "properties": {
            "steps": {"type": "array", "minItems": 1, "maxItems": config.max_steps, "items": item}
        },
        "required": ["steps"]
    });
    let mut user = format!("Task: {task}");
    if let Some((n, description, error)) = failure {
        user.push_str(&format!(
            "\n\n{}\nStep {n} ({description}) failed: {error}\nPlan the rest of the task from that step on.",
            done_so_far(results)
        ));
    }
    let messages = vec![Message::System(instructions), Message::User(user)];
    let answer = structured(step, service, messages, &step.agent.name, &schema, false).await?;
    let steps: Vec<PlanStep> = answer["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| PlanStep {
            description: s["description"].as_str().unwrap_or_default().to_owned(),
            worker: s["worker"].as_str().map(str::to_owned),
        })
        .collect();
    step.decide(Decision::Plan {
        steps: steps
            .iter()
            .map(|s| json!({"description": s.description, "worker": s.worker}))
            .collect(),
        replanned: failure.is_some(),
    });
    Ok(steps)
}

/// A step's task: the whole task, the results so far, and what to do now.
fn brief(task: &str, results: &[(String, Value)], now: &str) -> String {
    let mut text = format!("Task: {task}");
    if !results.is_empty() {
        text.push_str("\n\n");
        text.push_str(&done_so_far(results));
    }
    if !now.is_empty() {
        text.push_str(&format!("\n\nDo this step now: {now}"));
    }
    text
}

fn done_so_far(results: &[(String, Value)]) -> String {
    let mut text = String::from("Results so far:");
    for (i, (description, output)) in results.iter().enumerate() {
        text.push_str(&format!("\n{}. {description}: {}", i + 1, as_text(output)));
    }
    text
}
