//! The agent orchestrator function: the validated configuration, the run engine that walks its
//! workflows, and the run API on the runtime's one port (HTTP, and gRPC: [`grpc`]).

pub mod api;
pub mod config;
pub mod grpc;
pub mod mcp;
pub mod openapi;
pub mod reachability;
pub mod run;
pub mod service;
pub mod store;
pub mod toolbox;
pub mod ui;

use std::process::ExitCode;
use std::sync::Arc;

use aixrun::{App, Function, StartupError};

use crate::run::{Engine, RunMetrics};

const FUNCTION: Function = Function {
    name: "orchestrate",
    version: env!("CARGO_PKG_VERSION"),
};

/// `LOG_PAYLOADS`: `true` lets run logs carry inputs and outputs (never by default).
pub const LOG_PAYLOADS: &str = "LOG_PAYLOADS";

/// Runs orchestrate until SIGTERM.
pub fn main() -> ExitCode {
    aixrun::run(FUNCTION, setup)
}

/// Loads the configuration (a bad one stops start-up: exit 2, one line; `sm://` values in it
/// are resolved first, and one that can't be read is exit 1) and adds the run API.
pub async fn setup(mut app: App) -> Result<App, StartupError> {
    let metadata = app.config().metadata_host.clone();
    let orchestration = Arc::new(config::load_with_secrets(app.env(), &metadata).await?);
    let log_payloads = app.env().bool_or(LOG_PAYLOADS, false)?;
    let dev_ui = ui::enabled(app.env(), app.config().on_platform())?;
    loaded(&orchestration);
    let env = app.env().clone();
    let tools = toolbox::Toolbox::new(&orchestration, &env, app.registry_mut())?;
    let models = Arc::new(reachability::Reachability::new(
        &orchestration,
        app.config().health_check_ttl,
    ));
    for name in models.names().map(str::to_owned).collect::<Vec<_>>() {
        let models = models.clone();
        let check_name = name.clone();
        app.health()
            .add_check(format!("model:{name}"), false, move || {
                let (models, name) = (models.clone(), check_name.clone());
                async move { models.check(&name).await.map(|()| "reachable".to_owned()) }
            });
    }
    let metrics = RunMetrics::register(app.registry_mut());
    let engine = Arc::new(Engine {
        orchestration,
        tools: Arc::new(tools),
        models: Arc::new(run::Endpoints),
        metrics,
        log_payloads,
    });
    let store_config = store::StoreConfig::from_env(app.env())?;
    let store = store::open(&store_config, app.env()).await?;
    let mut service = service::RunService::new(
        engine,
        store,
        app.tasks(),
        app.shutdown(),
        store_config.lease_ttl,
    );
    service.queue = service::queue::PubSubQueue::from_env(app.env())
        .map(|q| Arc::new(q) as Arc<dyn service::Queue>);
    let service = Arc::new(service);
    let orchestrator = grpc::Orchestrator::new(service.clone(), models.clone()).server();
    let api = api::Api { service, models };
    // Runs stream for minutes: the route's limit is the platform's request deadline, which
    // the engine answers before; bodies are small.
    let limits = app.route_limits().max_body_bytes(1024 * 1024);
    let app = app
        .rest_with_limits(api::router(api), limits)
        .rest(openapi::router())
        .grpc(orchestrator)
        .file_descriptor_set(grpc::pb::FILE_DESCRIPTOR_SET);
    Ok(if dev_ui { app.rest(ui::router()) } else { app })
}

/// One INFO line saying what was loaded: the configuration's source, the workflows, each model
/// with its provider and address, and each MCP server with its transport and address (never a
/// credential: keys are not part of an address, and user info and queries are cut from URLs).
fn loaded(o: &config::Orchestration) {
    use config::Transport;
    let workflows: Vec<&str> = o.workflows.keys().map(String::as_str).collect();
    let mut models: Vec<String> = Vec::new();
    let mut servers: Vec<String> = Vec::new();
    for agent in o.agents.values() {
        if let Some(m) = &agent.model {
            let line = format!(
                "{} ({} at {})",
                m.name,
                m.endpoint.provider().name(),
                address(m.endpoint.base())
            );
            if !models.contains(&line) {
                models.push(line);
            }
        }
        for server in &agent.mcp_servers {
            let line = match &server.transport {
                Transport::Local => format!("{} (local)", server.name),
                Transport::Grpc { address: a, .. } => {
                    format!("{} (grpc at {})", server.name, address(a))
                }
                Transport::Http { url, .. } => {
                    format!("{} (http at {})", server.name, address(url))
                }
            };
            if !servers.contains(&line) {
                servers.push(line);
            }
        }
    }
    let none = |v: &[String]| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(", ")
        }
    };
    tracing::info!(
        source = o.source,
        workflows = workflows.join(", "),
        models = none(&models),
        mcp_servers = none(&servers),
        "configuration {}: workflows {}; models {}; MCP servers {}",
        o.source,
        workflows.join(", "),
        none(&models),
        none(&servers)
    );
}

/// A URL as logged: without user info or query, where credentials could hide.
fn address(url: &aixrun::outbound::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}
