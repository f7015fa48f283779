//! A run's lease, its cancellation and the end of an attempt: read-modify-writes of the run's
//! document under the read's `update_time`, so that two instances deciding at once cannot
//! both win (the loser reads again and decides on what the winner wrote).

use std::time::Duration;

use aixrun::gcp::firestore::Value;

use super::codec::{self, fields, valid_id};
use super::{FirestoreStore, Step, epoch_ms};
use crate::run::now;
use crate::store::{Lease, LeaseOutcome, RunRecord, RunStatus, StoreError};

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
            let Some(record) = record else {
                return Ok(Step::Done(()));
            };
            let spent = record.spent_ms.saturating_add(spent_ms);
            let mut f = fields([(
                "spent_ms",
                Value::Integer(i64::try_from(spent).unwrap_or(i64::MAX)),
            )]);
            let mut mask = vec!["spent_ms"];
            if record.lease.as_ref().is_some_and(|l| l.holder == holder) {
                mask.extend(["lease_holder", "lease_until_ms"]);
            }
            if !record.status.is_final() {
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
            if record.status.is_final() {
                return Ok(Step::Done(LeaseOutcome::Finished(record)));
            }
            let now_ms = epoch_ms();
            if let Some(lease) = &record.lease
                && lease.holder != holder
                && lease.until_ms > now_ms
            {
                return Ok(Step::Done(LeaseOutcome::Held {
                    holder: lease.holder.clone(),
                }));
            }
            let renewing = record.lease.as_ref().is_some_and(|l| l.holder == holder);
            let lease = Lease {
                holder: holder.to_owned(),
                until_ms: now_ms.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)),
            };
            let mut f = codec::lease_fields(&lease);
            let mut mask = vec!["lease_holder", "lease_until_ms"];
            record.lease = Some(lease);
            if !renewing {
                record.attempts += 1;
                record.status = RunStatus::Running;
                f.insert("attempts".into(), record.attempts.into());
                f.insert("status".into(), record.status.as_str().into());
                mask.extend(["attempts", "status"]);
            }
            record.updated_at = now();
            Ok(Step::Write(
                store.run_update(id, f, &mask),
                LeaseOutcome::Acquired(record),
            ))
        })
        .await
}
