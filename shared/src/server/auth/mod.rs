//! Verification of incoming credentials (`AUTH_MODE`), one layer in front of every route but
//! the open ones (REST, `/mcp`, gRPC and gRPC-Web alike):
//!
//! - `google`: an RS256 Google ID token in `Authorization: Bearer`, checked against Google's
//!   key set, `iss`, `aud` in `AUTH_AUDIENCES`, `exp`, `nbf` and `iat` with a minute of leeway;
//! - `iap`: IAP's ES256 `X-Goog-IAP-JWT-Assertion`, checked against IAP's key set, `iss`
//!   `https://cloud.google.com/iap` and `aud` in `IAP_AUDIENCE`;
//! - `api-key`: `Authorization: Bearer KEY` or `X-API-Key: KEY`, compared in constant time.
//!
//! A request passes when any enabled mode accepts it; a verified Google or IAP principal must
//! also be in `AUTH_ALLOWED_PRINCIPALS` when that is set. The [`Principal`] goes into the
//! request's extensions (handlers read it) and the response's (the request log writes it).
//! Refusals: HTTP 401 with `WWW-Authenticate: Bearer` (`error="invalid_token"` when a credential
//! was given; the MCP specification prescribes the same for `/mcp`) or 403 when the principal
//! is not allowed; gRPC and gRPC-Web UNAUTHENTICATED or PERMISSION_DENIED. Messages say what
//! was wrong, never the credential.

pub mod config;
mod jwks;
mod token;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, header};
use jsonwebtoken::Validation;
use subtle::ConstantTimeEq;

use crate::error::{ApiError, ErrorKind, is_grpc};
pub use config::{ApiKeys, AuthConfig, AuthMode};
use jwks::{KeyError, KeySet, KeyType};
use token::{
    Claims, bearer_token, describe, digest, is_true, jwt_header, looks_like_jwt, printable,
    validation,
};

/// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
const LEEWAY_SECS: u64 = 60;
/// The issuers of Google ID tokens.
const GOOGLE_ISSUERS: [&str; 2] = ["accounts.google.com", "https://accounts.google.com"];
/// The issuer of IAP assertions.
const IAP_ISSUER: &str = "https://cloud.google.com/iap";
/// The header IAP signs its assertion into.
const IAP_HEADER: &str = "x-goog-iap-jwt-assertion";
/// The header an API key may come in (besides `Authorization: Bearer`).
const API_KEY_HEADER: &str = "x-api-key";

/// Who a request was verified as, in the request's extensions (and the response's, for the
/// request log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The mode that accepted the request.
    pub mode: AuthMode,
    /// The e-mail when the token carries a verified one, else the subject; `api-key:N` for the
    /// N-th key of `AUTH_API_KEYS` (never the key).
    pub name: String,
    /// The token's verified e-mail.
    pub email: Option<String>,
    /// The token's subject.
    pub subject: Option<String>,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// No credential of an enabled kind.
    Missing(String),
    /// A credential that does not verify.
    Invalid(String),
    /// Verified, but not allowed.
    Forbidden(String),
    /// The keys to verify it with can't be had.
    Unavailable(String),
}

impl Refusal {
    fn rank(&self) -> u8 {
        match self {
            Self::Missing(_) => 0,
            Self::Invalid(_) => 1,
            Self::Unavailable(_) => 2,
            Self::Forbidden(_) => 3,
        }
    }

    fn into_response(self, headers: &HeaderMap, realm: &str) -> Response {
        let (kind, message, challenge) = match self {
            Self::Missing(m) => (ErrorKind::Unauthenticated, m, Some(None)),
            Self::Invalid(m) => (ErrorKind::Unauthenticated, m.clone(), Some(Some(m))),
            Self::Forbidden(m) => (ErrorKind::Forbidden, m, None),
            Self::Unavailable(m) => (ErrorKind::Unavailable, m, None),
        };
        let mut error = ApiError::new(kind, message);
        if kind == ErrorKind::Unavailable {
            error = error.retry_after(1);
        }
        if is_grpc(headers) {
            return error.into_response_for(headers);
        }
        let mut response = error.into_response();
        if let Some(problem) = challenge {
            let mut value = format!("Bearer realm=\"{}\"", quoted(realm));
            if let Some(problem) = problem {
                value.push_str(&format!(
                    ", error=\"invalid_token\", error_description=\"{}\"",
                    quoted(&problem)
                ));
            }
            if let Ok(value) = HeaderValue::try_from(value) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

/// Text fit for a quoted-string: visible ASCII without `"` or `\`.
fn quoted(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if c.is_ascii_graphic() || c == ' ' => c,
            _ => '?',
        })
        .collect()
}

/// The verifier: configuration, key sets and API-key digests.
pub(crate) struct Verifier {
    realm: String,
    modes: Vec<AuthMode>,
    allowed_principals: Vec<String>,
    open_exact: Vec<String>,
    open_prefixes: Vec<String>,
    google: Option<(KeySet, Validation)>,
    iap: Option<(KeySet, Validation)>,
    api_keys: Vec<[u8; 32]>,
}

impl Verifier {
    /// The verifier for `config`, or `None` when authentication is off.
    pub(crate) fn new(config: &AuthConfig, realm: &str) -> Option<Arc<Self>> {
        if config.modes.is_empty() {
            return None;
        }
        let (open_prefixes, open_exact): (Vec<String>, Vec<String>) = config
            .open_paths
            .iter()
            .cloned()
            .partition(|p| p.ends_with('*'));
        let google = config.enabled(AuthMode::Google).then(|| {
            let mut v = validation(KeyType::Rsa, &config.audiences);
            v.set_issuer(&GOOGLE_ISSUERS);
            (
                KeySet::new("Google's", config.google_jwks_url.clone(), KeyType::Rsa),
                v,
            )
        });
        let iap = config.enabled(AuthMode::Iap).then(|| {
            let mut v = validation(KeyType::P256, &config.iap_audiences);
            v.set_issuer(&[IAP_ISSUER]);
            (
                KeySet::new("IAP's", config.iap_jwks_url.clone(), KeyType::P256),
                v,
            )
        });
        Some(Arc::new(Self {
            realm: realm.to_owned(),
            modes: config.modes.clone(),
            allowed_principals: config.allowed_principals.clone(),
            open_exact,
            open_prefixes: open_prefixes
                .into_iter()
                .map(|p| p.trim_end_matches('*').to_owned())
                .collect(),
            google,
            iap,
            api_keys: if config.enabled(AuthMode::ApiKey) {
                config.api_keys.keys().iter().map(|k| digest(k)).collect()
            } else {
                Vec::new()
            },
        }))
    }

    fn is_open(&self, path: &str) -> bool {
        self.open_exact.iter().any(|p| p == path)
            || self.open_prefixes.iter().any(|p| path.starts_with(p))
    }

    fn enabled(&self, mode: AuthMode) -> bool {
        self.modes.contains(&mode)
    }

    /// The principal, or the most telling refusal among the enabled modes'.
    async fn verify(&self, headers: &HeaderMap) -> Result<Principal, Refusal> {
        let mut refusals = Vec::new();
        let authorization = headers
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or_default());
        let bearer = authorization.and_then(bearer_token);
        let reads_authorization = self.google.is_some() || self.enabled(AuthMode::ApiKey);
        if reads_authorization && authorization.is_some() && bearer.is_none() {
            refusals.push(Refusal::Invalid(
                "Authorization must be \"Bearer <token>\"".into(),
            ));
        }
        let api_key = headers
            .get(API_KEY_HEADER)
            .map(|v| v.to_str().unwrap_or_default().trim());
        let iap = headers
            .get(IAP_HEADER)
            .map(|v| v.to_str().unwrap_or_default().trim());

        if self.enabled(AuthMode::ApiKey) {
            let candidates: Vec<&str> = [bearer, api_key].into_iter().flatten().collect();
            for candidate in &candidates {
                if let Some(n) = self.api_key_index(candidate) {
                    return Ok(Principal {
                        mode: AuthMode::ApiKey,
                        name: format!("api-key:{n}"),
                        email: None,
                        subject: None,
                    });
                }
            }
            // A bearer that is a JWT is the Google mode's to judge.
            let judged_by_google = self.google.is_some() && bearer.is_some_and(looks_like_jwt);
            if api_key.is_some() || (bearer.is_some() && !judged_by_google) {
                refusals.push(Refusal::Invalid("the API key is not recognised".into()));
            }
        }
        if let (Some((keys, validation)), Some(token)) = (&self.iap, iap) {
            match self
                .verify_jwt("the IAP assertion", token, keys, validation)
                .await
            {
                Ok(p) => return Ok(p),
                Err(r) => refusals.push(r),
            }
        }
        if let (Some((keys, validation)), Some(token)) = (&self.google, bearer) {
            // With API keys on too, a bearer that is not a JWT was a key (refused above).
            if !self.enabled(AuthMode::ApiKey) || looks_like_jwt(token) {
                match self
                    .verify_jwt("the Google ID token", token, keys, validation)
                    .await
                {
                    Ok(p) => return Ok(p),
                    Err(r) => refusals.push(r),
                }
            }
        }
        // The most telling refusal: not allowed, then keys unavailable, then invalid.
        let top = refusals.iter().map(Refusal::rank).max();
        match refusals.into_iter().find(|r| Some(r.rank()) == top) {
            Some(refusal) => Err(refusal),
            None => Err(Refusal::Missing(self.missing_message())),
        }
    }

    fn missing_message(&self) -> String {
        let forms: Vec<&str> = self
            .modes
            .iter()
            .map(|m| match m {
                AuthMode::Google => "a Google ID token in Authorization: Bearer",
                AuthMode::Iap => "an IAP assertion in X-Goog-IAP-JWT-Assertion",
                AuthMode::ApiKey => "an API key in Authorization: Bearer or X-API-Key",
            })
            .collect();
        format!("authentication required: send {}", forms.join(", or "))
    }

    /// The 1-based position of the matching key; every key is compared, in constant time.
    fn api_key_index(&self, candidate: &str) -> Option<usize> {
        let presented = digest(candidate);
        let mut found = None;
        for (i, key) in self.api_keys.iter().enumerate() {
            if bool::from(key.ct_eq(&presented)) {
                found = found.or(Some(i + 1));
            }
        }
        found
    }

    async fn verify_jwt(
        &self,
        what: &str,
        token: &str,
        keys: &KeySet,
        validation: &Validation,
    ) -> Result<Principal, Refusal> {
        let invalid = |problem: &str| Refusal::Invalid(format!("{what} {problem}"));
        let key_type = keys.key_type();
        let head = jwt_header(token).ok_or_else(|| invalid("is not a well-formed JWT"))?;
        if head.alg != key_type.alg_name() {
            return Err(invalid(&format!(
                "has alg {}, which is not accepted (only {})",
                printable(&head.alg),
                key_type.alg_name()
            )));
        }
        let kid = head
            .kid
            .ok_or_else(|| invalid("names no signing key (no kid)"))?;
        let key = match keys.key(&kid).await {
            Ok(key) => key,
            Err(KeyError::Unknown) => {
                return Err(invalid(&format!(
                    "is signed with an unknown key (kid not in {} key set)",
                    keys.owner
                )));
            }
            Err(KeyError::Unavailable(problem)) => {
                return Err(Refusal::Unavailable(format!(
                    "cannot verify {what}: {} signing keys are unavailable ({problem})",
                    keys.owner
                )));
            }
        };
        let data = jsonwebtoken::decode::<Claims>(token, &key, validation)
            .map_err(|e| invalid(&describe(e.kind(), key_type)))?;
        let claims = data.claims;
        let now = jsonwebtoken::get_current_timestamp() as f64;
        match claims.iat {
            None => return Err(invalid("has no iat claim")),
            Some(iat) if iat > now + LEEWAY_SECS as f64 => {
                return Err(invalid("is not valid yet (iat in the future)"));
            }
            Some(_) => {}
        }
        let subject = claims.sub.filter(|s| !s.is_empty());
        // Google marks e-mails it has not verified; IAP's are always verified.
        let email = claims
            .email
            .filter(|_| claims.email_verified.as_ref().is_none_or(is_true));
        let mode = match key_type {
            KeyType::Rsa => AuthMode::Google,
            KeyType::P256 => AuthMode::Iap,
        };
        let name = email
            .clone()
            .or_else(|| subject.clone())
            .ok_or_else(|| invalid("has neither email nor sub"))?;
        if !self.principal_allowed(email.as_deref(), subject.as_deref()) {
            return Err(Refusal::Forbidden(format!(
                "{name} is not allowed to call this service (AUTH_ALLOWED_PRINCIPALS)"
            )));
        }
        Ok(Principal {
            mode,
            name,
            email,
            subject,
        })
    }

    /// `AUTH_ALLOWED_PRINCIPALS`: e-mails (any case), `*@domain`, or subjects.
    fn principal_allowed(&self, email: Option<&str>, subject: Option<&str>) -> bool {
        if self.allowed_principals.is_empty() {
            return true;
        }
        self.allowed_principals.iter().any(|entry| {
            if let Some(domain) = entry.strip_prefix("*@") {
                return email.is_some_and(|e| {
                    e.rsplit_once('@')
                        .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain))
                });
            }
            email.is_some_and(|e| e.eq_ignore_ascii_case(entry)) || subject == Some(entry.as_str())
        })
    }
}

/// Middleware: open paths pass; every other request needs a credential an enabled mode accepts.
pub(crate) async fn authenticate(
    State(verifier): State<Arc<Verifier>>,
    mut req: Request,
    next: Next,
) -> Response {
    if verifier.is_open(req.uri().path()) {
        return next.run(req).await;
    }
    match verifier.verify(req.headers()).await {
        Ok(principal) => {
            req.extensions_mut().insert(principal.clone());
            let mut response = next.run(req).await;
            response.extensions_mut().insert(principal);
            response
        }
        Err(refusal) => {
            let mut response = refusal.into_response(req.headers(), &verifier.realm);
            if is_grpc(req.headers()) {
                // Never reached the service's metrics layer: counted by the HTTP one.
                response
                    .extensions_mut()
                    .insert(crate::metrics::grpc::Unserved);
            }
            response
        }
    }
}

#[cfg(test)]
mod tests;
