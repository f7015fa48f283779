//! Start-up configuration errors of the real `mcp-tool` binary: exit code 2 and one line on
//! stderr naming the variable.
//!
//! Having an integration test also makes `cargo test --workspace` build the binary, which the
//! end-to-end tests in `tests/` run.

use std::process::{Command, Output, Stdio};

/// Runs the binary with exactly `envs` as its environment, in a fresh empty directory (so no
/// `.env` file is read).
fn run_with(envs: &[(&str, &str)]) -> Output {
    let dir = std::env::temp_dir().join(format!(
        "mcp-tool-config-{}-{}",
        std::process::id(),
        envs.iter().map(|(k, _)| *k).collect::<Vec<_>>().join("-")
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_mcp-tool"))
        .env_clear()
        .envs(envs.iter().copied())
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("run mcp-tool");
    let _ = std::fs::remove_dir_all(&dir);
    out
}

fn one_stderr_line(out: &Output) -> String {
    let lines: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 1, "exactly one stderr line: {lines:?}");
    lines[0].clone()
}

#[test]
fn zero_max_connections_exits_2_with_one_line() {
    let out = run_with(&[("MAX_CONNECTIONS", "0")]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let line = one_stderr_line(&out);
    assert!(line.contains(r#"MAX_CONNECTIONS="0""#), "{line}");
    assert!(line.contains("at least 1"), "{line}");
}

#[test]
fn tls_cert_without_key_exits_2_naming_tls_cert_file() {
    let out = run_with(&[("TLS_CERT_FILE", "/nonexistent")]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let line = one_stderr_line(&out);
    assert!(line.contains("TLS_CERT_FILE"), "{line}");
    assert!(
        line.contains("TLS_KEY_FILE"),
        "says what is missing: {line}"
    );
}
