//! OpenAI's streamed chat completions as its API reference documents them (and xAI, Hugging
//! Face's router, vLLM, llama.cpp's server and Ollama's `/v1` reproduce them): `data: <chunk>`
//! events separated by blank lines, ending `data: [DONE]`; tool calls as
//! `delta.tool_calls[] = {index, id?, type?, function: {name?, arguments?}}` fragments (or one
//! whole call per delta, as Ollama's `/v1` and xAI send); the usage in an extra chunk with
//! `choices: []`; error bodies `{"error": {"message", "type", "param", "code"}}` and, mid-stream,
//! a `data:` payload with an `error` key.

use serde_json::json;

use super::fake::{End, Fake, Reply};
use super::*;

const SSE: &str = "text/event-stream";
const KEY: &str = "sk-test-0123456789abcdef";

fn chunk(choices: serde_json::Value) -> String {
    let c = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
        "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_1", "choices": choices});
    format!("data: {c}\n\n")
}

fn delta(delta: serde_json::Value, finish: Option<&str>) -> String {
    chunk(json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]))
}

fn usage() -> String {
    let c = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
        "model": "gpt-4o-mini-2024-07-18", "choices": [],
        "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29}});
    format!("data: {c}\n\n")
}

const DONE: &str = "data: [DONE]\n\n";

fn stream(parts: Vec<String>, end: End) -> Reply {
    Reply::Stream {
        content_type: SSE,
        parts,
        end,
    }
}

fn endpoint(fake: &Fake, provider: Provider) -> Endpoint {
    Endpoint::new(provider, fake.url_at("/v1"), Some(ApiKey::new(KEY)))
}

#[tokio::test]
async fn text_streams_with_the_usage_chunk_and_the_request_is_openais() {
    let fake = Fake::start(vec![stream(
        vec![
            delta(json!({"role": "assistant", "content": ""}), None),
            delta(json!({"content": "Hello"}), None),
            // Two events in one chunk, with CRLF line ends, which SSE allows.
            delta(json!({"content": " there"}), None).replace('\n', "\r\n")
                + &delta(json!({}), Some("stop")),
            usage(),
            DONE.into(),
        ],
        End::Complete,
    )])
    .await;
    let mut request = user("hi");
    request.output_schema = Some(OutputSchema {
        name: "answer".into(),
        schema: json!({"type": "object"}),
    });
    request.options.max_output_tokens = Some(100);
    request.options.seed = Some(1);
    let mut s = endpoint(&fake, Provider::OpenAi)
        .chat(&request, &limits())
        .await
        .unwrap();
    let (events, err) = drain(&mut s).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text_of(&events), "Hello there");
    let finish = done_of(&events);
    assert_eq!(finish.reason, FinishReason::Stop);
    assert_eq!(
        finish.usage,
        Usage {
            input_tokens: Some(19),
            output_tokens: Some(10)
        }
    );
    assert_eq!(finish.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));

    let sent = &fake.requests()[0];
    assert!(
        sent.head.starts_with("POST /v1/chat/completions HTTP/1.1"),
        "{}",
        sent.head
    );
    assert!(
        sent.head.contains(&format!("authorization: Bearer {KEY}")),
        "{}",
        sent.head
    );
    let b = &sent.body;
    assert_eq!(b["stream"], true);
    assert_eq!(b["stream_options"], json!({"include_usage": true}));
    assert_eq!(
        b["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": true}})
    );
    // OpenAI's own API gets only max_completion_tokens.
    assert_eq!(b["max_completion_tokens"], 100);
    assert!(b.get("max_tokens").is_none());
    assert_eq!(b["seed"], 1);
}

#[tokio::test]
async fn other_servers_get_max_tokens_too() {
    let fake = Fake::start(vec![stream(
        vec![delta(json!({"content": "x"}), Some("length")), DONE.into()],
        End::Complete,
    )])
    .await;
    let mut request = user("hi");
    request.options.max_output_tokens = Some(5);
    let mut s = endpoint(&fake, Provider::OpenAiCompatible)
        .chat(&request, &limits())
        .await
        .unwrap();
    let (events, _) = drain(&mut s).await;
    // No usage chunk: the usage is unknown, not zero.
    assert_eq!(done_of(&events).reason, FinishReason::Length);
    assert_eq!(done_of(&events).usage, Usage::default());
    let b = &fake.requests()[0].body;
    assert_eq!(
        (
            b["max_completion_tokens"].as_u64(),
            b["max_tokens"].as_u64()
        ),
        (Some(5), Some(5))
    );
}

#[tokio::test]
async fn tool_call_fragments_are_merged_by_index_even_interleaved() {
    let call = |index: u32, id: Option<&str>, name: Option<&str>, args: &str| {
        let mut function = json!({"arguments": args});
        if let Some(n) = name {
            function["name"] = n.into();
        }
        let mut c = json!({"index": index, "function": function});
        if let Some(id) = id {
            c["id"] = id.into();
            c["type"] = "function".into();
        }
        delta(json!({"tool_calls": [c]}), None)
    };
    let fake = Fake::start(vec![stream(
        vec![
            delta(json!({"role": "assistant", "content": null}), None),
            call(0, Some("call_A"), Some("get_weather"), ""),
            call(1, Some("call_B"), Some("echo"), "{\"te"),
            call(0, None, None, "{\"city\":"),
            call(1, None, None, "xt\":\"hi\"}"),
            call(0, None, None, "\"Paris\"}"),
            delta(json!({}), Some("tool_calls")),
            usage(),
            DONE.into(),
        ],
        End::Complete,
    )])
    .await;
    let mut s = endpoint(&fake, Provider::Xai)
        .chat(&user("w"), &limits())
        .await
        .unwrap();
    let (events, err) = drain(&mut s).await;
    assert!(err.is_none(), "{err:?}");
    let calls = calls_of(&events);
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (calls[0].id.as_str(), calls[0].name.as_str()),
        ("call_A", "get_weather")
    );
    assert_eq!(
        calls[0].arguments,
        Arguments::Json(json!({"city": "Paris"}))
    );
    assert_eq!(
        (calls[1].id.as_str(), calls[1].name.as_str()),
        ("call_B", "echo")
    );
    assert_eq!(calls[1].arguments, Arguments::Json(json!({"text": "hi"})));
    assert_eq!(done_of(&events).reason, FinishReason::ToolCalls);
}

#[tokio::test]
async fn whole_calls_in_one_delta_and_invalid_arguments_are_kept() {
    // Ollama's /v1: each call whole, ids of its own, `finish_reason` "stop" after tool calls.
    let whole = json!({"tool_calls": [
        {"id": "call_x1", "index": 0, "type": "function",
         "function": {"name": "echo", "arguments": "{\"text\":\"a\"}"}},
        {"type": "function", "function": {"name": "get_weather", "arguments": "{city: Paris"}}
    ]});
    let fake = Fake::start(vec![stream(
        vec![
            delta(whole, None),
            delta(json!({}), Some("stop")),
            DONE.into(),
        ],
        End::Complete,
    )])
    .await;
    let mut s = endpoint(&fake, Provider::OpenAiCompatible)
        .chat(&user("w"), &limits())
        .await
        .unwrap();
    let (events, err) = drain(&mut s).await;
    assert!(err.is_none(), "{err:?}");
    let calls = calls_of(&events);
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].id, "call_x1");
    assert_eq!(calls[1].id, "call_2");
    match &calls[1].arguments {
        Arguments::Invalid { raw, error } => {
            assert_eq!(raw, "{city: Paris");
            assert!(error.contains("line 1 column 2"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(done_of(&events).reason, FinishReason::ToolCalls);

    // What the caller sends back: the arguments as text, the raw text when it was invalid.
    let mut request = user("w");
    request.messages.push(Message::Assistant {
        content: String::new(),
        tool_calls: calls.into_iter().cloned().collect(),
    });
    let body = super::super::openai::body(&request, super::super::openai::MaxTokens::Both);
    let sent = &body["messages"][1];
    assert_eq!(sent["content"], serde_json::Value::Null);
    assert_eq!(
        sent["tool_calls"][0]["function"]["arguments"],
        "{\"text\":\"a\"}"
    );
    assert_eq!(
        sent["tool_calls"][1]["function"]["arguments"],
        "{city: Paris"
    );
}

#[tokio::test]
async fn a_mid_stream_error_payload_is_an_error_event() {
    // vLLM: the error as a data payload, then [DONE].
    let error = json!({"error": {"message": "The model ran out of KV cache", "type": "InternalServerError", "param": null, "code": 500}});
    let fake = Fake::start(vec![stream(
        vec![
            delta(json!({"content": "Part"}), None),
            format!("data: {error}\n\n"),
            DONE.into(),
        ],
        End::Complete,
    )])
    .await;
    let mut s = endpoint(&fake, Provider::OpenAiCompatible)
        .chat(&user("w"), &limits())
        .await
        .unwrap();
    let (events, err) = drain(&mut s).await;
    assert_eq!(text_of(&events), "Part");
    assert_eq!(
        err.unwrap().to_string(),
        format!(
            "{} reported an error in the middle of its answer: The model ran out of KV cache (500)",
            fake.host()
        )
    );
}

#[tokio::test]
async fn an_error_body_is_quoted_with_its_code_and_never_the_key() {
    let body = json!({"error": {"message": format!("Incorrect API key provided: {KEY}."),
        "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}});
    let fake = Fake::start(vec![Reply::Whole {
        status: "401 Unauthorized",
        headers: String::new(),
        body: body.to_string(),
    }])
    .await;
    let ep = endpoint(&fake, Provider::OpenAi);
    let err = ep.chat(&user("w"), &limits()).await.unwrap_err();
    assert_eq!(fake.requests().len(), 1, "a 401 is not retried");
    let line = err.to_string();
    assert_eq!(
        line,
        format!(
            "{} answered HTTP 401: Incorrect API key provided: ***. (invalid_api_key)",
            fake.host()
        )
    );
    assert!(!format!("{err:?} {ep:?}").contains(KEY));
}

#[tokio::test]
async fn a_429_with_retry_after_ms_is_retried_then_succeeds() {
    let limited = json!({"error": {"message": "Rate limit reached for requests", "type": "requests", "param": null, "code": "rate_limit_exceeded"}});
    let fake = Fake::start(vec![
        Reply::Whole {
            status: "429 Too Many Requests",
            headers: "retry-after-ms: 50\r\nx-ratelimit-remaining-requests: 0\r\n".into(),
            body: limited.to_string(),
        },
        stream(
            vec![
                delta(json!({"content": "ok"}), Some("stop")),
                usage(),
                DONE.into(),
            ],
            End::Complete,
        ),
    ])
    .await;
    let mut s = endpoint(&fake, Provider::OpenAi)
        .chat(&user("w"), &limits())
        .await
        .unwrap();
    let (events, err) = drain(&mut s).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text_of(&events), "ok");
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn sse_comments_and_other_fields_are_ignored_but_a_bad_data_payload_is_not() {
    let fake = Fake::start(vec![stream(
        vec![
            ": ping\n\n".into(),
            "event: message\nid: 7\nretry: 1000\nnonsense without a colon\n".into(),
            delta(json!({"content": "fine"}), Some("stop")),
            DONE.into(),
        ],
        End::Complete,
    )])
    .await;
    let mut s = endpoint(&fake, Provider::OpenAi)
        .chat(&user("w"), &limits())
        .await
        .unwrap();
    let (events, err) = drain(&mut s).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text_of(&events), "fine");

    let bad = Fake::start(vec![stream(
        vec!["data: {not json\n\n".into()],
        End::Complete,
    )])
    .await;
    let mut s = endpoint(&bad, Provider::OpenAi)
        .chat(&user("w"), &limits())
        .await
        .unwrap();
    let (_, err) = drain(&mut s).await;
    let err = err.unwrap().to_string();
    assert!(
        err.contains("line 1 is not a chat completion chunk"),
        "{err}"
    );
}

#[tokio::test]
async fn a_stream_cut_before_finish_is_interrupted_and_one_cut_after_finish_is_whole() {
    let cut = Fake::start(vec![stream(
        vec![delta(json!({"content": "Hal"}), None)],
        End::Cut,
    )])
    .await;
    let mut s = endpoint(&cut, Provider::OpenAi)
        .chat(&user("w"), &limits())
        .await
        .unwrap();
    let (_, err) = drain(&mut s).await;
    assert!(matches!(err, Some(LlmError::Interrupted { .. })), "{err:?}");

    // Ollama's /v1 ends some streams without [DONE]: the finished choice is the answer.
    let no_done = Fake::start(vec![stream(
        vec![delta(json!({"content": "ok"}), Some("stop"))],
        End::Complete,
    )])
    .await;
    let mut s = endpoint(&no_done, Provider::OpenAiCompatible)
        .chat(&user("w"), &limits())
        .await
        .unwrap();
    let (events, err) = drain(&mut s).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(done_of(&events).reason, FinishReason::Stop);
}

#[tokio::test]
async fn dropping_the_stream_closes_the_connection() {
    let fake = Fake::start(vec![stream(
        vec![delta(json!({"content": "a"}), None)],
        End::Hold,
    )])
    .await;
    let mut s = endpoint(&fake, Provider::OpenAi)
        .chat(&user("w"), &limits())
        .await
        .unwrap();
    assert_eq!(s.next().await.unwrap().unwrap(), Event::Text("a".into()));
    drop(s);
    tokio::time::timeout(LONG, fake.disconnected())
        .await
        .expect("the server saw the client go away");
}

#[test]
fn tool_choice_is_sent_as_openai_documents_it_and_only_with_tools() {
    let tools = vec![ToolSpec {
        name: "get_weather".into(),
        description: "The weather".into(),
        parameters: json!({"type": "object"}),
    }];
    let body = |choice: Option<ToolChoice>, tools: &[ToolSpec]| {
        let request = ChatRequest {
            tools: tools.to_vec(),
            tool_choice: choice,
            ..user("hi")
        };
        crate::llm::openai::body(&request, crate::llm::openai::MaxTokens::Both)
    };
    assert!(body(None, &tools).get("tool_choice").is_none());
    assert_eq!(body(Some(ToolChoice::Auto), &tools)["tool_choice"], "auto");
    assert_eq!(
        body(Some(ToolChoice::Required), &tools)["tool_choice"],
        "required"
    );
    assert_eq!(body(Some(ToolChoice::None), &tools)["tool_choice"], "none");
    assert_eq!(
        body(Some(ToolChoice::parse("get_weather")), &tools)["tool_choice"],
        json!({"type": "function", "function": {"name": "get_weather"}})
    );
    // Without tools, a tool_choice is an error for OpenAI: it is left out.
    assert!(
        body(Some(ToolChoice::Required), &[])
            .get("tool_choice")
            .is_none()
    );
}
