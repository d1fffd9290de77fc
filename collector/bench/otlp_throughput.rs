//! Spans exported per second by the collector's OTLP exporter against the SDK-based exporter it
//! replaced (`sdk_baseline/`), in interleaved rounds of one run, each to a loopback receiver in
//! its own process that decodes every request; and memory while the receiver is down.
//! Run (exporter on core 0, receivers on core 1; see `otlp-results.md`):
//! `taskset -c 0 target/release/examples/otlp_throughput [compare [ROUNDS [SPANS]]]`;
//! `otlp_throughput receive grpc|http` and `otlp_throughput export old|new grpc|http URL SPANS
//! [gzip]` run one side alone (for `valgrind --tool=callgrind`).

mod sdk_baseline;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gatetrace_collector::sinks::otlp::OtlpSink;
use gatetrace_collector::sinks::otlp::config::{OtlpCompression, OtlpConfig, OtlpProtocol};
use gatetrace_collector::sinks::span_sink::SpanSink;
use gatetrace_core::record::{HostKind, Record};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;

/// Batch size and queue of every throughput run.
const BATCH: u32 = 512;
const QUEUE: u32 = 8192;

/// Counts the spans a receiver decoded.
#[derive(Clone, Default)]
struct Count(Arc<AtomicU64>);

impl Count {
    fn add(&self, request: &ExportTraceServiceRequest) {
        let spans: usize = request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.0.fetch_add(spans as u64, Ordering::Relaxed);
    }
}

#[tonic::async_trait]
impl TraceService for Count {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.add(request.get_ref());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// Serves OTLP on a free loopback port, printing its base URL on stdout, until killed.
/// Receivers set `TCP_NODELAY` as real ones do (Go's default); without it Nagle's algorithm
/// and delayed ACKs add ~40 ms per request and the bench measures that.
async fn receive(protocol: OtlpProtocol) {
    let count = Count::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("http://{}", listener.local_addr().unwrap());
    match protocol {
        OtlpProtocol::Grpc => {
            tonic::transport::Server::builder()
                .add_service(
                    TraceServiceServer::new(count)
                        .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                )
                .serve_with_incoming(
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                )
                .await
                .unwrap();
        }
        OtlpProtocol::HttpProtobuf => {
            let app = axum::Router::new()
                .route(
                    "/v1/traces",
                    axum::routing::post(move |body: axum::body::Bytes| {
                        let count = count.clone();
                        async move {
                            count.add(&ExportTraceServiceRequest::decode(body).unwrap());
                            ExportTraceServiceResponse::default().encode_to_vec()
                        }
                    }),
                )
                .layer(tower_http::decompression::RequestDecompressionLayer::new());
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, app).await.unwrap();
        }
    }
}

/// A receiver process on core 1 (through `taskset` when present); returns it and its URL.
fn spawn_receiver(protocol: OtlpProtocol) -> (Child, String) {
    let exe = std::env::current_exe().unwrap();
    let name = protocol_arg(protocol);
    let mut command = if which("taskset") {
        let mut c = Command::new("taskset");
        c.args(["-c", "1"]).arg(exe);
        c
    } else {
        Command::new(exe)
    };
    let mut child = command
        .args(["receive", name])
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting the receiver");
    let mut url = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    (child, url.trim().to_owned())
}

fn which(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn protocol_arg(protocol: OtlpProtocol) -> &'static str {
    match protocol {
        OtlpProtocol::Grpc => "grpc",
        OtlpProtocol::HttpProtobuf => "http",
    }
}

/// A record whose span has every HTTP attribute (11, plus `error.type` on the 2 % that are
/// 5xx; with the resource's `service.name`, today's 13 keys); every second one has a parent.
/// Never inlined, so callgrind can subtract the cost of building records from a run's.
#[inline(never)]
fn record(n: u64) -> Record {
    Record {
        v: 1,
        request_id: format!("01JDBENCH{n:016}"),
        trace_id: format!(
            "{:032x}",
            0x4bf9_2f35_77b3_4da6_0000_0000_0000_0000_u128 + u128::from(n)
        ),
        span_id: format!("{:016x}", 0x00f0_67aa_0000_0000_u64 + n),
        parent_span_id: n.is_multiple_of(2).then(|| "b7ad6b7169203331".to_owned()),
        sampled: true,
        start_unix_ns: 1_764_000_000_000_000_000 + n * 1000,
        duration_ns: 2_500_000,
        streamed: false,
        method: "POST".into(),
        endpoint: "/mcp".into(),
        status: Some(if n.is_multiple_of(50) { 503 } else { 200 }),
        status_source: None,
        status_unknown: None,
        service: "mcp-api".into(),
        host: Some("mcp.example.com:8443".into()),
        client_addr: Some("10.1.2.3".into()),
        user_agent: Some("bench-client/1.0".into()),
        request_bytes: Some(512),
        response_bytes: Some(2048),
        session: None,
        token: None,
        mcp: None,
        counters: Vec::new(),
        host_kind: HostKind::Traefik,
        dropped: 0,
    }
}

/// CPU time (user + system) of a whole process so far (`self` or a pid), from `/proc`.
fn process_cpu(process: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{process}/stat")).unwrap_or_default();
    // Fields after the command name (which ends with the last ')'): the state is the first,
    // utime the 12th, stime the 13th, in clock ticks (100 per second on Linux).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let ticks = ticks(11) + ticks(12);
    Duration::from_millis(ticks * 10)
}

/// Resident and peak memory of this process in KiB, from `/proc/self/status`.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Which exporter a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exporter {
    /// `sdk_baseline`: records → SDK `SpanData` → `opentelemetry-otlp`, one request in flight.
    Old,
    /// The collector's `OtlpSink`, default concurrency.
    New,
}

fn start(exporter: Exporter, config: &OtlpConfig) -> Box<dyn SpanSink> {
    match exporter {
        Exporter::Old => Box::new(sdk_baseline::OtlpSink::start(config).unwrap().unwrap()),
        Exporter::New => Box::new(OtlpSink::start(config).unwrap().unwrap()),
    }
}

/// One run's rates in spans per second: wall clock, per CPU-second of the exporter process
/// and of the receiver process.
#[derive(Debug, Clone, Copy)]
struct Rates {
    wall: f64,
    cpu: f64,
    receiver_cpu: f64,
}

/// Offers every record as fast as the queue takes them; the clock stops when `shutdown` has
/// flushed the last span and the receiver acknowledged all of them.
async fn throughput(
    exporter: Exporter,
    protocol: OtlpProtocol,
    compression: OtlpCompression,
    url: &str,
    receiver: Option<&str>,
    records: &[Record],
) -> Rates {
    let config = OtlpConfig {
        endpoint: Some(url.to_owned()),
        protocol,
        compression,
        queue_capacity: QUEUE,
        batch_size: BATCH,
        batch_delay_ms: 50,
        ..OtlpConfig::default()
    };
    let sink = start(exporter, &config);
    let cpu_before = process_cpu("self");
    let receiver_before = receiver.map(process_cpu);
    let started = Instant::now();
    for r in records {
        // Keep the queue from overflowing so every span is exported: this measures the
        // exporter's sustained rate, not its drop path. Sleep, not spin: the core is shared.
        while sink.stats().queued >= u64::from(QUEUE - BATCH) {
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        sink.offer(r);
    }
    sink.shutdown(Duration::from_secs(120)).await;
    let elapsed = started.elapsed();
    let cpu = process_cpu("self").saturating_sub(cpu_before);
    let receiver_cpu = receiver
        .map(process_cpu)
        .zip(receiver_before)
        .map(|(after, before)| after.saturating_sub(before));
    let stats = sink.stats();
    let spans = records.len() as f64;
    assert_eq!(stats.exported, records.len() as u64, "{stats:?}");
    Rates {
        wall: spans / elapsed.as_secs_f64(),
        cpu: spans / cpu.as_secs_f64().max(0.01),
        // NaN when the receiver is another process than one this bench started.
        receiver_cpu: receiver_cpu.map_or(f64::NAN, |cpu| spans / cpu.as_secs_f64().max(0.01)),
    }
}

async fn receiver_down(offers: u64) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = OtlpConfig {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        timeout_ms: 2_000,
        ..OtlpConfig::default()
    };
    let sink = OtlpSink::start(&config).unwrap().unwrap();
    let before = memory_kib();
    let started = Instant::now();
    for n in 0..offers {
        sink.offer(&record(n));
        if n % 1024 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let offered_in = started.elapsed();
    let after = memory_kib();
    let stats = sink.stats();
    println!(
        "receiver down: {offers} offers in {:.2} s ({:.0}/s); queued {} (capacity {}), dropped {}, failed {}; \
         RSS {} KiB before, {} KiB after, peak {} KiB",
        offered_in.as_secs_f64(),
        offers as f64 / offered_in.as_secs_f64(),
        stats.queued,
        config.queue_capacity,
        stats.dropped,
        stats.failed,
        before.0,
        after.0,
        after.1
    );
    sink.shutdown(Duration::from_millis(100)).await;
}

/// Median, min and max.
fn summary(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    (median, values[0], values[values.len() - 1])
}

async fn compare(rounds: usize, spans: u64) {
    let affinity = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Cpus_allowed_list:")
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default();
    println!(
        "exporter on CPUs {affinity}, receivers on CPU 1; {rounds} interleaved rounds of {spans} \
         spans; batch {BATCH}, queue {QUEUE}, new exporter with {} requests in flight",
        OtlpConfig::default().max_concurrent_exports
    );
    receiver_down(1_000_000).await;
    let records: Vec<Record> = (0..spans).map(record).collect();
    let (mut grpc, grpc_url) = spawn_receiver(OtlpProtocol::Grpc);
    let (mut http, http_url) = spawn_receiver(OtlpProtocol::HttpProtobuf);
    let cases = [
        (Exporter::Old, OtlpProtocol::Grpc, OtlpCompression::None),
        (Exporter::New, OtlpProtocol::Grpc, OtlpCompression::None),
        (
            Exporter::Old,
            OtlpProtocol::HttpProtobuf,
            OtlpCompression::None,
        ),
        (
            Exporter::New,
            OtlpProtocol::HttpProtobuf,
            OtlpCompression::None,
        ),
        (Exporter::New, OtlpProtocol::Grpc, OtlpCompression::Gzip),
        (
            Exporter::New,
            OtlpProtocol::HttpProtobuf,
            OtlpCompression::Gzip,
        ),
    ];
    let mut results: Vec<Vec<Rates>> = vec![Vec::new(); cases.len()];
    for round in 0..rounds {
        for (i, &(exporter, protocol, compression)) in cases.iter().enumerate() {
            let (url, receiver) = match protocol {
                OtlpProtocol::Grpc => (&grpc_url, grpc.id()),
                OtlpProtocol::HttpProtobuf => (&http_url, http.id()),
            };
            let receiver = receiver.to_string();
            let rates = throughput(
                exporter,
                protocol,
                compression,
                url,
                Some(&receiver),
                &records,
            )
            .await;
            println!(
                "round {round}: {exporter:?} {protocol:?} {compression:?}: {:.0} spans/s wall, \
                 {:.0} per exporter CPU-second, {:.0} per receiver CPU-second",
                rates.wall, rates.cpu, rates.receiver_cpu
            );
            results[i].push(rates);
        }
    }
    let _ = grpc.kill();
    let _ = http.kill();
    println!(
        "\n| exporter | protocol | compression | spans/s wall: median (min–max) | spans per exporter CPU-second: median (min–max) | spans per receiver CPU-second: median |"
    );
    println!("|---|---|---|---|---|---|");
    for (&(exporter, protocol, compression), rates) in cases.iter().zip(results) {
        let wall = summary(rates.iter().map(|r| r.wall).collect());
        let cpu = summary(rates.iter().map(|r| r.cpu).collect());
        let receiver = summary(rates.iter().map(|r| r.receiver_cpu).collect());
        println!(
            "| {exporter:?} | {protocol:?} | {compression:?} | {:.0} ({:.0}–{:.0}) | {:.0} ({:.0}–{:.0}) | {:.0} |",
            wall.0, wall.1, wall.2, cpu.0, cpu.1, cpu.2, receiver.0
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let protocol = |name: Option<&str>| match name {
        Some("grpc") => OtlpProtocol::Grpc,
        Some("http") => OtlpProtocol::HttpProtobuf,
        other => panic!("protocol is grpc or http, not {other:?}"),
    };
    // One worker thread: the exporter's whole work (offers, export task, I/O) on its core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    match arg(0) {
        Some("receive") => runtime.block_on(receive(protocol(arg(1)))),
        Some("export") => {
            let exporter = match arg(1) {
                Some("old") => Exporter::Old,
                Some("new") => Exporter::New,
                other => panic!("exporter is old or new, not {other:?}"),
            };
            let url = arg(3).expect("URL");
            let spans: u64 = arg(4).expect("SPANS").parse().expect("SPANS is a number");
            let compression = if arg(5) == Some("gzip") {
                OtlpCompression::Gzip
            } else {
                OtlpCompression::None
            };
            let records: Vec<Record> = (0..spans).map(record).collect();
            let rates = runtime.block_on(throughput(
                exporter,
                protocol(arg(2)),
                compression,
                url,
                None,
                &records,
            ));
            println!("{rates:?}");
        }
        Some("compare") | None => {
            let rounds = arg(1).map_or(5, |s| s.parse().expect("ROUNDS is a number"));
            let spans = arg(2).map_or(200_000, |s| s.parse().expect("SPANS is a number"));
            runtime.block_on(compare(rounds, spans));
        }
        Some(other) => panic!("unknown mode {other:?}: compare, receive or export"),
    }
}
