//! Firestore (Native mode) through its REST API (v1), over [`crate::outbound`]: documents
//! read, created, written in all-or-nothing commits with preconditions, deleted, and queried
//! (one collection at a time, with a cursor for pages). No gRPC SDK: this costs the binary
//! almost nothing.
//!
//! Configuration, as Google's own clients read it: `GOOGLE_CLOUD_PROJECT` (else the metadata
//! server's project), `FIRESTORE_DATABASE` (default `(default)`), and `FIRESTORE_EMULATOR_HOST`
//! (`host:port`: plain HTTP, no token fetched, `Authorization: Bearer owner` as Google's clients
//! send it). On Google Cloud each request carries an OAuth access token from the metadata
//! server (kept until near expiry); the service account needs `roles/datastore.user`.
//!
//! Paths are below the database's documents: `runs/r1` is a document, `runs/r1/events` a
//! collection. Every call is one HTTP round trip ([`Firestore::round_trips`] counts them),
//! bounded by the client's timeout, and is not retried here: a commit that timed out may have
//! applied, which only its caller can judge (its preconditions make a second try safe).

mod query;
mod value;
mod write;

use std::time::Duration;

use serde::Deserialize;
use time::OffsetDateTime;

pub use query::{Direction, NAME_FIELD, Op, Page, Query};
pub use value::{Document, Fields, Value};
pub use write::{CommitResult, Precondition, Write};

pub use super::rest::{ApiError as Error, ErrorKind};
use super::rest::{Exchange, GoogleError, Preconditions, RestClient, classify};
use crate::config::Env;
use crate::outbound::Method;

/// `FIRESTORE_DATABASE`: the database's id (default `(default)`).
pub const FIRESTORE_DATABASE: &str = "FIRESTORE_DATABASE";
/// `FIRESTORE_EMULATOR_HOST`: `host:port` of a Firestore emulator, as Google's clients read it.
pub const FIRESTORE_EMULATOR_HOST: &str = "FIRESTORE_EMULATOR_HOST";
/// The database every project has.
pub const DEFAULT_DATABASE: &str = "(default)";
/// Firestore's REST endpoint.
pub const ENDPOINT: &str = "https://firestore.googleapis.com";
/// The longest one call may take unless [`Firestore::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most writes one commit may hold (Firestore's limit).
pub const MAX_WRITES: usize = 500;

const SERVICE: &str = "Firestore";
/// A document is at most 1 MiB; its JSON form (escapes, type keys) can be a few times that.
const DOCUMENT_BYTES: usize = 8 * 1024 * 1024;
/// A query's answer: a page of documents.
const QUERY_BYTES: usize = 64 * 1024 * 1024;

/// A Firestore database's client. Cheap to clone; clones share the token and the count of
/// round trips.
#[derive(Debug, Clone)]
pub struct Firestore {
    rest: RestClient,
    project: String,
    database: String,
    /// `projects/P/databases/D/documents`.
    documents: String,
}

impl Firestore {
    /// The client the variables describe (see the module's documentation). Asks the metadata
    /// server for the project when `GOOGLE_CLOUD_PROJECT` is unset; a missing project or a
    /// malformed variable is an [`ErrorKind::Config`] naming the variable to set.
    pub async fn from_env(env: &Env) -> Result<Self, Error> {
        let rest = RestClient::from_env(
            SERVICE,
            env,
            FIRESTORE_EMULATOR_HOST,
            ENDPOINT,
            DEFAULT_TIMEOUT,
        )?;
        let database = env
            .get(FIRESTORE_DATABASE)
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .unwrap_or(DEFAULT_DATABASE);
        if database.contains('/') || database.contains(char::is_whitespace) {
            return Err(Error::config(
                SERVICE,
                format!(
                    "{FIRESTORE_DATABASE}={database:?} is not a database id (such as \
                     {DEFAULT_DATABASE} or runs-db)"
                ),
            ));
        }
        let project = super::rest::project(env, SERVICE).await?;
        Ok(Self::new(rest, project, database.to_owned()))
    }

    fn new(rest: RestClient, project: String, database: String) -> Self {
        let documents = format!("projects/{project}/databases/{database}/documents");
        Self {
            rest,
            project,
            database,
            documents,
        }
    }

    /// Each call must end within `timeout` (connecting takes at most 3 s of it).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.rest.set_timeout(timeout);
        self
    }

    /// The project.
    pub fn project(&self) -> &str {
        &self.project
    }

    /// The database's id.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Whether this talks to an emulator (`FIRESTORE_EMULATOR_HOST`).
    pub fn is_emulator(&self) -> bool {
        self.rest.is_emulator()
    }

    /// `host[:port]` it calls.
    pub fn host(&self) -> String {
        self.rest.host()
    }

    /// The timeout of each call.
    pub fn timeout(&self) -> Duration {
        self.rest.timeout()
    }

    /// HTTP requests sent so far by this client and its clones (a benchmark reads it before
    /// and after some work).
    pub fn round_trips(&self) -> u64 {
        self.rest.round_trips()
    }

    /// The full name of the document at `path`: `projects/P/databases/D/documents/{path}`.
    pub fn name_of(&self, path: &str) -> String {
        format!("{}/{path}", self.documents)
    }

    /// The document at `path`, or `None` if there is none.
    pub async fn get(&self, path: &str) -> Result<Option<Document>, Error> {
        self.check(path, "get", Kind::Document)?;
        let url = self.rest.url(&self.name_of(path), None, &[]);
        let answer = self
            .rest
            .send::<()>(Exchange {
                op: "get",
                target: path,
                method: Method::GET,
                url,
                body: None,
                max_bytes: DOCUMENT_BYTES,
                preconditions: Preconditions::None,
            })
            .await;
        match answer {
            Ok(body) => self.decode("get", path, &body).map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A new document `id` in the collection at `collection` with `fields`; a conflict if it
    /// exists. Returns it as stored (with its times).
    pub async fn create(
        &self,
        collection: &str,
        id: &str,
        fields: Fields,
    ) -> Result<Document, Error> {
        let path = format!("{collection}/{id}");
        self.check(&path, "create", Kind::Document)?;
        let url = self
            .rest
            .url(&self.name_of(collection), None, &[("documentId", id)]);
        // Serialised straight from the fields: a document may be near 1 MiB, not worth a copy
        // as a JSON tree first.
        #[derive(serde::Serialize)]
        struct Body<'a> {
            fields: &'a Fields,
        }
        let body = Body { fields: &fields };
        let answer = self
            .rest
            .send(Exchange {
                op: "create",
                target: &path,
                method: Method::POST,
                url,
                body: Some(&body),
                max_bytes: DOCUMENT_BYTES,
                preconditions: Preconditions::Possible,
            })
            .await?;
        self.decode("create", &path, &answer)
    }

    /// Applies `writes` all together or not at all: one failed precondition fails the commit
    /// ([`ErrorKind::Conflict`]; [`ErrorKind::NotFound`] for `exists: true` on a missing
    /// document) and nothing is written. At most [`MAX_WRITES`].
    pub async fn commit(&self, writes: &[Write]) -> Result<CommitResult, Error> {
        let target = match writes {
            [] => {
                return Ok(CommitResult {
                    commit_time: None,
                    update_times: Vec::new(),
                });
            }
            [one] => one.path().to_owned(),
            [first, ..] => format!("{} and {} more", first.path(), writes.len() - 1),
        };
        if writes.len() > MAX_WRITES {
            let why = format!(
                "{} writes, more than Firestore's {MAX_WRITES} in one commit",
                writes.len()
            );
            return Err(self.rest.error(ErrorKind::Invalid, "commit", &target, why));
        }
        for w in writes {
            self.check(w.path(), "commit", Kind::Document)?;
        }
        #[derive(serde::Serialize)]
        struct Body<'a> {
            writes: Vec<write::WireWrite<'a>>,
        }
        let body = Body {
            writes: writes.iter().map(|w| w.wire(&self.documents)).collect(),
        };
        let url = self.rest.url(&self.documents, Some("commit"), &[]);
        let answer = self
            .rest
            .send(Exchange {
                op: "commit",
                target: &target,
                method: Method::POST,
                url,
                body: Some(&body),
                max_bytes: DOCUMENT_BYTES,
                preconditions: Preconditions::Possible,
            })
            .await?;
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct WriteResult {
            #[serde(default, with = "time::serde::rfc3339::option")]
            update_time: Option<OffsetDateTime>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Answer {
            #[serde(default)]
            write_results: Vec<WriteResult>,
            #[serde(default, with = "time::serde::rfc3339::option")]
            commit_time: Option<OffsetDateTime>,
        }
        let answer: Answer = self.decode("commit", &target, &answer)?;
        Ok(CommitResult {
            commit_time: answer.commit_time,
            update_times: answer
                .write_results
                .into_iter()
                .map(|r| r.update_time)
                .collect(),
        })
    }

    /// Deletes the document at `path` (a missing one is no error unless `precondition` is
    /// `Exists(true)`). Its subcollections stay: delete their documents too.
    pub async fn delete(
        &self,
        path: &str,
        precondition: Option<Precondition>,
    ) -> Result<(), Error> {
        self.check(path, "delete", Kind::Document)?;
        let query = precondition.map(|p| p.query());
        let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let url = self.rest.url(&self.name_of(path), None, &pairs);
        self.rest
            .send::<()>(Exchange {
                op: "delete",
                target: path,
                method: Method::DELETE,
                url,
                body: None,
                max_bytes: DOCUMENT_BYTES,
                preconditions: Preconditions::Possible,
            })
            .await?;
        Ok(())
    }

    /// The documents `query` selects in the collection under `parent` (a document path, or ""
    /// for a top-level collection), in its order.
    pub async fn run_query(&self, parent: &str, query: &Query) -> Result<Vec<Document>, Error> {
        let target = match parent {
            "" => query.collection.clone(),
            p => format!("{p}/{}", query.collection),
        };
        self.check(&target, "runQuery", Kind::Collection)?;
        let name = match parent {
            "" => self.documents.clone(),
            p => self.name_of(p),
        };
        let url = self.rest.url(&name, Some("runQuery"), &[]);
        let answer = self
            .rest
            .send(Exchange {
                op: "runQuery",
                target: &target,
                method: Method::POST,
                url,
                body: Some(&query.wire()),
                max_bytes: QUERY_BYTES,
                preconditions: Preconditions::None,
            })
            .await?;
        // A JSON array of results; entries with only `readTime` (no match, or the end) carry
        // no document, and an error after some results comes as an entry of its own.
        #[derive(Deserialize)]
        struct Entry {
            document: Option<Document>,
            error: Option<GoogleError>,
        }
        let entries: Vec<Entry> = self.decode("runQuery", &target, &answer)?;
        let mut documents = Vec::with_capacity(entries.len());
        for entry in entries {
            if let Some(error) = entry.error {
                let status = match error.status.as_str() {
                    "UNAVAILABLE" | "DEADLINE_EXCEEDED" | "INTERNAL" | "RESOURCE_EXHAUSTED" => 503,
                    _ => 400,
                };
                let (kind, detail) = classify(status, Some(&error), Preconditions::None);
                return Err(self.rest.error(kind, "runQuery", &target, detail));
            }
            documents.extend(entry.document);
        }
        Ok(documents)
    }

    /// The documents of the collection `collection` under `parent` whose integer `field` is
    /// greater than `after`, in its order, at most `limit`: the events of a run after the last
    /// one a client saw. Needs only Firestore's automatic single-field index.
    pub async fn list_after(
        &self,
        parent: &str,
        collection: &str,
        field: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Document>, Error> {
        let query = Query::collection(collection)
            .filter(field, Op::GreaterThan, after)
            .order_by(field, Direction::Ascending)
            .limit(limit);
        self.run_query(parent, &query).await
    }

    /// One page of `query` (its filters and orders; ties are broken by document name, in the
    /// last order's direction) of at most `page_size` documents, from the start or after the
    /// page `page_token` ended. The token of the next page is set only when there is one (one
    /// document more than the page is asked for to know). A token this did not give is an
    /// [`ErrorKind::Invalid`]. The query's own cursor and limit are replaced.
    pub async fn page(
        &self,
        parent: &str,
        query: &Query,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<Page, Error> {
        let mut query = query.clone();
        if !query.has_name_order() {
            let direction = query.last_direction();
            query = query.order_by(NAME_FIELD, direction);
        }
        let fields: Vec<String> = query
            .order_fields()
            .filter(|f| *f != NAME_FIELD)
            .map(str::to_owned)
            .collect();
        if let Some(token) = page_token.filter(|t| !t.is_empty()) {
            let prefix = match parent {
                "" => format!("{}/{}/", self.documents, query.collection),
                p => format!("{}/{}/", self.name_of(p), query.collection),
            };
            let cursor = query::cursor_of(token, fields.len() + 1, &prefix).ok_or_else(|| {
                let why = "the page token is not one this listing gave (start again without one)";
                self.rest
                    .error(ErrorKind::Invalid, "runQuery", &query.collection, why)
            })?;
            query = query.start_after(cursor);
        }
        let page_size = page_size.max(1);
        let mut documents = self.run_query(parent, &query.limit(page_size + 1)).await?;
        let next_page_token = if documents.len() > page_size as usize {
            documents.truncate(page_size as usize);
            documents
                .last()
                .and_then(|last| query::token_after(last, fields.iter().map(String::as_str)))
        } else {
            None
        };
        Ok(Page {
            documents,
            next_page_token,
        })
    }

    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        op: &'static str,
        target: &str,
        body: &[u8],
    ) -> Result<T, Error> {
        serde_json::from_slice(body).map_err(|e| {
            let why = format!("the answer is not the expected JSON: {e}");
            self.rest.error(ErrorKind::Invalid, op, target, why)
        })
    }

    /// A path of the right shape (documents have an even number of segments, collections an
    /// odd one; no empty, `.`, `..` or `__x__` ids), before any round trip.
    fn check(&self, path: &str, op: &'static str, kind: Kind) -> Result<(), Error> {
        let segments: Vec<&str> = path.split('/').collect();
        let bad = segments.iter().find(|s| {
            s.is_empty() || **s == "." || **s == ".." || (s.starts_with("__") && s.ends_with("__"))
        });
        let why = if let Some(bad) = bad {
            format!("{bad:?} is not a Firestore id (empty, `.`, `..` and `__x__` are not allowed)")
        } else if segments.len().is_multiple_of(2) != (kind == Kind::Document) {
            match kind {
                Kind::Document => "a document path has an even number of segments (runs/r1)",
                Kind::Collection => {
                    "a collection path has an odd number of segments (runs/r1/events)"
                }
            }
            .to_owned()
        } else {
            return Ok(());
        };
        Err(self.rest.error(ErrorKind::Invalid, op, path, why))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Document,
    Collection,
}

#[cfg(test)]
mod tests;
