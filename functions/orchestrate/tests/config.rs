//! Start-up configuration errors of the real `orchestrate` binary: exit code 2 and one line on
//! stderr naming the variable, what is wrong and the accepted form.
//!
//! Having an integration test also makes `cargo test --workspace` build the binary, which the
//! end-to-end tests in `tests/` run.

use std::process::{Command, Output, Stdio};

/// Runs the binary with exactly `envs` as its environment, in a fresh empty directory (so no
/// `.env` file is read).
fn run_with(envs: &[(&str, &str)]) -> Output {
    run_in(envs, None)
}

/// Runs the binary in a fresh directory holding `dotenv` as its `.env` file, if given.
fn run_in(envs: &[(&str, &str)], dotenv: Option<&str>) -> Output {
    // One directory per call: tests run in parallel and may share variable names.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "orchestrate-config-{}-{}",
        std::process::id(),
        CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    if let Some(content) = dotenv {
        std::fs::write(dir.join(".env"), content).expect(".env");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_orchestrate"))
        .env_clear()
        .envs(envs.iter().copied())
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("run orchestrate");
    let _ = std::fs::remove_dir_all(&dir);
    out
}

fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn non_numeric_port_exits_2_with_one_line_naming_it() {
    let out = run_with(&[("PORT", "abc")]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "exactly one stderr line: {lines:?}");
    assert!(lines[0].contains(r#"PORT="abc""#), "{}", lines[0]);
    assert!(lines[0].contains("expected a port number"), "{}", lines[0]);
    assert!(out.stdout.is_empty(), "nothing on stdout: {out:?}");
}

#[test]
fn unparsable_grace_period_exits_2_naming_the_variable() {
    let out = run_with(&[("SHUTDOWN_GRACE_PERIOD", "soon")]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "exactly one stderr line: {lines:?}");
    assert!(
        lines[0].contains(r#"SHUTDOWN_GRACE_PERIOD="soon""#),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("expected a duration"), "{}", lines[0]);
}

#[test]
fn a_local_run_reads_dot_env_and_the_real_environment_wins() {
    let out = run_in(&[], Some("PORT=abc\n"));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr_lines(&out)[0].contains(r#"PORT="abc""#));
    let out = run_in(&[("PORT", "x1")], Some("PORT=abc\n"));
    assert!(stderr_lines(&out)[0].contains(r#"PORT="x1""#), "{out:?}");
}

#[test]
fn on_the_platform_dot_env_is_ignored() {
    // K_SERVICE set: the .env would fail start-up if it were read; an invalid LOG_LEVEL from
    // the real environment is what stops it instead.
    let out = run_in(
        &[("K_SERVICE", "svc"), ("LOG_LEVEL", "loud")],
        Some("PORT=abc\n"),
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let lines = stderr_lines(&out);
    assert!(lines[0].contains(r#"LOG_LEVEL="loud""#), "{lines:?}");
}

#[test]
fn a_dot_env_line_that_does_not_parse_is_named_by_number_not_quoted() {
    let out = run_in(&[], Some("LOG_LEVEL=info\nAPI_KEY sk-secret-value\n"));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "exactly one stderr line: {lines:?}");
    assert!(lines[0].contains(".env"), "{}", lines[0]);
    assert!(lines[0].contains("line 2"), "{}", lines[0]);
    assert!(
        !lines[0].contains("sk-secret"),
        "the value leaked: {}",
        lines[0]
    );
}

#[test]
fn a_bad_orchestrate_config_exits_2_with_one_line_naming_file_line_and_column() {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "orchestrate-bad-{}-{}.yaml",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let yaml = "agents:\n  - name: a\n    role: react\n    model: nowhere\n";
    std::fs::write(&path, yaml).expect("config file");
    let shown = path.display().to_string();
    let out = run_with(&[("ORCHESTRATE_CONFIG", &shown)]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "exactly one stderr line: {lines:?}");
    assert!(
        lines[0].contains(&format!(
            "{shown}:4:12: agents[0].model: unknown model \"nowhere\""
        )),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].starts_with("orchestrate: ORCHESTRATE_CONFIG="),
        "{}",
        lines[0]
    );

    let out = run_with(&[("ORCHESTRATE_CONFIG", "/nonexistent/orchestrate.yaml")]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr_lines(&out)[0].contains("cannot read it"), "{out:?}");
}
