//! Follows the spool directory (format in `gatetrace_core::spool`): reads complete lines from
//! each segment past the checkpointed offset and hands them, with the offset they end at, to
//! the aggregator. Partial last lines wait; vanished or unreadable files are reported, not fatal.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{ErrorKind, Read as _, Seek as _, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gatetrace_core::record::MAX_LINE_BYTES;
use gatetrace_core::spool::{SpoolLayout, parse_segment_name};
use tokio::sync::mpsc::Sender;

use crate::ingest::parse_block;
use crate::pipeline::{Batch, Health, Origin, SpoolError};

/// Bytes read from a segment per batch at most.
const CHUNK: usize = 1 << 20;

/// The tailer's own state (its read positions may run ahead of the checkpointed offsets).
pub(crate) struct Tailer {
    pub dir: PathBuf,
    pub layout: SpoolLayout,
    pub poll: Duration,
    pub positions: BTreeMap<u64, u64>,
    pub tx: Sender<Batch>,
    pub health: Arc<Health>,
    warned: HashSet<u64>,
    listing_failed: bool,
    buf: Vec<u8>,
}

impl Tailer {
    pub fn new(
        dir: PathBuf,
        layout: SpoolLayout,
        poll: Duration,
        positions: BTreeMap<u64, u64>,
        tx: Sender<Batch>,
        health: Arc<Health>,
    ) -> Self {
        Self {
            dir,
            layout,
            poll,
            positions,
            tx,
            health,
            warned: HashSet::new(),
            listing_failed: false,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    /// Scans until `stop` says so (or its sender is gone).
    pub fn run(mut self, stop: &Receiver<()>) {
        loop {
            if !self.scan(stop) {
                return;
            }
            match stop.recv_timeout(self.poll) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// One pass over the directory; `false` when stopped or the aggregator is gone.
    fn scan(&mut self, stop: &Receiver<()>) -> bool {
        let windows = match self.list() {
            Ok(windows) => {
                if self.listing_failed {
                    tracing::info!(dir = %self.dir.display(), "spool directory readable again");
                }
                self.listing_failed = false;
                self.health.spool_readable.store(true, Ordering::Relaxed);
                windows
            }
            Err(e) => {
                self.health.count_spool_error(SpoolError::Listing);
                self.health.spool_readable.store(false, Ordering::Relaxed);
                if !self.listing_failed {
                    tracing::warn!(dir = %self.dir.display(), error = %e, "cannot list the spool directory");
                }
                self.listing_failed = true;
                return true;
            }
        };
        // Segments that vanished (deleted after a checkpoint, or by someone else).
        self.positions.retain(|w, _| windows.contains(w));
        self.warned.retain(|w| windows.contains(w));
        let mut lag = 0;
        for &window in &windows {
            match self.follow(window, stop) {
                Ok(Some(left)) => lag += left,
                Ok(None) => return false,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    self.positions.remove(&window);
                }
                Err(e) => {
                    self.health.count_spool_error(SpoolError::Unreadable);
                    if self.warned.insert(window) {
                        tracing::warn!(segment = window, error = %e, "cannot read spool segment; will retry");
                    }
                }
            }
        }
        self.health.spool_lag_bytes.store(lag, Ordering::Relaxed);
        true
    }

    fn list(&self) -> std::io::Result<Vec<u64>> {
        let mut windows: Vec<u64> = std::fs::read_dir(&self.dir)?
            .filter_map(|entry| {
                let entry = entry.ok()?;
                parse_segment_name(entry.file_name().to_str()?)
            })
            .collect();
        windows.sort_unstable();
        Ok(windows)
    }

    /// Reads what is new in one segment; the bytes still unread, or `None` when stopped or
    /// the aggregator is gone.
    fn follow(&mut self, window: u64, stop: &Receiver<()>) -> std::io::Result<Option<u64>> {
        let mut file = File::open(self.dir.join(gatetrace_core::spool::segment_name(window)))?;
        let len = file.metadata()?.len();
        let mut pos = self.positions.get(&window).copied().unwrap_or(0);
        if len < pos {
            tracing::warn!(
                segment = window,
                len,
                pos,
                "spool segment shrank; reading it from the start"
            );
            self.health.count_spool_error(SpoolError::Shrunk);
            pos = 0;
        }
        if len == 0 && !self.positions.contains_key(&window) {
            // An empty segment (a writer that died before its first line) is registered at
            // offset 0 so it is deleted like any finished one.
            let batch = Batch {
                records: Vec::new(),
                rejected: [0; crate::ingest::Reject::ALL.len()],
                origin: Origin::Spool {
                    segment: window,
                    end_offset: 0,
                },
            };
            if self.tx.blocking_send(batch).is_err() {
                return Ok(None);
            }
        }
        while pos < len {
            if !matches!(stop.try_recv(), Err(TryRecvError::Empty)) {
                return Ok(None);
            }
            let want = ((len - pos) as usize).min(CHUNK);
            self.buf.resize(want, 0);
            file.seek(SeekFrom::Start(pos))?;
            file.read_exact(&mut self.buf)?;
            let complete = match memrchr_newline(&self.buf) {
                Some(i) => i + 1,
                None if want > MAX_LINE_BYTES => want,
                None if self.layout.deletable(window, now_unix_ns()) => want,
                None => break,
            };
            // A tail that can never complete (overlong, or left in a closed window by a
            // writer that died mid-write) is consumed too, and rejected as a bad line.
            let parsed = parse_block(&self.buf[..complete]);
            pos += complete as u64;
            let batch = Batch {
                records: parsed.records,
                rejected: parsed.rejected,
                origin: Origin::Spool {
                    segment: window,
                    end_offset: pos,
                },
            };
            if self.tx.blocking_send(batch).is_err() {
                return Ok(None);
            }
            self.positions.insert(window, pos);
        }
        self.positions.insert(window, pos);
        Ok(Some(len - pos))
    }
}

fn memrchr_newline(buf: &[u8]) -> Option<usize> {
    buf.iter().rposition(|b| *b == b'\n')
}

pub(crate) fn now_unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
