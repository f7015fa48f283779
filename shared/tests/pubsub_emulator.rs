//! `aixrun::gcp::pubsub` against the real Pub/Sub emulator (`scripts/emulators.sh`): messages
//! published with [`PubSub::publish`], delivered by real push subscriptions (wrapped and
//! unwrapped) to a listener in the test, read with [`PushMessage::parse`]; a redelivery after
//! a refused push; malformed pushes. Topics and subscriptions are this test's own (created
//! through the emulator's REST API, deleted at the end).

mod emulator;

use std::time::{Duration, Instant};

use aixrun::gcp::pubsub::{ErrorKind, PubSub, PushError, PushMessage};
use aixrun::outbound::{Call, Method, Request, Url};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use tokio::sync::mpsc;

/// What the listener received on each path: the parsed push (or why not) and its path.
type Received = (String, Result<PushMessage, PushError>);

/// Each push is parsed and sent to the test; `/refuse-once` answers 503 to a message id's
/// first delivery, so Pub/Sub delivers it again.
async fn listen() -> (String, mpsc::UnboundedReceiver<Received>) {
    #[derive(Clone)]
    struct Shared {
        tx: mpsc::UnboundedSender<Received>,
        refused: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    }
    async fn push(
        State(s): State<Shared>,
        uri: axum::http::Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        let parsed = PushMessage::parse(&headers, &body);
        if uri.path() == "/refuse-once"
            && let Ok(m) = &parsed
        {
            let mut refused = s.refused.lock().unwrap();
            if !refused.contains(&m.message_id) {
                refused.push(m.message_id.clone());
                let _ = s.tx.send((format!("{} (refused)", uri.path()), parsed));
                return StatusCode::SERVICE_UNAVAILABLE;
            }
        }
        let _ = s.tx.send((uri.path().to_owned(), parsed));
        // A malformed push is acked (and would be logged): no retry can fix it.
        StatusCode::NO_CONTENT
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Shared {
        tx,
        refused: Default::default(),
    };
    let app = axum::Router::new()
        .fallback(axum::routing::post(push))
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), rx)
}

/// `METHOD http://$PUBSUB_EMULATOR_HOST/v1/{path}` with a JSON body, which must succeed.
async fn admin(method: Method, path: &str, body: serde_json::Value) {
    let host = std::env::var("PUBSUB_EMULATOR_HOST").unwrap();
    let url = Url::parse(&format!("http://{host}/v1/{path}")).unwrap();
    let call = Call::new(Duration::from_secs(10), 1 << 20);
    let response = Request::new(method.clone(), url)
        .json(&body)
        .send(&call)
        .await
        .unwrap();
    let status = response.status();
    let text = String::from_utf8_lossy(&response.body_bytes().await.unwrap()).into_owned();
    assert!(status.is_success(), "{method} {path}: {status} {text}");
}

/// A topic of this test's own, with push subscriptions to `endpoints` (`(name suffix, URL,
/// unwrapped)`); returns the topic and the subscriptions' names.
async fn topic_with_pushes(
    project: &str,
    endpoints: &[(&str, String, bool)],
) -> (String, Vec<String>) {
    let topic = emulator::unique("runs");
    admin(
        Method::PUT,
        &format!("projects/{project}/topics/{topic}"),
        serde_json::json!({}),
    )
    .await;
    let mut subscriptions = Vec::new();
    for (suffix, url, unwrapped) in endpoints {
        let name = format!("{topic}-{suffix}");
        let mut push = serde_json::json!({"pushEndpoint": url});
        if *unwrapped {
            push["noWrapper"] = serde_json::json!({"writeMetadata": true});
        }
        admin(
            Method::PUT,
            &format!("projects/{project}/subscriptions/{name}"),
            serde_json::json!({"topic": format!("projects/{project}/topics/{topic}"),
                               "pushConfig": push, "ackDeadlineSeconds": 10}),
        )
        .await;
        subscriptions.push(name);
    }
    (topic, subscriptions)
}

async fn clean_up(project: &str, topic: &str, subscriptions: &[String]) {
    for s in subscriptions {
        admin(
            Method::DELETE,
            &format!("projects/{project}/subscriptions/{s}"),
            serde_json::json!({}),
        )
        .await;
    }
    admin(
        Method::DELETE,
        &format!("projects/{project}/topics/{topic}"),
        serde_json::json!({}),
    )
    .await;
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("a push within 30 s")
        .expect("the listener runs")
}

#[test]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
fn a_published_message_is_pushed_wrapped_and_unwrapped() {
    emulator::block_on(async {
        let pubsub = PubSub::from_env(&emulator::env()).await.unwrap();
        assert!(pubsub.is_emulator());
        let project = pubsub.project().to_owned();
        let (base, mut rx) = listen().await;
        let endpoints = [
            ("wrapped", format!("{base}/wrapped"), false),
            ("raw", format!("{base}/raw"), true),
        ];
        let (topic, subscriptions) = topic_with_pushes(&project, &endpoints).await;

        let data = br#"{"run_id":"r1","spec":{"input":"hi"}}"#;
        let before = pubsub.round_trips();
        let id = pubsub
            .publish(&topic, data, &[("run_id", "r1"), ("Kind", "start")])
            .await
            .expect("published");
        assert_eq!(
            pubsub.round_trips() - before,
            1,
            "a publish is one round trip"
        );
        assert!(!id.is_empty());

        let mut got = [next(&mut rx).await, next(&mut rx).await];
        got.sort_by(|a, b| a.0.cmp(&b.0));
        let (raw_path, raw) = &got[0];
        let (wrapped_path, wrapped) = &got[1];
        assert_eq!(
            (raw_path.as_str(), wrapped_path.as_str()),
            ("/raw", "/wrapped")
        );

        let w = wrapped.as_ref().expect("a wrapped push parses");
        assert!(w.wrapped);
        assert_eq!(w.message_id, id);
        assert_eq!(w.data, data);
        assert_eq!(w.attribute("run_id"), Some("r1"));
        assert_eq!(w.attributes.get("Kind").map(String::as_str), Some("start"));
        assert_eq!(
            w.subscription.as_deref(),
            Some(format!("projects/{project}/subscriptions/{}", subscriptions[0]).as_str())
        );
        let published = w.publish_time.expect("a publish time");
        let age = time::OffsetDateTime::now_utc() - published;
        assert!(age < time::Duration::minutes(1), "{published}");

        let r = raw.as_ref().expect("an unwrapped push parses");
        assert!(!r.wrapped);
        assert_eq!(r.message_id, id);
        assert_eq!(r.data, data);
        assert_eq!(r.attribute("run_id"), Some("r1"));
        assert_eq!(
            r.attribute("Kind"),
            Some("start"),
            "header names arrive in lowercase"
        );
        assert_eq!(r.publish_time, w.publish_time);

        clean_up(&project, &topic, &subscriptions).await;
    })
}

#[test]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
fn a_refused_push_comes_again_with_the_same_message_id() {
    emulator::block_on(async {
        let pubsub = PubSub::from_env(&emulator::env()).await.unwrap();
        let project = pubsub.project().to_owned();
        let (base, mut rx) = listen().await;
        let endpoints = [("retry", format!("{base}/refuse-once"), false)];
        let (topic, subscriptions) = topic_with_pushes(&project, &endpoints).await;
        let id = pubsub.publish(&topic, b"work", &[]).await.unwrap();
        let started = Instant::now();
        let (first_path, first) = next(&mut rx).await;
        let (second_path, second) = next(&mut rx).await;
        assert_eq!(first_path, "/refuse-once (refused)");
        assert_eq!(second_path, "/refuse-once");
        assert_eq!(first.unwrap().message_id, id);
        assert_eq!(second.unwrap().message_id, id, "the key to deduplicate on");
        eprintln!("redelivered after {:?}", started.elapsed());
        clean_up(&project, &topic, &subscriptions).await;
    })
}

#[test]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
fn malformed_pushes_are_parse_errors_to_ack_and_log() {
    emulator::block_on(async {
        emulator::env();
        let (base, mut rx) = listen().await;
        // Sent as a push would be, over HTTP to the listener.
        let bodies = [
            serde_json::json!("not a push"),
            serde_json::json!({"subscription": "projects/p/subscriptions/s"}),
            serde_json::json!({"message": {"data": "aGk="}}),
            serde_json::json!({"message": {"messageId": "1", "data": "***"}}),
        ];
        for body in bodies {
            let call = Call::new(Duration::from_secs(5), 1024);
            let url = Url::parse(&format!("{base}/wrapped")).unwrap();
            let request = Request::post(url).json(&body);
            let response = request.send(&call).await.unwrap();
            assert_eq!(response.status().as_u16(), 204, "acked");
            let (_, parsed) = next(&mut rx).await;
            let e = parsed.unwrap_err();
            assert!(e.to_string().starts_with("malformed Pub/Sub push"), "{e}");
        }
    })
}

#[test]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
fn publishing_to_a_missing_topic_or_a_down_service_says_what_to_do() {
    emulator::block_on(async {
        let pubsub = PubSub::from_env(&emulator::env()).await.unwrap();
        let topic = emulator::unique("missing");
        let e = pubsub.publish(&topic, b"x", &[]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert!(e.to_string().contains("gcloud pubsub topics create"), "{e}");

        let closed = emulator::closed_port();
        let down = PubSub::from_env(&emulator::env_with(&[("PUBSUB_EMULATOR_HOST", &closed)]))
            .await
            .unwrap();
        let started = Instant::now();
        let e = down.publish("runs", b"x", &[]).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(
            e.to_string().starts_with("Pub/Sub publish projects/"),
            "{e}"
        );
    })
}
