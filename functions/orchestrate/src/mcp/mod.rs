//! The MCP client of orchestrate: one interface, [`McpServer`], over three transports
//! ([`grpc`]: `mcp.MCPService`; [`http`]: Streamable HTTP in both protocol eras; [`local`]:
//! mcp-tool's registry in-process), a per-server tool-list cache ([`cache`]), tool names
//! namespaced across servers ([`catalog`]) and the hook for outgoing identity ([`auth`]).
//!
//! The run engine lists tools, calls one with JSON arguments under a timeout, and cancels a
//! call by dropping its future: every transport stops the remote work when that happens.

pub mod auth;
pub mod cache;
pub mod catalog;
mod error;
pub mod grpc;
pub mod http;
#[cfg(feature = "local-tools")]
pub mod local;
pub mod tls;
mod types;

use std::time::Duration;

pub use auth::{AuthProvider, IdTokenAuth, StaticBearer};
pub use cache::CachedServer;
pub use catalog::{Catalog, CatalogTool};
pub use error::McpError;
pub use types::{Content, ToolInfo, ToolList, ToolResult};

/// JSON arguments of one call: always an object.
pub type Arguments = serde_json::Map<String, serde_json::Value>;

/// The `_meta` key of a `tools/call` that carries its idempotency key
/// (`{run_id}/{step_id}/m{turn}/t{i}`: the step's model turn and the call's place in it).
pub const IDEMPOTENCY_META: &str = "io.aixrun/idempotency-key";
/// The gRPC metadata entry that carries it on `mcp.MCPService/CallTool`.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// One MCP server, whatever carries its messages.
#[async_trait::async_trait]
pub trait McpServer: Send + Sync {
    /// The server's name as configured, for namespacing and messages.
    fn name(&self) -> &str;

    /// Every tool the server offers (all pages), with how long the list may be cached when
    /// the server says.
    async fn list_tools(&self) -> Result<ToolList, McpError>;

    /// Calls `tool` with `arguments`, giving up after `timeout`. Dropping the future cancels
    /// the call on the server. `idempotency_key` names the call across retries of a run (a
    /// resumed run makes a call that was in flight at a crash again, with the same key): over
    /// Streamable HTTP it travels in `params._meta` as [`IDEMPOTENCY_META`], over gRPC as the
    /// [`IDEMPOTENCY_HEADER`] metadata entry.
    async fn call_tool(
        &self,
        tool: &str,
        arguments: Arguments,
        timeout: Duration,
        idempotency_key: Option<&str>,
    ) -> Result<ToolResult, McpError>;
}
