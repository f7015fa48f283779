//! A loopback OpenAI-compatible model server with a fixed latency, for the orchestrator
//! benchmark (`bench/orchestrate/run.sh`).
//!
//! `POST /v1/chat/completions` (or `/chat/completions`) waits the latency from the moment the
//! request head arrived, then answers in one go: the OpenAI streaming wire format when the body
//! has `stream: true` (`data: <chunk JSON>` events separated by blank lines, tool calls as
//! `delta.tool_calls[]` fragments, a `finish_reason`, one usage chunk with `choices: []`, then
//! `data: [DONE]`; the same as tests/src/model.rs), a `chat.completion` JSON object otherwise.
//! Scripted per request:
//! - with `response_format` `{"type": "json_schema", "json_schema": {"schema": S}}` (a classifier's
//!   or any structured answer), a valid instance of S as the text: an enum's (or `anyOf`'s) first
//!   choice, numbers 0.9 (clamped to their bounds), integers 1, strings `ok`, every property of an
//!   object, arrays of `minItems` (at least one) items; `{"type": "json_object"}` gets `{}`;
//! - else, when the request offers tools and its messages hold no `tool` message, one call of
//!   the tool whose name ends in `echo` (`echo` if none does), arguments `{"text":"hi"}`;
//! - else (a tool result came back, or no tools are offered) the text `done`.
//!
//! Also `GET /v1/models`; `POST /admin/latency` with a number of milliseconds as the body sets
//! the latency; `GET /admin/stats` answers `in_flight completions` (requests waiting out their
//! latency, and completions answered). One thread: the latency is slept on the blocking pool so
//! that it is precise to tens of microseconds (Tokio's timer rounds up to the millisecond).
//!
//! Usage: bench-model [--port P] [--latency-ms N]   (PORT is read when --port is not given)

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

const USAGE: &str = "usage: bench-model [--port P] [--latency-ms N]";
const MODEL: &str = "bench";
/// Below this much of the latency left, the wait is a blocking sleep instead of Tokio's timer.
const PRECISE_TAIL: Duration = Duration::from_millis(3);

struct State {
    latency_us: AtomicU64,
    in_flight: AtomicU64,
    completions: AtomicU64,
}

fn main() -> std::process::ExitCode {
    let mut port: Option<u16> = std::env::var("PORT").ok().and_then(|p| p.parse().ok());
    let mut latency_ms = 20.0_f64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        match (arg.as_str(), value.as_deref().map(str::parse::<f64>)) {
            ("--port", Some(Ok(v))) if v.fract() == 0.0 && (0.0..=65535.0).contains(&v) => {
                port = Some(v as u16);
            }
            ("--latency-ms", Some(Ok(v))) if v >= 0.0 => latency_ms = v,
            _ => {
                eprintln!("{USAGE}");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let state = Arc::new(State {
        latency_us: AtomicU64::new((latency_ms * 1000.0) as u64),
        in_flight: AtomicU64::new(0),
        completions: AtomicU64::new(0),
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let addr = SocketAddr::from(([127, 0, 0, 1], port.unwrap_or(8080)));
    if let Err(e) = runtime.block_on(serve(addr, state)) {
        eprintln!("bench-model: {e}");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}

async fn serve(addr: SocketAddr, state: Arc<State>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(v) => v,
            // Out of descriptors, say: keep serving the connections already open.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(request, &state).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body =
        json!({"error": {"message": message, "type": "invalid_request_error", "code": null}});
    respond(status, "application/json", body.to_string())
}

async fn handle(request: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    let arrived = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let body = match request.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return error(StatusCode::BAD_REQUEST, "unreadable body"),
    };
    match (method, path.as_str()) {
        (Method::POST, "/v1/chat/completions" | "/chat/completions") => {
            let Ok(request) = serde_json::from_slice::<Value>(&body) else {
                return error(StatusCode::BAD_REQUEST, "the body is not JSON");
            };
            state.in_flight.fetch_add(1, Ordering::Relaxed);
            let latency = Duration::from_micros(state.latency_us.load(Ordering::Relaxed));
            wait_until(arrived + latency).await;
            state.in_flight.fetch_sub(1, Ordering::Relaxed);
            let n = state.completions.fetch_add(1, Ordering::Relaxed);
            completion(&request, n)
        }
        (Method::GET, "/v1/models" | "/models") => {
            let list = json!({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "bench"}]});
            respond(StatusCode::OK, "application/json", list.to_string())
        }
        (Method::POST, "/admin/latency") => {
            match std::str::from_utf8(&body)
                .ok()
                .and_then(|s| s.trim().parse::<f64>().ok())
            {
                Some(ms) if ms >= 0.0 => {
                    state
                        .latency_us
                        .store((ms * 1000.0) as u64, Ordering::Relaxed);
                    respond(StatusCode::OK, "text/plain", "ok\n")
                }
                _ => error(
                    StatusCode::BAD_REQUEST,
                    "the body must be a number of milliseconds",
                ),
            }
        }
        (Method::GET, "/admin/stats") => {
            let line = format!(
                "{} {}\n",
                state.in_flight.load(Ordering::Relaxed),
                state.completions.load(Ordering::Relaxed)
            );
            respond(StatusCode::OK, "text/plain", line)
        }
        (Method::GET, "/") => respond(StatusCode::OK, "text/plain", "bench-model\n"),
        _ => error(StatusCode::NOT_FOUND, "no such route"),
    }
}

/// Sleeps until `deadline`: on Tokio's timer for all but the last few milliseconds, then on a
/// blocking-pool thread, whose sleep is precise.
async fn wait_until(deadline: Instant) {
    let now = Instant::now();
    if deadline <= now {
        return;
    }
    if deadline - now > PRECISE_TAIL {
        tokio::time::sleep_until((deadline - PRECISE_TAIL).into()).await;
    }
    let _ = tokio::task::spawn_blocking(move || {
        let left = deadline.saturating_duration_since(Instant::now());
        if !left.is_zero() {
            std::thread::sleep(left);
        }
    })
    .await;
}

/// What a request gets: a text, or a call of the named tool.
enum Answer<'a> {
    Text(String),
    Call(&'a str),
}

/// The answer the script gives to `request` (see the module's documentation).
fn answer(request: &Value) -> Answer<'_> {
    let format = &request["response_format"];
    match format["type"].as_str() {
        Some("json_schema") => {
            let schema = &format["json_schema"]["schema"];
            return Answer::Text(instance(schema, schema, 0).to_string());
        }
        Some("json_object") => return Answer::Text("{}".into()),
        _ => {}
    }
    let messages = request["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let answered = messages.iter().any(|m| m["role"] == "tool");
    let tools = request["tools"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if answered || tools.is_empty() {
        return Answer::Text("done".into());
    }
    let tool = tools
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .find(|name| name.ends_with("echo"))
        .unwrap_or("echo");
    Answer::Call(tool)
}

/// A small valid instance of the JSON Schema `schema` (`root` resolves local `$ref`s), as a
/// model constrained to it would answer. Nesting past a few levels gets `null`.
fn instance(schema: &Value, root: &Value, depth: u32) -> Value {
    if depth > 16 {
        return Value::Null;
    }
    let deeper = |s: &Value| instance(s, root, depth + 1);
    if let Some(reference) = schema["$ref"].as_str() {
        // "#/$defs/Name" or "#/definitions/Name": a JSON pointer into the root.
        let target = reference
            .strip_prefix('#')
            .and_then(|pointer| root.pointer(pointer))
            .unwrap_or(&Value::Null);
        return deeper(target);
    }
    if let Some(value) = schema.get("const") {
        return value.clone();
    }
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(first) = schema[key].as_array().and_then(|a| a.first()) {
            return deeper(first);
        }
    }
    // `type` may be a list such as ["string", "null"]: the first that is not null.
    let kind = match &schema["type"] {
        Value::String(t) => t.as_str(),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    let bounded = |default: f64| {
        let low = schema["minimum"].as_f64().unwrap_or(f64::MIN);
        let high = schema["maximum"].as_f64().unwrap_or(f64::MAX);
        default.clamp(low, high.max(low))
    };
    match kind {
        "object" => {
            let properties = schema["properties"].as_object();
            let object = properties
                .into_iter()
                .flatten()
                .map(|(name, property)| (name.clone(), deeper(property)))
                .collect();
            Value::Object(object)
        }
        "array" => {
            let count = schema["minItems"].as_u64().unwrap_or(1).max(1);
            let item = deeper(&schema["items"]);
            Value::Array(vec![item; count as usize])
        }
        "number" => json!(bounded(0.9)),
        "integer" => json!(bounded(1.0) as i64),
        "boolean" => json!(true),
        "null" => Value::Null,
        _ => {
            let min = schema["minLength"].as_u64().unwrap_or(0) as usize;
            json!(format!("{:o<min$}", "ok"))
        }
    }
}

/// The scripted answer to one chat completions request.
fn completion(request: &Value, n: u64) -> Response<Full<Bytes>> {
    let answer = answer(request);
    let model = request["model"].as_str().unwrap_or(MODEL);
    let id = format!("chatcmpl-{n}");
    let call_id = format!("call_{n}");
    let arguments = r#"{"text":"hi"}"#;
    let (prompt, completion) = match &answer {
        Answer::Text(_) => (40, 2),
        Answer::Call(_) => (20, 8),
    };
    let usage = json!({"prompt_tokens": prompt, "completion_tokens": completion,
                       "total_tokens": prompt + completion});
    if request["stream"] != true {
        let (message, finish) = match &answer {
            Answer::Text(text) => (json!({"role": "assistant", "content": text}), "stop"),
            Answer::Call(tool) => (
                json!({"role": "assistant", "content": null, "tool_calls": [{"id": call_id,
                       "type": "function", "function": {"name": tool, "arguments": arguments}}]}),
                "tool_calls",
            ),
        };
        let body = json!({"id": id, "object": "chat.completion", "created": 1, "model": model,
                          "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                          "usage": usage});
        return respond(StatusCode::OK, "application/json", body.to_string());
    }
    let chunk = |delta: Value, finish: Option<&str>| {
        json!({"id": id, "object": "chat.completion.chunk", "created": 1, "model": model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut events = Vec::with_capacity(6);
    match &answer {
        Answer::Text(text) => {
            events.push(chunk(json!({"role": "assistant", "content": ""}), None));
            events.push(chunk(json!({"content": text}), None));
            events.push(chunk(json!({}), Some("stop")));
        }
        Answer::Call(tool) => {
            let (a, b) = arguments.split_at(arguments.len() / 2);
            events.push(chunk(json!({"role": "assistant", "content": null}), None));
            events.push(chunk(
                json!({"tool_calls": [{"index": 0, "id": call_id, "type": "function",
                                   "function": {"name": tool, "arguments": a}}]}),
                None,
            ));
            events.push(chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": b}}]}),
                None,
            ));
            events.push(chunk(json!({}), Some("tool_calls")));
        }
    }
    if request["stream_options"]["include_usage"] == true {
        events.push(
            json!({"id": id, "object": "chat.completion.chunk", "created": 1, "model": model,
                           "choices": [], "usage": usage}),
        );
    }
    let mut body = String::with_capacity(1024);
    for event in events {
        body.push_str("data: ");
        body.push_str(&event.to_string());
        body.push_str("\n\n");
    }
    body.push_str("data: [DONE]\n\n");
    let mut response = respond(StatusCode::OK, "text/event-stream", body);
    response
        .headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_classifier_schema_gets_its_first_category_and_a_bounded_confidence() {
        let schema = json!({"type": "object", "properties": {
            "category": {"type": "string", "enum": ["billing", "technical"]},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "reasoning": {"type": "string"}},
            "required": ["category", "confidence", "reasoning"]});
        assert_eq!(
            instance(&schema, &schema, 0),
            json!({"category": "billing", "confidence": 0.9, "reasoning": "ok"})
        );
    }

    #[test]
    fn refs_arrays_unions_and_bounds_are_followed() {
        let schema = json!({
        "$defs": {"Cat": {"enum": ["a", "b"]}},
        "type": "object",
        "properties": {
            "cats": {"type": "array", "items": {"$ref": "#/$defs/Cat"}, "minItems": 2},
            "maybe": {"anyOf": [{"type": "integer", "minimum": 5}, {"type": "null"}]},
            "low": {"type": "number", "maximum": 0.5},
            "flag": {"type": ["boolean", "null"]},
            "code": {"type": "string", "minLength": 5},
        }});
        assert_eq!(
            instance(&schema, &schema, 0),
            json!({"cats": ["a", "a"], "maybe": 5, "low": 0.5, "flag": true, "code": "okooo"})
        );
    }

    #[test]
    fn tool_calls_only_when_tools_are_offered_and_not_yet_answered() {
        let tools = json!([{"type": "function", "function": {"name": "tools_echo"}}]);
        let asked = json!({"messages": [{"role": "user", "content": "hi"}], "tools": tools});
        assert!(matches!(answer(&asked), Answer::Call("tools_echo")));
        let answered = json!({"messages": [{"role": "tool", "content": "hi"}], "tools": tools});
        assert!(matches!(answer(&answered), Answer::Text(t) if t == "done"));
        let no_tools = json!({"messages": [{"role": "user", "content": "hi"}]});
        assert!(matches!(answer(&no_tools), Answer::Text(t) if t == "done"));
        let structured = json!({"messages": [], "tools": tools, "response_format": {
            "type": "json_schema", "json_schema": {"name": "r", "schema": {"enum": ["x"]}}}});
        assert!(matches!(answer(&structured), Answer::Text(t) if t == "\"x\""));
    }
}
