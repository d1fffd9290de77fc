//! Records per CPU-second (all threads of this process, pinned to one core; wall-clock rates
//! too), round by round in one process: `serde_json` parsing the
//! NDJSON into `Record`s (the reference), the collector's decode + aggregate without I/O,
//! `POST /v1/records` over loopback HTTP, and the spool tailer end to end, on the same bytes.

use std::io::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use gatetrace_collector::aggregate::mcp::NameCaps;
use gatetrace_collector::aggregate::state::{Settings, State, Transport};
use gatetrace_collector::metrics::names::RECORDS_RECEIVED_TOTAL;
use gatetrace_collector::sources::decode;
use gatetrace_collector::{Collector, Config};
use gatetrace_core::record::Record;
use gatetrace_core::spool::segment_name;
use serde_json::{Value, json};

use crate::proc::{RECEIVER_CORE, this_binary_on, threads_cpu};
use crate::{records, router};

/// Concurrent HTTP clients: two, so the server never waits for the next request.
const HTTP_CLIENTS: usize = 2;
/// What the HTTP client process prints once its bodies are built.
const CLIENT_READY: &str = "ready";
/// Records per spool segment.
const SEGMENT_RECORDS: u64 = 100_000;
/// How often the spool run checks whether every record is counted (a `/metrics` render in this
/// process, so its CPU counts: not too often).
const POLL: Duration = Duration::from_millis(25);
/// Bytes per read of the spool tailer (the block size the no-I/O run decodes in, too).
const BLOCK: usize = 1 << 20;

/// `rounds` rounds of the four runs over `count` records; rates in records/s.
pub async fn run(rounds: usize, count: u64) -> Value {
    let bytes = records::ndjson((0..count).map(records::ingest));
    let mut parse = Vec::new();
    let mut pipeline = Vec::new();
    let mut http = Vec::new();
    let mut spool = Vec::new();
    let mut wall = Vec::new();
    for round in 0..rounds {
        let (parse_cpu, parse_wall) = cpu_and_wall(|| serde_parse(&bytes));
        parse.push(rate(count, parse_cpu));
        let (cpu, _) = cpu_and_wall(|| decode_and_aggregate(&bytes, count));
        pipeline.push(rate(count, cpu));
        let (http_cpu, http_wall) = post(count).await;
        http.push(rate(count, http_cpu));
        let (spool_cpu, spool_wall) = tail(count).await;
        spool.push(rate(count, spool_cpu));
        wall.push([parse_wall, http_wall, spool_wall].map(|w| rate(count, w)));
        eprintln!(
            "  ingest round {round}, records per CPU-second: serde_json {:.0}, decode+aggregate \
             {:.0}, HTTP {:.0}, spool {:.0}",
            parse[round], pipeline[round], http[round], spool[round]
        );
    }
    json!({
        "records": count,
        "bytes_per_record": bytes.len() as f64 / count as f64,
        "serde_json": parse,
        "decode_aggregate": pipeline,
        "http": http,
        "spool": spool,
        "wall_serde_json": wall.iter().map(|w| w[0]).collect::<Vec<_>>(),
        "wall_http": wall.iter().map(|w| w[1]).collect::<Vec<_>>(),
        "wall_spool": wall.iter().map(|w| w[2]).collect::<Vec<_>>(),
    })
}

/// The CPU time (every thread of this process) and wall time `work` took.
fn cpu_and_wall(work: impl FnOnce() -> Duration) -> (Duration, Duration) {
    let before = threads_cpu();
    let wall = work();
    (threads_cpu().saturating_sub(before), wall)
}

fn rate(count: u64, took: Duration) -> f64 {
    count as f64 / took.as_secs_f64()
}

/// The reference: every line parsed into a `Record` by `serde_json`, nothing else.
fn serde_parse(bytes: &[u8]) -> Duration {
    let start = Instant::now();
    let parsed = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice::<Record>(l).expect("a valid record"))
        .filter(|r| r.sampled)
        .count();
    let took = start.elapsed();
    assert!(parsed > 0);
    took
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

/// The collector's decoder and aggregate over 1 MiB blocks of whole lines, no I/O.
fn decode_and_aggregate(bytes: &[u8], count: u64) -> Duration {
    let settings = settings();
    let start = Instant::now();
    let mut state = State::new(&settings);
    let mut rest = bytes;
    while !rest.is_empty() {
        let cut = rest.len().min(BLOCK);
        let end = rest[..cut]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(cut, |i| i + 1);
        let decoded = decode::parse_block(&rest[..end]);
        state.reject(&decoded.rejected);
        for record in &decoded.records {
            state.apply(&settings, Transport::Spool, record);
        }
        rest = &rest[end..];
    }
    let took = start.elapsed();
    assert_eq!(state.received[1], count, "every record aggregated");
    took
}

/// `POST /v1/records` over loopback HTTP (no checkpoint: each answer waits for the aggregator,
/// not for a disk sync), posted by [`post_client`] in another process on the other core, so
/// only the collector's CPU counts; CPU (taken before shutdown ends any thread) and wall time.
async fn post(count: u64) -> (Duration, Duration) {
    let config = Config::load(["bench", "--access-log", "off"]).expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let running = Collector::start(config, None)
        .await
        .expect("start")
        .spawn(listener)
        .expect("serve");
    let url = format!("http://{}/v1/records", running.addr());
    let mut client = tokio::process::Command::from(this_binary_on(
        RECEIVER_CORE,
        &["post-client".into(), url, count.to_string()],
    ))
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .kill_on_drop(true)
    .spawn()
    .expect("starting the HTTP client");
    let mut stdin = client.stdin.take().expect("piped stdin");
    let mut lines = BufReader::new(client.stdout.take().expect("piped stdout")).lines();
    let ready = lines.next_line().await.expect("the client's stdout");
    assert_eq!(
        ready.as_deref(),
        Some(CLIENT_READY),
        "the client built its bodies"
    );
    let cpu_before = threads_cpu();
    let start = Instant::now();
    stdin.write_all(b"go\n").await.expect("starting the client");
    let accepted: u64 = lines
        .next_line()
        .await
        .expect("the client's stdout")
        .and_then(|l| l.parse().ok())
        .expect("the client's accepted count");
    let took = start.elapsed();
    let cpu = threads_cpu().saturating_sub(cpu_before);
    assert_eq!(accepted, count, "every record accepted");
    assert!(client.wait().await.expect("client").success());
    running.shutdown().await.expect("shutdown");
    (cpu, took)
}

/// The HTTP client of [`post`], in its own process: builds the bodies of `count` records,
/// prints [`CLIENT_READY`], waits for a line on stdin, then posts them `HTTP_CLIENTS` at a
/// time and prints how many records the collector accepted.
pub async fn post_client(url: String, count: u64) {
    let bodies: Vec<bytes::Bytes> = (0..count.div_ceil(records::BATCH))
        .map(|b| {
            let end = ((b + 1) * records::BATCH).min(count);
            records::ndjson((b * records::BATCH..end).map(records::ingest)).into()
        })
        .collect();
    let client = reqwest::Client::new();
    println!("{CLIENT_READY}");
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).expect("stdin");
    let mut tasks = Vec::new();
    for first in 0..HTTP_CLIENTS {
        let (client, url) = (client.clone(), url.clone());
        let mine: Vec<bytes::Bytes> = bodies
            .iter()
            .skip(first)
            .step_by(HTTP_CLIENTS)
            .cloned()
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut accepted = 0;
            for body in mine {
                let answer: Value = client
                    .post(&url)
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .send()
                    .await
                    .expect("POST /v1/records")
                    .error_for_status()
                    .expect("accepted")
                    .json()
                    .await
                    .expect("a JSON answer");
                accepted += answer["accepted"].as_u64().expect("an accepted count");
            }
            accepted
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        accepted += task.await.expect("client");
    }
    println!("{accepted}");
}

/// The spool tailer end to end (tailer thread, decoder, aggregator, 300 ms checkpoints) over
/// segments written beforehand; the clock runs from start until `/metrics` counts them all.
/// CPU (taken before shutdown ends the tailer thread) and wall time.
async fn tail(count: u64) -> (Duration, Duration) {
    let dir = tempfile::tempdir().expect("temp dir");
    let spool_dir = dir.path().join("spool");
    std::fs::create_dir(&spool_dir).expect("spool dir");
    let mut buf = Vec::with_capacity(BLOCK);
    for segment in 0..count.div_ceil(SEGMENT_RECORDS) {
        // Past windows: the tailer reads them whole, then deletes them.
        let window = 1_760_000_000 + segment * 10;
        let mut file =
            std::fs::File::create(spool_dir.join(segment_name(window))).expect("segment");
        for n in segment * SEGMENT_RECORDS..((segment + 1) * SEGMENT_RECORDS).min(count) {
            records::ingest(n).write_ndjson_line(&mut buf);
            if buf.len() > BLOCK - 4096 {
                file.write_all(&buf).expect("write");
                buf.clear();
            }
        }
        file.write_all(&buf).expect("write");
        buf.clear();
    }
    let checkpoint = dir.path().join("checkpoint.json");
    let config = Config::load([
        "bench",
        "--access-log",
        "off",
        "--spool-dir",
        spool_dir.to_str().expect("utf-8"),
        "--checkpoint",
        checkpoint.to_str().expect("utf-8"),
    ])
    .expect("config");
    let cpu_before = threads_cpu();
    let start = Instant::now();
    let collector = Collector::start(config, None).await.expect("start");
    let app = collector.app();
    while spool_received(&app).await < count {
        tokio::time::sleep(POLL).await;
    }
    let took = start.elapsed();
    let cpu = threads_cpu().saturating_sub(cpu_before);
    collector.shutdown().await.expect("shutdown");
    (cpu, took)
}

async fn spool_received(app: &axum::Router) -> u64 {
    let text = router::scrape(app).await;
    text.lines()
        .find_map(|l| {
            l.strip_prefix(RECORDS_RECEIVED_TOTAL)?
                .strip_prefix("{transport=\"spool\"} ")
        })
        .map_or(0, |v| v.parse().expect("a count"))
}
