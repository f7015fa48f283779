//! Sessions in Firestore: one document each, claimed by one run at a time under the read's
//! `update_time` (two instances claiming at once: one commit fails, and its instance reads
//! again and finds the session busy).

use aixrun::gcp::firestore::{ErrorKind, Precondition, Write};

use super::{FirestoreStore, Step, codec, failed, store_error};
use crate::run::now;
use crate::store::{Claim, Session, SessionTurn, StoreError};

/// The most bytes of turns (as JSON) a session's document keeps: the oldest go first beyond
/// it, so that a long conversation stays under Firestore's 1 MiB a document (a model sees
/// only the latest `session.max_turns` anyway).
pub(crate) const TURNS_BYTES: usize = 768 * 1024;

fn write(store: &FirestoreStore, op: &str, session: &Session) -> Result<Write, StoreError> {
    let f = codec::session_fields(session, store.ttl).map_err(|e| failed(format!("{op}: {e}")))?;
    Ok(Write::set(codec::session_path(&session.session_id), f))
}

/// Drops the oldest turns beyond [`TURNS_BYTES`].
fn trim(turns: &mut Vec<SessionTurn>) {
    let sizes: Vec<usize> = turns
        .iter()
        .map(|t| serde_json::to_string(t).map_or(0, |s| s.len() + 1))
        .collect();
    let mut total: usize = sizes.iter().sum();
    let mut drop = 0;
    while total > TURNS_BYTES && drop < turns.len() {
        total -= sizes[drop];
        drop += 1;
    }
    turns.drain(..drop);
}

pub(super) async fn claim(
    store: &FirestoreStore,
    id: &str,
    run_id: &str,
) -> Result<Claim, StoreError> {
    let op = format!("claim session {id}");
    if !codec::valid_id(id) {
        return Err(failed(format!("{op}: not a session id")));
    }
    store
        .read_modify_write(&op, &codec::session_path(id), |doc| {
            let mut session = match doc {
                Some(doc) => codec::session_of(doc).map_err(|e| failed(format!("{op}: {e}")))?,
                None => Session {
                    session_id: id.to_owned(),
                    turns: Vec::new(),
                    active_run: None,
                    updated_at: now(),
                },
            };
            if let Some(other) = session.active_run.as_ref().filter(|r| *r != run_id) {
                return Ok(Step::Done(Claim::Busy {
                    run_id: other.clone(),
                }));
            }
            session.active_run = Some(run_id.to_owned());
            session.updated_at = now();
            Ok(Step::Write(
                write(store, &op, &session)?,
                Claim::Claimed(session),
            ))
        })
        .await
}

pub(super) async fn end_turn(
    store: &FirestoreStore,
    id: &str,
    run_id: &str,
    turn: Option<SessionTurn>,
) -> Result<(), StoreError> {
    let op = format!("end run {run_id}'s turn of session {id}");
    if !codec::valid_id(id) {
        return Ok(());
    }
    store
        .read_modify_write(&op, &codec::session_path(id), |doc| {
            let Some(doc) = doc else {
                return Ok(Step::Done(()));
            };
            let mut session = codec::session_of(doc).map_err(|e| failed(format!("{op}: {e}")))?;
            if session.active_run.as_deref() != Some(run_id) {
                return Ok(Step::Done(()));
            }
            session.active_run = None;
            session.turns.extend(turn.clone());
            trim(&mut session.turns);
            session.updated_at = now();
            Ok(Step::Write(write(store, &op, &session)?, ()))
        })
        .await
}

pub(super) async fn get(store: &FirestoreStore, id: &str) -> Result<Option<Session>, StoreError> {
    if !codec::valid_id(id) {
        return Ok(None);
    }
    let op = format!("read session {id}");
    store
        .get_doc(&op, &codec::session_path(id))
        .await?
        .map(|d| codec::session_of(&d))
        .transpose()
        .map_err(|e| failed(format!("{op}: {e}")))
}

pub(super) async fn delete(store: &FirestoreStore, id: &str) -> Result<bool, StoreError> {
    if !codec::valid_id(id) {
        return Ok(false);
    }
    let op = format!("delete session {id}");
    let fs = store.client().await?;
    // Must exist: the answer says whether it did, in one round trip.
    match fs
        .delete(&codec::session_path(id), Some(Precondition::Exists(true)))
        .await
    {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(store_error(&op, &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_turns_go_first_beyond_the_limit() {
        let turn = |i: usize| SessionTurn {
            run_id: format!("r{i}"),
            input: "x".repeat(100 * 1024),
            output: String::new(),
            tools: Vec::new(),
            at: now(),
        };
        let mut turns: Vec<SessionTurn> = (0..10).map(turn).collect();
        trim(&mut turns);
        assert_eq!(turns.len(), 7);
        assert_eq!(turns[0].run_id, "r3");
        let mut few: Vec<SessionTurn> = (0..2).map(turn).collect();
        trim(&mut few);
        assert_eq!(few.len(), 2);
    }
}
