//! The store's contract, as test functions over any [`RunStore`]: the memory store runs them
//! here; the Firestore store runs the same functions against the emulator.

use std::time::Duration;

use serde_json::json;

use super::{
    Claim, Created, LeaseOutcome, RunFilter, RunRecord, RunStatus, RunStore, SessionTurn,
    StoreError,
};
use crate::run::{Envelope, Event, RunSummary, Status, Usage, now};

/// A unique id for this test process and `name`, so that tests can share one store.
pub(crate) fn unique(name: &str) -> String {
    format!("{name}-{}", &crate::run::run_id()[..10])
}

pub(crate) fn record(id: &str, session: Option<&str>) -> RunRecord {
    RunRecord {
        run_id: id.to_owned(),
        workflow: "w".to_owned(),
        status: RunStatus::Submitted,
        request: json!({"input": "hi", "workflow": "w"}),
        session_id: session.map(str::to_owned),
        created_at: now(),
        updated_at: now(),
        last_seq: None,
        result: None,
        cancel_requested: false,
        lease: None,
        attempts: 0,
        spent_ms: 0,
    }
}

fn event(run: &str, seq: u64, event: Event) -> Envelope {
    Envelope {
        run_id: run.to_owned(),
        seq,
        at: now(),
        step_id: None,
        parent_step_id: None,
        event,
    }
}

fn finished(status: Status) -> Event {
    Event::RunFinished(RunSummary {
        workflow: "w".to_owned(),
        status,
        output: json!("done"),
        error: None,
        steps: Vec::new(),
        usage: Usage::default(),
        duration_ms: 1,
        pending: Vec::new(),
    })
}

pub(crate) async fn create_get_and_idempotency(store: &dyn RunStore) {
    let id = unique("create");
    let key = unique("key");
    assert_eq!(
        store.create(&record(&id, None), Some(&key)).await.unwrap(),
        Created::New
    );
    let got = store.get(&id).await.unwrap().expect("the run was stored");
    assert_eq!(got.run_id, id);
    assert_eq!(got.status, RunStatus::Submitted);
    assert_eq!(got.request["input"], "hi");
    // The same key: the first run, and no second one.
    let again = unique("create");
    match store
        .create(&record(&again, None), Some(&key))
        .await
        .unwrap()
    {
        Created::Existing(existing) => assert_eq!(existing.run_id, id),
        other => panic!("expected the existing run, got {other:?}"),
    }
    assert!(store.get(&again).await.unwrap().is_none());
    assert!(store.get(&unique("missing")).await.unwrap().is_none());
}

pub(crate) async fn events_journal_and_result(store: &dyn RunStore) {
    let id = unique("events");
    store.create(&record(&id, None), None).await.unwrap();
    let started = event(
        &id,
        0,
        Event::RunStarted {
            workflow: "w".to_owned(),
        },
    );
    let entries = vec![("a@start".to_owned(), json!({"step_id": "s1"}))];
    store.commit(&id, &[started], &entries).await.unwrap();
    let deltas: Vec<Envelope> = (1..=3)
        .map(|seq| {
            event(
                &id,
                seq,
                Event::MessageDelta {
                    agent: "a".to_owned(),
                    delta: format!("d{seq}"),
                },
            )
        })
        .collect();
    store.commit(&id, &deltas, &[]).await.unwrap();
    let all = store.events(&id, None, 100).await.unwrap();
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_eq!(all[2], deltas[1]);
    let after = store.events(&id, Some(1), 1).await.unwrap();
    assert_eq!(after.iter().map(|e| e.seq).collect::<Vec<_>>(), [2]);
    let journal = store.journal(&id).await.unwrap();
    assert_eq!(journal["a@start"], json!({"step_id": "s1"}));
    let run = store.get(&id).await.unwrap().unwrap();
    assert_eq!(run.last_seq, Some(3));
    store
        .commit(&id, &[event(&id, 4, finished(Status::Completed))], &[])
        .await
        .unwrap();
    let run = store.get(&id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Stopped(Status::Completed));
    assert_eq!(run.result.unwrap().output, json!("done"));
}

pub(crate) async fn list_by_session_status_and_page(store: &dyn RunStore) {
    let session = unique("list");
    let mut ids = Vec::new();
    for _ in 0..5 {
        let id = unique("listed");
        store
            .create(&record(&id, Some(&session)), None)
            .await
            .unwrap();
        ids.push(id);
        // Distinct creation times for a store that orders by them.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    store
        .create(&record(&unique("other"), None), None)
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut filter = RunFilter {
        session_id: Some(session.clone()),
        status: None,
        page_size: 2,
        page_token: None,
    };
    loop {
        let page = store.list(&filter).await.unwrap();
        assert!(page.runs.len() <= 2);
        seen.extend(page.runs.into_iter().map(|r| r.run_id));
        match page.next_page_token {
            Some(token) => filter.page_token = Some(token),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids, "newest first, every run once");
    let filter = RunFilter {
        session_id: Some(session),
        status: Some(RunStatus::Stopped(Status::Completed)),
        page_size: 10,
        page_token: None,
    };
    assert!(store.list(&filter).await.unwrap().runs.is_empty());
    // A token the store never gave is refused, not taken as "from the start".
    let filter = RunFilter {
        page_token: Some("not-a-token".to_owned()),
        ..filter
    };
    match store.list(&filter).await {
        Err(StoreError::Invalid { reason, .. }) => {
            assert!(reason.contains("page_token"), "{reason}")
        }
        other => panic!("expected the page token refused, got {other:?}"),
    }
}

/// `ttl`: a lease's, long enough for a few of the store's round trips.
pub(crate) async fn leases(store: &dyn RunStore, ttl: Duration) {
    let id = unique("lease");
    store.create(&record(&id, None), None).await.unwrap();
    match store.lease(&id, "a", ttl).await.unwrap() {
        LeaseOutcome::Acquired(r) => {
            assert_eq!(r.status, RunStatus::Running);
            assert_eq!(r.attempts, 1);
        }
        other => panic!("expected the lease, got {other:?}"),
    }
    match store.lease(&id, "b", ttl).await.unwrap() {
        LeaseOutcome::Held(lease) => assert_eq!(lease.holder, "a"),
        other => panic!("expected the lease to be held by a, got {other:?}"),
    }
    // Renewing is not a new attempt.
    match store.lease(&id, "a", ttl).await.unwrap() {
        LeaseOutcome::Acquired(r) => assert_eq!(r.attempts, 1),
        other => panic!("expected a renewal, got {other:?}"),
    }
    tokio::time::sleep(ttl + ttl / 2).await;
    match store.lease(&id, "b", ttl).await.unwrap() {
        LeaseOutcome::Acquired(r) => assert_eq!(r.attempts, 2),
        other => panic!("an expired lease is taken over, got {other:?}"),
    }
    store
        .end_attempt(&id, "b", RunStatus::Suspended, 1500)
        .await
        .unwrap();
    let run = store.get(&id).await.unwrap().unwrap();
    assert_eq!(
        (run.status, run.spent_ms, run.lease),
        (RunStatus::Suspended, 1500, None)
    );
    let cancelled = store.request_cancel(&id).await.unwrap().unwrap();
    assert!(cancelled.cancel_requested);
    store
        .commit(&id, &[event(&id, 0, finished(Status::Cancelled))], &[])
        .await
        .unwrap();
    assert!(matches!(
        store.lease(&id, "c", ttl).await.unwrap(),
        LeaseOutcome::Finished(_)
    ));
    assert_eq!(
        store.lease(&unique("missing"), "c", ttl).await.unwrap(),
        LeaseOutcome::NotFound
    );
}

pub(crate) async fn sessions(store: &dyn RunStore) {
    let session = unique("session");
    match store.claim_session(&session, "r1").await.unwrap() {
        Claim::Claimed(s) => assert!(s.turns.is_empty()),
        other => panic!("expected the claim, got {other:?}"),
    }
    assert_eq!(
        store.claim_session(&session, "r2").await.unwrap(),
        Claim::Busy {
            run_id: "r1".to_owned()
        }
    );
    let turn = SessionTurn {
        run_id: "r1".to_owned(),
        input: "hello".to_owned(),
        output: "hi there".to_owned(),
        tools: vec!["echo".to_owned()],
        at: now(),
    };
    store
        .end_turn(&session, "r1", Some(turn.clone()))
        .await
        .unwrap();
    match store.claim_session(&session, "r2").await.unwrap() {
        Claim::Claimed(s) => assert_eq!(s.turns, vec![turn]),
        other => panic!("expected the claim, got {other:?}"),
    }
    // A run that gave no turn only releases the session.
    store.end_turn(&session, "r2", None).await.unwrap();
    let s = store.session(&session).await.unwrap().unwrap();
    assert_eq!((s.turns.len(), s.active_run), (1, None));
    assert!(store.delete_session(&session).await.unwrap());
    assert!(!store.delete_session(&session).await.unwrap());
    assert!(store.session(&session).await.unwrap().is_none());
}

/// How the Firestore tests are marked, and what a missing emulator says.
const NEEDS: &str = "needs the Firestore emulator: eval \"$(bash scripts/emulators.sh)\"";

/// Runs a Firestore test on the one runtime they all share (see the function).
pub(crate) use aixrun::outbound::one_runtime::block_on;

/// A Firestore store on the emulator; fails (never skips) when its variables are unset.
pub(crate) fn firestore_store() -> super::firestore::FirestoreStore {
    for var in ["FIRESTORE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT"] {
        if std::env::var(var).is_ok_and(|v| v.is_empty()) || std::env::var(var).is_err() {
            panic!("{var} is unset; this test {NEEDS}");
        }
    }
    let env = aixrun::Env::from_pairs(std::env::vars());
    let config =
        super::StoreConfig::from_env(&aixrun::Env::from_pairs([("RUN_STORE", "firestore")]))
            .expect("the store's configuration");
    super::firestore::FirestoreStore::new(env, &config)
}

/// The same contract on the Firestore emulator.
mod firestore {
    use std::time::Duration;

    use super::{block_on, firestore_store as store};

    #[test]
    #[ignore = "needs the Firestore emulator: eval \"$(bash scripts/emulators.sh)\""]
    fn create_get_and_idempotency() {
        block_on(super::create_get_and_idempotency(&store()));
    }

    #[test]
    #[ignore = "needs the Firestore emulator: eval \"$(bash scripts/emulators.sh)\""]
    fn events_journal_and_result() {
        block_on(super::events_journal_and_result(&store()));
    }

    #[test]
    #[ignore = "needs the Firestore emulator: eval \"$(bash scripts/emulators.sh)\""]
    fn list_by_session_status_and_page() {
        block_on(super::list_by_session_status_and_page(&store()));
    }

    #[test]
    #[ignore = "needs the Firestore emulator: eval \"$(bash scripts/emulators.sh)\""]
    fn leases() {
        // Each lease is a read and a write, tens of milliseconds on the emulator (more on a
        // busy machine): the lease outlasts a few of them.
        block_on(super::leases(&store(), Duration::from_millis(1500)));
    }

    #[test]
    #[ignore = "needs the Firestore emulator: eval \"$(bash scripts/emulators.sh)\""]
    fn sessions() {
        block_on(super::sessions(&store()));
    }
}

mod memory {
    use super::super::memory::MemoryStore;

    #[tokio::test]
    async fn create_get_and_idempotency() {
        super::create_get_and_idempotency(&MemoryStore::new(100)).await;
    }

    #[tokio::test]
    async fn events_journal_and_result() {
        super::events_journal_and_result(&MemoryStore::new(100)).await;
    }

    #[tokio::test]
    async fn list_by_session_status_and_page() {
        super::list_by_session_status_and_page(&MemoryStore::new(100)).await;
    }

    #[tokio::test]
    async fn leases() {
        super::leases(
            &MemoryStore::new(100),
            std::time::Duration::from_millis(400),
        )
        .await;
    }

    #[tokio::test]
    async fn sessions() {
        super::sessions(&MemoryStore::new(100)).await;
    }

    #[tokio::test]
    async fn the_oldest_finished_runs_are_evicted_first() {
        use super::super::RunStore as _;
        let store = MemoryStore::new(2);
        let running = super::unique("running");
        store
            .create(&super::record(&running, None), None)
            .await
            .unwrap();
        let done = super::unique("done");
        store
            .create(&super::record(&done, None), None)
            .await
            .unwrap();
        let end = super::event(&done, 0, super::finished(super::Status::Completed));
        store.commit(&done, &[end], &[]).await.unwrap();
        let newest = super::unique("newest");
        store
            .create(&super::record(&newest, None), None)
            .await
            .unwrap();
        assert!(
            store.get(&running).await.unwrap().is_some(),
            "running runs stay"
        );
        assert!(
            store.get(&done).await.unwrap().is_none(),
            "the finished one went"
        );
        assert!(store.get(&newest).await.unwrap().is_some());
    }
}
