//! The Firestore store (`RUN_STORE=firestore`): runs, their events and journals, sessions and
//! idempotency keys in Firestore (Native mode), through [`aixrun::gcp::firestore`]'s REST
//! client. Any number of instances share it; every race between them (a key used twice, two
//! runs on a session, two deliveries of a run) is decided by a commit's preconditions.
//!
//! Layout (paths below the database's documents):
//!
//! - `runs/{run_id}`: the fields queries and preconditions use, typed (`run_id`, `workflow`,
//!   `status`, `session_id`, `created_at` and `updated_at` timestamps, `last_seq`,
//!   `cancel_requested`, `lease_holder`, `lease_until_ms`, `attempts`, `spent_ms`), and the
//!   run's `request` and `result` as JSON text.
//! - `runs/{run_id}/events/{seq, 12 digits}`: `seq` and the event's `envelope` as JSON text,
//!   one document per event (a document sustains about one write a second; a collection
//!   takes a commit's worth at once).
//! - `runs/{run_id}/journal/k{base64url of the key}`: the `key` (journal keys hold `/`, `@`,
//!   `#`) and its `value` as JSON text.
//! - `sessions/{session_id}`: `turns` as JSON text, `active_run`, `updated_at`.
//! - `idempotency/{hex SHA-256 of the key}`: the `run_id` it made.
//!
//! A document is at most 1 MiB: a run whose request or result, or an event or journal value
//! (a tool's result), is larger fails to be stored, with Firestore's words. A session keeps
//! its latest turns within [`session::TURNS_BYTES`].
//!
//! Every document has `expire_at` (written at `RUN_TTL` from each write): with a TTL policy on
//! each collection group, Firestore deletes what nobody wrote for that long (within a day of
//! it; the emulator never does):
//!
//! ```sh
//! for group in runs events journal sessions idempotency; do
//!   gcloud firestore fields ttls update expire_at --collection-group=$group --enable-ttl
//! done
//! ```
//!
//! Costs, the target of the design: creating a run is one commit; each batch of events with
//! the journal entry of a node boundary is one commit (events, entries and the run's
//! `last_seq` together, all or nothing); a lease, a session claim, a cancel and the end of an
//! attempt read and write back under the read's `update_time` (two round trips, more only
//! when another instance wrote in between).

mod attempts;
mod codec;
mod events;
mod session;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aixrun::config::Env;
use aixrun::gcp::firestore::{
    Direction, Document, Error, ErrorKind, Fields, Firestore, Op, Precondition, Query, Value, Write,
};
use async_trait::async_trait;
use tokio::sync::OnceCell;

use super::{
    Claim, Created, LeaseOutcome, RunFilter, RunPage, RunRecord, RunStatus, RunStore, Session,
    SessionTurn, StoreConfig, StoreError,
};
use crate::run::Envelope;
use codec::{RUNS, fields, run_path, valid_id};

const STORE: &str = "firestore";
/// Read-modify-writes tried before giving up: each retry follows another instance's write.
const TRIES: usize = 5;
/// Journal documents read at a time.
const JOURNAL_PAGE: u32 = 300;

/// The store.
pub struct FirestoreStore {
    env: Env,
    ttl: Duration,
    /// Made on first use: start-up never waits for the metadata server.
    client: OnceCell<Firestore>,
    commits: AtomicU64,
    writes: AtomicU64,
}

/// What the store has sent so far (for benchmarks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// HTTP requests to Firestore.
    pub round_trips: u64,
    /// Commits among them.
    pub commits: u64,
    /// Document writes in those commits.
    pub writes: u64,
}

/// The error of `op` in the store's terms: 503 for a Firestore that is down, else 500.
fn store_error(op: &str, e: &Error) -> StoreError {
    let reason = format!("{op}: {e}");
    match e.kind() {
        ErrorKind::Unavailable => StoreError::Unavailable {
            store: STORE,
            reason,
        },
        _ => StoreError::Failed {
            store: STORE,
            reason,
        },
    }
}

fn failed(reason: String) -> StoreError {
    StoreError::Failed {
        store: STORE,
        reason,
    }
}

/// What a read-modify-write decided on the document it read.
enum Step<T> {
    /// Write this (the helper adds the precondition: unchanged since the read, or still
    /// missing), then answer `T`.
    Write(Write, T),
    /// Nothing to write: answer `T`.
    Done(T),
}

impl FirestoreStore {
    /// A store for the variables in `env` (`GOOGLE_CLOUD_PROJECT`, `FIRESTORE_DATABASE`,
    /// `FIRESTORE_EMULATOR_HOST`), read on first use.
    pub fn new(env: Env, config: &StoreConfig) -> Self {
        Self {
            env,
            ttl: config.ttl,
            client: OnceCell::new(),
            commits: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        }
    }

    /// The client, made on first use; a misconfiguration names the variable to set.
    pub async fn client(&self) -> Result<&Firestore, StoreError> {
        self.client
            .get_or_try_init(|| Firestore::from_env(&self.env))
            .await
            .map_err(|e| store_error("connecting", &e))
    }

    /// Round trips, commits and writes so far.
    pub fn stats(&self) -> Stats {
        Stats {
            round_trips: self.client.get().map_or(0, Firestore::round_trips),
            commits: self.commits.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
        }
    }

    async fn commit_writes(&self, fs: &Firestore, writes: &[Write]) -> Result<(), Error> {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.writes
            .fetch_add(writes.len() as u64, Ordering::Relaxed);
        fs.commit(writes).await.map(|_| ())
    }

    async fn get_doc(&self, op: &str, path: &str) -> Result<Option<Document>, StoreError> {
        let fs = self.client().await?;
        fs.get(path).await.map_err(|e| store_error(op, &e))
    }

    /// Reads the document at `path`, lets `decide` choose, and writes what it chose only if
    /// nobody wrote the document since the read (or, when it was missing, still nobody made
    /// it); when someone did, reads again and decides again.
    async fn read_modify_write<T>(
        &self,
        op: &str,
        path: &str,
        mut decide: impl FnMut(Option<&Document>) -> Result<Step<T>, StoreError>,
    ) -> Result<T, StoreError> {
        let fs = self.client().await?;
        for _ in 0..TRIES {
            let doc = fs.get(path).await.map_err(|e| store_error(op, &e))?;
            let (write, answer) = match decide(doc.as_ref())? {
                Step::Done(answer) => return Ok(answer),
                Step::Write(write, answer) => (write, answer),
            };
            let precondition = match doc.as_ref().and_then(|d| d.update_time) {
                Some(read_at) => Precondition::UpdateTime(read_at),
                None => Precondition::Exists(false),
            };
            match self
                .commit_writes(fs, &[write.precondition(Some(precondition))])
                .await
            {
                Ok(()) => return Ok(answer),
                // Another instance wrote (or deleted) it since the read: read again. (The
                // emulator answers NotFound where Firestore would answer a failed
                // precondition.)
                Err(e) if matches!(e.kind(), ErrorKind::Conflict | ErrorKind::NotFound) => {}
                Err(e) => return Err(store_error(op, &e)),
            }
        }
        Err(failed(format!(
            "{op}: {path} changed under each of {TRIES} tries; try again"
        )))
    }

    /// Reads a run and decides on its record.
    async fn update_run<T>(
        &self,
        op: &str,
        id: &str,
        mut decide: impl FnMut(Option<RunRecord>) -> Result<Step<T>, StoreError>,
    ) -> Result<T, StoreError> {
        let path = run_path(id);
        self.read_modify_write(op, &path, |doc| {
            let record = doc
                .map(codec::run_of)
                .transpose()
                .map_err(|e| failed(format!("{op}: {e}")))?;
            decide(record)
        })
        .await
    }

    /// An update of run `id`'s `mask` fields to `fields` (plus `updated_at` and `expire_at`).
    fn run_update(&self, id: &str, mut f: Fields, mask: &[&str]) -> Write {
        f.insert("updated_at".into(), now_value());
        f.insert(codec::EXPIRE_AT.into(), codec::expire_at(self.ttl));
        let mask = mask.iter().copied().chain(["updated_at", codec::EXPIRE_AT]);
        Write::update(run_path(id), f, mask)
    }
}

fn now_value() -> Value {
    Value::Timestamp(time::OffsetDateTime::now_utc())
}

#[async_trait]
impl RunStore for FirestoreStore {
    fn name(&self) -> &'static str {
        STORE
    }

    async fn create(&self, run: &RunRecord, key: Option<&str>) -> Result<Created, StoreError> {
        let op = format!("create run {}", run.run_id);
        let fs = self.client().await?;
        let run_fields =
            codec::run_fields(run, self.ttl).map_err(|e| failed(format!("{op}: {e}")))?;
        let run_write = Write::create(run_path(&run.run_id), run_fields);
        let Some(key) = key else {
            self.commit_writes(fs, &[run_write])
                .await
                .map_err(|e| store_error(&op, &e))?;
            return Ok(Created::New);
        };
        let key_path = codec::key_path(key);
        let key_fields = || {
            fields([
                ("run_id", run.run_id.as_str().into()),
                (codec::EXPIRE_AT, codec::expire_at(self.ttl)),
            ])
        };
        let mut key_write = Write::create(&key_path, key_fields());
        for _ in 0..TRIES {
            match self
                .commit_writes(fs, &[key_write, run_write.clone()])
                .await
            {
                Ok(()) => return Ok(Created::New),
                Err(e) if e.is_conflict() => {}
                Err(e) => return Err(store_error(&op, &e)),
            }
            // The key was used: the run it made.
            let Some(doc) = fs.get(&key_path).await.map_err(|e| store_error(&op, &e))? else {
                return Err(failed(format!("{op}: a run {} exists already", run.run_id)));
            };
            let existing = doc.str("run_id").unwrap_or_default();
            if valid_id(existing)
                && let Some(record) = self.get(existing).await?
            {
                return Ok(Created::Existing(Box::new(record)));
            }
            // Its run expired before it: the key is free again, unless another instance
            // takes it first.
            key_write = match doc.update_time {
                Some(at) => Write::set(&key_path, key_fields()).if_updated_at(at),
                None => Write::create(&key_path, key_fields()),
            };
        }
        Err(failed(format!(
            "{op}: its idempotency key changed under each of {TRIES} tries; try again"
        )))
    }

    async fn get(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        if !valid_id(id) {
            return Ok(None);
        }
        let op = format!("read run {id}");
        self.get_doc(&op, &run_path(id))
            .await?
            .map(|d| codec::run_of(&d))
            .transpose()
            .map_err(|e| failed(format!("{op}: {e}")))
    }

    async fn list(&self, filter: &RunFilter) -> Result<RunPage, StoreError> {
        // On Google Cloud, a filter with the order needs a composite index (the emulator needs
        // none; Firestore's refusal names the one to create):
        //   gcloud firestore indexes composite create --collection-group=runs \
        //     --field-config=field-path=session_id,order=ascending \
        //     --field-config=field-path=created_at,order=descending
        // and the same with `status` in place of `session_id`, and with both (session_id,
        // status, created_at descending).
        let mut query = Query::collection(RUNS);
        if let Some(session) = &filter.session_id {
            query = query.filter("session_id", Op::Equal, session.as_str());
        }
        if let Some(status) = filter.status {
            query = query.filter("status", Op::Equal, status.as_str());
        }
        let query = query.order_by("created_at", Direction::Descending);
        let fs = self.client().await?;
        let size = u32::try_from(filter.page_size.clamp(1, 100)).unwrap_or(100);
        let page = fs
            .page("", &query, size, filter.page_token.as_deref())
            .await
            .map_err(|e| match e.kind() {
                // The one thing a listing's caller can get wrong: the token.
                ErrorKind::Invalid => StoreError::Invalid {
                    store: STORE,
                    reason: format!(
                        "page_token {:?}: {e}",
                        filter.page_token.as_deref().unwrap_or("")
                    ),
                },
                _ => store_error("list runs", &e),
            })?;
        let runs = page
            .documents
            .iter()
            .map(codec::run_of)
            .collect::<Result<_, _>>()
            .map_err(|e| failed(format!("list runs: {e}")))?;
        Ok(RunPage {
            runs,
            next_page_token: page.next_page_token,
        })
    }

    async fn commit(
        &self,
        id: &str,
        events: &[Envelope],
        entries: &[(String, serde_json::Value)],
    ) -> Result<(), StoreError> {
        events::commit(self, id, events, entries).await
    }

    async fn events(
        &self,
        id: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Envelope>, StoreError> {
        events::events(self, id, after, limit).await
    }

    async fn journal(&self, id: &str) -> Result<HashMap<String, serde_json::Value>, StoreError> {
        events::journal(self, id).await
    }

    async fn end_attempt(
        &self,
        id: &str,
        holder: &str,
        status: RunStatus,
        spent_ms: u64,
    ) -> Result<(), StoreError> {
        attempts::end_attempt(self, id, holder, status, spent_ms).await
    }

    async fn request_cancel(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        attempts::request_cancel(self, id).await
    }

    async fn lease(
        &self,
        id: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<LeaseOutcome, StoreError> {
        attempts::lease(self, id, holder, ttl).await
    }

    async fn claim_session(&self, id: &str, run_id: &str) -> Result<Claim, StoreError> {
        session::claim(self, id, run_id).await
    }

    async fn end_turn(
        &self,
        id: &str,
        run_id: &str,
        turn: Option<SessionTurn>,
    ) -> Result<(), StoreError> {
        session::end_turn(self, id, run_id, turn).await
    }

    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        session::get(self, id).await
    }

    async fn delete_session(&self, id: &str) -> Result<bool, StoreError> {
        session::delete(self, id).await
    }
}

#[cfg(test)]
mod tests;
