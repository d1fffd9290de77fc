//! The bindings driven natively, as the JS layer drives them: start-up errors, one MCP exchange
//! to its decoded record, clock precision per runtime, and batches with retries.

use gatetrace_core::mcp::OutcomeKind;
use gatetrace_core::record::{HostKind, Record};

use super::*;

const SALT: [u8; 32] = [7; 32];
/// 2026-01-01T00:00:00.123457Z in milliseconds (what an f64 holds at this date).
const NOW_MS: f64 = 1_767_225_600_123.457;
const MCP_CONFIG: &str = r#"{"service":"tools","mcpRoutes":["/mcp"],"echoRequestId":true}"#;
const CALL: &str =
    r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add","arguments":{"a":1}}}"#;

fn tracer(config: &str, runtime: &str) -> Tracer {
    Tracer::start(config, runtime, &SALT, NOW_MS).expect("valid start")
}

fn records(batch: &Batch) -> Vec<Record> {
    batch
        .body
        .split_inclusive(|&b| b == b'\n')
        .map(|line| Record::from_ndjson_line(line).expect("a record line"))
        .collect()
}

/// A `tools/call` answered with `status` and `body`, finished `elapsed_ms` after it began.
fn call(tracer: &mut Tracer, status: u16, body: &str, elapsed_ms: f64) {
    let headers = format!(
        "content-type\napplication/json\ncontent-length\n{}\ntraceparent\n00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\nauthorization\nBearer secret",
        CALL.len()
    );
    let mut exchange = tracer.begin(
        "POST",
        "/mcp?token=secret",
        Some("mcp.example".into()),
        None,
        &headers,
        NOW_MS,
    );
    assert_eq!(exchange.request_body_wanted(), Some(CALL.len()));
    exchange.request_body(CALL.as_bytes());
    tracer.response_headers(&mut exchange, status, "content-type\napplication/json");
    assert!(exchange.response_body_wanted());
    for chunk in body.as_bytes().chunks(5) {
        tracer.response_chunk(&mut exchange, chunk);
    }
    tracer.finish(exchange, Some(status), NOW_MS + elapsed_ms);
}

#[test]
fn a_bad_key_or_runtime_or_salt_fails_at_start_naming_it() {
    let err = Tracer::start(r#"{"mcpRoute":["/mcp"]}"#, NODE, &SALT, NOW_MS).unwrap_err();
    assert!(err.contains("mcpRoute"), "{err}");
    let err = Tracer::start("{}", "deno", &SALT, NOW_MS).unwrap_err();
    assert!(err.contains("\"deno\""), "{err}");
    let err = Tracer::start("{}", NODE, &SALT[..8], NOW_MS).unwrap_err();
    assert!(err.contains("8 bytes"), "{err}");
}

#[test]
fn an_mcp_call_becomes_the_core_record_with_the_trace_continued_and_no_secret() {
    let mut tracer = tracer(MCP_CONFIG, NODE);
    call(
        &mut tracer,
        200,
        r#"{"jsonrpc":"2.0","id":3,"result":{"content":[],"isError":true}}"#,
        1.5,
    );
    let line = tracer.last_record();
    let batches = tracer.tick(NOW_MS);
    assert_eq!(batches.len(), 1);
    assert_eq!(
        line.as_bytes(),
        batches[0].body(),
        "the last record is the one queued"
    );
    assert_eq!(batches[0].sequence(), "1");
    let body = String::from_utf8(batches[0].body()).expect("utf-8");
    assert!(!body.contains("secret"), "{body}");
    let record = &records(&batches[0])[0];
    assert_eq!(record.host_kind, HostKind::Node);
    assert_eq!(record.service, "tools");
    assert_eq!(record.endpoint, "/mcp");
    assert_eq!(record.status, Some(200));
    assert_eq!(record.trace_id, "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(record.parent_span_id.as_deref(), Some("b7ad6b7169203331"));
    let mcp = record.mcp.as_ref().expect("mcp facts");
    assert_eq!(mcp.method.as_deref(), Some("tools/call"));
    assert_eq!(mcp.tool.as_deref(), Some("add"));
    assert_eq!(mcp.outcome, Some(OutcomeKind::ToolError));
    assert!(
        record.duration_ns.abs_diff(1_500_000) <= 1_000,
        "{}",
        record.duration_ns
    );
}

#[test]
fn edits_set_the_trace_upstream_and_echo_the_request_id() {
    let mut tracer = tracer(MCP_CONFIG, NODE);
    let exchange = tracer.begin("GET", "/", None, None, "x-request-id\nabc-123", NOW_MS);
    assert_eq!(exchange.request_id(), "abc-123");
    let request = exchange.request_edits();
    assert_eq!(request[..2], ["set", "traceparent"]);
    assert!(request[2].starts_with("00-"), "{request:?}");
    assert_eq!(
        exchange.response_edits(),
        ["set", "x-request-id", "abc-123"]
    );
}

#[test]
fn times_are_cut_to_the_runtime_clock_precision() {
    for (runtime, start_ns, duration_ns) in [
        (NODE, 1_767_225_600_123_457_000, 2_345_000),
        (EDGE, 1_767_225_600_123_000_000, 2_000_000),
    ] {
        let mut tracer = tracer("{}", runtime);
        let exchange = tracer.begin("GET", "/", None, None, "", NOW_MS);
        tracer.finish(exchange, Some(204), NOW_MS + 2.345);
        let record = &records(&tracer.tick(NOW_MS)[0])[0];
        // f64 milliseconds carry about 0.2 µs at this date: µs survive, ns do not.
        assert!(
            record.start_unix_ns.abs_diff(start_ns) <= 1_000,
            "{runtime}: {}",
            record.start_unix_ns
        );
        assert_eq!(
            record.start_unix_ns % if runtime == EDGE { 1_000_000 } else { 1_000 },
            0
        );
        assert!(
            record.duration_ns.abs_diff(duration_ns) <= 1_000,
            "{runtime}"
        );
    }
}

#[test]
fn failed_calls_are_retried_with_their_sequence_then_delivered() {
    let mut tracer = tracer("{}", NODE);
    for _ in 0..3 {
        let exchange = tracer.begin("GET", "/", None, None, "", NOW_MS);
        tracer.finish(exchange, Some(200), NOW_MS);
    }
    let first = tracer.tick(NOW_MS);
    assert_eq!((first.len(), first[0].records()), (1, 3.0));
    tracer.settle(first[0].call_id(), 503);
    assert_eq!(tracer.unsettled(), 1);
    let again = tracer.tick(NOW_MS + 1000.0);
    assert_eq!(again[0].sequence(), first[0].sequence());
    tracer.settle(again[0].call_id(), 0);
    let third = tracer.tick(NOW_MS + 2000.0);
    tracer.settle(third[0].call_id(), 200);
    assert_eq!(
        (tracer.delivered(), tracer.dropped(), tracer.unsettled()),
        (3.0, 0.0, 0)
    );
    assert!(tracer.tick(NOW_MS + 3000.0).is_empty());
}
