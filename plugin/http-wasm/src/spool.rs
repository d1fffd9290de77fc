//! The spool writer: appends record lines to the spool directory exactly as
//! `gatetrace_core::spool` defines it — one `O_APPEND` write per record into the segment of the
//! append time, no handle kept between records, full spool → drop and count.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};

use gatetrace_core::spool::{CLAIM_BYTES, CLAIM_FILE, SpoolLayout, segment_name};

/// Claims this instance's salt: appends [`CLAIM_BYTES`] bytes to the claim file with one
/// `O_APPEND` write and returns the file offset after it. The kernel serialises appends, so
/// no two instances sharing the spool (on this host) ever get the same offset.
pub fn claim_salt(dir: &Path, stamp: u64) -> io::Result<u64> {
    let mut file = open_append(&dir.join(CLAIM_FILE))?;
    let mut bytes = [0u8; CLAIM_BYTES];
    let stamp = stamp.to_le_bytes();
    let n = bytes.len().min(stamp.len());
    bytes[..n].copy_from_slice(&stamp[..n]);
    let written = file.write(&bytes)?;
    if written != bytes.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "short claim write",
        ));
    }
    file.stream_position()
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().append(true).create(true).open(path)
}

/// The two file operations the writer needs, on names relative to the spool directory.
/// Neither keeps a file open.
pub trait SpoolDir {
    /// Opens `name` with `O_APPEND` (creating it), writes `line` with one `write`, closes it.
    fn append(&mut self, name: &str, line: &[u8]) -> io::Result<usize>;
    /// Whether `name` exists.
    fn exists(&mut self, name: &str) -> bool;
}

/// [`SpoolDir`] through `std::fs` (native builds, and the wasm fallback).
#[derive(Debug)]
pub struct StdDir(pub PathBuf);

impl SpoolDir for StdDir {
    fn append(&mut self, name: &str, line: &[u8]) -> io::Result<usize> {
        open_append(&self.0.join(name))?.write(line)
    }

    fn exists(&mut self, name: &str) -> bool {
        self.0.join(name).exists()
    }
}

/// What happened to one record.
#[derive(Debug)]
pub enum Outcome {
    /// The line is in the segment.
    Written,
    /// The spool is full for this window: the record was dropped and counted.
    Full,
    /// The write failed: the record was dropped and counted.
    Failed(io::Error),
}

/// Appends lines to the spool of one plugin instance. Holds no open file.
#[derive(Debug)]
pub struct SpoolWriter<D> {
    dir: D,
    layout: SpoolLayout,
    /// Name of the current window's segment, rebuilt when the window changes.
    segment: String,
    window: Option<u64>,
    full: bool,
    dropped: u64,
}

impl<D: SpoolDir> SpoolWriter<D> {
    #[must_use]
    pub fn new(dir: D, layout: SpoolLayout) -> Self {
        Self {
            segment: String::new(),
            dir,
            layout,
            window: None,
            full: false,
            dropped: 0,
        }
    }

    /// Records dropped since the last line written: put this count in the next record.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Enters the window of `now_unix_ns` (probing once per window whether the spool is
    /// full) and says whether a record may be written now. A refused record is counted.
    pub fn admit(&mut self, now_unix_ns: u64) -> bool {
        let window = self.layout.window_start(now_unix_ns);
        if self.window != Some(window) {
            self.window = Some(window);
            self.segment = segment_name(window);
            self.full = self
                .layout
                .full_probe(window)
                .is_some_and(|old| self.dir.exists(&segment_name(old)));
        }
        if self.full {
            self.dropped += 1;
        }
        !self.full
    }

    /// Writes one complete line (newline included) with one `write` to the segment admitted
    /// last. `reported` is the dropped count the line carries; it is subtracted on success.
    pub fn write(&mut self, line: &[u8], reported: u64) -> Outcome {
        match self.dir.append(&self.segment, line) {
            Ok(n) if n == line.len() => {
                self.dropped = self.dropped.saturating_sub(reported);
                Outcome::Written
            }
            Ok(_) => {
                self.dropped += 1;
                Outcome::Failed(io::Error::new(io::ErrorKind::WriteZero, "short write"))
            }
            Err(e) => {
                self.dropped += 1;
                Outcome::Failed(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatetrace_core::spool::parse_segment_name;

    const SEC: u64 = 1_000_000_000;

    fn layout() -> SpoolLayout {
        SpoolLayout {
            window_secs: 10,
            grace_secs: 5,
            max_windows: 3,
        }
    }

    fn segments(dir: &Path) -> Vec<(u64, String)> {
        let mut found: Vec<(u64, String)> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                let w = parse_segment_name(&name)?;
                Some((w, std::fs::read_to_string(dir.join(&name)).unwrap()))
            })
            .collect();
        found.sort();
        found
    }

    #[test]
    fn claims_are_unique_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let salts: Vec<u64> = (0..5).map(|i| claim_salt(dir.path(), i).unwrap()).collect();
        // Each claim is CLAIM_BYTES more: 8, 16, 24, ...
        let expected: Vec<u64> = (1..=5).map(|i| i * CLAIM_BYTES as u64).collect();
        assert_eq!(salts, expected);
        let claims = std::fs::read(dir.path().join(CLAIM_FILE)).unwrap();
        assert_eq!(claims.len(), 5 * CLAIM_BYTES);
        // The stamp is stored little-endian in each claim.
        assert_eq!(&claims[8..16], &1u64.to_le_bytes());
    }

    #[test]
    fn claims_from_threads_never_collide() {
        let dir = tempfile::tempdir().unwrap();
        let salts: Vec<u64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let dir = dir.path();
                    s.spawn(move || {
                        (0..50)
                            .map(|i| claim_salt(dir, t * 100 + i).unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let unique: std::collections::HashSet<_> = salts.iter().collect();
        assert_eq!(unique.len(), 400);
    }

    #[test]
    fn lines_go_to_the_segment_of_their_append_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::new(StdDir(dir.path().to_path_buf()), layout());
        for (t, line) in [(1_000, "a\n"), (1_009, "b\n"), (1_010, "c\n")] {
            assert!(w.admit(t * SEC));
            assert!(matches!(w.write(line.as_bytes(), 0), Outcome::Written));
        }
        assert_eq!(
            segments(dir.path()),
            [(1_000, "a\nb\n".to_owned()), (1_010, "c\n".to_owned())]
        );
    }

    #[test]
    fn a_deleted_segment_is_recreated_not_written_through_a_stale_handle() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::new(StdDir(dir.path().to_path_buf()), layout());
        assert!(w.admit(1_000 * SEC));
        assert!(matches!(w.write(b"a\n", 0), Outcome::Written));
        std::fs::remove_file(dir.path().join(segment_name(1_000))).unwrap();
        assert!(w.admit(1_001 * SEC));
        assert!(matches!(w.write(b"b\n", 0), Outcome::Written));
        assert_eq!(segments(dir.path()), [(1_000, "b\n".to_owned())]);
    }

    #[test]
    fn full_spool_drops_counts_and_reports_later() {
        let dir = tempfile::tempdir().unwrap();
        // A segment max_windows (3) windows back from 1_030 still exists: the reader lags.
        std::fs::write(dir.path().join(segment_name(1_000)), "old\n").unwrap();
        let mut w = SpoolWriter::new(StdDir(dir.path().to_path_buf()), layout());
        assert!(!w.admit(1_030 * SEC));
        assert!(!w.admit(1_031 * SEC));
        assert_eq!(w.dropped(), 2);
        // The reader caught up: the old segment is gone, next window admits again.
        std::fs::remove_file(dir.path().join(segment_name(1_000))).unwrap();
        assert!(w.admit(1_040 * SEC));
        let reported = w.dropped();
        assert!(matches!(w.write(b"x\n", reported), Outcome::Written));
        assert_eq!(w.dropped(), 0);
    }

    #[test]
    fn a_failed_write_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("missing-mount");
        let mut w = SpoolWriter::new(StdDir(gone), layout());
        assert!(w.admit(1_000 * SEC));
        assert!(matches!(w.write(b"x\n", 0), Outcome::Failed(_)));
        assert_eq!(w.dropped(), 1);
    }
}
