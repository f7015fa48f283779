//! `FUNCTION probe URL [--grpc] [--timeout 2s] [--id-token] [--audience A]`: one readiness
//! check, one line, exit 0 (ready) or 1; 2 for bad arguments. Every function binary answers it
//! ([`crate::run`] dispatches on the first argument), so an image without a shell checks
//! itself: `HEALTHCHECK CMD ["/app", "probe", "http://127.0.0.1:8080"]`. Also made for
//! post-deploy smoke tests: `--id-token` sends a Google ID token minted for the audience (the
//! URL's origin unless `--audience` says otherwise) from Application Default Credentials.

pub mod target;

use std::process::ExitCode;
use std::time::Duration;

use crate::gcp::idtoken::IdTokens;
pub use target::{Protocol, Target};

/// The probe's usage line, after the program's name.
pub const USAGE: &str = "probe URL [--grpc] [--timeout 2s] [--id-token] [--audience AUDIENCE]";

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Parses the arguments (those after `probe`), runs the check, prints one line and returns
/// the exit code (2 for bad arguments). `program` names the binary in messages.
pub fn main(program: &str, args: &[String]) -> ExitCode {
    let (target, timeout) = match parse(args) {
        Ok(v) => v,
        Err(problem) => {
            eprintln!("{program} probe: {problem}\nusage: {program} {USAGE}");
            return ExitCode::from(2);
        }
    };
    crate::crypto::install_provider();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{program} probe: async runtime: {e}");
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
    let mut id_token = false;
    let mut audience = None;
    let mut timeout = DEFAULT_TIMEOUT;
    let mut it = args.iter();
    let duration =
        |v: &str| crate::config::parse_duration(v).map_err(|e| format!("--timeout {v}: {e}"));
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--grpc" => grpc = true,
            "--id-token" => id_token = true,
            "--timeout" => {
                let v = it.next().ok_or("--timeout needs a value such as 2s")?;
                timeout = duration(v)?;
            }
            s if s.starts_with("--timeout=") => timeout = duration(&s["--timeout=".len()..])?,
            "--audience" => {
                let v = it
                    .next()
                    .ok_or("--audience needs a value such as https://x.run.app")?;
                audience = Some(v.clone());
            }
            s if s.starts_with("--audience=") => audience = Some(s["--audience=".len()..].into()),
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
    let mut target = Target::parse("probe", &url)?;
    match (id_token, audience) {
        (true, audience) => target = target.with_id_token(IdTokens::new(), audience),
        (false, Some(_)) => return Err("--audience goes with --id-token".into()),
        (false, None) => {}
    }
    Ok((target, timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_url_flags_and_timeout() {
        let (t, d) = parse(&args(&["127.0.0.1:8080", "--timeout", "500ms"])).unwrap();
        assert_eq!(t.url, "http://127.0.0.1:8080/health/ready");
        assert_eq!(d, Duration::from_millis(500));
        assert!(t.id_token.is_none());
        let (t, _) = parse(&args(&["--grpc", "http://127.0.0.1:9"])).unwrap();
        assert_eq!(t.protocol, Protocol::Grpc);
        assert!(parse(&args(&[])).is_err());
        assert!(parse(&args(&["x", "--bogus"])).is_err());
    }

    #[test]
    fn id_tokens_default_to_the_origin() {
        let (t, _) = parse(&args(&["--id-token", "https://x.run.app/health/ready"])).unwrap();
        assert_eq!(t.id_token.unwrap().audience, "https://x.run.app");
        let (t, _) = parse(&args(&["--grpc", "--id-token", "https://x.run.app"])).unwrap();
        assert_eq!(t.id_token.unwrap().audience, "https://x.run.app");
        let (t, _) = parse(&args(&["https://x", "--id-token", "--audience=custom"])).unwrap();
        assert_eq!(t.id_token.unwrap().audience, "custom");
        assert!(parse(&args(&["https://x", "--audience", "a"])).is_err());
        assert!(parse(&args(&["https://x", "--id-token", "--audience"])).is_err());
    }
}
