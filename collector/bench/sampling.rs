//! Collector CPU per record as the sampling ratio grows: one collector exporting spans over
//! OTLP HTTP/protobuf to a receiver on the other core, fed the ingest mix through the router
//! with a given share of records sampled; the CPU of this process (aggregation and export).

use std::time::Duration;

use gatetrace_collector::sinks::otlp::config::{OtlpConfig, OtlpProtocol};
use gatetrace_collector::sinks::otlp::exporter;
use gatetrace_collector::{Collector, Config, SpanSink};
use gatetrace_core::record::Record;
use serde_json::{Value, json};

use crate::proc::threads_cpu;
use crate::{otlp, records, router};

/// Sampling ratios measured, in per mille.
pub const RATIOS_PER_MILLE: [u64; 5] = [0, 10, 100, 500, 1000];
/// How long to wait for the exporter to drain after the last batch.
const DRAIN: Duration = Duration::from_secs(60);

/// `rounds` interleaved rounds over every ratio, `count` records each; µs of CPU per record.
pub async fn run(rounds: usize, count: u64) -> Value {
    let (mut receiver, url) = otlp::spawn_receiver(OtlpProtocol::HttpProtobuf);
    let otlp_config = OtlpConfig {
        endpoint: Some(url),
        protocol: OtlpProtocol::HttpProtobuf,
        ..OtlpConfig::default()
    };
    let capacity = u64::from(otlp_config.queue_capacity);
    let sink = exporter(&otlp_config)
        .expect("exporter")
        .expect("an endpoint");
    let config = Config::load(["bench", "--access-log", "off"]).expect("config");
    let collector = Collector::start(config, Some(sink.clone()))
        .await
        .expect("start");
    let app = collector.app();
    let mut points: Vec<Vec<f64>> = vec![Vec::new(); RATIOS_PER_MILLE.len()];
    let mut next = 0;
    for _ in 0..rounds {
        for (i, per_mille) in RATIOS_PER_MILLE.into_iter().enumerate() {
            let before = sink.stats();
            let cpu_before = threads_cpu();
            let mut sampled = 0;
            for first in (next..next + count).step_by(records::BATCH as usize) {
                let end = (first + records::BATCH).min(next + count);
                let batch: Vec<Record> = (first..end)
                    .map(|n| Record {
                        sampled: n % 1000 < per_mille,
                        ..records::ingest(n)
                    })
                    .collect();
                sampled += batch.iter().filter(|r| r.sampled).count() as u64;
                router::post_records(&app, records::ndjson(batch.into_iter())).await;
                // Pace to the exporter: this measures its cost, not its drop path.
                while sink.stats().queued > capacity / 2 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            next += count;
            let done = |sink: &dyn SpanSink| {
                let now = sink.stats();
                now.exported + now.dropped + now.failed
                    - (before.exported + before.dropped + before.failed)
            };
            let started = std::time::Instant::now();
            while done(sink.as_ref()) < sampled {
                assert!(started.elapsed() < DRAIN, "spans not exported in {DRAIN:?}");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let cpu = threads_cpu().saturating_sub(cpu_before);
            let dropped = sink.stats().dropped - before.dropped;
            let us = cpu.as_secs_f64() * 1e6 / count as f64;
            eprintln!(
                "  sampling {per_mille}‰: {us:.2} µs CPU per record ({sampled} spans, {dropped} dropped)"
            );
            points[i].push(us);
        }
    }
    collector.shutdown().await.expect("shutdown");
    let _ = receiver.kill();
    let _ = receiver.wait();
    json!({
        "records": count,
        "ratios": RATIOS_PER_MILLE.map(|p| p as f64 / 1000.0),
        "cpu_us_per_record": points,
    })
}
