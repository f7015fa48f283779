//! Runs, events, journal entries and sessions as Firestore documents and back (the layout is
//! in the parent module's documentation). Fields a query filters or orders on, or a
//! read-modify-write looks at, are typed; what is only ever read whole (a run's request and
//! result, an event, a journal value, a session's turns) is JSON in a string field, which keeps
//! any key (Firestore reserves `__x__` field names) and any nesting (no arrays in arrays).

use std::time::Duration;

use aixrun::gcp::firestore::{Document, Fields, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::run::Envelope;
use crate::store::{Lease, RunRecord, RunStatus, Session};

/// Where the runs are.
pub(super) const RUNS: &str = "runs";
/// A run's events, under its document.
pub(super) const EVENTS: &str = "events";
/// A run's journal, under its document.
pub(super) const JOURNAL: &str = "journal";
/// Where the sessions are.
pub(super) const SESSIONS: &str = "sessions";
/// Where the idempotency keys are.
pub(super) const KEYS: &str = "idempotency";
/// The field the TTL policies delete by.
pub(super) const EXPIRE_AT: &str = "expire_at";
/// Digits of an event's document id: ids sort as their numbers do.
const SEQ_DIGITS: usize = 12;

/// Whether `id` can be a document id as it is: not empty, no `/`, not `.`, `..` or `__x__`,
/// at most 1500 bytes. An id that cannot names nothing stored.
pub(super) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 1500
        && !id.contains('/')
        && id != "."
        && id != ".."
        && !(id.starts_with("__") && id.ends_with("__"))
}

pub(super) fn run_path(id: &str) -> String {
    format!("{RUNS}/{id}")
}

pub(super) fn event_path(run: &str, seq: u64) -> String {
    format!("{RUNS}/{run}/{EVENTS}/{seq:0SEQ_DIGITS$}")
}

/// A journal key (`planner/writer#0@m1/t0`: `/`, `@` and `#` in it) as a document id: `k` and
/// its URL-safe base64, which is never empty, never `__x__`, and has no `/`.
pub(super) fn journal_path(run: &str, key: &str) -> String {
    use base64::Engine as _;
    let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key);
    format!("{RUNS}/{run}/{JOURNAL}/k{id}")
}

pub(super) fn session_path(id: &str) -> String {
    format!("{SESSIONS}/{id}")
}

/// An idempotency key as a document id: the hex SHA-256 of the key, so that any key (any
/// length, any character) has one, and the key itself is not stored.
pub(super) fn key_path(key: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("{KEYS}/{hex}")
}

/// When a document written now expires, `ttl` from now.
pub(super) fn expire_at(ttl: Duration) -> Value {
    let ttl = time::Duration::try_from(ttl).unwrap_or(time::Duration::MAX);
    Value::Timestamp(
        OffsetDateTime::now_utc()
            .checked_add(ttl)
            .unwrap_or(OffsetDateTime::now_utc() + time::Duration::days(365 * 100)),
    )
}

/// An RFC 3339 time (as the records hold them) as a timestamp.
pub(super) fn timestamp(field: &str, text: &str) -> Result<Value, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(Value::Timestamp)
        .map_err(|e| format!("{field} {text:?} is not an RFC 3339 time: {e}"))
}

fn json_text<T: Serialize>(field: &str, value: &T) -> Result<Value, String> {
    serde_json::to_string(value)
        .map(Value::String)
        .map_err(|e| format!("{field} cannot be written as JSON: {e}"))
}

fn int(n: u64) -> Value {
    Value::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

pub(super) fn fields<const N: usize>(pairs: [(&str, Value); N]) -> Fields {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// A run's document.
pub(super) fn run_fields(run: &RunRecord, ttl: Duration) -> Result<Fields, String> {
    let mut f = fields([
        ("run_id", run.run_id.as_str().into()),
        ("workflow", run.workflow.as_str().into()),
        ("status", run.status.as_str().into()),
        ("created_at", timestamp("created_at", &run.created_at)?),
        ("updated_at", timestamp("updated_at", &run.updated_at)?),
        ("cancel_requested", run.cancel_requested.into()),
        ("attempts", run.attempts.into()),
        ("spent_ms", int(run.spent_ms)),
        ("request", json_text("request", &run.request)?),
        (EXPIRE_AT, expire_at(ttl)),
    ]);
    if let Some(session) = &run.session_id {
        f.insert("session_id".into(), session.as_str().into());
    }
    if let Some(seq) = run.last_seq {
        f.insert("last_seq".into(), int(seq));
    }
    if let Some(result) = &run.result {
        f.insert("result".into(), json_text("result", result)?);
    }
    if let Some(lease) = &run.lease {
        f.extend(lease_fields(lease));
    }
    Ok(f)
}

/// The lease's fields (`lease_holder`, `lease_until_ms`); left out of a write's fields but
/// named in its mask, they are removed.
pub(super) fn lease_fields(lease: &Lease) -> Fields {
    fields([
        ("lease_holder", lease.holder.as_str().into()),
        ("lease_until_ms", int(lease.until_ms)),
    ])
}

/// What a malformed document says, naming it.
fn bad(doc: &Document, why: impl std::fmt::Display) -> String {
    format!(
        "the stored document {} is not as written: {why}",
        doc.path()
    )
}

fn text<'a>(doc: &'a Document, field: &str) -> Result<&'a str, String> {
    doc.str(field)
        .ok_or_else(|| bad(doc, format!("no text field {field}")))
}

fn time_text(doc: &Document, field: &str) -> Result<String, String> {
    match doc.get(field) {
        Some(Value::Timestamp(t)) => Ok(t.format(&Rfc3339).unwrap_or_default()),
        _ => Err(bad(doc, format!("no timestamp field {field}"))),
    }
}

fn uint(doc: &Document, field: &str) -> Result<Option<u64>, String> {
    match doc.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Integer(i)) => u64::try_from(*i)
            .map(Some)
            .map_err(|_| bad(doc, format!("{field} is negative"))),
        Some(_) => Err(bad(doc, format!("{field} is not an integer"))),
    }
}

fn from_json<T: DeserializeOwned>(doc: &Document, field: &str) -> Result<Option<T>, String> {
    match doc.str(field) {
        None => Ok(None),
        Some(json) => serde_json::from_str(json)
            .map(Some)
            .map_err(|e| bad(doc, format!("{field}: {e}"))),
    }
}

/// A run's document as its record.
pub(super) fn run_of(doc: &Document) -> Result<RunRecord, String> {
    let status = text(doc, "status")?;
    let lease = match (doc.str("lease_holder"), uint(doc, "lease_until_ms")?) {
        (Some(holder), Some(until_ms)) => Some(Lease {
            holder: holder.to_owned(),
            until_ms,
        }),
        _ => None,
    };
    Ok(RunRecord {
        run_id: text(doc, "run_id")?.to_owned(),
        workflow: text(doc, "workflow")?.to_owned(),
        status: RunStatus::parse(status)
            .ok_or_else(|| bad(doc, format!("unknown status {status:?}")))?,
        request: from_json(doc, "request")?.unwrap_or_default(),
        session_id: doc.str("session_id").map(str::to_owned),
        created_at: time_text(doc, "created_at")?,
        updated_at: time_text(doc, "updated_at")?,
        last_seq: uint(doc, "last_seq")?,
        result: from_json(doc, "result")?,
        cancel_requested: doc
            .get("cancel_requested")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        lease,
        attempts: uint(doc, "attempts")?.map_or(0, |a| u32::try_from(a).unwrap_or(u32::MAX)),
        spent_ms: uint(doc, "spent_ms")?.unwrap_or(0),
    })
}

/// An event's document.
pub(super) fn event_fields(event: &Envelope, ttl: Duration) -> Result<Fields, String> {
    Ok(fields([
        ("seq", int(event.seq)),
        ("envelope", json_text("an event", event)?),
        (EXPIRE_AT, expire_at(ttl)),
    ]))
}

pub(super) fn event_of(doc: &Document) -> Result<Envelope, String> {
    from_json(doc, "envelope")?.ok_or_else(|| bad(doc, "no envelope"))
}

/// A journal entry's document: its key (the id is its encoding) and its value.
pub(super) fn journal_fields(
    key: &str,
    value: &serde_json::Value,
    ttl: Duration,
) -> Result<Fields, String> {
    Ok(fields([
        ("key", key.into()),
        ("value", json_text("a journal entry", value)?),
        (EXPIRE_AT, expire_at(ttl)),
    ]))
}

pub(super) fn journal_of(doc: &Document) -> Result<(String, serde_json::Value), String> {
    let key = text(doc, "key")?.to_owned();
    let value = from_json(doc, "value")?.ok_or_else(|| bad(doc, "no value"))?;
    Ok((key, value))
}

/// A session's document.
pub(super) fn session_fields(session: &Session, ttl: Duration) -> Result<Fields, String> {
    let mut f = fields([
        ("turns", json_text("the turns", &session.turns)?),
        ("updated_at", timestamp("updated_at", &session.updated_at)?),
        (EXPIRE_AT, expire_at(ttl)),
    ]);
    if let Some(run) = &session.active_run {
        f.insert("active_run".into(), run.as_str().into());
    }
    Ok(f)
}

pub(super) fn session_of(doc: &Document) -> Result<Session, String> {
    Ok(Session {
        session_id: doc.id().to_owned(),
        turns: from_json(doc, "turns")?.unwrap_or_default(),
        active_run: doc.str("active_run").map(str::to_owned),
        updated_at: time_text(doc, "updated_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_valid_document_ids_and_sort_as_their_numbers() {
        assert_eq!(event_path("r", 7), "runs/r/events/000000000007");
        assert!(event_path("r", 10) > event_path("r", 9));
        let journal = journal_path("r", "planner/writer#0@m1/t0");
        let id = journal.rsplit('/').next().unwrap();
        assert!(valid_id(id) && id.starts_with('k'), "{journal}");
        assert_eq!(journal.matches('/').count(), 3);
        let key = key_path("any key / at all");
        assert_eq!(key.len(), "idempotency/".len() + 64);
        assert!(!valid_id("") && !valid_id("a/b") && !valid_id("__x__") && !valid_id(".."));
        assert!(valid_id("run-0123") && valid_id("s.1_2-3"));
    }

    #[test]
    fn a_run_round_trips_through_its_document() {
        let mut run = crate::store::tests::record("run-1", Some("s"));
        run.lease = Some(Lease {
            holder: "i-1".into(),
            until_ms: 1_800_000_000_000,
        });
        run.last_seq = Some(4);
        run.attempts = 2;
        run.spent_ms = 1500;
        run.created_at = "2026-12-07T10:00:00.123456Z".into();
        run.updated_at = "2026-12-07T10:00:01Z".into();
        let doc = Document {
            name: "projects/p/databases/(default)/documents/runs/run-1".into(),
            fields: run_fields(&run, Duration::from_secs(60)).unwrap(),
            create_time: None,
            update_time: None,
        };
        assert_eq!(run_of(&doc).unwrap(), run);
        let mut broken = doc.clone();
        broken.fields.insert("status".into(), "sleeping".into());
        let e = run_of(&broken).unwrap_err();
        assert!(e.contains("runs/run-1") && e.contains("sleeping"), "{e}");
    }
}
