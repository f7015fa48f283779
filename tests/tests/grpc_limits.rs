//! The limits the runtime puts on every gRPC and gRPC-Web call: `grpc-timeout` honoured
//! (DEADLINE_EXCEEDED, and the handler cancelled: the upstream it was waiting on sees the
//! connection close), `REQUEST_TIMEOUT` as the deadline of calls that send none, a stalled
//! request stream closed by that limit, and `MAX_GRPC_MESSAGE_BYTES` both ways on every
//! service, the runtime's own included.

use std::time::Duration;

use aixrun_proto::mcp as pb;
use aixrun_proto::mcp::mcp_service_client::McpServiceClient;
use bytes::Bytes;
use e2e::mcp::{config_file, grpc_web_request};
use e2e::upstream::Upstream;
use e2e::{TempDir, TestApp, WAIT_TIMEOUT, clients, grpc_web, http};
use http_body_util::StreamBody;
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// mcp-tool whose `get_weather` waits on an upstream that never answers.
fn with_hanging_weather(upstream: &Upstream, dir: &TempDir, envs: &[(&str, &str)]) -> TestApp {
    let yaml = format!(
        "tools:\n  weather:\n    geocoding_url: {base}\n    forecast_url: {base}\n",
        base = upstream.base()
    );
    let path = config_file(dir, &yaml);
    let mut all = vec![("MCP_TOOL_CONFIG", path.as_str())];
    all.extend_from_slice(envs);
    TestApp::spawn("mcp-tool", &all)
}

fn weather_call() -> pb::CallToolRequest {
    pb::CallToolRequest {
        name: "get_weather".into(),
        arguments_json: r#"{"location": "Berlin"}"#.into(),
        ..Default::default()
    }
}

/// Waits until the upstream has seen a client hang up.
async fn upstream_sees_the_hang_up(upstream: &Upstream) {
    let deadline = tokio::time::Instant::now() + WAIT_TIMEOUT;
    while upstream.hung_up() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the handler kept waiting on its upstream: it was not cancelled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A unary gRPC call over hyper's own HTTP/2 client (tonic's client applies `grpc-timeout`
/// itself, which would race the server's answer): the response head and its grpc-status,
/// from the head (trailers-only) or the trailers.
async fn raw_grpc(
    addr: std::net::SocketAddr,
    path: &str,
    message: &impl prost::Message,
    grpc_timeout: &str,
) -> Option<String> {
    use http_body_util::BodyExt as _;
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let body = http_body_util::Full::new(Bytes::from(grpc_web::frame(
        grpc_web::DATA,
        &message.encode_to_vec(),
    )));
    let request = ::http::Request::post(format!("http://localhost:{}{path}", addr.port()))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", grpc_timeout)
        .body(body)
        .unwrap();
    let response = tokio::time::timeout(WAIT_TIMEOUT, sender.send_request(request))
        .await
        .expect("no answer")
        .unwrap();
    if let Some(status) = response.headers().get("grpc-status") {
        return Some(status.to_str().unwrap().to_owned());
    }
    let collected = response.into_body().collect().await.unwrap();
    collected
        .trailers()
        .and_then(|t| t.get("grpc-status"))
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_timeout_ends_a_slow_call_with_deadline_exceeded_and_cancels_it() {
    let upstream = Upstream::hanging();
    let dir = TempDir::new();
    let app = with_hanging_weather(&upstream, &dir, &[]);
    let status = raw_grpc(
        app.addr,
        "/mcp.MCPService/CallTool",
        &weather_call(),
        "100m",
    )
    .await;
    assert_eq!(status.as_deref(), Some("4"), "DEADLINE_EXCEEDED");
    upstream_sees_the_hang_up(&upstream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_honours_grpc_timeout_too() {
    let upstream = Upstream::hanging();
    let dir = TempDir::new();
    let app = with_hanging_weather(&upstream, &dir, &[]);
    let r = clients::http1()
        .post(app.url("/mcp.MCPService/CallTool"))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header("grpc-timeout", "100m")
        .body(grpc_web_request(&weather_call()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let headers = r.headers().clone();
    let reply = grpc_web::parse(&r.bytes().await.unwrap());
    let status = reply
        .trailer("grpc-status")
        .or_else(|| headers.get("grpc-status").and_then(|v| v.to_str().ok()))
        .map(str::to_owned);
    assert_eq!(status.as_deref(), Some("4"), "{headers:?} {reply:?}");
    upstream_sees_the_hang_up(&upstream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_grpc_timeout_request_timeout_is_the_deadline() {
    let upstream = Upstream::hanging();
    let dir = TempDir::new();
    let app = with_hanging_weather(&upstream, &dir, &[("REQUEST_TIMEOUT", "300ms")]);
    let mut client = McpServiceClient::new(clients::grpc_channel(app.addr).await);
    let status = client.call_tool(weather_call()).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    upstream_sees_the_hang_up(&upstream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_request_stream_is_closed_by_the_time_limit() {
    let app = TestApp::spawn("mcp-tool", &[("REQUEST_TIMEOUT", "500ms")]);
    let stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    // A message prefix declaring 4 MiB (the limit), and then nothing: the body stays open.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::convert::Infallible>>(1);
    tx.send(Ok(Frame::data(Bytes::from_static(&[0, 0, 0x40, 0, 0]))))
        .await
        .unwrap();
    let body = StreamBody::new(Box::pin(futures_util::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|frame| (frame, rx)) },
    )));
    let request = ::http::Request::post(format!(
        "http://localhost:{}/mcp.MCPService/CallTool",
        app.addr.port()
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(body)
    .unwrap();
    let response = tokio::time::timeout(WAIT_TIMEOUT, sender.send_request(request))
        .await
        .expect("the stalled call was never ended")
        .unwrap();
    assert_eq!(
        response
            .headers()
            .get("grpc-status")
            .map(|v| v.to_str().unwrap()),
        Some("4"),
        "{response:?}"
    );
    drop(tx);
    // The instance keeps serving.
    let addr = app.addr;
    let r = tokio::task::spawn_blocking(move || http::get(addr, "/health/live"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_limits_hold_both_ways_on_every_service() {
    let app = TestApp::spawn("mcp-tool", &[("MAX_GRPC_MESSAGE_BYTES", "1KiB")]);
    let channel = clients::grpc_channel(app.addr).await;
    // A request over the limit, to the runtime's own health service.
    let status = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "x".repeat(2048),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("MAX_GRPC_MESSAGE_BYTES"),
        "{status:?}"
    );
    // A request over the limit, to the function's service.
    let mut mcp = McpServiceClient::new(channel);
    let mut call = pb::CallToolRequest {
        name: "echo".into(),
        ..Default::default()
    };
    call.arguments_json = format!(r#"{{"text": "{}"}}"#, "y".repeat(2048));
    let status = mcp.call_tool(call).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    // A response over the limit: the tool list is larger than 1 KiB.
    let status = mcp
        .list_tools(pb::ListToolsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("response"), "{status:?}");
    // Within the limit, calls work.
    let small = pb::CallToolRequest {
        name: "echo".into(),
        arguments_json: r#"{"text": "hi"}"#.into(),
        ..Default::default()
    };
    assert!(!mcp.call_tool(small).await.unwrap().into_inner().is_error);
}
