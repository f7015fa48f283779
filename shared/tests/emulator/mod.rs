//! What the emulator tests share: the environment `scripts/emulators.sh` exports (a test
//! without it fails, naming the command, and never passes by skipping), ids no other test or
//! run uses, and a closed port.

#![allow(dead_code)] // each test file uses part of it

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aixrun::Env;

/// How the tests are marked and what a missing emulator says.
pub(crate) const NEEDS: &str =
    "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\"";

/// The process environment, which must name the emulators and the project.
pub(crate) fn env() -> Env {
    for var in [
        "FIRESTORE_EMULATOR_HOST",
        "PUBSUB_EMULATOR_HOST",
        "GOOGLE_CLOUD_PROJECT",
    ] {
        if std::env::var(var).map_or(true, |v| v.is_empty()) {
            panic!("{var} is unset; this test {NEEDS}");
        }
    }
    Env::from_pairs(std::env::vars())
}

/// The environment with `pairs` set over it.
pub(crate) fn env_with(pairs: &[(&str, &str)]) -> Env {
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    for (k, v) in pairs {
        vars.retain(|(name, _)| name != k);
        vars.push(((*k).to_owned(), (*v).to_owned()));
    }
    Env::from_pairs(vars)
}

/// An id no other test, here or in another run against the same emulator, uses:
/// `{prefix}-{nanoseconds}-{count}`.
pub(crate) fn unique(prefix: &str) -> String {
    static COUNT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}-{nanos}-{}", COUNT.fetch_add(1, Ordering::Relaxed))
}

/// `127.0.0.1:PORT` where nothing listens (bound, then released).
pub(crate) fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = listener.local_addr().expect("its address");
    drop(listener);
    addr.to_string()
}

/// Runs a test on the one runtime all the tests of this binary share (see the function).
pub(crate) use aixrun::outbound::one_runtime::block_on;
