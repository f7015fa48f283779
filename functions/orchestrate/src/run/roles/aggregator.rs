//! The `aggregator` agent: merges the outputs of the agents that feed it. `consensus` asks a
//! model for one answer that names the disagreements; the voting strategies count equal
//! answers (or one field of structured answers) without a model and report the tally, the
//! outcome and the winner, a tie or a missing majority being an outcome of its own; `first`
//! takes the output that arrived first, `concat` all of them in arrival order. The sources
//! that failed (with `on_error: continue`) are named.

use aixrun::llm::Message;
use serde_json::{Value, json};

use crate::config::{Aggregator, Strategy};
use crate::run::event::Decision;
use crate::run::step::{Input, Step, StepEnd, as_text};
use crate::run::turn::structured;

/// Merges `input`.
pub(crate) async fn run(step: &Step<'_>, config: &Aggregator, input: &Input) -> StepEnd {
    let (outputs, failed) = match input {
        Input::One(v) => (vec![("input".to_owned(), v.clone())], Vec::new()),
        Input::Many { outputs, failed } => (outputs.clone(), failed.clone()),
    };
    let failed_list: Vec<Value> = failed
        .iter()
        .map(|(agent, error)| json!({"agent": agent, "error": error}))
        .collect();
    let strategy = config.strategy;
    let merged = |outcome: &str, tally: Vec<Value>, disagreements: Vec<String>| Decision::Tally {
        strategy: strategy.name().to_owned(),
        outcome: outcome.to_owned(),
        tally,
        failed: failed_list.clone(),
        disagreements,
    };
    match strategy {
        Strategy::First => {
            let Some((source, output)) = outputs.first() else {
                return StepEnd::Failed("no input arrived".to_owned());
            };
            step.decide(merged("first", vec![json!({"source": source})], Vec::new()));
            StepEnd::done(output.clone())
        }
        Strategy::Concat => {
            step.decide(merged("merged", Vec::new(), Vec::new()));
            if outputs.iter().all(|(_, v)| v.is_string()) {
                let texts: Vec<&str> = outputs.iter().filter_map(|(_, v)| v.as_str()).collect();
                StepEnd::done(Value::String(texts.join("\n\n")))
            } else {
                StepEnd::done(Value::Array(outputs.into_iter().map(|(_, v)| v).collect()))
            }
        }
        Strategy::Consensus => consensus(step, &outputs, &failed, merged).await,
        Strategy::VotingMajority | Strategy::VotingUnanimous | Strategy::VotingWeighted => {
            let count = count(config, &outputs);
            let (outcome, winner) = outcome(strategy, &count);
            let tally: Vec<Value> = count
                .iter()
                .map(|v| {
                    json!({"value": v.value, "votes": v.sources.len(), "weight": v.weight, "sources": v.sources})
                })
                .collect();
            step.decide(merged(outcome, tally.clone(), Vec::new()));
            StepEnd::done(json!({"outcome": outcome, "winner": winner, "tally": tally}))
        }
    }
}

/// One distinct answer and who gave it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Votes {
    /// The answer (or its voted field).
    pub(crate) value: Value,
    /// Its weight (its number of votes, unless weighted).
    pub(crate) weight: f64,
    /// The agents that gave it, in arrival order.
    pub(crate) sources: Vec<String>,
}

/// The distinct answers, most weight first (ties in order of first arrival).
pub(crate) fn count(config: &Aggregator, outputs: &[(String, Value)]) -> Vec<Votes> {
    let mut tally: Vec<Votes> = Vec::new();
    for (source, output) in outputs {
        let Some(vote) = vote_of(output, config.vote_field.as_deref()) else {
            continue;
        };
        let weight = if config.strategy == Strategy::VotingWeighted {
            config.source_weights.get(source).copied().unwrap_or(1.0)
        } else {
            1.0
        };
        match tally.iter_mut().find(|v| v.value == vote) {
            Some(v) => {
                v.weight += weight;
                v.sources.push(source.clone());
            }
            None => tally.push(Votes {
                value: vote,
                weight,
                sources: vec![source.clone()],
            }),
        }
    }
    // Stable: equal weights keep their arrival order.
    tally.sort_by(|a, b| b.weight.total_cmp(&a.weight));
    tally
}

/// An answer's vote: text that is JSON is read as JSON, other text is trimmed; with a field,
/// that field of the object (no vote when it has none).
fn vote_of(output: &Value, field: Option<&str>) -> Option<Value> {
    let value = match output {
        Value::String(s) => serde_json::from_str::<Value>(s.trim())
            .ok()
            .filter(|v| v.is_object() || v.is_array())
            .unwrap_or_else(|| Value::String(s.trim().to_owned())),
        other => other.clone(),
    };
    match field {
        None => Some(value),
        Some(f) => value.get(f).cloned(),
    }
}

/// The outcome of a count, and the winner when there is one.
pub(crate) fn outcome(strategy: Strategy, tally: &[Votes]) -> (&'static str, Value) {
    let Some(top) = tally.first() else {
        return ("no_votes", Value::Null);
    };
    let tied = tally
        .get(1)
        .is_some_and(|second| second.weight == top.weight);
    let total: f64 = tally.iter().map(|v| v.weight).sum();
    match strategy {
        Strategy::VotingUnanimous if tally.len() == 1 => ("winner", top.value.clone()),
        Strategy::VotingUnanimous => ("not_unanimous", Value::Null),
        _ if tied => ("tie", Value::Null),
        Strategy::VotingMajority if top.weight * 2.0 <= total => ("no_majority", Value::Null),
        _ => ("winner", top.value.clone()),
    }
}

async fn consensus(
    step: &Step<'_>,
    outputs: &[(String, Value)],
    failed: &[(String, String)],
    merged: impl Fn(&str, Vec<Value>, Vec<String>) -> Decision,
) -> StepEnd {
    let Some(service) = &step.agent.model else {
        return StepEnd::Failed("consensus needs a model".to_owned());
    };
    if outputs.is_empty() {
        return StepEnd::Failed("no input arrived to agree on".to_owned());
    }
    let instructions = step.prompt_then(
        "Several agents answered the same task. Write the one answer they support together, \
         and list each point on which they disagree (none, when they agree). Answer with JSON \
         only: {\"answer\": \"...\", \"disagreements\": [\"...\"]}.",
    );
    let mut answers = String::new();
    for (source, output) in outputs {
        answers.push_str(&format!("Answer of {source}:\n{}\n\n", as_text(output)));
    }
    for (source, error) in failed {
        answers.push_str(&format!("{source} failed: {error}\n\n"));
    }
    let schema = json!({
        "type": "object",
        "properties": {
            "answer": {"type": "string"},
            "disagreements": {"type": "array", "items": {"type": "string"}}
        },
        "required": ["answer", "disagreements"]
    });
    let messages = vec![Message::System(instructions), Message::User(answers)];
    match structured(step, service, messages, &step.agent.name, &schema, false).await {
        Ok(answer) => {
            let disagreements = answer["disagreements"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d.as_str().map(str::to_owned))
                .collect();
            step.decide(merged("merged", Vec::new(), disagreements));
            StepEnd::done(answer["answer"].clone())
        }
        Err(end) => end,
    }
}
