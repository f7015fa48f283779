//! Each role's settings (`classifier_config`, `aggregator_config`, `planner_config`, a
//! supervisor's `workers` and `max_rounds`), checked against the role and resolved; then, once
//! every agent is known, the checks that need them all: workers exist and are react agents
//! outside any workflow's graph, and a classifier's routes name its categories.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Problem;
use super::file::{AgentFile, RoleFile};
use super::graph::Edge;
use super::locate::Path;
use super::model::{Agent, Aggregator, Category, Classifier, Planner, Role, Strategy, Supervisor};
use super::resolve::find;

/// A classifier's least confidence for a route, unless set.
const DEFAULT_CONFIDENCE_THRESHOLD: f64 = 0.7;
/// A planner's most steps, unless set.
const DEFAULT_MAX_STEPS: u32 = 5;
/// A supervisor's most rounds, unless set.
const DEFAULT_MAX_ROUNDS: u32 = 10;

/// The role, with its settings; settings of another role are refused.
pub(super) fn role(a: &AgentFile, at: &Path) -> Result<Role, Problem> {
    for (key, set, owner) in [
        (
            "classifier_config",
            a.classifier_config.is_some(),
            RoleFile::Classifier,
        ),
        (
            "aggregator_config",
            a.aggregator_config.is_some(),
            RoleFile::Aggregator,
        ),
        (
            "planner_config",
            a.planner_config.is_some(),
            RoleFile::Planner,
        ),
        ("workers", !a.workers.is_empty(), RoleFile::Supervisor),
        ("max_rounds", a.max_rounds.is_some(), RoleFile::Supervisor),
    ] {
        if set && a.role != owner {
            return Err(Problem::new(
                at.key(key),
                format!(
                    "{key} is for {} agents, and this agent's role is {}",
                    owner.name(),
                    a.role.name()
                ),
            ));
        }
    }
    Ok(match a.role {
        RoleFile::React => Role::React,
        RoleFile::Logger => Role::Logger,
        RoleFile::Producer => {
            return Err(Problem::new(
                at.key("role"),
                "role producer (the seed's ticker) does not run on a serverless platform: work arrives as requests and events, not from timers; send it to POST /v1/run (CloudEvents triggers from Pub/Sub, Eventarc and Cloud Scheduler are not yet built)",
            ));
        }
        RoleFile::Classifier => Role::Classifier(classifier(a, at)?),
        RoleFile::Aggregator => Role::Aggregator(aggregator(a, at)?),
        RoleFile::Planner => Role::Planner(planner(a)?),
        RoleFile::Supervisor => Role::Supervisor(Supervisor {
            workers: a.workers.clone(),
            max_rounds: match a.max_rounds {
                None => DEFAULT_MAX_ROUNDS,
                Some(0) => {
                    return Err(Problem::new(
                        at.key("max_rounds"),
                        "0 allows no round; expected at least 1",
                    ));
                }
                Some(n) => n,
            },
        }),
    })
}

/// Whether the role talks to a model.
pub(super) fn uses_model(role: &Role) -> bool {
    match role {
        Role::Logger => false,
        Role::Aggregator(a) => a.strategy == Strategy::Consensus,
        _ => true,
    }
}

/// Why `model` is refused for a role that uses none.
pub(super) fn why_no_model(role: &Role) -> String {
    match role {
        Role::Aggregator(a) => format!(
            "aggregator strategy {} uses no model (only consensus does)",
            a.strategy.name()
        ),
        other => format!("a {} agent uses no model", other.name()),
    }
}

fn classifier(a: &AgentFile, at: &Path) -> Result<Classifier, Problem> {
    let at = at.key("classifier_config");
    let Some(c) = &a.classifier_config else {
        return Err(Problem::new(
            at,
            "a classifier needs classifier_config with its categories",
        ));
    };
    if c.categories.len() < 2 {
        return Err(Problem::new(
            at.key("categories"),
            "a classifier needs at least two categories",
        ));
    }
    let mut categories: Vec<Category> = Vec::new();
    for (i, cat) in c.categories.iter().enumerate() {
        let path = at.key("categories").index(i).key("name");
        if cat.name.trim().is_empty() {
            return Err(Problem::new(path, "a category needs a name"));
        }
        if categories.iter().any(|c| c.name == cat.name) {
            return Err(super::resolve::duplicate(path, "category", &cat.name));
        }
        categories.push(Category {
            name: cat.name.clone(),
            description: cat.description.clone(),
            keywords: cat.keywords.iter().map(|k| k.to_lowercase()).collect(),
            examples: cat.examples.clone(),
        });
    }
    let threshold = c
        .confidence_threshold
        .unwrap_or(DEFAULT_CONFIDENCE_THRESHOLD);
    if !(0.0..=1.0).contains(&threshold) {
        return Err(Problem::new(
            at.key("confidence_threshold"),
            format!("{threshold} is not a confidence; expected a number from 0 to 1"),
        ));
    }
    if let Some(fallback) = &c.fallback
        && !categories.iter().any(|c| &c.name == fallback)
    {
        let names: Vec<&String> = categories.iter().map(|c| &c.name).collect();
        return Err(super::resolve::unknown(
            at.key("fallback"),
            "category",
            fallback,
            names.into_iter(),
        ));
    }
    Ok(Classifier {
        categories,
        confidence_threshold: threshold,
        multi_label: c.multi_label.unwrap_or(false),
        fallback: c.fallback.clone(),
        keywords_first: c.keywords_first.unwrap_or(false),
    })
}

fn aggregator(a: &AgentFile, at: &Path) -> Result<Aggregator, Problem> {
    let at = at.key("aggregator_config");
    let Some(c) = &a.aggregator_config else {
        return Ok(Aggregator {
            strategy: Strategy::Consensus,
            source_weights: BTreeMap::new(),
            vote_field: None,
        });
    };
    let strategy = match c.strategy.as_deref() {
        None => Strategy::Consensus,
        Some(name) => Strategy::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| *s)
            .ok_or_else(|| {
                let names: Vec<&str> = Strategy::ALL.iter().map(|(n, _)| *n).collect();
                Problem::new(
                    at.key("strategy"),
                    format!(
                        "unknown strategy {name:?}; expected one of {}",
                        names.join(", ")
                    ),
                )
            })?,
    };
    if !c.source_weights.is_empty() && strategy != Strategy::VotingWeighted {
        return Err(Problem::new(
            at.key("source_weights"),
            format!(
                "source_weights is for strategy voting_weighted, not {}",
                strategy.name()
            ),
        ));
    }
    for (source, weight) in &c.source_weights {
        if !weight.is_finite() || *weight < 0.0 {
            return Err(Problem::new(
                at.key("source_weights").key(source),
                format!("{weight} is not a weight; expected a number of at least 0"),
            ));
        }
    }
    let voting = matches!(
        strategy,
        Strategy::VotingMajority | Strategy::VotingUnanimous | Strategy::VotingWeighted
    );
    if c.vote_field.is_some() && !voting {
        return Err(Problem::new(
            at.key("vote_field"),
            format!(
                "vote_field is for the voting strategies, not {}",
                strategy.name()
            ),
        ));
    }
    Ok(Aggregator {
        strategy,
        source_weights: c.source_weights.clone(),
        vote_field: c.vote_field.clone(),
    })
}

fn planner(a: &AgentFile) -> Result<Planner, Problem> {
    let c = a.planner_config.as_ref();
    Ok(Planner {
        max_steps: c
            .and_then(|c| c.max_steps)
            .unwrap_or(DEFAULT_MAX_STEPS)
            .max(1),
        workers: c.map(|c| c.workers.clone()).unwrap_or_default(),
        replan_on_failure: c.and_then(|c| c.replan_on_failure).unwrap_or(false),
    })
}

/// Workers exist, are react agents, and stay out of the graph (no edges): each worker by its
/// index, with the index of an agent it works for.
pub(super) fn check_workers(
    files: &[(AgentFile, Path)],
    agents: &[Arc<Agent>],
    names: &[String],
    edges: &[Edge],
) -> Result<BTreeMap<usize, usize>, Problem> {
    let mut workers = BTreeMap::new();
    for (boss, ((file, at), agent)) in files.iter().zip(agents).enumerate() {
        let path = match agent.role {
            Role::Planner(_) => at.key("planner_config").key("workers"),
            _ => at.key("workers"),
        };
        for (j, name) in agent.workers().iter().enumerate() {
            let here = path.index(j);
            let w = find(names, name, &here, "agent")?;
            if w == boss {
                return Err(Problem::new(
                    here,
                    format!("{name} cannot be its own worker"),
                ));
            }
            if agents[w].role != Role::React {
                return Err(Problem::new(
                    here,
                    format!(
                        "worker {name} is a {} agent; workers are react agents",
                        agents[w].role.name()
                    ),
                ));
            }
            if let Some(e) = edges.iter().find(|e| e.from == w || e.to == w) {
                return Err(Problem::new(
                    e.at.clone(),
                    format!(
                        "{name} is a worker of {}, which gives it its tasks: a worker has no inputs, outputs or depends_on",
                        file.name
                    ),
                ));
            }
            workers.insert(w, boss);
        }
    }
    Ok(workers)
}

/// A classifier's `when`s name its categories and every category has a route; no other agent's
/// output has a `when`.
pub(super) fn check_routes(
    files: &[(AgentFile, Path)],
    agents: &[Arc<Agent>],
    edges: &[Edge],
) -> Result<(), Problem> {
    for (i, ((_, at), agent)) in files.iter().zip(agents).enumerate() {
        let out: Vec<&Edge> = edges.iter().filter(|e| e.from == i).collect();
        let Role::Classifier(c) = &agent.role else {
            if let Some(e) = out.iter().find(|e| e.when.is_some()) {
                return Err(Problem::new(
                    e.at.clone(),
                    format!(
                        "`when` routes a classifier's output, and {} is a {} agent",
                        agent.name,
                        agent.role.name()
                    ),
                ));
            }
            continue;
        };
        for e in &out {
            if let Some(when) = &e.when
                && !c.categories.iter().any(|c| &c.name == when)
            {
                let names: Vec<&String> = c.categories.iter().map(|c| &c.name).collect();
                return Err(super::resolve::unknown(
                    e.at.clone(),
                    "category",
                    when,
                    names.into_iter(),
                ));
            }
        }
        if out.iter().any(|e| e.when.is_some()) {
            for cat in &c.categories {
                if !out
                    .iter()
                    .any(|e| e.when.is_none() || e.when.as_ref() == Some(&cat.name))
                {
                    return Err(Problem::new(
                        at.key("outputs"),
                        format!(
                            "category {} has no route: add an outputs entry with `when: {}`",
                            cat.name, cat.name
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}
