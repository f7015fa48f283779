//! The `AUTH_*` variables (and `GOOGLE_JWKS_URL`, `IAP_*`): which credentials incoming
//! requests must carry, read in the first start-up phase; API keys are read again once `sm://`
//! values are resolved.

use std::fmt;

use crate::config::{ConfigError, Env};

/// `AUTH_MODE`: how incoming requests are authenticated: `none`, or a comma list of `google`
/// (Google ID tokens), `iap` (IAP's signed header) and `api-key`; a request passes if any accepts it.
pub const AUTH_MODE: &str = "AUTH_MODE";
/// `AUTH_AUDIENCES`: comma list of the `aud` values a Google ID token may carry (required with
/// `google`; usually the service URL).
pub const AUTH_AUDIENCES: &str = "AUTH_AUDIENCES";
/// `AUTH_ALLOWED_PRINCIPALS`: comma list of who may call once verified (Google and IAP): e-mails,
/// `*@domain`, or subjects. Unset: any verified token.
pub const AUTH_ALLOWED_PRINCIPALS: &str = "AUTH_ALLOWED_PRINCIPALS";
/// `AUTH_API_KEYS`: comma list of accepted API keys (required with `api-key`; an `sm://`
/// reference is resolved before it is read). Never printed.
pub const AUTH_API_KEYS: &str = "AUTH_API_KEYS";
/// `AUTH_OPEN_PATHS`: comma list of paths served without credentials (`/x/*` is a prefix).
pub const AUTH_OPEN_PATHS: &str = "AUTH_OPEN_PATHS";
/// `GOOGLE_JWKS_URL`: Google's signing keys for ID tokens.
pub const GOOGLE_JWKS_URL: &str = "GOOGLE_JWKS_URL";
/// `IAP_JWKS_URL`: IAP's signing keys for `X-Goog-IAP-JWT-Assertion`.
pub const IAP_JWKS_URL: &str = "IAP_JWKS_URL";
/// `IAP_AUDIENCE`: the `aud` of IAP assertions (comma list accepted):
/// `/projects/NUMBER/global/backendServices/ID` or `/projects/NUMBER/apps/PROJECT`.
pub const IAP_AUDIENCE: &str = "IAP_AUDIENCE";

/// Google's key set for ID tokens (RS256, JWK form).
pub const DEFAULT_GOOGLE_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";
/// IAP's key set (ES256, JWK form).
pub const DEFAULT_IAP_JWKS_URL: &str = "https://www.gstatic.com/iap/verify/public_key-jwk";
/// Routes open without credentials: health probes, the metrics scrape, gRPC health.
pub const DEFAULT_AUTH_OPEN_PATHS: &str =
    "/health,/health/ready,/health/live,/metrics,/grpc.health.v1.Health/*";

/// One way of authenticating incoming requests (`AUTH_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMode {
    /// Google-signed ID tokens (RS256) in `Authorization: Bearer`.
    Google,
    /// IAP's ES256 `X-Goog-IAP-JWT-Assertion`.
    Iap,
    /// A shared key in `Authorization: Bearer` or `X-API-Key`.
    ApiKey,
}

impl AuthMode {
    /// The name in `AUTH_MODE` and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Google => "google",
            Self::Iap => "iap",
            Self::ApiKey => "api-key",
        }
    }
}

impl fmt::Display for AuthMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// API keys: `Debug` shows how many, never a key.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiKeys(Vec<String>);

impl ApiKeys {
    /// The keys of a comma list (blanks dropped).
    pub fn parse(raw: Option<&str>) -> Self {
        Self(
            raw.unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    /// The keys, for comparison only.
    pub fn keys(&self) -> &[String] {
        &self.0
    }

    /// No key at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeys({} redacted)", self.0.len())
    }
}

/// How incoming requests are authenticated (`AUTH_*`, `GOOGLE_JWKS_URL`, `IAP_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// Enabled modes; empty means `none` (every request passes).
    pub modes: Vec<AuthMode>,
    /// `aud` values accepted in Google ID tokens.
    pub audiences: Vec<String>,
    /// Who may call once verified (e-mail, `*@domain` or subject); empty: anyone verified.
    pub allowed_principals: Vec<String>,
    /// Accepted API keys (read again after `sm://` values are resolved).
    pub api_keys: ApiKeys,
    /// Paths served without credentials (`/prefix/*` entries match a prefix).
    pub open_paths: Vec<String>,
    /// Google's JWKS.
    pub google_jwks_url: String,
    /// IAP's JWKS.
    pub iap_jwks_url: String,
    /// `aud` values accepted in IAP assertions.
    pub iap_audiences: Vec<String>,
}

impl AuthConfig {
    /// Whether `mode` is enabled.
    pub fn enabled(&self, mode: AuthMode) -> bool {
        self.modes.contains(&mode)
    }

    /// Reads the variables that may hold secrets again, from the environment after its
    /// `sm://` values were resolved (start-up reads the environment before that).
    pub fn read_secrets(&mut self, env: &Env) {
        self.api_keys = ApiKeys::parse(env.get(AUTH_API_KEYS));
    }

    /// Reads and checks the authentication variables.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let modes = auth_modes(env)?;
        let audiences = list(env.get(AUTH_AUDIENCES));
        if modes.contains(&AuthMode::Google) && audiences.is_empty() {
            return Err(ConfigError::new(
                AUTH_AUDIENCES,
                "",
                "required with AUTH_MODE=google",
                "comma-separated audiences, such as the service URL https://NAME-HASH-REGION.a.run.app",
            ));
        }
        let iap_audiences = list(env.get(IAP_AUDIENCE));
        if modes.contains(&AuthMode::Iap) {
            if iap_audiences.is_empty() {
                return Err(ConfigError::new(
                    IAP_AUDIENCE,
                    "",
                    "required with AUTH_MODE=iap",
                    "/projects/NUMBER/global/backendServices/ID or /projects/NUMBER/apps/PROJECT",
                ));
            }
            if let Some(bad) = iap_audiences.iter().find(|a| !iap_audience_valid(a)) {
                return Err(ConfigError::new(
                    IAP_AUDIENCE,
                    env.get(IAP_AUDIENCE).unwrap_or_default(),
                    format!("{bad:?} is not an IAP audience"),
                    "/projects/NUMBER/global/backendServices/ID or /projects/NUMBER/apps/PROJECT",
                ));
            }
        }
        let api_keys = ApiKeys::parse(env.get(AUTH_API_KEYS));
        if modes.contains(&AuthMode::ApiKey) && api_keys.is_empty() {
            return Err(ConfigError::new(
                AUTH_API_KEYS,
                "",
                "required with AUTH_MODE=api-key",
                "comma-separated keys, for instance AUTH_API_KEYS=sm://api-keys",
            ));
        }
        let open_paths = list(Some(
            env.get(AUTH_OPEN_PATHS).unwrap_or(DEFAULT_AUTH_OPEN_PATHS),
        ));
        if let Some(bad) = open_paths.iter().find(|p| !p.starts_with('/')) {
            return Err(ConfigError::new(
                AUTH_OPEN_PATHS,
                env.get(AUTH_OPEN_PATHS).unwrap_or_default(),
                format!("{bad:?} is not a path"),
                "comma-separated paths such as /health,/metrics,/grpc.health.v1.Health/*",
            ));
        }
        Ok(Self {
            modes,
            audiences,
            allowed_principals: list(env.get(AUTH_ALLOWED_PRINCIPALS)),
            api_keys,
            open_paths,
            google_jwks_url: jwks_url(env, GOOGLE_JWKS_URL, DEFAULT_GOOGLE_JWKS_URL)?,
            iap_jwks_url: jwks_url(env, IAP_JWKS_URL, DEFAULT_IAP_JWKS_URL)?,
            iap_audiences,
        })
    }
}

/// `AUTH_MODE`: `none` or a list of modes.
fn auth_modes(env: &Env) -> Result<Vec<AuthMode>, ConfigError> {
    let Some(raw) = env.get(AUTH_MODE) else {
        return Ok(Vec::new());
    };
    let expected = "none, or a comma-separated list of google, iap, api-key";
    let names = list(Some(raw));
    if names.iter().any(|n| n.eq_ignore_ascii_case("none")) {
        if names.len() > 1 {
            return Err(ConfigError::new(
                AUTH_MODE,
                raw,
                "none cannot be combined with other modes",
                expected,
            ));
        }
        return Ok(Vec::new());
    }
    let mut modes = Vec::new();
    for name in &names {
        let mode = match name.to_ascii_lowercase().as_str() {
            "google" => AuthMode::Google,
            "iap" => AuthMode::Iap,
            "api-key" | "api_key" | "apikey" => AuthMode::ApiKey,
            _ => {
                return Err(ConfigError::new(
                    AUTH_MODE,
                    raw,
                    format!("unknown mode {name:?}"),
                    expected,
                ));
            }
        };
        if !modes.contains(&mode) {
            modes.push(mode);
        }
    }
    Ok(modes)
}

/// `/projects/NUMBER/global/backendServices/ID` or `/projects/NUMBER/apps/PROJECT`.
fn iap_audience_valid(aud: &str) -> bool {
    let parts: Vec<&str> = aud.split('/').collect();
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match parts.as_slice() {
        ["", "projects", n, "global", "backendServices", id] => number(n) && !id.is_empty(),
        ["", "projects", n, "apps", project] => number(n) && !project.is_empty(),
        _ => false,
    }
}

fn jwks_url(env: &Env, var: &str, default: &str) -> Result<String, ConfigError> {
    let raw = env.get(var).unwrap_or(default).trim();
    match reqwest::Url::parse(raw) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(raw.to_owned())
        }
        _ => Err(ConfigError::new(
            var,
            raw,
            "not an http(s) URL",
            "a URL such as https://www.googleapis.com/oauth2/v3/certs",
        )),
    }
}

/// A comma list, trimmed, blanks dropped.
fn list(raw: Option<&str>) -> Vec<String> {
    raw.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<AuthConfig, ConfigError> {
        AuthConfig::from_env(&Env::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn auth_is_off_by_default_and_checked_when_on() {
        let c = cfg(&[]).unwrap();
        assert!(c.modes.is_empty());
        assert!(c.open_paths.contains(&"/health/ready".to_owned()));
        assert_eq!(c.google_jwks_url, DEFAULT_GOOGLE_JWKS_URL);
        let e = cfg(&[("AUTH_MODE", "google")]).unwrap_err();
        assert_eq!(e.var, "AUTH_AUDIENCES");
        let e = cfg(&[("AUTH_MODE", "google,kerberos")]).unwrap_err();
        assert!(e.to_string().contains("unknown mode \"kerberos\""), "{e}");
        let e = cfg(&[("AUTH_MODE", "none,google")]).unwrap_err();
        assert_eq!(e.var, "AUTH_MODE");
        let e = cfg(&[("AUTH_MODE", "iap"), ("IAP_AUDIENCE", "/projects/x/apps/p")]).unwrap_err();
        assert_eq!(e.var, "IAP_AUDIENCE");
        let e = cfg(&[("AUTH_MODE", "api-key")]).unwrap_err();
        assert_eq!(e.var, "AUTH_API_KEYS");
        let c = cfg(&[
            ("AUTH_MODE", "google, IAP ,api-key"),
            ("AUTH_AUDIENCES", "https://a.run.app, https://b"),
            ("IAP_AUDIENCE", "/projects/123/global/backendServices/456"),
            ("AUTH_API_KEYS", "k1,k2"),
        ])
        .unwrap();
        assert_eq!(c.modes, [AuthMode::Google, AuthMode::Iap, AuthMode::ApiKey]);
        assert_eq!(c.audiences, ["https://a.run.app", "https://b"]);
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("k1") && debug.contains("2 redacted"),
            "{debug}"
        );
        assert!(iap_audience_valid("/projects/123/apps/my-project"));
        assert!(!iap_audience_valid("/projects/123/apps/"));
        let e = cfg(&[("GOOGLE_JWKS_URL", "file:///etc/keys")]).unwrap_err();
        assert_eq!(e.var, "GOOGLE_JWKS_URL");
    }

    #[test]
    fn api_keys_are_read_again_after_secrets_resolve() {
        let mut auth = cfg(&[("AUTH_MODE", "api-key"), ("AUTH_API_KEYS", "sm://keys")]).unwrap();
        auth.read_secrets(&Env::from_pairs([("AUTH_API_KEYS", "real-1, real-2")]));
        assert_eq!(auth.api_keys.keys(), ["real-1", "real-2"]);
    }
}
