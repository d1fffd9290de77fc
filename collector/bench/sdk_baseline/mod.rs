//! The collector's OTLP span sink as it was before the purpose-built exporter (commit
//! f825306): records → SDK `SpanData` → `opentelemetry-otlp`. Kept only as the baseline the
//! bench measures against in the same run; not used by the collector.

mod span;
mod worker;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use gatetrace_core::record::Record;
use opentelemetry::InstrumentationScope;
use opentelemetry_otlp::{
    RetryPolicy, WithExportConfig as _, WithHttpConfig as _, WithTonicConfig as _,
};
use tokio::sync::{mpsc, oneshot};

use self::span::span_data;
use self::worker::{ExportCounters, ExportWorker, QueuedSpan};
use gatetrace_collector::sinks::otlp::config::{OtlpConfig, OtlpProtocol};
use gatetrace_collector::sinks::span_sink::{SpanSink, SpanSinkStats};

/// The [`SpanSink`] over `opentelemetry-otlp`: `offer` converts and enqueues without waiting;
/// one task batches and exports.
#[derive(Debug)]
pub struct OtlpSink {
    queue: mpsc::Sender<QueuedSpan>,
    flush_requests: mpsc::Sender<oneshot::Sender<()>>,
    counters: Arc<ExportCounters>,
    service_name: Option<Arc<str>>,
    scope: InstrumentationScope,
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
        let exporter = build_exporter(config, &url)?;
        let (queue, queue_rx) = mpsc::channel(config.queue_capacity as usize);
        let (flush_requests, flush_requests_rx) = mpsc::channel(4);
        let counters = Arc::new(ExportCounters::default());
        let worker = ExportWorker {
            exporter,
            queue: queue_rx,
            flush_requests: flush_requests_rx,
            counters: Arc::clone(&counters),
            batch_size: config.batch_size as usize,
            batch_delay: Duration::from_millis(config.batch_delay_ms),
            url: url.clone(),
            resources: HashMap::new(),
        };
        runtime.spawn(worker.run());
        tracing::info!(endpoint = %url, protocol = ?config.protocol, "OTLP span export enabled");
        Ok(Some(Self {
            queue,
            flush_requests,
            counters,
            service_name: config.service_name.as_deref().map(Arc::from),
            scope: InstrumentationScope::builder("gatetrace-collector")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
            closed: AtomicBool::new(false),
        }))
    }
}

fn build_exporter(
    config: &OtlpConfig,
    url: &str,
) -> anyhow::Result<opentelemetry_otlp::SpanExporter> {
    let timeout = Duration::from_millis(config.timeout_ms);
    let retry = RetryPolicy::recommended().with_max_retries(config.max_retries as usize);
    let headers = config.parsed_headers()?;
    let built = match config.protocol {
        OtlpProtocol::Grpc => {
            let mut metadata = tonic::metadata::MetadataMap::new();
            for (key, value) in &headers {
                let key = tonic::metadata::MetadataKey::from_bytes(key.as_bytes())
                    .with_context(|| format!("OTLP header {key:?} is not valid gRPC metadata"))?;
                let value = value.parse().with_context(|| {
                    format!("OTLP header {key:?}: value is not valid gRPC metadata")
                })?;
                metadata.insert(key, value);
            }
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(url)
                .with_timeout(timeout)
                .with_metadata(metadata)
                .with_retry_policy(retry)
                .build()
        }
        OtlpProtocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(url)
            .with_timeout(timeout)
            .with_headers(headers)
            .with_retry_policy(retry)
            .build(),
    };
    built.context("building the OTLP span exporter")
}

impl SpanSink for OtlpSink {
    fn offer(&self, record: &Record) {
        if !record.sampled {
            return;
        }
        if self.closed.load(Ordering::Relaxed) || self.queue.capacity() == 0 {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Some(span) = span_data(record, &self.scope) else {
            // Ids that are not valid W3C ids cannot make a span: given up on, like a failure.
            self.counters.failed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let service = match &self.service_name {
            Some(name) => Arc::clone(name),
            None => Arc::from(record.service.as_str()),
        };
        // Count before sending so the export task never decrements below zero.
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        if self.queue.try_send(QueuedSpan { service, span }).is_err() {
            self.counters.queued.fetch_sub(1, Ordering::Relaxed);
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
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
