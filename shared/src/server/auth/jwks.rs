//! A JSON Web Key Set (Google's or IAP's), fetched on the first request that needs it (never at
//! start-up), kept for the answer's `Cache-Control: max-age`, fetched again once when a token
//! names a key it does not hold (keys rotate), with concurrent requests sharing one fetch.
//! Each key's algorithm is pinned by its type: RSA keys verify RS256 only, P-256 keys ES256
//! only, so no token can choose how it is checked (HS256 "signed" with a public key included).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey};
use reqwest::header::{ACCEPT, AGE, CACHE_CONTROL, HeaderMap, HeaderValue};
use serde::Deserialize;
use tokio::time::Instant;

use crate::outbound::{self, Call, Url};

/// Longest a key-set fetch may take, body included.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest key set read (Google's is about 2 KiB, IAP's under 1 KiB).
pub(crate) const MAX_JWKS_BYTES: usize = 256 * 1024;
/// How long a key set is kept when its answer says nothing about caching.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
/// Longest a key set is kept, whatever its answer says.
const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Fetches are at least this far apart: a stream of tokens naming unknown keys (or a key-set
/// server that fails) costs at most one fetch per interval.
pub(crate) const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(1);

/// The one key type a set is read for, and so the one algorithm its keys verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyType {
    /// `kty: RSA`, RS256 only (Google ID tokens).
    Rsa,
    /// `kty: EC`, `crv: P-256`, ES256 only (IAP).
    P256,
}

impl KeyType {
    /// The algorithm tokens verified by these keys must name.
    pub(crate) fn algorithm(self) -> Algorithm {
        match self {
            Self::Rsa => Algorithm::RS256,
            Self::P256 => Algorithm::ES256,
        }
    }

    /// The algorithm's name in a JWT header.
    pub(crate) fn alg_name(self) -> &'static str {
        match self {
            Self::Rsa => "RS256",
            Self::P256 => "ES256",
        }
    }
}

/// Why no key could be had for a `kid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyError {
    /// The set (fresh, or just fetched again) has no such key.
    Unknown,
    /// The set could not be fetched (and no copy we hold has the key).
    Unavailable(String),
}

/// One remote key set and its cache.
pub(crate) struct KeySet {
    /// Whose keys, for messages ("Google's").
    pub(crate) owner: &'static str,
    url: String,
    key_type: KeyType,
    keys: RwLock<Option<Arc<Keys>>>,
    /// Fetch attempts finished so far: a waiter that sees it move knows someone fetched.
    attempts: AtomicU64,
    fetch: tokio::sync::Mutex<FetchState>,
}

struct Keys {
    by_kid: HashMap<String, Arc<DecodingKey>>,
    expires: Instant,
}

#[derive(Default)]
struct FetchState {
    last_attempt: Option<Instant>,
    last_error: Option<String>,
}

impl KeySet {
    pub(crate) fn new(owner: &'static str, url: String, key_type: KeyType) -> Self {
        Self {
            owner,
            url,
            key_type,
            keys: RwLock::new(None),
            attempts: AtomicU64::new(0),
            fetch: tokio::sync::Mutex::new(FetchState::default()),
        }
    }

    pub(crate) fn key_type(&self) -> KeyType {
        self.key_type
    }

    fn snapshot(&self) -> Option<Arc<Keys>> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The key named `kid`: from the cache while it is fresh; else after one fetch, shared by
    /// every request that needs it at the same time.
    pub(crate) async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, KeyError> {
        let seen = self.attempts.load(Ordering::SeqCst);
        if let Some(keys) = self.snapshot()
            && Instant::now() < keys.expires
            && let Some(key) = keys.by_kid.get(kid)
        {
            return Ok(key.clone());
        }
        let mut state = self.fetch.lock().await;
        let fetched_meanwhile = self.attempts.load(Ordering::SeqCst) != seen;
        let recent = state
            .last_attempt
            .is_some_and(|at| at.elapsed() < MIN_REFETCH_INTERVAL);
        if !fetched_meanwhile && !recent {
            state.last_attempt = Some(Instant::now());
            match self.fetch_keys().await {
                Ok(keys) => {
                    tracing::debug!(
                        keys = keys.by_kid.len(),
                        max_age_s = keys
                            .expires
                            .saturating_duration_since(Instant::now())
                            .as_secs(),
                        "fetched {} signing keys",
                        self.owner
                    );
                    *self
                        .keys
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(keys));
                    state.last_error = None;
                }
                Err(problem) => {
                    tracing::warn!("cannot fetch {} signing keys: {problem}", self.owner);
                    state.last_error = Some(problem);
                }
            }
            self.attempts.fetch_add(1, Ordering::SeqCst);
        }
        let last_error = state.last_error.clone();
        drop(state);
        // What the latest attempt left: a stale copy still verifies while a refresh fails.
        let found = self.snapshot().and_then(|k| k.by_kid.get(kid).cloned());
        match (found, last_error) {
            (Some(key), _) => Ok(key),
            (None, Some(problem)) => Err(KeyError::Unavailable(problem)),
            (None, None) => Err(KeyError::Unknown),
        }
    }

    async fn fetch_keys(&self) -> Result<Keys, String> {
        let url = Url::parse(&self.url).map_err(|e| format!("bad key-set URL: {e}"))?;
        let call = Call::new(FETCH_TIMEOUT, MAX_JWKS_BYTES);
        let response = outbound::Request::get(url)
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .send(&call)
            .await
            .and_then(outbound::Response::error_for_status)
            .map_err(|e| e.to_string())?;
        let max_age = max_age(response.headers());
        let set: JwkSet = response.body_json().await.map_err(|e| e.to_string())?;
        let by_kid: HashMap<String, Arc<DecodingKey>> = set
            .keys
            .iter()
            .filter_map(|jwk| {
                let key = jwk.decoding_key(self.key_type)?;
                Some((jwk.kid.clone()?, Arc::new(key)))
            })
            .collect();
        if by_kid.is_empty() {
            return Err(format!(
                "the key set has no usable {} key",
                self.key_type.alg_name()
            ));
        }
        Ok(Keys {
            by_kid,
            expires: Instant::now() + max_age,
        })
    }
}

#[derive(Deserialize)]
struct JwkSet {
    #[serde(default)]
    keys: Vec<Jwk>,
}

/// The members of a JWK this reader looks at (others are ignored).
#[derive(Deserialize)]
struct Jwk {
    kid: Option<String>,
    kty: String,
    alg: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

impl Jwk {
    /// The key, when it is of the set's type and meant for signatures with its algorithm.
    fn decoding_key(&self, key_type: KeyType) -> Option<DecodingKey> {
        if self.usage.as_deref().is_some_and(|u| u != "sig")
            || self
                .alg
                .as_deref()
                .is_some_and(|a| a != key_type.alg_name())
        {
            return None;
        }
        match key_type {
            KeyType::Rsa if self.kty == "RSA" => {
                DecodingKey::from_rsa_components(self.n.as_deref()?, self.e.as_deref()?).ok()
            }
            KeyType::P256 if self.kty == "EC" && self.crv.as_deref() == Some("P-256") => {
                DecodingKey::from_ec_components(self.x.as_deref()?, self.y.as_deref()?).ok()
            }
            _ => None,
        }
    }
}

/// How long an answer may be kept: `max-age` less `Age`; nothing with `no-store` or
/// `no-cache`; [`DEFAULT_MAX_AGE`] without either; never more than [`MAX_MAX_AGE`].
fn max_age(headers: &HeaderMap) -> Duration {
    let mut max_age = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',').map(str::trim) {
            let lower = directive.to_ascii_lowercase();
            if lower == "no-store" || lower == "no-cache" {
                return Duration::ZERO;
            }
            if let Some(secs) = lower.strip_prefix("max-age=") {
                max_age = secs.trim_matches('"').parse::<u64>().ok();
            }
        }
    }
    let Some(max_age) = max_age else {
        return DEFAULT_MAX_AGE;
    };
    let age = headers
        .get(AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    Duration::from_secs(max_age.saturating_sub(age)).min(MAX_MAX_AGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn max_age_follows_cache_control() {
        let google = "public, max-age=19845, must-revalidate, no-transform";
        assert_eq!(
            max_age(&headers(&[("cache-control", google)])),
            Duration::from_secs(19845)
        );
        assert_eq!(
            max_age(&headers(&[("cache-control", "max-age=100"), ("age", "40")])),
            Duration::from_secs(60)
        );
        assert_eq!(
            max_age(&headers(&[("cache-control", "no-store")])),
            Duration::ZERO
        );
        assert_eq!(max_age(&headers(&[])), DEFAULT_MAX_AGE);
        assert_eq!(
            max_age(&headers(&[("cache-control", "max-age=99999999")])),
            MAX_MAX_AGE
        );
    }

    #[test]
    fn keys_are_read_for_their_pinned_type_only() {
        let rsa: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "RSA", "kid": "r", "alg": "RS256", "use": "sig",
            "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw",
            "e": "AQAB"
        }))
        .unwrap();
        assert!(rsa.decoding_key(KeyType::Rsa).is_some());
        assert!(rsa.decoding_key(KeyType::P256).is_none());
        let ec: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "EC", "kid": "e", "alg": "ES256", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
        }))
        .unwrap();
        assert!(ec.decoding_key(KeyType::P256).is_some());
        assert!(ec.decoding_key(KeyType::Rsa).is_none());
        let hmac: Jwk =
            serde_json::from_value(serde_json::json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0"}))
                .unwrap();
        assert!(hmac.decoding_key(KeyType::Rsa).is_none());
    }
}
