//! The Traefik plugin through the harness's Traefik profile, which reproduces
//! http-wasm-host-go v0.7.0's request-body handling (issue 12;
//! `host-test/tests/traefik_bodies.rs` proves it): the plugin reads an MCP request body itself
//! and writes it back, so the backend gets a byte-identical body in one part and two, over
//! HTTP/1.1 and HTTP/2, below, at and above `mcpBodyLimit`.

use gatetrace_core::mcp::{BodySkipped, FactSource};
use gatetrace_core::record::Record;
use gatetrace_host::http_wasm::{
    BackendResponse, HttpRequest, TraefikHost, TraefikOptions, traefik_config,
};
use gatetrace_host::wasi::{Mount, WasiOptions};
use serde_json::json;

fn post(body: &[u8], parts: &[usize], protocol: &str) -> HttpRequest {
    let mut request = HttpRequest::get("/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .header("content-length", &body.len().to_string());
    request.method = "POST".into();
    request.protocol = protocol.into();
    request.body = body.to_vec();
    request.body_parts = parts.to_vec();
    request
}

fn plugin(spool: &std::path::Path) -> TraefikHost {
    let options = TraefikOptions {
        config: traefik_config(&json!({"mcpBodyLimit": 200, "spool": {"dir": "/spool"}})),
        wasi: WasiOptions {
            mounts: vec![Mount::parse(&format!("{}:/spool", spool.display())).expect("mount")],
            ..WasiOptions::traefik()
        },
        ..TraefikOptions::default()
    };
    TraefikHost::from_file(&testkit::wasm_artifact("gatetrace-traefik.wasm"), options)
        .unwrap_or_else(|e| panic!("traefik plugin: {e:#}"))
}

fn spool_records(spool: &std::path::Path) -> Vec<Record> {
    testkit::spool_lines(spool)
        .iter()
        .map(|line| Record::from_ndjson_line(line).expect("record"))
        .collect()
}

/// A `tools/call` request body of exactly `len` bytes (padded inside `arguments`).
fn tool_call(len: usize) -> Vec<u8> {
    let head = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"pad":""#;
    let tail = r#""}}}"#;
    let pad = len - head.len() - tail.len();
    format!("{head}{}{tail}", "p".repeat(pad)).into_bytes()
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn the_plugin_leaves_the_backend_byte_identical_bodies() {
    let spool = std::env::temp_dir().join(format!("gatetrace-bodies-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&spool);
    std::fs::create_dir_all(&spool).expect("spool dir");
    let mut host = plugin(&spool);
    let mut expected = Vec::new();
    for len in [150, 200, 201] {
        let body = tool_call(len);
        for parts in [vec![], vec![len / 2, len - len / 2], vec![1, len - 1]] {
            for protocol in ["HTTP/1.1", "HTTP/2.0"] {
                let x = host.handle(
                    &post(&body, &parts, protocol),
                    &BackendResponse::status(200).header("content-type", "text/event-stream"),
                );
                assert_eq!(x.failure, None, "{:?}", x.logs);
                assert!(x.warnings.is_empty(), "{:?}", x.warnings);
                assert_eq!(
                    x.upstream.expect("next").body,
                    body,
                    "{len} bytes in {parts:?} over {protocol}"
                );
                assert_eq!(
                    x.host_calls.get("enable_features"),
                    0,
                    "tools/call is never buffered"
                );
                assert_eq!(x.host_calls.get("write_body"), u64::from(len <= 200));
                expected.push(len <= 200);
            }
        }
    }
    let records = spool_records(&spool);
    let _ = std::fs::remove_dir_all(&spool);
    assert_eq!(records.len(), expected.len());
    for (record, parsed) in records.iter().zip(expected) {
        let mcp = record.mcp.as_ref().expect("mcp facts");
        if parsed {
            assert_eq!(mcp.source, Some(FactSource::Body));
            assert_eq!(mcp.tool.as_deref(), Some("echo"));
        } else {
            assert_eq!(mcp.body_skipped, Some(BodySkipped::TooLarge));
        }
        assert_eq!(record.status, Some(200), "implied by the SSE response");
    }
}
