//! The proxy-wasm plugin configured twice (a second `on_configure` on the same root context,
//! as a host does on a configuration update): records queued before it are shipped after it,
//! in the same source's sequence, or counted as dropped when the new queue is smaller.

use std::time::Duration;

use gatetrace_core::record::{BATCH_SEQUENCE_HEADER, BATCH_SOURCE_HEADER, Record};
use gatetrace_host::http_wasm::{BackendResponse, HttpRequest};
use gatetrace_host::proxy::{CallResponse, DispatchedCall, Profile, ProxyHost, ProxyOptions};

const CLUSTER: &str = "gatetrace_collector";

fn plugin(profile: Profile, config: &str) -> ProxyHost {
    let mut options = ProxyOptions::new(profile);
    options.plugin_config = config.as_bytes().to_vec();
    options.clusters.push(CLUSTER.into());
    ProxyHost::from_file(&testkit::wasm_artifact("gatetrace-proxy.wasm"), options).unwrap()
}

fn request(host: &mut ProxyHost, id: &str) {
    let x = host.http(
        &HttpRequest::get("/register").header("x-request-id", id),
        &BackendResponse::status(201),
    );
    assert_eq!(x.failure, None);
}

/// Lets two ticks pass and answers every batch they sent with 202; returns the batches.
fn ship(host: &mut ProxyHost) -> Vec<DispatchedCall> {
    host.advance(Duration::from_secs(2)).unwrap();
    let calls = host.pending_calls();
    for call in &calls {
        host.respond_call(call.id, &CallResponse::status(202))
            .unwrap();
    }
    calls
}

fn records(calls: &[DispatchedCall]) -> Vec<Record> {
    calls
        .iter()
        .flat_map(|c| c.body.split_inclusive(|&b| b == b'\n'))
        .map(|line| Record::from_ndjson_line(line).expect("a valid record line"))
        .collect()
}

fn header<'c>(call: &'c DispatchedCall, name: &str) -> &'c str {
    call.headers.get(name).unwrap_or_default()
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn records_queued_before_a_second_configure_are_shipped_after_it() {
    for profile in [Profile::Envoy, Profile::Kong] {
        let mut host = plugin(profile, r#"{"service":"first"}"#);
        request(&mut host, "req-0");
        let before = ship(&mut host);
        assert_eq!(before.len(), 1, "{profile:?}");

        for id in ["req-1", "req-2", "req-3"] {
            request(&mut host, id);
        }
        // A stream still open across the change finishes under the new configuration.
        let open = host.begin_http(&HttpRequest::get("/register").header("x-request-id", "req-4"));
        assert!(
            host.reconfigure(br#"{"service":"second","collector":{"tickMs":500}}"#.to_vec())
                .unwrap(),
            "{profile:?}: the new configuration is accepted"
        );
        assert_eq!(host.tick_period_ms(), 500, "{profile:?}");
        let x = host.end_http(open, &BackendResponse::status(200));
        assert_eq!(x.failure, None, "{profile:?}");
        request(&mut host, "req-5");

        let after = ship(&mut host);
        let shipped = records(&after);
        let ids: Vec<&str> = shipped.iter().map(|r| r.request_id.as_str()).collect();
        assert_eq!(
            ids,
            ["req-1", "req-2", "req-3", "req-4", "req-5"],
            "{profile:?}: nothing queued was lost"
        );
        assert!(shipped.iter().all(|r| r.dropped == 0), "{profile:?}");
        assert_eq!(
            header(&after[0], BATCH_SOURCE_HEADER),
            header(&before[0], BATCH_SOURCE_HEADER),
            "{profile:?}: one source across configurations"
        );
        assert_eq!(header(&after[0], BATCH_SEQUENCE_HEADER), "2", "{profile:?}");
        // Records made after the change carry the new configuration.
        assert_eq!(shipped[4].service, "second", "{profile:?}");
        assert!(host.unfinished_contexts().is_empty(), "{profile:?}");
    }
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn a_smaller_queue_after_a_second_configure_counts_what_it_drops() {
    for profile in [Profile::Envoy, Profile::Kong] {
        let mut host = plugin(profile, r#"{"service":"first"}"#);
        for id in ["req-1", "req-2", "req-3", "req-4"] {
            request(&mut host, id);
        }
        assert!(
            host.reconfigure(br#"{"service":"first","collector":{"queueCapacity":1}}"#.to_vec())
                .unwrap(),
            "{profile:?}"
        );
        let shipped = records(&ship(&mut host));
        let ids: Vec<&str> = shipped.iter().map(|r| r.request_id.as_str()).collect();
        assert_eq!(ids, ["req-4"], "{profile:?}: the newest record kept");
        assert_eq!(
            shipped[0].dropped, 3,
            "{profile:?}: the three that no longer fit are reported dropped"
        );
    }
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn a_refused_second_configure_keeps_the_running_one() {
    let mut host = plugin(Profile::Envoy, r#"{"service":"first"}"#);
    request(&mut host, "req-1");
    assert!(
        !host
            .reconfigure(br#"{"service":"first","bogusKey":1}"#.to_vec())
            .unwrap(),
        "an unknown key is refused"
    );
    let logs: Vec<String> = host.take_logs().iter().map(ToString::to_string).collect();
    assert!(logs.iter().any(|l| l.contains("bogusKey")), "{logs:?}");
    request(&mut host, "req-2");
    let ids: Vec<String> = records(&ship(&mut host))
        .into_iter()
        .map(|r| r.request_id)
        .collect();
    assert_eq!(ids, ["req-1", "req-2"]);
}
