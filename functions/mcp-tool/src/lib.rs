//! The MCP server function: one tool registry served over MCP Streamable HTTP (both protocol
//! eras) and over `mcp.MCPService` (gRPC and gRPC-Web).

pub mod config;
pub mod grpc;
pub mod mcp_http;
pub mod registry;
pub mod tool;
pub mod tools;

use std::process::ExitCode;
use std::sync::Arc;

use aixrun::{App, Function, StartupError};
use aixrun_proto::mcp as pb;

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
    // The runtime enforces MAX_GRPC_MESSAGE_BYTES on every gRPC service; tonic's own 4 MiB
    // default would otherwise cap a larger setting.
    let grpc = pb::mcp_service_server::McpServiceServer::new(grpc::Service::new(
        registry,
        FUNCTION.version,
    ))
    .max_decoding_message_size(usize::MAX)
    .max_encoding_message_size(usize::MAX);
    // Host and Origin checks are the runtime's, for every route: the browser origins this
    // config allows are added to ALLOWED_ORIGINS.
    Ok(app
        .allow_origins(config.allowed_origins)
        .rest(mcp_http::router(handler, runtime.limits.max_body_bytes))
        .grpc(grpc)
        .file_descriptor_set(pb::FILE_DESCRIPTOR_SET))
}
