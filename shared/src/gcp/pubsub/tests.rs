//! Push bodies as the emulator sends them (`state-and-queues.md`), and malformed ones. Real
//! deliveries are tested against the emulator in `shared/tests/pubsub_emulator.rs`.

use http::{HeaderMap, HeaderName, HeaderValue};

use super::*;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    map
}

#[test]
fn a_wrapped_push_is_read_as_the_emulator_sends_it() {
    let body = br#"{"subscription":"projects\/p\/subscriptions\/s","message":{"publishTime":"2026-12-07T19:58:50.022Z","data":"aGVsbG8=","publish_time":"2026-12-07T19:58:50.022Z","messageId":"2","attributes":{"Two-Words":"x","k":"v"},"message_id":"2"}}"#;
    let m = PushMessage::parse(&headers(&[("content-type", "application/json")]), body).unwrap();
    assert!(m.wrapped);
    assert_eq!(m.message_id, "2");
    assert_eq!(m.data, b"hello");
    assert_eq!(
        m.subscription.as_deref(),
        Some("projects/p/subscriptions/s")
    );
    assert_eq!(m.attribute("Two-Words"), Some("x"));
    assert_eq!(m.attribute("two-words"), Some("x"));
    assert_eq!(m.publish_time.unwrap().unix_timestamp(), 1_796_673_530);
    assert_eq!(m.delivery_attempt, None);
    // Snake-case only, a delivery attempt, no data.
    let other = br#"{"message":{"message_id":"7","attributes":{}},"deliveryAttempt":3}"#;
    let m = PushMessage::parse_wrapped(other).unwrap();
    assert_eq!(
        (m.message_id.as_str(), m.data.len(), m.delivery_attempt),
        ("7", 0, Some(3))
    );
}

#[test]
fn an_unwrapped_push_takes_its_metadata_and_attributes_from_headers() {
    let h = headers(&[
        ("k", "v"),
        ("two-words", "x"),
        ("x-goog-pubsub-message-id", "2"),
        ("x-goog-pubsub-publish-time", "2026-12-07T19:58:50.022Z"),
        (
            "x-goog-pubsub-subscription-name",
            "projects/p/subscriptions/n",
        ),
        ("user-agent", "Java/17.0.15"),
        ("host", "127.0.0.1:8999"),
        ("content-type", "application/x-www-form-urlencoded"),
        ("x-forwarded-for", "10.0.0.1"),
    ]);
    let m = PushMessage::parse(&h, b"{\"not\": \"a wrapper\"}").unwrap();
    assert!(!m.wrapped);
    assert_eq!(m.message_id, "2");
    assert_eq!(m.data, b"{\"not\": \"a wrapper\"}");
    assert_eq!(
        m.attributes,
        BTreeMap::from([("k".into(), "v".into()), ("two-words".into(), "x".into())])
    );
    assert_eq!(m.attribute("Two-Words"), Some("x"));
    assert_eq!(
        m.subscription.as_deref(),
        Some("projects/p/subscriptions/n")
    );
}

#[test]
fn malformed_pushes_are_errors_that_say_what_is_wrong() {
    let none = HeaderMap::new();
    let err = |body: &[u8]| PushMessage::parse(&none, body).unwrap_err();
    assert!(matches!(err(b"hello"), PushError::Malformed(m) if m.starts_with("not JSON")));
    assert!(matches!(err(b""), PushError::Malformed(_)));
    assert!(matches!(err(b"[1,2]"), PushError::Malformed(_)));
    assert_eq!(err(b"{}"), PushError::Missing("message"));
    assert_eq!(
        err(br#"{"message":{"data":"aGk="}}"#),
        PushError::Missing("message.messageId")
    );
    assert!(matches!(
        err(br#"{"message":{"messageId":"1","data":"%%%"}}"#),
        PushError::BadValue {
            field: "message.data",
            ..
        }
    ));
    assert!(matches!(
        err(br#"{"message":{"messageId":"1","publishTime":"today"}}"#),
        PushError::BadValue {
            field: "message.publishTime",
            ..
        }
    ));
    assert!(matches!(
        err(br#"{"message":{"messageId":1}}"#),
        PushError::Malformed(m) if m.contains("invalid type")
    ));
    let text = err(b"hello").to_string();
    assert!(
        text.starts_with("malformed Pub/Sub push: the body is not a push message"),
        "{text}"
    );
    let unwrapped = headers(&[("x-goog-pubsub-message-id", "")]);
    assert_eq!(
        PushMessage::parse(&unwrapped, b"x").unwrap_err(),
        PushError::Missing("x-goog-pubsub-message-id")
    );
    let attempt = headers(&[
        ("x-goog-pubsub-message-id", "1"),
        ("x-goog-pubsub-delivery-attempt", "many"),
    ]);
    assert!(matches!(
        PushMessage::parse(&attempt, b"x").unwrap_err(),
        PushError::BadValue {
            field: "x-goog-pubsub-delivery-attempt",
            ..
        }
    ));
}
