//! Compiles `proto/mcp.proto` into the gRPC server and client, plus the encoded descriptor set
//! that server reflection serves. protoc comes from `protoc-bin-vendored` unless `PROTOC` is set,
//! so a fresh machine needs nothing installed.

use std::path::PathBuf;

include!("../../link/startup_order.rs");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    link_release_binaries();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let proto = root.join("mcp.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    println!("cargo:rerun-if-env-changed=PROTOC");
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = tonic_prost_build::Config::new();
    if std::env::var_os("PROTOC").is_none() {
        config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    }
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("mcp_descriptor.bin"))
        .compile_with_config(config, &[proto], &[root])?;
    Ok(())
}
