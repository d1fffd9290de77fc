//! Fuzzes the MCP response outcome scanner: SSE and JSON bodies fed whole and in random chunks
//! (the chunking drawn from the first input byte) must give the same outcome; never panics.
#![no_main]

use gatetrace_core::mcp::response::{ResponseScanner, scan_response};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [&[u8]; 3] = [b"text/event-stream", b"application/json", b"text/plain"];

fuzz_target!(|data: &[u8]| {
    let Some((&seed, body)) = data.split_first() else { return };
    let limit = 8 + usize::from(seed) * 16;
    for content_type in CONTENT_TYPES {
        let whole = scan_response(Some(content_type), body, limit);
        let mut scanner = ResponseScanner::new(Some(content_type), limit);
        let mut state = u32::from(seed) | 1;
        let mut rest = body;
        while !rest.is_empty() {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let size = ((state >> 16) as usize % 19).min(rest.len());
            scanner.push(&rest[..size]);
            rest = &rest[size..];
        }
        assert_eq!(scanner.finish(), whole, "{}", String::from_utf8_lossy(content_type));
    }
});
