//! Agents as a graph: the edges their `inputs`, `outputs` and `depends_on` make, the cycle
//! check (a supervisor's rounds are its own loop, not edges), and each workflow's graph.

use std::sync::Arc;

use super::Problem;
use super::locate::Path;
use super::model::{Agent, Link, Workflow};

/// `from` runs before `to` and feeds it (only when routed to `when`, for a classifier); `at` is
/// the entry of the file that says so.
#[derive(Debug, Clone)]
pub(super) struct Edge {
    pub(super) from: usize,
    pub(super) to: usize,
    pub(super) when: Option<String>,
    pub(super) at: Path,
}

/// The edges, without repeats (the same edge may be written on both agents; a conditional one
/// wins over its unconditional twin, which `inputs` or `depends_on` may also spell).
pub(super) fn dedupe(edges: Vec<Edge>) -> Vec<Edge> {
    let mut out: Vec<Edge> = Vec::new();
    for e in edges {
        match out.iter_mut().find(|o| o.from == e.from && o.to == e.to) {
            Some(o) if o.when.is_none() => {
                o.when = e.when;
                if o.when.is_some() {
                    o.at = e.at;
                }
            }
            Some(_) => {}
            None => out.push(e),
        }
    }
    out
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

/// One workflow's graph: its members and the edges among them. Every edge stays inside the
/// workflow, its members form one connected graph, and its exit is `output` or the one member
/// nothing follows.
pub(super) fn build(
    name: &str,
    at: &Path,
    members: &[usize],
    agents: &[Arc<Agent>],
    edges: &[Edge],
    output: Option<(usize, Path)>,
) -> Result<Workflow, Problem> {
    let inside = |i: usize| members.contains(&i);
    let node = |i: usize| members.iter().position(|&m| m == i).unwrap_or(0);
    let mut links = Vec::new();
    for e in edges {
        match (inside(e.from), inside(e.to)) {
            (false, false) => continue,
            (true, true) => links.push(Link {
                from: node(e.from),
                to: node(e.to),
                when: e.when.clone(),
            }),
            (false, true) => {
                return Err(Problem::new(
                    e.at.clone(),
                    format!(
                        "{} takes input from {}, which is not in workflow {name} and so never runs there; add it to the workflow's agents",
                        agents[e.to].name, agents[e.from].name
                    ),
                ));
            }
            (true, false) => {
                return Err(Problem::new(
                    e.at.clone(),
                    format!(
                        "{} -> {} leaves workflow {name}: a workflow's edges stay inside it",
                        agents[e.from].name, agents[e.to].name
                    ),
                ));
            }
        }
    }
    let parts = components(members.len(), &links);
    if parts.len() > 1 {
        let starts: Vec<&str> = parts
            .iter()
            .map(|p| agents[members[p[0]]].name.as_str())
            .collect();
        return Err(Problem::new(
            at.clone(),
            format!(
                "workflow {name} has {} separate parts, starting at {}: join them with inputs or outputs, or declare one workflow per part under `workflows`",
                parts.len(),
                starts.join(", ")
            ),
        ));
    }
    let exit = match output {
        Some((agent, path)) => {
            if !inside(agent) {
                return Err(Problem::new(
                    path,
                    format!(
                        "{} is not one of workflow {name}'s agents",
                        agents[agent].name
                    ),
                ));
            }
            Some(node(agent))
        }
        None => {
            let sinks: Vec<usize> = (0..members.len())
                .filter(|&n| !links.iter().any(|l| l.from == n))
                .collect();
            (sinks.len() == 1).then(|| sinks[0])
        }
    };
    Ok(Workflow {
        name: name.to_owned(),
        description: None,
        nodes: members.iter().map(|&i| Arc::clone(&agents[i])).collect(),
        edges: links,
        exit,
    })
}

/// The weakly connected parts of a graph of `n` nodes, each a list of nodes (first = lowest).
fn components(n: usize, links: &[Link]) -> Vec<Vec<usize>> {
    let mut part = vec![usize::MAX; n];
    let mut parts = Vec::new();
    for start in 0..n {
        if part[start] != usize::MAX {
            continue;
        }
        let id = parts.len();
        let mut members = vec![start];
        part[start] = id;
        let mut i = 0;
        while i < members.len() {
            let at = members[i];
            for l in links {
                let other = if l.from == at {
                    l.to
                } else if l.to == at {
                    l.from
                } else {
                    continue;
                };
                if part[other] == usize::MAX {
                    part[other] = id;
                    members.push(other);
                }
            }
            i += 1;
        }
        members.sort_unstable();
        parts.push(members);
    }
    parts
}
