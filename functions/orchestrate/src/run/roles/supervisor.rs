//! The `supervisor` agent: each round its model picks a worker and that worker's task, or
//! finishes with the answer; each task runs as a child step of the supervisor's, and its result
//! (or failure) goes back to the model. After `max_rounds` rounds without an answer the step
//! ends `budget_exhausted` with the best answer so far (the last worker's).

use aixrun::llm::Message;
use serde_json::{Value, json};

use crate::config::Supervisor;
use crate::run::budget::Stop;
use crate::run::event::Decision;
use crate::run::step::{Input, Step, StepEnd, as_text, run_step};
use crate::run::turn::structured;

/// Delegates round by round.
pub(crate) async fn run(step: &Step<'_>, config: &Supervisor, input: &Input) -> StepEnd {
    let Some(service) = &step.agent.model else {
        return StepEnd::Failed("a supervisor needs a model".to_owned());
    };
    let agents = &step.run.engine.orchestration.agents;
    let mut instructions = step.prompt_then(
        "You supervise workers. Each round, either delegate one task to one worker, or finish \
         with the answer once the results are enough. The workers:\n",
    );
    for name in &config.workers {
        instructions.push_str(&format!("- {name}: {}\n", step.worker_summary(name)));
    }
    instructions.push_str(
        "Answer with JSON only: {\"action\": \"delegate\", \"worker\": \"...\", \"task\": \"...\"} \
         or {\"action\": \"finish\", \"answer\": \"...\"}.",
    );
    let schema = json!({
        "type": "object",
        "properties": {
            "action": {"enum": ["delegate", "finish"]},
            "worker": {"enum": config.workers},
            "task": {"type": "string"},
            "answer": {"type": "string"}
        },
        "required": ["action"]
    });
    let mut messages = vec![Message::System(instructions), Message::User(input.text())];
    let mut best: Option<Value> = None;
    for round in 1..=config.max_rounds {
        let choice = match structured(
            step,
            service,
            messages.clone(),
            &step.agent.name,
            &schema,
            false,
        )
        .await
        {
            Ok(choice) => choice,
            Err(StepEnd::Stopped(stop, _)) => return StepEnd::Stopped(stop, best),
            Err(end) => return end,
        };
        messages.push(Message::Assistant {
            content: choice.to_string(),
            tool_calls: Vec::new(),
        });
        if choice["action"] == "finish" {
            step.decide(Decision::Round {
                round,
                worker: None,
                task: None,
                finished: true,
            });
            let answer = match choice.get("answer") {
                Some(a) if !a.is_null() => a.clone(),
                _ => best.clone().unwrap_or(Value::Null),
            };
            return StepEnd::done(answer);
        }
        let (Some(worker), Some(task)) = (choice["worker"].as_str(), choice["task"].as_str())
        else {
            messages.push(Message::User(
                "To delegate, name a worker and its task.".to_owned(),
            ));
            continue;
        };
        step.decide(Decision::Round {
            round,
            worker: Some(worker.to_owned()),
            task: Some(task.to_owned()),
            finished: false,
        });
        let Some(agent) = agents.get(worker) else {
            return StepEnd::Failed(format!("no worker {worker:?}"));
        };
        let brief = Input::One(Value::String(task.to_owned()));
        let report = match run_step(step.run, agent, &brief, Some(step), None, false).await {
            StepEnd::Done { output, .. } => {
                let text = format!("Result of {worker}:\n{}", as_text(&output));
                best = Some(output);
                text
            }
            StepEnd::Stopped(stop, _) if stop.stops(&step.agent.name) => {
                return StepEnd::Stopped(stop, best);
            }
            StepEnd::Stopped(stop, _) => format!("{worker} stopped: {}", stop.message()),
            StepEnd::Failed(e) => format!("{worker} failed: {e}"),
        };
        messages.push(Message::User(report));
    }
    StepEnd::Stopped(
        Stop::Budget {
            what: format!(
                "max_rounds ({}) reached without a final answer",
                config.max_rounds
            ),
            agent: Some(step.agent.name.clone()),
        },
        best,
    )
}
