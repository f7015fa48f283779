//! Values in Firestore's JSON form, configuration errors, and paths refused before any round
//! trip. The calls themselves are tested against the real emulator in
//! `shared/tests/firestore_emulator.rs`.

use super::*;
use time::format_description::well_known::Rfc3339;

fn ts(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap()
}

#[test]
fn values_take_firestores_json_form_both_ways() {
    let value = Value::Map(Fields::from([
        ("s".to_owned(), Value::from("text")),
        ("i".to_owned(), Value::Integer(i64::MAX)),
        ("d".to_owned(), Value::Double(1.5)),
        ("b".to_owned(), Value::Boolean(true)),
        ("n".to_owned(), Value::Null),
        (
            "t".to_owned(),
            Value::Timestamp(ts("2026-12-07T15:29:02.597123Z")),
        ),
        ("x".to_owned(), Value::Bytes(b"hello".to_vec())),
        (
            "a".to_owned(),
            Value::Array(vec![Value::Integer(1), Value::from("two")]),
        ),
    ]));
    let wire = serde_json::to_value(&value).unwrap();
    assert_eq!(
        wire,
        serde_json::json!({"mapValue": {"fields": {
            "s": {"stringValue": "text"},
            "i": {"integerValue": "9223372036854775807"},
            "d": {"doubleValue": 1.5},
            "b": {"booleanValue": true},
            "n": {"nullValue": null},
            "t": {"timestampValue": "2026-12-07T15:29:02.597123Z"},
            "x": {"bytesValue": "aGVsbG8="},
            "a": {"arrayValue": {"values": [{"integerValue": "1"}, {"stringValue": "two"}]}}
        }}})
    );
    let back: Value = serde_json::from_value(wire).unwrap();
    assert_eq!(back, value);
}

#[test]
fn values_read_what_firestore_may_send() {
    let read = |j: serde_json::Value| serde_json::from_value::<Value>(j);
    // Empty maps and arrays come without their inner key.
    assert_eq!(
        read(serde_json::json!({"mapValue": {}})).unwrap(),
        Value::Map(Fields::new())
    );
    assert_eq!(
        read(serde_json::json!({"arrayValue": {}})).unwrap(),
        Value::Array(vec![])
    );
    assert_eq!(
        read(serde_json::json!({"integerValue": 5})).unwrap(),
        Value::Integer(5)
    );
    assert!(
        read(serde_json::json!({"doubleValue": "NaN"}))
            .unwrap()
            .as_f64()
            .unwrap()
            .is_nan()
    );
    assert_eq!(
        read(serde_json::json!({"timestampValue": "2026-01-01T00:00:00+01:00"})).unwrap(),
        Value::Timestamp(ts("2025-12-31T23:00:00Z"))
    );
    let bad = read(serde_json::json!({"integerValue": "twelve"})).unwrap_err();
    assert!(bad.to_string().contains("integerValue \"twelve\""), "{bad}");
    assert!(read(serde_json::json!({"geoPointValue": {}})).is_err());
    assert!(read(serde_json::json!({"timestampValue": "yesterday"})).is_err());
}

#[test]
fn json_maps_onto_values_and_back() {
    let json = serde_json::json!({"a": [1, 2.5, "x", null, true], "b": {"c": -3}});
    let value = Value::from_json(json.clone());
    assert_eq!(
        value.as_map().unwrap()["b"].as_map().unwrap()["c"],
        Value::Integer(-3)
    );
    assert_eq!(value.to_json(), json);
}

#[test]
fn documents_tell_their_id_and_path() {
    let doc: Document = serde_json::from_value(serde_json::json!({
        "name": "projects/p/databases/(default)/documents/runs/r1/events/00000001",
        "fields": {"seq": {"integerValue": "1"}},
        "createTime": "2026-12-07T19:58:21.328588Z",
        "updateTime": "2026-12-07T19:58:21.328588Z"
    }))
    .unwrap();
    assert_eq!(doc.id(), "00000001");
    assert_eq!(doc.path(), "runs/r1/events/00000001");
    assert_eq!(doc.i64("seq"), Some(1));
    assert_eq!(doc.update_time, Some(ts("2026-12-07T19:58:21.328588Z")));
}

fn env(pairs: &[(&str, &str)]) -> Env {
    // The metadata server is a closed port: these must not wait for one.
    let mut all = vec![("GCE_METADATA_HOST", "127.0.0.1:1")];
    all.extend_from_slice(pairs);
    Env::from_pairs(all)
}

#[tokio::test]
async fn a_bad_configuration_is_one_line_naming_the_variable() {
    let no_project = Firestore::from_env(&env(&[(FIRESTORE_EMULATOR_HOST, "127.0.0.1:8686")]))
        .await
        .unwrap_err();
    assert_eq!(no_project.kind(), ErrorKind::Config);
    let text = no_project.to_string();
    assert!(
        text.starts_with("Firestore not configured: no project"),
        "{text}"
    );
    assert!(text.ends_with("set GOOGLE_CLOUD_PROJECT"), "{text}");
    assert!(!text.contains('\n'));

    let bad_host = env(&[
        (FIRESTORE_EMULATOR_HOST, "127.0.0.1:8686/x y"),
        ("GOOGLE_CLOUD_PROJECT", "p"),
    ]);
    let text = Firestore::from_env(&bad_host)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("FIRESTORE_EMULATOR_HOST=") && text.contains("host:port"),
        "{text}"
    );

    let bad_db = env(&[(FIRESTORE_DATABASE, "a/b"), ("GOOGLE_CLOUD_PROJECT", "p")]);
    let text = Firestore::from_env(&bad_db).await.unwrap_err().to_string();
    assert!(text.contains("FIRESTORE_DATABASE=\"a/b\""), "{text}");
}

#[tokio::test]
async fn the_emulator_and_the_database_come_from_the_variables() {
    let fs = Firestore::from_env(&env(&[
        (FIRESTORE_EMULATOR_HOST, "127.0.0.1:8686"),
        ("GOOGLE_CLOUD_PROJECT", "p"),
        (FIRESTORE_DATABASE, "runs-db"),
    ]))
    .await
    .unwrap();
    assert!(fs.is_emulator());
    assert_eq!(fs.host(), "127.0.0.1:8686");
    assert_eq!(
        fs.name_of("runs/r1"),
        "projects/p/databases/runs-db/documents/runs/r1"
    );
    let cloud = Firestore::from_env(&env(&[("GOOGLE_CLOUD_PROJECT", "p")]))
        .await
        .unwrap();
    assert!(!cloud.is_emulator());
    assert_eq!(cloud.database(), DEFAULT_DATABASE);
    assert_eq!(cloud.host(), "firestore.googleapis.com");
}

#[tokio::test]
async fn malformed_paths_are_refused_without_a_round_trip() {
    let fs = Firestore::from_env(&env(&[
        (FIRESTORE_EMULATOR_HOST, "127.0.0.1:1"),
        ("GOOGLE_CLOUD_PROJECT", "p"),
    ]))
    .await
    .unwrap();
    for path in ["runs", "runs//x", "runs/__x__", "runs/r1/events"] {
        let e = fs.get(path).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid, "{path}: {e}");
    }
    let e = fs
        .run_query("runs", &Query::collection("events"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
    let many: Vec<Write> = (0..=MAX_WRITES)
        .map(|i| Write::delete(format!("runs/{i}")))
        .collect();
    let e = fs.commit(&many).await.unwrap_err();
    assert!(e.to_string().contains("501 writes"), "{e}");
    assert_eq!(fs.round_trips(), 0);
}
