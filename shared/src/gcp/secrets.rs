//! `sm://` references resolved from Secret Manager before the port opens.
//!
//! Any variable whose value is `sm://SECRET`, `sm://SECRET#VERSION` or
//! `sm://projects/P/secrets/S[/versions/V]` (also `projects/P/locations/L/...`, the regional
//! form) is replaced by the secret's text. All are fetched at once, each bounded by
//! `SECRET_TIMEOUT` (default [`DEFAULT_SECRET_TIMEOUT`]) and retried on connection errors, 429 and 5xx; each payload's CRC32C is
//! checked. A failure is one line naming the variable, the secret and the reason (HTTP status and
//! Google's error status), never the value. With no `sm://` value nothing is fetched (and no
//! credentials are looked for), so start-up costs nothing.
//!
//! The access token comes from Application Default Credentials (`google-cloud-auth`): the
//! metadata server on Google Cloud (`GCE_METADATA_HOST`), else `GOOGLE_APPLICATION_CREDENTIALS`
//! or gcloud's user credentials.

use std::time::Duration;

use base64::Engine as _;
use futures_util::future::join_all;
use serde::Deserialize;

use crate::StartupError;
use crate::config::{ConfigError, Env};
use crate::outbound::{Call, OutboundError, Request, RetryPolicy, Url};

use super::GOOGLE_CLOUD_PROJECT;

/// `SECRET_MANAGER_ENDPOINT`: Secret Manager's base URL for `sm://` values (default
/// `https://secretmanager.googleapis.com`; Private Service Connect endpoints and tests set it).
pub const SECRET_MANAGER_ENDPOINT: &str = "SECRET_MANAGER_ENDPOINT";
/// `SECRET_TIMEOUT`: the longest the fetch of one `sm://` secret may take, retries included.
pub const SECRET_TIMEOUT: &str = "SECRET_TIMEOUT";

/// Where Secret Manager's REST API is when `SECRET_MANAGER_ENDPOINT` is unset.
pub const DEFAULT_ENDPOINT: &str = "https://secretmanager.googleapis.com";
/// The whole fetch of one secret, retries included, unless `SECRET_TIMEOUT` says otherwise.
pub const DEFAULT_SECRET_TIMEOUT: Duration = Duration::from_secs(10);
/// One attempt: Secret Manager answers in tens of milliseconds; seconds mean trouble.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Payloads are at most 64 KiB, so an answer (base64 and JSON around it) fits in 128 KiB.
const MAX_ANSWER_BYTES: usize = 128 * 1024;
/// The project id from the metadata server.
const PROJECT_TIMEOUT: Duration = Duration::from_secs(3);
const SCHEME: &str = "sm://";
const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

/// A secret's text. `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    /// The text itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretValue {
    fn from(text: String) -> Self {
        Self(text)
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(***)")
    }
}

impl std::fmt::Display for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A parsed `sm://` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// The project, when the reference names one.
    pub project: Option<String>,
    /// The location of a regional secret.
    pub location: Option<String>,
    /// The secret id.
    pub secret: String,
    /// `latest`, a version number or an alias.
    pub version: String,
}

impl SecretRef {
    /// `None` when `raw` is not an `sm://` reference; else the reference or why it is malformed.
    pub fn parse(raw: &str) -> Option<Result<Self, String>> {
        let rest = raw.strip_prefix(SCHEME)?;
        Some(Self::parse_rest(rest))
    }

    fn parse_rest(rest: &str) -> Result<Self, String> {
        let id = |s: &str, what: &str| -> Result<String, String> {
            let ok = !s.is_empty()
                && s.len() <= 255
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if ok {
                Ok(s.to_owned())
            } else {
                Err(format!(
                    "{what} {s:?} must be 1 to 255 letters, digits, '-' or '_'"
                ))
            }
        };
        if let Some(path) = rest.strip_prefix("projects/") {
            let parts: Vec<&str> = path.split('/').collect();
            let (project, location, tail) = match parts.as_slice() {
                [p, "locations", l, tail @ ..] => (*p, Some(*l), tail),
                [p, tail @ ..] => (*p, None, tail),
                [] => unreachable!("split yields at least one part"),
            };
            let (secret, version) = match tail {
                ["secrets", s] => (*s, "latest"),
                ["secrets", s, "versions", v] => (*s, *v),
                _ => {
                    return Err(
                        "expected sm://projects/P/secrets/S/versions/V (or .../locations/L/secrets/...)"
                            .into(),
                    );
                }
            };
            if project.is_empty() || project.contains(char::is_whitespace) {
                return Err(format!("project {project:?} is not a project id"));
            }
            return Ok(Self {
                project: Some(project.to_owned()),
                location: location.map(|l| id(l, "location")).transpose()?,
                secret: id(secret, "secret")?,
                version: id(version, "version")?,
            });
        }
        let (secret, version) = rest.split_once('#').unwrap_or((rest, "latest"));
        Ok(Self {
            project: None,
            location: None,
            secret: id(secret, "secret")?,
            version: id(version, "version")?,
        })
    }

    /// `projects/P[/locations/L]/secrets/S/versions/V`.
    fn resource(&self, project: &str) -> String {
        let project = self.project.as_deref().unwrap_or(project);
        match &self.location {
            Some(l) => format!(
                "projects/{project}/locations/{l}/secrets/{}/versions/{}",
                self.secret, self.version
            ),
            None => format!(
                "projects/{project}/secrets/{}/versions/{}",
                self.secret, self.version
            ),
        }
    }
}

/// Every variable of `env` holding an `sm://` reference, by name; a malformed reference is a
/// configuration error.
pub fn references(env: &Env) -> Result<Vec<(String, SecretRef)>, ConfigError> {
    let mut found = Vec::new();
    for (var, value) in env.iter() {
        match SecretRef::parse(value) {
            None => {}
            Some(Ok(r)) => found.push((var.to_owned(), r)),
            Some(Err(problem)) => {
                return Err(ConfigError::new(
                    var,
                    value,
                    problem,
                    "sm://SECRET, sm://SECRET#VERSION or sm://projects/P/secrets/S/versions/V",
                ));
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

/// Replaces every `sm://` value of `env` by its secret. `metadata_base` is the metadata
/// server (`http://HOST`), asked for the project only when a reference needs one and
/// `GOOGLE_CLOUD_PROJECT` is unset. A malformed reference is a configuration error (exit 2);
/// a secret that can't be read is any other start-up error (exit 1).
pub async fn resolve(env: &mut Env, metadata_base: &str) -> Result<(), StartupError> {
    let refs = references(env)?;
    if refs.is_empty() {
        return Ok(());
    }
    let named: Vec<(String, String, SecretRef)> = refs
        .into_iter()
        .map(|(var, r)| {
            let raw = env.get(&var).unwrap_or_default().to_owned();
            (var, raw, r)
        })
        .collect();
    let values = fetch(env, metadata_base, &named).await?;
    for ((var, _, _), value) in named.iter().zip(values) {
        env.set(var, value.0);
    }
    Ok(())
}

/// The values of `pairs` that are `sm://` references (`x-api-key=sm://otel-key` in a list
/// variable `var`) become their secrets, fetched as every other `sm://` value is; messages
/// call the `i`-th value `var[i]`. `env` gives what [`fetch`] reads from it.
pub async fn resolve_values(
    var: &str,
    pairs: Vec<(String, String)>,
    env: &Env,
    metadata_base: &str,
) -> Result<Vec<(String, String)>, StartupError> {
    if !pairs.iter().any(|(_, v)| v.starts_with(SCHEME)) {
        return Ok(pairs);
    }
    let mut vars: Vec<(String, String)> = [
        GOOGLE_CLOUD_PROJECT,
        SECRET_MANAGER_ENDPOINT,
        SECRET_TIMEOUT,
    ]
    .iter()
    .filter_map(|k| env.get(k).map(|v| ((*k).to_owned(), v.to_owned())))
    .collect();
    let keyed = |i: usize| format!("{var}[{i}]");
    for (i, (_, v)) in pairs.iter().enumerate() {
        if v.starts_with(SCHEME) {
            vars.push((keyed(i), v.clone()));
        }
    }
    let mut secrets = Env::from_pairs(vars);
    resolve(&mut secrets, metadata_base).await?;
    Ok(pairs
        .into_iter()
        .enumerate()
        .map(|(i, (k, v))| match secrets.get(&keyed(i)) {
            Some(secret) if v.starts_with(SCHEME) => (k, secret.to_owned()),
            _ => (k, v),
        })
        .collect())
}

/// Fetches `refs` (each `(name, raw, reference)`: `name` is what messages call it, a variable
/// or a configuration key, and `raw` the `sm://` text written there), all at once, the way
/// [`resolve`] does for variables, and returns their values in order. `env` gives
/// `SECRET_MANAGER_ENDPOINT`, `SECRET_TIMEOUT` and `GOOGLE_CLOUD_PROJECT`. A failure is one line
/// `name=raw: resource: reason` (exit 1); a bad endpoint or timeout is a configuration error.
pub async fn fetch(
    env: &Env,
    metadata_base: &str,
    refs: &[(String, String, SecretRef)],
) -> Result<Vec<SecretValue>, StartupError> {
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let timeout = env.duration_or(SECRET_TIMEOUT, DEFAULT_SECRET_TIMEOUT)?;
    fetch_all(env, metadata_base, refs, timeout)
        .await
        .map_err(StartupError::Other)
}

async fn fetch_all(
    env: &Env,
    metadata_base: &str,
    refs: &[(String, String, SecretRef)],
    timeout: Duration,
) -> Result<Vec<SecretValue>, String> {
    let endpoint = env.get(SECRET_MANAGER_ENDPOINT).unwrap_or(DEFAULT_ENDPOINT);
    let endpoint = endpoint.trim_end_matches('/').to_owned();
    if let Err(e) = Url::parse(&endpoint) {
        return Err(ConfigError::new(
            SECRET_MANAGER_ENDPOINT,
            &endpoint,
            e.to_string(),
            "a URL such as https://secretmanager.googleapis.com",
        )
        .to_string());
    }
    let needs_project = refs.iter().any(|(_, _, r)| r.project.is_none());
    // The token and the project are independent: both are asked at once (on Google Cloud,
    // two metadata reads over the one outbound client).
    let (token, project) = tokio::join!(access_token(metadata_base, timeout), async {
        match (needs_project, env.get(GOOGLE_CLOUD_PROJECT)) {
            (false, _) => Ok(String::new()),
            (true, Some(p)) => Ok(p.to_owned()),
            (true, None) => project_from_metadata(metadata_base).await,
        }
    });
    let name = |(var, raw, _): &(String, String, SecretRef)| format!("{var}={raw}");
    let project = project.map_err(|why| {
        let first = refs
            .iter()
            .find(|(_, _, r)| r.project.is_none())
            .expect("one needs it");
        format!("{}: {why}", name(first))
    })?;
    let token = token.map_err(|why| format!("{}: {why}", name(&refs[0])))?;
    let fetches = refs.iter().map(|entry| {
        let resource = entry.2.resource(&project);
        let (endpoint, token) = (&endpoint, &token);
        async move {
            let value = fetch_one(endpoint, &resource, token, timeout).await;
            (entry, resource, value)
        }
    });
    let mut resolved = Vec::with_capacity(refs.len());
    for (entry, resource, value) in join_all(fetches).await {
        match value {
            Ok(v) => resolved.push(v),
            Err(why) => return Err(format!("{}: {resource}: {why}", name(entry))),
        }
    }
    tracing::info!(
        secrets = resolved.len(),
        variables = refs
            .iter()
            .map(|(v, _, _)| v.as_str())
            .collect::<Vec<_>>()
            .join(","),
        "secrets resolved from Secret Manager"
    );
    Ok(resolved)
}

/// An access token for Secret Manager from Application Default Credentials. When ADC would
/// fall back to the metadata server (no `GOOGLE_APPLICATION_CREDENTIALS`, no gcloud
/// credentials file: on Google Cloud), the token is read from it directly over the outbound
/// client the secrets are fetched with: one client and one round trip to a local server,
/// instead of google-cloud-auth building its own client first (about 12 ms of TLS set-up
/// before its first request). Otherwise google-cloud-auth reads the key file or user
/// credentials.
async fn access_token(metadata_base: &str, timeout: Duration) -> Result<String, String> {
    let hint = "on Google Cloud the metadata server provides one; elsewhere run \
                `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS";
    if adc_is_metadata_server() {
        return token_from_metadata(metadata_base, timeout)
            .await
            .map_err(|why| format!("no access token ({why}); {hint}"));
    }
    let credentials = google_cloud_auth::credentials::Builder::default()
        .with_scopes([CLOUD_PLATFORM])
        .build_access_token_credentials()
        .map_err(|e| format!("no Google credentials ({e}); {hint}"))?;
    let token = tokio::time::timeout(timeout, credentials.access_token())
        .await
        .map_err(|_| format!("no access token within {timeout:?}; {hint}"))?
        .map_err(|e| format!("no access token ({e}); {hint}"))?;
    Ok(token.token)
}

/// Whether Application Default Credentials come from the metadata server, by ADC's own rules
/// (AIP-4110, as google-cloud-auth applies them): no `GOOGLE_APPLICATION_CREDENTIALS` and no
/// gcloud file at `$HOME/.config/gcloud/application_default_credentials.json`.
fn adc_is_metadata_server() -> bool {
    if std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").is_some() {
        return false;
    }
    std::env::var_os("HOME").is_none_or(|home| {
        !std::path::Path::new(&home)
            .join(".config/gcloud/application_default_credentials.json")
            .exists()
    })
}

/// `instance/service-accounts/default/token` (`{"access_token", "expires_in",
/// "token_type"}`), retried on connection errors and 5xx while `timeout` allows: GKE's
/// metadata server can take a moment to answer at pod start.
async fn token_from_metadata(base: &str, timeout: Duration) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Token {
        access_token: String,
    }
    let path = format!("instance/service-accounts/default/token?scopes={CLOUD_PLATFORM}");
    let deadline = tokio::time::Instant::now() + timeout;
    let mut attempt = 1;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let outcome = super::metadata::get(base, &path, PROJECT_TIMEOUT.min(left)).await;
        let retry = match &outcome {
            Ok(_) => false,
            Err(super::metadata::MetadataError::Unreachable(_)) => true,
            Err(super::metadata::MetadataError::Status { status, .. }) => *status >= 500,
            Err(_) => false,
        };
        let wait = Duration::from_millis(50 << attempt.min(5));
        if !retry
            || attempt >= 4
            || wait >= deadline.saturating_duration_since(tokio::time::Instant::now())
        {
            let body = outcome.map_err(|e| e.to_string())?;
            let token: Token = serde_json::from_str(&body)
                .map_err(|_| "the metadata server's token answer is not JSON".to_owned())?;
            return Ok(token.access_token);
        }
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

async fn project_from_metadata(base: &str) -> Result<String, String> {
    super::metadata::get(base, "project/project-id", PROJECT_TIMEOUT)
        .await
        .map(|p| p.trim().to_owned())
        .map_err(|e| {
            format!(
                "the reference names no project and GOOGLE_CLOUD_PROJECT is unset ({e}); \
                 set GOOGLE_CLOUD_PROJECT or write sm://projects/P/secrets/S/versions/V"
            )
        })
}

/// `GET {endpoint}/v1/{resource}:access`, retried on connection errors, 429 and 5xx.
async fn fetch_one(
    endpoint: &str,
    resource: &str,
    token: &str,
    timeout: Duration,
) -> Result<SecretValue, String> {
    let url = Url::parse(&format!("{endpoint}/v1/{resource}:access"))
        .map_err(|e| format!("not a URL: {e}"))?;
    let policy = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(2),
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let mut attempt = 1;
    loop {
        // The first attempt gets the whole timeout exactly (its error then says so).
        let left = match attempt {
            1 => timeout,
            _ => deadline.saturating_duration_since(tokio::time::Instant::now()),
        };
        let call = Call::new(ATTEMPT_TIMEOUT.min(left), MAX_ANSWER_BYTES);
        let outcome = once(&call, url.clone(), token).await;
        let (retry, wait) = match &outcome {
            Ok(_) => return outcome.map_err(Failure::into_message),
            Err(Failure::Status {
                status,
                retry_after,
                ..
            }) if *status == 429 || *status >= 500 => (true, *retry_after),
            Err(Failure::Unreachable(e)) => (!matches!(e, OutboundError::Tls { .. }), None),
            Err(_) => (false, None),
        };
        let wait = wait.unwrap_or_else(|| policy.backoff(attempt));
        let room = deadline.saturating_duration_since(tokio::time::Instant::now());
        if !retry || attempt >= policy.max_attempts || wait >= room {
            return outcome.map_err(Failure::into_message);
        }
        tracing::warn!(
            secret = resource,
            attempt,
            problem = %outcome.as_ref().err().map(Failure::message).unwrap_or_default(),
            "Secret Manager: retrying"
        );
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

/// Why one attempt failed.
enum Failure {
    Unreachable(OutboundError),
    Status {
        status: u16,
        google: Option<GoogleError>,
        retry_after: Option<Duration>,
    },
    Checksum,
    Malformed(String),
}

impl Failure {
    fn message(&self) -> String {
        match self {
            Self::Unreachable(e) => e.to_string(),
            Self::Status { status, google, .. } => {
                let mut m = status.to_string();
                if let Some(g) = google {
                    if !g.status.is_empty() {
                        m.push(' ');
                        m.push_str(&g.status);
                    }
                    if !g.message.is_empty() {
                        m.push_str(": ");
                        m.push_str(&crate::error::one_line(&g.message, 300));
                    }
                }
                if let Some(hint) = hint(*status) {
                    m.push_str("; ");
                    m.push_str(hint);
                }
                m
            }
            Self::Checksum => {
                "the payload does not match its dataCrc32c checksum (corrupted in transit); \
                 not used"
                    .into()
            }
            Self::Malformed(why) => why.clone(),
        }
    }

    fn into_message(self) -> String {
        self.message()
    }
}

fn hint(status: u16) -> Option<&'static str> {
    Some(match status {
        401 => "the access token was refused",
        403 => {
            "grant the service account roles/secretmanager.secretAccessor on the secret \
             (and enable the Secret Manager API)"
        }
        404 => "check the secret's name, project and version (`gcloud secrets versions list`)",
        400 => "the version may be disabled or destroyed",
        _ => return None,
    })
}

/// Google's error body: `{"error": {"code", "message", "status"}}`.
#[derive(Deserialize)]
struct GoogleErrorBody {
    error: GoogleError,
}

#[derive(Deserialize)]
struct GoogleError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
}

/// `{"name", "payload": {"data": base64, "dataCrc32c": "decimal int64"}}`.
#[derive(Deserialize)]
struct AccessResponse {
    payload: Payload,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(default)]
    data: String,
    #[serde(rename = "dataCrc32c")]
    data_crc32c: Option<String>,
}

async fn once(call: &Call, url: Url, token: &str) -> Result<SecretValue, Failure> {
    let response = Request::get(url)
        .bearer(token)
        .send(call)
        .await
        .map_err(Failure::Unreachable)?;
    let status = response.status().as_u16();
    if status != 200 {
        let retry_after = crate::outbound::retry_after(response.headers());
        let google = response
            .body_bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice::<GoogleErrorBody>(&b).ok())
            .map(|b| b.error);
        return Err(Failure::Status {
            status,
            google,
            retry_after,
        });
    }
    let answer: AccessResponse = response.body_json().await.map_err(Failure::Unreachable)?;
    decode(&answer.payload)
}

fn decode(payload: &Payload) -> Result<SecretValue, Failure> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload.data.as_bytes())
        .map_err(|_| Failure::Malformed("the payload is not base64".into()))?;
    if let Some(expected) = &payload.data_crc32c {
        let expected: u64 = expected
            .parse()
            .map_err(|_| Failure::Malformed("dataCrc32c is not a decimal number".into()))?;
        if u64::from(crc32c::crc32c(&bytes)) != expected {
            return Err(Failure::Checksum);
        }
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        Failure::Malformed(
            "the payload is not UTF-8 text, which an environment variable must be".into(),
        )
    })?;
    Ok(SecretValue(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_in_every_documented_form() {
        let r = |s: &str| SecretRef::parse(s).unwrap().unwrap();
        assert_eq!(
            r("sm://hf-token").resource("p"),
            "projects/p/secrets/hf-token/versions/latest"
        );
        assert_eq!(
            r("sm://hf-token#3").resource("p"),
            "projects/p/secrets/hf-token/versions/3"
        );
        assert_eq!(
            r("sm://projects/other/secrets/k/versions/7").resource("p"),
            "projects/other/secrets/k/versions/7"
        );
        assert_eq!(
            r("sm://projects/other/secrets/k").resource("p"),
            "projects/other/secrets/k/versions/latest"
        );
        assert_eq!(
            r("sm://projects/o/locations/europe-west1/secrets/k/versions/2").resource("p"),
            "projects/o/locations/europe-west1/secrets/k/versions/2"
        );
        assert!(SecretRef::parse("https://x").is_none());
        for bad in [
            "sm://",
            "sm://a/b",
            "sm://a#",
            "sm://projects/p/keys/k",
            "sm://bad name",
        ] {
            assert!(SecretRef::parse(bad).unwrap().is_err(), "{bad}");
        }
    }

    #[test]
    fn payloads_are_checked_against_their_crc32c() {
        let data = base64::engine::general_purpose::STANDARD.encode("s3cret");
        let crc = crc32c::crc32c(b"s3cret").to_string();
        let good = Payload {
            data: data.clone(),
            data_crc32c: Some(crc),
        };
        assert_eq!(decode(&good).ok().unwrap().expose(), "s3cret");
        let bad = Payload {
            data,
            data_crc32c: Some("1".into()),
        };
        assert!(matches!(decode(&bad), Err(Failure::Checksum)));
        assert_eq!(
            format!("{:?}", decode(&good).ok().unwrap()),
            "SecretValue(***)"
        );
    }
}
