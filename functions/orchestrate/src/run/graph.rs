//! The workflow's walk. Entries (agents with no inputs) take the run's input; an agent runs
//! when all its inputs are resolved (delivered, skipped by a route not taken, or failed with
//! `on_error: continue`), or with `join: any` at the first one delivered. An agent none of
//! whose inputs was delivered is skipped, and so, in turn, are the agents only it feeds. At
//! most `defaults.branch_concurrency` agents run at once. A failure, unless tolerated, ends
//! the walk at once: dropping the other branches' futures cancels their model and tool calls;
//! so does the exit's answer, for branches still running then. A tolerated failure only spares
//! the branches: a walk whose exit (or, without one, every sink) did not complete ends as that
//! exit did, since the run has no output to give.

use std::collections::VecDeque;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use serde_json::{Map, Value};

use super::Ending;
use super::budget::Stop;
use super::step::{Input, RunCtx, StepEnd, run_step};
use crate::config::{Join, OnError, Workflow};

/// Where one node stands.
#[derive(Debug, Clone, Default)]
struct Node {
    /// Inputs resolved so far (delivered or not).
    resolved: usize,
    /// Outputs delivered, in arrival order.
    delivered: Vec<(String, Value)>,
    /// Feeders that failed, tolerated.
    failed: Vec<(String, String)>,
    /// It was queued to run (or skipped): it is never queued again.
    decided: bool,
}

/// How a node that ran ended: completed, or its tolerated failure (its error, and its stop
/// when a limit stopped it).
type Ended = Result<(), (String, Option<Stop>)>;

/// Walks `workflow` on `input`.
pub(super) async fn walk(
    run: &RunCtx<'_>,
    workflow: &Workflow,
    input: serde_json::Value,
) -> Ending {
    let n = workflow.nodes.len();
    let mut nodes = vec![Node::default(); n];
    let fan_out: Vec<bool> = (0..n).map(|i| workflow.outputs(i).count() > 1).collect();
    let entries: Vec<usize> = (0..n)
        .filter(|&i| workflow.inputs(i).next().is_none())
        .collect();
    let mut ready: VecDeque<(usize, Input, Option<String>)> = VecDeque::new();
    for &i in &entries {
        nodes[i].decided = true;
        let branch = (entries.len() > 1).then(|| workflow.nodes[i].name.clone());
        ready.push_back((i, Input::One(input.clone()), branch));
    }
    let limit = run.engine.orchestration.defaults.branch_concurrency.max(1);
    let mut ended: Vec<Option<Ended>> = vec![None; n];
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < limit
            && let Some((i, input, branch)) = ready.pop_front()
        {
            let agent = &workflow.nodes[i];
            running.push(async move {
                let end = run_step(run, agent, &input, None, branch, false).await;
                (i, end)
            });
        }
        let Some((i, end)) = running.next().await else {
            break;
        };
        let agent = &workflow.nodes[i];
        // Once the exit has answered nothing else can change the run's output: branches still
        // running (the losers of a `join: any` race) are dropped, which cancels them.
        if workflow.exit == Some(i) && matches!(end, StepEnd::Done { .. }) {
            return Ending::Completed;
        }
        // Who is fed what: `Some(output)` delivers, `None` resolves without.
        let (output, routes, failure) = match end {
            StepEnd::Done { output, routes } => (Some(output), routes, None),
            StepEnd::Failed(error) => (None, None, Some((error, None))),
            StepEnd::Stopped(stop, _) if stop.stops_the_run() => return Ending::Stopped(stop),
            StepEnd::Stopped(stop, _) => (None, None, Some((stop.message(), Some(stop)))),
        };
        if let Some((error, stop)) = &failure {
            let tolerated = agent.on_error == OnError::Continue
                || workflow
                    .inputs(i)
                    .any(|l| workflow.nodes[l.from].on_error == OnError::Continue);
            if !tolerated {
                return match stop {
                    Some(stop) => Ending::Stopped(stop.clone()),
                    None => Ending::Failed(format!("agent {}: {error}", agent.name)),
                };
            }
        }
        ended[i] = Some(match &failure {
            None => Ok(()),
            Some(f) => Err(f.clone()),
        });
        let mut queue = VecDeque::from([(i, output, routes, failure.map(|(e, _)| e))]);
        // Resolving an edge can skip its target, which resolves the target's own edges.
        while let Some((from, output, routes, error)) = queue.pop_front() {
            let name = workflow.nodes[from].name.clone();
            for link in workflow.outputs(from) {
                let to = link.to;
                let taken = match (&link.when, &routes) {
                    (None, _) => true,
                    (Some(when), Some(routes)) => routes.contains(when),
                    (Some(_), None) => false,
                };
                let node = &mut nodes[to];
                node.resolved += 1;
                match (&output, taken) {
                    (Some(value), true) => node.delivered.push((name.clone(), value.clone())),
                    _ => {
                        if let Some(error) = &error {
                            node.failed.push((name.clone(), error.clone()));
                        }
                    }
                }
                if node.decided {
                    continue;
                }
                let total = workflow.inputs(to).count();
                let target = &workflow.nodes[to];
                let go = match target.join {
                    Join::Any => !node.delivered.is_empty(),
                    Join::All => node.resolved == total && !node.delivered.is_empty(),
                };
                if go {
                    node.decided = true;
                    let input = input_of(target.role.name() == "aggregator", node);
                    let branch = (fan_out[from] || link.when.is_some())
                        .then(|| link.when.clone().unwrap_or_else(|| target.name.clone()));
                    ready.push_back((to, input, branch));
                } else if node.resolved == total {
                    // Nothing will ever reach it: skipped, and so are its own edges.
                    node.decided = true;
                    let failed = node.failed.first().map(|(a, e)| format!("{a}: {e}"));
                    queue.push_back((to, None, None, failed));
                }
            }
        }
    }
    unreached(workflow, &ended).unwrap_or(Ending::Completed)
}

/// How a walk whose exit did not complete ends (none when it did): as the exit's own failure
/// or stop, else failed naming the first tolerated failure that kept it from running. Without
/// an exit, one completed sink is enough.
fn unreached(workflow: &Workflow, ended: &[Option<Ended>]) -> Option<Ending> {
    let exits: Vec<usize> = match workflow.exit {
        Some(exit) => vec![exit],
        None => (0..ended.len())
            .filter(|&i| workflow.outputs(i).next().is_none())
            .collect(),
    };
    if exits.iter().any(|&i| matches!(ended[i], Some(Ok(())))) {
        return None;
    }
    let name = |i: usize| workflow.nodes[i].name.clone();
    if let Some((i, (error, stop))) = exits.iter().find_map(|&i| match &ended[i] {
        Some(Err(failure)) => Some((i, failure)),
        _ => None,
    }) {
        return Some(match stop {
            Some(stop) => Ending::Stopped(stop.clone()),
            None => Ending::Failed(format!("agent {}: {error}", name(i))),
        });
    }
    let why = ended
        .iter()
        .enumerate()
        .find_map(|(i, e)| match e {
            Some(Err((error, _))) => Some(format!(": agent {} failed: {error}", name(i))),
            _ => None,
        })
        .unwrap_or_default();
    let names: Vec<String> = exits.iter().map(|&i| name(i)).collect();
    Some(Ending::Failed(format!(
        "{} never ran{why}",
        names.join(", ")
    )))
}

/// What a node that runs takes: the one output that reached it (an aggregator always gets the
/// list), else all of them by agent with the failures.
fn input_of(aggregator: bool, node: &Node) -> Input {
    if node.delivered.len() == 1 && node.failed.is_empty() && !aggregator {
        return Input::One(node.delivered[0].1.clone());
    }
    Input::Many {
        outputs: node.delivered.clone(),
        failed: node.failed.clone(),
    }
}

/// The run's output, read from its steps: the exit's output when it ran; else the output of
/// the top-level steps nothing after them consumed (the sinks that ran, or the branches a stop
/// cut off): one alone, several as an object by agent.
pub(super) fn output(workflow: &Workflow, steps: &[super::state::StepRecord]) -> Value {
    let top: Vec<&super::state::StepRecord> = steps
        .iter()
        .filter(|s| s.parent_step_id.is_none())
        .collect();
    let ran = |name: &str| top.iter().find(|s| s.summary.agent == name);
    if let Some(exit) = workflow.exit
        && let Some(step) = ran(&workflow.nodes[exit].name)
    {
        return step.summary.output.clone();
    }
    let leaves: Vec<&&super::state::StepRecord> = top
        .iter()
        .filter(|s| {
            let Some(i) = workflow
                .nodes
                .iter()
                .position(|a| a.name == s.summary.agent)
            else {
                return false;
            };
            !workflow
                .outputs(i)
                .any(|l| ran(&workflow.nodes[l.to].name).is_some())
        })
        .collect();
    match leaves.as_slice() {
        [] => Value::Null,
        [one] => one.summary.output.clone(),
        many => Value::Object(
            many.iter()
                .map(|s| (s.summary.agent.clone(), s.summary.output.clone()))
                .collect::<Map<String, Value>>(),
        ),
    }
}
