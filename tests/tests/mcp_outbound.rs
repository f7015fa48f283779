//! mcp-tool's outbound calls end to end: while an upstream streams a 300 MiB answer, the tool
//! call ends with a clear `isError` result and the process's memory does not grow by more than
//! the tool's response cap plus slack.

use e2e::mcp::{Era, call, config_file, only_text};
use e2e::upstream::Upstream;
use e2e::{TempDir, TestApp};
use serde_json::json;

const MIB: u64 = 1024 * 1024;
/// What the upstream would send if nobody stopped reading.
const HUGE_BYTES: usize = 300 * 1024 * 1024;
/// get_weather's response cap (`MAX_RESPONSE_BYTES` in its module).
const WEATHER_CAP: u64 = MIB;
/// Allocator arenas, socket buffers and the runtime's own growth on a first call.
const SLACK: u64 = 32 * MIB;

/// `VmRSS` or `VmHWM` (peak resident set) of `pid`, in bytes, from `/proc/<pid>/status`.
fn memory(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unreadable line {line:?}"));
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_300_mib_upstream_answer_is_cut_off_and_memory_stays_bounded() {
    let upstream = Upstream::huge(HUGE_BYTES);
    let dir = TempDir::new();
    let yaml = format!(
        "tools:\n  weather:\n    geocoding_url: {base}\n    forecast_url: {base}\n    \
         timeout_secs: 20\n",
        base = upstream.base()
    );
    let path = config_file(&dir, &yaml);
    let app = TestApp::spawn("mcp-tool", &[("MCP_TOOL_CONFIG", &path)]);
    let client = Era::Legacy.connect(&app).await;
    // Warm up the MCP path first, so that the baseline holds its buffers.
    let echo = call(&client, "echo", json!({"text": "warm"}))
        .await
        .unwrap();
    assert_eq!(only_text(&echo), "warm");
    let baseline = memory(app.pid(), "VmRSS");

    let result = call(&client, "get_weather", json!({"location": "Berlin"}))
        .await
        .unwrap();
    assert_eq!(result["isError"], true, "{result}");
    let text = only_text(&result);
    let host = upstream.addr.to_string();
    assert_eq!(
        text,
        format!(
            "Open-Meteo sent an answer far larger than a weather report (response from {host} \
             exceeded 1 MiB); try again later"
        )
    );

    let peak = memory(app.pid(), "VmHWM");
    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "mcp-tool RSS before {} KiB, peak after {} KiB, growth {} KiB; upstream sent {} KiB",
        baseline / 1024,
        peak / 1024,
        growth / 1024,
        upstream.sent() / 1024
    );
    assert!(
        growth <= WEATHER_CAP + SLACK,
        "peak RSS grew by {growth} bytes (cap {WEATHER_CAP} + slack {SLACK})"
    );
    assert!(upstream.sent() < HUGE_BYTES / 4, "the tool stopped reading");
    let _ = client.cancel().await;
}
