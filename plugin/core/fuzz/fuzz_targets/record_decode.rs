//! Fuzzes record decoding: never panics; anything accepted re-encodes to a line within the
//! cap that decodes again, byte-identical to serde_json and equal when it needed no shrinking.
#![no_main]

use gatetrace_core::record::{MAX_LINE_BYTES, Record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = Record::from_ndjson_line(data) {
        let line = record.to_ndjson_line();
        assert!(line.len() <= MAX_LINE_BYTES);
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        let again = Record::from_ndjson_line(&line).expect("re-decodes");
        let full = serde_json::to_vec(&record).expect("serde encodes");
        if full.len() < MAX_LINE_BYTES {
            assert_eq!(line[..line.len() - 1], full[..], "same bytes as serde_json");
            assert_eq!(again, record);
        }
    }
    let _ = serde_json::from_slice::<serde_json::Value>(data);
});
