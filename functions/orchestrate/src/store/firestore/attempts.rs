//! A run's lease, its cancellation and the end of an attempt: read-modify-writes of the run's
//! document under the read's `update_time`, so that two instances deciding at once cannot
//! both win (the loser reads again and decides on what the winner wrote).

use std::time::Duration;

use aixrun::gcp::firestore::Value;

use super::codec::{self, fields, valid_id};
use super::{FirestoreStore, Step};
use crate::run::now;
use crate::store::lease::{Granted, epoch_ms};
use crate::store::{LeaseOutcome, RunRecord, RunStatus, StoreError};

pub(super) async fn end_attempt(
    store: &FirestoreStore,
    id: &str,
    holder: &str,
    status: RunStatus,
    spent_ms: u64,
) -> Result<(), StoreError> {
    if !valid_id(id) {
        return Ok(());
    }
    let op = format!("end an attempt at run {id}");
    store
        .update_run(&op, id, |record| {
            let Some(mut record) = record else {
                return Ok(Step::Done(()));
            };
            let ended = record.end_attempt(holder, status, spent_ms);
            let spent = i64::try_from(record.spent_ms).unwrap_or(i64::MAX);
            let mut f = fields([("spent_ms", Value::Integer(spent))]);
            let mut mask = vec!["spent_ms"];
            if ended.released {
                mask.extend(["lease_holder", "lease_until_ms"]);
            }
            if ended.status_set {
                f.insert("status".into(), status.as_str().into());
                mask.push("status");
            }
            Ok(Step::Write(store.run_update(id, f, &mask), ()))
        })
        .await
}

pub(super) async fn request_cancel(
    store: &FirestoreStore,
    id: &str,
) -> Result<Option<RunRecord>, StoreError> {
    if !valid_id(id) {
        return Ok(None);
    }
    let op = format!("cancel run {id}");
    store
        .update_run(&op, id, |record| {
            let Some(mut record) = record else {
                return Ok(Step::Done(None));
            };
            if record.status.is_final() {
                return Ok(Step::Done(Some(record)));
            }
            record.cancel_requested = true;
            record.updated_at = now();
            let f = fields([("cancel_requested", true.into())]);
            Ok(Step::Write(
                store.run_update(id, f, &["cancel_requested"]),
                Some(record),
            ))
        })
        .await
}

pub(super) async fn lease(
    store: &FirestoreStore,
    id: &str,
    holder: &str,
    ttl: Duration,
) -> Result<LeaseOutcome, StoreError> {
    if !valid_id(id) {
        return Ok(LeaseOutcome::NotFound);
    }
    let op = format!("lease run {id}");
    store
        .update_run(&op, id, |record| {
            let Some(mut record) = record else {
                return Ok(Step::Done(LeaseOutcome::NotFound));
            };
            let granted = match record.take_lease(holder, ttl, epoch_ms()) {
                Ok(granted) => granted,
                Err(refused) => return Ok(Step::Done(refused.outcome(record))),
            };
            let lease = record.lease.as_ref().expect("a granted lease is set");
            let mut f = codec::lease_fields(lease);
            let mut mask = vec!["lease_holder", "lease_until_ms"];
            if granted == Granted::NewAttempt {
                f.insert("attempts".into(), record.attempts.into());
                f.insert("status".into(), record.status.as_str().into());
                mask.extend(["attempts", "status"]);
            }
            Ok(Step::Write(
                store.run_update(id, f, &mask),
                LeaseOutcome::Acquired(record),
            ))
        })
        .await
}
