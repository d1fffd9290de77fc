//! Fuzzes the MCP JSON-RPC request scanner: never panics, every kept value is bounded (a known
//! method or `_OTHER`, names within their caps, short printable ids), and the record facts
//! built from it serialize and decode.
#![no_main]

use gatetrace_core::mcp::facts::McpFacts;
use gatetrace_core::mcp::request::scan_request;
use gatetrace_core::mcp::{
    MAX_NAME_BYTES, MAX_REQUEST_ID_BYTES, MAX_URI_BYTES, MessageKind, Target, method,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = scan_request(data) else { return };
    if let Some(m) = request.method {
        assert!(method::KNOWN.contains(&m) || m == method::OTHER, "{m}");
    }
    match request.kind {
        MessageKind::Batch => {
            assert!(request.method.is_none() && request.id.is_none() && request.target.is_none());
        }
        MessageKind::Notification => assert!(request.id.is_none() && request.target.is_none()),
        MessageKind::Response => assert!(request.method.is_none() && request.target.is_none()),
        MessageKind::Request => assert!(request.method.is_some() && request.id.is_some()),
    }
    match &request.target {
        Some(Target::Tool(Ok(name)) | Target::Prompt(Ok(name))) => {
            assert!(!name.is_empty() && name.len() <= MAX_NAME_BYTES);
            assert!(!name.chars().any(char::is_control));
        }
        Some(Target::Resource(Ok(uri))) => assert!(!uri.is_empty() && uri.len() <= MAX_URI_BYTES),
        _ => {}
    }
    if let Some(value) = request.id.as_ref().and_then(|id| id.value()) {
        assert!(value.len() <= MAX_REQUEST_ID_BYTES.max(20));
        assert!(!value.chars().any(char::is_control));
    }
    let facts = McpFacts::from_request(&request);
    let line = serde_json::to_string(&facts).expect("facts serialize");
    assert!(line.len() <= 1024, "facts are bounded: {}", line.len());
    let decoded: McpFacts = serde_json::from_str(&line).expect("facts decode");
    assert_eq!(decoded, facts);
});
