//! Shared helpers of the plugin's harness tests: loading the built plugin into a proxy-wasm
//! profile, reading batches back into records.
#![allow(dead_code)] // each test file uses its own subset

use gatetrace_core::record::{BATCH_SEQUENCE_HEADER, BATCH_SOURCE_HEADER, Record};
use gatetrace_host::proxy::{DispatchedCall, Profile, ProxyHost, ProxyOptions};

/// The collector cluster the test configurations name.
pub const CLUSTER: &str = "gatetrace_collector";

/// A harness host of `profile` running the built plugin with `config`.
pub fn host(profile: Profile, config: &serde_json::Value) -> ProxyHost {
    host_with(profile, config, |_| {})
}

/// Like [`host`], with a chance to change the options first.
pub fn host_with(
    profile: Profile,
    config: &serde_json::Value,
    change: impl FnOnce(&mut ProxyOptions),
) -> ProxyHost {
    let mut options = ProxyOptions::new(profile);
    options.plugin_config = serde_json::to_vec(config).expect("config JSON");
    options.clusters = vec![CLUSTER.to_owned()];
    change(&mut options);
    ProxyHost::from_file(&testkit::wasm_artifact("gatetrace-proxy.wasm"), options)
        .unwrap_or_else(|e| panic!("plugin failed to start: {e:#}"))
}

/// The records of one batch call, decoded strictly.
pub fn records(call: &DispatchedCall) -> Vec<Record> {
    assert!(
        call.body.ends_with(b"\n"),
        "NDJSON body ends with a newline"
    );
    call.body
        .split_inclusive(|b| *b == b'\n')
        .map(|line| {
            Record::from_ndjson_line(line).unwrap_or_else(|e| {
                panic!("bad record line {:?}: {e}", String::from_utf8_lossy(line))
            })
        })
        .collect()
}

/// `(source, sequence)` of a batch call.
pub fn batch_key(call: &DispatchedCall) -> (String, u64) {
    let source = call
        .headers
        .get(BATCH_SOURCE_HEADER)
        .expect("source header")
        .to_owned();
    let sequence = call
        .headers
        .get(BATCH_SEQUENCE_HEADER)
        .expect("sequence header")
        .parse()
        .expect("numeric sequence");
    (source, sequence)
}

/// Calls dispatched after the first `from` ones.
pub fn calls_since(host: &ProxyHost, from: usize) -> Vec<DispatchedCall> {
    host.dispatched()[from..].to_vec()
}
