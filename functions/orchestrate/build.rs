//! Compiles the client half of `proto/mcp.proto` for the `grpc` MCP transport. orchestrate
//! compiles its own copy instead of linking mcp-tool for `mcp_tool::pb`, so that a build
//! without the `local-tools` feature does not pull in mcp-tool (its tools, their HTTP clients
//! and schema validator). protoc comes from `protoc-bin-vendored` unless `PROTOC` is set.

use std::path::PathBuf;

include!("../../link/startup_order.rs");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    link_release_binaries();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let proto = root.join("mcp.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    println!("cargo:rerun-if-env-changed=PROTOC");
    let mut config = tonic_prost_build::Config::new();
    if std::env::var_os("PROTOC").is_none() {
        config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    }
    tonic_prost_build::configure()
        .build_server(false)
        .compile_with_config(config, &[proto], &[root])?;
    Ok(())
}
