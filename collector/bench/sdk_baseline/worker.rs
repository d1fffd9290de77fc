//! The export task: takes queued spans in batches (by size or delay), groups them by service
//! (`service.name` is a resource attribute) and exports them through `opentelemetry-otlp`,
//! counting what was exported and what failed after its bounded retries.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};
use tokio::sync::{mpsc, oneshot};

/// One span waiting for export, with the service it belongs to.
#[derive(Debug)]
pub(super) struct QueuedSpan {
    pub service: Arc<str>,
    pub span: SpanData,
}

/// What the sink and the export task count together.
#[derive(Debug, Default)]
pub(super) struct ExportCounters {
    pub exported: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    /// Spans offered and not yet exported or failed.
    pub queued: AtomicU64,
    /// Whether the last export had a failure.
    pub unhealthy: AtomicBool,
}

/// Resources kept per service at most before the cache is cleared.
const MAX_CACHED_RESOURCES: usize = 1024;

/// The export task: batches queued spans by size or delay and exports them, one request per
/// service (`service.name` is a resource attribute).
pub(super) struct ExportWorker {
    pub exporter: opentelemetry_otlp::SpanExporter,
    pub queue: mpsc::Receiver<QueuedSpan>,
    /// Flush requests; each is answered once everything queued before it is exported.
    pub flush_requests: mpsc::Receiver<oneshot::Sender<()>>,
    pub counters: Arc<ExportCounters>,
    pub batch_size: usize,
    pub batch_delay: Duration,
    /// The traces URL, for logs.
    pub url: String,
    pub resources: HashMap<Arc<str>, Resource>,
}

impl ExportWorker {
    /// Exports until the sink is gone (then what is queued is exported first).
    pub async fn run(mut self) {
        let mut batch = Vec::with_capacity(self.batch_size);
        // The first partial batch goes out one delay after start, not at once.
        let mut ticker = tokio::time::interval_at(
            tokio::time::Instant::now() + self.batch_delay,
            self.batch_delay,
        );
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Always at least 1: a full batch is exported before the loop comes back here.
            let room = self.batch_size - batch.len();
            tokio::select! {
                biased;
                done = self.flush_requests.recv() => {
                    self.drain(&mut batch).await;
                    match done {
                        Some(done) => {
                            let _ = done.send(());
                        }
                        // The sink is gone: what was queued has just been exported.
                        None => return,
                    }
                }
                received = self.queue.recv_many(&mut batch, room) => {
                    if received == 0 {
                        // Every sender is gone: export what is left and stop.
                        self.export(&mut batch).await;
                        return;
                    }
                    if batch.len() >= self.batch_size {
                        self.export(&mut batch).await;
                        ticker.reset();
                    }
                }
                _ = ticker.tick() => {
                    if !batch.is_empty() {
                        self.export(&mut batch).await;
                    }
                }
            }
        }
    }

    /// Exports everything queued now, in batches.
    async fn drain(&mut self, batch: &mut Vec<QueuedSpan>) {
        loop {
            while batch.len() < self.batch_size {
                match self.queue.try_recv() {
                    Ok(queued) => batch.push(queued),
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                return;
            }
            self.export(batch).await;
        }
    }

    async fn export(&mut self, batch: &mut Vec<QueuedSpan>) {
        if batch.is_empty() {
            return;
        }
        let total = batch.len() as u64;
        // Group by service, keeping arrival order within each.
        let mut groups: Vec<(Arc<str>, Vec<SpanData>)> = Vec::new();
        for QueuedSpan { service, span } in batch.drain(..) {
            match groups.iter_mut().find(|(name, _)| *name == service) {
                Some((_, spans)) => spans.push(span),
                None => groups.push((service, vec![span])),
            }
        }
        let mut failed_now = 0;
        for (service, spans) in groups {
            let count = spans.len() as u64;
            if self.resources.len() > MAX_CACHED_RESOURCES {
                self.resources.clear();
            }
            let resource = self
                .resources
                .entry(Arc::clone(&service))
                .or_insert_with(|| {
                    Resource::builder_empty()
                        .with_service_name(service.to_string())
                        .build()
                })
                .clone();
            self.exporter.set_resource(&resource);
            match self.exporter.export(spans).await {
                Ok(()) => {
                    self.counters.exported.fetch_add(count, Ordering::Relaxed);
                }
                Err(error) => {
                    failed_now += count;
                    self.counters.failed.fetch_add(count, Ordering::Relaxed);
                    tracing::warn!(
                        endpoint = %self.url,
                        spans = count,
                        %error,
                        "OTLP export failed after retries; spans dropped"
                    );
                }
            }
        }
        self.counters.queued.fetch_sub(total, Ordering::Relaxed);
        self.counters
            .unhealthy
            .store(failed_now > 0, Ordering::Relaxed);
    }
}

impl fmt::Debug for ExportWorker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportWorker")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}
