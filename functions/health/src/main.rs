//! `health`: `health [serve]` runs the aggregator; `health probe URL [--grpc] [--timeout 2s]
//! [--id-token] [--audience A]` checks one URL and exits 0 or 1 (as every function's binary
//! does: `aixrun::probe`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("serve") => health::serve(),
        Some("probe") => aixrun::probe::main("health", &args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{}", health::USAGE);
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("health: unknown command {other:?}\n{}", health::USAGE);
            ExitCode::from(2)
        }
    }
}
