//! End to end on loopback: 10 000 requests through the plugin in the harness's Envoy profile,
//! whose collector cluster is real (real-network mode), reach the real collector, in-process,
//! through a small fault-injecting proxy that fails some batches: `mcp_oauth_requests_total`
//! ends at exactly 10 000.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use common::proxy::{CLUSTER, batch_key, host_with};
use gatetrace_collector::Collector;
use gatetrace_collector::config::Config as CollectorConfig;
use gatetrace_host::http_wasm::{BackendResponse, HttpRequest};
use gatetrace_host::proxy::{CallState, Profile, ProxyHost};
use serde_json::json;

const REQUESTS: u64 = 10_000;

/// What the fault proxy did.
#[derive(Debug, Default)]
struct Faults {
    batches: AtomicU64,
    /// Answered 500 without forwarding.
    refused: AtomicU64,
    /// Forwarded (the collector took it), then answered 500 anyway.
    lost_answers: AtomicU64,
    stop: AtomicBool,
}

/// Reads one HTTP/1.1 request (head and `content-length` body) off `stream`.
fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while raw.len() < end + 4 + length {
                let n = stream.read(&mut buf).ok()?;
                if n == 0 {
                    return None;
                }
                raw.extend_from_slice(&buf[..n]);
            }
            return Some(raw);
        }
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

/// A loopback proxy in front of the collector: batch 7, 14, … is refused with 500; batch
/// 11, 22, … is forwarded and its answer replaced by 500 (so the retry is a duplicate).
fn fault_proxy(collector: SocketAddr, faults: Arc<Faults>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    thread::spawn(move || {
        while !faults.stop.load(Ordering::Relaxed) {
            let Ok((mut client, _)) = listener.accept() else {
                thread::sleep(Duration::from_millis(2));
                continue;
            };
            let _ = client.set_nonblocking(false);
            let _ = client.set_read_timeout(Some(Duration::from_secs(10)));
            let Some(request) = read_request(&mut client) else {
                continue;
            };
            let n = faults.batches.fetch_add(1, Ordering::Relaxed) + 1;
            let fail = b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
            if n.is_multiple_of(7) {
                faults.refused.fetch_add(1, Ordering::Relaxed);
                let _ = client.write_all(fail);
                continue;
            }
            let mut upstream = TcpStream::connect(collector).expect("collector");
            upstream.write_all(&request).expect("forward");
            let mut answer = Vec::new();
            let _ = upstream.read_to_end(&mut answer);
            if n.is_multiple_of(11) {
                faults.lost_answers.fetch_add(1, Ordering::Relaxed);
                let _ = client.write_all(fail);
            } else {
                let _ = client.write_all(&answer);
            }
        }
    });
    addr
}

fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).ok()?;
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, raw))
}

/// Sum of `mcp_oauth_requests_total` over all its series.
fn requests_total(collector: SocketAddr) -> u64 {
    let (status, text) = get(collector, "/metrics").expect("/metrics");
    assert_eq!(status, 200, "{text}");
    text.lines()
        .filter(|l| {
            l.starts_with("mcp_oauth_requests_total{") || l.starts_with("mcp_oauth_requests_total ")
        })
        .map(|l| {
            let after_labels = l.rsplit_once('}').map_or(l, |(_, rest)| rest);
            let value = after_labels
                .split('#')
                .next()
                .and_then(|v| v.split_whitespace().next())
                .expect("sample value");
            value.parse::<f64>().expect("number") as u64
        })
        .sum()
}

fn drive(host: &mut ProxyHost) {
    let requests = [
        HttpRequest::get("/mcp").header("authorization", "Bearer t"),
        HttpRequest::get("/register/12345"),
        HttpRequest::get("/.well-known/oauth-authorization-server"),
    ];
    for n in 0..REQUESTS {
        let request = &requests[(n % 3) as usize];
        let status = [200, 201, 404, 500][(n % 4) as usize];
        let exchange = host.http(request, &BackendResponse::status(status));
        assert_eq!(exchange.failure, None);
        if n % 250 == 249 {
            host.advance(Duration::from_millis(100)).expect("tick");
        }
    }
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn ten_thousand_requests_are_counted_exactly_once_despite_failed_batches() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let collector_config = CollectorConfig::load([
        "gatetrace-collector",
        "--listen",
        "127.0.0.1:0",
        "--access-log",
        "off",
    ])
    .expect("collector config");
    let running = runtime.block_on(async {
        let collector = Collector::start(collector_config, None)
            .await
            .expect("start collector");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        collector.spawn(listener).expect("serve")
    });
    let collector = running.addr();
    testkit::wait_until("collector /ready", Duration::from_secs(10), || {
        get(collector, "/ready").is_some_and(|(s, _)| s == 200)
    });
    assert_eq!(requests_total(collector), 0);

    let faults = Arc::new(Faults::default());
    let proxy = fault_proxy(collector, Arc::clone(&faults));
    let config = json!({
        "service": "mcp-server",
        "collector": {"cluster": CLUSTER, "tickMs": "100", "batchSize": "100", "maxRetries": "5"},
    });
    let mut host = host_with(Profile::Envoy, &config, |options| {
        options.real_clusters.insert(CLUSTER.to_owned(), proxy);
    });
    drive(&mut host);
    // Let the remaining ticks drain the queue and the retries.
    for _ in 0..100 {
        host.advance(Duration::from_millis(100)).expect("tick");
        if requests_total(collector) >= REQUESTS && host.pending_calls().is_empty() {
            break;
        }
    }
    host.advance(Duration::from_millis(1000)).expect("ticks");
    faults.stop.store(true, Ordering::Relaxed);

    let total = requests_total(collector);
    let calls = host.dispatched();
    let answered_500 = calls
        .iter()
        .filter(|c| c.state == CallState::Answered(500))
        .count();
    let not_answered = calls
        .iter()
        .filter(|c| matches!(c.state, CallState::Failed(_) | CallState::TimedOut))
        .count();
    let mut keys: Vec<(String, u64)> = calls.iter().map(batch_key).collect();
    keys.sort();
    keys.dedup();
    let retried = calls.len() - keys.len();
    let summary = format!(
        "{} batches, {} distinct, {answered_500} answered 500, {not_answered} failed or timed out, {faults:?}",
        calls.len(),
        keys.len()
    );
    eprintln!("collector end to end: {summary}");
    assert_eq!(total, REQUESTS, "mcp_oauth_requests_total: {summary}");
    assert!(faults.refused.load(Ordering::Relaxed) > 0, "{summary}");
    assert!(faults.lost_answers.load(Ordering::Relaxed) > 0, "{summary}");
    assert!(answered_500 > 0, "{summary}");
    assert_eq!(
        retried,
        answered_500 + not_answered,
        "every failed attempt was followed by a retry of the same batch: {summary}"
    );
    assert!(calls.iter().all(|c| c.from_callback == "on_tick"));
    assert_eq!(host.broken(), None);
    runtime
        .block_on(running.shutdown())
        .expect("collector shutdown");
}
