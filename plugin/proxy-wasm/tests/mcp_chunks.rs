//! Bodies in pieces (issue 12): proxy-wasm hosts call `on_request_body` and `on_response_body`
//! once per piece, so the plugin scans a JSON-RPC request and an SSE response chunk by chunk.
//! Cut in two at every byte (inside the `data:` line, between events, inside a multi-byte UTF-8
//! character, inside the method and the tool name) and into one-byte pieces, they give the same
//! MCP fields as in one piece, in the Envoy and Kong profiles, and every byte passes unchanged.
//! The Traefik profile reads the request pieces as http-wasm-host-go v0.7.0 returns them (its
//! plugin reads the body to its end and writes it back) and gives the same fields too.

mod common;

use std::time::Duration;

use common::{host, records};
use gatetrace_core::mcp::OutcomeKind;
use gatetrace_core::record::Record;
use gatetrace_host::http_wasm::{
    BackendResponse, HttpRequest, TraefikHost, TraefikOptions, traefik_config,
};
use gatetrace_host::proxy::{CallResponse, Profile, ProxyHost};
use gatetrace_host::wasi::{Mount, WasiOptions};
use serde_json::{Value, json};

/// A 2025-06-18 `tools/call` (the body names the operation), UTF-8 in its arguments.
const REQUEST: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get_weather","arguments":{"city":"Zürich ☀"}}}"#;
/// Its answer as an SSE stream: a progress notification, then the result (a tool error) in an
/// event with an id, UTF-8 in both.
const SSE: &str = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":1,\"progress\":0.5,\"message\":\"½ fait\"}}\n\nevent: message\nid: 2\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"isError\":true,\"content\":[{\"type\":\"text\",\"text\":\"Zürich: ☀ ¿?\"}]}}\n\n";
/// Requests between two ticks (the plugin's queue stays far from full).
const PER_TICK: usize = 20;

fn config() -> Value {
    json!({
        "service": "mcp",
        "spool": {"dir": "/spool"},
        "collector": {"tickMs": "100", "batchSize": "100"},
    })
}

fn request(parts: Vec<usize>) -> HttpRequest {
    let mut request = HttpRequest::get("/mcp")
        .header("host", "mcp.example")
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("content-length", &REQUEST.len().to_string())
        .header("mcp-protocol-version", "2025-06-18")
        .header("mcp-session-id", "session-abc");
    request.method = "POST".into();
    request.body = REQUEST.as_bytes().to_vec();
    request.body_parts = parts;
    request
}

fn sse(parts: Vec<usize>) -> BackendResponse {
    let mut backend = BackendResponse::status(200).header("content-type", "text/event-stream");
    backend.body = SSE.as_bytes().to_vec();
    backend.streamed = true;
    backend.body_parts = parts;
    backend
}

/// Every way of cutting a body of `len` bytes this test tries: one piece, two pieces cut at
/// every byte, one-byte pieces.
fn cuts(len: usize) -> Vec<Vec<usize>> {
    let mut cuts = vec![Vec::new()];
    cuts.extend((1..len).map(|at| vec![at]));
    cuts.push(vec![1; len]);
    cuts
}

/// The fields this test compares: status and where it came from, and the MCP facts.
fn facts(record: &Record) -> String {
    format!(
        "{:?} {:?} {:?}",
        record.status, record.status_source, record.mcp
    )
}

/// Ticks the clock and answers every batch; the records they carried.
fn flush(proxy: &mut ProxyHost) -> Vec<Record> {
    proxy.advance(Duration::from_millis(100)).expect("tick");
    let mut out = Vec::new();
    for call in proxy.pending_calls() {
        out.extend(records(&call));
        proxy
            .respond_call(call.id, &CallResponse::status(200))
            .expect("answer");
    }
    out
}

/// Runs every exchange through `profile`, checking that each piece reached the plugin and every
/// byte passed unchanged; the records, in order.
fn through_proxy(profile: Profile, exchanges: &[(HttpRequest, BackendResponse)]) -> Vec<Record> {
    let same: Value = serde_json::from_slice(&traefik_config(&config())).expect("json");
    let mut proxy = host(profile, &same);
    let mut out = Vec::new();
    for (n, (request, backend)) in exchanges.iter().enumerate() {
        let x = proxy.http(request, backend);
        let what = format!(
            "{profile:?}: request parts {:?}, response parts {:?}",
            request.body_parts, backend.body_parts
        );
        assert_eq!(x.failure, None, "{what}: {:?}", x.logs);
        let calls = |name: &str| {
            let shown = format!("{name}=");
            x.callbacks.iter().filter(|c| c.starts_with(&shown)).count()
        };
        assert_eq!(
            calls("on_request_body"),
            pieces(&request.body, &request.body_parts),
            "{what}: one on_request_body per piece"
        );
        assert_eq!(
            calls("on_response_body"),
            pieces(&backend.body, &backend.body_parts),
            "{what}: one on_response_body per piece"
        );
        assert!(
            x.upstream.expect("upstream").body == request.body,
            "{what}: request body changed"
        );
        assert!(
            x.response.body == backend.body,
            "{what}: response body changed"
        );
        if n % PER_TICK == PER_TICK - 1 {
            out.extend(flush(&mut proxy));
        }
    }
    out.extend(flush(&mut proxy));
    assert_eq!(out.len(), exchanges.len(), "{profile:?}: one record each");
    out
}

fn pieces(body: &[u8], parts: &[usize]) -> usize {
    gatetrace_host::model::body_pieces(body, parts).len()
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn a_json_rpc_request_and_an_sse_answer_in_pieces_give_the_facts_of_one_piece() {
    let mut exchanges: Vec<_> = cuts(REQUEST.len())
        .into_iter()
        .map(|parts| (request(parts), sse(Vec::new())))
        .collect();
    exchanges.extend(
        cuts(SSE.len())
            .into_iter()
            .skip(1)
            .map(|parts| (request(Vec::new()), sse(parts))),
    );
    for profile in [Profile::Envoy, Profile::Kong] {
        let records = through_proxy(profile, &exchanges);
        let whole = &records[0];
        let mcp = whole.mcp.as_ref().expect("MCP facts");
        assert_eq!(
            (mcp.method.as_deref(), mcp.tool.as_deref(), mcp.outcome),
            (
                Some("tools/call"),
                Some("get_weather"),
                Some(OutcomeKind::ToolError)
            ),
            "{profile:?}: the facts of the body in one piece"
        );
        for ((request, backend), record) in exchanges.iter().zip(&records) {
            assert_eq!(
                facts(record),
                facts(whole),
                "{profile:?}: request parts {:?}, response parts {:?}",
                request.body_parts,
                backend.body_parts
            );
        }
    }
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn a_json_rpc_request_in_pieces_gives_traefik_the_facts_of_one_piece() {
    let spool = tempfile::tempdir().expect("spool dir");
    let options = TraefikOptions {
        config: traefik_config(&config()),
        wasi: WasiOptions {
            mounts: vec![
                Mount::parse(&format!("{}:/spool", spool.path().display())).expect("mount"),
            ],
            ..WasiOptions::traefik()
        },
        ..TraefikOptions::default()
    };
    let mut traefik =
        TraefikHost::from_file(&testkit::wasm_artifact("gatetrace-traefik.wasm"), options)
            .unwrap_or_else(|e| panic!("traefik plugin: {e:#}"));
    let cuts = cuts(REQUEST.len());
    for protocol in ["HTTP/1.1", "HTTP/2.0"] {
        for parts in &cuts {
            let mut request = request(parts.clone());
            request.protocol = protocol.into();
            let x = traefik.handle(&request, &sse(Vec::new()));
            assert_eq!(x.failure, None, "{protocol} {parts:?}: {:?}", x.logs);
            assert!(
                x.upstream.expect("next").body == request.body,
                "{protocol} {parts:?}: the backend gets the body byte for byte"
            );
        }
    }
    let records = traefik_records(spool.path());
    assert_eq!(records.len(), 2 * cuts.len());
    let whole = &records[0];
    let mcp = whole.mcp.as_ref().expect("MCP facts");
    assert_eq!(
        (mcp.method.as_deref(), mcp.tool.as_deref()),
        (Some("tools/call"), Some("get_weather"))
    );
    for (n, record) in records.iter().enumerate() {
        assert_eq!(
            facts(record),
            facts(whole),
            "parts {:?}",
            cuts[n % cuts.len()]
        );
    }
}

fn traefik_records(spool: &std::path::Path) -> Vec<Record> {
    testkit::spool_lines(spool)
        .iter()
        .map(|line| Record::from_ndjson_line(line).expect("record"))
        .collect()
}
