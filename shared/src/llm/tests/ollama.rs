//! Ollama's native `/api/chat` as ollama/ollama `docs/api.md` (v0.32) documents it: NDJSON
//! lines `{model, created_at, message: {role, content, thinking?, tool_calls?}, done: false}`,
//! a final `done: true` line with `done_reason` and the token counts, tool calls whole with
//! arguments as objects (ids only from newer versions), HTTP errors `{"error": "..."}` with
//! 400/404/429/500/502/503, and after streaming began a final `{"error": "..."}` line.

use super::fake::{End, Fake, Reply};
use super::*;

const NDJSON: &str = "application/x-ndjson";

fn line(content: &str) -> String {
    format!(
        "{{\"model\":\"qwen3:0.6b\",\"created_at\":\"2026-08-01T10:00:00.000000Z\",\"message\":{{\"role\":\"assistant\",\"content\":{}}},\"done\":false}}\n",
        serde_json::to_string(content).unwrap()
    )
}

fn done(reason: &str) -> String {
    format!(
        "{{\"model\":\"qwen3:0.6b\",\"created_at\":\"2026-08-01T10:00:01.000000Z\",\"message\":{{\"role\":\"assistant\",\"content\":\"\"}},\"done\":true,\"done_reason\":\"{reason}\",\"total_duration\":4883583458,\"load_duration\":1334875,\"prompt_eval_count\":26,\"prompt_eval_duration\":342546000,\"eval_count\":3,\"eval_duration\":4535599000}}\n"
    )
}

fn stream(parts: Vec<String>, end: End) -> Reply {
    Reply::Stream {
        content_type: NDJSON,
        parts,
        end,
    }
}

fn error(status: &'static str, headers: &str, message: &str) -> Reply {
    Reply::Whole {
        status,
        headers: headers.to_owned(),
        body: serde_json::json!({ "error": message }).to_string(),
    }
}

fn endpoint(fake: &Fake) -> Endpoint {
    Endpoint::new(Provider::Ollama, fake.url(), None)
}

#[tokio::test]
async fn text_streams_and_the_final_line_gives_reason_usage_and_model() {
    // One line split across two chunks, as TCP may deliver it.
    let split = line("lo");
    let (a, b) = split.split_at(20);
    let fake = Fake::start(vec![stream(
        vec![
            line("Hel"),
            a.to_owned(),
            b.to_owned(),
            line("!"),
            done("stop"),
        ],
        End::Complete,
    )])
    .await;
    let mut request = user("hi");
    request
        .messages
        .insert(0, Message::System("be brief".into()));
    request.tools = vec![ToolSpec {
        name: "echo".into(),
        description: "Echoes".into(),
        parameters: serde_json::json!({"type": "object"}),
    }];
    request.output_schema = Some(OutputSchema {
        name: "answer".into(),
        schema: serde_json::json!({"type": "object"}),
    });
    request.options = Options {
        temperature: Some(0.5),
        max_output_tokens: Some(64),
        seed: Some(7),
    };
    request.ollama = OllamaOptions {
        keep_alive: Some(KeepAlive::For(Duration::from_secs(300))),
        think: Some(Think::Low),
    };
    let mut s = endpoint(&fake).chat(&request, &limits()).await.unwrap();
    let (events, err) = drain(&mut s).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text_of(&events), "Hello!");
    let finish = done_of(&events);
    assert_eq!(finish.reason, FinishReason::Stop);
    assert_eq!(
        finish.usage,
        Usage {
            input_tokens: Some(26),
            output_tokens: Some(3)
        }
    );
    assert_eq!(finish.model.as_deref(), Some("qwen3:0.6b"));
    assert!(s.next().await.is_none());

    let sent = &fake.requests()[0];
    assert!(
        sent.head.starts_with("POST /api/chat HTTP/1.1"),
        "{}",
        sent.head
    );
    let b = &sent.body;
    assert_eq!(b["model"], "m");
    assert_eq!(b["stream"], true);
    assert_eq!(
        b["messages"][0],
        serde_json::json!({"role": "system", "content": "be brief"})
    );
    assert_eq!(b["tools"][0]["type"], "function");
    assert_eq!(b["tools"][0]["function"]["name"], "echo");
    assert_eq!(b["format"], serde_json::json!({"type": "object"}));
    assert_eq!(
        b["options"],
        serde_json::json!({"temperature": 0.5, "num_predict": 64, "seed": 7})
    );
    assert_eq!(b["keep_alive"], 300.0);
    assert_eq!(b["think"], "low");
}

#[tokio::test]
async fn thinking_and_tool_calls_without_ids_get_ids_of_their_own() {
    let calls = r#"{"model":"qwen3:0.6b","created_at":"2026-08-01T10:00:00Z","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Paris"}}},{"function":{"name":"echo","arguments":{"text":"hi"}}}]},"done":false}"#;
    let with_id = r#"{"model":"qwen3:0.6b","created_at":"2026-08-01T10:00:00Z","message":{"role":"assistant","content":"","tool_calls":[{"id":"call_abcd1234","function":{"index":2,"name":"echo","arguments":{}}}]},"done":false}"#;
    let thinking = r#"{"model":"qwen3:0.6b","created_at":"2026-08-01T10:00:00Z","message":{"role":"assistant","content":"","thinking":"Paris? "},"done":false}"#;
    let fake = Fake::start(vec![stream(
        vec![
            format!("{thinking}\n"),
            format!("{calls}\n"),
            format!("{with_id}\n"),
            done("stop"),
        ],
        End::Complete,
    )])
    .await;
    let mut request = user("weather?");
    request.messages.push(Message::Assistant {
        content: String::new(),
        tool_calls: vec![ToolCall {
            id: "call_1".into(),
            name: "echo".into(),
            arguments: Arguments::Json(serde_json::json!({"text": "x"})),
        }],
    });
    request.messages.push(Message::Tool {
        call_id: "call_1".into(),
        name: "echo".into(),
        content: "x".into(),
    });
    let mut s = endpoint(&fake).chat(&request, &limits()).await.unwrap();
    let (events, err) = drain(&mut s).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(events[0], Event::Thinking("Paris? ".into()));
    let calls = calls_of(&events);
    assert_eq!(calls.len(), 3);
    assert_eq!(
        (calls[0].id.as_str(), calls[0].name.as_str()),
        ("call_1", "get_weather")
    );
    assert_eq!(
        calls[0].arguments,
        Arguments::Json(serde_json::json!({"city": "Paris"}))
    );
    assert_eq!(calls[1].id, "call_2");
    assert_eq!(calls[2].id, "call_abcd1234");
    // Ollama says `stop` after tool calls; the neutral reason says what the caller must do.
    assert_eq!(done_of(&events).reason, FinishReason::ToolCalls);

    let sent = &fake.requests()[0].body;
    assert_eq!(
        sent["messages"][1]["tool_calls"][0]["function"]["arguments"],
        serde_json::json!({"text": "x"})
    );
    assert_eq!(
        sent["messages"][2],
        serde_json::json!({"role": "tool", "content": "x", "tool_name": "echo", "tool_call_id": "call_1"})
    );
}

#[tokio::test]
async fn an_error_line_after_streaming_began_is_an_error_event() {
    let fake = Fake::start(vec![stream(
        vec![
            line("Once"),
            "{\"error\":\"an error was encountered while running the model: unexpected EOF\"}\n"
                .into(),
        ],
        End::Complete,
    )])
    .await;
    let mut s = endpoint(&fake)
        .chat(&user("story"), &limits())
        .await
        .unwrap();
    let (events, err) = drain(&mut s).await;
    assert_eq!(text_of(&events), "Once");
    let err = err.unwrap();
    assert!(matches!(err, LlmError::Model { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{} reported an error in the middle of its answer: an error was encountered while running the model: unexpected EOF",
            fake.host()
        )
    );
    assert!(s.next().await.is_none());
}

#[tokio::test]
async fn an_unknown_model_says_to_pull_it() {
    let fake = Fake::start(vec![error(
        "404 Not Found",
        "",
        "model \"qwen3:0.6b\" not found, try pulling it first",
    )])
    .await;
    let mut request = user("hi");
    request.model = "qwen3:0.6b".into();
    let err = endpoint(&fake).chat(&request, &limits()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{} has no model qwen3:0.6b: run `ollama pull qwen3:0.6b` on it",
            fake.host()
        )
    );
    assert_eq!(fake.requests().len(), 1, "a 404 is not retried");
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_then_succeeds() {
    let fake = Fake::start(vec![
        error("429 Too Many Requests", "Retry-After: 1\r\n", "server busy"),
        stream(vec![line("ok"), done("stop")], End::Complete),
    ])
    .await;
    let mut s = endpoint(&fake).chat(&user("hi"), &limits()).await.unwrap();
    let (events, err) = drain(&mut s).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text_of(&events), "ok");
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn a_503_is_retried_until_the_attempts_run_out() {
    let fake = Fake::start(vec![error(
        "503 Service Unavailable",
        "",
        "server overloaded, please try again later",
    )])
    .await;
    let err = endpoint(&fake)
        .chat(&user("hi"), &limits())
        .await
        .unwrap_err();
    assert_eq!(fake.requests().len(), 3, "max_attempts");
    assert_eq!(
        err.to_string(),
        format!(
            "{} answered HTTP 503: server overloaded, please try again later",
            fake.host()
        )
    );
}

#[tokio::test]
async fn a_400_or_a_500_is_not_retried() {
    for (status, message) in [
        (
            "400 Bad Request",
            "\"qwen2:0.5b\" does not support thinking",
        ),
        (
            "500 Internal Server Error",
            "llama runner process has terminated",
        ),
    ] {
        let fake = Fake::start(vec![error(status, "", message)]).await;
        let err = endpoint(&fake)
            .chat(&user("hi"), &limits())
            .await
            .unwrap_err();
        assert_eq!(fake.requests().len(), 1);
        let code = &status[..3];
        assert_eq!(
            err.to_string(),
            format!("{} answered HTTP {code}: {message}", fake.host())
        );
    }
}

#[tokio::test]
async fn a_stall_past_the_gap_and_silence_past_the_first_token_timeout() {
    let fake = Fake::start(vec![stream(vec![line("Hel")], End::Hold)]).await;
    let short_gap = CallLimits {
        gap: Duration::from_millis(200),
        ..limits()
    };
    let mut s = endpoint(&fake).chat(&user("hi"), &short_gap).await.unwrap();
    let (events, err) = drain(&mut s).await;
    assert_eq!(text_of(&events), "Hel");
    let err = err.unwrap();
    assert!(matches!(err, LlmError::Stalled { .. }), "{err:?}");

    // Ollama sends no headers while it loads the model: that wait is the first token's.
    let loading = Fake::start(vec![Reply::Silent]).await;
    let short_first = CallLimits {
        first_token: Duration::from_millis(200),
        ..limits()
    };
    let err = endpoint(&loading)
        .chat(&user("hi"), &short_first)
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::NoFirstToken { .. }), "{err:?}");
    // Headers at once but no token is the same failure.
    let empty = Fake::start(vec![stream(vec![], End::Hold)]).await;
    let mut s = endpoint(&empty)
        .chat(&user("hi"), &short_first)
        .await
        .unwrap();
    let err = s.next().await.unwrap().unwrap_err();
    assert!(matches!(err, LlmError::NoFirstToken { .. }), "{err:?}");
}

#[tokio::test]
async fn a_server_that_closes_mid_stream_interrupts_the_answer() {
    for end in [End::Cut, End::Complete] {
        let fake = Fake::start(vec![stream(vec![line("Hel")], end)]).await;
        let mut s = endpoint(&fake).chat(&user("hi"), &limits()).await.unwrap();
        let (events, err) = drain(&mut s).await;
        assert_eq!(text_of(&events), "Hel");
        let err = err.unwrap();
        assert!(
            matches!(err, LlmError::Interrupted { .. }),
            "{end:?}: {err:?}"
        );
    }
}

#[tokio::test]
async fn a_line_that_is_not_json_is_a_protocol_error_naming_it() {
    let fake = Fake::start(vec![stream(
        vec![line("a"), "<html>502 Bad Gateway</html>\n".into()],
        End::Complete,
    )])
    .await;
    let mut s = endpoint(&fake).chat(&user("hi"), &limits()).await.unwrap();
    let (_, err) = drain(&mut s).await;
    let err = err.unwrap().to_string();
    assert!(err.contains("line 2 is not an Ollama chat object"), "{err}");
}

#[tokio::test]
async fn dropping_the_stream_closes_the_connection() {
    let fake = Fake::start(vec![stream(vec![line("Hel")], End::Hold)]).await;
    let mut s = endpoint(&fake).chat(&user("hi"), &limits()).await.unwrap();
    assert_eq!(s.next().await.unwrap().unwrap(), Event::Text("Hel".into()));
    drop(s);
    tokio::time::timeout(LONG, fake.disconnected())
        .await
        .expect("the server saw the client go away");
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_named() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = Url::parse(&format!("http://{addr}")).unwrap();
    let err = Endpoint::new(Provider::Ollama, url, None)
        .chat(&user("hi"), &limits())
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot connect to {addr}")),
        "{err}"
    );
}

#[test]
fn tool_choice_becomes_the_tools_offered_since_api_chat_has_no_such_field() {
    let spec = |name: &str| ToolSpec {
        name: name.into(),
        description: String::new(),
        parameters: serde_json::json!({"type": "object"}),
    };
    let names = |choice: Option<ToolChoice>| {
        let request = ChatRequest {
            tools: vec![spec("echo"), spec("get_weather")],
            tool_choice: choice,
            ..user("hi")
        };
        let body = crate::llm::ollama::body(&request);
        assert!(body.get("tool_choice").is_none(), "{body}");
        body.get("tools").map_or_else(Vec::new, |tools| {
            tools
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["function"]["name"].as_str().unwrap().to_owned())
                .collect()
        })
    };
    assert_eq!(names(None), ["echo", "get_weather"]);
    assert_eq!(names(Some(ToolChoice::Auto)), ["echo", "get_weather"]);
    assert_eq!(names(Some(ToolChoice::Required)), ["echo", "get_weather"]);
    assert_eq!(names(Some(ToolChoice::None)), Vec::<String>::new());
    assert_eq!(
        names(Some(ToolChoice::Tool("get_weather".into()))),
        ["get_weather"]
    );
}
