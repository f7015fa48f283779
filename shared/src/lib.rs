//! aixrun: the runtime every function is built on. One port serving REST, gRPC and gRPC-Web
//! over HTTP/1.1 and h2c; health, metrics, Cloud Logging logs; environment configuration;
//! graceful shutdown. A function's `main` is one call to [`run`].

pub mod app;
pub mod config;
pub mod crypto;
pub mod error;
pub mod gcp;
pub mod health;
pub mod llm;
pub mod logging;
pub mod metrics;
pub mod outbound;
pub mod probe;
pub mod process;
pub mod schema;
pub mod server;
pub mod telemetry;

use std::io::IsTerminal;
use std::process::ExitCode;

pub use app::{App, Function, RuntimeConfig};
pub use config::{ConfigError, Env};

/// mimalloc for every function: with glibc's allocator, malloc and free are a quarter of the
/// CPU time of a small request (perf, `tools/call` of `echo`). Its arena commit default is set
/// at build time in `.cargo/config.toml`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
pub use error::StartupError;

/// Runs a function: reads the environment (`.env` beneath it locally), starts logging and the
/// async runtime, resolves `sm://` secrets, lets `setup` add the function's routes and
/// services, then serves until SIGTERM. Any start-up problem is one line on stderr and a non-zero exit (2 for config).
///
/// `FUNCTION probe URL ...` instead runs one readiness check ([`probe`]) and exits: every
/// function's binary is its own container health check.
pub fn run<F, Fut>(function: Function, setup: F) -> ExitCode
where
    F: FnOnce(App) -> Fut,
    Fut: Future<Output = Result<App, StartupError>>,
{
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "probe") {
        return probe::main(function.name, &args[1..]);
    }
    crypto::install_provider();
    let result = Env::load().and_then(|env| {
        let config = RuntimeConfig::from_env(&env, std::io::stdout().is_terminal())?;
        Ok((env, config))
    });
    let (env, config) = match result {
        Ok(v) => v,
        Err(e) => return fail(function, StartupError::Config(e)),
    };
    // Tracing's provider is built now so that logging has its layer from the first line;
    // its exporter is built in phase two, once secrets (export headers may be some) resolve.
    let telemetry = telemetry::Telemetry::new(
        &config.telemetry,
        telemetry::Service {
            function: function.name,
            version: function.version,
            k_service: config.k_service.as_deref(),
            k_revision: config.k_revision.as_deref(),
        },
    );
    logging::init(
        &config.log,
        logging::Source {
            project_id: config.project_id.as_deref(),
            k_revision: config.k_revision.as_deref(),
        },
        telemetry.as_ref().map(telemetry::Telemetry::tracer),
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(function, StartupError::Other(format!("async runtime: {e}"))),
    };
    let outcome = runtime.block_on(async move {
        // Phase two, before the port opens: `sm://` values become their secrets, then the
        // span exporter starts (its headers may be secrets).
        let mut env = env;
        gcp::secrets::resolve(&mut env, &config.metadata_host).await?;
        let guard = match telemetry {
            Some(t) => Some(start_tracing(t, &env, &config).await?),
            None => None,
        };
        let app = setup(App::new(function, env, config)).await?;
        let served = app.serve().await;
        Ok::<_, StartupError>((served, guard))
    });
    let outcome = match outcome {
        Ok((served, guard)) => {
            // After the drain, while the runtime still runs the exporter: every span of the
            // requests that finished is sent before the process exits.
            if let Some(guard) = guard {
                guard.shutdown(TELEMETRY_FLUSH_TIMEOUT);
            }
            served
        }
        Err(e) => Err(e),
    };
    // In-flight work that outlived the grace period is abandoned, not awaited.
    runtime.shutdown_background();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(function, e),
    }
}

/// Phase two of tracing: the export headers (read now, their `sm://` values resolved as every
/// other secret is), the project Cloud Trace files spans under (looked up now when it is
/// needed and not configured), then the exporter.
async fn start_tracing(
    tracing: telemetry::Telemetry,
    env: &Env,
    config: &RuntimeConfig,
) -> Result<telemetry::TelemetryGuard, StartupError> {
    let headers = telemetry::headers(env)?;
    let headers = gcp::secrets::resolve_values(
        telemetry::config::OTEL_EXPORTER_OTLP_HEADERS,
        headers,
        env,
        &config.metadata_host,
    )
    .await?;
    let project = if tracing.google_auth() {
        if config.on_platform() && logging::project::get().is_none() {
            logging::project::ensure(&config.metadata_host).await;
        }
        logging::project::get().map(str::to_owned)
    } else {
        None
    };
    tracing.start(headers, project)
}

/// The longest the final span export may take after the drain (Cloud Run kills 10 s after
/// SIGTERM; the drain's grace period is 8 s by default).
const TELEMETRY_FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1500);

fn fail(function: Function, error: StartupError) -> ExitCode {
    eprintln!("{}: {error}", function.name);
    error.exit_code()
}
