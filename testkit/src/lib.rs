//! Shared support for gatetrace's tests: where the built plugins and the real tools are,
//! free loopback ports, readiness polling, child processes that die with the test and the one
//! HTTP test client ([`http::Http`]).
//!
//! End-to-end tests are `#[ignore = "e2e: ..."]` so a plain `cargo test` skips them visibly;
//! `cargo xtask test` installs the tools, sets the variables below and runs them with
//! `--include-ignored`. A missing tool is a hard failure, never a silent pass.

pub mod http;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The wall clock in nanoseconds since the Unix epoch.
#[must_use]
pub fn now_unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos() as u64
}

/// Directory holding the built `.wasm` files (`cargo xtask wasm` writes them).
pub const WASM_DIR_VAR: &str = "GATETRACE_WASM_DIR";

/// The workspace root (the directory holding the top `Cargo.toml`).
#[must_use]
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives one level below the workspace root")
        .to_path_buf()
}

/// Path of a built wasm artifact such as `gatetrace-traefik.wasm` or
/// `fixtures/http-guest.wasm`. Panics with the command to run when it is missing.
#[must_use]
pub fn wasm_artifact(name: &str) -> PathBuf {
    let dir = std::env::var_os(WASM_DIR_VAR)
        .map_or_else(|| workspace_root().join("target/wasm"), PathBuf::from);
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask wasm` (or `cargo xtask test`) first",
        path.display()
    );
    path
}

/// Path of a real tool that `cargo xtask test` installs and names in the environment variable
/// `var` (for example `GATETRACE_TRAEFIK`). Panics when it is not set.
#[must_use]
pub fn tool(var: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        panic!(
            "{var} is not set: end-to-end tests run through `cargo xtask test` \
             (or `cargo xtask tools` and `source target/gatetrace-env.sh` first)"
        )
    });
    assert!(path.exists(), "{var}={} does not exist", path.display());
    path
}

/// A loopback port that was free a moment ago.
#[must_use]
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind an ephemeral loopback port")
        .port()
}

/// Polls `ready` every 25 ms until it returns true; panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Waits until something accepts TCP connections on `127.0.0.1:port`.
pub fn wait_for_port(what: &str, port: u16, timeout: Duration) {
    wait_until(what, timeout, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

/// Every line (newline included) of the spool segments (`*.ndjson`) in `dir`, in segment
/// order: what a test reads back of what a plugin wrote.
#[must_use]
pub fn spool_lines(dir: &Path) -> Vec<Vec<u8>> {
    let mut segments: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("spool {}: {e}", dir.display()))
        .map(|e| e.expect("spool entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .collect();
    segments.sort();
    segments
        .iter()
        .flat_map(|p| {
            std::fs::read(p)
                .expect("spool segment")
                .split_inclusive(|b| *b == b'\n')
                .map(<[u8]>::to_vec)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A child process killed (and reaped) when dropped; its stdout and stderr go to a log file
/// that [`ChildGuard::log`] returns, for assertions and for failure messages.
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
    log_path: PathBuf,
}

impl ChildGuard {
    /// Spawns `command` with output captured in `log_path`.
    pub fn spawn(command: &mut Command, log_path: impl Into<PathBuf>) -> Self {
        let log_path = log_path.into();
        let log = std::fs::File::create(&log_path).expect("create child log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
        Self { child, log_path }
    }

    /// Everything the child has printed so far.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The child's process id.
    #[must_use]
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether the child has exited (and with what status).
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The port a collector started with `--listen 127.0.0.1:0` bound, read from its start-up
    /// log line (`"listen":"127.0.0.1:<port>"`); waits up to 20 s for it.
    #[must_use]
    pub fn collector_port(&self) -> u16 {
        let mut port = 0;
        wait_until(
            "the collector to log its address",
            Duration::from_secs(20),
            || {
                let log = self.log();
                let Some(rest) = log.split("\"listen\":\"127.0.0.1:").nth(1) else {
                    return false;
                };
                port = rest.split('"').next().unwrap().parse().unwrap();
                true
            },
        );
        port
    }

    /// Kills the child with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}
