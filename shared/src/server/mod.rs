//! The one-port server: REST (axum), gRPC (tonic) and gRPC-Web (tonic-web) on one listener
//! that speaks HTTP/1.1 and h2c, and what each request passes through: the access guard,
//! verification of incoming credentials, per-route and gRPC limits, reflection, TLS, the
//! connection cap and time limits, and the graceful drain. [`crate::app`] assembles them.

pub(crate) mod access;
pub mod auth;
pub mod config;
mod connection;
pub(crate) mod grpc_limits;
pub(crate) mod limits;
pub(crate) mod listener;
pub(crate) mod reflection;
pub(crate) mod shutdown;
pub(crate) mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;

use tonic::body::Body;
use tonic::server::NamedService;
use tower::Service;

pub use access::AccessPolicy;
pub use auth::{ApiKeys, AuthConfig, AuthMode, Principal};
pub use config::{ConnectionTimeouts, Limits, TlsConfig};
pub use grpc_limits::grpc_timeout;
pub use limits::{Deadline, RouteLimits};
pub use shutdown::Shutdown;

/// The client's socket address, in every request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// A tonic-generated gRPC server (what `App::grpc` accepts).
pub trait GrpcService:
    Service<
        http::Request<Body>,
        Response = http::Response<Body>,
        Error = Infallible,
        Future: Send + 'static,
    > + NamedService
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> GrpcService for S where
    S: Service<
            http::Request<Body>,
            Response = http::Response<Body>,
            Error = Infallible,
            Future: Send + 'static,
        > + NamedService
        + Clone
        + Send
        + Sync
        + 'static
{
}
