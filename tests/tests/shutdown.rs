//! Graceful shutdown: on SIGTERM readiness turns false at once, the listener closes, requests
//! already accepted finish within SHUTDOWN_GRACE_PERIOD, and the process exits 0.

use std::io::{BufReader, ErrorKind, Write};
use std::time::{Duration, Instant};

use e2e::clients::{grpc_channel, h2c};
use e2e::{EXIT_SLACK, InFlight, TestApp, WAIT_TIMEOUT, grpc_web, http};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Long enough that a slow, loaded machine never cuts the tests' in-flight requests; a clean
/// drain exits long before it.
const GRACE: Duration = Duration::from_secs(20);
const GRACE_ENV: &str = "20s";
/// The documented bound on exit after SIGTERM: the grace period, plus slack for a loaded host.
const EXIT_BOUND: Duration = GRACE.saturating_add(EXIT_SLACK);

fn log_has(app: &TestApp, message: &str) -> bool {
    app.log_json().iter().any(|v| {
        v["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(message))
    })
}

/// Polls until a new connection to `addr` is refused: the listener is closed.
fn wait_until_refused(addr: std::net::SocketAddr) {
    let deadline = Instant::now() + WAIT_TIMEOUT;
    loop {
        match std::net::TcpStream::connect(addr) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => return,
            Err(e) => panic!("connect to {addr}: unexpected error {e}"),
            Ok(_) => {}
        }
        assert!(
            Instant::now() < deadline,
            "{addr} still accepts connections {WAIT_TIMEOUT:?} after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn requests_accepted_before_sigterm_finish_and_the_process_exits_zero() {
    let mut app = TestApp::spawn("orchestrate", &[("SHUTDOWN_GRACE_PERIOD", GRACE_ENV)]);
    // 20 requests the server has accepted (it answered 100 Continue) and is still running.
    let held: Vec<InFlight> = (0..20).map(|_| InFlight::open(app.addr)).collect();

    app.sigterm();
    app.wait_draining();
    // Readiness is false at once: a new connection is refused, or answered 503 if it raced
    // the listener's close.
    match http::get(app.addr, "/health/ready") {
        Ok(r) => assert_eq!(r.status, 503, "readiness after SIGTERM: {r:?}"),
        Err(e) => assert!(
            matches!(
                e.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::ConnectionReset
                    | ErrorKind::BrokenPipe
                    | ErrorKind::UnexpectedEof
            ),
            "{e}"
        ),
    }
    wait_until_refused(app.addr);
    assert!(
        app.is_running(),
        "still draining while requests are in flight"
    );

    for (i, request) in held.into_iter().enumerate() {
        let r = request
            .finish()
            .unwrap_or_else(|e| panic!("in-flight request {i} failed: {e}"));
        assert_eq!(r.status, 200, "request {i}: {r:?}");
        let reply = grpc_web::parse(&r.body);
        assert_eq!(reply.trailer("grpc-status"), Some("0"), "request {i}");
        // Answered after the drain began, so the function reports itself not serving.
        assert_eq!(
            reply.health_status(),
            ServingStatus::NotServing as i32,
            "request {i}"
        );
    }

    let status = app.wait_exit(EXIT_BOUND);
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(log_has(&app, "drained; exiting"), "{:#?}", app.logs());
}

#[test]
fn requests_fully_written_before_sigterm_are_all_answered() {
    let mut app = TestApp::spawn("orchestrate", &[("SHUTDOWN_GRACE_PERIOD", GRACE_ENV)]);
    let mut connections: Vec<_> = (0..20)
        .map(|_| {
            let mut s = http::connect(app.addr).unwrap();
            write!(s, "GET /health/ready HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
            BufReader::new(s)
        })
        .collect();
    app.sigterm();
    let mut failures = Vec::new();
    for (i, reader) in connections.iter_mut().enumerate() {
        match http::read_response(reader) {
            Ok(r) if r.status == 200 || r.status == 503 => {}
            other => failures.push(format!("request {i}: {other:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 20 requests written before SIGTERM got no response:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(app.wait_exit(EXIT_BOUND).code(), Some(0));
}

#[test]
fn sigterm_right_after_the_listening_line_still_drains() {
    for _ in 0..5 {
        let mut app = TestApp::start("orchestrate", &[]);
        app.sigterm();
        let status = app.wait_exit(EXIT_BOUND);
        assert_eq!(
            status.code(),
            Some(0),
            "SIGTERM right after start-up: {status:?}; logs: {:#?}",
            app.logs()
        );
    }
}

#[test]
fn idle_keep_alive_connections_do_not_hold_up_exit() {
    let mut app = TestApp::spawn("orchestrate", &[("SHUTDOWN_GRACE_PERIOD", "30s")]);
    // An idle HTTP/1.1 keep-alive connection...
    let mut idle = http::connect(app.addr).unwrap();
    write!(idle, "GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut reader = BufReader::new(idle.try_clone().unwrap());
    assert_eq!(http::read_response(&mut reader).unwrap().status, 200);
    // ...and an idle h2c connection.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let client = h2c();
    let url = app.url("/health/live");
    let r = runtime.block_on(async { client.get(url).send().await.unwrap().status() });
    assert_eq!(r, 200);

    app.sigterm();
    let status = app.wait_exit(Duration::from_secs(30) + EXIT_SLACK);
    assert_eq!(status.code(), Some(0));
    // Drained, not cut off at the end of the grace period.
    assert!(log_has(&app, "drained; exiting"), "{:#?}", app.logs());
    drop(client);
}

#[test]
fn exit_is_bounded_by_the_grace_period() {
    let mut app = TestApp::spawn("orchestrate", &[("SHUTDOWN_GRACE_PERIOD", "2s")]);
    // A request that never completes: its body is never sent.
    let stuck = InFlight::open(app.addr);
    app.sigterm();
    let status = app.wait_exit(Duration::from_secs(2) + EXIT_SLACK);
    assert_eq!(status.code(), Some(0), "{status:?}");
    let cut = app.wait_for_log(
        "about connections cut at the end of the grace period",
        |v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("grace period over"))
        },
    );
    assert_eq!(cut["severity"], "WARNING", "{cut}");
    assert_eq!(cut["open_connections"], 1, "{cut}");
    drop(stuck);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_watch_reports_not_serving_then_ends_on_sigterm() {
    let mut app = TestApp::spawn("orchestrate", &[("SHUTDOWN_GRACE_PERIOD", GRACE_ENV)]);
    let mut client = HealthClient::new(grpc_channel(app.addr).await);
    let mut watch = client
        .watch(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().expect("first status");
    assert_eq!(first.status, ServingStatus::Serving as i32);

    app.sigterm();
    let next = watch
        .message()
        .await
        .unwrap()
        .expect("status after SIGTERM");
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    assert!(
        watch.message().await.unwrap().is_none(),
        "the watch ends cleanly after NOT_SERVING"
    );

    let status = tokio::task::block_in_place(|| app.wait_exit(EXIT_BOUND));
    assert_eq!(status.code(), Some(0));
    assert!(log_has(&app, "drained; exiting"), "{:#?}", app.logs());
}
