//! `HEALTH_CHECK_TTL`: how long a check's result is reused.

use std::time::Duration;

use crate::config::{ConfigError, Env};

/// `HEALTH_CHECK_TTL`: how long a health check's result is reused.
pub const HEALTH_CHECK_TTL: &str = "HEALTH_CHECK_TTL";
const DEFAULT_HEALTH_TTL: Duration = Duration::from_secs(5);

/// `HEALTH_CHECK_TTL`.
pub fn check_ttl(env: &Env) -> Result<Duration, ConfigError> {
    env.duration_or(HEALTH_CHECK_TTL, DEFAULT_HEALTH_TTL)
}
