//! The aggregator task, the only writer of the aggregate [`State`]: it applies each batch
//! (metrics and spool offset in one step), writes checkpoints, acknowledges HTTP batches once
//! durable, lets finished segments go, and feeds the sinks (access lines, spans).

pub mod checkpoint;
pub mod dedup;
pub mod mcp;
mod retention;
pub mod series;
pub mod sessions;
pub mod state;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gatetrace_core::spool::SpoolLayout;
use tokio::sync::{mpsc, oneshot};

use self::state::{Settings, State, Transport};
use crate::batch::{BatchOrigin, IngestAck, RecordBatch};
use crate::clock::now_unix_ns;
use crate::page::recent::RecentTraces;
use crate::sinks::access_log::{AccessWriter, append_line};
use crate::sinks::span_sink::SpanSink;
use crate::telemetry::Telemetry;

/// HTTP batches answered per checkpoint at most before one is forced.
const MAX_AWAITING_ACKS: usize = 64;

/// The aggregate state behind its lock, with the settings it is aggregated under: written by
/// the aggregator only, read by `/metrics`.
#[derive(Debug)]
pub(crate) struct AggregateStore {
    state: Mutex<State>,
    pub settings: Settings,
    /// A session with no request for this long no longer counts as active.
    pub session_idle: Duration,
    /// A series with no update for this long is removed.
    pub series_idle: Duration,
    /// Services whose active-sessions gauge is served even before a record names them.
    pub services: Vec<String>,
}

/// Default of [`AggregateStore::series_idle`]: an hour, many Prometheus scrapes.
const DEFAULT_SERIES_IDLE: Duration = Duration::from_secs(3600);

impl AggregateStore {
    pub fn new(state: State, settings: Settings, session_idle: Duration) -> Self {
        Self {
            state: Mutex::new(state),
            settings,
            session_idle,
            series_idle: DEFAULT_SERIES_IDLE,
            services: Vec::new(),
        }
    }

    /// The state, even if a panic poisoned the lock (the state is plain counters).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sessions last seen before this time (Unix ns) are idle at `now_ns`.
    pub fn session_cutoff_ns(&self, now_ns: u64) -> u64 {
        now_ns.saturating_sub(self.session_idle.as_nanos() as u64)
    }
}

/// An HTTP batch applied and waiting for the checkpoint that makes it durable.
#[derive(Debug)]
struct AwaitingAck {
    reply: oneshot::Sender<IngestAck>,
    /// The answer once durable.
    answer: IngestAck,
}

/// The aggregator task's inputs and outputs.
pub(crate) struct Aggregator {
    pub store: Arc<AggregateStore>,
    pub telemetry: Arc<Telemetry>,
    pub http_rx: mpsc::Receiver<RecordBatch>,
    pub spool_rx: mpsc::Receiver<RecordBatch>,
    pub stop: oneshot::Receiver<()>,
    pub checkpoint: Option<PathBuf>,
    pub interval: Duration,
    pub spool: Option<(PathBuf, SpoolLayout)>,
    pub access: AccessWriter,
    pub sink: Option<Arc<dyn SpanSink>>,
    /// The page's list of the last sampled traces.
    pub recent: Arc<RecentTraces>,
}

impl Aggregator {
    /// Runs until stopped, then drains both queues, writes the last checkpoint and returns
    /// the access writer (for the caller to close).
    pub async fn run(mut self) -> AccessWriter {
        let mut awaiting: Vec<AwaitingAck> = Vec::new();
        let mut dirty = false;
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopping = false;
        let mut http_open = true;
        let mut spool_open = true;
        let mut oldest_awaiting = Instant::now();
        while http_open || spool_open {
            // Unbiased: a busy queue must not starve the other one or the checkpoint tick.
            tokio::select! {
                _ = &mut self.stop, if !stopping => {
                    // Stop intake; what is queued is still drained.
                    stopping = true;
                    self.http_rx.close();
                    self.spool_rx.close();
                }
                batch = self.http_rx.recv(), if http_open => match batch {
                    Some(batch) => {
                        if awaiting.is_empty() {
                            oldest_awaiting = Instant::now();
                        }
                        self.apply(batch, &mut awaiting);
                        dirty = true;
                    }
                    None => http_open = false,
                },
                batch = self.spool_rx.recv(), if spool_open => match batch {
                    Some(batch) => {
                        self.apply(batch, &mut awaiting);
                        dirty = true;
                    }
                    None => spool_open = false,
                },
                _ = ticker.tick() => {
                    dirty |= self.expire();
                    if dirty || !awaiting.is_empty() {
                        dirty = !self.commit(&mut awaiting).await;
                    } else {
                        // Quiet spool: the last checkpoint covers everything read, so
                        // segments whose window has since closed may go now.
                        dirty = self.delete_finished().await;
                    }
                }
            }
            // Group commit: answer waiting HTTP clients as soon as the queue is momentarily
            // empty (or enough are waiting, or one has waited a whole interval).
            if !awaiting.is_empty()
                && (self.http_rx.is_empty()
                    || awaiting.len() >= MAX_AWAITING_ACKS
                    || oldest_awaiting.elapsed() >= self.interval)
            {
                dirty = !self.commit(&mut awaiting).await;
            }
        }
        self.commit(&mut awaiting).await;
        self.telemetry
            .aggregator_running
            .store(false, Ordering::Relaxed);
        self.access
    }

    /// Applies one batch (a duplicate only counts as one).
    fn apply(&mut self, batch: RecordBatch, awaiting: &mut Vec<AwaitingAck>) {
        let RecordBatch {
            records,
            rejected,
            origin,
        } = batch;
        let transport = match &origin {
            BatchOrigin::Http { .. } => Transport::Http,
            BatchOrigin::Spool { .. } => Transport::Spool,
        };
        {
            let settings = &self.store.settings;
            let mut state = self.store.lock();
            match origin {
                BatchOrigin::Http { dedup, ack } => {
                    if let Some((source, seq)) = dedup
                        && !state.dedup.take(&source, seq, settings.dedup_sources)
                    {
                        state.duplicate_batches += 1;
                        drop(state);
                        awaiting.push(AwaitingAck {
                            reply: ack,
                            answer: IngestAck::Duplicate,
                        });
                        return;
                    }
                    awaiting.push(AwaitingAck {
                        reply: ack,
                        answer: IngestAck::Applied,
                    });
                }
                BatchOrigin::Spool {
                    segment,
                    end_offset,
                } => {
                    state.offsets.insert(segment, end_offset);
                }
            }
            state.reject(&rejected);
            state.set_clock(now_unix_ns());
            for record in &records {
                state.apply(settings, transport, record);
            }
        }
        // At least once: emitted now, so a crash before the next checkpoint repeats them.
        if self.access.enabled() {
            let mut lines = Vec::with_capacity(records.len() * 400);
            for record in &records {
                append_line(&mut lines, record);
            }
            self.access.send(lines, records.len() as u64);
        }
        if let Some(sink) = &self.sink {
            for record in records.iter().filter(|r| r.sampled) {
                sink.offer(record);
            }
        }
        self.recent.offer(&records);
    }

    /// Forgets idle sessions and removes idle series; `true` when series went (the state
    /// changed and needs a checkpoint).
    fn expire(&self) -> bool {
        let now = now_unix_ns();
        let cutoff = self.store.session_cutoff_ns(now);
        let series_cutoff = now.saturating_sub(self.store.series_idle.as_nanos() as u64);
        let mut state = self.store.lock();
        state.expire_sessions(cutoff);
        state.set_clock(now);
        let expired = state.expire_series(series_cutoff);
        if expired > 0 {
            tracing::info!(expired, "idle series removed");
        }
        expired > 0
    }

    /// Makes the state durable (when a checkpoint is configured), answers the HTTP batches it
    /// covers, then deletes spool segments it covers completely. `true` when durable and
    /// nothing changed since.
    async fn commit(&mut self, awaiting: &mut Vec<AwaitingAck>) -> bool {
        let mut durable = true;
        if let Some(path) = &self.checkpoint {
            let bytes = checkpoint::encode(&self.store.lock());
            let path = path.clone();
            let written = match bytes {
                Ok(bytes) => tokio::task::spawn_blocking(move || checkpoint::write(&path, &bytes))
                    .await
                    .unwrap_or_else(|e| Err(anyhow::anyhow!("checkpoint task failed: {e}"))),
                Err(e) => Err(e),
            };
            match written {
                Ok(()) => {
                    let ms = now_unix_ns() / 1_000_000;
                    self.telemetry
                        .checkpoint_unix_ms
                        .store(ms, Ordering::Relaxed);
                }
                Err(e) => {
                    durable = false;
                    self.telemetry
                        .checkpoint_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %format!("{e:#}"), "checkpoint failed");
                }
            }
        }
        for waiting in awaiting.drain(..) {
            let answer = if durable {
                waiting.answer
            } else {
                IngestAck::NotDurable
            };
            let _ = waiting.reply.send(answer);
        }
        durable && !self.delete_finished().await
    }

    /// Deletes segments read to the end whose window the layout says may go, and forgets
    /// their offsets (the next checkpoint no longer lists them). Only called when the last
    /// checkpoint covers the state. `true` when offsets were forgotten.
    async fn delete_finished(&self) -> bool {
        let Some((dir, layout)) = &self.spool else {
            return false;
        };
        let candidates =
            retention::deletable_segments(&self.store.lock().offsets, layout, now_unix_ns());
        if candidates.is_empty() {
            return false;
        }
        let dir = dir.clone();
        let telemetry = Arc::clone(&self.telemetry);
        let gone = tokio::task::spawn_blocking(move || {
            retention::delete_segments(&dir, candidates, &telemetry)
        })
        .await
        .unwrap_or_default();
        let mut state = self.store.lock();
        for window in &gone {
            state.offsets.remove(window);
        }
        !gone.is_empty()
    }
}
