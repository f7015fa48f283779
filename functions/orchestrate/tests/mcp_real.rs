//! The MCP client against the real mcp-tool binary (started by `e2e::TestApp`), over every
//! transport: gRPC, Streamable HTTP in both eras, and in-process; the model's mistakes as the
//! right `McpError`s; names namespaced when two servers share a tool.

use std::sync::Arc;
use std::time::Duration;

use e2e::TestApp;
use orchestrate::mcp::grpc::GrpcServer;
use orchestrate::mcp::http::{Era, HttpServer};
#[cfg(feature = "local-tools")]
use orchestrate::mcp::local::LocalServer;
use orchestrate::mcp::tls::TlsFiles;
use orchestrate::mcp::{Catalog, McpError, McpServer};
use serde_json::{Map, Value, json};

const TIMEOUT: Duration = Duration::from_secs(20);

fn args(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Lists, checks echo's full schema, calls echo, then an unknown tool and bad arguments.
async fn exercise(server: &dyn McpServer) {
    let list = server.list_tools().await.unwrap();
    let echo = list.tools.iter().find(|t| t.name == "echo").expect("echo");
    // Only the full JSON Schema has `additionalProperties` (the seed's flat one does not).
    assert_eq!(echo.input_schema["additionalProperties"], json!(false));
    assert_eq!(echo.input_schema["required"], json!(["text"]));
    let result = server
        .call_tool("echo", args(json!({"text": "hi"})), TIMEOUT, None)
        .await
        .unwrap();
    assert_eq!(result.text(), "hi");
    assert!(!result.is_error);
    let unknown = server
        .call_tool("no_such_tool", Map::new(), TIMEOUT, None)
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, McpError::UnknownTool { ref tool, .. } if tool == "no_such_tool"),
        "{unknown:?}"
    );
    let invalid = server
        .call_tool("echo", args(json!({"text": 5})), TIMEOUT, None)
        .await
        .unwrap_err();
    assert!(
        matches!(invalid, McpError::InvalidArguments { ref tool, .. } if tool == "echo"),
        "{invalid:?}"
    );
    assert!(unknown.is_model_error() && invalid.is_model_error());
}

#[tokio::test]
async fn grpc_lists_and_calls_echo() {
    let app = TestApp::spawn("mcp-tool", &[]);
    let server = GrpcServer::new("tools", &app.base, &TlsFiles::default(), None).unwrap();
    exercise(&server).await;
}

#[tokio::test]
async fn http_probes_and_speaks_2026_07_28() {
    let app = TestApp::spawn("mcp-tool", &[]);
    let server = HttpServer::new("tools", &app.url("/mcp"), &TlsFiles::default(), None).unwrap();
    assert_eq!(server.era(), None);
    exercise(&server).await;
    assert_eq!(server.era(), Some(Era::Modern));
}

#[tokio::test]
async fn http_speaks_2025_11_25_when_told() {
    let app = TestApp::spawn("mcp-tool", &[]);
    let server = HttpServer::new("tools", &app.url("/mcp"), &TlsFiles::default(), None)
        .unwrap()
        .with_era(Era::Legacy);
    exercise(&server).await;
    assert_eq!(server.era(), Some(Era::Legacy));
}

#[cfg(feature = "local-tools")]
#[tokio::test]
async fn local_registry_lists_and_calls_echo() {
    let env = aixrun::Env::from_pairs([("MCP_TOOLS", "echo")]);
    let mut metrics = prometheus_client::registry::Registry::default();
    let server = LocalServer::from_env("local", &env, &mut metrics).unwrap();
    exercise(&server).await;
}

#[tokio::test]
async fn two_servers_with_echo_get_namespaced_names() {
    let app = TestApp::spawn("mcp-tool", &[("MCP_TOOLS", "echo")]);
    let grpc: Arc<dyn McpServer> =
        Arc::new(GrpcServer::new("grpc", &app.base, &TlsFiles::default(), None).unwrap());
    let http: Arc<dyn McpServer> =
        Arc::new(HttpServer::new("web", &app.url("/mcp"), &TlsFiles::default(), None).unwrap());
    let catalog = Catalog::new(vec![grpc, http]);
    let listing = catalog.list().await;
    assert!(listing.failures.is_empty(), "{:?}", listing.failures);
    let names: Vec<&str> = listing
        .tools
        .iter()
        .map(|t| t.model_name.as_str())
        .collect();
    assert_eq!(names, ["grpc__echo", "web__echo"]);
    let result = catalog
        .call("web__echo", args(json!({"text": "routed"})), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(result.text(), "routed");
    let missing = catalog.call("echo", Map::new(), TIMEOUT).await.unwrap_err();
    assert!(
        matches!(missing, McpError::UnknownTool { .. }),
        "{missing:?}"
    );
}
