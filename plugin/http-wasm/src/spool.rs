//! The spool appender: appends record lines to the spool directory exactly as
//! `gatetrace_core::spool` defines it — one `O_APPEND` write per record into the segment of the
//! append time, only the current window's segment kept open; a full spool, a failed write or
//! no spool mounted at all → the record is dropped and counted.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};

use crate::drops::DropLedger;
use gatetrace_core::spool::{
    self, AppendPlan, CLAIM_BYTES, SpoolLayout, claim_file_name, claim_generation, segment_name,
    stale_claim_file,
};

/// An instance's unique salt: the claim generation and the claim file's offset after its claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Claim {
    /// The claim generation (UTC day) of the wall clock at the claim.
    pub generation: u64,
    /// The offset after this instance's bytes in that generation's claim file (≥ 8).
    pub offset: u64,
}

/// Claims this instance's salt at wall clock `now_unix_ns`: appends [`CLAIM_BYTES`] bytes (the
/// clock) to the claim file of the current generation with one `O_APPEND` write and returns the
/// generation and the file offset after the write. The kernel serialises appends, so no two
/// instances sharing the spool (on this host) ever get the same offset in one generation, and
/// different generations never share a file. The first claim of a generation removes the
/// files of generations before the previous one: that bounds the claim files to about two
/// days of instance starts, and a file still reachable by a claim begun in the previous
/// generation is never removed and restarted at offset 0.
pub fn claim_salt(dir: &Path, now_unix_ns: u64) -> io::Result<Claim> {
    let generation = claim_generation(now_unix_ns);
    let mut file = open_append(&dir.join(claim_file_name(generation)))?;
    let written = file.write(&now_unix_ns.to_le_bytes()[..CLAIM_BYTES])?;
    if written != CLAIM_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "short claim write",
        ));
    }
    let offset = file.stream_position()?;
    if offset == CLAIM_BYTES as u64 {
        remove_stale_claims(dir, generation);
    }
    Ok(Claim { generation, offset })
}

/// Removes the claim files that are stale in `generation`. Best effort: a file left behind
/// (an error, another instance removing it first) is removed by a later generation's first claim.
fn remove_stale_claims(dir: &Path, generation: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_str()
            .is_some_and(|name| stale_claim_file(name, generation))
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().append(true).create(true).open(path)
}

/// The file operations the appender needs, on names relative to the spool directory.
pub trait SpoolDir {
    /// An open segment.
    type File;
    /// Opens `name` with `O_APPEND`, creating it.
    fn open(&mut self, name: &str) -> io::Result<Self::File>;
    /// Writes `line` with one `write`.
    fn write(&mut self, file: &mut Self::File, line: &[u8]) -> io::Result<usize>;
    /// Closes a segment opened by [`SpoolDir::open`].
    fn close(&mut self, file: Self::File);
    /// Whether `name` exists.
    fn exists(&mut self, name: &str) -> bool;
}

/// [`SpoolDir`] through `std::fs` (native builds, and the wasm fallback).
#[derive(Debug)]
pub struct StdDir(pub PathBuf);

impl SpoolDir for StdDir {
    type File = File;

    fn open(&mut self, name: &str) -> io::Result<File> {
        open_append(&self.0.join(name))
    }

    fn write(&mut self, file: &mut File, line: &[u8]) -> io::Result<usize> {
        file.write(line)
    }

    fn close(&mut self, file: File) {
        drop(file);
    }

    fn exists(&mut self, name: &str) -> bool {
        self.0.join(name).exists()
    }
}

/// Where `dir` lives among the preopened directories `(fd, guest path)`: the fd of the longest
/// preopen holding it and the dir's path inside that preopen (empty, or ending in `/`), so a
/// segment is `<prefix><name>` relative to the fd. `None` when no preopen holds it.
#[must_use]
pub fn locate(dir: &str, preopens: &[(u32, String)]) -> Option<(u32, String)> {
    let dir = dir.trim_end_matches('/');
    preopens
        .iter()
        .filter_map(|(fd, name)| {
            let name = name.trim_end_matches('/');
            let rest = dir.strip_prefix(name)?;
            if !rest.is_empty() && !rest.starts_with('/') {
                return None;
            }
            Some((name.len(), *fd, rest.trim_start_matches('/')))
        })
        .max_by_key(|(len, _, _)| *len)
        .map(|(_, fd, rest)| {
            let prefix = if rest.is_empty() {
                String::new()
            } else {
                format!("{rest}/")
            };
            (fd, prefix)
        })
}

/// The reason a record is dropped when no spool directory is mounted into the plugin.
pub const NO_SPOOL: &str = "no_spool";

/// What happened to one record.
#[derive(Debug)]
pub enum AppendOutcome {
    /// The line is in the segment.
    Written,
    /// No spool directory is mounted: the record was dropped and counted ([`NO_SPOOL`]).
    NoSpool,
    /// The spool is full for this window: the record was dropped and counted.
    Full,
    /// The write failed: the record was dropped and counted.
    Failed(io::Error),
}

/// Appends lines to the spool of one plugin instance. The core's [`spool::SpoolPlan`] decides
/// (which window, when to probe for a full spool, what is dropped and reported); this type does
/// the I/O and keeps the segment of the current window open, and only that one: when a record
/// lands in a new window, the old handle is closed before anything else, so a line only ever
/// goes to the segment of the window the wall clock is in, and a segment the collector may
/// delete (window + grace past) is never written to. The collector truncates a segment before
/// unlinking it, so the handle an idle instance still holds pins no disk space.
pub struct SpoolAppender<D: SpoolDir> {
    /// `None`: no spool is mounted, every record is dropped and counted.
    dir: Option<D>,
    plan: spool::SpoolPlan,
    /// The open segment and its window (none before the first write of a window, when the
    /// spool is full, or after a failed open or write).
    open: Option<(u64, D::File)>,
    /// The window whose segment ends in the fragment of a short write (a full disk takes part
    /// of a line): the next line to that segment starts with a newline, so the fragment stays
    /// one bad line of its own instead of swallowing the next record.
    torn: Option<u64>,
    /// The newline and the line, for a write after a fragment (rare: no copy otherwise).
    mended: Vec<u8>,
    /// Where the drop count outlives the instance (none without a spool, or in tests).
    ledger: Option<DropLedger>,
}

impl<D: SpoolDir> core::fmt::Debug for SpoolAppender<D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SpoolAppender")
            .field("mounted", &self.dir.is_some())
            .field("plan", &self.plan)
            .field("open_window", &self.open.as_ref().map(|(window, _)| window))
            .finish_non_exhaustive()
    }
}

impl<D: SpoolDir> SpoolAppender<D> {
    /// An appender into `dir`, or one that drops every record when no spool is mounted.
    #[must_use]
    pub fn new(dir: Option<D>, layout: SpoolLayout) -> Self {
        Self {
            dir,
            plan: spool::SpoolPlan::new(layout),
            open: None,
            torn: None,
            mended: Vec::new(),
            ledger: None,
        }
    }

    /// Keeps the drop count in `ledger` too, so it is reported even if this instance is
    /// never called again (see [`crate::drops`]).
    #[must_use]
    pub fn with_ledger(mut self, ledger: DropLedger) -> Self {
        self.ledger = Some(ledger);
        self
    }

    /// The ledger, for tests.
    #[cfg(test)]
    pub(crate) fn ledger(&self) -> Option<&DropLedger> {
        self.ledger.as_ref()
    }

    /// The directory access, for tests to inspect.
    #[cfg(test)]
    pub(crate) fn dir(&self) -> &D {
        self.dir.as_ref().expect("a mounted spool")
    }

    /// The directory access, for tests to script.
    #[cfg(test)]
    pub(crate) fn dir_mut(&mut self) -> &mut D {
        self.dir.as_mut().expect("a mounted spool")
    }

    /// Records dropped since the last line written (carried by the next line).
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.plan.dropped()
    }

    /// Appends one line at wall clock `now_unix_ns`. `line(dropped)` builds the complete line
    /// (newline included) carrying the dropped count; it is not called when the record is
    /// dropped beforehand (no spool, or the spool is full for this window). The line goes out
    /// with one `write`; a refused or failed line is counted.
    pub fn append<'l>(
        &mut self,
        now_unix_ns: u64,
        line: impl FnOnce(u64) -> &'l [u8],
    ) -> AppendOutcome {
        let before = self.plan.dropped();
        let outcome = self.append_or_drop(now_unix_ns, line);
        if self.plan.dropped() > before
            && let Some(ledger) = self.ledger.as_mut()
        {
            let reported_elsewhere = ledger.owe(self.plan.dropped());
            self.plan.forget(reported_elsewhere);
        }
        outcome
    }

    fn append_or_drop<'l>(
        &mut self,
        now_unix_ns: u64,
        line: impl FnOnce(u64) -> &'l [u8],
    ) -> AppendOutcome {
        let Some(dir) = self.dir.as_mut() else {
            self.plan.append_failed(0);
            return AppendOutcome::NoSpool;
        };
        let mut plan = self.plan.plan(now_unix_ns);
        if let AppendPlan::Probe { window, probe } = plan {
            close_unless(dir, &mut self.open, window);
            let exists = dir.exists(&segment_name(probe));
            plan = self.plan.probed(window, exists);
        }
        let AppendPlan::Append { window } = plan else {
            return AppendOutcome::Full;
        };
        close_unless(dir, &mut self.open, window);
        let mut file = match self.open.take() {
            Some((_, file)) => file,
            None => match dir.open(&segment_name(window)) {
                Ok(file) => file,
                Err(e) => {
                    self.plan.append_failed(0);
                    return AppendOutcome::Failed(e);
                }
            },
        };
        let mut owned = self.plan.take_dropped();
        let held = self
            .ledger
            .as_mut()
            .map(|ledger| ledger.hold(now_unix_ns, owned))
            .unwrap_or_default();
        owned -= held.reported_elsewhere.min(owned);
        let mut line: &[u8] = line(owned + held.adopted);
        let mending = self.torn == Some(window);
        if mending {
            self.mended.clear();
            self.mended.push(b'\n');
            self.mended.extend_from_slice(line);
            line = &self.mended;
        }
        let failure = match dir.write(&mut file, line) {
            Ok(n) if n == line.len() => {
                self.torn = None;
                self.open = Some((window, file));
                self.release(true);
                return AppendOutcome::Written;
            }
            Ok(0) => io::Error::new(io::ErrorKind::WriteZero, "nothing written"),
            Ok(n) => {
                // Part of the line landed (the disk filled up): the segment now ends in a
                // fragment, unless the part was only the newline that ended an earlier one.
                self.torn = (!(mending && n == 1)).then_some(window);
                io::Error::new(io::ErrorKind::WriteZero, "short write")
            }
            Err(e) => e,
        };
        // Reopen for the next line rather than trust this handle again.
        dir.close(file);
        // The adopted counts stay in their slots for a later writer; this instance owes its own.
        self.plan.append_failed(owned);
        self.release(false);
        AppendOutcome::Failed(failure)
    }

    /// Ends the ledger's part of a write: see [`DropLedger::release`].
    fn release(&mut self, written: bool) {
        if let Some(ledger) = self.ledger.as_mut() {
            let reported_elsewhere = ledger.release(written, self.plan.dropped());
            self.plan.forget(reported_elsewhere);
        }
    }
}

/// Closes the `open` segment unless it is `window`'s.
fn close_unless<D: SpoolDir>(dir: &mut D, open: &mut Option<(u64, D::File)>, window: u64) {
    if open.as_ref().is_some_and(|(current, _)| *current != window)
        && let Some((_, file)) = open.take()
    {
        dir.close(file);
    }
}

/// A spool dir for tests that logs every operation and keeps the lines written.
#[cfg(test)]
pub(crate) mod fake {
    use super::SpoolDir;
    use std::io;

    /// Logs `exists <name>`, `open <name>`, `write <name>`, `close <name>`.
    #[derive(Debug, Default)]
    pub(crate) struct FakeDir {
        pub(crate) ops: Vec<String>,
        /// `(segment, line)` of every write.
        pub(crate) lines: Vec<(String, Vec<u8>)>,
        /// Names `exists` finds.
        pub(crate) existing: Vec<String>,
        pub(crate) fail_open: bool,
        /// Bytes the next writes take at most (a disk filling up); `None`: all of them.
        pub(crate) room: Option<usize>,
    }

    impl SpoolDir for FakeDir {
        type File = String;

        fn open(&mut self, name: &str) -> io::Result<String> {
            self.ops.push(format!("open {name}"));
            if self.fail_open {
                return Err(io::Error::other("no dir"));
            }
            Ok(name.to_owned())
        }

        fn write(&mut self, file: &mut String, line: &[u8]) -> io::Result<usize> {
            self.ops.push(format!("write {file}"));
            let n = self.room.map_or(line.len(), |room| room.min(line.len()));
            if let Some(room) = self.room.as_mut() {
                *room -= n;
            }
            self.lines.push((file.clone(), line[..n].to_vec()));
            Ok(n)
        }

        fn close(&mut self, file: String) {
            self.ops.push(format!("close {file}"));
        }

        fn exists(&mut self, name: &str) -> bool {
            self.ops.push(format!("exists {name}"));
            self.existing.iter().any(|e| e == name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeDir;
    use super::*;
    use gatetrace_core::spool::{CLAIM_GENERATION_SECS, parse_segment_name};

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
    fn the_spool_dir_is_found_in_the_longest_preopen() {
        let preopens = [
            (3, "/var".to_owned()),
            (4, "/var/spool/".to_owned()),
            (5, "/var/spoolx".to_owned()),
            (6, "/".to_owned()),
        ];
        assert_eq!(locate("/var/spool", &preopens), Some((4, String::new())));
        assert_eq!(locate("/var/spool/", &preopens), Some((4, String::new())));
        assert_eq!(
            locate("/var/spool/gatetrace", &preopens),
            Some((4, "gatetrace/".to_owned()))
        );
        // A name that only shares a prefix of characters is not a parent.
        assert_eq!(
            locate("/var/spoolxy", &preopens),
            Some((3, "spoolxy/".to_owned()))
        );
        assert_eq!(locate("/tmp/s", &preopens), Some((6, "tmp/s/".to_owned())));
        assert_eq!(locate("/tmp/s", &preopens[..3]), None);
    }

    const DAY: u64 = CLAIM_GENERATION_SECS * SEC;

    fn claim_files(dir: &Path) -> Vec<(String, u64)> {
        let mut found: Vec<(String, u64)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let name = e.file_name().into_string().unwrap();
                (name, e.metadata().unwrap().len())
            })
            .filter(|(name, _)| name.starts_with("claims"))
            .collect();
        found.sort();
        found
    }

    #[test]
    fn claims_are_unique_offsets_in_the_generation_of_their_clock() {
        let dir = tempfile::tempdir().unwrap();
        let now = 20_000 * DAY + 5 * SEC;
        let claims: Vec<Claim> = (0..5)
            .map(|i| claim_salt(dir.path(), now + i).unwrap())
            .collect();
        // Each claim is CLAIM_BYTES more: 8, 16, 24, ...
        let expected: Vec<Claim> = (1..=5)
            .map(|i| Claim {
                generation: 20_000,
                offset: i * CLAIM_BYTES as u64,
            })
            .collect();
        assert_eq!(claims, expected);
        let bytes = std::fs::read(dir.path().join(claim_file_name(20_000))).unwrap();
        assert_eq!(bytes.len(), 5 * CLAIM_BYTES);
        // The clock is stored little-endian in each claim.
        assert_eq!(&bytes[8..16], &(now + 1).to_le_bytes());
    }

    /// Instances claiming from threads, the clock crossing a generation boundary while they
    /// do: every salt is distinct, the previous generation's file is kept (a claim begun just
    /// before the switch may still land in it), older ones and the single `claims` file of
    /// earlier versions are removed.
    #[test]
    fn claims_from_threads_never_collide_across_a_generation_switch() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("claims"), [0u8; 64]).unwrap();
        std::fs::write(dir.path().join(claim_file_name(19_990)), [0u8; 8]).unwrap();
        let switch = 20_000 * DAY;
        let claims: Vec<Claim> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8u64)
                .map(|t| {
                    let dir = dir.path();
                    s.spawn(move || {
                        // Each thread's clock runs from 25 ns before the switch to 25 after.
                        (0..50u64)
                            .map(|i| claim_salt(dir, switch - 25 + i + t).unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let unique: std::collections::HashSet<_> = claims.iter().collect();
        assert_eq!(unique.len(), 400, "no salt handed out twice");
        let before = claims.iter().filter(|c| c.generation == 19_999).count() as u64;
        assert!(before > 0 && before < 400, "the switch fell inside the run");
        assert_eq!(
            claim_files(dir.path()),
            [
                (claim_file_name(19_999), before * CLAIM_BYTES as u64),
                (claim_file_name(20_000), (400 - before) * CLAIM_BYTES as u64),
            ],
            "the stale files are gone, the previous generation is kept"
        );
        // A day later the first claim removes generation 19_999; 20_000 stays, and the new
        // file starts at the first offset again, in a generation no earlier salt has.
        let next = claim_salt(dir.path(), switch + DAY).unwrap();
        assert_eq!(
            next,
            Claim {
                generation: 20_001,
                offset: CLAIM_BYTES as u64
            }
        );
        assert!(!claims.contains(&next));
        let names: Vec<String> = claim_files(dir.path()).into_iter().map(|f| f.0).collect();
        assert_eq!(names, [claim_file_name(20_000), claim_file_name(20_001)]);
    }

    #[test]
    fn claim_files_stay_bounded_over_many_days() {
        let dir = tempfile::tempdir().unwrap();
        for day in 0..30u64 {
            for i in 0..10 {
                claim_salt(dir.path(), (20_000 + day) * DAY + i * SEC).unwrap();
            }
        }
        let files = claim_files(dir.path());
        assert_eq!(files.len(), 2, "{files:?}");
        let total: u64 = files.iter().map(|f| f.1).sum();
        assert_eq!(total, 2 * 10 * CLAIM_BYTES as u64);
    }

    /// Appends `line` at second `t`.
    fn append<D: SpoolDir>(w: &mut SpoolAppender<D>, t: u64, line: &str) -> AppendOutcome {
        w.append(t * SEC, |_| line.as_bytes())
    }

    #[test]
    fn lines_go_to_the_segment_of_their_append_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolAppender::new(Some(StdDir(dir.path().to_path_buf())), layout());
        for (t, line) in [(1_000, "a\n"), (1_009, "b\n"), (1_010, "c\n")] {
            assert!(matches!(append(&mut w, t, line), AppendOutcome::Written));
        }
        assert_eq!(
            segments(dir.path()),
            [(1_000, "a\nb\n".to_owned()), (1_010, "c\n".to_owned())]
        );
    }

    #[test]
    fn the_current_windows_segment_stays_open_and_only_it() {
        let mut w = SpoolAppender::new(Some(FakeDir::default()), layout());
        // Windows of 10 s; the full probe looks 3 windows back.
        let times = [1_030, 1_031, 1_039, 1_040, 1_041, 1_075, 1_076];
        for t in times {
            assert!(matches!(append(&mut w, t, "x\n"), AppendOutcome::Written));
        }
        let (s30, s40, s70) = (
            segment_name(1_030),
            segment_name(1_040),
            segment_name(1_070),
        );
        assert_eq!(
            w.dir().ops,
            [
                format!("exists {}", segment_name(1_000)),
                format!("open {s30}"),
                format!("write {s30}"),
                format!("write {s30}"),
                format!("write {s30}"),
                // Window change: the old handle is closed before anything else.
                format!("close {s30}"),
                format!("exists {}", segment_name(1_010)),
                format!("open {s40}"),
                format!("write {s40}"),
                format!("write {s40}"),
                // An idle gap over several windows: still one close, one probe, one open.
                format!("close {s40}"),
                format!("exists {}", segment_name(1_040)),
                format!("open {s70}"),
                format!("write {s70}"),
                format!("write {s70}"),
            ]
        );
        // Every write went to the segment of the clock reading of its own append.
        let writes: Vec<&String> = w
            .dir()
            .ops
            .iter()
            .filter(|o| o.starts_with("write"))
            .collect();
        for (t, op) in times.iter().zip(writes) {
            assert_eq!(
                *op,
                format!("write {}", segment_name(layout().window_start(t * SEC)))
            );
        }
    }

    #[test]
    fn a_full_spool_closes_the_old_segment_and_opens_nothing() {
        let mut w = SpoolAppender::new(Some(FakeDir::default()), layout());
        assert!(matches!(
            append(&mut w, 1_035, "a\n"),
            AppendOutcome::Written
        ));
        w.dir_mut().existing.push(segment_name(1_010));
        w.dir_mut().ops.clear();
        assert!(matches!(append(&mut w, 1_040, "b\n"), AppendOutcome::Full));
        assert!(matches!(append(&mut w, 1_041, "c\n"), AppendOutcome::Full));
        // Probed once for the window, no open and no write while full.
        assert_eq!(
            w.dir().ops,
            [
                format!("close {}", segment_name(1_030)),
                format!("exists {}", segment_name(1_010)),
            ]
        );
        assert_eq!(w.dropped(), 2);
    }

    #[test]
    fn a_failed_open_is_retried_on_the_next_line() {
        let mut w = SpoolAppender::new(Some(FakeDir::default()), layout());
        w.dir_mut().fail_open = true;
        assert!(matches!(
            append(&mut w, 1_000, "a\n"),
            AppendOutcome::Failed(_)
        ));
        w.dir_mut().fail_open = false;
        let mut carried = None;
        let outcome = w.append(1_001 * SEC, |dropped| {
            carried = Some(dropped);
            b"b\n"
        });
        assert!(matches!(outcome, AppendOutcome::Written));
        assert_eq!((carried, w.dropped()), (Some(1), 0));
        let opens = w.dir().ops.iter().filter(|o| o.starts_with("open")).count();
        assert_eq!(opens, 2);
    }

    #[test]
    fn full_spool_drops_counts_and_reports_later() {
        let dir = tempfile::tempdir().unwrap();
        // A segment max_windows (3) windows back from 1_030 still exists: the reader lags.
        std::fs::write(dir.path().join(segment_name(1_000)), "old\n").unwrap();
        let mut w = SpoolAppender::new(Some(StdDir(dir.path().to_path_buf())), layout());
        assert!(matches!(append(&mut w, 1_030, "a\n"), AppendOutcome::Full));
        assert!(matches!(append(&mut w, 1_031, "b\n"), AppendOutcome::Full));
        assert_eq!(w.dropped(), 2);
        // The reader caught up: the old segment is gone, next window admits again.
        std::fs::remove_file(dir.path().join(segment_name(1_000))).unwrap();
        let mut carried = 0;
        let outcome = w.append(1_040 * SEC, |dropped| {
            carried = dropped;
            b"x\n"
        });
        assert!(matches!(outcome, AppendOutcome::Written));
        assert_eq!((carried, w.dropped()), (2, 0));
    }

    /// The bytes of `segment` as the fake wrote them.
    fn written(dir: &FakeDir, segment: &str) -> String {
        dir.lines
            .iter()
            .filter(|(s, _)| s == segment)
            .map(|(_, l)| String::from_utf8_lossy(l).into_owned())
            .collect()
    }

    #[test]
    fn a_short_write_leaves_a_fragment_the_next_line_does_not_join() {
        let mut w = SpoolAppender::new(Some(FakeDir::default()), layout());
        assert!(matches!(
            append(&mut w, 1_000, "a\n"),
            AppendOutcome::Written
        ));
        // The disk fills up: 3 bytes of the next line land, then nothing.
        w.dir_mut().room = Some(3);
        assert!(matches!(
            append(&mut w, 1_001, "bbbbb\n"),
            AppendOutcome::Failed(_)
        ));
        assert!(matches!(
            append(&mut w, 1_002, "ccc\n"),
            AppendOutcome::Failed(_)
        ));
        assert_eq!(w.dropped(), 2);
        // Space returns: the next line ends the fragment first, then lands whole.
        w.dir_mut().room = None;
        assert!(matches!(
            append(&mut w, 1_003, "d\n"),
            AppendOutcome::Written
        ));
        assert!(matches!(
            append(&mut w, 1_004, "e\n"),
            AppendOutcome::Written
        ));
        assert_eq!(written(w.dir(), &segment_name(1_000)), "a\nbbb\nd\ne\n");
        // A fragment in an older window is left as it is (never write an older segment).
        w.dir_mut().room = Some(1);
        assert!(matches!(
            append(&mut w, 1_005, "ff\n"),
            AppendOutcome::Failed(_)
        ));
        w.dir_mut().room = None;
        assert!(matches!(
            append(&mut w, 1_010, "g\n"),
            AppendOutcome::Written
        ));
        assert_eq!(written(w.dir(), &segment_name(1_010)), "g\n");
    }

    #[test]
    fn a_failed_write_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("missing-mount");
        let mut w = SpoolAppender::new(Some(StdDir(gone)), layout());
        assert!(matches!(
            append(&mut w, 1_000, "x\n"),
            AppendOutcome::Failed(_)
        ));
        assert_eq!(w.dropped(), 1);
    }

    #[test]
    fn without_a_spool_every_record_is_dropped_and_counted_without_building_its_line() {
        let mut w = SpoolAppender::<FakeDir>::new(None, layout());
        for t in [1_000, 1_001, 1_050] {
            let outcome = w.append(t * SEC, |_| {
                unreachable!("no line is built without a spool")
            });
            assert!(matches!(outcome, AppendOutcome::NoSpool));
        }
        assert_eq!(w.dropped(), 3);
    }
}
