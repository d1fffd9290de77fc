//! Records ingested and aggregated per second against `serde_json` alone parsing the same
//! NDJSON bytes, and the collector's memory while it tails a large spool.
//! Run: `collector/bench/run.sh` (pins to one core, writes `collector/bench/RESULTS.md`), or
//! `cargo run --release -p gatetrace-collector --example ingest_bench -- MODE [RECORDS]` with
//! MODE `parse`, `spool`, `spool-logged` or `http`.

use std::io::Write as _;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use gatetrace_collector::aggregate::mcp::NameCaps;
use gatetrace_collector::aggregate::state::{Settings, State, Transport};
use gatetrace_collector::metrics::names::RECORDS_RECEIVED_TOTAL;
use gatetrace_collector::sources::decode;
use gatetrace_collector::{Collector, Config};
use gatetrace_core::record::{HostKind, Record, Session, SessionEvent, TokenResult};
use gatetrace_core::spool::segment_name;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

const ENDPOINTS: [&str; 8] = [
    "/mcp",
    "/register",
    "/register/{client_id}",
    "/token",
    "/authorize",
    "/.well-known/oauth-authorization-server",
    "/.well-known/oauth-protected-resource",
    "/revoke",
];

/// A realistic record: ~15 % sampled, sessions, token results, user agents.
fn record(n: u64) -> Record {
    let status = [200, 200, 200, 201, 202, 401, 404, 500][(n % 8) as usize];
    Record {
        v: 1,
        request_id: format!("{:032x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        trace_id: format!("{:032x}", u128::from(n) << 64 | u128::from(n + 1)),
        span_id: format!("{:016x}", n + 1),
        parent_span_id: n.is_multiple_of(2).then(|| format!("{:016x}", n + 7)),
        sampled: n.is_multiple_of(7),
        start_unix_ns: 1_760_000_000_000_000_000 + n * 1_000_000,
        duration_ns: (n * 7919) % 2_000_000_000,
        streamed: n.is_multiple_of(50),
        method: ["POST", "GET", "DELETE"][(n % 3) as usize].into(),
        endpoint: ENDPOINTS[(n % 8) as usize].into(),
        status: (!n.is_multiple_of(50)).then_some(status),
        status_source: None,
        status_unknown: None,
        service: ["mcp-a", "mcp-b", "auth"][(n % 3) as usize].into(),
        host: Some("mcp.example.com".into()),
        client_addr: Some(format!("10.0.{}.{}", n % 250, n % 200)),
        user_agent: Some("claude-code/1.0.81 (node 22; linux x64)".into()),
        request_bytes: Some(300 + n % 900),
        response_bytes: Some(1200 + n % 4000),
        session: n.is_multiple_of(5).then(|| Session {
            id: format!("{:016x}", n % 5000),
            event: if n.is_multiple_of(97) {
                SessionEvent::End
            } else {
                SessionEvent::Seen
            },
        }),
        token: Some([TokenResult::Success, TokenResult::Failure][(n % 2) as usize]),
        mcp: None,
        counters: Vec::new(),
        host_kind: HostKind::Traefik,
        dropped: 0,
    }
}

fn ndjson(count: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(count as usize * 600);
    for n in 0..count {
        record(n).write_ndjson_line(&mut out);
    }
    out
}

fn settings() -> Settings {
    let config = Config::load(["bench"]).expect("default config");
    Settings {
        latency_bounds: config.histogram_buckets.0,
        stream_bounds: config.stream_buckets.0,
        series_cap: config.series_cap as usize,
        max_sessions: config.max_sessions as usize,
        dedup_sources: config.dedup_sources as usize,
        business_counters: Vec::new(),
        registration_endpoint: config.registration_endpoint,
        mcp_names: NameCaps {
            tools: config.max_tools_per_service as usize,
            prompts: config.max_prompts_per_service as usize,
        },
    }
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..runs {
        let start = Instant::now();
        let value = f();
        best = best.min(start.elapsed());
        out = Some(value);
    }
    (best, out.expect("runs ≥ 1"))
}

fn rate(count: u64, took: Duration) -> f64 {
    count as f64 / took.as_secs_f64()
}

/// Parsing only vs parsing + validation + aggregation, same bytes, one thread.
fn parse(count: u64) {
    let bytes = ndjson(count);
    let mib = bytes.len() as f64 / (1024.0 * 1024.0);
    println!(
        "input: {count} records, {mib:.1} MiB, {:.0} bytes/record",
        bytes.len() as f64 / count as f64
    );
    let lines = || bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    let (t_record, n) = best_of(3, || {
        lines()
            .map(|l| serde_json::from_slice::<Record>(l).expect("valid"))
            .filter(|r| r.sampled)
            .count()
    });
    assert!(n > 0);
    let (t_value, _) = best_of(3, || {
        lines()
            .map(|l| serde_json::from_slice::<serde_json::Value>(l).expect("valid"))
            .filter(serde_json::Value::is_object)
            .count()
    });
    let s = settings();
    let (t_pipeline, state) = best_of(3, || {
        let mut state = State::new(&s);
        // 1 MiB blocks of complete lines through the block decoder (the spool source reads
        // 1 MiB at a time too, and frames the same lines with the core's `next_frame`).
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let cut = rest.len().min(1 << 20);
            let end = rest[..cut]
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(cut, |i| i + 1);
            let parsed = decode::parse_block(&rest[..end]);
            state.reject(&parsed.rejected);
            for record in &parsed.records {
                state.apply(&s, Transport::Spool, record);
            }
            rest = &rest[end..];
        }
        state
    });
    assert_eq!(state.received[1], count, "every record aggregated");
    let r_record = rate(count, t_record);
    let r_value = rate(count, t_value);
    let r_pipeline = rate(count, t_pipeline);
    println!("serde_json -> Record (parse only)        : {r_record:>12.0} records/s");
    println!("serde_json -> Value  (parse only)        : {r_value:>12.0} records/s");
    println!(
        "collector parse+validate+aggregate       : {r_pipeline:>12.0} records/s  ({:.2} of Record parse, {:.2} of Value parse)",
        r_pipeline / r_record,
        r_pipeline / r_value
    );
}

fn status_kib(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn received(text: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(RECORDS_RECEIVED_TOTAL)?
                .strip_prefix("{transport=\"spool\"} ")
        })
        .map_or(0, |v| v.parse().expect("a count"))
}

/// The real pipeline (tailer thread, aggregator, checkpoints) over a spool written beforehand.
fn spool(count: u64, access_log: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let spool_dir = dir.path().join("spool");
    std::fs::create_dir(&spool_dir).expect("spool dir");
    // Segments of 100 000 records in past windows (deletable once read), written streaming.
    let per_segment = 100_000;
    let mut bytes = 0;
    let mut buf = Vec::with_capacity(1 << 20);
    for segment in 0..count.div_ceil(per_segment) {
        let window = 1_760_000_000 + segment * 10;
        let mut file =
            std::fs::File::create(spool_dir.join(segment_name(window))).expect("segment");
        for n in segment * per_segment..((segment + 1) * per_segment).min(count) {
            record(n).write_ndjson_line(&mut buf);
            if buf.len() > (1 << 20) - 4096 {
                file.write_all(&buf).expect("write");
                bytes += buf.len();
                buf.clear();
            }
        }
        file.write_all(&buf).expect("write");
        bytes += buf.len();
        buf.clear();
    }
    let rss_before = status_kib("VmRSS:");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let checkpoint = dir.path().join("checkpoint.json");
        let config = Config::load([
            "bench",
            "--access-log",
            access_log,
            "--spool-dir",
            spool_dir.to_str().expect("utf-8"),
            "--checkpoint",
            checkpoint.to_str().expect("utf-8"),
        ])
        .expect("config");
        let start = Instant::now();
        let collector = Collector::start(config, None).await.expect("start");
        let mut max_rss = 0;
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            max_rss = max_rss.max(status_kib("VmRSS:"));
            let response = collector
                .app()
                .oneshot(Request::get("/metrics").body(Body::empty()).expect("request"))
                .await
                .expect("scrape");
            let body = response.into_body().collect().await.expect("body").to_bytes();
            if received(std::str::from_utf8(&body).expect("utf-8")) >= count {
                break;
            }
        }
        let took = start.elapsed();
        collector.shutdown().await.expect("shutdown");
        println!(
            "spool end-to-end (access log {access_log:>9}): {:>12.0} records/s  ({count} records, {:.1} MiB, {took:.2?})",
            rate(count, took),
            bytes as f64 / (1024.0 * 1024.0)
        );
        println!(
            "  memory: RSS {} MiB before start, max {} MiB while ingesting, peak (VmHWM) {} MiB; checkpoint {} KiB",
            rss_before / 1024,
            max_rss / 1024,
            status_kib("VmHWM:") / 1024,
            std::fs::metadata(&checkpoint).map_or(0, |m| m.len() / 1024)
        );
    });
}

/// HTTP ingest (checkpoint on, so every answer waits for a durable checkpoint): 4 clients in
/// this process post 200-record batches with batch headers.
fn http(count: u64) {
    const BATCH: u64 = 200;
    const CLIENTS: u64 = 4;
    let dir = tempfile::tempdir().expect("temp dir");
    let bodies: Vec<String> = (0..count / BATCH)
        .map(|b| {
            let mut body = Vec::new();
            for n in b * BATCH..(b + 1) * BATCH {
                record(n).write_ndjson_line(&mut body);
            }
            String::from_utf8(body).expect("utf-8")
        })
        .collect();
    let bodies = std::sync::Arc::new(bodies);
    let rss_before = status_kib("VmRSS:");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let checkpoint = dir.path().join("checkpoint.json");
        let config = Config::load([
            "bench",
            "--access-log",
            "off",
            "--checkpoint",
            checkpoint.to_str().expect("utf-8"),
        ])
        .expect("config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let running = Collector::start(config, None)
            .await
            .expect("start")
            .spawn(listener)
            .expect("spawn");
        let url = format!("http://{}/v1/records", running.addr());
        let max_rss = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for client in 0..CLIENTS {
            let (bodies, url, max_rss) = (bodies.clone(), url.clone(), max_rss.clone());
            tasks.push(tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut retries = 0u64;
                for (seq, body) in bodies.iter().enumerate().skip(client as usize).step_by(CLIENTS as usize) {
                    loop {
                        let response = http
                            .post(&url)
                            .header("x-gatetrace-source", format!("bench-{client}"))
                            .header("x-gatetrace-sequence", seq.to_string())
                            .body(body.clone())
                            .send()
                            .await
                            .expect("post");
                        if response.status() == 200 {
                            break;
                        }
                        assert_eq!(response.status(), 429, "unexpected answer");
                        retries += 1;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    if seq % 64 == 0 {
                        max_rss.fetch_max(status_kib("VmRSS:"), std::sync::atomic::Ordering::Relaxed);
                    }
                }
                retries
            }));
        }
        let mut retries = 0;
        for task in tasks {
            retries += task.await.expect("client");
        }
        let took = start.elapsed();
        running.shutdown().await.expect("shutdown");
        let sent = (count / BATCH) * BATCH;
        println!(
            "http ingest, durable acks ({CLIENTS} clients, {BATCH}/batch): {:>9.0} records/s  ({sent} records, {took:.2?}, {retries} 429 retries)",
            rate(sent, took)
        );
        println!(
            "  memory: RSS {} MiB before start (bodies prebuilt), max {} MiB while ingesting",
            rss_before / 1024,
            max_rss.load(std::sync::atomic::Ordering::Relaxed) / 1024,
        );
    });
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "parse".into());
    let count: u64 = args
        .next()
        .map_or(1_000_000, |n| n.parse().expect("a record count"));
    match mode.as_str() {
        "parse" => parse(count),
        "spool" => spool(count, "off"),
        "spool-logged" => spool(count, "/dev/null"),
        "http" => http(count),
        other => panic!("unknown mode {other:?}: parse | spool | spool-logged | http"),
    }
}
