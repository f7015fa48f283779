//! One access guard in front of every route: bound to loopback, a foreign `Host` or `Origin`
//! is refused on REST, `/mcp`, gRPC and gRPC-Web alike (DNS-rebinding protection); allowed
//! browser origins get CORS, preflight included, for gRPC-Web and MCP.

use aixrun_proto::mcp as pb;
use aixrun_proto::mcp::mcp_service_client::McpServiceClient;
use e2e::mcp::grpc_web_request;
use e2e::{TestApp, clients, http};
use tonic::Code;

const APP_ORIGIN: &str = "https://app.example.com";

fn echo_body() -> Vec<u8> {
    grpc_web_request(&pb::CallToolRequest {
        name: "echo".into(),
        arguments_json: r#"{"text": "hi"}"#.into(),
        ..Default::default()
    })
}

fn grpc_web_headers<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![
        ("Content-Type", "application/grpc-web+proto"),
        ("X-Grpc-Web", "1"),
    ];
    headers.extend_from_slice(extra);
    headers
}

#[test]
fn on_loopback_a_foreign_host_or_origin_is_refused_on_every_route() {
    let app = TestApp::spawn("mcp-tool", &[]);
    let evil_host = format!("evil.test:{}", app.addr.port());
    let evil_origin = format!("http://evil.test:{}", app.addr.port());
    let local_host = format!("localhost:{}", app.addr.port());
    for (host, origin) in [
        (evil_host.as_str(), None),
        (evil_host.as_str(), Some(evil_origin.as_str())),
        (local_host.as_str(), Some(evil_origin.as_str())),
    ] {
        let origin: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
        // gRPC-Web: the call never reaches the tool; PERMISSION_DENIED in the status.
        let r = http::request(
            app.addr,
            "POST",
            "/mcp.MCPService/CallTool",
            host,
            &grpc_web_headers(&origin),
            &echo_body(),
        )
        .unwrap();
        assert_eq!(
            r.header("grpc-status"),
            Some("7"),
            "{host} {origin:?}: {r:?}"
        );
        assert!(!r.text().contains("hi"), "the tool ran: {r:?}");
        // REST and /mcp: 403 in the common error body.
        for (method, path) in [("GET", "/health/live"), ("POST", "/mcp")] {
            let r = http::request(app.addr, method, path, host, &origin, b"{}").unwrap();
            assert_eq!(r.status, 403, "{method} {path} {host} {origin:?}: {r:?}");
            assert_eq!(r.json()["code"], "forbidden");
        }
    }
    // Local names and origins are served.
    let local_origin = format!("http://localhost:{}", app.addr.port());
    let r = http::request(
        app.addr,
        "POST",
        "/mcp.MCPService/CallTool",
        &local_host,
        &grpc_web_headers(&[("Origin", &local_origin)]),
        &echo_body(),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.text().contains("hi"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_loopback_native_grpc_with_a_foreign_authority_is_permission_denied() {
    let app = TestApp::spawn("mcp-tool", &[]);
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .origin(
            format!("http://evil.test:{}", app.addr.port())
                .parse()
                .unwrap(),
        )
        .connect()
        .await
        .unwrap();
    let status = McpServiceClient::new(channel)
        .list_tools(pb::ListToolsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    // The same call with the real authority is served.
    let mut client = McpServiceClient::new(clients::grpc_channel(app.addr).await);
    assert!(
        client
            .list_tools(pb::ListToolsRequest::default())
            .await
            .is_ok()
    );
}

#[test]
fn allowed_browser_origins_get_cors_for_grpc_web_and_mcp() {
    let app = TestApp::spawn("mcp-tool", &[("ALLOWED_ORIGINS", APP_ORIGIN)]);
    let host = format!("localhost:{}", app.addr.port());
    let preflight = |origin: &str, path: &str| {
        http::request(
            app.addr,
            "OPTIONS",
            path,
            &host,
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                (
                    "Access-Control-Request-Headers",
                    "content-type,x-grpc-web,grpc-timeout",
                ),
            ],
            b"",
        )
        .unwrap()
    };
    for path in ["/mcp.MCPService/CallTool", "/mcp"] {
        let r = preflight(APP_ORIGIN, path);
        assert!(r.status < 300, "{path}: {r:?}");
        assert_eq!(r.header("access-control-allow-origin"), Some(APP_ORIGIN));
        let allowed = r.header("access-control-allow-headers").unwrap_or_default();
        assert!(allowed.contains("x-grpc-web"), "{allowed}");
        assert!(
            r.header("access-control-allow-methods")
                .unwrap_or_default()
                .contains("POST")
        );
        // Any other origin is refused outright.
        assert_eq!(preflight("https://other.example.com", path).status, 403);
    }
    // The real call: served, with the headers a browser needs to read the gRPC status.
    let r = http::request(
        app.addr,
        "POST",
        "/mcp.MCPService/CallTool",
        &host,
        &grpc_web_headers(&[("Origin", APP_ORIGIN)]),
        &echo_body(),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("access-control-allow-origin"), Some(APP_ORIGIN));
    let exposed = r
        .header("access-control-expose-headers")
        .unwrap_or_default();
    assert!(exposed.contains("grpc-status"), "{exposed}");
    // And the challenge of a 401, which says what was wrong with the token.
    assert!(exposed.contains("www-authenticate"), "{exposed}");
    // Requests without an Origin (not from a browser) carry no CORS headers.
    let r = http::request(app.addr, "GET", "/health/live", &host, &[], b"").unwrap();
    assert!(r.header("access-control-allow-origin").is_none(), "{r:?}");
}

#[test]
fn on_all_interfaces_any_host_is_served_and_origins_still_checked() {
    let app = TestApp::spawn("mcp-tool", &[("HOST", "0.0.0.0")]);
    let r = http::request(
        app.addr,
        "GET",
        "/health/live",
        "svc-abc.a.run.app",
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let r = http::request(
        app.addr,
        "GET",
        "/health/live",
        "svc-abc.a.run.app",
        &[("Origin", "https://evil.test")],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 403, "{r:?}");
}
