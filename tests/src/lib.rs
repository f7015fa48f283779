//! End-to-end test harness: starts the real function binaries on ephemeral loopback ports and
//! talks to them over real sockets.
//!
//! One helper per concern:
//! - [`TestApp`]: a running function (address, captured log lines, SIGTERM, exit, kill on drop);
//! - [`run`]: a command run to completion (config errors, `health probe`);
//! - [`http`]: raw HTTP/1.1 over `std::net::TcpStream`, for what a client library hides;
//! - [`InFlight`]: a request held open inside the server (for shutdown tests);
//! - [`grpc_web`]: gRPC-Web frames built and parsed by hand;
//! - [`metrics`]: Prometheus text parsed into samples, and `promtool check metrics`;
//! - [`metadata`]: a loopback fake of the GCE metadata server;
//! - [`formats`] and [`seed`]: RFC 3339 timestamps, Go-style durations, the seed's `/health`;
//! - [`clients`]: reqwest (HTTP/1.1, h2c) and tonic clients with generous timeouts.
//!
//! Binaries are taken from `<target>/debug/<name>`, where `cargo test --workspace` builds them
//! (each function package has an integration test, which makes cargo build its binary).

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a function may take to start and become ready on a loaded machine.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// Generous bound for anything else we wait for (a log line, a response).
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(20);
/// The SHUTDOWN_GRACE_PERIOD every [`TestApp`] gets unless a test sets its own (the runtime's
/// default too).
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(8);
/// Slack on "exits within the grace period" for a loaded machine.
pub const EXIT_SLACK: Duration = Duration::from_secs(5);
/// Interval between polls.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The path of a workspace binary built by cargo (`orchestrate`, `mcp-tool`, `health`).
///
/// The test executable is `<target>/debug/deps/e2e-HASH` (or `<name>-HASH`); binaries sit two
/// levels up, in `<target>/debug/`.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable lives in <target>/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "binary {} not found: run `cargo test --workspace` at the repo root \
         (or `cargo build --workspace --bins` first)",
        path.display()
    );
    path
}

/// A fresh, empty directory removed on drop: the working directory of every process we start,
/// so that no `.env` file is ever picked up.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `$TMPDIR/e2e-<pid>-<n>-<nanos>`.
    pub fn new() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "e2e-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A command for `name` with an empty environment but for `envs`, run in `dir`.
fn command(name: &str, args: &[&str], envs: &[(&str, &str)], dir: &Path) -> Command {
    let mut cmd = Command::new(binary(name));
    cmd.args(args)
        .env_clear()
        .envs(envs.iter().copied())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `name args` to completion with exactly `envs` as its environment, in a fresh directory;
/// panics if it hasn't exited after `timeout`.
pub fn run(name: &str, args: &[&str], envs: &[(&str, &str)], timeout: Duration) -> Output {
    let dir = TempDir::new();
    let mut child = command(name, args, envs, dir.path())
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let status = match poll_exit(&mut child, timeout) {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} {args:?} did not exit within {timeout:?}");
        }
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

fn poll_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Lines read from a process's stdout, shared with the reader thread.
#[derive(Default)]
struct LogBuffer {
    state: Mutex<LogState>,
    changed: Condvar,
}

#[derive(Default)]
struct LogState {
    lines: Vec<String>,
    closed: bool,
}

impl LogBuffer {
    fn push(&self, line: String) {
        self.state.lock().unwrap().lines.push(line);
        self.changed.notify_all();
    }

    fn close(&self) {
        self.state.lock().unwrap().closed = true;
        self.changed.notify_all();
    }

    /// Waits until `found` returns `Some` for the lines so far, or stdout closes, or `timeout`.
    fn wait_for<T>(
        &self,
        timeout: Duration,
        mut found: impl FnMut(&[String]) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock().unwrap();
        loop {
            if let Some(v) = found(&state.lines) {
                return Some(v);
            }
            let now = Instant::now();
            if state.closed || now >= deadline {
                return None;
            }
            state = self.changed.wait_timeout(state, deadline - now).unwrap().0;
        }
    }
}

/// Defaults every [`TestApp`] starts with; the caller's pairs override them (an empty value
/// counts as unset for the runtime).
const APP_DEFAULTS: &[(&str, &str)] = &[
    ("PORT", "0"),
    ("HOST", "127.0.0.1"),
    ("LOG_FORMAT", "json"),
    ("LOG_LEVEL", "debug"),
    ("SHUTDOWN_GRACE_PERIOD", "8s"), // DEFAULT_GRACE_PERIOD
];

/// A function binary serving on an ephemeral loopback port. Killed on drop.
pub struct TestApp {
    name: String,
    child: Child,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// `http://ADDR`.
    pub base: String,
    logs: Arc<LogBuffer>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    exit: Option<ExitStatus>,
    _dir: TempDir,
}

impl TestApp {
    /// Starts `name` (serve mode) with PORT=0, HOST=127.0.0.1, JSON logs at debug level and an
    /// 8s grace period (each overridable through `envs`; an empty value means unset), learns its
    /// address from the "listening on" log line and waits until `GET /health/ready` answers 200.
    pub fn spawn(name: &str, envs: &[(&str, &str)]) -> Self {
        let app = Self::start(name, envs);
        app.wait_ready();
        app
    }

    /// Like [`Self::spawn`] but returns as soon as the address is known, without waiting for
    /// readiness (for functions that are expected not to become ready).
    pub fn start(name: &str, envs: &[(&str, &str)]) -> Self {
        let dir = TempDir::new();
        let mut all: Vec<(&str, &str)> = APP_DEFAULTS.to_vec();
        all.extend_from_slice(envs);
        let mut child = command(name, &[], &all, dir.path())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let logs = Arc::new(LogBuffer::default());
        let reader = BufReader::new(child.stdout.take().expect("piped stdout"));
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in reader.lines() {
                match line {
                    Ok(line) => sink.push(line),
                    Err(_) => break,
                }
            }
            sink.close();
        });
        let stderr = Some(drain(child.stderr.take().expect("piped stderr")));
        let mut app = Self {
            name: name.to_owned(),
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            base: String::new(),
            logs,
            stderr,
            exit: None,
            _dir: dir,
        };
        let address = app.logs.wait_for(STARTUP_TIMEOUT, |lines| {
            lines.iter().find_map(|l| {
                let v: Value = serde_json::from_str(l).ok()?;
                let msg = v["message"].as_str()?;
                msg.starts_with("listening on")
                    .then(|| v["address"].as_str().map(str::to_owned))
                    .flatten()
            })
        });
        let Some(address) = address else {
            app.fail(&format!(
                "no \"listening on\" log line within {STARTUP_TIMEOUT:?}"
            ));
        };
        app.addr = address
            .parse()
            .unwrap_or_else(|e| panic!("address field {address:?}: {e}"));
        app.base = format!("http://{}", app.addr);
        app
    }

    /// Polls `GET /health/ready` (a new connection each time) until it answers 200.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(r) = http::get(self.addr, "/health/ready")
                && r.status == 200
            {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} not ready within {STARTUP_TIMEOUT:?}; logs:\n{}",
                    self.name,
                    self.logs().join("\n")
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every stdout line so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.state.lock().unwrap().lines.clone()
    }

    /// Every stdout line so far that parses as JSON.
    pub fn log_json(&self) -> Vec<Value> {
        self.logs()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits for a JSON log line satisfying `pred` and returns it; panics (with the logs) if
    /// none arrives within [`WAIT_TIMEOUT`].
    pub fn wait_for_log(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let found = self.logs.wait_for(WAIT_TIMEOUT, |lines| {
            lines
                .iter()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| pred(v))
        });
        found.unwrap_or_else(|| {
            panic!(
                "{}: no log line {what} within {WAIT_TIMEOUT:?}; logs:\n{}",
                self.name,
                self.logs().join("\n")
            )
        })
    }

    /// Waits for the line the runtime logs when SIGTERM starts the drain.
    pub fn wait_draining(&self) -> Value {
        self.wait_for_log("announcing the drain", |v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("draining"))
        })
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        if self.exit.is_some() {
            return false;
        }
        match self.child.try_wait().expect("try_wait") {
            Some(status) => {
                self.exit = Some(status);
                false
            }
            None => true,
        }
    }

    /// Waits for the process to exit (panicking after `timeout`), then for the rest of its
    /// stdout to be read, and returns its exit status.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(status) = self.exit {
            return status;
        }
        let Some(status) = poll_exit(&mut self.child, timeout) else {
            self.fail(&format!("still running {timeout:?} later"));
        };
        self.exit = Some(status);
        // stdout closes when the process is gone; the reader thread then marks the end.
        self.logs.wait_for(WAIT_TIMEOUT, |_| None::<()>);
        status
    }

    /// What the process wrote to stderr (waits for it to exit first).
    pub fn stderr(&mut self, timeout: Duration) -> String {
        self.wait_exit(timeout);
        self.stderr
            .take()
            .map(|h| String::from_utf8_lossy(&h.join().unwrap_or_default()).into_owned())
            .unwrap_or_default()
    }

    fn fail(&mut self, problem: &str) -> ! {
        let _ = self.child.kill();
        let status = self.child.wait().ok();
        let stderr = self
            .stderr
            .take()
            .map(|h| String::from_utf8_lossy(&h.join().unwrap_or_default()).into_owned())
            .unwrap_or_default();
        panic!(
            "{}: {problem} (exit {status:?})\nstderr:\n{stderr}\nstdout:\n{}",
            self.name,
            self.logs().join("\n")
        );
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A loopback port with nothing listening on it (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local addr").port()
}

/// Raw HTTP/1.1 over `std::net::TcpStream`: for the cases a client library would hide
/// (interim responses, upgrades, oversized heads, connection limits, half-sent bodies).
pub mod http {
    use super::*;
    use std::io::Write;

    /// A parsed HTTP/1.x response.
    #[derive(Debug, Clone)]
    pub struct RawResponse {
        /// `HTTP/1.1`.
        pub version: String,
        /// Status code.
        pub status: u16,
        /// Headers, names lowercased, in order.
        pub headers: Vec<(String, String)>,
        /// The body (de-chunked).
        pub body: Vec<u8>,
    }

    impl RawResponse {
        /// The first value of header `name` (case-insensitive).
        pub fn header(&self, name: &str) -> Option<&str> {
            let name = name.to_ascii_lowercase();
            self.headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        }

        /// The body as UTF-8 text.
        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }

        /// The body as JSON (panics if it isn't).
        pub fn json(&self) -> Value {
            serde_json::from_slice(&self.body)
                .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
        }
    }

    /// Connects with read and write timeouts of [`WAIT_TIMEOUT`].
    pub fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
        let stream = TcpStream::connect_timeout(&addr, WAIT_TIMEOUT)?;
        stream.set_read_timeout(Some(WAIT_TIMEOUT))?;
        stream.set_write_timeout(Some(WAIT_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// `GET path` on a new connection (`Connection: close`).
    pub fn get(addr: SocketAddr, path: &str) -> std::io::Result<RawResponse> {
        let mut stream = connect(addr)?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        read_response(&mut BufReader::new(stream))
    }

    /// Reads one response (an interim 1xx response too, with an empty body). The body is
    /// delimited by `Content-Length`, chunked encoding, or the end of the stream.
    pub fn read_response(reader: &mut impl BufRead) -> std::io::Result<RawResponse> {
        let mut status_line = String::new();
        if reader.read_line(&mut status_line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed before a response",
            ));
        }
        let mut parts = status_line.trim_end().splitn(3, ' ');
        let version = parts.next().unwrap_or_default().to_owned();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
        if !version.starts_with("HTTP/1.") {
            return Err(invalid(format!("bad status line {status_line:?}")));
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Err(invalid("connection closed inside the response head".into()));
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        let mut response = RawResponse {
            version,
            status,
            headers,
            body: Vec::new(),
        };
        if (100..200).contains(&status) || status == 204 || status == 304 {
            return Ok(response);
        }
        if response
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            response.body = read_chunked(reader)?;
        } else if let Some(len) = response.header("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| invalid(format!("bad content-length {len:?}")))?;
            let mut body = vec![0; len];
            reader.read_exact(&mut body)?;
            response.body = body;
        } else {
            reader.read_to_end(&mut response.body)?;
        }
        Ok(response)
    }

    /// Reads responses until a final (non-1xx) one, returning the interim ones too.
    pub fn read_final_response(
        reader: &mut impl BufRead,
    ) -> std::io::Result<(Vec<RawResponse>, RawResponse)> {
        let mut interim = Vec::new();
        loop {
            let r = read_response(reader)?;
            if (100..200).contains(&r.status) && r.status != 101 {
                interim.push(r);
            } else {
                return Ok((interim, r));
            }
        }
    }

    fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            let size_hex = size_line.trim_end().split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(size_hex.trim(), 16)
                .map_err(|_| invalid(format!("bad chunk size {size_line:?}")))?;
            if size == 0 {
                // Trailer section, ending with an empty line.
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                        return Ok(body);
                    }
                }
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf)?;
        }
    }

    fn invalid(msg: String) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
    }
}

/// A request the server has accepted and is still working on: a gRPC-Web
/// `grpc.health.v1.Health/Check` sent over HTTP/1.1 with `Expect: 100-continue`, whose body is
/// held back. The server's `100 Continue` proves it parsed the head and its handler is reading
/// the body; the request stays in flight until [`InFlight::finish`] sends the body.
///
/// There is no slow route in the functions, so this is how the tests hold a request open across
/// SIGTERM deterministically, without sleeps.
pub struct InFlight {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    body: Vec<u8>,
}

impl InFlight {
    /// Opens a connection, sends the head and waits for `100 Continue`.
    pub fn open(addr: SocketAddr) -> Self {
        use std::io::Write as _;
        let body = grpc_web::health_check_body("");
        let mut stream = http::connect(addr).expect("connect");
        write!(
            stream,
            "POST /grpc.health.v1.Health/Check HTTP/1.1\r\nHost: {addr}\r\n\
             Content-Type: application/grpc-web+proto\r\nX-Grpc-Web: 1\r\n\
             Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            body.len()
        )
        .expect("write request head");
        let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
        let interim = http::read_response(&mut reader).expect("read 100 Continue");
        assert_eq!(
            interim.status, 100,
            "expected 100 Continue, got {interim:?}"
        );
        Self {
            stream,
            reader,
            body,
        }
    }

    /// Sends the body and reads the final response.
    pub fn finish(mut self) -> std::io::Result<http::RawResponse> {
        use std::io::Write as _;
        self.stream.write_all(&self.body)?;
        Ok(http::read_final_response(&mut self.reader)?.1)
    }
}

/// gRPC-Web (`application/grpc-web+proto` and `application/grpc-web-text`) built and parsed by
/// hand, as a browser client library would put it on the wire.
pub mod grpc_web {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use prost::Message as _;
    use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

    /// Flag of a data frame.
    pub const DATA: u8 = 0x00;
    /// Flag of the trailer frame.
    pub const TRAILERS: u8 = 0x80;

    /// One length-prefixed frame: flag, 4-byte big-endian length, payload.
    pub fn frame(flag: u8, payload: &[u8]) -> Vec<u8> {
        let len = u32::try_from(payload.len()).expect("frame fits in u32");
        let mut out = Vec::with_capacity(5 + payload.len());
        out.push(flag);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// The body of a unary `grpc.health.v1.Health/Check` call for `service`.
    pub fn health_check_body(service: &str) -> Vec<u8> {
        let request = HealthCheckRequest {
            service: service.to_owned(),
        };
        frame(DATA, &request.encode_to_vec())
    }

    /// Base64 for `application/grpc-web-text` request bodies.
    pub fn to_text(body: &[u8]) -> Vec<u8> {
        STANDARD.encode(body).into_bytes()
    }

    /// Decodes an `application/grpc-web-text` response body. A server may encode each frame
    /// separately (so padding can appear mid-body); every chunk is a whole number of 4-char
    /// quanta, so decoding quantum by quantum handles both forms.
    pub fn from_text(body: &[u8]) -> Vec<u8> {
        let clean: Vec<u8> = body
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        assert!(
            clean.len().is_multiple_of(4),
            "grpc-web-text body is not whole base64 quanta: {:?}",
            String::from_utf8_lossy(body)
        );
        clean
            .chunks(4)
            .flat_map(|q| {
                STANDARD
                    .decode(q)
                    .unwrap_or_else(|e| panic!("bad base64 quantum {q:?}: {e}"))
            })
            .collect()
    }

    /// A parsed gRPC-Web response body.
    #[derive(Debug, Default)]
    pub struct Reply {
        /// Payloads of the data frames.
        pub messages: Vec<Vec<u8>>,
        /// Trailers from the trailer frame, names lowercased.
        pub trailers: Vec<(String, String)>,
        /// Whether a trailer frame was present.
        pub has_trailer_frame: bool,
    }

    impl Reply {
        /// A trailer's value.
        pub fn trailer(&self, name: &str) -> Option<&str> {
            self.trailers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }

        /// The single message decoded as a `HealthCheckResponse`.
        pub fn health_status(&self) -> i32 {
            assert_eq!(self.messages.len(), 1, "one response message: {self:?}");
            HealthCheckResponse::decode(self.messages[0].as_slice())
                .expect("HealthCheckResponse")
                .status
        }
    }

    /// Splits a binary gRPC-Web body into frames; panics on a truncated frame or anything
    /// after the trailer frame.
    pub fn parse(body: &[u8]) -> Reply {
        let mut reply = Reply::default();
        let mut rest = body;
        while !rest.is_empty() {
            assert!(!reply.has_trailer_frame, "data after the trailer frame");
            assert!(rest.len() >= 5, "truncated frame header: {rest:?}");
            let flag = rest[0];
            let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
            assert!(rest.len() >= 5 + len, "truncated frame: {rest:?}");
            let payload = &rest[5..5 + len];
            if flag & TRAILERS != 0 {
                reply.has_trailer_frame = true;
                let text = std::str::from_utf8(payload).expect("trailers are text");
                for line in text.split("\r\n").filter(|l| !l.is_empty()) {
                    let (name, value) = line
                        .split_once(':')
                        .unwrap_or_else(|| panic!("bad trailer line {line:?}"));
                    reply
                        .trailers
                        .push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
                }
            } else {
                assert_eq!(flag, DATA, "uncompressed data frame");
                reply.messages.push(payload.to_vec());
            }
            rest = &rest[5 + len..];
        }
        reply
    }
}

/// Prometheus text exposition parsed into samples, and `promtool check metrics`.
pub mod metrics {
    use std::collections::BTreeMap;
    use std::io::Write as _;

    /// One sample line.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Sample {
        /// Metric name (with any `_total`, `_bucket`... suffix).
        pub name: String,
        /// Labels.
        pub labels: BTreeMap<String, String>,
        /// Value.
        pub value: f64,
    }

    /// Parses every sample line (comments skipped); panics on a line it can't read.
    pub fn parse(text: &str) -> Vec<Sample> {
        text.lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|line| parse_line(line).unwrap_or_else(|| panic!("bad sample line {line:?}")))
            .collect()
    }

    fn parse_line(line: &str) -> Option<Sample> {
        let (name, labels, rest) = match line.find('{') {
            Some(open) => {
                let close = line.rfind('}')?;
                (
                    &line[..open],
                    parse_labels(&line[open + 1..close])?,
                    &line[close + 1..],
                )
            }
            None => {
                let (name, rest) = line.split_once(' ')?;
                (name, BTreeMap::new(), rest)
            }
        };
        let value = rest.split_whitespace().next()?;
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().ok()?,
        };
        Some(Sample {
            name: name.to_owned(),
            labels,
            value,
        })
    }

    fn parse_labels(s: &str) -> Option<BTreeMap<String, String>> {
        let mut labels = BTreeMap::new();
        let mut chars = s.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
                chars.next();
            }
            if chars.peek().is_none() {
                return Some(labels);
            }
            let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
            if chars.next()? != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()? {
                    '\\' => match chars.next()? {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    '"' => break,
                    c => value.push(c),
                }
            }
            labels.insert(name.trim().to_owned(), value);
        }
    }

    /// The value of the sample named `name` whose labels are exactly `labels`.
    pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        samples
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value)
    }

    /// Pipes `text` through `promtool check metrics` when promtool is on PATH (CI installs it)
    /// and asserts it passes; otherwise says it skipped.
    pub fn promtool_check(text: &str) {
        let child = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("promtool not on PATH: skipping `promtool check metrics`");
                return;
            }
            Err(e) => panic!("start promtool: {e}"),
        };
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(text.as_bytes())
            .expect("write to promtool");
        let out = child.wait_with_output().expect("promtool");
        assert!(
            out.status.success(),
            "promtool check metrics failed ({}):\n{}{}\n--- input ---\n{text}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A loopback stand-in for the GCE metadata server.
pub mod metadata {
    use super::*;
    use std::io::Write as _;
    use std::net::TcpListener;
    use std::sync::atomic::AtomicBool;

    /// Serves `GET /computeMetadata/v1/project/project-id` the way the real metadata server
    /// does on the wire: the request must carry `Metadata-Flavor: Google` (else 403), and the
    /// answer is the bare id as `application/text` with `Metadata-Flavor: Google`. Other paths
    /// get 404. Records each request head it saw.
    pub struct FakeMetadataServer {
        /// Where it listens (the value for `GCE_METADATA_HOST`).
        pub addr: SocketAddr,
        requests: Arc<Mutex<Vec<String>>>,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl FakeMetadataServer {
        /// Starts answering with `project_id`.
        pub fn start(project_id: &str) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake metadata server");
            let addr = listener.local_addr().expect("local addr");
            let requests = Arc::new(Mutex::new(Vec::new()));
            let stop = Arc::new(AtomicBool::new(false));
            let (seen, stopped, project) = (requests.clone(), stop.clone(), project_id.to_owned());
            let thread = std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopped.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        let _ = answer(stream, &project, &seen);
                    }
                }
            });
            Self {
                addr,
                requests,
                stop,
                thread: Some(thread),
            }
        }

        /// The request heads received so far.
        pub fn requests(&self) -> Vec<String> {
            self.requests.lock().unwrap().clone()
        }
    }

    fn answer(stream: TcpStream, project: &str, seen: &Mutex<Vec<String>>) -> std::io::Result<()> {
        stream.set_read_timeout(Some(WAIT_TIMEOUT))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 || line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        seen.lock().unwrap().push(head.clone());
        let path = head.split_whitespace().nth(1).unwrap_or_default();
        let flavored = head.lines().skip(1).any(|l| {
            l.split_once(':').is_some_and(|(n, v)| {
                n.trim().eq_ignore_ascii_case("metadata-flavor") && v.trim() == "Google"
            })
        });
        let (status, body) = if !flavored {
            (
                "403 Forbidden",
                "Missing required header \"Metadata-Flavor\": \"Google\"\n",
            )
        } else if path == "/computeMetadata/v1/project/project-id" {
            ("200 OK", project)
        } else {
            ("404 Not Found", "Not Found\n")
        };
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 {status}\r\nMetadata-Flavor: Google\r\nContent-Type: application/text\r\n\
             Server: Metadata Server for VM\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        stream.flush()
    }

    impl Drop for FakeMetadataServer {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            // Wake the accept loop so that it sees the flag.
            let _ = TcpStream::connect(self.addr);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// Checks of the text formats the seed's JSON uses.
pub mod formats {
    /// An RFC 3339 date-time: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, with fields in range.
    pub fn is_rfc3339(s: &str) -> bool {
        let b = s.as_bytes();
        let digits = |r: std::ops::Range<usize>| -> Option<u32> {
            let part = s.get(r)?;
            (part.bytes().all(|c| c.is_ascii_digit())).then(|| part.parse().ok())?
        };
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
            return false;
        }
        if b[13] != b':' || b[16] != b':' {
            return false;
        }
        let (Some(_year), Some(month), Some(day), Some(hour), Some(min), Some(sec)) = (
            digits(0..4),
            digits(5..7),
            digits(8..10),
            digits(11..13),
            digits(14..16),
            digits(17..19),
        ) else {
            return false;
        };
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 {
            return false;
        }
        if sec > 60 {
            return false;
        }
        let mut i = 19;
        if b[i] == b'.' {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == start {
                return false;
            }
        }
        match &s[i..] {
            "Z" | "z" => true,
            offset => {
                let ob = offset.as_bytes();
                ob.len() == 6
                    && matches!(ob[0], b'+' | b'-')
                    && ob[3] == b':'
                    && offset[1..3].parse::<u32>().is_ok_and(|h| h <= 23)
                    && offset[4..6].parse::<u32>().is_ok_and(|m| m <= 59)
                    && offset[1..3]
                        .bytes()
                        .chain(offset[4..6].bytes())
                        .all(|c| c.is_ascii_digit())
            }
        }
    }

    /// Matches `^(\d+h)?(\d+m)?\d+s$`: Go's `time.Duration` string rounded to seconds.
    pub fn is_go_seconds_duration(s: &str) -> bool {
        let mut rest = s;
        for unit in ['h', 'm'] {
            if let Some(i) = rest.find(unit) {
                let (n, tail) = rest.split_at(i);
                if n.is_empty() || !n.bytes().all(|c| c.is_ascii_digit()) {
                    return false;
                }
                rest = &tail[1..];
            }
        }
        let Some(n) = rest.strip_suffix('s') else {
            return false;
        };
        !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn rfc3339() {
            assert!(is_rfc3339("2026-11-26T23:35:55.796248784Z"));
            assert!(is_rfc3339("2026-11-26T23:35:55+01:00"));
            assert!(!is_rfc3339("2026-11-26 23:35:55Z"));
            assert!(!is_rfc3339("2026-13-26T23:35:55Z"));
            assert!(!is_rfc3339("2026-11-26T23:35:55"));
            assert!(!is_rfc3339("2026-11-26T23:35:55.Z"));
        }

        #[test]
        fn go_durations() {
            for ok in ["0s", "7s", "2m5s", "1h30m0s", "1h0s"] {
                assert!(is_go_seconds_duration(ok), "{ok}");
            }
            for bad in ["", "s", "1m", "1.5s", "h1s", "1m1h1s", "5ms"] {
                assert!(!is_go_seconds_duration(bad), "{bad}");
            }
        }
    }
}

/// Async clients for the tests.
pub mod clients {
    use std::time::Duration;

    /// A reqwest client speaking HTTP/1.1 only.
    pub fn http1() -> reqwest::Client {
        reqwest::Client::builder()
            .http1_only()
            .no_proxy()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("reqwest client")
    }

    /// A reqwest client speaking h2c with prior knowledge.
    pub fn h2c() -> reqwest::Client {
        reqwest::Client::builder()
            .http2_prior_knowledge()
            .no_proxy()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("reqwest client")
    }

    /// A tonic channel (h2c) to `addr`.
    pub async fn grpc_channel(addr: std::net::SocketAddr) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(20))
            .timeout(Duration::from_secs(20))
            .connect()
            .await
            .expect("gRPC connect")
    }
}

/// The seed's `GET /health` format, field for field.
pub mod seed {
    use serde_json::Value;

    use super::formats::{is_go_seconds_duration, is_rfc3339};

    /// Asserts `body` has the seed's fields with the seed's types: `status` (healthy, degraded
    /// or unhealthy), `timestamp` (RFC 3339), `version`, `uptime` (`1h30m0s` style), `checks`
    /// (each with `status`, `message`, `last_checked`) and `system` (whole numbers, at least
    /// one CPU). Extra fields are allowed.
    pub fn assert_health_format(body: &Value) {
        let status = body["status"]
            .as_str()
            .unwrap_or_else(|| panic!("status: {body}"));
        assert!(
            ["healthy", "degraded", "unhealthy"].contains(&status),
            "status {status:?}"
        );
        let timestamp = body["timestamp"]
            .as_str()
            .unwrap_or_else(|| panic!("timestamp: {body}"));
        assert!(
            is_rfc3339(timestamp),
            "timestamp {timestamp:?} is not RFC 3339"
        );
        let version = body["version"]
            .as_str()
            .unwrap_or_else(|| panic!("version: {body}"));
        assert!(!version.is_empty(), "empty version");
        let uptime = body["uptime"]
            .as_str()
            .unwrap_or_else(|| panic!("uptime: {body}"));
        assert!(
            is_go_seconds_duration(uptime),
            "uptime {uptime:?} does not match ^(\\d+h)?(\\d+m)?\\d+s$"
        );
        let checks = body["checks"]
            .as_object()
            .unwrap_or_else(|| panic!("checks is not an object: {body}"));
        for (name, check) in checks {
            let s = check["status"].as_str().unwrap_or_default();
            assert!(
                ["healthy", "unhealthy"].contains(&s),
                "check {name}: status {s:?}"
            );
            assert!(
                check["message"].is_string(),
                "check {name}: message {check}"
            );
            let last = check["last_checked"].as_str().unwrap_or_default();
            assert!(is_rfc3339(last), "check {name}: last_checked {last:?}");
        }
        let system = &body["system"];
        for field in ["num_goroutines", "num_cpu", "mem_alloc_mb", "mem_sys_mb"] {
            assert!(
                system[field].is_u64(),
                "system.{field} is not a whole number >= 0: {system}"
            );
        }
        assert!(system["num_cpu"].as_u64() >= Some(1), "num_cpu: {system}");
    }
}

/// MCP clients (the official SDK in both protocol eras), raw JSON-RPC and SSE, gRPC-Web bodies
/// for `mcp.MCPService`.
pub mod mcp;
