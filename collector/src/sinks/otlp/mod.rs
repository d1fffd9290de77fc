//! The OTLP span sink: one SERVER span per sampled record, with the record's own ids and times,
//! sent in batches over gRPC or HTTP/protobuf from a bounded queue that drops (and counts)
//! when full, so a down trace backend costs bounded memory and never blocks ingestion.

mod attribute;
pub mod config;
mod mcp_span;
mod request;
mod span;
mod transport;
mod worker;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use gatetrace_core::record::Record;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use self::config::{OtlpConfig, OtlpProtocol};
use self::span::proto_span;
use self::transport::Transport;
use self::worker::{Delivery, ExportCounters, ExportWorker, QueuedSpan};
use super::span_sink::{SpanSink, SpanSinkStats};

/// Builds the span exporter, or `None` when no endpoint is configured (spans disabled).
/// Must be called inside a tokio runtime: the export task is spawned on it.
///
/// # Errors
/// An invalid option or endpoint, or no tokio runtime.
pub fn exporter(config: &OtlpConfig) -> anyhow::Result<Option<Arc<dyn SpanSink>>> {
    Ok(OtlpSink::start(config)?.map(|sink| Arc::new(sink) as Arc<dyn SpanSink>))
}

/// The OTLP [`SpanSink`]: `offer` builds the protobuf span and enqueues it without waiting;
/// one task batches, encodes and keeps up to N export requests in flight.
#[derive(Debug)]
pub struct OtlpSink {
    queue: mpsc::Sender<QueuedSpan>,
    flush_requests: mpsc::Sender<oneshot::Sender<()>>,
    counters: Arc<ExportCounters>,
    /// Spans held at most, waiting or in a request (`queued` never exceeds it).
    capacity: u64,
    service_name: Option<Arc<str>>,
    closed: AtomicBool,
}

impl OtlpSink {
    /// Validates `config`, builds the transport and spawns the export task on the current
    /// tokio runtime. `None` when no endpoint is configured.
    ///
    /// # Errors
    /// An invalid option or endpoint, or no tokio runtime.
    pub fn start(config: &OtlpConfig) -> anyhow::Result<Option<Self>> {
        config.validate()?;
        let Some(url) = config.traces_url() else {
            return Ok(None);
        };
        let runtime = tokio::runtime::Handle::try_current()
            .context("the OTLP exporter must be started inside a tokio runtime")?;
        let _guard = runtime.enter();
        let headers = config.parsed_headers()?;
        let transport = match config.protocol {
            OtlpProtocol::Grpc => Transport::grpc(&url, &headers, config.compression)?,
            OtlpProtocol::HttpProtobuf => Transport::http(&url, &headers, config.compression)?,
        };
        let (queue, queue_rx) = mpsc::channel(config.queue_capacity as usize);
        let (flush_requests, flush_requests_rx) = mpsc::channel(4);
        let counters = Arc::new(ExportCounters::default());
        let worker = ExportWorker {
            delivery: Arc::new(Delivery {
                transport,
                compression: config.compression,
                max_retries: config.max_retries,
                timeout: Duration::from_millis(config.timeout_ms),
                url: url.clone(),
            }),
            queue: queue_rx,
            flush_requests: flush_requests_rx,
            counters: Arc::clone(&counters),
            batch_size: config.batch_size as usize,
            batch_delay: Duration::from_millis(config.batch_delay_ms),
            max_in_flight: config.max_concurrent_exports as usize,
            scope: request::scope(),
            in_flight: JoinSet::new(),
        };
        runtime.spawn(worker.run());
        tracing::info!(
            endpoint = %url,
            protocol = ?config.protocol,
            compression = ?config.compression,
            "OTLP span export enabled"
        );
        Ok(Some(Self {
            queue,
            flush_requests,
            counters,
            capacity: u64::from(config.queue_capacity),
            service_name: config.service_name.as_deref().map(Arc::from),
            closed: AtomicBool::new(false),
        }))
    }

    fn drop_one(&self) {
        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

impl SpanSink for OtlpSink {
    fn offer(&self, record: &Record) {
        if !record.sampled {
            return;
        }
        if self.closed.load(Ordering::Relaxed)
            || self.counters.queued.load(Ordering::Relaxed) >= self.capacity
        {
            self.drop_one();
            return;
        }
        let Some(span) = proto_span(record).map(|span| request::encode_span(&span)) else {
            // Ids that are not valid W3C ids cannot make a span: given up on, like a failure.
            self.counters.failed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let service = match &self.service_name {
            Some(name) => Arc::clone(name),
            None => Arc::from(record.service.as_str()),
        };
        // Count before sending so the export task never decrements below zero; the count
        // (waiting plus in flight) is the bound, checked again for concurrent offers.
        let held = self.counters.queued.fetch_add(1, Ordering::Relaxed);
        if held >= self.capacity || self.queue.try_send(QueuedSpan { service, span }).is_err() {
            self.counters.queued.fetch_sub(1, Ordering::Relaxed);
            self.drop_one();
        }
    }

    fn stats(&self) -> SpanSinkStats {
        let c = &self.counters;
        SpanSinkStats {
            exported: c.exported.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            queued: c.queued.load(Ordering::Relaxed),
            healthy: !c.unhealthy.load(Ordering::Relaxed),
        }
    }

    fn shutdown(&self, timeout: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.closed.store(true, Ordering::Relaxed);
        Box::pin(async move {
            let (done, wait) = oneshot::channel();
            let flushed = async {
                if self.flush_requests.send(done).await.is_ok() {
                    let _ = wait.await;
                }
            };
            if tokio::time::timeout(timeout, flushed).await.is_err() {
                tracing::warn!(
                    queued = self.counters.queued.load(Ordering::Relaxed),
                    "OTLP flush did not finish within {timeout:?}; queued spans are lost"
                );
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_with_invalid_ids_make_no_span_and_count_as_failed() {
        let cfg = OtlpConfig {
            endpoint: Some("http://127.0.0.1:9".into()),
            ..OtlpConfig::default()
        };
        let sink = OtlpSink::start(&cfg).unwrap().unwrap();
        for broken in [
            Record {
                trace_id: "0".repeat(32),
                ..Record::example_span(1)
            },
            Record {
                trace_id: "xyz".into(),
                ..Record::example_span(1)
            },
            Record {
                span_id: "0000000000000000".into(),
                ..Record::example_span(1)
            },
            Record {
                span_id: "+0f067aa0ba902b7".into(),
                ..Record::example_span(1)
            },
            Record {
                parent_span_id: Some("abc".into()),
                ..Record::example_span(1)
            },
        ] {
            assert!(proto_span(&broken).is_none(), "{broken:?}");
            sink.offer(&broken);
        }
        assert_eq!(sink.stats().failed, 5);
        assert_eq!(sink.stats().queued, 0);
    }

    #[test]
    fn no_endpoint_means_spans_disabled() {
        assert!(exporter(&OtlpConfig::default()).unwrap().is_none());
        let blank = OtlpConfig {
            endpoint: Some("  ".into()),
            ..OtlpConfig::default()
        };
        assert!(exporter(&blank).unwrap().is_none());
    }
}
