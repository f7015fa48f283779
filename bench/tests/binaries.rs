//! The benchmark binaries start and fail cleanly: bad arguments get the usage and exit 2, and the
//! load generator reports an unreachable server as failed runs instead of panicking (it once
//! panicked at once, building its HTTP client without a TLS crypto provider, and the benchmark
//! rotted unseen). Also makes `cargo test --workspace` build these binaries, which
//! `bench/orchestrate/run.sh --smoke` (run by `.ci/run`) then uses.

use std::process::{Command, Output};

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{bin}: {e}"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_arguments_get_the_usage_and_exit_2() {
    for (bin, args) in [
        (
            env!("CARGO_BIN_EXE_bench-model"),
            &["--latency-ms", "-1"][..],
        ),
        (env!("CARGO_BIN_EXE_orchestrate-load"), &[][..]),
        (
            env!("CARGO_BIN_EXE_orchestrate-load"),
            &["run", "--bogus", "1"][..],
        ),
        (env!("CARGO_BIN_EXE_startup-bench"), &["--runs", "0"][..]),
    ] {
        let out = run(bin, args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{bin} {args:?}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("usage"),
            "{bin} {args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn the_load_generator_counts_an_unreachable_server_as_failed_runs() {
    // Port 1 on loopback: nothing listens there, the connection is refused.
    for args in [
        &["run", "--url", "http://127.0.0.1:1/v1/run", "--runs", "2"][..],
        &[
            "adk",
            "--url",
            "http://127.0.0.1:1",
            "--app",
            "a",
            "--runs",
            "2",
        ][..],
    ] {
        let out = run(env!("CARGO_BIN_EXE_orchestrate-load"), args);
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {text}");
        assert!(text.contains("all 2 runs failed"), "{args:?}: {text}");
        assert!(!text.contains("panicked"), "{args:?}: {text}");
    }
}
