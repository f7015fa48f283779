//! Request and listener limits: 413 for large REST bodies, 431 for large request heads, and a
//! clear 503 (not a reset) on connections beyond MAX_CONNECTIONS.

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use e2e::http::{self, RawResponse};
use e2e::{TestApp, WAIT_TIMEOUT};

/// Sends `head` and `body` on a new connection and reads the answer. Write errors are ignored:
/// a server may answer and close before taking everything, and the answer is what counts.
fn exchange(addr: SocketAddr, head: &str, body: &[u8]) -> RawResponse {
    let mut stream = http::connect(addr).unwrap();
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body));
    http::read_response(&mut BufReader::new(stream)).expect("a complete response")
}

fn post_with_body(addr: SocketAddr, path: &str, len: usize) -> RawResponse {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    exchange(addr, &head, &vec![b'x'; len])
}

fn get_with_header_of(addr: SocketAddr, bytes: usize) -> RawResponse {
    let head = format!(
        "GET /health/live HTTP/1.1\r\nHost: localhost\r\nX-Padding: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(bytes)
    );
    exchange(addr, &head, b"")
}

#[test]
fn rest_body_over_the_limit_gets_413() {
    let app = TestApp::spawn("mcp-tool", &[("MAX_REQUEST_BODY_BYTES", "1KiB")]);
    let r = post_with_body(app.addr, "/mcp", 2048);
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.json()["code"], "payload_too_large", "{r:?}");
    // Within the limit the same request is judged on its merits (it is not JSON-RPC).
    let r = post_with_body(app.addr, "/mcp", 512);
    assert_ne!(r.status, 413, "{r:?}");
}

/// Sends `total` bytes of body in chunked encoding (no Content-Length), 64 KiB a chunk.
fn post_chunked(addr: SocketAddr, path: &str, total: usize) -> RawResponse {
    let mut stream = http::connect(addr).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n"
    );
    let chunk = vec![b' '; 64 * 1024];
    let _ = stream.write_all(head.as_bytes()).and_then(|()| {
        let mut sent = 0;
        while sent < total {
            write!(stream, "{:x}\r\n", chunk.len())?;
            stream.write_all(&chunk)?;
            stream.write_all(b"\r\n")?;
            sent += chunk.len();
        }
        stream.write_all(b"0\r\n\r\n")
    });
    http::read_response(&mut BufReader::new(stream)).expect("a complete response")
}

#[test]
fn a_chunked_body_over_the_limit_gets_413_not_500() {
    let app = TestApp::spawn("mcp-tool", &[]);
    let r = post_chunked(app.addr, "/mcp", 5 * 1024 * 1024);
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.json()["code"], "payload_too_large");
    // A client error is never logged at ERROR.
    let line = app.wait_for_log("for the 413", |v| v["httpRequest"]["status"] == 413);
    assert_ne!(line["severity"], "ERROR", "{line}");
    assert!(
        !app.log_json().iter().any(|v| v["severity"] == "ERROR"),
        "no ERROR line: {:?}",
        app.logs()
    );
}

#[test]
fn request_head_over_the_limit_gets_431() {
    let app = TestApp::spawn("orchestrate", &[("MAX_REQUEST_HEADER_BYTES", "8KiB")]);
    let r = get_with_header_of(app.addr, 20 * 1024);
    assert_eq!(r.status, 431, "{r:?}");
    let r = get_with_header_of(app.addr, 4 * 1024);
    assert_eq!(r.status, 200, "a head within the limit is served: {r:?}");
}

#[test]
fn default_head_limit_is_16_kib() {
    let app = TestApp::spawn("orchestrate", &[("MAX_REQUEST_HEADER_BYTES", "")]);
    let r = get_with_header_of(app.addr, 12 * 1024);
    assert_eq!(r.status, 200, "{r:?}");
    let r = get_with_header_of(app.addr, 20 * 1024);
    assert_eq!(r.status, 431, "{r:?}");
}

/// A keep-alive connection that has been served once, so the server has certainly accepted and
/// counted it. Retries while earlier, closed connections (the harness's readiness polls) are
/// still being counted.
fn served_connection(addr: SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
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
            return (stream, reader);
        }
        assert_eq!(r.status, 503, "{r:?}");
        assert!(Instant::now() < deadline, "never got a connection slot");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn connection_beyond_max_connections_gets_an_http_503() {
    let app = TestApp::spawn("orchestrate", &[("MAX_CONNECTIONS", "2")]);
    let first = served_connection(app.addr);
    let _second = served_connection(app.addr);

    let mut third = http::connect(app.addr).unwrap();
    write!(
        third,
        "GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n"
    )
    .unwrap();
    let r = http::read_response(&mut BufReader::new(third))
        .expect("the third connection gets an HTTP answer, not a reset");
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.header("connection"), Some("close"), "{r:?}");
    assert!(r.header("retry-after").is_some(), "{r:?}");
    assert_eq!(r.json()["status"], 503);

    // Once a connection closes there is room again.
    drop(first);
    let deadline = Instant::now() + WAIT_TIMEOUT;
    loop {
        let r = http::get(app.addr, "/health/live").unwrap();
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 503, "{r:?}");
        assert!(
            Instant::now() < deadline,
            "no room after a connection closed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn library_errors_get_the_common_json_body() {
    // rmcp answers these in plain text; the runtime rewrites them, keeping status and headers.
    let app = TestApp::spawn("mcp-tool", &[]);
    let host = format!("localhost:{}", app.addr.port());
    let r = http::request(app.addr, "POST", "/mcp", &host, &[], b"{}").unwrap();
    assert_eq!(r.status, 406, "{r:?}");
    assert_eq!(r.json()["code"], "not_acceptable");
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("text/event-stream")
    );
    let r = http::request(app.addr, "PUT", "/mcp", &host, &[], b"").unwrap();
    assert_eq!(r.status, 405, "{r:?}");
    assert_eq!(r.json()["status"], 405);
    assert_eq!(r.header("allow"), Some("POST"));
}
