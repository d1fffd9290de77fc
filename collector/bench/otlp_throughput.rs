//! Spans exported per second through the real OTLP exporter to an in-process loopback receiver
//! (gRPC and HTTP/protobuf), and the process's memory while the receiver is down.
//! Run: `cargo run --release -p gatetrace-collector --example otlp_throughput [-- SPANS]`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gatetrace_collector::sinks::otlp::OtlpSink;
use gatetrace_collector::sinks::otlp::config::{OtlpConfig, OtlpProtocol};
use gatetrace_collector::sinks::span_sink::SpanSink;
use gatetrace_core::record::{HostKind, Record};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;

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

async fn grpc_receiver(count: &Count) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let service = TraceServiceServer::new(count.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(
                // TCP_NODELAY as real receivers set it (Go's default): without it, Nagle and
                // delayed ACKs add ~40 ms per request and the bench measures that.
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            ),
    );
    url
}

async fn http_receiver(count: &Count) -> String {
    let count = count.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let count = count.clone();
            async move {
                count.add(&ExportTraceServiceRequest::decode(body).unwrap());
                ExportTraceServiceResponse::default().encode_to_vec()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

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
        host: Some("mcp.example.com".into()),
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

async fn throughput(protocol: OtlpProtocol, spans: u64) {
    let count = Count::default();
    let url = match protocol {
        OtlpProtocol::Grpc => grpc_receiver(&count).await,
        OtlpProtocol::HttpProtobuf => http_receiver(&count).await,
    };
    let config = OtlpConfig {
        endpoint: Some(url),
        protocol,
        queue_capacity: 8192,
        batch_size: 512,
        batch_delay_ms: 50,
        ..OtlpConfig::default()
    };
    let sink = OtlpSink::start(&config).unwrap().unwrap();
    let records: Vec<Record> = (0..spans).map(record).collect();
    let started = Instant::now();
    for r in &records {
        // Keep the queue from overflowing so every span is exported: this measures the
        // exporter's sustained rate, not its drop path.
        while sink.stats().queued >= 8000 {
            tokio::task::yield_now().await;
        }
        sink.offer(r);
    }
    sink.shutdown(Duration::from_secs(60)).await;
    let elapsed = started.elapsed();
    let stats = sink.stats();
    assert_eq!(stats.exported, spans, "{stats:?}");
    assert_eq!(count.0.load(Ordering::Relaxed), spans);
    println!(
        "{protocol:?}: {spans} spans in {:.2} s = {:.0} spans/s (batch 512; receiver decodes every request in-process)",
        elapsed.as_secs_f64(),
        spans as f64 / elapsed.as_secs_f64()
    );
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let spans = std::env::args()
        .nth(1)
        .map_or(200_000, |s| s.parse().expect("SPANS is a number"));
    receiver_down(spans * 5).await;
    throughput(OtlpProtocol::Grpc, spans).await;
    throughput(OtlpProtocol::HttpProtobuf, spans).await;
}
