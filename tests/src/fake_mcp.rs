//! A loopback MCP server over Streamable HTTP (the 2025-11-25 era: `server/discover` answers
//! "method not found", as a legacy server does, so a client falls back to `initialize`), with
//! tools of the test's own that answer after a delay, recording every `tools/call` it receives
//! with its arguments and the idempotency key in `params._meta["io.aixrun/idempotency-key"]`:
//! a test counts how often each call really ran. JSON answers (`application/json`), one
//! request per connection; `GET` (the server-to-client stream) is 405, as the spec allows.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

/// Where orchestrate puts a call's idempotency key.
pub const IDEMPOTENCY_META: &str = "io.aixrun/idempotency-key";

/// One tool the server offers.
#[derive(Debug, Clone)]
pub struct FakeTool {
    /// Its name.
    pub name: String,
    /// How long a call takes before it answers.
    pub delay: Duration,
    /// `annotations` in the listing (`{"destructiveHint": true}`), if any.
    pub annotations: Option<Value>,
}

impl FakeTool {
    /// A tool that answers after `delay`.
    pub fn new(name: &str, delay: Duration) -> Self {
        Self {
            name: name.to_owned(),
            delay,
            annotations: None,
        }
    }
}

/// One `tools/call` received.
#[derive(Debug, Clone)]
pub struct CallSeen {
    /// The tool.
    pub name: String,
    /// Its arguments.
    pub arguments: Value,
    /// `params._meta["io.aixrun/idempotency-key"]`.
    pub key: Option<String>,
    /// Whether its answer was written (the client was still there).
    pub answered: bool,
}

/// The server, on its own threads until the test process ends.
pub struct FakeMcp {
    /// Where it listens.
    pub addr: SocketAddr,
    calls: Arc<Mutex<Vec<CallSeen>>>,
}

impl FakeMcp {
    /// Serves `tools`.
    pub fn start(tools: Vec<FakeTool>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake MCP server");
        let addr = listener.local_addr().expect("addr");
        let calls: Arc<Mutex<Vec<CallSeen>>> = Arc::default();
        let tools = Arc::new(tools);
        let seen = calls.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (tools, seen) = (tools.clone(), seen.clone());
                std::thread::spawn(move || serve(&tools, &seen, stream));
            }
        });
        Self { addr, calls }
    }

    /// `http://ADDR/mcp`.
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// An `mcp_servers` entry named `tools` on this server.
    pub fn server_yaml(&self) -> String {
        format!(
            "  - name: tools\n    transport: http\n    url: {}\n",
            self.url()
        )
    }

    /// Every `tools/call` received so far, in arrival order.
    pub fn calls(&self) -> Vec<CallSeen> {
        self.calls.lock().unwrap().clone()
    }
}

fn serve(tools: &[FakeTool], seen: &Mutex<Vec<CallSeen>>, stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut out = stream;
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let method = request_line.split(' ').next().unwrap_or_default();
    match method {
        "POST" => {}
        "DELETE" => return drop(write(&mut out, "200 OK", None)),
        _ => return drop(write(&mut out, "405 Method Not Allowed", None)),
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return drop(write(&mut out, "400 Bad Request", None));
    };
    let Some(id) = message.get("id").cloned() else {
        // A notification (`notifications/initialized`, `notifications/cancelled`).
        return drop(write(&mut out, "202 Accepted", None));
    };
    let params = &message["params"];
    let answer = match message["method"].as_str().unwrap_or_default() {
        "initialize" => Ok(json!({
            "protocolVersion": params["protocolVersion"].as_str().unwrap_or("2025-11-25"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "fake-mcp", "version": "0.0.0"},
        })),
        "ping" => Ok(json!({})),
        "tools/list" => Ok(json!({"tools": tools.iter().map(listing).collect::<Vec<_>>()})),
        "tools/call" => call(tools, seen, params),
        other => Err((-32601, format!("Method not found: {other}"))),
    };
    let reply = match answer {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err((code, message)) => {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
        }
    };
    let answered = write(&mut out, "200 OK", Some(&reply)).is_ok();
    if message["method"] == "tools/call" && answered {
        let key = params["_meta"][IDEMPOTENCY_META].as_str();
        let mut seen = seen.lock().unwrap();
        if let Some(c) = seen
            .iter_mut()
            .rev()
            .find(|c| c.key.as_deref() == key && !c.answered)
        {
            c.answered = true;
        }
    }
}

fn listing(tool: &FakeTool) -> Value {
    let mut t = json!({
        "name": tool.name,
        "description": format!("the test's {} tool", tool.name),
        "inputSchema": {"type": "object", "properties": {"n": {"type": "integer"}}},
    });
    if let Some(a) = &tool.annotations {
        t["annotations"] = a.clone();
    }
    t
}

/// Records the call, waits the tool's delay and answers `NAME done: ARGUMENTS`.
fn call(
    tools: &[FakeTool],
    seen: &Mutex<Vec<CallSeen>>,
    params: &Value,
) -> Result<Value, (i64, String)> {
    let name = params["name"].as_str().unwrap_or_default();
    let Some(tool) = tools.iter().find(|t| t.name == name) else {
        return Err((-32602, format!("unknown tool {name}")));
    };
    let arguments = params.get("arguments").cloned().unwrap_or(json!({}));
    seen.lock().unwrap().push(CallSeen {
        name: name.to_owned(),
        arguments: arguments.clone(),
        key: params["_meta"][IDEMPOTENCY_META]
            .as_str()
            .map(str::to_owned),
        answered: false,
    });
    std::thread::sleep(tool.delay);
    Ok(json!({
        "content": [{"type": "text", "text": format!("{name} done: {arguments}")}],
        "isError": false,
    }))
}

fn write(out: &mut TcpStream, status: &str, body: Option<&Value>) -> std::io::Result<()> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let kind = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/json\r\n"
    };
    write!(
        out,
        "HTTP/1.1 {status}\r\n{kind}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()
}
