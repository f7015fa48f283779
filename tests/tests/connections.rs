//! Connection lifetime under hostile or careless clients: silent sockets, half-sent prefaces
//! and heads, idle HTTP/1 and h2c connections are closed by their time limits, so they never
//! lock new clients out of `MAX_CONNECTIONS`; an HTTP/2 connection admitted over the limit
//! gets 503 and a GOAWAY; past the hard cap, connections are closed before anything is read.

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use e2e::{TestApp, WAIT_TIMEOUT, http};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;

/// Short limits, so the test sees them act.
const FAST_LIMITS: &[(&str, &str)] = &[
    ("MAX_CONNECTIONS", "4"),
    ("FIRST_REQUEST_TIMEOUT", "1s"),
    ("HEADER_READ_TIMEOUT", "1s"),
    ("IDLE_TIMEOUT", "1s"),
];

/// Whether the server closed `stream` (EOF or reset) within `within`; bytes it sends first
/// (an error answer) are read and ignored.
fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// A keep-alive HTTP/1.1 connection that has been served once, then left idle.
fn idle_http1(addr: SocketAddr) -> TcpStream {
    let deadline = Instant::now() + WAIT_TIMEOUT;
    loop {
        let mut stream = http::connect(addr).unwrap();
        write!(
            stream,
            "GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let r = http::read_response(&mut reader).unwrap();
        if r.status == 200 {
            return stream;
        }
        assert!(Instant::now() < deadline, "never served: {r:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `GET /health/live` on new connections until one answers 200.
fn new_client_is_served(addr: SocketAddr) -> bool {
    let deadline = Instant::now() + WAIT_TIMEOUT;
    while Instant::now() < deadline {
        if http::get(addr, "/health/live").is_ok_and(|r| r.status == 200) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn silent_half_sent_and_idle_http1_connections_are_closed_and_new_clients_served() {
    let app = TestApp::spawn("mcp-tool", FAST_LIMITS);
    let mut idle = idle_http1(app.addr);
    let mut silent = http::connect(app.addr).unwrap();
    let mut half_head = http::connect(app.addr).unwrap();
    half_head
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: loc")
        .unwrap();
    let mut half_preface = http::connect(app.addr).unwrap();
    half_preface.write_all(b"PRI * HTTP/2.0\r\n").unwrap();
    // The four fill MAX_CONNECTIONS; each is closed by its own limit.
    for (name, stream) in [
        ("silent", &mut silent),
        ("half-sent head", &mut half_head),
        ("half-sent HTTP/2 preface", &mut half_preface),
        ("idle keep-alive", &mut idle),
    ] {
        assert!(
            closed_by_server(stream, WAIT_TIMEOUT),
            "the {name} connection was never closed"
        );
    }
    assert!(
        new_client_is_served(app.addr),
        "a new client was locked out"
    );
}

#[test]
fn a_later_request_head_sent_halfway_is_closed_by_the_header_timeout() {
    let app = TestApp::spawn(
        "mcp-tool",
        &[("HEADER_READ_TIMEOUT", "1s"), ("IDLE_TIMEOUT", "1h")],
    );
    let mut stream = idle_http1(app.addr);
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: loc")
        .unwrap();
    assert!(closed_by_server(&mut stream, WAIT_TIMEOUT));
    // An idle connection under IDLE_TIMEOUT stays open meanwhile.
    let mut idle = idle_http1(app.addr);
    assert!(!closed_by_server(&mut idle, Duration::from_millis(1500)));
}

/// An h2c connection through hyper's own client: its sender and the task driving it.
async fn h2c(
    addr: SocketAddr,
) -> (
    hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    tokio::task::JoinHandle<hyper::Result<()>>,
) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .expect("h2c handshake");
    (sender, tokio::spawn(conn))
}

async fn h2_get(
    sender: &mut hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    addr: SocketAddr,
) -> u16 {
    let req = ::http::Request::get(format!("http://localhost:{}/health/live", addr.port()))
        .body(Empty::new())
        .unwrap();
    sender
        .send_request(req)
        .await
        .expect("h2 response")
        .status()
        .as_u16()
}

#[tokio::test]
async fn an_idle_h2c_connection_gets_goaway_and_closes() {
    let app = TestApp::spawn("mcp-tool", FAST_LIMITS);
    let (mut sender, conn) = h2c(app.addr).await;
    assert_eq!(h2_get(&mut sender, app.addr).await, 200);
    // hyper's client connection ends cleanly once the server's GOAWAY and close arrive.
    let ended = tokio::time::timeout(WAIT_TIMEOUT, conn)
        .await
        .expect("the idle h2c connection was never closed");
    assert!(ended.unwrap().is_ok(), "a graceful close, not an error");
    let addr = app.addr;
    assert!(
        tokio::task::spawn_blocking(move || new_client_is_served(addr))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn an_http2_connection_over_the_limit_gets_503_and_goaway() {
    let app = TestApp::spawn("mcp-tool", &[("MAX_CONNECTIONS", "1")]);
    let addr = app.addr;
    let _held = tokio::task::spawn_blocking(move || idle_http1(addr))
        .await
        .unwrap();
    let (mut sender, conn) = h2c(app.addr).await;
    assert_eq!(h2_get(&mut sender, app.addr).await, 503);
    let ended = tokio::time::timeout(WAIT_TIMEOUT, conn)
        .await
        .expect("the connection over the limit stayed open");
    assert!(ended.unwrap().is_ok(), "GOAWAY then close, not a reset");
}

#[test]
fn past_the_hard_cap_connections_are_closed_before_any_read() {
    // MAX_CONNECTIONS=1 gives a hard cap of 17 (16 more get their 503).
    let app = TestApp::spawn(
        "mcp-tool",
        &[("MAX_CONNECTIONS", "1"), ("FIRST_REQUEST_TIMEOUT", "30s")],
    );
    let mut held = Vec::new();
    let deadline = Instant::now() + WAIT_TIMEOUT;
    let refused = loop {
        let mut stream = http::connect(app.addr).unwrap();
        if closed_by_server(&mut stream, Duration::from_millis(300)) {
            break held.len();
        }
        held.push(stream);
        assert!(
            Instant::now() < deadline,
            "never refused at {} connections",
            held.len()
        );
    };
    assert_eq!(refused, 17, "closed at once only past the hard cap");
    drop(held);
    assert!(new_client_is_served(app.addr));
}
