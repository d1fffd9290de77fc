//! Fuzzes the incoming request id (the policy and `IncomingRequestId`, as `Exchange::begin`
//! uses them) and id generation: kept ids are safe to copy into headers and JSON, an id sent
//! twice is never kept; generated ids are well-formed for any entropy and clock.
#![no_main]

use gatetrace_core::ids::{
    IncomingRequestId, Instance, RequestIdPolicy, accept_incoming_request_id,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let max = usize::from(data.first().copied().unwrap_or(0)) + 1;
    let value = data.get(1..).unwrap_or_default();
    let validated = accept_incoming_request_id(value, RequestIdPolicy::Validate, max);
    let trusted = accept_incoming_request_id(value, RequestIdPolicy::Trust, max);
    assert!(!accept_incoming_request_id(value, RequestIdPolicy::Replace, max));
    assert!(!validated || trusted, "validate is stricter than trust");
    if trusted {
        assert!(!value.is_empty() && value.len() <= max);
        assert!(value.iter().all(|&b| b.is_ascii_graphic() && b != b'"' && b != b'\\'));
    }
    for policy in [RequestIdPolicy::Trust, RequestIdPolicy::Validate, RequestIdPolicy::Replace] {
        let values: Vec<&[u8]> = value.split(|&b| b == b'\n').collect();
        let mut incoming = IncomingRequestId::new(policy, max);
        for v in &values {
            incoming.push(v);
        }
        match incoming.finish() {
            Some(id) => {
                assert_eq!(values.len(), 1, "an id sent twice is never kept");
                assert_eq!(id.as_bytes(), value);
                assert!(accept_incoming_request_id(value, policy, max));
            }
            None => assert!(values.len() > 1 || !accept_incoming_request_id(value, policy, max)),
        }
    }
    let mut salt = [0u64; 2];
    for (i, chunk) in data.chunks(8).take(2).enumerate() {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        salt[i] = u64::from_le_bytes(word);
    }
    let mut instance = Instance::new(&salt);
    let first = instance.next_ids(salt[0], value);
    let second = instance.next_ids(salt[0], value);
    assert_ne!(first.request_id, second.request_id);
    assert!(first.trace_id.is_valid() && first.span_id.is_valid());
    assert!(first.request_id_hex().iter().all(u8::is_ascii_hexdigit));
});
