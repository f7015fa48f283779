//! The log variables: `LOG_LEVEL`, `RUST_LOG` and `LOG_FORMAT`.

use crate::config::{ConfigError, Env};

/// `LOG_LEVEL`: trace, debug, info, warn or error.
pub const LOG_LEVEL: &str = "LOG_LEVEL";
/// `RUST_LOG`: `target=level` filter directives; wins over `LOG_LEVEL` when set.
pub const RUST_LOG: &str = "RUST_LOG";
/// `LOG_FORMAT`: json (Cloud Logging) or text.
pub const LOG_FORMAT: &str = "LOG_FORMAT";

/// Levels `LOG_LEVEL` accepts (`warning` is read as `warn`), from most to least verbose.
pub(super) const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One Cloud Logging JSON object per line.
    Json,
    /// Human-readable lines for a terminal.
    Text,
}

/// What is logged and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Default level for our own log lines.
    pub level: String,
    /// `RUST_LOG` directives, if any.
    pub rust_log: Option<String>,
    /// Log line format.
    pub format: LogFormat,
}

impl LogConfig {
    /// Reads and checks the log variables; without `LOG_FORMAT`, lines are text when
    /// `local_terminal` (stdout is a terminal and the platform did not start us), else JSON.
    pub fn from_env(env: &Env, local_terminal: bool) -> Result<Self, ConfigError> {
        let level = match env.get(LOG_LEVEL) {
            None => "info".to_owned(),
            Some(raw) => {
                let level = raw.trim().to_ascii_lowercase();
                let level = if level == "warning" {
                    "warn".to_owned()
                } else {
                    level
                };
                if !LEVELS.contains(&level.as_str()) {
                    return Err(ConfigError::new(
                        LOG_LEVEL,
                        raw,
                        "unknown level",
                        "one of trace, debug, info, warn, error, off",
                    ));
                }
                level
            }
        };
        let rust_log = env.get(RUST_LOG).map(str::to_owned);
        if let Some(raw) = &rust_log {
            raw.parse::<tracing_subscriber::filter::Targets>()
                .map_err(|e| {
                    ConfigError::new(
                        RUST_LOG,
                        raw,
                        e.to_string(),
                        "comma-separated target=level directives such as info,aixrun=debug \
                         (span and field filters are not supported)",
                    )
                })?;
        }
        let format = match env.get(LOG_FORMAT).map(|v| v.trim().to_ascii_lowercase()) {
            Some(v) if v == "json" => LogFormat::Json,
            Some(v) if v == "text" => LogFormat::Text,
            Some(_) => {
                return Err(ConfigError::new(
                    LOG_FORMAT,
                    env.get(LOG_FORMAT).unwrap_or_default(),
                    "unknown format",
                    "json or text",
                ));
            }
            None if local_terminal => LogFormat::Text,
            None => LogFormat::Json,
        };
        Ok(Self {
            level,
            rust_log,
            format,
        })
    }
}
