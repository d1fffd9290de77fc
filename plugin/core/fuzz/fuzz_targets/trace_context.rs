//! Fuzzes `traceparent` and `tracestate` handling through the types `Exchange::begin` uses:
//! valid parses re-render identically, a header sent twice is refused, joined `tracestate`
//! is bounded and stable when joined again.
#![no_main]

use gatetrace_core::trace::{
    IncomingTraceparent, MAX_TRACESTATE_MEMBERS, SpanContext, SpanId, TraceId, TracestateBuilder,
    parse_traceparent,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(tp) = parse_traceparent(data) {
        assert_ne!(tp.version, 0xff);
        assert!(tp.trace_id.is_valid() && tp.parent_id.is_valid());
        let ctx = SpanContext::continue_or_start(Some(&tp), TraceId([1; 16]), SpanId([2; 8]), 0.5);
        let out = ctx.traceparent();
        let again = parse_traceparent(out.as_bytes()).expect("outgoing traceparent parses");
        assert_eq!(again.version, 0);
        assert_eq!(again.trace_id, tp.trace_id);
        assert_eq!(again.flags & !1, 0, "only the sampled flag is ever sent");
        if tp.version == 0 {
            assert_eq!(data.len(), 55 + data.iter().filter(|b| **b == b' ' || **b == b'\t').count());
        }
    }
    let values: Vec<&[u8]> = data.split(|&b| b == 0).collect();
    let mut incoming = IncomingTraceparent::default();
    let mut tracestate = TracestateBuilder::default();
    for value in &values {
        incoming.push(value);
        tracestate.push(value);
    }
    let incoming = incoming.finish();
    if values.len() > 1 {
        assert!(incoming.is_none());
    } else {
        assert_eq!(incoming, parse_traceparent(data));
    }
    assert_eq!(tracestate.values(), values.len());
    let unchanged = tracestate.unchanged();
    if let Some(joined) = tracestate.finish() {
        assert!(joined.split(',').count() <= MAX_TRACESTATE_MEMBERS);
        assert!(joined.len() <= data.len());
        assert!(joined.bytes().all(|b| (0x20..0x7f).contains(&b)));
        assert!(!unchanged || joined.as_bytes() == data, "unchanged means the one value as sent");
        let mut again = TracestateBuilder::default();
        again.push(joined.as_bytes());
        assert!(again.unchanged());
        assert_eq!(again.finish().as_deref(), Some(joined.as_str()));
    }
});
