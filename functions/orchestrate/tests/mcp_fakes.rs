//! The MCP client against loopback fakes, for what the real server can't show: the fallback
//! to `initialize` for a legacy-only server, cancellation seen from the server side, and the
//! tool-list cache sparing a request.
//!
//! The HTTP fake reproduces a Streamable HTTP server of either era as the specification
//! describes it (`basic/transports/streamable-http.mdx`, `basic/lifecycle.mdx`, 2025-11-25
//! and 2026-07-28). In legacy mode it answers `server/discover` as a 2025-11-25 server answers
//! any method it doesn't know: HTTP 200 with the JSON-RPC error -32601 "Method not found"
//! (JSON-RPC 2.0 §5.1), which is what the 2026-07-28 backward-compatibility guidance tells
//! clients to treat as "legacy, fall back to initialize".

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use orchestrate::mcp::http::{Era, HttpServer};
use orchestrate::mcp::tls::TlsFiles;
use orchestrate::mcp::{CachedServer, McpServer};
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

/// Bound on waiting for something the server should see (not a timing assertion).
const WAIT: Duration = e2e::WAIT_TIMEOUT;

#[derive(Default)]
struct Seen {
    /// (method, id) of every message, in arrival order.
    messages: Mutex<Vec<(String, Value)>>,
    /// `requestId`s of `notifications/cancelled`.
    cancelled: Mutex<Vec<Value>>,
    started: Notify,
    dropped: Notify,
}

struct Fake {
    modern: bool,
    seen: Arc<Seen>,
}

/// Signals when the handler of the hanging call is dropped: the client closed its stream.
struct OnDrop(Arc<Seen>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.dropped.notify_one();
    }
}

fn result(id: &Value, modern: bool, mut result: Value) -> Response {
    if modern {
        result["resultType"] = json!("complete");
    }
    axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
}

async fn handle(State(fake): State<Arc<Fake>>, axum::Json(body): axum::Json<Value>) -> Response {
    let method = body["method"].as_str().unwrap_or_default().to_owned();
    let id = body.get("id").cloned();
    fake.seen
        .messages
        .lock()
        .unwrap()
        .push((method.clone(), id.clone().unwrap_or(Value::Null)));
    let Some(id) = id else {
        if method == "notifications/cancelled" {
            let request = body["params"]["requestId"].clone();
            fake.seen.cancelled.lock().unwrap().push(request);
        }
        return StatusCode::ACCEPTED.into_response();
    };
    let modern = fake.modern;
    match method.as_str() {
        "server/discover" if modern => result(
            &id,
            true,
            json!({
                "supportedVersions": ["2026-07-28"],
                "capabilities": {"tools": {}},
                "ttlMs": 3_600_000,
                "cacheScope": "private",
                "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "fake", "version": "1"}}
            }),
        ),
        "initialize" => result(
            &id,
            false,
            json!({
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "fake", "version": "1"}
            }),
        ),
        "tools/list" => result(
            &id,
            modern,
            json!({"tools": [
                {"name": "echo", "inputSchema": {"type": "object"}},
                {"name": "hang", "inputSchema": {"type": "object"}}
            ]}),
        ),
        "tools/call" if body["params"]["name"] == "hang" => {
            let _guard = OnDrop(fake.seen.clone());
            fake.seen.started.notify_one();
            std::future::pending::<()>().await;
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        "tools/call" => result(
            &id,
            modern,
            json!({"content": [{"type": "text", "text": "echoed"}], "isError": false}),
        ),
        _ => axum::Json(json!({
            "jsonrpc": "2.0", "id": id,
            "error": {"code": -32601, "message": "Method not found"}
        }))
        .into_response(),
    }
}

/// Serves the fake on a loopback port; returns its `/mcp` URL and what it sees.
async fn serve(modern: bool) -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let fake = Arc::new(Fake {
        modern,
        seen: seen.clone(),
    });
    let app = axum::Router::new()
        .route(
            "/mcp",
            post(handle).get(|| async { StatusCode::METHOD_NOT_ALLOWED }),
        )
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/mcp"), seen)
}

fn methods(seen: &Seen) -> Vec<String> {
    seen.messages
        .lock()
        .unwrap()
        .iter()
        .map(|(m, _)| m.clone())
        .collect()
}

#[tokio::test]
async fn legacy_only_server_gets_initialize_after_discover_fails() {
    let (url, seen) = serve(false).await;
    let server = HttpServer::new("legacy", &url, &TlsFiles::default(), None).unwrap();
    let list = server.list_tools().await.unwrap();
    assert_eq!(list.tools.len(), 2);
    assert_eq!(server.era(), Some(Era::Legacy));
    let result = server
        .call_tool("echo", Map::new(), WAIT, None)
        .await
        .unwrap();
    assert_eq!(result.text(), "echoed");
    let methods = methods(&seen);
    assert_eq!(
        methods[..3],
        ["server/discover", "initialize", "notifications/initialized"],
        "{methods:?}"
    );
}

#[tokio::test]
async fn cache_serves_the_second_list_without_a_request() {
    let (url, seen) = serve(true).await;
    let server = Arc::new(HttpServer::new("cached", &url, &TlsFiles::default(), None).unwrap());
    let cached = CachedServer::new(server, Duration::from_secs(3600));
    cached.list_tools().await.unwrap();
    cached.list_tools().await.unwrap();
    let lists = methods(&seen).iter().filter(|m| *m == "tools/list").count();
    assert_eq!(lists, 1);
}

/// Starts a call of `hang`, waits until the server is running it, drops the call's future,
/// and waits until the server's handler is dropped (its stream closed).
async fn drop_a_hanging_call(server: Arc<HttpServer>, seen: &Seen) {
    let call = tokio::spawn(async move {
        server
            .call_tool("hang", Map::new(), Duration::from_secs(3600), None)
            .await
    });
    tokio::time::timeout(WAIT, seen.started.notified())
        .await
        .expect("the server never saw the call");
    call.abort();
    tokio::time::timeout(WAIT, seen.dropped.notified())
        .await
        .expect("the server never saw the call end");
}

#[tokio::test]
async fn dropping_a_call_closes_its_stream_on_2026_07_28() {
    let (url, seen) = serve(true).await;
    let server = Arc::new(HttpServer::new("modern", &url, &TlsFiles::default(), None).unwrap());
    drop_a_hanging_call(server.clone(), &seen).await;
    assert_eq!(server.era(), Some(Era::Modern));
}

#[tokio::test]
async fn dropping_a_call_sends_cancelled_to_a_legacy_server() {
    let (url, seen) = serve(false).await;
    let server = Arc::new(HttpServer::new("legacy", &url, &TlsFiles::default(), None).unwrap());
    // The test keeps its own handle: the connection must outlive the dropped call.
    drop_a_hanging_call(server.clone(), &seen).await;
    let call_id = seen
        .messages
        .lock()
        .unwrap()
        .iter()
        .find(|(m, _)| m == "tools/call")
        .map(|(_, id)| id.clone())
        .unwrap();
    // The notification may arrive just after the stream closes.
    for _ in 0..1000 {
        if seen.cancelled.lock().unwrap().contains(&call_id) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "no notifications/cancelled for {call_id}: {:?}",
        methods(&seen)
    );
}
