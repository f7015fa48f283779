//! The agent orchestrator function: today its validated configuration on top of the runtime;
//! the run API (`POST /v1/run`) and the engine that walks workflows come next.

pub mod config;

use std::process::ExitCode;

use aixrun::{App, Function, StartupError};

const FUNCTION: Function = Function {
    name: "orchestrate",
    version: env!("CARGO_PKG_VERSION"),
};

/// Runs orchestrate until SIGTERM.
pub fn main() -> ExitCode {
    aixrun::run(FUNCTION, |app| async move { setup(app) })
}

/// Loads the configuration: a bad one stops start-up (exit 2, one line).
pub fn setup(app: App) -> Result<App, StartupError> {
    let orchestration = config::load(app.env())?;
    tracing::debug!(
        source = orchestration.source,
        workflows = orchestration
            .workflows
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(","),
        "configuration loaded"
    );
    Ok(app)
}
