//! Process metrics computed at scrape time: the standard `process_*` series Prometheus users
//! expect, and the seed's `aixgo_memory_usage_bytes` and `aixgo_goroutines`.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::process;

#[derive(Debug)]
pub(super) struct ProcessCollector;

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> std::fmt::Result {
    ConstGauge::new(v).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let mem = process::memory();
        let times = process::times();
        let (open_fds, max_fds) = process::fds();
        let e = &mut encoder;
        gauge(
            e,
            "aixgo_memory_usage_bytes",
            "Resident memory of the process in bytes",
            mem.rss_bytes as f64,
        )?;
        gauge(
            e,
            "aixgo_goroutines",
            "Live async tasks (the Go original's goroutines)",
            process::live_tasks() as f64,
        )?;
        ConstCounter::new(times.cpu_seconds).encode(e.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            MetricType::Counter,
        )?)?;
        gauge(
            e,
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            mem.rss_bytes as f64,
        )?;
        gauge(
            e,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            mem.virtual_bytes as f64,
        )?;
        gauge(
            e,
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch in seconds",
            times.start_time_seconds,
        )?;
        gauge(
            e,
            "process_open_fds",
            "Number of open file descriptors",
            open_fds as f64,
        )?;
        gauge(
            e,
            "process_max_fds",
            "Maximum number of open file descriptors",
            max_fds as f64,
        )
    }
}
