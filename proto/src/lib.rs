//! The workspace's gRPC APIs and the MCP model mcp-tool and orchestrate share.
//!
//! - One module per proto package, generated from the `.proto` files beside this crate's
//!   `Cargo.toml` (`build.rs` lists them; a new API is a file there and one line in that list):
//!   [`mcp`] holds `mcp.MCPService`'s messages, `mcp_service_client`, `mcp_service_server` and
//!   `FILE_DESCRIPTOR_SET` for reflection; [`aixrun::orchestrate::v1`] orchestrate's gRPC run
//!   API (`aixrun.orchestrate.v1.Orchestrator`).
//! - [`mcp_json`]: the conversions between `mcp.proto`'s messages and MCP's JSON shapes (values,
//!   content blocks, the seed's flat schema), with one behaviour for both ends of the wire.
//!
//! Why a crate of its own rather than a module of `aixrun` behind a feature: the functions that
//! need it (mcp-tool, orchestrate, the tests and the bench) depend on it, and `health` does not
//! even see it. As a feature of `aixrun`, every change of the feature set between two cargo
//! invocations (`cargo test -p health`, then `-p orchestrate`) would rebuild the whole runtime;
//! here the runtime and the generated code compile once each, in parallel on a two-core machine,
//! and protoc runs only when a proto changes. Binaries are the same size either way: clients,
//! servers and descriptor sets cost only where a function uses them (generic code is
//! instantiated by its user, unused statics are dropped by the linker).

include!(concat!(env!("OUT_DIR"), "/packages.rs"));

pub mod mcp_json;
