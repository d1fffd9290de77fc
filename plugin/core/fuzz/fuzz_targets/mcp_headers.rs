//! Fuzzes the MCP request header forms (`Mcp-Method`, `Mcp-Name` plain and `=?base64?…?=`,
//! `MCP-Protocol-Version`) and the response headers that imply a status: never panics, every
//! kept value is bounded, and the target follows the method only.
#![no_main]

use gatetrace_core::mcp::facts::McpFacts;
use gatetrace_core::mcp::headers::{McpHeaders, ProtocolVersion, VersionHeader, decode_name};
use gatetrace_core::mcp::policy::ResponseSignals;
use gatetrace_core::mcp::{MAX_NAME_BYTES, Target, method, version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(name) = decode_name(data, MAX_NAME_BYTES) {
        assert!(!name.is_empty() && name.len() <= MAX_NAME_BYTES);
        assert!(!name.chars().any(char::is_control));
    }
    if let Some(v) = ProtocolVersion::parse(data) {
        assert!(version::KNOWN.contains(&v.label()) || v.label() == version::OTHER);
    }
    let mut headers = McpHeaders::default();
    let mut signals = ResponseSignals::default();
    for part in data.split(|&b| b == b'\n') {
        let Some((&selector, value)) = part.split_first() else { continue };
        match selector % 6 {
            0 => headers.push_method(value),
            1 => headers.push_name(value),
            2 => headers.push_protocol_version(value),
            3 => signals.push_content_type(value),
            4 => signals.push_www_authenticate(value),
            _ => signals.push_upgrade(value),
        }
    }
    let method = headers.method();
    if let Some(m) = method {
        assert!(method::KNOWN.contains(&m) || m == method::OTHER);
    }
    match headers.target() {
        Some(Target::Tool(_)) => assert_eq!(method, Some(method::TOOLS_CALL)),
        Some(Target::Prompt(_)) => assert_eq!(method, Some(method::PROMPTS_GET)),
        Some(Target::Resource(_)) => assert_eq!(method, Some(method::RESOURCES_READ)),
        None => assert!(!matches!(
            method,
            Some(method::TOOLS_CALL | method::PROMPTS_GET | method::RESOURCES_READ)
        )),
    }
    if headers.trusted() {
        assert!(matches!(headers.protocol_version(), Some(VersionHeader::Valid(v)) if v.trusts_headers()));
    }
    let facts = McpFacts::from_headers(&headers);
    let line = serde_json::to_string(&facts).expect("facts serialize");
    assert!(line.len() <= 1024, "facts are bounded: {}", line.len());
    for asked in [false, true] {
        if let Ok(status) = signals.implied_status(asked) {
            assert!([101, 200, 400, 401, 403].contains(&status));
        }
    }
});
