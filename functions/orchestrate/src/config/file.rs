//! The configuration file's shape, exactly as users write it (the seed system's format plus
//! `workflows` and `defaults`): every key known, every unknown one refused by serde with its
//! line and column.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// The whole file. Every section is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// MCP servers agents may use.
    pub mcp_servers: Vec<McpServerFile>,
    /// Models agents may use, by name.
    pub model_services: Vec<ModelServiceFile>,
    /// The agents.
    pub agents: Vec<AgentFile>,
    /// Named workflows; none declared means one, `default`, made of every agent.
    pub workflows: Vec<WorkflowFile>,
    /// Budgets and limits for every run.
    pub defaults: DefaultsFile,
    /// How sessions (conversations of runs) are shown to models.
    pub session: SessionFile,
    /// The seed's top-level supervisor: an agent that delegates to every react agent of the
    /// file, round by round, until it answers.
    pub supervisor: Option<SupervisorFile>,
}

/// The seed's top-level `supervisor`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisorFile {
    /// Its name (an agent name).
    pub name: String,
    /// A `model_services` name, or `provider:model`.
    pub model: String,
    /// Its instructions, before the workers and the task.
    pub prompt: Option<String>,
    /// Most rounds (default 10).
    pub max_rounds: Option<u32>,
}

/// How orchestrate reaches an MCP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// mcp-tool's tools in process (`echo`, `get_weather`, ...): no network.
    Local,
    /// `mcp.MCPService` over gRPC at `address`.
    Grpc,
    /// MCP Streamable HTTP at `url`.
    Http,
}

/// One `mcp_servers` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerFile {
    /// Its name, for agents' `mcp_servers`.
    pub name: String,
    /// `local`, `grpc` or `http`.
    pub transport: TransportKind,
    /// gRPC: `host:port` or `http(s)://host:port`.
    pub address: Option<String>,
    /// HTTP: the MCP endpoint, such as `https://mcp-tool-xyz.run.app/mcp`.
    pub url: Option<String>,
    /// TLS files (PEM).
    pub tls: Option<TlsFile>,
    /// How to sign in.
    pub auth: Option<AuthFile>,
    /// Per-call timeout, such as `30s`.
    pub timeout: Option<String>,
    /// Only these of its tools are offered to agents, when set.
    pub tools: Option<Vec<String>>,
}

/// TLS files.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    /// CA bundle to verify the server with (instead of the public roots).
    pub ca_file: Option<String>,
    /// Client certificate (mTLS), with `key_file`.
    pub cert_file: Option<String>,
    /// Client key (mTLS), with `cert_file`.
    pub key_file: Option<String>,
}

/// The kinds of `auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    /// `Authorization: Bearer` with a fixed token.
    Bearer,
    /// A Google ID token for the server's URL (Cloud Run service to service).
    IdToken,
    /// No credentials, not even the ID token sent by default to `https://` targets on Google
    /// Cloud.
    None,
}

/// `auth`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    /// `bearer`, `id_token` or `none`.
    #[serde(rename = "type")]
    pub kind: AuthKind,
    /// Bearer: the token (usually `${VAR}`).
    pub token: Option<String>,
    /// Bearer: the variable holding the token (the seed system's form).
    pub token_env: Option<String>,
    /// ID token: the audience, when it is not the server's URL.
    pub audience: Option<String>,
}

/// Where a model service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// Served by Ollama (native API), whatever the provider.
    Ollama,
    /// Served by vLLM (OpenAI-compatible, at `config.address`).
    Vllm,
    /// The provider's own API.
    Cloud,
}

/// One `model_services` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelServiceFile {
    /// Its name, for agents' `model`.
    pub name: String,
    /// `ollama`, `openai`, `xai`, `huggingface` or `openai_compatible` (`vllm`, `llamacpp`).
    pub provider: String,
    /// The provider's model id.
    pub model: String,
    /// `ollama`, `vllm` or `cloud`; unset: the provider's own.
    pub runtime: Option<Runtime>,
    /// `{type: id_token[, audience]}` for a model served behind Google's IAM (Ollama on Cloud
    /// Run); `{type: none}` sends no token where one would be sent by default.
    pub auth: Option<AuthFile>,
    /// Address and key.
    #[serde(default)]
    pub config: ServiceConfigFile,
}

/// A model service's `config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfigFile {
    /// Base URL (Ollama may be written as `OLLAMA_HOST` allows).
    pub address: Option<String>,
    /// The key (usually `${VAR}`); unset: the provider's key variable.
    pub api_key: Option<String>,
    /// Same as `address` (the seed system's name for a cloud endpoint); set one of them.
    pub endpoint: Option<String>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Sampling seed, where the server supports one.
    pub seed: Option<i64>,
    /// Ollama: how long the model stays loaded (`5m`, `-1` for ever, `0` to unload).
    pub keep_alive: Option<String>,
    /// Ollama: `true`, `false`, `low`, `medium` or `high` for thinking models.
    pub think: Option<serde_json::Value>,
}

/// Every role the seed format knows (`producer` is refused: work arrives as requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleFile {
    /// A reason-and-act loop with tools.
    React,
    /// Routes its input to one of several categories.
    Classifier,
    /// Merges the outputs of several agents.
    Aggregator,
    /// Breaks a task into steps.
    Planner,
    /// Emits messages (a ticker in the seed system).
    Producer,
    /// Records what it receives.
    Logger,
    /// Delegates to its workers round by round until it answers.
    Supervisor,
}

impl RoleFile {
    /// As written in the file.
    pub fn name(self) -> &'static str {
        match self {
            Self::React => "react",
            Self::Classifier => "classifier",
            Self::Aggregator => "aggregator",
            Self::Planner => "planner",
            Self::Producer => "producer",
            Self::Logger => "logger",
            Self::Supervisor => "supervisor",
        }
    }
}

/// One `agents` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentFile {
    /// Its name.
    pub name: String,
    /// What it does.
    pub role: RoleFile,
    /// A `model_services` name, or `provider:model` (`ollama:qwen3:0.6b`).
    pub model: Option<String>,
    /// Its system prompt.
    pub prompt: Option<String>,
    /// The MCP servers whose tools it may call.
    #[serde(default)]
    pub mcp_servers: Vec<String>,
    /// Agents whose output it takes.
    #[serde(default)]
    pub inputs: Vec<InputFile>,
    /// Agents its output goes to.
    #[serde(default)]
    pub outputs: Vec<OutputFile>,
    /// Agents that run before it.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Most model turns of a react loop (default 10).
    pub max_iterations: Option<u32>,
    /// Whether its model must call a tool: `auto` (the server's default), `required`, `none`,
    /// or a tool's name; applies until the first tool call.
    pub tool_choice: Option<String>,
    /// A JSON Schema its final answer must match.
    pub output_schema: Option<Value>,
    /// Overrides of the run's budget for this agent.
    pub budget: Option<BudgetFile>,
    /// Classifier settings.
    pub classifier_config: Option<ClassifierConfigFile>,
    /// Aggregator settings.
    pub aggregator_config: Option<AggregatorConfigFile>,
    /// Planner settings.
    pub planner_config: Option<PlannerConfigFile>,
    /// Supervisor: the agents it may delegate to.
    #[serde(default)]
    pub workers: Vec<String>,
    /// Supervisor: most rounds (default 10).
    pub max_rounds: Option<u32>,
    /// With several inputs: `all` (default) runs when every input is done, `any` at the first.
    pub join: Option<JoinFile>,
    /// Tool calls that wait for a person's approval.
    pub approval: Option<ApprovalFile>,
    /// `fail` (default): a failing successor fails the run; `continue`: the run goes on with
    /// the branches that finished, and whoever joins them is told which failed.
    pub on_error: Option<OnErrorFile>,
}

/// `join`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JoinFile {
    /// Every input.
    All,
    /// The first input.
    Any,
}

/// `on_error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnErrorFile {
    /// The run fails.
    Fail,
    /// The run goes on.
    Continue,
}

/// `inputs` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputFile {
    /// An agent's name.
    pub source: String,
}

/// `outputs` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputFile {
    /// An agent's name.
    pub target: String,
    /// A classifier's category: the edge is taken only when the input is routed there.
    pub when: Option<String>,
}

/// `classifier_config`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfigFile {
    /// The categories.
    #[serde(default)]
    pub categories: Vec<CategoryFile>,
    /// Least confidence for a match.
    pub confidence_threshold: Option<f64>,
    /// Whether several categories may match.
    pub multi_label: Option<bool>,
    /// The category taken below the threshold or on no match.
    pub fallback: Option<String>,
    /// Route without a model call when the keywords of exactly one category match.
    pub keywords_first: Option<bool>,
}

/// One classifier category.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryFile {
    /// Its name.
    pub name: String,
    /// What belongs in it.
    pub description: Option<String>,
    /// Words that suggest it.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Sample inputs.
    #[serde(default)]
    pub examples: Vec<String>,
}

/// `aggregator_config`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregatorConfigFile {
    /// `consensus`, `voting_majority`, `voting_unanimous`, `voting_weighted`, `first` or
    /// `concat`.
    pub strategy: Option<String>,
    /// Weight of each source agent.
    #[serde(default)]
    pub source_weights: BTreeMap<String, f64>,
    /// Voting: the field of each (structured) answer that is the vote; unset, the whole answer.
    pub vote_field: Option<String>,
}

/// `planner_config`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannerConfigFile {
    /// `chain_of_thought` (the only one: the seed's name for plan-then-execute).
    pub strategy: Option<String>,
    /// Most steps of a plan.
    pub max_steps: Option<u32>,
    /// React agents that may do a step (unset: the planner itself, with its own tools).
    #[serde(default)]
    pub workers: Vec<String>,
    /// Ask once for a new plan from a failed step on.
    pub replan_on_failure: Option<bool>,
}

/// One `workflows` entry: a graph of agents, walked once per run.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowFile {
    /// Its name (what a run asks for).
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// Its agents; their `inputs`, `outputs` and `depends_on` are its edges.
    pub agents: Vec<String>,
    /// The agent whose output is the run's (unset: the one agent nothing follows).
    pub output: Option<String>,
}

/// `defaults`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DefaultsFile {
    /// Every run's budget.
    pub budget: BudgetFile,
    /// Tool calls of one run at once.
    pub tool_concurrency: Option<usize>,
    /// Branches of one run running at once.
    pub branch_concurrency: Option<usize>,
}

/// `session`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionFile {
    /// How many of a session's latest turns a react agent sees.
    pub max_turns: Option<usize>,
}

/// `approval`: which tool calls pause the run until a person approves or denies them.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalFile {
    /// Tools by name (as the model calls them).
    pub tools: Vec<String>,
    /// MCP annotations that, set true on a tool, make its calls wait (`destructiveHint`,
    /// `openWorldHint`).
    pub annotations: Vec<String>,
    /// How long a paused run waits before it is cancelled (default 24h).
    pub timeout: Option<String>,
}

/// A budget; unset entries keep the default.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetFile {
    /// Such as `120s` or `4m`.
    pub wall_time: Option<String>,
    /// Prompt tokens over all model calls.
    pub input_tokens: Option<u64>,
    /// Answer tokens over all model calls.
    pub output_tokens: Option<u64>,
    /// Model calls.
    pub model_calls: Option<u32>,
    /// Tool calls.
    pub tool_calls: Option<u32>,
}
