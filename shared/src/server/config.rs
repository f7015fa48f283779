//! The listener's variables: where it binds, how long the drain lasts, what one request and
//! one connection may use, the browser origins allowed, and TLS.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{ConfigError, Env, positive};

/// `PORT`: the one port the function listens on (Cloud Run and Knative set it).
pub const PORT: &str = "PORT";
/// `HOST`: the address to bind. Default: all interfaces on the platform (`K_SERVICE` set),
/// loopback elsewhere, so a local run is not reachable from the network by accident.
pub const HOST: &str = "HOST";
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
/// hyper refuses a read buffer smaller than this.
const MIN_HEADER_BYTES: usize = 8192;

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

/// `PORT`, then `HOST` (all interfaces by default on the platform, loopback elsewhere).
pub fn address(env: &Env, on_platform: bool) -> Result<(IpAddr, u16), ConfigError> {
    let port = env.parse_or(PORT, DEFAULT_PORT, "a port number from 0 to 65535")?;
    let default_host = if on_platform {
        IpAddr::from([0, 0, 0, 0])
    } else {
        IpAddr::from([127, 0, 0, 1])
    };
    let host = env.parse_or(
        HOST,
        default_host,
        "an IP address such as 0.0.0.0 or 127.0.0.1",
    )?;
    Ok((host, port))
}

/// `SHUTDOWN_GRACE_PERIOD`.
pub fn grace_period(env: &Env) -> Result<Duration, ConfigError> {
    env.duration_or(SHUTDOWN_GRACE_PERIOD, DEFAULT_GRACE)
}

/// `ALLOWED_ORIGINS`.
pub fn allowed_origins(env: &Env) -> Result<Vec<String>, ConfigError> {
    crate::config::origins(env, ALLOWED_ORIGINS)
}

impl Limits {
    /// Reads and checks the size, time and connection limits.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
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
        Ok(Self {
            max_body_bytes: env.bytes_or(MAX_REQUEST_BODY_BYTES, DEFAULT_MAX_BODY)?,
            max_header_bytes,
            request_timeout: positive(env, REQUEST_TIMEOUT, DEFAULT_REQUEST_TIMEOUT)?,
            body_read_timeout: positive(env, BODY_READ_TIMEOUT, DEFAULT_BODY_READ_TIMEOUT)?,
            max_connections,
            max_grpc_message_bytes: env
                .bytes_or(MAX_GRPC_MESSAGE_BYTES, DEFAULT_MAX_GRPC_MESSAGE)?,
        })
    }
}

impl ConnectionTimeouts {
    /// Reads and checks each connection time limit.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let keepalive = env.duration_or(HTTP2_KEEPALIVE_INTERVAL, DEFAULT_H2_KEEPALIVE_INTERVAL)?;
        Ok(Self {
            first_request: positive(env, FIRST_REQUEST_TIMEOUT, DEFAULT_FIRST_REQUEST_TIMEOUT)?,
            header_read: positive(env, HEADER_READ_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT)?,
            idle: positive(env, IDLE_TIMEOUT, DEFAULT_IDLE_TIMEOUT)?,
            h2_keepalive_interval: (!keepalive.is_zero()).then_some(keepalive),
            h2_keepalive_timeout: positive(
                env,
                HTTP2_KEEPALIVE_TIMEOUT,
                DEFAULT_H2_KEEPALIVE_TIMEOUT,
            )?,
        })
    }
}

impl TlsConfig {
    /// TLS on the listener when both `TLS_CERT_FILE` and `TLS_KEY_FILE` are set, `None` when
    /// neither is; anything else is an error.
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        match (env.get(TLS_CERT_FILE), env.get(TLS_KEY_FILE)) {
            (None, None) => {
                if let Some(ca) = env.get(TLS_CLIENT_CA_FILE) {
                    return Err(ConfigError::new(
                        TLS_CLIENT_CA_FILE,
                        ca,
                        "client certificates need TLS on the listener",
                        "TLS_CERT_FILE and TLS_KEY_FILE set as well",
                    ));
                }
                Ok(None)
            }
            (Some(cert), Some(key)) => Ok(Some(Self {
                cert_file: cert.into(),
                key_file: key.into(),
                client_ca_file: env.get(TLS_CLIENT_CA_FILE).map(PathBuf::from),
            })),
            (Some(cert), None) => Err(ConfigError::new(
                TLS_CERT_FILE,
                cert,
                "set without TLS_KEY_FILE",
                "both TLS_CERT_FILE and TLS_KEY_FILE, or neither",
            )),
            (None, Some(key)) => Err(ConfigError::new(
                TLS_KEY_FILE,
                key,
                "set without TLS_CERT_FILE",
                "both TLS_CERT_FILE and TLS_KEY_FILE, or neither",
            )),
        }
    }
}
