//! From the file's shape to the resolved model: every name looked up, every value checked,
//! each problem reported with the path of the entry that has it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aixrun::Env;
use aixrun::config::parse_duration;
use aixrun::gcp::idtoken::{self, IdTokenAuth, IdTokens};
use aixrun::llm::{
    ApiKey, Endpoint, KeepAlive, OllamaOptions, Options, Provider, Think, ToolChoice,
};
use serde_json::Value;

use super::Problem;
use super::file::{
    AgentFile, ApprovalFile, AuthFile, AuthKind, BudgetFile, FileConfig, JoinFile,
    ModelServiceFile, OnErrorFile, RoleFile, Runtime, SupervisorFile,
};
use super::graph::{self, Edge};
use super::locate::Path;
use super::mcp_server;
use super::model::{
    Agent, Approval, Budget, DEFAULT_SESSION_MAX_TURNS, Defaults, Join, McpServer, ModelService,
    OnError, Orchestration, Role,
};
use super::roles;

/// Default most model turns of a react agent.
const DEFAULT_MAX_ITERATIONS: u32 = 10;

/// The whole file resolved against `env`.
pub(super) fn resolve(file: FileConfig, env: &Env, source: &str) -> Result<Orchestration, Problem> {
    let root = Path::default();
    let mut servers: BTreeMap<String, Arc<McpServer>> = BTreeMap::new();
    for (i, s) in file.mcp_servers.iter().enumerate() {
        let at = root.key("mcp_servers").index(i);
        if servers.contains_key(&s.name) {
            return Err(duplicate(at.key("name"), "MCP server", &s.name));
        }
        servers.insert(s.name.clone(), Arc::new(mcp_server::server(s, &at, env)?));
    }
    let mut services: BTreeMap<String, Arc<ModelService>> = BTreeMap::new();
    for (i, s) in file.model_services.iter().enumerate() {
        let at = root.key("model_services").index(i);
        if services.contains_key(&s.name) {
            return Err(duplicate(at.key("name"), "model service", &s.name));
        }
        services.insert(s.name.clone(), Arc::new(service(s, &at, env)?));
    }
    let defaults = Defaults {
        budget: budget(
            Budget::default(),
            &file.defaults.budget,
            &root.key("defaults").key("budget"),
        )?,
        tool_concurrency: match file.defaults.tool_concurrency {
            None => Defaults::default().tool_concurrency,
            Some(0) => {
                return Err(Problem::new(
                    root.key("defaults").key("tool_concurrency"),
                    "0 would refuse every tool call; expected at least 1",
                ));
            }
            Some(n) => n,
        },
        branch_concurrency: match file.defaults.branch_concurrency {
            None => Defaults::default().branch_concurrency,
            Some(0) => {
                return Err(Problem::new(
                    root.key("defaults").key("branch_concurrency"),
                    "0 would run no agent; expected at least 1",
                ));
            }
            Some(n) => n,
        },
    };
    let session_max_turns = match file.session.max_turns {
        None => DEFAULT_SESSION_MAX_TURNS,
        Some(0) => {
            return Err(Problem::new(
                root.key("session").key("max_turns"),
                "0 would hide every earlier turn, and sessions exist to show them; expected at least 1",
            ));
        }
        Some(n) => n,
    };
    // The seed's top-level supervisor is an agent whose workers are every react agent.
    let mut files: Vec<(AgentFile, Path)> = Vec::new();
    for (i, a) in file.agents.into_iter().enumerate() {
        files.push((a, root.key("agents").index(i)));
    }
    if let Some(sup) = file.supervisor {
        let workers = files
            .iter()
            .filter(|(a, _)| a.role == RoleFile::React)
            .map(|(a, _)| a.name.clone())
            .collect();
        files.push((supervisor_agent(sup, workers), root.key("supervisor")));
    }
    if files.is_empty() {
        return Err(Problem::new(
            root.key("agents"),
            "no agents: a configuration needs at least one",
        ));
    }
    let names: Vec<String> = files.iter().map(|(a, _)| a.name.clone()).collect();
    let mut agents = Vec::new();
    let mut edges = Vec::new();
    let mut in_place: BTreeMap<String, Arc<ModelService>> = BTreeMap::new();
    for (i, (a, at)) in files.iter().enumerate() {
        if names[..i].contains(&a.name) {
            return Err(duplicate(at.key("name"), "agent", &a.name));
        }
        let lookup = Lookup {
            servers: &servers,
            services: &services,
            names: &names,
            env,
        };
        agents.push(Arc::new(agent(
            a,
            i,
            at,
            &lookup,
            &mut in_place,
            &defaults,
            &mut edges,
        )?));
    }
    let edges = graph::dedupe(edges);
    graph::find_cycle(&names, &edges)?;
    let workers = roles::check_workers(&files, &agents, &names, &edges)?;
    roles::check_routes(&files, &agents, &edges)?;
    let mut workflows = BTreeMap::new();
    if file.workflows.is_empty() {
        let all: Vec<usize> = (0..agents.len())
            .filter(|i| !workers.contains_key(i))
            .collect();
        let w = graph::build("default", &root.key("agents"), &all, &agents, &edges, None)?;
        workflows.insert(w.name.clone(), w);
    }
    for (i, w) in file.workflows.iter().enumerate() {
        let at = root.key("workflows").index(i);
        if workflows.contains_key(&w.name) {
            return Err(duplicate(at.key("name"), "workflow", &w.name));
        }
        if w.agents.is_empty() {
            return Err(Problem::new(at.key("agents"), "a workflow needs agents"));
        }
        let mut members = Vec::new();
        for (j, name) in w.agents.iter().enumerate() {
            let path = at.key("agents").index(j);
            let index = find(&names, name, &path, "agent")?;
            if let Some(boss) = workers.get(&index) {
                return Err(Problem::new(
                    path,
                    format!(
                        "{name} is a worker of {}: workers run inside their planner or supervisor, not as workflow agents",
                        names[*boss]
                    ),
                ));
            }
            if !members.contains(&index) {
                members.push(index);
            }
        }
        let output = match &w.output {
            None => None,
            Some(name) => {
                let path = at.key("output");
                Some((find(&names, name, &path, "agent")?, path))
            }
        };
        let mut built = graph::build(&w.name, &at.key("name"), &members, &agents, &edges, output)?;
        built.description = w.description.clone();
        workflows.insert(w.name.clone(), built);
    }
    Ok(Orchestration {
        workflows,
        agents: agents
            .iter()
            .map(|a| (a.name.clone(), Arc::clone(a)))
            .collect(),
        defaults,
        session_max_turns,
        source: source.to_owned(),
    })
}

/// The seed's `supervisor: {name, model, max_rounds}` as an agent.
fn supervisor_agent(sup: SupervisorFile, workers: Vec<String>) -> AgentFile {
    AgentFile {
        name: sup.name,
        role: RoleFile::Supervisor,
        model: Some(sup.model),
        prompt: sup.prompt,
        mcp_servers: Vec::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        depends_on: Vec::new(),
        max_iterations: None,
        tool_choice: None,
        output_schema: None,
        budget: None,
        classifier_config: None,
        aggregator_config: None,
        planner_config: None,
        workers,
        max_rounds: sup.max_rounds,
        join: None,
        on_error: None,
        approval: None,
    }
}

struct Lookup<'a> {
    servers: &'a BTreeMap<String, Arc<McpServer>>,
    services: &'a BTreeMap<String, Arc<ModelService>>,
    names: &'a [String],
    env: &'a Env,
}

fn agent(
    a: &AgentFile,
    index: usize,
    at: &Path,
    lookup: &Lookup<'_>,
    in_place: &mut BTreeMap<String, Arc<ModelService>>,
    defaults: &Defaults,
    edges: &mut Vec<Edge>,
) -> Result<Agent, Problem> {
    let role = roles::role(a, at)?;
    let model = match (&a.model, roles::uses_model(&role)) {
        (None, true) => {
            return Err(Problem::new(
                at.key("name"),
                format!(
                    "a {} agent needs `model`: a model_services name or provider:model",
                    role.name()
                ),
            ));
        }
        (Some(_), false) => {
            return Err(Problem::new(at.key("model"), roles::why_no_model(&role)));
        }
        (None, false) => None,
        (Some(m), true) => Some(model_ref(m, &at.key("model"), lookup, in_place)?),
    };
    let uses_tools = matches!(role, Role::React | Role::Planner(_));
    if !uses_tools && !a.mcp_servers.is_empty() {
        return Err(Problem::new(
            at.key("mcp_servers"),
            format!("a {} agent uses no mcp_servers", role.name()),
        ));
    }
    if a.prompt.is_some() && model.is_none() {
        return Err(Problem::new(
            at.key("prompt"),
            format!("a {} agent uses no prompt", role.name()),
        ));
    }
    let mut mcp_servers = Vec::new();
    for (j, name) in a.mcp_servers.iter().enumerate() {
        let server = lookup.servers.get(name).ok_or_else(|| {
            unknown(
                at.key("mcp_servers").index(j),
                "MCP server",
                name,
                lookup.servers.keys(),
            )
        })?;
        mcp_servers.push(Arc::clone(server));
    }
    let mut edge =
        |other: &str, path: Path, other_first: bool, when: Option<String>| -> Result<(), Problem> {
            let o = find(lookup.names, other, &path, "agent")?;
            if o == index {
                return Err(Problem::new(path, "an agent cannot feed itself"));
            }
            let (from, to) = if other_first { (o, index) } else { (index, o) };
            edges.push(Edge {
                from,
                to,
                when,
                at: path,
            });
            Ok(())
        };
    for (j, input) in a.inputs.iter().enumerate() {
        edge(
            &input.source,
            at.key("inputs").index(j).key("source"),
            true,
            None,
        )?;
    }
    for (j, output) in a.outputs.iter().enumerate() {
        edge(
            &output.target,
            at.key("outputs").index(j).key("target"),
            false,
            output.when.clone(),
        )?;
    }
    for (j, dep) in a.depends_on.iter().enumerate() {
        edge(dep, at.key("depends_on").index(j), true, None)?;
    }
    let max_iterations = match a.max_iterations {
        None => DEFAULT_MAX_ITERATIONS,
        Some(0) => {
            return Err(Problem::new(
                at.key("max_iterations"),
                "0 allows no model turn; expected at least 1",
            ));
        }
        Some(n) => n,
    };
    let tool_choice = a
        .tool_choice
        .as_deref()
        .map(|raw| tool_choice(raw, uses_tools, &mcp_servers, &at.key("tool_choice")))
        .transpose()?;
    if let Some(schema) = &a.output_schema
        && let Err(e) = aixrun::schema::Schema::compile(schema)
    {
        return Err(Problem::new(
            at.key("output_schema"),
            format!("not a usable JSON Schema: {e}"),
        ));
    }
    let budget = match &a.budget {
        None => None,
        Some(b) => Some(budget(defaults.budget, b, &at.key("budget"))?),
    };
    let approval = match &a.approval {
        None => None,
        Some(file) => Some(approval(
            file,
            uses_tools && !mcp_servers.is_empty(),
            &at.key("approval"),
        )?),
    };
    Ok(Agent {
        name: a.name.clone(),
        role,
        model,
        prompt: a.prompt.clone(),
        mcp_servers,
        max_iterations,
        tool_choice,
        output_schema: a.output_schema.clone(),
        budget,
        join: match a.join {
            None | Some(JoinFile::All) => Join::All,
            Some(JoinFile::Any) => Join::Any,
        },
        on_error: match a.on_error {
            None | Some(OnErrorFile::Fail) => OnError::Fail,
            Some(OnErrorFile::Continue) => OnError::Continue,
        },
        approval,
    })
}

/// The MCP annotations an approval may name.
const ANNOTATIONS: [&str; 4] = [
    "destructiveHint",
    "openWorldHint",
    "readOnlyHint",
    "idempotentHint",
];

/// `approval`: tools or annotations to gate (one at least), and a timeout.
fn approval(file: &ApprovalFile, uses_tools: bool, at: &Path) -> Result<Approval, Problem> {
    if !uses_tools {
        return Err(Problem::new(
            at.clone(),
            "approval gates tool calls, but this agent has no mcp_servers",
        ));
    }
    if file.tools.is_empty() && file.annotations.is_empty() {
        return Err(Problem::new(
            at.clone(),
            "name the tools (tools: [name]) or annotations (annotations: [destructiveHint]) whose calls wait for approval",
        ));
    }
    for (i, a) in file.annotations.iter().enumerate() {
        if !ANNOTATIONS.contains(&a.as_str()) {
            return Err(Problem::new(
                at.key("annotations").index(i),
                format!(
                    "unknown annotation {a:?}; expected one of {}",
                    ANNOTATIONS.join(", ")
                ),
            ));
        }
    }
    let timeout = match &file.timeout {
        None => Duration::from_secs(24 * 3600),
        Some(raw) => duration(raw, &at.key("timeout"))?,
    };
    Ok(Approval {
        tools: file.tools.clone(),
        annotations: file.annotations.clone(),
        timeout,
    })
}

/// `tool_choice`: `auto`, `required`, `none` or a tool's name. Asking for a tool needs MCP
/// servers; a named tool must be one they may offer when every one of them lists its `tools`
/// (otherwise the run checks it against the tools they serve).
fn tool_choice(
    raw: &str,
    uses_tools: bool,
    servers: &[Arc<McpServer>],
    at: &Path,
) -> Result<ToolChoice, Problem> {
    let choice = ToolChoice::parse(raw);
    if !uses_tools {
        return Err(Problem::new(
            at.clone(),
            "only react and planner agents call tools",
        ));
    }
    if raw.trim().is_empty() {
        return Err(Problem::new(
            at.clone(),
            "expected auto, required, none or a tool's name",
        ));
    }
    let asks_for_a_call = matches!(choice, ToolChoice::Required | ToolChoice::Tool(_));
    if asks_for_a_call && servers.is_empty() {
        return Err(Problem::new(
            at.clone(),
            format!(
                "{raw:?} asks for a tool call, but the agent has no mcp_servers to offer tools"
            ),
        ));
    }
    if let ToolChoice::Tool(name) = &choice
        && servers.iter().all(|s| s.tools.is_some())
    {
        let listed: Vec<&str> = servers
            .iter()
            .flat_map(|s| s.tools.iter().flatten())
            .map(String::as_str)
            .collect();
        if !listed.contains(&name.as_str()) {
            return Err(Problem::new(
                at.clone(),
                format!(
                    "{name:?} is neither auto, required, none nor a tool its mcp_servers offer ({})",
                    list_or_none(&listed)
                ),
            ));
        }
    }
    Ok(choice)
}

/// A `model_services` name, else `provider:model`.
fn model_ref(
    name: &str,
    at: &Path,
    lookup: &Lookup<'_>,
    in_place: &mut BTreeMap<String, Arc<ModelService>>,
) -> Result<Arc<ModelService>, Problem> {
    if let Some(s) = lookup.services.get(name) {
        return Ok(Arc::clone(s));
    }
    if let Some(s) = in_place.get(name) {
        return Ok(Arc::clone(s));
    }
    let provider = name
        .split_once(':')
        .and_then(|(p, model)| Some((Provider::from_name(p)?, model)))
        .filter(|(_, model)| !model.is_empty());
    let Some((provider, model)) = provider else {
        let services: Vec<&str> = lookup.services.keys().map(String::as_str).collect();
        let providers: Vec<&str> = Provider::ALL.iter().map(|p| p.name()).collect();
        return Err(Problem::new(
            at.clone(),
            format!(
                "unknown model {name:?}: neither a model_services name ({}) nor provider:model (providers: {})",
                list_or_none(&services),
                providers.join(", ")
            ),
        ));
    };
    let address = lookup.env.get(super::ORCHESTRATE_MODEL_URL);
    let endpoint = Endpoint::from_config(provider, address, None, lookup.env).map_err(|e| {
        let hint = if provider == Provider::OpenAiCompatible && address.is_none() {
            format!(
                " (for {name}, set {} or {})",
                super::ORCHESTRATE_MODEL_URL,
                super::OPENAI_BASE_URL
            )
        } else {
            String::new()
        };
        Problem::new(at.clone(), format!("{e}{hint}"))
    })?;
    let endpoint = model_auth(endpoint, None, at, lookup.env)?;
    let service = Arc::new(ModelService {
        name: name.to_owned(),
        model: model.to_owned(),
        endpoint,
        options: Options::default(),
        ollama: OllamaOptions::default(),
    });
    in_place.insert(name.to_owned(), Arc::clone(&service));
    Ok(service)
}

fn service(s: &ModelServiceFile, at: &Path, env: &Env) -> Result<ModelService, Problem> {
    let named = Provider::from_name(&s.provider).ok_or_else(|| {
        let providers: Vec<&str> = Provider::ALL.iter().map(|p| p.name()).collect();
        Problem::new(
            at.key("provider"),
            format!(
                "unknown provider {:?} (providers: {})",
                s.provider,
                providers.join(", ")
            ),
        )
    })?;
    let c = &s.config;
    let address = match (&c.address, &c.endpoint) {
        (Some(_), Some(_)) => {
            return Err(Problem::new(
                at.key("config").key("endpoint"),
                "set config.address or config.endpoint, not both",
            ));
        }
        (a, e) => a.as_deref().or(e.as_deref()),
    };
    // The runtime says which server speaks to us; the provider only names the model's origin
    // (a Hugging Face model served by Ollama speaks Ollama's API).
    let provider = match s.runtime {
        Some(Runtime::Ollama) => Provider::Ollama,
        Some(Runtime::Vllm) => Provider::OpenAiCompatible,
        Some(Runtime::Cloud) | None => named,
    };
    let key = c.api_key.as_deref().map(ApiKey::new);
    let endpoint = Endpoint::from_config(provider, address, key, env)
        .map_err(|e| Problem::new(at.key("name"), format!("{}: {e}", s.name)))?;
    let endpoint = model_auth(endpoint, s.auth.as_ref(), &at.key("auth"), env)?;
    let at = at.key("config");
    Ok(ModelService {
        name: s.name.clone(),
        model: s.model.clone(),
        endpoint,
        options: Options {
            temperature: c.temperature,
            seed: c.seed,
            max_output_tokens: None,
        },
        ollama: OllamaOptions {
            keep_alive: c
                .keep_alive
                .as_deref()
                .map(|raw| keep_alive(raw, &at.key("keep_alive")))
                .transpose()?,
            think: c
                .think
                .as_ref()
                .map(|v| think(v, &at.key("think")))
                .transpose()?,
        },
    })
}

/// The model service's identity: `auth: {type: id_token}` (audience: the server's origin
/// unless given), `{type: none}`, or by default (no `auth`) an ID token for `https://` servers
/// on Google Cloud, as MCP servers get, unless the service has an API key (a provider's public
/// API, which must not be sent Google tokens).
fn model_auth(
    endpoint: Endpoint,
    auth: Option<&AuthFile>,
    at: &Path,
    env: &Env,
) -> Result<Endpoint, Problem> {
    let audience = match auth {
        None if idtoken::on_by_default(env, endpoint.base()) && !endpoint.has_key() => {
            idtoken::default_audience(endpoint.base())
        }
        None => return Ok(endpoint),
        Some(a) => match a.kind {
            AuthKind::Bearer => {
                return Err(Problem::new(
                    at.key("type"),
                    "a model service's bearer token is config.api_key; auth takes id_token or none",
                ));
            }
            AuthKind::None => {
                mcp_server::no_token_keys(a, at, "none")?;
                return Ok(endpoint);
            }
            AuthKind::IdToken => {
                mcp_server::no_token_keys(a, at, "id_token")?;
                a.audience
                    .clone()
                    .unwrap_or_else(|| idtoken::default_audience(endpoint.base()))
            }
        },
    };
    let auth = IdTokenAuth::new(IdTokens::shared(), audience);
    Ok(endpoint.with_auth(Arc::new(auth)))
}

/// Ollama's `keep_alive`: a duration, `-1` (for ever) or `0` (unload at once).
fn keep_alive(raw: &str, at: &Path) -> Result<KeepAlive, Problem> {
    match raw.trim() {
        "0" => Ok(KeepAlive::UnloadNow),
        r if r.starts_with('-') => Ok(KeepAlive::Forever),
        r => parse_duration(r).map(KeepAlive::For).map_err(|p| {
            Problem::new(
                at.clone(),
                format!(
                    "{raw:?}: {p}; expected a duration such as 5m, -1 (for ever) or 0 (unload)"
                ),
            )
        }),
    }
}

/// Ollama's `think`: a boolean or a level.
fn think(v: &Value, at: &Path) -> Result<Think, Problem> {
    match v {
        Value::Bool(on) => Ok(Think::Enabled(*on)),
        Value::String(s) if s == "low" => Ok(Think::Low),
        Value::String(s) if s == "medium" => Ok(Think::Medium),
        Value::String(s) if s == "high" => Ok(Think::High),
        other => Err(Problem::new(
            at.clone(),
            format!("{other}: expected true, false, low, medium or high"),
        )),
    }
}

pub(super) fn budget(base: Budget, b: &BudgetFile, at: &Path) -> Result<Budget, Problem> {
    Ok(Budget {
        wall_time: match &b.wall_time {
            None => base.wall_time,
            Some(raw) => duration(raw, &at.key("wall_time"))?,
        },
        input_tokens: b.input_tokens.unwrap_or(base.input_tokens),
        output_tokens: b.output_tokens.unwrap_or(base.output_tokens),
        model_calls: b.model_calls.unwrap_or(base.model_calls),
        tool_calls: b.tool_calls.unwrap_or(base.tool_calls),
    })
}

pub(super) fn duration(raw: &str, at: &Path) -> Result<Duration, Problem> {
    match parse_duration(raw) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(Problem::new(at.clone(), "a zero duration allows nothing")),
        Err(p) => Err(Problem::new(
            at.clone(),
            format!("{raw:?}: {p}; expected a duration such as 30s, 500ms or 2m"),
        )),
    }
}

pub(super) fn find(names: &[String], name: &str, at: &Path, what: &str) -> Result<usize, Problem> {
    names
        .iter()
        .position(|n| n == name)
        .ok_or_else(|| unknown(at.clone(), what, name, names.iter()))
}

pub(super) fn unknown<'a>(
    at: Path,
    what: &str,
    name: &str,
    known: impl Iterator<Item = &'a String>,
) -> Problem {
    let known: Vec<&str> = known.map(String::as_str).collect();
    Problem::new(
        at,
        format!(
            "unknown {what} {name:?} (declared: {})",
            list_or_none(&known)
        ),
    )
}

pub(super) fn duplicate(at: Path, what: &str, name: &str) -> Problem {
    Problem::new(
        at,
        format!("a second {what} named {name:?}; names must be unique"),
    )
}

pub(super) fn list_or_none(items: &[&str]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}
