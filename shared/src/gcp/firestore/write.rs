//! Writes for a commit: a whole document set, some fields updated (an update mask), or a
//! delete, each with an optional precondition, and transforms applied on the server (its
//! timestamp; the larger of a number and the stored one). A commit applies all of its writes or
//! none (at most 500 writes, 10 MiB).

use serde::Serialize;
use time::OffsetDateTime;

use super::value::{Fields, Value, rfc3339};

/// What must hold of the stored document for a write to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// It exists (`true`; Firestore answers `NOT_FOUND` when it does not) or does not
    /// (`false`; `ALREADY_EXISTS` when it does).
    Exists(bool),
    /// It was last written at exactly this time (what a read returned as `update_time`):
    /// nobody wrote it since (`FAILED_PRECONDITION` otherwise).
    UpdateTime(OffsetDateTime),
}

impl Precondition {
    /// The URL query form (`currentDocument.exists=true`), for single-document requests.
    pub(crate) fn query(&self) -> (&'static str, String) {
        match self {
            Self::Exists(e) => ("currentDocument.exists", e.to_string()),
            Self::UpdateTime(t) => ("currentDocument.updateTime", rfc3339(*t)),
        }
    }
}

/// One write of a commit. Paths are below the database's documents (`runs/r1`).
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub(crate) path: String,
    pub(crate) op: Op,
    pub(crate) precondition: Option<Precondition>,
    pub(crate) transforms: Vec<(String, Transform)>,
}

/// A field's change computed by the server after the write's fields are applied.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Transform {
    /// The commit's time.
    ServerTime,
    /// The larger of the stored value (none: this one) and this one.
    Maximum(Value),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    /// The document becomes `fields` (with a mask: only the masked fields change; a masked
    /// field absent from `fields` is deleted).
    Update {
        fields: Fields,
        mask: Option<Vec<String>>,
    },
    Delete,
}

impl Write {
    /// The document at `path` becomes exactly `fields` (created if missing).
    pub fn set(path: impl Into<String>, fields: Fields) -> Self {
        Self {
            path: path.into(),
            op: Op::Update { fields, mask: None },
            precondition: None,
            transforms: Vec::new(),
        }
    }

    /// A new document at `path`: fails with a conflict if one exists.
    pub fn create(path: impl Into<String>, fields: Fields) -> Self {
        Self::set(path, fields).if_exists(false)
    }

    /// Only the fields named in `mask` change, to their values in `fields` (a named field
    /// missing from `fields` is removed); the others stay. Names are field paths: `status`,
    /// `usage.tokens` (a nested field).
    pub fn update<I, S>(path: impl Into<String>, fields: Fields, mask: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            path: path.into(),
            op: Op::Update {
                fields,
                mask: Some(mask.into_iter().map(Into::into).collect()),
            },
            precondition: None,
            transforms: Vec::new(),
        }
    }

    /// The document at `path` is deleted (deleting a missing one succeeds, unless
    /// [`Write::if_exists`] says it must exist).
    pub fn delete(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            op: Op::Delete,
            precondition: None,
            transforms: Vec::new(),
        }
    }

    /// Applies only if the document exists (`true`) or does not (`false`).
    pub fn if_exists(mut self, exists: bool) -> Self {
        self.precondition = Some(Precondition::Exists(exists));
        self
    }

    /// Applies only if the document was last written at `update_time` (optimistic
    /// concurrency: read, decide, write back only if nobody wrote in between).
    pub fn if_updated_at(mut self, update_time: OffsetDateTime) -> Self {
        self.precondition = Some(Precondition::UpdateTime(update_time));
        self
    }

    /// Any precondition, or none.
    pub fn precondition(mut self, precondition: Option<Precondition>) -> Self {
        self.precondition = precondition;
        self
    }

    /// Sets `field` to the commit's time on the server (one clock for all instances, so that
    /// documents order by it). Not for deletes.
    pub fn server_time(mut self, field: impl Into<String>) -> Self {
        self.transforms.push((field.into(), Transform::ServerTime));
        self
    }

    /// Sets the number `field` to the larger of its stored value and `value` (to `value` when
    /// it has none): a counter that only goes up, such as the last sequence number written,
    /// without reading it first. Leave `field` out of an update's mask. Not for deletes.
    pub fn maximum(mut self, field: impl Into<String>, value: impl Into<Value>) -> Self {
        self.transforms
            .push((field.into(), Transform::Maximum(value.into())));
        self
    }

    /// The path it writes.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The JSON form, with full document names under `documents` (`projects/P/databases/D/
    /// documents`).
    pub(crate) fn wire<'a>(&'a self, documents: &str) -> WireWrite<'a> {
        let name = format!("{documents}/{}", self.path);
        let (update, delete, update_mask) = match &self.op {
            Op::Update { fields, mask } => (
                Some(WireDocument { name, fields }),
                None,
                mask.as_ref().map(|m| WireMask { field_paths: m }),
            ),
            Op::Delete => (None, Some(name), None),
        };
        WireWrite {
            update,
            delete,
            update_mask,
            update_transforms: self
                .transforms
                .iter()
                .map(|(f, t)| WireTransform {
                    field_path: f,
                    set_to_server_value: matches!(t, Transform::ServerTime)
                        .then_some("REQUEST_TIME"),
                    maximum: match t {
                        Transform::Maximum(v) => Some(v),
                        Transform::ServerTime => None,
                    },
                })
                .collect(),
            current_document: self.precondition.map(|p| match p {
                Precondition::Exists(e) => WirePrecondition {
                    exists: Some(e),
                    update_time: None,
                },
                Precondition::UpdateTime(t) => WirePrecondition {
                    exists: None,
                    update_time: Some(rfc3339(t)),
                },
            }),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireWrite<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    update: Option<WireDocument<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delete: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    update_mask: Option<WireMask<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    update_transforms: Vec<WireTransform<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    current_document: Option<WirePrecondition>,
}

#[derive(Serialize)]
pub(crate) struct WireDocument<'a> {
    pub(crate) name: String,
    pub(crate) fields: &'a Fields,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireMask<'a> {
    field_paths: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireTransform<'a> {
    field_path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    set_to_server_value: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maximum: Option<&'a Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WirePrecondition {
    #[serde(skip_serializing_if = "Option::is_none")]
    exists: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    update_time: Option<String>,
}

/// What a commit answers: when it applied, and each write's new `update_time` in the order of
/// the writes (`None` for a delete), for conditional writes that follow without a read.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitResult {
    /// The commit's time.
    pub commit_time: Option<OffsetDateTime>,
    /// Each write's document's new `update_time`.
    pub update_times: Vec<Option<OffsetDateTime>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gcp::firestore::Value;

    #[test]
    fn writes_take_firestores_json_form() {
        let fields = Fields::from([("status".to_owned(), Value::from("done"))]);
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let docs = "projects/p/databases/(default)/documents";
        let update = Write::update("runs/r1", fields.clone(), ["status"])
            .if_updated_at(t)
            .server_time("updated_at");
        assert_eq!(
            serde_json::to_value(update.wire(docs)).unwrap(),
            serde_json::json!({
                "update": {"name": format!("{docs}/runs/r1"),
                           "fields": {"status": {"stringValue": "done"}}},
                "updateMask": {"fieldPaths": ["status"]},
                "updateTransforms": [{"fieldPath": "updated_at", "setToServerValue": "REQUEST_TIME"}],
                "currentDocument": {"updateTime": "2023-11-14T22:13:20Z"}
            })
        );
        let seq =
            Write::update("runs/r1", Fields::new(), Vec::<String>::new()).maximum("last_seq", 7i64);
        assert_eq!(
            serde_json::to_value(seq.wire(docs)).unwrap()["updateTransforms"],
            serde_json::json!([{"fieldPath": "last_seq", "maximum": {"integerValue": "7"}}])
        );
        let delete = Write::delete("runs/r1").if_exists(true);
        assert_eq!(
            serde_json::to_value(delete.wire(docs)).unwrap(),
            serde_json::json!({"delete": format!("{docs}/runs/r1"),
                               "currentDocument": {"exists": true}})
        );
    }
}
