//! The deployment's MCP tools for the run engine: one MCP client per configured server, tool
//! names as the model sees them, calls routed to their server.

use aixrun::{Env, StartupError};
use serde_json::{Map, Value};

use crate::config::{Agent, Orchestration};
use crate::run::{AgentTool, BoxFuture, ToolReply, Tools};

/// Every configured MCP server, connected on first use.
pub struct Toolbox {}

impl Toolbox {
    /// Clients for the servers `orchestration` names (nothing is dialled yet).
    pub fn new(_orchestration: &Orchestration, _env: &Env) -> Result<Self, StartupError> {
        Ok(Self {})
    }
}

impl Tools for Toolbox {
    fn list<'a>(&'a self, agent: &'a Agent) -> BoxFuture<'a, Result<Vec<AgentTool>, String>> {
        Box::pin(async move {
            if agent.mcp_servers.is_empty() {
                Ok(Vec::new())
            } else {
                Err("the MCP client is not wired in yet".to_owned())
            }
        })
    }

    fn call<'a>(
        &'a self,
        _tool: &'a AgentTool,
        _arguments: Map<String, Value>,
        _timeout: std::time::Duration,
    ) -> BoxFuture<'a, ToolReply> {
        Box::pin(async { ToolReply::error("the MCP client is not wired in yet") })
    }
}
