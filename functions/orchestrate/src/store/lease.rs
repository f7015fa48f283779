//! The rules of a run's lease and of the end of an attempt, as pure functions over a
//! [`RunRecord`]: each back end applies them to the record it read (under its own lock, or
//! under Firestore's `update_time` precondition) and writes what changed.

use std::time::Duration;

use super::{Lease, LeaseOutcome, RunRecord, RunStatus};
use crate::run::now;

/// Milliseconds since the Unix epoch, as leases count time.
pub fn epoch_ms() -> u64 {
    let now = time::OffsetDateTime::now_utc();
    u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// What a granted lease changed in the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Granted {
    /// The holder's own lease, extended.
    Renewed,
    /// A new attempt: `attempts` and `status` changed too.
    NewAttempt,
}

/// Why a lease was not granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The run has ended.
    Finished,
    /// Another holder's lease still runs.
    Held(Lease),
}

impl Refused {
    /// What the store answers for `record`.
    pub(crate) fn outcome(self, record: RunRecord) -> LeaseOutcome {
        match self {
            Self::Finished => LeaseOutcome::Finished(record),
            Self::Held(lease) => LeaseOutcome::Held(lease),
        }
    }
}

/// What the end of an attempt changed in the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ended {
    /// The holder's lease was released.
    pub released: bool,
    /// The status was set (a run that had ended keeps its final status).
    pub status_set: bool,
}

impl RunRecord {
    /// Gives `holder` the lease for `ttl` from `now_ms` unless the run has ended or another
    /// holder's lease still runs (then nothing changed).
    pub(crate) fn take_lease(
        &mut self,
        holder: &str,
        ttl: Duration,
        now_ms: u64,
    ) -> Result<Granted, Refused> {
        if self.status.is_final() {
            return Err(Refused::Finished);
        }
        if let Some(lease) = &self.lease
            && lease.holder != holder
            && lease.until_ms > now_ms
        {
            return Err(Refused::Held(lease.clone()));
        }
        let renewing = self.lease.as_ref().is_some_and(|l| l.holder == holder);
        self.lease = Some(Lease {
            holder: holder.to_owned(),
            until_ms: now_ms.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)),
        });
        self.updated_at = now();
        if renewing {
            return Ok(Granted::Renewed);
        }
        self.attempts += 1;
        self.status = RunStatus::Running;
        Ok(Granted::NewAttempt)
    }

    /// Ends `holder`'s attempt: adds `spent_ms`, releases its lease (not another's, which
    /// took over) and sets `status` unless the run has ended.
    pub(crate) fn end_attempt(&mut self, holder: &str, status: RunStatus, spent_ms: u64) -> Ended {
        let released = self.lease.as_ref().is_some_and(|l| l.holder == holder);
        if released {
            self.lease = None;
        }
        self.spent_ms = self.spent_ms.saturating_add(spent_ms);
        let status_set = !self.status.is_final();
        if status_set {
            self.status = status;
        }
        self.updated_at = now();
        Ended {
            released,
            status_set,
        }
    }
}
