//! `health probe URL [--grpc] [--timeout 2s]`: one check, one line, exit 0 (ready) or 1.
//! Made for container HEALTHCHECKs in images without a shell and for post-deploy smoke tests.

use std::process::ExitCode;
use std::time::Duration;

use crate::target::Target;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Parses the arguments, runs the check, prints one line and returns the exit code
/// (2 for bad arguments).
pub fn main(args: &[String]) -> ExitCode {
    let (target, timeout) = match parse(args) {
        Ok(v) => v,
        Err(problem) => {
            eprintln!("health probe: {problem}\n{}", crate::USAGE);
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("health probe: async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(target.check(timeout)) {
        Ok(message) => {
            println!("ok {}: {message}", target.shown);
            ExitCode::SUCCESS
        }
        Err(message) => {
            println!("fail {}: {message}", target.shown);
            ExitCode::FAILURE
        }
    }
}

fn parse(args: &[String]) -> Result<(Target, Duration), String> {
    let mut url = None;
    let mut grpc = false;
    let mut timeout = DEFAULT_TIMEOUT;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--grpc" => grpc = true,
            "--timeout" => {
                let v = it.next().ok_or("--timeout needs a value such as 2s")?;
                timeout =
                    aixrun::config::parse_duration(v).map_err(|e| format!("--timeout {v}: {e}"))?;
            }
            s if s.starts_with("--timeout=") => {
                let v = &s["--timeout=".len()..];
                timeout =
                    aixrun::config::parse_duration(v).map_err(|e| format!("--timeout {v}: {e}"))?;
            }
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s if url.is_none() => url = Some(s.to_owned()),
            s => return Err(format!("unexpected argument {s}")),
        }
    }
    let url = url.ok_or("missing URL")?;
    let url = if url.contains("://") {
        url
    } else {
        format!("http://{url}")
    };
    let url = match (grpc, url.split_once("://")) {
        (true, Some(("http", rest))) => format!("grpc://{rest}"),
        (true, Some(("https", rest))) => format!("grpcs://{rest}"),
        _ => url,
    };
    let target = Target::parse("probe", &url)?;
    Ok((target, timeout))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Protocol;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_url_flags_and_timeout() {
        let (t, d) = parse(&args(&["127.0.0.1:8080", "--timeout", "500ms"])).unwrap();
        assert_eq!(t.url, "http://127.0.0.1:8080/health/ready");
        assert_eq!(d, Duration::from_millis(500));
        let (t, _) = parse(&args(&["--grpc", "http://127.0.0.1:9"])).unwrap();
        assert_eq!(t.protocol, Protocol::Grpc);
        assert!(parse(&args(&[])).is_err());
        assert!(parse(&args(&["x", "--bogus"])).is_err());
    }
}
