//! The built plugin in the harness's Envoy and Kong profiles: ids and trace context upstream,
//! complete records, batches only from ticks, retries with a kept sequence, counted drops,
//! bounded memory, and a bad configuration refused naming its key.

mod common;

use std::time::Duration;

use common::{CLUSTER, batch_key, calls_since, host, records};
use gatetrace_core::record::{HostKind, Record};
use gatetrace_host::http_wasm::{BackendResponse, HttpRequest};
use gatetrace_host::proxy::{CallResponse, CallState, Profile, ProxyHost, ProxyOptions};
use serde_json::json;

const PROFILES: [(Profile, HostKind); 2] = [
    (Profile::Envoy, HostKind::Envoy),
    (Profile::Kong, HostKind::Kong),
];

fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Sends one request through, asserting the stream itself went well; returns the upstream
/// request headers.
fn send(host: &mut ProxyHost, request: &HttpRequest, status: u16) -> gatetrace_host::Headers {
    let exchange = host.http(request, &BackendResponse::status(status));
    assert_eq!(exchange.failure, None, "stream failed: {:?}", exchange.logs);
    assert!(
        exchange.dispatched.is_empty(),
        "nothing dispatched from a stream"
    );
    assert_eq!(exchange.response.status, status);
    exchange.upstream.expect("request went upstream").headers
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn ids_and_trace_context_go_upstream_and_records_leave_in_tick_batches() {
    for (profile, kind) in PROFILES {
        let config = json!({
            "service": "mcp-server",
            "recordHost": true,
            "collector": {"tickMs": "100", "batchSize": "50", "token": "s3cret-token"},
        });
        let mut host = host(profile, &config);
        assert_eq!(
            host.tick_period_ms(),
            100,
            "{profile:?}: tick period from config"
        );

        let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let continued = send(
            &mut host,
            &HttpRequest::get("/mcp?secret=1")
                .header("traceparent", parent)
                .header("authorization", "Bearer abc"),
            200,
        );
        let fresh = send(&mut host, &HttpRequest::get("/register/12345"), 404);
        let trusted = send(
            &mut host,
            &HttpRequest::get("/health").header("x-request-id", "req-42"),
            200,
        );

        // Upstream headers.
        let tp = continued.get("traceparent").expect("traceparent upstream");
        assert!(
            tp.starts_with("00-0af7651916cd43dd8448eb211c80319c-"),
            "{tp}"
        );
        assert!(!tp.contains("b7ad6b7169203331"), "a new span id: {tp}");
        assert!(tp.ends_with("-01"), "sampled flag kept: {tp}");
        let new_id = continued.get("x-request-id").expect("request id upstream");
        assert!(is_lower_hex(new_id, 32), "{new_id}");
        let fresh_tp = fresh.get("traceparent").expect("traceparent started");
        assert_eq!(fresh_tp.len(), 55);
        assert_eq!(
            trusted.get("x-request-id"),
            Some("req-42"),
            "valid incoming id kept"
        );

        // Nothing leaves before the tick; the tick sends one batch with all three.
        assert!(
            host.dispatched().is_empty(),
            "{profile:?}: no dispatch before a tick"
        );
        host.advance(Duration::from_millis(100)).expect("tick");
        let calls = host.pending_calls();
        assert_eq!(calls.len(), 1, "{profile:?}: one batch");
        let call = &calls[0];
        assert_eq!(call.from_callback, "on_tick");
        assert_eq!(call.cluster, CLUSTER);
        assert_eq!(call.timeout_ms, 2000);
        let h = &call.headers;
        assert_eq!(h.get(":method"), Some("POST"));
        assert_eq!(h.get(":path"), Some("/v1/records"));
        assert_eq!(h.get(":authority"), Some("gatetrace-collector"));
        assert_eq!(h.get("content-type"), Some("application/x-ndjson"));
        assert_eq!(h.get("authorization"), Some("Bearer s3cret-token"));
        let (source, sequence) = batch_key(call);
        assert!(is_lower_hex(&source, 32), "{source}");
        assert_eq!(sequence, 1);

        let got = records(call);
        assert_eq!(got.len(), 3);
        let by_id = |id: &str| -> &Record {
            got.iter()
                .find(|r| r.request_id == id)
                .unwrap_or_else(|| panic!("no record for {id}: {got:?}"))
        };
        let first = by_id(new_id);
        assert_eq!(first.trace_id, "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(first.parent_span_id.as_deref(), Some("b7ad6b7169203331"));
        assert_eq!(format!("00-{}-{}-01", first.trace_id, first.span_id), tp);
        assert!(first.sampled);
        assert_eq!(first.method, "GET");
        assert_eq!(first.endpoint, "/mcp", "no query string");
        assert_eq!(first.status, Some(200));
        assert_eq!(first.service, "mcp-server");
        assert_eq!(first.host.as_deref(), Some("gateway.local"));
        assert_eq!(first.host_kind, kind);
        assert_eq!(first.dropped, 0);
        assert!(first.start_unix_ns > 0);
        let second = by_id(fresh.get("x-request-id").expect("generated id"));
        assert_eq!(second.status, Some(404));
        assert_eq!(second.endpoint, "/register/{id}");
        assert_eq!(second.parent_span_id, None);
        assert_eq!(
            format!("00-{}-{}-01", second.trace_id, second.span_id),
            fresh_tp
        );
        assert_eq!(by_id("req-42").endpoint, "/health");
        let body = String::from_utf8_lossy(&call.body);
        assert!(
            !body.contains("secret=1") && !body.contains("abc\""),
            "{body}"
        );

        // Acknowledged: later ticks have nothing to send.
        host.respond_call(call.id, &CallResponse::status(200))
            .expect("answer");
        host.advance(Duration::from_millis(300)).expect("ticks");
        assert_eq!(host.dispatched().len(), 1, "{profile:?}: queue empty");
        assert_eq!(host.broken(), None);
    }
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn failed_batches_retry_with_their_sequence_then_count_drops() {
    for (profile, _) in PROFILES {
        let config = json!({
            "collector": {"tickMs": "100", "timeoutMs": "500", "maxRetries": "2"},
        });
        let mut host = host(profile, &config);
        for _ in 0..5 {
            send(&mut host, &HttpRequest::get("/mcp"), 200);
        }
        // Attempt 1: 500. Attempt 2: connection failure. Attempt 3: timeout.
        host.advance(Duration::from_millis(100)).expect("tick");
        let first = host.pending_calls().remove(0);
        host.respond_call(first.id, &CallResponse::status(500))
            .expect("answer");
        host.advance(Duration::from_millis(100)).expect("tick");
        let second = host.pending_calls().remove(0);
        host.fail_call(second.id, "connection refused")
            .expect("fail");
        host.advance(Duration::from_millis(100)).expect("tick");
        let third = host.pending_calls().remove(0);
        host.advance(Duration::from_millis(500)).expect("time out");
        assert_eq!(
            host.dispatched()
                .iter()
                .find(|c| c.id == third.id)
                .map(|c| c.state.clone()),
            Some(CallState::TimedOut)
        );
        for call in [&first, &second, &third] {
            assert_eq!(
                batch_key(call),
                batch_key(&first),
                "a retry keeps its sequence"
            );
            assert_eq!(call.body, first.body, "and its body");
        }
        assert_eq!(records(&first).len(), 5);
        // Retries exhausted: nothing more goes out for those five.
        let sent = host.dispatched().len();
        host.advance(Duration::from_millis(1000)).expect("ticks");
        assert_eq!(
            host.dispatched().len(),
            sent,
            "{profile:?}: bounded retries"
        );
        let warned = host
            .take_logs()
            .iter()
            .any(|l| l.message.contains("5 records dropped"));
        assert!(warned, "{profile:?}: drops are logged");

        // The next batch says five were dropped and has the next sequence.
        send(&mut host, &HttpRequest::get("/mcp"), 200);
        host.advance(Duration::from_millis(100)).expect("tick");
        let next = host.pending_calls().remove(0);
        assert_eq!(batch_key(&next).0, batch_key(&first).0, "same source");
        assert_eq!(batch_key(&next).1, batch_key(&first).1 + 1);
        let got = records(&next);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].dropped, 5, "{profile:?}: drops carried");
        host.respond_call(next.id, &CallResponse::status(204))
            .expect("answer");
        assert_eq!(host.broken(), None);
    }
}

/// 100 000 requests with a collector that fails or times out most batches: guest memory
/// stops growing, and every request is either delivered or counted as dropped.
#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn memory_stays_bounded_and_every_record_is_delivered_or_counted() {
    const REQUESTS: u64 = 100_000;
    const WASM_PAGE: usize = 64 * 1024;
    for (profile, _) in PROFILES {
        let config = json!({
            "collector": {
                "tickMs": "100", "timeoutMs": "300", "maxRetries": "1",
                "batchSize": "100", "queueCapacity": "1000",
            },
        });
        let mut host = host(profile, &config);
        let (mut delivered, mut reported_drops) = (0u64, 0u64);
        let mut answer = |host: &mut ProxyHost, n: u64| {
            for call in host.pending_calls() {
                // Two in three batches fail (500 or no answer until the timeout).
                match (u64::from(call.id) + n) % 3 {
                    0 => {
                        let got = records(&call);
                        delivered += got.len() as u64;
                        reported_drops += got.iter().map(|r| r.dropped).sum::<u64>();
                        host.respond_call(call.id, &CallResponse::status(200))
                            .expect("answer");
                    }
                    1 => host
                        .respond_call(call.id, &CallResponse::status(503))
                        .expect("answer"),
                    _ => {} // left to time out
                }
            }
        };
        let mut memory_at_10k = 0;
        let request = HttpRequest::get("/mcp")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", "session-1");
        for n in 1..=REQUESTS {
            let exchange = host.http(&request, &BackendResponse::status(200));
            assert_eq!(exchange.failure, None);
            if n % 150 == 0 {
                host.advance(Duration::from_millis(100)).expect("tick");
                answer(&mut host, n);
            }
            if n == 10_000 {
                memory_at_10k = host.memory_bytes();
            }
        }
        // The allocator may take one more 64 KiB page as its free lists settle (seen once:
        // one step between 90k and 100k requests, then flat up to 400k). A leak of even one
        // byte per request would add 90 KB over these 90k requests, more than that page.
        let memory_at_end = host.memory_bytes();
        assert!(
            memory_at_end <= memory_at_10k + WASM_PAGE,
            "{profile:?}: guest memory grew from {memory_at_10k} B at 10k requests to \
             {memory_at_end} B at 100k"
        );
        // Collector healthy again: answer everything, tick until nothing is left.
        let mut idle_ticks = 0;
        while idle_ticks < 5 {
            let pending = host.pending_calls();
            idle_ticks = if pending.is_empty() {
                idle_ticks + 1
            } else {
                0
            };
            for call in pending {
                let got = records(&call);
                delivered += got.len() as u64;
                reported_drops += got.iter().map(|r| r.dropped).sum::<u64>();
                host.respond_call(call.id, &CallResponse::status(200))
                    .expect("answer");
            }
            host.advance(Duration::from_millis(100)).expect("tick");
        }
        assert!(reported_drops > 0, "{profile:?}: the failures cost records");
        assert_eq!(
            delivered + reported_drops,
            REQUESTS,
            "{profile:?}: every request delivered or counted as dropped"
        );
        assert_eq!(host.broken(), None);
    }
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn a_bad_configuration_is_refused_naming_the_key_and_never_the_token() {
    for (profile, _) in PROFILES {
        for (config, key) in [
            (
                json!({"collector": {"timeoutMs": "soon"}}),
                "collector.timeoutMs",
            ),
            (
                json!({"collector": {"batchSizes": "5"}}),
                "collector.batchSizes",
            ),
            (
                json!({"collector": {"token": "has space"}}),
                "collector.token",
            ),
            (json!({"sampleRatio": "2"}), "sampleRatio"),
        ] {
            let mut options = ProxyOptions::new(profile);
            options.plugin_config = serde_json::to_vec(&config).expect("json");
            let error =
                ProxyHost::from_file(&testkit::wasm_artifact("gatetrace-proxy.wasm"), options)
                    .expect_err("bad config must fail on_configure");
            let text = format!("{error:#}");
            assert!(text.contains(key), "{profile:?}: error names {key}: {text}");
            assert!(!text.contains("has space"), "token leaked: {text}");
        }
    }
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn calls_are_dispatched_only_from_ticks_even_under_load() {
    for (profile, _) in PROFILES {
        let config = json!({"collector": {"tickMs": "50", "batchSize": "7"}});
        let mut host = host(profile, &config);
        let before = host.dispatched().len();
        for n in 0..60u64 {
            send(&mut host, &HttpRequest::get(&format!("/item/{n}")), 200);
            if n % 20 == 19 {
                host.advance(Duration::from_millis(50)).expect("tick");
                for call in host.pending_calls() {
                    host.respond_call(call.id, &CallResponse::status(200))
                        .expect("answer");
                }
            }
        }
        let calls = calls_since(&host, before);
        assert!(calls.len() >= 9, "{profile:?}: 60 records in batches of 7");
        assert!(calls.iter().all(|c| c.from_callback == "on_tick"));
        let total: usize = calls.iter().map(|c| records(c).len()).sum();
        assert_eq!(total, 60);
        let mut sequences: Vec<u64> = calls.iter().map(|c| batch_key(c).1).collect();
        let sent_order = sequences.clone();
        sequences.sort_unstable();
        sequences.dedup();
        assert_eq!(sequences.len(), calls.len(), "each batch its own sequence");
        assert_eq!(sequences, sent_order, "increasing");
    }
}
