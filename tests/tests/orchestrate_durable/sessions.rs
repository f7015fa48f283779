//! A conversation of three turns, each on `POST /v1/run` with a `session_id`, alternating
//! between two instances: the model checks that each request carries the earlier turns.

use super::*;

/// The user and assistant messages of a chat request after the system prompt, as
/// `(role, content)`.
fn conversation(request: &Value) -> Vec<(String, String)> {
    request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "user" || m["role"] == "assistant")
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Answers the `n`th question with `answer n` after checking that the request holds every
/// earlier question and answer in order; any other request gets a 500 saying what it lacked,
/// which fails the run.
fn remembering_model() -> FakeModel {
    FakeModel::openai_responder(Responder::new(|request| {
        let seen = conversation(request);
        let n = seen.len() / 2 + 1;
        let mut expected = Vec::new();
        for k in 1..n {
            expected.push(("user".to_owned(), format!("question {k}")));
            expected.push(("assistant".to_owned(), format!("answer {k}")));
        }
        expected.push(("user".to_owned(), format!("question {n}")));
        if seen == expected {
            Reply::text(&format!("answer {n}"))
        } else {
            Reply::Error(
                500,
                format!("expected {expected:?}, saw {seen:?}"),
                Vec::new(),
            )
        }
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
async fn a_session_of_three_turns_shows_the_model_the_earlier_turns_on_any_instance() {
    emulators();
    let model = remembering_model();
    let dir = TempDir::new();
    let yaml = agent_yaml(&model, None, "");
    let (a, b) = (instance(&dir, &yaml, &[]), instance(&dir, &yaml, &[]));
    let session = unique("session");
    for (n, app) in [(1, &a), (2, &b), (3, &a)] {
        let (status, result) = call(
            app,
            "POST",
            "/v1/run",
            Some(json!({"input": format!("question {n}"), "session_id": session})),
        )
        .await;
        assert_eq!(status, 200, "{result}");
        assert_eq!(result["status"], "completed", "turn {n}: {result}");
        assert_eq!(result["output"], format!("answer {n}"), "{result}");
    }
    assert_eq!(model.requests().len(), 3);
    let (status, s) = call(&b, "GET", &format!("/v1/sessions/{session}"), None).await;
    assert_eq!(status, 200, "{s}");
    let turns: Vec<(&str, &str)> = s["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["input"].as_str().unwrap(), t["output"].as_str().unwrap()))
        .collect();
    assert_eq!(
        turns,
        [
            ("question 1", "answer 1"),
            ("question 2", "answer 2"),
            ("question 3", "answer 3")
        ]
    );
    assert!(s.get("active_run").is_none(), "{s}");
    let (status, runs) = call(&a, "GET", &format!("/v1/runs?session_id={session}"), None).await;
    assert_eq!(status, 200, "{runs}");
    assert_eq!(runs["runs"].as_array().unwrap().len(), 3, "{runs}");
    let (status, _) = call(&a, "DELETE", &format!("/v1/sessions/{session}"), None).await;
    assert_eq!(status, 204);
    let (status, body) = call(&b, "GET", &format!("/v1/sessions/{session}"), None).await;
    assert_eq!(status, 404, "{body}");
}
