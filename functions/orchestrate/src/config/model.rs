//! The validated, resolved configuration the run engine walks: workflows as ordered steps,
//! each agent with its model endpoint, MCP servers and limits already looked up.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aixrun::llm::{ApiKey, Endpoint, OllamaOptions, Options};
use aixrun::outbound::Url;
use serde_json::Value;

/// Everything orchestrate runs.
#[derive(Debug)]
pub struct Orchestration {
    /// Workflows by name (`default` when the file declares none).
    pub workflows: BTreeMap<String, Workflow>,
    /// Budgets and limits of every run.
    pub defaults: Defaults,
    /// Where the configuration came from (a path, or the bundled example).
    pub source: String,
}

/// A graph of agents; a run is one walk of it. This release runs chains: each step's output
/// is the next step's input.
#[derive(Debug)]
pub struct Workflow {
    /// Its name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// The agents in the order they run.
    pub steps: Vec<Arc<Agent>>,
}

/// The roles this release runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A reason-and-act loop: model turns and tool calls until an answer.
    React,
    /// Records what it receives and passes it on.
    Logger,
}

/// One agent, resolved.
#[derive(Debug)]
pub struct Agent {
    /// Its name.
    pub name: String,
    /// What it does.
    pub role: Role,
    /// The model it talks to (none for a logger).
    pub model: Option<Arc<ModelService>>,
    /// Its system prompt.
    pub prompt: Option<String>,
    /// The MCP servers whose tools it may call.
    pub mcp_servers: Vec<Arc<McpServer>>,
    /// Most model turns of its loop.
    pub max_iterations: u32,
    /// A JSON Schema its final answer must match (checked to be a valid schema).
    pub output_schema: Option<Value>,
    /// Its limits: the run's defaults with its overrides.
    pub budget: Budget,
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

/// `defaults`, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defaults {
    /// Every run's budget.
    pub budget: Budget,
    /// Tool calls of one run at once.
    pub tool_concurrency: usize,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            budget: Budget::default(),
            tool_concurrency: 4,
        }
    }
}
