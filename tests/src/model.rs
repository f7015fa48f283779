//! A loopback model server reproducing the OpenAI chat completions streaming wire format
//! (`POST /v1/chat/completions` with `stream: true`): `data: <chunk JSON>` events separated by
//! blank lines, text in `choices[0].delta.content`, tool calls as `delta.tool_calls[]` fragments
//! merged by `index` (id and name first, then argument pieces), a `finish_reason`, one usage
//! chunk with `choices: []` (`stream_options.include_usage`), then `data: [DONE]`; errors as
//! `{"error": {"message", "type", "code"}}` bodies; `GET /v1/models` lists the model. Scripted per test: each request takes the
//! next [`Reply`]; every request body is kept for assertions.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Text in these deltas, then `stop`, with usage (prompt, completion tokens).
    Text(Vec<String>, (u64, u64)),
    /// These tool calls (name, arguments JSON text), each argument split in two fragments,
    /// then `tool_calls`, with usage.
    ToolCalls(Vec<(String, String)>, (u64, u64)),
    /// Text deltas, one every `gap`, for ever (until the client goes away).
    Endless(Duration),
    /// An HTTP error with an OpenAI error body and these extra headers.
    Error(u16, String, Vec<(String, String)>),
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
}

/// The server, on its own threads until the test process ends.
pub struct FakeModel {
    /// Where it listens.
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Value>>>,
    hung_up: Arc<AtomicUsize>,
}

impl FakeModel {
    /// Serves `script` in order; requests past its end get a 500.
    pub fn openai(script: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake model");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let hung_up = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(Mutex::new(script.into_iter()));
        let (log, gone) = (requests.clone(), hung_up.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, gone, script) = (log.clone(), gone.clone(), script.clone());
                std::thread::spawn(move || serve(stream, &log, &gone, &script));
            }
        });
        Self {
            addr,
            requests,
            hung_up,
        }
    }

    /// `http://ADDR/v1`, the base URL an OpenAI-compatible client is given.
    pub fn base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request body so far.
    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }

    /// How many streams ended because the client closed the connection.
    pub fn hung_up(&self) -> usize {
        self.hung_up.load(Ordering::SeqCst)
    }
}

fn serve(
    stream: TcpStream,
    log: &Mutex<Vec<Value>>,
    gone: &AtomicUsize,
    script: &Mutex<std::vec::IntoIter<Reply>>,
) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut length = 0;
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    if request_line.starts_with("GET ") && request_line.contains("/models") {
        // `GET /v1/models`: the model list (`{"object": "list", "data": [{"id", "object"}]}`).
        let list = json!({"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
            .to_string();
        let mut out = stream;
        let _ = write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{list}",
            list.len()
        );
        return;
    }
    log.lock()
        .unwrap()
        .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
    let reply = script.lock().unwrap().next();
    let mut out = stream;
    let chunk = |delta: Value, finish: Option<&str>| {
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
               "model": "fake-model", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let usage = |(p, c): (u64, u64)| {
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "fake-model",
               "choices": [], "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}})
    };
    let mut events: Vec<Value> = Vec::new();
    match reply {
        None => {
            let _ = write_error(&mut out, 500, "script exhausted", &[]);
            return;
        }
        Some(Reply::Error(status, message, headers)) => {
            let _ = write_error(&mut out, status, &message, &headers);
            return;
        }
        Some(Reply::Endless(gap)) => {
            if write_head(&mut out).is_err() {
                return;
            }
            loop {
                let event = chunk(json!({"content": "more "}), None);
                if write!(out, "data: {event}\n\n")
                    .and_then(|()| out.flush())
                    .is_err()
                {
                    gone.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                std::thread::sleep(gap);
            }
        }
        Some(Reply::Text(deltas, tokens)) => {
            events.push(chunk(json!({"role": "assistant", "content": ""}), None));
            for d in deltas {
                events.push(chunk(json!({"content": d}), None));
            }
            events.push(chunk(json!({}), Some("stop")));
            events.push(usage(tokens));
        }
        Some(Reply::ToolCalls(calls, tokens)) => {
            events.push(chunk(json!({"role": "assistant", "content": null}), None));
            for (i, (name, args)) in calls.iter().enumerate() {
                let (a, b) = args.split_at(args.len() / 2);
                events.push(chunk(json!({"tool_calls": [{"index": i, "id": format!("call_{i}"), "type": "function",
                                  "function": {"name": name, "arguments": a}}]}), None));
                events.push(chunk(
                    json!({"tool_calls": [{"index": i, "function": {"arguments": b}}]}),
                    None,
                ));
            }
            events.push(chunk(json!({}), Some("tool_calls")));
            events.push(usage(tokens));
        }
    }
    if write_head(&mut out).is_err() {
        return;
    }
    for event in events {
        if write!(out, "data: {event}\n\n").is_err() {
            return;
        }
    }
    let _ = out.write_all(b"data: [DONE]\n\n");
}

fn write_head(out: &mut TcpStream) -> std::io::Result<()> {
    out.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
    )?;
    out.flush()
}

fn write_error(
    out: &mut TcpStream,
    status: u16,
    message: &str,
    headers: &[(String, String)],
) -> std::io::Result<()> {
    let body =
        json!({"error": {"message": message, "type": "invalid_request_error", "code": null}})
            .to_string();
    let mut head = format!(
        "HTTP/1.1 {status} Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(body.as_bytes())
}
