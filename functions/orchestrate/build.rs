//! Link layout only: see `link/startup_order.rs`. `proto/mcp.proto`, whose client the `grpc`
//! MCP transport uses, is compiled by the `aixrun-proto` crate (as every gRPC API of the
//! workspace is: a new `.proto` goes there, with a line in its build script).

include!("../../link/startup_order.rs");

fn main() {
    link_release_binaries();
}
