//! The validated, resolved configuration the run engine walks: workflows as graphs of agents,
//! each agent with its model endpoint, MCP servers and limits already looked up.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aixrun::llm::{ApiKey, Endpoint, OllamaOptions, Options, ToolChoice};
use aixrun::outbound::Url;
use serde_json::Value;

/// Everything orchestrate runs.
#[derive(Debug)]
pub struct Orchestration {
    /// Workflows by name (`default` when the file declares none).
    pub workflows: BTreeMap<String, Workflow>,
    /// Every agent by name (planners' and supervisors' workers are looked up here).
    pub agents: BTreeMap<String, Arc<Agent>>,
    /// Budgets and limits of every run.
    pub defaults: Defaults,
    /// How many of a session's latest turns a react agent sees (`session.max_turns`).
    pub session_max_turns: usize,
    /// Where the configuration came from (a path, or the bundled example).
    pub source: String,
}

/// A graph of agents; a run is one walk of it. Agents with no inputs (entries) take the run's
/// input; an agent runs once its inputs are done (or, with `join: any`, the first of them);
/// a classifier's conditional edges are taken only when it routes there.
#[derive(Debug)]
pub struct Workflow {
    /// Its name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// Its agents (the graph's nodes), in the file's order.
    pub nodes: Vec<Arc<Agent>>,
    /// Its edges, between indexes of `nodes`.
    pub edges: Vec<Link>,
    /// The node whose output is the run's: `workflows[].output`, else the one node nothing
    /// follows; `None` when several end it (the run's output is then the output of the one
    /// that ran, or an object of theirs by name when several did).
    pub exit: Option<usize>,
}

impl Workflow {
    /// Its agents and every agent they delegate to (planners' and supervisors' workers).
    pub fn agents<'a>(&'a self, all: &'a Orchestration) -> Vec<&'a Arc<Agent>> {
        // Breadth first: the nodes in the file's order, then each one's workers in theirs.
        let mut out: Vec<&Arc<Agent>> = Vec::new();
        let mut queue: std::collections::VecDeque<&Arc<Agent>> = self.nodes.iter().collect();
        while let Some(agent) = queue.pop_front() {
            if out.iter().any(|a| a.name == agent.name) {
                continue;
            }
            out.push(agent);
            queue.extend(agent.workers().iter().filter_map(|w| all.agents.get(w)));
        }
        out
    }

    /// The nodes that feed `node`.
    pub fn inputs(&self, node: usize) -> impl Iterator<Item = &Link> {
        self.edges.iter().filter(move |e| e.to == node)
    }

    /// The edges out of `node`.
    pub fn outputs(&self, node: usize) -> impl Iterator<Item = &Link> {
        self.edges.iter().filter(move |e| e.from == node)
    }
}

/// `from` feeds `to`, always or only when `from` (a classifier) routes to `when`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The feeding node.
    pub from: usize,
    /// The fed node.
    pub to: usize,
    /// The category that takes this edge.
    pub when: Option<String>,
}

/// What an agent does.
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    /// A reason-and-act loop: model turns and tool calls until an answer.
    React,
    /// Records what it receives and passes it on.
    Logger,
    /// Routes its input to one or more categories' successors.
    Classifier(Classifier),
    /// Merges the outputs of the agents that feed it.
    Aggregator(Aggregator),
    /// Plans steps, has workers do them, and answers from their results.
    Planner(Planner),
    /// Delegates to its workers round by round until it answers.
    Supervisor(Supervisor),
}

impl Role {
    /// As written in the file.
    pub fn name(&self) -> &'static str {
        match self {
            Self::React => "react",
            Self::Logger => "logger",
            Self::Classifier(_) => "classifier",
            Self::Aggregator(_) => "aggregator",
            Self::Planner(_) => "planner",
            Self::Supervisor(_) => "supervisor",
        }
    }
}

/// `classifier_config`, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Classifier {
    /// The categories, in the file's order.
    pub categories: Vec<Category>,
    /// Least confidence for a route (0.7).
    pub confidence_threshold: f64,
    /// Every category above the threshold is taken (fan-out), not only the best.
    pub multi_label: bool,
    /// The category taken below the threshold or on no match.
    pub fallback: Option<String>,
    /// Route without a model call when exactly one category's keywords match.
    pub keywords_first: bool,
}

/// One category.
#[derive(Debug, Clone, PartialEq)]
pub struct Category {
    /// Its name (what `outputs[].when` names).
    pub name: String,
    /// What belongs in it, for the model.
    pub description: Option<String>,
    /// Words that suggest it (matched whole, ignoring case).
    pub keywords: Vec<String>,
    /// Sample inputs, for the model.
    pub examples: Vec<String>,
}

/// `aggregator_config`, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregator {
    /// How the inputs become one output.
    pub strategy: Strategy,
    /// Voting: each source's weight (1 when unnamed).
    pub source_weights: BTreeMap<String, f64>,
    /// Voting: the field of each structured answer that is the vote.
    pub vote_field: Option<String>,
}

/// An aggregator's strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// A model synthesises one answer, naming disagreements.
    Consensus,
    /// The answer more than half the sources gave.
    VotingMajority,
    /// The answer every source gave.
    VotingUnanimous,
    /// The answer with the most weight.
    VotingWeighted,
    /// The first output to arrive.
    First,
    /// Every output, in arrival order.
    Concat,
}

impl Strategy {
    /// Every strategy, as written.
    pub const ALL: [(&'static str, Strategy); 6] = [
        ("consensus", Self::Consensus),
        ("voting_majority", Self::VotingMajority),
        ("voting_unanimous", Self::VotingUnanimous),
        ("voting_weighted", Self::VotingWeighted),
        ("first", Self::First),
        ("concat", Self::Concat),
    ];

    /// As written.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("consensus", |(n, _)| n)
    }
}

/// `planner_config`, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Planner {
    /// Most steps of a plan.
    pub max_steps: u32,
    /// React agents that may do a step; empty: the planner does each step itself.
    pub workers: Vec<String>,
    /// Ask once for a new plan from a failed step on.
    pub replan_on_failure: bool,
}

/// A supervisor's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Supervisor {
    /// The agents it may delegate to.
    pub workers: Vec<String>,
    /// Most rounds.
    pub max_rounds: u32,
}

/// With several inputs, when an agent runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// When every input is done.
    All,
    /// At the first input.
    Any,
}

/// What a failing successor does to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// The run fails.
    Fail,
    /// The run goes on with the branches that finished.
    Continue,
}

/// One agent, resolved.
#[derive(Debug)]
pub struct Agent {
    /// Its name.
    pub name: String,
    /// What it does.
    pub role: Role,
    /// The model it talks to (none for a logger, or for an aggregator that only counts).
    pub model: Option<Arc<ModelService>>,
    /// Its system prompt.
    pub prompt: Option<String>,
    /// The MCP servers whose tools it may call.
    pub mcp_servers: Vec<Arc<McpServer>>,
    /// Most model turns of its loop.
    pub max_iterations: u32,
    /// Whether its model must call a tool (`None`: the server's default), until it first does.
    pub tool_choice: Option<ToolChoice>,
    /// A JSON Schema its final answer must match (checked to be a valid schema).
    pub output_schema: Option<Value>,
    /// Its own limits, when it has any (`budget`); the run's always bound it too.
    pub budget: Option<Budget>,
    /// With several inputs, when it runs.
    pub join: Join,
    /// What a failure of it, or of an agent it feeds, does to the run.
    pub on_error: OnError,
    /// Tool calls that wait for approval.
    pub approval: Option<Approval>,
}

/// Which tool calls wait for a person's approval, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// By name.
    pub tools: Vec<String>,
    /// By MCP annotation set true.
    pub annotations: Vec<String>,
    /// How long a paused run waits before it is cancelled.
    pub timeout: std::time::Duration,
}

impl Approval {
    /// Whether a call of `tool` (its name as the model calls it, and its MCP annotations)
    /// waits.
    pub fn gates(&self, tool: &str, annotations: Option<&serde_json::Value>) -> bool {
        self.tools.iter().any(|t| t == tool)
            || self.annotations.iter().any(|a| {
                annotations
                    .and_then(|v| v.get(a))
                    .and_then(serde_json::Value::as_bool)
                    .unwrap_or(false)
            })
    }
}

impl Agent {
    /// The agents it delegates to.
    pub fn workers(&self) -> &[String] {
        match &self.role {
            Role::Planner(p) => &p.workers,
            Role::Supervisor(s) => &s.workers,
            _ => &[],
        }
    }
}

/// A model and where it is served.
#[derive(Debug)]
pub struct ModelService {
    /// The `model_services` name, or `provider:model` for a model named in place.
    pub name: String,
    /// The provider's model id.
    pub model: String,
    /// Where to send requests (the key, if any, redacted in `Debug`).
    pub endpoint: Endpoint,
    /// Sampling options from its config (the run sets the output-token cap).
    pub options: Options,
    /// Ollama's `keep_alive` and `think`.
    pub ollama: OllamaOptions,
}

/// An MCP server.
#[derive(Debug)]
pub struct McpServer {
    /// Its name.
    pub name: String,
    /// How it is reached.
    pub transport: Transport,
    /// How to sign in.
    pub auth: Option<Auth>,
    /// Per-call timeout.
    pub timeout: Duration,
    /// Only these tools are offered, when set.
    pub tools: Option<Vec<String>>,
}

/// How an MCP server is reached.
#[derive(Debug, PartialEq)]
pub enum Transport {
    /// mcp-tool's tools in process.
    Local,
    /// `mcp.MCPService` over gRPC.
    Grpc {
        /// `http(s)://host:port`.
        address: Url,
        /// TLS files, if any.
        tls: Option<Tls>,
    },
    /// MCP Streamable HTTP.
    Http {
        /// The endpoint.
        url: Url,
        /// TLS files, if any.
        tls: Option<Tls>,
    },
}

/// TLS files (checked to exist at start-up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// CA bundle.
    pub ca_file: Option<PathBuf>,
    /// Client certificate.
    pub cert_file: Option<PathBuf>,
    /// Client key.
    pub key_file: Option<PathBuf>,
}

/// How to sign in to an MCP server.
#[derive(Debug, PartialEq)]
pub enum Auth {
    /// A fixed bearer token (redacted in `Debug`).
    Bearer(ApiKey),
    /// A Google ID token for this audience.
    IdToken {
        /// The audience (the server's URL unless set).
        audience: String,
    },
    /// None at all (`type: none`): not even the default ID token.
    None,
}

/// Limits of a run (or of one agent within it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Wall time.
    pub wall_time: Duration,
    /// Prompt tokens over all model calls.
    pub input_tokens: u64,
    /// Answer tokens over all model calls.
    pub output_tokens: u64,
    /// Model calls.
    pub model_calls: u32,
    /// Tool calls.
    pub tool_calls: u32,
}

impl Budget {
    /// No limit of its own (a step without a `budget`: only its parents' bound it).
    pub const UNLIMITED: Budget = Budget {
        wall_time: Duration::MAX,
        input_tokens: u64::MAX,
        output_tokens: u64::MAX,
        model_calls: u32::MAX,
        tool_calls: u32::MAX,
    };
}

impl Default for Budget {
    /// Below Cloud Run's default 300 s request timeout, with room to answer.
    fn default() -> Self {
        Self {
            wall_time: Duration::from_secs(240),
            input_tokens: 200_000,
            output_tokens: 20_000,
            model_calls: 25,
            tool_calls: 50,
        }
    }
}

/// How many of a session's latest turns a react agent sees unless `session.max_turns` says.
pub const DEFAULT_SESSION_MAX_TURNS: usize = 20;

/// `defaults`, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defaults {
    /// Every run's budget.
    pub budget: Budget,
    /// Tool calls of one run at once.
    pub tool_concurrency: usize,
    /// Branches of one run running at once.
    pub branch_concurrency: usize,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            budget: Budget::default(),
            tool_concurrency: 4,
            branch_concurrency: 16,
        }
    }
}
