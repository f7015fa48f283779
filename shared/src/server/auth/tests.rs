//! The verifier without a server: open paths, allowed principals, API keys, token headers,
//! and refusals that name the problem, never the credential.

use base64::Engine as _;

use super::*;
use crate::config::Env;

fn verifier(pairs: &[(&str, &str)]) -> Arc<Verifier> {
    let env = Env::from_pairs(pairs.iter().copied());
    let config = AuthConfig::from_env(&env).unwrap();
    Verifier::new(&config, "test").unwrap()
}

fn b64(json: serde_json::Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
}

#[test]
fn none_means_no_layer() {
    let config = AuthConfig::from_env(&Env::default()).unwrap();
    assert!(Verifier::new(&config, "x").is_none());
}

#[test]
fn open_paths_are_exact_or_prefixes() {
    let v = verifier(&[("AUTH_MODE", "api-key"), ("AUTH_API_KEYS", "k")]);
    assert!(v.is_open("/health/ready"));
    assert!(v.is_open("/grpc.health.v1.Health/Check"));
    assert!(!v.is_open("/health/ready/x"));
    assert!(!v.is_open("/mcp"));
    assert!(!v.is_open("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"));
}

#[test]
fn principals_match_by_email_domain_or_subject() {
    let v = verifier(&[
        ("AUTH_MODE", "api-key"),
        ("AUTH_API_KEYS", "k"),
        (
            "AUTH_ALLOWED_PRINCIPALS",
            "Bot@Proj.iam.gserviceaccount.com, *@example.com, 1234567890",
        ),
    ]);
    assert!(v.principal_allowed(Some("bot@proj.iam.gserviceaccount.com"), None));
    assert!(v.principal_allowed(Some("ann@EXAMPLE.com"), Some("9")));
    assert!(!v.principal_allowed(Some("ann@example.com.evil.test"), None));
    assert!(!v.principal_allowed(Some("ann@sub.example.com"), None));
    assert!(v.principal_allowed(None, Some("1234567890")));
    assert!(!v.principal_allowed(None, Some("12345678901")));
    assert!(!v.principal_allowed(None, None));
}

#[test]
fn api_keys_match_whole_keys_only() {
    let v = verifier(&[("AUTH_MODE", "api-key"), ("AUTH_API_KEYS", "alpha,beta")]);
    assert_eq!(v.api_key_index("beta"), Some(2));
    assert_eq!(v.api_key_index("bet"), None);
    assert_eq!(v.api_key_index("betaa"), None);
    assert_eq!(v.api_key_index(""), None);
    assert!(format!("{:?}", ApiKeys::parse(Some("alpha"))).contains("redacted"));
}

#[test]
fn headers_are_read_without_trusting_them() {
    let token = format!(
        "{}.{}.sig",
        b64(serde_json::json!({"alg": "none", "kid": "k"})),
        b64(serde_json::json!({}))
    );
    let head = jwt_header(&token).unwrap();
    assert_eq!(
        (head.alg.as_str(), head.kid.as_deref()),
        ("none", Some("k"))
    );
    assert!(jwt_header("a.b").is_none());
    assert!(jwt_header("a.b.c.d").is_none());
    assert_eq!(printable("<script>\"x"), "scriptx");
    assert_eq!(bearer_token("bearer  abc "), Some("abc"));
    assert_eq!(bearer_token("Basic abc"), None);
}

#[tokio::test]
async fn refusals_name_the_problem_and_never_the_credential() {
    let v = verifier(&[
        ("AUTH_MODE", "google"),
        ("AUTH_AUDIENCES", "https://svc"),
        // Never reached: the algorithm is refused before any key is looked up.
        ("GOOGLE_JWKS_URL", "http://127.0.0.1:9/certs"),
    ]);
    let mut headers = HeaderMap::new();
    assert!(matches!(
        v.verify(&headers).await,
        Err(Refusal::Missing(m)) if m.contains("Google ID token")
    ));
    let token = format!(
        "{}.{}.c2VjcmV0LXNpZ25hdHVyZQ",
        b64(serde_json::json!({"alg": "HS256", "kid": "k"})),
        b64(serde_json::json!({"sub": "x"}))
    );
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::try_from(format!("Bearer {token}")).unwrap(),
    );
    let Err(Refusal::Invalid(message)) = v.verify(&headers).await else {
        panic!("HS256 accepted");
    };
    assert!(message.contains("alg HS256"), "{message}");
    assert!(!message.contains(&token[..20]), "{message}");
    let response = Refusal::Invalid(message).into_response(&headers, "svc");
    assert_eq!(response.status(), 401);
    let challenge = response.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap();
    assert!(
        challenge.starts_with("Bearer realm=\"svc\", error=\"invalid_token\""),
        "{challenge}"
    );
    let mut grpc = HeaderMap::new();
    grpc.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    let response = Refusal::Forbidden("no".into()).into_response(&grpc, "svc");
    assert_eq!(response.headers()["grpc-status"], "7");
}
