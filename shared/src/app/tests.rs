//! The assembled router: limits, panics, layers and errors, without a socket.

use super::*;
use axum::body::Body as AxumBody;
use axum::routing::{get, post};
use http::StatusCode;
use tower::ServiceExt;

const TEST: Function = Function {
    name: "test",
    version: "0",
};

fn app(pairs: &[(&str, &str)]) -> Router {
    let env = Env::from_pairs(pairs.iter().copied());
    let config = RuntimeConfig::from_env(&env, false).unwrap();
    let routes = Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route("/echo", post(|body: String| async move { body }))
        .route(
            "/panic",
            get(|| async {
                if true {
                    panic!("handler bug");
                }
                "unreachable"
            }),
        );
    App::new(TEST, env, config).rest(routes).into_router()
}

async fn status(router: Router, req: http::Request<AxumBody>) -> StatusCode {
    router.oneshot(req).await.unwrap().status()
}

#[tokio::test]
async fn a_request_over_the_time_limit_gets_504() {
    let router = app(&[("REQUEST_TIMEOUT", "20ms")]);
    let req = http::Request::get("/slow").body(AxumBody::empty()).unwrap();
    assert_eq!(status(router, req).await, StatusCode::GATEWAY_TIMEOUT);
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413_even_without_content_length() {
    let router = app(&[("MAX_REQUEST_BODY_BYTES", "1KiB")]);
    let stream = futures_util::stream::iter(
        (0..4).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'x'; 512]))),
    );
    let req = http::Request::post("/echo")
        .body(AxumBody::from_stream(stream))
        .unwrap();
    assert_eq!(
        status(router.clone(), req).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let req = http::Request::post("/echo")
        .body(AxumBody::from("ok"))
        .unwrap();
    assert_eq!(status(router, req).await, StatusCode::OK);
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_for_that_request_only() {
    let router = app(&[]);
    let req = http::Request::get("/panic")
        .body(AxumBody::empty())
        .unwrap();
    assert_eq!(
        status(router.clone(), req).await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let req = http::Request::get("/health/live")
        .body(AxumBody::empty())
        .unwrap();
    assert_eq!(status(router, req).await, StatusCode::OK);
}

#[tokio::test]
async fn per_route_limits_apply_to_their_routes_only() {
    let env = Env::from_pairs::<_, &str, &str>([]);
    let config = RuntimeConfig::from_env(&env, false).unwrap();
    let app = App::new(TEST, env, config);
    let tight = app
        .route_limits()
        .timeout(std::time::Duration::from_millis(20))
        .max_body_bytes(4);
    let slow = || async {
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        "late"
    };
    let router = app
        .rest_with_limits(
            Router::new()
                .route("/tight", get(slow))
                .route("/tight-echo", post(|b: String| async move { b })),
            tight,
        )
        .rest(Router::new().route("/roomy-echo", post(|b: String| async move { b })))
        .into_router();
    let get_tight = http::Request::get("/tight")
        .body(AxumBody::empty())
        .unwrap();
    assert_eq!(
        status(router.clone(), get_tight).await,
        StatusCode::GATEWAY_TIMEOUT
    );
    let big = || AxumBody::from("more than four bytes");
    let req = http::Request::post("/tight-echo").body(big()).unwrap();
    assert_eq!(
        status(router.clone(), req).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let req = http::Request::post("/roomy-echo").body(big()).unwrap();
    assert_eq!(status(router, req).await, StatusCode::OK);
}

#[tokio::test]
async fn app_layer_wraps_rest_and_grpc_routes() {
    let env = Env::from_pairs::<_, &str, &str>([]);
    let config = RuntimeConfig::from_env(&env, false).unwrap();
    let stamp = tower::util::MapResponseLayer::new(|mut r: Response| {
        r.headers_mut()
            .insert("x-layer", http::HeaderValue::from_static("yes"));
        r
    });
    let router = App::new(TEST, env, config).layer(stamp).into_router();
    for req in [
        http::Request::get("/health/live")
            .body(AxumBody::empty())
            .unwrap(),
        http::Request::post("/grpc.health.v1.Health/Check")
            .header("content-type", "application/grpc")
            .body(AxumBody::from(vec![0u8, 0, 0, 0, 0]))
            .unwrap(),
    ] {
        let path = req.uri().path().to_owned();
        let response = router.clone().oneshot(req).await.unwrap();
        assert_eq!(response.headers()["x-layer"], "yes", "{path}");
    }
}

#[tokio::test]
async fn errors_share_one_json_shape() {
    let router = app(&[]);
    for (method, path, code) in [
        ("GET", "/nowhere", 404),
        ("POST", "/health/live", 405),
        ("GET", "/panic", 500),
    ] {
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .body(AxumBody::empty())
            .unwrap();
        let response = router.clone().oneshot(req).await.unwrap();
        assert_eq!(response.status().as_u16(), code, "{method} {path}");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["status"], code, "{json}");
        assert!(
            json["error"].is_string() && json["code"].is_string(),
            "{json}"
        );
    }
}
