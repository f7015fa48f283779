//! `orchestrate`: see the README.

fn main() -> std::process::ExitCode {
    orchestrate::main()
}
