//! What Firestore's and Pub/Sub's REST clients share: where the service is (its endpoint, or
//! its emulator from `*_EMULATOR_HOST` as Google's own clients read it), the project, the
//! access token, one request through [`crate::outbound`] with a deadline, the count of round
//! trips, and errors in classes ([`ApiError`]).

mod error;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{HeaderValue, header::AUTHORIZATION};
use serde::Serialize;

pub use error::{ApiError, ErrorKind};
pub(crate) use error::{GoogleError, Preconditions, classify};

use super::GOOGLE_CLOUD_PROJECT;
use super::token::AccessTokens;
use crate::config::Env;
use crate::outbound::{Body, Call, Method, OutboundError, Request, Url};

/// The project id from the metadata server.
const PROJECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The longest wait for a connection: the services answer from nearby (or loopback), so a
/// store that is down is told in seconds, not at the call's deadline.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The most of an error answer read to find Google's message in it.
const ERROR_BYTES: usize = 64 * 1024;

/// One request to send: `op` and `target` name it in messages (`commit`, `runs/r1`).
pub(crate) struct Exchange<'a, B: ?Sized> {
    pub(crate) op: &'static str,
    pub(crate) target: &'a str,
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) body: Option<&'a B>,
    /// The largest answer read.
    pub(crate) max_bytes: usize,
    /// Whether a `FAILED_PRECONDITION` is a conflict here (writes) or not (queries).
    pub(crate) preconditions: Preconditions,
}

/// How requests are authorised.
#[derive(Debug)]
enum Auth {
    /// An emulator: Google's clients send `Bearer owner`, which the emulators take as an
    /// administrator (Firestore's bypasses security rules with it); no token is fetched.
    Emulator,
    /// An OAuth access token from Application Default Credentials, kept until near expiry.
    Google(AccessTokens),
}

/// One service's REST client. Cheap to clone: clones share the token and the counter.
#[derive(Debug, Clone)]
pub(crate) struct RestClient {
    service: &'static str,
    base: Url,
    auth: Arc<Auth>,
    round_trips: Arc<AtomicU64>,
    timeout: Duration,
}

impl RestClient {
    /// The client for `service` at `endpoint` (`https://firestore.googleapis.com`), or at the
    /// emulator named by `emulator_var` when it is set (`host:port`, plain HTTP, no token).
    pub(crate) fn from_env(
        service: &'static str,
        env: &Env,
        emulator_var: &str,
        endpoint: &str,
        timeout: Duration,
    ) -> Result<Self, ApiError> {
        let emulator = env
            .get(emulator_var)
            .map(str::trim)
            .filter(|h| !h.is_empty());
        let (base, auth) = match emulator {
            Some(host) => {
                let host = host.trim_start_matches("http://").trim_end_matches('/');
                let url = Url::parse(&format!("http://{host}"))
                    .ok()
                    .filter(|u| u.host_str().is_some() && u.path() == "/")
                    .ok_or_else(|| {
                        ApiError::config(
                            service,
                            format!(
                                "{emulator_var}={host:?} is not host:port (such as 127.0.0.1:8686)"
                            ),
                        )
                    })?;
                (url, Auth::Emulator)
            }
            None => {
                let url = Url::parse(endpoint).map_err(|e| {
                    ApiError::config(service, format!("endpoint {endpoint:?}: {e}"))
                })?;
                let metadata = super::metadata::base_url(env);
                (url, Auth::Google(AccessTokens::new(&metadata)))
            }
        };
        Ok(Self::new(service, base, auth, timeout))
    }

    fn new(service: &'static str, base: Url, auth: Auth, timeout: Duration) -> Self {
        Self {
            service,
            base,
            auth: Arc::new(auth),
            round_trips: Arc::new(AtomicU64::new(0)),
            timeout,
        }
    }

    pub(crate) fn is_emulator(&self) -> bool {
        matches!(*self.auth, Auth::Emulator)
    }

    pub(crate) fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(crate) fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    pub(crate) fn host(&self) -> String {
        crate::outbound::host_of(&self.base)
    }

    pub(crate) fn error(
        &self,
        kind: ErrorKind,
        op: &'static str,
        target: &str,
        detail: impl Into<String>,
    ) -> ApiError {
        ApiError::new(self.service, kind, op, target, detail)
    }

    /// `{base}/v1/{name}[:verb]?query`, each segment of `name` percent-encoded as a path
    /// segment (ids may hold any character but `/`).
    pub(crate) fn url(&self, name: &str, verb: Option<&str>, query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.clear().push("v1");
            let mut parts = name.split('/').peekable();
            while let Some(part) = parts.next() {
                match (parts.peek(), verb) {
                    (None, Some(verb)) => segments.push(&format!("{part}:{verb}")),
                    _ => segments.push(part),
                };
            }
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// One request within the client's timeout, with the token (fetched again once if the
    /// service refuses it); the whole answer on a 2xx, else the error in its class.
    pub(crate) async fn send<B: Serialize + ?Sized>(
        &self,
        exchange: Exchange<'_, B>,
    ) -> Result<Body, ApiError> {
        let Exchange {
            op,
            target,
            method,
            url,
            body,
            max_bytes,
            preconditions,
        } = exchange;
        let call = Call::new(self.timeout, max_bytes).connect_timeout(CONNECT_TIMEOUT);
        let mut refreshed = false;
        loop {
            let authorization = self.authorization(op, target, &call).await?;
            let mut request = Request::new(method.clone(), url.clone());
            if let Some(value) = authorization {
                request = request.header(AUTHORIZATION, value);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            self.round_trips.fetch_add(1, Ordering::Relaxed);
            let response = request
                .send(&call)
                .await
                .map_err(|e| self.transport(op, target, e))?;
            let status = response.status().as_u16();
            if (200..300).contains(&status) {
                return response
                    .body_bytes()
                    .await
                    .map_err(|e| self.transport(op, target, e));
            }
            if status == 401
                && !refreshed
                && let Auth::Google(tokens) = &*self.auth
            {
                tokens.refused().await;
                refreshed = true;
                continue;
            }
            let body = response.body_prefix(ERROR_BYTES).await;
            let google = GoogleError::parse(&body);
            let (kind, mut detail) = classify(status, google.as_ref(), preconditions);
            if google.is_none() && !body.is_empty() {
                detail.push_str(": ");
                detail.push_str(&crate::error::one_line(
                    &String::from_utf8_lossy(&body),
                    200,
                ));
            }
            return Err(self.error(kind, op, target, detail));
        }
    }

    async fn authorization(
        &self,
        op: &'static str,
        target: &str,
        call: &Call,
    ) -> Result<Option<HeaderValue>, ApiError> {
        match &*self.auth {
            Auth::Emulator => Ok(Some(HeaderValue::from_static("Bearer owner"))),
            Auth::Google(tokens) => {
                let token = tokens
                    .get(call.remaining())
                    .await
                    .map_err(|why| self.error(ErrorKind::Unavailable, op, target, why))?;
                let mut value = HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| {
                    self.error(
                        ErrorKind::Denied,
                        op,
                        target,
                        "the access token is not a valid header value",
                    )
                })?;
                value.set_sensitive(true);
                Ok(Some(value))
            }
        }
    }

    /// A call that got no complete answer: the service is unavailable, except for answers it
    /// gave that are too large or malformed, which no retry will fix.
    fn transport(&self, op: &'static str, target: &str, e: OutboundError) -> ApiError {
        let kind = match e {
            OutboundError::TooLarge { .. } | OutboundError::Decode { .. } => ErrorKind::Invalid,
            _ => ErrorKind::Unavailable,
        };
        self.error(kind, op, target, e.to_string())
    }
}

/// The project: `GOOGLE_CLOUD_PROJECT`, else the metadata server's. Its absence is one line
/// naming the variable to set.
pub(crate) async fn project(env: &Env, service: &'static str) -> Result<String, ApiError> {
    if let Some(p) = env
        .get(GOOGLE_CLOUD_PROJECT)
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        return Ok(p.to_owned());
    }
    let base = super::metadata::base_url(env);
    super::metadata::get(&base, "project/project-id", PROJECT_TIMEOUT)
        .await
        .map(|p| p.trim().to_owned())
        .map_err(|e| {
            ApiError::config(
                service,
                format!(
                    "no project: {GOOGLE_CLOUD_PROJECT} is unset and the metadata server did not \
                     say ({e}); set {GOOGLE_CLOUD_PROJECT}"
                ),
            )
        })
}
