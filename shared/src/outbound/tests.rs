//! The outbound module against loopback servers that speak HTTP/1.1 as RFC 9112 frames it
//! (`Content-Length` or `Transfer-Encoding: chunked` bodies) and redirect as RFC 9110 §15.4
//! describes (3xx with `Location`, relative or absolute).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

const KIB: usize = 1024;
/// Generous: these tests assert outcomes, and a loaded machine must not turn them into timeouts.
const LONG: Duration = Duration::from_secs(20);

/// A loopback server: each connection's request head is recorded, then `handler` answers.
struct Server {
    base: String,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Server {
    async fn start<F, Fut>(handler: F) -> Self
    where
        F: Fn(String, TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let heads = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&heads);
        let handler = Arc::new(handler);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (log, handler) = (Arc::clone(&log), Arc::clone(&handler));
                tokio::spawn(async move {
                    let head = read_head(&mut stream).await;
                    log.lock().unwrap().push(head.clone());
                    handler(head, stream).await;
                });
            }
        });
        Self { base, heads }
    }

    fn url(&self, path: &str) -> Url {
        Url::parse(&format!("{}{path}", self.base)).unwrap()
    }

    fn host(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

async fn answer(mut stream: TcpStream, status: &str, headers: &str, body: impl AsRef<str>) {
    let body = body.as_ref();
    let response = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
}

/// A chunked body of 64 KiB chunks, written until the client goes away; `written` counts them.
async fn endless(mut stream: TcpStream, written: Arc<AtomicUsize>) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\n\r\n";
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let chunk = format!("{:x}\r\n{}\r\n", 64 * KIB, " ".repeat(64 * KIB));
    while stream.write_all(chunk.as_bytes()).await.is_ok() {
        written.fetch_add(64 * KIB, Ordering::SeqCst);
    }
}

/// Headers, then `body`, then nothing (the connection stays open).
async fn stall_after(mut stream: TcpStream, headers: &str, body: &str) {
    let head = format!("HTTP/1.1 200 OK\r\n{headers}\r\n{body}");
    let _ = stream.write_all(head.as_bytes()).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
}

#[tokio::test]
async fn a_body_past_the_cap_stops_mid_stream() {
    let written = Arc::new(AtomicUsize::new(0));
    let ended = Arc::new(tokio::sync::Notify::new());
    let (counter, end) = (Arc::clone(&written), Arc::clone(&ended));
    let server = Server::start(move |_, s| {
        let (counter, end) = (Arc::clone(&counter), Arc::clone(&end));
        async move {
            endless(s, counter).await;
            end.notify_one();
        }
    })
    .await;
    let call = Call::new(LONG, 256 * KIB);
    let response = Request::get(server.url("/big")).send(&call).await.unwrap();
    let err = response.body_bytes().await.unwrap_err();
    assert!(matches!(err, OutboundError::TooLarge { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("response from {} exceeded 256 KiB", server.host())
    );
    // The connection was dropped: the server's writes fail long before it could send much.
    tokio::time::timeout(LONG, ended.notified())
        .await
        .expect("the server's writes end");
    let sent = written.load(Ordering::SeqCst);
    assert!(sent < 64 * 1024 * KIB, "{sent} bytes written");
}

#[tokio::test]
async fn a_declared_length_past_the_cap_fails_before_reading() {
    let server = Server::start(|_, s| stall_after(s, "Content-Length: 10485760\r\n", "")).await;
    let call = Call::new(LONG, 1024 * KIB);
    let response = Request::get(server.url("/")).send(&call).await.unwrap();
    let err = response.body_json::<Vec<u8>>().await.unwrap_err();
    assert!(matches!(err, OutboundError::TooLarge { limit, .. } if limit == 1024 * KIB));
    assert!(err.to_string().ends_with("exceeded 1 MiB"), "{err}");
}

#[tokio::test]
async fn the_deadline_covers_the_head_and_the_body() {
    let silent = Server::start(|_, stream| async move {
        let _open = stream;
        tokio::time::sleep(Duration::from_secs(60)).await;
    })
    .await;
    let call = Call::new(Duration::from_millis(300), KIB);
    let err = Request::get(silent.url("/")).send(&call).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("{} did not answer within 0.3 s", silent.host())
    );

    let half = Server::start(|_, s| stall_after(s, "Content-Length: 100\r\n", "{\"a\":")).await;
    let call = Call::new(Duration::from_millis(300), KIB);
    let response = Request::get(half.url("/")).send(&call).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let err = response.body_bytes().await.unwrap_err();
    assert!(matches!(err, OutboundError::TimedOut { .. }), "{err:?}");
}

#[tokio::test]
async fn redirects_are_answers_unless_the_call_follows_them() {
    let server = Server::start(|head, s| async move {
        if head.starts_with("GET /final") {
            answer(s, "200 OK", "", "final").await;
        } else {
            answer(s, "302 Found", "Location: /final\r\n", "").await;
        }
    })
    .await;
    let call = Call::new(LONG, KIB);
    let response = Request::get(server.url("/start"))
        .send(&call)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(server.heads().len(), 1, "not followed");

    let call = call.follow_redirects();
    let response = Request::get(server.url("/start"))
        .bearer("same-origin-token")
        .send(&call)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(&*response.body_bytes().await.unwrap(), b"final");
    let heads = server.heads();
    assert!(heads[2].starts_with("GET /final"), "{heads:?}");
    assert!(
        heads[2].to_lowercase().contains("authorization: bearer"),
        "same origin keeps the token: {heads:?}"
    );
}

#[tokio::test]
async fn a_redirect_to_another_origin_drops_the_credentials() {
    let other = Server::start(|_, s| answer(s, "200 OK", "", "elsewhere")).await;
    let target = other.url("/landing").to_string();
    let first = Server::start(move |_, s| {
        let location = format!("Location: {target}\r\n");
        async move { answer(s, "307 Temporary Redirect", &location, "").await }
    })
    .await;
    let call = Call::new(LONG, KIB).follow_redirects();
    let response = Request::post(first.url("/api"))
        .bearer("secret-token")
        .json(&serde_json::json!({"q": 1}))
        .send(&call)
        .await
        .unwrap();
    assert_eq!(&*response.body_bytes().await.unwrap(), b"elsewhere");
    let [head] = other.heads().try_into().unwrap();
    assert!(
        head.starts_with("POST /landing"),
        "307 keeps the method: {head}"
    );
    assert!(!head.to_lowercase().contains("authorization"), "{head}");
    assert!(!head.contains("secret-token"), "{head}");
}

#[tokio::test]
async fn too_many_redirects_are_refused() {
    let server = Server::start(|_, s| answer(s, "302 Found", "Location: /again\r\n", "")).await;
    let call = Call::new(LONG, KIB).follow_redirects();
    let err = Request::get(server.url("/")).send(&call).await.unwrap_err();
    assert!(matches!(err, OutboundError::Redirect { .. }), "{err:?}");
    assert_eq!(server.heads().len(), MAX_REDIRECTS + 1);
}

#[tokio::test]
async fn errors_name_the_host_never_userinfo_path_or_query() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = Url::parse(&format!(
        "http://alice:pa55word@127.0.0.1:{port}/v1/tok_path_secret?key=query_secret"
    ))
    .unwrap();
    let err = Request::get(url)
        .send(&Call::new(LONG, KIB))
        .await
        .unwrap_err();
    assert!(matches!(err, OutboundError::Connect { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("cannot connect to 127.0.0.1:{port}: ")),
        "{text}"
    );
    assert!(text.to_lowercase().contains("refused"), "{text}");
    for secret in [
        "alice",
        "pa55word",
        "tok_path_secret",
        "query_secret",
        "key=",
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
        assert!(!format!("{err:?}").contains(secret), "{secret} in {err:?}");
    }

    let server = Server::start(|_, s| answer(s, "200 OK", "", "not json")).await;
    let mut url = server.url("/v1/tok_path_secret?key=query_secret");
    url.set_password(Some("pa55word")).unwrap();
    let response = Request::get(url).send(&Call::new(LONG, KIB)).await.unwrap();
    let err = response.body_json::<Vec<u8>>().await.unwrap_err();
    assert!(matches!(err, OutboundError::Decode { .. }), "{err:?}");
    for secret in ["pa55word", "tok_path_secret", "query_secret"] {
        assert!(!err.to_string().contains(secret), "{err}");
    }
    // Basic authentication from the userinfo still reached the server.
    assert!(
        server.heads()[0]
            .to_lowercase()
            .contains("authorization: basic")
    );
}

#[tokio::test]
async fn bodies_hold_their_bytes_of_the_budget_until_dropped() {
    let body = "x".repeat(100 * KIB);
    let server = Server::start(move |head, s| {
        let body = body.clone();
        async move {
            if head.starts_with("GET /chunked") {
                let mut s = s;
                let framed = format!(
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(framed.as_bytes()).await;
            } else {
                answer(s, "200 OK", "", &body).await;
            }
        }
    })
    .await;
    let budget = ByteBudget::new(1024 * KIB);
    let call = Call::new(LONG, 512 * KIB).budget(&budget);
    for path in ["/length", "/chunked"] {
        let response = Request::get(server.url(path)).send(&call).await.unwrap();
        let body = response.body_bytes().await.unwrap();
        assert_eq!(body.len(), 100 * KIB);
        assert_eq!(budget.available(), (1024 - 100) * KIB, "{path}");
        drop(body);
        assert_eq!(budget.available(), 1024 * KIB, "{path}");
    }
}

#[tokio::test]
async fn a_full_budget_makes_a_read_busy_within_its_deadline() {
    let server = Server::start(|_, s| answer(s, "200 OK", "", "y".repeat(64 * KIB))).await;
    let budget = ByteBudget::new(64 * KIB);
    let call = Call::new(LONG, 64 * KIB).budget(&budget);
    let held = Request::get(server.url("/"))
        .send(&call)
        .await
        .unwrap()
        .body_bytes()
        .await
        .unwrap();
    let short = Call::new(Duration::from_millis(300), 64 * KIB).budget(&budget);
    let response = Request::get(server.url("/")).send(&short).await.unwrap();
    let err = response.body_bytes().await.unwrap_err();
    assert!(matches!(err, OutboundError::Busy { .. }), "{err:?}");
    drop(held);
    assert_eq!(budget.available(), 64 * KIB);
}

#[tokio::test]
async fn chunks_end_at_a_gap_and_at_the_cap() {
    let server =
        Server::start(|_, s| stall_after(s, "Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n"))
            .await;
    let call = Call::new(LONG, KIB);
    let response = Request::get(server.url("/")).send(&call).await.unwrap();
    let mut chunks = response.into_chunks(Duration::from_millis(300));
    assert_eq!(&chunks.next().await.unwrap().unwrap()[..], b"hello");
    let err = chunks.next().await.unwrap().unwrap_err();
    assert!(matches!(err, OutboundError::Stalled { .. }), "{err:?}");
    assert!(chunks.next().await.is_none());

    let written = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&written);
    let endless = Server::start(move |_, s| endless(s, Arc::clone(&counter))).await;
    let budget = ByteBudget::new(1024 * KIB);
    let call = Call::new(LONG, 512 * KIB).budget(&budget);
    let response = Request::get(endless.url("/")).send(&call).await.unwrap();
    let mut chunks = response.into_chunks(LONG);
    let mut read = 0;
    let err = loop {
        match chunks.next().await.unwrap() {
            Ok(chunk) => {
                read += chunk.len();
                // Only the chunk in hand is drawn from the budget.
                assert_eq!(budget.available(), 1024 * KIB - chunk.len());
            }
            Err(e) => break e,
        }
    };
    assert!(matches!(err, OutboundError::TooLarge { .. }), "{err:?}");
    assert!(read <= 512 * KIB, "{read}");
    drop(chunks);
    assert_eq!(budget.available(), 1024 * KIB);
}

#[tokio::test]
async fn json_decodes_into_the_callers_type() {
    #[derive(serde::Deserialize)]
    struct Answer {
        values: Vec<f32>,
    }
    let server = Server::start(|_, s| answer(s, "200 OK", "", r#"{"values":[1,2.5]}"#)).await;
    let call = Call::new(LONG, KIB);
    let response = Request::get(server.url("/")).send(&call).await.unwrap();
    let decoded: Answer = response.body_json().await.unwrap();
    assert_eq!(decoded.values, [1.0, 2.5]);

    let refused = Server::start(|_, s| answer(s, "503 Service Unavailable", "", "")).await;
    let response = Request::get(refused.url("/")).send(&call).await.unwrap();
    let err = response.error_for_status().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{} answered HTTP 503 Service Unavailable", refused.host())
    );
}

#[tokio::test]
async fn a_stream_can_shorten_its_gap_after_the_first_chunk() {
    let server =
        Server::start(|_, s| stall_after(s, "Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n"))
            .await;
    let call = Call::new(LONG, KIB);
    let response = Request::get(server.url("/")).send(&call).await.unwrap();
    let mut chunks = response.into_chunks(LONG);
    assert_eq!(chunks.host(), server.host());
    assert_eq!(&chunks.next().await.unwrap().unwrap()[..], b"hello");
    chunks.set_gap(Duration::from_millis(200));
    let err = chunks.next().await.unwrap().unwrap_err();
    match err {
        OutboundError::Stalled { gap, .. } => assert_eq!(gap, Duration::from_millis(200)),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_call_with_its_own_connect_timeout_gets_its_own_client_once() {
    // A port that was just free: the connection is refused, a connect error naming the host.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = Url::parse(&format!("http://{addr}/")).unwrap();
    let call = Call::new(LONG, KIB).connect_timeout(Duration::from_millis(1500));
    let err = Request::get(url.clone()).send(&call).await.unwrap_err();
    assert!(matches!(err, OutboundError::Connect { .. }), "{err:?}");
    assert_eq!(err.host(), addr.to_string());
    let _ = Request::get(url).send(&call).await;
    let clients = OTHER_CLIENTS.lock().unwrap();
    let same = clients
        .iter()
        .filter(|(t, _)| *t == Duration::from_millis(1500))
        .count();
    assert_eq!(same, 1);
}
