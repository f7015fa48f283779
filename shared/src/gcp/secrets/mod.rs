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

mod access;
mod reference;
#[cfg(test)]
mod tests;

use std::time::Duration;

use futures_util::future::join_all;

use crate::StartupError;
use crate::config::{ConfigError, Env};
use crate::outbound::Url;

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
/// The project id from the metadata server.
const PROJECT_TIMEOUT: Duration = Duration::from_secs(3);

use access::fetch_one;
use reference::SCHEME;
pub use reference::{SecretRef, SecretValue};

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

/// An access token for Secret Manager from Application Default Credentials
/// ([`super::token::from_adc`]).
async fn access_token(metadata_base: &str, timeout: Duration) -> Result<String, String> {
    super::token::from_adc(metadata_base, timeout)
        .await
        .map(|t| t.token)
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
