//! `aixrun::gcp::firestore` against the real Firestore emulator (`scripts/emulators.sh`): what
//! a run store needs of it, each operation's round trips counted. Every test uses ids of its
//! own, so they run in parallel against one emulator.

mod emulator;

use std::time::{Duration, Instant};

use aixrun::gcp::firestore::{
    Direction, ErrorKind, Fields, Firestore, Op, Precondition, Query, Value, Write,
};
use time::OffsetDateTime;

async fn firestore() -> Firestore {
    Firestore::from_env(&emulator::env())
        .await
        .expect("a client for the emulator")
}

fn fields(pairs: &[(&str, Value)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

#[test]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
fn a_second_create_conflicts_and_every_value_type_round_trips() {
    emulator::block_on(async {
        let fs = firestore().await;
        assert!(fs.is_emulator());
        let id = emulator::unique("create");
        let when = OffsetDateTime::from_unix_timestamp_nanos(1_796_673_501_328_588_000).unwrap();
        let all = fields(&[
            ("status", Value::from("running")),
            ("seq", Value::Integer(i64::MAX)),
            ("cost", Value::Double(0.25)),
            ("done", Value::Boolean(false)),
            ("at", Value::Timestamp(when)),
            ("blob", Value::Bytes(vec![0, 159, 146, 150])),
            ("none", Value::Null),
            (
                "usage",
                Value::Map(fields(&[("tokens", Value::Integer(12))])),
            ),
            (
                "tags",
                Value::Array(vec![Value::from("a"), Value::Integer(2)]),
            ),
            ("empty", Value::Map(Fields::new())),
        ]);
        let before = fs.round_trips();
        let created = fs.create("runs", &id, all.clone()).await.expect("created");
        assert_eq!(fs.round_trips() - before, 1, "a create is one round trip");
        assert_eq!(created.path(), format!("runs/{id}"));
        assert_eq!(created.fields, all);
        assert!(created.create_time.is_some() && created.update_time == created.create_time);

        let again = fs.create("runs", &id, Fields::new()).await.unwrap_err();
        assert_eq!(again.kind(), ErrorKind::Conflict, "{again}");
        let text = again.to_string();
        assert!(
            text.starts_with(&format!(
                "Firestore create runs/{id}: conflict: 409 ALREADY_EXISTS"
            )),
            "{text}"
        );

        let read = fs
            .get(&format!("runs/{id}"))
            .await
            .unwrap()
            .expect("stored");
        assert_eq!(read, created);
    })
}

#[test]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
fn a_missing_document_is_none_and_malformed_requests_are_refused() {
    emulator::block_on(async {
        let fs = firestore().await;
        let before = fs.round_trips();
        let missing = fs
            .get(&format!("runs/{}", emulator::unique("missing")))
            .await;
        assert_eq!(missing.unwrap(), None);
        assert_eq!(fs.round_trips() - before, 1);
        // Firestore refuses an array directly inside an array: Invalid, in its own words.
        let nested = Value::Array(vec![Value::Array(vec![])]);
        let e = fs
            .create(
                "runs",
                &emulator::unique("nested"),
                fields(&[("a", nested)]),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
        assert!(e.to_string().contains("400 INVALID_ARGUMENT"), "{e}");
    })
}

#[test]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
fn an_update_on_a_stale_update_time_conflicts_and_changes_nothing() {
    emulator::block_on(async {
        let fs = firestore().await;
        let id = emulator::unique("cas");
        let path = format!("runs/{id}");
        let start = fields(&[("status", "running".into()), ("owner", "a".into())]);
        let created = fs.create("runs", &id, start).await.unwrap();
        let read_at = created.update_time.expect("an update time");

        let before = fs.round_trips();
        let done = Write::update(&path, fields(&[("status", "done".into())]), ["status"])
            .if_updated_at(read_at)
            .server_time("updated_at");
        let result = fs.commit(&[done]).await.expect("the first writer wins");
        assert_eq!(fs.round_trips() - before, 1, "a commit is one round trip");
        let new_time = result.update_times[0].expect("its new update time");
        assert!(new_time > read_at);

        // A second writer that read at the same time loses.
        let stale = Write::update(&path, fields(&[("status", "cancelled".into())]), ["status"])
            .if_updated_at(read_at);
        let e = fs.commit(&[stale]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        assert!(e.to_string().contains("FAILED_PRECONDITION"), "{e}");

        let now = fs.get(&path).await.unwrap().unwrap();
        assert_eq!(now.str("status"), Some("done"));
        assert_eq!(
            now.str("owner"),
            Some("a"),
            "the mask left other fields alone"
        );
        assert!(matches!(now.get("updated_at"), Some(Value::Timestamp(_))));
        assert_eq!(now.update_time, Some(new_time));
    })
}

#[test]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
fn a_commit_with_one_failing_precondition_writes_nothing() {
    emulator::block_on(async {
        let fs = firestore().await;
        let taken = emulator::unique("taken");
        fs.create("runs", &taken, fields(&[("v", 1i64.into())]))
            .await
            .unwrap();
        let fresh = format!("runs/{}", emulator::unique("fresh"));
        let writes = [
            Write::create(&fresh, fields(&[("v", 2i64.into())])),
            Write::create(format!("runs/{taken}"), fields(&[("v", 3i64.into())])),
        ];
        let e = fs.commit(&writes).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        assert!(e.to_string().contains("and 1 more"), "{e}");
        assert_eq!(fs.get(&fresh).await.unwrap(), None, "all or nothing");
        let kept = fs.get(&format!("runs/{taken}")).await.unwrap().unwrap();
        assert_eq!(kept.i64("v"), Some(1));

        // `exists: true` on a missing document: NotFound, and again nothing applies.
        let writes = [
            Write::set(&fresh, fields(&[("v", 4i64.into())])),
            Write::update(
                format!("runs/{}", emulator::unique("gone")),
                Fields::new(),
                ["v"],
            )
            .if_exists(true),
        ];
        let e = fs.commit(&writes).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert_eq!(fs.get(&fresh).await.unwrap(), None);
    })
}

#[test]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
fn events_after_a_sequence_number_come_in_order_up_to_the_limit() {
    emulator::block_on(async {
        let fs = firestore().await;
        let run = format!("runs/{}", emulator::unique("events"));
        // Written out of order, in one commit (one round trip for ten documents).
        let writes: Vec<Write> = [7, 2, 9, 1, 10, 4, 3, 8, 6, 5]
            .into_iter()
            .map(|seq: i64| {
                Write::create(
                    format!("{run}/events/{seq:08}"),
                    fields(&[("seq", seq.into()), ("type", "step".into())]),
                )
            })
            .collect();
        let before = fs.round_trips();
        let result = fs.commit(&writes).await.unwrap();
        assert_eq!(result.update_times.len(), 10);
        let after = fs.list_after(&run, "events", "seq", 3, 4).await.unwrap();
        assert_eq!(fs.round_trips() - before, 2, "one commit, one query");
        let seqs: Vec<i64> = after.iter().map(|d| d.i64("seq").unwrap()).collect();
        assert_eq!(seqs, [4, 5, 6, 7]);
        assert_eq!(after[0].path(), format!("{run}/events/00000004"));
        let tail = fs.list_after(&run, "events", "seq", 8, 100).await.unwrap();
        assert_eq!(tail.len(), 2);
        assert!(
            fs.list_after(&run, "events", "seq", 10, 100)
                .await
                .unwrap()
                .is_empty()
        );
        // Another run's events are not this one's.
        let other = format!("runs/{}", emulator::unique("events"));
        assert!(
            fs.list_after(&other, "events", "seq", 0, 100)
                .await
                .unwrap()
                .is_empty()
        );
    })
}

#[test]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
fn runs_of_a_session_are_listed_newest_first_page_by_page() {
    emulator::block_on(async {
        let fs = firestore().await;
        let session = emulator::unique("session");
        let base = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        // Seven runs of the session (two pairs created at the same instant: the name breaks the
        // tie), and two of another session that must not appear.
        let seconds = [0i64, 1, 1, 2, 3, 3, 4];
        let mut writes = Vec::new();
        for (i, s) in seconds.iter().enumerate() {
            let at = base + Duration::from_secs(*s as u64);
            writes.push(Write::create(
                format!("runs/{session}-{i}"),
                fields(&[
                    ("session_id", session.as_str().into()),
                    ("created_at", at.into()),
                ]),
            ));
        }
        for i in 0..2 {
            writes.push(Write::create(
                format!("runs/{session}-other-{i}"),
                fields(&[
                    ("session_id", "someone-else".into()),
                    ("created_at", base.into()),
                ]),
            ));
        }
        fs.commit(&writes).await.unwrap();

        let query = Query::collection("runs")
            .filter("session_id", Op::Equal, session.as_str())
            .order_by("created_at", Direction::Descending);
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        let mut token: Option<String> = None;
        let before = fs.round_trips();
        loop {
            let page = fs.page("", &query, 3, token.as_deref()).await.unwrap();
            sizes.push(page.documents.len());
            seen.extend(page.documents.iter().map(|d| d.id().to_owned()));
            match page.next_page_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(fs.round_trips() - before, 3, "one round trip per page");
        assert_eq!(sizes, [3, 3, 1]);
        let expected: Vec<String> = [6, 5, 4, 3, 2, 1, 0]
            .iter()
            .map(|i| format!("{session}-{i}"))
            .collect();
        assert_eq!(seen, expected, "newest first, each once, ties by name");

        // A full last page has no token after it (one document more is asked for to know).
        let exact = fs.page("", &query.clone(), 7, None).await.unwrap();
        assert_eq!((exact.documents.len(), exact.next_page_token), (7, None));

        let e = fs
            .page("", &query, 3, Some("bm90IGEgdG9rZW4"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
        assert!(e.to_string().contains("page token"), "{e}");
    })
}

#[test]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
fn a_delete_removes_the_document_and_may_require_it() {
    emulator::block_on(async {
        let fs = firestore().await;
        let id = emulator::unique("delete");
        let path = format!("runs/{id}");
        fs.create("runs", &id, Fields::new()).await.unwrap();
        let before = fs.round_trips();
        fs.delete(&path, None).await.unwrap();
        assert_eq!(fs.round_trips() - before, 1);
        assert_eq!(fs.get(&path).await.unwrap(), None);
        // Deleting what is gone is no error, unless it must exist.
        fs.delete(&path, None).await.unwrap();
        let e = fs
            .delete(&path, Some(Precondition::Exists(true)))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        // In a commit, with the document's update time.
        let doc = fs.create("runs", &id, Fields::new()).await.unwrap();
        let stale = OffsetDateTime::from_unix_timestamp(1).unwrap();
        let e = fs
            .commit(&[Write::delete(&path).if_updated_at(stale)])
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        fs.commit(&[Write::delete(&path).if_updated_at(doc.update_time.unwrap())])
            .await
            .unwrap();
        assert_eq!(fs.get(&path).await.unwrap(), None);
    })
}

#[test]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
fn a_store_that_is_down_is_unavailable_at_once_and_says_where() {
    emulator::block_on(async {
        emulator::env();
        let closed = emulator::closed_port();
        let env = emulator::env_with(&[("FIRESTORE_EMULATOR_HOST", &closed)]);
        let fs = Firestore::from_env(&env).await.unwrap();
        let started = Instant::now();
        let e = fs.get("runs/r1").await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.is_unavailable());
        let text = e.to_string();
        assert!(
            text.starts_with("Firestore get runs/r1: unavailable: cannot connect to"),
            "{text}"
        );
        assert!(text.contains(&closed), "{text}");
        assert!(
            !text.contains("owner"),
            "no credentials in messages: {text}"
        );
        let e = fs.commit(&[Write::delete("runs/r1")]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");

        // A store that accepts connections but never answers: unavailable at the timeout.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap().to_string();
        let env = emulator::env_with(&[("FIRESTORE_EMULATOR_HOST", &addr)]);
        let fs = Firestore::from_env(&env)
            .await
            .unwrap()
            .with_timeout(Duration::from_millis(300));
        let started = Instant::now();
        let e = fs.get("runs/r1").await.unwrap_err();
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(2),
            "{took:?}"
        );
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.to_string().contains("did not answer within 0.3 s"), "{e}");
    })
}

#[test]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
fn a_maximum_only_ever_raises_a_number() {
    emulator::block_on(async {
        let fs = firestore().await;
        let id = emulator::unique("max");
        let path = format!("runs/{id}");
        fs.create("runs", &id, fields(&[("status", "running".into())]))
            .await
            .unwrap();
        let raise = |n: i64| {
            Write::update(&path, Fields::new(), Vec::<String>::new())
                .if_exists(true)
                .maximum("last_seq", n)
        };
        for n in [5, 3, 9, 9, 1] {
            fs.commit(&[raise(n)]).await.unwrap();
        }
        let doc = fs.get(&path).await.unwrap().unwrap();
        assert_eq!(doc.i64("last_seq"), Some(9));
        assert_eq!(doc.str("status"), Some("running"), "other fields stay");
    })
}
