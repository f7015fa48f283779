//! The MCP server function: one tool registry served over MCP Streamable HTTP (both protocol
//! eras) and over `mcp.MCPService` (gRPC and gRPC-Web).

pub mod config;
pub mod grpc;
pub mod mcp_http;
pub mod pb;
pub mod registry;
pub mod tool;
pub mod tools;

use std::process::ExitCode;
use std::sync::Arc;

use aixrun::{App, Function, StartupError};

use crate::config::McpToolConfig;
use crate::registry::Registry;

const FUNCTION: Function = Function {
    name: "mcp-tool",
    version: env!("CARGO_PKG_VERSION"),
};

/// Runs mcp-tool until SIGTERM.
pub fn main() -> ExitCode {
    aixrun::run(FUNCTION, |app| async move { setup(app) })
}

/// Adds the MCP routes and the gRPC service to `app`.
pub fn setup(mut app: App) -> Result<App, StartupError> {
    let config = McpToolConfig::load(app.env())?;
    let tools = tools::enabled(&config)?;
    let registry = Registry::new(tools, config.max_result_bytes, app.registry_mut())
        .map_err(|e| StartupError::Other(e.to_string()))?;
    let registry = Arc::new(registry);
    let runtime = app.config().clone();
    tracing::debug!(
        tools = registry
            .tools()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(","),
        "tools enabled"
    );
    let handler = mcp_http::McpHandler::new(registry.clone(), FUNCTION.version)
        .map_err(|e| StartupError::Other(format!("tool list: {e}")))?;
    let access = mcp_http::Access {
        loopback: runtime.host.is_loopback(),
        allowed_origins: config.allowed_origins,
        max_body_bytes: runtime.limits.max_body_bytes,
    };
    let limit = runtime.limits.max_grpc_message_bytes;
    let grpc = pb::mcp_service_server::McpServiceServer::new(Arc::new(grpc::Service::new(
        registry,
        FUNCTION.version,
    )))
    .max_decoding_message_size(limit)
    .max_encoding_message_size(limit);
    Ok(app
        .rest(mcp_http::router(handler, &access))
        .grpc(grpc)
        .file_descriptor_set(pb::FILE_DESCRIPTOR_SET))
}
