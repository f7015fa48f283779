//! Facts about this process read from `/proc` on demand (health's `system` block and the
//! process metrics); nothing is sampled in the background.

use std::fs;

/// Resident memory figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// Resident set size (`VmRSS`).
    pub rss_bytes: u64,
    /// Resident anonymous memory (`RssAnon`): heap and stacks, the analogue of Go's `Alloc`.
    pub anon_bytes: u64,
    /// Virtual memory size (`VmSize`).
    pub virtual_bytes: u64,
}

/// Reads `/proc/self/status`; zeros where unavailable (non-Linux).
pub fn memory() -> Memory {
    let Ok(status) = fs::read_to_string("/proc/self/status") else {
        return Memory::default();
    };
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .map_or(0, |n| n * 1024)
    };
    Memory {
        rss_bytes: kib("VmRSS:"),
        anon_bytes: kib("RssAnon:"),
        virtual_bytes: kib("VmSize:"),
    }
}

/// Tasks alive on the current tokio runtime (the seed's `num_goroutines`); 0 outside one.
pub fn live_tasks() -> usize {
    tokio::runtime::Handle::try_current().map_or(0, |h| h.metrics().num_alive_tasks())
}

/// CPUs this process may use.
pub fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// CPU time and start time from `/proc/self/stat`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Times {
    /// User plus system CPU seconds.
    pub cpu_seconds: f64,
    /// Process start as seconds since the Unix epoch.
    pub start_time_seconds: f64,
}

/// Clock ticks per second; Linux fixes USER_HZ at 100 for /proc on every architecture we run on.
const TICKS_PER_SECOND: f64 = 100.0;

/// Reads CPU and start times; zeros where unavailable.
pub fn times() -> Times {
    let (Ok(stat), Ok(uptime), Ok(now)) = (
        fs::read_to_string("/proc/self/stat"),
        fs::read_to_string("/proc/uptime"),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH),
    ) else {
        return Times::default();
    };
    // Fields after the parenthesised command name, which may itself contain spaces.
    let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return Times::default();
    };
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| -> f64 { fields.get(n).and_then(|v| v.parse().ok()).unwrap_or(0.0) };
    // utime, stime and starttime are fields 14, 15 and 22 of stat; `after` starts at field 3.
    let cpu_seconds = (field(11) + field(12)) / TICKS_PER_SECOND;
    let started_after_boot = field(19) / TICKS_PER_SECOND;
    let system_uptime: f64 = uptime
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let boot = now.as_secs_f64() - system_uptime;
    Times {
        cpu_seconds,
        start_time_seconds: boot + started_after_boot,
    }
}

/// Open file descriptors and the soft limit on them.
pub fn fds() -> (u64, u64) {
    let open = fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    let max = fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0);
    (open, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let m = memory();
        assert!(m.rss_bytes > 0 && m.virtual_bytes >= m.rss_bytes);
        let t = times();
        assert!(t.start_time_seconds > 1.0e9);
        let (open, max) = fds();
        assert!(open > 0 && max >= open);
    }
}
