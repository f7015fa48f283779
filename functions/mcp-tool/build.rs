//! Link layout only: see `link/startup_order.rs`. `proto/mcp.proto` is compiled by the
//! `aixrun-proto` crate.

include!("../../link/startup_order.rs");

fn main() {
    link_release_binaries();
}
