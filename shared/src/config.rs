//! Environment parsing: every variable the runtime reads is a constant here beside its default,
//! and every parse failure is one line naming the variable, what is wrong and the accepted form.
//!
//! Functions parse their own variables through the same [`Env`], so the error format and the
//! `.env` rule hold for every variable of every function.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// `PORT`: the one port the function listens on (Cloud Run and Knative set it).
pub const PORT: &str = "PORT";
/// `HOST`: the address to bind. Default: all interfaces on the platform (`K_SERVICE` set),
/// loopback elsewhere, so a local run is not reachable from the network by accident.
pub const HOST: &str = "HOST";
/// `K_SERVICE`, `K_REVISION`, `K_CONFIGURATION`: set by Cloud Run and Knative.
pub const K_SERVICE: &str = "K_SERVICE";
#[allow(missing_docs)]
pub const K_REVISION: &str = "K_REVISION";
#[allow(missing_docs)]
pub const K_CONFIGURATION: &str = "K_CONFIGURATION";
/// `LOG_LEVEL`: trace, debug, info, warn or error.
pub const LOG_LEVEL: &str = "LOG_LEVEL";
/// `RUST_LOG`: `target=level` filter directives; wins over `LOG_LEVEL` when set.
pub const RUST_LOG: &str = "RUST_LOG";
/// `LOG_FORMAT`: json (Cloud Logging) or text.
pub const LOG_FORMAT: &str = "LOG_FORMAT";
/// `GOOGLE_CLOUD_PROJECT`: the project id written into trace fields of logs.
pub const GOOGLE_CLOUD_PROJECT: &str = "GOOGLE_CLOUD_PROJECT";
/// `GCE_METADATA_HOST`: the metadata server's host[:port], as Google's client libraries read it.
pub const GCE_METADATA_HOST: &str = "GCE_METADATA_HOST";
/// `SECRET_MANAGER_ENDPOINT`: Secret Manager's base URL for `sm://` values (default
/// `https://secretmanager.googleapis.com`; Private Service Connect endpoints and tests set it).
pub const SECRET_MANAGER_ENDPOINT: &str = "SECRET_MANAGER_ENDPOINT";
/// `SECRET_TIMEOUT`: the longest the fetch of one `sm://` secret may take, retries included.
pub const SECRET_TIMEOUT: &str = "SECRET_TIMEOUT";
/// `SHUTDOWN_GRACE_PERIOD`: how long in-flight requests may run after SIGTERM.
pub const SHUTDOWN_GRACE_PERIOD: &str = "SHUTDOWN_GRACE_PERIOD";
/// `MAX_REQUEST_BODY_BYTES`: larger REST bodies get 413.
pub const MAX_REQUEST_BODY_BYTES: &str = "MAX_REQUEST_BODY_BYTES";
/// `MAX_REQUEST_HEADER_BYTES`: larger request heads get 431.
pub const MAX_REQUEST_HEADER_BYTES: &str = "MAX_REQUEST_HEADER_BYTES";
/// `REQUEST_TIMEOUT`: REST requests running longer get 504; gRPC calls that send no shorter
/// `grpc-timeout` end with DEADLINE_EXCEEDED. Keep it equal to the service's timeout.
pub const REQUEST_TIMEOUT: &str = "REQUEST_TIMEOUT";
/// `FIRST_REQUEST_TIMEOUT`: from accept to the first request's complete head (TLS handshake,
/// HTTP/2 preface included); a connection that takes longer is closed.
pub const FIRST_REQUEST_TIMEOUT: &str = "FIRST_REQUEST_TIMEOUT";
/// `HEADER_READ_TIMEOUT`: HTTP/1, from a later request's first byte to its complete head.
pub const HEADER_READ_TIMEOUT: &str = "HEADER_READ_TIMEOUT";
/// `BODY_READ_TIMEOUT`: REST, the longest pause while a request body arrives (then 408).
pub const BODY_READ_TIMEOUT: &str = "BODY_READ_TIMEOUT";
/// `IDLE_TIMEOUT`: a connection with no request in flight for this long is closed (HTTP/2:
/// GOAWAY first).
pub const IDLE_TIMEOUT: &str = "IDLE_TIMEOUT";
/// `HTTP2_KEEPALIVE_INTERVAL`: how often an HTTP/2 connection is pinged (`0` turns pings off).
pub const HTTP2_KEEPALIVE_INTERVAL: &str = "HTTP2_KEEPALIVE_INTERVAL";
/// `HTTP2_KEEPALIVE_TIMEOUT`: an unanswered ping closes the connection after this long.
pub const HTTP2_KEEPALIVE_TIMEOUT: &str = "HTTP2_KEEPALIVE_TIMEOUT";
/// `ALLOWED_ORIGINS`: comma-separated browser origins allowed to call any route (CORS too).
pub const ALLOWED_ORIGINS: &str = "ALLOWED_ORIGINS";
/// `MAX_CONNECTIONS`: connections beyond this get 503 and are closed.
pub const MAX_CONNECTIONS: &str = "MAX_CONNECTIONS";
/// `MAX_GRPC_MESSAGE_BYTES`: larger gRPC messages get RESOURCE_EXHAUSTED.
pub const MAX_GRPC_MESSAGE_BYTES: &str = "MAX_GRPC_MESSAGE_BYTES";
/// `HEALTH_CHECK_TTL`: how long a health check's result is reused.
pub const HEALTH_CHECK_TTL: &str = "HEALTH_CHECK_TTL";
/// `TLS_CERT_FILE`, `TLS_KEY_FILE`: PEM files; both set turns TLS on for the listener.
pub const TLS_CERT_FILE: &str = "TLS_CERT_FILE";
#[allow(missing_docs)]
pub const TLS_KEY_FILE: &str = "TLS_KEY_FILE";
/// `TLS_CLIENT_CA_FILE`: PEM bundle; set, clients must present a certificate it signed (mTLS).
pub const TLS_CLIENT_CA_FILE: &str = "TLS_CLIENT_CA_FILE";

const DEFAULT_PORT: u16 = 8080;
const DEFAULT_GRACE: Duration = Duration::from_secs(8);
const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;
const DEFAULT_MAX_HEADER: usize = 16 * 1024;
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Cloud Run's and Knative's proxies connect and send at once; 10 s is ample on a loaded node.
const DEFAULT_FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Longer than the front ends keep idle connections (Google's load balancers 600 s, Go's
/// transport in Knative's queue-proxy 90 s), so the proxy, never we, closes an idle connection:
/// a server-side close races with the proxy's next request on it.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(620);
const DEFAULT_H2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_H2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
const DEFAULT_MAX_GRPC_MESSAGE: usize = 4 * 1024 * 1024;
const DEFAULT_HEALTH_TTL: Duration = Duration::from_secs(5);
/// hyper refuses a read buffer smaller than this.
const MIN_HEADER_BYTES: usize = 8192;

/// A variable with a value that can't be used: printed as one line, then the process exits 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}={value:?}: {problem}; expected {expected}")]
pub struct ConfigError {
    /// The variable's name.
    pub var: String,
    /// The value as given (never printed for variables that hold secrets).
    pub value: String,
    /// What is wrong with it.
    pub problem: String,
    /// The accepted form.
    pub expected: String,
}

impl ConfigError {
    /// An error for `var` holding `value`.
    pub fn new(
        var: &str,
        value: &str,
        problem: impl Into<String>,
        expected: impl Into<String>,
    ) -> Self {
        Self {
            var: var.to_owned(),
            value: value.to_owned(),
            problem: problem.into(),
            expected: expected.into(),
        }
    }
}

/// The variables a function sees: the process environment over, in a local run (no
/// `K_SERVICE`), a `.env` file in the working directory, with `sm://` values replaced by their
/// secrets at start-up. Never mutates the process environment. `Debug` lists names only: values
/// may be keys and secrets.
#[derive(Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.vars.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("Env").field("names", &names).finish()
    }
}

impl Env {
    /// The process environment, with `.env` beneath it when running locally.
    pub fn load() -> Result<Self, ConfigError> {
        let mut vars: HashMap<String, String> = std::env::vars().collect();
        if !vars.contains_key(K_SERVICE) {
            let path = PathBuf::from(".env");
            if path.is_file() {
                let iter = dotenvy::from_path_iter(&path).map_err(|e| dotenv_error(&e, &path))?;
                for item in iter {
                    let (key, value) = item.map_err(|e| dotenv_error(&e, &path))?;
                    vars.entry(key).or_insert(value);
                }
            }
        }
        Ok(Self { vars })
    }

    /// An environment made of exactly these pairs (tests).
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Every variable, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Sets `var` (start-up only: secrets resolved into the environment).
    pub(crate) fn set(&mut self, var: &str, value: String) {
        self.vars.insert(var.to_owned(), value);
    }

    /// The raw value, treating an empty string as unset.
    pub fn get(&self, var: &str) -> Option<&str> {
        self.vars
            .get(var)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The first of `vars` that is set.
    pub fn first_of<'a>(&'a self, vars: &[&'static str]) -> Option<(&'static str, &'a str)> {
        vars.iter()
            .find_map(|&name| self.get(name).map(|v| (name, v)))
    }

    /// A value parsed by `FromStr`, or `default` when unset.
    pub fn parse_or<T: FromStr>(
        &self,
        var: &str,
        default: T,
        expected: &str,
    ) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|e: T::Err| ConfigError::new(var, raw, e.to_string(), expected)),
        }
    }

    /// A duration such as `8s`, `500ms`, `2m` or a bare number of seconds; `default` when unset.
    pub fn duration_or(&self, var: &str, default: Duration) -> Result<Duration, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => parse_duration(raw).map_err(|problem| {
                ConfigError::new(
                    var,
                    raw,
                    problem,
                    "a duration such as 8s, 500ms or 2m (a bare number means seconds)",
                )
            }),
        }
    }

    /// A byte size such as `4MiB`, `16KiB`, `1048576`; `default` when unset.
    pub fn bytes_or(&self, var: &str, default: usize) -> Result<usize, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => parse_bytes(raw).map_err(|problem| {
                ConfigError::new(
                    var,
                    raw,
                    problem,
                    "a size in bytes such as 1048576, 64KiB or 4MiB",
                )
            }),
        }
    }

    /// `true`/`false` (also 1/0, yes/no, on/off); `default` when unset.
    pub fn bool_or(&self, var: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) => match v.as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::new(
                    var,
                    self.get(var).unwrap_or_default(),
                    "not a boolean",
                    "true or false",
                )),
            },
        }
    }
}

/// A `.env` problem without the offending text: the line may hold a secret.
fn dotenv_error(e: &dotenvy::Error, path: &std::path::Path) -> ConfigError {
    let problem = match e {
        dotenvy::Error::LineParse(line, at) => {
            let number = std::fs::read_to_string(path).ok().and_then(|text| {
                text.lines()
                    .position(|l| l.contains(line.trim_end()))
                    .map(|i| i + 1)
            });
            match number {
                Some(n) => format!("line {n} does not parse (at character {})", at + 1),
                None => format!("a line does not parse (at character {})", at + 1),
            }
        }
        dotenvy::Error::Io(io) => format!("cannot read it: {io}"),
        _ => "does not parse".to_owned(),
    };
    ConfigError::new(".env", "", problem, "KEY=value lines (or remove .env)")
}

/// A duration that must not be zero (a zero timeout would refuse everything).
fn positive(env: &Env, var: &str, default: Duration) -> Result<Duration, ConfigError> {
    let d = env.duration_or(var, default)?;
    if d.is_zero() {
        return Err(ConfigError::new(
            var,
            env.get(var).unwrap_or_default(),
            "must be more than zero",
            "a duration such as 8s, 500ms or 2m",
        ));
    }
    Ok(d)
}

/// A comma-separated list of browser origins (`scheme://host[:port]`, `*` for any port).
pub fn origins(env: &Env, var: &str) -> Result<Vec<String>, ConfigError> {
    let Some(raw) = env.get(var) else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| {
            let o = o.trim_end_matches('/');
            let valid = (o.starts_with("http://") || o.starts_with("https://"))
                && !o["https://".len().min(o.len())..].contains('/');
            if valid {
                Ok(o.to_owned())
            } else {
                Err(ConfigError::new(
                    var,
                    raw,
                    format!("{o:?} is not an origin"),
                    "comma-separated origins such as https://app.example.com,http://localhost:*",
                ))
            }
        })
        .collect()
}

/// Parses `8s`, `500ms`, `2m`, `1h`, `1.5s` or a bare number of seconds.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let s = raw.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} does not start with a number"))?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown unit {other:?}")),
    };
    let secs = n * scale;
    if !secs.is_finite() || !(0.0..=86_400.0 * 365.0).contains(&secs) {
        return Err("out of range".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_bytes(raw: &str) -> Result<usize, String> {
    let s = raw.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num.parse().map_err(|_| "not a whole number".to_string())?;
    let scale: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" | "kb" => 1024,
        "mib" | "m" | "mb" => 1024 * 1024,
        "gib" | "g" | "gb" => 1024 * 1024 * 1024,
        other => return Err(format!("unknown unit {other:?}")),
    };
    n.checked_mul(scale).ok_or_else(|| "too large".to_string())
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One Cloud Logging JSON object per line.
    Json,
    /// Human-readable lines for a terminal.
    Text,
}

/// Files that turn TLS on for the listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
    /// PEM bundle of CAs whose client certificates are accepted (mutual TLS).
    pub client_ca_file: Option<PathBuf>,
}

/// Limits on what one request or the whole listener may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest REST request body.
    pub max_body_bytes: usize,
    /// Largest request head (request line plus headers).
    pub max_header_bytes: usize,
    /// Longest a REST request or a gRPC call may run.
    pub request_timeout: Duration,
    /// Longest pause while a REST request body arrives.
    pub body_read_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Largest gRPC message, either way.
    pub max_grpc_message_bytes: usize,
}

/// How long a connection may stay open doing what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionTimeouts {
    /// Accept to the first request's head.
    pub first_request: Duration,
    /// HTTP/1: a later request's first byte to its complete head.
    pub header_read: Duration,
    /// No request in flight for this long closes the connection.
    pub idle: Duration,
    /// HTTP/2 ping interval (`None`: no pings).
    pub h2_keepalive_interval: Option<Duration>,
    /// HTTP/2: how long a ping may go unanswered.
    pub h2_keepalive_timeout: Duration,
}

/// Everything the runtime reads from the environment.
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
    /// Default level for our own log lines.
    pub log_level: String,
    /// `RUST_LOG` directives, if any.
    pub rust_log: Option<String>,
    /// Log line format.
    pub log_format: LogFormat,
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
    pub auth: crate::server::AuthConfig,
    pub telemetry: crate::telemetry::TelemetryConfig,
}

impl RuntimeConfig {
    /// Reads and checks every runtime variable.
    pub fn from_env(env: &Env, stdout_is_terminal: bool) -> Result<Self, ConfigError> {
        let port = env.parse_or(PORT, DEFAULT_PORT, "a port number from 0 to 65535")?;
        let k_service = env.get(K_SERVICE).map(str::to_owned);
        let default_host = if k_service.is_some() {
            IpAddr::from([0, 0, 0, 0])
        } else {
            IpAddr::from([127, 0, 0, 1])
        };
        let host = env.parse_or(
            HOST,
            default_host,
            "an IP address such as 0.0.0.0 or 127.0.0.1",
        )?;
        let log_level = match env.get(LOG_LEVEL) {
            None => "info".to_owned(),
            Some(raw) => {
                let level = raw.trim().to_ascii_lowercase();
                let level = if level == "warning" {
                    "warn".to_owned()
                } else {
                    level
                };
                if !["trace", "debug", "info", "warn", "error", "off"].contains(&level.as_str()) {
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
        let log_format = match env.get(LOG_FORMAT).map(|v| v.trim().to_ascii_lowercase()) {
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
            None if stdout_is_terminal && k_service.is_none() => LogFormat::Text,
            None => LogFormat::Json,
        };
        let grace_period = env.duration_or(SHUTDOWN_GRACE_PERIOD, DEFAULT_GRACE)?;
        let max_header_bytes = env.bytes_or(MAX_REQUEST_HEADER_BYTES, DEFAULT_MAX_HEADER)?;
        if max_header_bytes < MIN_HEADER_BYTES {
            return Err(ConfigError::new(
                MAX_REQUEST_HEADER_BYTES,
                env.get(MAX_REQUEST_HEADER_BYTES).unwrap_or_default(),
                "below the HTTP/1 parser's minimum",
                "at least 8KiB",
            ));
        }
        let max_connections = env.parse_or(
            MAX_CONNECTIONS,
            DEFAULT_MAX_CONNECTIONS,
            "a whole number of connections, at least 1",
        )?;
        if max_connections == 0 {
            return Err(ConfigError::new(
                MAX_CONNECTIONS,
                "0",
                "would refuse every connection",
                "a whole number of connections, at least 1",
            ));
        }
        let limits = Limits {
            max_body_bytes: env.bytes_or(MAX_REQUEST_BODY_BYTES, DEFAULT_MAX_BODY)?,
            max_header_bytes,
            request_timeout: positive(env, REQUEST_TIMEOUT, DEFAULT_REQUEST_TIMEOUT)?,
            body_read_timeout: positive(env, BODY_READ_TIMEOUT, DEFAULT_BODY_READ_TIMEOUT)?,
            max_connections,
            max_grpc_message_bytes: env
                .bytes_or(MAX_GRPC_MESSAGE_BYTES, DEFAULT_MAX_GRPC_MESSAGE)?,
        };
        let keepalive = env.duration_or(HTTP2_KEEPALIVE_INTERVAL, DEFAULT_H2_KEEPALIVE_INTERVAL)?;
        let timeouts = ConnectionTimeouts {
            first_request: positive(env, FIRST_REQUEST_TIMEOUT, DEFAULT_FIRST_REQUEST_TIMEOUT)?,
            header_read: positive(env, HEADER_READ_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT)?,
            idle: positive(env, IDLE_TIMEOUT, DEFAULT_IDLE_TIMEOUT)?,
            h2_keepalive_interval: (!keepalive.is_zero()).then_some(keepalive),
            h2_keepalive_timeout: positive(
                env,
                HTTP2_KEEPALIVE_TIMEOUT,
                DEFAULT_H2_KEEPALIVE_TIMEOUT,
            )?,
        };
        let allowed_origins = origins(env, ALLOWED_ORIGINS)?;
        let tls = match (env.get(TLS_CERT_FILE), env.get(TLS_KEY_FILE)) {
            (None, None) => {
                if let Some(ca) = env.get(TLS_CLIENT_CA_FILE) {
                    return Err(ConfigError::new(
                        TLS_CLIENT_CA_FILE,
                        ca,
                        "client certificates need TLS on the listener",
                        "TLS_CERT_FILE and TLS_KEY_FILE set as well",
                    ));
                }
                None
            }
            (Some(cert), Some(key)) => Some(TlsConfig {
                cert_file: cert.into(),
                key_file: key.into(),
                client_ca_file: env.get(TLS_CLIENT_CA_FILE).map(PathBuf::from),
            }),
            (Some(cert), None) => {
                return Err(ConfigError::new(
                    TLS_CERT_FILE,
                    cert,
                    "set without TLS_KEY_FILE",
                    "both TLS_CERT_FILE and TLS_KEY_FILE, or neither",
                ));
            }
            (None, Some(key)) => {
                return Err(ConfigError::new(
                    TLS_KEY_FILE,
                    key,
                    "set without TLS_CERT_FILE",
                    "both TLS_CERT_FILE and TLS_KEY_FILE, or neither",
                ));
            }
        };
        let metadata_host = env
            .get(GCE_METADATA_HOST)
            .unwrap_or("metadata.google.internal");
        Ok(Self {
            host,
            port,
            k_service,
            k_revision: env.get(K_REVISION).map(str::to_owned),
            k_configuration: env.get(K_CONFIGURATION).map(str::to_owned),
            log_level,
            rust_log,
            log_format,
            project_id: env.get(GOOGLE_CLOUD_PROJECT).map(str::to_owned),
            metadata_host: format!("http://{metadata_host}"),
            grace_period,
            limits,
            timeouts,
            allowed_origins,
            health_check_ttl: env.duration_or(HEALTH_CHECK_TTL, DEFAULT_HEALTH_TTL)?,
            tls,
            auth: crate::server::AuthConfig::from_env(env)?,
            telemetry: crate::telemetry::TelemetryConfig::from_env(env)?,
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
        assert_eq!(c.log_format, LogFormat::Json);
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
    fn durations_and_sizes_parse() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_bytes("64KiB").unwrap(), 65536);
        assert!(parse_bytes("-1").is_err());
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
        assert_eq!(c.rust_log.as_deref(), Some("warn,aixrun=debug,h2=off"));
        let e = cfg(&[("RUST_LOG", "info,[request{id=1}]=debug")]).unwrap_err();
        assert_eq!(e.var, "RUST_LOG");
        assert!(e.to_string().contains("span and field filters"), "{e}");
    }

    #[test]
    fn text_logs_only_on_a_local_terminal() {
        let env = Env::from_pairs([("K_SERVICE", "x")]);
        assert_eq!(
            RuntimeConfig::from_env(&env, true).unwrap().log_format,
            LogFormat::Json
        );
        let env = Env::from_pairs::<_, &str, &str>([]);
        assert_eq!(
            RuntimeConfig::from_env(&env, true).unwrap().log_format,
            LogFormat::Text
        );
    }
}
