//! Agents as a graph: the edges their `inputs`, `outputs` and `depends_on` make, the cycle
//! check, and each workflow's walk. This release runs chains, so fan-out (one agent feeding
//! two) and fan-in (two feeding one) are refused here, each with the edge that makes it.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Problem;
use super::locate::Path;
use super::model::{Agent, Workflow};

/// `from` runs before `to` and feeds it; `at` is the entry of the file that says so.
#[derive(Debug, Clone)]
pub(super) struct Edge {
    pub(super) from: usize,
    pub(super) to: usize,
    pub(super) at: Path,
}

/// The edges, without repeats (the same edge may be written on both agents).
pub(super) fn dedupe(edges: Vec<Edge>) -> Vec<Edge> {
    let mut seen = std::collections::BTreeSet::new();
    edges
        .into_iter()
        .filter(|e| seen.insert((e.from, e.to)))
        .collect()
}

/// The first cycle, reported at the edge that closes it: `a -> b -> a`.
pub(super) fn find_cycle(names: &[String], edges: &[Edge]) -> Result<(), Problem> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut marks = vec![Mark::New; names.len()];
    let mut stack: Vec<usize> = Vec::new();
    fn visit(
        n: usize,
        names: &[String],
        edges: &[Edge],
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
    ) -> Result<(), Problem> {
        marks[n] = Mark::Open;
        stack.push(n);
        for e in edges.iter().filter(|e| e.from == n) {
            match marks[e.to] {
                Mark::Open => {
                    let start = stack.iter().position(|&s| s == e.to).unwrap_or(0);
                    let mut cycle: Vec<&str> =
                        stack[start..].iter().map(|&i| names[i].as_str()).collect();
                    cycle.push(&names[e.to]);
                    return Err(Problem::new(
                        e.at.clone(),
                        format!("dependency cycle: {}", cycle.join(" -> ")),
                    ));
                }
                Mark::New => visit(e.to, names, edges, marks, stack)?,
                Mark::Done => {}
            }
        }
        stack.pop();
        marks[n] = Mark::Done;
        Ok(())
    }
    for n in 0..names.len() {
        if marks[n] == Mark::New {
            visit(n, names, edges, &mut marks, &mut stack)?;
        }
    }
    Ok(())
}

/// One workflow's steps: its members must form one chain.
pub(super) fn walk(
    name: &str,
    at: &Path,
    members: &[usize],
    agents: &[Arc<Agent>],
    edges: &[Edge],
) -> Result<Workflow, Problem> {
    let inside = |i: usize| members.contains(&i);
    let mut next: BTreeMap<usize, &Edge> = BTreeMap::new();
    let mut prev: BTreeMap<usize, &Edge> = BTreeMap::new();
    for e in edges {
        match (inside(e.from), inside(e.to)) {
            (false, false) => continue,
            (true, true) => {}
            _ => {
                return Err(Problem::new(
                    e.at.clone(),
                    format!(
                        "{} -> {} leaves workflow {name}: a workflow's edges stay inside it",
                        agents[e.from].name, agents[e.to].name
                    ),
                ));
            }
        }
        if let Some(first) = next.insert(e.from, e) {
            return Err(Problem::new(
                e.at.clone(),
                format!(
                    "{} feeds both {} and {} (fan-out): this release runs chains, where each agent feeds at most one other",
                    agents[e.from].name, agents[first.to].name, agents[e.to].name
                ),
            ));
        }
        if let Some(first) = prev.insert(e.to, e) {
            return Err(Problem::new(
                e.at.clone(),
                format!(
                    "{} takes input from both {} and {} (fan-in): this release runs chains, where each agent takes input from at most one other",
                    agents[e.to].name, agents[first.from].name, agents[e.from].name
                ),
            ));
        }
    }
    let entries: Vec<usize> = members
        .iter()
        .copied()
        .filter(|i| !prev.contains_key(i))
        .collect();
    if entries.len() != 1 {
        let starts: Vec<&str> = entries.iter().map(|&i| agents[i].name.as_str()).collect();
        return Err(Problem::new(
            at.clone(),
            format!(
                "workflow {name} has {} separate chains, starting at {}: this release runs one chain per workflow; declare one workflow per chain under `workflows`",
                entries.len(),
                starts.join(", ")
            ),
        ));
    }
    let mut steps = vec![Arc::clone(&agents[entries[0]])];
    let mut current = entries[0];
    while let Some(e) = next.get(&current) {
        current = e.to;
        steps.push(Arc::clone(&agents[current]));
    }
    Ok(Workflow {
        name: name.to_owned(),
        description: None,
        steps,
    })
}
