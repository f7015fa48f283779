//! The access token on Google Cloud: fetched from the metadata server once and kept, fetched
//! again after the API refuses it (401) with the request sent once more, and never shown in an
//! error. A loopback server plays both the metadata server (its wire form: the
//! `Metadata-Flavor: Google` header both ways) and the API.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;

use super::*;

#[derive(Clone, Default)]
struct Counts {
    tokens: Arc<AtomicU32>,
    calls: Arc<AtomicU32>,
}

/// Tokens `tok-1`, `tok-2`, ... from the metadata path; the API refuses `tok-1` and accepts any
/// other, answering the bearer it saw.
async fn server() -> (String, Counts) {
    let counts = Counts::default();
    let c = counts.clone();
    let token = move |headers: HeaderMap| {
        let c = c.clone();
        async move {
            if headers.get("metadata-flavor").is_none_or(|v| v != "Google") {
                return StatusCode::FORBIDDEN.into_response();
            }
            let n = c.tokens.fetch_add(1, Ordering::SeqCst) + 1;
            let body =
                format!(r#"{{"access_token":"tok-{n}","expires_in":3599,"token_type":"Bearer"}}"#);
            ([("metadata-flavor", "Google")], body).into_response()
        }
    };
    let c = counts.clone();
    let api = move |headers: HeaderMap| {
        let c = c.clone();
        async move {
            c.calls.fetch_add(1, Ordering::SeqCst);
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            if auth == "Bearer tok-1" {
                let body = r#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#;
                return (StatusCode::UNAUTHORIZED, body).into_response();
            }
            if auth.is_empty() {
                return StatusCode::FORBIDDEN.into_response();
            }
            serde_json::json!({ "auth": auth })
                .to_string()
                .into_response()
        }
    };
    let app = axum::Router::new()
        .route(
            "/computeMetadata/v1/instance/service-accounts/default/token",
            axum::routing::get(token),
        )
        .route("/v1/thing", axum::routing::get(api))
        .route(
            "/v1/never",
            axum::routing::get(|| async {
                let body = r#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#;
                (StatusCode::UNAUTHORIZED, body)
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), counts)
}

async fn get(client: &RestClient) -> Result<String, ApiError> {
    get_at(client, "thing").await
}

async fn get_at(client: &RestClient, path: &str) -> Result<String, ApiError> {
    let url = client.url(path, None, &[]);
    let body = client
        .send::<()>(Exchange {
            op: "get",
            target: path,
            method: Method::GET,
            url,
            body: None,
            max_bytes: 1024,
            preconditions: Preconditions::None,
        })
        .await?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn a_token_is_kept_and_fetched_again_once_the_api_refuses_it() {
    let (base, counts) = server().await;
    let auth = Auth::Google(AccessTokens::with_source(&base, true));
    let client = RestClient::new(
        "Test",
        Url::parse(&base).unwrap(),
        auth,
        Duration::from_secs(5),
    );

    // tok-1 is refused: a new token, the request once more.
    let first = get(&client).await.unwrap();
    assert_eq!(first, r#"{"auth":"Bearer tok-2"}"#);
    assert_eq!(counts.tokens.load(Ordering::SeqCst), 2);
    assert_eq!(client.round_trips(), 2, "the refused request counts too");

    // Kept: no metadata read for the next requests.
    for _ in 0..3 {
        assert_eq!(get(&client).await.unwrap(), r#"{"auth":"Bearer tok-2"}"#);
    }
    assert_eq!(counts.tokens.load(Ordering::SeqCst), 2);
    assert_eq!(counts.calls.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn a_token_refused_twice_is_denied_without_showing_it() {
    let (base, counts) = server().await;
    let auth = Auth::Google(AccessTokens::with_source(&base, true));
    let client = RestClient::new(
        "Test",
        Url::parse(&base).unwrap(),
        auth,
        Duration::from_secs(5),
    );
    let e = get_at(&client, "never").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Denied, "{e}");
    assert_eq!(
        e.to_string(),
        "Test get never: permission denied: 401 UNAUTHENTICATED: Request had invalid \
         authentication credentials."
    );
    assert_eq!(client.round_trips(), 2, "one new token, one more try");
    assert_eq!(counts.tokens.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn without_a_token_nothing_is_sent_and_emulators_get_owner() {
    let (base, counts) = server().await;
    // The API is this server, the token source a metadata server that is down.
    let down = format!("http://{}", {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    });
    let auth = Auth::Google(AccessTokens::with_source(&down, true));
    let client = RestClient::new(
        "Test",
        Url::parse(&base).unwrap(),
        auth,
        Duration::from_secs(2),
    );
    let e = get(&client).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(
        e.to_string()
            .starts_with("Test get thing: unavailable: no access token"),
        "{e}"
    );
    assert_eq!(
        counts.calls.load(Ordering::SeqCst),
        0,
        "nothing sent without a token"
    );

    // An emulator client sends `Bearer owner` and fetches nothing.
    let emulator = RestClient::new(
        "Test",
        Url::parse(&base).unwrap(),
        Auth::Emulator,
        Duration::from_secs(2),
    );
    assert_eq!(get(&emulator).await.unwrap(), r#"{"auth":"Bearer owner"}"#);
    assert_eq!(counts.tokens.load(Ordering::SeqCst), 0);
}

#[test]
fn names_become_percent_encoded_paths_with_a_verb() {
    let client = RestClient::new(
        "Test",
        Url::parse("https://firestore.googleapis.com").unwrap(),
        Auth::Emulator,
        Duration::from_secs(1),
    );
    let url = client.url(
        "projects/p/databases/(default)/documents/runs/a b?#",
        Some("runQuery"),
        &[("documentId", "x/y")],
    );
    assert_eq!(
        url.as_str(),
        "https://firestore.googleapis.com/v1/projects/p/databases/(default)/documents/runs/a%20b%3F%23:runQuery?documentId=x%2Fy"
    );
}
