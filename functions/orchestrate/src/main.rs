//! `orchestrate`: see the README. Serves the runtime's health, metrics and gRPC endpoints.

use std::process::ExitCode;

use aixrun::Function;

const FUNCTION: Function = Function {
    name: "orchestrate",
    version: env!("CARGO_PKG_VERSION"),
};

fn main() -> ExitCode {
    aixrun::run(FUNCTION, |app| async move { Ok(app) })
}
