//! Outgoing identity for MCP servers: aixrun's [`AuthProvider`]s (a fixed bearer token, or a
//! Google ID token minted for the server's audience), and its one "401: mint once, retry once"
//! rule ([`with_refresh`]) that both transports follow.

pub use aixrun::gcp::idtoken::IdTokenAuth;
pub use aixrun::outbound::{AuthProvider, StaticBearer, with_refresh};
