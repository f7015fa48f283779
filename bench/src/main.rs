//! Start-up, memory and size of server binaries, against the std-only `floor` as baseline.
//!
//! For each `NAME=PATH`: the time from exec to the first `200` from `GET /health/ready` (median and
//! p90 over `--runs` cold starts), the CPU time and page faults the process had used by then
//! (medians; on a small VM start-up is mostly the kernel's work, and page faults its largest
//! part), VmRSS once idle and again after 1,000 requests, and file size.
//! Prints a Markdown table on stdout; progress and errors go to stderr.

use std::env;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const USAGE: &str = "usage: startup-bench [--runs N] [NAME=PATH ...]\n\
    With no NAME=PATH, measures floor, orchestrate, mcp-tool and health next to this executable.\n\
    The target named `floor` is the baseline; it is added from next to this executable if absent.";
const DEFAULT_RUNS: usize = 20;
const DEFAULT_BINARIES: [&str; 4] = ["floor", "orchestrate", "mcp-tool", "health"];
const BASELINE: &str = "floor";
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Lets lazily initialised state settle before the idle reading.
const SETTLE: Duration = Duration::from_millis(200);
const LOAD_REQUESTS: usize = 1_000;
const PROBE: &[u8] = b"GET /health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
const KEEP_ALIVE: &[u8] = b"GET /health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
const MIB: f64 = 1024.0 * 1024.0;

struct Target {
    name: String,
    path: PathBuf,
}

struct Config {
    runs: usize,
    /// The baseline first.
    targets: Vec<Target>,
}

struct Stats {
    median: Duration,
    p90: Duration,
}

/// One cold start: wall time until ready, and what the process had consumed by then.
struct Sample {
    wall: Duration,
    /// On-CPU time of all its threads, user and kernel (`/proc/PID/task/*/schedstat`).
    cpu: Duration,
    /// Minor and major page faults (`/proc/PID/stat`).
    faults: u64,
}

struct Measurement {
    start: Stats,
    cpu: Duration,
    faults: u64,
    idle_rss_kib: u64,
    loaded_rss_kib: u64,
    size_bytes: u64,
}

fn main() -> ExitCode {
    let config = match parse_args(env::args().skip(1)) {
        Ok(Some(config)) => config,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let results: Vec<_> = config
        .targets
        .iter()
        .map(|target| {
            eprintln!("measuring {} ({})", target.name, target.path.display());
            measure(target, config.runs)
        })
        .collect();

    print_header(config.runs);
    print_table(&config.targets, &results);

    let mut failed = false;
    for (target, result) in config.targets.iter().zip(&results) {
        if let Err(e) = result {
            eprintln!("error: {} ({}): {e}", target.name, target.path.display());
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Returns `None` for `--help`.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Config>, String> {
    let mut runs = DEFAULT_RUNS;
    let mut targets = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        let runs_value = match arg.strip_prefix("--runs") {
            Some("") => Some(args.next().ok_or("--runs needs a value")?),
            Some(value) => value.strip_prefix('=').map(str::to_owned),
            None => None,
        };
        if let Some(value) = runs_value {
            runs = value.parse().ok().filter(|&n| n > 0).ok_or(format!(
                "--runs: expected a positive integer, got {value:?}"
            ))?;
        } else {
            targets.push(parse_target(&arg)?);
        }
    }
    if targets.is_empty() {
        targets = DEFAULT_BINARIES
            .iter()
            .map(|name| sibling(name))
            .collect::<Result<_, _>>()?;
    }
    Ok(Some(Config {
        runs,
        targets: with_baseline_first(targets)?,
    }))
}

fn parse_target(arg: &str) -> Result<Target, String> {
    match arg.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => Ok(Target {
            name: name.to_owned(),
            path: path.into(),
        }),
        _ => Err(format!("expected NAME=PATH, got {arg:?}")),
    }
}

/// A binary in the same directory as this one, where `cargo build --release` puts them all.
fn sibling(name: &str) -> Result<Target, String> {
    let exe = env::current_exe().map_err(|e| format!("locating this executable: {e}"))?;
    let dir = exe
        .parent()
        .ok_or("this executable has no parent directory")?;
    Ok(Target {
        name: name.to_owned(),
        path: dir.join(name),
    })
}

/// Moves the baseline to the front, adding it when not given, so every row has a ratio.
fn with_baseline_first(mut targets: Vec<Target>) -> Result<Vec<Target>, String> {
    let baseline = match targets.iter().position(|t| t.name == BASELINE) {
        Some(index) => targets.remove(index),
        None => sibling(BASELINE)?,
    };
    targets.insert(0, baseline);
    Ok(targets)
}

fn measure(target: &Target, runs: usize) -> Result<Measurement, String> {
    let size_bytes = fs::metadata(&target.path)
        .map_err(|e| format!("reading metadata: {e}"))?
        .len();
    let mut samples = Vec::with_capacity(runs);
    for run in 1..=runs {
        // A binary that misses the 10 s deadline once is broken; more runs would only add minutes.
        let sample = cold_start(target).map_err(|e| format!("cold start {run}/{runs}: {e}"))?;
        samples.push(sample);
    }
    let (idle_rss_kib, loaded_rss_kib) = memory(target).map_err(|e| format!("memory: {e}"))?;
    let cpu = stats(samples.iter().map(|s| s.cpu).collect()).median;
    let mut faults: Vec<u64> = samples.iter().map(|s| s.faults).collect();
    faults.sort_unstable();
    let faults = median(&faults, u64::midpoint);
    Ok(Measurement {
        start: stats(samples.iter().map(|s| s.wall).collect()),
        cpu,
        faults,
        idle_rss_kib,
        loaded_rss_kib,
        size_bytes,
    })
}

/// Time from exec to the first `200` from `/health/ready`, and the CPU time and page faults
/// used by then (read a few microseconds after the answer, before the child is killed).
fn cold_start(target: &Target) -> Result<Sample, String> {
    let port = free_port()?;
    let start = Instant::now();
    let mut server = Server::spawn(target, port)?;
    server.wait_ready(start + READY_TIMEOUT)?;
    let wall = start.elapsed();
    let (cpu, faults) = usage(server.pid())?;
    Ok(Sample { wall, cpu, faults })
}

/// On-CPU time summed over the process's threads, and its page faults so far.
fn usage(pid: u32) -> Result<(Duration, u64), String> {
    let tasks = format!("/proc/{pid}/task");
    let mut cpu = Duration::ZERO;
    for task in fs::read_dir(&tasks).map_err(|e| format!("reading {tasks}: {e}"))? {
        let path = task
            .map_err(|e| format!("reading {tasks}: {e}"))?
            .path()
            .join("schedstat");
        // A thread that exits between the listing and the read has nothing left to count.
        if let Ok(schedstat) = fs::read_to_string(&path) {
            cpu += parse_schedstat(&schedstat)
                .ok_or_else(|| format!("unexpected {}: {schedstat:?}", path.display()))?;
        }
    }
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
    let faults = parse_faults(&stat).ok_or_else(|| format!("unexpected {path}: {stat:?}"))?;
    Ok((cpu, faults))
}

/// The first field of `/proc/PID/task/TID/schedstat`: nanoseconds on the CPU.
fn parse_schedstat(schedstat: &str) -> Option<Duration> {
    let nanos = schedstat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// `minflt + majflt` from `/proc/PID/stat` (fields 10 and 12, proc(5)). The command name, field
/// 2, may hold spaces and parentheses, so the fields are counted from its closing `)`.
fn parse_faults(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state).
    let minor: u64 = fields.get(10 - 3)?.parse().ok()?;
    let major: u64 = fields.get(12 - 3)?.parse().ok()?;
    Some(minor + major)
}

/// VmRSS in KiB once idle after ready, then after `LOAD_REQUESTS` requests.
fn memory(target: &Target) -> Result<(u64, u64), String> {
    let port = free_port()?;
    let mut server = Server::spawn(target, port)?;
    server.wait_ready(Instant::now() + READY_TIMEOUT)?;
    thread::sleep(SETTLE);
    let idle = vm_rss_kib(server.pid())?;
    send_requests(port, LOAD_REQUESTS).map_err(|e| format!("sending requests: {e}"))?;
    let loaded = vm_rss_kib(server.pid())?;
    Ok((idle, loaded))
}

/// The kernel picks a port that is free now; the tiny window before the child binds is acceptable.
fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("picking a free port: {e}"))
}

/// A child server that is killed when dropped, so no error path leaves one running.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn spawn(target: &Target, port: u16) -> Result<Self, String> {
        let child = Command::new(&target.path)
            .env("PORT", port.to_string())
            .env("HOST", "127.0.0.1")
            .env("LOG_FORMAT", "json")
            .env("LOG_LEVEL", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawning: {e}"))?;
        Ok(Self { child, port })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls without sleeping until `/health/ready` answers 200, the child exits or `deadline`.
    fn wait_ready(&mut self, deadline: Instant) -> Result<(), String> {
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("exited before ready: {status}"));
            }
            if Instant::now() >= deadline {
                return Err(format!("not ready within {READY_TIMEOUT:?}"));
            }
            match probe(self.port, deadline) {
                Ok(true) => return Ok(()),
                // Refused, reset or 503: the server is still starting. Yield rather than sleep so
                // the first ready moment is seen at once while the child still gets the CPU.
                Ok(false) | Err(_) => thread::yield_now(),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `GET /health/ready` on a new connection; whether it answered 200.
fn probe(port: u16, deadline: Instant) -> io::Result<bool> {
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    // A server that accepts but never answers must not outlive the deadline.
    stream.set_read_timeout(Some(remaining))?;
    let mut reader = BufReader::new(stream);
    reader.get_mut().write_all(PROBE)?;
    Ok(read_response(&mut reader)?.status == 200)
}

/// Sends `count` sequential requests, keeping the connection alive unless the server closes it.
fn send_requests(port: u16, count: usize) -> io::Result<()> {
    let mut kept: Option<BufReader<TcpStream>> = None;
    for _ in 0..count {
        let (conn, response) = match kept.take() {
            Some(mut conn) => match exchange(&mut conn) {
                Ok(response) => (conn, response),
                // The server may close an idle kept-alive connection; retry once on a new one.
                Err(_) => fresh_exchange(port)?,
            },
            None => fresh_exchange(port)?,
        };
        if response.status != 200 {
            return Err(io::Error::other(format!("status {}", response.status)));
        }
        if !response.close {
            kept = Some(conn);
        }
    }
    Ok(())
}

fn fresh_exchange(port: u16) -> io::Result<(BufReader<TcpStream>, Response)> {
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(READY_TIMEOUT))?;
    let mut conn = BufReader::new(stream);
    let response = exchange(&mut conn)?;
    Ok((conn, response))
}

fn exchange(conn: &mut BufReader<TcpStream>) -> io::Result<Response> {
    conn.get_mut().write_all(KEEP_ALIVE)?;
    read_response(conn)
}

#[derive(Debug, PartialEq)]
struct Response {
    status: u16,
    /// The server will close the connection after this response.
    close: bool,
}

/// Reads one HTTP/1.1 response, body included, so the next one on the connection starts clean.
fn read_response(reader: &mut impl BufRead) -> io::Result<Response> {
    let status_line = read_line(reader)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    let (mut length, mut chunked, mut close) = (None, false, false);
    loop {
        let line = read_line(reader)?;
        let Some((name, value)) = line.split_once(':') else {
            break; // The blank line ending the head.
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse()
                    .map_err(|_| invalid(format!("bad {line:?}")))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    match (chunked, length) {
        (true, _) => skip_chunked(reader)?,
        (false, Some(length)) => skip_exact(reader, length)?,
        // Neither: the body runs to the end of the connection (RFC 9112, section 6.3).
        (false, None) => {
            io::copy(reader, &mut io::sink())?;
            close = true;
        }
    }
    Ok(Response { status, close })
}

fn skip_chunked(reader: &mut impl BufRead) -> io::Result<()> {
    loop {
        let line = read_line(reader)?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(size, 16)
            .map_err(|_| invalid(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            // Trailers, up to the blank line.
            while !read_line(reader)?.is_empty() {}
            return Ok(());
        }
        skip_exact(reader, size)?;
        read_line(reader)?;
    }
}

fn skip_exact(reader: &mut impl BufRead, length: u64) -> io::Result<()> {
    if io::copy(&mut reader.take(length), &mut io::sink())? == length {
        Ok(())
    } else {
        Err(io::ErrorKind::UnexpectedEof.into())
    }
}

/// One line without its line ending; end of stream before it is an error.
fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    if reader.read_until(b'\n', &mut line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let line = String::from_utf8_lossy(&line);
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn vm_rss_kib(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
    parse_vm_rss(&status).ok_or_else(|| format!("no VmRSS in {path}"))
}

/// The `VmRSS:   1234 kB` line of `/proc/<pid>/status`.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?;
    line.trim().strip_suffix("kB")?.trim().parse().ok()
}

/// Median and nearest-rank p90 of a non-empty sample.
fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort_unstable();
    let median = median(&samples, |a, b| (a + b) / 2);
    let p90 = samples[(samples.len() * 9).div_ceil(10) - 1];
    Stats { median, p90 }
}

/// The middle of a sorted, non-empty sample; `midpoint` of the middle two when its size is even.
fn median<T: Copy>(sorted: &[T], midpoint: impl Fn(T, T) -> T) -> T {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        midpoint(sorted[n / 2 - 1], sorted[n / 2])
    }
}

fn print_header(runs: usize) {
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "nproc: {cores} · date: {} · {runs} cold starts per binary · start = exec to first 200 \
         from GET /health/ready\n",
        utc_now()
    );
}

fn print_table(targets: &[Target], results: &[Result<Measurement, String>]) {
    println!(
        "| binary | start median (ms) | start p90 (ms) | vs floor | CPU until ready (ms) | \
         page faults until ready | idle RSS (MiB) | RSS after {LOAD_REQUESTS} req (MiB) | \
         size (MiB) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    // `with_baseline_first` put the floor in the first row.
    let floor = results
        .first()
        .and_then(|r| r.as_ref().ok())
        .map(|m| m.start.median);
    for (index, (target, result)) in targets.iter().zip(results).enumerate() {
        let name = if index == 0 {
            format!("{} (baseline)", target.name)
        } else {
            target.name.clone()
        };
        match result {
            Ok(m) => println!(
                "| {name} | {:.2} | {:.2} | {} | {:.2} | {} | {:.1} | {:.1} | {:.2} |",
                millis(m.start.median),
                millis(m.start.p90),
                floor.map_or("-".to_owned(), |floor| format!(
                    "{:.1}x",
                    ratio(m.start.median, floor)
                )),
                millis(m.cpu),
                m.faults,
                m.idle_rss_kib as f64 / 1024.0,
                m.loaded_rss_kib as f64 / 1024.0,
                m.size_bytes as f64 / MIB,
            ),
            Err(_) => println!("| {name} | failed | - | - | - | - | - | - | - |"),
        }
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn ratio(value: Duration, baseline: Duration) -> f64 {
    value.as_secs_f64() / baseline.as_secs_f64()
}

/// `YYYY-MM-DD HH:MM UTC`, computed here to stay std-only.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (year, month, day) = civil_from_days(secs / 86_400);
    let minutes = secs % 86_400 / 60;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        minutes / 60,
        minutes % 60
    )
}

/// Days since 1970-01-01 to a Gregorian date (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + yoe + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_millis(v)).collect()
    }

    #[test]
    fn stats_take_median_and_nearest_rank_p90() {
        let s = stats(ms(&[5, 1, 4, 2, 3]));
        assert_eq!(
            (s.median, s.p90),
            (Duration::from_millis(3), Duration::from_millis(5))
        );
        let s = stats(ms(&[10, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
        assert_eq!(s.median, Duration::from_micros(5_500));
        assert_eq!(s.p90, Duration::from_millis(9));
    }

    #[test]
    fn reads_content_length_response_and_leaves_the_next_one() {
        let mut input: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 503 X\r\n\
            Connection: close\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            read_response(&mut input).unwrap(),
            Response {
                status: 200,
                close: false
            }
        );
        assert_eq!(
            read_response(&mut input).unwrap(),
            Response {
                status: 503,
                close: true
            }
        );
        assert!(input.is_empty());
    }

    #[test]
    fn reads_chunked_and_close_delimited_bodies() {
        let mut input: &[u8] =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nrest";
        assert_eq!(
            read_response(&mut input).unwrap(),
            Response {
                status: 200,
                close: false
            }
        );
        assert_eq!(input, b"rest");
        let mut input: &[u8] = b"HTTP/1.0 200 OK\r\n\r\nbody";
        assert_eq!(
            read_response(&mut input).unwrap(),
            Response {
                status: 200,
                close: true
            }
        );
    }

    #[test]
    fn truncated_response_is_an_error() {
        let mut input: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok";
        assert!(read_response(&mut input).is_err());
    }

    #[test]
    fn parses_schedstat_and_faults() {
        assert_eq!(
            parse_schedstat("2284113 670021 14\n"),
            Some(Duration::from_nanos(2_284_113))
        );
        assert_eq!(parse_schedstat(""), None);
        // A command name with a space and a parenthesis; minflt 195, majflt 2.
        let stat = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 195 0 2 0 1 0 0 0 20 0 3 0";
        assert_eq!(parse_faults(stat), Some(197));
        assert_eq!(parse_faults("4242 (short) S 1"), None);
    }

    #[test]
    fn parses_vm_rss() {
        assert_eq!(
            parse_vm_rss("Name:\tfloor\nVmRSS:\t    1234 kB\nVmData: 1 kB\n"),
            Some(1234)
        );
        assert_eq!(parse_vm_rss("Name:\tfloor\n"), None);
    }

    #[test]
    fn converts_days_to_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(20_088), (2024, 12, 31));
    }

    #[test]
    fn parses_runs_and_targets_with_baseline_first() {
        let args = ["--runs", "3", "a=/x/a", "floor=/x/floor", "--runs=4"].map(String::from);
        let config = parse_args(args).unwrap().unwrap();
        assert_eq!(config.runs, 4);
        let names: Vec<_> = config.targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["floor", "a"]);
        assert!(parse_args(["--runs", "0"].map(String::from)).is_err());
        assert!(parse_args(["nopath"].map(String::from)).is_err());
    }
}
