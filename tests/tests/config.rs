//! Start-up configuration errors: exit code 2 and one clear line on stderr, before anything
//! is bound or logged.

use std::time::Duration;

use e2e::run;

const TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `name` with exactly `envs`, asserting exit code 2, nothing on stdout and exactly one
/// stderr line, which it returns.
fn config_error(name: &str, args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = run(name, args, envs, TIMEOUT);
    assert_eq!(out.status.code(), Some(2), "{name} {envs:?}: {out:?}");
    assert!(out.stdout.is_empty(), "nothing on stdout: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one stderr line: {lines:?}");
    lines[0].to_owned()
}

#[test]
fn mcp_tool_with_a_non_numeric_port_exits_2_with_one_line() {
    let line = config_error("mcp-tool", &[], &[("PORT", "abc")]);
    assert!(line.starts_with("mcp-tool: "), "names the function: {line}");
    assert!(line.contains(r#"PORT="abc""#), "{line}");
    assert!(line.contains("expected a port number"), "{line}");
}

#[test]
fn orchestrate_with_a_non_numeric_port_exits_2_with_one_line() {
    let line = config_error("orchestrate", &[], &[("PORT", "abc")]);
    assert!(line.contains(r#"PORT="abc""#), "{line}");
    assert!(line.contains("expected a port number"), "{line}");
}

#[test]
fn health_with_a_malformed_target_list_exits_2_with_one_line() {
    let line = config_error("health", &["serve"], &[("HEALTH_TARGETS", "nourl")]);
    assert!(line.contains("HEALTH_TARGETS"), "{line}");
    assert!(line.contains("expected name=url pairs"), "{line}");
}

#[test]
fn header_limit_below_the_parser_minimum_exits_2_with_one_line() {
    let line = config_error("orchestrate", &[], &[("MAX_REQUEST_HEADER_BYTES", "1KiB")]);
    assert!(line.contains("MAX_REQUEST_HEADER_BYTES"), "{line}");
    assert!(line.contains("at least 8KiB"), "{line}");
}
