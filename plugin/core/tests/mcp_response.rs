//! The MCP response outcome scanner on SDK-shaped and hostile bodies: JSON and SSE, whole and
//! in every chunking (the proxy-wasm adapter feeds body chunks as they pass).

use gatetrace_core::mcp::response::{ResponseScanner, scan_response};
use gatetrace_core::mcp::{Outcome, UnknownOutcome};

const JSON: Option<&[u8]> = Some(b"application/json");
const SSE: Option<&[u8]> = Some(b"text/event-stream");
const LIMIT: usize = 64 * 1024;

/// The outcome of `body` whole, after checking that cutting it into two chunks anywhere (every
/// place for bodies up to 2 KiB, 257 places spread over longer ones), and into one-byte chunks,
/// gives the same outcome.
fn outcome(content_type: Option<&[u8]>, body: &[u8], limit: usize) -> Outcome {
    let whole = scan_response(content_type, body, limit);
    let step = (body.len() / 256).max(1);
    let step = if body.len() <= 2048 { 1 } else { step };
    for cut in (0..=body.len()).step_by(step) {
        let mut scanner = ResponseScanner::new(content_type, limit);
        scanner.push(&body[..cut]);
        scanner.push(&body[cut..]);
        assert_eq!(
            scanner.finish(),
            whole,
            "cut at {cut}: {}",
            String::from_utf8_lossy(body)
        );
    }
    let mut bytewise = ResponseScanner::new(content_type, limit);
    for byte in body.chunks(1) {
        bytewise.push(byte);
    }
    assert_eq!(bytewise.finish(), whole, "one byte at a time");
    whole
}

fn sse(body: &str) -> Outcome {
    outcome(SSE, body.as_bytes(), LIMIT)
}

fn json(body: &str) -> Outcome {
    outcome(JSON, body.as_bytes(), LIMIT)
}

#[test]
fn json_bodies() {
    let cases = [
        (
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a","inputSchema":{"type":"object"}}]}}"#,
            Outcome::Ok,
        ),
        (r#"{"jsonrpc":"2.0","id":1,"result":{}}"#, Outcome::Ok),
        (r#"{"jsonrpc":"2.0","id":1,"result":null}"#, Outcome::Ok),
        (
            r#"{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"boom"}],"isError":true}}"#,
            Outcome::ToolError,
        ),
        (
            r#"{"jsonrpc":"2.0","id":2,"result":{"isError":false}}"#,
            Outcome::Ok,
        ),
        (
            r#"{"jsonrpc":"2.0","id":2,"result":{"isError":"true"}}"#,
            Outcome::Ok,
        ),
        (
            r#"{"jsonrpc":"2.0","id":3,"result":{"resultType":"input_required","inputRequests":{"a":{}}}}"#,
            Outcome::InputRequired,
        ),
        (
            r#"{"jsonrpc":"2.0","id":3,"result":{"resultType":"complete","content":[]}}"#,
            Outcome::Ok,
        ),
        (
            r#"{"jsonrpc":"2.0","id":4,"error":{"code":-32602,"message":"Unknown tool: nope"}}"#,
            Outcome::Error(-32602),
        ),
        (
            r#"{"jsonrpc":"2.0","id":4,"error":{"message":"x","code":-32020,"data":{"code":1}}}"#,
            Outcome::Error(-32020),
        ),
        (
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#,
            Outcome::Error(-32700),
        ),
        (
            r#"{"jsonrpc":"2.0","id":4,"error":{"code":"x"}}"#,
            Outcome::Unknown(UnknownOutcome::Invalid),
        ),
        (
            r#"{"jsonrpc":"2.0","id":4,"error":{"code":1.5}}"#,
            Outcome::Unknown(UnknownOutcome::Invalid),
        ),
        (
            r#"{"jsonrpc":"2.0","id":4,"error":"oops"}"#,
            Outcome::Unknown(UnknownOutcome::Invalid),
        ),
        (
            r#"{"id":4,"result":{},"error":{"code":7}}"#,
            Outcome::Error(7),
        ),
        (
            r#"[{"jsonrpc":"2.0","id":1,"result":{}}]"#,
            Outcome::Unknown(UnknownOutcome::Batch),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"notifications/message","params":{}}"#,
            Outcome::Unknown(UnknownOutcome::NoResponse),
        ),
        ("", Outcome::Unknown(UnknownOutcome::NoResponse)),
        (" \r\n", Outcome::Unknown(UnknownOutcome::NoResponse)),
        (
            r#"{"jsonrpc":"2.0","id":1}"#,
            Outcome::Unknown(UnknownOutcome::Invalid),
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"result":{}"#,
            Outcome::Unknown(UnknownOutcome::Invalid),
        ),
        (
            "<html>502 Bad Gateway</html>",
            Outcome::Unknown(UnknownOutcome::Invalid),
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(json(body), expected, "{body}");
    }
    assert_eq!(
        outcome(
            Some(b"Application/JSON; charset=utf-8"),
            br#"{"id":1,"result":{}}"#,
            LIMIT
        ),
        Outcome::Ok
    );
}

#[test]
fn fastmcp_sse_streams() {
    // FastMCP (Python SDK) answers a POST with one event per message, CRLF line ends.
    let one = "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{}}}\r\n\r\n";
    assert_eq!(sse(one), Outcome::Ok);
    let progress_then_tool_error = concat!(
        "event: message\r\ndata: {\"method\":\"notifications/progress\",\"params\":{\"progressToken\":1,\"progress\":0.5},\"jsonrpc\":\"2.0\"}\r\n\r\n",
        "event: message\r\ndata: {\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"x\"},\"jsonrpc\":\"2.0\"}\r\n\r\n",
        "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"bad\"}],\"isError\":true}}\r\n\r\n",
    );
    assert_eq!(sse(progress_then_tool_error), Outcome::ToolError);
    // An elicitation request from the server (it has a method and an id) is not the response.
    let elicit_then_ok = concat!(
        "event: message\r\ndata: {\"method\":\"elicitation/create\",\"params\":{\"message\":\"name?\",\"requestedSchema\":{}},\"jsonrpc\":\"2.0\",\"id\":0}\r\n\r\n",
        "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{\"content\":[]}}\r\n\r\n",
    );
    assert_eq!(sse(elicit_then_ok), Outcome::Ok);
    let only_requests = "event: message\r\ndata: {\"method\":\"elicitation/create\",\"jsonrpc\":\"2.0\",\"id\":0}\r\n\r\n";
    assert_eq!(
        sse(only_requests),
        Outcome::Unknown(UnknownOutcome::NoResponse)
    );
    // 2025-11-25 servers prime the stream with an id and empty data.
    let primed = "id: 0-1\ndata:\n\nid: 0-2\ndata: {\"jsonrpc\":\"2.0\",\"id\":5,\"error\":{\"code\":-32603,\"message\":\"x\"}}\n\n";
    assert_eq!(sse(primed), Outcome::Error(-32603));
}

#[test]
fn sse_framing_follows_the_whatwg_rules() {
    let ok = r#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
    let cases = [
        (format!("data: {ok}\n\n"), Outcome::Ok),
        (format!("data:{ok}\n\n"), Outcome::Ok),
        (format!("data:  {ok}\n\n"), Outcome::Ok),
        (format!("data: {ok}\r\r"), Outcome::Ok),
        (format!("data: {ok}\r\n\r\n"), Outcome::Ok),
        (format!("data: {ok}\r\n\n"), Outcome::Ok),
        (format!("data: {ok}\n\r"), Outcome::Ok),
        (format!("\u{feff}data: {ok}\n\n"), Outcome::Ok),
        (format!(": keep-alive\n\n: ping\ndata: {ok}\n\n"), Outcome::Ok),
        (format!("retry: 1000\nid: 7\nevent: message\ndata: {ok}\n\n"), Outcome::Ok),
        // Data lines join with LF, which JSON reads as whitespace.
        ("data: {\"jsonrpc\":\"2.0\",\ndata: \"id\":1,\ndata: \"result\":{\"isError\":true}}\n\n".to_string(), Outcome::ToolError),
        ("data: {\"jsonrpc\":\"2.0\",\rdata: \"id\":1,\r\ndata: \"result\":{}}\r\r".to_string(), Outcome::Ok),
        // `data` without a colon is a data line with an empty value.
        (format!("data\ndata: {ok}\n\n"), Outcome::Ok),
        // Fields other than `data`, however they start, are ignored.
        (format!("datax: {{}}\ndat: 1\nDATA: 2\ndata: {ok}\n\n"), Outcome::Ok),
        // The last event that is a response decides.
        (format!("data: {{\"id\":1,\"error\":{{\"code\":-1}}}}\n\ndata: {ok}\n\n"), Outcome::Ok),
        (format!("data: {ok}\n\ndata: {{\"id\":1,\"error\":{{\"code\":-1}}}}\n\n"), Outcome::Error(-1)),
        // An event cut off before its blank line is not dispatched.
        (format!("data: {ok}\n"), Outcome::Unknown(UnknownOutcome::NoResponse)),
        (format!("data: {ok}"), Outcome::Unknown(UnknownOutcome::NoResponse)),
        (format!("data: {ok}\n\ndata: {{\"id\":2,\"error\":{{\"code\":-1}}}}\n"), Outcome::Ok),
        // A BOM anywhere but the start is part of the field name.
        (format!("\n\u{feff}data: {ok}\n\n"), Outcome::Unknown(UnknownOutcome::NoResponse)),
        // An unreadable event after the response: nothing certain remains.
        (format!("data: {ok}\n\ndata: {{oops\n\n"), Outcome::Unknown(UnknownOutcome::Invalid)),
        (format!("data: [{ok}]\n\n"), Outcome::Unknown(UnknownOutcome::Batch)),
        (String::new(), Outcome::Unknown(UnknownOutcome::NoResponse)),
        ("\n\n\r\n\r\r".to_string(), Outcome::Unknown(UnknownOutcome::NoResponse)),
    ];
    for (body, expected) in cases {
        assert_eq!(sse(&body), expected, "{body:?}");
    }
}

#[test]
fn memory_is_bounded_by_one_event() {
    let small = r#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
    let limit = 200;
    let big_note = format!(
        r#"{{"jsonrpc":"2.0","method":"notifications/message","params":{{"data":"{}"}}}}"#,
        "x".repeat(500)
    );
    let body = format!("data: {big_note}\n\ndata: {small}\n\n");
    assert_eq!(
        outcome(SSE, body.as_bytes(), limit),
        Outcome::Ok,
        "a big event before the response"
    );
    let body = format!("data: {small}\n\ndata: {big_note}\n\n");
    assert_eq!(
        outcome(SSE, body.as_bytes(), limit),
        Outcome::Unknown(UnknownOutcome::TooLarge),
        "a big last event could have been the response"
    );
    let exact = format!("data: {small}\n\n");
    assert_eq!(outcome(SSE, exact.as_bytes(), small.len() + 1), Outcome::Ok);
    assert_eq!(
        outcome(SSE, exact.as_bytes(), small.len()),
        Outcome::Unknown(UnknownOutcome::TooLarge)
    );
    assert_eq!(outcome(JSON, small.as_bytes(), small.len()), Outcome::Ok);
    assert_eq!(
        outcome(JSON, small.as_bytes(), small.len() - 1),
        Outcome::Unknown(UnknownOutcome::TooLarge)
    );
    // A huge stream of small events and comments keeps nothing but the last outcome.
    let mut scanner = ResponseScanner::new(SSE, limit);
    for i in 0..100_000 {
        scanner.push(b": keep-alive\n\ndata: {\"method\":\"notifications/progress\"}\n\n");
        if i == 50_000 {
            scanner.push(format!("data: {small}\n\n").as_bytes());
        }
    }
    assert_eq!(scanner.finish(), Outcome::Ok);
    // One endless line (no line end) is dropped past the limit, never buffered.
    let mut endless = ResponseScanner::new(SSE, limit);
    endless.push(b"data: ");
    for _ in 0..10_000 {
        endless.push(&[b'x'; 1000]);
    }
    endless.push(b"\n\n");
    assert_eq!(endless.finish(), Outcome::Unknown(UnknownOutcome::TooLarge));
}

#[test]
fn hostile_bodies() {
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":1,"result":{{"content":{}{}}}}}"#,
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    assert_eq!(
        outcome(JSON, deep.as_bytes(), 1 << 20),
        Outcome::Ok,
        "deep but skipped"
    );
    let huge_numbers = format!(
        r#"{{"id":1,"result":{{"n":{},"e":1e999}}}}"#,
        "9".repeat(10_000)
    );
    assert_eq!(
        json(&huge_numbers),
        Outcome::Ok,
        "skipped numbers are not parsed"
    );
    let cases: [(&[u8], Outcome); 7] = [
        (
            br#"{"id":1,"error":{"code":1e999}}"#,
            Outcome::Unknown(UnknownOutcome::Invalid),
        ),
        (
            br#"{"id":1,"error":{"code":99999999999999999999}}"#,
            Outcome::Unknown(UnknownOutcome::Invalid),
        ),
        (
            br#"{"id":1,"error":{"code":-9223372036854775808}}"#,
            Outcome::Error(i64::MIN),
        ),
        // Skipped strings are not checked for UTF-8: the response is still a result.
        (b"{\"id\":1,\"result\":{\"text\":\"\xff\"}}", Outcome::Ok),
        (
            b"{\"id\":1,\"result\":{\"resultType\":\"\xff\"}}",
            Outcome::Unknown(UnknownOutcome::Invalid),
        ),
        (
            b"{\"id\":1,\"result\":{\"isError\":tru",
            Outcome::Unknown(UnknownOutcome::Invalid),
        ),
        (b"\x00\x01\x02", Outcome::Unknown(UnknownOutcome::Invalid)),
    ];
    for (body, expected) in cases {
        assert_eq!(
            outcome(JSON, body, LIMIT),
            expected,
            "{}",
            String::from_utf8_lossy(body)
        );
        let mut event = b"data: ".to_vec();
        event.extend_from_slice(body);
        event.extend_from_slice(b"\n\n");
        assert_eq!(outcome(SSE, &event, LIMIT), expected, "as an SSE event");
    }
    let cr_only =
        "event: message\rdata: {\"id\":1,\"result\":{\"resultType\":\"input_required\"}}\r\r";
    assert_eq!(sse(cr_only), Outcome::InputRequired);
    let garbage: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let _ = outcome(SSE, &garbage, 64);
    let _ = outcome(JSON, &garbage, LIMIT);
}

#[test]
fn other_content_types() {
    assert_eq!(
        outcome(None, b"", LIMIT),
        Outcome::Unknown(UnknownOutcome::NoResponse),
        "202 Accepted without a body"
    );
    assert_eq!(
        outcome(Some(b"text/plain"), b"Accepted", LIMIT),
        Outcome::Unknown(UnknownOutcome::ContentType)
    );
    assert_eq!(
        outcome(
            Some(b"application/json-seq"),
            br#"{"id":1,"result":{}}"#,
            LIMIT
        ),
        Outcome::Unknown(UnknownOutcome::ContentType)
    );
    assert_eq!(
        outcome(
            Some(b" text/event-stream ; charset=utf-8"),
            b"data: {\"id\":1,\"result\":{}}\n\n",
            LIMIT
        ),
        Outcome::Ok
    );
}
