//! Run ids: 128 random bits from the system's generator (ring's, the one the binary already
//! carries for TLS), as 32 hex digits after `run-`. Unguessable, so that a run's id can be
//! the only thing a caller needs to read, cancel or resume it.

use ring::rand::{SecureRandom as _, SystemRandom};

/// A new run id.
pub fn run_id() -> String {
    let mut bytes = [0u8; 16];
    // The system generator does not fail on Linux once the kernel's pool is ready (getrandom
    // blocks until it is); should it ever, the time keeps ids unique if not secret.
    if SystemRandom::new().fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = nanos.to_le_bytes();
    }
    let mut id = String::with_capacity(36);
    id.push_str("run-");
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    id
}
