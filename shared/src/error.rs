//! Start-up failures: each prints as one line and maps to the process exit code.

use std::process::ExitCode;

use crate::config::ConfigError;

/// Why a function could not start (or could not keep serving).
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A configuration value is unusable: exit code 2.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The port could not be bound: exit code 1.
    #[error("cannot listen on {addr}: {source}; set PORT (and HOST) to a free address")]
    Bind {
        /// The address tried.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Anything else that stops start-up: exit code 1.
    #[error("{0}")]
    Other(String),
}

impl StartupError {
    /// 2 for configuration problems, 1 for everything else.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Config(_) => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        }
    }
}
