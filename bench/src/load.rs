//! The load generator of the orchestrator benchmark (`bench/orchestrate/run.sh`).
//!
//! - `run`: `POST /v1/run {"input":"say hi"}` on orchestrate; a run counts when it completed
//!   with one successful tool call and the answer `done`. With `--workflow router|parallel`,
//!   the workflows of `bench/orchestrate/workflows.sh` instead (see `workflow.rs`).
//! - `direct`: what such a run does, made by this process itself: model call 1 (streamed, it
//!   asks for the tool), the tool call on mcp-tool (gRPC `CallTool`, or one MCP 2026-07-28
//!   `tools/call` POST), model call 2 (streamed, with the tool result; it answers `done`).
//! - `adk`: ADK's api_server: a session is created (not timed), then `POST /run` is timed; a run
//!   counts when its events hold the echo call, its response and the answer `done` (or, with
//!   `--workflow`, that workflow's agents and answer).
//! - `direct-workflow --workflow router|parallel`: the model calls of such a workflow, made by
//!   this process itself.
//! - `coldstart`: spawns a server again and again and times exec -> first 200 from a ready
//!   route, and exec -> first run completed.
//!
//! The load modes run `--warmup` runs, then `--runs` measured ones, with `--concurrency` runs in
//! flight, on one thread; they print `runs/s<TAB>p50 ms<TAB>p99 ms<TAB>errors<TAB>peak RSS
//! KiB<TAB>own CPU µs per run` (the peak VmRSS of `--watch-pid` while the measured runs were in
//! flight, 0 without it; this process's CPU time over the measured runs, divided by their number).
//! `--latencies FILE` appends each measured run's latency (ms) to FILE, one a line.
//! `coldstart` prints `ready median ms<TAB>ready p90 ms<TAB>first run median ms<TAB>errors`.
//! Progress and error samples go to stderr.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Command, ExitCode, Stdio};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod workflow;

use aixrun_proto::mcp as pb;
use aixrun_proto::mcp::mcp_service_client::McpServiceClient;
use serde_json::{Value, json};
use tonic::transport::{Channel, Endpoint};

use workflow::Workflow;

const USAGE: &str = "usage:
  orchestrate-load run --url URL [LOAD]
  orchestrate-load direct --model BASE --mcp BASE --transport grpc|http [LOAD]
  orchestrate-load adk --url BASE --app APP [LOAD]
  orchestrate-load direct-workflow --model BASE --workflow router|parallel [LOAD]
  orchestrate-load coldstart --ready PATH --first orchestrate|adk:APP [--runs N] [--log FILE] -- CMD [ARG...]
LOAD: [--concurrency C] [--runs N] [--warmup W] [--watch-pid PID] [--latencies FILE]
--workflow react|router|parallel (run, adk, coldstart; default react): what a run is and how it is checked.
coldstart sets PORT and replaces {port} in the arguments.";
const INPUT: &str = "say hi";
/// The agent's prompt, the same in orchestrate's configuration and ADK's agent.
const PROMPT: &str = "Use the echo tool when asked to say something. Answer briefly.";
const MODEL: &str = "bench";
/// The most error messages printed per measurement.
const ERROR_SAMPLES: u32 = 3;
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
const READY_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Default)]
struct Args {
    mode: String,
    url: String,
    model: String,
    mcp: String,
    transport: String,
    app: String,
    ready: String,
    first: String,
    log: Option<String>,
    latencies: Option<String>,
    concurrency: usize,
    runs: usize,
    warmup: usize,
    watch_pid: Option<u32>,
    workflow: Workflow,
    command: Vec<String>,
}

fn parse() -> Result<Args, String> {
    let mut raw = std::env::args().skip(1);
    let mut args = Args {
        mode: raw.next().ok_or("no mode")?,
        concurrency: 1,
        runs: 100,
        warmup: 0,
        ..Args::default()
    };
    while let Some(flag) = raw.next() {
        if flag == "--" {
            args.command = raw.by_ref().collect();
            break;
        }
        let value = raw.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--url" => args.url = value.trim_end_matches('/').to_owned(),
            "--model" => args.model = value.trim_end_matches('/').to_owned(),
            "--mcp" => args.mcp = value.trim_end_matches('/').to_owned(),
            "--transport" => args.transport = value,
            "--app" => args.app = value,
            "--ready" => args.ready = value,
            "--first" => args.first = value,
            "--log" => args.log = Some(value),
            "--latencies" => args.latencies = Some(value),
            "--concurrency" => args.concurrency = number()?.max(1),
            "--runs" => args.runs = number()?.max(1),
            "--warmup" => args.warmup = number()?,
            "--workflow" => args.workflow = Workflow::parse(&value)?,
            "--watch-pid" => {
                args.watch_pid = Some(value.parse().map_err(|e| format!("{flag}: {e}"))?);
            }
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    // reqwest is built without a crypto provider of its own (the workspace's TLS is rustls on
    // ring, installed by aixrun): without this, building a client panics.
    aixrun::crypto::install_provider();
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("orchestrate-load: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let result = match args.mode.as_str() {
        "coldstart" => coldstart(&args, &runtime),
        mode @ ("run" | "direct" | "adk" | "direct-workflow") => {
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, load(mode, &args))
        }
        other => Err(format!("unknown mode {other}")),
    };
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("orchestrate-load: {e}");
            ExitCode::FAILURE
        }
    }
}

// --- The load modes. ---------------------------------------------------------------------------

/// One kind of run, made again and again: `once(n)` makes run number `n` and answers how long
/// its timed part took.
trait Runner {
    fn once(&self, n: u64) -> impl Future<Output = Result<Duration, String>>;
}

async fn load(mode: &str, args: &Args) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .timeout(CALL_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    match mode {
        "run" => {
            need(&args.url, "--url")?;
            let runner = Orchestrate::new(client, &args.url, args.workflow);
            measure(args, Rc::new(runner)).await
        }
        "adk" => {
            need(&args.url, "--url")?;
            need(&args.app, "--app")?;
            let runner = Adk::new(client, &args.url, &args.app, args.workflow);
            measure(args, Rc::new(runner)).await
        }
        "direct-workflow" => {
            need(&args.model, "--model")?;
            let runner = workflow::Direct::new(client, &args.model, args.workflow)?;
            measure(args, Rc::new(runner)).await
        }
        _ => {
            need(&args.model, "--model")?;
            need(&args.mcp, "--mcp")?;
            let direct = Direct::new(client, &args.model, &args.mcp, &args.transport).await?;
            measure(args, Rc::new(direct)).await
        }
    }
}

fn need(value: &str, flag: &str) -> Result<(), String> {
    if value.is_empty() {
        Err(format!("{flag} is required"))
    } else {
        Ok(())
    }
}

/// Warm-up, then the measured runs; the result line.
async fn measure<R: Runner + 'static>(args: &Args, runner: Rc<R>) -> Result<String, String> {
    if args.warmup > 0 {
        let (_, errors, _) = drive(runner.clone(), args.concurrency, args.warmup, 0).await;
        if errors == args.warmup {
            return Err(format!("all {errors} warm-up runs failed"));
        }
    }
    let watcher = args.watch_pid.map(RssWatcher::start);
    let cpu_before = own_cpu();
    let (mut latencies, errors, wall) =
        drive(runner, args.concurrency, args.runs, args.warmup as u64).await;
    let own_cpu_us = own_cpu().saturating_sub(cpu_before).as_micros() / args.runs as u128;
    let peak = watcher.map_or(0, RssWatcher::stop);
    if latencies.is_empty() {
        return Err(format!("all {errors} runs failed"));
    }
    if let Some(path) = &args.latencies {
        append_latencies(path, &latencies)?;
    }
    latencies.sort_unstable();
    let pct = |p: f64| {
        let i = ((p * latencies.len() as f64) as usize).min(latencies.len() - 1);
        latencies[i].as_secs_f64() * 1000.0
    };
    let rate = latencies.len() as f64 / wall.as_secs_f64();
    Ok(format!(
        "{rate:.1}\t{:.3}\t{:.3}\t{errors}\t{peak}\t{own_cpu_us}",
        pct(0.50),
        pct(0.99)
    ))
}

/// Appends each latency, in milliseconds, one a line.
fn append_latencies(path: &str, latencies: &[Duration]) -> Result<(), String> {
    let mut text = String::with_capacity(latencies.len() * 10);
    for l in latencies {
        text.push_str(&format!("{:.3}\n", l.as_secs_f64() * 1000.0));
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("{path}: {e}"))
}

/// Makes `total` runs, `concurrency` at a time, numbered from `first`: the latencies of those
/// that succeeded, the number that failed, and the wall time.
async fn drive<R: Runner + 'static>(
    runner: Rc<R>,
    concurrency: usize,
    total: usize,
    first: u64,
) -> (Vec<Duration>, usize, Duration) {
    let next = Rc::new(Cell::new(0usize));
    let latencies = Rc::new(RefCell::new(Vec::with_capacity(total)));
    let errors = Rc::new(Cell::new(0usize));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.min(total) {
        let (runner, next, latencies, errors) = (
            runner.clone(),
            next.clone(),
            latencies.clone(),
            errors.clone(),
        );
        workers.push(tokio::task::spawn_local(async move {
            loop {
                let n = next.get();
                if n >= total {
                    break;
                }
                next.set(n + 1);
                match runner.once(first + n as u64).await {
                    Ok(latency) => latencies.borrow_mut().push(latency),
                    Err(e) => {
                        let count = errors.get() + 1;
                        errors.set(count);
                        if count <= ERROR_SAMPLES as usize {
                            eprintln!("  run {}: {e}", first + n as u64);
                        }
                    }
                }
            }
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
    let wall = started.elapsed();
    let latencies = latencies.take();
    (latencies, errors.get(), wall)
}

/// Samples a process's VmRSS every 10 ms on its own thread; `stop` answers the peak, in KiB.
struct RssWatcher {
    running: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl RssWatcher {
    fn start(pid: u32) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let flag = running.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while flag.load(Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid).unwrap_or(0));
                std::thread::sleep(Duration::from_millis(10));
            }
            peak.max(rss_kib(pid).unwrap_or(0))
        });
        Self { running, thread }
    }

    fn stop(self) -> u64 {
        self.running.store(false, Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

/// This process's user + system CPU time so far (every thread), from /proc/self/stat, in the
/// kernel's USER_HZ ticks (100 per second).
fn own_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which is in parentheses and may hold spaces): utime and
    // stime are the 14th and 15th fields of the line, the 12th and 13th after the name.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn post_json(client: &reqwest::Client, url: &str, body: &Value) -> Result<Value, String> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "POST {url}: {status}: {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("POST {url}: not JSON: {e}"))
}

/// The start of a JSON value, for error messages.
fn brief(v: &Value) -> String {
    let text = v.to_string();
    text.chars().take(300).collect()
}

// --- orchestrate. ------------------------------------------------------------------------------

struct Orchestrate {
    client: reqwest::Client,
    url: String,
    body: Value,
    workflow: Workflow,
}

impl Orchestrate {
    fn new(client: reqwest::Client, url: &str, workflow: Workflow) -> Self {
        Self {
            client,
            url: url.to_owned(),
            body: json!({"input": workflow.input()}),
            workflow,
        }
    }
}

impl Runner for Orchestrate {
    async fn once(&self, _: u64) -> Result<Duration, String> {
        let started = Instant::now();
        let result = post_json(&self.client, &self.url, &self.body).await?;
        let elapsed = started.elapsed();
        match self.workflow {
            Workflow::React => check_orchestrate(&result)?,
            workflow => workflow.check_orchestrate(&result)?,
        }
        Ok(elapsed)
    }
}

fn check_orchestrate(result: &Value) -> Result<(), String> {
    let calls = result["steps"][0]["tool_calls"].as_array();
    let ok = result["status"] == "completed"
        && result["output"] == "done"
        && calls.is_some_and(|c| {
            c.len() == 1
                && c[0]["error"].is_null()
                && c[0]["result"].as_str().is_some_and(|r| r.contains("hi"))
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "not a completed run with one echo call: {}",
            brief(result)
        ))
    }
}

// --- Direct. -----------------------------------------------------------------------------------

enum ToolPath {
    Grpc(McpServiceClient<Channel>),
    Http(String),
}

struct Direct {
    client: reqwest::Client,
    completions: String,
    tools: Value,
    tool: ToolPath,
}

/// What one streamed model call said.
#[derive(Default)]
struct Answer {
    text: String,
    /// (id, name, arguments) of the first tool call.
    call: Option<(String, String, String)>,
}

impl Direct {
    /// Lists mcp-tool's tools over gRPC (not timed) for the model requests' `tools`.
    async fn new(
        client: reqwest::Client,
        model: &str,
        mcp: &str,
        transport: &str,
    ) -> Result<Self, String> {
        let channel = Endpoint::from_shared(mcp.to_owned())
            .map_err(|e| format!("{mcp}: {e}"))?
            .connect_lazy();
        let mut grpc = McpServiceClient::new(channel);
        let listed = grpc
            .list_tools(pb::ListToolsRequest::default())
            .await
            .map_err(|e| format!("ListTools on {mcp}: {e}"))?
            .into_inner();
        let echo = listed
            .tools
            .iter()
            .find(|t| t.name == "echo")
            .ok_or_else(|| format!("{mcp} has no echo tool"))?;
        let parameters: Value = serde_json::from_str(&echo.input_schema_json)
            .unwrap_or_else(|_| json!({"type": "object"}));
        let tools = json!([{"type": "function", "function": {
            "name": echo.name, "description": echo.description, "parameters": parameters}}]);
        let tool = match transport {
            "grpc" => ToolPath::Grpc(grpc),
            "http" => ToolPath::Http(format!("{mcp}/mcp")),
            other => return Err(format!("--transport must be grpc or http, not {other:?}")),
        };
        Ok(Self {
            client,
            completions: format!("{model}/chat/completions"),
            tools,
            tool,
        })
    }

    async fn chat(&self, messages: &Value) -> Result<Answer, String> {
        let body = json!({
            "model": MODEL,
            "messages": messages,
            "stream": true,
            "stream_options": {"include_usage": true},
            "tools": self.tools,
            "max_completion_tokens": 20000,
        });
        stream_chat(&self.client, &self.completions, &body).await
    }

    async fn call_tool(&self, n: u64, name: &str, arguments: &str) -> Result<String, String> {
        match &self.tool {
            ToolPath::Grpc(client) => {
                let mut request = tonic::Request::new(pb::CallToolRequest {
                    name: name.to_owned(),
                    arguments_json: arguments.to_owned(),
                    ..Default::default()
                });
                request.set_timeout(CALL_TIMEOUT);
                let result = client
                    .clone()
                    .call_tool(request)
                    .await
                    .map_err(|e| format!("CallTool: {e}"))?
                    .into_inner();
                if result.is_error {
                    return Err("CallTool: is_error".into());
                }
                Ok(result
                    .content
                    .first()
                    .map(|c| c.text.clone())
                    .unwrap_or_default())
            }
            ToolPath::Http(url) => {
                let arguments: Value =
                    serde_json::from_str(arguments).map_err(|e| format!("arguments: {e}"))?;
                let body = json!({"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {
                    "name": name, "arguments": arguments, "_meta": {
                        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                        "io.modelcontextprotocol/clientCapabilities": {}}}});
                let response = self
                    .client
                    .post(url)
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-protocol-version", "2026-07-28")
                    .header("mcp-method", "tools/call")
                    .header("mcp-name", name)
                    .body(body.to_string())
                    .send()
                    .await
                    .map_err(|e| format!("tools/call: {e}"))?;
                let status = response.status();
                let bytes = response
                    .bytes()
                    .await
                    .map_err(|e| format!("tools/call: {e}"))?;
                if !status.is_success() {
                    return Err(format!("tools/call: {status}"));
                }
                let text = String::from_utf8_lossy(&bytes);
                // A JSON response, or one SSE event holding it.
                let json_text = text
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .unwrap_or(&text);
                let reply: Value =
                    serde_json::from_str(json_text).map_err(|e| format!("tools/call: {e}"))?;
                let result = &reply["result"];
                if result.is_null() || result["isError"] == true {
                    return Err(format!("tools/call: {}", brief(&reply)));
                }
                Ok(result["content"][0]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned())
            }
        }
    }
}

impl Runner for Direct {
    async fn once(&self, n: u64) -> Result<Duration, String> {
        let started = Instant::now();
        let system = json!({"role": "system", "content": PROMPT});
        let user = json!({"role": "user", "content": INPUT});
        let first = self.chat(&json!([system, user])).await?;
        let Some((id, name, arguments)) = first.call else {
            return Err("model call 1 asked for no tool".into());
        };
        let result = self.call_tool(n, &name, &arguments).await?;
        let messages = json!([
            system,
            user,
            {"role": "assistant", "content": null, "tool_calls": [{"id": id, "type": "function",
                "function": {"name": name, "arguments": arguments}}]},
            {"role": "tool", "tool_call_id": id, "content": result},
        ]);
        let second = self.chat(&messages).await?;
        let elapsed = started.elapsed();
        if !result.contains("hi") || second.text != "done" || second.call.is_some() {
            return Err(format!(
                "unexpected: tool said {result:?}, model said {:?}",
                second.text
            ));
        }
        Ok(elapsed)
    }
}

/// One streamed chat completion (`body` has `stream: true`): the text and first tool call.
async fn stream_chat(client: &reqwest::Client, url: &str, body: &Value) -> Result<Answer, String> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("model: {e}"))?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| format!("model: {e}"))?;
    if !status.is_success() {
        return Err(format!("model: {status}"));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| "model: not UTF-8")?;
    let mut answer = Answer::default();
    let mut done = false;
    for data in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
        if data == "[DONE]" {
            done = true;
            break;
        }
        let chunk: Value = serde_json::from_str(data).map_err(|e| format!("model: {e}"))?;
        let delta = &chunk["choices"][0]["delta"];
        if let Some(t) = delta["content"].as_str() {
            answer.text.push_str(t);
        }
        for fragment in delta["tool_calls"].as_array().into_iter().flatten() {
            let call = answer.call.get_or_insert_with(Default::default);
            if let Some(id) = fragment["id"].as_str() {
                call.0 = id.to_owned();
            }
            if let Some(name) = fragment["function"]["name"].as_str() {
                call.1 = name.to_owned();
            }
            if let Some(piece) = fragment["function"]["arguments"].as_str() {
                call.2.push_str(piece);
            }
        }
    }
    if !done {
        return Err("model: the stream ended without [DONE]".into());
    }
    Ok(answer)
}

// --- ADK. --------------------------------------------------------------------------------------

struct Adk {
    client: reqwest::Client,
    base: String,
    app: String,
    workflow: Workflow,
}

impl Adk {
    fn new(client: reqwest::Client, base: &str, app: &str, workflow: Workflow) -> Self {
        Self {
            client,
            base: base.to_owned(),
            app: app.to_owned(),
            workflow,
        }
    }
}

impl Runner for Adk {
    async fn once(&self, n: u64) -> Result<Duration, String> {
        let session = format!("s{n}-{}", std::process::id());
        let url = format!("{}/apps/{}/users/u/sessions/{session}", self.base, self.app);
        post_json(&self.client, &url, &json!({})).await?;
        let body = json!({
            "appName": self.app, "userId": "u", "sessionId": session,
            "newMessage": {"role": "user", "parts": [{"text": self.workflow.input()}]},
            "streaming": false,
        });
        let started = Instant::now();
        let events = post_json(&self.client, &format!("{}/run", self.base), &body).await?;
        let elapsed = started.elapsed();
        match self.workflow {
            Workflow::React => check_adk(&events)?,
            workflow => workflow.check_adk(&events)?,
        }
        Ok(elapsed)
    }
}

fn check_adk(events: &Value) -> Result<(), String> {
    let parts: Vec<&Value> = events
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["content"]["parts"].as_array().into_iter().flatten())
        .collect();
    let called = parts.iter().any(|p| {
        p["functionCall"]["name"]
            .as_str()
            .is_some_and(|n| n.ends_with("echo"))
    });
    let answered = parts.iter().any(|p| {
        let response = &p["functionResponse"]["response"];
        !response.is_null() && response["isError"] != true && response.to_string().contains("hi")
    });
    let last_text = parts.iter().rev().find_map(|p| p["text"].as_str());
    if called && answered && last_text == Some("done") {
        Ok(())
    } else {
        Err(format!(
            "not a run with one echo call and the answer done: {}",
            brief(events)
        ))
    }
}

// --- Cold starts. ------------------------------------------------------------------------------

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// One `GET path` on a new connection: whether it answered 200.
fn ready(port: u16, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..]) {
            Ok(0) | Err(_) => return false,
            Ok(k) => read += k,
        }
    }
    head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200")
}

fn coldstart(args: &Args, runtime: &tokio::runtime::Runtime) -> Result<String, String> {
    need(&args.ready, "--ready")?;
    if args.command.is_empty() {
        return Err("no command after --".into());
    }
    let client = runtime.block_on(async {
        reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())
    })?;
    let (mut ready_ms, mut first_ms, mut errors) = (Vec::new(), Vec::new(), 0);
    for i in 0..args.runs {
        let port = free_port()?;
        let argv: Vec<String> = args
            .command
            .iter()
            .map(|a| a.replace("{port}", &port.to_string()))
            .collect();
        let stderr = match &args.log {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("{path}: {e}"))?,
            ),
            None => Stdio::null(),
        };
        let started = Instant::now();
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("{}: {e}", argv[0]))?;
        // Polled without sleeping, as startup-bench does: connect, request, retry at once.
        let outcome = loop {
            if ready(port, &args.ready) {
                break Ok(started.elapsed());
            }
            if let Ok(Some(status)) = child.try_wait() {
                break Err(format!("{} exited before it was ready: {status}", argv[0]));
            }
            if started.elapsed() > READY_TIMEOUT {
                break Err(format!("{} not ready after {READY_TIMEOUT:?}", argv[0]));
            }
        };
        let result = outcome.and_then(|ready_after| {
            let base = format!("http://127.0.0.1:{port}");
            let local = tokio::task::LocalSet::new();
            local
                .block_on(
                    runtime,
                    first_run(&client, &base, &args.first, args.workflow),
                )
                .map(|()| (ready_after, started.elapsed()))
        });
        let _ = child.kill();
        let _ = child.wait();
        match result {
            Ok((ready_after, first_after)) => {
                eprintln!(
                    "  cold start {}: ready {:.1} ms, first run done {:.1} ms",
                    i + 1,
                    ready_after.as_secs_f64() * 1000.0,
                    first_after.as_secs_f64() * 1000.0
                );
                ready_ms.push(ready_after.as_secs_f64() * 1000.0);
                first_ms.push(first_after.as_secs_f64() * 1000.0);
            }
            Err(e) => {
                errors += 1;
                eprintln!("  cold start {}: {e}", i + 1);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if ready_ms.is_empty() {
        return Err(format!("all {errors} cold starts failed"));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let m = v.len() / 2;
        if v.len().is_multiple_of(2) {
            (v[m - 1] + v[m]) / 2.0
        } else {
            v[m]
        }
    };
    let p90 = |v: &[f64]| v[((0.9 * v.len() as f64) as usize).min(v.len() - 1)];
    let ready_median = median(&mut ready_ms);
    let first_median = median(&mut first_ms);
    Ok(format!(
        "{ready_median:.1}\t{:.1}\t{first_median:.1}\t{errors}",
        p90(&ready_ms)
    ))
}

async fn first_run(
    client: &reqwest::Client,
    base: &str,
    first: &str,
    workflow: Workflow,
) -> Result<(), String> {
    if first == "orchestrate" {
        Orchestrate::new(client.clone(), &format!("{base}/v1/run"), workflow)
            .once(0)
            .await
            .map(drop)
    } else if let Some(app) = first.strip_prefix("adk:") {
        Adk::new(client.clone(), base, app, workflow)
            .once(0)
            .await
            .map(drop)
    } else {
        Err(format!(
            "--first must be orchestrate or adk:APP, not {first:?}"
        ))
    }
}
