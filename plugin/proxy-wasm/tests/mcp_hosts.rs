//! The same MCP traffic through the harness's Traefik, Envoy and Kong profiles (issue 12) gives
//! the same MCP facts where each host can know them: 2025-06-18 body-based (initialize,
//! tools/list, tools/call answered with SSE, a notification, DELETE) and 2026-07-28
//! header-based (base64 `Mcp-Name`, an `Mcp-Param-*` secret that must appear nowhere).
//! Traefik knows no outcome for an unbuffered `tools/call`; the proxy-wasm hosts scan it.

mod common;

use std::time::Duration;

use common::{host, records};
use gatetrace_core::mcp::{FactSource, OutcomeKind, StatusSource};
use gatetrace_core::record::Record;
use gatetrace_host::http_wasm::{
    BackendResponse, HttpRequest, TraefikHost, TraefikOptions, traefik_config,
};
use gatetrace_host::proxy::{CallResponse, Profile};
use gatetrace_host::wasi::{Mount, WasiOptions};
use serde_json::{Value, json};

const SECRET: &str = "s3cr3t-param-value";
const SESSION: &str = "session-abc";

fn config() -> Value {
    json!({
        "service": "mcp",
        "spool": {"dir": "/spool"},
        "collector": {"tickMs": "100", "batchSize": "100"},
    })
}

fn mcp_post(body: &str, version: &str, extra: &[(&str, &str)]) -> HttpRequest {
    let mut request = HttpRequest::get("/mcp")
        .header("host", "mcp.example")
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("content-length", &body.len().to_string())
        .header("mcp-protocol-version", version)
        .header("mcp-session-id", SESSION);
    for (n, v) in extra {
        request = request.header(n, v);
    }
    request.method = "POST".into();
    request.body = body.as_bytes().to_vec();
    request
}

fn json_reply(body: &str) -> BackendResponse {
    let mut backend = BackendResponse::status(200)
        .header("content-type", "application/json")
        .header("content-length", &body.len().to_string());
    backend.body = body.as_bytes().to_vec();
    backend
}

fn sse_reply(data: &str) -> BackendResponse {
    let mut backend = BackendResponse::status(200).header("content-type", "text/event-stream");
    backend.body = format!("event: message\ndata: {data}\n\n").into_bytes();
    backend.streamed = true;
    backend
}

/// The traffic, with the method each request carries.
fn traffic() -> Vec<(HttpRequest, BackendResponse, &'static str)> {
    let old = "2025-06-18";
    let new = "2026-07-28";
    let mut delete = HttpRequest::get("/mcp")
        .header("host", "mcp.example")
        .header("mcp-protocol-version", old)
        .header("mcp-session-id", SESSION);
    delete.method = "DELETE".into();
    vec![
        (
            mcp_post(
                r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#,
                old,
                &[],
            ),
            json_reply(r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18"}}"#),
            "initialize",
        ),
        (
            mcp_post(
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                old,
                &[],
            ),
            BackendResponse::status(202),
            "notifications/initialized",
        ),
        (
            mcp_post(
                r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
                old,
                &[],
            ),
            json_reply(r#"{"jsonrpc":"2.0","id":2,"error":{"code":-32603,"message":"x"}}"#),
            "tools/list",
        ),
        (
            mcp_post(
                r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add","arguments":{"a":1}}}"#,
                old,
                &[],
            ),
            sse_reply(r#"{"jsonrpc":"2.0","id":3,"result":{"isError":true,"content":[]}}"#),
            "tools/call",
        ),
        (
            mcp_post(
                r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"get_weather","arguments":{"city":"s3cr3t-param-value"}}}"#,
                new,
                &[
                    ("mcp-method", "tools/call"),
                    ("mcp-name", "=?base64?Z2V0X3dlYXRoZXI=?="),
                    ("mcp-param-city", SECRET),
                ],
            ),
            sse_reply(r#"{"jsonrpc":"2.0","id":4,"result":{"content":[]}}"#),
            "tools/call",
        ),
        (delete, BackendResponse::status(204), ""),
    ]
}

fn traefik_records(spool: &std::path::Path) -> Vec<Record> {
    let options = TraefikOptions {
        config: traefik_config(&config()),
        wasi: WasiOptions {
            mounts: vec![Mount::parse(&format!("{}:/spool", spool.display())).expect("mount")],
            ..WasiOptions::traefik()
        },
        ..TraefikOptions::default()
    };
    let mut traefik =
        TraefikHost::from_file(&testkit::wasm_artifact("gatetrace-traefik.wasm"), options)
            .unwrap_or_else(|e| panic!("traefik plugin: {e:#}"));
    for (request, backend, _) in traffic() {
        let x = traefik.handle(&request, &backend);
        assert_eq!(x.failure, None, "{:?}", x.logs);
        assert_eq!(
            x.upstream.expect("next").body,
            request.body,
            "body unchanged"
        );
        assert!(
            x.host_calls.get("enable_features") <= 1,
            "one enable_features at most"
        );
    }
    let mut segments: Vec<_> = std::fs::read_dir(spool)
        .expect("spool")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .collect();
    segments.sort();
    let mut raw = Vec::new();
    for p in &segments {
        raw.extend(std::fs::read(p).expect("segment"));
    }
    assert!(!String::from_utf8_lossy(&raw).contains(SECRET));
    raw.split_inclusive(|b| *b == b'\n')
        .map(|l| Record::from_ndjson_line(l).expect("record"))
        .collect()
}

fn proxy_records(profile: Profile) -> Vec<Record> {
    let same: Value = serde_json::from_slice(&traefik_config(&config())).expect("json");
    let mut proxy = host(profile, &same);
    for (request, backend, _) in traffic() {
        let x = proxy.http(&request, &backend);
        assert_eq!(x.failure, None, "{profile:?}: {:?}", x.logs);
    }
    proxy.advance(Duration::from_millis(100)).expect("tick");
    let mut out = Vec::new();
    for call in proxy.pending_calls() {
        assert!(!String::from_utf8_lossy(&call.body).contains(SECRET));
        out.extend(records(&call));
        proxy
            .respond_call(call.id, &CallResponse::status(200))
            .expect("answer");
    }
    out
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn the_same_mcp_traffic_gives_the_same_mcp_facts_on_every_host() {
    let spool = std::env::temp_dir().join(format!("gatetrace-mcp-hosts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&spool);
    std::fs::create_dir_all(&spool).expect("spool dir");
    let traefik = traefik_records(&spool);
    let _ = std::fs::remove_dir_all(&spool);
    let envoy = proxy_records(Profile::Envoy);
    let kong = proxy_records(Profile::Kong);
    let traffic = traffic();
    assert_eq!(traefik.len(), traffic.len());
    for (name, other) in [("envoy", &envoy), ("kong", &kong)] {
        assert_eq!(other.len(), traffic.len(), "{name}");
        for (n, ((t, o), (_, backend, method))) in
            traefik.iter().zip(other.iter()).zip(&traffic).enumerate()
        {
            assert_eq!(o.status, Some(backend.status), "{name} {n}");
            assert_eq!(o.status_source, Some(StatusSource::Observed));
            assert_eq!(
                t.status, o.status,
                "{name} {n}: traefik observes or implies it"
            );
            let (tm, om) = (t.mcp.clone().expect("mcp"), o.mcp.clone().expect("mcp"));
            if !method.is_empty() {
                assert_eq!(tm.method.as_deref(), Some(*method), "{n}");
            }
            let buffered = t.status_source == Some(StatusSource::Observed);
            let mut om_cmp = om.clone();
            if !buffered {
                assert_eq!(tm.outcome, None, "{n}: traefik cannot know it");
                om_cmp.outcome = None;
                om_cmp.error_code = None;
                om_cmp.outcome_reason = None;
            }
            assert_eq!(tm, om_cmp, "{name} request {n}");
        }
    }
    // What each host could know, spelled out.
    let outcome = |r: &Record| r.mcp.as_ref().and_then(|m| m.outcome);
    assert_eq!(outcome(&traefik[0]), Some(OutcomeKind::Ok));
    assert_eq!(
        traefik[2].mcp.as_ref().and_then(|m| m.error_code),
        Some(-32603)
    );
    assert_eq!(outcome(&traefik[3]), None);
    assert_eq!(outcome(&envoy[3]), Some(OutcomeKind::ToolError));
    assert_eq!(outcome(&kong[4]), Some(OutcomeKind::Ok));
    let header_based = traefik[4].mcp.as_ref().expect("mcp");
    assert_eq!(header_based.source, Some(FactSource::Header));
    assert_eq!(header_based.tool.as_deref(), Some("get_weather"));
    assert_eq!(
        (traefik[3].status, traefik[3].status_source),
        (Some(200), Some(StatusSource::Implied))
    );
}
