//! What the Firestore store does beyond the shared contract (`store/tests.rs` runs that on the
//! emulator): races between instances decided by preconditions, a store that is down or not
//! configured, events past a commit's limit, and the documents as they are stored.

use std::sync::Arc;

use serde_json::json;

use super::FirestoreStore;
use crate::run::{Envelope, Event, now};
use crate::store::tests::{block_on, firestore_store, record, unique};
use crate::store::{Claim, Created, RunStore, StoreConfig, StoreError};

fn store_for(pairs: &[(&str, &str)]) -> FirestoreStore {
    let env = aixrun::Env::from_pairs(pairs.iter().copied());
    let config = StoreConfig::from_env(&env).expect("the store's configuration");
    FirestoreStore::new(env, &config)
}

fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = listener.local_addr().expect("its address").to_string();
    drop(listener);
    addr
}

#[test]
fn a_missing_project_is_an_error_naming_the_variable_at_first_use_not_at_start() {
    block_on(async {
        let metadata = closed_port();
        // Nothing is asked at construction: this returns at once.
        let store = store_for(&[("RUN_STORE", "firestore"), ("GCE_METADATA_HOST", &metadata)]);
        let e = store.get("run-1").await.unwrap_err();
        let StoreError::Failed {
            store: "firestore",
            reason,
        } = &e
        else {
            panic!("expected a failure, got {e:?}");
        };
        assert!(reason.contains("GOOGLE_CLOUD_PROJECT"), "{e}");
    });
}

#[test]
fn a_store_that_is_down_is_unavailable_naming_the_operation() {
    block_on(async {
        let closed = closed_port();
        let store = store_for(&[
            ("RUN_STORE", "firestore"),
            ("FIRESTORE_EMULATOR_HOST", &closed),
            ("GOOGLE_CLOUD_PROJECT", "p"),
        ]);
        let e = store.get("run-1").await.unwrap_err();
        let StoreError::Unavailable {
            store: "firestore",
            reason,
        } = &e
        else {
            panic!("expected unavailable, got {e:?}");
        };
        assert!(reason.starts_with("read run run-1: "), "{reason}");
        assert!(reason.contains(&closed), "{reason}");
        let e = store.commit("run-1", &[], &[]).await.unwrap_err();
        assert!(matches!(e, StoreError::Unavailable { .. }), "{e:?}");
    });
}

#[test]
#[ignore = "needs the Firestore emulator: eval \"$(bash scripts/emulators.sh)\""]
fn concurrent_claims_and_creates_have_one_winner() {
    block_on(async {
        let store = Arc::new(firestore_store());
        let session = unique("race");
        let claims = (0..4).map(|i| {
            let (store, session) = (store.clone(), session.clone());
            tokio::spawn(async move { store.claim_session(&session, &format!("r{i}")).await })
        });
        let mut claimed = Vec::new();
        for claim in futures_util::future::join_all(claims).await {
            if let Claim::Claimed(_) = claim.expect("joined").expect("answered") {
                claimed.push(());
            }
        }
        assert_eq!(claimed.len(), 1, "one run holds the session");

        let key = unique("key");
        let creates = (0..4).map(|_| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move {
                let run = record(&unique("raced"), None);
                store.create(&run, Some(&key)).await
            })
        });
        let outcomes: Vec<Created> = futures_util::future::join_all(creates)
            .await
            .into_iter()
            .map(|c| c.expect("joined").expect("answered"))
            .collect();
        let new = outcomes.iter().filter(|c| **c == Created::New).count();
        assert_eq!(new, 1, "{outcomes:?}");
    });
}

#[test]
#[ignore = "needs the Firestore emulator: eval \"$(bash scripts/emulators.sh)\""]
fn a_batch_past_a_commits_limit_is_stored_whole_and_repeats_change_nothing() {
    block_on(async {
        let store = firestore_store();
        let id = unique("burst");
        store.create(&record(&id, None), None).await.unwrap();
        let events: Vec<Envelope> = (0..700)
            .map(|seq| Envelope {
                run_id: id.clone(),
                seq,
                at: now(),
                step_id: None,
                parent_step_id: None,
                event: Event::MessageDelta {
                    agent: "a".into(),
                    delta: format!("d{seq}"),
                },
            })
            .collect();
        let before = store.stats();
        store.commit(&id, &events, &[]).await.unwrap();
        let after = store.stats();
        assert_eq!(after.commits - before.commits, 2);
        assert_eq!(after.writes - before.writes, 701);
        let stored = store.events(&id, Some(650), 1000).await.unwrap();
        assert_eq!(stored.len(), 49);
        // An older batch again (a retry of a commit that had applied): last_seq stays.
        store.commit(&id, &events[..10], &[]).await.unwrap();
        assert_eq!(store.get(&id).await.unwrap().unwrap().last_seq, Some(699));
        // A commit to a run that is not there is refused, and writes nothing.
        let missing = unique("missing");
        let e = store
            .commit(&missing, &events[..1], &[("k".into(), json!(1))])
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no run"), "{e}");
        assert!(store.events(&missing, None, 10).await.unwrap().is_empty());
        assert!(store.journal(&missing).await.unwrap().is_empty());
    });
}

#[test]
#[ignore = "needs the Firestore emulator: eval \"$(bash scripts/emulators.sh)\""]
fn the_documents_are_laid_out_as_documented() {
    block_on(async {
        let store = firestore_store();
        let id = unique("layout");
        let key = unique("key");
        store
            .create(&record(&id, Some("s")), Some(&key))
            .await
            .unwrap();
        store
            .commit(&id, &[], &[("a/b#0@m1/t0".into(), json!({"ok": true}))])
            .await
            .unwrap();
        let fs = store.client().await.unwrap();
        let run = fs
            .get(&format!("runs/{id}"))
            .await
            .unwrap()
            .expect("the run");
        for field in ["created_at", "updated_at", "expire_at"] {
            assert!(
                matches!(
                    run.get(field),
                    Some(aixrun::gcp::firestore::Value::Timestamp(_))
                ),
                "{field}: {:?}",
                run.get(field)
            );
        }
        assert_eq!(run.str("session_id"), Some("s"));
        let journal = fs
            .page(
                &format!("runs/{id}"),
                &aixrun::gcp::firestore::Query::collection("journal"),
                10,
                None,
            )
            .await
            .unwrap();
        assert_eq!(journal.documents.len(), 1);
        assert_eq!(journal.documents[0].str("key"), Some("a/b#0@m1/t0"));
        assert!(journal.documents[0].get("expire_at").is_some());
        let keys = fs
            .get(&super::codec::key_path(&key))
            .await
            .unwrap()
            .expect("the key");
        assert_eq!(keys.str("run_id"), Some(id.as_str()));
    });
}
