//! The export task: takes queued spans in batches (by size or delay), groups them by service
//! (`service.name` is a resource attribute), encodes one request per service and keeps up to
//! N requests in flight, counting what was exported and what failed after bounded retries.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::config::OtlpCompression;
use super::request::{encode, send_with_retries};
use super::transport::Transport;

/// One span waiting for export, encoded ([`super::request::encode_span`]), with the service
/// it belongs to.
#[derive(Debug)]
pub(super) struct QueuedSpan {
    pub service: Arc<str>,
    pub span: Vec<u8>,
}

/// What the sink and the export task count together.
#[derive(Debug, Default)]
pub(super) struct ExportCounters {
    pub exported: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    /// Spans offered and not yet exported or failed (waiting or in a request).
    pub queued: AtomicU64,
    /// Whether the last finished export request failed.
    pub unhealthy: AtomicBool,
}

/// How requests are sent: shared by the export task and its requests in flight.
#[derive(Debug)]
pub(super) struct Delivery {
    pub transport: Transport,
    pub compression: OtlpCompression,
    pub max_retries: u32,
    /// Time budget of one request, retries included.
    pub timeout: Duration,
    /// The traces URL, for logs.
    pub url: String,
}

/// The export task: batches queued spans by size or delay and exports them, one request per
/// service, at most `max_in_flight` requests at once.
pub(super) struct ExportWorker {
    pub delivery: Arc<Delivery>,
    pub queue: mpsc::Receiver<QueuedSpan>,
    /// Flush requests; each is answered once everything queued before it is exported.
    pub flush_requests: mpsc::Receiver<oneshot::Sender<()>>,
    pub counters: Arc<ExportCounters>,
    pub batch_size: usize,
    pub batch_delay: Duration,
    pub max_in_flight: usize,
    pub scope: InstrumentationScope,
    pub in_flight: JoinSet<()>,
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
                    self.finish_in_flight().await;
                    match done {
                        Some(done) => {
                            let _ = done.send(());
                        }
                        // The sink is gone: what was queued has just been exported.
                        None => return,
                    }
                }
                Some(_) = self.in_flight.join_next(), if !self.in_flight.is_empty() => {}
                received = self.queue.recv_many(&mut batch, room) => {
                    if received == 0 {
                        // Every sender is gone: export what is left and stop.
                        self.export(&mut batch).await;
                        self.finish_in_flight().await;
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

    /// Waits for every request in flight.
    async fn finish_in_flight(&mut self) {
        while self.in_flight.join_next().await.is_some() {}
    }

    /// Starts one request per service in `batch`, waiting for room among the requests in
    /// flight first.
    async fn export(&mut self, batch: &mut Vec<QueuedSpan>) {
        if batch.is_empty() {
            return;
        }
        // Group by service, keeping arrival order within each.
        let mut groups: Vec<(Arc<str>, Vec<Vec<u8>>)> = Vec::new();
        for QueuedSpan { service, span } in batch.drain(..) {
            match groups.iter_mut().find(|(name, _)| *name == service) {
                Some((_, spans)) => spans.push(span),
                None => groups.push((service, vec![span])),
            }
        }
        let gzip = self
            .delivery
            .transport
            .body_is_compressed_by_caller(self.delivery.compression);
        for (service, spans) in groups {
            while self.in_flight.len() >= self.max_in_flight {
                self.in_flight.join_next().await;
            }
            let count = spans.len() as u64;
            let body = encode(&service, &self.scope, &spans, gzip);
            let delivery = Arc::clone(&self.delivery);
            let counters = Arc::clone(&self.counters);
            self.in_flight.spawn(async move {
                let sent = send_with_retries(
                    &delivery.transport,
                    body,
                    delivery.max_retries,
                    delivery.timeout,
                )
                .await;
                match &sent {
                    Ok(()) => counters.exported.fetch_add(count, Ordering::Relaxed),
                    Err(error) => {
                        tracing::warn!(
                            endpoint = %delivery.url,
                            spans = count,
                            %error,
                            "OTLP export failed after retries; spans dropped"
                        );
                        counters.failed.fetch_add(count, Ordering::Relaxed)
                    }
                };
                counters.queued.fetch_sub(count, Ordering::Relaxed);
                counters.unhealthy.store(sent.is_err(), Ordering::Relaxed);
            });
        }
    }
}

impl fmt::Debug for ExportWorker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportWorker")
            .field("url", &self.delivery.url)
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}
