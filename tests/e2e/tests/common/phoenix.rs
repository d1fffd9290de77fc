//! Arize Phoenix, the real OTLP receiver of the span tests: started on loopback ports, and
//! the spans it stored read back.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use testkit::ChildGuard;
use testkit::http::Http;

/// A running Phoenix on free loopback ports with its data in a temporary directory.
pub struct Phoenix {
    pub child: ChildGuard,
    pub http_port: u16,
    pub grpc_port: u16,
}

/// Phoenix on free loopback ports, once it answers.
pub fn start(dir: &Path) -> Phoenix {
    start_on(dir, testkit::free_port(), testkit::free_port())
}

/// Starts Phoenix on the given ports (its data stays in `dir`, so a restart keeps its spans).
pub fn start_on(dir: &Path, http_port: u16, grpc_port: u16) -> Phoenix {
    let phoenix = testkit::tool("GATETRACE_PHOENIX");
    let child = ChildGuard::spawn(
        Command::new(phoenix)
            .arg("serve")
            .current_dir(dir)
            .env("PHOENIX_WORKING_DIR", dir.join("phoenix"))
            .env("PHOENIX_HOST", "127.0.0.1")
            .env("PHOENIX_PORT", http_port.to_string())
            .env("PHOENIX_GRPC_PORT", grpc_port.to_string())
            .env("PHOENIX_TELEMETRY_ENABLED", "false")
            .env_remove("PHOENIX_SQL_DATABASE_URL")
            .env_remove("PHOENIX_COLLECTOR_ENDPOINT"),
        dir.join(format!(
            "phoenix-{grpc_port}-{}.log",
            testkit::now_unix_ns()
        )),
    );
    let mut phoenix = Phoenix {
        child,
        http_port,
        grpc_port,
    };
    let http = Http::new();
    let health = format!("http://127.0.0.1:{http_port}/healthz");
    // Phoenix is a big Python application: its start takes tens of seconds on two cores.
    testkit::wait_until(
        "Phoenix to answer /healthz",
        Duration::from_secs(300),
        || {
            if let Some(status) = phoenix.child.try_wait() {
                panic!("Phoenix exited with {status}:\n{}", phoenix.child.log());
            }
            http.get(&health).is_some_and(|(ok, _)| ok)
        },
    );
    testkit::wait_for_port("Phoenix gRPC", grpc_port, Duration::from_secs(60));
    phoenix
}

/// The spans Phoenix (project `default`, at most 1000) stores, only those of `trace_ids` when
/// any are given; none while Phoenix does not answer.
pub fn spans(http: &Http, port: u16, trace_ids: &[String]) -> Vec<Value> {
    let query: String = trace_ids
        .iter()
        .map(|id| format!("&trace_id={id}"))
        .collect();
    let url = format!("http://127.0.0.1:{port}/v1/projects/default/spans/otlpv1?limit=1000{query}");
    http.get(&url)
        .filter(|(ok, _)| *ok)
        .and_then(|(_, v)| v["data"].as_array().cloned())
        .unwrap_or_default()
}

/// [`spans`], polled for up to 60 s (Phoenix inserts what it receives asynchronously)
/// until `enough` holds for their count; panics naming `what` otherwise.
pub fn wait_for_spans(
    http: &Http,
    port: u16,
    trace_ids: &[String],
    what: &str,
    enough: impl Fn(usize) -> bool,
) -> Vec<Value> {
    let mut spans = Vec::new();
    testkit::wait_until(what, Duration::from_secs(60), || {
        spans = self::spans(http, port, trace_ids);
        enough(spans.len())
    });
    spans
}
