// Included by every function's build.rs (`include!`): links the package's release binaries with
// identical code folding and with the target's start-up order (`link/startup.order` on gnu,
// `link/startup.musl.order` on musl: symbol hashes differ between targets), so that the
// functions that run before the port opens sit together at the start of .text. Measured on
// orchestrate: idle RSS 8.8 -> 6.0 MiB (start-up touched 80 of the 160 64 KiB windows of .text
// that the kernel maps per page fault, now a handful) and fewer page faults before the port
// opens. Only release builds for x86_64 Linux, linked by rust-lld (gnu's default since Rust
// 1.90, musl's through link/musl-cc); names that the build no longer has are ignored.

/// Emits the release link arguments for the package's binaries: ICF, and the start-up order.
fn link_release_binaries() {
    let target = std::env::var("TARGET").unwrap_or_default();
    let order = match target.as_str() {
        "x86_64-unknown-linux-gnu" => Some("startup.order"),
        "x86_64-unknown-linux-musl" => Some("startup.musl.order"),
        _ => None,
    }
    .map(|file| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../link")
            .join(file)
    });
    if let Some(order) = &order {
        println!("cargo:rerun-if-changed={}", order.display());
    }
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    // Identical code folding: functions (and relocation-free read-only constants) with the same
    // bytes are kept once (orchestrate: -0.09 MiB). Sound for Rust, which promises no distinct
    // addresses for functions; lld leaves writable data (statics with interior mutability,
    // vtables, anything relocated) alone. `--icf=safe` folds nothing here: rustc's objects
    // carry no address-significance tables.
    if release && target.starts_with("x86_64-unknown-linux-") {
        println!("cargo:rustc-link-arg-bins=-Wl,--icf=all");
    }
    if let Some(order) = order.filter(|order| release && order.exists()) {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
