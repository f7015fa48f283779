//! The providers against loopback servers that reproduce each documented wire format: Ollama's
//! `/api/chat` NDJSON (ollama/ollama `docs/api.md`) and OpenAI's streamed chat completions
//! (server-sent events), errors included.

mod fake;
mod ollama;
mod openai;

use std::time::Duration;

use super::*;

/// Generous: these tests assert outcomes, and a loaded machine must not turn them into timeouts.
const LONG: Duration = Duration::from_secs(20);

/// Limits for tests: long waits, and quick retries unless a server asks for longer.
fn limits() -> CallLimits {
    CallLimits {
        total: Duration::from_secs(60),
        connect: LONG,
        first_token: LONG,
        gap: LONG,
        max_bytes: 1024 * 1024,
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(50),
        },
    }
}

fn user(text: &str) -> ChatRequest {
    ChatRequest {
        model: "m".into(),
        messages: vec![Message::User(text.into())],
        ..ChatRequest::default()
    }
}

/// Every event until the stream ends, and the error that ended it, if any.
async fn drain(stream: &mut ChatStream) -> (Vec<Event>, Option<LlmError>) {
    let mut events = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => events.push(event),
            Err(e) => return (events, Some(e)),
        }
    }
    (events, None)
}

fn text_of(events: &[Event]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn done_of(events: &[Event]) -> &Finish {
    match events.last() {
        Some(Event::Done(finish)) => finish,
        other => panic!("the last event is not Done: {other:?}"),
    }
}

fn calls_of(events: &[Event]) -> Vec<&ToolCall> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ToolCall(c) => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn endpoints_from_config_need_a_key_for_public_apis() {
    let env = crate::Env::from_pairs([(config::XAI_API_KEY, "xai-secret")]);
    let xai = Endpoint::from_config(Provider::Xai, None, None, &env).unwrap();
    assert_eq!(xai.base().as_str(), "https://api.x.ai/v1");
    assert!(xai.has_key() && !format!("{xai:?}").contains("xai-secret"));
    let e = Endpoint::from_config(Provider::OpenAi, None, None, &env).unwrap_err();
    assert_eq!(
        e.to_string(),
        "OPENAI_API_KEY=\"\": openai needs an API key; expected OPENAI_API_KEY or config.api_key"
    );
    let e = Endpoint::from_config(Provider::OpenAiCompatible, None, None, &env).unwrap_err();
    assert!(e.to_string().contains("has no default address"), "{e}");
    let vllm = Endpoint::from_config(
        Provider::OpenAiCompatible,
        Some("http://vllm:8000/v1"),
        None,
        &env,
    )
    .unwrap();
    assert_eq!(
        super::join(vllm.base(), "chat/completions").as_str(),
        "http://vllm:8000/v1/chat/completions"
    );
}
