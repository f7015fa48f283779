//! Generated code for `proto/mcp.proto` (package `mcp`).
#![allow(missing_docs, unreachable_pub, clippy::all)]

tonic::include_proto!("mcp");

/// The encoded descriptor set, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("mcp_descriptor");
