//! Record → visible in `/metrics`, against the real HTTP server on loopback: the time from
//! handing over a record of a new series (a `POST /v1/records`, or one line appended to the
//! current spool segment) until a scrape over HTTP shows it.

use std::io::Write as _;
use std::time::{Duration, Instant};

use gatetrace_collector::{Collector, Config};
use gatetrace_core::record::Record;
use gatetrace_core::spool::segment_name;
use serde_json::{Value, json};

use crate::records;

/// Time between scrapes while waiting.
const SCRAPE_EVERY: Duration = Duration::from_millis(2);
/// A record not visible by then fails the measurement.
const GIVE_UP: Duration = Duration::from_secs(10);

/// `samples` records each way; latencies in ms.
pub async fn run(samples: u64) -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let spool_dir = dir.path().join("spool");
    std::fs::create_dir(&spool_dir).expect("spool dir");
    let config = Config::load([
        "bench",
        "--access-log",
        "off",
        "--spool-dir",
        spool_dir.to_str().expect("utf-8"),
    ])
    .expect("config");
    let layout = config.spool_layout();
    let poll_ms = config.spool_poll_ms;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let running = Collector::start(config, None)
        .await
        .expect("start")
        .spawn(listener)
        .expect("serve");
    let base = format!("http://{}", running.addr());
    let client = reqwest::Client::new();
    let mut http = Vec::new();
    let mut spool = Vec::new();
    for i in 0..samples {
        // POST one record of a new series.
        let record = fresh(i, "/visible/http");
        let started = Instant::now();
        client
            .post(format!("{base}/v1/records"))
            .header("content-type", "application/x-ndjson")
            .body(records::ndjson(std::iter::once(record.clone())))
            .send()
            .await
            .expect("POST /v1/records")
            .error_for_status()
            .expect("accepted");
        wait_visible(&client, &base, &record.endpoint).await;
        http.push(started.elapsed().as_secs_f64() * 1e3);
        // Append one line to the current window's segment, as the plugin does.
        let record = fresh(i, "/visible/spool");
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos() as u64;
        let segment = spool_dir.join(segment_name(layout.window_start(now_ns)));
        let started = Instant::now();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment)
            .expect("segment");
        file.write_all(&records::ndjson(std::iter::once(record.clone())))
            .expect("append");
        drop(file);
        wait_visible(&client, &base, &record.endpoint).await;
        spool.push(started.elapsed().as_secs_f64() * 1e3);
    }
    running.shutdown().await.expect("shutdown");
    eprintln!("  visible after (ms): HTTP {http:.1?}, spool {spool:.1?} (spool poll {poll_ms} ms)");
    json!({ "http_ms": http, "spool_ms": spool, "spool_poll_ms": poll_ms })
}

/// A record of a series no scrape has shown yet.
fn fresh(i: u64, route: &str) -> Record {
    Record {
        endpoint: format!("{route}/{i}"),
        ..records::of_series(i, i + 1, false)
    }
}

/// Scrapes `/metrics` over HTTP until a series of `endpoint` is in it.
async fn wait_visible(client: &reqwest::Client, base: &str, endpoint: &str) {
    let wanted = format!("endpoint=\"{endpoint}\"");
    let started = Instant::now();
    loop {
        let text = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("exposition");
        if text.contains(&wanted) {
            return;
        }
        assert!(
            started.elapsed() < GIVE_UP,
            "{endpoint} not in /metrics after {GIVE_UP:?}"
        );
        tokio::time::sleep(SCRAPE_EVERY).await;
    }
}
