//! The spool source: follows the spool directory (`gatetrace_core::spool`), frames segments
//! past the checkpointed offset with the core's `next_frame` and sends the decoded lines with
//! the offset they end at. Partial last lines wait; unreadable files are reported, not fatal.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{ErrorKind, Read as _, Seek as _, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::Duration;

use gatetrace_core::spool::{Frame, SpoolLayout, next_frame, parse_segment_name, segment_name};
use tokio::sync::mpsc::Sender;

use super::decode::DecodedLines;
use crate::batch::{BatchOrigin, RecordBatch, Reject};
use crate::clock::now_unix_ns;
use crate::telemetry::{SpoolErrorKind, Telemetry};

/// Bytes read from a segment per batch at most (at least the core's `MAX_LINE_BYTES`, so
/// `next_frame` recognises an overlong line).
const CHUNK: usize = 1 << 20;

/// The tailer's own state (its read positions may run ahead of the checkpointed offsets).
pub(crate) struct SpoolTailer {
    dir: PathBuf,
    layout: SpoolLayout,
    poll: Duration,
    positions: BTreeMap<u64, u64>,
    queue: Sender<RecordBatch>,
    telemetry: Arc<Telemetry>,
    warned: HashSet<u64>,
    listing_failed: bool,
    buf: Vec<u8>,
}

impl SpoolTailer {
    /// A tailer of `dir` starting at `positions` (segment window → offset) that sends its
    /// batches to `queue`.
    pub fn new(
        dir: PathBuf,
        layout: SpoolLayout,
        poll: Duration,
        positions: BTreeMap<u64, u64>,
        queue: Sender<RecordBatch>,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        Self {
            dir,
            layout,
            poll,
            positions,
            queue,
            telemetry,
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
                self.telemetry.spool_readable.store(true, Ordering::Relaxed);
                windows
            }
            Err(e) => {
                self.telemetry.count_spool_error(SpoolErrorKind::Listing);
                self.telemetry
                    .spool_readable
                    .store(false, Ordering::Relaxed);
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
                    self.telemetry.count_spool_error(SpoolErrorKind::Unreadable);
                    if self.warned.insert(window) {
                        tracing::warn!(segment = window, error = %e, "cannot read spool segment; will retry");
                    }
                }
            }
        }
        self.telemetry.spool_lag_bytes.store(lag, Ordering::Relaxed);
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
        let mut file = File::open(self.dir.join(segment_name(window)))?;
        let len = file.metadata()?.len();
        let mut pos = self.positions.get(&window).copied().unwrap_or(0);
        if len < pos {
            tracing::warn!(
                segment = window,
                len,
                pos,
                "spool segment shrank; reading it from the start"
            );
            self.telemetry.count_spool_error(SpoolErrorKind::Shrunk);
            pos = 0;
        }
        if len == 0 && !self.positions.contains_key(&window) {
            // An empty segment (a writer that died before its first line) is registered at
            // offset 0 so it is deleted like any finished one.
            let batch = RecordBatch {
                records: Vec::new(),
                rejected: Default::default(),
                origin: BatchOrigin::Spool {
                    segment: window,
                    end_offset: 0,
                },
            };
            if self.queue.blocking_send(batch).is_err() {
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
            // The tail is the segment's last, still incomplete line: it waits for the rest,
            // unless the window is closed (its writer died mid-write) and it never will.
            let at_end = pos + want as u64 == len;
            let closed = at_end && self.layout.deletable(window, now_unix_ns());
            let (decoded, taken) = decode_frames(&self.buf, closed);
            if taken == 0 {
                break;
            }
            pos += taken as u64;
            let batch = RecordBatch {
                records: decoded.records,
                rejected: decoded.rejected,
                origin: BatchOrigin::Spool {
                    segment: window,
                    end_offset: pos,
                },
            };
            if self.queue.blocking_send(batch).is_err() {
                return Ok(None);
            }
            self.positions.insert(window, pos);
        }
        self.positions.insert(window, pos);
        Ok(Some(len - pos))
    }
}

/// Decodes the complete lines at the start of `buf` as `next_frame` frames them (an overlong
/// line is rejected, not decoded) and returns them with the bytes they took. With
/// `take_tail`, an incomplete last line is taken too, decoded like any other line.
fn decode_frames(buf: &[u8], take_tail: bool) -> (DecodedLines, usize) {
    let mut decoded = DecodedLines::for_block(buf.len());
    let mut taken = 0;
    let mut number = 0;
    while taken < buf.len() {
        number += 1;
        match next_frame(&buf[taken..]) {
            Frame::Line { len } => {
                decoded.push_spool_line(number, &buf[taken..taken + len]);
                taken += len;
            }
            Frame::Oversize { len } => {
                decoded.reject(number, Reject::LineTooLong);
                taken += len;
            }
            Frame::Incomplete if take_tail => {
                decoded.push_line(number, &buf[taken..]);
                taken = buf.len();
            }
            Frame::Incomplete => break,
        }
    }
    (decoded, taken)
}

#[cfg(test)]
mod tests {
    use gatetrace_core::record::MAX_LINE_BYTES;

    use super::decode_frames;
    use crate::batch::Reject;
    use crate::sources::decode::tests::line;

    #[test]
    fn complete_lines_are_taken_and_a_partial_last_line_waits() {
        let text = format!("{}\n{}\n", line(1, Some(200), true), line(2, None, false));
        let partial = &line(3, Some(200), false)[..40];
        let buf = format!("{text}{partial}");
        let (decoded, taken) = decode_frames(buf.as_bytes(), false);
        assert_eq!(decoded.records.len(), 2);
        assert_eq!(decoded.rejected_total(), 0);
        assert_eq!(taken, text.len());
    }

    /// A writer's line cut short by a full disk, then another writer's whole line: the
    /// fragment is rejected, the joined record counted.
    #[test]
    fn a_record_joined_to_another_writers_fragment_is_kept() {
        let fragment = &line(1, Some(200), true)[..57];
        let buf = format!(
            "{fragment}{}\n{}\n",
            line(2, None, false),
            line(3, Some(500), true)
        );
        let (decoded, taken) = decode_frames(buf.as_bytes(), false);
        assert_eq!(decoded.records.len(), 2);
        assert_eq!(decoded.records[0].request_id, "r2");
        assert_eq!(decoded.rejected[Reject::InvalidJson.index()], 1);
        assert_eq!(decoded.rejected_total(), 1);
        assert_eq!(taken, buf.len());
    }

    #[test]
    fn a_closed_windows_partial_tail_is_taken_and_rejected() {
        let text = format!("{}\n", line(1, Some(200), true));
        let buf = format!("{text}{}", &line(2, None, false)[..40]);
        let (decoded, taken) = decode_frames(buf.as_bytes(), true);
        assert_eq!(decoded.records.len(), 1);
        assert_eq!(decoded.rejected[Reject::InvalidJson.index()], 1);
        assert_eq!(taken, buf.len());
    }

    #[test]
    fn an_overlong_line_is_rejected_and_the_next_line_still_counts() {
        let long = format!("{}\n", "x".repeat(MAX_LINE_BYTES + 10));
        let buf = format!("{long}{}\n", line(1, Some(200), true));
        let (decoded, taken) = decode_frames(buf.as_bytes(), false);
        assert_eq!(decoded.records.len(), 1);
        assert_eq!(decoded.rejected[Reject::LineTooLong.index()], 1);
        assert_eq!(decoded.rejected_total(), 1);
        assert_eq!(taken, buf.len());
    }

    #[test]
    fn an_overlong_line_without_its_end_yet_is_taken_as_far_as_read() {
        // No newline within the core's limit: the line can never be valid, so what is read
        // of it goes (the rest, once it lands, is a bad line of its own).
        let buf = "x".repeat(MAX_LINE_BYTES * 2);
        let (decoded, taken) = decode_frames(buf.as_bytes(), false);
        assert_eq!(decoded.rejected[Reject::LineTooLong.index()], 1);
        assert_eq!(taken, buf.len());
    }
}
