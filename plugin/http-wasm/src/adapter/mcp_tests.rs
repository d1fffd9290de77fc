//! The adapter on MCP routes against the scripted [`FakeHost`]: the request body read to its
//! end and written back once (never `buffer_request`), at most one `enable_features`, the
//! status never read unbuffered, and the outcome from a buffered response body.

use super::tests::{config, plugin, records, run};
use crate::host::fake::FakeHost;
use gatetrace_core::mcp::{BodySkipped, FactSource, OutcomeKind, StatusSource};

const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#;
const TOOLS_CALL: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_weather","arguments":{"city":"hunter2"}}}"#;
const SECRET: &str = "hunter2";

fn mcp_post(host: &mut FakeHost, body: &str, extra: &[(&str, &str)]) {
    host.method = b"POST".to_vec();
    host.uri = b"/mcp".to_vec();
    host.request = vec![
        ("host".into(), b"gw.example".to_vec()),
        (
            "accept".into(),
            b"application/json, text/event-stream".to_vec(),
        ),
        ("content-type".into(), b"application/json".to_vec()),
        ("content-length".into(), body.len().to_string().into_bytes()),
    ];
    for (n, v) in extra {
        host.request.push(((*n).into(), v.as_bytes().to_vec()));
    }
    host.request_body = body.as_bytes().to_vec();
    host.written.clear();
    host.response_read = 0;
}

fn count(calls: &[&str], name: &str) -> usize {
    calls.iter().filter(|c| **c == name).count()
}

#[test]
fn an_old_client_body_is_read_to_its_end_and_written_back_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = FakeHost::new(&config(dir.path(), ""));
    let mut plugin = plugin(&mut host);
    for chunk in [usize::MAX, 7, 1] {
        mcp_post(
            &mut host,
            TOOLS_LIST,
            &[("mcp-protocol-version", "2025-06-18")],
        );
        host.read_chunk = chunk;
        host.response = vec![("content-type".into(), b"application/json".to_vec())];
        host.response_body =
            br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"no"}}"#.to_vec();
        let (request_calls, response_calls) = run(&mut plugin, &mut host);
        assert_eq!(host.written, [TOOLS_LIST.as_bytes()], "chunk {chunk}");
        assert_eq!(count(&request_calls, "write_body"), 1);
        assert_eq!(
            count(&request_calls, "enable_features"),
            1,
            "tools/list is buffered"
        );
        assert!(count(&request_calls, "read_body") >= 1);
        assert_eq!(count(&response_calls, "get_status_code"), 1);
        assert!(response_calls.contains(&"read_body"));
        assert!(
            !response_calls.contains(&"write_body"),
            "the response is never changed"
        );
    }
    let recs = records(dir.path());
    assert_eq!(recs.len(), 3);
    for r in &recs {
        let mcp = r.mcp.as_ref().expect("mcp facts");
        assert_eq!(mcp.source, Some(FactSource::Body));
        assert_eq!(mcp.method.as_deref(), Some("tools/list"));
        assert_eq!(
            (mcp.outcome, mcp.error_code),
            (Some(OutcomeKind::Error), Some(-32601))
        );
        assert_eq!(r.status_source, Some(StatusSource::Observed));
    }
}

#[test]
fn a_tool_call_streams_unbuffered_with_an_implied_status() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = FakeHost::new(&config(dir.path(), ""));
    let mut plugin = plugin(&mut host);
    mcp_post(&mut host, TOOLS_CALL, &[]);
    host.response = vec![("content-type".into(), b"text/event-stream".to_vec())];
    let (request_calls, response_calls) = run(&mut plugin, &mut host);
    assert_eq!(host.written, [TOOLS_CALL.as_bytes()]);
    assert!(!request_calls.contains(&"enable_features"));
    assert!(!response_calls.contains(&"get_status_code"));
    assert!(!response_calls.contains(&"read_body"));
    let recs = records(dir.path());
    let r = &recs[0];
    assert_eq!(
        (r.status, r.status_source),
        (Some(200), Some(StatusSource::Implied))
    );
    let mcp = r.mcp.as_ref().expect("mcp");
    assert_eq!(mcp.tool.as_deref(), Some("get_weather"));
    assert_eq!(
        mcp.outcome, None,
        "Traefik cannot know an unbuffered outcome"
    );
    let line = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect::<String>();
    assert!(!line.contains(SECRET));
}

#[test]
fn trusted_headers_or_an_unreadable_body_leave_the_body_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = FakeHost::new(&config(dir.path(), r#""mcpBodyLimit":64,"#));
    let mut plugin = plugin(&mut host);
    // 2026-07-28 headers: trusted, the body is never touched.
    mcp_post(
        &mut host,
        TOOLS_CALL,
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?Z2V0X3dlYXRoZXI=?="),
            ("mcp-param-city", SECRET),
        ],
    );
    let (request_calls, _) = run(&mut plugin, &mut host);
    assert!(!request_calls.contains(&"read_body") && host.written.is_empty());
    // Above the limit: not read, recorded why.
    mcp_post(&mut host, TOOLS_CALL, &[]);
    let (request_calls, _) = run(&mut plugin, &mut host);
    assert!(!request_calls.contains(&"read_body") && host.written.is_empty());
    // No length: not read.
    mcp_post(&mut host, TOOLS_LIST, &[]);
    host.request.retain(|(n, _)| n != "content-length");
    let (request_calls, _) = run(&mut plugin, &mut host);
    assert!(!request_calls.contains(&"read_body") && host.written.is_empty());
    let recs = records(dir.path());
    let mcp: Vec<_> = recs.iter().map(|r| r.mcp.clone().expect("mcp")).collect();
    assert_eq!(mcp[0].source, Some(FactSource::Header));
    assert_eq!(mcp[0].tool.as_deref(), Some("get_weather"));
    assert_eq!(mcp[1].body_skipped, Some(BodySkipped::TooLarge));
    assert_eq!(mcp[2].body_skipped, Some(BodySkipped::NoLength));
    let all = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect::<String>();
    assert!(!all.contains(SECRET));
}
