//! One port, every protocol: HTTP/1.1, h2c (prior knowledge and the `Upgrade: h2c` request),
//! gRPC health and reflection, and gRPC-Web in binary and text form.

use std::io::{BufReader, Read, Write};

use e2e::clients::{grpc_channel, h2c, http1};
use e2e::{TestApp, grpc_web, http};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const UPGRADE_REQUEST: &str = "GET /health/live HTTP/1.1\r\nHost: localhost\r\n\
    Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\
    HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_h2c_and_h2c_upgrade_are_all_answered_on_one_port() {
    let app = TestApp::spawn("orchestrate", &[]);

    let r = http1().get(app.url("/health/live")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "alive"}));

    let r = h2c().get(app.url("/health/live")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "alive"}));

    let addr = app.addr;
    tokio::task::spawn_blocking(move || upgrade_request_gets_a_complete_answer(addr))
        .await
        .unwrap();
}

/// Sends `Upgrade: h2c`. A server may switch (101, then the answer over HTTP/2 on stream 1) or
/// ignore the offer (a plain HTTP/1.1 answer, after which the connection must still serve).
fn upgrade_request_gets_a_complete_answer(addr: std::net::SocketAddr) {
    let mut stream = http::connect(addr).unwrap();
    stream.write_all(UPGRADE_REQUEST.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let first = http::read_response(&mut reader).unwrap();
    if first.status == 101 {
        assert_eq!(first.header("upgrade"), Some("h2c"), "{first:?}");
        h2_client_preface(&mut stream);
        let body = h2_stream_one_body(&mut stream, &mut reader);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body, json!({"status": "alive"}));
        return;
    }
    assert_eq!(first.version, "HTTP/1.1");
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.json(), json!({"status": "alive"}));
    // Still a working HTTP/1.1 keep-alive connection.
    write!(
        stream,
        "GET /health/ready HTTP/1.1\r\nHost: localhost\r\n\r\n"
    )
    .unwrap();
    let second = http::read_response(&mut reader).unwrap();
    assert_eq!(second.status, 200, "{second:?}");
    assert_eq!(second.json(), json!({"status": "ready"}));
}

/// The HTTP/2 client connection preface followed by an empty SETTINGS frame.
fn h2_client_preface(stream: &mut std::net::TcpStream) {
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
}

/// After a 101 to h2c (and the client preface): acknowledges the server's SETTINGS and
/// collects the DATA of stream 1 (the upgraded request) until END_STREAM.
fn h2_stream_one_body(stream: &mut std::net::TcpStream, reader: &mut impl Read) -> Vec<u8> {
    const DATA: u8 = 0x0;
    const HEADERS: u8 = 0x1;
    const RST_STREAM: u8 = 0x3;
    const SETTINGS: u8 = 0x4;
    const GOAWAY: u8 = 0x7;
    const END_STREAM: u8 = 0x1;
    const ACK: u8 = 0x1;
    const PADDED: u8 = 0x8;
    let mut body = Vec::new();
    loop {
        let mut head = [0u8; 9];
        reader.read_exact(&mut head).unwrap();
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind, flags) = (head[3], head[4]);
        let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        reader.read_exact(&mut payload).unwrap();
        match kind {
            SETTINGS if flags & ACK == 0 => stream
                .write_all(b"\x00\x00\x00\x04\x01\x00\x00\x00\x00")
                .unwrap(),
            DATA if id == 1 => {
                let data = if flags & PADDED != 0 {
                    let pad = payload[0] as usize;
                    &payload[1..payload.len() - pad]
                } else {
                    &payload[..]
                };
                body.extend_from_slice(data);
                if flags & END_STREAM != 0 {
                    return body;
                }
            }
            HEADERS if id == 1 && flags & END_STREAM != 0 => return body,
            RST_STREAM | GOAWAY => panic!("h2 frame {kind} after the upgrade: {payload:?}"),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_path_gets_a_json_404() {
    let app = TestApp::spawn("orchestrate", &[]);
    let r = http1().get(app.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], 404);
    assert!(body["error"].as_str().unwrap().contains("/nope"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_health_check_of_the_server_is_serving() {
    let app = TestApp::spawn("orchestrate", &[]);
    let mut client = HealthClient::new(grpc_channel(app.addr).await);
    let r = client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.status, ServingStatus::Serving as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_health_check_of_an_unknown_service_is_not_found() {
    let app = TestApp::spawn("orchestrate", &[]);
    let mut client = HealthClient::new(grpc_channel(app.addr).await);
    let status = client
        .check(HealthCheckRequest {
            service: "no.such.Service".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
}

/// A test that asks one reflection version to list services and expects the health service.
/// The two versions have identical messages in different generated modules.
macro_rules! reflection_lists_the_health_service {
    ($test:ident, $version:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            use tonic_reflection::pb::$version::server_reflection_client::ServerReflectionClient;
            use tonic_reflection::pb::$version::server_reflection_request::MessageRequest;
            use tonic_reflection::pb::$version::server_reflection_response::MessageResponse;
            use tonic_reflection::pb::$version::{
                ServerReflectionRequest, ServerReflectionResponse,
            };

            let app = TestApp::spawn("orchestrate", &[]);
            let mut client = ServerReflectionClient::new(grpc_channel(app.addr).await);
            let request = ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            };
            let mut responses = client
                .server_reflection_info(futures_util::stream::iter([request]))
                .await
                .unwrap()
                .into_inner();
            let response: ServerReflectionResponse = responses.next().await.unwrap().unwrap();
            let Some(MessageResponse::ListServicesResponse(list)) = response.message_response
            else {
                panic!("not a ListServices answer: {response:?}");
            };
            let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
            assert!(
                names.iter().any(|n| n == "grpc.health.v1.Health"),
                "{names:?}"
            );
        }
    };
}

reflection_lists_the_health_service!(reflection_v1_lists_the_health_service, v1);
reflection_lists_the_health_service!(reflection_v1alpha_lists_the_health_service, v1alpha);

/// A gRPC-Web Health/Check over HTTP/1.1: the response's content type and its parsed body.
async fn grpc_web_check(app: &TestApp, text: bool) -> (String, grpc_web::Reply) {
    let url = app.url("/grpc.health.v1.Health/Check");
    let (headers, reply) = grpc_web::post(url, grpc_web::health_check_body(""), text).await;
    let content_type = headers["content-type"].to_str().unwrap().to_owned();
    (content_type, reply)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_binary_health_check_is_serving() {
    let app = TestApp::spawn("orchestrate", &[]);
    let (content_type, reply) = grpc_web_check(&app, false).await;
    assert!(
        content_type.starts_with("application/grpc-web"),
        "{content_type}"
    );
    assert!(!content_type.contains("text"), "{content_type}");
    assert!(reply.has_trailer_frame, "{reply:?}");
    assert_eq!(reply.trailer("grpc-status"), Some("0"), "{reply:?}");
    assert_eq!(reply.health_status(), ServingStatus::Serving as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_text_health_check_is_serving() {
    let app = TestApp::spawn("orchestrate", &[]);
    let (content_type, reply) = grpc_web_check(&app, true).await;
    assert!(
        content_type.starts_with("application/grpc-web-text"),
        "{content_type}"
    );
    assert!(reply.has_trailer_frame, "{reply:?}");
    assert_eq!(reply.trailer("grpc-status"), Some("0"), "{reply:?}");
    assert_eq!(reply.health_status(), ServingStatus::Serving as i32);
}
