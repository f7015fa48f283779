//! The seed's `GET /health` format, field for field.

use serde_json::Value;

use super::formats::{is_go_seconds_duration, is_rfc3339};

/// Asserts `body` has the seed's fields with the seed's types: `status` (healthy, degraded
/// or unhealthy), `timestamp` (RFC 3339), `version`, `uptime` (`1h30m0s` style), `checks`
/// (each with `status`, `message`, `last_checked`) and `system` (whole numbers, at least
/// one CPU). Extra fields are allowed.
pub fn assert_health_format(body: &Value) {
    let status = body["status"]
        .as_str()
        .unwrap_or_else(|| panic!("status: {body}"));
    assert!(
        ["healthy", "degraded", "unhealthy"].contains(&status),
        "status {status:?}"
    );
    let timestamp = body["timestamp"]
        .as_str()
        .unwrap_or_else(|| panic!("timestamp: {body}"));
    assert!(
        is_rfc3339(timestamp),
        "timestamp {timestamp:?} is not RFC 3339"
    );
    let version = body["version"]
        .as_str()
        .unwrap_or_else(|| panic!("version: {body}"));
    assert!(!version.is_empty(), "empty version");
    let uptime = body["uptime"]
        .as_str()
        .unwrap_or_else(|| panic!("uptime: {body}"));
    assert!(
        is_go_seconds_duration(uptime),
        "uptime {uptime:?} does not match ^(\\d+h)?(\\d+m)?\\d+s$"
    );
    let checks = body["checks"]
        .as_object()
        .unwrap_or_else(|| panic!("checks is not an object: {body}"));
    for (name, check) in checks {
        let s = check["status"].as_str().unwrap_or_default();
        assert!(
            ["healthy", "unhealthy"].contains(&s),
            "check {name}: status {s:?}"
        );
        assert!(
            check["message"].is_string(),
            "check {name}: message {check}"
        );
        let last = check["last_checked"].as_str().unwrap_or_default();
        assert!(is_rfc3339(last), "check {name}: last_checked {last:?}");
    }
    let system = &body["system"];
    for field in ["num_goroutines", "num_cpu", "mem_alloc_mb", "mem_sys_mb"] {
        assert!(
            system[field].is_u64(),
            "system.{field} is not a whole number >= 0: {system}"
        );
    }
    assert!(system["num_cpu"].as_u64() >= Some(1), "num_cpu: {system}");
}
