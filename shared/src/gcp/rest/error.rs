//! Why a call to a Google REST API failed, in the classes a caller acts on: a conflict to
//! report or retry with fresh data, a missing resource, a service that is down (the caller
//! answers 503 naming it), a request the service refused, missing permissions, or bad
//! configuration. `Display` is one line naming the service, the operation, the resource and
//! Google's own words; never a token.

use std::fmt;

use serde::Deserialize;

/// The class of an [`ApiError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A precondition failed: the document exists already (409 `ALREADY_EXISTS`), it changed
    /// since it was read (400 `FAILED_PRECONDITION`), or a transaction lost (409 `ABORTED`).
    Conflict,
    /// The resource does not exist (404; also a write whose precondition is `exists: true`).
    NotFound,
    /// The service could not be reached or did not answer in time, or answered 429 or 5xx.
    Unavailable,
    /// The service refused the request as malformed (another 4xx), or answered what is not the
    /// expected form.
    Invalid,
    /// The credentials were refused or lack a permission (401, 403).
    Denied,
    /// The client is not configured well enough to call at all (a variable to set).
    Config,
}

impl ErrorKind {
    fn words(self) -> &'static str {
        match self {
            Self::Conflict => "conflict",
            Self::NotFound => "not found",
            Self::Unavailable => "unavailable",
            Self::Invalid => "refused",
            Self::Denied => "permission denied",
            Self::Config => "not configured",
        }
    }
}

/// A failed call to Firestore or Pub/Sub. `Display`: `Firestore commit runs/r1: conflict: 400
/// FAILED_PRECONDITION: the stored version ... does not match ...`.
#[derive(Debug, Clone)]
pub struct ApiError {
    service: &'static str,
    kind: ErrorKind,
    op: &'static str,
    target: String,
    detail: String,
}

impl std::error::Error for ApiError {}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == ErrorKind::Config {
            return write!(f, "{} not configured: {}", self.service, self.detail);
        }
        write!(f, "{} {}", self.service, self.op)?;
        if !self.target.is_empty() {
            write!(f, " {}", self.target)?;
        }
        write!(f, ": {}: {}", self.kind.words(), self.detail)
    }
}

impl ApiError {
    pub(crate) fn new(
        service: &'static str,
        kind: ErrorKind,
        op: &'static str,
        target: &str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            service,
            kind,
            op,
            target: target.to_owned(),
            detail: detail.into(),
        }
    }

    pub(crate) fn config(service: &'static str, detail: impl Into<String>) -> Self {
        Self::new(service, ErrorKind::Config, "configure", "", detail)
    }

    /// Its class.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// `Firestore` or `Pub/Sub`: what a 503 names.
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// The operation (`get`, `commit`, `runQuery`, `publish`, ...).
    pub fn op(&self) -> &'static str {
        self.op
    }

    /// What it was about: a document or collection path relative to the database's documents,
    /// or a topic.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// What went wrong, in the service's words where it gave some.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// Whether this is a [`ErrorKind::Conflict`].
    pub fn is_conflict(&self) -> bool {
        self.kind == ErrorKind::Conflict
    }

    /// Whether this is a [`ErrorKind::NotFound`].
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    /// Whether this is a [`ErrorKind::Unavailable`].
    pub fn is_unavailable(&self) -> bool {
        self.kind == ErrorKind::Unavailable
    }
}

/// Google's error body: `{"error": {"code", "message", "status"}}`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct GoogleError {
    #[serde(default)]
    pub(crate) message: String,
    #[serde(default)]
    pub(crate) status: String,
}

#[derive(Deserialize)]
struct GoogleErrorBody {
    error: GoogleError,
}

impl GoogleError {
    /// The error in an answer's body, if it is Google's form.
    pub(crate) fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice::<GoogleErrorBody>(body)
            .ok()
            .map(|b| b.error)
    }
}

/// Whether a failed precondition may be answered on this operation; a query answering
/// `FAILED_PRECONDITION` lacks an index (real Firestore), which is no conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Preconditions {
    Possible,
    None,
}

/// The class of an error answer, and its detail: `400 FAILED_PRECONDITION: message`.
pub(crate) fn classify(
    status: u16,
    google: Option<&GoogleError>,
    preconditions: Preconditions,
) -> (ErrorKind, String) {
    let google_status = google.map_or("", |g| g.status.as_str());
    let kind = match status {
        409 => ErrorKind::Conflict,
        400 if google_status == "FAILED_PRECONDITION"
            && preconditions == Preconditions::Possible =>
        {
            ErrorKind::Conflict
        }
        404 => ErrorKind::NotFound,
        401 | 403 => ErrorKind::Denied,
        429 | 500.. => ErrorKind::Unavailable,
        _ => ErrorKind::Invalid,
    };
    let mut detail = status.to_string();
    if !google_status.is_empty() {
        detail.push(' ');
        detail.push_str(google_status);
    }
    if let Some(g) = google.filter(|g| !g.message.is_empty()) {
        detail.push_str(": ");
        detail.push_str(&crate::error::one_line(&g.message, 400));
    }
    (kind, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(status: &str, message: &str) -> GoogleError {
        GoogleError {
            message: message.into(),
            status: status.into(),
        }
    }

    #[test]
    fn statuses_fall_into_the_classes_callers_act_on() {
        let p = Preconditions::Possible;
        let stale = g(
            "FAILED_PRECONDITION",
            "the stored version (1) does not match",
        );
        assert_eq!(
            classify(409, Some(&g("ALREADY_EXISTS", "")), p).0,
            ErrorKind::Conflict
        );
        assert_eq!(
            classify(409, Some(&g("ABORTED", "")), p).0,
            ErrorKind::Conflict
        );
        assert_eq!(classify(400, Some(&stale), p).0, ErrorKind::Conflict);
        // A query that needs an index is a request to fix, not a conflict.
        let index = g("FAILED_PRECONDITION", "The query requires an index.");
        assert_eq!(
            classify(400, Some(&index), Preconditions::None).0,
            ErrorKind::Invalid
        );
        assert_eq!(
            classify(400, Some(&g("INVALID_ARGUMENT", "")), p).0,
            ErrorKind::Invalid
        );
        assert_eq!(classify(404, None, p).0, ErrorKind::NotFound);
        assert_eq!(classify(403, None, p).0, ErrorKind::Denied);
        for s in [429, 500, 503, 504] {
            assert_eq!(classify(s, None, p).0, ErrorKind::Unavailable, "{s}");
        }
        let (_, detail) = classify(400, Some(&stale), p);
        assert_eq!(
            detail,
            "400 FAILED_PRECONDITION: the stored version (1) does not match"
        );
    }

    #[test]
    fn display_names_service_operation_and_target() {
        let e = ApiError::new("Firestore", ErrorKind::NotFound, "get", "runs/r1", "404");
        assert_eq!(e.to_string(), "Firestore get runs/r1: not found: 404");
        let c = ApiError::config("Firestore", "set GOOGLE_CLOUD_PROJECT");
        assert_eq!(
            c.to_string(),
            "Firestore not configured: set GOOGLE_CLOUD_PROJECT"
        );
    }
}
