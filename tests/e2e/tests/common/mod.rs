//! Shared rig of the system tests: real Traefik (`traefik`) and its raw HTTP/1.1 client and
//! backend (`http`), the collector's `/metrics` read back (`metrics`), Arize Phoenix as the
//! OTLP receiver (`phoenix`), the proxy-wasm harness helpers (`proxy`, shared with the
//! plugin's own harness tests), spool parsing and the collector binary. The MCP rig (`mcp/`) is declared by `mcp_traefik.rs` alone.
#![allow(dead_code)] // each test file uses its own subset

pub mod http;
pub mod metrics;
pub mod phoenix;
/// One definition with `plugin/proxy-wasm/tests/harness.rs`, which uses the same helpers.
#[path = "../../../../plugin/proxy-wasm/tests/common/mod.rs"]
pub mod proxy;
pub mod traefik;

use std::path::{Path, PathBuf};

use gatetrace_core::record::Record;

/// Parses every spool line as a record; panics naming the first malformed line.
pub fn parse_records(lines: &[String]) -> Vec<Record> {
    lines
        .iter()
        .map(|line| {
            Record::from_ndjson_line(line.as_bytes())
                .unwrap_or_else(|e| panic!("malformed spool line {line:?}: {e}"))
        })
        .collect()
}

/// Tests in this binary each run their own Traefik; one at a time keeps timing honest on a
/// two-core machine (under nextest the `serial` group in `.config/nextest.toml` does this
/// across processes; this lock covers a plain `cargo test`).
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The `gatetrace-collector` binary cargo built into this test's target dir (any workspace
/// build, e.g. `cargo xtask test`, builds it; `cargo build -p gatetrace-collector` alone does).
pub fn collector_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test> → target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binaries live in target/<profile>/deps");
    let binary = profile_dir.join("gatetrace-collector");
    assert!(
        binary.is_file(),
        "{} is missing: run `cargo build -p gatetrace-collector` first",
        binary.display()
    );
    binary
}
