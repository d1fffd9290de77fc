//! The aggregator task: the only writer of the [`State`]. It applies each batch (metrics and
//! spool offset in one step), writes checkpoints, acknowledges HTTP batches once durable,
//! deletes finished segments after the checkpoint covering them, and feeds access lines and spans.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gatetrace_core::record::Record;
use gatetrace_core::spool::{SpoolLayout, segment_name};
use tokio::sync::{mpsc, oneshot};

use crate::access::{AccessWriter, append_line};
use crate::checkpoint;
use crate::export::SpanSink;
use crate::ingest::Reject;
use crate::state::{Settings, State, Transport};
use crate::tailer::now_unix_ns;

/// HTTP batches answered per checkpoint at most before one is forced.
const MAX_PENDING_ACKS: usize = 64;

/// What the aggregator tells an HTTP handler once its batch is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ack {
    /// Counted (and, with a checkpoint configured, on disk).
    Applied,
    /// This `(source, sequence)` was taken before: acknowledged, not counted again.
    Duplicate,
    /// Counted in memory but the checkpoint write failed: the client should retry.
    NotDurable,
}

/// Where a batch came from.
#[derive(Debug)]
pub(crate) enum Origin {
    Http {
        dedup: Option<(String, u64)>,
        ack: oneshot::Sender<Ack>,
    },
    Spool {
        segment: u64,
        end_offset: u64,
    },
}

/// Decoded records plus the rejections met while decoding them.
#[derive(Debug)]
pub(crate) struct Batch {
    pub records: Vec<Record>,
    pub rejected: [u64; Reject::ALL.len()],
    pub origin: Origin,
}

/// Spool problem kinds counted in `spool_errors_total{kind}`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SpoolError {
    Listing,
    Unreadable,
    Shrunk,
    Delete,
}

const SPOOL_ERRORS: [&str; 4] = ["listing", "unreadable", "shrunk", "delete"];

/// Counters kept outside the checkpoint (they restart at zero with the process).
#[derive(Debug, Default)]
pub(crate) struct Health {
    pub queue_full_records: AtomicU64,
    pub access_dropped: Arc<AtomicU64>,
    spool_errors: [AtomicU64; 4],
    pub spool_lag_bytes: AtomicU64,
    pub spool_readable: AtomicBool,
    pub checkpoint_unix_ms: AtomicU64,
    pub checkpoint_failures: AtomicU64,
    pub aggregator_running: AtomicBool,
}

impl Health {
    pub fn count_spool_error(&self, kind: SpoolError) {
        self.spool_errors[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn spool_errors(&self) -> Vec<(&'static str, u64)> {
        SPOOL_ERRORS
            .iter()
            .zip(&self.spool_errors)
            .map(|(k, n)| (*k, n.load(Ordering::Relaxed)))
            .collect()
    }
}

/// What the HTTP side, `/metrics` and the aggregator share.
pub(crate) struct Shared {
    state: Mutex<State>,
    pub settings: Settings,
    pub namespace: String,
    pub session_idle: Duration,
    pub health: Arc<Health>,
    pub sink: Option<Arc<dyn SpanSink>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("namespace", &self.namespace)
            .field("settings", &self.settings)
            .field("spans", &self.sink.is_some())
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub fn new(
        state: State,
        settings: Settings,
        namespace: String,
        session_idle: Duration,
        sink: Option<Arc<dyn SpanSink>>,
    ) -> Self {
        Self {
            state: Mutex::new(state),
            settings,
            namespace,
            session_idle,
            health: Arc::new(Health::default()),
            sink,
        }
    }

    /// The state, even if a panic poisoned the lock (the state is plain counters).
    pub fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Everything the aggregator needs besides the shared state.
pub(crate) struct Aggregator {
    pub shared: Arc<Shared>,
    pub http_rx: mpsc::Receiver<Batch>,
    pub spool_rx: mpsc::Receiver<Batch>,
    pub stop: oneshot::Receiver<()>,
    pub checkpoint: Option<PathBuf>,
    pub interval: Duration,
    pub spool: Option<(PathBuf, SpoolLayout)>,
    pub access: AccessWriter,
}

impl Aggregator {
    /// Runs until stopped, then drains both queues, writes the last checkpoint and returns
    /// the access writer (for the caller to close).
    pub async fn run(mut self) -> AccessWriter {
        let mut pending: Vec<(oneshot::Sender<Ack>, Ack)> = Vec::new();
        let mut dirty = false;
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopping = false;
        let mut http_open = true;
        let mut spool_open = true;
        let mut oldest_pending = Instant::now();
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
                        if pending.is_empty() {
                            oldest_pending = Instant::now();
                        }
                        self.apply(batch, &mut pending);
                        dirty = true;
                    }
                    None => http_open = false,
                },
                batch = self.spool_rx.recv(), if spool_open => match batch {
                    Some(batch) => {
                        self.apply(batch, &mut pending);
                        dirty = true;
                    }
                    None => spool_open = false,
                },
                _ = ticker.tick() => {
                    self.housekeeping();
                    if dirty || !pending.is_empty() {
                        dirty = !self.commit(&mut pending).await;
                    } else {
                        // Quiet spool: the last checkpoint covers everything read, so
                        // segments whose window has since closed may go now.
                        dirty = self.delete_finished().await;
                    }
                }
            }
            // Group commit: answer waiting HTTP clients as soon as the queue is momentarily
            // empty (or enough are waiting, or one has waited a whole interval).
            if !pending.is_empty()
                && (self.http_rx.is_empty()
                    || pending.len() >= MAX_PENDING_ACKS
                    || oldest_pending.elapsed() >= self.interval)
            {
                dirty = !self.commit(&mut pending).await;
            }
        }
        self.commit(&mut pending).await;
        self.shared
            .health
            .aggregator_running
            .store(false, Ordering::Relaxed);
        self.access
    }

    /// Applies one batch (a duplicate only counts as one).
    fn apply(&mut self, batch: Batch, pending: &mut Vec<(oneshot::Sender<Ack>, Ack)>) {
        let Batch {
            records,
            rejected,
            origin,
        } = batch;
        let transport = match &origin {
            Origin::Http { .. } => Transport::Http,
            Origin::Spool { .. } => Transport::Spool,
        };
        {
            let shared = &*self.shared;
            let mut state = shared.lock_state();
            match origin {
                Origin::Http { dedup, ack } => {
                    if let Some((source, seq)) = dedup
                        && !state
                            .dedup
                            .take(&source, seq, shared.settings.dedup_sources)
                    {
                        state.duplicate_batches += 1;
                        drop(state);
                        pending.push((ack, Ack::Duplicate));
                        return;
                    }
                    pending.push((ack, Ack::Applied));
                }
                Origin::Spool {
                    segment,
                    end_offset,
                } => {
                    state.offsets.insert(segment, end_offset);
                }
            }
            state.reject(&rejected);
            for record in &records {
                state.apply(&shared.settings, transport, record);
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
        if let Some(sink) = &self.shared.sink {
            for record in records.iter().filter(|r| r.sampled) {
                sink.offer(record);
            }
        }
    }

    fn housekeeping(&self) {
        let idle = self.shared.session_idle.as_nanos() as u64;
        let cutoff = now_unix_ns().saturating_sub(idle);
        self.shared.lock_state().expire_sessions(cutoff);
    }

    /// Makes the state durable (when a checkpoint is configured), answers the HTTP batches it
    /// covers, then deletes spool segments it covers completely. `true` when durable and
    /// nothing changed since.
    async fn commit(&mut self, pending: &mut Vec<(oneshot::Sender<Ack>, Ack)>) -> bool {
        let mut durable = true;
        if let Some(path) = &self.checkpoint {
            let bytes = checkpoint::encode(&self.shared.lock_state());
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
                    self.shared
                        .health
                        .checkpoint_unix_ms
                        .store(ms, Ordering::Relaxed);
                }
                Err(e) => {
                    durable = false;
                    self.shared
                        .health
                        .checkpoint_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %format!("{e:#}"), "checkpoint failed");
                }
            }
        }
        for (ack, answer) in pending.drain(..) {
            let answer = if durable { answer } else { Ack::NotDurable };
            let _ = ack.send(answer);
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
        let now = now_unix_ns();
        let candidates: Vec<(u64, u64)> = self
            .shared
            .lock_state()
            .offsets
            .iter()
            .filter(|(w, _)| layout.deletable(**w, now))
            .map(|(w, o)| (*w, *o))
            .collect();
        if candidates.is_empty() {
            return false;
        }
        let dir = dir.clone();
        let health = Arc::clone(&self.shared.health);
        let gone = tokio::task::spawn_blocking(move || {
            let mut gone = Vec::new();
            for (window, offset) in candidates {
                let path = dir.join(segment_name(window));
                match std::fs::metadata(&path) {
                    Ok(meta) if meta.len() == offset => match discard_segment(&path) {
                        Ok(()) => gone.push(window),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => gone.push(window),
                        Err(e) => {
                            health.count_spool_error(SpoolError::Delete);
                            tracing::warn!(segment = window, error = %e, "cannot delete spool segment");
                        }
                    },
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => gone.push(window),
                    Err(_) => {}
                }
            }
            gone
        })
        .await
        .unwrap_or_default();
        let mut state = self.shared.lock_state();
        for window in &gone {
            state.offsets.remove(window);
        }
        !gone.is_empty()
    }
}

/// Truncates a finished segment to 0 bytes, then unlinks it. A plugin instance may still hold
/// a handle to it (writers keep the current window's segment open and close it only when they
/// next write in a later window); truncating first means such a stale handle pins no disk space.
fn discard_segment(path: &std::path::Path) -> std::io::Result<()> {
    if let Err(e) = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|file| file.set_len(0))
    {
        tracing::debug!(segment = %path.display(), error = %e, "cannot truncate spool segment before deleting it");
    }
    std::fs::remove_file(path)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::discard_segment;

    #[test]
    fn discarding_a_segment_frees_its_bytes_even_while_a_writer_holds_it_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg-0.ndjson");
        let mut stale_writer = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        stale_writer.write_all(&[b'x'; 4096]).unwrap();

        discard_segment(&path).unwrap();

        assert!(!path.exists(), "segment still linked");
        assert_eq!(
            stale_writer.metadata().unwrap().len(),
            0,
            "the unlinked segment still pins its bytes through the stale handle"
        );
    }
}
