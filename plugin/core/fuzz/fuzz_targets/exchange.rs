//! Fuzzes the whole per-request lifecycle with arbitrary request line and headers: never
//! panics, always yields a decodable line within the cap, never copies the Authorization value.
#![no_main]

use gatetrace_core::config::Config;
use gatetrace_core::exchange::{Exchange, RequestHead};
use gatetrace_core::ids::Instance;
use gatetrace_core::record::{HostKind, MAX_LINE_BYTES, Record};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 12] = [
    "x-request-id", "traceparent", "tracestate", "authorization", "mcp-session-id", "accept",
    "upgrade", "content-type", "content-length", "user-agent", "www-authenticate", "cookie",
];

fuzz_target!(|data: &[u8]| {
    let config = Config::from_json(br#"{"recordUserAgent": true, "recordClientAddr": true, "recordHost": true, "recordResponseSize": true, "sessionId": "raw"}"#)
        .expect("config");
    let mut parts = data.split(|&b| b == b'\n');
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let mut headers: Vec<(&str, &[u8])> = Vec::new();
    for part in parts {
        let Some((&selector, value)) = part.split_first() else { continue };
        headers.push((NAMES[usize::from(selector) % NAMES.len()], value));
    }
    let head = RequestHead { method, path_and_query: target, authority: Some(target), client_addr: Some(method) };
    let mut instance = Instance::new(&[data.len() as u64]);
    let mut exchange = Exchange::begin(&config, &mut instance, &head, headers.as_mut_slice(), 5, data);
    let _ = exchange.upstream(&config);
    let status = data.first().map(|&b| 100 + u16::from(b) * 2);
    exchange.response_headers(&config, status, headers.as_mut_slice());
    let record = exchange.finish(&config, status, 9, HostKind::Envoy, 0);
    let line = record.to_ndjson_line();
    assert!(line.len() <= MAX_LINE_BYTES);
    Record::from_ndjson_line(&line).expect("the core's own line decodes");
});
