//! Link layout only: see `link/startup_order.rs`.

include!("../../link/startup_order.rs");

fn main() {
    link_release_binaries();
}
