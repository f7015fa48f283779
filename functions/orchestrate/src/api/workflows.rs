//! `GET /v1/workflows`: each workflow as a graph.

use axum::extract::State;
use serde_json::{Value, json};

use super::Api;

/// Each workflow as a graph: its agents (nodes, with their role's settings) and edges (with
/// their conditions), its entries and exit, and the workers its planners and supervisors use.
pub(super) async fn workflows(State(api): State<Api>) -> axum::Json<Value> {
    let orchestration = &api.service.engine.orchestration;
    let workflows: Vec<Value> = orchestration
        .workflows
        .values()
        .map(|w| {
            let name = |i: usize| w.nodes[i].name.clone();
            let workers: Vec<Value> = w
                .agents(orchestration)
                .into_iter()
                .filter(|a| !w.nodes.iter().any(|n| n.name == a.name))
                .map(|a| agent_json(a))
                .collect();
            json!({
                "name": w.name,
                "description": w.description,
                "agents": w.nodes.iter().map(|a| agent_json(a)).collect::<Vec<_>>(),
                "edges": w.edges.iter().map(|e| json!({
                    "from": name(e.from),
                    "to": name(e.to),
                    "when": e.when,
                })).collect::<Vec<_>>(),
                "entries": (0..w.nodes.len())
                    .filter(|&i| w.inputs(i).next().is_none())
                    .map(name)
                    .collect::<Vec<_>>(),
                "exit": w.exit.map(name),
                "workers": workers,
            })
        })
        .collect();
    axum::Json(json!({ "workflows": workflows }))
}

fn agent_json(a: &crate::config::Agent) -> Value {
    use crate::config::Role;
    let mut agent = json!({
        "name": a.name,
        "role": a.role.name(),
        "model": a.model.as_ref().map(|m| json!({
            "name": m.name,
            "model": m.model,
            "provider": m.endpoint.provider().name(),
        })),
        "mcp_servers": a.mcp_servers.iter().map(|s| json!({
            "name": s.name,
            "tools": s.tools,
        })).collect::<Vec<_>>(),
        "max_iterations": a.max_iterations,
    });
    let settings = match &a.role {
        Role::Classifier(c) => json!({
            "categories": c.categories.iter().map(|c| json!({
                "name": c.name, "description": c.description, "keywords": c.keywords,
            })).collect::<Vec<_>>(),
            "confidence_threshold": c.confidence_threshold,
            "multi_label": c.multi_label,
            "fallback": c.fallback,
            "keywords_first": c.keywords_first,
        }),
        Role::Aggregator(g) => json!({
            "strategy": g.strategy.name(),
            "source_weights": g.source_weights,
            "vote_field": g.vote_field,
        }),
        Role::Planner(p) => json!({
            "max_steps": p.max_steps,
            "workers": p.workers,
            "replan_on_failure": p.replan_on_failure,
        }),
        Role::Supervisor(s) => json!({"workers": s.workers, "max_rounds": s.max_rounds}),
        Role::React | Role::Logger => Value::Null,
    };
    if !settings.is_null() {
        agent[format!("{}_config", a.role.name())] = settings;
    }
    agent
}
