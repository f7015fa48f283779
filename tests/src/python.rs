//! Python programs the end-to-end tests run as real peers (the official MCP Python SDK's
//! server, llama.cpp's server through `xllamacpp`, Google's own clients), from the virtualenv
//! `scripts/test-peers.sh` makes: `.cache/e2e-venv` at the workspace root, or the interpreter
//! `E2E_PYTHON` names. A fresh machine has none, so every test that needs one is
//! `#[ignore = "needs ...: run scripts/test-peers.sh"]`: `cargo test --workspace` reports it
//! ignored, and `-- --include-ignored` (as `.ci/run` does) runs it, failing when a peer is
//! missing rather than passing without it.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace root (the tests crate is `tests/`).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The interpreter with the test packages. Always `Some`: without it the test fails, naming
/// the script that makes it (tests that need it are ignored unless asked for).
pub fn interpreter() -> Option<PathBuf> {
    let path = venv_python();
    assert!(
        path.exists(),
        "{} does not exist: run scripts/test-peers.sh (or set E2E_PYTHON)",
        path.display()
    );
    Some(path)
}

fn venv_python() -> PathBuf {
    std::env::var_os("E2E_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".cache/e2e-venv/bin/python"))
}

/// A command-line peer (`grpcurl`, `buf`): on PATH, else where `scripts/test-peers.sh`
/// installs it without root (beside the test interpreter, or npm's `.cache/e2e-node`).
pub fn peer_tool(name: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(name).is_file()));
    if on_path {
        return PathBuf::from(name);
    }
    let installed = [
        venv_python().with_file_name(name),
        workspace()
            .join(".cache/e2e-node/node_modules/.bin")
            .join(name),
    ];
    installed
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Runs `script` (`python -c`) with `envs` to completion and returns its stdout; panics with
/// its output when it fails.
pub fn run_script(python: &Path, script: &str, envs: &[(&str, &str)]) -> String {
    let out = Command::new(python)
        .args(["-c", script])
        .envs(envs.iter().copied())
        // Google's clients would prefer a key file to the (fake) metadata server.
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A Python process serving on a loopback port; killed on drop.
pub struct PythonServer {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
}

impl PythonServer {
    /// Runs `tests/python/<script>` with `PORT` and `envs`, and waits up to `timeout` for its
    /// port to accept connections. Always `Some` (see [`interpreter`]).
    pub fn start(script: &str, envs: &[(&str, &str)], timeout: Duration) -> Option<Self> {
        Self::start_with_args(script, &[], envs, timeout)
    }

    /// [`Self::start`] with command-line arguments for the script.
    pub fn start_with_args(
        script: &str,
        args: &[&str],
        envs: &[(&str, &str)],
        timeout: Duration,
    ) -> Option<Self> {
        let python = interpreter()?;
        let port = crate::closed_port();
        let mut child = Command::new(python)
            .arg(workspace().join("tests/python").join(script))
            .args(args)
            .env("PORT", port.to_string())
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start python");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{script} exited before listening: {status}");
            }
            assert!(
                started.elapsed() < timeout,
                "{script} never listened on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Self { addr, child })
    }
}

impl PythonServer {
    /// Waits up to `timeout` for `GET path` to answer 200 (llama.cpp's server opens its port
    /// before the weights are loaded and answers 503 until then).
    pub fn wait_ok(&self, path: &str, timeout: Duration) {
        let started = Instant::now();
        loop {
            if crate::http::get(self.addr, path).is_ok_and(|r| r.status == 200) {
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "{path} never answered 200 on {}",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
