//! A minimal rmcp server with one `echo` tool, in the style of the Rust SDK's examples
//! (`examples/servers/src/counter_streamhttp.rs`): `#[tool_router]`/`#[tool]` macros,
//! `StreamableHttpService` with `LocalSessionManager` and the default configuration (sessions
//! for legacy clients, SSE responses; 2026-07-28 requests are served statelessly by rmcp
//! itself), nested at `/mcp` in an axum router on 127.0.0.1. No logging. One addition to the
//! examples: TCP_NODELAY (see `main`). `PORT` picks the port (default 8000).

use axum::serve::ListenerExt;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use rmcp::{ErrorData as McpError, ServerHandler, schemars, tool, tool_handler, tool_router};

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    /// The text to return.
    text: String,
}

/// No router field: in rmcp 3.11 `#[tool_handler]` calls `Self::tool_router()` itself (the
/// macros' documented default).
#[derive(Clone)]
struct Echo;

#[tool_router]
impl Echo {
    #[tool(description = "Returns the given text unchanged")]
    fn echo(
        &self,
        Parameters(EchoArgs { text }): Parameters<EchoArgs>,
    ) -> Result<CallToolResult, McpError> {
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
    }
}

#[tool_handler]
impl ServerHandler for Echo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8000".into());
    let ct = tokio_util::sync::CancellationToken::new();
    let service = StreamableHttpService::new(
        || Ok(Echo),
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default().with_cancellation_token(ct.child_token()),
    );
    let router = axum::Router::new().nest_service("/mcp", service);
    // TCP_NODELAY, as mcp-tool sets it: the SDK examples don't, and then every SSE response
    // (headers and event, then the closing chunk) waits out a 40 ms delayed ACK (Nagle).
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
        .await?
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            ct.cancel();
        })
        .await
}
