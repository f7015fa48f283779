//! A loopback model server reproducing two documented streaming wire formats, scripted per test:
//! each chat request takes the next [`Reply`] of a script, or (for agents that run in parallel,
//! whose requests arrive in no fixed order) the reply a [`Responder`] picks from the request;
//! every request body is kept for assertions, and the most requests in flight at once counted.
//!
//! - **OpenAI chat completions** (`POST /v1/chat/completions`, `stream: true`): `data: <chunk
//!   JSON>` events separated by blank lines, text in `choices[0].delta.content`, tool calls as
//!   `delta.tool_calls[]` fragments merged by `index` (id and name first, then argument pieces),
//!   a `finish_reason`, one usage chunk with `choices: []` (`stream_options.include_usage`), then
//!   `data: [DONE]`; errors as `{"error": {"message", "type", "code"}}` bodies, and after the
//!   stream began as a `data: {"error": {...}}` event; `GET /v1/models` lists the model.
//! - **Ollama's native API** (`POST /api/chat`, ollama/ollama `docs/api.md`): NDJSON
//!   (`application/x-ndjson`), one `{model, created_at, message: {role, content}, done: false}`
//!   object a line; tool calls whole in a `done: false` line with arguments as objects and no ids;
//!   a last `done: true` line with `done_reason`, durations in nanoseconds, `prompt_eval_count`
//!   and `eval_count`; errors as `{"error": "..."}` bodies (404 `model 'x' not found, try pulling
//!   it first`), and after the stream began as a last `{"error": "..."}` line with no `done`;
//!   `GET /api/tags` lists the pulled models (`fake-model:latest`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Text in these deltas, then `stop`, with usage (prompt, completion tokens).
    Text(Vec<String>, (u64, u64)),
    /// These tool calls (name, arguments JSON text), then `tool_calls`, with usage. OpenAI: each
    /// argument split in two fragments; Ollama: all in one line, arguments as objects.
    ToolCalls(Vec<(String, String)>, (u64, u64)),
    /// One tool call with this id (id, name, arguments JSON text), as OpenAI names each call
    /// of a conversation uniquely; `ToolCalls` numbers each turn's calls from `call_0`, as
    /// servers without ids of their own do.
    IdentifiedCall(String, String, String),
    /// Text deltas, one every `gap`, for ever (until the client goes away).
    Endless(Duration),
    /// An HTTP error with the format's error body and these extra headers.
    Error(u16, String, Vec<(String, String)>),
    /// These text deltas, then an error in the stream (HTTP status stays 200).
    FailMidStream(Vec<String>, String),
    /// Bytes that are not the format at all, after a 200 head.
    Garbage(String),
    /// These text deltas, then the connection closes with no end of answer.
    Cut(Vec<String>),
}

impl Reply {
    /// A text answer in words.
    pub fn text(text: &str) -> Self {
        let words = text
            .split_inclusive(' ')
            .map(str::to_owned)
            .collect::<Vec<_>>();
        Self::Text(words, (12, u64::try_from(text.len()).unwrap_or(0) / 4 + 1))
    }

    /// One tool call.
    pub fn call(name: &str, arguments: Value) -> Self {
        Self::ToolCalls(vec![(name.to_owned(), arguments.to_string())], (20, 8))
    }

    /// One tool call with the id `id`.
    pub fn call_with_id(id: &str, name: &str, arguments: Value) -> Self {
        Self::IdentifiedCall(id.to_owned(), name.to_owned(), arguments.to_string())
    }

    /// An [`Self::IdentifiedCall`] as `ToolCalls`, and its id.
    fn identified(self) -> (Self, Option<String>) {
        match self {
            Self::IdentifiedCall(id, name, args) => {
                (Self::ToolCalls(vec![(name, args)], (20, 8)), Some(id))
            }
            other => (other, None),
        }
    }

    /// A structured answer: `value` as JSON text.
    pub fn json(value: &Value) -> Self {
        Self::text(&value.to_string())
    }
}

/// The reply a [`Responder`] picks for a chat request's body.
type Respond = dyn Fn(&Value) -> Reply + Send + Sync;

/// Replies chosen by a function of each request (its system message, its structured-output
/// schema: see [`system_prompt`], [`schema_name`], [`output_schema`]) instead of a script's
/// order, optionally held back before the first byte.
pub struct Responder {
    respond: Box<Respond>,
    latency: Duration,
    together: usize,
}

impl Responder {
    /// Answers each request with `respond(body)`.
    pub fn new(respond: impl Fn(&Value) -> Reply + Send + Sync + 'static) -> Self {
        Self {
            respond: Box::new(respond),
            latency: Duration::ZERO,
            together: 0,
        }
    }

    /// Waits `latency` before the first byte of every answer.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Holds every answer (before its first byte) until `n` requests have been in flight at
    /// once, or [`crate::WAIT_TIMEOUT`] has passed: requests that can only overlap if their
    /// client sends them concurrently then always do, however slow the machine, and a client
    /// that sends them one by one shows a peak below `n` instead of hanging.
    pub fn together(mut self, n: usize) -> Self {
        self.together = n;
        self
    }
}

/// Where replies come from.
enum Source {
    Script(Mutex<std::vec::IntoIter<Reply>>),
    Responder(Responder),
}

impl Source {
    fn next(&self, request: &Value) -> Option<Reply> {
        match self {
            Self::Script(script) => script.lock().unwrap().next(),
            Self::Responder(r) => Some((r.respond)(request)),
        }
    }
}

/// Chat requests in flight (from their body read to their answer's end) and the most at once.
#[derive(Default)]
struct InFlight {
    counts: Mutex<(usize, usize)>,
    changed: Condvar,
}

impl InFlight {
    fn enter(self: &Arc<Self>) -> InFlightGuard {
        let mut c = self.counts.lock().unwrap();
        c.0 += 1;
        c.1 = c.1.max(c.0);
        self.changed.notify_all();
        InFlightGuard(self.clone())
    }

    /// Waits until the peak reaches `n` (or the timeout).
    fn wait_peak(&self, n: usize) {
        let deadline = Instant::now() + crate::WAIT_TIMEOUT;
        let mut c = self.counts.lock().unwrap();
        while c.1 < n {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            c = self.changed.wait_timeout(c, deadline - now).unwrap().0;
        }
    }

    fn peak(&self) -> usize {
        self.counts.lock().unwrap().1
    }
}

/// One request in flight, until dropped.
struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.counts.lock().unwrap().0 -= 1;
    }
}

/// The system message of a chat request body (both formats send it first in `messages`), or
/// `""`.
pub fn system_prompt(request: &Value) -> &str {
    match &request["messages"][0] {
        m if m["role"] == "system" => m["content"].as_str().unwrap_or_default(),
        _ => "",
    }
}

/// The JSON Schema a structured request constrains its answer to: Ollama's `format`, OpenAI's
/// `response_format.json_schema.schema`.
pub fn output_schema(request: &Value) -> Option<&Value> {
    request
        .get("format")
        .filter(|f| f.is_object())
        .or_else(|| request.pointer("/response_format/json_schema/schema"))
}

/// The schema's name of an OpenAI structured request (`response_format.json_schema.name`;
/// Ollama's `format` has none).
pub fn schema_name(request: &Value) -> Option<&str> {
    request
        .pointer("/response_format/json_schema/name")
        .and_then(Value::as_str)
}

/// The text of a request's last message (the task, or the last tool result).
pub fn last_message(request: &Value) -> &str {
    request["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
}

/// Which documented format the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    OpenAi,
    Ollama,
}

/// The server, on its own threads until the test process ends.
pub struct FakeModel {
    /// Where it listens.
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Value>>>,
    auths: Arc<Mutex<Vec<Option<String>>>>,
    traceparents: Arc<Mutex<Vec<Option<String>>>>,
    hung_up: Arc<AtomicUsize>,
    in_flight: Arc<InFlight>,
}

/// What every connection's thread shares.
struct Shared {
    wire: Wire,
    source: Source,
    requests: Arc<Mutex<Vec<Value>>>,
    auths: Arc<Headers>,
    traceparents: Arc<Headers>,
    hung_up: Arc<AtomicUsize>,
    in_flight: Arc<InFlight>,
}

impl FakeModel {
    /// An OpenAI-compatible server: serves `script` in order; requests past its end get a 500.
    pub fn openai(script: Vec<Reply>) -> Self {
        Self::start(Wire::OpenAi, Source::Script(Mutex::new(script.into_iter())))
    }

    /// An Ollama server with `fake-model` pulled: serves `script` in order; requests past its
    /// end get a 500.
    pub fn ollama(script: Vec<Reply>) -> Self {
        Self::start(Wire::Ollama, Source::Script(Mutex::new(script.into_iter())))
    }

    /// An OpenAI-compatible server answering each request as `responder` picks.
    pub fn openai_responder(responder: Responder) -> Self {
        Self::start(Wire::OpenAi, Source::Responder(responder))
    }

    /// An Ollama server with `fake-model` pulled, answering each request as `responder` picks.
    pub fn ollama_responder(responder: Responder) -> Self {
        Self::start(Wire::Ollama, Source::Responder(responder))
    }

    fn start(wire: Wire, source: Source) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake model");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Shared {
            wire,
            source,
            requests: Arc::default(),
            auths: Arc::default(),
            traceparents: Arc::default(),
            hung_up: Arc::default(),
            in_flight: Arc::default(),
        });
        let model = Self {
            addr,
            requests: shared.requests.clone(),
            auths: shared.auths.clone(),
            traceparents: shared.traceparents.clone(),
            hung_up: shared.hung_up.clone(),
            in_flight: shared.in_flight.clone(),
        };
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || serve(&shared, stream));
            }
        });
        model
    }

    /// `http://ADDR/v1`, the base URL an OpenAI-compatible client is given.
    pub fn base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// `http://ADDR`, the address an Ollama client is given.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every chat request body so far.
    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }

    /// The `Authorization` header of every chat request so far.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.auths.lock().unwrap().clone()
    }

    /// The `traceparent` header of every chat request so far.
    pub fn traceparents(&self) -> Vec<Option<String>> {
        self.traceparents.lock().unwrap().clone()
    }

    /// How many streams ended because the client closed the connection.
    pub fn hung_up(&self) -> usize {
        self.hung_up.load(Ordering::SeqCst)
    }

    /// The most chat requests that were in flight at once (from their body read to the end of
    /// their answer, or the client hanging up).
    pub fn max_in_flight(&self) -> usize {
        self.in_flight.peak()
    }
}

/// One header's value per request (`None` when it was absent).
type Headers = Mutex<Vec<Option<String>>>;

/// One request's line, `Authorization` and `traceparent` values, and body.
type Head = (String, Option<String>, Option<String>, Vec<u8>);

/// Reads one request. `None` if the client went away first.
fn read_request(stream: &TcpStream) -> Option<Head> {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut length = 0;
    let mut auth = None;
    let mut traceparent = None;
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return None;
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if line.to_ascii_lowercase().starts_with("authorization:") {
                    auth = Some(line["authorization:".len()..].trim().to_owned());
                }
                if line.to_ascii_lowercase().starts_with("traceparent:") {
                    traceparent = Some(line["traceparent:".len()..].trim().to_owned());
                }
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((request_line, auth, traceparent, body))
}

fn serve(shared: &Shared, mut out: TcpStream) {
    let wire = shared.wire;
    let Some((request_line, auth, traceparent, body)) = read_request(&out) else {
        return;
    };
    if request_line.starts_with("GET ") {
        // The model list each format's clients probe.
        let list = match wire {
            Wire::OpenAi => {
                json!({"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
            }
            Wire::Ollama => {
                json!({"models": [{"name": "fake-model:latest", "model": "fake-model:latest",
                "modified_at": "2026-01-01T00:00:00Z", "size": 1, "digest": "0",
                "details": {"family": "fake", "parameter_size": "1M", "quantization_level": "Q4_0"}}]})
            }
        };
        let _ = write_json(&mut out, 200, &list.to_string(), &[]);
        return;
    }
    let _in_flight = shared.in_flight.enter();
    shared.auths.lock().unwrap().push(auth);
    shared.traceparents.lock().unwrap().push(traceparent);
    let request = serde_json::from_slice(&body).unwrap_or(Value::Null);
    shared.requests.lock().unwrap().push(request.clone());
    let reply = shared.source.next(&request);
    if let Source::Responder(r) = &shared.source {
        if r.together > 0 {
            shared.in_flight.wait_peak(r.together);
        }
        std::thread::sleep(r.latency);
    }
    let frames = match reply {
        None => {
            let _ = write_error(wire, &mut out, 500, "script exhausted", &[]);
            return;
        }
        Some(Reply::Error(status, message, headers)) => {
            let _ = write_error(wire, &mut out, status, &message, &headers);
            return;
        }
        Some(Reply::Endless(gap)) => {
            if write_head(wire, &mut out).is_err() {
                return;
            }
            loop {
                if out
                    .write_all(frame(wire, &text_chunk(wire, "more ")).as_bytes())
                    .and_then(|()| out.flush())
                    .is_err()
                {
                    shared.hung_up.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                std::thread::sleep(gap);
            }
        }
        Some(Reply::Garbage(text)) => {
            let _ = write_head(wire, &mut out).and_then(|()| out.write_all(text.as_bytes()));
            return;
        }
        Some(reply) => match wire {
            Wire::OpenAi => openai_frames(reply),
            Wire::Ollama => ollama_frames(reply),
        },
    };
    if write_head(wire, &mut out).is_err() {
        return;
    }
    for f in frames {
        if out.write_all(f.as_bytes()).is_err() {
            return;
        }
    }
}

/// One event (OpenAI: `data: ...` and a blank line) or line (Ollama).
fn frame(wire: Wire, value: &Value) -> String {
    match wire {
        Wire::OpenAi => format!("data: {value}\n\n"),
        Wire::Ollama => format!("{value}\n"),
    }
}

fn text_chunk(wire: Wire, text: &str) -> Value {
    match wire {
        Wire::OpenAi => openai_chunk(json!({"content": text}), None),
        Wire::Ollama => ollama_line(json!({"role": "assistant", "content": text})),
    }
}

fn openai_chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
           "model": "fake-model", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

fn openai_frames(reply: Reply) -> Vec<String> {
    let usage = |(p, c): (u64, u64)| {
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "fake-model",
               "choices": [], "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}})
    };
    let mut events = Vec::new();
    let mut done = true;
    let (reply, id) = reply.identified();
    match reply {
        Reply::Text(deltas, tokens) => {
            events.push(openai_chunk(
                json!({"role": "assistant", "content": ""}),
                None,
            ));
            for d in deltas {
                events.push(openai_chunk(json!({"content": d}), None));
            }
            events.push(openai_chunk(json!({}), Some("stop")));
            events.push(usage(tokens));
        }
        Reply::ToolCalls(calls, tokens) => {
            events.push(openai_chunk(
                json!({"role": "assistant", "content": null}),
                None,
            ));
            for (i, (name, args)) in calls.iter().enumerate() {
                let (a, b) = args.split_at(args.len() / 2);
                events.push(openai_chunk(json!({"tool_calls": [{"index": i, "id": id.clone().unwrap_or_else(|| format!("call_{i}")), "type": "function",
                                  "function": {"name": name, "arguments": a}}]}), None));
                events.push(openai_chunk(
                    json!({"tool_calls": [{"index": i, "function": {"arguments": b}}]}),
                    None,
                ));
            }
            events.push(openai_chunk(json!({}), Some("tool_calls")));
            events.push(usage(tokens));
        }
        Reply::FailMidStream(deltas, message) => {
            for d in deltas {
                events.push(openai_chunk(json!({"content": d}), None));
            }
            events
                .push(json!({"error": {"message": message, "type": "server_error", "code": null}}));
            done = false;
        }
        Reply::Cut(deltas) => {
            for d in deltas {
                events.push(openai_chunk(json!({"content": d}), None));
            }
            done = false;
        }
        _ => unreachable!("handled by serve"),
    }
    let mut frames: Vec<String> = events.iter().map(|e| frame(Wire::OpenAi, e)).collect();
    if done {
        frames.push("data: [DONE]\n\n".into());
    }
    frames
}

fn ollama_line(message: Value) -> Value {
    json!({"model": "fake-model", "created_at": "2026-01-01T00:00:00.000000Z", "message": message, "done": false})
}

fn ollama_done((prompt, completion): (u64, u64)) -> Value {
    json!({"model": "fake-model", "created_at": "2026-01-01T00:00:00.000000Z",
           "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop",
           "total_duration": 5_000_000, "load_duration": 1_000_000,
           "prompt_eval_count": prompt, "prompt_eval_duration": 1_000_000,
           "eval_count": completion, "eval_duration": 2_000_000})
}

fn ollama_frames(reply: Reply) -> Vec<String> {
    let mut lines = Vec::new();
    let (reply, id) = reply.identified();
    match reply {
        Reply::Text(deltas, tokens) => {
            for d in deltas {
                lines.push(ollama_line(json!({"role": "assistant", "content": d})));
            }
            lines.push(ollama_done(tokens));
        }
        Reply::ToolCalls(calls, tokens) => {
            let calls: Vec<Value> = calls
                .iter()
                .map(|(name, args)| {
                    // Arguments as an object when they parse (as Ollama sends them).
                    let arguments = serde_json::from_str::<Value>(args)
                        .unwrap_or_else(|_| Value::String(args.clone()));
                    let mut call = json!({"function": {"name": name, "arguments": arguments}});
                    if let Some(id) = &id {
                        call["id"] = json!(id);
                    }
                    call
                })
                .collect();
            lines.push(ollama_line(
                json!({"role": "assistant", "content": "", "tool_calls": calls}),
            ));
            lines.push(ollama_done(tokens));
        }
        Reply::FailMidStream(deltas, message) => {
            for d in deltas {
                lines.push(ollama_line(json!({"role": "assistant", "content": d})));
            }
            lines.push(json!({"error": message}));
        }
        Reply::Cut(deltas) => {
            for d in deltas {
                lines.push(ollama_line(json!({"role": "assistant", "content": d})));
            }
        }
        _ => unreachable!("handled by serve"),
    }
    lines.iter().map(|l| frame(Wire::Ollama, l)).collect()
}

fn write_head(wire: Wire, out: &mut TcpStream) -> std::io::Result<()> {
    let head: &[u8] = match wire {
        Wire::OpenAi => {
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
        }
        Wire::Ollama => {
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n"
        }
    };
    out.write_all(head)?;
    out.flush()
}

fn write_error(
    wire: Wire,
    out: &mut TcpStream,
    status: u16,
    message: &str,
    headers: &[(String, String)],
) -> std::io::Result<()> {
    let body = match wire {
        Wire::OpenAi => {
            json!({"error": {"message": message, "type": "invalid_request_error", "code": null}})
        }
        Wire::Ollama => json!({"error": message}),
    };
    write_json(out, status, &body.to_string(), headers)
}

fn write_json(
    out: &mut TcpStream,
    status: u16,
    body: &str,
    headers: &[(String, String)],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
        if status == 200 { "OK" } else { "Error" },
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(body.as_bytes())
}
