//! The `local` transport: mcp-tool's tool registry linked into orchestrate and called
//! in-process, for one-service deployments and local runs. Same validation, limits and
//! results as mcp-tool serves over the network, without a hop. Cancelling is dropping the
//! call's future, which drops the tool's handler.

use std::sync::Arc;
use std::time::Duration;

use mcp_tool::registry::{CallError, Registry, Transport};
use mcp_tool::tool::{self, CallContext};
use prometheus_client::registry::Registry as MetricsRegistry;

use super::{Arguments, McpError, McpServer, ToolInfo, ToolList, ToolResult};

/// mcp-tool's tools, in-process.
pub struct LocalServer {
    name: String,
    registry: Arc<Registry>,
    tools: Arc<[ToolInfo]>,
}

impl LocalServer {
    /// The tools mcp-tool's configuration in `env` enables (`MCP_TOOL_CONFIG`, `MCP_TOOLS`,
    /// ...), as mcp-tool's own `setup` builds them; their call metrics go to `metrics`.
    pub fn from_env(
        name: &str,
        env: &aixrun::Env,
        metrics: &mut MetricsRegistry,
    ) -> Result<Self, McpError> {
        let config_error = |problem: String| McpError::Config {
            server: format!("{name} (local)"),
            problem,
        };
        let config =
            mcp_tool::config::McpToolConfig::load(env).map_err(|e| config_error(e.to_string()))?;
        let tools = mcp_tool::tools::enabled(&config).map_err(|e| config_error(e.to_string()))?;
        let registry = Registry::new(tools, config.max_result_bytes, metrics)
            .map_err(|e| config_error(e.to_string()))?;
        Ok(Self::new(name, Arc::new(registry)))
    }

    /// A server over an existing registry.
    pub fn new(name: &str, registry: Arc<Registry>) -> Self {
        let tools = registry.tools().map(to_tool_info).collect();
        Self {
            name: name.to_owned(),
            registry,
            tools,
        }
    }

    fn label(&self) -> String {
        format!("{} (local)", self.name)
    }
}

#[async_trait::async_trait]
impl McpServer for LocalServer {
    fn name(&self) -> &str {
        &self.name
    }

    async fn list_tools(&self) -> Result<ToolList, McpError> {
        // Fixed at start-up: the cache may keep it as long as it likes.
        Ok(ToolList {
            tools: self.tools.clone(),
            ttl: Some(Duration::MAX),
        })
    }

    async fn call_tool(
        &self,
        tool: &str,
        arguments: Arguments,
        timeout: Duration,
        _idempotency_key: Option<&str>,
    ) -> Result<ToolResult, McpError> {
        // No network transport applies; the log line says "http" only for want of a better
        // label in mcp-tool's enum.
        let call = self.registry.call(
            tool,
            Some(arguments),
            CallContext::default(),
            Transport::Http,
        );
        let outcome = tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| McpError::Timeout {
                server: self.label(),
                timeout,
            })?;
        match outcome {
            Ok(outcome) => Ok(ToolResult {
                // One content model: mcp-tool's blocks are ours.
                content: outcome.content,
                structured_content: outcome.structured,
                is_error: outcome.is_error,
            }),
            Err(CallError::UnknownTool(tool)) => Err(McpError::UnknownTool {
                server: self.label(),
                tool,
            }),
            Err(CallError::InvalidArguments {
                tool,
                path,
                message,
            }) => Err(McpError::InvalidArguments {
                server: self.label(),
                tool,
                message: format!("{message} (at {path})"),
            }),
        }
    }
}

fn to_tool_info(tool: &tool::Tool) -> ToolInfo {
    ToolInfo {
        name: tool.name.clone(),
        title: tool.title.clone(),
        description: tool.description.clone(),
        input_schema: tool.input_schema.clone(),
        output_schema: tool.output_schema.clone(),
        annotations: tool.annotations.clone(),
    }
}
