//! A run's events and journal: written together in one commit per batch (with the run's
//! `last_seq`, and its result when the batch ends the run), read back in order.

use std::collections::HashMap;

use aixrun::gcp::firestore::{ErrorKind, Fields, Query, Write};

use super::codec::{self, EVENTS, JOURNAL, run_path, valid_id};
use super::{FirestoreStore, JOURNAL_PAGE, failed, store_error};
use crate::run::{Envelope, Event};
use crate::store::{RunStatus, StoreError};

pub(super) async fn commit(
    store: &FirestoreStore,
    id: &str,
    events: &[Envelope],
    entries: &[(String, serde_json::Value)],
) -> Result<(), StoreError> {
    let op = format!("commit to run {id}");
    if !valid_id(id) {
        return Err(failed(format!("{op}: not a run id")));
    }
    let fs = store.client().await?;
    let bad = |e: String| failed(format!("{op}: {e}"));
    let mut writes = Vec::with_capacity(events.len() + entries.len() + 1);
    for event in events {
        let f = codec::event_fields(event, store.ttl).map_err(bad)?;
        writes.push(Write::set(codec::event_path(id, event.seq), f));
    }
    for (key, value) in entries {
        let f = codec::journal_fields(key, value, store.ttl).map_err(bad)?;
        writes.push(Write::set(codec::journal_path(id, key), f));
    }
    let mut f = Fields::new();
    let mut mask = Vec::new();
    let finished = events.iter().rev().find_map(|e| match &e.event {
        Event::RunFinished(summary) => Some(summary),
        _ => None,
    });
    if let Some(summary) = finished {
        let status: RunStatus = summary.status.into();
        f.insert("status".into(), status.as_str().into());
        let result = serde_json::to_string(summary).map_err(|e| bad(e.to_string()))?;
        f.insert("result".into(), result.into());
        // Named in the mask, absent from the fields: the lease is removed.
        mask.extend(["status", "result", "lease_holder", "lease_until_ms"]);
    }
    // `last_seq` only ever goes up, without a read first: a commit that repeats stored
    // events (one retried after a timeout that had applied) cannot take it back.
    let mut update = store.run_update(id, f, &mask).if_exists(true);
    if let Some(last) = events.iter().map(|e| e.seq).max() {
        update = update.maximum("last_seq", i64::try_from(last).unwrap_or(i64::MAX));
    }
    // Firestore's limit per commit: a larger batch (a long burst of events) goes in
    // several, the run's document in the last, so that `last_seq` never runs ahead of the
    // events. Rewriting an event is harmless: its document id is its `seq`.
    let max = aixrun::gcp::firestore::MAX_WRITES - 1;
    while writes.len() > max {
        let rest = writes.split_off(max);
        store
            .commit_writes(fs, &writes)
            .await
            .map_err(|e| store_error(&op, &e))?;
        writes = rest;
    }
    writes.push(update);
    match store.commit_writes(fs, &writes).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            Err(failed(format!("{op}: no run {id} to commit to (expired?)")))
        }
        Err(e) => Err(store_error(&op, &e)),
    }
}

pub(super) async fn events(
    store: &FirestoreStore,
    id: &str,
    after: Option<u64>,
    limit: usize,
) -> Result<Vec<Envelope>, StoreError> {
    if !valid_id(id) || limit == 0 {
        return Ok(Vec::new());
    }
    let op = format!("read the events of run {id}");
    let fs = store.client().await?;
    let after = after.map_or(-1, |a| i64::try_from(a).unwrap_or(i64::MAX));
    let limit = u32::try_from(limit).unwrap_or(u32::MAX);
    let docs = fs
        .list_after(&run_path(id), EVENTS, "seq", after, limit)
        .await
        .map_err(|e| store_error(&op, &e))?;
    docs.iter()
        .map(codec::event_of)
        .collect::<Result<_, _>>()
        .map_err(|e| failed(format!("{op}: {e}")))
}

pub(super) async fn journal(
    store: &FirestoreStore,
    id: &str,
) -> Result<HashMap<String, serde_json::Value>, StoreError> {
    let mut journal = HashMap::new();
    if !valid_id(id) {
        return Ok(journal);
    }
    let op = format!("read the journal of run {id}");
    let fs = store.client().await?;
    let parent = run_path(id);
    let query = Query::collection(JOURNAL);
    let mut token = None;
    loop {
        let page = fs
            .page(&parent, &query, JOURNAL_PAGE, token.as_deref())
            .await
            .map_err(|e| store_error(&op, &e))?;
        for doc in &page.documents {
            let (key, value) = codec::journal_of(doc).map_err(|e| failed(format!("{op}: {e}")))?;
            journal.insert(key, value);
        }
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => return Ok(journal),
        }
    }
}
