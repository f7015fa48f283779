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
//! - [`jwks`]: a loopback key-set endpoint and test-signed tokens (Google ID tokens, IAP);
//! - [`upstream`]: loopback upstreams for outbound calls (fixed answer, hang, huge body);
//! - [`formats`] and [`seed`]: RFC 3339 timestamps, Go-style durations, the seed's `/health`;
//! - [`model`] and [`orchestrate`]: loopback model servers (OpenAI, Ollama) and orchestrate runs;
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
    refuse_stale(name, &path);
    path
}

/// Panics when a source of `name` (its function crate's `src/`, build script and manifest, the
/// runtime's, and the protos' crate when the function depends on it) changed after the binary
/// was built: `cargo test -p e2e` alone does not
/// rebuild the function binaries, and testing an old one proves nothing. Test files are not
/// sources: changing them does not relink the binary.
fn refuse_stale(name: &str, binary: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace root");
    let built = std::fs::metadata(binary)
        .and_then(|m| m.modified())
        .expect("binary mtime");
    let function = root.join("functions").join(name);
    let mut sources = vec![
        function.join("src"),
        function.join("build.rs"),
        function.join("Cargo.toml"),
        root.join("shared").join("src"),
        root.join("shared").join("Cargo.toml"),
    ];
    // Not every function is built on the protos (health is not): a change there does not
    // relink it, and must not be taken for a stale binary.
    let manifest = std::fs::read_to_string(function.join("Cargo.toml")).unwrap_or_default();
    if manifest.contains("aixrun-proto") {
        sources.push(root.join("proto"));
    }
    if let Some(newer) = sources.iter().find_map(|p| newer_than(p, built)) {
        panic!(
            "{} is older than its source {}: run `cargo test --workspace` (or `cargo build \
             --workspace --bins`) so the end-to-end tests run the current code",
            binary.display(),
            newer.display()
        );
    }
}

/// The first file under `path` (or `path` itself) modified after `time`.
fn newer_than(path: &Path, time: std::time::SystemTime) -> Option<PathBuf> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return meta
            .modified()
            .is_ok_and(|m| m > time)
            .then(|| path.to_owned());
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .find_map(|e| newer_than(&e.path(), time))
}

/// What a check does when the external tool it needs (`promtool`) is not on PATH:
/// under CI (`CI` set) it fails, since `.ci/run` installs the tool and a silent pass would hide
/// a broken install; locally it says it skipped.
pub fn tool_missing(tool: &str) {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{tool} is not on PATH and CI is set: .ci/run must install it");
    }
    eprintln!("{tool} not on PATH: skipping the checks that need it");
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
        self.wait_for_logs(what, 1, pred).remove(0)
    }

    /// Waits until `count` JSON log lines satisfy `pred` and returns them all; panics (with the
    /// logs) if fewer arrive within [`WAIT_TIMEOUT`]. For lines written after the state a test
    /// waited for (a delivery's "done" line comes after the run it finished is stored).
    pub fn wait_for_logs(
        &self,
        what: &str,
        count: usize,
        pred: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let found = self.logs.wait_for(WAIT_TIMEOUT, |lines| {
            let matching: Vec<Value> = lines
                .iter()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|v| pred(v))
                .collect();
            (matching.len() >= count).then_some(matching)
        });
        found.unwrap_or_else(|| {
            panic!(
                "{}: fewer than {count} log lines {what} within {WAIT_TIMEOUT:?}; logs:\n{}",
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

pub mod http;

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

pub mod grpc_web;

pub mod metrics;

pub mod metadata;

/// Loopback fakes of the metadata server and Secret Manager.
pub mod google;

/// A loopback JWKS endpoint (Google's and IAP's format) with keys generated in the test, and
/// tokens signed with them.
pub mod jwks;

pub mod upstream;

pub mod formats;

pub mod clients;

pub mod seed;

/// MCP clients (the official SDK in both protocol eras), raw JSON-RPC and SSE, gRPC-Web bodies
/// for `mcp.MCPService`.
pub mod mcp;

/// A scripted loopback model server (OpenAI chat completions and Ollama streaming).
pub mod model;

/// Driving orchestrate: config files, JSON and streamed runs.
pub mod orchestrate;

/// Python peers (the MCP Python SDK's server, llama.cpp's) from the test virtualenv.
pub mod python;

/// A loopback MCP server (Streamable HTTP) counting tool calls by idempotency key.
pub mod fake_mcp;
/// A loopback OTLP/HTTP trace receiver: what the functions export, decoded.
pub mod otlp;
/// Server-sent events read off a live response.
pub mod sse;
