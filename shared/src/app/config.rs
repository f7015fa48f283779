//! The runtime's configuration: each subsystem reads and checks its own variables (beside it:
//! `server/config.rs`, `server/auth/config.rs`, `logging/config.rs`, `telemetry/config/`,
//! `health/config.rs`, `gcp`); this composes them, in a fixed order.

use std::net::IpAddr;
use std::time::Duration;

use crate::config::{ConfigError, Env, K_CONFIGURATION, K_REVISION, K_SERVICE};
use crate::gcp::{self, GOOGLE_CLOUD_PROJECT};
use crate::health;
use crate::logging::LogConfig;
use crate::server::{self, AuthConfig, ConnectionTimeouts, Limits, TlsConfig};
use crate::telemetry::TelemetryConfig;

/// Everything the runtime reads from the environment: each subsystem's configuration, read by
/// that subsystem, composed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Address to bind.
    pub host: IpAddr,
    /// Port to bind (0 picks a free one).
    pub port: u16,
    /// `K_SERVICE`, when the platform set it.
    pub k_service: Option<String>,
    /// `K_REVISION`.
    pub k_revision: Option<String>,
    /// `K_CONFIGURATION`.
    pub k_configuration: Option<String>,
    /// Log level, filter and format.
    pub log: LogConfig,
    /// `GOOGLE_CLOUD_PROJECT`.
    pub project_id: Option<String>,
    /// Metadata server base, `http://HOST` (from `GCE_METADATA_HOST`).
    pub metadata_host: String,
    /// Time allowed for in-flight work after SIGTERM.
    pub grace_period: Duration,
    /// Request and listener limits.
    pub limits: Limits,
    /// Connection lifetime.
    pub timeouts: ConnectionTimeouts,
    /// Browser origins allowed on every route (`ALLOWED_ORIGINS`).
    pub allowed_origins: Vec<String>,
    /// Result reuse time of health checks.
    pub health_check_ttl: Duration,
    /// TLS on the listener, if configured.
    pub tls: Option<TlsConfig>,
    /// Authentication of incoming requests.
    pub auth: AuthConfig,
    pub telemetry: TelemetryConfig,
}

impl RuntimeConfig {
    /// Reads and checks every runtime variable, in a fixed order (with several bad values, the
    /// first in this order is the one reported).
    pub fn from_env(env: &Env, stdout_is_terminal: bool) -> Result<Self, ConfigError> {
        let k_service = env.get(K_SERVICE).map(str::to_owned);
        let (host, port) = server::config::address(env, k_service.is_some())?;
        let log = LogConfig::from_env(env, stdout_is_terminal && k_service.is_none())?;
        let grace_period = server::config::grace_period(env)?;
        let limits = Limits::from_env(env)?;
        let timeouts = ConnectionTimeouts::from_env(env)?;
        let allowed_origins = server::config::allowed_origins(env)?;
        let tls = TlsConfig::from_env(env)?;
        Ok(Self {
            host,
            port,
            k_service,
            k_revision: env.get(K_REVISION).map(str::to_owned),
            k_configuration: env.get(K_CONFIGURATION).map(str::to_owned),
            log,
            project_id: env.get(GOOGLE_CLOUD_PROJECT).map(str::to_owned),
            metadata_host: gcp::metadata::base_url(env),
            grace_period,
            limits,
            timeouts,
            allowed_origins,
            health_check_ttl: health::config::check_ttl(env)?,
            tls,
            auth: AuthConfig::from_env(env)?,
            telemetry: TelemetryConfig::from_env(env)?,
        })
    }

    /// Whether the platform (Cloud Run or Knative) started us.
    pub fn on_platform(&self) -> bool {
        self.k_service.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::LogFormat;
    use std::time::Duration;

    fn cfg(pairs: &[(&str, &str)]) -> Result<RuntimeConfig, ConfigError> {
        RuntimeConfig::from_env(&Env::from_pairs(pairs.iter().copied()), false)
    }

    #[test]
    fn defaults_match_the_platform_contract() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.port, 8080);
        assert_eq!(c.host.to_string(), "127.0.0.1", "local runs bind loopback");
        let on_platform = cfg(&[("K_SERVICE", "svc")]).unwrap();
        assert_eq!(on_platform.host.to_string(), "0.0.0.0");
        assert_eq!(c.grace_period, Duration::from_secs(8));
        assert_eq!(c.log.format, LogFormat::Json);
        assert!(c.tls.is_none());
    }

    #[test]
    fn bad_port_names_variable_problem_and_form() {
        let e = cfg(&[("PORT", "abc")]).unwrap_err();
        let line = e.to_string();
        assert!(line.starts_with("PORT=\"abc\": invalid digit"), "{line}");
        assert!(line.ends_with("expected a port number from 0 to 65535"));
    }

    #[test]
    fn tls_needs_both_files() {
        let e = cfg(&[("TLS_CERT_FILE", "/c.pem")]).unwrap_err();
        assert_eq!(e.var, "TLS_CERT_FILE");
        let e = cfg(&[("TLS_CLIENT_CA_FILE", "/ca.pem")]).unwrap_err();
        assert_eq!(e.var, "TLS_CLIENT_CA_FILE");
    }

    #[test]
    fn rust_log_takes_target_directives_only() {
        let c = cfg(&[("RUST_LOG", "warn,aixrun=debug,h2=off")]).unwrap();
        assert_eq!(c.log.rust_log.as_deref(), Some("warn,aixrun=debug,h2=off"));
        let e = cfg(&[("RUST_LOG", "info,[request{id=1}]=debug")]).unwrap_err();
        assert_eq!(e.var, "RUST_LOG");
        assert!(e.to_string().contains("span and field filters"), "{e}");
    }

    #[test]
    fn text_logs_only_on_a_local_terminal() {
        let env = Env::from_pairs([("K_SERVICE", "x")]);
        assert_eq!(
            RuntimeConfig::from_env(&env, true).unwrap().log.format,
            LogFormat::Json
        );
        let env = Env::from_pairs::<_, &str, &str>([]);
        assert_eq!(
            RuntimeConfig::from_env(&env, true).unwrap().log.format,
            LogFormat::Text
        );
    }
}
