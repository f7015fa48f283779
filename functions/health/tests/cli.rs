//! The `health` command line: usage errors exit 2, a failed probe exits 1 with one `fail` line.
//!
//! Having an integration test also makes `cargo test --workspace` build the binary, which the
//! end-to-end tests in `tests/` run.

use std::process::{Command, Output, Stdio};

/// Runs `health args` with an empty environment in a fresh empty directory (so no `.env` file
/// is read).
fn health(args: &[&str]) -> Output {
    let dir = std::env::temp_dir().join(format!(
        "health-cli-{}-{}",
        std::process::id(),
        args.join("_").replace(['/', ':'], "_")
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_health"))
        .args(args)
        .env_clear()
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("run health");
    let _ = std::fs::remove_dir_all(&dir);
    out
}

#[test]
fn probe_without_url_is_a_usage_error() {
    let out = health(&["probe"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing URL"), "{stderr}");
    assert!(stderr.contains("usage:"), "{stderr}");
}

#[test]
fn unknown_command_is_a_usage_error() {
    let out = health(&["bogus"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bogus"), "{stderr}");
}

#[test]
fn probe_of_a_closed_port_fails_with_one_line() {
    // Port 1 on loopback: nothing listens there.
    let out = health(&["probe", "http://127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one stdout line: {lines:?}");
    assert!(lines[0].starts_with("fail "), "{}", lines[0]);
}
