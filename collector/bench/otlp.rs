//! Spans exported per second by the collector's OTLP exporter against the SDK-based exporter it
//! replaced (`sdk_baseline/`), in interleaved rounds of one run, each to a loopback receiver in
//! its own process on the other core that decodes every request; and memory while the
//! receiver is down. `receive` and `export` run one side alone (for `valgrind --tool=callgrind`,
//! see `otlp-results.md`).

use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gatetrace_collector::sinks::otlp::OtlpSink;
use gatetrace_collector::sinks::otlp::config::{OtlpCompression, OtlpConfig, OtlpProtocol};
use gatetrace_collector::sinks::span_sink::SpanSink;
use gatetrace_core::record::Record;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use serde_json::{Value, json};

use crate::proc::{memory_kib, process_cpu, start_on_receiver_core};
use crate::{records, sdk_baseline};

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
pub async fn receive(protocol: OtlpProtocol) {
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

fn protocol_arg(protocol: OtlpProtocol) -> &'static str {
    match protocol {
        OtlpProtocol::Grpc => "grpc",
        OtlpProtocol::HttpProtobuf => "http",
    }
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

/// Offers `offers` records as fast as possible to an exporter whose endpoint refuses
/// connections: how many it holds (its bound), drops, and the memory that costs.
async fn receiver_down(offers: u64) -> Value {
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
    let (rss_before, _) = memory_kib();
    let started = Instant::now();
    for n in 0..offers {
        sink.offer(&records::span(n));
        if n % 1024 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let offered_in = started.elapsed();
    let (rss_after, _) = memory_kib();
    let stats = sink.stats();
    eprintln!(
        "  receiver down: {offers} offers in {offered_in:.2?}; queued {} (capacity {}), dropped {}, \
         failed {}; RSS {rss_before} KiB before, {rss_after} KiB after",
        stats.queued, config.queue_capacity, stats.dropped, stats.failed,
    );
    sink.shutdown(Duration::from_millis(100)).await;
    json!({
        "offers": offers,
        "offers_per_second": offers as f64 / offered_in.as_secs_f64(),
        "held": stats.queued,
        "capacity": config.queue_capacity,
        "dropped": stats.dropped,
        "rss_growth_mib": rss_after.saturating_sub(rss_before) as f64 / 1024.0,
    })
}

/// The exporter/protocol/compression cases of a round, in order.
const CASES: [(Exporter, OtlpProtocol, OtlpCompression); 6] = [
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

/// The key of a case in the JSON this prints: `new-grpc-none`, ...
fn case_key(
    (exporter, protocol, compression): (Exporter, OtlpProtocol, OtlpCompression),
) -> String {
    let exporter = match exporter {
        Exporter::Old => "old",
        Exporter::New => "new",
    };
    let compression = match compression {
        OtlpCompression::None => "none",
        OtlpCompression::Gzip => "gzip",
    };
    format!("{exporter}-{}-{compression}", protocol_arg(protocol))
}

/// A receiver of `protocol` on the receiver core; the process and its URL.
pub fn spawn_receiver(protocol: OtlpProtocol) -> (Child, String) {
    start_on_receiver_core(&["receive".to_owned(), protocol_arg(protocol).to_owned()])
}

/// `rounds` interleaved rounds of every case over `spans` spans, after `offers` offers with
/// the receiver down; per case and round: wall, exporter-CPU and receiver-CPU rates.
pub async fn run(rounds: usize, spans: u64, offers: u64) -> Value {
    let down = receiver_down(offers).await;
    let records: Vec<Record> = (0..spans).map(records::span).collect();
    let (mut grpc, grpc_url) = spawn_receiver(OtlpProtocol::Grpc);
    let (mut http, http_url) = spawn_receiver(OtlpProtocol::HttpProtobuf);
    let mut results = serde_json::Map::new();
    for round in 0..rounds {
        for case in CASES {
            let (exporter, protocol, compression) = case;
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
            eprintln!(
                "  otlp round {round}: {}: {:.0} spans/s wall, {:.0} per exporter CPU-second, \
                 {:.0} per receiver CPU-second",
                case_key(case),
                rates.wall,
                rates.cpu,
                rates.receiver_cpu
            );
            let entry = results
                .entry(case_key(case))
                .or_insert_with(|| json!({ "wall": [], "cpu": [], "receiver_cpu": [] }));
            for (key, value) in [
                ("wall", rates.wall),
                ("cpu", rates.cpu),
                ("receiver_cpu", rates.receiver_cpu),
            ] {
                entry[key]
                    .as_array_mut()
                    .expect("an array")
                    .push(json!(value));
            }
        }
    }
    let _ = grpc.kill();
    let _ = http.kill();
    let _ = grpc.wait();
    let _ = http.wait();
    json!({
        "spans": spans,
        "batch": BATCH,
        "queue": QUEUE,
        "max_concurrent_exports": OtlpConfig::default().max_concurrent_exports,
        "cases": results,
        "receiver_down": down,
    })
}

/// One side alone: `export old|new grpc|http URL SPANS [gzip]` prints its rates.
pub async fn export_alone(args: &[String]) {
    let arg = |i: usize| args.get(i).map(String::as_str);
    let exporter = match arg(0) {
        Some("old") => Exporter::Old,
        Some("new") => Exporter::New,
        other => panic!("exporter is old or new, not {other:?}"),
    };
    let url = arg(2).expect("URL");
    let spans: u64 = arg(3).expect("SPANS").parse().expect("SPANS is a number");
    let compression = if arg(4) == Some("gzip") {
        OtlpCompression::Gzip
    } else {
        OtlpCompression::None
    };
    let records: Vec<Record> = (0..spans).map(records::span).collect();
    let rates = throughput(exporter, protocol(arg(1)), compression, url, None, &records).await;
    println!("{rates:?}");
}

/// `grpc` or `http`.
pub fn protocol(name: Option<&str>) -> OtlpProtocol {
    match name {
        Some("grpc") => OtlpProtocol::Grpc,
        Some("http") => OtlpProtocol::HttpProtobuf,
        other => panic!("protocol is grpc or http, not {other:?}"),
    }
}
