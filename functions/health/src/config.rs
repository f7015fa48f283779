//! The aggregator's variables, parsed through the runtime's [`aixrun::Env`].

use std::time::Duration;

use aixrun::gcp::idtoken::IdTokens;
use aixrun::probe::Target;
use aixrun::{ConfigError, Env};

/// `HEALTH_TARGETS`: `name=url,...`; `http(s)://` targets are probed on `/health/ready`,
/// `grpc://` (plaintext) and `grpcs://` (TLS) targets through `grpc.health.v1`.
pub const HEALTH_TARGETS: &str = "HEALTH_TARGETS";
/// `HEALTH_TARGET_TIMEOUT`: how long one target may take to answer.
pub const HEALTH_TARGET_TIMEOUT: &str = "HEALTH_TARGET_TIMEOUT";
/// `HEALTH_TARGETS_CRITICAL`: when true, any target down makes the aggregator unhealthy and
/// not ready (default false: degraded, still ready).
pub const HEALTH_TARGETS_CRITICAL: &str = "HEALTH_TARGETS_CRITICAL";

/// `HEALTH_TARGETS_AUTH`: `id_token` (every target is asked with a Google ID token minted for
/// its origin), `none`, or unset: ID tokens for `https://` and `grpcs://` targets on Google
/// Cloud (`K_SERVICE` set), none elsewhere, as orchestrate does for its outgoing calls.
pub const HEALTH_TARGETS_AUTH: &str = "HEALTH_TARGETS_AUTH";

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// What the aggregator checks.
#[derive(Debug, Clone)]
pub struct AggregatorConfig {
    /// Targets, in the order given.
    pub targets: Vec<Target>,
    /// Per-target timeout.
    pub timeout: Duration,
    /// Whether a target down makes the aggregator unready.
    pub critical: bool,
}

impl AggregatorConfig {
    /// Reads the variables.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let targets = match env.get(HEALTH_TARGETS) {
            None => Vec::new(),
            Some(raw) => parse_targets(raw)?,
        };
        let on_platform = env.get(aixrun::config::K_SERVICE).is_some();
        let auth = match env.get(HEALTH_TARGETS_AUTH).map(str::trim) {
            None => None,
            Some("id_token") => Some(true),
            Some("none") => Some(false),
            Some(other) => {
                return Err(ConfigError::new(
                    HEALTH_TARGETS_AUTH,
                    other,
                    "unknown auth",
                    "id_token or none (unset: ID tokens for https targets on Google Cloud)",
                ));
            }
        };
        // One cache for every target: tokens are per audience.
        let tokens = IdTokens::new();
        let targets = targets
            .into_iter()
            .map(|t| {
                if auth.unwrap_or(on_platform && t.is_https()) {
                    t.with_id_token(tokens.clone(), None)
                } else {
                    t
                }
            })
            .collect();
        Ok(Self {
            targets,
            timeout: env.duration_or(HEALTH_TARGET_TIMEOUT, DEFAULT_TIMEOUT)?,
            critical: env.bool_or(HEALTH_TARGETS_CRITICAL, false)?,
        })
    }
}

fn parse_targets(raw: &str) -> Result<Vec<Target>, ConfigError> {
    let expected = "name=url pairs separated by commas, e.g. orchestrate=https://orchestrate-abc.a.run.app,mcp=grpc://mcp-tool:8080";
    let mut targets: Vec<Target> = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((name, url)) = item.split_once('=') else {
            return Err(ConfigError::new(
                HEALTH_TARGETS,
                raw,
                format!("{item:?} has no name="),
                expected,
            ));
        };
        let name = name.trim();
        if name.is_empty() || targets.iter().any(|t| t.name == name) {
            return Err(ConfigError::new(
                HEALTH_TARGETS,
                raw,
                format!("target name {name:?} is empty or repeated"),
                expected,
            ));
        }
        let target = Target::parse(name, url.trim())
            .map_err(|problem| ConfigError::new(HEALTH_TARGETS, raw, problem, expected))?;
        targets.push(target);
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs_and_rejects_bad_ones() {
        let t = parse_targets("a=http://127.0.0.1:1, b=grpc://127.0.0.1:2").unwrap();
        assert_eq!(t.len(), 2);
        assert!(parse_targets("nourl").is_err());
        assert!(parse_targets("a=ftp://x").is_err());
        assert!(parse_targets("a=http://x,a=http://y").is_err());
    }

    fn targets(vars: &[(&str, &str)]) -> Result<Vec<Target>, ConfigError> {
        let all = [(
            HEALTH_TARGETS,
            "a=http://x:1,b=https://y.run.app/,c=grpcs://z.run.app",
        )];
        let env = Env::from_pairs(vars.iter().chain(&all).copied());
        AggregatorConfig::from_env(&env).map(|c| c.targets)
    }

    fn audiences(targets: &[Target]) -> Vec<Option<&str>> {
        targets
            .iter()
            .map(|t| t.id_token.as_ref().map(|i| i.audience.as_str()))
            .collect()
    }

    #[test]
    fn id_tokens_for_https_targets_on_the_platform_unless_configured() {
        assert_eq!(audiences(&targets(&[]).unwrap()), [None, None, None]);
        let on_platform = targets(&[("K_SERVICE", "health")]).unwrap();
        assert_eq!(
            audiences(&on_platform),
            [None, Some("https://y.run.app"), Some("https://z.run.app")]
        );
        let all = targets(&[(HEALTH_TARGETS_AUTH, "id_token")]).unwrap();
        assert_eq!(
            audiences(&all),
            [
                Some("http://x:1"),
                Some("https://y.run.app"),
                Some("https://z.run.app")
            ]
        );
        let none = targets(&[("K_SERVICE", "health"), (HEALTH_TARGETS_AUTH, "none")]).unwrap();
        assert_eq!(audiences(&none), [None, None, None]);
        assert!(targets(&[(HEALTH_TARGETS_AUTH, "basic")]).is_err());
    }
}
