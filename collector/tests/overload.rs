//! Overload over real loopback HTTP: clients post far faster than the collector can take; the
//! excess is answered 429 with `Retry-After`, every accepted record is counted once, every
//! refused one is counted as dropped, and the process's memory stays bounded. Alone in its
//! file so `/proc/self` measures this test only.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gatetrace_collector::metrics::names::{
    DEFAULT_NAMESPACE, RECORDS_DROPPED_TOTAL, RECORDS_RECEIVED_TOTAL, REQUESTS_TOTAL,
};
use gatetrace_collector::{Collector, Config, SpanSink, SpanSinkStats};
use gatetrace_core::record::Record;

const CLIENTS: usize = 8;
const RECORDS_PER_BATCH: u64 = 50;
const LOAD: Duration = Duration::from_secs(4);
/// What one span costs the stand-in sink below.
const SPAN_COST: Duration = Duration::from_micros(1000);

/// A stand-in for a slow pipeline: the aggregator feeds every sampled record to this sink,
/// which takes `SPAN_COST` each, so the sustainable rate is bounded (≤ 1000 records/s) and
/// the clients can offer several times it from this 2-core machine.
#[derive(Default)]
struct SlowSink {
    offered: AtomicU64,
}

impl SpanSink for SlowSink {
    fn offer(&self, _: &Record) {
        std::thread::sleep(SPAN_COST);
        self.offered.fetch_add(1, Ordering::Relaxed);
    }
    fn stats(&self) -> SpanSinkStats {
        SpanSinkStats {
            exported: self.offered.load(Ordering::Relaxed),
            healthy: true,
            ..SpanSinkStats::default()
        }
    }
    fn shutdown(&self, _: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }
}

fn batch(first: u64) -> String {
    (first..first + RECORDS_PER_BATCH)
        .map(|n| {
            format!(
                "{{\"v\":1,\"request_id\":\"r{n}\",\"trace_id\":\"{n:032x}\",\"span_id\":\"{n:016x}\",\
                 \"sampled\":true,\"start_unix_ns\":{},\"duration_ns\":1000000,\"method\":\"POST\",\
                 \"endpoint\":\"/mcp\",\"status\":200,\"service\":\"mcp\",\"host_kind\":\"envoy\"}}\n",
                testkit::now_unix_ns()
            )
        })
        .collect()
}

/// Resident memory of this process in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn sample(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series}"))
        .parse()
        .unwrap()
}

#[derive(Debug, Default)]
struct Tally {
    accepted_batches: AtomicU64,
    accepted_records: AtomicU64,
    refused_batches: AtomicU64,
    other: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_past_the_sustainable_rate_is_answered_429_and_memory_stays_bounded() {
    let sink = Arc::new(SlowSink::default());
    let config = Config::load([
        "gatetrace-collector",
        "--access-log",
        "off",
        "--queue-capacity",
        "4",
    ])
    .unwrap();
    let collector = Collector::start(config, Some(sink.clone())).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = collector.spawn(listener).unwrap();
    let url = format!("http://{}/v1/records", running.addr());
    let rss_before = rss_kib();
    let mut rss_peak = rss_before;

    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let mut clients = Vec::new();
    for client in 0..CLIENTS as u64 {
        let (url, tally) = (url.clone(), Arc::clone(&tally));
        clients.push(tokio::task::spawn_blocking(move || {
            let http = testkit::http::Http::new();
            let mut n = (client << 40) + 1;
            while started.elapsed() < LOAD {
                let answer = http
                    .post_ndjson_answer(&url, batch(n))
                    .expect("an answer to every POST");
                n += RECORDS_PER_BATCH;
                match answer.status {
                    200 => {
                        let answer: serde_json::Value =
                            serde_json::from_slice(&answer.body).unwrap();
                        tally.accepted_batches.fetch_add(1, Ordering::Relaxed);
                        tally
                            .accepted_records
                            .fetch_add(answer["accepted"].as_u64().unwrap(), Ordering::Relaxed);
                    }
                    429 => {
                        assert_eq!(answer.header("retry-after").as_deref(), Some("1"));
                        tally.refused_batches.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        tally.other.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    while clients.iter().any(|c| !c.is_finished()) {
        rss_peak = rss_peak.max(rss_kib());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for client in clients {
        client.await.unwrap();
    }
    let accepted = tally.accepted_records.load(Ordering::Relaxed);
    let refused_batches = tally.refused_batches.load(Ordering::Relaxed);
    let refused = refused_batches * RECORDS_PER_BATCH;
    let offered = accepted + refused;
    let secs = LOAD.as_secs_f64();
    println!(
        "offered {offered} records ({:.0}/s) in {} batches, accepted {accepted} ({:.0}/s), \
         429 for {refused_batches} batches; RSS {rss_before} KiB before, peak {rss_peak} KiB",
        offered as f64 / secs,
        tally.accepted_batches.load(Ordering::Relaxed) + refused_batches,
        accepted as f64 / secs,
    );
    assert_eq!(tally.other.load(Ordering::Relaxed), 0, "only 200 and 429");
    assert!(
        offered >= 3 * accepted,
        "the load must be several times the sustainable rate: {offered} offered, {accepted} taken"
    );
    // Bounded: queue capacity (4) × body size (~20 KiB) plus working memory, far below this.
    assert!(
        rss_peak - rss_before < 64 * 1024,
        "RSS grew by {} KiB",
        rss_peak - rss_before
    );

    let http = testkit::http::Http::new();
    let metrics = http
        .get_text(&format!("http://{}/metrics", running.addr()))
        .expect("a scrape")
        .1;
    assert_eq!(
        sample(
            &metrics,
            &format!("{RECORDS_RECEIVED_TOTAL}{{transport=\"http\"}}")
        ),
        accepted,
        "every acknowledged record counted once"
    );
    assert_eq!(
        sample(
            &metrics,
            &format!(
                "{DEFAULT_NAMESPACE}_{REQUESTS_TOTAL}{{service=\"mcp\",method=\"POST\",endpoint=\"/mcp\",status=\"200\"}}"
            )
        ),
        accepted
    );
    assert_eq!(
        sample(
            &metrics,
            &format!("{RECORDS_DROPPED_TOTAL}{{reason=\"queue_full\"}}")
        ),
        refused,
        "every refused record counted as dropped"
    );
    let (health, _) = http
        .get_text(&format!("http://{}/health", running.addr()))
        .expect("an answer");
    assert_eq!(health, 200, "still alive");
    running.shutdown().await.unwrap();
}
